/// <reference path="../../globals.d.ts" />
// Seed 000, step 4: give the container only the capabilities it needs (hacorb's spelling:
// set the permitted set, then set the same flags in the effective set).
// Run: sudo bin/hako run examples/hacorb/04_capability.ts
import process from "node:process";

const name = process.env.HAKO_CGROUP ?? "chikuwait";
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
  // A root process regains every bounding-set capability at exec; hacorb's two calls above only
  // shape this process (and the exec below would warn). Capability.keep(cap) also trims the
  // bounding set so the limit survives exec; `atExec` applies it right before the exec, so steps
  // added here later (hostname, mounts: see 05_chroot.ts) keep their privileges.
  Capability.keep(cap, { atExec: true });

  Kernel.exec(process.env.HAKO_CMD ?? "/bin/bash");
});
const { status } = Process.waitpid2(pid);
new Cgroup.CPU(name).delete();
new Cgroup.CPUSET(name).delete();
process.exitCode = status.shellCode;
