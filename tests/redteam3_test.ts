/**
 * Red team, third round: the surfaces added last session — published ports and their proxy,
 * `hako attach` and the supervisor's socket, sealed command hooks, OCI hooks, the OCI layout
 * import, memory-pressure events and the log files — attacked as a hostile container, image,
 * config.json or unprivileged local user. One test per attack, and what stops it.
 *
 * Attacks tried (✗: got through, fixed here; ✓: already blocked, pinned by a test):
 * - ✗ a connection flood through published ports (host side, or the container dialling its own
 *   published port through the host) exhausting the proxy holder's fds, so that the supervisor can
 *   no longer accept a client, open a state file or listen for another container: the proxies of a
 *   process now share a budget of half its RLIMIT_NOFILE, and one container's ports share 1024
 *   connections (ports.ts).
 * - ✓ an image's ExposedPorts with `0/tcp`, `99999/tcp`, `-1/udp`, `80/sctp`, `80/udp` or thousands
 *   of ports, for `-P`: refused before anything is made (_publish.ts, network.ports' 1024 cap).
 * - ✗ an OCI host hook (prestart, createRuntime, poststart, poststop) that forks a daemon keeping its
 *   stderr: the runtime waited for the pipe to close, so `create`/`delete` hung for as long as the
 *   daemon lived, its `timeout` too (hooks.ts now settles on the hook's exit).
 * - ✗ an OCI hook `timeout` over 2^31 ms (24.8 days): the timer overflowed and killed the hook at
 *   once (now clamped: such a hook waits as long as a timer can).
 * - ✓ an OCI hook with a relative path, a timeout of 0, -1 or 1.5, an env entry without `=` (config.ts);
 *   ✗ one whose path, args or env holds a NUL byte passed the checks and failed mid-create with an
 *   untyped TypeError (now refused by its field path).
 * - ✗ a container's log (`log`, `log.err`) replaced by a FIFO hung `hako logs`; by a symlink, root's
 *   `hako logs` printed its target (/etc/shadow): now opened O_NOFOLLOW|O_NONBLOCK, a regular file only.
 * - ✓ a huge line or a flood in the log: the relay caps the files (container_log.ts), `hako logs`
 *   reads in blocks; a container's escape sequences (OSC 52, titles) reach a terminal escaped
 *   (supervisor_security_test.ts), as docker does not.
 * - ✓ a container writing its own cgroup's `cgroup.event_control`: /sys/fs/cgroup is read-only
 *   inside (escape_test.ts); a symlink in cgroupfs for the supervisor to follow: cgroupfs has none.
 * - ✓ the host-side proxy dialling a host service: it connects to the spec's containerAddress,
 *   which the host routes to the veth whatever the container does to its own addresses.
 * - ✓ a local user (nobody) connecting to the supervisor's socket for attach: the socket is 0600 in
 *   a 0700 directory, and SO_PEERCRED refuses any other uid before a byte is read, attach included
 *   (_peer.ts, supervisor.ts) — pinned by supervisor_security_test.ts; attach hands over only the
 *   container's own pty master or stdin pipe.
 * - ✓ the sealed hooks' key as a symlink or with a loose mode: refused (_seal.ts, O_NOFOLLOW and fstat).
 *   A record forged, or replayed from another container, needs a write to the root-only state
 *   directory, and its seal covers the name and creation time (restart_test.ts pins the rest).
 * - ✓ OCI layout blobs that are symlinks, FIFOs or devices: refused (store.ts, openat2
 *   RESOLVE_NO_SYMLINKS and a type check; image_layout_test.ts); a hardlinked blob is read only if
 *   its bytes match its digest (one has to know a file to name it). An index nested 10 deep, a
 *   manifest whose config is its layer or whose layer is its config, a manifest given an index's
 *   mediaType, a --ref of ../../etc: refused, nothing stored. An index cannot name itself (its
 *   digest would have to be in its own bytes). A gzip bomb: each layer is capped at 32 GiB
 *   uncompressed and 1 000 000 entries (HAKO_TAR_MAX_*), the layout at 64 GiB (HAKO_IMAGE_MAX_BYTES),
 *   streamed (no layer is held in memory); a huge index.json is refused past 4 MiB.
 * @module
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { needsRoot, runtime, tempDir, test } from "./_harness.ts";
import { importImage, listImages } from "../src/image/store.ts";
import { SetupError } from "../src/errors.ts";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { Buffer } from "node:buffer";
import { sealKey } from "../src/supervisor/_seal.ts";
import { StateStore } from "../src/container/state.ts";
import { runHooks } from "../src/oci/hooks.ts";
import { cliArgv } from "./_supervisor_lab.ts";
import { publishAllPorts } from "../src/cli/_publish.ts";
import { UsageError } from "../src/cli/_args.ts";
import { assertValidSpec } from "../src/container/validate.ts";
import type { ContainerSpec } from "../src/container/spec.ts";
import { OciConfigError, ociToSpec } from "../src/oci/config.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** argv that runs one of the tests' child scripts under this test run's runtime. */
function child(script: string, ...args: string[]): string[] {
  const path = join(ROOT, "tests", script);
  return runtime === "deno"
    ? [join(ROOT, "node_modules/.bin/deno"), "run", "-A", "--no-prompt", path, ...args]
    : [join(ROOT, "node_modules/.bin/bun"), path, ...args];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a connection flood through published ports leaves the proxy's process the fds it needs", async () => {
  const held = new Set<Socket>();
  const upstream = createServer((s) => {
    held.add(s);
    s.on("error", () => {});
    s.on("close", () => held.delete(s));
  });
  await new Promise<void>((r) => upstream.listen({ host: "127.0.0.1", port: 0 }, r));
  const upPort = (upstream.address() as { port: number }).port;
  const NOFILE = 256;
  const [cmd, ...args] = [
    "prlimit",
    `--nofile=${NOFILE}:${NOFILE}`,
    "--",
    ...child("_redteam3_proxy.ts", String(upPort), "4"),
  ];
  const proc = spawn(cmd!, args, { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const clients: Socket[] = [];
  try {
    const first = await lines.next();
    assert.ok(!first.done, "the proxy process printed its ports");
    const ports = JSON.parse(first.value) as number[];
    assert.equal(ports.length, 4);
    // The flood: more connections than the process has fds, spread over its ports.
    for (let i = 0; i < NOFILE * 2; i++) {
      const c = connect({ host: "127.0.0.1", port: ports[i % ports.length]! });
      c.on("error", () => {});
      clients.push(c);
      if (i % 64 === 63) await sleep(20);
    }
    // Until the proxied connections stop growing.
    let last = -1;
    for (let i = 0; i < 50 && held.size !== last; i++) {
      last = held.size;
      await sleep(300);
    }
    proc.stdin!.write("probe\n");
    const answer = await lines.next();
    assert.equal(answer.value, "ok", `the flooded process could still open a file and listen (${held.size} proxied)`);
    assert.ok(held.size <= NOFILE / 4 + 1, `at most a quarter of its fds' worth proxied, got ${held.size}`);
  } finally {
    for (const c of clients) c.destroy();
    for (const s of held) s.destroy();
    proc.stdin!.end("quit\n");
    const killer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    if (proc.exitCode === null && proc.signalCode === null) await new Promise((r) => proc.once("exit", r));
    clearTimeout(killer);
    await new Promise((r) => upstream.close(r));
  }
});

test("an OCI host hook that leaves a daemon holding its stderr does not hang the runtime", async () => {
  using t = tempDir("hako-test-rt3-");
  const pidFile = join(t.path, "daemon.pid");
  const hook = { path: "/bin/sh", args: ["sh", "-c", `sleep 60 & echo $! > ${pidFile}; exit 0`], timeout: 30 };
  const t0 = performance.now();
  try {
    await runHooks("prestart", [hook], { ociVersion: "1.0.2", id: "rt3", status: "creating", pid: 1 });
    const ms = performance.now() - t0;
    assert.ok(ms < 10_000, `the hook's exit ends it, not its daemon's (took ${Math.round(ms)} ms)`);
  } finally {
    try {
      process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL");
    } catch { /* not started, or gone */ }
  }
});

test("an OCI hook whose timeout is over 2^31 ms is not killed at once", async () => {
  // (setTimeout takes at most 2^31-1 ms, and fires at once past it)
  const hook = { path: "/bin/sh", args: ["sh", "-c", "sleep 0.5"], timeout: 3_000_000 };
  await runHooks("prestart", [hook], { ociVersion: "1.0.2", id: "rt3", status: "creating", pid: 1 });
});

/** Runs `hako logs NAME` under this run's runtime against the state directory `state`. */
function hakoLogs(state: string, name: string) {
  const [cmd, args] = cliArgv(["logs", name]);
  return spawnSync(cmd, args, { env: { ...process.env, HAKO_STATE_DIR: state }, encoding: "utf8", timeout: 20_000 });
}

/** A state directory with one container's directory, `rt3-logs` (its path, and the container's). */
function logsLab(dir: string): string {
  const c = join(dir, "containers", "rt3-logs");
  mkdirSync(c, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700), chmodSync(join(dir, "containers"), 0o700);
  return c;
}

test("a container's log replaced by a FIFO does not hang hako logs", () => {
  using t = tempDir("hako-test-rt3-");
  const c = logsLab(t.path);
  execFileSync("mkfifo", [join(c, "log")]);
  const r = hakoLogs(t.path, "rt3-logs");
  assert.equal(r.error, undefined, `hako logs ended (${r.error?.message})`);
  assert.notEqual(r.status, 0, "and failed");
  assert.match(r.stderr, /not a regular file/);
});

test("a container's log replaced by a symlink is not followed by hako logs (to /etc/shadow)", () => {
  using t = tempDir("hako-test-rt3-");
  const c = logsLab(t.path);
  writeFileSync(join(c, "log"), "hello\n");
  symlinkSync("/etc/shadow", join(c, "log.err"));
  const r = hakoLogs(t.path, "rt3-logs");
  assert.doesNotMatch(r.stdout + r.stderr, /^root:/m, "no line of /etc/shadow");
  assert.match(r.stderr, /not a regular file/);
});

test("an image's ExposedPorts with 0, 99999, -1, sctp or udp ports, or thousands of them, publishes nothing", () => {
  for (const key of ["0/tcp", "99999/tcp", "-1/udp", "80/sctp", "80/udp", "80/tcp/x", "1e3/tcp", " 80/tcp"]) {
    assert.throws(() => publishAllPorts({ [key]: {} }, []), UsageError, key);
  }
  const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`${i + 1}/tcp`, {}]));
  const ports = publishAllPorts(many, []);
  const spec = {
    name: "rt3-many-ports",
    rootfs: { path: "/" },
    command: ["/bin/true"],
    namespaces: ["network"],
    network: { veth: { containerAddress: "10.250.3.2/30", hostAddress: "10.250.3.1/30" }, ports },
  } as unknown as ContainerSpec;
  assert.throws(() => assertValidSpec(spec), (e: Error) => /network\.ports.*at most 1024/.test(e.message));
});

test("an OCI hook with a relative path, a timeout of 0, -1 or 1.5, or an env entry without = is refused by its path", () => {
  const config = (hook: Record<string, unknown>) => ({
    ociVersion: "1.0.2",
    process: { args: ["sh"] },
    root: { path: "rootfs" },
    hooks: { prestart: [hook] },
  });
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ path: "hook.sh" }, "hooks.prestart[0].path"],
    [{ path: "./hook.sh" }, "hooks.prestart[0].path"],
    [{ path: "" }, "hooks.prestart[0].path"],
    [{ path: "/bin/true\0/x" }, "hooks.prestart[0].path"],
    [{ path: "/bin/true", timeout: 0 }, "hooks.prestart[0].timeout"],
    [{ path: "/bin/true", timeout: -1 }, "hooks.prestart[0].timeout"],
    [{ path: "/bin/true", timeout: 1.5 }, "hooks.prestart[0].timeout"],
    [{ path: "/bin/true", timeout: "10" }, "hooks.prestart[0].timeout"],
    [{ path: "/bin/true", env: ["NOEQUALS"] }, "hooks.prestart[0].env"],
    [{ path: "/bin/true", env: ["=x"] }, "hooks.prestart[0].env"],
    [{ path: "/bin/true", args: ["true", 1] }, "hooks.prestart[0].args"],
    [{ path: "/bin/true", args: ["true", "a\0b"] }, "hooks.prestart[0].args"],
    [{ path: "/bin/true", env: ["A=b\0c"] }, "hooks.prestart[0].env"],
  ];
  for (const [hook, path] of cases) {
    assert.throws(
      () => ociToSpec(config(hook), "/tmp/bundle", "rt3"),
      (e: unknown) => e instanceof OciConfigError && e.problems.some((p) => p.path === path),
      `${JSON.stringify(hook)} is refused at ${path}`,
    );
  }
});

/** A minimal OCI layout in `dir` with one layer; `index` may rewrite index.json's manifests. */
function hostileLayout(dir: string) {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (b: Uint8Array | string) => {
    const bytes = typeof b === "string" ? new TextEncoder().encode(b) : b;
    const hex = createHash("sha256").update(bytes).digest("hex");
    writeFileSync(join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const tar = new Uint8Array(1024); // (an empty tar: two zero blocks)
  const layer = put(gzipSync(tar));
  const diff = `sha256:${createHash("sha256").update(tar).digest("hex")}`;
  const config = put(JSON.stringify({ os: "linux", rootfs: { type: "layers", diff_ids: [diff] }, config: {} }));
  const manifest = (cfg: object, layers: object[]) =>
    put(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST, config: cfg, layers }));
  writeFileSync(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  const index = (manifests: object[]) =>
    writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests }));
  return { put, layer, config, manifest, index };
}
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const INDEX = "application/vnd.oci.image.index.v1+json";
const CONFIG = "application/vnd.oci.image.config.v1+json";
const LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

test(
  "an OCI layout nesting indexes 10 deep, a manifest whose config is a layer or whose layer is a config, or a --ref of ../../etc, imports nothing",
  async () => {
    using t = tempDir("hako-test-rt3-");
    const varDir = join(t.path, "var");
    const attempt = async (what: string, make: (dir: string) => { ref?: string }) => {
      const dir = join(t.path, what.replace(/\W+/g, "-"));
      const { ref } = make(dir);
      await assert.rejects(
        importImage(dir, { varDir, ...(ref !== undefined ? { ref } : {}) }),
        SetupError,
        `${what} is refused`,
      );
      assert.deepEqual(listImages(varDir), [], `${what}: no image stored`);
    };
    await attempt("indexes nested 10 deep", (dir) => {
      const l = hostileLayout(dir);
      let d = {
        mediaType: MANIFEST,
        ...l.manifest({ mediaType: CONFIG, ...l.config }, [{ mediaType: LAYER, ...l.layer }]),
      };
      for (let i = 0; i < 10; i++) {
        d = { mediaType: INDEX, ...l.put(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [d] })) };
      }
      l.index([d]);
      return {};
    });
    await attempt("a config that is the layer", (dir) => {
      const l = hostileLayout(dir);
      l.index([{
        mediaType: MANIFEST,
        ...l.manifest({ mediaType: CONFIG, ...l.layer }, [{ mediaType: LAYER, ...l.layer }]),
      }]);
      return {};
    });
    await attempt("a layer that is the config", (dir) => {
      const l = hostileLayout(dir);
      l.index([{
        mediaType: MANIFEST,
        ...l.manifest({ mediaType: CONFIG, ...l.config }, [{ mediaType: LAYER, ...l.config }]),
      }]);
      return {};
    });
    await attempt("a manifest that is an index by its mediaType", (dir) => {
      const l = hostileLayout(dir);
      l.index([{
        mediaType: INDEX,
        ...l.manifest({ mediaType: CONFIG, ...l.config }, [{ mediaType: LAYER, ...l.layer }]),
      }]);
      return {};
    });
    await attempt("a ref of ../../etc", (dir) => {
      const l = hostileLayout(dir);
      l.index([{
        mediaType: MANIFEST,
        ...l.manifest({ mediaType: CONFIG, ...l.config }, [{ mediaType: LAYER, ...l.layer }]),
        annotations: { "org.opencontainers.image.ref.name": "latest" },
      }]);
      return { ref: "../../etc" };
    });
  },
  { skip: needsRoot },
);

test("the sealed hooks' key as a symlink to a 0600 file of 32 bytes is refused, not read through", () => {
  using t = tempDir("hako-test-rt3-");
  const state = join(t.path, "state");
  mkdirSync(state, { mode: 0o700 });
  const elsewhere = join(t.path, "planted.key");
  writeFileSync(elsewhere, Buffer.alloc(32, 7), { mode: 0o600 });
  symlinkSync(elsewhere, join(state, "supervisor.key"));
  assert.throws(() => sealKey(new StateStore(state)), (e: Error) => (e as { code?: string }).code === "ELOOP");
});
