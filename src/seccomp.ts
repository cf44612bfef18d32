/**
 * seccomp filters, compiled in TypeScript to classic BPF for x86_64 and aarch64: a profile is a
 * plain object (a default action and rules over syscall names, optionally over their arguments,
 * optionally conditional on capabilities, arch or kernel), {@link compileSeccomp} turns it into the
 * program the kernel runs on every system call, and {@link loadSeccomp} installs it on the calling
 * thread (in a forked child, before exec).
 *
 * The program first checks `seccomp_data.arch`: the ABIs the profile covers (docker's: x86_64 with
 * i386 and x32, aarch64 with arm) are each checked against their own syscall table, generated from
 * the kernel's by tools/gen_syscalls.ts; any other ABI kills the process. Then the first rule
 * that names the syscall and whose argument checks all hold decides; otherwise the default action
 * does — and a number above the kernel table hako knows answers ENOSYS when the default refuses.
 *
 * {@link DEFAULT_SECCOMP_PROFILE} is docker's default profile; docker and OCI profiles in their
 * JSON format are read by {@link readSeccompProfile} and {@link seccompProfileFromOci}.
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
import { readFileSync } from "node:fs";
import { decodeSockFilters, encodeSockFilters, seccompSetModeFilter, type SockFilter } from "../ffi/seccomp.ts";
import { ARCH } from "../ffi/syscalls.ts";
import { ConfigError } from "./errors.ts";
import { activeRules, assemble, coveredAbis, parseKernelVersion, targetOf } from "./seccomp/_compile.ts";
import { cachedCompile } from "./seccomp/_cache.ts";
import { ABIS, ABIS_OF, numberIn } from "./seccomp/_tables.ts";
import type {
  SeccompArch,
  SeccompArgRule,
  SeccompCompileOptions,
  SeccompCondition,
  SeccompNativeArch,
  SeccompProblem,
  SeccompProfile,
} from "./seccomp/_types.ts";
import { convertOciSeccomp, isOciSeccompProfile, type OciSeccompProfile } from "./seccomp/oci.ts";

export type { SockFilter };
export type {
  SeccompAction,
  SeccompArch,
  SeccompArgRule,
  SeccompCompileOptions,
  SeccompCondition,
  SeccompNativeArch,
  SeccompProblem,
  SeccompProfile,
  SeccompRule,
} from "./seccomp/_types.ts";
export type { OciSeccompArg, OciSeccompFilter, OciSeccompProfile, OciSeccompSyscall } from "./seccomp/oci.ts";
export { DEFAULT_SECCOMP_PROFILE } from "./seccomp/_default.ts";
export { SECCOMP_RET } from "./seccomp/_compile.ts";
export { convertOciSeccomp, isOciSeccompProfile };

const ARCHES = Object.keys(ABIS) as SeccompArch[];
const NATIVE_ARCHES = Object.keys(ABIS_OF) as SeccompNativeArch[];

/**
 * A syscall's number on an architecture, as the kernel sees it in `seccomp_data.nr` (x32's
 * numbers carry `__X32_SYSCALL_BIT`).
 *
 * @example
 * ```ts
 * import { syscallNumber } from "./seccomp.ts";
 * console.assert(syscallNumber("mkdirat", "x86_64") === 258);
 * console.assert(syscallNumber("mkdirat", "aarch64") === 34);
 * console.assert(syscallNumber("mkdir", "aarch64") === undefined); // asm-generic has only mkdirat
 * console.assert(syscallNumber("socketcall", "x86") === 102);
 * console.assert(syscallNumber("rt_sigaction", "x32") === 0x40000000 + 512);
 * ```
 * @param name The name as the kernel spells it (`"clone3"`, `"_sysctl"`).
 * @param arch The ABI (default: the running arch).
 * @returns The number, or undefined when the ABI has no such syscall.
 */
export function syscallNumber(name: string, arch: SeccompArch = ARCH): number | undefined {
  const nr = numberIn(name, arch);
  return nr === undefined ? undefined : nr + ABIS[arch].bit;
}

// ---------------------------------------------------------------------------------------------
// Validation

const DEFAULT_ACTIONS = ["allow", "errno", "kill", "kill_process", "trap", "log"];
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
 * @param arch The architecture its names must exist on (default: the running one): each name
 *   must exist in one of the ABIs the profile covers there, unless `unknownSyscalls` is `"skip"`.
 * @param path The field path of the profile itself (default `"seccomp"`).
 * @returns The problems, in order.
 */
export function seccompProblems(
  profile: SeccompProfile,
  arch: SeccompNativeArch = ARCH,
  path = "seccomp",
): SeccompProblem[] {
  const problems: SeccompProblem[] = [];
  const bad = (p: string, message: string) => problems.push({ path: p, message });
  const errnoOk = (p: string, e: unknown) =>
    e !== undefined && (!Number.isInteger(e) || (e as number) < 0 || (e as number) > 4095) &&
    bad(p, "must be an errno number in 0..4095");
  if (profile === null || typeof profile !== "object") {
    bad(path, 'must be false, "default" or a profile { defaultAction, syscalls }');
    return problems;
  }
  const native = NATIVE_ARCHES.includes(arch);
  if (!native) bad(path, `unknown architecture ${JSON.stringify(arch)}: hako compiles for ${NATIVE_ARCHES.join(", ")}`);
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
  const archList = (x: unknown, at: string) => {
    if (!Array.isArray(x)) return bad(at, `must be an array of ${ARCHES.join(", ")}`);
    (x as unknown[]).forEach((a, i) => {
      if (!ARCHES.includes(a as SeccompArch)) {
        bad(`${at}[${i}]`, `must be one of ${ARCHES.join(", ")}, got ${JSON.stringify(a)}`);
      }
    });
  };
  if (profile.architectures !== undefined) archList(profile.architectures, `${path}.architectures`);
  if (!Array.isArray(profile.syscalls)) {
    bad(`${path}.syscalls`, "must be an array of rules");
    return problems;
  }
  const abis = native ? coveredAbis(profile, arch) : [];
  const condition = (c: SeccompCondition | undefined, at: string) => {
    if (c === undefined) return;
    if (c === null || typeof c !== "object") return bad(at, "must be { caps, arches, minKernel }");
    if (c.caps !== undefined) {
      if (!Array.isArray(c.caps)) bad(`${at}.caps`, "must be an array of capability names");
      else {
        (c.caps as unknown[]).forEach((cap, i) => {
          if (typeof cap !== "string" || !/^CAP_[A-Z_]+$/.test(cap)) {
            bad(`${at}.caps[${i}]`, `must be a capability name like "CAP_SYS_ADMIN", got ${JSON.stringify(cap)}`);
          }
        });
      }
    }
    if (c.arches !== undefined) archList(c.arches, `${at}.arches`);
    if (c.minKernel !== undefined && (typeof c.minKernel !== "string" || !parseKernelVersion(c.minKernel))) {
      bad(`${at}.minKernel`, `must be a kernel version like "4.8", got ${JSON.stringify(c.minKernel)}`);
    }
  };
  profile.syscalls.forEach((rule, i) => {
    const at = `${path}.syscalls[${i}]`;
    if (rule === null || typeof rule !== "object") return bad(at, "must be a rule { names, action }");
    if (!Array.isArray(rule.names) || rule.names.length === 0) {
      bad(`${at}.names`, "must be a non-empty array of syscall names");
    } else {
      (rule.names as readonly unknown[]).forEach((name, j) => {
        if (typeof name !== "string") bad(`${at}.names[${j}]`, "must be a string");
        else if (
          profile.unknownSyscalls !== "skip" && native && abis.every((abi) => numberIn(name, abi) === undefined)
        ) {
          bad(`${at}.names[${j}]`, `unknown syscall ${JSON.stringify(name)} on ${abis.join(", ")}`);
        }
      });
    }
    if (!ACTIONS.includes(rule.action)) {
      bad(`${at}.action`, `must be one of ${ACTIONS.join(", ")}, got ${JSON.stringify(rule.action)}`);
    }
    errnoOk(`${at}.errno`, rule.errno);
    condition(rule.includes, `${at}.includes`);
    condition(rule.excludes, `${at}.excludes`);
    if (rule.args !== undefined && !Array.isArray(rule.args)) bad(`${at}.args`, "must be an array");
    else if ((rule.args?.length ?? 0) > MAX_ARG_CHECKS) bad(`${at}.args`, `must hold at most ${MAX_ARG_CHECKS} checks`);
    (Array.isArray(rule.args) ? rule.args as readonly SeccompArgRule[] : []).forEach((arg, k) => {
      const a = `${at}.args[${k}]`;
      if (arg === null || typeof arg !== "object") return bad(a, "must be { index, op, value }");
      if (!Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) bad(`${a}.index`, "must be 0..5");
      if (!OPS.includes(arg.op)) bad(`${a}.op`, `must be one of ${OPS.join(", ")}, got ${JSON.stringify(arg.op)}`);
      if (arg.width !== undefined && arg.width !== 32 && arg.width !== 64) bad(`${a}.width`, "must be 32 or 64");
      const bits = arg.width === 32 ? 32n : 64n;
      for (const key of ["value", "valueTwo"] as const) {
        const v = arg[key];
        if (key === "value" || v !== undefined) {
          if (!isInteger(v)) bad(`${a}.${key}`, "must be an integer (number or bigint)");
          else if (BigInt(v) < -(1n << (bits - 1n)) || BigInt(v) >= 1n << bits) {
            bad(`${a}.${key}`, `must fit in ${bits} bits`);
          }
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
export function assertValidSeccompProfile(
  profile: SeccompProfile,
  arch: SeccompNativeArch = ARCH,
  path = "seccomp",
): void {
  const [first] = seccompProblems(profile, arch, path);
  if (first) throw new ConfigError(first.path, first.message);
}

// ---------------------------------------------------------------------------------------------
// docker / OCI profiles

/**
 * A profile in hako's format or docker's / the OCI runtime spec's (told apart by a `SCMP_ACT_`
 * default action), converted and checked: every problem with its field path, and the profile
 * when there are none. This is what a container spec's `seccomp` field goes through.
 *
 * @example
 * ```ts
 * import { resolveSeccompProfile } from "./seccomp.ts";
 * const { problems } = resolveSeccompProfile({
 *   defaultAction: "SCMP_ACT_ERRNO",
 *   syscalls: [{ names: ["ptrace"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 1, op: "SCMP_CMP_FOO" }] }],
 * });
 * console.assert(problems[0]?.path === "seccomp.syscalls[0].args[0].op");
 * ```
 * @param value A hako profile or an OCI/docker profile object.
 * @param path The field path (default `"seccomp"`).
 * @param arch The architecture whose tables the names are checked against (default: the running one).
 * @returns The profile (undefined when there are problems) and the problems.
 */
export function resolveSeccompProfile(
  value: SeccompProfile | OciSeccompProfile,
  path = "seccomp",
  arch: SeccompNativeArch = ARCH,
): { profile: SeccompProfile | undefined; problems: SeccompProblem[] } {
  if (isOciSeccompProfile(value)) {
    const converted = convertOciSeccomp(value, path);
    if (!converted.profile) return converted;
    const problems = seccompProblems(converted.profile, arch, path);
    return { profile: problems.length ? undefined : converted.profile, problems };
  }
  const problems = seccompProblems(value as SeccompProfile, arch, path);
  return { profile: problems.length ? undefined : value as SeccompProfile, problems };
}

/**
 * Converts a docker / OCI seccomp profile object (`config.json`'s `linux.seccomp`, or a file for
 * docker's `--security-opt seccomp=`) into hako's, as runc would read it.
 *
 * @example
 * ```ts
 * import { seccompProfileFromOci } from "./seccomp.ts";
 * const profile = seccompProfileFromOci({
 *   defaultAction: "SCMP_ACT_ERRNO",
 *   defaultErrnoRet: 1,
 *   syscalls: [{ names: ["socket"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 40, op: "SCMP_CMP_NE" }] }],
 * });
 * console.assert(profile.syscalls[0]?.args?.[0]?.op === "ne");
 * ```
 * @param value The parsed JSON object.
 * @param path The field path for errors (default `"seccomp"`).
 * @returns hako's profile.
 * @throws {ConfigError} Naming the field path of the first problem (an unsupported action, operator…).
 */
export function seccompProfileFromOci(value: OciSeccompProfile, path = "seccomp"): SeccompProfile {
  const { profile, problems } = resolveSeccompProfile(value, path);
  if (!profile) {
    const [first, ...rest] = problems;
    throw new ConfigError(
      first?.path ?? path,
      `${first?.message ?? "not a seccomp profile"}${rest.length ? ` (and ${rest.length} more problems)` : ""}`,
    );
  }
  return profile;
}

/**
 * Reads a seccomp profile from a JSON file: docker's or the OCI runtime spec's format (docker's
 * own `default.json` works as is), or hako's.
 *
 * @example
 * ```ts ignore
 * import { readSeccompProfile, run } from "./mod.ts";
 * await run({ name: "web", rootfs: "/srv/web", command: "httpd", seccomp: readSeccompProfile("seccomp.json") });
 * ```
 * @param file The path of the JSON file.
 * @returns hako's profile.
 * @throws {ConfigError} When the file cannot be read or parsed (path `file`), or names something
 *   hako cannot honour (path `seccomp.syscalls[3].args[0].op`…, the message naming the file).
 */
export function readSeccompProfile(file: string): SeccompProfile {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError(file, `cannot read a seccomp profile: ${(e as Error).message}`);
  }
  const { profile, problems } = resolveSeccompProfile(value as SeccompProfile, "seccomp");
  if (!profile) {
    const [first, ...rest] = problems;
    throw new ConfigError(
      first?.path ?? "seccomp",
      `${first?.message ?? "not a seccomp profile"} (in ${file}${
        rest.length ? `; and ${rest.length} more problems` : ""
      })`,
    );
  }
  return profile;
}

// ---------------------------------------------------------------------------------------------
// The compiler

/** `AUDIT_ARCH_*` values the kernel puts in `seccomp_data.arch` (x32 shares x86_64's). */
export const AUDIT_ARCH: Readonly<Record<SeccompArch, number>> = Object.freeze(
  Object.fromEntries(ARCHES.map((a) => [a, ABIS[a].audit])) as Record<SeccompArch, number>,
);

/** Programs of frozen profiles (the default one), per arch and set of rules that apply; only valid ones get in. */
const compiled = new WeakMap<SeccompProfile, Map<string, Uint8Array<ArrayBuffer>>>();
const MAX_CACHED = 32;

/**
 * Compiles a profile to a classic BPF program (encoded `struct sock_filter`s) for an arch and the
 * ABIs the profile covers there; rules with `includes`/`excludes` are resolved against
 * `options.capabilities`, the arch and the kernel. See src/seccomp/_compile.ts for the layout.
 *
 * A frozen profile's program (its `syscalls` frozen too, and its rules left alone, like the
 * default profile's) is compiled once per arch and set of rules that apply, and the same bytes are
 * returned each time after: do not modify them. With `options.cache`, root's processes share
 * compiled programs through a directory only root can change, each entry keyed by the compiler's
 * identity, the arch, capabilities and kernel version, and the profile's whole content (see
 * src/seccomp/_cache.ts).
 *
 * @example
 * ```ts
 * import { compileSeccomp, DEFAULT_SECCOMP_PROFILE } from "./seccomp.ts";
 * const plain = compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch: "aarch64" });
 * const admin = compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch: "aarch64", capabilities: ["CAP_SYS_ADMIN"] });
 * console.assert(plain.byteLength % 8 === 0 && plain !== admin);
 * ```
 * @param profile The profile.
 * @param options The arch (default: the running one; a bare arch name works too), the kept
 *   capabilities (default none) and the kernel version (default: the running kernel's).
 * @returns The program, 8 bytes an instruction.
 * @throws {ConfigError} When the profile is invalid (an unknown syscall name, a bad action…).
 * @throws {RangeError} When the program exceeds the kernel's 4096 instructions.
 */
export function compileSeccomp(
  profile: SeccompProfile,
  options: SeccompCompileOptions | SeccompNativeArch = {},
): Uint8Array<ArrayBuffer> {
  const opts: SeccompCompileOptions = typeof options === "string" ? { arch: options } : options;
  const arch = opts.arch ?? ARCH;
  const target = () => targetOf(arch, opts.capabilities, opts.kernel);
  let programs = compiled.get(profile);
  if (programs) {
    // Validated when its first program was compiled for this arch (the key names the arch).
    const hit = programs.get(`${arch}:${activeRules(profile, target()).join(",")}`);
    if (hit) return hit;
  }
  const compileNow = (p: SeccompProfile) => {
    assertValidSeccompProfile(p, arch);
    return encodeSockFilters(assemble(p, arch, activeRules(p, target())));
  };
  // Root's cache across processes compiles (on a miss) a plain copy of the profile, the one its key describes.
  const cached = opts.cache
    ? cachedCompile(profile, target(), compileNow, opts.cache === true ? {} : { dir: opts.cache.dir })
    : undefined;
  const program = cached ? cached.program : compileNow(profile);
  if (Object.isFrozen(profile) && Object.isFrozen(profile.syscalls)) {
    // (valid: compiled just now, or the same content compiled and validated before by this compiler)
    const active = activeRules(profile, target());
    if (!programs) compiled.set(profile, programs = new Map());
    if (programs.size >= MAX_CACHED) programs.clear();
    programs.set(`${arch}:${active.join(",")}`, program);
  }
  return program;
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
 * @param options For a profile: the capabilities its conditional rules see (default none).
 * @throws {ConfigError} When the profile is invalid.
 * @throws {SyscallError} When the kernel refuses: EACCES without no_new_privs or CAP_SYS_ADMIN,
 *   EINVAL for a malformed program.
 */
export function loadSeccomp(filter: SeccompProfile | Uint8Array, options: SeccompCompileOptions = {}): void {
  const program = filter instanceof Uint8Array ? filter : compileSeccomp(filter, options);
  seccompSetModeFilter(program, 0, "load the seccomp filter (needs no_new_privs or CAP_SYS_ADMIN)");
}
