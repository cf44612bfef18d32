import { spawnSync } from "node:child_process";
import process from "node:process";
import { chmodSync, chownSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, isRoot, tempDir, test } from "./_harness.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { onlyOwnId, parseSubIds } from "../src/container/rootless.ts";

const NOBODY = 65534;
const REPO = new URL("..", import.meta.url).pathname;

function why(): string | false {
  if (!isRoot) return "needs root (to start a subprocess as nobody)";
  if (runtimeName() !== "deno") return "runs the non-root side under Deno";
  if (findStaticBusybox() === undefined) return "needs a static busybox (apt-get install busybox-static)";
  if (spawnSync("setpriv", ["--help"]).error) return "needs setpriv (util-linux)";
  if (readFileSync("/proc/sys/user/max_user_namespaces", "utf8").trim() === "0") {
    return "user.max_user_namespaces is 0: unprivileged user namespaces are off";
  }
  for (
    const knob of [
      "/proc/sys/kernel/unprivileged_userns_clone",
      "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
    ]
  ) {
    if (!existsSync(knob)) continue;
    const v = readFileSync(knob, "utf8").trim();
    if (knob.endsWith("clone") ? v === "0" : v === "1") {
      return `${knob} is ${v}: unprivileged user namespaces are refused`;
    }
  }
  // The kernel may still refuse (a seccomp profile, an LSM): ask it as nobody.
  const probe = spawnSync("setpriv", [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    "unshare",
    "-U",
    "true",
  ], {
    encoding: "utf8",
  });
  if (probe.status !== 0) {
    return `unprivileged user namespaces are refused here: unshare -U as nobody: ${
      (probe.stderr || probe.error?.message || String(probe.status)).trim()
    }`;
  }
  return false;
}

function runtimeName(): string {
  return "Bun" in globalThis ? "bun" : "deno";
}

const skip = why();

/** Runs `script` (TypeScript) as nobody in a temp dir nobody owns; returns its stdout and the dir's leftovers check. */
function asNobody(script: string): { out: string; dir: string } & Disposable {
  const tmp = tempDir("hako-rootless-");
  chmodSync(tmp.path, 0o755);
  chownSync(tmp.path, NOBODY, NOBODY);
  const file = join(tmp.path, "main.ts");
  writeFileSync(file, script);
  chownSync(file, NOBODY, NOBODY);
  const r = spawnSync(
    "setpriv",
    [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      Deno.execPath(),
      "run",
      "-A",
      "--no-check",
      "--v8-flags=--single-threaded",
      file,
      tmp.path,
    ],
    {
      cwd: tmp.path,
      encoding: "utf8",
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: "/tmp", DENO_DIR: join(tmp.path, ".deno") },
      timeout: 60_000,
    },
  );
  if (r.status !== 0) {
    tmp[Symbol.dispose]();
    throw new Error(`the script as nobody failed (${r.status}): ${r.stderr}\n${r.stdout}`);
  }
  return { out: r.stdout, dir: tmp.path, [Symbol.dispose]: () => tmp[Symbol.dispose]() };
}

test("rootless: subuid parsing and own-id detection", () => {
  const text = "# c\nalice:100000:65536\n1000:200000:10\nbob:300000:5\n";
  assertEquals(parseSubIds(text, "alice", 1000), [{ start: 100000, count: 65536 }, { start: 200000, count: 10 }]);
  assertEquals(parseSubIds(text, "carol", 1001), []);
  assert(onlyOwnId([{ inside: 0, outside: 1000, size: 1 }], 1000));
  assert(!onlyOwnId([{ inside: 0, outside: 1000, size: 2 }], 1000));
});

test("rootless: as nobody, the caller's uid is root inside; cgroups and missing user ns fail before anything", () => {
  const mod = JSON.stringify(join(REPO, "src/container/container.ts"));
  const native = JSON.stringify(join(REPO, "src/container/native.ts"));
  using r = asNobody(`
import { Container, run } from ${mod};
import { nativeChildren } from ${native};
import { existsSync, readFileSync } from "node:fs";
const dir = Deno.args[0];
const out: Record<string, unknown> = {};
const base = { name: "hako-rootless-" + Deno.pid, namespaces: ["user", "mount", "uts", "ipc", "pid", "net"] } as const;
const st = await run({ ...base, rootfs: { builder: "busybox", path: dir + "/rootfs" },
  command: ["sh", "-c", "id -u > /ids; id -g >> /ids; tr -s ' ' < /proc/self/uid_map >> /ids"] });
out.status = st.code;
out.native = nativeChildren.count;
out.ids = readFileSync(dir + "/rootfs/ids", "utf8");
const fails = async (spec: object) => {
  try { await Container.create({ ...base, command: "true", ...spec } as never); return "created"; }
  catch (e) { return (e as Error).name + ": " + (e as Error).message; }
};
out.cgroup = await fails({ rootfs: { builder: "busybox", path: dir + "/cg-rootfs" }, cgroup: { pids: { max: 10 } } });
out.cgroupTouched = existsSync(dir + "/cg-rootfs");
out.noUserns = await fails({ rootfs: dir + "/rootfs", namespaces: ["mount", "pid"] });
out.bigMap = await fails({ rootfs: dir + "/rootfs", idMap: { uid: { inside: 0, outside: 100000, size: 65536 } } });
console.log(JSON.stringify(out));
`);
  const out = JSON.parse(r.out.trim().split("\n").pop()!);
  assertEquals(out.status, 0);
  // a rootless container's child runs no JavaScript either (where hako has a native runner)
  if (process.arch === "x64") assertEquals(out.native, 1, "native children");
  assertEquals(out.ids, "0\n0\n 0 65534 1\n", "uid and gid 0 inside, nobody's uid mapped to 0");
  assert(
    /^ConfigError: cgroup: rootless mode needs a delegated cgroup \(\/sys\/fs\/cgroup\/\S+ is not writable by uid 65534\); remove the cgroup section or delegate one$/
      .test(out.cgroup),
    out.cgroup,
  );
  assertEquals(out.cgroupTouched, false, "nothing was made for the cgroup spec");
  assert(/rootless containers need "user" in namespaces/.test(out.noUserns), out.noUserns);
  assert(/idMap/.test(out.bigMap) && /newuidmap|subuid/.test(out.bigMap), out.bigMap);
  // nothing left behind: no cgroup named after the container in any hierarchy
  const name = `hako-hako-rootless-`;
  const left = spawnSync("sh", ["-c", `ls -d /sys/fs/cgroup/*/${name}* 2>/dev/null`], { encoding: "utf8" }).stdout;
  assertEquals(left.trim(), "");
}, { skip });
