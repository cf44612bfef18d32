/**
 * TypeScript → JavaScript for the data-URL loader: types are stripped with `amaro` (the swc build
 * that Node uses for its own type stripping), then the imports are found with `es-module-lexer`,
 * and the result is cached on disk by content hash, so a script seen before loads neither.
 *
 * A cache entry is code that runs, so the cache is used only when nobody but its user could have
 * written it (root running a script must not run what another user planted in `$HOME/.cache`):
 * the cache directory, its `loader/` and each entry's directory must be the caller's and not
 * writable by group or others, the way to it must be root's or the caller's (see
 * `_trusted_path.ts`), and each entry file the caller's and not writable by others. Otherwise the
 * cache is neither read nor written for the rest of the process, and one warning says why. Hako
 * makes its directories 0700 and its entries 0600 whatever the umask.
 *
 * Two modes:
 * - `"strip"` (the default) replaces type syntax with spaces: every line and column of the output
 *   is the source's, so stack traces point at the script with no source map.
 * - `"transform"` for what stripping cannot express (enums, namespaces, parameter properties) and
 *   for imports of names that exist only as types: swc rewrites the module, elides type-only
 *   imports as `tsc` does, and an inline source map carries the positions back.
 *
 * @module
 */
import { host } from "./_host.ts";
import { base64 } from "./_base64.ts";
import { octalMode, type TrustFs, untrustedWayTo, writableByOthers } from "../_trusted_path.ts";

/** Bump when the cached output format or the rewriting rules change. */
const CACHE_FORMAT = 2;
const AMARO_VERSION = "1.2.1";

/** How a module was turned into JavaScript. */
export type TranspileMode = "strip" | "transform";

/** One import (or `import.meta`) found in the output, as es-module-lexer reports it. */
export interface ImportRecord {
  /** The specifier, or undefined for a dynamic import of a computed value and for import.meta. */
  readonly n: string | undefined;
  /** Start of the specifier (static: inside the quotes; dynamic: at the opening quote). */
  readonly s: number;
  /** End of the specifier. */
  readonly e: number;
  /** Start of the statement. */
  readonly ss: number;
  /** End of the statement. */
  readonly se: number;
  /** -1: static import or re-export; -2: import.meta; ≥ 0: dynamic import. */
  readonly d: number;
}

/** A module as JavaScript, with where its imports are. */
export interface Transpiled {
  /** How it was made (a `"strip"` request may come back `"transform"`). */
  readonly mode: TranspileMode;
  /** The JavaScript. */
  readonly code: string;
  /** Its imports and `import.meta` uses, in source order. */
  readonly imports: readonly ImportRecord[];
  /** The names the module exports (values only: type exports are gone). */
  readonly exports: readonly string[];
  /** In `"transform"` mode, the source map (also inlined at the end of `code`). */
  readonly map?: string;
}

/** Source that cannot be loaded: a syntax error, or syntax the loader does not support. */
export class TranspileError extends SyntaxError {
  /** The file, as shown to the user. */
  readonly file: string;
  /** 1-based line, when known. */
  readonly line: number | undefined;
  /** 1-based column, when known. */
  readonly column: number | undefined;
  /**
   * Makes the error; the message starts with `file:line:column`.
   * @param file The file, as shown to the user.
   * @param message What is wrong.
   * @param line 1-based line.
   * @param column 1-based column.
   */
  constructor(file: string, message: string, line?: number, column?: number) {
    super(`${file}${line ? `:${line}:${column ?? 1}` : ""}: ${message}`);
    this.name = "TranspileError";
    this.file = file;
    this.line = line;
    this.column = column;
  }
}

interface AmaroError {
  code?: string;
  message?: string;
  snippet?: string;
  startLine?: number;
  startColumn?: number;
}
interface Amaro {
  transformSync(source: string, options: Record<string, unknown>): { code: string; map?: string };
}
interface Lexer {
  init(): Promise<void>;
  parse(source: string, name?: string): readonly [ReadonlyArray<ImportRecord>, ReadonlyArray<{ n: string }>];
}

let amaro: Promise<Amaro> | undefined;
let lexer: Promise<Lexer> | undefined;

// Literal specifiers, so `deno compile` and `bun build --compile` embed both packages; loaded only
// on a cache miss. Bare (resolved through package.json) rather than `npm:…@version`: Bun does
// not understand `npm:` specifiers, and nothing that mod.ts imports reaches this file.
function loadAmaro(): Promise<Amaro> {
  return amaro ??= import("amaro") as Promise<Amaro>;
}
function loadLexer(): Promise<Lexer> {
  return lexer ??= import("es-module-lexer/minimal").then(async (m: Lexer) => {
    await m.init();
    return m;
  });
}

const TRANSFORM_OPTIONS = {
  mode: "transform",
  sourceMap: true,
  deprecatedTsModuleAsError: false,
  // What tsc and Deno do: drop imports used only as types; emit class fields natively.
  transform: {
    verbatimModuleSyntax: false,
    nativeClassProperties: true,
    noEmptyExport: true,
    importNotUsedAsValues: "remove",
  },
} as const;

/** The directory of the loader cache: `$HAKO_CACHE_DIR`, else `$XDG_CACHE_HOME/hako`, else `~/.cache/hako`. */
export function cacheDir(env: (name: string) => string | undefined = host().env): string | undefined {
  const explicit = env("HAKO_CACHE_DIR");
  if (explicit !== undefined) return explicit || undefined; // empty: no cache
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/hako`;
  const home = env("HOME");
  return home ? `${home}/.cache/hako` : undefined;
}

/** The host's file system, as the trust checks see it. */
function hostTrustFs(): TrustFs {
  const h = host();
  return { lstat: (p) => h.lstat(p), realPath: (p) => h.realPath(p) };
}

/**
 * Why a directory or file of the cache cannot be trusted by `uid` (pure over `fs`), or undefined:
 * it must be the caller's and not writable by group or others; a missing one is fine (hako makes it).
 */
function ownProblem(path: string, uid: number, fs: TrustFs, kind: "dir" | "file"): string | undefined {
  const st = fs.lstat(path);
  if (!st) return undefined;
  if (st.kind !== kind) {
    return `${path} is ${st.kind === "symlink" ? "a symlink" : `not a ${kind === "dir" ? "directory" : "file"}`}`;
  }
  if (st.uid !== uid) return `${path} is owned by uid ${st.uid}, not by uid ${uid} who runs hako`;
  if (writableByOthers(st.mode)) return `${path} is writable by others than its owner (mode ${octalMode(st.mode)})`;
  return undefined;
}

/**
 * Why the loader cache in `dir` cannot be trusted by `uid`, or undefined when it can: the way to
 * it is root's or the caller's (no directory on it writable by others unless sticky, no symlink of
 * anyone else's), and the directory itself (where a symlink leads) and its `loader/` are the
 * caller's and not writable by group or others. Entries are checked as they are read.
 * @param dir The cache directory (absolute).
 * @param uid The user running hako.
 * @param fs How to look (default: the host's `lstat`).
 */
export function cacheProblem(dir: string, uid: number, fs: TrustFs = hostTrustFs()): string | undefined {
  const way = untrustedWayTo(dir, uid, fs);
  if (way) return way;
  let real = dir;
  if (fs.lstat(dir)?.kind === "symlink") real = fs.realPath(dir);
  return ownProblem(real, uid, fs, "dir") ?? ownProblem(`${real}/loader`, uid, fs, "dir");
}

/** What this process found out about cache directories: undefined (trusted) or the problem. */
const cacheVerdicts = new Map<string, string | undefined>();
let cacheRefused = false;

/** Gives up on the cache for this process, saying why once. */
function refuseCache(dir: string, problem: string): void {
  if (!cacheRefused) {
    host().stderr(
      `hako: not using the loader cache ${dir}: ${problem}; scripts are transpiled afresh ` +
        `(make it yours and not writable by others, or set HAKO_CACHE_DIR)\n`,
    );
  }
  cacheRefused = true;
}

/**
 * Whether the cache in `dir` may be used now — and, given `entry`, that entry and its directory
 * (each directory is judged once per process; entries each time).
 */
function cacheUsable(dir: string, entry?: string): boolean {
  if (cacheRefused) return false;
  const fs = hostTrustFs();
  const verdict = (key: string, find: () => string | undefined) => {
    if (!cacheVerdicts.has(key)) cacheVerdicts.set(key, find());
    return cacheVerdicts.get(key);
  };
  const shard = entry?.slice(0, entry.lastIndexOf("/"));
  let problem: string | undefined;
  try {
    const uid = host().uid();
    problem = verdict(dir, () => cacheProblem(dir, uid, fs)) ??
      (shard ? verdict(shard, () => ownProblem(shard, uid, fs, "dir")) : undefined) ??
      (entry ? ownProblem(entry, uid, fs, "file") : undefined);
  } catch (e) {
    problem = `it cannot be checked (${(e as Error).message})`;
  }
  if (problem) refuseCache(dir, problem);
  return !problem;
}

/** Makes the missing directories of `path` 0700, whatever the umask. */
function makePrivateDirs(
  path: string,
  fs: { mkdirSync(p: string, o: { mode: number }): unknown; chmodSync(p: string, m: number): void },
): void {
  const missing: string[] = [];
  for (let p = path; p && p !== "/" && !host().lstat(p); p = p.slice(0, p.lastIndexOf("/"))) missing.unshift(p);
  for (const p of missing) {
    try {
      fs.mkdirSync(p, { mode: 0o700 });
      fs.chmodSync(p, 0o700);
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
    }
  }
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Only the fields the loader reads, so the cache stays small. */
function slim(imports: ReadonlyArray<ImportRecord>): ImportRecord[] {
  return imports.map(({ n, s, e, ss, se, d }) => ({ n, s, e, ss, se, d }));
}

/**
 * Turns one TypeScript (or JavaScript) module into JavaScript and lists its imports.
 * @param source The module's text.
 * @param file The file as shown in errors (also part of the cache key).
 * @param mode `"strip"` to keep every position; `"transform"` for full TypeScript.
 * @returns The JavaScript, its imports and its exports. A `"strip"` request whose source needs more
 *   than stripping (an enum, say) comes back in `"transform"` mode.
 * @throws {TranspileError} On a syntax error.
 */
export async function transpile(source: string, file: string, mode: TranspileMode): Promise<Transpiled> {
  let dir = cacheDir();
  if (dir && !dir.startsWith("/")) dir = `${host().cwd()}/${dir}`;
  const key = await sha256(`${CACHE_FORMAT}\0${AMARO_VERSION}\0${mode}\0${file}\0${source}`);
  const path = dir ? `${dir}/loader/${key.slice(0, 2)}/${key}.json` : undefined;
  if (dir && path && cacheUsable(dir, path)) {
    try {
      const cached = JSON.parse(host().readTextFile(path)) as Transpiled;
      if (typeof cached.code === "string" && Array.isArray(cached.imports)) return cached;
    } catch { /* not cached, unreadable or corrupt: transpile again */ }
  }
  const out = await transpileUncached(source, file, mode);
  if (dir && path && cacheUsable(dir)) {
    try {
      const fs = await import("node:fs");
      makePrivateDirs(path.slice(0, path.lastIndexOf("/")), fs);
      if (cacheUsable(dir, path)) {
        const tmp = `${path}.${crypto.randomUUID()}.tmp`;
        // 0600 whatever the umask could add; "wx": never through something already there.
        fs.writeFileSync(tmp, JSON.stringify(out), { mode: 0o600, flag: "wx" });
        fs.renameSync(tmp, path);
      }
    } catch { /* a cache that cannot be written is no cache */ }
  }
  return out;
}

async function transpileUncached(source: string, file: string, mode: TranspileMode): Promise<Transpiled> {
  let code: string;
  let map: string | undefined;
  let actual = mode;
  if (/\.[mc]?js$/.test(file)) return lex(source, file, mode);
  const { transformSync } = await loadAmaro();
  const run = (m: TranspileMode) => {
    if (m === "strip") return transformSync(source, { mode: "strip-only", filename: file }).code;
    const r = transformSync(source, { ...TRANSFORM_OPTIONS, filename: file });
    map = r.map;
    return r.code + (map ? `\n//# sourceMappingURL=data:application/json;base64,${base64(map)}` : "");
  };
  try {
    code = run(mode);
  } catch (e) {
    const err = e as AmaroError;
    if (mode === "strip" && err?.code === "UnsupportedSyntax") {
      actual = "transform";
      try {
        code = run("transform");
      } catch (e2) {
        throw toTranspileError(e2, file);
      }
    } else {
      throw toTranspileError(e, file);
    }
  }
  const out = await lex(code, file, actual);
  return map ? { ...out, map } : out;
}

async function lex(code: string, file: string, mode: TranspileMode): Promise<Transpiled> {
  const { parse } = await loadLexer();
  let imports: ReadonlyArray<ImportRecord>, exports: ReadonlyArray<{ n: string }>;
  try {
    [imports, exports] = parse(code, file);
  } catch (e) {
    throw new TranspileError(file, `cannot find the imports: ${(e as Error).message}`);
  }
  return { mode, code, imports: slim(imports), exports: exports.map((x) => x.n) };
}

function toTranspileError(e: unknown, file: string): TranspileError {
  const err = e as AmaroError;
  if (typeof err?.message !== "string") return new TranspileError(file, String(e));
  const snippet = err.snippet ? `\n${err.snippet.replace(/\n$/, "")}` : "";
  const column = err.startColumn === undefined ? undefined : err.startColumn + 1;
  return new TranspileError(file, `${err.message}${snippet}`, err.startLine, column);
}
