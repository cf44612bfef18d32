/**
 * Who uses a rootfs, and hako's bookkeeping of the rootfs directories it extracts — what makes
 * `delete --rootfs` a reference count and lets `gc` find what a crash left:
 *
 * ```text
 * STATE/rootfs/
 *   DEV-INO.lock     flock'ed while a rootfs's users are counted and it is removed (delete, gc) or
 *                    claimed by a new container (StateStore.reserve); holds the rootfs's real path
 *   HASH.pending     an extraction for a container that has not started yet: the rootfs's path, the
 *                    tarball and the process that asked for it (dropped once a container on it runs)
 *   HASH.trash       a rootfs renamed aside to be removed (the removal's process and the new name)
 * ```
 *
 * A rootfs is the same directory whatever the path it is reached by: real paths are compared,
 * and device and inode numbers, so a symlink or a bind mount of it is the same rootfs.
 *
 * Imports nothing from `state.ts` (which uses this module); liveness checks are its callers'.
 * @module
 */
import {
  chmodSync,
  closeSync,
  constants as fsConstants,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import process from "node:process";
import { cstr } from "../../ffi/cstring.ts";
import { errno, libc, retryEintr } from "../../ffi/libc.ts";
import { fsError, SyscallError } from "../errors.ts";
import { EWOULDBLOCK, O_CLOEXEC, O_CREAT, O_NOFOLLOW, O_RDWR } from "../../ffi/constants.ts";

/** A rootfs directory as the kernel tells it apart: its real path, device and inode. */
export interface RootfsId {
  /** The real path (no symlink in it). */
  readonly path: string;
  /** `st_dev`. */
  readonly dev: number;
  /** `st_ino`. */
  readonly ino: number;
}

/** A process, as in `state.ts` (pid and start time in clock ticks). */
export interface Writer {
  /** Its pid. */
  readonly pid: number;
  /** Field 22 of `/proc/PID/stat`. */
  readonly startTime: number;
}

/** Something that keeps a rootfs: a container's record, or a process whose root it is. */
export interface RootfsUser {
  /** The container whose record names it. */
  readonly container?: string;
  /** A process whose root directory it is. */
  readonly pid?: number;
  /** That process's command name (`/proc/PID/comm`). */
  readonly command?: string;
}

/** What `pending` entries hold. */
export interface PendingRootfs {
  /** The entry's file. */
  readonly file: string;
  /** The rootfs's path (canonical: its parent's real path and its name). */
  readonly path: string;
  /** The tarball it is extracted from. */
  readonly tarball: string;
  /** The process that asked for the extraction. */
  readonly writer: Writer;
}

/** What `trash` entries hold. */
export interface TrashedRootfs {
  /** The entry's file. */
  readonly file: string;
  /** Where the rootfs was renamed to. */
  readonly path: string;
  /** The process removing it. */
  readonly owner: Writer;
}

const LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;

/** The infix of the name a rootfs is renamed to before its removal: `.NAME.hako-rm-XXXXXX`. */
export const TRASH_INFIX = ".hako-rm-";

/** The bookkeeping directory under a state directory. */
export function rootfsDir(stateRoot: string): string {
  return join(stateRoot, "rootfs");
}

function ensureDir(stateRoot: string): string {
  const dir = rootfsDir(stateRoot);
  try {
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o700); // whatever the umask took away
  } catch (e) {
    if ((e as { code?: string }).code !== "EEXIST") throw fsError(e, "mkdir", dir, "keep track of rootfs directories");
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  return dir;
}

/** A rootfs's identity now, or undefined when nothing (or no directory) is there. */
export function rootfsId(path: string): RootfsId | undefined {
  try {
    const real = realpathSync(path);
    const st = statSync(real);
    return st.isDirectory() ? { path: real, dev: st.dev, ino: st.ino } : undefined;
  } catch {
    return undefined;
  }
}

/** True when both name one directory. */
export function sameRootfs(a: RootfsId | undefined, b: RootfsId | undefined): boolean {
  return !!a && !!b && a.dev === b.dev && a.ino === b.ino;
}

/**
 * A path with every symlink resolved as far as it exists: the real path when it exists, else the
 * canonical path of its parent and its name (where an extraction into it will put it).
 */
export function canonicalPath(path: string): string {
  const p = resolve(path);
  try {
    return realpathSync(p);
  } catch {
    const parent = dirname(p);
    return parent === p ? p : join(canonicalPath(parent), basename(p));
  }
}

/** What {@link withRootfsLock} hands its callback. */
export interface LockedRootfs {
  /** The rootfs, or undefined when none is at the path (nothing was locked then). */
  readonly id: RootfsId | undefined;
}

/**
 * Runs `fn` with the rootfs's lock held: an flock on `rootfs/DEV-INO.lock` in the state directory,
 * so of two processes counting the users of one rootfs (two `delete --rootfs`, a delete and a new
 * container's reservation) one waits for the other, whatever path each reaches it by. A lock file
 * unlinked by its holder (the rootfs it stood for was removed) is noticed and the path looked at
 * again. When no rootfs is at `path`, `fn` runs at once with no lock. The lock file goes when the
 * rootfs it stands for is gone once `fn` returns. `fn` must not await: the lock is an flock that
 * would block this process's other users of it.
 * @param stateRoot The state directory.
 * @param path The rootfs (any path to it).
 * @param fn What to do under the lock.
 * @param options `wait: false`: return `busy` instead of waiting when another process holds it.
 * @throws {SyscallError} When the lock file cannot be opened or locked.
 */
export function withRootfsLock<T>(
  stateRoot: string,
  path: string,
  fn: (locked: LockedRootfs) => T,
  options: { wait?: boolean } = {},
): T | "busy" {
  const { open, flock, close } = libc();
  for (let attempt = 0;; attempt++) {
    const id = rootfsId(path);
    if (!id) return fn({ id: undefined });
    const lockPath = join(ensureDir(stateRoot), `${id.dev}-${id.ino}.lock`);
    const fd = open(cstr(lockPath), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600);
    if (fd === -1) throw new SyscallError("open", errno(), [lockPath], `lock the rootfs ${id.path}`);
    try {
      if (retryEintr(() => flock(fd, LOCK_EX | (options.wait === false ? LOCK_NB : 0))) !== 0) {
        const e = errno();
        if (e === EWOULDBLOCK && options.wait === false) return "busy";
        throw new SyscallError("flock", e, [lockPath], `lock the rootfs ${id.path}`);
      }
      // The file locked must still be the one at the path (its holder unlinks it once the rootfs
      // is gone), and the path must still lead to the same directory.
      let current = false;
      try {
        current = statSync(`/proc/self/fd/${fd}`).ino === lstatSync(lockPath).ino;
      } catch { /* unlinked */ }
      if (!current || !sameRootfs(rootfsId(path), id)) {
        if (attempt > 100) throw new Error(`the rootfs ${path} kept changing while hako locked it`);
        continue;
      }
      const w = openSync(lockPath, fsConstants.O_WRONLY | fsConstants.O_TRUNC | O_NOFOLLOW);
      try {
        writeFileSync(w, `${id.path}\n`);
      } finally {
        closeSync(w);
      }
      try {
        return fn({ id });
      } finally {
        if (!sameRootfs(rootfsId(id.path), id)) rmSync(lockPath, { force: true });
      }
    } finally {
      flock(fd, LOCK_UN);
      close(fd);
    }
  }
}

/**
 * Removes `DEV-INO.lock` files whose rootfs is gone (a rootfs removed by hand, not through hako),
 * each under its own lock; one held by a running process is left.
 * @returns The files removed (or, with `dryRun`, that would be).
 */
export function staleRootfsLocks(stateRoot: string, dryRun: boolean): string[] {
  const dir = rootfsDir(stateRoot);
  const out: string[] = [];
  const { open, flock, close } = libc();
  for (const f of readdirOrEmpty(dir)) {
    const m = /^(\d+)-(\d+)\.lock$/.exec(f);
    if (!m) continue;
    const file = join(dir, f);
    const fd = open(cstr(file), O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
    if (fd === -1) continue;
    try {
      if (flock(fd, LOCK_EX | LOCK_NB) !== 0) continue; // in use
      let recorded = "";
      try {
        recorded = readFileSync(file, "utf8").trim();
      } catch { /* gone */ }
      const id = recorded ? rootfsId(recorded) : undefined;
      if (id && String(id.dev) === m[1] && String(id.ino) === m[2]) continue;
      out.push(file);
      if (!dryRun) rmSync(file, { force: true });
    } finally {
      flock(fd, LOCK_UN);
      close(fd);
    }
  }
  return out;
}

/**
 * The containers and processes that use the rootfs `id`: every record given whose rootfs is the
 * same directory (by real path, or by device and inode), and every process whose root directory
 * (`/proc/PID/root`, where readable) it is.
 * @param id The rootfs.
 * @param records The other containers' records (name and rootfs path).
 * @param ignorePids Processes not to count (about to be killed).
 */
export function rootfsUsers(
  id: RootfsId,
  records: Iterable<{ readonly name: string; readonly rootfs: string }>,
  ignorePids: ReadonlySet<number> = new Set(),
): RootfsUser[] {
  const users: RootfsUser[] = [];
  for (const r of records) {
    if (canonicalPath(r.rootfs) === id.path || sameRootfs(rootfsId(r.rootfs), id)) users.push({ container: r.name });
  }
  for (const e of readdirOrEmpty("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid || ignorePids.has(pid)) continue;
    let st;
    try {
      st = statSync(`/proc/${pid}/root`);
    } catch {
      continue; // gone, a zombie, or not ours to look at
    }
    if (st.dev !== id.dev || st.ino !== id.ino) continue;
    let command: string | undefined;
    try {
      command = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    } catch { /* gone */ }
    users.push({ pid, ...(command ? { command } : {}) });
  }
  return users;
}

/** "container web-1", "process 1234 (sleep)". */
export function describeUser(u: RootfsUser): string {
  if (u.container !== undefined) return `container ${u.container}`;
  return `process ${u.pid}${u.command ? ` (${u.command})` : ""}`;
}

/**
 * The SHA-256 of `text` in hex. `node:crypto` is loaded on first use, not at import: this module is
 * imported (through state.ts) by every command that reads a container's state, and under Bun that
 * import alone costs ~9 ms of a start (`hako-runc state`, see bench/oci.ts).
 */
function sha256Hex(text: string): string {
  const { createHash } = process.getBuiltinModule("node:crypto") as typeof import("node:crypto");
  return createHash("sha256").update(text).digest("hex");
}

function entryName(path: string, kind: "pending" | "trash"): string {
  return `${sha256Hex(path).slice(0, 32)}.${kind}`;
}

/**
 * Notes that `path` is about to be extracted from `tarball` for a container that has not started,
 * unless something is there already (then it is not this extraction's to undo). Until a container
 * on it runs ({@link dropPendingRootfs}), `gc` may remove it once `writer` is gone and nobody uses
 * it: a crash between the extraction and the start leaves it behind.
 */
export function notePendingRootfs(stateRoot: string, path: string, tarball: string, writer: Writer): void {
  try {
    lstatSync(path);
    return; // there already
  } catch { /* to be extracted */ }
  const canonical = canonicalPath(path);
  const file = join(ensureDir(stateRoot), entryName(canonical, "pending"));
  writeEntry(file, JSON.stringify({ version: 1, path: canonical, tarball: resolve(tarball), writer }) + "\n");
}

/** Forgets a pending extraction: a container on it runs (or it was removed). */
export function dropPendingRootfs(stateRoot: string, path: string): void {
  const canonical = canonicalPath(path);
  rmSync(join(rootfsDir(stateRoot), entryName(canonical, "pending")), { force: true });
  const resolved = resolve(path);
  if (resolved !== canonical) rmSync(join(rootfsDir(stateRoot), entryName(resolved, "pending")), { force: true });
}

/** Every readable pending entry. */
export function pendingRootfs(stateRoot: string): PendingRootfs[] {
  const out: PendingRootfs[] = [];
  for (const { file, value } of entries(stateRoot, ".pending")) {
    const v = value as Partial<PendingRootfs>;
    if (typeof v.path !== "string" || typeof v.tarball !== "string" || !isWriter(v.writer)) continue;
    out.push({ file, path: v.path, tarball: v.tarball, writer: v.writer });
  }
  return out;
}

/**
 * Renames a rootfs aside (`.NAME.hako-rm-XXXXXX` beside it), noting it first, so that its path is
 * free at once and a crash during the removal leaves something `gc` finds. Call it under the
 * rootfs's lock.
 * @returns Where it went.
 */
export function moveRootfsAside(stateRoot: string, id: RootfsId, owner: Writer): string {
  const suffix = sha256Hex(`${id.path}\0${process.pid}\0${Date.now()}\0${Math.random()}`).slice(0, 12);
  const aside = join(dirname(id.path), `.${basename(id.path)}${TRASH_INFIX}${suffix}`);
  const file = join(ensureDir(stateRoot), entryName(aside, "trash"));
  writeEntry(file, JSON.stringify({ version: 1, path: aside, owner }) + "\n");
  try {
    renameSync(id.path, aside);
  } catch (e) {
    rmSync(file, { force: true });
    throw fsError(e, "rename", id.path, "move the rootfs aside to remove it");
  }
  return aside;
}

/** Removes a rootfs moved aside by {@link moveRootfsAside}, then its note. */
export function removeAside(stateRoot: string, aside: string): void {
  rmSync(aside, { recursive: true, force: true });
  rmSync(join(rootfsDir(stateRoot), entryName(aside, "trash")), { force: true });
}

/** Every readable trash entry. */
export function trashedRootfs(stateRoot: string): TrashedRootfs[] {
  const out: TrashedRootfs[] = [];
  for (const { file, value } of entries(stateRoot, ".trash")) {
    const v = value as Partial<TrashedRootfs>;
    if (typeof v.path !== "string" || !v.path.includes(TRASH_INFIX) || !isWriter(v.owner)) continue;
    out.push({ file, path: v.path, owner: v.owner });
  }
  return out;
}

function isWriter(w: unknown): w is Writer {
  const x = w as Partial<Writer> | undefined;
  return typeof x?.pid === "number" && typeof x.startTime === "number";
}

function entries(stateRoot: string, ext: string): Array<{ file: string; value: unknown }> {
  const dir = rootfsDir(stateRoot);
  const out: Array<{ file: string; value: unknown }> = [];
  for (const f of readdirOrEmpty(dir)) {
    if (!f.endsWith(ext)) continue;
    const file = join(dir, f);
    try {
      out.push({ file, value: JSON.parse(readFileSync(file, "utf8")) });
    } catch {
      out.push({ file, value: undefined });
    }
  }
  return out;
}

/** Writes an entry atomically (temp file opened O_NOFOLLOW, 0600, then renamed). */
function writeEntry(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | O_NOFOLLOW, 0o600);
  try {
    writeFileSync(fd, text);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/**
 * Mount points at or under `path` in this process's mount namespace (octal escapes decoded): a
 * recursive removal would go into them.
 */
export function mountsAtOrUnder(path: string): string[] {
  let text: string;
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    if (f.length < 5) continue;
    const point = unescape(f[4]!);
    if (point === path || point.startsWith(`${path}/`)) out.push(point);
  }
  return out;
}

/**
 * For each path given, the live processes that hold it or something under it: an open file
 * descriptor, their working directory or their root (`/proc/PID/{fd/*,cwd,root}`). An extraction
 * in progress holds a directory fd of its temp directory throughout.
 */
export function holders(paths: readonly string[]): Map<string, number[]> {
  const found = new Map<string, number[]>();
  if (paths.length === 0) return found;
  const under = (target: string) => paths.filter((p) => target === p || target.startsWith(`${p}/`));
  const note = (pid: number, target: string) => {
    for (const p of under(target)) {
      const list = found.get(p) ?? [];
      if (!list.includes(pid)) list.push(pid);
      found.set(p, list);
    }
  };
  for (const e of readdirOrEmpty("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    for (const link of ["cwd", "root"]) {
      try {
        note(pid, readlinkSync(`/proc/${pid}/${link}`));
      } catch { /* gone or not readable */ }
    }
    for (const fd of readdirOrEmpty(`/proc/${pid}/fd`)) {
      try {
        note(pid, readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch { /* closed meanwhile */ }
    }
  }
  return found;
}

/** `readdirSync`, or nothing when the directory is missing or unreadable. */
export function readdirOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
