/**
 * A small eBPF assembler: the few instructions a cgroup device program needs (32-bit loads from
 * the context, 32-bit ALU with an immediate or a register, compare-and-jump, exit) and a
 * disassembler for them, so tests and `hako plan` can show a program as text. Opcodes follow
 * include/uapi/linux/bpf.h and bpf_common.h (class | size | mode, or class | op | source).
 * @module
 */
import type { BpfInsn } from "../../ffi/bpf.ts";

const BPF_LDX = 0x01, BPF_ALU = 0x04, BPF_JMP = 0x05;
const BPF_W = 0x00, BPF_MEM = 0x60;
const BPF_K = 0x00, BPF_X = 0x08;
const BPF_AND = 0x50, BPF_RSH = 0x70, BPF_MOV = 0xb0;
const BPF_JEQ = 0x10, BPF_JNE = 0x50, BPF_EXIT = 0x90;

/** A register, r0..r10. */
export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;

/** `dst = *(u32 *)(src + off)` */
export const ldxw = (dst: Reg, src: Reg, off: number): BpfInsn => ({
  code: BPF_LDX | BPF_W | BPF_MEM,
  dst,
  src,
  off,
  imm: 0,
});
/** `w(dst) &= imm` (32-bit; the upper half of dst becomes 0) */
export const and32 = (dst: Reg, imm: number): BpfInsn => ({
  code: BPF_ALU | BPF_AND | BPF_K,
  dst,
  src: 0,
  off: 0,
  imm,
});
/** `w(dst) >>= imm` (32-bit, logical) */
export const rsh32 = (dst: Reg, imm: number): BpfInsn => ({
  code: BPF_ALU | BPF_RSH | BPF_K,
  dst,
  src: 0,
  off: 0,
  imm,
});
/** `w(dst) = imm` */
export const mov32 = (dst: Reg, imm: number): BpfInsn => ({
  code: BPF_ALU | BPF_MOV | BPF_K,
  dst,
  src: 0,
  off: 0,
  imm,
});
/** `w(dst) = w(src)` */
export const mov32Reg = (dst: Reg, src: Reg): BpfInsn => ({
  code: BPF_ALU | BPF_MOV | BPF_X,
  dst,
  src,
  off: 0,
  imm: 0,
});
/** `if dst != imm goto +off` (64-bit compare; imm is sign-extended, so keep it below 2^31) */
export const jneImm = (dst: Reg, imm: number, off: number): BpfInsn => ({
  code: BPF_JMP | BPF_JNE | BPF_K,
  dst,
  src: 0,
  off,
  imm,
});
/** `if dst != src goto +off` */
export const jneReg = (dst: Reg, src: Reg, off: number): BpfInsn => ({
  code: BPF_JMP | BPF_JNE | BPF_X,
  dst,
  src,
  off,
  imm: 0,
});
/** `if dst == imm goto +off` */
export const jeqImm = (dst: Reg, imm: number, off: number): BpfInsn => ({
  code: BPF_JMP | BPF_JEQ | BPF_K,
  dst,
  src: 0,
  off,
  imm,
});
/** `return r0` */
export const exit = (): BpfInsn => ({ code: BPF_JMP | BPF_EXIT, dst: 0, src: 0, off: 0, imm: 0 });

/** True for the jump instructions this assembler makes (their `off` is patched by the caller). */
export function isJump(ins: BpfInsn): boolean {
  return (ins.code & 0x07) === BPF_JMP && (ins.code & 0xf0) !== BPF_EXIT;
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/**
 * One line per instruction, in the style of the kernel's verifier log (`r2 = *(u32 *)(r1 +0)`),
 * with jump targets as absolute instruction numbers.
 *
 * @param program The instructions.
 * @returns The lines, `"NN: text"`.
 */
export function disassemble(program: readonly BpfInsn[]): string[] {
  const width = String(Math.max(program.length - 1, 0)).length;
  return program.map((ins, i) => {
    const r = (n: number) => `r${n}`, w = (n: number) => `w${n}`;
    const target = i + 1 + ins.off;
    let text: string;
    switch (ins.code) {
      case BPF_LDX | BPF_W | BPF_MEM:
        text = `${r(ins.dst)} = *(u32 *)(${r(ins.src)} ${ins.off < 0 ? "-" : "+"}${Math.abs(ins.off)})`;
        break;
      case BPF_ALU | BPF_AND | BPF_K:
        text = `${w(ins.dst)} &= ${hex(ins.imm)}`;
        break;
      case BPF_ALU | BPF_RSH | BPF_K:
        text = `${w(ins.dst)} >>= ${ins.imm}`;
        break;
      case BPF_ALU | BPF_MOV | BPF_K:
        text = `${w(ins.dst)} = ${ins.imm}`;
        break;
      case BPF_ALU | BPF_MOV | BPF_X:
        text = `${w(ins.dst)} = ${w(ins.src)}`;
        break;
      case BPF_JMP | BPF_JNE | BPF_K:
        text = `if ${r(ins.dst)} != ${ins.imm} goto ${target}`;
        break;
      case BPF_JMP | BPF_JNE | BPF_X:
        text = `if ${r(ins.dst)} != ${r(ins.src)} goto ${target}`;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        text = `if ${r(ins.dst)} == ${ins.imm} goto ${target}`;
        break;
      case BPF_JMP | BPF_EXIT:
        text = "exit";
        break;
      default:
        text = `(code ${hex(ins.code)} dst ${ins.dst} src ${ins.src} off ${ins.off} imm ${ins.imm})`;
    }
    return `${String(i).padStart(width, " ")}: ${text}`;
  });
}
