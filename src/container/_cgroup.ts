/**
 * A container's cgroup: every container gets one of its own, as docker gives each container its
 * own even without limits — so its processes are counted and bounded (pids), charged to it
 * (memory, cpu, io) rather than to the caller, found again by `stop`/`delete`, and kept from the
 * host's devices (the device rules). It is made new, under a parent (`hako` by default, an
 * admin's `cgroup.parent` otherwise), and never adopted: an existing cgroup of that name is
 * refused, so a container can never kill a host service's processes on its way out.
 * @module
 */
import { mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { postOrder } from "../cgroup/_walk.ts";
import { dirname } from "node:path";
import { detect, type Layout } from "../cgroup/layout.ts";
import type { Group, GroupSpec } from "../cgroup/group.ts";
import {
  DEFAULT_SLICE,
  deviceProperties,
  limitProperties,
  scopeCgroupName,
  scopeProperties,
  systemdRunning,
  type SystemdScope,
} from "../cgroup/systemd.ts";
import { SystemdManager } from "../cgroup/systemd_manager.ts";
import type { ContainerSpec } from "./spec.ts";

/** How old an empty cgroup of a container's name must be to count as a crashed one's leftover. */
const STALE_AFTER_MS = 10_000;

export { DEFAULT_CGROUP_PARENT } from "./_cgroup_parent.ts";
import { DEFAULT_CGROUP_PARENT } from "./_cgroup_parent.ts";

/**
 * The cgroup name of a container: its systemd scope's path (see `src/cgroup/systemd.ts`), else
 * `cgroup.name` as given, else `<cgroup.parent or hako>/<name>`;
 * undefined for a rootless container without a `cgroup` section (an unprivileged user may make
 * cgroups only in a subtree delegated to it, which it names itself).
 */
export function containerCgroupName(spec: ContainerSpec, rootless: boolean): string | undefined {
  const cg = spec.cgroup;
  if (cg?.systemd) return scopeCgroupName(cg.systemd);
  if (cg?.name !== undefined) return cg.name;
  if (rootless && !cg) return undefined;
  return `${cg?.parent ?? DEFAULT_CGROUP_PARENT}/${spec.name}`;
}

/** The controllers the host offers a container's cgroup: v1 hierarchies mounted, or the v2 root's. */
function offered(layout: Layout): Set<string> {
  if (layout.version === 1) return new Set(Object.keys(layout.v1));
  return new Set(layout.unifiedControllers);
}

let hostLayout: Layout | null | undefined;
function layout(): Layout | null {
  if (hostLayout !== undefined) return hostLayout;
  try {
    hostLayout = detect();
  } catch {
    hostLayout = null;
  }
  return hostLayout;
}

/**
 * The group a container's cgroup is made with: the spec's sections, plus — where the host offers
 * the controller — an empty pids, memory, cpu and io section each, so the container is counted
 * and charged in every one of them even without limits; and the device allowlist (runc's default
 * rules plus the spec's), except for a rootless container, whose user namespace already keeps it
 * from mknod and which may not load a device program (runc does the same).
 */
export function containerGroupSpec(spec: ContainerSpec["cgroup"], options: { devices?: boolean } = {}): GroupSpec {
  const { name: _name, parent: _parent, systemd: _systemd, ...limits } = spec ?? {};
  const have = offered(layout() ?? { version: 2, unifiedControllers: [] } as unknown as Layout);
  const io = have.has("io") || have.has("blkio");
  return {
    ...(have.has("pids") ? { pids: {} } : {}),
    ...(have.has("memory") ? { memory: {} } : {}),
    ...(have.has("cpu") ? { cpu: {} } : {}),
    ...(io ? { io: {} } : {}),
    ...(options.devices ?? true ? { devices: [] } : {}),
    ...limits,
  } as GroupSpec;
}

/**
 * Every directory of cgroup `name` that exists on this host (any v1 hierarchy, or the cgroup2
 * tree): empty when there is none.
 */
export function existingCgroupDirs(name: string): string[] {
  const l = layout();
  if (!l) return [];
  const roots = [...new Set([...Object.values(l.v1), ...namedRoots(l)]), ...(l.unified ? [l.unified] : [])];
  return roots.map((r) => `${r}/${name}`).filter((d) => statSync(d, { throwIfNoEntry: false })?.isDirectory());
}

/** Where the named v1 hierarchies (`name=systemd`: no controller) are mounted. */
function namedRoots(l: Layout): string[] {
  return [
    ...new Set(l.mounts.filter((m) => m.version === 1 && m.name && !m.subsystems.length).map((m) => m.mountPoint)),
  ];
}

/**
 * Makes a cgroup `name` of its own in every hierarchy the container's {@link Group} does not
 * occupy, for the container to join as runc's cgroupfs manager joins every one mounted (its child
 * moves itself into the v1 ones, see {@link selfJoinDirs}; the parent writes the rest): the named
 * v1 hierarchies (`name=systemd`: on a legacy or hybrid host where a systemd running as the container's init —
 * podman `--systemd`, which binds it at /sys/fs/cgroup/systemd — finds the subtree it manages, and
 * where the host's systemd sees it), v1 controllers the spec sets nothing for (cpuset: its cpus and
 * mems copied down from the parent into each directory made, as runc's cpuset manager does;
 * net_cls, perf_event…), and a hybrid host's controller-less cgroup2 tree (where systemd tracks
 * processes there). Each is made new (one there already is another's: refused); its parents as
 * needed (left, as runc leaves them). A hierarchy the caller may not write (rootless) is left out,
 * as runc ignores a cgroup it cannot join.
 * @param name The container's cgroup name.
 * @param occupied The directories the container's group made (`Group.paths`): not joined again.
 * @returns The cgroups made, to remove with {@link removeOtherCgroups}.
 * @throws {Error} When one cannot be made (what was made is removed).
 */
export function makeOtherCgroups(name: string, occupied: readonly string[] = []): string[] {
  const l = layout();
  if (!l) return [];
  const made: string[] = [];
  try {
    for (const { root, cpuset } of otherRoots(l)) {
      const dir = `${root}/${name}`;
      if (occupied.includes(dir)) continue;
      const fresh: string[] = [];
      try {
        // (parents one by one: a cpuset directory made empty gets its parent's cpus and mems)
        const parts = name.split("/").filter(Boolean);
        for (let k = 1; k < parts.length; k++) {
          const parent = `${root}/${parts.slice(0, k).join("/")}`;
          if (statSync(parent, { throwIfNoEntry: false })?.isDirectory()) continue;
          try {
            mkdirSync(parent);
            fresh.push(parent);
          } catch (e) {
            // (another container's create made it meanwhile: a parent is shared)
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
          }
        }
        mkdirSync(dir); // (exclusive: EEXIST for another's)
        fresh.push(dir);
      } catch (e) {
        if (["EACCES", "EPERM", "EROFS"].includes((e as NodeJS.ErrnoException).code ?? "")) continue;
        throw e;
      }
      made.push(dir);
      if (cpuset) {
        for (const d of fresh) {
          for (const f of ["cpuset.cpus", "cpuset.mems"]) {
            if (readFileSync(`${d}/${f}`, "utf8").trim() !== "") continue;
            // (the nearest ancestor's that has some: a parent another create made a moment ago
            // may not have had its own copied yet)
            let value = "";
            for (let up = dirname(d); value === "" && up.startsWith(root); up = dirname(up)) {
              value = readFileSync(`${up}/${f}`, "utf8").trim();
            }
            writeFileSync(`${d}/${f}`, value);
          }
        }
      }
    }
  } catch (e) {
    removeOtherCgroups(made);
    throw e;
  }
  return made;
}

/**
 * Which of a container's cgroup directories its child can move itself into without the kernel's
 * global threadgroup lock: those on a cgroup v1 hierarchy, whose `tasks` file moves the thread that
 * writes `0` — the single-threaded child itself, all of it — without taking
 * `cgroup_threadgroup_rwsem` for writing (measured on 6.18: 50–80 µs; a kernel that takes it would
 * make the child pay the wait instead of the parent). A `cgroup.procs` write takes it, and the
 * first writer after a quiet moment waits for an RCU grace period (5–20 ms; see _prime.ts). The
 * others (cgroup2's: a thread may not leave its domain that way) are joined by the parent, or at
 * the clone (`CLONE_INTO_CGROUP`).
 * @param dirs The container's cgroup directories.
 * @returns The directories on v1 hierarchies (`self`: the child joins them), on cgroup2 ones
 *   (`v2`: one may be joined at the clone) and the others, each in order.
 */
export function selfJoinDirs(dirs: readonly string[]): { self: string[]; v2: string[]; others: string[] } {
  const mounts = layout()?.mounts ?? [];
  const self: string[] = [], v2: string[] = [], others: string[] = [];
  for (const d of dirs) {
    // (the longest mount point it is under: a hierarchy mounted inside another's directory)
    let best: { mountPoint: string; version: 1 | 2 } | undefined;
    for (const m of mounts) {
      if (!d.startsWith(`${m.mountPoint}/`)) continue;
      if (!best || m.mountPoint.length > best.mountPoint.length) best = m;
    }
    (best?.version === 1 ? self : best?.version === 2 ? v2 : others).push(d);
  }
  return { self, v2, others };
}

/**
 * The directories {@link makeOtherCgroups} makes for cgroup `name` beside the group's own
 * (`occupied`): one per mounted hierarchy the group does not occupy. Where the caller may not
 * write a hierarchy (rootless) it makes none there.
 * @param name The container's cgroup name.
 * @param occupied The group's directories (`Group.paths`).
 */
export function otherCgroupDirs(name: string, occupied: readonly string[] = []): string[] {
  const l = layout();
  return l ? otherRoots(l).map(({ root }) => `${root}/${name}`).filter((d) => !occupied.includes(d)) : [];
}

/**
 * Every mounted hierarchy once (a hierarchy mounted at two places, at its first), with whether it
 * is cpuset's: the v1 ones, controllers and named, and a hybrid host's cgroup2 tree.
 */
function otherRoots(l: Layout): Array<{ root: string; cpuset: boolean }> {
  const seen = new Set<string>();
  const roots: Array<{ root: string; cpuset: boolean }> = [];
  for (const m of l.mounts) {
    if (m.version !== 1) continue;
    const key = m.name ? `name=${m.name}` : [...m.subsystems].sort().join(",");
    if (seen.has(key)) continue;
    seen.add(key);
    roots.push({ root: m.mountPoint, cpuset: m.subsystems.includes("cpuset") });
  }
  if (l.hybrid && l.unified) roots.push({ root: l.unified, cpuset: false });
  return roots;
}

/**
 * Removes the cgroups {@link makeOtherCgroups} made, and any the container made under them (a
 * systemd inside makes its slices there), deepest first, once their processes are gone (best
 * effort, 1 s each).
 */
export function removeOtherCgroups(dirs: readonly string[]): void {
  const children = (d: string) => {
    try {
      return readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `${d}/${e.name}`);
    } catch {
      return [];
    }
  };
  for (const dir of dirs.flatMap((d) => postOrder(d, children))) {
    for (let i = 0; i < 100; i++) {
      try {
        rmdirSync(dir);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EBUSY") break;
        // (the killed processes leave the cgroup a moment after they die)
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
    }
  }
}

/**
 * Removes hako's own parent cgroup (`hako`) from every hierarchy where it is left empty; an
 * admin's `cgroup.parent` is theirs and stays. Best effort: a parent still in use stays.
 */
export function removeEmptyDefaultParent(name: string): void {
  if (!name.startsWith(`${DEFAULT_CGROUP_PARENT}/`)) return;
  for (const dir of existingCgroupDirs(DEFAULT_CGROUP_PARENT)) {
    try {
      rmdirSync(dir);
    } catch { /* in use (another container's cgroup is in it): kept */ }
  }
}

/**
 * A container's default-named cgroup left behind by one that crashed (hako's naming, under its
 * parent): removed when it is empty — no process, no child cgroup — so the name can be used again.
 * One with processes in it is kept, and the exclusive create then says it exists.
 */
export function removeStaleCgroup(name: string): void {
  for (const dir of existingCgroupDirs(name)) {
    try {
      if (readFileSync(`${dir}/cgroup.procs`, "utf8").trim() !== "") continue;
      // (one made a moment ago is another container's of this name, between its mkdir and attach)
      if (Date.now() - statSync(dir).mtimeMs < STALE_AFTER_MS) continue;
      rmdirSync(dir); // (fails with EBUSY when it has child cgroups: kept)
    } catch { /* kept: the create says why */ }
  }
}

/**
 * Starts a container's systemd scope with `pid` in it (see `src/cgroup/systemd.ts`): the group's
 * limits and device list go as unit properties; the caller then makes the directories systemd
 * leaves to others and writes the limits (`group.create()`, `attach`).
 * @param warn Told what systemd's device list leaves out.
 * @throws {Error} When systemd does not run here; {@link DbusError} when it refuses
 *   (`UnitExists`: a scope of that name is there already).
 */
export function startSystemdScope(
  scope: SystemdScope,
  name: string,
  group: Group,
  pid: number,
  warn: (message: string) => void,
): void {
  if (!systemdRunning()) {
    throw new Error(
      "systemd does not run this host (no /run/systemd/system): a cgroup.systemd scope needs it (use a cgroupfs name)",
    );
  }
  const m = SystemdManager.connect();
  try {
    const version = group.controllers[0]?.version ?? 2;
    const limits = limitProperties(group.plannedWrites(), version, m.version());
    const devices = group.devices ? deviceProperties(group.devices.allowlist) : { properties: [], warnings: [] };
    devices.warnings.forEach(warn);
    const slice = scope.slice ?? DEFAULT_SLICE;
    m.startTransientUnit(
      scope.unit,
      scopeProperties({ name, slice, pid, version }, [...devices.properties, ...limits]),
    );
  } finally {
    m.close();
  }
}

/**
 * Stops a container's systemd scope (its processes are gone or killed first) and forgets its
 * failed state; one that is gone is no error.
 * @throws {SyscallError|DbusError} When systemd cannot be reached or refuses.
 */
export function stopSystemdScope(unit: string): void {
  const m = SystemdManager.connect();
  try {
    m.stopUnit(unit);
  } finally {
    m.close();
  }
}
