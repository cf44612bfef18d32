/**
 * The Deno side of hako's FFI: `Deno.dlopen` and `Deno.UnsafePointer*`. Only `ffi/libc.ts` imports
 * this file; nothing here runs at load time, so importing it under Bun is harmless.
 * @module
 */
import type { NativeFfi } from "./libc.ts";

/** hako's FFI through Deno's own `Deno.dlopen`. */
export const denoFfi: NativeFfi = {
  runtime: "deno",
  open<S extends Deno.ForeignLibraryInterface>(path: string, symbols: S): Deno.DynamicLibrary<S>["symbols"] {
    return Deno.dlopen(path, symbols).symbols;
  },
  int32Reader(pointer: unknown): () => number {
    const view = new Deno.UnsafePointerView(pointer as Deno.PointerObject);
    return () => view.getInt32();
  },
  addressOf(buf: Uint8Array): bigint {
    return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>)));
  },
  fnPointer(address: bigint, def: Deno.ForeignFunction): (...args: Array<number | bigint>) => unknown {
    const fn = new Deno.UnsafeFnPointer(Deno.UnsafePointer.create(address)!, def);
    return fn.call.bind(fn) as (...args: Array<number | bigint>) => unknown;
  },
};
