/**
 * An xz (`.tar.xz`) decoder: liblzma's stream decoder (`liblzma.so.5`, the reference
 * implementation, a dependency of dpkg and so on every Debian and Ubuntu host) bound by FFI, fed
 * and drained in chunks. The only place that knows `lzma_stream`'s layout or takes a pointer into
 * its buffers.
 *
 * @module
 */
import { addressOf, openLibrary } from "./libc.ts";

const SYMBOLS = {
  // lzma_ret lzma_stream_decoder(lzma_stream *strm, uint64_t memlimit, uint32_t flags)
  lzma_stream_decoder: { parameters: ["buffer", "u64", "u32"], result: "i32" },
  // lzma_ret lzma_code(lzma_stream *strm, lzma_action action)
  lzma_code: { parameters: ["buffer", "i32"], result: "i32" },
  // void lzma_end(lzma_stream *strm)
  lzma_end: { parameters: ["buffer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;

/**
 * `lzma_stream` (lzma/base.h) on LP64: `next_in`, `avail_in`, `total_in`, `next_out`, `avail_out`,
 * `total_out`, then the allocator, the internal state and reserved fields: 136 bytes, all zero
 * for `LZMA_STREAM_INIT`.
 */
const STREAM = { size: 136, nextIn: 0, availIn: 8, nextOut: 24, availOut: 32 } as const;
const LZMA_OK = 0, LZMA_STREAM_END = 1;
const LZMA_RUN = 0, LZMA_FINISH = 3;
/** Decode concatenated .xz streams (as `xz -d` does), which needs LZMA_FINISH at the end. */
const LZMA_CONCATENATED = 0x08;
/** What the decoder may allocate: `xz -9` needs 65 MiB; more is refused (a crafted header). */
const MEMLIMIT = 256n << 20n;
const CHUNK = 64 * 1024;

/** liblzma's `lzma_ret` codes, by value, for messages. */
const RET_NAMES: Record<number, string> = {
  2: "LZMA_NO_CHECK",
  3: "LZMA_UNSUPPORTED_CHECK",
  4: "LZMA_GET_CHECK",
  5: "LZMA_MEM_ERROR (out of memory)",
  6: "LZMA_MEMLIMIT_ERROR (needs more than 256 MiB to decode)",
  7: "LZMA_FORMAT_ERROR (not .xz)",
  8: "LZMA_OPTIONS_ERROR (unsupported options)",
  9: "LZMA_DATA_ERROR (corrupt data)",
  10: "LZMA_BUF_ERROR (truncated input)",
  11: "LZMA_PROG_ERROR",
};

/** A failure of liblzma, naming the call and its `lzma_ret`. */
export class LzmaError extends Error {
  /** liblzma's return code. */
  readonly code: number;
  /** Makes the error. @param call The liblzma function. @param code Its `lzma_ret`. */
  constructor(call: string, code: number) {
    super(`${call}: ${RET_NAMES[code] ?? `lzma_ret ${code}`}`);
    this.name = "LzmaError";
    this.code = code;
  }
}

/** Whether liblzma can be opened here (so `.xz` can be decoded). */
export function lzmaAvailable(): boolean {
  try {
    lib ??= openLibrary("liblzma.so.5", SYMBOLS);
    return true;
  } catch {
    return false;
  }
}

/**
 * Decodes an .xz byte stream given in chunks; yields the decoded bytes in chunks of at most 64 KiB
 * (each a new array). The decoder is freed when the generator ends, also when its reader stops
 * early or a chunk is corrupt.
 * @throws {LzmaError} On corrupt, truncated or unsupported input (or when liblzma is missing: its
 *   open error).
 */
export async function* xzDecompress(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  lib ??= openLibrary("liblzma.so.5", SYMBOLS);
  const { lzma_stream_decoder, lzma_code, lzma_end } = lib;
  const strm = new Uint8Array(STREAM.size);
  const view = new DataView(strm.buffer);
  const inBuf = new Uint8Array(CHUNK);
  const outBuf = new Uint8Array(CHUNK);
  const inAddress = addressOf(inBuf), outAddress = addressOf(outBuf);
  const ret = lzma_stream_decoder(strm, MEMLIMIT, LZMA_CONCATENATED);
  if (ret !== LZMA_OK) throw new LzmaError("lzma_stream_decoder", ret);
  /** Runs lzma_code over what is in inBuf (`n` bytes) with `action`; returns the output and whether the stream ended. */
  function* code(n: number, action: number): Generator<Uint8Array, boolean> {
    view.setBigUint64(STREAM.nextIn, inAddress, true);
    view.setBigUint64(STREAM.availIn, BigInt(n), true);
    for (;;) {
      view.setBigUint64(STREAM.nextOut, outAddress, true);
      view.setBigUint64(STREAM.availOut, BigInt(CHUNK), true);
      const r = lzma_code(strm, action);
      const produced = CHUNK - Number(view.getBigUint64(STREAM.availOut, true));
      if (produced > 0) yield outBuf.slice(0, produced);
      if (r === LZMA_STREAM_END) return true;
      if (r !== LZMA_OK) throw new LzmaError("lzma_code", r);
      // Done with this input when it is all taken and the output was not full.
      if (view.getBigUint64(STREAM.availIn, true) === 0n && produced < CHUNK) return false;
    }
  }
  try {
    for await (const chunk of input) {
      for (let at = 0; at < chunk.length; at += CHUNK) {
        const piece = chunk.subarray(at, at + CHUNK);
        inBuf.set(piece);
        if (yield* code(piece.length, LZMA_RUN)) return;
      }
    }
    if (!(yield* code(0, LZMA_FINISH))) throw new LzmaError("lzma_code", 10 /* LZMA_BUF_ERROR */);
  } finally {
    lzma_end(strm);
    void inBuf, void outBuf;
  }
}
