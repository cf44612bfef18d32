/**
 * The container's setup inside the child, as an ordered list of named steps. The order is data,
 * and each step says why it sits where it does. The child runs them synchronously (it is a fork of
 * the runtime: no event loop), and a failing step is reported to the parent as
 * `{ step, message, syscall, code }` over a close-on-exec pipe.
 *
 * @module
 */
import { existsSync, lstatSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Capability } from "../capability.ts";
import { sethostname } from "../hostname.ts";
import * as Mount from "../mount.ts";
import { setns } from "../namespace.ts";
import { exec } from "../process.ts";
import { setrlimit } from "../rlimit.ts";
import { loadSeccomp } from "../seccomp.ts";
import { setgroups, setresgid, setresuid } from "../user.ts";
import { chdir } from "../dir.ts";
import { setLinkUp } from "../../ffi/net.ts";
import { addAddress, setLinkUp as netlinkLinkUp } from "../network.ts";
import { ensureMountPoint, secureJoin } from "./_paths.ts";
import { describeHook, runChildCommand } from "./hooks.ts";
import { mknod } from "./_devices.ts";
import type { ResolvedSpec } from "./validate.ts";

/** What the steps share. */
export interface SetupContext {
  readonly spec: ResolvedSpec;
  /** True when the child runs in a new user namespace (mknod is not allowed there). */
  readonly userns: boolean;
}

/** One named step of the child's setup. */
export interface SetupStep {
  /** The name shown in errors and in `hako plan`. */
  readonly name: string;
  /** Why it is here, in this order. */
  readonly why: string;
  /** Whether the step applies to this spec. */
  readonly when: (ctx: SetupContext) => boolean;
  /** The kernel calls it makes, for `hako plan`. */
  readonly plan: (ctx: SetupContext) => string[];
  /** Does it. */
  readonly run: (ctx: SetupContext) => void;
}

const DEVICES = ["null", "zero", "full", "random", "urandom", "tty"] as const;
const DEVICE_NUMBERS: Record<(typeof DEVICES)[number], [number, number]> = {
  null: [1, 3],
  zero: [1, 5],
  full: [1, 7],
  random: [1, 8],
  urandom: [1, 9],
  tty: [5, 0],
};

const inRoot = (ctx: SetupContext, p: string) => secureJoin(ctx.spec.rootfsPath, p);
const has = (ctx: SetupContext, ns: string) => ctx.spec.newNamespaces.includes(ns as never);

function mountIn(ctx: SetupContext, source: string, target: string, type: string, flags: string[], data?: string) {
  const where = inRoot(ctx, target);
  ensureMountPoint(where);
  Mount.mount(source, where, { type, flags, ...(data ? { data } : {}) });
}

/** The steps, in order. */
export const SETUP_STEPS: readonly SetupStep[] = [
  {
    name: "join-namespaces",
    why: "joining existing namespaces comes first, so everything after happens inside them",
    when: (c) => c.spec.joinNamespaces.length > 0,
    plan: (c) => c.spec.joinNamespaces.map((j) => `setns(open(${j.path}), ${j.type})`),
    run: (c) => c.spec.joinNamespaces.forEach((j) => setns(j.path, j.type)),
  },
  {
    name: "become-root",
    why:
      "in a new user namespace the child carries its unmapped host ids until it sets them; root inside owns the other namespaces",
    when: (c) => c.userns,
    plan: () => ["setresgid(0, 0, 0)", "setresuid(0, 0, 0)"],
    run: () => {
      setresgid(0, 0, 0);
      setresuid(0, 0, 0);
    },
  },
  {
    name: "private-mounts",
    why: "nothing mounted from here on may propagate to the host",
    when: (c) => has(c, "mount"),
    plan: () => ['mount(NULL, "/", NULL, MS_REC|MS_PRIVATE)'],
    run: () => Mount.makePrivate("/", { recursive: true }),
  },
  {
    name: "rootfs-bind",
    why: "pivot_root needs the new root to be a mount point; binding it also lets it be made read-only later",
    when: (c) => has(c, "mount"),
    plan: (c) => [`mount("${c.spec.rootfsPath}", "${c.spec.rootfsPath}", MS_BIND|MS_REC)`],
    run: (c) => Mount.bind(c.spec.rootfsPath, c.spec.rootfsPath, { recursive: true }),
  },
  {
    name: "mount-proc",
    why: "a /proc of the container's own PID namespace (mounted before pivot_root, under the new root)",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    plan: (c) => [`mount("proc", "${inRoot(c, "/proc")}", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC)`],
    run: (c) => mountIn(c, "proc", "/proc", "proc", ["nosuid", "nodev", "noexec"]),
  },
  {
    name: "mount-sys",
    why:
      "sysfs read-only; a user namespace without its own net namespace may not mount sysfs, so /sys is bound instead",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    plan: (c) => [`mount("sysfs", "${inRoot(c, "/sys")}", "sysfs", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC)`],
    run: (c) => {
      try {
        mountIn(c, "sysfs", "/sys", "sysfs", ["ro", "nosuid", "nodev", "noexec"]);
      } catch (e) {
        if (!c.userns) throw e;
        Mount.bind("/sys", inRoot(c, "/sys"), { recursive: true, readonly: true });
      }
    },
  },
  {
    name: "mount-dev",
    why:
      "a private /dev on tmpfs with only the default devices (null zero full random urandom tty, ptmx), not the host's",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    plan: (c) => [
      `mount("tmpfs", "${inRoot(c, "/dev")}", "tmpfs", MS_NOSUID|MS_STRICTATIME, "mode=755,size=65536k")`,
      ...DEVICES.map((d) =>
        c.userns
          ? `mount("/dev/${d}", "/dev/${d}", MS_BIND)`
          : `mknod("/dev/${d}", S_IFCHR|0666, ${DEVICE_NUMBERS[d].join(":")})`
      ),
      "symlink pts/ptmx → /dev/ptmx, /proc/self/fd → /dev/fd, stdin, stdout, stderr",
    ],
    run: (c) => {
      mountIn(c, "tmpfs", "/dev", "tmpfs", ["nosuid", "strictatime"], "mode=755,size=65536k");
      const dev = inRoot(c, "/dev");
      for (const d of DEVICES) {
        const path = join(dev, d);
        if (c.userns) {
          ensureMountPoint(path, true);
          Mount.bind(`/dev/${d}`, path);
        } else {
          const [major, minor] = DEVICE_NUMBERS[d];
          mknod(path, "c", 0o666, major, minor);
        }
      }
      for (
        const [link, to] of [
          ["ptmx", "pts/ptmx"],
          ["fd", "/proc/self/fd"],
          ["stdin", "/proc/self/fd/0"],
          ["stdout", "/proc/self/fd/1"],
          ["stderr", "/proc/self/fd/2"],
          ["core", "/proc/kcore"],
        ]
      ) {
        symlinkSync(to!, join(dev, link!));
      }
    },
  },
  {
    name: "mount-devpts",
    why: "a new devpts instance, so the container's terminals are its own",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    plan: (
      c,
    ) => [
      `mount("devpts", "${
        inRoot(c, "/dev/pts")
      }", "devpts", MS_NOSUID|MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")`,
    ],
    run: (c) => mountIn(c, "devpts", "/dev/pts", "devpts", ["nosuid", "noexec"], "newinstance,ptmxmode=0666,mode=0620"),
  },
  {
    name: "mount-shm",
    why: "POSIX shared memory of its own",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    plan: (
      c,
    ) => [`mount("shm", "${inRoot(c, "/dev/shm")}", "tmpfs", MS_NOSUID|MS_NODEV|MS_NOEXEC, "mode=1777,size=65536k")`],
    run: (c) => mountIn(c, "shm", "/dev/shm", "tmpfs", ["nosuid", "nodev", "noexec"], "mode=1777,size=65536k"),
  },
  {
    name: "mount-mqueue",
    why: "POSIX message queues belong to the IPC namespace: only with a new one",
    when: (c) => has(c, "mount") && c.spec.standardMounts && has(c, "ipc"),
    plan: (c) => [`mount("mqueue", "${inRoot(c, "/dev/mqueue")}", "mqueue", MS_NOSUID|MS_NODEV|MS_NOEXEC)`],
    run: (c) => mountIn(c, "mqueue", "/dev/mqueue", "mqueue", ["nosuid", "nodev", "noexec"]),
  },
  {
    name: "mounts",
    why: "the spec's own mounts, after the standard ones so they can cover them",
    when: (c) => c.spec.mounts.length > 0,
    plan: (c) =>
      c.spec.mounts.map((m) =>
        `mount(${m.type === "bind" ? `"${m.source}"` : `"${m.source ?? m.type}"`}, "${inRoot(c, m.target)}", ${
          m.type === "bind" ? "MS_BIND" : `"${m.type}"`
        }${m.options?.length ? `, "${m.options.join(",")}"` : ""}${m.readonly ? ", ro" : ""})`
      ),
    run: (c) => {
      for (const m of c.spec.mounts) {
        const target = inRoot(c, m.target);
        if (m.type === "bind") {
          ensureMountPoint(target, !statSync(m.source!).isDirectory());
          const opts = m.options ?? [];
          Mount.bind(m.source!, target, {
            recursive: !opts.includes("norbind"),
            readonly: m.readonly || opts.includes("ro"),
          });
        } else {
          ensureMountPoint(target);
          Mount.mount(m.source ?? m.type, target, {
            type: m.type,
            options: [...(m.options ?? []), ...(m.readonly ? ["ro"] : [])].join(","),
          });
        }
      }
    },
  },
  {
    name: "network-etc",
    why:
      "name resolution inside: the host's resolv.conf and hosts bound read-only (generated files for a new network namespace are written by the parent before the fork, see writeNetworkEtc: root of a new user namespace may not write into a host-owned rootfs)",
    when: (c) => c.spec.networkEtc === "host",
    plan: () => ["bind /etc/resolv.conf and /etc/hosts read-only into the rootfs"],
    run: (c) => {
      for (const f of ["/etc/resolv.conf", "/etc/hosts"]) {
        if (!existsSync(f)) continue;
        const target = inRoot(c, f);
        ensureMountPoint(target, true);
        Mount.bind(f, target, { readonly: true });
      }
    },
  },
  {
    name: "hostname",
    why: "in the new UTS namespace",
    when: (c) => c.spec.hostname !== undefined,
    plan: (c) => [`sethostname("${c.spec.hostname}")`],
    run: (c) => sethostname(c.spec.hostname!),
  },
  {
    name: "loopback",
    why: "a new network namespace starts with lo down",
    when: (c) => c.spec.loopback && has(c, "net"),
    plan: () => ['ioctl(socket, SIOCSIFFLAGS, "lo" IFF_UP)'],
    run: () => setLinkUp("lo"),
  },
  {
    name: "network",
    why:
      "the container end of the veth pair (moved into this namespace by the parent before the go byte) gets its address and is set up; netlink still works before pivot_root",
    when: (c) => c.spec.veth !== undefined && has(c, "net"),
    plan: (c) => {
      const v = c.spec.veth!;
      return [
        ...(v.containerAddress
          ? [`netlink RTM_NEWADDR ${v.containerAddress} dev ${v.container} (IFA_LOCAL, IFA_ADDRESS)`]
          : []),
        `netlink RTM_NEWLINK ${v.container} IFF_UP`,
      ];
    },
    run: (c) => {
      const v = c.spec.veth!;
      if (v.containerAddress) addAddress(v.container, v.containerAddress);
      netlinkLinkUp(v.container);
    },
  },
  {
    name: "pivot-root",
    why: "switch to the rootfs; the old root is detached, so nothing of the host stays reachable",
    when: (c) => has(c, "mount"),
    plan: (c) => [`chdir("${c.spec.rootfsPath}")`, 'pivot_root(".", ".")', 'umount2(".", MNT_DETACH)', 'chdir("/")'],
    run: (c) => Mount.pivotRootInto(c.spec.rootfsPath),
  },
  {
    name: "masked-paths",
    why:
      "hide kernel interfaces a container must not read: /dev/null over files, an empty read-only tmpfs over directories",
    when: (c) => has(c, "mount") && c.spec.maskedPaths.length > 0,
    plan: (c) => c.spec.maskedPaths.map((p) => `mask ${p}`),
    run: (c) => {
      for (const p of c.spec.maskedPaths) {
        let st;
        try {
          st = lstatSync(p);
        } catch {
          continue; // not on this kernel
        }
        if (st.isDirectory()) Mount.mount("tmpfs", p, { type: "tmpfs", flags: ["ro", "nosuid", "nodev", "noexec"] });
        else Mount.bind("/dev/null", p);
      }
    },
  },
  {
    name: "readonly-paths",
    why: "kernel knobs stay readable but not writable",
    when: (c) => has(c, "mount") && c.spec.readonlyPaths.length > 0,
    plan: (c) => c.spec.readonlyPaths.map((p) => `mount("${p}", "${p}", MS_BIND|MS_REC) + remount MS_RDONLY`),
    run: (c) => {
      for (const p of c.spec.readonlyPaths) {
        if (!existsSync(p)) continue;
        Mount.bind(p, p, { recursive: true, readonly: true });
      }
    },
  },
  {
    name: "readonly-rootfs",
    why: "after every mount under / is made",
    when: (c) => c.spec.readonlyRootfs && has(c, "mount"),
    plan: () => ['mount(NULL, "/", MS_REMOUNT|MS_BIND|MS_RDONLY)'],
    run: () => Mount.remount("/", { bind: true, readonly: true }),
  },
  {
    name: "rlimits",
    why: "before privileges are dropped (raising a hard limit needs CAP_SYS_RESOURCE)",
    when: (c) => Object.keys(c.spec.rlimits).length > 0,
    plan: (c) =>
      Object.entries(c.spec.rlimits).map(([k, v]) =>
        `prlimit(0, RLIMIT_${k.toUpperCase().replace(/^RLIMIT_/, "")}, ${JSON.stringify(v)})`
      ),
    run: (c) => {
      for (const [k, v] of Object.entries(c.spec.rlimits)) {
        const [soft, hard] = Array.isArray(v) ? v : [v, v];
        setrlimit(k, soft, hard);
      }
    },
  },
  {
    name: "workdir",
    why: "inside the new root",
    when: () => true,
    plan: (c) => [`chdir("${c.spec.workdir}")`],
    run: (c) => chdir(c.spec.workdir),
  },
  {
    name: "provision",
    why:
      "the spec's provision hook, inside the finished container (after pivot_root and the workdir) while it is still root with every capability, before the command",
    when: (c) => c.spec.hooks.provision !== undefined,
    plan: (c) => [`${describeHook(c.spec.hooks.provision!, "{ spec }")} (synchronous, in the child)`],
    run: (c) => {
      const hook = c.spec.hooks.provision!;
      if (typeof hook !== "function") return runChildCommand(hook, c.spec.env);
      const result = hook({ spec: c.spec }) as unknown;
      if (result && typeof (result as { then?: unknown }).then === "function") {
        throw new Error(
          "the provision callback returned a promise: it runs in the forked child and must be synchronous",
        );
      }
    },
  },
  {
    name: "capabilities",
    why:
      "bounding set trimmed while CAP_SETPCAP is still held; effective, permitted and inheritable set to the same list",
    when: () => true,
    plan: (c) => [`capabilities: ${c.spec.capabilities.join(", ") || "(none)"}`],
    run: (c) => Capability.keep(c.spec.capabilities),
  },
  {
    name: "user",
    why: "last of the privileged calls: after it the process may not be root any more",
    when: (c) => c.spec.user.uid !== 0 || c.spec.user.gid !== 0 || c.spec.user.groups.length > 0,
    plan: (
      c,
    ) => [
      `setgroups([${c.spec.user.groups.join(", ")}])`,
      `setresgid(${c.spec.user.gid} ×3)`,
      `setresuid(${c.spec.user.uid} ×3)`,
    ],
    run: (c) => {
      if (!c.userns || c.spec.user.groups.length) setgroups(c.spec.user.groups);
      setresgid(c.spec.user.gid, c.spec.user.gid, c.spec.user.gid);
      setresuid(c.spec.user.uid, c.spec.user.uid, c.spec.user.uid);
    },
  },
  {
    name: "no-new-privs",
    why: "setuid binaries and file capabilities can no longer raise privileges",
    when: (c) => c.spec.noNewPrivs,
    plan: () => ["prctl(PR_SET_NO_NEW_PRIVS, 1)"],
    run: () => Capability.noNewPrivs(),
  },
  {
    name: "seccomp",
    why:
      "last before exec: the filter also judges hako's own setup calls (mount, pivot_root, setns…), so every one of them must be done; after no_new_privs, which lets an unprivileged process load it",
    when: (c) => c.spec.seccomp !== false,
    plan: (c) => {
      const profile = c.spec.seccomp as Exclude<ResolvedSpec["seccomp"], false>;
      const instructions = c.spec.seccompProgram!.byteLength / 8;
      return [
        `seccomp(SECCOMP_SET_MODE_FILTER, 0, {${instructions} BPF instructions: default ${profile.defaultAction}, ${profile.syscalls.length} rules})`,
      ];
    },
    // Compiled by the parent in resolveSpec: the child only loads it.
    run: (c) => loadSeccomp(c.spec.seccompProgram!),
  },
];

/**
 * For `networkEtc: "generate"`: writes the rootfs's /etc/hosts and /etc/hostname. Runs in the
 * parent (host root) before the fork, since root of a new user namespace may not write into a
 * rootfs owned by unmapped host ids.
 */
export function writeNetworkEtc(spec: ResolvedSpec): void {
  if (spec.networkEtc === false) return;
  const at = (p: string) => secureJoin(spec.rootfsPath, p);
  ensureMountPoint(at("/etc"));
  if (spec.networkEtc === "host") {
    // Only the mount points: the child binds the host's files over them.
    for (const f of ["/etc/resolv.conf", "/etc/hosts"]) if (existsSync(f)) ensureMountPoint(at(f), true);
    return;
  }
  const name = spec.hostname ?? spec.name;
  writeFileSync(at("/etc/hosts"), `127.0.0.1\tlocalhost ${name}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
  writeFileSync(at("/etc/hostname"), `${name}\n`);
}

/** The steps that apply to `ctx`, in order. */
export function stepsFor(ctx: SetupContext): SetupStep[] {
  return SETUP_STEPS.filter((s) => s.when(ctx));
}

/** Execs the container's command (the last step). */
export function execCommand(spec: ResolvedSpec): never {
  return exec(spec.argv, [], { env: spec.env });
}
