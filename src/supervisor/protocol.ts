/**
 * What the CLI and the supervisor say to each other over the supervisor's unix socket: one JSON
 * object per line each way. Every request carries an `id` that its response repeats, so a client
 * may send many requests at once (`hako start --each`) and match the answers as they come.
 * @module
 */
import type { ContainerSpec } from "../container/spec.ts";

/**
 * A file in a container's state directory that `hako run -d` writes beside the record, with what
 * docker's flags asked for that the spec has no field for: `{ labels?, autoRemove? }`. With
 * `autoRemove` (`--rm`) the supervisor deletes the container once it has recorded its end.
 */
export const DOCKER_FILE = "docker.json";

/** What {@link DOCKER_FILE} holds. */
export interface DockerRecord {
  /** `--label`s. */
  readonly labels?: Readonly<Record<string, string>>;
  /** `--rm`: the supervisor deletes the container when it ends. */
  readonly autoRemove?: boolean;
  /**
   * The image of the store it runs on (`hako run -d --image NAME`), as given: what `ps` and
   * `inspect` show (its rootfs is then the directory of its writable layer).
   */
  readonly image?: string;
  /** The image config's `ExposedPorts` (`{ "80/tcp": {} }`): what `inspect` shows as Config.ExposedPorts. */
  readonly exposedPorts?: Readonly<Record<string, unknown>>;
  /**
   * `-t` (docker's `Config.Tty`): its command gets a pty of its own, whose master the supervisor
   * holds; the pty's output is its log (one stream: a terminal merges stdout and stderr).
   */
  readonly tty?: boolean;
  /**
   * `-i` (docker's `Config.OpenStdin`): its stdin is kept open for `hako attach` — the pty with
   * `tty`, else a pipe whose write end the supervisor holds (so the command sees no EOF while
   * nobody is attached).
   */
  readonly openStdin?: boolean;
  /**
   * With `tty`: the size its terminal starts with — the caller's of `hako run -d -t`, as docker's
   * CLI sends its own as HostConfig.ConsoleSize (until an attach gives it the attacher's).
   */
  readonly consoleSize?: { readonly rows: number; readonly columns: number };
}

/** Start a daemonized container. */
export interface StartRequest {
  readonly id: number;
  readonly op: "start";
  /** The spec, as JSON (no callbacks: they cannot cross a socket). */
  readonly spec: ContainerSpec;
  /** The spec's file, for `ps`. */
  readonly specFile?: string;
  /**
   * The process (pid and start time) that reserved the container's name before extracting its
   * rootfs (`hako start`): the supervisor takes that reservation over instead of reserving the
   * name itself.
   */
  readonly reservedBy?: { readonly pid: number; readonly startTime: number };
}

/** Is the supervisor there? */
export interface PingRequest {
  readonly id: number;
  readonly op: "ping";
}

/**
 * Hand over a running container's input (`hako attach`): answered with its pty master (`tty`) or
 * its stdin pipe's write end, sent with `SCM_RIGHTS` on one byte of its own ("T", what `sendFd`
 * sends) before the answer's line — or, when there is nothing to hand over, the line alone (its
 * first byte is then "{"). It must be the only request on its connection, which the supervisor closes after it.
 */
export interface AttachRequest {
  readonly id: number;
  readonly op: "attach";
  /** The container's name. */
  readonly name: string;
}

/** A request. */
export type Request = StartRequest | PingRequest | AttachRequest;

/** An error, as the supervisor reports it. */
export interface ErrorReply {
  /** The error's class name (`SpecError`, `SetupError`, `ContainerStateError`…). */
  readonly name: string;
  /** The message. */
  readonly message: string;
  /** The setup step that failed, for a SetupError. */
  readonly step?: string;
  /** The errno name of its SyscallError cause (`ENOENT`: `hako run -d` exits 127, as docker's). */
  readonly code?: string;
}

/** A response. */
export interface Response {
  readonly id: number;
  readonly ok: boolean;
  /** For `start`: the container's name and its init's pid. */
  readonly name?: string;
  readonly pid?: number;
  /** The supervisor's pid (for `ping`). */
  readonly supervisor?: number;
  /** For `attach`: whether the descriptor sent is a pty master (else a pipe's write end). */
  readonly tty?: boolean;
  /** For `attach`: whether the container reads what is typed (docker's OpenStdin). */
  readonly stdin?: boolean;
  readonly error?: ErrorReply;
}

/** The longest request line the supervisor reads (a spec is a few KiB): 1 MiB. */
export const MAX_LINE_BYTES = 1 << 20;

/**
 * Splits a byte stream into lines (pure, incremental): feed chunks, get complete lines (blank
 * ones skipped), each decoded as UTF-8 (a bad byte becomes U+FFFD). A line longer than
 * `maxLineBytes` is never held: the reader stops there (`overflowed`), returns no more lines, and
 * keeps nothing — what a peer sends without a newline costs at most that much memory.
 */
export class LineReader {
  #parts: Uint8Array[] = [];
  #held = 0;
  #overflowed = false;
  readonly #max: number;
  readonly #decoder = new TextDecoder();
  readonly #encoder = new TextEncoder();

  /** @param options.maxLineBytes The longest line accepted (default {@link MAX_LINE_BYTES}). */
  constructor(options: { readonly maxLineBytes?: number } = {}) {
    this.#max = options.maxLineBytes ?? MAX_LINE_BYTES;
  }

  /** True once a line went past the limit: the stream is not read further. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** Adds a chunk; returns the lines it completed (none once {@link LineReader.overflowed}). */
  push(chunk: Uint8Array | string): string[] {
    if (this.#overflowed) return [];
    const bytes = typeof chunk === "string" ? this.#encoder.encode(chunk) : chunk;
    const lines: string[] = [];
    let from = 0;
    for (let nl = bytes.indexOf(0x0a); nl !== -1; nl = bytes.indexOf(0x0a, from)) {
      if (this.#held + nl - from > this.#max) return this.#overflow(lines);
      const line = this.#take(bytes.subarray(from, nl));
      if (line.trim() !== "") lines.push(line);
      from = nl + 1;
    }
    if (this.#held + bytes.length - from > this.#max) return this.#overflow(lines);
    if (from < bytes.length) {
      // A copy: the caller may reuse its buffer.
      this.#parts.push(bytes.slice(from));
      this.#held += bytes.length - from;
    }
    return lines;
  }

  #take(last: Uint8Array): string {
    if (this.#parts.length === 0) return this.#decoder.decode(last);
    const all = new Uint8Array(this.#held + last.length);
    let at = 0;
    for (const p of this.#parts) {
      all.set(p, at);
      at += p.length;
    }
    all.set(last, at);
    this.#parts = [];
    this.#held = 0;
    return this.#decoder.decode(all);
  }

  #overflow(lines: string[]): string[] {
    this.#overflowed = true;
    this.#parts = [];
    this.#held = 0;
    return lines;
  }
}

/**
 * The functions of a spec, by path (`hooks.bootstrap`), which JSON would silently drop (pure).
 */
export function functionPaths(value: unknown, path = ""): string[] {
  if (typeof value === "function") return [path || "(the spec)"];
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) =>
    functionPaths(v, Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k)
  );
}
