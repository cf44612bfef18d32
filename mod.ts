/**
 * hako — a scripting runtime for Linux containers.
 *
 * Build containers out of kernel primitives from TypeScript, the way haconiwa's hacorb does from
 * Ruby: fork into namespaces, put the child in cgroups, drop capabilities, pivot_root, exec.
 *
 * ```ts ignore
 * import { Namespace, Process } from "./mod.ts";
 * Namespace.unshare(Namespace.CLONE_NEWPID);
 * const pid = Process.fork(() => {
 *   Namespace.unshare(Namespace.CLONE_NEWUTS);
 *   Process.exec("/bin/sh", "-c", "hostname box; echo pid $$ on $(hostname)");
 * });
 * Process.waitpid2(pid);
 * ```
 *
 * Run scripts with `deno run -A --v8-flags=--single-threaded script.ts` (or `hako run script.ts`):
 * see `ffi/fork.ts` for why.
 *
 * @module
 */
export * as Process from "./src/process.ts";
export * as Namespace from "./src/namespace.ts";
export * as Cgroup from "./src/cgroup/mod.ts";
export { Capability } from "./src/capability.ts";
export type {
  CapabilityLike,
  CapabilityName,
  CapabilityOptions,
  CapabilityState,
  KeepOptions,
} from "./src/capability.ts";
export * as Mount from "./src/mount.ts";
export * as Dir from "./src/dir.ts";
export { getrlimit, prlimit, Resource, rlimitNumber, RLIMITS, setrlimit } from "./src/rlimit.ts";
export type { ResourceModule, Rlimit, RlimitChange, RlimitName, RlimitResource, RlimitValue } from "./src/rlimit.ts";
export * from "./src/user.ts";
export * from "./src/hostname.ts";
export { addAddress, createVethPair, deleteLink, linkIndex, linkUp, parseCidr, setLinkUp } from "./src/network.ts";
export type { Cidr, VethOptions } from "./src/network.ts";
export { Kernel, type KernelModule } from "./src/kernel.ts";
export type { Signal } from "./src/signals.ts";
export type * from "./src/cgroup/mod.ts";
export { system } from "./src/process.ts";
export {
  assertValidSeccompProfile,
  AUDIT_ARCH,
  compileSeccomp,
  decodeSeccomp,
  DEFAULT_SECCOMP_PROFILE,
  loadSeccomp,
  readSeccompProfile,
  SECCOMP_RET,
  seccompProblems,
  seccompProfileFromOci,
  syscallNumber,
} from "./src/seccomp.ts";
export type {
  OciSeccompArg,
  OciSeccompFilter,
  OciSeccompProfile,
  OciSeccompSyscall,
  SeccompAction,
  SeccompArch,
  SeccompArgRule,
  SeccompCompileOptions,
  SeccompCondition,
  SeccompNativeArch,
  SeccompProblem,
  SeccompProfile,
  SeccompRule,
  SockFilter,
} from "./src/seccomp.ts";
export { Container, run } from "./src/container/container.ts";
export type { ContainerStatus, CreateOptions, WindowSize } from "./src/container/container.ts";
export { execIn } from "./src/container/exec.ts";
export type { ExecOptions } from "./src/container/exec.ts";
export {
  collectGarbage,
  deleteContainer,
  killContainer,
  listContainers,
  RootfsRemovalError,
  stopContainer,
} from "./src/container/lifecycle.ts";
export type {
  ContainerInfo,
  DeleteResult,
  GarbageReport,
  RootfsOutcome,
  StopResult,
} from "./src/container/lifecycle.ts";
export { ContainerStateError, StateStore } from "./src/container/state.ts";
export type {
  ExitRecord,
  LifeState,
  ProcessIdentity,
  RecordRead,
  Salvage,
  StateRecord,
} from "./src/container/state.ts";
export type {
  CapabilityChanges,
  CapabilitySets,
  CgroupSpec,
  ContainerSpec,
  DeviceNode,
  EventArg,
  HooksSpec,
  IdRange,
  MountSpec,
  NamespaceSpec,
  NetworkSpec,
  PortSpec,
  RootfsPropagation,
  RootfsSpec,
  VethSpec,
} from "./src/container/spec.ts";
export { resolveSpec, SpecError } from "./src/container/validate.ts";
export { publishPorts } from "./src/container/ports.ts";
export type { PublishedPort, PublishedPorts } from "./src/container/ports.ts";
export type { Hook, HookCommand, ReadinessSpec } from "./src/container/hooks.ts";
export type { RestartPolicy, RestartPolicyName } from "./src/container/restart_policy.ts";
export type { MemoryPressureSpec, PressureLevel } from "./src/container/memory_pressure.ts";
export type { ResolvedSpec, ResolvedVeth, SpecProblem } from "./src/container/validate.ts";
export { ConfigError, SetupError, SyscallError } from "./src/errors.ts";
export type { ForkOptions, ProcessStatus, SpawnOptions } from "./src/process.ts";
export type { IdMapEntry, NamespaceName } from "./src/namespace.ts";
