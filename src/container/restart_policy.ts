/**
 * Restart policies, as docker's `--restart`: what the spec's `restart` field may say, and the
 * supervisor's decisions (pure) — whether an ended container is started again, and after how long.
 *
 * The rules are docker's (moby's `restartmanager` and `container.ShouldRestart`, read for the facts):
 * - `no` (the default): never restarted.
 * - `always`: restarted whatever its exit status; `unless-stopped`: the same. In docker the two
 *   differ only when the daemon itself restarts (`always` brings back a container the user
 *   stopped); hako's supervisor never starts a stopped container by itself, so here they behave
 *   the same.
 * - `on-failure[:N]`: restarted when it exits non-zero (an unknown status counts as a failure), at
 *   most N times (no N, or 0: without limit).
 * - A container the user stopped (`hako stop`, `hako kill` with any signal, `hako rm -f`) is never
 *   restarted, whatever its policy (docker's `HasBeenManuallyStopped`).
 * - The delay before a restart starts at 100 ms and doubles each time, up to a minute; it goes back
 *   to 100 ms once a container ran 10 s or more.
 * @module
 */

/** A restart policy's name. */
export type RestartPolicyName = "no" | "always" | "unless-stopped" | "on-failure";

/**
 * The spec's `restart` field: a policy's name, or `{ policy: "on-failure", maxRetries }` (docker's
 * `on-failure:N`).
 */
export type RestartPolicy = RestartPolicyName | {
  readonly policy: RestartPolicyName;
  /** For `on-failure`: restarts at most this many times (0 or absent: without limit). */
  readonly maxRetries?: number;
};

/** A restart policy with its defaults filled in. */
export interface ResolvedRestart {
  /** Its name. */
  readonly policy: RestartPolicyName;
  /** For `on-failure`: the most restarts (0: without limit). */
  readonly maxRetries: number;
}

/** The policies' names. */
export const RESTART_POLICIES: readonly RestartPolicyName[] = ["no", "always", "unless-stopped", "on-failure"];

/** The first delay before a restart (docker's 100 ms). */
export const RESTART_FIRST_DELAY_MS = 100;
/** The longest delay before a restart (docker's one minute). */
export const RESTART_MAX_DELAY_MS = 60_000;
/** A container that ran at least this long starts the delays over (docker's 10 s). */
export const RESTART_RESET_AFTER_MS = 10_000;

/**
 * What is wrong with a `restart` value (pure), as a field path and a message; undefined when it is
 * a policy.
 * @param value The value, as given.
 * @param path Its field path (default `restart`).
 */
export function restartProblem(value: unknown, path = "restart"): { path: string; message: string } | undefined {
  const choices = `"no", "always", "unless-stopped", "on-failure" or { policy: "on-failure", maxRetries: N }`;
  if (value === undefined) return undefined;
  if (typeof value === "string") {
    return (RESTART_POLICIES as readonly string[]).includes(value)
      ? undefined
      : { path, message: `must be ${choices}, got ${JSON.stringify(value)}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return {
      path,
      message: `must be ${choices}, got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`,
    };
  }
  const r = value as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (k !== "policy" && k !== "maxRetries") {
      return { path: `${path}.${k}`, message: "is not a field of a restart policy (policy, maxRetries)" };
    }
  }
  if (typeof r.policy !== "string" || !(RESTART_POLICIES as readonly string[]).includes(r.policy)) {
    return {
      path: `${path}.policy`,
      message: `must be one of ${RESTART_POLICIES.join(", ")}, got ${JSON.stringify(r.policy)}`,
    };
  }
  if (r.maxRetries !== undefined) {
    if (!Number.isSafeInteger(r.maxRetries) || (r.maxRetries as number) < 0) {
      return { path: `${path}.maxRetries`, message: `must be a whole number ≥ 0, got ${JSON.stringify(r.maxRetries)}` };
    }
    // docker: "maximum retry count cannot be used with restart policy 'always'"
    if (r.policy !== "on-failure" && r.maxRetries !== 0) {
      return { path: `${path}.maxRetries`, message: `goes with policy "on-failure" only (docker's on-failure:N)` };
    }
  }
  return undefined;
}

/**
 * A valid `restart` value with its defaults (pure); `no` for anything that is not a policy (the
 * spec was checked before it was recorded: a damaged record never makes a container restart).
 */
export function resolveRestart(value: unknown): ResolvedRestart {
  if (value === undefined || restartProblem(value)) return { policy: "no", maxRetries: 0 };
  if (typeof value === "string") return { policy: value as RestartPolicyName, maxRetries: 0 };
  const r = value as { policy: RestartPolicyName; maxRetries?: number };
  return { policy: r.policy, maxRetries: r.policy === "on-failure" ? r.maxRetries ?? 0 : 0 };
}

/**
 * Parses docker's `--restart` flag (pure): `no`, `always`, `unless-stopped`, `on-failure`,
 * `on-failure:N`.
 * @returns The spec's value.
 * @throws {RangeError} For anything else.
 */
export function parseRestartFlag(text: string): RestartPolicy {
  const m = /^on-failure:(\d{1,9})$/.exec(text);
  if (m) return { policy: "on-failure", maxRetries: Number(m[1]) };
  if ((RESTART_POLICIES as readonly string[]).includes(text)) return text as RestartPolicyName;
  throw new RangeError(
    `--restart takes no, always, unless-stopped, on-failure or on-failure:N (N a whole number), not ${
      JSON.stringify(text)
    }`,
  );
}

/** What {@link shouldRestart} weighs. */
export interface RestartFacts {
  /** The exit's shell code (`0`, `3`, `137`); null when unknown (it ended while no supervisor was its parent). */
  readonly exitCode: number | null;
  /** Restarts so far. */
  readonly restartCount: number;
  /** The user stopped it (`hako stop`, `kill`, `rm -f`). */
  readonly stoppedByUser: boolean;
}

/** Whether a container that ended is started again (pure; see the module doc for the rules). */
export function shouldRestart(policy: ResolvedRestart, facts: RestartFacts): boolean {
  if (facts.stoppedByUser) return false;
  switch (policy.policy) {
    case "always":
    case "unless-stopped":
      return true;
    case "on-failure":
      if (policy.maxRetries > 0 && facts.restartCount >= policy.maxRetries) return false;
      return facts.exitCode !== 0;
    default:
      return false;
  }
}

/**
 * The delay before the next restart (pure): 100 ms at first, doubled each time up to a minute, and
 * back to 100 ms after a run of 10 s or more (docker's restart manager).
 * @param previousMs The delay before the previous restart (0: none yet).
 * @param ranMs How long the container ran this time.
 */
export function restartDelay(previousMs: number, ranMs: number): number {
  if (ranMs >= RESTART_RESET_AFTER_MS || previousMs <= 0) return RESTART_FIRST_DELAY_MS;
  return Math.min(previousMs * 2, RESTART_MAX_DELAY_MS);
}
