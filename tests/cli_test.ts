/**
 * The `hako` command, end to end through `bin/hako`, and its pure parts (argument parsers, loader
 * choice, specifier rules, error formatting) as unit tests.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertThrows, needsRoot, tempDir, test } from "./_harness.ts";
import { parseArgs, UsageError } from "../src/cli/_args.ts";
import { COMMANDS, dispatch, globalUsage } from "../src/cli/commands.ts";
import { hakoArgs, needsSingleThreaded } from "../src/cli/main.ts";
import { parseRunArgs } from "../src/cli/run.ts";
import { parseVersionArgs, VERSION, versionText } from "../src/cli/version.ts";
import { parseHelpArgs } from "../src/cli/help.ts";
import { chooseLoader } from "../src/runner/run_script.ts";
import { HAKO_GLOBALS, mentionsHako } from "../src/runner/globals.ts";
import { blankMissingNames, classify, importedNames } from "../src/runner/data_loader.ts";
import { abbreviateDataUrl, decodeMappings, formatError, ModuleTable, originalPosition } from "../src/runner/stack.ts";
import * as hako from "../mod.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HAKO = join(ROOT, "bin/hako");

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `bin/hako` with `args` in `cwd`; `env` adds to (or, with undefined, removes from) the environment. */
function hako_(args: string[], cwd: string, env: Record<string, string | undefined> = {}): Result {
  const full: Record<string, string> = { ...process.env as Record<string, string>, NO_COLOR: "1" };
  delete full.HAKO_LOADER;
  for (const [k, v] of Object.entries(env)) v === undefined ? delete full[k] : full[k] = v;
  const r = spawnSync(HAKO, args, { cwd, env: full, encoding: "utf8", timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function write(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
}

const LOADERS = ["native", "data"] as const;

// ---- argument parsers ------------------------------------------------------------------------

test("parseArgs() stops at the first operand when asked, passing later flags through", () => {
  const spec = { eval: { type: "string", short: "e" }, help: { type: "boolean", short: "h" } } as const;
  assertEquals(parseArgs(["x.ts", "--help", "-e"], spec, true), { values: {}, positionals: ["x.ts", "--help", "-e"] });
  assertEquals(parseArgs(["-h", "x.ts", "y"], spec, false), { values: { help: true }, positionals: ["x.ts", "y"] });
  assertEquals(parseArgs(["--eval=1+1", "--", "-h"], spec, true), { values: { eval: "1+1" }, positionals: ["-h"] });
  assertEquals(parseArgs(["-ecode", "a"], spec, true).values, { eval: "code" });
  assertEquals(parseArgs(["-e", "-x", "a"], spec, true), { values: { eval: "-x" }, positionals: ["a"] });
  assertEquals(parseArgs(["-"], spec, true).positionals, ["-"]);
});

test("parseArgs() rejects unknown options, missing values and values given to flags", () => {
  const spec = { eval: { type: "string", short: "e" }, help: { type: "boolean", short: "h" } } as const;
  assertThrows(() => parseArgs(["--nope"], spec), UsageError, /unknown option --nope/);
  assertThrows(() => parseArgs(["-x"], spec), UsageError, /unknown option -x/);
  assertThrows(() => parseArgs(["-e"], spec), UsageError, /--eval needs a value/);
  assertThrows(() => parseArgs(["--help=yes"], spec), UsageError, /takes no value/);
  assertThrows(() => parseArgs(["-hx"], spec), UsageError, /takes no value/);
});

test("parseRunArgs() takes a script and its arguments, or -e code and its arguments", () => {
  assertEquals(parseRunArgs(["box.ts", "a", "--verbose"]), { help: false, script: "box.ts", args: ["a", "--verbose"] });
  assertEquals(parseRunArgs(["-e", "1", "a"]), { help: false, code: "1", args: ["a"] });
  assertEquals(parseRunArgs(["--loader", "data", "x.ts"]), { help: false, loader: "data", script: "x.ts", args: [] });
  assertEquals(parseRunArgs(["-h"]), { help: true, args: [] });
  assertEquals(parseRunArgs(["x.ts", "-h"]).args, ["-h"]);
  assertThrows(() => parseRunArgs([]), UsageError, /no script/);
  assertThrows(() => parseRunArgs(["--loader", "fast", "x.ts"]), UsageError, /"native" or "data"/);
});

test("parseVersionArgs(), versionText() and parseHelpArgs() accept what their usage says", () => {
  assertEquals(parseVersionArgs([]), { help: false, json: false });
  assertEquals(parseVersionArgs(["--json"]), { help: false, json: true });
  assertThrows(() => parseVersionArgs(["extra"]), UsageError, /unexpected argument/);
  const info = { hako: "1.2.3", runtime: "deno", runtimeVersion: "2.9.6", compiled: false };
  assertEquals(versionText(info, false), "hako 1.2.3 (deno 2.9.6)\n");
  assertEquals(JSON.parse(versionText(info, true)), info);
  assertEquals(versionText({ ...info, compiled: true }, false), "hako 1.2.3 (deno 2.9.6, compiled)\n");
  assertEquals(parseHelpArgs([]), {});
  assertEquals(parseHelpArgs(["run"]), { topic: "run" });
  assertThrows(() => parseHelpArgs(["nope"]), UsageError, /unknown command "nope"/);
});

test("dispatch() maps -h/--help and -V/--version, and rejects unknown commands", () => {
  assertEquals(dispatch(["run", "x.ts", "a"]), { kind: "command", name: "run", argv: ["x.ts", "a"] });
  assertEquals(dispatch(["--help"]), { kind: "command", name: "help", argv: [] });
  assertEquals(dispatch(["-V"]), { kind: "command", name: "version", argv: [] });
  assertEquals(dispatch([]), { kind: "error", message: "no command given" });
  assertEquals(dispatch(["frobnicate"]), { kind: "error", message: 'unknown command "frobnicate"' });
  assertEquals(dispatch(["toString"]).kind, "error");
  assertEquals(dispatch(["--nope"]), { kind: "error", message: "unknown option --nope" });
});

test("needsSingleThreaded() is false for the commands that fork no JavaScript or decide later (run, exec, start, hako oci create/run/exec)", () => {
  for (
    const argv of [
      ["version"],
      ["ps"],
      ["oci", "state", "x"],
      ["oci", "--root", "/r", "--log", "/l", "--log-format", "json", "start", "x"],
      ["oci", "kill", "--all", "x", "KILL"],
      ["oci", "delete", "-f", "x"],
      ["oci", "--version"],
      ["oci", "features"],
      ["oci", "--no-such-option", "create", "x"],
      // (create and run decide once they have read the bundle: see needsJsChild in src/oci/runtime.ts)
      ["oci", "create", "--bundle", "/b", "x"],
      ["oci", "--root", "/r", "run", "-d", "x"],
      // (run decides once it has read the script or made the spec: see runForeground)
      ["run", "x.ts"],
      ["run", "--rootfs", "r", "--", "true"],
      // (exec decides once it knows the container: see execByName)
      ["exec", "c", "sh"],
      // (the supervisor forks; a script that uses hako re-executes when it is loaded)
      ["start", "x.ts"],
      // (oci exec decides once it has the container's spec, as create)
      ["oci", "exec", "x", "state"],
    ]
  ) assertEquals(needsSingleThreaded(argv), false, argv.join(" "));
  for (
    const argv of [
      ["eval", "1"],
      ["shell", "c"],
      ["supervisor"],
    ]
  ) assertEquals(needsSingleThreaded(argv), true, argv.join(" "));
});

test("hakoArgs(): started as hako-runc (dist/hako's link), hako runs `hako oci` with runc's command line", () => {
  assertEquals(hakoArgs("/usr/local/bin/hako-runc", ["state", "x"]), ["oci", "state", "x"]);
  assertEquals(hakoArgs("hako-runc", ["--version"]), ["oci", "--version"]);
  assertEquals(hakoArgs("/work/dist/hako", ["state", "x"]), ["state", "x"]);
  assertEquals(hakoArgs("/usr/bin/hako-runc.old", ["x"]), ["x"]);
  assertEquals(hakoArgs("/usr/bin/deno", ["run", "x.ts"]), ["run", "x.ts"]);
});

test("every command in the table loads on demand and has usage text that `hako help` lists", async () => {
  for (const [name, entry] of Object.entries(COMMANDS)) {
    const mod = await entry.load();
    assert(mod.usage.startsWith(`Usage: hako ${name}`), `${name}'s usage`);
    assert(globalUsage().includes(`  ${name} `), `hako help lists ${name}`);
  }
});

test("VERSION is deno.json's and package.json's version", () => {
  for (const file of ["deno.json", "package.json"]) {
    assertEquals(JSON.parse(readFileSync(join(ROOT, file), "utf8")).version, VERSION, file);
  }
});

// ---- the runner's pure parts -----------------------------------------------------------------

test("chooseLoader() prefers the command line, then HAKO_LOADER, then native where it can work", () => {
  assertEquals(chooseLoader(undefined, undefined, true), "native");
  assertEquals(chooseLoader(undefined, "", false), "data");
  assertEquals(chooseLoader(undefined, "data", true), "data");
  assertEquals(chooseLoader("native", "data", false), "native");
  assertEquals(chooseLoader(undefined, "auto", true), "native");
  assertThrows(() => chooseLoader(undefined, "turbo", true), RangeError, /Unknown loader "turbo"/);
});

test("mentionsHako() is true for a script naming a global, importing, or reaching the global object", () => {
  for (
    const src of [
      "Process.fork(() => {})",
      "const x = system('id')",
      'import "./a.ts"',
      "globalThis.Cgroup",
      "x = 1; Mount",
    ]
  ) {
    assert(mentionsHako(src), src);
  }
  for (const src of ["", "console.log(1 + 1)", "const myProcess = 1; foo.Process = 2;", "Deno.args.length"]) {
    assert(!mentionsHako(src), src);
  }
});

test("globals.d.ts and HAKO_GLOBALS name every value mod.ts exports", () => {
  const dts = readFileSync(join(ROOT, "globals.d.ts"), "utf8");
  for (const name of Object.keys(hako)) {
    assert(HAKO_GLOBALS.includes(name), `add "${name}" to HAKO_GLOBALS in src/runner/globals.ts`);
    assert(
      new RegExp(`^declare const ${name}: typeof import\\("\\./mod\\.ts"\\)\\.${name};$`, "m").test(dts),
      `declare ${name} in globals.d.ts`,
    );
  }
  for (const name of HAKO_GLOBALS) assert(name in hako, `HAKO_GLOBALS names "${name}", which mod.ts does not export`);
});

test("globals.d.ts gives a script that uses the globals its types (deno check passes, and catches misuse)", () => {
  using dir = tempDir();
  const ref = `/// <reference path="${join(ROOT, "globals.d.ts")}" />\n`;
  write(dir.path, {
    "good.ts": ref + `const opts: ForkOptions = { namespaces: ["uts"] };
const pid: number = Process.fork(opts, () => Process.exec("true"));
const status: ProcessStatus = Process.waitpid2(pid).status;
try {
  Process.waitpid(1);
} catch (e) {
  if (e instanceof SyscallError) console.log(e.code, status.success, ARGV.length + args.length);
}
`,
    "bad.ts": ref + "const n: number = Process.fork;\n",
  });
  const check = (file: string) =>
    spawnSync(join(ROOT, "node_modules/.bin/deno"), ["check", "--config", join(ROOT, "deno.json"), file], {
      cwd: dir.path,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" },
    });
  const good = check("good.ts");
  assertEquals(good.status, 0, good.stderr);
  const bad = check("bad.ts");
  assert(bad.status !== 0 && bad.stderr.includes("TS2322"), bad.stderr);
});

test("classify() sends local files to the loader, hako's names to the running hako, the rest to the runtime", () => {
  const ref = "file:///srv/ops/box.ts";
  const mod = "file:///opt/hako/mod.ts";
  assertEquals(classify("./lib/a.ts", ref, mod), { kind: "file", url: "file:///srv/ops/lib/a.ts" });
  assertEquals(classify("../x.json", ref, mod), { kind: "file", url: "file:///srv/x.json" });
  assertEquals(classify("/opt/hako/mod.ts", ref, mod), { kind: "hako" });
  assertEquals(classify("hako", ref, mod), { kind: "hako" });
  assertEquals(classify("https://example.com/hako@1.0/mod.ts", ref, mod), { kind: "hako" });
  assertEquals(classify("https://example.com/other/mod.ts", ref, mod), { kind: "external" });
  assertEquals(classify("node:fs", ref, mod), { kind: "external" });
  assertEquals(classify("npm:amaro@1.2.1", ref, mod), { kind: "external" });
  assertEquals(classify("lodash", ref, mod), { kind: "external" });
});

test("importedNames() lists the names an import or re-export takes", () => {
  assertEquals(importedNames('import { a, b as c, "d e" as f } from "./x.ts"'), ["a", "b", "d e"]);
  assertEquals(importedNames('import def, { a } from "./x.ts"'), ["default", "a"]);
  assertEquals(importedNames("import def from './x.ts'"), ["default"]);
  assertEquals(importedNames('import * as ns from "./x.ts"'), undefined);
  assertEquals(importedNames('import def, * as ns from "./x.ts"'), ["default"]);
  assertEquals(importedNames('import "./x.ts"'), undefined);
  assertEquals(importedNames('export { a, b as c } from "./x.ts"'), ["a", "b"]);
  assertEquals(importedNames('export * from "./x.ts"'), undefined);
});

test("blankMissingNames() blanks type-only names out of an import, keeping every position", () => {
  const values = new Set(["Process", "Namespace"]);
  const a = 'import { ForkOptions, Process as P } from "hako"';
  assertEquals(blankMissingNames(a, values), {
    text: 'import {              Process as P } from "hako"',
    removed: ["ForkOptions"],
  });
  const b = 'import {\n  Process,\n  ForkOptions,\n} from "hako"';
  assertEquals(blankMissingNames(b, values)?.text, 'import {\n  Process,\n              \n} from "hako"');
  assertEquals(blankMissingNames('export { Process, T } from "hako"', values)?.removed, ["T"]);
  assertEquals(blankMissingNames('import { Process } from "hako"', values), undefined);
  assertEquals(blankMissingNames('import d, { X } from "./a.ts"', values), null);
});

test("decodeMappings() and originalPosition() read a source map's positions", () => {
  // Line 1 → source line 3; line 2: column 0 → line 4 column 0, column 4 → line 4 column 2.
  const lines = decodeMappings(JSON.stringify({ version: 3, mappings: "AAEA;AACA,IAAE" }));
  assertEquals(lines, [[[0, 2, 0]], [[0, 3, 0], [4, 3, 2]]]);
  assertEquals(originalPosition(lines, 1, 7), { line: 3, column: 7 });
  assertEquals(originalPosition(lines, 2, 5), { line: 4, column: 3 });
  assertEquals(originalPosition(lines, 3, 1), undefined);
});

test("a long data: URL in a stack trace is mapped back to its file, whole or as Deno abbreviates it", async () => {
  const code = `${"// padding\n".repeat(20)}export function f() {\n  throw new Error("in data");\n}\n`;
  const url = `data:text/javascript;base64,${btoa(code)}`;
  const short = abbreviateDataUrl(url)!;
  assert(short.includes("......") && short.length < url.length, short);
  const table = new ModuleTable("/srv/ops");
  table.add({ url, fileUrl: "file:///srv/ops/lib/f.ts", display: "lib/f.ts", main: false });
  const { f } = await import(url);
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  const text = formatError(error, table);
  // Deno and Bun both say line 22; they count the column differently (9 and 13).
  assert(/^error: in data\n {4}at f \(lib\/f\.ts:22:(?:9|13)\)\n/.test(text), text);
  assertEquals(table.mapText(`at ${url}:1:2 and ${short}:3:4`), "at lib/f.ts:1:2 and lib/f.ts:3:4");
});

test("formatError() names the error type, hides hako's own frames, maps file URLs and follows causes", () => {
  const table = new ModuleTable("/srv/ops");
  const e = new TypeError("bad thing", { cause: "root cause" });
  e.stack = [
    "TypeError: bad thing",
    "    at check (file:///opt/hako/src/process.ts:10:5)",
    "    at ext:core/01_core.js:1:1",
    "    at main (file:///srv/ops/box.ts:12:5)",
    "    at file:///srv/other/x.ts:1:1",
  ].join("\n");
  const text = formatError(e, table, { internal: ["file:///opt/hako/src/"] });
  assertEquals(
    text,
    "error: TypeError: bad thing\n    at main (box.ts:12:5)\n    at /srv/other/x.ts:1:1\ncaused by: root cause\n",
  );
  assertEquals(formatError("plain", table), "error: plain\n");
});

// ---- end to end through bin/hako ---------------------------------------------------------------

test("hako version prints the version and the runtime's; --json prints them as JSON", () => {
  using dir = tempDir();
  const r = hako_(["version"], dir.path);
  assertEquals(r.code, 0, r.stderr);
  assert(
    new RegExp(`^hako ${VERSION.replaceAll(".", "\\.")} \\(deno \\d+\\.\\d+\\.\\d+\\)\n$`).test(r.stdout),
    r.stdout,
  );
  const j = hako_(["--version", "--json"], dir.path);
  assertEquals(JSON.parse(j.stdout).hako, VERSION);
});

test("an unknown command exits 2 with the usage on stderr; a bad run command line exits 2 too", () => {
  using dir = tempDir();
  const r = hako_(["frobnicate"], dir.path);
  assertEquals(r.code, 2);
  assertEquals(r.stdout, "");
  assert(
    r.stderr.startsWith('hako: unknown command "frobnicate"') && r.stderr.includes("Usage: hako <command>"),
    r.stderr,
  );
  const none = hako_(["run"], dir.path);
  assertEquals(none.code, 2);
  assert(none.stderr.includes("hako run: no script given") && none.stderr.includes("Usage: hako run"), none.stderr);
  const help = hako_(["help", "run"], dir.path);
  assertEquals(help.code, 0);
  assert(help.stdout.startsWith("Usage: hako run"), help.stdout);
});

test("hako run gives a script the globals and its arguments; a child forked into a PID namespace is pid 1", () => {
  using dir = tempDir();
  write(dir.path, {
    "pid1.ts": `const pid = Process.fork({ namespaces: ["pid"] }, () => {
  Process._exit(Process.getpid() === 1 ? 0 : 3);
});
const { status } = Process.waitpid2(pid);
console.log(JSON.stringify({ code: status.code, ARGV, args, deno: Deno.args, argv: process.argv.slice(1) }));
`,
  });
  for (const loader of LOADERS) {
    const r = hako_(["run", "pid1.ts", "one", "--two"], dir.path, {
      HAKO_LOADER: loader,
      HAKO_CACHE_DIR: join(dir.path, "cache"),
    });
    assertEquals(r.code, 0, `${loader}: ${r.stderr}`);
    const args = ["one", "--two"];
    assertEquals(JSON.parse(r.stdout), {
      code: 0,
      ARGV: args,
      args,
      deno: args,
      argv: [join(dir.path, "pid1.ts"), ...args],
    }, loader);
  }
}, { skip: needsRoot });

test("a script that throws exits 1 with `error: <message>` and the script's file:line:column", () => {
  using dir = tempDir();
  write(dir.path, {
    "boom.ts": `interface Box { size: number }
const box: Box = { size: 3 };

function explode(b: Box): never {
  throw new Error(\`boom \${b.size}\`);
}
explode(box);
`,
  });
  for (const loader of LOADERS) {
    const r = hako_(["run", "boom.ts"], dir.path, { HAKO_LOADER: loader, HAKO_CACHE_DIR: join(dir.path, "cache") });
    assertEquals(r.code, 1, loader);
    assertEquals(r.stderr, "error: boom 3\n    at explode (boom.ts:5:9)\n    at boom.ts:7:1\n", loader);
  }
});

test("errors after the top level (a timer, a rejected promise) also exit 1 with the script's position", () => {
  using dir = tempDir();
  write(dir.path, {
    "late.ts": "setTimeout(() => {\n  throw new RangeError('late');\n}, 1);\n",
    "reject.ts": "async function f(): Promise<void> {\n  await 0;\n  throw new Error('rejected');\n}\nf();\n",
    "exits.ts": "console.log('before');\nDeno.exit(7);\n",
  });
  for (const loader of LOADERS) {
    const env = { HAKO_LOADER: loader, HAKO_CACHE_DIR: join(dir.path, "cache") };
    const late = hako_(["run", "late.ts"], dir.path, env);
    assertEquals([late.code, late.stderr.split("\n")[0]], [1, "error: RangeError: late"], loader);
    assert(late.stderr.includes("late.ts:2:9"), late.stderr);
    const rejected = hako_(["run", "reject.ts"], dir.path, env);
    assertEquals([rejected.code, rejected.stderr], [1, "error: rejected\n    at f (reject.ts:3:9)\n"], loader);
    const exits = hako_(["run", "exits.ts"], dir.path, env);
    assertEquals([exits.code, exits.stdout], [7, "before\n"], loader);
  }
});

test("a missing script or a syntax error is reported with its path, exit 1", () => {
  using dir = tempDir();
  write(dir.path, { "bad.ts": "const a = 1;\nlet b: number = ;\n" });
  for (const loader of LOADERS) {
    const env = { HAKO_LOADER: loader, HAKO_CACHE_DIR: join(dir.path, "cache") };
    const missing = hako_(["run", "nope.ts"], dir.path, env);
    assertEquals([missing.code, missing.stderr], [1, "error: Script not found: nope.ts\n"], loader);
    const bad = hako_(["run", "bad.ts"], dir.path, env);
    assertEquals(bad.code, 1, loader);
    assert(/^error: .*Expression expected/.test(bad.stderr) && bad.stderr.includes("bad.ts:2:17"), bad.stderr);
  }
});

test("hako run -e runs code with the globals and arguments; its errors name [eval]", () => {
  using dir = tempDir();
  for (const loader of LOADERS) {
    const env = { HAKO_LOADER: loader, HAKO_CACHE_DIR: join(dir.path, "cache") };
    const r = hako_(
      ["run", "-e", "const n: number = ARGV.length; console.log(typeof Process.fork, n, ARGV[1])", "a", "b"],
      dir.path,
      env,
    );
    assertEquals([r.code, r.stdout], [0, "function 2 b\n"], `${loader}: ${r.stderr}`);
    const e = hako_(["run", "-e", "\n  throw new Error('from eval')"], dir.path, env);
    assertEquals([e.code, e.stderr], [1, "error: from eval\n    at [eval]:2:9\n"], loader);
  }
});

test("hako run -e forks into a new UTS namespace, and the host's hostname stays", () => {
  using dir = tempDir();
  const before = readFileSync("/proc/sys/kernel/hostname", "utf8");
  const code =
    `const pid = Process.fork({ namespaces: ["uts"] }, () => Process.exec("/bin/sh", "-c", "hostname inner && hostname"));
Process.waitpid2(pid);`;
  const r = hako_(["run", "-e", code], dir.path);
  assertEquals([r.code, r.stdout], [0, "inner\n"], r.stderr);
  assertEquals(readFileSync("/proc/sys/kernel/hostname", "utf8"), before);
}, {
  skip: needsRoot || (existsSync("/bin/hostname") || existsSync("/usr/bin/hostname") ? false : "no hostname command"),
});

test("the data loader runs a script with local imports: types, enums, JSON, import.meta, and hako by name", () => {
  using dir = tempDir();
  mkdirSync(join(dir.path, "lib"));
  write(dir.path, {
    "main.ts": `import { type Limits, Size, where } from "./lib/limits.ts";
import { Settings } from "./lib/settings.ts";
import { ForkOptions, Process as P } from "hako";
import config from "./lib/config.json" with { type: "json" };
const limits: Limits = { size: Size.Large };
const opts: ForkOptions = {};
const s: Settings = { name: config.name };
console.log(JSON.stringify({
  size: limits.size, name: s.name, same: P === Process, opts,
  main: import.meta.main, file: import.meta.filename, where, args: ARGV,
}));
`,
    "lib/limits.ts": `export interface Limits { size: Size }
export enum Size { Small = 1, Large = 9 }
export const where: string = import.meta.url;
`,
    "lib/settings.ts": "export interface Settings { name: string }\nexport const unused = 0;\n",
    "lib/config.json": '{ "name": "box" }\n',
  });
  const cache = join(dir.path, "cache");
  for (const round of ["cold", "warm"]) {
    const r = hako_(["run", "--loader", "data", "main.ts", "x"], dir.path, { HAKO_CACHE_DIR: cache });
    assertEquals(r.code, 0, `${round}: ${r.stderr}`);
    assertEquals(JSON.parse(r.stdout), {
      size: 9,
      name: "box",
      same: true,
      opts: {},
      main: true,
      file: join(dir.path, "main.ts"),
      where: `file://${join(dir.path, "lib/limits.ts")}`,
      args: ["x"],
    }, round);
  }
  assert(readdirSync(join(cache, "loader")).length > 0, "the transpiled modules are cached");
});

test("the data loader reports an error in an imported module at that module's line", () => {
  using dir = tempDir();
  write(dir.path, {
    "main.ts": 'import { check } from "./helper.ts";\ncheck(-1);\n',
    "helper.ts": "export function check(n: number): void {\n  if (n < 0) throw new RangeError(`negative: ${n}`);\n}\n",
    "cycle_a.ts": 'import "./cycle_b.ts";\n',
    "cycle_b.ts": 'import "./cycle_a.ts";\n',
  });
  const env = { HAKO_CACHE_DIR: join(dir.path, "cache") };
  const r = hako_(["run", "--loader", "data", "main.ts"], dir.path, env);
  assertEquals([r.code, r.stderr], [
    1,
    "error: RangeError: negative: -1\n    at check (helper.ts:2:20)\n    at main.ts:2:1\n",
  ]);
  const c = hako_(["run", "--loader", "data", "cycle_a.ts"], dir.path, env);
  assertEquals(c.code, 1);
  assert(c.stderr.includes("import cycle cycle_a.ts → cycle_b.ts → cycle_a.ts"), c.stderr);
});
