/**
 * The fork pass (ffi/fork.ts): every page of the runtime's heap reaches a forked child, even one the
 * engine mapped after the last JavaScript ran. V8 maps new heap pages MADV_DONTFORK; a pass made
 * from JavaScript left a window in which an allocation mapped such a page, and the child died of
 * SIGSEGV at its first allocation there (CI: a hacorb test now and then; forced below: 15 of 20
 * forks). The pass is now machine code run inside glibc's fork() and right before each raw clone.
 *
 * Checked: the embedded bytes are the .S files as assembled; the x86-64 code natively and the
 * aarch64 code under qemu-user in a static C harness (tests/fixtures/fork_advise_harness.c: a
 * region marked MADV_DONTFORK reaches the child through each entry, and is missing without the
 * pass); and, in a fresh runtime process, forks and namespace clones whose parent's heap grew after
 * the JavaScript pass. qemu-user ignores MADV_DONTFORK, so under it the harness shows only that
 * the code runs, returns and makes its madvise calls (its -strace log) before each clone.
 * @module
 */
import process from "node:process";
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assertEquals, runtime, tempDir, test } from "./_harness.ts";
import { assembledTest } from "./_assembled.ts";
import { BUN_SINGLE_THREADED_ENV, FORK_ADVISE_AARCH64_HEX, FORK_ADVISE_X86_64_HEX } from "../ffi/fork.ts";
import { which } from "../src/process.ts";

const HARNESS = fileURLToPath(new URL("./fixtures/fork_advise_harness.c", import.meta.url));

assembledTest("fork pass", "ffi/fork_advise_x86_64.S", FORK_ADVISE_X86_64_HEX);
assembledTest("fork pass", "ffi/fork_advise_aarch64.S", FORK_ADVISE_AARCH64_HEX);

/** Builds the harness with `gcc` and writes `hex` beside it; returns [harness, code.bin]. */
function harness(dir: string, gcc: string, hex: string): [string, string] {
  const exe = join(dir, "harness"), bin = join(dir, "code.bin");
  execFileSync(gcc, ["-static", "-O2", "-o", exe, HARNESS]);
  writeFileSync(bin, Buffer.from(hex, "hex"));
  return [exe, bin];
}

test(
  "the x86-64 fork pass, run natively: a MADV_DONTFORK region reaches the child through fork's handler and the raw clone, and is missing without it",
  () => {
    using tmp = tempDir("hako-test-forkpass-");
    const [exe, bin] = harness(tmp.path, "gcc", FORK_ADVISE_X86_64_HEX);
    const out = execFileSync(exe, [bin], { encoding: "utf8" });
    assertEquals(out.trim().split("\n"), [
      "control signal 11", // the harness can tell: without the pass the child finds no region
      "prepare exit 0",
      "atfork exit 0",
      "clone exit 0",
      "advise 0",
    ]);
  },
  { skip: (process.arch !== "x64" && "x86-64 only") || (!which("gcc") && "needs gcc (apt-get install gcc libc6-dev)") },
);

const QEMU = "qemu-aarch64-static";
const A64_GCC = "aarch64-linux-gnu-gcc";
test(
  "the aarch64 fork pass, under qemu-user: it advises each span right before fork and its own clone, and the child returns 0",
  () => {
    using tmp = tempDir("hako-test-forkpass64-");
    const [exe, bin] = harness(tmp.path, A64_GCC, FORK_ADVISE_AARCH64_HEX);
    const r = spawnSync(QEMU, ["-strace", exe, bin], { encoding: "utf8" });
    assertEquals(r.status, 0, r.stderr);
    // qemu ignores MADV_DONTFORK, so the control child reads the region too: only the calls show.
    assertEquals(r.stdout.trim().split("\n"), [
      "control exit 0",
      "prepare exit 0",
      "atfork exit 0",
      "clone exit 0",
      "advise 0",
    ]);
    // The log, in order: which madvise and clone calls were made (the region is the 65536-byte one).
    const calls = r.stderr.split("\n").flatMap((line) => {
      if (/madvise\(0x[0-9a-f]+,65536,MADV_DOFORK\)/.test(line)) return ["dofork"];
      if (/madvise\(0x[0-9a-f]+,65536,MADV_DONTFORK\)/.test(line)) return ["dontfork"];
      if (/ clone\(0x11,/.test(line)) return ["raw clone"]; // the pass's own clone(SIGCHLD, 0…)
      if (/ clone\(/.test(line)) return ["fork"];
      return [];
    });
    assertEquals(calls, [
      "dontfork",
      "fork", // control
      "dontfork",
      "dofork",
      "fork", // prepare, then fork()
      "dontfork",
      "dofork",
      "fork", // inside fork(): the prepare handler
      "dontfork",
      "dofork",
      "raw clone", // advise_clone(SIGCHLD, 1)
      "dontfork",
      "dofork", // advise_clone(0, 0)
    ]);
  },
  {
    skip: (process.arch !== "x64" && "runs the aarch64 code under qemu on x86-64") ||
      (!which(QEMU) && `needs ${QEMU} (apt-get install qemu-user-static)`) ||
      (!which(A64_GCC) && `needs ${A64_GCC} (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)`),
  },
);

/** The script: forks (and namespace clones, as root) whose parent allocated after prepareFork. */
const SCRIPT = `
import { forkProcess, prepareFork } from "${new URL("../ffi/fork.ts", import.meta.url).href}";
import { libc } from "${new URL("../ffi/libc.ts", import.meta.url).href}";
const { fork, waitpid, _exit } = libc();
const clones = globalThis.Deno?.args?.[0] ?? globalThis.process?.argv?.[2];
const st = new Int32Array(1);
const status = (pid) => { waitpid(pid, st, 0); return st[0]; };
const work = (n, tag) => { const a = []; for (let j = 0; j < n; j++) a.push({ j, s: tag + j }); return a.length; };
let bad = [];
for (let i = 0; i < 20; i++) {
  prepareFork();
  work(50000, "parent"); // the heap grows after the JavaScript pass: new pages, MADV_DONTFORK
  const pid = fork();
  if (pid === 0) _exit(work(200000, "child") === 200000 ? 0 : 3);
  const s = status(pid);
  if (s !== 0) bad.push("fork " + i + ": status " + s);
}
if (clones === "clones") {
  for (let i = 0; i < 10; i++) {
    work(50000, "parent");
    const pid = forkProcess(0x04000000); // CLONE_NEWUTS: the intermediate fork, then its raw clone
    if (pid === 0) {
      work(100000, "child");
      // and from inside a forked child: the raw clone
      const inner = forkProcess(0x04000000);
      if (inner === 0) _exit(work(100000, "grandchild") === 100000 ? 0 : 3);
      _exit(status(inner) === 0 ? 0 : 4);
    }
    const s = status(pid);
    if (s !== 0) bad.push("clone " + i + ": status " + s);
  }
}
console.log(JSON.stringify(bad));
`;

test("forks whose parent's heap grew after the JavaScript pass keep every page (and namespace clones, from the runtime and from a forked child)", () => {
  using tmp = tempDir("hako-test-forkheap-");
  const file = join(tmp.path, "forks.mjs");
  writeFileSync(file, SCRIPT);
  const args = process.getuid?.() === 0 ? ["clones"] : [];
  const [cmd, argv] = runtime === "deno"
    ? [process.execPath, ["run", "-A", "--v8-flags=--single-threaded", file, ...args]]
    : [process.execPath, [file, ...args]];
  const r = spawnSync(cmd, argv, {
    encoding: "utf8",
    env: { ...process.env, ...BUN_SINGLE_THREADED_ENV },
    timeout: 120_000,
  });
  assertEquals(r.status, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout.trim().split("\n").at(-1)!), []);
});
