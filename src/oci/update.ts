/**
 * `update ID`: new resource limits for a live container, as `runc update` takes them — a
 * `linux.resources` JSON object (`--resources FILE`, or `-` for stdin: what containerd's shim
 * sends), then runc's flags over it (`--memory 64m`, `--memory-swap`, `--cpu-quota`,
 * `--cpu-period`, `--cpu-share`, `--cpuset-cpus`, `--cpuset-mems`, `--pids-limit`). They are mapped
 * by the same code as config.json's (`ociToSpec`: the same checks, the same JSON paths in its
 * errors), merged over the limits the container has, and written to its live cgroup with the
 * cgroup library's `Group.modify()`; the state records the merged limits.
 *
 * Like runc's update, the device allowlist is not changed here. The fields runc's update takes
 * (its update.go: `blockIO` weight and throttles, `memory` limit, swap, reservation, `cpu` shares,
 * quota, period, burst, idle, realtime period and runtime, cpusets, `pids`, `unified`) go where
 * `create` puts them; throttles are merged per device over the current ones, as runc upserts them.
 * What runc's update leaves out (`memory.swappiness`, `disableOOMKiller`, `hugepageLimits`,
 * `network`, `rdma`: it drops them without a word) and what hako does not support in config.json
 * are refused by their path.
 * @module
 */
import { readFileSync } from "node:fs";
import type { CgroupSpec } from "../container/spec.ts";
import { OciConfigError, ociToSpec } from "./config.ts";

/** `linux.resources` fields runc's update does not apply (its update.go copies none of them). */
const NOT_UPDATED: ReadonlyArray<readonly [string, string | undefined]> = [
  ["memory", "swappiness"],
  ["memory", "disableOOMKiller"],
  ["hugepageLimits", undefined],
  ["network", undefined],
  ["rdma", undefined],
];

/** runc's `update` flags (urfave names) → where they go in `linux.resources`. */
export const UPDATE_FLAGS: Readonly<Record<string, readonly [string, string, "bytes" | "int" | "string"]>> = {
  memory: ["memory", "limit", "bytes"],
  "memory-swap": ["memory", "swap", "bytes"],
  "memory-reservation": ["memory", "reservation", "bytes"],
  "kernel-memory": ["memory", "kernel", "bytes"],
  "kernel-memory-tcp": ["memory", "kernelTCP", "bytes"],
  "cpu-quota": ["cpu", "quota", "int"],
  "cpu-period": ["cpu", "period", "int"],
  "cpu-burst": ["cpu", "burst", "int"],
  "cpu-idle": ["cpu", "idle", "int"],
  "cpu-share": ["cpu", "shares", "int"],
  "cpu-rt-period": ["cpu", "realtimePeriod", "int"],
  "cpu-rt-runtime": ["cpu", "realtimeRuntime", "int"],
  "cpuset-cpus": ["cpu", "cpus", "string"],
  "cpuset-mems": ["cpu", "mems", "string"],
  "pids-limit": ["pids", "limit", "int"],
  "blkio-weight": ["blockIO", "weight", "int"],
};

/** A size as runc's flags take it (docker's `RAMInBytes`): `1024`, `64m`, `1.5g`, `-1`. */
export function parseBytes(text: string, flag: string): number {
  if (/^-1$/.test(text.trim())) return -1;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$/i.exec(text.trim());
  if (!m) throw new Error(`invalid value for --${flag}: ${JSON.stringify(text)} (a size: 1024, 64m, 1g)`);
  const power = " kmgtp".indexOf((m[2] || " ").toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/**
 * The `linux.resources` an update asks for: the JSON (`resources`: a path, `-` for `stdin`), then
 * the flags over it.
 */
export function updateResources(
  options: Readonly<Record<string, unknown>>,
  stdin: () => string,
): Record<string, Record<string, unknown>> {
  let res: Record<string, Record<string, unknown>> = {};
  const file = options.resources;
  if (typeof file === "string" && file !== "") {
    const text = file === "-" ? stdin() : readFileSync(file, "utf8");
    try {
      res = JSON.parse(text);
    } catch (e) {
      throw new Error(`--resources ${file}: ${(e as Error).message}`);
    }
    if (typeof res !== "object" || res === null || Array.isArray(res)) {
      throw new Error(`--resources ${file}: must be a JSON object (linux.resources)`);
    }
  }
  for (const [flag, [section, key, kind]] of Object.entries(UPDATE_FLAGS)) {
    const v = options[flag];
    if (typeof v !== "string") continue;
    let value: number | string;
    if (kind === "bytes") value = parseBytes(v, flag);
    else if (kind === "int") {
      if (!/^-?\d+$/.test(v.trim())) throw new Error(`invalid value for --${flag}: ${JSON.stringify(v)}`);
      value = Number(v);
    } else value = v;
    res[section] = { ...(res[section] ?? {}), [key]: value };
  }
  return res;
}

/**
 * The container's cgroup spec with `resources` applied over `current` (its devices unchanged: an
 * update does not touch the allowlist, as runc's).
 * @throws {import("./config.ts").OciConfigError} For a field hako does not support, by its path.
 */
export function mergedCgroup(
  current: CgroupSpec | undefined,
  resources: Record<string, Record<string, unknown>>,
): CgroupSpec {
  const { devices: _devices, ...rest } = resources;
  const empty = (v: unknown) =>
    v === undefined || v === null || (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0);
  const refused = NOT_UPDATED.filter(([section, key]) => {
    const v = key === undefined ? rest[section] : rest[section]?.[key];
    return !empty(v) && v !== false;
  }).map(([section, key]) => ({
    path: `linux.resources.${section}${key ? `.${key}` : ""}`,
    message: "not changed by update (runc's update does not apply it either)",
  }));
  if (refused.length) throw new OciConfigError(refused);
  // (OCI's swap counts memory + swap: with no limit in the update, the current one is what it adds to)
  const memory = rest.memory ? { ...rest.memory } : undefined;
  if (memory && memory.swap !== undefined && memory.limit === undefined && current?.memory?.limit !== undefined) {
    memory.limit = current.memory.limit;
  }
  const plan = ociToSpec(
    {
      ociVersion: "1.0.2",
      process: { args: ["update"] },
      root: { path: "rootfs" },
      linux: { resources: { ...rest, ...(memory ? { memory } : {}) } },
    },
    "/",
    "update",
  );
  const next = (plan.spec.cgroup ?? {}) as Record<string, Record<string, unknown> | undefined>;
  const cur = (current ?? {}) as Record<string, Record<string, unknown> | undefined>;
  const out: Record<string, unknown> = { ...cur };
  for (const section of ["memory", "pids", "cpu", "cpuset", "raw"]) {
    if (next[section]) out[section] = { ...(cur[section] ?? {}), ...next[section] };
  }
  // (a throttle for one device replaces that device's, the others kept: runc's upsert)
  if (next.io) {
    const io: Record<string, unknown> = { ...(cur.io ?? {}) };
    for (const [k, v] of Object.entries(next.io)) {
      io[k] = typeof v === "object" && v !== null ? { ...(io[k] as object ?? {}), ...v } : v;
    }
    out.io = io;
  }
  return out as CgroupSpec;
}
