/**
 * Side-by-side benchmarks (run: `sudo deno task bench`). For now the fork micro-benchmark of the
 * Benchmarks issue: starting `/bin/true` and waiting for it, from one running Deno process,
 *
 *   - hako `Process.fork` + `exec` + `waitpid` (with the MADV_DOFORK preparation),
 *   - hako `Process.fork` into new pid/uts/ipc/mount/net namespaces (raw clone) + exec + wait,
 *   - `Deno.Command(...).outputSync()` and `node:child_process` `spawnSync`,
 *   - the preparation alone (`prepareFork()`: the madvise calls each fork pays),
 *
 * each with a warm-up and ≥ 30 runs, reporting median, min and max and the ratio to
 * `Deno.Command`. Results also go to bench/results/fork-<date>.json so runs can be compared. Then, as
 * root, the container start benchmark of bench/start.ts (hako vs crun, runc, bwrap, unshare).
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import process from "node:process";
import { Process } from "../mod.ts";
import { prepareFork } from "../ffi/fork.ts";

const RUNS = Number(process.env.HAKO_BENCH_RUNS ?? 200);
const WARMUP = 20;

interface Row {
  name: string;
  medianMs: number;
  minMs: number;
  maxMs: number;
  runs: number;
}

function measure(name: string, fn: () => void): Row {
  for (let i = 0; i < WARMUP; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { name, medianMs: times[Math.floor(times.length / 2)]!, minMs: times[0]!, maxMs: times.at(-1)!, runs: RUNS };
}

const isRoot = process.getuid?.() === 0;
const rows: Row[] = [
  measure("Deno.Command /bin/true", () => void new Deno.Command("/bin/true").outputSync()),
  measure("node:child_process spawnSync", () => void spawnSync("/bin/true")),
  measure("hako fork+exec+waitpid", () => {
    const pid = Process.fork(() => Process.exec(["/bin/true"]));
    Process.waitpid(pid);
  }),
  ...(isRoot
    ? [measure("hako clone(5 namespaces)+exec+wait", () => {
      const pid = Process.fork(
        { namespaces: ["pid", "uts", "ipc", "mount", "net"] },
        () => Process.exec(["/bin/true"]),
      );
      Process.waitpid(pid);
    })]
    : []),
  measure("prepareFork() alone (MADV_DOFORK)", () => prepareFork()),
];

const base = rows[0]!.medianMs;
const pad = (s: string, n: number) => s.padEnd(n);
console.log(`fork micro-benchmark — ${RUNS} runs after ${WARMUP} warm-up, ${process.arch}, Deno ${Deno.version.deno}`);
console.log(`${pad("what", 40)} ${pad("median", 9)} ${pad("min", 9)} ${pad("max", 9)} ratio to Deno.Command`);
for (const r of rows) {
  console.log(
    `${pad(r.name, 40)} ${pad(r.medianMs.toFixed(3), 9)} ${pad(r.minMs.toFixed(3), 9)} ${pad(r.maxMs.toFixed(3), 9)} ${
      (r.medianMs / base).toFixed(2)
    }`,
  );
}
if (!isRoot) console.log("(skipped the namespace row: needs root)");
const dir = new URL("./results/", import.meta.url);
mkdirSync(dir, { recursive: true });
const file = new URL(`fork-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, dir);
writeFileSync(
  file,
  JSON.stringify({ when: new Date().toISOString(), arch: process.arch, deno: Deno.version.deno, rows }, null, 2),
);
console.log(`wrote ${file.pathname}`);

// Measurement 1: container start → exit side by side (bench/start.ts); it skips missing peers itself.
if (isRoot) {
  try {
    const { startBenchmark } = await import("./start.ts");
    await startBenchmark();
  } catch (e) {
    console.log(`!!! start benchmark failed: ${(e as Error).message}`);
  }
} else console.log("(skipped the start benchmark: needs root)");
