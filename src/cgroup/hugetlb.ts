/**
 * Limits on huge pages by page size ({@link Hugetlb}): `hugetlb.<size>.limit_in_bytes` on v1,
 * `hugetlb.<size>.max` on v2 — and the reservation limit beside it (`.rsvd.`) where the kernel has
 * one (5.7+), as runc writes both. OCI's `linux.resources.hugepageLimits`; Kubernetes gives every
 * container one per page size the node has (0 unless the pod asks for huge pages).
 *
 * @example
 * ```ts ignore
 * using huge = new Cgroup.Hugetlb("web");
 * huge.limits = { "2MB": "64M", "1GB": 0 };
 * huge.create();
 * ```
 * @module
 */
import { readdirSync } from "node:fs";
import { ConfigError } from "../errors.ts";
import {
  type CgroupOptions,
  Controller,
  type ControllerKind,
  parseNumberOrMax,
  type PlanContext,
  type Write,
} from "./controller.ts";
import { type ByteSize, isPageSizeName, type Limit, parseByteSize } from "./values.ts";

/** One page size's usage and limit. */
export interface HugetlbPageStats {
  /** Bytes of huge pages of this size the cgroup uses now. */
  readonly usage: number;
  /** The limit, or null for none. */
  readonly limit: number | null;
  /** How many allocations the limit refused (v1 `failcnt`, v2 `events` max). */
  readonly failures: number;
}

/** Each page size's statistics, keyed as the kernel names them (`"2MB"`). */
export type HugetlbStats = Readonly<Record<string, HugetlbPageStats>>;

const HUGETLB_KIND: ControllerKind = {
  label: "hugetlb",
  v1: ["hugetlb"],
  v2: "hugetlb",
  prefixes: { 1: ["hugetlb"], 2: ["hugetlb"] },
};

/**
 * The huge page sizes this host offers, as the control files name them (`["1GB", "2MB"]`), from
 * /sys/kernel/mm/hugepages (`hugepages-2048kB`); empty when it has none.
 * @returns The sizes.
 */
export function hostHugePageSizes(): string[] {
  let entries: string[] = [];
  try {
    entries = readdirSync("/sys/kernel/mm/hugepages");
  } catch { /* no huge pages */ }
  return entries.flatMap((e) => {
    const m = /^hugepages-(\d+)kB$/.exec(e);
    return m ? [pageSizeName(Number(m[1]) * 1024)] : [];
  }).sort();
}

/** A page size in bytes as the kernel's control files name it (the largest unit dividing it). Pure. */
export function pageSizeName(bytes: number): string {
  if (bytes % (1 << 30) === 0) return `${bytes / (1 << 30)}GB`;
  if (bytes % (1 << 20) === 0) return `${bytes / (1 << 20)}MB`;
  return `${bytes / 1024}KB`;
}

/**
 * A cgroup of the `hugetlb` controller: a limit in bytes per huge page size. A page size the host
 * does not have is a {@link ConfigError} naming it when the cgroup is created.
 *
 * @example
 * ```ts ignore
 * const huge = new Cgroup.Hugetlb("web");
 * huge.limits = { "2MB": 64 * 1024 * 1024 };
 * huge.create();
 * ```
 */
export class Hugetlb extends Controller<HugetlbStats> {
  #limits: ReadonlyMap<string, Limit> = new Map();

  /**
   * Names a hugetlb cgroup; nothing is touched until create().
   *
   * @param name The cgroup's name, relative to the root.
   * @param options Root and version overrides.
   * @throws {ConfigError} When the name or options are invalid.
   */
  constructor(name: string, options: CgroupOptions = {}) {
    super(HUGETLB_KIND, name, options);
  }

  /**
   * The limit of each page size (`{ "2MB": "64M" }`: bytes, a size, or -1 / `"max"` for none);
   * sizes as the kernel names them (`64KB`, `2MB`, `1GB`).
   */
  get limits(): Readonly<Record<string, Limit>> {
    return Object.fromEntries(this.#limits);
  }
  set limits(value: Readonly<Record<string, ByteSize>> | undefined) {
    const out = new Map<string, Limit>();
    if (value !== undefined && (typeof value !== "object" || value === null || Array.isArray(value))) {
      throw new ConfigError(this.field("limits"), 'must be an object of page size to limit ({ "2MB": "64M" })');
    }
    for (const [size, limit] of Object.entries(value ?? {})) {
      if (!isPageSizeName(size)) {
        throw new ConfigError(
          this.field(`limits.${size}`),
          `is not a huge page size as the kernel names them ("2MB", "1GB", "64KB")`,
        );
      }
      out.set(size, parseByteSize(limit, this.field(`limits.${size}`)));
    }
    this.#limits = out;
  }

  /** The writes for the limits set: each page size's limit, then its reservation limit where the kernel has one. */
  protected plan(ctx: PlanContext): Write[] {
    const out: Write[] = [];
    const [limitFile, unlimited] = ctx.version === 1 ? ["limit_in_bytes", "-1"] : ["max", "max"];
    for (const [size, limit] of this.#limits) {
      const file = `hugetlb.${size}.${limitFile}`;
      if (!ctx.dry && !ctx.has(file)) {
        const have = hostHugePageSizes();
        throw new ConfigError(
          this.field(`limits.${size}`),
          `this host has no ${size} huge pages (no ${file}; it has ${have.length ? have.join(", ") : "none"})`,
        );
      }
      const value = limit === "max" ? unlimited : String(limit);
      out.push({ file, value });
      const rsvd = `hugetlb.${size}.rsvd.${limitFile}`;
      if (ctx.has(rsvd)) out.push({ file: rsvd, value });
    }
    return out;
  }

  /**
   * Each page size's usage, limit and refused allocations.
   *
   * @returns The statistics, by page size.
   * @throws {SyscallError} When the cgroup does not exist.
   */
  stats(): HugetlbStats {
    this.assertExists();
    const v1 = this.version === 1;
    const out: Record<string, HugetlbPageStats> = {};
    for (const size of hostHugePageSizes()) {
      const usage = parseNumberOrMax(this.readFile(`hugetlb.${size}.${v1 ? "usage_in_bytes" : "current"}`));
      if (usage === null) continue; // (no such file: the controller has no such size)
      const failures = v1
        ? Number(this.readFile(`hugetlb.${size}.failcnt`)?.trim() ?? 0) || 0
        : Number(/^max (\d+)$/m.exec(this.readFile(`hugetlb.${size}.events`) ?? "")?.[1] ?? 0);
      out[size] = {
        usage,
        limit: parseNumberOrMax(this.readFile(`hugetlb.${size}.${v1 ? "limit_in_bytes" : "max"}`)),
        failures,
      };
    }
    return out;
  }
}
