/**
 * Red team, second round: what was added last — the image store's config as input, the OCI
 * runtime mode's config.json and commands, and the new CLI surfaces — attacked as a hostile image,
 * bundle or container would. Each test is one attack and what stops it.
 * @module
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { needsRoot, runtime, tempDir, test } from "./_harness.ts";
import { imageUser, importImage, listImages } from "../src/image/store.ts";
import { tarBytes, type TarEntry } from "./_tar.ts";
import { createHash } from "node:crypto";
import { Container, type ContainerSpec } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { OciConfigError, ociToSpec } from "../src/oci/config.ts";
import { mergedCgroup } from "../src/oci/update.ts";
import { logTime } from "../src/cli/logs.ts";
import { writePidFile } from "../src/oci/runtime.ts";
import { UsageError } from "../src/cli/_args.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A rootfs with `etc/` made by `make` (its path). */
function rootfsWith(dir: string, make: (etc: string) => void): string {
  const rootfs = join(dir, "rootfs");
  mkdirSync(join(rootfs, "etc"), { recursive: true });
  make(join(rootfs, "etc"));
  return rootfs;
}

/** `fn`'s run time in milliseconds, and its result. */
function timed<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const r = fn();
  return [r, performance.now() - t0];
}

test("an image whose /etc/passwd is a FIFO does not hang the user lookup (it is not a regular file)", () => {
  using t = tempDir("hako-test-rt2-");
  const rootfs = rootfsWith(t.path, (etc) => execFileSync("mkfifo", [join(etc, "passwd")]));
  const [u, ms] = timed(() => imageUser(rootfs, "app"));
  assert.equal(u, undefined, "no user found in a FIFO");
  assert.ok(ms < 5000, `took ${ms} ms`);
});

test(
  "an image whose /etc/passwd is a character device (/dev/zero's 1:5) is not read endlessly",
  () => {
    using t = tempDir("hako-test-rt2-");
    const rootfs = rootfsWith(t.path, (etc) => execFileSync("mknod", [join(etc, "passwd"), "c", "1", "5"]));
    const [u, ms] = timed(() => imageUser(rootfs, "app"));
    assert.equal(u, undefined);
    assert.ok(ms < 5000, `took ${ms} ms`);
  },
  { skip: needsRoot },
);

test("an image's huge /etc/passwd is read no further than its first 4 MiB", () => {
  using t = tempDir("hako-test-rt2-");
  const rootfs = rootfsWith(t.path, (etc) => {
    writeFileSync(join(etc, "passwd"), "app:x:1234:1234::/:/bin/sh\n");
    execFileSync("truncate", ["-s", "3G", join(etc, "passwd")]); // (sparse: no disk used)
    writeFileSync(join(etc, "group"), "");
  });
  const [u, ms] = timed(() => imageUser(rootfs, "app"));
  assert.deepEqual(u, { uid: 1234, gid: 1234 }, "the entry at its start is found");
  assert.ok(ms < 5000, `took ${ms} ms`);
});

test("an image's /etc/passwd that is an absolute symlink is resolved inside the image, never the host's", () => {
  using t = tempDir("hako-test-rt2-");
  const rootfs = rootfsWith(t.path, (etc) => {
    execFileSync("ln", ["-s", "/etc/shadow-like", join(etc, "passwd")]);
    writeFileSync(join(etc, "shadow-like"), "app:x:42:43::/:/bin/sh\n");
  });
  // (the host has a root entry; the image's target names only app)
  assert.equal(imageUser(rootfs, "root"), undefined, "the host's /etc/passwd is not read");
  assert.deepEqual(imageUser(rootfs, "app"), { uid: 42, gid: 43 });
});

/** Runs `fn` with the native child on (`"1"`) or off (`"0"`: the forked path). */
async function onPath<T>(value: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env.HAKO_NATIVE_SPAWN;
  process.env.HAKO_NATIVE_SPAWN = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
    else process.env.HAKO_NATIVE_SPAWN = before;
  }
}

const noBusybox = needsRoot || (findStaticBusybox() === undefined && "needs a static busybox (busybox-static)");

for (const [path, value] of [["native", "1"], ["forked", "0"]] as const) {
  test(
    `an image's symlink through /proc/1/root (a container in the host's pid namespace) does not let a mount's mkdir or touch reach the host (${path})`,
    async () => {
      using t = tempDir("hako-test-rt2-");
      execFileSync("chmod", ["0755", t.path]);
      const rootfs = join(t.path, "rootfs");
      buildRootfs(rootfs, { builder: "busybox" });
      const host = join(t.path, "host");
      mkdirSync(host);
      // The image: /data and /conf lead through the (host pid namespace's) pid 1's root.
      symlinkSync(`/proc/1/root${host}`, join(rootfs, "data"));
      symlinkSync(`/proc/1/root${host}/touched`, join(rootfs, "conf"));
      const source = join(t.path, "source");
      writeFileSync(source, "");
      const spec: ContainerSpec = {
        name: `hako-test-rt2-${process.pid}-${value}`,
        rootfs,
        command: ["true"],
        namespaces: ["mount", "uts", "ipc"],
        mounts: [
          { type: "tmpfs", target: "/data/made/here" },
          { type: "bind", source, target: "/conf" },
        ],
        stdio: "null",
      };
      let error: unknown;
      await onPath(value, async () => {
        try {
          await using c = await Container.create(spec);
          await c.start();
          await c.wait();
        } catch (e) {
          error = e;
        }
      });
      assert.deepEqual(readdirSync(host), [], "nothing was made in the host's directory");
      assert.ok(error instanceof Error, "the container is refused");
      assert.match(String(error), /mounts\[0\]|\/proc/);
    },
    { skip: noBusybox },
  );
}

for (const [path, value] of [["native", "1"], ["forked", "0"]] as const) {
  test(
    `a volume mounted over /dev through an image's symlink cannot turn a masked path into the host's core_pattern (runc CVE-2025-31133) (${path})`,
    async () => {
      using t = tempDir("hako-test-rt2-");
      execFileSync("chmod", ["0755", t.path]);
      const rootfs = join(t.path, "rootfs");
      buildRootfs(rootfs, { builder: "busybox" });
      // The image: /data leads to /dev. The volume (another container's to write): its `null` leads
      // to a sysctl that the host obeys.
      symlinkSync("/dev", join(rootfs, "data"));
      const volume = join(t.path, "volume");
      mkdirSync(volume);
      symlinkSync("/proc/sys/kernel/core_pattern", join(volume, "null"));
      const spec: ContainerSpec = {
        name: `hako-test-rt2-mask-${process.pid}-${value}`,
        rootfs,
        command: ["sh", "-c", "cat /proc/keys > /seen 2>&1; echo done >> /seen"],
        mounts: [{ type: "bind", source: volume, target: "/data" }],
        stdio: "null",
      };
      let error: unknown;
      await onPath(value, async () => {
        try {
          await using c = await Container.create(spec);
          await c.start();
          await c.wait();
        } catch (e) {
          error = e;
        }
      });
      const seen = existsSync(join(rootfs, "seen")) ? readFileSync(join(rootfs, "seen"), "utf8") : "";
      const pattern = readFileSync("/proc/sys/kernel/core_pattern", "utf8");
      assert.ok(
        !seen.startsWith(pattern),
        `the masked /proc/keys showed the host's core_pattern: ${JSON.stringify(seen)}`,
      );
      assert.equal(error, undefined);
      assert.equal(seen, "done\n", "/proc/keys is masked: the host's /dev/null is bound over it");
    },
    {
      skip: noBusybox ||
        (!existsSync("/proc/keys") && "needs /proc/keys (CONFIG_KEYS), the masked file the attack aims at"),
    },
  );
}

test("a config.json limit of the wrong JSON type is refused by its path, never dropped (the container would run unlimited)", () => {
  const config = (resources: Record<string, unknown>) => ({
    ociVersion: "1.0.2",
    process: { args: ["sh"] },
    root: { path: "rootfs" },
    linux: { resources },
  });
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ memory: { limit: "64m" } }, "linux.resources.memory.limit"],
    [{ memory: { limit: 1 << 26, swap: "1g" } }, "linux.resources.memory.swap"],
    [{ pids: { limit: "10" } }, "linux.resources.pids.limit"],
    [{ cpu: { shares: "512\n" } }, "linux.resources.cpu.shares"],
    [{ cpu: { quota: "50000" } }, "linux.resources.cpu.quota"],
    [{ cpu: { period: true } }, "linux.resources.cpu.period"],
    [{ cpu: { cpus: 3 } }, "linux.resources.cpu.cpus"],
    [{ cpu: { mems: [0] } }, "linux.resources.cpu.mems"],
  ];
  for (const [resources, path] of cases) {
    assert.throws(
      () => ociToSpec(config(resources), "/tmp/bundle", "rt2"),
      (e: unknown) => e instanceof OciConfigError && e.problems.some((p) => p.path === path),
      `${JSON.stringify(resources)} is refused at ${path}`,
    );
  }
  // and `hako oci update --resources` goes through the same mapping
  assert.throws(() => mergedCgroup({}, { pids: { limit: "10" } }), OciConfigError);
});

for (const [path, value] of [["native", "1"], ["forked", "0"]] as const) {
  test(
    `a workdir through /proc/self/fd to a directory the runtime holds open does not put the command's cwd on the host (runc CVE-2024-21626) (${path})`,
    async () => {
      using t = tempDir("hako-test-rt2-");
      execFileSync("chmod", ["0755", t.path]);
      const rootfs = join(t.path, "rootfs");
      buildRootfs(rootfs, { builder: "busybox" });
      const host = join(t.path, "host");
      mkdirSync(host);
      writeFileSync(join(host, "host-secret"), "");
      // A directory of the host's that the runtime has open (as Deno and Bun have some), and an
      // image whose WorkingDir leads to it, directly or through a symlink.
      const held = openSync(host, "r");
      try {
        symlinkSync(`/proc/self/fd/${held}`, join(rootfs, "wd"));
        for (const workdir of [`/proc/self/fd/${held}`, "/wd"]) {
          rmSync(join(rootfs, "seen"), { force: true });
          let error: unknown;
          await onPath(value, async () => {
            try {
              await using c = await Container.create({
                name: `hako-test-rt2-cwd-${process.pid}-${value}`,
                rootfs,
                workdir,
                command: ["sh", "-c", "ls -a > /seen"],
                stdio: "null",
              });
              await c.start();
              await c.wait();
            } catch (e) {
              error = e;
            }
          });
          const seen = existsSync(join(rootfs, "seen")) ? readFileSync(join(rootfs, "seen"), "utf8") : "";
          assert.ok(!seen.includes("host-secret"), `${workdir}: the command's cwd was the host's ${host}`);
          assert.match(String(error), /workdir|openat2|ELOOP/, `${workdir}: refused`);
        }
      } finally {
        closeSync(held);
      }
    },
    { skip: noBusybox },
  );
}

test(
  "an OCI --root directory another user owns is refused: a state.json planted there cannot make root's kill signal a host process",
  () => {
    using t = tempDir("hako-test-rt2-");
    execFileSync("chmod", ["0755", t.path]);
    const root = join(t.path, "oci-root");
    mkdirSync(join(root, "victim"), { recursive: true });
    // The host process the planted record names (its real pid and start time).
    const victim = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      const stat = readFileSync(`/proc/${victim.pid}/stat`, "utf8");
      const startTime = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
      writeFileSync(
        join(root, "victim", "state.json"),
        JSON.stringify({ id: "victim", pid: victim.pid, startTime, bundle: "/", rootfs: "/", created: "" }),
      );
      execFileSync("chown", ["-R", "65534:65534", root]); // (another user's, as they made it)
      execFileSync("chmod", ["0777", root]);
      const cmd = runtime === "deno"
        ? [join(ROOT, "bin/hako-runc")]
        : [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli/main.ts"), "oci"];
      const r = spawnSync(cmd[0]!, [...cmd.slice(1), "--root", root, "kill", "victim", "KILL"], {
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.equal(victim.exitCode ?? victim.signalCode, null);
      assert.ok(
        existsSync(`/proc/${victim.pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${victim.pid}/stat`, "utf8")),
        "the host process lives",
      );
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /oci-root/);
    } finally {
      victim.kill("SIGKILL");
    }
  },
  { skip: needsRoot },
);

/** A one-layer OCI image layout as a tar archive whose config has `top` at its top level. */
function ociArchive(top: Record<string, unknown>): Uint8Array {
  const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const layer = tarBytes([{ path: "etc/", type: "5" }]);
  const config = json({
    architecture: "amd64",
    os: "linux",
    ...top,
    config: { Cmd: ["sh"] },
    rootfs: { type: "layers", diff_ids: [`sha256:${sha(layer)}`] },
  });
  const desc = (mediaType: string, b: Uint8Array) => ({ mediaType, digest: `sha256:${sha(b)}`, size: b.length });
  const manifest = json({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: desc("application/vnd.oci.image.config.v1+json", config),
    layers: [desc("application/vnd.oci.image.layer.v1.tar", layer)],
  });
  const index = json({
    schemaVersion: 2,
    manifests: [{
      ...desc("application/vnd.oci.image.manifest.v1+json", manifest),
      annotations: { "org.opencontainers.image.ref.name": "localhost/hako-rt2:1" },
    }],
  });
  return tarBytes([
    { path: "oci-layout", type: "0", data: '{"imageLayoutVersion":"1.0.0"}' },
    { path: "index.json", type: "0", data: index },
    { path: "blobs/", type: "5" },
    { path: "blobs/sha256/", type: "5" },
    ...[layer, config, manifest].map((b): TarEntry => ({ path: `blobs/sha256/${sha(b)}`, type: "0", data: b })),
  ]);
}

test("an image whose config's created is a terminal escape, not a time, is refused at import ('hako images' prints it)", async () => {
  using t = tempDir("hako-test-rt2-");
  const varDir = join(t.path, "var");
  const file = join(t.path, "image.tar");
  writeFileSync(file, ociArchive({ created: "\x1b]0;owned\x07\x1b[2J" }));
  let error: unknown;
  try {
    await importImage(file, { varDir });
  } catch (e) {
    error = e;
  }
  assert.match(String(error), /created/);
  assert.deepEqual(listImages(varDir), [], "nothing stored");
  // a time, as docker writes it, is taken
  writeFileSync(file, ociArchive({ created: "2024-05-01T10:20:30.123456789Z" }));
  await importImage(file, { varDir });
  assert.equal(listImages(varDir)[0]?.created, "2024-05-01T10:20:30.123456789Z");
});

for (const [path, value] of [["native", "1"], ["forked", "0"]] as const) {
  test(
    `a mount whose target is inside /proc, named so or reached through an image's symlink, is refused (runc's rule) (${path})`,
    async () => {
      using t = tempDir("hako-test-rt2-");
      execFileSync("chmod", ["0755", t.path]);
      const rootfs = join(t.path, "rootfs");
      buildRootfs(rootfs, { builder: "busybox" });
      // (/proc/self/fd overmounted would redirect what the setup opens there, as runc's CVE-2025-52881)
      symlinkSync("/proc/self/fd", join(rootfs, "data"));
      const volume = join(t.path, "volume");
      mkdirSync(volume);
      const uptime = join(t.path, "uptime");
      writeFileSync(uptime, "42.00 42.00\n");
      const run = async (mounts: ContainerSpec["mounts"]) => {
        let error: unknown;
        await onPath(value, async () => {
          try {
            await using c = await Container.create({
              name: `hako-test-rt2-proc-${process.pid}-${value}`,
              rootfs,
              mounts,
              command: ["sh", "-c", "cat /proc/uptime > /seen"],
              stdio: "null",
            });
            await c.start();
            await c.wait();
          } catch (e) {
            error = e;
          }
        });
        return error;
      };
      assert.match(String(await run([{ type: "tmpfs", target: "/proc/sys/kernel" }])), /mounts\[0\].*\/proc/);
      assert.match(
        String(await run([{ type: "bind", source: volume, target: "/data" }])),
        /mounts\[0\].*\/proc\/self\/fd/,
      );
      // lxcfs's files are what runc allows there
      assert.equal(await run([{ type: "bind", source: uptime, target: "/proc/uptime", readonly: true }]), undefined);
      assert.equal(readFileSync(join(rootfs, "seen"), "utf8"), "42.00 42.00\n");
    },
    { skip: noBusybox },
  );
}

test("logs --since and --until far out of range are a usage error naming the option, not a RangeError", () => {
  for (const text of ["99999999999999999999h", "99999999999999999999"]) {
    for (const option of ["--since", "--until"]) {
      assert.throws(() => logTime(text, Date.now(), option), (e: unknown) => {
        return e instanceof UsageError && e.message.includes(option) && e.message.includes(text);
      });
    }
  }
  assert.equal(logTime("1700000000", 0), "2023-11-14T22:13:20.000000000Z");
});

test("an OCI --pid-file's temp name planted as a symlink (a directory others write to) is not followed", () => {
  using t = tempDir("hako-test-rt2-");
  const victim = join(t.path, "victim");
  writeFileSync(victim, "precious\n");
  symlinkSync(victim, join(t.path, `.pid.${process.pid}.tmp`));
  assert.throws(() => writePidFile(join(t.path, "pid"), 4242), /EEXIST/);
  assert.equal(readFileSync(victim, "utf8"), "precious\n");
  // without a plant, it is written
  rmSync(join(t.path, `.pid.${process.pid}.tmp`));
  writePidFile(join(t.path, "pid"), 4242);
  assert.equal(readFileSync(join(t.path, "pid"), "utf8"), "4242");
});
