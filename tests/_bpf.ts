/**
 * A classic BPF interpreter for seccomp programs (tests only): runs a program over a
 * `struct seccomp_data` and returns the `SECCOMP_RET_*` value, so the decisions of two programs —
 * hako's and libseccomp's — can be compared without loading either.
 * @module
 */
import type { SockFilter } from "../ffi/seccomp.ts";

/** What the kernel hands a filter: `struct seccomp_data`. */
export interface SeccompData {
  /** The syscall number (x32 numbers carry 0x40000000). */
  readonly nr: number;
  /** `AUDIT_ARCH_*`. */
  readonly arch: number;
  /** The instruction pointer (default 0). */
  readonly ip?: bigint;
  /** The six arguments, unsigned 64-bit (missing ones are 0). */
  readonly args?: readonly bigint[];
}

/** `struct seccomp_data` as the bytes a filter loads from (little-endian). */
function dataBytes(d: SeccompData): DataView {
  const v = new DataView(new ArrayBuffer(64));
  v.setUint32(0, d.nr >>> 0, true);
  v.setUint32(4, d.arch >>> 0, true);
  v.setBigUint64(8, d.ip ?? 0n, true);
  for (let i = 0; i < 6; i++) v.setBigUint64(16 + 8 * i, BigInt.asUintN(64, d.args?.[i] ?? 0n), true);
  return v;
}

/**
 * Runs `program` over `data` as the kernel would (`BPF_LD|W|ABS`, `LD|IMM`, `LD|MEM`, `LDX`, `ST`,
 * `STX`, ALU, jumps, `RET`, `TAX`/`TXA`).
 * @returns The `SECCOMP_RET_*` value.
 * @throws {Error} On an instruction the kernel's seccomp checker would refuse, or running off the end.
 */
export function runBpf(program: readonly SockFilter[], data: SeccompData): number {
  const bytes = dataBytes(data);
  const mem = new Uint32Array(16);
  let A = 0, X = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const { code, jt, jf, k } = program[pc]!;
    const cls = code & 0x07;
    switch (cls) {
      case 0x00: // LD
      case 0x01: { // LDX
        const mode = code & 0xe0, size = code & 0x18;
        let v: number;
        if (mode === 0x20) { // ABS
          if (size !== 0x00 || k % 4 !== 0 || k + 4 > 64) throw new Error(`pc ${pc}: bad load at ${k}`);
          v = bytes.getUint32(k, true);
        } else if (mode === 0x00) v = k >>> 0; // IMM
        else if (mode === 0x60) v = mem[k]!; // MEM
        else if (mode === 0x80) v = 64; // LEN
        else throw new Error(`pc ${pc}: unsupported load mode ${code.toString(16)}`);
        if (cls === 0x00) A = v >>> 0;
        else X = v >>> 0;
        break;
      }
      case 0x02: // ST
        mem[k] = A;
        break;
      case 0x03: // STX
        mem[k] = X;
        break;
      case 0x04: { // ALU
        const src = (code & 0x08) ? X : k >>> 0;
        switch (code & 0xf0) {
          case 0x00:
            A = (A + src) >>> 0;
            break;
          case 0x10:
            A = (A - src) >>> 0;
            break;
          case 0x20:
            A = Number((BigInt(A) * BigInt(src)) & 0xffffffffn);
            break;
          case 0x30:
            if (src === 0) return 0;
            A = Math.floor(A / src) >>> 0;
            break;
          case 0x40:
            A = (A | src) >>> 0;
            break;
          case 0x50:
            A = (A & src) >>> 0;
            break;
          case 0x60:
            A = src >= 32 ? 0 : (A << src) >>> 0;
            break;
          case 0x70:
            A = src >= 32 ? 0 : A >>> src;
            break;
          case 0x80:
            A = (-A) >>> 0;
            break;
          case 0x90:
            if (src === 0) return 0;
            A = (A % src) >>> 0;
            break;
          case 0xa0:
            A = (A ^ src) >>> 0;
            break;
          default:
            throw new Error(`pc ${pc}: unsupported ALU op ${code.toString(16)}`);
        }
        break;
      }
      case 0x05: { // JMP
        const op = code & 0xf0;
        if (op === 0x00) {
          pc += k >>> 0;
          break;
        }
        const src = (code & 0x08) ? X : k >>> 0;
        let cond: boolean;
        if (op === 0x10) cond = A === src;
        else if (op === 0x20) cond = A > src;
        else if (op === 0x30) cond = A >= src;
        else if (op === 0x40) cond = (A & src) !== 0;
        else throw new Error(`pc ${pc}: unsupported jump ${code.toString(16)}`);
        pc += cond ? jt : jf;
        break;
      }
      case 0x06: // RET
        return ((code & 0x18) === 0x10 ? A : k) >>> 0;
      case 0x07: // MISC
        if ((code & 0xf8) === 0x00) X = A; // TAX
        else A = X; // TXA
        break;
    }
  }
  throw new Error("the program ran off its end");
}
