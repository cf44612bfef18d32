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
} from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import process from "node:process";
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
  nodeTrustFs,
  selfIdentity,
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
const O_NOFOLLOW = 0o400000;
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
   * extraction), `gone` (nothing is there).
   */
  readonly kept?: "in-use" | "not-extracted" | "not-hakos" | "gone";
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
 * @returns What became of the rootfs, when `rootfs` was asked for.
 * @throws {ContainerStateError} When it runs and `force` is not given, or when there is no such container.
 * @throws {RootfsRemovalError} When the container was deleted but its rootfs could not be removed
 *   safely (a mount point under it, a way to it others could change, a failed rename).
 */
export async function deleteContainer(
  name: string,
  options: { force?: boolean; rootfs?: boolean; store?: StateStore } = {},
): Promise<DeleteResult> {
  const store = options.store ?? new StateStore();
  const r = store.read(name);
  // tarball.ts (node:zlib, node-tar) only where a rootfs may be removed: `ps` loads this module too.
  const marker = options.rootfs ? (await import("./tarball.ts")).TARBALL_MARKER : "";
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
  if (!options.rootfs) {
    store.remove(name);
    return { name };
  }
  return { name, rootfs: removeWithRootfs(store, r, marker) };
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
}

/** Files a writer that died left: `.state.json.PID` (a record's temp) and `.NAME.PID.tmp`. */
function deadWritersFiles(dir: string): string[] {
  return readdirOrEmpty(dir).filter((f) => {
    const m = /^\.state\.json\.(\d+)$/.exec(f) ?? /^\..+\.(\d+)\.tmp$/.exec(f) ?? /^.+\.(\d+)\.tmp$/.exec(f);
    return m !== null && !existsSync(`/proc/${m[1]}`);
  }).map((f) => join(dir, f));
}

/** The record when it has what gc relies on (a half-written one may parse and still lack it). */
function validRecord(r: StateRecord | undefined, name: string): StateRecord | undefined {
  const x = r as Partial<StateRecord> | undefined;
  const ok = typeof x === "object" && x !== null && x.name === name && typeof x.rootfs === "string" &&
    typeof x.image === "string" && typeof x.state === "string" && typeof x.owner?.pid === "number" &&
    typeof x.spec === "object" && x.spec !== null;
  return ok ? r : undefined;
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
  for (const d of cgroupDirs(r.init.pid, r.cgroup)) {
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
 * holds. `dryRun` reports the same list and removes nothing.
 */
export async function collectGarbage(
  options: { dryRun?: boolean; store?: StateStore } = {},
): Promise<GarbageReport> {
  const store = options.store ?? new StateStore();
  const dryRun = options.dryRun === true;
  const { extractionTempPrefix, TARBALL_MARKER } = await import("./tarball.ts");
  const report: GarbageReport = { containers: [], cgroups: [], links: [], rootfs: [], files: [] };
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
    const r = validRecord(store.tryRead(name), name);
    if (!r) {
      // A directory without a readable record: a crash between mkdir and the first write — or a
      // reservation under way right now, hence the minute's wait.
      if (touchedWithin(store.dir(name), ORPHAN_AGE_MS)) continue;
      report.containers.push(name);
      if (!dryRun) store.remove(name);
      continue;
    }
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
