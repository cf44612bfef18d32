/**
 * `hako oci …`: hako as an OCI runtime with runc's command line (see `src/oci/runtime.ts`);
 * `bin/hako-runc` runs the same.
 * @module
 */
import { host } from "../runner/_host.ts";
import { UsageError } from "./_args.ts";
import { type OciArgs, OciUsageError, parseOciArgs } from "../oci/args.ts";

export { usage } from "../oci/hot.ts";

/** Runs `hako oci`: runc's exit statuses (0, or 1 with the message on stderr and in `--log`). */
export async function main(argv: readonly string[]): Promise<number> {
  const { runOci } = await import("../oci/hot.ts");
  const h = host();
  return await runOci(argv, {
    stdout: (t) => h.stdout(t),
    stderr: (t) => h.stderr(t),
    singleThreaded: (execve) => h.ensureSingleThreaded(execve),
  });
}

/**
 * Parses `hako oci`'s arguments (pure): runc's command line (see `src/oci/args.ts`).
 * @throws {UsageError} For an unknown option or a missing value.
 */
export function parseOciCliArgs(argv: readonly string[]): OciArgs {
  try {
    return parseOciArgs(argv);
  } catch (e) {
    if (e instanceof OciUsageError) throw new UsageError(e.message);
    throw e;
  }
}
