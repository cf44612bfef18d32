import process from "node:process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals, assertThrows, needsRoot, tempDir, test } from "./_harness.ts";
import { afterExec, killAndReap, statusField } from "./_proc.ts";
import { Capability, ConfigError, Mount, Namespace, Process, SyscallError } from "../mod.ts";
import { errno, libc } from "../ffi/libc.ts";
import { ARCH } from "../ffi/syscalls.ts";
import { run } from "../src/container/container.ts";
import { planContainer } from "../src/container/plan.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import type { ContainerSpec } from "../src/container/spec.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";
import {
  AUDIT_ARCH,
  compileSeccomp,
  decodeSeccomp,
  DEFAULT_SECCOMP_PROFILE,
  loadSeccomp,
  type SeccompProfile,
  syscallNumber,
} from "../src/seccomp.ts";

const EPERM = 1;

/** Forks a child that sets no_new_privs, loads `filter`, then runs `fn`; returns its exit code. */
function inFilteredChild(filter: SeccompProfile | Uint8Array, fn: () => void): number | null {
  const pid = Process.fork(() => {
    Capability.noNewPrivs();
    loadSeccomp(filter);
    fn();
  });
  return Process.waitpid2(pid).status.code;
}

/** Exit code `code` unless `fn` throws a SyscallError with errno EPERM. */
function expectEperm(fn: () => unknown, code: number): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof SyscallError && e.errno === EPERM) return;
    Process._exit(code + 100);
  }
  Process._exit(code);
}

test("syscallNumber() knows the x86_64 and the asm-generic (aarch64) numbers apart", () => {
  assertEquals(syscallNumber("mkdirat", "x86_64"), 258);
  assertEquals(syscallNumber("mkdirat", "aarch64"), 34);
  assertEquals(syscallNumber("clone", "x86_64"), 56);
  assertEquals(syscallNumber("clone", "aarch64"), 220);
  assertEquals(syscallNumber("seccomp", "x86_64"), 317);
  assertEquals(syscallNumber("seccomp", "aarch64"), 277);
  assertEquals(syscallNumber("unshare", "aarch64"), 97);
  assertEquals(syscallNumber("mount", "x86_64"), 165);
  assertEquals(syscallNumber("mount", "aarch64"), 40);
  assertEquals(syscallNumber("clone3", "x86_64"), 435);
  assertEquals(syscallNumber("clone3", "aarch64"), 435);
  assertEquals(syscallNumber("newfstatat", "aarch64"), 79);
  assertEquals(syscallNumber("mkdir", "aarch64"), undefined, "asm-generic has only mkdirat");
  assertEquals(syscallNumber("toString", "x86_64"), undefined, "no prototype names");
});

test("an unknown syscall name is a ConfigError naming its field path, before anything is loaded", () => {
  const profile: SeccompProfile = {
    defaultAction: "allow",
    syscalls: [
      { names: ["getpid"], action: "allow" },
      { names: ["mkdir"], action: "errno" },
      { names: ["fooo"], action: "kill" },
    ],
  };
  assertThrows(
    () => compileSeccomp(profile, "x86_64"),
    ConfigError,
    /^seccomp\.syscalls\[2\]\.names\[0\]: unknown syscall "fooo" on x86_64$/,
  );
  assertThrows(() => loadSeccomp(profile), ConfigError, /unknown syscall "fooo"/);
  assertThrows(
    () => compileSeccomp(profile, "aarch64"),
    ConfigError,
    /syscalls\[1\]\.names\[0\]: unknown syscall "mkdir" on aarch64/,
  );
  assertThrows(
    () =>
      compileSeccomp({
        defaultAction: "allow",
        syscalls: [{ names: ["socket"], action: "errno", args: [{ index: 6, op: "eq", value: 1 }] }],
      }),
    ConfigError,
    /seccomp\.syscalls\[0\]\.args\[0\]\.index: must be 0\.\.5/,
  );
  assertThrows(
    () => compileSeccomp({ defaultAction: "nope" as "allow", syscalls: [] }),
    ConfigError,
    /seccomp\.defaultAction: must be one of/,
  );
});

test("compileSeccomp() checks the arch first (kill on mismatch) for x86_64 and aarch64, and x32 on x86_64", () => {
  for (const arch of ["x86_64", "aarch64"] as const) {
    const ins = decodeSeccomp(compileSeccomp(DEFAULT_SECCOMP_PROFILE, arch));
    assert(ins.length > 10 && ins.length <= 4096, `${arch}: ${ins.length} instructions`);
    assertEquals(ins[0], { code: 0x20, jt: 0, jf: 0, k: 4 }, `${arch}: load arch`);
    assertEquals(ins[1], { code: 0x15, jt: 1, jf: 0, k: AUDIT_ARCH[arch] }, `${arch}: compare arch`);
    assertEquals(ins[2], { code: 0x06, jt: 0, jf: 0, k: 0x80000000 }, `${arch}: kill the process`);
    assertEquals(ins[3], { code: 0x20, jt: 0, jf: 0, k: 0 }, `${arch}: load nr`);
    assertEquals(ins.at(-1), { code: 0x06, jt: 0, jf: 0, k: 0x7fff0000 }, `${arch}: default allow`);
    const x32 = ins.some((i) => i.code === 0x35 && i.k === 0x40000000);
    assertEquals(x32, arch === "x86_64", `${arch}: x32 check`);
    const clone = syscallNumber("clone", arch)!;
    assert(ins.some((i) => i.code === 0x15 && i.k === clone), `${arch}: clone rule`);
  }
  assertEquals(AUDIT_ARCH.aarch64, 0xc00000b7);
  assertEquals(AUDIT_ARCH.x86_64, 0xc000003e);
});

test("a program from compileSeccomp() keeps every jump inside the program", () => {
  const program = decodeSeccomp(compileSeccomp(DEFAULT_SECCOMP_PROFILE, "x86_64"));
  program.forEach((ins, i) => {
    if ((ins.code & 0x07) === 0x05) {
      assert(i + 1 + ins.jt < program.length && i + 1 + ins.jf < program.length, `jump ${i} leaves the program`);
    }
  });
});

test("the default profile shows as Seccomp: 2 with one filter after exec", async () => {
  const pid = Process.fork(() => {
    Capability.noNewPrivs();
    loadSeccomp(DEFAULT_SECCOMP_PROFILE);
    Process.exec("sleep", "10");
  });
  try {
    const status = await afterExec(pid, "sleep");
    assertEquals(statusField(status, "Seccomp"), "2");
    assertEquals(statusField(status, "Seccomp_filters"), "1");
  } finally {
    killAndReap(pid);
  }
}, { skip: needsRoot });

test("the default profile refuses unshare, mount and namespace clones with EPERM, and allows a plain fork", () => {
  const dir = mkdtempSync(join(tmpdir(), "hako-seccomp-"));
  try {
    assertEquals(
      inFilteredChild(DEFAULT_SECCOMP_PROFILE, () => expectEperm(() => Namespace.unshare(["uts"]), 0)),
      0,
      "unshare",
    );
    assertEquals(
      inFilteredChild(
        DEFAULT_SECCOMP_PROFILE,
        () => expectEperm(() => Mount.mount("tmpfs", dir, { type: "tmpfs" }), 0),
      ),
      0,
      "mount",
    );
    assertEquals(
      inFilteredChild(
        DEFAULT_SECCOMP_PROFILE,
        () => expectEperm(() => Process.fork({ namespaces: ["uts"] }, () => {}), 0),
      ),
      0,
      "clone(CLONE_NEWUTS)",
    );
    assertEquals(
      inFilteredChild(DEFAULT_SECCOMP_PROFILE, () => {
        const child = Process.fork(() => Process._exit(7));
        Process._exit(Process.waitpid2(child).status.code === 7 ? 0 : 1);
      }),
      0,
      "plain fork",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, { skip: needsRoot });

test("the default profile refuses personality() beyond docker's values and answers clone3 with ENOSYS", () => {
  const ENOSYS = 38, ADDR_NO_RANDOMIZE = 0x0040000;
  const code = inFilteredChild(DEFAULT_SECCOMP_PROFILE, () => {
    const { syscall } = libc();
    const call = (name: string, a0: bigint, a1 = 0n) => {
      const r = syscall(BigInt(syscallNumber(name)!), a0, a1, 0n, 0n, 0n);
      return r === -1n ? errno() : 0;
    };
    if (call("personality", 0xffffffffn) !== 0) Process._exit(2);
    if (call("personality", BigInt(ADDR_NO_RANDOMIZE)) !== EPERM) Process._exit(3);
    if (call("clone3", 0n, 0n) !== ENOSYS) Process._exit(4); // clone3(NULL, 0) would be EINVAL unfiltered
    Process._exit(0);
  });
  assertEquals(code, 0);
}, { skip: needsRoot });

test("under the default profile ordinary programs run and `unshare -U true` fails", () => {
  const run = (cmd: string) => inFilteredChild(DEFAULT_SECCOMP_PROFILE, () => Process.exec("/bin/sh", "-c", cmd));
  assertEquals(run("echo ok >/dev/null && ls / >/dev/null"), 0);
  assert(run("unshare -U true 2>/dev/null") !== 0, "unshare -U true succeeded");
}, { skip: needsRoot });

test("a custom profile makes mkdir fail with EPERM while the rest works", () => {
  const dir = mkdtempSync(join(tmpdir(), "hako-seccomp-"));
  try {
    const target = join(dir, "refused");
    const profile: SeccompProfile = {
      defaultAction: "allow",
      syscalls: [{ names: ["mkdir", "mkdirat"], action: "errno", errno: EPERM }],
    };
    assert(
      inFilteredChild(profile, () => Process.exec("/bin/sh", "-c", `mkdir ${target} 2>/dev/null`)) !== 0,
      "mkdir ran",
    );
    assert(!existsSync(target), "the directory was made");
    assertEquals(inFilteredChild(profile, () => Process.exec("/bin/sh", "-c", "echo ok >/dev/null")), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, { skip: needsRoot });

test("an argument rule refuses socket(AF_INET6) with EPERM while socket(AF_INET) works", () => {
  const AF_INET = 2, AF_INET6 = 10, SOCK_DGRAM = 2;
  const profile: SeccompProfile = {
    defaultAction: "allow",
    syscalls: [{ names: ["socket"], action: "errno", errno: EPERM, args: [{ index: 0, op: "eq", value: AF_INET6 }] }],
  };
  const code = inFilteredChild(profile, () => {
    const { socket, close } = libc();
    const v6 = socket(AF_INET6, SOCK_DGRAM, 0);
    const e = v6 === -1 ? errno() : 0;
    if (v6 !== -1 || e !== EPERM) Process._exit(2);
    const v4 = socket(AF_INET, SOCK_DGRAM, 0);
    if (v4 === -1) Process._exit(3);
    close(v4);
    Process._exit(0);
  });
  assertEquals(code, 0);
}, { skip: needsRoot });

test("argument comparisons are unsigned 64-bit: lt, le, gt, ge, ne and masked_eq", () => {
  // personality(2) returns the old persona, so it probes arg0 without side effects worth keeping
  // (0xffffffff only queries).
  const QUERY = 0xffffffff;
  const cases: Array<[SeccompProfile["syscalls"][number]["args"], number, boolean]> = [
    [[{ index: 0, op: "lt", value: 0x100000000 }], QUERY, true],
    [[{ index: 0, op: "gt", value: 0xfffffffe }], QUERY, true],
    [[{ index: 0, op: "gt", value: QUERY }], QUERY, false],
    [[{ index: 0, op: "ge", value: QUERY }], QUERY, true],
    [[{ index: 0, op: "le", value: 0xfffffffe }], QUERY, false],
    [[{ index: 0, op: "ne", value: QUERY }], QUERY, false],
    [[{ index: 0, op: "ne", value: 0x1ffffffff }], QUERY, true],
    [[{ index: 0, op: "masked_eq", value: 0xff, valueTwo: 0xff }], QUERY, true],
    [[{ index: 0, op: "masked_eq", value: 0x1_0000_0000n, valueTwo: 0 }], QUERY, true],
  ];
  cases.forEach(([args, value, refused], i) => {
    const profile: SeccompProfile = {
      defaultAction: "allow",
      syscalls: [{ names: ["personality"], action: "errno", errno: EPERM, ...(args ? { args } : {}) }],
    };
    const nr = BigInt(syscallNumber("personality")!);
    const code = inFilteredChild(profile, () => {
      const r = libc().syscall(nr, BigInt(value), 0n, 0n, 0n, 0n);
      const e = r === -1n ? errno() : 0;
      Process._exit(e === EPERM ? 1 : 0);
    });
    assertEquals(
      code,
      refused ? 1 : 0,
      `case ${i}: ${JSON.stringify(args, (_, v) => typeof v === "bigint" ? `${v}n` : v)}`,
    );
  });
}, { skip: needsRoot });

test("loadSeccomp() without no_new_privs or CAP_SYS_ADMIN fails with EACCES", () => {
  const pid = Process.fork(() => {
    Capability.keep([]);
    try {
      loadSeccomp(DEFAULT_SECCOMP_PROFILE);
    } catch (e) {
      Process._exit(e instanceof SyscallError && e.code === "EACCES" ? 0 : 2);
    }
    Process._exit(3);
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
}, { skip: needsRoot });

test("a container spec validates its seccomp profile with field paths and resolves the default", () => {
  const base: ContainerSpec = { name: "seccomp-spec", rootfs: "/srv/x", command: "true" };
  assertEquals(resolveSpec(base).seccomp, DEFAULT_SECCOMP_PROFILE);
  assertEquals(resolveSpec({ ...base, seccomp: "default" }).seccomp, DEFAULT_SECCOMP_PROFILE);
  assertEquals(resolveSpec({ ...base, seccomp: false }).seccomp, false);
  const e = assertThrows(
    () =>
      resolveSpec({ ...base, seccomp: { defaultAction: "allow", syscalls: [{ names: ["fooo"], action: "errno" }] } }),
    SpecError,
  );
  assertEquals(e.problems, [{ path: "seccomp.syscalls[0].names[0]", message: `unknown syscall "fooo" on ${ARCH}` }]);
  assertThrows(() => resolveSpec({ ...base, noNewPrivs: false }), SpecError, /^seccomp: .*noNewPrivs/);
  resolveSpec({ ...base, noNewPrivs: false, seccomp: false });
  const plan = planContainer(base).steps.map((s) => s.name);
  assertEquals(plan.slice(-3), ["no-new-privs", "seccomp", "exec"]);
});

const containerSkip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

/** A spec for a busybox container in a fresh temp dir. */
function boxSpec(dir: string, s: Partial<ContainerSpec>): ContainerSpec {
  chmodSync(dir, 0o755);
  return {
    name: `hako-seccomp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    rootfs: { builder: "busybox", path: join(dir, "rootfs") },
    command: "true",
    ...s,
  };
}

test("a container runs under the default seccomp profile: Seccomp: 2, and unshare -U fails", async () => {
  using dir = tempDir();
  const script =
    "grep -Eq '^Seccomp:[[:space:]]+2$' /proc/self/status || exit 3; unshare -U true 2>/dev/null && exit 4; exit 0";
  assertEquals((await run(boxSpec(dir.path, { command: ["sh", "-c", script] }))).code, 0);
}, { skip: containerSkip });

test(
  "a container with seccomp: false has no filter (unshare -U works), and one with its own profile gets that profile",
  async () => {
    using dir = tempDir();
    const none = "grep -Eq '^Seccomp:[[:space:]]+0$' /proc/self/status && unshare -U true";
    assertEquals((await run(boxSpec(dir.path, { command: ["sh", "-c", none], seccomp: false }))).code, 0);
    const own: SeccompProfile = {
      defaultAction: "allow",
      syscalls: [{ names: ARCH === "x86_64" ? ["mkdir", "mkdirat"] : ["mkdirat"], action: "errno", errno: EPERM }],
    };
    const script = "mkdir /tmp/refused 2>/dev/null && exit 3; [ -d /tmp/refused ] && exit 4; exit 0";
    assertEquals((await run(boxSpec(dir.path, { command: ["sh", "-c", script], seccomp: own }))).code, 0);
  },
  { skip: containerSkip },
);
