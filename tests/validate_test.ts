/**
 * Spec validation refuses what would hand the host to a container, before anything is touched:
 * ids that the kernel reads as "unchanged" (so root) or that wrap, raw cgroup keys that move or
 * kill processes, and a rootfs that is (or holds) the host's root.
 */
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, isRoot, tempDir, test } from "./_harness.ts";
import { type ContainerSpec, SpecError } from "../mod.ts";
import { resolveSpec } from "../src/container/validate.ts";
import { realRootfs } from "../src/container/_paths.ts";
import { assertValidExec } from "../src/container/exec.ts";
import { ConfigError } from "../src/errors.ts";
import { Cgroup } from "../mod.ts";
import { execFileSync } from "node:child_process";

const base: ContainerSpec = { name: "v", rootfs: "/var/lib/hako/none", command: ["true"] };

/** The field paths of the problems `resolveSpec` finds in `spec`. */
function problems(spec: ContainerSpec): string[] {
  try {
    resolveSpec(spec);
    return [];
  } catch (e) {
    assert(e instanceof SpecError, `not a SpecError: ${e}`);
    return e.problems.map((p) => p.path);
  }
}

test("user ids, group ids and supplementary groups must be in 0..4294967294 (-1 would leave the process root)", () => {
  for (const id of [4294967295, 2 ** 32, 2 ** 32 + 1000, -1, 1.5, Number.NaN]) {
    assertEquals(problems({ ...base, user: { uid: id } }), ["user.uid", "user.gid"], `uid ${id}`);
    assertEquals(problems({ ...base, user: { uid: 5, gid: id } }), ["user.gid"], `gid ${id}`);
    assertEquals(problems({ ...base, user: { uid: 5, groups: [1, id] } }), ["user.groups[1]"], `group ${id}`);
  }
  assertEquals(problems({ ...base, user: { uid: 4294967294, gid: 4294967294, groups: [4294967294] } }), []);
  assertEquals(problems({ ...base, user: { uid: 1, groups: 5 as unknown as number[] } }), ["user.groups"]);
  // An id whose message would call a hostile toString (spec_fuzz_test found `String(id)` throwing a
  // TypeError): still a SpecError naming the field.
  const hostile = [{ toString: [[]] }, Object.create(null), [[]], () => 1] as unknown as number[];
  for (const [i, id] of hostile.entries()) {
    assertEquals(problems({ ...base, user: { uid: 5, groups: [1, id] } }), ["user.groups[1]"], `hostile group ${i}`);
    assertEquals(problems({ ...base, user: { uid: id } }), ["user.uid", "user.gid"], `hostile uid ${i}`);
    assertEquals(problems({ ...base, rlimits: { NOFILE: id } }), ["rlimits.NOFILE"], `hostile rlimit ${i}`);
  }
});

test("in a user namespace, supplementary groups must be mapped", () => {
  const userns: ContainerSpec = {
    ...base,
    namespaces: ["mount", "pid", "user"],
    idMap: { uid: { inside: 0, outside: 100000, size: 100 } },
  };
  assertEquals(problems({ ...userns, user: { uid: 1, groups: [5, 100] } }), ["user.groups[1]"]);
});

test("an id map may not reach past 4294967294, inside or outside", () => {
  const spec = (inside: number, outside: number, size: number): ContainerSpec => ({
    ...base,
    namespaces: ["mount", "pid", "user"],
    idMap: { uid: { inside, outside, size } },
  });
  // (the gid map defaults to the uid map)
  assertEquals(problems(spec(0, 4294967295, 1)), ["idMap.uid[0]", "idMap.gid[0]"]);
  assertEquals(problems(spec(0, 4294967200, 100)), ["idMap.uid[0]", "idMap.gid[0]"]);
  assertEquals(problems({ ...spec(4294967290, 100000, 10), user: { uid: 4294967290 } }), [
    "idMap.uid[0]",
    "idMap.gid[0]",
  ]);
  assertEquals(problems(spec(0, 4294967195, 100)), []);
});

test("hako exec's --user is checked the same way", () => {
  for (const uid of [4294967295, 2 ** 32, -1]) {
    let err: unknown;
    try {
      assertValidExec(1, { argv: ["true"], user: { uid } });
    } catch (e) {
      err = e;
    }
    assert(err instanceof ConfigError && err.path === "user.uid", `uid ${uid}: ${err}`);
  }
});

test("raw cgroup keys that move, kill or release processes, or open devices, are refused", () => {
  for (const key of ["cgroup.procs", "tasks", "cgroup.threads", "cgroup.kill", "release_agent", "notify_on_release"]) {
    assertEquals(problems({ ...base, cgroup: { raw: { [key]: 1 } } }), [`cgroup.raw["${key}"]`], key);
  }
  assertEquals(problems({ ...base, cgroup: { raw: { "devices.allow": "a *:* rwm" } } }), [
    'cgroup.raw["devices.allow"]',
  ]);
  assertEquals(problems({ ...base, cgroup: { raw: { "cpu.cfs_quota_us": 30000 } } }), []);
  // The primitive refuses them too.
  let err: unknown;
  try {
    new Cgroup.PIDS("hako-test-raw").set("cgroup.procs", 1);
  } catch (e) {
    err = e;
  }
  assert(err instanceof ConfigError && err.path === "cgroup.procs", String(err));
});

test("a rootfs that resolves to the host's root is refused: a symlink to / or to /proc/1/root", () => {
  using dir = tempDir();
  for (const target of ["/", "/proc/1/root", "/proc/self/root/"]) {
    const link = join(dir.path, `link-${target.replaceAll("/", "_")}`);
    symlinkSync(target, link);
    let err: unknown;
    try {
      realRootfs(link);
    } catch (e) {
      err = e;
    }
    // (Where this process may not look into PID 1's root, resolving it fails: refused all the same.)
    assert(err instanceof Error && /host's root|EACCES/.test(err.message), `${target}: ${err}`);
  }
  const ok = join(dir.path, "rootfs");
  mkdirSync(ok);
  assertEquals(realRootfs(ok), ok);
  const indirect = join(dir.path, "indirect");
  symlinkSync(ok, indirect);
  assertEquals(realRootfs(indirect), ok, "a symlink to a real rootfs is followed once, here, and its real path kept");
}, { skip: isRoot ? false : "reads /proc/1/root, which needs root" });

test("a rootfs with the host's root mounted under it is refused", () => {
  using dir = tempDir();
  const rootfs = join(dir.path, "rootfs");
  mkdirSync(join(rootfs, "host"), { recursive: true });
  execFileSync("mount", ["--bind", "/", join(rootfs, "host")]);
  try {
    let err: unknown;
    try {
      realRootfs(rootfs);
    } catch (e) {
      err = e;
    }
    assert(err instanceof Error && /mounted at .*host/.test(err.message), String(err));
    // A bind mount of / as the rootfs itself.
    let err2: unknown;
    try {
      realRootfs(join(rootfs, "host"));
    } catch (e) {
      err2 = e;
    }
    assert(err2 instanceof Error && /host's root/.test(err2.message), String(err2));
  } finally {
    execFileSync("umount", ["-l", join(rootfs, "host")]);
  }
}, { skip: isRoot ? false : "needs root to bind-mount /" });

/** The problems `resolveSpec` finds in `spec`, as `path: message` lines. */
function messages(spec: unknown): string[] {
  try {
    resolveSpec(spec as ContainerSpec);
    return [];
  } catch (e) {
    assert(e instanceof SpecError, `not a SpecError: ${(e as Error)?.name}: ${(e as Error)?.message}`);
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
}

/** Asserts that `spec` is refused with a problem at `path` whose message matches `pattern`. */
function refused(spec: unknown, path: string, pattern: RegExp = /./): void {
  const found = messages(spec);
  assert(
    found.some((m) => m.startsWith(`${path}: `) && pattern.test(m.slice(path.length + 2))),
    `expected a problem at ${path} matching ${pattern}, got:\n  ${found.join("\n  ")}`,
  );
}

test("values of the wrong type are SpecErrors naming the field, never a TypeError or RangeError", () => {
  refused({ ...base, idMap: { gid: "ALL" } }, "idMap.gid", /must be a range/);
  refused({ ...base, namespaces: true }, "namespaces", /must be an array/);
  refused({ ...base, rootfs: { path: 5 } }, "rootfs.path", /non-empty string, got 5/);
  refused({ ...base, readonlyPaths: 0 }, "readonlyPaths", /must be an array/);
  refused({ ...base, mounts: 1.5 }, "mounts", /must be an array/);
  refused({ ...base, mounts: [null] }, "mounts[0]", /must be a mount/);
  refused({ ...base, capabilities: [5] }, "capabilities[0]", /capability name/);
  refused({ ...base, capabilities: { drop: 0 } }, "capabilities.drop", /must be an array/);
  refused({ ...base, namespaces: ["mount", "toString"] }, "namespaces[1]", /unknown namespace "toString"/);
  refused({ ...base, namespaces: ["mount", { type: "net", join: 7 }] }, "namespaces[1].join");
  refused({ ...base, user: { uid: "0" } }, "user.uid", /integer id/);
  refused({ ...base, env: { A: 1 } }, "env.A", /must be a string/);
  refused({ ...base, network: { veth: { hostAddress: 10 } } }, "network.veth.hostAddress", /CIDR/);
  refused({ ...base, seccomp: { defaultAction: 5n, syscalls: [] } }, "seccomp.defaultAction", /bigint/);
  refused({ ...base, hooks: { afterStop: ["echo", "a\0b"] } }, "hooks.afterStop", /NUL/);
  refused(null, "spec", /must be an object/);
  refused("web", "spec", /must be an object/);
});

test("a spec nested 3000 deep, a cycle, a getter that throws or a class instance is a SpecError", () => {
  let deep: unknown = [];
  for (let i = 0; i < 3000; i++) deep = [deep];
  const [p1] = messages({ ...base, command: deep });
  assert(/^command(\[0\])+: nests deeper than \d+ levels$/.test(p1 ?? ""), String(p1));
  const [p2] = messages({ ...base, mounts: [{ type: "tmpfs", target: "/x", options: deep }] });
  assert(/^mounts\[0\]\.options(\[0\])+: nests deeper/.test(p2 ?? ""), String(p2));
  const cyclic: Record<string, unknown> = { type: "tmpfs", target: "/x" };
  cyclic.options = [cyclic];
  refused({ ...base, mounts: [cyclic] }, "mounts[0].options[0]", /refers back to itself/);
  refused(
    {
      ...base,
      get hostname(): string {
        throw new Error("boom");
      },
    },
    "hostname",
    /could not be read: boom/,
  );
  refused({ ...base, workdir: new Date(0) }, "workdir", /plain data.*Date/);
  refused({ ...base, env: { A: Symbol("x") } }, "env.A", /symbol/);
});

test('booleans are booleans and enums their values: "false" is not false, "bogus" is not the default', () => {
  refused({ ...base, readonlyRootfs: "false" }, "readonlyRootfs", /must be a boolean.*"false"/);
  refused({ ...base, standardMounts: 0 }, "standardMounts", /must be a boolean/);
  refused({ ...base, noNewPrivs: null }, "noNewPrivs", /must be a boolean/);
  refused({ ...base, idMap: { allowHostIds: "yes" } }, "idMap.allowHostIds", /must be a boolean/);
  refused({ ...base, stdio: "bogus" }, "stdio", /one of "inherit", "null"/);
  refused({ ...base, networkEtc: true }, "networkEtc", /one of "host", "generate", false/);
  refused({ ...base, rootfs: { builder: "debian", path: "/x" } }, "rootfs.builder", /one of/);
});

test("unknown keys are refused at every level, with the near miss named", () => {
  refused({ ...base, comand: "ls" }, "comand", /did you mean "command"/);
  refused({ ...base, cgroups: {} }, "cgroups", /did you mean "cgroup"/);
  refused({ ...base, capabilites: [] }, "capabilites", /did you mean "capabilities"/);
  refused({ ...base, seccom: false }, "seccom", /did you mean "seccomp"/);
  refused({ ...base, privileged: true }, "privileged", /no privileged mode/);
  refused({ ...base, cgroup: { pids: { maxx: 5 } } }, "cgroup.pids.maxx", /did you mean "max"/);
  refused({ ...base, mounts: [{ type: "tmpfs", target: "/x", option: ["ro"] }] }, "mounts[0].option", /"options"/);
  refused({ ...base, network: { veth: { hostAdress: "10.9.9.1/30" } } }, "network.veth.hostAdress", /"hostAddress"/);
  refused({ ...base, rootfs: { path: "/x", tarbal: "a.tar" } }, "rootfs.tarbal", /did you mean "tarball"/);
  refused({ ...base, user: { uid: 1, grups: [] } }, "user.grups", /did you mean "groups"/);
  refused({ ...base, rlimits: { NOFILES: 5 } }, "rlimits.NOFILES", /did you mean "NOFILE"/);
  refused({ ...base, hooks: { beforestart: "true" } }, "hooks.beforestart", /did you mean "beforeStart"/);
  refused({ ...base, seccomp: { defaultAction: "errno", syscalls: [], arch: [] } }, "seccomp.arch");
  // Prototype keys are keys like any other (JSON.parse makes `__proto__` an own key).
  refused(JSON.parse('{"name":"v","rootfs":"/x","command":["true"],"__proto__":{"privileged":true}}'), "__proto__");
  refused({ ...base, toString: "x" }, "toString", /is not a field/);
  refused({ ...base, cgroup: { constructor: {} } }, "cgroup.constructor", /is not a field/);
});

test("strings the kernel would refuse are refused first: NUL bytes, long paths, a hostname with '/' or a newline", () => {
  refused({ ...base, command: ["echo", "a\0b"] }, "command[1]", /NUL/);
  refused({ ...base, command: [""] }, "command[0]", /names the program/);
  refused({ ...base, env: { A: "x\0y" } }, "env.A", /NUL/);
  refused({ ...base, env: { "A=B": "x" } }, 'env["A=B"]', /not a valid variable name/);
  refused({ ...base, env: { A: "x".repeat(200_000) } }, "env.A", /at most 131071/);
  refused({ ...base, workdir: `/${"d".repeat(5000)}` }, "workdir", /at most 4095/);
  refused({ ...base, hostname: "a\nb" }, "hostname", /control characters/);
  refused({ ...base, hostname: "a/b" }, "hostname", /'\/'/);
  refused({ ...base, hostname: "h".repeat(65) }, "hostname", /1-64 bytes/);
  refused({ ...base, mounts: [{ type: "tmp fs", target: "/x" }] }, "mounts[0].type", /filesystem type/);
  refused({ ...base, command: Array(30).fill("x".repeat(100_000)) }, "command", /execve takes at most/);
  assertEquals(messages({ ...base, hostname: "ok-host", env: { A: "" }, command: ["echo", ""] }), []);
});

test("mount options are an array of single options, and a bind mount's options are ones it honours", () => {
  refused(
    { ...base, mounts: [{ type: "tmpfs", target: "/x", options: "size=1m" }] },
    "mounts[0].options",
    /array of strings.*not a string/,
  );
  refused(
    { ...base, mounts: [{ type: "tmpfs", target: "/x", options: ["ro,nosuid"] }] },
    "mounts[0].options[0]",
    /one option/,
  );
  refused(
    { ...base, mounts: [{ type: "bind", source: "/etc", target: "/x", options: ["noatime"] }] },
    "mounts[0].options[0]",
    /ignored on a bind mount/,
  );
  // (nosuid, nodev and noexec are a bind's remount flags: honoured)
  assertEquals(
    messages({
      ...base,
      mounts: [{ type: "bind", source: "/etc", target: "/x", options: ["nosuid", "nodev", "noexec"] }],
    }),
    [],
  );
  refused({ ...base, mounts: [{ type: "tmpfs", target: "/x", readonly: "yes" }] }, "mounts[0].readonly", /boolean/);
  assertEquals(
    messages({
      ...base,
      mounts: [
        { type: "tmpfs", target: "/x", options: ["size=1m", "nosuid", "mpol=bind:0,1"] },
        { type: "bind", source: "/etc", target: "/y", options: ["ro", "norbind"] },
      ],
    }),
    [],
  );
});

test("capabilities and rlimits must be ones the kernel knows; add/drop ALL work as docker's", () => {
  refused({ ...base, capabilities: ["CAP_CHOWN", "CAP_FLY"] }, "capabilities[1]", /unknown capability "CAP_FLY"/);
  refused({ ...base, capabilities: { add: ["sys_admin", "nope"] } }, "capabilities.add[1]", /unknown capability/);
  refused({ ...base, capabilities: ["ALL"] }, "capabilities[0]", /ALL goes in/);
  refused({ ...base, rlimits: { FLY: 1 } }, "rlimits.FLY", /is not a resource/);
  refused(
    { ...base, rlimits: { NOFILE: [2048, 1024] } },
    "rlimits.NOFILE",
    /soft limit 2048 is above the hard limit 1024/,
  );
  refused({ ...base, rlimits: { NOFILE: 5, nofile: 6 } }, "rlimits.nofile", /same limit as rlimits.NOFILE/);
  refused({ ...base, rlimits: { CORE: -1 } }, "rlimits.CORE", /a count/);
  refused({ ...base, rlimits: { CORE: Infinity } }, "rlimits.CORE", /a count/);
  assertEquals(resolveSpec({ ...base, capabilities: ["chown", "CAP_KILL", "cap_kill"] }).capabilities, [
    "CAP_CHOWN",
    "CAP_KILL",
  ]);
  assertEquals(resolveSpec({ ...base, capabilities: { drop: ["ALL"], add: ["net_admin"] } }).capabilities, [
    "CAP_NET_ADMIN",
  ]);
  const all = resolveSpec({ ...base, capabilities: { add: ["ALL"] } }).capabilities;
  assert(all.includes("CAP_SYS_ADMIN") && all.length >= 38, all.join(", "));
  assertEquals(resolveSpec({ ...base, rlimits: { NOFILE: [1024, "unlimited"] } }).rlimits, {
    NOFILE: [1024, "unlimited"],
  });
}, { skip: isRoot ? false : "a non-root caller is rootless: the base spec needs a user namespace then" });

test("cgroup numbers outside what the controllers take are refused before anything is made", () => {
  refused({ ...base, cgroup: { cpu: { quotaUs: 10 } } }, "cgroup.cpu.quotaUs", /1000/);
  refused({ ...base, cgroup: { cpu: { periodUs: 5_000_000 } } }, "cgroup.cpu.periodUs", /1000\.\.1000000/);
  refused({ ...base, cgroup: { cpu: { weight: 0 } } }, "cgroup.cpu.weight", /1\.\.10000/);
  refused({ ...base, cgroup: { cpu: { shares: 1 } } }, "cgroup.cpu.shares", /2\.\.262144/);
  refused({ ...base, cgroup: { cpu: { weight: 100, shares: 1024 } } }, "cgroup.cpu.shares", /not both/);
  refused({ ...base, cgroup: { pids: { max: -5 } } }, "cgroup.pids.max");
  refused({ ...base, cgroup: { pids: { max: "50" } } }, "cgroup.pids.max", /must be a number/);
  refused({ ...base, cgroup: { memory: { limit: "lots" } } }, "cgroup.memory.limit", /size/);
  refused({ ...base, cgroup: { memory: { limit: 0 } } }, "cgroup.memory.limit", /more than 0/);
  refused({ ...base, cgroup: { cpuset: { cpus: "0-a" } } }, "cgroup.cpuset.cpus", /list like/);
  refused({ ...base, cgroup: { io: { readBps: { sda: 5 } } } }, "cgroup.io.readBps.sda", /MAJ:MIN/);
  refused({ ...base, cgroup: { raw: { "pids.max": Infinity } } }, 'cgroup.raw["pids.max"]', /finite number/);
  refused({ ...base, cgroup: { name: "a".repeat(200).split("").join("/") + "/b".repeat(1900) } }, "cgroup.name");
  assertEquals(
    messages({
      ...base,
      cgroup: {
        cpu: { quotaUs: "max", periodUs: 100_000, weight: 100 },
        memory: { limit: "64M", swap: 0 },
        pids: { max: "max" },
        io: { weight: 100, readBps: { "8:0": 1048576 } },
        raw: { "pids.max": 50 },
      },
    }),
    [],
  );
}, { skip: isRoot ? false : "a non-root caller is rootless: the base spec needs a user namespace then" });

test("an accepted spec's resolved form is a copy: changing the input afterwards changes nothing", () => {
  const env: Record<string, string> = { A: "1" };
  const spec = { ...base, env, mounts: [{ type: "tmpfs", target: "/x" }] };
  const r = resolveSpec(spec);
  env.A = "2";
  spec.mounts[0]!.target = "/etc";
  assertEquals(r.env.A, "1");
  assertEquals(r.mounts[0]!.target, "/x");
}, { skip: isRoot ? false : "a non-root caller is rootless: the base spec needs a user namespace then" });
