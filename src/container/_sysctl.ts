/**
 * Namespaced sysctls (the spec's `sysctl`, OCI's `linux.sysctl`, docker's `--sysctl`): which
 * namespace each belongs to, and where it is written. Only those the kernel keeps per namespace are
 * allowed — the same list as runc's and docker's — so a container writes its own network, IPC or
 * UTS settings, never the host's. Pure, with no imports.
 * @module
 */

/** The namespace kinds a sysctl can belong to. */
export type SysctlNamespace = "net" | "ipc" | "uts";

/** The IPC namespace's sysctls (besides `fs.mqueue.*`). */
const IPC_SYSCTLS: ReadonlySet<string> = new Set([
  "kernel.msgmax",
  "kernel.msgmnb",
  "kernel.msgmni",
  "kernel.sem",
  "kernel.shmall",
  "kernel.shmmax",
  "kernel.shmmni",
  "kernel.shm_rmid_forced",
]);

/**
 * A key's form: dot-separated names of letters, digits, `_` and `-` (an interface's name may hold
 * `-`). No `/`, no empty name, no `.` or `..` alone: each name is one directory under /proc/sys.
 */
const KEY = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/;

/** Whether `key` has a sysctl key's form (see {@link KEY}). */
export function isSysctlKey(key: string): boolean {
  return KEY.test(key);
}

/**
 * The namespace whose sysctl `key` is: `net.*` the network namespace's, the System V IPC limits
 * and `fs.mqueue.*` the IPC namespace's, `kernel.hostname`/`kernel.domainname` the UTS
 * namespace's; undefined for a host-wide one.
 */
export function sysctlNamespace(key: string): SysctlNamespace | undefined {
  if (key.startsWith("net.")) return "net";
  if (IPC_SYSCTLS.has(key) || key.startsWith("fs.mqueue.")) return "ipc";
  if (key === "kernel.hostname" || key === "kernel.domainname") return "uts";
  return undefined;
}

/** Where `key` is written: `/proc/sys/` and its names as directories (`net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`). */
export function sysctlPath(key: string): string {
  return `/proc/sys/${key.split(".").join("/")}`;
}
