import { mkdirSync, writeFileSync } from "node:fs";
import process from "node:process";
import { assertEquals, assertThrows, needsRoot, tempDir, test } from "./_harness.ts";
import { afterExec, killAndReap, procFile, statusField, waitUntil } from "./_proc.ts";
import {
  ConfigError,
  getegid,
  geteuid,
  getgid,
  getgroups,
  getuid,
  Kernel,
  lookupGroup,
  lookupUser,
  Process,
  setgid,
  setgroups,
  setresgid,
  setresuid,
  setuid,
  supplementaryGroups,
  SyscallError,
} from "../mod.ts";

/** The whitespace-separated fields of a status line, e.g. Uid → ["0", "0", "0", "0"]. */
function ids(status: string, key: string): string[] {
  return (statusField(status, key) ?? "").split(/\s+/).filter(Boolean);
}

test("getuid/geteuid/getgid/getegid/getgroups report the caller's ids", () => {
  assertEquals(getuid(), process.getuid!());
  assertEquals(geteuid(), process.geteuid!());
  assertEquals(getgid(), process.getgid!());
  assertEquals(getegid(), process.getegid!());
  assertEquals(getgroups().join(" "), ids(procFile(process.pid, "status"), "Groups").join(" "));
});

test("lookupUser() and lookupGroup() read /etc/passwd and /etc/group of a root directory", () => {
  const root = lookupUser("root");
  assertEquals(root?.uid, 0);
  assertEquals(root?.home, "/root");
  assertEquals(lookupUser(0)?.name, "root");
  assertEquals(lookupGroup("root")?.gid, 0);
  assertEquals(lookupUser("no-such-user-hako"), undefined);

  using dir = tempDir();
  mkdirSync(`${dir.path}/etc`);
  writeFileSync(
    `${dir.path}/etc/passwd`,
    "# a comment\nroot:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000:Web Server,,,:/srv/web:/bin/false\n",
  );
  writeFileSync(`${dir.path}/etc/group`, "root:x:0:\nweb:x:1000:\nwww:x:33:web, other\nstaff:x:50:other\n");
  assertEquals(lookupUser("web", dir.path), {
    name: "web",
    uid: 1000,
    gid: 1000,
    gecos: "Web Server,,,",
    home: "/srv/web",
    shell: "/bin/false",
  });
  assertEquals(lookupUser(1000, dir.path)?.name, "web");
  assertEquals(lookupGroup("www", dir.path), { name: "www", gid: 33, members: ["web", "other"] });
  assertEquals(lookupGroup(50, dir.path)?.name, "staff");
  assertEquals(supplementaryGroups("web", dir.path), [1000, 33]);
  assertThrows(() => supplementaryGroups("nobody-here", dir.path), ConfigError, /no user "nobody-here"/);
  assertThrows(() => lookupUser("x", `${dir.path}/missing`), SyscallError, /ENOENT/);
  assertThrows(() => lookupUser(""), ConfigError, /user/);
});

test("setgroups, setgid and setuid in a child are seen from outside in /proc/PID/status", async () => {
  const pid = Process.fork(() => {
    setgroups([100, 200]);
    setgid(1234);
    setuid(4321);
    Process.exec("sleep", "10");
  });
  try {
    const status = await afterExec(pid, "sleep");
    assertEquals(ids(status, "Uid"), ["4321", "4321", "4321", "4321"]);
    assertEquals(ids(status, "Gid"), ["1234", "1234", "1234", "1234"]);
    assertEquals(ids(status, "Groups"), ["100", "200"]);
    assertEquals(statusField(status, "CapEff"), "0000000000000000", "dropping root dropped the capabilities");
  } finally {
    killAndReap(pid);
  }
}, { skip: needsRoot });

test("setresuid and setresgid set real, effective and saved ids separately", async () => {
  const pid = Process.fork(() => {
    setgroups([]);
    setresgid(11, 12, 13);
    setresuid(21, 22, -1);
    Kernel.sleep(10);
  });
  try {
    await waitUntil(pid, () => ids(procFile(pid, "status"), "Uid")[0] === "21", "the child's setresuid");
    const status = procFile(pid, "status");
    assertEquals(ids(status, "Uid"), ["21", "22", "0", "22"]);
    assertEquals(ids(status, "Gid"), ["11", "12", "13", "12"]);
    assertEquals(ids(status, "Groups"), []);
  } finally {
    killAndReap(pid);
  }
}, { skip: needsRoot });

test("bad ids are ConfigErrors before any call", () => {
  const pid = Process.fork(() => {
    for (const bad of [() => setuid(-5), () => setgid(2 ** 32), () => setgroups([1, 1.5]), () => setresuid(1, -2, 1)]) {
      try {
        bad();
        Process._exit(2);
      } catch (e) {
        if (!(e instanceof ConfigError)) Process._exit(3);
      }
    }
    const groups = ids(procFile(Process.getpid(), "status"), "Groups").map(Number);
    Process._exit(getuid() === 0 && getgroups().join() === groups.join() ? 0 : 4);
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
}, { skip: needsRoot });
