/**
 * The plan of a container: every step `Container.create` and the child would take, in order,
 * with the kernel calls each makes — computed from the spec alone, touching nothing.
 * @module
 */
import { DEFAULT_SLICE } from "../cgroup/systemd.ts";
import process from "node:process";
import { namespaceNames } from "../namespace.ts";
import { onlyOwnId } from "./rootless.ts";
import { hostLinkSysctlPlan } from "../network.ts";
import { describeHook, EVENT_HOOK_NAMES, EventWatcher, hookArgv } from "./hooks.ts";
import { resolveRestart, RESTART_FIRST_DELAY_MS, RESTART_MAX_DELAY_MS } from "./restart_policy.ts";
import { resolveMemoryPressure } from "./memory_pressure.ts";
import { cloneFlags, type HostStepName, type SetupContext, stepPlan, stepsFor } from "./setup.ts";
import { isIdmapped, isTmpcopyup } from "./_plain_mount.ts";
import { containerGroupSpec } from "./_cgroup.ts";
import { type ContainerFile, containerFileContents } from "./_files.ts";
import { secureJoin } from "./_paths.ts";
import type { ContainerSpec } from "./spec.ts";
import { type ResolvedSpec, resolveSpec } from "./validate.ts";

/** One planned step. */
export interface PlannedStep {
  /** Where it runs: on the host (the parent) or in the container's child. */
  readonly where: "host" | "child";
  /** The step's name, as errors name it. */
  readonly name: string;
  /** Why it is there, in this order. */
  readonly why: string;
  /** The calls it makes. */
  readonly calls: readonly string[];
}

/** The whole plan. */
export interface ContainerPlan {
  readonly name: string;
  readonly steps: readonly PlannedStep[];
}

/**
 * Plans a container.
 * @param options `hooksSync`: with the sync point OCI hooks stop the child at (`hako oci create`
 *   with prestart, createRuntime or createContainer hooks).
 * @throws {SpecError} When the spec is invalid (listing every problem).
 */
export function planContainer(spec: ContainerSpec, options: { readonly hooksSync?: boolean } = {}): ContainerPlan {
  const r = resolveSpec(spec);
  const userns = r.newNamespaces.includes("user");
  // (with the container's files, as Container.create gives them to the child: their captures and
  // binds are child steps too; with `hooksSync`, the sync point of OCI hooks, as `hako oci create`
  // asks for it: see setup.ts's hooks-sync step)
  const ctx: SetupContext = {
    spec: r,
    userns,
    files: plannedFiles(r),
    ...(options.hooksSync ? { hooksSync: -1 } : {}),
  };
  const flags = cloneFlags(r);
  const host: Array<PlannedStep & { readonly name: HostStepName }> = [];
  const rootfs = r.rootfs;
  host.push({
    where: "host",
    name: "rootfs",
    why: "the root filesystem must exist before the child starts",
    calls: typeof rootfs === "object" && "builder" in rootfs
      ? [`build a ${rootfs.builder} rootfs in ${rootfs.path} (once; a marker file records it)`]
      : typeof rootfs === "object" && "tarball" in rootfs
      ? [
        `extract ${rootfs.tarball} into ${rootfs.path} (once)`,
        ...(rootfs.owner ? [`lchown every file by +${rootfs.owner.uid}:${rootfs.owner.gid ?? rootfs.owner.uid}`] : []),
      ]
      : typeof rootfs === "object" && "image" in rootfs
      ? [`use the image ${rootfs.image} of the store (its layers, extracted once at import)`]
      : [`use the directory ${r.rootfsPath}`],
  });
  if (typeof rootfs === "object" && "image" in rootfs) {
    host.push({
      where: "host",
      name: "image",
      why: "a writable layer of the container's own, so its writes never reach the image or another container",
      calls: [
        `mount overlay on ${r.rootfsPath}: lowerdir the image's layers, upperdir and workdir of this container's (a copy of the image where overlay cannot mount)`,
      ],
    });
  }
  if (r.hooks.bootstrap) {
    host.push({
      where: "host",
      name: "bootstrap",
      why: "the bootstrap hook, once per rootfs, before anything else uses it",
      calls: [
        `${describeHook(r.hooks.bootstrap, "{ rootfs, spec }")} (cwd ${r.rootfsPath}, HAKO_ROOTFS)`,
        `unless ${r.rootfsPath}/.hako-bootstrapped exists; written after success`,
      ],
    });
  }
  if (r.cgroupName) {
    const c = r.cgroup ?? {};
    const writes: string[] = [];
    if (c.cpu?.quotaUs !== undefined || c.cpu?.periodUs !== undefined) {
      writes.push(
        `cpu: quota ${c.cpu.quotaUs ?? "max"} µs per ${c.cpu.periodUs ?? 100000} µs (v1 cpu.cfs_*; v2 cpu.max)`,
      );
    }
    if (c.cpu?.weight !== undefined) writes.push(`cpu: weight ${c.cpu.weight} (v1 cpu.shares; v2 cpu.weight)`);
    if (c.cpu?.shares !== undefined) writes.push(`cpu: shares ${c.cpu.shares}`);
    if (c.cpuset) writes.push(`cpuset: cpus ${c.cpuset.cpus ?? "(parent's)"}, mems ${c.cpuset.mems ?? "(parent's)"}`);
    if (c.memory?.limit !== undefined) {
      writes.push(`memory: limit ${c.memory.limit} (v1 memory.limit_in_bytes; v2 memory.max)`);
    }
    if (c.memory?.swap !== undefined) writes.push(`memory: swap ${c.memory.swap}`);
    if (c.pids?.max !== undefined) writes.push(`pids.max = ${c.pids.max}`);
    if (c.io?.weight !== undefined) writes.push(`io: weight ${c.io.weight}`);
    for (const [k, v] of Object.entries(c.raw ?? {})) writes.push(`${k} = ${v}`);
    host.push({
      where: "host",
      name: "cgroup",
      why:
        "a cgroup of the container's own (counted and charged in every controller the host offers, even without limits), made new by the parent — never one that exists — so it can always be removed",
      calls: [
        ...(c.systemd
          ? [
            `systemd: StartTransientUnit ${c.systemd.unit} in ${
              c.systemd.slice ?? DEFAULT_SLICE
            } (Delegate=yes, the limits as unit properties; PIDs: the child's, so after the clone, at cgroup-attach)`,
            `mkdir cgroup ${r.cgroupName} where systemd leaves it (${
              Object.keys(containerGroupSpec(r.cgroup)).join(", ") || "no controller"
            })`,
          ]
          : [
            `mkdir cgroup ${r.cgroupName} (${
              Object.keys(containerGroupSpec(r.cgroup)).join(", ") || "no controller"
            }; it must not exist)`,
          ]),
        ...writes,
      ],
    });
  }
  const files = containerFileContents(r);
  if (files.length) {
    host.push({
      where: "host",
      name: "etc-files",
      why:
        "the container's own files, written into its directory under the state directory (never into the rootfs, which other containers may share) and bound over their paths by the child",
      calls: [
        ...files.map((f) =>
          f.host ? `bind ${f.host} read-only over ${f.inside}` : `write <state>/files/${r.name}${f.inside.slice(4)}`
        ),
        `make the missing mount points (${
          files.map((f) => f.inside).join(", ")
        }) in ${r.rootfsPath}: mkdirat/openat(O_CREAT|O_EXCL|O_NOFOLLOW) under a directory fd, no symlink followed`,
      ],
    });
  }
  const idmapped = r.mounts.flatMap((m, i) => (isIdmapped(m) ? [[m, i] as const] : []));
  if (idmapped.length) {
    host.push({
      where: "host",
      name: "idmap-mounts",
      why:
        "the kernel maps a mount only for a caller privileged over its file system: the parent copies each idmapped bind's source and maps it through a user namespace with the container's maps; the child attaches the copies",
      calls: [
        "clone(CLONE_NEWUSER) a helper, write its maps (those of id-maps below), open /proc/HELPER/ns/user, let it exit",
        ...idmapped.map(([m, i]) => {
          const rec = (m.options ?? []).includes("ridmap");
          return `mounts[${i}]: open_tree(${m.source}, OPEN_TREE_CLONE${
            rec ? "|AT_RECURSIVE" : ""
          }), mount_setattr(MOUNT_ATTR_IDMAP${rec ? ", AT_RECURSIVE" : ""})`;
        }),
      ],
    });
  }
  const copied = r.mounts.flatMap((m, i) => (isTmpcopyup(m) ? [[m, i] as const] : []));
  if (copied.length) {
    host.push({
      where: "host",
      name: "tmpcopyup",
      why:
        "a tmpfs with tmpcopyup starts with what its target held in the image: the parent makes it detached and copies the directory in (symlinks as symlinks, owners and modes kept); the child attaches it. A target missing or empty in the image is a plain tmpfs with the directory's mode",
      calls: copied.map(([m, i]) =>
        `mounts[${i}]: openat2(rootfs, ${m.target}, RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS); fsopen("tmpfs"), fsconfig…, fsmount; copy its entries in, each lstat'ed`
      ),
    });
  }
  host.push({
    where: "host",
    name: "clone",
    why: "new namespaces are made at clone time: PID and user namespaces cannot be unshared by a multithreaded runtime",
    calls: [
      `clone(${
        namespaceNames(flags).map((n) => `CLONE_NEW${n === "mount" ? "NS" : n.toUpperCase()}`).join("|") || "0"
      }|SIGCHLD)`,
      ...r.joinNamespaces.map((j) => `(the child joins ${j.type} at ${j.path})`),
    ],
  });
  if (userns) {
    host.push({
      where: "host",
      name: "id-maps",
      why: "written by the parent while the child waits",
      calls: idMapLines(r),
    });
  }
  if (r.cgroupName) {
    // (every cgroup the parent made, limits or none: container.ts puts the child in it — the child
    // itself where it can, see _cgroup.ts's selfJoinDirs)
    host.push({
      where: "host",
      name: "cgroup-attach",
      why: "before the child runs anything else",
      calls: r.rootless || r.cgroup?.systemd ? ["write PID to cgroup.procs"] : [
        "v1 hierarchies: the child writes 0 to each tasks file, its first calls (a thread that moves itself takes no global lock)",
        "cgroup2: clone3 CLONE_INTO_CGROUP (the native child, x86-64), else write PID to cgroup.procs",
      ],
    });
  }
  if (r.veth) {
    const v = r.veth;
    host.push({
      where: "host",
      name: "veth",
      why:
        "made by the parent while the child waits: the container end goes straight into the child's network namespace",
      calls: [
        ...(v.hostAddress ?? v.containerAddress
          ? ["netlink RTM_GETROUTE, RTM_GETADDR dumps (the subnet must not overlap the host's)"]
          : []),
        `netlink RTM_NEWLINK veth ${v.host}/${v.container} (peer IFLA_NET_NS_PID = PID)`,
        ...hostLinkSysctlPlan(v.host, v.disableHostIpv6),
        ...(v.hostAddress ? [`netlink RTM_NEWADDR ${v.hostAddress} dev ${v.host}`] : []),
        `netlink RTM_NEWLINK ${v.host} IFF_UP`,
      ],
    });
  }
  const child: PlannedStep[] = stepsFor(ctx).map((s) => ({
    where: "child",
    name: s.name,
    why: s.why,
    calls: stepPlan(ctx, s),
  }));
  if (r.hooks.beforeStart) {
    child.push({
      where: "host",
      name: "beforeStart",
      why: "the beforeStart hook, on the host once setup is done, before the command starts (in start())",
      calls: [`${describeHook(r.hooks.beforeStart, "{ pid, name, spec }")} (HAKO_PID, HAKO_NAME)`],
    });
  }
  child.push({
    where: "child",
    name: "exec",
    why: "last: the container's command replaces the child",
    calls: [`execve(${JSON.stringify(r.argv)}, env: ${Object.keys(r.env).join(", ")})`],
  });
  if (r.hooks.afterStop) {
    child.push({
      where: "host",
      name: "afterStop",
      why: "the afterStop hook, on the host once the command has ended (in wait() or delete(), once)",
      calls: [`${describeHook(r.hooks.afterStop, "{ name, status }")} (HAKO_NAME, HAKO_STATUS)`],
    });
  }
  return { name: r.name, steps: [...host, ...child, ...supervision(r, spec.restart)] };
}

/** When each event hook fires (for the plan). */
const EVENT_WHEN: Record<typeof EVENT_HOOK_NAMES[number], string> = {
  onStarted: "when its command has started (after every restart too)",
  onReady: "when its readiness probe succeeds (once per start)",
  onExited: "when its command has ended (HAKO_STATUS)",
  onOom:
    "when the OOM killer kills a process in its cgroup (oom_kill of memory.oom_control, v1, or memory.events, v2; read every 250 ms; HAKO_OOM_KILLS)",
  onMemoryPressure: "when its memory is under pressure (HAKO_PRESSURE)",
};

/** When onMemoryPressure fires, with the spec's thresholds (see memory_pressure.ts). */
function pressureWhen(r: ResolvedSpec): string {
  const p = resolveMemoryPressure(r.memoryPressure);
  return `when the kernel reports memory pressure: cgroup v2, a PSI trigger "some ${p.stallMs * 1000} ${
    p.windowMs * 1000
  }" on its memory.pressure (POLLPRI); v1, memory.pressure_level ${p.level} or higher (cgroup.event_control and an eventfd); hako's 90 % of its limit where neither can be armed; once per episode (HAKO_PRESSURE, HAKO_PRESSURE_MEASURE)`;
}

/**
 * The steps after the command starts: its event hooks (fired on the host by whoever runs it, the
 * supervisor or the library) and its restart policy (the supervisor's).
 */
function supervision(r: ResolvedSpec, restart: ContainerSpec["restart"]): PlannedStep[] {
  const steps: PlannedStep[] = [];
  const hooks = r.hooks;
  if (EventWatcher.wanted(hooks, r.readiness)) {
    const calls: string[] = [];
    const rd = r.readiness;
    if (rd) {
      const every = `every ${rd.intervalMs ?? 500} ms, ${rd.retries ?? 120} times at most`;
      calls.push(
        rd.tcp !== undefined
          ? `readiness: a socket listening on TCP port ${rd.tcp} in its network namespace (/proc/PID/net/tcp, tcp6), ${every}`
          : `readiness: run ${JSON.stringify(hookArgv(rd.command!))} until it exits 0 (HAKO_NAME, HAKO_PID; ${
            rd.timeoutMs ?? 2000
          } ms each), ${every}`,
      );
    }
    for (const k of EVENT_HOOK_NAMES) {
      const hook = hooks[k];
      if (hook) {
        const when = k === "onMemoryPressure" ? pressureWhen(r) : EVENT_WHEN[k];
        calls.push(`${k}: ${describeHook(hook as never, "{ event, name, pid, restartCount, … }")} ${when}`);
      }
    }
    steps.push({
      where: "host",
      name: "events",
      why:
        "the event hooks, on the host, fired by the supervisor (a daemonized container: commands, re-armed by a supervisor that adopts it) or the library (callbacks too); never waited for, 30 s each at most, a failure logged",
      calls,
    });
  }
  const policy = resolveRestart(restart);
  if (policy.policy !== "no") {
    const which = policy.policy === "on-failure"
      ? `when it exits non-zero (or with a status unknown)${
        policy.maxRetries ? `, ${policy.maxRetries} times at most` : ""
      }`
      : "whatever its exit status";
    steps.push({
      where: "host",
      name: "restart",
      why: "the restart policy (docker's --restart), the supervisor's: a daemonized container only",
      calls: [
        `${policy.policy}${
          policy.maxRetries ? `:${policy.maxRetries}` : ""
        }: started again under its name and record ${which}, never after the user stopped it (hako stop, kill, rm -f)`,
        `after ${RESTART_FIRST_DELAY_MS} ms, doubled each time up to ${
          RESTART_MAX_DELAY_MS / 1000
        } s (back to ${RESTART_FIRST_DELAY_MS} ms after a run of 10 s)`,
      ],
    });
  }
  return steps;
}

/**
 * What the parent writes for a user namespace's id maps (container.ts, rootless.ts), as the caller
 * of `hako plan` would: as root, gid_map then uid_map with setgroups left allowed (as runc and crun
 * leave it: a daemon inside that drops privileges with initgroups needs it); rootless with its own
 * ids only, setgroups denied first (the kernel requires it of an unprivileged writer); rootless
 * beyond them, through newgidmap and newuidmap.
 */
function idMapLines(r: ResolvedSpec): string[] {
  const line = (e: { inside: number; outside: number; size: number }) => `${e.inside} ${e.outside} ${e.size}`;
  const uid = process.geteuid?.() ?? 0, gid = process.getegid?.() ?? 0;
  if (r.rootless && !(onlyOwnId(r.uidMap, uid) && onlyOwnId(r.gidMap, gid))) {
    return [`newgidmap PID ${r.gidMap.map(line).join(" ")}`, `newuidmap PID ${r.uidMap.map(line).join(" ")}`];
  }
  return [
    r.rootless ? `write "deny" to /proc/PID/setgroups` : "/proc/PID/setgroups left allowed",
    ...r.gidMap.map((e) => `gid_map: ${line(e)}`),
    ...r.uidMap.map((e) => `uid_map: ${line(e)}`),
  ];
}

/**
 * The container's files (see `_files.ts`) as `Container.create` hands them to the child's setup,
 * named without writing any: the generated ones under `<state>`, the host's bound read-only.
 */
export function plannedFiles(r: ResolvedSpec): ContainerFile[] {
  return containerFileContents(r).map((f) => ({
    source: f.host ?? `<state>/files/${r.name}${f.inside.slice(4)}`,
    target: secureJoin(r.rootfsPath, f.inside),
    inside: f.inside,
    readonly: f.host !== undefined,
  }));
}

/**
 * Control characters (C0, DEL, C1) and the bidirectional overrides: a spec's paths and strings
 * may hold them, and printed raw they would move the cursor, recolour or rewrite the operator's
 * terminal, or reorder what the plan seems to say.
 */
// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** A line of the plan, its unprintable characters written as `\u001b`-style escapes. */
function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .replace(/[\t\n]/g, (c) => (c === "\t" ? "\\t" : "\\n"));
}

/** The plan as text, one numbered step a block (what the spec put in it escaped where unprintable). */
export function planText(plan: ContainerPlan): string {
  const lines = [`Plan for container "${plan.name}" (nothing has been done):`, ""];
  plan.steps.forEach((s, i) => {
    lines.push(`${String(i + 1).padStart(2)}. [${s.where}] ${s.name} — ${printable(s.why)}`);
    for (const c of s.calls) lines.push(`      ${printable(c)}`);
  });
  return `${lines.join("\n")}\n`;
}
