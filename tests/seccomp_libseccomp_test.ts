/**
 * hako's seccomp compiler against libseccomp: the same profile built by both (libseccomp the way
 * runc drives it), both programs run through a classic BPF interpreter over every syscall number
 * of every ABI, and the decisions compared. libseccomp 2.5.4's tables stop around Linux 6.0, so
 * only the numbers whose names it knows are compared; the rest are checked against what hako
 * promises (ENOSYS above the table).
 */
import assert from "node:assert/strict";
import { test } from "./_harness.ts";
import { runBpf, type SeccompData } from "./_bpf.ts";
import { libseccomp, libseccompNumber, libseccompProgram, type LibseccompRule, SCMP_ARCH } from "./_libseccomp.ts";
import {
  AUDIT_ARCH,
  compileSeccomp,
  decodeSeccomp,
  DEFAULT_SECCOMP_PROFILE,
  type SeccompArch,
  type SeccompNativeArch,
  type SeccompProfile,
  type SeccompRule,
  syscallNumber,
} from "../src/seccomp.ts";
import { DEFAULT_CAPABILITIES } from "../src/container/spec.ts";
import { SYSCALLS_X86_64, SYSCALLS_X86_64_MAX } from "../ffi/_syscalls_x86_64.ts";
import { SYSCALLS_X86, SYSCALLS_X86_MAX } from "../ffi/_syscalls_x86.ts";
import { SYSCALLS_X32, SYSCALLS_X32_MAX } from "../ffi/_syscalls_x32.ts";
import { SYSCALLS_AARCH64, SYSCALLS_AARCH64_MAX } from "../ffi/_syscalls_aarch64.ts";
import { SYSCALLS_ARM, SYSCALLS_ARM_MAX } from "../ffi/_syscalls_arm.ts";

const skip = libseccomp() === null && "needs libseccomp.so.2 (apt-get install libseccomp2)";

const ALLOW = 0x7fff0000;
const KILL_PROCESS = 0x80000000;
const errnoRet = (e: number) => (0x00050000 | e) >>> 0;
const EPERM = errnoRet(1);
const ENOSYS = errnoRet(38);
const X32_BIT = 0x40000000;

const TABLES: Record<SeccompArch, { table: Readonly<Record<string, number>>; max: number; bit: number }> = {
  x86_64: { table: SYSCALLS_X86_64, max: SYSCALLS_X86_64_MAX, bit: 0 },
  x86: { table: SYSCALLS_X86, max: SYSCALLS_X86_MAX, bit: 0 },
  x32: { table: SYSCALLS_X32, max: SYSCALLS_X32_MAX, bit: X32_BIT },
  aarch64: { table: SYSCALLS_AARCH64, max: SYSCALLS_AARCH64_MAX, bit: 0 },
  arm: { table: SYSCALLS_ARM, max: SYSCALLS_ARM_MAX, bit: 0 },
};
const ABIS_OF: Record<SeccompNativeArch, SeccompArch[]> = {
  x86_64: ["x86_64", "x86", "x32"],
  aarch64: ["aarch64", "arm"],
};
const AUDIT: Record<SeccompArch, number> = {
  x86_64: 0xc000003e,
  x32: 0xc000003e,
  x86: 0x40000003,
  aarch64: 0xc00000b7,
  arm: 0x40000028,
};

/** Every capability, for the "privileged" reading of the capability groups. */
const ALL_CAPS = [
  ...DEFAULT_CAPABILITIES,
  "CAP_SYS_ADMIN",
  "CAP_SYS_PTRACE",
  "CAP_SYS_BOOT",
  "CAP_SYS_MODULE",
  "CAP_SYS_PACCT",
  "CAP_SYS_RAWIO",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_SYS_NICE",
  "CAP_SYSLOG",
  "CAP_BPF",
  "CAP_PERFMON",
  "CAP_DAC_READ_SEARCH",
];

/**
 * The rules docker would hand runc for this arch and capabilities — docker's reading of
 * includes/excludes, written here independently of hako's compiler — one libseccomp rule per name.
 */
function asLibseccompRules(
  profile: SeccompProfile,
  arch: SeccompNativeArch,
  caps: readonly string[],
): LibseccompRule[] {
  const applies = (r: SeccompRule) =>
    !(r.excludes?.arches?.includes(arch) || r.excludes?.caps?.some((c) => caps.includes(c))) &&
    !(r.includes?.arches && !r.includes.arches.includes(arch)) &&
    !(r.includes?.caps && !r.includes.caps.every((c) => caps.includes(c)));
  const action = (r: SeccompRule) =>
    r.action === "allow" ? ALLOW : r.action === "errno" ? errnoRet(r.errno ?? 1) : assert.fail(`action ${r.action}`);
  return profile.syscalls.filter(applies).flatMap((r) =>
    r.names.map((name) => ({
      name,
      action: action(r),
      args: (r.args ?? []).map((a) => ({
        index: a.index,
        op: a.op,
        a: BigInt(a.value),
        b: BigInt(a.valueTwo ?? 0),
      })),
    }))
  );
}

/** Both programs for the default profile on `arch` with `caps`. */
function both(arch: SeccompNativeArch, caps: readonly string[]) {
  const hako = decodeSeccomp(compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch, capabilities: caps }));
  const lib = libseccompProgram(
    EPERM,
    KILL_PROCESS,
    ABIS_OF[arch],
    asLibseccompRules(DEFAULT_SECCOMP_PROFILE, arch, caps),
  );
  return { hako, lib };
}

/** The numbers of an ABI whose names libseccomp knows with the same number (x32: with its bit). */
function knownToLibseccomp(abi: SeccompArch): { known: Map<number, string>; differ: string[] } {
  const known = new Map<number, string>(), differ: string[] = [];
  for (const [name, n] of Object.entries(TABLES[abi].table)) {
    const ours = n + TABLES[abi].bit;
    const theirs = libseccompNumber(name, abi);
    if (theirs === undefined) continue;
    if (theirs === ours) known.set(ours, name);
    else differ.push(`${name}: hako ${ours}, libseccomp ${theirs}`);
  }
  return { known, differ };
}

const hex = (n: number | bigint) => `0x${(typeof n === "bigint" ? n : n >>> 0).toString(16)}`;

test("libseccomp numbers every syscall it knows as hako's generated tables do, on all five ABIs", () => {
  for (const abi of Object.keys(TABLES) as SeccompArch[]) {
    const { known, differ } = knownToLibseccomp(abi);
    assert.deepEqual(differ, [], `${abi}: tables disagree`);
    assert.ok(known.size > 250, `${abi}: libseccomp knows only ${known.size} of hako's names`);
  }
}, { skip });

for (const arch of ["x86_64", "aarch64"] as const) {
  for (
    const [label, caps] of [["docker's default capabilities", DEFAULT_CAPABILITIES], [
      "every capability",
      ALL_CAPS,
    ]] as const
  ) {
    test(
      `the default profile on ${arch} with ${label} decides every syscall number as libseccomp does, on every ABI`,
      () => {
        const { hako, lib } = both(arch, caps);
        let compared = 0;
        for (const abi of ABIS_OF[arch]) {
          const { known } = knownToLibseccomp(abi);
          const { max, bit } = TABLES[abi];
          for (let n = bit; n <= bit + max + 10; n++) {
            const data = { nr: n, arch: AUDIT[abi] };
            const ours = runBpf(hako, data);
            if (known.has(n)) {
              assert.equal(hex(ours), hex(runBpf(lib, data)), `${abi} ${known.get(n)} (${n})`);
              compared++;
            } else if (n > bit + max) {
              assert.equal(hex(ours), hex(ENOSYS), `${abi} ${n}, above the table, answers ENOSYS`);
            }
          }
          for (const n of [bit + 1000, bit + 0xffff, 0x3fffffff, 0xffffffff]) {
            if (abi === "x86_64" && n >= X32_BIT) continue;
            assert.equal(hex(runBpf(hako, { nr: n, arch: AUDIT[abi] })), hex(ENOSYS), `${abi} ${hex(n)}`);
          }
        }
        assert.ok(compared > 700, `only ${compared} numbers compared`);
        // An ABI the filter does not cover: both kill the process.
        for (const other of arch === "x86_64" ? [AUDIT.aarch64, AUDIT.arm] : [AUDIT.x86_64, AUDIT.x86]) {
          assert.equal(hex(runBpf(hako, { nr: 0, arch: other })), hex(KILL_PROCESS));
          assert.equal(hex(runBpf(lib, { nr: 0, arch: other })), hex(KILL_PROCESS));
        }
      },
      { skip },
    );
  }
}

test(
  "the conditional rules (socket families, personality values, clone flags) decide each argument as libseccomp does",
  () => {
    const families = [0n, 1n, 2n, 10n, 16n, 37n, 38n, 39n, 40n, 41n, 44n, 45n, 0xffffffffn];
    const personas = [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn, 1n, 0x40000n, 0x20009n, 0x80000000n];
    const cloneFlags = [0x11n, 0x3d0f00n, 0x20000n, 0x10000000n, 0x40000000n, 0x7e020000n, 0x80000000n, 0x1_00000000n];
    for (const arch of ["x86_64", "aarch64"] as const) {
      for (const caps of [DEFAULT_CAPABILITIES, ALL_CAPS]) {
        const { hako, lib } = both(arch, caps);
        for (const abi of ABIS_OF[arch]) {
          const cases: Array<[string, bigint[]]> = [
            ...families.map((f): [string, bigint[]] => ["socket", [f, 1n, 0n]]),
            ...personas.map((p): [string, bigint[]] => ["personality", [p]]),
            ...cloneFlags.map((f): [string, bigint[]] => ["clone", [f, 0n, 0n, 0n, 0n]]),
          ];
          for (const [name, args] of cases) {
            const nr = syscallNumber(name, abi);
            if (nr === undefined || libseccompNumber(name, abi) !== nr) continue;
            const data: SeccompData = { nr, arch: AUDIT[abi], args };
            assert.equal(
              hex(runBpf(hako, data)),
              hex(runBpf(lib, data)),
              `${arch} ${abi} ${name}(${args.map((a) => hex(a)).join(", ")}) with ${caps.length} capabilities`,
            );
          }
        }
      }
    }
  },
  { skip },
);

test(
  "one deliberate difference: socket's family is compared as the int the kernel reads, so high bits cannot smuggle AF_VSOCK",
  () => {
    // docker's rules (as libseccomp builds them) compare 64 bits: 1<<32|40 is "> 40" to them, and
    // AF_VSOCK to the kernel's socket(int family, …).
    for (const arch of ["x86_64", "aarch64"] as const) {
      const { hako, lib } = both(arch, DEFAULT_CAPABILITIES);
      for (const abi of ABIS_OF[arch]) {
        const nr = syscallNumber("socket", abi)!;
        for (const family of [0x1_00000028n, 0xffffffff_00000026n]) {
          const data = { nr, arch: AUDIT[abi], args: [family, 1n, 0n] };
          assert.equal(hex(runBpf(hako, data)), hex(EPERM), `${abi} hako socket(${hex(family)}, …)`);
          // libseccomp compares 32 bits on 32-bit ABIs (x86, x32, arm), as hako does everywhere here.
          const theirs = abi === "x86_64" || abi === "aarch64" ? ALLOW : EPERM;
          assert.equal(hex(runBpf(lib, data)), hex(theirs), `${abi} libseccomp socket(${hex(family)}, …)`);
        }
      }
    }
  },
  { skip },
);

test(
  "a profile of every comparison and action decides as libseccomp does, on 64-bit arguments and the 32-bit ABIs",
  () => {
    const ops = ["eq", "ne", "lt", "le", "gt", "ge", "masked_eq"] as const;
    const operands = [0n, 5n, 0xffffffffn, 0x1_00000000n, 0x1_00000005n, 0xffffffff_fffffffen];
    // One syscall per rule (28 of them).
    const names = [
      "personality",
      "umask",
      "getpgid",
      "setpgid",
      "dup",
      "close",
      "fchdir",
      "fsync",
      "fdatasync",
      "syncfs",
      "getsid",
      "setuid",
      "setgid",
      "alarm",
      "fchmod",
      "fchown",
      "flock",
      "ftruncate",
      "getpriority",
      "setpriority",
      "mlockall",
      "sched_getscheduler",
      "sched_get_priority_max",
      "sched_get_priority_min",
      "dup2",
      "listen",
      "shutdown",
      "kill",
    ];
    const rules: SeccompRule[] = [];
    let i = 0;
    for (const op of ops) {
      for (const value of [5n, 0xffffffffn, 0x1_00000005n, 0xffffffff_fffffffen]) {
        const name = names[i++]!;
        rules.push({
          names: [name],
          action: (["errno", "kill", "trap", "log"] as const)[i % 4]!,
          errno: 10 + i,
          args: [{ index: i % 6, op, value, ...(op === "masked_eq" ? { valueTwo: value & 0xffn } : {}) }],
        });
      }
    }
    rules.push({ names: ["getppid"], action: "errno", errno: 77 });
    rules.push({
      names: ["setsid"],
      action: "errno",
      errno: 99,
      args: [{ index: 0, op: "gt", value: 7 }, { index: 1, op: "lt", value: 0x1_00000000n }],
    });
    const profile: SeccompProfile = { defaultAction: "allow", syscalls: rules, architectures: ["x86", "x32"] };
    const hako = decodeSeccomp(compileSeccomp(profile, "x86_64"));
    const actionOf = (r: SeccompRule) =>
      ({
        errno: errnoRet(r.errno ?? 1),
        kill: 0,
        kill_process: KILL_PROCESS,
        trap: 0x00030000,
        log: 0x7ffc0000,
        allow: ALLOW,
      })[
        r.action
      ];
    const lib = libseccompProgram(
      ALLOW,
      KILL_PROCESS,
      ["x86_64", "x86", "x32"],
      rules.flatMap((r) =>
        r.names.map((name) => ({
          name,
          action: actionOf(r),
          args: (r.args ?? []).map((a) => ({
            index: a.index,
            op: a.op,
            a: BigInt(a.value),
            b: BigInt(a.valueTwo ?? 0),
          })),
        }))
      ),
    );
    const values = [...operands, 4n, 6n, 0xfffffffen, 0x1_00000004n, 0x2_00000005n, 0xffffffff_ffffffffn];
    let compared = 0;
    for (const abi of ABIS_OF.x86_64) {
      for (const name of rules.flatMap((r) => r.names)) {
        const nr = syscallNumber(name, abi);
        if (nr === undefined || libseccompNumber(name, abi) !== nr) continue;
        for (const v of values) {
          for (const w of [0n, 6n, 0x1_00000000n]) {
            const args = [v, w, v, w, v, v];
            const data: SeccompData = { nr, arch: AUDIT[abi], args };
            assert.equal(
              hex(runBpf(hako, data)),
              hex(runBpf(lib, data)),
              `${abi} ${name}(${args.map((a) => hex(a)).join(", ")})`,
            );
            compared++;
          }
        }
      }
    }
    assert.ok(compared > 2000, `only ${compared} cases compared`);
  },
  { skip },
);

test(
  "x86 and x32 calls reach the same allow-list through their own numbers (not killed, not the x86_64 numbers)",
  () => {
    const hako = decodeSeccomp(
      compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch: "x86_64", capabilities: DEFAULT_CAPABILITIES }),
    );
    const decide = (name: string, abi: SeccompArch, args: bigint[] = []) =>
      hex(runBpf(hako, { nr: syscallNumber(name, abi)!, arch: AUDIT_ARCH[abi], args }));
    assert.equal(
      decide("socketcall", "x86"),
      hex(ALLOW),
      "i386 socketcall (docker allows it, as it must for old libcs)",
    );
    assert.equal(decide("mount", "x86"), hex(EPERM));
    assert.equal(decide("keyctl", "x86"), hex(EPERM));
    assert.equal(decide("chown32", "x86"), hex(ALLOW));
    assert.equal(decide("read", "x32"), hex(ALLOW));
    assert.equal(decide("rt_sigaction", "x32"), hex(ALLOW), "x32's own number 512");
    assert.equal(decide("ptrace", "x32"), hex(EPERM), "x32's ptrace (521)");
    // 0x40000000|13 is rt_sigaction's x86_64 number with the x32 bit: not an x32 syscall.
    assert.equal(hex(runBpf(hako, { nr: X32_BIT | 13, arch: AUDIT.x86_64 })), hex(EPERM));
    // i386's number 1 is exit, i386's 11 is execve: checked with i386's table, not x86_64's (write, munmap).
    assert.equal(decide("pidfd_getfd", "x86"), hex(EPERM));
  },
  { skip: false },
);

test(
  "a filter for a profile without architectures kills the compat ABIs, as a libseccomp filter of the native arch does",
  () => {
    const profile: SeccompProfile = { defaultAction: "errno", syscalls: [{ names: ["read"], action: "allow" }] };
    const hako = decodeSeccomp(compileSeccomp(profile, "x86_64"));
    const lib = libseccompProgram(EPERM, KILL_PROCESS, ["x86_64"], [{ name: "read", action: ALLOW, args: [] }]);
    for (const [nr, arch] of [[3, AUDIT.x86], [X32_BIT, AUDIT.x86_64], [0, AUDIT.x86_64], [1, AUDIT.x86_64]] as const) {
      assert.equal(hex(runBpf(hako, { nr, arch })), hex(runBpf(lib, { nr, arch })), `${hex(nr)} on ${hex(arch)}`);
    }
    assert.equal(hex(runBpf(hako, { nr: 3, arch: AUDIT.x86 })), hex(KILL_PROCESS));
    assert.equal(hex(runBpf(hako, { nr: X32_BIT, arch: AUDIT.x86_64 })), hex(KILL_PROCESS));
    void SCMP_ARCH;
  },
  { skip },
);
