/**
 * `hako help [COMMAND]`.
 * @module
 */
import { parseArgs, UsageError } from "./_args.ts";
import { COMMANDS, globalUsage, suggestCommand } from "./commands.ts";
import { host } from "../runner/_host.ts";
import { EXAMPLES } from "./_examples.ts";

/** The help text. */
export const usage = `Usage: hako help [command]

Shows hako's commands, or one command's options (as 'hako <command> --help' does).
`;

/** What `hako help` was asked to show. */
export interface HelpArgs {
  /** The command to explain, or undefined for the overview. */
  readonly topic?: string;
}

/**
 * Parses `hako help`'s arguments (pure).
 * @throws {UsageError} For an unknown command or more than one.
 */
export function parseHelpArgs(argv: readonly string[]): HelpArgs {
  const { values, positionals } = parseArgs(argv, { help: { type: "boolean", short: "h" } });
  if (values.help) return { topic: "help" };
  if (positionals.length > 1) throw new UsageError("give at most one command");
  const topic = positionals[0];
  if (topic === undefined) return {};
  if (!Object.hasOwn(COMMANDS, topic)) {
    const near = suggestCommand(topic);
    throw new UsageError(
      `unknown command ${JSON.stringify(topic.length > 64 ? `${topic.slice(0, 64)}…` : topic)}${
        near ? ` (did you mean "${near}"?)` : ""
      }`,
    );
  }
  return { topic };
}

/** The overview's examples (pure): one for each command in the table that has one. */
export function examplesText(): string {
  const names = Object.keys(COMMANDS).filter((n) => Object.hasOwn(EXAMPLES, n));
  const width = Math.max(...names.map((n) => n.length));
  return ["Examples:", ...names.map((n) => `  ${n.padEnd(width)}  ${EXAMPLES[n]}`), ""].join("\n");
}

/** Runs `hako help`. */
export async function main(argv: readonly string[]): Promise<number> {
  const { topic } = parseHelpArgs(argv);
  host().stdout(topic === undefined ? `${globalUsage()}\n${examplesText()}` : (await COMMANDS[topic]!.load()).usage);
  return 0;
}
