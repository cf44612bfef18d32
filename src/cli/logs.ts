/**
 * `hako logs NAME [-f] [-n N] [--raw]`.
 *
 * A container's output is anyone's text: on a terminal, its control characters could move the
 * cursor, rewrite what was printed, retitle the window or set the clipboard (OSC 52). So when
 * stdout is a terminal, every control character but newline and tab (and a carriage return right
 * before a newline) is shown escaped, C-style, as journalctl's `--all` output and systemd's
 * `cescape()` do: `\x1b`, `\a`, `\b`, `\r`…, and the C1 controls U+0080–U+009F as `\u009b`.
 * Backslashes are left as they are (the view is for reading; `--raw` gives the exact bytes). When
 * stdout is not a terminal (a pipe, a file) the bytes pass unchanged, as `docker logs` does.
 * @module
 */
import { nonEmpty, parseArgs, quoted, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako logs [-f] [-n N] [--raw] <name>

Prints what a daemonized container wrote to stdout and stderr (kept by hako in <state dir>/
containers/<name>/log, cut to log.1 past HAKO_LOG_MAX bytes). On a terminal, control characters
(escape sequences, carriage returns, bells…) are shown escaped (\\x1b, \\r, \\a…) so that the
container cannot drive the terminal; through a pipe or into a file the bytes are unchanged.

Options:
  -f, --follow     Keep printing what it writes, until it ends (or Ctrl-C)
  -n, --tail <N>   Only the last N lines
      --raw        Print the bytes unchanged, even on a terminal
  -h, --help       Show this help
`;

/** Parses `hako logs`'s arguments (pure). @throws {UsageError} For a missing name or a bad count. */
export function parseLogsArgs(
  argv: readonly string[],
): { help: boolean; name?: string; follow: boolean; tail?: number; raw: boolean } {
  const { values, positionals } = parseArgs(argv, {
    follow: { type: "boolean", short: "f" },
    tail: { type: "string", short: "n" },
    raw: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, follow: false, raw: false };
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length ? "one container name only" : "a container name is required");
  }
  const tail = stringOption(values, "tail");
  if (tail !== undefined && (!/^\d+$/.test(tail) || !Number.isSafeInteger(Number(tail)))) {
    throw new UsageError(`--tail wants a number of lines, not ${quoted(tail)}`);
  }
  return {
    help: false,
    name: nonEmpty(positionals[0]!, "the container name"),
    follow: values.follow === true,
    raw: values.raw === true,
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

/** The start of the last `n` lines of `bytes` (pure; the byte offset, 0 for all of it). */
export function lastLinesStart(bytes: Uint8Array, n: number): number {
  if (n === 0) return bytes.length;
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  for (let i = end - 1, seen = 0; i >= 0; i--) {
    if (bytes[i] === 0x0a && ++seen === n) return i + 1;
  }
  return 0;
}

const NAMED: Readonly<Record<string, string>> = {
  "\x07": "\\a",
  "\b": "\\b",
  "\v": "\\v",
  "\f": "\\f",
  "\r": "\\r",
};

/** Every C0 control but tab and newline, a CR not followed by LF, DEL, and the C1 controls. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROLS = /\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;

/**
 * `text` with its control characters shown escaped, for a terminal (pure): `\x1b` for ESC (so
 * no CSI, OSC — OSC 52 clipboard writes included —, DCS or other sequence reaches the terminal),
 * `\a` `\b` `\v` `\f` `\r` for those, `\xHH` for the other C0 controls and DEL, `\u00HH` for the C1
 * controls (U+0080–U+009F, which some terminals obey as 8-bit CSI, OSC…). Tab, newline and a CR
 * right before a newline are kept; everything else, backslashes included, is unchanged.
 */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    const hex = code.toString(16).padStart(2, "0");
    return code >= 0x80 ? `\\u00${hex}` : `\\x${hex}`;
  });
}

/**
 * {@link escapeControls} for a stream in pieces (`hako logs -f`): a CR that ends a piece waits
 * for the next, to see whether a newline follows.
 */
export class TerminalEscaper {
  #held = "";

  /** Escapes a piece; returns what can be printed now. */
  push(text: string): string {
    let s = this.#held + text;
    this.#held = "";
    if (s.endsWith("\r")) {
      this.#held = "\r";
      s = s.slice(0, -1);
    }
    return escapeControls(s);
  }

  /** What is still held at the end of the stream. */
  end(): string {
    const held = this.#held;
    this.#held = "";
    return escapeControls(held);
  }
}

/** Runs `hako logs`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseLogsArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { openSync, readSync, closeSync, fstatSync, writeSync } = await import("node:fs");
  const { isatty } = await import("node:tty");
  const { ContainerStateError, StateStore, isRunning } = await import("../container/state.ts");
  const store = new StateStore();
  // A container whose record is damaged still has its log.
  if (store.inspect(a.name!).kind === "none") throw new ContainerStateError(`no container named ${a.name}`);
  const path = store.logPath(a.name!);

  // On a terminal: decoded (UTF-8, a bad byte shown as U+FFFD) and escaped; otherwise the bytes.
  const escaper = !a.raw && isatty(1) ? new TerminalEscaper() : undefined;
  const decoder = new TextDecoder();
  const print = (bytes: Uint8Array) => {
    if (escaper) {
      h.stdout(escaper.push(decoder.decode(bytes, { stream: true })));
      return;
    }
    for (let done = 0; done < bytes.length;) done += writeSync(1, bytes, done, bytes.length - done);
  };
  const finish = () => {
    if (escaper) h.stdout(escaper.push(decoder.decode()) + escaper.end());
    return 0;
  };
  /** Reads `p` from `from` to its end now; the bytes (none when it is gone). */
  const readFrom = (p: string, from: number): Uint8Array => {
    let fd: number;
    try {
      fd = openSync(p, "r");
    } catch {
      return new Uint8Array(0);
    }
    try {
      const size = fstatSync(fd).size;
      const buf = new Uint8Array(Math.max(0, size - from));
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, from + got);
        if (n <= 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    } finally {
      closeSync(fd);
    }
  };

  const older = readFrom(`${path}.1`, 0);
  const current = readFrom(path, 0);
  let offset = current.length; // -f goes on from what was read, not from a second look
  const all = new Uint8Array(older.length + current.length);
  all.set(older);
  all.set(current, older.length);
  print(a.tail === undefined ? all : all.subarray(lastLinesStart(all, a.tail)));
  if (!a.follow) return finish();
  // Follow: print what is appended; start over when the file was cut (copy-truncate).
  for (;;) {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch {
      return finish(); // deleted
    }
    let size: number;
    try {
      size = fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
    if (size < offset) offset = 0;
    if (size > offset) {
      const more = readFrom(path, offset);
      offset += more.length;
      print(more);
    }
    const found = store.inspect(a.name!);
    const r = found.kind === "ok" ? found.record : undefined;
    // A damaged record: followed while processes are in its cgroup.
    const ended = found.kind === "damaged"
      ? (await import("../container/lifecycle.ts")).kernelView(a.name!, found.salvage, store).procs.length === 0
      : !r || r.state === "exited" || (r.state === "running" && !isRunning(r.init));
    if (ended) {
      const last = readFrom(path, offset);
      if (last.length === 0) return finish();
      continue;
    }
    await new Promise((res) => setTimeout(res, 200));
  }
}
