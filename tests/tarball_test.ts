import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { assert, assertEquals, needsRoot, tempDir, test } from "./_harness.ts";
import { SetupError } from "../src/errors.ts";
import { mknod } from "../src/container/_devices.ts";
import { run } from "../src/container/container.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { extractRootfs, TARBALL_MARKER } from "../src/container/tarball.ts";

const skip = needsRoot;

/** A source tree with modes, links, a char device and a fifo. */
function sourceTree(src: string): void {
  mkdirSync(join(src, "bin"), { recursive: true });
  mkdirSync(join(src, "etc"));
  mkdirSync(join(src, "dev"));
  writeFileSync(join(src, "bin", "suid"), "#!/bin/sh\n");
  chmodSync(join(src, "bin", "suid"), 0o4755);
  writeFileSync(join(src, "etc", "secret"), "s3cret\n");
  chmodSync(join(src, "etc", "secret"), 0o600);
  writeFileSync(join(src, "etc", "owned"), "x\n");
  chownSync(join(src, "etc", "owned"), 1000, 1001);
  symlinkSync("/bin/suid", join(src, "bin", "abs"));
  symlinkSync("../etc/secret", join(src, "bin", "rel"));
  symlinkSync("../../../../../etc/passwd", join(src, "bin", "far"));
  linkSync(join(src, "etc", "secret"), join(src, "etc", "secret-link"));
  mknod(join(src, "dev", "null"), "c", 0o666, 1, 3);
  chmodSync(join(src, "dev", "null"), 0o666); // mknod applies the umask
  execFileSync("mkfifo", ["-m", "0620", join(src, "dev", "pipe")]);
}

function makeTar(src: string, out: string, gzip = false): void {
  execFileSync("tar", ["--numeric-owner", gzip ? "-czf" : "-cf", out, "-C", src, "."]);
}

/** Leftovers next to `dir` (temp siblings). */
function siblings(parent: string): string[] {
  return readdirSync(parent).filter((n) => n.includes("hako-tmp"));
}

test(
  "extractRootfs keeps modes, symlinks, hard links, a char device and a fifo; the marker makes it once",
  async () => {
    using t = tempDir();
    const src = join(t.path, "src");
    sourceTree(src);
    const tarball = join(t.path, "root.tar");
    makeTar(src, tarball);
    const dir = join(t.path, "rootfs");
    const res = await extractRootfs(tarball, dir);
    assertEquals(res, { path: dir, created: true });
    assertEquals(statSync(join(dir, "bin", "suid")).mode & 0o7777, 0o4755);
    assertEquals(statSync(join(dir, "etc", "secret")).mode & 0o7777, 0o600);
    assertEquals(readlinkSync(join(dir, "bin", "abs")), "/bin/suid");
    assertEquals(readlinkSync(join(dir, "bin", "rel")), "../etc/secret");
    assertEquals(readlinkSync(join(dir, "bin", "far")), "../../../../../etc/passwd");
    assertEquals(lstatSync(join(dir, "etc", "secret-link")).ino, lstatSync(join(dir, "etc", "secret")).ino);
    const dev = lstatSync(join(dir, "dev", "null"));
    assert(dev.isCharacterDevice(), "dev/null is a char device");
    assertEquals(dev.rdev, statSync("/dev/null").rdev);
    assertEquals(dev.mode & 0o7777, 0o666);
    const fifo = lstatSync(join(dir, "dev", "pipe"));
    assert(fifo.isFIFO(), "dev/pipe is a fifo");
    assertEquals(fifo.mode & 0o7777, 0o620);
    assertEquals([lstatSync(join(dir, "etc", "owned")).uid, lstatSync(join(dir, "etc", "owned")).gid], [1000, 1001]);
    const marker = JSON.parse(readFileSync(join(dir, TARBALL_MARKER), "utf8"));
    assertEquals(marker.tarball, tarball);
    assertEquals(siblings(t.path), []);

    // Second call: a no-op (a file we drop stays, nothing is re-extracted).
    writeFileSync(join(dir, "etc", "mine"), "kept\n");
    rmSync(join(dir, "etc", "secret"));
    assertEquals(await extractRootfs(tarball, dir), { path: dir, created: false });
    assert(existsSync(join(dir, "etc", "mine")) && !existsSync(join(dir, "etc", "secret")), "second call did nothing");
    // A different owner is not the same extraction: refused, the directory is kept.
    let err: unknown;
    try {
      await extractRootfs(tarball, dir, { owner: { uid: 5000 } });
    } catch (e) {
      err = e;
    }
    assert(err instanceof SetupError && err.step === "rootfs", `got ${err}`);
    assert(existsSync(join(dir, "etc", "mine")), "kept");
  },
  { skip },
);

test("extractRootfs reads .tar.gz", async () => {
  using t = tempDir();
  const src = join(t.path, "src");
  sourceTree(src);
  const tarball = join(t.path, "root.tgz");
  makeTar(src, tarball, true);
  const dir = join(t.path, "rootfs");
  assertEquals((await extractRootfs(tarball, dir)).created, true);
  assertEquals(statSync(join(dir, "bin", "suid")).mode & 0o7777, 0o4755);
  assert(lstatSync(join(dir, "dev", "null")).isCharacterDevice(), "char device");
}, { skip });

test("extractRootfs shifts owners into the container's range (each inode once, setuid kept)", async () => {
  using t = tempDir();
  const src = join(t.path, "src");
  sourceTree(src);
  const tarball = join(t.path, "root.tar");
  makeTar(src, tarball);
  const dir = join(t.path, "rootfs");
  await extractRootfs(tarball, dir, { owner: { uid: 200000, gid: 300000 } });
  const own = (p: string) => {
    const s = lstatSync(join(dir, p));
    return [s.uid, s.gid];
  };
  assertEquals(own("bin/suid"), [200000, 300000]);
  assertEquals(own("etc/owned"), [201000, 301001]);
  assertEquals(own("etc/secret-link"), [200000, 300000]);
  assertEquals(own("bin/abs"), [200000, 300000]);
  assertEquals(own("dev/null"), [200000, 300000]);
  assertEquals(own(""), [200000, 300000]);
  assertEquals(statSync(join(dir, "bin", "suid")).mode & 0o7777, 0o4755);
  assertEquals(JSON.parse(readFileSync(join(dir, TARBALL_MARKER), "utf8")).owner, { uid: 200000, gid: 300000 });
  assertEquals((await extractRootfs(tarball, dir, { owner: { uid: 200000, gid: 300000 } })).created, false);
}, { skip });

// ---- hostile tarballs, written by hand (ustar headers) ----

interface RawEntry {
  path: string;
  type: "0" | "1" | "2" | "5";
  linkpath?: string;
  data?: string;
}

function rawTar(entries: RawEntry[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const e of entries) {
    const h = new Uint8Array(512);
    const put = (off: number, len: number, s: string) => h.set(enc.encode(s).subarray(0, len), off);
    const oct = (off: number, len: number, n: number) => put(off, len, n.toString(8).padStart(len - 1, "0") + "\0");
    const data = enc.encode(e.data ?? "");
    put(0, 100, e.path);
    oct(100, 8, e.type === "5" ? 0o755 : 0o644);
    oct(108, 8, 0);
    oct(116, 8, 0);
    oct(124, 12, data.length);
    oct(136, 12, 1_700_000_000);
    put(148, 8, "        ");
    put(156, 1, e.type);
    put(157, 100, e.linkpath ?? "");
    put(257, 8, "ustar\x0000");
    let sum = 0;
    for (const b of h) sum += b;
    put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
    blocks.push(h);
    if (data.length) {
      const d = new Uint8Array(Math.ceil(data.length / 512) * 512);
      d.set(data);
      blocks.push(d);
    }
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

async function expectRefused(
  name: string,
  entries: RawEntry[],
  outside: string[],
  pattern: RegExp,
): Promise<void> {
  using t = tempDir();
  const tarball = join(t.path, `${name}.tar`);
  writeFileSync(tarball, rawTar(entries));
  const dir = join(t.path, "rootfs");
  const before = outside.map((p) => existsSync(p) ? readFileSync(p, "utf8") : undefined);
  let err: unknown;
  try {
    await extractRootfs(tarball, dir);
  } catch (e) {
    err = e;
  }
  assert(err instanceof SetupError, `${name}: expected SetupError, got ${err}`);
  assertEquals(err.step, "rootfs");
  assert(pattern.test(err.message), `${name}: ${err.message} does not match ${pattern}`);
  assert(!existsSync(dir), `${name}: no target dir`);
  assertEquals(siblings(t.path), [], `${name}: no temp sibling`);
  outside.forEach((p, i) => assertEquals(existsSync(p) ? readFileSync(p, "utf8") : undefined, before[i], p));
}

test("extractRootfs refuses an entry with '..' that leaves the rootfs", async () => {
  using t = tempDir();
  // The tarball sits in t.path; "../escaped" from rootfs (in another temp dir) would land next to it.
  const target = join(t.path, "escaped");
  await expectRefused(
    "dotdot",
    [
      { path: "ok", type: "0", data: "fine" },
      { path: `../../../../../../../..${target}`, type: "0", data: "pwned" },
      { path: "../escaped", type: "0", data: "pwned" },
    ],
    [target],
    /refused entry .*\.\./,
  );
  assert(!existsSync(target), "nothing written outside");
}, { skip });

test("extractRootfs refuses an absolute entry", async () => {
  const target = `/tmp/hako-escape-${process.pid}`;
  try {
    await expectRefused("absolute", [{ path: target, type: "0", data: "pwned" }], [target], /refused entry .*absolute/);
    assert(!existsSync(target), "nothing written at the absolute path");
  } finally {
    rmSync(target, { force: true });
  }
}, { skip });

test("extractRootfs never writes through a symlink from the tarball", async () => {
  using outside = tempDir();
  const victim = join(outside.path, "passwd");
  writeFileSync(victim, "original\n");
  await expectRefused(
    "through-symlink",
    [
      { path: "a", type: "2", linkpath: outside.path },
      { path: "a/passwd", type: "0", data: "pwned\n" },
    ],
    [victim],
    /refused entry "a\/passwd".*symlink "a"/,
  );
  assertEquals(readFileSync(victim, "utf8"), "original\n");
  // Also through a symlinked directory deeper down, and a hard link through a symlink.
  await expectRefused(
    "through-symlink-deep",
    [
      { path: "x/", type: "5" },
      { path: "x/y", type: "2", linkpath: "/etc" },
      { path: "./x/y/passwd", type: "0", data: "pwned\n" },
    ],
    ["/etc/passwd"],
    /symlink "x\/y"/,
  );
  await expectRefused(
    "link-through-symlink",
    [
      { path: "e", type: "2", linkpath: "/etc" },
      { path: "p", type: "1", linkpath: "e/passwd" },
    ],
    ["/etc/passwd"],
    /through the symlink "e"/,
  );
}, { skip });

test("extractRootfs refuses a hard link to a file outside the rootfs", async () => {
  const st = statSync("/etc/passwd");
  await expectRefused("hardlink-abs", [{ path: "pw", type: "1", linkpath: "/etc/passwd" }], ["/etc/passwd"], /outside/);
  await expectRefused(
    "hardlink-dotdot",
    [{ path: "pw", type: "1", linkpath: "../../../../../../etc/passwd" }],
    ["/etc/passwd"],
    /outside/,
  );
  assertEquals(statSync("/etc/passwd").nlink, st.nlink);
}, { skip });

test("extractRootfs: a bad tarball is a SetupError and leaves nothing", async () => {
  using t = tempDir();
  const tarball = join(t.path, "junk.tar");
  writeFileSync(tarball, "this is not a tarball".repeat(100));
  let err: unknown;
  try {
    await extractRootfs(tarball, join(t.path, "rootfs"));
  } catch (e) {
    err = e;
  }
  assert(err instanceof SetupError && err.step === "rootfs", `got ${err}`);
  assert(!existsSync(join(t.path, "rootfs")), "no target dir");
  assertEquals(siblings(t.path), []);
}, { skip });

test("run() with a tarball rootfs (busybox) exits 0", async () => {
  using t = tempDir();
  chmodSync(t.path, 0o755);
  const built = join(t.path, "built");
  buildRootfs(built, { builder: "busybox" });
  const tarball = join(t.path, "busybox.tar.gz");
  makeTar(built, tarball, true);
  const path = join(t.path, "rootfs");
  const status = await run({
    name: `hako-tar-${process.pid}`,
    rootfs: { tarball, path },
    command: ["sh", "-c", 'test -x /bin/sh && test -f /.hako-rootfs && echo hi > /tmp/x && test "$(cat /tmp/x)" = hi'],
    namespaces: ["mount", "uts", "ipc", "pid", "net"],
  });
  assertEquals(status.code, 0);
}, {
  skip: needsRoot || (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)"),
});
