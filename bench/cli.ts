/**
 * CLI start benchmark (measurement 5): what a `hako` command costs over its runtime's own start.
 *
 *   - `bin/hako version` and `bin/hako ps` (Deno) against `deno run` of an empty file,
 *   - `dist/hako version` and `dist/hako ps` (the Bun binary from `npm run build`) against `bun` of
 *     an empty file.
 *
 * The same spawnSync loop for all (3 warm-up + 30 runs; `--quick`: 10). A command that is missing
 * or exits non-zero (`ps` before it exists, no dist/hako) is skipped loudly. Target: within 10 ms
 * of the floor.
 * Run: node_modules/.bin/deno run -A --v8-flags=--single-threaded bench/cli.ts [--quick]
 * @module
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUN_ENV, environment, printTable, QUICK, ROOT, type Row, skip, timeCommand, writeResults } from "./_lib.ts";

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
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (print) {
    printTable(`CLI start benchmark — ${WARMUP} warm-up + ${RUNS} runs`, rows);
    console.log(`wrote ${writeResults("cli", { when: new Date().toISOString(), ...environment(), rows })}`);
  }
  return rows;
}

if (import.meta.main) cliBenchmark();
