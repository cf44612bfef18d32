/**
 * Supervisor benchmark: what the one supervisor costs and how it answers.
 *
 *   - memory: the supervisor's PSS (and its anonymous memory) idle, with N containers running (busybox `sleep`; their log
 *     relays' PSS is given apart: they are processes of their own), and over M start/delete rounds
 *     through the one supervisor (the PSS after a warm-up, the peak, the last; flat means the last
 *     is within 10% of the first);
 *   - latency under a flood: ping round trips to the supervisor (median, p95, max) while a
 *     container runs `yes` for S seconds, and the largest its log's two parts got on disk (the cap
 *     is HAKO_LOG_MAX, 1 MiB).
 *
 * Everything goes through a supervisor of its own state directory, started like `hako start`
 * starts one (`bin/hako supervisor --idle 0 --log …`, Deno; `--bun`: `bun src/cli/main.ts`), and is
 * torn down after. JSON goes to bench/results/supervisor-<date>.json; `bench/run.ts --supervisor`
 * adds its two rows (the ping round trips) to the one table.
 *
 * Run (root): sudo node_modules/.bin/deno run -A --v8-flags=--single-threaded bench/supervisor.ts [--quick] [--bun]
 * Env: HAKO_BENCH_SUP_N (default 100; --quick 20), HAKO_BENCH_SUP_ROUNDS (500; --quick 100),
 * HAKO_BENCH_SUP_FLOOD_S (20; --quick 5).
 * @module
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { BUN_ENV, environment, printTable, QUICK, ROOT, type Row, skip, stats, writeResults } from "./_lib.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { StateStore } from "../src/container/state.ts";
import { deleteContainer } from "../src/container/lifecycle.ts";
import { SupervisorClient } from "../src/supervisor/client.ts";
import { LineReader } from "../src/supervisor/protocol.ts";
import { createConnection } from "node:net";

const BUN = process.argv.includes("--bun");
const N = Number(process.env.HAKO_BENCH_SUP_N ?? (QUICK ? 20 : 100));
const ROUNDS = Number(process.env.HAKO_BENCH_SUP_ROUNDS ?? (QUICK ? 100 : 500));
const FLOOD_S = Number(process.env.HAKO_BENCH_SUP_FLOOD_S ?? (QUICK ? 5 : 20));

/** A field of a process's /proc/PID/smaps_rollup in kB, 0 when it is gone. */
function rollupKb(pid: number, field: string): number {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** PSS of a process in kB (its share of shared pages: it moves as other processes map the same binary). */
const pssKb = (pid: number) => rollupKb(pid, "Pss");
/**
 * Its anonymous memory in kB (heaps, stacks: what it allocated, not the runtime's binary, whose
 * pages count in PSS as shared or not depending on which other processes run the same runtime).
 */
const anonKb = (pid: number) => rollupKb(pid, "Anonymous");

const mib = (kb: number) => (kb / 1024).toFixed(1);
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** The bench's own supervisor on `state`. */
async function startSupervisor(state: string): Promise<number> {
  const log = openSync(join(state, "..", "supervisor.out"), "a");
  const [cmd, args] = BUN
    ? [join(ROOT, "node_modules/.bin/bun"), [join(ROOT, "src/cli/main.ts")]]
    : [join(ROOT, "bin/hako"), []];
  const p = spawn(cmd, [...args, "supervisor", "--idle", "0", "--log", join(state, "supervisor.log")], {
    env: { ...process.env, HAKO_STATE_DIR: state, ...(BUN ? BUN_ENV : {}) },
    stdio: ["ignore", log, log],
    detached: true,
  });
  p.unref();
  const store = new StateStore(state);
  for (let i = 0; i < 600; i++) {
    try {
      const [pid] = readFileSync(store.file("supervisor.pid"), "utf8").split(" ").map(Number);
      const c = await SupervisorClient.connect(store, { start: false });
      c.close();
      return pid!;
    } catch {
      await sleep(50);
    }
  }
  throw new Error("the supervisor did not start");
}

/**
 * Pings every `everyMs` for `ms` (or until `stop()`); `stop()` (or the end) resolves with the
 * sorted round trips in ms (Infinity: unanswered).
 */
function pings(sockPath: string, ms: number, everyMs = 50): Promise<number[]> & { stop(): Promise<number[]> } {
  let stopped = false;
  const done = (async () => {
    const s = createConnection(sockPath);
    await new Promise<void>((res, rej) => (s.once("connect", () => res()), s.once("error", rej)));
    const reader = new LineReader();
    const sent = new Map<number, number>();
    const rtts: number[] = [];
    s.on("data", (b: Uint8Array) => {
      for (const l of reader.push(b)) {
        const id = (JSON.parse(l) as { id: number }).id;
        const t = sent.get(id);
        if (t !== undefined) (rtts.push(performance.now() - t), sent.delete(id));
      }
    });
    const end = Date.now() + ms;
    for (let id = 1; Date.now() < end && !stopped; id++) {
      sent.set(id, performance.now());
      s.write(JSON.stringify({ id, op: "ping" }) + "\n");
      await sleep(everyMs);
    }
    await sleep(1000);
    s.destroy();
    return [...rtts, ...[...sent.values()].map(() => Infinity)].sort((a, b) => a - b);
  })();
  return Object.assign(done, {
    stop: () => {
      stopped = true;
      return done;
    },
  });
}

const pct = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

/**
 * Runs the benchmark; prints what it measured (and, with `table`, its rows in a table of their
 * own), writes the JSON, and returns the rows for bench/run.ts's table: the ping round trips
 * during the churn and during the flood (memory is in their notes). None when skipped.
 */
export async function supervisorBenchmark(table = true): Promise<Row[]> {
  if (process.getuid?.() !== 0) return (skip("supervisor benchmark", "needs root"), []);
  if (!findStaticBusybox()) return (skip("supervisor benchmark", "needs a static busybox"), []);
  const base = mkdtempSync(join(tmpdir(), "hako-bench-sup-"));
  chmodSync(base, 0o755);
  const state = join(base, "state");
  const rootfs = join(base, "rootfs");
  buildRootfs(rootfs, { builder: "busybox" });
  const store = new StateStore(state);
  store.prepare();
  const spec = (name: string, command: string[]) => ({
    name,
    rootfs,
    command,
    cgroup: { name: `hako-bench-${name}`, pids: { max: 16 } },
  });
  let sup: number | undefined;
  const names = new Set<string>();
  const result: Record<string, unknown> = { runtime: BUN ? "bun" : "deno", n: N, rounds: ROUNDS, floodS: FLOOD_S };
  try {
    sup = await startSupervisor(state);
    const client = await SupervisorClient.connect(store, { start: false });
    const start = async (name: string, command = ["sleep", "3600"]) => {
      const r = await client.request({ op: "start", spec: spec(name, command) });
      if (!r.ok) throw new Error(`start ${name}: ${r.error?.message}`);
      names.add(name);
    };
    const remove = async (name: string) => {
      await deleteContainer(name, { force: true, store });
      names.delete(name);
    };
    const anon: Record<string, number> = {};
    const settle = async (what: string) => {
      await sleep(2500); // the supervisor collects garbage 1 s after a burst of starts
      anon[what] = anonKb(sup!);
      return pssKb(sup!);
    };

    // Memory: idle, N running, after they are gone.
    const idleKb = await settle("idle");
    const t0 = performance.now();
    await Promise.all(Array.from({ length: N }, (_, i) => start(`sup-${i}`)));
    const startAllMs = performance.now() - t0;
    const runningKb = await settle("running");
    const relayPids = [...names].map((n) => Number(readFileSync(store.logRelayPath(n), "utf8").split(" ")[0]));
    const relaysKb = relayPids.reduce((s, p) => s + pssKb(p), 0);
    await Promise.all([...names].map(remove));
    const afterKb = await settle("afterFleet");
    console.log(
      `supervisor PSS: idle ${mib(idleKb)} MiB; ${N} running ${mib(runningKb)} MiB (their ${relayPids.length} ` +
        `relays ${mib(relaysKb)} MiB together, ${(relaysKb / relayPids.length).toFixed(0)} kB each); ` +
        `all deleted ${mib(afterKb)} MiB; started in ${startAllMs.toFixed(0)} ms`,
    );
    console.log(
      `  (anonymous: idle ${mib(anon.idle!)} MiB, ${N} running ${mib(anon.running!)} MiB, deleted ${
        mib(anon.afterFleet!)
      } MiB)`,
    );
    Object.assign(result, { idleKb, runningKb, relaysKb, afterFleetKb: afterKb, startAllMs });

    // Churn: ROUNDS start/delete rounds one after another. The first tenth warms up (code paths
    // run for the first time, lazily loaded modules); PSS settled after them, sampled every tenth
    // (the peak), and settled at the end; pings meanwhile.
    const samples: number[] = [];
    const every = Math.max(1, Math.floor(ROUNDS / 10));
    const round = async (i: number) => {
      await start(`churn-${i}`);
      await remove(`churn-${i}`);
    };
    for (let i = 0; i < every; i++) await round(i);
    const firstKb = await settle("churnFirst");
    const c0 = performance.now();
    const churnPings = pings(store.file("supervisor.sock"), Infinity);
    for (let i = every; i < ROUNDS; i++) {
      await round(i);
      if ((i + 1) % every === 0) samples.push(pssKb(sup));
    }
    const churnMs = performance.now() - c0;
    const churnRtts = await churnPings.stop();
    const lastKb = await settle("churnLast");
    const peakKb = Math.max(...samples);
    console.log(
      `${ROUNDS} start/delete rounds (${
        (churnMs / (ROUNDS - every)).toFixed(0)
      } ms each): PSS settled after ${every} ` +
        `${mib(firstKb)} MiB, peak ${mib(peakKb)} MiB, settled after ${ROUNDS} ${mib(lastKb)} MiB ` +
        `(${((lastKb / firstKb - 1) * 100).toFixed(1)}%); samples ${samples.map(mib).join(" ")}; ` +
        `pings meanwhile: median ${pct(churnRtts, 0.5).toFixed(1)} ms, p95 ${pct(churnRtts, 0.95).toFixed(1)} ms, ` +
        `max ${churnRtts.at(-1)!.toFixed(1)} ms`,
    );
    console.log(
      `  (anonymous: settled after ${every} ${mib(anon.churnFirst!)} MiB, after ${ROUNDS} ${mib(anon.churnLast!)} MiB)`,
    );
    Object.assign(result, {
      anonymousKb: anon,
      churnSamplesKb: samples,
      churnFirstKb: firstKb,
      churnPeakKb: peakKb,
      churnLastKb: lastKb,
      churnPingMedianMs: pct(churnRtts, 0.5),
      churnPingP95Ms: pct(churnRtts, 0.95),
      churnPingMaxMs: churnRtts.at(-1),
    });

    // Latency under a flood.
    const dir = store.dir("flood");
    await start("flood", ["yes"]);
    let maxDisk = 0;
    const sampler = setInterval(() => {
      let n = 0;
      for (const f of ["log", "log.1"]) {
        try {
          n += statSync(join(dir, f)).blocks * 512;
        } catch { /* mid-cut */ }
      }
      maxDisk = Math.max(maxDisk, n);
    }, 5);
    const rtts = await pings(store.file("supervisor.sock"), FLOOD_S * 1000);
    clearInterval(sampler);
    await remove("flood");
    console.log(
      `${FLOOD_S} s of \`yes\`: ${rtts.length} pings, median ${pct(rtts, 0.5).toFixed(1)} ms, p95 ${
        pct(rtts, 0.95).toFixed(1)
      } ms, max ${rtts.at(-1)!.toFixed(1)} ms; the log at most ${(maxDisk / 2 ** 20).toFixed(2)} MiB on disk`,
    );
    Object.assign(result, {
      floodPingMedianMs: pct(rtts, 0.5),
      floodPingP95Ms: pct(rtts, 0.95),
      floodPingMaxMs: rtts.at(-1),
      floodMaxDiskBytes: maxDisk,
    });
    client.close();
    const runtime = BUN ? "Bun" : "Deno";
    const rows: Row[] = [
      {
        ...stats("supervisor", `${runtime} supervisor: ping during ${ROUNDS - every} start/delete rounds`, churnRtts),
        note: `PSS settled ${mib(firstKb)} → ${mib(lastKb)} MiB, peak ${mib(peakKb)}; ${N} running: ${
          mib(runningKb)
        } MiB (+ relays ${mib(relaysKb)})`,
      },
      {
        ...stats("supervisor", `${runtime} supervisor: ping during ${FLOOD_S} s of \`yes\``, rtts),
        note: `the log at most ${(maxDisk / 2 ** 20).toFixed(2)} MiB on disk, cap 2 × 1 MiB`,
      },
    ];
    if (table) printTable(`supervisor benchmark (${runtime})`, rows);
    const file = writeResults("supervisor", {
      when: new Date().toISOString(),
      ...environment(),
      quick: QUICK,
      ...result,
      rows,
    });
    console.log(`wrote ${file}`);
    return rows;
  } finally {
    for (const n of names) await deleteContainer(n, { force: true, store }).catch(() => {});
    if (sup) {
      try {
        process.kill(sup, "SIGKILL");
      } catch { /* gone */ }
    }
    await sleep(500);
    rmSync(base, { recursive: true, force: true });
  }
}

if (import.meta.main) await supervisorBenchmark();
