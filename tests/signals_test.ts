/**
 * Signals a user at a shell expects of `hako run`, and `--init`: through the command line under
 * this test's runtime (bin/hako under Deno, Bun running src/cli/main.ts under Bun), on the native
 * child and the forked one (`HAKO_NATIVE_SPAWN=0`).
 *
 * - Every forwarded signal (TERM, INT, QUIT, HUP, USR1, USR2, WINCH) reaches a command that traps
 *   it, from a spec module and from `--rootfs`.
 * - A command without handlers is PID 1 of its PID namespace, which the kernel gives only the
 *   signals it handles: TERM or INT, then SIGKILL after `--stop-timeout`; a second INT kills at
 *   once; exit codes are a shell's (the command's code, 128+N when a signal ended it).
 * - Ctrl-C (SIGINT to hako's process group, as a terminal sends it) at random moments of a run
 *   leaves no record, state directory, cgroup or process behind.
 * - `--init` (a static tini bound at /dev/init as PID 1): `hako stop` ends a command without a
 *   TERM handler with SIGTERM, not SIGKILL; orphans are reaped; `sh -c 'kill -9 $$'` gives 137.
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { strict as assert } from "node:assert";
import { isRoot, runtime, tempDir, test } from "./_harness.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { existingCgroupDirs } from "../src/container/_cgroup.ts";
import { Container } from "../src/container/container.ts";
import { nativeChildren } from "../src/container/native.ts";
import { findInit, INIT_CANDIDATES, initArgv } from "../src/container/_init.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";
import { parseRunArgs } from "../src/cli/run.ts";
import { parseStartArgs } from "../src/cli/start.ts";
import { UsageError } from "../src/cli/_args.ts";
import {
  ForegroundSignals,
  FORWARDED_SIGNALS,
  type ForwardedSignal,
  signalExitCode,
  type SignalHost,
} from "../src/runner/_signals.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PATHS = [["native", "1"], ["forked", "0"]] as const;

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : !findStaticBusybox()
  ? "needs a static busybox (apt-get install busybox-static)"
  : false;
const initFound = findInit({});
const skipInit = skip || (initFound.problem !== undefined ? `--init ${initFound.problem}` : false);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The hako command line under this test's runtime. */
function cli(): [string, string[]] {
  return runtime === "deno"
    ? [join(ROOT, "bin/hako"), []]
    : [join(ROOT, "node_modules/.bin/bun"), [join(ROOT, "src/cli/main.ts")]];
}

/** A `hako` running in the background, in a process group of its own (as a shell's job). */
interface Job {
  readonly pid: number;
  /** What it wrote so far. */
  out(): string;
  err(): string;
  /** Sends `sig` to hako, or (`group`) to its whole process group, as a terminal's Ctrl-C does. */
  signal(sig: NodeJS.Signals, group?: boolean): void;
  /** Waits until its stdout holds `text`; fails early when it ended first. */
  waitFor(text: string, ms?: number): Promise<void>;
  /** How it ended, and how long after the start. */
  readonly exit: Promise<{ code: number | null; signal: string | null; ms: number }>;
}

/** A state directory, a busybox rootfs and spec modules, for one path; everything goes at dispose. */
function lab(path: string) {
  const dir = tempDir("hako-test-sig-");
  chmodSync(dir.path, 0o755);
  const state = join(dir.path, "state");
  const rootfs = join(dir.path, "rootfs");
  buildRootfs(rootfs, { builder: "busybox" });
  const tag = Math.random().toString(16).slice(2, 8);
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    HAKO_STATE_DIR: state,
    HAKO_NATIVE_SPAWN: path,
    NO_COLOR: "1",
  };
  delete env.HAKO_LOADER;
  delete env.HAKO_INIT_PATH;
  const jobs: ChildProcess[] = [];
  let n = 0;
  const name = (what: string) => `hako-test-sig-${what}-${tag}-${n++}`;
  /** Writes a spec module running `command` under sh, with a cgroup; @returns its path and name. */
  const spec = (what: string, command: string, extra = ""): { file: string; name: string } => {
    const nm = name(what);
    const file = join(dir.path, `${nm}.ts`);
    writeFileSync(
      file,
      `export default {
  name: ${JSON.stringify(nm)},
  rootfs: ${JSON.stringify(rootfs)},
  command: ["sh", "-c", ${JSON.stringify(command)}],
  cgroup: { pids: { max: 64 } },
  ${extra}
};\n`,
    );
    return { file, name: nm };
  };
  const [cmd, pre] = cli();
  const hako = (...args: string[]) => {
    const r = spawnSync(cmd, [...pre, ...args], { env, encoding: "utf8", timeout: 60_000 });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const start = (...args: string[]): Job => {
    const began = Date.now();
    // setsid(1) execs hako as the leader of a new session and process group (same pid).
    const p = spawn("setsid", [cmd, ...pre, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    jobs.push(p);
    let out = "", err = "", ended = false;
    p.stdout!.on("data", (d) => out += d);
    p.stderr!.on("data", (d) => err += d);
    const exit = new Promise<{ code: number | null; signal: string | null; ms: number }>((resolve) =>
      p.on("close", (code, signal) => {
        ended = true;
        resolve({ code, signal, ms: Date.now() - began });
      })
    );
    return {
      pid: p.pid!,
      out: () => out,
      err: () => err,
      signal(sig, group = false) {
        process.kill(group ? -p.pid! : p.pid!, sig);
      },
      async waitFor(text, ms = 30_000) {
        const until = Date.now() + ms;
        while (!out.includes(text)) {
          if (ended) throw new Error(`hako ended before printing ${text}: stdout ${out} stderr ${err}`);
          if (Date.now() > until) throw new Error(`no ${text} in ${ms} ms: stdout ${out} stderr ${err}`);
          await sleep(10);
        }
      },
      exit,
    };
  };
  const ps = (): Array<{ name: string; state: string; pid: number | null; exit?: { shellCode: number } | null }> =>
    JSON.parse(hako("ps", "-a", "--json").stdout || "[]");
  const supervisorPid = (): number | undefined => {
    try {
      return Number(readFileSync(join(state, "supervisor.pid"), "utf8").split(" ")[0]);
    } catch {
      return undefined;
    }
  };
  return {
    dir: dir.path,
    state,
    rootfs,
    env,
    name,
    spec,
    hako,
    start,
    ps,
    /** The names of the containers with a directory in the state directory. */
    records: (): string[] => existsSync(join(state, "containers")) ? readdirSync(join(state, "containers")) : [],
    [Symbol.dispose]() {
      for (const p of jobs) {
        if (p.exitCode === null && p.signalCode === null) {
          try {
            process.kill(-p.pid!, "SIGKILL");
          } catch { /* gone */ }
        }
      }
      try {
        for (const c of ps()) hako("delete", "--force", c.name);
        hako("gc");
      } catch { /* the directory goes anyway */ }
      const sup = supervisorPid();
      if (sup) {
        try {
          process.kill(sup, "SIGKILL");
        } catch { /* gone */ }
      }
      dir[Symbol.dispose]();
    },
  };
}

/** A shell command that traps each forwarded signal, says READY, and exits 42 at WINCH (the last one sent). */
const TRAP_ALL = [
  ...["TERM", "INT", "QUIT", "HUP", "USR1", "USR2"].map((s) => `trap 'echo got ${s}' ${s}`),
  "trap 'echo got WINCH; exit 42' WINCH",
  "echo READY",
  "while :; do sleep 0.05; done",
].join("; ");

/** Host pids of the zombies whose parent is `pid`. */
function zombieChildren(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let status: string;
    try {
      status = readFileSync(`/proc/${e}/status`, "utf8");
    } catch {
      continue;
    }
    if (/^State:\s+Z/m.test(status) && new RegExp(`^PPid:\\s+${pid}$`, "m").test(status)) out.push(Number(e));
  }
  return out;
}

// ---- pure parts -------------------------------------------------------------------------------

test("hako run's --stop-timeout and --init go with a container; -e refuses them; hako start takes --init", () => {
  assert.deepEqual(parseRunArgs(["--stop-timeout", "2.5", "--init", "web.ts", "x"]), {
    help: false,
    script: "web.ts",
    args: ["x"],
    stopTimeoutMs: 2500,
    init: true,
  });
  const q = parseRunArgs(["--rootfs", "/r", "--init", "--stop-timeout", "0", "--", "sleep", "1"]);
  assert.deepEqual([q.quick?.command, q.init, q.stopTimeoutMs], [["sleep", "1"], true, 0]);
  assert.throws(() => parseRunArgs(["--stop-timeout", "soon", "x.ts"]), UsageError);
  assert.throws(() => parseRunArgs(["--init", "-e", "1"]), UsageError);
  assert.equal(parseStartArgs(["--init", "a.ts"]).init, true);
  assert.equal(parseStartArgs(["a.ts"]).init, undefined);
});

/** A host double for {@link ForegroundSignals}: listeners by signal, one timer, notes. */
function fakeHost() {
  const listeners = new Map<ForwardedSignal, Set<() => void>>();
  let timer: { fn: () => void; ms: number } | undefined;
  const notes: string[] = [];
  const host: SignalHost = {
    on: (sig, fn) => void (listeners.get(sig) ?? listeners.set(sig, new Set()).get(sig)!).add(fn),
    off: (sig, fn) => void listeners.get(sig)?.delete(fn),
    setTimer: (fn, ms) => (timer = { fn, ms }),
    clearTimer: (t) => void (t === timer && (timer = undefined)),
    note: (text) => void notes.push(text),
  };
  return {
    host,
    notes,
    send: (sig: ForwardedSignal) => [...listeners.get(sig) ?? []].forEach((fn) => fn()),
    listening: () => [...listeners].filter(([, s]) => s.size > 0).map(([k]) => k),
    timer: () => timer,
    fire: () => {
      const t = timer!;
      timer = undefined;
      t.fn();
    },
  };
}

test("ForegroundSignals: every signal is passed on; TERM or INT starts the stop timeout, then KILL; a second INT kills at once", () => {
  const h = fakeHost();
  const sent: string[] = [];
  const s = new ForegroundSignals({ host: h.host, stopTimeoutMs: 3000, name: "web" }).listen();
  assert.deepEqual(h.listening().sort(), [...FORWARDED_SIGNALS].sort());
  s.attach({ kill: (sig) => void sent.push(sig) });
  for (const sig of ["SIGUSR1", "SIGUSR2", "SIGHUP", "SIGQUIT", "SIGWINCH"] as const) h.send(sig);
  assert.deepEqual(sent, ["SIGUSR1", "SIGUSR2", "SIGHUP", "SIGQUIT", "SIGWINCH"]);
  assert.equal(h.timer(), undefined, "only TERM and INT start the stop timeout");
  h.send("SIGTERM");
  assert.equal(h.timer()?.ms, 3000);
  h.send("SIGTERM"); // passed on again; the timeout runs from the first
  h.fire();
  assert.deepEqual(sent.slice(5), ["SIGTERM", "SIGTERM", "SIGKILL"]);
  assert.equal(s.killed, true);
  assert.match(h.notes[0]!, /container web: SIGKILL after SIGTERM and 3 s/);
  s.close();
  assert.deepEqual(h.listening(), []);

  const h2 = fakeHost();
  const sent2: string[] = [];
  const s2 = new ForegroundSignals({ host: h2.host }).listen();
  s2.attach({ kill: (sig) => void sent2.push(sig) });
  h2.send("SIGINT");
  assert.equal(h2.timer()?.ms, 10_000, "hako stop's default");
  h2.send("SIGINT");
  assert.deepEqual(sent2, ["SIGINT", "SIGKILL"]);
  assert.equal(h2.timer(), undefined, "the timeout is cancelled once killed");
  s2.close();
});

test("ForegroundSignals: before the container runs a stop signal is remembered, not sent; with -t WINCH is the relay's", () => {
  const h = fakeHost();
  const sent: string[] = [];
  const s = new ForegroundSignals({ host: h.host, tty: true }).listen();
  h.send("SIGUSR1");
  assert.equal(s.stopping, undefined, "USR1 does not stop a run");
  h.send("SIGHUP");
  h.send("SIGINT");
  assert.equal(s.stopping, "SIGHUP");
  assert.equal(signalExitCode(s.stopping!), 129);
  s.attach({
    kill: (sig) => {
      sent.push(sig);
      throw new Error("ESRCH: it has just ended");
    },
  });
  h.send("SIGWINCH");
  h.send("SIGTERM"); // a target that has just ended: no error comes out of the listener
  assert.deepEqual(sent, ["SIGTERM"]);
  s.close();
  h.send("SIGTERM");
  assert.deepEqual(sent, ["SIGTERM"], "nothing after close");
  assert.deepEqual([signalExitCode("SIGTERM"), signalExitCode("SIGINT"), signalExitCode("SIGQUIT")], [143, 130, 131]);
});

test("init: runs the command under /dev/init (-s without a PID namespace); a bad value, no /dev of its own or no init are spec errors", () => {
  assert.deepEqual(initArgv(["sh", "-c", "x"], true), ["/dev/init", "--", "sh", "-c", "x"]);
  assert.deepEqual(initArgv(["sleep", "1"], false), ["/dev/init", "-s", "--", "sleep", "1"]);
  const base = { name: "init-spec", rootfs: "/tmp/nowhere", command: ["sleep", "1"] };
  const problems = (spec: object) => {
    try {
      resolveSpec(spec as never);
      return [];
    } catch (e) {
      assert.ok(e instanceof SpecError, String(e));
      return e.problems.filter((p) => p.path === "init").map((p) => p.message);
    }
  };
  assert.match(problems({ ...base, init: "yes" })[0] ?? "", /must be true or false/);
  assert.match(problems({ ...base, init: true, standardMounts: false })[0] ?? "", /needs a mount namespace/);
  const before = process.env.HAKO_INIT_PATH;
  try {
    process.env.HAKO_INIT_PATH = "/no/such/tini";
    assert.match(problems({ ...base, init: true })[0] ?? "", /no such file.*apt-get install tini/);
    process.env.HAKO_INIT_PATH = "/bin/sh"; // dynamically linked
    assert.match(problems({ ...base, init: true })[0] ?? "", /dynamically linked/);
  } finally {
    if (before === undefined) delete process.env.HAKO_INIT_PATH;
    else process.env.HAKO_INIT_PATH = before;
  }
  assert.equal(findInit({ HAKO_INIT_PATH: "relative/tini" }).problem?.includes("absolute"), true);
  if (initFound.path) {
    const r = resolveSpec({ ...base, init: true } as never);
    assert.deepEqual([r.init, r.argv], [initFound.path, ["/dev/init", "--", "sleep", "1"]]);
  } else {
    assert.match(problems({ ...base, init: true })[0] ?? "", new RegExp(`${INIT_CANDIDATES[0]}.*apt-get install tini`));
  }
});

// ---- the command line, against the kernel ------------------------------------------------------

for (const [pathName, path] of PATHS) {
  test(
    `hako run (spec module and --rootfs, ${pathName}): TERM, INT, QUIT, HUP, USR1, USR2 and WINCH each reach a command that traps them`,
    async () => {
      using l = lab(path);
      const { file } = l.spec("trap", TRAP_ALL);
      for (const args of [[file], ["--rootfs", l.rootfs, "--name", l.name("trapq"), "--", "sh", "-c", TRAP_ALL]]) {
        const job = l.start("run", "--stop-timeout", "60", ...args);
        await job.waitFor("READY");
        for (const sig of ["TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "WINCH"]) {
          job.signal(`SIG${sig}` as NodeJS.Signals);
          await job.waitFor(`got ${sig}`);
        }
        const end = await job.exit;
        assert.equal(end.code, 42, `${args[0]}: ${job.out()} ${job.err()}`);
      }
      assert.deepEqual(l.records(), [], "the foreground records are gone");
    },
    { skip },
  );

  test(
    `hako run (${pathName}): a command without handlers (PID 1 ignores TERM and INT) gets SIGKILL after --stop-timeout; a second INT kills at once`,
    async () => {
      using l = lab(path);
      const { file, name } = l.spec("nohandler", "echo READY; exec sleep 1000");
      for (const sig of ["SIGTERM", "SIGINT"] as const) {
        const job = l.start("run", "--stop-timeout", "1.5", file);
        await job.waitFor("READY");
        const sent = Date.now();
        job.signal(sig);
        const end = await job.exit;
        const after = Date.now() - sent;
        assert.equal(end.code, 137, `${sig}: ${job.err()}`);
        assert.ok(after >= 1400 && after < 10_000, `${sig}: killed ${after} ms after it, not at the timeout`);
        assert.match(job.err(), /SIGKILL after/);
      }
      const job = l.start("run", "--stop-timeout", "60", file);
      await job.waitFor("READY");
      job.signal("SIGINT");
      await sleep(300);
      const sent = Date.now();
      job.signal("SIGINT");
      const end = await job.exit;
      assert.equal(end.code, 137, job.err());
      assert.ok(Date.now() - sent < 5000, `the second INT killed it at once (${Date.now() - sent} ms)`);
      assert.deepEqual(l.records(), []);
      assert.deepEqual(existingCgroupDirs(`hako/${name}`), [], "its cgroup is gone");
    },
    { skip },
  );

  test(`hako run (${pathName}): exit codes as a shell's: the command's own, 128+N when a signal ends it`, async () => {
    using l = lab(path);
    // A trap that exits: its code.
    const trapped = l.spec("exit9", "trap 'exit 9' TERM; echo READY; while :; do sleep 0.05; done");
    const a = l.start("run", trapped.file);
    await a.waitFor("READY");
    a.signal("SIGTERM");
    assert.equal((await a.exit).code, 9, a.err());
    // Without a PID namespace of its own the command is not PID 1: TERM ends it, 143.
    const plain = l.spec(
      "nopidns",
      "echo READY; exec sleep 1000",
      `namespaces: ["mount", "uts", "ipc", "net"],`,
    );
    const b = l.start("run", plain.file);
    await b.waitFor("READY");
    b.signal("SIGTERM");
    const end = await b.exit;
    assert.equal(end.code, 143, b.err());
    assert.ok(end.ms < 10_000);
    // A QUIT the command does not trap, outside PID 1: 131.
    const c = l.start("run", plain.file);
    await c.waitFor("READY");
    c.signal("SIGQUIT");
    assert.equal((await c.exit).code, 131, c.err());
    assert.deepEqual(l.records(), []);
  }, { skip });

  test(
    `hako run (${pathName}): Ctrl-C at random moments leaves no record, state directory, cgroup or process behind`,
    async () => {
      using l = lab(path);
      const { file, name } = l.spec("ctrlc", "echo READY; sleep 0.3");
      // How long one run takes, to spread the Ctrl-Cs over all of it (start-up, create, start, run, end).
      const first = l.start("run", "--stop-timeout", "0.2", file);
      const whole = (await first.exit).ms;
      assert.equal((await first.exit).code, 0, first.err());
      const codes: Record<string, number> = {};
      const runs = 24;
      for (let i = 0; i < runs; i++) {
        const job = l.start("run", "--stop-timeout", "0.2", file);
        await sleep(Math.random() * whole * 1.1);
        try {
          job.signal("SIGINT", true);
        } catch { /* it ended already */ }
        const end = await job.exit;
        const how = end.signal ?? String(end.code);
        codes[how] = (codes[how] ?? 0) + 1;
        // 130: ended by the Ctrl-C (hako's default action before it listens, or a stop before the
        // command ran); 137: killed at the stop timeout; 0: it ended first.
        assert.ok(["0", "130", "137", "SIGINT"].includes(how), `run ${i}: ${how}: ${job.err()}`);
        assert.deepEqual(l.records(), [], `run ${i} (${how}) left a record: ${job.err()}`);
        assert.deepEqual(existingCgroupDirs(`hako/${name}`), [], `run ${i} (${how}) left its cgroup`);
      }
      console.log(`Ctrl-C at random moments (${pathName}, ${runtime}): outcomes ${JSON.stringify(codes)}`);
      assert.ok(
        (codes["130"] ?? 0) + (codes.SIGINT ?? 0) > 0,
        `some Ctrl-C came before the end: ${JSON.stringify(codes)}`,
      );
    },
    { skip },
  );

  test(
    `hako run --init (${pathName}): PID 1 is /dev/init, read-only; the command gets TERM (143 at once); kill -9 of itself gives 137`,
    async () => {
      using l = lab(path);
      const tini = readFileSync(initFound.path!);
      const probe = l.hako(
        "run",
        "--init",
        "--rootfs",
        l.rootfs,
        "--",
        "sh",
        "-c",
        `tr '\\0' ' ' </proc/1/cmdline; echo; awk '$5 == "/dev/init" { print "MOUNT " $6 }' /proc/self/mountinfo; ` +
          `echo x >>/dev/init && echo WROTE || echo REFUSED`,
      );
      assert.equal(probe.code, 0, probe.stderr);
      assert.match(probe.stdout, /^\/dev\/init -- sh -c /);
      // Read-only: the container's root (CAP_DAC_OVERRIDE) must not write the host's binary, even
      // once the init is no longer running (while it runs, the write is ETXTBSY anyway).
      assert.match(probe.stdout, /^MOUNT ro,/m);
      assert.match(probe.stdout, /REFUSED/);
      assert.ok(readFileSync(initFound.path!).equals(tini), "the host's init is unchanged");
      // kill -9 of the command's own shell: the init reports it as a shell would.
      const k = l.hako("run", "--init", "--rootfs", l.rootfs, "--", "sh", "-c", "kill -9 $$");
      assert.equal(k.code, 137, k.stderr);
      // No TERM handler: the command is not PID 1, so TERM ends it at once.
      const { file } = l.spec("initterm", "echo READY; exec sleep 1000");
      const job = l.start("run", "--init", "--stop-timeout", "30", file);
      await job.waitFor("READY");
      job.signal("SIGTERM");
      const end = await job.exit;
      assert.equal(end.code, 143, job.err());
      assert.doesNotMatch(job.err(), /SIGKILL/);
      assert.deepEqual(l.records(), []);
    },
    { skip: skipInit },
  );

  test(
    `hako start --init (${pathName}): hako stop ends a command without a TERM handler with TERM, not KILL; orphans are reaped (without --init they stay zombies)`,
    async () => {
      using l = lab(path);
      // The inner shell leaves a sleep that ends 0.1 s later; PID 1 (or the command) never waits for it.
      const orphan = `sh -c 'sleep 0.1 &'; exec sleep 1000`;
      const plain = l.spec("zombie", orphan);
      const withInit = l.spec("reaped", orphan);
      const s1 = l.hako("start", plain.file);
      const s2 = l.hako("start", "--init", withInit.file);
      assert.deepEqual([s1.code, s2.code], [0, 0], s1.stderr + s2.stderr);
      const pidOf = (name: string) => l.ps().find((c) => c.name === name)?.pid ?? 0;
      const until = Date.now() + 10_000;
      while (zombieChildren(pidOf(plain.name)).length === 0 && Date.now() < until) await sleep(50);
      assert.equal(zombieChildren(pidOf(plain.name)).length, 1, "without --init the orphan stays a zombie");
      await sleep(300);
      const init = pidOf(withInit.name);
      assert.equal(readFileSync(`/proc/${init}/cmdline`, "utf8").split("\0")[0], "/dev/init");
      assert.deepEqual(zombieChildren(init), [], "the init reaped it");
      const began = Date.now();
      const stop = l.hako("stop", "--timeout", "20", withInit.name);
      assert.equal(stop.stdout, `${withInit.name} terminated by hako's SIGTERM (exit 143)\n`, stop.stderr);
      assert.ok(Date.now() - began < 10_000);
      const stopped = l.ps().find((c) => c.name === withInit.name);
      assert.deepEqual([stopped?.state, stopped?.exit?.shellCode], ["exited", 143]);
      const killed = l.hako("stop", "--timeout", "0.5", plain.name);
      assert.match(
        killed.stdout,
        new RegExp(`^${plain.name} killed by hako's SIGKILL, [0-9.]+ s after its SIGTERM \\(exit 137\\)\n$`),
        "without --init: only the KILL ends it",
      );
      for (const n of [plain.name, withInit.name]) assert.equal(l.hako("delete", n).code, 0);
      assert.deepEqual(existingCgroupDirs(`hako/${withInit.name}`), []);
    },
    { skip: skipInit },
  );
}

for (const [pathName, path] of PATHS) {
  test(
    `Container.create({ init: true }) (${pathName}): the init is the container's process, the command its child; TERM ends the command`,
    async () => {
      using l = lab(path);
      const before = process.env.HAKO_NATIVE_SPAWN;
      process.env.HAKO_NATIVE_SPAWN = path;
      const count = nativeChildren.count;
      try {
        const c = await Container.create({
          name: l.name("lib"),
          rootfs: l.rootfs,
          command: ["sleep", "1000"],
          init: true,
          stdio: "null",
        });
        try {
          if (path === "1" && process.arch === "x64") assert.equal(nativeChildren.count - count, 1, "a native child");
          else assert.equal(nativeChildren.count, count, "a forked child");
          await c.start();
          assert.equal(readFileSync(`/proc/${c.pid}/cmdline`, "utf8"), "/dev/init\0--\0sleep\x001000\0");
          // Its one child execs the command (until then it is a copy of the init).
          const child = () => readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, "utf8").trim();
          const command = () => child() === "" ? "" : readFileSync(`/proc/${child()}/cmdline`, "utf8");
          const until = Date.now() + 5000;
          while (command() !== "sleep\x001000\0" && Date.now() < until) await sleep(10);
          assert.equal(command(), "sleep\x001000\0");
          c.kill("TERM");
          assert.deepEqual(await c.wait(), { code: 143, signal: null, shellCode: 143 });
        } finally {
          c.delete();
        }
      } finally {
        if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
        else process.env.HAKO_NATIVE_SPAWN = before;
      }
    },
    { skip: skipInit },
  );
}

test("hako run --init without an init on the host: a spec error naming what to install, nothing made", () => {
  using l = lab("1");
  const r = spawnSync(cli()[0], [...cli()[1], "run", "--init", "--rootfs", l.rootfs, "--", "true"], {
    env: { ...l.env, HAKO_INIT_PATH: "/no/such/tini-static" },
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 125, r.stderr);
  assert.match(r.stderr, /init: HAKO_INIT_PATH=\/no\/such\/tini-static: no such file; .*apt-get install tini/);
  assert.deepEqual(l.records(), []);
}, { skip });
