/**
 * C strings, argv/envp arrays and small struct buffers.
 *
 * Strings are sized from their UTF-8 bytes (never from `string.length`) and embedded NULs are
 * rejected. An argv/envp array is returned together with the string buffers it points into,
 * so the caller keeps them all alive until the call returns.
 *
 * @module
 */

import { addressOf } from "./libc.ts";

const encoder = new TextEncoder();

/**
 * A NUL-terminated UTF-8 copy of `s`.
 * @throws {TypeError} When `s` contains a NUL byte.
 */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  if (s.includes("\0")) throw new TypeError(`Cannot pass ${JSON.stringify(s)} to C: it contains a NUL byte`);
  const bytes = encoder.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** `cstr(s)`, or `null` (a NULL pointer) when `s` is undefined or null. */
export function cstrOrNull(s: string | undefined | null): Uint8Array<ArrayBuffer> | null {
  return s == null ? null : cstr(s);
}

/** A NULL-terminated `char *[]` and the buffers it points into (keep `keep` referenced). */
export interface CStringArray {
  /** The pointer array itself, to pass as a `buffer` argument. */
  readonly array: BigUint64Array<ArrayBuffer>;
  /** The string buffers the array points into. */
  readonly keep: readonly Uint8Array[];
}

/**
 * Builds a `char *[]` (argv or envp) from strings.
 * @throws {TypeError} When a string contains a NUL byte.
 */
export function cstrArray(items: readonly string[]): CStringArray {
  const keep = items.map(cstr);
  const array = new BigUint64Array(keep.length + 1);
  keep.forEach((b, i) => (array[i] = addressOf(b)));
  return { array, keep };
}

/** Decodes a NUL-terminated string from the start of `buf`. */
export function fromCstr(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(end < 0 ? buf : buf.subarray(0, end));
}
