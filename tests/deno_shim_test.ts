/**
 * A script written for Deno run by hako under Bun (the `dist/hako` binary, or the CLI under bun):
 * `Deno.args` are its arguments, any other `Deno.X` fails with a message naming the API and what
 * to do, instead of Bun's bare "Deno is not defined"; hako's own runtime checks are not fooled by
 * the shim (the run forks a child and reads a tarball-free rootfs path). No root needed.
 */
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { equal, match, ok } from "node:assert/strict";
import { tempDir, test } from "./_harness.ts";
import { BUN_SINGLE_THREADED_ENV } from "../ffi/fork.ts";
import { denoUnavailable } from "../src/runner/globals.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BUN = join(ROOT, "node_modules/.bin/bun");
const DIST = join(ROOT, "dist/hako");

const SCRIPT = `
console.log(JSON.stringify(Deno.args), "args" in Deno, "readTextFileSync" in Deno);
console.log(typeof Process.fork === "function" ? "hako globals" : "no globals");
const text: string = Deno.readTextFileSync("/etc/hostname");
console.log("unreachable", text);
`;

function runUnderBun(cli: string[], loader: string): { code: number | null; stdout: string; stderr: string } {
  using dir = tempDir("hako-denoshim-");
  const file = join(dir.path, "for-deno.ts");
  writeFileSync(file, SCRIPT);
  const r = spawnSync(cli[0]!, [...cli.slice(1), "run", "--loader", loader, file, "a", "b c"], {
    cwd: dir.path,
    encoding: "utf8",
    timeout: 60_000,
    env: { PATH: "/usr/bin:/bin", HOME: dir.path, NO_COLOR: "1", ...BUN_SINGLE_THREADED_ENV },
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("the message for a Deno API under Bun names it and says what to do", () => {
  equal(
    denoUnavailable("Deno.readTextFile"),
    "Deno.readTextFile is not available under the hako binary (Bun): use node: APIs (node:fs, node:process, node:child_process…) or hako's own, or run the script with bin/hako under Deno",
  );
});

for (const loader of ["native", "data"]) {
  test(
    `under Bun (${loader} loader), a script's Deno.args are its arguments and Deno.readTextFileSync says it is not available`,
    () => {
      const r = runUnderBun([BUN, join(ROOT, "src/cli/main.ts")], loader);
      equal(r.code, 1, r.stderr);
      equal(r.stdout, `["a","b c"] true false\nhako globals\n`);
      match(r.stderr, /Deno\.readTextFileSync is not available under the hako binary \(Bun\): use node: APIs/);
      ok(!/Deno is not defined|Can't find variable/.test(r.stderr), r.stderr);
    },
    { skip: existsSync(BUN) ? false : "needs node_modules/.bin/bun" },
  );
}

test("dist/hako: a script's Deno.readTextFileSync says it is not available, naming the API", () => {
  const r = runUnderBun([DIST], "data");
  equal(r.code, 1, r.stderr);
  equal(r.stdout, `["a","b c"] true false\nhako globals\n`);
  match(r.stderr, /Deno\.readTextFileSync is not available under the hako binary \(Bun\)/);
}, { skip: existsSync(DIST) ? false : "dist/hako is not built (bash tools/build.sh; tests/dist_test.ts builds it)" });

test(
  "under Bun, a script that does not name Deno runs without a Deno global (typeof checks of its imports unchanged)",
  () => {
    using dir = tempDir("hako-denoshim-");
    const file = join(dir.path, "plain.ts");
    writeFileSync(file, `console.log(typeof (globalThis as Record<string, unknown>)["De" + "no"]);\n`);
    const r = spawnSync(BUN, [join(ROOT, "src/cli/main.ts"), "run", file], {
      cwd: dir.path,
      encoding: "utf8",
      timeout: 60_000,
      env: { PATH: "/usr/bin:/bin", HOME: dir.path, NO_COLOR: "1", ...BUN_SINGLE_THREADED_ENV },
    });
    equal(r.status, 0, r.stderr);
    equal(r.stdout, "undefined\n");
  },
  { skip: existsSync(BUN) ? false : "needs node_modules/.bin/bun" },
);
