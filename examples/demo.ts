/**
 * The hako demo: builds a tiny rootfs without the network (static busybox, or host binaries and
 * their libraries) and runs a container in it, step by step, out of hako's primitives — the way
 * the hacorb article does:
 *
 *   new PID, UTS, IPC, mount and net namespaces · a cgroup with a 50% CPU quota · / made private,
 *   /proc mounted, pivot_root into the rootfs · hostname · loopback up · capabilities reduced
 *
 * then prints the evidence from inside (hostname, `ps` with the shell as PID 1, CapEff/CapBnd, the
 * cgroup) and removes the cgroup. Run: `sudo npm run demo` (or `deno task demo`).
 *
 * The rootfs is kept under /var/lib/hako/images/ (like an image cache) so a second run is instant;
 * set HAKO_DEMO_ROOTFS to build it elsewhere.
 * @module
 */
import process from "node:process";
import { Capability, Cgroup, linkUp, Mount, Namespace, Process, sethostname } from "../mod.ts";
import { buildRootfs } from "../src/container/rootfs.ts";

const rootfsDir = process.env.HAKO_DEMO_ROOTFS ?? "/var/lib/hako/images/demo";
const name = `hako-demo-${process.pid}`;
const keep = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FOWNER",
  "CAP_KILL",
  "CAP_NET_BIND_SERVICE",
  "CAP_SETUID",
  "CAP_SETGID",
];

const rootfs = buildRootfs(rootfsDir);
console.error(`rootfs: ${rootfs.path} (${rootfs.builder}${rootfs.created ? ", built now" : ", already built"})`);

// The cgroup is made by the parent, so it can always remove it; the child attaches itself.
const cpu = new Cgroup.CPU(name);
cpu.cfsQuotaUs = 50_000;
cpu.cfsPeriodUs = 100_000;
cpu.create();

let code = 1;
try {
  // As in the seed script: unshare(CLONE_NEWPID) in the parent makes the next child PID 1.
  Namespace.unshare(Namespace.CLONE_NEWPID);
  const pid = Process.fork(() => {
    cpu.attach();
    Namespace.unshare(
      Namespace.CLONE_NEWUTS | Namespace.CLONE_NEWIPC | Namespace.CLONE_NEWNS | Namespace.CLONE_NEWNET,
    );
    Mount.makePrivate("/", { recursive: true }); // never touch the host's propagation
    Mount.mount("proc", `${rootfs.path}/proc`, { type: "proc", flags: ["nosuid", "nodev", "noexec"] });
    Mount.pivotRootInto(rootfs.path);
    sethostname("hako-demo");
    linkUp("lo");
    Capability.keep(keep);
    Process.exec(
      "/bin/sh",
      "-c",
      [
        "echo '--- inside the container ---'",
        'echo "hostname: $(hostname)"',
        'echo "processes:"; ps -o pid,user,comm',
        "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
        "echo \"cgroup: $(grep -E ':cpu[,:]|^0::' /proc/self/cgroup | head -n 1)\"",
        "echo \"loopback: $(ip -o link show lo | grep -o '<[^>]*>')\"",
        "echo \"root: $(ls /)\" | tr '\\n' ' '; echo",
      ].join("; "),
    );
  });
  const { status } = Process.waitpid2(pid);
  code = status.shellCode;
  console.error(`--- container exited: ${status} ---`);
} finally {
  cpu.delete({ kill: true });
}
process.exit(code);
