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
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { Group } from "../cgroup/group.ts";
import { containerGroupSpec, DEFAULT_CGROUP_PARENT, removeEmptyDefaultParent } from "./_cgroup.ts";
import { removeContainerFiles } from "./_files.ts";
import { detect } from "../cgroup/layout.ts";
import { deleteLink } from "../network.ts";
import { SyscallError } from "../errors.ts";
import { type Signal, signalNumber } from "../signals.ts";
import {
  ContainerStateError,
  describeState,
  isRunning,
  signalIdentified,
  type StateRecord,
  StateStore,
} from "./state.ts";

/** What `ps` shows about a container. */
export interface ContainerInfo {
  /** Its name. */
  readonly name: string;
  /** `running`, `exited`, `creating`, or `dead` (recorded as running or creating, but its process is gone and nobody noticed). */
  readonly state: "creating" | "running" | "exited" | "dead";
  /** The init's host pid, while it runs. */
  readonly pid: number | null;
  /** Seconds since it started (until it ended). */
  readonly uptimeSeconds: number | null;
  /** Average CPU use since it started, in percent of one CPU (its cgroup's, else its init's). */
  readonly cpuPercent: number | null;
  /** Memory in use, bytes (its cgroup's memory usage, else the RSS of its processes). */
  readonly memoryBytes: number | null;
  /** Processes in it. */
  readonly pids: number | null;
  /** The tarball or rootfs it runs from. */
  readonly image: string;
  /** How it ended (null: unknown), once exited. */
  readonly exit?: StateRecord["exit"];
  /** A note (why the status is unknown, …). */
  readonly note?: string;
  /** When it was created, started and finished (ISO times). */
  readonly createdAt: string;
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

/**
 * The directories of cgroup `name` that process `pid` is in (v1: one per hierarchy that has it;
 * v2: one), from /proc/PID/cgroup. Hierarchies where the process sits in its parent's cgroup are
 * left out: their figures are not the container's.
 */
function cgroupDirs(pid: number, name: string | undefined): string[] {
  if (!name) return [];
  const text = read(`/proc/${pid}/cgroup`);
  if (!text) return [];
  let layout;
  try {
    layout = detect();
  } catch {
    return [];
  }
  const dirs: string[] = [];
  for (const line of text.trim().split("\n")) {
    const [, ctrls, path] = line.split(":");
    if (ctrls === undefined || path === undefined || (path !== `/${name}` && !path.endsWith(`/${name}`))) continue;
    for (const m of layout.mounts) {
      const matches = ctrls === ""
        ? m.version === 2
        : m.version === 1 && ctrls.split(",").some((c) => m.subsystems.includes(c.replace(/^name=/, "")));
      if (matches) dirs.push(join(m.mountPoint, path));
    }
  }
  return [...new Set(dirs)];
}

function firstNumber(texts: Array<string | undefined>): number | undefined {
  for (const t of texts) if (t !== undefined && /^\d+/.test(t.trim())) return Number(t.trim().split(/\s/)[0]);
  return undefined;
}

/** Live figures of a running container. */
function liveFigures(r: StateRecord): Pick<ContainerInfo, "cpuPercent" | "memoryBytes" | "pids"> {
  const pid = r.init!.pid;
  const dirs = cgroupDirs(pid, r.cgroup);
  const procsText = dirs.map((d) => read(join(d, "cgroup.procs"))).find((t) => t !== undefined);
  const procs = procsText ? procsText.trim().split("\n").filter(Boolean).map(Number) : [pid];
  const startedMs = r.startedAt ? Date.parse(r.startedAt) : Date.parse(r.createdAt);
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
  return { cpuPercent: Math.round((cpuSeconds / uptime) * 1000) / 10, memoryBytes: memory, pids: procs.length };
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
  const figures = running ? liveFigures(r) : { cpuPercent: null, memoryBytes: null, pids: null };
  return {
    name: r.name,
    state,
    pid: running ? r.init!.pid : null,
    uptimeSeconds: began !== undefined && (running || r.state === "exited")
      ? Math.round((end - began) / 100) / 10
      : null,
    ...figures,
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
  };
}

/** Every container in the state directory, with live figures. */
export function listContainers(store: StateStore = new StateStore()): ContainerInfo[] {
  return store.list().map(containerInfo);
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

/** A running container's record, or a clear error. */
function runningRecord(store: StateStore, name: string): StateRecord {
  const r = store.read(name);
  if (r.state !== "running" || !isRunning(r.init)) {
    throw new ContainerStateError(`container ${name} is not running (${describeState(r)})`);
  }
  return r;
}

/**
 * Sends a signal to a running container's init (pid and start time checked).
 * @throws {ContainerStateError} When there is no such container or it is not running.
 */
export function killContainer(name: string, sig: Signal = "KILL", store: StateStore = new StateStore()): void {
  signalNumber(sig); // a bad signal name fails before anything else
  const r = runningRecord(store, name);
  if (!signalIdentified(r.init!, sig, `signal container ${name}`)) {
    throw new ContainerStateError(`container ${name} is not running (it just ended)`);
  }
}

/** Waits until the process is gone (its supervisor reaped it, or it is not ours), up to `ms`. */
async function waitGone(r: StateRecord, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  let delay = 2;
  while (isRunning(r.init)) {
    if (Date.now() >= until) return false;
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(delay * 2, 50);
  }
  return true;
}

/** Waits (briefly) until a supervisor has recorded the end, so `ps` then shows the exit status. */
async function waitRecorded(store: StateStore, name: string, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const r = store.tryRead(name);
    if (!r || r.state !== "running" || !isRunning(r.owner)) return;
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** How {@link stopContainer} ended it. */
export type StopResult = "terminated" | "killed" | "not-running";

/**
 * Stops a container: SIGTERM, then SIGKILL when it is still there after `timeoutMs` (default 10 s).
 * Note that PID 1 of a PID namespace ignores SIGTERM unless it handles it, so many containers end
 * only at the SIGKILL.
 */
export async function stopContainer(
  name: string,
  options: { timeoutMs?: number; store?: StateStore } = {},
): Promise<StopResult> {
  const store = options.store ?? new StateStore();
  const r = store.read(name);
  if (r.state !== "running" || !isRunning(r.init)) return "not-running";
  let result: StopResult = "terminated";
  signalIdentified(r.init!, "TERM", `stop container ${name}`);
  if (!await waitGone(r, options.timeoutMs ?? 10_000)) {
    result = "killed";
    signalIdentified(r.init!, "KILL", `kill container ${name}`);
    await waitGone(r, 10_000);
  }
  await waitRecorded(store, name);
  markEndedIfOrphan(store, name);
  return result;
}

/** When nobody reaps a container that ended (its supervisor is gone), records that and releases its resources. */
function markEndedIfOrphan(store: StateStore, name: string): void {
  const r = store.tryRead(name);
  if (!r || r.state === "exited" || isRunning(r.init) || isRunning(r.owner)) return;
  store.update(name, (x) => ({
    ...x,
    state: "exited",
    exit: null,
    finishedAt: new Date().toISOString(),
    note: "ended while no supervisor ran: exit status unknown",
  }));
  releaseResources(r);
}

/**
 * Deletes a container: its cgroup, veth, state and logs, and with `rootfs` the rootfs hako
 * extracted for it from a tarball.
 * @throws {ContainerStateError} When it runs and `force` is not given, or when there is no such container.
 */
export async function deleteContainer(
  name: string,
  options: { force?: boolean; rootfs?: boolean; store?: StateStore } = {},
): Promise<void> {
  const store = options.store ?? new StateStore();
  const r = store.read(name);
  const alive = isRunning(r.init);
  if (alive && (r.state !== "creating" || isRunning(r.owner))) {
    if (!options.force) {
      throw new ContainerStateError(`container ${name} is ${r.state}: stop it first, or delete --force`);
    }
    signalIdentified(r.init!, "KILL", `kill container ${name}`);
    if (!await waitGone(r, 10_000)) throw new ContainerStateError(`container ${name} did not die after SIGKILL`);
    await waitRecorded(store, name);
  } else if (alive) {
    signalIdentified(r.init!, "KILL", `kill half-made container ${name}`);
    await waitGone(r, 10_000);
  }
  releaseResources(r);
  if (options.rootfs && r.extracted) rmSync(r.rootfs, { recursive: true, force: true });
  store.remove(name);
}

/** What {@link collectGarbage} found (and removed unless `dryRun`). */
export interface GarbageReport {
  /** Containers removed: half-made ones whose supervisor died, dead ones and exited ones. */
  readonly containers: string[];
  /** Cgroup directories named hako-* that no container owns, removed when empty. */
  readonly cgroups: string[];
  /** veth host ends named hk-* that no container owns. */
  readonly links: string[];
  /** Stale supervisor files (socket, pid) with no supervisor behind them. */
  readonly files: string[];
}

/**
 * Finds and removes what dead or half-made containers left: their cgroups, veths and state, plus
 * hako-named cgroups and veths no container owns, and a dead supervisor's socket. Running
 * containers are never touched.
 */
export async function collectGarbage(
  options: { dryRun?: boolean; store?: StateStore } = {},
): Promise<GarbageReport> {
  const store = options.store ?? new StateStore();
  const report = { containers: [] as string[], cgroups: [] as string[], links: [] as string[], files: [] as string[] };
  const keepCgroups = new Set<string>(), keepLinks = new Set<string>();
  for (const name of store.names()) {
    const r = store.tryRead(name);
    if (!r) {
      // A directory without a readable record: a crash between mkdir and the first write.
      report.containers.push(name);
      if (!options.dryRun) store.remove(name);
      continue;
    }
    const info = containerInfo(r);
    if (info.state === "running" || (info.state === "creating" && isRunning(r.owner))) {
      if (r.cgroup) keepCgroups.add(r.cgroup);
      if (r.veth) keepLinks.add(r.veth);
      continue;
    }
    report.containers.push(name);
    if (options.dryRun) continue;
    if (r.init && isRunning(r.init)) {
      signalIdentified(r.init, "KILL", `kill half-made container ${name}`);
      await waitGone(r, 5000);
    }
    releaseResources(r);
    store.remove(name);
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

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
