/**
 * The demo and the seed articles' scripts (examples/), run as a user runs them: the demo with
 * `deno run`, the hacorb translations with `bin/hako run`, each on a busybox rootfs built here,
 * with a non-interactive command instead of the article's interactive shell.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, isRoot, tempDir, test } from "./_harness.ts";
import { Capability, Namespace } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { which } from "../src/process.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : findStaticBusybox()
  ? false
  : "needs a static busybox (apt-get install busybox-static)";

function run(argv: string[], env: Record<string, string>): { code: number | null; out: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    env: { ...process.env as Record<string, string>, NO_COLOR: "1", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function hakoRun(script: string, env: Record<string, string>) {
  return run([join(ROOT, "bin/hako"), "run", join(ROOT, "examples", script)], env);
}

function cgroupsNamed(prefix: string): string[] {
  const found: string[] = [];
  for (const ctrl of ["cpu", "cpuset", "unified", ""]) {
    const dir = join("/sys/fs/cgroup", ctrl);
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir)) if (e.startsWith(prefix)) found.push(join(dir, e));
  }
  return found;
}

function deno(): string {
  const local = join(ROOT, "node_modules/deno/deno");
  return existsSync(local) ? local : "deno";
}

test("the demo runs a container and shows its evidence, leaving no cgroup", () => {
  using dir = tempDir();
  const r = run([deno(), "run", "-A", "--v8-flags=--single-threaded", "examples/demo.ts"], {
    HAKO_DEMO_ROOTFS: join(dir.path, "demo"),
  });
  assertEquals(r.code, 0, r.out);
  assert(r.out.includes("hostname: hako-demo"), r.out);
  assert(/^\s+1 root\s+sh$/m.test(r.out), `the shell is PID 1:\n${r.out}`);
  assert(r.out.includes("CapBnd:\t00000000000004eb"), r.out);
  assert(/cgroup: \d+:cpu[^:]*:\/hako-demo-\d+/.test(r.out), r.out);
  assert(r.out.includes("loopback: <LOOPBACK,UP"), r.out);
  assert(/^root: .*\bbin\b.*\bproc\b/m.test(r.out), r.out);
  assertEquals(cgroupsNamed("hako-demo-"), []);
}, { skip });

// A fresh machine without busybox-static: the demo builds its rootfs from host binaries (and the
// libraries they load), which must hold every program the demo's shell runs: no "not found".
const skipHost = !isRoot
  ? "needs root (run the suite with sudo)"
  : !which("ps") || !which("ip")
  ? "needs ps and ip on the host for the host-binaries rootfs (apt-get install procps iproute2)"
  : false;

test("the demo on host binaries (no busybox) shows the same evidence, every program it runs found", () => {
  using dir = tempDir();
  const r = run([deno(), "run", "-A", "--v8-flags=--single-threaded", "examples/demo.ts"], {
    HAKO_DEMO_ROOTFS: join(dir.path, "demo"),
    HAKO_DEMO_BUILDER: "host",
  });
  assertEquals(r.code, 0, r.out);
  assert(r.out.includes("(host, built now)"), r.out);
  assert(!/not found|No such file/i.test(r.out), `a program the demo runs is missing:\n${r.out}`);
  assert(r.out.includes("hostname: hako-demo"), r.out);
  assert(/^\s+1 root\s+sh$/m.test(r.out), `the shell is PID 1:\n${r.out}`);
  assert(r.out.includes("CapBnd:\t00000000000004eb"), r.out);
  assert(/cgroup: \d+:cpu[^:]*:\/hako-demo-\d+/.test(r.out), r.out);
  assert(r.out.includes("loopback: <LOOPBACK,UP"), r.out);
  assert(/^root: .*\bbin\b.*\bproc\b/m.test(r.out), r.out);
  assertEquals(cgroupsNamed("hako-demo-"), []);
}, { skip: skipHost });

test("on a host without procps and iproute2, the demo lists its processes from /proc and says it has no ip", () => {
  using dir = tempDir();
  const rootfs = join(dir.path, "demo");
  buildRootfs(rootfs, { builder: "host" });
  for (const p of ["bin/ps", "bin/ip"]) rmSync(join(rootfs, p), { force: true });
  const r = run([deno(), "run", "-A", "--v8-flags=--single-threaded", "examples/demo.ts"], {
    HAKO_DEMO_ROOTFS: rootfs,
    HAKO_DEMO_BUILDER: "host",
  });
  assertEquals(r.code, 0, r.out);
  assert(r.out.includes("(host, already built)"), r.out);
  assert(!/not found|No such file/i.test(r.out), r.out);
  assert(/^\s+PID USER\s+COMMAND\n\s+1 root\s+sh\n(CapEff)/m.test(r.out), `only the shell, as PID 1:\n${r.out}`);
  assert(r.out.includes("loopback: (no ip in this rootfs)"), r.out);
  assert(/^root: .*\bbin\b.*\bproc\b/m.test(r.out), r.out);
  assertEquals(cgroupsNamed("hako-demo-"), []);
}, { skip: isRoot ? false : "needs root (run the suite with sudo)" });

test("a host-binaries rootfs built by an older hako, without tr, is rebuilt with it", () => {
  using dir = tempDir();
  const path = join(dir.path, "rootfs");
  const first = buildRootfs(path, { builder: "host" });
  assertEquals([first.builder, first.created], ["host", true]);
  assert(existsSync(join(path, "bin/tr")), "tr is in the host rootfs");
  // What hako 0.1.0's host builder left: its marker, and no tr.
  rmSync(join(path, "bin/tr"));
  writeFileSync(join(path, ".hako-rootfs"), JSON.stringify({ version: 1, builder: "host" }) + "\n");
  const again = buildRootfs(path, { builder: "host" });
  assertEquals([again.builder, again.created], ["host", true], "the old rootfs is rebuilt");
  assert(existsSync(join(path, "bin/tr")), "tr is back");
  assertEquals(buildRootfs(path, { builder: "host" }).created, false, "then it is kept");
}, { skip: !which("tr") && "needs tr on the host" });

test("seed 000 step 1: fork and exec, the exit code comes back", () => {
  const r = hakoRun("hacorb/01_fork.ts", { HAKO_CMD: "sh -c 'exit 3'" });
  assertEquals(r.code, 3, r.out);
}, { skip });

test("seed 000 step 2: the child runs in a CPU and a cpuset cgroup, removed afterwards", () => {
  const name = `hako-test-seed02-${process.pid}`;
  const r = hakoRun("hacorb/02_cgroup.ts", { HAKO_CGROUP: name, HAKO_CPUS: "0", HAKO_CMD: "cat /proc/self/cgroup" });
  assertEquals(r.code, 0, r.out);
  assert(new RegExp(`:cpu[^:]*:/${name}$`, "m").test(r.out), r.out);
  assert(new RegExp(`:cpuset:/${name}$`, "m").test(r.out), r.out);
  assertEquals(cgroupsNamed(name), []);
}, { skip });

test("seed 000 step 3: unshare(CLONE_NEWPID) makes the child PID 1; its UTS namespace is new", () => {
  const name = `hako-test-seed03-${process.pid}`;
  const r = hakoRun("hacorb/03_namespaces.ts", {
    HAKO_CGROUP: name,
    HAKO_CPUS: "0",
    HAKO_CMD: "echo pid=$$; readlink /proc/self/ns/uts; readlink /proc/self/ns/net",
  });
  assertEquals(r.code, 0, r.out);
  assert(r.out.includes("pid=1"), r.out);
  const ids = Namespace.ids();
  assert(!r.out.includes(`uts:[${ids.uts}]`) && r.out.includes("uts:["), r.out);
  assert(!r.out.includes(`net:[${ids.net}]`) && r.out.includes("net:["), r.out);
  assertEquals(cgroupsNamed(name), []);
}, { skip });

test("seed 000 step 4: the exec'd shell keeps exactly the article's capabilities", () => {
  const name = `hako-test-seed04-${process.pid}`;
  const r = hakoRun("hacorb/04_capability.ts", {
    HAKO_CGROUP: name,
    HAKO_CPUS: "0",
    HAKO_CMD: "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
  });
  assertEquals(r.code, 0, r.out);
  const want = Capability.toMask([
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
  ]).toString(16).padStart(16, "0");
  assert(r.out.includes(`CapEff:\t${want}`) && r.out.includes(`CapBnd:\t${want}`), `want ${want}:\n${r.out}`);
}, { skip });

/** The article's capability list (seed 000, step 4), as /proc/PID/status shows it. */
const SEED_000_CAPS = Capability.toMask([
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
]).toString(16).padStart(16, "0");

/** Every process descended from `pid`, from /proc/[0-9]*\/stat's parent field. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, "utf8");
    } catch {
      continue; // gone
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
  }
  const out: number[] = [];
  const todo = [pid];
  while (todo.length > 0) {
    const next = children.get(todo.pop()!) ?? [];
    out.push(...next), todo.push(...next);
  }
  return out;
}

for (const [path, value] of [["native", "1"], ["forked", "0"]]) {
  test(
    `seed 000 step 5, in the article's order: hostname, loopback and /proc after the capability step; outside, the shell shows only the kept capabilities (${path} spawn)`,
    async () => {
      using dir = tempDir();
      const rootfs = buildRootfs(join(dir.path, "rootfs"), { builder: "busybox" }).path;
      const name = `hako-test-seed05-${process.pid}`;
      const child = spawn(join(ROOT, "bin/hako"), ["run", join(ROOT, "examples/hacorb/05_chroot.ts")], {
        cwd: ROOT,
        env: {
          ...process.env as Record<string, string>,
          NO_COLOR: "1",
          HAKO_QUIET: "",
          HAKO_NATIVE_SPAWN: value, // how system("hostname debian") and the rest are started
          HAKO_CGROUP: name,
          HAKO_CPUS: "0",
          HAKO_ROOTFS: rootfs,
          // `cat` holds the container open (reading stdin) while the test looks at it from outside.
          // (No `umount /proc` at the end: without CAP_SYS_ADMIN the shell cannot; the mount goes with
          // the container's mount namespace.)
          HAKO_CMD: "hostname; ps -o pid,comm; ip -o link show lo; grep -c ^proc /proc/mounts; echo READY; cat",
        },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      child.stderr!.on("data", (d) => (out += d));
      const exited = new Promise<number | null>((res) => child.on("close", (code) => res(code)));
      try {
        const until = Date.now() + 30_000;
        while (!out.includes("READY") && child.exitCode === null && Date.now() < until) {
          await new Promise((res) => setTimeout(res, 20));
        }
        assert(out.includes("READY"), `the container never got ready:\n${out}`);
        const ownPidNs = readlinkSync("/proc/self/ns/pid");
        const inside = descendants(child.pid!).filter((p) => {
          try {
            return readlinkSync(`/proc/${p}/ns/pid`) !== ownPidNs;
          } catch {
            return false;
          }
        });
        const seen = inside.map((p) => {
          const status = readFileSync(`/proc/${p}/status`, "utf8");
          const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(status)?.[1];
          return { nspid: field("NSpid")?.split(/\s+/).at(-1), eff: field("CapEff"), bnd: field("CapBnd") };
        });
        assert(seen.some((s) => s.nspid === "1"), `the exec'd shell (PID 1 inside) is among ${JSON.stringify(seen)}`);
        for (const s of seen) assertEquals([s.eff, s.bnd], [SEED_000_CAPS, SEED_000_CAPS], JSON.stringify(seen));
      } finally {
        child.stdin!.end();
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        await exited;
        clearTimeout(timer);
      }
      assertEquals(child.exitCode, 0, out);
      assert(/^debian$/m.test(out), out);
      assert(/^\s*1 sh$/m.test(out), `the shell is PID 1:\n${out}`);
      assert(/lo: <LOOPBACK,UP/.test(out), out);
      assert(/^1$/m.test(out), `/proc is mounted (after the capability step):\n${out}`);
      assert(!out.includes("hako: warning"), out);
      assertEquals(cgroupsNamed(name), []);
    },
    { skip },
  );
}

test("seed 004: unshare -pfmur + chroot: ps shows only the container, the shell as PID 1", () => {
  using dir = tempDir();
  const rootfs = buildRootfs(join(dir.path, "rootfs"), { builder: "busybox" }).path;
  const r = hakoRun("unshare_chroot.ts", {
    HAKO_ROOTFS: rootfs,
    HAKO_CMD: "mount -t proc proc /proc && ps -o pid,user,comm && umount /proc",
  });
  assertEquals(r.code, 0, r.out);
  assert(/^\s*1 root\s+sh$/m.test(r.out), r.out);
  assertEquals(r.out.trim().split("\n").filter((l) => /^\s*\d+ /.test(l)).length, 2, r.out);
}, { skip });
