/**
 * The lifecycle commands end to end through `bin/hako`: start (through the shared supervisor),
 * ps, logs, kill, stop, delete, gc, run --rootfs, and the supervisor's death. Each test has its
 * own state directory (HAKO_STATE_DIR) and kills its supervisor at the end.
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { assert, assertEquals, needsRoot, tempDir, test, until } from "./_harness.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { parseEach } from "../src/cli/_format.ts";
import { parseStartArgs } from "../src/cli/start.ts";
import { parseStopArgs } from "../src/cli/stop.ts";
import { lastLines } from "../src/cli/logs.ts";
import { absolutizeSpec } from "../src/cli/start.ts";
import { UsageError } from "../src/cli/_args.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const HAKO = join(ROOT, "bin/hako");
const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A state directory, a busybox rootfs and a spec dir; kills the supervisor and cleans up on dispose. */
function lab() {
  const dir = tempDir("hako-life-");
  chmodSync(dir.path, 0o755); // a user-namespaced root (an unmapped uid outside) must reach the rootfs
  const state = join(dir.path, "state");
  const rootfs = join(dir.path, "rootfs");
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    HAKO_STATE_DIR: state,
    NO_COLOR: "1",
  };
  delete env.HAKO_LOADER;
  const hako = (...args: string[]): Result => {
    const r = spawnSync(HAKO, args, { env, encoding: "utf8", timeout: 60_000 });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  /** Writes a spec module; `body` is the object literal's inside, `env` in scope. */
  const spec = (file: string, name: string, command: string, extra = ""): string => {
    const path = join(dir.path, file);
    writeFileSync(
      path,
      `export default (env: Record<string, string | undefined>) => ({
  name: ${JSON.stringify(name)}.replace("$N", env.N ?? ""),
  rootfs: { builder: "busybox", path: ${JSON.stringify(rootfs)} },
  command: ["sh", "-c", ${JSON.stringify(command)}],
  cgroup: { name: "hako-test-" + ${JSON.stringify(name)}.replace("$N", env.N ?? ""), pids: { max: 32 } },
  ${extra}
});\n`,
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
  const ps = (): Array<{ name: string; state: string; pid: number | null; exit?: { shellCode: number } | null }> =>
    JSON.parse(hako("ps", "-a", "--json").stdout);
  return {
    dir: dir.path,
    state,
    rootfs,
    env,
    hako,
    spec,
    ps,
    supervisorPid,
    [Symbol.dispose]() {
      try {
        for (const c of ps()) hako("delete", "--force", c.name);
        hako("gc");
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

// ---- pure parts -----------------------------------------------------------------------------

test("--each takes an inclusive range or a list; start's arguments", () => {
  assertEquals(parseEach("PORT=10001..10003"), { name: "PORT", values: ["10001", "10002", "10003"] });
  assertEquals(parseEach("X=a,b"), { name: "X", values: ["a", "b"] });
  for (const bad of ["PORT", "PORT=3..1", "=1..2"]) {
    let thrown = false;
    try {
      parseEach(bad);
    } catch (e) {
      thrown = e instanceof UsageError;
    }
    assert(thrown, `--each ${bad} is refused`);
  }
  const a = parseStartArgs(["web.ts", "--each", "PORT=1..2", "--", "x"]);
  assertEquals([a.files, a.args, a.each?.values], [["web.ts"], ["x"], ["1", "2"]]);
  assertEquals(parseStopArgs(["-t", "1.5", "a", "b"]).timeoutMs, 1500);
  assertEquals(lastLines("a\nb\nc\n", 2), "b\nc\n");
  const s = absolutizeSpec({ name: "x", command: "true", rootfs: { tarball: "img.tar", path: "./r" } }, "/srv");
  assertEquals(s.rootfs, { tarball: "/srv/img.tar", path: "/srv/r" });
});

// ---- end to end -----------------------------------------------------------------------------

test("hako start/ps/logs/stop/delete: a daemonized container, its log, exit status and clean-up", async () => {
  using l = lab();
  const file = l.spec("a.ts", "life-a", "echo hello from a; echo to stderr >&2; exec sleep 1000");
  const r = l.hako("start", file);
  assertEquals([r.code, r.stdout], [0, "life-a\n"], r.stderr);
  const [c] = l.ps();
  assert(c && c.state === "running" && c.pid, `ps: ${JSON.stringify(c)}`);
  // Its own PID namespace and cgroup, seen from outside.
  assert(readlinkSync(`/proc/${c.pid}/ns/pid`) !== readlinkSync("/proc/self/ns/pid"), "a new pid namespace");
  const procs = readFileSync("/sys/fs/cgroup/pids/hako-test-life-a/cgroup.procs", "utf8");
  assert(procs.split("\n").includes(String(c.pid)), "the init is in its cgroup");
  // Its parent is the supervisor, not the CLI (which has exited).
  const ppid = readFileSync(`/proc/${c.pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1];
  assertEquals(Number(ppid), l.supervisorPid());
  await until("the log", () => l.hako("logs", "life-a").stderr.includes("to stderr"));
  // Its stdout on logs' stdout, its stderr on logs' stderr (as docker logs).
  const logged = l.hako("logs", "life-a");
  assertEquals([logged.stdout, logged.stderr], ["hello from a\n", "to stderr\n"]);
  assert(l.hako("ps").stdout.includes("life-a"), "the table lists it");
  // sleep as PID 1 ignores SIGTERM: stop escalates to SIGKILL.
  const s = l.hako("stop", "--timeout", "0.3", "life-a");
  assertEquals(
    [s.code, s.stdout],
    [0, "life-a killed by hako's SIGKILL, 0.3 s after its SIGTERM (exit 137)\n"],
    s.stderr,
  );
  const [after] = l.ps();
  assertEquals([after?.state, after?.exit?.shellCode], ["exited", 137]);
  assert(!existsSync("/sys/fs/cgroup/pids/hako-test-life-a"), "the supervisor removed the cgroup");
  // kill of an exited container is an error; delete clears it.
  const k = l.hako("kill", "life-a");
  assert(k.code === 1 && k.stderr.includes("not running (exited with 137)"), k.stderr);
  assertEquals(l.hako("delete", "life-a").code, 0);
  assertEquals(l.ps(), []);
}, { skip });

test("hako start --each starts many from one call; exit codes are recorded", async () => {
  using l = lab();
  const file = l.spec("n.ts", "life-n$N", "exit $((N + 0))", "env: { N: env.N ?? '0' },");
  const r = l.hako("start", file, "--each", "N=1..3");
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.trim().split("\n").sort(), ["life-n1", "life-n2", "life-n3"]);
  await until("all three to exit", () => l.ps().every((c) => c.state === "exited"));
  assertEquals(l.ps().map((c) => c.exit?.shellCode), [1, 2, 3]);
  // A spec that ignores the --each variable would name every container alike.
  const same = l.spec("same.ts", "life-same", "true");
  const d = l.hako("start", same, "--each", "N=1..2");
  assert(d.code === 2 && d.stderr.includes("two containers would be named life-same"), d.stderr);
}, { skip });

test("two hako start of one name at the same moment: exactly one wins", async () => {
  using l = lab();
  const file = l.spec("d.ts", "life-dup", "exec sleep 1000");
  const run = () =>
    new Promise<Result>((resolve) => {
      const p = spawn(HAKO, ["start", file], { env: l.env });
      let stdout = "", stderr = "";
      p.stdout.on("data", (d) => stdout += d);
      p.stderr.on("data", (d) => stderr += d);
      p.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  const results = await Promise.all([run(), run()]);
  const codes = results.map((r) => r.code).sort();
  assertEquals(codes, [0, 1], JSON.stringify(results));
  const loser = results.find((r) => r.code === 1)!;
  assert(loser.stderr.includes("a container named life-dup already exists"), loser.stderr);
  assertEquals(l.ps().length, 1);
}, { skip });

test("unknown names and bad signals are clear errors", () => {
  using l = lab();
  for (const args of [["kill", "nope"], ["stop", "nope"], ["delete", "nope"], ["logs", "nope"]]) {
    const r = l.hako(...args);
    assert(r.code === 1 && r.stderr.includes("no container named nope"), `${args.join(" ")}: ${r.stderr}`);
  }
  const b = l.hako("kill", "nope", "SIGNOPE");
  assert(b.code === 2 && b.stderr.includes("SIGNOPE"), b.stderr);
}, { skip: needsRoot });

test("the supervisor killed -9: containers run on, ps/stop/delete work from disk, a new one adopts", async () => {
  using l = lab();
  const file = l.spec("s.ts", "life-s$N", "exec sleep 1000");
  assertEquals(l.hako("start", file, "--each", "N=1..2").code, 0);
  const sup = l.supervisorPid()!;
  const [c1] = l.ps();
  process.kill(sup, "SIGKILL");
  await until(
    "the supervisor's death",
    () => !existsSync(`/proc/${sup}`) || readFileSync(`/proc/${sup}/stat`, "utf8").includes(") Z"),
  );
  await new Promise((r) => setTimeout(r, 100));
  assert(existsSync(`/proc/${c1!.pid}`), "the container survived its supervisor");
  assertEquals(l.ps().map((c) => c.state), ["running", "running"]);
  const s = l.hako("stop", "-t", "0.2", "life-s1");
  assertEquals(
    [s.code, s.stdout],
    [0, "life-s1 ended after hako's SIGKILL; its exit status is unknown (no supervisor saw it end)\n"],
    s.stderr,
  );
  const [first] = l.ps();
  assertEquals([first?.state, first?.exit], ["exited", null], "no supervisor saw the status");
  assert(!existsSync("/sys/fs/cgroup/pids/hako-test-life-s1"), "its cgroup is gone");
  // A new supervisor (started by the next start) adopts life-s2 and records its end.
  const other = l.spec("t.ts", "life-t", "exec sleep 1000");
  assertEquals(l.hako("start", other).code, 0);
  assert(l.supervisorPid() !== sup, "a new supervisor");
  assertEquals(l.hako("kill", "life-s2").code, 0);
  await until("the adopted container's end", () => l.ps().find((c) => c.name === "life-s2")?.state === "exited");
  assert(!existsSync("/sys/fs/cgroup/pids/hako-test-life-s2"), "the adopter removed its cgroup");
  assertEquals(l.hako("delete", "--force", "life-s1", "life-s2", "life-t").code, 0);
}, { skip });

test("hako gc after a crash mid-setup removes the half-made container's process, cgroup and state", async () => {
  using l = lab();
  // The beforeStart hook holds the container in its setup while the supervisor is killed.
  const file = l.spec("g.ts", "life-g", "exec sleep 1000", "hooks: { beforeStart: 'sleep 30' },");
  const starter = spawn(HAKO, ["start", file], { env: l.env, stdio: "ignore" });
  const closed = new Promise((r) => starter.on("close", r));
  await until("the half-made container", () => {
    const c = l.ps()[0];
    return c?.state === "creating" && existsSync("/sys/fs/cgroup/pids/hako-test-life-g");
  });
  process.kill(l.supervisorPid()!, "SIGKILL");
  await closed;
  assertEquals(l.ps()[0]?.state, "dead");
  const r = l.hako("gc");
  assert(r.stdout.includes("removed container life-g"), r.stdout + r.stderr);
  assertEquals(l.ps(), []);
  assert(!existsSync("/sys/fs/cgroup/pids/hako-test-life-g"), "the cgroup is gone");
  assertEquals(l.hako("gc").stdout, "nothing to collect\n");
}, { skip });

test("hako exec and shell join a daemonized container: hostname, uid map, PID namespace, exit code", () => {
  using l = lab();
  const file = l.spec(
    "x.ts",
    "life-x",
    "exec sleep 1000",
    `namespaces: ["pid", "uts", "ipc", "mount", "user"], hostname: "inside-x",
  idMap: { uid: { inside: 0, outside: 300000, size: 65536 }, gid: { inside: 0, outside: 300000, size: 65536 } },`,
  );
  const st = l.hako("start", file);
  assertEquals(st.code, 0, st.stderr);
  const [c] = l.ps();
  const r = l.hako("exec", "life-x", "--", "sh", "-c", "hostname; cat /proc/self/uid_map; readlink /proc/self/ns/pid");
  assertEquals(r.code, 0, r.stderr);
  const [host, map, ns] = r.stdout.trim().split("\n").map((x) => x.trim().replace(/\s+/g, " "));
  assertEquals([host, map, ns], ["inside-x", "0 300000 65536", readlinkSync(`/proc/${c!.pid}/ns/pid`)]);
  assertEquals(l.hako("exec", "life-x", "sh", "-c", "exit 5").code, 5);
  assertEquals(l.hako("exec", "life-x", "/nonexistent").code, 127);
  assertEquals(l.hako("exec", "life-x", "/etc/passwd").code, 126);
  const a = spawnSync(HAKO, ["shell", "life-x"], { env: l.env, input: "echo $((6*7)); exit 3\n", encoding: "utf8" });
  assertEquals([a.status, a.stdout], [3, "42\n"], a.stderr);
  const n = l.hako("exec", "nope", "true");
  assert(n.code === 125 && n.stderr.includes("no container named nope"), n.stderr);
}, { skip });

test("hako run --rootfs: a quick container; its exit code and a signal's 128+N come back", () => {
  using l = lab();
  buildRootfs(l.rootfs, { builder: "busybox" });
  assertEquals(l.hako("run", "--rootfs", l.rootfs, "--", "sh", "-c", "exit 7").code, 7);
  // docker's codes when the program cannot run: 127 not found, 126 not executable, 125 hako failed.
  assertEquals(l.hako("run", "--rootfs", l.rootfs, "--", "/nonexistent").code, 127);
  assertEquals(l.hako("run", "--rootfs", l.rootfs, "--", "/etc/passwd").code, 126);
  assertEquals(l.hako("run", "--rootfs", `${l.rootfs}-missing`, "--", "true").code, 125);
  // PID 1 of a PID namespace ignores a SIGKILL from inside; a child killed by one is reported as 137.
  assertEquals(l.hako("run", "--rootfs", l.rootfs, "--", "sh", "-c", `sh -c 'kill -9 $$'; exit $?`).code, 137);
  const n = l.hako("run", "--rootfs", l.rootfs, "--name", "quick1", "hostname");
  assertEquals([n.code, n.stdout], [0, "quick1\n"]);
  assertEquals(l.ps(), [], "a foreground container's record goes when it ends");
}, { skip });
