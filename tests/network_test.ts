import process from "node:process";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertThrows, needsRoot, tempDir, test } from "./_harness.ts";
import { Process, SetupError } from "../mod.ts";
import { addAddress, createVethPair, deleteLink, linkIndex, parseCidr, sameSubnet, setLinkUp } from "../src/network.ts";
import { Container } from "../src/container/container.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import type { ContainerSpec } from "../src/container/spec.ts";
import { defaultVethHostName, resolveSpec, SpecError } from "../src/container/validate.ts";

const busybox = findStaticBusybox();
const skip = needsRoot || (busybox === undefined && "needs a static busybox (apt-get install busybox-static)");

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
}, { skip: needsRoot });

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
}, { skip });

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
}, { skip });
