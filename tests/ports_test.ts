/**
 * Published ports (docker's `-p`/`-P`): `hako run -d -p` gives the container a veth pair with a
 * /30 hako picks and the supervisor forwards the host port to it — a client on the host reads the
 * container's reply, twice; `hako port`, `ps` and `inspect` show the mapping as docker does; a
 * taken host port fails the run before anything is made; the container stopped, the port is
 * closed and the veth gone; `-P` publishes the image's ExposedPorts. On the native path and the
 * forked one (`HAKO_NATIVE_SPAWN=0`), through the CLI of the runtime that runs the test; each test
 * with a state and image directory of its own. The flag and spec checks are pure and run anywhere.
 * @module
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { gzipSync } from "node:zlib";
import { needsRoot, runtime, tempDir, test } from "./_harness.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { parseRunArgs, withImageDefaults } from "../src/cli/run.ts";
import { inspectPorts, parsePublish, portLines, portsCell, PUBLISH_CONFLICT } from "../src/cli/_publish.ts";
import { UsageError } from "../src/cli/_args.ts";
import { Checker } from "../src/container/_spec_shape.ts";
import { defaultVethHostName, portsOf } from "../src/container/_spec_fields.ts";
import { which } from "../src/process.ts";
import { allocateVethSubnet, type HostNetwork, parseCidr } from "../src/network.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = runtime === "bun"
  ? [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli/main.ts")]
  : [join(ROOT, "bin/hako")];
const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)") ||
  (!which("ip") && "needs ip to see the veth (apt-get install iproute2)");

// ---- pure: the flags, the spec field, the formats, the allocation ----------------------------

test("-p takes docker's forms and refuses ranges, udp, IPv6 and bad numbers, naming the value", () => {
  assert.deepEqual(parsePublish("80"), { containerPort: 80 });
  assert.deepEqual(parsePublish("0:80"), { containerPort: 80, hostPort: 0 }, 'asked for 0: shown as docker\'s "0"');
  assert.deepEqual(parsePublish("8080:80"), { containerPort: 80, hostPort: 8080 });
  assert.deepEqual(parsePublish("8080:80/tcp"), { containerPort: 80, hostPort: 8080 });
  assert.deepEqual(parsePublish("127.0.0.1:8080:80"), { containerPort: 80, hostPort: 8080, hostIp: "127.0.0.1" });
  assert.deepEqual(parsePublish("127.0.0.1::80"), { containerPort: 80, hostIp: "127.0.0.1" });
  for (
    const [bad, why] of [
      ["53:53/udp", /only tcp ports are published for now, not udp/],
      ["8000-8010:80-90", /port ranges/],
      ["[::1]:8080:80", /IPv6/],
      ["70000:80", /the host port "70000" is not a port number/],
      ["8080:0", /the container port "0"/],
      ["a:b:c:d", /not \[HOSTIP:\]\[HOSTPORT:\]CONTAINERPORT/],
      ["300.1.1.1:80:80", /not an IPv4 address/],
      [":80", /not \[HOSTIP/],
    ] as const
  ) {
    assert.throws(() => parsePublish(bad), (e: Error) => e instanceof UsageError && why.test(e.message), bad);
  }
});

test("-p with --network none is refused as docker refuses it; -p implies --network veth, with -d or without", () => {
  const run = (...a: string[]) => parseRunArgs(["--rootfs", "/r", ...a, "--", "sh"]);
  assert.throws(() => run("-d", "--network", "none", "-p", "80"), new RegExp(PUBLISH_CONFLICT));
  assert.throws(() => run("-d", "--network", "host", "-P"), /port publishing and --network host conflict/);
  assert.throws(() => run("--network", "none", "-p", "80"), new RegExp(PUBLISH_CONFLICT));
  // (docker publishes for a foreground run too: the foreground hako run holds the proxy)
  assert.deepEqual(run("-p", "8080:80").quick!.docker?.publish, [{ containerPort: 80, hostPort: 8080 }]);
  assert.equal(run("-p", "80").quick!.docker?.network, "veth");
  const q = run("-d", "-p", "8080:80", "-p", "81").quick!;
  assert.equal(q.docker?.network, "veth");
  assert.deepEqual(q.docker?.publish, [{ containerPort: 80, hostPort: 8080 }, { containerPort: 81 }]);
  assert.equal(run("-d", "--network", "veth").quick!.docker?.network, "veth");
  // -P: the image's ExposedPorts to free host ports, beside the -p ones (a port given by -p once).
  const p = withImageDefaults(run("-d", "-P", "-p", "9000:81").quick!, {
    Cmd: ["sh"],
    ExposedPorts: { "80/tcp": {}, "81/tcp": {}, "82": {} },
  });
  assert.deepEqual(p.docker?.publish, [
    { containerPort: 81, hostPort: 9000 },
    { containerPort: 80 },
    { containerPort: 82 },
  ]);
  assert.throws(
    () => withImageDefaults(run("-d", "-P").quick!, { Cmd: ["sh"], ExposedPorts: { "53/udp": {} } }),
    /only tcp ports are published for now/,
  );
});

test("network.ports is checked with field paths: range, duplicates, protocol, host address, a veth to forward to", () => {
  const veth = {
    host: "hk-x-h",
    container: "eth0",
    hostAddress: "10.213.0.1/30",
    containerAddress: "10.213.0.2/30",
    disableHostIpv6: true,
  };
  const problems = (ports: unknown, v: typeof veth | "none" = veth) => {
    const c = new Checker();
    portsOf(c, ports, v === "none" ? undefined : v);
    return c.problems.map((p) => `${p.path}: ${p.message}`);
  };
  assert.deepEqual(problems([{ containerPort: 80, hostPort: 8080 }, { containerPort: 81 }]), []);
  const got = problems([
    { containerPort: 0 },
    { containerPort: 80, hostPort: 65536 },
    { containerPort: 80, protocol: "udp" },
    { containerPort: 80, hostIp: "::1" },
    { containerPort: 80, hostPort: 8080 },
    { containerPort: 81, hostPort: 8080, hostIp: "127.0.0.1" },
    { containerPort: 80, bogus: 1 },
  ]);
  assert.match(got.join("\n"), /network\.ports\[0\]\.containerPort: must be a port number, 1–65535/);
  assert.match(got.join("\n"), /network\.ports\[1\]\.hostPort: must be a port number, 0–65535/);
  assert.match(got.join("\n"), /network\.ports\[2\]\.protocol: must be "tcp"/);
  assert.match(got.join("\n"), /network\.ports\[3\]\.hostIp: must be an IPv4 address/);
  assert.match(
    got.join("\n"),
    /network\.ports\[5\]\.hostPort: 127\.0\.0\.1:8080 is published twice \(network\.ports\[4\]/,
  );
  assert.match(got.join("\n"), /network\.ports\[6\]/);
  assert.match(problems([{ containerPort: 80 }], "none").join(), /needs network\.veth with a containerAddress/);
  assert.match(problems("80").join(), /network\.ports: must be a list/);
});

test("docker's formats: port lines, the PORTS cell, NetworkSettings.Ports", () => {
  const rows = [
    { hostIp: "127.0.0.1", hostPort: 8080, containerPort: 81, protocol: "tcp" },
    { hostIp: "0.0.0.0", hostPort: 32768, containerPort: 80, protocol: "tcp" },
  ];
  assert.deepEqual(portLines(rows), ["80/tcp -> 0.0.0.0:32768", "81/tcp -> 127.0.0.1:8080"]);
  assert.equal(portsCell(rows), "0.0.0.0:32768->80/tcp, 127.0.0.1:8080->81/tcp");
  assert.deepEqual(inspectPorts(rows), {
    "81/tcp": [{ HostIp: "127.0.0.1", HostPort: "8080" }],
    "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "32768" }],
  });
});

test("a veth subnet is a /30 of the range that overlaps no host network; none left is a clear error", () => {
  const net = (cidr: string, kind: "route" | "address" = "route"): HostNetwork => {
    const c = parseCidr(cidr);
    return { kind, version: 4, bytes: c.bytes, prefixLength: c.prefixLength, device: "x" };
  };
  for (let i = 0; i < 20; i++) {
    const got = allocateVethSubnet([net("10.213.0.0/30"), net("10.213.0.8/29")], "10.213.0.0/28");
    assert.deepEqual(got, { hostAddress: "10.213.0.5/30", containerAddress: "10.213.0.6/30" });
  }
  assert.throws(() => allocateVethSubnet([net("10.0.0.0/8")], "10.213.0.0/16"), /no free \/30 is left/);
  assert.throws(() => allocateVethSubnet([], "10.0.0.0/8"), /\/16 to \/29/);
});

// ---- the kernel's: a container's port forwarded -----------------------------------------------

/** A lab: a state dir and an image store of its own, the CLI with `env`; everything removed at dispose. */
function lab(extraEnv: Record<string, string> = {}) {
  const dir = tempDir("hako-ports-");
  chmodSync(dir.path, 0o755);
  const state = join(dir.path, "state");
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    HAKO_STATE_DIR: state,
    HAKO_VAR_DIR: join(dir.path, "var"),
    NO_COLOR: "1",
    ...extraEnv,
  };
  delete env.HAKO_LOADER;
  const tag = Math.random().toString(16).slice(2, 8);
  const hako = (...args: string[]) => {
    const r = spawnSync(CLI[0]!, [...CLI.slice(1), ...args], { env, encoding: "utf8", timeout: 120_000 });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const ok = (...args: string[]) => {
    const r = hako(...args);
    assert.equal(r.code, 0, `hako ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const rootfs = join(dir.path, "rootfs");
  buildRootfs(rootfs, { builder: "busybox" });
  return {
    dir: dir.path,
    rootfs,
    hako,
    ok,
    state,
    name: (n: string) => `ports-${tag}-${n}`,
    [Symbol.dispose]() {
      try {
        for (const c of JSON.parse(hako("ps", "-a", "--json").stdout)) hako("delete", "--force", c.name);
      } catch { /* the directory goes anyway */ }
      try {
        const pid = Number(readFileSync(join(state, "supervisor.pid"), "utf8").split(" ")[0]);
        if (pid) process.kill(pid, "SIGKILL");
      } catch { /* none */ }
      const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "")
        .filter((m) => m.startsWith(dir.path));
      for (const m of mounts.reverse()) spawnSync("umount", ["-l", m]);
      dir[Symbol.dispose]();
    },
  };
}

/** What a TCP connection to the host's port reads until the server ends it ("" when refused or reset). */
function fetchOnce(port: number, host = "127.0.0.1"): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let got = "";
    s.setTimeout(5000, () => s.destroy());
    s.on("data", (d) => (got += d.toString()));
    s.on("error", () => resolve(got));
    s.on("close", () => resolve(got));
    s.end();
  });
}

/** Reads from the port until the reply comes (the container's server may take a moment to listen). */
async function fetchReply(port: number, want: string, host = "127.0.0.1"): Promise<string> {
  let got = "";
  for (let i = 0; i < 50 && got !== want; i++) {
    got = await fetchOnce(port, host);
    if (got !== want) await new Promise((r) => setTimeout(r, 100));
  }
  return got;
}

const links = () => spawnSync("ip", ["-br", "link"], { encoding: "utf8" }).stdout;

/** A free port on the host, taken by a listener of the test until `close`. */
async function takePort(): Promise<{ port: number; close(): Promise<void> }> {
  const s = createServer();
  await new Promise<void>((r) => s.listen({ port: 0, host: "0.0.0.0" }, () => r()));
  const port = (s.address() as { port: number }).port;
  return { port, close: () => new Promise<void>((r) => s.close(() => r())) };
}

for (const path of ["native", "forked"] as const) {
  test(
    `hako run -d -p forwards the host port to the container (twice), hako port/ps/inspect show it, a taken port is refused, stop closes it and the veth goes (${path})`,
    async () => {
      using l = lab(path === "forked" ? { HAKO_NATIVE_SPAWN: "0" } : {});
      const web = l.name("web");
      const server = ["nc", "-ll", "-p", "80", "-e", "echo", "hi"];
      l.ok("run", "-d", "--name", web, "-p", "0:80", "-p", "127.0.0.1::81", "--rootfs", l.rootfs, "--", ...server);
      const lines = l.ok("port", web).trim().split("\n");
      assert.equal(lines.length, 2, lines.join("\n"));
      assert.match(lines[0]!, /^80\/tcp -> 0\.0\.0\.0:\d+$/);
      assert.match(lines[1]!, /^81\/tcp -> 127\.0\.0\.1:\d+$/);
      const port = Number(l.ok("port", web, "80").trim().split(":")[1]);
      assert.ok(port > 0);
      assert.equal(await fetchReply(port, "hi\n"), "hi\n");
      assert.equal(await fetchOnce(port), "hi\n", "a second connection");
      // Nothing listens on 81 inside: the client's connection is closed, the proxy lives on.
      const other = Number(l.ok("port", web, "81").trim().split(":")[1]);
      assert.equal(await fetchOnce(other), "");
      assert.equal(await fetchOnce(port), "hi\n", "after a refused one");
      const p = l.hako("port", web, "82");
      assert.equal(p.code, 1);
      assert.match(p.stderr, /no public port '82\/tcp' published/);
      assert.match(
        l.ok("ps"),
        new RegExp(`PORTS[\\s\\S]*0\\.0\\.0\\.0:${port}->80/tcp, 127\\.0\\.0\\.1:${other}->81/tcp`),
      );
      const info = JSON.parse(l.ok("inspect", web))[0];
      assert.deepEqual(info.NetworkSettings.Ports["80/tcp"], [{ HostIp: "0.0.0.0", HostPort: String(port) }]);
      assert.deepEqual(info.Config.ExposedPorts, { "80/tcp": {}, "81/tcp": {} });
      assert.equal(info.HostConfig.NetworkMode, "veth");
      const veth: string = info.Hako.record.veth;
      assert.match(veth, /^hk-/);
      assert.ok(links().includes(veth), "its veth is there");

      // A host port that is taken: the run fails before the container is made, nothing is left.
      const taken = await takePort();
      try {
        const bad = l.name("bad");
        const r = l.hako("run", "-d", "--name", bad, "-p", `${taken.port}:80`, "--rootfs", l.rootfs, "--", ...server);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, new RegExp(`the host port 0\\.0\\.0\\.0:${taken.port} is taken \\(EADDRINUSE\\)`));
        assert.equal(l.hako("inspect", bad).code, 1, "no record is left");
      } finally {
        await taken.close();
      }
      // A second container on the same host port: refused too, the first one's still served.
      const r2 = l.hako("run", "-d", "--name", l.name("two"), "-p", `${port}:80`, "--rootfs", l.rootfs, "--", "true");
      assert.notEqual(r2.code, 0);
      assert.match(r2.stderr, /is taken/);
      assert.equal(await fetchOnce(port), "hi\n");

      // Stopped: the port is closed, the veth gone, hako port lists nothing.
      l.ok("stop", "-t", "1", web);
      assert.equal(await fetchOnce(port), "");
      assert.equal(l.ok("port", web), "");
      assert.ok(!links().includes(veth), "its veth is gone");
      const refused = await new Promise<string>((resolve) => {
        const s = connect({ host: "127.0.0.1", port });
        s.on("connect", () => (s.destroy(), resolve("connected")));
        s.on("error", (e) => resolve((e as { code?: string }).code ?? "error"));
      });
      assert.equal(refused, "ECONNREFUSED");
    },
    { skip },
  );
}

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/** An OCI layout directory with one image of `tree`, its config `config`. */
function layoutOf(dir: string, tree: string, config: Record<string, unknown>): void {
  const tar = new Uint8Array(spawnSync("tar", ["-C", tree, "-cf", "-", "."], { maxBuffer: 1 << 28 }).stdout);
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (
    b: Uint8Array,
  ) => (writeFileSync(join(blobs, sha256(b)), b), { digest: `sha256:${sha256(b)}`, size: b.length });
  const layer = put(gzipSync(tar));
  const cfg = put(new TextEncoder().encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config,
    rootfs: { type: "layers", diff_ids: [`sha256:${sha256(tar)}`] },
  })));
  const manifest = put(new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...cfg },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }],
  })));
  writeFileSync(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest }],
    }),
  );
}

for (const path of ["native", "forked"] as const) {
  test(
    `hako run -d -P publishes the image's ExposedPorts to free host ports (${path})`,
    async () => {
      using l = lab(path === "forked" ? { HAKO_NATIVE_SPAWN: "0" } : {});
      const layout = join(l.dir, "layout");
      layoutOf(layout, l.rootfs, {
        Cmd: ["nc", "-ll", "-p", "8080", "-e", "echo", "exposed"],
        ExposedPorts: { "8080/tcp": {} },
      });
      const image = `localhost/${l.name("img")}:1`;
      l.ok("image", "import", layout, image);
      const web = l.name("p");
      l.ok("run", "-d", "--name", web, "-P", "--image", image);
      const line = l.ok("port", web).trim();
      assert.match(line, /^8080\/tcp -> 0\.0\.0\.0:\d+$/);
      const port = Number(line.split(":")[1]);
      assert.equal(await fetchReply(port, "exposed\n"), "exposed\n");
      const info = JSON.parse(l.ok("inspect", web))[0];
      assert.deepEqual(info.Config.ExposedPorts, { "8080/tcp": {} });
      const veth: string = info.Hako.record.veth;
      l.ok("rm", "-f", web);
      assert.equal(await fetchOnce(port), "");
      assert.ok(!links().includes(veth), "its veth is gone");
    },
    { skip },
  );
}

test(
  "a new supervisor that adopts a running container publishes its ports again, on the same host port",
  async () => {
    using l = lab();
    const web = l.name("adopt");
    l.ok(
      "run",
      "-d",
      "--name",
      web,
      "-p",
      "0:80",
      "--rootfs",
      l.rootfs,
      "--",
      "nc",
      "-ll",
      "-p",
      "80",
      "-e",
      "echo",
      "hi",
    );
    const port = Number(l.ok("port", web, "80").trim().split(":")[1]);
    assert.equal(await fetchReply(port, "hi\n"), "hi\n");
    // The supervisor dies (its listeners with it); the container runs on.
    const pid = Number(readFileSync(join(l.state, "supervisor.pid"), "utf8").split(" ")[0]);
    process.kill(pid, "SIGKILL");
    for (let i = 0; i < 50 && spawnSync("kill", ["-0", String(pid)]).status === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await fetchOnce(port), "");
    // The next start brings a new supervisor up: it adopts the container and listens again.
    l.ok("run", "-d", "--name", l.name("other"), "--rootfs", l.rootfs, "--", "sleep", "60");
    assert.equal(await fetchReply(port, "hi\n"), "hi\n");
    assert.equal(l.ok("port", web), `80/tcp -> 0.0.0.0:${port}\n`);
  },
  { skip },
);

// ---- the foreground: hako run -p holds the proxy itself ---------------------------------------

/** `hako run ARGS…` started in the background (the test's child), its output gathered. */
function startRun(l: ReturnType<typeof lab>, env: Record<string, string>, ...args: string[]) {
  const child = spawn(CLI[0]!, [...CLI.slice(1), "run", ...args], {
    env: { ...process.env as Record<string, string>, HAKO_STATE_DIR: l.state, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "", stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<number | string | null>((resolve) =>
    child.on("close", (code, sig) => resolve(code ?? sig))
  );
  return {
    child,
    exited,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    /** Kills it if it still runs (the test failed half-way). */
    [Symbol.dispose]() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

/** The host port `hako port NAME PORT` says, once the foreground run has published it. */
async function hostPortOf(l: ReturnType<typeof lab>, name: string, port: number, run: { stderr: string }) {
  for (let i = 0; i < 300; i++) {
    const r = l.hako("port", name, String(port));
    if (r.code === 0 && r.stdout.trim()) return Number(r.stdout.trim().split(":").pop());
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} never published ${port}: ${run.stderr}`);
}

/**
 * {@link fetchReply} from a child process of the test's runtime (the test's own event loop may be
 * busy), and, when the reply does not come, what it got instead: each connection's error, what
 * listens on the port (ss) and the host's links — enough to tell a closed proxy from a server gone.
 */
function fetchReplyOutside(port: number, want: string): string {
  const code = `
    const { connect } = await import("node:net");
    const once = () => new Promise((resolve) => {
      const s = connect({ host: "127.0.0.1", port: ${port} });
      let got = "";
      s.setTimeout(5000, () => s.destroy());
      s.on("data", (d) => (got += d));
      s.on("error", (e) => (process.stderr.write(e.code + " "), resolve(got)));
      s.on("close", () => resolve(got));
      s.end();
    });
    let got = "";
    for (let i = 0; i < 50 && got !== ${JSON.stringify(want)}; i++) {
      got = await once();
      if (got !== ${JSON.stringify(want)}) await new Promise((r) => setTimeout(r, 100));
    }
    process.stdout.write(got);`;
  const argv = runtime === "bun" ? ["-e", code] : ["eval", code];
  const r = spawnSync(process.execPath, argv, { encoding: "utf8", timeout: 60_000 });
  if (r.stdout !== want) {
    const ss = spawnSync("ss", ["-ltnp", `sport = :${port}`], { encoding: "utf8" }).stdout;
    return `${r.stdout} [errors: ${r.stderr}] [${ss}] [${links()}]`;
  }
  return r.stdout;
}

/**
 * A server that answers `reply` to each connection until /ctl/stop exists, then exits 0. (Not a
 * one-shot `nc -l`: a stray connection to the host port — another test's probe of a port the
 * kernel handed out again — would end it before the test's client is served.)
 */
const UNTIL_STOPPED = (reply: string) => ["sh", "-c", `until [ -e /ctl/stop ]; do nc -l -p 80 -e echo ${reply}; done`];

/** Makes the {@link UNTIL_STOPPED} server end: the stop file, then one connection to wake it. */
async function stopServing(dir: string, port: number): Promise<void> {
  writeFileSync(join(dir, "stop"), "");
  await fetchOnce(port);
}

/** Whether a TCP connection to the host's port is refused (nothing listens any more). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    s.on("connect", () => (s.destroy(), resolve(false)));
    s.on("error", (e) => resolve((e as { code?: string }).code === "ECONNREFUSED"));
  });
}

for (const path of ["native", "forked"] as const) {
  test(
    `hako run -p in the foreground forwards the port while it runs; the port, the veth and the record go when it ends, on SIGTERM too, and when the start fails (${path})`,
    async () => {
      const env: Record<string, string> = path === "forked" ? { HAKO_NATIVE_SPAWN: "0" } : {};
      using l = lab(env);
      // 1. One connection: nc answers once and exits, and hako run with it (its code, 0).
      const once = l.name("fg");
      {
        using run = startRun(
          l,
          env,
          "--name",
          once,
          "-p",
          "0:80",
          "-v",
          `${l.dir}:/ctl`,
          "--rootfs",
          l.rootfs,
          "--",
          ...UNTIL_STOPPED("hi"),
        );
        const port = await hostPortOf(l, once, 80, run);
        const veth = defaultVethHostName(once);
        assert.ok(links().includes(veth), "its veth is there while it runs");
        const info = JSON.parse(l.ok("inspect", once))[0];
        assert.deepEqual(info.NetworkSettings.Ports["80/tcp"], [{ HostIp: "0.0.0.0", HostPort: String(port) }]);
        assert.equal(
          fetchReplyOutside(port, "hi\n"),
          "hi\n",
          `a client on the host reads the container's reply: ${run.stderr}`,
        );
        await stopServing(l.dir, port);
        assert.equal(await run.exited, 0, run.stderr);
        assert.ok(await refused(port), "the port is closed once hako run has exited");
        assert.ok(!links().includes(veth), "its veth is gone");
        assert.equal(l.hako("inspect", once).code, 1, "no record is left");
      }
      // 2. SIGTERM to hako run: passed on (nc, PID 1, ignores it), then SIGKILL after the stop
      // timeout; the ports and the veth are released all the same.
      const term = l.name("term");
      {
        using run = startRun(
          l,
          env,
          "--name",
          term,
          "--stop-timeout",
          "1",
          "-p",
          "127.0.0.1::80",
          "--rootfs",
          l.rootfs,
          "--",
          "nc",
          "-ll",
          "-p",
          "80",
          "-e",
          "echo",
          "up",
        );
        const port = await hostPortOf(l, term, 80, run);
        assert.equal(fetchReplyOutside(port, "up\n"), "up\n");
        // (process.kill, not child.kill: Deno's child_process then reports the signal it sent as the way it ended)
        process.kill(run.child.pid!, "SIGTERM");
        const code = await run.exited;
        assert.ok(code === 137 || code === 143, `exit ${code}: ${run.stderr}`);
        assert.ok(await refused(port), "the port is closed after SIGTERM");
        assert.ok(!links().includes(defaultVethHostName(term)), "its veth is gone");
        assert.equal(l.hako("inspect", term).code, 1, "no record is left");
      }
      // 3. A start that fails: a taken host port is docker's 125 with nothing made; a command not
      // found is 127, and the port it had bound is free again.
      const taken = await takePort();
      try {
        const bad = l.name("taken");
        const r = l.hako("run", "--name", bad, "-p", `${taken.port}:80`, "--rootfs", l.rootfs, "--", "true");
        assert.equal(r.code, 125, r.stderr);
        assert.match(r.stderr, new RegExp(`the host port 0\\.0\\.0\\.0:${taken.port} is taken`));
        assert.ok(!links().includes(defaultVethHostName(bad)), "no veth was made");
      } finally {
        await taken.close();
      }
      const free = await takePort();
      await free.close();
      const missing = l.name("missing");
      const r = l.hako("run", "--name", missing, "-p", `${free.port}:80`, "--rootfs", l.rootfs, "--", "/nonexistent");
      assert.equal(r.code, 127, r.stderr);
      assert.ok(await refused(free.port), "the port it bound is released");
      assert.ok(!links().includes(defaultVethHostName(missing)), "its veth is gone");
      assert.equal(l.hako("ps", "-a", "-q").stdout, "", "no record is left");
    },
    { skip },
  );
}

test(
  "a spec module with network.ports run in the foreground publishes them; the library's Container.create refuses them unless told they are published",
  async () => {
    using l = lab();
    const name = l.name("spec");
    const { allocateVethSubnet } = await import("../src/network.ts");
    const pair = allocateVethSubnet();
    const spec = {
      name,
      rootfs: l.rootfs,
      namespaces: ["mount", "uts", "ipc", "pid", "net"],
      network: { veth: { ...pair }, ports: [{ containerPort: 80, hostPort: 0 }] },
      mounts: [{ type: "bind", source: l.dir, target: "/ctl" }],
      command: UNTIL_STOPPED("spec"),
    };
    const file = join(l.dir, "web.ts");
    writeFileSync(file, `export default ${JSON.stringify(spec)};\n`);
    {
      using run = startRun(l, {}, file);
      const port = await hostPortOf(l, name, 80, run);
      assert.equal(fetchReplyOutside(port, "spec\n"), "spec\n", run.stderr);
      await stopServing(l.dir, port);
      assert.equal(await run.exited, 0, run.stderr);
      assert.ok(await refused(port));
      assert.ok(!links().includes(defaultVethHostName(name)));
    }
    // The library: no one would hold the proxy, so the field is refused by its path, nothing made.
    const { Container } = await import("../src/container/container.ts");
    await assert.rejects(
      () => Container.create({ ...spec, name: l.name("lib") } as never),
      (e: Error) => e.name === "SpecError" && /network\.ports: .*publishPorts/.test(e.message),
    );
    assert.ok(!links().includes(defaultVethHostName(l.name("lib"))));
    // …and with publishPorts (mod.ts) held around it, it is served.
    const { publishPorts } = await import("../mod.ts");
    rmSync(join(l.dir, "stop")); // (the server of the run above was stopped by it)
    const libSpec = { ...spec, name: l.name("lib2") } as never;
    using published = await publishPorts(libSpec, { log: () => {} });
    const c = await Container.create(libSpec, { portsPublished: true });
    try {
      await c.start();
      assert.equal(await fetchReply(published.ports[0]!.hostPort, "spec\n"), "spec\n");
      await stopServing(l.dir, published.ports[0]!.hostPort);
      assert.equal((await c.wait()).code, 0);
    } finally {
      c.delete();
    }
    published.close();
    assert.ok(await refused(published.ports[0]!.hostPort));
  },
  { skip },
);
