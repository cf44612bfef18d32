/**
 * Kernel constants, in one place: errno numbers, `open`/`fcntl` flags, `*at` flags, file types,
 * mount flags, `prctl` options, clone flags, signal numbers and `wait` options.
 *
 * Each group names the header it comes from (Linux UAPI headers unless noted), and the values are
 * the kernel's for x86_64 and aarch64 (the two architectures hako supports); where the two differ
 * the constant is chosen by {@link ARCH} and the per-architecture table is exported too.
 * `tests/constants_test.ts` compares a sample with the system's headers.
 *
 * Names and messages of errno numbers live in `ffi/errno.ts` (keyed by these constants); syscall
 * numbers per architecture in `ffi/syscalls.ts` and, for seccomp, `src/seccomp/`; struct layouts
 * in `ffi/structs.ts`.
 *
 * @example Opening a directory as a path fd
 * ```ts ignore
 * import { O_CLOEXEC, O_DIRECTORY, O_PATH } from "./ffi/constants.ts";
 * const flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
 * ```
 * @module
 */
import { ARCH } from "./_arch.ts";

// ---------------------------------------------------------------------------------------------
// errno (asm-generic/errno-base.h 1..34, asm-generic/errno.h above; the same on x86_64 and aarch64)

/** `EPERM`: operation not permitted. */
export const EPERM = 1;
/** `ENOENT`: no such file or directory. */
export const ENOENT = 2;
/** `ESRCH`: no such process. */
export const ESRCH = 3;
/** `EINTR`: interrupted system call (see `retryEintr` in ffi/libc.ts). */
export const EINTR = 4;
/** `EIO`: input/output error. */
export const EIO = 5;
/** `ENXIO`: no such device or address. */
export const ENXIO = 6;
/** `E2BIG`: argument list too long. */
export const E2BIG = 7;
/** `ENOEXEC`: exec format error. */
export const ENOEXEC = 8;
/** `EBADF`: bad file descriptor. */
export const EBADF = 9;
/** `ECHILD`: no child processes. */
export const ECHILD = 10;
/** `EAGAIN`: resource temporarily unavailable. */
export const EAGAIN = 11;
/** `EWOULDBLOCK`: the same number as `EAGAIN` on Linux. */
export const EWOULDBLOCK = EAGAIN;
/** `ENOMEM`: cannot allocate memory. */
export const ENOMEM = 12;
/** `EACCES`: permission denied. */
export const EACCES = 13;
/** `EFAULT`: bad address. */
export const EFAULT = 14;
/** `ENOTBLK`: block device required. */
export const ENOTBLK = 15;
/** `EBUSY`: device or resource busy. */
export const EBUSY = 16;
/** `EEXIST`: file exists. */
export const EEXIST = 17;
/** `EXDEV`: invalid cross-device link. */
export const EXDEV = 18;
/** `ENODEV`: no such device. */
export const ENODEV = 19;
/** `ENOTDIR`: not a directory. */
export const ENOTDIR = 20;
/** `EISDIR`: is a directory. */
export const EISDIR = 21;
/** `EINVAL`: invalid argument. */
export const EINVAL = 22;
/** `ENFILE`: too many open files in system. */
export const ENFILE = 23;
/** `EMFILE`: too many open files. */
export const EMFILE = 24;
/** `ENOTTY`: inappropriate ioctl for device. */
export const ENOTTY = 25;
/** `ETXTBSY`: text file busy. */
export const ETXTBSY = 26;
/** `EFBIG`: file too large. */
export const EFBIG = 27;
/** `ENOSPC`: no space left on device. */
export const ENOSPC = 28;
/** `ESPIPE`: illegal seek. */
export const ESPIPE = 29;
/** `EROFS`: read-only file system. */
export const EROFS = 30;
/** `EMLINK`: too many links. */
export const EMLINK = 31;
/** `EPIPE`: broken pipe. */
export const EPIPE = 32;
/** `ERANGE`: numerical result out of range. */
export const ERANGE = 34;
/** `ENAMETOOLONG`: file name too long. */
export const ENAMETOOLONG = 36;
/** `ENOSYS`: function not implemented. */
export const ENOSYS = 38;
/** `ENOTEMPTY`: directory not empty. */
export const ENOTEMPTY = 39;
/** `ELOOP`: too many levels of symbolic links. */
export const ELOOP = 40;
/** `ENODATA`: no data available. */
export const ENODATA = 61;
/** `EOVERFLOW`: value too large for defined data type. */
export const EOVERFLOW = 75;
/** `EMSGSIZE`: message too long. */
export const EMSGSIZE = 90;
/** `EOPNOTSUPP`: operation not supported. */
export const EOPNOTSUPP = 95;
/** `EADDRINUSE`: address already in use. */
export const EADDRINUSE = 98;
/** `ETIMEDOUT`: connection timed out. */
export const ETIMEDOUT = 110;
/** `EDQUOT`: disk quota exceeded. */
export const EDQUOT = 122;

// ---------------------------------------------------------------------------------------------
// open(2) flags (asm-generic/fcntl.h; arm64's asm/fcntl.h moves O_DIRECTORY and O_NOFOLLOW)

/** `O_RDONLY`. */
export const O_RDONLY = 0;
/** `O_WRONLY`. */
export const O_WRONLY = 0o1;
/** `O_RDWR`. */
export const O_RDWR = 0o2;
/** `O_CREAT`. */
export const O_CREAT = 0o100;
/** `O_EXCL`: with `O_CREAT`, fail with EEXIST if anything (a symlink included) has the name. */
export const O_EXCL = 0o200;
/** `O_NOCTTY`: opening a terminal does not make it the controlling one. */
export const O_NOCTTY = 0o400;
/** `O_TRUNC`. */
export const O_TRUNC = 0o1000;
/** `O_APPEND`. */
export const O_APPEND = 0o2000;
/** `O_NONBLOCK`. */
export const O_NONBLOCK = 0o4000;
/** `O_DIRECTORY` per architecture (x86_64 uses asm-generic's value, arm64 its own). */
export const O_DIRECTORY_BY_ARCH = { x86_64: 0o200000, aarch64: 0o40000 } as const;
/** `O_NOFOLLOW` per architecture (x86_64 uses asm-generic's value, arm64 its own). */
export const O_NOFOLLOW_BY_ARCH = { x86_64: 0o400000, aarch64: 0o100000 } as const;
/** `O_DIRECTORY` of the running architecture: fail (ENOTDIR) unless the path is a directory. */
export const O_DIRECTORY: number = O_DIRECTORY_BY_ARCH[ARCH];
/** `O_NOFOLLOW` of the running architecture: fail (ELOOP) when the last component is a symlink. */
export const O_NOFOLLOW: number = O_NOFOLLOW_BY_ARCH[ARCH];
/** `O_CLOEXEC`. */
export const O_CLOEXEC = 0o2000000;
/** `O_PATH`: an fd that only names a place in the tree (for `*at` calls), opening nothing. */
export const O_PATH = 0o10000000;

// ---------------------------------------------------------------------------------------------
// fcntl(2) commands and seals (asm-generic/fcntl.h, linux/fcntl.h), memfd_create(2) (linux/memfd.h)

/** `F_GETFD`: the fd's flags (`FD_CLOEXEC`). */
export const F_GETFD = 1;
/** `F_SETFD`: set the fd's flags. */
export const F_SETFD = 2;
/** `FD_CLOEXEC`: the fd closes at execve. */
export const FD_CLOEXEC = 1;
/** `F_DUPFD_CLOEXEC`: dup to the lowest fd ≥ arg, close-on-exec. */
export const F_DUPFD_CLOEXEC = 1030;
/** `F_ADD_SEALS`: add `F_SEAL_*` seals to a memfd. */
export const F_ADD_SEALS = 1033;
/** `F_SEAL_SEAL`: no more seals may be added. */
export const F_SEAL_SEAL = 0x1;
/** `F_SEAL_SHRINK`: the file may not shrink. */
export const F_SEAL_SHRINK = 0x2;
/** `F_SEAL_GROW`: the file may not grow. */
export const F_SEAL_GROW = 0x4;
/** `F_SEAL_WRITE`: the file may not be written. */
export const F_SEAL_WRITE = 0x8;
/** `MFD_CLOEXEC`. */
export const MFD_CLOEXEC = 0x1;
/** `MFD_ALLOW_SEALING`. */
export const MFD_ALLOW_SEALING = 0x2;
/** `MFD_EXEC` (Linux 6.3): an executable memfd, said explicitly. */
export const MFD_EXEC = 0x10;

// ---------------------------------------------------------------------------------------------
// *at(2) flags (linux/fcntl.h), openat2(2) resolve flags (linux/openat2.h)

/** `AT_FDCWD`: a path relative to the current directory. */
export const AT_FDCWD = -100;
/** `AT_SYMLINK_NOFOLLOW`: act on a symlink itself, not on what it points to. */
export const AT_SYMLINK_NOFOLLOW = 0x100;
/** `AT_REMOVEDIR`: unlinkat removes a directory (which must be empty). */
export const AT_REMOVEDIR = 0x200;
/** `AT_EMPTY_PATH`: an empty path means the fd itself. */
export const AT_EMPTY_PATH = 0x1000;
/** `AT_RECURSIVE`: open_tree/mount_setattr act on the whole subtree. */
export const AT_RECURSIVE = 0x8000;

/** `RESOLVE_NO_XDEV`: no mount point crossed. */
export const RESOLVE_NO_XDEV = 0x01;
/** `RESOLVE_NO_MAGICLINKS`: no `/proc/<pid>/fd`-style link followed. */
export const RESOLVE_NO_MAGICLINKS = 0x02;
/** `RESOLVE_NO_SYMLINKS`: no symlink followed at all (ELOOP). */
export const RESOLVE_NO_SYMLINKS = 0x04;
/** `RESOLVE_BENEATH`: the path may not leave the directory fd (EXDEV), `..` and absolute links included. */
export const RESOLVE_BENEATH = 0x08;
/** `RESOLVE_IN_ROOT`: the directory fd is `/` for the lookup (as if chrooted there). */
export const RESOLVE_IN_ROOT = 0x10;

// ---------------------------------------------------------------------------------------------
// File types of a mode (linux/stat.h)

/** File type bits of a mode. */
export const S_IFMT = 0o170000;
/** A FIFO. */
export const S_IFIFO = 0o010000;
/** A character device. */
export const S_IFCHR = 0o020000;
/** A directory. */
export const S_IFDIR = 0o040000;
/** A block device. */
export const S_IFBLK = 0o060000;
/** A regular file. */
export const S_IFREG = 0o100000;
/** A symbolic link. */
export const S_IFLNK = 0o120000;

// ---------------------------------------------------------------------------------------------
// mount(2) flags (linux/mount.h)

/** Mount read-only. */
export const MS_RDONLY = 0x1;
/** Ignore set-user-ID and set-group-ID bits. */
export const MS_NOSUID = 0x2;
/** Disallow access to device special files. */
export const MS_NODEV = 0x4;
/** Disallow program execution. */
export const MS_NOEXEC = 0x8;
/** Writes are synced at once. */
export const MS_SYNCHRONOUS = 0x10;
/** Alter flags of a mounted filesystem. */
export const MS_REMOUNT = 0x20;
/** Allow mandatory locks. */
export const MS_MANDLOCK = 0x40;
/** Directory modifications are synchronous. */
export const MS_DIRSYNC = 0x80;
/** Do not follow symlinks (Linux 5.10). */
export const MS_NOSYMFOLLOW = 0x100;
/** Do not update access times. */
export const MS_NOATIME = 0x400;
/** Do not update directory access times. */
export const MS_NODIRATIME = 0x800;
/** Bind mount. */
export const MS_BIND = 0x1000;
/** Move a subtree. */
export const MS_MOVE = 0x2000;
/** Recursive (with bind or a propagation change). */
export const MS_REC = 0x4000;
/** Suppress some kernel messages. */
export const MS_SILENT = 0x8000;
/** VFS does not apply the umask. */
export const MS_POSIXACL = 0x10000;
/** Make unbindable. */
export const MS_UNBINDABLE = 0x20000;
/** Make private. */
export const MS_PRIVATE = 0x40000;
/** Make slave. */
export const MS_SLAVE = 0x80000;
/** Make shared. */
export const MS_SHARED = 0x100000;
/** Update atime relative to mtime/ctime. */
export const MS_RELATIME = 0x200000;
/** A kern_mount call. */
export const MS_KERNMOUNT = 0x400000;
/** Update inode I_version field. */
export const MS_I_VERSION = 0x800000;
/** Always perform atime updates. */
export const MS_STRICTATIME = 0x1000000;
/** Update the on-disk [acm]times lazily. */
export const MS_LAZYTIME = 0x2000000;

/** umount2: force the unmount. */
export const MNT_FORCE = 0x1;
/** umount2: lazy unmount (detach now, clean up when no longer busy). */
export const MNT_DETACH = 0x2;
/** umount2: mark for expiry. */
export const MNT_EXPIRE = 0x4;
/** umount2: do not follow a symlink target. */
export const UMOUNT_NOFOLLOW = 0x8;

/** `MOUNT_ATTR_RDONLY` for mount_setattr(2) (linux/mount.h). */
export const MOUNT_ATTR_RDONLY = 0x1;
/** `OPEN_TREE_CLONE`: open_tree(2) makes a detached copy of the mount (linux/mount.h). */
export const OPEN_TREE_CLONE = 1;
/** `OPEN_TREE_CLOEXEC`: open_tree(2)'s fd is close-on-exec (the value of `O_CLOEXEC`). */
export const OPEN_TREE_CLOEXEC = O_CLOEXEC;
/** `MOVE_MOUNT_F_EMPTY_PATH`: move_mount(2)'s source is the fd itself (linux/mount.h). */
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
/** `MOVE_MOUNT_T_EMPTY_PATH`: move_mount(2)'s target is the fd itself (linux/mount.h). */
export const MOVE_MOUNT_T_EMPTY_PATH = 0x40;
/** `MOUNT_ATTR_NOSUID` for mount_setattr(2) (linux/mount.h). */
export const MOUNT_ATTR_NOSUID = 0x2;
/** `MOUNT_ATTR_NODEV` for mount_setattr(2) (linux/mount.h). */
export const MOUNT_ATTR_NODEV = 0x4;
/** `MOUNT_ATTR_NOEXEC` for mount_setattr(2) (linux/mount.h). */
export const MOUNT_ATTR_NOEXEC = 0x8;
/** `MOUNT_ATTR_IDMAP` for mount_setattr(2): the mount's ids mapped through `userns_fd` (linux/mount.h). */
export const MOUNT_ATTR_IDMAP = 0x00100000;
/** `MOUNT_ATTR_NOATIME`, `MOUNT_ATTR_STRICTATIME`, `MOUNT_ATTR_NODIRATIME` (linux/mount.h; relatime is 0). */
export const MOUNT_ATTR_NOATIME = 0x10;
export const MOUNT_ATTR_STRICTATIME = 0x20;
export const MOUNT_ATTR_NODIRATIME = 0x80;
/** fsopen(2)'s `FSOPEN_CLOEXEC` and fsmount(2)'s `FSMOUNT_CLOEXEC` (linux/mount.h). */
export const FSOPEN_CLOEXEC = 0x1;
export const FSMOUNT_CLOEXEC = 0x1;
/** fsconfig(2) commands (linux/mount.h): a flag, a string parameter, make the superblock. */
export const FSCONFIG_SET_FLAG = 0;
export const FSCONFIG_SET_STRING = 1;
export const FSCONFIG_CMD_CREATE = 6;

/**
 * statvfs(3)'s `ST_*` bit (sys/statvfs.h; linux/statfs.h's `ST_*`) → the `MS_*` flag it reports,
 * for keeping a mount's flags across a bind remount (the kernel refuses a remount that would
 * clear a locked flag). The native runners get it from here too: ffi/_op_layout.ts derives the
 * constants both assemblies include (ffi/_op_layout.inc, generated by tools/gen_op_layout.ts).
 */
export const ST_TO_MS: ReadonlyArray<readonly [number, number]> = [
  [0x1, MS_RDONLY], // ST_RDONLY
  [0x2, MS_NOSUID], // ST_NOSUID
  [0x4, MS_NODEV], // ST_NODEV
  [0x8, MS_NOEXEC], // ST_NOEXEC
  [0x400, MS_NOATIME], // ST_NOATIME
  [0x800, MS_NODIRATIME], // ST_NODIRATIME
  [0x1000, MS_RELATIME], // ST_RELATIME
  [0x2000, MS_NOSYMFOLLOW], // ST_NOSYMFOLLOW
];

// ---------------------------------------------------------------------------------------------
// prctl(2) options (linux/prctl.h)

/** `PR_GET_DUMPABLE`. */
export const PR_GET_DUMPABLE = 3;
/** `PR_SET_DUMPABLE`: 0 keeps other processes of the same user out of this one's memory. */
export const PR_SET_DUMPABLE = 4;
/** `PR_GET_KEEPCAPS`. */
export const PR_GET_KEEPCAPS = 7;
/** `PR_SET_KEEPCAPS`: keep permitted capabilities across a setuid away from 0. */
export const PR_SET_KEEPCAPS = 8;
/** `PR_CAPBSET_READ`: is a capability in the bounding set. */
export const PR_CAPBSET_READ = 23;
/** `PR_CAPBSET_DROP`: drop a capability from the bounding set. */
export const PR_CAPBSET_DROP = 24;
/** `PR_GET_SECUREBITS`. */
export const PR_GET_SECUREBITS = 27;
/** `PR_SET_NO_NEW_PRIVS`: execve never grants privileges again. */
export const PR_SET_NO_NEW_PRIVS = 38;
/** `PR_GET_NO_NEW_PRIVS`. */
export const PR_GET_NO_NEW_PRIVS = 39;
/** `PR_CAP_AMBIENT`: read or change the ambient set (with a `PR_CAP_AMBIENT_*` operation). */
export const PR_CAP_AMBIENT = 47;
/** `PR_CAP_AMBIENT_IS_SET`. */
export const PR_CAP_AMBIENT_IS_SET = 1;
/** `PR_CAP_AMBIENT_RAISE`. */
export const PR_CAP_AMBIENT_RAISE = 2;
/** `PR_CAP_AMBIENT_LOWER`. */
export const PR_CAP_AMBIENT_LOWER = 3;
/** `PR_CAP_AMBIENT_CLEAR_ALL`. */
export const PR_CAP_AMBIENT_CLEAR_ALL = 4;

// ---------------------------------------------------------------------------------------------
// clone(2) / unshare(2) flags (linux/sched.h)

/** `CLONE_NEWTIME`: new time namespace (for children). */
export const CLONE_NEWTIME = 0x00000080;
/** `CLONE_VM`: the child shares the parent's memory. */
export const CLONE_VM = 0x00000100;
/** `CLONE_PARENT`: the child's parent is the caller's parent. */
export const CLONE_PARENT = 0x00008000;
/** `CLONE_NEWNS`: new mount namespace. */
export const CLONE_NEWNS = 0x00020000;
/** `CLONE_NEWCGROUP`: new cgroup namespace. */
export const CLONE_NEWCGROUP = 0x02000000;
/** `CLONE_NEWUTS`: new UTS (hostname) namespace. */
export const CLONE_NEWUTS = 0x04000000;
/** `CLONE_NEWIPC`: new IPC namespace. */
export const CLONE_NEWIPC = 0x08000000;
/** `CLONE_NEWUSER`: new user namespace. */
export const CLONE_NEWUSER = 0x10000000;
/** `CLONE_NEWPID`: new PID namespace (for children). */
export const CLONE_NEWPID = 0x20000000;
/** `CLONE_NEWNET`: new network namespace. */
export const CLONE_NEWNET = 0x40000000;

// ---------------------------------------------------------------------------------------------
// Signals (asm-generic/signal.h; x86_64 and aarch64 agree), sigprocmask(2) how, wait options

/** `SIGHUP`. */
export const SIGHUP = 1;
/** `SIGINT`. */
export const SIGINT = 2;
/** `SIGQUIT`. */
export const SIGQUIT = 3;
/** `SIGILL`. */
export const SIGILL = 4;
/** `SIGTRAP`. */
export const SIGTRAP = 5;
/** `SIGABRT`. */
export const SIGABRT = 6;
/** `SIGBUS`. */
export const SIGBUS = 7;
/** `SIGFPE`. */
export const SIGFPE = 8;
/** `SIGKILL`. */
export const SIGKILL = 9;
/** `SIGUSR1`. */
export const SIGUSR1 = 10;
/** `SIGSEGV`. */
export const SIGSEGV = 11;
/** `SIGUSR2`. */
export const SIGUSR2 = 12;
/** `SIGPIPE`. */
export const SIGPIPE = 13;
/** `SIGALRM`. */
export const SIGALRM = 14;
/** `SIGTERM`. */
export const SIGTERM = 15;
/** `SIGSTKFLT`. */
export const SIGSTKFLT = 16;
/** `SIGCHLD`. */
export const SIGCHLD = 17;
/** `SIGCONT`. */
export const SIGCONT = 18;
/** `SIGSTOP`. */
export const SIGSTOP = 19;
/** `SIGTSTP`. */
export const SIGTSTP = 20;
/** `SIGTTIN`. */
export const SIGTTIN = 21;
/** `SIGTTOU`. */
export const SIGTTOU = 22;
/** `SIGURG`. */
export const SIGURG = 23;
/** `SIGXCPU`. */
export const SIGXCPU = 24;
/** `SIGXFSZ`. */
export const SIGXFSZ = 25;
/** `SIGVTALRM`. */
export const SIGVTALRM = 26;
/** `SIGPROF`. */
export const SIGPROF = 27;
/** `SIGWINCH`. */
export const SIGWINCH = 28;
/** `SIGIO`. */
export const SIGIO = 29;
/** `SIGPWR`. */
export const SIGPWR = 30;
/** `SIGSYS`. */
export const SIGSYS = 31;

/** `SIG_IGN` as a handler pointer (asm-generic/signal-defs.h). */
export const SIG_IGN = 1n;
/** sigprocmask `SIG_BLOCK`: add to the mask. */
export const SIG_BLOCK = 0;
/** sigprocmask `SIG_SETMASK`: replace the mask. */
export const SIG_SETMASK = 2;

/**
 * The signals a child puts back to SIG_DFL right before execve, on every path (the native
 * runner's program, a forked child's exec): 1–64 but SIGKILL and SIGSTOP, which cannot change. A
 * handler would not survive execve anyway; what this undoes is a runtime's SIG_IGN (of SIGPIPE,
 * SIGXFSZ…), which execve keeps and a program would inherit. (glibc refuses 32 and 33, its own;
 * the native runner's raw rt_sigaction resets them too, and nothing of a runtime ignores them.)
 */
export const EXEC_RESET_SIGNALS: readonly number[] = Object.freeze(execResetSignals());

// A plain loop: this module loads at every start, and under Bun the first Array.from/filter of a
// process compiles those builtins (~0.5 ms of a compiled `hako-runc state`).
function execResetSignals(): number[] {
  const out: number[] = [];
  for (let s = 1; s <= 64; s++) if (s !== SIGKILL && s !== SIGSTOP) out.push(s);
  return out;
}

/** waitpid `WNOHANG`: return 0 at once when no child has changed state (linux/wait.h). */
export const WNOHANG = 1;
/** waitpid `WUNTRACED`: also report stopped children (linux/wait.h). */
export const WUNTRACED = 2;

// ---------------------------------------------------------------------------------------------
// Sockets (linux/socket.h, linux/net.h, linux/netlink.h, linux/if.h), poll(2) (asm-generic/poll.h)

/** `AF_UNSPEC`. */
export const AF_UNSPEC = 0;
/** `AF_UNIX`. */
export const AF_UNIX = 1;
/** `AF_INET`. */
export const AF_INET = 2;
/** `AF_NETLINK`. */
export const AF_NETLINK = 16;
/** `AF_ALG`: the kernel crypto API's sockets. */
export const AF_ALG = 38;
/** `AF_VSOCK`: virtual machine sockets. */
export const AF_VSOCK = 40;
/** `SOCK_STREAM`. */
export const SOCK_STREAM = 1;
/** `SOCK_DGRAM`. */
export const SOCK_DGRAM = 2;
/** `SOCK_RAW`. */
export const SOCK_RAW = 3;
/** `SOCK_SEQPACKET`. */
export const SOCK_SEQPACKET = 5;
/** `SOCK_CLOEXEC`, or'ed into a socket's type (the value of `O_CLOEXEC`). */
export const SOCK_CLOEXEC = O_CLOEXEC;
/** `SOL_SOCKET`. */
export const SOL_SOCKET = 1;
/** `SCM_RIGHTS`: a control message carrying file descriptors. */
export const SCM_RIGHTS = 1;
/** `MSG_CTRUNC`: control data was cut short (fds were lost). */
export const MSG_CTRUNC = 0x8;
/** `MSG_DONTWAIT`: this call does not block. */
export const MSG_DONTWAIT = 0x40;
/** `MSG_NOSIGNAL`: no SIGPIPE when the other end is gone (EPIPE instead). */
export const MSG_NOSIGNAL = 0x4000;
/** `MSG_CMSG_CLOEXEC`: fds received with SCM_RIGHTS are close-on-exec. */
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** `NETLINK_ROUTE`: the rtnetlink protocol. */
export const NETLINK_ROUTE = 0;
/** `IFF_UP`: the interface is up. */
export const IFF_UP = 0x1;
/** `IFF_LOOPBACK`: a loopback interface. */
export const IFF_LOOPBACK = 0x8;
/** `IFF_RUNNING`: the interface's link is up. */
export const IFF_RUNNING = 0x40;
/** `POLLIN`: there is data to read. */
export const POLLIN = 0x1;
/** `POLLPRI`: exceptional condition (a mount table change, on /proc/self/mountinfo). */
export const POLLPRI = 0x2;
/** `POLLERR`: an error condition (with POLLPRI: a mount table change). */
export const POLLERR = 0x8;

// ---------------------------------------------------------------------------------------------
// ioctl(2) requests for terminals (asm-generic/ioctls.h; x86_64 and aarch64 agree)

/** `ioctl(fd, TIOCSCTTY, 0)`: make a terminal the session's controlling terminal. */
export const TIOCSCTTY = 0x540e;
/** `ioctl(fd, TIOCGWINSZ, struct winsize *)`. */
export const TIOCGWINSZ = 0x5413;
/** `ioctl(fd, TIOCSWINSZ, const struct winsize *)`: also signals SIGWINCH to the terminal's foreground group. */
export const TIOCSWINSZ = 0x5414;
/** `ioctl(master, TIOCSPTLCK, int *)`: lock (1) or unlock (0) a pty's slave (unlockpt). */
export const TIOCSPTLCK = 0x40045431;
/** `ioctl(master, TIOCGPTPEER, flags)` (Linux 4.13): opens the master's slave, no path involved. */
export const TIOCGPTPEER = 0x5441;
/** `ioctl(fd, FIONBIO, int *)`: set or clear O_NONBLOCK. */
export const FIONBIO = 0x5421;
/** `ioctl(fd, TIOCSTI, char *)`: push a character into a terminal's input (the attack `-t` defeats). */
export const TIOCSTI = 0x5412;

// ---------------------------------------------------------------------------------------------
// Other calls: close_range(2) (linux/close_range.h), seccomp(2) (linux/seccomp.h), madvise(2)
// (asm-generic/mman-common.h)

/** `CLOSE_RANGE_CLOEXEC`: mark the range close-on-exec instead of closing it. */
export const CLOSE_RANGE_CLOEXEC = 0x4;
/** `SECCOMP_SET_MODE_FILTER`: install a BPF filter. */
export const SECCOMP_SET_MODE_FILTER = 1;
/** `MADV_DOFORK`: undo MADV_DONTFORK, so a range is copied into a forked child again. */
export const MADV_DOFORK = 11;
