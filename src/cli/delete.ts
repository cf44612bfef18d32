/**
 * `hako delete NAME… [--force] [--rootfs]`.
 * @module
 */
import { nonEmpty, parseArgs, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako delete [--force] [--rootfs] <name>...

Deletes each container: its cgroup, its veth pair, its state and logs. A running container is
refused unless --force (then it is killed first).

With --rootfs, the rootfs hako extracted for it from a tarball is removed too — unless another
container still uses it: another container's record (whatever its state) on the same directory
(reached by any path: a symlink or bind mount of it counts), or a live process whose root it is.
Then the container is deleted all the same, the rootfs is kept for the others, and a line on
stderr names them; the last user's 'delete --rootfs' removes it (docker's 'rm -v' does the same
with a volume another container uses). A directory or builder rootfs is never removed, nor a
directory that no longer holds hako's marker of that extraction.

Options:
  -f, --force    Kill a running container first
      --rootfs   Also remove the rootfs extracted from its tarball, once no other container uses it
  -h, --help     Show this help

Exit status: 0 (also when a rootfs was kept for its other users), or 1 when a container is unknown
or running (without --force), or when its rootfs could not be removed safely (a mount point under
it, a way to it that others could change): the container is deleted then, and its rootfs left whole.
`;

/** Parses `hako delete`'s arguments (pure). @throws {UsageError} For no name or a bad option. */
export function parseDeleteArgs(
  argv: readonly string[],
): { help: boolean; names: string[]; force: boolean; rootfs: boolean } {
  const { values, positionals } = parseArgs(argv, {
    force: { type: "boolean", short: "f" },
    rootfs: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, names: [], force: false, rootfs: false };
  if (positionals.length === 0) throw new UsageError("a container name is required");
  for (const n of positionals) nonEmpty(n, "a container name");
  return { help: false, names: [...positionals], force: values.force === true, rootfs: values.rootfs === true };
}

/** Runs `hako delete`. */
export async function main(argv: readonly string[]): Promise<number> {
  return await runDelete(argv, "delete", usage);
}

/**
 * Runs `hako delete` or its docker name `hako rm`.
 * @param argv The arguments after the command's name.
 * @param command The command's name, for messages.
 * @param help Its help text.
 */
export async function runDelete(argv: readonly string[], command: string, help: string): Promise<number> {
  const a = parseDeleteArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(help);
    return 0;
  }
  const { deleteContainer } = await import("../container/lifecycle.ts");
  let code = 0;
  const deleted = await Promise.all(a.names.map(async (name) => {
    try {
      const r = await deleteContainer(name, { force: a.force, rootfs: a.rootfs });
      if (r.rootfs?.message) h.stderr(`hako ${command}: ${r.rootfs.message}\n`);
      return true;
    } catch (e) {
      code = 1;
      h.stderr(`hako ${command}: ${(e as Error).message}\n`);
      return false;
    }
  }));
  // docker rm prints each name it removed, in the order given.
  if (command === "rm") h.stdout(a.names.filter((_, i) => deleted[i]).map((n) => `${n}\n`).join(""));
  return code;
}
