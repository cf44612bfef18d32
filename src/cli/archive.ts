/**
 * `hako archive NAME OUT.tar[.gz]`: a container's rootfs as a tarball (docker export), with the
 * owners shifted back from its user namespace's mapping — a file its root made, host uid 100000
 * under `0 100000 65536`, is uid 0 in the archive — so that the archive is the tree as the
 * container sees it, and extracts anywhere (haconiwa's `archive`).
 *
 * The rootfs may be changed by a running container while it is read: every directory is opened
 * relative to its parent's fd with O_NOFOLLOW and entries are reached through `/proc/self/fd/N/name`
 * of that held directory, never by a path that a symlink swapped in could steer out of the rootfs
 * (a host file must never land in the archive).
 * @module
 */
import { nonEmpty, parseArgs, UsageError } from "./_args.ts";
export { idInside, type IdShift, type TarEntry, tarHeader } from "../container/archive.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako archive <name> <out.tar | out.tar.gz | ->

Writes the container's root file system as a tarball (docker export; haconiwa's archive), gzip'd
when OUT ends in .gz or .tgz, to stdout with '-'. Owners are the container's: for a container with
a user namespace, host ids are shifted back through its id map (host 100000 under "0 100000 65536"
is 0), and ids outside the map are 65534 (nobody), as the container sees them. The container may
run meanwhile (stop it first for a consistent copy); nothing outside its rootfs is ever read.

Options:
  -h, --help   Show this help
`;

/** Parses `hako archive`'s arguments (pure). @throws {UsageError} For a missing name or file. */
export function parseArchiveArgs(argv: readonly string[]): { help: boolean; name?: string; out?: string } {
  const { values, positionals } = parseArgs(argv, { help: { type: "boolean", short: "h" } });
  if (values.help) return { help: true };
  if (positionals.length !== 2) throw new UsageError("give the container's name and the tarball to write");
  return {
    help: false,
    name: nonEmpty(positionals[0]!, "the container name"),
    out: nonEmpty(positionals[1]!, "the tarball"),
  };
}

/** Runs `hako archive` with `argv`; @returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseArchiveArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { StateStore, ContainerStateError } = await import("../container/state.ts");
  const { resolveSpec } = await import("../container/validate.ts");
  const { archiveRootfs } = await import("../container/archive.ts");
  const store = new StateStore();
  const found = store.inspect(a.name!);
  if (found.kind === "none") throw new ContainerStateError(`no such container: ${a.name}`);
  if (found.kind === "damaged") throw new ContainerStateError(`${a.name}'s record is damaged (${found.problem})`);
  const r = found.record;
  const resolved = resolveSpec(r.spec);
  const userns = resolved.newNamespaces.includes("user");
  archiveRootfs(r.rootfs, {
    out: a.out!,
    gzip: /\.(gz|tgz)$/.test(a.out!),
    ...(userns ? { uidMap: resolved.uidMap, gidMap: resolved.gidMap } : {}),
  });
  return 0;
}
