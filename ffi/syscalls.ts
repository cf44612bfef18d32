/**
 * Raw syscall numbers for the calls glibc has no wrapper for (or whose wrapper we avoid),
 * per architecture, read from the generated tables `ffi/_syscalls_*.ts` (one per ABI, from the
 * kernel's syscall.tbl; the seccomp filters and the native runner use the same tables).
 * @module
 */
import process from "node:process";
import { SYSCALLS_AARCH64 } from "./_syscalls_aarch64.ts";
import { SYSCALLS_X86_64 } from "./_syscalls_x86_64.ts";

/** Syscall numbers hako calls through `syscall(2)`. */
export interface SyscallNumbers {
  readonly clone: number;
  readonly pivot_root: number;
  readonly seccomp: number;
  readonly pidfd_open: number;
  readonly pidfd_send_signal: number;
  readonly close_range: number;
  readonly bpf: number;
  readonly mount_setattr: number;
  readonly open_tree: number;
  readonly move_mount: number;
  /** fsopen(2), fsconfig(2), fsmount(2) (Linux 5.2; glibc 2.36 was the first with wrappers). */
  readonly fsopen: number;
  readonly fsconfig: number;
  readonly fsmount: number;
  /** openat2(2), Linux 5.6; glibc has no wrapper. */
  readonly openat2: number;
  /** mknodat(2) (glibc 2.33 was the first to export `mknodat` itself). */
  readonly mknodat: number;
  /** statx(2) (called raw: one layout on every architecture, older glibcs lack the wrapper). */
  readonly statx: number;
  /** fcntl(2), called raw by the log relay's setup (ffi/log_relay.ts). */
  readonly fcntl: number;
  /** memfd_create(2), called raw by the log relay's setup (glibc 2.27 was the first with the wrapper). */
  readonly memfd_create: number;
  /** keyctl(2) (glibc has no wrapper: it is libkeyutils's). */
  readonly keyctl: number;
  /** eventfd2(2), for cgroup v1's memory.pressure_level notifications (ffi/pressure.ts). */
  readonly eventfd2: number;
}

/**
 * The numbers of {@link SyscallNumbers}' calls, taken from one of the generated tables (the kernel's
 * own syscall.tbl rows, see tools/gen_syscalls.ts), which the seccomp filters use too.
 */
function pick(table: Readonly<Record<string, number>>, abi: string): SyscallNumbers {
  const nr = (name: string): number => {
    const n = table[name];
    if (n === undefined) throw new Error(`the ${abi} syscall table has no ${name}`);
    return n;
  };
  return {
    clone: nr("clone"),
    pivot_root: nr("pivot_root"),
    seccomp: nr("seccomp"),
    pidfd_open: nr("pidfd_open"),
    pidfd_send_signal: nr("pidfd_send_signal"),
    close_range: nr("close_range"),
    bpf: nr("bpf"),
    mount_setattr: nr("mount_setattr"),
    open_tree: nr("open_tree"),
    move_mount: nr("move_mount"),
    fsopen: nr("fsopen"),
    fsconfig: nr("fsconfig"),
    fsmount: nr("fsmount"),
    openat2: nr("openat2"),
    mknodat: nr("mknodat"),
    statx: nr("statx"),
    fcntl: nr("fcntl"),
    memfd_create: nr("memfd_create"),
    keyctl: nr("keyctl"),
    eventfd2: nr("eventfd2"),
  };
}

/** The syscall numbers of the running architecture. */
export const SYS: SyscallNumbers = (() => {
  switch (process.arch) {
    case "x64":
      return pick(SYSCALLS_X86_64, "x86_64");
    case "arm64":
      return pick(SYSCALLS_AARCH64, "aarch64");
    default:
      throw new Error(`hako supports x86_64 and aarch64 Linux, not ${process.arch}`);
  }
})();

// (in a leaf module: constants.ts needs it without the tables above)
export { ARCH } from "./_arch.ts";
