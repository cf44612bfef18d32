/**
 * tests/setup.sh, which tests/run.sh (`npm test`) runs first so that a fresh Debian or Ubuntu
 * machine needs nothing installed by hand. Run in a throwaway tree with `dpkg-query`, `apt-get` and
 * `id` stubbed on PATH: the machine's packages are never touched (others use them), yet each branch
 * runs — nothing missing (silent, no apt-get), missing as root (one update, one install), not
 * root, offline, not Debian, the opt-out, and dist/hako missing or stale.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { tempDir, test } from "./_harness.ts";

const SETUP = fileURLToPath(new URL("./setup.sh", import.meta.url));
const PACKAGES = [
  "busybox-static",
  "iproute2",
  "tini",
  "gcc",
  "libc6-dev",
  "binutils",
  "python3",
  "libseccomp2",
  "procps",
];

const STUBS: Record<string, string> = {
  // Everything is installed but $STUB_MISSING.
  "dpkg-query": `#!/bin/sh
for a; do pkg=$a; done
case " $STUB_MISSING " in *" $pkg "*) echo "dpkg-query: no packages found matching $pkg" >&2; exit 1 ;; esac
printf 'install ok installed'
`,
  "apt-get": `#!/bin/sh
echo "apt-get $*" >> "$STUB_LOG"
if [ -n "$STUB_OFFLINE" ] && [ "$3" = update ]; then
  echo "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'"
  echo "E: Some index files failed to download. They have been ignored, or old ones used instead."
  exit 100
fi
case " $* " in *" install "*) [ -n "$STUB_NO_ARCHIVES" ] && { echo "E: Unable to fetch some archives, maybe run apt-get update or try with --fix-missing?"; exit 100; }; for u in $STUB_UNAVAILABLE; do case " $* " in *" $u "*) echo "E: Unable to locate package $u"; exit 100 ;; esac; done ;; esac
exit 0
`,
  id: `#!/bin/sh
echo "\${STUB_UID:-0}"
`,
};

/** A tree holding a copy of tests/setup.sh (and `tree`'s files), with the stubs in `stubs/`. */
function sandbox(): { path: string; run(env?: Record<string, string>, args?: string[]): Run } & Disposable {
  const dir = tempDir("hako-test-setup-");
  mkdirSync(join(dir.path, "tests"));
  copyFileSync(SETUP, join(dir.path, "tests/setup.sh"));
  const stubs = join(dir.path, "stubs");
  mkdirSync(stubs);
  for (const [name, text] of Object.entries(STUBS)) {
    writeFileSync(join(stubs, name), text);
    chmodSync(join(stubs, name), 0o755);
  }
  const log = join(dir.path, "apt.log");
  return {
    path: dir.path,
    run(env = {}, args = ["tests/cli_args_test.ts"]) {
      const r = spawnSync("bash", [join(dir.path, "tests/setup.sh"), ...args], {
        env: {
          PATH: `${stubs}:${process.env.PATH ?? "/usr/bin:/bin"}`,
          STUB_LOG: log,
          ...env,
        },
        encoding: "utf8",
      });
      return {
        code: r.status,
        out: `${r.stdout}${r.stderr}`,
        apt: existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [],
      };
    },
    [Symbol.dispose]: () => dir[Symbol.dispose](),
  };
}

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly apt: string[];
}

test("with every package installed, setup.sh runs no apt-get and prints nothing", () => {
  using box = sandbox();
  const r = box.run();
  assert.deepEqual([r.code, r.out, r.apt], [0, "", []]);
});

test("as root, setup.sh installs only the missing packages: one apt-get update, one install, saying so", () => {
  using box = sandbox();
  const r = box.run({ STUB_MISSING: "busybox-static tini" });
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.apt, [
    "apt-get -o DPkg::Lock::Timeout=300 update -qq",
    "apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends busybox-static tini",
  ]);
  assert.equal(
    r.out,
    "tests/setup.sh: installing busybox-static tini (apt-get)\ntests/setup.sh: installed busybox-static tini\n",
  );
});

test("it asks for every package the tests use when none is installed", () => {
  using box = sandbox();
  const r = box.run({ STUB_MISSING: PACKAGES.join(" ") });
  assert.equal(
    r.apt[1],
    `apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends ${PACKAGES.join(" ")}`,
    r.out,
  );
});

test("podman is asked for only when tests/oci_test.ts runs (podman drives hako there)", () => {
  using box = sandbox();
  const without = box.run({ STUB_MISSING: "podman tini" });
  assert.match(without.apt[1] ?? "", / tini$/, without.out);
  using box2 = sandbox();
  const withOci = box2.run({ STUB_MISSING: "podman tini" }, ["tests/oci_test.ts"]);
  assert.match(withOci.apt[1] ?? "", / tini podman$/, withOci.out);
});

test("offline, setup.sh says apt-get update failed and why, and the run goes on (exit 0)", () => {
  using box = sandbox();
  const r = box.run({ STUB_MISSING: "gcc", STUB_OFFLINE: "1" });
  assert.equal(r.code, 0);
  assert.deepEqual(r.apt, ["apt-get -o DPkg::Lock::Timeout=300 update -qq"]);
  assert.match(
    r.out,
    /apt-get update failed \(offline\? E: Some index files failed to download\..*\); the tests that need gcc skip/,
  );
});

test("a package apt does not know is left out, saying so; the others are still installed", () => {
  using box = sandbox();
  const r = box.run({ STUB_MISSING: "busybox-static tini gcc", STUB_UNAVAILABLE: "tini" });
  assert.equal(r.code, 0, r.out);
  const install = "apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends";
  assert.deepEqual(r.apt.slice(1), [`${install} busybox-static tini gcc`, `${install} busybox-static gcc`]);
  assert.match(
    r.out,
    /installed busybox-static gcc; apt-get does not know tini; the tests that need them skip\n$/,
  );
});

test("when the install fails for another reason (no archive reachable), it is not retried", () => {
  using box = sandbox();
  const r = box.run({ STUB_MISSING: "busybox-static gcc", STUB_NO_ARCHIVES: "1" });
  assert.equal(r.code, 0, r.out);
  assert.equal(r.apt.length, 2, r.apt.join("\n"));
  assert.match(r.out, /apt-get could not install busybox-static gcc \(offline\? E: Unable to fetch some archives/);
});

test("not root, HAKO_TEST_NO_INSTALL=1, or a dry run: nothing is installed, and it says so", () => {
  using box = sandbox();
  const notRoot = box.run({ STUB_MISSING: "tini", STUB_UID: "1000" });
  assert.equal(
    notRoot.out,
    "tests/setup.sh: not root: cannot install tini (run the suite with sudo); the tests that need them skip\n",
  );
  const optOut = box.run({ STUB_MISSING: "tini", HAKO_TEST_NO_INSTALL: "1" });
  assert.equal(
    optOut.out,
    "tests/setup.sh: HAKO_TEST_NO_INSTALL is set: not installing tini; the tests that need them skip\n",
  );
  const dry = box.run({ STUB_MISSING: "tini python3", HAKO_TEST_DEPS_DRY_RUN: "1" });
  assert.equal(
    dry.out,
    "tests/setup.sh: would run: apt-get update && apt-get install -y --no-install-recommends tini python3\n",
  );
  assert.deepEqual([notRoot.code, optOut.code, dry.code, dry.apt], [0, 0, 0, []]);
});

test("without dpkg-query and apt-get (not Debian or Ubuntu), setup.sh says it installs nothing", () => {
  using box = sandbox();
  const bin = join(box.path, "bin");
  mkdirSync(bin);
  for (const tool of ["bash", "dirname", "mktemp", "find", "rm", "grep"]) {
    const found = spawnSync("bash", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
    if (found) symlinkSync(found, join(bin, tool));
  }
  const r = spawnSync(join(bin, "bash"), [join(box.path, "tests/setup.sh")], { env: { PATH: bin }, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^tests\/setup\.sh: not Debian or Ubuntu \(no dpkg-query\/apt-get\): installing nothing/);
});

test("dist/hako is built when the dist tests run and it is missing or older than a source; else not", () => {
  using box = sandbox();
  mkdirSync(join(box.path, "src"));
  writeFileSync(join(box.path, "src/a.ts"), "export {};\n");
  const dry = { HAKO_TEST_DEPS_DRY_RUN: "1" };
  assert.equal(
    box.run(dry, ["tests/dist_test.ts"]).out,
    "tests/setup.sh: would build dist/hako (missing): bash tools/build.sh\n",
  );
  assert.equal(box.run(dry, []).out, "tests/setup.sh: would build dist/hako (missing): bash tools/build.sh\n", "all");
  assert.equal(box.run(dry, ["tests/cli_test.ts"]).out, "", "not for other tests");
  mkdirSync(join(box.path, "dist"));
  writeFileSync(join(box.path, "dist/hako"), "");
  const old = new Date(Date.now() - 60_000);
  utimesSync(join(box.path, "dist/hako"), old, old);
  assert.equal(
    box.run(dry, ["tests/dist_test.ts"]).out,
    "tests/setup.sh: would build dist/hako (older than its sources): bash tools/build.sh\n",
  );
  const now = new Date();
  utimesSync(join(box.path, "dist/hako"), now, now);
  utimesSync(join(box.path, "src/a.ts"), old, old);
  assert.equal(box.run(dry, ["tests/dist_test.ts"]).out, "", "up to date");
  // Without the dry run it runs tools/build.sh and relays its last line, failing or not.
  mkdirSync(join(box.path, "tools"));
  writeFileSync(join(box.path, "tools/build.sh"), 'echo "build: bun not found" >&2; exit 127\n');
  const r = box.run({}, ["tests/dist_test.ts"]);
  assert.equal(r.code, 0);
  assert.match(
    r.out,
    /building dist\/hako \(older than its sources\).*\n.*tools\/build\.sh failed: build: bun not found/,
  );
});
