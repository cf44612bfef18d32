/**
 * A limit on the number of processes and threads ({@link Pids}): the fork-bomb guard.
 *
 * @example
 * ```ts ignore
 * using pids = new Cgroup.Pids("web");
 * pids.max = 64;
 * pids.create();
 * ```
 * @module
 */
import {
  type CgroupOptions,
  Controller,
  type ControllerKind,
  parseFlatKeyed,
  parseNumberOrMax,
  type PlanContext,
  type Write,
} from "./controller.ts";
import { type Limit, parseInteger } from "./values.ts";

/** Process counts of a pids cgroup. */
export interface PidsStats {
  /** Processes and threads in the cgroup and below now. */
  readonly current: number;
  /** The limit, or null for none. */
  readonly max: number | null;
  /** How many forks/clones failed because of the limit (`pids.events` max). */
  readonly failedForks: number;
}

const PIDS_KIND: ControllerKind = {
  label: "pids",
  v1: ["pids"],
  v2: "pids",
  prefixes: { 1: ["pids"], 2: ["pids"] },
};

/**
 * A cgroup of the `pids` controller (`pids.max` on both versions). Forks beyond the limit fail
 * with EAGAIN inside the cgroup.
 *
 * @example
 * ```ts ignore
 * const pids = new Cgroup.Pids("web");
 * pids.max = 100;
 * pids.create();
 * ```
 */
export class Pids extends Controller<PidsStats> {
  #max: Limit | undefined;

  /**
   * Names a pids cgroup; nothing is touched until create().
   *
   * @param name The cgroup's name, relative to the root.
   * @param options Root and version overrides.
   * @throws {ConfigError} When the name or options are invalid.
   */
  constructor(name: string, options: CgroupOptions = {}) {
    super(PIDS_KIND, name, options);
  }

  /** The most processes and threads at once (≥ 0), or `"max"` (or -1) for no limit. */
  get max(): Limit | undefined {
    return this.#max;
  }
  set max(value: number | "max" | undefined) {
    this.#max = value === undefined ? undefined : parseInteger(value, this.field("max"), { min: 0, unit: "tasks" });
  }

  /** The writes for the attributes set so far. */
  protected plan(_ctx: PlanContext): Write[] {
    return this.#max === undefined ? [] : [{ file: "pids.max", value: String(this.#max) }];
  }

  /**
   * Current count, limit and failed forks.
   *
   * @returns The statistics.
   * @throws {SyscallError} When the cgroup does not exist.
   */
  stats(): PidsStats {
    this.assertExists();
    return {
      current: Number((this.readFile("pids.current") ?? "0").trim()) || 0,
      max: parseNumberOrMax(this.readFile("pids.max")),
      failedForks: parseFlatKeyed(this.readFile("pids.events")).max ?? 0,
    };
  }
}

/** hacorb-style upper-case name for {@link Pids}. */
export { Pids as PIDS };
