/**
 * hako's command lines: the table-driven parser (repeatable options, grouped flags, `--`, no
 * prototype-key surprises), every command's `parse…Args` under a seeded argv fuzz (a UsageError or
 * a clean parse, never another exception), the nesting check that keeps a pathological script from
 * aborting the runtime's parser, and the CLI end to end: bad command lines exit 2 and bad specs
 * exit 1, never with a stack trace or an abort. No root needed.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { deepEqual } from "node:assert/strict";
import { assert, assertEquals, assertThrows, tempDir, test } from "./_harness.ts";
import { SetupError } from "../src/errors.ts";
import { programExitCode } from "../src/cli/_exit_codes.ts";
import { parseArgs, UsageError } from "../src/cli/_args.ts";
import { parseAttachArgs } from "../src/cli/attach.ts";
import { parseShellArgs } from "../src/cli/shell.ts";
import { parseNewArgs } from "../src/cli/new.ts";
import { parseArchiveArgs } from "../src/cli/archive.ts";
import { parseImportArgs, parseListArgs, parseLoadArgs, parseRemoveArgs } from "../src/cli/image.ts";
import { parseCompletionArgs } from "../src/cli/completion.ts";
import { parseDeleteArgs } from "../src/cli/delete.ts";
import { parseDemoArgs } from "../src/cli/demo.ts";
import { parseEvalArgs } from "../src/cli/eval.ts";
import { parseInspectArgs } from "../src/cli/inspect.ts";
import { parseRmArgs } from "../src/cli/rm.ts";
import { parseWaitArgs } from "../src/cli/wait.ts";
import { parsePortArgs } from "../src/cli/port.ts";
import { parseUpdateArgs } from "../src/cli/update.ts";
import {
  dockerRootPropagation,
  parseDeviceFlag,
  parseEnvFile,
  parseMountFlag,
  parseVolume,
  resolveEnv,
} from "../src/cli/_docker.ts";
import { parseExecArgs } from "../src/cli/exec.ts";
import { parseGcArgs } from "../src/cli/gc.ts";
import { parseHelpArgs } from "../src/cli/help.ts";
import { parseKillArgs } from "../src/cli/kill.ts";
import { parseLogsArgs } from "../src/cli/logs.ts";
import { parsePlanArgs } from "../src/cli/plan.ts";
import { parsePsArgs } from "../src/cli/ps.ts";
import { parseRunArgs, quickSpec, withImageDefaults } from "../src/cli/run.ts";
import { parseStartArgs } from "../src/cli/start.ts";
import { parseStopArgs } from "../src/cli/stop.ts";
import { parseSupervisorArgs } from "../src/cli/supervisor.ts";
import { parseVersionArgs } from "../src/cli/version.ts";
import { COMMANDS, dispatch, suggestCommand } from "../src/cli/commands.ts";
import { selectContainers } from "../src/cli/ps.ts";
import { bytesOf } from "../src/cli/inspect.ts";
import type { ContainerInfo } from "../src/container/lifecycle.ts";
import { parseOciCliArgs } from "../src/cli/oci.ts";
import { parseStatsArgs } from "../src/cli/stats.ts";
import { parseTopArgs } from "../src/cli/top.ts";
import { parseRestartArgs } from "../src/cli/restart.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";
import { MAX_NESTING, tooDeep } from "../src/runner/_nesting.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Every command's parser, by the command's name. */
const PARSERS: Readonly<Record<string, (argv: readonly string[]) => unknown>> = {
  run: parseRunArgs,
  eval: parseEvalArgs,
  start: parseStartArgs,
  ps: parsePsArgs,
  logs: parseLogsArgs,
  exec: parseExecArgs,
  attach: parseAttachArgs,
  kill: parseKillArgs,
  stop: parseStopArgs,
  delete: parseDeleteArgs,
  rm: parseRmArgs,
  inspect: parseInspectArgs,
  wait: parseWaitArgs,
  port: parsePortArgs,
  update: parseUpdateArgs,
  gc: parseGcArgs,
  demo: parseDemoArgs,
  plan: parsePlanArgs,
  supervisor: parseSupervisorArgs,
  version: parseVersionArgs,
  help: parseHelpArgs,
  oci: parseOciCliArgs,
  stats: parseStatsArgs,
  top: parseTopArgs,
  restart: parseRestartArgs,
  shell: parseShellArgs,
  new: parseNewArgs,
  archive: parseArchiveArgs,
  // (hako image's subcommands: import's parser stands for the group; each is also a command of its own)
  image: parseImportArgs,
  images: parseListArgs,
  load: parseLoadArgs,
  rmi: parseRemoveArgs,
  completion: parseCompletionArgs,
};

const TABLE = {
  tty: { type: "boolean", short: "t" },
  interactive: { type: "boolean", short: "i" },
  user: { type: "string", short: "u" },
  env: { type: "string", short: "e", multiple: true },
  name: { type: "string" },
} as const;

test("parseArgs() keeps every value of a repeatable option, in order", () => {
  const { values } = parseArgs(["-e", "A=1", "--env", "B=2", "-eC=3", "--env=D=4"], TABLE);
  assertEquals(values.env, ["A=1", "B=2", "C=3", "D=4"]);
  assertEquals(parseArgs([], TABLE).values.env, undefined);
});

test("parseArgs() takes grouped one-letter options, the last of a group maybe with its value", () => {
  const values = (argv: string[]) => ({ ...parseArgs(argv, TABLE, true).values });
  deepEqual(values(["-it"]), { tty: true, interactive: true });
  deepEqual(values(["-itu", "0:5"]), { tty: true, interactive: true, user: "0:5" });
  deepEqual(values(["-tu0"]), { tty: true, user: "0" });
  deepEqual(values(["-tiet=x", "web"]), { tty: true, interactive: true, env: ["t=x"] });
  assertThrows(() => parseArgs(["-itx"], TABLE), UsageError, /unknown option -x \(in -itx\)/);
  assertThrows(() => parseArgs(["-itu"], TABLE), UsageError, /--user needs a value/);
});

test("parseArgs() ends options at --, and a lone - is an operand", () => {
  assertEquals(parseArgs(["-t", "--", "-i", "--name"], TABLE), {
    values: { tty: true },
    positionals: ["-i", "--name"],
  });
  assertEquals(parseArgs(["web", "--", "sh"], TABLE, true).positionals, ["web", "--", "sh"]);
  assertEquals(parseArgs(["-", "-t"], TABLE).positionals, ["-"]);
  assertEquals(parseArgs(["--name", "--", "x"], TABLE).values, { name: "--" });
});

test("parseArgs(): --toString, --__proto__, --constructor are unknown options; values has no prototype", () => {
  for (const name of ["toString", "__proto__", "constructor", "hasOwnProperty", "valueOf", "__defineGetter__"]) {
    assertThrows(() => parseArgs([`--${name}`, "x"], TABLE), UsageError, /unknown option/);
    assertThrows(() => parseArgs([`--${name}=x`], TABLE), UsageError, /unknown option/);
  }
  const { values } = parseArgs(["-t"], TABLE);
  assertEquals(Object.getPrototypeOf(values), null);
  assertEquals("toString" in values, false);
});

test("parseArgs(): a single-value option given twice is an error, a flag given twice is not", () => {
  assertThrows(() => parseArgs(["--name", "a", "--name", "b"], TABLE), UsageError, /--name is given twice/);
  assertThrows(() => parseArgs(["-u", "1", "-u2"], TABLE), UsageError, /--user is given twice/);
  assertEquals(parseArgs(["-t", "-t"], TABLE).values, { tty: true });
});

test("hako exec keeps every -e; an empty name or command after -- is a usage error", () => {
  const a = parseExecArgs(["-e", "A=1", "-e", "B=2", "--env=A=3", "web", "--", "env"]);
  assertEquals(a.env, { A: "3", B: "2" });
  assertEquals(a.argv, ["env"]);
  assertEquals(parseExecArgs(["-it", "-u", "1000:100", "web", "sh"]), {
    help: false,
    name: "web",
    argv: ["sh"],
    user: { uid: 1000, gid: 100 },
    tty: true,
    interactive: true,
  });
  assertEquals(parseExecArgs(["-e", "__proto__=x", "web", "env"]).env?.["__proto__"], "x");
  assertThrows(() => parseExecArgs(["web", "--", ""]), UsageError, /command \(its program\) must not be empty/);
  assertThrows(() => parseExecArgs(["--", ""]), UsageError, /container name must not be empty/);
  assertThrows(() => parseExecArgs(["web", "--"]), UsageError, /a command is required/);
  assertThrows(() => parseExecArgs(["-e", "1A=x", "web", "sh"]), UsageError, /NAME=VALUE/);
  assertThrows(() => parseExecArgs(["-u", "4294967295", "web", "sh"]), UsageError, /0\.\.4294967294/);
  assertThrows(() => parseExecArgs(["-w", "tmp", "web", "sh"]), UsageError, /absolute path/);
});

test("every command's parser refuses prototype-named options and empty names with a UsageError", () => {
  for (const [command, parse] of Object.entries(PARSERS)) {
    for (const name of ["toString", "__proto__", "constructor"]) {
      const e = assertThrows(() => parse([`--${name}`, "x"]), UsageError, /unknown option/);
      assert(e.message.includes(`--${name}`), `hako ${command}: ${e.message}`);
    }
  }
  assertThrows(() => parseRunArgs(["--rootfs", "/srv/r", "--", ""]), UsageError, /must not be empty/);
  assertThrows(() => parseRunArgs(["--rootfs", "", "sh"]), UsageError, /--rootfs must not be empty/);
  assertThrows(() => parseRunArgs([""]), UsageError, /script's path must not be empty/);
  assertThrows(() => parseKillArgs(["web", "BOGUS"]), UsageError, /unknown signal "BOGUS"/);
  assertEquals(parseKillArgs(["web", "term"]).signal, "TERM");
  assertThrows(() => parseStopArgs(["-t", "99999999999", "web"]), UsageError, /at most 2147483/);
  assertThrows(() => parseLogsArgs(["-n", "99999999999999999999", "web"]), UsageError, /number of lines/);
  assertThrows(() => parseDeleteArgs([""]), UsageError, /must not be empty/);
  assertEquals(parsePlanArgs(["--json", "spec.ts", "--json", "a"]), {
    help: false,
    json: true,
    file: "spec.ts",
    args: ["--json", "a"],
  });
  assertEquals(Object.keys(PARSERS).sort(), Object.keys(COMMANDS).sort(), "a parser for every command");
});

test("the quick container's spec: a relative path under the cwd, an image's directory one safe name", () => {
  const spec = (q: Parameters<typeof quickSpec>[0]) => quickSpec(q, "/home/me/", "/var/lib/hako");
  assertEquals(spec({ rootfs: "r", name: "q", command: ["sh"] }).rootfs, "/home/me/r");
  for (const image of ["...tar", "..tar.gz", ".tgz", "dir/", "a b$(x).tar"]) {
    const r = spec({ image, name: "q", command: ["sh"] }).rootfs as { path: string };
    const base = r.path.slice("/var/lib/hako/images/".length);
    assert(/^[A-Za-z0-9_.-]+$/.test(base) && !/^\.*$/.test(base), `${image} → ${r.path}`);
  }
  assertEquals(spec({ rootfs: "", name: "q", command: ["sh"] }).rootfs, "", "an empty path stays empty: never the cwd");
});

test("hako run's docker flags make a quick container's spec; -e is a variable there, the code elsewhere", () => {
  const a = parseRunArgs([
    "-d",
    "--rm",
    "-e",
    "A=1",
    "-eB=2",
    "--env=HOME_DIR",
    "--env-file",
    "vars",
    "-v",
    "./site:/srv:ro",
    "--mount",
    "type=tmpfs,target=/tmp,tmpfs-size=64m",
    "-w",
    "/srv",
    "-u",
    "1000:100",
    "-m",
    "512m",
    "--cpus",
    "1.5",
    "--pids-limit",
    "64",
    "--hostname",
    "box",
    "--domainname",
    "example.org",
    "--read-only",
    "--cap-add",
    "NET_ADMIN",
    "--cap-drop=ALL",
    "--network",
    "host",
    "-l",
    "team=ops",
    "--name",
    "web",
    "--rootfs",
    "r",
    "--",
    "httpd",
    "-f",
  ]);
  assertEquals(a.quick?.detach, true);
  assertEquals(a.quick?.rm, true);
  assertEquals(a.quick?.command, ["httpd", "-f"]);
  const spec = quickSpec(a.quick!, "/home/me", "/var/lib/hako", {
    euid: 0,
    cgroupNs: true,
    env: (n) => (n === "HOME_DIR" ? "/home/me" : undefined),
    envFileLines: parseEnvFile("# a comment\n\nA=0\nC=3\n", "vars"),
  });
  deepEqual(spec.env, { A: "1", C: "3", B: "2", HOME_DIR: "/home/me" }, "the file first, then each -e");
  deepEqual(spec.mounts, [
    { type: "bind", source: "/home/me/site", target: "/srv", readonly: true },
    { type: "tmpfs", target: "/tmp", options: ["nosuid", "nodev", "size=64m"] },
  ]);
  deepEqual(
    [spec.workdir, spec.user, spec.hostname, spec.domainname, spec.readonlyRootfs, spec.networkEtc],
    ["/srv", { uid: 1000, gid: 100 }, "box", "example.org", true, "host"],
  );
  deepEqual(spec.cgroup, {
    memory: { limit: "512m" },
    cpu: { quotaUs: 150_000, periodUs: 100_000 },
    pids: { max: 64 },
  });
  deepEqual(spec.capabilities, { add: ["NET_ADMIN"], drop: ["ALL"] });
  deepEqual(spec.namespaces, ["mount", "uts", "ipc", "pid", "cgroup"], "--network host: no net namespace");
  deepEqual(a.quick?.docker?.labels, { team: "ops" });
  resolveSpec(spec); // a valid spec, as the validator sees it
  // Without --rootfs/--image, -e is still the code to run; --env and the container flags are refused.
  assertEquals(parseRunArgs(["-e", "console.log(1)", "x"]).code, "console.log(1)");
  assertEquals(parseRunArgs(["--eval", "1"]).code, "1");
  assertThrows(() => parseRunArgs(["-e", "A=1", "-e", "B=2"]), UsageError, /-e is given twice/);
  assertThrows(() => parseRunArgs(["-e", "A=1", "x.ts"]), UsageError, /reads as a variable .* hako eval/);
  assertEquals(parseRunArgs(["-e", "A = 1; console.log(A)"]).code, "A = 1; console.log(A)");
  assertThrows(() => parseRunArgs(["--env", "A=1"]), UsageError, /--env goes with --rootfs or --image/);
  assertThrows(() => parseRunArgs(["-d", "x.ts"]), UsageError, /--detach goes with --rootfs or --image/);
  assertThrows(() => parseRunArgs(["--eval", "1", "--rootfs", "r", "sh"]), UsageError, /pick one/);
  assertEquals(parseEvalArgs(["--loader", "data", "code", "a"]), {
    help: false,
    code: "code",
    args: ["a"],
    loader: "data",
  });
  assertThrows(() => parseEvalArgs([]), UsageError, /code to run is required/);
  // Each flag's form, with the flag named.
  const quick = (...flags: string[]) => parseRunArgs([...flags, "--rootfs", "r", "sh"]);
  assertThrows(() => quick("-e", "1A=x"), UsageError, /--env wants NAME=VALUE/);
  assertThrows(() => quick("-v", "data:/x"), UsageError, /named volume/);
  assertThrows(() => quick("-v", "/a:/b:z"), UsageError, /option "z"/);
  assertThrows(() => quick("-v", "/a"), UsageError, /-v wants SRC:DST/);
  assertThrows(() => quick("-u", "www"), UsageError, /--user wants UID\[:GID\]/);
  assertThrows(() => quick("-m", "lots"), UsageError, /--memory wants a size/);
  assertThrows(() => quick("--cpus", "0"), UsageError, /--cpus wants/);
  assertThrows(() => quick("--pids-limit", "x"), UsageError, /--pids-limit wants/);
  assertThrows(() => quick("--network", "bridge"), UsageError, /none .* or host/);
  // -d -it: a terminal and stdin the supervisor holds for 'hako attach' (issue #17; was refused).
  deepEqual([quick("-d", "-it").tty, quick("-d", "-it").interactive, quick("-d", "-it").quick?.detach], [
    true,
    true,
    true,
  ]);
  assertThrows(() => quick("--label", "=x"), UsageError, /--label wants KEY=VALUE/);
  assertEquals(quick("--pids-limit", "-1").quick?.docker?.pidsLimit, "max");
  deepEqual(resolveEnv(["__proto__=1", "UNSET"], () => undefined), JSON.parse('{"__proto__":"1"}'));
  deepEqual(parseVolume("/a:/b"), { type: "bind", source: "/a", target: "/b" });
  deepEqual(parseMountFlag("type=bind,src=/a,dst=/b,readonly"), {
    type: "bind",
    source: "/a",
    target: "/b",
    readonly: true,
  });
  assertThrows(() => parseMountFlag("type=volume,target=/b"), UsageError, /type=volume is not one hako takes/);
  assertThrows(() => parseMountFlag("type=bind,target=/b"), UsageError, /source= .* is required/);
  // docker's bind propagation: an option of the mount (rprivate is hako's own), and the root
  // propagation docker gives the container with it (moby's setMounts)
  deepEqual(parseVolume("/a:/b:ro,rshared"), {
    type: "bind",
    source: "/a",
    target: "/b",
    readonly: true,
    options: ["rshared"],
  });
  deepEqual(parseVolume("/a:/b:rprivate"), { type: "bind", source: "/a", target: "/b" });
  deepEqual(parseMountFlag("type=bind,src=/a,dst=/b,bind-propagation=rslave").options, ["rslave"]);
  assertThrows(() => parseVolume("/a:/b:z"), UsageError, /option "z" is not one hako takes \(ro, rw, rprivate/);
  assertThrows(() => parseVolume("/a:/b:shared,slave"), UsageError, /more than one propagation/);
  assertThrows(
    () => parseMountFlag("type=bind,src=/a,dst=/b,bind-propagation=both"),
    UsageError,
    /bind-propagation takes rprivate/,
  );
  assertEquals(dockerRootPropagation([parseVolume("/a:/b:rslave"), parseVolume("/c:/d:shared")]), "shared");
  assertEquals(dockerRootPropagation([parseVolume("/a:/b:rslave")]), "slave");
  assertEquals(dockerRootPropagation([parseVolume("/a:/b")]), undefined);
  // docker's --device HOST[:CONTAINER[:PERMS]]
  deepEqual(parseDeviceFlag("/dev/fuse"), { host: "/dev/fuse", container: "/dev/fuse", perms: "rwm" });
  deepEqual(parseDeviceFlag("/dev/sdc:/dev/xvdc:r"), { host: "/dev/sdc", container: "/dev/xvdc", perms: "r" });
  for (const bad of ["fuse", "/dev/a:b", "/dev/a:/dev/b:rwx", "/a:/b:r:x"]) {
    assertThrows(() => parseDeviceFlag(bad), UsageError, /--device wants HOST\[:CONTAINER\[:PERMS\]\]/);
  }
  assertThrows(() => parseEnvFile("OK=1\n9x=2\n", "f"), UsageError, /--env-file f, line 2/);
});

test("docker's ps: running by default, -a for all, --filter by name, status and label; --format json", () => {
  deepEqual(parsePsArgs(["-aq", "--filter", "status=created", "-f", "name=web", "--format", "json"]), {
    help: false,
    json: false,
    quiet: true,
    all: true,
    filters: [{ key: "status", value: "creating" }, { key: "name", value: "web" }],
    jsonLines: true,
  });
  assertThrows(() => parsePsArgs(["--filter", "ancestor=x"]), UsageError, /name=…, status=… or label=…/);
  assertThrows(() => parsePsArgs(["--filter", "status=paused"]), UsageError, /status= takes/);
  assertEquals(parsePsArgs(["--format", "{{.Names}}"]).template, {
    kind: "template",
    template: "{{.Names}}",
    withHeader: false,
  });
  assertThrows(() => parsePsArgs(["--format", "{{range .}}{{end}}"]), UsageError, /hako's templates take/);
  const c = (name: string, state: ContainerInfo["state"]) => ({ name, state }) as ContainerInfo;
  const list = [c("web-1", "running"), c("web-2", "exited"), c("db", "dead"), c("new", "creating")];
  const names = (a: Parameters<typeof selectContainers>[1], labels = {}) =>
    selectContainers(list, a, (n) => (n === "db" ? labels : {})).map((x) => x.name);
  deepEqual(names({}), ["web-1", "db", "new"], "exited ones only with -a; dead ones always (they need a look)");
  deepEqual(names({ all: true }), ["web-1", "web-2", "db", "new"]);
  deepEqual(names({ filters: [{ key: "status", value: "exited" }] }), ["web-2"], "a status filter needs no -a");
  deepEqual(names({ all: true, filters: [{ key: "name", value: "web" }, { key: "name", value: "d" }] }), [
    "web-1",
    "web-2",
    "db",
  ]);
  deepEqual(names({ filters: [{ key: "label", value: "team=ops" }] }, { team: "ops" }), ["db"]);
  deepEqual(names({ filters: [{ key: "label", value: "team" }] }, { team: "ops" }), ["db"]);
  deepEqual(names({ filters: [{ key: "label", value: "team=dev" }] }, { team: "ops" }), []);
});

test("docker's kill -s SIG NAME…, hako's kill NAME SIG; rm, inspect, wait; a suggestion for a mistyped command", () => {
  deepEqual(parseKillArgs(["-s", "term", "a", "b"]), { help: false, name: "a", names: ["a", "b"], signal: "TERM" });
  deepEqual(parseKillArgs(["--signal=9", "a"]), { help: false, name: "a", names: ["a"], signal: "9" });
  deepEqual(parseKillArgs(["a", "HUP"]).names, ["a"]);
  deepEqual(parseKillArgs(["a", "b"]), { help: false, name: "a", names: ["a", "b"], signal: "KILL" });
  assertThrows(() => parseKillArgs(["-s", "NOPE", "a"]), UsageError, /unknown signal/);
  assertThrows(() => parseKillArgs(["-s", "TERM"]), UsageError, /container name is required/);
  assertEquals(parseRmArgs(["-f", "a"]).force, true);
  assertEquals(parseInspectArgs(["-f", "json", "a", "b"]).names, ["a", "b"]);
  assertEquals(parseInspectArgs(["--format", "{{.State}}", "a"]).format?.kind, "template");
  assertThrows(() => parseInspectArgs(["--format", "{{if .State}}x{{end}}", "a"]), UsageError, /hako's templates take/);
  assertThrows(() => parseWaitArgs([]), UsageError, /container name is required/);
  deepEqual(parseUpdateArgs(["-m", "1g", "--cpus", "0.5", "--pids-limit", "0", "a"]), {
    help: false,
    names: ["a"],
    memory: "1g",
    cpus: 0.5,
    pidsLimit: "max",
  });
  assertThrows(() => parseUpdateArgs(["a"]), UsageError, /nothing to change/);
  assertThrows(() => parseUpdateArgs(["--cpus", "0.001", "a"]), UsageError, /at least 0\.01/);
  deepEqual([bytesOf("512m"), bytesOf(1024), bytesOf("max"), bytesOf(undefined), bytesOf("1G")], [
    512 * 2 ** 20,
    1024,
    0,
    0,
    2 ** 30,
  ]);
  deepEqual(
    ["rn", "remove", "stats", "inpsect", "delet", "frobnicate", "x"].map(suggestCommand),
    ["run", "rm", "stats", "inspect", "delete", undefined, undefined],
  );
  assertThrows(() => parseHelpArgs(["inpsect"]), UsageError, /unknown command "inpsect" \(did you mean "inspect"\?\)/);
  deepEqual(dispatch(["rn"]), {
    kind: "error",
    message: 'unknown command "rn" (did you mean "run"?)',
    suggestion: "run",
  });
});

/** mulberry32: a small seeded generator, the same sequence on Deno and Bun. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = process.env.HAKO_FUZZ_SEED !== undefined
  ? Number(process.env.HAKO_FUZZ_SEED)
  : Math.floor(Math.random() * 2 ** 32);

/** The words argv is made of: every command's options (and near misses), values of every kind. */
const WORDS = [
  ...[
    "--help",
    "-h",
    "--json",
    "--quiet",
    "-q",
    "--eval",
    "-e",
    "--env",
    "--user",
    "-u",
    "--workdir",
    "-w",
    "--tty",
    "-t",
    "--interactive",
    "-i",
    "-it",
    "-itu",
    "-ti",
    "--rootfs",
    "--image",
    "--name",
    "--loader",
    "--each",
    "--timeout",
    "--tail",
    "-n",
    "--follow",
    "-f",
    "--raw",
    "--force",
    "--dry-run",
    "--shell",
    "-d",
    "--rm",
    "--env-file",
    "-v",
    "--mount",
    "-m",
    "--cpus",
    "--pids-limit",
    "--hostname",
    "--read-only",
    "--cap-add",
    "--cap-drop",
    "--network",
    "--label",
    "-a",
    "--all",
    "--filter",
    "--format",
    "-s",
    "--signal",
    "--log",
    "--idle",
    "--",
    "-",
    "--=",
    "---",
    "-=",
  ],
  ...["--toString", "--__proto__", "--constructor", "--valueOf", "-\u0000", "--x=", "--json=1", "--help=no"],
  ...["", " ", "web", "spec.ts", "/srv/rootfs", "img.tar.gz", "sh", "-c", "0", "1000:1000", "4294967295", "-1"],
  ...["A=1", "=1", "A", "__proto__=1", "PORT=1..3", "PORT=5..1", "PORT=1..999999", "PORT=a,b", "KILL", "SIGTERM"],
  ...["9", "99", "1.5", "1e9", "99999999999999999999", "NaN", "native", "data", "toString", "__proto__"],
  ...["/a:/b", "./a:/b:ro", "vol:/b", "/a:/b:z", "type=bind,src=/a,dst=/b", "type=tmpfs,target=/t", "512m", "host"],
  ...["none", "bridge", "NET_ADMIN", "ALL", "name=web", "status=exited", "json", "{{.Name}}", "-it", "-dit"],
  ...["a\nb", "x".repeat(10_000), "é", "\u202e", "../..", "--name=", "-e=", "-uroot"],
];

test(`every command's parser gives a UsageError or a clean parse for any argv (seed ${SEED})`, () => {
  console.error(`argv fuzz: seed ${SEED} (replay: HAKO_FUZZ_SEED=${SEED})`);
  const rand = generator(SEED);
  const failures: string[] = [];
  let parsed = 0, specs = 0;
  for (let i = 0; i < 3000 && failures.length < 5; i++) {
    const command = Object.keys(PARSERS)[Math.floor(rand() * Object.keys(PARSERS).length)]!;
    const word = () => WORDS[Math.floor(rand() * WORDS.length)]!;
    const argv = Array.from({ length: Math.floor(rand() * 7) }, word);
    // (a third of the run command lines are quick containers: their specs get checked too)
    if (command === "run" && rand() < 0.33) argv.unshift(rand() < 0.5 ? "--rootfs" : "--image", word(), word());
    try {
      const a = PARSERS[command]!(argv);
      parsed++;
      // The spec a quick container's flags make is a spec like any other: valid, or a SpecError.
      const quick = (a as { quick?: Parameters<typeof quickSpec>[0] }).quick;
      if (quick) {
        specs++;
        try {
          resolveSpec(quickSpec(quick, "/home/me"));
        } catch (e) {
          if (!(e instanceof SpecError)) throw e;
        }
      }
    } catch (e) {
      if (!(e instanceof UsageError)) {
        failures.push(
          `hako ${command} ${JSON.stringify(argv).slice(0, 300)}: ${(e as Error)?.name}: ${(e as Error)?.message}`,
        );
      } else if (!e.message) failures.push(`hako ${command} ${JSON.stringify(argv)}: a UsageError without a message`);
    }
  }
  console.error(`argv fuzz: ${parsed} of 3000 command lines parsed (${specs} quick containers)`);
  assert(failures.length === 0, `seed ${SEED} (HAKO_FUZZ_SEED=${SEED} to replay):\n  ${failures.join("\n  ")}`);
});

test("tooDeep() counts brackets in code only: strings, comments, templates and regexes do not nest", () => {
  assertEquals(tooDeep("[[[1]]]", 3), undefined);
  assertEquals(tooDeep("[[[[1]]]]", 3), { line: 1, column: 4 });
  assertEquals(tooDeep("x\n  ((((", 3), { line: 2, column: 6 });
  const noise = [`"(((("`, `'[[[['`, "// {{{{\n", "/* (((( */", "`((((`", "/[(((]/.test(s)", "a / b / (c)"].join(";\n");
  assertEquals(tooDeep(noise, 1), undefined);
  assertEquals(tooDeep("`${ `${ `${ ((x)) }` }` }`", 4), { line: 1, column: 14 });
  assertEquals(tooDeep("`${ `${ `${ ((x)) }` }` }`", 5), undefined);
  // Every script and module of hako itself is far from the limit.
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (e === "node_modules" || e.startsWith(".") || e === "dist") continue;
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|js)$/.test(e)) files.push(p);
    }
  };
  for (const d of ["src", "ffi", "tests", "examples", "bench", "tools"]) walk(join(ROOT, d));
  for (const f of files) assertEquals(tooDeep(readFileSync(f, "utf8"), 40), undefined, f);
  assert(files.length > 50, `${files.length} files`);
  assert(MAX_NESTING >= 100);
});

/** Runs `bin/hako` (Deno) with `args` in `cwd`. */
function hako(args: string[], cwd = ROOT): { code: number | null; out: string; err: string } {
  const r = spawnSync(join(ROOT, "bin/hako"), args, {
    cwd,
    env: { ...process.env as Record<string, string>, NO_COLOR: "1" },
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("bad command lines exit 2 with the usage, never a stack trace", () => {
  for (
    const args of [
      ["exec", "--", ""],
      ["exec", "web", "--", ""],
      ["run", "--__proto__"],
      ["run", "--toString", "x"],
      ["ps", "--constructor"],
      ["kill", "web", "NOPE"],
      ["run", "--rootfs", "/srv/none", "--", ""],
    ]
  ) {
    const r = hako(args);
    assertEquals(r.code, 2, `hako ${args.join(" ")}: ${r.err}`);
    assert(/Usage: hako/.test(r.err) && !/\n\s+at /.test(r.err), `hako ${args.join(" ")}: ${r.err}`);
  }
});

test("hako plan --json of a bad spec is its SpecError (exit 1), of a 3000-deep one too (no abort)", () => {
  using dir = tempDir();
  const write = (name: string, body: string) => {
    const file = join(dir.path, name);
    writeFileSync(file, body);
    return file;
  };
  const cases: Array<[string, RegExp]> = [
    [
      write(
        "types.ts",
        `export default { name: "x", rootfs: "/srv/x", command: ["sh"], namespaces: true, stdio: "bogus" };\n`,
      ),
      /namespaces: must be an array[\s\S]*stdio: must be one of/,
    ],
    [
      write(
        "typo.ts",
        `export default { name: "x", rootfs: "/srv/x", command: ["sh"], comand: "ls", readonlyRootfs: "false" };\n`,
      ),
      /comand: is not a field in a container spec \(did you mean "command"\?\)/,
    ],
    [
      write(
        "deep-data.ts",
        `let d: unknown = []; for (let i = 0; i < 3000; i++) d = [d];\nexport default { name: "x", rootfs: "/srv/x", command: ["sh"], mounts: d };\n`,
      ),
      /mounts(\[0\])+: nests deeper than/,
    ],
    [
      write(
        "deep-source.ts",
        `export default { name: "x", rootfs: "/srv/x", command: ["sh"], mounts: ${"[".repeat(3000)}${
          "]".repeat(3000)
        } };\n`,
      ),
      /brackets nest deeper than \d+ levels/,
    ],
  ];
  for (const [file, pattern] of cases) {
    const r = hako(["plan", "--json", file]);
    assertEquals(r.code, 1, `${file}: ${r.err}`);
    assert(pattern.test(r.err), `${file}: ${r.err}`);
    assert(!/TypeError|RangeError|\n\s+at /.test(r.err), `${file}: ${r.err}`);
  }
});

test("an image whose config gives no command, with none given, is hako's failure (docker's 125), not a usage error", () => {
  const e = assertThrows(() => withImageDefaults({ image: "app:1", command: [] }, {}), SetupError, /no command to run/);
  assertEquals(programExitCode(e), 125);
  assertEquals(withImageDefaults({ image: "app:1", command: ["sh"] }, {}).command, ["sh"]);
});

test("--stop-signal, or else the image's StopSignal, becomes the spec's stopSignal; the validator names a bad one", () => {
  const a = parseRunArgs(["--stop-signal", "QUIT", "--rootfs", "/srv/r", "--", "sh"]);
  assertEquals(a.quick?.docker?.stopSignal, "QUIT");
  assertEquals(quickSpec(a.quick!, "/home/me", "/var/lib/hako").stopSignal, "QUIT");
  assertThrows(
    () => parseRunArgs(["--stop-signal", "", "--rootfs", "/srv/r", "--", "sh"]),
    UsageError,
    /--stop-signal/,
  );
  const image = { image: "app:1", command: [] as string[] };
  assertEquals(withImageDefaults(image, { Cmd: ["sh"], StopSignal: "SIGUSR1" }).docker?.stopSignal, "SIGUSR1");
  const given = { ...image, docker: { stopSignal: "INT" } };
  assertEquals(
    withImageDefaults(given, { Cmd: ["sh"], StopSignal: "SIGUSR1" }).docker?.stopSignal,
    "INT",
    "the flag wins",
  );
  for (const ok of ["SIGQUIT", "quit", 3]) {
    resolveSpec({ name: "s", rootfs: "/srv/r", command: ["sh"], stopSignal: ok });
  }
  for (const bad of ["BOGUS", 0, 65, "", true]) {
    assertThrows(
      () => resolveSpec({ name: "s", rootfs: "/srv/r", command: ["sh"], stopSignal: bad as never }),
      SpecError,
      /stopSignal/,
    );
  }
});
