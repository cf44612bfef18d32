/**
 * The Bun side of hako's FFI: `bun:ffi`'s `dlopen`, `ptr` and `read`, behind the same surface as
 * Deno's. Only `ffi/libc.ts` imports this file; `bun:ffi` is loaded on first use through
 * `import.meta.require`, so Deno (and `deno check`) never see it.
 *
 * The symbol table stays in Deno's format, the single source; each definition is translated here:
 * - `"buffer"`, `"pointer"`, `"function"` → `"ptr"`: a typed array (its bytes), `null` (NULL), or
 *   a pointer that came out of this FFI. Pointer *results* are Bun's numbers, not Deno's pointer
 *   objects: treat them as opaque and only hand them back to `ffi/`.
 * - `"usize"`/`"u64"` → `"u64"`, `"isize"`/`"i64"` → `"i64"`: arguments take a number or a
 *   bigint, results are bigints — as under Deno 2, where 64-bit results are always bigints.
 * - `optional` symbols that libc lacks are `null`, as under Deno.
 * - `nonblocking` symbols run on the calling thread under Bun (it has no FFI thread pool) and
 *   return a Promise, so callers keep Deno's types; none of libc's errno-setting calls is one.
 * - Structs by value and statics have no `bun:ffi` equivalent: opening a table with one throws.
 * @module
 */
import type { NativeFfi } from "./libc.ts";

/** The part of `bun:ffi` hako uses (Deno has no types for it). */
interface BunFfiModule {
  dlopen(path: string, symbols: Record<string, BunSymbol>): BunLibrary;
  ptr(view: ArrayBufferView): number;
  read: { i32(pointer: number, byteOffset?: number): number };
  CFunction(def: BunSymbol & { ptr: number }): (...args: unknown[]) => unknown;
}
interface BunSymbol {
  args: string[];
  returns: string;
}
interface BunLibrary {
  symbols: Record<string, (...args: unknown[]) => unknown>;
  close(): void;
}
type BunImportMeta = ImportMeta & { require(id: string): unknown };

/** Deno's native types → `bun:ffi`'s. */
const TYPES: Readonly<Record<string, string>> = {
  void: "void",
  bool: "bool",
  u8: "u8",
  i8: "i8",
  u16: "u16",
  i16: "i16",
  u32: "u32",
  i32: "i32",
  u64: "u64",
  i64: "i64",
  usize: "u64",
  isize: "i64",
  f32: "f32",
  f64: "f64",
  buffer: "ptr",
  pointer: "ptr",
  function: "ptr",
};

let ffi: BunFfiModule | undefined;
/** Libraries stay referenced for the life of the process, as Deno's do until `close()`. */
const opened: BunLibrary[] = [];

function bunFfi(): BunFfiModule {
  return ffi ??= (import.meta as BunImportMeta).require("bun:ffi") as BunFfiModule;
}

function bunType(type: unknown, symbol: string): string {
  const t = typeof type === "string" ? TYPES[type] : undefined;
  if (t === undefined) {
    throw new TypeError(
      `Cannot bind ${symbol}() under Bun: the FFI type ${JSON.stringify(type)} has no bun:ffi equivalent`,
    );
  }
  return t;
}

function translate(def: Deno.ForeignFunction | Deno.ForeignStatic, symbol: string): BunSymbol {
  if (!("parameters" in def)) throw new TypeError(`Cannot bind ${symbol} under Bun: statics are not supported`);
  return { args: def.parameters.map((p) => bunType(p, symbol)), returns: bunType(def.result, symbol) };
}

function asNonblocking(fn: (...args: unknown[]) => unknown): (...args: unknown[]) => Promise<unknown> {
  return (...args) => new Promise((resolve) => resolve(fn(...args)));
}

/** Binds `entries` (key → definition) of `path` into `out`: the plain ones in one dlopen. */
function bindInto(
  out: Record<string, unknown>,
  path: string,
  entries: ReadonlyArray<[string, Deno.ForeignFunction | Deno.ForeignStatic]>,
): void {
  const { dlopen } = bunFfi();
  // bun:ffi names each symbol by its C name: bind the plain ones in one dlopen, and those that
  // may be missing (optional) or share a C name (aliases via `name`) one by one.
  const batch: Record<string, BunSymbol> = {};
  const batched: Array<[string, string, boolean]> = [];
  const single: Array<[string, string, BunSymbol, Deno.ForeignFunction]> = [];
  for (const [key, def] of entries) {
    const cName = typeof def.name === "string" ? def.name : key;
    const bunDef = translate(def, cName);
    const fnDef = def as Deno.ForeignFunction;
    if (fnDef.optional || cName in batch) single.push([key, cName, bunDef, fnDef]);
    else {
      batch[cName] = bunDef;
      batched.push([key, cName, fnDef.nonblocking === true]);
    }
  }
  if (batched.length > 0) {
    const lib = dlopen(path, batch);
    opened.push(lib);
    for (const [key, cName, nonblocking] of batched) {
      const fn = lib.symbols[cName]!;
      out[key] = nonblocking ? asNonblocking(fn) : fn;
    }
  }
  for (const [key, cName, bunDef, def] of single) {
    let one: BunLibrary;
    try {
      one = dlopen(path, { [cName]: bunDef });
    } catch (e) {
      if (def.optional) {
        out[key] = null;
        continue;
      }
      throw e;
    }
    opened.push(one);
    const fn = one.symbols[cName]!;
    out[key] = def.nonblocking ? asNonblocking(fn) : fn;
  }
}

/**
 * The symbols of `path`, each bound on its first read: bun:ffi compiles a trampoline per symbol
 * when it binds it (TinyCC), ~50 µs each, so a table of a hundred costs a short command (`hako-runc
 * state`, which calls a handful) ~4 ms at every start. Reading a key in `bindAllOn` binds every
 * symbol not yet bound, in one dlopen: for calls that must not bind afterwards (libc's `fork`: a
 * forked child runs JavaScript, and compiling there is what it must avoid).
 */
function openLazy(
  path: string,
  symbols: Deno.ForeignLibraryInterface,
  bindAllOn: readonly string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const defs = symbols as Record<string, Deno.ForeignFunction | Deno.ForeignStatic>;
  const settle = (bound: Record<string, unknown>) => {
    for (const [key, value] of Object.entries(bound)) {
      // (a plain property once bound, as the eager table's: writable, so that a test double can
      // stand in for a symbol and put it back, tests/_oplist.ts)
      Object.defineProperty(out, key, { value, enumerable: true, configurable: true, writable: true });
    }
  };
  const bindAll = () => {
    const bound: Record<string, unknown> = {};
    // Only the keys still lazy (a getter): those read before keep their binding.
    const rest = Object.keys(defs).filter((k) => Object.getOwnPropertyDescriptor(out, k)?.get !== undefined);
    bindInto(bound, path, rest.map((k) => [k, defs[k]!]));
    settle(bound);
  };
  for (const key of Object.keys(defs)) {
    Object.defineProperty(out, key, {
      enumerable: true,
      configurable: true,
      get() {
        if (bindAllOn.includes(key)) bindAll();
        else {
          const bound: Record<string, unknown> = {};
          bindInto(bound, path, [[key, defs[key]!]]);
          settle(bound);
        }
        return out[key];
      },
    });
  }
  return out;
}

/** hako's FFI through `bun:ffi`. */
export const bunFfiAdapter: NativeFfi = {
  runtime: "bun",
  open<S extends Deno.ForeignLibraryInterface>(
    path: string,
    symbols: S,
    options?: { readonly lazy?: boolean; readonly bindAllOn?: readonly string[] },
  ): Deno.DynamicLibrary<S>["symbols"] {
    if (options?.lazy) return openLazy(path, symbols, options.bindAllOn ?? []) as Deno.DynamicLibrary<S>["symbols"];
    const out: Record<string, unknown> = {};
    bindInto(out, path, Object.entries(symbols) as Array<[string, Deno.ForeignFunction | Deno.ForeignStatic]>);
    return out as Deno.DynamicLibrary<S>["symbols"];
  },
  int32Reader(pointer: unknown): () => number {
    const { read } = bunFfi();
    const address = pointer as number;
    return () => read.i32(address);
  },
  addressOf(buf: Uint8Array): bigint {
    // A small typed array starts out in JavaScriptCore's GC heap; the first `.buffer` (or
    // `subarray`) moves its bytes into a real ArrayBuffer, which would leave an address taken
    // earlier dangling. Materialise the ArrayBuffer first: its bytes never move after that.
    void buf.buffer;
    return BigInt(bunFfi().ptr(buf));
  },
  fnPointer(address: bigint, def: Deno.ForeignFunction): (...args: Array<number | bigint>) => unknown {
    const fn = bunFfi().CFunction({
      ...translate(def, `the function at 0x${address.toString(16)}`),
      ptr: Number(address),
    });
    return fn as (...args: Array<number | bigint>) => unknown;
  },
};
