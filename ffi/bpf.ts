/**
 * The `bpf(2)` system call, as far as a cgroup device program needs it: `struct bpf_insn` (one
 * eBPF instruction), the parts of `union bpf_attr` that `BPF_PROG_LOAD`, `BPF_PROG_ATTACH`,
 * `BPF_PROG_DETACH`, `BPF_PROG_QUERY` and `BPF_PROG_GET_FD_BY_ID` read, and the kernel constants
 * of `BPF_PROG_TYPE_CGROUP_DEVICE` (linux/bpf.h). The only place that knows their offsets or takes
 * a pointer to a program; programs themselves are built above (src/cgroup/devices.ts).
 *
 * @module
 */
import { addressOf, check, errno, libc } from "./libc.ts";
import { SyscallError } from "./errno.ts";
import { cstr, fromCstr } from "./cstring.ts";
import { defineStruct } from "./structs.ts";
import { SYS } from "./syscalls.ts";
import { ENOSPC } from "./constants.ts";

// ── kernel constants (include/uapi/linux/bpf.h) ───────────────────────────────────────────────

/** `enum bpf_cmd` values hako uses. */
export const BPF_CMD: {
  readonly PROG_LOAD: 5;
  readonly PROG_ATTACH: 8;
  readonly PROG_DETACH: 9;
  readonly PROG_GET_FD_BY_ID: 13;
  readonly PROG_QUERY: 16;
} = Object.freeze({ PROG_LOAD: 5, PROG_ATTACH: 8, PROG_DETACH: 9, PROG_GET_FD_BY_ID: 13, PROG_QUERY: 16 });

/** `BPF_PROG_TYPE_CGROUP_DEVICE` (`enum bpf_prog_type`). */
export const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
/** `BPF_CGROUP_DEVICE` (`enum bpf_attach_type`). */
export const BPF_CGROUP_DEVICE = 6;
/** `BPF_F_ALLOW_MULTI`: several programs on one cgroup, all of which must allow (runc attaches with it). */
export const BPF_F_ALLOW_MULTI = 2;

/** `BPF_DEVCG_ACC_*`: the access bits in the high 16 bits of `bpf_cgroup_dev_ctx.access_type`. */
export const BPF_DEVCG_ACC: { readonly MKNOD: 1; readonly READ: 2; readonly WRITE: 4 } = Object.freeze({
  MKNOD: 1,
  READ: 2,
  WRITE: 4,
});
/** `BPF_DEVCG_DEV_*`: the device type in the low 16 bits of `bpf_cgroup_dev_ctx.access_type`. */
export const BPF_DEVCG_DEV: { readonly BLOCK: 1; readonly CHAR: 2 } = Object.freeze({ BLOCK: 1, CHAR: 2 });

/**
 * `struct bpf_cgroup_dev_ctx { __u32 access_type; __u32 major; __u32 minor; }`: what a
 * `BPF_PROG_TYPE_CGROUP_DEVICE` program gets in r1, as byte offsets.
 */
export const BPF_CGROUP_DEV_CTX: { readonly accessType: 0; readonly major: 4; readonly minor: 8 } = Object.freeze({
  accessType: 0,
  major: 4,
  minor: 8,
});

/** `BPF_MAXINSNS`: the most instructions an unprivileged program may have (and more than hako needs). */
export const BPF_MAXINSNS = 4096;

// ── struct bpf_insn ────────────────────────────────────────────────────────────────────────────

/**
 * `struct bpf_insn { __u8 code; __u8 dst_reg:4, src_reg:4; __s16 off; __s32 imm; }` (8 bytes;
 * on little-endian machines the low nibble of byte 1 is dst_reg).
 */
export const BPF_INSN: {
  readonly name: string;
  readonly size: number;
  readonly fields: { readonly code: number; readonly regs: number; readonly off: number; readonly imm: number };
} = Object.freeze({
  name: "struct bpf_insn",
  size: 8,
  fields: Object.freeze({ code: 0, regs: 1, off: 2, imm: 4 }),
});

/** One eBPF instruction. */
export interface BpfInsn {
  /** The opcode (`BPF_LDX|BPF_W|BPF_MEM`…), u8. */
  readonly code: number;
  /** The destination register, 0..10. */
  readonly dst: number;
  /** The source register, 0..10. */
  readonly src: number;
  /** The signed 16-bit offset (jumps: instructions after the next one; loads: bytes). */
  readonly off: number;
  /** The signed 32-bit immediate (a u32 is accepted and stored as its bits). */
  readonly imm: number;
}

/**
 * Encodes instructions as an array of `struct bpf_insn`.
 * @throws {RangeError} When a field does not fit its C type.
 */
export function encodeBpfInsns(program: readonly BpfInsn[]): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(program.length * BPF_INSN.size);
  const v = new DataView(buf.buffer);
  program.forEach((ins, i) => {
    const int = (x: number, min: number, max: number) => Number.isInteger(x) && x >= min && x <= max;
    if (
      !int(ins.code, 0, 0xff) || !int(ins.dst, 0, 10) || !int(ins.src, 0, 10) || !int(ins.off, -0x8000, 0x7fff) ||
      !int(ins.imm, -0x8000_0000, 0xffff_ffff)
    ) {
      throw new RangeError(`hako ffi: eBPF instruction ${i} does not fit struct bpf_insn: ${JSON.stringify(ins)}`);
    }
    const at = i * BPF_INSN.size;
    v.setUint8(at + BPF_INSN.fields.code, ins.code);
    v.setUint8(at + BPF_INSN.fields.regs, ins.dst | (ins.src << 4));
    v.setInt16(at + BPF_INSN.fields.off, ins.off, true);
    v.setInt32(at + BPF_INSN.fields.imm, ins.imm | 0, true);
  });
  return buf;
}

/** Decodes an array of `struct bpf_insn` (for tests and dumps). */
export function decodeBpfInsns(buf: Uint8Array): BpfInsn[] {
  if (buf.byteLength % BPF_INSN.size !== 0) {
    throw new RangeError(`hako ffi: an eBPF program is a multiple of 8 bytes, got ${buf.byteLength}`);
  }
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: BpfInsn[] = [];
  for (let at = 0; at < buf.byteLength; at += BPF_INSN.size) {
    const regs = v.getUint8(at + BPF_INSN.fields.regs);
    out.push({
      code: v.getUint8(at + BPF_INSN.fields.code),
      dst: regs & 0xf,
      src: regs >> 4,
      off: v.getInt16(at + BPF_INSN.fields.off, true),
      imm: v.getInt32(at + BPF_INSN.fields.imm, true),
    });
  }
  return out;
}

// ── union bpf_attr, one struct per command ──────────────────────────────────────────────────────

/**
 * `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type` (the kernel takes a shorter
 * attr and zero-fills the rest): `__u32 prog_type, insn_cnt; __aligned_u64 insns, license;
 * __u32 log_level, log_size; __aligned_u64 log_buf; __u32 kern_version, prog_flags;
 * char prog_name[16]; __u32 prog_ifindex, expected_attach_type;`
 */
export const BPF_ATTR_PROG_LOAD = defineStruct("union bpf_attr (BPF_PROG_LOAD)", {
  progType: "u32",
  insnCnt: "u32",
  insns: "u64",
  license: "u64",
  logLevel: "u32",
  logSize: "u32",
  logBuf: "u64",
  kernVersion: "u32",
  progFlags: "u32",
  progName: ["u32", 4],
  progIfindex: "u32",
  expectedAttachType: "u32",
}, 72);

/**
 * `union bpf_attr` for `BPF_PROG_ATTACH`/`BPF_PROG_DETACH`: `__u32 target_fd, attach_bpf_fd,
 * attach_type, attach_flags, replace_bpf_fd;`
 */
export const BPF_ATTR_ATTACH = defineStruct("union bpf_attr (BPF_PROG_ATTACH)", {
  targetFd: "u32",
  attachBpfFd: "u32",
  attachType: "u32",
  attachFlags: "u32",
  replaceBpfFd: "u32",
}, 20);

/**
 * `union bpf_attr` for `BPF_PROG_QUERY`: `__u32 target_fd, attach_type, query_flags, attach_flags;
 * __aligned_u64 prog_ids; __u32 prog_cnt;` (padded to 8).
 */
export const BPF_ATTR_QUERY = defineStruct("union bpf_attr (BPF_PROG_QUERY)", {
  targetFd: "u32",
  attachType: "u32",
  queryFlags: "u32",
  attachFlags: "u32",
  progIds: "u64",
  progCnt: "u32",
}, 32);

/** `union bpf_attr` for `BPF_PROG_GET_FD_BY_ID`: `__u32 prog_id, next_id, open_flags;` */
export const BPF_ATTR_GET_ID = defineStruct("union bpf_attr (BPF_PROG_GET_FD_BY_ID)", {
  progId: "u32",
  nextId: "u32",
  openFlags: "u32",
}, 12);

/** `bpf(cmd, &attr, sizeof attr)`, returning the raw result (-1n on failure, errno still unread). */
function bpf(cmd: number, attr: Uint8Array): bigint {
  return libc().syscall(BigInt(SYS.bpf), BigInt(cmd), addressOf(attr), BigInt(attr.byteLength), 0n, 0n);
}

/** An attach type for messages. */
const attachName = (t: number) => t === BPF_CGROUP_DEVICE ? "BPF_CGROUP_DEVICE" : `attach_type ${t}`;

/** The last `max` characters of a verifier log (the reason is at its end). */
function logTail(log: string, max = 4000): string {
  const t = log.trim();
  return t.length <= max ? t : `…${t.slice(t.length - max)}`;
}

/** Options for {@link bpfProgLoad}. */
export interface ProgLoadOptions {
  /** `enum bpf_prog_type`, e.g. {@link BPF_PROG_TYPE_CGROUP_DEVICE}. */
  readonly type: number;
  /** The encoded instructions ({@link encodeBpfInsns}), 1..{@link BPF_MAXINSNS} of them. */
  readonly insns: Uint8Array;
  /**
   * The program's license string. Only GPL-only helpers care, and a device program calls no
   * helper at all; runc passes "Apache", hako passes its own ("MIT").
   */
  readonly license: string;
  /** A name shown by bpftool (at most 15 of `[A-Za-z0-9_.]`). */
  readonly name?: string;
}

/**
 * `bpf(BPF_PROG_LOAD)`: loads a program and returns its fd (close-on-exec; the caller closes it).
 * When the kernel refuses it, the load is repeated with a verifier log buffer and the log's end
 * is added to the error message.
 *
 * @param options The program.
 * @param context What hako was doing, for the error.
 * @returns The program fd.
 * @throws {SyscallError} `bpf("BPF_PROG_LOAD", …)` with the errno of the first attempt (EACCES or
 *   EINVAL: the verifier said no; EPERM: needs CAP_BPF/CAP_SYS_ADMIN), plus the verifier log.
 */
export function bpfProgLoad(options: ProgLoadOptions, context?: string): number {
  const count = options.insns.byteLength / BPF_INSN.size;
  if (!Number.isInteger(count) || count < 1 || count > BPF_MAXINSNS) {
    throw new RangeError(`hako ffi: an eBPF program has 1..${BPF_MAXINSNS} instructions, got ${count}`);
  }
  const name = options.name ?? "";
  if (!/^[A-Za-z0-9_.]{0,15}$/.test(name)) {
    throw new RangeError(`hako ffi: a BPF program name is at most 15 of [A-Za-z0-9_.], got ${JSON.stringify(name)}`);
  }
  const license = cstr(options.license);
  const F = BPF_ATTR_PROG_LOAD.fields;
  const attrFor = (log: Uint8Array | null): Uint8Array<ArrayBuffer> => {
    const attr = new Uint8Array(BPF_ATTR_PROG_LOAD.size);
    const v = new DataView(attr.buffer);
    v.setUint32(F.progType.offset, options.type, true);
    v.setUint32(F.insnCnt.offset, count, true);
    v.setBigUint64(F.insns.offset, addressOf(options.insns), true);
    v.setBigUint64(F.license.offset, addressOf(license), true);
    if (log) {
      v.setUint32(F.logLevel.offset, 1, true);
      v.setUint32(F.logSize.offset, log.byteLength, true);
      v.setBigUint64(F.logBuf.offset, addressOf(log), true);
    }
    attr.set(new TextEncoder().encode(name), F.progName.offset);
    return attr;
  };
  const args = [
    "BPF_PROG_LOAD",
    options.type === BPF_PROG_TYPE_CGROUP_DEVICE ? "BPF_PROG_TYPE_CGROUP_DEVICE" : `prog_type ${options.type}`,
    `${count} instructions`,
  ];
  // `options.insns`, `license` and `log` stay referenced (locals) until each call returns.
  const ret = bpf(BPF_CMD.PROG_LOAD, attrFor(null));
  if (ret !== -1n) return Number(ret);
  const first = errno();
  const log = new Uint8Array(256 * 1024);
  const again = bpf(BPF_CMD.PROG_LOAD, attrFor(log));
  if (again !== -1n) {
    // Loaded with a log where it failed without one (it should not happen): use it all the same.
    return Number(again);
  }
  const err = new SyscallError("bpf", first, args, context);
  const text = fromCstr(log);
  if (text.trim()) err.message += `\nverifier log:\n${logTail(text)}`;
  throw err;
}

/**
 * `bpf(BPF_PROG_ATTACH)`: attaches the program `progFd` to `targetFd` (a cgroup directory fd).
 * The attachment holds its own reference: the caller may close `progFd` afterwards.
 *
 * @throws {SyscallError} `bpf("BPF_PROG_ATTACH", …)` (EBADF: not a cgroup v2 directory; EPERM: needs root).
 */
export function bpfProgAttach(
  targetFd: number,
  progFd: number,
  attachType: number,
  flags: number,
  context?: string,
): void {
  const attr = new Uint8Array(BPF_ATTR_ATTACH.size);
  const v = new DataView(attr.buffer);
  const F = BPF_ATTR_ATTACH.fields;
  v.setUint32(F.targetFd.offset, targetFd, true);
  v.setUint32(F.attachBpfFd.offset, progFd, true);
  v.setUint32(F.attachType.offset, attachType, true);
  v.setUint32(F.attachFlags.offset, flags, true);
  check(bpf(BPF_CMD.PROG_ATTACH, attr), "bpf", [
    "BPF_PROG_ATTACH",
    attachName(attachType),
    flags === BPF_F_ALLOW_MULTI ? "BPF_F_ALLOW_MULTI" : `flags ${flags}`,
  ], context);
}

/**
 * `bpf(BPF_PROG_DETACH)`: detaches the program `progFd` from `targetFd`.
 *
 * @throws {SyscallError} `bpf("BPF_PROG_DETACH", …)` (ENOENT: it is not attached there).
 */
export function bpfProgDetach(targetFd: number, progFd: number, attachType: number, context?: string): void {
  const attr = new Uint8Array(BPF_ATTR_ATTACH.size);
  const v = new DataView(attr.buffer);
  const F = BPF_ATTR_ATTACH.fields;
  v.setUint32(F.targetFd.offset, targetFd, true);
  v.setUint32(F.attachBpfFd.offset, progFd, true);
  v.setUint32(F.attachType.offset, attachType, true);
  check(bpf(BPF_CMD.PROG_DETACH, attr), "bpf", ["BPF_PROG_DETACH", attachName(attachType)], context);
}

/**
 * `bpf(BPF_PROG_QUERY)`: the ids of the programs attached to `targetFd` itself (not inherited
 * from its ancestors), growing the id buffer while the kernel says ENOSPC.
 *
 * @returns The program ids, in attach order.
 * @throws {SyscallError} `bpf("BPF_PROG_QUERY", …)`.
 */
export function bpfProgQuery(targetFd: number, attachType: number, context?: string): number[] {
  const F = BPF_ATTR_QUERY.fields;
  let room = 16;
  for (;;) {
    const ids = new Uint32Array(room);
    const attr = new Uint8Array(BPF_ATTR_QUERY.size);
    const v = new DataView(attr.buffer);
    v.setUint32(F.targetFd.offset, targetFd, true);
    v.setUint32(F.attachType.offset, attachType, true);
    v.setBigUint64(F.progIds.offset, addressOf(new Uint8Array(ids.buffer)), true);
    v.setUint32(F.progCnt.offset, room, true);
    const ret = bpf(BPF_CMD.PROG_QUERY, attr);
    const e = ret === -1n ? errno() : 0;
    // The kernel writes the number of attached programs back, also when they did not fit (ENOSPC).
    const count = v.getUint32(F.progCnt.offset, true);
    if (ret === -1n) {
      if (e === ENOSPC && count > room && room < 1 << 16) {
        room = count;
        continue;
      }
      throw new SyscallError("bpf", e, ["BPF_PROG_QUERY", attachName(attachType)], context);
    }
    return [...ids.subarray(0, Math.min(count, room))];
  }
}

/**
 * `bpf(BPF_PROG_GET_FD_BY_ID)`: an fd for the loaded program `id` (the caller closes it).
 *
 * @throws {SyscallError} `bpf("BPF_PROG_GET_FD_BY_ID", …)` (ENOENT: no such program, e.g. freed).
 */
export function bpfProgGetFdById(id: number, context?: string): number {
  const attr = new Uint8Array(BPF_ATTR_GET_ID.size);
  new DataView(attr.buffer).setUint32(BPF_ATTR_GET_ID.fields.progId.offset, id, true);
  return check(bpf(BPF_CMD.PROG_GET_FD_BY_ID, attr), "bpf", ["BPF_PROG_GET_FD_BY_ID", id], context);
}
