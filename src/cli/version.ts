/**
 * `hako version`: hako's version and the runtime's.
 * @module
 */
import { parseArgs, quoted, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** hako's version (kept equal to deno.json's and package.json's by a test). */
export const VERSION = "0.1.0";

/** The help text. */
export const usage = `Usage: hako version [--json]

Prints hako's version and the runtime it runs on, e.g. "hako 0.1.0 (deno 2.9.6)".

Options:
      --json   Print {"hako": …, "runtime": …, "runtimeVersion": …, "compiled": …}
  -h, --help   Show this help
`;

/** What `hako version` was asked to do. */
export interface VersionArgs {
  /** `-h`/`--help`: show the usage instead. */
  readonly help: boolean;
  /** `--json`: print JSON. */
  readonly json: boolean;
}

/**
 * Parses `hako version`'s arguments (pure).
 * @throws {UsageError} For an unknown option or an operand.
 */
export function parseVersionArgs(argv: readonly string[]): VersionArgs {
  const { values, positionals } = parseArgs(argv, { json: { type: "boolean" }, help: { type: "boolean", short: "h" } });
  if (positionals.length > 0 && !values.help) throw new UsageError(`unexpected argument ${quoted(positionals[0]!)}`);
  return { help: values.help === true, json: values.json === true };
}

/** The facts `hako version` prints. */
export interface VersionInfo {
  /** hako's version. */
  readonly hako: string;
  /** `"deno"`, `"bun"` or `"node"`. */
  readonly runtime: string;
  /** The runtime's version. */
  readonly runtimeVersion: string;
  /** True inside a compiled binary. */
  readonly compiled: boolean;
}

/** The version line, or its JSON (pure). */
export function versionText(info: VersionInfo, json: boolean): string {
  if (json) return `${JSON.stringify(info)}\n`;
  return `hako ${info.hako} (${info.runtime} ${info.runtimeVersion}${info.compiled ? ", compiled" : ""})\n`;
}

/** Runs `hako version`. */
export function main(argv: readonly string[]): Promise<number> {
  const a = parseVersionArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
  } else {
    h.stdout(
      versionText(
        { hako: VERSION, runtime: h.runtime, runtimeVersion: h.runtimeVersion, compiled: h.compiled },
        a.json,
      ),
    );
  }
  return Promise.resolve(0);
}
