/**
 * Pure formatting for the lifecycle commands: tables, durations, sizes, `--each` ranges.
 * @module
 */
import { UsageError } from "./_args.ts";

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
