/**
 * A cache of compiled seccomp programs across processes (issue #16: a cold `hako run` and every
 * shim's `create` compiled docker's profile afresh, ~8–19 ms). A cached program is what the kernel
 * will enforce, so a stale or planted entry would run a container under a filter other than the
 * one its spec asks for; hence:
 *
 * - Only root (euid 0) uses it, in a directory (default `/run/hako/seccomp`, tmpfs: gone at
 *   reboot) made 0700 and used only when it is root's, not writable by group or others, not a
 *   symlink, and the way to it can be changed by root alone (`_trusted_path.ts`). Anything else,
 *   `HAKO_SECCOMP_CACHE=0`, or any failure: no cache, compiled as before.
 * - An entry holds the whole key — the compiler's identity ({@link SECCOMP_COMPILER_ID}, a hash of
 *   its sources), the arch, the capabilities and kernel version the conditional rules see, and the
 *   profile's full canonical text — and is used only when that key equals the caller's byte for
 *   byte: the file name (a CRC-32) only finds it, so no hash collision, crafted or not, can
 *   hand one profile another's program. A hit is only possible for an input that compiled (and so
 *   passed validation) before with the same compiler.
 * - The profile is first copied into plain data ({@link snapshotProfile}: the parse of its JSON, or
 *   a walk reading each field once when it holds bigints): that copy is what the key describes and
 *   what a miss compiles, so a getter or a Proxy cannot show the key one profile and the compiler
 *   another.
 * - An entry is read with O_NOFOLLOW|O_NONBLOCK, must be a regular file of root's not writable by
 *   group or others, of bounded size, and parses to a program whose length is a multiple of 8, at
 *   most 4096 instructions, with a matching checksum; anything else is a miss (and is replaced).
 * - An entry is written to a temporary name (O_EXCL|O_NOFOLLOW, 0600) in the same directory and
 *   renamed into place: concurrent writers never let a reader see half an entry (a writer killed
 *   mid-way leaves a `.*.tmp` file no reader opens). runc has no such cache: it compiles at each
 *   start; nothing here is borrowed from it.
 * - The directory is bounded (it lives in memory, on tmpfs): after each write, the oldest entries
 *   beyond {@link MAX_CACHE_ENTRIES} or {@link MAX_CACHE_BYTES} are removed, and temporary files a
 *   killed writer left more than a minute ago. Every hako version, kernel, capability set and
 *   profile has entries of its own, so without this an upgraded host would keep the old ones
 *   until reboot.
 *
 * No `node:crypto` here (~10 ms to import in a cold compiled Bun process): a CRC-32 names the file.
 * A cold process interprets its JavaScript, so the hit path leans on native calls (JSON.stringify,
 * TextEncoder/TextDecoder, string comparison, Bun's CRC-32) rather than loops over bytes.
 * @module
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import process from "node:process";
import { type FileFacts, type TrustFs, untrustedWayTo, writableByOthers } from "../_trusted_path.ts";
import { nodeTrustFs } from "../_node_trust_fs.ts";
import { SECCOMP_COMPILER_ID } from "./_compiler_id.ts";
import type { SeccompProfile } from "./_types.ts";

export { SECCOMP_COMPILER_ID };

/** Where root's cache lives unless `HAKO_SECCOMP_CACHE_DIR` says otherwise. */
export const DEFAULT_SECCOMP_CACHE_DIR = "/run/hako/seccomp";
/** `BPF_MAXINSNS` × `sizeof(struct sock_filter)`. */
const MAX_PROGRAM_BYTES = 4096 * 8;
/** The longest key cached (docker's default profile's is ~8 KB); longer profiles are compiled each time. */
export const MAX_KEY_BYTES = 1 << 20;
const MAGIC = "hako-seccomp-bpf 1";
/** The header line: magic, key length, program length, program checksum (decimal), then "\n". */
const MAX_HEADER = 80;

/** The most entries kept (docker's default profile under one capability set is one entry of ~9 KB). */
export const MAX_CACHE_ENTRIES = 256;
/** The most bytes of entries kept. */
export const MAX_CACHE_BYTES = 16 << 20;
/** How old a temporary file is when its writer is taken for dead (a write takes microseconds). */
const STALE_TMP_MS = 60_000;

/** The outcome of one lookup, for tests and measurements. */
export type SeccompCacheOutcome = "hit" | "miss" | "off";

/** What a cached compile needs to know. */
export interface SeccompCacheOptions {
  /** The directory (absolute); default `$HAKO_SECCOMP_CACHE_DIR`, else {@link DEFAULT_SECCOMP_CACHE_DIR}. */
  readonly dir?: string;
  /** The compiler identity to key on (default {@link SECCOMP_COMPILER_ID}; tests change it). */
  readonly compilerId?: string;
  /** The most entries kept (default {@link MAX_CACHE_ENTRIES}; tests lower it). */
  readonly maxEntries?: number;
  /** The most bytes of entries kept (default {@link MAX_CACHE_BYTES}). */
  readonly maxBytes?: number;
}

// ---------------------------------------------------------------------------------------------
// The canonical text

/** A plain-data copy of a profile and the canonical text that describes exactly that copy. */
export interface ProfileSnapshot {
  readonly copy: SeccompProfile;
  readonly text: string;
}

/**
 * A plain-data copy of `profile` and the text that describes exactly that copy, or undefined when
 * it cannot be had (a cycle, a function, a class instance with bigints…: such a profile is
 * compiled uncached, as before). Pure.
 *
 * The common case (no bigint) is native and cheap: the text is `JSON.stringify(profile)` and the
 * copy `JSON.parse(text)`, so the copy is a function of the text whatever getters or `toJSON` the
 * profile has, and that copy is what a miss compiles. A profile with bigints (64-bit argument
 * values) is walked instead (each field read once), into a text injective on plain data: strings
 * and keys through JSON.stringify (lone surrogates escaped), numbers with their sign of zero,
 * bigints with an `n` no JSON value has, undefined as `u`. The two texts start with different tags.
 */
export function snapshotProfile(profile: unknown): ProfileSnapshot | undefined {
  try {
    const json = JSON.stringify(profile);
    if (typeof json !== "string" || json.length > MAX_KEY_BYTES) return undefined;
    return { copy: JSON.parse(json) as SeccompProfile, text: `j${json}` };
  } catch (e) {
    if (!(e instanceof TypeError)) return undefined; // (a bigint or a cycle throws a TypeError)
  }
  let parts: string[] = [];
  let budget = MAX_KEY_BYTES;
  const walk = (v: unknown, depth: number): unknown => {
    if (--budget < 0 || depth > 16) throw NOT_PLAIN;
    switch (typeof v) {
      case "string":
        parts.push(JSON.stringify(v));
        budget -= v.length;
        return v;
      case "number":
        parts.push(Object.is(v, -0) ? "-0" : String(v));
        return v;
      case "bigint":
        parts.push(`${v}n`);
        return v;
      case "boolean":
        parts.push(v ? "t" : "f");
        return v;
      case "undefined":
        parts.push("u");
        return v;
      case "object": {
        if (v === null) {
          parts.push("null");
          return v;
        }
        const proto = Object.getPrototypeOf(v);
        if (Array.isArray(v) && proto === Array.prototype) {
          const n = v.length;
          if (!Number.isSafeInteger(n) || n > budget) throw NOT_PLAIN;
          const out: unknown[] = new Array(n);
          parts.push("[");
          for (let i = 0; i < n; i++) {
            if (i) parts.push(",");
            out[i] = walk(v[i], depth + 1);
          }
          parts.push("]");
          return out;
        }
        if (proto !== Object.prototype && proto !== null) throw NOT_PLAIN;
        const out: Record<string, unknown> = {};
        parts.push("{");
        let first = true;
        for (const key of Object.keys(v)) {
          if (!first) parts.push(",");
          first = false;
          parts.push(JSON.stringify(key), ":");
          budget -= key.length;
          out[key] = walk((v as Record<string, unknown>)[key], depth + 1);
        }
        parts.push("}");
        return out;
      }
      default:
        throw NOT_PLAIN; // a function or a symbol
    }
  };
  try {
    const copy = walk(profile, 0) as SeccompProfile;
    const text = `w${parts.join("")}`;
    parts = [];
    return { copy, text };
  } catch {
    return undefined; // not plain data, or a getter that threw: compiled uncached, as before
  }
}
const NOT_PLAIN = Symbol("not plain data");

/**
 * The whole key of an entry: the compiler's identity, the arch, the capabilities and kernel
 * version the conditional rules see (as `targetOf` resolves them), then the profile's text. The
 * JSON head has no newline in it, so where it ends is unambiguous; the key is well-formed Unicode
 * (JSON.stringify escapes lone surrogates), so its UTF-8 is one-to-one with it. Pure.
 */
export function cacheKey(
  compilerId: string,
  arch: string,
  capabilities: Iterable<string>,
  kernel: readonly number[],
  text: string,
): string {
  return `${JSON.stringify([MAGIC, compilerId, arch, [...capabilities].sort(), kernel])}\n${text}`;
}

let crcTable: Int32Array | undefined;

/**
 * CRC-32 (zlib's) of bytes: Bun's native one where there is one (a cold compiled process
 * interprets a JavaScript loop: ~0.1 µs a byte), else a table-driven loop. Names the file (the
 * key decides a hit, not this) and checks the program (against damage, not forgery). Pure.
 */
export function crc32(bytes: Uint8Array): number {
  const bun = (globalThis as { Bun?: { hash?: { crc32?: (b: Uint8Array) => number } } }).Bun;
  if (typeof bun?.hash?.crc32 === "function") return bun.hash.crc32(bytes) >>> 0;
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  const t = crcTable;
  let c = -1;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** The program's checksum. Pure. */
export function checksum(program: Uint8Array): number {
  return crc32(program);
}

/** The entry's file name for a key's UTF-8: its CRC-32 and length, in hex (the same under Deno and Bun). Pure. */
export function entryName(key: Uint8Array): string {
  return `${crc32(key).toString(16).padStart(8, "0")}-${key.length.toString(16)}.bpf`;
}

// ---------------------------------------------------------------------------------------------
// The entry format

const encoder = new TextEncoder();
/** Fatal and keeping a BOM: one string per valid UTF-8 byte string, so equal strings mean equal bytes. */
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** An entry's bytes: the header line, the key's UTF-8, the program. Pure. */
export function encodeEntry(key: Uint8Array, program: Uint8Array): Uint8Array {
  const head = encoder.encode(`${MAGIC} ${key.length} ${program.length} ${checksum(program)}\n`);
  const out = new Uint8Array(head.length + key.length + program.length);
  out.set(head, 0);
  out.set(key, head.length);
  out.set(program, head.length + key.length);
  return out;
}

/**
 * The program in an entry's bytes when its key is exactly `key` (byte for byte: the stored bytes
 * must be valid UTF-8 that decodes to `key`, whose UTF-8 is one-to-one with it) and it is whole
 * (lengths, program size and checksum all agree), else undefined. Pure and defensive: any other
 * byte string is a miss.
 */
export function decodeEntry(bytes: Uint8Array, key: string): Uint8Array<ArrayBuffer> | undefined {
  const nl = bytes.subarray(0, MAX_HEADER).indexOf(10);
  if (nl < 0) return undefined;
  let head = "";
  for (let i = 0; i < nl; i++) head += String.fromCharCode(bytes[i]!);
  const m = /^hako-seccomp-bpf 1 (0|[1-9]\d{0,8}) (0|[1-9]\d{0,8}) (0|[1-9]\d{0,9})$/.exec(head);
  if (!m) return undefined;
  const keyLen = Number(m[1]), progLen = Number(m[2]), sum = Number(m[3]);
  if (keyLen > MAX_KEY_BYTES || keyLen < key.length || keyLen > key.length * 3) return undefined;
  if (progLen === 0 || progLen % 8 !== 0 || progLen > MAX_PROGRAM_BYTES) return undefined;
  const at = nl + 1;
  if (bytes.length !== at + keyLen + progLen) return undefined;
  let stored: string;
  try {
    stored = strictDecoder.decode(bytes.subarray(at, at + keyLen));
  } catch {
    return undefined; // not UTF-8
  }
  if (stored !== key) return undefined;
  const program = bytes.slice(at + keyLen);
  return checksum(program) === sum ? program : undefined;
}

// ---------------------------------------------------------------------------------------------
// The directory and its files

const hostFs: TrustFs = nodeTrustFs;
const facts = (path: string): FileFacts | undefined => nodeTrustFs.lstat(path);

/**
 * Why root may not trust `dir` as its cache, or undefined when it may: the way to it changeable by
 * root alone, and the directory (when it exists) root's, not a symlink, not writable by group or
 * others. A missing directory is fine: it is made 0700.
 * @param dir An absolute path.
 * @param fs How to look (default: the host's lstat).
 */
export function cacheDirProblem(dir: string, fs: TrustFs = hostFs): string | undefined {
  const way = untrustedWayTo(dir, 0, fs);
  if (way) return way;
  const st = fs.lstat(dir);
  if (!st) return undefined;
  if (st.kind !== "dir") return `${dir} is ${st.kind === "symlink" ? "a symlink" : "not a directory"}`;
  if (st.uid !== 0) return `${dir} is owned by uid ${st.uid}, not root`;
  if (writableByOthers(st.mode)) return `${dir} is writable by group or others`;
  return undefined;
}

/** Root's cache directory now, or undefined: not root, turned off, or not an absolute path. */
function activeDir(options: SeccompCacheOptions): string | undefined {
  if (process.geteuid?.() !== 0) return undefined;
  let env: (name: string) => string | undefined;
  try {
    env = (name) => process.env[name];
    if (env("HAKO_SECCOMP_CACHE") === "0") return undefined;
  } catch {
    return undefined; // (Deno without --allow-env)
  }
  const dir = options.dir ?? (env("HAKO_SECCOMP_CACHE_DIR") || DEFAULT_SECCOMP_CACHE_DIR);
  return dir.startsWith("/") ? dir.replace(/\/+$/, "") || undefined : undefined;
}

/** The entry at `path` when it is a whole regular file of root's, not writable by others; else undefined. */
function readEntry(path: string, key: string): Uint8Array<ArrayBuffer> | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined; // missing, a symlink (ELOOP)…
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== 0 || writableByOthers(st.mode)) return undefined;
    const size = st.size;
    if (size > MAX_HEADER + MAX_KEY_BYTES + MAX_PROGRAM_BYTES) return undefined;
    const bytes = new Uint8Array(size + 1); // one more: a file that grew is refused
    let got = 0;
    while (got < bytes.length) {
      const n = readSync(fd, bytes, got, bytes.length - got, null);
      if (n === 0) break;
      got += n;
    }
    if (got !== size) return undefined;
    return decodeEntry(bytes.subarray(0, size), key);
  } catch {
    return undefined;
  } finally {
    try {
      closeSync(fd);
    } catch { /* closed */ }
  }
}

/** Makes `dir` (and its missing parents) 0700 whatever the umask. */
function makeDir(dir: string): void {
  const missing: string[] = [];
  for (let p = dir; p && p !== "/" && !facts(p); p = p.slice(0, p.lastIndexOf("/"))) missing.unshift(p);
  for (const p of missing) {
    try {
      mkdirSync(p, { mode: 0o700 });
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      continue; // made meanwhile by another process (judged by the caller's check)
    }
    chmodSync(p, 0o700); // whatever the umask took away
  }
}

let tmpCounter = 0;

/** Writes an entry through a temporary file and a rename; any failure leaves no entry and no error. */
function writeEntry(dir: string, name: string, bytes: Uint8Array): void {
  const tmp = `${dir}/.${name}.${process.pid}.${++tmpCounter}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    fchmodSync(fd, 0o600);
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, `${dir}/${name}`);
  } catch {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch { /* closed */ }
    }
    try {
      unlinkSync(tmp);
    } catch { /* never made, or renamed */ }
  }
}

/** An entry's file name: {@link entryName}'s shape. */
const ENTRY_NAME = /^[0-9a-f]{8}-[0-9a-f]{1,8}\.bpf$/;

/**
 * Keeps `dir` within `maxEntries` entries and `maxBytes` bytes of them, removing the oldest
 * written first (never `keep`, the one just written), and removes temporary files older than a
 * minute. Only regular files named as entries or temporary files are looked at or removed; any
 * failure leaves the rest as it is.
 */
export function trimCache(dir: string, keep: string, maxEntries: number, maxBytes: number, now = Date.now()): void {
  const entries: { name: string; mtime: number; size: number }[] = [];
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    const isTmp = name.startsWith(".") && name.endsWith(".tmp");
    if (!isTmp && !ENTRY_NAME.test(name)) continue;
    const st = lstatSync(`${dir}/${name}`, { throwIfNoEntry: false });
    if (!st?.isFile()) continue;
    if (isTmp) {
      if (now - st.mtimeMs > STALE_TMP_MS) unlinkQuietly(`${dir}/${name}`);
      continue;
    }
    entries.push({ name, mtime: st.mtimeMs, size: st.size });
    bytes += st.size;
  }
  if (entries.length <= maxEntries && bytes <= maxBytes) return;
  entries.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : 1));
  let count = entries.length;
  for (const e of entries) {
    if (count <= maxEntries && bytes <= maxBytes) break;
    if (e.name === keep) continue;
    unlinkQuietly(`${dir}/${e.name}`);
    count--;
    bytes -= e.size;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch { /* gone meanwhile */ }
}

/**
 * `compile(copy)` through root's cache: the program stored for exactly this key when there is a
 * whole, trusted entry; otherwise compiled (errors thrown as `compile` throws them) and stored.
 * @param profile The profile as given.
 * @param target The arch, the capabilities and kernel version the rules see (targetOf's).
 * @param compile Compiles the plain copy: the program, or a throw for an invalid profile.
 * @param options The directory and identity (tests).
 * @returns The program and whether it came from the cache; undefined when the cache is not used
 *   (not root, turned off, an untrusted directory, a profile that is not plain data): the caller
 *   compiles as before.
 */
export function cachedCompile(
  profile: SeccompProfile,
  target: { readonly arch: string; readonly capabilities: ReadonlySet<string>; readonly kernel: readonly number[] },
  compile: (copy: SeccompProfile) => Uint8Array<ArrayBuffer>,
  options: SeccompCacheOptions = {},
): { program: Uint8Array<ArrayBuffer>; outcome: Exclude<SeccompCacheOutcome, "off"> } | undefined {
  const dir = activeDir(options);
  if (!dir) return undefined;
  let problem: string | undefined;
  try {
    problem = cacheDirProblem(dir);
  } catch (e) {
    problem = (e as Error).message;
  }
  if (problem) return undefined;
  const snap = snapshotProfile(profile);
  if (!snap) return undefined;
  const key = cacheKey(
    options.compilerId ?? SECCOMP_COMPILER_ID,
    target.arch,
    target.capabilities,
    target.kernel,
    snap.text,
  );
  const keyBytes = encoder.encode(key);
  if (keyBytes.length > MAX_KEY_BYTES) return undefined;
  const name = entryName(keyBytes);
  const hit = readEntry(`${dir}/${name}`, key);
  if (hit) return { program: hit, outcome: "hit" };
  const program = compile(snap.copy);
  try {
    makeDir(dir);
    if (cacheDirProblem(dir) === undefined) {
      writeEntry(dir, name, encodeEntry(keyBytes, program));
      trimCache(dir, name, options.maxEntries ?? MAX_CACHE_ENTRIES, options.maxBytes ?? MAX_CACHE_BYTES);
    }
  } catch { /* a cache that cannot be written (or trimmed) is no cache */ }
  return { program, outcome: "miss" };
}
