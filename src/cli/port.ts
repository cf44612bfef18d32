/**
 * `hako port NAME [PORT[/tcp]]`: a running container's published ports, as docker port prints
 * them (read from `ports.json` in its state directory, which its supervisor writes).
 * @module
 */
import { nonEmpty, parseArgs, quoted, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";
import { portLines } from "./_publish.ts";

/** The help text. */
export const usage = `Usage: hako port <name> [PORT[/tcp]]

Lists a running container's published ports (hako run -d -p/-P), as docker port:
  80/tcp -> 0.0.0.0:32768
With PORT, only the host addresses it is published on (0.0.0.0:32768). A container that is not
running publishes none.

Options:
  -h, --help   Show this help

Exit status: 0, or 1 when the container is unknown or PORT is not published.
`;

/** Parses `hako port`'s arguments (pure). @throws {UsageError} For no name, or a bad PORT. */
export function parsePortArgs(
  argv: readonly string[],
): { help: boolean; name: string; port?: number } {
  const { values, positionals } = parseArgs(argv, { help: { type: "boolean", short: "h" } });
  if (values.help) return { help: true, name: "" };
  if (positionals.length === 0) throw new UsageError("a container name is required");
  if (positionals.length > 2) throw new UsageError(`unexpected argument ${quoted(positionals[2]!)}`);
  const name = nonEmpty(positionals[0]!, "a container name");
  const p = positionals[1];
  if (p === undefined) return { help: false, name };
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(p);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) {
    throw new UsageError(`${quoted(p)} is not PORT[/PROTO] (e.g. 80 or 80/tcp)`);
  }
  return { help: false, name, port: Number(m[1]) };
}

/** Runs `hako port`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parsePortArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { StateStore } = await import("../container/state.ts");
  const { readPublishedPorts } = await import("../container/ports.ts");
  const store = new StateStore();
  const got = store.inspect(a.name);
  if (got.kind === "none") {
    h.stderr(`hako port: no such container: ${a.name}\n`);
    return 1;
  }
  const rows = got.kind === "ok" && got.record.state === "running" ? readPublishedPorts(store.dir(a.name)) : [];
  if (a.port === undefined) {
    h.stdout(portLines(rows).map((l) => `${l}\n`).join(""));
    return 0;
  }
  const hits = rows.filter((r) => r.containerPort === a.port);
  if (hits.length === 0) {
    h.stderr(`hako port: no public port '${a.port}/tcp' published for ${a.name}\n`);
    return 1;
  }
  h.stdout(hits.map((r) => `${r.hostIp}:${r.hostPort}\n`).join(""));
  return 0;
}
