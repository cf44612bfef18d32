/**
 * Huge page limits (`cgroup.hugetlb`, OCI's `linux.resources.hugepageLimits`): each page size's
 * limit and, where the kernel has one, its reservation limit, as runc writes them — on fake v1 and
 * v2 trees without root, then on this host's own hugetlb controller (a v1 hierarchy, or cgroup2's —
 * a hybrid host's unified tree offers the controllers no v1 hierarchy binds), read back from the
 * kernel while a container runs. (No v1 hierarchy is mounted for the test: one outlives its mount
 * while a cgroup in it is dying, keeping the controller from cgroup2 meanwhile.)
 * @module
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { isRoot, tempDir, test, until } from "./_harness.ts";
import { Hugetlb, pageSizeName } from "../src/cgroup/hugetlb.ts";
import { isPageSizeName } from "../src/cgroup/values.ts";
import { detect } from "../src/cgroup/layout.ts";
import { ConfigError } from "../src/errors.ts";
import { Container } from "../src/container/container.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { ociToSpec } from "../src/oci/config.ts";
import { defaultOciSpec } from "../src/oci/spec_default.ts";

/** A fake cgroup leaf with empty control files (the kernel would make them). */
function fakeLeaf(dir: string, files: string[]): void {
  mkdirSync(dir, { recursive: true });
  for (const f of ["cgroup.procs", ...files]) writeFileSync(`${dir}/${f}`, "");
}

test("page sizes are named as the kernel's control files name them", () => {
  equal(pageSizeName(2 << 20), "2MB");
  equal(pageSizeName(1 << 30), "1GB");
  equal(pageSizeName(64 << 10), "64KB");
  for (const ok of ["2MB", "1GB", "64KB", "32MB"]) equal(isPageSizeName(ok), true, ok);
  for (const bad of ["2M", "2mb", "0MB", "2 MB", "2MB/../x", "", "1TB"]) equal(isPageSizeName(bad), false, bad);
});

test("a hugetlb limit is written per page size, with its reservation limit where the kernel has one (v1 and v2)", () => {
  using tmp = tempDir("hako-test-hugetlb-");
  // v1, a kernel with reservation files (5.7+)
  const v1 = `${tmp.path}/v1`;
  fakeLeaf(`${v1}/hugetlb/hako-test-huge`, [
    "hugetlb.2MB.limit_in_bytes",
    "hugetlb.2MB.rsvd.limit_in_bytes",
    "hugetlb.1GB.limit_in_bytes",
    "hugetlb.1GB.rsvd.limit_in_bytes",
  ]);
  const h1 = new Hugetlb("hako-test-huge", { root: v1 });
  h1.limits = { "2MB": "4M", "1GB": "max" };
  h1.create();
  const read = (f: string) => readFileSync(f, "utf8");
  equal(read(`${v1}/hugetlb/hako-test-huge/hugetlb.2MB.limit_in_bytes`), String(4 << 20));
  equal(read(`${v1}/hugetlb/hako-test-huge/hugetlb.2MB.rsvd.limit_in_bytes`), String(4 << 20));
  equal(read(`${v1}/hugetlb/hako-test-huge/hugetlb.1GB.limit_in_bytes`), "-1", "no limit, as v1 writes it");
  // v2, a kernel without them: the limit alone
  const v2 = `${tmp.path}/v2`;
  mkdirSync(v2);
  writeFileSync(`${v2}/cgroup.controllers`, "hugetlb\n");
  writeFileSync(`${v2}/cgroup.subtree_control`, "");
  fakeLeaf(`${v2}/hako-test-huge`, ["hugetlb.2MB.max"]);
  const h2 = new Hugetlb("hako-test-huge", { root: v2 });
  h2.limits = { "2MB": 0 };
  h2.create();
  equal(read(`${v2}/hako-test-huge/hugetlb.2MB.max`), "0");
  equal(existsSync(`${v2}/hako-test-huge/hugetlb.2MB.rsvd.max`), false);
  // a page size the host does not have: named, before any write
  const h3 = new Hugetlb("hako-test-huge", { root: v2 });
  h3.limits = { "16GB": 1 };
  throws(
    () => h3.create(),
    (e: Error) => e instanceof ConfigError && /hugetlb\.limits\.16GB.*no 16GB huge pages/.test(e.message),
  );
  throws(() => (new Hugetlb("x").limits = { "2M": 1 }), /hugetlb\.limits\.2M.*not a huge page size/);
});

test("the spec's cgroup.hugetlb and OCI's hugepageLimits are checked by field path", () => {
  using dir = tempDir("hako-test-hugetlb-spec-");
  const base = { name: "x", rootfs: dir.path, command: ["true"] };
  throws(
    () => resolveSpec({ ...base, cgroup: { hugetlb: { "2M": 1, "1GB": "lots" } } }),
    (e: Error) =>
      e instanceof SpecError && /cgroup\.hugetlb\["?2M"?\]/.test(e.message) &&
      /cgroup\.hugetlb\["?1GB"?\]/.test(e.message),
  );
  const c = defaultOciSpec() as unknown as Record<string, Record<string, unknown>>;
  (c.linux!.resources as Record<string, unknown>) = {
    hugepageLimits: [{ pageSize: "2MB", limit: 4194304 }, { pageSize: "1GB", limit: 0 }],
  };
  deepEqual(ociToSpec(c, "/b", "abc").spec.cgroup?.hugetlb, { "2MB": 4194304, "1GB": 0 });
  (c.linux!.resources as Record<string, unknown>) = { hugepageLimits: [{ pageSize: "2mb", limit: -1 }] };
  throws(() => ociToSpec(c, "/b", "abc"), /hugepageLimits\[0\]\.pageSize/);
});

// ---- the host's hugetlb controller ---------------------------------------------------------------

/** Why the real test cannot run, or false. */
function realSkip(): string | false {
  if (!isRoot) return "needs root (makes cgroups)";
  if (!findStaticBusybox()) return "needs a static busybox (apt-get install busybox-static)";
  if (!existsSync("/sys/kernel/mm/hugepages/hugepages-2048kB")) return "this kernel has no 2MB huge pages";
  try {
    const l = detect();
    if (l.version === 2 && !l.unifiedControllers.includes("hugetlb")) return "the cgroup2 root offers no hugetlb";
  } catch (e) {
    return `no cgroup filesystem: ${(e as Error).message}`;
  }
  return false;
}

/**
 * Where hako finds the hugetlb controller: a v1 hierarchy when one is mounted, else the cgroup2
 * tree when its root offers it (a hybrid host's unified tree may: a controller no v1 hierarchy
 * binds is v2's); null when neither.
 */
function hugetlbNow(): { dir: string; v1: boolean } | null {
  const l = detect();
  if (l.v1.hugetlb) return { dir: l.v1.hugetlb, v1: true };
  if (l.unified && l.unifiedControllers.includes("hugetlb")) return { dir: l.unified, v1: false };
  return null;
}

test("a container's hugetlb limits are the kernel's while it runs, in its stats too", async () => {
  using tmp = tempDir("hako-test-hugetlb-run-");
  const where = hugetlbNow()!;
  // (hako enables the controller in the cgroup2 root's subtree_control, and leaves it so, as any
  // controller it enables in a cgroup it did not make; the test gives the host back as it was —
  // a v1 hugetlb hierarchy, which crun on a hybrid host needs, cannot be mounted while v2 uses it)
  const control = join(where.dir, "cgroup.subtree_control");
  const enabledBefore = !where.v1 && readFileSync(control, "utf8").split(/\s+/).includes("hugetlb");
  using _restore = {
    [Symbol.dispose]() {
      if (where.v1 || enabledBefore) return;
      try {
        writeFileSync(control, "-hugetlb");
      } catch { /* in use by another cgroup now: left */ }
    },
  };
  const rootfs = buildRootfs(join(tmp.path, "rootfs"), { builder: "busybox" }).path;
  const name = `hako-test-huge-${process.pid}-${Math.random().toString(16).slice(2, 6)}`;
  await using c = await Container.create({
    name,
    rootfs,
    cgroup: { hugetlb: { "2MB": "8M" } },
    command: ["sleep", "30"],
  });
  await c.start();
  const dir = join(where.dir, "hako", name);
  await until("the container's hugetlb cgroup", () => existsSync(dir));
  const [limitFile, rsvd] = where.v1
    ? ["hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.rsvd.limit_in_bytes"]
    : ["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max"];
  equal(readFileSync(join(dir, limitFile), "utf8").trim(), String(8 << 20));
  if (existsSync(join(dir, rsvd))) equal(readFileSync(join(dir, rsvd), "utf8").trim(), String(8 << 20));
  ok(readFileSync(join(dir, "cgroup.procs"), "utf8").trim().length > 0, "the container is in it");
  deepEqual(c.stats().hugetlb?.["2MB"], { usage: 0, limit: 8 << 20, failures: 0 });
  c.kill("KILL");
  await c.wait();
}, {
  skip: realSkip() || (hugetlbNow() ? false : "no hugetlb controller here (no v1 hierarchy, none offered by cgroup2)"),
});
