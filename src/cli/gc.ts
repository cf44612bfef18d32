/**
 * `hako gc`: removes what dead or half-made containers left.
 * @module
 */
import { parseArgs, quoted, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako gc [--dry-run] [--json]

Finds and removes what dead, exited or half-made containers and crashes left behind:
  - their cgroups, veth pairs, state and logs (a container whose setup was cut short by a crash
    is killed first);
  - container directories without a valid record, left alone for a minute;
  - the rootfs hako extracted for a container that never ran, once the process that asked for it
    is gone and no container or live process uses it;
  - what an interrupted extraction, build or removal left beside a rootfs (.NAME.hako-tmp-*,
    NAME.building-PID, .NAME.hako-rm-*), unless a live process holds it;
  - temp files of writers that died, and hako's notes about rootfs directories that are gone;
  - cgroups named hako-* and veths named hk-*-h that no container owns, and a dead supervisor's
    socket.
Running containers are never touched, nor anything a live process uses: a container whose record
is damaged, or whose init ended while what it started lives on in its cgroup, is kept while
processes are in that cgroup (each is named, with why: 'hako stop' or 'hako delete --force' ends
them). Prints what it removed; --dry-run prints the same list and removes nothing.

Options:
  -n, --dry-run   Print what would be removed, remove nothing
      --json      Print the report as JSON
  -h, --help      Show this help
`;

/** Parses `hako gc`'s arguments (pure). @throws {UsageError} For a bad option or operand. */
export function parseGcArgs(argv: readonly string[]): { help: boolean; dryRun: boolean; json: boolean } {
  const { values, positionals } = parseArgs(argv, {
    "dry-run": { type: "boolean", short: "n" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (positionals.length > 0 && !values.help) throw new UsageError(`unexpected argument ${quoted(positionals[0]!)}`);
  return { help: values.help === true, dryRun: values["dry-run"] === true, json: values.json === true };
}

/** Runs `hako gc`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseGcArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { collectGarbage } = await import("../container/lifecycle.ts");
  const collected = await collectGarbage({ dryRun: a.dryRun });
  // Writable layers of containers on images (hako run --image NAME) whose container is gone.
  const { imageVarDir } = await import("./image.ts");
  const { collectWritable } = await import("../image/rw.ts");
  const { StateStore, stateDir } = await import("../container/state.ts");
  let live: Set<string> | undefined;
  try {
    live = new Set(new StateStore().names());
  } catch { /* no state directory: leave the layers */ }
  const layers = live ? collectWritable(await imageVarDir(), stateDir(), live, a.dryRun) : [];
  const r = { ...collected, files: [...collected.files, ...layers] };
  if (a.json) {
    h.stdout(JSON.stringify(r, null, 2) + "\n");
    return 0;
  }
  const verb = a.dryRun ? "would remove" : "removed";
  const lines = [
    ...r.containers.map((n) => `${verb} container ${n}`),
    ...r.cgroups.map((c) => `${verb} cgroup ${c}`),
    ...r.links.map((l) => `${verb} link ${l}`),
    ...r.rootfs.map((d) => `${verb} rootfs ${d}`),
    ...r.files.map((f) => `${verb} ${f}`),
    ...r.kept.map((k) => `kept container ${k.container}: ${k.why}`),
  ];
  h.stdout(lines.length ? lines.join("\n") + "\n" : "nothing to collect\n");
  return 0;
}
