/**
 * The `hako` command.
 *
 * ```sh
 * sudo bin/hako run box.ts arg1 arg2      # a script with hako's API as globals
 * sudo bin/hako run -e 'Process.system("id")'
 * bin/hako version
 * ```
 *
 * Data goes to stdout, messages and errors to stderr. Exit codes are a shell's: 0 on success,
 * 1 when a script fails, 2 for a bad command line, and a script's own `process.exitCode`; a
 * container's run or exec exits with its program's code, or docker's 125/126/127 when hako failed,
 * the program cannot be executed or was not found (see `_exit_codes.ts`).
 *
 * Run it with `--v8-flags=--single-threaded` (as `bin/hako` and `deno task hako` do): a forked
 * child could otherwise hang in V8's garbage collector (see `ffi/fork.ts`). Under Bun — `bun
 * src/cli/main.ts` or the `dist/hako` that `tools/build.sh` compiles — the same holds for
 * JavaScriptCore, which takes its options from `BUN_JSC_*` variables read only at start-up: started
 * without them, a command that may fork (`CommandEntry.forks`: run, start, exec, demo…) re-executes
 * the process once with them set, before it loads anything else (see `Host.ensureSingleThreaded`);
 * the others (version, ps, logs, kill, stop, delete, gc, help) never fork and skip that cost.
 *
 * @module
 */
import { host } from "../runner/_host.ts";
import { HOT_COMMANDS, ociCommandOf } from "../oci/args.ts";
import { COMMANDS, dispatch, globalUsage } from "./commands.ts";
import { UsageError } from "./_args.ts";
import { MESSAGE_ERRORS } from "./_exit_codes.ts";

/**
 * Runs the `hako` command line.
 * @param argv The arguments after `hako`.
 * @returns The exit code, or undefined when the command leaves the process running (a script
 *   with timers) to end by itself.
 */
export async function main(argv: readonly string[]): Promise<number | undefined> {
  const h = host();
  const d = dispatch(argv);
  if (d.kind === "error") {
    // A near miss gets its suggestion, not the whole list of commands.
    h.stderr(
      d.suggestion
        ? `hako: ${d.message}\nRun 'hako help' for the commands.\n`
        : `hako: ${d.message}\n\n${globalUsage()}`,
    );
    return 2;
  }
  const command = await COMMANDS[d.name]!.load();
  try {
    return await command.main(d.argv);
  } catch (e) {
    // Errors about the user's containers or specs are messages, not crashes: no stack.
    const name = (e as Error)?.name;
    if (MESSAGE_ERRORS.includes(name)) {
      h.stderr(`hako ${d.name}: ${(e as Error).message}\n`);
      return 1;
    }
    if (!(e instanceof UsageError)) throw e;
    const first = command.usage.split("\n").find((l) => l.startsWith("Usage:")) ?? "";
    h.stderr(`hako ${d.name}: ${e.message}\n${first}\nRun 'hako help ${d.name}' for more.\n`);
    return 2;
  }
}

/**
 * hako's arguments (pure): `args`, after `oci` when the program was started as `hako-runc` (the
 * link to `dist/hako` that `tools/build.sh` makes, for `podman --runtime` and containerd's
 * `--runc-binary`: runc's command line with no launcher in between, as `bin/hako-runc` is for Deno).
 * @param programName argv[0] (a path or a bare name).
 * @param args The arguments after it.
 */
export function hakoArgs(programName: string, args: readonly string[]): string[] {
  return programName.slice(programName.lastIndexOf("/") + 1) === "hako-runc" ? ["oci", ...args] : [...args];
}

/**
 * True when the command line runs a command that may fork JavaScript, which needs the engine
 * single-threaded (pure).
 * @param argv The arguments after `hako`.
 */
export function needsSingleThreaded(argv: readonly string[]): boolean {
  const d = dispatch(argv);
  if (d.kind !== "command") return false;
  const forks = COMMANDS[d.name]!.forks;
  return typeof forks === "function" ? forks(d.argv) : forks === true;
}

/**
 * The runc command line when `argv` runs one of hako-runc's hot commands (`state`, `start`, `kill`,
 * `delete`: a shim calls them several times per container), else undefined (pure).
 * @param argv The arguments after `hako`.
 */
export function hotOciArgs(argv: readonly string[]): readonly string[] | undefined {
  if (argv[0] !== "oci") return undefined;
  const command = ociCommandOf(argv.slice(1));
  return command !== undefined && HOT_COMMANDS.includes(command) ? argv.slice(1) : undefined;
}

if (import.meta.main) {
  const args = hakoArgs(host().programName(), host().args());
  // hako-runc's hot commands before anything else loads: src/oci/hot.ts runs them with no node:
  // module (its own stdout and stderr too), never forks, and needs no single-threaded engine.
  const hot = hotOciArgs(args);
  if (hot) host().exit(await (await import("../oci/hot.ts")).runOci(hot));
  // First thing, before any command's modules load (under Bun this may re-exec and not return).
  if (needsSingleThreaded(args)) host().ensureSingleThreaded();
  const code = await main(args);
  if (code !== undefined) host().exit(code);
}
