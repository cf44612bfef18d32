/** More container options, checked from outside: a read-only rootfs, joining another container's namespace, env and workdir, extra mounts. */
import { chmodSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { assertEquals, isRoot, tempDir, test } from "./_harness.ts";
import { Container, Namespace, run } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { nativeChildren } from "../src/container/native.ts";
import { nativeSpawnSupported } from "../ffi/spawn.ts";

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : findStaticBusybox()
  ? false
  : "needs a static busybox (apt-get install busybox-static)";

function rootfsIn(dir: string): string {
  chmodSync(dir, 0o755);
  return buildRootfs(join(dir, "rootfs"), { builder: "busybox" }).path;
}

test("readonlyRootfs: writes to / fail while tmpfs mounts stay writable", async () => {
  using dir = tempDir();
  const rootfs = rootfsIn(dir.path);
  const status = await run({
    name: `hako-test-ro-${process.pid}`,
    rootfs,
    readonlyRootfs: true,
    mounts: [{ type: "tmpfs", target: "/scratch" }],
    command: ["sh", "-c", "touch /etc/x 2>/dev/null && exit 1; touch /scratch/ok || exit 2; exit 0"],
  });
  assertEquals(status.code, 0);
}, { skip });

test("env, workdir and a read-only bind mount reach the command", async () => {
  using dir = tempDir();
  const rootfs = rootfsIn(dir.path);
  const status = await run({
    name: `hako-test-env-${process.pid}`,
    rootfs,
    env: { GREETING: "hello" },
    workdir: "/data",
    mounts: [{ type: "bind", source: dir.path, target: "/data", readonly: true }],
    command: [
      "sh",
      "-c",
      'test "$GREETING" = hello && test "$(pwd)" = /data && test -d rootfs && ! touch x 2>/dev/null',
    ],
  });
  assertEquals(status.code, 0);
}, { skip });

test("namespaces: { type, join } joins another container's network namespace by path", async () => {
  using dir = tempDir();
  const rootfs = rootfsIn(dir.path);
  await using holder = await Container.create({
    name: `hako-test-nsh-${process.pid}`,
    rootfs,
    command: ["sleep", "30"],
  });
  await holder.start();
  const netOfHolder = Namespace.ids(holder.pid).net;
  const count = nativeChildren.count;
  await using joiner = await Container.create({
    name: `hako-test-nsj-${process.pid}`,
    rootfs,
    namespaces: ["mount", "uts", "ipc", "pid", { type: "net", join: `/proc/${holder.pid}/ns/net` }],
    command: ["sleep", "30"],
  });
  await joiner.start();
  // joining a namespace needs no JavaScript in the child either
  // (where a native runner is on: not with HAKO_NATIVE_SPAWN=0, tests/fork_lane.sh)
  assertEquals(nativeChildren.count - count, nativeSpawnSupported() ? 1 : 0, "native children");
  assertEquals(Namespace.ids(joiner.pid).net, netOfHolder);
  // Its own UTS namespace all the same.
  assertEquals(Namespace.ids(joiner.pid).uts !== Namespace.ids(holder.pid).uts, true);
  joiner.kill("KILL");
  holder.kill("KILL");
  await joiner.wait();
  await holder.wait();
}, { skip });
