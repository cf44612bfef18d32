/**
 * Rootless mode: what a non-root caller may do, checked before anything is touched, and the id
 * maps written through `newuidmap`/`newgidmap` (shadow-utils' setuid helpers) when the spec maps
 * more than the caller's own ids.
 * @module
 */
import { accessSync, constants as fsConstants, existsSync, lstatSync, readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join, normalize } from "node:path";
import process from "node:process";
import { Group } from "../cgroup/group.ts";
import { containerGroupSpec } from "./_cgroup.ts";
import { containerFileContents } from "./_files.ts";
import { ConfigError } from "../errors.ts";
import { type IdMapEntry, writeIdMap } from "../namespace.ts";
import { which } from "../process.ts";
import type { ResolvedSpec } from "./validate.ts";

/** One subordinate id range from /etc/subuid or /etc/subgid. */
export interface SubIdRange {
  readonly start: number;
  readonly count: number;
}

/** The ranges `/etc/subuid`-style `text` grants to the user `name` (or its numeric `id`). */
export function parseSubIds(text: string, name: string, id: number): SubIdRange[] {
  const out: SubIdRange[] = [];
  for (const line of text.split("\n")) {
    const [who, start, count] = line.trim().split(":");
    if (!who || who.startsWith("#") || (who !== name && who !== String(id))) continue;
    const s = Number(start), c = Number(count);
    if (Number.isInteger(s) && Number.isInteger(c) && c > 0) out.push({ start: s, count: c });
  }
  return out;
}

function subIds(file: string, name: string, id: number): SubIdRange[] {
  try {
    return parseSubIds(readFileSync(file, "utf8"), name, id);
  } catch {
    return [];
  }
}

/** True when `map` maps nothing but `own` (which an unprivileged process may write itself). */
export function onlyOwnId(map: readonly IdMapEntry[], own: number): boolean {
  return map.every((e) => e.outside === own && e.size === 1);
}

function callerName(uid: number): string {
  try {
    return userInfo().username;
  } catch {
    return String(uid);
  }
}

/**
 * The mount points hako makes in a rootfs when they are missing: /etc/hosts and the others of
 * `networkEtc` (by the parent), /proc, /sys and /dev (by the child, with the standard mounts), and
 * the targets of the spec's mounts outside those (pure: the paths inside).
 */
export function mountPointsOf(spec: ResolvedSpec): string[] {
  const standard = spec.standardMounts && spec.newNamespaces.includes("mount") ? ["/proc", "/sys", "/dev"] : [];
  const under = (p: string) => standard.some((s) => p === s || p.startsWith(`${s}/`));
  const targets = spec.mounts.map((m) => normalize(`/${m.target}`)).filter((t) => !under(t));
  return [...new Set([...containerFileContents(spec).map((f) => f.inside), ...standard, ...targets])];
}

/**
 * The mount points of `paths` (inside) that `root` lacks and the caller cannot make there: the
 * nearest existing directory of each is not writable by it. A rootless caller is root inside its
 * user namespace only, with no power over the host's files: a rootfs root owns (an image
 * extracted by root) can be used as it is only when every mount point is there.
 */
export function unmakeableMountPoints(root: string, paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const inside of paths) {
    let at = join(root, inside);
    if (lstatSync(at, { throwIfNoEntry: false })) continue;
    while (at !== root && !lstatSync(at, { throwIfNoEntry: false })) at = dirname(at);
    try {
      accessSync(at, fsConstants.W_OK);
    } catch {
      out.push(inside);
    }
  }
  return out;
}

/**
 * The directory where the cgroup `name` would be made that the caller may not write to, or
 * undefined when it may make it in every hierarchy (a cgroup delegated to it, or root's host).
 * @param name The cgroup's name.
 * @param cgroup The spec's cgroup section (which controllers).
 */
export function undelegatedCgroupDir(name: string, cgroup: ResolvedSpec["cgroup"]): string | undefined {
  for (const path of new Group(name, containerGroupSpec(cgroup)).paths) {
    let dir = dirname(path);
    while (!existsSync(dir) && dir !== "/") dir = dirname(dir);
    try {
      accessSync(dir, fsConstants.W_OK);
    } catch {
      return dir;
    }
  }
  return undefined;
}

/** How the id maps of a rootless container are written. */
export interface RootlessPlan {
  /** The helpers to use, or undefined to write /proc/PID/{uid,gid}_map directly. */
  readonly helpers?: { readonly newuidmap: string; readonly newgidmap: string };
}

/**
 * Checks a rootless spec before anything is touched: a cgroup section needs a delegated
 * (writable) cgroup; id maps beyond the caller's own ids need newuidmap/newgidmap and ranges in
 * /etc/subuid and /etc/subgid.
 * @throws {ConfigError} Saying what is missing and how to fix it.
 */
export function checkRootless(spec: ResolvedSpec): RootlessPlan {
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  const dir = spec.cgroupName ? undelegatedCgroupDir(spec.cgroupName, spec.cgroup) : undefined;
  if (dir) {
    throw new ConfigError(
      "cgroup",
      `rootless mode needs a delegated cgroup (${dir} is not writable by uid ${uid}); remove the cgroup section or delegate one`,
    );
  }
  // A rootfs there already (not one a builder or tarball is to make, the caller's own) must have
  // the mount points the caller cannot make: said before anything is touched, with what to do.
  if (existsSync(spec.rootfsPath)) {
    const missing = unmakeableMountPoints(spec.rootfsPath, mountPointsOf(spec));
    if (missing.length) {
      const owner = lstatSync(spec.rootfsPath).uid;
      const etc = missing.some((p) => p.startsWith("/etc/")) ? ", or set networkEtc: false" : "";
      throw new ConfigError(
        "rootfs",
        `${spec.rootfsPath} (owned by uid ${owner}) lacks mount points that uid ${uid} cannot make in it: ${
          missing.join(", ")
        }; have its owner make them (mkdir for a directory, touch for a file), or use a rootfs of your own (copied or extracted as uid ${uid})${etc}`,
      );
    }
  }
  // (root of a nested user namespace writes a new one's maps itself, within the ids it has)
  if (uid === 0 || (onlyOwnId(spec.uidMap, uid) && onlyOwnId(spec.gidMap, gid))) return {};
  const name = callerName(uid);
  const newuidmap = which("newuidmap", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
  const newgidmap = which("newgidmap", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
  const hint = `map only your own ids (leave idMap out), or install newuidmap/newgidmap (uidmap package)` +
    ` and give ${name} ranges in /etc/subuid and /etc/subgid`;
  if (!newuidmap || !newgidmap) {
    throw new ConfigError(
      "idMap",
      `maps more than uid ${uid}/gid ${gid}, which rootless mode cannot do itself: ${hint}`,
    );
  }
  for (
    const [kind, map, own, file] of [
      ["uid", spec.uidMap, uid, "/etc/subuid"],
      ["gid", spec.gidMap, gid, "/etc/subgid"],
    ] as const
  ) {
    const ranges = subIds(file, name, own);
    for (const e of map) {
      const ok = (e.outside === own && e.size === 1) ||
        ranges.some((r) => e.outside >= r.start && e.outside + e.size <= r.start + r.count);
      if (!ok) {
        throw new ConfigError(
          `idMap.${kind}`,
          `${e.outside}..${e.outside + e.size - 1} is neither ${kind} ${own} nor within ${name}'s ranges in ${file} (${
            ranges.map((r) => `${r.start}+${r.count}`).join(", ") || "none"
          }): ${hint}`,
        );
      }
    }
  }
  return { helpers: { newuidmap, newgidmap } };
}

/** Writes the child's id maps, through the helpers when `plan` has them. */
export function writeRootlessIdMaps(pid: number, spec: ResolvedSpec, plan: RootlessPlan): void {
  if (!plan.helpers) {
    writeIdMap(pid, "gid", spec.gidMap);
    writeIdMap(pid, "uid", spec.uidMap);
    return;
  }
  for (const [tool, map] of [[plan.helpers.newgidmap, spec.gidMap], [plan.helpers.newuidmap, spec.uidMap]] as const) {
    const args = [String(pid), ...map.flatMap((e) => [e.inside, e.outside, e.size].map(String))];
    // (node:child_process loaded here, not at import: ~4 ms of every start under Bun; bench/oci.ts)
    const { spawnSync } = process.getBuiltinModule("node:child_process") as typeof import("node:child_process");
    const r = spawnSync(tool, args, { encoding: "utf8" });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`${tool} ${args.join(" ")} failed: ${(r.stderr ?? "").trim() || r.status}`);
  }
}
