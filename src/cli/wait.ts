/**
 * `hako wait NAME…`: blocks until each container has ended, then prints its exit code (docker's).
 * @module
 */
import { nonEmpty, parseArgs, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";
import type { StateStore } from "../container/state.ts";

/** The help text. */
export const usage = `Usage: hako wait <name>...

Waits until each container has ended and prints its exit code, one line per container in the
order given, as docker wait (128+N when signal N ended it). A container whose end nobody saw (its
supervisor was gone) prints -1. It reads the containers' records, so it works for daemonized
containers and foreground ones alike, and from any shell.

Options:
  -h, --help   Show this help

Exit status: 0, or 1 when a container is unknown, or was removed before its end was read (a
foreground run, or -d --rm, whose record goes when it ends).
`;

/** Parses `hako wait`'s arguments (pure). @throws {UsageError} For no name. */
export function parseWaitArgs(argv: readonly string[]): { help: boolean; names: string[] } {
  const { values, positionals } = parseArgs(argv, { help: { type: "boolean", short: "h" } });
  if (values.help) return { help: true, names: [] };
  if (positionals.length === 0) throw new UsageError("a container name is required");
  for (const n of positionals) nonEmpty(n, "a container name");
  return { help: false, names: [...positionals] };
}

/** How often the records are read (ms). */
const POLL_MS = 100;

/**
 * Waits for one container's end (its record says exited, or it is dead: its process gone
 * unseen).
 * @returns Its exit code (-1: unknown), or a message when it cannot be waited for.
 */
export async function waitFor(
  name: string,
  store: StateStore,
  deps: { readonly isRunning: (id: unknown) => boolean },
): Promise<{ code: number } | { error: string }> {
  let seen = false;
  for (;;) {
    const got = store.inspect(name);
    if (got.kind === "none") {
      return { error: seen ? `${name} was removed before its exit status was read` : `no such container: ${name}` };
    }
    if (got.kind === "damaged") return { error: `${name}'s record is damaged (${got.problem}): see 'hako ps'` };
    seen = true;
    const r = got.record;
    if (r.state === "exited") return { code: r.exit ? r.exit.shellCode : -1 };
    // Dead: recorded as running (or being made) by a process that is gone, and its init gone too.
    if (!deps.isRunning(r.init) && !deps.isRunning(r.owner)) return { code: -1 };
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
}

/** Runs `hako wait`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseWaitArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { StateStore, isRunning } = await import("../container/state.ts");
  const store = new StateStore();
  const results = await Promise.all(
    a.names.map((n) => waitFor(n, store, { isRunning: (id) => isRunning(id as Parameters<typeof isRunning>[0]) })),
  );
  let code = 0;
  for (const r of results) {
    if ("code" in r) h.stdout(`${r.code}\n`);
    else {
      code = 1;
      h.stderr(`hako wait: ${r.error}\n`);
    }
  }
  return code;
}
