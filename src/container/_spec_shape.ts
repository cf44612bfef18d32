/**
 * The generic half of spec validation: a safe copy of whatever a caller passed as a spec (bounded
 * depth and size, no cycles, plain data only, getters run once), field paths, values shown in
 * messages without ever throwing, unknown keys with a "did you mean" from the edit distance, and
 * the string limits the kernel sets (PATH_MAX, MAX_ARG_STRLEN). `_spec_fields.ts` says what each
 * field is; this module says how to look at one without tripping.
 * @module
 */
import { isAbsolute } from "node:path";
import { ConfigError } from "../errors.ts";

/** One problem: the field path and what is wrong there. */
export interface ShapeProblem {
  readonly path: string;
  readonly message: string;
}

/** Records a problem. */
export type Bad = (path: string, message: string) => void;

/** A spec section: a plain object's own keys and values. */
export type Obj = Record<string, unknown>;

/**
 * How deep a spec may nest. The deepest real spec is a seccomp profile's
 * `seccomp.syscalls[i].includes.caps[j]` (5 levels); anything much deeper is a mistake, and a
 * bound here keeps every later walk (and a message naming the path) far from the stack's end.
 */
export const MAX_DEPTH = 24;

/** How many values (objects, arrays and leaves together) a spec may hold. */
export const MAX_VALUES = 1_000_000;

/** PATH_MAX, with the terminating NUL: a path may have at most 4095 bytes. */
export const PATH_MAX = 4096;

/** MAX_ARG_STRLEN (32 pages), with the terminating NUL: one argv or envp string at most. */
export const MAX_ARG_STRLEN = 32 * 4096;

/** The UTF-8 length of a string (what the kernel counts; a lone surrogate as TextEncoder writes it). */
export function byteLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) n += 4, i++;
    else n += 3;
  }
  return n;
}

/** A path segment: `.key` for an identifier, `["odd key"]` otherwise (long keys cut short). */
export function keyPath(path: string, key: string): string {
  if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) && key.length <= 64) return path ? `${path}.${key}` : key;
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  return `${path}[${JSON.stringify(shown)}]`;
}

/** A value as a message shows it: short, and never throwing (whatever the value is). */
export function show(value: unknown): string {
  switch (typeof value) {
    case "string": {
      const cut = value.length > 64 ? `${value.slice(0, 64)}…` : value;
      return `${JSON.stringify(cut)}${value.length > 64 ? ` (${value.length} characters)` : ""}`;
    }
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "bigint":
      return `${value}n`;
    case "boolean":
    case "undefined":
      return String(value);
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
    default:
      if (value === null) return "null";
      if (Array.isArray(value)) return value.length ? `an array of ${value.length}` : "an empty array";
      return "an object";
  }
}

/** True for a plain object (what a spec's sections are) — not an array, null, or a class instance. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The Damerau–Levenshtein distance (optimal string alignment) of two short strings, compared
 * without case: a swap of two letters counts one.
 */
export function editDistance(a: string, b: string): number {
  a = a.toLowerCase(), b = b.toLowerCase();
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name closest to `key`, when it is close enough to be a slip (at most a third of its
 * letters off, and at least one), or undefined.
 */
export function closest(key: string, known: readonly string[]): string | undefined {
  if (key.length > 64) return undefined;
  let best: string | undefined, bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key, k);
    if (d < bestDistance) best = k, bestDistance = d;
  }
  return bestDistance <= Math.max(1, Math.floor(Math.max(key.length, best?.length ?? 0) / 3)) ? best : undefined;
}

/**
 * Reports every key of `obj` that is not one of `known` (own keys only: `toString` or
 * `__proto__` are unknown like any other), with "did you mean" for a near miss or a hint from
 * `hints` (a name other tools use for the same thing).
 */
export function unknownKeys(
  obj: Record<string, unknown>,
  path: string,
  known: readonly string[],
  bad: Bad,
  hints: Readonly<Record<string, string>> = {},
): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const hint = Object.hasOwn(hints, key) ? hints[key] : undefined;
    const near = closest(key, known);
    const where = path ? `in ${path}` : "in a container spec";
    bad(
      keyPath(path, key),
      `is not a field ${where}${
        hint ? ` (${hint})` : near ? ` (did you mean ${JSON.stringify(near)}?)` : ` (known: ${known.join(", ")})`
      }`,
    );
  }
}

/** True when `s` holds a control character (C0 or DEL). */
export function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * What is wrong with `value` as a string the kernel takes (no NUL byte, at most `maxBytes` bytes
 * with its NUL), or undefined when nothing is.
 */
export function cStringProblem(value: string, maxBytes: number, what = "bytes"): string | undefined {
  if (value.includes("\0")) return "must not contain a NUL byte";
  const n = byteLength(value);
  if (n >= maxBytes) return `is ${n} ${what} long: the kernel takes at most ${maxBytes - 1}`;
  return undefined;
}

/** An error's message, whatever was thrown (never throwing itself). */
function messageOf(e: unknown): string {
  try {
    return e instanceof Error ? String(e.message) : show(e);
  } catch {
    return "an exception";
  }
}

/**
 * A deep copy of a spec made of plain data — objects, arrays, strings, numbers, booleans, null,
 * functions as leaves (hooks), and bigints only where `bigintAt` matches the path (a seccomp
 * rule's values) — read once (a getter runs once, so what is checked is what is used, and a later
 * change to the input changes nothing). Keys whose value is `undefined` are left out (an optional
 * field given as undefined is absent), and every key is copied as an own property (`__proto__`
 * stays a key, never a prototype). Problems: a cycle, nesting deeper than {@link MAX_DEPTH}, more
 * than {@link MAX_VALUES} values, a symbol, an object that is not plain (a Date, a Map, a class
 * instance), or a property whose reading throws (a getter, a revoked proxy).
 */
export function snapshot(value: unknown, bigintAt?: RegExp): { value: unknown; problems: ShapeProblem[] } {
  const problems: ShapeProblem[] = [];
  const bad = (path: string, message: string) => problems.push({ path: path || "spec", message });
  const onPath = new Set<object>();
  let count = 0;
  const copy = (v: unknown, path: string, depth: number): unknown => {
    if (++count > MAX_VALUES) {
      if (count === MAX_VALUES + 1) bad(path, `the spec holds more than ${MAX_VALUES} values`);
      return undefined;
    }
    const t = typeof v;
    if (t === "symbol") {
      bad(path, "must not be a symbol");
      return undefined;
    }
    if (t === "bigint" && !bigintAt?.test(path)) {
      bad(path, `must be a number, not a bigint (${show(v)})`);
      return undefined;
    }
    if (v === null || (t !== "object")) return v;
    const o = v as object;
    if (depth >= MAX_DEPTH) {
      bad(path, `nests deeper than ${MAX_DEPTH} levels`);
      return undefined;
    }
    if (onPath.has(o)) {
      bad(path, "refers back to itself (a spec must be plain data, like JSON)");
      return undefined;
    }
    try {
      if (Array.isArray(o)) {
        onPath.add(o);
        const out: unknown[] = [];
        const n = o.length;
        if (n > MAX_VALUES) {
          bad(path, `has ${n} elements: the spec holds at most ${MAX_VALUES} values`);
          return undefined;
        }
        for (let i = 0; i < n && count <= MAX_VALUES; i++) out.push(copy(o[i], `${path}[${i}]`, depth + 1));
        return out;
      }
      const proto = Object.getPrototypeOf(o);
      if (proto !== Object.prototype && proto !== null) {
        const tag = Object.prototype.toString.call(o).slice(8, -1);
        bad(path, `must be plain data (an object literal), not a ${tag === "Object" ? "class instance" : tag}`);
        return undefined;
      }
      onPath.add(o);
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(o)) {
        const at = keyPath(path, key);
        let read: unknown;
        try {
          read = (o as Record<string, unknown>)[key];
        } catch (e) {
          bad(at, `could not be read: ${messageOf(e)}`);
          continue;
        }
        const item = copy(read, at, depth + 1);
        if (item !== undefined) {
          Object.defineProperty(out, key, { value: item, enumerable: true, writable: true, configurable: true });
        }
      }
      return out;
    } catch (e) {
      bad(path, `could not be read: ${messageOf(e)}`);
      return undefined;
    } finally {
      onPath.delete(o);
    }
  };
  const out = copy(value, "", 0);
  return { value: out, problems };
}

/** The checks of one spec: `bad` records a problem; each helper reports and returns undefined for a bad value. */
export class Checker {
  readonly problems: ShapeProblem[] = [];
  readonly bad: Bad = (path, message) => void this.problems.push({ path, message });

  /**
   * A section: an object with only `known` keys, or undefined (absent, or reported). An array's
   * element is `required`: undefined there is a problem too (JSON would make it null).
   */
  section(value: unknown, path: string, known: readonly string[], what: string, required = false): Obj | undefined {
    if (value === undefined && !required) return undefined;
    if (!isRecord(value)) {
      this.bad(path, `must be ${what}, got ${show(value)}`);
      return undefined;
    }
    unknownKeys(value, path, known, this.bad);
    return value;
  }

  /** An object whose keys are free (env's names, rlimits' resources), or undefined (absent, or reported). */
  record(value: unknown, path: string, what: string): Obj | undefined {
    if (value === undefined) return undefined;
    if (!isRecord(value)) {
      this.bad(path, `must be ${what}, got ${show(value)}`);
      return undefined;
    }
    return value;
  }

  /** A boolean, or undefined (absent, or reported). */
  boolean(value: unknown, path: string): boolean | undefined {
    if (value === undefined || typeof value === "boolean") return value;
    this.bad(path, `must be a boolean (true or false), got ${show(value)}`);
    return undefined;
  }

  /** A string the kernel takes (no NUL, under `max` bytes with its NUL), or undefined. */
  string(value: unknown, path: string, opts: { max?: number; empty?: boolean } = {}): string | undefined {
    if (typeof value !== "string") {
      this.bad(path, `must be a string, got ${show(value)}`);
      return undefined;
    }
    if (value === "" && !opts.empty) {
      this.bad(path, "must not be empty");
      return undefined;
    }
    const problem = cStringProblem(value, opts.max ?? PATH_MAX);
    if (problem) {
      this.bad(path, problem);
      return undefined;
    }
    return value;
  }

  /** An absolute path under PATH_MAX without a NUL byte, or undefined. */
  absolute(value: unknown, path: string): string | undefined {
    if (typeof value !== "string" || value === "") {
      this.bad(path, `must be a non-empty string, got ${show(value)}`);
      return undefined;
    }
    if (!isAbsolute(value)) {
      this.bad(path, `must be absolute, got ${show(value)}`);
      return undefined;
    }
    const problem = cStringProblem(value, PATH_MAX);
    if (problem) {
      this.bad(path, problem);
      return undefined;
    }
    return value;
  }

  /** An array, or undefined (absent, or reported). */
  array(value: unknown, path: string, what: string): readonly unknown[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) {
      this.bad(path, `must be ${what}, got ${show(value)}`);
      return undefined;
    }
    return value;
  }

  /** One of `values` (compared with ===), or undefined. */
  oneOf<T>(value: unknown, path: string, values: readonly T[]): T | undefined {
    if (value === undefined || values.includes(value as T)) return value as T | undefined;
    this.bad(path, `must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}, got ${show(value)}`);
    return undefined;
  }

  /** Runs `check`, turning a ConfigError it throws into a problem (at `path` when it names none). */
  config(path: string, check: () => void): boolean {
    try {
      check();
      return true;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      this.configError(e, path);
      return false;
    }
  }

  /** Records a ConfigError as a problem, at its own path (or `path` when it names none). */
  configError(e: ConfigError, path: string): void {
    const bare = e.path && e.message.startsWith(`${e.path}: `) ? e.message.slice(e.path.length + 2) : e.message;
    this.bad(e.path || path, bare);
  }
}
