import process from "node:process";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, atEnd, needsRoot, tempDir, test } from "./_harness.ts";
import { detect } from "../src/cgroup/layout.ts";
import { assembledTest } from "./_assembled.ts";
import { procFile, statusField, waitUntil } from "./_proc.ts";
import { SetupError } from "../mod.ts";
import { addressOf, libc } from "../ffi/libc.ts";
import { AT_FDCWD } from "../ffi/constants.ts";
import { HEADER_BYTES, OP_BYTES, OP_WORD } from "../ffi/_op_layout.ts";
import { OP_LAYOUT_INC, renderOpLayout } from "../tools/gen_op_layout.ts";
import {
  CLONE3_X86_64_HEX,
  nativeSpawnSupported,
  nextReport,
  parseReport,
  readReport,
  readyRecord,
  REPORT_BYTES,
  RUNNER_AARCH64_HEX,
  RUNNER_X86_64_HEX,
  spawnProgram,
  spawnProgramInto,
  syncInstructionCache,
  SyscallProgram,
} from "../ffi/spawn.ts";
import { Container, run } from "../src/container/container.ts";
import { execIn } from "../src/container/exec.ts";
import { nativeChildren } from "../src/container/native.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import type { ContainerSpec } from "../src/container/spec.ts";

const noRunner = process.arch !== "x64" && process.arch !== "arm64" &&
  `hako has native runners for x86-64 and aarch64 only (this is ${process.arch})`;
const skip = needsRoot || noRunner;
const skipBox = skip ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

const O_WRONLY_CREAT_CLOEXEC = 0o1 | 0o100 | 0o2000000;
const O_CLOEXEC = 0o2000000;

/** Runs `prog` in a native child (no namespaces); returns its report records and wait status. */
function runProgram(build: (p: SyscallProgram, report: number) => void, cloneFlags = 0) {
  const { pipe2, read, close, waitpid } = libc();
  const fds = new Int32Array(2);
  pipe2(fds, O_CLOEXEC);
  const p = new SyscallProgram();
  build(p, fds[1]!);
  const built = p.build();
  built.reportTo(fds[1]!);
  let pid: number;
  try {
    pid = spawnProgram(built, cloneFlags);
  } finally {
    close(fds[1]!);
  }
  const bytes: number[] = [];
  const buf = new Uint8Array(64);
  for (let n; (n = read(fds[0]!, buf, 64n)) > 0;) bytes.push(...buf.subarray(0, n));
  close(fds[0]!);
  const st = new Int32Array(1);
  waitpid(pid, st, 0);
  const records = [];
  for (let i = 0; i + REPORT_BYTES <= bytes.length; i += REPORT_BYTES) {
    records.push(parseReport(new Uint8Array(bytes.slice(i, i + REPORT_BYTES))));
  }
  return { records, code: (st[0]! >> 8) & 0xff, signal: st[0]! & 0x7f, built };
}

test("the report readers take a whole record, tell EOF from a record cut short, and time out", async () => {
  const { pipe2, write, close } = libc();
  const fds = new Int32Array(2);
  const ready = new TextEncoder().encode("RDY!\0\0\0\0\0\0\0\0");
  const failed = new Uint8Array(REPORT_BYTES);
  new DataView(failed.buffer).setUint32(0, 0x21525245, true); // "ERR!"
  new DataView(failed.buffer).setUint32(4, 3, true); // op 3
  new DataView(failed.buffer).setUint32(8, 2, true); // ENOENT
  pipe2(fds, O_CLOEXEC);
  try {
    assertEquals(await nextReport(fds[0]!, Date.now() + 20), "timeout"); // nothing written, the pipe open
  } finally {
    close(fds[1]!);
  }
  close(fds[0]!);
  // Two records (the first written in two pieces) and part of a third; then the write end closes.
  pipe2(fds, O_CLOEXEC);
  write(fds[1]!, ready.subarray(0, 5), 5n);
  write(fds[1]!, ready.subarray(5), BigInt(REPORT_BYTES - 5));
  write(fds[1]!, failed, BigInt(REPORT_BYTES));
  write(fds[1]!, failed, 7n);
  close(fds[1]!);
  try {
    assertEquals(readReport(fds[0]!), { ready: true });
    assertEquals(await nextReport(fds[0]!, Date.now() + 1000), { ready: false, op: 3, errno: 2 });
    assertEquals(await nextReport(fds[0]!, Date.now() + 1000), "garbled");
    assertEquals(await nextReport(fds[0]!, Date.now() + 1000), "eof");
    assertEquals(readReport(fds[0]!), undefined);
  } finally {
    close(fds[0]!);
  }
});

/** The runners' sources and their embedded bytes. */
const RUNNERS = [
  { src: "ffi/spawn_x86_64.S", hex: RUNNER_X86_64_HEX },
  { src: "ffi/spawn_aarch64.S", hex: RUNNER_AARCH64_HEX },
];
for (const r of RUNNERS) assembledTest("runner", r.src, r.hex);
assembledTest("clone3 entry", "ffi/clone3_x86_64.S", CLONE3_X86_64_HEX);

test("the runners' assembler constants are the op-layout table's (ffi/_op_layout.inc from tools/gen_op_layout.ts)", () => {
  assertEquals(readFileSync(OP_LAYOUT_INC, "utf8"), renderOpLayout(), "run: tools/deno run -A tools/gen_op_layout.ts");
  // and both runners take their layout from it, none by hand
  for (const r of RUNNERS) {
    const src = readFileSync(r.src, "utf8");
    assert(src.includes('.include "_op_layout.inc"'), `${r.src} includes the generated constants`);
    const x86 = /\[(?:rbx|r12) \+ \d+\]/.test(src), a64 = /\[x(?:19|23), #\d+\]/.test(src);
    assert(!x86 && !a64, `${r.src} indexes the program by a number, not a name of the table`);
  }
});

test("the runner's page is made visible to instruction fetch through libgcc's __clear_cache (bound and called here too)", () => {
  const code = new Uint8Array(64).fill(0xc3);
  // (aarch64 needs it; on x86-64 libgcc's function returns at once, which is what this runs)
  syncInstructionCache(addressOf(code), BigInt(code.length), "aarch64");
  syncInstructionCache(addressOf(code), BigInt(code.length), "x86_64");
});

test("a program is encoded with each architecture's syscall numbers, and no call aarch64 lacks", () => {
  const p = new SyscallProgram();
  p.call("openat", [AT_FDCWD, p.cstring("/x"), 0, 0]);
  p.call("dup3", [3, 4, 0]);
  const nr = (arch: "x86_64" | "aarch64") =>
    Number(new DataView(p.image(0x10000n, arch).buffer).getBigInt64(HEADER_BYTES + OP_BYTES + OP_WORD.nr * 8, true));
  assertEquals([nr("x86_64"), nr("aarch64")], [292, 24], "dup3");
  for (const name of ["open", "dup2", "mkdir", "symlink", "mknod"]) {
    let err: unknown;
    try {
      p.call(name as "openat", []);
    } catch (e) {
      err = e;
    }
    assert(err instanceof RangeError, `${name} is refused`);
  }
});

test("a native child runs its calls in order, reports ready and execs; the exit code comes back", () => {
  const r = runProgram((p, report) => {
    p.call("write", [report, readyRecord(p), REPORT_BYTES], { expect: REPORT_BYTES });
    p.call("execve", [p.cstring("/bin/sh"), p.cstrings(["sh", "-c", "exit 7"]), p.cstrings([])]);
  });
  assertEquals(r.records, [{ ready: true }]);
  assertEquals(r.code, 7);
}, { skip });

test("a failing call reports its op index and errno, and the child exits 126", () => {
  const r = runProgram((p) => {
    p.call("chdir", [p.cstring("/")]);
    p.call("chdir", [p.cstring("/nonexistent-hako-dir")]);
    p.call("execve", [p.cstring("/bin/true"), p.cstrings(["true"]), p.cstrings([])]);
  });
  assertEquals(r.records, [{ ready: false, op: 1, errno: 2 }]);
  assertEquals(r.code, 126);
}, { skip });

test("onErrno rules jump over ops; a result other than the expected one is reported with errno 0", () => {
  const r = runProgram((p) => {
    const on = p.label();
    p.call("chdir", [p.cstring("/nonexistent-hako-dir")], { onErrno: [[13, on], [2, on]] });
    p.call("chdir", [p.cstring("/nonexistent-too")]); // jumped over
    p.place(on);
    const fd = p.slot();
    p.call("openat", [AT_FDCWD, p.cstring("/dev/null"), 0, 0], { store: fd });
    p.call("read", [p.value(fd), p.bytes(new Uint8Array(8)), 1], { expect: 1 }); // EOF: 0 bytes
  });
  assertEquals(r.records, [{ ready: false, op: 3, errno: 0 }]);
  assertEquals(r.code, 126);
}, { skip });

test("a slot carries one call's result into the next; running off the end exits 0", () => {
  using dir = tempDir();
  const file = join(dir.path, "out");
  const r = runProgram((p) => {
    const fd = p.slot();
    p.call("openat", [AT_FDCWD, p.cstring(file), O_WRONLY_CREAT_CLOEXEC, 0o644], { store: fd });
    p.call("write", [p.value(fd), p.bytes(new TextEncoder().encode("hello")), 5], { expect: 5 });
    p.call("close", [p.value(fd)]);
  });
  assertEquals(r.records, []);
  assertEquals(r.code, 0);
  assertEquals(readFileSync(file, "utf8"), "hello");
}, { skip });

test("remountReadonly makes a mount read-only and keeps its nosuid and nodev (in a new mount namespace)", () => {
  using dir = tempDir();
  const mnt = join(dir.path, "mnt");
  execFileSync("mkdir", [mnt]);
  const out = join(dir.path, "mountinfo");
  const MS_NOSUID = 2, MS_NODEV = 4, MS_REC = 0x4000, MS_PRIVATE = 0x40000;
  const r = runProgram((p) => {
    p.call("mount", [null, p.cstring("/"), null, MS_REC | MS_PRIVATE, null]);
    p.call("mount", [p.cstring("tmpfs"), p.cstring(mnt), p.cstring("tmpfs"), MS_NOSUID | MS_NODEV, null]);
    p.remountReadonly(p.cstring(mnt), 0x20 | 0x1000 | 0x1); // MS_REMOUNT | MS_BIND | MS_RDONLY
    p.call("execve", [
      p.cstring("/bin/sh"),
      p.cstrings(["sh", "-c", `grep ' ${mnt} ' /proc/self/mountinfo > ${out}`]),
      p.cstrings([]),
    ]);
  }, 0x00020000 /* CLONE_NEWNS */);
  assertEquals(r.code, 0, `records ${JSON.stringify(r.records)}`);
  const opts = readFileSync(out, "utf8").split(" ")[5]!.split(",");
  for (const o of ["ro", "nosuid", "nodev"]) assert(opts.includes(o), `${o} in ${opts}`);
  assert(!existsSync(join(mnt, "x")), "the host never saw the tmpfs");
}, { skip });

/** A busybox rootfs in a temp dir and a spec builder for it. */
function box(): { rootfs: string; spec: (s: Partial<ContainerSpec>) => ContainerSpec } & Disposable {
  const dir = tempDir();
  chmodSync(dir.path, 0o755);
  const rootfs = join(dir.path, "rootfs");
  let n = 0;
  return {
    rootfs,
    spec: (s) => ({
      name: `hako-spawn-${process.pid}-${++n}`,
      rootfs: { builder: "busybox", path: rootfs },
      command: ["sleep", "30"],
      ...s,
    }),
    [Symbol.dispose]: () => dir[Symbol.dispose](),
  };
}

/** Creates a container with the native child (true) or the forked one (false). */
async function createWith(native: boolean, spec: ContainerSpec): Promise<Container> {
  const before = process.env.HAKO_NATIVE_SPAWN;
  process.env.HAKO_NATIVE_SPAWN = native ? "1" : "0";
  const count = nativeChildren.count;
  try {
    const c = await Container.create(spec);
    try {
      assertEquals(nativeChildren.count - count, native ? 1 : 0, "containers given a native child");
    } catch (e) {
      c.delete();
      throw e;
    }
    return c;
  } finally {
    if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
    else process.env.HAKO_NATIVE_SPAWN = before;
  }
}

/** What the outside sees of a running container's process: credentials, signals, mounts. */
function outsideView(pid: number) {
  const status = procFile(pid, "status");
  const fields = [
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
    "SigBlk",
    "SigIgn",
    "SigCgt",
  ];
  const mounts = procFile(pid, "mountinfo").trim().split("\n").map((l) => {
    const f = l.split(" ");
    const dash = f.indexOf("-");
    return `${f[4]} ${f[5]} ${f.slice(dash + 1, dash + 2).join(" ")}`;
  });
  return {
    status: Object.fromEntries(fields.map((k) => [k, statusField(status, k)])),
    mounts,
    limits: procFile(pid, "limits"),
    cmdline: procFile(pid, "cmdline"),
  };
}

test(
  "a native container looks, from outside, exactly like a forked one (credentials, signals, mounts, limits)",
  async () => {
    using b = box();
    const spec = (n: string) =>
      b.spec({
        name: n,
        namespaces: ["pid", "uts", "ipc", "mount", "net"],
        hostname: "same",
        user: { uid: 1000, gid: 1000, groups: [1000, 10] },
        capabilities: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"], // neither CAP_SETUID nor CAP_SETGID
        rlimits: { nofile: [512, 1024] },
        readonlyRootfs: true,
        workdir: "/tmp",
        stdio: "null",
      });
    const views = [];
    for (const native of [true, false]) {
      const c = await createWith(native, spec(`hako-spawn-${process.pid}-${native ? "native" : "fork"}`));
      try {
        await c.start();
        await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "the exec of sleep");
        views.push(outsideView(c.pid));
        assertEquals(readFileSync(`/proc/${c.pid}/root/etc/hostname`, "utf8"), "same\n");
      } finally {
        c.delete();
      }
    }
    assertEquals(views[0], views[1]);
    assertEquals(views[0]!.status.SigBlk, "0000000000000000");
    assertEquals(views[0]!.status.SigIgn, "0000000000000000");
    assertEquals(views[0]!.status.Seccomp, "2");
    // user 1000 gets the listed capabilities in its ambient set (podman's rule), so they are
    // effective after the exec; the kept ones bound what it may ever get
    assertEquals(views[0]!.status.CapBnd, "0000000000000401");
    assertEquals(views[0]!.status.CapInh, "0000000000000401");
    assertEquals(views[0]!.status.CapAmb, "0000000000000401");
    assertEquals(views[0]!.status.CapEff, "0000000000000401");
    assertEquals(views[0]!.status.Uid, "1000\t1000\t1000\t1000");
  },
  { skip: skipBox },
);

test(
  "in a user namespace with the spec's own mounts, a native container looks like a forked one; it makes missing mount points as root inside",
  async () => {
    using dir = tempDir();
    chmodSync(dir.path, 0o755);
    const BASE = 310000;
    const src = buildRootfs(join(dir.path, "src"), { builder: "busybox" }).path;
    const tarball = join(dir.path, "image.tar.gz");
    execFileSync("tar", ["-C", src, "-czf", tarball, "."]);
    const rootfs = join(dir.path, "rootfs");
    const data = join(dir.path, "data");
    mkdirSync(data);
    const motd = join(dir.path, "motd");
    writeFileSync(motd, "hi\n");
    const spec = (name: string): ContainerSpec => ({
      name,
      rootfs: { tarball, path: rootfs, owner: { uid: BASE } },
      command: ["sleep", "30"],
      user: { uid: 48, gid: 48 },
      namespaces: ["pid", "ipc", "uts", "mount", "user"],
      idMap: { uid: { inside: 0, outside: BASE, size: 100 }, gid: { inside: 0, outside: BASE, size: 100 } },
      mounts: [
        { type: "tmpfs", target: "/tmp", options: ["mode=1777", "nosuid"] },
        { type: "bind", source: data, target: "/mnt/data" },
        { type: "bind", source: motd, target: "/etc/motd", readonly: true },
      ],
      networkEtc: "host",
      stdio: "null",
    });
    const views = [];
    for (const native of [true, false]) {
      const c = await createWith(native, spec(`hako-spawn-${process.pid}-userns-${native}`));
      try {
        await c.start();
        await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "the exec of sleep");
        views.push(outsideView(c.pid));
      } finally {
        c.delete();
      }
      if (native) {
        // made by the native child, as root inside: BASE outside
        assertEquals(statSync(join(rootfs, "mnt/data")).uid, BASE);
        assertEquals(statSync(join(rootfs, "etc/motd")).uid, BASE);
      }
    }
    assertEquals(views[0], views[1]);
    // root of the new user namespace starts with a full bounding set: it is cut to the kept list
    assertEquals(views[0]!.status.CapBnd, views[0]!.status.CapInh);
    const mounts = views[0]!.mounts.join("\n");
    assert(/^\/tmp \S*nosuid\S* tmpfs$/m.test(mounts), mounts);
    assert(/^\/etc\/motd ro,/m.test(mounts), mounts);
    assert(/^\/mnt\/data rw,/m.test(mounts), mounts);
  },
  { skip: skipBox },
);

test("a native child's failed step is reported like a forked child's: the step, the call and errno", async () => {
  using b = box();
  const messages = [];
  for (const native of [true, false]) {
    let err: unknown;
    try {
      const c = await createWith(native, b.spec({ workdir: "/nonexistent-dir", command: ["true"] }));
      c.delete();
    } catch (e) {
      err = e;
    }
    assert(err instanceof SetupError, `got ${err}`);
    messages.push([err.step, err.message]);
  }
  assertEquals(messages[0], messages[1]);
  assertEquals(messages[0]![0], "workdir");
  assert(messages[0]![1]!.includes("ENOENT"), messages[0]![1]);
}, { skip: skipBox });

test("a native child finds its command in PATH inside the container, and names it when it is missing", async () => {
  using b = box();
  const ok = await createWith(true, b.spec({ command: ["sh", "-c", "exit 3"], env: { PATH: "/nowhere:/bin" } }));
  try {
    await ok.start();
    assertEquals((await ok.wait()).code, 3);
  } finally {
    ok.delete();
  }
  const missing = await createWith(true, b.spec({ command: ["no-such-command"] }));
  let err: unknown;
  try {
    await missing.start();
  } catch (e) {
    err = e;
  } finally {
    missing.delete();
  }
  assert(err instanceof SetupError && err.step === "exec", `got ${err}`);
  assert(err.message.includes("no-such-command") && err.message.includes("ENOENT"), err.message);
}, { skip: skipBox });

test("HAKO_NATIVE_SPAWN=0 turns the native child off", () => {
  const before = process.env.HAKO_NATIVE_SPAWN;
  process.env.HAKO_NATIVE_SPAWN = "0";
  try {
    assertEquals(nativeSpawnSupported(), false);
  } finally {
    if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
    else process.env.HAKO_NATIVE_SPAWN = before;
  }
}, { skip: noRunner });

test("a time namespace is the container's own, native or forked, and execIn joins it", async () => {
  using b = box();
  for (const native of [true, false]) {
    const c = await createWith(native, b.spec({ namespaces: ["mount", "pid", "uts", "time"], stdio: "null" }));
    try {
      await c.start();
      await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "the exec of sleep");
      const theirs = readlinkSync(`/proc/${c.pid}/ns/time`);
      assert(theirs !== readlinkSync("/proc/self/ns/time"), `the host's time namespace: ${theirs}`);
      using dir = tempDir();
      const out = join(dir.path, "out");
      const fd = openSync(out, "w");
      try {
        const st = await execIn(c.pid, { argv: ["readlink", "/proc/self/ns/time"], spec: c.spec, stdout: fd });
        assertEquals(st.code, 0);
      } finally {
        closeSync(fd);
      }
      assertEquals(readFileSync(out, "utf8").trim(), theirs);
    } finally {
      c.delete();
    }
  }
}, { skip: skipBox });

test("a provision hook runs even when a container of the same spec without it has a cached program", async () => {
  using b = box();
  const spec = (extra: Partial<ContainerSpec>) =>
    b.spec({ name: `hako-spawn-${process.pid}-kind`, command: ["true"], ...extra });
  for (let i = 0; i < 3; i++) await run(spec({})); // the program of this kind is cached from the second on
  await run(spec({ hooks: { provision: "touch /provisioned" } }));
  assert(existsSync(join(b.rootfs, "provisioned")), "the provision hook did not run");
}, { skip: skipBox });

test(
  "spawnProgramInto: the native child is born in the cgroup2 directory given (clone3's CLONE_INTO_CGROUP); a directory it cannot use gives undefined",
  () => {
    const unified = cgroupLayout()?.unified;
    if (!unified) return; // (skipped below)
    const name = `hako-test-into-${process.pid}`;
    const dir = join(unified, name);
    mkdirSync(dir);
    atEnd(() => {
      try {
        rmdirSync(dir);
      } catch { /* gone */ }
    });
    using t = tempDir();
    const out = join(t.path, "cgroup");
    const { pipe2, close, open, waitpid } = libc();
    // (the child writes its /proc/self/cgroup to a file)
    const p = new SyscallProgram();
    const fd = p.slot(), n = p.slot(), o = p.slot();
    const buf = p.bytes(new Uint8Array(4096));
    p.call("openat", [AT_FDCWD, p.cstring("/proc/self/cgroup"), O_CLOEXEC, 0], { store: fd });
    p.call("read", [p.value(fd), buf, 4096], { store: n });
    p.call("openat", [AT_FDCWD, p.cstring(out), O_WRONLY_CREAT_CLOEXEC, 0o644], { store: o });
    p.call("write", [p.value(o), buf, p.value(n)]);
    const fds = new Int32Array(2);
    pipe2(fds, O_CLOEXEC);
    const built = p.build();
    built.reportTo(fds[1]!);
    const O_DIRECTORY = 0o200000;
    const cg = open(new TextEncoder().encode(`${dir}\0`), O_CLOEXEC | O_DIRECTORY, 0);
    const other = open(new TextEncoder().encode(`${t.path}\0`), O_CLOEXEC | O_DIRECTORY, 0);
    try {
      assert(cg >= 0 && other >= 0);
      if (process.arch !== "x64") {
        assertEquals(spawnProgramInto(built, 0, cg), undefined, "x86-64 only so far");
        return;
      }
      // (not a cgroup2 directory: clone3 refuses it, and the caller clones as before)
      assertEquals(spawnProgramInto(built, 0, other), undefined);
      const pid = spawnProgramInto(built, 0, cg);
      assert(pid !== undefined && pid > 0, "clone3 with CLONE_INTO_CGROUP");
      const st = new Int32Array(1);
      waitpid(pid, st, 0);
      assertEquals((st[0]! >> 8) & 0xff, 0);
      const lines = readFileSync(out, "utf8").split("\n");
      assert(lines.includes(`0::/${name}`), lines.join(" | "));
    } finally {
      close(cg), close(other), close(fds[0]!), close(fds[1]!);
    }
  },
  { skip: skip || (!cgroupLayout()?.unified && "needs a cgroup2 tree (v2, or a hybrid host's)") },
);

function cgroupLayout() {
  try {
    return detect();
  } catch {
    return undefined;
  }
}
