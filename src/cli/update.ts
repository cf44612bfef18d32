/**
 * `hako update [--memory S] [--cpus N] [--pids-limit N] NAME…`: changes a running container's
 * limits live (docker update, haconiwa's `reload`), through the cgroup controllers' `modify()`,
 * and records them in its spec (so `inspect` shows them).
 * @module
 */
import { nonEmpty, parseArgs, stringOption, UsageError } from "./_args.ts";
import { CPU_PERIOD_US, parseCpus, parseMemory, parsePidsLimit } from "./_docker.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako update [-m SIZE] [--cpus N] [--pids-limit N] <name>...

Changes the limits of running containers at once, as docker update (haconiwa's reload): the new
values are written to each container's cgroup and recorded in its spec ('hako inspect' shows
them). A container gets a cgroup only when it was made with a limit (a spec's cgroup, or run's
-m, --cpus or --pids-limit): one without cannot be updated. Prints each name updated.

Options:
  -m, --memory <size>    Memory limit (512m, 1g; -1: none). On cgroup v1 a limit below what the
                           container uses fails (EBUSY)
      --cpus <n>         CPU limit in CPUs (a quota over docker's 100 ms period)
      --pids-limit <n>   At most n processes and threads (0 or -1: no limit)
  -h, --help             Show this help

Exit status: 0, or 1 when a container is unknown, not running, has no cgroup, or refuses a limit.
`;

/** What `hako update` was asked to do. */
export interface UpdateArgs {
  readonly help: boolean;
  readonly names: readonly string[];
  readonly memory?: string;
  readonly cpus?: number;
  readonly pidsLimit?: number | "max";
}

/** Parses `hako update`'s arguments (pure). @throws {UsageError} For no name, no limit or a bad value. */
export function parseUpdateArgs(argv: readonly string[]): UpdateArgs {
  const { values, positionals } = parseArgs(argv, {
    memory: { type: "string", short: "m" },
    cpus: { type: "string" },
    "pids-limit": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, names: [] };
  if (positionals.length === 0) throw new UsageError("a container name is required");
  for (const n of positionals) nonEmpty(n, "a container name");
  const memory = stringOption(values, "memory"), cpus = stringOption(values, "cpus");
  const pids = stringOption(values, "pids-limit");
  if (memory === undefined && cpus === undefined && pids === undefined) {
    throw new UsageError("nothing to change: give --memory, --cpus or --pids-limit");
  }
  return {
    help: false,
    names: [...positionals],
    ...(memory !== undefined ? { memory: parseMemory(memory) } : {}),
    ...(cpus !== undefined ? { cpus: parseCpus(cpus) } : {}),
    ...(pids !== undefined ? { pidsLimit: parsePidsLimit(pids) } : {}),
  };
}

/** Runs `hako update`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseUpdateArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { ContainerStateError, StateStore, isRunning } = await import("../container/state.ts");
  const { CPU, Memory, Pids } = await import("../cgroup/mod.ts");
  const store = new StateStore();
  let code = 0;
  for (const name of a.names) {
    try {
      const r = store.tryRead(name);
      if (!r) throw new ContainerStateError(`no container named ${name} (or its record is damaged: see 'hako ps')`);
      if (r.state !== "running" || !isRunning(r.init)) throw new ContainerStateError(`${name} is not running`);
      if (!r.cgroup) {
        throw new ContainerStateError(
          `${name} has no cgroup (it was made without limits): give it one when it starts (-m, --cpus, --pids-limit)`,
        );
      }
      // The controllers check each value (a ConfigError names it) before anything is written.
      const memory = a.memory !== undefined ? new Memory(r.cgroup) : undefined;
      if (memory) memory.limit = a.memory === "-1" ? "max" : a.memory;
      const cpu = a.cpus !== undefined ? new CPU(r.cgroup) : undefined;
      if (cpu) {
        cpu.cfsPeriodUs = CPU_PERIOD_US;
        cpu.cfsQuotaUs = Math.round(a.cpus! * CPU_PERIOD_US);
      }
      const pids = a.pidsLimit !== undefined ? new Pids(r.cgroup) : undefined;
      if (pids) pids.max = a.pidsLimit;
      memory?.modify();
      cpu?.modify();
      pids?.modify();
      store.update(name, (x) => {
        const cg = x.spec.cgroup ?? {};
        const cgroup = {
          ...cg,
          ...(a.memory !== undefined ? { memory: { ...cg.memory, limit: a.memory === "-1" ? "max" : a.memory } } : {}),
          ...(a.cpus !== undefined
            ? { cpu: { ...cg.cpu, quotaUs: Math.round(a.cpus * CPU_PERIOD_US), periodUs: CPU_PERIOD_US } }
            : {}),
          ...(a.pidsLimit !== undefined ? { pids: { ...cg.pids, max: a.pidsLimit } } : {}),
        };
        return { ...x, spec: { ...x.spec, cgroup } };
      });
      h.stdout(`${name}\n`);
    } catch (e) {
      const known = ["ContainerStateError", "ConfigError", "SyscallError"].includes((e as Error)?.name);
      if (!known) throw e;
      code = 1;
      h.stderr(`hako update: ${(e as Error).message}\n`);
    }
  }
  return code;
}
