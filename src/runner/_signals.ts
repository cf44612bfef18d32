/**
 * The signals of a foreground container (`hako run`): what a user at a shell expects of the
 * command they started, as `docker run`'s signal proxy gives it.
 *
 * - TERM, INT, QUIT, HUP, USR1, USR2 and WINCH sent to hako go to the container's init. (With
 *   `-t` the relay turns WINCH into a resize of the pty, which signals the command itself.)
 * - PID 1 of a PID namespace gets only the signals it handles, so a command without a TERM
 *   handler would never end: the first TERM or INT starts the stop timeout (default 10 s, as
 *   `hako stop`'s), after which the container is sent SIGKILL; a second INT (Ctrl-C again) sends
 *   SIGKILL at once.
 * - The listeners are installed before anything is made and removed after everything is undone,
 *   so no signal ends hako half-way (a record being written, a state directory being removed).
 *   A TERM, INT, QUIT or HUP that comes before the command runs stops the run: the container is
 *   not started, and hako exits 128+N as a shell killed by that signal would.
 *
 * @module
 */
import process from "node:process";

/** The signals hako passes on to a foreground container. */
export const FORWARDED_SIGNALS = ["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH"] as const;

/** One of {@link FORWARDED_SIGNALS}. */
export type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

/** The signals that ask the run to end (their default action would end hako). */
const STOPPING: ReadonlySet<ForwardedSignal> = new Set(["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP"]);

/** Numbers of the forwarded signals (Linux). */
const NUMBERS: Readonly<Record<ForwardedSignal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGTERM: 15,
  SIGWINCH: 28,
};

/** The default stop timeout: `hako stop`'s (and docker's) 10 s. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** What receives the signals once the container exists: `Container`'s `kill`. */
export interface SignalTarget {
  /** Sends `sig` (`"SIGTERM"`, `"KILL"`…) to the container's init. */
  kill(sig: string): void;
}

/** How {@link ForegroundSignals} reaches the process (replaced in unit tests). */
export interface SignalHost {
  on(sig: ForwardedSignal, fn: () => void): void;
  off(sig: ForwardedSignal, fn: () => void): void;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
  /** A line for the user (stderr). */
  note(text: string): void;
}

const processHost: SignalHost = {
  on: (sig, fn) => void process.on(sig, fn),
  off: (sig, fn) => void process.off(sig, fn),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
  note: (text) => void process.stderr.write(`${text}\n`),
};

/** Options of {@link ForegroundSignals}. */
export interface ForegroundSignalsOptions {
  /** After the first TERM or INT, how long until SIGKILL (default 10 s). */
  readonly stopTimeoutMs?: number;
  /** True with `-t`: WINCH is the relay's (a resize of the pty), not forwarded. */
  readonly tty?: boolean;
  /** The container's name, for the note when it is killed. */
  readonly name?: string;
  /** The process (default); a double in unit tests. */
  readonly host?: SignalHost;
}

/** The shell's exit code for a process ended by `sig`: 128 + its number. */
export function signalExitCode(sig: ForwardedSignal): number {
  return 128 + NUMBERS[sig];
}

/**
 * The foreground container's signal handling, from before the container is made until after it
 * is undone: {@link ForegroundSignals.listen} first, {@link ForegroundSignals.attach} once the
 * container exists, {@link ForegroundSignals.close} last.
 */
export class ForegroundSignals {
  readonly #host: SignalHost;
  readonly #stopTimeoutMs: number;
  readonly #tty: boolean;
  readonly #name: string | undefined;
  readonly #listeners = new Map<ForwardedSignal, () => void>();
  #target: SignalTarget | undefined;
  #stopping: ForwardedSignal | undefined;
  #interrupted = false;
  #timer: unknown;
  #killed = false;
  #closed = false;

  /** Makes the handler; nothing is listened to until {@link ForegroundSignals.listen}. */
  constructor(options: ForegroundSignalsOptions = {}) {
    this.#host = options.host ?? processHost;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    this.#tty = options.tty ?? false;
    this.#name = options.name;
  }

  /** Listens to every forwarded signal (from now on none ends this process by its default action). */
  listen(): this {
    for (const sig of FORWARDED_SIGNALS) {
      if (this.#listeners.has(sig)) continue;
      const fn = () => this.#received(sig);
      this.#listeners.set(sig, fn);
      this.#host.on(sig, fn);
    }
    return this;
  }

  /**
   * The first TERM, INT, QUIT or HUP received, if any: before the container runs, it means the
   * run is to stop (see {@link signalExitCode} for the exit code).
   */
  get stopping(): ForwardedSignal | undefined {
    return this.#stopping;
  }

  /** True once the stop timeout or a second INT sent SIGKILL. */
  get killed(): boolean {
    return this.#killed;
  }

  /**
   * From now on signals go to `target` (call it right before the container is started). A stop
   * asked for before is not replayed: the caller checks {@link ForegroundSignals.stopping} and
   * does not start the container.
   */
  attach(target: SignalTarget): void {
    this.#target = target;
  }

  /** Stops listening and cancels the stop timeout. Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#host.clearTimer(this.#timer);
    this.#timer = undefined;
    for (const [sig, fn] of this.#listeners) this.#host.off(sig, fn);
    this.#listeners.clear();
  }

  /** {@link ForegroundSignals.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #received(sig: ForwardedSignal): void {
    if (this.#closed) return;
    if (STOPPING.has(sig)) this.#stopping ??= sig;
    const target = this.#target;
    if (!target) return; // before the container runs: a stop is the caller's to act on; others have nobody to go to
    if (sig === "SIGWINCH" && this.#tty) return; // the relay resizes the pty, which signals the command
    if (sig === "SIGINT" && this.#interrupted) return this.#kill(target, "a second SIGINT");
    if (sig === "SIGINT") this.#interrupted = true;
    this.#send(target, sig);
    if ((sig === "SIGTERM" || sig === "SIGINT") && this.#timer === undefined && !this.#killed) {
      const seconds = this.#stopTimeoutMs / 1000;
      this.#timer = this.#host.setTimer(() => {
        this.#timer = undefined;
        if (!this.#closed) this.#kill(target, `${sig} and ${seconds} s (the stop timeout)`);
      }, this.#stopTimeoutMs);
    }
  }

  #kill(target: SignalTarget, why: string): void {
    if (this.#killed) return;
    this.#killed = true;
    if (this.#timer !== undefined) this.#host.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#host.note(`hako: ${this.#name ? `container ${this.#name}` : "the container"}: SIGKILL after ${why}`);
    this.#send(target, "SIGKILL");
  }

  #send(target: SignalTarget, sig: string): void {
    try {
      target.kill(sig);
    } catch { /* it has just ended: its status is what counts */ }
  }
}
