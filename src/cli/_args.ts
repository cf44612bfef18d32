/**
 * A small, pure, table-driven command-line parser for hako's commands: each command declares its
 * options in a table (long name → type, one-letter alias, whether it may repeat) and gets back
 * the values and operands, or a {@link UsageError} saying what is wrong.
 *
 * What it understands, as getopt_long does: `--name`, `--name=value`, `--name value`, `-n value`,
 * `-nvalue`, grouped one-letter options (`-it` for `-i -t`; the last of a group may take a value:
 * `-itu 0`, `-itu0`), `--` ending the options, and `-` as an operand. An option marked `multiple`
 * keeps every value in order (`-e A=1 -e B=2`); any other option given twice is an error, never a
 * silent "the last one wins". Only the table's own names are options: `--toString`,
 * `--__proto__` or `--constructor` are unknown like any other.
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
  /** A string option that may be given more than once: its values come back as an array, in order. */
  readonly multiple?: boolean;
}

/** The parsed command line. */
export interface ParsedArgs {
  /**
   * Options by long name: true for a flag given, the value for a string option, every value (in
   * order) for a `multiple` one. An option not given is absent (the object has no prototype: only
   * options given are keys).
   */
  readonly values: Readonly<Record<string, string | boolean | readonly string[]>>;
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

/** An argument quoted for a message (JSON's escapes for control characters), cut when long. */
export function quoted(arg: string): string {
  return JSON.stringify(arg.length > 64 ? `${arg.slice(0, 64)}…` : arg);
}

/** An argument as a message shows it: quoted when odd (a control character, a space), cut when long. */
export function shownArg(arg: string): string {
  const cut = arg.length > 64 ? `${arg.slice(0, 64)}…` : arg;
  // deno-lint-ignore no-control-regex
  return /^[\w./:@%+=,-]+$/.test(cut) && !/[\x00-\x1f\x7f]/.test(cut) ? cut : JSON.stringify(cut);
}

/**
 * Parses `argv` against `spec`.
 * @param argv The arguments after the command's name.
 * @param spec The options, by long name.
 * @param stopAtPositional True: options end at the first operand, which and whose followers are
 *   returned as they are (for a script and its arguments).
 * @returns The options and operands.
 * @throws {UsageError} For an unknown option, a missing value, a value given to a flag, or a
 *   single-value option given twice.
 *
 * @example
 * ```ts
 * import { parseArgs } from "./_args.ts";
 * const { values, positionals } = parseArgs(["-it", "-e", "A=1", "-eB=2", "web", "sh"], {
 *   tty: { type: "boolean", short: "t" },
 *   interactive: { type: "boolean", short: "i" },
 *   env: { type: "string", short: "e", multiple: true },
 * }, true);
 * // values: { interactive: true, tty: true, env: ["A=1", "B=2"] }, positionals: ["web", "sh"]
 * ```
 */
export function parseArgs(
  argv: readonly string[],
  spec: Readonly<Record<string, OptionSpec>>,
  stopAtPositional = false,
): ParsedArgs {
  const values: Record<string, string | boolean | string[]> = Object.create(null);
  const positionals: string[] = [];
  const option = (name: string): OptionSpec | undefined => (Object.hasOwn(spec, name) ? spec[name] : undefined);
  const byShort = new Map<string, string>();
  for (const [name, s] of Object.entries(spec)) if (s.short) byShort.set(s.short, name);
  const set = (name: string, value: string | true) => {
    const opt = spec[name]!;
    if (opt.multiple) {
      const list = (values[name] ??= []) as string[];
      list.push(value as string);
      return;
    }
    if (Object.hasOwn(values, name) && opt.type === "string") {
      throw new UsageError(`option --${name} is given twice (it takes one value)`);
    }
    values[name] = value;
  };
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
    const next = (name: string): string => {
      if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value`);
      return argv[++i]!;
    };
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const opt = option(name);
      if (!opt) throw new UsageError(`unknown option ${shownArg(`--${name}`)}`);
      if (opt.type === "boolean") {
        if (eq >= 0) throw new UsageError(`option --${name} takes no value`);
        set(name, true);
      } else set(name, eq < 0 ? next(name) : arg.slice(eq + 1));
      continue;
    }
    // One-letter options, grouped: flags, the last of them maybe an option with its value.
    const letters = [...arg.slice(1)];
    for (let k = 0; k < letters.length; k++) {
      const name = byShort.get(letters[k]!);
      if (name === undefined) {
        const first = byShort.get(letters[0]!);
        if (k > 0 && first !== undefined && spec[first]!.type === "boolean" && k === 1) {
          throw new UsageError(`option -${letters[0]} takes no value (got ${shownArg(arg)})`);
        }
        throw new UsageError(`unknown option ${shownArg(`-${letters[k]}`)}${k > 0 ? ` (in ${shownArg(arg)})` : ""}`);
      }
      if (spec[name]!.type === "boolean") {
        set(name, true);
        continue;
      }
      const rest = letters.slice(k + 1).join("");
      set(name, rest !== "" ? rest : next(name));
      break;
    }
  }
  return { values, positionals };
}

/**
 * A string option's value, or undefined when it was not given (for options that are not `multiple`).
 * @param values The parsed values.
 * @param name The option's long name.
 */
export function stringOption(values: ParsedArgs["values"], name: string): string | undefined {
  const v = Object.hasOwn(values, name) ? values[name] : undefined;
  return typeof v === "string" ? v : undefined;
}

/**
 * Every value of a `multiple` option, in order (empty when it was not given).
 * @param values The parsed values.
 * @param name The option's long name.
 */
export function stringsOption(values: ParsedArgs["values"], name: string): readonly string[] {
  const v = Object.hasOwn(values, name) ? values[name] : undefined;
  return Array.isArray(v) ? v : [];
}

/**
 * Checks that an operand or a value is not empty (an empty name, path or command is never what
 * was meant: `hako exec web ''`).
 * @param value The value.
 * @param what What it is, for the message (`"a container name"`).
 * @returns The value.
 * @throws {UsageError} When it is empty.
 */
export function nonEmpty(value: string, what: string): string {
  if (value === "") throw new UsageError(`${what} must not be empty`);
  return value;
}
