/**
 * Several controllers under one cgroup name, created, joined and deleted together
 * ({@link Group}) — what a container needs.
 *
 * @example
 * ```ts ignore
 * using g = new Cgroup.Group("hako/web-1", {
 *   cpu: { quotaUs: 30_000, periodUs: 100_000 },
 *   memory: { limit: "256M", swap: 0 },
 *   pids: { max: 100 },
 *   devices: [], // runc's default device allowlist, nothing added
 * });
 * g.create();
 * const pid = Process.fork(() => {
 *   g.attach();
 *   Process.exec("httpd", "-f");
 * });
 * ```
 * @module
 */
import { ConfigError } from "../errors.ts";
import {
  type CgroupCreateOptions,
  type CgroupOptions,
  Controller,
  type ControllerKind,
  type DeleteOptions,
  type PlanContext,
  type Write,
} from "./controller.ts";
import { CPU, CPUACCT, type CpuStats } from "./cpu.ts";
import { CPUSET, type CpusetStats } from "./cpuset.ts";
import { type DeviceRule, Devices, type DevicesStats, resolveDeviceRules, withDefaultDeviceRules } from "./devices.ts";
import { Hugetlb, type HugetlbStats } from "./hugetlb.ts";
import { IO, type IoStats } from "./io.ts";
import { Memory, type MemoryStats } from "./memory.ts";
import { Pids, type PidsStats } from "./pids.ts";
import type { ByteSize } from "./values.ts";
import { assertValidName } from "./_name.ts";

/** What a {@link Group} limits: the container spec's `cgroup` section. */
export interface GroupSpec {
  /** CPU bandwidth (`quotaUs` per `periodUs`) and weight (`weight` v2 units, or `shares` v1 units). */
  readonly cpu?: {
    readonly quotaUs?: number | "max";
    readonly periodUs?: number;
    readonly weight?: number;
    readonly shares?: number;
  };
  /** CPUs and memory nodes. */
  readonly cpuset?: { readonly cpus?: string; readonly mems?: string };
  /** Memory limit and swap on top of it. */
  readonly memory?: { readonly limit?: ByteSize; readonly swap?: ByteSize };
  /** Process count limit. */
  readonly pids?: { readonly max?: number | "max" };
  /** IO weight and per-device throttles. */
  readonly io?: {
    readonly weight?: number;
    readonly readBps?: Readonly<Record<string, number | "max">>;
    readonly writeBps?: Readonly<Record<string, number | "max">>;
    readonly readIops?: Readonly<Record<string, number | "max">>;
    readonly writeIops?: Readonly<Record<string, number | "max">>;
  };
  /**
   * Huge page limits by page size as the kernel names them (`{ "2MB": "64M", "1GB": 0 }`), on the
   * hugetlb controller (OCI's `hugepageLimits`).
   */
  readonly hugetlb?: Readonly<Record<string, ByteSize>>;
  /**
   * A device allowlist: runc's default (`DEFAULT_DEVICE_RULES`: mknod of any node, read and
   * write only to null, zero, full, random, urandom, tty, ptmx, pts and tun) with these rules
   * before it, as runc orders them (OCI's `linux.resources.devices`). Given (even empty), the
   * group gets the `devices` controller on v1 or a BPF device program on v2; absent, neither.
   */
  readonly devices?: readonly DeviceRule[];
  /** Also account CPU time in the cpuacct controller (v1; implied by `cpu`). */
  readonly cpuacct?: boolean;
  /** Raw control files (`{ "cpu.cfs_quota_us": 30000 }`), routed to the controller their prefix names. */
  readonly raw?: Readonly<Record<string, string | number>>;
  /** Ignored here (the constructor's first argument names the group); allowed so a container spec's section fits. */
  readonly name?: string;
}

/** The statistics of every controller in a {@link Group}. */
export interface GroupStats {
  /** From the cpu (or cpuacct) controller. */
  readonly cpu?: CpuStats;
  /** From the cpuset controller. */
  readonly cpuset?: CpusetStats;
  /** From the memory controller. */
  readonly memory?: MemoryStats;
  /** From the pids controller. */
  readonly pids?: PidsStats;
  /** From the io/blkio controller. */
  readonly io?: IoStats;
  /** From the hugetlb controller, by page size. */
  readonly hugetlb?: HugetlbStats;
  /** From the devices controller (v1) or the attached device programs (v2). */
  readonly devices?: DevicesStats;
}

const CORE_KIND: ControllerKind = { label: "cgroup", v1: [], v2: null, prefixes: { 1: [], 2: [] } };

/** A v2 cgroup without controllers (core files only): what an empty Group is. */
class Core extends Controller<Record<string, never>> {
  constructor(name: string, options: CgroupOptions) {
    super(CORE_KIND, name, options);
  }
  protected plan(_ctx: PlanContext): Write[] {
    return [];
  }
  stats(): Record<string, never> {
    this.assertExists();
    return {};
  }
}

const SECTIONS = ["cpu", "cpuset", "memory", "pids", "io", "hugetlb", "cpuacct", "devices", "raw", "name"] as const;
const RAW_ROUTE: Readonly<Record<string, "cpu" | "cpuacct" | "cpuset" | "memory" | "pids" | "io" | "hugetlb">> = {
  hugetlb: "hugetlb",
  cpu: "cpu",
  cpuacct: "cpuacct",
  cpuset: "cpuset",
  memory: "memory",
  pids: "pids",
  io: "io",
  blkio: "io",
};

/** Sets `obj[key] = value`, turning the controller's field path into the spec's (`cgroup.cpu.quotaUs`). */
function assign(section: string, key: string, apply: () => void): void {
  try {
    apply();
  } catch (e) {
    if (e instanceof ConfigError) {
      const bare = e.path && e.message.startsWith(`${e.path}: `) ? e.message.slice(e.path.length + 2) : e.message;
      throw new ConfigError(`cgroup.${section}.${key}`, bare);
    }
    throw e;
  }
}

/** Checks that a spec section has only the keys it may have. */
function onlyKeys(section: string, value: unknown, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(section ? `cgroup.${section}` : "cgroup", "must be an object");
  }
  for (const k of Object.keys(value)) {
    if (!keys.includes(k)) {
      throw new ConfigError(
        section ? `cgroup.${section}.${k}` : `cgroup.${k}`,
        `unknown setting (known: ${keys.join(", ")})`,
      );
    }
  }
  return value as Record<string, unknown>;
}

/**
 * One cgroup name across several controllers. On v2 they share one directory; on v1 each lives
 * in its own hierarchy. Every method acts on all of them; create() undoes itself on failure.
 *
 * @example
 * ```ts ignore
 * const g = new Cgroup.Group("web", { pids: { max: 50 }, memory: { limit: "64M" } });
 * g.create();
 * g.attach(pid);
 * console.log(g.stats().memory?.current);
 * g.delete({ kill: true });
 * ```
 */
export class Group {
  /** The cgroup's name. */
  readonly name: string;
  /** The cpu controller, when the spec has `cpu`. */
  readonly cpu?: CPU;
  /** The cpuacct controller, when the spec has `cpuacct: true`. */
  readonly cpuacct?: CPUACCT;
  /** The cpuset controller, when the spec has `cpuset`. */
  readonly cpuset?: CPUSET;
  /** The memory controller, when the spec has `memory`. */
  readonly memory?: Memory;
  /** The pids controller, when the spec has `pids`. */
  readonly pids?: Pids;
  /** The io/blkio controller, when the spec has `io`. */
  readonly io?: IO;
  /** The hugetlb controller, when the spec has `hugetlb`. */
  readonly hugetlb?: Hugetlb;
  /** The device allowlist, when the spec has `devices`. */
  readonly devices?: Devices;
  readonly #controllers: Controller<unknown>[];

  /**
   * Names a cgroup in every controller the spec uses, checking the whole spec; nothing is touched until create().
   *
   * @param name The cgroup's name, relative to the root (`"hako/web-1"`).
   * @param spec The limits; an empty spec makes a plain v2 cgroup (no controllers).
   * @param options Root and version overrides, for every controller.
   * @throws {ConfigError} When the name, a setting or a raw key is invalid (the path names it:
   *   `cgroup.memory.limit`); nothing is touched.
   */
  constructor(name: string, spec: GroupSpec = {}, options: CgroupOptions = {}) {
    assertValidName(name);
    onlyKeys("", spec, SECTIONS);
    this.name = name;
    const made: Record<string, Controller<unknown>> = {};
    const get = <T extends Controller<unknown>>(section: string, make: () => T): T => (made[section] ??= make()) as T;
    if (spec.cpu) {
      const s = onlyKeys("cpu", spec.cpu, ["quotaUs", "periodUs", "weight", "shares"]);
      const cpu = get("cpu", () => new CPU(name, options));
      if (s.quotaUs !== undefined) assign("cpu", "quotaUs", () => cpu.cfsQuotaUs = s.quotaUs as number);
      if (s.periodUs !== undefined) assign("cpu", "periodUs", () => cpu.cfsPeriodUs = s.periodUs as number);
      if (s.shares !== undefined) assign("cpu", "shares", () => cpu.shares = s.shares as number);
      if (s.weight !== undefined) assign("cpu", "weight", () => cpu.weight = s.weight as number);
    }
    if (spec.cpuacct) get("cpuacct", () => new CPUACCT(name, options));
    if (spec.cpuset) {
      const s = onlyKeys("cpuset", spec.cpuset, ["cpus", "mems"]);
      const cs = get("cpuset", () => new CPUSET(name, options));
      if (s.cpus !== undefined) assign("cpuset", "cpus", () => cs.cpus = s.cpus as string);
      if (s.mems !== undefined) assign("cpuset", "mems", () => cs.mems = s.mems as string);
    }
    if (spec.memory) {
      const s = onlyKeys("memory", spec.memory, ["limit", "swap"]);
      const mem = get("memory", () => new Memory(name, options));
      if (s.limit !== undefined) assign("memory", "limit", () => mem.limit = s.limit as ByteSize);
      if (s.swap !== undefined) assign("memory", "swap", () => mem.swap = s.swap as ByteSize);
    }
    if (spec.pids) {
      const s = onlyKeys("pids", spec.pids, ["max"]);
      const pids = get("pids", () => new Pids(name, options));
      if (s.max !== undefined) assign("pids", "max", () => pids.max = s.max as number);
    }
    if (spec.io) {
      const s = onlyKeys("io", spec.io, ["weight", "readBps", "writeBps", "readIops", "writeIops"]);
      const io = get("io", () => new IO(name, options));
      if (s.weight !== undefined) assign("io", "weight", () => io.weight = s.weight as number);
      for (const k of ["readBps", "writeBps", "readIops", "writeIops"] as const) {
        if (s[k] !== undefined) assign("io", k, () => io[k] = s[k] as Record<string, number>);
      }
    }
    if (spec.hugetlb !== undefined) {
      const huge = get("hugetlb", () => new Hugetlb(name, options));
      assign("hugetlb", "limits", () => huge.limits = spec.hugetlb);
    }
    for (const [key, value] of Object.entries(spec.raw ?? {})) {
      const section = RAW_ROUTE[key.split(".")[0]!];
      const target = section
        ? get(
          section,
          () =>
            new ({ cpu: CPU, cpuacct: CPUACCT, cpuset: CPUSET, memory: Memory, pids: Pids, io: IO, hugetlb: Hugetlb })[
              section
            ](
              name,
              options,
            ),
        )
        : Object.values(made)[0] ?? get("core", () => new Core(name, options));
      assign("raw", JSON.stringify(key), () => target.set(key, value));
    }
    if (spec.devices !== undefined) {
      // Checked with the spec's field paths (cgroup.devices[2].access) before anything exists;
      // made last, so on v2 the directory is there (and the limits written) when the program is attached.
      resolveDeviceRules(spec.devices, { path: "cgroup.devices", defaults: true });
      get("devices", () => new Devices(name, options)).rules = withDefaultDeviceRules(spec.devices);
    }
    if (Object.keys(made).length === 0) get("core", () => new Core(name, options));
    this.#controllers = Object.values(made);
    this.cpu = made.cpu as CPU | undefined;
    this.cpuacct = made.cpuacct as CPUACCT | undefined;
    this.cpuset = made.cpuset as CPUSET | undefined;
    this.memory = made.memory as Memory | undefined;
    this.pids = made.pids as Pids | undefined;
    this.io = made.io as IO | undefined;
    this.hugetlb = made.hugetlb as Hugetlb | undefined;
    this.devices = made.devices as Devices | undefined;
  }

  /** The controllers, in creation order. */
  get controllers(): readonly Controller<unknown>[] {
    return [...this.#controllers];
  }

  /** Every directory the group occupies (one on v2). */
  get paths(): string[] {
    return [...new Set(this.#controllers.flatMap((c) => c.paths))];
  }

  /**
   * Creates the cgroup in every controller and writes the settings; on failure, deletes what it
   * created and rethrows.
   *
   * @param options `exclusive`: the cgroup must not exist yet in any controller (a container's).
   * @returns this, for chaining.
   * @throws {ConfigError} When a setting cannot be expressed on this version.
   * @throws {SyscallError} When a mkdir or write fails.
   */
  create(options: CgroupCreateOptions = {}): this {
    const done: Controller<unknown>[] = [];
    const existed = this.#controllers.map((c) => c.exists());
    try {
      for (const c of this.#controllers) {
        c.create(options);
        done.push(c);
      }
    } catch (e) {
      for (const [i, c] of [...done].entries()) {
        if (existed[i]) continue;
        try {
          c.delete();
        } catch { /* best effort: the original error matters */ }
      }
      throw e;
    }
    return this;
  }

  /**
   * Every controller's planned control-file writes ({@link Controller.plannedWrites}), file to
   * value; nothing is touched.
   */
  plannedWrites(): Map<string, string> {
    return new Map(this.#controllers.flatMap((c) => c.plannedWrites().map((w) => [w.file, w.value] as const)));
  }

  /**
   * Re-writes the settings of every controller.
   * @returns this, for chaining.
   * @throws {SyscallError} When a write fails.
   */
  modify(): this {
    for (const c of this.#controllers) c.modify();
    return this;
  }

  /**
   * Moves a process into the group in every controller (synchronous: fine in a forked child).
   *
   * @param pid The process (default: the calling process).
   * @param options `skip`: directories not written (see `Controller.attach`).
   * @returns this, for chaining.
   * @throws {SyscallError} When a write to cgroup.procs fails.
   */
  attach(pid?: number, options: { readonly skip?: readonly string[] } = {}): this {
    for (const c of this.#controllers) c.attach(pid, options);
    return this;
  }

  /**
   * Whether the group exists.
   * @returns True when the cgroup exists in every controller.
   */
  exists(): boolean {
    return this.#controllers.every((c) => c.exists());
  }

  /**
   * The processes in the group (from its first controller).
   * @returns Their pids.
   * @throws {SyscallError} When the cgroup does not exist.
   */
  procs(): number[] {
    return this.#controllers[0]!.procs();
  }

  /**
   * The statistics of each controller present.
   * @returns `{ cpu?, cpuset?, memory?, pids?, io?, devices? }`.
   * @throws {SyscallError} When the cgroup does not exist.
   */
  stats(): GroupStats {
    return {
      ...(this.cpu || this.cpuacct ? { cpu: (this.cpu ?? this.cpuacct)!.stats() } : {}),
      ...(this.cpuset ? { cpuset: this.cpuset.stats() } : {}),
      ...(this.memory ? { memory: this.memory.stats() } : {}),
      ...(this.pids ? { pids: this.pids.stats() } : {}),
      ...(this.io ? { io: this.io.stats() } : {}),
      ...(this.hugetlb ? { hugetlb: this.hugetlb.stats() } : {}),
      ...(this.devices ? { devices: this.devices.stats() } : {}),
    };
  }

  /**
   * Deletes the cgroup from every controller (idempotent); see {@link Controller.delete}.
   *
   * @param options `kill` and `timeoutMs`.
   * @throws {SyscallError} When a cgroup cannot be removed; the others are still tried.
   */
  delete(options: DeleteOptions = {}): void {
    let first: unknown;
    for (const c of this.#controllers) {
      try {
        c.delete(options);
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  }

  /** `using` support: deletes the group, killing whatever is still in it. */
  [Symbol.dispose](): void {
    this.delete({ kill: true });
  }
}
