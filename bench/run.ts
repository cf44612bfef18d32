/**
 * The benchmarks, side by side in ONE table (run: `sudo deno task bench [--quick] [--fleet] [--supervisor]`):
 *
 *   1. start → exit of /bin/true: hako library (Deno, Bun), hako CLI cold, crun, runc, bwrap,
 *      unshare (bench/start.ts),
 *   3. N sequential containers: hako library (one process) vs crun, then a leftover check
 *      (bench/seq.ts; N = 1000, `--quick`: 100),
 *   4. fork micro: hako fork/clone + exec + wait vs Deno.Command, spawnSync and a C-speed floor,
 *      and the MADV_DOFORK preparation per fork (bench/fork.ts),
 *   5. CLI start cost: `hako version` / `hako ps` vs the runtime's empty-file floor (bench/cli.ts),
 *   8. OCI runtime mode: each runc command cold (create, state, start, kill, delete, run) for runc,
 *      crun, hako compiled (dist/hako-runc) and hako's Deno entry (bin/hako-runc), `hako run SPEC`
 *      cold, and `podman run --rm` / `ctr run --rm` with hako against the same with runc
 *      (bench/oci.ts),
 *   2/6. fleet memory and fleet start: bench/fleet.ts, only with `--fleet` (it takes minutes),
 *   7. the supervisor: its memory with 100 containers and over 500 start/delete rounds, and how fast
 *      it answers meanwhile and while a container floods its log (bench/supervisor.ts), only with
 *      `--supervisor` (minutes too).
 *
 * Each measurement also runs alone (`deno run -A --v8-flags=--single-threaded bench/<name>.ts`).
 * `--quick` takes fewer runs; `--only=start,seq,fork,cli,oci` picks measurements. Missing peers are
 * skipped loudly; nothing is installed. Every row's median is also given as a ratio to crun's
 * start → exit median, and to its section's base row. JSON: bench/results/bench-<date>.json.
 * @module
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { cliBenchmark } from "./cli.ts";
import { forkBenchmark } from "./fork.ts";
import { ociBenchmark } from "./oci.ts";
import { seqBenchmark } from "./seq.ts";
import { startBenchmark } from "./start.ts";
import { supervisorBenchmark } from "./supervisor.ts";
import { environment, printTable, QUICK, ROOT, type Row, skipped, writeResults } from "./_lib.ts";

const only = process.argv.find((a) => a.startsWith("--only="))?.slice(7).split(",");
const want = (name: string) => !only || only.includes(name);
const fleet = process.argv.includes("--fleet");

const rows: Row[] = [];
const t0 = performance.now();
if (want("fork")) rows.push(...forkBenchmark(false));
if (want("start")) rows.push(...await startBenchmark(false));
if (want("seq")) rows.push(...seqBenchmark(false));
if (want("cli")) rows.push(...cliBenchmark(false));
if (want("oci")) rows.push(...await ociBenchmark(false));
if (process.argv.includes("--supervisor")) rows.push(...await supervisorBenchmark(false));

const crun = rows.find((r) => r.section === "start" && r.baseline)?.medianMs;
const env = environment();
printTable(
  `hako benchmarks${
    QUICK ? " (--quick)" : ""
  } — ${env.arch}, ${env.cpus} cpus, kernel ${env.kernel}, Deno ${env.deno}, ` +
    `Bun ${env.bun ?? "—"}; ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  rows,
  crun,
);
if (!crun) console.log("(no crun row: ×crun is empty)");
if (skipped.length) console.log(`\n${skipped.length} skipped:\n${skipped.join("\n")}`);
console.log(`wrote ${writeResults("bench", { when: new Date().toISOString(), ...env, quick: QUICK, rows, skipped })}`);

if (fleet) {
  console.log("\nfleet benchmark (measurements 2 and 6, bench/fleet.ts):");
  const r = spawnSync(
    join(ROOT, "node_modules/.bin/deno"),
    ["run", "-A", "--v8-flags=--single-threaded", join(ROOT, "bench/fleet.ts")],
    { stdio: "inherit" },
  );
  if (r.status !== 0) console.log(`!!! fleet benchmark exited ${r.status ?? r.signal}`);
} else {
  console.log(
    "\n(fleet memory and fleet start — measurements 2 and 6 — take minutes: add --fleet, or run " +
      "`sudo node_modules/.bin/deno run -A --v8-flags=--single-threaded bench/fleet.ts`)",
  );
}
