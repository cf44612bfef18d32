/**
 * Managing containers by name from their state on disk: list them with live figures, signal,
 * stop, delete, and collect what dead or half-made containers left behind. These work whether or
 * not the supervisor that made a container still runs (see `state.ts`); the `hako ps`, `kill`,
 * `stop`, `delete` and `gc` commands are thin wrappers over them.
 *
 * @example
 * ```ts ignore
 * import { listContainers, stopContainer } from "./src/container/lifecycle.ts";
 * for (const c of listContainers()) if (c.state === "running") await stopContainer(c.name, { timeoutMs: 5000 });
 * ```
 * @module
 */
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import process from "node:process";
import { Group } from "../cgroup/group.ts";
import { containerCgroupDirs } from "./cgroup_paths.ts";
import { containerGroupSpec, DEFAULT_CGROUP_PARENT, existingCgroupDirs, removeEmptyDefaultParent } from "./_cgroup.ts";
import { oomKillCount } from "../cgroup/memory.ts";
import { failedForkCount, pidsCurrentCount } from "../cgroup/pids.ts";
import { removeContainerFiles } from "./_files.ts";
import { detect } from "../cgroup/layout.ts";
import { deleteLink } from "../network.ts";
import { SyscallError } from "../errors.ts";
import { type Signal, signalNumber } from "../signals.ts";
import {
  ContainerStateError,
  describeState,
  type ExitRecord,
  identify,
  isRunning,
  nodeTrustFs,
  type ProcessIdentity,
  type Salvage,
  selfIdentity,
  signalCgroupMember,
  signalIdentified,
  type StateRecord,
  StateStore,
} from "./state.ts";
import { untrustedWayTo } from "../_trusted_path.ts";
import {
  canonicalPath,
  describeUser,
  dropPendingRootfs,
  holders,
  mountsAtOrUnder,
  moveRootfsAside,
  pendingRootfs,
  readdirOrEmpty,
  removeAside,
  type RootfsId,
  rootfsId,
  rootfsUsers,
  staleRootfsLocks,
  TRASH_INFIX,
  trashedRootfs,
  withRootfsLock,
} from "./_rootfs_ref.ts";
import { O_NOFOLLOW } from "../../ffi/constants.ts";

/** What `ps` shows about a container. */
export interface ContainerInfo {
  /** Its name. */
  readonly name: string;
  /**
   * `running`, `exited`, `creating`, `dead` (recorded as running or creating, but its process is
   * gone and nobody noticed), or `unknown` (its record is damaged: see `damaged`; what is shown is
   * what the kernel still says — its cgroup and the processes in it).
   */
  readonly state: "creating" | "running" | "exited" | "dead" | "unknown";
  /** The init's host pid, while it runs. */
  readonly pid: number | null;
  /** Seconds since it started (until it ended). */
  readonly uptimeSeconds: number | null;
  /** Average CPU use since it started, in percent of one CPU (its cgroup's, else its init's). */
  readonly cpuPercent: number | null;
  /** Memory in use, bytes (its cgroup's memory usage, else the RSS of its processes). */
  readonly memoryBytes: number | null;
  /**
   * Processes in it: what its pids limit counts (`pids.current`: threads and zombies included),
   * else the processes in its cgroup.
   */
  readonly pids: number | null;
  /** The tarball or rootfs it runs from. */
  readonly image: string;
  /** How it ended (null: unknown), once exited. */
  readonly exit?: StateRecord["exit"];
  /** A note (why the status is unknown, …). */
  readonly note?: string;
  /**
   * Processes the OOM killer killed in it (its memory limit): recorded when it ended, or counted
   * so far while it runs. Absent when none.
   */
  readonly oomKilled?: number;
  /** Forks its pids limit refused (`pids.events` max): recorded when it ended, or so far. Absent when none. */
  readonly failedForks?: number;
  /** Times its supervisor restarted it (its `restart` policy); absent when none. */
  readonly restartCount?: number;
  /** When its supervisor will restart it (ISO time), while it waits to. */
  readonly restartAt?: string;
  /** When its record is damaged (state `unknown`): what is wrong with it. */
  readonly damaged?: string;
  /** Its cgroup's name, when it is known and (for a damaged record) still there. */
  readonly cgroup?: string;
  /** When it was created (ISO time; unknown for a damaged record that lost it). */
  readonly createdAt?: string;
  /** When its command was exec'd. */
  readonly startedAt?: string;
  /** When it ended. */
  readonly finishedAt?: string;
  /** The spec file it came from. */
  readonly specFile?: string;
}

const CLK_TCK = 100;
/** How long an empty hako-* cgroup that no container owns must have been left alone before gc removes it. */
const ORPHAN_AGE_MS = 60_000;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function firstNumber(texts: Array<string | undefined>): number | undefined {
  for (const t of texts) if (t !== undefined && /^\d+/.test(t.trim())) return Number(t.trim().split(/\s/)[0]);
  return undefined;
}

/** Figures of a live container from its cgroup's directories (or, without them, its processes). */
type Figures = Pick<ContainerInfo, "cpuPercent" | "memoryBytes" | "pids" | "oomKilled" | "failedForks">;

/** Live figures of a running container. */
function liveFigures(r: StateRecord): Figures {
  const pid = r.init!.pid;
  const dirs = containerCgroupDirs(pid, r.cgroup);
  const procsText = dirs.map((d) => read(join(d, "cgroup.procs"))).find((t) => t !== undefined);
  const procs = procsText ? procsText.trim().split("\n").filter(Boolean).map(Number) : [pid];
  const startedMs = r.startedAt ? Date.parse(r.startedAt) : Date.parse(r.createdAt);
  return figures(dirs, procs, startedMs);
}

/**
 * CPU, memory, the process count (`pids.current` when there is a pids controller: zombies and
 * threads count against `pids.max`) and the OOM and refused-fork counters of a cgroup's
 * directories; `startedMs` NaN when unknown (no CPU share then).
 */
function figures(dirs: readonly string[], procs: readonly number[], startedMs: number): Figures {
  const uptime = Math.max((Date.now() - startedMs) / 1000, 0.001);
  // CPU: cgroup v1 cpuacct.usage (ns), v2 cpu.stat usage_usec; else the processes' utime+stime.
  let cpuSeconds: number | undefined;
  const ns = firstNumber(dirs.map((d) => read(join(d, "cpuacct.usage"))));
  if (ns !== undefined) cpuSeconds = ns / 1e9;
  else {
    const stat = dirs.map((d) => read(join(d, "cpu.stat"))).find((t) => t?.includes("usage_usec"));
    const m = stat?.match(/usage_usec (\d+)/);
    if (m) cpuSeconds = Number(m[1]) / 1e6;
  }
  if (cpuSeconds === undefined) {
    cpuSeconds = 0;
    for (const p of procs) {
      const s = read(`/proc/${p}/stat`);
      if (!s) continue;
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      cpuSeconds += (Number(f[11]) + Number(f[12])) / CLK_TCK;
    }
  }
  // Memory: the cgroup's usage when it has the memory controller, else the sum of RSS.
  let memory = firstNumber(
    dirs.flatMap((d) => [read(join(d, "memory.current")), read(join(d, "memory.usage_in_bytes"))]),
  );
  if (memory === undefined) {
    memory = 0;
    for (const p of procs) {
      const m = read(`/proc/${p}/status`)?.match(/VmRSS:\s+(\d+) kB/);
      if (m) memory += Number(m[1]) * 1024;
    }
  }
  const current = dirs.map((d) => pidsCurrentCount(read(join(d, "pids.current")) ?? null)).find((n) => n !== undefined);
  const c = cgroupCounters(dirs);
  return {
    cpuPercent: Number.isNaN(startedMs) ? null : Math.round((cpuSeconds / uptime) * 1000) / 10,
    memoryBytes: memory,
    pids: current ?? procs.length,
    ...c,
  };
}

/**
 * The OOM kills (v1 `memory.oom_control`, v2 `memory.events`) and refused forks (`pids.events`
 * max) a cgroup's directories count; each only when above 0.
 */
function cgroupCounters(dirs: readonly string[]): { oomKilled?: number; failedForks?: number } {
  let oomKilled = 0, failedForks = 0;
  for (const d of dirs) {
    oomKilled = Math.max(
      oomKilled,
      oomKillCount(read(join(d, "memory.oom_control")) ?? null),
      oomKillCount(read(join(d, "memory.events")) ?? null),
    );
    failedForks = Math.max(failedForks, failedForkCount(read(join(d, "pids.events")) ?? null));
  }
  return { ...(oomKilled > 0 ? { oomKilled } : {}), ...(failedForks > 0 ? { failedForks } : {}) };
}

/**
 * What a container's cgroup counted — OOM kills and refused forks — for its record, read before
 * the cgroup is removed (when the exit status itself is unknown: a container that ended while
 * no supervisor was its parent). Each only when above 0.
 */
export function cgroupEndCounters(r: Pick<StateRecord, "cgroup">): { oomKilled?: number; failedForks?: number } {
  return r.cgroup ? cgroupCounters(existingCgroupDirs(r.cgroup)) : {};
}

/** One container's info (pure but for /proc and the cgroup files). */
export function containerInfo(r: StateRecord): ContainerInfo {
  const running = r.state === "running" && isRunning(r.init);
  const ownerAlive = isRunning(r.owner);
  let state: ContainerInfo["state"] = r.state;
  if (r.state === "running" && !running) state = "dead";
  if (r.state === "creating" && !ownerAlive) state = "dead";
  const end = r.finishedAt ? Date.parse(r.finishedAt) : Date.now();
  const began = r.startedAt ? Date.parse(r.startedAt) : undefined;
  const live: Figures = running
    ? liveFigures(r)
    : { cpuPercent: null, memoryBytes: null, pids: null, ...recordedCounters(r) };
  return {
    name: r.name,
    state,
    pid: running ? r.init!.pid : null,
    uptimeSeconds: began !== undefined && (running || r.state === "exited")
      ? Math.round((end - began) / 100) / 10
      : null,
    ...live,
    image: r.image,
    ...(r.state === "exited" ? { exit: r.exit ?? null } : {}),
    ...(r.note
      ? { note: r.note }
      : state === "dead"
      ? { note: "its process is gone and no supervisor saw it end" }
      : {}),
    createdAt: r.createdAt,
    ...(r.startedAt ? { startedAt: r.startedAt } : {}),
    ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}),
    ...(r.specFile ? { specFile: r.specFile } : {}),
    ...(r.cgroup ? { cgroup: r.cgroup } : {}),
    ...(r.restartCount ? { restartCount: r.restartCount } : {}),
    ...(r.restartAt && r.state === "exited" ? { restartAt: r.restartAt } : {}),
  };
}

function recordedCounters(r: StateRecord): { oomKilled?: number; failedForks?: number } {
  return {
    ...(r.oomKilled ? { oomKilled: r.oomKilled } : {}),
    ...(r.failedForks ? { failedForks: r.failedForks } : {}),
  };
}

/**
 * Every container in the state directory, with live figures — a container whose record is
 * damaged too, as `unknown` with what the kernel still says of it (see {@link damagedInfo}).
 */
export function listContainers(store: StateStore = new StateStore()): ContainerInfo[] {
  const list: ContainerInfo[] = [];
  for (const name of store.names()) {
    const r = store.inspect(name);
    if (r.kind === "ok") list.push(containerInfo(r.record));
    else if (r.kind === "damaged") list.push(damagedInfo(name, r.problem, r.salvage, store));
  }
  return list;
}

/**
 * What the kernel says of a container whose record is damaged: the cgroup it was given (what is
 * left of the record names it, else hako's default `hako/NAME`), that cgroup's directories on this
 * host, the processes in them (zombies are not members), its init (the one the record still names
 * while it runs, else the member whose parent is not a member: the first of a PID namespace), and
 * why those processes are this container's. A cgroup name is host-wide while a record is this
 * state directory's: another state directory's container of the same name has the same default
 * cgroup, so its processes are never taken for this one's without a tie to it.
 */
export interface KernelView {
  /** The cgroup's name (it may not exist). */
  readonly cgroup: string;
  /** Its directories on this host (one per v1 hierarchy, or the v2 one); empty when it is gone. */
  readonly dirs: readonly string[];
  /** The processes in it and its child cgroups. */
  readonly procs: readonly number[];
  /** Its init, while it runs. */
  readonly init?: ProcessIdentity;
  /**
   * What ties the processes to this container, when something does: the init its record still
   * names, one of them writing to its log, or one a child of the process that made it (its
   * supervisor, or a foreground `hako run`). Absent when nothing does (or none is left).
   */
  readonly tie?: string;
}

/** The `cgroup.procs` files of cgroup directories and their child cgroups. */
function procsFiles(dirs: readonly string[]): string[] {
  const files: string[] = [];
  const walk = (d: string, depth: number) => {
    files.push(join(d, "cgroup.procs"));
    if (depth > 16) return;
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(join(d, e.name), depth + 1);
  };
  for (const d of dirs) walk(d, 0);
  return files;
}

/** The processes listed in cgroup directories (and their children), sorted. */
function cgroupProcs(dirs: readonly string[]): number[] {
  const pids = new Set<number>();
  for (const f of procsFiles(dirs)) {
    for (const line of (read(f) ?? "").split("\n")) if (/^\d+$/.test(line)) pids.add(Number(line));
  }
  return [...pids].sort((a, b) => a - b);
}

/** A process's parent pid, or undefined when it is gone (or a zombie). */
function parentOf(pid: number): number | undefined {
  const s = read(`/proc/${pid}/stat`);
  if (!s) return undefined;
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return f[0] === "Z" ? undefined : Number(f[1]);
}

/** The member of `procs` whose parent is not one: a container's init (the earliest, if several). */
function topProcess(procs: readonly number[]): ProcessIdentity | undefined {
  const set = new Set(procs);
  let top: ProcessIdentity | undefined;
  for (const pid of procs) {
    const ppid = parentOf(pid);
    if (ppid === undefined || set.has(ppid)) continue;
    const id = identify(pid);
    if (id && (!top || id.startTime < top.startTime)) top = id;
  }
  return top;
}

/** The supervisor of a state directory, from its pid file, while it runs. */
function supervisorOf(store: StateStore): ProcessIdentity | undefined {
  const [pid, startTime] = (read(store.file("supervisor.pid")) ?? "").trim().split(" ").map(Number);
  const id = { pid: pid!, startTime: startTime! };
  return Number.isSafeInteger(id.pid) && isRunning(id) ? id : undefined;
}

/** Why processes of a damaged record's cgroup are that container's (see {@link KernelView.tie}), if anything says so. */
function tieOf(store: StateStore, name: string, salvage: Salvage, procs: readonly number[]): string | undefined {
  if (procs.length === 0) return undefined;
  if (salvage.init && isRunning(salvage.init) && procs.includes(salvage.init.pid)) return "the init its record names";
  let log;
  try {
    log = statSync(store.logPath(name));
  } catch { /* none */ }
  const makers = [supervisorOf(store), salvage.owner && isRunning(salvage.owner) ? salvage.owner : undefined]
    .filter((x) => x !== undefined).map((x) => x.pid);
  for (const pid of procs) {
    for (const fd of [1, 2]) {
      try {
        const st = statSync(`/proc/${pid}/fd/${fd}`);
        if (log && st.dev === log.dev && st.ino === log.ino) return `process ${pid} writes to its log`;
      } catch { /* closed, or gone */ }
    }
    const ppid = parentOf(pid);
    if (ppid !== undefined && makers.includes(ppid)) return `process ${pid} is a child of the process that made it`;
  }
  return undefined;
}

/**
 * What the kernel says of container `name`, whose record is damaged (see {@link KernelView}): from
 * what is left of the record and hako's default naming.
 * @param name The container.
 * @param salvage What is left of its record.
 * @param store Its state directory (for its log and its supervisor).
 */
export function kernelView(name: string, salvage: Salvage, store: StateStore = new StateStore()): KernelView {
  const cgroup = salvage.cgroup ?? `${DEFAULT_CGROUP_PARENT}/${name}`;
  const dirs = existingCgroupDirs(cgroup);
  const procs = cgroupProcs(dirs);
  const init = salvage.init && isRunning(salvage.init) ? salvage.init : topProcess(procs);
  const tie = tieOf(store, name, salvage, procs);
  return { cgroup, dirs, procs, ...(init ? { init } : {}), ...(tie ? { tie } : {}) };
}

/** "1 process", "2 processes". */
function processes(n: number): string {
  return n === 1 ? "1 process" : `${n} processes`;
}

/**
 * What `ps` shows of a container whose record is damaged: state `unknown`, what is wrong, and
 * what the kernel still says — its cgroup (the record's, else `hako/NAME`), the processes in it,
 * its init, memory and counters. Never omitted: a container hako cannot read is still there.
 */
export function damagedInfo(
  name: string,
  problem: string,
  salvage: Salvage,
  store: StateStore = new StateStore(),
): ContainerInfo {
  const v = kernelView(name, salvage, store);
  const live = v.procs.length > 0;
  const f = live ? figures(v.dirs, v.procs, NaN) : undefined;
  const what = !live
    ? `; no process in ${
      v.dirs.length ? `its cgroup ${v.cgroup}` : "a cgroup of its"
    }: 'hako delete ${name}' removes it`
    : v.tie
    ? `; ${processes(v.procs.length)} in its cgroup ${v.cgroup} (${v.tie}): 'hako stop ${name}' or ` +
      `'hako delete --force ${name}' ends them`
    : `; ${processes(v.procs.length)} in cgroup ${v.cgroup}, which nothing ties to this container (another ` +
      `state directory's container of the same name?)`;
  return {
    name,
    state: "unknown",
    pid: v.tie ? v.init?.pid ?? null : null,
    uptimeSeconds: null,
    cpuPercent: null,
    memoryBytes: f?.memoryBytes ?? null,
    pids: live ? f!.pids : null,
    image: salvage.image ?? "?",
    note: `damaged record: ${problem}${what}`,
    ...(f?.oomKilled ? { oomKilled: f.oomKilled } : {}),
    ...(f?.failedForks ? { failedForks: f.failedForks } : {}),
    damaged: problem,
    ...(v.dirs.length ? { cgroup: v.cgroup } : {}),
    ...(salvage.createdAt ? { createdAt: salvage.createdAt } : {}),
  };
}

/**
 * Undoes what a container held on the host: its cgroup (processes still in it are killed) and its
 * veth pair. Idempotent.
 */
export function releaseResources(r: StateRecord): void {
  let first: unknown;
  if (r.veth) {
    try {
      deleteLink(r.veth);
    } catch (e) {
      if (!(e instanceof SyscallError && e.code === "ENODEV")) first ??= e;
    }
  }
  try {
    removeContainerFiles(r.name);
  } catch (e) {
    first ??= e;
  }
  if (r.cgroup) {
    try {
      new Group(r.cgroup, containerGroupSpec(r.spec.cgroup)).delete({ kill: true });
      removeEmptyDefaultParent(r.cgroup);
    } catch (e) {
      first ??= e;
    }
  }
  if (first) throw first;
}

/**
 * A container's record, or — when it is damaged — what the kernel says of it; never "no
 * container named" for a directory that is there.
 * @throws {ContainerStateError} When there is no such container.
 */
function lookUp(
  store: StateStore,
  name: string,
): { record: StateRecord } | { damaged: string; salvage: Salvage; view: KernelView } {
  const r = store.inspect(name);
  if (r.kind === "none") throw new ContainerStateError(`no container named ${name}`);
  if (r.kind === "ok") return { record: r.record };
  return { damaged: r.problem, salvage: r.salvage, view: kernelView(name, r.salvage, store) };
}

/**
 * Refuses to signal processes of a damaged record's cgroup that nothing ties to the container (see
 * {@link KernelView}): they may be another state directory's container of the same name.
 */
function assertTied(name: string, found: { damaged: string; view: KernelView }): void {
  const v = found.view;
  if (v.procs.length === 0 || v.tie) return;
  throw new ContainerStateError(
    `container ${name}'s record is damaged (${found.damaged}), and nothing ties the ${
      processes(v.procs.length)
    } in cgroup ${v.cgroup} (${
      pidList(v.procs)
    }) to it — none writes to its log, none is a child of the process that made it — so hako leaves them alone ` +
      `(another state directory's container of the same name?); if they are its own, kill them by hand, then ` +
      `'hako delete ${name}'`,
  );
}

/**
 * Sends a signal to a running container's init (pid and start time checked). A container whose
 * record is damaged is found from the kernel (see {@link kernelView}): the init its record still
 * names, else the first process of its cgroup.
 * @throws {ContainerStateError} When there is no such container or it is not running.
 */
export function killContainer(name: string, sig: Signal = "KILL", store: StateStore = new StateStore()): void {
  signalNumber(sig); // a bad signal name fails before anything else
  const found = lookUp(store, name);
  let init: ProcessIdentity | undefined;
  if ("record" in found) {
    markStoppedByUser(store, name);
    const r = found.record;
    if (r.state !== "running" || !isRunning(r.init)) {
      throw new ContainerStateError(`container ${name} is not running (${describeState(r)})`);
    }
    init = r.init;
  } else {
    assertTied(name, found);
    init = found.view.init;
    if (!init) {
      throw new ContainerStateError(
        `container ${name} is not running: no process is left in its cgroup ${found.view.cgroup} (its record ` +
          `is damaged: ${found.damaged})`,
      );
    }
  }
  if (!signalIdentified(init!, sig, `signal container ${name}`)) {
    throw new ContainerStateError(`container ${name} is not running (it just ended)`);
  }
}

/**
 * Records that the user stopped a container (kill, stop, delete), so its supervisor never restarts
 * it: docker's `HasBeenManuallyStopped`, set by `docker kill` whatever the signal, `stop` and `rm -f`.
 */
function markStoppedByUser(store: StateStore, name: string): void {
  try {
    store.update(name, (r) => r.stoppedByUser ? r : { ...r, stoppedByUser: true });
  } catch { /* the signal matters more; a record that cannot be written is not restarted either */ }
}

/** Waits until the process is gone (its supervisor reaped it, or it is not ours), up to `ms`. */
async function waitGone(r: { readonly init?: ProcessIdentity }, ms: number): Promise<boolean> {
  return await waitUntil(() => !isRunning(r.init), ms);
}

/** Waits until `done()` (backing off from 2 to 50 ms), up to `ms`; true when it came true. */
async function waitUntil(done: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  let delay = 2;
  while (!done()) {
    if (Date.now() >= until) return false;
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(delay * 2, 50);
  }
  return true;
}

/** Waits (briefly) until a supervisor has recorded the end, so `ps` then shows the exit status. */
async function waitRecorded(store: StateStore, name: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const r = store.tryRead(name);
    if (!r || r.state !== "running" || !isRunning(r.owner)) return;
    await new Promise((res) => setTimeout(res, 10));
  }
}

/**
 * Sends `sig` to every process in cgroup directories (each checked to be a member after its
 * pidfd is opened, so a reused pid is never signalled); on v2, SIGKILL goes through `cgroup.kill`.
 * @returns How many were signalled.
 */
function signalMembers(dirs: readonly string[], sig: "TERM" | "KILL", context: string): number {
  const files = procsFiles(dirs);
  let n = 0;
  if (sig === "KILL") {
    for (const d of dirs) {
      if (!existsSync(join(d, "cgroup.kill"))) continue;
      try {
        writeFileSync(join(d, "cgroup.kill"), "1");
      } catch { /* gone, or not ours: the loop below */ }
    }
  }
  for (const pid of cgroupProcs(dirs)) if (signalCgroupMember(pid, files, sig, context)) n++;
  return n;
}

/**
 * Kills every process in cgroup directories and waits until none is left (up to `ms`).
 * @returns True when the cgroup is empty.
 */
async function killMembers(dirs: readonly string[], context: string, ms = 10_000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (cgroupProcs(dirs).length === 0) return true;
    if (Date.now() >= until) return false;
    signalMembers(dirs, "KILL", context);
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** Removes cgroup directories left empty (child cgroups first), and hako's own parent when empty. Best effort. */
function removeEmptyCgroup(cgroup: string | undefined, dirs: readonly string[]): void {
  const post = (d: string): string[] => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return [];
    }
    return [...entries.filter((e) => e.isDirectory()).flatMap((e) => post(join(d, e.name))), d];
  };
  for (const d of dirs.flatMap(post)) {
    try {
      rmdirSync(d);
    } catch { /* in use, or gone */ }
  }
  if (cgroup) removeEmptyDefaultParent(cgroup);
}

/**
 * How {@link stopContainer} went: whether there was anything to stop, the signals hako delivered,
 * and what ended the container — from the exit status its supervisor recorded and what its
 * cgroup counted — so that a container something else killed is not reported as hako's doing.
 */
export interface StopResult {
  /** `not-running` when nothing was signalled (it had ended, or never ran); `ended` when it ended now. */
  readonly outcome: "not-running" | "ended";
  /**
   * The signals hako delivered, in order: `TERM` (the stop signal: SIGTERM, or the spec's
   * `stopSignal`), then `KILL` when it was still there after the timeout.
   */
  readonly sent: readonly ("TERM" | "KILL")[];
  /** The number of the stop signal hako sends first (absent: 15, SIGTERM; else the spec's `stopSignal`). */
  readonly stopSignal?: number;
  /**
   * What ended it (see {@link judgeStop}): `term` (hako's SIGTERM), `kill` (hako's SIGKILL),
   * `exit` (it exited with a code: on hako's SIGTERM when it handles it), `oom` (the OOM killer:
   * its memory limit), `other` (a signal hako did not send), or `unknown` (no exit status was
   * recorded: no supervisor saw it end, or its record is damaged). Absent when not running.
   */
  readonly endedBy?: "term" | "kill" | "exit" | "oom" | "other" | "unknown";
  /**
   * Its exit status as recorded: null when no supervisor saw it end (or its record is damaged);
   * absent when its supervisor had not recorded it yet.
   */
  readonly exit?: ExitRecord | null;
  /** The signal that ended it, as its exit status says (see {@link endingSignal}); absent when none or unknown. */
  readonly signal?: number;
  /** Processes the OOM killer killed in it (when any). */
  readonly oomKilled?: number;
  /** How long hako waited after SIGTERM before SIGKILL, in ms. */
  readonly timeoutMs: number;
  /** When its record is damaged: what is wrong with it (it was found, and stopped, from its cgroup). */
  readonly damaged?: string;
}

/**
 * The signal that ended a container (pure): the one that killed its init, or — when its init is
 * an init such as tini (`--init`), which exits 128+N when its child was killed by signal N, as a
 * shell does — the one its code says. Null when it exited with a code of its own.
 * @param exit How it ended.
 */
export function endingSignal(exit: ExitRecord): number | null {
  if (exit.signal !== null) return exit.signal;
  return exit.code !== null && exit.code > 128 && exit.code <= 128 + 64 ? exit.code - 128 : null;
}

/**
 * What ended a container that hako sent `sent` to (pure): from its recorded exit status (see
 * {@link endingSignal}) and the OOM kills its cgroup counted. SIGKILL is hako's only when hako sent
 * one; a SIGKILL hako did not send with OOM kills counted is the memory limit's; SIGTERM is hako's
 * when hako sent one.
 * @param sent The signals hako delivered, in order (`TERM`: the stop signal).
 * @param exit The recorded exit status (null or undefined: unknown).
 * @param oomKilled The OOM kills its cgroup counted.
 * @param stopSignal The stop signal's number (default 15, SIGTERM).
 */
export function judgeStop(
  sent: readonly ("TERM" | "KILL")[],
  exit: ExitRecord | null | undefined,
  oomKilled = 0,
  stopSignal = 15,
): NonNullable<StopResult["endedBy"]> {
  if (!exit) return "unknown";
  const sig = endingSignal(exit);
  if (sig === null) return "exit";
  if (sig === 9) {
    return sent.includes("KILL") || (stopSignal === 9 && sent.includes("TERM"))
      ? "kill"
      : oomKilled > 0
      ? "oom"
      : "other";
  }
  if (sig === stopSignal && sent.includes("TERM")) return "term";
  return "other";
}

/**
 * Stops a container: SIGTERM (or the spec's `stopSignal`), then SIGKILL when it is still there
 * after `timeoutMs` (default 10 s), and says what ended it (see {@link StopResult}). Note that PID 1 of a PID namespace
 * ignores SIGTERM unless it handles it, so many containers end only at the SIGKILL. A container
 * whose record is damaged is stopped from its cgroup (see {@link kernelView}): SIGTERM to its
 * init, then SIGKILL to every process left in it.
 */
export async function stopContainer(
  name: string,
  options: { timeoutMs?: number; store?: StateStore } = {},
): Promise<StopResult> {
  const store = options.store ?? new StateStore();
  const timeoutMs = options.timeoutMs ?? 10_000;
  const found = lookUp(store, name);
  const sent: Array<"TERM" | "KILL"> = [];
  if (!("record" in found)) {
    const { view, damaged } = found;
    // (no record to read a stop signal from: SIGTERM)
    if (view.procs.length === 0) return { outcome: "not-running", sent, stopSignal: 15, timeoutMs, damaged };
    assertTied(name, found);
    const empty = () => cgroupProcs(view.dirs).length === 0;
    if (view.init && signalIdentified(view.init, "TERM", `stop container ${name}`)) sent.push("TERM");
    if (!sent.length || !await waitUntil(empty, timeoutMs)) {
      if (signalMembers(view.dirs, "KILL", `kill container ${name}`) > 0) sent.push("KILL");
      if (!await killMembers(view.dirs, `kill container ${name}`)) {
        throw new ContainerStateError(`container ${name} did not die after SIGKILL`);
      }
    }
    const c = cgroupCounters(view.dirs);
    return { outcome: "ended", sent, stopSignal: 15, endedBy: "unknown", exit: null, timeoutMs, damaged, ...c };
  }
  markStoppedByUser(store, name);
  const r = found.record;
  const stopSignal = stopSignalOfSpec(r.spec);
  if (r.state !== "running" || !isRunning(r.init)) return { outcome: "not-running", sent, stopSignal, timeoutMs };
  if (signalIdentified(r.init!, stopSignal, `stop container ${name}`)) sent.push("TERM");
  if (!await waitGone(r, timeoutMs)) {
    if (signalIdentified(r.init!, "KILL", `kill container ${name}`)) sent.push("KILL");
    await waitGone(r, 10_000);
  }
  await waitRecorded(store, name);
  markEndedIfOrphan(store, name);
  const after = store.tryRead(name);
  // Not recorded in time (its supervisor is slow to reap it): `exit` is left out, not null.
  const exit = after?.state === "exited" ? after.exit ?? null : undefined;
  const oomKilled = after?.oomKilled ?? 0;
  return {
    outcome: "ended",
    sent,
    stopSignal,
    endedBy: judgeStop(sent, exit, oomKilled, stopSignal),
    ...(exit !== undefined ? { exit } : {}),
    ...(exit && endingSignal(exit) !== null ? { signal: endingSignal(exit)! } : {}),
    timeoutMs,
    ...(oomKilled > 0 ? { oomKilled } : {}),
  };
}

/** The stop signal a recorded spec asks for (checked at create): SIGTERM unless its `stopSignal`. */
function stopSignalOfSpec(spec: { readonly stopSignal?: string | number } | undefined): number {
  try {
    return spec?.stopSignal !== undefined ? signalNumber(spec.stopSignal) || 15 : 15;
  } catch {
    return 15; // (a record is hostile input too: a bad value stops with SIGTERM)
  }
}

/** When nobody reaps a container that ended (its supervisor is gone), records that and releases its resources. */
function markEndedIfOrphan(store: StateStore, name: string): void {
  const r = store.tryRead(name);
  if (!r || r.state === "exited" || isRunning(r.init) || isRunning(r.owner)) return;
  // What its cgroup counted, read before releaseResources removes it.
  const counters = cgroupEndCounters(r);
  store.update(name, (x) => ({
    ...x,
    state: "exited",
    exit: null,
    finishedAt: new Date().toISOString(),
    note: "ended while no supervisor ran: exit status unknown",
    ...counters,
  }));
  releaseResources(r);
}

/** What became of a container's rootfs when {@link deleteContainer} was asked to remove it. */
export interface RootfsOutcome {
  /** The rootfs's path, as recorded. */
  readonly path: string;
  /** True when this call removed it. */
  readonly removed: boolean;
  /**
   * Why it was kept: `in-use` (another container's record names it, or a live process has it as
   * its root), `not-extracted` (a directory or builder rootfs: hako removes only what it extracted
   * from a tarball), `not-hakos` (what is there now does not hold hako's marker of that
   * extraction), `gone` (nothing is there), `unknown` (the container's record is damaged: nothing
   * says what its rootfs is, nor that hako extracted it).
   */
  readonly kept?: "in-use" | "not-extracted" | "not-hakos" | "gone" | "unknown";
  /** Who uses it (`container web-2`, `process 1234 (sleep)`), when in use. */
  readonly users?: readonly string[];
  /** A sentence for the user when it was kept (none when it was gone already). */
  readonly message?: string;
}

/** What {@link deleteContainer} did. */
export interface DeleteResult {
  /** The container. */
  readonly name: string;
  /** Its rootfs, when `rootfs` was asked for. */
  readonly rootfs?: RootfsOutcome;
}

/**
 * The container was deleted, but its rootfs could not be removed safely (something is mounted
 * under it, the way to it is not root's, the removal failed); nothing of it was removed.
 */
export class RootfsRemovalError extends ContainerStateError {
  /** The rootfs. */
  readonly path: string;
  /**
   * Makes the error.
   * @param name The container (deleted).
   * @param path Its rootfs.
   * @param why What is wrong.
   */
  constructor(name: string, path: string, why: string) {
    super(`container ${name} was deleted, but its rootfs ${path} was not removed: ${why}`);
    this.name = "RootfsRemovalError";
    this.path = path;
  }
}

/**
 * Why hako must not remove the directory `id` as the rootfs it extracted from `tarball`:
 * `not-hakos` when it holds no marker of an extraction by hako (or one of another tarball), or
 * `unsafe` when a recursive removal could reach beyond it: the host's root, a mount point at or
 * under it, or a way to it that someone other than root (or the user running hako) could change
 * while it is removed.
 */
function whyNotRemovable(
  id: RootfsId,
  tarball: string,
  marker: string,
): { kind: "not-hakos" | "unsafe"; why: string } | undefined {
  const root = statSync("/");
  if (id.path === "/" || (id.dev === root.dev && id.ino === root.ino)) {
    return { kind: "unsafe", why: "it is the host's root directory" };
  }
  let found: { tarball?: unknown } | undefined;
  let fd: number | undefined;
  try {
    // O_NOFOLLOW: a marker that is a symlink is no marker.
    fd = openSync(join(id.path, marker), fsConstants.O_RDONLY | O_NOFOLLOW);
    found = JSON.parse(readFileSync(fd, "utf8"));
  } catch {
    /* none */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (typeof found?.tarball !== "string") {
    return {
      kind: "not-hakos",
      why: `${id.path} holds no marker of an extraction by hako (${marker}), so it is not removed`,
    };
  }
  if (isAbsolute(tarball) && found.tarball !== resolve(tarball)) {
    return {
      kind: "not-hakos",
      why: `${id.path} was extracted from ${found.tarball}, not from ${tarball}, so it is not removed`,
    };
  }
  const mounts = mountsAtOrUnder(id.path);
  if (mounts.length > 0) {
    return { kind: "unsafe", why: `${mounts[0]} is a mount point at or under it (unmount it first)` };
  }
  const uid = process.geteuid?.() ?? 0;
  const way = untrustedWayTo(id.path, uid, nodeTrustFs);
  if (way) return { kind: "unsafe", why: `someone else could change the way to it while it is removed: ${way}` };
  return undefined;
}

/**
 * Who uses the rootfs `id`: other containers' records, and live processes whose root it is — but
 * not those processes of a container already named (its init and cgroup).
 */
function usersOf(id: RootfsId, records: readonly StateRecord[], ignorePids?: ReadonlySet<number>): string[] {
  const users = rootfsUsers(id, records, ignorePids);
  const named = new Set(users.map((u) => u.container).filter((n) => n !== undefined));
  const theirs = new Set(records.filter((r) => named.has(r.name)).flatMap(containerPids));
  return users.filter((u) => u.pid === undefined || !theirs.has(u.pid)).map(describeUser);
}

/**
 * Removes the container's record and, when nothing else uses it, the rootfs hako extracted for it —
 * both under the rootfs's lock, so that of two deletes of containers sharing one rootfs exactly
 * the last one removes it (each sees the other's record until it is gone), and a new container
 * claiming it meanwhile either is seen here or finds it gone and extracts it again.
 */
function removeWithRootfs(store: StateStore, r: StateRecord, marker: string): RootfsOutcome {
  const path = r.rootfs, name = r.name;
  const kept = (why: string) => `kept the rootfs ${path} of ${name}: ${why}`;
  if (!r.extracted) {
    store.remove(name);
    return {
      path,
      removed: false,
      kept: "not-extracted",
      message: kept("hako did not extract it from a tarball (a directory or builder rootfs is never removed)"),
    };
  }
  let aside: string | undefined;
  let failure: string | undefined;
  const outcome = withRootfsLock(store.root, path, ({ id }): RootfsOutcome => {
    if (!id) {
      store.remove(name);
      dropPendingRootfs(store.root, path);
      return { path, removed: false, kept: "gone" };
    }
    // Any other record, in any state, is a user; so is a live process whose root it is (a
    // container of another state directory, or one that a script made).
    const users = usersOf(id, store.list().filter((x) => x.name !== name));
    if (users.length > 0) {
      store.remove(name);
      return { path, removed: false, kept: "in-use", users, message: kept(`still used by ${users.join(", ")}`) };
    }
    const no = whyNotRemovable(id, r.image, marker);
    if (no?.kind === "not-hakos") {
      store.remove(name);
      dropPendingRootfs(store.root, path);
      return { path, removed: false, kept: "not-hakos", message: kept(no.why) };
    }
    if (no) failure = no.why;
    else {
      try {
        aside = moveRootfsAside(store.root, id, selfIdentity());
      } catch (e) {
        failure = (e as Error).message;
      }
    }
    store.remove(name);
    if (aside) dropPendingRootfs(store.root, path);
    return aside ? { path, removed: true } : { path, removed: false };
  }) as RootfsOutcome;
  // Out of its path (and the lock) already: the recursive removal takes as long as it takes.
  if (aside) removeAside(store.root, aside);
  if (failure !== undefined) throw new RootfsRemovalError(name, path, failure);
  return outcome;
}

/**
 * Deletes a container: its cgroup, veth, state and logs, and with `rootfs` the rootfs hako
 * extracted for it from a tarball — unless another container still uses it: any other record
 * (whatever its state) whose rootfs is the same directory (by real path, or device and inode: a
 * symlink or bind mount of it counts), or a live process whose root it is. Then the container is
 * deleted all the same and the rootfs is kept for its other users (the result says who): the last
 * user's `delete --rootfs` removes it, as docker's `rm -v` does with a volume another container
 * still uses. A directory or builder rootfs is never removed, nor a directory that no longer holds
 * hako's marker of that extraction.
 *
 * A record is never removed from under live processes: one whose init ended while processes are
 * still in its cgroup, or one whose record is damaged (found from its cgroup, see
 * {@link kernelView}) while processes are in it, is refused without `force`, and killed first with
 * it (docker's `rm -f`).
 * @returns What became of the rootfs, when `rootfs` was asked for.
 * @throws {ContainerStateError} When it runs (or processes are in its cgroup) and `force` is not
 *   given, or when there is no such container.
 * @throws {RootfsRemovalError} When the container was deleted but its rootfs could not be removed
 *   safely (a mount point under it, a way to it others could change, a failed rename).
 */
export async function deleteContainer(
  name: string,
  options: { force?: boolean; rootfs?: boolean; store?: StateStore } = {},
): Promise<DeleteResult> {
  const store = options.store ?? new StateStore();
  const found = lookUp(store, name);
  if (!("record" in found)) return await deleteDamaged(store, name, found, options);
  markStoppedByUser(store, name);
  const r = found.record;
  // tarball.ts (node:zlib, node-tar) only where a rootfs may be removed: `ps` loads this module too.
  const marker = options.rootfs ? (await import("./tarball.ts")).TARBALL_MARKER : "";
  const alive = isRunning(r.init);
  if (alive && (r.state !== "creating" || isRunning(r.owner))) {
    if (!options.force) {
      const says = r.state === "exited"
        ? ` (its record says ${describeState(r)}, but its init ${r.init!.pid} runs)`
        : "";
      throw new ContainerStateError(`container ${name} is ${r.state}${says}: stop it first, or delete --force`);
    }
    signalIdentified(r.init!, "KILL", `kill container ${name}`);
    if (!await waitGone(r, 10_000)) throw new ContainerStateError(`container ${name} did not die after SIGKILL`);
    await waitRecorded(store, name);
  } else if (alive) {
    signalIdentified(r.init!, "KILL", `kill half-made container ${name}`);
    await waitGone(r, 10_000);
  } else if (r.cgroup && r.state !== "creating") {
    // Its init is gone, but what it started may live on in its cgroup (without a PID namespace;
    // or the record lies): the record is not removed from under them unless asked to kill them.
    const left = cgroupProcs(existingCgroupDirs(r.cgroup));
    if (left.length > 0 && !options.force) {
      throw new ContainerStateError(
        `container ${name}'s record says ${describeState(r)}, but ${processes(left.length)} ${
          left.length === 1 ? "is" : "are"
        } still in its cgroup ${r.cgroup} (${pidList(left)}): 'hako delete --force ${name}' kills them`,
      );
    }
  }
  releaseResources(r);
  // A container on an image (rootfs { image }, hako run --image NAME): its writable layer goes too.
  // (one that cannot go now is left to gc: the container's deletion goes on)
  const { defaultVarDir, hasWritableLayers } = await import("../image/_names.ts");
  const varDir = defaultVarDir();
  try {
    if (hasWritableLayers(varDir)) (await import("../image/rw.ts")).releaseWritableOf(varDir, store.root, name);
  } catch { /* gc's */ }
  if (!options.rootfs) {
    store.remove(name);
    return { name };
  }
  return { name, rootfs: removeWithRootfs(store, r, marker) };
}

/** "12, 13, 14, …" (at most 8). */
function pidList(pids: readonly number[]): string {
  return `pid${pids.length > 1 ? "s" : ""} ${pids.slice(0, 8).join(", ")}${pids.length > 8 ? ", …" : ""}`;
}

/**
 * Deletes a container whose record is damaged, from what the kernel says of it: refused while
 * processes are in its cgroup unless `force` (then they are killed first, as docker's `rm -f`);
 * then its cgroup, veth (when the record still names one), files and directory. Its rootfs is
 * never removed: nothing says what it is and who else uses it.
 */
async function deleteDamaged(
  store: StateStore,
  name: string,
  found: { damaged: string; salvage: Salvage; view: KernelView },
  options: { force?: boolean; rootfs?: boolean },
): Promise<DeleteResult> {
  const { view, damaged, salvage } = found;
  if (view.procs.length > 0) {
    assertTied(name, found);
    if (!options.force) {
      throw new ContainerStateError(
        `container ${name}'s record is damaged (${damaged}), and ${processes(view.procs.length)} ${
          view.procs.length === 1 ? "is" : "are"
        } still in its cgroup ${view.cgroup} (${pidList(view.procs)}): 'hako stop ${name}' or ` +
          `'hako delete --force ${name}' ends them first`,
      );
    }
    if (!await killMembers(view.dirs, `kill container ${name}`)) {
      throw new ContainerStateError(`container ${name} did not die after SIGKILL`);
    }
  }
  let first: unknown;
  if (salvage.veth) {
    try {
      deleteLink(salvage.veth);
    } catch (e) {
      if (!(e instanceof SyscallError && e.code === "ENODEV")) first ??= e;
    }
  }
  try {
    removeContainerFiles(name);
  } catch (e) {
    first ??= e;
  }
  removeEmptyCgroup(view.cgroup, view.dirs);
  store.remove(name);
  if (first) throw first;
  if (!options.rootfs) return { name };
  const path = salvage.rootfs ?? "";
  return {
    name,
    rootfs: {
      path,
      removed: false,
      kept: "unknown",
      message: `kept the rootfs${path ? ` ${path}` : ""} of ${name}: its record is damaged (${damaged}), so ` +
        `nothing says that hako extracted it or who else uses it`,
    },
  };
}

/** What {@link collectGarbage} found (and removed unless `dryRun`). */
export interface GarbageReport {
  /**
   * Containers removed: half-made ones whose supervisor died, dead ones and exited ones, and
   * container directories without a valid record (a crash between the reservation and the first
   * write) left alone for a minute.
   */
  readonly containers: string[];
  /** Cgroup directories named hako-* that no container owns, removed when empty. */
  readonly cgroups: string[];
  /** veth host ends named hk-* that no container owns. */
  readonly links: string[];
  /**
   * Rootfs directories removed: those hako extracted for containers that never ran and whose
   * records are gone, and what an interrupted extraction or removal left beside a rootfs
   * (`.NAME.hako-tmp-XXXXXX`, `.NAME.hako-rm-XXXXXXXXXXXX`, `NAME.building-PID`).
   */
  readonly rootfs: string[];
  /**
   * Stale files: a dead supervisor's socket and pid file, temp files of writers that died, and
   * hako's notes about rootfs directories that are gone.
   */
  readonly files: string[];
  /**
   * Containers left alone although they look like garbage, and why: processes are still in their
   * cgroup (a damaged record's container, or one whose init ended while what it started lives
   * on). gc never removes the record of a container that has live processes: `hako stop` or
   * `hako delete --force` ends them first.
   */
  readonly kept: Array<{ readonly container: string; readonly why: string }>;
}

/** Files a writer that died left: `.state.json.PID` (a record's temp) and `.NAME.PID.tmp`. */
function deadWritersFiles(dir: string): string[] {
  return readdirOrEmpty(dir).filter((f) => {
    const m = /^\.state\.json\.(\d+)$/.exec(f) ?? /^\..+\.(\d+)\.tmp$/.exec(f) ?? /^.+\.(\d+)\.tmp$/.exec(f);
    return m !== null && !existsSync(`/proc/${m[1]}`);
  }).map((f) => join(dir, f));
}

/** True when something in a record-less container directory changed within `ms`, or a live writer is at it. */
function touchedWithin(dir: string, ms: number): boolean {
  const since = Date.now() - ms;
  try {
    if (lstatSync(dir).mtimeMs >= since) return true;
  } catch {
    return false;
  }
  for (const f of readdirOrEmpty(dir)) {
    const m = /^\.state\.json\.(\d+)$/.exec(f);
    if (m && existsSync(`/proc/${m[1]}`)) return true;
    try {
      if (lstatSync(join(dir, f)).mtimeMs >= since) return true;
    } catch { /* gone */ }
  }
  return false;
}

/** The pids in a container's cgroup (the init's, from /proc), for gc's count of who uses a rootfs. */
function containerPids(r: StateRecord): number[] {
  if (!r.init || !isRunning(r.init)) return [];
  const pids = [r.init.pid];
  for (const d of containerCgroupDirs(r.init.pid, r.cgroup)) {
    for (const line of (read(join(d, "cgroup.procs")) ?? "").split("\n")) if (line) pids.push(Number(line));
  }
  return pids;
}

/**
 * Finds and removes what dead or half-made containers and crashes left: their cgroups, veths and
 * state; container directories without a valid record; the rootfs hako extracted for containers
 * that never ran once nobody uses it; what interrupted extractions and removals left beside a
 * rootfs; temp files of writers that died; hako-named cgroups and veths no container owns; and a
 * dead supervisor's socket. Running containers are never touched, nor anything a live process
 * holds: a container whose record is damaged, or says it ended, while processes are in its cgroup
 * is kept and named in `kept`. `dryRun` reports the same list and removes nothing.
 */
export async function collectGarbage(
  options: { dryRun?: boolean; store?: StateStore } = {},
): Promise<GarbageReport> {
  const store = options.store ?? new StateStore();
  const dryRun = options.dryRun === true;
  const { extractionTempPrefix, TARBALL_MARKER } = await import("./tarball.ts");
  const report: GarbageReport = { containers: [], cgroups: [], links: [], rootfs: [], files: [], kept: [] };
  const keepCgroups = new Set<string>(), keepLinks = new Set<string>();
  /** Containers removed (or, dry, that would be): neither they nor their processes keep a rootfs. */
  const doomed = new Set<string>(), doomedPids = new Set<number>();
  /** Where to look for what an interrupted extraction or removal left: parent → rootfs names. */
  const beside = new Map<string, Set<string>>();
  const lookBeside = (path: string) => {
    const c = canonicalPath(path);
    const names = beside.get(dirname(c)) ?? new Set<string>();
    names.add(basename(c));
    beside.set(dirname(c), names);
  };
  for (const name of store.names()) {
    const got = store.inspect(name);
    if (got.kind === "none") continue; // removed meanwhile
    if (got.kind === "damaged") {
      // What the kernel says of it: a container whose record is damaged may still run.
      const v = kernelView(name, got.salvage, store);
      if (v.procs.length > 0) {
        keepCgroups.add(v.cgroup);
        if (got.salvage.veth) keepLinks.add(got.salvage.veth);
        report.kept.push({
          container: name,
          why:
            `its record is damaged (${got.problem}), and ${processes(v.procs.length)} ${
              v.procs.length === 1 ? "is" : "are"
            } still in ${v.tie ? "its" : "the"} cgroup ${v.cgroup} (${pidList(v.procs)}${
              v.tie ? `; ${v.tie}` : ""
            }): ` +
            (v.tie
              ? `'hako stop ${name}' or 'hako delete --force ${name}' ends them`
              : "nothing ties them to it (another state directory's container of the same name?)"),
        });
        continue;
      }
      // A directory without a record: a crash between mkdir and the first write — or a
      // reservation under way right now, hence the minute's wait. (A record is replaced whole, by
      // rename: one that is there but damaged is no write under way.)
      const noRecord = !existsSync(join(store.dir(name), "state.json"));
      if (noRecord && touchedWithin(store.dir(name), ORPHAN_AGE_MS)) continue;
      report.containers.push(name);
      if (!dryRun) {
        removeEmptyCgroup(v.cgroup, v.dirs);
        try {
          removeContainerFiles(name);
        } catch { /* its files: gone already */ }
        store.remove(name);
      }
      continue;
    }
    const r = got.record;
    lookBeside(r.rootfs);
    const info = containerInfo(r);
    if (info.state === "running" || (info.state === "creating" && isRunning(r.owner))) {
      if (r.cgroup) keepCgroups.add(r.cgroup);
      if (r.veth) keepLinks.add(r.veth);
      for (const f of deadWritersFiles(store.dir(name))) {
        report.files.push(f);
        if (!dryRun) rmSync(f, { force: true });
      }
      continue;
    }
    if (r.state !== "creating" && r.cgroup) {
      // Ended (or its init is gone), but what it started may live on in its cgroup: kept until
      // someone says to kill them. (A half-made container, its supervisor dead, is killed below.)
      const left = cgroupProcs(existingCgroupDirs(r.cgroup));
      if (left.length > 0) {
        keepCgroups.add(r.cgroup);
        if (r.veth) keepLinks.add(r.veth);
        report.kept.push({
          container: name,
          why: `its record says ${describeState(r)}, but ${processes(left.length)} ${
            left.length === 1 ? "is" : "are"
          } still in its cgroup ${r.cgroup} (${pidList(left)}): 'hako delete --force ${name}' kills them`,
        });
        continue;
      }
    }
    report.containers.push(name);
    doomed.add(name);
    for (const pid of containerPids(r)) doomedPids.add(pid);
    if (dryRun) continue;
    if (r.init && isRunning(r.init)) {
      signalIdentified(r.init, "KILL", `kill half-made container ${name}`);
      await waitGone(r, 5000);
    }
    releaseResources(r);
    store.remove(name);
  }
  const records = () => store.list().filter((r) => !doomed.has(r.name));

  // Rootfs directories moved aside for removal by a process that died before it was done.
  const trash = trashedRootfs(store.root);
  for (const t of trash) {
    if (isRunning(t.owner)) continue;
    if (existsSync(t.path)) report.rootfs.push(t.path);
    else report.files.push(t.file);
    if (!dryRun) removeAside(store.root, t.path);
  }

  // Extractions for containers that never ran: once the process that asked for one is gone and
  // no record or live process uses the rootfs, it goes (under its lock, as delete --rootfs).
  const pending = pendingRootfs(store.root);
  for (const p of pending) {
    lookBeside(p.path);
    if (isRunning(p.writer)) continue; // its extraction or start may still be under way
    let aside: string | undefined;
    // A dry run takes no lock: it creates nothing, not even a lock file.
    const locked = <T>(fn: (l: { id: RootfsId | undefined }) => T) =>
      dryRun ? fn({ id: rootfsId(p.path) }) : withRootfsLock(store.root, p.path, fn);
    const outcome = locked(({ id }) => {
      if (!id) return "absent";
      if (usersOf(id, records(), doomedPids).length > 0) return "used";
      const no = whyNotRemovable(id, p.tarball, TARBALL_MARKER);
      if (no?.kind === "unsafe") return "unsafe";
      if (no) return "not-hakos";
      report.rootfs.push(id.path);
      if (!dryRun) {
        aside = moveRootfsAside(store.root, id, selfIdentity());
        rmSync(p.file, { force: true });
      }
      return "removed";
    });
    if (aside) removeAside(store.root, aside);
    if (outcome === "absent" || outcome === "not-hakos") {
      // Never extracted (what an interrupted extraction left is collected below), removed by
      // hand, or something else is there now: the note is stale.
      report.files.push(p.file);
      if (!dryRun) rmSync(p.file, { force: true });
    }
  }

  // What an interrupted extraction (tarball.ts: `.NAME.hako-tmp-XXXXXX`), build (rootfs.ts:
  // `NAME.building-PID`) or removal (`.NAME.hako-rm-…`) left beside a rootfs hako knows of — unless
  // a live process holds it (an extraction in progress keeps a directory fd of it open), the
  // process that asked for the extraction still runs, or removing it would reach beyond it.
  const busyNames = new Set(pending.filter((p) => isRunning(p.writer)).map((p) => p.path));
  const busyAsides = new Set(trash.filter((t) => isRunning(t.owner)).map((t) => t.path));
  const leftovers: string[] = [];
  for (const [parent, names] of beside) {
    const entries = readdirOrEmpty(parent);
    for (const n of names) {
      if (busyNames.has(join(parent, n))) continue;
      const tmp = extractionTempPrefix(n), rm = `.${n}${TRASH_INFIX}`;
      for (const e of entries) {
        const path = join(parent, e);
        const build = e.startsWith(`${n}.building-`) ? /^\d+$/.exec(e.slice(n.length + 10)) : null;
        const ours = (e.startsWith(tmp) && e.length === tmp.length + 6) ||
          (e.startsWith(rm) && !busyAsides.has(path)) ||
          (build !== null && !existsSync(`/proc/${build[0]}`));
        if (!ours || leftovers.includes(path) || report.rootfs.includes(path)) continue;
        try {
          if (!lstatSync(path).isDirectory()) continue;
        } catch {
          continue;
        }
        if (mountsAtOrUnder(path).length > 0) continue;
        if (untrustedWayTo(path, process.geteuid?.() ?? 0, nodeTrustFs)) continue;
        leftovers.push(path);
      }
    }
  }
  const held = holders(leftovers);
  for (const path of leftovers) {
    if (held.has(path)) continue;
    report.rootfs.push(path);
    if (!dryRun) rmSync(path, { recursive: true, force: true });
  }

  // Locks of rootfs directories that are gone, and temp files of writers that died.
  report.files.push(...staleRootfsLocks(store.root, dryRun));
  for (const f of [...deadWritersFiles(store.root), ...deadWritersFiles(join(store.root, "rootfs"))]) {
    report.files.push(f);
    if (!dryRun) rmSync(f, { force: true });
  }

  // Orphans: containers' cgroups under hako's parent (and the older hako-* directly under a
  // hierarchy's root) that no container owns, and veths named hk-*-h.
  try {
    for (const m of detect().mounts) {
      const names: string[] = [];
      try {
        names.push(...readdirSync(m.mountPoint).filter((e) => e.startsWith("hako-")));
      } catch { /* unreadable */ }
      try {
        names.push(
          ...readdirSync(join(m.mountPoint, DEFAULT_CGROUP_PARENT)).map((e) => `${DEFAULT_CGROUP_PARENT}/${e}`),
        );
      } catch { /* none */ }
      for (const e of names) {
        if (keepCgroups.has(e)) continue;
        const dir = join(m.mountPoint, e);
        const procs = read(join(dir, "cgroup.procs"));
        if (procs === undefined || procs.trim() !== "") continue; // not a cgroup, or in use
        // A container made by a script (no state) has an empty cgroup between its creation and
        // the attach: only cgroups left alone for a minute count as orphans.
        if (Date.now() - statSync(dir).mtimeMs < ORPHAN_AGE_MS) continue;
        report.cgroups.push(dir);
        if (!options.dryRun) {
          try {
            rmdirSync(dir);
          } catch { /* children or busy: left, and reported */ }
        }
      }
      if (!options.dryRun) {
        try {
          rmdirSync(join(m.mountPoint, DEFAULT_CGROUP_PARENT)); // hako's own parent, once empty
        } catch { /* in use, or none */ }
      }
    }
  } catch { /* no cgroups mounted */ }
  for (const link of readdirSafe("/sys/class/net")) {
    if (!/^hk-[0-9a-f]{8}-h$/.test(link) || keepLinks.has(link)) continue;
    // A pair whose other end is in another network namespace belongs to a live container (of
    // another state directory, or made by a script): the kernel removes both ends when that
    // namespace goes. Only a pair left whole on the host (a crash before its move) is an orphan.
    if (!peerOnHost(link)) continue;
    report.links.push(link);
    if (!options.dryRun) {
      try {
        deleteLink(link);
      } catch { /* gone */ }
    }
  }
  const pidText = read(store.file("supervisor.pid"));
  const [p, s] = (pidText ?? "").trim().split(" ").map(Number);
  const supervisorAlive = p !== undefined && s !== undefined && isRunning({ pid: p, startTime: s });
  if (!supervisorAlive) {
    for (const f of ["supervisor.sock", "supervisor.pid"]) {
      if (existsSync(store.file(f))) {
        report.files.push(store.file(f));
        if (!options.dryRun) rmSync(store.file(f), { force: true });
      }
    }
  }
  return report;
}

/** True when veth `link`'s peer is in this network namespace (or it has none): their ifindex and iflink cross. */
function peerOnHost(link: string): boolean {
  const num = (l: string, f: string) => Number(read(`/sys/class/net/${l}/${f}`)?.trim() ?? NaN);
  const index = num(link, "ifindex"), peer = num(link, "iflink");
  if (!(index > 0) || !(peer > 0)) return false;
  if (peer === index) return true;
  return readdirSafe("/sys/class/net").some((l) =>
    l !== link && num(l, "ifindex") === peer && num(l, "iflink") === index
  );
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
