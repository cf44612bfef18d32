/**
 * C struct layouts as named offsets, each checked at load time against the size the C headers
 * give on x86_64 and aarch64 (both LP64, little-endian, natural alignment), and the small
 * encoders/decoders the primitives above `ffi/` use. Nothing above `ffi/` knows an offset.
 *
 * @module
 */

/** The C field types the layouts use, with their size (= alignment on LP64). */
const C_SIZES = { u16: 2, i32: 4, u32: 4, i64: 8, u64: 8, long: 8, ulong: 8 } as const;

/** A C scalar type name. */
export type CType = keyof typeof C_SIZES;

/** A field: a scalar, or `[scalar, count]` for a fixed array. */
export type FieldSpec = CType | readonly [CType, number];

/** One field's place in a struct. */
export interface FieldLayout {
  /** Byte offset from the start of the struct. */
  readonly offset: number;
  /** Size in bytes (the whole array for an array field). */
  readonly size: number;
  /** The scalar type. */
  readonly type: CType;
}

/** A struct layout: its name, total size, alignment and each field's offset. */
export interface StructLayout<F extends string> {
  /** The C name, for messages (`"struct rlimit"`). */
  readonly name: string;
  /** `sizeof` the struct, padding included. */
  readonly size: number;
  /** The struct's alignment. */
  readonly align: number;
  /** Field name → layout. */
  readonly fields: { readonly [K in F]: FieldLayout };
}

/**
 * Lays out a struct with natural alignment and checks its size against `expectedSize` (the
 * `sizeof` from the C headers), so a wrong field list fails at load time, not in the kernel.
 *
 * @param name The C name, for the error message.
 * @param spec Field name → type, in declaration order.
 * @param expectedSize `sizeof` the struct on x86_64 and aarch64.
 * @returns The layout.
 * @throws {Error} When the computed size differs from `expectedSize`.
 */
export function defineStruct<const S extends Record<string, FieldSpec>>(
  name: string,
  spec: S,
  expectedSize: number,
): StructLayout<Extract<keyof S, string>> {
  let offset = 0;
  let align = 1;
  const fields: Record<string, FieldLayout> = {};
  for (const [field, f] of Object.entries(spec)) {
    const [type, count] = typeof f === "string" ? [f, 1] : f;
    const unit = C_SIZES[type];
    align = Math.max(align, unit);
    offset = Math.ceil(offset / unit) * unit;
    fields[field] = Object.freeze({ offset, size: unit * count, type });
    offset += unit * count;
  }
  const size = Math.ceil(offset / align) * align;
  if (size !== expectedSize) {
    throw new Error(`hako ffi: ${name} lays out as ${size} bytes, but the C headers say ${expectedSize}`);
  }
  return Object.freeze({ name, size, align, fields: Object.freeze(fields) }) as StructLayout<Extract<keyof S, string>>;
}

/** True on a little-endian machine (x86_64 and aarch64 Linux are). */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function assertSize(buf: Uint8Array, layout: StructLayout<string>, count = 1): void {
  if (buf.byteLength < layout.size * count) {
    throw new RangeError(`hako ffi: a ${layout.name} buffer needs ${layout.size * count} bytes, got ${buf.byteLength}`);
  }
}

// ---------------------------------------------------------------------------------------------
// capget/capset (linux/capability.h)

/** `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets as two 32-bit words. */
export const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
/** `_LINUX_CAPABILITY_U32S_3`: how many `cap_user_data` structs version 3 takes. */
export const LINUX_CAPABILITY_U32S_3 = 2;

/** `struct __user_cap_header_struct { __u32 version; int pid; }` */
export const CAP_USER_HEADER = defineStruct("struct __user_cap_header_struct", { version: "u32", pid: "i32" }, 8);

/** `struct __user_cap_data_struct { __u32 effective, permitted, inheritable; }` (two of them in v3). */
export const CAP_USER_DATA = defineStruct(
  "struct __user_cap_data_struct",
  { effective: "u32", permitted: "u32", inheritable: "u32" },
  12,
);

/** A thread's three capset-managed capability sets, as 64-bit masks (bit n = capability n). */
export interface CapSets {
  /** The effective set. */
  readonly effective: bigint;
  /** The permitted set. */
  readonly permitted: bigint;
  /** The inheritable set. */
  readonly inheritable: bigint;
}

/**
 * A capget/capset header for version 3.
 * @param pid The thread (0: the caller).
 */
export function capHeader(pid = 0): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(CAP_USER_HEADER.size);
  const v = view(buf);
  v.setUint32(CAP_USER_HEADER.fields.version.offset, LINUX_CAPABILITY_VERSION_3, LE);
  v.setInt32(CAP_USER_HEADER.fields.pid.offset, pid, LE);
  return buf;
}

/** The capability version the kernel wrote back into a header (after EINVAL it names the one it wants). */
export function capHeaderVersion(header: Uint8Array): number {
  assertSize(header, CAP_USER_HEADER);
  return view(header).getUint32(CAP_USER_HEADER.fields.version.offset, LE);
}

/** A zeroed `cap_user_data[2]` for capget to fill. */
export function capDataBuffer(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(CAP_USER_DATA.size * LINUX_CAPABILITY_U32S_3);
}

/** Decodes a `cap_user_data[2]` into 64-bit masks. */
export function decodeCapData(data: Uint8Array): CapSets {
  assertSize(data, CAP_USER_DATA, LINUX_CAPABILITY_U32S_3);
  const v = view(data);
  const read = (field: "effective" | "permitted" | "inheritable"): bigint => {
    const off = CAP_USER_DATA.fields[field].offset;
    const lo = BigInt(v.getUint32(off, LE));
    const hi = BigInt(v.getUint32(CAP_USER_DATA.size + off, LE));
    return (hi << 32n) | lo;
  };
  return { effective: read("effective"), permitted: read("permitted"), inheritable: read("inheritable") };
}

/** Encodes 64-bit masks into a `cap_user_data[2]` for capset. */
export function encodeCapData(sets: CapSets): Uint8Array<ArrayBuffer> {
  const data = capDataBuffer();
  const v = view(data);
  for (const field of ["effective", "permitted", "inheritable"] as const) {
    const off = CAP_USER_DATA.fields[field].offset;
    const mask = BigInt.asUintN(64, sets[field]);
    v.setUint32(off, Number(mask & 0xffff_ffffn), LE);
    v.setUint32(CAP_USER_DATA.size + off, Number(mask >> 32n), LE);
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// prlimit (sys/resource.h)

/** `struct rlimit { rlim_t rlim_cur; rlim_t rlim_max; }` (`rlim_t` is 64-bit on both architectures). */
export const RLIMIT = defineStruct("struct rlimit", { cur: "u64", max: "u64" }, 16);

/** `RLIM_INFINITY`: no limit. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/** Encodes a `struct rlimit`. */
export function encodeRlimit(cur: bigint, max: bigint): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(RLIMIT.size);
  const v = view(buf);
  v.setBigUint64(RLIMIT.fields.cur.offset, BigInt.asUintN(64, cur), LE);
  v.setBigUint64(RLIMIT.fields.max.offset, BigInt.asUintN(64, max), LE);
  return buf;
}

/** A zeroed `struct rlimit` for the kernel to fill. */
export function rlimitBuffer(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(RLIMIT.size);
}

/** Decodes a `struct rlimit`. */
export function decodeRlimit(buf: Uint8Array): { cur: bigint; max: bigint } {
  assertSize(buf, RLIMIT);
  const v = view(buf);
  return { cur: v.getBigUint64(RLIMIT.fields.cur.offset, LE), max: v.getBigUint64(RLIMIT.fields.max.offset, LE) };
}

// ---------------------------------------------------------------------------------------------
// statvfs (sys/statvfs.h, glibc's LP64 layout)

/**
 * glibc's `struct statvfs` on LP64: `unsigned long f_bsize, f_frsize; fsblkcnt_t f_blocks, f_bfree,
 * f_bavail; fsfilcnt_t f_files, f_ffree, f_favail; unsigned long f_fsid, f_flag, f_namemax;
 * int __f_spare[6];`
 */
export const STATVFS = defineStruct("struct statvfs", {
  bsize: "ulong",
  frsize: "ulong",
  blocks: "u64",
  bfree: "u64",
  bavail: "u64",
  files: "u64",
  ffree: "u64",
  favail: "u64",
  fsid: "ulong",
  flag: "ulong",
  namemax: "ulong",
  spare: ["i32", 6],
}, 112);

/** A zeroed `struct statvfs` for statvfs to fill. */
export function statvfsBuffer(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(STATVFS.size);
}

/** The `f_flag` word (`ST_*` bits) of a filled `struct statvfs`. */
export function statvfsFlags(buf: Uint8Array): number {
  assertSize(buf, STATVFS);
  return Number(view(buf).getBigUint64(STATVFS.fields.flag.offset, LE));
}

/** `MOUNT_ATTR_RDONLY`, for {@link encodeMountAttr} (re-exported from ffi/constants.ts). */
export { MOUNT_ATTR_RDONLY } from "./constants.ts";

/**
 * A `struct mount_attr` (32 bytes: `attr_set`, `attr_clr`, `propagation`, `userns_fd`, each u64)
 * for `mount_setattr(2)`.
 * @param set The `MOUNT_ATTR_*` flags to set.
 * @param clear The `MOUNT_ATTR_*` flags to clear.
 * @param usernsFd With `MOUNT_ATTR_IDMAP`: the user namespace whose maps the mount takes.
 * @returns The struct's bytes.
 */
export function encodeMountAttr(set: number, clear = 0, usernsFd = 0): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(set), true);
  v.setBigUint64(8, BigInt(clear), true);
  v.setBigUint64(24, BigInt(usernsFd), true);
  return b;
}
