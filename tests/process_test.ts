import { readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { procFile, waitUntil } from "./_proc.ts";
import { assert, assertEquals, assertThrows, gc, needsRoot, tempDir, test } from "./_harness.ts";
import { ConfigError, Process, SyscallError } from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { SIG_IGN } from "../ffi/constants.ts";

test("fork() runs the callback in a child and waitpid2() reports its exit", () => {
  const pid = Process.fork(() => {
    if (Process.getpid() === Process.getppid()) Process._exit(9);
  });
  const { pid: reaped, status } = Process.waitpid2(pid);
  assertEquals(reaped, pid);
  assert(status.exited && status.success, `status ${status}`);
});

test("an exception in the child's callback exits 1", () => {
  const pid = Process.fork(() => {
    throw new Error("boom (expected in this test)");
  });
  assertEquals(Process.waitpid2(pid).status.code, 1);
});

test("a signal that kills the child is decoded with its shell code 128+n", () => {
  const pid = Process.fork(() => {
    Process.kill(Process.getpid(), "KILL");
  });
  const { status } = Process.waitpid2(pid);
  assert(status.signaled);
  assertEquals(status.signal, 9);
  assertEquals(status.shellCode, 137);
});

test("exec() replaces the child with a program found in PATH; its exit code comes back", () => {
  const pid = Process.fork(() => Process.exec("sh", "-c", "exit 7"));
  assertEquals(Process.waitpid2(pid).status.code, 7);
});

test("exec() of a string with shell syntax runs it under /bin/sh -c", () => {
  const pid = Process.fork(() => Process.exec("test $((6*7)) = 42"));
  assertEquals(Process.waitpid2(pid).status.code, 0);
});

test("exec() of a missing program throws SyscallError ENOENT", () => {
  const pid = Process.fork(() => {
    try {
      Process.exec("/nonexistent/hako-program");
    } catch (e) {
      Process._exit(e instanceof SyscallError && e.code === "ENOENT" ? 42 : 1);
    }
  });
  assertEquals(Process.waitpid2(pid).status.code, 42);
});

test("system() returns true, false, or null when the command cannot run", () => {
  assertEquals(Process.system("true"), true);
  assertEquals(Process.system("false"), false);
  assertEquals(Process.system("/nonexistent/hako-program"), null);
});

test("the exec'd child starts with SIGPIPE at its default disposition", () => {
  const pid = Process.fork(() => Process.exec("sh", "-c", 'grep -q "^SigIgn:\\s*0*$" /proc/self/status'));
  assertEquals(Process.waitpid2(pid).status.code, 0);
});

test("a signal the runtime ignores (not only SIGPIPE) is at its default in the exec'd child, as on the native path", () => {
  // SIGUSR1 and SIGRTMIN+3: outside the old short list of the forked path's reset
  const { signal } = libc();
  const before = [signal(10, SIG_IGN), signal(37, SIG_IGN)];
  try {
    const pid = Process.fork(() => Process.exec("sh", "-c", 'grep -q "^SigIgn:\\s*0*$" /proc/self/status'));
    assertEquals(Process.waitpid2(pid).status.code, 0);
  } finally {
    signal(10, before[0]!);
    signal(37, before[1]!);
  }
});

test("wait() reaps without blocking the event loop", async () => {
  const pid = Process.fork(() => Process.exec("sleep", "0.2"));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const status = await Process.wait(pid);
  clearInterval(timer);
  assert(status.success);
  assert(ticks >= 5, `the event loop ran only ${ticks} times while waiting`);
});

test("waitpid() of a pid that is not our child throws ECHILD", () => {
  const e = assertThrows(() => Process.waitpid(1), SyscallError, /waitpid\(1\): ECHILD/);
  assertEquals(e.code, "ECHILD");
});

test("kill() accepts Ruby's order and rejects unknown signals", () => {
  const pid = Process.fork(() => Process.exec("sleep", "10"));
  Process.kill("TERM", pid);
  assertEquals(Process.waitpid2(pid).status.signal, 15);
  assertThrows(() => Process.kill(pid, "SIGNOPE"), ConfigError, /unknown signal/);
});

test("fork() of an async callback fails loudly in the child", () => {
  const pid = Process.fork(async () => {});
  assertEquals(Process.waitpid2(pid).status.code, 1);
});

test("1000 forks in a row with garbage collection in parent and child are all reaped", async () => {
  const deadline = (ms: number) => Date.now() + ms;
  let garbage: unknown[] = [];
  for (let i = 0; i < 1000; i++) {
    if (i % 50 === 0) {
      garbage = Array.from({ length: 20000 }, (_, j) => ({ j, s: `x${j}` }));
      gc();
    }
    const pid = Process.fork(() => {
      const a = Array.from({ length: 5000 }, (_, j) => ({ j }));
      if (i % 100 === 0) gc();
      Process._exit(a.length === 5000 ? 0 : 3);
    });
    // Bounded wait: a hung child is killed and counted as a failure.
    const until = deadline(5000);
    let r = Process.waitpid2(pid, Process.WNOHANG);
    while (r.pid === 0) {
      if (Date.now() > until) {
        Process.kill(pid, "KILL");
        Process.waitpid(pid);
        throw new Error(`fork ${i} hung`);
      }
      await new Promise((res) => setTimeout(res, 1));
      r = Process.waitpid2(pid, Process.WNOHANG);
    }
    if (!r.status.success) throw new Error(`fork ${i}: child ${r.status}`);
  }
  assert(garbage.length > 0);
  const children = readFileSync(`/proc/${Process.getpid()}/task/${Process.getpid()}/children`, "utf8").trim();
  assertEquals(children, "", "children left");
}, { skip: false });

test("fork({ namespaces }) with a user namespace and id maps makes the child root inside", () => {
  const pid = Process.fork({
    namespaces: ["user", "pid"],
    uidMap: [{ inside: 0, outside: 200000, size: 1000 }],
    gidMap: [{ inside: 0, outside: 200000, size: 1000 }],
  }, () => {
    const status = readFileSync("/proc/self/status", "utf8");
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    Process._exit(uid === "0" && Process.getpid() === 1 ? 0 : 2);
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
}, { skip: needsRoot });

test("fork() rejects id maps without a user namespace before forking", () => {
  assertThrows(
    () => Process.fork({ uidMap: [{ inside: 0, outside: 1, size: 1 }] }, () => {}),
    ConfigError,
    /need a new user namespace/,
  );
});

test("spawn() starts a program without forking the runtime: its pid, env and cwd; the status comes from waitpid2", () => {
  using dir = tempDir();
  const out = join(dir.path, "out");
  const pid = Process.spawn(["/bin/sh", "-c", `echo "$HAKO_X $(pwd)" > ${out}; exit 5`], {
    env: { HAKO_X: "x", PATH: "/usr/bin:/bin" },
    cwd: "/tmp",
  });
  assertEquals(Process.waitpid2(pid).status.code, 5);
  assertEquals(readFileSync(out, "utf8"), "x /tmp\n");
});

test("spawn() of a missing program or into a missing cwd throws in the parent, naming the call", () => {
  const e1 = assertThrows(() => Process.spawn(["no-such-program-hako"]), SyscallError);
  assertEquals([e1.syscall, e1.code], ["execve", "ENOENT"]);
  const e2 = assertThrows(() => Process.spawn(["true"], { cwd: "/nonexistent-hako" }), SyscallError);
  assertEquals([e2.syscall, e2.code], ["chdir", "ENOENT"]);
});

test("spawn() into new namespaces: the program is PID 1 of its own PID namespace", () => {
  using dir = tempDir();
  const out = join(dir.path, "out");
  const pid = Process.spawn(["/bin/sh", "-c", `echo $$ > ${out}`], { namespaces: ["pid", "uts"] });
  assertEquals(Process.waitpid2(pid).status.code, 0);
  assertEquals(readFileSync(out, "utf8"), "1\n");
}, { skip: needsRoot });

test("spawn() leaves the program no blocked or ignored signal (the runtime ignores SIGPIPE)", () => {
  using dir = tempDir();
  const out = join(dir.path, "out");
  const pid = Process.spawn(["/bin/sh", "-c", `grep -E '^Sig(Blk|Ign)' /proc/self/status > ${out}`]);
  assertEquals(Process.waitpid2(pid).status.code, 0);
  // (sh itself ignores nothing until told to)
  assertEquals(readFileSync(out, "utf8"), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
});

test('fork({ namespaces: ["time"] }): the child is in a time namespace of its own', async () => {
  const pid = Process.fork({ namespaces: ["time"] }, () => Process.exec(["sleep", "5"]));
  try {
    await waitUntil(pid, () => procFile(pid, "comm").trim() === "sleep", "the exec of sleep");
    assert(readlinkSync(`/proc/${pid}/ns/time`) !== readlinkSync("/proc/self/ns/time"), "the host's time namespace");
  } finally {
    Process.kill(pid, "KILL");
    Process.waitpid(pid);
  }
}, { skip: needsRoot });
