/**
 * `hako plan FILE`: prints, without touching anything, the exact ordered steps and kernel calls
 * a spec module's container would make — on the host (rootfs, cgroup writes, clone flags, id maps)
 * and in the child (each named setup step with its calls) — or `--json`.
 * @module
 */
import { nonEmpty, parseArgs, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako plan [--json] <spec.ts> [args...]

Prints the ordered steps and kernel calls that running the container of <spec.ts> (or a spec as
JSON, <spec.json>) would make, without making any of them: the rootfs, the cgroup writes, the clone flags and id maps, then each
named step in the child (mounts with their flags, pivot_root, hostname, rlimits, capabilities,
no_new_privs) and the execve. The spec is validated first; its problems are listed instead.

Options:
      --json   Print the plan as JSON
  -h, --help   Show this help
`;

/** What `hako plan` was asked to do. */
export interface PlanArgs {
  readonly help: boolean;
  readonly json: boolean;
  readonly file: string | undefined;
  readonly args: readonly string[];
}

/**
 * Parses `hako plan`'s arguments (pure).
 * @throws {UsageError} For an unknown option or a missing file.
 */
export function parsePlanArgs(argv: readonly string[]): PlanArgs {
  // Options end at the spec file: what follows it goes to the spec (its args).
  const { values, positionals } = parseArgs(argv, {
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, true);
  const [file, ...args] = positionals;
  if (values.help) return { help: true, json: values.json === true, file, args };
  if (file === undefined) throw new UsageError("a spec file is required");
  nonEmpty(file, "the spec file's path");
  return { help: false, json: values.json === true, file, args };
}

/** Runs `hako plan`. */
export async function main(argv: readonly string[]): Promise<number | undefined> {
  const a = parsePlanArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { runScript } = await import("../runner/run_script.ts");
  return await runScript({
    script: a.file!,
    args: a.args,
    onExports: async (exports) => {
      const { specFromExports } = await import("../runner/spec_module.ts");
      const { planContainer, planText } = await import("../container/plan.ts");
      const { default: process } = await import("node:process");
      const spec = await specFromExports(exports, process.env, a.args);
      if (!spec) {
        h.stderr(`hako plan: ${a.file} is not a spec module (its default export is not a container spec)\n`);
        return 1;
      }
      const plan = planContainer(spec);
      h.stdout(a.json ? `${JSON.stringify(plan, null, 2)}\n` : planText(plan));
      return 0;
    },
  });
}
