/**
 * hako-runc's hot commands (`state`, `start`, `kill`, `delete`: src/oci/hot.ts, sent there by
 * src/cli/main.ts before anything else loads) and the host calls they make with no `node:` module
 * (ffi/_hot.ts). The commands run as processes — `bin/hako-runc` under Deno, `bun src/cli/main.ts
 * oci` under Bun, and `hako oci` — over records planted under a `--root` of the test's own, with a
 * `sleep` as the container's process: no container, cgroup nor root needed (the whole lifecycle with
 * real containers is tests/oci_test.ts's). Everything made is removed, also on failure.
 * @module
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtime, tempDir, test } from "./_harness.ts";
import { HOT_SYS, HOT_SYS_BY_ARCH, hotFs } from "../ffi/_hot.ts";
import { SYSCALLS_AARCH64 } from "../ffi/_syscalls_aarch64.ts";
import { SYSCALLS_X86_64 } from "../ffi/_syscalls_x86_64.ts";
import { ARCH } from "../ffi/_arch.ts";
import { SyscallError } from "../ffi/errno.ts";
import { EBUSY, EPERM } from "../ffi/constants.ts";
import { hotOciArgs } from "../src/cli/main.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

test("the hot path's raw syscall numbers are the kernel's, on x86_64 and aarch64", () => {
  const tables: Record<string, Readonly<Record<string, number>>> = {
    x86_64: SYSCALLS_X86_64,
    aarch64: SYSCALLS_AARCH64,
  };
  for (const [arch, calls] of Object.entries(HOT_SYS_BY_ARCH)) {
    for (const [name, nr] of Object.entries(calls)) assert.equal(nr, tables[arch]![name], `${arch} ${name}`);
  }
  assert.equal(HOT_SYS, HOT_SYS_BY_ARCH[ARCH]);
});

test("hotFs reads, lists, stats and removes files as node:fs sees them", () => {
  using dir = tempDir("hako-test-hotoci-fs-");
  const d = dir.path;
  mkdirSync(join(d, "a/b"), { recursive: true });
  writeFileSync(join(d, "a/b/f"), "héllo\n".repeat(20_000)); // (more than one read)
  chmodSync(join(d, "a/b/f"), 0o640);
  symlinkSync("a/b", join(d, "link"));
  assert.equal(hotFs.readText(join(d, "a/b/f")), readFileSync(join(d, "a/b/f"), "utf8"));
  assert.equal(hotFs.readText(join(d, "missing")), undefined);
  // (a /proc file reports size 0: read to its end all the same)
  assert.match(hotFs.readText("/proc/self/stat")!, /^\d+ \(/);
  assert.deepEqual(hotFs.readDir(join(d, "a")), [{ name: "b", dir: true }]);
  assert.deepEqual(
    hotFs.readDir(d).map((e) => e.name).sort(),
    readdirSync(d).sort(),
  );
  const l = hotFs.lstat(join(d, "link"))!;
  assert.equal(l.kind, "symlink");
  assert.equal(l.uid, lstatSync(join(d, "link")).uid);
  assert.deepEqual(hotFs.stat(join(d, "a/b/f")), { uid: statSync(join(d, "a/b/f")).uid, mode: 0o640, kind: "file" });
  assert.equal(hotFs.stat(join(d, "link"))!.kind, "dir");
  assert.equal(hotFs.lstat(join(d, "nothing/here")), undefined);
  assert.equal(hotFs.realPath(join(d, "link")), realpathSync(join(d, "link")));
  assert.throws(() => hotFs.realPath(join(d, "nothing")), { name: "SyscallError", code: "ENOENT" });
  assert.equal(hotFs.cwd(), process.cwd());
  assert.equal(hotFs.exists(join(d, "a")), true);
  // removeTree lists a directory only if it is still one when opened: a symlink swapped in after
  // its lstat is refused (O_NOFOLLOW with O_DIRECTORY: the kernel says ENOTDIR), never followed and
  // emptied (the link's target keeps its files).
  assert.throws(() => hotFs.readDir(join(d, "link"), true), { name: "SyscallError", code: "ENOTDIR" });
  hotFs.removeTree(join(d, "link"));
  assert.equal(existsSync(join(d, "a/b/f")), true, "removing the link left its target alone");
  hotFs.removeTree(join(d, "a"));
  assert.equal(existsSync(join(d, "a")), false);
  hotFs.removeTree(join(d, "a")); // (nothing there: fine, as rm -rf)
});

test("the exec FIFO's reader sleeps until a byte comes (no writer yet is not a hang-up), then reads it", () => {
  using dir = tempDir("hako-test-hotoci-fifo-");
  const fifo = join(dir.path, "exec.fifo");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  const fd = hotFs.openFifoReader(fifo);
  try {
    assert.equal(hotFs.readByte(fd), false);
    const t0 = Date.now();
    assert.equal(hotFs.waitReadable(fd, 60), "timeout");
    assert.ok(Date.now() - t0 >= 50, "it waited");
    const w = openSync(fifo, "w");
    writeSync(w, "1");
    assert.equal(hotFs.waitReadable(fd, 5000), "ready");
    assert.equal(hotFs.readByte(fd), true);
    closeSync(w);
    assert.equal(hotFs.waitReadable(fd, 5000), "hup");
    assert.equal(hotFs.readByte(fd), false);
  } finally {
    hotFs.close(fd);
  }
});

test("only state, start, kill and delete take the hot path, after any global options", () => {
  assert.deepEqual(hotOciArgs(["oci", "state", "x"]), ["state", "x"]);
  assert.deepEqual(hotOciArgs(["oci", "--root", "/r", "--log-format", "json", "kill", "x", "KILL"]), [
    "--root",
    "/r",
    "--log-format",
    "json",
    "kill",
    "x",
    "KILL",
  ]);
  assert.deepEqual(hotOciArgs(["oci", "delete", "--force", "x"]), ["delete", "--force", "x"]);
  for (const argv of [["oci", "create", "x"], ["oci", "run", "x"], ["oci", "list"], ["oci", "--root"], ["ps"], []]) {
    assert.equal(hotOciArgs(argv), undefined, argv.join(" "));
  }
  // (`hako state` is hako's own command, not runc's)
  assert.equal(hotOciArgs(["state", "x"]), undefined);
});

/** The OCI runtime's command line for this test run's JavaScript runtime. */
function hakoRunc(): string[] {
  return runtime === "deno"
    ? [join(ROOT, "bin/hako-runc")]
    : [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli/main.ts"), "oci"];
}

function runc(args: string[]): { status: number; stdout: string; stderr: string } {
  const [cmd, ...pre] = hakoRunc();
  const r = spawnSync(cmd!, [...pre, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A process's start time (field 22 of /proc/PID/stat). */
function startTimeOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, "latin1");
  return Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[19]);
}

/** A `sleep` to stand for a container's process, killed when disposed. */
function sleeper(): { pid: number; alive(): boolean } & Disposable {
  const child = spawn("sleep", ["300"], { stdio: "ignore" });
  const pid = child.pid!;
  let exited = false;
  child.on("exit", () => exited = true);
  return {
    pid,
    alive: () => !exited && existsSync(`/proc/${pid}`) && !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, "latin1")),
    [Symbol.dispose]() {
      try {
        process.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    },
  };
}

/** Plants a record of container `id` under `root` (as create writes it). */
function plant(root: string, id: string, extra: Record<string, unknown>): string {
  const dir = join(root, id);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(dir, "state.json"),
    JSON.stringify({
      ociVersion: "1.0.2",
      id,
      name: id,
      bundle: "/nonexistent-bundle",
      rootfs: "/nonexistent-bundle/rootfs",
      created: "2026-12-03T00:00:00.000Z",
      annotations: {},
      owner: "root",
      ...extra,
    }),
  );
  return dir;
}

async function waitFor(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(ok(), what);
}

test("state reports each status from the record: created (FIFO), running, paused (recorded freezer), stopped", () => {
  using dir = tempDir("hako-test-hotoci-state-");
  const root = join(dir.path, "root");
  mkdirSync(root, { mode: 0o700 });
  using p = sleeper();
  const freezer = join(dir.path, "freezer");
  mkdirSync(freezer);
  writeFileSync(join(freezer, "freezer.state"), "THAWED\n");
  const cdir = plant(root, "c1", {
    pid: p.pid,
    startTime: startTimeOf(p.pid),
    cgroupName: "hako/c1",
    freezer: { version: 1, dir: freezer },
  });
  const state = () => {
    const r = runc(["--root", root, "state", "c1"]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { status: string; pid: number; id: string };
  };
  assert.equal(spawnSync("mkfifo", [join(cdir, "exec.fifo")]).status, 0);
  assert.deepEqual({ ...state() }, {
    ociVersion: "1.0.2",
    id: "c1",
    pid: p.pid,
    status: "created",
    bundle: "/nonexistent-bundle",
    rootfs: "/nonexistent-bundle/rootfs",
    created: "2026-12-03T00:00:00.000Z",
    annotations: {},
    owner: "root",
  });
  hotFs.unlink(join(cdir, "exec.fifo"));
  assert.equal(state().status, "running");
  writeFileSync(join(freezer, "freezer.state"), "FROZEN\n");
  assert.equal(state().status, "paused");
  // (the same pid with another start time is another process: the container has stopped)
  plant(root, "c2", { pid: p.pid, startTime: startTimeOf(p.pid) + 1 });
  const r = runc(["--root", root, "state", "c2"]);
  assert.equal(JSON.parse(r.stdout).status, "stopped");
  assert.equal(JSON.parse(r.stdout).pid, 0);
});

test("a hot command's failure is runc's: its message on stderr and in --log (json), exit status 1", () => {
  using dir = tempDir("hako-test-hotoci-log-");
  const root = join(dir.path, "root");
  const log = join(dir.path, "log.json");
  for (const cmd of ["state", "start", "kill", "delete"]) {
    const r = runc(["--root", root, "--log", log, "--log-format", "json", cmd, "nosuch"]);
    assert.equal(r.status, 1, cmd);
    assert.equal(r.stderr, "container does not exist\n", cmd);
    assert.equal(r.stdout, "");
  }
  const lines = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 4);
  for (const l of lines) {
    assert.equal(l.level, "error");
    assert.equal(l.msg, "container does not exist");
    assert.ok(!Number.isNaN(Date.parse(l.time)));
  }
  assert.equal(statSync(log).mode & 0o777, 0o600);
  // (delete --force of nothing is fine, as runc's; an invalid id is no container)
  assert.equal(runc(["--root", root, "delete", "--force", "nosuch"]).status, 0);
  assert.equal(runc(["--root", root, "state", "../x"]).stderr, "container does not exist\n");
  assert.equal(runc(["--root", root, "kill"]).stderr, `"kill" requires a container id\n`);
});

test("a --root that is not the caller's own is refused by the hot commands before any record is read", () => {
  using dir = tempDir("hako-test-hotoci-root-");
  const root = join(dir.path, "root");
  mkdirSync(root, { mode: 0o700 });
  chmodSync(root, 0o777);
  const r = runc(["--root", root, "state", "x"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^cannot use --root .*: mode 0777: group or others may write to it/);
});

test("kill signals the recorded process through its pidfd only while its start time matches", async () => {
  using dir = tempDir("hako-test-hotoci-kill-");
  const root = join(dir.path, "root");
  mkdirSync(root, { mode: 0o700 });
  using p = sleeper();
  plant(root, "other", { pid: p.pid, startTime: startTimeOf(p.pid) + 1 });
  const refused = runc(["--root", root, "kill", "other", "KILL"]);
  assert.equal(refused.status, 1);
  assert.equal(refused.stderr, "container not running\n");
  assert.ok(p.alive(), "a process with another start time is never signalled");
  plant(root, "c", { pid: p.pid, startTime: startTimeOf(p.pid) });
  assert.equal(runc(["--root", root, "kill", "c", "sigwhat"]).stderr, `unknown signal "sigwhat"\n`);
  const r = runc(["--root", root, "kill", "c", "9"]);
  assert.equal(r.status, 0, r.stderr);
  await waitFor("the process is killed", () => !p.alive());
});

test("start releases the process waiting on the exec FIFO, removes the FIFO, and refuses a second start", async () => {
  using dir = tempDir("hako-test-hotoci-start-");
  const root = join(dir.path, "root");
  mkdirSync(root, { mode: 0o700 });
  const cdir = join(root, "c");
  mkdirSync(cdir, { mode: 0o700 });
  const fifo = join(cdir, "exec.fifo");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  // (the container's side: opens the FIFO for writing, which blocks until start opens it, writes
  // a byte, then runs on)
  const child = spawn("sh", ["-c", `echo 0 > '${fifo}'; exec sleep 300`], { stdio: "ignore" });
  using _kill = { [Symbol.dispose]: () => void child.kill("SIGKILL") };
  await waitFor("the child runs", () => existsSync(`/proc/${child.pid}/stat`));
  plant(root, "c", { pid: child.pid, startTime: startTimeOf(child.pid!) });
  const r = runc(["--root", root, "start", "c"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(existsSync(fifo), false);
  await waitFor(
    "the child execs its command",
    () => readFileSync(`/proc/${child.pid}/cmdline`, "utf8").startsWith("sleep"),
  );
  const again = runc(["--root", root, "start", "c"]);
  assert.equal(again.stderr, "cannot start an already running container\n");
});

test("delete refuses a running container, --force kills it, and the state directory goes", async () => {
  using dir = tempDir("hako-test-hotoci-delete-");
  const root = join(dir.path, "root");
  mkdirSync(root, { mode: 0o700 });
  using p = sleeper();
  const cdir = plant(root, "c", { pid: p.pid, startTime: startTimeOf(p.pid) });
  const refused = runc(["--root", root, "delete", "c"]);
  assert.equal(refused.stderr, "cannot delete container c that is not stopped: running\n");
  assert.ok(existsSync(cdir) && p.alive());
  // (through `hako oci` as well as hako-runc's own name)
  const [cmd, ...pre] = hakoRunc();
  const viaHako = runtime === "deno" ? [join(ROOT, "bin/hako"), "oci"] : [cmd!, ...pre];
  const r = spawnSync(viaHako[0]!, [...viaHako.slice(1), "--root", root, "delete", "--force", "c"], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(existsSync(cdir), false);
  await waitFor("the process is killed", () => !p.alive());
});

test("a SyscallError gives EPERM's hint only to a non-root caller, and other errnos none", () => {
  // (the uid is asked only for EPERM, and under Deno through Deno.uid(): the global process would
  // start Deno's Node layer in a hot command — delete makes EBUSY errors as it waits on cgroups)
  const busy = new SyscallError("rmdir", EBUSY, ["/sys/fs/cgroup/pids/hako"]);
  assert.equal(busy.message, 'rmdir("/sys/fs/cgroup/pids/hako"): EBUSY (device or resource busy)');
  const perm = new SyscallError("mount", EPERM, ["proc"]);
  const root = process.getuid?.() === 0;
  assert.equal(perm.message.includes("needs root"), !root);
});

test("kill --all signals each process its recorded cgroup lists, and none it does not", async () => {
  using dir = tempDir("hako-test-hotoci-killall-");
  const root = join(dir.path, "root");
  mkdirSync(root, { mode: 0o700 });
  using member = sleeper();
  using other = sleeper();
  // (a stand-in for the cgroup's directory: kill --all reads its cgroup.procs, as create recorded it)
  const cg = join(dir.path, "cgroup");
  mkdirSync(cg);
  writeFileSync(join(cg, "cgroup.procs"), `${member.pid}\n`);
  plant(root, "c", {
    pid: member.pid,
    startTime: startTimeOf(member.pid),
    cgroupName: "hako/hotoci-killall",
    cgroupDirs: [cg, join(dir.path, "gone")],
  });
  const r = runc(["--root", root, "kill", "--all", "c", "KILL"]);
  assert.equal(r.status, 0, r.stderr);
  await waitFor("the member is killed", () => !member.alive());
  assert.ok(other.alive(), "a process the cgroup does not list is never signalled");
});
