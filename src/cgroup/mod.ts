/**
 * Cgroups, v1 and v2 behind one interface, detected at run time: hacorb's `Cgroup::CPU`,
 * `CPUSET`, `MEMORY`, `BLKIO`, `CPUACCT`, plus `Pids`, `Hugetlb`, a multi-controller {@link Group}, a raw
 * `set("cpu.cfs_quota_us", 30000)` escape hatch, {@link detect}/{@link version}, and a device
 * allowlist ({@link Devices}: runc's default rules, on v1's devices controller or as a v2 BPF
 * device program).
 *
 * Names are relative paths under the cgroup root (`"hako/web-1"`), checked before anything is
 * touched. Attributes are properties, written by `create()` (mkdir -p; on v2 the controller is
 * enabled in the ancestors' `cgroup.subtree_control`) or `modify()`; v1/v2 differences (quota
 * and period vs `cpu.max`, shares vs weight, memsw vs swap) are converted. Everything is
 * synchronous, so a forked child can `attach()` itself before it execs. Pass `{ root, version }`
 * to aim at another cgroup tree.
 *
 * @example hacorb's example, in TypeScript
 * ```ts ignore
 * import { Cgroup, Process } from "./mod.ts";
 * const rate = new Cgroup.CPU("chikuwait");
 * const core = new Cgroup.CPUSET("chikuwait");
 * rate.cfs_quota_us = 30_000;
 * core.cpus = core.mems = "0";
 * rate.create();
 * core.create();
 * const pid = Process.fork(() => {
 *   rate.attach();
 *   core.attach();
 *   Process.exec("/bin/sh", "-c", "while :; do :; done");
 * });
 * // …
 * rate.delete({ kill: true });
 * core.delete({ kill: true });
 * ```
 * @module
 */
export {
  type CgroupCreateOptions,
  type CgroupOptions,
  Controller,
  type ControllerKind,
  type DeleteOptions,
  type PlanContext,
  rawKeyProblem,
  type Write,
} from "./controller.ts";
export { CPU, CPUACCT, type CpuStats } from "./cpu.ts";
export { CPUSET, type CpusetStats } from "./cpuset.ts";
export { BLKIO, type DeviceLimits, IO, type IoDeviceStats, type IoStats } from "./io.ts";
export { MEMORY, Memory, type MemoryStats } from "./memory.ts";
export { hostHugePageSizes, Hugetlb, type HugetlbPageStats, type HugetlbStats, pageSizeName } from "./hugetlb.ts";
export { PIDS, Pids, type PidsStats } from "./pids.ts";
export {
  assertValidDeviceRules,
  type BpfInsn,
  DEFAULT_DEVICE_RULES,
  describeDeviceProgram,
  type DeviceAllowlist,
  deviceCgroupV1Writes,
  type DeviceException,
  deviceProgram,
  type DeviceRule,
  Devices,
  type DevicesStats,
  resolveDeviceRules,
  withDefaultDeviceRules,
} from "./devices.ts";
export { Group, type GroupSpec, type GroupStats } from "./group.ts";
export { type CgroupMount, detect, type Layout, version } from "./layout.ts";
export {
  blkioWeightToIo,
  type ByteSize,
  ioWeightToBlkio,
  isPageSizeName,
  type Limit,
  parseByteSize,
  sharesToWeight,
  weightToShares,
} from "./values.ts";
export { DEFAULT_SLICE, expandSlice, scopeCgroupName, type SystemdScope } from "./systemd.ts";
