/**
 * Hostile tarballs: whatever the order of their entries, extracting one never creates, removes,
 * chowns or chmods anything outside the rootfs (the matrix is in tests/_tarball_attack.ts), on the
 * openat2 path and on the O_NOFOLLOW walk used where openat2 is missing; and decompression bombs
 * stop at a limit with a clear error.
 * @module
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { needsRoot, runtime, tempDir, test } from "./_harness.ts";
import { tarBytes, tarHeader } from "./_tar.ts";
import { probe, runCases, SENTINELS } from "./_tarball_attack.ts";
import { ConfigError, SetupError } from "../src/errors.ts";
import { extractRootfs } from "../src/container/tarball.ts";

const skip = needsRoot;
/** The rejection of `p`, or a failed assertion when it resolves. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail("expected a rejection");
}

function noLeftovers(dir: string): void {
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes("hako-tmp")), [], "no temp sibling");
  assert.ok(!existsSync(join(dir, "rootfs")), "no rootfs");
}

test(
  "no ordering of symlinks, specials, files, links, replacements, '..' or absolute names writes outside the rootfs",
  async () => {
    using t = tempDir("hako-test-tarattack-");
    chmodSync(t.path, 0o755);
    try {
      const plain = await runCases(t.path, false);
      // With an owner shift (every chown is then a real one), a third of the cases suffices.
      const shifted = await runCases(t.path, true, 3);
      const failures = [...plain.failures, ...shifted.failures];
      assert.ok(plain.count > 500, `only ${plain.count} cases`);
      assert.deepEqual(
        failures,
        [],
        `${failures.length} of ${plain.count + shifted.count} cases wrote outside:\n${failures.join("\n")}`,
      );
    } finally {
      for (const s of SENTINELS) rmSync(s, { recursive: true, force: true });
    }
  },
  { skip },
);

test(
  "where openat2 is missing (ENOSYS, as before Linux 5.6), the O_NOFOLLOW walk holds the same line",
  () => {
    using t = tempDir("hako-test-tarattack-");
    chmodSync(t.path, 0o755);
    try {
      const [cmd, args] = probe(runtime, "walk", t.path);
      const out = execFileSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20 });
      const res = JSON.parse(out.trim().split("\n").at(-1)!) as { enosys: boolean; count: number; failures: string[] };
      assert.equal(res.enosys, true, "the child's openat2 answers ENOSYS");
      assert.ok(res.count > 500, `only ${res.count} cases`);
      assert.deepEqual(res.failures, [], `${res.failures.length} of ${res.count} cases wrote outside`);
    } finally {
      for (const s of SENTINELS) rmSync(s, { recursive: true, force: true });
    }
  },
  { skip },
);

test("zstd and xz bombs stop at maxBytes too, leaving nothing", async () => {
  using t = tempDir();
  const tar = tarBytes([{ path: "zeros", type: "0", data: new Uint8Array(64 << 20) }]);
  const bombs: [string, Uint8Array | undefined][] = [
    ["bomb.tar.zst", zstdCompressSync(tar)],
    ["bomb.tar.xz", spawnSync("xz", ["-c"], { input: tar, maxBuffer: 1 << 30 }).stdout ?? undefined],
  ];
  for (const [name, bytes] of bombs) {
    if (!bytes?.length) continue; // no xz here: the zstd bomb alone
    const tarball = join(t.path, name);
    writeFileSync(tarball, bytes);
    const err = await rejection(extractRootfs(tarball, join(t.path, "rootfs"), { maxBytes: 16 << 20 }));
    assert.ok(err instanceof SetupError, `${name}: got ${err}`);
    assert.match(err.message, new RegExp(`${tarball}.* more than ${16 << 20} bytes`));
    noLeftovers(t.path);
  }
}, { skip });

test("a gzip bomb stops at maxBytes with a SetupError naming the tarball and the limit, leaving nothing", async () => {
  using t = tempDir();
  // 64 MiB of zeros in one file: about 64 KiB gzip'd.
  const tarball = join(t.path, "bomb.tar.gz");
  writeFileSync(tarball, gzipSync(tarBytes([{ path: "zeros", type: "0", data: new Uint8Array(64 << 20) }])));
  const err = await rejection(extractRootfs(tarball, join(t.path, "rootfs"), { maxBytes: 16 << 20 }));
  assert.ok(err instanceof SetupError, `got ${err}`);
  assert.equal(err.step, "rootfs");
  assert.match(err.message, new RegExp(`${tarball}.* more than ${16 << 20} bytes`));
  assert.match(err.message, /HAKO_TAR_MAX_BYTES/);
  noLeftovers(t.path);

  // The environment variable sets the default (suffixes K, M, G, T).
  const saved = process.env.HAKO_TAR_MAX_BYTES;
  process.env.HAKO_TAR_MAX_BYTES = "8M";
  try {
    const err2 = await rejection(extractRootfs(tarball, join(t.path, "rootfs")));
    assert.ok(err2 instanceof SetupError, `got ${err2}`);
    assert.match(err2.message, new RegExp(`more than ${8 << 20} bytes`));
    noLeftovers(t.path);
    // A generous limit lets it through.
    process.env.HAKO_TAR_MAX_BYTES = "65M";
    assert.equal((await extractRootfs(tarball, join(t.path, "rootfs"))).created, true);
  } finally {
    if (saved === undefined) delete process.env.HAKO_TAR_MAX_BYTES;
    else process.env.HAKO_TAR_MAX_BYTES = saved;
  }
}, { skip });

test("an entry whose header claims more than the limit is refused before anything is written", async () => {
  using t = tempDir();
  const tarball = join(t.path, "liar.tar");
  // A header claiming 4 GiB of data, and no data at all.
  writeFileSync(tarball, tarHeader({ path: "huge", type: "0" }, 4 * 1024 ** 3));
  const err = await rejection(extractRootfs(tarball, join(t.path, "rootfs"), { maxBytes: 1024 ** 3 }));
  assert.ok(err instanceof SetupError, `got ${err}`);
  assert.match(err.message, /more than 1073741824 bytes/);
  noLeftovers(t.path);
}, { skip });

test("zeros after the end-of-archive blocks are not read (nor counted)", async () => {
  using t = tempDir();
  const tar = tarBytes([{ path: "hello", type: "0", data: "hi\n" }]);
  const padded = new Uint8Array(tar.length + (32 << 20));
  padded.set(tar);
  const tarball = join(t.path, "padded.tar.gz");
  writeFileSync(tarball, gzipSync(padded));
  const res = await extractRootfs(tarball, join(t.path, "rootfs"), { maxBytes: 1 << 20 });
  assert.equal(res.created, true);
  assert.ok(existsSync(join(t.path, "rootfs", "hello")));
}, { skip });

test("more entries than maxEntries (or HAKO_TAR_MAX_ENTRIES) is a SetupError naming the limit", async () => {
  using t = tempDir();
  const tarball = join(t.path, "many.tar");
  writeFileSync(tarball, tarBytes(Array.from({ length: 50 }, (_, i) => ({ path: `f${i}`, type: "0" as const }))));
  const err = await rejection(extractRootfs(tarball, join(t.path, "rootfs"), { maxEntries: 20 }));
  assert.ok(err instanceof SetupError, `got ${err}`);
  assert.match(err.message, new RegExp(`${tarball} has more than 20 entries.*HAKO_TAR_MAX_ENTRIES`));
  noLeftovers(t.path);
  const saved = process.env.HAKO_TAR_MAX_ENTRIES;
  process.env.HAKO_TAR_MAX_ENTRIES = "49";
  try {
    assert.match(String(await rejection(extractRootfs(tarball, join(t.path, "rootfs")))), /more than 49 entries/);
    process.env.HAKO_TAR_MAX_ENTRIES = "50";
    assert.equal((await extractRootfs(tarball, join(t.path, "rootfs"))).created, true);
  } finally {
    if (saved === undefined) delete process.env.HAKO_TAR_MAX_ENTRIES;
    else process.env.HAKO_TAR_MAX_ENTRIES = saved;
  }
}, { skip });

test("a bad limit is a ConfigError naming the option or the variable, before anything is touched", async () => {
  using t = tempDir();
  const tarball = join(t.path, "one.tar");
  writeFileSync(tarball, tarBytes([{ path: "a", type: "0" }]));
  const err = await rejection(extractRootfs(tarball, join(t.path, "rootfs"), { maxBytes: 0 }));
  assert.ok(err instanceof ConfigError && err.path === "maxBytes", `got ${err}`);
  const saved = process.env.HAKO_TAR_MAX_ENTRIES;
  process.env.HAKO_TAR_MAX_ENTRIES = "lots";
  try {
    const err2 = await rejection(extractRootfs(tarball, join(t.path, "rootfs")));
    assert.ok(err2 instanceof ConfigError && err2.path === "HAKO_TAR_MAX_ENTRIES", `got ${err2}`);
  } finally {
    if (saved === undefined) delete process.env.HAKO_TAR_MAX_ENTRIES;
    else process.env.HAKO_TAR_MAX_ENTRIES = saved;
  }
  noLeftovers(t.path);
}, { skip });
