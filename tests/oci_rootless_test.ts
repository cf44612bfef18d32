/**
 * hako-runc without the host's root: run by rootless podman, it is uid 0 of a user namespace
 * podman made (the user's ids and subordinate ranges), where the host's root shows as the overflow
 * uid, mknod is refused, no cgroup is the user's and the state goes under `$XDG_RUNTIME_DIR` — as
 * runc, which calls this rootless too. Checked three ways: the pure rules; a bundle run as root of
 * such a namespace made here (0–65535 mapped to 100000…, as podman maps them), hako-runc on the
 * native and the forked child against runc; and rootless podman itself driving dist/hako-runc and
 * runc for a user made for the test (needs newuidmap: the uidmap package, which tests/setup.sh
 * installs when this file runs).
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deepEqual, equal, match } from "node:assert/strict";
import { isRoot, tempDir, test } from "./_harness.ts";
import { has, launcher, type Run, runIt, runtimesToCompare } from "./_oci_lab.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { nestedUidMap, ociDefaultRoot, overflowUid } from "../src/_userns.ts";
import { type TrustFs, untrustedWayTo } from "../src/_trusted_path.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RUNC = "/usr/sbin/runc";
const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : !findStaticBusybox()
  ? "needs a static busybox (apt-get install busybox-static)"
  : !has("python3", ["-c", "import ctypes"])
  ? "needs python3 (it makes the user namespace: tests/setup.sh installs it)"
  : false;
const suffix = () => Math.random().toString(36).slice(2, 8);

test("nested user namespaces: told by uid_map; runc's default --root rule; the overflow uid", () => {
  equal(nestedUidMap("         0          0 4294967295\n"), false);
  equal(nestedUidMap(undefined), false);
  equal(nestedUidMap("         0       1001          1\n         1     100000      65536\n"), true);
  equal(nestedUidMap("         0          0          1\n"), true);
  equal(overflowUid("65534\n"), 65534);
  equal(overflowUid(undefined), 65534);
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  equal(ociDefaultRoot(env({}), 0, false), "/run/hako-runc");
  equal(ociDefaultRoot(env({ XDG_RUNTIME_DIR: "/run/user/0" }), 0, false), "/run/hako-runc");
  equal(ociDefaultRoot(env({ XDG_RUNTIME_DIR: "/run/user/1000/" }), 1000, false), "/run/user/1000/hako-runc");
  // root of a nested namespace: rootless unless $USER says root (runc's shouldHonorXDGRuntimeDir)
  equal(ociDefaultRoot(env({ XDG_RUNTIME_DIR: "/run/user/1000", USER: "alice" }), 0, true), "/run/user/1000/hako-runc");
  equal(ociDefaultRoot(env({ XDG_RUNTIME_DIR: "/run/user/1000" }), 0, true), "/run/user/1000/hako-runc");
  equal(ociDefaultRoot(env({ XDG_RUNTIME_DIR: "/run/user/0", USER: "root" }), 0, true), "/run/hako-runc");
  equal(ociDefaultRoot(env({ XDG_RUNTIME_DIR: "relative" }), 1000, false), "/run/hako-runc");
  // the way to the root: the host's root shows as the overflow uid in a nested namespace
  const fs: TrustFs = {
    lstat: (p) => ({ uid: p.startsWith("/run/user/1000") ? 0 : 65534, mode: 0o755, kind: "dir" }),
    realPath: (p) => p,
  };
  match(untrustedWayTo("/run/user/1000/hako-runc", 0, fs) ?? "", /\/ is owned by uid 65534/);
  equal(untrustedWayTo("/run/user/1000/hako-runc", 0, fs, [65534]), undefined);
});

/**
 * A python3 program that runs argv[2:] as root of a new user (and mount) namespace mapping 0–65535
 * to argv[1]…, as podman's: the child unshares, waits for the maps this (root) writes, becomes
 * root there with no exec in between (an exec first would drop its capabilities) and execs.
 */
const NEST = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    if libc.unshare(0x10000000 | 0x00020000) != 0:
        sys.exit("unshare: " + os.strerror(ctypes.get_errno()))
    os.read(r, 1)
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    os.execvp(sys.argv[2], sys.argv[2:])
os.close(r)
me = os.readlink("/proc/self/ns/user")
while os.readlink(f"/proc/{pid}/ns/user") == me:
    pass
for f in ("uid_map", "gid_map"):
    with open(f"/proc/{pid}/{f}", "w") as fh:
        fh.write(f"0 {sys.argv[1]} 65536\\n")
os.write(w, b"g")
os.close(w)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`;
/** Where the namespace's root is on the host. */
const BASE = 100_000;

test(
  "hako-runc as root of a nested user namespace runs a bundle as runc does: devices bound, sysctls, tmpcopyup, state under $XDG_RUNTIME_DIR",
  () => {
    using dir = tempDir("hako-test-oci-nested-");
    chmodSync(dir.path, 0o755);
    const bundle = join(dir.path, "bundle");
    mkdirSync(bundle);
    const rootfs = buildRootfs(join(bundle, "rootfs"), { builder: "busybox" }).path;
    mkdirSync(join(rootfs, "run"), { recursive: true });
    writeFileSync(join(rootfs, "run", "keep"), "kept\n");
    const runc = launcher(dir.path);
    let r = runIt(runc, ["spec", "--bundle", bundle]);
    equal(r.status, 0, r.stderr);
    const c = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
    c.process.terminal = false;
    c.root.readonly = true;
    c.process.args = [
      "sh",
      "-c",
      "id; cat /proc/sys/net/ipv4/ping_group_range; stat -c '%n %F %t:%T' /dev/null /dev/zero; cat /run/keep; " +
      "touch /run/new && echo run writable",
    ];
    c.linux.sysctl = { "net.ipv4.ping_group_range": "0 0" };
    c.mounts.push({ destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "tmpcopyup"] });
    writeFileSync(join(bundle, "config.json"), JSON.stringify(c));
    const nest = join(dir.path, "nest.py");
    writeFileSync(nest, NEST);
    const outputs: Record<string, string> = {};
    for (const { who, bin, env } of runtimesToCompare(dir.path)) {
      // the runtime directory: the namespace's root's own, as /run/user/UID is the user's
      const xdg = join(dir.path, `xdg-${who}`);
      mkdirSync(xdg, { mode: 0o700 });
      chownSync(xdg, BASE, BASE);
      const id = `hako-test-nested-${suffix()}`;
      r = runIt("python3", [nest, String(BASE), bin, "run", "--bundle", bundle, id], {
        ...env,
        XDG_RUNTIME_DIR: xdg,
        USER: "hako-test",
      });
      equal(r.status, 0, `${who}: ${r.stderr}`);
      outputs[who] = r.stdout;
      deepEqual(r.stdout.split("\n").filter(Boolean), [
        "uid=0(root) gid=0(root)",
        "0\t0",
        // (mknod is refused there: the host's nodes are bound, as runc binds them)
        "/dev/null character special file 1:3",
        "/dev/zero character special file 1:5",
        "kept",
        "run writable",
      ], `${who}: ${r.stdout}`);
      // its state was under $XDG_RUNTIME_DIR/<runtime>, the namespace root's (host uid 100000)
      const state = join(xdg, who === "runc" ? "runc" : "hako-runc");
      equal(statSync(state).uid, BASE, who);
    }
    if (outputs.runc !== undefined) equal(outputs["hako-native"], outputs.runc);
    equal(outputs["hako-forked"], outputs["hako-native"]);
  },
  { skip },
);

// ---- rootless podman ----------------------------------------------------------------------------

const DIST_RUNC = join(ROOT, "dist/hako-runc");
const podmanSkip = skip ||
  (!has("podman")
    ? "podman is not installed (apt-get install podman; tests/setup.sh installs it as root when this file runs)"
    : !has("newuidmap", ["--help"]) && !existsSync("/usr/bin/newuidmap")
    ? "rootless podman needs newuidmap (apt-get install uidmap; tests/setup.sh installs it as root when this file runs)"
    : !existsSync(DIST_RUNC)
    ? "needs dist/hako-runc (bash tools/build.sh; tests/setup.sh builds it when this file runs)"
    : !has("useradd", ["--help"])
    ? "needs useradd (passwd) to make the rootless user"
    : false);

test("rootless podman runs containers with --runtime dist/hako-runc as it does with runc", () => {
  using dir = tempDir("hako-test-oci-rootless-");
  chmodSync(dir.path, 0o755);
  const user = `hakort${suffix().slice(0, 5)}`;
  const home = join(dir.path, "home");
  let made = false;
  let uid = -1;
  const as = (args: string[]): Run => {
    const r = spawnSync("runuser", [
      "-u",
      user,
      "--",
      "env",
      `XDG_RUNTIME_DIR=/run/user/${uid}`,
      `HOME=${home}`,
      `USER=${user}`,
      ...args,
    ], {
      cwd: home,
      encoding: "utf8",
      timeout: 120_000,
      env: { PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" },
    });
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  };
  try {
    // a user with subordinate ids (useradd gives it a range in /etc/subuid and /etc/subgid)
    let r = runIt("useradd", ["-m", "-d", home, "-s", "/bin/sh", user]);
    equal(r.status, 0, r.stderr);
    made = true;
    uid = Number(runIt("id", ["-u", user]).stdout.trim());
    match(readFileSync("/etc/subuid", "utf8"), new RegExp(`^${user}:`, "m"));
    mkdirSync(`/run/user/${uid}`, { recursive: true, mode: 0o700 });
    chownSync(`/run/user/${uid}`, uid, uid);
    // the image: a busybox rootfs with a /run to copy up, imported by the user
    const rootfs = buildRootfs(join(dir.path, "rootfs"), { builder: "busybox" }).path;
    mkdirSync(join(rootfs, "run"), { recursive: true });
    writeFileSync(join(rootfs, "run", "keep"), "kept\n");
    const tar = join(dir.path, "rootfs.tar");
    r = runIt("tar", ["-C", rootfs, "-cf", tar, "."]);
    equal(r.status, 0, r.stderr);
    chmodSync(tar, 0o644);
    const tag = `localhost/hako-test-rootless:${suffix()}`;
    r = as(["podman", "--storage-driver", "vfs", "import", tar, tag]);
    equal(r.status, 0, r.stderr);
    const podman = (runtime: string, ...args: string[]) =>
      as(["podman", "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--runtime", runtime, ...args]);
    const limits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "none"];
    const cases: Array<[string, string[]]> = [
      ["as root of the user's namespace", [tag, "sh", "-c", "id; cat /proc/self/uid_map | wc -l"]],
      ["its exit code", [tag, "sh", "-c", "exit 3"]],
      ["podman's sysctl", [tag, "cat", "/proc/sys/net/ipv4/ping_group_range"]],
      ["--read-only: /run copied up, / read-only", [
        "--read-only",
        tag,
        "sh",
        "-c",
        "cat /run/keep; touch /run/new && echo run writable; touch /x 2>/dev/null || echo read-only",
      ]],
      ["--user", ["--user", "1000:1000", tag, "id"]],
      ["--cap-drop all", ["--cap-drop", "all", tag, "grep", "CapEff", "/proc/self/status"]],
      ["--hostname", ["--hostname", "rootless", tag, "hostname"]],
      ["/dev/null bound", [tag, "stat", "-c", "%F %t:%T", "/dev/null"]],
      // (podman's noNewPrivileges is false: the filter loaded while privileged, as runc loads it)
      ["no_new_privs off, the filter on", [tag, "grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"]],
      // (runc's words at create: podman's 127)
      ["a command that is not there", [tag, "nonexistent"]],
    ];
    for (const [what, args] of cases) {
      const ref = podman(RUNC, "run", "--rm", ...limits, ...args);
      const got = podman(DIST_RUNC, "run", "--rm", ...limits, ...args);
      equal(got.status, ref.status, `${what}: exit status (hako: ${got.stderr})`);
      equal(got.stdout, ref.stdout, `${what}: output`);
    }
    // -d, exec, stop, rm
    const name = `hako-test-rootless-${suffix()}`;
    r = podman(DIST_RUNC, "run", "-d", "--name", name, ...limits, tag, "sleep", "600");
    equal(r.status, 0, r.stderr);
    r = podman(DIST_RUNC, "exec", name, "sh", "-c", "echo exec; id -u");
    equal(r.status, 0, r.stderr);
    equal(r.stdout, "exec\n0\n");
    r = podman(DIST_RUNC, "stop", "-t", "1", name);
    equal(r.status, 0, r.stderr);
    r = podman(DIST_RUNC, "rm", name);
    equal(r.status, 0, r.stderr);
    // the state was the user's: under its $XDG_RUNTIME_DIR
    equal(statSync(`/run/user/${uid}/hako-runc`).uid, uid);
  } finally {
    if (made) {
      as(["podman", "--storage-driver", "vfs", "rm", "-af", "-t", "0"]);
      as(["podman", "--storage-driver", "vfs", "system", "reset", "-f"]);
      runIt("pkill", ["-KILL", "-u", user]);
      for (let i = 0; i < 50 && runIt("pgrep", ["-u", user]).status === 0; i++) spawnSync("sleep", ["0.1"]);
      runIt("userdel", ["-r", "-f", user]);
      if (uid >= 0) rmSync(`/run/user/${uid}`, { recursive: true, force: true });
    }
  }
}, { skip: podmanSkip });
