/**
 * Sequential benchmark (measurement 3): N containers (default 1000; `--quick`: 100), one after
 * the other, running `/bin/true` in new pid/uts/ipc/mount/net namespaces and the shared busybox
 * rootfs:
 *
 *   - hako library: ONE Deno process doing `await run(spec)` N times (bench/start_lib.ts),
 *   - crun: N × `crun run` (the `crun delete` after each is untimed, as in bench/start.ts).
 *
 * Reports the total and the per-container median/min/max, then checks that nothing is left: no
 * cgroup of these containers (hako-bench*, the crun tag), no mount of the rootfs in the host's
 * mount table, no state directory (/run/hako/bench*, /run/crun/<tag>*), no process whose root is
 * the rootfs or that is still our child. A failed hako container is counted and reported (a
 * rare SIGSEGV of the forked child before it reports: see bench/NOTES.md), not fatal.
 *
 * Run (root): sudo node_modules/.bin/deno run -A --v8-flags=--single-threaded bench/seq.ts [--quick]
 * Env: HAKO_BENCH_SEQ_N (default 1000).
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { makeBundle } from "./bundle.ts";
import { benchRootfs } from "./start.ts";
import {
  environment,
  printTable,
  QUICK,
  ROOT,
  type Row,
  skip,
  stats,
  which,
  withHugetlb,
  writeResults,
} from "./_lib.ts";

const N = Number(process.env.HAKO_BENCH_SEQ_N ?? (QUICK ? 100 : 1000));
const SECTION = "seq" + N;

/** What was left behind; empty when clean. */
export function leftovers(rootfs: string, tag: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e);
      // ours only: other engineers' containers (hako-web-…) may come and go meanwhile
      if (e.startsWith("hako-bench") || e.startsWith(tag)) found.push(`cgroup ${p}`);
      else if (depth > 0 && !e.includes(".")) {
        try {
          if (readdirSync(p)) walk(p, depth - 1);
        } catch { /* a file */ }
      }
    }
  };
  walk("/sys/fs/cgroup", 2);
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    if (line.includes(rootfs) || line.includes(tag)) found.push(`mount ${line.split(" ")[4]}`);
  }
  const stateDirs: Array<[string, string]> = [["/run/hako", "bench"], ["/run/hako/containers", "bench"], [
    "/run/crun",
    tag,
  ]];
  for (const [dir, prefix] of stateDirs) {
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir)) if (e.startsWith(prefix)) found.push(`state ${join(dir, e)}`);
  }
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const root = readlinkSync(`/proc/${pid}/root`);
      if (ppid === process.pid || root === rootfs) found.push(`process ${pid} (${stat.split(" ")[1]}, root ${root})`);
    } catch { /* gone */ }
  }
  return found;
}

function check(name: string, rootfs: string, tag: string): string {
  const left = leftovers(rootfs, tag);
  const line = left.length
    ? `LEFT ${left.length}: ${left.slice(0, 5).join("; ")}`
    : "0 cgroups, mounts, state dirs, processes left";
  console.log(`  after ${name}: ${line}`);
  return line;
}

/** Runs the sequential benchmark; returns its rows (section "seqN", crun's the base). */
export function seqBenchmark(print = true): Row[] {
  if (process.getuid?.() !== 0) {
    skip("sequential benchmark", "needs root");
    return [];
  }
  const rootfs = benchRootfs();
  const tag = `hako-seq-${process.pid}`;
  const rows: Row[] = [];
  console.log(`sequential: ${N} containers each…`);
  const deno = join(ROOT, "node_modules/.bin/deno");
  if (existsSync(deno)) {
    const t = performance.now();
    const r = spawnSync(
      deno,
      [
        "run",
        "-A",
        "--v8-flags=--single-threaded",
        join(ROOT, "bench/start_lib.ts"),
        rootfs,
        "0",
        String(N),
        "--keep-going",
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 },
    );
    const wall = performance.now() - t;
    if (r.status === 0) {
      const { times, failures } = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
        times: number[];
        failures: string[];
      };
      const total = times.reduce((a, b) => a + b, 0);
      const row = stats(SECTION, `hako library, Deno: ${N} × run(spec)`, times);
      if (failures.length) {
        console.log(`!!! ${failures.length} of ${N} hako containers failed: ${failures.slice(0, 3).join("; ")}`);
      }
      row.note = `total ${(total / 1000).toFixed(2)} s in the loop, ${(wall / 1000).toFixed(2)} s with Deno's start; ${
        failures.length ? `${failures.length} FAILED; ` : ""
      }${check("hako", rootfs, tag)}`;
      rows.push(row);
    } else skip("hako sequential", `exit ${r.status}: ${(r.stderr ?? "").trim().slice(-400)}`);
  } else skip("hako sequential", "node_modules/.bin/deno missing (npm ci)");

  if (which("crun")) {
    let bundle: ReturnType<typeof makeBundle> | undefined;
    try {
      bundle = makeBundle(rootfs);
      const b = bundle.dir;
      withHugetlb(() => {
        const times: number[] = [];
        for (let i = 0; i < N; i++) {
          const t = performance.now();
          const r = spawnSync("crun", ["run", "-b", b, `${tag}-${i}`], { stdio: ["ignore", "ignore", "pipe"] });
          times.push(performance.now() - t);
          spawnSync("crun", ["delete", "-f", `${tag}-${i}`], { stdio: "ignore" });
          if (r.status !== 0) throw new Error(`crun run: exit ${r.status}: ${String(r.stderr).trim()}`);
        }
        const total = times.reduce((a, c) => a + c, 0);
        const row = stats(SECTION, `crun: ${N} × crun run`, times);
        row.baseline = true;
        row.note = `total ${(total / 1000).toFixed(2)} s (crun delete untimed); ${check("crun", rootfs, tag)}`;
        rows.push(row);
      });
    } catch (e) {
      skip("crun sequential", (e as Error).message.slice(0, 300));
    } finally {
      bundle?.dispose();
    }
  } else skip("crun sequential", "not installed (apt-get install crun)");
  if (print) {
    printTable(
      `sequential benchmark — ${N} containers one after another`,
      rows,
      rows.find((r) => r.baseline)?.medianMs,
    );
    console.log(`wrote ${writeResults("seq", { when: new Date().toISOString(), ...environment(), n: N, rows })}`);
  }
  return rows;
}

if (import.meta.main) seqBenchmark();
