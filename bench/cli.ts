/**
 * CLI start benchmark (measurement 5): what a `hako` command costs over its runtime's own start.
 *
 *   - `bin/hako version` and `bin/hako ps` (Deno) against `deno run` of an empty file,
 *   - `dist/hako version` and `dist/hako ps` (the Bun binary from `npm run build`) against `bun` of
 *     an empty file,
 *   - the memory of one idle supervisor (`hako supervisor --idle 0` with no containers, in a temp
 *     HAKO_STATE_DIR): its PSS from /proc/PID/smaps_rollup a second after its socket appears, under
 *     Deno (`bin/hako`) and Bun (`dist/hako`). These rows hold MB, not ms (`unit`), Deno's the base.
 *     PSS shares a page among the processes that map it, and this benchmark runs under Deno: the
 *     Deno supervisor's PSS reads ~15 MB lower here than alone (where it is ~56 MB, Bun's ~44 MB).
 *     The note adds its private memory (unshared: the same either way) and RSS.
 *
 * The same spawnSync loop for all (3 warm-up + 30 runs; `--quick`: 10). A command that is missing
 * or exits non-zero (`ps` before it exists, no dist/hako) is skipped loudly. Target: within 10 ms
 * of the floor.
 * Run: node_modules/.bin/deno run -A --v8-flags=--single-threaded bench/cli.ts [--quick]
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
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
  writeResults,
} from "./_lib.ts";

const RUNS = QUICK ? 10 : 30;
const WARMUP = 3;

/** Runs the CLI benchmark; returns its rows (sections "cli-deno" and "cli-bun", the floors the base). */
export function cliBenchmark(print = true): Row[] {
  const rows: Row[] = [];
  const o = { warmup: WARMUP, runs: RUNS };
  const tmp = mkdtempSync(join(tmpdir(), "hako-bench-cli-"));
  try {
    const empty = join(tmp, "empty.ts");
    writeFileSync(empty, "");
    const add = (
      section: string,
      floor: Row | undefined,
      cmds: Array<[string, string[]]>,
      env?: Record<string, string>,
    ) => {
      if (floor) rows.push({ ...floor, baseline: true });
      for (const [name, argv] of cmds) {
        const r = timeCommand(section, name, () => argv, { ...o, ...(env ? { env } : {}) });
        if (!r) continue;
        if (floor) r.note = `+${(r.medianMs - floor.medianMs).toFixed(1)} ms over the floor`;
        rows.push(r);
      }
    };
    const deno = join(ROOT, "node_modules/.bin/deno");
    const hako = join(ROOT, "bin/hako");
    if (existsSync(deno)) {
      add("cli-deno", timeCommand("cli-deno", "floor: deno run empty.ts", () => [deno, "run", "-A", empty], o), [
        ["bin/hako version", [hako, "version"]],
        ["bin/hako ps", [hako, "ps"]],
      ]);
    } else skip("cli-deno", "node_modules/.bin/deno missing (npm ci)");
    const bun = join(ROOT, "node_modules/.bin/bun");
    const dist = join(ROOT, "dist/hako");
    const floor = existsSync(bun)
      ? timeCommand("cli-bun", "floor: bun empty.ts", () => [bun, empty], { ...o, env: { ...BUN_ENV } })
      : (skip("floor: bun", "node_modules/.bin/bun missing (npm ci)"), undefined);
    if (existsSync(dist)) {
      add("cli-bun", floor, [["dist/hako version", [dist, "version"]], ["dist/hako ps", [dist, "ps"]]]);
    } else {
      if (floor) rows.push({ ...floor, baseline: true });
      skip("dist/hako version, dist/hako ps", "dist/hako missing: make it with `npm run build`");
    }
    const mem = (name: string, cmd: string) => {
      const r = supervisorMemory(name, cmd, tmp);
      if (r) rows.push(r);
      return r;
    };
    const denoMem = existsSync(deno) ? mem("idle supervisor PSS MB, Deno (bin/hako)", hako) : undefined;
    if (denoMem) denoMem.baseline = true;
    if (existsSync(dist)) mem("idle supervisor PSS MB, Bun (dist/hako)", dist);
    else skip("idle supervisor, Bun", "dist/hako missing: make it with `npm run build`");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (print) {
    printTable(`CLI start benchmark — ${WARMUP} warm-up + ${RUNS} runs`, rows);
    console.log(`wrote ${writeResults("cli", { when: new Date().toISOString(), ...environment(), rows })}`);
  }
  return rows;
}

/** Samples of the idle supervisor's memory per runtime. */
const MEM_SAMPLES = QUICK ? 1 : 3;

/**
 * Starts `cmd supervisor --idle 0` in a temp state directory, waits for its socket and a second
 * more, reads its PSS and RSS, stops it (SIGTERM) and removes the directory; `MEM_SAMPLES` times.
 * A row in section "cli-mem" whose figures are MB (PSS), or undefined (skipped loudly).
 */
function supervisorMemory(name: string, cmd: string, tmp: string): Row | undefined {
  // A shell does the waiting, so the supervisor is its child and is reaped there whatever happens.
  const script = `
    d=$(mktemp -d "$TMP_ROOT/sup-XXXXXX") || exit 1
    HAKO_STATE_DIR=$d "$HAKO_CMD" supervisor --idle 0 >"$d.out" 2>&1 &
    pid=$!
    i=0
    while [ ! -S "$d/supervisor.sock" ] && [ $i -lt 400 ] && kill -0 $pid 2>/dev/null; do sleep 0.05; i=$((i+1)); done
    [ -S "$d/supervisor.sock" ] && sleep 1 && kill -0 $pid 2>/dev/null && grep -E '^(Rss|Pss|Private_Clean|Private_Dirty):' /proc/$pid/smaps_rollup
    ok=$?
    kill $pid 2>/dev/null; wait $pid
    [ $ok = 0 ] || { echo "supervisor did not start:"; tail -5 "$d.out"; }
    rm -rf "$d" "$d.out"
    exit $ok`;
  const pss: number[] = [], rss: number[] = [], uss: number[] = [];
  for (let i = 0; i < MEM_SAMPLES; i++) {
    const r = spawnSync("sh", ["-c", script], {
      encoding: "utf8",
      env: { ...process.env, TMP_ROOT: tmp, HAKO_CMD: cmd },
      timeout: 60_000,
    });
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(r.stdout ?? "")?.[1]);
    if (r.status !== 0 || !(kb("Pss") > 0)) {
      skip(name, `exit ${r.status ?? r.signal}: ${`${r.stdout ?? ""}${r.stderr ?? ""}`.trim().slice(-300)}`);
      return undefined;
    }
    pss.push(kb("Pss") / 1024);
    rss.push(kb("Rss") / 1024);
    uss.push((kb("Private_Clean") + kb("Private_Dirty")) / 1024);
  }
  const row = stats("cli-mem", name, pss);
  const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(1);
  return {
    ...row,
    unit: "MB (PSS)",
    note: `figures in MB: PSS ${row.medianMs.toFixed(1)}, private ${mid(uss)}, RSS ${mid(rss)}`,
  };
}

if (import.meta.main) cliBenchmark();
