/**
 * A rootfs shared by containers is never removed under a running sibling, and `hako gc` finds
 * what a crash leaves: `delete --rootfs` counts the rootfs's users (records on the same directory
 * by any path, live processes whose root it is) under a lock, and gc removes record-less container
 * directories, extractions for containers that never ran, what interrupted extractions and
 * removals left, and dead writers' temp files — through the CLI of the runtime that runs the test
 * (bin/hako under Deno, `bun src/cli/main.ts` under Bun), each test in a state directory of its own.
 * @module
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { needsRoot, runtime, tempDir, test, until } from "./_harness.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { which } from "../src/process.ts";
import { deleteContainer } from "../src/container/lifecycle.ts";
import { type StateRecord, StateStore } from "../src/container/state.ts";
import { rootfsDir, rootfsId, withRootfsLock } from "../src/container/_rootfs_ref.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = runtime === "bun"
  ? [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli/main.ts")]
  : [join(ROOT, "bin/hako")];
const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");
/** A pid above the kernel's limit (4194304): no process has it, so a file naming it is a dead writer's. */
const DEAD_PID = 4194305;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A state directory, a busybox tarball, a directory for the rootfs extracted from it, and spec
 * files; deletes every container, kills the supervisor and removes it all on dispose.
 */
function lab(options: { env?: Record<string, string> } = {}) {
  const dir = tempDir("hako-rootfsref-");
  chmodSync(dir.path, 0o755);
  const state = join(dir.path, "state");
  const images = join(dir.path, "images");
  mkdirSync(images);
  const tree = join(dir.path, "tree");
  buildRootfs(tree, { builder: "busybox" });
  const tarball = join(dir.path, "busybox.tar");
  const t = spawnSync("tar", ["-C", tree, "-cf", tarball, "."]);
  assert.equal(t.status, 0, String(t.stderr));
  const tag = Math.random().toString(16).slice(2, 8);
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    HAKO_STATE_DIR: state,
    NO_COLOR: "1",
    ...options.env,
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
  /** A container name unique on the host (its cgroup is hako/NAME). */
  const name = (n: string) => `rfr-${tag}-${n}`;
  /** Writes a spec module for container `n`; `rootfs` is the spec's rootfs (default: the tarball into images/img). */
  const spec = (n: string, command: string, rootfs?: unknown): string => {
    const path = join(dir.path, `${n}.ts`);
    const r = rootfs ?? { tarball, path: join(images, "img") };
    writeFileSync(
      path,
      `export default ${JSON.stringify({ name: name(n), rootfs: r, command: ["sh", "-c", command] })};\n`,
    );
    return path;
  };
  const ps = (): Array<{ name: string; state: string; pid: number | null }> =>
    JSON.parse(hako("ps", "-a", "--json").stdout);
  const start = (n: string, command: string, rootfs?: unknown) => {
    const r = hako("start", spec(n, command, rootfs));
    assert.equal(r.code, 0, r.stderr);
  };
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
    images,
    tarball,
    hako,
    hakoAsync,
    name,
    spec,
    start,
    ps,
    /**
     * Lines of `hako gc` (or `--dry-run`), sorted, with "would remove" read as "removed" — but for
     * cgroups and links not this test's (gc looks at the whole host's, and others run tests too).
     */
    gc(dry = false): string[] {
      const r = hako("gc", ...(dry ? ["--dry-run"] : []));
      assert.equal(r.code, 0, r.stderr);
      if (r.stdout === "nothing to collect\n") return [];
      return r.stdout.trim().split("\n").map((l) => l.replace(/^would remove /, "removed "))
        .filter((l) => !/^removed (cgroup|link) /.test(l) || l.includes(tag)).sort();
    },
    /** What hako keeps under STATE/rootfs (locks, notes). */
    notes: (): string[] => existsSync(rootfsDir(state)) ? readdirSync(rootfsDir(state)).sort() : [],
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

/** Sets a file's or directory's times two minutes back (gc leaves a fresh record-less directory alone). */
function age(path: string): void {
  const t = new Date(Date.now() - 120_000);
  utimesSync(path, t, t);
}

// ---- delete --rootfs ------------------------------------------------------------------------

for (const path of ["native", "forked"] as const) {
  test(
    `delete --rootfs keeps a rootfs another container runs on, which still execs; the last user's removes it (${path} spawn)`,
    () => {
      using l = lab({ env: path === "forked" ? { HAKO_NATIVE_SPAWN: "0" } : {} });
      const img = join(l.images, "img");
      l.start("a", "exec sleep 1000");
      l.start("b", "exec sleep 1000");
      const d = l.hako("delete", "--force", "--rootfs", l.name("a"));
      assert.equal(d.code, 0, d.stderr);
      // Named once: b's record (its init, whose root the rootfs is, is b's own process).
      assert.equal(
        d.stderr,
        `hako delete: kept the rootfs ${img} of ${l.name("a")}: still used by container ${l.name("b")}\n`,
      );
      assert.ok(existsSync(join(img, "bin/busybox")), "the rootfs is whole");
      assert.deepEqual(l.ps().map((c) => c.name), [l.name("b")], "a itself is deleted");
      const x = l.hako("exec", l.name("b"), "--", "sh", "-c", "ls /bin/busybox && echo still-here");
      assert.deepEqual([x.code, x.stdout], [0, "/bin/busybox\nstill-here\n"], x.stderr);
      const last = l.hako("delete", "--force", "--rootfs", l.name("b"));
      assert.deepEqual([last.code, last.stderr], [0, ""]);
      assert.ok(!existsSync(img), "the last user's delete --rootfs removed it");
      assert.deepEqual(readdirSync(l.images), [], "nothing is left beside it");
      assert.deepEqual(l.notes(), [], "no lock or note is left");
    },
    { skip },
  );
}

test(
  "two concurrent delete --rootfs of the two containers on one rootfs: one keeps it, the other removes it",
  async () => {
    using l = lab();
    const img = join(l.images, "img");
    for (let round = 0; round < 3; round++) {
      l.start(`a${round}`, "true");
      l.start(`b${round}`, "true");
      await until("both to exit", () => l.ps().every((c) => c.state === "exited"));
      assert.ok(existsSync(img));
      const results = await Promise.all([
        l.hakoAsync("delete", "--rootfs", l.name(`a${round}`)).done,
        l.hakoAsync("delete", "--rootfs", l.name(`b${round}`)).done,
      ]);
      assert.deepEqual(results.map((r) => r.code), [0, 0], JSON.stringify(results));
      assert.equal(results.filter((r) => r.stderr.includes("kept the rootfs")).length, 1, JSON.stringify(results));
      assert.ok(!existsSync(img), `round ${round}: the rootfs is not left behind (${JSON.stringify(results)})`);
      assert.deepEqual(l.ps(), []);
      assert.deepEqual(l.notes(), []);
    }
    // Both in one command: the second is the last user.
    l.start("one", "true");
    l.start("two", "true");
    await until("both to exit", () => l.ps().every((c) => c.state === "exited"));
    const both = l.hako("delete", "--rootfs", l.name("one"), l.name("two"));
    assert.equal(both.code, 0, both.stderr);
    assert.equal(both.stderr.split("\n").filter((x) => x.includes("kept the rootfs")).length, 1, both.stderr);
    assert.ok(!existsSync(img));
  },
  { skip },
);

test("a symlink to the rootfs is the same rootfs: kept while a container uses it by either path", () => {
  using l = lab();
  const img = join(l.images, "img"), alias = join(l.dir, "alias");
  l.start("a", "true");
  symlinkSync(img, alias);
  l.start("b", "true", { tarball: l.tarball, path: alias });
  const d = l.hako("delete", "--rootfs", l.name("a"));
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stderr, new RegExp(`still used by container ${l.name("b")}\n`));
  assert.ok(existsSync(join(img, "bin/busybox")));
  const last = l.hako("delete", "--rootfs", l.name("b"));
  assert.deepEqual([last.code, last.stderr], [0, ""]);
  assert.ok(!existsSync(img), "the directory behind the alias is removed");
  assert.ok(lstatSync(alias).isSymbolicLink(), "the alias (not hako's) is left, dangling");
}, { skip });

test("a live process whose root is the rootfs keeps it, and is named", async () => {
  using l = lab();
  const img = join(l.images, "img");
  l.start("a", "true");
  const sleeper = spawn("chroot", [img, "/bin/sleep", "60"], { stdio: "ignore" });
  try {
    const root = statSync(img);
    await until("the chroot", () => {
      try {
        const st = statSync(`/proc/${sleeper.pid}/root`);
        return st.ino === root.ino && st.dev === root.dev;
      } catch {
        return false;
      }
    });
    const d = l.hako("delete", "--rootfs", l.name("a"));
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stderr, new RegExp(`still used by process ${sleeper.pid} \\(sleep\\)\n`));
    assert.ok(existsSync(join(img, "bin/busybox")));
    assert.deepEqual(l.ps(), []);
  } finally {
    sleeper.kill("SIGKILL");
  }
  // It ran, so gc leaves it too: only delete --rootfs removes a rootfs a container ran on.
  assert.deepEqual(l.gc(), []);
  assert.ok(existsSync(join(img, "bin/busybox")));
}, { skip });

test(
  "delete --rootfs never removes a builder rootfs, nor a directory without hako's marker, nor across a mount",
  () => {
    using l = lab();
    const built = join(l.images, "built");
    l.start("b", "true", { builder: "busybox", path: built });
    const b = l.hako("delete", "--rootfs", l.name("b"));
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /hako did not extract it from a tarball/);
    assert.ok(existsSync(join(built, "bin/busybox")));

    const img = join(l.images, "img");
    l.start("m", "true");
    rmSync(join(img, ".hako-rootfs"));
    const m = l.hako("delete", "--rootfs", l.name("m"));
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stderr, /holds no marker of an extraction by hako/);
    assert.ok(existsSync(join(img, "bin/busybox")));

    const other = join(l.images, "other");
    l.start("u", "true", { tarball: l.tarball, path: other });
    const mnt = join(other, "mnt");
    mkdirSync(mnt, { recursive: true });
    assert.equal(spawnSync("mount", ["-t", "tmpfs", "hako-rootfsref-test", mnt]).status, 0);
    try {
      writeFileSync(join(mnt, "precious"), "x");
      const u = l.hako("delete", "--rootfs", l.name("u"));
      assert.equal(u.code, 1);
      assert.match(
        u.stderr,
        new RegExp(`was deleted, but its rootfs ${other} was not removed: ${mnt} is a mount point`),
      );
      assert.ok(existsSync(join(mnt, "precious")) && existsSync(join(other, "bin/busybox")), "nothing was removed");
      assert.deepEqual(l.ps(), [], "the container itself is deleted");
    } finally {
      spawnSync("umount", [mnt]);
    }
  },
  { skip },
);

// ---- gc -------------------------------------------------------------------------------------

test(
  "gc removes container directories without a valid record (after a minute) and dead writers' files; --dry-run lists the same",
  () => {
    using l = lab();
    l.start("live", "exec sleep 1000");
    const containers = join(l.state, "containers");
    const ghost = join(containers, "ghost"), half = join(containers, "half"), fresh = join(containers, "fresh");
    mkdirSync(ghost);
    mkdirSync(half);
    writeFileSync(join(half, "state.json"), '{"version":1,"name":"ha');
    mkdirSync(fresh);
    for (const p of [ghost, join(half, "state.json"), half]) age(p);
    const liveDir = join(containers, l.name("live"));
    const strays = [
      join(liveDir, `.state.json.${DEAD_PID}`),
      join(l.state, `.supervisor.pid.${DEAD_PID}.tmp`),
      join(l.state, "rootfs", `1-1.lock`), // a lock of a rootfs that is gone
    ];
    for (const f of strays) writeFileSync(f, "/nonexistent/rootfs\n");
    const want = [
      "removed container ghost",
      "removed container half",
      ...strays.map((f) => `removed ${f}`),
    ].sort();
    assert.deepEqual(l.gc(true), want, "--dry-run");
    assert.ok([ghost, half, ...strays].every((p) => existsSync(p)), "--dry-run removed nothing");
    assert.deepEqual(l.gc(), want);
    assert.ok(![ghost, half, ...strays].some((p) => existsSync(p)));
    assert.ok(existsSync(fresh), "a directory made less than a minute ago may be a reservation under way");
    assert.ok(existsSync(join(liveDir, "state.json")), "the live container's record is kept");
    // Shown all the same, never hidden: a directory without a record is `unknown`.
    assert.deepEqual(l.ps().map((c) => [c.name, c.state]), [["fresh", "unknown"], [l.name("live"), "running"]]);
  },
  { skip },
);

test(
  "gc removes the rootfs extracted for a container that never ran, once its record is gone, but not one a container ran on",
  () => {
    using l = lab();
    const img = join(l.images, "img"), ran = join(l.images, "ran");
    // The command does not exist: the supervisor's start fails and removes the record.
    writeFileSync(
      join(l.dir, "never.ts"),
      `export default ${
        JSON.stringify({ name: l.name("never"), rootfs: { tarball: l.tarball, path: img }, command: ["/nonexistent"] })
      };\n`,
    );
    const f = l.hako("start", join(l.dir, "never.ts"));
    assert.equal(f.code, 1);
    assert.match(f.stderr, /nonexistent/);
    assert.ok(existsSync(join(img, "bin/busybox")), "extracted");
    l.start("ran", "true", { tarball: l.tarball, path: ran });
    assert.equal(l.hako("delete", l.name("ran")).code, 0); // kept: no --rootfs
    assert.deepEqual(l.ps(), []);
    assert.deepEqual(l.gc(true), [`removed rootfs ${img}`]);
    assert.ok(existsSync(join(img, "bin/busybox")), "--dry-run removed nothing");
    assert.deepEqual(l.gc(), [`removed rootfs ${img}`]);
    assert.ok(!existsSync(img));
    assert.ok(existsSync(join(ran, "bin/busybox")), "a rootfs a container ran on stays");
    assert.deepEqual(readdirSync(l.images), ["ran"]);
    assert.deepEqual(l.gc(), []);
  },
  { skip },
);

test("gc after a crash mid-setup removes the half-made container and the rootfs extracted for it", async () => {
  using l = lab();
  const img = join(l.images, "img");
  // The beforeStart hook holds the container in its setup while the supervisor is killed.
  const file = join(l.dir, "g.ts");
  writeFileSync(
    file,
    `export default ${
      JSON.stringify({
        name: l.name("g"),
        rootfs: { tarball: l.tarball, path: img },
        command: ["sleep", "1000"],
        hooks: { beforeStart: "sleep 30" },
      })
    };\n`,
  );
  const starter = l.hakoAsync("start", file);
  // (hako start reserves the name before it extracts: the supervisor has it once it recorded an init.)
  const record = join(l.state, "containers", l.name("g"), "state.json");
  await until("the half-made container", () => existsSync(record) && readFileSync(record, "utf8").includes('"init"'));
  process.kill(Number(readFileSync(join(l.state, "supervisor.pid"), "utf8").split(" ")[0]), "SIGKILL");
  await starter.done;
  assert.equal(l.ps()[0]?.state, "dead");
  const want = [
    `removed ${join(l.state, "supervisor.pid")}`, // the dead supervisor's
    `removed ${join(l.state, "supervisor.sock")}`,
    `removed container ${l.name("g")}`,
    `removed rootfs ${img}`,
  ];
  assert.deepEqual(l.gc(true), want);
  assert.ok(existsSync(join(img, "bin/busybox")));
  assert.deepEqual(l.gc(), want);
  assert.ok(!existsSync(img));
  assert.deepEqual(l.ps(), []);
  assert.deepEqual(l.gc(), []);
}, { skip });

test("gc leaves an extraction in progress alone and removes what an interrupted one left", async () => {
  using l = lab();
  // A tarball big enough to catch its extraction under way.
  const big = join(l.dir, "big");
  rmSync(big, { recursive: true, force: true });
  spawnSync("cp", ["-a", join(l.dir, "tree"), big]);
  writeFileSync(join(big, "zeros"), "");
  truncateSync(join(big, "zeros"), 300 * 2 ** 20); // sparse on disk; 300 MiB in the tarball
  const bigTar = join(l.dir, "big.tar");
  assert.equal(spawnSync("tar", ["-C", big, "-cf", bigTar, "."]).status, 0);
  const img = join(l.images, "img");
  const starter = l.hakoAsync("start", l.spec("big", "true", { tarball: bigTar, path: img }));
  let tmp = "";
  try {
    await until("the extraction", () => {
      const t = readdirSync(l.images).find((e) => e.startsWith(".img.hako-tmp-"));
      if (t) tmp = join(l.images, t);
      return !!t;
    });
    process.kill(starter.pid, "SIGSTOP"); // held mid-extraction
    assert.deepEqual(l.gc(true), [], "an extraction under way is not garbage");
    assert.deepEqual(l.gc(), []);
    assert.ok(existsSync(tmp));
  } finally {
    process.kill(starter.pid, "SIGKILL");
  }
  await starter.done;
  assert.ok(!existsSync(img) && existsSync(tmp), "the extraction was cut short");
  const dry = l.gc(true);
  assert.equal(dry.length, 3, dry.join("\n"));
  assert.equal(dry[0], `removed ${join(l.state, "rootfs")}/${dry[0]!.split("/").pop()}`);
  assert.match(dry[0]!, /\.pending$/, "the note that it was to be extracted");
  // hako start reserves the name before it extracts: the reservation of the start that died.
  assert.equal(dry[1], `removed container ${l.name("big")}`);
  assert.equal(dry[2], `removed rootfs ${tmp}`);
  assert.deepEqual(l.gc(), dry);
  assert.deepEqual(readdirSync(l.images), []);
  assert.deepEqual(l.notes(), []);
}, { skip });

test(
  "gc removes what interrupted extractions, builds and removals left beside a known rootfs, and nothing else",
  () => {
    using l = lab();
    l.start("x", "true");
    const beside = (n: string) => join(l.images, n);
    const garbage = [".img.hako-tmp-a1B2c3", `img.building-${DEAD_PID}`, ".img.hako-rm-0123456789ab"].map(beside);
    const others = [".img.hako-tmp-not-mkdtemp", ".other.hako-tmp-a1B2c3", `img.building-${process.pid}`].map(beside);
    for (const d of [...garbage, ...others]) mkdirSync(join(d, "etc"), { recursive: true });
    const want = garbage.map((d) => `removed rootfs ${d}`).sort();
    assert.deepEqual(l.gc(true), [`removed container ${l.name("x")}`, ...want].sort());
    assert.deepEqual(l.gc(), [`removed container ${l.name("x")}`, ...want].sort());
    assert.ok(!garbage.some((d) => existsSync(d)));
    assert.ok(others.every((d) => existsSync(d)), "other names, and a build whose process runs, are left");
    assert.ok(existsSync(join(l.images, "img/bin/busybox")), "the rootfs a container ran on is left");
  },
  { skip },
);

test("gc removes a veth pair a crash left whole on the host, never one whose other end is in a live namespace", () => {
  using l = lab();
  const hex = () => Math.random().toString(16).slice(2, 10).padEnd(8, "0");
  const orphan = `hk-${hex()}-h`, live = `hk-${hex()}-h`, ns = `rfr-ns-${hex()}`;
  const ip = (...args: string[]) => spawnSync("ip", args, { encoding: "utf8" });
  try {
    assert.equal(ip("link", "add", orphan, "type", "veth", "peer", "name", orphan.replace(/h$/, "c")).status, 0);
    assert.equal(ip("netns", "add", ns).status, 0);
    const made = ip("link", "add", live, "type", "veth", "peer", "name", "eth0", "netns", ns);
    assert.equal(made.status, 0, made.stderr);
    const dry = l.hako("gc", "--dry-run").stdout;
    assert.ok(dry.includes(`would remove link ${orphan}\n`), dry);
    assert.ok(!dry.includes(live), `a live container's veth is not garbage:\n${dry}`);
    const r = l.hako("gc").stdout;
    assert.ok(r.includes(`removed link ${orphan}\n`) && !r.includes(live), r);
    assert.ok(!existsSync(`/sys/class/net/${orphan}`) && existsSync(`/sys/class/net/${live}`));
  } finally {
    ip("link", "del", orphan);
    ip("link", "del", live);
    ip("netns", "del", ns);
  }
}, { skip: skip || (!which("ip") && "needs ip on the host to make the veth pairs (apt-get install iproute2)") });

// ---- the library, in this runtime -----------------------------------------------------------

/** A record of an exited container on `rootfs`, as `hako start` writes it (no cgroup, no veth). */
function exited(name: string, rootfs: string, tarball: string): StateRecord {
  const dead = { pid: DEAD_PID, startTime: 1 };
  return {
    version: 1,
    name,
    state: "exited",
    owner: dead,
    createdAt: new Date().toISOString(),
    spec: { name, command: "true", rootfs: { tarball, path: rootfs } },
    image: tarball,
    rootfs,
    extracted: true,
    exit: null,
  };
}

test("deleteContainer({ rootfs: true }) returns who keeps the rootfs, and removes it with its last user", async () => {
  using dir = tempDir("hako-rootfsref-lib-");
  const store = new StateStore(join(dir.path, "state"));
  const img = join(dir.path, "img");
  mkdirSync(join(img, "bin"), { recursive: true });
  writeFileSync(join(img, ".hako-rootfs"), JSON.stringify({ tarball: "/srv/img.tar" }) + "\n");
  store.reserve(exited("lib-a", img, "/srv/img.tar"));
  store.reserve(exited("lib-b", join(dir.path, "alias"), "/srv/img.tar"));
  symlinkSync(img, join(dir.path, "alias"));
  const a = await deleteContainer("lib-a", { rootfs: true, store });
  assert.deepEqual(a.rootfs?.kept, "in-use");
  assert.deepEqual(a.rootfs?.users, ["container lib-b"]);
  assert.ok(existsSync(join(img, "bin")));
  const b = await deleteContainer("lib-b", { rootfs: true, store });
  assert.deepEqual(b, { name: "lib-b", rootfs: { path: join(dir.path, "alias"), removed: true } });
  assert.ok(!existsSync(img));
  assert.deepEqual(store.list(), []);
  assert.deepEqual(readdirSync(rootfsDir(store.root)), [], "the lock went with the rootfs");
}, { skip: needsRoot });

test("withRootfsLock: one holder at a time, whatever the path; the lock file goes with the rootfs", () => {
  using dir = tempDir("hako-rootfsref-lock-");
  const state = join(dir.path, "state");
  mkdirSync(state, { mode: 0o700 });
  const img = join(dir.path, "img");
  mkdirSync(img);
  symlinkSync(img, join(dir.path, "alias"));
  const inner = withRootfsLock(state, img, ({ id }) => {
    assert.equal(id?.path, img);
    // Another open file description of the same lock (as another process would have) is refused.
    const busy = withRootfsLock(state, join(dir.path, "alias"), () => "got it", { wait: false });
    renameSync(img, join(dir.path, "moved")); // the rootfs leaves its path while locked
    return busy;
  });
  assert.equal(inner, "busy");
  assert.deepEqual(readdirSync(rootfsDir(state)), [], "its lock file went");
  assert.equal(rootfsId(img), undefined);
  assert.equal(withRootfsLock(state, img, ({ id }) => id === undefined), true, "nothing there: no lock");
});
