/**
 * seccomp's two structs and the call that installs a filter: `struct sock_filter` (one classic BPF
 * instruction), `struct sock_fprog` (length + pointer to the instructions) and
 * `seccomp(SECCOMP_SET_MODE_FILTER, flags, &fprog)`. The only place that knows their offsets or
 * takes a pointer to a program.
 *
 * @module
 */
import { addressOf, check, libc } from "./libc.ts";
import { SYS } from "./syscalls.ts";
import { SECCOMP_SET_MODE_FILTER } from "./constants.ts";

/**
 * `struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }` (linux/filter.h): 8 bytes,
 * little-endian on x86_64 and aarch64.
 */
export const SOCK_FILTER: {
  readonly name: string;
  readonly size: number;
  readonly fields: { readonly code: number; readonly jt: number; readonly jf: number; readonly k: number };
} = Object.freeze({
  name: "struct sock_filter",
  size: 8,
  fields: Object.freeze({ code: 0, jt: 2, jf: 3, k: 4 }),
});

/**
 * `struct sock_fprog { unsigned short len; struct sock_filter *filter; }`: the pointer is aligned
 * to 8 on LP64, so 6 bytes of padding and 16 bytes in all.
 */
export const SOCK_FPROG: {
  readonly name: string;
  readonly size: number;
  readonly fields: { readonly len: number; readonly filter: number };
} = Object.freeze({
  name: "struct sock_fprog",
  size: 16,
  fields: Object.freeze({ len: 0, filter: 8 }),
});

/** `BPF_MAXINSNS`: the kernel refuses longer programs. */
export const BPF_MAXINSNS = 4096;

/** One classic BPF instruction. */
export interface SockFilter {
  /** The opcode (`BPF_LD|BPF_W|BPF_ABS`…), u16. */
  readonly code: number;
  /** Jump-if-true offset, u8. */
  readonly jt: number;
  /** Jump-if-false offset, u8. */
  readonly jf: number;
  /** The constant operand, u32. */
  readonly k: number;
}

/**
 * Encodes instructions as an array of `struct sock_filter`.
 * @throws {RangeError} When a field does not fit its C type.
 */
export function encodeSockFilters(program: readonly SockFilter[]): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(program.length * SOCK_FILTER.size);
  const v = new DataView(buf.buffer);
  program.forEach((ins, i) => {
    const fits = (x: number, max: number) => Number.isInteger(x) && x >= 0 && x <= max;
    if (!fits(ins.code, 0xffff) || !fits(ins.jt, 0xff) || !fits(ins.jf, 0xff) || !fits(ins.k >>> 0, 0xffff_ffff)) {
      throw new RangeError(`hako ffi: BPF instruction ${i} does not fit struct sock_filter: ${JSON.stringify(ins)}`);
    }
    const at = i * SOCK_FILTER.size;
    v.setUint16(at + SOCK_FILTER.fields.code, ins.code, true);
    v.setUint8(at + SOCK_FILTER.fields.jt, ins.jt);
    v.setUint8(at + SOCK_FILTER.fields.jf, ins.jf);
    v.setUint32(at + SOCK_FILTER.fields.k, ins.k >>> 0, true);
  });
  return buf;
}

/** Decodes an array of `struct sock_filter` (for tests and `hako plan`-style dumps). */
export function decodeSockFilters(buf: Uint8Array): SockFilter[] {
  if (buf.byteLength % SOCK_FILTER.size !== 0) {
    throw new RangeError(`hako ffi: a BPF program is a multiple of 8 bytes, got ${buf.byteLength}`);
  }
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: SockFilter[] = [];
  for (let at = 0; at < buf.byteLength; at += SOCK_FILTER.size) {
    out.push({
      code: v.getUint16(at + SOCK_FILTER.fields.code, true),
      jt: v.getUint8(at + SOCK_FILTER.fields.jt),
      jf: v.getUint8(at + SOCK_FILTER.fields.jf),
      k: v.getUint32(at + SOCK_FILTER.fields.k, true),
    });
  }
  return out;
}

/**
 * `seccomp(SECCOMP_SET_MODE_FILTER, flags, &fprog)`: installs `program` (encoded
 * `struct sock_filter`s) on the calling thread. The caller needs `no_new_privs` or CAP_SYS_ADMIN.
 *
 * @param program The encoded instructions (1..4096 of them).
 * @param flags `SECCOMP_FILTER_FLAG_*`.
 * @param context What hako was doing, for the error message.
 * @throws {SyscallError} When the kernel refuses (EACCES: neither no_new_privs nor CAP_SYS_ADMIN;
 *   EINVAL: a malformed program).
 */
export function seccompSetModeFilter(program: Uint8Array, flags = 0, context?: string): void {
  const len = program.byteLength / SOCK_FILTER.size;
  if (!Number.isInteger(len) || len < 1 || len > BPF_MAXINSNS) {
    throw new RangeError(`hako ffi: a BPF program has 1..${BPF_MAXINSNS} instructions, got ${len}`);
  }
  const fprog = new Uint8Array(SOCK_FPROG.size);
  const v = new DataView(fprog.buffer);
  v.setUint16(SOCK_FPROG.fields.len, len, true);
  v.setBigUint64(SOCK_FPROG.fields.filter, addressOf(program), true);
  // `program` and `fprog` stay referenced (locals) until the call returns.
  const ret = libc().syscall(
    BigInt(SYS.seccomp),
    BigInt(SECCOMP_SET_MODE_FILTER),
    BigInt(flags),
    addressOf(fprog),
    0n,
    0n,
  );
  check(ret, "seccomp", ["SECCOMP_SET_MODE_FILTER", flags, `${len} instructions`], context);
}
