/**
 * The escape suite: a process inside a default container — the container's own command, and one
 * started by `execIn` (`hako exec`) — tries each way out an attacker would, on the native child
 * and on the forked one (`HAKO_NATIVE_SPAWN=0`), and each attempt must be refused. The attacks are
 * one static C program (`fixtures/escape_probe.c`, built here with `gcc -static`) so that what runs
 * inside is exactly the system call under test; its exit code says blocked (0) or escaped (1).
 */
import { execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { assert, assertEquals, atEnd, isRoot, tempDir, test } from "./_harness.ts";
import { Container, type ContainerSpec, execIn, SpecError } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { procFile, waitUntil } from "./_proc.ts";
import { getgroups, setgroups } from "../src/user.ts";

const PROBE_SOURCE = new URL("./fixtures/escape_probe.c", import.meta.url).pathname;

function hasGcc(): boolean {
  try {
    execFileSync("gcc", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : !findStaticBusybox()
  ? "needs a static busybox (apt-get install busybox-static)"
  : !hasGcc()
  ? "needs gcc with a static glibc (apt-get install gcc libc6-dev) to build the attack probe"
  : false;

/** The probe, built once per run (in a directory removed when the file is done). */
let probe: string | undefined;
const probeDir = join(tmpdir(), `hako-test-escape-probe-${process.pid}`);
atEnd(() => rmSync(probeDir, { recursive: true, force: true }));
function probeBinary(): string {
  if (probe) return probe;
  mkdirSync(probeDir, { recursive: true });
  const out = join(probeDir, "escape_probe");
  execFileSync("gcc", ["-static", "-O2", "-o", out, PROBE_SOURCE]);
  probe = out;
  return out;
}

/** A busybox rootfs with the probe at /probe, and specs for containers on it. */
function box(): { rootfs: string; spec: (s?: Partial<ContainerSpec>) => ContainerSpec } & Disposable {
  const dir = tempDir("hako-test-escape-");
  execFileSync("chmod", ["0755", dir.path]); // (root of a user namespace walks to the rootfs)
  const rootfs = join(dir.path, "rootfs");
  buildRootfs(rootfs, { builder: "busybox" });
  copyFileSync(probeBinary(), join(rootfs, "probe"));
  execFileSync("chmod", ["0755", join(rootfs, "probe")]);
  let n = 0;
  return {
    rootfs,
    spec: (s = {}) => ({
      name: `hako-test-escape-${process.pid}-${n++}`,
      rootfs,
      command: ["sleep", "30"],
      ...s,
    }),
    [Symbol.dispose]: () => dir[Symbol.dispose](),
  };
}

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

/** The probe's exit code and output when run as a container's command. */
async function asCommand(spec: ContainerSpec): Promise<{ code: number | null; out: string }> {
  using dir = tempDir();
  const file = join(dir.path, "out");
  const fd = openSync(file, "w");
  try {
    await using c = await Container.create(spec, { stdio: { stdin: fd, stdout: fd, stderr: fd } });
    await c.start();
    const st = await c.wait();
    return { code: st.code, out: readFileSync(file, "utf8") };
  } finally {
    closeSync(fd);
  }
}

/** The probe's exit code and output when run by execIn in `c`. */
async function asExec(c: Container, argv: string[]): Promise<{ code: number | null; out: string }> {
  using dir = tempDir();
  const file = join(dir.path, "out");
  const fd = openSync(file, "w");
  try {
    const st = await execIn(c.pid, { argv, spec: c.spec, stdout: fd, stderr: fd });
    return { code: st.code, out: readFileSync(file, "utf8") };
  } finally {
    closeSync(fd);
  }
}

/** A marker file on the host, outside every rootfs: a process that can see it is out. */
const MARKER = `/run/hako-test-escape-marker-${process.pid}`;

/** The attacks every default container must refuse: [what, probe arguments]. */
function attacks(): Array<readonly [string, string[]]> {
  const corePattern = readFileSync("/proc/sys/kernel/core_pattern", "utf8").trim() || "core";
  return [
    ["mknod and open /dev/kmsg (c 1:11: the host's kernel log)", ["device", "c", "1", "11"]],
    ["mknod and open /dev/mem (c 1:1)", ["device", "c", "1", "1"]],
    ["mknod and open /dev/tty1 (c 4:1: a host console)", ["device", "c", "4", "1"]],
    ["mknod and open /dev/loop-control (c 10:237)", ["device", "c", "10", "237"]],
    ["mknod and open /dev/loop0 (b 7:0)", ["device", "b", "7", "0"]],
    ["write /proc/sysrq-trigger", ["write", "/proc/sysrq-trigger", "h"]],
    ["write /proc/sys/kernel/core_pattern", ["write", "/proc/sys/kernel/core_pattern", corePattern]],
    ["write under /sys", ["write", "/sys/class/net/lo/mtu", "65536"]],
    ["mkdir under /sys/fs/cgroup", ["mkdir", "/sys/fs/cgroup/hako-escape"]],
    ["mount a filesystem", ["mount"]],
    ["unshare a user namespace", ["unshare-user"]],
    ["unshare a mount namespace", ["unshare-mount"]],
    ["setns into a namespace", ["setns"]],
    ["bpf(2)", ["bpf"]],
    ["keyctl(2)", ["keyctl"]],
    ["userfaultfd(2)", ["userfaultfd"]],
    ["pidfd_getfd(2)", ["pidfd_getfd"]],
    ["an AF_VSOCK socket", ["vsock"]],
    ["the chroot break to the host's root", ["chroot", MARKER]],
    ["an fd of the runtime's beyond stdio", ["fds"]],
    ["a controlling terminal", ["ctty"]],
    ["TIOCSTI into a terminal on stdio", ["tiocsti"]],
    ["TIOCLINUX on a terminal on stdio", ["tioclinux"]],
    ["a supplementary group", ["groups"]],
  ];
}

for (const [path, value] of PATHS) {
  test(`a default container's command (${path} child) is refused every way out`, async () => {
    using b = box();
    writeFileSync(MARKER, "");
    try {
      const escaped: string[] = [];
      for (const [what, args] of attacks()) {
        const r = await onPath(value, () => asCommand(b.spec({ command: ["/probe", ...args] })));
        if (r.code !== 0) escaped.push(`${what}: exit ${r.code}: ${r.out.trim()}`);
      }
      assertEquals(escaped, []);
    } finally {
      rmSync(MARKER, { force: true });
    }
  }, { skip });

  test(`a command run by execIn (${path} child) in a default container is refused every way out`, async () => {
    using b = box();
    writeFileSync(MARKER, "");
    try {
      await onPath(value, async () => {
        await using c = await Container.create(b.spec({ stdio: "null" }));
        await c.start();
        const escaped: string[] = [];
        for (const [what, args] of attacks()) {
          const r = await asExec(c, ["/probe", ...args]);
          if (r.code !== 0) escaped.push(`${what}: exit ${r.code}: ${r.out.trim()}`);
        }
        assertEquals(escaped, []);
      });
    } finally {
      rmSync(MARKER, { force: true });
    }
  }, { skip });

  test(
    `execIn's children (${path}) cannot be reached from inside before they exec: no memory, environment, fds or runtime binary`,
    async () => {
      using b = box();
      // A variable of this process's own environment block (what /proc/PID/environ shows of the
      // runtime and its children until they exec), which the command's environment does not have.
      const secret = readFileSync("/proc/self/environ", "utf8").split("\0")
        .find((v) => /^[A-Z_]+=.{4,}/.test(v) && !["PATH=", "HOME=", "HOSTNAME="].some((p) => v.startsWith(p)));
      assert(secret, "no variable in this process's environment to look for");
      await onPath(value, async () => {
        using dir = tempDir();
        const out = join(dir.path, "race");
        const fd = openSync(out, "w");
        try {
          // The racer is the container's command: it stops every new process it sees and tries
          // /proc/PID/environ, mem, exe and fd/ on it.
          await using c = await Container.create(
            b.spec({ command: ["/probe", "race", secret, "20"] }),
            { stdio: { stdout: fd, stderr: fd } },
          );
          await c.start();
          await waitUntilText(out, "ready");
          for (let i = 0; i < 40; i++) {
            const st = await execIn(c.pid, { argv: ["/bin/true"], spec: c.spec, stdout: fd, stderr: fd });
            assertEquals(st.code, 0);
          }
          c.kill("KILL");
          await c.wait();
        } finally {
          closeSync(fd);
        }
        const text = readFileSync(out, "utf8");
        // What only hako's child can show (the runtime's environment block, the runtime's binary)
        // must never be seen; memory and fds only matter while it has not exec'd yet — caught
        // after its execve, the command (`true`) is the container's own process.
        const caught = text.split("\n").filter((l) => l.startsWith("caught "));
        const reached = caught.filter((l) =>
          /environ-secret=1|exe-runtime=1/.test(l) || (!l.includes("(true)") && /mem=1|fds=1/.test(l))
        );
        assertEquals(reached, [], `the racer reached execIn's children:\n${text}`);
      });
    },
    { skip },
  );

  test(
    `no supplementary group of the caller reaches a user-namespace container or its exec'd process (${path})`,
    async () => {
      using b = box();
      const before = getgroups();
      setgroups([0, 4]); // as a sudo'd root shell often has: root and adm
      try {
        await onPath(value, async () => {
          await using c = await Container.create(b.spec({
            namespaces: ["mount", "uts", "ipc", "pid", "user"],
            idMap: { uid: { inside: 0, outside: 420000, size: 65536 } },
            networkEtc: false,
            stdio: "null",
          }));
          await c.start();
          await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "the exec of sleep");
          assertEquals(/^Groups:[ \t]*(.*)$/m.exec(procFile(c.pid, "status"))?.[1]?.trim(), "");
          const r = await asExec(c, ["/probe", "groups"]);
          assertEquals([r.code, r.out.trim()], [0, "groups:"]);
        });
      } finally {
        setgroups(before);
      }
    },
    { skip },
  );
}

test("a container's command and an exec'd one lead sessions of their own, with no controlling terminal", async () => {
  using b = box();
  for (const [, value] of PATHS) {
    await onPath(value, async () => {
      await using c = await Container.create(b.spec({ stdio: "null" }));
      await c.start();
      await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "the exec of sleep");
      const stat = procFile(c.pid, "stat");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // (fields from the state on: state ppid pgrp session tty_nr)
      assertEquals(fields[3], String(c.pid), "the session is the container's init's own");
      assertEquals(fields[4], "0", "no controlling terminal");
    });
  }
}, { skip });

async function waitUntilText(file: string, text: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (existsSync(file) && readFileSync(file, "utf8").includes(text)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert(false, `${file} never said ${text}`);
}

for (const [path, value] of PATHS) {
  test(
    `a container joining another's PID namespace (${path}) lands inside it: two NSpid levels, a /proc of that namespace only`,
    async () => {
      using b = box();
      await onPath(value, async () => {
        await using first = await Container.create(b.spec({ stdio: "null" }));
        await first.start();
        using dir = tempDir();
        const out = join(dir.path, "out");
        const fd = openSync(out, "w");
        try {
          await using joined = await Container.create(
            b.spec({
              namespaces: ["mount", "uts", "ipc", "net", { type: "pid", join: `/proc/${first.pid}/ns/pid` }],
              command: [
                "sh",
                "-c",
                "ls /proc | grep -c '^[0-9]*$'; cat /proc/1/cmdline | tr '\\0' ' '; echo; exec sleep 30",
              ],
            }),
            { stdio: { stdout: fd, stderr: fd } },
          );
          await joined.start();
          await waitUntil(joined.pid, () => procFile(joined.pid, "comm").trim() === "sleep", "the exec of sleep");
          const nspid = /^NSpid:\s*(.*)$/m.exec(procFile(joined.pid, "status"))?.[1]?.trim().split(/\s+/);
          assertEquals(nspid?.length, 2, `NSpid: ${nspid}`);
          assertEquals(
            readlinkSync(`/proc/${joined.pid}/ns/pid`),
            readlinkSync(`/proc/${first.pid}/ns/pid`),
            "in the joined PID namespace",
          );
          const [count, init] = readFileSync(out, "utf8").trim().split("\n");
          // Its /proc lists the joined namespace: the first container's sleep (PID 1), itself and
          // the two processes of its shell pipeline at most — never the host's hundreds.
          assert(Number(count) <= 5, `its /proc lists ${count} processes`);
          assertEquals(init?.trim(), "sleep 30", "PID 1 in its /proc is the first container's command");
        } finally {
          closeSync(fd);
        }
      });
    },
    { skip },
  );
}

test(
  "a provision hook from the image runs confined as the command is: its capabilities, no_new_privs, seccomp, no fd of hako's",
  async () => {
    using b = box();
    const rec = (f: string) =>
      `grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status > ${f}; ls /proc/self/fd | wc -l >> ${f}`;
    await asCommand(b.spec({
      command: ["sh", "-c", rec("/command-status")],
      hooks: { provision: ["sh", "-c", rec("/provision-status")] },
    }));
    const read = (f: string) => readFileSync(join(b.rootfs, f), "utf8").trim();
    const provision = read("provision-status");
    assert(/NoNewPrivs:\s*1/.test(provision) && /Seccomp:\s*2/.test(provision), provision);
    // The same capabilities and the same few fds (stdio and ls's own) as the container's command.
    assertEquals(provision, read("command-status"));
    // And it cannot write a cgroup's release_agent (what ran a command as host root before): the
    // probe exits 0 when the write is refused, so the provision step succeeds.
    for (const f of ["/sys/fs/cgroup/release_agent", "/sys/fs/cgroup/pids/release_agent"]) {
      const r = await asCommand(
        b.spec({ command: ["true"], hooks: { provision: ["/probe", "write", f, "/bin/true"] } }),
      )
        .then(() => "refused", (e) => String(e));
      assertEquals(r, "refused", f);
    }
  },
  { skip },
);

/** The mounts at and under /sys in `pid`'s mount namespace that are not read-only. */
function writableUnderSys(pid: number): string[] {
  return procFile(pid, "mountinfo").split("\n").filter(Boolean).map((l) => l.split(" "))
    .filter((f) => f[4] === "/sys" || f[4]!.startsWith("/sys/"))
    .filter((f) => !f[5]!.split(",").includes("ro"))
    .map((f) => `${f[4]} (${f[5]})`);
}

for (const [path, value] of PATHS) {
  test(
    `/sys and every cgroup hierarchy under it are read-only inside (${path}), with a user namespace and the host's network too`,
    async () => {
      using b = box();
      await onPath(value, async () => {
        for (
          const extra of [
            {},
            {
              namespaces: ["mount", "uts", "ipc", "pid", "user", "cgroup"] as const,
              idMap: { uid: { inside: 0, outside: 430000, size: 65536 } },
              networkEtc: false as const,
            },
            {
              namespaces: ["mount", "uts", "ipc", "pid", "user"] as const,
              idMap: { uid: { inside: 0, outside: 430000, size: 65536 } },
              networkEtc: false as const,
            },
          ]
        ) {
          await using c = await Container.create(b.spec({ ...extra, stdio: "null" }));
          await c.start();
          await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "the exec of sleep");
          assertEquals(writableUnderSys(c.pid), [], JSON.stringify(extra.namespaces ?? "default"));
          const cgroupMounts = procFile(c.pid, "mountinfo").split("\n").filter((l) => / - cgroup2? /.test(l));
          if (!extra.namespaces || extra.namespaces.includes("cgroup" as never)) {
            assert(cgroupMounts.length > 0, "the container's cgroups are mounted at /sys/fs/cgroup");
          }
          const r = await asExec(c, ["/probe", "mkdir", "/sys/fs/cgroup/hako-escape"]);
          assertEquals(r.code, 0, r.out);
        }
      });
    },
    { skip },
  );
}

test(
  "in the host's cgroup namespace a container sees its own cgroups at /sys/fs/cgroup, never the host's tree",
  async () => {
    using b = box();
    for (const [path, value] of PATHS) {
      await onPath(value, async () => {
        await using c = await Container.create(
          b.spec({ namespaces: ["mount", "uts", "ipc", "pid"], cgroup: { memory: { limit: "64m" } }, stdio: "null" }),
        );
        await c.start();
        await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "the exec of sleep");
        // Every cgroup filesystem mounted inside is rooted at the container's own directory: a whole
        // hierarchy would show every host cgroup, its processes (cgroup.procs) and its limits.
        const cgroupMounts = procFile(c.pid, "mountinfo").split("\n").filter((l) => / - cgroup2? /.test(l));
        assert(cgroupMounts.length > 0, `${path}: the container's own cgroups are there`);
        for (const l of cgroupMounts) {
          const [, , , root, where, opts] = l.split(" ");
          assertEquals(root, `/hako/${c.name}`, `${path}: ${l}`);
          assert(opts!.split(",").includes("ro"), `${path}: read-only: ${l}`);
          assert(where!.startsWith("/sys/fs/cgroup"), l);
        }
        const r = await asExec(c, [
          "sh",
          "-c",
          "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; ls /sys/fs/cgroup/*/ /sys/fs/cgroup/ | grep -c '^hako$'",
        ]);
        assert(/^67108864\n0\n$/.test(r.out), `${path}: ${r.out}`);
      });
    }
  },
  { skip },
);

test(
  "a default container sees no cgroup of the host's at /sys/fs/cgroup, in any hierarchy (a sibling at each root)",
  async () => {
    using b = box();
    // A cgroup at the root of every hierarchy, the host's cgroup2 tree of a hybrid host included:
    // where the container has no cgroup of its own, its cgroup namespace is rooted at the caller's
    // cgroup — the root here — and a mount there would show the host's tree.
    const sibling = `hako-test-sibling-${process.pid}`;
    const roots = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" "))
      .filter((f) => {
        const dash = f.indexOf("-");
        return dash > 0 && (f[dash + 1] === "cgroup" || f[dash + 1] === "cgroup2") && f[3] === "/" &&
          !(f[dash + 3] ?? "").includes("name=");
      }).map((f) => f[4]!);
    const made = roots.map((r) => join(r, sibling)).filter((d) => {
      try {
        mkdirSync(d);
        return true;
      } catch {
        return false;
      }
    });
    try {
      for (const [path, value] of PATHS) {
        await onPath(value, async () => {
          await using c = await Container.create(b.spec({ stdio: "null" }));
          await c.start();
          await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "the exec of sleep");
          const r = await asExec(c, ["sh", "-c", "ls /sys/fs/cgroup/ /sys/fs/cgroup/*/; echo end"]);
          assert(r.out.endsWith("end\n"), r.out);
          assert(!r.out.includes(sibling), `${path}: the host's cgroup ${sibling} shows inside:\n${r.out}`);
        });
      }
    } finally {
      for (const d of made) rmdirSync(d);
    }
  },
  { skip },
);

test("a default container has a cgroup namespace of its own, rooted at its own cgroup", async () => {
  using b = box();
  for (const [, value] of PATHS) {
    await onPath(value, async () => {
      await using c = await Container.create(b.spec({ stdio: "null" }));
      await c.start();
      await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "the exec of sleep");
      assert(readlinkSync(`/proc/${c.pid}/ns/cgroup`) !== readlinkSync("/proc/self/ns/cgroup"), "its own namespace");
      using dir = tempDir();
      const out = join(dir.path, "out");
      const fd = openSync(out, "w");
      try {
        await execIn(c.pid, { argv: ["cat", "/proc/self/cgroup"], spec: c.spec, stdout: fd });
      } finally {
        closeSync(fd);
      }
      // Inside, every hierarchy's path is its root: nothing of the host's tree shows.
      const lines = readFileSync(out, "utf8").trim().split("\n");
      assert(lines.length > 0 && lines.every((l) => l.endsWith(":/")), lines.join("\n"));
      // Outside, the container is in hako/<name> in each hierarchy.
      assert(procFile(c.pid, "cgroup").includes(`/hako/${c.name}`), procFile(c.pid, "cgroup"));
    });
  }
}, { skip });

test(
  "containers on one rootfs each read their own /etc/hostname; a symlink swapped into the shared rootfs writes no host file",
  async () => {
    using b = box();
    using dir = tempDir();
    const victim = join(dir.path, "victim");
    writeFileSync(victim, "host file\n");
    for (const [, value] of PATHS) {
      await onPath(value, async () => {
        await using one = await Container.create(
          b.spec({ name: `hako-test-escape-one-${process.pid}`, stdio: "null" }),
        );
        await one.start();
        // A process of the first container (root inside) swaps the shared files for symlinks to a host file.
        for (const f of ["hosts", "hostname", "resolv.conf"]) {
          rmSync(join(b.rootfs, "etc", f), { force: true });
          execFileSync("ln", ["-s", victim, join(b.rootfs, "etc", f)]);
        }
        const out = join(dir.path, `out-${value}`);
        const fd = openSync(out, "w");
        try {
          await using two = await Container.create(
            b.spec({ name: `hako-test-escape-two-${process.pid}`, command: ["cat", "/etc/hostname"] }),
            { stdio: { stdout: fd, stderr: fd } },
          ).catch((e) => {
            throw new Error(`the second container: ${e}`);
          });
          await two.start();
          await two.wait();
        } catch (e) {
          // Refusing the symlinked mount point is fine too; writing through it is not.
          assert(/symlink|ELOOP/.test(String(e)), String(e));
        } finally {
          closeSync(fd);
        }
        assertEquals(readFileSync(victim, "utf8"), "host file\n", "the host file is untouched");
        for (const f of ["hosts", "hostname", "resolv.conf"]) rmSync(join(b.rootfs, "etc", f), { force: true });
      });
    }
    // And without the symlinks, each reads its own name, and the rootfs keeps no generated file.
    const names: string[] = [];
    for (const n of ["alpha", "beta"]) {
      const out = join(dir.path, `name-${n}`);
      const fd = openSync(out, "w");
      try {
        const name = `hako-test-escape-${n}-${process.pid}`;
        await using c = await Container.create(b.spec({ name, command: ["cat", "/etc/hostname"] }), {
          stdio: { stdout: fd, stderr: fd },
        });
        await c.start();
        await c.wait();
        names.push(readFileSync(out, "utf8").trim());
      } finally {
        closeSync(fd);
      }
    }
    assertEquals(names, [`hako-test-escape-alpha-${process.pid}`, `hako-test-escape-beta-${process.pid}`]);
    assertEquals(
      readFileSync(join(b.rootfs, "etc/hostname"), "utf8"),
      "",
      "the rootfs keeps only an empty mount point",
    );
  },
  { skip },
);

test("default device nodes are 0666 whatever the caller's umask: a non-root user inside writes /dev/null", async () => {
  using b = box();
  const before = process.umask(0o077);
  try {
    for (const [, value] of PATHS) {
      const r = await onPath(value, () =>
        asCommand(b.spec({
          user: { uid: 1000, gid: 1000 },
          command: [
            "sh",
            "-c",
            "stat -c '%a %n' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; echo x > /dev/null && echo wrote",
          ],
        })));
      assertEquals(r.out.trim().split("\n"), [
        "666 /dev/null",
        "666 /dev/zero",
        "666 /dev/full",
        "666 /dev/random",
        "666 /dev/urandom",
        "666 /dev/tty",
        "wrote",
      ], `HAKO_NATIVE_SPAWN=${value}`);
    }
  } finally {
    process.umask(before);
  }
}, { skip });

test(
  "a user-namespace container runs from a rootfs under a directory closed to everyone but root (0700): no host directory above the rootfs is walked",
  async () => {
    using dir = tempDir("hako-test-escape-closed-");
    execFileSync("chmod", ["0700", dir.path]);
    const rootfs = join(dir.path, "store", "rootfs");
    mkdirSync(join(dir.path, "store"), { mode: 0o700 });
    buildRootfs(rootfs, { builder: "busybox" });
    for (const [, value] of PATHS) {
      const r = await onPath(value, () =>
        asCommand({
          name: `hako-test-escape-closed-${process.pid}`,
          rootfs,
          command: ["sh", "-c", "hostname; id -u"],
          namespaces: ["mount", "uts", "ipc", "pid", "user"],
          idMap: { uid: { inside: 0, outside: 440000, size: 65536 } },
        }));
      assertEquals(
        [r.code, r.out.trim()],
        [0, `hako-test-escape-closed-${process.pid}\n0`],
        `HAKO_NATIVE_SPAWN=${value}`,
      );
    }
  },
  { skip },
);

test(
  "an image hako extracts into its store is closed to other local users (no path to its setuid binaries or device nodes)",
  async () => {
    using dir = tempDir("hako-test-escape-store-");
    const src = join(dir.path, "src");
    buildRootfs(src, { builder: "busybox" });
    execFileSync("chmod", ["4755", join(src, "bin/busybox")]); // a setuid-root binary, as images have
    const tarball = join(dir.path, `hako-test-store-${process.pid}.tar`);
    execFileSync("tar", ["-C", src, "-cf", tarball, "."]);
    const rootfs = `/var/lib/hako/images/hako-test-store-${process.pid}`;
    try {
      await asCommand({
        name: `hako-test-escape-store-${process.pid}`,
        rootfs: { tarball, path: rootfs },
        command: ["true"],
      });
      const nobody = (path: string) => {
        try {
          execFileSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "test", "-e", path]);
          return "reachable";
        } catch {
          return "closed";
        }
      };
      assertEquals(nobody(join(rootfs, "bin/busybox")), "closed", "the image's setuid binary");
      assertEquals(nobody(rootfs), "closed", "the rootfs");
      assertEquals(nobody("/var/lib/hako/images"), "closed", "the store");
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
    }
  },
  { skip: skip || (hasSetpriv() ? false : "needs setpriv (util-linux)") },
);

function hasSetpriv(): boolean {
  try {
    execFileSync("setpriv", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

test(
  "an image whose /proc, /sys and /dev are symlinks out (to /etc, /, ../..) gets them mounted inside its own root, and the host keeps its own",
  async () => {
    using b = box();
    using dir = tempDir();
    const hostEtc = readdirSync("/etc").length;
    for (const [d, to] of [["proc", "/etc"], ["sys", "/"], ["dev", "../.."]] as const) {
      rmSync(join(b.rootfs, d), { recursive: true, force: true });
      symlinkSync(to, join(b.rootfs, d));
    }
    for (const [, value] of PATHS) {
      const out = join(dir.path, `out-${value}`);
      const fd = openSync(out, "w");
      try {
        await using c = await Container.create(b.spec({ command: ["sh", "-c", "echo ran"] }), {
          stdio: { stdout: fd, stderr: fd },
        });
        await c.start();
        await c.wait();
      } catch (e) {
        // Refusing such an image is fine too; mounting outside its root is not.
        assert(e instanceof Error, String(e));
      } finally {
        closeSync(fd);
      }
      assertEquals(readdirSync("/etc").length, hostEtc, "the host's /etc is untouched");
      assert(!procFile(process.pid, "mountinfo").includes(b.rootfs), "no mount of the container's is left on the host");
    }
  },
  { skip },
);

test("naming an existing cgroup is a SpecError, and the process in it lives on", async () => {
  using b = box();
  const name = `hako-test-escape-victim-${process.pid}`;
  const dir = `/sys/fs/cgroup/pids/${name}`;
  mkdirSync(dir);
  const victim = spawn("sleep", ["30"], { stdio: "ignore" });
  try {
    writeFileSync(join(dir, "cgroup.procs"), String(victim.pid));
    let err: unknown;
    try {
      await Container.create(b.spec({ cgroup: { name, pids: { max: 10 } } }));
    } catch (e) {
      err = e;
    }
    assert(err instanceof SpecError && err.problems.some((p) => p.path === "cgroup.name"), String(err));
    assert(victim.exitCode === null && victim.signalCode === null, "the host's process lives on");
    assertEquals(readFileSync(join(dir, "cgroup.procs"), "utf8").trim(), String(victim.pid));
  } finally {
    victim.kill("SIGKILL");
    await new Promise((r) => victim.once("exit", r));
    for (let i = 0; i < 50 && existsSync(dir); i++) {
      try {
        rmdirSync(dir);
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}, {
  skip: skip ||
    (!existsSync("/sys/fs/cgroup/pids") &&
      "needs the cgroup v1 pids hierarchy at /sys/fs/cgroup/pids (on cgroup v2 the unit test covers this check)"),
});

test(
  "a default container sees none of the host's processes: its /proc has its own few, its PID 1 is its command",
  async () => {
    using b = box();
    for (const [, value] of PATHS) {
      const r = await onPath(value, () =>
        asCommand(
          b.spec({ command: ["sh", "-c", "ls /proc | grep -c '^[0-9]*$'; cat /proc/1/cmdline | tr '\\0' ' '"] }),
        ));
      const [count, init] = r.out.trim().split("\n");
      assert(Number(count) <= 4, `its /proc lists ${count} processes`);
      assert(init?.startsWith("sh -c"), `PID 1 is ${init}`);
    }
  },
  { skip },
);

test(
  "a spec mount whose target in the rootfs is a symlink to a host directory lands inside the rootfs, never on the host",
  async () => {
    using b = box();
    using dir = tempDir();
    const hostDir = join(dir.path, "host-dir");
    mkdirSync(hostDir);
    writeFileSync(join(hostDir, "mine"), "host\n");
    const source = join(dir.path, "source");
    mkdirSync(source);
    writeFileSync(join(source, "from-source"), "x\n");
    symlinkSync(hostDir, join(b.rootfs, "mnt-link")); // absolute: the host's path, were it followed outside
    for (const [, value] of PATHS) {
      const r = await onPath(value, () =>
        asCommand(b.spec({
          mounts: [{ type: "bind", source, target: "/mnt-link", readonly: true }],
          command: ["sh", "-c", "ls /mnt-link"],
        })));
      assertEquals([r.code, r.out.trim()], [0, "from-source"], `HAKO_NATIVE_SPAWN=${value}`);
      assertEquals(readdirSync(hostDir), ["mine"], "the host directory got nothing");
      assert(!procFile(process.pid, "mountinfo").includes(hostDir), "nothing is mounted on the host directory");
    }
  },
  { skip },
);

test("a terminal of the container's devpts belongs to the tty group (gid 5), mode 0620, as runc makes it", async () => {
  using b = box();
  for (const [, value] of PATHS) {
    const r = await onPath(
      value,
      () => asCommand(b.spec({ command: ["sh", "-c", "grep ' /dev/pts ' /proc/self/mountinfo"] })),
    );
    assert(/gid=5/.test(r.out) && /mode=620/.test(r.out) && /ptmxmode=666/.test(r.out), r.out);
  }
}, { skip });
