/**
 * The five capability sets a container's command (or `hako exec`'s) gets, from its resolved spec
 * and the user it runs as, and the plan that sets them (the `capabilities` and `capability-sets`
 * steps, forked and native alike).
 *
 * - Five sets given separately (OCI's `process.capabilities`): exactly those, whatever the user,
 *   as runc and crun.
 * - A list or `{ add, drop }`, as root: bounding = effective = permitted = inheritable = the kept
 *   list, ambient empty (hako's behaviour before the sets existed).
 * - The same, as a non-root user: the capabilities the spec names (the list, `add`'s names) are
 *   also raised in the ambient set, as podman does, so they survive the execve under that uid
 *   (without file capabilities, a non-root program's permitted and effective sets after exec are
 *   its ambient set). The default set alone is never raised: docker gives a non-root user no
 *   capability, and hako never gives more than docker's default unless the spec asks.
 * @module
 */
import { Capability, type KeepPlan, keepPlan } from "../capability.ts";
import type { ResolvedCapabilitySets } from "./_spec_fields.ts";
import type { ResolvedSpec } from "./validate.ts";

/** What the sets follow: the spec's capabilities and the user the command runs as. */
export type CapabilityProfile = Pick<ResolvedSpec, "capabilities" | "capabilitySets" | "ambientCapabilities" | "user">;

/** The five sets `p`'s command gets, by canonical names. */
export function capabilitySetsFor(p: CapabilityProfile): ResolvedCapabilitySets {
  if (p.capabilitySets) return p.capabilitySets;
  const kept = p.capabilities;
  // podman (pkg/specgen/generate/security.go): a non-root user's added capabilities go ambient.
  const ambient = p.user.uid === 0 ? [] : (p.ambientCapabilities ?? []).filter((n) => kept.includes(n));
  return { bounding: kept, effective: kept, permitted: kept, inheritable: kept, ambient };
}

/**
 * The plan of the capability steps for `p` (see `keepPlan`: planned for root of a user namespace
 * with `userns`): the bounding set trimmed to its set, then the other four set after the change of
 * user. Checked before anything changes.
 * @throws {SyscallError} EPERM when a capability asked for is not permitted, or CAP_SETPCAP is missing.
 */
export function capabilityPlan(p: CapabilityProfile, userns: boolean): KeepPlan {
  const sets = capabilitySetsFor(p);
  const plan = keepPlan(sets.bounding, {}, userns);
  if (!p.capabilitySets && sets.ambient.length === 0) return plan; // e = p = i = bounding
  // capset(2) takes no permitted capability the process does not have (as for the bounding set)
  keepPlan(sets.permitted, {}, userns);
  const mask = (names: readonly string[]) => Capability.toMask(names);
  return {
    ...plan,
    sets: {
      effective: mask(sets.effective),
      permitted: mask(sets.permitted),
      inheritable: mask(sets.inheritable),
      ambient: mask(sets.ambient),
    },
  };
}

/** The capability-sets step as `hako plan` shows it: the capset, the ambient set cleared and raised. */
export function capabilityPlanLines(p: CapabilityProfile): string[] {
  const sets = capabilitySetsFor(p);
  const list = (names: readonly string[]) => names.join(", ") || "(none)";
  return [
    `capset: effective: ${list(sets.effective)}`,
    `capset: permitted: ${list(sets.permitted)}`,
    `capset: inheritable: ${list(sets.inheritable)}`,
    "prctl(PR_CAP_AMBIENT_CLEAR_ALL)",
    `ambient: ${sets.ambient.length ? `prctl(PR_CAP_AMBIENT_RAISE) ${list(sets.ambient)}` : "(none)"}`,
  ];
}
