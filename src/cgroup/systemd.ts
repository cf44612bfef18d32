/**
 * systemd as the cgroup manager (runc's `--systemd-cgroup`, podman's `--cgroup-manager systemd`,
 * containerd's `SystemdCgroup = true`): on a host where systemd is PID 1, the container's cgroup
 * is a transient scope unit systemd makes — `StartTransientUnit` over D-Bus with the container's
 * first pid, `Delegate=yes` so the subtree is the container's, and its limits as unit properties —
 * so systemd knows the cgroup is taken, counts it in its slice, and keeps the limits when it
 * re-applies its own (a `daemon-reload` would otherwise reset the memory limit and device list of
 * a cgroup it does not know). Then hako writes the limits into the scope's directories as it
 * writes any cgroup's, and makes the ones systemd leaves to others (v1 cpuset, freezer…).
 *
 * runc's rules, kept: a `cgroupsPath` of `slice:prefix:name` names the scope `prefix-name.scope`
 * in `slice` (default `system.slice`); a slice name expands to its path (`a-b.slice` is
 * `a.slice/a-b.slice`); the scope's directory is under PID 1's cgroup (its `init.scope` cut off);
 * limits go as `MemoryLimit`/`MemoryMax`, `CPUShares`/`CPUWeight`, `CPUQuotaPerSecUSec`,
 * `TasksMax`, `AllowedCPUs`, `DeviceAllow` with `DevicePolicy=strict`; `delete` stops the unit.
 *
 * Names and properties here (pure: the OCI mapping and validation use them); the conversation
 * with systemd is `systemd_manager.ts`.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { ConfigError } from "../errors.ts";
import { type Variant, variant } from "./_dbus_wire.ts";
import type { DeviceAllowlist } from "./devices.ts";

/** A container's scope: its unit name and the slice it goes in. */
export interface SystemdScope {
  /** The slice (default `system.slice`): `machine.slice`, `user-1000.slice`… */
  readonly slice?: string;
  /** The scope unit's name: `libpod-<id>.scope`, `hako-<id>.scope`. */
  readonly unit: string;
}

/** The slice a scope goes in unless it names one (runc's). */
export const DEFAULT_SLICE = "system.slice";

// systemd's unit name grammar: [A-Za-z0-9:_.\\-@]+, at most 255 bytes (unit-name.c).
const UNIT_CHARS = /^[A-Za-z0-9:_.\\@-]+$/;

/**
 * Why `unit` is not a scope unit name systemd takes, or undefined.
 * @param unit The name, e.g. `libpod-abc.scope`.
 */
export function scopeNameProblem(unit: string): string | undefined {
  if (typeof unit !== "string" || unit.length === 0) return "must be a unit name (NAME.scope)";
  if (unit.length > 255) return `is ${unit.length} bytes: a unit name has at most 255`;
  if (!UNIT_CHARS.test(unit)) return `${JSON.stringify(unit)} has characters a unit name cannot have`;
  if (unit.endsWith(".slice")) return `${JSON.stringify(unit)} is a slice: hako makes scopes (NAME.scope) only`;
  if (!unit.endsWith(".scope") || unit === ".scope") return `${JSON.stringify(unit)} must end in .scope`;
  return undefined;
}

/**
 * A slice's cgroup path, as systemd lays slices out: `a-b-c.slice` is
 * `/a.slice/a-b.slice/a-b-c.slice`, `-.slice` (the root slice) is `/`.
 * @throws {ConfigError} For a name that is not a slice's (field `path`).
 */
export function expandSlice(slice: string, path = "cgroup.systemd.slice"): string {
  if (typeof slice !== "string" || !slice.endsWith(".slice") || slice.includes("/") || !UNIT_CHARS.test(slice)) {
    throw new ConfigError(path, `${JSON.stringify(slice)} is not a slice name (NAME.slice)`);
  }
  const name = slice.slice(0, -".slice".length);
  if (name === "-") return "/";
  let out = "", prefix = "";
  for (const part of name.split("-")) {
    if (part === "") throw new ConfigError(path, `${JSON.stringify(slice)} is not a slice name (an empty part)`);
    out += `/${prefix}${part}.slice`;
    prefix += `${part}-`;
  }
  return out;
}

/**
 * PID 1's cgroup without its `init.scope` (runc's `getSubsystemPath`): where systemd's units are,
 * `/` on a host and in a container of its own.
 * @param text `/proc/1/cgroup`'s text.
 */
export function initCgroupPrefix(text: string | undefined): string {
  const lines = (text ?? "").split("\n");
  const line = lines.find((l) => /^\d+:[^:]*\bname=systemd\b[^:]*:/.test(l)) ?? lines.find((l) => l.startsWith("0::"));
  const path = line ? line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1).trim() : "/";
  const cut = path.endsWith("/init.scope") ? path.slice(0, -"/init.scope".length) : path === "/init.scope" ? "/" : path;
  return cut === "" ? "/" : cut;
}

/**
 * The cgroup name (relative to each hierarchy's root) of a scope: PID 1's prefix, the slice's
 * path, the unit.
 */
export function scopeCgroupName(scope: SystemdScope, pid1Cgroup?: string): string {
  const text = pid1Cgroup ?? tryRead("/proc/1/cgroup");
  const parts = [initCgroupPrefix(text), expandSlice(scope.slice ?? DEFAULT_SLICE), scope.unit];
  return parts.join("/").split("/").filter(Boolean).join("/");
}

function tryRead(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Whether systemd runs this host (runc's check: `/run/systemd/system` is a directory). */
export function systemdRunning(): boolean {
  return existsSync("/run/systemd/system");
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const PERIOD_DEFAULT = 100_000n;

/** A property of a unit: its name and value. */
export type UnitProperty = readonly [string, Variant];

const prop = (name: string, sig: string, value: unknown): UnitProperty => [name, variant(sig, value)];

/**
 * A cpu list (`0-3,8`) as systemd's `AllowedCPUs` bitmask: byte i holds cpus 8i…8i+7 (runc's
 * `RangeToBits`).
 * @throws {ConfigError} For a malformed list.
 */
export function cpuListBits(list: string, path: string): number[] {
  const bytes: number[] = [];
  for (const part of list.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new ConfigError(path, `${JSON.stringify(list)} is not a cpu list (0-3,8)`);
    const from = Number(m[1]), to = Number(m[2] ?? m[1]);
    if (to < from || to > 8191) throw new ConfigError(path, `${JSON.stringify(list)}: a bad range ${part}`);
    for (let i = from; i <= to; i++) {
      while (bytes.length <= i >> 3) bytes.push(0);
      bytes[i >> 3]! |= 1 << (i & 7);
    }
  }
  return bytes;
}

/** What a cgroup's control-file writes ask of systemd, as unit properties (runc's conversions). */
export function limitProperties(
  writes: ReadonlyMap<string, string>,
  version: 1 | 2,
  systemdVersion: number,
): UnitProperty[] {
  const out: UnitProperty[] = [];
  const u64 = (v: string): bigint => {
    const t = v.trim();
    if (t === "max" || t === "-1") return U64_MAX;
    return /^\d+$/.test(t) ? BigInt(t) : U64_MAX;
  };
  // (a raw value that is no number is the kernel's to refuse when it is written: not told to systemd)
  const count = (v: string): bigint | undefined => /^\d+$/.test(v.trim()) ? BigInt(v.trim()) : undefined;
  const quota = (q: bigint | undefined, period: bigint | undefined) => {
    if (period !== undefined && systemdVersion >= 242) out.push(prop("CPUQuotaPeriodUSec", "t", period));
    if (q === undefined && period === undefined) return;
    let perSec = U64_MAX;
    if (q !== undefined && q > 0n) {
      perSec = (q * 1_000_000n) / (period && period > 0n ? period : PERIOD_DEFAULT);
      // (systemd keeps 1/100 s steps: rounded up, as runc does)
      if (perSec % 10_000n !== 0n) perSec = (perSec / 10_000n + 1n) * 10_000n;
    }
    out.push(prop("CPUQuotaPerSecUSec", "t", perSec));
  };
  const get = (k: string) => writes.get(k);
  if (version === 1) {
    if (get("memory.limit_in_bytes") !== undefined) {
      out.push(prop("MemoryLimit", "t", u64(get("memory.limit_in_bytes")!)));
    }
    if (get("cpu.shares") !== undefined) out.push(prop("CPUShares", "t", u64(get("cpu.shares")!)));
    const q = get("cpu.cfs_quota_us"), p = get("cpu.cfs_period_us");
    if (q !== undefined || p !== undefined) {
      quota(
        q !== undefined && q.trim() !== "-1" ? count(q) : undefined,
        p !== undefined ? count(p) : undefined,
      );
    }
    if (get("blkio.weight") !== undefined) out.push(prop("BlockIOWeight", "t", u64(get("blkio.weight")!)));
  } else {
    for (
      const [file, name] of [
        ["memory.max", "MemoryMax"],
        ["memory.low", "MemoryLow"],
        ["memory.min", "MemoryMin"],
        ["memory.high", "MemoryHigh"],
        ["memory.swap.max", "MemorySwapMax"],
      ] as const
    ) {
      if (get(file) !== undefined) out.push(prop(name, "t", u64(get(file)!)));
    }
    if (get("cpu.weight") !== undefined) out.push(prop("CPUWeight", "t", u64(get("cpu.weight")!)));
    const max = get("cpu.max");
    if (max !== undefined) {
      const [q, p] = max.trim().split(/\s+/);
      quota(q && q !== "max" ? count(q) : undefined, p ? count(p) : PERIOD_DEFAULT);
    }
  }
  const pids = get("pids.max");
  if (pids !== undefined) {
    const n = u64(pids);
    out.push(prop("TasksMax", "t", n === 0n ? 1n : n)); // (systemd takes no 0: runc's 1)
  }
  if (systemdVersion >= 244) {
    if (get("cpuset.cpus")?.trim()) {
      out.push(prop("AllowedCPUs", "ay", cpuListBits(get("cpuset.cpus")!, "cgroup.cpuset.cpus")));
    }
    if (get("cpuset.mems")?.trim()) {
      out.push(prop("AllowedMemoryNodes", "ay", cpuListBits(get("cpuset.mems")!, "cgroup.cpuset.mems")));
    }
  }
  return out;
}

/**
 * The device allowlist as `DevicePolicy` and `DeviceAllow` (runc's conversion): everything allowed
 * is `auto` with no list; a denylist, which systemd cannot say, is `strict` with none (hako's own
 * rules still allow what they allow; a reload by systemd then denies more, never less); an
 * allowlist is `strict` with one entry per exception — `char-*`, `char-MAJOR`, `/dev/char/M:m` —
 * an exception `*:m` systemd cannot say is left out (again: less, never more).
 * @returns The properties, and warnings for what was left out.
 */
export function deviceProperties(list: DeviceAllowlist): { properties: UnitProperty[]; warnings: string[] } {
  const warnings: string[] = [];
  if (list.defaultAllow) {
    if (list.exceptions.length === 0) {
      return { properties: [prop("DevicePolicy", "s", "auto"), prop("DeviceAllow", "a(ss)", [])], warnings };
    }
    warnings.push("systemd takes no device denylist: its unit gets a deny-all device policy");
    return { properties: [prop("DevicePolicy", "s", "strict"), prop("DeviceAllow", "a(ss)", [])], warnings };
  }
  const allow: Array<[string, string]> = [];
  for (const e of list.exceptions) {
    const group = e.type === "c" ? "char" : "block";
    if (e.major === "*") {
      if (e.minor !== "*") {
        warnings.push(`systemd takes no *:${e.minor} device rule: left out of its unit (${e.type} *:${e.minor})`);
        continue;
      }
      allow.push([`${group}-*`, e.access]);
    } else if (e.minor === "*") allow.push([`${group}-${e.major}`, e.access]);
    else allow.push([`/dev/${group}/${e.major}:${e.minor}`, e.access]);
  }
  return { properties: [prop("DevicePolicy", "s", "strict"), prop("DeviceAllow", "a(ss)", allow)], warnings };
}

/**
 * The properties of a container's new scope (runc's `Apply`): its description, slice, delegation,
 * first pid, accounting on, no default dependencies; then `limits`.
 */
export function scopeProperties(
  options: { readonly name: string; readonly slice: string; readonly pid: number; readonly version: 1 | 2 },
  limits: readonly UnitProperty[],
): UnitProperty[] {
  return [
    prop("Description", "s", `hako container ${options.name}`),
    prop("Slice", "s", options.slice),
    prop("Delegate", "b", true),
    prop("PIDs", "au", [options.pid]),
    prop("MemoryAccounting", "b", true),
    prop("CPUAccounting", "b", true),
    prop(options.version === 1 ? "BlockIOAccounting" : "IOAccounting", "b", true),
    prop("TasksAccounting", "b", true),
    prop("DefaultDependencies", "b", false),
    ...limits,
  ];
}
