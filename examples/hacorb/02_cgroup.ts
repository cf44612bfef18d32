/// <reference path="../../globals.d.ts" />
// Seed 000, step 2: limit the child with cgroups — a CPU quota (2 CPUs' worth per period) and a cpuset.
// Run: sudo bin/hako run examples/hacorb/02_cgroup.ts
import process from "node:process";

const name = process.env.HAKO_CGROUP ?? "chikuwait";
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

  Kernel.exec(process.env.HAKO_CMD ?? "/bin/bash");
});
const { status } = Process.waitpid2(pid);
// hacorb left the cgroups behind; hako cleans up.
new Cgroup.CPU(name).delete();
new Cgroup.CPUSET(name).delete();
process.exitCode = status.shellCode;
