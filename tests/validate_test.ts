/**
 * Spec validation refuses what would hand the host to a container, before anything is touched:
 * ids that the kernel reads as "unchanged" (so root) or that wrap, raw cgroup keys that move or
 * kill processes, and a rootfs that is (or holds) the host's root.
 */
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, isRoot, tempDir, test } from "./_harness.ts";
import { type ContainerSpec, SpecError } from "../mod.ts";
import { resolveSpec } from "../src/container/validate.ts";
import { realRootfs } from "../src/container/_paths.ts";
import { assertValidExec } from "../src/container/exec.ts";
import { ConfigError } from "../src/errors.ts";
import { Cgroup } from "../mod.ts";
import { execFileSync } from "node:child_process";

const base: ContainerSpec = { name: "v", rootfs: "/var/lib/hako/none", command: ["true"] };

/** The field paths of the problems `resolveSpec` finds in `spec`. */
function problems(spec: ContainerSpec): string[] {
  try {
    resolveSpec(spec);
    return [];
  } catch (e) {
    assert(e instanceof SpecError, `not a SpecError: ${e}`);
    return e.problems.map((p) => p.path);
  }
}

test("user ids, group ids and supplementary groups must be in 0..4294967294 (-1 would leave the process root)", () => {
  for (const id of [4294967295, 2 ** 32, 2 ** 32 + 1000, -1, 1.5, Number.NaN]) {
    assertEquals(problems({ ...base, user: { uid: id } }), ["user.uid", "user.gid"], `uid ${id}`);
    assertEquals(problems({ ...base, user: { uid: 5, gid: id } }), ["user.gid"], `gid ${id}`);
    assertEquals(problems({ ...base, user: { uid: 5, groups: [1, id] } }), ["user.groups[1]"], `group ${id}`);
  }
  assertEquals(problems({ ...base, user: { uid: 4294967294, gid: 4294967294, groups: [4294967294] } }), []);
  assertEquals(problems({ ...base, user: { uid: 1, groups: 5 as unknown as number[] } }), ["user.groups"]);
});

test("in a user namespace, supplementary groups must be mapped", () => {
  const userns: ContainerSpec = {
    ...base,
    namespaces: ["mount", "pid", "user"],
    idMap: { uid: { inside: 0, outside: 100000, size: 100 } },
  };
  assertEquals(problems({ ...userns, user: { uid: 1, groups: [5, 100] } }), ["user.groups[1]"]);
});

test("an id map may not reach past 4294967294, inside or outside", () => {
  const spec = (inside: number, outside: number, size: number): ContainerSpec => ({
    ...base,
    namespaces: ["mount", "pid", "user"],
    idMap: { uid: { inside, outside, size } },
  });
  // (the gid map defaults to the uid map)
  assertEquals(problems(spec(0, 4294967295, 1)), ["idMap.uid[0]", "idMap.gid[0]"]);
  assertEquals(problems(spec(0, 4294967200, 100)), ["idMap.uid[0]", "idMap.gid[0]"]);
  assertEquals(problems({ ...spec(4294967290, 100000, 10), user: { uid: 4294967290 } }), [
    "idMap.uid[0]",
    "idMap.gid[0]",
  ]);
  assertEquals(problems(spec(0, 4294967195, 100)), []);
});

test("hako exec's --user is checked the same way", () => {
  for (const uid of [4294967295, 2 ** 32, -1]) {
    let err: unknown;
    try {
      assertValidExec(1, { argv: ["true"], user: { uid } });
    } catch (e) {
      err = e;
    }
    assert(err instanceof ConfigError && err.path === "user.uid", `uid ${uid}: ${err}`);
  }
});

test("raw cgroup keys that move, kill or release processes, or open devices, are refused", () => {
  for (const key of ["cgroup.procs", "tasks", "cgroup.threads", "cgroup.kill", "release_agent", "notify_on_release"]) {
    assertEquals(problems({ ...base, cgroup: { raw: { [key]: 1 } } }), [`cgroup.raw["${key}"]`], key);
  }
  assertEquals(problems({ ...base, cgroup: { raw: { "devices.allow": "a *:* rwm" } } }), [
    'cgroup.raw["devices.allow"]',
  ]);
  assertEquals(problems({ ...base, cgroup: { raw: { "cpu.cfs_quota_us": 30000 } } }), []);
  // The primitive refuses them too.
  let err: unknown;
  try {
    new Cgroup.PIDS("hako-test-raw").set("cgroup.procs", 1);
  } catch (e) {
    err = e;
  }
  assert(err instanceof ConfigError && err.path === "cgroup.procs", String(err));
});

test("a rootfs that resolves to the host's root is refused: a symlink to / or to /proc/1/root", () => {
  using dir = tempDir();
  for (const target of ["/", "/proc/1/root", "/proc/self/root/"]) {
    const link = join(dir.path, `link-${target.replaceAll("/", "_")}`);
    symlinkSync(target, link);
    let err: unknown;
    try {
      realRootfs(link);
    } catch (e) {
      err = e;
    }
    // (Where this process may not look into PID 1's root, resolving it fails: refused all the same.)
    assert(err instanceof Error && /host's root|EACCES/.test(err.message), `${target}: ${err}`);
  }
  const ok = join(dir.path, "rootfs");
  mkdirSync(ok);
  assertEquals(realRootfs(ok), ok);
  const indirect = join(dir.path, "indirect");
  symlinkSync(ok, indirect);
  assertEquals(realRootfs(indirect), ok, "a symlink to a real rootfs is followed once, here, and its real path kept");
}, { skip: isRoot ? false : "reads /proc/1/root, which needs root" });

test("a rootfs with the host's root mounted under it is refused", () => {
  using dir = tempDir();
  const rootfs = join(dir.path, "rootfs");
  mkdirSync(join(rootfs, "host"), { recursive: true });
  execFileSync("mount", ["--bind", "/", join(rootfs, "host")]);
  try {
    let err: unknown;
    try {
      realRootfs(rootfs);
    } catch (e) {
      err = e;
    }
    assert(err instanceof Error && /mounted at .*host/.test(err.message), String(err));
    // A bind mount of / as the rootfs itself.
    let err2: unknown;
    try {
      realRootfs(join(rootfs, "host"));
    } catch (e) {
      err2 = e;
    }
    assert(err2 instanceof Error && /host's root/.test(err2.message), String(err2));
  } finally {
    execFileSync("umount", ["-l", join(rootfs, "host")]);
  }
}, { skip: isRoot ? false : "needs root to bind-mount /" });
