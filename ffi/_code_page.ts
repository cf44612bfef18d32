/**
 * Machine code hako carries as bytes (the native runner of `spawn.ts`, the fork pass of `fork.ts`),
 * mapped into pages of its own and made executable.
 * @module
 */
import process from "node:process";
import { errno, libc, openLibrary } from "./libc.ts";
import { SyscallError } from "./errno.ts";

const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
const MAP_PRIVATE_ANONYMOUS = 0x22;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
/** At most this much code (one page of the smallest size). */
const MAX_CODE = 4096n;

/** The architectures hako has machine code for, as the kernel names them. */
export type CodeArch = "x86_64" | "aarch64";

/**
 * Maps `hex` (machine code, at most 4 KiB) at the start of a fresh mapping, whose first page is
 * made read+execute, with `dataBytes` of zeroed read+write memory at `dataAt` (at least 64 KiB,
 * the largest page size, so the data never shares the code's page). Returns the code's address.
 * @param what What the code is, for the error ("the native runner").
 * @throws {SyscallError} When mmap or mprotect fails.
 */
export function mapCode(hex: string, what: string, data?: { readonly at: bigint; readonly bytes: bigint }): bigint {
  const code = new Uint8Array(hex.length / 2);
  for (let i = 0; i < code.length; i++) code[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  if (BigInt(code.length) > MAX_CODE) throw new RangeError(`hako ffi: ${what} is over 4 KiB of code`);
  if (data && data.at < 0x10000n) throw new RangeError(`hako ffi: ${what}'s data must lie 64 KiB on or more`);
  const { mmap, mprotect, memcpy, munmap } = libc();
  const size = data ? data.at + data.bytes : MAX_CODE;
  const page = mmap(0n, size, PROT_READ | PROT_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0n);
  if (page === MAP_FAILED) throw new SyscallError("mmap", errno(), [], `map a page for ${what}`);
  memcpy(page, code, BigInt(code.length));
  // (the page that holds the code, whatever the page size: mprotect rounds the length up)
  if (mprotect(page, MAX_CODE, PROT_READ | PROT_EXEC) === -1) {
    const e = errno();
    munmap(page, size);
    throw new SyscallError("mprotect", e, [], `make ${what} executable`);
  }
  syncInstructionCache(page, BigInt(code.length));
  return page;
}

const CLEAR_CACHE = {
  // void __clear_cache(void *begin, void *end) (libgcc: the data cache cleaned, the instruction cache invalidated)
  __clear_cache: { parameters: ["usize", "usize"], result: "void" },
} as const;
let clearCache: { __clear_cache(begin: bigint, end: bigint): void } | undefined;

/** This process's architecture, as the kernel names it (x86_64 on anything but arm64). */
export const HOST_ARCH: CodeArch = process.arch === "arm64" ? "aarch64" : "x86_64";

/**
 * Makes code just written at `address` visible to instruction fetch: aarch64's instruction cache
 * is not coherent with its data cache, so code copied into a page must be cleaned to the point of
 * unification and the stale instructions invalidated (what every JIT does; libgcc's
 * `__clear_cache`, from libgcc_s.so.1, which glibc itself loads for thread cancellation). Nothing
 * to do on x86-64, whose caches are coherent (there libgcc's function returns at once; `arch`
 * lets a test bind and call it anyway). Not run on aarch64 hardware yet.
 * @throws {Error} When libgcc_s.so.1 cannot be opened (the runtime's message).
 */
export function syncInstructionCache(address: bigint, length: bigint, arch: CodeArch = HOST_ARCH): void {
  if (arch !== "aarch64") return;
  clearCache ??= openLibrary("libgcc_s.so.1", CLEAR_CACHE) as unknown as typeof clearCache;
  clearCache!.__clear_cache(address, address + length);
}
