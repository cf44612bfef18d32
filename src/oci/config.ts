/**
 * An OCI bundle's `config.json` mapped onto hako's {@link ContainerSpec}: the same spec, the same
 * validation and the same setup steps as every other hako container. What hako cannot do is
 * refused with its JSON path (`linux.intelRdt: not supported by hako`), never ignored — except the
 * fields runc itself ignores (kernel memory; on cgroup v2 swappiness, the OOM switch, the leaf
 * weight, realtime CPU), ignored with runc's reason in a warning.
 *
 * | config.json | hako |
 * | --- | --- |
 * | `process.args` | `command` (argv) |
 * | `process.env` (`K=V`) | `env` (hako adds `HOME=/root` and `HOSTNAME` when the bundle has none) |
 * | `process.cwd` | `workdir` |
 * | `process.user.uid`, `gid`, `additionalGids` | `user: { uid, gid, groups }` |
 * | `process.user.umask` | the umask the container's process starts with (inherited from `create`) |
 * | `process.terminal`, `consoleSize` | a pty of the container's own (`CreateOptions.tty`), its master sent to `--console-socket` |
 * | `process.capabilities` (five sets) | `capabilities: { bounding, effective, permitted, inheritable, ambient }` |
 * | `process.rlimits` | `rlimits: { RLIMIT_X: [soft, hard] }` |
 * | `process.noNewPrivileges` | `noNewPrivs` (false with a seccomp profile: the filter is loaded before the capabilities go, as runc loads it; setuid binaries work as with runc) |
 * | `process.oomScoreAdj` | written to `/proc/PID/oom_score_adj` by `create` before the command runs (inherited) |
 * | `root.path` (relative to the bundle), `root.readonly` | `rootfs`, `readonlyRootfs` |
 * | `hostname` | `hostname` (without one, a new UTS namespace keeps the host's name it starts with, as runc leaves it: `create` passes it) |
 * | `domainname` | `domainname` (setdomainname(2) in the container's UTS namespace, as runc) |
 * | `mounts` at `/proc`, `/sys`, `/sys/fs/cgroup`, `/dev`, `/dev/pts`, `/dev/mqueue` | hako's standard mounts (the same types and flags as runc's defaults); `/sys`, `/sys/fs/cgroup` without `ro` (`--privileged`'s): `writableSysfs`, `writableCgroupfs`; `/dev` with `noexec` (podman's): `devNoexec` |
 * | `mounts` at `/dev/shm` (a bind: podman's and a pod's shared tmpfs; a tmpfs with its size), a bind at `/dev/mqueue` | `mounts`, in place of hako's own there (`shm: false`: a bundle without a `/dev/shm` mount has none, as with runc: podman's `--ipc none`) |
 * | other `mounts` | `mounts` (`bind`/`rbind` with `ro`, `rw`, `nosuid`, `nodev`, `noexec`; other filesystems with their options; propagation options set once mounted, in order — a bind's `rshared`/`rslave` keeps it a peer of its host source; `private`/`rprivate` alone is what hako's mounts are) |
 * | a bind's `idmap`/`ridmap`, its `uidMappings`/`gidMappings` | the `idmap`/`ridmap` option: mapped through the container's user namespace by the parent (a mount's own maps only when they are the container's) |
 * | `linux.namespaces` (`path`: joined) | `namespaces` (exactly those: no cgroup namespace unless asked) |
 * | `linux.uidMappings`, `gidMappings` | `idMap` (`allowHostIds`: the engine chose them) |
 * | `linux.devices` | runc's default nodes are hako's own; others `devices` (made in the container's /dev: mknod, or the host's node bound in a user namespace, as runc); `fileMode`'s permission bits; owners other than root refused; `/dev/ptmx` left out (runc replaces it with the pts/ptmx link hako makes) |
 * | `linux.resources.devices` | `cgroup.devices` (hako's default allowlist is runc's) |
 * | `linux.resources.memory.limit`, `swap` | `cgroup.memory.limit`, `swap` (OCI's swap is memory + swap) |
 * | `linux.resources.pids.limit` | `cgroup.pids.max` |
 * | `linux.resources.cpu.shares`, `quota`, `period`, `cpus`, `mems` | `cgroup.cpu.shares`, `quotaUs`, `periodUs`, `cgroup.cpuset` |
 * | `linux.resources.blockIO.weight` (10..1000) | `cgroup.io.weight`, runc's conversion (`1 + (w - 10) * 9999 / 990`), which src/cgroup inverts exactly for v1's `blkio.weight` / `blkio.bfq.weight` |
 * | `blockIO.leafWeight` | v1: `cgroup.raw["blkio.leaf_weight"]` (runc's fs writes it; gone with CFQ, the write fails as runc's does); v2: ignored, as runc's fs2 |
 * | `blockIO.throttle{Read,Write}{Bps,IOPS}Device` | `cgroup.io.readBps`, `writeBps`, `readIops`, `writeIops` keyed `MAJ:MIN` (rate 0: no limit, as v1 reads it) |
 * | `blockIO.weightDevice` | refused (hako sets one weight for every device) |
 * | `linux.resources.memory.reservation` | v1 `memory.soft_limit_in_bytes`, v2 `memory.low` (runc's choice; 0 unset) |
 * | `memory.swappiness`, `disableOOMKiller` | v1 `memory.swappiness` (0..100, -1 unset, more refused with runc's message), `memory.oom_control`; v2: ignored, as runc's fs2 |
 * | `memory.kernel`, `kernelTCP` | ignored with runc 1.2's warning ("kernel memory settings are ignored and will be removed") |
 * | `memory.checkBeforeUpdate`, `useHierarchy` | v1: the kernel refuses a limit below usage itself (EBUSY); refused on v2 (no check). `useHierarchy`: nothing (always hierarchical; runc has no field) |
 * | `linux.resources.cpu.realtimePeriod`, `realtimeRuntime` | v1 `cpu.rt_period_us` then `cpu.rt_runtime_us` (runc's SetRtSched order); v2: ignored, as runc's fs2 |
 * | `cpu.idle`, `cpu.burst` | `cpu.idle`; v1 `cpu.cfs_burst_us`, v2 `cpu.max.burst` (written after the quota) |
 * | `linux.resources.unified` | refused on a v1/hybrid host (runc's ErrV1NoUnified); v2: `cgroup.raw`, keys only files of the cpu, cpuset, memory, pids, io controllers |
 * | `linux.resources.hugepageLimits` | `cgroup.hugetlb` (`{ "2MB": limit }`): v1 `hugetlb.<size>.limit_in_bytes`, v2 `hugetlb.<size>.max`, each with its `.rsvd.` limit where the kernel has one, as runc |
 * | `linux.resources.network`, `rdma` | refused (no net_cls/net_prio or rdma controller in src/cgroup) |
 * | `linux.cgroupsPath` | `cgroup.name` (cgroupfs); with `--systemd-cgroup`, `slice:prefix:name` is `cgroup.systemd` `{ slice, unit: "prefix-name.scope" }` (runc's rules; a slice unit is refused) |
 * | `linux.sysctl` | `sysctl`: written by the container's process in its own net, ipc or uts namespace, after pivot_root (others are refused, as runc does) |
 * | `linux.maskedPaths`, `readonlyPaths` | `maskedPaths`, `readonlyPaths` (absent: none, as OCI says) |
 * | `linux.seccomp` | `seccomp` (an OCI profile, compiled by hako) |
 * | `linux.rootfsPropagation` | `rootfsPropagation`, set on the container's `/` after pivot_root (`private`, `rprivate`: nothing to do, hako's mounts are private) |
 * | `annotations` | kept in the state (`hako oci state`) |
 * | `hooks.prestart`, `createRuntime` | run by `create` in the runtime's namespaces while the child waits after its mounts, before pivot_root (the hooks-sync step), the state on stdin (see hooks.ts) |
 * | `hooks.createContainer` | run by `create` right after them, inside the container's namespaces (its mount namespace before pivot_root), the path resolved there (the runtime's files, the rootfs at its host path) |
 * | `hooks.startContainer` | run by `start` (and `run`) once the command is released, before its execve, inside the container with its root, user, capabilities and seccomp filter; a failure kills the container and fails `start` |
 * | `hooks.poststart`, `poststop` | run by `start` and `delete` in the runtime's namespaces (failures logged) |
 * | `linux.personality` `domain` | `LINUX32`: the process made with personality(2) `PER_LINUX32` (`create` and `exec` take it on before the clone); `flags` refused |
 * | `linux.timeOffsets` | `timeOffsets` (whole seconds; `nanosecs` refused) |
 * | anything else (`intelRdt`, `mountLabel`, `selinuxLabel`, `apparmorProfile`…) | refused with its path |
 *
 * @module
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, normalize } from "node:path";
import type { CapabilitySets, ContainerSpec, MountSpec, NamespaceSpec, RootfsPropagation } from "../container/spec.ts";
import type { NamespaceName } from "../namespace.ts";
import type { DeviceRule } from "../cgroup/devices.ts";
import type { OciSeccompProfile } from "../seccomp.ts";
import type { SpecProblem } from "../container/validate.ts";
import { ConfigError } from "../errors.ts";
import { expandSlice, scopeNameProblem } from "../cgroup/systemd.ts";
import { blkioWeightToIo, isPageSizeName } from "../cgroup/values.ts";
import { sha256Hex } from "./_sha256.ts";
import { isSysctlKey, sysctlNamespace } from "../container/_sysctl.ts";
import { type OciHook, type OciHooks, RUN_HOOKS } from "./hooks.ts";

/** A config.json hako refuses: every problem, each with its JSON path. */
export class OciConfigError extends ConfigError {
  /** Every problem found. */
  readonly problems: readonly SpecProblem[];
  /** @param problems Every problem (at least one). */
  constructor(problems: readonly SpecProblem[]) {
    super(
      problems.length === 1 ? problems[0]!.path : "",
      problems.length === 1
        ? problems[0]!.message
        : `${problems.length} problems in config.json:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`,
    );
    this.name = "OciConfigError";
    this.problems = problems;
  }
}

/** What `create` needs besides the spec. */
export interface OciPlan {
  /** The container spec. */
  readonly spec: ContainerSpec;
  /** `process.terminal`: a pty, with `consoleSize` when given. */
  readonly tty: false | true | { rows: number; columns: number };
  /** `process.user.umask`, when given. */
  readonly umask?: number;
  /** `process.oomScoreAdj`, when given. */
  readonly oomScoreAdj?: number;
  /**
   * `linux.personality`'s execution domain as personality(2) takes it (`PER_LINUX32` 0x8), when
   * not plain `LINUX`: `create` and `exec` take it on before the container's process is made, so
   * the process inherits it (and keeps it across execve), as runc's init sets it before its exec.
   */
  readonly personality?: number;
  /** `annotations`. */
  readonly annotations: Readonly<Record<string, string>>;
  /** Notes for the log (what hako does differently, on purpose). */
  readonly warnings: readonly string[];
  /** `hooks`: those hako runs (see hooks.ts). */
  readonly hooks: OciHooks;
}

/** personality(2)'s `PER_LINUX32` (uname reports a 32-bit machine: i686, armv8l). */
const PER_LINUX32 = 0x0008;

/** OCI namespace type → hako's name. */
const NAMESPACES: Readonly<Record<string, NamespaceName>> = {
  pid: "pid",
  network: "net",
  mount: "mount",
  ipc: "ipc",
  uts: "uts",
  user: "user",
  cgroup: "cgroup",
  time: "time",
};

/** Destinations hako's standard mounts cover, with the filesystem types a bundle may ask there. */
const STANDARD_MOUNTS: Readonly<Record<string, readonly string[]>> = {
  "/proc": ["proc"],
  "/sys": ["sysfs", "bind"],
  "/sys/fs/cgroup": ["cgroup", "cgroup2"],
  "/dev": ["tmpfs"],
  "/dev/pts": ["devpts"],
  "/dev/shm": ["tmpfs", "bind"],
  "/dev/mqueue": ["mqueue", "bind"],
};

/** runc's default device nodes, which hako makes in every container's /dev. */
const DEFAULT_DEVICES: Readonly<Record<string, readonly [string, number, number]>> = {
  "/dev/null": ["c", 1, 3],
  "/dev/zero": ["c", 1, 5],
  "/dev/full": ["c", 1, 7],
  "/dev/random": ["c", 1, 8],
  "/dev/urandom": ["c", 1, 9],
  "/dev/tty": ["c", 5, 0],
};

/** Propagation options: hako's mounts are private already, so these alone change nothing. */
const PRIVATE = new Set(["private", "rprivate"]);
/** The other propagation options: the spec's own (a bind's shared or slave ones keep it a peer of its host source). */
const PROPAGATION = new Set(["shared", "rshared", "slave", "rslave", "unbindable", "runbindable"]);

/** Mount options that are runtimes' extensions, not the kernel's (tmpcopyup, on a tmpfs, is taken: see below). */
const EXTENSIONS = new Set([
  "tmpcopyup",
  "copy-symlink",
  "rro",
  "rrw",
  "rnosuid",
  "rnodev",
  "rnoexec",
]);

/**
 * The hako container name of an OCI id: the id itself when it is a hako name (1–63 letters,
 * digits, `.`, `_`, `-`), else `oci-` and 32 hex digits of its SHA-256 (podman's and containerd's
 * ids are 64 hex digits, one more than a hako name takes). 128 bits of SHA-256: two ids collide
 * with the odds of a hash collision. The hash is `_sha256.ts`'s, not `node:crypto`'s (the same
 * digest; importing `node:crypto` cost a cold `create` ~5 ms under Bun).
 */
export function containerNameOf(id: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(id)) return id;
  return `oci-${sha256Hex(id).slice(0, 32)}`;
}

/**
 * The host's cgroup version as hako's cgroup library sees it (`Layout.version`): 2 on a host whose
 * /sys/fs/cgroup is the cgroup2 tree, 1 on a v1 or hybrid one.
 */
function hostCgroupVersion(): 1 | 2 {
  return existsSync("/sys/fs/cgroup/cgroup.controllers") ? 2 : 1;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Maps a parsed config.json onto a hako spec (pure: reads nothing but its arguments).
 * @param config The parsed config.json.
 * @param bundle The bundle directory (absolute).
 * @param id The container id.
 * @param host What `create` knows of the host: its hostname, which a new UTS namespace without a
 *   `hostname` keeps (runc sets none then: the namespace starts with a copy of the host's), where
 *   hako would give it the container's name; and the cgroup version of the host (`cgroupVersion`),
 *   which decides the files some `linux.resources` fields go to (asked of the host, only for
 *   those fields, when left out).
 * @returns The spec and what `create` does besides it.
 * @throws {OciConfigError} Listing every field hako cannot honour, with its JSON path.
 */
export function ociToSpec(
  config: unknown,
  bundle: string,
  id: string,
  host: { readonly hostname?: string; readonly cgroupVersion?: 1 | 2; readonly systemdCgroup?: boolean } = {},
): OciPlan {
  const problems: SpecProblem[] = [];
  const bad = (path: string, message: string) => void problems.push({ path, message });
  const unsupported = (path: string) => bad(path, "not supported by hako");
  const warnings: string[] = [];
  if (!isObj(config)) throw new OciConfigError([{ path: "config.json", message: "must be a JSON object" }]);
  /** Refuses every key of `o` not in `known` (an empty value — null, "", [], {} — is fine). */
  const only = (o: Obj, at: string, known: readonly string[]) => {
    for (const [k, v] of Object.entries(o)) {
      if (known.includes(k)) continue;
      const empty = v === null || v === "" || (Array.isArray(v) && v.length === 0) ||
        (isObj(v) && Object.keys(v).length === 0);
      if (!empty) unsupported(at ? `${at}.${k}` : k);
    }
  };
  only(config, "", [
    "ociVersion",
    "process",
    "root",
    "hostname",
    "domainname",
    "mounts",
    "linux",
    "annotations",
    "hooks",
  ]);
  if (typeof config.ociVersion !== "string" || !config.ociVersion.startsWith("1.")) {
    bad("ociVersion", `must be a 1.x version, got ${JSON.stringify(config.ociVersion)}`);
  }
  const hooks: Record<string, OciHook[]> = {};
  if (isObj(config.hooks)) {
    for (const [k, v] of Object.entries(config.hooks)) {
      const at = `hooks.${k}`;
      if (v === null || (Array.isArray(v) && v.length === 0)) continue;
      if (!(RUN_HOOKS as readonly string[]).includes(k)) {
        unsupported(at);
        continue;
      }
      if (!Array.isArray(v)) {
        bad(at, "must be an array of { path, args, env, timeout }");
        continue;
      }
      hooks[k] = v.map((h, i) => {
        const hat = `${at}[${i}]`;
        if (!isObj(h)) return bad(hat, "must be an object"), { path: "" };
        only(h, hat, ["path", "args", "env", "timeout"]);
        // (a NUL byte cannot reach execve: refused here, before anything is made, not mid-create)
        if (typeof h.path !== "string" || !isAbsolute(h.path) || h.path.includes("\0")) {
          bad(`${hat}.path`, "must be an absolute path (with no NUL byte)");
        }
        const strings = (x: unknown) => Array.isArray(x) && x.every((e) => typeof e === "string" && !e.includes("\0"));
        if (h.args !== undefined && !strings(h.args)) {
          bad(`${hat}.args`, "must be an array of strings (with no NUL byte)");
        }
        if (h.env !== undefined && (!strings(h.env) || !(h.env as string[]).every((e) => e.indexOf("=") > 0))) {
          bad(`${hat}.env`, "must be an array of K=V strings");
        }
        if (h.timeout !== undefined && (!Number.isInteger(h.timeout) || (h.timeout as number) <= 0)) {
          bad(`${hat}.timeout`, "must be a positive integer (seconds)");
        }
        return {
          path: String(h.path),
          ...(h.args !== undefined ? { args: h.args as string[] } : {}),
          ...(h.env !== undefined ? { env: h.env as string[] } : {}),
          ...(h.timeout !== undefined ? { timeout: h.timeout as number } : {}),
        };
      });
    }
  } else if (config.hooks !== undefined) bad("hooks", "must be an object");

  // process
  const proc = config.process;
  let tty: OciPlan["tty"] = false;
  let umask: number | undefined, oomScoreAdj: number | undefined;
  const spec: Record<string, unknown> = { name: containerNameOf(id) };
  if (!isObj(proc)) bad("process", "is required (hako runs the bundle's process)");
  else {
    only(proc, "process", [
      "terminal",
      "consoleSize",
      "user",
      "args",
      "env",
      "cwd",
      "capabilities",
      "rlimits",
      "noNewPrivileges",
      "oomScoreAdj",
    ]);
    if (proc.terminal === true) {
      const cs = proc.consoleSize;
      tty = isObj(cs) && Number(cs.height) > 0 && Number(cs.width) > 0
        ? { rows: Number(cs.height), columns: Number(cs.width) }
        : true;
    }
    if (!Array.isArray(proc.args) || proc.args.length === 0) bad("process.args", "must be a non-empty array");
    else spec.command = proc.args;
    if (proc.env !== undefined) {
      if (!Array.isArray(proc.env)) bad("process.env", "must be an array of K=V strings");
      else {
        const env: Record<string, string> = {};
        proc.env.forEach((e, i) => {
          const eq = typeof e === "string" ? e.indexOf("=") : -1;
          if (eq <= 0) bad(`process.env[${i}]`, `must be K=V, got ${JSON.stringify(e)}`);
          else env[(e as string).slice(0, eq)] = (e as string).slice(eq + 1);
        });
        spec.env = env;
      }
    }
    if (proc.cwd !== undefined) spec.workdir = proc.cwd;
    const user = proc.user;
    if (isObj(user)) {
      only(user, "process.user", ["uid", "gid", "additionalGids", "umask"]);
      spec.user = {
        uid: user.uid ?? 0,
        gid: user.gid ?? 0,
        ...(Array.isArray(user.additionalGids) && user.additionalGids.length ? { groups: user.additionalGids } : {}),
      };
      if (user.umask !== undefined) {
        if (!Number.isInteger(user.umask) || (user.umask as number) < 0 || (user.umask as number) > 0o777) {
          bad("process.user.umask", "must be an integer in 0..0o777");
        } else umask = user.umask as number;
      }
    }
    const caps = proc.capabilities;
    if (isObj(caps)) {
      only(caps, "process.capabilities", ["bounding", "effective", "permitted", "inheritable", "ambient"]);
      const sets: Record<string, unknown> = {};
      for (const k of ["bounding", "effective", "permitted", "inheritable", "ambient"] as const) {
        sets[k] = caps[k] ?? [];
      }
      // The kernel raises an ambient capability only when it is permitted and inheritable; runc
      // raises them one by one and warns for each it cannot ("can't raise ambient capability"),
      // so configs with ambient but no inheritable set (runc spec's default since 1.1.2) run. The
      // same here: those are left out, each named in a warning; the sets are checked as usual.
      const names = (v: unknown) =>
        Array.isArray(v) && v.every((x) => typeof x === "string")
          ? new Set((v as string[]).map((x) => x.toUpperCase().replace(/^CAP_/, "")))
          : undefined;
      const ambient = sets.ambient, permitted = names(sets.permitted), inheritable = names(sets.inheritable);
      if (Array.isArray(ambient) && permitted && inheritable && ambient.every((x) => typeof x === "string")) {
        const raisable = (c: string) => {
          const n = c.toUpperCase().replace(/^CAP_/, "");
          return permitted.has(n) && inheritable.has(n);
        };
        const dropped = (ambient as string[]).filter((c) => !raisable(c));
        if (dropped.length) {
          sets.ambient = (ambient as string[]).filter(raisable);
          warnings.push(
            `process.capabilities.ambient: can't raise ambient capability ${
              dropped.join(", ")
            }: not in both the permitted and inheritable sets (the kernel refuses it; left out, as runc does)`,
          );
        }
      }
      spec.capabilities = sets as CapabilitySets;
    } else spec.capabilities = { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] };
    if (proc.rlimits !== undefined) {
      if (!Array.isArray(proc.rlimits)) bad("process.rlimits", "must be an array");
      else {
        const rl: Record<string, [number, number]> = {};
        proc.rlimits.forEach((r, i) => {
          if (!isObj(r) || typeof r.type !== "string") {
            return bad(`process.rlimits[${i}]`, "must be { type, soft, hard }");
          }
          rl[r.type] = [r.soft as number, r.hard as number];
        });
        spec.rlimits = rl;
      }
    }
    if (proc.oomScoreAdj !== undefined) {
      if (!Number.isInteger(proc.oomScoreAdj) || Math.abs(proc.oomScoreAdj as number) > 1000) {
        bad("process.oomScoreAdj", "must be an integer in -1000..1000");
      } else oomScoreAdj = proc.oomScoreAdj as number;
    }
    spec.noNewPrivs = proc.noNewPrivileges === true;
  }

  // root
  const root = config.root;
  if (!isObj(root) || typeof root.path !== "string" || root.path === "") {
    bad("root.path", "is required: the rootfs directory, relative to the bundle");
  } else {
    only(root, "root", ["path", "readonly"]);
    spec.rootfs = isAbsolute(root.path) ? normalize(root.path) : join(bundle, root.path);
    if (root.readonly === true) spec.readonlyRootfs = true;
  }
  if (typeof config.hostname === "string" && config.hostname !== "") spec.hostname = config.hostname;
  if (typeof config.domainname === "string" && config.domainname !== "") spec.domainname = config.domainname;

  // linux
  const linux = isObj(config.linux) ? config.linux : {};
  if (config.linux !== undefined && !isObj(config.linux)) bad("linux", "must be an object");
  only(linux, "linux", [
    "namespaces",
    "uidMappings",
    "gidMappings",
    "devices",
    "cgroupsPath",
    "resources",
    "sysctl",
    "maskedPaths",
    "readonlyPaths",
    "seccomp",
    "rootfsPropagation",
    "personality",
    "timeOffsets",
  ]);
  const namespaces: NamespaceSpec[] = [];
  if (Array.isArray(linux.namespaces)) {
    linux.namespaces.forEach((n, i) => {
      const type = isObj(n) ? NAMESPACES[String(n.type)] : undefined;
      if (!type) {
        return bad(`linux.namespaces[${i}].type`, `unknown namespace ${JSON.stringify(isObj(n) ? n.type : n)}`);
      }
      const path = (n as Obj).path;
      namespaces.push(typeof path === "string" && path !== "" ? { type, join: path } : type);
    });
  }
  spec.namespaces = namespaces;
  if (spec.hostname === undefined && host.hostname && namespaces.includes("uts")) spec.hostname = host.hostname;
  const idMap = (list: unknown, at: string) =>
    Array.isArray(list)
      ? list.map((m, i) =>
        isObj(m)
          ? { inside: m.containerID as number, outside: m.hostID as number, size: m.size as number }
          : (bad(`${at}[${i}]`, "must be { containerID, hostID, size }"), { inside: 0, outside: 0, size: 0 })
      )
      : undefined;
  const uid = idMap(linux.uidMappings, "linux.uidMappings"), gid = idMap(linux.gidMappings, "linux.gidMappings");
  if (uid?.length || gid?.length) {
    spec.idMap = { ...(uid?.length ? { uid } : {}), ...(gid?.length ? { gid } : {}), allowHostIds: true };
  }
  // Device nodes: runc's defaults are hako's own; the others (podman's --device, a device plugin's)
  // are made in the container's /dev — `fileMode`'s permission bits only, as runc takes them (podman
  // passes the host node's whole st_mode); owned by root (another owner is refused).
  if (Array.isArray(linux.devices)) {
    const devices: Array<Record<string, unknown>> = [];
    linux.devices.forEach((d, i) => {
      const at = `linux.devices[${i}]`;
      if (!isObj(d)) return bad(at, "must be an object { path, type, major, minor }");
      only(d, at, ["path", "type", "major", "minor", "fileMode", "uid", "gid"]);
      const known = DEFAULT_DEVICES[String(d.path)];
      if (known && known[0] === d.type && known[1] === d.major && known[2] === d.minor) return;
      // /dev/ptmx (podman --privileged passes the host's): runc makes it, then replaces it with the
      // link to pts/ptmx (its setupPtmx), which hako's /dev has already
      if (d.path === "/dev/ptmx") return;
      for (const k of ["uid", "gid"] as const) {
        if (d[k] !== undefined && d[k] !== 0) bad(`${at}.${k}`, "not supported by hako: device nodes are root's");
      }
      devices.push({
        path: d.path,
        type: d.type,
        ...(d.type !== "p" ? { major: d.major, minor: d.minor } : {}),
        ...(typeof d.fileMode === "number" ? { fileMode: d.fileMode & 0o777 } : {}),
      });
    });
    if (devices.length) spec.devices = devices;
  }

  // cgroup
  const cgroup: Record<string, unknown> = {};
  if (host.systemdCgroup) {
    // runc's systemd manager: "slice:prefix:name" is the scope prefix-name.scope in slice
    // (default system.slice); without a path, hako-<id>.scope (runc's is runc-<id>.scope)
    const p = linux.cgroupsPath === undefined || linux.cgroupsPath === null ? "" : String(linux.cgroupsPath);
    const parts = p === "" ? ["", "hako", id] : p.split(":");
    if (parts.length !== 3) {
      bad(
        "linux.cgroupsPath",
        `expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got ${
          JSON.stringify(p)
        } instead`,
      );
    } else {
      const [slice, prefix, name] = parts as [string, string, string];
      const unit = name.endsWith(".slice") ? name : `${prefix ? `${prefix}-` : ""}${name}.scope`;
      const problem = scopeNameProblem(unit);
      if (problem) bad("linux.cgroupsPath", `the scope ${problem}`);
      try {
        if (slice) expandSlice(slice, "linux.cgroupsPath");
      } catch (e) {
        bad("linux.cgroupsPath", (e as Error).message.replace(/^linux\.cgroupsPath: /, ""));
      }
      cgroup.systemd = { ...(slice ? { slice } : {}), unit };
    }
  } else if (linux.cgroupsPath !== undefined) {
    const p = String(linux.cgroupsPath);
    if (/^[^/]*:[^/]*:/.test(p)) {
      bad(
        "linux.cgroupsPath",
        `${
          JSON.stringify(p)
        } is a systemd slice:prefix:name: pass --systemd-cgroup (podman --cgroup-manager systemd) or a cgroupfs path`,
      );
    } else {
      const name = p.split("/").filter(Boolean).join("/");
      if (name) cgroup.name = name;
    }
  }
  const res = isObj(linux.resources) ? linux.resources : {};
  only(res, "linux.resources", [
    "devices",
    "memory",
    "pids",
    "cpu",
    "blockIO",
    "unified",
    "hugepageLimits",
    "network",
    "rdma",
  ]);
  // The host's cgroup version, asked only when a field is written differently on v1 and v2.
  let cgVersion = host.cgroupVersion;
  const v2 = () => (cgVersion ??= hostCgroupVersion()) === 2;
  /** Controller files without a typed field in hako's spec: fixed keys only, never a path from the JSON. */
  const raw: Record<string, string | number> = {};
  // A limit of another JSON type ("64m", "10") would be dropped below and the container run
  // without it: refused by its path, as runc's JSON decoding refuses it (int64, uint64, string).
  const typed = (o: unknown, at: string, kinds: Readonly<Record<string, "number" | "string" | "boolean">>) => {
    if (!isObj(o)) return;
    for (const [k, kind] of Object.entries(kinds)) {
      if (o[k] !== undefined && o[k] !== null && typeof o[k] !== kind) {
        bad(`${at}.${k}`, `must be a ${kind}, got ${JSON.stringify(o[k])}`);
      }
    }
  };
  /** An integer in [min, max] (the value typed already), else refused by its path. */
  const int = (v: unknown, at: string, min: number, max = Number.MAX_SAFE_INTEGER): v is number => {
    if (typeof v !== "number") return false;
    if (Number.isInteger(v) && v >= min && v <= max) return true;
    bad(at, `must be an integer in ${min}..${max === Number.MAX_SAFE_INTEGER ? "2^53" : max}, got ${v}`);
    return false;
  };
  const ignored = (at: string, why: string) => warnings.push(`${at}: ignored, as runc does (${why})`);
  typed(res.memory, "linux.resources.memory", {
    limit: "number",
    swap: "number",
    reservation: "number",
    swappiness: "number",
    kernel: "number",
    kernelTCP: "number",
    disableOOMKiller: "boolean",
    checkBeforeUpdate: "boolean",
    useHierarchy: "boolean",
  });
  typed(res.pids, "linux.resources.pids", { limit: "number" });
  typed(res.cpu, "linux.resources.cpu", {
    shares: "number",
    quota: "number",
    period: "number",
    cpus: "string",
    mems: "string",
    realtimeRuntime: "number",
    realtimePeriod: "number",
    idle: "number",
    burst: "number",
  });
  typed(res.blockIO, "linux.resources.blockIO", { weight: "number", leafWeight: "number" });
  if (Array.isArray(res.devices)) {
    const rules: DeviceRule[] = [];
    res.devices.forEach((d, i) => {
      if (!isObj(d)) return bad(`linux.resources.devices[${i}]`, "must be an object");
      // (hako's allowlist starts from deny-all plus runc's defaults: a leading deny-all is that)
      if (d.allow === false && (d.type ?? "a") === "a" && d.major == null && d.minor == null) return;
      rules.push({
        allow: d.allow === true,
        access: String(d.access ?? "rwm"),
        ...(d.type !== undefined ? { type: d.type as DeviceRule["type"] } : {}),
        ...(d.major != null && d.major !== -1 ? { major: d.major as number } : {}),
        ...(d.minor != null && d.minor !== -1 ? { minor: d.minor as number } : {}),
      });
    });
    if (rules.length) cgroup.devices = rules;
  }
  if (isObj(res.memory)) {
    const m = res.memory, at = "linux.resources.memory";
    only(m, at, [
      "limit",
      "swap",
      "reservation",
      "swappiness",
      "disableOOMKiller",
      "kernel",
      "kernelTCP",
      "checkBeforeUpdate",
      "useHierarchy",
    ]);
    const memory: Record<string, unknown> = {};
    if (typeof m.limit === "number" && m.limit > 0) memory.limit = m.limit;
    if (typeof m.swap === "number") {
      if (m.swap === -1) memory.swap = "max";
      else if (typeof m.limit === "number" && m.limit > 0) {
        if (m.swap < m.limit) {
          bad("linux.resources.memory.swap", "must be at least the limit (it counts memory + swap)");
        } else memory.swap = m.swap - m.limit;
      } else bad("linux.resources.memory.swap", "needs a limit");
    }
    if (Object.keys(memory).length) cgroup.memory = memory;
    // runc (libcontainer/cgroups fs, fs2): a reservation is v1's soft limit, v2's memory.low; 0 is none
    if (int(m.reservation, `${at}.reservation`, -1) && m.reservation !== 0) {
      if (v2()) raw["memory.low"] = m.reservation === -1 ? "max" : m.reservation;
      else raw["memory.soft_limit_in_bytes"] = m.reservation;
    }
    // runc's fs: -1 is "unset", 0..100 written, more refused with its message; fs2 has no swappiness
    if (typeof m.swappiness === "number" && m.swappiness !== -1) {
      if (!Number.isInteger(m.swappiness) || m.swappiness < 0 || m.swappiness > 100) {
        bad(`${at}.swappiness`, `invalid memory swappiness value: ${m.swappiness} (valid range is 0-100)`);
      } else if (v2()) ignored(`${at}.swappiness`, "cgroup v2 has no per-cgroup swappiness");
      else raw["memory.swappiness"] = m.swappiness;
    }
    // runc's fs writes memory.oom_control; its fs2 ignores the field (v2 has no OOM-killer switch)
    if (m.disableOOMKiller === true) {
      if (v2()) ignored(`${at}.disableOOMKiller`, "cgroup v2 cannot disable the OOM killer");
      else raw["memory.oom_control"] = 1;
    }
    // runc 1.2+: "Kernel memory settings are ignored and will be removed" (the kernel dropped them)
    for (const k of ["kernel", "kernelTCP"] as const) {
      if (typeof m[k] === "number") ignored(`${at}.${k}`, "kernel memory settings are ignored and will be removed");
    }
    // runc checks the usage only on v2 (fs2's CheckMemoryUsage, in update); on v1 the kernel
    // itself refuses a limit it cannot reclaim down to (EBUSY). hako has no such check on v2.
    if (m.checkBeforeUpdate === true && v2()) {
      bad(`${at}.checkBeforeUpdate`, "not supported by hako on cgroup v2 (a new limit is not checked against usage)");
    }
    // runc has no field for it; the kernel's memory controller is always hierarchical (v1's
    // memory.use_hierarchy can no longer be cleared, v2 has no switch)
    if (m.useHierarchy === false) {
      ignored(`${at}.useHierarchy`, "the kernel's memory accounting is always hierarchical");
    }
  }
  if (isObj(res.pids)) {
    only(res.pids, "linux.resources.pids", ["limit"]);
    const l = res.pids.limit;
    if (typeof l === "number") cgroup.pids = { max: l <= 0 ? "max" : l };
  }
  if (isObj(res.cpu)) {
    const c = res.cpu, at = "linux.resources.cpu";
    only(c, at, ["shares", "quota", "period", "cpus", "mems", "realtimeRuntime", "realtimePeriod", "idle", "burst"]);
    const cpu: Record<string, unknown> = {};
    if (typeof c.shares === "number" && c.shares > 0) cpu.shares = c.shares;
    if (typeof c.quota === "number" && c.quota !== 0) cpu.quotaUs = c.quota < 0 ? "max" : c.quota;
    if (typeof c.period === "number" && c.period > 0) cpu.periodUs = c.period;
    if (Object.keys(cpu).length) cgroup.cpu = cpu;
    const cpuset: Record<string, unknown> = {};
    if (typeof c.cpus === "string" && c.cpus) cpuset.cpus = c.cpus;
    if (typeof c.mems === "string" && c.mems) cpuset.mems = c.mems;
    if (Object.keys(cpuset).length) cgroup.cpuset = cpuset;
    // runc's fs (SetRtSched): the period first, then the runtime (-1: no limit); 0 is unset. Its
    // fs2 has no realtime budget and ignores both.
    const rtPeriod = int(c.realtimePeriod, `${at}.realtimePeriod`, 0) && c.realtimePeriod !== 0;
    const rtRuntime = int(c.realtimeRuntime, `${at}.realtimeRuntime`, -1) && c.realtimeRuntime !== 0;
    if ((rtPeriod || rtRuntime) && v2()) {
      ignored(
        `${at}.${rtRuntime ? "realtimeRuntime" : "realtimePeriod"}`,
        "cgroup v2 has no realtime budget per cgroup",
      );
    } else {
      if (rtPeriod) raw["cpu.rt_period_us"] = c.realtimePeriod as number;
      if (rtRuntime) raw["cpu.rt_runtime_us"] = c.realtimeRuntime as number;
    }
    // cpu.idle (0 or 1) on either version; the burst after the quota (hako writes raw files after
    // the typed ones): v1 cpu.cfs_burst_us, v2 cpu.max.burst
    if (int(c.idle, `${at}.idle`, 0, 1)) raw["cpu.idle"] = c.idle;
    if (int(c.burst, `${at}.burst`, 0)) raw[v2() ? "cpu.max.burst" : "cpu.cfs_burst_us"] = c.burst;
  }
  if (isObj(res.blockIO)) {
    const b = res.blockIO, at = "linux.resources.blockIO";
    only(b, at, [
      "weight",
      "leafWeight",
      "weightDevice",
      "throttleReadBpsDevice",
      "throttleWriteBpsDevice",
      "throttleReadIOPSDevice",
      "throttleWriteIOPSDevice",
    ]);
    const io: Record<string, unknown> = {};
    // The blkio (BFQ) weight, 10..1000 (docker's range; 0 is unset), held as hako's v2 io weight
    // with runc's conversion: src/cgroup writes it back exactly on v1 and to io.bfq.weight, and
    // converted to io.weight, as runc's fs2 does when there is no BFQ.
    if (int(b.weight, `${at}.weight`, 0, 1000) && b.weight !== 0) {
      if (b.weight < 10) bad(`${at}.weight`, `must be 0 (unset) or in 10..1000, got ${b.weight}`);
      else io.weight = blkioWeightToIo(b.weight);
    }
    // runc's fs writes blkio.leaf_weight (gone with CFQ in Linux 5.0: the write fails there, as
    // runc's does); its fs2 ignores it
    if (int(b.leafWeight, `${at}.leafWeight`, 0, 1000) && b.leafWeight !== 0) {
      if (b.leafWeight < 10) bad(`${at}.leafWeight`, `must be 0 (unset) or in 10..1000, got ${b.leafWeight}`);
      else if (v2()) ignored(`${at}.leafWeight`, "cgroup v2 has no leaf weight");
      else raw["blkio.leaf_weight"] = b.leafWeight;
    }
    if (Array.isArray(b.weightDevice) && b.weightDevice.length) {
      bad(
        `${at}.weightDevice`,
        "not supported by hako: it sets one block I/O weight for all devices (linux.resources.blockIO.weight)",
      );
    }
    const throttles = [
      ["throttleReadBpsDevice", "readBps"],
      ["throttleWriteBpsDevice", "writeBps"],
      ["throttleReadIOPSDevice", "readIops"],
      ["throttleWriteIOPSDevice", "writeIops"],
    ] as const;
    for (const [field, key] of throttles) {
      const list = b[field];
      if (list === undefined || list === null) continue;
      if (!Array.isArray(list)) {
        bad(`${at}.${field}`, "must be an array of { major, minor, rate }");
        continue;
      }
      const limits: Record<string, number | "max"> = {};
      list.forEach((d, i) => {
        const dat = `${at}.${field}[${i}]`;
        if (!isObj(d)) return bad(dat, "must be { major, minor, rate }");
        only(d, dat, ["major", "minor", "rate"]);
        typed(d, dat, { major: "number", minor: "number", rate: "number" });
        const ok = [int(d.major, `${dat}.major`, 0, 0xfff), int(d.minor, `${dat}.minor`, 0, 0xfffff)];
        if (d.rate === undefined || d.rate === null) return bad(`${dat}.rate`, "is required");
        if (int(d.rate, `${dat}.rate`, 0) && ok[0] && ok[1]) {
          // (0 lifts the limit, as v1's throttle files read it; a later entry for a device wins, as runc writes them in order)
          limits[`${d.major}:${d.minor}`] = d.rate === 0 ? "max" : d.rate;
        }
      });
      if (Object.keys(limits).length) io[key] = limits;
    }
    if (Object.keys(io).length) cgroup.io = io;
  }
  // runc refuses a unified map on a v1 (or hybrid) host (ErrV1NoUnified); on v2 it writes each
  // key as a file name in the cgroup. hako writes only files of the controllers it manages.
  if (isObj(res.unified) && Object.keys(res.unified).length) {
    if (!v2()) bad("linux.resources.unified", "invalid configuration: cannot use unified on cgroup v1");
    else {
      for (const [k, value] of Object.entries(res.unified)) {
        const kat = `linux.resources.unified[${JSON.stringify(k)}]`;
        if (!/^(cpu|cpuset|memory|pids|io|hugetlb)\.[a-zA-Z0-9_]+(\.[a-z_]+)*$/.test(k)) {
          bad(kat, "not supported by hako: only files of the cpu, cpuset, memory, pids, io and hugetlb controllers");
        } else if (typeof value !== "string") bad(kat, `must be a string, got ${JSON.stringify(value)}`);
        else raw[k] = value;
      }
    }
  }
  // each page size's limit (and its reservation limit where the kernel has one), as runc writes them
  if (res.hugepageLimits !== undefined && res.hugepageLimits !== null) {
    if (!Array.isArray(res.hugepageLimits)) bad("linux.resources.hugepageLimits", "must be an array");
    else if (res.hugepageLimits.length) {
      const hugetlb: Record<string, number> = {};
      res.hugepageLimits.forEach((h, i) => {
        const hat = `linux.resources.hugepageLimits[${i}]`;
        if (!isObj(h)) return bad(hat, "must be an object { pageSize, limit }");
        if (typeof h.pageSize !== "string" || !isPageSizeName(h.pageSize)) {
          return bad(
            `${hat}.pageSize`,
            `must be a page size as the kernel names them ("2MB", "1GB"), got ${JSON.stringify(h.pageSize)}`,
          );
        }
        if (typeof h.limit !== "number" || !Number.isSafeInteger(h.limit) || h.limit < 0) {
          return bad(`${hat}.limit`, `must be a number of bytes, got ${JSON.stringify(h.limit)}`);
        }
        hugetlb[h.pageSize] = h.limit;
      });
      cgroup.hugetlb = hugetlb;
    }
  }
  if (isObj(res.network) && Object.values(res.network).some((x) => x != null && !(Array.isArray(x) && !x.length))) {
    bad(
      "linux.resources.network",
      "not supported by hako: its cgroup library has no net_cls or net_prio controller (runc's cgroup v2 manager has none either)",
    );
  }
  if (isObj(res.rdma) && Object.keys(res.rdma).length) {
    bad("linux.resources.rdma", "not supported by hako: its cgroup library has no rdma controller");
  }
  if (Object.keys(raw).length) cgroup.raw = raw;
  spec.cgroup = cgroup;

  // (written by the container's process, as runc's init writes them: the spec's sysctl step)
  if (isObj(linux.sysctl)) {
    const sysctl: Record<string, string> = {};
    for (const [key, value] of Object.entries(linux.sysctl)) {
      const ns = sysctlNamespace(key);
      const have = (t: NamespaceName) => namespaces.some((n) => (typeof n === "string" ? n : n.type) === t);
      if (!ns) bad(`linux.sysctl.${key}`, "not supported by hako: not a namespaced sysctl (runc refuses it too)");
      else if (!have(ns)) bad(`linux.sysctl.${key}`, `needs the container's own ${ns} namespace`);
      else if (!isSysctlKey(key) || typeof value !== "string") {
        bad(`linux.sysctl.${key}`, "bad key or value");
      } else sysctl[key] = value;
    }
    if (Object.keys(sysctl).length) spec.sysctl = sysctl;
  }
  // linux.personality: the domain (runc's two); flags are refused, not ignored as runc ignores them
  let personality: number | undefined;
  if (linux.personality !== undefined && linux.personality !== null) {
    const p = linux.personality;
    if (!isObj(p)) bad("linux.personality", "must be an object { domain, flags }");
    else {
      only(p, "linux.personality", ["domain", "flags"]);
      if (p.domain === "LINUX32") personality = PER_LINUX32;
      else if (p.domain !== "LINUX") {
        bad("linux.personality.domain", `must be "LINUX" or "LINUX32", got ${JSON.stringify(p.domain)}`);
      }
      if (p.flags !== undefined && p.flags !== null && !(Array.isArray(p.flags) && p.flags.length === 0)) {
        unsupported("linux.personality.flags");
      }
    }
  }
  // linux.timeOffsets: { monotonic: { secs, nanosecs }, boottime: … } → whole seconds (the spec's)
  if (linux.timeOffsets !== undefined && linux.timeOffsets !== null) {
    const t = linux.timeOffsets;
    if (!isObj(t)) bad("linux.timeOffsets", "must be an object { monotonic, boottime }");
    else {
      only(t, "linux.timeOffsets", ["monotonic", "boottime"]);
      const offsets: Record<string, number> = {};
      for (const clock of ["monotonic", "boottime"] as const) {
        const c = t[clock];
        if (c === undefined || c === null) continue;
        const at = `linux.timeOffsets.${clock}`;
        if (!isObj(c)) {
          bad(at, "must be an object { secs, nanosecs }");
          continue;
        }
        only(c, at, ["secs", "nanosecs"]);
        if (!Number.isSafeInteger(c.secs ?? 0)) bad(`${at}.secs`, `must be an integer, got ${JSON.stringify(c.secs)}`);
        else if (c.nanosecs !== undefined && c.nanosecs !== 0) {
          bad(`${at}.nanosecs`, "not supported by hako: offsets are whole seconds");
        } else offsets[clock] = (c.secs as number | undefined) ?? 0;
      }
      // (the time namespace they need is the spec's check: "time" in linux.namespaces)
      spec.timeOffsets = offsets;
    }
  }
  spec.maskedPaths = Array.isArray(linux.maskedPaths) ? linux.maskedPaths : [];
  spec.readonlyPaths = Array.isArray(linux.readonlyPaths) ? linux.readonlyPaths : [];
  if (isObj(linux.seccomp)) spec.seccomp = linux.seccomp as unknown as OciSeccompProfile;
  else spec.seccomp = false;
  if (linux.rootfsPropagation !== undefined && linux.rootfsPropagation !== "") {
    const p = linux.rootfsPropagation;
    if (typeof p !== "string" || (!PRIVATE.has(p) && !PROPAGATION.has(p))) {
      bad(
        "linux.rootfsPropagation",
        `must be one of ${[...PRIVATE, ...PROPAGATION].join(", ")}, got ${JSON.stringify(p)}`,
      );
    } else if (PROPAGATION.has(p)) spec.rootfsPropagation = p as RootfsPropagation;
    // (private, rprivate: what hako's mounts are)
  }

  // mounts
  const mounts: MountSpec[] = [];
  if (Array.isArray(config.mounts)) {
    config.mounts.forEach((m, i) => {
      const at = `mounts[${i}]`;
      if (!isObj(m)) return bad(at, "must be an object");
      only(m, at, ["destination", "type", "source", "options", "uidMappings", "gidMappings"]);
      const dest = typeof m.destination === "string" ? normalize(m.destination).replace(/(.)\/$/, "$1") : "";
      if (!dest.startsWith("/")) return bad(`${at}.destination`, "must be an absolute path");
      const options = Array.isArray(m.options) ? m.options.map(String) : [];
      const isBind = options.includes("bind") || options.includes("rbind") || m.type === "bind";
      const type = isBind ? "bind" : String(m.type ?? "");
      // /dev/shm (a bind of a pod's shared tmpfs, or a tmpfs of the bundle's size) and a bind at
      // /dev/mqueue are the bundle's own mounts, as runc mounts them: hako's own are left out there
      const own = (dest === "/dev/shm" && (type === "bind" || type === "tmpfs")) ||
        (dest === "/dev/mqueue" && type === "bind");
      if (STANDARD_MOUNTS[dest] && !own) {
        if (!STANDARD_MOUNTS[dest]!.includes(type)) {
          bad(`${at}.type`, `${JSON.stringify(type)} at ${dest}: not supported by hako (its standard mount is there)`);
        }
        // /sys and /sys/fs/cgroup read-write where the bundle leaves out `ro` (podman's and
        // docker's --privileged; runc mounts them with the bundle's flags)
        const writable = !options.includes("ro");
        if (dest === "/sys" && writable) spec.writableSysfs = true;
        if (dest === "/sys/fs/cgroup" && writable) spec.writableCgroupfs = true;
        if (dest === "/dev" && options.includes("noexec")) spec.devNoexec = true; // (podman's)
        return; // hako's own standard mount is made there
      }
      const kept: string[] = [];
      // An idmapped bind (runc's and crun's `idmap`/`ridmap`, or the mount's own maps): mapped with
      // the container's user namespace — a mount's maps other than the container's are refused.
      const userns = namespaces.some((n) => (typeof n === "string" ? n : n.type) === "user");
      let idmapped = false;
      for (const k of ["uidMappings", "gidMappings"] as const) {
        if (m[k] === undefined) continue;
        idmapped = true;
        const own = k === "uidMappings" ? linux.uidMappings : linux.gidMappings;
        if (JSON.stringify(m[k]) !== JSON.stringify(own)) {
          bad(`${at}.${k}`, `not supported by hako: only the container's own (linux.${k}), as idmap uses them`);
        }
      }
      options.forEach((o, j) => {
        if (o !== "idmap" && o !== "ridmap") return;
        if (!isBind) bad(`${at}.options[${j}]`, `${o} on a ${m.type} mount: not supported by hako (binds only)`);
        idmapped = true;
      });
      if (idmapped && !userns) {
        bad(at, "an idmapped mount needs a user namespace (linux.namespaces) whose maps it takes");
      }
      if (idmapped && isBind && !options.includes("ridmap") && !options.includes("idmap")) kept.push("idmap");
      // (private alone is what hako's mounts are; among others, its place in the order counts)
      const propagates = options.some((o) => PROPAGATION.has(o));
      options.forEach((o, j) => {
        if (o === "idmap" || o === "ridmap") {
          if (isBind) kept.push(o);
          return;
        }
        if (PRIVATE.has(o) || PROPAGATION.has(o)) {
          if (propagates) kept.push(o);
          return;
        }
        // runc's and crun's extensions, which the kernel would not take as mount data: tmpcopyup
        // is hako's too (a tmpfs filled with what its target held: podman's --read-only)
        if (o === "tmpcopyup" && type === "tmpfs") return void kept.push(o);
        if (EXTENSIONS.has(o)) return bad(`${at}.options[${j}]`, `${o}: not supported by hako`);
        if (isBind && !["ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec"].includes(o)) {
          return bad(`${at}.options[${j}]`, `${o} on a bind mount: not supported by hako`);
        }
        kept.push(o);
      });
      if (!type) return bad(`${at}.type`, "is required");
      mounts.push({
        type,
        target: dest,
        ...(typeof m.source === "string" ? { source: m.source } : {}),
        ...(kept.length ? { options: kept } : {}),
      });
    });
  }
  spec.mounts = mounts;
  spec.standardMounts = true;
  spec.shm = false; // (the bundle's /dev/shm mount, if it has one, is in mounts: none without, as runc)
  spec.networkEtc = false; // (the engine binds /etc/hosts, resolv.conf and hostname itself)

  const annotations: Record<string, string> = {};
  if (isObj(config.annotations)) {
    for (const [k, v] of Object.entries(config.annotations)) annotations[k] = String(v);
  }
  if (problems.length) throw new OciConfigError(problems);
  return {
    spec: spec as unknown as ContainerSpec,
    tty,
    ...(umask !== undefined ? { umask } : {}),
    ...(oomScoreAdj !== undefined ? { oomScoreAdj } : {}),
    ...(personality !== undefined ? { personality } : {}),
    annotations,
    warnings,
    hooks,
  };
}
