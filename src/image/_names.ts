/**
 * What the image store's users need without loading it: where it is, and what an image name is
 * (the spec's validator checks `rootfs: { image }` with these).
 * @module
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

/**
 * The var directory of the image store (pure but for its defaults): `HAKO_VAR_DIR` when set
 * (absolute); else root's `/var/lib/hako`, or a user's own as podman's rootless storage:
 * `$XDG_DATA_HOME/hako`, else `~/.local/share/hako` (as `hako run --image FILE.tar` extracts).
 * @param env The environment. @param euid The caller's effective uid.
 */
export function defaultVarDir(
  env: Readonly<Record<string, string | undefined>> = process.env,
  euid: number = process.geteuid?.() ?? 0,
): string {
  const own = env.HAKO_VAR_DIR;
  if (own?.startsWith("/")) return own.replace(/\/+$/, "") || "/";
  if (euid === 0) return "/var/lib/hako";
  const data = env.XDG_DATA_HOME;
  if (data?.startsWith("/")) return `${data.replace(/\/+$/, "")}/hako`;
  const home = env.HOME;
  return home?.startsWith("/") ? `${home.replace(/\/+$/, "")}/.local/share/hako` : `/tmp/hako-${euid}`;
}

/**
 * Where a spec's `rootfs: { image }` with no `path` gets its rootfs: `images/roots/NAME`.
 * @param varDir The var directory. @param name The container's name.
 */
export function defaultImageRoot(varDir: string, name: string): string {
  return join(varDir, "images", "roots", name);
}

/**
 * Why `name` is not an image name as docker writes them (`NAME[:TAG]`, lowercase path
 * components, an optional registry host first), or undefined when it is one.
 */
export function imageNameProblem(name: string): string | undefined {
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  const [repo, tag] = colon > slash ? [name.slice(0, colon), name.slice(colon + 1)] : [name, "latest"];
  const component = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
  const parts = repo.split("/");
  // (a registry host as docker's reference grammar: dot-separated labels, an optional port)
  const hostOk = (h: string) =>
    /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::\d{1,5})?$/.test(h);
  const ok = repo.length > 0 && repo.length <= 255 &&
    parts.every((p, i) => component.test(p) || (i === 0 && parts.length > 1 && hostOk(p)));
  if (!ok || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) {
    return `${JSON.stringify(name)} is not an image name (NAME[:TAG], lowercase, as docker's)`;
  }
  return undefined;
}

/**
 * True when the store holds a container's writable layer (`images/rw/` not empty): what a
 * container's deletion looks at before it loads the store's code.
 */
export function hasWritableLayers(varDir: string): boolean {
  try {
    return readdirSync(join(varDir, "images", "rw")).length > 0;
  } catch {
    return false;
  }
}
