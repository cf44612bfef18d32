/**
 * The fields of a container spec, one checker each: what `validate.ts`'s `resolveSpec` calls to
 * check a field and bring it into its resolved form. Each reports every problem it finds through
 * the {@link Checker} (with the field's path) and returns what it could make of the field; none
 * throws for any input (the input is a {@link snapshot}: plain data, bounded).
 *
 * Where a check follows another part of hako (the cgroup controllers' ranges, the mounts step's
 * options) it names it, so a change there is a change here.
 * @module
 */
import { existsSync } from "node:fs";
import { normalize } from "node:path";
import { ConfigError } from "../errors.ts";
import {
  type Cidr,
  hostClashProblem,
  type HostNetwork,
  hostNetworks,
  isPointToPoint,
  linkNameProblem,
  networkOf,
  parseCidr,
  POINT_TO_POINT_PREFIXES,
  sameSubnet,
} from "../network.ts";
import { EVENT_HOOK_NAMES, HOOK_NAMES, hookProblem, readinessProblem } from "./hooks.ts";
import { restartProblem } from "./restart_policy.ts";
import { memoryPressureProblem } from "./memory_pressure.ts";
import { defaultImageRoot, defaultVarDir, imageNameProblem } from "../image/_names.ts";
import { idMapHostProblems, parseAccounts, readHostIdFiles, warnOnce } from "./host_ids.ts";
import { isRunning, StateStore } from "./state.ts";
import { idProblem, NGROUPS_MAX } from "../user.ts";
import { Capability } from "../capability.ts";
import { signalNumber } from "../signals.ts";
import { getrlimit, RLIMITS } from "../rlimit.ts";
import { rawKeyProblem } from "../cgroup/controller.ts";
import { assertValidDeviceRules } from "../cgroup/devices.ts";
import { detect } from "../cgroup/layout.ts";
import { assertValidName as assertValidCgroupName } from "../cgroup/_name.ts";
import { expandSlice, scopeNameProblem } from "../cgroup/systemd.ts";
import { isPageSizeName, parseByteSize, parseCpuList, parseDevice, parseInteger } from "../cgroup/values.ts";
import { DEFAULT_SECCOMP_PROFILE, resolveSeccompProfile, type SeccompProfile } from "../seccomp.ts";
import { assertValidIdMap, type IdMapEntry, NAMESPACE_FLAGS, type NamespaceName } from "../namespace.ts";
import {
  byteLength,
  type Checker,
  closest,
  cStringProblem,
  hasControlChar,
  isRecord,
  keyPath,
  MAX_ARG_STRLEN,
  type Obj,
  show,
  unknownKeys,
} from "./_spec_shape.ts";
import {
  type CapabilityChanges,
  type CapabilitySets,
  type ContainerSpec,
  DEFAULT_CAPABILITIES,
  DEFAULT_NAMESPACES,
  type DeviceNode,
  type HooksSpec,
  type MountSpec,
  PROPAGATIONS,
} from "./spec.ts";
import { IDMAP_OPTIONS } from "./_plain_mount.ts";
import type { ResolvedVeth } from "./validate.ts";

/**
 * The keys of each section, as the spec's types have them: a compile-time check below makes a
 * field added to a type (and not here) an error, so the types and the checks cannot drift apart.
 */
export const KEYS = {
  idMap: ["uid", "gid", "allowHostIds"],
  user: ["uid", "gid", "groups"],
  owner: ["uid", "gid"],
  mount: ["type", "source", "target", "options", "readonly"],
  device: ["path", "type", "major", "minor", "fileMode"],
  cgroup: ["cpu", "cpuset", "memory", "pids", "io", "hugetlb", "devices", "raw", "name", "parent", "systemd"],
  systemd: ["slice", "unit"],
  cpu: ["quotaUs", "periodUs", "weight", "shares"],
  cpuset: ["cpus", "mems"],
  memory: ["limit", "swap"],
  pids: ["max"],
  io: ["weight", "readBps", "writeBps", "readIops", "writeIops"],
  capabilities: ["add", "drop"],
  capabilitySets: ["bounding", "effective", "permitted", "inheritable", "ambient"],
  network: ["loopback", "veth", "ports"],
  port: ["containerPort", "hostPort", "hostIp", "protocol"],
  veth: ["host", "container", "hostAddress", "containerAddress", "allowWidePrefix"],
  seccomp: ["defaultAction", "defaultErrno", "unknownSyscalls", "architectures", "syscalls"],
  seccompRule: ["names", "action", "errno", "args", "includes", "excludes"],
  seccompArg: ["index", "op", "value", "valueTwo", "width"],
  seccompCondition: ["caps", "arches", "minKernel"],
  timeOffsets: ["monotonic", "boottime"],
} as const;

/** True when `K` names exactly the keys of `T`. */
type Exactly<T, K extends readonly string[]> = [Exclude<keyof T, K[number]>, Exclude<K[number], keyof T>] extends
  [never, never] ? true : false;
type Cgroup = NonNullable<ContainerSpec["cgroup"]>;
type Rule = SeccompProfile["syscalls"][number];
/** Compile-time only: each line fails to type-check when a type and its key list differ. */
/** The names a tarball rootfs may have (its compression is read from its first bytes). */
export const TARBALL_NAME: RegExp = /\.(tar|tar\.gz|tgz|tar\.zst|tzst|tar\.xz|txz)$/;

const _keysMatchTheTypes: readonly true[] = [
  true as Exactly<NonNullable<ContainerSpec["idMap"]>, typeof KEYS.idMap>,
  true as Exactly<NonNullable<ContainerSpec["user"]>, typeof KEYS.user>,
  true as Exactly<NonNullable<Extract<ContainerSpec["rootfs"], { owner?: unknown }>["owner"]>, typeof KEYS.owner>,
  true as Exactly<MountSpec, typeof KEYS.mount>,
  true as Exactly<Cgroup, typeof KEYS.cgroup>,
  true as Exactly<NonNullable<Cgroup["systemd"]>, typeof KEYS.systemd>,
  true as Exactly<NonNullable<Cgroup["cpu"]>, typeof KEYS.cpu>,
  true as Exactly<NonNullable<Cgroup["cpuset"]>, typeof KEYS.cpuset>,
  true as Exactly<NonNullable<Cgroup["memory"]>, typeof KEYS.memory>,
  true as Exactly<NonNullable<Cgroup["pids"]>, typeof KEYS.pids>,
  true as Exactly<NonNullable<Cgroup["io"]>, typeof KEYS.io>,
  true as Exactly<CapabilityChanges, typeof KEYS.capabilities>,
  true as Exactly<CapabilitySets, typeof KEYS.capabilitySets>,
  // (and the capabilities field is exactly a list, the changes or the sets)
  true as ([NonNullable<ContainerSpec["capabilities"]>] extends [readonly string[] | CapabilityChanges | CapabilitySets]
    ? [readonly string[] | CapabilityChanges | CapabilitySets] extends [NonNullable<ContainerSpec["capabilities"]>]
      ? true
    : false
    : false),
  true as Exactly<NonNullable<ContainerSpec["network"]>, typeof KEYS.network>,
  true as Exactly<NonNullable<NonNullable<ContainerSpec["network"]>["veth"]>, typeof KEYS.veth>,
  true as Exactly<NonNullable<NonNullable<ContainerSpec["network"]>["ports"]>[number], typeof KEYS.port>,
  true as Exactly<SeccompProfile, typeof KEYS.seccomp>,
  true as Exactly<Rule, typeof KEYS.seccompRule>,
  true as Exactly<NonNullable<Rule["args"]>[number], typeof KEYS.seccompArg>,
  true as Exactly<NonNullable<Rule["includes"]>, typeof KEYS.seccompCondition>,
  true as Exactly<NonNullable<ContainerSpec["timeOffsets"]>, typeof KEYS.timeOffsets>,
];
void _keysMatchTheTypes;

/** A container's name: also its hostname, its cgroup's and its state directory's. */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const SHELL_META = /[*?{}[\]<>()~&|\\$;'`"\n#=%]/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The kernel's limit on one id map (since Linux 4.15). */
const MAX_ID_MAP_ENTRIES = 340;

/**
 * The most bytes of argv and envp execve(2) ever takes: a quarter of the stack rlimit, capped at
 * three quarters of `_STK_LIM` (fs/exec.c), with each string's NUL and pointer counted.
 */
const ARG_MAX_CEILING = 6 * 1024 * 1024;

/** The longest cgroup name: with a hierarchy's mount point and a control file's name it stays under PATH_MAX. */
const MAX_CGROUP_NAME = 3900;

let cgroupNamespaces: boolean | undefined;
/** {@link DEFAULT_NAMESPACES}, less the cgroup namespace on a kernel that has none. */
function defaultNamespaces(): readonly NamespaceName[] {
  cgroupNamespaces ??= existsSync("/proc/self/ns/cgroup");
  return cgroupNamespaces ? DEFAULT_NAMESPACES : DEFAULT_NAMESPACES.filter((n) => n !== "cgroup");
}

let cgroupV1: boolean | undefined;
/** True when the host's memory controller is on cgroup v1 (a hybrid host too); false when unknown. */
function memoryOnV1(): boolean {
  if (cgroupV1 === undefined) {
    try {
      const l = detect();
      cgroupV1 = l.version === 1 && Object.hasOwn(l.v1, "memory");
    } catch {
      cgroupV1 = false;
    }
  }
  return cgroupV1;
}

/**
 * The default host-side veth name for a container: `hk-` + 8 hex digits of the name's FNV-1a hash
 * + `-h` (13 bytes: under the 15-byte limit, and unique enough for containers run side by side).
 */
export function defaultVethHostName(name: string): string {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(name)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return `hk-${h.toString(16).padStart(8, "0")}-h`;
}

/** The container's name, or undefined (reported). */
export function nameOf(c: Checker, value: unknown): string | undefined {
  if (typeof value === "string" && NAME.test(value)) return value;
  c.bad(
    "name",
    `must be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit, got ${show(value)}`,
  );
  return undefined;
}

/** The namespaces to make and to join (a joined one by its path; a container's name looked up). */
export function namespacesOf(
  c: Checker,
  value: unknown,
): { newNamespaces: NamespaceName[]; joinNamespaces: { type: NamespaceName; path: string }[] } {
  const { bad } = c;
  const newNamespaces: NamespaceName[] = [];
  const joinNamespaces: { type: NamespaceName; path: string }[] = [];
  const namespaces = value === undefined
    ? defaultNamespaces()
    : c.array(value, "namespaces", 'an array of namespace names ("pid", "net"…) or { type, join }') ??
      defaultNamespaces();
  namespaces.forEach((n, i) => {
    const at = `namespaces[${i}]`;
    const entry = typeof n === "string"
      ? undefined
      : c.section(n, at, ["type", "join"], "a namespace name or { type, join }", true);
    if (typeof n !== "string" && !entry) return;
    const type = typeof n === "string" ? n : entry!.type;
    if (typeof type !== "string" || !Object.hasOwn(NAMESPACE_FLAGS, type)) {
      const near = typeof type === "string" ? closest(type, Object.keys(NAMESPACE_FLAGS)) : undefined;
      bad(
        typeof n === "string" ? at : `${at}.type`,
        `unknown namespace ${show(type)} (${near ? `did you mean ${JSON.stringify(near)}? ` : ""}one of ${
          Object.keys(NAMESPACE_FLAGS).join(", ")
        })`,
      );
      return;
    }
    const t = type as NamespaceName;
    if ([...newNamespaces, ...joinNamespaces.map((j) => j.type)].includes(t)) {
      bad(at, `${t} is listed twice`);
      return;
    }
    if (typeof n === "string") {
      newNamespaces.push(t);
      return;
    }
    const join = entry!.join;
    if (typeof join !== "string" || join === "") {
      bad(`${at}.join`, `must be a namespace file (/proc/PID/ns/…) or a running container's name, got ${show(join)}`);
      return;
    }
    let path: string;
    if (join.includes("/")) {
      if (c.absolute(join, `${at}.join`) === undefined) return;
      path = join;
    } else {
      // A container's name: its init's namespace, if it runs (pid and start time checked).
      if (!NAME.test(join)) {
        bad(`${at}.join`, `is neither an absolute path nor a container's name: ${show(join)}`);
        return;
      }
      let pid: number | undefined;
      try {
        const r = new StateStore().tryRead(join);
        if (r?.init && isRunning(r.init)) pid = r.init.pid;
      } catch (e) {
        bad(`${at}.join`, `cannot look up container ${join}: ${e instanceof Error ? e.message : show(e)}`);
        return;
      }
      if (pid === undefined) {
        bad(`${at}.join`, `no running container named ${join}`);
        return;
      }
      path = `/proc/${pid}/ns/${t === "mount" ? "mnt" : t}`;
    }
    joinNamespaces.push({ type: t, path });
  });
  return { newNamespaces, joinNamespaces };
}

/**
 * The uid and gid maps (the gid map defaults to the uid map's; a rootless caller without an idMap
 * gets its own ids as root inside), checked for shape, overlaps, and against the host's accounts
 * and `/etc/subuid`, `/etc/subgid` (see host_ids.ts). `ok` is false when a map has problems.
 */
export function idMapsOf(
  c: Checker,
  value: unknown,
  userns: boolean,
  caller: { readonly euid: number; readonly egid: number },
): { uidMap: readonly IdMapEntry[]; gidMap: readonly IdMapEntry[]; ok: boolean } {
  const { bad } = c;
  const idMap = c.section(value, "idMap", KEYS.idMap, "an object { uid, gid, allowHostIds }");
  // (null: the map has problems, reported)
  const givenUid = idMapOf(c, idMap?.uid, "idMap.uid");
  const givenGid = idMapOf(c, idMap?.gid, "idMap.gid");
  let uidMap = givenUid ?? [];
  let gidMap = givenGid === undefined ? uidMap : givenGid ?? [];
  const { euid, egid } = caller;
  const rootless = euid !== 0;
  if (rootless && userns && idMap?.uid === undefined && idMap?.gid === undefined) {
    uidMap = [{ inside: 0, outside: euid, size: 1 }];
    gidMap = [{ inside: 0, outside: egid, size: 1 }];
  }
  let ok = givenUid !== null && givenGid !== null;
  for (const [kind, map] of [["uid", uidMap], ["gid", gidMap]] as const) {
    ok = c.config(`idMap.${kind}`, () => assertValidIdMap(map, `idMap.${kind}`)) && ok;
  }
  const allowHostIds = c.boolean(idMap?.allowHostIds, "idMap.allowHostIds");
  if (ok && (uidMap.length || gidMap.length)) {
    const files = readHostIdFiles();
    const user = parseAccounts(files.passwd ?? "").find((a) => a.id === euid)?.name;
    for (
      const [kind, map, accounts, subIds, id] of [
        ["uid", uidMap, files.passwd, files.subuid, euid],
        ["gid", gidMap, files.group, files.subgid, egid],
      ] as const
    ) {
      const who = { user, uid: euid, id };
      for (
        const p of idMapHostProblems({
          kind,
          map,
          accounts,
          subIds,
          caller: who,
          rootless,
          allowHostIds: !!allowHostIds,
        })
      ) {
        if (p.severity === "error") bad(p.path, p.message);
        else warnOnce(`${p.path}: ${p.message}`);
      }
    }
  }
  if ((uidMap.length || gidMap.length) && !userns) bad("idMap", 'needs a new user namespace: add "user" to namespaces');
  if (userns && !uidMap.length && givenUid !== null) {
    bad("idMap.uid", "a new user namespace needs a uid map (e.g. { inside: 0, outside: 100000, size: 65536 })");
  }
  return { uidMap, gidMap, ok };
}

/** The hostname given (1-64 bytes, no '/' or control character), or undefined (absent, or reported). */
export function hostnameOf(
  c: Checker,
  value: unknown,
  uts: boolean,
  field: "hostname" | "domainname" = "hostname",
): string | undefined {
  const { bad } = c;
  if (value === undefined) return undefined;
  if (!uts) bad(field, 'needs a new UTS namespace: add "uts" to namespaces');
  if (typeof value !== "string") bad(field, `must be a string, got ${show(value)}`);
  else if (value === "" || byteLength(value) > 64) bad(field, "must be 1-64 bytes");
  // (the kernel takes any bytes; a '/' or a control character only breaks what reads the name)
  else if (value.includes("/") || hasControlChar(value)) {
    bad(field, `must not contain '/' or control characters, got ${show(value)}`);
  } else return value;
  return undefined;
}

/** The largest time-namespace offset, in seconds: the kernel's KTIME_SEC_MAX / 2 (kernel/time/namespace.c). */
export const MAX_TIME_OFFSET_SECS = 4_611_686_018;

/**
 * The time namespace's clock offsets (whole seconds; both clocks always written, 0 when absent),
 * or undefined without `timeOffsets`. They need a new time namespace: a joined one's offsets are
 * fixed since a process entered it.
 */
export function timeOffsetsOf(
  c: Checker,
  value: unknown,
  time: { readonly created: boolean; readonly joined: boolean },
): { monotonic: number; boottime: number } | undefined {
  const { bad } = c;
  const o = c.section(value, "timeOffsets", KEYS.timeOffsets, "an object { monotonic, boottime } of seconds");
  if (!o) return undefined;
  if (time.joined) bad("timeOffsets", "a joined time namespace keeps its own offsets: give them to a new one only");
  else if (!time.created) bad("timeOffsets", 'needs a new time namespace: add "time" to namespaces');
  const out = { monotonic: 0, boottime: 0 };
  for (const clock of KEYS.timeOffsets) {
    const v = o[clock];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v)) {
      bad(`timeOffsets.${clock}`, `must be a whole number of seconds, got ${show(v)}`);
    } else if (Math.abs(v) > MAX_TIME_OFFSET_SECS) {
      bad(`timeOffsets.${clock}`, `must be within ±${MAX_TIME_OFFSET_SECS} seconds (the kernel's limit), got ${v}`);
    } else out[clock] = v;
  }
  return out;
}

/** Who the command runs as: ids in range, groups at most NGROUPS_MAX, all mapped in a user namespace. */
export function userOf(
  c: Checker,
  value: unknown,
  maps: { readonly uidMap: readonly IdMapEntry[]; readonly gidMap: readonly IdMapEntry[]; readonly ok: boolean },
  userns: boolean,
): { uid: number; gid: number; groups: number[] } {
  const { bad } = c;
  const u = c.section(value, "user", KEYS.user, "an object { uid, gid, groups }");
  if (u && u.uid === undefined) bad("user.uid", "is required in user (0 for root)");
  const user = {
    uid: (u?.uid ?? 0) as number,
    gid: (u?.gid ?? u?.uid ?? 0) as number,
    groups: (u?.groups ?? []) as number[],
  };
  for (const k of ["uid", "gid"] as const) {
    const problem = u === undefined ? undefined : idProblem(user[k]);
    if (problem) bad(`user.${k}`, problem);
  }
  if (!Array.isArray(user.groups)) {
    bad("user.groups", `must be an array of group ids, got ${show(user.groups)}`);
    user.groups = [];
  } else if (user.groups.length > NGROUPS_MAX) {
    bad("user.groups", `has more than ${NGROUPS_MAX} groups`);
    user.groups = [];
  } else {
    user.groups.forEach((g, i) => {
      const problem = idProblem(g);
      if (problem) bad(`user.groups[${i}]`, problem);
    });
  }
  if (userns && maps.ok) {
    const inside = (id: number, map: readonly IdMapEntry[]) =>
      map.some((e) => id >= e.inside && id < e.inside + e.size);
    if (Number.isInteger(user.uid) && !inside(user.uid, maps.uidMap)) {
      bad("user.uid", `${user.uid} is not mapped by idMap.uid`);
    }
    if (Number.isInteger(user.gid) && !inside(user.gid, maps.gidMap)) {
      bad("user.gid", `${user.gid} is not mapped by idMap.gid`);
    }
    user.groups.forEach((g, i) => {
      if (Number.isInteger(g) && !inside(g, maps.gidMap)) bad(`user.groups[${i}]`, `${g} is not mapped by idMap.gid`);
    });
  }
  return user;
}

/** The spec's environment: valid names, string values, each `NAME=value` under MAX_ARG_STRLEN. */
export function envOf(c: Checker, value: unknown): Record<string, string> {
  const { bad } = c;
  const env: Record<string, string> = {};
  const e = c.record(value, "env", "an object of variable names to string values");
  for (const [k, v] of Object.entries(e ?? {})) {
    const at = keyPath("env", k);
    if (!ENV_NAME.test(k)) bad(at, "is not a valid variable name");
    else if (typeof v !== "string") bad(at, `must be a string, got ${show(v)}`);
    else {
      const problem = cStringProblem(`${k}=${v}`, MAX_ARG_STRLEN);
      if (problem) bad(at, problem.replace(/^is/, "with its name is"));
      // (an own key, whatever its name: `__proto__` is a variable like any other)
      else Object.defineProperty(env, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }
  return env;
}

/**
 * What is wrong with argv and envp together as execve takes them (their strings, NULs and
 * pointers under a quarter of the stack rlimit), or undefined.
 */
export function argMaxProblem(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  rlimits: NonNullable<ContainerSpec["rlimits"]>,
): string | undefined {
  const strings = [...argv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)];
  const total = strings.reduce((n, x) => n + byteLength(x) + 1 + 8, 0);
  const limit = Math.max(32 * 4096, Math.min(ARG_MAX_CEILING, stackLimit(rlimits) / 4));
  if (total <= limit) return undefined;
  return `with the environment is ${total} bytes (argv and envp strings, NULs and pointers): execve takes at most ${limit} (a quarter of the stack rlimit, at most ${ARG_MAX_CEILING})`;
}

/** The seccomp profile (`"default"` resolved, docker's / OCI's converted), or false for none. */
export function seccompOf(c: Checker, value: unknown): SeccompProfile | false {
  if (value === false) return false;
  if (value === undefined || value === "default") return DEFAULT_SECCOMP_PROFILE;
  if (!isRecord(value)) {
    c.bad(
      "seccomp",
      `must be false, "default" or a profile { defaultAction, syscalls } (hako's, or docker's / OCI's), got ${
        show(value)
      }`,
    );
    return DEFAULT_SECCOMP_PROFILE;
  }
  if (!seccompShape(c, value)) return DEFAULT_SECCOMP_PROFILE;
  // hako's format, or docker's / OCI's (a "SCMP_ACT_…" default action), converted.
  const { profile, problems } = resolveSeccompProfile(value as unknown as SeccompProfile, "seccomp");
  for (const p of problems) c.bad(p.path, p.message);
  return profile ?? DEFAULT_SECCOMP_PROFILE;
}

/** The hooks, each a callback, an argv array or a command string (see hooks.ts). */
export function hooksOf(c: Checker, value: unknown): HooksSpec {
  const { bad } = c;
  const hooks: Record<string, unknown> = {};
  if (value === undefined) return hooks;
  if (!isRecord(value)) {
    bad(
      "hooks",
      `must be an object { bootstrap?, provision?, beforeStart?, afterStop?, onStarted?, … }, got ${show(value)}`,
    );
    return hooks;
  }
  const names = [...HOOK_NAMES, ...EVENT_HOOK_NAMES];
  for (const [k, v] of Object.entries(value)) {
    const at = keyPath("hooks", k);
    if (!(names as readonly string[]).includes(k)) {
      const near = closest(k, names);
      bad(at, `is not a hook (${near ? `did you mean ${JSON.stringify(near)}? ` : ""}one of ${names.join(", ")})`);
      continue;
    }
    const problem = hookProblem(v) ?? hookStringsProblem(v);
    if (problem) bad(at, problem);
    else hooks[k] = v;
  }
  return hooks as HooksSpec;
}

/** The command as argv: an array as given, a string split on spaces or run by `/bin/sh -c`. */
export function commandOf(c: Checker, value: unknown): string[] {
  const { bad } = c;
  if (typeof value === "string") {
    if (value.trim() === "") {
      bad("command", "is empty");
      return [];
    }
    const problem = cStringProblem(value, MAX_ARG_STRLEN);
    if (problem) {
      bad("command", problem);
      return [];
    }
    return SHELL_META.test(value) ? ["/bin/sh", "-c", value] : value.trim().split(/\s+/);
  }
  if (!Array.isArray(value) || value.length === 0) {
    bad("command", `must be a non-empty argv array or a command string, got ${show(value)}`);
    return [];
  }
  let ok = true;
  value.forEach((a, i) => {
    if (typeof a !== "string") {
      bad(`command[${i}]`, `must be a string, got ${show(a)}`);
      ok = false;
      return;
    }
    const problem = i === 0 && a === ""
      ? "must not be empty: it names the program to run"
      : cStringProblem(a, MAX_ARG_STRLEN);
    if (problem) {
      bad(`command[${i}]`, problem);
      ok = false;
    }
  });
  return ok ? [...value as string[]] : [];
}

/**
 * The rootfs's directory, its form checked (a path, { path }, { tarball, path, owner? },
 * { builder, path }, { image, path? }); `name` is the container's, for an image's default path.
 */
export function rootfsOf(c: Checker, r: unknown, name = ""): string {
  const { bad } = c;
  if (isRecord(r) && Object.hasOwn(r, "image")) return imageRootfsOf(c, r, name);
  if (typeof r === "string") {
    const path = c.absolute(r, "rootfs");
    if (path !== undefined && normalize(path) === "/") bad("rootfs", "must not be the host's / itself");
    return path ?? "";
  }
  if (!isRecord(r)) {
    bad(
      "rootfs",
      `is required: a directory, { tarball, path }, { builder, path } or { image }${
        r === undefined ? "" : `, got ${show(r)}`
      }`,
    );
    return "";
  }
  const tarball = Object.hasOwn(r, "tarball"), builder = Object.hasOwn(r, "builder");
  if (tarball && builder) bad("rootfs", "give a tarball or a builder, not both");
  const known = tarball ? ["tarball", "path", "owner"] : builder ? ["builder", "path"] : ["path"];
  for (const k of Object.keys(r)) {
    if (known.includes(k)) continue;
    if (k === "owner") bad("rootfs.owner", "goes with rootfs.tarball (the owner its files are shifted to)");
    else if (!(tarball && builder && (k === "tarball" || k === "builder"))) {
      unknownKeys({ [k]: undefined }, "rootfs", ["tarball", "path", "owner", "builder"], bad);
    }
  }
  const path = c.absolute(r.path, "rootfs.path");
  if (path !== undefined && normalize(path) === "/") bad("rootfs", "must not be the host's / itself");
  if (tarball) {
    const t = r.tarball;
    if (typeof t !== "string" || !TARBALL_NAME.test(t)) {
      bad("rootfs.tarball", `must be a .tar, .tar.gz/.tgz, .tar.zst/.tzst or .tar.xz/.txz path, got ${show(t)}`);
    } else c.string(t, "rootfs.tarball");
    const owner = c.section(r.owner, "rootfs.owner", KEYS.owner, "an object { uid, gid }");
    if (owner) {
      if (owner.uid === undefined) bad("rootfs.owner.uid", "is required in rootfs.owner");
      for (const k of ["uid", "gid"] as const) {
        const problem = owner[k] === undefined ? undefined : idProblem(owner[k]);
        if (problem) bad(`rootfs.owner.${k}`, problem);
      }
    }
  }
  if (builder) c.oneOf(r.builder, "rootfs.builder", ["busybox", "host", "auto"]);
  return path ?? "";
}

/** `rootfs: { image, path? }`: an image name (as docker's) and where its writable layer is mounted. */
function imageRootfsOf(c: Checker, r: Record<string, unknown>, name: string): string {
  for (const k of Object.keys(r)) {
    if (k !== "image" && k !== "path") unknownKeys({ [k]: undefined }, "rootfs", ["image", "path"], c.bad);
  }
  const image = r.image;
  if (typeof image !== "string" || image === "") {
    c.bad("rootfs.image", `must be an image's name (NAME[:TAG]) or ID, got ${show(image)}`);
  } else if (!/^(sha256:)?[a-f0-9]{4,64}$/.test(image)) {
    const problem = imageNameProblem(image);
    if (problem) c.bad("rootfs.image", problem);
  }
  if (r.path === undefined) return name ? defaultImageRoot(defaultVarDir(), name) : "";
  const path = c.absolute(r.path, "rootfs.path");
  if (path !== undefined && normalize(path) === "/") c.bad("rootfs", "must not be the host's / itself");
  return path ?? "";
}

/**
 * One id map (a range or a list of ranges, each `{ inside, outside, size }` or `{ min, max, offset }`):
 * undefined when absent, null when it has problems (reported).
 */
function idMapOf(c: Checker, value: unknown, path: string): IdMapEntry[] | undefined | null {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  if (list.length > MAX_ID_MAP_ENTRIES) {
    c.bad(path, `has ${list.length} ranges: the kernel takes at most ${MAX_ID_MAP_ENTRIES}`);
    return null;
  }
  const out: IdMapEntry[] = [];
  let ok = true;
  list.forEach((r, i) => {
    const at = Array.isArray(value) ? `${path}[${i}]` : path;
    if (!isRecord(r)) {
      c.bad(at, `must be a range { inside, outside, size } (or { min, max, offset }), got ${show(r)}`);
      ok = false;
      return;
    }
    // haconiwa writes "min offset max" to uid_map, so its `max` is really a count; we take the
    // reading a user means (min..max inclusive) and say so in the docs.
    const haconiwa = ["min", "max", "offset"].some((k) => Object.hasOwn(r, k));
    const keys = haconiwa ? ["min", "max", "offset"] : ["inside", "outside", "size"];
    const before = c.problems.length;
    unknownKeys(r, at, keys, c.bad);
    for (const k of keys) {
      const v = r[k];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        c.bad(`${at}.${k}`, `must be an integer in 0..4294967295, got ${show(v)}`);
      }
    }
    if (haconiwa && c.problems.length === before && (r.max as number) < (r.min as number)) {
      c.bad(`${at}.max`, `must be at least min (${r.min}): the range is min..max, inclusive`);
    }
    if (c.problems.length !== before) {
      ok = false;
      return;
    }
    out.push(
      haconiwa
        ? { inside: r.min as number, outside: r.offset as number, size: (r.max as number) - (r.min as number) + 1 }
        : { inside: r.inside as number, outside: r.outside as number, size: r.size as number },
    );
  });
  return ok ? out : null;
}

/** The extra mounts, each checked. */
export function mountsOf(c: Checker, value: unknown): MountSpec[] {
  const { bad } = c;
  const list = c.array(value, "mounts", "an array of mounts { type, target, source?, options?, readonly? }");
  if (!list) return [];
  const out: MountSpec[] = [];
  list.forEach((m, i) => {
    const at = `mounts[${i}]`;
    const before = c.problems.length;
    const o = c.section(
      m,
      at,
      KEYS.mount,
      "a mount { type, target, … }",
      true,
    );
    if (!o) return;
    if (o.target === undefined) bad(`${at}.target`, "is required: the absolute path inside the container");
    else {
      const target = c.absolute(o.target, `${at}.target`);
      if (target !== undefined && target.split("/").includes("..")) bad(`${at}.target`, "must not contain '..'");
    }
    const type = o.type;
    if (typeof type !== "string" || type === "") bad(`${at}.type`, 'must be a filesystem type or "bind"');
    // (no filesystem type has a space, a comma or a control character)
    else if (/[\s,]/.test(type) || hasControlChar(type) || type.length > 255) {
      bad(`${at}.type`, `must be a filesystem type like "tmpfs" (see /proc/filesystems) or "bind", got ${show(type)}`);
    }
    if (type === "bind") c.absolute(o.source, `${at}.source`);
    else if (o.source !== undefined) c.string(o.source, `${at}.source`);
    c.boolean(o.readonly, `${at}.readonly`);
    if (typeof o.options === "string") {
      bad(
        `${at}.options`,
        `must be an array of strings, one option each (["${
          o.options.split(",").slice(0, 3).join('", "')
        }"]), not a string`,
      );
    } else {
      const options = c.array(o.options, `${at}.options`, 'an array of strings (["ro", "nosuid", "size=64m"])');
      let data = 0;
      options?.forEach((opt, j) => {
        const p = `${at}.options[${j}]`;
        const s = c.string(opt, p, { max: 4096 });
        if (s === undefined) return;
        // (a tmpfs mpol's node list has commas of its own: the kernel parses those)
        if (s.includes(",") && !s.startsWith("mpol=")) {
          bad(p, `must be one option: split ${show(s)} into ${JSON.stringify(s.split(","))}`);
        } else if (s === "tmpcopyup" && type !== "tmpfs") {
          bad(p, `tmpcopyup copies the target's files into a new tmpfs: only for a tmpfs, not ${show(type)}`);
        } else if (type === "bind" && !BIND_OPTIONS.has(s)) {
          bad(
            p,
            `${show(s)} would be ignored on a bind mount (it takes ${
              [...BIND_OPTIONS].join(", ")
            }; the readonly field too)`,
          );
        } else data += byteLength(s) + 1;
      });
      // The kernel copies one page of mount data.
      if (data > 4096) bad(`${at}.options`, `are ${data} bytes together: the kernel takes one page (4096)`);
    }
    if (c.problems.length === before) out.push(o as unknown as MountSpec);
  });
  return out;
}

/** The paths under /dev that hako makes itself (nodes, and the console a terminal is bound on). */
const OWN_DEV_PATHS = [
  "/dev/null",
  "/dev/zero",
  "/dev/full",
  "/dev/random",
  "/dev/urandom",
  "/dev/tty",
  "/dev/console",
];
/**
 * Mounts of their own under /dev and the links hako makes there (setup.ts's DEV_LINKS): a node
 * there would be hidden, land in a mount, or go through a link into /proc.
 */
const DEV_MOUNTS = [
  "/dev/pts",
  "/dev/shm",
  "/dev/mqueue",
  "/dev/ptmx",
  "/dev/fd",
  "/dev/stdin",
  "/dev/stdout",
  "/dev/stderr",
  "/dev/core",
];

/**
 * The spec's device nodes (`devices`): each under /dev, normalized, not a path hako makes itself
 * (a default device, /dev/ptmx) or one of its mounts there; numbers for "c", "b" and "u", none for
 * "p"; permission bits only.
 */
export function devicesOf(c: Checker, value: unknown): DeviceNode[] {
  const { bad } = c;
  const list = c.array(value, "devices", "an array of device nodes { path, type, major, minor, fileMode? }");
  if (!list) return [];
  const out: DeviceNode[] = [];
  const seen = new Set<string>();
  list.forEach((d, i) => {
    const at = `devices[${i}]`;
    const before = c.problems.length;
    const o = c.section(d, at, KEYS.device, "a device node { path, type, major, minor }", true);
    if (!o) return;
    const path = c.absolute(o.path, `${at}.path`);
    if (path !== undefined) {
      if (path !== normalize(path) || path.endsWith("/") || !path.startsWith("/dev/")) {
        bad(`${at}.path`, `must be a normalized path under /dev, got ${show(path)}`);
      } else if (OWN_DEV_PATHS.includes(path) || DEV_MOUNTS.some((m) => path === m || path.startsWith(`${m}/`))) {
        bad(`${at}.path`, `${path} is hako's own (a default device, the console, or a mount or link of its own there)`);
      } else if (seen.has(path)) bad(`${at}.path`, `${path} is given twice`);
      else seen.add(path);
    }
    if (!["c", "b", "u", "p"].includes(o.type as string)) {
      bad(`${at}.type`, `must be "c", "b", "u" or "p", got ${show(o.type)}`);
    }
    for (const k of ["major", "minor"] as const) {
      const v = o[k];
      if (o.type === "p") {
        if (v !== undefined && v !== 0) bad(`${at}.${k}`, "a FIFO has no device numbers");
      } else if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > (k === "major" ? 0xfff : 0xfffff)) {
        bad(`${at}.${k}`, `must be a whole number 0..${k === "major" ? 4095 : 1048575}, got ${show(v)}`);
      }
    }
    if (
      o.fileMode !== undefined &&
      (!Number.isSafeInteger(o.fileMode) || (o.fileMode as number) < 0 || (o.fileMode as number) > 0o777)
    ) {
      bad(`${at}.fileMode`, `must be permission bits 0..0o777, got ${show(o.fileMode)}`);
    }
    if (c.problems.length === before) out.push(o as unknown as DeviceNode);
  });
  return out;
}

/** The options a bind mount honours (see the mounts step in setup.ts): the rest would be ignored there. */
const BIND_OPTIONS = new Set([
  "ro",
  "rw",
  "bind",
  "rbind",
  "norbind",
  "nosuid",
  "nodev",
  "noexec",
  ...PROPAGATIONS,
  ...IDMAP_OPTIONS,
]);

/** A list of absolute paths, or undefined (absent, or reported). */
export function pathList(c: Checker, value: unknown, path: string): string[] | undefined {
  const list = c.array(value, path, "an array of absolute paths");
  if (!list) return undefined;
  const out = list.map((p, i) => c.absolute(p, `${path}[${i}]`));
  return out.every((p) => p !== undefined) ? out as string[] : [];
}

/**
 * The cgroup section, checked with the controllers' own ranges (`src/cgroup/cpu.ts`, `memory.ts`,
 * `pids.ts`, `io.ts`, `cpuset.ts`): the section (undefined when absent), or null when it has
 * problems.
 */
export function cgroupOf(c: Checker, value: unknown, name: string): Obj | undefined | null {
  const { bad } = c;
  if (value === undefined) return undefined;
  const before = c.problems.length;
  const cg = c.section(
    value,
    "cgroup",
    KEYS.cgroup,
    "an object of limits { cpu, memory, pids, … }",
  );
  if (!cg) return null;
  // A number, or "max" where no limit is allowed; a string only where the type says so.
  const limit = (v: unknown, path: string, range: Parameters<typeof parseInteger>[2]) => {
    if (v === undefined) return;
    if (typeof v !== "number" && !(v === "max" && (range.unlimited ?? true))) {
      bad(path, `must be a number${(range.unlimited ?? true) ? ' or "max"' : ""}, got ${show(v)}`);
      return;
    }
    c.config(path, () => void parseInteger(v, path, range));
  };
  const cpu = c.section(cg.cpu, "cgroup.cpu", KEYS.cpu, "an object { quotaUs, periodUs, weight, shares }");
  if (cpu) {
    limit(cpu.quotaUs, "cgroup.cpu.quotaUs", { min: 1000, unit: "microseconds" });
    limit(cpu.periodUs, "cgroup.cpu.periodUs", { min: 1000, max: 1_000_000, unit: "microseconds", unlimited: false });
    limit(cpu.weight, "cgroup.cpu.weight", { min: 1, max: 10000, unlimited: false });
    limit(cpu.shares, "cgroup.cpu.shares", { min: 2, max: 262144, unlimited: false });
    if (cpu.weight !== undefined && cpu.shares !== undefined) {
      bad("cgroup.cpu.shares", "give weight (v2 units) or shares (v1 units), not both: one is converted to the other");
    }
  }
  const cpuset = c.section(cg.cpuset, "cgroup.cpuset", KEYS.cpuset, "an object { cpus, mems }");
  for (const k of ["cpus", "mems"] as const) {
    const v = cpuset?.[k];
    if (v === undefined) continue;
    if (typeof v !== "string") bad(`cgroup.cpuset.${k}`, `must be a list like "0-3,6", got ${show(v)}`);
    else c.config(`cgroup.cpuset.${k}`, () => void parseCpuList(v, `cgroup.cpuset.${k}`));
  }
  const memory = c.section(cg.memory, "cgroup.memory", KEYS.memory, "an object { limit, swap }");
  for (const k of ["limit", "swap"] as const) {
    const v = memory?.[k];
    if (v === undefined) continue;
    const path = `cgroup.memory.${k}`;
    if (typeof v !== "number" && typeof v !== "string") {
      bad(path, `must be a number of bytes or a size like "256M", got ${show(v)}`);
    } else {
      c.config(path, () => {
        const n = parseByteSize(v, path);
        if (k === "limit" && n === 0) {
          throw new ConfigError(path, 'must be more than 0 bytes (-1 or "max" for no limit)');
        }
      });
    }
  }
  if (memory?.swap !== undefined && memory.limit === undefined && memoryOnV1()) {
    bad("cgroup.memory.swap", "on cgroup v1 needs limit as well: memory.memsw.limit_in_bytes counts memory + swap");
  }
  const pids = c.section(cg.pids, "cgroup.pids", KEYS.pids, "an object { max }");
  limit(pids?.max, "cgroup.pids.max", { min: 1, unit: "tasks" });
  const io = c.section(cg.io, "cgroup.io", KEYS.io, "an object { weight, readBps, … }");
  if (io) {
    limit(io.weight, "cgroup.io.weight", { min: 1, max: 10000, unlimited: false });
    for (const k of ["readBps", "writeBps", "readIops", "writeIops"] as const) {
      const devices = c.record(io[k], `cgroup.io.${k}`, 'an object of device → limit, e.g. { "8:0": 1048576 }');
      for (const [device, v] of Object.entries(devices ?? {})) {
        const path = keyPath(`cgroup.io.${k}`, device);
        c.config(path, () => void parseDevice(device, path));
        limit(v, path, { min: 1 });
      }
    }
  }
  const hugetlb = c.record(cg.hugetlb, "cgroup.hugetlb", 'an object of page size to limit, e.g. { "2MB": "64M" }');
  for (const [size, v] of Object.entries(hugetlb ?? {})) {
    const path = keyPath("cgroup.hugetlb", size);
    if (!isPageSizeName(size)) bad(path, 'is not a huge page size as the kernel names them ("2MB", "1GB", "64KB")');
    else if (typeof v !== "number" && typeof v !== "string") {
      bad(path, `must be a number of bytes or a size like "64M", got ${show(v)}`);
    } else c.config(path, () => void parseByteSize(v, path));
  }
  if (cg.devices !== undefined) c.config("cgroup.devices", () => assertValidDeviceRules(cg.devices, "cgroup.devices"));
  const raw = c.record(
    cg.raw,
    "cgroup.raw",
    'an object of control files to values, e.g. { "cpu.cfs_quota_us": 30000 }',
  );
  for (const [k, v] of Object.entries(raw ?? {})) {
    const path = `cgroup.raw[${JSON.stringify(k.length > 64 ? `${k.slice(0, 64)}…` : k)}]`;
    if (!/^[a-z_]+\.[a-z_.]+$/.test(k)) {
      bad(path, 'is not a controller file name like "cpu.cfs_quota_us"');
      continue;
    }
    const refused = rawKeyProblem(k);
    if (refused) bad(path, refused);
    else if (!(typeof v === "string" || (typeof v === "number" && Number.isFinite(v)))) {
      bad(path, `must be a string or a finite number, got ${show(v)}`);
    } else if (typeof v === "string") {
      const problem = cStringProblem(v, 4096);
      if (problem) bad(path, problem);
    }
  }
  if (cg.name !== undefined && cg.parent !== undefined) {
    bad("cgroup.parent", "give cgroup.name (the whole path) or cgroup.parent, not both");
  }
  const systemd = c.section(cg.systemd, "cgroup.systemd", KEYS.systemd, 'an object { slice, unit: "NAME.scope" }');
  if (systemd) {
    for (const k of ["name", "parent"] as const) {
      if (cg[k] !== undefined) {
        bad(`cgroup.${k}`, "give cgroup.systemd (a scope systemd makes) or a cgroupfs name, not both");
      }
    }
    const problem = scopeNameProblem(systemd.unit as string);
    if (problem) bad("cgroup.systemd.unit", problem);
    if (systemd.slice !== undefined) {
      if (typeof systemd.slice !== "string") {
        bad("cgroup.systemd.slice", `must be a slice name, got ${show(systemd.slice)}`);
      } else c.config("cgroup.systemd.slice", () => void expandSlice(systemd.slice as string));
    }
  }
  for (const k of ["name", "parent"] as const) {
    const v = cg[k];
    if (v === undefined) continue;
    if (c.config(`cgroup.${k}`, () => assertValidCgroupName(v as string, `cgroup.${k}`))) {
      const full = k === "parent" ? `${v}/${name}` : v as string;
      if (byteLength(full) > MAX_CGROUP_NAME) {
        bad(`cgroup.${k}`, `makes a cgroup path of ${byteLength(full)} bytes: at most ${MAX_CGROUP_NAME}`);
      }
    }
  }
  return c.problems.length === before ? cg : null;
}

/** The capabilities of a spec, resolved (see `ResolvedSpec`). */
export interface ResolvedCapabilities {
  /** The bounding set: the capabilities kept (seccomp's capability groups follow it). */
  readonly capabilities: string[];
  /** The five sets, when the spec gave them separately (then used as given, for any user). */
  readonly capabilitySets?: ResolvedCapabilitySets;
  /** The capabilities the spec names, raised in the ambient set for a non-root user (podman's rule). */
  readonly ambientCapabilities: string[];
}

/** The five capability sets, each by canonical names in number order. */
export type ResolvedCapabilitySets = Required<CapabilitySets>;

/** `names` in capability-number order, each once. */
function inNumberOrder(names: readonly string[]): string[] {
  return [...new Set(names)].sort((a, b) => Capability.numberOf(a) - Capability.numberOf(b));
}

/**
 * The capabilities kept, by their canonical names: a list, `{ add, drop }` (docker's), or the five
 * sets `{ bounding, effective, permitted, inheritable, ambient }` (OCI's `process.capabilities`).
 */
export function capabilitiesOf(c: Checker, value: unknown): ResolvedCapabilities {
  const { bad } = c;
  const nameOf = (x: unknown, path: string): string | undefined => {
    if (typeof x !== "string") {
      bad(path, `must be a capability name like "CAP_CHOWN", got ${show(x)}`);
      return undefined;
    }
    if (/^\s|\s$/.test(x)) {
      bad(path, `must be a capability name without spaces, got ${show(x)}`);
      return undefined;
    }
    try {
      return Capability.nameOf(x);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      // (Capability names its own argument "capability": the field is this one)
      bad(path, e.message.replace(/^capability: /, ""));
      return undefined;
    }
  };
  const defaults = () => ({ capabilities: [...DEFAULT_CAPABILITIES], ambientCapabilities: [] });
  if (value === undefined) return defaults();
  if (Array.isArray(value)) {
    const names = value.map((x, i) => {
      if (typeof x === "string" && x.toUpperCase() === "ALL") {
        bad(
          `capabilities[${i}]`,
          'ALL goes in { add: ["ALL"] } or { drop: ["ALL"] }; a list names the capabilities kept',
        );
        return undefined;
      }
      return nameOf(x, `capabilities[${i}]`);
    });
    const kept = [...new Set(names.filter((n) => n !== undefined))] as string[];
    return { capabilities: kept, ambientCapabilities: kept };
  }
  const o = c.section(
    value,
    "capabilities",
    [...KEYS.capabilities, ...KEYS.capabilitySets],
    "a list of capabilities, { add, drop }, or the sets { bounding, effective, permitted, inheritable, ambient }",
  );
  if (!o) return defaults();
  const given = (keys: readonly string[]) => keys.filter((k) => o[k] !== undefined);
  if (given(KEYS.capabilitySets).length > 0) {
    if (given(KEYS.capabilities).length > 0) {
      bad(
        "capabilities",
        `give { add, drop } or the five sets { ${KEYS.capabilitySets.join(", ")} }, not both (got ${
          Object.keys(o).join(", ")
        })`,
      );
      return defaults();
    }
    return setsOf(c, o, nameOf);
  }
  const listOf = (k: "add" | "drop") => {
    const list = c.array(o[k], `capabilities.${k}`, "an array of capability names") ?? [];
    let all = false;
    const names = list.map((x, i) => {
      if (typeof x === "string" && x.toUpperCase() === "ALL") {
        all = true;
        return undefined;
      }
      return nameOf(x, `capabilities.${k}[${i}]`);
    }).filter((n) => n !== undefined) as string[];
    return { all, names };
  };
  const add = listOf("add"), drop = listOf("drop");
  // docker: add ALL is every capability the kernel has; drop ALL leaves only what add names.
  const every = Array.from(
    { length: Math.min(Capability.lastCap(), Capability.NAMES.length - 1) + 1 },
    (_, n) => Capability.NAMES[n]!,
  );
  const kept = drop.all ? [] : DEFAULT_CAPABILITIES.filter((x) => !drop.names.includes(x));
  const added = [...new Set(add.all ? every : add.names)];
  // podman: a non-root user gets the added capabilities (not the default set) in ambient.
  return { capabilities: [...new Set([...kept, ...added])], ambientCapabilities: added };
}

/**
 * The five sets given separately (a set left out is empty, as in OCI's spec), checked against the
 * kernel's rules so a spec capset(2) or PR_CAP_AMBIENT_RAISE would refuse fails here, naming the
 * field: effective ⊆ permitted and inheritable ⊆ bounding (capset: the new effective set must be
 * in the new permitted set; the new inheritable set in the old inheritable set and the bounding
 * set — the old one is empty in a container), ambient ⊆ permitted ∩ inheritable (the raise
 * needs both). runc and crun pass the sets to the kernel unchecked and fail at capset or at the
 * raise with EPERM; hako says which capability, in which set, before anything is touched.
 */
function setsOf(
  c: Checker,
  o: Record<string, unknown>,
  nameOf: (x: unknown, path: string) => string | undefined,
): ResolvedCapabilities {
  const { bad } = c;
  const before = c.problems.length;
  const sets = {} as Record<typeof KEYS.capabilitySets[number], string[]>;
  for (const k of KEYS.capabilitySets) {
    const list = c.array(o[k], `capabilities.${k}`, "an array of capability names") ?? [];
    const names = list.map((x, i) => {
      if (typeof x === "string" && x.toUpperCase() === "ALL") {
        bad(`capabilities.${k}[${i}]`, "ALL is for { add, drop }: a set names its capabilities");
        return undefined;
      }
      return nameOf(x, `capabilities.${k}[${i}]`);
    });
    sets[k] = inNumberOrder(names.filter((n) => n !== undefined) as string[]);
  }
  const outside = (k: typeof KEYS.capabilitySets[number], of: readonly string[], rule: string) => {
    const extra = sets[k].filter((n) => !of.includes(n));
    if (extra.length) bad(`capabilities.${k}`, `${extra.join(", ")} not in ${rule}`);
  };
  if (c.problems.length === before) {
    outside("effective", sets.permitted, "permitted: the effective set is a subset of the permitted set");
    outside(
      "inheritable",
      sets.bounding,
      "bounding: the kernel refuses an inheritable capability outside the bounding set",
    );
    outside(
      "ambient",
      sets.permitted.filter((n) => sets.inheritable.includes(n)),
      "both permitted and inheritable: the kernel raises an ambient capability only when it is in both",
    );
  }
  return { capabilities: [...sets.bounding], capabilitySets: sets, ambientCapabilities: [] };
}

/** The rlimits, each a known resource with a count, "unlimited" or [soft, hard] (soft ≤ hard). */
export function rlimitsOf(c: Checker, value: unknown): NonNullable<ContainerSpec["rlimits"]> {
  const { bad } = c;
  const o = c.record(value, "rlimits", "an object of resources to limits, e.g. { NOFILE: 1024 }");
  if (!o) return {};
  const seen = new Map<string, string>();
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    const at = keyPath("rlimits", k);
    const resource = /^[A-Za-z_]+$/.test(k) ? k.toUpperCase().replace(/^RLIMIT_/, "") : "";
    if (!Object.hasOwn(RLIMITS, resource)) {
      const near = closest(resource || k, Object.keys(RLIMITS));
      bad(
        at,
        `is not a resource (${near ? `did you mean ${JSON.stringify(near)}? ` : ""}one of ${
          Object.keys(RLIMITS).join(", ")
        })`,
      );
      continue;
    }
    if (seen.has(resource)) {
      bad(at, `sets the same limit as ${seen.get(resource)}`);
      continue;
    }
    seen.set(resource, at);
    const ok = (x: unknown) => x === "unlimited" || (typeof x === "number" && Number.isSafeInteger(x) && x >= 0);
    if (!(Array.isArray(v) ? v.length === 2 && v.every(ok) : ok(v))) {
      bad(at, `must be a count, "unlimited" or [soft, hard], got ${show(v)}`);
      continue;
    }
    // (the kernel refuses a soft limit above the hard one: EINVAL)
    const n = (x: unknown) => (x === "unlimited" ? Infinity : x as number);
    if (Array.isArray(v) && n(v[0]) > n(v[1])) {
      bad(at, `the soft limit ${v[0]} is above the hard limit ${v[1]}`);
      continue;
    }
    out[k] = v;
  }
  return out as NonNullable<ContainerSpec["rlimits"]>;
}

/** The stack rlimit execve will run under: the spec's, or this process's (which the container inherits). */
function stackLimit(rlimits: NonNullable<ContainerSpec["rlimits"]>): number {
  for (const [k, v] of Object.entries(rlimits)) {
    if (k.toUpperCase().replace(/^RLIMIT_/, "") !== "STACK") continue;
    const soft = Array.isArray(v) ? v[0] : v;
    return soft === "unlimited" ? Infinity : soft as number;
  }
  try {
    return getrlimit("STACK").soft;
  } catch {
    return 8 * 1024 * 1024;
  }
}

/** NUL bytes and lengths of a hook command's strings (hookProblem checks the rest). */
function hookStringsProblem(hook: unknown): string | undefined {
  const strings = typeof hook === "string" ? [hook] : Array.isArray(hook) ? hook as string[] : [];
  for (const [i, s] of strings.entries()) {
    const problem = cStringProblem(s, MAX_ARG_STRLEN);
    if (problem) return Array.isArray(hook) ? `argument ${i} ${problem}` : problem;
  }
  return undefined;
}

/**
 * The keys of a seccomp profile in hako's format (docker's / OCI's is checked by its converter),
 * and the types its checks rely on.
 * @returns True when the profile can be handed to `resolveSeccompProfile`.
 */
function seccompShape(c: Checker, profile: Obj): boolean {
  const before = c.problems.length;
  const oci = typeof profile.defaultAction === "string" && profile.defaultAction.startsWith("SCMP_ACT_");
  if (!oci) {
    unknownKeys(
      profile,
      "seccomp",
      KEYS.seccomp,
      c.bad,
    );
    const condition = (x: unknown, at: string) =>
      c.section(x, at, KEYS.seccompCondition, "{ caps, arches, minKernel }");
    const rules = c.array(profile.syscalls, "seccomp.syscalls", "an array of rules { names, action }") ?? [];
    rules.forEach((rule, i) => {
      const at = `seccomp.syscalls[${i}]`;
      const r = c.section(
        rule,
        at,
        KEYS.seccompRule,
        "a rule { names, action }",
        true,
      );
      if (!r) return;
      condition(r.includes, `${at}.includes`);
      condition(r.excludes, `${at}.excludes`);
      (Array.isArray(r.args) ? r.args : []).forEach((a, k) => {
        c.section(a, `${at}.args[${k}]`, KEYS.seccompArg, "{ index, op, value }", true);
      });
    });
    if (profile.architectures !== undefined && !Array.isArray(profile.architectures)) {
      c.bad("seccomp.architectures", `must be an array of architectures, got ${show(profile.architectures)}`);
    }
  }
  return c.problems.length === before;
}

/** The veth pair, its names filled in, its addresses checked (also against the host's networks). */
export function vethOf(c: Checker, value: unknown, netNew: boolean, name: string): ResolvedVeth | undefined {
  const { bad } = c;
  if (value === undefined) return undefined;
  const v = c.section(
    value,
    "network.veth",
    KEYS.veth,
    "an object { host, container, hostAddress, containerAddress, allowWidePrefix }",
  );
  if (!v) return undefined;
  if (!netNew) bad("network.veth", 'needs a new network namespace: add "net" to namespaces');
  for (const k of ["host", "container"] as const) {
    const problem = v[k] === undefined ? undefined : linkNameProblem(v[k]);
    if (problem) bad(`network.veth.${k}`, problem);
  }
  let veth: ResolvedVeth = {
    host: typeof v.host === "string" ? v.host : defaultVethHostName(name),
    container: typeof v.container === "string" ? v.container : "eth0",
    hostAddress: typeof v.hostAddress === "string" ? v.hostAddress : undefined,
    containerAddress: typeof v.containerAddress === "string" ? v.containerAddress : undefined,
    disableHostIpv6: false,
  };
  const wide = v.allowWidePrefix;
  if (wide !== undefined && typeof wide !== "boolean") {
    bad("network.veth.allowWidePrefix", `must be a boolean, got ${show(wide)}`);
  }
  const before = c.problems.length;
  const cidrs: Partial<Record<"hostAddress" | "containerAddress", Cidr>> = {};
  for (const k of ["hostAddress", "containerAddress"] as const) {
    const text = v[k];
    if (text === undefined) continue;
    if (typeof text !== "string" || text.length > 64) {
      bad(`network.veth.${k}`, `must be an address in CIDR notation like "10.200.0.1/30", got ${show(text)}`);
      continue;
    }
    try {
      cidrs[k] = parseCidr(text);
    } catch (e) {
      bad(`network.veth.${k}`, (e as Error).message);
      continue;
    }
    // A wide prefix is a route on the host sending that whole subnet into the container.
    const cidr = cidrs[k]!;
    if (wide !== true && !isPointToPoint(cidr)) {
      const [a, b] = POINT_TO_POINT_PREFIXES[cidr.version];
      bad(
        `network.veth.${k}`,
        `the prefix /${cidr.prefixLength} would route ${networkOf(cidr)} from the host into the container: ` +
          `a veth takes a point-to-point /${a} or /${b}; set network.veth.allowWidePrefix: true for a wider subnet`,
      );
    }
  }
  if (cidrs.hostAddress && cidrs.containerAddress) {
    if (!sameSubnet(cidrs.hostAddress, cidrs.containerAddress)) {
      bad("network.veth.containerAddress", `must be in the same subnet as hostAddress (${v.hostAddress})`);
    } else if (cidrs.hostAddress.bytes.every((b, i) => b === cidrs.containerAddress!.bytes[i])) {
      bad("network.veth.containerAddress", "must differ from hostAddress");
    }
  }
  const given = Object.values(cidrs);
  if (given.length && given.every((x) => x.version === 4)) veth = { ...veth, disableHostIpv6: true };
  // The subnet against the host's routes and addresses (checked again right before the pair is made).
  const field = cidrs.hostAddress ? "hostAddress" : "containerAddress";
  const wanted = cidrs[field];
  if (wanted && c.problems.length === before) {
    let networks: HostNetwork[] | undefined;
    try {
      networks = hostNetworks();
    } catch { /* unreadable here: Container.create checks again, and fails there */ }
    const problem = networks && hostClashProblem(wanted, networks, veth.host);
    if (problem) bad(`network.veth.${field}`, problem);
  }
  return veth;
}

/** The most published ports a container may have. */
const MAX_PORTS = 1024;

/**
 * The published ports (`network.ports`): each container port and host port 1–65535 (a host port
 * 0 or absent: a free one), an IPv4 host address, tcp only; no host address and port twice; a
 * veth with a container address to forward to. Checked only: the supervisor reads them from the
 * recorded spec.
 */
export function portsOf(c: Checker, value: unknown, veth: ResolvedVeth | undefined): void {
  const { bad } = c;
  if (value === undefined) return;
  if (!Array.isArray(value)) {
    return void bad(
      "network.ports",
      `must be a list of { containerPort, hostPort, hostIp, protocol }, got ${show(value)}`,
    );
  }
  if (value.length > MAX_PORTS) {
    return void bad("network.ports", `must have at most ${MAX_PORTS} entries, got ${value.length}`);
  }
  if (value.length && !veth?.containerAddress) {
    bad("network.ports", "needs network.veth with a containerAddress to forward to (hako run: --network veth)");
  }
  const seen = new Map<string, number>();
  value.forEach((p, i) => {
    const at = `network.ports[${i}]`;
    const o = c.section(p, at, KEYS.port, "an object { containerPort, hostPort, hostIp, protocol }", true);
    if (!o) return;
    const port = (v: unknown, k: string, zero: boolean) => {
      if (v === undefined && zero) return 0;
      if (typeof v !== "number" || !Number.isInteger(v) || v < (zero ? 0 : 1) || v > 65535) {
        bad(
          `${at}.${k}`,
          `must be a port number, ${zero ? "0" : "1"}–65535${zero ? " (0: a free one)" : ""}, got ${show(v)}`,
        );
        return undefined;
      }
      return v;
    };
    port(o.containerPort, "containerPort", false);
    const hostPort = port(o.hostPort, "hostPort", true);
    if (o.protocol !== undefined && o.protocol !== "tcp") {
      bad(`${at}.protocol`, `must be "tcp" (udp is not published yet), got ${show(o.protocol)}`);
    }
    let ip = "0.0.0.0";
    if (o.hostIp !== undefined) {
      let cidr: Cidr | undefined;
      try {
        cidr = typeof o.hostIp === "string" && !o.hostIp.includes("/") ? parseCidr(`${o.hostIp}/32`) : undefined;
      } catch { /* reported below */ }
      if (!cidr || cidr.version !== 4) {
        bad(`${at}.hostIp`, `must be an IPv4 address like "127.0.0.1", got ${show(o.hostIp)}`);
      } else ip = o.hostIp as string;
    }
    if (hostPort) {
      // (0.0.0.0 takes the port on every address: it clashes with any other address's)
      const clash = [...seen.keys()].find((k) => {
        const [kip, kport] = k.split(" ");
        return Number(kport) === hostPort && (kip === ip || kip === "0.0.0.0" || ip === "0.0.0.0");
      });
      if (clash !== undefined) {
        bad(`${at}.hostPort`, `${ip}:${hostPort} is published twice (network.ports[${seen.get(clash)}] has it)`);
      } else seen.set(`${ip} ${hostPort}`, i);
    }
  });
}

/** The restart policy (see restart_policy.ts): checked only, the supervisor reads it from the recorded spec. */
export function restartOf(c: Checker, value: unknown): void {
  const p = restartProblem(value);
  if (p) c.bad(p.path, p.message);
}

/** The stop signal (docker's --stop-signal): checked only, `hako stop` reads it from the recorded spec. */
export function stopSignalOf(c: Checker, value: unknown): void {
  if (value === undefined) return;
  if ((typeof value !== "string" && typeof value !== "number") || value === 0 || value === "") {
    c.bad("stopSignal", 'must be a signal name ("SIGQUIT", "QUIT") or number (1..64)');
    return;
  }
  try {
    signalNumber(value);
  } catch (e) {
    c.bad("stopSignal", (e as Error).message.replace(/^signal: /, ""));
  }
}

/** When onMemoryPressure fires (see memory_pressure.ts): checked only, the event watcher reads it. */
export function memoryPressureOf(c: Checker, value: unknown): void {
  const p = memoryPressureProblem(value);
  if (p) c.bad(p.path, p.message);
}

/** The readiness probe (see hooks.ts): checked only, the event watcher reads it from the spec. */
export function readinessOf(c: Checker, value: unknown): void {
  const p = readinessProblem(value);
  if (p) c.bad(p.path, p.message);
}
