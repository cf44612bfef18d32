/**
 * `hako oci …`: hako as an OCI runtime with runc's command line (see `src/oci/runtime.ts`);
 * `bin/hako-runc` runs the same.
 * @module
 */
import { host } from "../runner/_host.ts";

export { usage } from "../oci/runtime.ts";

/** Runs `hako oci`: runc's exit statuses (0, or 1 with the message on stderr and in `--log`). */
export async function main(argv: readonly string[]): Promise<number> {
  const { runOci } = await import("../oci/runtime.ts");
  const h = host();
  return await runOci(argv, { stdout: (t) => h.stdout(t), stderr: (t) => h.stderr(t) });
}
