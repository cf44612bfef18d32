/**
 * containerd drives hako as its runc: each test starts a `containerd` of its own (private root,
 * state and socket under a temp dir, the CRI plugin off), imports an OCI archive of a busybox image
 * built here (offline: the layer is a tar of hako's busybox rootfs), and runs `ctr … --runc-binary
 * bin/hako-runc` — containerd-shim-runc-v2 calling hako with runc's command line (`--root`, `--log
 * FILE --log-format json`, create/start/state/exec/kill/ps/pause/resume/update/delete) — then the
 * same with /usr/sbin/runc in the same test, and compares what the client saw.
 *
 * Under Deno the runtime is `bin/hako-runc`, under Bun a launcher running `bun src/cli/main.ts
 * oci`; the forked child is a launcher setting `HAKO_NATIVE_SPAWN=0` (the shim passes the runtime
 * containerd's environment, not the test's). Everything is named `hako-test-ctr-…`; containerd,
 * its shims, their mounts and cgroups are removed in `finally`, even when a test fails.
 */
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { deepEqual, equal, match } from "node:assert/strict";
import { isRoot, runtime, tempDir, test } from "./_harness.ts";
import { has, IMAGE, imageArchive } from "./_oci_lab.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { existingCgroupDirs } from "../src/container/_cgroup.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RUNC = "/usr/sbin/runc";

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : !findStaticBusybox()
  ? "needs a static busybox (apt-get install busybox-static)"
  : !has("containerd", ["--version"]) || !has("ctr", ["--version"])
  ? "containerd is not installed (apt-get install containerd; tests/setup.sh installs it as root when this file runs)"
  : !has(RUNC)
  ? "runc is not installed (apt-get install runc): the results are compared with its"
  : false;
const suffix = () => Math.random().toString(36).slice(2, 8);
const sleep = (s: number) => spawnSync("sleep", [String(s)]);

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command and waits for it (at most `timeoutS`). Its stdout and stderr are files, not
 * pipes: a process it leaves behind must not keep the test waiting.
 */
function runIt(cmd: string, args: readonly string[], timeoutS = 60): Run {
  using io = tempDir("hako-test-ctr-io-");
  const out = openSync(join(io.path, "out"), "w+"), err = openSync(join(io.path, "err"), "w+");
  try {
    const r = spawnSync(cmd, args, { stdio: ["ignore", out, err], timeout: timeoutS * 1000 });
    return {
      status: r.status ?? -1,
      stdout: readFileSync(join(io.path, "out"), "utf8"),
      stderr: readFileSync(join(io.path, "err"), "utf8"),
    };
  } finally {
    closeSync(out);
    closeSync(err);
  }
}

/** The OCI runtimes compared: runc, hako on the native child, hako on the forked child. */
function runtimes(dir: string): Array<{ name: string; path: string }> {
  let hako = join(ROOT, "bin/hako-runc");
  if (runtime === "bun") {
    hako = join(dir, "hako-runc-bun");
    writeFileSync(
      hako,
      `#!/bin/sh\nexec "${join(ROOT, "node_modules/.bin/bun")}" "${join(ROOT, "src/cli/main.ts")}" oci "$@"\n`,
    );
    chmodSync(hako, 0o755);
  }
  const forked = join(dir, "hako-runc-forked");
  writeFileSync(forked, `#!/bin/sh\nHAKO_NATIVE_SPAWN=0 exec "${hako}" "$@"\n`);
  chmodSync(forked, 0o755);
  return [{ name: "runc", path: RUNC }, { name: "hako", path: hako }, { name: "hako (forked)", path: forked }];
}

/** A containerd of the test's own and its `ctr`. */
interface Containerd {
  readonly dir: string;
  readonly ns: string;
  /** `ctr --address … --namespace … ARGS`. */
  ctr(args: readonly string[], timeoutS?: number): Run;
  /** The `ctr` command line, for a client run in the background. */
  readonly ctrArgs: readonly string[];
}

/** Mount points under `dir` (deepest first). */
function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m === dir || m.startsWith(dir + "/")).sort((a, b) => b.length - a.length);
}

/** Processes whose command line holds `needle` (this test's containerd and its shims). */
function processesWith(needle: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, "utf8").includes(needle)) pids.push(Number(p));
    } catch { /* gone */ }
  }
  return pids;
}

/**
 * Starts a containerd under a temp dir, imports the image, runs `fn`, and removes everything:
 * its containers (killed), containerd, its shims, their mounts and cgroups, the dir.
 */
async function withContainerd(fn: (c: Containerd) => Promise<void> | void): Promise<void> {
  using tmp = tempDir("hako-test-ctr-");
  const dir = tmp.path;
  const ns = `hako-test-ctr-${suffix()}`;
  const address = join(dir, "containerd.sock");
  writeFileSync(
    join(dir, "config.toml"),
    [
      "version = 2",
      // (only what ctr run needs: no CRI, no other snapshotters, no tracing)
      `disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", ` +
      `"io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", ` +
      `"io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]`,
      "",
    ].join("\n"),
  );
  const log = openSync(join(dir, "containerd.log"), "w");
  const daemon = spawn("containerd", [
    "--config",
    join(dir, "config.toml"),
    "--root",
    join(dir, "root"),
    "--state",
    join(dir, "state"),
    "--address",
    address,
  ], { stdio: ["ignore", log, log], detached: true });
  closeSync(log);
  const ctrArgs = ["ctr", "--address", address, "--namespace", ns];
  const c: Containerd = {
    dir,
    ns,
    ctrArgs,
    ctr: (args, timeoutS) => runIt("ctr", [...ctrArgs.slice(1), ...args], timeoutS),
  };
  try {
    for (let i = 0; i < 100 && c.ctr(["version"], 5).status !== 0; i++) sleep(0.1);
    const imp = c.ctr(["image", "import", imageArchive(dir)]);
    equal(imp.status, 0, imp.stderr);
    await fn(c);
  } finally {
    // every container: its task killed and deleted, then the container
    for (const id of c.ctr(["container", "list", "-q"], 30).stdout.split("\n").filter(Boolean)) {
      c.ctr(["task", "kill", "-s", "SIGKILL", id], 30);
      for (let i = 0; i < 20 && c.ctr(["task", "delete", id], 30).status !== 0; i++) sleep(0.1);
      c.ctr(["task", "delete", "-f", id], 30);
      c.ctr(["container", "delete", id], 30);
    }
    daemon.kill("SIGTERM");
    for (let i = 0; i < 50 && daemon.exitCode === null && daemon.signalCode === null; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill("SIGKILL");
    // (a shim outlives a stopped containerd: those of this test's socket go)
    for (const pid of processesWith(address)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    for (const m of mountsUnder(dir)) spawnSync("umount", ["-l", m]);
    // containerd's cgroups for this namespace (cgroupsPath /NS/ID) in every hierarchy, deepest first
    for (const h of readdirSync("/sys/fs/cgroup")) {
      const top = join("/sys/fs/cgroup", h, ns);
      if (!existsSync(top)) continue;
      for (const sub of readdirSync(top)) {
        try {
          if (statSync(join(top, sub)).isDirectory()) rmdirSync(join(top, sub));
        } catch { /* busy */ }
      }
      try {
        rmdirSync(top);
      } catch { /* busy */ }
    }
  }
}

/** `ctr run --rm` options shared by every run: its runc and that runc's state dir. */
function runcOpts(c: Containerd, r: { path: string }, i: number): string[] {
  // (ctr's IO FIFOs in the test's dir too: a ctr killed by a failing test leaves them else)
  return ["--runc-binary", r.path, "--runc-root", join(c.dir, `runc-root-${i}`), "--fifo-dir", join(c.dir, "fifo")];
}

test("ctr run --rm gives hako's output and exit status as runc's, and leaves nothing behind", async () => {
  await withContainerd((c) => {
    const results = runtimes(c.dir).map((r, i) => {
      const id = `run-${i}`;
      const res = c.ctr([
        "run",
        "--rm",
        ...runcOpts(c, r, i),
        "--env",
        "FOO=bar",
        IMAGE,
        id,
        "sh",
        "-c",
        "echo out; echo err >&2; id; echo $FOO; hostname; cat /proc/self/status | grep -E '^(NoNewPrivs|Seccomp):'; exit 3",
      ]);
      // --rm: the container, its task and the runtime's state are gone
      deepEqual(c.ctr(["container", "list", "-q"]).stdout, "", `${r.name}: --rm left the container`);
      deepEqual(readdirSync(join(c.dir, `runc-root-${i}`, c.ns)), [], `${r.name}: --rm left the runtime's state`);
      deepEqual(existingCgroupDirs(`${c.ns}/${id}`), [], `${r.name}: --rm left the cgroup`);
      return { name: r.name, status: res.status, stdout: res.stdout, stderr: res.stderr };
    });
    const [runc, ...hako] = results;
    equal(runc!.status, 3, runc!.stderr);
    match(runc!.stdout, /^out\nuid=0\(root\) gid=0\(root\)/);
    for (const h of hako) {
      equal(h.status, runc!.status, `${h.name}: ${h.stderr}`);
      // (the hostname: ctr's spec names none, and runc leaves the new UTS namespace the host's)
      equal(h.stdout, runc!.stdout, JSON.stringify(results));
      equal(h.stderr, runc!.stderr, h.name);
    }
  });
}, { skip });

test(
  "ctr run --privileged (containerd's WithPrivileged: kind's and docker-in-docker's nodes): hako as runc",
  async () => {
    await withContainerd((c) => {
      const script = "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls -l /dev/ptmx | cut -c1; " +
        "awk '$5 == \"/sys\" {print $5, $6}' /proc/self/mountinfo";
      const results = runtimes(c.dir).map((r, i) => {
        const res = c.ctr([
          "run",
          "--rm",
          "--privileged",
          ...runcOpts(c, r, i),
          IMAGE,
          `priv-${i}`,
          "sh",
          "-c",
          script,
        ]);
        return { name: r.name, status: res.status, stdout: res.stdout, stderr: res.stderr };
      });
      const [runc, ...hako] = results;
      equal(runc!.status, 0, runc!.stderr);
      // (ctr's spec has no /sys/fs/cgroup mount: runc leaves sysfs's empty directory there, hako makes its own view)
      match(runc!.stdout, /^CapEff:\t[0-9a-f]{16}\nSeccomp:\t0\nl\n\/sys rw,[^\n]*\n$/);
      for (const h of hako) {
        equal(h.status, 0, `${h.name}: ${h.stderr}`);
        equal(h.stdout, runc!.stdout, h.name);
      }
    });
  },
  { skip },
);

test("ctr run --tty: the task's terminal is a pty of its own, as with runc", async () => {
  await withContainerd((c) => {
    const out = runtimes(c.dir).map((r, i) => {
      // (ctr puts its own terminal in raw mode: script(1) gives it one)
      const cmd = [
        ...c.ctrArgs,
        "run",
        "--rm",
        "-t",
        ...runcOpts(c, r, i),
        IMAGE,
        `tty-${i}`,
        "sh",
        "-c",
        "'tty; exit 5'",
      ];
      const res = runIt("script", ["-qec", cmd.join(" "), "/dev/null"], 60);
      return { name: r.name, ...res };
    });
    const [runc, ...hako] = out;
    equal(runc!.status, 5, runc!.stderr);
    match(runc!.stdout, /\/dev\/pts\/0/);
    for (const h of hako) {
      equal(h.status, 5, `${h.name}: ${h.stdout} ${h.stderr}`);
      match(h.stdout, /\/dev\/pts\/0/, h.name);
    }
  });
}, { skip });

/** Waits until `ctr task ls` shows the task with `status`. */
function waitTask(c: Containerd, id: string, status: string): void {
  const re = new RegExp(`^${id}\\s+\\d+\\s+${status}\\s*$`, "m");
  for (let i = 0; i < 100 && !re.test(c.ctr(["task", "ls"]).stdout); i++) sleep(0.1);
  match(c.ctr(["task", "ls"]).stdout, re);
}

test("ctr run -d, task exec, task ps, task pause/resume, task kill (of a paused task too): hako as runc", async () => {
  await withContainerd(async (c) => {
    const seen: Record<string, unknown>[] = [];
    for (const [i, r] of runtimes(c.dir).entries()) {
      const id = `d-${i}`;
      let res = c.ctr([
        "run",
        "-d",
        ...runcOpts(c, r, i),
        IMAGE,
        id,
        "sleep",
        "600",
      ]);
      equal(res.status, 0, `${r.name}: ${res.stderr}`);
      waitTask(c, id, "RUNNING");
      // exec: its output and status; in the container's namespaces (its hostname)
      const exec = c.ctr([
        "task",
        "exec",
        "--fifo-dir",
        join(c.dir, "fifo"),
        "--exec-id",
        `e-${i}`,
        id,
        "sh",
        "-c",
        "hostname; echo $PATH; exit 4",
      ]);
      // ps: the init and nothing else once the exec ended
      const ps = c.ctr(["task", "ps", id]).stdout.trim().split("\n").slice(1).map((l) => l.split(/\s+/)[0]);
      // pause: every process frozen in the freezer (v1 freezer.state here), resume thaws
      const freezerState = () => {
        const f = [`/sys/fs/cgroup/freezer/${c.ns}/${id}/freezer.state`].find((p) => existsSync(p));
        return f ? readFileSync(f, "utf8").trim() : "(no freezer)";
      };
      const stat = () => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[0];
      const pid = Number(/^\S+\s+(\d+)/m.exec(c.ctr(["task", "ls"]).stdout.split("\n")[1]!)![1]);
      res = c.ctr(["task", "pause", id]);
      equal(res.status, 0, `${r.name}: ${res.stderr}`);
      waitTask(c, id, "PAUSED");
      const paused = [freezerState(), stat()];
      res = c.ctr(["task", "resume", id]);
      equal(res.status, 0, `${r.name}: ${res.stderr}`);
      waitTask(c, id, "RUNNING");
      const resumed = [freezerState(), stat()];
      // paused again, then SIGKILL: it dies all the same (thawed after the signal, as runc does)
      equal(c.ctr(["task", "pause", id]).status, 0);
      waitTask(c, id, "PAUSED");
      // kill SIGKILL: the task stops with 137
      res = c.ctr(["task", "kill", "-s", "SIGKILL", id]);
      equal(res.status, 0, `${r.name}: ${res.stderr}`);
      waitTask(c, id, "STOPPED");
      res = c.ctr(["task", "delete", id]);
      equal(res.status, 0, `${r.name}: ${res.stderr}`);
      equal(c.ctr(["container", "delete", id]).status, 0);
      deepEqual(readdirSync(join(c.dir, `runc-root-${i}`, c.ns)), [], `${r.name}: delete left the runtime's state`);
      equal(existsSync(`/sys/fs/cgroup/freezer/${c.ns}/${id}`), false, `${r.name}: delete left the freezer cgroup`);
      seen.push({
        exec: [exec.status, exec.stdout, exec.stderr],
        ps: ps.length,
        paused,
        resumed,
        deleted: res.stdout,
      });

      // a foreground `ctr run` sees the status SIGTERM's trap exits with
      const fg = spawn(c.ctrArgs[0]!, [
        ...c.ctrArgs.slice(1),
        "run",
        "--rm",
        ...runcOpts(c, r, i),
        IMAGE,
        `fg-${i}`,
        "sh",
        "-c",
        "trap 'exit 7' TERM; while :; do sleep 0.1; done",
      ], { stdio: "ignore" });
      const exited = new Promise<number | null>((res) => fg.on("exit", (code) => res(code)));
      try {
        waitTask(c, `fg-${i}`, "RUNNING");
        equal(c.ctr(["task", "kill", "-s", "SIGTERM", `fg-${i}`]).status, 0);
        equal(await exited, 7, r.name);
      } finally {
        fg.kill("SIGKILL");
      }
    }
    // (the hostname: the host's, which a UTS namespace starts with and runc leaves)
    deepEqual(seen[0]!.exec, [4, `${hostname()}\n${String((seen[0]!.exec as string[])[1]).split("\n")[1]}\n`, ""]);
    equal(seen[0]!.ps, 1);
    deepEqual(seen[0]!.paused, ["FROZEN", "D"]); // (a frozen task sleeps uninterruptibly)
    deepEqual(seen[0]!.resumed, ["THAWED", "S"]);
    for (const s of seen.slice(1)) deepEqual(s, seen[0]);
  });
}, { skip });
