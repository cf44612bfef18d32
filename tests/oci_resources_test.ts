/**
 * config.json's `linux.resources` beyond devices, memory limit, pids and CPU shares (issue #16):
 * `blockIO`, memory reservation, swappiness, OOM killer, kernel memory, realtime CPU, `cpu.idle`,
 * `cpu.burst`, `unified`, hugepages, network, rdma — mapped as runc maps them (pure tests, no
 * root), then written by `hako-runc create` on this host and read back from the container's
 * cgroup next to what runc writes for the same bundle, and through podman's flags.
 *
 * Everything is named `hako-test-ocires-…` and removed even when a test fails.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { isRoot, tempDir, test } from "./_harness.ts";
import { has, launcher, PODMAN_RUN_LIMITS, podmanStorage, type Run, runIt } from "./_oci_lab.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { OciConfigError, type OciPlan, ociToSpec } from "../src/oci/config.ts";
import { mergedCgroup, updateResources } from "../src/oci/update.ts";
import { resolveSpec } from "../src/container/validate.ts";
import { existingCgroupDirs } from "../src/container/_cgroup.ts";
import { detect } from "../src/cgroup/layout.ts";

const RUNC = "/usr/sbin/runc";
const suffix = () => Math.random().toString(36).slice(2, 8);

/** A config with these `linux.resources`, mapped for a cgroup v1 or v2 host. */
function plan(resources: unknown, cgroupVersion: 1 | 2 = 1): OciPlan {
  return ociToSpec(
    { ociVersion: "1.2.0", process: { args: ["true"] }, root: { path: "rootfs" }, linux: { resources } },
    "/b",
    "ocires",
    { cgroupVersion },
  );
}

/** The problems `ociToSpec` finds, as `path: message` lines. */
function problems(resources: unknown, cgroupVersion: 1 | 2 = 1): string[] {
  try {
    plan(resources, cgroupVersion);
  } catch (e) {
    if (e instanceof OciConfigError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  return [];
}

/** hako's own validation takes the mapped spec (its raw keys, its io limits). */
function valid(p: OciPlan): void {
  resolveSpec({ ...p.spec, rootfs: "/nonexistent-hako-test-ocires", namespaces: ["mount"] });
}

// ---- the mapping (no root) ------------------------------------------------------------------------

test("blockIO maps as runc's: the weight converted to hako's io weight, throttles per MAJ:MIN, 0 lifting a limit", () => {
  const p = plan({
    blockIO: {
      weight: 300,
      leafWeight: 200,
      throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }, { major: 8, minor: 16, rate: 0 }],
      throttleWriteBpsDevice: [{ major: 8, minor: 0, rate: 2097152 }],
      throttleReadIOPSDevice: [{ major: 8, minor: 0, rate: 100 }, { major: 8, minor: 0, rate: 120 }],
      throttleWriteIOPSDevice: [{ major: 254, minor: 0, rate: 50 }],
      weightDevice: [],
    },
  });
  deepEqual(p.spec.cgroup, {
    io: {
      // (1 + (300 - 10) * 9999 / 990, runc's ConvertBlkIOToIOWeightValue; src/cgroup writes 300 back on v1)
      weight: 2930,
      readBps: { "8:0": 1048576, "8:16": "max" },
      writeBps: { "8:0": 2097152 },
      // (a later entry for the same device wins, as runc writes them in order)
      readIops: { "8:0": 120 },
      writeIops: { "254:0": 50 },
    },
    raw: { "blkio.leaf_weight": 200 },
  });
  // the spec is one hako's validation takes
  valid(p);
  // v2: no leaf weight in runc's fs2 either
  const v2 = plan({ blockIO: { weight: 300, leafWeight: 200 } }, 2);
  deepEqual(v2.spec.cgroup, { io: { weight: 2930 } });
  deepEqual(v2.warnings, [
    "linux.resources.blockIO.leafWeight: ignored, as runc does (cgroup v2 has no leaf weight)",
  ]);
});

test("blockIO refusals name their path: a string rate, a weight out of 10..1000, a per-device weight", () => {
  deepEqual(
    problems({
      blockIO: {
        weight: "300",
        leafWeight: 5,
        weightDevice: [{ major: 8, minor: 0, weight: 500 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: "10m" }, { major: -1, minor: 0, rate: 5 }, "8:0 5"],
        throttleWriteIOPSDevice: { major: 8 },
        throttleWriteBpsDevice: [{ major: 8, minor: 0 }],
      },
    }),
    [
      'linux.resources.blockIO.weight: must be a number, got "300"',
      "linux.resources.blockIO.leafWeight: must be 0 (unset) or in 10..1000, got 5",
      "linux.resources.blockIO.weightDevice: not supported by hako: it sets one block I/O weight for all devices (linux.resources.blockIO.weight)",
      'linux.resources.blockIO.throttleReadBpsDevice[0].rate: must be a number, got "10m"',
      "linux.resources.blockIO.throttleReadBpsDevice[1].major: must be an integer in 0..4095, got -1",
      "linux.resources.blockIO.throttleReadBpsDevice[2]: must be { major, minor, rate }",
      "linux.resources.blockIO.throttleWriteBpsDevice[0].rate: is required",
      "linux.resources.blockIO.throttleWriteIOPSDevice: must be an array of { major, minor, rate }",
    ],
  );
  deepEqual(problems({ blockIO: { weight: 1001 } }), [
    "linux.resources.blockIO.weight: must be an integer in 0..1000, got 1001",
  ]);
  deepEqual(problems({ blockIO: { weight: 0, leafWeight: 0 } }), []);
});

test("memory: a reservation is v1's soft limit and v2's memory.low; swappiness and the OOM killer v1 only, as runc's", () => {
  const memory = {
    limit: 67108864,
    reservation: 33554432,
    swappiness: 10,
    disableOOMKiller: true,
    kernel: 1048576,
    kernelTCP: 1048576,
    checkBeforeUpdate: true,
    useHierarchy: true,
  };
  const v1 = plan({ memory });
  deepEqual(v1.spec.cgroup, {
    memory: { limit: 67108864 },
    raw: { "memory.soft_limit_in_bytes": 33554432, "memory.swappiness": 10, "memory.oom_control": 1 },
  });
  // runc 1.2+: "Kernel memory settings are ignored and will be removed"
  deepEqual(v1.warnings, [
    "linux.resources.memory.kernel: ignored, as runc does (kernel memory settings are ignored and will be removed)",
    "linux.resources.memory.kernelTCP: ignored, as runc does (kernel memory settings are ignored and will be removed)",
  ]);
  valid(v1);
  const v2 = plan({ memory: { ...memory, checkBeforeUpdate: false, reservation: -1 } }, 2);
  deepEqual(v2.spec.cgroup, { memory: { limit: 67108864 }, raw: { "memory.low": "max" } });
  deepEqual(v2.warnings.map((w) => w.split(":")[0]), [
    "linux.resources.memory.swappiness",
    "linux.resources.memory.disableOOMKiller",
    "linux.resources.memory.kernel",
    "linux.resources.memory.kernelTCP",
  ]);
  // 0 and -1 are "unset" as runc reads them; useHierarchy false cannot be had from the kernel
  const unset = plan({ memory: { reservation: 0, swappiness: -1, disableOOMKiller: false, useHierarchy: false } });
  deepEqual(unset.spec.cgroup, {});
  deepEqual(unset.warnings, [
    "linux.resources.memory.useHierarchy: ignored, as runc does (the kernel's memory accounting is always hierarchical)",
  ]);
  deepEqual(
    problems({ memory: { reservation: "32m", swappiness: 101, disableOOMKiller: "yes", kernel: "1g" } }),
    [
      'linux.resources.memory.reservation: must be a number, got "32m"',
      'linux.resources.memory.kernel: must be a number, got "1g"',
      'linux.resources.memory.disableOOMKiller: must be a boolean, got "yes"',
      "linux.resources.memory.swappiness: invalid memory swappiness value: 101 (valid range is 0-100)",
    ],
  );
  deepEqual(problems({ memory: { reservation: -2 } }), [
    "linux.resources.memory.reservation: must be an integer in -1..2^53, got -2",
  ]);
  deepEqual(problems({ memory: { checkBeforeUpdate: true } }, 2), [
    "linux.resources.memory.checkBeforeUpdate: not supported by hako on cgroup v2 (a new limit is not checked against usage)",
  ]);
});

test("cpu: the realtime budget (period first) on v1 only, idle on both, the burst in each version's file", () => {
  const cpu = { quota: 50000, period: 100000, realtimePeriod: 1000000, realtimeRuntime: 10000, idle: 1, burst: 20000 };
  deepEqual(plan({ cpu }).spec.cgroup, {
    cpu: { quotaUs: 50000, periodUs: 100000 },
    raw: { "cpu.rt_period_us": 1000000, "cpu.rt_runtime_us": 10000, "cpu.idle": 1, "cpu.cfs_burst_us": 20000 },
  });
  deepEqual(Object.keys(plan({ cpu }).spec.cgroup!.raw!), [
    "cpu.rt_period_us",
    "cpu.rt_runtime_us",
    "cpu.idle",
    "cpu.cfs_burst_us",
  ]);
  valid(plan({ cpu }));
  // runc's fs2 has no realtime budget: it ignores both fields
  const v2 = plan({ cpu }, 2);
  deepEqual(v2.spec.cgroup, {
    cpu: { quotaUs: 50000, periodUs: 100000 },
    raw: { "cpu.idle": 1, "cpu.max.burst": 20000 },
  });
  deepEqual(v2.warnings, [
    "linux.resources.cpu.realtimeRuntime: ignored, as runc does (cgroup v2 has no realtime budget per cgroup)",
  ]);
  deepEqual(plan({ cpu: { realtimeRuntime: -1 } }).spec.cgroup, { raw: { "cpu.rt_runtime_us": -1 } });
  deepEqual(problems({ cpu: { idle: 2, burst: -1, realtimePeriod: "1s", realtimeRuntime: 1.5 } }), [
    'linux.resources.cpu.realtimePeriod: must be a number, got "1s"',
    "linux.resources.cpu.realtimeRuntime: must be an integer in -1..2^53, got 1.5",
    "linux.resources.cpu.idle: must be an integer in 0..1, got 2",
    "linux.resources.cpu.burst: must be an integer in 0..2^53, got -1",
  ]);
});

test("unified: refused on a v1 host as runc refuses it; on v2 only files of hako's controllers, as strings", () => {
  deepEqual(problems({ unified: { "memory.high": "1000000" } }), [
    "linux.resources.unified: invalid configuration: cannot use unified on cgroup v1",
  ]);
  deepEqual(plan({ unified: {} }).spec.cgroup, {});
  deepEqual(plan({ unified: { "memory.high": "1000000", "cpu.weight.nice": "5" } }, 2).spec.cgroup, {
    raw: { "memory.high": "1000000", "cpu.weight.nice": "5" },
  });
  deepEqual(
    problems({
      unified: {
        "../../memory.max": "1",
        "memory/../../x": "1",
        "rdma.max": "1",
        "cgroup.procs": "1",
        "cgroup.subtree_control": "+cpu",
        "pids.max": 5,
      },
    }, 2),
    [
      'linux.resources.unified["../../memory.max"]: not supported by hako: only files of the cpu, cpuset, memory, pids, io and hugetlb controllers',
      'linux.resources.unified["memory/../../x"]: not supported by hako: only files of the cpu, cpuset, memory, pids, io and hugetlb controllers',
      'linux.resources.unified["rdma.max"]: not supported by hako: only files of the cpu, cpuset, memory, pids, io and hugetlb controllers',
      'linux.resources.unified["cgroup.procs"]: not supported by hako: only files of the cpu, cpuset, memory, pids, io and hugetlb controllers',
      'linux.resources.unified["cgroup.subtree_control"]: not supported by hako: only files of the cpu, cpuset, memory, pids, io and hugetlb controllers',
      'linux.resources.unified["pids.max"]: must be a string, got 5',
    ],
  );
});

test("hugepageLimits map onto cgroup.hugetlb (a page size twice: the last, as runc writes them in order); network and rdma are refused by their path (empty ones, as engines write them, are fine)", () => {
  deepEqual(
    plan({
      hugepageLimits: [{ pageSize: "2MB", limit: 2097152 }, { pageSize: "1GB", limit: 0 }, {
        pageSize: "2MB",
        limit: 4194304,
      }],
    }).spec.cgroup,
    { hugetlb: { "2MB": 4194304, "1GB": 0 } },
  );
  deepEqual(
    problems({
      hugepageLimits: [{ pageSize: "2MB/../x", limit: 1 }, { pageSize: "2MB", limit: "1" }],
      network: { classID: 1048577, priorities: [{ name: "eth0", priority: 5 }] },
      rdma: { mlx5_1: { hcaHandles: 3 } },
    }),
    [
      'linux.resources.hugepageLimits[0].pageSize: must be a page size as the kernel names them ("2MB", "1GB"), got "2MB/../x"',
      'linux.resources.hugepageLimits[1].limit: must be a number of bytes, got "1"',
      "linux.resources.network: not supported by hako: its cgroup library has no net_cls or net_prio controller (runc's cgroup v2 manager has none either)",
      "linux.resources.rdma: not supported by hako: its cgroup library has no rdma controller",
    ],
  );
  deepEqual(plan({ hugepageLimits: [], network: { priorities: [] }, rdma: {} }).spec.cgroup, {});
});

test("update takes what runc's update takes, throttles merged per device; what runc's update drops is refused", () => {
  deepEqual(
    updateResources({ "blkio-weight": "300", "cpu-rt-runtime": "5000", "cpu-burst": "100", "cpu-idle": "1" }, () => ""),
    { blockIO: { weight: 300 }, cpu: { realtimeRuntime: 5000, burst: 100, idle: 1 } },
  );
  deepEqual(
    mergedCgroup(
      { name: "x", io: { readBps: { "8:0": 5, "8:16": 6 } }, raw: { "memory.oom_control": 1 } },
      {
        blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 7 }] },
        memory: { reservation: 1048576 },
        cpu: { realtimeRuntime: 5000 },
      },
    ),
    {
      name: "x",
      io: { readBps: { "8:0": 7, "8:16": 6 } },
      raw: { "memory.oom_control": 1, "memory.soft_limit_in_bytes": 1048576, "cpu.rt_runtime_us": 5000 },
    },
  );
  throws(
    () => mergedCgroup({}, { memory: { swappiness: 5, disableOOMKiller: true }, network: { classID: 1 } }),
    (e: Error) =>
      e instanceof OciConfigError && deepEqual(e.problems.map((p) => p.path), [
          "linux.resources.memory.swappiness",
          "linux.resources.memory.disableOOMKiller",
          "linux.resources.network",
        ]) === undefined &&
      /runc's update does not apply it either/.test(e.message),
  );
  // (false and empty ones are what podman sends with no flag)
  deepEqual(mergedCgroup({}, { memory: { disableOOMKiller: false }, network: {} }), {});
});

// ---- on this host, next to runc --------------------------------------------------------------------

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : !findStaticBusybox()
  ? "needs a static busybox (apt-get install busybox-static)"
  : !has(RUNC)
  ? "needs runc to compare with (apt-get install runc)"
  : existsSync("/sys/fs/cgroup/cgroup.controllers")
  ? "the comparisons read cgroup v1 files (this host is cgroup v2)"
  : false;

/** A busybox bundle with runc's default config, `sleep 60`, these resources and this cgroupsPath. */
function makeBundle(dir: string, resources: Record<string, unknown>, cgroupsPath: string): string {
  const bundle = join(dir, "bundle");
  rmSync(bundle, { recursive: true, force: true });
  mkdirSync(bundle);
  buildRootfs(join(bundle, "rootfs"), { builder: "busybox" });
  const r = runIt(RUNC, ["spec", "--bundle", bundle]);
  equal(r.status, 0, r.stderr);
  const c = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
  c.process.terminal = false;
  c.process.args = ["sleep", "60"];
  c.root.readonly = false;
  c.linux.resources = { ...c.linux.resources, ...resources };
  c.linux.cgroupsPath = cgroupsPath;
  writeFileSync(join(bundle, "config.json"), JSON.stringify(c));
  return bundle;
}

/** A cgroup v1 file of cgroup `name`, trimmed (the first hierarchy that has it), or undefined. */
function knob(name: string, file: string): string | undefined {
  const path = existingCgroupDirs(name).map((d) => join(d, file)).find((p) => existsSync(p));
  return path === undefined ? undefined : readFileSync(path, "utf8").trim();
}

/** Removes the cgroup `name` from every hierarchy (runc's name=systemd one too), its parent too when empty. */
function removeCgroup(name: string): void {
  for (const n of [name, name.split("/").slice(0, -1).join("/")]) {
    if (!n) continue;
    const systemd = `/sys/fs/cgroup/systemd/${n}`;
    for (const d of [...existingCgroupDirs(n), ...(existsSync(systemd) ? [systemd] : [])]) {
      try {
        rmdirSync(d);
      } catch { /* in use (another test's), or gone */ }
    }
  }
}

/**
 * Creates a container from the same bundle with hako-runc (`env` picks the child's path) and with
 * runc, each in a cgroup of its own, reads `files` of both cgroups, and removes both.
 */
function sideBySide(
  resources: Record<string, unknown>,
  files: readonly string[],
  env: Record<string, string>,
  parent: string,
): {
  hako: Run & { files: Record<string, string | undefined> };
  runc: Run & { files: Record<string, string | undefined> };
} {
  using dir = tempDir("hako-test-ocires-");
  const out: Record<string, Run & { files: Record<string, string | undefined> }> = {};
  for (const [who, cmd] of [["hako", launcher(dir.path)], ["runc", RUNC]] as const) {
    const id = `hako-test-ocires-${who}-${suffix()}`;
    const cgroup = `${parent}/${id}`.replace(/^\//, "");
    const bundle = makeBundle(dir.path, resources, `/${cgroup}`);
    const root = join(dir.path, `state-${who}`);
    try {
      const r = runIt(cmd, ["--root", root, "create", "--bundle", bundle, id], who === "hako" ? env : {});
      const got: Record<string, string | undefined> = {};
      if (r.status === 0) { for (const f of files) got[f] = knob(cgroup, f); }
      out[who] = { ...r, files: got };
    } finally {
      runIt(cmd, ["--root", root, "delete", "--force", id]);
      removeCgroup(cgroup);
    }
  }
  return { hako: out.hako!, runc: out.runc! };
}

const PATHS: ReadonlyArray<readonly [string, Record<string, string>]> = [
  ["the native child", {}],
  ["the forked child", { HAKO_NATIVE_SPAWN: "0" }],
];

/** The first block device of this host, `MAJ:MIN` (throttles need a real one). */
function blockDevice(): [number, number] | undefined {
  try {
    const dev = readFileSync("/sys/block/vda/dev", "utf8").trim();
    const [maj, min] = dev.split(":").map(Number);
    return [maj!, min!];
  } catch {
    return undefined;
  }
}

for (const [path, env] of PATHS) {
  test(
    `create writes blockIO throttles, the memory reservation, swappiness, the OOM switch, cpu idle and burst as runc does (${path})`,
    () => {
      const dev = blockDevice() ?? [1, 3];
      const [major, minor] = dev;
      const resources = {
        blockIO: {
          throttleReadBpsDevice: [{ major, minor, rate: 1048576 }],
          throttleWriteBpsDevice: [{ major, minor, rate: 2097152 }],
          throttleReadIOPSDevice: [{ major, minor, rate: 100 }],
          throttleWriteIOPSDevice: [{ major, minor, rate: 50 }],
        },
        memory: {
          limit: 134217728,
          reservation: 33554432,
          swappiness: 10,
          disableOOMKiller: true,
          kernel: 67108864,
          kernelTCP: 67108864,
        },
        cpu: { quota: 50000, period: 100000, idle: 1, burst: 20000 },
      };
      const files = [
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_bps_device",
        "blkio.throttle.read_iops_device",
        "blkio.throttle.write_iops_device",
        "memory.limit_in_bytes",
        "memory.soft_limit_in_bytes",
        "memory.swappiness",
        "memory.oom_control",
        "memory.kmem.limit_in_bytes",
        "memory.kmem.tcp.limit_in_bytes",
        "cpu.cfs_quota_us",
        "cpu.idle",
        "cpu.cfs_burst_us",
      ];
      const { hako, runc } = sideBySide(resources, files, env, "/hako-test-ocires");
      equal(runc.status, 0, runc.stderr);
      equal(hako.status, 0, hako.stderr);
      // (runc 1.1, Debian 12's, writes neither cpu.idle nor cpu.cfs_burst_us on cgroup v1; runc
      // 1.2+ does, as hako: compared with runc only where it wrote them)
      const without = (f: Record<string, string | undefined>) => {
        const { "cpu.idle": _i, "cpu.cfs_burst_us": _b, ...rest } = f;
        return rest;
      };
      if (runc.files["cpu.idle"] === "1") deepEqual(hako.files, runc.files);
      else deepEqual(without(hako.files), without(runc.files));
      equal(hako.files["blkio.throttle.read_bps_device"], `${major}:${minor} 1048576`);
      equal(hako.files["memory.soft_limit_in_bytes"], "33554432");
      equal(hako.files["memory.swappiness"], "10");
      match(hako.files["memory.oom_control"]!, /^oom_kill_disable 1$/m);
      equal(hako.files["cpu.idle"], "1");
      equal(hako.files["cpu.cfs_burst_us"], "20000");
      // (kernel memory: left as the kernel has it, by both)
    },
    { skip },
  );

  test(
    `a realtime budget: written where the parent has one, refused by the kernel where it has none, as runc (${path})`,
    () => {
      if (!existsSync("/sys/fs/cgroup/cpu/cpu.rt_runtime_us")) return; // (no RT group scheduling: nothing to write)
      const resources = { cpu: { realtimePeriod: 1000000, realtimeRuntime: 10000 } };
      const files = ["cpu.rt_period_us", "cpu.rt_runtime_us"];
      // at the top of the hierarchy: the root's budget (950000 of 1000000 by default) covers it
      const top = sideBySide(resources, files, env, "/");
      equal(top.runc.status, 0, top.runc.stderr);
      equal(top.hako.status, 0, top.hako.stderr);
      deepEqual(top.hako.files, { "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "10000" });
      deepEqual(top.hako.files, top.runc.files);
      // under a parent of no budget (a new cgroup's is 0): EINVAL from the kernel, for both
      const under = sideBySide(resources, files, env, "/hako-test-ocires");
      equal(under.runc.status, 1);
      match(under.runc.stderr, /cpu\.rt_runtime_us: invalid argument/);
      equal(under.hako.status, 1);
      match(under.hako.stderr, /cpu\.rt_runtime_us.*EINVAL/);
    },
    { skip },
  );
}

test("a blkio weight: BFQ's (or CFQ's) weight file as runc writes it, or the same failure where there is none", () => {
  const files = ["blkio.weight", "blkio.bfq.weight"];
  const { hako, runc } = sideBySide({ blockIO: { weight: 300 } }, files, {}, "/hako-test-ocires");
  equal(hako.status, runc.status, `hako: ${hako.stderr}\nrunc: ${runc.stderr}`);
  if (runc.status === 0) {
    deepEqual(hako.files, runc.files);
    ok(Object.values(hako.files).some((v) => v !== undefined && /\b300$/.test(v)), JSON.stringify(hako.files));
  } else {
    // (neither CFQ nor BFQ on this host: no weight file)
    match(hako.stderr, /blkio\.(bfq\.)?weight/);
  }
  // the leaf weight went with CFQ (Linux 5.0): where the file is missing, both fail on it
  const leaf = sideBySide({ blockIO: { leafWeight: 300 } }, ["blkio.leaf_weight"], {}, "/hako-test-ocires");
  equal(leaf.hako.status, leaf.runc.status, `hako: ${leaf.hako.stderr}\nrunc: ${leaf.runc.stderr}`);
  if (leaf.runc.status !== 0) match(leaf.hako.stderr, /blkio\.leaf_weight/);
  else deepEqual(leaf.hako.files, leaf.runc.files);
}, { skip });

test(
  "hugepageLimits on this host: hako writes the limit wherever hako's cgroup library finds hugetlb (cgroup2's on a hybrid host, where runc fails)",
  () => {
    const layout = detect();
    const where = layout.v1.hugetlb
      ? { dir: layout.v1.hugetlb, file: "hugetlb.2MB.limit_in_bytes" }
      : layout.unified && layout.unifiedControllers.includes("hugetlb")
      ? { dir: layout.unified, file: "hugetlb.2MB.max" }
      : undefined;
    if (!where || !existsSync("/sys/kernel/mm/hugepages/hugepages-2048kB")) return; // (no hugetlb or no 2MB pages)
    // (the test gives back the cgroup2 root's subtree_control as it was: see cgroup_hugetlb_test.ts)
    const control = join(where.dir, "cgroup.subtree_control");
    const before = existsSync(control) && readFileSync(control, "utf8").split(/\s+/).includes("hugetlb");
    try {
      const { hako, runc } = sideBySide(
        { hugepageLimits: [{ pageSize: "2MB", limit: 8388608 }] },
        [where.file],
        {},
        "/hako-test-ocires",
      );
      equal(hako.status, 0, hako.stderr);
      equal(hako.files[where.file], "8388608");
      if (runc.status === 0) equal(runc.files[where.file], "8388608");
      else if (!layout.v1.hugetlb) match(runc.stderr, /cannot set hugetlb limit/, "runc: no v1 hierarchy, no limit");
    } finally {
      if (existsSync(control) && !before) {
        try {
          writeFileSync(control, "-hugetlb");
        } catch { /* used by another cgroup now */ }
      }
    }
  },
  { skip },
);

test("unified and network on this host: refused by hako where runc fails too", () => {
  const cases: ReadonlyArray<readonly [Record<string, unknown>, string, RegExp, string | undefined]> = [
    [{ unified: { "memory.high": "1000000" } }, "unified", /cannot use unified on cgroup v1/, undefined],
    [{ network: { classID: 1048577 } }, "network", /net_cls/, "net_cls"],
  ];
  for (const [resources, field, runcSays, hierarchy] of cases) {
    const { hako, runc } = sideBySide(resources, [], {}, "/hako-test-ocires");
    equal(hako.status, 1);
    match(hako.stderr, new RegExp(`linux\\.resources\\.${field}: `));
    // (a host with the hierarchy mounted lets runc write it: hako still refuses, by name)
    if (!hierarchy || !existsSync(`/sys/fs/cgroup/${hierarchy}`)) {
      equal(runc.status, 1, `runc ran with ${JSON.stringify(resources)}`);
      match(runc.stderr, runcSays);
    }
  }
}, { skip });

test(
  "update writes a reservation, an OOM switch and throttles to the live cgroup; what runc's update drops is refused",
  () => {
    using dir = tempDir("hako-test-ocires-");
    const id = `hako-test-ocires-up-${suffix()}`;
    const cgroup = `hako-test-ocires/${id}`;
    const bundle = makeBundle(dir.path, { memory: { limit: 134217728, disableOOMKiller: true } }, `/${cgroup}`);
    const runc = launcher(dir.path);
    const root = join(dir.path, "state");
    const oci = (...args: string[]) => runIt(runc, ["--root", root, ...args]);
    try {
      let r = oci("create", "--bundle", bundle, id);
      equal(r.status, 0, r.stderr);
      match(knob(cgroup, "memory.oom_control")!, /^oom_kill_disable 1$/m);
      r = oci("update", "--memory-reservation", "32m", "--cpu-burst", "1000", "--cpu-quota", "50000", id);
      equal(r.status, 0, r.stderr);
      equal(knob(cgroup, "memory.soft_limit_in_bytes"), "33554432");
      equal(knob(cgroup, "cpu.cfs_burst_us"), "1000");
      const [major, minor] = blockDevice() ?? [1, 3];
      const file = join(dir.path, "resources.json");
      writeFileSync(file, JSON.stringify({ blockIO: { throttleReadBpsDevice: [{ major, minor, rate: 4096 }] } }));
      r = oci("update", "--resources", file, id);
      equal(r.status, 0, r.stderr);
      equal(knob(cgroup, "blkio.throttle.read_bps_device"), `${major}:${minor} 4096`);
      // (the earlier settings stay: the state holds them, and each update writes them all again)
      match(knob(cgroup, "memory.oom_control")!, /^oom_kill_disable 1$/m);
      equal(knob(cgroup, "memory.soft_limit_in_bytes"), "33554432");
      writeFileSync(file, JSON.stringify({ memory: { swappiness: 5 }, pids: { limit: 40 } }));
      r = oci("update", "--resources", file, id);
      equal(r.status, 1);
      equal(
        r.stderr,
        "linux.resources.memory.swappiness: not changed by update (runc's update does not apply it either)\n",
      );
    } finally {
      oci("delete", "--force", id);
      removeCgroup(cgroup);
    }
  },
  { skip },
);

// ---- podman ------------------------------------------------------------------------------------

const skipPodman = skip || (!has("podman") ? "podman is not installed (apt-get install podman)" : false);

test(
  "podman's --memory-reservation, --memory-swappiness, --oom-kill-disable and --device-read-bps: hako as runc",
  () => {
    using dir = tempDir("hako-test-ocires-podman-");
    const tag = `hako-test-ocires-${suffix()}`;
    const hakoRunc = launcher(dir.path);
    const base = podmanStorage(dir.path);
    const podman = (rt: string, ...args: string[]) => runIt("podman", [...base, "--runtime", rt, ...args]);
    const limits = PODMAN_RUN_LIMITS;
    const names: Array<[string, string]> = [];
    try {
      const rootfs = join(dir.path, "rootfs");
      buildRootfs(rootfs, { builder: "busybox" });
      const tar = join(dir.path, "rootfs.tar");
      execFileSync("tar", ["-C", rootfs, "-cf", tar, "."]);
      let r = podman(hakoRunc, "import", tar, tag);
      equal(r.status, 0, r.stderr);
      const dev = existsSync("/dev/vda") ? "/dev/vda" : undefined;
      const flags = [
        "--memory",
        "128m",
        "--memory-reservation",
        "32m",
        "--memory-swappiness",
        "10",
        "--oom-kill-disable",
        ...(dev ? ["--device-read-bps", `${dev}:1mb`] : []),
      ];
      const files = [
        "memory.soft_limit_in_bytes",
        "memory.swappiness",
        "memory.oom_control",
        "blkio.throttle.read_bps_device",
      ];
      const seen: Record<string, Record<string, string | undefined>> = {};
      for (const [who, rt] of [["hako", hakoRunc], ["runc", RUNC]] as const) {
        const name = `${tag}-${who}`;
        names.push([name, rt]);
        r = podman(rt, "run", "-d", "--name", name, ...limits, ...flags, tag, "sleep", "60");
        equal(r.status, 0, `${who}: ${r.stderr}`);
        const cid = podman(rt, "inspect", "--format", "{{.Id}}", name).stdout.trim();
        seen[who] = Object.fromEntries(files.map((f) => [f, knob(`libpod_parent/libpod-${cid}`, f)]));
        equal(podman(rt, "rm", "-f", name).status, 0);
      }
      deepEqual(seen.hako, seen.runc);
      equal(seen.hako!["memory.soft_limit_in_bytes"], String(32 * 1024 * 1024));
      equal(seen.hako!["memory.swappiness"], "10");
      match(seen.hako!["memory.oom_control"]!, /^oom_kill_disable 1$/m);
    } finally {
      for (const [n, rt] of names) podman(rt, "rm", "-f", n);
      podman(hakoRunc, "rmi", "-f", tag);
      rmSync(join(dir.path, "storage"), { recursive: true, force: true });
      const named = ["/sys/fs/cgroup/systemd/libpod_parent/conmon", "/sys/fs/cgroup/systemd/libpod_parent"];
      for (
        const d of [...existingCgroupDirs("libpod_parent/conmon"), ...existingCgroupDirs("libpod_parent"), ...named]
      ) {
        try {
          rmdirSync(d);
        } catch { /* in use */ }
      }
    }
  },
  { skip: skipPodman },
);
