/**
 * A root filesystem from a `.tar`, `.tar.gz`, `.tar.zst` or `.tar.xz`: extracted once (a marker file records the
 * tarball), into a temp sibling that is renamed into place, so a failure leaves nothing behind.
 * Modes, setuid bits, symlinks, hard links and device nodes survive; file owners can be shifted
 * into a container's id range.
 *
 * An image is untrusted input, so node-tar only *parses* it; every write is made here, relative
 * to a directory fd of the rootfs, with no symlink followed (see {@link extractRootfs}). The
 * uncompressed size and the number of entries are capped (decompression bombs).
 *
 * @example
 * ```ts ignore
 * import { extractRootfs } from "./src/container/tarball.ts";
 * await extractRootfs("/srv/alpine.tar.gz", "/var/lib/hako/alpine", { owner: { uid: 100000, gid: 100000 } });
 * ```
 * @module
 */
import { makePrivateParents } from "./_paths.ts";
import {
  chmodSync,
  closeSync,
  constants as fsConstants,
  createReadStream,
  lstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
} from "node:fs";
import { Buffer } from "node:buffer";
import { basename, dirname, join, resolve } from "node:path";
import process from "node:process";
import { xzDecompress } from "../../ffi/lzma.ts";
import * as at from "../../ffi/at.ts";
import { ConfigError, fsError, SetupError, SyscallError } from "../errors.ts";
import { makedev } from "./_devices.ts";

/** The marker file written into an extracted rootfs. */
export const TARBALL_MARKER = ".hako-rootfs";

/** The default cap on a tarball's uncompressed size: 32 GiB (`HAKO_TAR_MAX_BYTES` overrides it). */
export const DEFAULT_MAX_BYTES = 32 * 1024 ** 3;

/** The default cap on a tarball's entries: 1 000 000 (`HAKO_TAR_MAX_ENTRIES` overrides it). */
export const DEFAULT_MAX_ENTRIES = 1_000_000;

/** Options for {@link extractRootfs}. */
export interface ExtractOptions {
  /** Shift every owner: uid `n` in the tarball becomes `owner.uid + n` (gid likewise). */
  readonly owner?: { readonly uid: number; readonly gid?: number };
  /** Called as bytes of the tarball are read. Default: a `\r` progress line on a terminal for big tarballs. */
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * The most bytes the uncompressed archive may hold (headers and data). Default: the
   * `HAKO_TAR_MAX_BYTES` environment variable (a number of bytes, or with a `K`/`M`/`G`/`T`
   * suffix, binary), else {@link DEFAULT_MAX_BYTES}.
   */
  readonly maxBytes?: number;
  /**
   * The most entries the archive may hold. Default: `HAKO_TAR_MAX_ENTRIES`, else
   * {@link DEFAULT_MAX_ENTRIES}.
   */
  readonly maxEntries?: number;
}

/** What {@link extractRootfs} did. */
export interface ExtractResult {
  /** The rootfs directory. */
  readonly path: string;
  /** False when the marker showed it was already extracted from this tarball. */
  readonly created: boolean;
}

/**
 * The marker: the tarball's path, size and mtime (whole seconds and nanoseconds, as the kernel
 * keeps it, so that Deno and Bun write the same text), and the owner shift.
 */
interface Marker {
  version: 2;
  tarball: string;
  size: number;
  mtime: { sec: string; nsec: number };
  owner: { uid: number; gid: number } | null;
}

/** The marker before version 2: `mtimeMs` as the runtime's `stat` gave it (Deno: whole ms; Bun: fractional). */
interface OldMarker {
  tarball: string;
  size: number;
  mtimeMs: number;
  owner: { uid: number; gid: number } | null;
}

type Tar = typeof import("tar");
type ReadEntry = InstanceType<Tar["ReadEntry"]>;
let tarModule: Promise<Tar> | undefined;

/**
 * node-tar, loaded on first use. Deno resolves the `npm:` specifier wherever hako is loaded from
 * (a checkout, or a URL where no package.json applies); Bun and its bundler resolve the bare name
 * from node_modules (Bun has no `npm:` specifiers).
 */
function loadTar(): Promise<Tar> {
  // (Bun first: under Bun, `Deno` may be the runner's shim for scripts)
  // deno-lint-ignore no-import-prefix -- a full npm: specifier is what works when mod.ts is imported from a URL
  return tarModule ??= (!("Bun" in globalThis) && "Deno" in globalThis ? import("npm:tar@7.5.23") : import("tar")).then(
    (tar: Tar) => {
      patchDeviceNumbers(tar.Header);
      return tar;
    },
  );
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

function refused(path: string, why: string): SetupError {
  return new SetupError("rootfs", `refused entry ${JSON.stringify(path)}: ${why}`);
}

/** A tar path made relative to the rootfs (no `.`/empty parts), or why it is refused. */
function clean(p: string, what: string): string[] | string {
  if (p.startsWith("/")) return `${what} is absolute`;
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) return `${what} contains '..'`;
  return parts;
}

/** A limit from an option, the environment, or the default; `123`, `64K`, `32G`, `1Ti` are understood. */
function limit(option: number | undefined, env: string, fallback: number, field: string): number {
  if (option !== undefined) {
    if (!Number.isSafeInteger(option) || option < 1) {
      throw new ConfigError(field, `must be a positive integer, got ${option}`);
    }
    return option;
  }
  const raw = process.env[env]?.trim();
  if (!raw) return fallback;
  const m = /^(\d+)\s*([kmgt]?)(?:i?b)?$/i.exec(raw);
  const n = m ? Number(m[1]) * 1024 ** " kmgt".indexOf((m[2] || " ").toLowerCase()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ConfigError(env, `must be a positive number (optionally with K, M, G or T), got ${JSON.stringify(raw)}`);
  }
  return n;
}

function readMarker(dir: string): Partial<Marker & OldMarker> | undefined {
  let fd: number | undefined;
  try {
    // O_NOFOLLOW: a marker that is a symlink (put there by a tarball) is no marker.
    fd = openSync(join(dir, TARBALL_MARKER), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    const m = JSON.parse(readFileSync(fd, "utf8"));
    return typeof m === "object" && m !== null ? m : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * True when `found` records the same extraction as `want`. A marker written before version 2
 * (`mtimeMs`, whose precision differed between Deno and Bun) matches when its time is within a
 * millisecond of the tarball's.
 */
function sameMarker(found: Partial<Marker & OldMarker> | undefined, want: Marker): boolean {
  if (!found || found.tarball !== want.tarball || found.size !== want.size) return false;
  if (JSON.stringify(found.owner ?? null) !== JSON.stringify(want.owner)) return false;
  if (found.version === 2) return found.mtime?.sec === want.mtime.sec && found.mtime?.nsec === want.mtime.nsec;
  if (typeof found.mtimeMs !== "number") return false;
  const ms = Number(want.mtime.sec) * 1000 + want.mtime.nsec / 1e6;
  return Math.abs(found.mtimeMs - ms) < 1;
}

/**
 * Extracts `tarball` (`.tar`; gzip, zstd or xz compressed, told by its first bytes) into `dir`, once.
 *
 * A second call with the same tarball (path, size, mtime to the nanosecond) and owner finds the
 * marker and does nothing, under Deno and Bun alike (a marker from before this format, which
 * kept a millisecond mtime, is accepted too).
 *
 * Nothing outside `dir` is created, removed, chowned or chmod'ed, whatever the entries and their
 * order: every entry is made relative to a directory fd of the rootfs, its parent found with
 * `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (or an `O_NOFOLLOW` walk), with `mkdirat`,
 * `openat(O_CREAT|O_EXCL|O_NOFOLLOW)`, `symlinkat`, `linkat`, `mknodat`, owners and modes set on
 * fds or with `AT_SYMLINK_NOFOLLOW`; a name an entry replaces is `unlinkat`'ed (a non-empty
 * directory is never removed). Refused: absolute names and `..`; an entry, or a hard link's target,
 * reached through a symlink (from the tarball, wherever it points); a hard link to the rootfs
 * itself. Symlink targets are stored as they are (they only mean something inside the container).
 *
 * @param tarball The archive (plain, gzip, zstd or xz).
 * @param dir The rootfs directory to create.
 * @param options Owner shift, progress, limits.
 * @returns The directory and whether this call extracted it.
 * @throws {ConfigError} A bad `maxBytes`/`maxEntries` or `HAKO_TAR_MAX_*` value.
 * @throws {SetupError} Step `rootfs`: a refused entry, a limit exceeded, a bad tarball, `dir`
 *   holding something else.
 * @throws {SyscallError} A failed file system call (naming the call, the path and errno).
 */
export async function extractRootfs(
  tarball: string,
  dir: string,
  options: ExtractOptions = {},
): Promise<ExtractResult> {
  const limits = {
    maxBytes: limit(options.maxBytes, "HAKO_TAR_MAX_BYTES", DEFAULT_MAX_BYTES, "maxBytes"),
    maxEntries: limit(options.maxEntries, "HAKO_TAR_MAX_ENTRIES", DEFAULT_MAX_ENTRIES, "maxEntries"),
  };
  const source = resolve(tarball);
  dir = resolve(dir);
  let st: at.FileStat;
  try {
    st = at.statx(at.AT_FDCWD, source, 0);
  } catch (e) {
    throw new SetupError("rootfs", `tarball ${source}: ${(e as Error).message}`, { cause: e });
  }
  if ((st.mode & at.S_IFMT) !== at.S_IFREG) throw new SetupError("rootfs", `tarball ${source} is not a regular file`);
  const owner = options.owner ? { uid: options.owner.uid, gid: options.owner.gid ?? options.owner.uid } : null;
  const marker: Marker = {
    version: 2,
    tarball: source,
    size: st.size,
    mtime: { sec: String(st.mtimeSec), nsec: st.mtimeNsec },
    owner,
  };

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
    if (!empty) throw notOurs(dir, source);
    try {
      rmdirSync(dir);
    } catch (e) {
      throw fsError(e, "rmdir", dir, "rootfs");
    }
  }

  let tmp: string;
  try {
    makePrivateParents(dir);
    tmp = mkdtempSync(join(dirname(dir), extractionTempPrefix(dir)));
    chmodSync(tmp, 0o755);
  } catch (e) {
    throw fsError(e, "mkdtemp", dirname(dir), "rootfs");
  }
  try {
    const root = at.openat(at.AT_FDCWD, tmp, at.O_RDONLY | at.O_DIRECTORY | at.O_NOFOLLOW | at.O_CLOEXEC);
    try {
      await unpackInto(source, st.size, root, tmp, owner, limits, options.onProgress, marker);
    } finally {
      at.close(root);
    }
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // Another extraction (`hako start` runs two) may have put the same rootfs there meanwhile.
      const code = (e as { code?: string }).code;
      if ((code === "ENOTEMPTY" || code === "EEXIST") && sameMarker(readMarker(dir), marker)) {
        rmSync(tmp, { recursive: true, force: true });
        return { path: dir, created: false };
      }
      if (code === "ENOTEMPTY" || code === "EEXIST") throw notOurs(dir, source);
      throw fsError(e, "rename", dir, "rootfs");
    }
  } catch (e) {
    // node:fs's recursive removal unlinks symlinks, never what they point to.
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof SetupError || e instanceof SyscallError || e instanceof ConfigError) throw e;
    throw new SetupError("rootfs", `extracting ${source}: ${(e as Error)?.message ?? e}`, { cause: e });
  }
  return { path: dir, created: true };
}

/**
 * The name prefix of the temp sibling {@link extractRootfs} extracts `dir` into before renaming it
 * into place (`mkdtemp` adds six characters): what an interrupted extraction leaves, for `gc`.
 * @param dir The rootfs directory.
 * @returns `.NAME.hako-tmp-`, NAME being the last component of `dir`.
 */
export function extractionTempPrefix(dir: string): string {
  return `.${basename(dir)}.hako-tmp-`;
}

function notOurs(dir: string, source: string): SetupError {
  return new SetupError(
    "rootfs",
    `${dir} exists and was not extracted from ${source} with these options (remove it to extract again)`,
  );
}

/** How a tarball is compressed, from its first bytes (as GNU tar and docker tell them apart). */
type Compression = "gzip" | "zstd" | "xz" | "none";

const MAGIC: readonly (readonly [Compression, readonly number[]])[] = [
  ["gzip", [0x1f, 0x8b]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
];

/** The compression of the file at `path`, by its magic bytes. */
function compressionOf(path: string): Compression {
  const fd = openSync(path, "r");
  try {
    const head = new Uint8Array(6);
    const n = readSync(fd, head, 0, head.length, 0);
    const found = MAGIC.find(([, m]) => n >= m.length && m.every((b, i) => head[i] === b));
    return found?.[0] ?? "none";
  } finally {
    closeSync(fd);
  }
}

/**
 * The tarball's bytes, decompressed: gzip and zstd by `node:zlib` (both runtimes have them), xz by
 * liblzma (ffi/lzma.ts). Inflated here, not by node-tar, so the inflated bytes can be counted.
 */
function decompressed(source: string, rs: NodeJS.ReadableStream & { destroy(): void }): AsyncIterable<Uint8Array> & {
  destroy?: () => void;
} {
  // node:zlib and node:stream are loaded here, not at import: under Bun their import costs ~14 ms of
  // every start that loads the container library (`hako-runc create`, `hako run`; bench/oci.ts).
  const builtin = <T>(name: string) => process.getBuiltinModule(name) as T;
  const { pipeline } = builtin<typeof import("node:stream")>("node:stream");
  const zlib = builtin<typeof import("node:zlib")>("node:zlib");
  switch (compressionOf(source)) {
    case "gzip":
      return pipeline(rs, zlib.createGunzip(), () => {});
    case "zstd":
      return pipeline(rs, zlib.createZstdDecompress(), () => {});
    case "xz":
      return xzDecompress(rs as AsyncIterable<Uint8Array>);
    case "none":
      return rs as AsyncIterable<Uint8Array>;
  }
}

async function unpackInto(
  source: string,
  size: number,
  root: number,
  rootPath: string,
  owner: { uid: number; gid: number } | null,
  limits: { maxBytes: number; maxEntries: number },
  onProgress: ((done: number, total: number) => void) | undefined,
  marker: Marker,
): Promise<void> {
  const u = new Unpacker(root, rootPath, source, owner, limits);
  const show = onProgress ?? (process.stderr.isTTY && size > PROGRESS_MIN_BYTES ? bar(basename(source)) : undefined);
  const rs = createReadStream(source);
  const input = decompressed(source, rs);
  try {
    await feed(input, u, limits, false, show ? () => show(rs.bytesRead, size) : undefined);
  } finally {
    rs.destroy();
    if (input !== rs) input.destroy?.();
    if (show && !onProgress) process.stderr.write("\r\x1b[K");
  }
  u.finish(marker);
}

/**
 * Parses the (decompressed) archive `input` into the unpacker `u`, counting bytes against the
 * limit. Reading stops at the end-of-archive blocks (nothing after them is inflated) unless
 * `drain`, where the rest is read too (and counted): an image layer's digest covers every byte.
 */
async function feed(
  input: AsyncIterable<Uint8Array>,
  u: Unpacker,
  limits: { maxBytes: number },
  drain: boolean,
  progress: (() => void) | undefined,
): Promise<void> {
  const { Parser } = await loadTar();
  // strict: a bad header, a truncated archive or "not a tarball" is an error, not a warning.
  const parser = new Parser({ strict: true });
  let eof = false;
  const finished = new Promise<void>((done) => {
    parser.on("end", () => done());
    parser.on("error", (e: unknown) => {
      u.fail(e);
      done();
    });
  });
  parser.on("entry", (e: ReadEntry) => u.entry(e));
  parser.on("ignoredEntry", (e: ReadEntry) => u.ignored(e));
  parser.on("eof", () => (eof = true));
  let total = 0;
  try {
    for await (const chunk of input) {
      total += chunk.length;
      if (total > limits.maxBytes) u.fail(u.tooBig());
      else if (!eof) {
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
        u.headers?.write(buf);
        parser.write(buf);
      }
      progress?.();
      if (u.failure !== undefined || (eof && !drain)) break;
    }
    if (u.failure === undefined) {
      parser.end();
      await finished;
    }
  } finally {
    u.closeOpenFile();
  }
  if (u.failure !== undefined) throw u.failure;
}

/** Options for {@link applyLayer}. */
export interface LayerOptions {
  /** How the layer is named in errors (e.g. its digest). */
  readonly source: string;
  /** The most bytes the uncompressed layer may hold (default as {@link ExtractOptions.maxBytes}). */
  readonly maxBytes?: number;
  /** The most entries it may hold (default as {@link ExtractOptions.maxEntries}). */
  readonly maxEntries?: number;
}

/**
 * Applies one image layer (an uncompressed tar stream, read to its end) on top of the tree in
 * `dir`, with the hardening of {@link extractRootfs} and the layer rules of the OCI image spec
 * (as docker's and containerd's appliers): a `.wh.NAME` entry removes NAME from the layers
 * below, `.wh..wh..opq` empties its directory of what the layers below put there, other
 * `.wh..wh.*` names are ignored, an entry replaces what is at its name (a directory only by a
 * directory, which is merged), and the extended attributes `security.capability` and `user.*`
 * (never `user.overlay.*`, which overlayfs would read) are kept; `trusted.*` and the other
 * `security.*` ones are dropped, as an overlay lower dir must never hold overlay's own.
 * Whiteouts are names under the rootfs like any other entry: `..` and a way through a symlink
 * are refused, a whiteout of a missing name does nothing.
 * @param input The layer's bytes, decompressed.
 * @param dir The tree to apply it to (the layers below, already there).
 * @param options Its name for errors, limits.
 * @throws {SetupError} Step `rootfs`: a refused entry, a limit exceeded, a bad archive.
 * @throws {SyscallError} A failed file system call.
 */
export async function applyLayer(input: AsyncIterable<Uint8Array>, dir: string, options: LayerOptions): Promise<void> {
  const limits = {
    maxBytes: limit(options.maxBytes, "HAKO_TAR_MAX_BYTES", DEFAULT_MAX_BYTES, "maxBytes"),
    maxEntries: limit(options.maxEntries, "HAKO_TAR_MAX_ENTRIES", DEFAULT_MAX_ENTRIES, "maxEntries"),
  };
  const root = at.openat(at.AT_FDCWD, dir, at.O_RDONLY | at.O_DIRECTORY | at.O_NOFOLLOW | at.O_CLOEXEC);
  try {
    const u = new Unpacker(root, dir, options.source, null, limits, true);
    await feed(input, u, limits, true, undefined);
    u.finishDirs();
  } finally {
    at.close(root);
  }
}

/** The largest value of an extended attribute Linux keeps (linux/limits.h); a larger one is dropped. */
const XATTR_SIZE_MAX = 65536;
/** The most attribute bytes a layer may hold for its entries at once. */
const MAX_HELD_XATTR_BYTES = 64 * 1024 * 1024;

/** The extended attributes a layer may set (see {@link applyLayer}). */
function keptXattr(name: string, own: boolean): boolean {
  if (name === "security.capability") return !own;
  return name.startsWith("user.") && !name.startsWith("user.overlay.");
}

/**
 * A second, tiny reader of the same tar bytes that keeps what node-tar drops: the PAX records
 * `SCHILY.xattr.NAME` (binary values, which node-tar's text decoding would mangle), by the path
 * of the entry they precede. It looks at headers only and skips data by its size.
 */
class XattrHeaders {
  /** Cleaned path → attributes, taken by the unpacker as it meets the entry. */
  readonly found = new Map<string, Map<string, Uint8Array>>();
  #pending: Buffer[] = [];
  #pendingLen = 0;
  /** Bytes of data (padded) still to skip, or to collect into `#meta`. */
  #skip = 0;
  #meta: Buffer[] | undefined;
  #metaType = 0;
  #metaLeft = 0;
  #pax: Map<string, Uint8Array> | undefined;
  #paxPath: string | undefined;
  #longName: string | undefined;
  #paxSize: number | undefined;
  /** The attribute bytes held for entries not met yet (capped: a hostile layer's memory). */
  #held = 0;

  /** The attributes of the entry at `path` (cleaned), handed over once. */
  take(path: string): Map<string, Uint8Array> | undefined {
    const x = this.found.get(path);
    if (x) {
      this.found.delete(path);
      for (const v of x.values()) this.#held -= v.length;
    }
    return x;
  }

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - off);
        if (this.#meta && this.#metaLeft > 0) {
          const take = Math.min(n, this.#metaLeft);
          this.#meta.push(chunk.subarray(off, off + take));
          this.#metaLeft -= take;
        }
        this.#skip -= n;
        off += n;
        if (this.#skip === 0 && this.#meta) this.#endMeta();
        continue;
      }
      const need = 512 - this.#pendingLen;
      const n = Math.min(need, chunk.length - off);
      this.#pending.push(chunk.subarray(off, off + n));
      this.#pendingLen += n;
      off += n;
      if (this.#pendingLen === 512) {
        const block = Buffer.concat(this.#pending);
        this.#pending = [];
        this.#pendingLen = 0;
        this.#header(block);
      }
    }
  }

  #header(h: Buffer): void {
    if (h.every((b) => b === 0)) return;
    const str = (a: number, b: number) => h.subarray(a, b).toString("utf8").replace(/\0.*$/s, "");
    let size: number;
    if (h[124]! & 0x80) {
      size = 0;
      for (let i = 125; i < 136; i++) size = size * 256 + h[i]!;
    } else size = parseInt(str(124, 136).trim() || "0", 8) || 0;
    const type = h[156]!;
    const padded = Math.ceil(size / 512) * 512;
    // x: a PAX header for the next entry; L: GNU long name; K: long link name; g: global PAX
    if (type === 0x78 || type === 0x58 || type === 0x4c) {
      this.#meta = [];
      this.#metaType = type;
      this.#metaLeft = Math.min(size, 1 << 20);
      this.#skip = padded;
      if (padded === 0) this.#endMeta();
      return;
    }
    if (type === 0x4b || type === 0x67) {
      this.#skip = padded;
      return;
    }
    const ustar = h.subarray(257, 262).toString("latin1") === "ustar";
    const prefix = ustar ? str(345, 500) : "";
    const name = this.#paxPath ?? this.#longName ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100));
    if (this.#pax?.size) {
      const parts = clean(name, "path");
      if (typeof parts !== "string") {
        for (const v of this.#pax.values()) this.#held += v.length;
        if (this.#held > MAX_HELD_XATTR_BYTES) {
          throw new SetupError(
            "rootfs",
            `the layer's extended attributes hold more than ${MAX_HELD_XATTR_BYTES} bytes`,
          );
        }
        this.found.set(parts.join("/"), this.#pax);
      }
    }
    this.#pax = undefined;
    this.#paxPath = undefined;
    this.#longName = undefined;
    // (every entry's data is skipped by its size, as node-tar does; PAX's size wins)
    const real = this.#paxSize ?? size;
    this.#paxSize = undefined;
    this.#skip = Math.ceil(real / 512) * 512;
  }

  #endMeta(): void {
    const body = Buffer.concat(this.#meta ?? []);
    this.#meta = undefined;
    if (this.#metaType === 0x4c) {
      this.#longName = body.toString("utf8").replace(/\0.*$/s, "");
      return;
    }
    // PAX records: "LEN KEY=VALUE\n", LEN counting the whole record (so values may hold any byte).
    let off = 0;
    while (off < body.length) {
      const sp = body.indexOf(0x20, off);
      if (sp < 0) break;
      const len = parseInt(body.subarray(off, sp).toString("latin1"), 10);
      if (!Number.isSafeInteger(len) || len <= sp - off || off + len > body.length) break;
      const rec = body.subarray(sp + 1, off + len - 1);
      const eq = rec.indexOf(0x3d);
      if (eq > 0) {
        const key = rec.subarray(0, eq).toString("utf8");
        if (key === "path") this.#paxPath = rec.subarray(eq + 1).toString("utf8");
        else if (key === "size") {
          const n = Number(rec.subarray(eq + 1).toString("latin1"));
          if (Number.isSafeInteger(n) && n >= 0) this.#paxSize = n;
        } else if (key.startsWith("SCHILY.xattr.") && rec.length - eq - 1 <= XATTR_SIZE_MAX) {
          (this.#pax ??= new Map()).set(key.slice("SCHILY.xattr.".length), new Uint8Array(rec.subarray(eq + 1)));
        }
      }
      off += len;
    }
  }
}

/** How a parent directory's lookup may go (the kernel refuses any symlink, and any way out). */
const BENEATH = at.RESOLVE_BENEATH | at.RESOLVE_NO_SYMLINKS | at.RESOLVE_NO_MAGICLINKS;

/** False once openat2 answered ENOSYS (a kernel before 5.6): the `O_NOFOLLOW` walk does the job. */
let openat2Works = true;

/**
 * Makes each entry under the rootfs's directory fd, synchronously as node-tar parses it.
 *
 * Why parents are looked up with `RESOLVE_NO_SYMLINKS` rather than `RESOLVE_IN_ROOT`:
 * containerd (`fs.RootPath`) and umoci (securejoin) follow symlinks *scoped to the root*, because
 * an image layer may write under a symlink an earlier layer made. hako extracts one flat rootfs
 * tarball, where a well-formed archive never needs to go through one of its own symlinks (tar
 * records real paths), so such an entry is refused, as before: an attempt is reported instead of
 * quietly landing somewhere else, and no symlink is ever resolved by the extractor.
 */
class Unpacker {
  readonly #root: number;
  readonly #rootPath: string;
  readonly #source: string;
  readonly #shift: { uid: number; gid: number } | null;
  /** True when files keep the caller's ownership (rootless): no chown, no device nodes. */
  readonly #own: boolean;
  readonly #limits: { maxBytes: number; maxEntries: number };
  readonly #dirTimes: Array<{ parts: string[]; mtime: at.FileTime }> = [];
  #entries = 0;
  #dataBytes = 0;
  #openFile: number | undefined;
  /** An image layer (see {@link applyLayer}): whiteouts, replacements, extended attributes. */
  readonly #layer: boolean;
  /** A layer's extended attributes, read beside node-tar. */
  readonly headers: XattrHeaders | undefined;
  /** The paths this layer made (an opaque directory keeps them). */
  readonly #made = new Set<string>();
  /** The first error; once set, every later entry is skipped. */
  failure: unknown = undefined;

  constructor(
    root: number,
    rootPath: string,
    source: string,
    shift: { uid: number; gid: number } | null,
    limits: { maxBytes: number; maxEntries: number },
    layer = false,
  ) {
    this.#layer = layer;
    this.headers = layer ? new XattrHeaders() : undefined;
    this.#root = root;
    this.#rootPath = rootPath;
    this.#source = source;
    this.#shift = shift;
    this.#limits = limits;
    // Rootless (a caller without root, no owner shift asked): every file stays the caller's,
    // which the container's user namespace maps to root — as podman's rootless storage without
    // subordinate ids (containers/storage's ignore_chown_errors); device nodes, which only root
    // may make, are left out, as moby's archive does in a user namespace.
    this.#own = !shift && (process.geteuid?.() ?? 0) !== 0;
    if (shift) at.fchown(root, shift.uid, shift.gid, rootPath);
  }

  /** Records the first failure. */
  fail(e: unknown): void {
    if (this.failure === undefined) this.failure = e;
    this.closeOpenFile();
  }

  /** The error for an archive over the byte limit. */
  tooBig(): SetupError {
    return new SetupError(
      "rootfs",
      `${this.#source} unpacks to more than ${this.#limits.maxBytes} bytes, the limit ` +
        `(a decompression bomb? raise it with HAKO_TAR_MAX_BYTES or the maxBytes option)`,
    );
  }

  /** Closes a regular file still being written (after a failure or a truncated archive). */
  closeOpenFile(): void {
    if (this.#openFile !== undefined) at.close(this.#openFile);
    this.#openFile = undefined;
  }

  /** An entry node-tar will not hand over (an unknown type): counted, its data drained. */
  ignored(e: ReadEntry): void {
    try {
      this.#count(e);
    } catch (err) {
      this.fail(err);
    }
  }

  /** One entry. Never throws: a failure is recorded and the rest of the archive skipped. */
  entry(e: ReadEntry): void {
    if (this.failure === undefined) {
      try {
        this.#count(e);
        this.#entry(e);
        return;
      } catch (err) {
        this.fail(err);
      }
    }
    e.resume();
  }

  #count(e: ReadEntry): void {
    if (++this.#entries > this.#limits.maxEntries) {
      throw new SetupError(
        "rootfs",
        `${this.#source} has more than ${this.#limits.maxEntries} entries, the limit ` +
          `(raise it with HAKO_TAR_MAX_ENTRIES or the maxEntries option)`,
      );
    }
    this.#dataBytes += e.size ?? 0;
    if (this.#dataBytes > this.#limits.maxBytes) throw this.tooBig();
  }

  #shown(parts: readonly string[]): string {
    return join(this.#rootPath, ...parts);
  }

  #ids(e: ReadEntry): [number, number] {
    const id = (n: number | undefined) => (Number.isSafeInteger(n) && n! >= 0 ? n! : 0);
    return [id(e.uid) + (this.#shift?.uid ?? 0), id(e.gid) + (this.#shift?.gid ?? 0)];
  }

  #entry(e: ReadEntry): void {
    const raw = e.path;
    const parts = clean(raw, "path");
    if (typeof parts === "string") throw refused(raw, parts);
    const [uid, gid] = this.#ids(e);
    const mode = (e.mode ?? 0) & 0o7777;
    const mtime: at.FileTime = e.mtime instanceof Date && !isNaN(e.mtime.getTime())
      ? { sec: Math.floor(e.mtime.getTime() / 1000), nsec: (e.mtime.getTime() % 1000) * 1e6 }
      : "omit";
    const isDir = e.type === "Directory" || e.type === "GNUDumpDir";

    if (parts.length === 0) {
      if (!isDir) throw refused(raw, "it would replace the rootfs itself");
      if (!this.#own) at.fchown(this.#root, uid, gid, this.#rootPath);
      at.fchmod(this.#root, mode, this.#rootPath);
      this.#dirTimes.push({ parts, mtime });
      e.resume();
      return;
    }

    const name = parts[parts.length - 1]!;
    if (this.#layer && name.startsWith(".wh.")) {
      this.#whiteout(parts, raw);
      e.resume();
      return;
    }
    const shown = this.#shown(parts);
    const xattrs = this.headers?.take(parts.join("/"));
    const parent = this.#openDir(parts.slice(0, -1), raw, true);
    if (this.#layer) this.#made.add(parts.join("/"));
    try {
      switch (e.type) {
        case "Directory":
        case "GNUDumpDir": {
          const fd = this.#mkdir(parent, name, parts, raw);
          try {
            if (!this.#own) at.fchown(fd, uid, gid, shown);
            at.fchmod(fd, mode, shown);
            if (xattrs) this.#setXattrs(fd, xattrs, shown);
          } finally {
            at.close(fd);
          }
          this.#dirTimes.push({ parts, mtime });
          e.resume();
          return;
        }
        case "File":
        case "OldFile":
        case "ContiguousFile": {
          const flags = at.O_WRONLY | at.O_CREAT | at.O_EXCL | at.O_NOFOLLOW | at.O_CLOEXEC;
          const fd = this.#create(parent, name, parts, raw, () => at.openat(parent, name, flags, 0o600, shown));
          this.#openFile = fd;
          e.on("end", () => {
            if (this.#openFile !== fd) return; // closed after a failure
            try {
              // chown first: it clears setuid/setgid bits, which the chmod then sets.
              if (!this.#own) at.fchown(fd, uid, gid, shown);
              at.fchmod(fd, mode, shown);
              // (after the chown, which would clear security.capability)
              if (xattrs) this.#setXattrs(fd, xattrs, shown);
              at.futimens(fd, "omit", mtime, shown);
            } catch (err) {
              this.fail(err);
            } finally {
              this.closeOpenFile();
            }
          });
          e.on("data", (chunk: Uint8Array) => {
            if (this.#openFile !== fd) return;
            try {
              at.writeAll(fd, chunk, shown);
            } catch (err) {
              this.fail(err);
            }
          });
          return;
        }
        case "SymbolicLink": {
          const target = String(e.linkpath ?? "");
          this.#create(parent, name, parts, raw, () => at.symlinkat(target, parent, name, shown));
          if (!this.#own) at.fchownat(parent, name, uid, gid, at.AT_SYMLINK_NOFOLLOW, shown);
          at.utimensat(parent, name, "omit", mtime, at.AT_SYMLINK_NOFOLLOW, shown);
          e.resume();
          return;
        }
        case "Link": {
          const target = clean(String(e.linkpath ?? ""), "hard link target");
          if (typeof target === "string") {
            throw refused(raw, `${target} (${JSON.stringify(e.linkpath)}), outside the rootfs`);
          }
          if (target.length === 0) throw refused(raw, "hard link to the rootfs itself");
          if (target.join("/") === parts.join("/")) throw refused(raw, "hard link to itself");
          const tname = target[target.length - 1]!;
          const tparent = this.#openDir(target.slice(0, -1), raw, false, "hard link target goes");
          try {
            // linkat without AT_SYMLINK_FOLLOW: a symlink target is linked itself, never followed.
            this.#create(
              parent,
              name,
              parts,
              raw,
              () => at.linkat(tparent, tname, parent, name, [this.#shown(target), shown]),
            );
          } finally {
            at.close(tparent);
          }
          e.resume();
          return;
        }
        case "CharacterDevice":
        case "BlockDevice":
        case "FIFO": {
          const type = e.type === "CharacterDevice" ? at.S_IFCHR : e.type === "BlockDevice" ? at.S_IFBLK : at.S_IFIFO;
          const dev = e.type === "FIFO" ? 0n : makedev(e.header?.devmaj ?? 0, e.header?.devmin ?? 0);
          if (this.#own && e.type !== "FIFO") {
            e.resume(); // (rootless: no device node; the container gets hako's /dev anyway)
            return;
          }
          // As root; in a user namespace mknodat fails with EPERM, which is reported (as before).
          this.#create(parent, name, parts, raw, () => at.mknodat(parent, name, type | mode, dev, shown));
          if (!this.#own) at.fchownat(parent, name, uid, gid, at.AT_SYMLINK_NOFOLLOW, shown);
          // `name` is the node mknodat just made (not a symlink) in a directory only this
          // extraction writes, so fchmodat (which would follow a symlink) changes that node.
          at.fchmodat(parent, name, mode, shown);
          at.utimensat(parent, name, "omit", mtime, at.AT_SYMLINK_NOFOLLOW, shown);
          e.resume();
          return;
        }
        default:
          e.resume(); // a type node-tar passes on but a rootfs has no use for
      }
    } finally {
      at.close(parent);
    }
  }

  /**
   * An `O_PATH` (or `flags`) fd of the directory `parts` under the root, reached with no symlink
   * followed. With `create`, missing directories are made (mode 0755, owned by the shifted root).
   */
  #openDir(
    parts: readonly string[],
    raw: string,
    create: boolean,
    what = "it would be written",
    flags = at.O_PATH,
  ): number {
    if (openat2Works) {
      try {
        return at.openat2(
          this.#root,
          parts.length ? parts.join("/") : ".",
          { flags: flags | at.O_DIRECTORY | at.O_CLOEXEC, resolve: BENEATH },
          this.#shown(parts),
        );
      } catch (e) {
        if (!(e instanceof SyscallError)) throw e;
        if (e.code === "ENOSYS") openat2Works = false;
        else if (!["ENOENT", "ELOOP", "ENOTDIR", "EXDEV"].includes(e.code)) throw e;
        // The walk below makes what is missing and names the symlink in the way.
      }
    }
    let cur = at.openat(this.#root, ".", at.O_PATH | at.O_DIRECTORY | at.O_CLOEXEC, 0, this.#rootPath);
    try {
      for (let i = 0; i < parts.length; i++) {
        const name = parts[i]!;
        const here = parts.slice(0, i + 1);
        const shown = this.#shown(here);
        const f = (i === parts.length - 1 ? flags : at.O_PATH) | at.O_DIRECTORY | at.O_NOFOLLOW | at.O_CLOEXEC;
        let next: number;
        try {
          next = at.openat(cur, name, f, 0, shown);
        } catch (e) {
          if (!(e instanceof SyscallError)) throw e;
          if (e.code === "ENOENT" && create) {
            next = this.#mkdir(cur, name, here, raw);
            try {
              if (this.#shift) at.fchown(next, this.#shift.uid, this.#shift.gid, shown);
              at.fchmod(next, 0o755, shown);
            } catch (err) {
              at.close(next);
              throw err;
            }
          } else if (e.code === "ENOTDIR" || e.code === "ELOOP") {
            const st = at.statx(cur, name, at.AT_SYMLINK_NOFOLLOW, shown);
            const rel = JSON.stringify(here.join("/"));
            throw refused(
              raw,
              (st.mode & at.S_IFMT) === at.S_IFLNK ? `${what} through the symlink ${rel}` : `${rel} is not a directory`,
            );
          } else throw e;
        }
        at.close(cur);
        cur = next;
      }
      return cur;
    } catch (e) {
      at.close(cur);
      throw e;
    }
  }

  /**
   * A directory `name` under `parent`, made (0700 until the caller's fchmod) or kept when there;
   * returns an fd of it, opened `O_NOFOLLOW|O_DIRECTORY`, for the caller to chown and chmod.
   */
  #mkdir(parent: number, name: string, parts: readonly string[], raw: string): number {
    const shown = this.#shown(parts);
    try {
      at.mkdirat(parent, name, 0o700, shown);
    } catch (e) {
      if (!(e instanceof SyscallError) || e.code !== "EEXIST") throw e;
      const st = at.statx(parent, name, at.AT_SYMLINK_NOFOLLOW, shown);
      if ((st.mode & at.S_IFMT) !== at.S_IFDIR) {
        this.#clear(parent, name, parts, raw);
        at.mkdirat(parent, name, 0o700, shown);
      }
    }
    return at.openat(parent, name, at.O_RDONLY | at.O_DIRECTORY | at.O_NOFOLLOW | at.O_CLOEXEC, 0, shown);
  }

  /** Runs `make`; when the name is taken, clears it ({@link #clear}) and runs `make` again. */
  #create<T>(parent: number, name: string, parts: readonly string[], raw: string, make: () => T): T {
    try {
      return make();
    } catch (e) {
      if (!(e instanceof SyscallError) || e.code !== "EEXIST") throw e;
      this.#clear(parent, name, parts, raw);
      return make();
    }
  }

  /**
   * Removes what has `name` under `parent` (the entry itself, a symlink never followed). A
   * directory must be empty: like GNU tar (without --recursive-unlink) and node-tar, a non-empty
   * directory is never replaced.
   */
  #clear(parent: number, name: string, parts: readonly string[], raw: string): void {
    const shown = this.#shown(parts);
    let st: at.FileStat;
    try {
      st = at.statx(parent, name, at.AT_SYMLINK_NOFOLLOW, shown);
    } catch (e) {
      if (e instanceof SyscallError && e.code === "ENOENT") return;
      throw e;
    }
    if ((st.mode & at.S_IFMT) !== at.S_IFDIR) {
      at.unlinkat(parent, name, 0, shown);
      return;
    }
    try {
      at.unlinkat(parent, name, at.AT_REMOVEDIR, shown);
    } catch (e) {
      if (this.#layer && e instanceof SyscallError && (e.code === "ENOTEMPTY" || e.code === "EEXIST")) {
        // A layer's entry replaces a lower layer's directory (docker's applier does the same).
        this.#removeTree(parent, name);
        return;
      }
      if (e instanceof SyscallError && (e.code === "ENOTEMPTY" || e.code === "EEXIST")) {
        throw refused(raw, `it would replace the directory ${JSON.stringify(parts.join("/"))}, which is not empty`);
      }
      throw e;
    }
  }

  /**
   * A whiteout entry: `.wh..wh..opq` empties its directory of what lower layers put there;
   * `.wh.NAME` removes NAME; other `.wh..wh.` names (aufs's bookkeeping) are ignored, as docker does.
   * The directory is reached as any entry's parent (no symlink, nothing outside); when it is not
   * there, there is nothing to hide.
   */
  #whiteout(parts: readonly string[], raw: string): void {
    const name = parts[parts.length - 1]!;
    const dirParts = parts.slice(0, -1);
    const opaque = name === ".wh..wh..opq";
    if (!opaque && name.startsWith(".wh..wh.")) return;
    const target = name.slice(".wh.".length);
    if (!opaque && (target === "" || target === "." || target === "..")) {
      throw refused(raw, "a whiteout of no name in its directory");
    }
    let dir: number;
    try {
      dir = this.#openDir(dirParts, raw, false, "a whiteout goes", at.O_RDONLY);
    } catch (e) {
      if (e instanceof SyscallError && e.code === "ENOENT") return;
      throw e;
    }
    try {
      const names = opaque ? readdirSync(`/proc/self/fd/${dir}`) : [target];
      for (const n of names) {
        if (this.#made.has([...dirParts, n].join("/"))) continue; // this layer's own
        try {
          at.statx(dir, n, at.AT_SYMLINK_NOFOLLOW, this.#shown([...dirParts, n]));
        } catch (e) {
          if (e instanceof SyscallError && e.code === "ENOENT") continue;
          throw e;
        }
        this.#removeTree(dir, n);
      }
    } finally {
      at.close(dir);
    }
  }

  /**
   * Removes `name` under the directory fd `parent`, and all below it when a directory: through
   * `/proc/self/fd/N`, so the parent is the one this extraction reached with no symlink followed;
   * node:fs's recursive removal unlinks symlinks, never what they point to.
   */
  #removeTree(parent: number, name: string): void {
    const st = at.statx(parent, name, at.AT_SYMLINK_NOFOLLOW, name);
    if ((st.mode & at.S_IFMT) !== at.S_IFDIR) {
      at.unlinkat(parent, name, 0, name);
      return;
    }
    rmSync(`/proc/self/fd/${parent}/${name}`, { recursive: true, force: true });
  }

  /** Sets the extended attributes a layer may set on the file open as `fd`. */
  #setXattrs(fd: number, xattrs: ReadonlyMap<string, Uint8Array>, shown: string): void {
    for (const [k, v] of xattrs) if (keptXattr(k, this.#own)) at.fsetxattr(fd, k, v, shown);
  }

  /** After the last entry: the marker, then the directories' mtimes (which their entries changed). */
  finish(marker: Marker): void {
    const shown = this.#shown([TARBALL_MARKER]);
    this.#clear(this.#root, TARBALL_MARKER, [TARBALL_MARKER], TARBALL_MARKER);
    const flags = at.O_WRONLY | at.O_CREAT | at.O_EXCL | at.O_NOFOLLOW | at.O_CLOEXEC;
    const fd = at.openat(this.#root, TARBALL_MARKER, flags, 0o644, shown);
    try {
      at.writeAll(fd, new TextEncoder().encode(JSON.stringify(marker) + "\n"), shown);
      at.fchmod(fd, 0o644, shown);
    } finally {
      at.close(fd);
    }
    this.finishDirs();
  }

  /** After the last entry: the directories' mtimes (which their entries changed). */
  finishDirs(): void {
    for (const { parts, mtime } of this.#dirTimes) {
      if (mtime === "omit") continue;
      let fd: number;
      try {
        fd = this.#openDir(parts, parts.join("/"), false, undefined, at.O_RDONLY);
      } catch {
        continue; // a later entry replaced it
      }
      try {
        at.futimens(fd, "omit", mtime, this.#shown(parts));
      } finally {
        at.close(fd);
      }
    }
  }
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
