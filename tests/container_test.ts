import process from "node:process";
import { chmodSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, needsRoot, tempDir, test } from "./_harness.ts";
import { capField, killAndReap, procFile, statusField, waitUntil } from "./_proc.ts";
import { Capability, Namespace, SetupError } from "../mod.ts";
import { Container, run } from "../src/container/container.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { DEFAULT_CAPABILITIES } from "../src/container/spec.ts";
import type { ContainerSpec } from "../src/container/spec.ts";
import { SpecError } from "../src/container/validate.ts";

const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

/** A busybox rootfs in a fresh temp dir. */
function box(): { rootfs: string; spec: (s: Partial<ContainerSpec>) => ContainerSpec } & Disposable {
  const dir = tempDir();
  chmodSync(dir.path, 0o755); // a user-namespace root must be able to reach it
  const rootfs = join(dir.path, "rootfs");
  let n = 0;
  return {
    rootfs,
    spec: (s) => ({
      name: `hako-test-${process.pid}-${++n}`,
      rootfs: { builder: "busybox", path: rootfs },
      command: "true",
      ...s,
    }),
    [Symbol.dispose]: () => dir[Symbol.dispose](),
  };
}

/** Every cgroup directory named `name` in any hierarchy. */
function cgroupDirs(name: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    if (entries.includes(name)) out.push(join(dir, name));
    if (depth > 0) { for (const e of entries) if (!e.includes(".")) walk(join(dir, e), depth - 1); }
  };
  walk("/sys/fs/cgroup", 2);
  return out;
}

test("run() reports the exit code", async () => {
  using b = box();
  const status = await run(b.spec({ command: ["sh", "-c", "exit 7"] }));
  assertEquals(status, { code: 7, signal: null, shellCode: 7 });
}, { skip });

test("run() reports a killing signal with the shell's code (no PID namespace: init ignores its own KILL)", async () => {
  using b = box();
  const status = await run(b.spec({ command: ["sh", "-c", "kill -9 $$"], namespaces: ["mount", "uts", "ipc", "net"] }));
  assertEquals(status, { code: null, signal: 9, shellCode: 137 });
}, { skip });

test(
  "inside: new namespaces, hostname, PID 1, no_new_privs, capabilities, masked and read-only paths, rlimits, loopback",
  async () => {
    using b = box();
    const script = [
      "hostname > /tmp/out",
      "grep -E '^(NoNewPrivs|CapEff):' /proc/self/status >> /tmp/out",
      "for f in /proc/kcore /proc/keys /proc/timer_list; do [ -e $f ] && echo masked $f $(cat $f | wc -c) >> /tmp/out; done",
      "(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo sys=writable >> /tmp/out || echo sys=refused >> /tmp/out",
      "echo nofile=$(ulimit -n) >> /tmp/out",
      "echo lo=$(cat /sys/class/net/lo/operstate) >> /tmp/out",
      "echo pid=$$ >> /tmp/out",
      "echo done >> /tmp/out",
      "exec sleep 30",
    ].join("; ");
    const spec = b.spec({ command: ["sh", "-c", script], rlimits: { NOFILE: 1025 } });
    const c = await Container.create(spec);
    try {
      await c.start();
      const out = join(b.rootfs, "tmp/out");
      await waitUntil(c.pid, () => existsSync(out) && readFileSync(out, "utf8").includes("done\n"), "the facts");
      const facts = readFileSync(out, "utf8");
      const host = Namespace.ids();
      const inside = Namespace.ids(c.pid);
      for (const kind of ["mount", "uts", "ipc", "pid", "net"] as const) {
        assert(inside[kind] !== undefined && inside[kind] !== host[kind], `${kind} namespace is not new`);
      }
      assertEquals(inside.user, host.user, "user namespace (not asked for)");
      assert(facts.startsWith(`${spec.name}\n`), `hostname: ${facts}`);
      assertEquals(statusField(procFile(c.pid, "status"), "NSpid")?.split(/\s+/).at(-1), "1");
      assert(/^pid=1$/m.test(facts), facts);
      assert(/^NoNewPrivs:\s*1$/m.test(facts), facts);
      const want = DEFAULT_CAPABILITIES.reduce(
        (m, name) => m | (1n << BigInt((Capability as unknown as Record<string, number>)[name]!)),
        0n,
      );
      assertEquals(capField(facts, "CapEff").toString(16), want.toString(16), "CapEff");
      const masked = [...facts.matchAll(/^masked (\S+) (\d+)$/gm)];
      assert(masked.length > 0, `no masked file found: ${facts}`);
      for (const [, file, bytes] of masked) assertEquals(bytes, "0", `${file} reads empty`);
      assert(/^sys=refused$/m.test(facts), facts);
      assert(/^nofile=1025$/m.test(facts), facts);
      assert(/^lo=(unknown|up)$/m.test(facts), facts);
    } finally {
      c.delete();
    }
    assertEquals(c.status?.signal, 9);
  },
  { skip },
);

test("a user-namespace container runs as root inside, uid 200000 outside", async () => {
  using b = box();
  const c = await Container.create(b.spec({
    command: ["sleep", "30"],
    namespaces: ["user", "mount", "uts", "ipc", "pid", "net"],
    idMap: { uid: { inside: 0, outside: 200000, size: 65536 } },
  }));
  try {
    await c.start();
    await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "exec of sleep");
    const status = procFile(c.pid, "status");
    assertEquals(statusField(status, "Uid")?.split(/\s+/)[0], "200000");
    assertEquals(readFileSync(`/proc/${c.pid}/uid_map`, "utf8").trim().split(/\s+/), ["0", "200000", "65536"]);
    assert(Namespace.ids(c.pid).user !== Namespace.ids().user, "user namespace is not new");
  } finally {
    await c[Symbol.asyncDispose]();
  }
}, { skip });

test("a bad spec throws SpecError listing every problem, and nothing is created", async () => {
  using b = box();
  const name = `hako-test-${process.pid}-bad`;
  let err: unknown;
  try {
    await Container.create({
      name: "bad name!",
      rootfs: { builder: "busybox", path: b.rootfs },
      command: "true",
      namespaces: ["mount", "pid"],
      mounts: [{ type: "tmpfs", target: "relative/dir" }],
      idMap: { uid: { inside: 0, outside: 100000, size: 10 } },
      hostname: "x",
      cgroup: { name, pids: { max: 5 } },
    });
  } catch (e) {
    err = e;
  }
  assert(err instanceof SpecError, `expected SpecError, got ${err}`);
  const paths = err.problems.map((p) => p.path);
  for (const p of ["name", "mounts[0].target", "idMap", "hostname"]) {
    assert(paths.includes(p), `no problem for ${p}: ${paths.join(", ")}`);
  }
  assert(!existsSync(b.rootfs), "the rootfs was built");
  assertEquals(cgroupDirs(name), []);
}, { skip });

test(
  "a failing setup step throws SetupError naming it and its errno; the child is reaped, the cgroup gone",
  async () => {
    using b = box();
    const name = `hako-test-${process.pid}-fail`;
    let err: unknown;
    try {
      await Container.create(b.spec({
        mounts: [{ type: "bind", source: "/nonexistent-hako", target: "/mnt" }],
        cgroup: { name, pids: { max: 20 } },
      }));
    } catch (e) {
      err = e;
    }
    assert(err instanceof SetupError, `expected SetupError, got ${err}`);
    assertEquals(err.step, "mounts");
    assert(/^mounts: \w+\("\/nonexistent-hako"[^)]*\): ENOENT/.test(err.message), err.message);
    assertEquals((err.cause as { code?: string }).code, "ENOENT");
    assertEquals(cgroupDirs(name), []);
    // No zombie left: waitpid(-1, WNOHANG) finds no child of ours.
    const zombies = readdirSync("/proc").filter((p) =>
      /^\d+$/.test(p) && procFile(Number(p), "stat").includes(` Z ${process.pid} `)
    );
    assertEquals(zombies, []);
  },
  { skip },
);

test("a missing command throws SetupError step exec with ENOENT", async () => {
  using b = box();
  const c = await Container.create(b.spec({ command: ["/nonexistent-hako-program"] }));
  try {
    let err: unknown;
    try {
      await c.start();
    } catch (e) {
      err = e;
    }
    assert(err instanceof SetupError, `expected SetupError, got ${err}`);
    assertEquals(err.step, "exec");
    assert(/^exec: execve\(.*\): ENOENT/.test(err.message), err.message);
    assertEquals(procFile(c.pid, "status"), "", "the child is reaped");
  } finally {
    c.delete();
  }
}, { skip });

test("cgroup: the container's process is in it while running, and it is gone after delete", async () => {
  using b = box();
  const name = `hako-test-${process.pid}-cg`;
  const c = await Container.create(b.spec({ command: ["sleep", "30"], cgroup: { name, pids: { max: 20 } } }));
  try {
    await c.start();
    assert(c.cgroup!.procs().includes(c.pid), `${c.pid} not in ${c.cgroup!.procs()}`);
    assert(cgroupDirs(name).length > 0, "no cgroup directory");
    const stats = c.stats();
    assert(stats.pids !== undefined, `stats: ${JSON.stringify(stats)}`);
  } finally {
    c.delete();
    c.delete(); // idempotent
  }
  assertEquals(cgroupDirs(name), []);
}, { skip });

test("kill() signals the container's init; wait() reports it", async () => {
  using b = box();
  await using c = await Container.create(b.spec({ command: ["sleep", "30"] }));
  await c.start();
  c.kill("KILL");
  assertEquals(await c.wait(), { code: null, signal: 9, shellCode: 137 });
  c.kill(); // after the end: nothing to do
}, { skip });

test("await using deletes the container", async () => {
  using b = box();
  let pid = 0;
  {
    await using c = await Container.create(b.spec({ command: ["sh", "-c", "exit 3"], stdio: "null" }));
    pid = c.pid;
    await c.start();
    assertEquals((await c.wait()).code, 3);
  }
  assertEquals(procFile(pid, "status"), "");
  killAndReap(pid); // nothing to do: already reaped
}, { skip });

test("a rootfs directory that does not exist, or a tarball, throws SetupError step rootfs", async () => {
  for (
    const rootfs of [
      "/nonexistent-hako-rootfs",
      { path: "/nonexistent-hako-rootfs" },
      { tarball: "/nonexistent-hako.tar", path: "/nonexistent-hako-rootfs" },
    ]
  ) {
    let err: unknown;
    try {
      await Container.create({ name: "hako-test-rootfs", rootfs, command: "true" });
    } catch (e) {
      err = e;
    }
    assert(err instanceof SetupError && err.step === "rootfs", `${JSON.stringify(rootfs)}: got ${err}`);
  }
}, { skip });
