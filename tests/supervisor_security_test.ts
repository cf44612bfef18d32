/**
 * The supervisor, the state directory, the loader cache and `hako logs` trust nobody: a client of
 * another uid is refused by its peer credentials (not only by file modes), a state directory that
 * others could reach is fixed or refused, umask 000 still gives 0700/0600, a cache another user
 * could write is not executed, and a container's terminal control sequences reach a terminal
 * escaped (and a pipe unchanged). Every test has its own HAKO_STATE_DIR and stops the supervisor it
 * started; the supervisor runs under the runtime running the tests (Deno or Bun).
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import assert from "node:assert/strict";
import { isRoot, needsRoot, runtime, tempDir, test, until } from "./_harness.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { StateDirError, StateStore } from "../src/container/state.ts";
import { escapeControls, TerminalEscaper } from "../src/cli/logs.ts";
import { cacheProblem } from "../src/runner/transpile.ts";
import { type FileFacts, untrustedWayTo } from "../src/_trusted_path.ts";
import { requestProblem } from "../src/supervisor/supervisor.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MAIN = join(ROOT, "src/cli/main.ts");
const NOBODY = 65534;
const PYTHON = "/usr/bin/python3";

function why(): string | false {
  if (!isRoot) return "needs root (to act as nobody and to own the state directory)";
  if (findStaticBusybox() === undefined) return "needs a static busybox (apt-get install busybox-static)";
  if (!existsSync(PYTHON)) return "needs /usr/bin/python3 (a unix-socket client and a pty)";
  if (spawnSync("setpriv", ["--help"]).error) return "needs setpriv (util-linux)";
  return false;
}
const skip = why();

/** The argv that runs hako's CLI under the runtime running the tests. */
function cliArgv(args: readonly string[]): [string, string[]] {
  return runtime === "bun" ? [process.execPath, [MAIN, ...args]] : [process.execPath, [
    "run",
    "-A",
    "--v8-flags=--single-threaded",
    "--config",
    join(ROOT, "deno.json"),
    MAIN,
    ...args,
  ]];
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

const unique = () => `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

/** A temp dir (0755, so nobody can reach what the test opens to it), its state dir and a busybox rootfs. */
function lab(prefix = "hako-supsec-") {
  const dir = tempDir(prefix);
  chmodSync(dir.path, 0o755);
  const state = join(dir.path, "state");
  const rootfs = join(dir.path, "rootfs");
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    HAKO_STATE_DIR: state,
    NO_COLOR: "1",
  };
  delete env.HAKO_LOADER;
  const hako = (args: string[], options: { umask?: string; extraEnv?: Record<string, string> } = {}): Result => {
    const [cmd, argv] = cliArgv(args);
    const e = { ...env, ...options.extraEnv };
    const r = options.umask
      ? spawnSync("sh", ["-c", `umask ${options.umask}; exec "$@"`, "sh", cmd, ...argv], { env: e, encoding: "utf8" })
      : spawnSync(cmd, argv, { env: e, encoding: "utf8", timeout: 60_000 });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const spec = (name: string, command: string, extra = ""): string => {
    const path = join(dir.path, `${name}.ts`);
    writeFileSync(
      path,
      `export default {
  name: ${JSON.stringify(name)},
  rootfs: { builder: "busybox", path: ${JSON.stringify(rootfs)} },
  command: ["sh", "-c", ${JSON.stringify(command)}],
  ${extra}
};\n`,
    );
    return path;
  };
  const supervisorPid = (): number | undefined => {
    try {
      return Number(readFileSync(join(state, "supervisor.pid"), "utf8").split(" ")[0]);
    } catch {
      return undefined;
    }
  };
  let started: number | undefined;
  /**
   * Starts `hako supervisor` under the tests' runtime (as `uid`, when given), its messages to
   * `supervisor.out`.
   */
  const startSupervisor = async (umask = "022", options: { uid?: number; env?: Record<string, string> } = {}) => {
    const out = join(dir.path, "supervisor.out");
    const fd = openSync(out, "a");
    const [cmd, argv] = cliArgv(["supervisor", "--idle", "0"]);
    const as = options.uid === undefined
      ? []
      : ["setpriv", `--reuid=${options.uid}`, `--regid=${options.uid}`, "--clear-groups"];
    const shell = ["sh", "-c", `umask ${umask}; exec "$@"`, "sh", cmd, ...argv];
    const p = spawn([...as, ...shell][0]!, [...as, ...shell].slice(1), {
      env: { ...env, ...options.env },
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    started = p.pid;
    await until("the supervisor's socket", () => existsSync(join(state, "supervisor.sock")) && !!supervisorPid());
    return out;
  };
  return {
    dir: dir.path,
    state,
    rootfs,
    env,
    hako,
    spec,
    supervisorPid,
    startSupervisor,
    [Symbol.dispose]() {
      try {
        if (existsSync(join(state, "containers"))) {
          for (const n of readdirSync(join(state, "containers"))) hako(["delete", "--force", n]);
        }
      } catch { /* the directory goes anyway */ }
      for (const pid of new Set([supervisorPid(), started])) {
        if (!pid) continue;
        try {
          process.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      dir[Symbol.dispose]();
    },
  };
}

/**
 * Sends one line to a unix socket as `uid` (python3); returns what it got until EOF (or 10 s), or
 * with `oneLine` until its first line.
 */
function socketClient(path: string, line: string, uid: number, until: "eof" | "line" | "none" = "eof"): Result {
  const script = `import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\\n")
if sys.argv[3] == "none": sys.exit(0)
data = b""
try:
    while True:
        c = s.recv(65536)
        if not c: break
        data += c
        if sys.argv[3] == "line" and b"\\n" in data: break
except socket.timeout:
    data += b"(no EOF)"
sys.stdout.write(data.decode())
`;
  const r = spawnSync(
    "setpriv",
    [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", PYTHON, "-c", script, path, line, until],
    { encoding: "utf8", timeout: 30_000 },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `argv` with a pty as its stdout (python3's pty module, output post-processing off); its bytes. */
function onTerminal(argv: readonly string[], env: Record<string, string>): Buffer {
  const script = `import os, pty, sys, termios
pid, fd = pty.fork()
if pid == 0:
    a = termios.tcgetattr(1)
    a[1] &= ~termios.OPOST
    termios.tcsetattr(1, termios.TCSANOW, a)
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        c = os.read(fd, 65536)
    except OSError:
        break
    if not c: break
    out += c
_, st = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(st))
`;
  const r = spawnSync(PYTHON, ["-c", script, ...argv], { env, timeout: 60_000 });
  if (r.status !== 0) throw new Error(`on a terminal: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const mode = (path: string) => lstatSync(path).mode & 0o7777;
const octal = (n: number) => `0${n.toString(8)}`;

// ---- pure parts ------------------------------------------------------------------------------------

test("untrustedWayTo(): every directory on the way is root's or the user's and closed to others (sticky ones aside)", () => {
  const tree: Record<string, FileFacts> = {
    "/": { uid: 0, mode: 0o755, kind: "dir" },
    "/tmp": { uid: 0, mode: 0o1777, kind: "dir" },
    "/tmp/mine": { uid: 1000, mode: 0o700, kind: "dir" },
    "/tmp/theirs": { uid: 2000, mode: 0o755, kind: "dir" },
    "/srv": { uid: 0, mode: 0o775, kind: "dir" },
    "/home": { uid: 0, mode: 0o755, kind: "dir" },
    "/home/me": { uid: 1000, mode: 0o755, kind: "dir" },
    "/home/me/link": { uid: 1000, mode: 0o777, kind: "symlink" },
    "/home/me/badlink": { uid: 2000, mode: 0o777, kind: "symlink" },
    "/home/me/tolost": { uid: 1000, mode: 0o777, kind: "symlink" },
  };
  const links: Record<string, string> = { "/home/me/link": "/tmp/theirs/x", "/home/me/badlink": "/tmp/mine" };
  const fs = {
    lstat: (p: string) => tree[p],
    realPath: (p: string) => {
      if (links[p]) return links[p]!;
      if (!tree[p] || tree[p]!.kind === "symlink") throw new Error("ENOENT");
      return p;
    },
  };
  assert.equal(untrustedWayTo("/tmp/mine/cache", 1000, fs), undefined, "through sticky /tmp into my own dir");
  assert.equal(untrustedWayTo("/home/me/.cache/hako", 1000, fs), undefined, "below what does not exist yet");
  assert.match(untrustedWayTo("/tmp/theirs/state", 0, fs)!, /\/tmp\/theirs is owned by uid 2000/);
  assert.match(
    untrustedWayTo("/srv/state", 0, fs)!,
    /\/srv is writable by others than its owner \(mode 0775, not sticky\)/,
  );
  assert.match(
    untrustedWayTo("/home/me/link/state", 1000, fs)!,
    /\/tmp\/theirs is owned by uid 2000/,
    "where a link leads",
  );
  assert.match(untrustedWayTo("/home/me/badlink", 1000, fs)!, /badlink is a symlink owned by uid 2000/);
  assert.match(untrustedWayTo("/home/me/tolost/x", 1000, fs)!, /leads nowhere/);
  assert.match(untrustedWayTo("/home/me/../../srv/x", 1000, fs)!, /\/srv is writable/, "'..' walks up");
  assert.equal(untrustedWayTo("/", 0, fs), undefined);
});

test("requestProblem(): only a JSON object with a numeric id and a known op is a request", () => {
  for (
    const bad of [null, 5, "start", [], {}, { id: "1", op: "ping" }, { id: 1, op: "nope" }, { id: 1, op: "start" }]
  ) {
    assert.ok(requestProblem(bad), JSON.stringify(bad));
  }
  assert.match(requestProblem({ id: 1, op: "start", spec: {}, specFile: 3 })!, /specFile/);
  assert.equal(requestProblem({ id: 1, op: "ping" }), undefined);
  assert.equal(requestProblem({ id: 2, op: "start", spec: { name: "x" }, specFile: "/x.ts" }), undefined);
});

// ---- the supervisor's peer check -------------------------------------------------------------

test(
  "a client of another uid is refused by the supervisor's peer check, even when file modes let it in; nothing runs",
  async () => {
    using l = lab();
    const log = await l.startSupervisor();
    const sock = join(l.state, "supervisor.sock");
    // Open a door, so that only the peer check can refuse: a hard link to the socket in a dir
    // everyone may search (the state dir stays 0700), and the socket itself writable by all.
    const door = join(l.dir, "door");
    mkdirSync(door, { mode: 0o755 });
    chmodSync(door, 0o755);
    linkSync(sock, join(door, "supervisor.sock"));
    chmodSync(sock, 0o666);
    const marker = join(l.dir, `hook-ran-${unique()}`);
    const request = (id: number, name: string) =>
      JSON.stringify({
        id,
        op: "start",
        spec: {
          name,
          rootfs: { builder: "busybox", path: l.rootfs },
          command: ["true"],
          hooks: { beforeStart: `echo "$HAKO_NAME" >> ${marker}` },
        },
      });
    const r = socketClient(join(door, "supervisor.sock"), request(1, "sec-nobody"), NOBODY);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1, `one refusal line, then the connection closed: ${r.stdout}`);
    const reply = JSON.parse(lines[0]!);
    assert.equal(reply.ok, false);
    assert.equal(reply.error.name, "PermissionError");
    assert.match(reply.error.message, /uid 65534.*refused.*only uid 0/);
    assert.equal(existsSync(marker), false, "the hook did not run");
    assert.equal(existsSync(join(l.state, "containers", "sec-nobody")), false, "no container was reserved");
    assert.match(readFileSync(log, "utf8"), /refused a connection from uid 65534 \(pid \d+\)/);
    // A bad line from an allowed client does not end the supervisor either…
    for (const junk of ["null", "5", '"start"', '{"op":"start"}', '{"id":3,"op":"start","spec":null}', "{"]) {
      const j = socketClient(sock, junk, 0, "line");
      assert.match(j.stdout, /"ok":false/, `${junk}: ${j.stdout}`);
    }
    // …nor a client that goes before its answer, nor twenty at once.
    assert.equal(socketClient(sock, JSON.stringify({ id: 4, op: "ping" }), 0, "none").code, 0);
    const many = spawnSync(PYTHON, [
      "-c",
      `import socket, sys
ss = [socket.socket(socket.AF_UNIX) for _ in range(20)]
for i, s in enumerate(ss):
    s.settimeout(10); s.connect(sys.argv[1]); s.sendall(b'{"id":%d,"op":"ping"}\\n' % (i + 1))
print(sum(b'"ok":true' in s.recv(4096) for s in ss))`,
      sock,
    ], { encoding: "utf8", timeout: 30_000 });
    assert.equal(many.stdout.trim(), "20", many.stderr);
    // …and root, through the same door, is served: the same request runs its hook.
    const ok = socketClient(join(door, "supervisor.sock"), request(2, "sec-root"), 0, "line");
    assert.match(ok.stdout, /"ok":true/, ok.stdout + readFileSync(log, "utf8"));
    assert.equal(readFileSync(marker, "utf8"), "sec-root\n", "root's request ran, nobody's never did");
    chmodSync(sock, 0o600);
  },
  { skip },
);

test("a rootless supervisor serves its own uid only: root is refused too", async () => {
  using l = lab();
  const home = join(l.dir, "home");
  for (const d of [l.state, home]) {
    mkdirSync(d, { mode: 0o700 });
    chownSync(d, NOBODY, NOBODY);
  }
  const log = await l.startSupervisor("022", {
    uid: NOBODY,
    env: { HOME: home, DENO_DIR: join(home, ".deno"), XDG_CACHE_HOME: join(home, ".cache") },
  });
  const sock = join(l.state, "supervisor.sock");
  assert.equal(statSync(sock).uid, NOBODY);
  const pong = socketClient(sock, JSON.stringify({ id: 1, op: "ping" }), NOBODY, "line");
  assert.match(pong.stdout, /"ok":true/, pong.stdout + readFileSync(log, "utf8"));
  // Root can open the socket (file modes do not bind root), but the supervisor says no.
  const root = socketClient(sock, JSON.stringify({ id: 1, op: "ping" }), 0);
  assert.match(root.stdout, /"name":"PermissionError".*uid 0 \(pid \d+\) refused: only uid 65534 may/, root.stdout);
  assert.match(readFileSync(log, "utf8"), /refused a connection from uid 0/);
}, { skip });

test("the client reports a refusal as the supervisor words it", async () => {
  using l = lab();
  // A stand-in supervisor that refuses everyone, recorded as running (this process).
  mkdirSync(l.state, { mode: 0o700 });
  const stat = readFileSync("/proc/self/stat", "utf8");
  const startTime = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  writeFileSync(join(l.state, "supervisor.pid"), `${process.pid} ${startTime}\n`);
  const refusal = {
    id: 0,
    ok: false,
    error: { name: "PermissionError", message: "uid 1 (pid 2) refused: only uid 0 may" },
  };
  const server = createServer((s) => s.end(JSON.stringify(refusal) + "\n"));
  await new Promise<void>((res) => server.listen(join(l.state, "supervisor.sock"), res));
  try {
    const { SupervisorClient } = await import("../src/supervisor/client.ts");
    const c = await SupervisorClient.connect(new StateStore(l.state), { start: false });
    try {
      const r = await c.request({ op: "ping" });
      assert.equal(r.ok, false);
      assert.equal(r.error?.name, "PermissionError");
      assert.match(r.error!.message, /refused: only uid 0 may/);
    } finally {
      c.close();
    }
  } finally {
    server.close();
    rmSync(join(l.state, "supervisor.pid")); // this process: not a supervisor to kill
  }
}, { skip: needsRoot });

// ---- the state directory ------------------------------------------------------------------------

test("a state dir owned by another user is refused, naming the path and the owner", () => {
  using l = lab();
  mkdirSync(l.state, { mode: 0o700 });
  chownSync(l.state, NOBODY, NOBODY);
  assert.throws(
    () => new StateStore(l.state).prepare(),
    (e: Error) => e instanceof StateDirError && e.message.includes(l.state) && /owned by uid 65534/.test(e.message),
  );
  const s = l.hako(["start", l.spec("sec-owned", "true")]);
  assert.equal(s.code, 1, s.stderr);
  assert.match(s.stderr, new RegExp(`${l.state}.*owned by uid 65534`));
  assert.equal(l.supervisorPid(), undefined, "no supervisor was started");
  assert.equal(existsSync(join(l.state, "containers")), false, "nothing was made in it");
  // Read-only commands refuse it too: its records could be anyone's.
  mkdirSync(join(l.state, "containers", "planted"), { recursive: true });
  const p = l.hako(["ps"]);
  assert.equal(p.code, 1, p.stdout);
  assert.match(p.stderr, /owned by uid 65534/);
}, { skip: needsRoot });

test(
  "a state dir (or containers/) of ours that others could reach is fixed to 0700; one with others' files is refused",
  () => {
    using l = lab();
    for (const m of [0o777, 0o755, 0o711, 0o2770]) {
      mkdirSync(join(l.state, "containers"), { recursive: true });
      chmodSync(l.state, m);
      chmodSync(join(l.state, "containers"), m);
      new StateStore(l.state).prepare();
      // (0711 is kept: passable, not listable — containers' own files are reached through it)
      assert.equal(octal(mode(l.state)), m === 0o711 ? "0711" : "0700", `state dir from ${octal(m)}`);
      assert.equal(octal(mode(join(l.state, "containers"))), "0700", `containers/ from ${octal(m)}`);
    }
    // While it was open, someone else planted a record: it is not trusted.
    chmodSync(join(l.state, "containers"), 0o777);
    mkdirSync(join(l.state, "containers", "planted"));
    chownSync(join(l.state, "containers", "planted"), NOBODY, NOBODY);
    assert.throws(
      () => new StateStore(l.state).prepare(),
      (e: Error) => e instanceof StateDirError && /planted.*owned by uid 65534/.test(e.message),
    );
    // containers/ owned by someone else, or a symlink, is refused.
    chownSync(join(l.state, "containers", "planted"), 0, 0);
    chownSync(join(l.state, "containers"), NOBODY, NOBODY);
    assert.throws(() => new StateStore(l.state).prepare(), /containers.*owned by uid 65534/);
  },
  { skip: needsRoot },
);

test("a state dir under a directory another user can write is refused", () => {
  using l = lab();
  const open = join(l.dir, "open");
  mkdirSync(open);
  chownSync(open, NOBODY, NOBODY);
  assert.throws(
    () => new StateStore(join(open, "state")).prepare(),
    (e: Error) => e instanceof StateDirError && e.message.includes(open) && /uid 65534/.test(e.message),
  );
  assert.equal(existsSync(join(open, "state")), false, "nothing was made there");
}, { skip: needsRoot });

test(
  "umask 000: the state dir, containers, records, logs and the socket are still 0700/0600 (native and forked paths)",
  async () => {
    for (const native of ["1", "0"]) {
      using l = lab();
      // An existing state dir that umask 000 and an old hako left 0755: fixed before the socket is made.
      mkdirSync(l.state, { mode: 0o755 });
      chmodSync(l.state, 0o755);
      l.env.HAKO_NATIVE_SPAWN = native;
      await l.startSupervisor("000");
      const file = l.spec(`sec-umask-${native}`, "echo hi; exec sleep 1000");
      const r = l.hako(["start", file], { umask: "000" });
      assert.equal(r.code, 0, r.stderr);
      const c = join(l.state, "containers", `sec-umask-${native}`);
      // (Each line of the log starts with its timestamp, written by the container's log relay.)
      await until("the log", () => existsSync(join(c, "log")) && / hi\n$/.test(readFileSync(join(c, "log"), "utf8")));
      const modes = Object.fromEntries(
        [
          l.state,
          join(l.state, "containers"),
          c,
          join(c, "state.json"),
          join(c, "log"),
          join(c, "log.fifo"),
          join(c, "log.relay"),
          join(c, "lock"),
          join(l.state, "supervisor.sock"),
          join(l.state, "supervisor.pid"),
          join(l.state, "supervisor.lock"),
          join(l.state, "files"),
          join(l.state, "files", `sec-umask-${native}`),
          join(l.state, "files", `sec-umask-${native}`, "hosts"),
        ].map((p) => [p.slice(l.state.length) || "/", octal(mode(p))]),
      );
      assert.deepEqual(modes, {
        // The state directory and files/ are passable, not listable: a container in a user
        // namespace binds its own files (its own directory, 0700) from in there.
        "/": "0711",
        "/files": "0711",
        [`/files/sec-umask-${native}`]: "0700",
        [`/files/sec-umask-${native}/hosts`]: "0644",
        "/containers": "0700",
        [`/containers/sec-umask-${native}`]: "0700",
        [`/containers/sec-umask-${native}/state.json`]: "0600",
        [`/containers/sec-umask-${native}/log`]: "0600",
        [`/containers/sec-umask-${native}/log.fifo`]: "0600",
        [`/containers/sec-umask-${native}/log.relay`]: "0600",
        [`/containers/sec-umask-${native}/lock`]: "0600",
        "/supervisor.sock": "0600",
        "/supervisor.pid": "0600",
        "/supervisor.lock": "0600",
      }, `HAKO_NATIVE_SPAWN=${native}`);
      assert.equal(l.hako(["delete", "--force", `sec-umask-${native}`]).code, 0);
    }
  },
  { skip },
);

test("the supervisor started by hako start (umask 000, a fresh state dir) keeps its files private", () => {
  using l = lab();
  const r = l.hako(["start", l.spec("sec-auto", "exec sleep 1000")], { umask: "000" });
  assert.equal(r.code, 0, r.stderr);
  for (const f of ["", "/containers", "/supervisor.sock", "/supervisor.log", "/supervisor.pid"]) {
    const m = mode(l.state + f);
    // (the state directory itself may be passable: 0711)
    assert.equal(m & (f ? 0o077 : 0o066), 0, `${f || "/"} is ${octal(m)}`);
  }
  assert.equal(statSync(l.state).uid, 0);
}, { skip });

// ---- the loader cache -----------------------------------------------------------------------------

/** A script, its cache entry after one run, and that entry rewritten to print "planted". */
function plantedCache(l: ReturnType<typeof lab>, cache: string): { script: string; entry: string } {
  const script = join(l.dir, "hello.ts");
  writeFileSync(script, 'const greeting: string = "real";\nconsole.log(greeting);\n');
  const env = { HAKO_CACHE_DIR: cache, HAKO_LOADER: "data" };
  const first = l.hako(["run", script], { extraEnv: env });
  assert.deepEqual([first.code, first.stdout, first.stderr], [0, "real\n", ""]);
  const loader = join(cache, "loader");
  const entries = readdirSync(loader).flatMap((d) => readdirSync(join(loader, d)).map((f) => join(loader, d, f)));
  const entry = entries.find((p) => JSON.parse(readFileSync(p, "utf8")).code.includes('"real"'));
  assert.ok(entry, `the script's entry among ${entries}`);
  const cached = JSON.parse(readFileSync(entry, "utf8"));
  cached.code = cached.code.replace('"real"', '"planted"');
  writeFileSync(entry, JSON.stringify(cached));
  return { script, entry };
}

test("the loader cache: a planted entry is used only when the cache is the caller's and closed to others", () => {
  using l = lab();
  const cache = join(l.dir, "cache");
  const { script, entry } = plantedCache(l, cache);
  const env = { HAKO_CACHE_DIR: cache, HAKO_LOADER: "data" };
  const run = () => l.hako(["run", script], { extraEnv: env });
  // Our own private cache is trusted (this is what the other cases must not do).
  assert.equal(run().stdout, "planted\n", "the cache is read when it is safe");
  const cases: Array<[string, () => void, () => void, RegExp]> = [
    [
      "cache dir owned by nobody",
      () => chownSync(cache, NOBODY, NOBODY),
      () => chownSync(cache, 0, 0),
      /owned by uid 65534/,
    ],
    ["cache dir 0777", () => chmodSync(cache, 0o777), () => chmodSync(cache, 0o700), /writable by others/],
    [
      "loader/ 0777",
      () => chmodSync(join(cache, "loader"), 0o777),
      () => chmodSync(join(cache, "loader"), 0o700),
      /writable by others/,
    ],
    [
      "entry owned by nobody",
      () => chownSync(entry, NOBODY, NOBODY),
      () => chownSync(entry, 0, 0),
      /owned by uid 65534/,
    ],
    ["entry 0666", () => chmodSync(entry, 0o666), () => chmodSync(entry, 0o600), /writable by others/],
  ];
  for (const [what, spoil, restore, reason] of cases) {
    spoil();
    try {
      const r = run();
      assert.equal(r.stdout, "real\n", `${what}: the planted entry was not executed`);
      const warnings = r.stderr.split("\n").filter((x) => x.includes("cache"));
      assert.equal(warnings.length, 1, `${what}: one warning: ${r.stderr}`);
      assert.match(warnings[0]!, reason, what);
      assert.match(warnings[0]!, new RegExp(cache));
    } finally {
      restore();
    }
  }
  // A cache under a directory another user may write is not trusted either.
  const open = join(l.dir, "open");
  mkdirSync(open);
  chownSync(open, NOBODY, NOBODY);
  assert.match(cacheProblem(join(open, "cache"), 0) ?? "", /owned by uid 65534/);
  assert.equal(cacheProblem(cache, 0), undefined);
}, { skip: needsRoot });

test("the loader cache is created 0700 (entries 0600) whatever the umask", () => {
  using l = lab();
  const cache = join(l.dir, "fresh", "cache");
  const script = join(l.dir, "u.ts");
  writeFileSync(script, "console.log(1 as number);\n");
  const r = l.hako(["run", script], { umask: "000", extraEnv: { HAKO_CACHE_DIR: cache, HAKO_LOADER: "data" } });
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, "1\n", ""]);
  const dirs = [join(l.dir, "fresh"), cache, join(cache, "loader")];
  for (const d of dirs) assert.equal(octal(mode(d)), "0700", d);
  const loader = join(cache, "loader");
  for (const sub of readdirSync(loader)) {
    assert.equal(octal(mode(join(loader, sub))), "0700", sub);
    for (const f of readdirSync(join(loader, sub))) assert.equal(octal(mode(join(loader, sub, f))), "0600", f);
  }
}, { skip: needsRoot });

// ---- hako logs and terminals ------------------------------------------------------------------------

test("escapeControls(): C0, DEL and C1 controls are shown escaped; text, tabs, newlines and CRLF are kept", () => {
  assert.equal(escapeControls("plain\ttext\n"), "plain\ttext\n");
  assert.equal(escapeControls("\x1b]52;c;aGk=\x07"), "\\x1b]52;c;aGk=\\a");
  assert.equal(escapeControls("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
  assert.equal(escapeControls("a\bb\x7fc\x00d\x0ce\x0bf"), "a\\bb\\x7fc\\x00d\\fe\\vf");
  assert.equal(escapeControls("\u009b31m \u0090dcs\u009c \u0085"), "\\u009b31m \\u0090dcs\\u009c \\u0085");
  assert.equal(escapeControls("crlf\r\nlone\rcr\r"), "crlf\r\nlone\\rcr\\r");
  assert.equal(escapeControls("é ü 日本 \u00a0"), "é ü 日本 \u00a0");
  // In pieces (hako logs -f): a CR at the end of one piece waits to see what follows.
  const t = new TerminalEscaper();
  const out = [t.push("one\r"), t.push("\ntwo\r"), t.push("three\x1b"), t.push("[0m\r"), t.end()].join("");
  assert.equal(out, "one\r\ntwo\\rthree\\x1b[0m\\r");
});

const NASTY =
  "\\033]52;c;aGFja2Vk\\007 plain \\033[31mred\\033[0m \\302\\233 c1 back\\bspace \\377 end\\r\\nover\\rwrite\\n";
const NASTY_BYTES = Buffer.concat([
  Buffer.from("\x1b]52;c;aGFja2Vk\x07 plain \x1b[31mred\x1b[0m ", "latin1"),
  Buffer.from([0xc2, 0x9b]),
  Buffer.from(" c1 back\bspace ", "latin1"),
  Buffer.from([0xff]),
  Buffer.from(" end\r\nover\rwrite\n", "latin1"),
]);
const ESCAPED =
  "\\x1b]52;c;aGFja2Vk\\a plain \\x1b[31mred\\x1b[0m \\u009b c1 back\\bspace \ufffd end\r\nover\\rwrite\n";

test(
  "hako logs: a container's OSC 52 and other controls reach a terminal escaped, a pipe unchanged; --raw keeps them",
  async () => {
    using l = lab();
    const name = "sec-logs";
    const file = l.spec(name, `printf '${NASTY}'; sleep 1; printf '${NASTY}'`);
    const [cmd, argv] = cliArgv(["logs", "-f", name]);
    const r = l.hako(["start", file]);
    assert.equal(r.code, 0, r.stderr);
    // -f on a terminal, while the container writes.
    const followed = onTerminal([cmd, ...argv], l.env).toString("utf8");
    assert.equal(followed, ESCAPED + ESCAPED, "-f on a terminal");
    await until(
      "the end",
      () => JSON.parse(readFileSync(join(l.state, "containers", name, "state.json"), "utf8")).state === "exited",
    );
    const logs = (args: string[]) => {
      const [c, a] = cliArgv(["logs", ...args, name]);
      return onTerminal([c, ...a], l.env);
    };
    assert.equal(logs([]).toString("utf8"), ESCAPED + ESCAPED, "on a terminal");
    assert.equal(logs(["-n", "1"]).toString("utf8"), "over\\rwrite\n", "-n 1 on a terminal");
    assert.deepEqual(logs(["--raw"]), Buffer.concat([NASTY_BYTES, NASTY_BYTES]), "--raw on a terminal");
    // Through a pipe: the bytes as written.
    const [c, a] = cliArgv(["logs", name]);
    const piped = spawnSync(c, a, { env: l.env });
    assert.equal(piped.status, 0, String(piped.stderr));
    assert.deepEqual(piped.stdout, Buffer.concat([NASTY_BYTES, NASTY_BYTES]), "through a pipe");
    const [c2, a2] = cliArgv(["logs", "-n", "1", name]);
    assert.deepEqual(spawnSync(c2, a2, { env: l.env }).stdout, Buffer.from("over\rwrite\n"), "-n 1 through a pipe");
  },
  { skip },
);
