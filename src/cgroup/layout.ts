/**
 * Where the cgroup filesystems are: v1 hierarchies (one per controller or per group of controllers,
 * e.g. `cpu,cpuacct`), a cgroup2 mount, or both (the "hybrid" layout), read from
 * `/proc/self/mountinfo` at run time.
 *
 * @example Which layout does this host use?
 * ```ts ignore
 * import { Cgroup } from "./mod.ts";
 * const layout = Cgroup.detect();
 * console.log(layout.version, layout.hybrid, layout.v1.cpu, layout.unified);
 * ```
 * @module
 */
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { MountTableWatch } from "../../ffi/poll.ts";
import { libc } from "../../ffi/libc.ts";
import { isAbsolute, resolve } from "node:path";
import { ConfigError, SetupError } from "../errors.ts";

/** The controllers hako knows on cgroup v1 (`blkio` is v2's `io`). */
export const V1_SUBSYSTEMS: readonly string[] = [
  "cpu",
  "cpuacct",
  "cpuset",
  "memory",
  "pids",
  "blkio",
  "devices",
  "freezer",
  "net_cls",
  "net_prio",
  "perf_event",
  "hugetlb",
  "rdma",
  "misc",
];

/** One cgroup mount from mountinfo. */
export interface CgroupMount {
  /** Where it is mounted, e.g. `/sys/fs/cgroup/cpu`. */
  readonly mountPoint: string;
  /** 1 for `cgroup`, 2 for `cgroup2`. */
  readonly version: 1 | 2;
  /** The v1 controllers of this hierarchy (`["cpu", "cpuacct"]`); empty for cgroup2. */
  readonly subsystems: readonly string[];
  /**
   * A named v1 hierarchy's name (`systemd` for `name=systemd`, where systemd tracks units on a
   * legacy host); absent otherwise. hako makes no cgroup there; `exec` joins the container's.
   */
  readonly name?: string;
}

/** The cgroup layout of a host (see {@link detect}). */
export interface Layout {
  /**
   * 1 when any controller is mounted as a cgroup v1 hierarchy (a hybrid host counts as 1: its
   * controllers live on v1), 2 when only cgroup2 is mounted.
   */
  readonly version: 1 | 2;
  /** True when v1 hierarchies and a cgroup2 mount coexist. */
  readonly hybrid: boolean;
  /** The v1 mount point of each mounted controller: `{ cpu: "/sys/fs/cgroup/cpu", … }`. */
  readonly v1: Readonly<Record<string, string>>;
  /** The cgroup2 mount point, or null when none is mounted. */
  readonly unified: string | null;
  /** The controllers the cgroup2 root offers (its `cgroup.controllers`); empty when none. */
  readonly unifiedControllers: readonly string[];
  /** Every cgroup mount found, in mountinfo order. */
  readonly mounts: readonly CgroupMount[];
}

/** Undoes mountinfo's octal escapes (`\040` is a space). */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Parses the cgroup mounts out of `/proc/self/mountinfo` text.
 *
 * @param text The mountinfo text.
 * @returns The cgroup and cgroup2 mounts, in order.
 */
export function parseMountinfo(text: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of text.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(" ");
    const right = line.slice(sep + 3).split(" ");
    const fstype = right[0];
    const mountPoint = left[4];
    if (!mountPoint || (fstype !== "cgroup" && fstype !== "cgroup2")) continue;
    if (fstype === "cgroup2") {
      mounts.push({ mountPoint: unescapeMountPath(mountPoint), version: 2, subsystems: [] });
      continue;
    }
    const superOptions = (right[2] ?? "").split(",");
    const subsystems = superOptions.filter((o) => V1_SUBSYSTEMS.includes(o));
    const name = superOptions.find((o) => o.startsWith("name="))?.slice(5);
    mounts.push({ mountPoint: unescapeMountPath(mountPoint), version: 1, subsystems, ...(name ? { name } : {}) });
  }
  return mounts;
}

/** Picks the cgroup2 mount to use: /sys/fs/cgroup first, then /sys/fs/cgroup/unified, then the first. */
function pickUnified(mounts: readonly CgroupMount[]): string | null {
  const v2 = mounts.filter((m) => m.version === 2).map((m) => m.mountPoint);
  return v2.find((p) => p === "/sys/fs/cgroup") ?? v2.find((p) => p === "/sys/fs/cgroup/unified") ?? v2[0] ?? null;
}

/**
 * Builds a {@link Layout} from mountinfo text (pure, except that the cgroup2 root's
 * `cgroup.controllers` is read when `readControllers` is true).
 *
 * @param text The mountinfo text.
 * @param readControllers Read the cgroup2 root's `cgroup.controllers` (default true).
 * @returns The layout.
 */
export function layoutFromMountinfo(text: string, readControllers = true): Layout {
  const mounts = parseMountinfo(text);
  const v1: Record<string, string> = {};
  for (const m of mounts) {
    for (const s of m.subsystems) v1[s] ??= m.mountPoint;
  }
  const unified = pickUnified(mounts);
  let unifiedControllers: string[] = [];
  if (unified && readControllers) {
    try {
      unifiedControllers = readFileSync(`${unified}/cgroup.controllers`, "utf8").trim().split(/\s+/).filter(Boolean);
    } catch { /* an old kernel or an odd mount: none */ }
  }
  const hasV1 = Object.keys(v1).length > 0;
  return {
    version: hasV1 ? 1 : 2,
    hybrid: hasV1 && unified !== null,
    v1,
    unified,
    unifiedControllers,
    mounts,
  };
}

/**
 * Detects the host's cgroup layout from `/proc/self/mountinfo`.
 *
 * @returns The layout: v1 hierarchies, the cgroup2 mount and its controllers.
 * @throws {SetupError} When no cgroup filesystem is mounted (or mountinfo cannot be read).
 *
 * @example
 * ```ts ignore
 * const { version, v1, unified } = Cgroup.detect();
 * ```
 */
export function detect(): Layout {
  // Kept while this mount namespace's mount table is unchanged (a container's start asks several
  // times; reading and parsing mountinfo each time cost ~0.5 ms). A forked child (another pid)
  // does not use its parent's watch: the two would share its "seen" mark.
  const ns = mountNamespace();
  const pid = libc().getpid();
  if (cache && cache.ns === ns && cache.pid === pid && !cache.watch.changed()) return cache.layout;
  if (cache?.pid === pid) cache.watch.close();
  cache = undefined;
  let watch: MountTableWatch | undefined;
  try {
    watch = new MountTableWatch(); // before the read: a change after it is seen next time
  } catch { /* no watch: nothing kept */ }
  let layout: Layout;
  try {
    layout = detectNow();
  } catch (e) {
    watch?.close();
    throw e;
  }
  if (watch && ns) cache = { layout, ns, pid, watch };
  else watch?.close();
  return layout;
}

let cache:
  | { readonly layout: Layout; readonly ns: string; readonly pid: number; readonly watch: MountTableWatch }
  | undefined;

/** This process's mount namespace (`mnt:[N]`), or "" when unknown. */
function mountNamespace(): string {
  try {
    return readlinkSync("/proc/self/ns/mnt");
  } catch {
    return "";
  }
}

function detectNow(): Layout {
  let text: string;
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch (e) {
    throw new SetupError("cgroup detect", `cannot read /proc/self/mountinfo (${(e as Error).message})`, { cause: e });
  }
  const layout = layoutFromMountinfo(text);
  if (layout.mounts.length === 0) {
    throw new SetupError("cgroup detect", "no cgroup or cgroup2 filesystem is mounted (see /proc/self/mountinfo)");
  }
  // Shared by every caller until the mount table changes: read-only.
  for (const m of layout.mounts) Object.freeze(m.subsystems), Object.freeze(m);
  return Object.freeze({
    ...layout,
    v1: Object.freeze(layout.v1),
    unifiedControllers: Object.freeze(layout.unifiedControllers),
    mounts: Object.freeze(layout.mounts),
  });
}

/**
 * The cgroup version in use: of the host (see {@link Layout.version}), or of the cgroup tree at
 * `root` (2 when `root` holds `cgroup.controllers`, or is a cgroup2 mount; 1 otherwise).
 *
 * @param root A cgroup root to look at instead of the host's layout.
 * @returns 1 or 2.
 * @throws {ConfigError} When `root` is not an absolute path.
 * @throws {SetupError} When no cgroup filesystem is mounted.
 *
 * @example
 * ```ts ignore
 * Cgroup.version();                         // 1 on a v1 or hybrid host, 2 on a pure v2 host
 * Cgroup.version("/sys/fs/cgroup/unified"); // 2
 * ```
 */
export function version(root?: string): 1 | 2 {
  if (root === undefined) return detect().version;
  return rootVersion(root);
}

/** The version of the tree at `root` (an absolute path). */
export function rootVersion(root: string): 1 | 2 {
  assertValidRoot(root);
  if (existsSync(`${root}/cgroup.controllers`)) return 2;
  try {
    const mounts = parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"));
    if (mounts.some((m) => m.version === 2 && m.mountPoint === resolve(root))) return 2;
  } catch { /* no mountinfo: by the files alone */ }
  return 1;
}

/**
 * Checks a cgroup root option: an absolute path without NUL.
 *
 * @param root The root.
 * @throws {ConfigError} When it is not.
 */
export function assertValidRoot(root: string): void {
  if (typeof root !== "string" || root === "") throw new ConfigError("cgroup.root", "must be a non-empty path");
  if (root.includes("\0")) throw new ConfigError("cgroup.root", "must not contain a NUL character");
  if (!isAbsolute(root)) throw new ConfigError("cgroup.root", `must be an absolute path, got ${JSON.stringify(root)}`);
}
