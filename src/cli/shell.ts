/**
 * `hako shell NAME`: a new shell inside a running container (haconiwa's `attach`; `hako attach`
 * before it took docker's meaning).
 * @module
 */
import { nonEmpty, parseArgs, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako shell [-t] [--shell <path>] <name>

Opens an interactive shell inside a running container, on the caller's terminal: 'hako exec NAME
-- /bin/sh' (see 'hako help exec' for what is joined). Exits with the shell's code.

With -t the shell gets a terminal of the container's own ('hako exec -it NAME -- /bin/sh': a pty
of its devpts, its controlling terminal, with line editing, job control and a window size that
follows the caller's), relayed to and from the caller's terminal, which is raw meanwhile and
restored at the end. Without -t the shell reads hako's stdin as it is, in a session of its own.
(This was 'hako attach' before; 'hako attach' now joins the container's own output, as docker's.)

Options:
  -t, --tty            Give the shell a terminal of the container's own (input relayed: an
                         attached shell is interactive)
      --shell <path>   The shell inside (default /bin/sh)
  -h, --help           Show this help
`;

/** Parses `hako shell`'s arguments (pure). @throws {UsageError} For no name or extra operands. */
export function parseShellArgs(
  argv: readonly string[],
): { help: boolean; name?: string; shell: string; tty?: boolean } {
  const { values, positionals } = parseArgs(argv, {
    shell: { type: "string" },
    tty: { type: "boolean", short: "t" },
    help: { type: "boolean", short: "h" },
  });
  const shell = stringOption(values, "shell") ?? "/bin/sh";
  if (values.help) return { help: true, shell };
  nonEmpty(shell, "--shell");
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length ? "one container name only" : "a container name is required");
  }
  const name = nonEmpty(positionals[0]!, "the container name");
  return { help: false, name, shell, ...(values.tty ? { tty: true } : {}) };
}

/** Runs `hako shell`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseShellArgs(argv);
  if (a.help) {
    host().stdout(usage);
    return 0;
  }
  const { execByName } = await import("./exec.ts");
  return await execByName(a.name!, { argv: [a.shell], ...(a.tty ? { tty: true, interactive: true } : {}) });
}
