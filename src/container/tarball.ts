/**
 * A root filesystem from a `.tar` / `.tar.gz`: extracted once (a marker file records the
 * tarball), into a temp sibling that is renamed into place, so a failure leaves nothing behind.
 * Modes, symlinks, hard links and device nodes survive; path escapes are refused; file owners
 * can be shifted into a container's id range.
 *
 * @example
 * ```ts ignore
 * import { extractRootfs } from "./src/container/tarball.ts";
 * await extractRootfs("/srv/alpine.tar.gz", "/var/lib/hako/alpine", { owner: { uid: 100000, gid: 100000 } });
 * ```
 * @module
 */
import {
  chmodSync,
  createReadStream,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import type { Buffer } from "node:buffer";
import { basename, dirname, join, resolve } from "node:path";
import process from "node:process";
import { check, libc } from "../../ffi/libc.ts";
import { cstr } from "../../ffi/cstring.ts";
import { fsError, SetupError } from "../errors.ts";
import { mknod } from "./_devices.ts";

/** The marker file written into an extracted rootfs. */
export const TARBALL_MARKER = ".hako-rootfs";

/** Options for {@link extractRootfs}. */
export interface ExtractOptions {
  /** Shift every owner: uid `n` in the tarball becomes `owner.uid + n` (gid likewise). */
  readonly owner?: { readonly uid: number; readonly gid?: number };
  /** Called as bytes of the tarball are read. Default: a `\r` progress line on a terminal for big tarballs. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** What {@link extractRootfs} did. */
export interface ExtractResult {
  /** The rootfs directory. */
  readonly path: string;
  /** False when the marker showed it was already extracted from this tarball. */
  readonly created: boolean;
}

interface Marker {
  tarball: string;
  size: number;
  mtimeMs: number;
  owner: { uid: number; gid: number } | null;
}

interface Special {
  path: string;
  kind: "c" | "b" | "p";
  mode: number;
  major: number;
  minor: number;
  uid: number;
  gid: number;
}

type Tar = typeof import("tar");
let tarModule: Promise<Tar> | undefined;

/**
 * node-tar, loaded on first use. Deno resolves the `npm:` specifier wherever hako is loaded from
 * (a checkout, or a URL where no package.json applies); Bun and its bundler resolve the bare name
 * from node_modules (Bun has no `npm:` specifiers).
 */
function loadTar(): Promise<Tar> {
  // deno-lint-ignore no-import-prefix -- a full npm: specifier is what works when mod.ts is imported from a URL
  return tarModule ??= ("Deno" in globalThis ? import("npm:tar@7.5.23") : import("tar")).then((tar: Tar) => {
    patchDeviceNumbers(tar.Header);
    return tar;
  });
}

// node-tar reads device numbers only from POSIX ustar headers; GNU tar's default format ("ustar  \0"
// magic) has them at the same offsets. Fill them in for device entries.
function patchDeviceNumbers(Header: Tar["Header"]): void {
  const decodeHeader = Header.prototype.decode;
  Header.prototype.decode = function (
    this: InstanceType<Tar["Header"]>,
    buf: Buffer,
    off: number,
    ...rest: unknown[]
  ): void {
    (decodeHeader as (...a: unknown[]) => void).call(this, buf, off, ...rest);
    const type = buf[off + 156];
    if ((type === 0x33 || type === 0x34) && !this.devmaj && !this.devmin) {
      const num = (at: number) =>
        parseInt(buf.subarray(off + at, off + at + 8).toString("latin1").replace(/\0.*$/s, ""), 8);
      const major = num(329), minor = num(337);
      if (Number.isInteger(major) && Number.isInteger(minor)) {
        this.devmaj = major;
        this.devmin = minor;
      }
    }
  };
}

/** Tarballs bigger than this get a progress line on a terminal. */
const PROGRESS_MIN_BYTES = 32 * 1024 * 1024;
const S_IFIFO = 0o010000;

function refused(path: string, why: string): SetupError {
  return new SetupError("rootfs", `refused entry ${JSON.stringify(path)}: ${why}`);
}

/** A tar path made relative to the rootfs (no `.`/empty parts), or an error for escapes. */
function clean(p: string, what: string): string[] | string {
  if (p.startsWith("/")) return `${what} is absolute`;
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) return `${what} contains '..'`;
  return parts;
}

function readMarker(dir: string): Marker | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, TARBALL_MARKER), "utf8")) as Marker;
  } catch {
    return undefined;
  }
}

function sameMarker(a: Marker | undefined, b: Marker): boolean {
  return !!a && a.tarball === b.tarball && a.size === b.size && a.mtimeMs === b.mtimeMs &&
    JSON.stringify(a.owner) === JSON.stringify(b.owner);
}

/**
 * Extracts `tarball` (`.tar`, `.tar.gz`, `.tgz`) into `dir`, once.
 *
 * A second call with the same tarball (path, size, mtime) and owner finds the marker and does
 * nothing. Entries with absolute paths or `..`, entries written through a symlink from the same
 * tarball, and hard links leaving the rootfs are refused. Symlink targets are kept as they are
 * (they only mean something inside the container).
 *
 * @throws {SetupError} Step `rootfs`: a refused entry, a bad tarball, `dir` holding something else.
 * @throws {SyscallError} A failed file system call.
 */
export async function extractRootfs(
  tarball: string,
  dir: string,
  options: ExtractOptions = {},
): Promise<ExtractResult> {
  const source = resolve(tarball);
  dir = resolve(dir);
  let st;
  try {
    st = statSync(source);
  } catch (e) {
    throw new SetupError("rootfs", `tarball ${source}: ${(e as Error).message}`, { cause: fsError(e, "stat", source) });
  }
  if (!st.isFile()) throw new SetupError("rootfs", `tarball ${source} is not a regular file`);
  const owner = options.owner ? { uid: options.owner.uid, gid: options.owner.gid ?? options.owner.uid } : null;
  const marker: Marker = { tarball: source, size: st.size, mtimeMs: st.mtimeMs, owner };

  let exists = false;
  try {
    lstatSync(dir);
    exists = true;
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOENT") throw fsError(e, "lstat", dir, "rootfs");
  }
  if (exists) {
    if (sameMarker(readMarker(dir), marker)) return { path: dir, created: false };
    let empty = false;
    try {
      empty = lstatSync(dir).isDirectory() && readdirSync(dir).length === 0;
    } catch (e) {
      throw fsError(e, "readdir", dir, "rootfs");
    }
    if (!empty) {
      throw new SetupError(
        "rootfs",
        `${dir} exists and was not extracted from ${source} with these options (remove it to extract again)`,
      );
    }
    try {
      rmdirSync(dir);
    } catch (e) {
      throw fsError(e, "rmdir", dir, "rootfs");
    }
  }

  let tmp: string;
  try {
    mkdirSync(dirname(dir), { recursive: true });
    tmp = mkdtempSync(join(dirname(dir), `.${basename(dir)}.hako-tmp-`));
    chmodSync(tmp, 0o755);
  } catch (e) {
    throw fsError(e, "mkdtemp", dirname(dir), "rootfs");
  }
  try {
    await unpackInto(source, st.size, tmp, owner, options.onProgress);
    writeFileSync(join(tmp, TARBALL_MARKER), JSON.stringify(marker) + "\n", { mode: 0o644 });
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof SetupError) throw e;
    const code = (e as { code?: string }).code;
    if (code && /^E[A-Z]+$/.test(code)) {
      throw fsError(e, (e as { syscall?: string }).syscall ?? "extract", dir, "rootfs");
    }
    throw new SetupError("rootfs", `extracting ${source}: ${(e as Error).message ?? e}`, { cause: e });
  }
  return { path: dir, created: true };
}

async function unpackInto(
  source: string,
  size: number,
  root: string,
  owner: { uid: number; gid: number } | null,
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<void> {
  const symlinks = new Set<string>();
  const specials: Special[] = [];
  const modes = new Map<string, number>();
  let refusal: SetupError | undefined;

  const filter = (rawPath: string, entry: unknown): boolean => {
    if (refusal) return false;
    const e = entry as {
      type: string;
      linkpath?: string;
      mode?: number;
      uid?: number;
      gid?: number;
      header?: { devmaj?: number; devmin?: number };
    };
    const parts = clean(rawPath, "path");
    if (typeof parts === "string") {
      refusal = refused(rawPath, parts);
      return false;
    }
    const rel = parts.join("/");
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      if (symlinks.has(prefix)) {
        refusal = refused(rawPath, `it would be written through the symlink ${JSON.stringify(prefix)}`);
        return false;
      }
    }
    if (e.type === "Link") {
      const target = clean(String(e.linkpath ?? ""), "hard link target");
      if (typeof target === "string") {
        refusal = refused(rawPath, `${target} (${JSON.stringify(e.linkpath)}), outside the rootfs`);
        return false;
      }
      for (let i = 1; i <= target.length; i++) {
        const prefix = target.slice(0, i).join("/");
        if (i < target.length && symlinks.has(prefix)) {
          refusal = refused(rawPath, `hard link target goes through the symlink ${JSON.stringify(prefix)}`);
          return false;
        }
      }
      if (target.length === 0) {
        refusal = refused(rawPath, "hard link to the rootfs itself");
        return false;
      }
      if (symlinks.has(target.join("/"))) symlinks.add(rel);
      else symlinks.delete(rel);
      modes.delete(rel);
      return true;
    }
    if (e.type === "SymbolicLink") symlinks.add(rel);
    else symlinks.delete(rel);
    if (rel === "") return e.type === "Directory";
    const mode = (e.mode ?? 0) & 0o7777;
    if (e.type === "CharacterDevice" || e.type === "BlockDevice" || e.type === "FIFO") {
      const kind = e.type === "CharacterDevice" ? "c" : e.type === "BlockDevice" ? "b" : "p";
      specials.push({
        path: rel,
        kind,
        mode,
        major: e.header?.devmaj ?? 0,
        minor: e.header?.devmin ?? 0,
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
      });
      modes.set(rel, mode);
      return false;
    }
    if (e.type !== "SymbolicLink") modes.set(rel, mode);
    return true;
  };

  const { Unpack } = await loadTar();
  const unpack = new Unpack({
    cwd: root,
    // The filter above does the path checks (node-tar's would rewrite absolute symlink targets).
    preservePaths: true,
    preserveOwner: true,
    strict: true,
    umask: 0,
    filter,
  });
  const show = onProgress ?? (process.stderr.isTTY && size > PROGRESS_MIN_BYTES ? bar(basename(source)) : undefined);
  await new Promise<void>((resolveP, reject) => {
    const rs = createReadStream(source);
    let done = 0;
    rs.on("data", (chunk) => {
      done += chunk.length;
      show?.(done, size);
    });
    rs.on("error", reject);
    unpack.on("error", reject);
    unpack.on("close", () => resolveP());
    rs.pipe(unpack);
  }).finally(() => {
    if (show && !onProgress) process.stderr.write("\r\x1b[K");
  });
  if (refusal) throw refusal;

  // Device nodes and fifos (node-tar skips them).
  for (const s of specials) {
    const path = join(root, s.path);
    mkdirSync(dirname(path), { recursive: true });
    try {
      const old = lstatSync(path);
      if (old.isDirectory()) rmSync(path, { recursive: true });
      else unlinkSync(path);
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") throw fsError(e, "unlink", path, "rootfs");
    }
    if (s.kind === "p") check(libc().mknod(cstr(path), S_IFIFO | s.mode, 0n), "mknod", [path, "fifo"]);
    else mknod(path, s.kind, s.mode, s.major, s.minor);
    try {
      lchownSync(path, s.uid, s.gid);
    } catch (e) {
      throw fsError(e, "lchown", path, "rootfs");
    }
  }

  fixOwnersAndModes(root, owner, modes);
}

/** Shifts owners (once per inode) and puts back the tarball's modes (chown clears setuid). */
function fixOwnersAndModes(
  root: string,
  owner: { uid: number; gid: number } | null,
  modes: Map<string, number>,
): void {
  const seen = new Set<string>();
  const walk = (rel: string) => {
    const path = rel ? join(root, rel) : root;
    let st;
    try {
      st = lstatSync(path);
    } catch (e) {
      throw fsError(e, "lstat", path, "rootfs");
    }
    const key = `${st.dev}:${st.ino}`;
    if (!seen.has(key)) {
      seen.add(key);
      const mode = modes.get(rel) ?? (st.mode & 0o7777);
      try {
        if (owner) lchownSync(path, st.uid + owner.uid, st.gid + owner.gid);
        if (!st.isSymbolicLink() && (owner || (st.mode & 0o7777) !== mode)) chmodSync(path, mode);
      } catch (e) {
        throw fsError(e, owner ? "lchown" : "chmod", path, "rootfs");
      }
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(path)) walk(rel ? `${rel}/${name}` : name);
    }
  };
  walk("");
}

/** A `\r` progress line on stderr. */
function bar(name: string): (done: number, total: number) => void {
  let last = -1;
  return (done, total) => {
    const pct = Math.min(100, Math.floor((done / total) * 100));
    if (pct === last) return;
    last = pct;
    process.stderr.write(`\rhako: extracting ${name} ${String(pct).padStart(3)}%`);
  };
}
