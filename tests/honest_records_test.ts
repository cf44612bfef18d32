/**
 * Records that cannot lie, honest words after faults, and outcomes users can act on — through the
 * CLI of the runtime that runs the test (bin/hako under Deno, `bun src/cli/main.ts` under Bun),
 * each test in a state directory of its own:
 * - a damaged `state.json` (emptied, cut short, `{}`, `[]`, `null`, no init, `"spec": null`,
 *   wrong types) never hides a running container: `ps` shows it as `unknown` with its cgroup and
 *   processes, `stop`/`kill`/`logs`/`delete` work on it from the kernel's truth, and `gc`/`delete`
 *   never remove it while it has live processes;
 * - `start` says what became of a container when its supervisor died, reserves the name before
 *   extracting a tarball, and names a bad rootfs field instead of crashing; `stop` says what ended
 *   the container; an empty container directory is named and removed;
 * - a container the memory limit killed is `oom-killed`, one whose forks the pids limit refused says
 *   so, and `ps` counts what `pids.max` counts (zombies included).
 * @module
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { needsRoot, runtime, tempDir, test, until } from "./_harness.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { endingSignal, judgeStop, type StopResult } from "../src/container/lifecycle.ts";
import { recordProblem, type StateRecord } from "../src/container/state.ts";
import { oomKillCount } from "../src/cgroup/memory.ts";
import { failedForkCount, pidsCurrentCount } from "../src/cgroup/pids.ts";
import { stopLine } from "../src/cli/stop.ts";
import { stateText } from "../src/cli/ps.ts";
import { absolutizeSpec } from "../src/cli/start.ts";
import { exitNote } from "../src/runner/_exit_note.ts";
import type { ContainerSpec } from "../src/container/spec.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = runtime === "bun"
  ? [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli/main.ts")]
  : [join(ROOT, "bin/hako")];
const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");
const PATHS = ["native", "forked"] as const;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface PsEntry {
  name: string;
  state: string;
  pid: number | null;
  pids: number | null;
  note?: string;
  damaged?: string;
  cgroup?: string;
  oomKilled?: number;
  failedForks?: number;
  exit?: { code: number | null; signal: number | null; shellCode: number } | null;
}

/**
 * A state directory, a busybox rootfs and spec files; containers get names unique on the host
 * (their cgroups are hako/NAME, hako's default). Deletes every container, kills the supervisor and
 * removes it all on dispose.
 */
function lab(options: { path?: (typeof PATHS)[number] } = {}) {
  const dir = tempDir("hako-honest-");
  chmodSync(dir.path, 0o755);
  const state = join(dir.path, "state");
  const rootfs = join(dir.path, "rootfs");
  buildRootfs(rootfs, { builder: "busybox" });
  const tag = Math.random().toString(16).slice(2, 8);
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    HAKO_STATE_DIR: state,
    NO_COLOR: "1",
    ...(options.path === "forked" ? { HAKO_NATIVE_SPAWN: "0" } : {}),
  };
  delete env.HAKO_LOADER;
  const hako = (...args: string[]): Result => {
    const r = spawnSync(CLI[0]!, [...CLI.slice(1), ...args], { env, encoding: "utf8", timeout: 60_000 });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const hakoAsync = (...args: string[]) => {
    const p = spawn(CLI[0]!, [...CLI.slice(1), ...args], { env });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => stdout += d);
    p.stderr.on("data", (d) => stderr += d);
    const done = new Promise<Result>((resolve) => p.on("close", (code) => resolve({ code, stdout, stderr })));
    return { pid: p.pid!, done };
  };
  const name = (n: string) => `hon-${tag}-${n}`;
  /** Writes a spec module of container `n` (`$N` in it is --each's N); `extra` is more of the object literal. */
  const spec = (n: string, command: string, extra: Record<string, unknown> = {}): string => {
    const path = join(dir.path, `${n.replace("$N", "")}.ts`);
    const body = JSON.stringify({ rootfs, command: ["sh", "-c", command], ...extra });
    writeFileSync(
      path,
      `export default (env: Record<string, string | undefined>) => ({ ...${body}, name: ${
        JSON.stringify(name(n))
      }.replace("$N", env.N ?? ""), env: { N: env.N ?? "" } });\n`,
    );
    return path;
  };
  const ps = (): PsEntry[] => {
    const r = hako("ps", "-a", "--json");
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const record = (n: string) => join(state, "containers", name(n), "state.json");
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
    tag,
    hako,
    hakoAsync,
    name,
    spec,
    ps,
    record,
    supervisorPid,
    [Symbol.dispose]() {
      try {
        for (const c of ps()) hako("delete", "--force", c.name);
      } catch { /* the directory goes anyway */ }
      const pid = supervisorPid();
      if (pid) {
        try {
          process.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      dir[Symbol.dispose]();
    },
  };
}

/** The processes in a cgroup of the pids hierarchy (none when it is gone). */
function procsOf(cgroup: string): number[] {
  try {
    return readFileSync(`/sys/fs/cgroup/pids/${cgroup}/cgroup.procs`, "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z");

// ---- pure parts -----------------------------------------------------------------------------

const WHOLE: StateRecord = {
  version: 1,
  name: "web",
  state: "running",
  init: { pid: 1234, startTime: 99 },
  owner: { pid: 1000, startTime: 10 },
  createdAt: "2026-01-01T00:00:00.000Z",
  spec: { name: "web", rootfs: "/srv/web", command: "true" },
  image: "/srv/web",
  rootfs: "/srv/web",
  extracted: false,
  cgroup: "hako/web",
};

test("recordProblem: a whole record has none; every damaged shape names what is wrong", () => {
  assert.equal(recordProblem(WHOLE, "web"), undefined);
  assert.equal(recordProblem({ ...WHOLE, state: "exited", exit: null, init: undefined }, "web"), undefined);
  const cases: Array<[unknown, RegExp]> = [
    [null, /holds null, not a record/],
    [[], /holds an array, not a record/],
    [7, /holds number 7, not a record/],
    [{}, /^version: missing, not 1; name: missing, not the name web; state: missing.*and \d+ more$/],
    [{ ...WHOLE, init: undefined }, /^init: missing \(a running container's record names its init\)$/],
    [{ ...WHOLE, spec: null }, /^spec: null, not an object$/],
    [{ ...WHOLE, owner: { pid: "1000" } }, /^owner: an object, not a process/],
    [{ ...WHOLE, state: "sleeping" }, /^state: string "sleeping", not creating, running or exited$/],
    [{ ...WHOLE, cgroup: "../../system.slice" }, /^cgroup: string .*, not a cgroup name$/],
    [{ ...WHOLE, exit: { code: "0" } }, /^exit: an object, not an exit status/],
    [{ ...WHOLE, name: "other" }, /^name: string "other", not the name web$/],
    [{ ...WHOLE, extracted: "yes", oomKilled: -1 }, /^extracted: .*; oomKilled: number -1, not a count$/],
  ];
  for (const [value, want] of cases) assert.match(recordProblem(value, "web") ?? "", want, JSON.stringify(value));
});

test("the OOM and pids counters are read from their files' text, v2 and v1 alike", () => {
  // cgroup v2 memory.events, and v1 memory.oom_control (4.13+)
  assert.equal(oomKillCount("low 0\nhigh 0\nmax 31\noom 2\noom_kill 2\noom_group_kill 0\n"), 2);
  assert.equal(oomKillCount("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"), 1);
  assert.equal(oomKillCount("oom_kill_disable 0\nunder_oom 0\n"), 0, "a kernel before 4.13 says nothing");
  assert.equal(oomKillCount(null), 0);
  assert.equal(failedForkCount("max 12\n"), 12);
  assert.equal(failedForkCount(null), 0);
  assert.equal(pidsCurrentCount("50\n"), 50);
  assert.equal(pidsCurrentCount(null), undefined);
  assert.equal(pidsCurrentCount("max\n"), undefined);
});

test("stop's words say what ended the container: hako's TERM or KILL, its own exit, the OOM killer, or another", () => {
  const exit = (code: number | null, signal: number | null) => ({ code, signal, shellCode: code ?? 128 + signal! });
  assert.equal(judgeStop(["TERM"], exit(null, 15)), "term");
  assert.equal(judgeStop(["TERM", "KILL"], exit(null, 9)), "kill");
  assert.equal(judgeStop(["TERM"], exit(null, 9)), "other", "a SIGKILL hako did not send");
  assert.equal(judgeStop(["TERM"], exit(null, 9), 1), "oom");
  assert.equal(judgeStop(["TERM"], exit(3, null)), "exit");
  assert.equal(judgeStop([], exit(null, 15)), "other");
  // An init such as tini exits 128+N when its child was killed by N, as a shell does.
  assert.equal(judgeStop(["TERM"], exit(143, null)), "term");
  assert.equal(judgeStop(["TERM", "KILL"], exit(137, null)), "kill");
  assert.equal(endingSignal(exit(143, null)), 15);
  assert.equal(endingSignal(exit(3, null)), null);
  assert.equal(judgeStop(["TERM", "KILL"], null), "unknown");
  // a stop signal of the spec's (stopSignal): that one is hako's, SIGTERM then is not
  assert.equal(judgeStop(["TERM"], exit(null, 3), 0, 3), "term");
  assert.equal(judgeStop(["TERM"], exit(null, 15), 0, 3), "other");
  assert.equal(judgeStop(["TERM"], exit(null, 9), 0, 9), "kill", "a stop signal of SIGKILL ends it as hako's");
  const r = (x: Partial<StopResult>): StopResult => ({ outcome: "ended", sent: ["TERM"], timeoutMs: 300, ...x });
  assert.equal(
    stopLine("a", r({ sent: ["TERM", "KILL"], endedBy: "kill", exit: exit(null, 9) })),
    "a killed by hako's SIGKILL, 0.3 s after its SIGTERM (exit 137)",
  );
  assert.equal(
    stopLine("a", r({ endedBy: "term", exit: exit(null, 15) })),
    "a terminated by hako's SIGTERM (exit 143)",
  );
  assert.equal(stopLine("a", r({ endedBy: "exit", exit: exit(3, null) })), "a exited with 3 on hako's SIGTERM");
  assert.equal(
    stopLine("a", r({ endedBy: "other", exit: exit(null, 9), signal: 9 })),
    "a killed by SIGKILL, not by hako (hako had sent SIGTERM) (exit 137)",
  );
  assert.equal(
    stopLine("a", r({ endedBy: "oom", exit: exit(null, 9), oomKilled: 1 })),
    "a oom-killed: its memory limit killed it (1 OOM kill(s)), not hako's signal (hako had sent SIGTERM) (exit 137)",
  );
  assert.equal(
    stopLine("a", r({ sent: ["TERM", "KILL"], endedBy: "unknown", exit: null })),
    "a ended after hako's SIGKILL; its exit status is unknown (no supervisor saw it end)",
  );
  assert.equal(
    stopLine("a", r({ endedBy: "unknown" })),
    "a ended after hako's SIGTERM; its exit status is unknown (its supervisor has not recorded it yet: see 'hako ps')",
  );
  assert.equal(stopLine("a", { outcome: "not-running", sent: [], timeoutMs: 0 }), "a not running");
  // the spec's stop signal is named where SIGTERM would be
  assert.equal(
    stopLine("a", r({ stopSignal: 3, sent: ["TERM", "KILL"], endedBy: "kill", exit: exit(null, 9) })),
    "a killed by hako's SIGKILL, 0.3 s after its SIGQUIT (exit 137)",
  );
});

test("ps's state column says oom-killed, pids limit reached and damaged record", () => {
  const base = {
    name: "a",
    pid: null,
    uptimeSeconds: null,
    cpuPercent: null,
    memoryBytes: null,
    pids: null,
    image: "",
  };
  assert.equal(
    stateText({ ...base, state: "exited", exit: { code: null, signal: 9, shellCode: 137 }, oomKilled: 1 }),
    "exited (137, oom-killed: 1)",
  );
  assert.equal(stateText({ ...base, state: "running", failedForks: 12 }), "running (pids limit reached: 12)");
  assert.equal(
    stateText({ ...base, state: "unknown", damaged: "state.json is empty" }),
    "unknown (damaged record: state.json is empty)",
  );
  assert.equal(stateText({ ...base, state: "exited", exit: null }), "exited (?)");
});

test("hako run's exit message names what the exit code hides: oom-killed, pids limit reached", () => {
  assert.equal(
    exitNote("web", { code: null, signal: 9, shellCode: 137, oomKilled: 1 }),
    "hako: container web exited (137): oom-killed: the OOM killer killed 1 process(es) in it (its memory limit)",
  );
  assert.equal(
    exitNote("web", { code: 2, signal: null, shellCode: 2, failedForks: 3 }),
    "hako: container web exited (2): pids limit reached: 3 fork(s) refused",
  );
  assert.equal(exitNote("web", { code: null, signal: 9, shellCode: 137 }), undefined);
});

test("start's path handling leaves what is not a path string to the spec's validation", () => {
  const bad = (rootfs: unknown, mounts?: unknown) =>
    ({ name: "x", command: "true", rootfs, ...(mounts ? { mounts } : {}) }) as unknown as ContainerSpec;
  for (const rootfs of [42, null, [], { builder: "busybox", path: 42 }, { tarball: 7, path: "r" }, { builder: "x" }]) {
    const s = absolutizeSpec(bad(rootfs), "/srv");
    assert.deepEqual(
      s.rootfs,
      typeof rootfs === "object" && rootfs !== null && !Array.isArray(rootfs) && "path" in rootfs &&
        rootfs.path === "r"
        ? { ...rootfs, path: "/srv/r" }
        : rootfs,
    );
  }
  const m = absolutizeSpec(bad("r", [{ type: "bind", source: 5, target: "/x" }, null]), "/srv");
  assert.deepEqual([m.rootfs, m.mounts], ["/srv/r", [{ type: "bind", source: 5, target: "/x" }, null]]);
});

// ---- records that cannot lie ----------------------------------------------------------------

/** Every damaged shape of a running container's record: what to write over it. */
const DAMAGE: ReadonlyArray<[string, (text: string) => string, RegExp]> = [
  ["emptied", () => "", /^state\.json is empty$/],
  ["truncated", (t) => t.slice(0, Math.floor(t.length * 0.8)), /^state\.json is not valid JSON/],
  ["object", () => "{}", /^version: missing/],
  ["array", () => "[]", /holds an array/],
  ["null", () => "null", /holds null/],
  ["noinit", (t) => JSON.stringify({ ...JSON.parse(t), init: undefined }), /^init: missing/],
  ["nospec", (t) => JSON.stringify({ ...JSON.parse(t), spec: null }), /^spec: null/],
  ["types", (t) => JSON.stringify({ ...JSON.parse(t), owner: "me", createdAt: 5 }), /^owner: string "me"/],
];

test(
  "a damaged record never hides a running container: ps, gc, logs, kill, stop and delete work from the kernel",
  async () => {
    using l = lab();
    const file = l.spec("d$N", "echo hello from $N; exec sleep 1000");
    const r = l.hako("start", file, "--each", `N=${["ok", ...DAMAGE.map(([n]) => n)].join(",")}`);
    assert.equal(r.code, 0, r.stderr);
    await until("every record to say running", () => l.ps().every((c) => c.state === "running"));
    const before = new Map(l.ps().map((c) => [c.name, c.pid!]));
    for (const [n, damage] of DAMAGE) writeFileSync(l.record(`d${n}`), damage(readFileSync(l.record(`d${n}`), "utf8")));

    // ps: every container, the damaged ones as unknown with what the kernel says; the whole one as before.
    const list = l.ps();
    assert.deepEqual(list.map((c) => c.name).sort(), [...before.keys()].sort(), "none is omitted");
    assert.equal(list.find((c) => c.name === l.name("dok"))?.state, "running");
    for (const [n, , problem] of DAMAGE) {
      const c = list.find((x) => x.name === l.name(`d${n}`))!;
      assert.equal(c.state, "unknown", n);
      assert.match(c.damaged ?? "", problem, n);
      assert.equal(c.cgroup, `hako/${l.name(`d${n}`)}`, n);
      assert.equal(c.pid, before.get(c.name), `${n}: its init, found in its cgroup`);
      assert.equal(c.pids, 1, n);
    }
    const table = l.hako("ps");
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`${l.name("dnull")} +unknown \\(damaged record: state.json holds null`));

    // gc and delete never remove a record whose container has live processes.
    const gc = l.hako("gc");
    assert.equal(gc.code, 0, gc.stderr);
    for (const [n] of DAMAGE) {
      assert.match(gc.stdout, new RegExp(`^kept container ${l.name(`d${n}`)}: its record is damaged`, "m"), gc.stdout);
    }
    assert.doesNotMatch(gc.stdout, /^removed container/m);
    const d = l.hako("delete", l.name("demptied"));
    assert.equal(d.code, 1);
    assert.match(d.stderr, /record is damaged \(state\.json is empty\), and 1 process is still in its cgroup/);
    for (const pid of before.values()) assert.ok(alive(pid), `pid ${pid} runs on`);

    // logs: the log is there whatever the record.
    assert.equal(l.hako("logs", l.name("dtruncated")).stdout, "hello from truncated\n");

    // kill: the init found in its cgroup.
    const k = l.hako("kill", l.name("dobject"));
    assert.equal(k.code, 0, k.stderr);
    await until("the killed one's end", () => !alive(before.get(l.name("dobject"))!));

    // stop: TERM, then KILL to what is in its cgroup; the exit status is unknown, and it says so.
    for (const n of ["array", "null", "noinit", "nospec", "types", "truncated"]) {
      const s = l.hako("stop", "-t", "0.2", l.name(`d${n}`));
      assert.equal(s.code, 0, s.stderr);
      assert.match(
        s.stdout,
        new RegExp(
          `^${l.name(`d${n}`)} ended after hako's SIGKILL; its exit status is unknown \\(its record is damaged`,
        ),
      );
      assert.deepEqual(procsOf(`hako/${l.name(`d${n}`)}`), [], n);
    }
    // delete --force: killed first.
    const f = l.hako("delete", "--force", l.name("demptied"));
    assert.equal(f.code, 0, f.stderr);
    assert.ok(!alive(before.get(l.name("demptied"))!));

    // Now nothing runs in them: delete removes each, cgroup and all; the whole one is untouched.
    for (const [n] of DAMAGE.filter(([x]) => x !== "emptied")) {
      const x = l.hako("delete", l.name(`d${n}`));
      assert.equal(x.code, 0, `${n}: ${x.stderr}`);
      assert.ok(!existsSync(`/sys/fs/cgroup/pids/hako/${l.name(`d${n}`)}`), n);
    }
    assert.deepEqual(l.ps().map((c) => [c.name, c.state]), [[l.name("dok"), "running"]]);
    assert.ok(alive(before.get(l.name("dok"))!));
  },
  { skip },
);

test(
  "gc removes a damaged record once nothing runs in its cgroup; a record that says exited over live processes is kept",
  async () => {
    using l = lab();
    const file = l.spec("g$N", "exec sleep 1000");
    assert.equal(l.hako("start", file, "--each", "N=1,2").code, 0);
    await until("both to run", () => l.ps().every((c) => c.state === "running"));
    const [one, two] = l.ps();
    // One whose record lies: it says exited while its process runs.
    const r = JSON.parse(readFileSync(l.record("g2"), "utf8"));
    writeFileSync(
      l.record("g2"),
      JSON.stringify({ ...r, state: "exited", exit: { code: 0, signal: null, shellCode: 0 } }),
    );
    writeFileSync(l.record("g1"), "null");
    process.kill(one!.pid!, "SIGKILL");
    await until("its end", () => procsOf(`hako/${one!.name}`).length === 0);
    const gc = l.hako("gc");
    assert.match(gc.stdout, new RegExp(`^removed container ${one!.name}$`, "m"), gc.stdout);
    assert.match(
      gc.stdout,
      new RegExp(
        `^kept container ${two!.name}: its record says exited with 0, but 1 process is still in its cgroup`,
        "m",
      ),
    );
    assert.ok(!existsSync(join(l.state, "containers", one!.name)));
    assert.ok(alive(two!.pid!));
    const d = l.hako("delete", two!.name);
    assert.equal(d.code, 1);
    assert.match(
      d.stderr,
      /is exited \(its record says exited with 0, but its init \d+ runs\): stop it first, or delete --force/,
    );
    const forced = l.hako("delete", "--force", two!.name);
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(!alive(two!.pid!));
  },
  { skip },
);

test(
  "processes that nothing ties to a damaged record are left alone: another state directory's container of its name",
  () => {
    using a = lab();
    using b = lab();
    // b runs a container under a's name: its cgroup is hako/NAME, the default a's damaged record points at.
    const name = a.name("twin");
    const s = b.hako("start", "--name", name, b.spec("twin", "exec sleep 1000"));
    assert.equal(s.code, 0, s.stderr);
    const [theirs] = b.ps();
    mkdirSync(join(a.state, "containers", name), { recursive: true });
    writeFileSync(join(a.state, "containers", name, "state.json"), "null");
    const [c] = a.ps();
    assert.equal(c?.state, "unknown");
    assert.equal(c?.pid, null, "not claimed as its init");
    assert.match(c?.note ?? "", /1 process in cgroup hako\/.*, which nothing ties to this container/);
    for (const args of [["stop", "-t", "0", name], ["kill", name], ["delete", "--force", name], ["delete", name]]) {
      const r = a.hako(...args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stdout}`);
      assert.match(r.stderr, /nothing ties the 1 process in cgroup .* to it/, args.join(" "));
    }
    assert.match(a.hako("gc").stdout, new RegExp(`^kept container ${name}: .*nothing ties them to it`, "m"));
    assert.ok(alive(theirs!.pid!), "b's container runs on");
    assert.deepEqual(b.ps().map((x) => x.state), ["running"]);
    assert.equal(b.hako("delete", "--force", name).code, 0);
    const d = a.hako("delete", name);
    assert.deepEqual([d.code, d.stderr], [0, ""]);
  },
  { skip },
);

test("an empty container directory is named as such, and delete removes it so the name can be used", () => {
  using l = lab();
  mkdirSync(join(l.state, "containers", l.name("e")), { recursive: true });
  const file = l.spec("e", "true");
  const s = l.hako("start", file);
  assert.equal(s.code, 1);
  assert.match(
    s.stderr,
    /already exists \(its record is damaged: state\.json is missing\); 'hako delete .*' removes it/,
  );
  assert.match(l.ps()[0]?.damaged ?? "", /state\.json is missing/);
  const d = l.hako("delete", l.name("e"));
  assert.deepEqual([d.code, d.stderr], [0, ""]);
  const again = l.hako("start", file);
  assert.deepEqual([again.code, again.stdout], [0, `${l.name("e")}\n`], again.stderr);
}, { skip });

// ---- honest words after faults --------------------------------------------------------------

test(
  "two hako start of one name with a tarball rootfs: the losers get the name error, not the extraction's",
  async () => {
    using l = lab();
    // Big enough that the extractions would overlap (100 MiB of zeros, sparse on disk here).
    const tree = join(l.dir, "tree");
    assert.equal(spawnSync("cp", ["-a", l.rootfs, tree]).status, 0);
    writeFileSync(join(tree, "zeros"), "");
    truncateSync(join(tree, "zeros"), 100 * 2 ** 20);
    const tarball = join(l.dir, "bb.tar");
    assert.equal(spawnSync("tar", ["-C", tree, "-cf", tarball, "."]).status, 0);
    const img = join(l.dir, "images", "img");
    const file = join(l.dir, "t.ts");
    writeFileSync(
      file,
      `export default ${
        JSON.stringify({ name: l.name("t"), rootfs: { tarball, path: img }, command: ["sleep", "1000"] })
      };\n`,
    );
    for (let round = 0; round < 2; round++) {
      // Every extraction unpacks into a temp directory beside the rootfs: count them as they come.
      const temps = new Set<string>();
      const sampler = setInterval(() => {
        try {
          for (const e of readdirSync(dirname(img))) if (e.includes(".hako-tmp-")) temps.add(e);
        } catch { /* not there yet */ }
      }, 2);
      const results = await Promise.all([1, 2, 3].map(() => l.hakoAsync("start", file).done));
      clearInterval(sampler);
      assert.ok(temps.size <= 1, `only the winner extracts: ${[...temps].join(", ")}`);
      assert.deepEqual(results.map((r) => r.code).sort(), [0, 1, 1], JSON.stringify(results));
      for (const loser of results.filter((r) => r.code === 1)) {
        assert.match(loser.stderr, new RegExp(`a container named ${l.name("t")} already exists`), loser.stderr);
      }
      assert.equal(l.ps().length, 1);
      const d = l.hako("delete", "--force", "--rootfs", l.name("t"));
      assert.equal(d.code, 0, d.stderr);
      assert.ok(!existsSync(img), "extracted again each round");
    }
  },
  { skip },
);

for (const path of PATHS) {
  test(`a supervisor killed right after the start is not a failed start; ps shows it running (${path} spawn)`, () => {
    using l = lab({ path });
    // No PID namespace: the container's command sees its supervisor as its parent, and kills it
    // just after its exec — before or after the supervisor records it, and before it answers.
    const file = l.spec("k$N", "kill -9 $PPID; exec sleep 1000", { namespaces: ["mount", "uts", "ipc"] });
    for (const n of [1, 2, 3]) {
      const s = l.hako("start", file, "--each", `N=${n}`);
      assert.deepEqual([s.code, s.stdout], [0, `${l.name(`k${n}`)}\n`], s.stderr);
      assert.ok(!/ECONNRESET|failed:/.test(s.stderr.replace(/connection failed/, "")), s.stderr);
    }
    const list = l.ps();
    assert.deepEqual(list.map((c) => c.state), ["running", "running", "running"], JSON.stringify(list));
    for (const c of list) assert.ok(alive(c.pid!));
  }, { skip });
}

test("a supervisor killed while it sets a container up: start says so, not a bare connection error", async () => {
  using l = lab();
  const file = l.spec("h", "exec sleep 1000", { hooks: { beforeStart: "sleep 30" } });
  const starter = l.hakoAsync("start", file);
  // Its init forked and set up, held by the beforeStart hook.
  await until(
    "the half-made container",
    () => existsSync(l.record("h")) && readFileSync(l.record("h"), "utf8").includes('"init"'),
  );
  process.kill(l.supervisorPid()!, "SIGKILL");
  const r = await starter.done;
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(
      `^hako start: ${
        l.name("h")
      }: the supervisor's connection failed \\(.*\\) while it set the container up; 'hako gc' removes what it left\n$`,
    ),
  );
  const gc = l.hako("gc");
  assert.match(gc.stdout, new RegExp(`^removed container ${l.name("h")}$`, "m"));
}, { skip });

test("hako start names a bad rootfs field instead of crashing in its path handling", () => {
  using l = lab();
  const cases: Array<[unknown, RegExp]> = [
    [{ builder: "busybox", path: 42 }, /rootfs\.path/],
    [{ tarball: 7, path: "img" }, /rootfs\.tarball/],
    [null, /rootfs/],
    [42, /rootfs/],
  ];
  for (const [i, [rootfs, want]] of cases.entries()) {
    const file = join(l.dir, `bad${i}.ts`);
    writeFileSync(file, `export default ${JSON.stringify({ name: l.name(`b${i}`), rootfs, command: ["true"] })};\n`);
    const r = l.hako("start", file);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, want);
    assert.doesNotMatch(r.stderr, /startsWith|is not a function|TypeError| {4}at /);
  }
  const m = join(l.dir, "badmount.ts");
  writeFileSync(
    m,
    `export default ${
      JSON.stringify({
        name: l.name("m"),
        rootfs: l.rootfs,
        command: ["true"],
        mounts: [{ type: "bind", source: 5, target: "/x" }],
      })
    };\n`,
  );
  const r = l.hako("start", m);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /mounts\[0\]\.source/);
  assert.deepEqual(l.ps(), [], "nothing was reserved");
}, { skip });

test("stop says what ended the container: hako's KILL, its own exit on TERM, or a SIGKILL from elsewhere", async () => {
  using l = lab();
  const file = l.spec(
    "s$N",
    [
      // s1 ignores TERM (PID 1 without a handler); s2 exits 3 on TERM; s3 notes the TERM and goes on.
      `case $N in 2) trap 'exit 3' TERM;; 3) trap 'touch /tmp/term-$N' TERM;; esac`,
      "echo ready > /tmp/ready-$N",
      "while :; do sleep 0.05; done",
    ].join("; "),
  );
  assert.equal(l.hako("start", file, "--each", "N=1,2,3").code, 0);
  await until("all three", () => [1, 2, 3].every((n) => existsSync(join(l.rootfs, `tmp/ready-${n}`))));
  try {
    const s1 = l.hako("stop", "-t", "0.3", l.name("s1"));
    assert.deepEqual([s1.code, s1.stdout], [
      0,
      `${l.name("s1")} killed by hako's SIGKILL, 0.3 s after its SIGTERM (exit 137)\n`,
    ], s1.stderr);
    const s2 = l.hako("stop", "-t", "5", l.name("s2"));
    assert.deepEqual([s2.code, s2.stdout], [0, `${l.name("s2")} exited with 3 on hako's SIGTERM\n`], s2.stderr);
    // s3: something else SIGKILLs it while stop waits after its TERM.
    const pid = l.ps().find((c) => c.name === l.name("s3"))!.pid!;
    const stop = l.hakoAsync("stop", "-t", "30", l.name("s3"));
    await until("hako's TERM", () => existsSync(join(l.rootfs, "tmp/term-3")));
    process.kill(pid, "SIGKILL");
    const s3 = await stop.done;
    assert.deepEqual(
      [s3.code, s3.stdout],
      [0, `${l.name("s3")} killed by SIGKILL, not by hako (hako had sent SIGTERM) (exit 137)\n`],
      s3.stderr,
    );
  } finally {
    for (const f of ["ready-1", "ready-2", "ready-3", "term-3"]) rmSync(join(l.rootfs, "tmp", f), { force: true });
  }
}, { skip });

// ---- outcomes users can act on --------------------------------------------------------------

for (const path of PATHS) {
  test(
    `a container its memory limit killed is oom-killed: run's exit message, ps, --json, state.json, stop (${path} spawn)`,
    async () => {
      using l = lab({ path });
      const limit = { cgroup: { memory: { limit: 32 * 1024 * 1024 } } };
      // busybox has no allocator: a shell string doubles until the limit kills the shell.
      const grow = "x=a; while :; do x=$x$x; done";
      const fg = l.hako("run", l.spec("fg", grow, limit));
      assert.equal(fg.code, 137, fg.stderr);
      assert.match(
        fg.stderr,
        new RegExp(`hako: container ${l.name("fg")} exited \\(137\\): oom-killed: the OOM killer killed 1 process`),
      );

      assert.equal(l.hako("start", l.spec("bg", grow, limit)).code, 0);
      await until("its end", () => l.ps()[0]?.state === "exited");
      const [c] = l.ps();
      assert.deepEqual([c?.exit?.shellCode, c?.oomKilled], [137, 1], JSON.stringify(c));
      assert.match(l.hako("ps", "-a").stdout, new RegExp(`${l.name("bg")} +exited \\(137, oom-killed: 1\\)`));
      assert.equal(JSON.parse(readFileSync(l.record("bg"), "utf8")).oomKilled, 1);

      // Under stop: it outlives hako's TERM (noted, not obeyed), then its memory limit kills it.
      const slow = l.spec(
        "st",
        `trap 'touch /tmp/oom-term' TERM; touch /tmp/oom-go; while [ ! -e /tmp/oom-term ]; do sleep 0.05; done; ${grow}`,
        limit,
      );
      assert.equal(l.hako("start", slow).code, 0);
      try {
        await until("it runs", () => existsSync(join(l.rootfs, "tmp/oom-go")));
        const s = l.hako("stop", "-t", "30", l.name("st"));
        assert.equal(s.code, 0, s.stderr);
        assert.match(
          s.stdout,
          new RegExp(`^${l.name("st")} oom-killed: its memory limit killed it \\(1 OOM kill\\(s\\)\\)`),
        );
      } finally {
        for (const f of ["oom-go", "oom-term"]) rmSync(join(l.rootfs, "tmp", f), { force: true });
      }
    },
    { skip },
  );
}

test("ps counts what pids.max counts, zombies included, and says when the limit refused forks", async () => {
  using l = lab();
  // A subshell forks until the limit refuses; its children, orphaned, end as zombies of PID 1
  // (sleep, which never reaps).
  const file = l.spec(
    "z",
    "(i=0; while [ $i -lt 60 ]; do sleep 1 & i=$((i+1)); done) 2>/dev/null; exec sleep 1000",
    { cgroup: { pids: { max: 50 } } },
  );
  assert.equal(l.hako("start", file).code, 0);
  const cg = `hako/${l.name("z")}`;
  await until("the zombies", () => {
    try {
      return Number(readFileSync(`/sys/fs/cgroup/pids/${cg}/pids.current`, "utf8")) > 40 &&
        procsOf(cg).length === 1;
    } catch {
      return false;
    }
  });
  const [c] = l.ps();
  const current = Number(readFileSync(`/sys/fs/cgroup/pids/${cg}/pids.current`, "utf8"));
  assert.equal(c?.pids, current, "pids.current, not the one live process");
  assert.ok((c?.failedForks ?? 0) >= 1, JSON.stringify(c));
  assert.match(l.hako("ps").stdout, new RegExp(`${l.name("z")} +running \\(pids limit reached: \\d+\\)`));
  l.hako("stop", "-t", "0", l.name("z"));
  const [after] = l.ps();
  assert.ok((after?.failedForks ?? 0) >= 1, "recorded when it ended");
  assert.match(l.hako("ps", "-a").stdout, /exited \(137, pids limit reached: \d+\)/);
}, { skip });
