/**
 * Whether a path is one only its user (and root) can change: the check OpenSSH's StrictModes makes
 * of `~/.ssh` before trusting `authorized_keys`, for hako's state directory and loader cache. Pure
 * over a small file-system interface, with no imports, so the CLI's quick paths can run it through
 * the host adapter without loading `node:` modules.
 * @module
 */

/** What `lstat` says about a path, as far as trust goes. */
export interface FileFacts {
  /** The owner. */
  readonly uid: number;
  /** `st_mode`'s permission bits (with setuid, setgid and sticky). */
  readonly mode: number;
  /** The file's type. */
  readonly kind: "dir" | "file" | "symlink" | "other";
}

/** The file-system calls the checks make. */
export interface TrustFs {
  /** `lstat(path)`, or undefined when nothing is there. */
  lstat(path: string): FileFacts | undefined;
  /** The path with every symlink resolved; throws when it leads nowhere. */
  realPath(path: string): string;
}

/** "0755" (pure). */
export function octalMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, "0")}`;
}

/** True when group or others may write to (create, rename or delete entries in) a file with `mode`. */
export function writableByOthers(mode: number): boolean {
  return (mode & 0o022) !== 0;
}

/** "/a/b" → ["/", "/a", "/a/b"] (pure; `path` absolute and without `.` or `..`). */
function prefixes(path: string): string[] {
  const out = ["/"];
  let p = "";
  for (const part of path.split("/")) {
    if (!part) continue;
    p += `/${part}`;
    out.push(p);
  }
  return out;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/**
 * Why the way to `path` is not safe for `uid`, or undefined when it is: every existing directory
 * above it — and, where the way goes through a symlink, every directory above where it leads —
 * must be owned by root or `uid`, and not writable by group or others unless it is sticky (as
 * /tmp is: others cannot rename or delete what they do not own there); a symlink on the way
 * (`path` itself included) must be owned by root or `uid` and lead somewhere. Otherwise someone
 * else could swap a directory on the way for one of their own. `path` itself, when a directory,
 * is left to the caller, whose rule for it is stricter (owned by `uid`). Nothing is checked below
 * the first component that does not exist: what the caller creates there is its own.
 * @param path An absolute path.
 * @param uid The user who is to trust it.
 * @param fs How to look at the file system.
 * @param alsoRoot Other owners trusted as root is: in a nested user namespace, the overflow uid the
 *   host's root shows as there (see src/_userns.ts).
 * @returns A sentence naming the path at fault and what is wrong, or undefined.
 */
export function untrustedWayTo(
  path: string,
  uid: number,
  fs: TrustFs,
  alsoRoot: readonly number[] = [],
): string | undefined {
  if (!path.startsWith("/")) throw new TypeError(`untrustedWayTo() needs an absolute path, not "${path}"`);
  const checked = new Set<string>();
  const trusted = (owner: number) => owner === 0 || owner === uid || alsoRoot.includes(owner);
  /** Every directory from / down to `real` (a path with no symlink in it). */
  const checkDirs = (real: string): string | undefined => {
    for (const dir of prefixes(real)) {
      if (checked.has(dir)) continue;
      checked.add(dir);
      const st = fs.lstat(dir);
      if (!st) return `${dir} vanished while it was checked`;
      if (st.kind === "symlink") return `${dir} was replaced by a symlink while it was checked`;
      if (st.kind !== "dir") return `${dir} is not a directory`;
      if (!trusted(st.uid)) {
        return `${dir} is owned by uid ${st.uid} (only root or uid ${uid} may own the way to ${path})`;
      }
      if (writableByOthers(st.mode) && (st.mode & 0o1000) === 0) {
        return `${dir} is writable by others than its owner (mode ${octalMode(st.mode)}, not sticky)`;
      }
    }
    return undefined;
  };
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  let cur = "/";
  for (let i = 0; i < parts.length; i++) {
    const problem = checkDirs(cur);
    if (problem) return problem;
    const part = parts[i]!;
    if (part === "..") {
      cur = parentOf(cur);
      continue;
    }
    const next = cur === "/" ? `/${part}` : `${cur}/${part}`;
    const st = fs.lstat(next);
    if (!st) return undefined;
    if (st.kind !== "symlink") {
      cur = next;
      continue;
    }
    if (!trusted(st.uid)) return `${next} is a symlink owned by uid ${st.uid}`;
    let real: string;
    try {
      real = fs.realPath(next);
    } catch {
      return `${next} is a symlink that leads nowhere`;
    }
    if (i === parts.length - 1) return checkDirs(parentOf(real));
    cur = real;
  }
  return undefined;
}
