/**
 * hacorb users: the article's `Capability#set`/`set_flag` shape only the calling process, and a
 * root process's execve gives back every capability left in the bounding set. The first exec after
 * such calls says so (a `hako: warning:` naming `Capability.keep`), and
 * `Capability.keep(list, { atExec: true })` keeps the list from the exec on, leaving the steps in
 * between (sethostname, mount) their privileges. Each scenario is a script run by `hako run` under
 * the test's runtime, as a user runs one; where it spawns commands (`system`), on the native spawn
 * path and on the forked one (`HAKO_NATIVE_SPAWN=0`).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertThrows, isRoot, runtime, tempDir, test } from "./_harness.ts";
import { Capability, ConfigError } from "../mod.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const skip = isRoot ? false : "needs root (run the suite with sudo)";
const PATHS = [["native", "1"], ["forked", "0"]] as const;

/** The hako command line under this test's runtime: bin/hako (Deno), or Bun running main.ts. */
const HAKO = runtime === "deno"
  ? [join(ROOT, "bin/hako")]
  : [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli/main.ts")];

/** Runs `source` as a hako script; its exit code, stdout and stderr. */
function hakoScript(source: string, env: Record<string, string> = {}) {
  using dir = tempDir("hako-test-hacorb-");
  const file = join(dir.path, "script.ts");
  writeFileSync(file, `/// <reference path="${ROOT}globals.d.ts" />\nimport process from "node:process";\n${source}`);
  const r = spawnSync(HAKO[0]!, [...HAKO.slice(1), "run", file], {
    cwd: ROOT,
    env: { ...process.env as Record<string, string>, NO_COLOR: "1", HAKO_QUIET: "", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The hex form of a capability list, as /proc/PID/status shows it. */
function hex(list: string[]): string {
  return Capability.toMask(list).toString(16).padStart(16, "0");
}

/** This (root) process's bounding set: what an exec as root gives back. */
const FULL = /^CapBnd:\t(\w+)$/m.exec(readFileSync("/proc/self/status", "utf8"))![1]!;
const CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP"];

/** A forked child makes hacorb's two calls with CAPS, then runs `then` and execs `grep ^Cap`. */
function hacorbScript(then = ""): string {
  return `
const caps = ${JSON.stringify(CAPS)}.map((n) => Capability.numberOf(n));
const pid = Process.fork(() => {
  const c = new Capability();
  c.set(Capability.CAP_PERMITTED, caps);
  c.set_flag(Capability.CAP_EFFECTIVE, caps, Capability.CAP_SET);
  ${then}
  try {
    Kernel.exec("/nonexistent/hako-test-program"); // the first exec fails: the warning is not repeated
  } catch { /* ENOENT */ }
  Kernel.exec("grep", "^Cap[EB]", "/proc/self/status");
});
process.exitCode = Process.waitpid2(pid).status.shellCode;
`;
}

const warnings = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("hako: warning:"));

test("hacorb's set/set_flag as root, then exec: one warning names Capability.keep and what exec gives back", () => {
  const r = hakoScript(hacorbScript());
  assertEquals(r.code, 0, r.stderr);
  // True to hacorb: the exec'd program has every capability again.
  assert(r.stdout.includes(`CapEff:\t${FULL}`) && r.stdout.includes(`CapBnd:\t${FULL}`), r.stdout);
  const w = warnings(r.stderr);
  assertEquals(w.length, 1, r.stderr);
  assert(w[0]!.includes("Capability.keep(list)") && w[0]!.includes("atExec: true"), w[0]);
  assert(w[0]!.includes("CAP_DAC_OVERRIDE"), `it names what comes back: ${w[0]}`);
}, { skip });

test("no warning with HAKO_QUIET=1", () => {
  const r = hakoScript(hacorbScript(), { HAKO_QUIET: "1" });
  assertEquals([r.code, warnings(r.stderr)], [0, []], r.stderr);
}, { skip });

test("no warning when Capability.keep trimmed the bounding set: the exec'd program keeps only the list", () => {
  const r = hakoScript(hacorbScript("Capability.keep(caps);"));
  assertEquals([r.code, warnings(r.stderr)], [0, []], r.stderr);
  assert(r.stdout.includes(`CapEff:\t${hex(CAPS)}`) && r.stdout.includes(`CapBnd:\t${hex(CAPS)}`), r.stdout);
}, { skip });

test("no warning when the bounding set was trimmed by hand (drop_bound of every other capability)", () => {
  const r = hakoScript(hacorbScript(`
  for (let n = 0; n <= Capability.lastCap(); n++) if (!caps.includes(n)) Capability.drop_bound(n);`));
  assertEquals([r.code, warnings(r.stderr)], [0, []], r.stderr);
  assert(r.stdout.includes(`CapBnd:\t${hex(CAPS)}`), r.stdout);
}, { skip });

test("no warning for a process that execs as a non-root user: execve gives it nothing back", () => {
  const r = hakoScript(hacorbScript("setgroups([]); setresgid(1000, 1000, 1000); setresuid(1000, 1000, 1000);"));
  assertEquals([r.code, warnings(r.stderr)], [0, []], r.stderr);
  assert(r.stdout.includes(`CapEff:\t${"0".repeat(16)}`), r.stdout);
}, { skip });

test(
  "keep(list, { atExec: true }): sethostname and mount after it still work; the exec'd program has only the list",
  () => {
    for (const [path, value] of PATHS) {
      using dir = tempDir("hako-test-hacorb-mnt-");
      const r = hakoScript(
        `
const pid = Process.fork({ namespaces: ["uts", "mount"] }, () => {
  Mount.makePrivate("/", { recursive: true });
  Capability.keep(${JSON.stringify(CAPS)}, { atExec: true });
  sethostname("kept-at-exec");                          // CAP_SYS_ADMIN, after the keep call
  Mount.mount("tmpfs", ${JSON.stringify(dir.path)}, { type: "tmpfs" });
  if (!system("hostname kept-by-system")) throw new Error("system(hostname) failed");
  Kernel.exec("sh", "-c", "hostname; grep -c ' ${dir.path} tmpfs' /proc/mounts; grep ^Cap[EPB] /proc/self/status; " +
    "hostname again 2>/dev/null && echo still-admin || echo no-admin");
});
process.exitCode = Process.waitpid2(pid).status.shellCode;
`,
        { HAKO_NATIVE_SPAWN: value },
      );
      assertEquals([r.code, warnings(r.stderr)], [0, []], `${path}: ${r.stderr}`);
      const want = hex(CAPS);
      assertEquals(r.stdout.trim().split("\n"), [
        "kept-by-system",
        "1",
        `CapPrm:\t${want}`,
        `CapEff:\t${want}`,
        `CapBnd:\t${want}`,
        "no-admin",
      ], path);
    }
  },
  { skip },
);

test("keep(list, { atExec: true }) checks the list at once: an unknown capability throws and nothing is pending", () => {
  assertThrows(() => Capability.keep(["CAP_NOT_A_CAPABILITY"], { atExec: true }), ConfigError, /unknown capability/);
});

test(
  "a pending keep that can no longer be applied fails the exec, naming Capability.keep; the program never runs",
  () => {
    const r = hakoScript(`
const pid = Process.fork(() => {
  Capability.keep(["CAP_CHOWN", "CAP_SETPCAP"], { atExec: true });
  Capability.drop(["CAP_CHOWN"]);
  try {
    Kernel.exec("echo", "the program ran");
  } catch (e) {
    console.log(String(e));
    Process._exit(7);
  }
});
process.exitCode = Process.waitpid2(pid).status.shellCode;
`);
    assertEquals(r.code, 7, r.stderr);
    assert(!r.stdout.includes("the program ran"), r.stdout);
    assert(/Capability\.keep/.test(r.stdout) && /CAP_CHOWN/.test(r.stdout) && /EPERM/.test(r.stdout), r.stdout);
  },
  { skip },
);
