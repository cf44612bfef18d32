import process from "node:process";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { deepEqual, equal, match, notEqual, ok, throws } from "node:assert/strict";
import { needsRoot, tempDir, test } from "./_harness.ts";
import { Cgroup, ConfigError, SyscallError } from "../mod.ts";
import { run } from "../src/container/container.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import {
  BPF_INSN,
  BPF_PROG_TYPE_CGROUP_DEVICE,
  bpfProgGetFdById,
  bpfProgLoad,
  decodeBpfInsns,
  encodeBpfInsns,
} from "../ffi/bpf.ts";
import { libc } from "../ffi/libc.ts";
import { exit } from "../src/cgroup/_ebpf.ts";

// Every cgroup a test makes is named hako-test-devices-<pid>-<random>…, and removed in `finally`
// even when the test fails.

const unique = () => `hako-test-devices-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

function layout(): Cgroup.Layout | null {
  try {
    return Cgroup.detect();
  } catch {
    return null;
  }
}
const unified = layout()?.unified ?? null;
const needsUnified: string | false = needsRoot || (unified ? false : "no cgroup2 mount on this host");
const devicesV1 = layout()?.v1.devices ?? null;
const needsV1: string | false = needsRoot || (devicesV1 ? false : "no cgroup v1 devices controller on this host");

const c = (major: number | "*", minor: number | "*", access: string, allow = true): Cgroup.DeviceRule => ({
  type: "c",
  major,
  minor,
  access,
  allow,
});

// ── rules: what they mean, and what is refused (no root needed) ─────────────────────────────────

test("the default rules are runc's AllowedDevices, in runc's order", () => {
  const lines = Cgroup.DEFAULT_DEVICE_RULES.map((r) => `${r.type} ${r.major}:${r.minor} ${r.access} ${r.allow}`);
  deepEqual(lines, [
    "c *:* m true",
    "b *:* m true",
    "c 1:3 rwm true",
    "c 1:8 rwm true",
    "c 1:7 rwm true",
    "c 5:0 rwm true",
    "c 1:5 rwm true",
    "c 1:9 rwm true",
    "c 136:* rwm true",
    "c 5:2 rwm true",
    "c 10:200 rwm true",
  ]);
  ok(Object.isFrozen(Cgroup.DEFAULT_DEVICE_RULES) && Object.isFrozen(Cgroup.DEFAULT_DEVICE_RULES[0]));
  deepEqual(Cgroup.withDefaultDeviceRules([c(10, 229, "rwm")]).slice(0, 2), [c(10, 229, "rwm"), {
    type: "c",
    major: "*",
    minor: "*",
    access: "m",
    allow: true,
  }]);
});

test("a rule list reads the way cgroup v1 reads it: merged access, a deny takes away, an 'a' rule resets", () => {
  deepEqual(Cgroup.resolveDeviceRules([]), { defaultAllow: false, exceptions: [] });
  deepEqual(
    Cgroup.resolveDeviceRules([c(1, 3, "r"), c(1, 3, "w"), c(1, 5, "rwm"), c(1, 5, "m", false), c(1, 9, "r", false)]),
    {
      defaultAllow: false,
      exceptions: [{ type: "c", major: 1, minor: 3, access: "rw" }, { type: "c", major: 1, minor: 5, access: "rw" }],
    },
  );
  // docker's spec starts with "deny all"; an "allow all" (privileged) makes the rest deny exceptions
  deepEqual(Cgroup.resolveDeviceRules([{ access: "rwm", allow: false }, c(1, 3, "rwm")]).exceptions.length, 1);
  deepEqual(
    Cgroup.resolveDeviceRules([c(1, 3, "rwm"), { type: "a", access: "rwm", allow: true }, c(10, "*", "rw", false)]),
    { defaultAllow: true, exceptions: [{ type: "c", major: 10, minor: "*", access: "rw" }] },
  );
  // the defaults: mknod of anything, rwm to the nine safe devices
  const d = Cgroup.resolveDeviceRules(Cgroup.withDefaultDeviceRules());
  equal(d.defaultAllow, false);
  deepEqual(d.exceptions.map((e) => `${e.type} ${e.major}:${e.minor} ${e.access}`), [
    "b *:* m",
    "c *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
    "c 136:* rwm",
  ]);
});

test("bad device rules are ConfigErrors naming the field, before anything is touched", () => {
  const cases: Array<[unknown, string, RegExp]> = [
    ["rwm", "devices", /must be a list/],
    [[null], "devices[0]", /must be an object/],
    [[{ ...c(1, 3, "r"), path: "/dev/null" }], "devices[0].path", /unknown setting/],
    [[{ ...c(1, 3, "r"), type: "p" }], "devices[0].type", /"c", "b" or "a"/],
    [[c(1, 3, "r"), c(-1, 3, "r")], "devices[1].major", /integer in 0\.\.4095/],
    [[c(4096, 3, "r")], "devices[0].major", /12 bits/],
    [[c(1, 1.5, "r")], "devices[0].minor", /integer in 0\.\.1048575/],
    [[c(1, 2 ** 20, "r")], "devices[0].minor", /20 bits/],
    [[{ ...c(1, 3, "r"), major: "1" }], "devices[0].major", /"\*" or an integer/],
    [[c(1, 3, "")], "devices[0].access", /some of "r", "w" and "m"/],
    [[c(1, 3, "rx")], "devices[0].access", /some of/],
    [[c(1, 3, "rr")], "devices[0].access", /each at most once/],
    [[{ type: "c", major: 1, minor: 3, access: "r" }], "devices[0].allow", /true or false/],
    [[{ type: "a", major: 1, access: "rwm", allow: true }], "devices[0]", /every device and every access/],
    [[{ type: "a", access: "r", allow: false }], "devices[0]", /every device and every access/],
    // v1 cannot take one device out of a wildcard: it would silently keep allowing it
    [[c("*", "*", "rwm"), c(1, 11, "w", false)], "devices[1]", /punch a hole in the allowed wildcard c \*:\* rwm/],
    [[c(1, "*", "rw"), c(1, 11, "r", false)], "devices[1]", /wildcard c 1:\* rw/],
  ];
  for (const [rules, path, pattern] of cases) {
    let got: ConfigError | undefined;
    try {
      Cgroup.resolveDeviceRules(rules as Cgroup.DeviceRule[]);
    } catch (err) {
      got = err as ConfigError;
    }
    ok(got instanceof ConfigError, `${JSON.stringify(rules)}: ${got}`);
    equal(got.path, path, got.message);
    match(got.message, pattern);
  }
  // a deny that takes away exactly what was allowed is fine
  deepEqual(Cgroup.resolveDeviceRules([c("*", "*", "m"), c("*", "*", "m", false)]).exceptions, []);
  const dev = new Cgroup.Devices(unique());
  throws(
    () => (dev.rules = [c(1, 3, "q")]),
    (e: unknown) => e instanceof ConfigError && e.path === "devices.rules[0].access",
  );
  deepEqual(dev.rules, Cgroup.DEFAULT_DEVICE_RULES, "a refused list leaves the rules as they were");
});

test("a Group checks its devices section with cgroup.devices paths, and makes nothing", () => {
  const name = unique();
  const bad: Array<[unknown, string]> = [
    [[c(1, 3, "x")], "cgroup.devices[0].access"],
    [{ type: "c" }, "cgroup.devices"],
    // allow-by-default, then a wildcard deny: runc's default allows after it would punch holes
    [[{ type: "a", access: "rwm", allow: true }, c(1, "*", "rwm", false)], "cgroup.devices"],
  ];
  for (const [devices, path] of bad) {
    let got: unknown;
    try {
      new Cgroup.Group(name, { pids: { max: 10 }, devices: devices as Cgroup.DeviceRule[] });
    } catch (e) {
      got = e;
    }
    ok(got instanceof ConfigError && got.path === path, `${JSON.stringify(devices)}: ${got}`);
  }
  const hierarchies = ["/sys/fs/cgroup", ...readdirSync("/sys/fs/cgroup").map((d) => `/sys/fs/cgroup/${d}`)];
  ok(!hierarchies.some((h) => existsSync(`${h}/${name}`)), "no cgroup directory was made");
  const g = new Cgroup.Group(name, { devices: [c(10, 229, "rwm")] });
  ok(g.devices instanceof Cgroup.Devices);
  deepEqual(g.devices.rules.slice(0, 2), [c(10, 229, "rwm"), Cgroup.DEFAULT_DEVICE_RULES[0]]);
  equal(new Cgroup.Group(name, { pids: { max: 1 } }).devices, undefined, "no devices section, no allowlist");
});

test("Group puts the allowlist in the v1 devices controller when mounted, else in a v2 program", () => {
  const name = unique();
  const host = new Cgroup.Group(name, { devices: [] });
  equal(host.devices!.version, devicesV1 ? 1 : 2);
  if (devicesV1) equal(host.devices!.path, `${devicesV1}/${name}`);
  if (unified) {
    const v2 = new Cgroup.Group(name, { pids: { max: 5 }, devices: [] }, { root: unified });
    equal(v2.devices!.version, 2);
    equal(v2.devices!.path, `${unified}/${name}`);
    deepEqual(v2.paths, [`${unified}/${name}`], "one directory on v2");
    equal(v2.controllers.at(-1), v2.devices, "made last: the directory exists when the program is attached");
  }
}, { skip: layout() ? false : "no cgroup filesystem mounted" });

test("v1 writes: 'a' to devices.deny, then one allow per exception; on a list already there, only the change", () => {
  const list = Cgroup.resolveDeviceRules([c(1, 3, "rwm"), c(136, "*", "rw"), { ...c("*", "*", "m"), type: "b" }]);
  const fresh = [
    { file: "devices.deny", value: "a" },
    { file: "devices.allow", value: "b *:* m" },
    { file: "devices.allow", value: "c 1:3 rwm" },
    { file: "devices.allow", value: "c 136:* rw" },
  ];
  deepEqual(Cgroup.deviceCgroupV1Writes(list, null), fresh, "unknown list");
  deepEqual(Cgroup.deviceCgroupV1Writes(list, "a *:* rwm\n"), fresh, "an allow-all parent's copy");
  deepEqual(Cgroup.deviceCgroupV1Writes(list, "c 1:3 rwm\nc 1:5 rwm\nc 136:* rwm\n"), [
    { file: "devices.deny", value: "c 1:5 rwm" },
    { file: "devices.deny", value: "c 136:* m" },
    { file: "devices.allow", value: "b *:* m" },
  ], "a running container keeps /dev/null throughout");
  deepEqual(Cgroup.deviceCgroupV1Writes(list, "b *:* m\nc 1:3 rwm\nc 136:* rw\n"), [], "nothing to do");
  const allowAll = Cgroup.resolveDeviceRules([{ access: "rwm", allow: true }, c(10, 237, "rwm", false)]);
  deepEqual(Cgroup.deviceCgroupV1Writes(allowAll, "c 1:3 rwm\n"), [
    { file: "devices.allow", value: "a" },
    { file: "devices.deny", value: "c 10:237 rwm" },
  ]);
  const dev = new Cgroup.Devices(unique());
  deepEqual(dev.calls(1).slice(0, 3), [
    'write devices.deny "a"',
    'write devices.allow "b *:* m"',
    'write devices.allow "c *:* m"',
  ]);
  match(
    dev.calls(2)[0]!,
    /^bpf\(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, \d+ instructions\): deny all but b \*:\* m, /,
  );
});

test("the eBPF program for a small rule list, instruction by instruction", () => {
  const list = Cgroup.resolveDeviceRules([c(1, 3, "rwm"), c(136, "*", "rw"), { ...c("*", "*", "m"), type: "b" }]);
  deepEqual(Cgroup.describeDeviceProgram(list), [
    " 0: r2 = *(u32 *)(r1 +0)",
    " 1: w2 &= 0xffff",
    " 2: r3 = *(u32 *)(r1 +0)",
    " 3: w3 >>= 16",
    " 4: r4 = *(u32 *)(r1 +4)",
    " 5: r5 = *(u32 *)(r1 +8)",
    // b *:* m
    " 6: if r2 != 1 goto 12",
    " 7: w1 = w3",
    " 8: w1 &= 0x1",
    " 9: if r1 != r3 goto 12",
    "10: w0 = 1",
    "11: exit",
    // c 1:3 rwm: no access test
    "12: if r2 != 2 goto 17",
    "13: if r4 != 1 goto 17",
    "14: if r5 != 3 goto 17",
    "15: w0 = 1",
    "16: exit",
    // c 136:* rw
    "17: if r2 != 2 goto 24",
    "18: w1 = w3",
    "19: w1 &= 0x6",
    "20: if r1 != r3 goto 24",
    "21: if r4 != 136 goto 24",
    "22: w0 = 1",
    "23: exit",
    // everything else
    "24: w0 = 0",
    "25: exit",
  ]);
  const program = Cgroup.deviceProgram(list);
  const bytes = encodeBpfInsns(program);
  equal(bytes.byteLength, program.length * BPF_INSN.size);
  deepEqual([...bytes.subarray(0, 16)], [0x61, 0x12, 0, 0, 0, 0, 0, 0, 0x54, 0x02, 0, 0, 0xff, 0xff, 0, 0]);
  deepEqual([...bytes.subarray(6 * 8, 7 * 8)], [0x55, 0x02, 5, 0, 1, 0, 0, 0], "jne r2, 1, +5");
  deepEqual([...bytes.subarray(9 * 8, 10 * 8)], [0x5d, 0x31, 2, 0, 0, 0, 0, 0], "jne r1, r3, +2");
  deepEqual(decodeBpfInsns(bytes), program);
});

test("an allow-by-default program denies a device on any overlapping access, as v1 does", () => {
  const list = Cgroup.resolveDeviceRules([{ access: "rwm", allow: true }, c(10, 237, "w", false)]);
  deepEqual(Cgroup.describeDeviceProgram(list).slice(6), [
    " 6: if r2 != 2 goto 14",
    " 7: w1 = w3",
    " 8: w1 &= 0x4",
    " 9: if r1 == 0 goto 14",
    "10: if r4 != 10 goto 14",
    "11: if r5 != 237 goto 14",
    "12: w0 = 0",
    "13: exit",
    "14: w0 = 1",
    "15: exit",
  ]);
});

// ── the kernel: a process in the cgroup, opening and making device nodes ─────────────────────────

/** Device nodes made (by the test, outside any cgroup) in a temp dir. */
function nodes(dir: string): Record<"null" | "kmsg" | "loopctl" | "kvm" | "disk", string> {
  const made = { null: "c 1 3", kmsg: "c 1 11", loopctl: "c 10 237", kvm: "c 10 232", disk: "b 7 0" } as const;
  const out = {} as Record<keyof typeof made, string>;
  for (const [name, spec] of Object.entries(made)) {
    const path = join(dir, name);
    const r = spawnSync("mknod", [path, ...spec.split(" ")], { encoding: "utf8" });
    equal(r.status, 0, `mknod ${path} ${spec}: ${r.stderr}`);
    out[name as keyof typeof made] = path;
  }
  return out;
}

/** Runs `script` in a shell that first moves itself into the cgroup at `dir`. */
function inCgroup(dir: string, script: string): { ok: boolean; err: string } {
  const r = spawnSync("/bin/sh", ["-c", `echo $$ > '${dir}/cgroup.procs' || exit 99; ${script}`], { encoding: "utf8" });
  if (r.status === 99) throw new Error(`could not join ${dir}: ${r.stderr}`);
  return { ok: r.status === 0, err: r.stderr.trim() };
}

const canRead = (dir: string, path: string) => inCgroup(dir, `exec 3< '${path}'`);
const canWrite = (dir: string, path: string) => inCgroup(dir, `exec 3> '${path}'`);
const canMknod = (dir: string, path: string, spec: string) => inCgroup(dir, `mknod '${path}' ${spec}`);
const EPERM = /Operation not permitted/;

function assertDenied(r: { ok: boolean; err: string }, what: string): void {
  ok(!r.ok, `${what} was allowed`);
  match(r.err, EPERM, what);
}

/** The checks of the default allowlist, against a cgroup at `dir`. */
function checkDefaults(dir: string, tmp: string): void {
  const n = nodes(tmp);
  deepEqual(canRead(dir, n.null), { ok: true, err: "" }, "read /dev/null");
  deepEqual(canWrite(dir, n.null), { ok: true, err: "" }, "write /dev/null");
  deepEqual(canRead(dir, "/dev/urandom"), { ok: true, err: "" }, "read /dev/urandom");
  assertDenied(canRead(dir, n.kmsg), "read c 1:11 (kmsg)");
  assertDenied(canWrite(dir, n.kmsg), "write c 1:11 (kmsg)");
  assertDenied(canRead(dir, n.loopctl), "open c 10:237 (loop-control)");
  assertDenied(canRead(dir, n.kvm), "open c 10:232 (kvm)");
  assertDenied(canRead(dir, n.disk), "open b 7:0 (loop0)");
  if (existsSync("/dev/kmsg")) assertDenied(canRead(dir, "/dev/kmsg"), "the host's /dev/kmsg");
  // runc's default lets any node be made, and none but the listed be opened
  deepEqual(canMknod(dir, join(tmp, "made-kmsg"), "c 1 11"), { ok: true, err: "" }, "mknod c 1 11");
  deepEqual(canMknod(dir, join(tmp, "made-disk"), "b 8 0"), { ok: true, err: "" }, "mknod b 8 0");
  assertDenied(canWrite(dir, join(tmp, "made-kmsg")), "write the node it made");
}

/** The checks of a list without mknod: only read and write of /dev/null. */
function checkNullOnly(dir: string, tmp: string): void {
  deepEqual(canWrite(dir, join(tmp, "null")), { ok: true, err: "" }, "write /dev/null");
  assertDenied(canMknod(dir, join(tmp, "null2"), "c 1 3"), "mknod c 1 3 without m");
  assertDenied(canMknod(dir, join(tmp, "kmsg2"), "c 1 11"), "mknod c 1 11 without m");
  assertDenied(canRead(dir, "/dev/urandom"), "read /dev/urandom, no longer listed");
}

/** Fds of this process that are BPF programs. */
const progFds = () =>
  readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === "anon_inode:bpf-prog";
    } catch {
      return false;
    }
  });

/** Waits until the program `id` is freed (its id no longer resolves); false after `ms`. */
async function freed(id: number, ms = 10_000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      libc().close(bpfProgGetFdById(id));
    } catch (e) {
      if (e instanceof SyscallError && e.code === "ENOENT") return true;
      throw e;
    }
    if (Date.now() > until) return false;
    await new Promise((res) => setTimeout(res, 50));
  }
}

test(
  "v2: a BPF device program on a cgroup2 directory allows /dev/null and refuses kmsg, loop-control, kvm, disks",
  async () => {
    using tmp = tempDir("hako-test-devices-");
    const dev = new Cgroup.Devices(`${unique()}/box`, { root: unified! });
    const before = progFds().length;
    try {
      equal(dev.version, 2);
      dev.create();
      equal(progFds().length, before, "the program's fd is closed once attached");
      const ids = dev.stats().programIds!;
      equal(ids.length, 1, "one program attached");
      checkDefaults(dev.path, tmp.path);

      dev.rules = [c(1, 3, "rw")];
      dev.modify();
      const now = dev.stats().programIds!;
      equal(now.length, 1, "modify() replaced the program instead of adding one");
      notEqual(now[0], ids[0]);
      ok(await freed(ids[0]!), "the replaced program is freed");
      checkNullOnly(dev.path, tmp.path);
      equal(progFds().length, before, "no program fd left open");

      const parent = dev.path.replace(/\/box$/, "");
      dev.delete({ kill: true });
      ok(!existsSync(dev.path) && !existsSync(parent), "the cgroup and the parent create() made are gone");
      ok(await freed(now[0]!), "removing the cgroup freed its program");
    } finally {
      dev.delete({ kill: true });
    }
  },
  { skip: needsUnified },
);

test(
  "v2: a Group on the cgroup2 mount gets the spec's extra rules on top of the defaults, in one directory",
  () => {
    using tmp = tempDir("hako-test-devices-");
    const name = unique();
    const g = new Cgroup.Group(name, { devices: [c(10, 237, "r")] }, { root: unified! });
    try {
      g.create();
      deepEqual(g.paths, [`${unified}/${name}`]);
      const n = nodes(tmp.path);
      deepEqual(canRead(g.paths[0]!, n.loopctl), { ok: true, err: "" }, "the spec's extra rule");
      assertDenied(canWrite(g.paths[0]!, n.loopctl), "write, which the extra rule does not give");
      assertDenied(canRead(g.paths[0]!, n.kmsg), "kmsg");
      equal(g.stats().devices?.programIds?.length, 1);
      g.delete({ kill: true });
      ok(!existsSync(`${unified}/${name}`));
    } finally {
      g.delete({ kill: true });
    }
  },
  { skip: needsUnified },
);

test("a program the verifier refuses is a SyscallError naming bpf BPF_PROG_LOAD, with the verifier's log", () => {
  let got: unknown;
  try {
    bpfProgLoad({ type: BPF_PROG_TYPE_CGROUP_DEVICE, insns: encodeBpfInsns([exit()]), license: "MIT" }, "test");
  } catch (e) {
    got = e;
  }
  ok(got instanceof SyscallError, String(got));
  equal(got.syscall, "bpf");
  equal(got.args[0], "BPF_PROG_LOAD");
  equal(got.code, "EACCES");
  match(got.message, /^test: bpf\("BPF_PROG_LOAD", "BPF_PROG_TYPE_CGROUP_DEVICE", "1 instructions"\): EACCES/);
  match(got.message, /verifier log:\n[\s\S]*R0 !read_ok/);
}, { skip: needsRoot });

test("v1: the devices controller gets 'a' denied, then the allowlist, and enforces it", () => {
  using tmp = tempDir("hako-test-devices-");
  const dev = new Cgroup.Devices(`${unique()}/box`);
  try {
    equal(dev.version, 1);
    dev.create();
    deepEqual(dev.stats().list, [
      "b *:* m",
      "c *:* m",
      "c 1:3 rwm",
      "c 1:5 rwm",
      "c 1:7 rwm",
      "c 1:8 rwm",
      "c 1:9 rwm",
      "c 5:0 rwm",
      "c 5:2 rwm",
      "c 10:200 rwm",
      "c 136:* rwm",
    ], "devices.list, in the order written");
    checkDefaults(dev.path, tmp.path);
    dev.rules = [c(1, 3, "rw")];
    dev.modify();
    deepEqual(dev.stats().list, ["c 1:3 rw"]);
    checkNullOnly(dev.path, tmp.path);
    const parent = dev.path.replace(/\/box$/, "");
    dev.delete({ kill: true });
    ok(!existsSync(dev.path) && !existsSync(parent));
  } finally {
    dev.delete({ kill: true });
  }
}, { skip: needsV1 });

test("v1: a rule the parent does not allow fails with EPERM and create() removes what it made", () => {
  const parent = new Cgroup.Devices(unique());
  parent.rules = [c(1, 3, "rwm")];
  const child = new Cgroup.Devices(`${parent.name}/box`);
  child.rules = [c(1, 3, "rwm"), c(1, 11, "r")];
  try {
    parent.create();
    let got: unknown;
    try {
      child.create();
    } catch (e) {
      got = e;
    }
    ok(got instanceof SyscallError && got.code === "EPERM", String(got));
    match(got.message, /devices\.allow=("c 1:11 r"|c 1:11 r)/);
    ok(!existsSync(child.path), "the child cgroup is gone");
    ok(existsSync(parent.path), "the parent is not the child's to remove");
  } finally {
    child.delete({ kill: true });
    parent.delete({ kill: true });
  }
}, { skip: needsV1 });

// ── a container: the attack from the hardening pass ───────────────────────────────────────────────

const needsBusybox = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

for (const native of ["1", "0"]) {
  test(
    `a container with a cgroup cannot open a host device it mknods, while /dev/null works (HAKO_NATIVE_SPAWN=${native})`,
    async () => {
      using tmp = tempDir("hako-test-devices-");
      chmodSync(tmp.path, 0o755);
      const rootfs = join(tmp.path, "rootfs");
      const script = [
        "cd /tmp",
        'report() { if ( eval "$2" ) 2>err; then echo "$1=ok"; else echo "$1=$(cat err)"; fi; }',
        "report mknod-kmsg 'mknod kmsg c 1 11'",
        "report write-kmsg 'exec 3> kmsg'",
        "report mknod-loopctl 'mknod loopctl c 10 237'",
        "report open-loopctl 'exec 3< loopctl'",
        "report mknod-disk 'mknod disk b 7 0'",
        "report open-disk 'exec 3< disk'",
        "report null 'echo hi > /dev/null'",
        "report urandom 'head -c 4 /dev/urandom > /dev/null'",
        "echo done",
      ].join("\n");
      const before = process.env.HAKO_NATIVE_SPAWN;
      process.env.HAKO_NATIVE_SPAWN = native;
      const name = unique();
      try {
        const status = await run({
          name,
          rootfs: { builder: "busybox", path: rootfs },
          command: ["sh", "-c", `(${script}) > /tmp/out 2>&1`],
          cgroup: { pids: { max: 64 } },
        });
        equal(status.code, 0, JSON.stringify(status));
      } finally {
        if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
        else process.env.HAKO_NATIVE_SPAWN = before;
      }
      const out = readFileSync(join(rootfs, "tmp/out"), "utf8");
      const facts = Object.fromEntries(
        out.trim().split("\n").map((l) => [l.split("=")[0], l.slice(l.indexOf("=") + 1)]),
      );
      ok(out.endsWith("done\n"), out);
      equal(facts["mknod-kmsg"], "ok", "runc's default allows mknod of any node");
      match(facts["write-kmsg"] ?? "", EPERM, "writing the host's kernel log");
      match(facts["open-loopctl"] ?? "", EPERM, "opening loop-control");
      match(facts["open-disk"] ?? "", EPERM, "opening a block device");
      equal(facts.null, "ok");
      equal(facts.urandom, "ok");
      if (devicesV1) ok(!readdirSync(devicesV1).some((d) => d.includes(name)), "the devices cgroup is gone");
    },
    { skip: needsBusybox },
  );
}
