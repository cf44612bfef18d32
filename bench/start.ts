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
 * Command-line rows: the same spawnSync loop for all (warm-up, then ≥ 30 runs), timed with
 * performance.now(). Reports median/min/max and the ratio to crun; JSON to
 * bench/results/start-<date>.json. A missing peer is skipped with a loud line, never a failure.
 *
 * crun refuses a host whose cgroup2 holds hugetlb while /sys/fs/cgroup/hugetlb is missing: for its
 * row only, this mounts a v1 hugetlb hierarchy there and always undoes it (finally + SIGINT/SIGTERM).
 *
 * Run (root): sudo node_modules/.bin/deno run -A --v8-flags=--single-threaded bench/start.ts
 *   (or `sudo deno task bench`, which runs it after the fork micro-benchmark).
 * Env: HAKO_BENCH_ROOTFS (default /var/lib/hako/images/bench), HAKO_BENCH_START_RUNS (default 30).
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { buildRootfs } from "../src/container/rootfs.ts";
import { makeBundle } from "./bundle.ts";
import { benchSpec, libraryTimes } from "./start_lib.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const RUNS = Math.max(30, Number(process.env.HAKO_BENCH_START_RUNS ?? 30));
const WARMUP = 3;

/** One row of the table. */
export interface StartRow {
  name: string;
  medianMs: number;
  minMs: number;
  maxMs: number;
  runs: number;
  ratioToCrun?: number;
}

function stats(name: string, times: number[]): StartRow {
  const t = [...times].sort((a, b) => a - b);
  return { name, medianMs: t[Math.floor(t.length / 2)]!, minMs: t[0]!, maxMs: t.at(-1)!, runs: t.length };
}

function which(cmd: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function skip(name: string, why: string): void {
  console.log(`!!! SKIPPED ${name}: ${why}`);
}

/** Times a command line `WARMUP + RUNS` times; `after` (untimed) cleans up each run. */
function cli(name: string, argv: (i: number) => string[], after?: (i: number) => void, env?: Record<string, string>) {
  let i = 0;
  const once = () => {
    const n = i++;
    const [cmd, ...args] = argv(n);
    const t = performance.now();
    const r = spawnSync(cmd!, args, {
      stdio: ["ignore", "ignore", "pipe"],
      env: env ? { ...process.env, ...env } : process.env,
    });
    const dt = performance.now() - t;
    after?.(n);
    if (r.status !== 0) throw new Error(`exit ${r.status ?? r.signal ?? r.error}: ${String(r.stderr ?? "").trim()}`);
    return dt;
  };
  try {
    for (let w = 0; w < WARMUP; w++) once();
    const times: number[] = [];
    for (let k = 0; k < RUNS; k++) times.push(once());
    return stats(name, times);
  } catch (e) {
    skip(name, `failed: ${(e as Error).message}`);
    return undefined;
  }
}

/** Mounts the v1 hugetlb hierarchy crun wants while `fn` runs, and always undoes it. */
function withHugetlb<T>(fn: () => T): T {
  const dir = "/sys/fs/cgroup/hugetlb";
  if (existsSync(dir)) return fn();
  let mounted = false, made = false;
  const undo = () => {
    if (mounted) spawnSync("umount", [dir]), mounted = false;
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
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    try {
      mkdirSync(dir);
      made = true;
      mounted = spawnSync("mount", ["-t", "cgroup", "-o", "hugetlb", "cgroup", dir]).status === 0;
      if (!mounted) console.log("(could not mount the hugetlb hierarchy; crun may refuse)");
    } catch (e) {
      console.log(`(could not make ${dir}: ${(e as Error).message}; crun may refuse)`);
    }
    return fn();
  } finally {
    undo();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Runs the start benchmark, prints the table, writes the JSON; returns the rows. */
export async function startBenchmark(): Promise<StartRow[]> {
  if (process.getuid?.() !== 0) {
    skip("start benchmark", "needs root");
    return [];
  }
  const rootfsDir = process.env.HAKO_BENCH_ROOTFS ?? "/var/lib/hako/images/bench";
  let rootfs: string;
  try {
    rootfs = buildRootfs(rootfsDir, { builder: "busybox" }).path;
  } catch {
    rootfs = buildRootfs(rootfsDir, { builder: "auto" }).path;
  }
  const rows: StartRow[] = [];
  const push = (r: StartRow | undefined) => r && rows.push(r);
  const tmp = mkdtempSync(join(tmpdir(), "hako-bench-start-"));
  let bundle: ReturnType<typeof makeBundle> | undefined;
  try {
    // 1. library mode
    try {
      push(stats("hako library, Deno (await run)", await libraryTimes(rootfs, WARMUP, RUNS)));
    } catch (e) {
      skip("hako library, Deno", (e as Error).message);
    }
    const bun = join(ROOT, "node_modules/.bin/bun");
    const bunEnv = { BUN_JSC_useConcurrentGC: "0", BUN_JSC_numberOfGCMarkers: "1", BUN_JSC_useConcurrentJIT: "0" };
    if (existsSync(bun)) {
      const r = spawnSync(bun, [join(ROOT, "bench/start_lib.ts"), rootfs, String(WARMUP), String(RUNS)], {
        encoding: "utf8",
        env: { ...process.env, ...bunEnv },
        stdio: ["ignore", "pipe", "pipe"],
      });
      if (r.status === 0) push(stats("hako library, Bun (await run)", JSON.parse(r.stdout.trim().split("\n").at(-1)!)));
      else skip("hako library, Bun", `exit ${r.status}: ${r.stderr.trim().slice(-400)}`);
    } else skip("hako library, Bun", "node_modules/.bin/bun missing");

    // 2. CLI cold
    const specFile = join(tmp, "spec.ts");
    writeFileSync(
      specFile,
      `export default () => (${JSON.stringify({ ...benchSpec(rootfs, "bench-cli"), stdio: "inherit" })});\n`,
    );
    push(cli("bin/hako run (cold, Deno)", () => [join(ROOT, "bin/hako"), "run", specFile]));
    const dist = join(ROOT, "dist/hako");
    if (!existsSync(dist)) spawnSync("bash", [join(ROOT, "tools/build.sh")], { stdio: "inherit" });
    if (existsSync(dist)) push(cli("dist/hako run (cold, Bun binary)", () => [dist, "run", specFile]));
    else skip("dist/hako", "missing and tools/build.sh did not make it");

    // 3. peers
    const tag = `hako-bench-${process.pid}`;
    try {
      bundle = makeBundle(rootfs);
    } catch (e) {
      skip("crun, runc", `no OCI bundle: ${(e as Error).message}`);
    }
    if (bundle && which("crun")) {
      const b = bundle.dir;
      push(withHugetlb(() =>
        cli(
          "crun run",
          (i) => ["crun", "run", "-b", b, `${tag}-crun-${i}`],
          (i) => void spawnSync("crun", ["delete", "-f", `${tag}-crun-${i}`], { stdio: "ignore" }),
        )
      ));
    } else skip("crun", "not installed (apt-get install crun)");
    if (bundle && which("runc")) {
      const b = bundle.dir;
      push(cli(
        "runc run",
        (i) => ["runc", "run", "-b", b, `${tag}-runc-${i}`],
        (i) => void spawnSync("runc", ["delete", "-f", `${tag}-runc-${i}`], { stdio: "ignore" }),
      ));
    } else skip("runc", "not installed (apt-get install runc)");
    if (which("bwrap")) {
      push(cli("bwrap (pid,uts,ipc,net,mount)", () => [
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
      ]));
    } else skip("bwrap", "not installed (apt-get install bubblewrap)");
    if (which("unshare")) {
      push(
        cli("unshare -pfmuin + chroot", () => [
          "unshare",
          "-pfmuin",
          `--mount-proc=${rootfs}/proc`,
          "chroot",
          rootfs,
          "/bin/true",
        ]),
      );
    } else skip("unshare", "not installed (util-linux)");

    // 4. the floor
    const empty = join(tmp, "empty.ts");
    writeFileSync(empty, "");
    const deno = join(ROOT, "node_modules/.bin/deno");
    if (existsSync(deno)) push(cli("floor: deno run empty.ts", () => [deno, "run", "-A", empty]));
    else skip("floor: deno", "node_modules/.bin/deno missing");
    if (existsSync(bun)) push(cli("floor: bun empty.ts", () => [bun, empty], undefined, bunEnv));
    else skip("floor: bun", "node_modules/.bin/bun missing");
  } finally {
    bundle?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }

  const crun = rows.find((r) => r.name === "crun run");
  for (const r of rows) if (crun) r.ratioToCrun = r.medianMs / crun.medianMs;
  const pad = (s: string, n: number) => s.padEnd(n);
  const bunVersion = spawnSync(join(ROOT, "node_modules/.bin/bun"), ["--version"], { encoding: "utf8" }).stdout?.trim();
  console.log(
    `\nstart benchmark — /bin/true in new pid/uts/ipc/mount/net namespaces, ${WARMUP} warm-up + ${RUNS} runs, ` +
      `Deno ${Deno.version.deno}, Bun ${bunVersion ?? "?"}`,
  );
  console.log(`${pad("what", 36)} ${pad("median ms", 10)} ${pad("min", 9)} ${pad("max", 9)} ratio to crun`);
  for (const r of rows) {
    console.log(
      `${pad(r.name, 36)} ${pad(r.medianMs.toFixed(2), 10)} ${pad(r.minMs.toFixed(2), 9)} ${
        pad(r.maxMs.toFixed(2), 9)
      } ${r.ratioToCrun?.toFixed(2) ?? "—"}`,
    );
  }
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `start-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      { when: new Date().toISOString(), arch: process.arch, deno: Deno.version.deno, bun: bunVersion, rootfs, rows },
      null,
      2,
    ),
  );
  console.log(`wrote ${file}`);
  return rows;
}

if (import.meta.main) await startBenchmark();
