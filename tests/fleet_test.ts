/**
 * Seed 001's fleet (examples/fleet/): busybox web servers, each with its own uid/gid range, first
 * through the library (Container.create/start with the spec of web.ts), then through the CLI
 * (examples/fleet/run.ts: `hako start`, `hako ps --json`, `hako delete --force`).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, needsRoot, tempDir, test } from "./_harness.ts";
import { Container } from "../src/container/container.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { buildImage } from "../examples/fleet/image.ts";
import web from "../examples/fleet/web.ts";
import { fetchPage, fleetCgroups, HAKO_BIN, processTree, processUid, runFleet } from "../examples/fleet/run.ts";

const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)") ||
  (spawnSync("tar", ["--version"]).status !== 0 && "needs GNU tar to build the image");

/** A temp dir a user-namespace root can reach, with the image built in it. */
function fleetDir(): { path: string; image: string; varDir: string } & Disposable {
  const dir = tempDir("hako-fleet-");
  chmodSync(dir.path, 0o755);
  const varDir = join(dir.path, "var");
  mkdirSync(varDir, { mode: 0o755 });
  const image = buildImage(join(dir.path, "busybox-web.tar.gz")).path;
  return { path: dir.path, image, varDir, [Symbol.dispose]: () => dir[Symbol.dispose]() };
}

test("web.ts gives each port its name, rootfs, uid/gid range and 30% CPU, as JSON", () => {
  const spec = web({ PORT: "10012", HAKO_IMAGE: "/i.tar.gz", HAKO_VAR_DIR: "/v" }, []);
  assertEquals(spec.name, "web-10012");
  assertEquals(spec.rootfs, { tarball: "/i.tar.gz", path: "/v/web-10012", owner: { uid: 1001200, gid: 1001200 } });
  assertEquals(spec.idMap, {
    uid: { inside: 0, outside: 1001200, size: 100 },
    gid: { inside: 0, outside: 1001200, size: 100 },
  });
  assertEquals(spec.namespaces, ["pid", "ipc", "uts", "mount", "user"]);
  assertEquals(spec.cgroup, { cpu: { quotaUs: 30_000, periodUs: 100_000 } });
  assert(String(spec.command).includes("httpd -f -p 10012 -u 48:48 -h /var/www"), String(spec.command));
  assertEquals(spec.user, undefined, "root inside starts httpd, which drops to apache itself");
  assertEquals(JSON.parse(JSON.stringify(spec)), spec, "the spec survives JSON");
  assertEquals(web({ PORT: "1", HAKO_IMAGE: "/i" }, ["sh"]).command, ["sh"]);
  let threw = false;
  try {
    web({ PORT: "http" }, []);
  } catch (e) {
    threw = e instanceof RangeError;
  }
  assert(threw, "a bad PORT is a RangeError");
});

test("three web containers each answer on their port with their own page, httpd as PORT*100+48", async () => {
  using dir = fleetDir();
  const ports = [18001, 18002, 18003];
  const containers: Container[] = [];
  try {
    for (const port of ports) {
      const spec = web({ PORT: String(port), HAKO_IMAGE: dir.image, HAKO_VAR_DIR: dir.varDir }, []);
      const c = await Container.create(spec);
      containers.push(c);
      await c.start();
    }
    for (const [i, port] of ports.entries()) {
      const c = containers[i]!;
      const body = await fetchPage(port);
      assertEquals(body.trim(), `hello from web-${port}`, `page on port ${port}`);
      // hako switched to apache (48:48 inside) before the exec: PORT*100+48 on the host
      const want = port * 100 + 48;
      const tree = processTree(c.pid);
      assert(tree.some((p) => processUid(p) === want), `no process of ${c.pid}'s tree runs as ${want}`);
      const status = readFileSync(`/proc/${c.pid}/status`, "utf8");
      assert(new RegExp(`^Uid:\\s+${want}\\s+${want}\\s+${want}\\s+${want}$`, "m").test(status), status);
      assert(new RegExp(`^Gid:\\s+${want}\\s+`, "m").test(status), status);
      // the rootfs is owned by the range's first id (root inside)
      const st = spawnSync("stat", ["-c", "%u:%g", join(dir.varDir, `web-${port}`, "bin/busybox")], {
        encoding: "utf8",
      });
      assertEquals(st.stdout.trim(), `${port * 100}:${port * 100}`, "rootfs owner");
      // 30% of a CPU: 30000 µs every 100000 µs (v1 cpu.cfs_*, or v2 cpu.max)
      const quota = fleetCgroups([port]).flatMap((d) =>
        ["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.max"].filter((f) => existsSync(join(d, f)))
          .map((f) => `${f}=${readFileSync(join(d, f), "utf8").trim()}`)
      );
      assert(
        quota.includes("cpu.max=30000 100000") ||
          (quota.includes("cpu.cfs_quota_us=30000") && quota.includes("cpu.cfs_period_us=100000")),
        `cgroup hako/web-${port}: ${quota.join(", ") || "not found"}`,
      );
      const procs = fleetCgroups([port]).flatMap((d) => {
        try {
          return readFileSync(join(d, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
        } catch {
          return [];
        }
      });
      assert(procs.includes(c.pid), `httpd ${c.pid} is not in hako/web-${port}`);
    }
  } finally {
    for (const c of containers) {
      try {
        c.delete();
      } catch (e) {
        console.error(`delete ${c.name}: ${(e as Error).message}`);
      }
    }
    for (const port of ports) rmSync(join(dir.varDir, `web-${port}`), { recursive: true, force: true });
  }
  assertEquals(fleetCgroups(ports), [], "cgroups left");
  for (const port of ports) assert(!existsSync(join(dir.varDir, `web-${port}`)), `rootfs of ${port} left`);
}, { skip });

/** Why the CLI test cannot run yet: `hako start` is missing. */
function cliMissing(): string | false {
  const r = spawnSync(HAKO_BIN, ["start", "--help"], { stdio: "ignore", timeout: 60_000 });
  return r.status === 0
    ? false
    : `\`bin/hako start --help\` exits ${r.status ?? r.signal}: the lifecycle CLI is not there yet`;
}

for (const mode of ["per-container", "one-call"] as const) {
  test(`the CLI fleet (${mode}): 10 containers start, answer, run in their ranges and leave nothing`, async () => {
    using dir = fleetDir();
    const stateDir = join(dir.path, "state");
    const r = await runFleet({
      count: 10,
      mode,
      firstPort: mode === "per-container" ? 18101 : 18201,
      image: dir.image,
      varDir: dir.varDir,
      stateDir,
      stopSupervisor: true,
      log: () => {},
    });
    assertEquals(r.containers.length, 10);
    assert(r.hako.processes.length >= 1, "the supervisor is counted");
    assertEquals(r.leftovers, []);
  }, { skip: skip || cliMissing() });
}
