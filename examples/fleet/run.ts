/**
 * Seed 001's fleet, end to end through the `hako` command: N busybox web servers (default 100),
 * each with its own uid/gid range, started daemonized through hako's one shared supervisor.
 *
 *   sudo node_modules/.bin/deno run -A --v8-flags=--single-threaded examples/fleet/run.ts [N] [--one-call|--per-container]
 *
 * 1. builds the image once (image.ts);
 * 2. starts N containers from examples/fleet/web.ts on ports 10001..10000+N, either with the
 *    article's shell loop (`--per-container`, the default: `PORT=$port hako start web.ts` N times)
 *    or with one call (`--one-call`: `hako start web.ts --each PORT=10001..10000+N`);
 * 3. checks `hako ps --json` lists each as running, that each port answers with its own page
 *    ("hello from web-PORT"), and that each httpd runs as PORT*100+48 seen from the host;
 * 4. prints the time `hako start` took for all of them, the time until all answered, and hako's
 *    total memory: the PSS (from /proc/PID/smaps_rollup) of the supervisor and of any other hako
 *    process still running — the containers themselves are not hako's;
 * 5. tears down: `hako delete --force` for all, removes the extracted rootfs dirs (unless `keepRootfs`), stops the
 *    supervisor if this run started it, and checks that nothing is left: no hako/web-* cgroup, no
 *    state, no process in any container's uid range.
 *
 * Environment: HAKO_STATE_DIR (default /run/hako), HAKO_IMAGE, HAKO_VAR_DIR (see web.ts),
 * FLEET_FIRST_PORT (default 10001).
 * `runFleet()` is what tests/fleet_test.ts (10 containers, temp dirs) and bench/fleet.ts call.
 * @module
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { Buffer } from "node:buffer";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { buildImage, DEFAULT_IMAGE } from "./image.ts";
import { RANGE } from "./web.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** The spec module every container of the fleet comes from. */
export const WEB_SPEC: string = join(ROOT, "examples/fleet/web.ts");
/** The CLI the fleet is driven with. */
export const HAKO_BIN: string = join(ROOT, "bin/hako");

/** How the containers are started. */
export type FleetMode = "per-container" | "one-call";

/** Options for {@link runFleet}. */
export interface FleetOptions {
  /** How many containers (default 100). */
  readonly count?: number;
  /** `per-container`: N `hako start` calls (the article's loop, default); `one-call`: one `--each`. */
  readonly mode?: FleetMode;
  /** The first port (default 10001); containers get first..first+count-1. */
  readonly firstPort?: number;
  /** The image tarball (default `$HAKO_IMAGE` or /var/lib/hako/images/busybox-web.tar.gz). */
  readonly image?: string;
  /** Where rootfs dirs are extracted (default `$HAKO_VAR_DIR` or /var/lib/hako). */
  readonly varDir?: string;
  /** hako's state dir (default `$HAKO_STATE_DIR` or /run/hako). */
  readonly stateDir?: string;
  /** The hako command (default this checkout's bin/hako). */
  readonly hako?: string;
  /** Leave the extracted rootfs dirs for the next run (default false: removed at the end). */
  readonly keepRootfs?: boolean;
  /** Stop the supervisor at the end: default only when this run started it. */
  readonly stopSupervisor?: boolean;
  /** Progress lines (default: stderr). */
  readonly log?: (line: string) => void;
}

/** One process counted in hako's memory. */
export interface HakoProcess {
  readonly pid: number;
  readonly cmdline: string;
  readonly pssKb: number;
}

/** What {@link runFleet} measured and found. */
export interface FleetResult {
  readonly count: number;
  readonly mode: FleetMode;
  /** Wall time of the `hako start` call(s), all containers. */
  readonly startMs: number;
  /** From the first `hako start` until every port answered with its page. */
  readonly readyMs: number;
  /** hako's processes while the fleet ran, and their total PSS. */
  readonly hako: { readonly processes: readonly HakoProcess[]; readonly totalPssKb: number };
  /** The containers checked: name, init pid, httpd's uid on the host. */
  readonly containers: ReadonlyArray<{ name: string; pid: number; uid: number }>;
  /** What teardown found still there (empty when clean). */
  readonly leftovers: readonly string[];
}

interface PsEntry {
  name: string;
  pid: number | null;
  state: string;
}

/**
 * Runs hako with stdout and stderr going to files, not pipes: a supervisor started on demand
 * that kept a pipe open would otherwise make us wait for it forever.
 */
function sh(hako: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 300_000) {
  const dir = mkdtempSync(join(tmpdir(), "hako-fleet-out-"));
  const out = openSync(join(dir, "out"), "w+"), err = openSync(join(dir, "err"), "w+");
  try {
    const r = spawnSync(hako, args, { env, stdio: ["ignore", out, err], timeout: timeoutMs });
    if (r.error) throw new Error(`hako ${args.join(" ")}: ${r.error.message}`);
    const text = (f: string) => readFileSync(join(dir, f), "utf8");
    return { code: r.status, stdout: text("out"), stderr: text("err") };
  } finally {
    closeSync(out);
    closeSync(err);
    rmSync(dir, { recursive: true, force: true });
  }
}

function fail(what: string, r: { code: number | null; stdout: string; stderr: string }): never {
  throw new Error(`${what}: exit ${r.code}\n${(r.stderr || r.stdout).trim().slice(-2000)}`);
}

/** The effective uid in /proc/PID/status, or undefined when the process is gone. */
export function processUid(pid: number): number | undefined {
  try {
    const m = /^Uid:\s+\d+\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** `pid` and its descendants (through /proc/PID/task/TID/children). */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, "utf8").trim().split(/\s+/)) {
          if (c) walk(Number(c));
        }
      } catch { /* gone */ }
    }
  };
  walk(pid);
  return out;
}

/** PSS of a process in kB (from /proc/PID/smaps_rollup), 0 when it is gone. */
export function pssKb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0+$/, "").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

function allPids(): number[] {
  return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number);
}

/** The supervisor's pid from `<stateDir>/supervisor.pid` ("PID START"), if it is alive. */
export function supervisorPid(stateDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(stateDir, "supervisor.pid"), "utf8").trim().split(/\s+/)[0]);
    return pid > 0 && existsSync(`/proc/${pid}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The state dir a process works on: its `HAKO_STATE_DIR`, else the default /run/hako. */
function stateDirOf(pid: number): string {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    const v = env.find((e) => e.startsWith("HAKO_STATE_DIR="))?.slice("HAKO_STATE_DIR=".length);
    return resolve(v || "/run/hako");
  } catch {
    return "";
  }
}

/**
 * hako's own processes on `stateDir`: its supervisor, and any process running hako's CLI there
 * (`bin/hako` execs `deno … src/cli/main.ts`; a compiled binary is named hako). Not the
 * containers, and not hako processes of another state dir.
 */
export function hakoProcesses(stateDir: string): HakoProcess[] {
  const pids = new Set<number>();
  const sup = supervisorPid(stateDir);
  if (sup) pids.add(sup);
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    const c = cmdline(pid);
    const argv0 = c.split(" ")[0] ?? "";
    const isHako = c.includes(`${ROOT}/src/cli/`) || c.includes(`${ROOT}/src/supervisor/`) ||
      /(^|\/)hako$/.test(argv0);
    if (isHako && stateDirOf(pid) === resolve(stateDir)) pids.add(pid);
  }
  return [...pids].map((pid) => ({ pid, cmdline: cmdline(pid), pssKb: pssKb(pid) }));
}

/**
 * One `GET /` over a plain socket (HTTP/1.0, the server closes). Not `fetch`: the Fetch standard
 * blocks some ports outright (10080 among them, inside the article's 10001..10100).
 */
function httpGet(port: number, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolveP, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect({ host: "127.0.0.1", port }, () => sock.write("GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"));
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("error", reject);
    sock.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const at = text.indexOf("\r\n\r\n");
      if (!m || at < 0) reject(new Error(`not an HTTP answer: ${JSON.stringify(text.slice(0, 100))}`));
      else resolveP({ status: Number(m[1]), body: text.slice(at + 4) });
    });
  });
}

/** GETs http://127.0.0.1:PORT/ until it answers 200 (or `ms` pass); the body, or an error. */
export async function fetchPage(port: number, ms = 10_000): Promise<string> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const r = await httpGet(port, 2_000);
      if (r.status === 200) return r.body;
      last = new Error(`HTTP ${r.status}`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`port ${port} did not answer: ${(last as Error)?.message ?? last}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/**
 * Every cgroup dir of the fleet's containers in any hierarchy (/sys/fs/cgroup/X/ and
 * /sys/fs/cgroup/): each container's own, `hako/web-<port>` under hako's parent (and the older
 * `hako-web-<port>` at a hierarchy's root).
 */
export function fleetCgroups(ports: readonly number[]): string[] {
  const names = new Set(ports.map((p) => `web-${p}`));
  const out: string[] = [];
  const look = (dir: string, prefix: string) => {
    try {
      for (const e of readdirSync(dir)) {
        if (e.startsWith(prefix) && names.has(e.slice(prefix.length))) out.push(join(dir, e));
      }
    } catch { /* not a dir */ }
  };
  const hierarchy = (root: string) => {
    look(root, "hako-");
    look(join(root, "hako"), "");
  };
  hierarchy("/sys/fs/cgroup");
  try {
    for (const h of readdirSync("/sys/fs/cgroup")) hierarchy(join("/sys/fs/cgroup", h));
  } catch { /* no cgroupfs */ }
  return out;
}

/** Last resort: kill what is in the fleet's cgroups and remove them (returns what it removed). */
function forceCleanCgroups(ports: readonly number[]): string[] {
  const found = fleetCgroups(ports);
  for (const dir of found) {
    for (let i = 0; i < 50; i++) {
      let pids: string[] = [];
      try {
        pids = readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean);
      } catch { /* gone */ }
      for (const p of pids) {
        try {
          process.kill(Number(p), "SIGKILL");
        } catch { /* gone */ }
      }
      try {
        rmSync(dir, { recursive: false });
      } catch {
        try {
          spawnSync("rmdir", [dir]);
        } catch { /* retry */ }
      }
      if (!existsSync(dir)) break;
      spawnSync("sleep", ["0.05"]);
    }
  }
  return found;
}

/**
 * Starts, checks, measures and tears down the fleet. Teardown always runs; a failed check throws
 * after it. Needs root and the `hako start/ps/delete` commands.
 * @returns The timings, hako's memory, the containers checked and any leftovers.
 * @throws {Error} When a command fails, a port does not answer with its page, or an httpd runs
 *   with the wrong uid.
 */
export async function runFleet(options: FleetOptions = {}): Promise<FleetResult> {
  const count = options.count ?? 100;
  const mode = options.mode ?? "per-container";
  const first = options.firstPort ?? Number(process.env.FLEET_FIRST_PORT ?? 10001);
  const image = resolve(options.image ?? process.env.HAKO_IMAGE ?? DEFAULT_IMAGE);
  const varDir = resolve(options.varDir ?? process.env.HAKO_VAR_DIR ?? "/var/lib/hako");
  const stateDir = resolve(options.stateDir ?? process.env.HAKO_STATE_DIR ?? "/run/hako");
  const hako = options.hako ?? HAKO_BIN;
  const log = options.log ?? ((l: string) => console.error(l));
  const ports = Array.from({ length: count }, (_, i) => first + i);
  const names = ports.map((p) => `web-${p}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HAKO_IMAGE: image,
    HAKO_VAR_DIR: varDir,
    HAKO_STATE_DIR: stateDir,
    NO_COLOR: "1",
  };
  delete env.PORT;

  const built = buildImage(image);
  log(`image: ${built.path}${built.created ? " (built)" : ""}`);
  const supervisorBefore = supervisorPid(stateDir);
  let startMs = 0, readyMs = 0;
  let memory: FleetResult["hako"] = { processes: [], totalPssKb: 0 };
  const containers: Array<{ name: string; pid: number; uid: number }> = [];
  let error: unknown;
  try {
    // start
    const t0 = performance.now();
    const started: string[] = [];
    if (mode === "per-container") {
      for (const port of ports) {
        const r = sh(hako, ["start", WEB_SPEC], { ...env, PORT: String(port) });
        if (r.code !== 0) fail(`PORT=${port} hako start ${WEB_SPEC}`, r);
        started.push(...r.stdout.split("\n").map((s) => s.trim()).filter(Boolean));
      }
    } else {
      const each = `PORT=${first}..${first + count - 1}`;
      const r = sh(hako, ["start", WEB_SPEC, "--each", each], env);
      if (r.code !== 0) fail(`hako start ${WEB_SPEC} --each ${each}`, r);
      started.push(...r.stdout.split("\n").map((s) => s.trim()).filter(Boolean));
    }
    startMs = performance.now() - t0;
    const missing = names.filter((n) => !started.includes(n));
    if (missing.length) throw new Error(`hako start did not print ${missing.slice(0, 5).join(", ")}…`);
    log(`started ${count} containers (${mode}) in ${startMs.toFixed(0)} ms`);

    // every port answers with its own page
    await Promise.all(ports.map(async (port) => {
      const body = await fetchPage(port);
      if (!body.includes(`hello from web-${port}`)) {
        throw new Error(`port ${port} answered ${JSON.stringify(body.slice(0, 200))}`);
      }
    }));
    readyMs = performance.now() - t0;
    log(`all ${count} ports answered ${readyMs.toFixed(0)} ms after the first start`);

    // hako ps --json: running, with a pid whose tree holds httpd as PORT*100+48
    const ps = sh(hako, ["ps", "--json"], env);
    if (ps.code !== 0) fail("hako ps --json", ps);
    const entries = JSON.parse(ps.stdout) as PsEntry[];
    for (const port of ports) {
      const name = `web-${port}`;
      const e = entries.find((x) => x.name === name);
      if (!e) throw new Error(`hako ps --json does not list ${name}`);
      if (e.state !== "running" || !e.pid) throw new Error(`${name}: state ${e.state}, pid ${e.pid}`);
      const want = port * RANGE + 48;
      const uids = processTree(e.pid).map((p) => processUid(p));
      if (!uids.includes(want)) throw new Error(`${name}: no process of pid ${e.pid}'s tree runs as ${want} (${uids})`);
      containers.push({ name, pid: e.pid, uid: want });
    }
    log(`each httpd runs as PORT*100+48 on the host (e.g. ${containers[0]?.name}: ${containers[0]?.uid})`);

    // The fleet's steady state: the supervisor collects garbage 1 s after a burst of starts.
    await new Promise((r) => setTimeout(r, 1500));
    const procs = hakoProcesses(stateDir);
    memory = { processes: procs, totalPssKb: procs.reduce((s, p) => s + p.pssKb, 0) };
    log(`hako's memory: ${(memory.totalPssKb / 1024).toFixed(1)} MiB PSS in ${procs.length} process(es)`);
  } catch (e) {
    error = e;
  }

  // teardown, always
  const leftovers: string[] = [];
  for (let i = 0; i < names.length; i += 50) {
    const batch = names.slice(i, i + 50);
    try {
      const r = sh(hako, ["delete", "--force", ...batch], env, 120_000);
      if (r.code !== 0 && !error) leftovers.push(`hako delete --force: exit ${r.code}: ${r.stderr.trim().slice(-500)}`);
    } catch (e) {
      leftovers.push(`hako delete --force: ${(e as Error).message}`);
    }
  }
  const stop = options.stopSupervisor ?? supervisorBefore === undefined;
  const sup = supervisorPid(stateDir);
  if (stop && sup) {
    try {
      process.kill(sup, "SIGTERM");
    } catch { /* gone */ }
    for (let i = 0; i < 100 && existsSync(`/proc/${sup}`) && !/^State:\s+Z/m.test(procStatus(sup)); i++) {
      await new Promise((res) => setTimeout(res, 50));
    }
    if (existsSync(`/proc/${sup}`) && !/^State:\s+Z/m.test(procStatus(sup))) {
      leftovers.push(`supervisor ${sup} still running 5 s after SIGTERM (killed)`);
      try {
        process.kill(sup, "SIGKILL");
      } catch { /* gone */ }
    }
  }
  if (!options.keepRootfs) { for (const name of names) rmSync(join(varDir, name), { recursive: true, force: true }); }

  // nothing left: cgroups, state, processes in the fleet's uid ranges, hako processes if stopped
  for (const dir of forceCleanCgroups(ports)) leftovers.push(`cgroup ${dir} (removed now)`);
  for (const name of names) {
    for (const p of [join(stateDir, name), join(stateDir, "containers", name)]) {
      if (existsSync(p)) leftovers.push(`state ${p}`);
    }
  }
  const lo = first * RANGE, hi = (first + count) * RANGE;
  for (const pid of allPids()) {
    const uid = processUid(pid);
    if (uid !== undefined && uid >= lo && uid < hi) {
      leftovers.push(`process ${pid} (uid ${uid}): ${cmdline(pid)}`);
      try {
        process.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
  }
  if (stop) {
    for (const p of hakoProcesses(stateDir)) leftovers.push(`hako process ${p.pid}: ${p.cmdline}`);
  }
  if (error) {
    if (leftovers.length) log(`LEFT BEHIND (after the failure below):\n  ${leftovers.join("\n  ")}`);
    throw error;
  }
  log(leftovers.length ? `LEFT BEHIND:\n  ${leftovers.join("\n  ")}` : "torn down: nothing left behind");
  return { count, mode, startMs, readyMs, hako: memory, containers, leftovers };
}

function procStatus(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return "";
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const n = Number(args.find((a) => /^\d+$/.test(a)) ?? 100);
  const mode: FleetMode = args.includes("--one-call") ? "one-call" : "per-container";
  const r = await runFleet({ count: n, mode, log: (l) => console.log(l) });
  console.log(JSON.stringify(
    {
      count: r.count,
      mode: r.mode,
      startMs: Math.round(r.startMs),
      readyMs: Math.round(r.readyMs),
      hakoPssMiB: +(r.hako.totalPssKb / 1024).toFixed(1),
      hakoProcesses: r.hako.processes.length,
      leftovers: r.leftovers,
    },
    null,
    2,
  ));
  if (r.leftovers.length) process.exit(1);
}
