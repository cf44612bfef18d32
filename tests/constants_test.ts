/**
 * ffi/constants.ts, the one place for kernel constants, against the system's C headers: a tiny C
 * program (built here with gcc) prints every constant the headers define, and each must equal the
 * module's. Also: errno.ts's names agree with the constants, and so do the signal names.
 * @module
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { strict as assert } from "node:assert";
import { tempDir, test } from "./_harness.ts";
import * as k from "../ffi/constants.ts";
import { ERRNO, errnoName } from "../ffi/errno.ts";
import { SIGNALS } from "../src/signals.ts";
import { SYS } from "../ffi/syscalls.ts";

/** The module's numeric constants by name (the per-architecture tables and SIG_IGN, a pointer, aside). */
const NUMBERS: ReadonlyArray<readonly [string, number]> = Object.entries(k).filter((e): e is [string, number] =>
  typeof e[1] === "number"
);

/** Headers that together define every group (sys/mount.h is left out: it conflicts with linux/mount.h). */
const HEADERS = [
  "errno.h",
  "fcntl.h",
  "sched.h",
  "signal.h",
  "net/if.h",
  "poll.h",
  "sys/ioctl.h",
  "sys/mman.h",
  "sys/prctl.h",
  "sys/stat.h",
  "sys/statvfs.h",
  "sys/wait.h",
  "sys/socket.h",
  "linux/close_range.h",
  "linux/mount.h",
  "linux/netlink.h",
  "linux/openat2.h",
  "linux/seccomp.h",
];

const ST_NAMES = ["RDONLY", "NOSUID", "NODEV", "NOEXEC", "NOATIME", "NODIRATIME", "RELATIME", "NOSYMFOLLOW"];

function haveGcc(): boolean {
  try {
    execFileSync("gcc", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** umount2's flags are only in sys/mount.h, which gets a program of its own. */
const UMOUNT_FLAGS = ["MNT_FORCE", "MNT_DETACH", "MNT_EXPIRE", "UMOUNT_NOFOLLOW"];

/** Builds and runs the C programs: one `NAME VALUE` line per constant their headers define. */
function headerValues(): Map<string, number> {
  const names = [...NUMBERS.map(([n]) => n), ...ST_NAMES.map((n) => `ST_${n}`)];
  return new Map([...cValues(HEADERS, names), ...cValues(["sys/mount.h"], UMOUNT_FLAGS)]);
}

function cValues(headers: readonly string[], names: readonly string[]): Map<string, number> {
  using dir = tempDir("hako-consts-");
  const src = [
    "#define _GNU_SOURCE",
    ...headers.map((h) => `#include <${h}>`),
    "#include <stdio.h>",
    "int main(void) {",
    ...names.map((n) => `#ifdef ${n}\n  printf("${n} %lld\\n", (long long)(${n}));\n#endif`),
    "  return 0;",
    "}",
  ].join("\n");
  const c = join(dir.path, "consts.c"), exe = join(dir.path, "consts");
  writeFileSync(c, src);
  execFileSync("gcc", ["-o", exe, c], { stdio: ["ignore", "ignore", "inherit"] });
  const out = execFileSync(exe, { encoding: "utf8" });
  return new Map(
    out.trim().split("\n").map((l) => {
      const [n, v] = l.split(" ");
      return [n!, Number(v)];
    }),
  );
}

const noGcc = haveGcc() ? false : "needs gcc and the libc/Linux headers (apt-get install gcc libc6-dev)";

test("every kernel constant the C headers define has the headers' value", () => {
  const headers = headerValues();
  const compared: string[] = [];
  for (const [name, value] of NUMBERS) {
    const expected = headers.get(name);
    if (expected === undefined) continue;
    assert.equal(value, expected, `${name}: ffi/constants.ts says ${value}, the headers ${expected}`);
    compared.push(name);
  }
  // Most must have been compared (a header missing from HEADERS would silently compare nothing);
  // Debian 12's headers (Linux 6.1) lack MFD_EXEC (6.3), for one.
  for (const name of ["EINTR", "O_CLOEXEC", "O_DIRECTORY", "O_NOFOLLOW", "AT_FDCWD", "MS_BIND", "PR_SET_DUMPABLE"]) {
    assert.ok(compared.includes(name), `${name} was not found in the headers`);
  }
  for (const name of ["CLONE_NEWUSER", "SIGCHLD", "S_IFCHR", "WNOHANG", "RESOLVE_IN_ROOT", "F_ADD_SEALS"]) {
    assert.ok(compared.includes(name), `${name} was not found in the headers`);
  }
  const missing = NUMBERS.map(([n]) => n).filter((n) => !compared.includes(n));
  assert.ok(
    compared.length >= NUMBERS.length * 0.98,
    `only ${compared.length} of ${NUMBERS.length} compared: ${missing}`,
  );
}, { skip: noGcc });

test("ST_TO_MS maps each statvfs ST_* bit to the MS_* flag of the same name", () => {
  const headers = headerValues();
  const byName = new Map(ST_NAMES.map((n) => [n, headers.get(`ST_${n}`)]));
  assert.equal(k.ST_TO_MS.length, ST_NAMES.length);
  for (const name of ST_NAMES) {
    const ms = (k as unknown as Record<string, number>)[`MS_${name}`]!;
    const st = byName.get(name);
    if (st === undefined) continue; // an older glibc without ST_NOSYMFOLLOW
    assert.deepEqual(k.ST_TO_MS.find(([, m]) => m === ms), [st, ms], `ST_${name} → MS_${name}`);
  }
}, { skip: noGcc });

test("errno.ts names each errno constant by its own name", () => {
  const errnos = NUMBERS.filter(([n]) => /^E[A-Z0-9]+$/.test(n) && n !== "EWOULDBLOCK");
  for (const [name, value] of errnos) assert.equal(errnoName(value), name);
  assert.equal(Object.keys(ERRNO).length, errnos.length, "errno.ts and constants.ts list the same errnos");
});

test("the signal table's numbers are the SIG* constants", () => {
  for (const [name, value] of Object.entries(SIGNALS)) {
    assert.equal(value, (k as unknown as Record<string, number>)[`SIG${name}`], `SIG${name}`);
  }
});

test("ffi/syscalls.ts's numbers for this architecture are sys/syscall.h's", () => {
  const entries = Object.entries(SYS);
  const headers = cValues(["sys/syscall.h"], entries.map(([n]) => `SYS_${n}`));
  for (const [name, nr] of entries) {
    if (headers.has(`SYS_${name}`)) assert.equal(nr, headers.get(`SYS_${name}`), `SYS_${name}`);
  }
  // Older libc headers may lack the newest calls (mount_setattr: glibc 2.34); the classics are there.
  for (const name of ["clone", "pivot_root", "seccomp", "fcntl", "memfd_create"]) assert.ok(headers.has(`SYS_${name}`));
}, { skip: noGcc });
