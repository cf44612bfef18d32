/**
 * `hako images [-q] [--format json] [NAME]`: docker's name for `hako image ls`.
 * @module
 */
import { listMain } from "./image.ts";

/** The help text. */
export const usage = `Usage: hako images [-q] [--format json] [NAME]

Lists the images in hako's store, one row per name (REPOSITORY, TAG, IMAGE ID, CREATED, SIZE),
as docker images; NAME keeps the rows of that repository.

Options:
  -q, --quiet       Print the image IDs only
      --format json One JSON object per line
  -h, --help        Show this help
`;

/** Runs `hako images`. */
export async function main(argv: readonly string[]): Promise<number> {
  return await listMain(argv, usage);
}
