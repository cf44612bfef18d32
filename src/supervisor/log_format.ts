/**
 * A container's log on disk, as its relay writes it (see `container_log.ts` and
 * `ffi/log_relay_x86_64.S`), and how it is read back from its end.
 *
 * A log is at most two parts, `log.1` (older) and `log`. In a relay's log every line starts with
 * its timestamp and a space — `2006-01-02T15:04:05.000000000Z ` (docker's RFC3339NanoFixed: fixed
 * width, UTC, always nine digits), 31 bytes — and so does every part: one that starts inside a line
 * (the relay cut it there) starts with the time and a `+` instead of the space, `…Z+`: the line
 * goes on from the part before. The container's bytes follow unchanged. A container without a relay
 * has its bytes alone. So the container's exact output is the parts with the timestamp after every
 * newline (and at each part's start) taken out. A `+` part whose part before is gone starts with
 * the end of a line whose beginning was cut away: readers leave that piece out, so that what they
 * print is whole lines.
 *
 * Nothing here reads a whole part: {@link tailStart} walks back from the end in blocks, and
 * {@link StampFilter} takes the parts in pieces.
 *
 * @module
 */

/** The bytes of a line's timestamp and the space after it. */
export const STAMP_BYTES = 31;

/** What each byte of a timestamp is: a digit ("d"), a space or `+` ("s"), or that very character. */
const PATTERN = "dddd-dd-ddTdd:dd:dd.dddddddddZs";
const PLUS = 0x2b;

/**
 * Whether `bytes[at…at+31)` is a timestamp (`…Z ` or `…Z+`); with `end`, whether `bytes[at…end)`
 * begins one (pure).
 */
export function isStamp(bytes: Uint8Array, at = 0, end = at + STAMP_BYTES): boolean {
  if (end > bytes.length || end - at > STAMP_BYTES) return false;
  for (let i = 0; i < end - at; i++) {
    const want = PATTERN.charCodeAt(i);
    const b = bytes[at + i]!;
    const ok = want === 0x64 /* d */
      ? b >= 0x30 && b <= 0x39
      : want === 0x73 /* s */
      ? b === 0x20 || b === PLUS
      : b === want;
    if (!ok) return false;
  }
  return true;
}

/** Whether the timestamp at `bytes[at]` says that its part starts inside a line (`…Z+`, pure). */
export function isContinuation(bytes: Uint8Array, at = 0): boolean {
  return bytes[at + STAMP_BYTES - 1] === PLUS;
}

/**
 * Takes the timestamps out of a log read in pieces, part after part (pure, incremental), or keeps
 * them (`--timestamps`) but for a part's `…Z+` one, which continues a line. For a log without
 * timestamps (`stamped: false`) it passes every byte.
 */
export class StampFilter {
  readonly #stamped: boolean;
  readonly #keep: boolean;
  #lineStart = true;
  /** A `+` part's first piece of a line is dropped (the part before it is not read). */
  #dropFragment = false;
  /** Dropping up to the next newline. */
  #dropping = false;
  /** The beginning of a timestamp cut by the end of a piece. */
  #held: Uint8Array = new Uint8Array(0);
  /** Which lines to print, by their timestamp (`hako logs --since/--until`); all when absent. */
  readonly #select?: (stamp: string) => boolean;
  /** The last line was left out by `select` (so are the parts of it that continue in the next part). */
  #unselected = false;

  /**
   * @param options.stamped Whether the log has timestamps.
   * @param options.keep Whether to keep them (at the start of each line).
   * @param options.select Which lines to print, by their timestamp (the 30 characters before the
   *   space, compared as text: they are fixed-width UTC); every line when absent.
   */
  constructor(
    options: { readonly stamped: boolean; readonly keep: boolean; readonly select?: (stamp: string) => boolean },
  ) {
    this.#stamped = options.stamped;
    this.#keep = options.keep;
    if (options.select) this.#select = options.select;
  }

  /**
   * A new part begins (also the first). `alone`: the part before it is not being read, so a line
   * it continues is left out (its beginning is not there).
   */
  startPart(alone: boolean): void {
    this.#held = new Uint8Array(0);
    this.#lineStart = true;
    this.#dropping = false;
    this.#dropFragment = alone;
  }

  /** Takes the next piece of the current part; returns what to print. */
  push(piece: Uint8Array): Uint8Array {
    if (!this.#stamped) return piece;
    let bytes = piece;
    if (this.#held.length) {
      bytes = new Uint8Array(this.#held.length + piece.length);
      bytes.set(this.#held);
      bytes.set(piece, this.#held.length);
      this.#held = new Uint8Array(0);
    }
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < bytes.length) {
      if (this.#lineStart) {
        if (bytes.length - i < STAMP_BYTES && isStamp(bytes, i, bytes.length)) {
          this.#held = bytes.slice(i); // the rest of it comes with the next piece
          break;
        }
        if (isStamp(bytes, i)) {
          if (isContinuation(bytes, i)) this.#dropping = this.#dropFragment || this.#unselected;
          else {
            this.#unselected = this.#select !== undefined &&
              !this.#select(String.fromCharCode(...bytes.subarray(i, i + STAMP_BYTES - 1)));
            this.#dropping = this.#unselected;
            if (this.#keep && !this.#unselected) out.push(bytes.subarray(i, i + STAMP_BYTES));
          }
          i += STAMP_BYTES;
        }
        this.#lineStart = false;
        this.#dropFragment = false;
        continue;
      }
      const nl = bytes.indexOf(0x0a, i);
      const end = nl === -1 ? bytes.length : nl + 1;
      if (!this.#dropping) out.push(bytes.subarray(i, end));
      i = end;
      if (nl !== -1) {
        this.#lineStart = true;
        this.#dropping = false;
      }
    }
    return concat(out);
  }
}

/**
 * Where a stamped part that its relay may be writing right now ends for a reader (pure): a part
 * read while a write lands can end inside the timestamp that starts a line, before any of the
 * line; that beginning is left for the next look.
 * @param tail The part's last bytes (up to {@link STAMP_BYTES} + 1 of them).
 * @param size The part's size.
 */
export function settledSize(tail: Uint8Array, size: number): number {
  const nl = tail.lastIndexOf(0x0a);
  const after = tail.length - (nl + 1);
  if (after === 0 || after > STAMP_BYTES || (nl === -1 && tail.length < size)) return size;
  return isStamp(tail, nl + 1, tail.length) ? size - after : size;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/** Reads `length` bytes of part `part` at `position` (fewer at its end). */
export type PartReader = (part: number, position: number, length: number) => Uint8Array;

/** A place in a log of parts: a part's index and an offset in it. */
export interface LogPosition {
  readonly part: number;
  readonly offset: number;
}

/** The size of the blocks a log is read in. */
export const BLOCK_BYTES = 64 * 1024;

/**
 * Where the last `n` lines of a log begin (the log is its parts one after the other, of
 * `sizes`), read backwards in blocks: never more than one block in memory, however big the log.
 * A last line without a newline counts as a line. The start is always a line's start (after a
 * newline) or a part's start.
 * @param sizes The parts' sizes, oldest first.
 * @param n How many lines.
 * @param read Reads a block of a part.
 */
export function tailStart(sizes: readonly number[], n: number, read: PartReader): LogPosition {
  let last = sizes.length - 1;
  while (last > 0 && sizes[last] === 0) last--;
  if (n <= 0 || last < 0) return { part: sizes.length - 1, offset: sizes[sizes.length - 1] ?? 0 };
  let seen = 0;
  let skipFinal = true; // the log's last newline ends its last line; it starts none
  for (let part = last; part >= 0; part--) {
    let end = sizes[part]!;
    while (end > 0) {
      const from = Math.max(0, end - BLOCK_BYTES);
      const block = read(part, from, end - from);
      for (let i = block.length - 1; i >= 0; i--) {
        if (block[i] !== 0x0a) {
          skipFinal = false;
          continue;
        }
        if (skipFinal) {
          skipFinal = false;
          continue;
        }
        if (++seen === n) {
          const offset = from + i + 1;
          // After a part's last byte: the next part's start.
          return offset === sizes[part] ? { part: part + 1, offset: 0 } : { part, offset };
        }
      }
      end = from;
    }
  }
  return { part: 0, offset: 0 };
}
