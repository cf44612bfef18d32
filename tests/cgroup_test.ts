import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { assert, assertEquals, assertThrows, needsRoot, tempDir, test } from "./_harness.ts";
import { Cgroup, ConfigError, Process, SyscallError } from "../mod.ts";
import { layoutFromMountinfo, parseMountinfo } from "../src/cgroup/layout.ts";

// Every cgroup a test makes is named hako-test-…, and removed in `finally` even when the test fails.

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** Kills (if still running) and reaps a child; returns its status, or null when already reaped. */
function reap(pid: number | undefined) {
  if (pid === undefined) return null;
  try {
    Process.kill(pid, "KILL");
  } catch { /* already dead */ }
  try {
    return Process.waitpid2(pid).status;
  } catch {
    return null;
  }
}

/** Waits (without blocking the event loop) until `cond` holds, or fails after `ms`. */
async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function layout(): Cgroup.Layout | null {
  try {
    return Cgroup.detect();
  } catch {
    return null;
  }
}

/** A skip reason unless running as root on a host with `controller` (v1 name or v2 name). */
function needs(v1: string, v2 = v1): string | false {
  if (needsRoot) return needsRoot;
  const l = layout();
  if (l && (l.v1[v1] !== undefined || (l.version === 2 && l.unifiedControllers.includes(v2)))) return false;
  return `no ${v1} cgroup controller on this host`;
}

/** The host's cgroup2 mount when one is usable (skip reason otherwise). */
const unified = layout()?.unified ?? null;
const needsUnified: string | false = needsRoot || (unified ? false : "no cgroup2 mount on this host");

const readProcs = (dir: string) => readFileSync(`${dir}/cgroup.procs`, "utf8").split("\n").filter(Boolean).map(Number);
const flat = (text: string) =>
  Object.fromEntries(text.trim().split("\n").map((l) => l.split(/\s+/)).map(([k, v]) => [k, Number(v)]));

// ── names and options: rejected before anything is touched ─────────────────────────────────────

test("bad cgroup names are rejected with ConfigError before any directory exists", () => {
  const cases: Array<[string, RegExp]> = [
    ["", /must not be empty/],
    ["../hako-test-x", /"\.\." segments/],
    ["/hako-test-abs", /absolute path/],
    ["hako-test-a/../../hako-test-b", /"\.\." segments/],
    ["hako-test-a//b", /empty or "\." segments/],
    ["hako-test-a/./b", /empty or "\." segments/],
    ["hako-test-nul\0", /NUL/],
  ];
  for (const [name, pattern] of cases) {
    const e = assertThrows(() => new Cgroup.CPU(name), ConfigError, pattern);
    assertEquals(e.path, "cgroup.name");
    assertThrows(() => new Cgroup.Group(name, { pids: { max: 1 } }), ConfigError, pattern);
  }
  for (const dir of ["/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/unified", "/sys/fs"]) {
    for (const leaf of ["hako-test-x", "hako-test-abs", "hako-test-b", "hako-test-a"]) {
      assert(!existsSync(`${dir}/${leaf}`), `${dir}/${leaf} exists`);
    }
  }
});

test("bad options and attribute values are ConfigErrors that say what and why", () => {
  assertThrows(() => new Cgroup.Pids("hako-test-x", { root: "relative/path" }), ConfigError, /absolute path/);
  assertThrows(() => new Cgroup.Pids("hako-test-x", { version: 3 as 1 }), ConfigError, /must be 1 or 2/);
  const cpu = new Cgroup.CPU("hako-test-x");
  assertThrows(
    () => cpu.cfsQuotaUs = 10,
    ConfigError,
    /cpu\.cfsQuotaUs: must be a whole number of microseconds in 1000/,
  );
  assertThrows(() => cpu.cfsPeriodUs = 5_000_000, ConfigError, /cpu\.cfsPeriodUs/);
  assertThrows(() => cpu.shares = 1, ConfigError, /cpu\.shares/);
  const mem = new Cgroup.Memory("hako-test-x");
  assertThrows(() => mem.limit = "lots", ConfigError, /memory\.limit: must be a size in bytes/);
  const io = new Cgroup.IO("hako-test-x");
  assertThrows(() => io.readBps = { "sda": 1 }, ConfigError, /"MAJ:MIN"/);
  assertThrows(() => cpu.set("../cpu.max", 1), ConfigError, /not a control file name/);
  assertThrows(
    () => new Cgroup.Group("hako-test-x", { memory: { limit: -5 } }),
    ConfigError,
    /^cgroup\.memory\.limit: must be a whole number of bytes/,
  );
  assertThrows(
    () => new Cgroup.Group("hako-test-x", { cpu: { quota: 1 } as never }),
    ConfigError,
    /cgroup\.cpu\.quota: unknown/,
  );
});

// ── pure parts: layout, conversions ────────────────────────────────────────────────────────────

test("mountinfo parsing finds combined v1 hierarchies, separate ones and the cgroup2 mount", () => {
  const text = [
    "31 23 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755",
    "33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct",
    "34 31 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
    "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd",
    "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate",
    "50 23 0:40 / /mnt/with\\040space rw - cgroup2 cgroup2 rw",
  ].join("\n");
  const mounts = parseMountinfo(text);
  assertEquals(mounts.length, 5);
  assertEquals(mounts[0], { mountPoint: "/sys/fs/cgroup/cpu,cpuacct", version: 1, subsystems: ["cpu", "cpuacct"] });
  assertEquals(mounts[4]!.mountPoint, "/mnt/with space");
  // a named hierarchy: no controller, its name (exec joins the container's cgroup there)
  assertEquals(mounts[2], { mountPoint: "/sys/fs/cgroup/systemd", version: 1, subsystems: [], name: "systemd" });
  const l = layoutFromMountinfo(text, false);
  assertEquals(l.version, 1);
  assert(l.hybrid);
  assertEquals(l.v1.cpuacct, "/sys/fs/cgroup/cpu,cpuacct");
  assertEquals(l.unified, "/sys/fs/cgroup/unified");
  const pure = layoutFromMountinfo("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", false);
  assertEquals([pure.version, pure.hybrid, pure.unified], [2, false, "/sys/fs/cgroup"]);
});

test("shares and weight convert like runc, and sizes parse with binary suffixes", () => {
  assertEquals(Cgroup.sharesToWeight(1024), 39);
  assertEquals(Cgroup.sharesToWeight(2), 1);
  assertEquals(Cgroup.sharesToWeight(262144), 10000);
  assertEquals(Cgroup.weightToShares(1), 2);
  assertEquals(Cgroup.weightToShares(10000), 262144);
  assertEquals(Cgroup.blkioWeightToIo(10), 1);
  assertEquals(Cgroup.ioWeightToBlkio(10000), 1000);
  assertEquals(Cgroup.parseByteSize("32M", "x"), 32 * 1024 * 1024);
  assertEquals(Cgroup.parseByteSize("1GiB", "x"), 1024 ** 3);
  assertEquals(Cgroup.parseByteSize(-1, "x"), "max");
});

// ── the v1/v2 translation, checked on fake cgroup trees (no root needed) ──────────────────────

/** Makes a fake cgroup leaf with empty control files (the kernel would make them). */
function fakeLeaf(dir: string, files: string[]): void {
  mkdirSync(dir, { recursive: true });
  for (const f of ["cgroup.procs", ...files]) writeFileSync(`${dir}/${f}`, "");
}

test("on a v2 tree, quota/period become cpu.max, shares become cpu.weight, swap becomes swap.max", () => {
  using tmp = tempDir();
  const root = tmp.path;
  writeFileSync(`${root}/cgroup.controllers`, "cpu memory pids io\n");
  writeFileSync(`${root}/cgroup.subtree_control`, "");
  const leaf = `${root}/hako-test-fake`;
  fakeLeaf(leaf, ["cpu.max", "cpu.weight", "memory.max", "memory.swap.max", "io.max", "io.weight", "pids.max"]);
  const cpu = new Cgroup.CPU("hako-test-fake", { root });
  assertEquals(cpu.version, 2);
  cpu.cfs_quota_us = 20_000;
  cpu.cfsPeriodUs = 50_000;
  cpu.shares = 1024;
  cpu.create();
  assertEquals(readFileSync(`${leaf}/cpu.max`, "utf8"), "20000 50000");
  assertEquals(readFileSync(`${leaf}/cpu.weight`, "utf8"), "39");
  assertEquals(readFileSync(`${root}/cgroup.subtree_control`, "utf8"), "+cpu");
  const mem = new Cgroup.Memory("hako-test-fake", { root });
  mem.limit_in_bytes = 64 * 1024 * 1024;
  mem.memsw_limit_in_bytes = "96M"; // v1 semantics: memory + swap
  mem.modify();
  assertEquals(readFileSync(`${leaf}/memory.max`, "utf8"), String(64 * 1024 * 1024));
  assertEquals(readFileSync(`${leaf}/memory.swap.max`, "utf8"), String(32 * 1024 * 1024));
  const io = new Cgroup.BLKIO("hako-test-fake", { root });
  io.throttle_read_bps_device = "8:0 2000000";
  io.writeIops = { "8:0": 100 };
  io.weight = 500;
  io.modify();
  assertEquals(readFileSync(`${leaf}/io.max`, "utf8"), "8:0 rbps=2000000 wiops=100");
  assertEquals(readFileSync(`${leaf}/io.weight`, "utf8"), "default 500");
  assertThrows(() => cpu.set("cpu.shares", 100), ConfigError, /cgroup v1 file.*use cpu\.weight/);
  assertThrows(() => cpu.set("memory.max", 100), ConfigError, /belongs to the memory controller/);
});

test("on a v1 tree with a combined cpu,cpuacct hierarchy, attributes go to the v1 files", () => {
  using tmp = tempDir();
  const root = tmp.path;
  const leaf = `${root}/cpu,cpuacct/hako-test-fake`;
  fakeLeaf(leaf, ["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cpuacct.usage"]);
  fakeLeaf(`${root}/memory/hako-test-fake`, ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]);
  fakeLeaf(`${root}/blkio/hako-test-fake`, ["blkio.throttle.read_bps_device", "blkio.weight"]);
  const cpu = new Cgroup.CPU("hako-test-fake", { root });
  assertEquals([cpu.version, cpu.paths], [1, [leaf]]);
  cpu.cfsQuotaUs = "max";
  cpu.weight = 100;
  cpu.create();
  assertEquals(readFileSync(`${leaf}/cpu.cfs_quota_us`, "utf8"), "-1");
  assertEquals(readFileSync(`${leaf}/cpu.shares`, "utf8"), "2598"); // (weight 100, read back as 100)
  writeFileSync(`${leaf}/cpuacct.usage`, "5000000\n");
  assertEquals(cpu.stats().usageUsec, 5000);
  const mem = new Cgroup.MEMORY("hako-test-fake", { root });
  mem.limit = "32M";
  mem.swap = "16M";
  mem.modify();
  assertEquals(readFileSync(`${root}/memory/hako-test-fake/memory.limit_in_bytes`, "utf8"), String(32 << 20));
  assertEquals(readFileSync(`${root}/memory/hako-test-fake/memory.memsw.limit_in_bytes`, "utf8"), String(48 << 20));
  const io = new Cgroup.IO("hako-test-fake", { root });
  io.readBps = { "8:16": 1000 };
  io.weight = 10000;
  io.modify();
  assertEquals(readFileSync(`${root}/blkio/hako-test-fake/blkio.throttle.read_bps_device`, "utf8"), "8:16 1000");
  assertEquals(readFileSync(`${root}/blkio/hako-test-fake/blkio.weight`, "utf8"), "1000");
  const onlySwap = new Cgroup.Memory("hako-test-fake", { root });
  onlySwap.swap = 0;
  assertThrows(() => onlySwap.modify(), ConfigError, /memory\.swap: on cgroup v1 needs limit as well/);
  assertThrows(() => cpu.set("cpu.max", "max"), ConfigError, /cgroup v2 file.*cpu\.cfs_quota_us/);
});

// ── the real kernel ────────────────────────────────────────────────────────────────────────────

test("a forked child attaches itself and appears in cgroup.procs", async () => {
  const g = new Cgroup.Pids("hako-test-attach");
  let pid: number | undefined;
  try {
    g.create();
    assert(g.exists());
    pid = Process.fork(() => {
      g.attach();
      Process.exec("sleep", "10");
    });
    const child = pid;
    await waitFor(() => readProcs(g.path).includes(child), "the child in cgroup.procs");
    assertEquals(g.procs(), [child]);
    const own = readFileSync(`/proc/${child}/cgroup`, "utf8");
    assert(own.includes("/hako-test-attach"), `/proc/${child}/cgroup: ${own}`);
  } finally {
    reap(pid);
    g.delete({ kill: true });
  }
  assert(!existsSync(g.path), "the cgroup is gone");
}, { skip: needs("pids") });

test("a 20% CPU quota throttles a busy loop (cpu.stat nr_throttled > 0)", async () => {
  const rate = new Cgroup.CPU("hako-test-cpu/busy");
  rate.cfsQuotaUs = 20_000;
  rate.cfsPeriodUs = 100_000;
  let pid: number | undefined;
  try {
    rate.create();
    const start = Date.now();
    pid = Process.fork(() => {
      rate.attach();
      Process.exec("sh", "-c", "while :; do :; done");
    });
    await sleep(1500);
    reap(pid);
    pid = undefined;
    const elapsedUs = (Date.now() - start) * 1000;
    const stat = flat(readFileSync(`${rate.path}/cpu.stat`, "utf8"));
    assert(stat.nr_throttled! > 0, `nr_throttled is ${stat.nr_throttled}`);
    const s = rate.stats();
    assert(s.nrThrottled > 0 && s.nrPeriods >= s.nrThrottled, JSON.stringify(s));
    assert(s.throttledUsec > 0, JSON.stringify(s));
    assert(s.usageUsec > 0, `usage ${s.usageUsec}`);
    assert(s.usageUsec < elapsedUs * 0.6, `used ${s.usageUsec} µs of CPU in ${elapsedUs} µs despite a 20% quota`);
  } finally {
    reap(pid);
    rate.delete({ kill: true });
  }
  for (const p of rate.paths) assert(!existsSync(p), `${p} is gone`);
  assert(!existsSync(rate.paths[0]!.replace(/\/busy$/, "")), "the parent create() made is gone too");
}, { skip: needs("cpu") });

test("a 32 MiB memory limit without swap gets an allocating child OOM-killed", () => {
  const mem = new Cgroup.Memory("hako-test-oom");
  mem.limit = "32M";
  mem.swap = 0;
  let pid: number | undefined;
  try {
    mem.create();
    assertEquals(mem.stats().limit, 32 * 1024 * 1024);
    pid = Process.fork(() => {
      mem.attach();
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < 50; i++) chunks.push(new Uint8Array(8 << 20).fill(1)); // 400 MiB in all
      Process._exit(0);
    });
    const status = Process.waitpid2(pid).status;
    pid = undefined;
    assertEquals(status.signal, 9, `status ${status}`);
    const s = mem.stats();
    assert(s.oomKills >= 1, JSON.stringify(s));
    assert(s.peak > 16 * 1024 * 1024 && s.peak <= 33 * 1024 * 1024, `peak ${s.peak}`);
  } finally {
    reap(pid);
    mem.delete({ kill: true });
  }
  assert(!existsSync(mem.path));
}, { skip: needs("memory") });

test("pids.max stops a fork bomb, and delete({ kill: true }) kills what is left", async () => {
  const pids = new Cgroup.PIDS("hako-test-pids");
  pids.max = 10;
  let pid: number | undefined;
  try {
    pids.create();
    pid = Process.fork(() => {
      pids.attach();
      Process.exec("sh", "-c", "exec 2>/dev/null; for i in $(seq 50); do sleep 5 & done; wait");
    });
    let most = 0;
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      most = Math.max(most, Number(readFileSync(`${pids.path}/pids.current`, "utf8")));
      await sleep(10);
    }
    assert(most <= 10, `pids.current reached ${most}`);
    const s = pids.stats();
    assert(s.failedForks > 0, `no fork failed: ${JSON.stringify(s)}`);
    assertEquals(s.max, 10);
    assert(s.current >= 1 && s.current <= 10, JSON.stringify(s));
    pids.delete({ kill: true });
    assert(!existsSync(pids.path), "the cgroup is gone");
    reap(pid);
    pid = undefined;
  } finally {
    reap(pid);
    pids.delete({ kill: true });
  }
}, { skip: needs("pids") });

test("stats() of a group reports cpu, memory and pids; delete removes it and is idempotent", async () => {
  const g = new Cgroup.Group("hako-test-group/web", {
    cpu: { quotaUs: 50_000, periodUs: 100_000 },
    memory: { limit: "64M" },
    pids: { max: 20 },
  });
  let pid: number | undefined;
  try {
    g.create();
    assert(g.exists());
    pid = Process.fork(() => {
      g.attach();
      Process.exec("sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 10");
    });
    const child = pid;
    await waitFor(() => (g.pids?.stats().current ?? 0) >= 1 && g.stats().cpu!.usageUsec > 10_000, "CPU use");
    const s = g.stats();
    assert(s.cpu!.usageUsec > 0 && s.cpu!.usageUsec < 60_000_000, JSON.stringify(s.cpu));
    assert(s.memory!.current > 0 && s.memory!.peak >= s.memory!.current, JSON.stringify(s.memory));
    assertEquals(s.memory!.limit, 64 * 1024 * 1024);
    assertEquals(s.pids!.max, 20);
    assert(s.pids!.current >= 1, JSON.stringify(s.pids));
    assert(g.procs().includes(child));
    const busy = assertThrows(
      () => g.pids!.delete({ timeoutMs: 50 }),
      SyscallError,
      /process\(es\) still in it .*pass \{ kill: true \}.*: rmdir\(".*"\): EBUSY/,
    );
    assertEquals(busy.code, "EBUSY");
    g.delete({ kill: true });
    assertEquals(reap(child)?.signal, 9);
    pid = undefined;
    for (const p of g.paths) assert(!existsSync(p), `${p} is gone`);
    g.delete();
    g.delete({ kill: true });
    assert(!g.exists());
  } finally {
    reap(pid);
    g.delete({ kill: true });
  }
}, { skip: needs("cpu") || needs("memory") || needs("pids") });

test("a raw set() writes the named file, and a kernel EINVAL names the call, file and value", () => {
  const cpu = new Cgroup.CPU("hako-test-raw");
  const bad = new Cgroup.CPU("hako-test-raw-bad/leaf");
  try {
    const v1 = cpu.version === 1;
    cpu.set(v1 ? "cpu.cfs_quota_us" : "cpu.max", v1 ? 30000 : "30000 100000").create();
    assertEquals(cpu.get(v1 ? "cpu.cfs_quota_us" : "cpu.max"), v1 ? "30000" : "30000 100000");
    bad.set(v1 ? "cpu.cfs_quota_us" : "cpu.max", v1 ? 500 : "500 100000");
    const e = assertThrows(() => bad.create(), SyscallError, /EINVAL \(invalid argument\)/);
    assert(
      e.message.startsWith(
        `set ${v1 ? "cpu.cfs_quota_us=500" : 'cpu.max="500 100000"'} on cgroup hako-test-raw-bad/leaf: write("`,
      ),
      e.message,
    );
    assertEquals(e.syscall, "write");
    assert(!bad.exists() && !existsSync(bad.path.replace(/\/leaf$/, "")), "the failed create() removed what it made");
  } finally {
    cpu.delete({ kill: true });
    bad.delete({ kill: true });
  }
}, { skip: needs("cpu") });

test("a v1 cpuset inherits its parent's mems, so a child can join with only cpus set", async () => {
  const core = new Cgroup.CPUSET("hako-test-cpuset/pinned");
  core.cpus = "0";
  let pid: number | undefined;
  try {
    core.create();
    pid = Process.fork(() => {
      core.attach();
      Process.exec("sleep", "10");
    });
    const child = pid;
    await waitFor(() => readProcs(core.path).includes(child), "the child in the cpuset");
    const status = readFileSync(`/proc/${child}/status`, "utf8");
    assertEquals(/^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1], "0");
    assertEquals(core.stats().cpus, "0");
  } finally {
    reap(pid);
    core.delete({ kill: true });
  }
  assert(!existsSync(core.path));
}, { skip: needs("cpuset") });

/** A real (non-loop, non-ram) block device's "MAJ:MIN", if the host has one. */
const blockDevice: string | undefined = (() => {
  try {
    return readdirSync("/sys/block").filter((d) => !/^(loop|ram)/.test(d))
      .map((d) => readFileSync(`/sys/block/${d}/dev`, "utf8").trim())[0];
  } catch {
    return undefined;
  }
})();

test("IO throttles land in the v1 blkio or v2 io.max file of a real device", () => {
  const dev = blockDevice!;
  const io = new Cgroup.IO("hako-test-io");
  io.readBps = { [dev]: 1_048_576 };
  try {
    io.create();
    const text = io.version === 1 ? io.get("blkio.throttle.read_bps_device") : io.get("io.max");
    assert(text.includes(dev) && text.includes("1048576"), text);
    assertEquals(io.stats().readBytes >= 0, true);
  } finally {
    io.delete({ kill: true });
  }
}, { skip: needs("blkio", "io") || (blockDevice ? false : "no block device in /sys/block") });

test("v2 core operations on the cgroup2 mount: create, attach, procs, cgroup.kill, delete", async () => {
  const root = unified!;
  const g = new Cgroup.Group("hako-test-v2/box", {}, { root });
  let pid: number | undefined;
  try {
    assertEquals(g.controllers[0]!.version, 2);
    g.create();
    assert(existsSync(`${root}/hako-test-v2/box/cgroup.procs`));
    pid = Process.fork(() => {
      g.attach();
      Process.exec("sleep", "10");
    });
    const child = pid;
    await waitFor(() => readProcs(`${root}/hako-test-v2/box`).includes(child), "the child in cgroup.procs");
    assertEquals(g.procs(), [child]);
    g.delete({ kill: true }); // cgroup.kill on this kernel
    assertEquals(reap(child)?.signal, 9);
    pid = undefined;
    assert(!existsSync(`${root}/hako-test-v2`), "the leaf and the parent create() made are gone");
    g.delete();
  } finally {
    reap(pid);
    g.delete({ kill: true });
  }
}, { skip: needsUnified });

test(
  "on a cgroup2 root without the cpu controller, cpu.max fails with 'not enabled' and create() undoes itself",
  () => {
    const root = unified!;
    const plain = new Cgroup.CPU("hako-test-v2cpu", { root });
    const rolled = new Cgroup.CPU("hako-test-v2roll/leaf", { root });
    try {
      plain.create(); // no attributes yet: just the directory
      assert(plain.exists());
      plain.cfsQuotaUs = 20_000;
      const e = assertThrows(
        () => plain.modify(),
        SyscallError,
        new RegExp(`controller cpu is not enabled in ${root}/cgroup\\.subtree_control`),
      );
      assertEquals(e.code, "ENOENT");
      rolled.cfsQuotaUs = 20_000;
      assertThrows(() => rolled.create(), SyscallError, /controller cpu is not enabled/);
      assert(!existsSync(`${root}/hako-test-v2roll`), "create() removed the directories it made");
    } finally {
      plain.delete({ kill: true });
      rolled.delete({ kill: true });
    }
    assert(!existsSync(plain.path));
  },
  {
    skip: needsUnified ||
      (layout()?.unifiedControllers.includes("cpu") ? "the cgroup2 root offers the cpu controller here" : false),
  },
);

test("`using` deletes the cgroup at the end of the scope, killing its members", async () => {
  let path = "";
  let pid: number | undefined;
  try {
    using g = new Cgroup.Pids("hako-test-using");
    g.create();
    path = g.path;
    pid = Process.fork(() => {
      g.attach();
      Process.exec("sleep", "10");
    });
    const child = pid;
    await waitFor(() => readProcs(path).includes(child), "the child in the cgroup");
  } finally {
    assert(!path || !existsSync(path), "disposed");
    assertEquals(reap(pid)?.signal ?? 9, 9);
    new Cgroup.Pids("hako-test-using").delete({ kill: true });
  }
}, { skip: needs("pids") });
