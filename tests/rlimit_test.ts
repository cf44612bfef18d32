import { readFileSync } from "node:fs";
import { assertEquals, assertThrows, test } from "./_harness.ts";
import { afterExec, killAndReap, procFile } from "./_proc.ts";
import { ConfigError, getrlimit, prlimit, Process, Resource, setrlimit } from "../mod.ts";

/** "Max open files" of /proc/PID/limits as [soft, hard] text. */
function openFiles(limits: string): [string, string] {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  if (!m) throw new Error(`no open-files line in ${limits}`);
  return [m[1]!, m[2]!];
}

function text(n: number): string {
  return n === Infinity ? "unlimited" : String(n);
}

test("getrlimit() reads the caller's limits by any spelling of the resource", () => {
  const limit = getrlimit("NOFILE");
  assertEquals(openFiles(readFileSync("/proc/self/limits", "utf8")), [text(limit.soft), text(limit.hard)]);
  assertEquals(getrlimit("RLIMIT_NOFILE"), limit);
  assertEquals(getrlimit("nofile"), limit);
  assertEquals(getrlimit(7), limit);
  assertEquals(Resource.getrlimit(Resource.RLIMIT_NOFILE), [limit.soft, limit.hard]);
});

test("bad resources and values are ConfigErrors, found before any call", () => {
  assertThrows(() => getrlimit("FILES"), ConfigError, /unknown resource "FILES"/);
  assertThrows(() => getrlimit(99), ConfigError, /unknown resource number 99/);
  const pid = Process.fork(() => {
    const before = JSON.stringify(getrlimit("NOFILE"));
    for (
      const bad of [
        () => setrlimit("RLIMIT_FILES", 10),
        () => setrlimit("NOFILE", -1),
        () => setrlimit("NOFILE", 1.5),
        () => setrlimit("NOFILE", 10, 5),
        () => setrlimit("NOFILE", "lots" as "unlimited"),
        () => prlimit(-2, "NOFILE"),
      ]
    ) {
      try {
        bad();
        Process._exit(2);
      } catch (e) {
        if (!(e instanceof ConfigError)) Process._exit(3);
      }
    }
    Process._exit(JSON.stringify(getrlimit("NOFILE")) === before ? 0 : 4);
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
});

test("setrlimit('NOFILE', 1025) in a child is what the exec'd program gets (hard defaults to soft)", async () => {
  const pid = Process.fork(() => {
    setrlimit("NOFILE", 1025);
    Process.exec("sleep", "10");
  });
  try {
    await afterExec(pid, "sleep");
    assertEquals(openFiles(procFile(pid, "limits")), ["1025", "1025"]);
  } finally {
    killAndReap(pid);
  }
  const sh = Process.fork(() => {
    setrlimit("nofile", 1025, getrlimit("NOFILE").hard);
    Process.exec("sh", "-c", 'test "$(ulimit -n)" = 1025');
  });
  assertEquals(Process.waitpid2(sh).status.code, 0);
});

test("prlimit() reads and changes another process's limits; a missing limit keeps its value", async () => {
  const { hard } = getrlimit("NOFILE");
  const pid = Process.fork(() => Process.exec("sleep", "10"));
  try {
    await afterExec(pid, "sleep");
    const old = prlimit(pid, "NOFILE", { soft: 512 });
    assertEquals(old, getrlimit("NOFILE"));
    assertEquals(openFiles(procFile(pid, "limits")), ["512", text(hard)]);
    assertEquals(Resource.getprlimit(pid, "NOFILE"), [512, hard]);
    Resource.setprlimit(pid, Resource.RLIMIT_NOFILE, 256, 300);
    assertEquals(prlimit(pid, "NOFILE"), { soft: 256, hard: 300 });
    const core = prlimit(pid, "CORE");
    if (core.hard === Infinity) {
      prlimit(pid, "CORE", { soft: "unlimited" });
      assertEquals(prlimit(pid, "CORE").soft, Infinity);
      assertEquals(/^Max core file size\s+unlimited\s+unlimited/m.test(procFile(pid, "limits")), true);
    }
  } finally {
    killAndReap(pid);
  }
});
