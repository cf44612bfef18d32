import { chmodSync, copyFileSync, existsSync, mkdirSync, realpathSync, statSync, writeFileSync } from "node:fs";
import process from "node:process";
import { assert, assertEquals, assertThrows, needsRoot, tempDir, test } from "./_harness.ts";
import { ConfigError, Dir, Process, SyscallError } from "../mod.ts";

test("mkdir() creates directories with a mode, recursively when asked; entries() lists them Ruby's way", () => {
  using dir = tempDir();
  Dir.mkdir(`${dir.path}/a/b/c`, { recursive: true, mode: 0o750 });
  assertEquals(statSync(`${dir.path}/a/b/c`).mode & 0o777, 0o750);
  Dir.mkdir(`${dir.path}/a/b/c`, { recursive: true }); // already there: fine with recursive
  writeFileSync(`${dir.path}/file`, "");
  assertEquals(Dir.entries(dir.path), [".", "..", "a", "file"]);
  assertEquals(Dir.children(dir.path), ["a", "file"]);
  assert(Dir.exists(`${dir.path}/a/b`));
  assert(!Dir.exists(`${dir.path}/file`), "a file is not a directory");
  assert(!Dir.exists(`${dir.path}/missing`));
  const e = assertThrows(() => Dir.mkdir(`${dir.path}/a`), SyscallError, /mkdir\(".*\/a"\): EEXIST/);
  assertEquals(e.code, "EEXIST");
  assertThrows(() => Dir.entries(`${dir.path}/missing`), SyscallError, /ENOENT/);
  assertThrows(() => Dir.mkdir(`${dir.path}/x`, { mode: 0o17777 }), ConfigError, /mkdir\.mode/);
  assertThrows(() => Dir.chdir(""), ConfigError, /chdir\.path/);
});

test("chdir() changes the process's working directory, and process.cwd() agrees", () => {
  using dir = tempDir();
  const want = realpathSync(dir.path);
  const pid = Process.fork(() => {
    Dir.chdir(dir.path);
    Process._exit(process.cwd() === want && Dir.pwd() === want ? 0 : 2);
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
  assertThrows(() => Dir.chdir(`${dir.path}/missing`), SyscallError, /chdir\(".*missing"\): ENOENT/);
});

const busybox = existsSync("/bin/busybox") ? "/bin/busybox" : undefined;

test("chroot() and chdir('/') in a child, then a program inside the new root runs", () => {
  using dir = tempDir();
  mkdirSync(`${dir.path}/bin`);
  copyFileSync(busybox!, `${dir.path}/bin/busybox`);
  chmodSync(`${dir.path}/bin/busybox`, 0o755);
  writeFileSync(`${dir.path}/hako-marker`, "");
  const pid = Process.fork(() => {
    Dir.chroot(dir.path);
    Dir.chdir("/");
    if (Dir.pwd() !== "/" || !Dir.exists("/bin") || Dir.exists("/etc")) Process._exit(2);
    Process.exec("/bin/busybox", ["sh", "-c", 'test -e /hako-marker && test "$(pwd)" = / && test ! -e /proc/self'], {
      env: { PATH: "/bin" },
    });
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
}, { skip: needsRoot || (!busybox && "needs a static busybox at /bin/busybox to build a rootfs") });
