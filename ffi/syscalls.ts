/**
 * Raw syscall numbers for the calls glibc has no wrapper for (or whose wrapper we avoid),
 * per architecture.
 * @module
 */
import process from "node:process";

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
}

const X86_64: SyscallNumbers = {
  clone: 56,
  pivot_root: 155,
  seccomp: 317,
  pidfd_open: 434,
  pidfd_send_signal: 424,
  close_range: 436,
  bpf: 321,
  mount_setattr: 442,
  open_tree: 428,
  move_mount: 429,
  openat2: 437,
  mknodat: 259,
  statx: 332,
  fcntl: 72,
  memfd_create: 319,
};
const AARCH64: SyscallNumbers = {
  clone: 220,
  pivot_root: 41,
  seccomp: 277,
  pidfd_open: 434,
  pidfd_send_signal: 424,
  close_range: 436,
  bpf: 280,
  mount_setattr: 442,
  open_tree: 428,
  move_mount: 429,
  openat2: 437,
  mknodat: 33,
  statx: 291,
  fcntl: 25,
  memfd_create: 279,
};

/** The syscall numbers of the running architecture. */
export const SYS: SyscallNumbers = (() => {
  switch (process.arch) {
    case "x64":
      return X86_64;
    case "arm64":
      return AARCH64;
    default:
      throw new Error(`hako supports x86_64 and aarch64 Linux, not ${process.arch}`);
  }
})();

/** The architecture name as the kernel and seccomp call it. */
export const ARCH: "x86_64" | "aarch64" = process.arch === "arm64" ? "aarch64" : "x86_64";
