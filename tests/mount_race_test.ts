/**
 * Mount targets under a volume another container writes to: what is mounted on must be what was
 * checked. The parent resolves a spec mount's target in the image before anything is mounted, so
 * it cannot see what a volume holds at that path — a symlink there, planted before or swapped in
 * meanwhile, is met by the child only, inside its chroot, where the container's own /proc is
 * mounted already (the chroot is no barrier into /proc: runc's CVE-2025-52881 family). Each test
 * checks from outside: the container's mountinfo through /proc/PID/mountinfo, the host's files.
 * @module
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { needsRoot, tempDir, test } from "./_harness.ts";
import { Container, type ContainerSpec } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";

const skip = needsRoot || (findStaticBusybox() === undefined && "needs a static busybox (busybox-static)");

/** Runs `fn` with the native child on (`"1"`) or off (`"0"`: the forked path). */
async function onPath<T>(value: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env.HAKO_NATIVE_SPAWN;
  process.env.HAKO_NATIVE_SPAWN = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
    else process.env.HAKO_NATIVE_SPAWN = before;
  }
}

/** The mount points of process `pid`, as its root sees them, each with its file system type (`/dev tmpfs`). */
function mountPoints(pid: number): string[] {
  return readFileSync(`/proc/${pid}/mountinfo`, "utf8").trim().split("\n").map((l) => {
    const [fields, after] = l.split(" - ");
    return `${fields!.split(" ")[4]} ${after!.split(" ")[0]}`;
  });
}

/**
 * Starts `spec` (its command a long sleep), hands its mount points to `look`, and kills it.
 * @returns The error of a container that was refused (undefined when it ran).
 */
async function startAndLook(spec: ContainerSpec, look: (points: string[]) => void): Promise<unknown> {
  try {
    await using c = await Container.create(spec);
    await c.start();
    try {
      look(mountPoints(c.pid));
    } finally {
      c.kill("KILL");
      await c.wait();
    }
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    return e;
  }
  return undefined;
}

/** The spec's tmpfs landed inside /proc (not the read-only bind of /proc/sys, nor the masked paths' tmpfs, which are outside /proc/sys). */
const inProc = (points: string[]) => points.filter((p) => p.startsWith("/proc/sys/") && p.endsWith(" tmpfs"));

for (const [path, value] of [["native", "1"], ["forked", "0"]] as const) {
  test(
    `a symlink a volume holds does not take a mount under that volume into /proc, nor its mkdir onto the host (${path})`,
    async () => {
      using t = tempDir("hako-test-fdres-");
      execFileSync("chmod", ["0755", t.path]);
      const rootfs = join(t.path, "rootfs");
      buildRootfs(rootfs, { builder: "busybox" });
      const volume = join(t.path, "volume"), host = join(t.path, "host");
      mkdirSync(volume), mkdirSync(host);
      // What another container sharing the volume left there: one link to a sysctl directory, one
      // (a container in the host's pid namespace) through pid 1's root to a host directory.
      symlinkSync("/proc/sys/kernel", join(volume, "k"));
      symlinkSync(`/proc/1/root${host}`, join(volume, "h"));
      for (const [i, target] of ["/vol/k", "/vol/h/made/here"].entries()) {
        const error = await onPath(value, () =>
          startAndLook({
            name: `hako-test-fdres-${process.pid}-${value}-${i}`,
            rootfs,
            command: ["sleep", "30"],
            namespaces: ["mount", "uts", "ipc"],
            mounts: [{ type: "bind", source: volume, target: "/vol" }, { type: "tmpfs", target }],
            stdio: "null",
          }, (points) => {
            assert.deepEqual(inProc(points), [], `${target}: no mount lands in /proc`);
            assert.ok(points.includes(`${target} tmpfs`), `${target}: the tmpfs is where the spec put it`);
          }));
        assert.deepEqual(readdirSync(host), [], `${target}: nothing was made in the host's directory`);
        // Refused (the symlink is not followed) or mounted where it was meant: never in /proc.
        if (error !== undefined) assert.match(String(error), /mounts|ELOOP/, String(error));
      }
    },
    { skip },
  );
}

for (const [path, value] of [["native", "1"], ["forked", "0"]] as const) {
  test(
    `a container swapping a shared volume's directory for a symlink to /proc/sys/kernel in a loop never gets another's mount there (${path})`,
    async () => {
      using t = tempDir("hako-test-fdres-");
      execFileSync("chmod", ["0755", t.path]);
      const rootfs = join(t.path, "rootfs");
      buildRootfs(rootfs, { builder: "busybox" });
      const volume = join(t.path, "volume");
      mkdirSync(join(volume, "d"), { recursive: true });
      const swapper = await Container.create({
        name: `hako-test-fdres-swap-${process.pid}-${value}`,
        rootfs,
        command: [
          "sh",
          "-c",
          "cd /vol; while :; do rm -rf d; mkdir d; rm -rf d; ln -s /proc/sys/kernel d; done",
        ],
        mounts: [{ type: "bind", source: volume, target: "/vol" }],
        stdio: "null",
      });
      let landed = 0, ran = 0, refused = 0;
      try {
        await swapper.start();
        const until = Date.now() + 8000;
        for (let i = 0; Date.now() < until && i < 40; i++) {
          const error = await onPath(value, () =>
            startAndLook({
              name: `hako-test-fdres-race-${process.pid}-${value}`,
              rootfs,
              command: ["sleep", "30"],
              mounts: [{ type: "bind", source: volume, target: "/vol" }, { type: "tmpfs", target: "/vol/d" }],
              stdio: "null",
            }, (points) => {
              if (inProc(points).length) landed++;
            }));
          if (error === undefined) ran++;
          else refused++;
        }
      } finally {
        try {
          swapper.kill("KILL");
          await swapper.wait();
        } catch { /* gone */ }
        await swapper[Symbol.asyncDispose]();
      }
      assert.equal(landed, 0, `a mount landed in /proc (${landed} of ${ran} runs; ${refused} refused)`);
      assert.ok(ran + refused > 0, "the racing container started at least once");
      assert.ok(existsSync(join(volume)), "the volume is still there");
      rmSync(join(volume, "d"), { recursive: true, force: true });
    },
    { skip },
  );
}

// ---- the container's /etc files, masked and read-only paths -------------------------------------

for (const [path, value] of [["native", "1"], ["forked", "0"]] as const) {
  test(
    `an image whose /etc/hosts is a symlink to /proc/sys/kernel/core_pattern is refused: its hosts file is bound nowhere in /proc (${path})`,
    async () => {
      using t = tempDir("hako-test-fdetc-");
      execFileSync("chmod", ["0755", t.path]);
      const rootfs = join(t.path, "rootfs");
      buildRootfs(rootfs, { builder: "busybox" });
      rmSync(join(rootfs, "etc/hosts"), { force: true });
      symlinkSync("/proc/sys/kernel/core_pattern", join(rootfs, "etc/hosts"));
      const error = await onPath(value, () =>
        startAndLook({
          name: `hako-test-fdetc-img-${process.pid}-${value}`,
          rootfs,
          command: ["sleep", "30"],
          networkEtc: "generate",
          stdio: "null",
        }, (points) => {
          assert.deepEqual(points.filter((p) => p.startsWith("/proc/sys/")), [], "no mount lands in /proc/sys");
        }));
      // runc's checkProcMount refuses a destination inside /proc: so does hako, naming the file
      assert.ok(error !== undefined, "the container was refused");
      assert.match(String(error), /etc-files|\/etc\/hosts/, String(error));
      assert.ok(
        !existsSync(join(rootfs, "proc/sys/kernel/core_pattern")),
        "no mount point was made under the image's /proc",
      );
    },
    { skip },
  );
}

for (const [path, value] of [["native", "1"], ["forked", "0"]] as const) {
  test(
    `a volume at /etc whose hosts is a symlink into /proc does not get the container's hosts file bound there (${path})`,
    async () => {
      using t = tempDir("hako-test-fdetc-");
      execFileSync("chmod", ["0755", t.path]);
      const rootfs = join(t.path, "rootfs");
      buildRootfs(rootfs, { builder: "busybox" });
      const volume = join(t.path, "etc");
      mkdirSync(volume);
      for (const f of ["hostname", "resolv.conf"]) writeFileSync(join(volume, f), "");
      // (the parent looks at the image's /etc/hosts, a plain file: the volume's link is met in the child only)
      symlinkSync("/proc/sys/kernel/core_pattern", join(volume, "hosts"));
      const error = await onPath(value, () =>
        startAndLook({
          name: `hako-test-fdetc-vol-${process.pid}-${value}`,
          rootfs,
          command: ["sleep", "30"],
          networkEtc: "generate",
          mounts: [{ type: "bind", source: volume, target: "/etc" }],
          stdio: "null",
        }, (points) => {
          assert.deepEqual(points.filter((p) => p.startsWith("/proc/sys/")), [], "no mount lands in /proc/sys");
        }));
      // Refused (the symlink is not followed) or bound where it was meant: never in /proc. (By
      // path too the kernel did not follow it: move_mount follows no final symlink without
      // MOVE_MOUNT_T_SYMLINKS, and a volume mounted at /etc cannot make /etc itself a link; the
      // target is now opened as a spec mount's, and the link refused — ELOOP.)
      if (error !== undefined) assert.match(String(error), /etc-files|ELOOP/, String(error));
    },
    { skip },
  );
}

for (const [path, value] of [["native", "1"], ["forked", "0"]] as const) {
  test(
    `masked and read-only paths still land where they are named, on the object opened (${path})`,
    async () => {
      using t = tempDir("hako-test-fdmask-");
      execFileSync("chmod", ["0755", t.path]);
      const rootfs = join(t.path, "rootfs");
      buildRootfs(rootfs, { builder: "busybox" });
      mkdirSync(join(rootfs, "srv/dir"), { recursive: true });
      writeFileSync(join(rootfs, "srv/file"), "secret\n");
      mkdirSync(join(rootfs, "srv/ro"), { recursive: true });
      const error = await onPath(value, () =>
        startAndLook({
          name: `hako-test-fdmask-${process.pid}-${value}`,
          rootfs,
          command: ["sleep", "30"],
          maskedPaths: ["/srv/dir", "/srv/file", "/srv/missing", "/proc/keys"],
          readonlyPaths: ["/srv/ro", "/srv/missing-too", "/proc/sys"],
          stdio: "null",
        }, (points) => {
          for (
            const p of ["/srv/dir tmpfs", "/srv/file devtmpfs", "/srv/ro", "/proc/sys proc", "/proc/keys devtmpfs"]
          ) {
            assert.ok(points.some((q) => q === p || q.startsWith(`${p} `)), `${p} is mounted: ${points.join("; ")}`);
          }
        }));
      assert.equal(error, undefined, String(error));
    },
    { skip },
  );
}

for (const [path, value] of [["native", "1"], ["forked", "0"]] as const) {
  test(
    `a masked or read-only path reached through a volume's magic link to a host directory puts no mount on the host (${path})`,
    async () => {
      using t = tempDir("hako-test-fdmask-");
      execFileSync("chmod", ["0755", t.path]);
      const rootfs = join(t.path, "rootfs");
      buildRootfs(rootfs, { builder: "busybox" });
      const volume = join(t.path, "volume"), host = join(t.path, "host");
      mkdirSync(volume), mkdirSync(host);
      writeFileSync(join(host, "f"), "host\n");
      // A container in the host's pid namespace: /proc/1/root is the host's root. The kernel
      // refuses this with or without hako's care — the walk through /proc/1/root needs ptrace
      // access to pid 1 (EACCES here), and a mount made across mount namespaces is refused
      // (do_loopback's and do_add_mount's check_mnt: EINVAL) — so the by-path calls could not
      // reach the host either; the fd is now opened with no magic link followed (ELOOP where the
      // walk is allowed). Kept as a guard.
      symlinkSync(`/proc/1/root${host}`, join(volume, "h"));
      for (const [i, paths] of [{ maskedPaths: ["/vol/h"] }, { readonlyPaths: ["/vol/h"] }].entries()) {
        const error = await onPath(value, () =>
          startAndLook({
            name: `hako-test-fdmask-h-${process.pid}-${value}-${i}`,
            rootfs,
            command: ["sleep", "30"],
            namespaces: ["mount", "uts", "ipc"],
            mounts: [{ type: "bind", source: volume, target: "/vol" }],
            ...paths,
            stdio: "null",
          }, () => {}));
        assert.ok(
          !readFileSync("/proc/self/mountinfo", "utf8").includes(` ${host} `),
          "no mount on the host's directory",
        );
        assert.equal(readFileSync(join(host, "f"), "utf8"), "host\n");
        if (error !== undefined) assert.match(String(error), /ELOOP|EINVAL|EACCES/, String(error));
      }
    },
    { skip },
  );
}

test(
  "a container swapping a shared volume's directory for a symlink in a loop never gets a mount with bind/remount options (Mount.mount, forked) there",
  async () => {
    using t = tempDir("hako-test-fdopt-");
    execFileSync("chmod", ["0755", t.path]);
    const rootfs = join(t.path, "rootfs");
    buildRootfs(rootfs, { builder: "busybox" });
    const volume = join(t.path, "volume");
    mkdirSync(join(volume, "d"), { recursive: true });
    const swapper = await Container.create({
      name: `hako-test-fdopt-swap-${process.pid}`,
      rootfs,
      command: ["sh", "-c", "cd /vol; while :; do rm -rf d; mkdir d; rm -rf d; ln -s /proc/sys/kernel d; done"],
      mounts: [{ type: "bind", source: volume, target: "/vol" }],
      stdio: "null",
    });
    let landed = 0, ran = 0, refused = 0;
    try {
      await swapper.start();
      const until = Date.now() + 8000;
      for (let i = 0; Date.now() < until && i < 40; i++) {
        // (a filesystem mount whose options carry bind: the general Mount.mount, on the forked path)
        const error = await onPath("0", () =>
          startAndLook({
            name: `hako-test-fdopt-race-${process.pid}`,
            rootfs,
            command: ["sleep", "30"],
            mounts: [
              { type: "bind", source: volume, target: "/vol" },
              { type: "tmpfs", source: "/etc", target: "/vol/d", options: ["bind", "ro"] },
            ],
            stdio: "null",
          }, (points) => {
            if (points.some((p) => p.startsWith("/proc/sys/kernel"))) landed++;
          }));
        if (error === undefined) ran++;
        else refused++;
      }
    } finally {
      try {
        swapper.kill("KILL");
        await swapper.wait();
      } catch { /* gone */ }
      await swapper[Symbol.asyncDispose]();
    }
    assert.equal(landed, 0, `a mount landed in /proc (${landed} of ${ran} runs; ${refused} refused)`);
    assert.ok(ran + refused > 0, "the racing container started at least once");
  },
  { skip },
);

test(
  "a filesystem mount whose options carry bind and ro is bound on its target, read-only (Mount.mount on the held fd, forked)",
  async () => {
    using t = tempDir("hako-test-fdopt-");
    execFileSync("chmod", ["0755", t.path]);
    const rootfs = join(t.path, "rootfs");
    buildRootfs(rootfs, { builder: "busybox" });
    const error = await onPath("0", async () => {
      try {
        await using c = await Container.create({
          name: `hako-test-fdopt-ro-${process.pid}`,
          rootfs,
          command: ["sleep", "30"],
          mounts: [
            { type: "tmpfs", target: "/data" },
            { type: "tmpfs", source: "/etc", target: "/data/etc", options: ["bind", "ro", "nosuid"] },
            { type: "tmpfs", target: "/data", options: ["remount", "ro"] },
          ],
          stdio: "null",
        });
        await c.start();
        try {
          const lines = readFileSync(`/proc/${c.pid}/mountinfo`, "utf8").trim().split("\n").map((l) => l.split(" "));
          const etc = lines.find((f) => f[4] === "/data/etc"), data = lines.findLast((f) => f[4] === "/data");
          assert.ok(etc, "the bind is at /data/etc");
          assert.ok(etc[3]!.endsWith("/rootfs/etc"), `of the container's /etc (${etc[3]})`);
          assert.match(
            etc[5]!,
            /^ro,nosuid/,
            "read-only and nosuid (the remount reached the bind, not what is under it)",
          );
          assert.match(data?.[5] ?? "", /^ro/, "the remount made /data read-only");
        } finally {
          c.kill("KILL");
          await c.wait();
        }
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        return e;
      }
    });
    assert.equal(error, undefined, String(error));
  },
  { skip },
);
