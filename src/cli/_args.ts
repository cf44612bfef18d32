/**
 * A small, pure command-line parser for hako's commands.
 *
 * Why not `node:util`'s `parseArgs`? It cannot stop at the first positional (`hako run x.ts --flag`
 * must pass `--flag` to the script), and in Deno the first `node:` import costs the CLI 15 ms of
 * start-up.
 *
 * @module
 */

/** One option: a flag, or an option that takes a value. */
export interface OptionSpec {
  /** A flag, or an option that takes a value. */
  readonly type: "boolean" | "string";
  /** A one-letter alias (`"e"` for `-e`). */
  readonly short?: string;
}

/** The parsed command line. */
export interface ParsedArgs {
  /** Options by long name: true for a flag given, the value for a string option. */
  readonly values: Readonly<Record<string, string | boolean>>;
  /** Operands, in order. With `stopAtPositional`, the first operand and everything after it. */
  readonly positionals: readonly string[];
}

/** A command line the command cannot accept; the CLI prints it with the usage and exits 2. */
export class UsageError extends Error {
  /**
   * Makes the error.
   * @param message What is wrong with the command line.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Parses `argv` against `spec`. `--name`, `--name=value`, `--name value`, `-n value`, `-nvalue`,
 * grouped flags (`-it` for `-i -t`) and `--` (end of options) are understood; a lone `-` is an
 * operand.
 * @param argv The arguments after the command's name.
 * @param spec The options, by long name.
 * @param stopAtPositional True: options end at the first operand, which and whose followers are
 *   returned as they are (for a script and its arguments).
 * @returns The options and operands.
 * @throws {UsageError} For an unknown option, a missing value, or a value given to a flag.
 */
export function parseArgs(
  argv: readonly string[],
  spec: Readonly<Record<string, OptionSpec>>,
  stopAtPositional = false,
): ParsedArgs {
  const values: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(spec).filter(([, s]) => s.short).map(([name, s]) => [s.short!, name]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (stopAtPositional) {
        positionals.push(...argv.slice(i));
        break;
      }
      positionals.push(arg);
      continue;
    }
    let name: string, inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      if (!(name in spec)) throw new UsageError(`unknown option --${name}`);
    } else {
      const long = byShort.get(arg[1]!);
      if (!long) throw new UsageError(`unknown option -${arg[1]}`);
      name = long;
      inline = arg.length > 2 ? arg.slice(2) : undefined;
      if (inline !== undefined && spec[name]!.type === "boolean") {
        // A group of one-letter flags (`-it`), when every letter is one.
        const group = [...arg.slice(1)].map((c) => byShort.get(c));
        if (group.every((n) => n !== undefined && spec[n]!.type === "boolean")) {
          for (const n of group) values[n!] = true;
          continue;
        }
        throw new UsageError(`option -${arg[1]} takes no value (got "${arg}")`);
      }
    }
    const opt = spec[name]!;
    if (opt.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`);
      values[name] = true;
      continue;
    }
    if (inline === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value`);
      inline = argv[++i]!;
    }
    values[name] = inline;
  }
  return { values, positionals };
}
