/**
 * The attach's grace period paid ahead (src/cgroup/_prime.ts): the runtime writes its own pid into
 * the cgroup it is in — found safely, or nothing is written — and a container made meanwhile is in
 * its own cgroup while the runtime stays where it was.
 * @module
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { atEnd, needsRoot, tempDir, test } from "./_harness.ts";
import { ownProcsFile, primeAttach, primeSettled } from "../src/cgroup/_prime.ts";
import type { CgroupMount } from "../src/cgroup/layout.ts";
import { detect } from "../src/cgroup/layout.ts";
import { Container } from "../src/container/container.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";

const HYBRID = [
  "12:pids:/user.slice/u",
  "7:cpu,cpuacct:/user.slice",
  "1:name=systemd:/user.slice/session-1.scope",
  "0::/user.slice/session-1.scope",
  "",
].join("\n");
const v1 = (mountPoint: string, subsystems: string[], name?: string): CgroupMount => ({
  mountPoint,
  version: 1,
  subsystems,
  ...(name ? { name } : {}),
});

test("ownProcsFile: the runtime's own cgroup.procs in the first hierarchy it is found in", () => {
  const cpu = v1("/sys/fs/cgroup/cpu,cpuacct", ["cpuacct", "cpu"]);
  assert.equal(
    ownProcsFile(HYBRID, [cpu]),
    "/sys/fs/cgroup/cpu,cpuacct/user.slice/cgroup.procs",
    "controllers in any order",
  );
  assert.equal(
    ownProcsFile(HYBRID, [{ mountPoint: "/sys/fs/cgroup/unified", version: 2, subsystems: [] }, cpu]),
    "/sys/fs/cgroup/unified/user.slice/session-1.scope/cgroup.procs",
    "cgroup2 from the 0:: line",
  );
  assert.equal(
    ownProcsFile(HYBRID, [v1("/sys/fs/cgroup/systemd", [], "systemd")]),
    "/sys/fs/cgroup/systemd/user.slice/session-1.scope/cgroup.procs",
    "a named hierarchy from its name=",
  );
  assert.equal(
    ownProcsFile("0::/\n", [{ mountPoint: "/sys/fs/cgroup", version: 2, subsystems: [] }]),
    "/sys/fs/cgroup/cgroup.procs",
    "the root",
  );
});

test("ownProcsFile: nothing where the cgroup cannot be named safely", () => {
  // (a cgroup outside this cgroup namespace's root, as /proc/self/cgroup shows it)
  assert.equal(
    ownProcsFile("0::/../../other\n", [{ mountPoint: "/sys/fs/cgroup", version: 2, subsystems: [] }]),
    undefined,
  );
  assert.equal(ownProcsFile("12:pids:relative\n", [v1("/sys/fs/cgroup/pids", ["pids"])]), undefined);
  assert.equal(ownProcsFile(HYBRID, [v1("/sys/fs/cgroup/memory", ["memory"])]), undefined, "no line for it");
  assert.equal(ownProcsFile(HYBRID, [v1("/sys/fs/cgroup/cpu", ["cpu"])]), undefined, "cpu alone is not cpu,cpuacct");
  assert.equal(ownProcsFile(HYBRID, [v1("/odd", [])]), undefined, "a v1 mount with neither controllers nor a name");
  assert.equal(ownProcsFile("garbage\n\n::\n", [v1("/sys/fs/cgroup/pids", ["pids"])]), undefined);
});

test("primeAttach writes the runtime's pid only into a cgroup.procs that lists it", async () => {
  using t = tempDir("hako-test-prime-");
  // (the runtime's own line for a faked cgroup2 mount: 0::PATH, where a host has one)
  const line = readFileSync("/proc/self/cgroup", "utf8").split("\n").find((l) => l.startsWith("0::"));
  if (!line) return; // (a v1-only kernel: no 0:: line to fake a mount for)
  const rel = line.slice(3);
  const dir = join(t.path, rel);
  mkdirSync(dir, { recursive: true });
  const procs = join(dir, "cgroup.procs");
  const mounts: CgroupMount[] = [{ mountPoint: t.path, version: 2, subsystems: [] }];
  writeFileSync(procs, "1\n2\n");
  await primeAttach(mounts);
  assert.equal(readFileSync(procs, "utf8"), "1\n2\n", "not listed there: untouched");
  writeFileSync(procs, `1\n${process.pid}\n`);
  await primeAttach(mounts);
  assert.equal(readFileSync(procs, "utf8").slice(0, String(process.pid).length), String(process.pid), "written");
  await primeAttach([]); // (no hierarchy: resolves)
  // one in flight is the next call's too (`hako oci exec` starts it early, execIn again)
  const first = primeAttach(mounts);
  assert.equal(primeAttach(mounts), first, "the same write");
  // (a fork waits for it: primeSettled is the write in flight, and resolved once none is)
  assert.equal(primeSettled(), first, "settled when the write in flight is");
  await first;
  const second = primeAttach(mounts);
  assert.notEqual(second, first, "a new one once done");
  await second;
  let settled = false;
  await Promise.race([primeSettled().then(() => settled = true), Promise.resolve()]);
  assert.ok(settled, "nothing in flight: settled at once");
});

test(
  "a container made from a cgroup of the runtime's own: the runtime stays there, the init is in the container's",
  async () => {
    const first = detect().mounts[0]!;
    const file = ownProcsFile(readFileSync("/proc/self/cgroup", "utf8"), [first]);
    assert.ok(file, `the test's own cgroup in ${first.mountPoint}`);
    // The test process moves into a cgroup of its own in that hierarchy, and back after.
    const home = file.slice(0, -"/cgroup.procs".length);
    const mine = `${first.mountPoint}/hako-test-prime-${process.pid}`;
    mkdirSync(mine);
    const back = () => {
      try {
        writeFileSync(`${home}/cgroup.procs`, String(process.pid));
      } catch { /* gone */ }
      try {
        if (existsSync(mine)) rmdirSync(mine);
      } catch { /* busy */ }
    };
    atEnd(back);
    using t = tempDir("hako-test-prime-");
    try {
      writeFileSync(`${mine}/cgroup.procs`, String(process.pid));
      const before = readFileSync("/proc/self/cgroup", "utf8");
      const name = `prime-${process.pid}`;
      const c = await Container.create({
        name,
        rootfs: { builder: "busybox", path: join(t.path, "rootfs") },
        command: ["sleep", "30"],
      });
      try {
        assert.equal(readFileSync("/proc/self/cgroup", "utf8"), before, "the runtime was not moved");
        const init = readFileSync(`/proc/${c.pid}/cgroup`, "utf8");
        assert.ok(init.includes(`/hako/${name}`), init);
      } finally {
        await c.delete();
      }
    } finally {
      back();
    }
  },
  { skip: needsRoot || (!findStaticBusybox() && "needs a static busybox") || (!firstMount() && "no cgroup mounted") },
);

function firstMount(): CgroupMount | undefined {
  try {
    return detect().mounts[0];
  } catch {
    return undefined;
  }
}
