/**
 * `hako run`: runs a user's TypeScript script with hako's API as globals.
 *
 * ## Loaders
 * - **native** (the default under `deno run`): the script is `import()`ed by its file
 *   URL. The runtime transpiles it, resolves its imports (relative, `npm:`, `node:`, `http(s):`,
 *   and `hako` through hako's import map, to the very module the globals come from), applies its
 *   own source maps and caches. Nothing of ours runs but a text scan, so `hako run` of an empty
 *   script costs a few milliseconds more than `deno run` of it.
 * - Under Bun (compiled or not), the native loader too for a script that imports nothing (see
 *   {@link isSelfContained}; a container spec usually): Bun transpiles and imports it from disk
 *   itself, 10–20 ms sooner than the data loader.
 * - **data** (the default inside a `deno compile` / `bun build --compile` binary and under Bun,
 *   or forced with `HAKO_LOADER=data` / `--loader data`): a compiled binary can import only the modules embedded
 *   in it, and `data:` URLs. The script and its local imports are type-stripped with `amaro` and
 *   imported as data URLs (see `data_loader.ts`). Stripping keeps every line and column, so errors
 *   point into the script without a source map; the output is cached by content hash under
 *   `$XDG_CACHE_HOME/hako` (or `~/.cache/hako`, or `$HAKO_CACHE_DIR`), so the transpiler (about
 *   60 ms to start) is loaded only for a script not seen before.
 *
 * Measured (Deno 2.9, 2 cores): `bin/hako run empty.ts` takes about 7 ms more than `deno run
 * empty.ts` (2 ms of it the shell launcher); a script using the globals about 5 ms more than
 * `deno run` of the same script importing mod.ts; the data loader adds about 5 ms with a warm cache
 * and about 65 ms (loading amaro) for a script it has not seen.
 *
 * Why not bundle, or `typescript`'s `transpileModule`? A bundler rewrites positions and needs
 * source maps at run time; `typescript` is 20+ MB and slow to start. `amaro` is what Node itself
 * uses to strip types, is one file with its WebAssembly inlined (so it works from inside a compiled
 * binary) and can fall back to a full transform (enums, namespaces) with an inline source map.
 *
 * ## Errors
 * An uncaught error — thrown while loading, at top level, or later from a timer or a promise —
 * ends the run with exit code 1 and `error: <message>` followed by the script's own frames, each
 * with the script's path, line and column (`HAKO_DEBUG=1` shows every frame).
 *
 * @module
 */
import { type Host, host, isNotFound } from "./_host.ts";
import { MAX_NESTING, tooDeep } from "./_nesting.ts";
import { installArgGlobals, installDenoShim, installHakoGlobals, mentionsHako } from "./globals.ts";
import { formatError, type ModuleInfo, ModuleTable } from "./stack.ts";
import { base64 } from "./_base64.ts";

/** Which loader runs the script (see the module doc). */
export type LoaderKind = "native" | "data";

/** What to run. */
export interface RunScriptOptions {
  /** The script's path (or http(s) URL, native loader only). Exactly one of `script` and `code`. */
  readonly script?: string;
  /** Code to run, as with `hako run -e`. */
  readonly code?: string;
  /** The script's arguments. */
  readonly args?: readonly string[];
  /** The loader; default: `$HAKO_LOADER`, else data in a compiled binary and native otherwise. */
  readonly loader?: LoaderKind;
  /**
   * Called with the script's exports once its top level has run (e.g. to run a container spec
   * that is its default export); its result is the run's exit code.
   */
  readonly onExports?: (exports: Record<string, unknown>) => Promise<number | undefined>;
}

/** The name `-e` code goes by in errors. */
export const EVAL_NAME = "[eval]";

const HAKO_ROOT = new URL("../../", import.meta.url).href;
const HAKO_MOD_URL = new URL("../../mod.ts", import.meta.url).href;
/**
 * Frames in these are hako's or its dependencies', hidden from error reports unless HAKO_DEBUG is
 * set. Paths, not URLs: Deno's frames show `file:` URLs, Bun's show paths; both contain the path.
 */
const INTERNAL = ["src/", "ffi/", "mod.ts", "node_modules/"].map((p) =>
  decodeURIComponent(new URL(p, HAKO_ROOT).pathname)
);

/**
 * Picks the loader (pure): the one asked for, else the native one where the runtime can resolve
 * `hako` itself (Deno, through hako's import map), else the data loader — in a compiled binary,
 * and under Bun, which has no import map and would fetch an unrelated npm package named "hako".
 * @param requested From the command line, if given.
 * @param env `$HAKO_LOADER`.
 * @param nativeOk True when the native loader can work (Deno, not compiled).
 * @throws {RangeError} For an unknown loader name.
 */
export function chooseLoader(requested: string | undefined, env: string | undefined, nativeOk: boolean): LoaderKind {
  const name = requested ?? (env || undefined);
  if (name === undefined || name === "auto") return nativeOk ? "native" : "data";
  if (name === "native" || name === "data") return name;
  throw new RangeError(`Unknown loader "${name}": use "native" or "data"`);
}

let hakoModule: Promise<Record<string, unknown>> | undefined;

/**
 * Loads hako's public module once and makes its exports globals. A script that uses hako may fork
 * JavaScript (`Process.fork`, a container whose child is forked), so under Bun the engine is made
 * single-threaded first (a re-exec, before any of the script runs: see
 * `Host.ensureSingleThreaded`); a script that does not — a spec module of plain data — runs without
 * it, and its container decides ({@link runForeground}).
 */
function loadHako(): Promise<Record<string, unknown>> {
  host().ensureSingleThreaded();
  return hakoModule ??= import("../../mod.ts").then((mod) => {
    const ns = mod as unknown as Record<string, unknown>;
    installHakoGlobals(ns);
    // Node compatibility is up now: let the `process.argv` patch (see _host.ts) happen at once.
    void (globalThis as { process?: unknown }).process;
    return ns;
  });
}

function toFileUrl(path: string, cwd: string): string {
  const abs = path.startsWith("/") ? path : `${cwd.replace(/\/$/, "")}/${path}`;
  const url = new URL("file:///");
  url.pathname = abs;
  return url.href;
}

/**
 * Runs a script (or `-e` code) to the end of its top-level code.
 *
 * An error while loading or at top level is reported on stderr and returns 1; an error after that
 * (from a timer, an unhandled rejection) is reported the same way and ends the process with 1.
 *
 * @param options What to run, with which arguments and loader.
 * @returns 1 when the script failed, undefined when its top level finished (the process then
 *   lives on while the script has timers or I/O, and exits with `process.exitCode`, default 0).
 */
export async function runScript(options: RunScriptOptions): Promise<number | undefined> {
  const h = host();
  const cwd = h.cwd();
  const table = new ModuleTable(cwd);
  const report = (e: unknown) => h.stderr(formatError(e, table, { full: !!h.env("HAKO_DEBUG"), internal: INTERNAL }));
  h.onUncaught((e) => {
    report(e);
    h.exit(1);
  });
  // For code that reports errors itself (a forked child's uncaught error): the same format.
  Object.defineProperty(globalThis, Symbol.for("hako.formatError"), {
    value: (e: unknown) => formatError(e, table, { full: !!h.env("HAKO_DEBUG"), internal: INTERNAL }),
    configurable: true,
  });
  try {
    const args = options.args ?? [];
    const isUrl = options.script !== undefined && /^https?:\/\//.test(options.script);
    const fileUrl = options.script === undefined
      ? toFileUrl(EVAL_NAME, cwd)
      : isUrl
      ? options.script
      : toFileUrl(options.script, cwd);
    installArgGlobals(args);
    h.setScriptArgs(options.script === undefined ? EVAL_NAME : isUrl ? fileUrl : new URL(fileUrl).pathname, args);
    installMeta(table);
    // A JSON file is a spec as data (what the module's default export would be): parsed, not run.
    if (options.code === undefined && !isUrl && /\.json$/i.test(options.script ?? "")) {
      return await options.onExports?.({ default: jsonSpec(readScript(h, fileUrl, table), table.display(fileUrl)) });
    }
    const source = options.code ?? (isUrl ? undefined : readScript(h, fileUrl, table));
    // A script written for Deno, under Bun: Deno.args works, any other Deno.X says what to do.
    // Only for a script that names Deno: one that does not keeps a runtime without a Deno global,
    // for the libraries it imports that tell runtimes apart by `typeof Deno`.
    if (h.runtime === "bun" && source !== undefined && /(?<![\w$.])Deno(?![\w$])/.test(source)) {
      installDenoShim(args);
    }
    // Bun (compiled or not) imports a file from disk itself, and faster than the data loader, but
    // knows neither hako's import map nor `__hakoMeta`: natively only a script that imports nothing.
    const nativeOk = h.runtime === "deno" ? !h.compiled : h.runtime === "bun" && options.code === undefined &&
      source !== undefined && isSelfContained(source);
    const loader = chooseLoader(options.loader, h.env("HAKO_LOADER"), nativeOk);
    if (loader === "data" && isUrl) throw new TypeError(`The data loader runs local scripts only, not ${fileUrl}`);
    const display = options.code === undefined ? table.display(fileUrl) : EVAL_NAME;
    // A script nested deeper than the runtime's parser can recurse would abort the process.
    const deep = source === undefined ? undefined : tooDeep(source);
    if (deep) {
      throw new SyntaxError(
        `${display}:${deep.line}:${deep.column}: brackets nest deeper than ${MAX_NESTING} levels (the runtime's parser would run out of stack)`,
      );
    }

    if (loader === "native" && !(options.code !== undefined && hasRelativeImport(options.code))) {
      if (source === undefined || mentionsHako(source)) await loadHako();
      let url = fileUrl;
      if (options.code !== undefined) url = `data:application/typescript;base64,${base64(options.code)}`;
      table.add({ url, fileUrl, display, main: true });
      const ns = await import(url);
      return await options.onExports?.(ns);
    }

    const { DataLoader } = await import("./data_loader.ts");
    const build = (transformAll: boolean) =>
      new DataLoader({ table, hako: loadHako, hakoModUrl: HAKO_MOD_URL, transformAll, mentionsHako }).build({
        fileUrl,
        ...(options.code !== undefined ? { source: options.code, display } : {}),
      });
    let graph = await build(false);
    if (graph.usesHako) await loadHako();
    if (table.hasSourceMaps) table.applySourceMaps = !(await runtimeAppliesSourceMaps());
    const started = { value: false };
    try {
      await importStarting(graph.url, started);
    } catch (e) {
      // A missing export found while linking, before anything ran: most likely a type imported
      // without `import type` from a module whose exports the loader cannot see. Transform in
      // full, once. (Once the script has started, running it again is never right.)
      if (started.value || !(e instanceof SyntaxError && /does not provide an export named/.test(e.message))) throw e;
      graph = await build(true);
      table.applySourceMaps = !(await runtimeAppliesSourceMaps());
      await import(graph.url);
    }
    // Already evaluated: this only hands back the module's namespace.
    return await options.onExports?.(await import(graph.url));
  } catch (e) {
    report(e);
    return 1;
  }
}

/**
 * Imports `url` through a module that first imports a marker: the marker runs (and sets
 * `started.value`) only once the whole graph has linked, before any of the script's modules runs.
 */
async function importStarting(url: string, started: { value: boolean }): Promise<void> {
  const key = `hako.started.${crypto.randomUUID()}`;
  Object.defineProperty(globalThis, Symbol.for(key), { set: (v: boolean) => started.value = v, configurable: true });
  const marker = `data:text/javascript,${encodeURIComponent(`globalThis[Symbol.for(${JSON.stringify(key)})] = true;`)}`;
  const wrapper = `import ${JSON.stringify(marker)};\nimport ${JSON.stringify(url)};\n`;
  try {
    await import(`data:text/javascript;base64,${base64(wrapper)}`);
  } finally {
    delete (globalThis as Record<symbol, unknown>)[Symbol.for(key)];
  }
}

/**
 * A spec written as JSON: the object, or an error naming the file — an OCI bundle's config.json
 * (runc's format, not hako's) is told apart and pointed at hako-runc.
 */
function jsonSpec(text: string, display: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`${display}: not JSON: ${(e as Error).message}`);
  }
  if (
    typeof value === "object" && value !== null && typeof (value as { ociVersion?: unknown }).ociVersion === "string"
  ) {
    throw new TypeError(
      `${display} is an OCI bundle's config.json, not a hako spec: run its bundle with 'hako oci run --bundle DIR ID' (bin/hako-runc)`,
    );
  }
  return value;
}

function readScript(h: Host, fileUrl: string, table: ModuleTable): string {
  try {
    return h.readTextFile(decodeURIComponent(new URL(fileUrl).pathname));
  } catch (e) {
    if (isNotFound(e)) throw new Error(`Script not found: ${table.display(fileUrl)}`);
    throw e;
  }
}

/**
 * True when the runtime maps positions in a data: module through its inline source map (Deno
 * does; Bun does not): a module whose line 1 is the source's line 3 throws, and its stack says.
 */
async function runtimeAppliesSourceMaps(): Promise<boolean> {
  const map = base64(JSON.stringify({ version: 3, sources: ["probe.ts"], names: [], mappings: "AAEA" }));
  const code = `throw new Error("probe");\n//# sourceMappingURL=data:application/json;base64,${map}\n`;
  try {
    await import(`data:text/javascript;base64,${base64(code)}`);
  } catch (e) {
    return /:3:\d+/.test(String((e as Error)?.stack));
  }
  return false;
}

/**
 * True when a script surely needs no module but itself: no `import` (static, dynamic or
 * `import.meta`), no `… from "…"`, no CommonJS names — wherever they appear, comments included,
 * so a false answer may be wrong but a true one is not (pure). Such a script runs the same whether
 * the runtime imports its file or the data loader does (e.g. a container spec).
 * @param source The script's text.
 */
export function isSelfContained(source: string): boolean {
  return !/\bimport\b|\bfrom\s*["'`]|\brequire\b|\bmodule\b|\bexports\b|\b__(?:dirname|filename)\b/.test(source);
}

/** True when code imports a relative path (which cannot resolve from a data URL). */
function hasRelativeImport(code: string): boolean {
  return /(?:\bfrom|\bimport)\s*\(?\s*["']\.{0,2}\//.test(code);
}

/** Installs `__hakoMeta`, which the data loader puts in place of `import.meta`. */
function installMeta(table: ModuleTable): void {
  const metas = new Map<string, object>();
  const meta = (real: { url: string }) => {
    // Bun reports a data: module's import.meta.url as "file:///data:…".
    const info: ModuleInfo | undefined = table.get(real.url.replace(/^file:\/\/\/(?=data:)/, ""));
    if (!info) return real;
    let m = metas.get(info.url);
    if (!m) {
      const url = info.fileUrl;
      const path = url.startsWith("file:") ? decodeURIComponent(new URL(url).pathname) : undefined;
      m = {
        url,
        main: info.main,
        filename: path,
        dirname: path?.slice(0, path.lastIndexOf("/")) || (path ? "/" : undefined),
        resolve: (specifier: string) => new URL(specifier, url).href,
      };
      metas.set(info.url, m);
    }
    return m;
  };
  Object.defineProperty(globalThis, "__hakoMeta", { value: meta, configurable: true });
}
