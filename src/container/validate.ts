/**
 * Validation of a {@link ContainerSpec}: one pass that collects every problem, each with its field
 * path, and the cross-field rules (hostname needs a UTS namespace, id maps need a user namespace,
 * pivot_root needs a mount namespace) — before anything on the host is touched. Also the
 * normalisation into a {@link ResolvedSpec} with every default filled in.
 * @module
 */
import { existsSync } from "node:fs";
import { isAbsolute, normalize } from "node:path";
import process from "node:process";
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
import { HOOK_NAMES, hookProblem } from "./hooks.ts";
import { idMapHostProblems, parseAccounts, readHostIdFiles, warnOnce } from "./host_ids.ts";
import { isRunning, StateStore } from "./state.ts";
import { idProblem, NGROUPS_MAX } from "../user.ts";
import { rawKeyProblem } from "../cgroup/controller.ts";
import { assertValidDeviceRules } from "../cgroup/devices.ts";
import { assertValidName as assertValidCgroupName } from "../cgroup/_name.ts";
import { containerCgroupName } from "./_cgroup.ts";
import { compileSeccomp, DEFAULT_SECCOMP_PROFILE, resolveSeccompProfile, type SeccompProfile } from "../seccomp.ts";
import { assertValidIdMap, type IdMapEntry, NAMESPACE_FLAGS, type NamespaceName } from "../namespace.ts";
import {
  type ContainerSpec,
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_NAMESPACES,
  DEFAULT_READONLY_PATHS,
  type HooksSpec,
  type IdRange,
  type MountSpec,
} from "./spec.ts";

/** One problem in a spec. */
export interface SpecProblem {
  /** The field path, e.g. `mounts[2].target`. */
  readonly path: string;
  /** What is wrong, e.g. `must be absolute`. */
  readonly message: string;
}

/** A spec with problems: every one of them, in order. */
export class SpecError extends ConfigError {
  /** Every problem found. */
  readonly problems: readonly SpecProblem[];
  /** Makes the error. @param problems Every problem found (at least one). */
  constructor(problems: readonly SpecProblem[]) {
    const first = problems[0]!;
    super(
      problems.length === 1 ? first.path : "",
      problems.length === 1
        ? first.message
        : `${problems.length} problems in the container spec:\n${
          problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")
        }`,
    );
    this.name = "SpecError";
    this.problems = problems;
  }
}

/** The spec with defaults applied and shorthands expanded. */
export interface ResolvedSpec {
  /** The container's name. */
  readonly name: string;
  /** The command as argv (a shell string became `/bin/sh -c …`). */
  readonly argv: readonly string[];
  /** The rootfs as given. */
  readonly rootfs: ContainerSpec["rootfs"];
  /** The rootfs directory. */
  readonly rootfsPath: string;
  /** The full environment of the command. */
  readonly env: Readonly<Record<string, string>>;
  /** The working directory inside. */
  readonly workdir: string;
  /** Who the command runs as, inside. */
  readonly user: { readonly uid: number; readonly gid: number; readonly groups: readonly number[] };
  /** The namespaces to create. */
  readonly newNamespaces: readonly NamespaceName[];
  /** The namespaces to join, by path. */
  readonly joinNamespaces: readonly { readonly type: NamespaceName; readonly path: string }[];
  /** The uid map. */
  readonly uidMap: readonly IdMapEntry[];
  /** The gid map. */
  readonly gidMap: readonly IdMapEntry[];
  /** The hostname, or undefined without a UTS namespace. */
  readonly hostname: string | undefined;
  /** Whether `/` is made read-only. */
  readonly readonlyRootfs: boolean;
  /** Whether proc, sys, dev… are mounted. */
  readonly standardMounts: boolean;
  /** The extra mounts. */
  readonly mounts: readonly MountSpec[];
  /** How /etc/hosts and resolv.conf are provided. */
  readonly networkEtc: "host" | "generate" | false;
  /** The paths masked. */
  readonly maskedPaths: readonly string[];
  /** The paths made read-only. */
  readonly readonlyPaths: readonly string[];
  /** The cgroup limits, if any. */
  readonly cgroup: ContainerSpec["cgroup"];
  /**
   * The container's own cgroup (`<parent>/<name>` by default; see `_cgroup.ts`), or undefined
   * for a rootless container without a `cgroup` section.
   */
  readonly cgroupName: string | undefined;
  /** The capabilities kept. */
  readonly capabilities: readonly string[];
  /** The rlimits to set. */
  readonly rlimits: NonNullable<ContainerSpec["rlimits"]>;
  /** Whether no_new_privs is set. */
  readonly noNewPrivs: boolean;
  /** The seccomp profile to load before exec (`"default"` resolved), or false for none. */
  readonly seccomp: SeccompProfile | false;
  /** The profile compiled to BPF (by the parent, once), or undefined for none. */
  readonly seccompProgram: Uint8Array | undefined;
  /** Whether loopback is brought up. */
  readonly loopback: boolean;
  /** The veth pair with its names filled in, or undefined for none. */
  readonly veth: ResolvedVeth | undefined;
  /** Where stdio goes. */
  readonly stdio: "inherit" | "null";
  /** The hooks (empty when none). */
  readonly hooks: HooksSpec;
  /** True when resolved by a non-root caller (rootless mode): the id maps are the caller's own. */
  readonly rootless: boolean;
}

/** A veth pair with its names filled in. */
export interface ResolvedVeth {
  /** The host end's name. */
  readonly host: string;
  /** The container end's name (in its namespace). */
  readonly container: string;
  /** The host end's CIDR, if any. */
  readonly hostAddress: string | undefined;
  /** The container end's CIDR, if any. */
  readonly containerAddress: string | undefined;
  /** True when the pair has IPv4 addresses only: IPv6 is turned off on the host end. */
  readonly disableHostIpv6: boolean;
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

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const SHELL_META = /[*?{}[\]<>()~&|\\$;'`"\n#=%]/;

function idRange(r: IdRange): IdMapEntry {
  // haconiwa writes "min offset max" to uid_map, so its `max` is really a count; we take the
  // reading a user means (min..max inclusive) and say so in the docs.
  return "min" in r ? { inside: r.min, outside: r.offset, size: r.max - r.min + 1 } : r;
}

function list<T>(x: T | readonly T[] | undefined): readonly T[] {
  return x === undefined ? [] : Array.isArray(x) ? x : [x as T];
}

let cgroupNamespaces: boolean | undefined;
/** {@link DEFAULT_NAMESPACES}, less the cgroup namespace on a kernel that has none. */
function defaultNamespaces(): readonly NamespaceName[] {
  cgroupNamespaces ??= existsSync("/proc/self/ns/cgroup");
  return cgroupNamespaces ? DEFAULT_NAMESPACES : DEFAULT_NAMESPACES.filter((n) => n !== "cgroup");
}

/**
 * Checks a spec and returns it resolved (defaults filled in).
 * @throws {SpecError} Listing every problem with its field path.
 */
export function resolveSpec(spec: ContainerSpec): ResolvedSpec {
  const problems: SpecProblem[] = [];
  const bad = (path: string, message: string) => problems.push({ path, message });
  const absolute = (path: string, value: unknown) => {
    if (typeof value !== "string" || value === "") bad(path, "must be a non-empty string");
    else if (!isAbsolute(value)) bad(path, `must be absolute, got ${JSON.stringify(value)}`);
    else if (value.includes("\0")) bad(path, "must not contain a NUL byte");
  };

  if (spec === null || typeof spec !== "object") throw new SpecError([{ path: "spec", message: "must be an object" }]);
  if (typeof spec.name !== "string" || !NAME.test(spec.name)) {
    bad(
      "name",
      `must be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit, got ${JSON.stringify(spec.name)}`,
    );
  }

  // command
  let argv: string[] = [];
  if (typeof spec.command === "string") {
    if (spec.command.trim() === "") bad("command", "is empty");
    else argv = SHELL_META.test(spec.command) ? ["/bin/sh", "-c", spec.command] : spec.command.trim().split(/\s+/);
  } else if (Array.isArray(spec.command) && spec.command.length > 0) {
    spec.command.forEach((a, i) => typeof a !== "string" && bad(`command[${i}]`, "must be a string"));
    argv = [...spec.command];
  } else bad("command", "must be a non-empty argv array or a command string");

  // rootfs
  let rootfsPath = "";
  const r = spec.rootfs;
  if (typeof r === "string") (absolute("rootfs", r), rootfsPath = r);
  else if (r && typeof r === "object") {
    const path = (r as { path?: unknown }).path;
    absolute("rootfs.path", path);
    if (typeof path === "string") rootfsPath = path; // (a number here once reached normalize())
    if ("tarball" in r) {
      if (typeof r.tarball !== "string" || !/\.(tar|tar\.gz|tgz)$/.test(r.tarball)) {
        bad("rootfs.tarball", `must be a .tar, .tar.gz or .tgz path, got ${JSON.stringify(r.tarball)}`);
      }
      if (r.owner && (!Number.isInteger(r.owner.uid) || r.owner.uid < 0)) {
        bad("rootfs.owner.uid", "must be a non-negative integer");
      }
    }
    if ("builder" in r && !["busybox", "host", "auto"].includes(r.builder)) {
      bad("rootfs.builder", `must be "busybox", "host" or "auto", got ${JSON.stringify(r.builder)}`);
    }
  } else bad("rootfs", "is required: a directory, { tarball, path } or { builder, path }");
  if (rootfsPath && normalize(rootfsPath) === "/") bad("rootfs", "must not be the host's / itself");

  // namespaces
  const newNamespaces: NamespaceName[] = [];
  const joinNamespaces: { type: NamespaceName; path: string }[] = [];
  (spec.namespaces ?? defaultNamespaces()).forEach((n, i) => {
    const type = typeof n === "string" ? n : n?.type;
    if (!(type in NAMESPACE_FLAGS)) {
      bad(
        `namespaces[${i}]`,
        `unknown namespace ${JSON.stringify(type)} (one of ${Object.keys(NAMESPACE_FLAGS).join(", ")})`,
      );
      return;
    }
    if ([...newNamespaces, ...joinNamespaces.map((j) => j.type)].includes(type)) {
      bad(`namespaces[${i}]`, `${type} is listed twice`);
      return;
    }
    if (typeof n === "string") newNamespaces.push(n);
    else {
      const file = type === "mount" ? "mnt" : type;
      let path = n.join;
      if (!n.join.includes("/")) {
        // A container's name: its init's namespace, if it runs (pid and start time checked).
        const r = new StateStore().tryRead(n.join);
        if (r?.init && isRunning(r.init)) path = `/proc/${r.init.pid}/ns/${file}`;
        else {
          bad(`namespaces[${i}].join`, `no running container named ${n.join}`);
          return;
        }
      }
      joinNamespaces.push({ type, path });
    }
  });
  const has = (t: NamespaceName) => newNamespaces.includes(t);

  // id maps
  let uidMap = list(spec.idMap?.uid).map(idRange);
  let gidMap = list(spec.idMap?.gid ?? spec.idMap?.uid).map(idRange);
  // rootless: a non-root caller needs a user namespace; without an idMap, its own ids become root inside
  const euid = process.geteuid?.() ?? 0;
  const rootless = euid !== 0;
  if (rootless) {
    if (!has("user")) {
      bad("namespaces", `rootless containers need "user" in namespaces (running as uid ${euid}, not root)`);
    } else if (!spec.idMap?.uid && !spec.idMap?.gid) {
      uidMap = [{ inside: 0, outside: euid, size: 1 }];
      gidMap = [{ inside: 0, outside: process.getegid?.() ?? euid, size: 1 }];
    }
  }
  for (const [kind, map] of [["uid", uidMap], ["gid", gidMap]] as const) {
    try {
      assertValidIdMap(map, `idMap.${kind}`);
    } catch (e) {
      bad((e as ConfigError).path, (e as ConfigError).message.replace(/^[^:]*: /, ""));
    }
  }
  // id maps against the host's accounts and /etc/subuid, /etc/subgid (see host_ids.ts)
  const allowHostIds = spec.idMap?.allowHostIds;
  if (allowHostIds !== undefined && typeof allowHostIds !== "boolean") {
    bad("idMap.allowHostIds", "must be a boolean");
  }
  if (uidMap.length || gidMap.length) {
    const files = readHostIdFiles();
    const user = parseAccounts(files.passwd ?? "").find((a) => a.id === euid)?.name;
    const egid = process.getegid?.() ?? 0;
    for (
      const [kind, map, accounts, subIds, id] of [
        ["uid", uidMap, files.passwd, files.subuid, euid],
        ["gid", gidMap, files.group, files.subgid, egid],
      ] as const
    ) {
      const caller = { user, uid: euid, id };
      for (
        const p of idMapHostProblems({ kind, map, accounts, subIds, caller, rootless, allowHostIds: !!allowHostIds })
      ) {
        if (p.severity === "error") bad(p.path, p.message);
        else warnOnce(`${p.path}: ${p.message}`);
      }
    }
  }
  if ((uidMap.length || gidMap.length) && !has("user")) {
    bad("idMap", 'needs a new user namespace: add "user" to namespaces');
  }
  if (has("user") && !uidMap.length) {
    bad("idMap.uid", "a new user namespace needs a uid map (e.g. { inside: 0, outside: 100000, size: 65536 })");
  }

  // hostname
  const hostname = spec.hostname ?? (has("uts") ? spec.name : undefined);
  if (spec.hostname !== undefined) {
    if (!has("uts")) bad("hostname", 'needs a new UTS namespace: add "uts" to namespaces');
    if (new TextEncoder().encode(spec.hostname).length > 64 || spec.hostname === "") {
      bad("hostname", "must be 1-64 bytes");
    }
  }

  // user
  const user = {
    uid: spec.user?.uid ?? 0,
    gid: spec.user?.gid ?? spec.user?.uid ?? 0,
    groups: spec.user?.groups ?? [],
  };
  for (const k of ["uid", "gid"] as const) {
    const problem = idProblem(user[k]);
    if (problem) bad(`user.${k}`, problem);
  }
  if (!Array.isArray(user.groups)) bad("user.groups", "must be an array of group ids");
  else {
    if (user.groups.length > NGROUPS_MAX) bad("user.groups", `has more than ${NGROUPS_MAX} groups`);
    user.groups.forEach((g, i) => {
      const problem = idProblem(g);
      if (problem) bad(`user.groups[${i}]`, problem);
    });
  }
  if (has("user")) {
    const inside = (id: number, map: readonly IdMapEntry[]) =>
      map.some((e) => id >= e.inside && id < e.inside + e.size);
    if (!inside(user.uid, uidMap)) bad("user.uid", `${user.uid} is not mapped by idMap.uid`);
    if (!inside(user.gid, gidMap)) bad("user.gid", `${user.gid} is not mapped by idMap.gid`);
    if (Array.isArray(user.groups)) {
      user.groups.forEach((g, i) => {
        if (Number.isInteger(g) && !inside(g, gidMap)) bad(`user.groups[${i}]`, `${g} is not mapped by idMap.gid`);
      });
    }
  }

  // workdir, env
  if (spec.workdir !== undefined) absolute("workdir", spec.workdir);
  for (const [k, v] of Object.entries(spec.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) bad(`env.${k}`, "is not a valid variable name");
    if (typeof v !== "string") bad(`env.${k}`, "must be a string");
  }

  // mounts
  const needsMountNs = () =>
    bad("namespaces", 'a rootfs with mounts and pivot_root needs a new mount namespace: add "mount"');
  if (!has("mount")) needsMountNs();
  (spec.mounts ?? []).forEach((m, i) => {
    absolute(`mounts[${i}].target`, m?.target);
    if (typeof m?.type !== "string" || m.type === "") bad(`mounts[${i}].type`, 'must be a filesystem type or "bind"');
    if (m?.type === "bind") absolute(`mounts[${i}].source`, m.source);
    if (typeof m?.target === "string" && m.target.split("/").includes("..")) {
      bad(`mounts[${i}].target`, "must not contain '..'");
    }
  });
  for (const key of ["maskedPaths", "readonlyPaths"] as const) {
    (spec[key] ?? []).forEach((p, i) => absolute(`${key}[${i}]`, p));
  }

  // cgroup
  const cg = spec.cgroup;
  if (cg) {
    const positive = (path: string, v: unknown) =>
      v !== undefined && (!Number.isInteger(v) || (v as number) <= 0) && bad(path, "must be a positive integer");
    positive("cgroup.cpu.quotaUs", cg.cpu?.quotaUs);
    positive("cgroup.cpu.periodUs", cg.cpu?.periodUs);
    if (
      cg.cpu?.weight !== undefined && (!Number.isInteger(cg.cpu.weight) || cg.cpu.weight < 1 || cg.cpu.weight > 10000)
    ) {
      bad("cgroup.cpu.weight", "must be an integer in 1..10000");
    }
    if (cg.name !== undefined && cg.parent !== undefined) {
      bad("cgroup.parent", "give cgroup.name (the whole path) or cgroup.parent, not both");
    }
    for (const k of ["name", "parent"] as const) {
      if (cg[k] === undefined) continue;
      try {
        assertValidCgroupName(cg[k], `cgroup.${k}`);
      } catch (e) {
        bad(`cgroup.${k}`, (e as ConfigError).message.replace(/^[^:]*: /, ""));
        continue;
      }
    }
    if (cg.devices !== undefined) {
      try {
        assertValidDeviceRules(cg.devices, "cgroup.devices");
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        bad(e.path || "cgroup.devices", e.message.replace(/^[^:]*: /, ""));
      }
    }
    positive("cgroup.memory.limit", cg.memory?.limit);
    positive("cgroup.pids.max", cg.pids?.max);
    for (const k of Object.keys(cg.raw ?? {})) {
      if (!/^[a-z_]+\.[a-z_.]+$/.test(k)) {
        bad(`cgroup.raw["${k}"]`, 'is not a controller file name like "cpu.cfs_quota_us"');
      } else {
        const refused = rawKeyProblem(k);
        if (refused) bad(`cgroup.raw["${k}"]`, refused);
      }
    }
  }

  // capabilities
  let capabilities: string[] = [...DEFAULT_CAPABILITIES];
  const caps = spec.capabilities;
  const capName = (c: string) => (c.toUpperCase().startsWith("CAP_") ? c.toUpperCase() : `CAP_${c.toUpperCase()}`);
  if (Array.isArray(caps)) capabilities = caps.map(capName);
  else if (caps && typeof caps === "object") {
    const { add = [], drop = [] } = caps as { add?: string[]; drop?: string[] };
    const dropAll = drop.some((d) => d.toUpperCase() === "ALL");
    capabilities = [
      ...new Set([...(dropAll ? [] : capabilities.filter((c) => !drop.map(capName).includes(c))), ...add.map(capName)]),
    ];
  }

  // rlimits
  for (const [k, v] of Object.entries(spec.rlimits ?? {})) {
    const ok = (x: unknown) => x === "unlimited" || (Number.isInteger(x) && (x as number) >= 0);
    if (!(Array.isArray(v) ? v.length === 2 && v.every(ok) : ok(v))) {
      bad(`rlimits.${k}`, 'must be a count, "unlimited" or [soft, hard]');
    }
  }

  // seccomp
  let seccomp: SeccompProfile | false = DEFAULT_SECCOMP_PROFILE;
  if (spec.seccomp === false) seccomp = false;
  else if (spec.seccomp !== undefined && spec.seccomp !== "default") {
    if (spec.seccomp === null || typeof spec.seccomp !== "object") {
      bad(
        "seccomp",
        `must be false, "default" or a profile { defaultAction, syscalls } (hako's, or docker's / OCI's), got ${
          JSON.stringify(spec.seccomp)
        }`,
      );
    } else {
      // hako's format, or docker's / OCI's (a "SCMP_ACT_…" default action), converted.
      const { profile, problems } = resolveSeccompProfile(spec.seccomp, "seccomp");
      for (const p of problems) bad(p.path, p.message);
      if (profile) seccomp = profile;
    }
  }
  if (seccomp && spec.noNewPrivs === false && !capabilities.includes("CAP_SYS_ADMIN")) {
    bad(
      "seccomp",
      "the kernel loads a filter only with noNewPrivs or CAP_SYS_ADMIN: keep noNewPrivs, add CAP_SYS_ADMIN, or set seccomp: false",
    );
  }

  // hooks
  const hooks = spec.hooks ?? {};
  if (spec.hooks !== undefined && (spec.hooks === null || typeof spec.hooks !== "object")) {
    bad("hooks", "must be an object { bootstrap?, provision?, beforeStart?, afterStop? }");
  } else {
    for (const [k, v] of Object.entries(hooks)) {
      if (!(HOOK_NAMES as readonly string[]).includes(k)) {
        bad(`hooks.${k}`, `is not a hook (one of ${HOOK_NAMES.join(", ")})`);
      } else if (v !== undefined) {
        const problem = hookProblem(v);
        if (problem) bad(`hooks.${k}`, problem);
      }
    }
  }

  // network
  let veth: ResolvedVeth | undefined;
  const v = spec.network?.veth;
  if (v !== undefined) {
    if (v === null || typeof v !== "object") bad("network.veth", "must be an object");
    else {
      if (!has("net")) bad("network.veth", 'needs a new network namespace: add "net" to namespaces');
      veth = {
        host: v.host ?? defaultVethHostName(String(spec.name)),
        container: v.container ?? "eth0",
        hostAddress: v.hostAddress,
        containerAddress: v.containerAddress,
        disableHostIpv6: false,
      };
      for (const k of ["host", "container"] as const) {
        const problem = v[k] === undefined ? undefined : linkNameProblem(v[k]);
        if (problem) bad(`network.veth.${k}`, problem);
      }
      const wide = v.allowWidePrefix;
      if (wide !== undefined && typeof wide !== "boolean") bad("network.veth.allowWidePrefix", "must be a boolean");
      const before = problems.length;
      const cidrs: Partial<Record<"hostAddress" | "containerAddress", Cidr>> = {};
      for (const k of ["hostAddress", "containerAddress"] as const) {
        if (v[k] === undefined) continue;
        try {
          cidrs[k] = parseCidr(v[k]);
        } catch (e) {
          bad(`network.veth.${k}`, (e as Error).message);
          continue;
        }
        // A wide prefix is a route on the host sending that whole subnet into the container.
        const c = cidrs[k]!;
        if (wide !== true && !isPointToPoint(c)) {
          const [a, b] = POINT_TO_POINT_PREFIXES[c.version];
          bad(
            `network.veth.${k}`,
            `the prefix /${c.prefixLength} would route ${networkOf(c)} from the host into the container: ` +
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
      if (given.length && given.every((c) => c.version === 4)) veth = { ...veth, disableHostIpv6: true };
      // The subnet against the host's routes and addresses (checked again right before the pair is made).
      const field = cidrs.hostAddress ? "hostAddress" : "containerAddress";
      const wanted = cidrs[field];
      if (wanted && problems.length === before) {
        let networks: HostNetwork[] | undefined;
        try {
          networks = hostNetworks();
        } catch { /* unreadable here: Container.create checks again, and fails there */ }
        const problem = networks && hostClashProblem(wanted, networks, veth.host);
        if (problem) bad(`network.veth.${field}`, problem);
      }
    }
  }

  if (problems.length) throw new SpecError(problems);
  const netNew = has("net");
  return {
    name: spec.name,
    argv,
    rootfs: spec.rootfs,
    rootfsPath,
    env: {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: "/root",
      ...(hostname ? { HOSTNAME: hostname } : {}),
      ...spec.env,
    },
    workdir: spec.workdir ?? "/",
    user,
    newNamespaces,
    joinNamespaces,
    uidMap,
    gidMap,
    hostname,
    readonlyRootfs: spec.readonlyRootfs ?? false,
    standardMounts: spec.standardMounts ?? true,
    mounts: spec.mounts ?? [],
    networkEtc: spec.networkEtc ?? (netNew ? "generate" : "host"),
    maskedPaths: spec.maskedPaths ?? DEFAULT_MASKED_PATHS,
    readonlyPaths: spec.readonlyPaths ?? DEFAULT_READONLY_PATHS,
    cgroup: spec.cgroup,
    cgroupName: containerCgroupName(spec, rootless),
    capabilities,
    rlimits: spec.rlimits ?? {},
    noNewPrivs: spec.noNewPrivs ?? true,
    seccomp,
    // Conditional rules (docker's capability groups) see the capabilities the container keeps;
    // the default profile's program is compiled once per set of rules that apply.
    seccompProgram: seccomp === false ? undefined : compileSeccomp(seccomp, { capabilities }),
    loopback: spec.network?.loopback ?? netNew,
    veth,
    stdio: spec.stdio ?? "inherit",
    hooks,
    rootless,
  };
}

/**
 * Checks a spec; see {@link resolveSpec}.
 * @throws {SpecError} Listing every problem with its field path.
 */
export function assertValidSpec(spec: ContainerSpec): void {
  resolveSpec(spec);
}
