/**
 * Seed 002 — the container the article builds with runc's Go libcontainer, as a hako spec:
 * new mount, UTS, IPC, PID and net namespaces; proc, /dev on tmpfs, devpts, shm, mqueue and a
 * read-only sysfs (hako's standard mounts); /proc/kcore and /sys/firmware masked; /proc/sys,
 * sysrq-trigger, irq and bus read-only; hostname "testing"; loopback up; NOFILE 1025; the
 * article's capability list in each of the five capability sets (bounding, effective, inheritable,
 * permitted, ambient); `/bin/sh` with PATH=/bin as root.
 *
 * Run: sudo bin/hako run examples/specs/libcontainer.ts [command…]
 *      sudo bin/hako plan examples/specs/libcontainer.ts      (what it would do)
 * The rootfs is a busybox one built once under /var/lib/hako/images/demo (HAKO_ROOTFS to change).
 */
import type { ContainerSpec } from "../../mod.ts";

/** The article's capability list, in its order. */
const CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

export default (env: Record<string, string | undefined>, args: readonly string[]): ContainerSpec => ({
  name: env.HAKO_NAME ?? "container-id",
  rootfs: { builder: "busybox", path: env.HAKO_ROOTFS ?? "/var/lib/hako/images/demo" },
  command: args.length ? [...args] : ["/bin/sh"],
  env: { PATH: "/bin" },
  namespaces: ["mount", "uts", "ipc", "pid", "net"],
  hostname: "testing",
  // The article's configs.Capabilities: the same list in each of the five sets (as libcontainer
  // applies them: the ambient set too, so even a non-root user would keep them).
  capabilities: {
    bounding: CAPABILITIES,
    effective: CAPABILITIES,
    inheritable: CAPABILITIES,
    permitted: CAPABILITIES,
    ambient: CAPABILITIES,
  },
  maskedPaths: ["/proc/kcore", "/sys/firmware"],
  readonlyPaths: ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"],
  network: { loopback: true },
  rlimits: { NOFILE: 1025 },
  cgroup: { name: `hako-${env.HAKO_NAME ?? "test-container"}`, pids: { max: 1024 } },
});
