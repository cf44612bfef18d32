/// <reference path="../../globals.d.ts" />
// Seed 000, step 5: chroot into a rootfs and finish the job — hostname, loopback up, /proc mounted,
// in the article's order (capabilities chosen before them); the shell keeps only the chosen ones.
// The article used a debootstrapped Debian; any rootfs works (HAKO_ROOTFS, default: the demo's).
// Run: sudo bin/hako run examples/hacorb/05_chroot.ts
import process from "node:process";

const name = process.env.HAKO_CGROUP ?? "chikuwait";
const rootfs = process.env.HAKO_ROOTFS ?? "/var/lib/hako/images/demo";
Namespace.unshare(Namespace.CLONE_NEWPID);
const pid = Process.fork(() => {
  const rate = new Cgroup.CPU(name);
  const core = new Cgroup.CPUSET(name);
  rate.cfs_quota_us = 200000;
  rate.cfs_period_us = 100000;
  core.cpus = process.env.HAKO_CPUS ?? "0-1";
  core.mems = "0";
  rate.create();
  core.create();
  rate.attach();
  core.attach();

  Namespace.unshare(Namespace.CLONE_NEWUTS);
  Namespace.unshare(Namespace.CLONE_NEWIPC);
  Namespace.unshare(Namespace.CLONE_NEWNS);
  Namespace.unshare(Namespace.CLONE_NEWNET);
  // Not in the article, but needed: keep the mounts below from propagating to the host.
  Mount.makePrivate("/", { recursive: true });

  const c = new Capability();
  const cap = [
    Capability.CAP_CHOWN,
    Capability.CAP_DAC_OVERRIDE,
    Capability.CAP_FSETID,
    Capability.CAP_FOWNER,
    Capability.CAP_MKNOD,
    Capability.CAP_NET_RAW,
    Capability.CAP_SETGID,
    Capability.CAP_SETUID,
    Capability.CAP_SETPCAP,
    Capability.CAP_NET_BIND_SERVICE,
    Capability.CAP_SYS_CHROOT,
    Capability.CAP_KILL,
    Capability.CAP_AUDIT_WRITE,
  ];
  c.set(Capability.CAP_PERMITTED, cap);
  c.set_flag(Capability.CAP_EFFECTIVE, cap, Capability.CAP_SET);
  // Not in the article, but needed for the limit to hold: a root process regains every
  // bounding-set capability at exec. Kept at the exec, not now, so that hostname, `ip` and
  // `mount` below still run with CAP_SYS_ADMIN and CAP_NET_ADMIN, in the article's order.
  Capability.keep(cap, { atExec: true });

  Dir.chdir(rootfs);
  Dir.chroot(rootfs);

  // (system() answers false when the command fails, null when it cannot run: said, as a shell would)
  for (const command of ["hostname debian", "ip link set lo up", "mount -t proc proc /proc"]) {
    const ok = system(command);
    if (!ok) console.error(`${command}: ${ok === null ? "could not run" : "failed"}`);
  }
  Kernel.exec(process.env.HAKO_CMD ?? "/bin/sh");
});
const { status } = Process.waitpid2(pid);
new Cgroup.CPU(name).delete();
new Cgroup.CPUSET(name).delete();
process.exitCode = status.shellCode;
