/**
 * docker's habits on hako's container commands, end to end with real containers: `run` with
 * docker's flags (foreground and `-d`, `--rm`), `ps -a -q --filter`, `inspect`, `wait`, `kill -s`,
 * `rm -f`, `update`. The CLI is the one of the runtime that runs the test (bin/hako under Deno, `bun
 * src/cli/main.ts` under Bun), on the native path and the forked one (HAKO_NATIVE_SPAWN=0). Each
 * test has its own state directory and busybox rootfs, and its containers unique names.
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { deepEqual, doesNotMatch, equal, match, ok } from "node:assert/strict";
import { needsRoot, test } from "./_harness.ts";
import { CLI, cliLab, PATHS, type SpawnPath, until } from "./_cli_lab.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

/** A state directory and a busybox rootfs; deletes its containers and kills its supervisor on dispose. */
function lab(path: SpawnPath) {
  return cliLab(path, { tag: "dk", prefix: "hako-docker-" });
}

for (const path of PATHS) {
  test(`hako run (${path}): docker's -e, --env-file, -v, -u, -w, --hostname, --read-only reach the command`, () => {
    using l = lab(path);
    const vol = join(l.dir, "vol");
    mkdirSync(vol);
    chmodSync(vol, 0o777);
    writeFileSync(join(vol, "in"), "from the host\n");
    writeFileSync(join(l.dir, "vars"), "# docker's format\nC=3\nA=from-file\n");
    const r = l.hako(
      ...["run", "--rm", "-e", "A=1", "-eB=2", "--env-file", "vars", "-e", "FROM_CALLER"],
      ...["-v", "./vol:/data", "-v", `${vol}:/ro:ro`, "-u", "1000:1000", "-w", "/data", "--hostname", "box"],
      ...["--read-only", "--name", l.name("fg"), "--rootfs", "rootfs", "--"],
      ...[
        "sh",
        "-c",
        'echo "$A $B $C $FROM_CALLER"; id -u; id -g; pwd; hostname; cat in; echo w > out; touch /x || echo ro; touch /ro/y || echo ro2; exit 5',
      ],
    );
    // (FROM_CALLER is not in the caller's environment: left out, as docker)
    equal(r.code, 5, r.stderr);
    equal(r.stdout, "1 2 3 \n1000\n1000\n/data\nbox\nfrom the host\nro\nro2\n");
    equal(readFileSync(join(vol, "out"), "utf8"), "w\n", "written through the bind mount");
    equal(l.hako("ps", "-a", "-q").stdout, "", "a foreground quick run leaves no record");
  }, { skip });

  test(
    `hako run (${path}): --device puts the host's node in the container's /dev, allowed as asked; --domainname`,
    () => {
      using l = lab(path);
      const r = l.hako(
        ...[
          "run",
          "--rm",
          "--device",
          "/dev/fuse",
          "--device",
          "/dev/loop-control:/dev/lc:r",
          "--domainname",
          "ex.org",
        ],
        ...["--name", l.name("dev"), "--rootfs", "rootfs", "--"],
        ...[
          "sh",
          "-c",
          "stat -c '%n %t:%T %a' /dev/fuse /dev/lc; true < /dev/fuse && echo fuse-r; true > /dev/lc || echo lc-not-w; cat /proc/sys/kernel/domainname",
        ],
      );
      equal(r.code, 0, r.stderr);
      equal(r.stdout, "/dev/fuse a:e5 600\n/dev/lc a:ed 600\nfuse-r\nlc-not-w\nex.org\n");
      const bad = l.hako("run", "--device", "/etc/passwd", "--rootfs", "rootfs", "--", "true");
      equal(bad.code, 2, bad.stderr);
      match(bad.stderr, /--device "\/etc\/passwd" is not a device node/);
    },
    {
      skip: skip ||
        (["/dev/fuse", "/dev/loop-control"].every((p) => existsSync(p))
          ? false
          : "needs the host's /dev/fuse and /dev/loop-control"),
    },
  );

  test(`hako run (${path}): --sysctl sets the container's own; a host-wide one is refused naming the flag`, () => {
    using l = lab(path);
    const r = l.hako(
      ...["run", "--rm", "--sysctl", "net.ipv4.ping_group_range=0 0", "--sysctl", "kernel.shmmni=1234"],
      ...["--name", l.name("sysctl"), "--rootfs", "rootfs", "--"],
      ...["cat", "/proc/sys/net/ipv4/ping_group_range", "/proc/sys/kernel/shmmni"],
    );
    equal(r.code, 0, r.stderr);
    equal(r.stdout, "0\t0\n1234\n");
    const bad = l.hako("run", "--sysctl", "kernel.core_pattern=|/x", "--rootfs", "rootfs", "--", "true");
    equal(bad.code !== 0, true, bad.stderr);
    match(bad.stderr, /sysctl\.kernel\.core_pattern: .*\(set by --sysctl\)/);
    match(bad.stderr, /not a namespaced sysctl/);
    const form = l.hako("run", "--sysctl", "net.ipv4.ip_forward", "--rootfs", "rootfs", "--", "true");
    equal(form.code, 2, form.stderr);
    match(form.stderr, /--sysctl wants KEY=VALUE/);
  }, { skip });

  test(
    `hako run (${path}): -m, --cpus, --pids-limit, --cap-drop land in the cgroup and the sets; bad values name the flag`,
    () => {
      using l = lab(path);
      const r = l.hako(
        ...["run", "-m", "64m", "--cpus", "0.5", "--pids-limit", "20", "--cap-drop", "ALL", "--cap-add", "CHOWN"],
        ...["--name", l.name("lim"), "--rootfs", "rootfs", "--"],
        ...[
          "sh",
          "-c",
          "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max; grep CapEff /proc/self/status",
        ],
      );
      equal(r.code, 0, r.stderr);
      equal(r.stdout, `${64 << 20}\n50000\n20\nCapEff:\t0000000000000001\n`);
      const bad = l.hako("run", "--cap-add", "BOGUS", "-w", "rel", "--rootfs", "rootfs", "--", "true");
      equal(bad.code, 125, bad.stderr);
      match(bad.stderr, /workdir: must be absolute.*\(set by -w\/--workdir\)/);
      match(bad.stderr, /unknown capability "BOGUS".*\(set by --cap-add\/--cap-drop\)/);
      const usage = l.hako("run", "-m", "lots", "--rootfs", "rootfs", "--", "true");
      equal(usage.code, 2);
      match(usage.stderr, /--memory wants a size/);
    },
    { skip },
  );

  test(
    `hako run -d --stop-signal (${path}): hako stop sends the container's stop signal first, and says so`,
    async () => {
      using l = lab(path);
      const name = l.name("sig");
      // PID 1 of its PID namespace: only the signals it handles reach it; it handles QUIT, not TERM
      const r = l.hako(
        ...["run", "-d", "--stop-signal", "SIGQUIT", "--name", name, "--rootfs", "rootfs", "--"],
        ...["sh", "-c", "trap 'exit 7' QUIT; echo up; while :; do sleep 0.1; done"],
      );
      equal(r.code, 0, r.stderr);
      await until("the trap is set", () => l.hako("logs", name).stdout.includes("up"));
      const stop = l.hako("stop", "-t", "20", name);
      equal(stop.code, 0, stop.stderr);
      equal(stop.stdout, `${name} exited with 7 on hako's SIGQUIT\n`, "no SIGKILL needed: QUIT ended it at once");
      const bad = l.hako("run", "--stop-signal", "SIGBOGUS", "--rootfs", "rootfs", "--", "true");
      equal(bad.code, 125, bad.stderr);
      match(bad.stderr, /stopSignal: unknown signal "SIGBOGUS".*\(set by --stop-signal\)/);
    },
    { skip },
  );

  test(`hako run -d (${path}): ps -a -q --filter, inspect, update, wait, kill -s, rm -f, and --rm`, async () => {
    using l = lab(path);
    const kept = l.name("kept"), gone = l.name("gone"), live = l.name("live");
    const d = l.hako(
      ...["run", "-d", "--name", kept, "-l", "team=ops", "-e", "A=1", "-e", "B=2", "-m", "32m", "--cpus", "1.5"],
      ...["--pids-limit", "16", "-u", "1000", "-w", "/tmp", "--rootfs", "rootfs", "--"],
      ...["sh", "-c", "trap 'exit 42' TERM; echo \"$A$B $(id -u) $(pwd)\"; while :; do sleep 0.1; done"],
    );
    deepEqual([d.code, d.stdout], [0, `${kept}\n`], d.stderr);
    const rm = l.hako("run", "-d", "--rm", "--name", gone, "--rootfs", "rootfs", "--", "sh", "-c", "sleep 0.3");
    deepEqual([rm.code, rm.stdout], [0, `${gone}\n`], rm.stderr);
    // --rm: the supervisor deletes it once it has recorded its end.
    await until(`${gone} removed`, () => !l.hako("ps", "-a", "-q").stdout.includes(gone));
    await until("its log", () => l.hako("logs", kept).stdout === "12 1000 /tmp\n");

    const info = JSON.parse(l.hako("inspect", "--format", "json", kept).stdout)[0];
    equal(info.Name, kept);
    equal(info.State.Status, "running");
    equal(info.State.Running, true);
    ok(info.State.Pid > 0);
    deepEqual(info.Config.Labels, { team: "ops" });
    ok(info.Config.Env.includes("A=1") && info.Config.Env.includes("B=2"), info.Config.Env.join(" "));
    equal(info.Config.User, "1000:1000");
    equal(info.Config.WorkingDir, "/tmp");
    deepEqual(
      [info.HostConfig.Memory, info.HostConfig.NanoCpus, info.HostConfig.PidsLimit],
      [32 << 20, 1_500_000_000, 16],
    );
    // The limits are the cgroup's, read back from the kernel.
    const cgroup = info.Hako.cgroup as string;
    equal(readFileSync(`/sys/fs/cgroup/memory/${cgroup}/memory.limit_in_bytes`, "utf8").trim(), String(32 << 20));
    equal(readFileSync(`/sys/fs/cgroup/cpu/${cgroup}/cpu.cfs_quota_us`, "utf8").trim(), "150000");

    // update: new limits, live, in the cgroup and in inspect.
    const u = l.hako("update", "-m", "48m", "--cpus", "0.5", "--pids-limit", "24", kept);
    deepEqual([u.code, u.stdout], [0, `${kept}\n`], u.stderr);
    equal(readFileSync(`/sys/fs/cgroup/memory/${cgroup}/memory.limit_in_bytes`, "utf8").trim(), String(48 << 20));
    equal(readFileSync(`/sys/fs/cgroup/cpu/${cgroup}/cpu.cfs_quota_us`, "utf8").trim(), "50000");
    equal(readFileSync(`/sys/fs/cgroup/pids/${cgroup}/pids.max`, "utf8").trim(), "24");
    const updated = JSON.parse(l.hako("inspect", kept).stdout)[0].HostConfig;
    deepEqual([updated.Memory, updated.NanoCpus, updated.PidsLimit], [48 << 20, 500_000_000, 24]);
    const tooLow = l.hako("update", "--cpus", "0.001", kept);
    equal(tooLow.code, 2);

    equal(l.hako("ps", "-q").stdout, `${kept}\n`);
    equal(l.hako("ps", "-q", "--filter", "label=team=ops").stdout, `${kept}\n`);
    equal(l.hako("ps", "-q", "--filter", "label=team=dev").stdout, "");

    // kill -s TERM: its handler exits 42; wait prints it.
    const k = l.hako("kill", "-s", "TERM", kept);
    equal(k.code, 0, k.stderr);
    const w = l.hako("wait", kept);
    deepEqual([w.code, w.stdout], [0, "42\n"], w.stderr);
    equal(l.hako("ps", "-q").stdout, "", "docker's ps: running containers only");
    equal(l.hako("ps", "-a", "-q").stdout, `${kept}\n`);
    equal(l.hako("ps", "-q", "--filter", "status=exited", "--filter", `name=${kept.slice(0, 8)}`).stdout, `${kept}\n`);
    const done = JSON.parse(l.hako("inspect", kept).stdout)[0];
    deepEqual([done.State.Status, done.State.Running, done.State.ExitCode], ["exited", false, 42]);

    // rm refuses a running container without -f; rm -f kills it first.
    const s = l.hako("run", "-d", "--name", live, "--rootfs", "rootfs", "--", "sleep", "60");
    equal(s.code, 0, s.stderr);
    const refused = l.hako("rm", live);
    equal(refused.code, 1);
    match(refused.stderr, /running/);
    const forced = l.hako("rm", "-f", live, kept);
    deepEqual([forced.code, forced.stdout], [0, `${live}\n${kept}\n`], forced.stderr);
    equal(l.hako("ps", "-a", "-q").stdout, "");
    const unknown = l.hako("inspect", live);
    deepEqual([unknown.code, JSON.parse(unknown.stdout)], [1, []]);
    match(unknown.stderr, /no such container/);
  }, { skip });
}

/** A free port on the host, taken by a listener of the test until `close`. */
async function takePort(): Promise<{ port: number; close(): Promise<void> }> {
  const s = createServer();
  await new Promise<void>((r) => s.listen({ port: 0, host: "0.0.0.0" }, () => r()));
  const port = (s.address() as { port: number }).port;
  return { port, close: () => new Promise<void>((r) => s.close(() => r())) };
}

for (const path of PATHS) {
  test(
    `hako run and run -d (${path}): docker's 125 when hako failed, 126 when the command cannot be executed, 127 when it is not found`,
    async () => {
      using l = lab(path);
      const held = l.name("held");
      equal(l.hako("run", "-d", "--name", held, "--rootfs", "rootfs", "--", "sleep", "60").code, 0);
      const taken = await takePort();
      try {
        for (const mode of [[], ["-d"]]) {
          const how = mode.length ? "run -d" : "run";
          const run = (...a: string[]) => l.hako("run", ...mode, ...a);
          const n = (x: string) => l.name(`${x}${mode.length}`);
          const cases: Array<[number, string[], RegExp]> = [
            [127, ["--name", n("nf"), "--rootfs", "rootfs", "--", "/nonexistent"], /ENOENT/],
            [126, ["--name", n("nx"), "--rootfs", "rootfs", "--", "/etc/passwd"], /EACCES/],
            [125, ["--name", n("cap"), "--cap-add", "BOGUS", "--rootfs", "rootfs", "--", "true"], /--cap-add/],
            [125, ["--name", n("nr"), "--rootfs", "rootfs-missing", "--", "true"], /rootfs/],
            [
              125,
              ["--name", n("im"), "--image", `nosuch-${l.name("img")}:1`, "--", "true"],
              /no such file, nor an image/,
            ],
            [125, ["--name", held, "--rootfs", "rootfs", "--", "true"], new RegExp(held)],
            [125, ["--name", n("port"), "-p", `${taken.port}:80`, "--rootfs", "rootfs", "--", "true"], /is taken/],
          ];
          for (const [code, args, why] of cases) {
            const r = run(...args);
            equal(r.code, code, `hako ${how} ${args.join(" ")}: ${r.stdout}${r.stderr}`);
            match(r.stderr, why, `hako ${how} ${args.join(" ")}: ${r.stderr}`);
            doesNotMatch(r.stderr, /hako start:/, "the messages are run's, not start's");
            equal(r.stdout, "", "no name printed for a container that did not start");
          }
          // Nothing of those is left: only the container that holds its name.
          equal(l.hako("ps", "-a", "-q").stdout, `${held}\n`, how);
        }
      } finally {
        await taken.close();
      }
    },
    { skip },
  );

  test(
    `hako inspect (${path}): docker's Config.Tty, Config.OpenStdin, HostConfig.PortBindings and NetworkMode`,
    () => {
      using l = lab(path);
      const tty = l.name("tty"), plain = l.name("plain"), hostNet = l.name("host");
      const r = l.hako(
        ...["run", "-d", "-t", "-i", "--name", tty, "-p", "127.0.0.1::80", "-p", "81", "-p", "0:82"],
        ...["--rootfs", "rootfs", "--", "sleep", "60"],
      );
      equal(r.code, 0, r.stderr);
      equal(l.hako("run", "-d", "--name", plain, "--rootfs", "rootfs", "--", "sleep", "60").code, 0);
      const h = l.hako("run", "-d", "--network", "host", "--name", hostNet, "--rootfs", "rootfs", "--", "sleep", "60");
      equal(h.code, 0, h.stderr);
      const [a, b, c] = JSON.parse(l.hako("inspect", tty, plain, hostNet).stdout);
      deepEqual([a.Config.Tty, a.Config.OpenStdin, a.HostConfig.NetworkMode], [true, true, "veth"]);
      deepEqual(a.HostConfig.PortBindings, {
        "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }],
        "81/tcp": [{ HostIp: "", HostPort: "" }],
        "82/tcp": [{ HostIp: "", HostPort: "0" }], // (-p 0:82, as docker's)
      });
      // (-dt -p: the supervisor publishes a container on a terminal too)
      deepEqual(Object.keys(a.NetworkSettings.Ports).sort(), ["80/tcp", "81/tcp", "82/tcp"]);
      deepEqual([b.Config.Tty, b.Config.OpenStdin, b.HostConfig.NetworkMode, b.HostConfig.PortBindings], [
        false,
        false,
        "none",
        {},
      ]);
      equal(c.HostConfig.NetworkMode, "host");
    },
    { skip },
  );
}

test("a mistyped command gets a suggestion, not the whole help", () => {
  const r = spawnSync(CLI[0]!, [...CLI.slice(1), "rn"], { encoding: "utf8", timeout: 60_000 });
  equal(r.status, 2);
  equal(r.stderr, `hako: unknown command "rn" (did you mean "run"?)\nRun 'hako help' for the commands.\n`);
  ok(!existsSync(join(ROOT, "rn")));
});
