/**
 * The one typed libc symbol table, opened lazily from `libc.so.6` — through `Deno.dlopen` under
 * Deno and `bun:ffi` under Bun (chosen at load time, see `_deno.ts` and `_bun.ts`), with the same
 * types under both.
 *
 * Pointer parameters are `"buffer"`: callers pass a `Uint8Array`/`Int32Array`
 * (or `null` for a NULL pointer), so nothing above `ffi/` ever holds a raw pointer.
 * 64-bit results (`i64`, `u64`, `usize`) are bigints under both runtimes.
 * No symbol that sets errno is `nonblocking`: errno is read on the calling thread
 * immediately after the call (see {@link check}).
 *
 * @module
 */
import { SyscallError } from "./errno.ts";
import { EINTR } from "./constants.ts";
import { denoFfi } from "./_deno.ts";
import { bunFfiAdapter } from "./_bun.ts";

/** The libc functions hako binds, each parameter commented with its C type. */
export const LIBC_SYMBOLS = {
  // pid_t fork(void)
  fork: { parameters: [], result: "i32" },
  // int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso)
  // (glibc's pthread_atfork; the handlers are native code, ffi/fork.ts, never JavaScript callbacks)
  __register_atfork: { parameters: ["usize", "usize", "usize", "usize"], result: "i32" },
  // void _exit(int status)
  _exit: { parameters: ["i32"], result: "void" },
  // pid_t getpid(void), getppid(void), gettid(void)
  getpid: { parameters: [], result: "i32" },
  getppid: { parameters: [], result: "i32" },
  gettid: { parameters: [], result: "i32" },
  // uid_t getuid(void), geteuid(void); gid_t getgid(void)
  getuid: { parameters: [], result: "u32" },
  geteuid: { parameters: [], result: "u32" },
  getgid: { parameters: [], result: "u32" },
  // pid_t setsid(void)
  setsid: { parameters: [], result: "i32" },
  // pid_t waitpid(pid_t pid, int *wstatus, int options)
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int kill(pid_t pid, int sig)
  kill: { parameters: ["i32", "i32"], result: "i32" },
  // int execve(const char *path, char *const argv[], char *const envp[])
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  // long syscall(long number, ...) — called with six longs
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  // int madvise(void *addr, size_t length, int advice)
  madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
  // int unshare(int flags)
  unshare: { parameters: ["i32"], result: "i32" },
  // int setns(int fd, int nstype)
  setns: { parameters: ["i32", "i32"], result: "i32" },
  // int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  // int umount2(const char *target, int flags)
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  // int chroot(const char *path), chdir(const char *path)
  chroot: { parameters: ["buffer"], result: "i32" },
  chdir: { parameters: ["buffer"], result: "i32" },
  // int sethostname(const char *name, size_t len), setdomainname(...)
  sethostname: { parameters: ["buffer", "usize"], result: "i32" },
  setdomainname: { parameters: ["buffer", "usize"], result: "i32" },
  // int prlimit(pid_t pid, int resource, const struct rlimit *new, struct rlimit *old)
  prlimit: { parameters: ["i32", "i32", "buffer", "buffer"], result: "i32" },
  // int setresuid(uid_t r, uid_t e, uid_t s), setresgid(gid_t r, gid_t e, gid_t s)
  setresuid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  setresgid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  // int setgroups(size_t size, const gid_t *list)
  setgroups: { parameters: ["usize", "buffer"], result: "i32" },
  // int capget(cap_user_header_t hdr, cap_user_data_t data), capset(...)
  capget: { parameters: ["buffer", "buffer"], result: "i32" },
  capset: { parameters: ["buffer", "buffer"], result: "i32" },
  // int prctl(int option, unsigned long arg2, arg3, arg4, arg5)
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  // int pipe2(int pipefd[2], int flags)
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count), write(int fd, const void *buf, size_t count)
  // (the result is read as int: hako never moves 2 GiB in one call)
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // int open(const char *path, int flags, mode_t mode)
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int fchdir(int fd)
  fchdir: { parameters: ["i32"], result: "i32" },
  // int close(int fd)
  close: { parameters: ["i32"], result: "i32" },
  // int dup2(int oldfd, int newfd)
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  // sighandler_t signal(int signum, sighandler_t handler) — handler passed as an integer (SIG_DFL = 0)
  signal: { parameters: ["i32", "usize"], result: "usize" },
  // int sigaction(int signum, const struct sigaction *act, struct sigaction *oldact)
  sigaction: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // int sigprocmask(int how, const sigset_t *set, sigset_t *old)
  sigprocmask: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout)
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  // int mknod(const char *path, mode_t mode, dev_t dev)
  mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" },
  // int lchown(const char *path, uid_t owner, gid_t group)
  lchown: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  // int ioctl(int fd, unsigned long request, unsigned long arg)
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
  // int *__errno_location(void)
  __errno_location: { parameters: [], result: "pointer" },
  // int setuid(uid_t uid), setgid(gid_t gid) — glibc applies them to every thread of the process
  setuid: { parameters: ["u32"], result: "i32" },
  setgid: { parameters: ["u32"], result: "i32" },
  // gid_t getegid(void)
  getegid: { parameters: [], result: "u32" },
  // int getgroups(int size, gid_t list[])
  getgroups: { parameters: ["i32", "buffer"], result: "i32" },
  // int gethostname(char *name, size_t len), getdomainname(char *name, size_t len)
  gethostname: { parameters: ["buffer", "usize"], result: "i32" },
  getdomainname: { parameters: ["buffer", "usize"], result: "i32" },
  // int statvfs(const char *path, struct statvfs *buf)
  statvfs: { parameters: ["buffer", "buffer"], result: "i32" },
  // int socket(int domain, int type, int protocol)
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr, socklen_t addrlen)
  // (read as int, like read/write: netlink messages are small)
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  // ssize_t recv(int fd, void *buf, size_t len, int flags)
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  // int getsockopt(int fd, int level, int name, void *value, socklen_t *len)
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  // int connect(int fd, const struct sockaddr *addr, socklen_t len)
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // mode_t umask(mode_t mask) — never fails
  umask: { parameters: ["u32"], result: "u32" },
  // unsigned int if_nametoindex(const char *ifname) — 0 and errno when there is no such interface
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  // int flock(int fd, int operation)
  flock: { parameters: ["i32", "i32"], result: "i32" },
  // int symlink(const char *target, const char *linkpath), mkdir(const char *path, mode_t mode)
  symlink: { parameters: ["buffer", "buffer"], result: "i32" },
  mkdir: { parameters: ["buffer", "u32"], result: "i32" },
  // int openat(int dirfd, const char *path, int flags, mode_t mode) — mode read only with O_CREAT
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  // int mkdirat(int dirfd, const char *path, mode_t mode)
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int symlinkat(const char *target, int newdirfd, const char *linkpath)
  symlinkat: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  // int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
  linkat: { parameters: ["i32", "buffer", "i32", "buffer", "i32"], result: "i32" },
  // int unlinkat(int dirfd, const char *path, int flags)
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int fchownat(int dirfd, const char *path, uid_t owner, gid_t group, int flags)
  fchownat: { parameters: ["i32", "buffer", "u32", "u32", "i32"], result: "i32" },
  // int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
  fchmodat: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  // int faccessat(int dirfd, const char *path, int mode, int flags)
  faccessat: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  // int fchown(int fd, uid_t owner, gid_t group), fchmod(int fd, mode_t mode)
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  // int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags)
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  // int futimens(int fd, const struct timespec times[2])
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  // int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)
  fsetxattr: { parameters: ["i32", "buffer", "buffer", "usize", "i32"], result: "i32" },
  // void *memcpy(void *dest, const void *src, size_t n) — dest an address from mmap (ffi/spawn.ts)
  memcpy: { parameters: ["usize", "buffer", "usize"], result: "usize" },
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
  mmap: { parameters: ["usize", "usize", "i32", "i32", "i32", "i64"], result: "usize" },
  // int personality(unsigned long persona) (0xffffffff: only read it)
  personality: { parameters: ["u64"], result: "i32" },
  // int munmap(void *addr, size_t length)
  munmap: { parameters: ["usize", "usize"], result: "i32" },
  // int mprotect(void *addr, size_t len, int prot)
  mprotect: { parameters: ["usize", "usize", "i32"], result: "i32" },
  // int socketpair(int domain, int type, int protocol, int sv[2])
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // ssize_t sendmsg(int fd, const struct msghdr *msg, int flags), recvmsg(int fd, struct msghdr *msg, int flags)
  // (read as int: one byte and one fd at a time, see ffi/tty.ts)
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int tcgetattr(int fd, struct termios *t), tcsetattr(int fd, int when, const struct termios *t)
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // void cfmakeraw(struct termios *t)
  cfmakeraw: { parameters: ["buffer"], result: "void" },
  // int clone(int (*fn)(void *), void *stack, int flags, void *arg) — fn, stack and arg as addresses
  // (ffi/spawn.ts: fn is native code, never a JavaScript callback)
  clone: { parameters: ["usize", "usize", "i32", "usize"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound libc functions. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** One runtime's FFI, as `libc.ts` uses it (implemented by `_deno.ts` and `_bun.ts`). */
export interface NativeFfi {
  /** Which runtime this is. */
  readonly runtime: "deno" | "bun";
  /**
   * Opens a library and binds `symbols` (a table in Deno's format), typed as Deno types them.
   * `lazy`: a runtime may bind each symbol on its first read instead (Bun does: see `_bun.ts`),
   * and every symbol at once on the first read of a key in `bindAllOn`.
   */
  open<S extends Deno.ForeignLibraryInterface>(
    path: string,
    symbols: S,
    options?: { readonly lazy?: boolean; readonly bindAllOn?: readonly string[] },
  ): Deno.DynamicLibrary<S>["symbols"];
  /** A reader of the `int` at `pointer` (a pointer result of a symbol bound by `open`). */
  int32Reader(pointer: unknown): () => number;
  /** The address of a buffer's first byte; it stays valid while the buffer is referenced. */
  addressOf(buf: Uint8Array): bigint;
  /**
   * A function at a native address (code hako mapped itself, e.g. ffi/fork.ts's pass), bound with
   * a definition in Deno's format. Integer parameters and results only.
   */
  fnPointer(address: bigint, def: Deno.ForeignFunction): (...args: Array<number | bigint>) => unknown;
}

/** The running runtime's FFI, or undefined when neither Deno nor Bun runs us. */
const native: NativeFfi | undefined = "Bun" in globalThis
  ? bunFfiAdapter
  : typeof Deno !== "undefined" && typeof Deno.dlopen === "function"
  ? denoFfi
  : undefined;

function nativeFfi(): NativeFfi {
  if (!native) throw new Error("hako needs Deno (run with -A) or Bun: this runtime has no FFI hako can use");
  return native;
}

/** The runtime whose FFI hako uses: `"deno"` or `"bun"`. */
export function ffiRuntime(): "deno" | "bun" {
  return nativeFfi().runtime;
}

let symbols: Libc | undefined;
let errnoReader: (() => number) | undefined;

/**
 * The libc symbols, opening `libc.so.6` on first use. Under Bun each is bound on its first read
 * (a short command such as `hako-runc state` calls a handful of the table, and binding all cost it
 * ~4 ms); the first read of `fork` binds them all, so a forked child, which runs JavaScript, finds
 * every symbol bound and compiles nothing (ffi/fork.ts reads `fork` before it forks).
 */
export function libc(): Libc {
  if (!symbols) {
    symbols = nativeFfi().open("libc.so.6", LIBC_SYMBOLS, { lazy: true, bindAllOn: ["fork"] });
    // errno is read right after a failing call: binding __errno_location then (a dlopen, a
    // compile), or making its reader (bun:ffi's first read), could change it first — a forked
    // child's first errno() after an EEXIST once read ENOENT — so both are made now.
    errnoAt(symbols);
  }
  return symbols;
}

/**
 * Opens another shared library (e.g. `liblzma.so.5`, see `ffi/lzma.ts`) through the running
 * runtime's FFI and binds `symbols` (a table in Deno's format).
 * @throws {Error} When the library or a symbol cannot be found (the runtime's own message).
 */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  path: string,
  symbols: S,
): Deno.DynamicLibrary<S>["symbols"] {
  return nativeFfi().open(path, symbols);
}

/**
 * Binds the native function at `address` (machine code hako mapped executable itself, never an
 * address from outside) with `def`, a definition in Deno's format with integer types only.
 */
export function nativeFunction(
  address: bigint,
  def: Deno.ForeignFunction,
): (...args: Array<number | bigint>) => unknown {
  return nativeFfi().fnPointer(address, def);
}

/**
 * The calling thread's errno. Call it right after the failing libc call: any FFI call,
 * allocation-heavy work or `await` in between may overwrite it.
 */
export function errno(): number {
  if (!errnoReader) errnoAt(libc());
  return errnoReader ? errnoReader() : 0;
}

/** Makes {@link errno}'s reader of this (the main) thread's errno. */
function errnoAt(table: Libc): void {
  const p = table.__errno_location();
  if (p !== null) {
    errnoReader = nativeFfi().int32Reader(p);
    errnoReader(); // (its first read compiled now, not after a failing call)
  }
}

/**
 * Throws a {@link SyscallError} when `ret` is -1 (reading errno at once), otherwise returns `ret` as a number.
 *
 * @param ret The call's return value.
 * @param syscall The call's name for the message.
 * @param args The arguments that matter, for the message.
 * @param context What hako was doing, prefixed to the message ("mount proc on /x/proc").
 * @throws {SyscallError} When `ret` is -1.
 */
export function check(
  ret: number | bigint,
  syscall: string,
  args: readonly unknown[] = [],
  context?: string,
): number {
  if (ret === -1 || ret === -1n) throw new SyscallError(syscall, errno(), args, context);
  return Number(ret);
}

/**
 * Makes `call` again while it fails with EINTR (returns -1 with errno EINTR), and returns its first
 * other result. When that result is -1, errno is still the call's own: only errno has been read
 * since, so the caller may read it (or pass the result to {@link check}).
 *
 * It takes a closure, so it is not for code between a fork and an exec or `_exit` of the runtime
 * (ffi/fork.ts's intermediate, a forked child's setup), which allocates as little as it can: there
 * the loops stay written out.
 *
 * @example Read from a pipe, whatever signal arrives meanwhile
 * ```ts ignore
 * const n = retryEintr(() => libc().read(fd, buf, BigInt(buf.length)));
 * ```
 * @param call The libc call, returning -1 on failure.
 * @returns The call's first result that is not an EINTR failure.
 */
export function retryEintr<T extends number | bigint>(call: () => T): T {
  for (;;) {
    const ret = call();
    if ((ret !== -1 && ret !== -1n) || errno() !== EINTR) return ret;
  }
}

/**
 * {@link check} of {@link retryEintr}: makes `call` until it does not fail with EINTR, then throws a
 * {@link SyscallError} when it failed otherwise.
 *
 * @param call The libc call, returning -1 on failure.
 * @param syscall The call's name for the message.
 * @param args The arguments that matter, for the message.
 * @param context What hako was doing, prefixed to the message.
 * @returns The call's result, as a number.
 * @throws {SyscallError} When the call fails with anything but EINTR.
 */
export function checkRetry(
  call: () => number | bigint,
  syscall: string,
  args: readonly unknown[] = [],
  context?: string,
): number {
  return check(retryEintr(call), syscall, args, context);
}

/**
 * The address of a buffer's first byte (for building pointer arrays such as argv). Keep `buf`
 * referenced until the call that uses the address returns.
 */
export function addressOf(buf: Uint8Array): bigint {
  return nativeFfi().addressOf(buf);
}
