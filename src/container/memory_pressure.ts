/**
 * When a container's memory is "under pressure", for its `onMemoryPressure` hook: the kernel's own
 * measure, not hako's.
 *
 * - cgroup v2: PSI. A trigger `some <stallMs> <windowMs>` on the container cgroup's
 *   `memory.pressure`: it fires when some of its tasks together stalled on memory (reclaim,
 *   thrashing) that long within a window — what systemd-oomd and the kernel's docs use. The
 *   trigger's descriptor is polled (`POLLPRI`, no timeout) on the watcher's 250 ms timer rather
 *   than handed to the event loop: neither Deno nor Bun can wait on a raw descriptor, and a
 *   trigger fires at most once per window anyway. Reading `some avg10` on the timer instead would
 *   be an average of the last 10 s: late, and blind to short stalls.
 * - cgroup v1: `memory.pressure_level` (vmpressure: how hard reclaim works for the cgroup),
 *   registered through `cgroup.event_control` with an eventfd per level from the spec's up —
 *   runc's `NotifyMemoryPressure` does the same. The level reported is the highest that fired.
 * - Neither (a cgroup without those files, or a kernel that refuses them): hako's own measure,
 *   its usage past 90 % of its limit, as before; and the watcher says which measure it uses.
 *
 * A hybrid host (v1 controllers, a controller-less cgroup2 such as /sys/fs/cgroup/unified, as
 * this project's test machines) has PSI files in every cgroup2 directory, but hako places a
 * container's cgroup on the hierarchy of its memory controller, v1 there: so such a host gets
 * `memory.pressure_level`.
 *
 * Pressure comes in bursts: the hook fires once per episode — at its first notification, and
 * again only after a whole window (`windowMs`) went by without one.
 * @module
 */
import { existsSync } from "node:fs";
import { detect } from "../cgroup/layout.ts";
import { libc } from "../../ffi/libc.ts";
import { armPressureLevel, armPsiTrigger, pressureFired } from "../../ffi/pressure.ts";

/** A cgroup v1 `memory.pressure_level` level. */
export type PressureLevel = "low" | "medium" | "critical";
/** cgroup v1's `memory.pressure_level` levels, from the least. */
export const PRESSURE_LEVELS: readonly PressureLevel[] = ["low", "medium", "critical"];

/** The spec's `memoryPressure`: when `onMemoryPressure` fires. */
export interface MemoryPressureSpec {
  /**
   * cgroup v2 (PSI): the time, ms, some of its tasks must have stalled on memory within a window
   * (default 150).
   */
  readonly stallMs?: number;
  /**
   * The window, ms: PSI's (500 to 10000; without CAP_SYS_RESOURCE the kernel takes whole
   * multiples of 2000 only), and how long pressure must be gone before the hook fires again
   * (default 2000).
   */
  readonly windowMs?: number;
  /** cgroup v1: the `memory.pressure_level` level that fires it, or a higher one (default `medium`). */
  readonly level?: PressureLevel;
}

/** The defaults of {@link MemoryPressureSpec}. */
export const MEMORY_PRESSURE_DEFAULTS: Required<MemoryPressureSpec> = { stallMs: 150, windowMs: 2000, level: "medium" };

/** What is wrong with a `memoryPressure` value (pure): a field path and a message; undefined when none. */
export function memoryPressureProblem(
  value: unknown,
  path = "memoryPressure",
): { path: string; message: string } | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return {
      path,
      message: "must be an object { stallMs?, windowMs?, level? } (e.g. { stallMs: 150, windowMs: 2000 })",
    };
  }
  const r = value as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (k !== "stallMs" && k !== "windowMs" && k !== "level") {
      return { path: `${path}.${k}`, message: "is not a field of memoryPressure (stallMs, windowMs, level)" };
    }
  }
  const whole = (v: unknown, min: number, max: number) =>
    Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
  if (r.windowMs !== undefined && !whole(r.windowMs, 500, 10_000)) {
    return {
      path: `${path}.windowMs`,
      message: `must be a whole number of ms from 500 to 10000 (PSI's window), got ${JSON.stringify(r.windowMs)}`,
    };
  }
  const windowMs = (r.windowMs as number | undefined) ?? MEMORY_PRESSURE_DEFAULTS.windowMs;
  if (r.stallMs !== undefined && !whole(r.stallMs, 1, windowMs)) {
    return {
      path: `${path}.stallMs`,
      message: `must be a whole number of ms from 1 to the window (${windowMs}), got ${JSON.stringify(r.stallMs)}`,
    };
  }
  if (r.level !== undefined && !(PRESSURE_LEVELS as readonly unknown[]).includes(r.level)) {
    return {
      path: `${path}.level`,
      message: `must be one of ${PRESSURE_LEVELS.join(", ")}, got ${JSON.stringify(r.level)}`,
    };
  }
  return undefined;
}

/** A valid `memoryPressure` with its defaults (pure; the defaults for anything invalid). */
export function resolveMemoryPressure(value: unknown): Required<MemoryPressureSpec> {
  if (value === undefined || memoryPressureProblem(value)) return MEMORY_PRESSURE_DEFAULTS;
  return { ...MEMORY_PRESSURE_DEFAULTS, ...(value as MemoryPressureSpec) };
}

/** The memory cgroup a container's pressure is read from: its directory and version. */
export interface MemoryCgroup {
  readonly dir: string;
  readonly version: 1 | 2;
}

/** The memory cgroup of a container's cgroup `name` on this host (its memory hierarchy's directory). */
export function memoryCgroupOf(name: string): MemoryCgroup | undefined {
  const l = detect();
  const v1 = l.v1.memory;
  if (v1) return { dir: `${v1}/${name}`, version: 1 };
  return l.unified ? { dir: `${l.unified}/${name}`, version: 2 } : undefined;
}

/** Where pressure notifications come from, armed: see the module doc. */
export interface PressureSource {
  /** The measure: `psi` (v2), `pressure_level` (v1), `usage` (hako's 90 %). */
  readonly measure: "psi" | "pressure_level" | "usage";
  /** The level now, if any fired since the last look (`some` for PSI); undefined when none. */
  poll(): string | undefined;
  /** Disarms (idempotent). */
  close(): void;
}

/**
 * Arms the kernel's notifications on a container's memory cgroup (see the module doc); without
 * them, hako's 90 % of `usage` when given.
 * @returns The source, and why the kernel's could not be armed (when they could not); no source
 *   when there is nothing to watch.
 */
export function armPressure(
  cg: MemoryCgroup | undefined,
  spec: Required<MemoryPressureSpec>,
  usage?: () => { readonly current: number; readonly limit: number | null } | undefined,
): { source?: PressureSource; problem?: string } {
  let problem: string | undefined;
  if (cg) {
    try {
      return { source: cg.version === 2 ? psi(cg.dir, spec) : pressureLevel(cg.dir, spec.level) };
    } catch (e) {
      problem = (e as Error).message;
    }
  }
  if (!usage) return { ...(problem ? { problem } : {}) };
  return { source: usageSource(usage), ...(problem ? { problem } : {}) };
}

function psi(dir: string, spec: Required<MemoryPressureSpec>): PressureSource {
  let fd = armPsiTrigger(dir, spec.stallMs * 1000, spec.windowMs * 1000);
  return {
    measure: "psi",
    poll() {
      if (fd < 0) return undefined;
      const r = pressureFired(fd, "psi");
      if (r === "gone") this.close();
      return r === true ? "some" : undefined;
    },
    close() {
      if (fd >= 0) closeFd(fd);
      fd = -1;
    },
  };
}

function pressureLevel(dir: string, level: PressureLevel): PressureSource {
  // One eventfd per level from the spec's up, so that the highest that fired is known.
  const fds: Array<[PressureLevel, number]> = [];
  try {
    for (const l of PRESSURE_LEVELS.slice(PRESSURE_LEVELS.indexOf(level))) fds.push([l, armPressureLevel(dir, l)]);
  } catch (e) {
    for (const [, fd] of fds) closeFd(fd);
    throw e;
  }
  return {
    measure: "pressure_level",
    poll() {
      let top: string | undefined;
      for (const [l, fd] of fds) if (pressureFired(fd, "eventfd") === true) top = l;
      // (the kernel signals the eventfds when the cgroup is removed too: that is no pressure)
      if (top !== undefined && !existsSync(dir)) {
        this.close();
        return undefined;
      }
      return top;
    },
    close() {
      for (const [, fd] of fds.splice(0)) closeFd(fd);
    },
  };
}

/** Usage past this part of the limit counts as pressure where the kernel's measures are missing. */
const USAGE_PRESSURE_AT = 0.9;

function usageSource(
  usage: () => { readonly current: number; readonly limit: number | null } | undefined,
): PressureSource {
  return {
    measure: "usage",
    poll() {
      let m;
      try {
        m = usage();
      } catch { /* the cgroup is going */ }
      if (!m || m.limit === null || m.limit <= 0 || m.current < m.limit * USAGE_PRESSURE_AT) return undefined;
      return m.current >= m.limit * 0.98 ? "critical" : "medium";
    },
    close() {},
  };
}

function closeFd(fd: number): void {
  libc().close(fd);
}
