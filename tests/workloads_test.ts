/**
 * Real workloads, as the issue shows them: several containers on one rootfs at once, each with its
 * own /etc/hostname, and a quick `hako run --rootfs DIR` that leaves DIR's /etc as it found it
 * (hako writes its /etc files in the container's state directory and bind-mounts them; in the
 * rootfs it makes at most an empty mount point where one is missing, as runc does). Each on the
 * native child and on the forked one (`HAKO_NATIVE_SPAWN=0`).
 *
 * Covered elsewhere: a non-root user inside writing /dev/null (tests/escape_test.ts, "default
 * device nodes are 0666…", both paths); the hacorb capability step (tests/hacorb_test.ts,
 * tests/examples_test.ts).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, isRoot, runtime, tempDir, test } from "./_harness.ts";
import { Container, execIn } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : findStaticBusybox()
  ? false
  : "needs a static busybox (apt-get install busybox-static)";
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

/** A busybox rootfs in a temp dir (0755, so that every container can reach it). */
function rootfsBox(): { rootfs: string; dir: string } & Disposable {
  const dir = tempDir("hako-test-workloads-");
  chmodSync(dir.path, 0o755);
  const rootfs = join(dir.path, "rootfs");
  buildRootfs(rootfs, { builder: "busybox" });
  return { rootfs, dir: dir.path, [Symbol.dispose]: () => dir[Symbol.dispose]() };
}

/** The rootfs's /etc: each regular file's name and text. */
function etcOf(rootfs: string): Map<string, string> {
  const etc = join(rootfs, "etc");
  return new Map(readdirSync(etc).sort().map((f) => [f, readFileSync(join(etc, f), "utf8")]));
}

/** Asserts that /etc is as `before`, but for files hako may add empty (missing mount points). */
function assertEtcUnchanged(rootfs: string, before: Map<string, string>, names: string[], what: string): void {
  const after = etcOf(rootfs);
  for (const [f, text] of before) assertEquals(after.get(f), text, `${what}: the rootfs's /etc/${f} is unchanged`);
  for (const [f, text] of after) {
    if (before.has(f)) continue;
    assert(["hostname", "hosts", "resolv.conf"].includes(f), `${what}: hako left /etc/${f} in the rootfs`);
    assertEquals(text, "", `${what}: /etc/${f} in the rootfs is at most an empty mount point`);
  }
  for (const [f, text] of after) {
    for (const n of names) assert(!text.includes(n), `${what}: the rootfs's /etc/${f} holds container ${n}'s name`);
  }
}

test(
  "three containers run at once on one rootfs, each reading its own /etc/hostname and /etc/hosts; the rootfs's /etc is untouched",
  async () => {
    using box = rootfsBox();
    // One rootfs without the files (hako makes empty mount points) and one with them (kept as they are).
    rmSync(join(box.rootfs, "etc/hostname"), { force: true });
    const before = etcOf(box.rootfs);
    for (const [path, value] of PATHS) {
      await onPath(value, async () => {
        const names = [1, 2, 3].map((i) => `hako-test-wl-${path}-${i}-${process.pid}`);
        const containers: Container[] = [];
        try {
          for (const name of names) {
            const c = await Container.create({ name, rootfs: box.rootfs, command: ["sleep", "60"], stdio: "null" });
            containers.push(c);
            await c.start();
          }
          // All three are running: each reads its files inside (by hako exec) while the others run.
          for (const [i, c] of containers.entries()) {
            assertEquals(c.poll(), undefined, `${path}: ${names[i]} is still running`);
            using out = tempDir();
            const file = join(out.path, "out");
            const fd = openSync(file, "w");
            try {
              const st = await execIn(c.pid, {
                argv: ["sh", "-c", 'cat /etc/hostname; grep -c "$(cat /etc/hostname)" /etc/hosts; hostname'],
                spec: c.spec,
                stdout: fd,
                stderr: fd,
              });
              assertEquals(st.code, 0, readFileSync(file, "utf8"));
            } finally {
              closeSync(fd);
            }
            assertEquals(readFileSync(file, "utf8").trim().split("\n"), [names[i], "1", names[i]], path);
          }
        } finally {
          for (const c of containers) {
            c.kill("KILL");
            await c.wait();
            c.delete();
          }
        }
        assertEtcUnchanged(box.rootfs, before, names, path);
      });
    }
  },
  { skip },
);

/** The hako command line under this test's runtime: bin/hako (Deno), or Bun running main.ts. */
const HAKO = runtime === "deno"
  ? [join(ROOT, "bin/hako")]
  : [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli/main.ts")];

test(
  "a quick `hako run --rootfs DIR` leaves DIR's /etc as it found it: no generated file, the container's name nowhere",
  () => {
    using box = rootfsBox();
    rmSync(join(box.rootfs, "etc/resolv.conf"), { force: true });
    rmSync(join(box.rootfs, "etc/hosts"), { force: true });
    const before = etcOf(box.rootfs);
    for (const [path, value] of PATHS) {
      const name = `hako-test-wl-quick-${path}-${process.pid}`;
      const env: Record<string, string> = {
        ...process.env as Record<string, string>,
        HAKO_STATE_DIR: join(box.dir, `state-${path}`),
        HAKO_NATIVE_SPAWN: value,
        NO_COLOR: "1",
      };
      delete env.HAKO_LOADER;
      const r = spawnSync(HAKO[0]!, [
        ...HAKO.slice(1),
        "run",
        "--rootfs",
        box.rootfs,
        "--name",
        name,
        "--",
        "sh",
        "-c",
        'cat /etc/hostname; grep -c "$(hostname)" /etc/hosts; test -e /etc/resolv.conf && echo resolv',
      ], { env, encoding: "utf8", timeout: 60_000 });
      if (r.error) throw r.error;
      assertEquals([r.status, r.stdout.trim().split("\n")], [0, [name, "1", "resolv"]], `${path}: ${r.stderr}`);
      assertEtcUnchanged(box.rootfs, before, [name], path);
      assert(!existsSync(join(box.rootfs, "etc", `${name}`)), path);
    }
  },
  { skip },
);
