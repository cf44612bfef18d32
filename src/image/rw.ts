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
  lstatSync,
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
import { mountsAtOrUnder, rootfsId, rootfsUsers } from "../container/_rootfs_ref.ts";
import { findImage, type ImageRecord, imageRootfs, imagesDir } from "./store.ts";
import { defaultVarDir } from "./_names.ts";
import { stateDir } from "../container/state.ts";
import { makePrivateParents } from "../container/_paths.ts";

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
  /** The rootfs, when it is not `rootfs/` in the layer's directory (a spec's `{ image, path }`). */
  rootfs?: string;
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
 * Makes a container's writable layer on `image`: overlay when it mounts, else a copy (`HAKO_IMAGE_RW=copy`: always).
 * @param varDir The var directory of the store.
 * @param image The image.
 * @param container The container's name (kept in `layer.json`, for delete and gc).
 * @param options `copy`: skip overlay (as when it is known not to mount); the state directory;
 *   `at`: where the rootfs goes (made, or an empty directory; default `rootfs/` in the layer's).
 * @throws {SetupError} Step `image`: neither could be made (what is made so far is removed).
 */
export function makeWritable(
  varDir: string,
  image: ImageRecord,
  container: string,
  options: { copy?: boolean; stateDir: string; at?: string },
): WritableLayer {
  const lower = imageRootfs(varDir, image);
  const base = rwDir(varDir);
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const safe = container.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 100);
  const at = options.at;
  if (at !== undefined) {
    // Never mounted over, nor copied into, something that is there: an empty directory, or none.
    try {
      const st = lstatSync(at);
      if (!st.isDirectory() || readdirSync(at).length > 0 || mountsAtOrUnder(at).length > 0) {
        throw new SetupError(
          "image",
          `the rootfs path ${at} holds something already (an image's rootfs goes to an empty directory)`,
        );
      }
    } catch (e) {
      if (e instanceof SetupError) throw e;
      if ((e as { code?: string }).code !== "ENOENT") throw e;
    }
  }
  const dir = mkdtempSync(join(base, `${safe}.`));
  const rootfs = at ?? join(dir, "rootfs");
  const record = (kind: "overlay" | "copy"): LayerFile => ({
    version: 1,
    image: image.id,
    container,
    state: options.stateDir,
    pid: process.pid,
    startTime: startTime(process.pid),
    kind,
    ...(at !== undefined ? { rootfs: at } : {}),
  });
  try {
    for (const d of ["upper", "work", "rootfs"]) mkdirSync(join(dir, d), { mode: 0o700 });
    // (its parents as the store's: 0700 where made here)
    if (at !== undefined) {
      makePrivateParents(at);
      mkdirSync(at, { recursive: true, mode: 0o755 });
    }
    // (overlay's options are split at commas and colons: a path holding one is not given to it)
    // HAKO_IMAGE_RW=copy: a copy even where overlay would mount (tests; file systems overlay misreads)
    const copy = options.copy ?? process.env.HAKO_IMAGE_RW === "copy";
    if (!copy && ![lower, dir].some((p) => /[,:\\]/.test(p)) && !/[,:\\]/.test(rootfs)) {
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

/**
 * Unmounts what is mounted at or under `dir` and the layer's own rootfs path (lazily: a process
 * still in it keeps it), then removes them (never through a mount that stayed).
 */
function removeLayerDir(dir: string): void {
  const at = readLayer(dir)?.rootfs;
  for (const p of at !== undefined ? [at, dir] : [dir]) {
    for (const m of mountsAtOrUnder(p).reverse()) {
      try {
        umount(m, { detach: true });
      } catch { /* gone meanwhile */ }
    }
    if (mountsAtOrUnder(p).length > 0) continue;
    // (a rootfs path was an empty directory, or none, when the layer was made: it holds its copy at most)
    rmSync(p, { recursive: true, force: true });
  }
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

/**
 * A container's writable layer on the image `ref` at `at`, for a spec's `rootfs: { image, path }`
 * (container.ts's rootfs step): the store is the default var directory's, the state directory
 * the default one's.
 * @returns The layer and its release.
 * @throws {SetupError} Step `image`: no such image, or the layer could not be made.
 */
export function attachImage(ref: string, at: string, container: string): WritableLayer & { release(): void } {
  const varDir = defaultVarDir();
  const image = findImage(varDir, ref);
  if (!image) {
    throw new SetupError(
      "image",
      `no image ${JSON.stringify(ref)} in ${
        imagesDir(varDir)
      } ('hako images' lists them; 'hako image import FILE' adds one)`,
    );
  }
  const layer = makeWritable(varDir, image, container, { stateDir: stateDir(), at });
  return { ...layer, release: () => releaseWritable(layer.dir) };
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
      // (its maker alive and the layer young: a container on its way to being recorded)
      let young = false;
      try {
        young = Date.now() - statSync(l.dir).mtimeMs < 300_000;
      } catch { /* gone */ }
      if (young && existsSync(`/proc/${rec.pid}`) && startTime(rec.pid) === rec.startTime) continue;
    } else {
      try {
        if (Date.now() - statSync(l.dir).mtimeMs < 3600_000) continue;
      } catch {
        continue;
      }
    }
    // (never one a process runs in: a library's container has no record)
    const id = rootfsId(rec?.rootfs ?? join(l.dir, "rootfs"));
    if (id && rootfsUsers(id, []).length > 0) continue;
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
