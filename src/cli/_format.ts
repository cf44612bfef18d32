/**
 * Pure formatting for the lifecycle commands: tables, durations, sizes, `--each` ranges.
 * @module
 */
import { quoted, UsageError } from "./_args.ts";

/** Lays out rows under a header, columns padded to their widest cell (the last one is not padded). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** `42s`, `3m12s`, `5h03m`, `2d04h`. */
export function duration(seconds: number | null): string {
  if (seconds === null) return "-";
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, "0")}h`;
}

/** `512B`, `1.5K`, `23.4M`, `1.2G`. */
export function bytes(n: number | null): string {
  if (n === null) return "-";
  const units = ["B", "K", "M", "G", "T"];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) v /= 1024, u++;
  return u === 0 ? `${v}B` : `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[u]}`;
}

/**
 * Parses `--each VAR=A..B` (an inclusive integer range) or `VAR=a,b,c` (pure).
 * @returns The variable and its values.
 * @throws {UsageError} For anything else.
 */
export function parseEach(text: string): { name: string; values: string[] } {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(text);
  if (!m) throw new UsageError(`--each wants VAR=FIRST..LAST or VAR=a,b,c, not "${text}"`);
  const [, name, spec] = m as unknown as [string, string, string];
  const range = /^(-?\d+)\.\.(-?\d+)$/.exec(spec);
  if (range) {
    const a = Number(range[1]), b = Number(range[2]);
    if (b < a) throw new UsageError(`--each ${text}: the range is empty (${a} > ${b})`);
    if (b - a >= 10_000) throw new UsageError(`--each ${text}: at most 10000 values`);
    return { name, values: Array.from({ length: b - a + 1 }, (_, i) => String(a + i)) };
  }
  const values = spec.split(",").filter((v) => v !== "");
  if (values.length === 0) throw new UsageError(`--each ${text}: no values`);
  return { name, values };
}

/** A progress bar line: `[#####.....]  37/100  web-10037` (pure). */
export function progressLine(done: number, total: number, label: string, width = 30): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${
    String(done).padStart(String(total).length)
  }/${total}  ${label}`;
}

/**
 * docker's `--format` (pure), the cheap part of its Go templates: `json` (one JSON object a line),
 * `table` (the default table), or a template whose `{{.Field}}` (`{{.Field.Sub}}`) are replaced
 * by a row's fields, `{{json .}}`/`{{json .Field}}` by JSON, with `\t` and `\n` written as tab and
 * newline (docker's formatter does the same), and a leading `table ` printing the fields' headers
 * above the rows, laid out as a table. Anything else in `{{…}}` is refused when parsed.
 */
export interface OutputFormat {
  /** `table` (the command's own table), `json` (JSON lines), or `template`. */
  readonly kind: "table" | "json" | "template";
  /** The template, without `table ` and with `\t`/`\n` replaced (kind `template`). */
  readonly template?: string;
  /** `table {{…}}`: a header line and columns (kind `template`). */
  readonly withHeader?: boolean;
}

const ACTION = /\{\{\s*(.*?)\s*\}\}/g;
const FIELD_PATH = /^\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/**
 * Parses a `--format` value (pure).
 * @param value What was given (undefined: the table).
 * @throws {UsageError} For an action hako does not do (`{{range …}}`, a function other than json).
 */
export function parseFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === "" || value === "table") return { kind: "table" };
  if (value === "json") return { kind: "json" };
  let t = value, withHeader = false;
  if (t.startsWith("table ") || t.startsWith("table\t")) [t, withHeader] = [t.slice(6), true];
  t = t.trim().replaceAll("\\t", "\t").replaceAll("\\n", "\n");
  for (const [, action] of t.matchAll(ACTION)) {
    const a = action!;
    if (a === "." || FIELD_PATH.test(a) || a === "json ." || /^json\s+\.[A-Za-z_][\w.]*$/.test(a)) continue;
    throw new UsageError(
      `--format: hako's templates take {{.Field}}, {{json .}} and {{json .Field}}, not ${quoted(`{{${a}}}`)}`,
    );
  }
  if (!t.includes("{{")) {
    throw new UsageError(`--format takes table, json or a template with {{.Field}}, not ${quoted(value)}`);
  }
  return { kind: "template", template: t, withHeader };
}

/** A field of `row` by its path (`.State.Status`), or undefined when it has none. */
function fieldAt(row: unknown, path: string): { found: boolean; value?: unknown } {
  let v: unknown = row;
  for (const key of path.split(".").filter(Boolean)) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, key)) return { found: false };
    v = (v as Record<string, unknown>)[key];
  }
  return { found: true, value: v };
}

/** A value as a Go template prints it: strings as they are, `<no value>` for null, objects as JSON. */
function shown(v: unknown): string {
  if (v === null || v === undefined) return "<no value>";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/**
 * Prints rows with a parsed `--format` (pure): JSON lines, or the template once per row (each
 * followed by a newline); with `table `, under a header made of each field's name in `headers`
 * (else the field's name in capitals), in aligned columns.
 * @param f The format (not `table`: the command prints its own).
 * @param rows The rows (docker's field names).
 * @param headers Column headers by field name (`{ CPUPerc: "CPU %" }`).
 * @throws {UsageError} For a field a row does not have (docker: "can't evaluate field").
 */
export function formatRows(
  f: OutputFormat,
  rows: readonly unknown[],
  headers: Readonly<Record<string, string>> = {},
): string {
  if (f.kind === "json") return rows.map((r) => `${JSON.stringify(r)}\n`).join("");
  const t = f.template ?? "";
  const render = (row: unknown) =>
    t.replace(ACTION, (_, action: string) => {
      if (action === ".") return shown(row);
      const json = action.startsWith("json");
      const path = json ? action.slice(4).trim() : action;
      if (path === ".") return JSON.stringify(row);
      const got = fieldAt(row, path);
      if (!got.found) throw new UsageError(`--format: can't evaluate field ${path.slice(1)}`);
      return json ? JSON.stringify(got.value ?? null) : shown(got.value);
    });
  if (!f.withHeader) return rows.map((r) => `${render(r)}\n`).join("");
  const header = t.replace(ACTION, (_, action: string) => {
    const last = action.split(/[\s.]/).filter(Boolean).at(-1) ?? "";
    return headers[last] ?? last.toUpperCase();
  });
  const split = (line: string) => line.split("\t");
  return table(split(header), rows.map((r) => split(render(r))));
}

/** Bytes in docker's binary units, as `docker stats`' memory column (pure): `1.5MiB`, `7.63GiB`, `0B`. */
export function binarySize(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) v /= 1024, u++;
  return `${u === 0 ? v : Number(v.toPrecision(3))}${units[u]}`;
}

/** Bytes in docker's decimal units, as `docker stats`' network and block I/O columns (pure): `1.2MB`, `0B`. */
export function decimalSize(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let v = n, u = 0;
  while (v >= 1000 && u < units.length - 1) v /= 1000, u++;
  return `${u === 0 ? v : Number(v.toPrecision(3))}${units[u]}`;
}
