/**
 * The standalone `hako` binary (`tools/build.sh`: `bun build --compile`), run where nothing of
 * hako's is: it is copied into an empty temp directory (no node_modules, no source) and runs
 * `version`, `run -e` forking into namespaces, `run script.ts` of a TypeScript script with a local
 * helper module, and `demo`. Also the pure parts of its Bun re-exec (see `Host.ensureSingleThreaded`).
 *
 * dist/hako is built when missing or older than the source; the tests are skipped (saying why)
 * when Bun is missing or the build fails for want of something in the environment.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, needsRoot, tempDir, test } from "./_harness.ts";
import { BUN_JSC_SINGLE_THREADED, missingJscOptions, reexecArgv } from "../src/runner/_host.ts";
import { BUN_SINGLE_THREADED_ENV } from "../ffi/fork.ts";
import { VERSION } from "../src/cli/version.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { which } from "../src/process.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DIST = join(ROOT, "dist/hako");

// ---- the re-exec's pure parts ------------------------------------------------------------------

test("the CLI's copy of the BUN_JSC_* settings equals ffi/fork.ts's", () => {
  assertEquals(BUN_JSC_SINGLE_THREADED, BUN_SINGLE_THREADED_ENV);
});

test("missingJscOptions() names what the environment lacks or sets otherwise", () => {
  assertEquals(missingJscOptions({}), Object.keys(BUN_JSC_SINGLE_THREADED));
  assertEquals(missingJscOptions({ ...BUN_JSC_SINGLE_THREADED }), []);
  assertEquals(
    missingJscOptions({
      BUN_JSC_useConcurrentGC: "false",
      BUN_JSC_numberOfGCMarkers: "1",
      BUN_JSC_useConcurrentJIT: "no",
      BUN_JSC_useParallelMarkingConstraintSolver: "false",
      BUN_JSC_useWarmUpMarkedBlocks: "0",
    }),
    [],
  );
  assertEquals(missingJscOptions({ ...BUN_JSC_SINGLE_THREADED, BUN_JSC_numberOfGCMarkers: "4" }), [
    "BUN_JSC_numberOfGCMarkers",
  ]);
});

test("reexecArgv() takes /proc/self/cmdline as it is, else rebuilds argv from process", () => {
  const p = { argv: ["bun", "/$bunfs/root/hako", "run", "-e", "x"], execPath: "/opt/hako", execArgv: [] };
  assertEquals(reexecArgv("./hako\0run\0-e\0x\0\0", p, true), ["./hako", "run", "-e", "x", ""]);
  assertEquals(reexecArgv("bun\0--smol\0main.ts\0a b\0", p, false), ["bun", "--smol", "main.ts", "a b"]);
  assertEquals(reexecArgv(undefined, p, true), ["/opt/hako", "run", "-e", "x"]);
  assertEquals(
    reexecArgv(
      "",
      { argv: ["/usr/bin/bun", "/src/main.ts", "v"], execPath: "/usr/bin/bun", execArgv: ["--smol"] },
      false,
    ),
    ["/usr/bin/bun", "--smol", "/src/main.ts", "v"],
  );
});

// ---- the binary ---------------------------------------------------------------------------------

function findBun(): string | undefined {
  const local = join(ROOT, "node_modules/.bin/bun");
  if (existsSync(local)) return local;
  const r = spawnSync("bun", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? "bun" : undefined;
}

/** The newest modification time of the files the binary is built from. */
function newestSource(): number {
  let newest = 0;
  const visit = (path: string) => {
    const st = statSync(path);
    if (st.isDirectory()) { for (const e of readdirSync(path)) visit(join(path, e)); }
    else if (/\.(ts|json)$/.test(path)) newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ["src", "ffi", "mod.ts", "package.json", "tools/build.sh"]) {
    if (existsSync(join(ROOT, p))) visit(join(ROOT, p));
  }
  return newest;
}

/** Builds dist/hako unless it is up to date: undefined when it is there, else why the tests skip or fail. */
function build(): { skip?: string; error?: string } {
  if (!findBun()) return { skip: "needs Bun (npm ci, or install bun) to build dist/hako" };
  if (existsSync(DIST) && statSync(DIST).mtimeMs >= newestSource()) return {};
  const r = spawnSync("bash", [join(ROOT, "tools/build.sh")], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
  if (r.status === 0) return {};
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}`;
  // The environment's fault (no Bun, a dependency not installed, a full disk): skip, loudly.
  if (r.status === 127 || /is missing: run 'npm ci'|No space left|ENOSPC|EDQUOT/.test(out)) {
    return { skip: `tools/build.sh could not build dist/hako here: ${out.trim().split("\n").at(-1)}` };
  }
  return { error: `tools/build.sh failed (exit ${r.status}):\n${out}` };
}

const built = build();
const skip = built.skip ?? false;
const skipRoot = skip || needsRoot;
const skipBusybox = skipRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** An empty temp directory holding a copy of dist/hako (and whatever `files` adds). */
function sandbox(files: Record<string, string> = {}): { path: string; hako: string } & Disposable {
  if (built.error) throw new Error(built.error);
  const dir = tempDir("hako-dist-");
  assertEquals(readdirSync(dir.path), [], "the temp dir starts empty");
  const hako = join(dir.path, "hako");
  copyFileSync(DIST, hako);
  chmodSync(hako, 0o755);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir.path, name), text);
  return { path: dir.path, hako, [Symbol.dispose]: () => dir[Symbol.dispose]() };
}

/**
 * Runs `./hako args` in `cwd`, in an environment without the `BUN_JSC_*` settings (so the binary
 * must add them itself) nor any hako variable, with its transpile cache inside `cwd`.
 */
function run(cwd: string, args: string[], env: Record<string, string> = {}): Result {
  const full: Record<string, string> = { NO_COLOR: "1" };
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("BUN_JSC_") && !k.startsWith("HAKO_")) full[k] = v;
  }
  Object.assign(full, { HAKO_CACHE_DIR: join(cwd, ".cache"), ...env });
  const r = spawnSync("./hako", args, { cwd, env: full, encoding: "utf8", timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function show(r: Result): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
}

function cgroupsNamed(prefix: string): string[] {
  const found: string[] = [];
  for (const ctrl of ["cpu", "cpu,cpuacct", "cpuset", "unified", ""]) {
    const dir = join("/sys/fs/cgroup", ctrl);
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir)) if (e.startsWith(prefix)) found.push(join(dir, e));
  }
  return [...new Set(found)];
}

function mountsUnder(path: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(path));
}

test(
  "dist/hako version runs alone as it is; dist/hako run re-executes once with single-threaded JSC for a script that uses hako, not for one that does not",
  () => {
    using box = sandbox();
    const r = run(box.path, ["version"]);
    assertEquals(r.code, 0, show(r));
    assert(
      new RegExp(`^hako ${VERSION.replaceAll(".", "\\.")} \\(bun [\\w.-]+, compiled\\)\\n$`).test(r.stdout),
      show(r),
    );
    assertEquals(r.stderr, "");
    const j = run(box.path, ["version", "--json"]);
    assertEquals(JSON.parse(j.stdout).compiled, true, show(j));
    // A script that uses hako (it may fork) sees the settings the binary re-executed itself with,
    // and its own arguments.
    const report =
      "JSON.stringify({ env: Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(BUN_JSC_|HAKO_BUN)/.test(k))), argv: process.argv.slice(1), ARGV })";
    const e = run(box.path, ["run", "-e", `void Process; console.log(${report})`, "a", "b c"]);
    assertEquals(e.code, 0, show(e));
    assertEquals(JSON.parse(e.stdout), {
      env: { ...BUN_JSC_SINGLE_THREADED },
      argv: ["[eval]", "a", "b c"],
      ARGV: ["a", "b c"],
    });
    // One that does not (a spec module of plain data, whose container's child is native, is one)
    // runs as it was started: no second start of the binary.
    const plain = run(box.path, ["run", "-e", `console.log(${report})`, "a"]);
    assertEquals(plain.code, 0, show(plain));
    assertEquals(JSON.parse(plain.stdout).env, {});
    const bad = run(box.path, ["nope"]);
    assertEquals(bad.code, 2, show(bad));
    assert(bad.stderr.includes('unknown command "nope"'), show(bad));
  },
  { skip },
);

test("dist/hako-runc, the build's link to dist/hako, answers with runc's command line (hako oci)", () => {
  const link = join(ROOT, "dist/hako-runc");
  assert(existsSync(link), "tools/build.sh makes dist/hako-runc");
  assertEquals(statSync(link).ino, statSync(DIST).ino, "a hard link, not a second copy");
  using box = sandbox();
  linkSync(box.hako, join(box.path, "hako-runc"));
  const v = spawnSync("./hako-runc", ["--version"], { cwd: box.path, encoding: "utf8" });
  assertEquals(v.status, 0, `${v.stdout}${v.stderr}`);
  assert(v.stdout.startsWith("hako-runc version "), v.stdout);
  const s = spawnSync("./hako-runc", ["--root", join(box.path, "state"), "state", "nope"], {
    cwd: box.path,
    encoding: "utf8",
  });
  assertEquals(s.status, 1, `${s.stdout}${s.stderr}`);
  assertEquals(s.stderr, "container does not exist\n");
  // The same binary by its own name is hako.
  const h = run(box.path, ["version"]);
  assertEquals(h.code, 0, show(h));
}, { skip });

test("dist/hako run -e: a child forked into new PID and UTS namespaces is PID 1 with its own hostname", () => {
  using box = sandbox();
  const before = readFileSync("/proc/sys/kernel/hostname", "utf8");
  const code = `
    const pid = Process.fork({ namespaces: ["pid", "uts"] }, () => {
      sethostname("hako-dist");
      Process.exec("/bin/sh", "-c", 'echo "pid=$$ host=$(hostname)"; exit 7');
    });
    const { status } = Process.waitpid2(pid);
    console.log("status", status.shellCode);
  `;
  const r = run(box.path, ["run", "-e", code]);
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stdout, "pid=1 host=hako-dist\nstatus 7\n", show(r));
  assertEquals(r.stderr, "", "no warning about JavaScriptCore's helper threads");
  assertEquals(readFileSync("/proc/sys/kernel/hostname", "utf8"), before, "the host's hostname is unchanged");
}, { skip: skipRoot });

test("dist/hako run script.ts: a TypeScript file from disk, with a local typed module and the globals", () => {
  using box = sandbox({
    "helper.ts": `export interface Box {
  readonly name: string;
  readonly cpus: number;
}
export type Flags = number;
export function describe(box: Box, flags: Flags): string {
  return \`\${box.name}:\${box.cpus}:\${(flags & 0x20000000) !== 0}\`;
}
export const ANSWER: number = 42 as const;
`,
    "script.ts": `import { type Box, describe, Flags, ANSWER } from "./helper.ts";
const box: Box = { name: ARGV[0] ?? "none", cpus: Number(ARGV[1]) };
const flags: Flags = Namespace.CLONE_NEWPID | Namespace.CLONE_NEWUTS;
const out: Record<string, unknown> = {
  describe: describe(box, flags),
  answer: ANSWER,
  globals: [typeof Process.fork, typeof Namespace.unshare, typeof Cgroup.CPU, typeof Capability.keep, typeof Mount.mount],
  pid: Process.getpid() === process.pid,
  meta: import.meta.url.endsWith("/script.ts"),
};
console.log(JSON.stringify(out));
process.exitCode = 3;
`,
    "fail.ts": `const n: number = 1;\nthrow new Error(\`broken \${n}\`);\n`,
  });
  const expected = {
    describe: "web:2:true",
    answer: 42,
    globals: ["function", "function", "function", "function", "function"],
    pid: true,
    meta: true,
  };
  for (const pass of ["cold cache", "warm cache"]) {
    const r = run(box.path, ["run", "script.ts", "web", "2"]);
    assertEquals(r.code, 3, `${pass}: ${show(r)}`);
    assertEquals(JSON.parse(r.stdout), expected, pass);
    assertEquals(r.stderr, "", pass);
  }
  const f = run(box.path, ["run", "fail.ts"]);
  assertEquals(f.code, 1, show(f));
  assert(f.stderr.startsWith("error: broken 1") || f.stderr.includes("error: Error: broken 1"), show(f));
  assert(f.stderr.includes("fail.ts:2:"), `the error points into the script:\n${show(f)}`);
}, { skip });

test("dist/hako demo: builds a rootfs, runs the container, shows its evidence, leaves nothing", () => {
  using box = sandbox();
  const rootfs = join(box.path, "rootfs");
  const r = run(box.path, ["demo", "--rootfs", rootfs]);
  assertEquals(r.code, 0, show(r));
  assert(r.stdout.includes("--- inside the container ---"), show(r));
  assert(r.stdout.includes("hostname: hako-demo"), show(r));
  assert(/^\s+1 root\s+sh$/m.test(r.stdout), `the shell is PID 1:\n${show(r)}`);
  assert(r.stdout.includes("CapBnd:\t00000000000004eb"), show(r));
  assert(/cgroup: \d+:[^:]*cpu[^:]*:\/hako-demo-\d+|cgroup: 0::\/hako-demo-\d+/.test(r.stdout), show(r));
  // Without busybox the rootfs holds the host's binaries; a host without iproute2 has no ip to copy.
  const noIp = findStaticBusybox() === undefined && !which("ip");
  assert(r.stdout.includes(noIp ? "loopback: (no ip in this rootfs)" : "loopback: <LOOPBACK,UP"), show(r));
  assert(/root: .*\bbin\b.*\bproc\b/.test(r.stdout), show(r));
  assert(r.stderr.includes(`rootfs: ${rootfs}`), show(r));
  assert(r.stderr.includes("--- container exited: exit 0 ---"), show(r));
  assertEquals(cgroupsNamed("hako-demo-"), []);
  assertEquals(mountsUnder(box.path), []);
  const help = run(box.path, ["demo", "--help"]);
  assertEquals(help.code, 0, show(help));
  assert(help.stdout.startsWith("Usage: hako demo"), show(help));
}, { skip: skipRoot });

test("dist/hako run spec.ts, and start/ps/exec/delete with the supervisor running as the compiled binary", () => {
  const spec = (name: string, command: string) => `
    import type { ContainerSpec } from "./types.ts";
    export default (env: Record<string, string | undefined>): ContainerSpec => ({
      name: ${JSON.stringify(name)},
      rootfs: { builder: "busybox", path: env.ROOTFS! },
      command: ["sh", "-c", ${JSON.stringify(command)}],
      cgroup: { name: ${JSON.stringify(`hako-dist-${name}`)}, pids: { max: 16 } },
    });
  `;
  using box = sandbox({
    "types.ts":
      "export interface ContainerSpec { name: string; rootfs: unknown; command: unknown; cgroup?: unknown }\n",
    "fg.ts": spec("dist-fg", "echo in $(hostname); exit 9"),
    "bg.ts": spec("dist-bg", "echo started; exec sleep 1000"),
  });
  chmodSync(box.path, 0o755);
  const env = { ROOTFS: join(box.path, "rootfs"), HAKO_STATE_DIR: join(box.path, "state") };
  const fg = run(box.path, ["run", "fg.ts"], env);
  assertEquals([fg.code, fg.stdout], [9, "in dist-fg\n"], show(fg));
  let supervisor: number | undefined;
  try {
    const st = run(box.path, ["start", "bg.ts"], env);
    assertEquals([st.code, st.stdout], [0, "dist-bg\n"], show(st));
    supervisor = Number(readFileSync(join(env.HAKO_STATE_DIR, "supervisor.pid"), "utf8").split(" ")[0]);
    assert(readFileSync(`/proc/${supervisor}/cmdline`, "utf8").includes("supervisor"), "the supervisor is the binary");
    const ps = JSON.parse(run(box.path, ["ps", "--json"], env).stdout);
    assertEquals(ps.map((c: { name: string; state: string }) => [c.name, c.state]), [["dist-bg", "running"]]);
    const ex = run(box.path, ["exec", "dist-bg", "--", "hostname"], env);
    assertEquals([ex.code, ex.stdout], [0, "dist-bg\n"], show(ex));
    const del = run(box.path, ["delete", "--force", "dist-bg"], env);
    assertEquals(del.code, 0, show(del));
    assertEquals(cgroupsNamed("hako-dist-"), []);
  } finally {
    run(box.path, ["delete", "--force", "dist-bg"], env);
    if (supervisor) {
      try {
        process.kill(supervisor, "SIGKILL");
      } catch { /* gone */ }
    }
  }
}, { skip: skipBusybox });
