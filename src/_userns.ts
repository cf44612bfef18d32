/**
 * Whether hako runs in a user namespace other than the host's — as the OCI runtime of rootless
 * podman it does: podman makes a user namespace mapping the user's ids (and subordinate ranges)
 * and runs conmon and the runtime in it as uid 0. Root there is not root of the host: it owns no
 * host file (the host's root shows as the overflow uid), may not make a device node (mknod) nor
 * write a cgroup the host did not delegate. runc calls this rootless too (`userns.RunningInUserNS`
 * with euid 0). Pure, with no imports: the OCI hot path and the container library both ask it.
 * @module
 */

/** The initial user namespace's `/proc/self/uid_map`: every id to itself. */
const IDENTITY = /^\s*0\s+0\s+4294967295\s*$/;

/**
 * True when `uidMap` (the text of `/proc/self/uid_map`) is not the initial user namespace's: the
 * process runs in a user namespace of its own or a caller's. Unreadable (undefined) is the host's.
 */
export function nestedUidMap(uidMap: string | undefined): boolean {
  if (uidMap === undefined) return false;
  return !IDENTITY.test(uidMap);
}

let nested: boolean | undefined;
/**
 * Whether this process runs in a nested user namespace ({@link nestedUidMap} of its own map),
 * asked once a process.
 * @param readText How to read a file (undefined when it cannot be read).
 */
export function inNestedUserNamespace(readText: (path: string) => string | undefined): boolean {
  return nested ??= nestedUidMap(readText("/proc/self/uid_map"));
}

/**
 * The overflow uid (`/proc/sys/kernel/overflowuid`'s text), which the kernel shows for owners
 * with no id in the caller's user namespace — the host's root among them; 65534 when unreadable.
 */
export function overflowUid(text: string | undefined): number {
  const n = Number(text?.trim());
  return Number.isInteger(n) && n >= 0 ? n : 65534;
}

/**
 * hako-runc's default `--root`, by runc's rule: `$XDG_RUNTIME_DIR/hako-runc` for a rootless caller
 * — not root, or root of a nested user namespace whose `$USER` is unset or not root (podman's, which
 * keeps the user's environment) — with a runtime directory set; else `/run/hako-runc`.
 * @param env The caller's environment.
 * @param euid Its effective uid.
 * @param nested Whether it runs in a nested user namespace ({@link nestedUidMap}).
 */
export function ociDefaultRoot(env: (name: string) => string | undefined, euid: number, nested: boolean): string {
  const xdg = env("XDG_RUNTIME_DIR");
  const user = env("USER");
  const rootless = euid !== 0 || (nested && user !== "root");
  return xdg?.startsWith("/") && rootless ? `${xdg.replace(/\/+$/, "")}/hako-runc` : "/run/hako-runc";
}
