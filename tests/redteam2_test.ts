/**
 * Red team, second round: what was added last — the image store's config as input, the OCI
 * runtime mode's config.json and commands, and the new CLI surfaces — attacked as a hostile image,
 * bundle or container would. Each test is one attack and what stops it.
 * @module
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { needsRoot, tempDir, test } from "./_harness.ts";
import { imageUser } from "../src/image/store.ts";

/** A rootfs with `etc/` made by `make` (its path). */
function rootfsWith(dir: string, make: (etc: string) => void): string {
  const rootfs = join(dir, "rootfs");
  mkdirSync(join(rootfs, "etc"), { recursive: true });
  make(join(rootfs, "etc"));
  return rootfs;
}

/** `fn`'s run time in milliseconds, and its result. */
function timed<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const r = fn();
  return [r, performance.now() - t0];
}

test("an image whose /etc/passwd is a FIFO does not hang the user lookup (it is not a regular file)", () => {
  using t = tempDir("hako-test-rt2-");
  const rootfs = rootfsWith(t.path, (etc) => execFileSync("mkfifo", [join(etc, "passwd")]));
  const [u, ms] = timed(() => imageUser(rootfs, "app"));
  assert.equal(u, undefined, "no user found in a FIFO");
  assert.ok(ms < 5000, `took ${ms} ms`);
});

test(
  "an image whose /etc/passwd is a character device (/dev/zero's 1:5) is not read endlessly",
  () => {
    using t = tempDir("hako-test-rt2-");
    const rootfs = rootfsWith(t.path, (etc) => execFileSync("mknod", [join(etc, "passwd"), "c", "1", "5"]));
    const [u, ms] = timed(() => imageUser(rootfs, "app"));
    assert.equal(u, undefined);
    assert.ok(ms < 5000, `took ${ms} ms`);
  },
  { skip: needsRoot },
);

test("an image's huge /etc/passwd is read no further than its first 4 MiB", () => {
  using t = tempDir("hako-test-rt2-");
  const rootfs = rootfsWith(t.path, (etc) => {
    writeFileSync(join(etc, "passwd"), "app:x:1234:1234::/:/bin/sh\n");
    execFileSync("truncate", ["-s", "3G", join(etc, "passwd")]); // (sparse: no disk used)
    writeFileSync(join(etc, "group"), "");
  });
  const [u, ms] = timed(() => imageUser(rootfs, "app"));
  assert.deepEqual(u, { uid: 1234, gid: 1234 }, "the entry at its start is found");
  assert.ok(ms < 5000, `took ${ms} ms`);
});

test("an image's /etc/passwd that is an absolute symlink is resolved inside the image, never the host's", () => {
  using t = tempDir("hako-test-rt2-");
  const rootfs = rootfsWith(t.path, (etc) => {
    execFileSync("ln", ["-s", "/etc/shadow-like", join(etc, "passwd")]);
    writeFileSync(join(etc, "shadow-like"), "app:x:42:43::/:/bin/sh\n");
  });
  // (the host has a root entry; the image's target names only app)
  assert.equal(imageUser(rootfs, "root"), undefined, "the host's /etc/passwd is not read");
  assert.deepEqual(imageUser(rootfs, "app"), { uid: 42, gid: 43 });
});
