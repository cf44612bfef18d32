import { chmodSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { assertEquals, assertThrows, needsRoot, tempDir, test, withSpawn } from "./_harness.ts";
import {
  assertValidHostname,
  ConfigError,
  getdomainname,
  gethostname,
  Process,
  resolveSpec,
  run,
  setdomainname,
  sethostname,
  SpecError,
} from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { nativeChildren } from "../src/container/native.ts";
import { nativeSpawnSupported } from "../ffi/spawn.ts";

test("gethostname() is the host name the kernel reports", () => {
  assertEquals(gethostname(), hostname());
  assertEquals(gethostname(), readFileSync("/proc/sys/kernel/hostname", "utf8").trim());
  assertEquals(getdomainname(), readFileSync("/proc/sys/kernel/domainname", "utf8").trim());
});

test("host names are checked by their UTF-8 bytes: 64 at most, not empty, no NUL", () => {
  assertValidHostname("a".repeat(64));
  assertValidHostname("日".repeat(21)); // 63 bytes
  assertThrows(() => assertValidHostname("a".repeat(65)), ConfigError, /65 bytes/);
  assertThrows(() => assertValidHostname("日".repeat(22)), ConfigError, /hostname: is 66 bytes of UTF-8/);
  assertThrows(() => assertValidHostname(""), ConfigError, /empty/);
  assertThrows(() => assertValidHostname("a\0b"), ConfigError, /NUL/);
});

test("sethostname and setdomainname in a child's UTS namespace; the host's names are unchanged", () => {
  const before = [gethostname(), getdomainname()];
  const pid = Process.fork({ namespaces: ["uts"] }, () => {
    sethostname("hako-uts-test");
    setdomainname("hako.example");
    if (gethostname() !== "hako-uts-test" || getdomainname() !== "hako.example") Process._exit(2);
    Process.exec("sh", "-c", 'test "$(hostname)" = hako-uts-test');
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
  assertEquals([gethostname(), getdomainname()], before);
}, { skip: needsRoot });

test("a too-long host name is rejected before sethostname is called", () => {
  const before = gethostname();
  const pid = Process.fork({ namespaces: ["uts"] }, () => {
    const original = gethostname();
    for (const bad of ["x".repeat(65), "日".repeat(22), ""]) {
      try {
        sethostname(bad);
        Process._exit(2);
      } catch (e) {
        if (!(e instanceof ConfigError)) Process._exit(3);
      }
    }
    if (gethostname() !== original) Process._exit(4);
    sethostname("日".repeat(21));
    Process._exit(gethostname() === "日".repeat(21) ? 0 : 5);
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
  assertEquals(gethostname(), before);
}, { skip: needsRoot });

for (const path of ["native", "forked"] as const) {
  test(`a container's domainname is its UTS namespace's, the host's unchanged (${path})`, async () => {
    using dir = tempDir("hako-test-domain-");
    chmodSync(dir.path, 0o755);
    const rootfs = buildRootfs(join(dir.path, "rootfs"), { builder: "busybox" }).path;
    const before = getdomainname();
    const count = nativeChildren.count;
    await withSpawn(path === "forked" ? "0" : undefined, async () => {
      const status = await run({
        name: `hako-test-domain-${path[0]}-${process.pid}`,
        rootfs,
        hostname: "box",
        domainname: "hako.example",
        mounts: [{ type: "bind", source: dir.path, target: "/out" }],
        command: ["sh", "-c", "cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname > /out/names"],
      });
      assertEquals(status.code, 0);
    });
    assertEquals(readFileSync(join(dir.path, "names"), "utf8"), "box\nhako.example\n");
    assertEquals(getdomainname(), before);
    if (path === "native" && nativeSpawnSupported()) assertEquals(nativeChildren.count - count, 1);
    assertThrows(
      () => resolveSpec({ name: "x", rootfs, command: ["true"], namespaces: ["mount"], domainname: "a/b" }),
      SpecError,
      /domainname: needs a new UTS namespace.*domainname: must not contain '\/'/s,
    );
  }, { skip: needsRoot || (findStaticBusybox() ? false : "needs a static busybox (apt-get install busybox-static)") });
}
