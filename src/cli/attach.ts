/**
 * `hako attach NAME`: a shell inside a running container (haconiwa's `attach`).
 * @module
 */
import { parseArgs, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako attach [--shell <path>] <name>

Opens an interactive shell inside a running container, on the caller's terminal: 'hako exec NAME
-- /bin/sh' (see 'hako help exec' for what is joined). Exits with the shell's code.

Options:
      --shell <path>   The shell inside (default /bin/sh)
  -h, --help           Show this help
`;

/** Parses `hako attach`'s arguments (pure). @throws {UsageError} For no name or extra operands. */
export function parseAttachArgs(argv: readonly string[]): { help: boolean; name?: string; shell: string } {
  const { values, positionals } = parseArgs(argv, { shell: { type: "string" }, help: { type: "boolean", short: "h" } });
  const shell = (values.shell as string | undefined) ?? "/bin/sh";
  if (values.help) return { help: true, shell };
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length ? "one container name only" : "a container name is required");
  }
  return { help: false, name: positionals[0]!, shell };
}

/** Runs `hako attach`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseAttachArgs(argv);
  if (a.help) {
    host().stdout(usage);
    return 0;
  }
  const { execByName } = await import("./exec.ts");
  return await execByName(a.name!, { argv: [a.shell] });
}
