/**
 * hako's image store: images imported from a `docker save`/`podman save` archive (docker-archive)
 * or an OCI image layout (`podman save --format oci-archive`, `skopeo copy … oci-archive:`),
 * content-addressed, under the var directory (root's `/var/lib/hako`):
 *
 * ```text
 * images/                   0700, as the extracted tarballs beside it (kept from other local users)
 *   blobs/sha256/HEX        every blob, named by the sha256 of its bytes (verified as it was read)
 *   layers/HEX              a layer's "chain" dir: the whole rootfs up to that layer, HEX its chain ID
 *   meta/HEX.json           an image (HEX: its ID, the sha256 of its config): config, layers, size
 *   refs.json               NAME:TAG → image ID, written atomically under refs.lock
 *   rw/NAME.XXXXXX/         a container's private writable layer (see rw.ts)
 *   tmp/                    imports in progress
 * ```
 *
 * Why chain dirs rather than one overlay lower dir per layer: a layer's hard link may point to a
 * file of a lower layer, which per-layer dirs cannot hold (overlayfs has no cross-layer links),
 * and whiteouts would have to be turned into overlay's own format (char 0:0 nodes,
 * `trusted.overlay.opaque`); a chain dir is a plain directory that a container's overlay uses as
 * its one lower dir, or that is copied where overlay cannot mount. Its cost, disk, is kept small:
 * a chain dir is made by hard-linking its parent's files (`cp -al`), and the layer on top never
 * writes into a linked file — an entry replaces a name (unlink, create), it never opens an old
 * file for writing — so the parent's files stay as they were.
 *
 * Everything in an archive is hostile: paths are validated (no `..`, nothing absolute), every
 * blob's sha256 is checked against the digest that names it (and each layer's uncompressed bytes
 * against the config's `diff_ids`), sizes and counts are capped, and layers are applied by
 * `applyLayer` (tarball.ts): every write under a directory fd, no symlink followed.
 * @module
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  constants as fsConstants,
  createReadStream,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import process from "node:process";
import { execFileSync } from "node:child_process";
import { pipeline } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import { xzDecompress } from "../../ffi/lzma.ts";
import { cstr } from "../../ffi/cstring.ts";
import { checkRetry, errno, libc, retryEintr } from "../../ffi/libc.ts";
import { EWOULDBLOCK, O_CLOEXEC, O_CREAT, O_NOFOLLOW, O_RDWR } from "../../ffi/constants.ts";
import { SetupError, SyscallError } from "../errors.ts";
import { applyLayer } from "../container/tarball.ts";
import { makePrivateParents } from "../container/_paths.ts";
import { imageNameProblem } from "./_names.ts";
import * as at from "../../ffi/at.ts";
export { defaultVarDir } from "./_names.ts";

/** The largest manifest, index or config read (JSON): 4 MiB. */
const MAX_JSON = 4 * 1024 * 1024;
/** The most entries an image archive may hold. */
const MAX_ARCHIVE_ENTRIES = 100_000;
/** The most bytes an image archive may hold: 64 GiB (`HAKO_IMAGE_MAX_BYTES` overrides it). */
const DEFAULT_MAX_ARCHIVE_BYTES = 64 * 1024 ** 3;
/** The most layers an image may have (docker's limit is 125 in practice, overlay's 500). */
const MAX_LAYERS = 128;

/** The subset of an OCI image config hako uses as a container's defaults. */
export interface ImageRunConfig {
  readonly Entrypoint?: readonly string[];
  readonly Cmd?: readonly string[];
  readonly Env?: readonly string[];
  readonly WorkingDir?: string;
  readonly User?: string;
  readonly StopSignal?: string;
  readonly ExposedPorts?: Readonly<Record<string, unknown>>;
  readonly Labels?: Readonly<Record<string, string>>;
}

/** One layer of a stored image. */
export interface ImageLayer {
  /** The blob's digest (as stored: compressed or not). */
  readonly digest: string;
  /** The digest of its uncompressed tar (the config's `diff_ids`). */
  readonly diffId: string;
  /** The chain ID: the rootfs up to this layer (its dir under `layers/`). */
  readonly chainId: string;
  /** The blob's size in bytes. */
  readonly size: number;
}

/** A stored image (`meta/HEX.json`). */
export interface ImageRecord {
  readonly version: 1;
  /** `sha256:HEX` of the config: the image's ID, as docker's. */
  readonly id: string;
  /** The manifest's digest (an OCI manifest; for a docker-archive, one hako wrote). */
  readonly manifestDigest: string;
  /** When it was imported (ISO 8601). */
  readonly imported: string;
  /** The config's `created`, when it says. */
  readonly created?: string;
  readonly architecture?: string;
  readonly os?: string;
  /** The run defaults (`config` of the image config). */
  readonly config: ImageRunConfig;
  readonly layers: readonly ImageLayer[];
  /** The layer blobs' total size in bytes. */
  readonly size: number;
}

/** An image as listed: its record and the names pointing at it. */
export interface ImageInfo extends ImageRecord {
  readonly names: readonly string[];
}

/** What {@link importImage} did. */
export interface ImportResult {
  /** Each image in the archive: its ID and the names given to it. */
  readonly images: ReadonlyArray<{ readonly id: string; readonly names: readonly string[] }>;
}

/** Where the store is. */
export function imagesDir(varDir: string): string {
  return join(varDir, "images");
}

function fail(why: string, cause?: unknown): SetupError {
  return new SetupError("image", why, cause === undefined ? undefined : { cause });
}

const DIGEST = /^sha256:([a-f0-9]{64})$/;

/** The hex of a `sha256:HEX` digest, or a refusal naming the field. */
function hexOf(digest: unknown, field: string): string {
  const m = typeof digest === "string" ? DIGEST.exec(digest) : null;
  if (!m) {
    throw fail(`${field}: ${JSON.stringify(digest)} is not a sha256 digest (sha256: and 64 lowercase hex digits)`);
  }
  return m[1]!;
}

/**
 * An image name as docker writes it (pure): `NAME[:TAG]`, the tag `latest` when none is given;
 * NAME lowercase path components (`localhost/app`, `registry:5000/team/app`). A digest (`@sha256:`)
 * is refused: hako's names are tags.
 * @throws {SetupError} Step `image`, for a name docker would refuse.
 */
export function normalizeName(name: string): string {
  const problem = imageNameProblem(name);
  if (problem) throw fail(problem);
  const slash = name.lastIndexOf("/");
  return name.lastIndexOf(":") > slash ? name : `${name}:latest`;
}

/** A limit from the environment (`HAKO_IMAGE_MAX_BYTES`), in bytes. */
function archiveLimit(): number {
  const raw = process.env.HAKO_IMAGE_MAX_BYTES?.trim();
  const n = raw ? Number(raw) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : DEFAULT_MAX_ARCHIVE_BYTES;
}

/** A private directory (0700), made with its parents as the tarball store's. */
function privateDir(dir: string): void {
  makePrivateParents(join(dir, "x"));
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as { code?: string }).code !== "EEXIST") throw e;
  }
  if (!lstatSync(dir).isDirectory()) throw fail(`${dir} is not a directory`);
}

// ---------------------------------------------------------------------------------------------
// The archive, staged

/** A file of the archive, copied to the staging dir under a counter's name, hashed as it came. */
interface Staged {
  readonly file: string;
  readonly size: number;
  readonly sha256: string;
}

/** The archive's files by their cleaned path, and its links (path → cleaned target path). */
interface Staging {
  readonly dir: string;
  readonly files: Map<string, Staged>;
  readonly links: Map<string, string>;
  /** An OCI layout directory's reader: copies the file at a cleaned path in, or says it is not there. */
  readonly fetch?: (path: string) => Staged | undefined;
  /** Closes what {@link fetch} holds open. */
  readonly close?: () => void;
}

/** A path in the archive made relative (no `.`, no empty part), or a refusal. */
function cleanPath(p: string, what: string): string {
  if (p.startsWith("/")) throw fail(`${what} ${JSON.stringify(p)} is absolute`);
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..") || parts.length === 0) throw fail(`${what} ${JSON.stringify(p)} leaves the archive`);
  return parts.join("/");
}

/**
 * A link's target in the archive, `..` resolved by name against the link's directory (docker's
 * old format links `ID/layer.tar` to `../HEX.tar`); one that leaves the archive is refused.
 */
function linkTarget(base: string, target: string, path: string): string {
  if (target.startsWith("/")) throw fail(`the link ${JSON.stringify(path)} points to an absolute path`);
  const out: string[] = base ? base.split("/") : [];
  for (const p of target.split("/")) {
    if (p === "" || p === ".") continue;
    if (p !== "..") out.push(p);
    else if (out.pop() === undefined) throw fail(`the link ${JSON.stringify(path)} points out of the archive`);
  }
  if (out.length === 0) throw fail(`the link ${JSON.stringify(path)} points to the archive's root`);
  return out.join("/");
}

type Tar = typeof import("tar");
type ReadEntry = InstanceType<Tar["ReadEntry"]>;

function loadTar(): Promise<Tar> {
  // deno-lint-ignore no-import-prefix -- as tarball.ts: a full npm: specifier works from a URL
  return !("Bun" in globalThis) && "Deno" in globalThis ? import("npm:tar@7.5.23") : import("tar");
}

/**
 * Reads the outer archive (a plain tar: `docker save` and `podman save` write one; a gzip'ed one
 * is taken too) into `dir`: each regular file under a counter's name (never the archive's name
 * for it), its sha256 computed on the way; symlinks and hard links kept as names.
 */
async function stage(input: AsyncIterable<Uint8Array>, dir: string): Promise<Staging> {
  const { Parser } = await loadTar();
  const files = new Map<string, Staged>();
  const links = new Map<string, string>();
  const maxBytes = archiveLimit();
  let entries = 0, bytes = 0, failure: unknown;
  const parser = new Parser({ strict: true });
  const done = new Promise<void>((resolve) => {
    parser.on("end", () => resolve());
    parser.on("error", (e: unknown) => {
      failure ??= e;
      resolve();
    });
  });
  const onEntry = (e: ReadEntry) => {
    if (failure !== undefined) return void e.resume();
    try {
      if (++entries > MAX_ARCHIVE_ENTRIES) throw fail(`the archive has more than ${MAX_ARCHIVE_ENTRIES} entries`);
      const path = cleanPath(String(e.path), "archive entry");
      if (e.type === "SymbolicLink" || e.type === "Link") {
        const target = String(e.linkpath ?? "");
        const base = e.type === "Link" ? "" : path.split("/").slice(0, -1).join("/");
        links.set(path, linkTarget(base, target, path));
        return void e.resume();
      }
      if (e.type !== "File" && e.type !== "OldFile" && e.type !== "ContiguousFile") return void e.resume();
      if (files.has(path) || links.has(path)) throw fail(`the archive holds ${JSON.stringify(path)} twice`);
      const file = join(dir, String(files.size));
      const fd = openSync(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      const hash = createHash("sha256");
      let size = 0;
      e.on("data", (c: Buffer) => {
        if (failure !== undefined) return;
        try {
          writeSync(fd, c);
          hash.update(c);
          size += c.length;
        } catch (err) {
          failure ??= err;
        }
      });
      e.on("end", () => {
        closeSync(fd);
        files.set(path, { file, size, sha256: hash.digest("hex") });
      });
    } catch (err) {
      failure ??= err;
      e.resume();
    }
  };
  parser.on("entry", onEntry);
  parser.on("ignoredEntry", (e: ReadEntry) => e.resume());
  let first = true;
  let gunzip: ReturnType<typeof createGunzip> | undefined;
  const write = (b: Buffer) => {
    bytes += b.length;
    if (bytes > maxBytes) failure ??= fail(`the archive is over ${maxBytes} bytes (HAKO_IMAGE_MAX_BYTES)`);
    else parser.write(b);
  };
  for await (const chunk of input) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (first && b[0] === 0x1f && b[1] === 0x8b) {
      gunzip = createGunzip();
      gunzip.on("data", write);
      gunzip.on("error", (e) => (failure ??= e));
    }
    first = false;
    if (gunzip) gunzip.write(b);
    else write(b);
    if (failure !== undefined) break;
  }
  if (gunzip && failure === undefined) {
    await new Promise<void>((resolve) => {
      gunzip!.on("end", resolve);
      gunzip!.on("error", () => resolve());
      gunzip!.end();
    });
  }
  if (failure === undefined) {
    parser.end();
    await done;
  }
  if (failure !== undefined) {
    if (failure instanceof SetupError) throw failure;
    throw fail(`reading the archive: ${(failure as Error)?.message ?? failure}`, failure);
  }
  return { dir, files, links };
}

/** The staged file at `path` (following the archive's own links, a few hops), or a refusal. */
function staged(s: Staging, path: string, what: string): Staged {
  let p = cleanPath(path, what);
  for (let hops = 0; hops < 8; hops++) {
    const f = s.files.get(p) ?? s.fetch?.(p);
    if (f) return f;
    const next = s.links.get(p);
    if (next === undefined) break;
    p = next;
  }
  throw fail(`${what} ${JSON.stringify(path)} is not in the archive`);
}

/**
 * An OCI image layout directory (`skopeo copy … oci:DIR:TAG`, umoci's), staged lazily: a file
 * is copied in (under a counter's name, hashed on the way, as an archive's entries are) only when
 * the index or a manifest names it. The directory is hostile input like an archive: every path is
 * resolved under it by openat2 with no symlink followed, no `..` out and no mount crossed
 * (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV), opened O_PATH first and refused
 * unless a regular file (a FIFO is never opened for reading, so it cannot block the import, nor
 * a device's open run), then read through that fd; the counts and sizes are the archive's caps.
 */
function stageDir(root: string, dir: string): Staging {
  let rootFd: number;
  try {
    if (!lstatSync(root).isDirectory()) throw fail(`${root} is not a directory`);
    rootFd = at.openat(at.AT_FDCWD, root, at.O_PATH | at.O_DIRECTORY | at.O_NOFOLLOW | at.O_CLOEXEC);
  } catch (e) {
    if (e instanceof SetupError) throw e;
    throw fail(`${root}: ${(e as Error).message}`, e);
  }
  const files = new Map<string, Staged>();
  const missing = new Set<string>();
  const maxBytes = archiveLimit();
  let bytes = 0;
  const fetch = (path: string): Staged | undefined => {
    if (missing.has(path)) return undefined;
    if (files.size + missing.size >= MAX_ARCHIVE_ENTRIES) {
      throw fail(`the layout directory names more than ${MAX_ARCHIVE_ENTRIES} files`);
    }
    const shown = JSON.stringify(path);
    let pathFd: number;
    try {
      pathFd = at.openat2(rootFd, path, {
        flags: at.O_PATH | at.O_NOFOLLOW | at.O_CLOEXEC,
        resolve: at.RESOLVE_BENEATH | at.RESOLVE_NO_SYMLINKS | at.RESOLVE_NO_MAGICLINKS | at.RESOLVE_NO_XDEV,
      }, path);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ENOENT") {
        missing.add(path);
        return undefined;
      }
      if (code === "ELOOP") {
        throw fail(`${shown} in the layout directory is or goes through a symlink (none is followed)`, e);
      }
      if (code === "EXDEV") throw fail(`${shown} leaves the layout directory (or crosses a mount point)`, e);
      if (code === "ENOTDIR") throw fail(`${shown}: a part of it is not a directory`, e);
      throw fail(`opening ${shown} in the layout directory: ${(e as Error).message}`, e);
    }
    let fd = -1;
    try {
      const st = at.statx(pathFd, "", at.AT_EMPTY_PATH, path);
      const type = st.mode & at.S_IFMT;
      if (type !== at.S_IFREG) {
        const kind = type === at.S_IFIFO
          ? "a FIFO"
          : type === at.S_IFCHR || type === at.S_IFBLK
          ? "a device"
          : type === at.S_IFDIR
          ? "a directory"
          : type === at.S_IFLNK
          ? "a symlink (none is followed)"
          : "not a regular file";
        throw fail(`${shown} in the layout directory is ${kind}, not a regular file`);
      }
      // Reopened for reading through the O_PATH fd itself: the file checked is the file read.
      fd = at.openat(at.AT_FDCWD, `/proc/self/fd/${pathFd}`, at.O_RDONLY | at.O_CLOEXEC, 0, path);
      const file = join(dir, String(files.size));
      const out = openSync(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      const hash = createHash("sha256");
      let size = 0;
      try {
        const buf = Buffer.allocUnsafe(1 << 20);
        for (;;) {
          const n = checkRetry(() => libc().read(fd, buf, BigInt(buf.length)), "read", [path]);
          if (n === 0) break;
          bytes += n;
          if (bytes > maxBytes) {
            throw fail(`the layout directory's blobs are over ${maxBytes} bytes (HAKO_IMAGE_MAX_BYTES)`);
          }
          writeSync(out, buf, 0, n);
          hash.update(buf.subarray(0, n));
          size += n;
        }
      } finally {
        closeSync(out);
      }
      const f: Staged = { file, size, sha256: hash.digest("hex") };
      files.set(path, f);
      return f;
    } catch (e) {
      if (e instanceof SetupError) throw e;
      throw fail(`reading ${shown} in the layout directory: ${(e as Error).message}`, e);
    } finally {
      if (fd !== -1) at.close(fd);
      at.close(pathFd);
    }
  };
  return { dir, files, links: new Map(), fetch, close: () => at.close(rootFd) };
}

/** Whether `path` is in the archive or layout directory (a file). */
function hasFile(s: Staging, path: string): boolean {
  return s.files.has(path) || s.fetch?.(path) !== undefined;
}

/** A staged JSON file, capped in size, parsed, an object. */
function readJson(f: Staged, what: string): Record<string, unknown> | unknown[] {
  if (f.size > MAX_JSON) throw fail(`${what} is over ${MAX_JSON} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(f.file, "utf8"));
  } catch (e) {
    throw fail(`${what} is not JSON: ${(e as Error).message}`, e);
  }
  if (typeof v !== "object" || v === null) throw fail(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** A blob of an OCI layout, checked against its descriptor (digest, size). */
function ociBlob(s: Staging, desc: unknown, what: string): Staged {
  const d = desc as { digest?: unknown; size?: unknown } | null;
  if (typeof d !== "object" || d === null) throw fail(`${what}: not a descriptor`);
  const hex = hexOf(d.digest, `${what}.digest`);
  const f = staged(s, `blobs/sha256/${hex}`, `${what}: the blob`);
  if (f.sha256 !== hex) throw fail(`${what}: the blob sha256:${hex} holds bytes whose sha256 is ${f.sha256}`);
  if (typeof d.size === "number" && d.size !== f.size) {
    throw fail(`${what}: the blob sha256:${hex} is ${f.size} bytes, its descriptor says ${d.size}`);
  }
  return f;
}

/** One image found in the archive, checked, before it is stored. */
interface Found {
  readonly config: Staged;
  readonly manifest: { readonly bytes: Buffer; readonly sha256: string };
  readonly layers: readonly Staged[];
  readonly names: readonly string[];
  /** An OCI index's `org.opencontainers.image.ref.name` for it (skopeo's `oci:DIR:REF`), when given. */
  readonly refName?: string;
}

const REF_NAME = "org.opencontainers.image.ref.name";

/** Node's `process.arch` as the OCI image spec (Go's GOARCH) names it. */
const GO_ARCH: Readonly<Record<string, string>> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
};

/** The images of an OCI layout (`oci-layout`, `index.json` → manifests). */
function readOci(s: Staging): Found[] {
  const layout = readJson(staged(s, "oci-layout", "oci-layout"), "oci-layout") as Record<string, unknown>;
  if (typeof layout.imageLayoutVersion !== "string") throw fail("oci-layout: no imageLayoutVersion");
  const index = readJson(staged(s, "index.json", "index.json"), "index.json") as Record<string, unknown>;
  const out: Found[] = [];
  const visit = (descs: unknown, where: string, depth: number) => {
    if (!Array.isArray(descs)) throw fail(`${where}.manifests is not a list`);
    descs.forEach((d, i) => {
      const at = `${where}.manifests[${i}]`;
      // A multi-platform index: this machine's image only (an attestation's "unknown" platform is none).
      const platform = (d as { platform?: { os?: unknown; architecture?: unknown } })?.platform;
      if (platform && (platform.os !== "linux" || platform.architecture !== GO_ARCH[process.arch])) return;
      const mt = (d as { mediaType?: unknown })?.mediaType;
      const f = ociBlob(s, d, at);
      const m = readJson(f, at) as Record<string, unknown>;
      const kind = typeof mt === "string" ? mt : m.mediaType;
      if (kind === "application/vnd.oci.image.index.v1+json" || Array.isArray(m.manifests)) {
        if (depth > 2) throw fail(`${at}: indexes nested too deep`);
        visit(m.manifests, at, depth + 1);
        return;
      }
      const ann = (d as { annotations?: Record<string, unknown> }).annotations ?? {};
      const ref = [ann["io.containerd.image.name"], ann[REF_NAME]].find((x) => typeof x === "string") as
        | string
        | undefined;
      const names = ref !== undefined && /[:/]/.test(ref) ? [normalizeName(ref)] : [];
      const refName = typeof ann[REF_NAME] === "string" ? ann[REF_NAME] as string : undefined;
      out.push({ ...checked(s, m, f, at, names), ...(refName !== undefined ? { refName } : {}) });
    });
  };
  visit(index.manifests, "index.json", 0);
  return out;
}

/** A manifest's config and layers, found and verified. */
function checked(s: Staging, m: Record<string, unknown>, f: Staged, at: string, names: string[]): Found {
  const config = ociBlob(s, m.config, `${at}.config`);
  if (!Array.isArray(m.layers)) throw fail(`${at}.layers is not a list`);
  if (m.layers.length > MAX_LAYERS) throw fail(`${at}: more than ${MAX_LAYERS} layers`);
  const layers = m.layers.map((l, i) => ociBlob(s, l, `${at}.layers[${i}]`));
  return { config, layers, names, manifest: { bytes: readFileSync(f.file), sha256: f.sha256 } };
}

/** The images of a docker-archive (`manifest.json`: Config, RepoTags, Layers). */
function readDocker(s: Staging): Found[] {
  const list = readJson(staged(s, "manifest.json", "manifest.json"), "manifest.json");
  if (!Array.isArray(list)) throw fail("manifest.json is not a list");
  return list.map((e, i) => {
    const at = `manifest.json[${i}]`;
    const entry = e as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
    if (typeof entry.Config !== "string") throw fail(`${at}.Config is not a path`);
    const config = staged(s, entry.Config, `${at}.Config`);
    // The config's name, where it is a digest (HEX.json, blobs/sha256/HEX), must be its sha256.
    const claimed = /(?:^|\/)([a-f0-9]{64})(?:\.json)?$/.exec(entry.Config)?.[1];
    if (claimed && claimed !== config.sha256) {
      throw fail(`${at}.Config ${entry.Config} holds bytes whose sha256 is ${config.sha256}`);
    }
    if (!Array.isArray(entry.Layers)) throw fail(`${at}.Layers is not a list`);
    if (entry.Layers.length > MAX_LAYERS) throw fail(`${at}: more than ${MAX_LAYERS} layers`);
    const layers = entry.Layers.map((l, j) => {
      if (typeof l !== "string") throw fail(`${at}.Layers[${j}] is not a path`);
      const f = staged(s, l, `${at}.Layers[${j}]`);
      const hex = /(?:^|\/)blobs\/sha256\/([a-f0-9]{64})$/.exec(l)?.[1];
      if (hex && hex !== f.sha256) throw fail(`${at}.Layers[${j}] ${l} holds bytes whose sha256 is ${f.sha256}`);
      return f;
    });
    const tags = entry.RepoTags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
      throw fail(`${at}.RepoTags is not a list of names`);
    }
    // An OCI manifest for it, as podman writes when it loads one (layers as they are: tar or compressed).
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: `sha256:${config.sha256}`,
        size: config.size,
      },
      layers: layers.map((l) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: `sha256:${l.sha256}`,
        size: l.size,
      })),
    }));
    return {
      config,
      layers,
      names: (tags as string[]).map(normalizeName),
      manifest: { bytes: manifest, sha256: createHash("sha256").update(manifest).digest("hex") },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Storing

/** What an import made, removed again when it fails (what was there before it is kept). */
type Made = string[];

/** Moves a staged file into `blobs/sha256/HEX` (kept when there: same bytes, same name). */
function storeBlob(store: string, f: Staged, made: Made): void {
  const target = join(store, "blobs", "sha256", f.sha256);
  if (existsSync(target)) return;
  chmodSync(f.file, 0o600);
  renameSync(f.file, target);
  made.push(target);
}

function writeBlob(store: string, bytes: Buffer, sha256: string, made: Made): void {
  const target = join(store, "blobs", "sha256", sha256);
  if (existsSync(target)) return;
  writeAtomic(target, bytes);
  made.push(target);
}

/** Writes a file atomically: a temp file (O_EXCL, 0600), fsync'ed, renamed over. */
function writeAtomic(file: string, data: string | Buffer): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(16).slice(2, 8)}.tmp`;
  const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW, 0o600);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** How a blob is compressed, from its first bytes. */
function compressionOf(file: string): "gzip" | "zstd" | "xz" | "none" {
  const fd = openSync(file, "r");
  try {
    const head = new Uint8Array(6);
    const n = readSync(fd, head, 0, 6, 0);
    if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
    if (n >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
    if (n >= 6 && [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00].every((b, i) => head[i] === b)) return "xz";
    return "none";
  } finally {
    closeSync(fd);
  }
}

/** A blob's bytes, decompressed (gzip and zstd by node:zlib, xz by liblzma), hashed on the way. */
async function* inflated(file: string, hash: ReturnType<typeof createHash>): AsyncGenerator<Uint8Array> {
  const rs = createReadStream(file);
  const kind = compressionOf(file);
  const src: AsyncIterable<Uint8Array> & { destroy?: () => void } = kind === "gzip"
    ? pipeline(rs, createGunzip(), () => {})
    : kind === "zstd"
    ? pipeline(rs, createZstdDecompress(), () => {})
    : kind === "xz"
    ? xzDecompress(rs)
    : rs;
  try {
    for await (const chunk of src) {
      hash.update(chunk);
      yield chunk;
    }
  } finally {
    rs.destroy();
    src.destroy?.();
  }
}

/** The chain IDs of a list of diff IDs (the OCI image spec's definition). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash("sha256").update(`${prev} ${d}`).digest("hex")}`);
  }
  return out;
}

/**
 * Makes `layers/CHAIN` once: its parent's tree, hard-linked (`cp -al`), with the layer applied
 * on top, in a temp sibling renamed into place only once the layer's uncompressed sha256 matched
 * its diff ID. Another import making it meanwhile wins; this one's copy is dropped.
 */
async function extractLayer(
  store: string,
  blob: string,
  diffId: string,
  chain: string,
  parent: string | undefined,
  made: Made,
) {
  const layers = join(store, "layers");
  const dir = join(layers, hexOf(chain, "chain"));
  if (existsSync(dir)) return;
  const tmp = mkdtempSync(join(layers, `.${hexOf(chain, "chain")}.hako-tmp-`));
  try {
    chmodSync(tmp, 0o755);
    if (parent !== undefined) {
      // -a keeps owners, modes, times, xattrs, links and devices; -l links files, copies dirs.
      execFileSync("cp", ["-al", "--", `${join(layers, hexOf(parent, "chain"))}/.`, `${tmp}/`], { stdio: "pipe" });
    }
    const hash = createHash("sha256");
    await applyLayer(inflated(blob, hash), tmp, { source: `layer ${diffId}` });
    const got = `sha256:${hash.digest("hex")}`;
    if (got !== diffId) throw fail(`layer ${diffId}: its uncompressed bytes have the digest ${got}`);
    try {
      renameSync(tmp, dir);
      made.push(dir);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof SetupError || e instanceof SyscallError) throw e;
    const err = e as { message?: string; stderr?: Buffer };
    throw fail(`layer ${diffId}: ${err.stderr?.toString().trim() || err.message || e}`, e);
  }
}

/** Checks an image config and takes what a record keeps. */
function parseConfig(f: Staged, layerCount: number) {
  const c = readJson(f, "the image config") as Record<string, unknown>;
  const rootfs = c.rootfs as { type?: unknown; diff_ids?: unknown } | undefined;
  if (!rootfs || rootfs.type !== "layers" || !Array.isArray(rootfs.diff_ids)) {
    throw fail("the image config has no rootfs.diff_ids");
  }
  const diffIds = rootfs.diff_ids.map((d, i) => (hexOf(d, `config.rootfs.diff_ids[${i}]`), d as string));
  if (diffIds.length !== layerCount) {
    throw fail(`the image config lists ${diffIds.length} layers (rootfs.diff_ids), the manifest ${layerCount}`);
  }
  const raw = (c.config ?? {}) as Record<string, unknown>;
  const strs = (v: unknown, field: string): string[] | undefined => {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      throw fail(`config.${field} is not a list of strings`);
    }
    return v as string[];
  };
  const str = (v: unknown, field: string): string | undefined => {
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") throw fail(`config.${field} is not a string`);
    return v;
  };
  const obj = (v: unknown) => (typeof v === "object" && v !== null && !Array.isArray(v) ? v : undefined);
  const config: ImageRunConfig = {
    ...(strs(raw.Entrypoint, "Entrypoint") ? { Entrypoint: strs(raw.Entrypoint, "Entrypoint")! } : {}),
    ...(strs(raw.Cmd, "Cmd") ? { Cmd: strs(raw.Cmd, "Cmd")! } : {}),
    ...(strs(raw.Env, "Env") ? { Env: strs(raw.Env, "Env")! } : {}),
    ...(str(raw.WorkingDir, "WorkingDir") ? { WorkingDir: str(raw.WorkingDir, "WorkingDir")! } : {}),
    ...(str(raw.User, "User") ? { User: str(raw.User, "User")! } : {}),
    ...(str(raw.StopSignal, "StopSignal") ? { StopSignal: str(raw.StopSignal, "StopSignal")! } : {}),
    ...(obj(raw.ExposedPorts) ? { ExposedPorts: obj(raw.ExposedPorts) as Record<string, unknown> } : {}),
    ...(obj(raw.Labels) ? { Labels: obj(raw.Labels) as Record<string, string> } : {}),
  };
  // `created` is printed by 'hako images' as it is: a time as docker's JSON decoding takes one
  // (RFC 3339), never a terminal escape sequence of the image's
  if (
    c.created !== undefined && c.created !== null &&
    !(typeof c.created === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(c.created))
  ) {
    throw fail(`the image config's created is not an RFC 3339 time: ${JSON.stringify(c.created).slice(0, 80)}`);
  }
  return {
    diffIds,
    config,
    ...(typeof c.created === "string" ? { created: c.created } : {}),
    ...(typeof c.architecture === "string" ? { architecture: c.architecture } : {}),
    ...(typeof c.os === "string" ? { os: c.os } : {}),
  };
}

/** Options for {@link importImage}. */
export interface ImportOptions {
  /** The var directory (root's `/var/lib/hako`). */
  readonly varDir: string;
  /** A name for the image (`NAME[:TAG]`): given to the archive's only image, beside its own names. */
  readonly name?: string;
  /**
   * Of an OCI layout's images, only the one whose `org.opencontainers.image.ref.name` is this
   * (skopeo's `oci:DIR:REF`, umoci's tag); its other images are not imported.
   */
  readonly ref?: string;
}

/**
 * Imports every image of a docker-archive or OCI-layout archive, or of an OCI image layout
 * directory (`skopeo copy … oci:DIR:TAG`, umoci's): verified, stored, its layers extracted once,
 * its names pointed at it.
 * @param input The archive: a file's path, or its bytes (stdin for `hako load`); or a layout
 *   directory's path.
 * @param options The store's var directory, a name to give.
 * @returns Each image's ID and names.
 * @throws {SetupError} Step `image`: a malformed or refused archive, a digest that does not match.
 * @throws {SyscallError} A failed file system call while a layer is applied.
 */
export async function importImage(
  input: string | AsyncIterable<Uint8Array>,
  options: ImportOptions,
): Promise<ImportResult> {
  const extra = options.name !== undefined ? normalizeName(options.name) : undefined;
  const store = imagesDir(options.varDir);
  for (
    const d of [
      store,
      join(store, "blobs"),
      join(store, "blobs", "sha256"),
      join(store, "layers"),
      join(store, "meta"),
      join(store, "tmp"),
    ]
  ) {
    privateDir(d);
  }
  // Shared: imports run side by side; a removal prunes only when none runs (see pruneUnused).
  const lock = storeLock(store, LOCK_SH);
  const dir = mkdtempSync(join(store, "tmp", "import-"));
  const made: Made = [];
  let done = false;
  let s: Staging | undefined;
  try {
    let source: AsyncIterable<Uint8Array> | undefined;
    if (typeof input === "string") {
      try {
        const st = lstatSync(input);
        if (st.isDirectory()) s = stageDir(input, dir);
        else if (!st.isFile()) throw fail(`${input} is neither a regular file nor a directory`);
      } catch (e) {
        if (e instanceof SetupError) throw e;
        throw fail(`${input}: ${(e as Error).message}`, e);
      }
      if (!s) source = createReadStream(input);
    } else source = input;
    if (!s) s = await stage(source!, dir);
    const isOci = s.fetch
      ? (() => {
        if (!hasFile(s, "oci-layout") || !hasFile(s, "index.json")) {
          throw fail(`${input} is not an OCI image layout directory (no oci-layout, or no index.json)`);
        }
        return true;
      })()
      : s.files.has("index.json") && s.files.has("oci-layout");
    let found = isOci ? readOci(s) : s.files.has("manifest.json") ? readDocker(s) : (() => {
      throw fail("neither a docker-archive (manifest.json) nor an OCI image layout (oci-layout, index.json)");
    })();
    if (options.ref !== undefined) {
      const all = found;
      found = found.filter((f) => f.refName === options.ref);
      if (found.length === 0) {
        const refs = all.map((f) => f.refName).filter((r) => r !== undefined);
        throw fail(
          `no image in it has the ref name ${JSON.stringify(options.ref)} (${
            refs.length ? `it has ${refs.map((r) => JSON.stringify(r)).join(", ")}` : "none has one"
          })`,
        );
      }
    }
    if (found.length === 0) throw fail("the archive holds no image");
    if (extra !== undefined && found.length > 1) {
      throw fail(
        `the archive holds ${found.length} images: a name can be given to one only (choose one by its ref name)`,
      );
    }
    const out: Array<{ id: string; names: string[] }> = [];
    for (const img of found) {
      const parsed = parseConfig(img.config, img.layers.length);
      const chains = chainIds(parsed.diffIds);
      for (const l of img.layers) storeBlob(store, l, made);
      storeBlob(store, img.config, made);
      writeBlob(store, img.manifest.bytes, img.manifest.sha256, made);
      for (let i = 0; i < img.layers.length; i++) {
        await extractLayer(
          store,
          join(store, "blobs", "sha256", img.layers[i]!.sha256),
          parsed.diffIds[i]!,
          chains[i]!,
          chains[i - 1],
          made,
        );
      }
      const id = `sha256:${img.config.sha256}`;
      const record: ImageRecord = {
        version: 1,
        id,
        manifestDigest: `sha256:${img.manifest.sha256}`,
        imported: new Date().toISOString(),
        ...(parsed.created ? { created: parsed.created } : {}),
        ...(parsed.architecture ? { architecture: parsed.architecture } : {}),
        ...(parsed.os ? { os: parsed.os } : {}),
        config: parsed.config,
        layers: img.layers.map((l, i) => ({
          digest: `sha256:${l.sha256}`,
          diffId: parsed.diffIds[i]!,
          chainId: chains[i]!,
          size: l.size,
        })),
        size: img.layers.reduce((n, l) => n + l.size, 0),
      };
      writeAtomic(join(store, "meta", `${img.config.sha256}.json`), JSON.stringify(record, null, 2) + "\n");
      const names = [...img.names, ...(extra !== undefined ? [extra] : [])];
      withRefs(store, (refs) => {
        for (const n of names) refs[n] = id;
      });
      out.push({ id, names });
      made.length = 0; // (this image is recorded: what it made is kept)
    }
    done = true;
    return { images: out };
  } finally {
    s?.close?.();
    rmSync(dir, { recursive: true, force: true });
    if (!done) { for (const m of made.reverse()) rmSync(m, { recursive: true, force: true }); }
    lock.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Names, records, removal

const LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;

/**
 * An flock on `store.lock`: shared by each import while it runs (its layers and blobs are not
 * recorded yet), exclusive for pruning. Returns undefined for a non-blocking lock that is busy.
 */
function storeLock(store: string, how: number): { release(): void };
function storeLock(store: string, how: number, nonBlocking: true): { release(): void } | undefined;
function storeLock(store: string, how: number, nonBlocking = false): { release(): void } | undefined {
  const { open, flock, close } = libc();
  const path = join(store, "store.lock");
  const fd = open(cstr(path), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600);
  if (fd === -1) throw new SyscallError("open", errno(), [path], "lock the image store");
  if (retryEintr(() => flock(fd, how | (nonBlocking ? LOCK_NB : 0))) !== 0) {
    const e = errno();
    close(fd);
    if (nonBlocking && e === EWOULDBLOCK) return undefined;
    throw new SyscallError("flock", e, [path], "lock the image store");
  }
  return {
    release: () => {
      flock(fd, LOCK_UN);
      close(fd);
    },
  };
}

/** Runs `fn` on the refs (name → ID) under `refs.lock`, writing them back atomically when changed. */
function withRefs<T>(store: string, fn: (refs: Record<string, string>) => T): T {
  privateDir(store);
  const { open, flock, close } = libc();
  const lock = join(store, "refs.lock");
  const fd = open(cstr(lock), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600);
  if (fd === -1) throw new SyscallError("open", errno(), [lock], "lock the image names");
  try {
    if (retryEintr(() => flock(fd, LOCK_EX)) !== 0) {
      throw new SyscallError("flock", errno(), [lock], "lock the image names");
    }
    const refs = readRefs(store);
    const before = JSON.stringify(refs);
    const out = fn(refs);
    if (JSON.stringify(refs) !== before) writeAtomic(join(store, "refs.json"), JSON.stringify(refs, null, 2) + "\n");
    return out;
  } finally {
    flock(fd, LOCK_UN);
    close(fd);
  }
}

function readRefs(store: string): Record<string, string> {
  try {
    const v = JSON.parse(readFileSync(join(store, "refs.json"), "utf8"));
    const out: Record<string, string> = Object.create(null);
    if (typeof v === "object" && v !== null) {
      for (const [k, id] of Object.entries(v)) if (typeof id === "string" && DIGEST.test(id)) out[k] = id;
    }
    return out;
  } catch {
    return Object.create(null);
  }
}

function readRecord(store: string, id: string): ImageRecord | undefined {
  const m = DIGEST.exec(id);
  if (!m) return undefined;
  try {
    const r = JSON.parse(readFileSync(join(store, "meta", `${m[1]}.json`), "utf8")) as ImageRecord;
    return r?.version === 1 && r.id === id ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every stored image, with its names.
 * @param varDir The var directory.
 */
export function listImages(varDir: string): ImageInfo[] {
  const store = imagesDir(varDir);
  const refs = readRefs(store);
  const out: ImageInfo[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(join(store, "meta"));
  } catch { /* no store yet */ }
  for (const f of files.sort()) {
    const m = /^([a-f0-9]{64})\.json$/.exec(f);
    const r = m ? readRecord(store, `sha256:${m[1]}`) : undefined;
    if (!r) continue;
    out.push({ ...r, names: Object.keys(refs).filter((n) => refs[n] === r.id).sort() });
  }
  return out;
}

/**
 * The image a reference names: `NAME[:TAG]` (`latest` by default), a full ID (`sha256:HEX`) or
 * an unambiguous ID prefix of at least 4 hex digits (as docker's).
 * @returns The image, or undefined when none matches.
 */
export function findImage(varDir: string, ref: string): ImageInfo | undefined {
  const all = listImages(varDir);
  const hex = ref.replace(/^sha256:/, "");
  if (/^[a-f0-9]{4,64}$/.test(hex)) {
    const hits = all.filter((i) => i.id.slice(7).startsWith(hex));
    if (hits.length === 1) return hits[0];
  }
  let name: string;
  try {
    name = normalizeName(ref);
  } catch {
    return undefined;
  }
  // (podman names local images localhost/NAME: "NAME" finds "localhost/NAME" too)
  return all.find((i) => i.names.includes(name)) ?? all.find((i) => i.names.includes(`localhost/${name}`));
}

/** The chain dir of an image's top layer: the image's rootfs, read-only by convention. */
export function imageRootfs(varDir: string, image: ImageRecord): string {
  const top = image.layers[image.layers.length - 1];
  if (!top) throw fail(`image ${image.id} has no layers`);
  return join(imagesDir(varDir), "layers", hexOf(top.chainId, "chainId"));
}

/** What {@link removeImage} did. */
export interface RemoveResult {
  readonly untagged: readonly string[];
  /** The image's ID when its record went (no name left). */
  readonly deleted?: string;
}

/**
 * `hako rmi`: removes a name, and the image once no name is left (with `force`, every name of it
 * and the image). Then layers and blobs no image uses any more are removed.
 * @param inUse The containers using the image (refused unless `force`).
 * @throws {SetupError} Step `image`: no such image, or it is in use.
 */
export function removeImage(
  varDir: string,
  ref: string,
  options: { force?: boolean; inUse?: (id: string) => string[] } = {},
): RemoveResult {
  const store = imagesDir(varDir);
  const img = findImage(varDir, ref);
  if (!img) throw fail(`no image ${JSON.stringify(ref)}`);
  const byName = (() => {
    try {
      const n = normalizeName(ref);
      return img.names.includes(n) ? n : img.names.includes(`localhost/${n}`) ? `localhost/${n}` : undefined;
    } catch {
      return undefined;
    }
  })();
  const users = options.inUse?.(img.id) ?? [];
  const untagged: string[] = [];
  const result = withRefs(store, (refs) => {
    const names = Object.keys(refs).filter((n) => refs[n] === img.id);
    const toRemove = byName !== undefined && !options.force ? [byName] : names;
    if (!options.force && byName === undefined && names.length > 1) {
      throw fail(`image ${img.id.slice(7, 19)} has several names (${names.join(", ")}): remove them by name, or -f`);
    }
    const last = names.every((n) => toRemove.includes(n));
    if (last && users.length && !options.force) {
      throw fail(`image ${ref} is in use by ${users.join(", ")} (remove them first, or -f)`);
    }
    for (const n of toRemove) {
      delete refs[n];
      untagged.push(n);
    }
    return last;
  });
  if (!result) return { untagged };
  rmSync(join(store, "meta", `${img.id.slice(7)}.json`), { force: true });
  pruneUnused(store, options.force ? [] : users);
  return { untagged, deleted: img.id };
}

/**
 * Removes the layers and blobs no stored image uses — unless an import is running (its own are
 * not recorded yet): then they are left for the next removal.
 */
function pruneUnused(store: string, _keep: readonly string[]): void {
  const lock = storeLock(store, LOCK_EX, true);
  if (!lock) return;
  try {
    prune(store);
  } finally {
    lock.release();
  }
}

function prune(store: string): void {
  const images = listImages(join(store, ".."));
  const chains = new Set<string>(), blobs = new Set<string>();
  for (const i of images) {
    for (const l of i.layers) {
      chains.add(l.chainId.slice(7));
      blobs.add(l.digest.slice(7));
    }
    blobs.add(i.id.slice(7));
    blobs.add(i.manifestDigest.slice(7));
  }
  for (const d of readdirOrEmpty(join(store, "layers"))) {
    if (/^[a-f0-9]{64}$/.test(d) && !chains.has(d)) rmSync(join(store, "layers", d), { recursive: true, force: true });
  }
  for (const b of readdirOrEmpty(join(store, "blobs", "sha256"))) {
    if (/^[a-f0-9]{64}$/.test(b) && !blobs.has(b)) rmSync(join(store, "blobs", "sha256", b), { force: true });
  }
}

function readdirOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * The uid (and gid) of `user` (`NAME`, `NAME:GROUP`, `UID:GROUP`…) in the image's /etc/passwd and
 * /etc/group, read inside the image's tree (no symlink leads out of it).
 */
export function imageUser(rootfs: string, user: string): { uid: number; gid?: number } | undefined {
  const read = (path: string): string => {
    try {
      const root = at.openat(at.AT_FDCWD, rootfs, at.O_PATH | at.O_DIRECTORY | at.O_CLOEXEC);
      try {
        // The image chose what is there: a FIFO (an open that never returns), a device node (an
        // endless /dev/zero, a host disk, a /dev/watchdog armed by its open). So it is found with
        // O_PATH, which opens nothing, only a regular file is reopened for reading (through
        // /proc/self/fd, as runc reopens a checked path), and at most 4 MiB of it is read.
        const path_ = at.openat2(root, path, {
          flags: at.O_PATH | at.O_CLOEXEC,
          resolve: at.RESOLVE_IN_ROOT | at.RESOLVE_NO_MAGICLINKS,
        });
        let fd: number;
        try {
          const mode = at.statx(path_, "", at.AT_EMPTY_PATH, path).mode;
          if ((mode & at.S_IFMT) !== at.S_IFREG) return "";
          fd = openSync(`/proc/self/fd/${path_}`, "r");
        } finally {
          at.close(path_);
        }
        try {
          const buf = Buffer.alloc(4 << 20);
          let n = 0;
          for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0;) n += r;
          return buf.subarray(0, n).toString("utf8");
        } finally {
          closeSync(fd);
        }
      } finally {
        at.close(root);
      }
    } catch {
      return "";
    }
  };
  const [name, group] = user.split(":") as [string, string | undefined];
  const field = (text: string, key: string, col: number) =>
    text.split("\n").map((l) => l.split(":")).find((f) => f[0] === key)?.[col];
  const passwd = read("etc/passwd");
  const uid = /^\d+$/.test(name) ? Number(name) : Number(field(passwd, name, 2) ?? NaN);
  if (!Number.isSafeInteger(uid)) return undefined;
  let gid = /^\d+$/.test(name) ? undefined : Number(field(passwd, name, 3) ?? NaN);
  if (group !== undefined) {
    gid = /^\d+$/.test(group) ? Number(group) : Number(field(read("etc/group"), group, 2) ?? NaN);
  }
  if (gid !== undefined && !Number.isSafeInteger(gid)) return undefined;
  return { uid, ...(gid !== undefined ? { gid } : {}) };
}
