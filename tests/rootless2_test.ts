/**
 * Rootless that just works, from the CLI: a caller without root runs a quick container (a user
 * namespace mapping it to root, asked for with --userns or implied), gets a clear error naming
 * the mount points a rootfs it cannot write lacks, execs into its container although it cannot
 * join the host's v1 cgroups. The CLI runs as nobody under the runtime of the test run (bin/hako
 * under Deno, src/cli/main.ts under Bun), on the native and the forked path.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { isRoot, runtime, tempDir, test } from "./_harness.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { parseRunArgs, quickSpec, quickVarDir } from "../src/cli/run.ts";
import { BUN_SINGLE_THREADED_ENV } from "../ffi/fork.ts";
import { resolveStateDir } from "../src/container/state_dir.ts";

const NOBODY = 65534;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PATHS = ["native", "forked"] as const;

function why(): string | false {
  if (!isRoot) return "needs root (to start the CLI as nobody)";
  if (findStaticBusybox() === undefined) return "needs a static busybox (apt-get install busybox-static)";
  if (spawnSync("setpriv", ["--help"]).error) return "needs setpriv (util-linux)";
  const probe = spawnSync("setpriv", [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    "unshare",
    "-U",
    "true",
  ], {
    encoding: "utf8",
  });
  if (probe.status !== 0) {
    return `unprivileged user namespaces are refused here: unshare -U as nobody: ${
      (probe.stderr || probe.error?.message || String(probe.status)).trim()
    }`;
  }
  return false;
}
const skip = why();

/** A busybox rootfs owned by root (0755, so nobody can read but not write it), with the mount points hako needs or not. */
function rootOwnedRootfs(dir: string, mountPoints: boolean): string {
  const rootfs = join(dir, "rootfs");
  mkdirSync(join(rootfs, "bin"), { recursive: true });
  copyFileSync(findStaticBusybox()!, join(rootfs, "bin/busybox"));
  chmodSync(join(rootfs, "bin/busybox"), 0o755);
  for (const c of ["sh", "id", "cat", "sleep", "true", "tr"]) symlinkSync("busybox", join(rootfs, "bin", c));
  if (mountPoints) {
    for (const d of ["proc", "sys", "dev", "etc", "tmp"]) mkdirSync(join(rootfs, d));
    for (const f of ["hosts", "hostname", "resolv.conf"]) writeFileSync(join(rootfs, "etc", f), "");
  }
  return rootfs;
}

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI as nobody in `home` (nobody's, its state dir under it), on `path`; `env` adds to its environment. */
function hakoAsNobody(
  home: string,
  args: string[],
  path: "native" | "forked" = "native",
  env: Record<string, string> = {},
): Result {
  const cli = runtime === "deno" ? [join(ROOT, "bin/hako")] : [process.execPath, join(ROOT, "src/cli/main.ts")];
  const r = spawnSync("setpriv", [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...cli, ...args], {
    cwd: home,
    encoding: "utf8",
    timeout: 90_000,
    env: {
      PATH: "/usr/local/bin:/usr/bin:/bin",
      HOME: home,
      NO_COLOR: "1",
      DENO_DIR: join(home, ".deno"),
      ...(runtime === "bun" ? BUN_SINGLE_THREADED_ENV : {}),
      ...(path === "forked" ? { HAKO_NATIVE_SPAWN: "0" } : {}),
      ...env,
    },
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A temp dir nobody owns (its home for the test). */
function nobodyHome(): { path: string } & Disposable {
  const tmp = tempDir("hako-rootless2-");
  chmodSync(tmp.path, 0o755);
  chownSync(tmp.path, NOBODY, NOBODY);
  return tmp;
}

test("run --userns (or --rootless) asks a quick container for a user namespace mapping the caller to root", () => {
  deepEqual(parseRunArgs(["--rootfs", "r", "--userns", "--", "id"]).quick, {
    rootfs: "r",
    userns: true,
    command: ["id"],
  });
  deepEqual(parseRunArgs(["--rootless", "--image", "a.tar", "id"]).quick, {
    image: "a.tar",
    userns: true,
    command: ["id"],
  });
  equal(parseRunArgs(["--rootfs", "r", "id"]).quick?.userns, undefined);
  const root = quickSpec({ rootfs: "/r", userns: true, command: ["id"], name: "q" }, "/", undefined, {
    euid: 0,
    egid: 0,
    cgroupNs: true,
  });
  deepEqual(root.namespaces, ["user", "mount", "uts", "ipc", "pid", "net", "cgroup"]);
  deepEqual(root.idMap, {
    uid: { inside: 0, outside: 0, size: 1 },
    gid: { inside: 0, outside: 0, size: 1 },
    allowHostIds: true,
  });
  // a caller without root gets one without asking (its own ids are root inside: no idMap needed)
  const user = quickSpec({ rootfs: "/r", command: ["id"], name: "q" }, "/", undefined, { euid: 1000, cgroupNs: false });
  deepEqual(user.namespaces, ["user", "mount", "uts", "ipc", "pid", "net"]);
  equal(user.idMap, undefined);
  // root without --userns: the spec's defaults, as before
  equal(quickSpec({ rootfs: "/r", command: ["id"], name: "q" }, "/").namespaces, undefined);
});

test("as nobody, hako run --rootfs runs the command as root of a user namespace on either path", () => {
  using home = nobodyHome();
  const rootfs = rootOwnedRootfs(home.path, true);
  for (const path of PATHS) {
    for (const flag of [[], ["--userns"]]) {
      const r = hakoAsNobody(
        home.path,
        ["run", "--rootfs", rootfs, ...flag, "--", "sh", "-c", "id -u; tr -s ' ' < /proc/self/uid_map"],
        path,
      );
      equal(r.stderr, "", `${path} ${flag}: stderr`);
      equal(r.code, 0, `${path} ${flag}`);
      equal(r.stdout, `0\n 0 ${NOBODY} 1\n`, `${path} ${flag}`);
    }
  }
  // the state went to nobody's own directory, not /run/hako
  ok(existsSync(join(home.path, ".local/share/hako/run")), "nobody's state dir");
}, { skip });

test("as root, hako run --userns maps root to root in a user namespace of its own", () => {
  using tmp = tempDir("hako-rootless2-");
  const rootfs = rootOwnedRootfs(tmp.path, true);
  const r = spawnSync(join(ROOT, "bin/hako"), [
    "run",
    "--rootfs",
    rootfs,
    "--userns",
    "--",
    "sh",
    "-c",
    "tr -s ' ' < /proc/self/uid_map; readlink /proc/self/ns/user",
  ], {
    encoding: "utf8",
    timeout: 60_000,
  });
  equal(r.status, 0, r.stderr);
  const [map, ns] = r.stdout.split("\n");
  equal(map, " 0 0 1");
  ok(ns!.startsWith("user:["), ns);
  ok(ns !== spawnSync("readlink", ["/proc/self/ns/user"], { encoding: "utf8" }).stdout.trim(), "a new user namespace");
}, { skip: skip || (runtime === "bun" ? "runs bin/hako (Deno) as root: once is enough" : false) });

test(
  "as nobody, a root-owned rootfs without its mount points fails before anything, naming them and what to do",
  () => {
    using home = nobodyHome();
    const rootfs = rootOwnedRootfs(home.path, false);
    mkdirSync(join(rootfs, "proc")); // (one of them there: not named)
    for (const path of PATHS) {
      const r = hakoAsNobody(home.path, ["run", "--rootfs", rootfs, "--", "true"], path);
      equal(r.code, 125, `${path}: ${r.stderr}`);
      match(
        r.stderr,
        new RegExp(
          `rootfs: ${rootfs} \\(owned by uid 0\\) lacks mount points that uid ${NOBODY} cannot make in it: /etc/hosts, /etc/hostname, /etc/resolv.conf, /sys, /dev; have its owner make them \\(mkdir for a directory, touch for a file\\), or use a rootfs of your own \\(copied or extracted as uid ${NOBODY}\\), or set networkEtc: false`,
        ),
        path,
      );
      ok(!/EACCES|\n\s+at /.test(r.stderr), `no raw errno or stack: ${r.stderr}`);
    }
    // nothing was made in it, and no container's state was left
    deepEqual(spawnSync("ls", [rootfs], { encoding: "utf8" }).stdout.split("\n").filter(Boolean), ["bin", "proc"]);
    const containers = join(home.path, ".local/share/hako/run/containers");
    deepEqual(existsSync(containers) ? spawnSync("ls", [containers], { encoding: "utf8" }).stdout.trim() : "", "");
  },
  { skip },
);

test(
  "as nobody, hako exec runs in a rootless container, leaving out the host's cgroups it cannot join, with a note",
  () => {
    using home = nobodyHome();
    const rootfs = rootOwnedRootfs(home.path, true);
    const name = `rootless2-exec-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
    const spec = join(home.path, "spec.ts");
    writeFileSync(
      spec,
      `export default { name: ${JSON.stringify(name)}, rootfs: ${
        JSON.stringify(rootfs)
      }, namespaces: ["user", "mount", "uts", "ipc", "pid", "net"], command: ["sleep", "60"] };\n`,
    );
    chmodSync(spec, 0o644);
    const started = hakoAsNobody(home.path, ["start", spec]);
    try {
      equal(started.code, 0, started.stderr);
      for (const path of PATHS) {
        const r = hakoAsNobody(
          home.path,
          ["exec", name, "sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '"],
          path,
        );
        equal(r.code, 0, `${path}: ${r.stderr}`);
        equal(r.stdout, "0\nsleep 60 ", path);
        match(
          r.stderr,
          new RegExp(
            `^hako exec: note: not joining the container's cgroups that uid ${NOBODY} cannot write \\(rootless, not delegated\\): /sys/fs/cgroup/\\S+`,
          ),
          path,
        );
      }
    } finally {
      const d = hakoAsNobody(home.path, ["delete", "-f", name]);
      equal(d.code, 0, d.stderr);
      // nobody's supervisor (started on demand by start) ends with the test
      stopSupervisor(home.path);
    }
  },
  { skip },
);

/** Stops the supervisor nobody's `hako start` started for this home (its pid file under the state dir). */
function stopSupervisor(home: string): void {
  const state = join(home, ".local/share/hako/run");
  const file = join(state, "supervisor.pid");
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, "utf8").trim().split(" ")[0]); // ("pid starttime")
  if (Number.isInteger(pid) && pid > 1) {
    try {
      process.kill(pid, "SIGTERM");
    } catch { /* gone */ }
  }
}

test("a caller without root extracts quick images under its own data directory", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  equal(quickVarDir(0, env({ HOME: "/root" })), "/var/lib/hako");
  equal(quickVarDir(1000, env({ HOME: "/home/me", XDG_DATA_HOME: "/data/" })), "/data/hako");
  equal(quickVarDir(1000, env({ HOME: "/home/me/" })), "/home/me/.local/share/hako");
  equal(quickVarDir(1000, env({ XDG_DATA_HOME: "relative" })), "/tmp/hako-1000");
});

test("as nobody, hako run --image extracts a root-made image as its own (device nodes left out) and runs it", () => {
  using home = nobodyHome();
  const rootfs = rootOwnedRootfs(home.path, true);
  spawnSync("mknod", [join(rootfs, "dev/null2"), "c", "1", "3"]);
  const image = join(home.path, "image.tar");
  const tar = spawnSync("tar", ["-C", rootfs, "-cf", image, "."], { encoding: "utf8" });
  equal(tar.status, 0, tar.stderr);
  chmodSync(image, 0o644);
  for (const path of PATHS) {
    const r = hakoAsNobody(
      home.path,
      ["run", "--image", image, "--", "sh", "-c", "id -u; stat -c %u /bin/busybox"],
      path,
    );
    equal(r.code, 0, `${path}: ${r.stderr}`);
    equal(r.stdout, "0\n0\n", `${path}: root inside, and the files its own`);
  }
  const extracted = join(home.path, ".local/share/hako/images/image");
  ok(existsSync(join(extracted, "bin/busybox")), "extracted under nobody's own data directory");
  ok(!existsSync(join(extracted, "dev/null2")), "no device node");
}, { skip });

test("a rootless state dir is $XDG_RUNTIME_DIR/hako only when that is a directory of the caller's", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  const vars = { XDG_RUNTIME_DIR: "/run/user/1000", HOME: "/home/me" };
  equal(resolveStateDir(undefined, { euid: 1000, env: env(vars) }), "/run/user/1000/hako");
  const dirs: Record<string, { uid: number; kind: string }> = { "/run/user/1000": { uid: 1000, kind: "dir" } };
  const lstat = (p: string) => dirs[p];
  equal(resolveStateDir(undefined, { euid: 1000, env: env(vars), lstat }), "/run/user/1000/hako");
  // gone (after logout, or a stale one kept by su), another user's, or not a directory: the home's
  for (const stale of [undefined, { uid: 0, kind: "dir" }, { uid: 1000, kind: "symlink" }]) {
    const l = (p: string) => (p === "/run/user/1000" ? stale : undefined);
    equal(resolveStateDir(undefined, { euid: 1000, env: env(vars), lstat: l }), "/home/me/.local/share/hako/run");
  }
  equal(resolveStateDir("/x", { euid: 1000, env: env(vars), lstat }), "/x");
  equal(resolveStateDir(undefined, { euid: 0, env: env(vars), lstat }), "/run/hako");
});

test(
  "as nobody with a stale XDG_RUNTIME_DIR (not there, or root's), hako run and ps use nobody's own state dir",
  () => {
    using home = nobodyHome();
    const rootfs = rootOwnedRootfs(home.path, true);
    for (const runtimeDir of ["/run/user/4242424", "/run"]) {
      const env = { XDG_RUNTIME_DIR: runtimeDir };
      const r = hakoAsNobody(home.path, ["run", "--rootfs", rootfs, "--", "true"], "native", env);
      equal(r.code, 0, `${runtimeDir}: ${r.stderr}`);
      equal(r.stderr, "", runtimeDir);
      const ps = hakoAsNobody(home.path, ["ps", "-q"], "native", env);
      deepEqual([ps.code, ps.stdout, ps.stderr], [0, "", ""], runtimeDir);
    }
    ok(existsSync(join(home.path, ".local/share/hako/run/containers")), "nobody's state dir");
    ok(!existsSync("/run/user/4242424"), "nothing made for the stale runtime dir");
  },
  { skip },
);
