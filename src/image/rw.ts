/**
 * A container's private writable layer on a shared image: an overlayfs mount (lowerdir = the
 * image's chain dir, upperdir and workdir beside it) that hako makes on the host before the
 * container is created and removes when it is deleted (or by `hako gc` once its container is
 * gone), so one container's writes are never seen by the next, nor by the image. Where overlay
 * cannot mount (a user namespace on a kernel before 5.11, a file system overlay refuses as upper)
 * the image is copied instead (`cp -a`), as podman's vfs driver does.
 *
 * ```text
 * images/rw/NAME.XXXXXX/
 *   layer.json   the image, the container's name, the process that made it, "overlay" or "copy"
 *   upper/ work/ overlay's (0700, root's)
 *   rootfs/      the container's rootfs: the overlay's mount point, or the copy
 * ```
 * @module
 */
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { mount, umount } from "../mount.ts";
import { SetupError, SyscallError } from "../errors.ts";
import { mountsAtOrUnder } from "../container/_rootfs_ref.ts";
import { type ImageRecord, imageRootfs, imagesDir } from "./store.ts";

/** A writable layer made by {@link makeWritable}. */
export interface WritableLayer {
  /** Its directory (`images/rw/NAME.XXXXXX`). */
  readonly dir: string;
  /** The container's rootfs in it. */
  readonly rootfs: string;
  /** How it was made. */
  readonly kind: "overlay" | "copy";
}

/** What `layer.json` holds. */
interface LayerFile {
  version: 1;
  image: string;
  container: string;
  /** The state directory the container is recorded in. */
  state: string;
  pid: number;
  startTime: number;
  kind: "overlay" | "copy";
}

function startTime(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return -1;
  }
}

/** The directory of every writable layer. */
export function rwDir(varDir: string): string {
  return join(imagesDir(varDir), "rw");
}

/**
 * Makes a container's writable layer on `image`: overlay when it mounts, else a copy.
 * @param varDir The var directory of the store.
 * @param image The image.
 * @param container The container's name (kept in `layer.json`, for delete and gc).
 * @param options `copy`: skip overlay (as when it is known not to mount); the state directory.
 * @throws {SetupError} Step `image`: neither could be made (what is made so far is removed).
 */
export function makeWritable(
  varDir: string,
  image: ImageRecord,
  container: string,
  options: { copy?: boolean; stateDir: string },
): WritableLayer {
  const lower = imageRootfs(varDir, image);
  const base = rwDir(varDir);
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const safe = container.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 100);
  const dir = mkdtempSync(join(base, `${safe}.`));
  const rootfs = join(dir, "rootfs");
  const record = (kind: "overlay" | "copy"): LayerFile => ({
    version: 1,
    image: image.id,
    container,
    state: options.stateDir,
    pid: process.pid,
    startTime: startTime(process.pid),
    kind,
  });
  try {
    for (const d of ["upper", "work", "rootfs"]) mkdirSync(join(dir, d), { mode: 0o700 });
    // (overlay's options are split at commas and colons: a path holding one is not given to it)
    if (!options.copy && ![lower, dir].some((p) => /[,:\\]/.test(p))) {
      writeFileSync(join(dir, "layer.json"), JSON.stringify(record("overlay")) + "\n", { mode: 0o600 });
      try {
        mount("overlay", rootfs, {
          type: "overlay",
          flags: ["nodev"],
          data: `lowerdir=${lower},upperdir=${join(dir, "upper")},workdir=${join(dir, "work")}`,
        });
        return { dir, rootfs, kind: "overlay" };
      } catch (e) {
        if (!(e instanceof SyscallError)) throw e;
        // EPERM (no privilege over the mount), EINVAL (an upper overlay refuses), ENODEV (no overlay)
      }
    }
    writeFileSync(join(dir, "layer.json"), JSON.stringify(record("copy")) + "\n", { mode: 0o600 });
    execFileSync("cp", ["-a", "--", `${lower}/.`, `${rootfs}/`], { stdio: "pipe" });
    return { dir, rootfs, kind: "copy" };
  } catch (e) {
    removeLayerDir(dir);
    const err = e as { message?: string; stderr?: Buffer };
    throw new SetupError(
      "image",
      `a writable layer for ${container} on ${image.id}: ${err.stderr?.toString().trim() || err.message || e}`,
      { cause: e },
    );
  }
}

/** Unmounts what is mounted at or under `dir` (lazily: a process still in it keeps it), then removes it. */
function removeLayerDir(dir: string): void {
  for (const m of mountsAtOrUnder(dir).reverse()) {
    try {
      umount(m, { detach: true });
    } catch { /* gone meanwhile */ }
  }
  if (mountsAtOrUnder(dir).length > 0) return; // never remove through a mount
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Removes a writable layer: its overlay unmounted, its directory (and the container's writes) gone.
 * @param layer The layer's directory (as {@link WritableLayer.dir}).
 */
export function releaseWritable(layer: string): void {
  removeLayerDir(layer);
}

function readLayer(dir: string): LayerFile | undefined {
  try {
    const v = JSON.parse(readFileSync(join(dir, "layer.json"), "utf8")) as LayerFile;
    return v?.version === 1 && typeof v.container === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Every writable layer: its directory, image and container. */
export function writableLayers(
  varDir: string,
): Array<{ dir: string; image?: string; container?: string; state?: string }> {
  const base = rwDir(varDir);
  let names: string[] = [];
  try {
    names = readdirSync(base);
  } catch {
    return [];
  }
  return names.map((n) => {
    const dir = join(base, n);
    const l = readLayer(dir);
    return { dir, ...(l ? { image: l.image, container: l.container, state: l.state } : {}) };
  });
}

/**
 * Removes the writable layers whose container is gone: of the state directory `stateDir`, none of
 * `live` (the containers it still records), and the process that made it gone too (a foreground
 * run or a start still on its way holds it until its record is written). A layer of another state
 * directory is left to it; one with no readable `layer.json` (a crash while it was made) goes once
 * it is an hour old.
 * @param live The containers that exist.
 * @param dryRun Only say what would go.
 * @returns The directories removed (or that would be).
 */
export function collectWritable(
  varDir: string,
  stateDir: string,
  live: ReadonlySet<string>,
  dryRun = false,
): string[] {
  const out: string[] = [];
  for (const l of writableLayers(varDir)) {
    const rec = readLayer(l.dir);
    if (rec) {
      if (rec.state !== stateDir || live.has(rec.container)) continue;
      if (existsSync(`/proc/${rec.pid}`) && startTime(rec.pid) === rec.startTime) continue;
    } else {
      try {
        if (Date.now() - statSync(l.dir).mtimeMs < 3600_000) continue;
      } catch {
        continue;
      }
    }
    out.push(l.dir);
    if (!dryRun) removeLayerDir(l.dir);
  }
  return out;
}

/**
 * Removes the writable layers of the container `name` (at its deletion).
 * @returns The directories removed.
 */
export function releaseWritableOf(varDir: string, stateDir: string, name: string): string[] {
  const out: string[] = [];
  for (const l of writableLayers(varDir)) {
    if (l.container !== name || l.state !== stateDir) continue;
    removeLayerDir(l.dir);
    out.push(l.dir);
  }
  return out;
}

/**
 * The containers whose writable layer is on the image `id` (for `hako rmi`).
 */
export function imageUsers(varDir: string, id: string): string[] {
  return writableLayers(varDir).filter((l) => l.image === id).map((l) => l.container ?? l.dir);
}
