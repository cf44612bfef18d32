/**
 * `hako run -d -it` / `-d -i` and `hako attach` with stdin and a terminal, as docker's (issue #17):
 * the supervisor holds the container's pty master (or its stdin pipe's write end) and hands a copy
 * to `hako attach` over its socket (SCM_RIGHTS); attach types into it, resizes it, detaches with
 * ctrl-p ctrl-q, and ends with the container's code. End to end through a pty driven by
 * tests/_pty.py (the runner has no terminal), on the native path and the forked one, with the CLI
 * of the runtime that runs the test. Each test has its own state directory, busybox rootfs and
 * uniquely named containers (`at-…`); all of it goes, and the supervisor is killed, even on failure.
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { deepEqual, equal, match } from "node:assert/strict";
import { needsRoot, test } from "./_harness.ts";
import { CLI, cliLab, PATHS, type SpawnPath, until } from "./_cli_lab.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { requestProblem } from "../src/supervisor/supervisor.ts";
import { DetachFilter } from "../src/cli/attach.ts";

const hasPython = spawnSync("python3", ["-c", "import pty"]).status === 0;
const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)") ||
  (!hasPython && "needs python3 (tests/_pty.py drives a terminal)");

/** A state directory and a busybox rootfs; deletes its containers and kills its supervisor on dispose. */
function lab(path: SpawnPath, extraEnv: Record<string, string> = {}) {
  return cliLab(path, { tag: "at", prefix: "hako-attach-", env: extraEnv });
}

test("an attach request is checked like any other: a name is a short string, nothing else rides along", () => {
  equal(requestProblem({ id: 1, op: "attach", name: "web" }), undefined);
  match(requestProblem({ id: 1, op: "attach" })!, /name/);
  match(requestProblem({ id: 1, op: "attach", name: 42 })!, /name/);
  match(requestProblem({ id: 1, op: "attach", name: "" })!, /name/);
  match(requestProblem({ id: 1, op: "attach", name: "x".repeat(5000) })!, /name/);
  match(requestProblem({ id: 1, op: "attach", name: "../../etc" })!, /name/);
});

test("the detach keys are held back while they may begin the sequence, and sent on when it breaks", () => {
  const f = new DetachFilter([0x10, 0x11]);
  const enc = (s: string) => new TextEncoder().encode(s);
  const dec = (b: Uint8Array) => new TextDecoder().decode(b);
  const a = f.push(enc("ab\x10"));
  deepEqual([dec(a.send), a.detach], ["ab", false]);
  const b = f.push(enc("x"));
  deepEqual([dec(b.send), b.detach], ["\x10x", false]);
  const c = f.push(enc("\x03\x10"));
  deepEqual([dec(c.send), c.detach], ["\x03", false], "ctrl-c is a byte like any other");
  const d = f.push(enc("\x11rest"));
  deepEqual([dec(d.send), d.detach], ["", true], "nothing of the sequence, nor after it, is sent");
});

for (const path of PATHS) {
  test(
    `hako run -d -it gives a shell a terminal that attach types into, resizes, detaches from and ends with its code (${path})`,
    () => {
      using l = lab(path);
      const sh = l.name("tty");
      const d = l.hako("run", "-d", "-it", "--name", sh, "--rootfs", "rootfs", "--", "sh");
      equal(d.code, 0, d.stderr);

      // Typed commands run; the window follows the caller's terminal at attach and on SIGWINCH;
      // ctrl-p ctrl-q leaves it running.
      const first = l.onTerminal(
        [
          { sleep: 0.5 },
          { send: "echo hi-$((6*7))\r" },
          { expect: "hi-42\r\n" },
          { send: "stty size\r" },
          { expect: "30 90\r\n" },
          { resize: [40, 100] },
          { sleep: 0.5 },
          { send: "stty size\r" },
          { expect: "40 100\r\n" },
          { send: "\x10\x11" },
          { expect: "detached" },
        ],
        "attach",
        sh,
      );
      deepEqual([first.timedOut, first.status], [null, 0], first.output);
      equal(l.hako("ps", "-q").stdout, `${sh}\n`, "it runs on after the detach");
      // Its terminal's output is its log, one stream (a tty merges stdout and stderr).
      match(l.hako("logs", "--raw", sh).stdout, /hi-42/);

      // Again: ctrl-c is a byte for its terminal (the shell's line is cancelled, attach goes on), then exit 3.
      const second = l.onTerminal(
        [
          { sleep: 0.5 },
          { send: "sleep 30\r" },
          { sleep: 0.5 },
          { send: "\x03" },
          { sleep: 0.3 },
          { send: "echo still-$((1+1))\r" },
          { expect: "still-2\r\n" },
          { send: "exit 3\r" },
        ],
        "attach",
        sh,
      );
      deepEqual([second.timedOut, second.status], [null, 3], second.output);
      match(l.hako("ps", "-a").stdout, /exited \(3\)/);
    },
    { skip },
  );

  test(
    `hako run -d -i keeps a pipe on the command's stdin: attach writes to it, its EOF does not close it, its code comes back (${path})`,
    async () => {
      using l = lab(path);
      const cat = l.name("cat");
      const d = l.hako("run", "-d", "-i", "--name", cat, "--rootfs", "rootfs", "--", "cat");
      equal(d.code, 0, d.stderr);
      const attach = () => {
        const child = spawn(CLI[0]!, [...CLI.slice(1), "attach", cat], { env: l.env, cwd: l.dir });
        const got = { out: "", err: "", code: undefined as number | null | undefined };
        child.stdout.on("data", (b: Uint8Array) => got.out += new TextDecoder().decode(b));
        child.stderr.on("data", (b: Uint8Array) => got.err += new TextDecoder().decode(b));
        child.on("exit", (c) => got.code = c);
        return { child, got };
      };
      const one = attach();
      try {
        await new Promise((r) => setTimeout(r, 1000));
        one.child.stdin.write("line-one\n");
        await until("the line back through cat", () => one.got.out.includes("line-one\n"));
        // docker: closing attach's stdin does not close a `-d -i` container's (its StdinOnce is
        // false): cat reads on, and attach goes on following its output.
        one.child.stdin.end();
        await new Promise((r) => setTimeout(r, 1000));
        equal(l.hako("ps", "-q").stdout, `${cat}\n`, "cat did not see EOF");
        equal(one.got.code, undefined, "attach follows on after its stdin ended");

        // A second attach writes too; the first sees the output as well.
        const two = attach();
        try {
          await new Promise((r) => setTimeout(r, 1000));
          two.child.stdin.write("line-two\n");
          await until(
            "the second line through both",
            () => one.got.out.includes("line-two\n") && two.got.out.includes("line-two\n"),
          );
          const k = l.hako("kill", cat);
          equal(k.code, 0, k.stderr);
          await until("both attaches ended", () => one.got.code !== undefined && two.got.code !== undefined);
          deepEqual([one.got.code, two.got.code], [137, 137], `${one.got.err} ${two.got.err}`);
        } finally {
          two.child.kill("SIGKILL");
        }
      } finally {
        one.child.kill("SIGKILL");
      }
    },
    { skip },
  );
}

test(
  "attach to a container with neither stdin nor terminal stays output-only; to a -d -t one, keys are not sent and ctrl-c detaches",
  () => {
    using l = lab("native");
    const web = l.name("plain");
    equal(l.hako("run", "-d", "--name", web, "--rootfs", "rootfs", "--", "sleep", "60").code, 0);
    const r = l.onTerminal(
      [{ expect: "keys are not sent" }, { send: "\x10\x11" }, { expect: "detached" }],
      "attach",
      web,
    );
    deepEqual([r.timedOut, r.status], [null, 0], r.output);

    // -d -t without -i: its terminal's output, no keys sent; ctrl-c ends the attach, not the
    // container (docker proxies signals to a container without a terminal only).
    const ticker = l.name("tonly");
    const t = l.hako(
      ...["run", "-d", "-t", "--name", ticker, "--rootfs", "rootfs", "--"],
      ...["sh", "-c", "i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.2; done"],
    );
    equal(t.code, 0, t.stderr);
    const c = l.onTerminal([{ expect: "tick" }, { send: "x\x03" }, { expect: "detached" }], "attach", ticker);
    deepEqual([c.timedOut, c.status], [null, 0], c.output);
    match(c.output, /tick\d+\r\n/, "its terminal's output, CR LF from its own terminal");
    match(l.hako("ps", "-q").stdout, new RegExp(`^${ticker}$`, "m"), "it runs on");
  },
  { skip },
);

/** Sends `lines` on a new connection to the supervisor's socket; resolves with the answers' lines once `done` holds. */
function converse(sock: string, lines: string, done: (got: string[]) => boolean): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const c = createConnection(sock);
    let text = "";
    const timer = setTimeout(() => (c.destroy(), reject(new Error(`no answer to ${lines}: ${text}`))), 10_000);
    const finish = () => {
      clearTimeout(timer);
      c.destroy();
      resolve(text.split("\n").filter(Boolean));
    };
    c.on("connect", () => c.write(lines));
    c.on("data", (b: Uint8Array) => {
      text += new TextDecoder().decode(b);
      if (done(text.split("\n").filter(Boolean))) finish();
    });
    c.on("close", finish);
    c.on("error", reject);
  });
}

test(
  "the supervisor answers a hostile attach line with an error and a dying attach takes nothing down",
  async () => {
    using l = lab("native");
    const sh = l.name("host");
    const plain = l.name("none");
    equal(l.hako("run", "-d", "-it", "--name", sh, "--rootfs", "rootfs", "--", "sh").code, 0);
    equal(l.hako("run", "-d", "--name", plain, "--rootfs", "rootfs", "--", "sleep", "60").code, 0);
    const sock = join(l.dir, "state/supervisor.sock");
    const supervisor = Number(readFileSync(join(l.dir, "state/supervisor.pid"), "utf8").split(" ")[0]);
    const answer = async (line: string, id = 1) => {
      const got = await converse(sock, line, (ls) => ls.some((x) => JSON.parse(x).id === id));
      return JSON.parse(got.find((x) => JSON.parse(x).id === id)!) as { ok: boolean; error?: { message: string } };
    };
    // A name that is not one, a container it does not have, one with neither stdin nor terminal.
    for (
      const [line, why] of [
        [`{"id":1,"op":"attach","name":"../../etc"}\n`, /attach needs a container's name/],
        [`{"id":1,"op":"attach","name":["x"]}\n`, /attach needs a container's name/],
        [`{"id":1,"op":"attach","name":"nope"}\n`, /not a running container/],
        [`{"id":1,"op":"attach","name":"${plain}"}\n`, /has no terminal or stdin/],
        // After another request on the same connection: its answer may be queued before the fd.
        [`{"id":9,"op":"ping"}\n{"id":1,"op":"attach","name":"${sh}"}\n`, /only request/],
      ] as const
    ) {
      const res = await answer(line);
      equal(res.ok, false, line);
      match(res.error!.message, why, line);
    }
    // An attach that holds the terminal and is killed: the container and the supervisor go on.
    const child = spawn(CLI[0]!, [...CLI.slice(1), "attach", sh], { env: l.env, cwd: l.dir });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      child.stdin.write("echo from-the-dead-$((1+1))\n");
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      child.kill("SIGKILL");
    }
    await new Promise((r) => setTimeout(r, 500));
    process.kill(supervisor, 0); // (throws when it is gone)
    const again = l.onTerminal(
      [
        { sleep: 0.5 },
        { send: "echo ok-$((2+3))\r" },
        { expect: "ok-5\r\n" },
        { send: "\x10\x11" },
        { expect: "detached" },
      ],
      "attach",
      sh,
    );
    deepEqual([again.timedOut, again.status], [null, 0], again.output);
    match(l.hako("logs", "--raw", sh).stdout, /from-the-dead-2/);
  },
  { skip },
);

test(
  "without a log relay (HAKO_LOG_RELAY=0) the supervisor copies a -d -it container's terminal to its log, and a restart policy gives it a new terminal",
  () => {
    using l = lab("native", { HAKO_LOG_RELAY: "0" });
    const sh = l.name("norelay");
    const d = l.hako("run", "-d", "-it", "--restart", "on-failure:1", "--name", sh, "--rootfs", "rootfs", "--", "sh");
    equal(d.code, 0, d.stderr);
    const first = l.onTerminal(
      [
        { sleep: 0.5 },
        { send: "echo one-$((3*3))\r" },
        { expect: "one-9\r\n" },
        { send: "exit 5\r" },
      ],
      "attach",
      sh,
    );
    deepEqual([first.timedOut, first.status], [null, 5], first.output);
    // Started again (on-failure): a terminal of its own again, to attach to — once the supervisor
    // has restarted it (an attach before that finds it not running).
    const restarted = () => l.hako("inspect", "--format", "{{.RestartCount}} {{.State.Status}}", sh).stdout.trim();
    for (let i = 0; i < 200 && restarted() !== "1 running"; i++) spawnSync("sleep", ["0.1"]);
    equal(restarted(), "1 running");
    const again = l.onTerminal(
      [
        { sleep: 2 },
        { send: "echo two-$((4*4))\r" },
        { expect: "two-16\r\n" },
        { send: "\x10\x11" },
        { expect: "detached" },
      ],
      "attach",
      sh,
    );
    deepEqual([again.timedOut, again.status], [null, 0], again.output);
    const log = l.hako("logs", "--raw", sh).stdout;
    match(log, /one-9/);
    match(log, /two-16/);
  },
  { skip },
);

test(
  "hako run -d -it on a terminal starts the container's terminal at the caller's size (docker's ConsoleSize)",
  async () => {
    using l = lab("native");
    const sz = l.name("size");
    const r = l.onTerminal(
      [],
      "run",
      "-d",
      "-it",
      "--name",
      sz,
      "--rootfs",
      "rootfs",
      "--",
      "sh",
      "-c",
      "stty size; sleep 30",
    );
    deepEqual([r.timedOut, r.status], [null, 0], r.output);
    await until("its size in its log", () => l.hako("logs", "--raw", sz).stdout.includes("30 90\r\n"));
  },
  { skip },
);

test(
  "a -d -i command that reads nothing fills its pipe without holding attach: the detach keys still detach",
  async () => {
    using l = lab("native");
    const deaf = l.name("deaf");
    equal(l.hako("run", "-d", "-i", "--name", deaf, "--rootfs", "rootfs", "--", "sleep", "60").code, 0);
    const child = spawn(CLI[0]!, [...CLI.slice(1), "attach", deaf], { env: l.env, cwd: l.dir });
    try {
      let err = "";
      child.stderr.on("data", (b: Uint8Array) => err += new TextDecoder().decode(b));
      const exited = new Promise<number | null>((res) => child.on("exit", (c) => res(c)));
      await new Promise((r) => setTimeout(r, 1000));
      // Four times what a pipe holds, then the detach keys.
      child.stdin.write(new Uint8Array(256 * 1024).fill(0x61));
      child.stdin.write("\x10\x11");
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still attached"), 15_000))]);
      equal(code, 0, err);
      match(err, /detached/);
      equal(l.hako("ps", "-q").stdout, `${deaf}\n`, "it runs on");
    } finally {
      child.kill("SIGKILL");
    }
  },
  { skip },
);

for (const path of PATHS) {
  test(
    `a -d -it command that reads nothing: a 1 MiB paste does not hold attach, the detach keys detach within a second, its terminal's output is still logged (${path})`,
    async () => {
      using l = lab(path);
      const deaf = l.name("ttydeaf");
      const d = l.hako(
        ...["run", "-d", "-it", "--name", deaf, "--rootfs", "rootfs", "--"],
        ...["sh", "-c", "sleep 5; echo after-$((6*7)); exec sleep 1000"],
      );
      equal(d.code, 0, d.stderr);
      const child = spawn(CLI[0]!, [...CLI.slice(1), "attach", deaf], { env: l.env, cwd: l.dir });
      try {
        let err = "";
        child.stderr.on("data", (b: Uint8Array) => err += new TextDecoder().decode(b));
        child.stdout.on("data", () => {});
        const exited = new Promise<number | null>((res) => child.on("exit", (c) => res(c)));
        await new Promise((r) => setTimeout(r, 1500));
        // Lines (a terminal's input queue fills with whole lines; a line longer than it holds is
        // cut by the line discipline instead), 1 MiB, then ctrl-p ctrl-q.
        const line = "a".repeat(63) + "\n";
        child.stdin.write(new TextEncoder().encode(line.repeat((1 << 20) / line.length)));
        child.stdin.write("\x10\x11");
        const keysAt = Date.now();
        const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still attached"), 15_000))]);
        const tookMs = Date.now() - keysAt;
        equal(code, 0, err);
        match(err, /detached/);
        console.error(`  (detached ${tookMs} ms after the keys, behind a 1 MiB paste)`);
        equal(tookMs < 1000, true, `detached ${tookMs} ms after the keys`);
        equal(l.hako("ps", "-q").stdout, `${deaf}\n`, "it runs on");
        // The relay reads the master attach made non-blocking: what the command writes is logged.
        await until("its later output in its log", () => l.hako("logs", "--raw", deaf).stdout.includes("after-42"));
      } finally {
        child.kill("SIGKILL");
      }
    },
    { skip },
  );
}
