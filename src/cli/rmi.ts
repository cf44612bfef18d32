/**
 * `hako rmi [-f] IMAGE…`: docker's name for `hako image rm`.
 * @module
 */
import { removeMain } from "./image.ts";

/** The help text. */
export const usage = `Usage: hako rmi [-f] <image>...

Removes each name given, and an image once it has no name left; then the layers and blobs no
image uses. IMAGE is NAME[:TAG], an ID or an ID's first digits. An image a container still runs
on (its writable layer) is refused unless -f.

Options:
  -f, --force   Remove the image whatever its names and users
  -h, --help    Show this help

Exit status: 0, or 1 when an image is unknown or in use.
`;

/** Runs `hako rmi`. */
export async function main(argv: readonly string[]): Promise<number> {
  return await removeMain(argv, usage, "rmi");
}
