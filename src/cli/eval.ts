/**
 * `hako eval CODE [ARGS…]`: a script given on the command line (as `deno eval`), the new home of
 * `hako run -e CODE`, whose `-e` is a variable with `--rootfs`/`--image` (docker's).
 * @module
 */
import { nonEmpty, parseArgs, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";
import type { LoaderKind } from "../runner/run_script.ts";

/** The help text. */
export const usage = `Usage: hako eval [--loader native|data] <code> [args...]

Runs <code> as a TypeScript script with hako's API as globals (as 'hako run FILE' runs a file),
its arguments in ARGV. The same as 'hako run -e <code>', which keeps working without --rootfs or
--image (with them, -e sets a container's variable, as docker's).

  sudo hako eval 'Process.system("id")'
  sudo hako eval 'console.log(ARGV)' a b

Options:
      --loader <kind>   native or data (see 'hako help run')
  -h, --help            Show this help

An uncaught error ends it with exit code 1.
`;

/** What `hako eval` was asked to do. */
export interface EvalArgs {
  readonly help: boolean;
  readonly code?: string;
  readonly args: readonly string[];
  readonly loader?: LoaderKind;
}

/**
 * Parses `hako eval`'s arguments (pure): options, then the code, then its arguments.
 * @throws {UsageError} For no code or a bad option.
 */
export function parseEvalArgs(argv: readonly string[]): EvalArgs {
  const { values, positionals } = parseArgs(argv, {
    loader: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, true);
  if (values.help) return { help: true, args: [] };
  const [code, ...args] = positionals;
  if (code === undefined) throw new UsageError("the code to run is required");
  nonEmpty(code, "the code");
  const loader = stringOption(values, "loader");
  if (loader !== undefined && loader !== "native" && loader !== "data") {
    throw new UsageError(`--loader must be "native" or "data", not "${loader}"`);
  }
  return { help: false, code, args, ...(loader ? { loader: loader as LoaderKind } : {}) };
}

/** Runs `hako eval`. */
export async function main(argv: readonly string[]): Promise<number | undefined> {
  const a = parseEvalArgs(argv);
  if (a.help) {
    host().stdout(usage);
    return 0;
  }
  // Exactly `hako run --eval CODE -- ARGS…` (a spec module's default export runs its container).
  const run = await import("./run.ts");
  return await run.main(["--eval", a.code!, ...(a.loader ? ["--loader", a.loader] : []), "--", ...a.args]);
}
