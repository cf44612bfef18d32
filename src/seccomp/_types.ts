/**
 * The shapes of hako's seccomp profiles (re-exported by `src/seccomp.ts`).
 * @module
 */

/**
 * An ABI a filter can see in `seccomp_data.arch` (and, for x32, in the number's
 * `__X32_SYSCALL_BIT`): the two hako runs on, and the compat ABIs their kernels also accept —
 * `x86` (i386 through `int 0x80`) and `x32` on x86_64, `arm` (AArch32) on aarch64.
 */
export type SeccompArch = "x86_64" | "x86" | "x32" | "aarch64" | "arm";

/** An architecture hako runs on, which a filter is compiled for (its compat ABIs come along). */
export type SeccompNativeArch = "x86_64" | "aarch64";

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
   * The comparison, unsigned. `masked_eq` is `(arg & value) === valueTwo`
   * (libseccomp's `SCMP_CMP_MASKED_EQ`).
   */
  readonly op: "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "masked_eq";
  /** The operand (the mask for `masked_eq`); a negative number means its 64-bit two's complement. */
  readonly value: number | bigint;
  /** For `masked_eq`: the value the masked argument must equal (default 0). */
  readonly valueTwo?: number | bigint;
  /**
   * 64 (default) compares the whole register, as libseccomp does; 32 compares its low half only —
   * for an argument the kernel reads as an `int` or `unsigned int`, whose high half the kernel
   * drops, so a caller's junk there must not sway the filter either (`socket(0x1_00000028, …)` is
   * `socket(AF_VSOCK, …)` to the kernel, and `> 40` to a 64-bit comparison).
   */
  readonly width?: 32 | 64;
}

/**
 * When a rule applies, as docker's profile format says it (`includes` / `excludes`), resolved when
 * the profile is compiled: against the container's kept capabilities, the architecture the filter
 * is compiled for, and the running kernel.
 */
export interface SeccompCondition {
  /** Capabilities (`"CAP_SYS_ADMIN"`): includes needs every one kept, excludes drops the rule if any is. */
  readonly caps?: readonly string[];
  /**
   * Architectures the filter is compiled for (the native one: `"x86_64"`, `"aarch64"`): includes
   * needs it listed, excludes drops the rule if it is. The rule, once in, applies to every ABI the
   * filter covers, each by its own numbers.
   */
  readonly arches?: readonly SeccompArch[];
  /** A kernel version (`"4.8"`): includes needs the running kernel at least this new, excludes drops the rule if it is. */
  readonly minKernel?: string;
}

/** One rule: the syscalls it names, the action, and argument checks that must all hold. */
export interface SeccompRule {
  /** Syscall names as the kernel spells them (`"mkdirat"`, `"_sysctl"`), looked up per ABI. */
  readonly names: readonly string[];
  /** What happens when the rule matches. */
  readonly action: SeccompAction;
  /** For `action: "errno"`: the errno returned (default 1, EPERM). */
  readonly errno?: number;
  /** Argument checks (at most 32), all of which must hold for the rule to match (none: every call matches). */
  readonly args?: readonly SeccompArgRule[];
  /** The rule applies only when all of these hold. */
  readonly includes?: SeccompCondition;
  /** The rule is left out when any of these holds. */
  readonly excludes?: SeccompCondition;
}

/** A seccomp profile. Rules are tried in order; the first one that matches decides. */
export interface SeccompProfile {
  /** What happens to a syscall no rule matches. */
  readonly defaultAction: "allow" | "errno" | "kill" | "kill_process" | "trap" | "log";
  /** For `defaultAction: "errno"`: the errno returned (default 1, EPERM). */
  readonly defaultErrno?: number;
  /** The rules, tried in order. */
  readonly syscalls: readonly SeccompRule[];
  /**
   * The ABIs the filter lets in, each checked against its own syscall table (docker's
   * `archMap`). The native one is always in; the compat ones listed for the native arch are added
   * (`x86` and `x32` on x86_64, `arm` on aarch64); any other ABI kills the process. Default: the
   * native one only.
   */
  readonly architectures?: readonly SeccompArch[];
  /**
   * What a name none of the profile's ABIs has means: `"error"` (default) rejects the profile;
   * `"skip"` drops the name (for profiles written for several arches, like docker's).
   */
  readonly unknownSyscalls?: "error" | "skip";
}

/** One problem in a profile, with its field path (`seccomp.syscalls[2].names[0]`). */
export interface SeccompProblem {
  /** The field path. */
  readonly path: string;
  /** What is wrong. */
  readonly message: string;
}

/** What a profile is compiled against. */
export interface SeccompCompileOptions {
  /** The architecture (default: the running one). */
  readonly arch?: SeccompNativeArch;
  /**
   * The capabilities the process keeps (`"CAP_SYS_ADMIN"`…), for rules with `includes.caps` /
   * `excludes.caps`. Default: none — the tightest reading.
   */
  readonly capabilities?: readonly string[];
  /** The kernel version for `minKernel` conditions (`"6.18.44"`). Default: the running kernel's. */
  readonly kernel?: string;
  /**
   * Root's cache of compiled programs across processes (src/seccomp/_cache.ts): `true` uses it
   * when the process is root and `HAKO_SECCOMP_CACHE` is not `"0"` (in `$HAKO_SECCOMP_CACHE_DIR`,
   * else `/run/hako/seccomp`); `{ dir }` names the directory. Default: not used.
   */
  readonly cache?: boolean | { readonly dir: string };
}
