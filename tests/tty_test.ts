/**
 * `-t`: a terminal of the container's own, relayed by hako. The library options (`Container.create`'s
 * `tty`, `execIn`'s `tty` and `onTerminal`) checked from outside the container — the pty is
 * /dev/pts/0 of the container's own devpts, its controlling terminal and stdio — and the CLI
 * (`hako run -t`/`-it`, `hako exec -t`/`-it`, `hako shell -t`) run on a terminal of its own made
 * by `tests/_pty.py` (python3's pty module: the test runner has no terminal): keystrokes, window
 * size and resizes, the caller's terminal settings restored on every way out, and the TIOCSTI
 * attack (CVE-2017-5226) from a container run without -t, with -t, and from an exec'd process —
 * each on the native child and the forked one (`HAKO_NATIVE_SPAWN=0`).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, isRoot, runtime, tempDir, test } from "./_harness.ts";
import { Container, type ContainerSpec, execIn } from "../mod.ts";
import { ConfigError } from "../src/errors.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { nativeChildren } from "../src/container/native.ts";
import { libc } from "../ffi/libc.ts";
import { spawnProgram, SyscallProgram } from "../ffi/spawn.ts";
import { setWindowSize } from "../ffi/tty.ts";
import { killContainer } from "../src/container/lifecycle.ts";
import { StateStore } from "../src/container/state.ts";
import { parseArgs } from "../src/cli/_args.ts";
import { parseRunArgs } from "../src/cli/run.ts";
import { parseExecArgs } from "../src/cli/exec.ts";
import { parseShellArgs } from "../src/cli/shell.ts";
import { procFile, waitUntil } from "./_proc.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PROBE_SOURCE = join(ROOT, "tests/fixtures/escape_probe.c");
const PTY = join(ROOT, "tests/_pty.py");

function works(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : !findStaticBusybox()
  ? "needs a static busybox (apt-get install busybox-static)"
  : false;
const skipCli = skip ||
  (!works("python3", ["-c", "import pty"])
    ? "needs python3 (its pty module gives the CLI a terminal)"
    : !works("bash", ["-c", "true"])
    ? "needs bash (the caller's shell on the terminal)"
    : false);
const skipProbe = skipCli ||
  (!works("gcc", ["--version"]) ? "needs gcc with a static glibc to build the TIOCSTI probe" : false);

const PATHS = [["native", "1"], ["forked", "0"]] as const;

/** Runs `fn` with the native child on or off. */
async function onPath<T>(value: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env.HAKO_NATIVE_SPAWN;
  process.env.HAKO_NATIVE_SPAWN = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
    else process.env.HAKO_NATIVE_SPAWN = before;
  }
}

/** A busybox rootfs (with the TIOCSTI probe at /probe when asked), removed at dispose. */
function box(withProbe = false): { rootfs: string; name: (what: string) => string } & Disposable {
  const dir = tempDir("hako-test-tty-");
  const rootfs = join(dir.path, "rootfs");
  buildRootfs(rootfs, { builder: "busybox" });
  if (withProbe) {
    execFileSync("gcc", ["-static", "-O2", "-o", join(dir.path, "probe"), PROBE_SOURCE]);
    copyFileSync(join(dir.path, "probe"), join(rootfs, "probe"));
    chmodSync(join(rootfs, "probe"), 0o755);
  }
  let n = 0;
  const tag = Math.random().toString(16).slice(2, 8);
  return {
    rootfs,
    name: (what) => `hako-test-tty-${what}-${tag}-${n++}`,
    [Symbol.dispose]: () => dir[Symbol.dispose](),
  };
}

/** Writes a shell script into the rootfs; @returns its path inside. */
function script(rootfs: string, name: string, text: string): string {
  writeFileSync(join(rootfs, name), text);
  return `/${name}`;
}

/** Reads a pty's master until EIO (every process holding the slave is gone) or `ms`. */
async function readAll(master: number, ms = 10_000): Promise<string> {
  const { read } = libc();
  const buf = new Uint8Array(65536);
  let out = "";
  const until = Date.now() + ms;
  // (the master is blocking: wait until poll says there is something, or the slave is gone)
  const pfd = new Int32Array([master, 1, 0, 0]);
  while (Date.now() < until) {
    new DataView(pfd.buffer).setInt16(4, 1, true);
    if (libc().poll(new Uint8Array(pfd.buffer), 1n, 10) === 0) {
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    const n = read(master, buf, BigInt(buf.length));
    if (n <= 0) break;
    out += new TextDecoder().decode(buf.subarray(0, n));
  }
  return out;
}

/** The `tty_nr` field of /proc/PID/stat: the controlling terminal's device number (0: none). */
function ttyNr(pid: number): number {
  const stat = procFile(pid, "stat");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[4]);
}

/** A pty slave's device number as tty_nr encodes it: major 136 + n / 256, minor n % 256. */
const ptsNr = (n: number) => ((136 + (n >> 8)) << 8) | (n & 0xff);

// ---- the library: Container.create({ tty }) and execIn({ tty, onTerminal }) ----------------------

for (const [path, value] of PATHS) {
  test(
    `Container.create with tty (${path}): the command's controlling terminal and stdio are /dev/pts/0 of the container's own devpts, sized as asked`,
    async () => {
      using b = box();
      await onPath(value, async () => {
        const before = nativeChildren.count;
        await using c = await Container.create({
          name: b.name("create"),
          rootfs: b.rootfs,
          command: ["sh", "-c", "tty; stty size; echo ready; exec sleep 30"],
        }, { tty: { rows: 33, columns: 77 } });
        if (value === "1" && process.arch === "x64") assertEquals(nativeChildren.count - before, 1, "a native child");
        const master = c.terminal;
        assert(master !== undefined && master > 2, `a master fd: ${master}`);
        await c.start();
        await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "the exec of sleep");
        // From outside: its controlling terminal is pts 0, and fds 0-2 are that pts of the
        // container's devpts (not the host's /dev/pts).
        assertEquals(ttyNr(c.pid), ptsNr(0), "tty_nr of the container's init");
        const stat = procFile(c.pid, "stat");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        assertEquals(fields[3], String(c.pid), "a session of its own");
        assertEquals(fields[5], fields[2], "the foreground process group of its terminal is its own");
        const devpts = statSync(`/proc/${c.pid}/root/dev/pts/ptmx`).dev;
        assert(devpts !== statSync("/dev/pts/ptmx").dev, "the container's devpts is not the host's");
        for (const fd of [0, 1, 2]) {
          assertEquals(readlinkSync(`/proc/${c.pid}/fd/${fd}`), "/dev/pts/0", `fd ${fd}`);
          const st = statSync(`/proc/${c.pid}/fd/${fd}`);
          assertEquals([st.dev, st.rdev], [devpts, statSync(`/proc/${c.pid}/root/dev/pts/0`).rdev], `fd ${fd}`);
        }
        // Only the parent holds the master: nothing inside has a descriptor of ptmx.
        const inside = readdirSync(`/proc/${c.pid}/fd`);
        assertEquals(inside.sort(), ["0", "1", "2"]);
        c.kill("KILL");
        await c.wait();
        assertEquals((await readAll(master)).split("\r\n").slice(0, 3), ["/dev/pts/0", "33 77", "ready"]);
      });
    },
    { skip },
  );

  test(
    `execIn with tty (${path}): the exec'd command gets a pty of the container's devpts, sized before it starts, owned by its user`,
    async () => {
      using b = box();
      await onPath(value, async () => {
        await using c = await Container.create({
          name: b.name("exec"),
          rootfs: b.rootfs,
          command: ["sleep", "30"],
          stdio: "null",
        });
        await c.start();
        let master = -1;
        let pid = 0;
        const before = nativeChildren.count;
        try {
          const running = execIn(c.pid, {
            argv: ["sh", "-c", "tty; stty size; ls -ln /dev/pts/0; cat /proc/self/stat; exec sleep 30"],
            spec: c.spec,
            user: { uid: 1000, gid: 1000 },
            tty: { rows: 12, columns: 34 },
            onTerminal: (m) => master = m,
            onStart: (p) => pid = p,
          });
          const until = Date.now() + 10_000;
          while (!pid && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
          assert(master > 2 && pid > 0, `master ${master}, pid ${pid}`);
          // (on the forked path the command is not this process's child: no waitpid here)
          while (procFile(pid, "comm").trim() !== "sleep") {
            assert(Date.now() < until, "the exec of sleep");
            await new Promise((r) => setTimeout(r, 5));
          }
          // From outside: the command's controlling terminal is pts 0, and it holds nothing but it.
          assertEquals(ttyNr(pid), ptsNr(0), "tty_nr of the exec'd command");
          assertEquals(readdirSync(`/proc/${pid}/fd`).sort(), ["0", "1", "2"]);
          for (const fd of [0, 1, 2]) assertEquals(readlinkSync(`/proc/${pid}/fd/${fd}`), "/dev/pts/0", `fd ${fd}`);
          process.kill(pid, "SIGKILL");
          assertEquals((await running).signal, 9);
          const out = (await readAll(master)).split("\r\n");
          assertEquals(out.slice(0, 2), ["/dev/pts/0", "12 34"]);
          // owned by the command's user, as runc's fixStdioPermissions leaves it
          assert(/^crw--w----\s+1\s+1000\s/.test(out[2]!), out[2]);
          const fields = out[3]!.slice(out[3]!.lastIndexOf(")") + 2).split(" ");
          assertEquals(fields[4], String(ptsNr(0)), "tty_nr inside");
          if (value === "1" && process.arch === "x64") assertEquals(nativeChildren.count - before, 1, "a native child");
        } finally {
          if (master >= 0) libc().close(master);
        }
      });
    },
    { skip },
  );
}

for (const [path, value] of PATHS) {
  test(
    `in a user namespace too (${path}): the pty is the container's, owned by the command's user, for its command and an exec'd one`,
    async () => {
      using b = box();
      chmodSync(join(b.rootfs, ".."), 0o755); // (root of the user namespace walks to the rootfs)
      const spec: ContainerSpec = {
        name: b.name("userns"),
        rootfs: b.rootfs,
        namespaces: ["mount", "uts", "ipc", "pid", "user"],
        idMap: { uid: { inside: 0, outside: 450000, size: 65536 } },
        networkEtc: false,
        user: { uid: 1000, gid: 1000 },
        command: ["sh", "-c", "tty; id -u; stat -c %u /dev/pts/0; stty size"],
      };
      await onPath(value, async () => {
        {
          await using c = await Container.create(spec, { tty: { rows: 5, columns: 6 } });
          await c.start();
          assertEquals((await c.wait()).code, 0);
          assertEquals((await readAll(c.terminal!)).split("\r\n").slice(0, 4), ["/dev/pts/0", "1000", "1000", "5 6"]);
        }
        await using d = await Container.create({
          ...spec,
          name: b.name("userns"),
          command: ["sleep", "30"],
          stdio: "null",
        });
        await d.start();
        let master = -1;
        try {
          const st = await execIn(d.pid, {
            argv: ["sh", "-c", "tty; id -u; stat -c %u /dev/pts/0"],
            spec: d.spec,
            tty: true,
            onTerminal: (m) => master = m,
          });
          assertEquals(st.code, 0);
          assertEquals((await readAll(master)).split("\r\n").slice(0, 3), ["/dev/pts/0", "1000", "1000"]);
          // outside, the slave belongs to the mapped uid
          assertEquals(statSync(`/proc/${d.pid}/root/dev/pts/0`).uid, 451000);
        } finally {
          if (master >= 0) libc().close(master);
        }
      });
    },
    { skip },
  );
}

test("the tty options are checked before anything is touched", async () => {
  using b = box();
  const spec: ContainerSpec = { name: b.name("bad"), rootfs: b.rootfs, command: ["true"] };
  const refused = async (p: Promise<unknown>, path: string) => {
    const e = await p.then(() => undefined, (e) => e);
    assert(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    assertEquals((e as ConfigError).path, path, (e as Error).message);
  };
  await refused(Container.create(spec, { tty: true, stdio: { stdout: 1 } }), "tty");
  await refused(Container.create(spec, { tty: { rows: 0, columns: 80 } }), "tty.rows");
  await refused(Container.create({ ...spec, standardMounts: false }, { tty: true }), "tty");
  await refused(execIn(process.pid, { argv: ["true"], tty: true }), "onTerminal");
  await refused(execIn(process.pid, { argv: ["true"], tty: true, onTerminal: () => {}, stdout: 1 }), "stdout");
  assertEquals(new StateStore().tryRead(spec.name), undefined);
}, { skip });

test(
  "a terminal that cannot be made names the console step: execIn with tty in a container without a devpts of its own",
  async () => {
    using b = box();
    for (const [, value] of PATHS) {
      await onPath(value, async () => {
        await using c = await Container.create({
          name: b.name("nodevpts"),
          rootfs: b.rootfs,
          standardMounts: false,
          command: ["sleep", "30"],
          stdio: "null",
        });
        await c.start();
        let got = -1;
        const e = await execIn(c.pid, { argv: ["true"], spec: c.spec, tty: true, onTerminal: (m) => got = m })
          .then(() => undefined, (e) => e as Error);
        assertEquals(got, -1);
        assertEquals(e?.name, "SetupError");
        assert(
          /^console: open\("\/dev\/pts\/ptmx", O_RDWR\|O_NOCTTY\|O_CLOEXEC\): ENOENT/.test(e!.message),
          e!.message,
        );
      });
    }
  },
  { skip },
);

test("a resize of the master reaches the command as SIGWINCH and the new size", async () => {
  using b = box();
  await using c = await Container.create({
    name: b.name("winch"),
    rootfs: b.rootfs,
    command: ["sh", "-c", "trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done"],
  }, { tty: { rows: 24, columns: 80 } });
  await c.start();
  let out = "";
  const { read } = libc();
  const buf = new Uint8Array(4096);
  while (!out.includes("ready")) {
    const n = read(c.terminal!, buf, 4096n);
    assert(n > 0, "output before the resize");
    out += new TextDecoder().decode(buf.subarray(0, n));
  }
  setWindowSize(c.terminal!, { rows: 50, columns: 132 });
  assertEquals((await c.wait()).code, 0);
  out += await readAll(c.terminal!);
  assert(out.includes("50 132"), JSON.stringify(out));
}, { skip });

// ---- the command line, on a terminal of its own ------------------------------------------------

/** The hako command line under this test's runtime: bin/hako (Deno), or Bun running main.ts. */
function hakoCli(): string {
  return runtime === "deno"
    ? `'${join(ROOT, "bin/hako")}'`
    : `'${join(ROOT, "node_modules/.bin/bun")}' '${join(ROOT, "src/cli/main.ts")}'`;
}

/** One step of the person at the terminal (see tests/_pty.py). */
type Step = { expect: string; timeout?: number } | { send: string } | { resize: [number, number] } | {
  sleep: number;
};

/**
 * Runs `script` with bash on a new terminal of `rows`×`columns` (its controlling terminal), plays
 * `steps` on it, and returns what the terminal showed (escape sequences removed) and bash's status.
 */
function onTerminal(
  script: string,
  steps: Step[] = [],
  options: { rows?: number; columns?: number; env?: Record<string, string>; timeoutS?: number } = {},
): { output: string; status: number | null; timedOut: string | null } {
  const env: Record<string, string> = { ...process.env as Record<string, string>, NO_COLOR: "1", ...options.env };
  delete env.HAKO_LOADER;
  const timeout = options.timeoutS ?? 90;
  const r = spawnSync(
    "python3",
    [
      PTY,
      String(options.rows ?? 30),
      String(options.columns ?? 90),
      JSON.stringify(steps),
      String(timeout),
      "--",
      "bash",
      "-c",
      script,
    ],
    { env, encoding: "utf8", timeout: (timeout + 30) * 1000 },
  );
  if (r.error) throw r.error;
  assertEquals(r.status, 0, `tests/_pty.py failed: ${r.stderr}`);
  const res = JSON.parse(r.stdout) as { output: string; status: number | null; timedOut: string | null };
  // deno-lint-ignore no-control-regex
  return { ...res, output: res.output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "") };
}

/** The terminal's output as lines, without their carriage returns. */
const lines = (output: string) => output.split(/\r?\n/).map((l) => l.replace(/\r+$/, ""));

/** Bash that prints the caller's terminal settings before and after `command`, and its status. */
const framed = (command: string) =>
  `before=$(stty -g); ${command}; st=$?; after=$(stty -g); echo "STATUS $st"; ` +
  `[ "$before" = "$after" ] && echo SETTINGS-RESTORED || echo "SETTINGS-CHANGED $before -> $after"`;

for (const [path, value] of PATHS) {
  test(
    `hako run -it (${path}): the command's terminal is the container's /dev/pts/0, sized as the caller's, resized with it; keys reach it; the caller's settings come back`,
    () => {
      using b = box();
      const inner = script(
        b.rootfs,
        "run.sh",
        [
          "tty; readlink /proc/self/fd/0; stty size; echo READY",
          'read line; echo "GOT[$line]"',
          "trap 'stty size; echo RESIZED' WINCH; read more; exit 7",
        ].join("\n"),
      );
      const r = onTerminal(
        framed(`${hakoCli()} run -it --rootfs '${b.rootfs}' --name ${b.name("run")} -- sh ${inner}`),
        [
          { expect: "READY" },
          { send: "hello hako\r" },
          { expect: "GOT[" },
          { resize: [41, 101] },
          { expect: "RESIZED" },
          { send: "bye\r" },
        ],
        { rows: 31, columns: 91, env: { HAKO_NATIVE_SPAWN: value } },
      );
      assertEquals(r.timedOut, null, r.output);
      const out = lines(r.output);
      const at = out.indexOf("/dev/pts/0");
      assert(at >= 0, r.output);
      assertEquals(out.slice(at, at + 4), ["/dev/pts/0", "/dev/pts/0", "31 91", "READY"], r.output);
      assert(out.includes("GOT[hello hako]"), r.output);
      assert(out.includes("41 101"), r.output);
      assert(out.includes("STATUS 7"), r.output);
      assert(out.includes("SETTINGS-RESTORED"), r.output);
    },
    { skip: skipCli },
  );
}

test(
  "hako run -t spec.ts without -i: a terminal, its output relayed, but no input: the keys stay with the caller",
  () => {
    using b = box();
    const spec = join(b.rootfs, "..", "spec.ts");
    const inner = script(
      b.rootfs,
      "noinput.sh",
      'tty; echo READY; if read -t 3 l; then echo "GOT[$l]"; else echo NO-INPUT; fi',
    );
    writeFileSync(
      spec,
      `export default { name: ${JSON.stringify(b.name("spec"))}, rootfs: ${
        JSON.stringify(b.rootfs)
      }, command: ["sh", "${inner}"] };\n`,
    );
    const r = onTerminal(
      framed(`${hakoCli()} run -t '${spec}'; read -t 2 -r x; echo "CALLER[$x]"`),
      [{ expect: "READY" }, { send: "typed\r" }],
    );
    assertEquals(r.timedOut, null, r.output);
    const out = lines(r.output);
    assert(out.includes("/dev/pts/0") && out.includes("NO-INPUT"), r.output);
    assert(out.includes("CALLER[typed]"), r.output);
    assert(out.includes("SETTINGS-RESTORED"), r.output);
  },
  { skip: skipCli },
);

test("the caller's terminal settings come back when the command cannot run, and when hako is sent SIGTERM", () => {
  using b = box();
  const missing = onTerminal(framed(`${hakoCli()} run -it --rootfs '${b.rootfs}' -- /no/such/command`));
  assertEquals(missing.timedOut, null, missing.output);
  assert(/ENOENT/.test(missing.output), missing.output);
  assert(lines(missing.output).includes("STATUS 127"), missing.output);
  assert(lines(missing.output).includes("SETTINGS-RESTORED"), missing.output);
  // SIGTERM to hako is passed on to the container, whose command ends; hako then restores.
  const term = onTerminal(
    framed(
      `timeout --foreground --preserve-status -s TERM 4 ${hakoCli()} run -it --rootfs '${b.rootfs}' -- sh -c 'trap "echo TERMINATED; exit 9" TERM; echo READY; while :; do sleep 0.1; done'`,
    ),
    [{ expect: "READY" }],
  );
  assertEquals(term.timedOut, null, term.output);
  assert(lines(term.output).includes("TERMINATED"), term.output);
  assert(lines(term.output).includes("STATUS 9"), term.output);
  assert(lines(term.output).includes("SETTINGS-RESTORED"), term.output);
}, { skip: skipCli });

test("hako run -it from a script (stdin a pipe, no terminal at all): no raw mode, input relayed, EOF passed on", () => {
  using b = box();
  const cli = hakoCli().replaceAll("'", "").split(" ");
  const r = spawnSync(cli[0]!, [
    ...cli.slice(1),
    "run",
    "-it",
    "--rootfs",
    b.rootfs,
    "--",
    "sh",
    "-c",
    "cat >/tmp/in; tty; cat /tmp/in",
  ], {
    input: "line one\npartial",
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env as Record<string, string>, NO_COLOR: "1" },
  });
  assertEquals(r.status, 0, r.stderr);
  // (the pty echoes the input as it comes: cooked mode, as a terminal's)
  assert(r.stdout.endsWith("/dev/pts/0\r\nline one\r\npartial"), JSON.stringify(r.stdout));
}, { skip: skipCli });

/** Runs `fn` while a container named `name` runs in the foreground of this process (as `hako run` would). */
async function withRunning(
  b: ReturnType<typeof box>,
  name: string,
  fn: () => void | Promise<void>,
): Promise<void> {
  const { runForeground } = await import("../src/runner/spec_module.ts");
  const running = runForeground({ name, rootfs: b.rootfs, command: ["sleep", "60"], stdio: "null" });
  try {
    const store = new StateStore();
    const until = Date.now() + 20_000;
    while (store.tryRead(name)?.state !== "running") {
      assert(Date.now() < until, `container ${name} never ran`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await fn();
  } finally {
    try {
      killContainer(name, "KILL");
    } catch { /* ended */ }
    await running.catch(() => {});
  }
}

for (const [path, value] of PATHS) {
  test(
    `hako exec -it and hako shell -t (${path}): the container's /dev/pts/0, sized and resized as the caller's terminal; keys reach it; settings restored`,
    async () => {
      using b = box();
      const name = b.name("exec");
      await withRunning(b, name, () => {
        const inner = script(
          b.rootfs,
          "exec.sh",
          "tty; stty size; echo READY; read l; echo \"GOT[$l]\"; trap 'stty size; echo RESIZED' WINCH; read m; exit 0",
        );
        const r = onTerminal(
          framed(`${hakoCli()} exec -it ${name} -- sh ${inner}`),
          [{ expect: "READY" }, { send: "from the caller\r" }, { expect: "GOT[" }, { resize: [44, 104] }, {
            expect: "RESIZED",
          }, { send: "\r" }],
          { rows: 22, columns: 66, env: { HAKO_NATIVE_SPAWN: value } },
        );
        assertEquals(r.timedOut, null, r.output);
        const out = lines(r.output);
        const at = out.indexOf("/dev/pts/0");
        assertEquals(out.slice(at, at + 3), ["/dev/pts/0", "22 66", "READY"], r.output);
        assert(out.includes("GOT[from the caller]") && out.includes("44 104"), r.output);
        assert(out.includes("STATUS 0") && out.includes("SETTINGS-RESTORED"), r.output);

        const a = onTerminal(
          framed(`${hakoCli()} shell -t ${name}`),
          [{ expect: "# " }, { send: "tty; echo $((6 * 7)); exit 3\r" }],
          { env: { HAKO_NATIVE_SPAWN: value } },
        );
        assertEquals(a.timedOut, null, a.output);
        const shown = lines(a.output);
        assert(shown.includes("/dev/pts/0") && shown.includes("42"), a.output);
        assert(shown.includes("STATUS 3") && shown.includes("SETTINGS-RESTORED"), a.output);
      });
    },
    { skip: skipCli },
  );
}

test("dist/hako (Bun compiled) relays a terminal too: run -it and shell -t", async () => {
  using b = box();
  const out = join(b.rootfs, "..", "hako");
  const built = spawnSync("bash", [join(ROOT, "tools/build.sh")], {
    env: { ...process.env as Record<string, string>, HAKO_OUT: out },
    encoding: "utf8",
    timeout: 300_000,
  });
  assertEquals(built.status, 0, `tools/build.sh: ${built.stdout}${built.stderr}`);
  const inner = script(b.rootfs, "dist.sh", 'tty; stty size; echo READY; read l; echo "GOT[$l]"');
  const r = onTerminal(framed(`'${out}' run -it --rootfs '${b.rootfs}' -- sh ${inner}`), [
    { expect: "READY" },
    { send: "compiled\r" },
  ], { rows: 25, columns: 85 });
  assertEquals(r.timedOut, null, r.output);
  const shown = lines(r.output);
  const at = shown.indexOf("/dev/pts/0");
  assertEquals(shown.slice(at, at + 3), ["/dev/pts/0", "25 85", "READY"], r.output);
  assert(shown.includes("GOT[compiled]") && shown.includes("SETTINGS-RESTORED"), r.output);
  const name = b.name("dist");
  await withRunning(b, name, () => {
    const a = onTerminal(framed(`'${out}' shell -t ${name}`), [{ expect: "# " }, { send: "tty; exit 3\r" }]);
    assertEquals(a.timedOut, null, a.output);
    assert(lines(a.output).includes("/dev/pts/0") && lines(a.output).includes("STATUS 3"), a.output);
    assert(lines(a.output).includes("SETTINGS-RESTORED"), a.output);
  });
}, {
  skip: skipCli ||
    (works(join(ROOT, "node_modules/.bin/bun"), ["--version"]) ? false : "needs Bun (npm ci) to build dist/hako"),
});

// ---- the TIOCSTI attack (CVE-2017-5226) ----------------------------------------------------------

/**
 * Bash that runs `command` (which pushes `#` into every terminal on its stdio with TIOCSTI), then
 * reads what the caller's terminal holds for the caller's shell: `CALLER-INPUT[]` when nothing
 * was pushed into it.
 */
const caller = (command: string) => `${command}; echo "STATUS $?"; read -t 1 -r -n 64 x; echo "CALLER-INPUT[$x]"`;

test(
  "the TIOCSTI check sees an injection: a process whose controlling terminal is the caller's pushes into the caller's input",
  () => {
    using b = box(true);
    const r = onTerminal(caller(`'${join(b.rootfs, "probe")}' tiocsti`));
    assert(lines(r.output).includes("CALLER-INPUT[#]"), r.output);
  },
  { skip: skipProbe },
);

for (const [path, value] of PATHS) {
  test(
    `TIOCSTI and TIOCLINUX from a container (${path}) — run without -t, with -t, with -it, and exec'd without and with -t — never reach the caller's terminal`,
    async () => {
      using b = box(true);
      const env = { HAKO_NATIVE_SPAWN: value };
      const attempts: Array<[string, string]> = [];
      for (const flags of ["", "-t", "-it"]) {
        attempts.push([`run ${flags}`, `${hakoCli()} run ${flags} --rootfs '${b.rootfs}' -- /probe`]);
      }
      const name = b.name("attack");
      await withRunning(b, name, () => {
        for (const flags of ["", "-t", "-it"]) {
          attempts.push([`exec ${flags}`, `${hakoCli()} exec ${flags} ${name} -- /probe`]);
        }
        for (const [what, command] of attempts) {
          const r = onTerminal(caller(`${command} tiocsti; ${command} tioclinux`), [], { env });
          assertEquals(r.timedOut, null, `${what}: ${JSON.stringify(r.output)}`);
          const out = lines(r.output);
          assert(out.includes("CALLER-INPUT[]"), `${what}: the caller's shell received input:\n${r.output}`);
          if (/-i?t\b/.test(what)) {
            // With a terminal of its own the push lands there: the command's own pty echoes it.
            assert(out.some((l) => l.startsWith("#ESCAPED: TIOCSTI")), `${what}: ${JSON.stringify(r.output)}`);
          } else {
            // Without one, stdio is the caller's terminal, which is not its controlling terminal.
            assert(out.includes("fd 0: TIOCSTI: Operation not permitted"), `${what}: ${JSON.stringify(r.output)}`);
          }
          assert(
            out.includes("blocked: TIOCLINUX: Inappropriate ioctl for device"),
            `${what}: ${JSON.stringify(r.output)}`,
          );
        }
      });
    },
    { skip: skipProbe },
  );
}

test(
  "a native program may store a result into its data and pass it on from there (how the master's fd reaches the control message)",
  () => {
    const { pipe2, read, close, waitpid } = libc();
    const fds = new Int32Array(2);
    pipe2(new Uint8Array(fds.buffer), 0o2000000);
    const [r, w] = [fds[0]!, fds[1]!];
    const p = new SyscallProgram();
    const data = p.bytes(new Uint8Array(24));
    const at = p.at(data, 16);
    // (the child's own fd table: any number but w itself, which dup3 refuses with EINVAL)
    const target = w === 77 ? 78 : 77;
    p.call("dup3", [w, target, 0], { store: at, expect: target });
    p.call("write", [p.value(at), p.bytes(new TextEncoder().encode("stored")), 6], { expect: 6 });
    p.call("exit_group", [0]);
    const built = p.build();
    built.reportTo(w);
    const pid = spawnProgram(built, 0);
    close(w);
    const buf = new Uint8Array(64);
    const n = read(r, buf, 64n);
    close(r);
    const st = new Int32Array(1);
    waitpid(pid, new Uint8Array(st.buffer), 0);
    assertEquals([new TextDecoder().decode(buf.subarray(0, Math.max(n, 0))), st[0]], ["stored", 0]);
    // A u64 must fit in its data.
    const q = new SyscallProgram();
    q.call("close", [q.value(q.at(q.bytes(new Uint8Array(8)), 4))]);
    let err: unknown;
    try {
      q.build();
    } catch (e) {
      err = e;
    }
    assert(err instanceof RangeError, String(err));
  },
  { skip: skip || (process.arch !== "x64" && "the native runner is x86-64 only") },
);

// ---- argument parsing --------------------------------------------------------------------------

test("-t and -i parse for run, exec and shell, grouped as -it too", () => {
  const spec = { tty: { type: "boolean", short: "t" }, interactive: { type: "boolean", short: "i" } } as const;
  assertEquals(parseArgs(["-it", "x"], spec).values, { interactive: true, tty: true });
  assertEquals(parseRunArgs(["-it", "--rootfs", "/r", "sh"]), {
    help: false,
    args: [],
    tty: true,
    interactive: true,
    quick: { rootfs: "/r", command: ["sh"] },
  });
  assertEquals(parseRunArgs(["-t", "web.ts", "-i"]), { help: false, tty: true, script: "web.ts", args: ["-i"] });
  assertEquals(parseExecArgs(["-ti", "web", "--", "sh"]), {
    help: false,
    name: "web",
    argv: ["sh"],
    tty: true,
    interactive: true,
  });
  assertEquals(parseShellArgs(["-t", "web"]), { help: false, name: "web", shell: "/bin/sh", tty: true });
  let err: unknown;
  try {
    parseRunArgs(["-t", "-e", "1"]);
  } catch (e) {
    err = e;
  }
  assert(err instanceof Error && /not -e/.test(err.message), String(err));
});
