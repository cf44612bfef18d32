/**
 * The hako demo (`sudo npm run demo`, `deno task demo`): builds a tiny rootfs without the network
 * (a static busybox, or host binaries and their libraries) and runs a container in it, step by
 * step, out of hako's primitives — new PID, UTS, IPC, mount and net namespaces, a cgroup with a 50%
 * CPU quota, / made private, /proc mounted, pivot_root, hostname, loopback up, capabilities
 * reduced — then prints the evidence from inside and removes the cgroup.
 *
 * The steps live in `src/cli/demo.ts` (read its `main`), so that the standalone binary's
 * `hako demo` runs the very same code; this script runs them. The rootfs is kept under
 * /var/lib/hako/images/demo (HAKO_DEMO_ROOTFS, or `--rootfs DIR`, to build it elsewhere).
 * HAKO_DEMO_BUILDER=host builds it from host binaries even where busybox-static is installed (what a
 * machine without it gets; =busybox insists on busybox).
 * @module
 */
import process from "node:process";
import { main } from "../src/cli/demo.ts";

process.exitCode = await main(process.argv.slice(2));
