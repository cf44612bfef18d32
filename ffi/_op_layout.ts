/**
 * The one description of a syscall program's memory layout, shared by the TypeScript encoder
 * (ffi/spawn.ts's `SyscallProgram.build`) and the native runners (ffi/spawn_x86_64.S,
 * ffi/spawn_aarch64.S), which include the constants `tools/gen_op_layout.ts` generates from this
 * file (ffi/_op_layout.inc, checked in; tests/spawn_test.ts fails when the two differ). No offset
 * is written by hand anywhere else.
 *
 * A program: a header, then `count` ops of {@link OP_WORDS} u64 words each, then the encoder's
 * slots, data and the child's stack (which the runners never index).
 * @module
 */
import { MS_NOATIME, MS_NOSYMFOLLOW, MS_RELATIME, MS_STRICTATIME, ST_TO_MS } from "./constants.ts";

/** The header's u64 words, by byte offset. */
export const HEADER = {
  /** How many ops follow. */
  count: 0,
  /** The fd a failing op writes its record to (-1: none set). */
  reportFd: 8,
} as const;

/** The header's size in bytes (the first op's offset). */
export const HEADER_BYTES = 16;

/** An op's u64 words, by word index (byte offset: index × 8). */
export const OP_WORD = {
  /** The syscall number, or one of {@link SPECIAL_OP}. */
  nr: 0,
  /** Arguments 0…5 (words 1…6). */
  a0: 1,
  a1: 2,
  a2: 3,
  a3: 4,
  a4: 5,
  a5: 6,
  /** Where the result is stored (0: not stored). */
  store: 7,
  /** The result required ({@link ANY_RESULT}: any non-negative one). */
  expect: 8,
  /** Low 32 bits an errno, high 32 bits the op to go on at when the call fails with it. */
  onErrA: 9,
  /** A second such rule (errno 0: none). */
  onErrB: 10,
  /** Bit i ({@link INDIRECT_BITS}): argument i is the address of a u64 that holds its value. */
  indirect: 11,
} as const;

/** Words per op. */
export const OP_WORDS = 12;
/** Bytes per op. */
export const OP_BYTES = OP_WORDS * 8;
/** The `indirect` word's bit for argument i (i = 0…5). */
export const INDIRECT_BITS: readonly number[] = [1, 2, 4, 8, 16, 32];

/** The runner's own ops, in the `nr` word (negative: no syscall has such a number). */
export const SPECIAL_OP = {
  /** statfs(a0), then mount(NULL, a0, NULL, a1 | the MS_* flags the statfs reported). */
  remountReadonly: -2,
  /** Go on at op a0. */
  jump: -3,
  /** clone(a0 flags, a1 stack top): the child goes on at op a2; the parent stores its pid (u32) at a3 unless 0. */
  clone: -4,
} as const;

/** `expect`'s value for "any non-negative result". */
export const ANY_RESULT = -1;

/** The record a failing op writes: { u32 {@link ERR_MAGIC}, u32 op index, u32 errno }. */
export const REPORT = {
  magic: 0,
  op: 4,
  errno: 8,
  bytes: 12,
} as const;
/** "ERR!" as a little-endian u32. */
export const ERR_MAGIC = 0x21525245;
/** The exit status of a child whose op failed. */
export const FAILED_EXIT = 126;

/**
 * struct statfs as both runners' kernels write it (x86-64's and asm-generic's on aarch64 agree: 64-bit
 * words): its size rounded up to the stack's 16 bytes, and f_flags' offset.
 */
export const STATFS = { stackBytes: 128, fFlags: 80 } as const;

/** The `ST_*` bits that are also the `MS_*` bit of the same meaning (RDONLY NOSUID NODEV NOEXEC NOATIME NODIRATIME). */
export const ST_SAME_AS_MS: number = ST_TO_MS.filter(([st, ms]) => st === ms).reduce((m, [st]) => m | st, 0);
/** The `ST_*` bits whose `MS_*` flag differs, as [ST, MS] (RELATIME, NOSYMFOLLOW). */
export const ST_MAPPED: ReadonlyArray<readonly [number, number]> = ST_TO_MS.filter(([st, ms]) => st !== ms);
/** No MS_NOATIME nor MS_RELATIME among the flags: the remount asks for MS_STRICTATIME (what the kernel would report). */
export const MS_ATIME_ANY: number = MS_NOATIME | MS_RELATIME;
/** statvfs's ST_RELATIME bit (reported as MS_RELATIME). */
export const ST_RELATIME: number = stFor(MS_RELATIME);
/** statvfs's ST_NOSYMFOLLOW bit (reported as MS_NOSYMFOLLOW). */
export const ST_NOSYMFOLLOW: number = stFor(MS_NOSYMFOLLOW);
export { MS_NOSYMFOLLOW, MS_RELATIME, MS_STRICTATIME };

function stFor(ms: number): number {
  const row = ST_TO_MS.find(([, m]) => m === ms);
  if (!row) throw new Error(`hako ffi: ST_TO_MS has no row for MS flag 0x${ms.toString(16)}`);
  return row[0];
}

/**
 * The syscalls the runners make themselves (besides the program's own): their numbers per
 * architecture come from ffi/_syscalls_*.ts.
 */
export const RUNNER_SYSCALLS = ["write", "exit_group", "clone", "statfs", "mount"] as const;
