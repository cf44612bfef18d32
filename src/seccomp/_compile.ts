/**
 * The compiler behind `compileSeccomp`: resolves a profile's conditional rules, works out what
 * every syscall number of every ABI the filter covers gets, and writes the classic BPF program.
 *
 * Layout:
 *
 * ```text
 *   ld arch
 *   jeq AUDIT_native → native section      (the common case first)
 *   jeq AUDIT_compat → ja compat section   (x86 on x86_64, arm on aarch64, when covered)
 *   ret KILL_PROCESS                        (any other ABI)
 * native: ld nr
 *   [x86_64] nr ≥ __X32_SYSCALL_BIT → ja x32 section (covered) or ret KILL_PROCESS
 *   a binary search over number ranges, each ending in a `ret` or a jump to a shared block of
 *   argument checks; then those blocks
 * x32: …   compat: ld nr; …
 * ```
 *
 * Each ABI's numbers are split into ranges that share a decision (the allowed calls of a profile
 * like docker's fall into a few dozen runs), so a syscall costs a dozen comparisons rather than a
 * walk through hundreds of rules. Numbers above the ABI's table answer ENOSYS when the default
 * action refuses (runc's `patchbpf` stub does the same), so a newer kernel's syscalls add nothing
 * and a newer libc falls back as it would on an older kernel. Far jumps go through `ja` (32-bit
 * offsets); conditional jumps only ever skip one instruction or stay inside one rule's block of
 * argument checks (at most 32 checks, 6 instructions each), so the u8 offsets always hold.
 * @module
 */
import { release } from "node:os";
import type { SockFilter } from "../../ffi/seccomp.ts";
import { ABIS, ABIS_OF, X32_SYSCALL_BIT } from "./_tables.ts";
import type {
  SeccompAction,
  SeccompArch,
  SeccompArgRule,
  SeccompCondition,
  SeccompNativeArch,
  SeccompProfile,
  SeccompRule,
} from "./_types.ts";
import { ENOSYS, EPERM } from "../../ffi/constants.ts";

/** `SECCOMP_RET_*` action values. */
export const SECCOMP_RET: Readonly<
  Record<"KILL_PROCESS" | "KILL_THREAD" | "TRAP" | "ERRNO" | "LOG" | "ALLOW", number>
> = Object.freeze({
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
});

// linux/bpf_common.h
const BPF_LD_W_ABS = 0x00 | 0x00 | 0x20;
const BPF_ALU_AND_K = 0x04 | 0x50 | 0x00;
const BPF_JMP_JA = 0x05 | 0x00;
const BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00;
const BPF_JMP_JGT_K = 0x05 | 0x20 | 0x00;
const BPF_JMP_JGE_K = 0x05 | 0x30 | 0x00;
const BPF_RET_K = 0x06 | 0x00;

// struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
const DATA_NR = 0;
const DATA_ARCH = 4;
const dataArgLow = (i: number) => 16 + 8 * i; // little-endian: the low word comes first
const dataArgHigh = (i: number) => 16 + 8 * i + 4;

/** A jump target inside a rule's block: past the block (the rule fails). */
const FAIL = -1;

const ld = (k: number): SockFilter => ({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k });
const jmp = (code: number, k: number, jt: number, jf: number): SockFilter => ({ code, jt, jf, k: k >>> 0 });
const ret = (k: number): SockFilter => ({ code: BPF_RET_K, jt: 0, jf: 0, k: k >>> 0 });
const and = (k: number): SockFilter => ({ code: BPF_ALU_AND_K, jt: 0, jf: 0, k: k >>> 0 });

/** The `SECCOMP_RET_*` value of an action. */
export function actionValue(action: SeccompAction, errno: number | undefined): number {
  switch (action) {
    case "allow":
      return SECCOMP_RET.ALLOW;
    case "errno":
      return (SECCOMP_RET.ERRNO | ((errno ?? EPERM) & 0xffff)) >>> 0;
    case "kill":
      return SECCOMP_RET.KILL_THREAD;
    case "kill_process":
      return SECCOMP_RET.KILL_PROCESS;
    case "trap":
      return SECCOMP_RET.TRAP;
    case "log":
      return SECCOMP_RET.LOG;
  }
}

/** The checks for one argument comparison; a failing check jumps to FAIL, a holding one falls through. */
function argChecks(arg: SeccompArgRule): SockFilter[] {
  const v = BigInt.asUintN(64, BigInt(arg.value));
  const hi = Number(v >> 32n), lo = Number(v & 0xffff_ffffn);
  const H = ld(dataArgHigh(arg.index)), L = ld(dataArgLow(arg.index));
  const want = BigInt.asUintN(64, BigInt(arg.valueTwo ?? 0));
  if (arg.width === 32) {
    switch (arg.op) {
      case "eq":
        return [L, jmp(BPF_JMP_JEQ_K, lo, 0, FAIL)];
      case "ne":
        return [L, jmp(BPF_JMP_JEQ_K, lo, FAIL, 0)];
      case "gt":
        return [L, jmp(BPF_JMP_JGT_K, lo, 0, FAIL)];
      case "ge":
        return [L, jmp(BPF_JMP_JGE_K, lo, 0, FAIL)];
      case "lt":
        return [L, jmp(BPF_JMP_JGE_K, lo, FAIL, 0)];
      case "le":
        return [L, jmp(BPF_JMP_JGT_K, lo, FAIL, 0)];
      case "masked_eq":
        return [L, and(lo), jmp(BPF_JMP_JEQ_K, Number(want & 0xffff_ffffn), 0, FAIL)];
    }
  }
  switch (arg.op) {
    case "eq":
      return [H, jmp(BPF_JMP_JEQ_K, hi, 0, FAIL), L, jmp(BPF_JMP_JEQ_K, lo, 0, FAIL)];
    case "ne": // holds when either half differs
      return [H, jmp(BPF_JMP_JEQ_K, hi, 0, 2), L, jmp(BPF_JMP_JEQ_K, lo, FAIL, 0)];
    case "gt": // hi > H, or hi == H and lo > L
      return [H, jmp(BPF_JMP_JGT_K, hi, 3, 0), jmp(BPF_JMP_JEQ_K, hi, 0, FAIL), L, jmp(BPF_JMP_JGT_K, lo, 0, FAIL)];
    case "ge":
      return [H, jmp(BPF_JMP_JGT_K, hi, 3, 0), jmp(BPF_JMP_JEQ_K, hi, 0, FAIL), L, jmp(BPF_JMP_JGE_K, lo, 0, FAIL)];
    case "lt": // hi < H, or hi == H and lo < L
      return [H, jmp(BPF_JMP_JGT_K, hi, FAIL, 0), jmp(BPF_JMP_JEQ_K, hi, 0, 2), L, jmp(BPF_JMP_JGE_K, lo, FAIL, 0)];
    case "le":
      return [H, jmp(BPF_JMP_JGT_K, hi, FAIL, 0), jmp(BPF_JMP_JEQ_K, hi, 0, 2), L, jmp(BPF_JMP_JGT_K, lo, FAIL, 0)];
    case "masked_eq":
      return [
        H,
        and(hi),
        jmp(BPF_JMP_JEQ_K, Number(want >> 32n), 0, FAIL),
        L,
        and(lo),
        jmp(BPF_JMP_JEQ_K, Number(want & 0xffff_ffffn), 0, FAIL),
      ];
  }
}

/** FAIL means "the instruction after the block"; relative offsets count from the next instruction. */
function resolveFails(block: SockFilter[]): SockFilter[] {
  return block.map((ins, i) => {
    const to = (j: number) => (j === FAIL ? block.length - i - 1 : j);
    const out = { code: ins.code, jt: to(ins.jt), jf: to(ins.jf), k: ins.k };
    if (out.jt > 255 || out.jf > 255) throw new RangeError("hako seccomp: a rule's argument checks are too long");
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// Conditions

/** `[6, 18, 44]` from `"6.18.44-fc-v1147"`. */
export function parseKernelVersion(text: string): number[] | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? m.slice(1).filter((x) => x !== undefined).map(Number) : undefined;
}

/** True when `kernel` is at least `min` (both `major.minor[.patch]`). */
function kernelAtLeast(kernel: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    const a = kernel[i] ?? 0, b = min[i]!;
    if (a !== b) return a > b;
  }
  return true;
}

/** What a profile's conditions are resolved against. */
export interface Target {
  readonly arch: SeccompNativeArch;
  readonly capabilities: ReadonlySet<string>;
  readonly kernel: readonly number[];
}

/** The target from compile options (capabilities upper-cased with their `CAP_` prefix). */
export function targetOf(
  arch: SeccompNativeArch,
  capabilities: readonly string[] = [],
  kernel: string = release(),
): Target {
  const cap = (c: string) => (c.toUpperCase().startsWith("CAP_") ? c.toUpperCase() : `CAP_${c.toUpperCase()}`);
  return { arch, capabilities: new Set(capabilities.map(cap)), kernel: parseKernelVersion(kernel) ?? [0] };
}

/** Docker's reading: includes needs every condition, excludes drops the rule on any one. */
function ruleApplies(rule: SeccompRule, t: Target): boolean {
  const inc: SeccompCondition = rule.includes ?? {}, exc: SeccompCondition = rule.excludes ?? {};
  const minOk = (v: string | undefined) => v !== undefined && kernelAtLeast(t.kernel, parseKernelVersion(v) ?? [0]);
  if (exc.arches?.includes(t.arch)) return false;
  if (exc.caps?.some((c) => t.capabilities.has(c))) return false;
  if (exc.minKernel !== undefined && minOk(exc.minKernel)) return false;
  if (inc.arches && inc.arches.length > 0 && !inc.arches.includes(t.arch)) return false;
  if (inc.caps && !inc.caps.every((c) => t.capabilities.has(c))) return false;
  if (inc.minKernel !== undefined && !minOk(inc.minKernel)) return false;
  return true;
}

/** The indices of the rules that apply for `t`. */
export function activeRules(profile: SeccompProfile, t: Target): number[] {
  return profile.syscalls.flatMap((rule, i) => (ruleApplies(rule, t) ? [i] : []));
}

/** The ABIs a filter for `arch` covers: the native one, and the compat ones the profile lists. */
export function coveredAbis(profile: SeccompProfile, arch: SeccompNativeArch): SeccompArch[] {
  const [native, ...compat] = ABIS_OF[arch];
  return [native!, ...compat.filter((a) => profile.architectures?.includes(a))];
}

// ---------------------------------------------------------------------------------------------
// Decisions per number

/** One rule as it applies to one syscall: argument checks, then the action's return value. */
interface Block {
  readonly args: readonly SeccompArgRule[];
  readonly k: number;
}

/** What a range of numbers gets: a plain `ret`, or a chain of rule blocks ending in `fallback`. */
type Leaf = { readonly ret: number } | Chain;
/** Rule blocks tried in order, then `fallback` when none matched. */
interface Chain {
  readonly blocks: readonly Block[];
  readonly fallback: number;
}

const leafKey = (leaf: Leaf) =>
  "ret" in leaf ? `r${leaf.ret}` : `c${JSON.stringify(leaf, (_, v) => (typeof v === "bigint" ? `${v}n` : v))}`;

/** A range of numbers starting at `lo` (up to the next segment's `lo`) and its leaf. */
interface Segment {
  readonly lo: number;
  readonly leaf: Leaf;
  readonly key: string;
}

/**
 * The decisions of one ABI over `[lo, hi]`: one segment per run of numbers that share a leaf.
 * Numbers above the ABI's table answer `above` (ENOSYS, or the default for permissive profiles).
 */
function segments(
  abi: SeccompArch,
  rules: readonly SeccompRule[],
  deflt: number,
  above: number,
  lo: number,
  hi: number,
): Segment[] {
  const info = ABIS[abi];
  const chains = new Map<number, Block[]>();
  for (const rule of rules) {
    const k = actionValue(rule.action, rule.errno);
    // On a 32-bit ABI only the low half of an argument (and of the operand) is compared.
    const args = info.argBits === 32 ? (rule.args ?? []).map((a) => ({ ...a, width: 32 as const })) : rule.args ?? [];
    for (const name of rule.names) {
      if (!Object.hasOwn(info.table, name)) continue; // a name this ABI lacks
      const nr = info.table[name]! + info.bit;
      const chain = chains.get(nr) ?? [];
      if (chain.at(-1)?.args.length === 0) continue; // an earlier rule already decides every call
      chain.push({ args, k });
      chains.set(nr, chain);
    }
  }
  const known = new Set(Object.values(info.table).map((n) => n + info.bit));
  const top = info.max + info.bit;
  const leafAt = (n: number): Leaf => {
    const chain = chains.get(n);
    if (chain) {
      const first = chain[0]!;
      if (first.args.length === 0) return { ret: first.k };
      return { blocks: chain, fallback: deflt };
    }
    return { ret: n > top && !known.has(n) ? above : deflt };
  };
  const bounds = new Set<number>([lo]);
  for (const n of known) {
    if (n >= lo && n <= hi) bounds.add(n);
    if (n + 1 >= lo && n + 1 <= hi) bounds.add(n + 1);
  }
  if (top + 1 >= lo && top + 1 <= hi) bounds.add(top + 1);
  const out: Segment[] = [];
  for (const b of [...bounds].sort((a, b) => a - b)) {
    const leaf = leafAt(b);
    const key = leafKey(leaf);
    if (out.at(-1)?.key !== key) out.push({ lo: b, leaf, key });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The assembler

/** Instructions, labels, and `ja` to a label (resolved once every position is known). */
class Program {
  readonly #items: Array<SockFilter | { label: string } | { ja: string }> = [];
  #next = 0;

  newLabel(): string {
    return `L${this.#next++}`;
  }
  label(name: string): void {
    this.#items.push({ label: name });
  }
  emit(...ins: SockFilter[]): void {
    this.#items.push(...ins);
  }
  ja(label: string): void {
    this.#items.push({ ja: label });
  }
  resolve(): SockFilter[] {
    const at = new Map<string, number>();
    let pc = 0;
    for (const item of this.#items) {
      if ("label" in item) at.set(item.label, pc);
      else pc++;
    }
    const out: SockFilter[] = [];
    for (const item of this.#items) {
      if ("label" in item) continue;
      if ("ja" in item) {
        const to = at.get(item.ja);
        if (to === undefined || to <= out.length) throw new Error(`hako seccomp: bad jump to ${item.ja}`);
        out.push({ code: BPF_JMP_JA, jt: 0, jf: 0, k: to - out.length - 1 });
      } else out.push(item);
    }
    return out;
  }
}

/** A binary search over `segs` (A holds the number), then the chains its leaves jump to. */
function emitSection(p: Program, segs: readonly Segment[]): void {
  const chains = new Map<string, { label: string; leaf: Chain }>();
  const leaf = (s: Segment) => {
    if ("ret" in s.leaf) return p.emit(ret(s.leaf.ret));
    let chain = chains.get(s.key);
    if (!chain) chains.set(s.key, chain = { label: p.newLabel(), leaf: s.leaf });
    p.ja(chain.label);
  };
  const isRet = (s: Segment) => "ret" in s.leaf;
  const tree = (i: number, j: number): void => {
    if (i === j) return leaf(segs[i]!);
    const m = (i + j + 1) >> 1; // the first segment of the upper half
    const k = segs[m]!.lo;
    if (m === j && isRet(segs[j]!)) {
      p.emit(jmp(BPF_JMP_JGE_K, k, 0, 1));
      leaf(segs[j]!);
      return tree(i, m - 1);
    }
    if (i === m - 1 && isRet(segs[i]!)) {
      p.emit(jmp(BPF_JMP_JGE_K, k, 1, 0));
      leaf(segs[i]!);
      return tree(m, j);
    }
    const upper = p.newLabel();
    p.emit(jmp(BPF_JMP_JGE_K, k, 0, 1));
    p.ja(upper);
    tree(i, m - 1);
    p.label(upper);
    tree(m, j);
  };
  tree(0, segs.length - 1);
  for (const { label, leaf } of chains.values()) {
    p.label(label);
    for (const block of leaf.blocks) {
      if (block.args.length === 0) {
        p.emit(ret(block.k));
        break;
      }
      p.emit(...resolveFails([...block.args.flatMap(argChecks), ret(block.k)]));
    }
    if (leaf.blocks.every((b) => b.args.length > 0)) p.emit(ret(leaf.fallback));
  }
}

/**
 * The program for `profile` on `t.arch`, with only the rules at `active` (see {@link activeRules}).
 * @throws {RangeError} When the program exceeds the kernel's 4096 instructions.
 */
export function assemble(profile: SeccompProfile, arch: SeccompNativeArch, active: readonly number[]): SockFilter[] {
  const rules = active.map((i) => profile.syscalls[i]!);
  const deflt = actionValue(profile.defaultAction, profile.defaultErrno);
  // runc's patchbpf: no -ENOSYS stub when the default lets calls through anyway.
  const above = profile.defaultAction === "allow" || profile.defaultAction === "log"
    ? deflt
    : actionValue("errno", ENOSYS);
  const abis = coveredAbis(profile, arch);
  const [native, ...compat] = abis as [SeccompArch, ...SeccompArch[]];
  const others = compat.filter((a) => a !== "x32"); // x32 shares x86_64's AUDIT_ARCH
  const p = new Program();
  const labels = new Map(others.map((a) => [a, p.newLabel()]));
  p.emit(ld(DATA_ARCH), jmp(BPF_JMP_JEQ_K, ABIS[native].audit, 2 * others.length + 1, 0));
  for (const a of others) {
    p.emit(jmp(BPF_JMP_JEQ_K, ABIS[a].audit, 0, 1));
    p.ja(labels.get(a)!);
  }
  p.emit(ret(SECCOMP_RET.KILL_PROCESS), ld(DATA_NR));
  if (native === "x86_64") {
    const x32 = abis.includes("x32");
    const x32Label = p.newLabel();
    p.emit(jmp(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1));
    if (x32) p.ja(x32Label);
    else p.emit(ret(SECCOMP_RET.KILL_PROCESS));
    emitSection(p, segments("x86_64", rules, deflt, above, 0, X32_SYSCALL_BIT - 1));
    if (x32) {
      p.label(x32Label);
      emitSection(p, segments("x32", rules, deflt, above, X32_SYSCALL_BIT, 0xffffffff));
    }
  } else {
    emitSection(p, segments(native, rules, deflt, above, 0, 0xffffffff));
  }
  for (const a of others) {
    p.label(labels.get(a)!);
    p.emit(ld(DATA_NR));
    emitSection(p, segments(a, rules, deflt, above, 0, 0xffffffff));
  }
  const out = p.resolve();
  if (out.length > 4096) {
    throw new RangeError(`hako seccomp: the program has ${out.length} instructions; the kernel takes at most 4096`);
  }
  return out;
}
