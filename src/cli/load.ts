/**
 * `hako load [-i FILE] [-q]`: docker's load, an image archive from stdin (or FILE).
 * @module
 */
import { loadMain } from "./image.ts";

/** The help text. */
export const usage = `Usage: hako load [-i FILE] [-q]

Imports the images of a docker-archive ('docker save', 'podman save') or an OCI image layout
archive ('podman save --format oci-archive') read from stdin, or from FILE, as docker load;
prints "Loaded image: NAME" for each name. See 'hako help image'.

Options:
  -i, --input FILE  Read the archive from FILE instead of stdin
  -q, --quiet       Print nothing
  -h, --help        Show this help
`;

/** Runs `hako load`. */
export async function main(argv: readonly string[]): Promise<number> {
  return await loadMain(argv, usage);
}
