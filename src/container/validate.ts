/**
 * Validation of a {@link ContainerSpec}: one strict pass that collects every problem, each with its
 * field path, before anything on the host is touched — for every way a spec arrives (a module's
 * default export, the JSON the CLI sends the supervisor, the spec `hako run --rootfs` makes).
 *
 * Strict means: exact types (a boolean is `true` or `false`, never `"false"`), ranges and enums,
 * no unknown key at any level ("did you mean `command`?" for a near miss), strings within what the
 * kernel takes (no NUL byte, paths under PATH_MAX, argv and env strings under MAX_ARG_STRLEN, a
 * hostname of at most 64 bytes), known capability and rlimit names, cgroup values in the ranges
 * the controllers take, and the cross-field rules (hostname needs a UTS namespace, id maps need a
 * user namespace, pivot_root needs a mount namespace). Whatever the input — a cycle, a 3000-deep
 * array, a getter that throws, a `__proto__` key — the outcome is a resolved spec or a
 * {@link SpecError}, never another exception.
 *
 * Also the normalisation into a {@link ResolvedSpec} with every default filled in.
 * @module
 */
import type { ReadinessSpec } from "./hooks.ts";
import type { MemoryPressureSpec } from "./memory_pressure.ts";
import process from "node:process";
import { readFileSync, statSync } from "node:fs";
import { inNestedUserNamespace } from "../_userns.ts";
import { isSysctlKey, sysctlNamespace } from "./_sysctl.ts";
import { ConfigError } from "../errors.ts";
import { Group } from "../cgroup/group.ts";
import { compileSeccomp } from "../seccomp.ts";
import type { NamespaceName } from "../namespace.ts";
import { containerCgroupName, containerGroupSpec } from "./_cgroup.ts";
import { Checker, isRecord, show, snapshot, unknownKeys } from "./_spec_shape.ts";
import {
  argMaxProblem,
  capabilitiesOf,
  cgroupOf,
  commandOf,
  defaultVethHostName,
  devicesOf,
  envOf,
  hooksOf,
  hostnameOf,
  idMapsOf,
  KEYS,
  memoryPressureOf,
  mountsOf,
  nameOf,
  namespacesOf,
  pathList,
  portsOf,
  readinessOf,
  restartOf,
  rlimitsOf,
  rootfsOf,
  seccompOf,
  stopSignalOf,
  timeOffsetsOf,
  userOf,
  vethOf,
} from "./_spec_fields.ts";
import { initArgv, resolveInit } from "./_init.ts";
import {
  type ContainerSpec,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  PROPAGATIONS,
  type ResolvedSpec,
} from "./spec.ts";
import { isIdmapped } from "./_plain_mount.ts";

/**
 * The spec's `sysctl`, validated (see `ContainerSpec.sysctl`): each key a namespaced sysctl of the
 * form /proc/sys takes, its value a string (a number is written as its decimal text), and the
 * container's own namespace of its kind — new, or joined by a path that is not this process's own
 * namespace (runc refuses the host's too: the write would change the host's setting).
 */
function sysctlOf(
  c: Checker,
  value: unknown,
  created: readonly NamespaceName[],
  joined: readonly { readonly type: NamespaceName; readonly path: string }[],
): Array<{ key: string; value: string }> {
  if (value === undefined) return [];
  if (!isRecord(value)) {
    c.bad("sysctl", `must be an object of key → value, got ${show(value)}`);
    return [];
  }
  const out: Array<{ key: string; value: string }> = [];
  for (const [key, v] of Object.entries(value)) {
    const at = `sysctl.${key}`;
    const ns = sysctlNamespace(key);
    if (!isSysctlKey(key)) {
      c.bad(at, "is not a sysctl key (dot-separated names of letters, digits, '_' and '-')");
    } else if (!ns) {
      c.bad(
        at,
        "is not a namespaced sysctl: only net.*, the IPC limits (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*) and kernel.hostname/domainname, as runc and docker",
      );
    } else if (typeof v !== "string" && !(typeof v === "number" && Number.isFinite(v))) {
      c.bad(at, `must be a string, got ${show(v)}`);
    } else if (typeof v === "string" && (v.includes("\0") || v.length > 4096)) {
      c.bad(at, "must hold no NUL and at most 4096 characters");
    } else if (!created.includes(ns)) {
      const join = joined.find((j) => j.type === ns);
      if (!join) c.bad(at, `needs the container's own ${ns} namespace: add "${ns}" to namespaces`);
      else if (sameNamespace(join.path, `/proc/self/ns/${ns}`)) {
        c.bad(at, `the ${ns} namespace joined (${join.path}) is hako's own: the write would change the host's setting`);
      } else out.push({ key, value: String(v) });
    } else out.push({ key, value: String(v) });
  }
  return out;
}

/** Whether two namespace files are one namespace (false when either cannot be read). */
function sameNamespace(a: string, b: string): boolean {
  try {
    const x = statSync(a), y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/** A file's text, or undefined when it cannot be read. */
function readTextOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** One problem in a spec. */
export interface SpecProblem {
  /** The field path, e.g. `mounts[2].target`. */
  readonly path: string;
  /** What is wrong, e.g. `must be absolute`. */
  readonly message: string;
}

/** How many problems a {@link SpecError}'s message lists (`problems` holds them all). */
const LISTED_PROBLEMS = 100;

/** A spec with problems: every one of them, in order. */
export class SpecError extends ConfigError {
  /** Every problem found. */
  readonly problems: readonly SpecProblem[];
  /** Makes the error. @param problems Every problem found (at least one). */
  constructor(problems: readonly SpecProblem[]) {
    const first = problems[0]!;
    const listed = problems.slice(0, LISTED_PROBLEMS).map((p) => `  ${p.path}: ${p.message}`);
    if (problems.length > LISTED_PROBLEMS) listed.push(`  … and ${problems.length - LISTED_PROBLEMS} more`);
    super(
      problems.length === 1 ? first.path : "",
      problems.length === 1
        ? first.message
        : `${problems.length} problems in the container spec:\n${listed.join("\n")}`,
    );
    this.name = "SpecError";
    this.problems = problems;
  }
}

export { defaultVethHostName };
// (the resolved spec's types live with the spec's, in spec.ts, a module of types only)
export type { ResolvedSpec, ResolvedVeth } from "./spec.ts";

/** Every field of a spec, in the order of {@link ContainerSpec}. */
const SPEC_FIELDS = [
  "name",
  "command",
  "rootfs",
  "env",
  "workdir",
  "user",
  "namespaces",
  "idMap",
  "hostname",
  "domainname",
  "sysctl",
  "timeOffsets",
  "readonlyRootfs",
  "rootfsPropagation",
  "standardMounts",
  "writableSysfs",
  "writableCgroupfs",
  "shm",
  "devNoexec",
  "mounts",
  "devices",
  "networkEtc",
  "maskedPaths",
  "readonlyPaths",
  "cgroup",
  "capabilities",
  "rlimits",
  "noNewPrivs",
  "seccomp",
  "network",
  "stdio",
  "hooks",
  "init",
  "restart",
  "readiness",
  "stopSignal",
  "memoryPressure",
] as const;

// Compile-time: SPEC_FIELDS names exactly ContainerSpec's keys (a field added to the type is checked here too).
const _fieldsMatchTheType: [Exclude<keyof ContainerSpec, typeof SPEC_FIELDS[number]>] extends [never] ? true : false =
  true;
void _fieldsMatchTheType;

/** Where a spec may hold a bigint: a seccomp rule's argument values (64-bit, beyond a number's 2^53). */
const BIGINT_AT = /^seccomp\.syscalls\[\d+\]\.args\[\d+\]\.(value|valueTwo)$/;

/** What other tools call a spec field (docker, the OCI runtime spec, compose): a hint, not an alias. */
const FOREIGN_NAMES: Readonly<Record<string, string>> = {
  privileged:
    "hako has no privileged mode: add the capabilities (capabilities.add), devices (cgroup.devices) and mounts the container needs",
  cmd: 'the command is "command"',
  args: 'the command is "command"',
  entrypoint: 'the command is "command"',
  image: 'the root filesystem is "rootfs" ({ tarball, path } for an image)',
  root: 'the root filesystem is "rootfs"',
  volumes: 'extra mounts are "mounts"',
  environment: 'the environment is "env"',
  cwd: 'the working directory is "workdir"',
  workingDir: 'the working directory is "workdir"',
  readonly: 'a read-only root is "readonlyRootfs"',
  readOnly: 'a read-only root is "readonlyRootfs"',
  resources: 'limits are "cgroup" (and "rlimits")',
  linux: 'an OCI config\'s linux section maps onto "namespaces", "cgroup", "seccomp"…',
  process: 'an OCI config\'s process section maps onto "command", "env", "user", "capabilities", "rlimits"',
  tty: "a terminal is asked for when the container is run (hako run -t), not in the spec",
};

/**
 * Checks a spec and returns it resolved (defaults filled in).
 * @param input The spec, as given: anything at all is checked, not only what the type allows.
 * @returns The resolved spec (its parts copied from the input: a later change to the input is not seen).
 * @throws {SpecError} Listing every problem with its field path.
 */
export function resolveSpec(input: ContainerSpec): ResolvedSpec {
  const copy = snapshot(input, BIGINT_AT);
  if (copy.problems.length) throw new SpecError(copy.problems);
  if (!isRecord(copy.value)) {
    throw new SpecError([{ path: "spec", message: `must be an object, got ${show(copy.value)}` }]);
  }
  const s = copy.value;
  const c = new Checker();
  const { bad, problems } = c;
  unknownKeys(s, "", SPEC_FIELDS, bad, FOREIGN_NAMES);

  const name = nameOf(c, s.name);
  const argv = commandOf(c, s.command);
  const rootfsPath = rootfsOf(c, s.rootfs, name);

  // namespaces and id maps; rootless: a non-root caller needs a user namespace, and without an
  // idMap its own ids become root inside
  const { newNamespaces, joinNamespaces } = namespacesOf(c, s.namespaces);
  const has = (t: NamespaceName) => newNamespaces.includes(t);
  const euid = process.geteuid?.() ?? 0;
  // (root of a nested user namespace — rootless podman's — is rootless too, but needs no new one)
  const rootless = euid !== 0 || inNestedUserNamespace(readTextOrUndefined);
  if (euid !== 0 && !has("user")) {
    bad("namespaces", `rootless containers need "user" in namespaces (running as uid ${euid}, not root)`);
  }
  const maps = idMapsOf(c, s.idMap, has("user"), { euid, egid: process.getegid?.() ?? 0 });
  const given = hostnameOf(c, s.hostname, has("uts"));
  const hostname = s.hostname === undefined ? (has("uts") ? name : undefined) : given;
  const domainname = hostnameOf(c, s.domainname, has("uts"), "domainname");
  const sysctl = sysctlOf(c, s.sysctl, newNamespaces, joinNamespaces);
  const timeOffsets = timeOffsetsOf(c, s.timeOffsets, {
    created: has("time"),
    joined: joinNamespaces.some((j) => j.type === "time"),
  });
  const user = userOf(c, s.user, maps, has("user"));
  const workdir = s.workdir === undefined ? "/" : c.absolute(s.workdir, "workdir") ?? "/";
  const env: Record<string, string> = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/root",
    ...(hostname ? { HOSTNAME: hostname } : {}),
    ...envOf(c, s.env),
  };

  // mounts
  if (!has("mount")) bad("namespaces", 'a rootfs with mounts and pivot_root needs a new mount namespace: add "mount"');
  const devices = devicesOf(c, s.devices);
  const mounts = mountsOf(c, s.mounts);
  mounts.forEach((m, i) => {
    if (!isIdmapped(m)) return;
    const at = `mounts[${i}].options`;
    if (!has("user")) {
      bad(at, 'idmap maps the mount through the container\'s user namespace: add "user" to namespaces');
    } else if (rootless) {
      bad(at, "idmap needs root: the kernel maps a mount only for a caller privileged over its file system");
    }
  });
  const maskedPaths = pathList(c, s.maskedPaths, "maskedPaths") ?? DEFAULT_MASKED_PATHS;
  const readonlyPaths = pathList(c, s.readonlyPaths, "readonlyPaths") ?? DEFAULT_READONLY_PATHS;

  // flags and choices
  const readonlyRootfs = c.boolean(s.readonlyRootfs, "readonlyRootfs") ?? false;
  const rootfsPropagation = c.oneOf(s.rootfsPropagation, "rootfsPropagation", PROPAGATIONS);
  const standardMounts = c.boolean(s.standardMounts, "standardMounts") ?? true;
  const writableSysfs = c.boolean(s.writableSysfs, "writableSysfs") ?? false;
  const writableCgroupfs = c.boolean(s.writableCgroupfs, "writableCgroupfs") ?? false;
  const shm = c.boolean(s.shm, "shm") ?? true;
  const devNoexec = c.boolean(s.devNoexec, "devNoexec") ?? false;
  if (devNoexec && !standardMounts) bad("devNoexec", "needs standardMounts (it is about hako's /dev)");
  if ((writableSysfs || writableCgroupfs) && !standardMounts) {
    bad(writableSysfs ? "writableSysfs" : "writableCgroupfs", "needs standardMounts (it is about their /sys)");
  }
  if (devices.length && !standardMounts) {
    bad("devices", "are made in hako's own /dev, which standardMounts: false leaves out");
  }
  const noNewPrivs = c.boolean(s.noNewPrivs, "noNewPrivs");
  const networkEtc = c.oneOf(s.networkEtc, "networkEtc", ["host", "generate", false] as const);
  const stdio = c.oneOf(s.stdio, "stdio", ["inherit", "null"] as const) ?? "inherit";

  // limits and privileges
  const cgroup = cgroupOf(c, s.cgroup, name ?? "x");
  if (cgroup?.systemd && rootless) {
    // (runc refuses its rootless systemd manager on v1; on v2 it needs the user's own manager)
    bad(
      "cgroup.systemd",
      "a systemd scope is made by root here: a rootless container's cgroup is cgroupfs (a delegated subtree)",
    );
  }
  const { capabilities, capabilitySets, ambientCapabilities } = capabilitiesOf(c, s.capabilities);
  const rlimits = rlimitsOf(c, s.rlimits);
  const argMax = argv.length ? argMaxProblem(argv, env, rlimits) : undefined;
  if (argMax) bad("command", argMax);
  // (without noNewPrivs the filter is loaded before the capabilities go: setup's seccomp-privileged step)
  const seccomp = seccompOf(c, s.seccomp);
  const hooks = hooksOf(c, s.hooks);
  restartOf(c, s.restart);
  readinessOf(c, s.readiness);
  memoryPressureOf(c, s.memoryPressure);
  stopSignalOf(c, s.stopSignal);

  // network
  const network = c.section(s.network, "network", KEYS.network, "an object { loopback, veth, ports }");
  const loopback = c.boolean(network?.loopback, "network.loopback");
  const veth = vethOf(c, network?.veth, has("net"), name ?? "x");
  portsOf(c, network?.ports, veth);

  // Whatever the checks let through must also be what the cgroup code takes (the same code
  // makes the cgroup later): its first objection, if the checks above missed one.
  const cgroupName = cgroup === null
    ? undefined
    : containerCgroupName({ cgroup, name: name ?? "x" } as ContainerSpec, rootless);
  if (problems.length === 0 && cgroup !== null && cgroupName !== undefined) {
    try {
      new Group(cgroupName, containerGroupSpec(cgroup));
    } catch (e) {
      // (only a ConfigError is about the spec; a host without cgroups fails where it is made)
      if (e instanceof ConfigError) c.configError(e, "cgroup");
    }
  }
  // The filter, compiled by the parent once (the child only loads it). Conditional rules
  // (docker's capability groups) see the capabilities the container keeps; the default
  // profile's program is compiled once per set of rules that apply. Root's processes share
  // programs through a cache only root can change (src/seccomp/_cache.ts; HAKO_SECCOMP_CACHE=0: off).
  let seccompProgram: Uint8Array | undefined;
  if (problems.length === 0 && seccomp !== false) {
    try {
      seccompProgram = compileSeccomp(seccomp, { capabilities, cache: true });
    } catch (e) {
      if (e instanceof ConfigError) c.configError(e, "seccomp");
      else if (e instanceof RangeError) bad("seccomp", e.message.replace(/^hako seccomp: /, ""));
      else throw e;
    }
  }

  // init (docker's --init): a static init bound at /dev/init runs the command (see _init.ts)
  const init = resolveInit(s.init, has("mount") && standardMounts, bad);

  if (problems.length) throw new SpecError(problems);
  const netNew = has("net");
  return {
    name: name!,
    argv: init ? initArgv(argv, has("pid")) : argv,
    rootfs: s.rootfs as ContainerSpec["rootfs"],
    rootfsPath,
    env,
    workdir,
    user,
    newNamespaces,
    joinNamespaces,
    uidMap: maps.uidMap,
    gidMap: maps.gidMap,
    hostname,
    ...(domainname !== undefined ? { domainname } : {}),
    sysctl,
    readonlyRootfs,
    ...(rootfsPropagation !== undefined ? { rootfsPropagation } : {}),
    standardMounts,
    writableSysfs,
    writableCgroupfs,
    shm,
    devNoexec,
    mounts,
    devices,
    networkEtc: networkEtc ?? (netNew ? "generate" : "host"),
    maskedPaths,
    readonlyPaths,
    cgroup: cgroup ?? undefined,
    cgroupName,
    capabilities,
    ...(capabilitySets ? { capabilitySets } : {}),
    ambientCapabilities,
    rlimits,
    noNewPrivs: noNewPrivs ?? true,
    seccomp,
    seccompProgram,
    loopback: loopback ?? netNew,
    veth,
    stdio,
    hooks,
    rootless,
    ...(init ? { init } : {}),
    ...(timeOffsets ? { timeOffsets } : {}),
    ...(s.readiness !== undefined ? { readiness: s.readiness as ReadinessSpec } : {}),
    ...(s.memoryPressure !== undefined ? { memoryPressure: s.memoryPressure as MemoryPressureSpec } : {}),
  };
}

/**
 * Checks a spec; see {@link resolveSpec}.
 * @throws {SpecError} Listing every problem with its field path.
 */
export function assertValidSpec(spec: ContainerSpec): void {
  resolveSpec(spec);
}
