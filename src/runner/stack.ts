/**
 * Errors as a shell user wants them: `error: <message>` and the script's own frames, with every
 * module URL (a `file:` URL, or the `data:` URL the data loader made) shown as the script's path.
 *
 * ```text
 * error: SyscallError: waitpid(1): ECHILD (no child processes)
 *     at main (box.ts:12:5)
 * ```
 *
 * @module
 */

/** A module the runner loaded, and how to name it. */
export interface ModuleInfo {
  /** The URL the runtime loaded (`file:`, or `data:` from the data loader). */
  readonly url: string;
  /** The module's own file URL (what `import.meta.url` should say). */
  readonly fileUrl: string;
  /** The path shown to the user. */
  readonly display: string;
  /** True for the script that `hako run` was given. */
  readonly main: boolean;
  /** The source map of a module that was transformed (not just stripped of its types). */
  readonly sourceMap?: string;
}

/** Deno writes a `data:` URL longer than this in stack traces as its head and tail around `......`. */
const DATA_URL_ABBREV_THRESHOLD = 150;

/** Deno's abbreviation of a long `data:` URL in stack traces, or undefined when it writes it whole. */
export function abbreviateDataUrl(url: string): string | undefined {
  if (url.length <= DATA_URL_ABBREV_THRESHOLD || !url.startsWith("data:")) return undefined;
  const comma = url.indexOf(",");
  if (comma < 0) return undefined;
  const body = url.slice(comma + 1);
  if (body.length < 20) return undefined;
  return `${url.slice(0, comma + 1)}${body.slice(0, 20)}......${body.slice(-20)}`;
}

/**
 * A path for messages: relative to `cwd` when below it, else absolute.
 * @param fileUrl A `file:` URL (other strings are returned as they are).
 * @param cwd The current directory.
 */
export function displayPath(fileUrl: string, cwd: string): string {
  if (!fileUrl.startsWith("file://")) return fileUrl;
  let path: string;
  try {
    path = decodeURIComponent(new URL(fileUrl).pathname);
  } catch {
    return fileUrl;
  }
  const base = cwd.endsWith("/") ? cwd : `${cwd}/`;
  return path.startsWith(base) ? path.slice(base.length) : path;
}

/** The modules a run loaded, by URL, for naming them in errors and for `import.meta`. */
export class ModuleTable {
  readonly #byUrl = new Map<string, ModuleInfo>();
  readonly #abbreviated = new Map<string, ModuleInfo>();
  readonly #cwd: string;
  readonly #mapped: Array<{ forms: string[]; lines: Segment[][] | string }> = [];

  /**
   * True when positions in transformed modules must be mapped here, because the runtime does not
   * apply their inline source maps itself (Bun; Deno does).
   */
  applySourceMaps = false;

  /**
   * Makes an empty table.
   * @param cwd The directory paths are shown relative to.
   */
  constructor(cwd: string) {
    this.#cwd = cwd;
  }

  /** Records a loaded module. */
  add(info: ModuleInfo): void {
    this.#byUrl.set(info.url, info);
    const short = abbreviateDataUrl(info.url);
    if (short) this.#abbreviated.set(short, info);
    if (info.sourceMap) this.#mapped.push({ forms: short ? [info.url, short] : [info.url], lines: info.sourceMap });
  }

  /** True when some module was transformed, with a source map. */
  get hasSourceMaps(): boolean {
    return this.#mapped.length > 0;
  }

  /** The module loaded from `url`, if the runner loaded it. */
  get(url: string): ModuleInfo | undefined {
    return this.#byUrl.get(url);
  }

  /** A path for messages (see {@link displayPath}). */
  display(fileUrl: string): string {
    return displayPath(fileUrl, this.#cwd);
  }

  /** Replaces every module URL in `text` (a message or a stack) with its path. */
  mapText(text: string): string {
    return this.#mapUrls(text);
  }

  /** Like {@link mapText} for one stack frame, which also shortens absolute paths below the cwd. */
  mapFrame(frame: string): string {
    const base = this.#cwd.endsWith("/") ? this.#cwd : `${this.#cwd}/`;
    if (this.applySourceMaps) frame = this.#mapPositions(frame);
    return this.#mapUrls(frame).replace(new RegExp(`(?<=^at |\\()${escapeRegExp(base)}`), "");
  }

  #mapPositions(frame: string): string {
    for (const m of this.#mapped) {
      for (const form of m.forms) {
        const at = frame.indexOf(`${form}:`);
        if (at < 0) continue;
        const tail = /^:(\d+):(\d+)/.exec(frame.slice(at + form.length));
        if (!tail) continue;
        if (typeof m.lines === "string") m.lines = decodeMappings(m.lines);
        const pos = originalPosition(m.lines, Number(tail[1]), Number(tail[2]));
        if (!pos) continue;
        return frame.slice(0, at + form.length) + `:${pos.line}:${pos.column}` +
          frame.slice(at + form.length + tail[0].length);
      }
    }
    return frame;
  }

  #mapUrls(text: string): string {
    let out = text;
    if (out.includes("data:")) {
      for (const [url, info] of this.#byUrl) if (url.startsWith("data:")) out = out.split(url).join(info.display);
      for (const [short, info] of this.#abbreviated) out = out.split(short).join(info.display);
    }
    return out.replace(/file:\/\/[^\s)"'`]+/g, (url) => {
      const m = /^(.*?)((?::\d+){0,2})$/.exec(url)!;
      return this.display(m[1]!) + m[2]!;
    });
  }
}

/** One segment of a source map line: generated column, source line, source column (0-based). */
export type Segment = readonly [number, number, number];

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * Decodes a source map's `mappings` into segments per generated line (pure).
 * @param json The source map (version 3) as JSON.
 */
export function decodeMappings(json: string): Segment[][] {
  const { mappings } = JSON.parse(json) as { mappings: string };
  const lines: Segment[][] = [];
  let srcLine = 0, srcCol = 0;
  for (const line of mappings.split(";")) {
    const segs: Segment[] = [];
    let genCol = 0;
    for (const seg of line.split(",")) {
      if (!seg) continue;
      const v: number[] = [];
      let value = 0, shift = 0;
      for (const ch of seg) {
        const digit = B64.indexOf(ch);
        value += (digit & 31) << shift;
        if (digit & 32) {
          shift += 5;
        } else {
          v.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = shift = 0;
        }
      }
      genCol += v[0] ?? 0;
      if (v.length < 4) continue;
      srcLine += v[2]!;
      srcCol += v[3]!;
      segs.push([genCol, srcLine, srcCol]);
    }
    lines.push(segs);
  }
  return lines;
}

/**
 * The source position of a generated one, from decoded mappings (pure).
 * @param lines From {@link decodeMappings}.
 * @param line 1-based generated line.
 * @param column 1-based generated column.
 * @returns 1-based source line and column, or undefined when the line has no mapping.
 */
export function originalPosition(
  lines: readonly Segment[][],
  line: number,
  column: number,
): { line: number; column: number } | undefined {
  const segs = lines[line - 1];
  if (!segs?.length) return undefined;
  let best = segs[0]!;
  for (const seg of segs) if (seg[0] <= column - 1) best = seg;
  return { line: best[1] + 1, column: best[2] + 1 + Math.max(0, column - 1 - best[0]) };
}

/** Options for {@link formatError}. */
export interface FormatErrorOptions {
  /** True: keep every frame (HAKO_DEBUG); false: only frames outside hako and the runtime. */
  readonly full?: boolean;
  /** URL prefixes of hako's own modules, whose frames are hidden unless `full`. */
  readonly internal?: readonly string[];
}

const RUNTIME_FRAME = /\((?:ext|node):|\bat (?:ext|node):|\(native\)|\bat native\b|\(<anonymous>\)/;

/**
 * Formats an uncaught error the way `hako run` reports it.
 * @param error What was thrown.
 * @param table The run's modules, to name them.
 * @param options Which frames to keep.
 * @returns `error: <message>` and the frames, one per line, with a final newline.
 */
export function formatError(error: unknown, table: ModuleTable, options: FormatErrorOptions = {}): string {
  const lines: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined; depth++) {
    lines.push(...describe(current, table, options, depth === 0 ? "error: " : "caused by: "));
    current = current instanceof Error ? current.cause : undefined;
  }
  return `${lines.join("\n")}\n`;
}

function describe(error: unknown, table: ModuleTable, options: FormatErrorOptions, prefix: string): string[] {
  if (!(error instanceof Error)) return [`${prefix}${table.mapText(plain(stringify(error)))}`];
  const message = table.mapText(plain(error.message));
  // The name says nothing for a plain Error, nor when the message starts with one (Deno's
  // "TypeError: SyntaxError: …") or with a location (a TranspileError).
  const quiet = error.name === "Error" || error.name === "TranspileError" || /^\w*Error: /.test(message);
  const head = `${prefix}${quiet || !error.name ? "" : `${error.name}: `}${message}`;
  const frames = plain(error.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l));
  const internal = options.internal ?? [];
  const kept = options.full
    ? frames
    : frames.filter((l) => !RUNTIME_FRAME.test(l) && !internal.some((prefix) => l.includes(prefix)));
  const shown = kept.map((l) => `    ${table.mapFrame(l.trim())}`).filter((l) => !message.includes(l.trim()));
  return [head, ...shown];
}

/** Text without terminal colours (Deno colours some messages even when stderr is not a terminal). */
export function plain(text: string): string {
  return text.replace(ANSI, "");
}
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}

function stringify(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
