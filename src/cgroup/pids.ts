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

/**
 * How many forks and clones a pids cgroup's limit refused (pure): the `max` line of its
 * `pids.events` (v1 and v2 alike). 0 when the file is missing (null) or has no such line.
 *
 * @param text The file's text.
 * @returns The count.
 * @example
 * ```ts
 * import { failedForkCount } from "./pids.ts";
 * failedForkCount("max 12\n"); // 12
 * ```
 */
export function failedForkCount(text: string | null): number {
  return parseFlatKeyed(text).max ?? 0;
}

/**
 * The tasks a pids cgroup counts against its limit (pure): `pids.current`, zombies and threads
 * included — what `pids.max` is compared with. Undefined when the file is missing or unreadable.
 *
 * @param text The file's text.
 * @returns The count.
 */
export function pidsCurrentCount(text: string | null): number | undefined {
  const t = text?.trim();
  return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
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
      current: pidsCurrentCount(this.readFile("pids.current")) ?? 0,
      max: parseNumberOrMax(this.readFile("pids.max")),
      failedForks: failedForkCount(this.readFile("pids.events")),
    };
  }

  /**
   * The forks and clones the limit has refused so far (`pids.events` max): one file, for reading
   * right before a cgroup is removed.
   *
   * @returns The count; 0 when the cgroup or its file is gone.
   */
  failedForks(): number {
    return failedForkCount(this.readFile("pids.events"));
  }
}

/** hacorb-style upper-case name for {@link Pids}. */
export { Pids as PIDS };
