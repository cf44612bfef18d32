/**
 * `hako rm [-f] NAME…`: docker's name for `hako delete` (same options), printing each name removed.
 * @module
 */
import { parseDeleteArgs, runDelete } from "./delete.ts";

/** The help text. */
export const usage = `Usage: hako rm [-f] [--rootfs] <name>...

Deletes each container, as 'hako delete' (see 'hako help delete'), and prints each name deleted,
as docker rm. A running container is refused unless -f (then it is killed first).

Options:
  -f, --force    Kill a running container first
      --rootfs   Also remove the rootfs extracted from its tarball, once no other container uses it
  -h, --help     Show this help

Exit status: 0, or 1 when a container is unknown or running (without -f).
`;

/** Parses `hako rm`'s arguments (pure): `hako delete`'s. */
export const parseRmArgs: typeof parseDeleteArgs = parseDeleteArgs;

/** Runs `hako rm`. */
export async function main(argv: readonly string[]): Promise<number> {
  return await runDelete(argv, "rm", usage);
}
