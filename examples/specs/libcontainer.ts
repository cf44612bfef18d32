/**
 * Seed 002 — the container the article builds with runc's Go libcontainer, as a hako spec:
 * new mount, UTS, IPC, PID and net namespaces; proc, /dev on tmpfs, devpts, shm, mqueue and a
 * read-only sysfs (hako's standard mounts); /proc/kcore and /sys/firmware masked; /proc/sys,
 * sysrq-trigger, irq and bus read-only; hostname "testing"; loopback up; NOFILE 1025; the
 * article's capability list; `/bin/sh` with PATH=/bin as root.
 *
 * Run: sudo bin/hako run examples/specs/libcontainer.ts [command…]
 *      sudo bin/hako plan examples/specs/libcontainer.ts      (what it would do)
 * The rootfs is a busybox one built once under /var/lib/hako/images/demo (HAKO_ROOTFS to change).
 */
import type { ContainerSpec } from "../../mod.ts";

export default (env: Record<string, string | undefined>, args: readonly string[]): ContainerSpec => ({
  name: env.HAKO_NAME ?? "container-id",
  rootfs: { builder: "busybox", path: env.HAKO_ROOTFS ?? "/var/lib/hako/images/demo" },
  command: args.length ? [...args] : ["/bin/sh"],
  env: { PATH: "/bin" },
  namespaces: ["mount", "uts", "ipc", "pid", "net"],
  hostname: "testing",
  // capabilities: the article's list is hako's default set (CAP_CHOWN … CAP_AUDIT_WRITE), so nothing to say.
  maskedPaths: ["/proc/kcore", "/sys/firmware"],
  readonlyPaths: ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"],
  network: { loopback: true },
  rlimits: { NOFILE: 1025 },
  cgroup: { name: `hako-${env.HAKO_NAME ?? "test-container"}`, pids: { max: 1024 } },
});
