/**
 * Output latency of `hako logs -f` and `hako attach` (issue #17): the time from a line read by a
 * container's log relay (its timestamp in the log: the relay stamps a line when its read returns,
 * right after the container's write) to the line reaching the follower's stdout. And what an idle
 * follower costs: its CPU time over 10 s of a container that writes nothing.
 *
 * One daemonized busybox container writes `ROUNDS` lines (default 50) at random intervals of
 * 50–150 ms (no phase lock with a 100 ms poll); `hako logs -f -n 0 -t` and an output-only
 * `hako attach` follow it at once. attach prints no timestamps: its lines are matched to the log's
 * (`hako logs -t`) afterwards. Prints the median, p95 and max of each, and the idle CPU.
 *
 * Before/after: `HAKO_BENCH_CLI` names the CLI to measure (default bin/hako, Deno; `--bun` runs
 * src/cli/main.ts under Bun); point it at an older checkout's bin/hako for the "before" rows.
 *
 * Run (root): node_modules/.bin/deno run -A bench/follow.ts [--bun] [--rounds N]
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { buildRootfs } from "../src/container/rootfs.ts";
import { ROOT } from "./_lib.ts";

const bun = process.argv.includes("--bun");
const roundsAt = process.argv.indexOf("--rounds");
const ROUNDS = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 50;
const CLI = process.env.HAKO_BENCH_CLI
  ? [process.env.HAKO_BENCH_CLI]
  : bun
  ? [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli/main.ts")]
  : [join(ROOT, "bin/hako")];

const dir = mkdtempSync(join(tmpdir(), "hako-bench-follow-"));
chmodSync(dir, 0o755);
const state = join(dir, "state");
const env: Record<string, string> = { ...process.env as Record<string, string>, HAKO_STATE_DIR: state, NO_COLOR: "1" };
delete env.HAKO_LOADER;
const suffix = Math.random().toString(36).slice(2, 8);
const hako = (...args: string[]) => {
  const r = spawnSync(CLI[0]!, [...CLI.slice(1), ...args], { env, cwd: dir, encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`hako ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

/** Follows `args`' stdout: each line with when it arrived. */
function follow(args: string[]) {
  const child = spawn(CLI[0]!, [...CLI.slice(1), ...args], { env, cwd: dir, stdio: ["ignore", "pipe", "ignore"] });
  const lines: { line: string; at: number }[] = [];
  let text = "";
  child.stdout!.on("data", (b: Uint8Array) => {
    const at = Date.now();
    text += new TextDecoder().decode(b);
    const got = text.split("\n");
    text = got.pop()!;
    for (const line of got) lines.push({ line: line.replace(/\r$/, ""), at });
  });
  return { child, lines };
}

/** CPU time (user + system) of a process, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const summary = (what: string, lags: number[]) => {
  const s = [...lags].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  console.log(
    `${what.padEnd(26)} n=${String(s.length).padStart(3)}  median ${at(0.5).toFixed(0).padStart(4)} ms  ` +
      `p95 ${at(0.95).toFixed(0).padStart(4)} ms  max ${s.at(-1)!.toFixed(0).padStart(4)} ms`,
  );
};

const names: string[] = [];
const children: ReturnType<typeof spawn>[] = [];
try {
  buildRootfs(join(dir, "rootfs"), { builder: "busybox" });
  console.log(`CLI: ${CLI.join(" ")}`);
  const talk = `bf-talk-${suffix}`, quiet = `bf-quiet-${suffix}`;
  names.push(talk, quiet);
  const script = `sleep 3; i=0; while [ $i -lt ${ROUNDS} ]; do echo m$i; usleep $((50000 + RANDOM % 100000)); ` +
    `i=$((i+1)); done; sleep 3600`;
  hako("run", "-d", "--name", talk, "--rootfs", "rootfs", "--", "sh", "-c", script);
  hako("run", "-d", "--name", quiet, "--rootfs", "rootfs", "--", "sleep", "3600");
  const logs = follow(["logs", "-f", "-n", "0", "-t", talk]);
  const attach = follow(["attach", "--no-stdin", talk]);
  children.push(logs.child, attach.child);
  const end = Date.now() + 3000 + ROUNDS * 200 + 5000;
  while (Date.now() < end && (logs.lines.length < ROUNDS || attach.lines.length < ROUNDS)) await sleep(100);
  const stamps = new Map<string, number>();
  for (const line of hako("logs", "-t", talk).split("\n")) {
    const m = /^(\S+) (m\d+)$/.exec(line);
    if (m) stamps.set(m[2]!, Date.parse(m[1]!.slice(0, 23) + "Z"));
  }
  const lags = (lines: { line: string; at: number }[]) =>
    lines.flatMap(({ line, at }) => {
      const t = stamps.get(line.replace(/^\S+Z /, ""));
      return t === undefined ? [] : [at - t];
    });
  summary("hako logs -f (relay→stdout)", lags(logs.lines));
  summary("hako attach (relay→stdout)", lags(attach.lines));

  // Idle: 10 s of following a container that writes nothing.
  const idleLogs = follow(["logs", "-f", "-n", "0", quiet]);
  const idleAttach = follow(["attach", "--no-stdin", quiet]);
  children.push(idleLogs.child, idleAttach.child);
  await sleep(3000); // started
  const before = [cpuMs(idleLogs.child.pid!), cpuMs(idleAttach.child.pid!)];
  await sleep(10_000);
  const after = [cpuMs(idleLogs.child.pid!), cpuMs(idleAttach.child.pid!)];
  const ps = spawnSync("ps", ["-o", "pid,time,comm", "-p", `${idleLogs.child.pid},${idleAttach.child.pid}`], {
    encoding: "utf8",
  }).stdout;
  console.log(
    `idle 10 s: logs -f ${after[0]! - before[0]!} ms CPU, attach ${after[1]! - before[1]!} ms CPU\n${ps.trimEnd()}`,
  );
} finally {
  for (const c of children) c.kill("SIGKILL");
  for (const n of names) spawnSync(CLI[0]!, [...CLI.slice(1), "rm", "-f", n], { env, cwd: dir });
  try {
    const pid = Number(readFileSync(join(state, "supervisor.pid"), "utf8").split(" ")[0]);
    if (pid) process.kill(pid, "SIGKILL");
  } catch { /* none */ }
  rmSync(dir, { recursive: true, force: true });
}
