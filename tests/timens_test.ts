/**
 * A time namespace's clock offsets (`timeOffsets`, OCI's `linux.timeOffsets`): validated strictly
 * before anything is touched, written to /proc/self/timens_offsets before the command enters the
 * namespace on the native and the forked path, as root and rootless — /proc/uptime inside is the
 * host's plus the boottime offset.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { isRoot, runtime, tempDir, test } from "./_harness.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { run } from "../src/container/container.ts";
import { nativeChildren } from "../src/container/native.ts";
import { timensOffsetsText } from "../src/container/setup.ts";
import { BUN_SINGLE_THREADED_ENV } from "../ffi/fork.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DAY = 86_400;
const base = { name: "timens", rootfs: "/nonexistent-rootfs", command: ["true"] } as const;
const withTime = ["mount", "uts", "ipc", "pid", "net", "time"] as const;

function problems(spec: object): string[] {
  try {
    resolveSpec({ ...base, ...spec } as never);
  } catch (e) {
    if (e instanceof SpecError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  return [];
}

test("timeOffsets resolve to whole seconds for both clocks, and need a new time namespace", () => {
  const r = resolveSpec({ ...base, namespaces: [...withTime], timeOffsets: { boottime: 5 * DAY } } as never);
  deepEqual(r.timeOffsets, { monotonic: 0, boottime: 5 * DAY });
  equal(timensOffsetsText(r), `monotonic 0 0\nboottime ${5 * DAY} 0\n`);
  equal(resolveSpec({ ...base, namespaces: [...withTime] } as never).timeOffsets, undefined);
  deepEqual(problems({ timeOffsets: { monotonic: 1 } }), [
    'timeOffsets: needs a new time namespace: add "time" to namespaces',
  ]);
  deepEqual(
    problems({
      namespaces: ["mount", "pid", { type: "time", join: "/proc/1/ns/time" }],
      timeOffsets: { monotonic: 1 },
    }).filter((p) => p.startsWith("timeOffsets")),
    ["timeOffsets: a joined time namespace keeps its own offsets: give them to a new one only"],
  );
});

test("timeOffsets are refused unless whole seconds within the kernel's limit, with no unknown clock", () => {
  const bad = (timeOffsets: unknown) => problems({ namespaces: [...withTime], timeOffsets });
  deepEqual(bad({ monotonic: 1.5 }), ["timeOffsets.monotonic: must be a whole number of seconds, got 1.5"]);
  deepEqual(bad({ boottime: "10" }), ['timeOffsets.boottime: must be a whole number of seconds, got "10"']);
  deepEqual(bad({ boottime: 4_611_686_019 }), [
    "timeOffsets.boottime: must be within ±4611686018 seconds (the kernel's limit), got 4611686019",
  ]);
  equal(bad({ monotonic: Number.NaN }).length, 1);
  equal(bad({ realtime: 1 }).length, 1);
  match(bad({ realtime: 1 })[0]!, /^timeOffsets/);
  equal(bad(7).length, 1);
  deepEqual(bad({ monotonic: -4_611_686_018, boottime: 4_611_686_018 }), []);
});

const skip = !isRoot
  ? "needs root (makes namespaces)"
  : !findStaticBusybox()
  ? "needs a static busybox (apt-get install busybox-static)"
  : spawnSync("unshare", ["--time", "true"]).status !== 0
  ? "the kernel has no time namespaces (CONFIG_TIME_NS)"
  : false;

/** The host's boottime, seconds (/proc/uptime's first field). */
function hostUptime(): number {
  return Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
}

for (const native of ["1", "0"]) {
  test(
    `as root, /proc/uptime inside is the host's plus the boottime offset (HAKO_NATIVE_SPAWN=${native})`,
    async () => {
      using tmp = tempDir("hako-timens-");
      const before = process.env.HAKO_NATIVE_SPAWN;
      process.env.HAKO_NATIVE_SPAWN = native;
      const count = nativeChildren.count;
      try {
        const host = hostUptime();
        const status = await run({
          name: `timens-${process.pid}-${native}-${Math.random().toString(16).slice(2, 8)}`,
          rootfs: { builder: "busybox", path: join(tmp.path, "rootfs") },
          namespaces: [...withTime],
          timeOffsets: { monotonic: 3 * DAY, boottime: 7 * DAY },
          command: ["sh", "-c", "cat /proc/uptime /proc/self/timens_offsets > /out"],
        });
        equal(status.code, 0, JSON.stringify(status));
        const [uptime, ...offsets] = readFileSync(join(tmp.path, "rootfs/out"), "utf8").trim().split("\n");
        const inside = Number(uptime!.split(" ")[0]);
        const delta = inside - host;
        ok(delta >= 7 * DAY && delta < 7 * DAY + 60, `uptime inside ${inside}, host ${host}: differs by ${delta}`);
        deepEqual(offsets.map((l) => l.trim().split(/\s+/)), [["monotonic", String(3 * DAY), "0"], [
          "boottime",
          String(7 * DAY),
          "0",
        ]]);
        if (process.arch === "x64") equal(nativeChildren.count - count, native === "1" ? 1 : 0, "which path ran");
      } finally {
        if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
        else process.env.HAKO_NATIVE_SPAWN = before;
      }
    },
    { skip },
  );
}

test("rootless (as nobody), the offsets are written too, on either path", () => {
  using tmp = tempDir("hako-timens-");
  chmodSync(tmp.path, 0o755);
  chownSync(tmp.path, 65534, 65534);
  const spec = join(tmp.path, "spec.ts");
  writeFileSync(
    spec,
    `export default { name: "timens-rl-${process.pid}", rootfs: { builder: "busybox", path: ${
      JSON.stringify(join(tmp.path, "rootfs"))
    } }, namespaces: ["user", "mount", "uts", "ipc", "pid", "net", "time"], timeOffsets: { boottime: ${
      7 * DAY
    } }, command: ["cat", "/proc/uptime"] };\n`,
  );
  chmodSync(spec, 0o644);
  const cli = runtime === "deno" ? [join(ROOT, "bin/hako")] : [process.execPath, join(ROOT, "src/cli/main.ts")];
  for (const native of ["1", "0"]) {
    const host = hostUptime();
    const r = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", ...cli, "run", spec], {
      cwd: tmp.path,
      encoding: "utf8",
      timeout: 90_000,
      env: {
        PATH: "/usr/bin:/bin",
        HOME: tmp.path,
        DENO_DIR: join(tmp.path, ".deno"),
        HAKO_NATIVE_SPAWN: native,
        ...(runtime === "bun" ? BUN_SINGLE_THREADED_ENV : {}),
      },
    });
    equal(r.status, 0, `${native}: ${r.stderr}`);
    const delta = Number(r.stdout.split(" ")[0]) - host;
    ok(delta >= 7 * DAY && delta < 7 * DAY + 60, `${native}: differs by ${delta}`);
  }
}, {
  skip: skip ||
    (spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "-U", "true"]).status !== 0 &&
      "unprivileged user namespaces are refused here"),
});
