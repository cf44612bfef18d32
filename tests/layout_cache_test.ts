/**
 * The host's cgroup layout is read once and kept while the mount table is unchanged: a mount or
 * unmount (here a cgroup2 mount of its own) is seen at the next detect().
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { needsRoot, tempDir, test } from "./_harness.ts";
import { detect } from "../src/cgroup/layout.ts";
import { MountTableWatch } from "../ffi/poll.ts";

test("a mount-table watch says when something was mounted or unmounted, once", () => {
  using t = tempDir("hako-test-layout-");
  const watch = new MountTableWatch();
  try {
    assert.equal(watch.changed(), false, "nothing yet");
    assert.equal(spawnSync("mount", ["-t", "tmpfs", "hako-test-layout", t.path]).status, 0);
    try {
      assert.equal(watch.changed(), true, "the mount");
      assert.equal(watch.changed(), false, "seen");
    } finally {
      spawnSync("umount", [t.path]);
    }
    assert.equal(watch.changed(), true, "the unmount");
  } finally {
    watch.close();
  }
}, { skip: needsRoot });

test("detect() keeps its layout until a cgroup filesystem is mounted, then sees it", () => {
  using t = tempDir("hako-test-layout-");
  const first = detect();
  assert.equal(detect(), first, "the same layout while nothing changed");
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first.mounts), "read-only, since callers share it");
  assert.equal(spawnSync("mount", ["-t", "cgroup2", "hako-test-layout", t.path]).status, 0);
  try {
    const after = detect();
    assert.notEqual(after, first);
    assert.ok(after.mounts.some((m) => m.mountPoint === t.path), JSON.stringify(after.mounts));
  } finally {
    spawnSync("umount", [t.path]);
  }
  assert.ok(!detect().mounts.some((m) => m.mountPoint === t.path), "gone after the unmount");
}, { skip: needsRoot });
