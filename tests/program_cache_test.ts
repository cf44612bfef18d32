/**
 * The native program cache (native.ts's `ProgramCache`): its key is the typed list of what decides
 * a container's program, so a change of any of those misses the cache — the bug class of "a cached
 * program skipping a provision hook", where the key was the spec's JSON minus some fields and the
 * step a hook adds was not in it. Needs no root and touches no kernel: the keys are computed, the
 * programs listed (`nativeListing` under the recording double), never run.
 * @module
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { tempDir, test } from "./_harness.ts";
import { withDouble } from "./_oplist.ts";
import { DECIDING, NOT_DECIDING, ProgramCache, type ProgramKey } from "../src/container/native.ts";
import { capabilityPlan } from "../src/container/_capsets.ts";
import type { KeepPlan } from "../src/capability.ts";
import { plannedFiles } from "../src/container/plan.ts";
import type { SetupContext } from "../src/container/setup.ts";
import { type ResolvedSpec, resolveSpec } from "../src/container/validate.ts";

type Spec = SetupContext["spec"];
type Deciding = (typeof DECIDING)[number];

/** Resolves a plain spec as root would (whoever runs the test). */
function resolveAsRoot(rootfs: string): ResolvedSpec {
  const p = process as { geteuid?: () => number; getegid?: () => number };
  const saved = [p.geteuid, p.getegid] as const;
  p.geteuid = () => 0;
  p.getegid = () => 0;
  try {
    return resolveSpec({ name: "cache-test", rootfs, command: ["/bin/true"], hostname: "box" });
  } finally {
    [p.geteuid, p.getegid] = saved;
  }
}

/** Another value for every deciding field (typed: a field added to the key needs one here). */
function changed(spec: Spec): { readonly [K in Deciding]: Spec[K] } {
  return {
    argv: ["/bin/false"],
    env: { ...spec.env, CACHE_TEST: "1" },
    workdir: "/tmp",
    user: { uid: 1000, gid: 1000, groups: [] },
    rootfsPath: `${spec.rootfsPath}-other`,
    newNamespaces: spec.newNamespaces.filter((n) => n !== "ipc"),
    joinNamespaces: [{ type: "net", path: "/proc/1/ns/net" }],
    uidMap: [{ inside: 0, outside: 100_000, size: 1 }],
    gidMap: [{ inside: 0, outside: 100_000, size: 1 }],
    hostname: "other",
    domainname: "other.example",
    sysctl: [{ key: "net.ipv4.ip_forward", value: "1" }],
    timeOffsets: { monotonic: 5, boottime: 0 },
    readonlyRootfs: !spec.readonlyRootfs,
    rootfsPropagation: "rshared",
    standardMounts: !spec.standardMounts,
    writableSysfs: !spec.writableSysfs,
    writableCgroupfs: !spec.writableCgroupfs,
    shm: !spec.shm,
    devNoexec: !spec.devNoexec,
    mounts: [{ type: "tmpfs", target: "/scratch" }],
    devices: [{ path: "/dev/fuse", type: "c", major: 10, minor: 229 }],
    networkEtc: spec.networkEtc === "host" ? false : "host",
    maskedPaths: [...spec.maskedPaths, "/proc/cache-test"],
    readonlyPaths: [...spec.readonlyPaths, "/proc/cache-test"],
    capabilities: ["CAP_CHOWN"],
    capabilitySets: {
      bounding: ["CAP_CHOWN"],
      effective: ["CAP_CHOWN"],
      permitted: ["CAP_CHOWN"],
      inheritable: [],
      ambient: [],
    },
    ambientCapabilities: ["CAP_CHOWN"],
    rlimits: { NOFILE: 64 },
    noNewPrivs: !spec.noNewPrivs,
    seccomp: false,
    seccompProgram: new Uint8Array(8),
    loopback: !spec.loopback,
    rootless: !spec.rootless,
    init: "/sbin/other-init",
  };
}

const PLAN: KeepPlan = { mask: 0x4ebn, drops: [1, 2], ambient: false };
const STDIO = ["=", "=", "="];

function fixture(): { ctx: SetupContext; dispose: () => void } {
  const d = tempDir("hako-test-cache-");
  const rootfs = join(d.path, "rootfs");
  mkdirSync(rootfs);
  const spec = resolveAsRoot(rootfs);
  return {
    ctx: { spec, userns: false, files: plannedFiles(spec) },
    dispose: () => d[Symbol.dispose](),
  };
}

const text = (k: ProgramKey) => JSON.stringify(k);

/** The native program of `c` (under the recording double) as text, to compare two programs. */
async function listing(c: SetupContext): Promise<string> {
  const { nativeListing } = await import("../src/container/native.ts");
  return JSON.stringify(
    withDouble(() => nativeListing(c, capabilityPlan(c.spec, c.userns))).value,
    (_, v) => typeof v === "bigint" ? String(v) : v instanceof Uint8Array ? [...v] : v,
  );
}

test("program cache: every field of a resolved spec is either in the key or said not to decide the program", () => {
  const { ctx, dispose } = fixture();
  try {
    const listed = new Set<string>([...DECIDING, ...Object.keys(NOT_DECIDING)]);
    for (const field of Object.keys(ctx.spec)) assert.ok(listed.has(field), `${field}: neither deciding nor not`);
    for (const field of DECIDING) assert.ok(!(field in NOT_DECIDING), `${field}: both`);
  } finally {
    dispose();
  }
});

test("program cache: a change of any deciding field gives another key (and misses the cache)", () => {
  const { ctx, dispose } = fixture();
  try {
    const cache = new ProgramCache();
    const base = cache.key(ctx, PLAN, STDIO, 0);
    // (a template is kept from the second of a kind on)
    const template = { marker: "base", valid: () => true } as unknown as Parameters<ProgramCache["offer"]>[1];
    cache.offer(base, template);
    cache.offer(base, template);
    assert.equal(cache.get(cache.key(ctx, PLAN, STDIO, 0)), template, "the same kind hits");
    const other = changed(ctx.spec);
    for (const field of DECIDING) {
      const spec = { ...ctx.spec, [field]: other[field] } as Spec;
      assert.deepEqual(spec[field], other[field]);
      const key = cache.key({ ...ctx, spec }, PLAN, STDIO, 0);
      assert.notEqual(text(key), text(base), `a change of ${field} keeps the key`);
      assert.equal(cache.get(key), undefined, `a change of ${field} hits the cache`);
    }
    // what the context and the caller add
    const variants: Array<[string, ProgramKey]> = [
      [
        "a provision hook (its step)",
        cache.key({ ...ctx, spec: { ...ctx.spec, hooks: { provision: ["true"] } } }, PLAN, STDIO, 0),
      ],
      ["a user namespace", cache.key({ ...ctx, userns: true }, PLAN, STDIO, 0)],
      ["no files", cache.key({ ...ctx, files: [] }, PLAN, STDIO, 0)],
      ["a console size", cache.key({ ...ctx, console: { socket: 9, size: { rows: 1, columns: 2 } } }, PLAN, STDIO, 0)],
      ["an exec fifo", cache.key({ ...ctx, execFifo: 7 }, PLAN, STDIO, 0)],
      ["fds passed on (--preserve-fds)", cache.key({ ...ctx, preserveFds: 2 }, PLAN, STDIO, 0)],
      ["the rootfs moved, not pivoted to (--no-pivot)", cache.key({ ...ctx, noPivot: [] }, PLAN, STDIO, 0)],
      ["OCI hooks' sync point (hooks-sync)", cache.key({ ...ctx, hooksSync: 8 }, PLAN, STDIO, 0)],
      ["another capability plan", cache.key(ctx, { ...PLAN, drops: [1] }, STDIO, 0)],
      ["stdio dup'ed", cache.key(ctx, PLAN, ["dup", "=", "="], 0)],
      ["fds to close", cache.key(ctx, PLAN, STDIO, 2)],
      ["cgroup v1 directories the child joins itself", cache.key(ctx, PLAN, STDIO, 0, ["/sys/fs/cgroup/pids/…/tasks"])],
    ];
    for (const [what, key] of variants) {
      assert.notEqual(text(key), text(base), `${what} keeps the key`);
      assert.equal(cache.get(key), undefined, `${what} hits the cache`);
    }
    // --no-pivot: the host mounts it detaches are part of the program
    assert.notEqual(
      text(cache.key({ ...ctx, noPivot: [{ path: "/proc", cover: true }] }, PLAN, STDIO, 0)),
      text(cache.key({ ...ctx, noPivot: [] }, PLAN, STDIO, 0)),
    );
    // OCI: /sys/fs/cgroup shows every hierarchy the container was put in
    assert.notEqual(
      text(cache.key({ ...ctx, otherCgroups: true }, PLAN, STDIO, 0)),
      text(cache.key(ctx, PLAN, STDIO, 0)),
    );
    // startContainer hooks: the exec fifo's second byte is another program than the fifo alone
    assert.notEqual(
      text(cache.key({ ...ctx, execFifo: 7, startSync: true }, PLAN, STDIO, 0)),
      text(cache.key({ ...ctx, execFifo: 7 }, PLAN, STDIO, 0)),
    );
  } finally {
    dispose();
  }
});

test("program cache: what does not decide the program keeps the key, and the program is the same", async () => {
  const { ctx, dispose } = fixture();
  try {
    const cache = new ProgramCache();
    const base = text(cache.key(ctx, PLAN, STDIO, 0));
    const same: Array<[string, Partial<Spec>]> = [
      ["the name", { name: "cache-test-2" }],
      ["the cgroup", { cgroup: { pids: { max: 10 } }, cgroupName: "hako/other" }],
      ["stdio", { stdio: "null" }],
      ["the host's hooks", { hooks: { beforeStart: ["true"], afterStop: ["true"] } }],
    ];
    for (const [what, change] of same) {
      const c = { ...ctx, spec: { ...ctx.spec, ...change } as Spec };
      assert.equal(text(cache.key(c, PLAN, STDIO, 0)), base, `${what} changes the key`);
      assert.equal(await listing(c), await listing(ctx), `${what} changes the program`);
    }
  } finally {
    dispose();
  }
});

test("program cache: containers whose cgroups show differently at /sys/fs/cgroup never share a key", async () => {
  // (a limit that gives a hierarchy of its own — cpuset on a v1 host — and, without a cgroup
  // namespace, the name of the directories bound there: in the program, so in the key)
  const { ctx, dispose } = fixture();
  try {
    const cache = new ProgramCache();
    const noCgroupns = ctx.spec.newNamespaces.filter((n) => n !== "cgroup");
    const variants: Array<[string, Partial<Spec>]> = [
      ["the fixture", {}],
      ["a cpuset limit", { cgroup: { cpuset: { cpus: "0" } } }],
      ["a pids limit", { cgroup: { pids: { max: 10 } } }],
      ["another name", { cgroupName: "hako/other" }],
      ["no cgroup namespace", { newNamespaces: noCgroupns }],
      ["no cgroup namespace, another name", { newNamespaces: noCgroupns, cgroupName: "hako/other" }],
      ["no cgroup namespace, a cpuset limit", { newNamespaces: noCgroupns, cgroup: { cpuset: { cpus: "0" } } }],
    ];
    const seen = await Promise.all(variants.map(async ([what, change]) => {
      const c = { ...ctx, spec: { ...ctx.spec, ...change } as Spec };
      return { what, key: text(cache.key(c, PLAN, STDIO, 0)), program: await listing(c) };
    }));
    for (const a of seen) {
      for (const b of seen) {
        if (a.key === b.key) assert.equal(a.program, b.program, `${a.what} and ${b.what}: one key, two programs`);
      }
    }
  } finally {
    dispose();
  }
});

test("a child given cgroup v1 tasks files writes 0 into each and closes it, first of all, before it waits for the go byte", async () => {
  const { nativeListing } = await import("../src/container/native.ts");
  const { ctx, dispose } = fixture();
  try {
    const files = ["/sys/fs/cgroup/pids/…/tasks", "/sys/fs/cgroup/memory/…/tasks"];
    const ops = withDouble(() => nativeListing(ctx, capabilityPlan(ctx.spec, ctx.userns), files)).value!;
    const calls = ops.map((o) => o.kind === "call" ? { name: o.name, step: o.step, shown: o.shown } : { name: o.kind });
    assert.deepEqual(calls.slice(0, 4), [
      { name: "write", step: "join-cgroups", shown: [files[0], "0"] },
      { name: "close", step: "join-cgroups", shown: [files[0]] },
      { name: "write", step: "join-cgroups", shown: [files[1], "0"] },
      { name: "close", step: "join-cgroups", shown: [files[1]] },
    ]);
    const go = calls.findIndex((c) => c.name === "read");
    assert.ok(go >= 4 && calls.slice(4, go).every((c) => c.name === "close"), JSON.stringify(calls.slice(0, go + 1)));
    const plain = withDouble(() => nativeListing(ctx, capabilityPlan(ctx.spec, ctx.userns))).value!;
    assert.equal(ops.length, plain.length + 4, "four calls more, nothing else");
  } finally {
    dispose();
  }
});
