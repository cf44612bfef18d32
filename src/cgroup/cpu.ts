/**
 * CPU bandwidth and weight ({@link CPU}), and CPU accounting ({@link CPUACCT}).
 *
 * @example Limit a child to 20% of one CPU
 * ```ts ignore
 * import { Cgroup, Process } from "./mod.ts";
 * const rate = new Cgroup.CPU("hako/web-1");
 * rate.cfsQuotaUs = 20_000;
 * rate.cfsPeriodUs = 100_000;
 * rate.create();
 * const pid = Process.fork(() => {
 *   rate.attach();
 *   Process.exec("stress", "-c", "1");
 * });
 * ```
 * @module
 */
import {
  type CgroupOptions,
  Controller,
  type ControllerKind,
  parseFlatKeyed,
  type PlanContext,
  type Write,
} from "./controller.ts";
import { type Limit, parseInteger, sharesToWeight, v1Limit, weightToShares } from "./values.ts";

/** CPU time used and throttling, the same on v1 and v2 (fields the kernel does not report are 0). */
export interface CpuStats {
  /** CPU time used by the cgroup's processes, in microseconds. */
  readonly usageUsec: number;
  /** …of which in user mode. */
  readonly userUsec: number;
  /** …of which in the kernel. */
  readonly systemUsec: number;
  /** Enforcement periods that have elapsed (with a quota set). */
  readonly nrPeriods: number;
  /** Periods in which the cgroup was throttled. */
  readonly nrThrottled: number;
  /** Total time throttled, in microseconds. */
  readonly throttledUsec: number;
}

const CPU_KIND: ControllerKind = {
  label: "cpu",
  v1: ["cpu", "cpuacct"],
  v2: "cpu",
  prefixes: { 1: ["cpu", "cpuacct"], 2: ["cpu"] },
};

const CPUACCT_KIND: ControllerKind = {
  label: "cpuacct",
  v1: ["cpuacct"],
  v2: null,
  prefixes: { 1: ["cpuacct"], 2: ["cpu"] },
};

/** USER_HZ: the unit of v1's cpuacct.stat. */
const USER_HZ = 100;

/** Reads CPU statistics through a controller's readFile (shared by CPU and CPUACCT). */
function readCpuStats(version: 1 | 2, read: (file: string, subsystem?: string) => string | null): CpuStats {
  if (version === 2) {
    const s = parseFlatKeyed(read("cpu.stat"));
    return {
      usageUsec: s.usage_usec ?? 0,
      userUsec: s.user_usec ?? 0,
      systemUsec: s.system_usec ?? 0,
      nrPeriods: s.nr_periods ?? 0,
      nrThrottled: s.nr_throttled ?? 0,
      throttledUsec: s.throttled_usec ?? 0,
    };
  }
  const s = parseFlatKeyed(read("cpu.stat", "cpu"));
  const ns = (file: string) => {
    const t = read(file, "cpuacct");
    return t === null || !/^\d+\s*$/.test(t) ? null : Math.round(Number(t.trim()) / 1000);
  };
  let user = ns("cpuacct.usage_user");
  let system = ns("cpuacct.usage_sys");
  if (user === null || system === null) {
    const ticks = parseFlatKeyed(read("cpuacct.stat", "cpuacct"));
    user = Math.round(((ticks.user ?? 0) * 1e6) / USER_HZ);
    system = Math.round(((ticks.system ?? 0) * 1e6) / USER_HZ);
  }
  return {
    usageUsec: ns("cpuacct.usage") ?? user + system,
    userUsec: user,
    systemUsec: system,
    nrPeriods: s.nr_periods ?? 0,
    nrThrottled: s.nr_throttled ?? 0,
    throttledUsec: Math.round((s.throttled_time ?? 0) / 1000),
  };
}

/**
 * A cgroup of the `cpu` controller: CFS bandwidth (quota per period) and relative weight.
 *
 * v1: `cpu.cfs_quota_us`, `cpu.cfs_period_us`, `cpu.shares` (when cpuacct is mounted apart, the
 * cgroup is mirrored there so {@link CPU.stats} has usage, as on the usual `cpu,cpuacct` mount).
 * v2: `cpu.max` and `cpu.weight`. `shares` and `weight` are converted to whichever the kernel has.
 *
 * @example 30% of one CPU, hacorb spelling
 * ```ts ignore
 * const rate = new Cgroup.CPU("chikuwait");
 * rate.cfs_quota_us = 30_000;
 * rate.create();
 * rate.attach();
 * ```
 */
export class CPU extends Controller<CpuStats> {
  #quota: Limit | undefined;
  #period: number | undefined;
  #shares: number | undefined;
  #weight: number | undefined;

  /**
   * Names a cpu cgroup; nothing is touched until create().
   *
   * @param name The cgroup's name, relative to the root (`"hako/web-1"`).
   * @param options Root and version overrides.
   * @throws {ConfigError} When the name or options are invalid.
   */
  constructor(name: string, options: CgroupOptions = {}) {
    super(CPU_KIND, name, options);
  }

  /** Run time allowed per period, in µs (≥ 1000), or `"max"` (or -1) for no limit. */
  get cfsQuotaUs(): Limit | undefined {
    return this.#quota;
  }
  set cfsQuotaUs(value: number | "max" | undefined) {
    this.#quota = value === undefined
      ? undefined
      : parseInteger(value, this.field("cfsQuotaUs"), { min: 1000, unit: "microseconds" });
  }

  /** The period the quota applies to, in µs (1000..1000000; the kernel's default is 100000). */
  get cfsPeriodUs(): number | undefined {
    return this.#period;
  }
  set cfsPeriodUs(value: number | undefined) {
    this.#period = value === undefined ? undefined : parseInteger(value, this.field("cfsPeriodUs"), {
      min: 1000,
      max: 1_000_000,
      unit: "microseconds",
      unlimited: false,
    }) as number;
  }

  /** v1 relative weight (2..262144, default 1024); converted to `cpu.weight` on v2. */
  get shares(): number | undefined {
    return this.#shares ?? (this.#weight === undefined ? undefined : weightToShares(this.#weight));
  }
  set shares(value: number | undefined) {
    this.#weight = undefined;
    this.#shares = value === undefined
      ? undefined
      : parseInteger(value, this.field("shares"), { min: 2, max: 262144, unlimited: false }) as number;
  }

  /** v2 relative weight (1..10000, default 100); converted to `cpu.shares` on v1. */
  get weight(): number | undefined {
    return this.#weight ?? (this.#shares === undefined ? undefined : sharesToWeight(this.#shares));
  }
  set weight(value: number | undefined) {
    this.#shares = undefined;
    this.#weight = value === undefined
      ? undefined
      : parseInteger(value, this.field("weight"), { min: 1, max: 10000, unlimited: false }) as number;
  }

  /** hacorb's name for {@link CPU.cfsQuotaUs}. */
  get cfs_quota_us(): Limit | undefined {
    return this.cfsQuotaUs;
  }
  set cfs_quota_us(value: number | "max" | undefined) {
    this.cfsQuotaUs = value;
  }

  /** hacorb's name for {@link CPU.cfsPeriodUs}. */
  get cfs_period_us(): number | undefined {
    return this.cfsPeriodUs;
  }
  set cfs_period_us(value: number | undefined) {
    this.cfsPeriodUs = value;
  }

  /** The writes for the attributes set so far. */
  protected plan(ctx: PlanContext): Write[] {
    const writes: Write[] = [];
    if (ctx.version === 1) {
      if (this.#period !== undefined) {
        writes.push({
          file: "cpu.cfs_period_us",
          value: String(this.#period),
          retryAfterNext: this.#quota !== undefined,
        });
      }
      if (this.#quota !== undefined) writes.push({ file: "cpu.cfs_quota_us", value: v1Limit(this.#quota) });
      if (this.shares !== undefined) writes.push({ file: "cpu.shares", value: String(this.shares) });
    } else {
      if (this.#quota !== undefined || this.#period !== undefined) {
        const [curQuota, curPeriod] = (ctx.read("cpu.max") ?? "max 100000").trim().split(/\s+/);
        const quota = this.#quota ?? curQuota ?? "max";
        const period = this.#period ?? curPeriod ?? "100000";
        writes.push({ file: "cpu.max", value: `${quota} ${period}` });
      }
      if (this.weight !== undefined) writes.push({ file: "cpu.weight", value: String(this.weight) });
    }
    return writes;
  }

  /**
   * CPU time used and throttling.
   *
   * @returns The statistics (usage in µs; throttling counts).
   * @throws {SyscallError} When the cgroup does not exist.
   */
  stats(): CpuStats {
    this.assertExists();
    return readCpuStats(this.version, (f, s) => this.readFile(f, s));
  }
}

/**
 * CPU accounting. v1: the `cpuacct` controller (`cpuacct.usage`, `cpuacct.stat`); v2 has no such
 * controller, and this reads the core `cpu.stat` of the cgroup instead (nothing to enable).
 *
 * @example
 * ```ts ignore
 * const acct = new Cgroup.CPUACCT("web");
 * acct.create();
 * acct.attach(pid);
 * console.log(acct.stats().usageUsec);
 * ```
 */
export class CPUACCT extends Controller<CpuStats> {
  /**
   * Names a cpuacct cgroup; nothing is touched until create().
   *
   * @param name The cgroup's name, relative to the root.
   * @param options Root and version overrides.
   * @throws {ConfigError} When the name or options are invalid.
   */
  constructor(name: string, options: CgroupOptions = {}) {
    super(CPUACCT_KIND, name, options);
  }

  /** Nothing to write: accounting has no settings. */
  protected plan(_ctx: PlanContext): Write[] {
    return [];
  }

  /**
   * hacorb's `usage`: the CPU time used so far, in nanoseconds (read now).
   * @throws {SyscallError} When the cgroup does not exist.
   */
  get usage(): number {
    return this.stats().usageUsec * 1000;
  }

  /**
   * CPU time used (throttling fields are 0 on v1, where they belong to the cpu controller).
   *
   * @returns The statistics.
   * @throws {SyscallError} When the cgroup does not exist.
   */
  stats(): CpuStats {
    this.assertExists();
    return readCpuStats(this.version, (f, s) => this.readFile(f, s));
  }
}
