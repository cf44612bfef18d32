/**
 * `hako plan FILE`: prints, without touching anything, the exact ordered steps and kernel calls
 * a spec module's container would make — on the host (rootfs, cgroup writes, clone flags, id maps)
 * and in the child (each named setup step with its calls) — or `--json`.
 * @module
 */
import { parseArgs, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako plan [--json] <spec.ts> [args...]

Prints the ordered steps and kernel calls that running the container of <spec.ts> would make,
without making any of them: the rootfs, the cgroup writes, the clone flags and id maps, then each
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
  const i = argv.findIndex((a) => !a.startsWith("-"));
  const opts = i < 0 ? argv : argv.slice(0, i);
  const { values } = parseArgs(opts, { json: { type: "boolean" }, help: { type: "boolean", short: "h" } });
  const file = i < 0 ? undefined : argv[i];
  if (!values.help && file === undefined) throw new UsageError("a spec file is required");
  return { help: values.help === true, json: values.json === true, file, args: i < 0 ? [] : argv.slice(i + 1) };
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
