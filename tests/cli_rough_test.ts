/**
 * The CLI's small rough edges: `hako start spec.ts sleep 30` passes `sleep 30` to the spec as
 * `hako run` does (not as more spec files), and `hako ps` with no containers ends its header with
 * a newline. No root needed.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deepEqual, equal, throws } from "node:assert/strict";
import { tempDir, test } from "./_harness.ts";
import { parseStartArgs, splitStartArgs } from "../src/cli/start.ts";
import { UsageError } from "../src/cli/_args.ts";
import { psTable } from "../src/cli/ps.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

test("start: the operands after the spec file that are not module files are the spec's args, as run's", () => {
  const p = (argv: string[]) => {
    const a = parseStartArgs(argv);
    return { files: a.files, args: a.args };
  };
  deepEqual(p(["spec.ts", "sleep", "30"]), { files: ["spec.ts"], args: ["sleep", "30"] });
  deepEqual(p(["spec.ts", "--", "sleep", "30"]), { files: ["spec.ts"], args: ["sleep", "30"] });
  deepEqual(p(["a.ts", "b.mts", "c.js"]), { files: ["a.ts", "b.mts", "c.js"], args: [] });
  deepEqual(p(["a.ts", "b.ts", "x", "y.ts"]), { files: ["a.ts", "b.ts"], args: ["x", "y.ts"] });
  // the args keep what looks like options, and a later --, as run's do
  deepEqual(p(["spec.ts", "sh", "-c", "echo hi", "--", "x"]), {
    files: ["spec.ts"],
    args: ["sh", "-c", "echo hi", "--", "x"],
  });
  // options before, between and after the files; an option's value is never an operand
  const a = parseStartArgs(["-q", "--each", "PORT=1..2", "web", "--init", "sleep", "1"]);
  deepEqual([a.files, a.args, a.quiet, a.init, a.each?.values], [["web"], ["sleep", "1"], true, true, ["1", "2"]]);
  deepEqual(p(["--name", "x.ts", "spec", "more"]), { files: ["spec"], args: ["more"] });
  deepEqual(splitStartArgs(["web.ts", "--each=PORT=1..2", "run"]), {
    own: ["web.ts", "--each=PORT=1..2"],
    args: ["run"],
  });
  throws(() => parseStartArgs(["--", "sleep"]), UsageError);
  throws(() => parseStartArgs(["spec.ts", "--bogus", "x"]), UsageError);
});

test("ps: the table with no containers is the header and a newline", () => {
  equal(psTable([]), "NAME  STATE  PID  UPTIME  CPU%  MEM  PIDS  IMAGE\n");
});

test("hako ps with no containers prints its header ending in a newline (a state dir missing or empty)", () => {
  using dir = tempDir("hako-rough-");
  for (const state of [join(dir.path, "missing"), dir.path]) {
    const r = spawnSync(join(ROOT, "bin/hako"), ["ps"], {
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin", HOME: dir.path, HAKO_STATE_DIR: state, NO_COLOR: "1" },
      timeout: 60_000,
    });
    equal(r.status, 0, r.stderr);
    equal(r.stdout, "NAME  STATE  PID  UPTIME  CPU%  MEM  PIDS  IMAGE\n");
  }
});
