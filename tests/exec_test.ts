/**
 * execIn(): running a command inside a running container, against the real kernel (as root, with
 * a static busybox rootfs).
 * @module
 */
import process from "node:process";
import { chmodSync, closeSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, needsRoot, tempDir, test } from "./_harness.ts";
import { capField, procFile, statusField, waitUntil } from "./_proc.ts";
import { ConfigError, SetupError } from "../src/errors.ts";
import { Container } from "../src/container/container.ts";
import { execIn, type ExecOptions } from "../src/container/exec.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { DEFAULT_CAPABILITIES } from "../src/container/spec.ts";
import { Capability } from "../src/capability.ts";
import { nativeChildren } from "../src/container/native.ts";
import { nativeSpawnSupported } from "../ffi/spawn.ts";
import type { ContainerSpec } from "../src/container/spec.ts";

const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

let n = 0;

/**
 * Makes and starts a `sleep 1000` container from `spec` in a fresh temp dir, hands it to `fn`,
 * and deletes it (and the temp dir) whatever happens.
 */
async function withContainer(
  spec: Partial<ContainerSpec>,
  fn: (c: Container, dir: string) => Promise<void>,
): Promise<void> {
  using dir = tempDir();
  chmodSync(dir.path, 0o755); // a user-namespace root must be able to reach the rootfs
  const c = await Container.create({
    name: `hako-test-${process.pid}-exec-${++n}`,
    rootfs: { builder: "busybox", path: join(dir.path, "rootfs") },
    command: ["sleep", "1000"],
    ...spec,
  });
  try {
    await c.start();
    await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "exec of sleep");
    await fn(c, dir.path);
  } finally {
    c.delete();
  }
}

/** Runs execIn with stdout (and stderr) going to a host file; returns the status and the output. */
async function capture(pid: number, dir: string, opts: ExecOptions) {
  const file = join(dir, `out-${++n}`);
  const fd = openSync(file, "w");
  try {
    const status = await execIn(pid, { ...opts, stdout: fd, stderr: fd });
    return { status, out: readFileSync(file, "utf8") };
  } finally {
    closeSync(fd);
  }
}

/** The pids whose parent is `ppid` (any state, zombies included). */
function childrenOf(ppid: number): number[] {
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    const stat = procFile(pid, "stat");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === ppid;
  });
}

/** The inode in a namespace link such as `pid:[4026532201]`. */
const nsInode = (link: string) => /\[(\d+)\]/.exec(link)?.[1];

const USERNS: Partial<ContainerSpec> = {
  namespaces: ["pid", "uts", "ipc", "mount", "user", "net"],
  idMap: { uid: { inside: 0, outside: 200000, size: 65536 } },
  hostname: "exec-box",
};

test("execIn joins a user-namespace container: its hostname, uid map, PID namespace, cgroup, root inside", async () => {
  const cgroup = `hako-test-${process.pid}-exec-cg`;
  await withContainer({ ...USERNS, cgroup: { name: cgroup, pids: { max: 50 } } }, async (c, dir) => {
    const script =
      "hostname; cat /proc/self/uid_map; echo $$; readlink /proc/self/ns/pid; cat /proc/self/cgroup; id -u";
    const { status, out } = await capture(c.pid, dir, { argv: ["sh", "-c", script], spec: c.spec });
    assertEquals(status.code, 0, out);
    const lines = out.split("\n");
    assertEquals(lines[0], "exec-box", out);
    assertEquals(lines[1]!.trim().split(/\s+/), ["0", "200000", "65536"], out);
    assert(Number(lines[2]) > 1, `$$ inside: ${lines[2]}`);
    assertEquals(nsInode(lines[3]!), nsInode(readlinkSync(`/proc/${c.pid}/ns/pid`)), "pid namespace");
    assert(lines.some((l) => /^\d+:([^:]*,)?pids(,[^:]*)?:.*\//.test(l) && l.endsWith(`/${cgroup}`)), out);
    assertEquals(lines.at(-2), "0", `id -u: ${out}`);
  });
}, { skip });

test(
  "while it runs, the exec'd process is in the container's cgroup and PID namespace, uid 200000 on the host",
  async () => {
    const cgroup = `hako-test-${process.pid}-exec-cg2`;
    await withContainer({ ...USERNS, cgroup: { name: cgroup, pids: { max: 50 } } }, async (c) => {
      let seen: { pid: number; inCgroup: boolean; nspid: string | undefined; uid: string | undefined } | undefined;
      const status = await execIn(c.pid, {
        argv: ["sleep", "0.5"],
        spec: c.spec,
        onStart: (pid) => {
          const st = procFile(pid, "status");
          seen = {
            pid,
            inCgroup: c.cgroup!.procs().includes(pid),
            nspid: statusField(st, "NSpid"),
            uid: statusField(st, "Uid")?.split(/\s+/)[0],
          };
        },
      });
      assertEquals(status.code, 0);
      assert(seen !== undefined, "onStart was not called");
      assert(seen.inCgroup, `${seen.pid} not in ${cgroup}`);
      assertEquals(seen.nspid?.split(/\s+/).length, 2, `NSpid: ${seen.nspid}`);
      assertEquals(seen.uid, "200000");
      assertEquals(procFile(seen.pid, "status"), "", "the command was reaped");
    });
  },
  { skip },
);

test("execIn reports exit codes and killing signals the way a shell does", async () => {
  await withContainer(USERNS, async (c) => {
    const seven = await execIn(c.pid, { argv: ["sh", "-c", "exit 7"], spec: c.spec });
    assertEquals([seven.code, seven.signal, seven.shellCode], [7, null, 7]);
    const killed = await execIn(c.pid, { argv: ["sh", "-c", "kill -9 $$"], spec: c.spec });
    assertEquals([killed.code, killed.signal, killed.shellCode], [null, 9, 137]);
  });
}, { skip });

test(
  "a command that is not in the container throws SetupError step exec with ENOENT, and leaves no child",
  async () => {
    await withContainer(USERNS, async (c) => {
      let err: unknown;
      try {
        await execIn(c.pid, { argv: ["no-such-program-hako"], spec: c.spec });
      } catch (e) {
        err = e;
      }
      assert(err instanceof SetupError, `expected SetupError, got ${err}`);
      assertEquals(err.step, "exec");
      assert(/^exec: execve\(.*no-such-program-hako.*\): ENOENT/.test(err.message), err.message);
      assertEquals((err.cause as { code?: string }).code, "ENOENT");
      assertEquals(childrenOf(process.pid), [c.pid], "only the container's init is our child");
    });
  },
  { skip },
);

test("a failing setup step names itself: a workdir that does not exist inside", async () => {
  await withContainer(USERNS, async (c) => {
    let err: unknown;
    try {
      await execIn(c.pid, { argv: ["true"], spec: c.spec, workdir: "/no/such/dir" });
    } catch (e) {
      err = e;
    }
    assert(err instanceof SetupError, `expected SetupError, got ${err}`);
    assertEquals(err.step, "workdir");
    assert(/(chdir|openat2)\("\/no\/such\/dir"(, RESOLVE_NO_MAGICLINKS)?\): ENOENT/.test(err.message), err.message);
  });
}, { skip });

test("execIn refuses a pid that does not exist and an empty argv, before doing anything", async () => {
  let err: unknown;
  try {
    await execIn(2 ** 22 + 12345, { argv: ["true"] });
  } catch (e) {
    err = e;
  }
  assert(err instanceof ConfigError, `expected ConfigError, got ${err}`);
  assertEquals(err.message, `pid: no process ${2 ** 22 + 12345}`);
  err = undefined;
  try {
    await execIn(process.pid, { argv: [] });
  } catch (e) {
    err = e;
  }
  assert(err instanceof ConfigError, `expected ConfigError, got ${err}`);
  assertEquals(err.path, "argv");
  assert(/argv: is empty/.test(err.message), err.message);
});

test(
  "without a user namespace: the container's mount, uts and pid namespaces, user, workdir, env, capabilities, no_new_privs, seccomp",
  async () => {
    await withContainer(
      { namespaces: ["pid", "uts", "ipc", "mount", "net"], hostname: "plain-box" },
      async (c, dir) => {
        const script = [
          "hostname",
          "id -u",
          "id -g",
          "pwd",
          'echo "$FOO"',
          "grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status",
          "cat /marker",
        ].join("; ");
        writeFileSync(join(dir, "rootfs/marker"), "the container's rootfs\n");
        const { status, out } = await capture(c.pid, dir, {
          argv: ["/bin/sh", "-c", script],
          spec: c.spec,
          env: { FOO: "bar baz" },
          workdir: "/tmp",
          user: { uid: 1000 },
        });
        assertEquals(status.code, 0, out);
        const lines = out.split("\n");
        assertEquals(lines.slice(0, 5), ["plain-box", "1000", "1000", "/tmp", "bar baz"], out);
        const init = procFile(c.pid, "status");
        assertEquals(
          capField(out, "CapBnd").toString(16),
          capField(init, "CapBnd").toString(16),
          "bounding set as the container's command",
        );
        assertEquals(capField(out, "CapEff").toString(16), "0", "no effective capabilities as uid 1000");
        assert(/^NoNewPrivs:\s*1$/m.test(out), out);
        assert(/^Seccomp:\s*2$/m.test(out), out);
        assert(out.endsWith("the container's rootfs\n"), `/ is not the container's: ${out}`);
      },
    );
  },
  { skip },
);

test("without a spec: root, workdir /, PATH, the default capabilities, no_new_privs and seccomp", async () => {
  await withContainer({ namespaces: ["pid", "uts", "ipc", "mount", "net"] }, async (c, dir) => {
    const script = "id -u; pwd; echo $PATH; grep -E '^(CapEff|CapPrm|CapInh|NoNewPrivs|Seccomp):' /proc/self/status";
    const { status, out } = await capture(c.pid, dir, { argv: ["sh", "-c", script] });
    assertEquals(status.code, 0, out);
    const lines = out.split("\n");
    assertEquals(lines.slice(0, 3), ["0", "/", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], out);
    const want = DEFAULT_CAPABILITIES.reduce(
      (m, name) => m | (1n << BigInt((Capability as unknown as Record<string, number>)[name]!)),
      0n,
    );
    assertEquals(capField(out, "CapEff").toString(16), want.toString(16), "CapEff");
    assertEquals(capField(out, "CapPrm").toString(16), want.toString(16), "CapPrm");
    // the sets are set after the bounding set, as for the container's own command
    assertEquals(capField(out, "CapInh").toString(16), want.toString(16), "CapInh");
    assert(/^NoNewPrivs:\s*1$/m.test(out), out);
    assert(/^Seccomp:\s*2$/m.test(out), out);
  });
}, { skip });

test("several execIn calls run side by side, each with its own status", async () => {
  await withContainer(USERNS, async (c) => {
    const codes = await Promise.all(
      [1, 2, 3, 4].map((i) => execIn(c.pid, { argv: ["sh", "-c", `sleep 0.${i}; exit ${i}`], spec: c.spec })),
    );
    assertEquals(codes.map((s) => s.code), [1, 2, 3, 4]);
  });
}, { skip });

test("the event loop keeps running while execIn waits", async () => {
  await withContainer({ namespaces: ["pid", "uts", "ipc", "mount", "net"] }, async (c) => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      const status = await execIn(c.pid, { argv: ["sleep", "0.3"], spec: c.spec });
      assertEquals(status.code, 0);
    } finally {
      clearInterval(timer);
    }
    assert(ticks >= 10, `only ${ticks} ticks in 300 ms`);
  });
}, { skip });

test(
  "execIn's native children give the command what the forked ones give it (status, namespaces, cwd, env)",
  async () => {
    for (const spec of [USERNS, { namespaces: ["pid", "uts", "ipc", "mount", "net"] as const, hostname: "plain" }]) {
      await withContainer({ ...spec, user: { uid: 7, gid: 7, groups: [7, 8] } }, async (c, dir) => {
        const script = "grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs|Seccomp|Sig(Blk|Ign)):' /proc/self/status;" +
          "hostname; pwd; echo $HAKO_E; for n in pid mnt user; do readlink /proc/self/ns/$n; done";
        const outs: string[] = [];
        for (const native of ["1", "0"]) {
          const before = process.env.HAKO_NATIVE_SPAWN;
          process.env.HAKO_NATIVE_SPAWN = native;
          const count = nativeChildren.count;
          try {
            const { status, out } = await capture(c.pid, dir, {
              argv: ["sh", "-c", script],
              spec: c.spec,
              env: { HAKO_E: "e" },
              workdir: "/tmp",
            });
            assertEquals(status.code, 0, out);
            assertEquals(nativeChildren.count - count, native === "1" ? 1 : 0, "native children");
            outs.push(out);
          } finally {
            if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
            else process.env.HAKO_NATIVE_SPAWN = before;
          }
        }
        assertEquals(outs[0], outs[1]);
        assert(/^Uid:\s+7\s/m.test(outs[0]!), outs[0]);
        // the bounding set is the kept list, in a user namespace too (where it starts full)
        assertEquals(capField(outs[0]!, "CapBnd").toString(16), capField(outs[0]!, "CapInh").toString(16), "CapBnd");
      });
    }
  },
  { skip: skip || (!nativeSpawnSupported() && `no native runner on ${process.arch}`) },
);
