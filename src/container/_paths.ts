/**
 * Paths inside a rootfs, resolved safely: symlinks in the rootfs are followed as if the rootfs
 * were `/`, so a hostile image (`/proc -> /etc`) cannot make hako mount or write outside it.
 * @module
 */
import { lstatSync, mkdirSync, readlinkSync, writeFileSync } from "node:fs";
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
