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
  O_NOFOLLOW,
  O_NONBLOCK,
  O_RDONLY,
  O_WRONLY,
} from "./constants.ts";
import { SyscallError } from "./errno.ts";
import { bunFfiAdapter } from "./_bun.ts";
import { denoFfi } from "./_deno.ts";

// Two symbols, bound in one dlopen: every call below is a raw syscall(2). Under Bun each bound
// symbol costs a compile of its trampoline (~0.1–0.2 ms: a table of libc's open, read, statx… made
// hako-runc's `state` ~2 ms slower than these two do); the numbers are the kernel's, per architecture.
const HOT_SYMBOLS = {
  // int *__errno_location(void)
  __errno_location: { parameters: [], result: "pointer" },
  // long syscall(long number, ...)
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

// realpath(3) has no syscall: bound on its own, only when a symlink is on the way to a --root.
const REALPATH_SYMBOL = {
  // char *realpath(const char *path, char *resolved) — resolved: PATH_MAX bytes
  realpath: { parameters: ["buffer", "buffer"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The syscall numbers of the calls below, per architecture (the kernel's tables;
 * tests/oci_hot_test.ts checks each against ffi/_syscalls_*.ts, which are not loaded here).
 */
export const HOT_SYS_BY_ARCH: Readonly<Record<"x86_64" | "aarch64", Readonly<Record<HotCall, number>>>> = {
  aarch64: {
    read: 63,
    write: 64,
    close: 57,
    openat: 56,
    statx: 291,
    getcwd: 17,
    geteuid: 175,
    mkdirat: 34,
    fchmodat: 53,
    unlinkat: 35,
    kill: 129,
    getdents64: 61,
    pidfd_open: 434,
    pidfd_send_signal: 424,
    ppoll: 73,
  },
  x86_64: {
    read: 0,
    write: 1,
    close: 3,
    openat: 257,
    statx: 332,
    getcwd: 79,
    geteuid: 107,
    mkdirat: 258,
    fchmodat: 268,
    unlinkat: 263,
    kill: 62,
    getdents64: 217,
    pidfd_open: 434,
    pidfd_send_signal: 424,
    ppoll: 271,
  },
};

/** {@link HOT_SYS_BY_ARCH} of the running architecture. */
export const HOT_SYS: Readonly<Record<HotCall, number>> = HOT_SYS_BY_ARCH[ARCH];

/** The calls this module makes. */
export type HotCall =
  | "read"
  | "write"
  | "close"
  | "openat"
  | "statx"
  | "getcwd"
  | "geteuid"
  | "mkdirat"
  | "fchmodat"
  | "unlinkat"
  | "kill"
  | "getdents64"
  | "pidfd_open"
  | "pidfd_send_signal"
  | "ppoll";

const PATH_MAX = 4096;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
// STATX_TYPE | STATX_MODE | STATX_UID
const STATX_MASK = 0x1 | 0x2 | 0x8;
const S_IFMT = 0o170000, S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000;

/** The two symbols, bound: how {@link sys} reaches the kernel. */
interface Binding {
  syscall(nr: bigint, a: bigint, b: bigint, c: bigint, d: bigint, e: bigint): bigint;
  /** A buffer's address (valid while the buffer is referenced). */
  addressOf(buf: Uint8Array): bigint;
  /** The calling thread's errno. */
  errno(): number;
}

let binding: Binding | undefined;
let realpathSymbol: Deno.DynamicLibrary<typeof REALPATH_SYMBOL>["symbols"] | undefined;

function ffi() {
  return "Bun" in globalThis ? bunFfiAdapter : denoFfi;
}

/** The binding: made now through `_deno.ts` / `_bun.ts` unless {@link hotFfiReady} made it. */
function lib(): Binding {
  if (!binding) {
    const f = ffi();
    const s = f.open("libc.so.6", HOT_SYMBOLS);
    // (errno's reader made before any call, so that reading errno after a failure binds nothing)
    const errnoOf = f.int32Reader(s.__errno_location());
    binding = { syscall: s.syscall, addressOf: (buf) => f.addressOf(buf), errno: errnoOf };
  }
  return binding;
}

/** The part of `bun:ffi` bound here (Deno has no types for it). */
interface BunFfiLite {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: Record<string, (...args: unknown[]) => unknown>;
  };
  ptr(view: ArrayBufferView): number;
  read: { i32(pointer: number, byteOffset?: number): number };
}

/**
 * Binds the table ahead of its first use, the fast way where there is one: under Bun, `bun:ffi`
 * imported by its literal name (resolved when `bun build` bundles: ~0.3 ms, where `_bun.ts`'s
 * `import.meta.require` costs ~1 ms at each start). hot.ts awaits it first; without it, the first
 * call binds through `_bun.ts` / `_deno.ts` (the same symbols, the same behaviour).
 */
export async function hotFfiReady(): Promise<void> {
  if (binding || !("Bun" in globalThis)) return;
  const m = await import("bun:ffi") as unknown as BunFfiLite;
  const i64 = "i64";
  const lib = m.dlopen("libc.so.6", {
    __errno_location: { args: [], returns: "ptr" },
    syscall: { args: [i64, i64, i64, i64, i64, i64], returns: i64 },
  });
  const errnoAt = lib.symbols.__errno_location!() as number;
  const syscall = lib.symbols.syscall!;
  binding = {
    syscall: (nr, a, b, c, d, e) => syscall(nr, a, b, c, d, e) as bigint,
    // (`.buffer` first: a small typed array's bytes move into an ArrayBuffer on its first use; see _bun.ts)
    addressOf: (buf) => {
      void buf.buffer;
      return BigInt(m.ptr(buf));
    },
    errno: () => m.read.i32(errnoAt),
  };
}

/** The calling thread's errno: read right after the failing call. */
function errno(): number {
  return binding!.errno();
}

/** An argument: a number, or a buffer's address (the buffer stays referenced by the caller). */
type Arg = number | bigint | Uint8Array;

/** `syscall(nr, …args)`: its result, -1 with errno set on failure. */
function sys(call: HotCall, ...args: Arg[]): number {
  const b = lib();
  const a = [0, 1, 2, 3, 4].map((i) => {
    const v = args[i] ?? 0;
    return v instanceof Uint8Array ? b.addressOf(v) : BigInt(v);
  });
  return Number(b.syscall(BigInt(HOT_SYS[call]), a[0]!, a[1]!, a[2]!, a[3]!, a[4]!));
}

/** {@link sys}, made again while it fails with EINTR. */
function retry(call: HotCall, ...args: Arg[]): number {
  for (;;) {
    const r = sys(call, ...args);
    if (r !== -1 || errno() !== EINTR) return r;
  }
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

function statOf(path: string, flags: number): HotFileFacts | undefined {
  const buf = new Uint8Array(256);
  if (sys("statx", AT_FDCWD, cstr(path), flags, STATX_MASK, buf) === -1) {
    const e = errno();
    if (e === ENOENT || e === ENOTDIR) return undefined;
    throw new SyscallError("statx", e, [path]);
  }
  const view = new DataView(buf.buffer);
  // struct statx: stx_uid at 20 (u32), stx_mode at 28 (u16)
  const uid = view.getUint32(20, true), mode = view.getUint16(28, true);
  const type = mode & S_IFMT;
  const kind = type === S_IFLNK ? "symlink" : type === S_IFDIR ? "dir" : type === S_IFREG ? "file" : "other";
  return { uid, mode: mode & 0o7777, kind };
}

function openFile(path: string, flags: number, mode = 0): number {
  return retry("openat", AT_FDCWD, cstr(path), flags | O_CLOEXEC, mode);
}

/** The host calls of the hot commands (see the module's comment). */
export const hotFs = {
  /** A file's text (UTF-8), or undefined when it cannot be read (missing, gone, refused). */
  readText(path: string): string | undefined {
    const fd = openFile(path, O_RDONLY);
    if (fd === -1) return undefined;
    try {
      const chunks: Uint8Array[] = [];
      let size = 0;
      for (;;) {
        const buf = new Uint8Array(size < 4096 ? 4096 : 65536);
        const n = retry("read", fd, buf, buf.length);
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
      sys("close", fd);
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
  /** The path with its symlinks resolved (libc's realpath). @throws {SyscallError} When it leads nowhere. */
  realPath(path: string): string {
    lib();
    realpathSymbol ??= ffi().open("libc.so.6", REALPATH_SYMBOL);
    const out = new Uint8Array(PATH_MAX);
    if (realpathSymbol.realpath(cstr(path), out) === null) throw new SyscallError("realpath", errno(), [path]);
    return fromC(out);
  },
  /** The current directory. */
  cwd(): string {
    const out = new Uint8Array(PATH_MAX);
    if (sys("getcwd", out, out.length) === -1) throw new SyscallError("getcwd", errno(), []);
    return fromC(out);
  },
  /** The effective uid. */
  euid(): number {
    return sys("geteuid");
  },
  /** An environment variable (Bun's or Deno's own table: no `node:process`). */
  env(name: string): string | undefined {
    const g = globalThis as unknown as {
      Bun?: { env: Record<string, string | undefined> };
      Deno?: { env: { get(name: string): string | undefined } };
    };
    return g.Bun ? g.Bun.env[name] : g.Deno?.env.get(name);
  },
  /** `mkdir`. @throws {SyscallError} (`code` "EEXIST" when something has that name). */
  mkdir(path: string, mode: number): void {
    if (sys("mkdirat", AT_FDCWD, cstr(path), mode) === -1) throw new SyscallError("mkdir", errno(), [path]);
  },
  /** `chmod`. @throws {SyscallError} */
  chmod(path: string, mode: number): void {
    if (sys("fchmodat", AT_FDCWD, cstr(path), mode) === -1) throw new SyscallError("chmod", errno(), [path]);
  },
  /** `unlink`. @throws {SyscallError} */
  unlink(path: string): void {
    if (sys("unlinkat", AT_FDCWD, cstr(path), 0) === -1) throw new SyscallError("unlink", errno(), [path]);
  },
  /** `rmdir`. @throws {SyscallError} */
  rmdir(path: string, context?: string): void {
    if (retry("unlinkat", AT_FDCWD, cstr(path), AT_REMOVEDIR) === -1) {
      throw new SyscallError("rmdir", errno(), [path], context);
    }
  },
  /**
   * The names in a directory (not `.` nor `..`), with whether each is a directory; `noFollow`: refused
   * (ENOTDIR) when `path` itself is a symlink. @throws {SyscallError}
   */
  readDir(path: string, noFollow = false): Array<{ name: string; dir: boolean }> {
    const fd = openFile(path, O_RDONLY | O_DIRECTORY | (noFollow ? O_NOFOLLOW : 0));
    if (fd === -1) throw new SyscallError("open", errno(), [path]);
    const out: Array<{ name: string; dir: boolean }> = [];
    try {
      const buf = new Uint8Array(32768);
      const view = new DataView(buf.buffer);
      for (;;) {
        const n = sys("getdents64", fd, buf, buf.length);
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
      sys("close", fd);
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
    // (a directory swapped for a symlink since the lstat is refused, not followed and emptied)
    for (const e of hotFs.readDir(path, true)) hotFs.removeTree(`${path}/${e.name}`);
    hotFs.rmdir(path);
  },
  /** Appends `text` to `path`, made with `mode` when new. @throws {SyscallError} */
  appendText(path: string, text: string, mode: number): void {
    const fd = openFile(path, O_WRONLY | O_APPEND | O_CREAT, mode);
    if (fd === -1) throw new SyscallError("open", errno(), [path]);
    try {
      hotFs.writeFd(fd, text);
    } finally {
      sys("close", fd);
    }
  },
  /** Writes `text` to the existing file `path` (a cgroup knob: one write). @throws {SyscallError} */
  writeText(path: string, text: string): void {
    const fd = openFile(path, O_WRONLY);
    if (fd === -1) throw new SyscallError("open", errno(), [path]);
    try {
      hotFs.writeFd(fd, text);
    } finally {
      sys("close", fd);
    }
  },
  /** Writes all of `text` to `fd` (stdout: 1, stderr: 2). @throws {SyscallError} */
  writeFd(fd: number, text: string): void {
    let buf = encoder.encode(text);
    while (buf.length > 0) {
      const n = retry("write", fd, buf, buf.length);
      if (n === -1) throw new SyscallError("write", errno(), [fd]);
      buf = buf.subarray(n);
    }
  },
  /** Opens a FIFO for reading without blocking (close-on-exec). @throws {SyscallError} (ENOENT when gone) */
  openFifoReader(path: string): number {
    const fd = openFile(path, O_RDONLY | O_NONBLOCK);
    if (fd === -1) throw new SyscallError("open", errno(), [path]);
    return fd;
  },
  /** Reads one byte from a non-blocking fd: true when read, false when none yet (EAGAIN, or no writer). @throws {SyscallError} */
  readByte(fd: number): boolean {
    const n = retry("read", fd, new Uint8Array(1), 1);
    if (n === -1) {
      const e = errno();
      if (e === EAGAIN) return false;
      throw new SyscallError("read", e, [fd]);
    }
    return n === 1;
  },
  /**
   * Waits until `fd` is readable or hung up, at most `ms` (ppoll, POLLIN). A FIFO opened for
   * reading with no writer yet is neither (Linux reports POLLHUP only once a writer has come and
   * gone), so the exec FIFO's reader sleeps until the container's process writes its byte.
   * @returns "ready" (readable), "hup" (every writer gone), or "timeout".
   * @throws {SyscallError} For a failure other than EINTR (which returns "timeout").
   */
  waitReadable(fd: number, ms: number): "ready" | "hup" | "timeout" {
    // struct pollfd { int fd; short events; short revents; }, struct timespec { i64 sec; i64 nsec; }
    const pfd = new Uint8Array(8), ts = new Uint8Array(16);
    const p = new DataView(pfd.buffer), t = new DataView(ts.buffer);
    p.setInt32(0, fd, true);
    p.setInt16(4, 0x1, /* POLLIN */ true);
    t.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
    t.setBigInt64(8, BigInt((ms % 1000) * 1_000_000), true);
    const n = sys("ppoll", pfd, 1, ts, 0, 0);
    if (n === -1) {
      const e = errno();
      if (e === EINTR) return "timeout";
      throw new SyscallError("ppoll", e, [fd]);
    }
    if (n === 0) return "timeout";
    const revents = p.getInt16(6, true);
    return revents & 0x1 ? "ready" : "hup";
  },
  /** `kill(pid, sig)`, a process that is gone (ESRCH) ignored. @throws {SyscallError} For another failure. */
  kill(pid: number, sig: number): void {
    if (sys("kill", pid, sig) === -1) {
      const e = errno();
      if (e !== ESRCH) throw new SyscallError("kill", e, [pid, sig]);
    }
  },
  /** `close`. */
  close(fd: number): void {
    sys("close", fd);
  },
  /**
   * `pidfd_open(pid, 0)`: a pidfd, or undefined when there is no such process (ESRCH).
   * @throws {SyscallError} For another failure.
   */
  pidfdOpen(pid: number, context?: string): number | undefined {
    const fd = sys("pidfd_open", pid, 0);
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
    if (sys("pidfd_send_signal", fd, sig, 0, 0) === -1) {
      const e = errno();
      if (e === ESRCH) return false;
      throw new SyscallError("pidfd_send_signal", e, shown, context);
    }
    return true;
  },
};
