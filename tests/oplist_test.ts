/**
 * The setup's op lists, pinned without root and without touching the kernel (youki's recording
 * syscall double; the review's "one source of truth"): for a matrix of specs, the native program
 * (`nativeListing`, followed where every call succeeds) and the forked child (setup.ts's steps run
 * against a recording double of libc, see `_oplist.ts`) must make the same calls with the same
 * arguments, step by step; `hako plan` must show those steps, host steps included; `hako exec`
 * must repeat the container's per-process steps, in the same order and with the same calls; and
 * the order that keeps a container closed holds on every path (non-dumpable first, setgroups
 * always, the capability sets after the change of user, setsid and seccomp last before execve).
 * Where the two paths differ on purpose, the difference is listed below with why. The root tests
 * (container_test, exec_test, escape_test) compare both paths from outside.
 * @module
 */
import { isIdmapped, isTmpcopyup } from "../src/container/_plain_mount.ts";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { isRoot, needsRoot, tempDir, test } from "./_harness.ts";
import { run } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { type Arg, forkedOps, nativeOps, type Op, successPath, withDouble } from "./_oplist.ts";
import { HEADER_BYTES, OP_BYTES } from "../ffi/_op_layout.ts";
import { compileChild, compileExecIn } from "../src/container/native.ts";
import { EXEC_STEPS } from "../src/container/exec.ts";
import { planContainer, plannedFiles } from "../src/container/plan.ts";
import {
  prepareExecFifo,
  runExecFifo,
  SETUP_STEPS,
  type SetupContext,
  stepCalls,
  stepsFor,
} from "../src/container/setup.ts";
import { needsJsChild } from "../src/oci/runtime.ts";
import { parseOptions } from "../src/mount.ts";
import { type ResolvedSpec, resolveSpec } from "../src/container/validate.ts";
import type { ContainerSpec } from "../src/container/spec.ts";

const PR_SET_DUMPABLE = 4;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_CAPBSET_DROP = 24;
const PR_CAP_AMBIENT = 47;
/** The fd the double's rootfs O_PATH fd stands at (see `_oplist.ts`: fds from 900 000 on). */
const ROOT_FD = 909_999;

/** Resolves `spec` as the user `euid` would (rootless when not 0), whoever runs the test. */
function resolveAs(spec: ContainerSpec, euid: number): ResolvedSpec {
  return asUser(euid, () => resolveSpec(spec));
}

function asUser<T>(euid: number, fn: () => T): T {
  const p = process as { geteuid?: () => number; getegid?: () => number };
  const saved = [p.geteuid, p.getegid] as const;
  p.geteuid = () => euid;
  p.getegid = () => euid;
  try {
    return fn();
  } finally {
    [p.geteuid, p.getegid] = saved;
  }
}

/** The child's context as `Container.create` makes it (its files named, not written; see plan.ts). */
function contextOf(spec: ResolvedSpec): SetupContext {
  // (an idmapped bind's copy and a filled tmpcopyup tmpfs are the parent's, inherited: an fd of the
  // double's range here, as rootFd)
  const detached = new Map(
    spec.mounts.flatMap((m, i) => (isIdmapped(m) || isTmpcopyup(m) ? [[i, 909_000 + i] as const] : [])),
  );
  return {
    spec,
    userns: spec.newNamespaces.includes("user"),
    rootFd: ROOT_FD,
    files: plannedFiles(spec),
    ...(detached.size ? { detached } : {}),
  };
}

const USERNS = ["mount", "uts", "ipc", "pid", "net", "cgroup", "user"] as const;
const ID_MAP = { uid: { inside: 0, outside: 3_100_000, size: 65536 } };

/** One spec of the matrix. */
interface Case {
  readonly name: string;
  readonly spec: (rootfs: string, dir: string) => Omit<ContainerSpec, "name" | "rootfs">;
  /** The caller's euid when the spec is resolved (default 0; non-zero: rootless). */
  readonly euid?: number;
  /** Why the child must be forked (no native program), when it must. */
  readonly forkedOnly?: string;
}

const CASES: readonly Case[] = [
  { name: "the defaults", spec: () => ({ command: ["/bin/true"] }) },
  {
    name: "a user namespace with id maps",
    spec: () => ({ command: ["/bin/true"], namespaces: USERNS, idMap: ID_MAP }),
  },
  {
    name: "rootless (uid 1000, its own id mapped to root)",
    euid: 1000,
    spec: () => ({ command: ["/bin/true"], namespaces: USERNS }),
  },
  {
    name: "joined namespaces (net and ipc, by path)",
    spec: () => ({
      command: ["/bin/true"],
      namespaces: ["mount", "uts", "pid", { type: "net", join: "/proc/self/ns/net" }, {
        type: "ipc",
        join: "/proc/self/ns/ipc",
      }],
    }),
  },
  {
    name: "a time namespace",
    spec: () => ({ command: ["/bin/true"], namespaces: ["mount", "uts", "ipc", "pid", "net", "cgroup", "time"] }),
  },
  { name: "a read-only rootfs", spec: () => ({ command: ["/bin/true"], readonlyRootfs: true }) },
  {
    name: "the host's hooks (bootstrap, beforeStart, afterStop)",
    spec: () => ({
      command: ["/bin/true"],
      hooks: { bootstrap: ["true"], beforeStart: () => {}, afterStop: "echo done" },
    }),
  },
  {
    name: "a provision hook",
    spec: () => ({ command: ["/bin/true"], hooks: { provision: ["touch", "/provisioned"] } }),
    forkedOnly: "the provision hook runs code in a child of the child (native.ts: compileStep has no provision)",
  },
  {
    name: "a capability list, as a non-root user with groups (ambient raised)",
    spec: () => ({
      command: ["/bin/true"],
      user: { uid: 1000, gid: 1000, groups: [10, 20] },
      capabilities: ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
    }),
  },
  {
    name: "the five capability sets",
    spec: () => ({
      command: ["/bin/true"],
      user: { uid: 7 },
      capabilities: {
        bounding: ["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        effective: ["CAP_CHOWN"],
        permitted: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        inheritable: ["CAP_NET_BIND_SERVICE"],
        ambient: ["CAP_NET_BIND_SERVICE"],
      },
    }),
  },
  { name: "seccomp off", spec: () => ({ command: ["/bin/true"], seccomp: false }) },
  {
    name: "mounts (a read-only bind, a tmpfs), rlimits, a hostname, no net namespace",
    spec: (_rootfs, dir) => ({
      command: ["true"],
      namespaces: ["mount", "uts", "ipc", "pid"],
      hostname: "oplist",
      rlimits: { NOFILE: 1024, CORE: [0, "unlimited"] },
      mounts: [
        { type: "bind", source: dir, target: "/data", readonly: true },
        { type: "tmpfs", target: "/scratch", options: ["nosuid", "size=1m"] },
      ],
    }),
  },
  {
    name: "mount propagation (an rshared bind, an rslave one, rootfsPropagation rshared)",
    spec: (_rootfs, dir) => ({
      command: ["/bin/true"],
      rootfsPropagation: "rshared",
      mounts: [
        { type: "bind", source: dir, target: "/both", options: ["rshared"] },
        { type: "bind", source: dir, target: "/in", options: ["rslave", "ro"] },
        { type: "bind", source: dir, target: "/private" },
      ],
    }),
  },
  {
    name: "device nodes (a char device with its mode, one in a directory, a FIFO)",
    spec: () => ({
      command: ["/bin/true"],
      devices: [
        { path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o640 },
        { path: "/dev/net/tun", type: "c", major: 10, minor: 200 },
        { path: "/dev/fifo", type: "p" },
      ],
    }),
  },
  {
    name: "a tmpcopyup tmpfs the parent filled, and a plain tmpfs",
    spec: () => ({
      command: ["/bin/true"],
      readonlyRootfs: true,
      mounts: [
        { type: "tmpfs", target: "/run", options: ["nosuid", "nodev", "tmpcopyup", "rshared"] },
        { type: "tmpfs", target: "/scratch", options: ["size=1m"] },
      ],
    }),
  },
  {
    name: "sysctls (net, ipc and uts), written by the child after pivot_root",
    spec: () => ({
      command: ["/bin/true"],
      sysctl: { "net.ipv4.ping_group_range": "0 0", "kernel.shmmni": "1024", "kernel.domainname": "oplist" },
    }),
  },
  {
    name: "device nodes in a user namespace (the host's bound)",
    spec: () => ({
      command: ["/bin/true"],
      namespaces: USERNS,
      idMap: ID_MAP,
      devices: [{ path: "/dev/net/tun", type: "c", major: 10, minor: 200 }, { path: "/dev/fifo", type: "p" }],
    }),
  },
  {
    name: "an idmapped bind in a user namespace",
    spec: (_rootfs, dir) => ({
      command: ["/bin/true"],
      namespaces: USERNS,
      idMap: ID_MAP,
      mounts: [{ type: "bind", source: dir, target: "/v", options: ["idmap"] }],
    }),
  },
  {
    name: "no_new_privs off with the default seccomp profile (the filter loaded while privileged, as runc)",
    spec: () => ({ command: ["/bin/true"], noNewPrivs: false, user: { uid: 1000, gid: 1000 } }),
  },
  {
    name: "the host's /etc files, no standard mounts, no_new_privs off",
    spec: () => ({
      command: ["/bin/true"],
      networkEtc: "host",
      namespaces: ["mount", "uts", "ipc", "pid"],
      standardMounts: false,
      noNewPrivs: false,
      seccomp: false,
    }),
  },
];

/** Resolves a case in a fresh rootfs directory (made, empty) and runs `fn` with its context. */
function withCase<T>(c: Case, fn: (ctx: SetupContext, spec: ContainerSpec) => T): T {
  using d = tempDir("hako-test-oplist-");
  const rootfs = join(d.path, "rootfs");
  mkdirSync(rootfs);
  const dir = join(d.path, "data");
  mkdirSync(dir);
  const spec = { name: `oplist-${CASES.indexOf(c)}`, rootfs, ...c.spec(rootfs, dir) } as ContainerSpec;
  return fn(contextOf(resolveAs(spec, c.euid ?? 0)), spec);
}

// ---- the differences by design ----------------------------------------------------------------

/**
 * The native program's own ops around the setup (not steps of setup.ts): the forked child does the
 * same in container.ts's childMain, in JavaScript — the pipes closed and the go byte read
 * ("child"), the ready report ("ready"), the start byte, stdio, close_range(CLOEXEC), the signals
 * reset and execve ("exec"). The root tests compare both from outside.
 */
const NATIVE_FRAME = ["child", "ready", "exec"];

/**
 * Steps the double does not run on the forked side, since they fork (a double cannot follow both
 * the parent and the child): their calls are checked on the native side only, and their place.
 */
const FORKS = ["enter-pid-namespace", "provision"];

/**
 * Per step, how one path's calls are made comparable with the other's where they differ on
 * purpose, with why.
 */
const SAME_BY_DESIGN: ReadonlyArray<
  {
    readonly step: string;
    readonly why: string;
    readonly native: (ops: Op[]) => Op[];
    readonly forked: (ops: Op[]) => Op[];
  }
> = [
  {
    step: "*",
    why:
      "a capture (open_tree of a host source, in capture-propagating-sources before private-mounts, in capture-host-sources after) is named in the native program by the step that attaches it, so its failure names that step; the forked child names it so too (runCall's forStep), but runs it in its capture step (rootfs-bind's and readonly-paths' open_tree are their own steps' on both paths)",
    native: (ops) => {
      const firstPrivate = ops.findIndex((o) => o.step === "private-mounts");
      return ops.map((o, i) =>
        o.call === "open_tree" && o.step !== "rootfs-bind" && o.step !== "readonly-paths"
          ? { ...o, step: i < firstPrivate ? "capture-propagating-sources" : "capture-host-sources" }
          : o
      );
    },
    forked: (ops) => ops,
  },
  {
    step: "join-namespaces",
    why:
      "the forked child opens and closes each namespace file with node:fs (namespace.ts's setns), which the libc double does not see; the native program calls open and close itself",
    native: (ops) => ops.filter((o) => o.call !== "open" && o.call !== "close"),
    forked: (ops) => ops.map((o) => o.call === "setns" ? { ...o, args: ["<fd>", ...o.args.slice(1)] } : o),
  },
  {
    step: "loopback",
    why:
      "the forked child reads lo's flags first and adds IFF_UP (ffi/net.ts's setLinkUp: SIOCGIFFLAGS, then SIOCSIFFLAGS); the native program sets IFF_UP|IFF_LOOPBACK|IFF_RUNNING at once, what a new namespace's lo has",
    native: (ops) => ops.map((o) => o.call === "ioctl" ? { ...o, args: [o.args[0]!, o.args[1]!, "*"] } : o),
    forked: (ops) =>
      ops.filter((o) => !(o.call === "ioctl" && o.args[1] === 0x8913 /* SIOCGIFFLAGS */)).map((o) =>
        o.call === "ioctl" ? { ...o, args: [o.args[0]!, o.args[1]!, "*"] } : o
      ),
  },
  {
    step: "rlimits",
    why:
      "the forked child's setrlimit (rlimit.ts) asks prlimit for the old limits too (its return value), the native program passes NULL: the limits set are the same",
    native: (ops) => ops,
    forked: (ops) => ops.map((o) => o.call === "prlimit" ? { ...o, args: o.args.slice(0, 3) } : o),
  },
  {
    step: "user",
    why:
      "setgroups(0, list): the forked child passes a one-element buffer for an empty list (user.ts), the native program an empty one; the kernel reads size × 4 bytes, none",
    native: (ops) => ops.map(groupsAsRead),
    forked: (ops) => ops.map(groupsAsRead),
  },
];

/** setgroups' list as the kernel reads it: its first size × 4 bytes. */
function groupsAsRead(o: Op): Op {
  if (o.call !== "setgroups") return o;
  const n = Number(o.args[0] ?? 0);
  const list = String(o.args[1] ?? "hex:");
  return { ...o, args: [n, list.startsWith("hex:") ? `hex:${list.slice(4, 4 + n * 8)}` : list] };
}

/** Wildcards: `*` matches anything, `<ptr>` (an address the double cannot read) any string. */
function argMatches(a: Arg, b: Arg): boolean {
  if (a === "*" || b === "*") return true;
  if ((a === "<ptr>" && typeof b === "string") || (b === "<ptr>" && typeof a === "string")) return true;
  return a === b;
}

const line = (o: Op) => `${o.step}: ${o.call}(${o.args.map((a) => JSON.stringify(a)).join(", ")})`;

/**
 * Asserts that two op lists are the same, call by call (wildcards resolved first, so a failure
 * shows the real difference as a diff of lines).
 */
function assertSameOps(native: readonly Op[], forked: readonly Op[], message: string): void {
  const a = native.map(line);
  const b = forked.map((o, i) => {
    const n = native[i];
    if (!n || n.step !== o.step || n.call !== o.call || n.args.length !== o.args.length) return line(o);
    return n.args.every((x, k) => argMatches(x, o.args[k]!)) ? line(n) : line(o);
  });
  assert.deepEqual(b, a, message);
}

/** Steps in the order their calls come, each once. */
function stepOrder(ops: readonly Op[]): string[] {
  const out: string[] = [];
  for (const o of ops) if (out.at(-1) !== o.step) out.push(o.step);
  return out;
}

function normalized(ops: readonly Op[], side: "native" | "forked"): Op[] {
  let out = [...ops];
  for (const d of SAME_BY_DESIGN) {
    if (d.step === "*") {
      out = d[side](out);
      continue;
    }
    const mine = out.filter((o) => o.step === d.step);
    if (!mine.length) continue;
    const fixed = d[side](mine);
    const at = out.findIndex((o) => o.step === d.step);
    out = [...out.slice(0, at), ...fixed, ...out.filter((o, i) => i > at && o.step !== d.step)];
  }
  return out;
}

// ---- (a) both paths: the same list ------------------------------------------------------------

for (const c of CASES) {
  test(`op list (${c.name}): the native program and the forked child make the same calls, step by step`, () => {
    withCase(c, (ctx) => {
      const steps = stepsFor(ctx).map((s) => s.name);
      const native = nativeOps(ctx);
      const forked = forkedOps(ctx, { skip: FORKS });
      if (c.forkedOnly) {
        assert.equal(native, undefined, `no native program: ${c.forkedOnly}`);
      } else {
        assert.ok(native, "a native program");
        const setup = native.filter((o) => !NATIVE_FRAME.includes(o.step));
        // every step that applies makes its calls natively, in setup.ts's order
        assert.deepEqual(stepOrder(normalized(setup, "native")), steps, "the native program's steps");
        const bothRun = (o: Op) => !FORKS.includes(o.step);
        assertSameOps(
          normalized(setup.filter(bothRun), "native"),
          normalized(forked.filter(bothRun), "forked"),
          "the calls (+ forked, - native)",
        );
      }
      // the forked child runs every step that applies, in order (those that fork are named)
      assert.deepEqual(stepOrder(forked), steps, "the forked child's steps");
    });
  });
}

test("op list: OCI hooks' sync point (hooks-sync) sits after the mounts, right before pivot-root, and makes the same calls on both paths", () => {
  for (const c of [CASES[0]!, CASES[1]!]) {
    withCase(c, (base) => {
      // (the status pipe's and the sync pipe's fds, in the double's range)
      const ctx: SetupContext = { ...base, statusFd: 909_997, hooksSync: 909_998 };
      const steps = stepsFor(ctx).map((s) => s.name);
      assert.ok(!stepsFor(base).some((s) => s.name === "hooks-sync"), "no sync point without OCI hooks");
      assert.equal(steps[steps.indexOf("pivot-root") - 1], "hooks-sync", c.name);
      assert.ok(steps.indexOf("mounts") < steps.indexOf("hooks-sync") || !steps.includes("mounts"));
      assert.ok(steps.indexOf("mount-dev") < steps.indexOf("hooks-sync"), "after the standard mounts");
      const native = nativeOps(ctx)!;
      const forked = forkedOps(ctx, { skip: FORKS });
      const sync = (ops: readonly Op[]) => ops.filter((o) => o.step === "hooks-sync");
      // what the parent is told differs by design, as the ready report does: a 12-byte record
      // ("SNC!") natively, a JSON line from the forked child
      assert.deepEqual(sync(native)[0]!.args.slice(0, 3), ["<fd>", "hex:534e43210000000000000000", 12]);
      assert.deepEqual(sync(forked)[0]!.args.slice(0, 3), [
        "<fd>",
        `hex:${Buffer.from('{"sync":true}\n').toString("hex")}`,
        14,
      ]);
      const rest = (ops: readonly Op[]) =>
        sync(ops).slice(1).map((o) => (o.call === "read" ? { ...o, args: [o.args[0]!, "*", o.args[2]!] } : o));
      assertSameOps(rest(native), rest(forked), "the wait for the parent's byte (+ forked, - native)");
      assert.deepEqual(rest(native).map((o) => o.call), ["read", "close"]);
      // and the rest of the program is the one without hooks, plus the step
      const without = (ops: readonly Op[]) => ops.filter((o) => o.step !== "hooks-sync");
      assert.deepEqual(without(native), nativeOps(base), "the same program around the step");
      // hako plan shows it where it runs (the OCI mode's create asks for it)
      const planned = (hooksSync: boolean) =>
        planContainer({ name: "oplist-sync", rootfs: "/tmp", command: ["/bin/true"] }, { hooksSync }).steps
          .filter((s) => s.where === "child").map((s) => s.name);
      assert.deepEqual(planned(true).slice(planned(true).indexOf("hooks-sync") - 1).slice(0, 3), [
        "loopback",
        "hooks-sync",
        "pivot-root",
      ]);
      assert.ok(!planned(false).includes("hooks-sync"));
    });
  }
});

test("op list: --no-pivot's move-root takes pivot-root's place and makes the same calls on both paths", () => {
  for (const c of [CASES[0]!, CASES[1]!]) {
    withCase(c, (base) => {
      const detach = [{ path: "/proc", cover: true }, { path: "/dev", cover: false }];
      const ctx: SetupContext = { ...base, noPivot: detach };
      const steps = stepsFor(ctx).map((s) => s.name);
      const pivoted = stepsFor(base).map((s) => s.name);
      assert.deepEqual(steps, pivoted.map((n) => (n === "pivot-root" ? "move-root" : n)), c.name);
      const move = (ops: readonly Op[]) => ops.filter((o) => o.step === "move-root");
      const native = move(nativeOps(ctx)!), forked = move(forkedOps(ctx, { skip: FORKS }));
      assertSameOps(native, forked, "the move's calls (+ forked, - native)");
      // (where every call succeeds: no tmpfs cover)
      assert.deepEqual(native.map((o) => o.call), [
        "fchdir",
        "chroot",
        "fchdir",
        "close",
        "close",
        "mount",
        "faccessat",
        "umount2",
        "faccessat",
        "umount2",
        "chroot",
        "chdir",
      ]);
      assert.deepEqual(native.filter((o) => o.call === "umount2").map((o) => o.args), [["/proc", 2], ["/dev", 2]]);
      assert.deepEqual(native.find((o) => o.call === "mount")!.args.slice(0, 4), [".", "/", null, 0x2000]);
    });
  }
});

test("op list: a spec mount at /dev/shm or /dev/mqueue takes the place of hako's own there; shm: false leaves /dev/shm out", () => {
  withCase(CASES[0]!, (base) => {
    const steps = (spec: Partial<SetupContext["spec"]>) =>
      stepsFor({ ...base, spec: { ...base.spec, ...spec } }).map((s) => s.name);
    const own = steps({});
    assert.ok(own.includes("mount-shm") && own.includes("mount-mqueue"), "hako's own by default");
    const shm = { type: "bind", target: "/dev/shm", source: "/tmp", options: ["bind"] } as const;
    const mq = { type: "bind", target: "/dev/mqueue/", source: "/tmp" } as const;
    // (the spec mount's own steps apart)
    const sans = (names: string[]) => names.filter((n) => n !== "mounts" && n !== "capture-host-sources");
    assert.deepEqual(sans(steps({ mounts: [shm] })), sans(own).filter((n) => n !== "mount-shm"));
    assert.deepEqual(sans(steps({ mounts: [mq] })), sans(own).filter((n) => n !== "mount-mqueue"));
    assert.deepEqual(steps({ shm: false }), own.filter((n) => n !== "mount-shm"));
  });
});

test("op list: with startContainer hooks the exec fifo step waits for a second byte, the FIFO read again, with the same calls on both paths", () => {
  withCase(CASES[0]!, (base) => {
    const fifo = (startSync: boolean) => {
      const ctx: SetupContext = { ...base, execFifo: 909_990, ...(startSync ? { startSync } : {}) };
      const native = nativeOps(ctx)!.filter((o) => o.step === "exec-fifo");
      // (the forked child runs it in childMain, after its steps)
      const forked = withDouble(() => runExecFifo(prepareExecFifo(909_990, startSync)), () => "exec-fifo").ops;
      // (the read's buffer: the program's scratch bytes, the forked child's prepared byte)
      const buffer = (ops: readonly Op[]) =>
        ops.map((o) => (o.call === "read" ? { ...o, args: [o.args[0]!, "*", o.args[2]!] } : o));
      assertSameOps(buffer(native), buffer(forked), "the exec fifo's calls (+ forked, - native)");
      return native.map((o) => o.call);
    };
    const plain = fifo(false);
    assert.deepEqual(fifo(true), [...plain, "close", "open", "read"]);
  });
});

test("op list: OCI create looks the command up as the container's user before it reports ready, with the same calls on both paths", () => {
  withCase(CASES[0]!, (base) => {
    const ctx: SetupContext = { ...base, execFifo: 909_990 };
    const native = nativeOps(ctx)!;
    const forked = forkedOps(ctx, { skip: FORKS });
    const lookups = (ops: readonly Op[]) => ops.filter((o) => o.step === "lookup-command");
    assertSameOps(lookups(native), lookups(forked), "the lookup's calls (+ forked, - native)");
    assert.deepEqual(
      lookups(forked).map((o) => o.call),
      ["faccessat"],
      "found in the first PATH directory (the double's)",
    );
    const at = (ops: readonly Op[], p: (o: Op) => boolean) => ops.findIndex(p);
    for (const ops of [native, forked]) {
      assert.ok(
        at(ops, (o) => o.call === "setresuid") < at(ops, (o) => o.step === "lookup-command"),
        "after the change of user",
      );
    }
    // a plain container (no exec FIFO) has no lookup: its execve's failure reaches the parent itself
    assert.deepEqual(lookups(forkedOps(base, { skip: FORKS })), []);
  });
});

test("op list: a cached native program is never reused for a spec with a provision hook", () => {
  // (the drift 'a cached program skipping a provision hook': hooks are left out of the template's
  // key, the steps they add are not). compileChild runs under the double: nothing is spawned, and
  // the dumpable flag it holds for the child is the double's.
  const saved = process.env.HAKO_NATIVE_SPAWN;
  process.env.HAKO_NATIVE_SPAWN = "1";
  try {
    if (process.arch !== "x64") return console.error(`SKIP (inside the test): no native runner on ${process.arch}`);
    const fds = {
      root: ROOT_FD,
      go: ROOT_FD,
      start: ROOT_FD,
      status: ROOT_FD,
      stdio: [0, 1, 2] as const,
      closeInChild: [],
    };
    // one kind of container (same name, rootfs and files), with and without the hook
    using d = tempDir("hako-test-oplist-");
    const rootfs = join(d.path, "rootfs");
    mkdirSync(rootfs);
    const ctxOf = (hooks: ContainerSpec["hooks"]) =>
      contextOf(resolveAs({ name: "oplist-cache", rootfs, command: ["/bin/true"], ...(hooks ? { hooks } : {}) }, 0));
    withDouble(() => {
      for (let i = 0; i < 3; i++) {
        // the second of a kind is cached, the third reuses it
        const child = compileChild(ctxOf(undefined), fds);
        assert.ok(child, "a native child for the plain spec");
        child.release();
      }
      const hooked = compileChild(ctxOf({ provision: ["touch", "/p"] }), fds);
      assert.equal(hooked, undefined, "the provision hook's container is forked");
    });
  } finally {
    if (saved === undefined) delete process.env.HAKO_NATIVE_SPAWN;
    else process.env.HAKO_NATIVE_SPAWN = saved;
  }
});

test("op list: the joined PID namespace continues in a child of the caller's on both paths", () => {
  const c: Case = {
    name: "joined pid",
    spec: () => ({
      command: ["/bin/true"],
      namespaces: ["mount", "uts", "ipc", { type: "pid", join: "/proc/self/ns/pid" }],
    }),
  };
  withCase(c, (ctx) => {
    const native = nativeOps(ctx)!;
    const steps = stepsFor(ctx).map((s) => s.name);
    assert.deepEqual(steps.slice(0, 3), ["non-dumpable", "join-namespaces", "enter-pid-namespace"]);
    assert.deepEqual(stepOrder(normalized(native.filter((o) => !NATIVE_FRAME.includes(o.step)), "native")), steps);
    // native: clone(CLONE_VM|CLONE_PARENT); the clone's child goes on (the parent reports its pid
    // and exits); forked: forkProcess(CLONE_PARENT), the same (setup.ts)
    const enter = native.filter((o) => o.step === "enter-pid-namespace");
    assert.deepEqual(enter.map((o) => o.call), ["clone"]);
    assert.equal(Number(enter[0]!.args[0]) & 0x8000, 0x8000, "CLONE_PARENT");
    const forked = forkedOps(ctx, { skip: FORKS });
    assertSameOps(
      normalized(native.filter((o) => !NATIVE_FRAME.includes(o.step) && !FORKS.includes(o.step)), "native"),
      normalized(forked.filter((o) => !FORKS.includes(o.step)), "forked"),
      "the calls around the clone",
    );
  });
});

// ---- (b) hako plan: the same steps, host steps included -------------------------------------

/** The host steps `hako plan` shows for a spec (the parent's part: container.ts). */
function hostSteps(spec: ContainerSpec, r: ResolvedSpec): string[] {
  return [
    "rootfs",
    ...(spec.hooks?.bootstrap ? ["bootstrap"] : []),
    ...(r.cgroupName ? ["cgroup"] : []),
    ...(plannedFiles(r).length ? ["etc-files"] : []),
    ...(r.mounts.some(isIdmapped) ? ["idmap-mounts"] : []),
    ...(r.mounts.some(isTmpcopyup) ? ["tmpcopyup"] : []),
    "clone",
    ...(r.newNamespaces.includes("user") ? ["id-maps"] : []),
    // (container.ts attaches the child to every cgroup it made, limits or none)
    ...(r.cgroupName ? ["cgroup-attach"] : []),
    ...(r.veth ? ["veth"] : []),
  ];
}

test("hako plan's id maps are what the parent writes: setgroups allowed as root, denied rootless, helpers beyond one's own ids", () => {
  using d = tempDir("hako-test-oplist-");
  const idMaps = (spec: ContainerSpec, euid: number) =>
    asUser(euid, () => planContainer(spec)).steps.find((s) => s.name === "id-maps")?.calls;
  const base = { name: "oplist-idmap", rootfs: d.path, command: ["/bin/true"] };
  // root, a user namespace: gid_map then uid_map, /proc/PID/setgroups left "allow" (as runc, crun)
  const root = idMaps({ ...base, namespaces: [...USERNS], idMap: ID_MAP }, 0)!;
  assert.ok(root, "an id-maps step");
  assert.ok(!root.some((l) => l.includes("deny")), `root writes no "deny": ${root.join(" | ")}`);
  assert.ok(root.some((l) => l.startsWith("gid_map: 0 3100000 65536")), root.join(" | "));
  // rootless, its own ids only: written directly, setgroups denied first (the kernel's rule)
  const own = idMaps({ ...base, namespaces: [...USERNS], cgroup: undefined }, 1000)!;
  assert.ok(own[0]?.includes('"deny"'), own.join(" | "));
  assert.ok(own.some((l) => l.startsWith("uid_map: 0 1000 1")), own.join(" | "));
  // rootless beyond its own ids: through newgidmap and newuidmap
  const wide = idMaps(
    { ...base, namespaces: [...USERNS], idMap: { uid: { inside: 0, outside: 200_000, size: 10 } } },
    1000,
  )!;
  assert.ok(wide.some((l) => l.startsWith("newgidmap PID")), wide.join(" | "));
  assert.ok(wide.some((l) => l.startsWith("newuidmap PID 0 200000 10")), wide.join(" | "));
});

test("the host's failures are named as hako plan names their steps", () => {
  // (container.ts's fail(step, …) for the id maps)
  const source = readFileSync(join(import.meta.dirname!, "..", "src", "container", "container.ts"), "utf8");
  const failed = new Set([...source.matchAll(/fail\("([a-z-]+)"/g)].map((m) => m[1]!));
  for (
    const name of ["cgroup", "etc-files", "idmap-mounts", "tmpcopyup", "id-maps", "cgroup-attach", "veth", "bootstrap"]
  ) {
    assert.ok(failed.has(name), `container.ts fails no step named ${name} (it has ${[...failed].join(", ")})`);
  }
});

/** A plan line's call: `name(` at its start, as the plan writes the kernel calls. */
const PLAN_ALIASES: Readonly<Record<string, string>> = { "open(O_CREAT)": "open", prlimit: "prlimit" };

for (const c of CASES) {
  test(`hako plan (${c.name}): the child's steps in the setup's order, after the host's, each naming calls it makes`, () => {
    withCase(c, (ctx, spec) => {
      const plan = asUser(c.euid ?? 0, () => planContainer(spec));
      const names = plan.steps.map((s) => `${s.where}:${s.name}`);
      const child = stepsFor(ctx).map((s) => `child:${s.name}`);
      const expected = [
        ...hostSteps(spec, ctx.spec).map((n) => `host:${n}`),
        ...child,
        ...(spec.hooks?.beforeStart ? ["host:beforeStart"] : []),
        "child:exec",
        ...(spec.hooks?.afterStop ? ["host:afterStop"] : []),
      ];
      assert.deepEqual(names, expected, "hako plan's steps");
      // each call a child step's plan names is one the step makes (forked, recorded)
      const forked = forkedOps(ctx, { skip: FORKS });
      for (const s of plan.steps.filter((x) => x.where === "child" && x.name !== "exec" && !FORKS.includes(x.name))) {
        const made = new Set(forked.filter((o) => o.step === s.name).map((o) => o.call));
        for (const text of s.calls) {
          const m = /^(open\(O_CREAT\)|[a-z_0-9]+)\(/.exec(text);
          if (!m) continue; // (a description: "bounding set: …", "mask /proc/kcore")
          const call = PLAN_ALIASES[m[1]!] ?? m[1]!;
          assert.ok(made.has(call), `${s.name}: the plan names ${call}, the step makes ${[...made].join(", ")}`);
        }
      }
    });
  });
}

test("hako plan --json prints that plan: the host's steps, the child's in the setup's order, exec", () => {
  using d = tempDir("hako-test-oplist-");
  const rootfs = join(d.path, "rootfs");
  mkdirSync(rootfs);
  const file = join(d.path, "spec.ts");
  const spec: ContainerSpec = { name: "oplist-cli", rootfs, command: ["/bin/true"], readonlyRootfs: true };
  writeFileSync(file, `export default ${JSON.stringify(spec)};\n`);
  const r = spawnSync(join(import.meta.dirname!, "..", "bin", "hako"), ["plan", "--json", file], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const printed = JSON.parse(r.stdout) as { steps: Array<{ where: string; name: string; calls: string[] }> };
  assert.deepEqual(printed, JSON.parse(JSON.stringify(planContainer(spec))));
  const ctx = contextOf(resolveSpec(spec));
  assert.deepEqual(
    printed.steps.filter((s) => s.where === "child").map((s) => s.name),
    [...stepsFor(ctx).map((s) => s.name), "exec"],
  );
}, {
  skip: isRoot ? false : "hako plan resolves the spec as its caller: as a non-root user it needs a user namespace",
});

test("the OCI runtime's re-exec rule (needsJsChild) forks exactly the filesystem mounts whose options setup.ts hands to Mount.mount", () => {
  using d = tempDir("hako-test-plainmount-");
  for (
    const o of ["", "ro", "nosuid", "shared", "rshared", "rslave", "private", "rprivate", "unbindable", "posixacl"]
      .concat(["remount", "move", "bind", "rbind", "ro,remount", "rslave,remount"])
  ) {
    const spec: ContainerSpec = {
      name: "oplist-plain",
      rootfs: d.path,
      command: ["/bin/true"],
      mounts: [{ type: "tmpfs", target: "/m", options: o ? o.split(",") : [] }],
    };
    const forked = stepCalls(contextOf(resolveAs(spec, 0)), "mounts").some((c) => c.op === "mount-options");
    assert.equal(needsJsChild(spec, true, parseOptions), forked, `options ${JSON.stringify(o)}`);
  }
});

// ---- (c) exec repeats the container's per-process steps -------------------------------------

/**
 * Every step of setup.ts, by what `hako exec` does with it: repeated for the command it runs, or
 * inherited by joining the container's namespaces, or done by exec on its own — with why. A new
 * step must be placed here (the test below fails until it is).
 */
const EXEC_REPEATS = [
  "become-root",
  "rlimits",
  "workdir",
  "new-session",
  "console",
  "seccomp-privileged",
  "capabilities",
  "user",
  "capability-sets",
  "no-new-privs",
  "seccomp",
];
const EXEC_OWN: Readonly<Record<string, string>> = {
  "non-dumpable": "exec's first child makes itself non-dumpable before it joins anything (execIn, compileExecIn)",
  "join-namespaces": "exec joins every namespace of the container's init itself, user first and mount last",
  "enter-pid-namespace": "exec forks its command's process after the setns, as the container's does",
};
const EXEC_INHERITS: Readonly<Record<string, string>> = {
  "time-namespace": "joined (the container's)",
  "cgroup-namespace": "joined (the container's)",
  "enter-rootfs": "the mount namespace joined is the container's, pivot_root'ed",
  "mount-namespace": "joined",
  "capture-propagating-sources": "the container's mounts, joined",
  "private-mounts": "the container's mounts, joined",
  "rootfs-bind": "the container's mounts, joined",
  "capture-host-sources": "the container's mounts, joined",
  "chroot-rootfs": "the container's mounts, joined",
  "mount-proc": "the container's mounts, joined",
  "mount-sys": "the container's mounts, joined",
  "mount-cgroup": "the container's mounts, joined",
  "mount-dev": "the container's mounts, joined",
  "mount-devpts": "the container's mounts, joined",
  "mount-shm": "the container's mounts, joined",
  "mount-mqueue": "the container's mounts, joined",
  "mount-init": "the container's mounts, joined",
  mounts: "the container's mounts, joined",
  "etc-files": "the container's mounts, joined",
  hostname: "the UTS namespace, joined",
  domainname: "the UTS namespace, joined",
  loopback: "the network namespace, joined",
  network: "the network namespace, joined",
  "hooks-sync": "the OCI hooks of create, once: an exec joins a running container",
  "pivot-root": "the container's root, joined with its mount namespace",
  "move-root": "the container's root, joined with its mount namespace (setns lands on the mount moved over its root)",
  "root-propagation": "the container's mounts, joined",
  "lookup-command":
    "OCI create's alone: an exec's command that is not there fails at its execve, reported to the caller",
  sysctl: "the container's namespaces, joined (their settings are the container's)",
  "masked-paths": "the container's mounts, joined",
  "readonly-paths": "the container's mounts, joined",
  "readonly-rootfs": "the container's mounts, joined",
  provision: "the container's hook, run once before its command",
};

test("exec: every setup step is repeated by hako exec, done by it its own way, or inherited by joining", () => {
  const placed = [...EXEC_REPEATS, ...Object.keys(EXEC_OWN), ...Object.keys(EXEC_INHERITS)];
  assert.deepEqual(
    SETUP_STEPS.map((s) => s.name).filter((n) => !placed.includes(n)),
    [],
    "steps to place in EXEC_REPEATS, EXEC_OWN or EXEC_INHERITS",
  );
  assert.deepEqual(EXEC_STEPS.map((s) => s.name), EXEC_REPEATS, "exec.ts's EXEC_STEPS");
});

for (const c of CASES) {
  test(`exec (${c.name}): hako exec repeats the container's per-process steps in its order, with its calls`, () => {
    withCase(c, (ctx) => {
      const container = forkedOps(ctx, { skip: FORKS });
      // what execIn's grandchild runs for a command given the container's spec (exec.ts)
      const execCtx: SetupContext = { spec: ctx.spec, userns: ctx.userns };
      const exec = forkedOps(execCtx, { steps: EXEC_STEPS });
      const repeated: string[] = stepsFor(ctx).map((s) => s.name).filter((n) => EXEC_REPEATS.includes(n));
      assert.deepEqual(stepOrder(exec), repeated, "exec's steps");
      assertSameOps(
        container.filter((o) => repeated.includes(o.step)),
        exec,
        "exec's calls (+ exec, - the container's)",
      );
      // (execIn's first forked child makes itself non-dumpable before it joins anything, exec.ts;
      // the grandchild that runs these steps inherits it)
      invariants(exec, "exec (forked)", { nonDumpableBefore: true });
    });
  });
}

// ---- (d) the order that keeps a container closed ----------------------------------------------

/** What the native programs do after the setup: the ready report, the start byte, stdio, close_range, the signals reset, execve. */
const FRAME_CALLS = ["write", "read", "dup2", "dup3", "close_range", "rt_sigaction", "rt_sigprocmask", "execve"];

/** The calls that confine the command, last of the setup: the capability sets, no_new_privs, the filter. */
const isConfinement = (o: Op) =>
  o.call === "capset" || o.call === "seccomp" ||
  (o.call === "prctl" && (o.args[0] === PR_SET_NO_NEW_PRIVS || o.args[0] === PR_CAP_AMBIENT));

/**
 * non-dumpable first; setsid, the change of user (setgroups always, then setresgid and setresuid),
 * then the capability sets; no_new_privs before the filter, the filter the last setup call;
 * nothing after the confinement but the native program's frame, then execve.
 */
function invariants(
  ops: readonly Op[],
  where: string,
  options: { readonly exec?: boolean; readonly nonDumpableBefore?: boolean } = {},
): void {
  // (a native container's child is non-dumpable from its birth: the parent holds itself
  // non-dumpable across the clone, native.ts's holdNonDumpable; its first ops read the go pipe)
  const first = options.exec ? ops[0] : ops.filter((o) => !NATIVE_FRAME.includes(o.step))[0];
  if (!options.nonDumpableBefore) {
    assert.deepEqual(
      [first?.call, first?.args[0], first?.args[1] ?? 0],
      ["prctl", PR_SET_DUMPABLE, 0],
      `${where}: non-dumpable first`,
    );
  }
  const at = (p: (o: Op) => boolean) => ops.findIndex(p);
  const last = (p: (o: Op) => boolean) => ops.findLastIndex(p);
  const setsid = at((o) => o.call === "setsid");
  const setgroups = at((o) => o.call === "setgroups");
  const setresuid = last((o) => o.call === "setresuid");
  const capset = last((o) => o.call === "capset");
  assert.ok(setsid >= 0, `${where}: setsid`);
  assert.ok(setgroups >= 0, `${where}: setgroups, always (the caller's groups never reach the command)`);
  assert.ok(setgroups < setresuid && setresuid < capset, `${where}: setgroups, setresuid, then capset`);
  const confined = last(isConfinement);
  const after = ops.slice(confined + 1).filter((o) => !FRAME_CALLS.includes(o.call));
  assert.deepEqual(after.map(line), [], `${where}: nothing but the frame after the confinement`);
  const seccomp = at((o) => o.call === "seccomp");
  const nnp = at((o) => o.call === "prctl" && o.args[0] === PR_SET_NO_NEW_PRIVS);
  if (seccomp >= 0 && nnp >= 0) {
    assert.equal(seccomp, confined, `${where}: the filter is the last setup call`);
    assert.ok(nnp < seccomp, `${where}: no_new_privs before the filter`);
  } else if (seccomp >= 0) {
    // without no_new_privs the kernel needs CAP_SYS_ADMIN: loaded before any capability goes and
    // before the change of user (as runc)
    const drop = at((o) => o.call === "prctl" && o.args[0] === PR_CAPBSET_DROP);
    assert.ok(drop < 0 || seccomp < drop, `${where}: the filter before the bounding set is trimmed`);
    assert.ok(seccomp < setgroups && seccomp < capset, `${where}: the filter before the change of user and the capset`);
  }
  const execve = at((o) => o.call === "execve");
  if (execve >= 0) assert.ok(setsid < execve && confined < execve, `${where}: setsid and the filter before execve`);
}

for (const c of CASES) {
  test(`order (${c.name}): non-dumpable first, setgroups always, capsets after the change of user, seccomp last`, () => {
    withCase(c, (ctx) => {
      const native = nativeOps(ctx);
      if (native) invariants(native, "native");
      invariants(forkedOps(ctx, { skip: FORKS }), "forked");
    });
  });
}

/** The x86-64 numbers of the calls the invariants look at (the native runner is x86-64's). */
const X86_64: Readonly<Record<string, number>> = {
  read: 0,
  write: 1,
  close: 3,
  rt_sigaction: 13,
  rt_sigprocmask: 14,
  dup3: 292,
  execve: 59,
  chdir: 80,
  setsid: 112,
  setgroups: 116,
  setresuid: 117,
  setresgid: 119,
  capset: 126,
  prctl: 157,
  exit_group: 231,
  openat: 257,
  prlimit: 302,
  setns: 308,
  seccomp: 317,
  close_range: 436,
};

/**
 * exec's native program, read back from its memory (op i's syscall number is word 0 of its 96
 * bytes, its arguments words 1..6): x86-64's runner only.
 */
function execNativeCalls(ctx: SetupContext): Op[] | undefined {
  const { value: built } = withDouble(() =>
    compileExecIn(
      ctx.spec,
      [{ path: "/proc/self/ns/uts", flag: 0x04000000 }],
      EXEC_STEPS,
      { go: ROOT_FD, status: ROOT_FD, stdio: [undefined, undefined, undefined] },
      ctx.userns,
    )
  ); // (the double: its capability plan as root with every capability, whoever runs the test)
  if (!built) return undefined;
  const view = new DataView(built.program.memory.buffer, built.program.memory.byteOffset);
  const name = new Map(Object.entries(X86_64).map(([k, v]) => [BigInt(v), k] as const));
  return Array.from({ length: built.program.length }, (_, i): Op => {
    const word = (k: number) => view.getBigInt64(HEADER_BYTES + i * OP_BYTES + k * 8, true);
    const nr = word(0);
    return {
      step: "exec",
      call: nr < 0n ? `op${nr}` : name.get(nr) ?? String(nr),
      args: [1, 2].map((k) => Number(BigInt.asIntN(32, word(k)))),
    };
  });
}

for (const c of CASES.filter((x) => !x.forkedOnly)) {
  test(`order (${c.name}): exec's native program too: non-dumpable first, setgroups, capsets after setresuid, seccomp last`, () => {
    withCase(c, (ctx) => {
      if (process.arch !== "x64") return console.error(`SKIP (inside the test): no native runner on ${process.arch}`);
      const saved = process.env.HAKO_NATIVE_SPAWN;
      process.env.HAKO_NATIVE_SPAWN = "1"; // (this reads the program; it runs nothing)
      try {
        const ops = execNativeCalls(ctx);
        assert.ok(ops, "a native exec program");
        invariants(ops, "exec (native)", { exec: true });
      } finally {
        if (saved === undefined) delete process.env.HAKO_NATIVE_SPAWN;
        else process.env.HAKO_NATIVE_SPAWN = saved;
      }
    });
  });
}

test("the op lists themselves: the double records the calls a step makes through libc; the native path ends at execve", () => {
  withCase(CASES[0]!, (ctx) => {
    const forked = forkedOps(ctx, { skip: FORKS });
    // (a step the double missed would show as a step with no call)
    assert.ok(forked.some((o) => o.step === "new-session" && o.call === "setsid"));
    assert.ok(forked.some((o) => o.step === "pivot-root" && o.call === "pivot_root"));
    // the path where every call succeeds ends at the first execve
    const native = nativeOps(ctx)!;
    assert.equal(native.at(-1)!.call, "execve");
    assert.deepEqual(successPath([]), []);
  });
});

// ---- from outside, as root: the drift this file found --------------------------------------

const rootSkip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

test("a read-only rootfs keeps its mount's nosuid on both paths (forked: it was cleared)", async () => {
  using d = tempDir("hako-test-oplist-");
  chmodSync(d.path, 0o755);
  const fs = join(d.path, "nosuid");
  mkdirSync(fs);
  execFileSync("mount", ["-t", "tmpfs", "-o", "nosuid,mode=755", "hako-test-oplist", fs]);
  try {
    const rootfs = buildRootfs(join(fs, "rootfs"), { builder: "busybox" }).path;
    // the options of the mount at / as the command sees it: ro and nosuid
    const script = "o=$(sed -nE 's|^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ / ([^ ]+) .*|\\1|p' /proc/self/mountinfo);" +
      'case ",$o," in *,ro,*) ;; *) exit 2;; esac; case ",$o," in *,nosuid,*) exit 0;; esac; exit 3';
    for (const native of ["1", "0"]) {
      const saved = process.env.HAKO_NATIVE_SPAWN;
      process.env.HAKO_NATIVE_SPAWN = native;
      try {
        const status = await run({
          name: `hako-test-oplist-ro-${native}-${process.pid}`,
          rootfs,
          readonlyRootfs: true,
          command: ["sh", "-c", script],
        });
        assert.equal(status.code, 0, `HAKO_NATIVE_SPAWN=${native}: exit ${status.code} (2: / not ro, 3: nosuid lost)`);
      } finally {
        if (saved === undefined) delete process.env.HAKO_NATIVE_SPAWN;
        else process.env.HAKO_NATIVE_SPAWN = saved;
      }
    }
  } finally {
    execFileSync("umount", ["-l", fs]);
  }
}, { skip: rootSkip });
