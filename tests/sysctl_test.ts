/**
 * Namespaced sysctls (the spec's `sysctl`, OCI's `linux.sysctl`, docker's `--sysctl`): written by
 * the container's own process in its namespaces after pivot_root — never the host's settings — on
 * the native and the forked path; keys that are not namespaced, or whose namespace is not the
 * container's own, refused by field path before anything is made.
 * @module
 */
import { chmodSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { deepEqual, equal, throws } from "node:assert/strict";
import { isRoot, tempDir, test, withSpawn } from "./_harness.ts";
import { run } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";
import { isSysctlKey, sysctlNamespace, sysctlPath } from "../src/container/_sysctl.ts";
import { ociToSpec } from "../src/oci/config.ts";
import { defaultOciSpec } from "../src/oci/spec_default.ts";

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : !findStaticBusybox()
  ? "needs a static busybox (apt-get install busybox-static)"
  : false;

test("sysctl keys: namespaced ones only, by namespace; each name one directory under /proc/sys", () => {
  equal(sysctlNamespace("net.ipv4.ip_forward"), "net");
  equal(sysctlNamespace("kernel.shmmax"), "ipc");
  equal(sysctlNamespace("fs.mqueue.msg_max"), "ipc");
  equal(sysctlNamespace("kernel.domainname"), "uts");
  equal(sysctlNamespace("kernel.core_pattern"), undefined);
  equal(sysctlNamespace("vm.overcommit_memory"), undefined);
  equal(sysctlPath("net.ipv4.conf.all.forwarding"), "/proc/sys/net/ipv4/conf/all/forwarding");
  for (const bad of ["net", "net..x", "net./x", "net.ipv4/../../x", "net.ipv4. x", ".net.x", "net.x."]) {
    equal(isSysctlKey(bad), false, bad);
  }
  equal(isSysctlKey("net.ipv4.conf.veth-a_1.forwarding"), true);
});

test("a spec's sysctl is checked by field path before anything is made", () => {
  using dir = tempDir("hako-test-sysctl-spec-");
  const base = { name: "x", rootfs: dir.path, command: ["true"] };
  const problems = (extra: Record<string, unknown>) => {
    try {
      resolveSpec({ ...base, ...extra } as never);
      return [];
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      return e.problems.map((p) => p.path);
    }
  };
  deepEqual(problems({ sysctl: { "net.ipv4.ping_group_range": "0 0", "kernel.shmmni": 1024 } }), []);
  deepEqual(
    problems({
      sysctl: {
        "kernel.core_pattern": "|/evil", // host-wide
        "net.ipv4.ip_forward/../../../kernel/core_pattern": "x", // not a key
        "kernel.shmmax": ["1"], // not a string
        "net.core.somaxconn": "1\u0000", // a NUL
      },
    }),
    [
      "sysctl.kernel.core_pattern",
      "sysctl.net.ipv4.ip_forward/../../../kernel/core_pattern",
      "sysctl.kernel.shmmax",
      "sysctl.net.core.somaxconn",
    ],
  );
  // the namespace of its kind must be the container's own: not the host's (none made), nor hako's
  // own joined by path (the write would change the host's setting, as runc refuses)
  deepEqual(problems({ namespaces: ["mount", "pid", "uts", "ipc"], sysctl: { "net.ipv4.ip_forward": "1" } }), [
    "sysctl.net.ipv4.ip_forward",
  ]);
  deepEqual(
    problems({
      namespaces: ["mount", "pid", "uts", "ipc", { type: "net", join: "/proc/self/ns/net" }],
      sysctl: { "net.ipv4.ip_forward": "1" },
    }),
    ["sysctl.net.ipv4.ip_forward"],
  );
  // OCI: linux.sysctl becomes the spec's, refused by its own path
  const c = defaultOciSpec() as unknown as Record<string, Record<string, unknown>>;
  c.linux!.sysctl = { "net.ipv4.ping_group_range": "0 2147483647" };
  deepEqual(ociToSpec(c, "/b", "abc").spec.sysctl, { "net.ipv4.ping_group_range": "0 2147483647" });
  c.linux!.sysctl = { "kernel.core_pattern": "x" };
  throws(() => ociToSpec(c, "/b", "abc"), /linux\.sysctl\.kernel\.core_pattern: not supported by hako/);
});

for (const path of ["native", "forked"] as const) {
  test(`sysctls are the container's own: set inside, the host's unchanged (${path})`, async () => {
    using dir = tempDir("hako-test-sysctl-");
    chmodSync(dir.path, 0o755);
    const rootfs = buildRootfs(join(dir.path, "rootfs"), { builder: "busybox" }).path;
    mkdirSync(join(rootfs, "out"));
    const out = join(dir.path, "out");
    mkdirSync(out);
    const host = {
      ping: readFileSync("/proc/sys/net/ipv4/ping_group_range", "utf8"),
      shmmni: readFileSync("/proc/sys/kernel/shmmni", "utf8"),
    };
    await withSpawn(path === "forked" ? "0" : undefined, async () => {
      const status = await run({
        name: `hako-test-sysctl-${path[0]}-${process.pid}`,
        rootfs,
        sysctl: { "net.ipv4.ping_group_range": "0 0", "kernel.shmmni": "1234", "kernel.domainname": "sysctl.test" },
        mounts: [{ type: "bind", source: out, target: "/out" }],
        command: [
          "sh",
          "-c",
          "cat /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/shmmni /proc/sys/kernel/domainname > /out/v; " +
          // (made read-only after: the container cannot change them back)
          "{ echo 1 > /proc/sys/kernel/shmmni && echo writable || echo read-only; } 2>/dev/null >> /out/v",
        ],
      });
      equal(status.code, 0);
    });
    deepEqual(readFileSync(join(out, "v"), "utf8").split("\n").filter(Boolean), [
      "0\t0",
      "1234",
      "sysctl.test",
      "read-only",
    ]);
    equal(readFileSync("/proc/sys/net/ipv4/ping_group_range", "utf8"), host.ping);
    equal(readFileSync("/proc/sys/kernel/shmmni", "utf8"), host.shmmni);
  }, { skip });
}
