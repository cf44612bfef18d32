import process from "node:process";
import { execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { chmodSync, copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertThrows, needsRoot, tempDir, test } from "./_harness.ts";
import { Process, SetupError } from "../mod.ts";
import {
  addAddress,
  createVethPair,
  deleteLink,
  findHostClash,
  formatAddress,
  hardenHostLink,
  HOST_LINK_SYSCTLS,
  type HostNetwork,
  hostNetworks,
  linkIndex,
  networkOf,
  networksOverlap,
  parseCidr,
  sameSubnet,
  setLinkUp,
} from "../src/network.ts";
import { which } from "../src/process.ts";
import { Container } from "../src/container/container.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import type { ContainerSpec } from "../src/container/spec.ts";
import { defaultVethHostName, resolveSpec, SpecError } from "../src/container/validate.ts";

const busybox = findStaticBusybox();
const skip = needsRoot || (busybox === undefined && "needs a static busybox (apt-get install busybox-static)");
/** For the tests that look at the host's links with `ip`. */
const noIp = !which("ip") && "needs ip on the host to look at its links (apt-get install iproute2)";

/** `ip …` output, or undefined when it fails. */
function ip(...args: string[]): string | undefined {
  try {
    return execFileSync("ip", args, { stdio: ["ignore", "pipe", "ignore"] }).toString();
  } catch {
    return undefined;
  }
}

/** Every link on the host whose name contains `part`. */
function hostLinks(part: string): string[] {
  return (ip("-o", "link") ?? "").split("\n").filter((l) => l.includes(part));
}

/** Deletes a host link if it is there (test cleanup). */
function cleanupLink(name: string): void {
  try {
    deleteLink(name);
  } catch { /* gone */ }
}

let n = 0;
function box(): { spec: (s: Partial<ContainerSpec>) => ContainerSpec; rootfs: string } & Disposable {
  const dir = tempDir();
  chmodSync(dir.path, 0o755);
  const rootfs = join(dir.path, "rootfs");
  return {
    rootfs,
    spec: (s) => ({
      name: `hako-net-${process.pid}-${++n}`,
      rootfs: { builder: "busybox", path: rootfs },
      command: "true",
      ...s,
    }),
    [Symbol.dispose]: () => dir[Symbol.dispose](),
  };
}

test("parseCidr() reads IPv4 and IPv6 CIDRs and refuses anything else", () => {
  const c = parseCidr("10.200.0.1/30");
  assertEquals([c.version, [...c.bytes], c.prefixLength], [4, [10, 200, 0, 1], 30]);
  assertEquals(parseCidr("fd00::1/64").bytes[15], 1);
  for (const bad of ["10.200.0.1", "10.200.0.256/24", "10.0.0.1/33", "10.0.0.1/0", "x/24", "fd00::1::2/64"]) {
    assertThrows(() => parseCidr(bad), RangeError, /Invalid CIDR/);
  }
  assert(sameSubnet(parseCidr("10.200.7.1/30"), parseCidr("10.200.7.2/30")));
  assert(!sameSubnet(parseCidr("10.200.7.1/30"), parseCidr("10.200.7.5/30")));
});

test("network functions check names and CIDRs before any call", () => {
  assertThrows(() => createVethPair("hk-a-name-far-too-long", "hk-b"), RangeError, /at most 15 bytes/);
  assertThrows(() => createVethPair("hk-a", "hk b"), RangeError, /whitespace/);
  assertThrows(() => addAddress("hk-a", "10.1.2.3"), RangeError, /Invalid CIDR/);
  assertThrows(() => deleteLink(""), RangeError, /non-empty/);
  assert(defaultVethHostName("a-container-with-a-long-name").length <= 15);
});

test("createVethPair/addAddress/setLinkUp/deleteLink work through netlink in a network namespace of our own", () => {
  const pid = Process.fork({ namespaces: ["net"] }, () => {
    createVethPair("hk-test-a", "hk-test-b");
    addAddress("hk-test-a", "10.200.9.1/30");
    addAddress("hk-test-b", "fd00:200:9::2/64");
    setLinkUp("hk-test-a");
    setLinkUp("hk-test-b");
    if (linkIndex("hk-test-a") <= 1) throw new Error("no index for hk-test-a");
    const addrs = ip("-o", "addr") ?? "";
    if (!/hk-test-a\s+inet 10\.200\.9\.1\/30/.test(addrs)) throw new Error(`no IPv4 address:\n${addrs}`);
    if (!/hk-test-b\s+inet6 fd00:200:9::2\/64/.test(addrs)) throw new Error(`no IPv6 address:\n${addrs}`);
    if (!/hk-test-a@hk-test-b: <[^>]*\bUP\b/.test(ip("-o", "link", "show", "hk-test-a") ?? "")) {
      throw new Error("hk-test-a is not up");
    }
    let clash = "";
    try {
      createVethPair("hk-test-a", "hk-test-c");
    } catch (e) {
      clash = (e as Error).message;
    }
    if (!clash.includes("netlink RTM_NEWLINK veth hk-test-a/hk-test-c: EEXIST")) throw new Error(`clash: ${clash}`);
    deleteLink("hk-test-b");
    if (ip("link", "show", "hk-test-a") !== undefined) throw new Error("hk-test-a outlived its peer");
    try {
      deleteLink("hk-test-a");
      throw new Error("deleting a missing link succeeded");
    } catch (e) {
      if (!/ENODEV/.test((e as Error).message)) throw e;
    }
  });
  const { status } = Process.waitpid2(pid);
  assertEquals(status.code, 0, "the child's checks");
}, { skip: needsRoot || noIp });

test("a container with a veth pair: addresses on both ends, ping both ways, gone after delete()", async () => {
  using b = box();
  const spec = b.spec({
    command: ["sh", "-c", "ping -c1 -W2 10.200.7.1 >/dev/null 2>&1; echo ping=$? > /tmp/net.out; exec sleep 30"],
    network: { veth: { hostAddress: "10.200.7.1/30", containerAddress: "10.200.7.2/30" } },
  });
  const host = defaultVethHostName(spec.name);
  let c: Container | undefined;
  try {
    c = await Container.create(spec);
    assert(/inet 10\.200\.7\.1\/30/.test(ip("-o", "addr", "show", host) ?? ""), `no address on ${host}`);
    await c.start();
    const out = join(b.rootfs, "tmp/net.out");
    for (let i = 0; i < 100 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 50));
    assertEquals(readFileSync(out, "utf8").trim(), "ping=0", "busybox ping inside to 10.200.7.1");
    execFileSync(busybox!, ["ping", "-c1", "-W2", "10.200.7.2"], { stdio: "ignore" });
    c.delete();
    assertEquals(ip("link", "show", host), undefined, `${host} after delete()`);
  } finally {
    c?.delete();
    cleanupLink(host);
  }
}, { skip: skip || noIp });

test("the host end of a veth is hardened: its sysctls read back as set, IPv6 off for an IPv4-only pair", async () => {
  using b = box();
  const spec = b.spec({
    command: ["sleep", "30"],
    network: { veth: { hostAddress: "10.200.10.1/30", containerAddress: "10.200.10.2/30" } },
  });
  const host = defaultVethHostName(spec.name);
  let c: Container | undefined;
  try {
    c = await Container.create(spec);
    for (const s of HOST_LINK_SYSCTLS) {
      const path = `/proc/sys/net/${s.family}/conf/${host}/${s.key}`;
      if (s.family === "ipv6" && !existsSync(path)) continue; // a kernel without IPv6
      assertEquals(readFileSync(path, "utf8").trim(), s.value, path);
    }
    const v6 = `/proc/sys/net/ipv6/conf/${host}/disable_ipv6`;
    if (existsSync(v6)) assertEquals(readFileSync(v6, "utf8").trim(), "1", v6);
    assert(!/inet6/.test(ip("-o", "addr", "show", host) ?? ""), `${host} has an IPv6 address`);
  } finally {
    c?.delete();
    cleanupLink(host);
  }
}, { skip: skip || noIp });

test("hardenHostLink() writes under the root it is given and refuses a name that would leave conf/", () => {
  using dir = tempDir();
  const root = dir.path;
  for (const f of ["ipv4", "ipv6"]) {
    for (const n of ["hk-x", "all"]) execFileSync("mkdir", ["-p", join(root, f, "conf", n)]);
  }
  writeFileSync(join(root, "ipv6/conf/hk-x/disable_ipv6"), "0");
  writeFileSync(join(root, "ipv4/conf/all/rp_filter"), "2");
  writeFileSync(join(root, "ipv4/conf/all/route_localnet"), "0");
  const warnings = hardenHostLink("hk-x", { root, disableIpv6: true });
  assertEquals(readFileSync(join(root, "ipv4/conf/hk-x/rp_filter"), "utf8"), "1");
  assertEquals(readFileSync(join(root, "ipv6/conf/hk-x/accept_ra"), "utf8"), "0");
  assertEquals(readFileSync(join(root, "ipv6/conf/hk-x/disable_ipv6"), "utf8"), "1");
  assertEquals(warnings.length, 1, warnings.join("; "));
  assert(/net\.ipv4\.conf\.all\.rp_filter is 2.*loose/.test(warnings[0]!), warnings[0]);
  assertThrows(() => hardenHostLink("../all", { root }), RangeError, /must not contain '\/'/);
});

const SPOOF_C = join(dirname(fileURLToPath(import.meta.url)), "_spoof_udp.c");
const gcc = which("gcc");
const looseRp = (() => {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/conf/all/rp_filter", "utf8")) > 1;
  } catch {
    return false;
  }
})();
const spoofSkip = skip || (!gcc && "needs gcc and libc6-dev to build the raw-packet sender (tests/_spoof_udp.c)") ||
  (looseRp && "net.ipv4.conf.all.rp_filter is 2 (loose), which overrides the host end's strict filter");

test(
  "a packet with a spoofed source sent from inside the container never reaches a host socket; from the container's own address it does",
  async () => {
    using b = box();
    using tmp = tempDir();
    const spoof = join(tmp.path, "spoof_udp");
    execFileSync(gcc!, ["-static", "-O2", "-o", spoof, SPOOF_C], { stdio: ["ignore", "ignore", "pipe"] });
    // 198.51.100.7 (TEST-NET-2) is routed out of some other interface, or not at all: never through the veth.
    const [hostIp, containerIp, spoofed, port] = [
      "10.200.11.1",
      "10.200.11.2",
      "198.51.100.7",
      20000 + process.pid % 20000,
    ];
    const send = (from: string, what: string) => `/spoof_udp ${from} ${hostIp} ${port} ${what}`;
    const spec = b.spec({
      command: [
        "sh",
        "-c",
        `${send(spoofed, "spoofed-1")} && ${send(containerIp, "real-1")} || echo send failed > /tmp/err; ` +
        `while [ ! -e /tmp/go ]; do sleep 0.05; done; ${send(spoofed, "spoofed-2")} && ${
          send(containerIp, "real-2")
        }; ` +
        "exec sleep 30",
      ],
      network: { veth: { hostAddress: `${hostIp}/30`, containerAddress: `${containerIp}/30` } },
    });
    const host = defaultVethHostName(spec.name);
    const got: string[] = [];
    const sock = createSocket("udp4");
    sock.on("message", (m) => got.push(m.toString()));
    const arrived = async (what: string) => {
      for (let i = 0; i < 200 && !got.includes(what); i++) {
        if (existsSync(join(b.rootfs, "tmp/err"))) throw new Error("the sender failed inside the container");
        await new Promise((r) => setTimeout(r, 50));
      }
      assert(got.includes(what), `${what} never arrived (got ${JSON.stringify(got)})`);
      await new Promise((r) => setTimeout(r, 100)); // anything sent before it has arrived too
    };
    let c: Container | undefined;
    try {
      c = await Container.create(spec);
      copyFileSync(spoof, join(b.rootfs, "spoof_udp"));
      chmodSync(join(b.rootfs, "spoof_udp"), 0o755);
      await new Promise<void>((resolve, reject) => {
        sock.once("error", reject);
        sock.bind(port, hostIp, () => resolve());
      });
      await c.start();
      await arrived("real-1");
      assert(!got.includes("spoofed-1"), `the spoofed packet was delivered: ${JSON.stringify(got)}`);
      // The attack is real: without strict reverse-path filtering on the host end, it gets through.
      writeFileSync(`/proc/sys/net/ipv4/conf/${host}/rp_filter`, "0");
      writeFileSync(join(b.rootfs, "tmp/go"), "");
      await arrived("real-2");
      assert(got.includes("spoofed-2"), `the sender does not spoof (got ${JSON.stringify(got)})`);
    } finally {
      sock.close();
      c?.delete();
      cleanupLink(host);
    }
  },
  { skip: spoofSkip },
);

test("veth with an invalid CIDR or without a net namespace is a SpecError with field paths, and nothing is made", () => {
  const spec = {
    name: `hako-net-bad-${process.pid}`,
    rootfs: "/nonexistent-hako-rootfs",
    command: "true",
    namespaces: ["mount", "pid"],
    network: { veth: { host: "hk-test-bad", hostAddress: "10.200.8.1/33", containerAddress: "10.200.9.2/30" } },
  } as const satisfies ContainerSpec;
  const e = assertThrows(() => resolveSpec(spec), SpecError);
  const paths = e.problems.map((p) => p.path);
  assert(paths.includes("network.veth"), paths.join(", "));
  assert(paths.includes("network.veth.hostAddress"), paths.join(", "));
  const e2 = assertThrows(
    () =>
      resolveSpec({
        ...spec,
        namespaces: ["mount", "net"],
        network: { veth: { hostAddress: "10.200.8.1/30", containerAddress: "10.200.9.2/30" } },
      }),
    SpecError,
  );
  assertEquals(e2.problems.map((p) => p.path), ["network.veth.containerAddress"]);
  assertEquals(hostLinks("hk-test-bad"), []);
});

test("a veth prefix wider than point-to-point (/9, /24, IPv6 /64) is a SpecError naming the field, unless allowWidePrefix", () => {
  const spec = (veth: NonNullable<ContainerSpec["network"]>["veth"]): ContainerSpec => ({
    name: `hako-net-wide-${process.pid}`,
    rootfs: "/nonexistent-hako-rootfs",
    command: "true",
    network: { veth },
  });
  const e = assertThrows(
    () => resolveSpec(spec({ hostAddress: "10.128.0.1/9", containerAddress: "10.128.0.2/9" })),
    SpecError,
  );
  assertEquals(e.problems.map((p) => p.path), ["network.veth.hostAddress", "network.veth.containerAddress"]);
  assert(/would route 10\.128\.0\.0\/9 from the host into the container/.test(e.message), e.message);
  assert(/allowWidePrefix: true/.test(e.message), e.message);
  assertThrows(
    () => resolveSpec(spec({ hostAddress: "10.213.77.1/24" })),
    SpecError,
    /^network\.veth\.hostAddress: the prefix \/24 would route 10\.213\.77\.0\/24/,
  );
  assertThrows(
    () => resolveSpec(spec({ containerAddress: "fd00:213::2/64" })),
    SpecError,
    /point-to-point \/126 or \/127/,
  );
  for (
    const ok of [["10.213.77.1/30", "10.213.77.2/30"], ["10.213.77.0/31", "10.213.77.1/31"], [
      "fd00:213::1/126",
      "fd00:213::2/126",
    ]]
  ) {
    resolveSpec(spec({ hostAddress: ok[0], containerAddress: ok[1] }));
  }
  // A wide subnet when asked for (and free on this host): no prefix problem.
  let problems: string[] = [];
  try {
    resolveSpec(spec({ hostAddress: "10.213.77.1/24", containerAddress: "10.213.77.2/24", allowWidePrefix: true }));
  } catch (err) {
    problems = (err as SpecError).problems.map((p) => p.message);
  }
  assert(!problems.some((m) => /point-to-point/.test(m)), problems.join("; "));
  assertThrows(
    () => resolveSpec(spec({ allowWidePrefix: "yes" as unknown as boolean })),
    SpecError,
    /network\.veth\.allowWidePrefix: must be a boolean/,
  );
});

test("networks overlap when one contains the other; a host clash names the route or address; the veth's own link does not count", () => {
  const c = (t: string) => parseCidr(t);
  assert(networksOverlap(c("10.0.0.0/8"), c("10.200.7.1/30")));
  assert(networksOverlap(c("10.200.7.2/30"), c("10.200.7.1/30")));
  assert(!networksOverlap(c("10.200.7.5/30"), c("10.200.7.1/30")));
  assert(!networksOverlap(c("10.0.0.1/8"), c("fd00::1/8")));
  assertEquals(networkOf(c("10.128.3.4/9")), "10.128.0.0/9");
  assertEquals(networkOf(c("fd00:1:2:3::7/126")), "fd00:1:2:3::4/126");
  assertEquals(formatAddress(c("fe80::1/64").bytes), "fe80::1");
  assertEquals(formatAddress(c("1:0:0:2:0:0:0:3/64").bytes), "1:0:0:2::3");
  const net = (kind: "route" | "address", cidr: string, device: string): HostNetwork => ({ kind, ...c(cidr), device });
  const host = [
    net("route", "192.0.2.0/24", "eth0"),
    net("address", "127.0.0.1/8", "lo"),
    net("route", "10.9.0.0/30", "hk-me-h"),
  ];
  assertEquals(findHostClash(c("192.0.2.77/30"), host)?.device, "eth0");
  assertEquals(findHostClash(c("127.0.0.5/30"), host)?.kind, "address");
  assertEquals(findHostClash(c("10.9.0.1/30"), host)?.device, "hk-me-h");
  assertEquals(findHostClash(c("10.9.0.1/30"), host, "hk-me-h"), undefined);
  assertEquals(findHostClash(c("10.200.7.1/30"), host), undefined);
});

test("hostNetworks() reads the host's main routes and addresses (lo's 127.0.0.1/8 among them), no default route", () => {
  const nets = hostNetworks();
  assert(nets.some((n) => n.kind === "address" && n.device === "lo" && formatAddress(n.bytes) === "127.0.0.1"));
  assert(!nets.some((n) => n.kind === "route" && n.prefixLength === 0), "a default route is listed");
});

test("a veth subnet overlapping a host address (lo's 127.0.0.1/8) is a SpecError naming it", () => {
  const e = assertThrows(
    () =>
      resolveSpec({
        name: `hako-net-lo-${process.pid}`,
        rootfs: "/nonexistent-hako-rootfs",
        command: "true",
        network: { veth: { hostAddress: "127.0.0.5/30", containerAddress: "127.0.0.6/30" } },
      }),
    SpecError,
  );
  assertEquals(e.problems.map((p) => p.path), ["network.veth.hostAddress"]);
  assert(/127\.0\.0\.4\/30 overlaps the host's address 127\.0\.0\.1\/8 on lo/.test(e.message), e.message);
});

test("a veth subnet inside a host route is refused naming the route, before anything is made", async () => {
  // A link of our own with a route through it (a veth pair: kernels without the dummy module have it).
  const dummy = `hk-rt-${process.pid}`.slice(0, 15);
  createVethPair(dummy, `${dummy}p`.slice(0, 15));
  try {
    setLinkUp(dummy);
    execFileSync("ip", ["route", "add", "10.202.0.0/16", "dev", dummy]);
    using b = box();
    const spec = b.spec({ network: { veth: { hostAddress: "10.202.5.1/30", containerAddress: "10.202.5.2/30" } } });
    let err: unknown;
    try {
      (await Container.create(spec)).delete();
    } catch (e) {
      err = e;
    }
    assert(err instanceof SpecError, `expected SpecError, got ${err}`);
    assertEquals(err.problems.map((p) => p.path), ["network.veth.hostAddress"]);
    assert(err.message.includes(`overlaps the host's route 10.202.0.0/16 dev ${dummy}`), err.message);
    assert(!existsSync(b.rootfs), "the rootfs was built");
    assertEquals(ip("link", "show", defaultVethHostName(spec.name)), undefined);
  } finally {
    cleanupLink(dummy);
  }
}, { skip: skip || noIp });

test(
  "two containers asking for the same subnet: the second is refused naming the first's link, also when both start at once",
  async () => {
    using b1 = box();
    using b2 = box();
    const veth = { hostAddress: "10.200.12.1/30", containerAddress: "10.200.12.2/30" };
    const s1 = b1.spec({ command: ["sleep", "30"], network: { veth } });
    const s2 = b2.spec({ command: ["sleep", "30"], network: { veth } });
    const [h1, h2] = [defaultVethHostName(s1.name), defaultVethHostName(s2.name)];
    const made: Container[] = [];
    try {
      made.push(await Container.create(s1));
      const e = assertThrows(() => resolveSpec(s2), SpecError);
      assertEquals(e.problems.map((p) => p.path), ["network.veth.hostAddress"]);
      assert(e.message.includes(`overlaps the host's route 10.200.12.0/30 dev ${h1}`), e.message);
      // The spec of a running container still resolves (hako exec does that): its own link does not count.
      resolveSpec(s1);
      made.pop()!.delete();

      const results = await Promise.allSettled([Container.create(s1), Container.create(s2)]);
      for (const r of results) if (r.status === "fulfilled") made.push(r.value);
      assertEquals(made.length, 1, "containers made");
      const reason = (results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason as Error;
      assert(reason instanceof SpecError || (reason instanceof SetupError && reason.step === "veth"), String(reason));
      assert(/network\.veth\.hostAddress: 10\.200\.12\.0\/30 overlaps the host's/.test(reason.message), reason.message);
    } finally {
      for (const c of made) c.delete();
      cleanupLink(h1);
      cleanupLink(h2);
    }
  },
  { skip },
);

test("a host link name clash is SetupError(veth), and nothing is left behind", async () => {
  using b = box();
  const clash = `hk-tc-${process.pid}`.slice(0, 15);
  createVethPair(clash, `${clash}p`.slice(0, 15));
  try {
    const spec = b.spec({ command: ["sleep", "30"], network: { veth: { host: clash } } });
    let err: unknown;
    try {
      (await Container.create(spec)).delete();
    } catch (e) {
      err = e;
    }
    assert(err instanceof SetupError, `expected SetupError, got ${err}`);
    assertEquals((err as SetupError).step, "veth");
    assert(/EEXIST/.test((err as Error).message), (err as Error).message);
    // Our own link is untouched, and no process of the container is left.
    assert(ip("link", "show", clash) !== undefined, "the pre-existing link was deleted");
    assertEquals(hostLinks(clash).length, 2, "links named like ours (our own pair only)");
  } finally {
    cleanupLink(clash);
  }
}, { skip: skip || noIp });
