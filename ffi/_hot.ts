/**
 * The host calls of hako-runc's hot commands (`state`, `start`, `kill`, `delete`: a shim calls
 * them several times per container), through a libc table of their own, without any `node:`
 * module: under Deno the first `node:` import starts the Node compatibility layer (~25–50 ms, more
 * than runc takes for the whole command), under Bun `node:fs` costs ~2.4 ms a start and
 * `process.stdout` ~18 ms. Synchronous, and the same code under Deno and Bun (the table is opened
 * through `_deno.ts` / `_bun.ts`, lazily: Bun binds a symbol on its first use). The leaf modules of
 * the hot path read and write files through {@link hotFs} (src/container/_identity.ts,
 * src/oci/state.ts, src/container/_signal_identified.ts); failures are {@link SyscallError}s naming
 * the call and errno, read right after the call.
 *
 * The layouts used are the same on every architecture: `struct statx` (statx(2)) and
 * `struct linux_dirent64` (getdents64(2)).
 * @module
 */
import { ARCH } from "./_arch.ts";
import {
  AT_FDCWD,
  EAGAIN,
  EINTR,
  ENOENT,
  ENOTDIR,
  ESRCH,
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_NONBLOCK,
  O_RDONLY,
  O_WRONLY,
} from "./constants.ts";
import { SyscallError } from "./errno.ts";
import { bunFfiAdapter } from "./_bun.ts";
import { denoFfi } from "./_deno.ts";

const HOT_SYMBOLS = {
  // int *__errno_location(void)
  __errno_location: { parameters: [], result: "pointer" },
  // int open(const char *path, int flags, mode_t mode)
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count)
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count)
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int close(int fd)
  close: { parameters: ["i32"], result: "i32" },
  // int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf)
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  // char *realpath(const char *path, char *resolved) — resolved: PATH_MAX bytes
  realpath: { parameters: ["buffer", "buffer"], result: "pointer" },
  // char *getcwd(char *buf, size_t size)
  getcwd: { parameters: ["buffer", "usize"], result: "pointer" },
  // int mkdir(const char *path, mode_t mode)
  mkdir: { parameters: ["buffer", "u32"], result: "i32" },
  // int chmod(const char *path, mode_t mode)
  chmod: { parameters: ["buffer", "u32"], result: "i32" },
  // int unlink(const char *path)
  unlink: { parameters: ["buffer"], result: "i32" },
  // int rmdir(const char *path)
  rmdir: { parameters: ["buffer"], result: "i32" },
  // int kill(pid_t pid, int sig)
  kill: { parameters: ["i32", "i32"], result: "i32" },
  // uid_t geteuid(void)
  geteuid: { parameters: [], result: "u32" },
  // long syscall(long number, ...) — pidfd_open, pidfd_send_signal, getdents64
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The syscall numbers this table calls raw (the kernel's tables: pidfd_open and pidfd_send_signal
 * are the same on x86_64 and aarch64; tests/oci_hot_test.ts checks them against ffi/syscalls.ts,
 * whose per-architecture tables are not loaded here).
 */
export const HOT_SYS = {
  pidfd_open: 434,
  pidfd_send_signal: 424,
  getdents64: ARCH === "aarch64" ? 61 : 217,
} as const;

const PATH_MAX = 4096;
const AT_SYMLINK_NOFOLLOW = 0x100;
// STATX_TYPE | STATX_MODE | STATX_UID
const STATX_MASK = 0x1 | 0x2 | 0x8;
const S_IFMT = 0o170000, S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000;

type Symbols = Deno.DynamicLibrary<typeof HOT_SYMBOLS>["symbols"];
let symbols: Symbols | undefined;
let errnoReader: (() => number) | undefined;

function ffi() {
  return "Bun" in globalThis ? bunFfiAdapter : denoFfi;
}

function lib(): Symbols {
  if (!symbols) {
    symbols = ffi().open("libc.so.6", HOT_SYMBOLS, { lazy: true });
    // (bound before any call, so that reading errno after a failure binds nothing: see libc.ts)
    errnoReader = ffi().int32Reader(symbols.__errno_location());
  }
  return symbols;
}

/** The calling thread's errno: read right after the failing call. */
function errno(): number {
  return errnoReader!();
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A path as a C string (from its UTF-8 bytes); an embedded NUL is refused. */
function cstr(path: string): Uint8Array {
  if (path.includes("\0")) throw new TypeError(`a path with a NUL byte: ${JSON.stringify(path)}`);
  return encoder.encode(path + "\0");
}

/** The text of a NUL-terminated buffer. */
function fromC(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return decoder.decode(end === -1 ? buf : buf.subarray(0, end));
}

/** What `lstat`/`stat` tell of a file (the shape of src/_trusted_path.ts's FileFacts). */
export interface HotFileFacts {
  readonly uid: number;
  readonly mode: number;
  readonly kind: "dir" | "file" | "symlink" | "other";
}

/** A call made again while it fails with EINTR. */
function retry(call: () => number | bigint): number {
  for (;;) {
    const r = Number(call());
    if (r !== -1 || errno() !== EINTR) return r;
  }
}

function statOf(path: string, flags: number): HotFileFacts | undefined {
  const c = lib();
  const buf = new Uint8Array(256);
  if (c.statx(AT_FDCWD, cstr(path), flags, STATX_MASK, buf) === -1) {
    const e = errno();
    if (e === ENOENT || e === ENOTDIR) return undefined;
    throw new SyscallError("statx", e, [path]);
  }
  const view = new DataView(buf.buffer);
  const uid = view.getUint32(20, true), mode = view.getUint16(28, true);
  const type = mode & S_IFMT;
  const kind = type === S_IFLNK ? "symlink" : type === S_IFDIR ? "dir" : type === S_IFREG ? "file" : "other";
  return { uid, mode: mode & 0o7777, kind };
}

/** The host calls of the hot commands (see the module's comment). */
export const hotFs = {
  /** A file's text (UTF-8), or undefined when it cannot be read (missing, gone, refused). */
  readText(path: string): string | undefined {
    const c = lib();
    const fd = retry(() => c.open(cstr(path), O_RDONLY | O_CLOEXEC, 0));
    if (fd === -1) return undefined;
    try {
      const chunks: Uint8Array[] = [];
      let size = 0;
      for (;;) {
        const buf = new Uint8Array(size < 4096 ? 4096 : 65536);
        const n = retry(() => c.read(fd, buf, BigInt(buf.length)));
        if (n === -1) return undefined;
        if (n === 0) break;
        chunks.push(buf.subarray(0, n));
        size += n;
      }
      if (chunks.length === 1) return decoder.decode(chunks[0]);
      const all = new Uint8Array(size);
      let at = 0;
      for (const ch of chunks) {
        all.set(ch, at);
        at += ch.length;
      }
      return decoder.decode(all);
    } finally {
      c.close(fd);
    }
  },
  /** `lstat`: undefined when nothing is there. @throws {SyscallError} For another failure. */
  lstat(path: string): HotFileFacts | undefined {
    return statOf(path, AT_SYMLINK_NOFOLLOW);
  },
  /** `stat` (symlinks followed): undefined when nothing is there. @throws {SyscallError} For another failure. */
  stat(path: string): HotFileFacts | undefined {
    return statOf(path, 0);
  },
  /** Whether something is at `path` (symlinks followed; any failure is false, as `existsSync`). */
  exists(path: string): boolean {
    try {
      return statOf(path, 0) !== undefined;
    } catch {
      return false;
    }
  },
  /** The path with its symlinks resolved. @throws {SyscallError} When it leads nowhere. */
  realPath(path: string): string {
    const c = lib();
    const out = new Uint8Array(PATH_MAX);
    if (c.realpath(cstr(path), out) === null) throw new SyscallError("realpath", errno(), [path]);
    return fromC(out);
  },
  /** The current directory. */
  cwd(): string {
    const c = lib();
    const out = new Uint8Array(PATH_MAX);
    if (c.getcwd(out, BigInt(out.length)) === null) throw new SyscallError("getcwd", errno(), []);
    return fromC(out);
  },
  /** The effective uid. */
  euid(): number {
    return lib().geteuid();
  },
  /** `mkdir`. @throws {SyscallError} (`code` "EEXIST" when something has that name). */
  mkdir(path: string, mode: number): void {
    const c = lib();
    if (c.mkdir(cstr(path), mode) === -1) throw new SyscallError("mkdir", errno(), [path]);
  },
  /** `chmod`. @throws {SyscallError} */
  chmod(path: string, mode: number): void {
    const c = lib();
    if (c.chmod(cstr(path), mode) === -1) throw new SyscallError("chmod", errno(), [path]);
  },
  /** `unlink`. @throws {SyscallError} */
  unlink(path: string): void {
    const c = lib();
    if (c.unlink(cstr(path)) === -1) throw new SyscallError("unlink", errno(), [path]);
  },
  /** `rmdir`. @throws {SyscallError} */
  rmdir(path: string, context?: string): void {
    const c = lib();
    if (retry(() => c.rmdir(cstr(path))) === -1) throw new SyscallError("rmdir", errno(), [path], context);
  },
  /** The names in a directory (not `.` nor `..`), with whether each is a directory. @throws {SyscallError} */
  readDir(path: string): Array<{ name: string; dir: boolean }> {
    const c = lib();
    const fd = retry(() => c.open(cstr(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
    if (fd === -1) throw new SyscallError("open", errno(), [path]);
    const out: Array<{ name: string; dir: boolean }> = [];
    try {
      const buf = new Uint8Array(32768);
      const view = new DataView(buf.buffer);
      const at0 = ffi().addressOf(buf); // (buf stays referenced until the loop ends)
      for (;;) {
        const n = Number(c.syscall(BigInt(HOT_SYS.getdents64), BigInt(fd), at0, BigInt(buf.length), 0n, 0n));
        if (n === -1) throw new SyscallError("getdents64", errno(), [path]);
        if (n === 0) break;
        // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        for (let at = 0; at < n;) {
          const reclen = view.getUint16(at + 16, true);
          const name = fromC(buf.subarray(at + 19, at + reclen));
          if (name !== "." && name !== "..") out.push({ name, dir: buf[at + 18] === 4 /* DT_DIR */ });
          at += reclen;
        }
      }
    } finally {
      c.close(fd);
    }
    return out;
  },
  /** Removes `path` and everything under it, as `rm -rf` (nothing there is fine). @throws {SyscallError} */
  removeTree(path: string): void {
    const st = statOf(path, AT_SYMLINK_NOFOLLOW);
    if (!st) return;
    if (st.kind !== "dir") {
      hotFs.unlink(path);
      return;
    }
    for (const e of hotFs.readDir(path)) hotFs.removeTree(`${path}/${e.name}`);
    hotFs.rmdir(path);
  },
  /** Appends `text` to `path`, made with `mode` when new. @throws {SyscallError} */
  appendText(path: string, text: string, mode: number): void {
    const c = lib();
    const fd = retry(() => c.open(cstr(path), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode));
    if (fd === -1) throw new SyscallError("open", errno(), [path]);
    try {
      hotFs.writeFd(fd, text);
    } finally {
      c.close(fd);
    }
  },
  /** Writes `text` to the existing file `path` (a cgroup knob: one write). @throws {SyscallError} */
  writeText(path: string, text: string): void {
    const c = lib();
    const fd = retry(() => c.open(cstr(path), O_WRONLY | O_CLOEXEC, 0));
    if (fd === -1) throw new SyscallError("open", errno(), [path]);
    try {
      hotFs.writeFd(fd, text);
    } finally {
      c.close(fd);
    }
  },
  /** Writes all of `text` to `fd` (stdout: 1, stderr: 2). @throws {SyscallError} */
  writeFd(fd: number, text: string): void {
    const c = lib();
    let buf = encoder.encode(text);
    while (buf.length > 0) {
      const n = retry(() => c.write(fd, buf, BigInt(buf.length)));
      if (n === -1) throw new SyscallError("write", errno(), [fd]);
      buf = buf.subarray(n);
    }
  },
  /** Opens a FIFO for reading without blocking (close-on-exec). @throws {SyscallError} (ENOENT when gone) */
  openFifoReader(path: string): number {
    const c = lib();
    const fd = retry(() => c.open(cstr(path), O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0));
    if (fd === -1) throw new SyscallError("open", errno(), [path]);
    return fd;
  },
  /** Reads one byte from a non-blocking fd: true when read, false when none yet (EAGAIN, or no writer). @throws {SyscallError} */
  readByte(fd: number): boolean {
    const c = lib();
    const n = retry(() => c.read(fd, new Uint8Array(1), 1n));
    if (n === -1) {
      const e = errno();
      if (e === EAGAIN) return false;
      throw new SyscallError("read", e, [fd]);
    }
    return n === 1;
  },
  /** `kill(pid, sig)`, a process that is gone (ESRCH) ignored. @throws {SyscallError} For another failure. */
  kill(pid: number, sig: number): void {
    const c = lib();
    if (c.kill(pid, sig) === -1) {
      const e = errno();
      if (e !== ESRCH) throw new SyscallError("kill", e, [pid, sig]);
    }
  },
  /** `close`. */
  close(fd: number): void {
    lib().close(fd);
  },
  /**
   * `pidfd_open(pid, 0)`: a pidfd, or undefined when there is no such process (ESRCH).
   * @throws {SyscallError} For another failure.
   */
  pidfdOpen(pid: number, context?: string): number | undefined {
    const c = lib();
    const fd = Number(c.syscall(BigInt(HOT_SYS.pidfd_open), BigInt(pid), 0n, 0n, 0n, 0n));
    if (fd === -1) {
      const e = errno();
      if (e === ESRCH) return undefined;
      throw new SyscallError("pidfd_open", e, [pid], context);
    }
    return fd;
  },
  /**
   * `pidfd_send_signal(fd, sig, NULL, 0)`: false when the process has ended (ESRCH).
   * @param shown The arguments the error names (the pid and signal as the caller knows them).
   * @throws {SyscallError} For another failure.
   */
  pidfdSendSignal(fd: number, sig: number, shown: readonly unknown[], context?: string): boolean {
    const c = lib();
    const r = Number(c.syscall(BigInt(HOT_SYS.pidfd_send_signal), BigInt(fd), BigInt(sig), 0n, 0n, 0n));
    if (r === -1) {
      const e = errno();
      if (e === ESRCH) return false;
      throw new SyscallError("pidfd_send_signal", e, shown, context);
    }
    return true;
  },
};
