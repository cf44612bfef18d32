import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { promisify } from "node:util";
import { assert, assertEquals, assertThrows, needsRoot, test } from "./_harness.ts";
import { ConfigError, Namespace, Process } from "../mod.ts";

/** Runs `fn` in a forked child and returns what it wrote to a pipe-free channel: a temp file. */
function inChild(options: Parameters<typeof Process.fork>[0], fn: () => void): number {
  const pid = Process.fork(options as never, fn);
  return pid;
}

test("a child cloned into new namespaces has new inodes for each, seen from outside", () => {
  const mine = Namespace.ids();
  const kinds = ["mount", "uts", "ipc", "pid", "net", "cgroup"] as const;
  const pid = inChild({ namespaces: [...kinds] }, () => Process.exec("sleep", "5"));
  try {
    // The exec may not have happened yet, but the namespaces are the clone's.
    const theirs = Namespace.ids(pid);
    for (const k of kinds) {
      if (k === "pid") continue; // /proc/PID/ns/pid is the pid's own namespace: the parent's for the child itself
      assert(theirs[k] !== undefined && theirs[k] !== mine[k], `${k}: ${theirs[k]} vs ${mine[k]}`);
    }
    const pidForChildren = readFileSync(`/proc/${pid}/status`, "utf8").match(/^NSpid:\s+(.*)$/m)?.[1];
    assertEquals(pidForChildren?.split(/\s+/).at(-1), "1", "PID inside the new namespace");
  } finally {
    Process.kill(pid, "KILL");
    Process.waitpid(pid);
  }
}, { skip: needsRoot });

test("a hostname set in a new UTS namespace is not seen outside", () => {
  const before = hostname();
  const pid = Process.fork({ namespaces: ["uts"] }, () => {
    Process.exec("sh", "-c", 'hostname hako-uts-test && test "$(hostname)" = hako-uts-test');
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
  assertEquals(hostname(), before);
}, { skip: needsRoot });

test(
  "Namespace.unshare(CLONE_NEWPID) in the parent makes the next fork PID 1, and the runtime keeps working",
  async () => {
    Namespace.unshare(Namespace.CLONE_NEWPID);
    assertEquals(Namespace.pendingFlags(), Namespace.CLONE_NEWPID);
    const pid = Process.fork(() => Process._exit(Process.getpid() === 1 ? 0 : 1));
    assertEquals(Process.waitpid2(pid).status.code, 0);
    assertEquals(Namespace.pendingFlags(), 0);
    // Timers, async file reads, subprocesses and workers still work in the parent.
    await new Promise((r) => setTimeout(r, 5));
    const text = await readFile("/proc/self/status", "utf8");
    assert(text.includes("Pid:"));
    const out = await promisify(execFile)("sh", ["-c", "echo ok"]);
    assertEquals(out.stdout, "ok\n");
    const worker = new Worker(
      URL.createObjectURL(new Blob(["self.postMessage(1)"], { type: "text/javascript" })),
      { type: "module" },
    );
    const msg = await new Promise((r) => (worker.onmessage = (e) => r(e.data)));
    worker.terminate();
    assertEquals(msg, 1);
  },
  { skip: needsRoot },
);

test("Namespace.unshare() in a forked child takes effect at once", () => {
  const pid = Process.fork(() => {
    Namespace.unshare(["uts"]);
    Process.exec("sh", "-c", 'hostname inner-child && test "$(hostname)" = inner-child');
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
}, { skip: needsRoot });

test("setns() joins another process's namespace by path", () => {
  const holder = Process.fork({ namespaces: ["uts"] }, () => {
    Process.exec("sh", "-c", "hostname hako-joined; sleep 5");
  });
  try {
    // Wait for the hostname to be set.
    for (let i = 0; i < 200 && Namespace.ids(holder).uts === Namespace.ids().uts; i++) Process.system("sleep 0.01");
    Process.system("sleep 0.1");
    const pid = Process.fork(() => {
      Namespace.setns(`/proc/${holder}/ns/uts`, "uts");
      Process.exec("sh", "-c", 'test "$(hostname)" = hako-joined');
    });
    assertEquals(Process.waitpid2(pid).status.code, 0);
  } finally {
    Process.kill(holder, "KILL");
    Process.waitpid(holder);
  }
}, { skip: needsRoot });

test("namespace names are validated with the field path", () => {
  assertThrows(
    () => Namespace.namespaceFlags(["pid", "bogus" as never]),
    ConfigError,
    /namespaces\[1\]: unknown namespace "bogus"/,
  );
  assertThrows(() => Namespace.namespaceFlags(0x1), ConfigError, /not CLONE_NEW/);
});

test("id maps that overlap are refused with both ranges named", () => {
  assertThrows(
    () =>
      Namespace.assertValidIdMap([
        { inside: 0, outside: 80000, size: 100 },
        { inside: 100, outside: 80050, size: 100 },
      ], "idMap.uid"),
    ConfigError,
    /idMap.uid\[1\]: outside range 80050..80149 overlaps idMap.uid\[0\] \(80000..80099\)/,
  );
});
