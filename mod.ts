/**
 * hako — a scripting runtime for Linux containers.
 *
 * Build containers out of kernel primitives from TypeScript, the way haconiwa's hacorb does from
 * Ruby: fork into namespaces, put the child in cgroups, drop capabilities, pivot_root, exec.
 *
 * ```ts ignore
 * import { Namespace, Process } from "./mod.ts";
 * Namespace.unshare(Namespace.CLONE_NEWPID);
 * const pid = Process.fork(() => {
 *   Namespace.unshare(Namespace.CLONE_NEWUTS);
 *   Process.exec("/bin/sh", "-c", "hostname box; echo pid $$ on $(hostname)");
 * });
 * Process.waitpid2(pid);
 * ```
 *
 * @module
 */
export * as Process from "./src/process.ts";
export * as Namespace from "./src/namespace.ts";
export { Kernel } from "./src/kernel.ts";
export { ConfigError, SetupError, SyscallError } from "./src/errors.ts";
export type { ProcessStatus } from "./src/process.ts";
