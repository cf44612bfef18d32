/**
 * `hako completion bash|zsh|fish`: a shell completion script made from the command table and each
 * command's help text — its options are the lines of its usage that start with `-x, --name` or
 * `--name` — so that a command or option added to hako is completed without another list to keep.
 * @module
 */
import { parseArgs, quoted, UsageError } from "./_args.ts";
import { COMMANDS } from "./commands.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako completion <bash|zsh|fish>

Prints a completion script for the shell: hako's commands (with their summaries, where the shell
shows them), each command's options, container names (from 'hako ps -a -q') for the commands that
take one, and files for the others.

  source <(hako completion bash)                           # bash, in ~/.bashrc
  source <(hako completion zsh)                            # zsh, after compinit
  hako completion fish > ~/.config/fish/completions/hako.fish

Options:
  -h, --help   Show this help
`;

/** The shells. */
export const SHELLS = ["bash", "zsh", "fish"] as const;

/** Parses `hako completion`'s arguments (pure). @throws {UsageError} For no shell or another one. */
export function parseCompletionArgs(argv: readonly string[]): { help: boolean; shell?: (typeof SHELLS)[number] } {
  const { values, positionals } = parseArgs(argv, { help: { type: "boolean", short: "h" } });
  if (values.help) return { help: true };
  const shell = positionals[0];
  if (positionals.length !== 1 || !(SHELLS as readonly string[]).includes(shell!)) {
    throw new UsageError(`give one shell: bash, zsh or fish${shell === undefined ? "" : `, not ${quoted(shell)}`}`);
  }
  return { help: false, shell: shell as (typeof SHELLS)[number] };
}

/** One option of a command, from its usage. */
export interface OptionInfo {
  readonly long: string;
  readonly short?: string;
  readonly description: string;
}

/** A command as completion sees it. */
export interface CommandInfo {
  readonly name: string;
  readonly summary: string;
  readonly options: readonly OptionInfo[];
}

/** The options a usage text lists (pure): its lines `  -x, --name <V>  Text` and `      --name  Text`. */
export function optionsOf(usageText: string): OptionInfo[] {
  const out: OptionInfo[] = [];
  for (const line of usageText.split("\n")) {
    const m = /^\s{1,8}(?:-([A-Za-z0-9]), )?--([a-z][a-z0-9-]*)(?:[ =]<[^>]*>|=\S+)?(?:\s{2,}(.*))?$/.exec(line);
    if (!m || out.some((o) => o.long === m[2])) continue;
    out.push({ long: m[2]!, ...(m[1] ? { short: m[1] } : {}), description: (m[3] ?? "").trim() });
  }
  return out;
}

/** The commands whose operands are container names. */
export const NAME_COMMANDS: readonly string[] = [
  "logs",
  "exec",
  "attach",
  "shell",
  "kill",
  "stop",
  "delete",
  "rm",
  "inspect",
  "wait",
  "update",
  "stats",
  "top",
  "restart",
  "archive",
];

const sq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The bash script (pure). */
export function bashScript(commands: readonly CommandInfo[]): string {
  const names = NAME_COMMANDS.filter((n) => commands.some((c) => c.name === n));
  return `# hako's bash completion, made by 'hako completion bash'. Use: source <(hako completion bash)
_hako() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="\${COMP_WORDS[1]}" flags=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W ${sq(commands.map((c) => c.name).join(" "))} -- "$cur") )
    return
  fi
  case "$cmd" in
${
    commands.map((c) =>
      `    ${c.name}) flags=${
        sq(c.options.flatMap((o) => [`--${o.long}`, ...(o.short ? [`-${o.short}`] : [])]).join(" "))
      } ;;`
    ).join("\n")
  }
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$flags" -- "$cur") )
    return
  fi
  case "$cmd" in
    ${names.join("|") || "_none_"}) COMPREPLY=( $(compgen -W "$(hako ps -a -q 2>/dev/null)" -- "$cur") ) ;;
    *) COMPREPLY=( $(compgen -f -- "$cur") ) ;;
  esac
}
complete -o default -F _hako hako
`;
}

/** The zsh script (pure). */
export function zshScript(commands: readonly CommandInfo[]): string {
  const names = NAME_COMMANDS.filter((n) => commands.some((c) => c.name === n));
  const zq = (s: string) => sq(s.replaceAll("[", "\\[").replaceAll("]", "\\]"));
  return `#compdef hako
# hako's zsh completion, made by 'hako completion zsh'. Use: source <(hako completion zsh) (after compinit)
_hako() {
  local -a commands flags
  commands=(
${commands.map((c) => `    ${sq(`${c.name}:${c.summary}`)}`).join("\n")}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'hako command' commands
    return
  fi
  case \${words[2]} in
${
    commands.map((c) =>
      `    ${c.name}) flags=(${
        c.options.flatMap((
          o,
        ) => [zq(`--${o.long}[${o.description}]`), ...(o.short ? [zq(`-${o.short}[${o.description}]`)] : [])])
          .join(" ")
      }) ;;`
    ).join("\n")
  }
  esac
  if [[ \${words[CURRENT]} == -* ]]; then
    _values -w option $flags
    return
  fi
  case \${words[2]} in
    ${names.join("|") || "_none_"}) compadd -- \${(f)"$(hako ps -a -q 2>/dev/null)"} ;;
    *) _files ;;
  esac
}
if (( $+functions[compdef] )); then compdef _hako hako; fi
`;
}

/** The fish script (pure). */
export function fishScript(commands: readonly CommandInfo[]): string {
  const names = NAME_COMMANDS.filter((n) => commands.some((c) => c.name === n));
  const lines = [
    "# hako's fish completion, made by 'hako completion fish'. Use: hako completion fish > ~/.config/fish/completions/hako.fish",
    "complete -c hako -f",
    ...commands.map((c) => `complete -c hako -n __fish_use_subcommand -a ${c.name} -d ${sq(c.summary)}`),
    ...commands.flatMap((c) =>
      c.options.map((o) =>
        `complete -c hako -n ${sq(`__fish_seen_subcommand_from ${c.name}`)} -l ${o.long}${
          o.short ? ` -s ${o.short}` : ""
        }${o.description ? ` -d ${sq(o.description)}` : ""}`
      )
    ),
    `complete -c hako -n ${
      sq(`__fish_seen_subcommand_from ${names.join(" ")}`)
    } -a '(command -q hako; and hako ps -a -q 2>/dev/null)'`,
    `complete -c hako -n ${
      sq(`__fish_seen_subcommand_from ${commands.map((c) => c.name).filter((n) => !names.includes(n)).join(" ")}`)
    } -F`,
  ];
  return lines.join("\n") + "\n";
}

/** Every command with its options, from the table and each command's usage. */
export async function commandInfos(): Promise<CommandInfo[]> {
  return await Promise.all(
    Object.entries(COMMANDS).map(async ([name, c]) => ({
      name,
      summary: c.summary,
      options: optionsOf((await c.load()).usage),
    })),
  );
}

/** Runs `hako completion`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseCompletionArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const infos = await commandInfos();
  h.stdout(a.shell === "bash" ? bashScript(infos) : a.shell === "zsh" ? zshScript(infos) : fishScript(infos));
  return 0;
}
