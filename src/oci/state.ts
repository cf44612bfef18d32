/**
 * OCI mode's state on disk: one directory per container under the runtime's root (`--root`,
 * default `/run/hako-runc`), as runc keeps `/run/runc/<id>/`:
 *
 * ```text
 * /run/hako-runc/            0700
 *   <id>/                    0700, made by an exclusive mkdir (two creates of one id: one wins)
 *     state.json             the record below, replaced atomically
 *     exec.fifo              the FIFO the container waits on until `start` (gone once started)
 * ```
 *
 * The status is worked out each time, as runc does: no pid yet → creating; the init (pid and start
 * time) gone or a zombie → stopped; its freezer cgroup frozen → paused (see `freezer.ts`); the
 * FIFO still there → created; else running.
 * @module
 */
// Leaf modules only, and no node: module (files through ffi/_hot.ts, paths by string work):
// `state`, `start`, `kill` and `delete`, which a shim calls several times per container, read a
// record and its status without the container library (container/state.ts, cgroup detection, the
// full FFI table) nor the Node layer (see src/oci/hot.ts).
import { hotFs } from "../../ffi/_hot.ts";
import { isRunning } from "../container/_identity.ts";
import { octalMode, untrustedWayTo, writableByOthers } from "../_trusted_path.ts";
import { inNestedUserNamespace as nestedBy, ociDefaultRoot, overflowUid } from "../_userns.ts";
import type { CgroupSpec } from "../container/spec.ts";
import type { Freezer } from "./freezer.ts";
import type { OciHooks } from "./hooks.ts";

/** `a/b` joined (pure). */
function join(a: string, b: string): string {
  return a.endsWith("/") ? a + b : `${a}/${b}`;
}

/**
 * `path` made absolute from `cwd` with `.`, `..` and repeated slashes resolved, as `node:path`'s
 * `resolve(path)` does (pure).
 */
export function absolutePath(path: string, cwd: string): string {
  const parts: string[] = [];
  for (const p of (path.startsWith("/") ? path : `${cwd}/${path}`).split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return "/" + parts.join("/");
}

/** The default state directory (`--root`) of root on the host. */
export const DEFAULT_OCI_ROOT = "/run/hako-runc";

/** Whether this process runs in a nested user namespace (see src/_userns.ts), asked once. */
export function inNestedUserNamespace(): boolean {
  return nestedBy(hotFs.readText);
}

/**
 * The default `--root` for this caller: {@link DEFAULT_OCI_ROOT}, or `$XDG_RUNTIME_DIR/hako-runc`
 * for a rootless one (runc's rule, see `ociDefaultRoot`).
 */
export function defaultOciRoot(): string {
  const euid = hotFs.euid();
  // (uid_map is read only where the rule can need it)
  return hotFs.env("XDG_RUNTIME_DIR") === undefined
    ? DEFAULT_OCI_ROOT
    : ociDefaultRoot(hotFs.env, euid, euid === 0 && inNestedUserNamespace());
}

/** A container id runc accepts: `^[\w+-\.]+$`, at most 1024 characters, not `.` or `..`. */
export function isValidId(id: string): boolean {
  return /^[\w+.-]{1,1024}$/.test(id) && id !== "." && id !== "..";
}

/** What `create` records. */
export interface OciRecord {
  readonly ociVersion: string;
  readonly id: string;
  /** The hako container name (see `containerNameOf`). */
  readonly name: string;
  readonly bundle: string;
  readonly rootfs: string;
  /** ISO time of create. */
  readonly created: string;
  readonly annotations: Readonly<Record<string, string>>;
  /** The init's pid and start time, once made. */
  readonly pid?: number;
  readonly startTime?: number;
  /** The container's cgroup (relative name) and the spec it was made with (to delete it again). */
  readonly cgroupName?: string;
  readonly cgroup?: CgroupSpec;
  /**
   * Its freezer cgroup as `create` found it, so that every later status reads it without detecting
   * the cgroup layout again (runc records its cgroup paths in its state.json the same way); a
   * record without it (an older hako's) is detected as before.
   */
  readonly freezer?: Freezer;
  /**
   * Every directory of its cgroup as `create` left it (one per hierarchy, the freezer's included),
   * so that `delete` and `kill --all` find them without the cgroup library or detecting the layout
   * (runc's state.json `cgroup_paths`); a record without it (an older hako's) is detected as before.
   */
  readonly cgroupDirs?: readonly string[];
  /** The uid that made it (runc's `owner`). */
  readonly owner: string;
  /** config.json's hooks that `start` and `delete` run (startContainer, poststart, poststop). */
  readonly hooks?: OciHooks;
}

/** The OCI statuses. */
export type OciStatus = "creating" | "created" | "running" | "paused" | "stopped";

/**
 * A `--root` hako will not use: another user's, or on a way another user may change. Its records
 * would be obeyed as root's own — a planted state.json naming a host process's pid and start time
 * would have `kill` signal it, `delete` kill its cgroup — so nothing is read or made there (hako's
 * own state directory is held to the same rule, container/state.ts).
 */
export class OciRootError extends Error {
  /** @param root The directory. @param problem What is wrong. */
  constructor(root: string, problem: string) {
    super(`cannot use --root ${root}: ${problem} (hako keeps it 0700 and owned by the user who runs it)`);
    this.name = "OciRootError";
  }
}

/** The state directory of one runtime root. */
export class OciStore {
  /** The root directory. */
  readonly root: string;
  #trusted = false;
  /** @param root `--root`. */
  constructor(root: string = DEFAULT_OCI_ROOT) {
    this.root = root;
  }
  /**
   * Checks, once, that the root and the way to it are the caller's or root's own (a root not made
   * yet is fine: {@link reserve} makes it 0700).
   * @throws {OciRootError} Naming what is wrong.
   */
  #trust(): void {
    if (this.#trusted) return;
    const uid = hotFs.euid();
    const abs = absolutePath(this.root, hotFs.cwd());
    // In a nested user namespace (rootless podman's) the host's root owns / and /run but shows as
    // the overflow uid, as every other unmapped owner does: trusted there as root is. Root of that
    // namespace has no power beyond the user's, whose files alone a planted record could reach.
    const hostRoot = inNestedUserNamespace() ? [overflowUid(hotFs.readText("/proc/sys/kernel/overflowuid"))] : [];
    const way = untrustedWayTo(abs, uid, hotFs, hostRoot);
    if (way) throw new OciRootError(this.root, way);
    const st = hotFs.stat(abs);
    if (st) {
      if (st.kind !== "dir") throw new OciRootError(this.root, "not a directory");
      if (st.uid !== uid) throw new OciRootError(this.root, `owned by uid ${st.uid}, not ${uid}`);
      if (writableByOthers(st.mode)) {
        throw new OciRootError(this.root, `mode ${octalMode(st.mode)}: group or others may write to it`);
      }
    }
    this.#trusted = true;
  }
  /** The container's directory. */
  dir(id: string): string {
    return join(this.root, id);
  }
  /** The exec FIFO's path. */
  fifo(id: string): string {
    return join(this.dir(id), "exec.fifo");
  }
  /**
   * Reserves `id` (an exclusive mkdir).
   * @returns False when a container of that id exists.
   */
  reserve(id: string): boolean {
    this.#trust();
    // (mkdir -p, each made 0700)
    const abs = absolutePath(this.root, hotFs.cwd());
    let way = "";
    for (const part of abs.split("/").filter((p) => p)) {
      way += `/${part}`;
      try {
        hotFs.mkdir(way, 0o700);
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") throw e;
      }
    }
    hotFs.chmod(this.root, 0o700);
    try {
      hotFs.mkdir(this.dir(id), 0o700);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === "EEXIST") return false;
      throw e;
    }
  }
  /** Writes the record atomically (create and update: the container library is theirs to load). */
  async write(r: OciRecord): Promise<void> {
    const { writePrivateFile } = await import("../container/state.ts");
    writePrivateFile(join(this.dir(r.id), "state.json"), JSON.stringify(r));
  }
  /** The record, or undefined when there is no such container. */
  read(id: string): OciRecord | undefined {
    if (!isValidId(id)) return undefined;
    this.#trust();
    const text = hotFs.readText(join(this.dir(id), "state.json"));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as OciRecord;
    } catch {
      return undefined;
    }
  }
  /** Every container id with a directory here. */
  ids(): string[] {
    this.#trust();
    try {
      return hotFs.readDir(this.root).map((e) => e.name).filter((n) =>
        isValidId(n) && hotFs.stat(this.dir(n))?.kind === "dir"
      )
        .sort();
    } catch {
      return [];
    }
  }
  /** The status now (see the module's comment). */
  status(r: OciRecord): OciStatus {
    if (r.pid === undefined || r.startTime === undefined) return "creating";
    if (!isRunning({ pid: r.pid, startTime: r.startTime })) return "stopped";
    // (a record without its freezer, an older hako's, is given it as it is read: see withFreezer)
    if (r.cgroupName && r.freezer && isFrozenAt(r.freezer)) return "paused";
    return hotFs.exists(this.fifo(r.id)) ? "created" : "running";
  }
  /** Removes the container's directory. */
  remove(id: string): void {
    hotFs.removeTree(this.dir(id));
  }
}

/** Whether the freezer cgroup `f` is frozen now (one that cannot be read is not). */
export function isFrozenAt(f: Freezer): boolean {
  if (f.version === 1) {
    const text = hotFs.readText(join(f.dir, "freezer.state"));
    return text !== undefined && text.trim() !== "THAWED";
  }
  return hotFs.readText(join(f.dir, "cgroup.freeze"))?.trim() === "1";
}

/**
 * `r` with its freezer cgroup, when it lacks one (a record of an older hako, from before `create`
 * recorded it): detected as those hakos did at each read (`freezer.ts`, loaded only then), so that
 * {@link OciStore.status} reads a recorded freezer only.
 */
export async function withFreezer(r: OciRecord): Promise<OciRecord> {
  if (!r.cgroupName || r.freezer) return r;
  const f = (await import("./freezer.ts")).freezerOf(r.cgroupName);
  return f ? { ...r, freezer: f } : r;
}

/** The OCI state JSON (`runc state`). */
export function stateJson(store: OciStore, r: OciRecord): Record<string, unknown> {
  const status = store.status(r);
  return {
    ociVersion: "1.0.2",
    id: r.id,
    pid: status === "stopped" || status === "creating" ? 0 : r.pid ?? 0,
    status,
    bundle: r.bundle,
    rootfs: r.rootfs,
    created: r.created,
    annotations: r.annotations,
    owner: r.owner,
  };
}
