/**
 * The running architecture as the kernel's tables name it. A leaf module, so that `constants.ts`
 * (and so every error message's errno names) picks its per-architecture flags without evaluating
 * the syscall tables that `syscalls.ts` imports; `syscalls.ts` re-exports it.
 * @module
 */

// No node:process: the first node: import costs Deno's start tens of ms (its Node layer), and every
// error message loads this module (errno names) — hako-runc's hot commands included (src/oci/hot.ts).
// Deno.build.arch under Deno ("aarch64"), Bun's global `process` otherwise ("arm64").
const runtimeArch: string | undefined = typeof Deno !== "undefined"
  ? Deno.build.arch
  : (globalThis as { process?: { arch?: string } }).process?.arch;

/** The architecture hako runs on (the kernel's name for it). */
export const ARCH: "x86_64" | "aarch64" = runtimeArch === "arm64" || runtimeArch === "aarch64" ? "aarch64" : "x86_64";
