/**
 * `hako demo`: what `examples/demo.ts` does, built into the command (so a standalone `hako` shows it
 * with nothing else on the disk): builds a tiny rootfs without the network (static busybox, or
 * host binaries and their libraries), runs a container in it out of hako's primitives, prints the
 * evidence from inside and removes its cgroup.
 * @module
 */
import { nonEmpty, parseArgs, quoted, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** Where the rootfs goes unless `--rootfs` or `$HAKO_DEMO_ROOTFS` says otherwise. */
export const DEFAULT_DEMO_ROOTFS = "/var/lib/hako/images/demo";

/** The help text. */
export const usage = `Usage: hako demo [--rootfs <dir>]

Builds a tiny root filesystem without the network (a static busybox, or host binaries and the
libraries they load) and runs a container in it, step by step, out of hako's primitives:

  new PID, UTS, IPC, mount and net namespaces · a cgroup with a 50% CPU quota · / made private,
  /proc mounted, pivot_root into the rootfs · hostname · loopback up · capabilities reduced

then prints what the container sees (hostname, its processes with the shell as PID 1, CapEff and
CapBnd, its cgroup, the loopback, its root directory) and removes the cgroup. Needs root.
Exits with the container's status.

Options:
      --rootfs <dir>   Where to build (or find) the rootfs; built once, kept for the next run
                       (default: $HAKO_DEMO_ROOTFS, else ${DEFAULT_DEMO_ROOTFS})
  -h, --help           Show this help
`;

/** What `hako demo` was asked to do. */
export interface DemoArgs {
  /** `-h`/`--help`: show the usage instead. */
  readonly help: boolean;
  /** `--rootfs`. */
  readonly rootfs?: string;
}

/**
 * Parses `hako demo`'s arguments (pure).
 * @throws {UsageError} For an unknown option or an operand.
 */
export function parseDemoArgs(argv: readonly string[]): DemoArgs {
  const { values, positionals } = parseArgs(argv, {
    rootfs: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true };
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${quoted(positionals[0]!)}`);
  const rootfs = stringOption(values, "rootfs");
  return { help: false, ...(rootfs !== undefined ? { rootfs: nonEmpty(rootfs, "--rootfs") } : {}) };
}

/** The capabilities the container keeps. */
const KEEP = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FOWNER",
  "CAP_KILL",
  "CAP_NET_BIND_SERVICE",
  "CAP_SETUID",
  "CAP_SETGID",
];

/**
 * What the container's shell prints. Every program it runs is in both rootfs builders' (busybox's
 * applets; the host builder's list in src/container/rootfs.ts); where the host had no `ps` to copy,
 * the shell reads the same table from /proc, and without `ip` the line says so, never "not found".
 */
const EVIDENCE = [
  "echo '--- inside the container ---'",
  'echo "hostname: $(hostname)"',
  // Without ps (a host without procps), the same table from /proc, with the shell's builtins only.
  'echo "processes:"; if command -v ps >/dev/null; then ps -o pid,user,comm; else ' +
  'printf "%5s %-8s %s\\n" PID USER COMMAND; for d in /proc/[0-9]*; do read -r c < $d/comm; u=?; ' +
  'while read -r k v r; do [ "$k" = Uid: ] && u=$v; done < $d/status; [ "$u" = 0 ] && u=root; ' +
  'printf "%5s %-8s %s\\n" ${d#/proc/} $u "$c"; done; fi',
  "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
  "echo \"cgroup: $(grep -E ':cpu[,:]|^0::' /proc/self/cgroup | head -n 1)\"",
  "if command -v ip >/dev/null; then echo \"loopback: $(ip -o link show lo | grep -o '<[^>]*>')\"; " +
  "else echo 'loopback: (no ip in this rootfs)'; fi",
  "echo \"root: $(ls /)\" | tr '\\n' ' '; echo",
].join("; ");

/** Runs `hako demo`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseDemoArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { Capability, Cgroup, linkUp, Mount, Process, sethostname } = await import("../../mod.ts");
  const { buildRootfs } = await import("../container/rootfs.ts");
  // HAKO_DEMO_BUILDER=host shows (and tests) what a machine without busybox-static gets.
  const builder = h.env("HAKO_DEMO_BUILDER");
  const rootfs = buildRootfs(a.rootfs ?? h.env("HAKO_DEMO_ROOTFS") ?? DEFAULT_DEMO_ROOTFS, {
    ...(builder === "host" || builder === "busybox" ? { builder } : {}),
  });
  h.stderr(`rootfs: ${rootfs.path} (${rootfs.builder}${rootfs.created ? ", built now" : ", already built"})\n`);

  // The cgroup is made by the parent, so it can always remove it; the child attaches itself.
  const cpu = new Cgroup.CPU(`hako-demo-${Process.getpid()}`);
  cpu.cfsQuotaUs = 50_000;
  cpu.cfsPeriodUs = 100_000;
  cpu.create();
  try {
    const pid = Process.fork({ namespaces: ["pid", "uts", "ipc", "mount", "net"] }, () => {
      cpu.attach();
      Mount.makePrivate("/", { recursive: true }); // never touch the host's propagation
      Mount.mount("proc", `${rootfs.path}/proc`, { type: "proc", flags: ["nosuid", "nodev", "noexec"] });
      Mount.pivotRootInto(rootfs.path);
      sethostname("hako-demo");
      linkUp("lo");
      Capability.keep(KEEP);
      Process.exec("/bin/sh", "-c", EVIDENCE);
    });
    const { status } = Process.waitpid2(pid);
    h.stderr(`--- container exited: ${status} ---\n`);
    return status.shellCode;
  } finally {
    cpu.delete({ kill: true });
  }
}
