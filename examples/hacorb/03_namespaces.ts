/// <reference path="../../globals.d.ts" />
// Seed 000, step 3: separate the namespaces — PID (deferred to the fork, see README), then UTS, IPC,
// mount and network in the child. Compare `ls -l /proc/$$/ns` inside and outside.
// Run: sudo bin/hako run examples/hacorb/03_namespaces.ts
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
  Kernel.exec(process.env.HAKO_CMD ?? "/bin/bash");
});
const { status } = Process.waitpid2(pid);
new Cgroup.CPU(name).delete();
new Cgroup.CPUSET(name).delete();
process.exitCode = status.shellCode;
