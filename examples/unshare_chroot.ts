/// <reference path="../globals.d.ts" />
// Seed 004's hands-on: `unshare -pfmur chroot rootfs /bin/sh`, then `mount -t proc proc /proc`
// and `ps` shows only the container's processes, with the shell as PID 1; the user namespace maps
// root inside to the caller outside (-r).
// Run: sudo bin/hako run examples/unshare_chroot.ts [ROOTFS]
import process from "node:process";

const rootfs = process.env.HAKO_ROOTFS ?? "/var/lib/hako/images/demo";
const me = Process.getpid() >= 0 ? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } : { uid: 0, gid: 0 };
const pid = Process.fork({
  namespaces: ["pid", "mount", "uts", "user"], // -p -m -u, and -r: a user namespace with root mapped to me
  uidMap: [{ inside: 0, outside: me.uid, size: 1 }],
  gidMap: [{ inside: 0, outside: me.gid, size: 1 }],
}, () => {
  Mount.makePrivate("/", { recursive: true });
  Dir.chroot(rootfs);
  Dir.chdir("/");
  Kernel.exec("/bin/sh", "-c", process.env.HAKO_CMD ?? "mount -t proc proc /proc && ps && exec /bin/sh");
});
const { status } = Process.waitpid2(pid);
process.exitCode = status.shellCode;
