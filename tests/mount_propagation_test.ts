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
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { isRoot, tempDir, test, until, withSpawn } from "./_harness.ts";
import { Container, resolveSpec, run, SpecError } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { nativeChildren } from "../src/container/native.ts";
import { nativeSpawnSupported } from "../ffi/spawn.ts";

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : findStaticBusybox()
  ? false
  : "needs a static busybox (apt-get install busybox-static)";

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

/**
 * A shared tmpfs on the host, as systemd makes "/" (this machine's mounts are all private): the
 * source of the binds below. Unmounted, with whatever propagated into it, when disposed.
 */
function sharedHostMount(dir: string): { path: string } & Disposable {
  const path = join(dir, "shared");
  mkdirSync(path);
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "hako-test-shared", path]);
  execFileSync("mount", ["--make-shared", path]);
  mkdirSync(join(path, "vol"));
  return {
    path,
    [Symbol.dispose]() {
      spawnSync("umount", ["-R", "-l", path]);
    },
  };
}

/** Whether `path` is a mount point in the host's mount namespace. */
function isMountPoint(path: string): boolean {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === path);
}

for (const path of ["native", "forked"] as const) {
  test(
    `a bind's rshared reaches the host (Kubernetes' Bidirectional), rslave only takes from it, and the default neither (${path})`,
    async () => {
      using dir = tempDir("hako-test-prop-host-");
      chmodSync(dir.path, 0o755);
      const rootfs = buildRootfs(join(dir.path, "rootfs"), { builder: "busybox" }).path;
      using shared = sharedHostMount(dir.path);
      const vol = join(shared.path, "vol");
      for (const d of ["from-rshared", "from-rslave", "from-private", "late"]) mkdirSync(join(vol, d));
      const count = nativeChildren.count;
      await withSpawn(path === "forked" ? "0" : undefined, async () => {
        await using c = await Container.create({
          name: `hako-test-prop-h${path[0]}-${process.pid}-${Math.random().toString(16).slice(2, 6)}`,
          rootfs,
          rootfsPropagation: "rshared",
          capabilities: { add: ["CAP_SYS_ADMIN"] }, // (to mount inside)
          mounts: [
            { type: "bind", source: dir.path, target: "/out" },
            { type: "bind", source: vol, target: "/bi", options: ["rshared"] },
            { type: "bind", source: vol, target: "/in", options: ["rslave"] },
            { type: "bind", source: vol, target: "/pr" },
          ],
          command: [
            "sh",
            "-c",
            "exec 2>/out/err; " +
            // each a mount inside, under one of the binds; then wait for the host's own mount
            "mount -t tmpfs x /bi/from-rshared && mount -t tmpfs x /in/from-rslave && mount -t tmpfs x /pr/from-private" +
            " && touch /out/mounted && i=0; while [ $i -lt 200 ] && ! [ -e /in/late/marker ]; do sleep 0.05; i=$((i+1)); done;" +
            " for b in bi in pr; do [ -e /$b/late/marker ] && echo $b; done > /out/saw; awk '$5 == \"/\"' /proc/self/mountinfo > /out/root",
          ],
        });
        await c.start();
        await until("the container's mounts", () => {
          const err = existsSync(join(dir.path, "err")) ? readFileSync(join(dir.path, "err"), "utf8") : "";
          if (err) throw new Error(`inside: ${err}`);
          return existsSync(join(dir.path, "mounted"));
        });
        execFileSync("mount", ["-t", "tmpfs", "hako-test-late", join(vol, "late")]);
        writeFileSync(join(vol, "late", "marker"), "");
        assert.equal((await c.wait()).code, 0);
      });
      // out: only the rshared bind's mount reached the host's source
      assert.equal(isMountPoint(join(vol, "from-rshared")), true, "rshared: the container's mount is on the host");
      assert.equal(isMountPoint(join(vol, "from-rslave")), false, "rslave: nothing goes out");
      assert.equal(isMountPoint(join(vol, "from-private")), false, "private: nothing goes out");
      // in: the host's late mount reached the shared and slave binds, not the private one
      assert.deepEqual(readFileSync(join(dir.path, "saw"), "utf8").trim().split("\n"), ["bi", "in"]);
      // the container's root is shared (rootfsPropagation), in a peer group of its own
      assert.match(readFileSync(join(dir.path, "root"), "utf8"), / shared:\d+ /);
      if (path === "native" && nativeSpawnSupported()) {
        assert.equal(nativeChildren.count - count, 1, "the native program ran it (no JavaScript needed)");
      }
    },
    { skip },
  );
}

test("a bind's propagation is a spec option; rootfsPropagation takes mount(8)'s names only", () => {
  using dir = tempDir("hako-test-prop-spec-");
  const base = { name: "x", rootfs: dir.path, command: ["true"] };
  const spec = resolveSpec({
    ...base,
    rootfsPropagation: "rslave",
    mounts: [{ type: "bind", source: "/tmp", target: "/t", options: ["rshared", "ro"] }],
  });
  assert.equal(spec.rootfsPropagation, "rslave");
  assert.throws(
    () => resolveSpec({ ...base, rootfsPropagation: "both" as never }),
    (e: Error) => e instanceof SpecError && /rootfsPropagation/.test(e.message),
  );
  assert.equal(resolveSpec(base).rootfsPropagation, undefined);
});
