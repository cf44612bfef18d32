/**
 * `tmpcopyup` on a tmpfs (runc's extension; podman's `--read-only` tmpfs at /tmp, /var/tmp, /run):
 * the tmpfs starts with a copy of what its target held in the image — owners, modes, symlinks as
 * symlinks — made by the parent in a detached tmpfs and attached by the child, on the native and
 * the forked path. The attacks: an image's symlink inside the copied tree, and a target that is a
 * symlink leading out of the rootfs, never reach the host's files. Then hako-runc against runc.
 * @module
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { deepEqual, equal, throws } from "node:assert/strict";
import { isRoot, tempDir, test, withSpawn } from "./_harness.ts";
import { launcher, runIt, runtimesToCompare } from "./_oci_lab.ts";
import { run } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { resolveSpec } from "../src/container/validate.ts";
import { planContainer } from "../src/container/plan.ts";
import { tmpfsParams } from "../src/container/_tmpcopyup.ts";
import { nativeChildren } from "../src/container/native.ts";
import { nativeSpawnSupported } from "../ffi/spawn.ts";

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : !findStaticBusybox()
  ? "needs a static busybox (apt-get install busybox-static)"
  : false;

test("tmpcopyup: a tmpfs's only (refused on a bind by field path); its options as fsconfig parameters and mount attributes", () => {
  using dir = tempDir("hako-test-tmpcopyup-spec-");
  throws(
    () =>
      resolveSpec({
        name: "x",
        rootfs: dir.path,
        command: ["true"],
        mounts: [{ type: "bind", source: dir.path, target: "/m", options: ["tmpcopyup"] }],
      }),
    /mounts\[0\]\.options\[0\]: tmpcopyup copies the target's files into a new tmpfs: only for a tmpfs/,
  );
  const p = tmpfsParams(["rw", "nosuid", "nodev", "tmpcopyup", "size=65536k", "mode=1777", "strictatime", "ro"]);
  deepEqual(p.params, [["size", "65536k"], ["mode", "1777"]]);
  equal(p.attr, 0x2 | 0x4 | 0x20); // MOUNT_ATTR_NOSUID | NODEV | STRICTATIME
  equal(p.readonly, true);
  // hako plan shows the parent's step, before the clone
  const host = planContainer({
    name: "x",
    rootfs: dir.path,
    command: ["true"],
    mounts: [{ type: "tmpfs", target: "/run", options: ["tmpcopyup"] }],
  }).steps.filter((s) => s.where === "host").map((s) => s.name);
  equal(host.indexOf("tmpcopyup") + 1, host.indexOf("clone"));
});

/**
 * A rootfs whose /run holds a file, a directory of another owner, a symlink out to the host's
 * secret and a FIFO; and whose /data is a symlink leading out of the rootfs to the host's secret
 * directory (resolved inside the rootfs: the image's own /tmp/hako-secret…, which is not there).
 */
function imageWithRun(dir: string, secretDir: string): string {
  const rootfs = buildRootfs(join(dir, "rootfs"), { builder: "busybox" }).path;
  const run = join(rootfs, "run");
  mkdirSync(run, { recursive: true });
  chmodSync(run, 0o751);
  writeFileSync(join(run, "keep"), "kept\n", { mode: 0o640 });
  chownSync(join(run, "keep"), 0, 12);
  // (1755: runc 1.1 makes a copied directory under its umask, so a group-writable one would differ
  // there; hako keeps the image's mode whatever it is)
  mkdirSync(join(run, "lock"), { mode: 0o1755 });
  chmodSync(join(run, "lock"), 0o1755);
  chownSync(join(run, "lock"), 33, 33);
  writeFileSync(join(run, "lock", "pid"), "1\n");
  symlinkSync(join(secretDir, "secret"), join(run, "evil"));
  symlinkSync(`../../../../../../..${secretDir}`, join(rootfs, "data"));
  mkdirSync(join(rootfs, "empty"), { mode: 0o700 });
  chmodSync(join(rootfs, "empty"), 0o700);
  return rootfs;
}

const SCRIPT = "cd /run && stat -c '%n %a %u:%g %F' . keep lock lock/pid evil > /out/run; cat keep >> /out/run; " +
  "readlink evil >> /out/run; { cat evil || echo 'evil: no such file'; } 2>/dev/null >> /out/run; " +
  "ls -A /data >> /out/data; stat -c '%a' /empty >> /out/data; " +
  "touch /run/new /data/new /empty/new && echo writable >> /out/data";

function expected(secretDir: string): { run: string[]; data: string[] } {
  return {
    run: [
      ". 751 0:0 directory",
      "keep 640 0:12 regular file",
      "lock 1755 33:33 directory",
      "lock/pid 644 0:0 regular file",
      "evil 777 0:0 symbolic link",
      "kept",
      `${secretDir}/secret`,
      "evil: no such file",
    ],
    // /data: empty (the image's own, not the host's secret directory); /empty: the image's mode
    data: ["700", "writable"],
  };
}

for (const path of ["native", "forked"] as const) {
  test(
    `tmpcopyup: the tmpfs holds the image's files with their owners and modes, symlinks as symlinks, nothing of the host's (${path})`,
    async () => {
      using dir = tempDir("hako-test-tmpcopyup-");
      using secret = tempDir("hako-secret-");
      chmodSync(dir.path, 0o755);
      writeFileSync(join(secret.path, "secret"), "host secret\n");
      const rootfs = imageWithRun(dir.path, secret.path);
      mkdirSync(join(rootfs, "out"));
      const out = join(dir.path, "out");
      mkdirSync(out);
      const count = nativeChildren.count;
      await withSpawn(path === "forked" ? "0" : undefined, async () => {
        const status = await run({
          name: `hako-test-tmpcopyup-${path[0]}-${process.pid}`,
          rootfs,
          readonlyRootfs: true,
          mounts: [
            { type: "tmpfs", target: "/run", options: ["nosuid", "nodev", "tmpcopyup", "size=1m"] },
            { type: "tmpfs", target: "/data", options: ["tmpcopyup"] },
            { type: "tmpfs", target: "/empty", options: ["tmpcopyup"] },
            { type: "bind", source: out, target: "/out" },
          ],
          command: ["sh", "-c", SCRIPT],
        });
        equal(status.code, 0);
      });
      const want = expected(secret.path);
      deepEqual(readFileSync(join(out, "run"), "utf8").split("\n").filter(Boolean), want.run);
      deepEqual(readFileSync(join(out, "data"), "utf8").split("\n").filter(Boolean), want.data);
      // the image is untouched, and so is the host's secret directory
      equal(lstatSync(join(rootfs, "run", "new"), { throwIfNoEntry: false }), undefined);
      deepEqual(readFileSync(join(secret.path, "secret"), "utf8"), "host secret\n");
      if (path === "native" && nativeSpawnSupported()) equal(nativeChildren.count - count, 1);
    },
    { skip },
  );
}

test("hako-runc fills a tmpcopyup tmpfs as runc does, from one bundle", () => {
  using dir = tempDir("hako-test-tmpcopyup-oci-");
  using secret = tempDir("hako-secret-");
  chmodSync(dir.path, 0o755);
  writeFileSync(join(secret.path, "secret"), "host secret\n");
  const bundle = join(dir.path, "bundle");
  mkdirSync(bundle);
  imageWithRun(bundle, secret.path);
  const runc = launcher(dir.path);
  let r = runIt(runc, ["spec", "--bundle", bundle]);
  equal(r.status, 0, r.stderr);
  const c = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
  c.process.terminal = false;
  c.process.args = ["sh", "-c", SCRIPT.replaceAll("/out/", "/dev/shm/") + "; cat /dev/shm/run /dev/shm/data"];
  c.root.readonly = true;
  c.mounts.push(
    { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "tmpcopyup", "size=1m"] },
    { destination: "/data", type: "tmpfs", source: "tmpfs", options: ["tmpcopyup"] },
    { destination: "/empty", type: "tmpfs", source: "tmpfs", options: ["tmpcopyup"] },
  );
  writeFileSync(join(bundle, "config.json"), JSON.stringify(c));
  const want = expected(secret.path);
  const outputs: Record<string, string> = {};
  for (const { who, bin, env } of runtimesToCompare(dir.path)) {
    r = runIt(bin, ["--root", join(dir.path, `state-${who}`), "run", "--bundle", bundle, `hako-test-tcu-${who}`], env);
    equal(r.status, 0, `${who}: ${r.stderr}`);
    outputs[who] = r.stdout;
    deepEqual(r.stdout.split("\n").filter(Boolean), [...want.run, ...want.data], `${who}: ${r.stdout}`);
  }
  if (outputs.runc !== undefined) equal(outputs["hako-native"], outputs.runc);
}, { skip });
