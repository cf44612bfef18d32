/**
 * The v1 ⇄ v2 conversions of the spec's typed cgroup fields, each both ways: cpu weight ⇄ shares
 * (runc's formula), io weight ⇄ the BFQ/CFQ weight (the inverse of runc's and crun's
 * `1 + (w - 10) * 9999 / 990`, on v1's blkio.weight / blkio.bfq.weight and v2's io.bfq.weight
 * alike), memory + swap ⇄ memsw, quotas and limits; unit tests without root, fake cgroup trees,
 * and the kernel's own values read back on this host's v1 hierarchies.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { equal } from "node:assert/strict";
import { isRoot, tempDir, test } from "./_harness.ts";
import { blkioWeightToIo, ioWeightToBlkio, sharesToWeight, weightToShares } from "../src/cgroup/values.ts";
import { Group } from "../src/cgroup/group.ts";
import { IO } from "../src/cgroup/io.ts";
import { detect } from "../src/cgroup/layout.ts";
import { containerGroupSpec } from "../src/container/_cgroup.ts";

test("blkio weight → io weight is runc's and crun's 1 + (w - 10) * 9999 / 990, in integers", () => {
  equal(blkioWeightToIo(10), 1);
  equal(blkioWeightToIo(15), 51); // (not 52: integer division, 50.5 down)
  equal(blkioWeightToIo(100), 910);
  equal(blkioWeightToIo(500), 4950);
  equal(blkioWeightToIo(1000), 10000);
});

test("io weight → blkio/BFQ weight inverts it: every v1 weight survives the round trip, and it only grows", () => {
  equal(ioWeightToBlkio(1), 10);
  equal(ioWeightToBlkio(100), 20);
  equal(ioWeightToBlkio(300), 40);
  equal(ioWeightToBlkio(4950), 500);
  equal(ioWeightToBlkio(10000), 1000);
  for (let b = 10; b <= 1000; b++) equal(ioWeightToBlkio(blkioWeightToIo(b)), b, `blkio ${b}`);
  for (let w = 2; w <= 10000; w++) {
    const b = ioWeightToBlkio(w);
    if (b < ioWeightToBlkio(w - 1) || b < 10 || b > 1000) throw new Error(`io ${w} → ${b}`);
  }
});

test("cpu weight ⇄ shares: runc's shares → weight, and a weight written as shares reads back as itself", () => {
  equal(sharesToWeight(2), 1);
  equal(sharesToWeight(1024), 39);
  equal(sharesToWeight(262144), 10000);
  equal(weightToShares(1), 2);
  equal(weightToShares(100), 2598); // (2597 would read back as weight 99)
  equal(weightToShares(10000), 262144);
  for (let w = 1; w <= 10000; w++) equal(sharesToWeight(weightToShares(w)), w, `weight ${w}`);
  for (let s = 2; s <= 262144; s += 97) {
    const w = sharesToWeight(s);
    if (weightToShares(w) > s) throw new Error(`shares ${s} → weight ${w} → more shares ${weightToShares(w)}`);
  }
});

/** A fake cgroup leaf with empty control files (the kernel would make them). */
function fakeLeaf(dir: string, files: string[]): void {
  mkdirSync(dir, { recursive: true });
  for (const f of ["cgroup.procs", ...files]) writeFileSync(`${dir}/${f}`, "");
}

test("an io weight goes to BFQ's weight in the same v1 units on v1 and on v2 (io.bfq.weight), as is to io.weight", () => {
  using tmp = tempDir("hako-convert-");
  // v2, BFQ only (no io.weight: no io.cost): the v1-unit weight, as runc and crun write it
  const v2 = `${tmp.path}/v2`;
  mkdirSync(v2);
  writeFileSync(`${v2}/cgroup.controllers`, "io\n");
  writeFileSync(`${v2}/cgroup.subtree_control`, "");
  fakeLeaf(`${v2}/hako-test-bfq`, ["io.max", "io.bfq.weight"]);
  const bfq2 = new IO("hako-test-bfq", { root: v2 });
  bfq2.weight = 300;
  bfq2.create();
  equal(readFileSync(`${v2}/hako-test-bfq/io.bfq.weight`, "utf8"), "default 40");
  // v2 with io.weight: the v2 weight as it is
  fakeLeaf(`${v2}/hako-test-cost`, ["io.max", "io.weight", "io.bfq.weight"]);
  const cost = new IO("hako-test-cost", { root: v2 });
  cost.weight = 300;
  cost.create();
  equal(readFileSync(`${v2}/hako-test-cost/io.weight`, "utf8"), "default 300");
  // v1, BFQ (kernels since 5.0 have no CFQ, so no blkio.weight)
  const v1 = `${tmp.path}/v1`;
  fakeLeaf(`${v1}/blkio/hako-test-bfq`, ["blkio.bfq.weight", "blkio.throttle.read_bps_device"]);
  const bfq1 = new IO("hako-test-bfq", { root: v1 });
  bfq1.weight = 300;
  bfq1.create();
  equal(readFileSync(`${v1}/blkio/hako-test-bfq/blkio.bfq.weight`, "utf8"), "40");
});

function v1Skip(): string | false {
  if (!isRoot) return "needs root (makes cgroups)";
  try {
    const l = detect();
    if (l.version !== 1) return "needs cgroup v1 hierarchies (this host is v2)";
    for (const c of ["cpu", "blkio", "memory", "pids"]) if (!l.v1[c]) return `needs the v1 ${c} controller`;
  } catch (e) {
    return `no cgroup filesystem: ${(e as Error).message}`;
  }
  return false;
}

test("on v1, a container's typed cgroup fields read back from the kernel as the spec gave them", () => {
  const l = detect();
  const name = `hako-test-convert-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  // (a weight needs CFQ's blkio.weight or BFQ's blkio.bfq.weight: a kernel whose disks use
  // mq-deadline or none has neither, and the write fails there, as runc's does)
  const weightFile = ["blkio.weight", "blkio.bfq.weight"].find((f) => existsSync(`${l.v1.blkio}/${f}`));
  const group = new Group(
    name,
    containerGroupSpec({
      cpu: { weight: 300, quotaUs: 50_000, periodUs: 100_000 },
      memory: { limit: "64M", swap: "32M" },
      pids: { max: 42 },
      ...(weightFile ? { io: { weight: 300 } } : {}),
    }, { devices: false }),
  );
  try {
    group.create();
    const read = (ctrl: string, file: string) => readFileSync(`${l.v1[ctrl]}/${name}/${file}`, "utf8").trim();
    const shares = Number(read("cpu", "cpu.shares"));
    equal(shares, weightToShares(300));
    equal(sharesToWeight(shares), 300, "the weight, read back through shares");
    equal(read("cpu", "cpu.cfs_quota_us"), "50000");
    equal(read("cpu", "cpu.cfs_period_us"), "100000");
    equal(read("memory", "memory.limit_in_bytes"), String(64 << 20));
    if (existsSync(`${l.v1.memory}/${name}/memory.memsw.limit_in_bytes`)) {
      equal(read("memory", "memory.memsw.limit_in_bytes"), String(96 << 20), "memory + swap");
    }
    equal(read("pids", "pids.max"), "42");
    if (weightFile) {
      // (BFQ's v1 file reads "default N" on some kernels, "N" on others)
      equal(read("blkio", weightFile).replace(/^default\s+/, ""), "40");
    }
  } finally {
    group.delete({ kill: true });
  }
}, { skip: v1Skip() });
