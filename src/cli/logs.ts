/**
 * `hako logs NAME [-f] [-n N]`.
 * @module
 */
import { parseArgs, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako logs [-f] [-n N] <name>

Prints what a daemonized container wrote to stdout and stderr (kept by hako in <state dir>/
containers/<name>/log, cut to log.1 past HAKO_LOG_MAX bytes).

Options:
  -f, --follow     Keep printing what it writes, until it ends (or Ctrl-C)
  -n, --tail <N>   Only the last N lines
  -h, --help       Show this help
`;

/** Parses `hako logs`'s arguments (pure). @throws {UsageError} For a missing name or a bad count. */
export function parseLogsArgs(
  argv: readonly string[],
): { help: boolean; name?: string; follow: boolean; tail?: number } {
  const { values, positionals } = parseArgs(argv, {
    follow: { type: "boolean", short: "f" },
    tail: { type: "string", short: "n" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, follow: false };
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length ? "one container name only" : "a container name is required");
  }
  const tail = values.tail as string | undefined;
  if (tail !== undefined && !/^\d+$/.test(tail)) throw new UsageError(`--tail wants a number of lines, not "${tail}"`);
  return {
    help: false,
    name: positionals[0]!,
    follow: values.follow === true,
    ...(tail ? { tail: Number(tail) } : {}),
  };
}

/** The last `n` lines of `text` (pure). */
export function lastLines(text: string, n: number): string {
  if (n === 0) return "";
  const lines = text.split("\n");
  const end = text.endsWith("\n") ? lines.length - 1 : lines.length;
  return lines.slice(Math.max(0, end - n), end).join("\n") + (text.endsWith("\n") ? "\n" : "");
}

/** Runs `hako logs`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseLogsArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { openSync, readSync, closeSync, fstatSync, readFileSync } = await import("node:fs");
  const { StateStore, isRunning } = await import("../container/state.ts");
  const store = new StateStore();
  store.read(a.name!); // "no container named …"
  const path = store.logPath(a.name!);
  const readText = (p: string) => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return "";
    }
  };
  let text = readText(`${path}.1`) + readText(path);
  if (a.tail !== undefined) text = lastLines(text, a.tail);
  h.stdout(text);
  if (!a.follow) return 0;
  // Follow: print what is appended; start over when the file was cut (copy-truncate).
  let offset = new TextEncoder().encode(readText(path)).length;
  const buf = new Uint8Array(64 * 1024);
  const decoder = new TextDecoder();
  for (;;) {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch {
      return 0; // deleted
    }
    try {
      const size = fstatSync(fd).size;
      if (size < offset) offset = 0;
      while (offset < size) {
        const n = readSync(fd, buf, 0, buf.length, offset);
        if (n <= 0) break;
        offset += n;
        h.stdout(decoder.decode(buf.subarray(0, n), { stream: true }));
      }
    } finally {
      closeSync(fd);
    }
    const r = store.tryRead(a.name!);
    if (!r || r.state === "exited" || (r.state === "running" && !isRunning(r.init))) {
      if (fstatSafe(path, openSync, fstatSync, closeSync) <= offset) return 0;
      continue;
    }
    await new Promise((res) => setTimeout(res, 200));
  }
}

function fstatSafe(
  path: string,
  open: (p: string, f: string) => number,
  fstat: (fd: number) => { size: number },
  close: (fd: number) => void,
): number {
  try {
    const fd = open(path, "r");
    try {
      return fstat(fd).size;
    } finally {
      close(fd);
    }
  } catch {
    return 0;
  }
}
