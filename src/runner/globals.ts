/**
 * The globals of a `hako run` script: hako's public API (`Process`, `Namespace`, `Cgroup`,
 * `Capability`, `Mount`, `Dir`, `Kernel`, `system`, the error classes, and the rest of `mod.ts`)
 * and the script's arguments (`ARGV`, as in Ruby, and `args`). Their types for editors are in
 * `globals.d.ts` at the repository root.
 *
 * hako's API is loaded only for a script that may use it ({@link mentionsHako}): loading it starts
 * the runtime's Node compatibility layer, which would cost an empty script 25 ms.
 *
 * @module
 */

/**
 * The value exports of `mod.ts` that scripts get as globals. Every export of `mod.ts` is installed
 * (this list is not needed for that); the list only tells {@link mentionsHako} what to look for, and
 * a test checks that it and `globals.d.ts` match `mod.ts`.
 */
export const HAKO_GLOBALS: readonly string[] = [
  "Process",
  "Namespace",
  "Cgroup",
  "Capability",
  "Mount",
  "Dir",
  "Kernel",
  "system",
  "ConfigError",
  "SetupError",
  "SyscallError",
  "assertValidSeccompProfile",
  "AUDIT_ARCH",
  "compileSeccomp",
  "decodeSeccomp",
  "DEFAULT_SECCOMP_PROFILE",
  "loadSeccomp",
  "readSeccompProfile",
  "SECCOMP_RET",
  "seccompProblems",
  "seccompProfileFromOci",
  "syscallNumber",
  "Container",
  "run",
  "execIn",
  "publishPorts",
  "listContainers",
  "killContainer",
  "stopContainer",
  "deleteContainer",
  "collectGarbage",
  "ContainerStateError",
  "RootfsRemovalError",
  "StateStore",
  "resolveSpec",
  "SpecError",
  "sethostname",
  "linkUp",
  "addAddress",
  "createVethPair",
  "deleteLink",
  "linkIndex",
  "parseCidr",
  "setLinkUp",
  "gethostname",
  "setdomainname",
  "getdomainname",
  "assertValidHostname",
  "HOST_NAME_MAX",
  "setrlimit",
  "getrlimit",
  "prlimit",
  "rlimitNumber",
  "RLIMITS",
  "Resource",
  "setuid",
  "setgid",
  "setresuid",
  "setresgid",
  "setgroups",
  "getgroups",
  "getuid",
  "geteuid",
  "getgid",
  "getegid",
  "lookupUser",
  "lookupGroup",
  "supplementaryGroups",
  "NGROUPS_MAX",
  "MAX_ID",
  "idProblem",
];

/** The globals that hold the script's arguments. */
export const ARG_GLOBALS: readonly string[] = ["ARGV", "args"];

/** Words that mean a script may reach hako without naming a global: imports, eval, the global object. */
const INDIRECT = ["import", "require", "eval", "Function", "globalThis", "self", "window"];

let mention: RegExp | undefined;

/**
 * True when `source` may use hako: it names one of {@link HAKO_GLOBALS}, imports anything, or
 * reaches the global object or eval. False means it certainly does not (pure).
 * @param source A script's text.
 */
export function mentionsHako(source: string): boolean {
  mention ??= new RegExp(`(?<![\\w$.])(?:${[...HAKO_GLOBALS, ...INDIRECT].join("|")})(?![\\w$])`);
  return mention.test(source);
}

/** The key under which the runner keeps hako's module object, for the data loader's shim. */
export const HAKO_MODULE_KEY: symbol = Symbol.for("hako.module");

/**
 * Makes each export of hako's module a global (as a writable, non-enumerable property, like the
 * runtime's own), except where the runtime already has a global of that name.
 * @param hako The module namespace of `mod.ts`.
 * @returns The names installed.
 */
export function installHakoGlobals(hako: Record<string, unknown>): string[] {
  const g = globalThis as Record<PropertyKey, unknown>;
  Object.defineProperty(g, HAKO_MODULE_KEY, { value: hako, configurable: true });
  const installed: string[] = [];
  for (const [name, value] of Object.entries(hako)) {
    if (name in g) continue;
    Object.defineProperty(g, name, { value, writable: true, configurable: true, enumerable: false });
    installed.push(name);
  }
  return installed;
}

/**
 * Sets the `ARGV` and `args` globals to a frozen copy of `args`.
 * @param args The script's arguments (not including the script).
 */
export function installArgGlobals(args: readonly string[]): void {
  const value = Object.freeze([...args]);
  for (const name of ARG_GLOBALS) {
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  }
}

/** Properties of the {@link installDenoShim} shim that answer instead of throwing (inspection, await). */
const QUIET = new Set<PropertyKey>(["then", "toJSON", "constructor", "inspect", "asymmetricMatch", "$$typeof"]);

/**
 * Under Bun (the `hako` binary, `dist/hako`), a `Deno` global for scripts written for Deno: its
 * `args` are the script's arguments (as under Deno); any other `Deno.X` throws a ReferenceError
 * naming the API and what to do instead of Bun's bare "Deno is not defined". Not installed when a
 * `Deno` global exists. hako's own runtime checks test for Bun first, so the shim never fools them.
 * @param args The script's arguments.
 * @returns Whether the shim was installed.
 */
export function installDenoShim(args: readonly string[]): boolean {
  if ("Deno" in globalThis) return false;
  const value = Object.freeze([...args]);
  const shim = new Proxy(Object.create(null) as Record<PropertyKey, unknown>, {
    get(_target, prop) {
      if (prop === "args") return value;
      if (typeof prop === "symbol" || QUIET.has(prop)) return undefined;
      throw new ReferenceError(denoUnavailable(`Deno.${prop}`));
    },
    has: (_target, prop) => prop === "args",
    set(_target, prop) {
      throw new ReferenceError(denoUnavailable(`Deno.${String(prop)}`));
    },
    ownKeys: () => [],
  });
  Object.defineProperty(globalThis, "Deno", { value: shim, writable: true, configurable: true, enumerable: false });
  return true;
}

/** The message for a Deno API a script uses under Bun (pure). */
export function denoUnavailable(api: string): string {
  return `${api} is not available under the hako binary (Bun): use node: APIs (node:fs, node:process, node:child_process…) or hako's own, or run the script with bin/hako under Deno`;
}
