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
export const usage = `Usage: hako logs [-f] [-n N] [-t] [--since T] [--until T] [--raw] <name>

Prints what a daemonized container wrote: its stdout on stdout, its stderr on stderr (as docker
logs), in the order written (kept by hako in <state dir>/containers/<name>/log and log.err, each
cut to .1 past HAKO_LOG_MAX bytes, with the time each line was written).
On a terminal, control characters (escape sequences, carriage returns, bells…) are shown escaped
(\\x1b, \\r, \\a…) so that the container cannot drive the terminal; through a pipe or into a file
the bytes are unchanged.

Options:
  -f, --follow       Keep printing what it writes, until it ends (or Ctrl-C)
  -n, --tail <N>     Only the last N lines of both (read from the end: a big log is never read whole)
  -t, --timestamps   Start each line with the time it was written (RFC 3339, UTC, nanoseconds:
                     2006-01-02T15:04:05.000000000Z, as docker logs -t)
      --since <T>    Only lines written at or after T: RFC 3339 (2026-12-03T16:00:00Z, with or
                     without seconds, fraction and zone: local time without one), a date
                     (2026-12-03), a Unix time (1764777600[.5]) or a duration before now (10m,
                     1h30m, 45s: Go's syntax), as docker logs --since
      --until <T>    Only lines written at or before T (the same forms); with -f, stop there
      --raw          Print the bytes unchanged, even on a terminal
  -h, --help         Show this help
`;

/** A duration in Go's syntax (`10m`, `1h30m`, `1.5h`, `300ms`), in ms; undefined when it is not one (pure). */
export function goDuration(text: string): number | undefined {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) return undefined;
  return parts.reduce((ms, p) => ms + Number(p[1]) * unit[p[2]!]!, 0);
}

/**
 * A `--since`/`--until` value as a log timestamp (`2006-01-02T15:04:05.000000000Z`, UTC, nine
 * digits), which the log's own compare with as text (pure). The forms are docker's (its
 * `timetypes.GetTimestamp`): RFC 3339 with or without seconds, fraction and zone (local time
 * without one), a date, a Unix time in seconds with an optional fraction, or a Go duration counted
 * back from `nowMs`.
 * @throws {UsageError} For anything else.
 */
export function logTime(text: string, nowMs: number, option = "--since"): string {
  const stamp = (ms: number, nanos?: string) => {
    // (a duration or Unix time past what a Date holds, ±8.64e15 ms, would throw a RangeError)
    if (!(Math.abs(ms) <= 8.64e15)) throw new UsageError(`${option} ${quoted(text)} is out of range`);
    const iso = new Date(ms).toISOString(); // 2006-01-02T15:04:05.000Z
    return `${iso.slice(0, 19)}.${(nanos ?? iso.slice(20, 23)).padEnd(9, "0").slice(0, 9)}Z`;
  };
  const d = goDuration(text);
  if (d !== undefined) return stamp(nowMs - d);
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(text);
  if (unix) return stamp(Number(unix[1]) * 1000, unix[2] ?? "0");
  const m = /^(\d{4}-\d\d-\d\d)(?:T(\d\d:\d\d)(:\d\d)?(?:\.(\d{1,9}))?)?(Z|[+-]\d\d:\d\d)?$/.exec(text);
  if (m) {
    const [, date, hm, sec, frac, zone] = m;
    const ms = Date.parse(`${date}T${hm ?? "00:00"}${sec ?? ":00"}${zone ?? ""}`);
    if (!Number.isNaN(ms)) return stamp(ms, frac ?? "0");
  }
  throw new UsageError(
    `${option} wants a time (RFC 3339, a date, a Unix time) or a duration such as 10m, not ${quoted(text)}`,
  );
}

/** Parses `hako logs`'s arguments (pure but for the clock). @throws {UsageError} For a missing name or a bad count. */
export function parseLogsArgs(
  argv: readonly string[],
  nowMs: number = Date.now(),
): {
  help: boolean;
  name?: string;
  follow: boolean;
  tail?: number;
  raw: boolean;
  timestamps: boolean;
  since?: string;
  until?: string;
} {
  const { values, positionals } = parseArgs(argv, {
    since: { type: "string" },
    until: { type: "string" },
    follow: { type: "boolean", short: "f" },
    tail: { type: "string", short: "n" },
    raw: { type: "boolean" },
    timestamps: { type: "boolean", short: "t" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, follow: false, raw: false, timestamps: false };
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length ? "one container name only" : "a container name is required");
  }
  const tail = stringOption(values, "tail");
  if (tail !== undefined && (!/^\d+$/.test(tail) || !Number.isSafeInteger(Number(tail)))) {
    throw new UsageError(`--tail wants a number of lines, not ${quoted(tail)}`);
  }
  const since = stringOption(values, "since"), until = stringOption(values, "until");
  return {
    help: false,
    ...(since !== undefined ? { since: logTime(since, nowMs, "--since") } : {}),
    ...(until !== undefined ? { until: logTime(until, nowMs, "--until") } : {}),
    name: nonEmpty(positionals[0]!, "the container name"),
    follow: values.follow === true,
    raw: values.raw === true,
    timestamps: values.timestamps === true,
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

/** One part of a log, open for reading. */
interface OpenPart {
  readonly fd: number;
  /** Its size when opened (what -n counts back from). */
  readonly size: number;
}

/**
 * A piece of a line of one stream, to print: `stamp` is its line's timestamp (the 30 characters
 * before the space; "" in a log without them), what the two streams are merged by.
 */
interface Piece {
  readonly stamp: string;
  /** Whether it begins its line (what -n counts). */
  readonly starts: boolean;
  readonly bytes: Uint8Array;
}

/**
 * Merges two streams' pieces, each in its order, by their lines' timestamps (pure): a stream's
 * pieces stay in their order; at a tie stdout's go first. What `docker logs` does with its
 * json-file log's two streams.
 */
export function mergeByStamp<T extends { readonly stamp: string }>(a: readonly T[], b: readonly T[]): T[] {
  const out: T[] = [];
  let i = 0, j = 0;
  while (i < a.length && j < b.length) out.push(b[j]!.stamp < a[i]!.stamp ? b[j++]! : a[i++]!);
  return out.concat(a.slice(i), b.slice(j));
}

/** How often `hako logs -f` looks at the log without being woken, in ms (`HAKO_LOG_FOLLOW_TICK_MS`, 100 by default). */
export function followTickMs(value: string | undefined): number {
  const n = Number(value);
  return value !== undefined && /^\d+$/.test(value) && n > 0 ? n : 100;
}

/**
 * Wakes `hako logs -f` when a log it follows grows (inotify through `node:fs`'s `watch`, on Deno
 * and Bun alike). Each log file is watched, not the container's directory: under Deno a directory
 * watch saw the supervisor's FIFOs there, and its watcher thread hung in open() on one, holding the
 * process at its exit. A cut (the file renamed `.1`, a new one made) is seen at the next look, which
 * watches the new file ({@link rearm}). docker's `logs -f` likewise wakes on its json-file log's
 * inotify events (its `followLogs` with fsnotify) and keeps a poll where inotify is missing; here a
 * tick (`HAKO_LOG_FOLLOW_TICK_MS`) stays as the fallback, so nothing is missed when an event is lost,
 * a file is not there yet, or the relay ends (no event). Nothing runs between events but the tick.
 */
export class FollowWaker {
  #fired = false;
  #wake: (() => void) | undefined;
  readonly #files: Map<string, { ino: number; watcher: { close(): void } } | undefined>;
  readonly #watch: typeof import("node:fs").watch;
  readonly #stat: typeof import("node:fs").statSync;

  /** @param files The log files to watch (one not there yet is watched once it is). */
  constructor(files: readonly string[], fs: Pick<typeof import("node:fs"), "watch" | "statSync">) {
    this.#files = new Map(files.map((f) => [f, undefined]));
    this.#watch = fs.watch;
    this.#stat = fs.statSync;
    this.rearm();
  }

  /** Watches each file's current inode (after a cut, the new file): called before each look. */
  rearm(): void {
    for (const [file, now] of this.#files) {
      let ino: number | undefined;
      try {
        ino = this.#stat(file).ino;
      } catch { /* not there (yet, or any more) */ }
      if (now && now.ino === ino) continue;
      now?.watcher.close();
      this.#files.set(file, undefined);
      if (ino === undefined) continue;
      try {
        const w = this.#watch(file, () => this.#fire());
        w.on("error", () => {});
        this.#files.set(file, { ino, watcher: w });
        // (made between the stat and the watch: the look that follows reads it)
      } catch { /* the tick alone */ }
    }
  }

  #fire(): void {
    this.#fired = true;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Forgets the events so far: called before a look, which sees what they announced. */
  taken(): void {
    this.#fired = false;
  }

  /** Resolves at the next event (at once if one came since {@link taken}), or after `ms`. */
  wait(ms: number): Promise<void> {
    if (this.#fired) return Promise.resolve();
    return new Promise((resolve) => {
      const tick = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(tick);
        resolve();
      };
    });
  }

  /** Stops watching (idempotent). */
  close(): void {
    for (const [file, now] of this.#files) {
      try {
        now?.watcher.close();
      } catch { /* gone */ }
      this.#files.set(file, undefined);
    }
    this.#wake?.();
    this.#wake = undefined;
  }
}

/** Runs `hako logs`. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    return await logs(argv);
  } catch (e) {
    // The reader went away (`hako logs NAME | head`): done, quietly.
    const err = e as { code?: unknown; name?: unknown };
    if (err?.code === "EPIPE" || err?.name === "BrokenPipe") return 0;
    throw e;
  }
}

async function logs(argv: readonly string[]): Promise<number> {
  const a = parseLogsArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { openSync, readSync, closeSync, fstatSync, statSync, writeSync, existsSync, watch, constants } = await import(
    "node:fs"
  );
  const { env } = await import("node:process");
  const { isatty } = await import("node:tty");
  const { ContainerStateError, StateStore, isRunning } = await import("../container/state.ts");
  const { StampFilter, tailStart, settledSize, isStamp, BLOCK_BYTES, STAMP_BYTES } = await import(
    "../supervisor/log_format.ts"
  );
  const { recordedRelay, relayRuns, streamPaths } = await import("../supervisor/container_log.ts");
  const store = new StateStore();
  const name = a.name!;
  // A container whose record is damaged still has its log.
  if (store.inspect(name).kind === "none") throw new ContainerStateError(`no container named ${name}`);
  // A log its relay wrote has a timestamp on every line; one the container appended itself has none.
  const stamped = recordedRelay(store, name) !== undefined;
  if (a.timestamps && !stamped) {
    h.stderr(`hako logs: ${name}'s log has no timestamps (it was written without hako's log relay)\n`);
  }
  const bounded = a.since !== undefined || a.until !== undefined;
  if (bounded && !stamped) {
    h.stderr(
      `hako logs: ${name}'s log has no timestamps (it was written without hako's log relay): --since and --until cannot choose its lines\n`,
    );
    return 1;
  }
  // The timestamps are fixed-width UTC: compared as text (the stamp has no space: 30 characters).
  const since = a.since?.slice(0, 30), until = a.until?.slice(0, 30);
  const select = bounded
    ? { select: (s: string) => (since === undefined || s >= since) && (until === undefined || s <= until) }
    : {};

  /** Prints to fd 1 or 2: on a terminal decoded (UTF-8, a bad byte shown as U+FFFD) and escaped; otherwise the bytes. */
  const printer = (fd: 1 | 2) => {
    const escaper = !a.raw && isatty(fd) ? new TerminalEscaper() : undefined;
    const decoder = new TextDecoder();
    const write = (text: string) => fd === 1 ? h.stdout(text) : h.stderr(text);
    return {
      print(bytes: Uint8Array) {
        if (bytes.length === 0) return;
        if (escaper) return write(escaper.push(decoder.decode(bytes, { stream: true })));
        for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
      },
      finish() {
        if (escaper) write(escaper.push(decoder.decode()) + escaper.end());
      },
    };
  };

  const latin1 = new TextDecoder("latin1");
  /** Where the pieces of a line not yet ended begin, at the end of `pieces`. */
  const endedAt = (pieces: readonly Piece[]) => {
    let ended = pieces.length;
    while (ended > 0 && pieces[ended - 1]!.bytes.at(-1) !== 0x0a) ended--;
    return ended;
  };
  const inodeOf = (p: string) => {
    try {
      return statSync(p).ino;
    } catch {
      return undefined;
    }
  };

  /**
   * One stream's log (`log` or `log.err`, and its older part), read in blocks into pieces of lines.
   * The stamps are kept by the filter and taken off here (unless -t) once they are known: they
   * order the two streams.
   */
  class StreamLog {
    readonly path: string;
    readonly #filter = new StampFilter({ stamped, keep: stamped, ...select });
    readonly #block = new Uint8Array(BLOCK_BYTES);
    #lineStart = true;
    #stamp = "";
    parts: OpenPart[] = [];
    /** The part followed (-f), and where in it. */
    current: OpenPart | undefined;
    offset = 0;
    /** What is still to read without -f: part index, offset, end. */
    #at = { part: 0, offset: 0 };

    constructor(path: string) {
      this.path = path;
    }

    readAt(fd: number, position: number, length: number): Uint8Array {
      const n = readSync(fd, this.#block, 0, Math.min(length, this.#block.length), position);
      return this.#block.subarray(0, n);
    }

    tryOpen(p: string): OpenPart | undefined {
      let fd: number;
      // Never through a symlink, never blocking on a FIFO: a log that is neither a regular file nor
      // missing was put there by someone else (docker's json-file reader would follow it; hako
      // reads as root only the regular files its relay writes).
      const notRegular = () =>
        new ContainerStateError(`${p} is not a regular file (hako logs follows no symlink, reads no FIFO)`);
      try {
        fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch (e) {
        if ((e as { code?: string }).code === "ELOOP") throw notRegular();
        return undefined;
      }
      const st = fstatSync(fd);
      if (!st.isFile()) {
        closeSync(fd);
        throw notRegular();
      }
      const size = st.size;
      if (!stamped) return { fd, size };
      const tailBytes = Math.min(size, STAMP_BYTES + 1);
      return { fd, size: settledSize(this.readAt(fd, size - tailBytes, tailBytes), size) };
    }

    /**
     * The filter's output as pieces of lines: views of one copy of it (the block is read into
     * again), a line's stamp and its bytes one after the other with -t.
     */
    pieces(filtered: Uint8Array, into: Piece[]): void {
      const out = filtered.slice();
      let i = 0;
      while (i < out.length) {
        let starts = false, from = i;
        if (this.#lineStart) {
          starts = true;
          // (-f -n 0 starts where the log ends, which may be inside a line — a shell's prompt —:
          // that first piece has no stamp)
          if (stamped && isStamp(out, i)) {
            // The filter gives a line's stamp whole, before its first byte.
            this.#stamp = latin1.decode(out.subarray(i, i + STAMP_BYTES - 1));
            i += STAMP_BYTES;
            if (!a.timestamps) from = i;
          }
          this.#lineStart = false;
        }
        const nl = out.indexOf(0x0a, i);
        const end = nl === -1 ? out.length : nl + 1;
        into.push({ stamp: this.#stamp, starts, bytes: out.subarray(from, end) });
        i = end;
        if (nl !== -1) this.#lineStart = true;
      }
    }

    /** Reads part `fd` from `from` to `until` (or its end now) into pieces; returns where it stopped. */
    readFrom(fd: number, from: number, into: Piece[], until = Infinity): number {
      let at = from;
      for (;;) {
        const got = this.readAt(fd, at, Math.min(BLOCK_BYTES, until - at));
        if (got.length === 0) return at;
        at += got.length;
        this.pieces(this.#filter.push(got), into);
      }
    }

    /**
     * Opens its parts, the older first. log.1 is opened before log; a cut between the two opens
     * (log.1 is then another file) would skip the part in between: they are opened again, a few
     * times at most (a relay cuts at most every HAKO_LOG_MAX bytes).
     */
    open(): void {
      const inode = inodeOf;
      for (let attempt = 0;; attempt++) {
        const older = this.tryOpen(`${this.path}.1`);
        const newer = this.tryOpen(this.path);
        this.parts = [older, newer].filter((p): p is OpenPart => p !== undefined);
        const cut = inode(`${this.path}.1`) !== (older ? fstatSync(older.fd).ino : undefined);
        if (!cut) break;
        if (attempt === 50) {
          // Cut again and again while it was opened (a flood under a small cap): the two are not one
          // after the other, so only the newer is read, as a part alone.
          if (older && newer) closeSync(older.fd), this.parts = [newer];
          break;
        }
        for (const p of this.parts) closeSync(p.fd);
      }
      this.#at = a.tail === undefined || this.parts.length === 0
        ? { part: 0, offset: 0 }
        : tailStart(this.parts.map((p) => p.size), a.tail, (i, pos, len) => this.readAt(this.parts[i]!.fd, pos, len));
      // The first part read may start with the end of a line cut from the part before it: left out.
      this.#filter.startPart(true);
    }

    /**
     * The next pieces of what was there when it was opened (with -f, to the end of its last part
     * now); undefined when there is no more. Without -f, -n N prints N lines even while it grows.
     */
    next(): Piece[] | undefined {
      const into: Piece[] = [];
      while (into.length === 0) {
        const at = this.#at;
        const part = this.parts[at.part];
        if (!part) return undefined;
        const last = at.part === this.parts.length - 1;
        const end = a.follow && last ? Infinity : part.size;
        const got = this.readAt(part.fd, at.offset, Math.min(BLOCK_BYTES, end - at.offset));
        if (got.length === 0) {
          if (last && a.follow) {
            this.current = part;
            this.offset = at.offset;
            this.#at = { part: this.parts.length, offset: 0 };
            return undefined;
          }
          this.#at = { part: at.part + 1, offset: 0 };
          this.#filter.startPart(false);
          continue;
        }
        this.#at = { part: at.part, offset: at.offset + got.length };
        this.pieces(this.#filter.push(got), into);
        if (a.follow && last && stamped) {
          // The line the followed part ends inside is held for poll (see there).
          const all = [...this.#pending, ...into];
          const ended = endedAt(all);
          this.#pending = all.slice(ended);
          into.splice(0, into.length, ...all.slice(0, ended));
        }
      }
      return into;
    }

    /** Closes the parts not followed. */
    closeParts(): void {
      for (const p of this.parts) if (p !== this.current) closeSync(p.fd);
      this.parts = [];
    }

    #sameFile(fd: number): boolean {
      try {
        const named = statSync(this.path);
        const open = fstatSync(fd);
        return named.ino === open.ino && named.dev === open.dev;
      } catch {
        return false;
      }
    }

    /** The inode of the part read before the one followed now, once a cut closed it (-f). */
    #before: number | undefined;
    /** The pieces of a line not yet ended, held from the last look (-f): see poll. */
    #pending: Piece[] = [];

    /**
     * What was appended since the last look (-f). The relay cuts a log by renaming it `.1` and
     * making a new one: the old one is read to its end, then the new one from its start. A log the
     * container appends to itself is cut by truncation: then it is read again from its start.
     *
     * The relay cuts inside a line, and under load two cuts can come between two looks: the part
     * between them is gone (only `.1` and the newest are kept), and the new part begins with the end
     * of a line whose beginning was in the lost part. So a part opened here continues the one read
     * before only when `.1` is still that one once it is open; otherwise it is read alone (the
     * fragment it starts with left out) and the line the old part ended inside is dropped: it is
     * never ended. For that, the pieces of a line not yet ended are held for one look; a look that
     * finds nothing new prints them (a prompt still shows, a look later).
     */
    poll(): Piece[] {
      const into: Piece[] = [];
      for (;;) {
        if (!this.current) {
          if (this.#before !== undefined) this.#afterCut(into);
          else {
            this.current = this.tryOpen(this.path);
            this.offset = 0;
            if (this.current) this.#filter.startPart(false);
          }
        }
        if (!this.current) break;
        if (fstatSync(this.current.fd).size < this.offset) {
          this.offset = 0; // truncated
          this.#filter.startPart(false);
        }
        this.offset = this.readFrom(this.current.fd, this.offset, into);
        if (this.#sameFile(this.current.fd)) break;
        // Cut (or deleted): what was written before the cut, then the new part.
        this.readFrom(this.current.fd, this.offset, into);
        if (stamped) this.#before = fstatSync(this.current.fd).ino;
        closeSync(this.current.fd);
        this.current = undefined;
      }
      // (not while a cut waits for its new part: the line held may be dropped once it is there)
      if (into.length === 0) return this.#before !== undefined ? [] : this.flush();
      const all = [...this.#pending, ...into];
      if (!stamped) return all;
      const ended = endedAt(all);
      this.#pending = all.slice(ended);
      return all.slice(0, ended);
    }

    /**
     * After a cut (poll read the part renamed `.1`, `#before`): opens the part after it. Where it
     * was cut again meanwhile, `.1` is a part between the two: read alone (its first fragment left
     * out, and the line the old part ended inside dropped), then the new one. Where it was cut more
     * than twice, the parts between are gone. Leaves `current` unset when the relay has not made the
     * new part yet (the next look tries again).
     */
    #afterCut(into: Piece[]): void {
      for (let attempt = 0; attempt < 50; attempt++) {
        const older = this.tryOpen(`${this.path}.1`);
        const newer = this.tryOpen(this.path);
        const olderIno = older ? fstatSync(older.fd).ino : undefined;
        // .1 is still the part opened as older: older is the part right before newer.
        const settled = inodeOf(`${this.path}.1`) === olderIno;
        if (!settled || !newer) {
          if (older) closeSync(older.fd);
          if (newer) closeSync(newer.fd);
          if (settled) return; // renamed, the new part not made yet
          continue;
        }
        if (older && olderIno === this.#before) {
          closeSync(older.fd);
        } else {
          // The line the old part ended inside is never ended: dropped.
          const all = [...this.#pending, ...into];
          into.splice(0, into.length, ...all.slice(0, endedAt(all)));
          this.#pending = [];
          this.#lineStart = true;
          this.#filter.startPart(true);
          if (older) {
            this.readFrom(older.fd, 0, into);
            closeSync(older.fd);
          }
        }
        this.#filter.startPart(olderIno === undefined);
        this.#before = undefined;
        this.current = newer;
        this.offset = 0;
        return;
      }
    }

    /** Whether poll holds the pieces of a line not yet ended (the next look comes at once). */
    holding(): boolean {
      // (not while a cut waits for its new part: its making wakes the follower, or the tick does)
      return this.#pending.length > 0 && this.#before === undefined;
    }

    /** The pieces of a line not yet ended, held by poll: printed at the end. */
    flush(): Piece[] {
      const held = this.#pending;
      this.#pending = [];
      return held;
    }

    /** Whether there is more to read now (-f, once the writers are gone). */
    more(): boolean {
      // A part cut after the last look has a new part after it.
      if (this.current) return fstatSync(this.current.fd).size > this.offset || !this.#sameFile(this.current.fd);
      return existsSync(this.path);
    }

    close(): void {
      this.closeParts();
      if (this.current) closeSync(this.current.fd);
      this.current = undefined;
    }
  }

  // stdout's log, and stderr's where it has one (a container made before hako kept them apart has
  // one log: all of it is printed as stdout). Without a relay the container appends to both
  // itself: no stamps, so stdout's lines are printed before stderr's.
  const errLog = streamPaths(store, name, "stderr").log;
  const hasErr = recordedRelay(store, name, "stderr") !== undefined || existsSync(errLog);
  const streams = [new StreamLog(store.logPath(name)), ...(hasErr ? [new StreamLog(errLog)] : [])];
  const printers = [printer(1), printer(2)];
  /** Prints pieces, each run of one stream's in one write. */
  const printAll = (merged: readonly (Piece & { stream: number })[]) => {
    for (let i = 0; i < merged.length;) {
      const stream = merged[i]!.stream;
      let j = i, size = 0;
      for (; j < merged.length && merged[j]!.stream === stream; j++) size += merged[j]!.bytes.length;
      const run = new Uint8Array(size);
      for (let at = 0; i < j; i++) run.set(merged[i]!.bytes, at), at += merged[i]!.bytes.length;
      printers[stream]!.print(run);
    }
  };
  const tag = (pieces: readonly Piece[], stream: number) => pieces.map((p) => ({ ...p, stream }));
  const finish = () => {
    for (const p of printers) p.finish();
    return 0;
  };
  // -f: woken as the log grows, set before the log is read so that nothing written meanwhile waits.
  const waker = a.follow ? new FollowWaker(streams.map((s) => s.path), { watch, statSync }) : undefined;
  const tickMs = followTickMs(env.HAKO_LOG_FOLLOW_TICK_MS);

  try {
    for (const s of streams) s.open();
    if (a.tail !== undefined) {
      // Each stream's last N lines (read from their ends), merged: the last N of those are the
      // last N lines of both together, as docker logs --tail counts them.
      let merged: (Piece & { stream: number })[] = [];
      streams.forEach((s, n) => {
        const all: Piece[] = [];
        for (let got; (got = s.next());) all.push(...got);
        merged = mergeByStamp(merged, tag(all, n));
      });
      let from = merged.length, lines = 0;
      while (from > 0 && lines < a.tail) if (merged[--from]!.starts) lines++;
      printAll(merged.slice(from));
    } else {
      // Both at once, a block at a time each: never more than a block of each in memory.
      const queues: (Piece & { stream: number })[][] = streams.map(() => []);
      const done = streams.map(() => false);
      for (;;) {
        streams.forEach((s, n) => {
          while (queues[n]!.length === 0 && !done[n]) {
            const got = s.next();
            if (got) queues[n] = tag(got, n);
            else done[n] = true;
          }
        });
        const live = queues.map((q, n) => [q, n] as const).filter(([q]) => q.length > 0);
        if (live.length === 0) break;
        // The earliest head goes first (stdout's at a tie), with what follows it up to the other's
        // head (and the rest of a line it began).
        const [q] = live.reduce((x, y) => (y[0][0]!.stamp < x[0][0]!.stamp ? y : x));
        const bound = live.find(([o]) => o !== q)?.[0][0]?.stamp;
        let k = 1;
        while (k < q.length && (bound === undefined || q[k]!.stamp <= bound || !q[k]!.starts)) k++;
        printAll(q.splice(0, k));
      }
    }
    for (const s of streams) s.closeParts();
    if (!a.follow) return finish();

    /** Prints what poll held of lines not yet ended, then finishes. */
    const flushAll = () => {
      let held: (Piece & { stream: number })[] = [];
      streams.forEach((s, n) => held = mergeByStamp(held, tag(s.flush(), n)));
      printAll(held);
      return finish();
    };
    // Follow what is appended to both, until the container ended and its relays wrote all they had.
    for (;;) {
      waker!.taken();
      waker!.rearm();
      let merged: (Piece & { stream: number })[] = [];
      streams.forEach((s, n) => merged = mergeByStamp(merged, tag(s.poll(), n)));
      printAll(merged);
      // --until in the past: nothing after it is wanted (docker's -f --until stops there).
      if (until !== undefined && new Date().toISOString() > until) return flushAll();
      const found = store.inspect(name);
      const r = found.kind === "ok" ? found.record : undefined;
      // A damaged record: followed while processes are in its cgroup.
      const ended = found.kind === "damaged"
        ? (await import("../container/lifecycle.ts")).kernelView(name, found.salvage, store).procs.length === 0
        : !r || r.state === "exited" || (r.state === "running" && !isRunning(r.init));
      // Done once the container ended and its relays wrote all they had.
      if (ended && !relayRuns(store, name)) {
        if (streams.some((s) => s.more())) continue;
        return flushAll();
      }
      // A line held by poll is printed by the next look that finds nothing new: that look comes at
      // once (a prompt, an echoed key, shows without waiting for the tick).
      await (streams.some((s) => s.holding()) ? new Promise((res) => setTimeout(res, 0)) : waker!.wait(tickMs));
    }
  } finally {
    waker?.close();
    for (const s of streams) s.close();
  }
}
