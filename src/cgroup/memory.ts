/**
 * Memory and swap limits ({@link Memory}).
 *
 * @example 256 MiB, no swap
 * ```ts ignore
 * const mem = new Cgroup.Memory("web");
 * mem.limit = "256M";
 * mem.swap = 0;
 * mem.create();
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
import { ConfigError } from "../errors.ts";
import { type ByteSize, type Limit, parseByteSize, v1Limit } from "./values.ts";

/** Memory use of a cgroup, the same on v1 and v2. */
export interface MemoryStats {
  /** Memory charged to the cgroup now, in bytes. */
  readonly current: number;
  /** The highest `current` seen (v2 before memory.peak: `current`). */
  readonly peak: number;
  /** The memory limit in bytes, or null for none. */
  readonly limit: number | null;
  /** Swap used now, in bytes (0 when not accounted). */
  readonly swapCurrent: number;
  /** Processes the OOM killer killed in the cgroup. */
  readonly oomKills: number;
  /** Times usage hit the limit (v1 `memory.failcnt`, v2 `memory.events` max). */
  readonly limitHits: number;
}

/**
 * How many processes the OOM killer killed in a cgroup (pure), from the text of its v2
 * `memory.events` or its v1 `memory.oom_control` (both flat-keyed, both say `oom_kill N`; v1 since
 * Linux 4.13). 0 when the file is missing (null) or has no such line.
 *
 * @param text The file's text.
 * @returns The count.
 * @example
 * ```ts
 * import { oomKillCount } from "./memory.ts";
 * oomKillCount("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n"); // 1
 * ```
 */
export function oomKillCount(text: string | null): number {
  return parseFlatKeyed(text).oom_kill ?? 0;
}

const MEMORY_KIND: ControllerKind = {
  label: "memory",
  v1: ["memory"],
  v2: "memory",
  prefixes: { 1: ["memory"], 2: ["memory"] },
};

/**
 * A cgroup of the `memory` controller. `limit` is `memory.limit_in_bytes` (v1) or `memory.max`
 * (v2); `swap` is the swap allowed on top of it: v2 `memory.swap.max`, and on v1, whose
 * `memory.memsw.limit_in_bytes` counts memory plus swap, `limit + swap`. When the limit is hit
 * and nothing can be reclaimed, the OOM killer kills a process in the cgroup.
 *
 * @example hacorb spelling
 * ```ts ignore
 * const mem = new Cgroup.MEMORY("web");
 * mem.limit_in_bytes = 64 * 1024 * 1024;
 * mem.create();
 * ```
 */
export class Memory extends Controller<MemoryStats> {
  #limit: Limit | undefined;
  #swap: Limit | undefined;
  #memsw: Limit | undefined;

  /**
   * Names a memory cgroup; nothing is touched until create().
   *
   * @param name The cgroup's name, relative to the root.
   * @param options Root and version overrides.
   * @throws {ConfigError} When the name or options are invalid.
   */
  constructor(name: string, options: CgroupOptions = {}) {
    super(MEMORY_KIND, name, options);
  }

  /** The memory limit: bytes, a size such as `"256M"`, or `"max"` (or -1) for none. */
  get limit(): Limit | undefined {
    return this.#limit;
  }
  set limit(value: ByteSize | undefined) {
    this.#limit = value === undefined ? undefined : parseByteSize(value, this.field("limit"));
  }

  /** Swap allowed on top of the limit (0: none), or `"max"` for no limit. On v1 needs `limit` too. */
  get swap(): Limit | undefined {
    return this.#swap;
  }
  set swap(value: ByteSize | undefined) {
    this.#memsw = undefined;
    this.#swap = value === undefined ? undefined : parseByteSize(value, this.field("swap"));
  }

  /** v1's memory + swap limit (`memory.memsw.limit_in_bytes`); on v2 written as `memsw - limit`. */
  get memswLimitInBytes(): Limit | undefined {
    return this.#memsw;
  }
  set memswLimitInBytes(value: ByteSize | undefined) {
    this.#swap = undefined;
    this.#memsw = value === undefined ? undefined : parseByteSize(value, this.field("memswLimitInBytes"));
  }

  /** hacorb's name for {@link Memory.limit}. */
  get limit_in_bytes(): Limit | undefined {
    return this.limit;
  }
  set limit_in_bytes(value: ByteSize | undefined) {
    this.limit = value;
  }

  /** hacorb's name for {@link Memory.memswLimitInBytes}. */
  get memsw_limit_in_bytes(): Limit | undefined {
    return this.memswLimitInBytes;
  }
  set memsw_limit_in_bytes(value: ByteSize | undefined) {
    this.memswLimitInBytes = value;
  }

  /** The writes for the attributes set so far. */
  protected plan(ctx: PlanContext): Write[] {
    const limit = this.#limit;
    const writes: Write[] = [];
    if (ctx.version === 1) {
      let memsw: Limit | undefined = this.#memsw;
      if (this.#swap !== undefined) {
        if (limit === undefined) {
          throw new ConfigError(
            this.field("swap"),
            "on cgroup v1 needs limit as well: memory.memsw.limit_in_bytes counts memory + swap",
          );
        }
        memsw = limit === "max" || this.#swap === "max" ? "max" : limit + this.#swap;
      }
      // The kernel wants limit ≤ memsw at every step: when raising, memsw must go first (retried).
      if (limit !== undefined) {
        writes.push({ file: "memory.limit_in_bytes", value: v1Limit(limit), retryAfterNext: memsw !== undefined });
      }
      if (memsw !== undefined) writes.push({ file: "memory.memsw.limit_in_bytes", value: v1Limit(memsw) });
      return writes;
    }
    if (limit !== undefined) writes.push({ file: "memory.max", value: String(limit) });
    let swap = this.#swap;
    if (this.#memsw !== undefined) {
      if (this.#memsw === "max") swap = "max";
      else if (limit === undefined || limit === "max" || this.#memsw < limit) {
        throw new ConfigError(
          this.field("memswLimitInBytes"),
          "on cgroup v2 becomes memory.swap.max = memsw - limit, so it needs a numeric limit no larger than itself",
        );
      } else swap = this.#memsw - limit;
    }
    if (swap !== undefined) writes.push({ file: "memory.swap.max", value: String(swap) });
    return writes;
  }

  /**
   * Usage, peak, limit, swap and OOM kills.
   *
   * @returns The statistics.
   * @throws {SyscallError} When the cgroup does not exist.
   */
  stats(): MemoryStats {
    this.assertExists();
    const num = (file: string) => parseNumberOrMax(this.readFile(file)) ?? 0;
    if (this.version === 1) {
      const current = num("memory.usage_in_bytes");
      const memsw = this.readFile("memory.memsw.usage_in_bytes");
      return {
        current,
        peak: num("memory.max_usage_in_bytes"),
        limit: parseNumberOrMax(this.readFile("memory.limit_in_bytes")),
        swapCurrent: memsw === null ? 0 : Math.max(0, (parseNumberOrMax(memsw) ?? 0) - current),
        oomKills: oomKillCount(this.readFile("memory.oom_control")),
        limitHits: num("memory.failcnt"),
      };
    }
    const current = num("memory.current");
    const events = parseFlatKeyed(this.readFile("memory.events"));
    const peak = this.readFile("memory.peak");
    return {
      current,
      peak: peak === null ? current : parseNumberOrMax(peak) ?? current,
      limit: parseNumberOrMax(this.readFile("memory.max")),
      swapCurrent: num("memory.swap.current"),
      oomKills: oomKillCount(this.readFile("memory.events")),
      limitHits: events.max ?? 0,
    };
  }

  /**
   * The processes the OOM killer has killed in this cgroup so far (v1 `memory.oom_control`, v2
   * `memory.events`): one file, for reading right before a cgroup is removed.
   *
   * @returns The count; 0 when the cgroup or its file is gone.
   */
  oomKills(): number {
    return oomKillCount(this.readFile(this.version === 1 ? "memory.oom_control" : "memory.events"));
  }
}

/** hacorb's upper-case name for {@link Memory}. */
export { Memory as MEMORY };
