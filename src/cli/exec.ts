/**
 * `hako exec NAME [options] [--] CMD…`: a command inside a running container.
 * @module
 */
import { withProgramExitCodes } from "./_exit_codes.ts";
import { nonEmpty, parseArgs, quoted, stringOption, stringsOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako exec [options] <name> [--] <command> [args...]

Runs a command inside a running container, with stdio attached (the caller's terminal too): it
joins all of the container's namespaces (user first, then ipc, uts, net, pid, cgroup, mount — so it
sees the container's root, hostname, processes and id maps), its cgroup, and gets what the
container's command got: its user, environment, working directory, capabilities, rlimits,
no_new_privs and seccomp filter. Exits with the command's code (128+signal when a signal ended it).

Without -t the command gets hako's stdin, stdout and stderr, in a session of its own (so the
caller's terminal is never its controlling terminal). With -t it gets a terminal of the container's
own (a pty of its devpts: its controlling terminal, stdin, stdout and stderr, sized as the caller's
and resized with it), relayed to hako's stdout; with -i also from hako's stdin, the caller's
terminal in raw mode meanwhile (restored at the end). -t alone gives no input, as docker's.

  hako exec -it web -- sh

Options:
  -t, --tty                Give the command a terminal of the container's own
  -i, --interactive        With -t, relay stdin to it
  -u, --user <uid[:gid]>   Run as this user inside instead
  -e, --env <K=V>          Set a variable (again for more: -e A=1 -e B=2)
  -w, --workdir <dir>      Working directory inside
  -h, --help               Show this help
`;

/** What `hako exec` was asked to do. */
export interface ExecArgs {
  readonly help: boolean;
  readonly name?: string;
  readonly argv: readonly string[];
  readonly user?: { readonly uid: number; readonly gid?: number };
  readonly env?: Readonly<Record<string, string>>;
  readonly workdir?: string;
  /** `-t`: a terminal of the container's own. */
  readonly tty?: boolean;
  /** `-i`: with `-t`, stdin relayed to it. */
  readonly interactive?: boolean;
}

/**
 * Parses `hako exec`'s arguments (pure): options, then the name, then the command.
 * @throws {UsageError} For a bad option, no name or no command.
 */
export function parseExecArgs(argv: readonly string[]): ExecArgs {
  const { values, positionals } = parseArgs(argv, {
    user: { type: "string", short: "u" },
    env: { type: "string", short: "e", multiple: true },
    workdir: { type: "string", short: "w" },
    tty: { type: "boolean", short: "t" },
    interactive: { type: "boolean", short: "i" },
    help: { type: "boolean", short: "h" },
  }, true);
  if (values.help) return { help: true, argv: [] };
  let [name, ...cmd] = positionals;
  if (cmd[0] === "--") cmd = cmd.slice(1);
  if (name === undefined) throw new UsageError("a container name is required");
  nonEmpty(name, "the container name");
  if (cmd.length === 0) throw new UsageError("a command is required");
  nonEmpty(cmd[0]!, "the command (its program)");
  const out: ExecArgs = { help: false, name, argv: cmd };
  const u = stringOption(values, "user");
  let user: ExecArgs["user"];
  if (u !== undefined) {
    const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(u);
    // (ids up to 4294967294: (uid_t)-1 means "unchanged" to the kernel)
    if (!m || [m[1], m[2]].some((x) => x !== undefined && Number(x) > 4294967294)) {
      throw new UsageError(`--user wants uid[:gid], numbers in 0..4294967294, not ${quoted(u)}`);
    }
    user = { uid: Number(m[1]), ...(m[2] !== undefined ? { gid: Number(m[2]) } : {}) };
  }
  let env: Record<string, string> | undefined;
  for (const e of stringsOption(values, "env")) {
    const i = e.indexOf("=");
    if (i <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.slice(0, i))) {
      throw new UsageError(`--env wants NAME=VALUE with a variable name (letters, digits, _), not ${quoted(e)}`);
    }
    env ??= {};
    // (an own key whatever the name, `__proto__` included; a name given again: the last value, as docker)
    Object.defineProperty(env, e.slice(0, i), {
      value: e.slice(i + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  const workdir = stringOption(values, "workdir");
  if (workdir !== undefined && !workdir.startsWith("/")) {
    throw new UsageError(`--workdir wants an absolute path inside the container, not ${quoted(workdir)}`);
  }
  return {
    ...out,
    ...(user ? { user } : {}),
    ...(env ? { env } : {}),
    ...(workdir !== undefined ? { workdir } : {}),
    ...(values.tty ? { tty: true } : {}),
    ...(values.interactive ? { interactive: true } : {}),
  };
}

/**
 * Runs a command in a container by name, forwarding SIGINT, SIGQUIT, SIGTERM and SIGHUP to it (it
 * has a session of its own, so the terminal's ^C and ^\\ reach this process), and returns its shell
 * exit code. With `tty`, the command's terminal (a pty of the container's) is relayed to this
 * process's stdout, and with `interactive` from its stdin. Shared with `hako shell`.
 */
export async function execByName(name: string, opts: Omit<ExecArgs, "help" | "name">): Promise<number> {
  const { StateStore, isRunning, describeState, ContainerStateError } = await import("../container/state.ts");
  const { resolveSpec } = await import("../container/validate.ts");
  const { execIn, execForksJs } = await import("../container/exec.ts");
  const { closeFd } = await import("../container/terminal.ts");
  const { default: process } = await import("node:process");
  const r = new StateStore().read(name);
  if (r.state !== "running" || !isRunning(r.init)) {
    throw new ContainerStateError(`container ${name} is not running (${describeState(r)})`);
  }
  const spec = resolveSpec(r.spec);
  // `hako exec` starts without making Bun's engine single-threaded (src/cli/commands.ts): the
  // command's children are native programs, but for no native runner or a time namespace to join
  // (native.ts's compileExecIn), where they are forked: then it is done now, before the terminal
  // goes raw (and again, as a safety net, right before a fork: beforeFork below).
  if (execForksJs(spec)) host().ensureSingleThreaded();
  let child = 0;
  const forward = (sig: NodeJS.Signals) => () => {
    if (child) {
      try {
        process.kill(child, sig);
      } catch { /* gone */ }
    }
  };
  // The command runs in a session of its own (no controlling terminal of ours), so the terminal's
  // ^C and ^\ reach this process, which passes them on.
  const handlers = (["SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP"] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  const tty = opts.tty ? await import("../container/terminal.ts") : undefined;
  let master = -1;
  let relay: import("../container/terminal.ts").TerminalRelay | undefined;
  try {
    // Raw before the command starts, so that no key typed meanwhile is echoed or edited here.
    if (tty) relay = new tty.TerminalRelay({ input: opts.interactive ?? false });
    const status = await execIn(r.init!.pid, {
      argv: opts.argv,
      spec,
      beforeFork: () => host().ensureSingleThreaded(),
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.workdir ? { workdir: opts.workdir } : {}),
      ...(opts.user ? { user: opts.user } : {}),
      ...(tty
        ? {
          tty: tty.callerWindowSize() ?? true,
          onTerminal: (fd: number) => {
            master = fd;
            relay!.attach(fd);
          },
        }
        : {}),
      onStart: (pid) => child = pid,
      onNote: (note) => host().stderr(`hako exec: note: ${note}\n`),
    });
    await relay?.finish();
    return status.shellCode;
  } finally {
    relay?.close();
    if (master >= 0) closeFd(master);
    for (const [s, h] of handlers) process.off(s, h);
  }
}

/** Runs `hako exec`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseExecArgs(argv);
  if (a.help) {
    host().stdout(usage);
    return 0;
  }
  return await withProgramExitCodes("exec", (t) => host().stderr(t), () => execByName(a.name!, a));
}
