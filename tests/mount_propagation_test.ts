/**
 * A spec mount's propagation options (`options: ["shared"]`, `"rslave"`, `"private"`,
 * `"unbindable"`), as runc and crun take them: the filesystem is mounted with its other options
 * first, then its propagation is changed (a mount(2) with a propagation flag changes a mount's
 * propagation and mounts nothing, so one call cannot do both). Read back from
 * /proc/self/mountinfo inside the container, on the native path and the forked one
 * (`HAKO_NATIVE_SPAWN=0`), which must agree.
 * @module
 */
import assert from "node:assert/strict";
import { chmodSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { isRoot, tempDir, test } from "./_harness.ts";
import { run } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { nativeChildren } from "../src/container/native.ts";
import { nativeSpawnSupported } from "../ffi/spawn.ts";

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : findStaticBusybox()
  ? false
  : "needs a static busybox (apt-get install busybox-static)";

/** Runs `fn` with HAKO_NATIVE_SPAWN set to `value` (undefined: unset), restored after. */
async function withSpawn<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const before = process.env.HAKO_NATIVE_SPAWN;
  if (value === undefined) delete process.env.HAKO_NATIVE_SPAWN;
  else process.env.HAKO_NATIVE_SPAWN = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
    else process.env.HAKO_NATIVE_SPAWN = before;
  }
}

/** Each mount point's filesystem type and propagation tags (`shared`, `master`, `unbindable`), from mountinfo. */
function propagationOf(mountinfo: string, targets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of mountinfo.split("\n")) {
    const [left, right] = line.split(" - ");
    const f = (left ?? "").split(" ");
    const at = f[4];
    if (at === undefined || !targets.includes(at)) continue;
    const tags = f.slice(6).map((t) => t.replace(/:\d+$/, "")).sort().join(",");
    out[at] = `${(right ?? "").split(" ")[0]} ${tags || "private"}`;
  }
  return out;
}

for (const path of ["native", "forked"] as const) {
  test(
    `a spec mount's propagation option mounts the filesystem, then sets its propagation (${path})`,
    async () => {
      using dir = tempDir("hako-test-prop-");
      chmodSync(dir.path, 0o755);
      const rootfs = buildRootfs(join(dir.path, "rootfs"), { builder: "busybox" }).path;
      const targets = ["/sh", "/rsl", "/pr", "/un"];
      const count = nativeChildren.count;
      const status = await withSpawn(path === "forked" ? "0" : undefined, () =>
        run({
          name: `hako-test-prop-${path[0]}-${process.pid}-${Math.random().toString(16).slice(2, 6)}`,
          rootfs,
          mounts: [
            { type: "bind", source: dir.path, target: "/out" },
            { type: "tmpfs", target: "/sh", options: ["shared", "size=1m"] },
            { type: "tmpfs", target: "/rsl", options: ["rslave", "nosuid"] },
            { type: "tmpfs", target: "/pr", options: ["private"] },
            { type: "tmpfs", target: "/un", options: ["unbindable", "mode=700"] },
          ],
          command: ["sh", "-c", "cat /proc/self/mountinfo > /out/mountinfo"],
        }));
      assert.equal(status.code, 0);
      const got = propagationOf(readFileSync(join(dir.path, "mountinfo"), "utf8"), targets);
      // A slave of a private mount has no master: the kernel makes it private (mount_namespaces(7)).
      assert.deepEqual(got, {
        "/sh": "tmpfs shared",
        "/rsl": "tmpfs private",
        "/pr": "tmpfs private",
        "/un": "tmpfs unbindable",
      });
      if (path === "native" && nativeSpawnSupported()) {
        assert.equal(nativeChildren.count - count, 1, "the native program ran it (no JavaScript needed)");
      }
    },
    { skip },
  );
}
