/**
 * Spec modules through the CLI: `hako run` runs the container a module's default export
 * describes, `hako plan` prints what it would do; the seed articles' configs as specs.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, isRoot, tempDir, test } from "./_harness.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HAKO = join(ROOT, "bin/hako");
const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : findStaticBusybox()
  ? false
  : "needs a static busybox (apt-get install busybox-static)";

function hako(args: string[], env: Record<string, string> = {}): { code: number | null; out: string; err: string } {
  const r = spawnSync(HAKO, args, {
    cwd: ROOT,
    env: { ...process.env as Record<string, string>, NO_COLOR: "1", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("hako run of the libcontainer spec (seed 002): hostname, rlimit, masks, read-only /proc/sys, exit code", () => {
  using dir = tempDir();
  const r = hako([
    "run",
    "examples/specs/libcontainer.ts",
    "sh",
    "-c",
    "hostname; ulimit -n; grep NoNewPrivs /proc/self/status; cat /sys/firmware/* 2>&1 | wc -c; " +
    "echo x > /proc/sys/kernel/domainname || echo read-only; ps -o pid,comm; exit 7",
  ], { HAKO_ROOTFS: join(dir.path, "rootfs"), HAKO_NAME: `hako-test-spec-${process.pid}` });
  assertEquals(r.code, 7, r.out + r.err);
  assert(/^testing$/m.test(r.out), r.out);
  assert(/^1025$/m.test(r.out), r.out);
  assert(/NoNewPrivs:\s+1/.test(r.out), r.out);
  assert(/^read-only$/m.test(r.out), r.out);
  assert(/^\s*1 sh$/m.test(r.out), r.out);
}, { skip });

test("hako run of the PHP-tester spec (seed 001): root inside is PORT*100 outside, in a user namespace", () => {
  using dir = tempDir();
  chmodSync(dir.path, 0o755);
  const r = hako([
    "run",
    "examples/specs/php_tester.ts",
    "sh",
    "-c",
    "id -u; cat /proc/self/uid_map; mount | grep ' /tmp '",
  ], {
    PORT: "10042",
    HAKO_ROOT: dir.path,
  });
  assertEquals(r.code, 0, r.out + r.err);
  assert(/^0$/m.test(r.out), r.out);
  assert(/^\s*0\s+1004200\s+100$/m.test(r.out), r.out);
  assert(/tmpfs on \/tmp type tmpfs/.test(r.out), r.out);
  assert(existsSync(join(dir.path, "php-tester-10042/bin/busybox")));
}, { skip });

test("hako plan prints every step and kernel call, touching nothing", () => {
  using dir = tempDir();
  const rootfs = join(dir.path, "never-built");
  const r = hako(["plan", "examples/specs/libcontainer.ts"], { HAKO_ROOTFS: rootfs });
  assertEquals(r.code, 0, r.err);
  for (
    const step of [
      "rootfs",
      "cgroup",
      "clone",
      "mount-proc",
      "mount-dev",
      "pivot-root",
      "masked-paths",
      "rlimits",
      "capabilities",
      "no-new-privs",
      "exec",
    ]
  ) {
    assert(new RegExp(`\\] ${step} — `).test(r.out), `step ${step} missing:\n${r.out}`);
  }
  assert(r.out.includes("CLONE_NEWPID"), r.out);
  assert(!existsSync(rootfs), "plan built the rootfs");
  const json = JSON.parse(hako(["plan", "--json", "examples/specs/libcontainer.ts"], { HAKO_ROOTFS: rootfs }).out);
  assertEquals(json.name, "container-id");
  assert(json.steps.some((s: { name: string; where: string }) => s.name === "pivot-root" && s.where === "child"));
});

test("a spec file may be JSON: hako plan reads it as data; an OCI config.json is told apart", () => {
  using dir = tempDir();
  const file = join(dir.path, "web.json");
  writeFileSync(
    file,
    JSON.stringify({
      name: "web-json",
      rootfs: join(dir.path, "rootfs"),
      command: ["true"],
      cgroup: { pids: { max: 5 } },
    }),
  );
  const r = hako(["plan", file]);
  assertEquals(r.code, 0, r.err);
  assert(r.out.includes("pids.max = 5"), r.out);
  writeFileSync(file, JSON.stringify({ name: "../x", command: [], rootfs: "relative" }));
  const bad = hako(["plan", file]);
  assertEquals(bad.code, 1, bad.out);
  for (const p of ["name:", "command:", "rootfs:"]) assert(bad.err.includes(p), `${p} missing:\n${bad.err}`);
  writeFileSync(file, "{ not json");
  assert(/web\.json: not JSON/.test(hako(["plan", file]).err), "a parse error names the file");
  writeFileSync(file, JSON.stringify({ ociVersion: "1.0.2", process: { args: ["true"] } }));
  assert(
    /an OCI bundle's config\.json, not a hako spec: run its bundle with 'hako oci run/.test(hako(["plan", file]).err),
  );
});

test("hako plan of a bad spec lists every problem with its field path", () => {
  using dir = tempDir();
  const file = join(dir.path, "bad.ts");
  writeFileSync(
    file,
    `export default { name: "../x", command: [], rootfs: "relative/dir", namespaces: ["pid"], hostname: "h",
      mounts: [{ type: "tmpfs", target: "tmp" }], idMap: { uid: { inside: 0, outside: 1000, size: 10 } } };\n`,
  );
  const r = hako(["plan", file]);
  assertEquals(r.code, 1, r.out + r.err);
  for (const p of ["name:", "command:", "rootfs:", "hostname:", "mounts[0].target:", "idMap:"]) {
    assert(r.err.includes(p), `${p} missing:\n${r.err}`);
  }
});

test("hako run of a plain script (no spec default export) just runs it", () => {
  using dir = tempDir();
  const file = join(dir.path, "plain.ts");
  writeFileSync(file, `export default function hello() { return 42; }\nconsole.log("plain");\n`);
  const r = hako(["run", file]);
  assertEquals(r.code, 0, r.err);
  assertEquals(r.out.trim(), "plain");
});
