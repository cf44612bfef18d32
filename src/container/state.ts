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
 *     log, log.1           the container's stdout and stderr, a timestamp at the start of each line
 *                          (capped at HAKO_LOG_MAX each: log.1 is the previous part)
 *     log.fifo             the FIFO the container writes them to (it holds it open read-write)
 *     log.relay            the pid and start time ("PID START") of the relay from the FIFO to log
 *                          (src/supervisor/container_log.ts; no file: the container appends to log
 *                          itself, without timestamps)
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
  realpathSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { check, errno, libc } from "../../ffi/libc.ts";
import { cstr } from "../../ffi/cstring.ts";
import { SYS } from "../../ffi/syscalls.ts";
import { fsError, SyscallError } from "../errors.ts";
import { type FileFacts, octalMode, type TrustFs, untrustedWayTo, writableByOthers } from "../_trusted_path.ts";
import { type Signal, signalNumber } from "../signals.ts";
import type { ContainerSpec } from "./spec.ts";
import { resolveStateDir } from "./_state_dir.ts";
import { dropPendingRootfs, notePendingRootfs, withRootfsLock } from "./_rootfs_ref.ts";

export { DEFAULT_STATE_DIR } from "./_state_dir.ts";

/** The state directory: `HAKO_STATE_DIR`, `/run/hako` for root, or the rootless user's own (see `resolveStateDir`). */
export function stateDir(): string {
  return resolveStateDir(process.env.HAKO_STATE_DIR, {
    euid: process.geteuid?.() ?? 0,
    env: (name) => process.env[name],
  });
}

/** A process, as the kernel tells it apart from a later one with the same pid. */
export interface ProcessIdentity {
  /** Its pid on the host. */
  readonly pid: number;
  /** Its start time in clock ticks since boot (field 22 of `/proc/PID/stat`). */
  readonly startTime: number;
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

/** `lstat` through `node:fs`, for {@link untrustedWayTo}. */
export const nodeTrustFs: TrustFs = {
  lstat(path: string): FileFacts | undefined {
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw e;
    }
    const kind = st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
    return { uid: st.uid, mode: st.mode & 0o7777, kind };
  },
  realPath: (path: string) => realpathSync(path),
};

const O_RDWR = 2, O_CREAT = 0o100, O_CLOEXEC = 0o2000000, O_NOFOLLOW = 0o400000;
/** How a record's temp file is opened: never through a symlink. */
const WRITE_PRIVATE = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | O_NOFOLLOW;
const LOCK_EX = 2, LOCK_UN = 8;
const EINTR = 4, ESRCH = 3;

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
    this.#checkWay();
    mkdirSync(dirname(this.root), { recursive: true, mode: 0o700 });
    this.#privateDir(this.root, true);
    this.#privateDir(join(this.root, "containers"), true);
    this.#prepared = this.#checked = true;
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
    try {
      mkdirSync(files, { mode: 0o711 });
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") {
        throw fsError(e, "mkdir", files, "make the containers' files directory");
      }
    }
    const st = lstatSync(files);
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
      const old = this.tryRead(record.name);
      throw new ContainerStateError(
        `a container named ${record.name} already exists${old ? ` (${describeState(old)})` : ""}; ` +
          `'hako delete ${record.name}' removes it`,
      );
    }
    this.write(record);
  }

  /**
   * Notes that hako is about to extract `path` from `tarball` for a container it will then ask the
   * supervisor to start (`hako start` extracts before the container is reserved): when nothing is
   * there yet, `gc` removes it if no container on it has run by the time this process is gone and
   * nobody uses it.
   */
  notePendingRootfs(path: string, tarball: string): void {
    this.prepare();
    notePendingRootfs(this.root, path, tarball, selfIdentity());
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
   * @throws {ContainerStateError} "no container named NAME".
   */
  read(name: string): StateRecord {
    const r = this.tryRead(name);
    if (!r) throw new ContainerStateError(`no container named ${name}`);
    return r;
  }

  /** A container's record, or undefined when there is none (or it is half-written by a crash). */
  tryRead(name: string): StateRecord | undefined {
    if (!isValidName(name)) return undefined;
    this.check();
    try {
      return JSON.parse(readFileSync(join(this.dir(name), "state.json"), "utf8")) as StateRecord;
    } catch {
      return undefined;
    }
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

  /** Every readable record, sorted by name. */
  list(): StateRecord[] {
    return this.names().map((n) => this.tryRead(n)).filter((r): r is StateRecord => r !== undefined);
  }

  /** Removes a container's directory (record, lock and logs). */
  remove(name: string): void {
    rmSync(this.dir(name), { recursive: true, force: true });
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
      if (e === 2) throw new ContainerStateError(`no container named ${name}`);
      throw new SyscallError("open", e, [path], `lock the state of container ${name}`);
    }
    try {
      for (;;) {
        if (flock(fd, LOCK_EX) === 0) break;
        if (errno() !== EINTR) throw new SyscallError("flock", errno(), [path], `lock the state of container ${name}`);
      }
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

/** One line about a record's state, for messages. */
export function describeState(r: StateRecord): string {
  if (r.state === "exited") {
    return r.exit ? `exited with ${r.exit.shellCode}` : "exited, status unknown";
  }
  return r.state;
}

/** The fields of `/proc/PID/stat` after the command name (index 0 is field 3, the state). */
function statFields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/** A process's identity now, or undefined when there is no such process. */
export function identify(pid: number): ProcessIdentity | undefined {
  const f = statFields(pid);
  return f ? { pid, startTime: Number(f[19]) } : undefined;
}

/**
 * Whether the process still runs: the same pid and start time, and not a zombie.
 * @param id The recorded identity.
 */
export function isRunning(id: ProcessIdentity | undefined): boolean {
  if (!id) return false;
  const f = statFields(id.pid);
  return !!f && Number(f[19]) === id.startTime && f[0] !== "Z" && f[0] !== "X";
}

/**
 * Signals a process only if it is still the one recorded: a pidfd is opened first, then the start
 * time is checked, so the signal cannot reach a process that reused the pid.
 * @returns False when the process is gone (or is another one now); true when signalled.
 * @throws {SyscallError} For any other failure (EPERM…).
 */
export function signalIdentified(id: ProcessIdentity, sig: Signal, context?: string): boolean {
  const { syscall, close } = libc();
  const fd = Number(syscall(BigInt(SYS.pidfd_open), BigInt(id.pid), 0n, 0n, 0n, 0n));
  if (fd === -1) {
    if (errno() === ESRCH) return false;
    throw new SyscallError("pidfd_open", errno(), [id.pid], context);
  }
  try {
    if (!isRunning(id)) return false;
    const r = Number(syscall(BigInt(SYS.pidfd_send_signal), BigInt(fd), BigInt(signalNumber(sig)), 0n, 0n, 0n));
    if (r === -1) {
      if (errno() === ESRCH) return false;
      check(-1, "pidfd_send_signal", [id.pid, sig], context);
    }
    return true;
  } finally {
    close(fd);
  }
}

/** This process's identity. */
export function selfIdentity(): ProcessIdentity {
  return identify(process.pid)!;
}
