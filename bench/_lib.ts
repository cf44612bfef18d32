/**
 * What the benchmarks share: rows and their statistics, timing a command line the same way for
 * every peer, loud skips, the hugetlb mount crun needs on this host, the one side-by-side table,
 * and the JSON under bench/results/. Nothing here installs anything.
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = dirname(dirname(fileURLToPath(import.meta.url)));

/** True with `--quick` (or HAKO_BENCH_QUICK=1): fewer runs, for development. */
export const QUICK: boolean = process.argv.includes("--quick") || process.env.HAKO_BENCH_QUICK === "1";

/** Bun's engine without GC/JIT helper threads (as hako needs it to fork). */
export const BUN_ENV: Readonly<Record<string, string>> = {
  BUN_JSC_useConcurrentGC: "0",
  BUN_JSC_numberOfGCMarkers: "1",
  BUN_JSC_useConcurrentJIT: "0",
  BUN_JSC_useParallelMarkingConstraintSolver: "0",
  BUN_JSC_useWarmUpMarkedBlocks: "0",
};

/** One row of the table: times in ms. */
export interface Row {
  /** Which measurement (start, seq1000, fork, cli). */
  section: string;
  name: string;
  medianMs: number;
  minMs: number;
  maxMs: number;
  runs: number;
  /** What the ms are (default: per run). */
  unit?: string;
  /** The row its section compares against. */
  baseline?: boolean;
  ratioToCrun?: number;
  ratioToBaseline?: number;
  note?: string;
}

/** Median, min and max of `times` (ms). */
export function stats(section: string, name: string, times: number[]): Row {
  const t = [...times].sort((a, b) => a - b);
  return { section, name, medianMs: t[Math.floor(t.length / 2)]!, minMs: t[0]!, maxMs: t.at(-1)!, runs: t.length };
}

/** The path of `cmd` on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Every skip, for the summary under the table. */
export const skipped: string[] = [];

/** Says loudly that a row is skipped (never a failure). */
export function skip(name: string, why: string): void {
  const line = `!!! SKIPPED ${name}: ${why}`;
  skipped.push(line);
  console.log(line);
}

/** Options for {@link timeCommand}. */
export interface CommandOptions {
  warmup: number;
  runs: number;
  /** Untimed cleanup after each run. */
  after?: (i: number) => void;
  env?: Record<string, string>;
}

/**
 * Times a command line `warmup + runs` times with the same spawnSync loop for every peer; a run
 * that exits non-zero skips the row (loudly) and returns undefined.
 */
export function timeCommand(
  section: string,
  name: string,
  argv: (i: number) => string[],
  o: CommandOptions,
): Row | undefined {
  let i = 0;
  const once = () => {
    const n = i++;
    const [cmd, ...args] = argv(n);
    const t = performance.now();
    const r = spawnSync(cmd!, args, {
      stdio: ["ignore", "ignore", "pipe"],
      env: o.env ? { ...process.env, ...o.env } : process.env,
    });
    const dt = performance.now() - t;
    o.after?.(n);
    if (r.status !== 0) throw new Error(`exit ${r.status ?? r.signal ?? r.error}: ${String(r.stderr ?? "").trim()}`);
    return dt;
  };
  try {
    for (let w = 0; w < o.warmup; w++) once();
    const times: number[] = [];
    for (let k = 0; k < o.runs; k++) times.push(once());
    return stats(section, name, times);
  } catch (e) {
    skip(name, `failed: ${(e as Error).message.slice(0, 300)}`);
    return undefined;
  }
}

/**
 * Runs `fn` with the v1 hugetlb hierarchy crun wants on this host mounted at
 * /sys/fs/cgroup/hugetlb, and always undoes it (when `fn` returns or its promise settles, and on
 * SIGINT/SIGTERM).
 */
export function withHugetlb<T>(fn: () => T): T {
  const dir = "/sys/fs/cgroup/hugetlb";
  // Mounted already (the host's own, or another benchmark's): used as it is. A directory there that
  // is not a mount (a run killed between its umount and rmdir) is mounted over, never used as it is:
  // crun would make its cgroups as plain directories on the tmpfs, left behind.
  const mountedThere = () =>
    readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === dir);
  if (mountedThere()) return fn();
  // (the hugetlb controller's v1 hierarchy id: 0 while none exists and cgroup2 may offer it)
  // (the hugetlb controller's v1 hierarchy id, 0 while none exists and cgroup2 may offer it, and
  // how many cgroups it has, the dying ones included)
  const hugetlbLine = () => {
    const m = /^hugetlb\s+(\d+)\s+(\d+)/m.exec(readFileSync("/proc/cgroups", "utf8"));
    return [Number(m?.[1] ?? 0), Number(m?.[2] ?? 0)] as const;
  };
  const hierarchy = () => hugetlbLine()[0];
  const before = hierarchy();
  let mounted = false, made = false;
  const undo = () => {
    if (mounted) {
      spawnSync("umount", [dir]);
      mounted = false;
      // A v1 hierarchy is destroyed at its umount only if it has no child cgroup then; crun's,
      // removed by its delete just before, may still be dying (here for ~1.5 s), and the hierarchy
      // would outlive its mount, mounted nowhere, keeping hugetlb from cgroup2 (seen: a systemd
      // started later mounted it again and made its slices there). Once it has no child left it is
      // mounted and unmounted again, which destroys it (asynchronously: a new mount before that
      // would make a new hierarchy).
      let tried = Date.now();
      for (const start = Date.now(); before === 0 && Date.now() - start < 5000;) {
        const [id, count] = hugetlbLine();
        if (id === 0 || mountedThere()) break;
        if (count === 1 && Date.now() - tried > 200) {
          if (spawnSync("mount", ["-t", "cgroup", "-o", "hugetlb", "cgroup", dir]).status === 0) {
            spawnSync("umount", [dir]);
          }
          tried = Date.now();
        }
        spawnSync("sleep", ["0.05"]);
      }
      if (before === 0 && hierarchy() !== 0) {
        console.log("!!! the hugetlb v1 hierarchy outlived its mount (a cgroup left in it?): see /proc/cgroups");
      }
    }
    if (made) {
      try {
        rmdirSync(dir);
      } catch { /* gone */ }
      made = false;
    }
  };
  const onSignal = () => {
    undo();
    process.exit(130);
  };
  const finish = () => {
    undo();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    if (!existsSync(dir)) {
      mkdirSync(dir);
      made = true;
    }
    mounted = spawnSync("mount", ["-t", "cgroup", "-o", "hugetlb", "cgroup", dir]).status === 0;
    if (!mounted) console.log("(could not mount the hugetlb hierarchy; crun may refuse)");
  } catch (e) {
    console.log(`(could not make ${dir}: ${(e as Error).message}; crun may refuse)`);
  }
  let result: T;
  try {
    result = fn();
  } catch (e) {
    finish();
    throw e;
  }
  // An async fn keeps the hierarchy until its promise settles.
  if (result instanceof Promise) return result.finally(finish) as T;
  finish();
  return result;
}

/** The runtime and versions, for the title and the JSON. */
export function environment(): Record<string, string | undefined> {
  const bun = join(ROOT, "node_modules/.bin/bun");
  return {
    arch: process.arch,
    cpus: String(navigator.hardwareConcurrency ?? "?"),
    kernel: spawnSync("uname", ["-r"], { encoding: "utf8" }).stdout?.trim(),
    deno: typeof Deno !== "undefined" ? Deno.version.deno : undefined,
    bun: existsSync(bun) ? spawnSync(bun, ["--version"], { encoding: "utf8" }).stdout?.trim() : undefined,
  };
}

/**
 * Fills the ratios (to `crunMs`, and to each section's baseline row) and prints one table.
 * @param crunMs crun's per-container median (start → exit), if measured.
 */
export function printTable(title: string, rows: Row[], crunMs?: number): void {
  const bases = new Map(rows.filter((r) => r.baseline).map((r) => [r.section, r]));
  for (const r of rows) {
    if (crunMs) r.ratioToCrun = r.medianMs / crunMs;
    const b = bases.get(r.section);
    if (b) r.ratioToBaseline = r.medianMs / b.medianMs;
  }
  const w = Math.max(4, ...rows.map((r) => r.name.length));
  const num = (n: number | undefined, d = 2) => (n === undefined ? "—" : n.toFixed(d)).padStart(9);
  console.log(`\n${title}`);
  console.log(
    `${"section".padEnd(8)} ${"what".padEnd(w)} ${"median ms".padStart(9)} ${"min".padStart(9)} ${"max".padStart(9)} ${
      "×crun".padStart(9)
    } ${"×base".padStart(9)}  runs`,
  );
  let section = "";
  for (const r of rows) {
    if (r.section !== section && section) console.log("");
    section = r.section;
    console.log(
      `${r.section.padEnd(8)} ${r.name.padEnd(w)} ${num(r.medianMs, r.medianMs < 1 ? 3 : 2)} ${
        num(r.minMs, r.minMs < 1 ? 3 : 2)
      } ${num(r.maxMs, r.maxMs < 1 ? 3 : 2)} ${num(r.ratioToCrun)} ${
        r.baseline ? "     base" : num(r.ratioToBaseline)
      }  ${r.runs}${r.note ? `  (${r.note})` : ""}`,
    );
  }
  console.log(
    "×crun: median over crun's start → exit median; ×base: over the section's base row (start, seqN: crun; " +
      "fork: Deno.Command; cli: the runtime's empty-file floor; oci-*, podman, ctr: runc)",
  );
}

/** Writes `data` to bench/results/<kind>-<date>.json; returns the path. */
export function writeResults(kind: string, data: unknown): string {
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${kind}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify(data, null, 2));
  return file;
}
