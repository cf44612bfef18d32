/**
 * Paths inside a rootfs, resolved safely: symlinks in the rootfs are followed as if the rootfs
 * were `/`, so a hostile image (`/proc -> /etc`) cannot make hako mount or write outside it.
 * @module
 */
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
  writeFileSync,
} from "node:fs";
import process from "node:process";
import { dirname, join, normalize, sep } from "node:path";
import { ConfigError } from "../errors.ts";

/**
 * `root` + `path`, with every symlink on the way resolved inside `root`.
 * @throws {ConfigError} On a symlink loop.
 */
export function secureJoin(root: string, path: string): string {
  let parts = normalize(`/${path}`).split(sep).filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (parts.length) {
    const part = parts.shift()!;
    if (part === "..") {
      done.pop();
      continue;
    }
    const here = join(root, ...done, part);
    let target: string | undefined;
    try {
      if (lstatSync(here).isSymbolicLink()) target = readlinkSync(here);
    } catch { /* does not exist yet: fine */ }
    if (target === undefined) {
      done.push(part);
      continue;
    }
    if (++links > 255) throw new ConfigError("", `too many symlinks resolving ${path} in ${root}`);
    const rest = target.split(sep).filter(Boolean);
    if (target.startsWith("/")) done.length = 0;
    parts = [...rest, ...parts];
  }
  return join(root, ...done);
}

/** Makes sure a mount point exists inside the rootfs: a directory, or an empty file for a file bind. */
export function ensureMountPoint(path: string, file = false): void {
  try {
    lstatSync(path);
    return;
  } catch { /* create it */ }
  if (file) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, "");
  } else mkdirSync(path, { recursive: true });
}

/**
 * The real path of a container's rootfs, checked to be a directory that is neither the host's root
 * nor holds it: a rootfs that is a symlink to `/` (or `/proc/1/root`), a bind mount of `/`, or a
 * directory with `/` mounted somewhere under it would hand the host to the container (and make
 * hako's own writes into the rootfs host writes). Every later step uses the returned path, so a
 * symlink swapped in after this check is not followed.
 * @throws {Error} Saying what is wrong (the caller wraps it as the `rootfs` step).
 */
export function realRootfs(path: string): string {
  let real: string;
  try {
    real = realpathSync(path);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") throw new Error(`${path} does not exist`);
    throw e;
  }
  const st = statSync(real);
  if (!st.isDirectory()) throw new Error(`${path} is not a directory`);
  const hostRoot = statSync("/");
  if (real === "/" || (st.dev === hostRoot.dev && st.ino === hostRoot.ino)) {
    throw new Error(`${path} resolves to the host's root directory; a rootfs must be a directory of its own`);
  }
  // A mount under the rootfs (or the rootfs itself) that shows the root of the filesystem `/` is
  // on: the host's root bound into it.
  const mounts = parseMountinfoRoots(readFileSync("/proc/self/mountinfo", "utf8"));
  const root = mounts.find((m) => m.point === "/");
  if (root) {
    for (const m of mounts) {
      const inside = m.point === real || m.point.startsWith(`${real}/`);
      if (inside && m.dev === root.dev && m.root === root.root) {
        throw new Error(`the host's root filesystem is mounted at ${m.point}, inside the rootfs ${path}`);
      }
    }
  }
  return real;
}

/** mountinfo lines as { device, root in its filesystem, mount point } (octal escapes decoded). */
function parseMountinfoRoots(text: string): Array<{ dev: string; root: string; point: string }> {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: Array<{ dev: string; root: string; point: string }> = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    if (f.length < 5) continue;
    out.push({ dev: f[2]!, root: unescape(f[3]!), point: unescape(f[4]!) });
  }
  return out;
}

/** hako's own store of images and rootfs. */
export const STORE_ROOT = "/var/lib/hako";

/**
 * Makes the directories above a rootfs hako is about to extract or build, closed to other local
 * users: those it makes are 0700, and under its own store ({@link STORE_ROOT}) every directory
 * from the store down is made 0700 too — so no local user can reach an image's setuid binaries or
 * device nodes (moby's fix for CVE-2021-41091). Containers do not need them open: the child enters
 * the rootfs through a file descriptor (the enter-rootfs step), even as root of a user namespace.
 * @param rootfs The rootfs directory (it need not exist yet).
 */
export function makePrivateParents(rootfs: string): void {
  const parent = dirname(rootfs);
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  if (parent !== STORE_ROOT && !parent.startsWith(`${STORE_ROOT}/`)) return;
  const euid = process.geteuid?.() ?? 0;
  for (let d = parent;; d = dirname(d)) {
    const st = statSync(d);
    if (st.uid === euid && (st.mode & 0o077) !== 0) chmodSync(d, st.mode & 0o700);
    if (d === STORE_ROOT || d === "/") break;
  }
}
