/**
 * Start benchmark (measurement 1 of the benchmark plan): container start → exit of `/bin/true`
 * with new pid, uts, ipc, mount and net namespaces and pivot_root (chroot for `unshare`) into ONE
 * shared busybox rootfs (built by `buildRootfs`), side by side:
 *
 *   - hako library mode: `await run(spec)` per container from one running Deno process (and Bun),
 *   - hako CLI cold: `bin/hako run SPEC` and `dist/hako run SPEC` as fresh processes,
 *   - `crun run`, `runc run` (one OCI bundle, bench/bundle.ts), `bwrap`, `unshare … chroot`,
 *   - the floor: `deno run` and `bun` of an empty file.
 *
 * Command-line rows: the same spawnSync loop for all (warm-up, then ≥ 30 runs; `--quick`: 10),
 * timed with performance.now(). Reports median/min/max and the ratio to crun; JSON to
 * bench/results/start-<date>.json. A missing peer is skipped with a loud line, never a failure;
 * nothing is installed or built (`dist/hako` comes from `npm run build`).
 *
 * crun refuses a host whose cgroup2 holds hugetlb while /sys/fs/cgroup/hugetlb is missing: for its
 * row only, this mounts a v1 hugetlb hierarchy there and always undoes it (finally + SIGINT/SIGTERM).
 *
 * Run (root): sudo node_modules/.bin/deno run -A --v8-flags=--single-threaded bench/start.ts [--quick]
 *   (or `sudo deno task bench`, which runs it with the other measurements in one table).
 * Env: HAKO_BENCH_ROOTFS (default /var/lib/hako/images/bench), HAKO_BENCH_START_RUNS (default 30).
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { buildRootfs } from "../src/container/rootfs.ts";
import { makeBundle } from "./bundle.ts";
import { benchSpec, libraryTimes } from "./start_lib.ts";
import {
  BUN_ENV,
  environment,
  printTable,
  QUICK,
  ROOT,
  type Row,
  skip,
  stats,
  timeCommand,
  which,
  withHugetlb,
  writeResults,
} from "./_lib.ts";

const RUNS = QUICK ? 10 : Math.max(30, Number(process.env.HAKO_BENCH_START_RUNS ?? 30));
const WARMUP = 3;
const SECTION = "start";

/** The shared busybox rootfs of the container benchmarks (built once, a cache). */
export function benchRootfs(): string {
  const rootfsDir = process.env.HAKO_BENCH_ROOTFS ?? "/var/lib/hako/images/bench";
  try {
    return buildRootfs(rootfsDir, { builder: "busybox" }).path;
  } catch {
    return buildRootfs(rootfsDir, { builder: "auto" }).path;
  }
}

/**
 * Runs the start benchmark; returns its rows (section "start", crun's row the base).
 * @param print Print its own table and write bench/results/start-<date>.json (when run alone).
 */
export async function startBenchmark(print = true): Promise<Row[]> {
  if (process.getuid?.() !== 0) {
    skip("start benchmark", "needs root");
    return [];
  }
  const rootfs = benchRootfs();
  const rows: Row[] = [];
  const push = (r: Row | undefined) => r && rows.push(r);
  const o = { warmup: WARMUP, runs: RUNS };
  const tmp = mkdtempSync(join(tmpdir(), "hako-bench-start-"));
  let bundle: ReturnType<typeof makeBundle> | undefined;
  try {
    // library mode: a fresh process per runtime, so this process's heap does not weigh on the fork
    const deno = join(ROOT, "node_modules/.bin/deno");
    const bun = join(ROOT, "node_modules/.bin/bun");
    const lib = join(ROOT, "bench/start_lib.ts");
    const library = (name: string, cmd: string, args: string[], env: Record<string, string> = {}) => {
      const r = spawnSync(cmd, [...args, lib, rootfs, String(WARMUP), String(RUNS)], {
        encoding: "utf8",
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      if (r.status === 0) push(stats(SECTION, name, JSON.parse(r.stdout.trim().split("\n").at(-1)!)));
      else skip(name, `exit ${r.status}: ${(r.stderr ?? "").trim().slice(-400)}`);
    };
    if (existsSync(deno)) {
      library("hako library, Deno (await run)", deno, ["run", "-A", "--v8-flags=--single-threaded"]);
    } else {
      try {
        push(stats(SECTION, "hako library, Deno (await run)", await libraryTimes(rootfs, WARMUP, RUNS)));
      } catch (e) {
        skip("hako library, Deno", (e as Error).message);
      }
    }
    if (existsSync(bun)) library("hako library, Bun (await run)", bun, [], BUN_ENV);
    else skip("hako library, Bun", "node_modules/.bin/bun missing (npm ci)");

    // CLI cold
    const specFile = join(tmp, "spec.ts");
    writeFileSync(
      specFile,
      `export default () => (${JSON.stringify({ ...benchSpec(rootfs, "bench-cli"), stdio: "inherit" })});\n`,
    );
    push(timeCommand(SECTION, "bin/hako run (cold, Deno)", () => [join(ROOT, "bin/hako"), "run", specFile], o));
    const dist = join(ROOT, "dist/hako");
    if (existsSync(dist)) {
      push(timeCommand(SECTION, "dist/hako run (cold, Bun binary)", () => [dist, "run", specFile], o));
    } else skip("dist/hako run", "dist/hako missing: make it with `npm run build`");

    // peers
    const tag = `hako-bench-${process.pid}`;
    try {
      bundle = makeBundle(rootfs);
    } catch (e) {
      skip("crun, runc", `no OCI bundle: ${(e as Error).message}`);
    }
    if (bundle && which("crun")) {
      const b = bundle.dir;
      const crun = withHugetlb(() =>
        timeCommand(SECTION, "crun run", (i) => ["crun", "run", "-b", b, `${tag}-crun-${i}`], {
          ...o,
          after: (i) => void spawnSync("crun", ["delete", "-f", `${tag}-crun-${i}`], { stdio: "ignore" }),
        })
      );
      if (crun) push({ ...crun, baseline: true });
    } else skip("crun", "not installed (apt-get install crun)");
    if (bundle && which("runc")) {
      const b = bundle.dir;
      push(timeCommand(SECTION, "runc run", (i) => ["runc", "run", "-b", b, `${tag}-runc-${i}`], {
        ...o,
        after: (i) => void spawnSync("runc", ["delete", "-f", `${tag}-runc-${i}`], { stdio: "ignore" }),
      }));
    } else skip("runc", "not installed (apt-get install runc)");
    if (which("bwrap")) {
      push(timeCommand(SECTION, "bwrap (pid,uts,ipc,net,mount)", () => [
        "bwrap",
        "--unshare-pid",
        "--unshare-uts",
        "--unshare-ipc",
        "--unshare-net",
        "--bind",
        rootfs,
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "/bin/true",
      ], o));
    } else skip("bwrap", "not installed (apt-get install bubblewrap)");
    if (which("unshare")) {
      push(timeCommand(SECTION, "unshare -pfmuin + chroot", () => [
        "unshare",
        "-pfmuin",
        `--mount-proc=${rootfs}/proc`,
        "chroot",
        rootfs,
        "/bin/true",
      ], o));
    } else skip("unshare", "not installed (util-linux)");
  } finally {
    bundle?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
  if (print) {
    const crun = rows.find((r) => r.baseline);
    printTable(
      `start benchmark — /bin/true in new pid/uts/ipc/mount/net namespaces, ${WARMUP} warm-up + ${RUNS} runs`,
      rows,
      crun?.medianMs,
    );
    console.log(`wrote ${writeResults("start", { when: new Date().toISOString(), ...environment(), rootfs, rows })}`);
  }
  return rows;
}

if (import.meta.main) await startBenchmark();
