/**
 * The docker commands hako added last: `stats`, `top`, `restart`, `shell` and `attach`, `logs
 * --since/--until`, `new`, `archive`, `completion`, and `--format` templates — their pure parts,
 * then end to end with real containers (the CLI of the runtime that runs the test, on the native
 * path and the forked one). Each end-to-end test has its own state directory, busybox rootfs and
 * uniquely named containers (`dc-…`).
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { chownSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { deepEqual, equal, match, notEqual, ok, throws } from "node:assert/strict";
import { needsRoot, test } from "./_harness.ts";
import { CLI, cliLab, PATHS, type SpawnPath, until } from "./_cli_lab.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { binarySize, decimalSize, formatRows, parseFormat } from "../src/cli/_format.ts";
import { UsageError } from "../src/cli/_args.ts";
import { blockIo, cpuPercent, netIo, type StatsSample } from "../src/cli/_cgroup_stats.ts";
import { parseStatsArgs, statsRow, statsTable } from "../src/cli/stats.ts";
import { filterPs, parseTopArgs } from "../src/cli/top.ts";
import { parseRestartArgs } from "../src/cli/restart.ts";
import { DetachWatcher, parseAttachArgs, parseDetachKeys } from "../src/cli/attach.ts";
import { goDuration, logTime, parseLogsArgs } from "../src/cli/logs.ts";
import { StampFilter } from "../src/supervisor/log_format.ts";
import { parseNewArgs } from "../src/cli/new.ts";
import { idInside, tarHeader } from "../src/cli/archive.ts";
import { bashScript, commandInfos, fishScript, optionsOf, zshScript } from "../src/cli/completion.ts";
import { COMMANDS } from "../src/cli/commands.ts";
import { EXAMPLES } from "../src/cli/_examples.ts";
import { mkdtempSync, rmSync } from "node:fs";

const ROOT = new URL("..", import.meta.url).pathname;
const PTY = join(ROOT, "tests/_pty.py");
const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

/** A state directory and a busybox rootfs; deletes its containers and kills its supervisor on dispose. */
function lab(path: SpawnPath) {
  return cliLab(path, { tag: "dc", prefix: "hako-dockcli-" });
}

const sample = (over: Partial<StatsSample>): StatsSample => ({
  atMs: 0,
  cpuNs: 0,
  memory: 0,
  memoryLimit: 0,
  blockRead: 0,
  blockWrite: 0,
  netRx: null,
  netTx: null,
  pids: 1,
  ...over,
});

test("--format: json lines, {{.Field}} templates with \\t, a table header, and a refused action", () => {
  const rows = [{ Name: "web", CPUPerc: "1.00%", State: { Status: "running" } }, {
    Name: "db",
    CPUPerc: "0.50%",
    State: { Status: "exited" },
  }];
  equal(formatRows(parseFormat("json"), rows), `${JSON.stringify(rows[0])}\n${JSON.stringify(rows[1])}\n`);
  equal(formatRows(parseFormat("{{.Name}}: {{.State.Status}}"), rows), "web: running\ndb: exited\n");
  equal(formatRows(parseFormat("{{.Name}}\\t{{json .State}}"), rows.slice(0, 1)), 'web\t{"Status":"running"}\n');
  equal(
    formatRows(parseFormat("table {{.Name}}\\t{{.CPUPerc}}"), rows, { CPUPerc: "CPU %" }),
    "NAME  CPU %\nweb   1.00%\ndb    0.50%\n",
  );
  deepEqual(parseFormat(undefined), { kind: "table" });
  throws(() => parseFormat("{{range .}}x{{end}}"), UsageError);
  throws(() => parseFormat("plain"), UsageError);
  throws(() => formatRows(parseFormat("{{.Nope}}"), rows), /can't evaluate field Nope/);
});

test("stats' figures: docker's units, CPU % over the interval, block and network bytes from the kernel's files", () => {
  deepEqual([binarySize(0), binarySize(1536), binarySize(32 << 20), binarySize(8 * 2 ** 30)], [
    "0B",
    "1.5KiB",
    "32MiB",
    "8GiB",
  ]);
  deepEqual([decimalSize(999), decimalSize(1234), decimalSize(5_600_000)], ["999B", "1.23kB", "5.6MB"]);
  equal(cpuPercent(sample({ atMs: 0, cpuNs: 0 }), sample({ atMs: 1000, cpuNs: 5e8 })), 50);
  equal(cpuPercent(undefined, sample({})), null);
  deepEqual(blockIo("8:0 Read 4096\n8:0 Write 512\n8:16 Read 4\nTotal 4612\n", undefined), { read: 4100, write: 512 });
  deepEqual(blockIo(undefined, "8:0 rbytes=10 wbytes=20 rios=1\n259:0 rbytes=1 wbytes=2\n"), { read: 11, write: 22 });
  const dev = "Inter-|   Receive\n face |bytes packets\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n" +
    "  eth0: 2000 3 0 0 0 0 0 0 500 2 0 0 0 0 0 0\n";
  deepEqual(netIo(dev), { rx: 2000, tx: 500 });
  const row = statsRow(
    "web",
    sample({ atMs: 0, cpuNs: 0 }),
    sample({ atMs: 1000, cpuNs: 2.5e8, memory: 8 << 20, memoryLimit: 32 << 20, blockRead: 1000, pids: 3 }),
    cpuPercent,
  );
  deepEqual([row.CPUPerc, row.MemUsage, row.MemPerc, row.NetIO, row.BlockIO, row.PIDs], [
    "25.00%",
    "8MiB / 32MiB",
    "25.00%",
    "--",
    "1kB / 0B",
    "3",
  ]);
  match(statsTable([row]), /^NAME +CPU % +MEM USAGE \/ LIMIT +MEM % +NET I\/O +BLOCK I\/O +PIDS\nweb +25\.00%/);
  deepEqual(parseStatsArgs(["--no-stream", "-a", "web"]).stream, false);
});

test("top keeps ps's header and the container's lines by the PID column; restart takes docker's -t", () => {
  const ps = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sh\nroot 43 42 sleep\n";
  equal(filterPs(ps, new Set([42, 43])), "UID PID PPID CMD\nroot 42 1 sh\nroot 43 42 sleep\n");
  equal(filterPs("USER COMMAND\nroot x\n", new Set([1])), undefined);
  deepEqual(parseTopArgs(["web"]), { help: false, name: "web", psArgs: ["-ef"] });
  deepEqual(parseTopArgs(["web", "-o", "pid,comm"]).psArgs, ["-o", "pid,comm"]);
  throws(() => parseTopArgs([]), UsageError);
  deepEqual(parseRestartArgs(["-t", "2", "a", "b"]), { help: false, names: ["a", "b"], timeoutMs: 2000 });
  throws(() => parseRestartArgs(["-t", "x", "a"]), UsageError);
});

for (const path of PATHS) {
  test(
    `hako stats, top and restart (${path}): a -d container's figures, its processes, and a restart that keeps its log and labels`,
    async () => {
      using l = lab(path);
      const web = l.name("web");
      const d = l.hako(
        ...["run", "-d", "--name", web, "-l", "team=ops", "-m", "32m", "--rootfs", "rootfs", "--"],
        ...["sh", "-c", "echo started; sleep 1000 & while :; do sleep 0.2; done"],
      );
      deepEqual([d.code, d.stdout], [0, `${web}\n`], d.stderr);
      await until("its log", () => l.hako("logs", web).stdout === "started\n");

      // stats --no-stream: docker's columns, its memory limit, its processes.
      const s = l.hako("stats", "--no-stream", "--format", "json", web);
      equal(s.code, 0, s.stderr);
      const row = JSON.parse(s.stdout);
      equal(row.Name, web);
      match(row.CPUPerc, /^\d+\.\d\d%$/);
      match(row.MemUsage, / \/ 32MiB$/);
      ok(Number(row.PIDs) >= 2, row.PIDs);
      const t = l.hako("stats", "--no-stream", web);
      match(
        t.stdout,
        new RegExp(`^NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS\\n${web} `),
        t.stdout,
      );
      equal(l.hako("stats", "--no-stream", "--format", "{{.Name}}={{.PIDs}}", web).stdout, `${web}=${row.PIDs}\n`);
      equal(l.hako("stats", "--no-stream", "dc-nonesuch").code, 1);

      // Streaming: a table a second until interrupted.
      const child = spawn(CLI[0]!, [...CLI.slice(1), "stats", "--format", "{{.Name}}"], { env: l.env, cwd: l.dir });
      let streamed = "";
      child.stdout.on("data", (b: Uint8Array) => streamed += new TextDecoder().decode(b));
      await until("two refreshes", () => streamed.split("\n").filter((x) => x === web).length >= 2, 15_000);
      child.kill("SIGINT");
      await new Promise((res) => child.on("close", res));

      // top: ps's header and the container's processes (host pids): sh, sleep 1000.
      const top = l.hako("top", web);
      equal(top.code, 0, top.stderr);
      match(top.stdout, /^UID +PID +PPID/);
      match(top.stdout, /sleep 1000/);
      ok(!top.stdout.includes("hako"), top.stdout);
      const custom = l.hako("top", web, "-o", "pid,comm");
      match(custom.stdout, /^ *PID COMMAND\n/);

      // --format templates on ps and inspect.
      equal(l.hako("ps", "--format", "{{.Names}} {{.State}} {{.Labels}}").stdout, `${web} running team=ops\n`);
      match(
        l.hako("ps", "--format", "table {{.Names}}\\t{{.Status}}").stdout,
        new RegExp(`^NAMES +STATUS\n${web} +running\n$`),
      );
      equal(
        l.hako("inspect", "-f", "{{.State.Status}} {{json .Config.Labels}}", web).stdout,
        `running {"team":"ops"}\n`,
      );
      equal(l.hako("inspect", "-f", "{{.Nope}}", web).code, 2);

      // restart: a new init, the same name, labels and log; the container runs again.
      const before = JSON.parse(l.hako("inspect", web).stdout)[0].State.Pid;
      const r = l.hako("restart", "-t", "1", web);
      deepEqual([r.code, r.stdout], [0, `${web}\n`], r.stderr);
      const after = JSON.parse(l.hako("inspect", web).stdout)[0];
      equal(after.State.Status, "running");
      notEqual(after.State.Pid, before);
      deepEqual(after.Config.Labels, { team: "ops" });
      await until("its log after the restart", () => l.hako("logs", web).stdout === "started\nstarted\n");
      // An exited container starts again too.
      equal(l.hako("stop", "-t", "1", web).code, 0);
      const again = l.hako("restart", web);
      equal(again.code, 0, again.stderr);
      equal(l.hako("ps", "-q").stdout, `${web}\n`);
    },
    { skip },
  );
}

test("top and restart name what is wrong: an unknown container", () => {
  const r = spawnSync(CLI[0]!, [...CLI.slice(1), "top", "dc-nonesuch"], {
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, HAKO_STATE_DIR: "/tmp/hako-dockcli-nonesuch" },
  });
  equal(r.status, 1);
  match(r.stderr, /no such container: dc-nonesuch/);
});

test("attach's detach keys: docker's ctrl-<x> list, typed in order; ctrl-c outside them is an interrupt", () => {
  deepEqual(parseDetachKeys("ctrl-p,ctrl-q"), [0x10, 0x11]);
  deepEqual(parseDetachKeys("ctrl-@,ctrl-[,ctrl-_,x"), [0, 0x1b, 0x1f, 0x78]);
  throws(() => parseDetachKeys("ctrl-pp"), UsageError);
  throws(() => parseDetachKeys(""), UsageError);
  const w = new DetachWatcher([0x10, 0x11]);
  equal(w.push(new Uint8Array([0x61, 0x10])), undefined);
  equal(w.push(new Uint8Array([0x11])), "detach");
  equal(new DetachWatcher([0x10, 0x11]).push(new Uint8Array([0x10, 0x61, 0x11])), undefined);
  equal(new DetachWatcher([0x10, 0x11]).push(new Uint8Array([0x03])), "interrupt");
  deepEqual(parseAttachArgs(["--sig-proxy=false", "--no-stdin", "web"]), {
    help: false,
    name: "web",
    detachKeys: [0x10, 0x11],
    noStdin: true,
    sigProxy: false,
  });
  throws(() => parseAttachArgs(["--sig-proxy", "maybe", "web"]), UsageError);
});

// attach reads the log relay's output: the setup path (native or forked) does not change it.
test(
  "hako attach joins a -d container's output from now on: SIGTERM is proxied and its code comes back; ctrl-p ctrl-q detaches",
  async () => {
    using l = lab("native");
    const web = l.name("att");
    const d = l.hako(
      ...["run", "-d", "--name", web, "--rootfs", "rootfs", "--"],
      ...[
        "sh",
        "-c",
        "trap 'echo got-term; echo term-err >&2; exit 42' TERM; i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.2; done",
      ],
    );
    equal(d.code, 0, d.stderr);
    await until("its first ticks", () => l.hako("logs", web).stdout.includes("tick2"));

    // On a terminal: the output, then ctrl-p ctrl-q detaches and leaves it running.
    const r = spawnSync("python3", [
      PTY,
      "30",
      "90",
      JSON.stringify([{ expect: "tick" }, { send: "x\x10\x11" }, { expect: "detached" }]),
      "60",
      "--",
      ...CLI,
      "attach",
      web,
    ], { env: l.env, cwd: l.dir, encoding: "utf8", timeout: 90_000 });
    equal(r.status, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as { output: string; status: number | null; timedOut: string | null };
    deepEqual([shown.timedOut, shown.status], [null, 0], shown.output);
    ok(!shown.output.includes("tick0\r\n"), "only what it writes from now on");
    equal(l.hako("ps", "-q").stdout, `${web}\n`, "it runs on");

    // Through pipes: SIGTERM to attach goes to the container; its code is attach's.
    const child = spawn(CLI[0]!, [...CLI.slice(1), "attach", web], { env: l.env, cwd: l.dir });
    let out = "", err = "";
    child.stdout.on("data", (b: Uint8Array) => out += new TextDecoder().decode(b));
    child.stderr.on("data", (b: Uint8Array) => err += new TextDecoder().decode(b));
    await until("output through attach", () => /tick\d+\n/.test(out));
    // (process.kill: Deno's ChildProcess.kill() reports the signal it sent as the way the child ended)
    const exited = new Promise((res) => child.on("exit", (c) => res(c)));
    process.kill(child.pid!, "SIGTERM");
    const code = await exited;
    equal(code, 42, `${code}: ${out}`);
    match(out, /got-term\n$/);
    // Its stderr on attach's stderr, not its stdout.
    await until("its stderr through attach", () => err.includes("term-err\n"));
    ok(!out.includes("term-err"), out);

    // Not running: a clear error pointing at what works.
    const ended = l.hako("attach", web);
    equal(ended.code, 1);
    match(ended.stderr, /not running/);
  },
  { skip },
);

test("logs --since/--until: docker's forms of a time as a log timestamp; lines chosen by theirs, continuations too", () => {
  const now = Date.parse("2026-12-03T16:00:00.000Z");
  deepEqual([goDuration("10m"), goDuration("1h30m"), goDuration("1.5s"), goDuration("10"), goDuration("m")], [
    600_000,
    5_400_000,
    1500,
    undefined,
    undefined,
  ]);
  equal(logTime("10m", now), "2026-12-03T15:50:00.000000000Z");
  equal(logTime("2026-12-03T15:04:05.123456789Z", now), "2026-12-03T15:04:05.123456789Z");
  equal(logTime("2026-12-03T17:04:05+02:00", now), "2026-12-03T15:04:05.000000000Z");
  equal(logTime("1764777600.5", now), "2025-12-03T16:00:00.500000000Z");
  equal(parseLogsArgs(["--until", "2026-12-03", "web"], now).until!.slice(0, 10), "2026-12-03");
  throws(() => parseLogsArgs(["--since", "yesterday", "web"], now), UsageError);
  const enc = new TextEncoder();
  const f = new StampFilter({ stamped: true, keep: false, select: (t) => t >= "2026-12-03T15:00:01" });
  const log = "2026-12-03T15:00:00.000000000Z a\n2026-12-03T15:00:01.000000000Z b\n2026-12-03T15:00:02.000000000Z c";
  f.startPart(false);
  equal(new TextDecoder().decode(f.push(enc.encode(log))), "b\nc");
  const g = new StampFilter({ stamped: true, keep: false, select: (t) => t < "2026-12-03T15:00:01" });
  g.startPart(false);
  equal(new TextDecoder().decode(g.push(enc.encode("2026-12-03T15:00:02.000000000Z lon"))), "");
  g.startPart(false);
  equal(
    new TextDecoder().decode(g.push(enc.encode("2026-12-03T15:00:03.000000000Z+g\n"))),
    "",
    "a cut line goes with its start",
  );
});

test(
  "hako logs --since and --until choose lines by the time they were written; -f --until in the past ends",
  async () => {
    using l = lab("native");
    const web = l.name("since");
    const d = l.hako(
      "run",
      "-d",
      "--name",
      web,
      "--rootfs",
      "rootfs",
      "--",
      "sh",
      "-c",
      "echo a; sleep 1.2; echo b; sleep 1000",
    );
    equal(d.code, 0, d.stderr);
    await until("both lines", () => l.hako("logs", web).stdout === "a\nb\n");
    const [ta, tb] = l.hako("logs", "-t", web).stdout.trim().split("\n").map((x) => x.split(" ")[0]!);
    equal(l.hako("logs", "--since", tb!, web).stdout, "b\n");
    equal(l.hako("logs", "--until", ta!, web).stdout, "a\n");
    equal(l.hako("logs", "--since", "1h", web).stdout, "a\nb\n");
    equal(l.hako("logs", "--since", "2100-01-01", web).stdout, "");
    equal(l.hako("logs", "-t", "--since", tb!, web).stdout, `${tb} b\n`);
    const f = l.hako("logs", "-f", "--until", new Date().toISOString(), web);
    deepEqual([f.code, f.stdout], [0, "a\nb\n"], f.stderr);
    equal(l.hako("logs", "--since", "bogus", web).code, 2);
  },
  { skip },
);

test("hako new NAME parses a safe name and one kind of rootfs", () => {
  deepEqual(parseNewArgs(["--rootfs", "r", "web"]), { help: false, name: "web", rootfs: "r", force: false });
  throws(() => parseNewArgs(["../x"]), UsageError);
  throws(() => parseNewArgs(["--rootfs", "r", "--image", "i.tar", "web"]), UsageError);
});

for (const path of PATHS) {
  test(
    `hako new (${path}): the template runs as written, takes arguments, and its commented fields are valid specs`,
    () => {
      using l = lab(path);
      const name = l.name("new");
      const n = l.hako("new", "--rootfs", "rootfs", name);
      deepEqual([n.code, n.stdout], [0, `${join(l.dir, name)}.ts\n`], n.stderr);
      equal(l.hako("new", "--rootfs", "rootfs", name).code, 1, "an existing file is kept");
      const r = l.hako("run", `${name}.ts`);
      deepEqual([r.code, r.stdout], [0, `hello from ${name}\n`], r.stderr);
      equal(l.hako("run", `${name}.ts`, "sh", "-c", "echo $GREETING; exit 3").stdout, "hello\n");
      // Every commented field, uncommented: still a spec hako accepts.
      const text = readFileSync(join(l.dir, `${name}.ts`), "utf8");
      const all = text.replace(/^ {2}\/\/ (\w+: .*,)$/gm, "  $1");
      ok(all !== text && !/^ {2}\/\/ \w+: /m.test(all));
      writeFileSync(join(l.dir, "all.ts"), all);
      const plan = l.hako("plan", "all.ts");
      equal(plan.code, 0, plan.stderr);
    },
    { skip },
  );
}

test("archive's pieces: host ids shifted back through the map (65534 outside it), ustar headers, PAX for long paths", () => {
  const map = [{ inside: 0, outside: 100000, size: 65536 }];
  deepEqual([idInside(100000, map), idInside(100005, map), idInside(0, map), idInside(42, undefined)], [
    0,
    5,
    65534,
    42,
  ]);
  const h = tarHeader({ path: "etc/passwd", type: "0", mode: 0o644, uid: 0, gid: 0, size: 5, mtime: 0 });
  equal(h.length, 512);
  equal(new TextDecoder().decode(h.subarray(257, 262)), "ustar");
  const sum = h.reduce((s, x, i) => s + (i >= 148 && i < 156 ? 32 : x), 0);
  equal(parseInt(new TextDecoder().decode(h.subarray(148, 154)), 8), sum);
  const long = tarHeader({ path: "d/" + "x".repeat(150), type: "0", mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 });
  equal(long.length, 512 * 3, "a PAX header, its record, then the entry");
  equal(String.fromCharCode(long[156]!), "x");
  match(new TextDecoder().decode(long.subarray(512, 1024)), /^\d+ path=d\/x{150}\n/);
});

for (const path of PATHS) {
  test(`hako archive (${path}): a user-namespace container's rootfs, owners as the container sees them`, () => {
    using l = lab(path);
    const name = l.name("arch");
    const base = 400_000 + Math.floor(Math.random() * 1000) * 65536;
    spawnSync("chown", ["-R", `${base}:${base}`, l.rootfs]);
    writeFileSync(join(l.rootfs, "hostroot"), "host\n");
    chownSync(join(l.rootfs, "hostroot"), 0, 0);
    const map = { inside: 0, outside: base, size: 65536 };
    writeFileSync(
      join(l.dir, "spec.ts"),
      `export default ${
        JSON.stringify({
          name,
          rootfs: l.rootfs,
          namespaces: ["user", "mount", "uts", "ipc", "pid"],
          idMap: { uid: map, gid: map },
          command: ["sh", "-c", "echo made > /made && echo five > /five && chown 5:6 /five && ln /five /five-too"],
        })
      };\n`,
    );
    const s = l.hako("start", "spec.ts");
    equal(s.code, 0, s.stderr);
    const w = l.hako("wait", name);
    deepEqual([w.code, w.stdout], [0, "0\n"], w.stderr);
    equal(readFileSync(join(l.rootfs, "made"), "utf8"), "made\n");
    const a = l.hako("archive", name, "out.tar.gz");
    equal(a.code, 0, a.stderr);
    const list = spawnSync("tar", ["--numeric-owner", "-tvzf", join(l.dir, "out.tar.gz")], { encoding: "utf8" });
    equal(list.status, 0, list.stderr);
    const owner = (file: string) =>
      list.stdout.split("\n").find((x) => x.endsWith(` ${file}`) || x.includes(` ${file} link to `))?.split(/\s+/)[1];
    deepEqual([owner("made"), owner("five"), owner("hostroot"), owner("bin/")], ["0/0", "5/6", "65534/65534", "0/0"]);
    match(list.stdout, /five-too link to five/);
    // Extracted, the tree is the container's: its contents are there.
    const x = join(l.dir, "x");
    spawnSync("mkdir", [x]);
    equal(spawnSync("tar", ["-xzf", join(l.dir, "out.tar.gz"), "-C", x]).status, 0);
    equal(readFileSync(join(x, "five"), "utf8"), "five\n");
    // Unknown container: a clear error.
    match(l.hako("archive", "dc-nonesuch", "o.tar").stderr, /no such container/);
  }, { skip });
}

test("completion: every command and its usage's options, in bash, zsh and fish scripts each shell accepts", async () => {
  deepEqual(optionsOf("Options:\n  -f, --follow       Keep\n      --since <T>    Only\n  -h, --help   Show\n"), [
    { long: "follow", short: "f", description: "Keep" },
    { long: "since", description: "Only" },
    { long: "help", short: "h", description: "Show" },
  ]);
  const infos = await commandInfos();
  deepEqual(infos.map((c) => c.name), Object.keys(COMMANDS));
  const logs = infos.find((c) => c.name === "logs")!;
  ok(["follow", "tail", "timestamps", "since", "until"].every((o) => logs.options.some((x) => x.long === o)));
  const scripts = { bash: bashScript(infos), zsh: zshScript(infos), fish: fishScript(infos) };
  for (const [shell, script] of Object.entries(scripts)) {
    for (const name of Object.keys(COMMANDS)) ok(new RegExp(`\\b${name}\\b`).test(script), `${shell}: ${name}`);
    const flag = (o: string) => (shell === "fish" ? `-l ${o}` : `--${o}`);
    ok(script.includes(flag("since")) && script.includes(flag("no-stream")), shell);
    const dir = mkdtempSync("/tmp/hako-dockcli-completion-");
    try {
      writeFileSync(join(dir, "hako"), script);
      const has = spawnSync(shell, ["-c", "true"]).status === 0;
      if (!has) {
        console.error(`(${shell} is not installed: its script is not checked)`);
        continue;
      }
      const check = spawnSync(shell, ["-n", join(dir, "hako")], { encoding: "utf8" });
      equal(check.status, 0, `${shell} -n: ${check.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  // bash: the completion function answers as a person would see it.
  const words = (line: string) => {
    const r = spawnSync("bash", [
      "-c",
      `${scripts.bash}\nCOMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _hako; echo "\${COMPREPLY[*]}"`,
    ], { encoding: "utf8" });
    return r.stdout.trim().split(" ");
  };
  deepEqual(words("hako re"), ["restart"]);
  ok(words("hako logs --si").includes("--since"));
});

test("hako help shows one example per command", () => {
  for (const name of Object.keys(COMMANDS)) {
    ok(Object.hasOwn(EXAMPLES, name), `an example for ${name}`);
    ok(EXAMPLES[name]!.includes(`hako ${name}`), EXAMPLES[name]);
  }
  const r = spawnSync(CLI[0]!, [...CLI.slice(1), "help"], { encoding: "utf8", timeout: 60_000 });
  equal(r.status, 0, r.stderr);
  match(r.stdout, /Examples:\n {2}run +hako run -it/);
  match(r.stdout, / {2}restart +hako restart -t 5 web\n/);
});

test("the README's command table names every command", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## The command line"), readme.indexOf("### Running many containers"));
  for (const name of Object.keys(COMMANDS)) {
    ok(new RegExp(`\`hako ${name}[ \`]`).test(section), name);
  }
});
