/**
 * Containers' state on disk, shared by every hako process on the host: the supervisor that runs
 * daemonized containers, and the CLI commands (`ps`, `kill`, `stop`, `delete`, `gc`, `exec`) that
 * must keep working when the supervisor is gone.
 *
 * Layout, under the state directory (`HAKO_STATE_DIR`, default `/run/hako`):
 *
 * ```text
 * /run/hako/
 *   supervisor.sock        the supervisor's unix socket
 *   supervisor.pid         its pid and start time ("PID START")
 *   supervisor.lock        flock'ed by the running supervisor (one per host)
 *   supervisor.log         its own messages
 *   containers/NAME/
 *     state.json           the record below, replaced atomically (write + rename)
 *     lock                 flock'ed around read-modify-write of state.json
 *     log, log.1           the container's stdout, a timestamp at the start of each line (capped at
 *                          HAKO_LOG_MAX each: log.1 is the previous part); its stderr too without a relay
 *     log.fifo             the FIFO the container writes its stdout to (it holds it open read-write)
 *     log.relay            the pid and start time ("PID START") of the relay from the FIFO to log
 *                          (src/supervisor/container_log.ts; no file: the container appends to log
 *                          itself, without timestamps)
 *     log.err, log.err.1, log.err.fifo, log.err.relay   the same for its stderr (with a relay)
 *   rootfs/                locks and notes about the rootfs directories hako extracts (see _rootfs_ref.ts)
 * ```
 *
 * A name is reserved by `mkdir containers/NAME`, which is atomic: of two `hako start` of one name
 * at the same moment exactly one wins.
 *
 * Nobody but the user who runs hako (root, or the rootless user) may reach any of it: the state
 * directory and `containers/` are 0700 and that user's, whatever the umask, and so is the way to
 * them (see {@link StateStore.prepare}); a directory found open to others is closed (when it is
 * that user's) or refused (when it is not) before anything in it is trusted — its records name
 * pids to signal and cgroups to remove, and the supervisor's socket runs containers for whoever
 * reaches it. Files are created 0600 and never through a symlink.
 *
 * Processes are identified by pid **and** start time (field 22 of `/proc/PID/stat`), and
 * signalled through a pidfd opened before the start time is checked, so a reused pid is never
 * signalled.
 *
 * @module
 */
import {
  chmodSync,
  closeSync,
  constants as fsConstants,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { checkRetry, errno, libc } from "../../ffi/libc.ts";
import { cstr } from "../../ffi/cstring.ts";
import { fsError, SyscallError } from "../errors.ts";
import { octalMode, untrustedWayTo, writableByOthers } from "../_trusted_path.ts";
import type { ContainerSpec } from "./spec.ts";
import { resolveStateDir } from "./state_dir.ts";
import { dropPendingRootfs, notePendingRootfs, withRootfsLock } from "./_rootfs_ref.ts";
import { ENOENT, O_CLOEXEC, O_CREAT, O_NOFOLLOW, O_RDWR } from "../../ffi/constants.ts";

export { DEFAULT_STATE_DIR, resolveStateDir } from "./state_dir.ts";
// (in leaf modules of their own, so that hako-runc's state, start, kill and delete load them without
// this one: see src/oci/runtime.ts)
export { identify, isRunning, type ProcessIdentity } from "./_identity.ts";
export { signalCgroupMember, signalIdentified } from "./_signal_identified.ts";
export { nodeTrustFs } from "../_node_trust_fs.ts";
import { identify, type ProcessIdentity } from "./_identity.ts";
import { nodeTrustFs } from "../_node_trust_fs.ts";
import { sleepSync } from "../cgroup/_walk.ts";

/** The state directory: `HAKO_STATE_DIR`, `/run/hako` for root, or the rootless user's own (see `resolveStateDir`). */
export function stateDir(): string {
  return resolveStateDir(process.env.HAKO_STATE_DIR, {
    euid: process.geteuid?.() ?? 0,
    env: (name) => process.env[name],
    lstat: (path) => nodeTrustFs.lstat(path),
  });
}

/** How a container's process ended, as recorded. */
export interface ExitRecord {
  /** The exit code, or null when a signal ended it. */
  readonly code: number | null;
  /** The signal, or null. */
  readonly signal: number | null;
  /** The shell's code: the exit code, or 128 + signal. */
  readonly shellCode: number;
}

/** A container's life as recorded on disk. */
export type LifeState = "creating" | "running" | "exited";

/** What `state.json` holds. */
export interface StateRecord {
  /** The record format. */
  readonly version: 1;
  /** The container's name (its directory's name). */
  readonly name: string;
  /** `creating` while set up, `running` once its command was exec'd, `exited` when reaped (or found gone). */
  readonly state: LifeState;
  /** The container's init, once forked. */
  readonly init?: ProcessIdentity;
  /** The supervisor that made it (or the process, for a foreground container). */
  readonly owner: ProcessIdentity;
  /** When it was reserved (ISO time). */
  readonly createdAt: string;
  /** When its command was exec'd. */
  readonly startedAt?: string;
  /** When it ended (or was found gone). */
  readonly finishedAt?: string;
  /** How it ended; null when it ended while no hako process was its parent (the code is lost). */
  readonly exit?: ExitRecord | null;
  /** A note for `ps` (e.g. why the exit status is unknown, or the setup error). */
  readonly note?: string;
  /** The spec it was made from (JSON: no callbacks). */
  readonly spec: ContainerSpec;
  /** The spec file, when it came from one. */
  readonly specFile?: string;
  /** What `ps` shows as its image: the tarball, or the rootfs directory. */
  readonly image: string;
  /** The rootfs directory on the host. */
  readonly rootfs: string;
  /** True when hako extracted the rootfs from a tarball (so `delete --rootfs` may remove it). */
  readonly extracted: boolean;
  /** The cgroup's name, when it has one. */
  readonly cgroup?: string;
  /** The host end of its veth pair, when it has one. */
  readonly veth?: string;
  /**
   * Processes the OOM killer killed in its cgroup (its memory limit), read when it ended and
   * before its cgroup was removed; absent when none.
   */
  readonly oomKilled?: number;
  /** Forks and clones its pids limit refused (`pids.events` max), read when it ended; absent when none. */
  readonly failedForks?: number;
  /** Times its supervisor started it again (its spec's `restart` policy); absent when none. */
  readonly restartCount?: number;
  /** When its supervisor will start it again (ISO time), while it waits to (`exited` meanwhile). */
  readonly restartAt?: string;
  /**
   * True once the user stopped it (`hako stop`, `kill`, `rm -f`): its supervisor never restarts
   * it (docker's `HasBeenManuallyStopped`).
   */
  readonly stoppedByUser?: boolean;
}

/**
 * What is still known of a container whose record is damaged: the fields of it that are still
 * readable, each checked on its own (from the parsed object, or read out of a record cut short).
 */
export interface Salvage {
  /** Its cgroup's name, when the record still says it. */
  readonly cgroup?: string;
  /** Its init, when the record still names it (check it with {@link isRunning}). */
  readonly init?: ProcessIdentity;
  /** The process that made it (its supervisor, or a foreground `hako run`), when the record still names it. */
  readonly owner?: ProcessIdentity;
  /** The host end of its veth pair (hako's naming only). */
  readonly veth?: string;
  /** Its rootfs directory. */
  readonly rootfs?: string;
  /** Its image. */
  readonly image?: string;
  /** When it was reserved. */
  readonly createdAt?: string;
}

/**
 * What {@link StateStore.inspect} found for a name: a record (`ok`); a container directory whose
 * record is missing, unreadable or of the wrong shape (`damaged`: what is wrong, and what is still
 * known); or no container directory at all (`none`).
 */
export type RecordRead =
  | { readonly kind: "ok"; readonly record: StateRecord }
  | { readonly kind: "damaged"; readonly problem: string; readonly salvage: Salvage }
  | { readonly kind: "none" };

/**
 * A new record's `image` and `extracted` (pure), the same wherever a record is made (the
 * supervisor, `hako start`, a spec module): the tarball it was extracted from, the image of the
 * store it runs on (`name:tag`), else its rootfs directory.
 * @param rootfs The spec's `rootfs`.
 * @param rootfsPath The resolved rootfs directory.
 */
export function recordImage(
  rootfs: ContainerSpec["rootfs"],
  rootfsPath: string,
): { readonly image: string; readonly extracted: boolean } {
  const tarball = typeof rootfs === "object" && "tarball" in rootfs ? rootfs.tarball : undefined;
  const image = typeof rootfs === "object" && "image" in rootfs ? rootfs.image : undefined;
  return { image: tarball ?? image ?? rootfsPath, extracted: tarball !== undefined };
}

/** An error about a named container that the CLI prints as it is (exit 1). */
export class ContainerStateError extends Error {
  /**
   * Makes the error.
   * @param message What is wrong, naming the container.
   */
  constructor(message: string) {
    super(message);
    this.name = "ContainerStateError";
  }
}

/**
 * A state directory hako will not use: owned by someone else, under a directory someone else may
 * change, or holding what someone else put there while it was open. Nothing was done in it.
 */
export class StateDirError extends ContainerStateError {
  /** The state directory. */
  readonly path: string;
  /**
   * Makes the error.
   * @param path The state directory.
   * @param problem What is wrong, naming the path at fault.
   */
  constructor(path: string, problem: string) {
    super(
      `cannot use the state directory ${path}: ${problem}. hako keeps it 0700 and owned by the user who runs ` +
        `hako; fix or remove it, or set HAKO_STATE_DIR to another`,
    );
    this.name = "StateDirError";
    this.path = path;
  }
}

/** How a record's temp file is opened: never through a symlink. */
const WRITE_PRIVATE = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | O_NOFOLLOW;
const LOCK_EX = 2, LOCK_UN = 8;

/** State directories this process prepared: `uid:root` → the directory's identity then. */
const preparedDirs = new Map<string, { readonly dev: bigint; readonly ino: bigint }>();

/** True when `root` is still that directory (same inode), the caller's, 0700 or 0711. */
function sameDir(root: string, known: { readonly dev: bigint; readonly ino: bigint }, uid: number): boolean {
  const st = lstatSync(root, { bigint: true, throwIfNoEntry: false });
  if (!st || !st.isDirectory() || st.dev !== known.dev || st.ino !== known.ino || Number(st.uid) !== uid) return false;
  const mode = Number(st.mode) & 0o7777;
  if (mode !== 0o700 && mode !== 0o711) return false;
  const containers = lstatSync(join(root, "containers"), { throwIfNoEntry: false });
  return !!containers && containers.isDirectory() && containers.uid === uid && (containers.mode & 0o7777) === 0o700;
}

/** The containers' state directories under a state directory. */
export class StateStore {
  /** The state directory (absolute). */
  readonly root: string;
  /** The user hako runs as, who must own the state directory. */
  readonly #uid: number;
  #prepared = false;
  #checked = false;

  /**
   * Names a state directory; nothing is touched until it is used.
   * @param root The state directory (default {@link stateDir}); a relative one is taken from the
   *   current directory.
   */
  constructor(root: string = stateDir()) {
    this.root = resolve(root);
    this.#uid = libc().geteuid();
  }

  /**
   * Makes the state directory and its `containers/` when missing — 0700 whatever the umask,
   * parents included — and makes sure nobody else can reach them: the way to it must be root's
   * or the caller's and not writable by others (sticky directories such as /tmp excepted); the
   * directory and `containers/` must be the caller's (a `containers/` that is a symlink is
   * refused). One that is the caller's with another mode is set to 0700; if others could write to
   * it, everything in it must be the caller's too. Checked once per store.
   * @throws {StateDirError} When the directory cannot be trusted; nothing was made then.
   */
  prepare(): void {
    if (this.#prepared) return;
    // Another store of this directory in this process checked it already, and it is still the
    // same directory (its inode): the walk up to it is not repeated for every container.
    const key = `${this.#uid}:${this.root}`;
    const known = preparedDirs.get(key);
    if (known !== undefined && sameDir(this.root, known, this.#uid)) {
      this.#prepared = this.#checked = true;
      return;
    }
    this.#checkWay();
    mkdirSync(dirname(this.root), { recursive: true, mode: 0o700 });
    this.#privateDir(this.root, true);
    this.#privateDir(join(this.root, "containers"), true);
    this.#prepared = this.#checked = true;
    const st = lstatSync(this.root, { bigint: true });
    preparedDirs.set(key, { dev: st.dev, ino: st.ino });
  }

  /**
   * {@link StateStore.prepare}'s checks of what exists, making nothing: for the commands that
   * only read (a record in a directory others could write could name anyone's process or cgroup).
   * @throws {StateDirError} When the directory cannot be trusted.
   */
  check(): void {
    if (this.#checked || this.#prepared) return;
    if (existsSync(this.root)) {
      this.#checkWay();
      this.#privateDir(this.root, false);
      this.#privateDir(join(this.root, "containers"), false);
    }
    this.#checked = true;
  }

  #checkWay(): void {
    const problem = untrustedWayTo(this.root, this.#uid, nodeTrustFs);
    if (problem) throw new StateDirError(this.root, problem);
  }

  /** One of the state's directories: made (when `create`) 0700, the caller's, closed to others. */
  #privateDir(path: string, create: boolean): void {
    const isRoot = path === this.root;
    if (create) {
      try {
        mkdirSync(path, { mode: 0o700 });
        chmodSync(path, 0o700); // whatever the umask took away
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") throw fsError(e, "mkdir", path, "make the state directory");
      }
    }
    let st: Stats;
    try {
      // The state directory itself may be a symlink (its way was checked); containers/ may not.
      st = isRoot ? statSync(path) : lstatSync(path);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return;
      throw fsError(e, "stat", path, "check the state directory");
    }
    if (st.isSymbolicLink()) throw new StateDirError(this.root, `${path} is a symlink, not a directory`);
    if (!st.isDirectory()) throw new StateDirError(this.root, `${path} is not a directory`);
    if (st.uid !== this.#uid) {
      throw new StateDirError(this.root, `${path} is owned by uid ${st.uid}, not by uid ${this.#uid} who runs hako`);
    }
    const mode = st.mode & 0o7777;
    // (The root may be 0711: others may pass through it to a container's own files, see filesRoot.)
    if (mode === 0o700 || (isRoot && mode === 0o711)) return;
    chmodSync(path, 0o700);
    if (!writableByOthers(mode)) return;
    // Others could write here: what they may have put in is not hako's.
    for (const name of readdirSync(path)) {
      const entry = join(path, name);
      const owner = lstatSync(entry).uid;
      if (owner !== this.#uid) {
        throw new StateDirError(
          this.root,
          `${entry} is owned by uid ${owner}: ${path} was open to others (mode ${octalMode(mode)}, now 0700) and ` +
            `this was not made by hako`,
        );
      }
    }
  }

  /**
   * Where containers' own files (`/etc/hosts`…, see `_files.ts`) live: `<state>/files`, made when
   * missing. A container with a user namespace binds them from inside it, as its root — a host uid
   * with no rights on the state directory — so `files/` and the state directory itself are 0711:
   * passable, but neither listable nor writable; each container's directory in it is 0700 and its
   * own root's. `containers/` stays 0700.
   */
  filesRoot(): string {
    this.prepare();
    const files = join(this.root, "files");
    let st = lstatSync(files, { throwIfNoEntry: false });
    if (!st) {
      try {
        mkdirSync(files, { mode: 0o711 });
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") {
          throw fsError(e, "mkdir", files, "make the containers' files directory");
        }
      }
      st = lstatSync(files);
    }
    if (!st.isDirectory() || st.uid !== this.#uid) {
      throw new StateDirError(this.root, `${files} is not a directory of uid ${this.#uid}'s`);
    }
    if ((st.mode & 0o7777) !== 0o711) chmodSync(files, 0o711);
    if ((statSync(this.root).mode & 0o7777) !== 0o711) chmodSync(this.root, 0o711);
    return files;
  }

  /** The directory of container `name`. */
  dir(name: string): string {
    return join(this.root, "containers", name);
  }

  /** Its log file (the previous part is `log.1`). */
  logPath(name: string): string {
    return join(this.dir(name), "log");
  }

  /** The FIFO its stdout and stderr go to, read by its log relay. */
  logFifoPath(name: string): string {
    return join(this.dir(name), "log.fifo");
  }

  /** Where its log relay's identity is kept ("PID START"); absent when it has no relay. */
  logRelayPath(name: string): string {
    return join(this.dir(name), "log.relay");
  }

  /** A path in the state directory itself (`supervisor.sock`…). */
  file(name: string): string {
    return join(this.root, name);
  }

  /**
   * Reserves `name` and writes its first record, atomically: exactly one of two concurrent callers
   * wins.
   * @throws {ContainerStateError} When a container of that name exists.
   */
  reserve(record: StateRecord): void {
    this.prepare();
    if (!record.extracted) return this.#reserve(record);
    // A rootfs hako extracted may be removed by `delete --rootfs` of its last user: the new
    // container claims it under the same lock, so that delete either sees this record or has
    // removed the rootfs already (and the new container extracts it again). One that is not there
    // yet is noted as pending until the container runs, so `gc` finds it if a crash comes first.
    withRootfsLock(this.root, record.rootfs, ({ id }) => {
      this.#reserve(record);
      if (!id) notePendingRootfs(this.root, record.rootfs, record.image, record.owner);
    });
  }

  #reserve(record: StateRecord): void {
    try {
      mkdirSync(this.dir(record.name), { mode: 0o700 });
      chmodSync(this.dir(record.name), 0o700); // whatever the umask took away
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      const old = this.inspect(record.name);
      const what = old.kind === "ok"
        ? ` (${describeState(old.record)})`
        : old.kind === "damaged"
        ? ` (its record is damaged: ${old.problem})`
        : "";
      throw new ContainerStateError(
        `a container named ${record.name} already exists${what}; 'hako delete ${record.name}' removes it`,
      );
    }
    this.write(record);
  }

  /**
   * Takes over a name that `from` reserved (`hako start` reserves it, then extracts the rootfs,
   * then asks the supervisor to run it): the reservation — a record still `creating`, without an
   * init, whose owner is `from` — is replaced by `record`, under the container's lock.
   * @throws {ContainerStateError} When there is no such reservation (the name is another
   *   container's, or the reservation is gone).
   */
  takeOver(record: StateRecord, from: ProcessIdentity): void {
    this.prepare();
    const name = record.name;
    const taken = () => {
      const old = this.inspect(name);
      const what = old.kind === "ok"
        ? ` (${describeState(old.record)})`
        : old.kind === "damaged"
        ? ` (its record is damaged: ${old.problem})`
        : "";
      return new ContainerStateError(
        old.kind === "none"
          ? `the reservation of container ${name} is gone (removed by 'hako delete' or 'hako gc'?)`
          : `a container named ${name} already exists${what}; 'hako delete ${name}' removes it`,
      );
    };
    if (!existsSync(this.dir(name))) throw taken();
    const ok = this.withLock(name, () => {
      const old = this.tryRead(name);
      if (!old || old.state !== "creating" || old.init || !sameProcess(old.owner, from)) return false;
      return this.write(record);
    });
    if (!ok) throw taken();
  }

  /** Replaces a container's record atomically (write then rename); false when its directory is gone. */
  write(record: StateRecord): boolean {
    const dir = this.dir(record.name);
    try {
      writePrivateFile(join(dir, "state.json"), JSON.stringify(record, null, 1) + "\n", `.state.json.${process.pid}`);
      // A container runs on its rootfs: the extraction is no longer one that gc may undo.
      if (record.state === "running" && record.extracted) dropPendingRootfs(this.root, record.rootfs);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return false;
      throw e;
    }
  }

  /**
   * Reads a container's record.
   * @throws {ContainerStateError} "no container named NAME", or — for a directory whose record is
   *   missing, unreadable or of the wrong shape — what is wrong with it (the commands that must
   *   work on such a container use {@link StateStore.inspect}).
   */
  read(name: string): StateRecord {
    const r = this.inspect(name);
    if (r.kind === "none") throw new ContainerStateError(`no container named ${name}`);
    if (r.kind === "damaged") {
      throw new ContainerStateError(
        `container ${name}'s record is damaged (${r.problem}): 'hako ps' shows what is known of it; ` +
          `'hako stop', 'kill', 'logs' and 'delete' still work on it`,
      );
    }
    return r.record;
  }

  /** A container's record, or undefined when there is none or it is damaged (see {@link StateStore.inspect}). */
  tryRead(name: string): StateRecord | undefined {
    const r = this.inspect(name);
    return r.kind === "ok" ? r.record : undefined;
  }

  /**
   * What is in container `name`'s directory: its record when it is whole and of the right shape
   * (see {@link recordProblem}); else, when the directory is there, what is wrong with the record
   * and what is still known ({@link Salvage}); else nothing. Never throws for a record's content.
   * @throws {StateDirError} When the state directory cannot be trusted.
   */
  inspect(name: string): RecordRead {
    if (!isValidName(name)) return { kind: "none" };
    this.check();
    const dir = this.dir(name);
    let st: Stats;
    try {
      st = lstatSync(dir);
    } catch {
      return { kind: "none" };
    }
    if (!st.isDirectory()) return { kind: "none" };
    let text: string;
    try {
      text = readFileSync(join(dir, "state.json"), "utf8");
    } catch (e) {
      const code = (e as { code?: string }).code;
      const problem = code === "ENOENT" ? "state.json is missing" : `state.json cannot be read (${code ?? e})`;
      return { kind: "damaged", problem, salvage: {} };
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      const problem = text.trim() === "" ? "state.json is empty" : "state.json is not valid JSON (cut short?)";
      return { kind: "damaged", problem, salvage: salvageText(text) };
    }
    const problem = recordProblem(value, name);
    if (problem) return { kind: "damaged", problem, salvage: salvageObject(value) };
    return { kind: "ok", record: value as StateRecord };
  }

  /** The names of every container directory, sorted. */
  names(): string[] {
    this.check();
    try {
      return readdirSync(join(this.root, "containers")).filter((n) => !n.startsWith(".")).sort();
    } catch {
      return [];
    }
  }

  /** Every whole record, sorted by name (damaged ones are left out: see {@link StateStore.inspect}). */
  list(): StateRecord[] {
    return this.names().map((n) => this.tryRead(n)).filter((r): r is StateRecord => r !== undefined);
  }

  /** Removes a container's directory (record, lock and logs). */
  remove(name: string): void {
    // Retried here until the directory is gone: a supervisor that reaps the container at this
    // moment may write its record or a log relay's file in the directory while it is being
    // emptied (ENOTEMPTY), and Bun's rmSync takes no maxRetries (with `force` the directory was
    // left behind, holding a relay's FIFO: a damaged record in `ps`).
    const dir = this.dir(name);
    for (let attempt = 0;; attempt++) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch (e) {
        if (attempt >= 10) throw e;
      }
      if (!existsSync(dir) || attempt >= 10) return;
      sleepSync(20);
    }
  }

  /**
   * Runs `fn` with the container's lock held (flock, so a crashed holder never blocks anyone),
   * for read-modify-write of its record.
   */
  withLock<T>(name: string, fn: () => T): T {
    const path = join(this.dir(name), "lock");
    const { open, flock, close } = libc();
    this.check();
    const fd = open(cstr(path), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600);
    if (fd === -1) {
      const e = errno();
      if (e === ENOENT) throw new ContainerStateError(`no container named ${name}`);
      throw new SyscallError("open", e, [path], `lock the state of container ${name}`);
    }
    try {
      checkRetry(() => flock(fd, LOCK_EX), "flock", [path], `lock the state of container ${name}`);
      return fn();
    } finally {
      flock(fd, LOCK_UN);
      close(fd);
    }
  }

  /**
   * Reads, changes and writes a record under its lock; nothing when the container is gone.
   * @returns The new record, or undefined.
   */
  update(name: string, change: (r: StateRecord) => StateRecord): StateRecord | undefined {
    if (!existsSync(this.dir(name))) return undefined;
    try {
      return this.withLock(name, () => {
        const r = this.tryRead(name);
        if (!r) return undefined;
        const next = change(r);
        return this.write(next) ? next : undefined;
      });
    } catch (e) {
      if (e instanceof ContainerStateError) return undefined;
      throw e;
    }
  }
}

/**
 * Replaces a file atomically with `text`, 0600: written to a temp file beside it (opened with
 * O_NOFOLLOW, so never through a symlink), then renamed over it.
 * @param path The file.
 * @param text Its new contents.
 * @param tmpName The temp file's name in the same directory (default `.NAME.PID.tmp`).
 */
export function writePrivateFile(path: string, text: string, tmpName?: string): void {
  const tmp = join(dirname(path), tmpName ?? `.${path.slice(path.lastIndexOf("/") + 1)}.${process.pid}.tmp`);
  const fd = openSync(tmp, WRITE_PRIVATE, 0o600);
  try {
    writeFileSync(fd, text);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** True for a valid container name (letters, digits, `.`, `_`, `-`; not starting with `.`). */
export function isValidName(name: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(name);
}

/** True when two identities name the same process. */
export function sameProcess(a: ProcessIdentity | undefined, b: ProcessIdentity | undefined): boolean {
  return !!a && !!b && a.pid === b.pid && a.startTime === b.startTime;
}

const LIFE_STATES: readonly string[] = ["creating", "running", "exited"];

/** A short description of a JSON value, for what is wrong with a field. */
function shown(v: unknown): string {
  if (v === undefined) return "missing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  const text = JSON.stringify(v);
  return `${typeof v} ${text.length > 40 ? text.slice(0, 40) + "…" : text}`;
}

function isIdentity(v: unknown): v is ProcessIdentity {
  const x = v as Partial<ProcessIdentity> | null;
  return typeof x === "object" && x !== null && Number.isSafeInteger(x.pid) && x.pid! > 0 &&
    Number.isSafeInteger(x.startTime) && x.startTime! >= 0;
}

const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const isCode = (v: unknown) => v === null || Number.isSafeInteger(v);

/** A cgroup name a record may hold: relative, no `..`, nothing odd (see `assertValidName`). */
function isCgroupName(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length < 4096 && !v.startsWith("/") && !/[\0\n]/.test(v) &&
    v.split("/").every((s) => s !== "" && s !== "." && s !== "..");
}

/**
 * What is wrong with a record's shape (pure): undefined when `value` is a {@link StateRecord}
 * whose fields all have their types (and a running container names its init); else the problems,
 * field by field (`init: missing (a running container's record names its init); spec: null, not
 * an object`).
 * @param value What `state.json` parsed to.
 * @param name The container directory's name, which the record must carry.
 */
export function recordProblem(value: unknown, name?: string): string | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return `state.json holds ${shown(value)}, not a record`;
  }
  const r = value as Record<string, unknown>;
  const problems: string[] = [];
  const want = (field: string, ok: boolean, what: string) => {
    if (!ok) problems.push(`${field}: ${shown(r[field])}, not ${what}`);
  };
  const optional = (field: string, ok: (v: unknown) => boolean, what: string) =>
    want(field, r[field] === undefined || ok(r[field]), what);
  want("version", r.version === 1, "1");
  want(
    "name",
    typeof r.name === "string" && (name === undefined || r.name === name),
    `the name ${name ?? "(a string)"}`,
  );
  want("state", typeof r.state === "string" && LIFE_STATES.includes(r.state), "creating, running or exited");
  want("owner", isIdentity(r.owner), "a process (pid and startTime)");
  if (r.state === "running" && r.init === undefined) {
    problems.push("init: missing (a running container's record names its init)");
  } else optional("init", isIdentity, "a process (pid and startTime)");
  want("createdAt", typeof r.createdAt === "string", "a time");
  optional("startedAt", (v) => typeof v === "string", "a time");
  optional("finishedAt", (v) => typeof v === "string", "a time");
  optional("exit", (v) => {
    if (v === null) return true;
    const x = v as Record<string, unknown>;
    return typeof v === "object" && !Array.isArray(v) && isCode(x.code) && isCode(x.signal) &&
      Number.isSafeInteger(x.shellCode);
  }, "an exit status (code, signal, shellCode) or null");
  optional("note", (v) => typeof v === "string", "a string");
  want("spec", typeof r.spec === "object" && r.spec !== null && !Array.isArray(r.spec), "an object");
  optional("specFile", (v) => typeof v === "string", "a string");
  want("image", typeof r.image === "string", "a string");
  want("rootfs", typeof r.rootfs === "string", "a path");
  want("extracted", typeof r.extracted === "boolean", "true or false");
  optional("cgroup", isCgroupName, "a cgroup name");
  optional("veth", (v) => typeof v === "string", "a link name");
  optional("oomKilled", isCount, "a count");
  optional("failedForks", isCount, "a count");
  optional("restartCount", isCount, "a count");
  optional("restartAt", (v) => typeof v === "string", "a time");
  optional("stoppedByUser", (v) => typeof v === "boolean", "true or false");
  if (problems.length === 0) return undefined;
  return problems.length > 3
    ? `${problems.slice(0, 3).join("; ")}; and ${problems.length - 3} more`
    : problems.join("; ");
}

/** What is still known of a damaged record that parsed: its fields that are whole on their own. */
function salvageObject(value: unknown): Salvage {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return {};
  const r = value as Record<string, unknown>;
  return {
    ...(isCgroupName(r.cgroup) ? { cgroup: r.cgroup } : {}),
    ...(isIdentity(r.init) ? { init: { pid: r.init.pid, startTime: r.init.startTime } } : {}),
    ...(isIdentity(r.owner) ? { owner: { pid: r.owner.pid, startTime: r.owner.startTime } } : {}),
    ...(typeof r.veth === "string" && /^hk-[0-9a-f]{8}-h$/.test(r.veth) ? { veth: r.veth } : {}),
    ...(typeof r.rootfs === "string" ? { rootfs: r.rootfs } : {}),
    ...(typeof r.image === "string" ? { image: r.image } : {}),
    ...(typeof r.createdAt === "string" ? { createdAt: r.createdAt } : {}),
  };
}

/**
 * What is still known of a record cut short (not JSON): its top-level string fields and its
 * init, read out of the text hako writes (one field a line, `JSON.stringify(record, null, 1)`).
 */
function salvageText(text: string): Salvage {
  const field = (key: string): string | undefined => {
    // Top-level fields are indented by one space; the spec's own are deeper.
    const m = new RegExp(`^ "${key}": ("(?:[^"\\\\]|\\\\.)*"),?$`, "m").exec(text);
    if (!m) return undefined;
    try {
      const v = JSON.parse(m[1]!);
      return typeof v === "string" ? v : undefined;
    } catch {
      return undefined;
    }
  };
  const identity = (key: string) => {
    const m = new RegExp(`^ "${key}": \\{\\s*"pid": (\\d+),\\s*"startTime": (\\d+)\\s*\\}`, "m").exec(text);
    return m ? { [key]: { pid: Number(m[1]), startTime: Number(m[2]) } } : {};
  };
  return salvageObject({
    cgroup: field("cgroup"),
    veth: field("veth"),
    rootfs: field("rootfs"),
    image: field("image"),
    createdAt: field("createdAt"),
    ...identity("init"),
    ...identity("owner"),
  });
}

/** One line about a record's state, for messages. */
export function describeState(r: StateRecord): string {
  if (r.state === "exited") {
    return r.exit ? `exited with ${r.exit.shellCode}` : "exited, status unknown";
  }
  return r.state;
}

/** This process's identity. */
export function selfIdentity(): ProcessIdentity {
  return identify(process.pid)!;
}
