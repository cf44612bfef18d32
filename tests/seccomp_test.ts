import process from "node:process";
import { deepEqual, equal, notEqual, ok, throws } from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals, assertThrows, needsRoot, tempDir, test, withSpawn } from "./_harness.ts";
import { afterExec, killAndReap, statusField } from "./_proc.ts";
import { Capability, ConfigError, Mount, Namespace, Process, SyscallError } from "../mod.ts";
import { errno, libc } from "../ffi/libc.ts";
import { ARCH } from "../ffi/syscalls.ts";
import { run } from "../src/container/container.ts";
import { planContainer } from "../src/container/plan.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { type ContainerSpec, DEFAULT_CAPABILITIES } from "../src/container/spec.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";
import { nativeChildren } from "../src/container/native.ts";
import {
  AUDIT_ARCH,
  compileSeccomp,
  decodeSeccomp,
  DEFAULT_SECCOMP_PROFILE,
  loadSeccomp,
  type OciSeccompProfile,
  readSeccompProfile,
  resolveSeccompProfile,
  type SeccompArch,
  type SeccompProfile,
  seccompProfileFromOci,
  syscallNumber,
} from "../src/seccomp.ts";
import { runBpf } from "./_bpf.ts";

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

test("a profile without architectures is checked for the native ABI only: another ABI, or x32, kills the process", () => {
  const profile: SeccompProfile = { defaultAction: "allow", syscalls: [{ names: ["mkdirat"], action: "errno" }] };
  for (const arch of ["x86_64", "aarch64"] as const) {
    const ins = decodeSeccomp(compileSeccomp(profile, arch));
    assertEquals(ins[0], { code: 0x20, jt: 0, jf: 0, k: 4 }, `${arch}: load arch`);
    assertEquals(ins[1], { code: 0x15, jt: 1, jf: 0, k: AUDIT_ARCH[arch] }, `${arch}: compare arch`);
    assertEquals(ins[2], { code: 0x06, jt: 0, jf: 0, k: 0x80000000 }, `${arch}: kill the process`);
    assertEquals(ins[3], { code: 0x20, jt: 0, jf: 0, k: 0 }, `${arch}: load nr`);
    const x32 = ins[4]?.code === 0x35 && ins[4].k === 0x40000000 && ins[5]?.k === 0x80000000;
    assertEquals(x32, arch === "x86_64", `${arch}: x32 numbers kill`);
  }
});

test("the default profile lets x86_64's compat ABIs (i386, x32) and aarch64's (arm) in, each to its own table", () => {
  const x86 = decodeSeccomp(compileSeccomp(DEFAULT_SECCOMP_PROFILE, "x86_64"));
  assertEquals(x86[1], { code: 0x15, jt: 3, jf: 0, k: AUDIT_ARCH.x86_64 }, "x86_64 first");
  assertEquals(x86[2], { code: 0x15, jt: 0, jf: 1, k: AUDIT_ARCH.x86 }, "then i386");
  assertEquals(x86[3]?.code, 0x05, "a far jump to the i386 section");
  assertEquals(x86[4], { code: 0x06, jt: 0, jf: 0, k: 0x80000000 }, "any other ABI is killed");
  const arm = decodeSeccomp(compileSeccomp(DEFAULT_SECCOMP_PROFILE, "aarch64"));
  assertEquals(arm[2], { code: 0x15, jt: 0, jf: 1, k: AUDIT_ARCH.arm }, "aarch64 lets arm in");
  assertEquals(AUDIT_ARCH.aarch64, 0xc00000b7);
  assertEquals(AUDIT_ARCH.x86_64, 0xc000003e);
  assertEquals(AUDIT_ARCH.x86, 0x40000003);
  assertEquals(AUDIT_ARCH.arm, 0x40000028);
});

test("a program from compileSeccomp() keeps every jump inside the program, forward only", () => {
  for (const arch of ["x86_64", "aarch64"] as const) {
    for (const capabilities of [[], ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]]) {
      const program = decodeSeccomp(compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch, capabilities }));
      assert(program.length <= 4096, `${arch}: ${program.length} instructions`);
      program.forEach((ins, i) => {
        if (ins.code === 0x05) assert(i + 1 + ins.k < program.length, `ja ${i} leaves the program`);
        else if ((ins.code & 0x07) === 0x05) {
          assert(i + 1 + ins.jt < program.length && i + 1 + ins.jf < program.length, `jump ${i} leaves the program`);
        }
      });
      assertEquals(program.at(-1)?.code, 0x06, `${arch}: the program ends in a ret`);
    }
  }
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
  resolveSpec({ ...base, noNewPrivs: false, seccomp: false });
  const plan = planContainer(base).steps.map((s) => s.name);
  assertEquals(plan.slice(-3), ["no-new-privs", "seccomp", "exec"]);
  // without no_new_privs the filter is loaded while the process still holds CAP_SYS_ADMIN, before
  // the capabilities go and the user changes (runc's order): setuid binaries work as with runc
  const privileged = planContainer({ ...base, noNewPrivs: false }).steps.map((s) => s.name);
  assertEquals(privileged.slice(privileged.indexOf("seccomp-privileged")), [
    "seccomp-privileged",
    "capabilities",
    "user",
    "capability-sets",
    "exec",
  ]);
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

for (const path of ["native", "forked"] as const) {
  test(
    `noNewPrivs: false with the default profile: the filter is loaded (privileged, before the capabilities go) and a setuid binary raises privileges, as under runc; noNewPrivs: true stops it (${path})`,
    async () => {
      using dir = tempDir();
      chmodSync(dir.path, 0o755);
      const rootfs = buildRootfs(join(dir.path, "rootfs"), { builder: "busybox" }).path;
      writeFileSync(
        join(dir.path, "suid.c"),
        '#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf("%d %d\\n", (int)getuid(), (int)geteuid()); return 0; }\n',
      );
      const cc = spawnSync("gcc", ["-static", "-O2", "-o", join(rootfs, "bin/suid"), join(dir.path, "suid.c")], {
        encoding: "utf8",
      });
      if (cc.status !== 0) throw new Error(`gcc failed: ${cc.stderr}`);
      chmodSync(join(rootfs, "bin/suid"), 0o4755);
      const out = join(dir.path, "out");
      const runAs = async (noNewPrivs: boolean) => {
        rmSync(out, { force: true });
        writeFileSync(out, "");
        chmodSync(out, 0o666);
        const status = await withSpawn(path === "forked" ? "0" : undefined, () =>
          run({
            name: `hako-seccomp-nnp-${path[0]}-${process.pid}`,
            rootfs,
            user: { uid: 1000, gid: 1000 },
            noNewPrivs,
            mounts: [{ type: "bind", source: out, target: "/out" }],
            command: ["sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status > /out; /bin/suid >> /out"],
          }));
        assertEquals(status.code, 0);
        return readFileSync(out, "utf8").split("\n").filter(Boolean).map((l) => l.replace(/\s+/g, " "));
      };
      assertEquals(await runAs(false), ["NoNewPrivs: 0", "Seccomp: 2", "1000 0"]);
      assertEquals(await runAs(true), ["NoNewPrivs: 1", "Seccomp: 2", "1000 1000"]);
    },
    {
      skip: containerSkip ||
        (spawnSync("gcc", ["--version"]).status !== 0 && "needs gcc and a static libc (apt-get install gcc libc6-dev)"),
    },
  );
}

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

// ---------------------------------------------------------------------------------------------
// Tables, capabilities and ENOSYS: decisions read off the compiled program (tests/_bpf.ts)

const ALLOW = 0x7fff0000;
const RET_EPERM = 0x00050001;
const RET_ENOSYS = 0x00050026;
const KILL_PROCESS = 0x80000000;

/** What `program` answers `name(args…)` on `abi`. */
function decide(program: Uint8Array, name: string, abi: SeccompArch, args: bigint[] = []): number {
  const nr = syscallNumber(name, abi);
  if (nr === undefined) throw new Error(`no ${name} on ${abi}`);
  return runBpf(decodeSeccomp(program), { nr, arch: AUDIT_ARCH[abi], args });
}

test("the syscall tables are Linux 6.18's, for x86_64, i386, x32, aarch64 and arm", () => {
  for (const abi of ["x86_64", "x86", "aarch64", "arm"] as const) {
    equal(syscallNumber("open_tree_attr", abi), 467, abi);
    equal(syscallNumber("file_getattr", abi), 468, abi);
    equal(syscallNumber("file_setattr", abi), 469, abi);
  }
  equal(syscallNumber("file_setattr", "x32"), 0x40000000 + 469);
  equal(syscallNumber("rt_sigaction", "x32"), 0x40000000 + 512, "x32's own numbers (512-547)");
  equal(syscallNumber("socketcall", "x86"), 102);
  equal(syscallNumber("socket", "x86"), 359);
  equal(syscallNumber("keyctl", "x86"), 288);
  equal(syscallNumber("set_tls", "arm"), 0xf0005, "ARM-private calls");
  equal(syscallNumber("sync_file_range2", "arm"), syscallNumber("arm_sync_file_range", "arm"), "arm's alias");
  equal(syscallNumber("open_by_handle_at", "aarch64"), 265);
  equal(syscallNumber("socketcall", "x86_64"), undefined);
  const header = readFileSync(new URL("../ffi/_syscalls_x86_64.ts", import.meta.url), "utf8");
  ok(/Generated by tools\/gen_syscalls\.ts/.test(header) && /Linux 6\.18/.test(header), "the header names its source");
});

test("the default profile is an allow-list: unlisted calls answer EPERM, listed ones are allowed, on every ABI", () => {
  for (const arch of ["x86_64", "aarch64"] as const) {
    const program = compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch, capabilities: DEFAULT_CAPABILITIES });
    const abis = arch === "x86_64" ? (["x86_64", "x86", "x32"] as const) : (["aarch64", "arm"] as const);
    for (const abi of abis) {
      for (const name of ["read", "openat", "execve", "exit_group", "futex", "getrandom", "pidfd_open"]) {
        equal(decide(program, name, abi), ALLOW, `${abi} ${name}`);
      }
      for (
        const name of [
          "pidfd_getfd",
          "keyctl",
          "add_key",
          "bpf",
          "userfaultfd",
          "unshare",
          "setns",
          "mount",
          "ptrace",
          "process_vm_readv",
          "kexec_load",
          "io_uring_setup",
          "open_tree_attr",
          "file_setattr",
        ]
      ) {
        equal(decide(program, name, abi), RET_EPERM, `${abi} ${name}`);
      }
      const AF_INET = 2n, AF_ALG = 38n, AF_VSOCK = 40n;
      equal(decide(program, "socket", abi, [AF_INET]), ALLOW, `${abi} socket(AF_INET)`);
      equal(decide(program, "socket", abi, [AF_VSOCK]), RET_EPERM, `${abi} socket(AF_VSOCK)`);
      equal(decide(program, "socket", abi, [AF_ALG]), RET_EPERM, `${abi} socket(AF_ALG)`);
      equal(decide(program, "socket", abi, [(1n << 32n) | AF_VSOCK]), RET_EPERM, `${abi} socket(1<<32|AF_VSOCK)`);
      equal(decide(program, "clone3", abi), RET_ENOSYS, `${abi} clone3`);
    }
  }
});

test("the default profile's capability groups follow the capabilities the container keeps", () => {
  const plain = compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch: "x86_64", capabilities: DEFAULT_CAPABILITIES });
  const admin = compileSeccomp(DEFAULT_SECCOMP_PROFILE, {
    arch: "x86_64",
    capabilities: [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"],
  });
  const tracer = compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch: "x86_64", capabilities: ["sys_ptrace"] });
  const CLONE_NEWUSER = 0x10000000n;
  for (const abi of ["x86_64", "x86"] as const) {
    equal(decide(plain, "mount", abi), RET_EPERM);
    equal(decide(admin, "mount", abi), ALLOW, `${abi} mount with CAP_SYS_ADMIN`);
    equal(decide(plain, "clone", abi, [CLONE_NEWUSER]), RET_EPERM);
    equal(decide(admin, "clone", abi, [CLONE_NEWUSER]), ALLOW);
    equal(decide(admin, "clone3", abi), ALLOW, "clone3 with CAP_SYS_ADMIN, as docker");
    equal(decide(plain, "chroot", abi), ALLOW, "CAP_SYS_CHROOT is a default capability");
    equal(decide(tracer, "chroot", abi), RET_EPERM, "…and without it, chroot is refused");
    equal(decide(tracer, "ptrace", abi), ALLOW, "ptrace with CAP_SYS_PTRACE (a bare name works too)");
    equal(decide(tracer, "pidfd_getfd", abi), ALLOW);
    equal(decide(plain, "pidfd_getfd", abi), RET_EPERM);
  }
  equal(
    compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch: "x86_64", capabilities: [...DEFAULT_CAPABILITIES] }),
    plain,
    "the default profile is compiled once per set of rules that apply",
  );
  const base: ContainerSpec = { name: "seccomp-caps", rootfs: "/srv/x", command: "true" };
  const spec = resolveSpec({ ...base, capabilities: { add: ["SYS_ADMIN"] } });
  equal(decide(spec.seccompProgram!, "mount", ARCH), ALLOW, "resolveSpec compiles with the kept capabilities");
  equal(decide(resolveSpec(base).seccompProgram!, "mount", ARCH), RET_EPERM);
});

test("numbers above the kernel table answer ENOSYS when the default refuses, and pass when it allows (as runc)", () => {
  const refusing = compileSeccomp(DEFAULT_SECCOMP_PROFILE, "x86_64");
  const allowing = compileSeccomp(
    { defaultAction: "allow", syscalls: [{ names: ["mount"], action: "errno" }] },
    "x86_64",
  );
  const run = (p: Uint8Array, nr: number, arch = AUDIT_ARCH.x86_64) => runBpf(decodeSeccomp(p), { nr, arch });
  for (const nr of [470, 471, 547, 1000, 0x3fffffff]) {
    equal(run(refusing, nr), RET_ENOSYS, `x86_64 ${nr}`);
    equal(run(allowing, nr), ALLOW, `x86_64 ${nr}, allowing default`);
  }
  for (const nr of [470, 1000, 0xffffffff]) equal(run(refusing, nr, AUDIT_ARCH.x86), RET_ENOSYS, `i386 ${nr}`);
  equal(run(refusing, 0x40000000 + 548), RET_ENOSYS, "x32 above its table");
  equal(run(refusing, 400), RET_EPERM, "a hole inside the table gets the default, as under docker");
  equal(run(allowing, 0x40000000), KILL_PROCESS, "x32 is not covered by a profile without architectures");
  const arm = compileSeccomp(DEFAULT_SECCOMP_PROFILE, "aarch64");
  equal(runBpf(decodeSeccomp(arm), { nr: 0xf0005, arch: AUDIT_ARCH.arm }), ALLOW, "arm's set_tls, above the table");
  equal(runBpf(decodeSeccomp(arm), { nr: 0xf0007, arch: AUDIT_ARCH.arm }), RET_ENOSYS);
  equal(runBpf(decodeSeccomp(arm), { nr: 470, arch: AUDIT_ARCH.aarch64 }), RET_ENOSYS);
});

// ---------------------------------------------------------------------------------------------
// docker / OCI profiles

/** A docker-format profile exercising what the format has: archMap, name, includes/excludes. */
const DOCKER_SAMPLE: OciSeccompProfile = {
  defaultAction: "SCMP_ACT_ERRNO",
  defaultErrnoRet: 1,
  archMap: [
    { architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
    { architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"] },
    { architecture: "SCMP_ARCH_S390X", subArchitectures: ["SCMP_ARCH_S390"] },
  ],
  syscalls: [
    { names: ["read", "write", "exit_group", "s390_runtime_instr"], action: "SCMP_ACT_ALLOW" },
    { name: "getpid", action: "SCMP_ACT_ALLOW", comment: "docker's older single name" },
    { names: ["mkdirat"], action: "SCMP_ACT_ERRNO", comment: "the default action: dropped, as runc does" },
    {
      names: ["personality"],
      action: "SCMP_ACT_ALLOW",
      args: [{ index: 0, value: 0, op: "SCMP_CMP_EQ" }, { index: 0, value: 8, op: "SCMP_CMP_EQ" }],
      comment: "two comparisons of one argument: one rule each (runc), so either value",
    },
    { names: ["mount"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_SYS_ADMIN"] } },
    {
      names: ["clone"],
      action: "SCMP_ACT_ALLOW",
      args: [{ index: 0, value: 2114060288, op: "SCMP_CMP_MASKED_EQ" }],
      excludes: { caps: ["CAP_SYS_ADMIN"], arches: ["s390", "s390x"] },
    },
    { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 },
    { names: ["arch_prctl"], action: "SCMP_ACT_ALLOW", includes: { arches: ["amd64", "x32"] } },
    { names: ["riscv_flush_icache"], action: "SCMP_ACT_ALLOW", includes: { arches: ["riscv64"] } },
    { names: ["ptrace"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "4.8" } },
    { names: ["kexec_load"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "99.0" } },
  ],
};

test("a docker profile converts as runc reads it: archMap, name, default-action rules dropped, same-argument ORs", () => {
  const p = seccompProfileFromOci(DOCKER_SAMPLE);
  equal(p.defaultAction, "errno");
  equal(p.defaultErrno, 1);
  deepEqual(p.architectures, ["x86_64", "x86", "x32", "aarch64", "arm"]);
  deepEqual(p.syscalls.map((r) => r.names.join(",")), [
    "read,write,exit_group,s390_runtime_instr",
    "getpid",
    "personality",
    "personality",
    "mount",
    "clone",
    "clone3",
    "arch_prctl",
    "ptrace",
    "kexec_load",
  ]);
  deepEqual(p.syscalls[2]!.args, [{ index: 0, op: "eq", value: 0 }]);
  deepEqual(p.syscalls[3]!.args, [{ index: 0, op: "eq", value: 8 }]);
  deepEqual(p.syscalls[5]!.excludes, { caps: ["CAP_SYS_ADMIN"] }, "s390 arches are never hako's");
  deepEqual(p.syscalls[7]!.includes, { arches: ["x86_64", "x32"] });
  const program = compileSeccomp(p, { arch: "x86_64", kernel: "6.18.0" });
  equal(decide(program, "getpid", "x86"), ALLOW, "the sub-architectures are covered");
  equal(decide(program, "personality", "x86_64", [8n]), ALLOW);
  equal(decide(program, "personality", "x86_64", [9n]), RET_EPERM);
  equal(decide(program, "mount", "x86_64"), RET_EPERM);
  equal(decide(compileSeccomp(p, { arch: "x86_64", capabilities: ["CAP_SYS_ADMIN"] }), "mount", "x86_64"), ALLOW);
  equal(decide(program, "clone3", "x86_64"), RET_ENOSYS);
  equal(decide(program, "arch_prctl", "x86_64"), ALLOW);
  equal(decide(compileSeccomp(p, "aarch64"), "getpid", "arm"), ALLOW);
  equal(decide(program, "ptrace", "x86_64"), ALLOW, "minKernel 4.8 holds on 6.18");
  equal(decide(compileSeccomp(p, { arch: "x86_64", kernel: "4.4.0" }), "ptrace", "x86_64"), RET_EPERM);
  equal(decide(program, "kexec_load", "x86_64"), RET_EPERM, "minKernel 99.0 does not");
});

test("what hako cannot honour in a docker/OCI profile is a problem naming its field path", () => {
  const { problems } = resolveSeccompProfile({
    defaultAction: "SCMP_ACT_ERRNO",
    flags: ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    listenerPath: "/run/agent.sock",
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_PDP11"],
    syscalls: [
      { names: ["read"], action: "SCMP_ACT_ALLOW" },
      { names: ["write"], action: "SCMP_ACT_TRACE" },
      { names: ["getpid"], action: "SCMP_ACT_NOTIFY" },
      { names: ["socket"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 40, op: "SCMP_CMP_ABOUT" }] },
      { names: ["socket"], action: "SCMP_ACT_ALLOW", args: [{ index: 7, value: -1, op: "SCMP_CMP_EQ" }] },
      { names: ["mount"], action: "SCMP_ACT_ALLOW", includes: { caps: ["sys_admin"], minKernel: "new" } },
      { names: ["umount2"], action: "SCMP_ACT_ALLOW", errnoRet: 5, excluded: {} },
    ],
  } as unknown as OciSeccompProfile);
  deepEqual(problems.map((p) => p.path), [
    "seccomp.flags[0]",
    "seccomp.listenerPath",
    "seccomp.architectures[1]",
    "seccomp.syscalls[1].action",
    "seccomp.syscalls[2].action",
    "seccomp.syscalls[3].args[0].op",
    "seccomp.syscalls[4].args[0].index",
    "seccomp.syscalls[4].args[0].value",
    "seccomp.syscalls[5].includes.caps[0]",
    "seccomp.syscalls[5].includes.minKernel",
    "seccomp.syscalls[6].excluded",
    "seccomp.syscalls[6].errnoRet",
  ]);
  ok(/SCMP_ACT_TRACE needs a ptrace\(2\) tracer/.test(problems[3]!.message));
  throws(
    () =>
      seccompProfileFromOci({
        defaultAction: "SCMP_ACT_KILL_PROCESS",
        syscalls: [{ names: ["fooo"], action: "SCMP_ACT_FOO" }],
      }),
    (e: unknown) =>
      e instanceof ConfigError && /^seccomp\.syscalls\[0\]\.action: must be one of SCMP_ACT_ALLOW/.test(e.message),
  );
});

test("a container spec takes a docker/OCI profile object as its seccomp field, with field paths for its problems", () => {
  const base: ContainerSpec = { name: "seccomp-oci", rootfs: "/srv/x", command: "true" };
  const resolved = resolveSpec({ ...base, seccomp: DOCKER_SAMPLE });
  ok(resolved.seccomp && resolved.seccomp.defaultAction === "errno");
  equal(decide(resolved.seccompProgram!, "personality", ARCH, [8n]), ALLOW);
  const e = assertThrows(
    () =>
      resolveSpec({
        ...base,
        seccomp: {
          defaultAction: "SCMP_ACT_ERRNO",
          syscalls: [
            { names: ["read"], action: "SCMP_ACT_ALLOW" },
            { names: ["write"], action: "SCMP_ACT_ALLOW" },
            { names: ["close"], action: "SCMP_ACT_ALLOW" },
            { names: ["socket"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 40, op: "SCMP_CMP_NEQ" }] },
          ],
        },
      }),
    SpecError,
  );
  deepEqual(e.problems.map((p) => p.path), ["seccomp.syscalls[3].args[0].op"]);
});

test("readSeccompProfile() reads docker's JSON (or hako's) from a file, and names the file when it cannot", () => {
  using dir = tempDir("hako-seccomp-json-");
  const file = join(dir.path, "profile.json");
  writeFileSync(file, JSON.stringify(DOCKER_SAMPLE));
  deepEqual(readSeccompProfile(file), seccompProfileFromOci(DOCKER_SAMPLE));
  writeFileSync(file, JSON.stringify({ defaultAction: "allow", syscalls: [{ names: ["mkdirat"], action: "errno" }] }));
  equal(readSeccompProfile(file).syscalls[0]!.names[0], "mkdirat");
  writeFileSync(file, "{ not json");
  throws(() => readSeccompProfile(file), (e: unknown) => e instanceof ConfigError && e.message.startsWith(`${file}: `));
  writeFileSync(
    file,
    JSON.stringify({ defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["x"], action: "SCMP_ACT_NOTIFY" }] }),
  );
  throws(
    () => readSeccompProfile(file),
    (e: unknown) =>
      e instanceof ConfigError && /^seccomp\.syscalls\[0\]\.action: .*\(in .*profile\.json\)$/.test(e.message),
  );
});

test("docker's default profile in docker's JSON format decides as hako's default, but for the ptrace calls it allows on ≥ 4.8", () => {
  // Written out the way docker's default.json is: the allow-list, the conditional rules, and the
  // { minKernel: "4.8" } group hako leaves out on purpose.
  const dockerArches: Record<string, string> = {
    x86_64: "amd64",
    aarch64: "arm64",
    x86: "x86",
    x32: "x32",
    arm: "arm",
  };
  const cond = (c: { caps?: readonly string[]; arches?: readonly string[] } | undefined) =>
    c &&
    { ...(c.caps ? { caps: c.caps } : {}), ...(c.arches ? { arches: c.arches.map((a) => dockerArches[a]!) } : {}) };
  const docker: OciSeccompProfile = {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 1,
    archMap: [
      { architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
      { architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"] },
    ],
    syscalls: [
      ...DEFAULT_SECCOMP_PROFILE.syscalls.map((r) => ({
        names: r.names,
        action: r.action === "allow" ? "SCMP_ACT_ALLOW" : "SCMP_ACT_ERRNO",
        ...(r.errno !== undefined ? { errnoRet: r.errno } : {}),
        ...(r.args
          ? {
            args: r.args.map((a) => ({
              index: a.index,
              value: a.value,
              valueTwo: a.valueTwo ?? 0,
              op: `SCMP_CMP_${a.op.toUpperCase()}`,
            })),
          }
          : {}),
        ...(r.includes ? { includes: cond(r.includes) } : {}),
        ...(r.excludes ? { excludes: cond(r.excludes) } : {}),
      })),
      {
        names: ["process_vm_readv", "process_vm_writev", "ptrace"],
        action: "SCMP_ACT_ALLOW",
        includes: { minKernel: "4.8" },
      },
    ],
  };
  const converted = seccompProfileFromOci(docker);
  for (const arch of ["x86_64", "aarch64"] as const) {
    for (const capabilities of [DEFAULT_CAPABILITIES, [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]]) {
      const ours = decodeSeccomp(compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch, capabilities }));
      const theirs = decodeSeccomp(compileSeccomp(converted, { arch, capabilities, kernel: "6.18" }));
      const ptraceFamily = ["process_vm_readv", "process_vm_writev", "ptrace"];
      for (const abi of arch === "x86_64" ? (["x86_64", "x86", "x32"] as const) : (["aarch64", "arm"] as const)) {
        const family = new Set(ptraceFamily.map((n) => syscallNumber(n, abi)));
        const bit = abi === "x32" ? 0x40000000 : 0;
        for (let nr = bit; nr < bit + 560; nr++) {
          for (const args of [[0n], [40n], [8n], [0x10000000n], [0x1_00000028n]]) {
            const data = { nr, arch: AUDIT_ARCH[abi], args };
            const want = family.has(nr) && !capabilities.includes("CAP_SYS_PTRACE") ? ALLOW : runBpf(ours, data);
            // (docker's socket rules compare 64 bits; the converted profile does too)
            if (
              args[0] === 0x1_00000028n && (abi === "x86_64" || abi === "aarch64") &&
              nr === syscallNumber("socket", abi)
            ) continue;
            equal(
              runBpf(theirs, data),
              want,
              `${arch} ${abi} ${nr}(${args[0]}) with ${capabilities.length} capabilities`,
            );
          }
        }
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Inside a default container: the attacks, on the native and the forked path

/**
 * A static probe run as the container's command: each argument `label=nr,a0,a1,…` makes one raw
 * syscall (`int80:nr,…` through i386's `int 0x80`, in a child, since a refused ABI kills),
 * `thread` and `spawn` go through glibc's clone3-then-clone (pthread_create, posix_spawn); each
 * result (0 or the errno) is written to the file named first, as `label result` lines.
 */
const PROBE_C = String.raw`#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
static long int80(long nr, long a, long b, long c) {
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
  return ret;
}
static void *nothing(void *arg) { return arg; }
int main(int argc, char **argv) {
  FILE *out = fopen(argv[1], "w");
  if (!out) return 100;
  for (int i = 2; i < argc; i++) {
    char *label = argv[i], *spec = strchr(label, '=');
    if (!spec) continue;
    *spec++ = 0;
    if (strcmp(spec, "thread") == 0) {
      pthread_t t;
      int e = pthread_create(&t, NULL, nothing, NULL);
      if (e == 0) pthread_join(t, NULL);
      fprintf(out, "%s %d\n", label, e);
    } else if (strcmp(spec, "spawn") == 0) {
      pid_t pid;
      char *args[] = {"true", NULL};
      int e = posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ), st = -1;
      if (e == 0) waitpid(pid, &st, 0);
      fprintf(out, "%s %d\n", label, e ? e : st);
    } else {
      int i386 = strncmp(spec, "int80:", 6) == 0;
      long a[7] = {0};
      char *p = i386 ? spec + 6 : spec;
      for (int k = 0; k < 7 && *p; k++) {
        a[k] = strtol(p, &p, 0);
        if (*p == ',') p++;
      }
      if (i386) {
        pid_t pid = fork();
        if (pid == 0) {
          long r = int80(a[0], a[1], a[2], a[3]);
          _exit(r < 0 && r > -4096 ? (int)-r : 0);
        }
        int st;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st)) fprintf(out, "%s signal%d\n", label, WTERMSIG(st));
        else fprintf(out, "%s %d\n", label, WEXITSTATUS(st));
      } else {
        long r = syscall(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
        fprintf(out, "%s %d\n", label, r == -1 ? errno : 0);
      }
    }
    fflush(out);
  }
  return fclose(out) == 0 ? 0 : 101;
}
`;

/** Compiles the probe into `dir` (static, so it runs in a busybox rootfs); returns its path. */
function compileProbe(dir: string): string {
  writeFileSync(join(dir, "probe.c"), PROBE_C);
  const cc = spawnSync("gcc", ["-static", "-O2", "-o", join(dir, "probe"), join(dir, "probe.c"), "-lpthread"], {
    encoding: "utf8",
  });
  if (cc.status !== 0) throw new Error(`gcc failed: ${cc.stderr}`);
  return join(dir, "probe");
}

/** Whether this kernel runs i386 syscalls (`int 0x80`) at all (CONFIG_IA32_EMULATION), asked of the probe on the host. */
function hasIa32(probe: string, dir: string): boolean {
  const out = join(dir, "ia32.out");
  spawnSync(probe, [out, `getpid=int80:${syscallNumber("getpid", "x86")}`]);
  return existsSync(out) && readFileSync(out, "utf8").trim() === "getpid 0";
}

const probeSkip = containerSkip ||
  (process.arch !== "x64" && "the probe is x86-64 code (raw syscall numbers and int 0x80)") ||
  (spawnSync("gcc", ["--version"]).status !== 0 && "needs gcc and a static libc (apt-get install gcc libc6-dev)");

/** The probe's requests, by label: x86_64 numbers from hako's tables, i386's through int 0x80. */
function attacks(): Record<string, string> {
  const nr = (name: string, abi: SeccompArch = "x86_64") => syscallNumber(name, abi)!;
  const AF_VSOCK = 40, SOCK_STREAM = 1, CLONE_NEWUSER = 0x10000000, UFFD_USER_MODE_ONLY = 1;
  const KEYCTL_GET_KEYRING_ID = 0, KEY_SPEC_SESSION_KEYRING = -3, PTRACE_PEEKDATA = 2;
  return {
    getpid: `${nr("getpid")}`,
    pidfd_getfd: `${nr("pidfd_getfd")},-1,0,0`,
    socket_vsock: `${nr("socket")},${AF_VSOCK},${SOCK_STREAM},0`,
    socket_vsock_high: `${nr("socket")},${0x1_0000_0000 + AF_VSOCK},${SOCK_STREAM},0`,
    socket_inet: `${nr("socket")},2,${SOCK_STREAM},0`,
    keyctl: `${nr("keyctl")},${KEYCTL_GET_KEYRING_ID},${KEY_SPEC_SESSION_KEYRING},0`,
    bpf: `${nr("bpf")},-1,0,0`,
    userfaultfd: `${nr("userfaultfd")},${UFFD_USER_MODE_ONLY}`,
    unshare_user: `${nr("unshare")},${CLONE_NEWUSER}`,
    mount: `${nr("mount")},0,0,0,0,0`,
    ptrace: `${nr("ptrace")},${PTRACE_PEEKDATA},999999,0,0`,
    clone3: `${nr("clone3")},0,0`,
    above_table: `${Math.max(...["file_setattr", "open_tree_attr"].map((n) => nr(n))) + 1}`,
    nr_1000: "1000",
    thread: "thread",
    spawn: "spawn",
    i386_getpid: `int80:${nr("getpid", "x86")}`,
    i386_keyctl: `int80:${nr("keyctl", "x86")},${KEYCTL_GET_KEYRING_ID},${KEY_SPEC_SESSION_KEYRING},0`,
    i386_mount: `int80:${nr("mount", "x86")},0,0,0`,
    x32_keyctl: `${nr("keyctl", "x32")},${KEYCTL_GET_KEYRING_ID},${KEY_SPEC_SESSION_KEYRING},0`,
  };
}

/**
 * Runs the probe as a busybox container's command (native or forked child); returns label →
 * result, and whether the kernel runs i386 calls at all.
 */
async function probeContainer(
  native: boolean,
  s: Partial<ContainerSpec>,
): Promise<{ got: Record<string, string>; ia32: boolean }> {
  using dir = tempDir("hako-seccomp-box-");
  chmodSync(dir.path, 0o755);
  const probe = compileProbe(dir.path);
  const ia32 = hasIa32(probe, dir.path);
  const rootfs = buildRootfs(join(dir.path, "rootfs"), { builder: "busybox" }).path;
  copyFileSync(probe, join(rootfs, "probe"));
  chmodSync(join(rootfs, "probe"), 0o755);
  const items = Object.entries(attacks()).map(([label, req]) => `${label}=${req}`);
  const before = process.env.HAKO_NATIVE_SPAWN;
  process.env.HAKO_NATIVE_SPAWN = native ? "1" : "0";
  const count = nativeChildren.count;
  try {
    const status = await run({
      name: `hako-seccomp-probe-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      rootfs,
      command: ["/probe", "/probe.out", ...items],
      ...s,
    });
    equal(status.code, 0, `the probe ran (${JSON.stringify(status)})`);
    equal(nativeChildren.count - count, native ? 1 : 0, "containers given a native child");
  } finally {
    if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
    else process.env.HAKO_NATIVE_SPAWN = before;
  }
  const lines = readFileSync(join(rootfs, "probe.out"), "utf8").trim().split("\n");
  return { got: Object.fromEntries(lines.map((l) => l.split(" ") as [string, string])), ia32 };
}

const E = { EPERM: "1", EBADF: "9", ENOSYS: "38" };

for (const native of [true, false]) {
  const path = native ? "native child" : "forked child (HAKO_NATIVE_SPAWN=0)";
  test(
    `a default container (${path}) cannot reach pidfd_getfd, AF_VSOCK, keyctl, bpf, userfaultfd, user namespaces, mount or ptrace`,
    async () => {
      const { got, ia32 } = await probeContainer(native, {});
      const refused = [
        "pidfd_getfd",
        "socket_vsock",
        "socket_vsock_high",
        "keyctl",
        "bpf",
        "userfaultfd",
        "unshare_user",
        "mount",
        "ptrace",
        "i386_keyctl",
        "i386_mount",
        "x32_keyctl",
      ];
      for (const label of refused.filter((l) => ia32 || !l.startsWith("i386"))) {
        equal(got[label], E.EPERM, `${label} answers EPERM`);
      }
      equal(got.nr_1000, E.ENOSYS, "an unknown high number answers ENOSYS");
      equal(got.above_table, E.ENOSYS, "the number just above the table answers ENOSYS");
      equal(got.clone3, E.ENOSYS, "clone3 answers ENOSYS…");
      equal(got.thread, "0", "…so pthread_create falls back to clone");
      equal(got.spawn, "0", "…and posix_spawn too");
      equal(got.getpid, "0");
      equal(got.socket_inet, "0");
      if (ia32) equal(got.i386_getpid, "0", "i386 calls are filtered by i386's table, not killed");
    },
    { skip: probeSkip },
  );
}

test(
  "the same probe without a filter gets the kernel's own answers, so the EPERMs above are the filter's",
  async () => {
    const { got, ia32 } = await probeContainer(true, { seccomp: false });
    equal(got.pidfd_getfd, E.EBADF);
    notEqual(got.keyctl, E.EPERM);
    notEqual(got.ptrace, E.EPERM);
    notEqual(got.clone3, E.ENOSYS);
    if (ia32) notEqual(got.i386_keyctl, E.EPERM);
  },
  { skip: probeSkip },
);

for (const native of [true, false]) {
  test(
    `a container (${
      native ? "native" : "forked"
    } child) with CAP_SYS_ADMIN gets docker's CAP_SYS_ADMIN group: unshare(CLONE_NEWUSER) works`,
    async () => {
      const { got } = await probeContainer(native, { capabilities: { add: ["CAP_SYS_ADMIN"] } });
      // (where the kernel allows user namespaces at all)
      if (readFileSync("/proc/sys/user/max_user_namespaces", "utf8").trim() !== "0") equal(got.unshare_user, "0");
      equal(got.pidfd_getfd, E.EPERM, "still no CAP_SYS_PTRACE group");
    },
    { skip: probeSkip },
  );
}

test("a container runs with a docker-format profile object as its seccomp field", async () => {
  using dir = tempDir();
  const profile: OciSeccompProfile = {
    defaultAction: "SCMP_ACT_ALLOW",
    syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }],
  };
  const script = "mkdir /tmp/refused 2>/tmp/err && exit 3; grep -q 'Permission denied' /tmp/err || exit 4; exit 0";
  equal((await run(boxSpec(dir.path, { command: ["sh", "-c", script], seccomp: profile }))).code, 0);
}, { skip: containerSkip });
