/**
 * OCI runtime mode (`hako oci …`, `bin/hako-runc`): config.json mapped onto hako's spec (refusals
 * named by their JSON path), runc's command line parsed, the create/start split over the exec
 * FIFO on a bundle driven directly — on the native child and the forked one — and real clients:
 * podman running containers with `--runtime bin/hako-runc` (compared with runc where cheap).
 *
 * Under Deno the runtime is `bin/hako-runc`; under Bun a launcher running `bun src/cli/main.ts oci`,
 * so both runtimes' hako serve as the OCI runtime. Everything is named `hako-test-oci-…`, podman
 * keeps its storage in a temp dir, and everything is removed even when a test fails.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { isRoot, runtime, tempDir, test } from "./_harness.ts";
import { has, launcher, PODMAN_RUN_LIMITS, podmanStorage, type Run, runIt, runtimesToCompare } from "./_oci_lab.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { containerNameOf, OciConfigError, ociToSpec } from "../src/oci/config.ts";
import { resolveSpec } from "../src/container/validate.ts";
import { parseOciArgs } from "../src/oci/args.ts";
import { fdsToPass, needsJsChild, withListenFds } from "../src/oci/runtime.ts";
import { deleteCgroupDirs } from "../src/oci/cgroup_dirs.ts";
import { parseOptions } from "../src/mount.ts";
import type { ContainerSpec } from "../src/container/spec.ts";
import { defaultOciSpec } from "../src/oci/spec_default.ts";
import { mergedCgroup, parseBytes, updateResources } from "../src/oci/update.ts";
import { existingCgroupDirs } from "../src/container/_cgroup.ts";
import { passPreservedFds } from "../src/container/_preserve_fds.ts";
import { noPivotDetaches } from "../src/container/_no_pivot.ts";
import { AT_FDCWD, close as closeAt, inheritFd, O_CLOEXEC, O_RDONLY, openat } from "../ffi/at.ts";

const RUNC = "/usr/sbin/runc";

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : !findStaticBusybox()
  ? "needs a static busybox (apt-get install busybox-static)"
  : false;
const skipPodman = skip ||
  (!has("podman")
    ? "podman is not installed (apt-get install podman; tests/setup.sh installs it as root when this file runs)"
    : false);
const suffix = () => Math.random().toString(36).slice(2, 8);

/** A podman-like config.json (what podman 4.3 writes, trimmed). */
function podmanLikeConfig(): Record<string, unknown> {
  return {
    ociVersion: "1.0.2-dev",
    process: {
      user: { uid: 0, gid: 0, umask: 18 },
      args: ["echo", "hi"],
      env: ["PATH=/usr/bin:/bin", "TERM=xterm", "container=podman"],
      cwd: "/",
      capabilities: { bounding: ["CAP_CHOWN", "CAP_KILL"], effective: ["CAP_CHOWN"], permitted: ["CAP_CHOWN"] },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 512 }],
      oomScoreAdj: 100,
    },
    root: { path: "rootfs" },
    hostname: "hh",
    mounts: [
      { destination: "/mnt", type: "bind", source: "/tmp", options: ["rw", "rprivate", "rbind"] },
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "noexec", "strictatime", "mode=755"] },
      { destination: "/dev/shm", type: "bind", source: "/x/shm", options: ["bind", "rprivate", "nosuid"] },
      { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["ro"] },
      { destination: "/run/x", type: "tmpfs", source: "tmpfs", options: ["nosuid", "size=1m"] },
    ],
    annotations: { "io.container.manager": "libpod" },
    linux: {
      sysctl: { "net.ipv4.ping_group_range": "0 0" },
      resources: {
        devices: [{ allow: false, access: "rwm" }],
        memory: { limit: 67108864, swap: 134217728 },
        pids: { limit: 50 },
        cpu: { shares: 512, quota: 50000, period: 100000 },
      },
      cgroupsPath: "/libpod_parent/libpod-abc",
      namespaces: [{ type: "pid" }, { type: "network", path: "/run/netns/x" }, { type: "ipc" }, { type: "uts" }, {
        type: "mount",
      }],
      seccomp: { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }] },
      maskedPaths: ["/proc/kcore"],
      readonlyPaths: ["/proc/sys"],
    },
  };
}

// ---- the mapping (pure) ------------------------------------------------------------------------

test("ociToSpec maps a podman config onto hako's spec, field by field", () => {
  const plan = ociToSpec(podmanLikeConfig(), "/b", "abc");
  const s = plan.spec as unknown as Record<string, unknown>;
  equal(s.name, "abc");
  deepEqual(s.command, ["echo", "hi"]);
  equal(s.rootfs, "/b/rootfs");
  deepEqual(s.env, { PATH: "/usr/bin:/bin", TERM: "xterm", container: "podman" });
  deepEqual(s.user, { uid: 0, gid: 0 });
  deepEqual(s.capabilities, {
    bounding: ["CAP_CHOWN", "CAP_KILL"],
    effective: ["CAP_CHOWN"],
    permitted: ["CAP_CHOWN"],
    inheritable: [],
    ambient: [],
  });
  deepEqual(s.rlimits, { RLIMIT_NOFILE: [512, 1024] });
  equal(s.hostname, "hh");
  deepEqual(s.namespaces, ["pid", { type: "net", join: "/run/netns/x" }, "ipc", "uts", "mount"]);
  deepEqual(s.cgroup, {
    name: "libpod_parent/libpod-abc",
    memory: { limit: 67108864, swap: 67108864 },
    pids: { max: 50 },
    cpu: { shares: 512, quotaUs: 50000, periodUs: 100000 },
  });
  // the standard mounts are hako's own but /dev/shm, the bundle's (podman's bind of the tmpfs its
  // --shm-size made, shared with the containers that join the IPC namespace); the rest kept,
  // private propagation being what hako does
  deepEqual(s.mounts, [
    { type: "bind", target: "/mnt", source: "/tmp", options: ["rw", "rbind"] },
    { type: "bind", target: "/dev/shm", source: "/x/shm", options: ["bind", "nosuid"] },
    { type: "tmpfs", target: "/run/x", source: "tmpfs", options: ["nosuid", "size=1m"] },
  ]);
  equal(s.shm, false);
  equal(s.devNoexec, true); // (podman's /dev is noexec)
  deepEqual(s.maskedPaths, ["/proc/kcore"]);
  deepEqual(s.readonlyPaths, ["/proc/sys"]);
  equal(s.networkEtc, false);
  // a seccomp profile without noNewPrivileges: no_new_privs stays off (the filter is loaded while
  // privileged, as runc loads it), with nothing to warn of
  equal(s.noNewPrivs, false);
  equal(plan.warnings.length, 0);
  equal(plan.umask, 18);
  equal(plan.oomScoreAdj, 100);
  deepEqual(s.sysctl, { "net.ipv4.ping_group_range": "0 0" });
  deepEqual(plan.annotations, { "io.container.manager": "libpod" });
});

test("--privileged's bundle: /sys and /sys/fs/cgroup without ro are writableSysfs and writableCgroupfs; the host's /dev/ptmx is left to the pts link", () => {
  const c = podmanLikeConfig() as { mounts: Array<{ destination: string; type: string; options: string[] }> };
  c.mounts.push(
    { destination: "/sys", type: "sysfs", options: ["nosuid", "noexec", "nodev", "rw"] },
    { destination: "/sys/fs/cgroup", type: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "rw"] },
  );
  (c as unknown as { linux: Record<string, unknown> }).linux.devices = [
    { path: "/dev/ptmx", type: "c", major: 5, minor: 2, fileMode: 8630 },
    { path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 8630 },
  ];
  const spec = ociToSpec(c, "/b", "x").spec;
  equal(spec.writableSysfs, true);
  equal(spec.writableCgroupfs, true);
  deepEqual(spec.devices, [{ path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o666 }]);
  for (const m of c.mounts) if (m.destination.startsWith("/sys")) m.options.push("ro");
  const ro = ociToSpec(c, "/b", "x").spec;
  equal(ro.writableSysfs, undefined);
  equal(ro.writableCgroupfs, undefined);
  // the spec's own check: they are about the standard mounts
  throws(
    () => resolveSpec({ name: "x", rootfs: "/tmp", command: ["true"], standardMounts: false, writableSysfs: true }),
    /writableSysfs: needs standardMounts/,
  );
  equal(resolveSpec({ name: "x", rootfs: "/tmp", command: ["true"] }).writableCgroupfs, false);
});

test("runc spec's capabilities (ambient, no inheritable set) are taken as runc takes them: ambient left out with a warning", () => {
  const caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
  const config = podmanLikeConfig() as { process: Record<string, unknown>; linux: Record<string, unknown> };
  config.process.capabilities = { bounding: caps, effective: caps, permitted: caps, ambient: caps };
  delete config.linux.seccomp;
  const plan = ociToSpec(config, "/b", "abc");
  deepEqual((plan.spec.capabilities as { ambient: string[] }).ambient, []);
  equal(plan.warnings.length, 1);
  match(plan.warnings[0]!, /can't raise ambient capability CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE/);
  // one that is permitted and inheritable stays
  config.process.capabilities = { ...config.process.capabilities as object, inheritable: ["CAP_KILL"] };
  deepEqual((ociToSpec(config, "/b", "abc").spec.capabilities as { ambient: string[] }).ambient, ["CAP_KILL"]);
  // and what hako runs is valid
  resolveSpec(ociToSpec(config, "/b", "abc").spec);
});

test("ociToSpec refuses what hako cannot do, each with its JSON path, never ignoring it", () => {
  const c = podmanLikeConfig() as Record<string, Record<string, unknown>>;
  c.linux!.intelRdt = { closID: "x" };
  c.linux!.sysctl = { "kernel.panic": "1" };
  c.linux!.cgroupsPath = "machine.slice:libpod:abc";
  c.hooks = { prestart: [{ path: "/bin/true" }], createContainer: [{ path: "bin/true" }] };
  (c.mounts as unknown as Array<Record<string, unknown>>).push({
    destination: "/y",
    type: "bind",
    source: "/tmp",
    options: ["rbind", "rro"],
  });
  (c.process as Record<string, unknown>).apparmorProfile = "x";
  let err: OciConfigError | undefined;
  try {
    ociToSpec(c, "/b", "abc");
  } catch (e) {
    err = e as OciConfigError;
  }
  ok(err instanceof OciConfigError);
  const paths = err.problems.map((p) => p.path).sort();
  deepEqual(paths, [
    "hooks.createContainer[0].path",
    "linux.cgroupsPath",
    "linux.intelRdt",
    "linux.sysctl.kernel.panic",
    "mounts[6].options[1]",
    "process.apparmorProfile",
  ]);
  equal(err.problems.find((p) => p.path === "linux.intelRdt")!.message, "not supported by hako");
  // empty values are fine (podman writes some)
  const d = podmanLikeConfig() as Record<string, Record<string, unknown>>;
  d.linux!.intelRdt = {};
  (d.process as Record<string, unknown>).apparmorProfile = "";
  ociToSpec(d, "/b", "abc");
});

test("`spec`'s default config.json (and --rootless's) is one hako runs as written", () => {
  for (const rootless of [false, true]) {
    const plan = ociToSpec(defaultOciSpec({ rootless }), "/b", "t");
    const s = plan.spec as unknown as Record<string, unknown>;
    deepEqual(s.command, ["sh"]);
    equal(plan.tty, true);
    equal(s.readonlyRootfs, true);
    equal((s.namespaces as unknown[]).includes("user"), rootless);
    deepEqual(plan.warnings, []);
  }
});

test("a 64-hex-digit id (podman's, containerd's) gets a hako name; a short one is kept", () => {
  equal(containerNameOf("t1"), "t1");
  const long = "a".repeat(64);
  match(containerNameOf(long), /^oci-[0-9a-f]{32}$/);
  equal(containerNameOf(long), containerNameOf(long));
});

test("runc's command line: global options first, -flag and --flag, values with = or apart", () => {
  const a = parseOciArgs([
    "--root",
    "/r",
    "--log=/l",
    "--log-format",
    "json",
    "create",
    "-bundle",
    "/b",
    "--pid-file=/p",
    "id1",
  ]);
  deepEqual({ ...a.global }, { root: "/r", log: "/l", "log-format": "json" });
  equal(a.command, "create");
  deepEqual({ ...a.options }, { bundle: "/b", "pid-file": "/p" });
  deepEqual(a.operands, ["id1"]);
  deepEqual({ ...parseOciArgs(["delete", "-f", "x"]).options }, { force: true });
  deepEqual({ ...parseOciArgs(["list", "-f", "json"]).options }, { format: "json" });
  deepEqual(parseOciArgs(["kill", "--all", "x", "KILL"]).operands, ["x", "KILL"]);
  throws(
    () => parseOciArgs(["create", "--nope", "x"]),
    /unknown option --nope of create \(runc: flag provided but not defined: -nope\)/,
  );
});

test("update's flags: sizes as runc reads them, over a --resources object, merged over the current limits", () => {
  equal(parseBytes("64m", "memory"), 67108864);
  equal(parseBytes("1.5g", "memory"), 1610612736);
  equal(parseBytes("1024", "memory"), 1024);
  equal(parseBytes("-1", "memory-swap"), -1);
  throws(() => parseBytes("lots", "memory"), /invalid value for --memory: "lots"/);
  using dir = tempDir("hako-test-oci-");
  const file = join(dir.path, "r.json");
  writeFileSync(file, JSON.stringify({ memory: { limit: 1 }, cpu: { shares: 100 } }));
  const res = updateResources({ resources: file, memory: "32m", "cpu-quota": "5000" }, () => "");
  deepEqual(res, { memory: { limit: 33554432 }, cpu: { shares: 100, quota: 5000 } });
  deepEqual(updateResources({ resources: "-" }, () => '{"pids":{"limit":7}}'), { pids: { limit: 7 } });
  // OCI's swap counts memory + swap: with the current limit, hako's swap is what it adds
  deepEqual(
    mergedCgroup({ name: "x", memory: { limit: 100 }, pids: { max: 5 } }, { memory: { swap: 300 } }),
    { name: "x", memory: { limit: 100, swap: 200 }, pids: { max: 5 } },
  );
  // (what runc's update drops is refused by its path: oci_resources_test.ts has the rest)
  throws(() => mergedCgroup({}, { memory: { swappiness: 5 } }), /linux\.resources\.memory\.swappiness/);
});

test("needsJsChild: only a spec the native child cannot set up (or no native runner) has its child forked", () => {
  const spec = (more: Record<string, unknown> = {}) =>
    ({ name: "x", rootfs: "/r", command: ["true"], ...more }) as unknown as ContainerSpec;
  const mounts = (...m: unknown[]) => spec({ mounts: m });
  equal(needsJsChild(spec(), true, parseOptions), false);
  equal(needsJsChild(spec(), false, parseOptions), true, "HAKO_NATIVE_SPAWN=0, or no runner for the architecture");
  equal(
    needsJsChild(
      mounts({ type: "bind", source: "/s", target: "/t", options: ["ro", "nosuid"] }, {
        type: "tmpfs",
        source: "tmpfs",
        target: "/m",
        options: ["size=64m", "nosuid", "nodev"],
        readonly: true,
      }),
      true,
      parseOptions,
    ),
    false,
  );
  for (const o of ["remount", "move", "bind", "rbind"]) {
    equal(needsJsChild(mounts({ type: "tmpfs", target: "/m", options: [o] }), true, parseOptions), true, o);
  }
  // (propagation is a plain mount(2) of its own after the filesystem's, on the native path too)
  for (const o of ["shared", "rshared", "rslave", "private", "unbindable", "posixacl"]) {
    equal(needsJsChild(mounts({ type: "tmpfs", target: "/m", options: [o] }), true, parseOptions), false, o);
  }
  equal(needsJsChild(spec({ hooks: { provision: () => {} } }), true, parseOptions), true);
  equal(needsJsChild(spec({ network: { veth: {} } }), true, parseOptions), true);
});

// ---- a bundle driven directly --------------------------------------------------------------------

/** A bundle with a busybox rootfs and runc's default config, its process changed by `edit`. */
function makeBundle(dir: string, edit: (c: Record<string, Record<string, unknown>>) => void): string {
  const bundle = join(dir, "bundle");
  mkdirSync(bundle);
  buildRootfs(join(bundle, "rootfs"), { builder: "busybox" });
  const runc = launcher(dir);
  const r = runIt(runc, ["spec", "--bundle", bundle]);
  equal(r.status, 0, r.stderr);
  const c = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
  c.process.terminal = false;
  c.root.readonly = false;
  edit(c);
  writeFileSync(join(bundle, "config.json"), JSON.stringify(c));
  return bundle;
}

const PATHS: ReadonlyArray<readonly [string, Record<string, string>]> = [
  ["the native child", {}],
  ["the forked child", { HAKO_NATIVE_SPAWN: "0" }],
];

/**
 * hako-runc on the native child and on the forked one, and runc when `runcToo`: each with a `run`
 * of a bundle (a fresh container id, a `--root` of its own under `dir`).
 */
function hakoAndRunc(dir: string, runcToo: boolean): Array<{ who: string; run: (bundle: string) => Run }> {
  return runtimesToCompare(dir).filter((r) => runcToo || r.who !== "runc").map(({ who, bin, env }) => ({
    who,
    run: (bundle) =>
      runIt(bin, ["--root", join(dir, `state-${who}`), "run", "--bundle", bundle, `hako-test-${who}-${suffix()}`], env),
  }));
}

/** Whether this host's runc is 1.2 or newer (1.1, Debian 12's, ignores runtime-spec 1.1's domainname and personality). */
function runc12(): boolean {
  const v = has(RUNC) ? /runc version (\d+)\.(\d+)/.exec(runIt(RUNC, ["--version"]).stdout) : null;
  return v !== null && (Number(v[1]) > 1 || Number(v[2]) >= 2);
}

test(
  "a command that is not there, or not executable, fails create in runc's words (podman's 127 and 126), on both paths",
  () => {
    using dir = tempDir("hako-test-oci-lookup-");
    for (
      const [args, words] of [
        [["nonexistent"], /exec: \\?"nonexistent\\?": executable file not found in \$PATH/],
        [["/etc/passwd"], /exec: \\?"\/etc\/passwd\\?": permission denied/],
      ] as const
    ) {
      const sub = join(dir.path, args[0].replaceAll("/", "_"));
      mkdirSync(sub);
      const bundle = makeBundle(sub, (c) => {
        c.process!.args = [...args];
      });
      for (const { who, bin, env } of runtimesToCompare(dir.path)) {
        const root = join(dir.path, `state-${who}`);
        const id = `hako-test-lookup-${suffix()}`;
        const r = runIt(bin, ["--root", root, "create", "--bundle", bundle, id], env);
        equal(r.status, 1, `${who}: ${r.stdout}`);
        match(r.stderr, words, who);
        // nothing left behind: no container of that id
        equal(runIt(bin, ["--root", root, "state", id], env).status, 1, who);
      }
    }
  },
  { skip },
);

test(
  "--rootless true|false|auto as runc's: root may make the cgroup either way (the rootless manager lets only a permission error go); other values refused",
  () => {
    using dir = tempDir("hako-test-oci-rootless-flag-");
    const bundle = makeBundle(dir.path, (c) => {
      c.process!.args = ["sleep", "30"];
    });
    const runc = launcher(dir.path);
    const root = join(dir.path, "state");
    for (const flag of ["true", "false", "auto"]) {
      const id = `hako-test-rl-${flag}-${suffix()}`;
      try {
        const r = runIt(runc, ["--rootless", flag, "--root", root, "create", "--bundle", bundle, id]);
        equal(r.status, 0, r.stderr);
        const record = JSON.parse(readFileSync(join(root, id, "state.json"), "utf8"));
        equal(record.cgroupName !== undefined, true, `--rootless ${flag}: ${JSON.stringify(record.cgroupName)}`);
      } finally {
        runIt(runc, ["--root", root, "delete", "--force", id]);
      }
    }
    const bad = runIt(runc, ["--rootless", "maybe", "--root", root, "list"]);
    equal(bad.status, 1);
    match(bad.stderr, /invalid --rootless value "maybe": true, false or auto/);
  },
  { skip },
);

test("without a cgroup namespace, /sys/fs/cgroup holds the container's own cgroups, as runc binds them", () => {
  using dir = tempDir("hako-test-oci-cgview-");
  const bundle = makeBundle(dir.path, (c) => {
    const linux = c.linux as { namespaces: Array<{ type: string }>; resources?: Record<string, unknown> };
    linux.namespaces = linux.namespaces.filter((n) => n.type !== "cgroup");
    linux.resources = { ...linux.resources, memory: { limit: 48 << 20 }, pids: { limit: 30 } };
    // (the child cgroups each hierarchy shows: none but the container's own subtree's)
    c.process!.args = [
      "sh",
      "-c",
      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; " +
      "find /sys/fs/cgroup/memory /sys/fs/cgroup/pids -mindepth 1 -maxdepth 1 -type d | wc -l",
    ];
  });
  if (existsSync("/sys/fs/cgroup/cgroup.controllers")) return; // (a v2 host: runc mounts the whole cgroup2 tree there)
  for (const { who, run } of hakoAndRunc(dir.path, has(RUNC))) {
    const r = run(bundle);
    equal(r.status, 0, `${who}: ${r.stderr}`);
    equal(r.stdout, "50331648\n30\n0\n", who);
  }
}, { skip });

test(
  "/sys/fs/cgroup shows every hierarchy the container is in — cpuset, freezer, name=systemd — each its own cgroup, as runc's, with and without a cgroup namespace",
  () => {
    if (existsSync("/sys/fs/cgroup/cgroup.controllers")) return; // (a v2 host: one cgroup2 mount there)
    using dir = tempDir("hako-test-oci-cgall-");
    // Each entry of /sys/fs/cgroup, and whether the container's init (PID 1 inside) is in the cgroup
    // shown there, i.e. it is the container's own.
    const script = 'for d in /sys/fs/cgroup/*/; do n=$(basename "$d"); ' +
      'if grep -qx 1 "$d/cgroup.procs" 2>/dev/null; then echo "$n own"; else echo "$n -"; fi; done';
    for (const cgroupns of [false, true]) {
      const sub = join(dir.path, `ns-${cgroupns}`);
      mkdirSync(sub);
      const bundle = makeBundle(sub, (c) => {
        const linux = c.linux as { namespaces: Array<{ type: string }> };
        linux.namespaces = [
          ...linux.namespaces.filter((n) => n.type !== "cgroup"),
          ...(cgroupns ? [{ type: "cgroup" }] : []),
        ];
        c.process!.args = ["sh", "-c", script];
      });
      const seen = new Map<string, string[]>();
      for (const { who, run } of hakoAndRunc(sub, has(RUNC))) {
        const r = run(bundle);
        equal(r.status, 0, `${who}: ${r.stderr}`);
        seen.set(who, r.stdout.trim().split("\n"));
      }
      const hierarchies = readFileSync("/proc/self/mountinfo", "utf8").split("\n")
        .map((l) => l.split(" ")[4] ?? "").filter((p) => /^\/sys\/fs\/cgroup\/[^/]+$/.test(p))
        .map((p) => p.slice("/sys/fs/cgroup/".length));
      for (const [who, lines] of seen) {
        // (every mounted hierarchy: hako's own (memory, pids…), the others it joined (cpuset,
        // freezer, name=systemd, a hybrid host's cgroup2 tree))
        // (runc 1.1 leaves a hybrid host's cgroup2 tree out; hako shows the container's own there too)
        for (const h of hierarchies.filter((h) => who !== "runc" || h !== "unified")) {
          ok(lines.includes(`${h} own`), `${who}, cgroupns ${cgroupns}: ${h} in ${lines}`);
        }
        const runc = seen.get("runc");
        if (runc) deepEqual(lines.filter((l) => l !== "unified own"), runc, `${who} as runc, cgroupns ${cgroupns}`);
      }
    }
  },
  { skip },
);

test("--preserve-fds and systemd's LISTEN_FDS: what create, run and exec pass on, counted and checked as runc does", () => {
  const open = (fds: number[]) => (fd: number) => fds.includes(fd);
  deepEqual(fdsToPass(undefined, {}, 10, true, open([])), { listen: 0, total: 0 });
  deepEqual(fdsToPass("2", {}, 10, true, open([3, 4])), { listen: 0, total: 2 });
  deepEqual(fdsToPass("-1", {}, 10, true, open([])), { listen: 0, total: 0 });
  throws(() => fdsToPass("x", {}, 10, true, open([])), /invalid value "x" for flag -preserve-fds: parse error/);
  throws(() => fdsToPass("1.5", {}, 10, true, open([])), /parse error/);
  throws(
    () => fdsToPass("3", {}, 10, true, open([3, 4])),
    /^OciError: unable to stat preserved-fd 2 \(of 3\): faccessat \/proc\/self\/fd\/5: no such file/,
  );
  // socket activation of the runtime itself: only when LISTEN_PID is this process; its fds first
  const env = { LISTEN_PID: "10", LISTEN_FDS: "2" };
  deepEqual(fdsToPass("1", env, 10, true, open([3, 4, 5])), { listen: 2, total: 3 });
  throws(() => fdsToPass("1", env, 10, true, open([3, 4])), /preserved-fd 0 \(of 1\): faccessat \/proc\/self\/fd\/5/);
  deepEqual(fdsToPass(undefined, env, 11, true, open([])), { listen: 0, total: 0 });
  deepEqual(fdsToPass(undefined, { ...env, LISTEN_FDS: "x" }, 10, true, open([])), { listen: 0, total: 0 });
  deepEqual(fdsToPass(undefined, env, 10, false, open([])), { listen: 0, total: 0 }, "exec: no activation");
  deepEqual(
    (withListenFds({ process: { env: ["A=b"] } }, 2) as { process: { env: string[] } }).process.env,
    ["A=b", "LISTEN_FDS=2", "LISTEN_PID=1"],
  );
  equal(withListenFds("nonsense", 1), "nonsense");
  // the library's check (Container.create's and execIn's preserveFds): a count, each fd open
  throws(() => passPreservedFds(-1), /preserveFds: -1: a count of fds from 3 on/);
  throws(() => passPreservedFds(1.5), /preserveFds: 1.5: a count/);
  throws(() => passPreservedFds(1 << 19), /preserveFds: 524288 passes fds 3 to 524290, and fd \d+ is not open \(fcntl/);
  // inheritFd: the close-on-exec flag cleared (Bun sets it on every inherited fd above 3)
  const fd = openat(AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC);
  const cloexec = () =>
    (parseInt(/flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1]!, 8) & 0o2000000) !== 0;
  try {
    equal(cloexec(), true);
    inheritFd(fd);
    equal(cloexec(), false);
  } finally {
    closeAt(fd);
  }
});

test(
  "--preserve-fds: the caller's fds 3… reach the command of run, create/start and exec, and no other of the runtime's, with hako as with runc",
  () => {
    using dir = tempDir("hako-test-oci-fds-");
    const input = join(dir.path, "in"), output = join(dir.path, "out");
    writeFileSync(input, "passed\n");
    const bundle = makeBundle(dir.path, (c) => {
      c.process!.args = ["sh", "-c", "cat <&3; echo written >&4; ls /proc/self/fd | tr '\\n' ' '; env | grep ^LISTEN_"];
    });
    const sleeper = join(dir.path, "sleeper");
    mkdirSync(sleeper);
    const config = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
    config.root.path = join(bundle, "rootfs");
    config.process.args = ["sh", "-c", 'cat <&3 > "/got-$WHO"; exec sleep 60'];
    const withFds = <T>(fn: (fds: number[]) => T): T => {
      const fds = [openSync(input, "r"), openSync(output, "w")];
      try {
        return fn(fds);
      } finally {
        fds.forEach((fd) => closeSync(fd));
      }
    };
    for (const { who, bin, env } of runtimesToCompare(dir.path)) {
      const root = join(dir.path, `state-${who}`);
      const oci = (args: string[], fds: number[] = [], wrap: string[] = []) =>
        runIt(wrap.length ? "sh" : bin, [...wrap, ...(wrap.length ? [bin] : []), "--root", root, ...args], env, fds);
      // run: fds 3 and 4 are the caller's; the runtime's own above them are not passed
      let r = withFds((fds) =>
        oci(["run", "--preserve-fds", "2", "--bundle", bundle, `hako-test-fds-${suffix()}`], fds)
      );
      equal(r.status, 1, `${who}: ${r.stderr}`); // (grep found no LISTEN_)
      equal(r.stdout, "passed\n0 1 2 3 4 5 ", who);
      equal(readFileSync(output, "utf8"), "written\n", who);
      // socket-activated runtime: LISTEN_FDS' fds first, then the preserved ones
      r = withFds((fds) =>
        oci(["run", "--preserve-fds", "1", "--bundle", bundle, `hako-test-fds-${suffix()}`], fds, [
          "-c",
          'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"',
        ])
      );
      equal(r.status, 0, `${who}: ${r.stderr}`);
      equal(r.stdout, "passed\n0 1 2 3 4 5 LISTEN_FDS=1\nLISTEN_PID=1\n", who);
      // an fd that is not open: refused before anything is made
      const id = `hako-test-fds-${suffix()}`;
      r = withFds((fds) => oci(["run", "--preserve-fds", "1000", "--bundle", bundle, id], fds));
      equal(r.status, 1, who);
      match(r.stderr, /unable to stat preserved-fd \d+ \(of 1000\)/, who);
      equal(oci(["state", id]).status, 1, `${who}: no container left`);
      // create holds them until start; exec passes its own caller's
      writeFileSync(
        join(sleeper, "config.json"),
        JSON.stringify({ ...config, process: { ...config.process, env: [...config.process.env, `WHO=${who}`] } }),
      );
      const cid = `hako-test-fds-${suffix()}`;
      try {
        r = withFds((fds) => oci(["create", "--preserve-fds", "1", "--bundle", sleeper, cid], fds));
        equal(r.status, 0, `${who}: ${r.stderr}`);
        equal(oci(["start", cid]).status, 0, who);
        const got = join(bundle, "rootfs", `got-${who}`);
        for (let i = 0; i < 100 && !(existsSync(got) && readFileSync(got, "utf8")); i++) spawnSync("sleep", ["0.05"]);
        equal(readFileSync(got, "utf8"), "passed\n", who);
        r = withFds((fds) =>
          oci(["exec", "--preserve-fds", "1", cid, "sh", "-c", "cat <&3; ls /proc/self/fd | tr '\\n' ' '"], fds)
        );
        equal(r.status, 0, `${who}: ${r.stderr}`);
        equal(r.stdout, "passed\n0 1 2 3 4 ", who);
      } finally {
        oci(["delete", "--force", cid]);
      }
    }
  },
  { skip },
);

test(
  "a bundle's /sys and /sys/fs/cgroup without ro (--privileged's) are read-write; the cgroup is in name=systemd too, with hako as with runc",
  () => {
    using dir = tempDir("hako-test-oci-rw-");
    const path = `/hako-test-rw-${suffix()}`;
    const script = 'awk \'$5 == "/sys" || $5 == "/sys/fs/cgroup/pids" {print $5, $6}\' /proc/self/mountinfo | sort; ' +
      "grep name=systemd /proc/self/cgroup; mkdir /sys/fs/cgroup/pids/x && rmdir /sys/fs/cgroup/pids/x && echo made";
    const bundle = makeBundle(dir.path, (c) => {
      c.process!.args = ["sh", "-c", script];
      for (const m of c.mounts as unknown as Array<{ destination: string; options?: string[] }>) {
        if (m.destination === "/sys" || m.destination === "/sys/fs/cgroup") {
          m.options = (m.options ?? []).filter((o) => o !== "ro");
        }
      }
      c.linux!.cgroupsPath = path;
      c.linux!.resources = { ...(c.linux!.resources as object), pids: { limit: 40 } };
    });
    const named = existsSync("/sys/fs/cgroup/systemd/cgroup.procs");
    const outs = new Map<string, string>();
    try {
      for (const { who, run } of hakoAndRunc(dir.path, has(RUNC))) {
        const r = run(bundle);
        equal(r.status, 0, `${who}: ${r.stderr}`);
        outs.set(who, r.stdout);
        equal(
          r.stdout,
          `/sys rw,nosuid,nodev,noexec,relatime\n/sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime\n${
            named ? `${r.stdout.match(/\d+:name=systemd:/)?.[0] ?? "?:name=systemd:"}/\n` : ""
          }made\n`,
          who,
        );
        if (named) equal(existsSync(`/sys/fs/cgroup/systemd${path}`), false, `${who}: its name=systemd cgroup removed`);
      }
      // and without --privileged's options, read-only as before
      const c = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
      for (const m of c.mounts) {
        if (m.destination === "/sys" || m.destination === "/sys/fs/cgroup") m.options.push("ro");
      }
      writeFileSync(join(bundle, "config.json"), JSON.stringify(c));
      const [native] = hakoAndRunc(dir.path, false);
      const r = native!.run(bundle);
      equal(r.status, 1, r.stdout);
      match(r.stdout, /^\/sys ro,nosuid,nodev,noexec,relatime\n\/sys\/fs\/cgroup\/pids ro,/);
    } finally {
      for (const h of ["systemd", "pids"]) {
        try {
          rmdirSync(`/sys/fs/cgroup/${h}${path}`);
        } catch { /* gone */ }
      }
    }
  },
  { skip },
);

test("domainname: the container's UTS namespace's, with hako as with runc ≥ 1.2 (1.1 ignores it)", () => {
  using dir = tempDir("hako-test-oci-domain-");
  const bundle = makeBundle(dir.path, (c) => {
    c.process!.args = ["cat", "/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname"];
    (c as Record<string, unknown>).hostname = "box";
    (c as Record<string, unknown>).domainname = "hako.example";
  });
  for (const { who, run } of hakoAndRunc(dir.path, runc12())) {
    const r = run(bundle);
    equal(r.status, 0, `${who}: ${r.stderr}`);
    equal(r.stdout, "box\nhako.example\n", `${who}: ${r.stdout}`);
  }
}, { skip });

test(
  "a bind's rshared and linux.rootfsPropagation: the container's mount under it reaches the host, with hako as with runc",
  () => {
    using dir = tempDir("hako-test-oci-prop-");
    chmodSync(dir.path, 0o755);
    // a shared source, as systemd makes "/" (this machine's mounts are all private)
    const shared = join(dir.path, "shared");
    mkdirSync(shared);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "hako-test-shared", shared]);
    try {
      execFileSync("mount", ["--make-shared", shared]);
      const bundle = makeBundle(dir.path, (c) => {
        c.process!.args = ["sh", "-c", 'mount -t tmpfs x "/bi/from-$WHO" && awk \'$5 == "/"\' /proc/self/mountinfo'];
        const caps = c.process!.capabilities as Record<string, string[]>;
        for (const set of ["bounding", "effective", "permitted"]) caps[set] = [...caps[set]!, "CAP_SYS_ADMIN"];
        (c.mounts as unknown as unknown[]).push({
          destination: "/bi",
          type: "bind",
          source: shared,
          options: ["rbind", "rshared"],
        });
        c.linux!.rootfsPropagation = "rshared";
      });
      const config = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
      for (const { who, run } of hakoAndRunc(dir.path, has(RUNC))) {
        mkdirSync(join(shared, `from-${who}`));
        config.process.env = [...config.process.env.filter((e: string) => !e.startsWith("WHO=")), `WHO=${who}`];
        writeFileSync(join(bundle, "config.json"), JSON.stringify(config));
        const r = run(bundle);
        equal(r.status, 0, `${who}: ${r.stderr}`);
        // (Debian's runc 1.1.5 leaves its container's root private: it sets rootfsPropagation on
        // the namespace's "/" before pivot_root, the rootfs's bind made private after; hako sets it
        // on the container's root)
        if (who !== "runc") match(r.stdout, / shared:\d+ /, `${who}: the container's root is shared: ${r.stdout}`);
        const mounted = readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) =>
          l.split(" ")[4] === join(shared, `from-${who}`)
        );
        ok(mounted, `${who}: the mount made inside is on the host`);
      }
    } finally {
      spawnSync("umount", ["-R", "-l", shared]);
    }
  },
  { skip },
);

for (const [path, env] of PATHS) {
  test(`create stops before execve until start (exec fifo), then delete removes cgroup and state (${path})`, () => {
    using dir = tempDir("hako-test-oci-");
    const id = `hako-test-oci-${suffix()}`;
    const out = join(dir.path, "bundle/rootfs/out");
    const bundle = makeBundle(dir.path, (c) => {
      // (a bind's nosuid, nodev, noexec: its remount flags, as runc's)
      c.process!.args = [
        "sh",
        "-c",
        "{ echo ran; grep ' /mnt ' /proc/self/mountinfo | cut -d' ' -f6; } > /out; sleep 30",
      ];
      (c.mounts as unknown as unknown[]).push({
        destination: "/mnt",
        type: "bind",
        source: dir.path,
        options: ["rbind", "nosuid", "nodev", "noexec", "ro"],
      });
      (c.linux as Record<string, unknown>).cgroupsPath = `/hako-test-oci/${id}`;
    });
    const runc = launcher(dir.path);
    const root = join(dir.path, "state");
    const oci = (...args: string[]) => runIt(runc, ["--root", root, ...args], env);
    try {
      const pidFile = join(dir.path, "pid");
      let r = oci("create", "--bundle", bundle, "--pid-file", pidFile, id);
      equal(r.status, 0, r.stderr);
      const pid = Number(readFileSync(pidFile, "utf8"));
      ok(pid > 0);
      let state = JSON.parse(oci("state", id).stdout);
      equal(state.status, "created");
      equal(state.pid, pid);
      equal(state.id, id);
      equal(state.bundle, bundle);
      ok(existsSync(`/proc/${pid}`), "the container's process waits after create exited");
      ok(!existsSync(out), "the command has not run before start");
      equal(existingCgroupDirs(`hako-test-oci/${id}`).length > 0, true);
      equal(oci("start", id).status, 0);
      // (the file is there once the shell opened it, its line a moment later)
      const ran = () => existsSync(out) && readFileSync(out, "utf8").split("\n").length === 3;
      for (let i = 0; i < 200 && !ran(); i++) spawnSync("sleep", ["0.05"]);
      match(readFileSync(out, "utf8"), /^ran\nro,nosuid,nodev,noexec(,[a-z]+)*\n$/);
      state = JSON.parse(oci("state", id).stdout);
      equal(state.status, "running");
      deepEqual(JSON.parse(oci("ps", "--format", "json", id).stdout), [pid]);
      r = oci("start", id);
      equal(r.status, 1);
      match(r.stderr, /cannot start an already running container/);
      r = oci("delete", id);
      equal(r.status, 1);
      match(r.stderr, /cannot delete container .* that is not stopped: running/);
      // pause: frozen (state "paused", the process in D), resume: running again
      equal(oci("pause", id).status, 0);
      equal(JSON.parse(oci("state", id).stdout).status, "paused");
      equal(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]![0], "D");
      r = oci("pause", id);
      equal(r.status, 1);
      match(r.stderr, /container not running/);
      r = oci("delete", id);
      equal(r.status, 1);
      match(r.stderr, /cannot delete container .* that is not stopped: paused/);
      equal(oci("resume", id).status, 0);
      equal(JSON.parse(oci("state", id).stdout).status, "running");
      r = oci("resume", id);
      equal(r.status, 1);
      match(r.stderr, /container not paused/);
      // update: runc's flags, then a linux.resources file, written to the live cgroup
      const knob = (file: string) =>
        readFileSync(existingCgroupDirs(`hako-test-oci/${id}`).map((d) => join(d, file)).find(existsSync)!, "utf8")
          .trim();
      r = oci("update", "--memory", "32m", "--pids-limit", "20", "--cpu-quota", "20000", "--cpu-period", "100000", id);
      equal(r.status, 0, r.stderr);
      deepEqual([knob("memory.limit_in_bytes"), knob("pids.max"), knob("cpu.cfs_quota_us")], [
        "33554432",
        "20",
        "20000",
      ]);
      const resources = join(dir.path, "resources.json");
      writeFileSync(resources, JSON.stringify({ memory: { limit: 67108864, swap: 134217728 }, pids: { limit: 30 } }));
      r = oci("update", "--resources", resources, id);
      equal(r.status, 0, r.stderr);
      deepEqual([knob("memory.limit_in_bytes"), knob("memory.memsw.limit_in_bytes"), knob("pids.max")], [
        "67108864",
        "134217728",
        "30",
      ]);
      // what hako does not support: refused by its path, nothing changed
      writeFileSync(resources, JSON.stringify({ rdma: { mlx5_1: { hcaHandles: 3 } }, pids: { limit: 40 } }));
      r = oci("update", "--resources", resources, id);
      equal(r.status, 1);
      equal(r.stderr, "linux.resources.rdma: not changed by update (runc's update does not apply it either)\n");
      equal(knob("pids.max"), "30");
      equal(oci("pause", id).status, 0);
      r = oci("start", id);
      equal(r.status, 1);
      match(r.stderr, /cannot start a container in the paused state/);
      // (the forked run signals every process of the cgroup: --all) — SIGKILL of a paused
      // container: thawed after the signal, it dies
      equal(oci("kill", ...(env.HAKO_NATIVE_SPAWN === "0" ? ["--all"] : []), id, "9").status, 0);
      for (let i = 0; i < 100 && JSON.parse(oci("state", id).stdout).status !== "stopped"; i++) {
        spawnSync("sleep", ["0.05"]);
      }
      equal(JSON.parse(oci("state", id).stdout).status, "stopped");
      r = oci("kill", id, "TERM");
      equal(r.status, 1);
      match(r.stderr, /container not running/);
      equal(oci("delete", id).status, 0);
      deepEqual(existingCgroupDirs(`hako-test-oci/${id}`), []);
      equal(existsSync(`/sys/fs/cgroup/freezer/hako-test-oci/${id}`), false);
      r = oci("state", id);
      equal(r.status, 1);
      match(r.stderr, /container does not exist/);
    } finally {
      oci("delete", "--force", id);
      // (the parent a cgroupsPath names is made if missing and kept, as hako keeps a cgroup.parent)
      for (const d of existingCgroupDirs("hako-test-oci")) {
        try {
          rmdirSync(d);
        } catch { /* another test's container is in it */ }
      }
    }
  }, { skip });
}

test("run in the foreground exits with the container's status; errors go to --log as runc's JSON lines", () => {
  using dir = tempDir("hako-test-oci-");
  const id = `hako-test-oci-${suffix()}`;
  const bundle = makeBundle(dir.path, (c) => {
    c.process!.args = ["sh", "-c", "echo out; hostname; exit 3"];
  });
  const runc = launcher(dir.path);
  const root = join(dir.path, "state");
  const log = join(dir.path, "log.json");
  try {
    const r = runIt(runc, ["--root", root, "run", "--bundle", bundle, id]);
    equal(r.status, 3, r.stderr);
    equal(r.stdout, "out\nrunc\n");
    deepEqual(readdirSync(root), []);
    const s = runIt(runc, ["--root", root, "--log", log, "--log-format", "json", "state", "nope"]);
    equal(s.status, 1);
    equal(s.stderr, "container does not exist\n");
    const line = JSON.parse(readFileSync(log, "utf8").trim());
    equal(line.level, "error");
    equal(line.msg, "container does not exist");
    ok(!Number.isNaN(Date.parse(line.time)));
    // a command it does not know is logged too (containerd's shim reads the log for the message)
    equal(runIt(runc, ["--root", root, "--log", log, "--log-format", "json", "checkpoint", id]).status, 1);
    equal(JSON.parse(readFileSync(log, "utf8").trim().split("\n").at(-1)!).msg, "No help topic for 'checkpoint'");
    // a session keyring of its own (runc's _ses.ID), not the caller's, which it could read else
    const cfg = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
    cfg.process.args = ["sh", "-c", "grep -c ' _ses\\.' /proc/keys; grep -o '_ses\\.[^:]*' /proc/keys"];
    cfg.linux.maskedPaths = [];
    writeFileSync(join(bundle, "config.json"), JSON.stringify(cfg));
    const keys = runIt(runc, ["--root", root, "run", "--bundle", bundle, id]);
    equal(keys.status, 0, keys.stderr);
    ok(keys.stdout.split("\n").includes(`_ses.${id}`), keys.stdout);

    // a field hako cannot honour: refused by its JSON path, nothing made
    cfg.linux.intelRdt = { closID: "x" };
    writeFileSync(join(bundle, "config.json"), JSON.stringify(cfg));
    const bad = runIt(runc, ["--root", root, "--log", log, "--log-format", "json", "create", "--bundle", bundle, id]);
    equal(bad.status, 1);
    equal(bad.stderr, "linux.intelRdt: not supported by hako\n");
    equal(
      JSON.parse(readFileSync(log, "utf8").trim().split("\n").at(-1)!).msg,
      "linux.intelRdt: not supported by hako",
    );
    deepEqual(JSON.parse(runIt(runc, ["--root", root, "list", "--format", "json"]).stdout), []);
    match(runIt(runc, ["spec", "--bundle", bundle]).stderr, /File config.json exists/);
    const f = JSON.parse(runIt(runc, ["features"]).stdout);
    deepEqual(f.hooks, ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]);
    equal(f.linux.cgroup.systemd, true); // (tests/systemd_cgroup_test.ts)
    for (const o of ["rshared", "rslave", "runbindable", "rprivate"]) ok(f.mountOptions.includes(o), o);
    const sys = runIt(runc, ["--root", root, "--systemd-cgroup", "state", id]);
    equal(sys.status, 1);
    match(sys.stderr, /container does not exist/);
  } finally {
    runIt(runc, ["--root", root, "delete", "--force", id]);
  }
}, { skip });

test(
  "hooks: prestart and createRuntime in create, poststart after start, poststop after delete, each with the state on stdin",
  () => {
    using dir = tempDir("hako-test-oci-");
    const id = `hako-test-oci-${suffix()}`;
    const out = join(dir.path, "hooks");
    mkdirSync(out);
    // (a hook's environment is its env only: PATH and OUT given; $1 names the file it writes)
    const script = join(dir.path, "hook.sh");
    writeFileSync(script, `#!/bin/sh\ncat > "$OUT/$1"; echo "$# $FOO" >> "$OUT/$1.argv"\n`);
    chmodSync(script, 0o755);
    const hook = (name: string, extra: Record<string, unknown> = {}) => ({
      path: script,
      args: ["my-hook", name],
      env: ["PATH=/usr/bin:/bin", `OUT=${out}`, "FOO=bar"],
      ...extra,
    });
    const hooks: Record<string, unknown> = {
      prestart: [hook("prestart")],
      createRuntime: [hook("createRuntime", { timeout: 5 })],
      poststart: [hook("poststart")],
      poststop: [hook("poststop")],
    };
    const bundle = makeBundle(dir.path, (c) => {
      c.process!.args = ["sleep", "30"];
      (c as Record<string, unknown>).hooks = hooks;
    });
    const runc = launcher(dir.path);
    const root = join(dir.path, "state");
    const oci = (...args: string[]) => runIt(runc, ["--root", root, ...args]);
    const read = (name: string) => JSON.parse(readFileSync(join(out, name), "utf8"));
    const setHooks = (h: Record<string, unknown>) => {
      const c = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
      c.hooks = h;
      writeFileSync(join(bundle, "config.json"), JSON.stringify(c));
    };
    try {
      let r = oci("create", "--bundle", bundle, id);
      equal(r.status, 0, r.stderr);
      const pid = JSON.parse(oci("state", id).stdout).pid;
      for (const name of ["prestart", "createRuntime"]) {
        const s = read(name);
        deepEqual([s.id, s.status, s.pid, s.bundle], [id, "creating", pid, bundle], name);
        // (args[0] is argv[0], which a script's $0 cannot show: one argument left, and FOO)
        equal(readFileSync(join(out, `${name}.argv`), "utf8"), "1 bar\n");
      }
      ok(!existsSync(join(out, "poststart")), "poststart waits for start");
      equal(oci("start", id).status, 0);
      deepEqual([read("poststart").status, read("poststart").pid], ["running", pid]);
      equal(oci("kill", id, "KILL").status, 0);
      for (let i = 0; i < 100 && JSON.parse(oci("state", id).stdout).status !== "stopped"; i++) {
        spawnSync("sleep", ["0.05"]);
      }
      ok(!existsSync(join(out, "poststop")), "poststop waits for delete");
      equal(oci("delete", id).status, 0);
      deepEqual([read("poststop").id, read("poststop").status], [id, "stopped"]);

      // a failing prestart fails create, which undoes the container (and runs poststop)
      rmSync(join(out, "poststop"));
      setHooks({ ...hooks, prestart: [{ path: "/bin/sh", args: ["sh", "-c", "echo nope >&2; exit 3"] }] });
      r = oci("create", "--bundle", bundle, id);
      equal(r.status, 1);
      match(r.stderr, /^hooks\.prestart\[0\] \(\/bin\/sh\): exit status 3: nope\n$/);
      match(oci("state", id).stderr, /container does not exist/);
      deepEqual(existingCgroupDirs(`hako/${id}`), []);
      equal(read("poststop").status, "stopped");
      // a createRuntime hook past its timeout: killed, create fails
      setHooks({ createRuntime: [{ path: "/bin/sleep", args: ["sleep", "20"], timeout: 1 }] });
      r = oci("create", "--bundle", bundle, id);
      equal(r.status, 1);
      match(r.stderr, /hooks\.createRuntime\[0\] \(\/bin\/sleep\): timed out after 1 s/);
      // a failing poststart is only logged: the container runs
      setHooks({ poststart: [{ path: "/bin/false" }] });
      r = oci("run", "--bundle", bundle, "--detach", id);
      equal(r.status, 0, r.stderr);
      match(r.stderr, /warning: hooks\.poststart\[0\] \(\/bin\/false\): exit status 1/);
      equal(JSON.parse(oci("state", id).stdout).status, "running");
      // (createContainer and startContainer: tests/oci_hooks_test.ts)
    } finally {
      oci("delete", "--force", id);
    }
  },
  { skip },
);

// ---- podman --------------------------------------------------------------------------------------

test("podman runs containers with --runtime bin/hako-runc as it does with runc", () => {
  using dir = tempDir("hako-test-oci-podman-");
  const tag = `hako-test-oci-${suffix()}`;
  const runc = launcher(dir.path);
  const base = podmanStorage(dir.path);
  // (the runtime's state is under its default --root, /run/hako-runc, as runc's is under /run/runc:
  // podman 4.3 does not pass --runtime-flag to the cleanup it has conmon run, whose delete would
  // then look elsewhere)
  const podman = (runtimePath: string, ...args: string[]) =>
    runIt("podman", [
      ...base,
      "--runtime",
      runtimePath,
      ...args,
    ]);
  const limits = PODMAN_RUN_LIMITS;
  const run = (runtimePath: string, ...args: string[]) => podman(runtimePath, "run", "--rm", ...limits, ...args);
  try {
    // the image: a busybox rootfs, imported
    const rootfs = join(dir.path, "rootfs");
    buildRootfs(rootfs, { builder: "busybox" });
    const tar = join(dir.path, "rootfs.tar");
    execFileSync("tar", ["-C", rootfs, "-cf", tar, "."]);
    let r = podman(runc, "import", tar, tag);
    equal(r.status, 0, r.stderr);

    // output and exit codes, as runc gives them
    r = run(runc, tag, "echo", "hi");
    equal(r.status, 0, r.stderr);
    equal(r.stdout, "hi\n");
    r = run(runc, tag, "sh", "-c", "exit 7");
    equal(r.status, 7, r.stderr);
    const script = "id; hostname; echo $FOO; cat /v/f; grep CapEff /proc/self/status";
    const vol = join(dir.path, "vol");
    mkdirSync(vol);
    writeFileSync(join(vol, "f"), "volume\n");
    const opts = ["--user", "1000:1000", "--hostname", "hh", "-e", "FOO=bar", "-v", `${vol}:/v`, "--cap-drop", "all"];
    const mine = run(runc, ...opts, tag, "sh", "-c", script);
    equal(mine.status, 0, mine.stderr);
    match(
      mine.stdout,
      /^uid=1000(\(\w+\))? gid=1000(\(\w+\))? groups=1000(\(\w+\))?\nhh\nbar\nvolume\nCapEff:\t0{16}\n$/,
    );
    if (has(RUNC)) equal(run(RUNC, ...opts, tag, "sh", "-c", script).stdout, mine.stdout);

    // the same on the forked child (podman and conmon pass the runtime no environment of theirs:
    // a launcher sets HAKO_NATIVE_SPAWN=0)
    const forked = join(dir.path, "hako-runc-forked");
    writeFileSync(forked, `#!/bin/sh\nHAKO_NATIVE_SPAWN=0 exec "${runc}" "$@"\n`);
    chmodSync(forked, 0o755);
    equal(run(forked, ...opts, tag, "sh", "-c", script).stdout, mine.stdout);
    equal(run(forked, tag, "sh", "-c", "exit 7").status, 7);
    r = run(forked, "-t", tag, "tty");
    equal(r.stdout.trim(), "/dev/pts/0", r.stderr);

    // containers.conf's no_pivot_root (a host root on a ramdisk): podman passes --no-pivot to the
    // runtime's create; each runtime through a wrapper that notes its command lines
    const conf = join(dir.path, "containers.conf");
    writeFileSync(conf, "[engine]\nno_pivot_root = true\n");
    const npScript = 'awk \'$5 == "/" || $5 == "/proc" {print $5, $9}\' /proc/self/mountinfo; cat /etc/hostname';
    const noPivot = [runc, forked, ...(has(RUNC) ? [RUNC] : [])].map((path, i) => {
      const calls = join(dir.path, `np-calls-${i}`), wrapper = join(dir.path, `np-runtime-${i}`);
      writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> ${calls}\nexec "${path}" "$@"\n`);
      chmodSync(wrapper, 0o755);
      const res = runIt("podman", [
        ...base,
        "--runtime",
        wrapper,
        "run",
        "--rm",
        ...limits,
        "--hostname",
        "np",
        tag,
        "sh",
        "-c",
        npScript,
      ], {
        CONTAINERS_CONF: conf,
      });
      equal(res.status, 0, `${path}: ${res.stderr}`);
      match(readFileSync(calls, "utf8"), /^.*\bcreate\b.*--no-pivot\b.*$/m, path);
      return res.stdout;
    });
    match(noPivot[0]!, /^\/ \S+\n\/proc proc\nnp$/);
    for (const out of noPivot) equal(out, noPivot[0]);

    // the container's cgroups are runc's in every hierarchy: cpuset (no limit set) and a hybrid
    // host's controller-less cgroup2 tree too (where systemd tracks processes), removed after --rm
    const cgroupsOf = (rt: string) => {
      const r = run(rt, tag, "cat", "/proc/self/cgroup");
      equal(r.status, 0, `${rt}: ${r.stderr}`);
      return r.stdout.replace(/libpod-[0-9a-f]{64}/g, "libpod-ID");
    };
    const parents = () =>
      ["cpuset", "unified", "systemd"].map((h) => {
        const d = `/sys/fs/cgroup/${h}/libpod_parent`;
        return existsSync(d) ? readdirSync(d).filter((e) => e.startsWith("libpod-")) : [];
      });
    const before = parents();
    // (and /dev with podman's noexec, as runc mounts it)
    const devOf = (rt: string) => run(rt, tag, "sh", "-c", "grep ' /dev ' /proc/self/mountinfo | cut -d' ' -f6").stdout;
    match(devOf(runc), /^rw,nosuid,noexec\b/);
    equal(devOf(forked), devOf(runc), "forked");
    if (has(RUNC)) equal(devOf(RUNC), devOf(runc), "runc");
    const cgroups = cgroupsOf(runc);
    match(cgroups, /^0::\/libpod_parent\/libpod-ID$/m);
    equal(cgroupsOf(forked), cgroups, "forked");
    if (has(RUNC)) equal(cgroupsOf(RUNC), cgroups, "runc");
    deepEqual(parents(), before, "--rm left a cgroup");

    // /dev/shm is the bundle's: podman's --shm-size (a bind of the tmpfs podman made), shared
    // with a container that joins the IPC namespace (--ipc container:, a pod's), none with --ipc none
    const shmOf = (rt: string) => {
      const name = `hako-test-shm-${suffix()}`;
      try {
        const size =
          run(rt, "--shm-size", "8m", tag, "df", "-k", "/dev/shm").stdout.trim().split("\n").pop()!.split(/\s+/)[1];
        const none = run(rt, "--ipc", "none", tag, "sh", "-c", "ls /dev/shm 2>&1; echo $?").stdout;
        const holder = podman(
          rt,
          "run",
          "-d",
          "--name",
          name,
          ...limits,
          "--ipc",
          "shareable",
          tag,
          "sh",
          "-c",
          "echo shared > /dev/shm/f; exec sleep 60",
        );
        equal(holder.status, 0, holder.stderr);
        let got = "";
        for (let i = 0; i < 5 && got !== "shared\n"; i++) {
          if (i > 0) spawnSync("sleep", ["0.3"]); // (the holder's echo, right after its start)
          got = run(rt, "--ipc", `container:${name}`, tag, "sh", "-c", "cat /dev/shm/f 2>&1").stdout;
        }
        return { size, none, got };
      } finally {
        podman(rt, "rm", "-f", "-t", "0", name);
      }
    };
    const shm = shmOf(runc);
    deepEqual(shm, { size: "8192", none: "ls: /dev/shm: No such file or directory\n1\n", got: "shared\n" });
    deepEqual(shmOf(forked), shm, "forked");
    if (has(RUNC)) deepEqual(shmOf(RUNC), shm, "runc");

    // a user namespace (podman's --uidmap: linux.uidMappings), as runc makes it
    const userns = ["--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536"];
    r = run(runc, ...userns, tag, "sh", "-c", "id -u; cat /proc/self/uid_map");
    equal(r.status, 0, r.stderr);
    match(r.stdout, /^0\n\s+0\s+200000\s+65536\n$/);
    if (has(RUNC)) equal(run(RUNC, ...userns, tag, "sh", "-c", "id -u; cat /proc/self/uid_map").stdout, r.stdout);

    // a namespaced sysctl (written in the container's own net namespace, never the host's),
    // oom_score_adj and the umask: as runc sets them
    const host = readFileSync("/proc/sys/net/ipv4/ping_group_range", "utf8");
    const knobs = ["--sysctl", "net.ipv4.ping_group_range=0 5", "--oom-score-adj", "123"];
    const knobScript = "cat /proc/sys/net/ipv4/ping_group_range /proc/self/oom_score_adj; umask";
    r = run(runc, ...knobs, tag, "sh", "-c", knobScript);
    equal(r.status, 0, r.stderr);
    equal(r.stdout, "0\t5\n123\n0022\n");
    if (has(RUNC)) equal(run(RUNC, ...knobs, tag, "sh", "-c", knobScript).stdout, r.stdout);
    equal(readFileSync("/proc/sys/net/ipv4/ping_group_range", "utf8"), host);

    // --read-only: / read-only, podman's binds nosuid,nodev,noexec as runc makes them; with
    // --read-only-tmpfs=false no tmpfs, by default tmpfs at /tmp, /var/tmp, /run with runc's
    // tmpcopyup (tests/tmpcopyup_test.ts)
    const ro = ["--read-only", "--read-only-tmpfs=false"];
    const roScript = "touch /x 2>/dev/null || echo read-only; grep ' /etc/hosts ' /proc/self/mountinfo | cut -d' ' -f6";
    r = run(runc, ...ro, tag, "sh", "-c", roScript);
    equal(r.status, 0, r.stderr);
    equal(r.stdout, "read-only\nro,nosuid,nodev,noexec,relatime\n");
    if (has(RUNC)) equal(run(RUNC, ...ro, tag, "sh", "-c", roScript).stdout, r.stdout);
    const tmpScript =
      "touch /x 2>/dev/null || echo read-only; touch /tmp/x /var/tmp/x /run/x && echo tmpfs writable; " +
      "grep -E ' /(tmp|var/tmp|run) ' /proc/self/mountinfo | cut -d' ' -f5,6,9 | sort";
    r = run(runc, "--read-only", tag, "sh", "-c", tmpScript);
    equal(r.status, 0, r.stderr);
    match(r.stdout, /^read-only\ntmpfs writable\n\/run rw,nosuid,nodev,relatime tmpfs\n/);
    if (has(RUNC)) equal(run(RUNC, "--read-only", tag, "sh", "-c", tmpScript).stdout, r.stdout);

    // -v …:rshared (Kubernetes' Bidirectional): a mount made inside under the volume reaches the
    // host's source, as with runc (podman gives the container a shared root with it). The source
    // is a shared tmpfs, as systemd makes "/" (this machine's mounts are all private).
    const sharedVol = join(dir.path, "shared");
    mkdirSync(sharedVol);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "hako-test-shared", sharedVol]);
    try {
      execFileSync("mount", ["--make-shared", sharedVol]);
      for (const [who, bin] of [["hako", runc], ...(has(RUNC) ? [["runc", RUNC]] : [])] as const) {
        mkdirSync(join(sharedVol, who));
        const v = ["--cap-add", "SYS_ADMIN", "-v", `${sharedVol}:/bi:rshared`];
        r = run(bin, ...v, tag, "mount", "-t", "tmpfs", "x", `/bi/${who}`);
        equal(r.status, 0, `${who}: ${r.stderr}`);
        const on = readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) =>
          l.split(" ")[4] === join(sharedVol, who)
        );
        ok(on, `${who}: the container's mount under an rshared volume is on the host`);
      }
    } finally {
      spawnSync("umount", ["-R", "-l", sharedVol]);
    }

    // -v …:idmap with --uidmap (podman's idmapped volume): root's file shows as root's inside, and
    // what root writes there is root's on disk (Debian's runc 1.1.5 has no idmapped mounts: it
    // shows nobody's, so it is compared only from 1.2)
    const idVol = join(dir.path, "idvol");
    mkdirSync(idVol);
    chmodSync(idVol, 0o755);
    writeFileSync(join(idVol, "root-file"), "r");
    const idmapped = [
      ...["--uidmap", "0:3600000:65536", "--gidmap", "0:3600000:65536", "-v", `${idVol}:/v:idmap`, tag],
      ...["sh", "-c", 'stat -c "%u:%g" /v/root-file; touch /v/made'],
    ];
    r = run(runc, ...idmapped);
    equal(r.status, 0, r.stderr);
    equal(r.stdout, "0:0\n");
    deepEqual([statSync(join(idVol, "made")).uid, statSync(join(idVol, "made")).gid], [0, 0]);
    if (runc12()) equal(run(RUNC, ...idmapped).stdout, r.stdout);

    // -t: a pty of the container's own, its master sent to conmon's console socket
    r = run(runc, "-t", tag, "tty");
    equal(r.status, 0, r.stderr);
    equal(r.stdout.trim(), "/dev/pts/0");

    // --preserve-fds (conmon hands the fds to the runtime's create) and podman socket-activated
    // by systemd (LISTEN_FDS: podman passes them as preserved fds, LISTEN_PID=1 in the env)
    const passedIn = join(dir.path, "passed");
    writeFileSync(passedIn, "passed\n");
    const fdScript = "cat <&3; ls /proc/self/fd | tr '\\n' ' '; env | grep ^LISTEN_ | sort";
    const fdRuntimes: Array<[string, string]> = [["hako", runc], ["hako-forked", forked]];
    if (has(RUNC)) fdRuntimes.push(["runc", RUNC]);
    for (const [who, bin] of fdRuntimes) {
      const podmanArgs = [...base, "--runtime", bin, "run", "--rm", ...limits];
      const withFd = (args: string[]) => {
        const fd = openSync(passedIn, "r"); // (one each: a read moves the offset they share)
        try {
          return runIt(args[0]!, args.slice(1), {}, [fd]);
        } finally {
          closeSync(fd);
        }
      };
      r = withFd(["podman", ...podmanArgs, "--preserve-fds", "1", tag, "sh", "-c", fdScript]);
      equal(r.stdout, "passed\n0 1 2 3 4 ", `${who}: ${r.stderr}`);
      r = withFd([
        "sh",
        "-c",
        'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"',
        "podman",
        ...podmanArgs,
        tag,
        "sh",
        "-c",
        fdScript,
      ]);
      equal(r.stdout, "passed\n0 1 2 3 4 LISTEN_FDS=1\nLISTEN_PID=1\n", `${who}: ${r.stderr}`);
    }

    // --privileged: every capability, no seccomp, /sys and the container's cgroups read-write, the
    // host's devices (its /dev/ptmx given too: runc makes the pts/ptmx link there); then podman's
    // systemd mode (--systemd=always, the default for an init command): the host's name=systemd
    // hierarchy bound at /sys/fs/cgroup/systemd, where the container's init has a cgroup of its own
    // to make its slices in, as with runc (tests/systemd_cgroup_test.ts: exec joins it)
    const privScript = 'grep -E "^(CapEff|Seccomp):" /proc/self/status; ls /dev | tr "\\n" " "; echo; ' +
      'awk \'$5 == "/sys" || $5 == "/sys/fs/cgroup/pids" {print $5, $6}\' /proc/self/mountinfo | sort; ' +
      "mkdir /sys/fs/cgroup/pids/x && rmdir /sys/fs/cgroup/pids/x && echo cgroup-writable";
    r = run(runc, "--privileged", "--pids-limit", "50", tag, "sh", "-c", privScript);
    equal(r.status, 0, r.stderr);
    match(r.stdout, /^CapEff:\t[0-9a-f]{16}\nSeccomp:\t0\n/);
    match(r.stdout, /\/sys rw,nosuid,nodev,noexec/);
    match(r.stdout, /cgroup-writable\n$/);
    if (has(RUNC)) equal(run(RUNC, "--privileged", "--pids-limit", "50", tag, "sh", "-c", privScript).stdout, r.stdout);
    const sdScript = "grep name=systemd /proc/self/cgroup | cut -d: -f3 | sed 's/libpod-[0-9a-f]*/libpod-ID/'; " +
      'mkdir "/sys/fs/cgroup/systemd$(grep name=systemd /proc/self/cgroup | cut -d: -f3)/x" && echo slice-made';
    if (existsSync("/sys/fs/cgroup/systemd")) {
      r = run(runc, "--systemd=always", tag, "sh", "-c", sdScript);
      equal(r.status, 0, r.stderr);
      equal(r.stdout, "/libpod_parent/libpod-ID\nslice-made\n");
      if (has(RUNC)) equal(run(RUNC, "--systemd=always", tag, "sh", "-c", sdScript).stdout, r.stdout);
      deepEqual(
        readdirSync("/sys/fs/cgroup/systemd/libpod_parent").filter((e) => e.startsWith("libpod-")),
        [],
        "the container's name=systemd cgroup (and the one made in it) removed with it",
      );
    }

    // limits in the container's cgroup (cgroupfs: libpod_parent/libpod-ID)
    r = podman(
      runc,
      "run",
      "-d",
      "--name",
      `${tag}-d`,
      ...limits,
      "--memory",
      "64m",
      "--pids-limit",
      "50",
      tag,
      "sleep",
      "60",
    );
    equal(r.status, 0, r.stderr);
    const cid = r.stdout.trim();
    const cg = `libpod_parent/libpod-${cid}`;
    const dirs = existingCgroupDirs(cg);
    const file = (name: string) => dirs.map((d) => join(d, name)).find((f) => existsSync(f));
    ok(file("memory.limit_in_bytes") ?? file("memory.max"));
    equal(readFileSync((file("memory.limit_in_bytes") ?? file("memory.max"))!, "utf8").trim(), "67108864");
    equal(readFileSync(file("pids.max")!, "utf8").trim(), "50");
    // -d, then kill, stop and rm: the cgroup goes with it
    r = podman(runc, "inspect", "--format", "{{.State.Status}}", `${tag}-d`);
    equal(r.stdout.trim(), "running");
    r = podman(runc, "kill", "--signal", "KILL", `${tag}-d`);
    equal(r.status, 0, r.stderr);
    r = podman(runc, "wait", `${tag}-d`);
    equal(r.stdout.trim(), "137");
    r = podman(runc, "rm", `${tag}-d`);
    equal(r.status, 0, r.stderr);
    deepEqual(existingCgroupDirs(cg), [], `left: ${existingCgroupDirs(cg)}`);

    r = podman(
      runc,
      "run",
      "-d",
      "--name",
      `${tag}-s`,
      ...limits,
      "--hostname",
      "hs",
      tag,
      "sh",
      "-c",
      "echo logged; sleep 60",
    );
    equal(r.status, 0, r.stderr);
    for (let i = 0; i < 50 && !podman(runc, "logs", `${tag}-s`).stdout; i++) spawnSync("sleep", ["0.1"]);
    equal(podman(runc, "logs", `${tag}-s`).stdout, "logged\n");
    // exec: in the container's namespaces, with its status; -t: a pty of its own; --user, -e
    r = podman(runc, "exec", `${tag}-s`, "sh", "-c", "hostname; exit 5");
    equal(r.status, 5, r.stderr);
    equal(r.stdout, "hs\n");
    r = podman(runc, "exec", "-t", `${tag}-s`, "tty");
    equal(r.status, 0, r.stderr);
    equal(r.stdout.trim(), "/dev/pts/0");
    r = podman(runc, "exec", "--user", "1000:1000", "-e", "A=b", `${tag}-s`, "sh", "-c", "id -u; echo $A");
    equal(r.status, 0, r.stderr);
    equal(r.stdout, "1000\nb\n");
    // pause / unpause: the freezer
    r = podman(runc, "pause", `${tag}-s`);
    equal(r.status, 0, r.stderr);
    equal(podman(runc, "inspect", "--format", "{{.State.Status}}", `${tag}-s`).stdout.trim(), "paused");
    r = podman(runc, "unpause", `${tag}-s`);
    equal(r.status, 0, r.stderr);
    equal(podman(runc, "inspect", "--format", "{{.State.Status}}", `${tag}-s`).stdout.trim(), "running");
    r = podman(runc, "exec", `${tag}-s`, "echo", "thawed");
    equal(r.stdout, "thawed\n", r.stderr);
    // update: the limits of the live cgroup (podman sends linux.resources on stdin)
    r = podman(runc, "update", "--memory", "96m", "--cpu-quota", "30000", "--cpu-period", "100000", `${tag}-s`);
    equal(r.status, 0, r.stderr);
    const sid = podman(runc, "inspect", "--format", "{{.Id}}", `${tag}-s`).stdout.trim();
    const sdirs = existingCgroupDirs(`libpod_parent/libpod-${sid}`);
    const sknob = (f: string) => readFileSync(sdirs.map((d) => join(d, f)).find((p) => existsSync(p))!, "utf8").trim();
    equal(sknob("memory.limit_in_bytes"), String(96 * 1024 * 1024));
    equal(sknob("cpu.cfs_quota_us"), "30000");
    r = podman(runc, "stop", "-t", "1", `${tag}-s`);
    equal(r.status, 0, r.stderr);
    equal(podman(runc, "rm", `${tag}-s`).status, 0);
  } finally {
    for (const n of [`${tag}-d`, `${tag}-s`]) podman(runc, "rm", "-f", n);
    podman(runc, "rmi", "-f", tag);
    rmSync(join(dir.path, "storage"), { recursive: true, force: true });
    // podman's own parent cgroups (conmon's), when nothing else uses them
    const named = ["/sys/fs/cgroup/systemd/libpod_parent/conmon", "/sys/fs/cgroup/systemd/libpod_parent"];
    for (const d of [...existingCgroupDirs("libpod_parent/conmon"), ...existingCgroupDirs("libpod_parent"), ...named]) {
      try {
        rmdirSync(d);
      } catch { /* in use */ }
    }
  }
}, { skip: skipPodman });

test(
  "create and run re-execute for a single-threaded engine only when the child is forked (HAKO_NATIVE_SPAWN=0), once",
  () => {
    using dir = tempDir("hako-test-oci-");
    const bundle = makeBundle(dir.path, (c) => {
      c.process!.args = ["true"];
    });
    const runc = launcher(dir.path);
    const root = join(dir.path, "state");
    // The runtime's environment without the BUN_JSC_* settings: the CLI adds them itself when it must.
    const base: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !k.startsWith("BUN_JSC_") && !k.startsWith("HAKO_")) base[k] = v;
    }
    const strace = has("strace", ["-V"]) ? "strace" : undefined;
    for (
      const [path, extra, reexecs] of [
        ["the native child", {}, 0],
        // (Deno's launcher passes --v8-flags=--single-threaded itself: nothing to re-execute there)
        ["the forked child", { HAKO_NATIVE_SPAWN: "0" }, runtime === "bun" ? 1 : 0],
      ] as const
    ) {
      const id = `hako-test-oci-reexec-${suffix()}`;
      const log = join(dir.path, `${id}.log`);
      const trace = join(dir.path, `${id}.strace`);
      const argv = [runc, "--root", root, "--debug", "--log", log, "run", "--bundle", bundle, id];
      try {
        const r = spawnSync(
          strace ?? argv[0]!,
          strace ? ["-f", "-qq", "-e", "trace=execve", "-o", trace, ...argv] : argv.slice(1),
          {
            env: { ...base, ...extra },
            encoding: "utf8",
            timeout: 120_000,
          },
        );
        equal(r.status, 0, `${path}: ${r.stdout}${r.stderr}`);
        const lines = readFileSync(log, "utf8").split("\n");
        equal(
          lines.filter((l) => l.includes("re-executing")).length,
          reexecs,
          `${path}: the log says\n${lines.join("\n")}`,
        );
        if (strace) {
          const execs = readFileSync(trace, "utf8").split("\n").filter((l) => l.includes('execve("/proc/self/exe"'));
          equal(execs.length, reexecs, `${path}: ${execs.join("\n")}`);
        }
        deepEqual(readdirSync(root), [], "run removed its container");
      } finally {
        runIt(runc, ["--root", root, "delete", "--force", id]);
      }
    }
  },
  { skip },
);

test(
  "delete from the recorded cgroup directories kills what is in them, removes them deepest first, then an empty hako parent",
  () => {
    const roots = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"].filter((r) =>
      existsSync(join(r, "cgroup.procs"))
    );
    const name = `hako/hako-test-ocidirs-${suffix()}`;
    const dirs = roots.slice(0, 2).map((r) => join(r, name));
    const parents = roots.slice(0, 2).map((r) => join(r, "hako"));
    const hadParent = parents.map((p) => existsSync(p));
    let child: ReturnType<typeof spawn> | undefined;
    try {
      for (const d of dirs) mkdirSync(join(d, "inner"), { recursive: true });
      child = spawn("sleep", ["1000"], { stdio: "ignore" });
      writeFileSync(join(dirs[0]!, "inner", "cgroup.procs"), String(child.pid));
      const killed: number[] = [];
      deleteCgroupDirs(name, [...dirs, join(roots[0]!, `${name}-never-made`)], (pid) => {
        killed.push(pid);
        process.kill(pid, "SIGKILL");
      });
      deepEqual([...new Set(killed)], [child.pid]);
      for (const d of dirs) equal(existsSync(d), false, d);
      // (the parent goes only where this test made it and nothing else of hako's is in it)
      parents.forEach((p, i) => {
        if (!hadParent[i] && existsSync(p)) ok(readdirSync(p, { withFileTypes: true }).some((e) => e.isDirectory()), p);
      });
    } finally {
      child?.kill("SIGKILL");
      for (const d of dirs) {
        for (const x of [join(d, "inner"), d]) {
          try {
            rmdirSync(x);
          } catch { /* gone */ }
        }
      }
    }
  },
  { skip: skip || (!existsSync("/sys/fs/cgroup/pids/cgroup.procs") && "needs the v1 pids hierarchy (a hybrid host)") },
);

test("linux.personality and linux.timeOffsets map onto the plan and the spec; flags, other domains and nanoseconds are refused by path", () => {
  const c = podmanLikeConfig() as Record<string, Record<string, unknown>>;
  c.linux!.personality = { domain: "LINUX32", flags: [] };
  c.linux!.namespaces = [...(c.linux!.namespaces as unknown[]), { type: "time" }];
  c.linux!.timeOffsets = { monotonic: { secs: 3600 }, boottime: { secs: 86400, nanosecs: 0 } };
  const plan = ociToSpec(c, "/b", "abc");
  equal(plan.personality, 0x8, "PER_LINUX32");
  deepEqual(plan.spec.timeOffsets, { monotonic: 3600, boottime: 86400 });
  c.linux!.personality = { domain: "LINUX" };
  equal(ociToSpec(c, "/b", "abc").personality, undefined, "plain LINUX: nothing to take on");
  c.linux!.personality = { domain: "LINUX64", flags: ["ADDR_NO_RANDOMIZE"] };
  c.linux!.timeOffsets = { monotonic: { secs: 1, nanosecs: 5 }, realtime: { secs: 1 } };
  let err: OciConfigError | undefined;
  try {
    ociToSpec(c, "/b", "abc");
  } catch (e) {
    err = e as OciConfigError;
  }
  ok(err instanceof OciConfigError);
  deepEqual(err.problems.map((p) => p.path).sort(), [
    "linux.personality.domain",
    "linux.personality.flags",
    "linux.timeOffsets.monotonic.nanosecs",
    "linux.timeOffsets.realtime",
  ]);
});

for (const [path, env] of PATHS) {
  test(
    `linux.personality LINUX32: the container's process and an exec'd one see a 32-bit machine, as runc's (${path})`,
    () => {
      using dir = tempDir("hako-test-oci-persona-");
      const id = `hako-test-oci-persona-${suffix()}`;
      const bundle = makeBundle(dir.path, (c) => {
        c.process!.args = ["uname", "-m"];
        c.linux!.personality = { domain: "LINUX32" };
      });
      const hako = launcher(dir.path);
      const want = process.arch === "arm64" ? "armv8l\n" : "i686\n";
      // (runc has set it since 1.2; 1.1, Debian 12's, ignores the field: compared only with a newer one)
      const runcSetsIt = runc12();
      const runtimes = [[hako, join(dir.path, "hako")], ...(runcSetsIt ? [[RUNC, join(dir.path, "runc")]] : [])];
      for (const [rt, root] of runtimes as Array<[string, string]>) {
        const r = runIt(rt, ["--root", root, "run", "--bundle", bundle, id], env);
        deepEqual([r.status, r.stdout], [0, want], `${rt}: ${r.stderr}`);
        const cfg = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
        cfg.process.args = ["sleep", "60"];
        writeFileSync(join(bundle, "config.json"), JSON.stringify(cfg));
        try {
          equal(runIt(rt, ["--root", root, "run", "-d", "--bundle", bundle, id], env).status, 0);
          const e = runIt(rt, ["--root", root, "exec", id, "uname", "-m"], env);
          deepEqual([e.status, e.stdout], [0, want], `${rt} exec: ${e.stderr}`);
        } finally {
          runIt(rt, ["--root", root, "delete", "--force", id]);
          cfg.process.args = ["uname", "-m"];
          writeFileSync(join(bundle, "config.json"), JSON.stringify(cfg));
        }
      }
      // hako's own process keeps its personality: the next command sees the host's machine
      equal(runIt("uname", ["-m"]).stdout, process.arch === "arm64" ? "aarch64\n" : "x86_64\n");
    },
    { skip: skip || (!existsSync(RUNC) && `needs ${RUNC}`) },
  );
}

test("linux.timeOffsets: the container's /proc/uptime runs a day ahead in a time namespace of its own", () => {
  using dir = tempDir("hako-test-oci-timens-");
  const id = `hako-test-oci-timens-${suffix()}`;
  const bundle = makeBundle(dir.path, (c) => {
    c.process!.args = ["cat", "/proc/uptime"];
    c.linux!.namespaces = [...(c.linux!.namespaces as unknown[]), { type: "time" }];
    c.linux!.timeOffsets = { boottime: { secs: 86400, nanosecs: 0 } };
  });
  const hako = launcher(dir.path);
  const root = join(dir.path, "state");
  try {
    const host = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
    const r = runIt(hako, ["--root", root, "run", "--bundle", bundle, id]);
    equal(r.status, 0, r.stderr);
    const inside = Number(r.stdout.split(" ")[0]);
    ok(inside >= host + 86400 && inside < host + 86400 + 120, `${inside} against the host's ${host}`);
  } finally {
    runIt(hako, ["--root", root, "delete", "--force", id]);
  }
}, { skip: skip || (!existsSync("/proc/self/ns/time") && "needs time namespaces (Linux 5.6+)") });

test("exec into a time namespace (forked, after the early prime) sees the container's clock", () => {
  using dir = tempDir("hako-test-oci-timens-exec-");
  const bundle = makeBundle(dir.path, (c) => {
    c.process!.args = ["sleep", "30"];
    c.linux!.namespaces = [...(c.linux!.namespaces as unknown[]), { type: "time" }];
    c.linux!.timeOffsets = { boottime: { secs: 86400, nanosecs: 0 } };
  });
  const hako = launcher(dir.path);
  for (const env of [{}, { HAKO_NATIVE_SPAWN: "0" }] as Record<string, string>[]) {
    const id = `hako-test-oci-timens-exec-${suffix()}`;
    const root = join(dir.path, `state-${id}`);
    try {
      let r = runIt(hako, ["--root", root, "create", "--bundle", bundle, id], env);
      equal(r.status, 0, r.stderr);
      r = runIt(hako, ["--root", root, "start", id], env);
      equal(r.status, 0, r.stderr);
      const host = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
      r = runIt(hako, ["--root", root, "exec", id, "cat", "/proc/uptime"], env);
      equal(r.status, 0, r.stderr);
      const inside = Number(r.stdout.split(" ")[0]);
      ok(inside >= host + 86400 && inside < host + 86400 + 120, `${JSON.stringify(env)}: ${inside} against ${host}`);
    } finally {
      runIt(hako, ["--root", root, "delete", "--force", id]);
    }
  }
}, { skip: skip || (!existsSync("/proc/self/ns/time") && "needs time namespaces (Linux 5.6+)") });

test("--no-pivot: the host mounts detached after the move are runc's proc and sysfs ones, then every mount on the host's root", () => {
  const mountinfo = [
    "22 27 0:21 / /proc rw,nosuid - proc proc rw",
    "23 27 0:22 / /sys rw - sysfs sysfs rw",
    "24 27 0:5 / /dev rw - devtmpfs udev rw",
    "25 24 0:23 / /dev/shm rw - tmpfs tmpfs rw",
    "27 1 254:0 / / rw - ext4 /dev/vda rw",
    "31 23 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro",
    "45 27 254:0 /run/netns /run/netns rw shared:1 - ext4 /dev/vda rw",
    "46 45 0:4 / /run/netns/a\\040b rw - nsfs nsfs rw",
    "50 27 0:30 / /var/lib/x rw - tmpfs tmpfs rw",
    "51 50 0:31 / /var/lib/x/proc rw - proc proc rw",
    "52 50 0:21 /sys /var/lib/x/psys rw - proc proc rw", // (not a full proc: its root is /sys)
    "53 50 0:32 / /var/lib/x/my\\040sys rw - sysfs sysfs rw",
    "60 27 0:40 / /mnt rw - tmpfs a rw",
    "61 60 0:41 / /mnt rw - tmpfs b rw", // (stacked on /mnt: a second detach of the path)
    "",
  ].join("\n");
  deepEqual(noPivotDetaches(mountinfo), [
    { path: "/proc", cover: true },
    { path: "/sys", cover: true },
    { path: "/var/lib/x/proc", cover: true },
    { path: "/var/lib/x/my sys", cover: true },
    { path: "/dev", cover: false },
    { path: "/run/netns", cover: false },
    { path: "/var/lib/x", cover: false },
    { path: "/mnt", cover: false },
    { path: "/mnt", cover: false },
  ]);
  // a root with a mount over it at "/": the topmost is the caller's root
  deepEqual(
    noPivotDetaches(
      [
        "1 0 0:1 / / rw - rootfs rootfs rw",
        "2 1 0:2 / / rw - tmpfs t rw",
        "3 2 0:3 / /a rw - tmpfs u rw",
        "4 1 0:4 / /b rw - tmpfs v rw",
      ].join("\n"),
    ),
    [{ path: "/a", cover: false }],
  );
  deepEqual(noPivotDetaches("garbage\n\n1 2 3\n"), []);
});

test(
  "--no-pivot (a host root on a ramdisk): the rootfs moved over / and chroot'ed into, the host's proc and sysfs detached from the namespace as by runc, and every other host mount too",
  () => {
    using dir = tempDir("hako-test-oci-nopivot-");
    const script = "awk '$5 == \"/\" {print $4, $5}' /proc/self/mountinfo; ls / | tr '\\n' ' '; echo; cat /marker";
    const bundle = makeBundle(dir.path, (c) => {
      c.process!.args = ["sh", "-c", script];
    });
    writeFileSync(join(bundle, "rootfs", "marker"), "inside\n");
    chmodSync(dir.path, 0o755); // (runc's init, root of the user namespace, walks down to the rootfs)
    const config = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
    const sleeper = (userns: boolean) => {
      const path = join(dir.path, userns ? "sleeper-userns" : "sleeper");
      mkdirSync(path, { recursive: true });
      const map = [{ containerID: 0, hostID: 200000, size: 65536 }];
      writeFileSync(
        join(path, "config.json"),
        JSON.stringify({
          ...config,
          root: { path: join(bundle, "rootfs") },
          process: { ...config.process, args: ["sleep", "60"] },
          linux: userns
            ? {
              ...config.linux,
              namespaces: [...config.linux.namespaces, { type: "user" }],
              uidMappings: map,
              gidMappings: map,
            }
            : config.linux,
        }),
      );
      return path;
    };
    // From the host, in the container's mount namespace (a single-threaded python: setns needs
    // one), with the container's root detached from it: what a setns lands on then is the
    // namespace's own root, with whatever of the host is still mounted there.
    const underneath = [
      "import ctypes, json, os, sys",
      "libc = ctypes.CDLL(None, use_errno=True)",
      "host = os.stat('/')",
      "fd = os.open('/proc/%s/ns/mnt' % sys.argv[1], os.O_RDONLY)",
      "assert libc.setns(fd, 0x20000) == 0, ctypes.get_errno()",
      "assert os.path.exists('/marker')",
      "assert libc.umount2(b'/', 2) == 0, ctypes.get_errno()",
      "assert libc.setns(fd, 0x20000) == 0, ctypes.get_errno()",
      "st = os.stat('/')",
      "print(json.dumps({'host': (st.st_dev, st.st_ino) == (host.st_dev, host.st_ino),",
      "  'mounted': [p for p in ('/proc', '/sys', '/dev') if os.path.isdir(p) and os.stat(p).st_dev != st.st_dev],",
      "  'empty': [p for p in ('/proc', '/sys') if os.listdir(p) == []]}))",
    ].join("\n");
    const seen: Record<string, unknown> = {};
    for (const { who, bin, env } of runtimesToCompare(dir.path)) {
      const root = join(dir.path, `state-${who}`);
      const oci = (args: string[]) => runIt(bin, ["--root", root, ...args], env);
      const plain = oci(["run", "--bundle", bundle, `hako-test-np-${suffix()}`]);
      const moved = oci(["run", "--no-pivot", "--bundle", bundle, `hako-test-np-${suffix()}`]);
      equal(moved.status, 0, `${who}: ${moved.stderr}`);
      // the same root, listing and files as with pivot_root
      equal(moved.stdout, plain.stdout, who);
      match(moved.stdout, /^\S+rootfs \/\n.*\bbin\b.*\ninside\n$/, who);
      for (const [noPivot, userns] of [[false, false], [true, false], [true, true]]) {
        const id = `hako-test-np-${suffix()}`;
        try {
          const c = oci(["create", ...(noPivot ? ["--no-pivot"] : []), "--bundle", sleeper(userns!), id]);
          equal(c.status, 0, `${who}: ${c.stderr}`);
          equal(oci(["start", id]).status, 0, who);
          const e = oci(["exec", id, "cat", "/marker"]);
          deepEqual([e.status, e.stdout], [0, "inside\n"], `${who} exec: ${e.stderr}`);
          const pid = JSON.parse(oci(["state", id]).stdout).pid;
          const r = runIt("python3", ["-c", underneath, String(pid)]);
          equal(r.status, 0, `${who}: ${r.stderr}`);
          seen[`${who}${noPivot ? " --no-pivot" : ""}${userns ? " userns" : ""}`] = JSON.parse(r.stdout);
        } finally {
          oci(["delete", "--force", id]);
        }
      }
    }
    for (const who of ["hako-native", "hako-forked", "runc"].filter((w) => seen[w])) {
      // pivot_root: the host's root is not in the container's namespace at all
      equal((seen[who] as { host: boolean }).host, false, who);
    }
    // --no-pivot: the host's root filesystem is there, under the container's root; its proc and
    // sysfs are not (runc), nor any other host mount (hako: runc keeps the host's /dev)
    const all = JSON.stringify(seen);
    const detached = { host: true, mounted: [], empty: ["/proc", "/sys"] };
    deepEqual(seen["hako-native --no-pivot"], detached, all);
    deepEqual(seen["hako-forked --no-pivot"], detached, all);
    if (seen["runc --no-pivot"]) deepEqual(seen["runc --no-pivot"], { ...detached, mounted: ["/dev"] }, all);
    // in a user namespace the host's mounts are locked: proc and sysfs covered by an empty tmpfs,
    // the others kept (the kernel refuses), as with runc
    const covered = { host: true, mounted: ["/proc", "/sys", "/dev"], empty: ["/proc", "/sys"] };
    for (const who of ["hako-native", "hako-forked", "runc"].filter((w) => seen[w])) {
      deepEqual(seen[`${who} --no-pivot userns`], covered, `${who}: ${all}`);
    }
  },
  { skip: skip || (!has("python3") && "needs python3 (a single-threaded setns from the host)") },
);

test(
  '--pidfd-socket: create sends a pidfd of the init ("standard"), exec one of its process ("setns"), as runc ≥ 1.2 does; the caller signals through it',
  async () => {
    using dir = tempDir("hako-test-oci-pidfd-");
    const bundle = makeBundle(dir.path, (c) => {
      c.process!.args = ["sleep", "60"];
    });
    // a listener that notes what each connection sends, and once an exec's comes, kills the init
    // through the init's pidfd
    const sock = join(dir.path, "pidfd.sock"), got = join(dir.path, "got");
    const listener = spawn("python3", [
      "-c",
      [
        "import os, signal, socket, sys",
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen(8)",
        "open(sys.argv[2] + '.ready', 'w').close()",
        "init = None",
        "while True:",
        "    c, _ = s.accept()",
        "    msg, fds, _, _ = socket.recv_fds(c, 64, 4)",
        "    pid = [l.split()[1] for l in open('/proc/self/fdinfo/%d' % fds[0]) if l.startswith('Pid:')][0]",
        "    if msg == b'standard': init = fds[0]",
        "    if msg == b'setns' and init is not None: signal.pidfd_send_signal(init, signal.SIGKILL)",
        "    with open(sys.argv[2], 'a') as f: f.write('%s %d %s\\n' % (msg.decode(), len(fds), pid))",
        "    c.close()",
      ].join("\n"),
      sock,
      got,
    ], { stdio: "ignore" });
    try {
      for (let i = 0; i < 100 && !existsSync(`${got}.ready`); i++) await new Promise((r) => setTimeout(r, 50));
      const lines = () => (existsSync(got) ? readFileSync(got, "utf8") : "");
      for (const { who, bin, env } of runtimesToCompare(dir.path).filter((r) => r.who !== "runc")) {
        const root = join(dir.path, `state-${who}`);
        const oci = (args: string[]) => runIt(bin, ["--root", root, ...args], env);
        const id = `hako-test-pidfd-${suffix()}`;
        try {
          // no one listening: refused before anything is made
          let r = oci(["create", "--pidfd-socket", join(dir.path, "nobody.sock"), "--bundle", bundle, id]);
          equal(r.status, 1, who);
          match(r.stderr, /failed to dial .*nobody\.sock/, who);
          equal(oci(["state", id]).status, 1, `${who}: nothing left`);
          writeFileSync(got, "");
          r = oci(["create", "--pidfd-socket", sock, "--bundle", bundle, id]);
          equal(r.status, 0, `${who}: ${r.stderr}`);
          const pid = JSON.parse(oci(["state", id]).stdout).pid;
          equal(oci(["start", id]).status, 0, who);
          r = oci([
            "exec",
            "--detach",
            "--pid-file",
            join(dir.path, "exec.pid"),
            "--pidfd-socket",
            sock,
            id,
            "sleep",
            "5",
          ]);
          equal(r.status, 0, `${who}: ${r.stderr}`);
          const execPid = Number(readFileSync(join(dir.path, "exec.pid"), "utf8"));
          for (let i = 0; i < 100 && lines().split("\n").length < 3; i++) await new Promise((r) => setTimeout(r, 50));
          equal(lines(), `standard 1 ${pid}\nsetns 1 ${execPid}\n`, who);
          // the init was killed through its pidfd
          for (let i = 0; i < 100 && JSON.parse(oci(["state", id]).stdout).status !== "stopped"; i++) {
            await new Promise((r) => setTimeout(r, 50));
          }
          equal(JSON.parse(oci(["state", id]).stdout).status, "stopped", who);
        } finally {
          oci(["delete", "--force", id]);
        }
      }
    } finally {
      listener.kill("SIGKILL");
    }
  },
  { skip: skip || (!has("python3") && "needs python3 (the socket's other end)") },
);
