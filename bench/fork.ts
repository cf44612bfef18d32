/**
 * Fork micro-benchmark (measurement 4): starting `/bin/true` and waiting for it, from one running
 * Deno process,
 *
 *   - `Deno.Command(...).outputSync()` (posix_spawn: the base) and `node:child_process` spawnSync,
 *   - hako `Process.fork` + `exec` + `waitpid` (with the MADV_DOFORK preparation),
 *   - hako `Process.fork` into new pid/uts/ipc/mount/net namespaces (raw clone) + exec + wait (root),
 *   - hako's native child (`ffi/spawn.ts`: a `CLONE_VM` child running a prepared syscall list, no
 *     JavaScript, as containers use it) + execve + waitpid, plain and into the five namespaces,
 *   - the preparation alone (`prepareFork()`: the madvise calls each fork pays),
 *   - a C-speed floor: busybox `sh` starting /bin/true 1000 times in a loop (per start), and
 *     hyperfine's own figure for /bin/true when hyperfine is installed,
 *
 * each with a warm-up and 200 runs (`--quick`: 30), median/min/max and the ratio to Deno.Command.
 * Run: node_modules/.bin/deno run -A --v8-flags=--single-threaded bench/fork.ts [--quick]
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Process } from "../mod.ts";
import { prepareFork } from "../ffi/fork.ts";
import { libc } from "../ffi/libc.ts";
import { nativeSpawnSupported, spawnProgram, SyscallProgram } from "../ffi/spawn.ts";
import { environment, printTable, QUICK, type Row, skip, stats, which, writeResults } from "./_lib.ts";

const RUNS = Number(process.env.HAKO_BENCH_RUNS ?? (QUICK ? 30 : 200));
const WARMUP = QUICK ? 5 : 20;
const SECTION = "fork";

function measure(name: string, fn: () => void): Row {
  for (let i = 0; i < WARMUP; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  return stats(SECTION, name, times);
}

/** busybox sh running /bin/true `n` times, 5 rounds: ms per start. */
function shellFloor(): Row | undefined {
  const sh = which("busybox");
  if (!sh) {
    skip("floor: busybox sh loop", "busybox not installed (apt-get install busybox-static)");
    return undefined;
  }
  const n = 1000;
  const times: number[] = [];
  for (let round = 0; round < (QUICK ? 3 : 5); round++) {
    const t = performance.now();
    const r = spawnSync(sh, ["sh", "-c", `i=0; while [ $i -lt ${n} ]; do /bin/true; i=$((i+1)); done`]);
    const dt = performance.now() - t;
    if (r.status !== 0) {
      skip("floor: busybox sh loop", `exit ${r.status}`);
      return undefined;
    }
    times.push(dt / n);
  }
  return { ...stats(SECTION, "floor: busybox sh loop, per /bin/true", times), note: `${n} starts a round` };
}

/** hyperfine's mean for /bin/true (no shell), if installed. */
function hyperfineFloor(): Row | undefined {
  if (!which("hyperfine")) {
    skip("floor: hyperfine /bin/true", "hyperfine not installed (apt-get install hyperfine)");
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), "hako-bench-hf-"));
  try {
    const out = join(dir, "hf.json");
    const r = spawnSync("hyperfine", [
      "-N",
      "--warmup",
      "20",
      "--runs",
      String(RUNS),
      "--export-json",
      out,
      "/bin/true",
    ], {
      stdio: "ignore",
    });
    if (r.status !== 0) {
      skip("floor: hyperfine /bin/true", `exit ${r.status}`);
      return undefined;
    }
    const res = JSON.parse(readFileSync(out, "utf8")).results[0];
    return {
      section: SECTION,
      name: "floor: hyperfine -N /bin/true",
      medianMs: res.median * 1000,
      minMs: res.min * 1000,
      maxMs: res.max * 1000,
      runs: RUNS,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the fork micro-benchmark; returns its rows (section "fork", Deno.Command the base). */
export function forkBenchmark(print = true): Row[] {
  const isRoot = process.getuid?.() === 0;
  const rows: Row[] = [
    { ...measure("Deno.Command /bin/true", () => void new Deno.Command("/bin/true").outputSync()), baseline: true },
    measure("node:child_process spawnSync", () => void spawnSync("/bin/true")),
    measure("hako fork+exec+waitpid", () => {
      const pid = Process.fork(() => Process.exec(["/bin/true"]));
      Process.waitpid(pid);
    }),
  ];
  if (isRoot) {
    rows.push(measure("hako clone(5 namespaces)+exec+wait", () => {
      const pid = Process.fork(
        { namespaces: ["pid", "uts", "ipc", "mount", "net"] },
        () => Process.exec(["/bin/true"]),
      );
      Process.waitpid(pid);
    }));
  } else skip("hako clone(5 namespaces)", "needs root");
  if (nativeSpawnSupported()) {
    // One program, run again after each child is reaped (as containers of one kind reuse theirs).
    const p = new SyscallProgram();
    p.call("execve", [p.cstring("/bin/true"), p.cstrings(["true"]), p.cstrings([])]);
    const built = p.build();
    built.reportTo(2);
    const st = new Int32Array(1);
    const native = (flags: number) => () => void libc().waitpid(spawnProgram(built, flags), st, 0);
    rows.push(measure("hako native child+exec+waitpid", native(0)));
    if (isRoot) {
      const NS = 0x20000000 | 0x04000000 | 0x08000000 | 0x00020000 | 0x40000000; // pid uts ipc mount net
      rows.push(measure("hako native child(5 namespaces)+exec+wait", native(NS)));
    }
  } else skip("hako native child", `no native runner on ${process.arch} (or HAKO_NATIVE_SPAWN=0)`);
  rows.push({ ...measure("prepareFork() alone (MADV_DOFORK)", () => prepareFork()), note: "paid by every fork" });
  for (const r of [shellFloor(), hyperfineFloor()]) if (r) rows.push(r);
  if (print) {
    printTable(`fork micro-benchmark — ${RUNS} runs after ${WARMUP} warm-up`, rows);
    console.log(`wrote ${writeResults("fork", { when: new Date().toISOString(), ...environment(), rows })}`);
  }
  return rows;
}

if (import.meta.main) forkBenchmark();
