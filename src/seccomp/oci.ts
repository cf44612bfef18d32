/**
 * docker / OCI seccomp profiles in hako's terms: the OCI runtime spec's `linux.seccomp` object
 * (`defaultAction: "SCMP_ACT_ERRNO"`, `syscalls[].names/action/errnoRet/args`) and docker's
 * profile format on top of it (`archMap`, `syscalls[].name`, `includes`/`excludes` with `caps`,
 * `arches` and `minKernel`) become a {@link SeccompProfile} with the same decisions as runc +
 * libseccomp would make, or a list of problems naming each field hako cannot honour.
 *
 * How runc reads a profile, and hako with it:
 * - `SCMP_ACT_ERRNO` without `errnoRet` is EPERM; `SCMP_ACT_KILL` kills the thread.
 * - A rule whose action is the default action is dropped (runc skips it: it adds nothing).
 * - A rule with two comparisons of the same argument becomes one rule per comparison (runc's
 *   "old behaviour": libseccomp cannot AND two comparisons of one argument) — so they OR.
 * - Syscall names unknown on an arch are skipped.
 * - `architectures` (or docker's `archMap` entry for the running arch) names the ABIs let in;
 *   without it only the native ABI is.
 *
 * Docker's `includes`/`excludes` are kept as conditions and resolved when the profile is compiled
 * (capabilities, the arch compiled for, the running kernel); docker's arch names (`amd64`,
 * `arm64`…) become hako's, and a rule only for arches hako does not run on is dropped.
 * @module
 */
import type {
  SeccompAction,
  SeccompArch,
  SeccompArgRule,
  SeccompCondition,
  SeccompProblem,
  SeccompProfile,
  SeccompRule,
} from "./_types.ts";

/** One argument comparison of an OCI profile. */
export interface OciSeccompArg {
  /** The argument, 0..5. */
  readonly index: number;
  /** The operand (the mask for `SCMP_CMP_MASKED_EQ`), 0..2^64-1. */
  readonly value: number | bigint;
  /** For `SCMP_CMP_MASKED_EQ`: the value the masked argument must equal. */
  readonly valueTwo?: number | bigint;
  /** `SCMP_CMP_NE`, `_LT`, `_LE`, `_EQ`, `_GE`, `_GT` or `_MASKED_EQ`. */
  readonly op: string;
}

/** docker's rule conditions. */
export interface OciSeccompFilter {
  /** Capabilities (`"CAP_SYS_ADMIN"`). */
  readonly caps?: readonly string[];
  /** docker's arch names (`"amd64"`, `"arm64"`, `"x32"`…). */
  readonly arches?: readonly string[];
  /** A kernel version, `"4.8"`. */
  readonly minKernel?: string;
}

/** One rule of an OCI / docker profile. */
export interface OciSeccompSyscall {
  /** The syscalls it names. */
  readonly names?: readonly string[];
  /** docker's older single name. */
  readonly name?: string;
  /** `SCMP_ACT_ALLOW`, `SCMP_ACT_ERRNO`… */
  readonly action: string;
  /** The errno for `SCMP_ACT_ERRNO` (default EPERM). */
  readonly errnoRet?: number;
  /** Comparisons that must all hold. */
  readonly args?: readonly OciSeccompArg[] | null;
  /** Free text. */
  readonly comment?: string;
  /** docker: the rule applies only when all of these hold. */
  readonly includes?: OciSeccompFilter;
  /** docker: the rule is left out when any of these holds. */
  readonly excludes?: OciSeccompFilter;
}

/** An OCI runtime spec `linux.seccomp` object, or a docker seccomp profile (`--security-opt seccomp=…`). */
export interface OciSeccompProfile {
  /** `SCMP_ACT_ERRNO`, `SCMP_ACT_ALLOW`… */
  readonly defaultAction: string;
  /** The errno for a default `SCMP_ACT_ERRNO` (default EPERM). */
  readonly defaultErrnoRet?: number;
  /** `SCMP_ARCH_X86_64`, `SCMP_ARCH_X86`… */
  readonly architectures?: readonly string[] | null;
  /** docker: per native arch, the sub-architectures to add. */
  readonly archMap?:
    | readonly { readonly architecture: string; readonly subArchitectures?: readonly string[] | null }[]
    | null;
  /** `SECCOMP_FILTER_FLAG_*` (none supported). */
  readonly flags?: readonly string[] | null;
  /** `SCMP_ACT_NOTIFY`'s agent socket (not supported). */
  readonly listenerPath?: string;
  /** `SCMP_ACT_NOTIFY`'s agent metadata (not supported). */
  readonly listenerMetadata?: string;
  /** The rules. */
  readonly syscalls?: readonly OciSeccompSyscall[] | null;
}

/**
 * True for an object in the OCI / docker format: its `defaultAction` starts with `SCMP_ACT_`
 * (hako's own profiles say `"errno"`, `"allow"`…).
 *
 * @example
 * ```ts
 * import { isOciSeccompProfile } from "./oci.ts";
 * console.assert(isOciSeccompProfile({ defaultAction: "SCMP_ACT_ERRNO", syscalls: [] }));
 * console.assert(!isOciSeccompProfile({ defaultAction: "errno", syscalls: [] }));
 * ```
 * @param value Anything.
 * @returns Whether to read it with {@link convertOciSeccomp}.
 */
export function isOciSeccompProfile(value: unknown): value is OciSeccompProfile {
  return value !== null && typeof value === "object" &&
    typeof (value as { defaultAction?: unknown }).defaultAction === "string" &&
    (value as { defaultAction: string }).defaultAction.startsWith("SCMP_ACT_");
}

const ACTIONS: Readonly<Record<string, SeccompAction>> = {
  SCMP_ACT_ALLOW: "allow",
  SCMP_ACT_ERRNO: "errno",
  SCMP_ACT_KILL: "kill",
  SCMP_ACT_KILL_THREAD: "kill",
  SCMP_ACT_KILL_PROCESS: "kill_process",
  SCMP_ACT_TRAP: "trap",
  SCMP_ACT_LOG: "log",
};
const UNSUPPORTED_ACTIONS: Readonly<Record<string, string>> = {
  SCMP_ACT_TRACE: "SCMP_ACT_TRACE needs a ptrace(2) tracer, which hako does not run",
  SCMP_ACT_NOTIFY: "SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which hako does not support",
};
const OPS: Readonly<Record<string, SeccompArgRule["op"]>> = {
  SCMP_CMP_NE: "ne",
  SCMP_CMP_LT: "lt",
  SCMP_CMP_LE: "le",
  SCMP_CMP_EQ: "eq",
  SCMP_CMP_GE: "ge",
  SCMP_CMP_GT: "gt",
  SCMP_CMP_MASKED_EQ: "masked_eq",
};
/** `SCMP_ARCH_*` → hako's ABI; the other libseccomp arches are known but never hako's (null). */
const SCMP_ARCHES: Readonly<Record<string, SeccompArch | null>> = {
  SCMP_ARCH_X86_64: "x86_64",
  SCMP_ARCH_X86: "x86",
  SCMP_ARCH_X32: "x32",
  SCMP_ARCH_AARCH64: "aarch64",
  SCMP_ARCH_ARM: "arm",
  ...Object.fromEntries(
    [
      "MIPS",
      "MIPS64",
      "MIPS64N32",
      "MIPSEL",
      "MIPSEL64",
      "MIPSEL64N32",
      "PPC",
      "PPC64",
      "PPC64LE",
      "S390",
      "S390X",
      "PARISC",
      "PARISC64",
      "RISCV64",
      "LOONGARCH64",
      "M68K",
      "SH",
      "SHEB",
    ].map((a) => [`SCMP_ARCH_${a}`, null]),
  ),
};
/** docker's arch names (Go's, via libseccomp's) → hako's; the others are never hako's (null). */
const DOCKER_ARCHES: Readonly<Record<string, SeccompArch | null>> = {
  amd64: "x86_64",
  x86: "x86",
  x32: "x32",
  arm64: "aarch64",
  arm: "arm",
};

const PROFILE_KEYS = [
  "defaultAction",
  "defaultErrnoRet",
  "architectures",
  "archMap",
  "flags",
  "listenerPath",
  "listenerMetadata",
  "syscalls",
];
const SYSCALL_KEYS = ["names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes"];
const FILTER_KEYS = ["caps", "arches", "minKernel"];
const ARG_KEYS = ["index", "value", "valueTwo", "op"];

/**
 * Converts an OCI / docker seccomp profile to hako's, collecting a problem (with its field path)
 * for everything hako cannot honour: `SCMP_ACT_TRACE`/`SCMP_ACT_NOTIFY`, `flags`, a listener, an
 * unknown action, operator, architecture or field. The profile comes back only without problems;
 * it is not yet checked against the syscall tables (`seccompProblems` does that).
 *
 * @example
 * ```ts
 * import { convertOciSeccomp } from "./oci.ts";
 * const { profile, problems } = convertOciSeccomp({
 *   defaultAction: "SCMP_ACT_ERRNO",
 *   architectures: ["SCMP_ARCH_X86_64"],
 *   syscalls: [{ names: ["read", "write"], action: "SCMP_ACT_ALLOW" }],
 * });
 * console.assert(problems.length === 0 && profile?.defaultAction === "errno");
 * ```
 * @param value The parsed JSON object.
 * @param path The field path of the profile (default `"seccomp"`).
 * @returns The profile (when there are no problems) and the problems.
 */
export function convertOciSeccomp(
  value: unknown,
  path = "seccomp",
): { profile: SeccompProfile | undefined; problems: SeccompProblem[] } {
  const problems: SeccompProblem[] = [];
  const bad = (p: string, message: string) => problems.push({ path: p, message });
  const isObject = (x: unknown): x is Record<string, unknown> =>
    x !== null && typeof x === "object" && !Array.isArray(x);
  const unknownKeys = (o: Record<string, unknown>, keys: readonly string[], at: string) => {
    for (const k of Object.keys(o)) {
      if (!keys.includes(k)) bad(`${at}.${k}`, "is not a field of an OCI/docker seccomp profile");
    }
  };
  const list = (x: unknown, at: string): unknown[] => {
    if (x === undefined || x === null) return [];
    if (!Array.isArray(x)) {
      bad(at, "must be an array");
      return [];
    }
    return x;
  };
  const strings = (x: unknown, at: string): string[] =>
    list(x, at).flatMap((s, i) => {
      if (typeof s === "string") return [s];
      bad(`${at}[${i}]`, "must be a string");
      return [];
    });
  const errnoOf = (x: unknown, at: string): number | undefined => {
    if (x === undefined) return undefined;
    if (!Number.isInteger(x) || (x as number) < 0 || (x as number) > 4095) {
      bad(at, "must be an errno number in 0..4095");
    }
    return x as number;
  };
  const actionOf = (x: unknown, at: string): SeccompAction | undefined => {
    if (typeof x === "string" && Object.hasOwn(ACTIONS, x)) return ACTIONS[x];
    if (typeof x === "string" && Object.hasOwn(UNSUPPORTED_ACTIONS, x)) bad(at, UNSUPPORTED_ACTIONS[x]!);
    else bad(at, `must be one of ${Object.keys(ACTIONS).join(", ")}, got ${JSON.stringify(x)}`);
    return undefined;
  };
  const u64 = (x: unknown, at: string): number | bigint | undefined => {
    if (typeof x === "bigint" && x >= 0n && x < 1n << 64n) return x;
    if (typeof x === "number" && Number.isSafeInteger(x) && x >= 0) return x;
    if (typeof x === "number" && Number.isInteger(x) && x > Number.MAX_SAFE_INTEGER) {
      bad(at, "is above 2^53 and lost precision as a JSON number: give it as a bigint");
    } else bad(at, "must be an integer in 0..2^64-1");
    return undefined;
  };

  if (!isObject(value)) {
    bad(path, "must be an OCI/docker seccomp profile object { defaultAction, syscalls }");
    return { profile: undefined, problems };
  }
  unknownKeys(value, PROFILE_KEYS, path);
  const defaultAction = actionOf(value.defaultAction, `${path}.defaultAction`);
  const defaultErrno = errnoOf(value.defaultErrnoRet, `${path}.defaultErrnoRet`);
  if (defaultErrno !== undefined && defaultAction !== "errno") {
    bad(`${path}.defaultErrnoRet`, "is only meaningful with defaultAction SCMP_ACT_ERRNO");
  }
  strings(value.flags, `${path}.flags`).forEach((f, i) =>
    bad(`${path}.flags[${i}]`, `${f} is not supported: hako loads the filter without SECCOMP_FILTER_FLAG_*`)
  );
  if (value.listenerPath !== undefined && value.listenerPath !== "") {
    bad(`${path}.listenerPath`, "seccomp agents (SCMP_ACT_NOTIFY) are not supported");
  }
  if (value.listenerMetadata !== undefined && value.listenerMetadata !== "") {
    bad(`${path}.listenerMetadata`, "seccomp agents (SCMP_ACT_NOTIFY) are not supported");
  }

  // architectures / archMap
  const architectures = new Set<SeccompArch>();
  const scmpArch = (a: string, at: string) => {
    if (!Object.hasOwn(SCMP_ARCHES, a)) return bad(at, `unknown architecture ${JSON.stringify(a)}`);
    const arch = SCMP_ARCHES[a];
    if (arch) architectures.add(arch);
  };
  const archList = list(value.architectures, `${path}.architectures`);
  const archMap = list(value.archMap, `${path}.archMap`);
  if (archList.length > 0 && archMap.length > 0) {
    bad(`${path}.archMap`, "use either architectures or archMap, not both (as docker says)");
  }
  strings(value.architectures, `${path}.architectures`).forEach((a, i) => scmpArch(a, `${path}.architectures[${i}]`));
  archMap.forEach((entry, i) => {
    const at = `${path}.archMap[${i}]`;
    if (!isObject(entry)) return bad(at, "must be { architecture, subArchitectures }");
    unknownKeys(entry, ["architecture", "subArchitectures"], at);
    if (typeof entry.architecture !== "string") return bad(`${at}.architecture`, "must be a string");
    // docker keeps the entry of the running arch only; hako keeps every entry of an arch it runs
    // on, and the compile takes those of the arch it compiles for.
    scmpArch(entry.architecture, `${at}.architecture`);
    if (SCMP_ARCHES[entry.architecture]) {
      strings(entry.subArchitectures, `${at}.subArchitectures`).forEach((a, j) =>
        scmpArch(a, `${at}.subArchitectures[${j}]`)
      );
    }
  });

  const condition = (x: unknown, at: string, kind: "includes" | "excludes"): SeccompCondition | "never" | undefined => {
    if (x === undefined || x === null) return undefined;
    if (!isObject(x)) {
      bad(at, "must be { caps, arches, minKernel }");
      return undefined;
    }
    unknownKeys(x, FILTER_KEYS, at);
    const out: { caps?: string[]; arches?: SeccompArch[]; minKernel?: string } = {};
    const caps = strings(x.caps, `${at}.caps`);
    caps.forEach((c, i) => {
      if (!/^CAP_[A-Z_]+$/.test(c)) {
        bad(`${at}.caps[${i}]`, `must be a capability name like "CAP_SYS_ADMIN", got ${JSON.stringify(c)}`);
      }
    });
    if (caps.length) out.caps = caps;
    const given = strings(x.arches, `${at}.arches`);
    const arches = given.flatMap((a) => (Object.hasOwn(DOCKER_ARCHES, a) ? [DOCKER_ARCHES[a]!] : []));
    // An includes listing only arches hako never runs on can never hold: the rule goes.
    if (kind === "includes" && given.length > 0 && arches.length === 0) return "never";
    if (arches.length) out.arches = arches;
    if (x.minKernel !== undefined) {
      if (typeof x.minKernel !== "string" || !/^\d+\.\d+(\.\d+)?$/.test(x.minKernel)) {
        bad(`${at}.minKernel`, `must be a kernel version like "4.8", got ${JSON.stringify(x.minKernel)}`);
      } else out.minKernel = x.minKernel;
    }
    return Object.keys(out).length ? out : undefined;
  };

  const rules: SeccompRule[] = [];
  list(value.syscalls, `${path}.syscalls`).forEach((call, i) => {
    const at = `${path}.syscalls[${i}]`;
    if (!isObject(call)) return bad(at, "must be a rule { names, action }");
    unknownKeys(call, SYSCALL_KEYS, at);
    let names: string[];
    if (call.name !== undefined) {
      if (call.names !== undefined) bad(`${at}.name`, "use either name or names, not both (as docker says)");
      if (typeof call.name !== "string") bad(`${at}.name`, "must be a string");
      names = typeof call.name === "string" ? [call.name] : [];
    } else {
      names = strings(call.names, `${at}.names`);
      if (names.length === 0) bad(`${at}.names`, "must be a non-empty array of syscall names");
    }
    names.forEach((n, j) => {
      if (n === "") bad(call.name !== undefined ? `${at}.name` : `${at}.names[${j}]`, "must not be empty");
    });
    const action = actionOf(call.action, `${at}.action`);
    const errno = errnoOf(call.errnoRet, `${at}.errnoRet`);
    if (errno !== undefined && action !== undefined && action !== "errno") {
      bad(`${at}.errnoRet`, "is only meaningful with action SCMP_ACT_ERRNO");
    }
    const args: SeccompArgRule[] = [];
    list(call.args, `${at}.args`).forEach((arg, k) => {
      const a = `${at}.args[${k}]`;
      if (!isObject(arg)) return bad(a, "must be { index, value, op }");
      unknownKeys(arg, ARG_KEYS, a);
      if (!Number.isInteger(arg.index) || (arg.index as number) < 0 || (arg.index as number) > 5) {
        bad(`${a}.index`, "must be 0..5");
      }
      const op = typeof arg.op === "string" && Object.hasOwn(OPS, arg.op) ? OPS[arg.op] : undefined;
      if (!op) bad(`${a}.op`, `must be one of ${Object.keys(OPS).join(", ")}, got ${JSON.stringify(arg.op)}`);
      const v = u64(arg.value, `${a}.value`);
      const v2 = arg.valueTwo === undefined ? undefined : u64(arg.valueTwo, `${a}.valueTwo`);
      if (op && v !== undefined) {
        args.push({
          index: arg.index as number,
          op,
          value: v,
          ...(op === "masked_eq" ? { valueTwo: v2 ?? 0 } : {}),
        });
      }
    });
    const includes = condition(call.includes, `${at}.includes`, "includes");
    const excludes = condition(call.excludes, `${at}.excludes`, "excludes");
    if (!action || includes === "never" || excludes === "never") return;
    // runc: a rule whose action is the default action is skipped.
    const sameAsDefault = action === defaultAction &&
      (action !== "errno" || (errno ?? 1) === (defaultErrno ?? 1));
    if (sameAsDefault) return;
    const base = {
      names,
      action,
      ...(errno !== undefined ? { errno } : {}),
      ...(includes ? { includes } : {}),
      ...(excludes ? { excludes } : {}),
    };
    // runc: two comparisons of one argument → one rule per comparison.
    const perIndex = new Map<number, number>();
    for (const a of args) perIndex.set(a.index, (perIndex.get(a.index) ?? 0) + 1);
    if ([...perIndex.values()].some((n) => n > 1)) {
      for (const a of args) rules.push({ ...base, args: [a] });
    } else rules.push({ ...base, ...(args.length ? { args } : {}) });
  });

  if (problems.length || !defaultAction) return { profile: undefined, problems };
  return {
    profile: {
      defaultAction,
      ...(defaultErrno !== undefined ? { defaultErrno } : {}),
      syscalls: rules,
      ...(architectures.size ? { architectures: [...architectures] } : {}),
      unknownSyscalls: "skip",
    },
    problems,
  };
}
