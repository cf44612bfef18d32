/**
 * The running architecture as the kernel's tables name it. A leaf module, so that `constants.ts`
 * (and so every error message's errno names) picks its per-architecture flags without evaluating
 * the syscall tables that `syscalls.ts` imports; `syscalls.ts` re-exports it.
 * @module
 */
import process from "node:process";

/** The architecture hako runs on (the kernel's name for it). */
export const ARCH: "x86_64" | "aarch64" = process.arch === "arm64" ? "aarch64" : "x86_64";
