/// <reference path="../../globals.d.ts" />
// Seed 000, step 1: a container is a process — fork, exec a shell in the child, wait for it.
// Run: sudo bin/hako run examples/hacorb/01_fork.ts   (HAKO_CMD overrides the command)
import process from "node:process";

const pid = Process.fork(() => {
  Kernel.exec(process.env.HAKO_CMD ?? "/bin/bash");
});
const { status } = Process.waitpid2(pid);
process.exitCode = status.shellCode;
