/**
 * systemd as the cgroup manager (`hako-runc --systemd-cgroup`, `podman --cgroup-manager systemd`):
 * the pure parts (slice paths, unit names, properties, the D-Bus wire format, the OCI mapping)
 * without root; then, against a systemd of the test's own (tests/_systemd_lab.ts), hako-runc on
 * both paths side by side with runc: the scope, its properties, the limits kept across a
 * `daemon-reload`, exec, update, pause, delete; podman driving hako as it drives runc.
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { isRoot, tempDir, test } from "./_harness.ts";
import {
  has,
  IMAGE,
  imageArchive,
  launcher,
  PODMAN_RUN_LIMITS,
  podmanStorage,
  runIt,
  runtimesToCompare,
} from "./_oci_lab.ts";
import { bootSystemdLab, type SystemdLab, systemdLabSkip } from "./_systemd_lab.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import {
  cpuListBits,
  deviceProperties,
  expandSlice,
  initCgroupPrefix,
  limitProperties,
  scopeCgroupName,
  scopeNameProblem,
  type UnitProperty,
} from "../src/cgroup/systemd.ts";
import { managerSocket } from "../src/cgroup/systemd_manager.ts";
import { decodeMessage, encodeCall, messageLength, Reader, variant, Writer } from "../src/cgroup/_dbus_wire.ts";
import { resolveDeviceRules, withDefaultDeviceRules } from "../src/cgroup/devices.ts";
import { OciConfigError, ociToSpec } from "../src/oci/config.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";

const RUNC = "/usr/sbin/runc";
const suffix = () => Math.random().toString(36).slice(2, 8);
const labSkip = systemdLabSkip() ||
  (findStaticBusybox() ? false : "needs a static busybox (apt-get install busybox-static)");
const podmanSkip = labSkip || (has("podman") ? false : "needs podman (apt-get install podman)");
const ctrSkip = labSkip ||
  (has("containerd", ["--version"]) && has("ctr", ["--version"])
    ? false
    : "needs containerd (apt-get install containerd)");

/** Properties as plain [name, signature, value] triples, for comparing. */
const plain = (ps: readonly UnitProperty[]) => ps.map(([n, v]) => [n, v.sig, v.value]);
const U64_MAX = 0xffff_ffff_ffff_ffffn;

// ---- names and properties (no root) --------------------------------------------------------------

test("a slice's cgroup path is laid out as systemd lays it (runc's ExpandSlice cases)", () => {
  equal(expandSlice("machine.slice"), "/machine.slice");
  equal(expandSlice("test-a-b.slice"), "/test.slice/test-a.slice/test-a-b.slice");
  equal(expandSlice("-.slice"), "/");
  for (const bad of ["machine", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice", ".slice", "a b.slice", "a.scope"]) {
    throws(() => expandSlice(bad), /cgroup\.systemd\.slice: .* is not a slice name/, bad);
  }
});

test("a scope's cgroup is under PID 1's cgroup without init.scope, then the slice's path", () => {
  const v1 = "12:pids:/init.scope\n1:name=systemd:/init.scope\n0::/init.scope\n";
  equal(initCgroupPrefix(v1), "/");
  equal(initCgroupPrefix("0::/init.scope\n"), "/");
  equal(initCgroupPrefix("0::/machine.slice/libpod-x.scope/init.scope\n"), "/machine.slice/libpod-x.scope");
  equal(initCgroupPrefix(undefined), "/");
  equal(scopeCgroupName({ slice: "machine.slice", unit: "libpod-1.scope" }, v1), "machine.slice/libpod-1.scope");
  equal(scopeCgroupName({ unit: "hako-x.scope" }, v1), "system.slice/hako-x.scope");
  equal(
    scopeCgroupName({ slice: "a-b.slice", unit: "u.scope" }, "0::/nested/init.scope\n"),
    "nested/a.slice/a-b.slice/u.scope",
  );
  equal(scopeNameProblem("libpod-0123abcd.scope"), undefined);
  match(scopeNameProblem("x.slice")!, /is a slice: hako makes scopes/);
  match(scopeNameProblem("x.service")!, /must end in \.scope/);
  match(scopeNameProblem("a/b.scope")!, /characters a unit name cannot have/);
  match(scopeNameProblem("x".repeat(300) + ".scope")!, /at most 255/);
  match(scopeNameProblem("")!, /must be a unit name/);
});

test("limits become systemd's unit properties as runc converts them", () => {
  const v1 = new Map([
    ["memory.limit_in_bytes", "67108864"],
    ["cpu.shares", "512"],
    ["cpu.cfs_quota_us", "33333"],
    ["cpu.cfs_period_us", "100000"],
    ["pids.max", "0"],
    ["blkio.weight", "300"],
    ["cpuset.cpus", "0-3,9"],
  ]);
  deepEqual(plain(limitProperties(v1, 1, 252)), [
    ["MemoryLimit", "t", 67108864n],
    ["CPUShares", "t", 512n],
    ["CPUQuotaPeriodUSec", "t", 100000n],
    // (333330 µs a second, rounded up to systemd's 10 ms steps)
    ["CPUQuotaPerSecUSec", "t", 340000n],
    ["BlockIOWeight", "t", 300n],
    ["TasksMax", "t", 1n], // (systemd takes no 0)
    ["AllowedCPUs", "ay", [0x0f, 0x02]],
  ]);
  // older systemd: no period, no AllowedCPUs; an unlimited quota
  deepEqual(plain(limitProperties(new Map([["cpu.cfs_quota_us", "-1"], ["cpu.cfs_period_us", "50000"]]), 1, 240)), [
    ["CPUQuotaPerSecUSec", "t", U64_MAX],
  ]);
  const v2 = new Map([
    ["memory.max", "max"],
    ["memory.low", "1048576"],
    ["memory.swap.max", "0"],
    ["cpu.weight", "39"],
    ["cpu.max", "50000 100000"],
    ["pids.max", "max"],
  ]);
  deepEqual(plain(limitProperties(v2, 2, 252)), [
    ["MemoryMax", "t", U64_MAX],
    ["MemoryLow", "t", 1048576n],
    ["MemorySwapMax", "t", 0n],
    ["CPUWeight", "t", 39n],
    ["CPUQuotaPeriodUSec", "t", 100000n],
    ["CPUQuotaPerSecUSec", "t", 500000n],
    ["TasksMax", "t", U64_MAX],
  ]);
  // raw values that are no numbers (the kernel refuses them when written): nothing told, nothing thrown
  deepEqual(plain(limitProperties(new Map([["cpu.cfs_quota_us", "abc"], ["cpu.cfs_period_us", "0"]]), 1, 240)), [
    ["CPUQuotaPerSecUSec", "t", U64_MAX],
  ]);
  deepEqual(plain(limitProperties(new Map([["cpu.max", "5000 x"]]), 2, 240)), [["CPUQuotaPerSecUSec", "t", 50000n]]);
  deepEqual(cpuListBits("8", "x"), [0, 1]);
  throws(() => cpuListBits("3-1", "cgroup.cpuset.cpus"), /cgroup\.cpuset\.cpus: .*a bad range/);
  throws(() => cpuListBits("a", "cgroup.cpuset.cpus"), /not a cpu list/);
});

test("device rules become DevicePolicy and DeviceAllow, never allowing more than the rules", () => {
  const defaults = deviceProperties(resolveDeviceRules(withDefaultDeviceRules([])));
  deepEqual(defaults.warnings, []);
  const [policy, allow] = plain(defaults.properties);
  deepEqual(policy, ["DevicePolicy", "s", "strict"]);
  equal(allow![0], "DeviceAllow");
  const list = allow![2] as Array<[string, string]>;
  ok(list.some(([p, a]) => p === "/dev/char/1:3" && a === "rwm"), "/dev/null");
  ok(list.some(([p, a]) => p === "char-136" && a === "rwm"), "the pts");
  ok(list.some(([p, a]) => p === "char-*" && a === "m"), "mknod of any char device");
  ok(!list.some(([p]) => p === "/dev/char/1:1"), "not /dev/mem");
  // everything allowed: no list at all
  deepEqual(plain(deviceProperties({ defaultAllow: true, exceptions: [] }).properties), [
    ["DevicePolicy", "s", "auto"],
    ["DeviceAllow", "a(ss)", []],
  ]);
  // a denylist systemd cannot say: deny all (less, never more), with a warning
  const deny = deviceProperties({ defaultAllow: true, exceptions: [{ type: "c", major: 1, minor: 1, access: "rwm" }] });
  deepEqual(plain(deny.properties), [["DevicePolicy", "s", "strict"], ["DeviceAllow", "a(ss)", []]]);
  match(deny.warnings[0]!, /denylist/);
  const star = deviceProperties({
    defaultAllow: false,
    exceptions: [{ type: "b", major: "*", minor: 7, access: "r" }],
  });
  deepEqual(plain(star.properties)[1], ["DeviceAllow", "a(ss)", []]);
  match(star.warnings[0]!, /\*:7/);
});

test("root reaches systemd on its private socket, others on the system bus", () => {
  const socket = managerSocket(1000, {});
  deepEqual(socket, { path: "/run/dbus/system_bus_socket", bus: true });
  deepEqual(managerSocket(1000, { DBUS_SYSTEM_BUS_ADDRESS: "unix:path=/x/bus,guid=1" }), { path: "/x/bus", bus: true });
});

// ---- the D-Bus wire format -----------------------------------------------------------------------

test("a StartTransientUnit call marshals and unmarshals as D-Bus lays it out", () => {
  const props = [["PIDs", variant("au", [7, 8])], ["Delegate", variant("b", true)], [
    "MemoryLimit",
    variant("t", 1n << 40n),
  ]];
  const bytes = encodeCall({
    destination: "org.freedesktop.systemd1",
    path: "/org/freedesktop/systemd1",
    interface: "org.freedesktop.systemd1.Manager",
    member: "StartTransientUnit",
    signature: "ssa(sv)a(sa(sv))",
    body: ["x.scope", "replace", props, []],
  }, 5);
  equal(bytes[0], "l".charCodeAt(0));
  equal(messageLength(bytes), bytes.length);
  const m = decodeMessage(bytes);
  equal(m.type, 1);
  equal(m.serial, 5);
  equal(m.member, "StartTransientUnit");
  equal(m.signature, "ssa(sv)a(sa(sv))");
  deepEqual(m.body, ["x.scope", "replace", props.map(([n, v]) => [n, v]), []]);
  // dicts, nested arrays, 16-bit and signed values
  const w = new Writer();
  w.write("a{sv}nqxaay", [{ a: variant("s", "b") }, -2, 65535, -5n, [[1, 2], []]]);
  deepEqual(new Reader(w.bytes()).read("a{sv}nqxaay"), [[["a", variant("s", "b")]], -2, 65535, -5n, [[1, 2], []]]);
});

test("a malformed D-Bus message is refused by what is wrong, never read past its end", () => {
  const good = encodeCall({ path: "/", interface: "a.b", member: "C", signature: "s", body: ["hello"] }, 1);
  for (let n = 16; n < good.length; n += 3) {
    throws(() => decodeMessage(good.slice(0, n)), /message ends|wrong length|an array longer/, `cut at ${n}`);
  }
  // an array whose length runs past the message
  const w = new Writer();
  w.write("as", [["x"]]);
  const b = w.bytes();
  new DataView(b.buffer).setUint32(0, 0x7fff_fff0, true);
  throws(() => new Reader(b).read("as"), /an array longer than its message/);
  // a signature that nests without end, an unknown type, a big-endian message, a huge one
  throws(() => new Reader(new Uint8Array(8)).read("a".repeat(40) + "y"), /nests too deep/);
  throws(() => new Reader(new Uint8Array(8)).read("(yz)"), /unknown type "z"/);
  const big = good.slice();
  big[0] = "B".charCodeAt(0);
  throws(() => messageLength(big), /big-endian/);
  const huge = good.slice();
  new DataView(huge.buffer).setUint32(4, 0x7fff_ffff, true);
  throws(() => messageLength(huge), /a message of \d+ bytes/);
  // a string without its NUL, invalid UTF-8
  const s = new Writer();
  s.write("s", ["ab"]);
  const sb = s.bytes();
  sb[6] = 1;
  throws(() => new Reader(sb).read("s"), /without its NUL/);
  sb[6] = 0;
  sb[4] = 0xff;
  throws(() => new Reader(sb).read("s"));
});

// ---- the OCI mapping and the spec ----------------------------------------------------------------

const config = (cgroupsPath?: string) => ({
  ociVersion: "1.0.2",
  process: { args: ["true"], cwd: "/" },
  root: { path: "rootfs" },
  linux: { namespaces: [{ type: "mount" }, { type: "pid" }], ...(cgroupsPath !== undefined ? { cgroupsPath } : {}) },
});

test("--systemd-cgroup maps cgroupsPath slice:prefix:name to a scope, as runc does", () => {
  const spec = (p?: string) => ociToSpec(config(p), "/b", "abc", { systemdCgroup: true, cgroupVersion: 1 }).spec;
  deepEqual(spec("machine.slice:libpod:abc").cgroup?.systemd, { slice: "machine.slice", unit: "libpod-abc.scope" });
  deepEqual(spec(":crio:abc").cgroup?.systemd, { unit: "crio-abc.scope" });
  deepEqual(spec("system.slice::abc").cgroup?.systemd, { slice: "system.slice", unit: "abc.scope" });
  deepEqual(spec().cgroup?.systemd, { unit: "hako-abc.scope" }); // (runc's runc-abc.scope)
  const refused = (p: string | undefined, systemdCgroup: boolean) => {
    try {
      ociToSpec(config(p), "/b", "abc", { systemdCgroup, cgroupVersion: 1 });
    } catch (e) {
      ok(e instanceof OciConfigError);
      return e.message;
    }
    throw new Error(`${p} was taken`);
  };
  match(
    refused("/a/b", true),
    /expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "\/a\/b" instead/,
  );
  match(refused("a.slice:p:n:x", true), /slice:prefix:name/);
  match(refused("machine.slice:p:x.slice", true), /is a slice: hako makes scopes/);
  match(refused("bad:p:n", true), /not a slice name/);
  match(refused("machine.slice:p:a/b", true), /characters a unit name cannot have/);
  match(refused("machine.slice:libpod:abc", false), /pass --systemd-cgroup/);
});

test("a spec's cgroup.systemd is checked by field before anything is made", () => {
  using dir = tempDir("hako-test-systemd-spec-");
  const base = { name: "sd", rootfs: dir.path, command: ["true"], namespaces: ["mount", "pid"] };
  const problems = (cgroup: unknown) => {
    try {
      resolveSpec({ ...base, cgroup } as never);
      return [];
    } catch (e) {
      ok(e instanceof SpecError, String(e));
      return e.problems.map((p) => `${p.path}: ${p.message}`);
    }
  };
  deepEqual(problems({ systemd: { unit: "x.scope", slice: "machine.slice" } }), []);
  match(problems({ systemd: { unit: "x.service" } }).join("\n"), /cgroup\.systemd\.unit: .*must end in \.scope/);
  match(
    problems({ systemd: { unit: "x.scope", slice: "no" } }).join("\n"),
    /cgroup\.systemd\.slice: .*not a slice name/,
  );
  match(problems({ systemd: { unit: "x.scope" }, name: "a/b" }).join("\n"), /cgroup\.name: give cgroup\.systemd/);
  match(problems({ systemd: { unit: "x.scope", other: 1 } }).join("\n"), /cgroup\.systemd\.other/);
  match(problems({ systemd: "x.scope" }).join("\n"), /cgroup\.systemd: must be an object/);
});

test("--systemd-cgroup where systemd does not run fails create naming it, as runc does", () => {
  if (!isRoot) return;
  if (systemdLabSkip() === false && readFileSync("/proc/1/comm", "utf8").trim() === "systemd") return; // (it runs here)
  using dir = tempDir("hako-test-systemd-none-");
  const bundle = makeBundle(dir.path, "nope", ["true"]);
  for (const { who, bin, env } of runtimesToCompare(dir.path)) {
    const r = runIt(bin, [
      "--root",
      join(dir.path, `state-${who}`),
      "--systemd-cgroup",
      "run",
      "--bundle",
      bundle,
      `x-${suffix()}`,
    ], env);
    ok(r.status !== 0, `${who}: ${r.stdout}`);
    match(r.stderr, /systemd/, who);
  }
}, { skip: findStaticBusybox() ? false : "needs a static busybox" });

// ---- against a systemd of the test's own ---------------------------------------------------------

/** A bundle with a busybox rootfs, runc's default config, `args`, the cgroupsPath and limits. */
function makeBundle(dir: string, name: string, args: string[], cgroupsPath?: string): string {
  const bundle = join(dir, `bundle-${name}`);
  mkdirSync(bundle);
  buildRootfs(join(bundle, "rootfs"), { builder: "busybox" });
  const r = runIt(launcher(dir), ["spec", "--bundle", bundle]);
  equal(r.status, 0, r.stderr);
  const c = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
  c.process.terminal = false;
  c.process.args = args;
  c.process.rlimits = [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }];
  c.root.readonly = false;
  if (cgroupsPath !== undefined) c.linux.cgroupsPath = cgroupsPath;
  c.linux.resources = {
    ...c.linux.resources,
    memory: { limit: 64 << 20 },
    pids: { limit: 50 },
    cpu: { shares: 512, quota: 50000, period: 100000 },
  };
  writeFileSync(join(bundle, "config.json"), JSON.stringify(c));
  return bundle;
}

const CONTROLLERS = ["memory", "pids", "cpu", "blkio", "devices", "freezer"];

/** What a runtime's container shows from outside, with its unit's name made `UNIT`. */
function observe(lab: SystemdLab, unit: string, pid: number): Record<string, string> {
  const sh = (script: string) => lab.run("sh", ["-c", script]).stdout.replaceAll(unit, "UNIT");
  const dir = (c: string) => `/sys/fs/cgroup/${c}/machine.slice/${unit}`;
  return {
    cgroups: sh(`cat /proc/${pid}/cgroup`).split("\n").filter((l) =>
      CONTROLLERS.some((c) => l.split(":")[1] === c) || l.includes("name=systemd") || l.startsWith("0::")
    ).sort().join("\n"),
    properties: sh(
      `systemctl show ${unit} -p Slice -p Delegate -p MemoryLimit -p TasksMax -p CPUShares -p CPUQuotaPerSecUSec -p DevicePolicy -p ActiveState`,
    ),
    files: sh(
      `cat ${dir("memory")}/memory.limit_in_bytes ${dir("pids")}/pids.max ${dir("cpu")}/cpu.shares ${
        dir("cpu")
      }/cpu.cfs_quota_us; sort ${dir("devices")}/devices.list`,
    ),
  };
}

test(
  "hako-runc --systemd-cgroup makes the cgroup a systemd scope, with runc's properties, kept across daemon-reload",
  async () => {
    using dir = tempDir("hako-test-systemd-");
    const lab = await bootSystemdLab(dir.path);
    try {
      const seen: Array<{ who: string; view: Record<string, string> }> = [];
      for (const { who, bin, env } of runtimesToCompare(dir.path)) {
        const id = `sd-${who}-${suffix()}`;
        const unit = `hako-test-${id}.scope`;
        const bundle = makeBundle(dir.path, id, ["sleep", "1000"], `machine.slice:hako-test:${id}`);
        const oci = (...args: string[]) =>
          lab.run(bin, ["--root", join(dir.path, `state-${who}`), "--systemd-cgroup", ...args], env);
        let r = oci("run", "--detach", "--bundle", bundle, id);
        equal(r.status, 0, `${who}: ${r.stderr}\n${lab.log()}`);
        try {
          const pid = JSON.parse(oci("state", id).stdout).pid as number;
          const view = observe(lab, unit, pid);
          for (const line of view.cgroups!.split("\n")) {
            // (runc 1.1 sets the device properties after the unit started: systemd then moves its
            // init to the slice's devices cgroup, out of the scope's, which holds the rules)
            if (who === "runc" && line.includes(":devices:")) continue;
            match(line, /:\/machine\.slice\/UNIT$/, `${who}: ${line}`);
          }
          match(view.properties!, /Slice=machine\.slice\nDelegate=yes\n/, who);
          match(view.properties!, /MemoryLimit=67108864/, who);
          match(view.files!, /^67108864\n50\n512\n50000\n/, who);
          // systemd writes its own idea of the unit again on a reload: the limits and the device list stay
          equal(lab.run("systemctl", ["daemon-reload"]).status, 0);
          deepEqual(observe(lab, unit, pid), view, `${who}: after daemon-reload`);
          seen.push({ who, view });
          // exec joins the scope (the container's cgroup namespace's root)
          r = oci("exec", id, "cat", "/proc/self/cgroup");
          equal(r.status, 0, `${who}: ${r.stderr}`);
          match(r.stdout, /:memory:\/\n/, who);
          // … in every hierarchy, name=systemd's too (where systemd tracks a scope's processes on a
          // legacy host), as runc's exec joins every cgroup path of the container's
          r = oci("exec", id, "sh", "-c", "cat /proc/self/cgroup; echo; cat /proc/1/cgroup");
          const [execd, init] = r.stdout.split("\n\n");
          match(execd!, /:name=systemd:\/\n/, `${who}: ${r.stdout}`);
          const same = (t: string) => t.split("\n").filter((l) => l && !(who === "runc" && l.includes(":devices:")));
          deepEqual(same(execd!), same(init!), who);
          // update: the cgroup and the unit's property (what the next reload writes)
          r = oci("update", "--memory", "128M", id);
          equal(r.status, 0, `${who}: ${r.stderr}`);
          match(observe(lab, unit, pid).properties!, /MemoryLimit=134217728/, who);
          match(observe(lab, unit, pid).files!, /^134217728\n/, who);
          lab.run("systemctl", ["daemon-reload"]);
          match(observe(lab, unit, pid).files!, /^134217728\n/, `${who}: the update after a reload`);
          // pause and resume (the freezer cgroup, made under the scope)
          equal(oci("pause", id).status, 0, who);
          equal(JSON.parse(oci("state", id).stdout).status, "paused", who);
          equal(oci("resume", id).status, 0, who);
        } finally {
          oci("kill", id, "KILL");
          r = oci("delete", "--force", id);
          equal(r.status, 0, `${who}: ${r.stderr}`);
        }
        // the unit is gone, and every directory with it
        match(lab.run("systemctl", ["is-active", unit]).stdout, /inactive|unknown/, who);
        equal(lab.run("sh", ["-c", `ls -d /sys/fs/cgroup/*/machine.slice/${unit} 2>/dev/null`]).stdout, "", who);
      }
      for (const s of seen.slice(1)) {
        const { cgroups, ...rest } = s.view;
        const { cgroups: first, ...firstRest } = seen[0]!.view;
        deepEqual(rest, firstRest, `${s.who} as ${seen[0]!.who}`);
        if (s.who !== "runc") equal(cgroups, first, `${s.who} as ${seen[0]!.who}`);
      }
      ok(seen.length >= 2);

      // a foreground run (the library's own delete), and a scope that is there already
      for (const { who, bin, env } of runtimesToCompare(dir.path)) {
        const id = `fg-${who}-${suffix()}`;
        const unit = `hako-test-${id}.scope`;
        const bundle = makeBundle(
          dir.path,
          id,
          ["sh", "-c", "grep :memory: /proc/self/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes"],
          `machine.slice:hako-test:${id}`,
        );
        const oci = (...args: string[]) =>
          lab.run(bin, ["--root", join(dir.path, `state-${who}`), "--systemd-cgroup", ...args], env);
        let r = oci("run", "--bundle", bundle, id);
        equal(r.status, 0, `${who}: ${r.stderr}`);
        match(r.stdout, /:memory:\/\n67108864\n$/, who); // (its own cgroup namespace's root: the scope)
        match(lab.run("systemctl", ["is-active", unit]).stdout, /inactive|unknown/, who);

        // A second container in a scope that is there: refused (hako never adopts a cgroup: the
        // second's delete would kill the first). Differs from runc 1.1, which joins it.
        if (who === "runc") continue;
        const holder = `${id}-a`, second = `${id}-b`;
        const busy = makeBundle(dir.path, holder, ["sleep", "1000"], `machine.slice:hako-test:${holder}`);
        equal(oci("run", "--detach", "--bundle", busy, holder).status, 0, who);
        try {
          r = oci("run", "--detach", "--bundle", busy, second);
          ok(r.status !== 0, `${who}: a second container in scope hako-test-${holder}.scope was made`);
          equal(JSON.parse(oci("state", holder).stdout).status, "running", `${who}: the first is left alone`);
          equal(lab.run("systemctl", ["is-active", `hako-test-${holder}.scope`]).stdout.trim(), "active", who);
          // the same unit in another slice: no directory there, so systemd is the one to refuse
          // (UnitExists), and the undo touches nothing of the first's
          const elsewhere = makeBundle(dir.path, `${id}-c`, ["true"], `other.slice:hako-test:${holder}`);
          r = oci("run", "--detach", "--bundle", elsewhere, `${id}-c`);
          ok(r.status !== 0, `${who}: the unit was started twice`);
          match(r.stderr, /already loaded|UnitExists|exists/, who);
          equal(JSON.parse(oci("state", holder).stdout).status, "running", `${who}: the first is left alone`);
          equal(lab.run("systemctl", ["is-active", `hako-test-${holder}.scope`]).stdout.trim(), "active", who);
        } finally {
          oci("delete", "--force", second);
          oci("delete", "--force", `${id}-c`);
          oci("delete", "--force", holder);
        }
      }
    } finally {
      await lab.stop();
    }
  },
  { skip: labSkip },
);

test("podman --cgroup-manager systemd drives hako-runc as it drives runc", async () => {
  using dir = tempDir("hako-test-systemd-podman-");
  const lab = await bootSystemdLab(dir.path);
  const tag = `hako-test-sd-${suffix()}`;
  const base = podmanStorage(dir.path, "systemd");
  try {
    const podman = (runtimePath: string, ...args: string[]) =>
      lab.run("podman", [...base, "--runtime", runtimePath, ...args]);
    const limits = PODMAN_RUN_LIMITS;
    const rootfs = join(dir.path, "rootfs");
    buildRootfs(rootfs, { builder: "busybox" });
    const tar = join(dir.path, "rootfs.tar");
    execFileSync("tar", ["-C", rootfs, "-cf", tar, "."]);
    const hako = launcher(dir.path);
    let r = podman(hako, "import", tar, tag);
    equal(r.status, 0, r.stderr);
    const forked = join(dir.path, "hako-runc-forked");
    writeFileSync(forked, `#!/bin/sh\nHAKO_NATIVE_SPAWN=0 exec "${hako}" "$@"\n`, { mode: 0o755 });
    const script = "grep -E ':(memory|pids):' /proc/self/cgroup | sed 's/libpod-[0-9a-f]*/ID/'; echo hi; exit 3";
    const results: string[] = [];
    for (const rt of [hako, forked, ...(has(RUNC) ? [RUNC] : [])]) {
      r = podman(rt, "run", "--rm", ...limits, "--memory", "64m", "--pids-limit", "40", tag, "sh", "-c", script);
      equal(r.status, 3, `${rt}: ${r.stderr}\n${lab.log()}`);
      results.push(r.stdout);
      // -d, exec, stop, rm
      const name = `sd-${suffix()}`;
      r = podman(rt, "run", "-d", "--name", name, ...limits, "--memory", "32m", tag, "sleep", "1000");
      equal(r.status, 0, `${rt}: ${r.stderr}`);
      const id = r.stdout.trim();
      r = podman(rt, "exec", name, "cat", "/proc/self/cgroup");
      equal(r.status, 0, `${rt}: ${r.stderr}`);
      match(r.stdout, new RegExp(`memory:/machine\\.slice/libpod-${id}\\.scope\\n`), rt);
      equal(
        lab.run("cat", [`/sys/fs/cgroup/memory/machine.slice/libpod-${id}.scope/memory.limit_in_bytes`]).stdout,
        "33554432\n",
      );
      match(
        lab.run("systemctl", ["show", `libpod-${id}.scope`, "-p", "MemoryLimit"]).stdout,
        /MemoryLimit=33554432/,
        rt,
      );
      equal(podman(rt, "stop", "-t", "1", name).status, 0, rt);
      equal(podman(rt, "rm", name).status, 0, rt);
      match(lab.run("systemctl", ["is-active", `libpod-${id}.scope`]).stdout, /inactive|unknown/, rt);
    }
    match(results[0]!, /:pids:\/machine\.slice\/ID\.scope\n/);
    match(results[0]!, /:memory:\/machine\.slice\/ID\.scope\n/);
    match(results[0]!, /hi\n$/);
    for (const r2 of results.slice(1)) equal(r2, results[0]);
  } finally {
    try {
      lab.run("podman", [...base, "rm", "-af"]);
      lab.run("podman", [...base, "rmi", "-af"]);
    } finally {
      await lab.stop();
    }
  }
}, { skip: podmanSkip });

test("ctr run --runc-systemd-cgroup drives hako-runc as it drives runc (containerd's SystemdCgroup)", async () => {
  using dir = tempDir("hako-test-systemd-ctr-");
  const lab = await bootSystemdLab(dir.path);
  const ns = `hako-test-sd-${suffix()}`;
  const address = join(dir.path, "containerd.sock");
  const ctr = (...args: string[]) => lab.run("ctr", ["--address", address, "--namespace", ns, ...args]);
  try {
    writeFileSync(
      join(dir.path, "config.toml"),
      'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", ' +
        '"io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]\n',
    );
    lab.background("containerd", [
      "--config",
      join(dir.path, "config.toml"),
      "--root",
      join(dir.path, "root"),
      "--state",
      join(dir.path, "state"),
      "--address",
      address,
    ], join(dir.path, "containerd.log"));
    for (let i = 0; i < 100 && ctr("version").status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    let r = ctr("image", "import", imageArchive(dir.path));
    equal(r.status, 0, r.stderr);
    const hako = launcher(dir.path);
    const forked = join(dir.path, "hako-runc-forked");
    writeFileSync(forked, `#!/bin/sh\nHAKO_NATIVE_SPAWN=0 exec "${hako}" "$@"\n`, { mode: 0o755 });
    const outputs: string[] = [];
    for (const [i, rt] of [hako, forked, ...(has(RUNC) ? [RUNC] : [])].entries()) {
      const opts = ["--runc-systemd-cgroup", "--runc-binary", rt, "--runc-root", join(dir.path, `runc-root-${i}`)];
      const id = `run-${i}`;
      // (the cgroupsPath containerd's CRI gives: system.slice:NS:ID, the scope NS-ID.scope)
      const cg = (x: string) => ["--cgroup", `system.slice:${ns}:${x}`];
      const script = "grep -E ':(memory|pids):' /proc/self/cgroup | sed 's/run-[0-9]/ID/'; echo done; exit 4";
      r = ctr("run", "--rm", ...opts, ...cg(id), "--memory-limit", String(96 << 20), IMAGE, id, "sh", "-c", script);
      equal(r.status, 4, `${rt}: ${r.stderr}\n${lab.log()}`);
      outputs.push(r.stdout);
      match(lab.run("systemctl", ["is-active", `${ns}-${id}.scope`]).stdout, /inactive|unknown/, `${rt}: --rm`);
      // detached: the scope is there with its limit while the task runs; kill and delete end it
      const bg = `bg-${i}`;
      r = ctr("run", "-d", ...opts, ...cg(bg), "--memory-limit", String(96 << 20), IMAGE, bg, "sleep", "1000");
      equal(r.status, 0, `${rt}: ${r.stderr}`);
      equal(lab.run("systemctl", ["is-active", `${ns}-${bg}.scope`]).stdout.trim(), "active", rt);
      match(
        lab.run("systemctl", ["show", `${ns}-${bg}.scope`, "-p", "MemoryLimit"]).stdout,
        /MemoryLimit=100663296/,
        rt,
      );
      r = ctr("task", "exec", "--exec-id", "e1", bg, "sh", "-c", "grep :memory: /proc/self/cgroup");
      equal(r.status, 0, `${rt}: ${r.stderr}`);
      match(r.stdout, new RegExp(`:memory:/system\\.slice/${ns}-${bg}\\.scope\\n`), rt);
      equal(ctr("task", "kill", "-s", "SIGKILL", bg).status, 0, rt);
      for (let k = 0; k < 50 && ctr("task", "delete", bg).status !== 0; k++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      equal(ctr("container", "delete", bg).status, 0, rt);
      match(lab.run("systemctl", ["is-active", `${ns}-${bg}.scope`]).stdout, /inactive|unknown/, `${rt}: deleted`);
    }
    match(outputs[0]!, /:memory:\/system\.slice\/hako-test-sd-\w+-ID\.scope\n/);
    for (const o of outputs.slice(1)) equal(o, outputs[0]);
  } finally {
    try {
      for (const id of ctr("container", "list", "-q").stdout.split("\n").filter(Boolean)) {
        ctr("task", "delete", "-f", id);
        ctr("container", "delete", id);
      }
    } finally {
      await lab.stop();
      // (containerd's mounts were the lab's: gone with its mount namespace)
    }
  }
}, { skip: ctrSkip });
