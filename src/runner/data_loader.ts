/**
 * The data-URL loader: runs a TypeScript script where files on disk cannot be `import()`ed — inside
 * a binary made by `deno compile` or `bun build --compile`, whose module loader serves only the
 * modules embedded at build time (and `data:` URLs: both runtimes load those as JavaScript).
 *
 * The script and the local modules it imports are read from disk, their types stripped (see
 * `transpile.ts`), and each becomes a `data:text/javascript;base64,…` URL, built from the leaves
 * up so that every import specifier can be rewritten to its dependency's URL:
 *
 * - `./x.ts`, `../y.ts`, `/abs.ts`, `file:` → that file's data URL (a `.json` file → a JSON data
 *   URL, keeping its `with { type: "json" }`);
 * - `hako`, `hako/mod.ts`, `jsr:@hako/hako`, the running hako's own `mod.ts` by path, or an
 *   http(s) URL of a `mod.ts` under a path that names hako → a small module re-exporting the
 *   running hako (so the script and the globals share one hako: one set of deferred namespaces);
 * - `node:`, `npm:`, `jsr:`, `http(s):` and other bare specifiers → left alone for the runtime.
 * - `import.meta` → `__hakoMeta(import.meta)`, which answers with the file's own `url`,
 *   `filename`, `dirname`, `main` and `resolve()`.
 *
 * A name imported without `import type` that exists only as a type (`import { ForkOptions,
 * Process } from "hako"`) is blanked out of the import where the target's exports are known (the
 * running hako, a local module), so positions stay exact; a name that is missing altogether then
 * fails where it is used (a ReferenceError), not when the module links. Elsewhere the module is
 * transformed in full instead (swc elides such imports, as tsc does).
 *
 * Limits: an import cycle between local modules cannot be expressed with content-addressed URLs
 * and is reported; a dynamic `import()` of a computed specifier is left to the runtime (a relative
 * one cannot resolve against a data URL).
 *
 * @module
 */
import { host, isNotFound } from "./_host.ts";
import { type ImportRecord, transpile, type Transpiled, TranspileError, type TranspileMode } from "./transpile.ts";
import { base64 } from "./_base64.ts";
import type { ModuleTable } from "./stack.ts";

/** What the loader needs from the run. */
export interface DataLoaderOptions {
  /** Where loaded modules are recorded (for error messages and `import.meta`). */
  readonly table: ModuleTable;
  /** Loads the running hako's public module (mod.ts) and returns its exports. */
  readonly hako: () => Promise<Record<string, unknown>>;
  /** The running hako's own mod.ts, as a file URL (imports of it become the shim). */
  readonly hakoModUrl?: string;
  /** Transform every module in full (instead of stripping types where that suffices). */
  readonly transformAll?: boolean;
  /** True when a module's source uses hako's globals (then hako is loaded before the import). */
  readonly mentionsHako?: (source: string) => boolean;
}

/** The entry point: a file, or code given on the command line. */
export interface DataEntry {
  /** The file URL of the script (for `-e`, a made-up one in the current directory). */
  readonly fileUrl: string;
  /** The code, when it is not to be read from `fileUrl`. */
  readonly source?: string;
  /** The name shown for it (default: its path). */
  readonly display?: string;
}

/** The graph built for one entry. */
export interface DataGraph {
  /** The entry's data URL, to `import()`. */
  readonly url: string;
  /** True when some module imports hako or uses its globals (so load hako before importing). */
  readonly usesHako: boolean;
}

interface Built {
  readonly url: string;
  readonly exports: ReadonlySet<string> | undefined; // undefined: unknown (re-exports something external)
}

const HAKO_BARE = new Set(["hako", "hako/mod.ts", "jsr:@hako/hako", "npm:hako"]);
const EXTERNAL = /^(?:node|npm|jsr|https?|data|blob|bun):/;

/** A specifier's target: a local file, the running hako, or something the runtime resolves. */
export type Target =
  | { readonly kind: "file"; readonly url: string }
  | { readonly kind: "hako" }
  | { readonly kind: "external" };

/**
 * Classifies an import specifier (pure).
 * @param specifier As written in the module.
 * @param referrer The importing module's file URL.
 * @param hakoModUrl The running hako's mod.ts.
 */
export function classify(specifier: string, referrer: string, hakoModUrl?: string): Target {
  if (HAKO_BARE.has(specifier)) return { kind: "hako" };
  if (/^https?:/.test(specifier)) {
    return /hako/i.test(specifier) && /\/mod\.ts(?:[?#].*)?$/.test(specifier) ? { kind: "hako" } : { kind: "external" };
  }
  if (EXTERNAL.test(specifier)) return { kind: "external" };
  if (/^(?:\.{0,2}\/|file:)/.test(specifier)) {
    const url = new URL(specifier, referrer).href;
    return url === hakoModUrl ? { kind: "hako" } : { kind: "file", url };
  }
  return { kind: "external" }; // a bare specifier: the runtime's import map may know it
}

/**
 * The names a static import or re-export takes from its module, or undefined when it takes none
 * by name (`import * as x`, `export *`, a side-effect import). Pure.
 * @param statement The statement's text.
 */
export function importedNames(statement: string): string[] | undefined {
  const m = /^(import|export)\s*([\s\S]*?)\s*from\s*["']/.exec(statement);
  if (!m) return undefined;
  const clause = m[2]!.trim();
  const names: string[] = [];
  const braces = /\{([\s\S]*)\}/.exec(clause);
  const head = (braces ? clause.slice(0, braces.index) : clause).replace(/,\s*$/, "").trim();
  if (m[1] === "import" && head && !head.startsWith("*")) names.push("default");
  if (braces) {
    for (const part of braces[1]!.split(",")) {
      const item = part.trim();
      if (!item) continue;
      const name = /^(?:"([^"]*)"|'([^']*)'|([\w$]+))/.exec(item);
      if (name) names.push(name[1] ?? name[2] ?? name[3]!);
    }
  }
  return names.length ? names : undefined;
}

/** Builds the data URLs for an entry and its local imports (see the module doc). */
export class DataLoader {
  readonly #options: DataLoaderOptions;
  readonly #built = new Map<string, Promise<Built>>();
  readonly #visiting: string[] = [];
  #hakoShim: Promise<Built> | undefined;
  #usesHako = false;

  /**
   * Makes a loader for one run.
   * @param options The run's table, hako, and mode.
   */
  constructor(options: DataLoaderOptions) {
    this.#options = options;
  }

  /**
   * Builds `entry` and everything it imports locally.
   * @returns The entry's URL and whether hako is used.
   * @throws {TranspileError} For a syntax error, a missing module or an import cycle.
   */
  async build(entry: DataEntry): Promise<DataGraph> {
    const built = await this.#module(entry.fileUrl, entry.source, true, entry.display);
    return { url: built.url, usesHako: this.#usesHako };
  }

  #module(fileUrl: string, source: string | undefined, main: boolean, display?: string): Promise<Built> {
    const name = display ?? this.#options.table.display(fileUrl);
    if (this.#visiting.includes(fileUrl)) {
      const cycle = [...this.#visiting.slice(this.#visiting.indexOf(fileUrl)), fileUrl].map((u) =>
        this.#options.table.display(u)
      );
      throw new TranspileError(name, `import cycle ${cycle.join(" → ")}: the data loader cannot load cycles`);
    }
    let p = this.#built.get(fileUrl);
    if (!p) {
      this.#visiting.push(fileUrl);
      p = this.#compile(fileUrl, source, main, name).finally(() => {
        this.#visiting.splice(this.#visiting.indexOf(fileUrl), 1);
      });
      this.#built.set(fileUrl, p);
    }
    return p;
  }

  async #compile(fileUrl: string, given: string | undefined, main: boolean, name: string): Promise<Built> {
    const source = given ?? host().readTextFile(decodeURIComponent(new URL(fileUrl).pathname));
    if (this.#options.mentionsHako?.(source)) this.#usesHako = true;
    if (/\.json$/.test(fileUrl) && given === undefined) {
      JSON.parse(source); // a syntax error here beats one from deep inside the runtime
      return { url: `data:application/json;base64,${base64(source)}`, exports: new Set(["default"]) };
    }
    if (/\.[jt]sx$/.test(fileUrl)) throw new TranspileError(name, "JSX is not supported by the data loader");
    const first: TranspileMode = this.#options.transformAll ? "transform" : "strip";
    let out = await transpile(source, name, first);
    let deps = await this.#dependencies(out, fileUrl, name);
    if (out.mode === "strip") {
      // `import { ForkOptions, Process } from "hako"`: a name that exists only as a type is blanked
      // out where the target's exports are known (positions stay); where that cannot be done,
      // swc elides it, as tsc would.
      const fixed = blankTypeImports(out, deps);
      if (fixed) {
        out = fixed;
      } else {
        out = await transpile(source, name, "transform");
        deps = await this.#dependencies(out, fileUrl, name);
      }
    }
    const code = rewrite(out, deps) + trailer(fileUrl);
    const url = `data:text/javascript;base64,${base64(code)}`;
    this.#options.table.add({ url, fileUrl, display: name, main, ...(out.map ? { sourceMap: out.map } : {}) });
    return { url, exports: this.#exports(out, deps) };
  }

  /** Builds each import's target; returns the replacement URL per import (undefined: leave it). */
  async #dependencies(out: Transpiled, fileUrl: string, name: string): Promise<Array<Built | undefined>> {
    const deps: Array<Built | undefined> = [];
    for (const imp of out.imports) {
      if (imp.d === -2 || imp.n === undefined) {
        deps.push(undefined);
        continue;
      }
      const target = classify(imp.n, fileUrl, this.#options.hakoModUrl);
      if (target.kind === "hako") {
        deps.push(await this.#shim());
      } else if (target.kind === "file") {
        try {
          deps.push(await this.#module(target.url, undefined, false));
        } catch (e) {
          if (!isNotFound(e)) throw e;
          if (imp.d >= 0) {
            // A dynamic import may be of a file that exists only some of the time: let it fail then.
            deps.push({ url: target.url, exports: undefined });
            continue;
          }
          const { line, column } = position(out.code, imp.s - 1); // at the opening quote
          throw new TranspileError(
            name,
            `module not found: ${this.#options.table.display(target.url)} (imported as "${imp.n}")`,
            out.mode === "strip" ? line : undefined,
            column,
          );
        }
      } else {
        deps.push(undefined);
      }
    }
    return deps;
  }

  #exports(out: Transpiled, deps: ReadonlyArray<Built | undefined>): ReadonlySet<string> | undefined {
    const names = new Set(out.exports);
    for (const [i, imp] of out.imports.entries()) {
      if (imp.d !== -1 || !/^export\s*\*\s*from/.test(out.code.slice(imp.ss, imp.se))) continue;
      const star = deps[i]?.exports;
      if (!star) return undefined;
      for (const n of star) if (n !== "default") names.add(n);
    }
    return names;
  }

  #shim(): Promise<Built> {
    this.#usesHako = true;
    return this.#hakoShim ??= this.#options.hako().then((mod) => {
      const names = Object.keys(mod).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n));
      const code = `const hako = globalThis[Symbol.for("hako.module")];\n` +
        `export const { ${names.join(", ")} } = hako;\n`;
      return { url: `data:text/javascript;base64,${base64(code)}`, exports: new Set(names) };
    });
  }
}

/**
 * The module with the names that its static imports and re-exports take from modules whose exports
 * are known, but which those do not export (types, stripped there), replaced by spaces. Undefined
 * when a missing name cannot be blanked (a default import).
 */
function blankTypeImports(out: Transpiled, deps: ReadonlyArray<Built | undefined>): Transpiled | undefined {
  let code = out.code;
  const gone = new Set<string>();
  for (const [i, imp] of out.imports.entries()) {
    const exports = deps[i]?.exports;
    if (imp.d !== -1 || !exports) continue;
    const statement = code.slice(imp.ss, imp.se);
    const fixed = blankMissingNames(statement, exports);
    if (fixed === null) return undefined;
    if (fixed === undefined) continue;
    code = code.slice(0, imp.ss) + fixed.text + code.slice(imp.se);
    if (statement.startsWith("export")) { for (const n of fixed.removed) gone.add(n); }
  }
  if (code === out.code) return out;
  return { ...out, code, exports: out.exports.filter((n) => !gone.has(n)) };
}

/**
 * Blanks the names in an import or re-export statement that `exports` lacks (pure). Same length
 * out as in, newlines kept, so every later position stays.
 * @returns The new text and the names removed; undefined when nothing is missing; null when a
 *   missing name cannot be blanked (a default import).
 */
export function blankMissingNames(
  statement: string,
  exports: ReadonlySet<string>,
): { text: string; removed: string[] } | null | undefined {
  const names = importedNames(statement);
  if (!names || names.every((n) => exports.has(n))) return undefined;
  const from = /\sfrom\s*["']/.exec(statement);
  const open = statement.indexOf("{");
  const close = open < 0 ? -1 : statement.indexOf("}", open);
  if (!from || open < 0 || close < 0 || close > from.index) return null;
  if (statement.startsWith("import") && names[0] === "default" && !exports.has("default")) return null;
  const removed: string[] = [];
  let text = statement;
  let start = open + 1;
  while (start < close) {
    const comma = text.indexOf(",", start);
    const end = comma < 0 || comma > close ? close : comma + 1;
    const item = text.slice(start, end).replace(/,$/, "").trim();
    const name = /^(?:"([^"]*)"|'([^']*)'|([\w$]+))/.exec(item);
    const n = name ? (name[1] ?? name[2] ?? name[3]!) : undefined;
    if (n !== undefined && !exports.has(n)) {
      text = text.slice(0, start) + text.slice(start, end).replace(/[^\n]/g, " ") + text.slice(end);
      removed.push(n);
    }
    start = end;
  }
  return { text, removed };
}

/** The code with each import specifier replaced by its dependency's URL, and import.meta wrapped. */
function rewrite(out: Transpiled, deps: ReadonlyArray<Built | undefined>): string {
  const edits: Array<[number, number, string]> = [];
  out.imports.forEach((imp: ImportRecord, i) => {
    if (imp.d === -2) {
      edits.push([imp.s, imp.e, "__hakoMeta(import.meta)"]);
      return;
    }
    const dep = deps[i];
    if (!dep) return;
    edits.push([imp.s, imp.e, imp.d >= 0 ? JSON.stringify(dep.url) : dep.url]);
  });
  let code = out.code;
  for (const [s, e, text] of edits.sort((a, b) => b[0] - a[0])) code = code.slice(0, s) + text + code.slice(e);
  return code;
}

/**
 * Appended to each module: makes its URL unique to its file (two equal files stay two modules),
 * and makes the tail that Deno keeps of a long data URL in stack traces differ between files.
 */
function trailer(fileUrl: string): string {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < fileUrl.length; i++) h = Math.imul(h ^ fileUrl.charCodeAt(i), 0x01000193) >>> 0;
  return `\n//# sourceURL=${fileUrl}\n// ${h.toString(16).padStart(8, "0")}\n`;
}

function position(code: string, offset: number): { line: number; column: number } {
  const before = code.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}
