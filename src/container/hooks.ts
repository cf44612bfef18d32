/**
 * Container hooks: `bootstrap` (host, once per rootfs), `provision` (inside the container, before
 * the command), `beforeStart` and `afterStop` (host); and the event hooks (host): `onStarted`,
 * `onReady` (the spec's `readiness` probe), `onExited`, `onOom`, `onMemoryPressure`. Each is a
 * TypeScript callback or a command (an argv array, or a shell string run under `/bin/sh -c`).
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { armPressure, MEMORY_PRESSURE_DEFAULTS, type PressureSource } from "./memory_pressure.ts";

/** A hook's command form: an argv array, or a string run under `/bin/sh -c`. */
export type HookCommand = string | readonly string[];

/** A hook: a TypeScript callback receiving `A`, or a command. */
export type Hook<A> = HookCommand | ((arg: A) => void | Promise<void>);

/** The names of the hooks, in the order they run. */
export const HOOK_NAMES = ["bootstrap", "provision", "beforeStart", "afterStop"] as const;

/** The names of the event hooks (see {@link EventWatcher}). */
export const EVENT_HOOK_NAMES = ["onStarted", "onReady", "onExited", "onOom", "onMemoryPressure"] as const;

/** The file in a rootfs that records a successful `bootstrap` hook. */
export const BOOTSTRAP_MARKER = ".hako-bootstrapped";

/** The argv of a command hook. */
export function hookArgv(cmd: HookCommand): string[] {
  return typeof cmd === "string" ? ["/bin/sh", "-c", cmd] : [...cmd];
}

/** A short description of a hook, for `hako plan`. */
export function describeHook(hook: Hook<never>, args: string): string {
  return typeof hook === "function"
    ? `call the TypeScript callback ${hook.name ? `${hook.name}(` : "("}${args})`
    : `run ${JSON.stringify(hookArgv(hook))}`;
}

/** Why a hook's problem, if any: undefined when `hook` is a valid hook. */
export function hookProblem(hook: unknown): string | undefined {
  if (typeof hook === "function") return undefined;
  if (typeof hook === "string") return hook.trim() === "" ? "is an empty command string" : undefined;
  if (Array.isArray(hook)) {
    if (hook.length === 0) return "is an empty argv array";
    const i = hook.findIndex((a) => typeof a !== "string" || a === "");
    return i >= 0 ? `argument ${i} must be a non-empty string` : undefined;
  }
  return `must be a function, a non-empty argv array or a non-empty command string, got ${
    hook === null ? "null" : typeof hook
  }`;
}

/**
 * Runs a command hook on the host, synchronously, with `extraEnv` added to the environment.
 * @throws {Error} When it cannot be run or exits non-zero.
 */
export function runHostCommand(cmd: HookCommand, extraEnv: Record<string, string>, cwd?: string): void {
  const [file, ...args] = hookArgv(cmd);
  const r = spawnSync(file!, args, { cwd, env: { ...process.env, ...extraEnv }, stdio: "inherit" });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(
      `${JSON.stringify(hookArgv(cmd))} ${r.signal ? `was killed by ${r.signal}` : `exited with ${r.status}`}`,
    );
  }
}

/** Runs a host hook: awaits a callback, or runs a command with `env`. */
export async function runHostHook<A>(hook: Hook<A>, arg: A, env: Record<string, string>, cwd?: string): Promise<void> {
  if (typeof hook === "function") await hook(arg);
  else runHostCommand(hook, env, cwd);
}

/**
 * Runs `bootstrap` once per rootfs: skipped when the marker file is there; the marker is written
 * only after the hook succeeded (so a failed one runs again next time).
 * @returns true when it ran.
 */
export async function runBootstrap<S>(
  hook: Hook<{ rootfs: string; spec: S }>,
  rootfs: string,
  spec: S,
): Promise<boolean> {
  const marker = `${rootfs}/${BOOTSTRAP_MARKER}`;
  if (existsSync(marker)) return false;
  await runHostHook(hook, { rootfs, spec }, { HAKO_ROOTFS: rootfs }, rootfs);
  writeFileSync(marker, `${new Date().toISOString()}\n`);
  return true;
}

/**
 * When a container is ready, for its `onReady` hook: a TCP port listening in its network namespace,
 * or a host command that succeeds (with `HAKO_NAME`, `HAKO_PID`).
 */
export interface ReadinessSpec {
  /** A TCP port (1–65535) that a socket in the container's network namespace listens on. */
  readonly tcp?: number;
  /** A command on the host (argv, or a string run by `/bin/sh -c`) that exits 0 once it is ready. */
  readonly command?: HookCommand;
  /** Between probes, ms (default 500). */
  readonly intervalMs?: number;
  /** A command probe's time limit, ms (default 2000; then it is killed and counts as a failure). */
  readonly timeoutMs?: number;
  /** Probes at most (default 120), after which it is reported never ready. */
  readonly retries?: number;
}

/** Every event hook's time limit: a command still running then is killed (SIGKILL). */
export const EVENT_HOOK_TIMEOUT_MS = 30_000;
/** How often the OOM counter and the memory-pressure notifications are looked at. */
const WATCH_MS = 250;

/** What is wrong with a `readiness` value (pure): a field path and a message; undefined when none. */
export function readinessProblem(value: unknown, path = "readiness"): { path: string; message: string } | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return {
      path,
      message: "must be an object { tcp: PORT } or { command: [...] } (with intervalMs, timeoutMs, retries)",
    };
  }
  const r = value as Record<string, unknown>;
  const known = ["tcp", "command", "intervalMs", "timeoutMs", "retries"];
  for (const k of Object.keys(r)) {
    if (!known.includes(k)) {
      return { path: `${path}.${k}`, message: `is not a field of readiness (${known.join(", ")})` };
    }
  }
  if ((r.tcp === undefined) === (r.command === undefined)) {
    return { path, message: "needs tcp (a port) or command, exactly one" };
  }
  if (r.tcp !== undefined && !(Number.isInteger(r.tcp) && (r.tcp as number) >= 1 && (r.tcp as number) <= 65535)) {
    return { path: `${path}.tcp`, message: `must be a port (1–65535), got ${JSON.stringify(r.tcp)}` };
  }
  if (r.command !== undefined) {
    const p = typeof r.command === "function"
      ? "must be a command (argv or string), not a function"
      : hookProblem(r.command);
    if (p) return { path: `${path}.command`, message: p };
  }
  for (
    const [k, min, max] of [["intervalMs", 10, 3_600_000], ["timeoutMs", 10, 3_600_000], [
      "retries",
      1,
      1_000_000,
    ]] as const
  ) {
    const v = r[k];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= min && (v as number) <= max)) {
      return {
        path: `${path}.${k}`,
        message: `must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`,
      };
    }
  }
  return undefined;
}

/**
 * Runs an event hook, never throwing: a callback is awaited, a command run without blocking (its
 * output goes to this process's stderr), each for at most `timeoutMs` (a command is then killed).
 * @returns true when it succeeded; a failure is passed to `log`.
 */
export async function runEventHook<A>(
  label: string,
  hook: Hook<A>,
  arg: A,
  env: Record<string, string>,
  options: { readonly timeoutMs?: number; readonly log: (line: string) => void },
): Promise<boolean> {
  const timeoutMs = options.timeoutMs ?? EVENT_HOOK_TIMEOUT_MS;
  try {
    if (typeof hook === "function") {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not finish within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([Promise.resolve().then(() => hook(arg)), late]);
      } finally {
        clearTimeout(timer);
      }
      return true;
    }
    const r = await runCommand(hook, env, timeoutMs);
    if (r !== 0) throw new Error(`${JSON.stringify(hookArgv(hook))} ${r}`);
    return true;
  } catch (e) {
    options.log(`${label} hook failed: ${e instanceof Error ? e.message : String(e)}`);
    return false;
  }
}

/**
 * Runs a command on the host without blocking, its output on this process's stderr.
 * @returns 0 when it exited 0; else what happened ("exited with 3", "was killed after 2000 ms").
 */
function runCommand(cmd: HookCommand, env: Record<string, string>, timeoutMs: number): Promise<0 | string> {
  const [file, ...args] = hookArgv(cmd);
  return new Promise((resolve) => {
    let late = false;
    const child = spawn(file!, args, { env: { ...process.env, ...env }, stdio: ["ignore", 2, 2] });
    const timer = setTimeout(() => {
      late = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve(`could not run: ${e.message}`);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (late) resolve(`was killed after ${timeoutMs} ms`);
      else if (code === 0) resolve(0);
      else resolve(signal ? `was killed by ${signal}` : `exited with ${code}`);
    });
  });
}

/**
 * Whether a socket listens on TCP `port` in the network namespace of process `pid` (its
 * `/proc/PID/net/tcp` and `tcp6`, which show that namespace's sockets: nothing is entered).
 */
export function tcpListening(pid: number, port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  for (const f of ["tcp", "tcp6"]) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${f}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN
      if (cols[1]?.endsWith(`:${hex}`) && cols[3] === "0A") return true;
    }
  }
  return false;
}

/** The event hooks a watcher fires (the spec's `hooks`, or part of them). */
export interface EventHooks {
  readonly onStarted?: Hook<never>;
  readonly onReady?: Hook<never>;
  readonly onExited?: Hook<never>;
  readonly onOom?: Hook<never>;
  readonly onMemoryPressure?: Hook<never>;
}

/** What an {@link EventWatcher} watches. */
export interface WatchTarget {
  /** The container's name. */
  readonly name: string;
  /** Its init's host pid. */
  readonly pid: number;
  /** Restarts so far (the supervisor's count; 0 otherwise). */
  readonly restartCount?: number;
  /** The event hooks. */
  readonly hooks: EventHooks;
  /** The readiness probe, if any. */
  readonly readiness?: ReadinessSpec;
  /** The OOM kills in its cgroup so far (none: no OOM events). */
  readonly oomKills?: () => number;
  /**
   * Arms its memory-pressure notifications (see `memory_pressure.ts`): the kernel's, or why they
   * could not be armed. Called at {@link EventWatcher.start} when there is an `onMemoryPressure`.
   */
  readonly pressure?: () => { readonly source?: PressureSource; readonly problem?: string };
  /** How long pressure must be gone before `onMemoryPressure` fires again, ms (default 2000). */
  readonly pressureWindowMs?: number;
  /**
   * Its memory use and limit now: hako's own measure of pressure (90 % of the limit), used only
   * where `pressure` is not given or the kernel's could not be armed.
   */
  readonly memory?: () => { readonly current: number; readonly limit: number | null } | undefined;
  /** Where hook failures are reported (default: stderr). */
  readonly log?: (line: string) => void;
  /** Where the events themselves are reported ("web is ready"; default: nowhere). */
  readonly note?: (line: string) => void;
  /** A hook's time limit (default {@link EVENT_HOOK_TIMEOUT_MS}). */
  readonly timeoutMs?: number;
}

/**
 * Fires a running container's event hooks (haconiwa's supervisor hooks): `onStarted` at
 * {@link EventWatcher.start}, `onReady` once its readiness probe succeeds, `onOom` each time its
 * cgroup's OOM-kill counter goes up, `onMemoryPressure` once per episode of the kernel's memory
 * pressure notifications (PSI on v2, `memory.pressure_level` on v1: see `memory_pressure.ts`),
 * and `onExited` at {@link EventWatcher.exited}. The counters are read every 250 ms
 * (the counter is the same on v1 and v2: `memory.oom_control`'s `oom_kill`, `memory.events`'
 * `oom_kill`), on a timer that never keeps a process alive; the readiness probes (bounded by
 * `retries`) do. A hook's failure is logged; nothing here touches the container.
 */
export class EventWatcher {
  readonly #t: WatchTarget;
  readonly #log: (line: string) => void;
  readonly #note: (line: string) => void;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  #oomSeen = 0;
  #pressure: PressureSource | undefined;
  /** Until when a pressure notification belongs to the episode already reported. */
  #quietUntil = 0;
  #pending = new Set<Promise<unknown>>();

  /** @param target What to watch, and its hooks. */
  constructor(target: WatchTarget) {
    this.#t = target;
    this.#log = target.log ?? ((line) => console.error(`hako: ${line}`));
    this.#note = target.note ?? (() => {});
  }

  /** The environment of a command hook for `event`. */
  #env(event: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
      HAKO_EVENT: event,
      HAKO_NAME: this.#t.name,
      HAKO_PID: String(this.#t.pid),
      HAKO_RESTART_COUNT: String(this.#t.restartCount ?? 0),
      ...extra,
    };
  }

  #fire(key: keyof EventHooks, event: string, extraArg: Record<string, unknown>, extraEnv: Record<string, string>) {
    const hook = this.#t.hooks[key] as Hook<unknown> | undefined;
    if (!hook) return Promise.resolve(true);
    const arg = { event, name: this.#t.name, pid: this.#t.pid, restartCount: this.#t.restartCount ?? 0, ...extraArg };
    const p = runEventHook(`${this.#t.name}: ${key}`, hook, arg, this.#env(event, extraEnv), {
      log: this.#log,
      ...(this.#t.timeoutMs ? { timeoutMs: this.#t.timeoutMs } : {}),
    });
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
    return p;
  }

  /** True when there is something to watch or fire. */
  static wanted(hooks: EventHooks, readiness?: ReadinessSpec): boolean {
    return !!(readiness || hooks.onStarted || hooks.onReady || hooks.onExited || hooks.onOom || hooks.onMemoryPressure);
  }

  /**
   * The container's command started: fires `onStarted`, starts the probe and the counters. With
   * `adopted` (a supervisor took over a container that started under the one before it), only the
   * counters: `onStarted` and `onReady` were that one's to fire.
   */
  start(options: { readonly adopted?: boolean } = {}): void {
    if (!options.adopted) void this.#fire("onStarted", "started", {}, {});
    try {
      this.#oomSeen = this.#t.oomKills?.() ?? 0;
    } catch { /* read again on the next tick */ }
    if (this.#t.hooks.onMemoryPressure) this.#armPressure();
    if (this.#t.hooks.onOom || this.#pressure) {
      this.#timer = setInterval(() => this.#check(), WATCH_MS);
      unref(this.#timer);
    }
    if (this.#t.readiness && !options.adopted) void this.#probe(this.#t.readiness);
  }

  #armPressure(): void {
    const { source, problem } = this.#t.pressure?.() ??
      armPressure(undefined, MEMORY_PRESSURE_DEFAULTS, this.#t.memory);
    if (problem) {
      this.#log(
        `${this.#t.name}: the kernel's memory pressure notifications could not be armed (${problem})${
          source ? `: onMemoryPressure fires at 90 % of its memory limit` : ": onMemoryPressure will not fire"
        }`,
      );
    }
    this.#pressure = source;
    if (source) this.#note(`${this.#t.name}: onMemoryPressure armed on ${source.measure}`);
  }

  /** Looks at the counters; `final` (it ended): not at the pressure (its cgroup may be going). */
  #check(final = false): void {
    if (this.#stopped) return;
    if (this.#t.hooks.onOom && this.#t.oomKills) {
      let n = this.#oomSeen;
      try {
        n = this.#t.oomKills();
      } catch { /* the cgroup is going */ }
      if (n > this.#oomSeen) {
        this.#oomSeen = n;
        this.#note(`${this.#t.name}: the OOM killer killed a process in it (${n} so far)`);
        void this.#fire("onOom", "oom", { oomKills: n }, { HAKO_OOM_KILLS: String(n) });
      }
    }
    if (this.#pressure && !final) {
      let level: string | undefined;
      try {
        level = this.#pressure.poll();
      } catch { /* the cgroup is going */ }
      if (level !== undefined) {
        const now = Date.now(), measure = this.#pressure.measure;
        // (once per episode: again only after a window without a notification)
        if (now >= this.#quietUntil) {
          void this.#fire("onMemoryPressure", "memory-pressure", { level, measure }, {
            HAKO_PRESSURE: level,
            HAKO_PRESSURE_MEASURE: measure,
          });
        }
        this.#quietUntil = now + (this.#t.pressureWindowMs ?? MEMORY_PRESSURE_DEFAULTS.windowMs);
      }
    }
  }

  async #probe(r: ReadinessSpec): Promise<void> {
    const interval = r.intervalMs ?? 500, retries = r.retries ?? 120, timeoutMs = r.timeoutMs ?? 2000;
    for (let i = 0; i < retries && !this.#stopped; i++) {
      let ok = false;
      if (r.tcp !== undefined) ok = tcpListening(this.#t.pid, r.tcp);
      else if (r.command !== undefined) ok = await runCommand(r.command, this.#env("readiness"), timeoutMs) === 0;
      if (this.#stopped) return;
      if (ok) {
        this.#note(`${this.#t.name} is ready`);
        await this.#fire("onReady", "ready", {}, {});
        return;
      }
      // (a timer that holds the process: a script may await its onReady; the probes are bounded)
      await new Promise<void>((res) => setTimeout(res, interval));
    }
    if (!this.#stopped) this.#log(`${this.#t.name}: never ready (${retries} probes): onReady not fired`);
  }

  /**
   * The command ended: stops watching (after a last look at the OOM counter), fires `onExited`
   * and waits for the hooks still running. `shellCode` null: unknown (an adopted container, not
   * this process's child: `HAKO_STATUS=unknown`).
   */
  async exited(status: { readonly shellCode: number | null; readonly oomKilled?: number }): Promise<void> {
    if (this.#stopped) return;
    this.#check(true);
    this.stop();
    // The counter as read when it ended (the cgroup may be gone now): a kill the last look missed.
    const n = status.oomKilled ?? 0;
    if (this.#t.hooks.onOom && n > this.#oomSeen) {
      this.#oomSeen = n;
      this.#note(`${this.#t.name}: the OOM killer killed a process in it (${n} so far)`);
      void this.#fire("onOom", "oom", { oomKills: n }, { HAKO_OOM_KILLS: String(n) });
    }
    void this.#fire("onExited", "exited", { status }, { HAKO_STATUS: String(status.shellCode ?? "unknown") });
    await Promise.all([...this.#pending]);
  }

  /** Stops watching (no more events; hooks running go on). Idempotent. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#pressure?.close();
    this.#pressure = undefined;
  }
}

/** A timer that does not keep the process alive (Deno and Bun take node's unref). */
function unref(t: unknown): void {
  (t as { unref?: () => void })?.unref?.();
}
