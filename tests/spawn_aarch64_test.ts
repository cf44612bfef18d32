/**
 * The aarch64 runner's machine code (RUNNER_AARCH64_HEX, ffi/spawn_aarch64.S), run under user-mode
 * emulation: a static harness (tests/fixtures/runner_harness.c, `aarch64-linux-gnu-gcc -static`)
 * maps the runner's bytes and a program image (SyscallProgram.image, for a fixed base address) and
 * runs them under qemu-aarch64-static. The same programs run through the x86-64 runner natively
 * (the harness built with gcc), and the two must report the same records and leave the same files.
 * On an aarch64 host the harness is built with its own gcc and runs natively, without qemu (that
 * mode has never run: hako has had no aarch64 host).
 *
 * What user-mode emulation cannot show: qemu-user emulates the instructions and forwards the
 * system calls to the host's (x86-64) kernel. Covered here: write, read, openat, mkdirat,
 * symlinkat, close, a failing call's ERR! record, onErrno jumps, expect checks, jumps, arguments
 * read through a slot or program data, a clone without namespaces (qemu runs it as a fork) with
 * the child's pid stored, remount-readonly's statfs → MS_* mapping (mount inside `unshare -m`,
 * as root), and execve with its argv (of /bin/sh, a host binary qemu hands to the kernel, and of
 * the static aarch64 harness through qemu-aarch64-static), and Process.spawn's program (signals
 * reset, then execve; qemu moves the guest's realtime signals onto other host signals, so only
 * signals 1-31 are checked under it). Not covered: a clone with namespace
 * flags (qemu-user refuses them: EINVAL, checked below), CLONE_VM (qemu allows it only for
 * threads), pivot_root, seccomp, capset in the emulated process; and nothing here ran on aarch64
 * hardware.
 * @module
 */
import process from "node:process";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, needsRoot, tempDir, test } from "./_harness.ts";
import { AT_FDCWD } from "../ffi/constants.ts";
import {
  parseReport,
  pidRecord,
  type ProgramReport,
  readyRecord,
  REPORT_BYTES,
  type RunnerArch,
  runnerHex,
  SyscallProgram,
} from "../ffi/spawn.ts";
import { which } from "../src/process.ts";

const QEMU = "qemu-aarch64-static";
/** On an aarch64 host the harness runs natively, without qemu (that mode has not run yet: no such host). */
const emulated = process.arch !== "arm64";
const A64_GCC = emulated ? "aarch64-linux-gnu-gcc" : "gcc";
/** How the aarch64 runner runs here, for the tests' names. */
const WHERE = emulated ? "qemu" : "native";
const skip = (emulated && !which(QEMU) && `needs ${QEMU} (apt-get install qemu-user-static)`) ||
  (!which(A64_GCC) && `needs ${A64_GCC} (apt-get install ${emulated ? "gcc-aarch64-linux-gnu" : "gcc"})`);
/** The x86-64 runner runs natively beside it where this is x86-64 and gcc can build the harness. */
const native = process.arch === "x64" && which("gcc") !== undefined;
const archs: RunnerArch[] = native ? ["aarch64", "x86_64"] : ["aarch64"];

/** Where both runners' programs are loaded (below 39 bits: any aarch64 kernel's user space). */
const BASE = 0x40_0000_0000n;
const O_RDONLY = 0, O_WRONLY_CREAT = 0o1 | 0o100, O_CLOEXEC = 0o2000000;
const ENOENT = 2, EACCES = 13, EINVAL = 22;

/** The harnesses and the runners' bytes, built into `dir` (a test's temp dir). */
interface Harness {
  readonly harness: Record<RunnerArch, string>;
  readonly runner: Record<RunnerArch, string>;
}

function buildHarness(dir: string, only: readonly RunnerArch[]): Harness {
  const src = fileURLToPath(new URL("./fixtures/runner_harness.c", import.meta.url));
  const harness = { aarch64: join(dir, "harness-aarch64"), x86_64: join(dir, "harness-x86_64") };
  const runner = { aarch64: join(dir, "runner-aarch64.bin"), x86_64: join(dir, "runner-x86_64.bin") };
  for (const a of only) {
    execFileSync(a === "aarch64" ? A64_GCC : "gcc", ["-static", "-O2", "-o", harness[a], src]);
    writeFileSync(runner[a], Buffer.from(runnerHex(a), "hex"));
  }
  return { harness, runner };
}

interface Run {
  readonly records: Array<ProgramReport | undefined>;
  /** Bytes after the records that are not one (what an exec'd command printed). */
  readonly rest: string;
  readonly code: number | null;
  readonly stderr: string;
}

/**
 * Builds a program with `make(p, dir, arch, harness)` (report fd: stdout) for each architecture, in a
 * directory of its own, and runs it through that runner; `wrap` prefixes the command (unshare).
 */
function runEach(
  make: (p: SyscallProgram, dir: string, arch: RunnerArch, h: Harness) => void,
  check: (r: Run, dir: string, arch: RunnerArch) => void,
  wrap: string[] = [],
  only: readonly RunnerArch[] = archs,
): Run[] {
  using tmp = tempDir("hako-test-a64-");
  const h = buildHarness(tmp.path, only);
  return only.map((arch) => {
    const dir = join(tmp.path, arch);
    mkdirSync(dir);
    const p = new SyscallProgram();
    make(p, dir, arch, h);
    const image = join(dir, "program.img");
    writeFileSync(image, p.image(BASE, arch, 1));
    const cmd = [
      ...wrap,
      ...(arch === "aarch64" && emulated ? [QEMU] : []),
      h.harness[arch],
      h.runner[arch],
      image,
      BASE.toString(16),
    ];
    const out = spawnSync(cmd[0]!, cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
    const bytes = new Uint8Array(out.stdout);
    const records: Array<ProgramReport | undefined> = [];
    let i = 0;
    for (; i + REPORT_BYTES <= bytes.length; i += REPORT_BYTES) {
      const r = parseReport(bytes.subarray(i, i + REPORT_BYTES));
      if (!r) break;
      records.push(r);
    }
    const r = {
      records,
      rest: new TextDecoder().decode(bytes.subarray(i)),
      code: out.status,
      stderr: String(out.stderr),
    };
    check(r, dir, arch);
    return r;
  });
}

/** The records and exit codes of both runs are the same (pids told apart from each other). */
function sameReports(runs: Run[]): void {
  const shape = (r: Run) => ({
    records: r.records.map((x) => (x && "pid" in x ? { pid: x.pid > 0 } : x)),
    rest: r.rest,
    code: r.code,
  });
  if (runs.length === 2) assertEquals(shape(runs[0]!), shape(runs[1]!), `aarch64 (${WHERE}) and x86-64 (native) agree`);
}

test(
  `aarch64 runner (${WHERE}): openat, mkdirat, symlinkat, write, read and close, a slot and program data carrying fds`,
  () => {
    const runs = runEach((p, dir) => {
      p.call("mkdirat", [AT_FDCWD, p.cstring(join(dir, "d")), 0o755]);
      p.call("symlinkat", [p.cstring("d"), AT_FDCWD, p.cstring(join(dir, "l"))]);
      const fd = p.slot();
      p.call("openat", [AT_FDCWD, p.cstring(join(dir, "l/f")), O_WRONLY_CREAT | O_CLOEXEC, 0o644], { store: fd });
      p.call("write", [p.value(fd), p.bytes(new TextEncoder().encode("hello")), 5], { expect: 5 });
      p.call("close", [p.value(fd)], { expect: 0 });
      // an fd stored into program data, read back from there (deref of a DataAt)
      const cell = p.bytes(new Uint8Array(16));
      p.call("openat", [AT_FDCWD, p.cstring(join(dir, "d/f")), O_RDONLY | O_CLOEXEC, 0], { store: p.at(cell, 8) });
      const buf = p.bytes(new Uint8Array(8));
      p.call("read", [p.value(p.at(cell, 8)), buf, 8], { expect: 5 });
      const out = p.slot();
      p.call("openat", [AT_FDCWD, p.cstring(join(dir, "copy")), O_WRONLY_CREAT | O_CLOEXEC, 0o600], { store: out });
      p.call("write", [p.value(out), buf, 5], { expect: 5 });
      p.call("write", [1, readyRecord(p), REPORT_BYTES], { expect: REPORT_BYTES });
    }, (r, dir, arch) => {
      assertEquals(r.code, 0, `${arch}: ran off the end (exit 0); ${r.stderr}`);
      assertEquals(r.records, [{ ready: true }], arch);
      assertEquals(readlinkSync(join(dir, "l")), "d", arch);
      assertEquals(readFileSync(join(dir, "d/f"), "utf8"), "hello", arch);
      assertEquals(readFileSync(join(dir, "copy"), "utf8"), "hello", arch);
    });
    sameReports(runs);
  },
  { skip },
);

test(`aarch64 runner (${WHERE}): a failing call writes ERR! with its op index and errno, and exits 126`, () => {
  sameReports(runEach((p, dir) => {
    p.call("mkdirat", [AT_FDCWD, p.cstring(join(dir, "a")), 0o755]);
    p.call("openat", [AT_FDCWD, p.cstring(join(dir, "no/such")), O_RDONLY, 0]);
    p.call("mkdirat", [AT_FDCWD, p.cstring(join(dir, "never")), 0o755]);
  }, (r, dir, arch) => {
    assertEquals(r.records, [{ ready: false, op: 1, errno: ENOENT }], arch);
    assertEquals(r.code, 126, arch);
    assertEquals(spawnSync("test", ["-d", join(dir, "never")]).status, 1, `${arch}: nothing after the failure ran`);
  }));
}, { skip });

test(`aarch64 runner (${WHERE}): onErrno rules jump on, jumps skip ops, and an unexpected result is errno 0`, () => {
  sameReports(runEach((p, dir) => {
    const on = p.label(), over = p.label();
    // (the second rule matches: the errno is compared with both)
    p.call("openat", [AT_FDCWD, p.cstring(join(dir, "missing")), O_RDONLY, 0], {
      onErrno: [[EACCES, over], [ENOENT, on]],
    });
    p.call("mkdirat", [AT_FDCWD, p.cstring(join(dir, "skipped-by-errno")), 0o755]);
    p.place(on);
    p.jump(over);
    p.call("mkdirat", [AT_FDCWD, p.cstring(join(dir, "skipped-by-jump")), 0o755]);
    p.place(over);
    p.call("mkdirat", [AT_FDCWD, p.cstring(join(dir, "reached")), 0o755], { expect: 0 });
    const fd = p.slot();
    p.call("openat", [AT_FDCWD, p.cstring("/dev/null"), O_RDONLY | O_CLOEXEC, 0], { store: fd });
    p.call("read", [p.value(fd), p.bytes(new Uint8Array(8)), 1], { expect: 1 }); // EOF: 0
  }, (r, dir, arch) => {
    assertEquals(r.records, [{ ready: false, op: 6, errno: 0 }], arch);
    assertEquals(r.code, 126, arch);
    const made = ["skipped-by-errno", "skipped-by-jump", "reached"].filter((d) =>
      spawnSync("test", ["-d", join(dir, d)]).status === 0
    );
    assertEquals(made, ["reached"], arch);
  }));
}, { skip });

test(
  `aarch64 runner (${WHERE}): clone without namespaces runs the child at its label on its own stack; the parent stores its pid`,
  () => {
    const SIGCHLD = 17;
    sameReports(runEach((p, dir) => {
      const child = p.label(), end = p.label();
      const record = pidRecord(p);
      p.clone(SIGCHLD, p.stack(), child, p.at(record, 4));
      p.call("write", [1, record, REPORT_BYTES], { expect: REPORT_BYTES });
      p.jump(end);
      p.place(child);
      p.call("mkdirat", [AT_FDCWD, p.cstring(join(dir, "from-child")), 0o755]);
      p.place(end);
    }, (r, dir, arch) => {
      assertEquals(r.code, 0, `${arch}: ${r.stderr}`);
      assertEquals(r.records.length, 1, arch);
      const rec = r.records[0]!;
      assert("pid" in rec && rec.pid > 0, `${arch}: a pid record, got ${JSON.stringify(rec)}`);
      // (the pipe's EOF came after both exited)
      assertEquals(spawnSync("test", ["-d", join(dir, "from-child")]).status, 0, `${arch}: the child ran`);
    }));
  },
  { skip },
);

test(
  `aarch64 runner (${WHERE}): a clone with namespace flags is refused by qemu-user (EINVAL), reported as the op's failure`,
  () => {
    // (what user-mode emulation allows: qemu-user runs a clone without CLONE_VM as a fork and
    // refuses every flag a fork does not take; the x86-64 runner's namespaces are tested natively,
    // tests/spawn_test.ts)
    const CLONE_NEWUTS = 0x04000000, SIGCHLD = 17;
    runEach(
      (p) => {
        const child = p.label();
        p.clone(CLONE_NEWUTS | SIGCHLD, p.stack(), child);
        p.place(child);
      },
      (r) => {
        assertEquals([r.records, r.code], [[{ ready: false, op: 0, errno: EINVAL }], 126], r.stderr);
      },
      [],
      ["aarch64"],
    );
  },
  { skip: skip || (!emulated && "what qemu-user refuses; natively the clone makes the namespace") },
);

test(
  `aarch64 runner (${WHERE}): execve runs a command with its argv (a host /bin/sh, and the static aarch64 harness)`,
  () => {
    sameReports(runEach((p, _dir, arch, h) => {
      p.call("write", [1, readyRecord(p), REPORT_BYTES], { expect: REPORT_BYTES });
      const argv = ["--echo", "7", "hi", "there"];
      if (arch === "aarch64" && emulated) {
        p.call("execve", [p.cstring(which(QEMU)!), p.cstrings([QEMU, h.harness.aarch64, ...argv]), p.cstrings([])]);
      } else {
        p.call("execve", [p.cstring(h.harness[arch]), p.cstrings(["harness", ...argv]), p.cstrings([])]);
      }
    }, (r, _dir, arch) => {
      assertEquals(r.records, [{ ready: true }], arch);
      assertEquals([r.code, r.rest], [7, "hi there\n"], `${arch}: ${r.stderr}`);
    }));
    sameReports(runEach((p) => {
      p.call("execve", [
        p.cstring("/bin/sh"),
        p.cstrings(["sh", "-c", "echo $0 $1; exit 5", "a", "b"]),
        p.cstrings([]),
      ]);
    }, (r, _dir, arch) => {
      assertEquals([r.records, r.code, r.rest], [[], 5, "a b\n"], arch);
    }));
  },
  { skip },
);

test(
  `aarch64 runner (${WHERE}): Process.spawn's program — every signal back to SIG_DFL, the mask emptied, execve — runs`,
  () => {
    runEach((p) => {
      p.resetSignals();
      p.call("execve", [
        p.cstring("/bin/sh"),
        p.cstrings(["sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status"]),
        p.cstrings([]),
      ]);
    }, (r, _dir, arch) => {
      assertEquals([r.records, r.code], [[], 0], `${arch}: ${r.stderr}`);
      const mask = (name: string) => BigInt(`0x${r.rest.match(new RegExp(`^${name}:\\s*([0-9a-f]+)$`, "m"))![1]}`);
      assert(mask("SigBlk") === 0n, `${arch}: nothing blocked (${r.rest.trim()})`);
      // qemu-user moves the guest's realtime signals onto other host signals (it keeps some for
      // itself), so after execve the host's realtime dispositions are not the guest's: an ignored
      // one the parent (deno test) passed down can show up on another number. Under qemu only the
      // standard signals 1-31 are checked; natively, all 64.
      const checked = arch === "aarch64" && emulated ? 0x7fff_ffffn : 0xffff_ffff_ffff_ffffn;
      assert((mask("SigIgn") & checked) === 0n, `${arch}: nothing ignored (${r.rest.trim()})`);
    });
  },
  { skip },
);

test(
  `aarch64 runner (${WHERE}): remount-readonly keeps each mount's flags (statfs → MS_*), in a mount namespace of unshare's`,
  () => {
    const MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_NOATIME = 0x400;
    const MS_RDONLY = 1, MS_REMOUNT = 0x20, MS_BIND = 0x1000;
    const runs = runEach((p, dir) => {
      const a = join(dir, "a"), b = join(dir, "b");
      p.call("mkdirat", [AT_FDCWD, p.cstring(a), 0o755]);
      p.call("mkdirat", [AT_FDCWD, p.cstring(b), 0o755]);
      const tmpfs = p.cstring("tmpfs");
      p.call("mount", [tmpfs, p.cstring(a), tmpfs, MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME, null]);
      p.call("mount", [tmpfs, p.cstring(b), tmpfs, 0, null]); // (relatime, the default)
      p.remountReadonly(p.cstring(a), MS_REMOUNT | MS_BIND | MS_RDONLY);
      p.remountReadonly(p.cstring(b), MS_REMOUNT | MS_BIND | MS_RDONLY);
      const script = `for m in ${a} ${b}; do grep " $m " /proc/self/mountinfo | cut -d' ' -f6; done`;
      p.call("execve", [p.cstring("/bin/sh"), p.cstrings(["sh", "-c", script]), p.cstrings([])]);
    }, (r, _dir, arch) => {
      assertEquals([r.records, r.code], [[], 0], `${arch}: ${r.stderr}`);
      const [a, b] = r.rest.trim().split("\n").map((l) => l.split(","));
      for (const o of ["ro", "nosuid", "nodev", "noexec", "noatime"]) assert(a!.includes(o), `${arch}: ${o} in ${a}`);
      for (const o of ["ro", "relatime"]) assert(b!.includes(o), `${arch}: ${o} in ${b}`);
      assert(!b!.includes("nosuid"), `${arch}: b has no nosuid: ${b}`);
    }, ["unshare", "--mount", "--propagation", "private"]);
    sameReports(runs);
  },
  { skip: skip || needsRoot || (!which("unshare") && "needs unshare (util-linux)") },
);
