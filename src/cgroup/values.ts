/**
 * Cgroup attribute values: parsing and checking what a script sets (sizes such as `"256M"`,
 * `"max"` for no limit, CPU lists, devices), and the conversions between cgroup v1 and v2 units.
 * @module
 */
import { statSync } from "node:fs";
import { ConfigError } from "../errors.ts";

/** A limit: a number, or `"max"` for none. */
export type Limit = number | "max";

/** A size in bytes: a number, `"max"` (or -1) for no limit, or a string with a binary suffix (`"256M"`, `"1GiB"`). */
export type ByteSize = number | string;

const SUFFIX: Readonly<Record<string, number>> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * Parses a byte size.
 *
 * @param value A number of bytes, -1 or `"max"` for no limit, or `"<n>[K|M|G|T][i][B]"` (binary units).
 * @param field The field path for errors.
 * @returns The number of bytes, or `"max"`.
 * @throws {ConfigError} When it is not a size.
 *
 * @example
 * ```ts
 * import { parseByteSize } from "./values.ts";
 * parseByteSize("32M", "memory.limit"); // 33554432
 * ```
 */
export function parseByteSize(value: ByteSize, field: string): Limit {
  if (value === -1 || value === "max" || value === "-1") return "max";
  if (typeof value === "number") {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    throw new ConfigError(field, `must be a whole number of bytes ≥ 0, or -1 / "max" for no limit; got ${value}`);
  }
  if (typeof value === "string") {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(value);
    if (m) {
      const n = Math.round(Number(m[1]) * SUFFIX[m[2]!.toUpperCase()]!);
      if (Number.isSafeInteger(n)) return n;
    }
  }
  throw new ConfigError(
    field,
    `must be a size in bytes (a number, or a string like "256M" or "1G"), or -1 / "max" for no limit; got ${
      JSON.stringify(value)
    }`,
  );
}

/**
 * Parses a whole-number limit.
 *
 * @param value An integer in `[min, max]`, or -1 / `"max"` for no limit (when `unlimited` allows it).
 * @param field The field path for errors.
 * @param range The allowed range and unit, for checks and messages.
 * @returns The number, or `"max"`.
 * @throws {ConfigError} When out of range.
 */
export function parseInteger(
  value: number | string,
  field: string,
  range: { min: number; max?: number; unit?: string; unlimited?: boolean },
): Limit {
  const unlimited = range.unlimited ?? true;
  if (unlimited && (value === -1 || value === "max" || value === "-1")) return "max";
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (typeof n === "number" && Number.isSafeInteger(n) && n >= range.min && n <= max) return n;
  const what = `${range.unit ? `a whole number of ${range.unit}` : "a whole number"} in ${range.min}..${
    range.max ?? "∞"
  }`;
  throw new ConfigError(
    field,
    `must be ${what}${unlimited ? ', or -1 / "max" for no limit' : ""}; got ${JSON.stringify(value)}`,
  );
}

/**
 * Parses a CPU or memory-node list (`"0-3,6"`, `2`, `[0, 1]`).
 *
 * @returns The kernel's list syntax.
 * @throws {ConfigError} When it is not a list.
 */
export function parseCpuList(value: string | number | readonly number[], field: string): string {
  const text = Array.isArray(value) ? value.join(",") : String(value).trim();
  if (text === "" || /^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(text)) return text;
  throw new ConfigError(
    field,
    `must be a list like "0-3,6" (or a number, or an array of numbers); got ${JSON.stringify(value)}`,
  );
}

/** Splits a dev_t the way glibc's major()/minor() do. */
function majorMinor(rdev: number): string {
  const dev = BigInt(rdev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/**
 * Parses a block device for an IO limit: `"MAJ:MIN"`, or a device node path such as `/dev/vda`
 * (stat'ed to find its numbers).
 *
 * @returns `"MAJ:MIN"`.
 * @throws {ConfigError} When it is neither, or the path is not a block device.
 */
export function parseDevice(device: string, field: string): string {
  if (/^\d+:\d+$/.test(device)) return device;
  if (device.startsWith("/")) {
    let st;
    try {
      st = statSync(device);
    } catch (e) {
      throw new ConfigError(field, `cannot stat device ${JSON.stringify(device)}: ${(e as Error).message}`);
    }
    if (!st.isBlockDevice()) throw new ConfigError(field, `${JSON.stringify(device)} is not a block device`);
    return majorMinor(st.rdev);
  }
  throw new ConfigError(
    field,
    `a device must be "MAJ:MIN" (e.g. "8:0") or a path under /dev; got ${JSON.stringify(device)}`,
  );
}

/**
 * Converts cgroup v1 `cpu.shares` (2..262144, default 1024) to cgroup v2 `cpu.weight`
 * (1..10000, default 100), the way runc and the kubelet do.
 *
 * @param shares v1 shares.
 * @returns The v2 weight.
 *
 * @example
 * ```ts
 * import { sharesToWeight } from "./values.ts";
 * sharesToWeight(1024); // 39
 * ```
 */
export function sharesToWeight(shares: number): number {
  const s = Math.min(Math.max(shares, 2), 262144);
  return Math.floor(1 + ((s - 2) * 9999) / 262142);
}

/**
 * Converts cgroup v2 `cpu.weight` (1..10000) to cgroup v1 `cpu.shares` (2..262144), the inverse
 * of {@link sharesToWeight}: the fewest shares that {@link sharesToWeight} maps back to `weight`
 * (rounded up, so a weight written as shares on v1 reads back as the same weight).
 *
 * @param weight v2 weight.
 * @returns The v1 shares.
 */
export function weightToShares(weight: number): number {
  const w = Math.min(Math.max(weight, 1), 10000);
  return Math.min(262144, 2 + Math.ceil(((w - 1) * 262142) / 9999));
}

/**
 * Converts a cgroup v2 `io.weight` (1..10000, default 100) to the BFQ/CFQ weight of v1's
 * `blkio.weight` / `blkio.bfq.weight` and v2's `io.bfq.weight` (10..1000): the inverse of the
 * mapping runc and crun use the other way ({@link blkioWeightToIo}), rounded up so that every
 * v1 weight survives the round trip (`ioWeightToBlkio(blkioWeightToIo(b)) === b`). runc and crun
 * write the OCI (v1-unit) weight to `io.bfq.weight` as it is: BFQ's weight is in v1 units on
 * either version.
 *
 * @param weight v2 io weight.
 * @returns The v1 (BFQ) weight.
 *
 * @example
 * ```ts
 * import { ioWeightToBlkio } from "./values.ts";
 * ioWeightToBlkio(300); // 40
 * ```
 */
export function ioWeightToBlkio(weight: number): number {
  const w = Math.min(Math.max(weight, 1), 10000);
  return Math.min(1000, 10 + Math.ceil(((w - 1) * 990) / 9999));
}

/**
 * Converts a cgroup v1 `blkio.weight` (10..1000) to a v2 `io.weight` (1..10000) as runc's
 * `ConvertBlkIOToIOWeightValue` and crun do: `1 + (w - 10) * 9999 / 990` in integers.
 *
 * @param weight v1 blkio weight.
 * @returns The v2 io weight.
 */
export function blkioWeightToIo(weight: number): number {
  const w = Math.min(Math.max(weight, 10), 1000);
  return Math.floor(1 + ((w - 10) * 9999) / 990);
}

/** Formats a limit for v1 (`-1` for none). */
export function v1Limit(value: Limit): string {
  return value === "max" ? "-1" : String(value);
}

/** Formats a limit for v2 (`max` for none). */
export function v2Limit(value: Limit): string {
  return String(value);
}

/** A page size as the kernel names it in hugetlb's control files: `64KB`, `2MB`, `1GB`. */
const PAGE_SIZE = /^[1-9]\d{0,5}(KB|MB|GB)$/;

/**
 * Whether `size` is a page size as the kernel names them in hugetlb's control files (`2MB`).
 * Pure.
 * @param size The name.
 * @returns Whether it has that form.
 */
export function isPageSizeName(size: string): boolean {
  return PAGE_SIZE.test(size);
}
