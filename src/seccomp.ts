/**
 * seccomp filters, compiled in TypeScript to classic BPF for x86_64 and aarch64: a profile is a
 * plain object (a default action and rules over syscall names, optionally over their arguments),
 * {@link compileSeccomp} turns it into the program the kernel runs on every system call, and
 * {@link loadSeccomp} installs it on the calling thread (in a forked child, before exec).
 *
 * The program first checks `seccomp_data.arch` (another ABI — i386 through `int 0x80`, or x32 on
 * x86_64 — kills the process, so a denylist cannot be dodged by switching ABI), then tries the
 * rules in order: the first rule that names the syscall and whose argument checks all hold
 * decides; otherwise the default action does.
 *
 * @example Refuse mkdir with EPERM in a child, then exec
 * ```ts ignore
 * import { Capability, Process } from "./mod.ts";
 * import { loadSeccomp } from "./src/seccomp.ts";
 * const pid = Process.fork(() => {
 *   Capability.noNewPrivs();
 *   loadSeccomp({ defaultAction: "allow", syscalls: [{ names: ["mkdir", "mkdirat"], action: "errno", errno: 1 }] });
 *   Process.exec("/bin/mkdir", "/tmp/refused");
 * });
 * Process.waitpid2(pid); // mkdir: can't create directory '/tmp/refused': Operation not permitted
 * ```
 * @module
 */
import { decodeSockFilters, encodeSockFilters, seccompSetModeFilter, type SockFilter } from "../ffi/seccomp.ts";
export type { SockFilter };
import { ARCH } from "../ffi/syscalls.ts";
import { ConfigError } from "./errors.ts";
import { SYSCALLS_AARCH64 } from "./seccomp/_syscalls_aarch64.ts";
import { SYSCALLS_X86_64 } from "./seccomp/_syscalls_x86_64.ts";

/** An architecture a filter can be compiled for. */
export type SeccompArch = "x86_64" | "aarch64";

/**
 * What the kernel does with a system call: `"kill"` kills the calling thread
 * (`SECCOMP_RET_KILL_THREAD`, libseccomp's `SCMP_ACT_KILL`), `"kill_process"` the whole process.
 */
export type SeccompAction = "allow" | "errno" | "kill" | "kill_process" | "trap" | "log";

/** A comparison of one syscall argument (as the kernel sees it: an unsigned 64-bit register). */
export interface SeccompArgRule {
  /** The argument, 0..5. */
  readonly index: number;
  /**
   * The comparison, unsigned over 64 bits. `masked_eq` is `(arg & value) === valueTwo`
   * (libseccomp's `SCMP_CMP_MASKED_EQ`).
   */
  readonly op: "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "masked_eq";
  /** The operand (the mask for `masked_eq`); a negative number means its 64-bit two's complement. */
  readonly value: number | bigint;
  /** For `masked_eq`: the value the masked argument must equal (default 0). */
  readonly valueTwo?: number | bigint;
}

/** One rule: the syscalls it names, the action, and argument checks that must all hold. */
export interface SeccompRule {
  /** Syscall names as the kernel spells them on the arch (`"mkdirat"`, `"_sysctl"`). */
  readonly names: readonly string[];
  /** What happens when the rule matches. */
  readonly action: SeccompAction;
  /** For `action: "errno"`: the errno returned (default 1, EPERM). */
  readonly errno?: number;
  /** Argument checks (at most 32), all of which must hold for the rule to match (none: every call matches). */
  readonly args?: readonly SeccompArgRule[];
}

/** A seccomp profile. Rules are tried in order; the first one that matches decides. */
export interface SeccompProfile {
  /** What happens to a syscall no rule matches. */
  readonly defaultAction: "allow" | "errno" | "kill" | "trap" | "log";
  /** For `defaultAction: "errno"`: the errno returned (default 1, EPERM). */
  readonly defaultErrno?: number;
  /** The rules, tried in order. */
  readonly syscalls: readonly SeccompRule[];
  /**
   * What a name the arch lacks means: `"error"` (default) rejects the profile; `"skip"` drops the
   * name (for profiles written for both arches, like {@link DEFAULT_SECCOMP_PROFILE}).
   */
  readonly unknownSyscalls?: "error" | "skip";
}

const TABLES: Readonly<Record<SeccompArch, Readonly<Record<string, number>>>> = {
  x86_64: SYSCALLS_X86_64,
  aarch64: SYSCALLS_AARCH64,
};

/**
 * A syscall's number on an architecture.
 *
 * @example
 * ```ts
 * import { syscallNumber } from "./seccomp.ts";
 * console.assert(syscallNumber("mkdirat", "x86_64") === 258);
 * console.assert(syscallNumber("mkdirat", "aarch64") === 34);
 * console.assert(syscallNumber("mkdir", "aarch64") === undefined); // asm-generic has only mkdirat
 * ```
 * @param name The name as the kernel spells it (`"clone3"`, `"_sysctl"`).
 * @param arch The architecture (default: the running one).
 * @returns The number, or undefined when the arch has no such syscall.
 */
export function syscallNumber(name: string, arch: SeccompArch = ARCH): number | undefined {
  const table = TABLES[arch];
  return Object.hasOwn(table, name) ? table[name] : undefined;
}

// ---------------------------------------------------------------------------------------------
// The default profile

const EPERM = 1;
const ENOSYS = 38;

/** `CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET`. */
const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 |
  0x40000000;

/**
 * The default profile: docker's notable refusals, as a denylist answering EPERM.
 *
 * Docker's own profile is an allowlist (everything not listed fails); this one allows every
 * syscall except: kernel modules and kexec, reboot, swap, clocks, keyrings, BPF and perf, ptrace
 * and cross-process memory access, NUMA policy, mounting and the new mount API, namespaces
 * (`unshare`, `setns`, and `clone` with any `CLONE_NEW*` flag — plain `clone`/`fork` work),
 * handle-based opens, userfaultfd, quotas, obsolete calls (`_sysctl`, `uselib`, `ustat`, `sysfs`,
 * `vm86`…), and `personality` other than the values docker allows. `clone3` answers ENOSYS, so
 * libc falls back to `clone`, whose flags a filter can see (clone3 passes them in memory). Names
 * an arch lacks are skipped.
 */
export const DEFAULT_SECCOMP_PROFILE: SeccompProfile = Object.freeze({
  defaultAction: "allow",
  unknownSyscalls: "skip",
  syscalls: Object.freeze([
    Object.freeze({
      names: Object.freeze([
        "acct",
        "add_key",
        "bpf",
        "clock_adjtime",
        "clock_settime",
        "create_module",
        "delete_module",
        "finit_module",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "get_kernel_syms",
        "get_mempolicy",
        "init_module",
        "ioperm",
        "iopl",
        "kcmp",
        "kexec_file_load",
        "kexec_load",
        "keyctl",
        "lookup_dcookie",
        "mbind",
        "mount",
        "mount_setattr",
        "move_mount",
        "move_pages",
        "name_to_handle_at",
        "nfsservctl",
        "open_by_handle_at",
        "open_tree",
        "perf_event_open",
        "pivot_root",
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
        "query_module",
        "quotactl",
        "quotactl_fd",
        "reboot",
        "request_key",
        "set_mempolicy",
        "setns",
        "settimeofday",
        "stime",
        "swapoff",
        "swapon",
        "sysfs",
        "_sysctl",
        "umount",
        "umount2",
        "unshare",
        "uselib",
        "userfaultfd",
        "ustat",
        "vm86",
        "vm86old",
      ]),
      action: "errno",
      errno: EPERM,
    }),
    // docker allows personality(PER_LINUX), (PER_LINUX32), (UNAME26), (UNAME26|PER_LINUX32) and the query.
    Object.freeze({
      names: Object.freeze(["personality"]),
      action: "errno",
      errno: EPERM,
      args: Object.freeze(
        [0x0, 0x8, 0x20000, 0x20008, 0xffffffff].map((value) => Object.freeze({ index: 0, op: "ne", value })),
      ),
    }),
    Object.freeze({
      names: Object.freeze(["clone"]),
      action: "allow",
      args: Object.freeze([Object.freeze({ index: 0, op: "masked_eq", value: CLONE_NAMESPACE_FLAGS, valueTwo: 0 })]),
    }),
    Object.freeze({ names: Object.freeze(["clone"]), action: "errno", errno: EPERM }),
    Object.freeze({ names: Object.freeze(["clone3"]), action: "errno", errno: ENOSYS }),
  ]),
}) as SeccompProfile;

// ---------------------------------------------------------------------------------------------
// Validation

/** One problem in a profile, with its field path (`seccomp.syscalls[2].names[0]`). */
export interface SeccompProblem {
  /** The field path. */
  readonly path: string;
  /** What is wrong. */
  readonly message: string;
}

const DEFAULT_ACTIONS = ["allow", "errno", "kill", "trap", "log"];
const ACTIONS = ["allow", "errno", "kill", "kill_process", "trap", "log"];
/** Keeps a rule's block under 256 instructions, the reach of a conditional jump. */
const MAX_ARG_CHECKS = 32;
const OPS = ["eq", "ne", "lt", "le", "gt", "ge", "masked_eq"];

function isInteger(x: unknown): x is number | bigint {
  return typeof x === "bigint" || (typeof x === "number" && Number.isSafeInteger(x));
}

/**
 * Every problem in a profile, each with its field path; empty when it is valid.
 *
 * @param profile The profile.
 * @param arch The architecture its names must exist on (default: the running one).
 * @param path The field path of the profile itself (default `"seccomp"`).
 * @returns The problems, in order.
 */
export function seccompProblems(profile: SeccompProfile, arch: SeccompArch = ARCH, path = "seccomp"): SeccompProblem[] {
  const problems: SeccompProblem[] = [];
  const bad = (p: string, message: string) => problems.push({ path: p, message });
  const errnoOk = (p: string, e: unknown) =>
    e !== undefined && (!Number.isInteger(e) || (e as number) < 0 || (e as number) > 4095) &&
    bad(p, "must be an errno number in 0..4095");
  if (profile === null || typeof profile !== "object") {
    bad(path, 'must be false, "default" or a profile { defaultAction, syscalls }');
    return problems;
  }
  if (!(TABLES as Record<string, unknown>)[arch]) bad(path, `unknown architecture ${JSON.stringify(arch)}`);
  if (!DEFAULT_ACTIONS.includes(profile.defaultAction)) {
    bad(
      `${path}.defaultAction`,
      `must be one of ${DEFAULT_ACTIONS.join(", ")}, got ${JSON.stringify(profile.defaultAction)}`,
    );
  }
  errnoOk(`${path}.defaultErrno`, profile.defaultErrno);
  if (profile.unknownSyscalls !== undefined && !["error", "skip"].includes(profile.unknownSyscalls)) {
    bad(`${path}.unknownSyscalls`, 'must be "error" or "skip"');
  }
  if (!Array.isArray(profile.syscalls)) {
    bad(`${path}.syscalls`, "must be an array of rules");
    return problems;
  }
  profile.syscalls.forEach((rule, i) => {
    const at = `${path}.syscalls[${i}]`;
    if (rule === null || typeof rule !== "object") return bad(at, "must be a rule { names, action }");
    if (!Array.isArray(rule.names) || rule.names.length === 0) {
      bad(`${at}.names`, "must be a non-empty array of syscall names");
    } else {
      (rule.names as readonly unknown[]).forEach((name, j) => {
        if (typeof name !== "string") bad(`${at}.names[${j}]`, "must be a string");
        else if (profile.unknownSyscalls !== "skip" && TABLES[arch] && syscallNumber(name, arch) === undefined) {
          bad(`${at}.names[${j}]`, `unknown syscall ${JSON.stringify(name)} on ${arch}`);
        }
      });
    }
    if (!ACTIONS.includes(rule.action)) {
      bad(`${at}.action`, `must be one of ${ACTIONS.join(", ")}, got ${JSON.stringify(rule.action)}`);
    }
    errnoOk(`${at}.errno`, rule.errno);
    if (rule.args !== undefined && !Array.isArray(rule.args)) bad(`${at}.args`, "must be an array");
    else if ((rule.args?.length ?? 0) > MAX_ARG_CHECKS) bad(`${at}.args`, `must hold at most ${MAX_ARG_CHECKS} checks`);
    (Array.isArray(rule.args) ? rule.args as readonly SeccompArgRule[] : []).forEach((arg, k) => {
      const a = `${at}.args[${k}]`;
      if (arg === null || typeof arg !== "object") return bad(a, "must be { index, op, value }");
      if (!Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) bad(`${a}.index`, "must be 0..5");
      if (!OPS.includes(arg.op)) bad(`${a}.op`, `must be one of ${OPS.join(", ")}, got ${JSON.stringify(arg.op)}`);
      for (const key of ["value", "valueTwo"] as const) {
        const v = arg[key];
        if (key === "value" || v !== undefined) {
          if (!isInteger(v)) bad(`${a}.${key}`, "must be an integer (number or bigint)");
          else if (BigInt(v) < -(1n << 63n) || BigInt(v) >= 1n << 64n) bad(`${a}.${key}`, "must fit in 64 bits");
        }
      }
    });
  });
  return problems;
}

/**
 * Checks a profile.
 *
 * @example
 * ```ts
 * import { assertValidSeccompProfile } from "./seccomp.ts";
 * try {
 *   assertValidSeccompProfile({ defaultAction: "allow", syscalls: [{ names: ["fooo"], action: "kill" }] }, "x86_64");
 * } catch (e) {
 *   console.assert((e as Error).message === 'seccomp.syscalls[0].names[0]: unknown syscall "fooo" on x86_64');
 * }
 * ```
 * @param profile The profile.
 * @param arch The architecture (default: the running one).
 * @param path The field path of the profile (default `"seccomp"`).
 * @throws {ConfigError} Naming the first problem's field path.
 */
export function assertValidSeccompProfile(profile: SeccompProfile, arch: SeccompArch = ARCH, path = "seccomp"): void {
  const [first] = seccompProblems(profile, arch, path);
  if (first) throw new ConfigError(first.path, first.message);
}

// ---------------------------------------------------------------------------------------------
// The compiler

/** `AUDIT_ARCH_*` values the kernel puts in `seccomp_data.arch`. */
export const AUDIT_ARCH: Readonly<Record<SeccompArch, number>> = Object.freeze({
  x86_64: 0xc000003e,
  aarch64: 0xc00000b7,
});

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

/** x86_64's `__X32_SYSCALL_BIT`: x32-ABI syscalls carry it in their number. */
const X32_SYSCALL_BIT = 0x40000000;

// linux/bpf_common.h
const BPF_LD_W_ABS = 0x00 | 0x00 | 0x20;
const BPF_ALU_AND_K = 0x04 | 0x50 | 0x00;
const BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00;
const BPF_JMP_JGT_K = 0x05 | 0x20 | 0x00;
const BPF_JMP_JGE_K = 0x05 | 0x30 | 0x00;
const BPF_RET_K = 0x06 | 0x00;

// struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
const DATA_NR = 0;
const DATA_ARCH = 4;
const dataArgLow = (i: number) => 16 + 8 * i; // little-endian: the low word comes first
const dataArgHigh = (i: number) => 16 + 8 * i + 4;

/** A jump target inside a rule's block: the next check, or past the block (the rule fails). */
const FAIL = -1;
/** An instruction whose jt/jf may name {@link FAIL} or a relative skip (≥ 0). */
interface Ins {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const ld = (k: number): Ins => ({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k });
const jmp = (code: number, k: number, jt: number, jf: number): Ins => ({ code, jt, jf, k: k >>> 0 });
const ret = (k: number): Ins => ({ code: BPF_RET_K, jt: 0, jf: 0, k: k >>> 0 });

function actionValue(action: SeccompAction, errno: number | undefined): number {
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
function argChecks(arg: SeccompArgRule): Ins[] {
  const v = BigInt.asUintN(64, BigInt(arg.value));
  const hi = Number(v >> 32n), lo = Number(v & 0xffff_ffffn);
  const H = ld(dataArgHigh(arg.index)), L = ld(dataArgLow(arg.index));
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
    case "masked_eq": {
      const want = BigInt.asUintN(64, BigInt(arg.valueTwo ?? 0));
      return [
        H,
        { code: BPF_ALU_AND_K, jt: 0, jf: 0, k: hi },
        jmp(BPF_JMP_JEQ_K, Number(want >> 32n), 0, FAIL),
        L,
        { code: BPF_ALU_AND_K, jt: 0, jf: 0, k: lo },
        jmp(BPF_JMP_JEQ_K, Number(want & 0xffff_ffffn), 0, FAIL),
      ];
    }
  }
}

function resolveFails(block: Ins[]): SockFilter[] {
  // FAIL means "the instruction after the block"; relative offsets count from the next instruction.
  return block.map((ins, i) => {
    const to = (j: number) => (j === FAIL ? block.length - i - 1 : j);
    const out = { code: ins.code, jt: to(ins.jt), jf: to(ins.jf), k: ins.k };
    if (out.jt > 255 || out.jf > 255) throw new RangeError("hako seccomp: a rule's argument checks are too long");
    return out;
  });
}

/**
 * Compiles a profile to a classic BPF program (encoded `struct sock_filter`s) for `arch`.
 *
 * Layout: load `arch`, kill the process unless it is `arch`'s `AUDIT_ARCH`; load `nr` (on
 * x86_64, kill the process for an x32-ABI number); then one block per (rule, name) in order —
 * `jeq nr` skips the block when the number differs, the argument checks jump past it when one
 * fails, and the block ends in the rule's `ret` — and finally the default action. Every jump
 * stays inside one block, and a block is short (a rule has at most 32 argument checks, 6
 * instructions each), so the u8 jump offsets hold however long the program grows; no `BPF_JA`
 * chaining is needed.
 *
 * @example
 * ```ts
 * import { compileSeccomp } from "./seccomp.ts";
 * const program = compileSeccomp({ defaultAction: "allow", syscalls: [{ names: ["mkdirat"], action: "errno" }] }, "aarch64");
 * console.assert(program.byteLength % 8 === 0 && program.byteLength > 0);
 * ```
 * @param profile The profile.
 * @param arch The architecture (default: the running one).
 * @returns The program, 8 bytes an instruction.
 * @throws {ConfigError} When the profile is invalid (an unknown syscall name, a bad action…).
 * @throws {RangeError} When the program exceeds the kernel's 4096 instructions.
 */
export function compileSeccomp(profile: SeccompProfile, arch: SeccompArch = ARCH): Uint8Array<ArrayBuffer> {
  assertValidSeccompProfile(profile, arch);
  const out: SockFilter[] = [
    ld(DATA_ARCH),
    jmp(BPF_JMP_JEQ_K, AUDIT_ARCH[arch], 1, 0),
    ret(SECCOMP_RET.KILL_PROCESS),
    ld(DATA_NR),
  ];
  if (arch === "x86_64") out.push(jmp(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1), ret(SECCOMP_RET.KILL_PROCESS));
  let accIsNr = true;
  for (const rule of profile.syscalls) {
    const body = resolveFails([
      ...(rule.args ?? []).flatMap(argChecks),
      ret(actionValue(rule.action, rule.errno)),
    ]);
    for (const name of rule.names) {
      const nr = syscallNumber(name, arch);
      if (nr === undefined) continue; // "skip" profiles only: validation rejected the others
      if (!accIsNr) out.push(ld(DATA_NR));
      out.push(jmp(BPF_JMP_JEQ_K, nr, 0, body.length), ...body);
      accIsNr = body.length === 1; // argument checks leave an argument in A
    }
  }
  out.push(ret(actionValue(profile.defaultAction, profile.defaultErrno)));
  if (out.length > 4096) {
    throw new RangeError(`hako seccomp: the program has ${out.length} instructions; the kernel takes at most 4096`);
  }
  return encodeSockFilters(out);
}

/**
 * The instructions of a compiled program, for inspection (`{ code, jt, jf, k }` each).
 * @param program A program from {@link compileSeccomp}.
 * @returns The decoded instructions.
 */
export function decodeSeccomp(program: Uint8Array): SockFilter[] {
  return decodeSockFilters(program);
}

/**
 * Installs a filter on the calling thread; it is inherited by children and kept across execve,
 * and can never be removed. Call it in a forked (single-threaded) child after
 * `Capability.noNewPrivs()` — or while holding CAP_SYS_ADMIN — and exec after it.
 *
 * @example
 * ```ts ignore
 * import { Capability, Process } from "./mod.ts";
 * import { DEFAULT_SECCOMP_PROFILE, loadSeccomp } from "./src/seccomp.ts";
 * Process.fork(() => {
 *   Capability.noNewPrivs();
 *   loadSeccomp(DEFAULT_SECCOMP_PROFILE);
 *   Process.exec("/bin/sh", "-c", "grep Seccomp: /proc/self/status");
 * });
 * ```
 * @param filter A profile (compiled for the running arch) or a program from {@link compileSeccomp}.
 * @throws {ConfigError} When the profile is invalid.
 * @throws {SyscallError} When the kernel refuses: EACCES without no_new_privs or CAP_SYS_ADMIN,
 *   EINVAL for a malformed program.
 */
export function loadSeccomp(filter: SeccompProfile | Uint8Array): void {
  const program = filter instanceof Uint8Array ? filter : compileSeccomp(filter);
  seccompSetModeFilter(program, 0, "load the seccomp filter (needs no_new_privs or CAP_SYS_ADMIN)");
}
