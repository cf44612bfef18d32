import process from "node:process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { assert, assertEquals, assertThrows, needsRoot, tempDir, test } from "./_harness.ts";
import { killAndReap, procFile, rootEntries, waitUntil } from "./_proc.ts";
import { ConfigError, Mount, Process, SyscallError } from "../mod.ts";

/** The mounts of a mount table, by mount id. */
function mountTable(text = readFileSync("/proc/self/mountinfo", "utf8")): Map<string, string> {
  return new Map(text.split("\n").filter(Boolean).map((l) => [l.split(" ")[0]!, l]));
}

/** The mountinfo line whose mount point is `path`, in the calling process's namespace. */
function mountLine(path: string): string | undefined {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === path);
}

/**
 * Fails when the host's mount table changed in a way this test could have caused: a mount under
 * `dir`, or any mount present before and after whose line (flags, propagation) differs. Mounts
 * other tests add or remove meanwhile are not compared.
 */
function assertHostUnchanged(before: Map<string, string>, dir: string): void {
  const after = mountTable();
  for (const [id, line] of after) {
    assert(!line.includes(dir), `a mount under ${dir} was left on the host: ${line}`);
    const old = before.get(id);
    if (old !== undefined) assertEquals(line, old, `host mount ${id} changed`);
  }
}

/** Throws in the child (which then exits 1 and prints why) when `cond` is false. */
function expect(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

/**
 * Runs `fn` in a child with its own mount namespace whose `/` is made private recursively first,
 * and returns its exit code (0: `fn` returned; 1: it threw, and the stack is on stderr).
 */
function inMountNamespace(fn: () => void): number | null {
  const pid = Process.fork({ namespaces: ["mount"] }, () => {
    Mount.makePrivate("/", { recursive: true });
    fn();
  });
  return Process.waitpid2(pid).status.code;
}

test("mount flags parse from numbers, names and mount(8) options; unknown ones are ConfigErrors", () => {
  assertEquals(Mount.parseFlags(["nosuid", "nodev", "ro"]), Mount.MS_NOSUID | Mount.MS_NODEV | Mount.MS_RDONLY);
  assertEquals(Mount.parseFlags("nosuid,MS_NOEXEC"), Mount.MS_NOSUID | Mount.MS_NOEXEC);
  assertEquals(Mount.parseFlags(Mount.MS_BIND | Mount.MS_REC), 0x5000);
  assertEquals(Mount.parseOptions("nosuid,rw,mode=755,size=1m"), { flags: Mount.MS_NOSUID, data: "mode=755,size=1m" });
  assertEquals(Mount.flagNames(Mount.MS_BIND | Mount.MS_REC), "MS_BIND|MS_REC");
  assertThrows(() => Mount.parseFlags(["nosuid", "bogus"]), ConfigError, /flags\[1\]: unknown mount flag "bogus"/);
  assertThrows(
    () => Mount.mount("none", "/nonexistent/hako", { flags: ["bogus"] }),
    ConfigError,
    /mount\.flags\[0\]/,
  );
  assertThrows(
    () => Mount.mount(null, "/nonexistent/hako", { flags: ["private", "ro"] }),
    ConfigError,
    /cannot be combined with MS_RDONLY/,
  );
  assertThrows(() => Mount.mount("none", ""), ConfigError, /mount\.target/);
});

test("tmpfs, bind and read-only bind mounts work in a child's mount namespace and leave the host alone", () => {
  using dir = tempDir();
  const before = mountTable();
  const [a, b, c] = ["a", "b", "c"].map((n) => `${dir.path}/${n}`) as [string, string, string];
  for (const d of [a, b, c]) mkdirSync(d);
  try {
    const code = inMountNamespace(() => {
      Mount.mount("tmpfs", a, { type: "tmpfs", flags: ["nosuid", "nodev"], data: "size=1m,mode=755" });
      writeFileSync(`${a}/file`, "hello");
      Mount.bind(a, b);
      expect(readFileSync(`${b}/file`, "utf8") === "hello", "the bind shows the tmpfs's file");
      Mount.bind(a, c, { readonly: true });
      expect(readFileSync(`${c}/file`, "utf8") === "hello", "the read-only bind shows the file");
      let code = "";
      try {
        writeFileSync(`${c}/other`, "x");
      } catch (e) {
        code = (e as { code?: string }).code ?? String(e);
      }
      expect(code === "EROFS", `a write to the read-only bind failed with ${code || "nothing"}, not EROFS`);
      const opts = mountLine(c)?.split(" ")[5]?.split(",") ?? [];
      expect(
        opts.includes("ro") && opts.includes("nosuid") && opts.includes("nodev"),
        `the read-only bind kept nosuid,nodev: ${opts}`,
      );
      writeFileSync(`${b}/other`, "x"); // the plain bind is still writable
      Mount.umount(c);
      Mount.umount(b, { lazy: true });
      Mount.umount(a);
      expect(!readFileSync("/proc/self/mountinfo", "utf8").includes(dir.path), "every mount is gone");
    });
    assertEquals(code, 0);
    assert(!existsSync(`${a}/file`), "the tmpfs file never reached the host directory");
  } finally {
    assertHostUnchanged(before, dir.path);
  }
}, { skip: needsRoot });

test("a mount of a missing source throws SyscallError ENOENT naming the paths", () => {
  using dir = tempDir();
  const before = mountTable();
  try {
    const code = inMountNamespace(() => {
      const missing = `${dir.path}/missing`;
      try {
        Mount.bind(missing, dir.path);
        throw new Error("the bind of a missing source succeeded");
      } catch (e) {
        expect(e instanceof SyscallError && e.code === "ENOENT", `got ${e}`);
        expect(e.syscall === "mount" && e.message.includes(JSON.stringify(missing)), `message: ${e.message}`);
      }
      try {
        Mount.mount("proc", `${dir.path}/proc`, { type: "proc" });
        throw new Error("the proc mount on a missing target succeeded");
      } catch (e) {
        const want = `mount("proc", ${JSON.stringify(`${dir.path}/proc`)}, "proc"): ENOENT (no such file or directory)`;
        expect(e instanceof SyscallError && e.message === want, `message ${(e as Error).message}, want ${want}`);
      }
    });
    assertEquals(code, 0);
  } finally {
    assertHostUnchanged(before, dir.path);
  }
}, { skip: needsRoot });

test("makeShared, makeSlave and makePrivate change propagation as mountinfo shows it", () => {
  using dir = tempDir();
  const before = mountTable();
  const [p, q] = [`${dir.path}/p`, `${dir.path}/q`];
  mkdirSync(p), mkdirSync(q);
  try {
    const code = inMountNamespace(() => {
      Mount.bind(p, p);
      Mount.makeShared(p);
      expect(/ shared:\d+/.test(mountLine(p) ?? ""), `p is shared: ${mountLine(p)}`);
      Mount.bind(p, q); // q joins p's peer group
      expect(/ shared:\d+/.test(mountLine(q) ?? ""), `q is a peer: ${mountLine(q)}`);
      Mount.makeSlave(q);
      expect(
        / master:\d+/.test(mountLine(q) ?? "") && !/ shared:/.test(mountLine(q) ?? ""),
        `q is a slave: ${mountLine(q)}`,
      );
      Mount.makePrivate(q);
      Mount.makePrivate(p, { recursive: true });
      for (const m of [p, q]) expect(!/ (shared|master):/.test(mountLine(m) ?? ""), `${m} is private: ${mountLine(m)}`);
      Mount.umount(q);
      Mount.umount(p);
    });
    assertEquals(code, 0);
  } finally {
    assertHostUnchanged(before, dir.path);
  }
}, { skip: needsRoot });

const busybox = existsSync("/bin/busybox") ? "/bin/busybox" : undefined;

test("pivotRootInto() makes a small rootfs the child's / and detaches the old root", async () => {
  using dir = tempDir();
  const before = mountTable();
  const rootfs = `${dir.path}/rootfs`;
  mkdirSync(`${rootfs}/bin`, { recursive: true });
  copyFileSync(busybox!, `${rootfs}/bin/busybox`);
  chmodSync(`${rootfs}/bin/busybox`, 0o755);
  writeFileSync(`${rootfs}/hako-marker`, "");
  const pid = Process.fork({ namespaces: ["mount"] }, () => {
    Mount.pivotRootInto(rootfs);
    expect(process.cwd() === "/", `cwd after pivot: ${process.cwd()}`);
    Process.exec("/bin/busybox", ["sh", "-c", "test -e /hako-marker && exec /bin/busybox sleep 10"], {
      env: { PATH: "/bin" },
    });
  });
  try {
    await waitUntil(pid, () => procFile(pid, "cmdline").split("\0").includes("sleep"), "busybox sleep in the new root");
    assertEquals(rootEntries(pid), ["bin", "hako-marker"]);
    const points = procFile(pid, "mountinfo").split("\n").filter(Boolean).map((l) => l.split(" ")[4]);
    assertEquals(points, ["/"], "only the new root is mounted in the child");
  } finally {
    killAndReap(pid);
    assertHostUnchanged(before, dir.path);
  }
}, { skip: needsRoot || (!busybox && "needs a static busybox at /bin/busybox to build a rootfs") });
