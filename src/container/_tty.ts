/**
 * The relay of `-t`: the caller's terminal (this process's stdin and stdout) on one side, the
 * master of a container's pty ({@link Container.terminal}, or what `execIn`'s `onTerminal` gets)
 * on the other, as `docker run -t` / `-it` relays them.
 *
 * - master → stdout always; stdin → master only with `input` (docker's `-i`: `-t` alone gives the
 *   command a terminal but no input from the caller).
 * - With `input` and a terminal on stdin, that terminal is in raw mode while the relay runs (no
 *   echo or line editing of its own: the container's pty does both, and ^C, ^Z, ^\ reach it as
 *   bytes) and is given its settings back by {@link TerminalRelay.close} — which every exit path
 *   of the CLI runs (`finally`), with a process `exit` listener as a backstop. When stdin is not
 *   a terminal (a script, a pipe), nothing is made raw, and at the end of stdin the pty gets its
 *   end-of-file character, so the command reads EOF as it would from a terminal.
 * - The window size follows the caller's terminal: `SIGWINCH` → `TIOCSWINSZ` on the master.
 * - Nothing blocks the event loop: the master is non-blocking, stdin is read only once poll says
 *   it is readable (the reactor of `ffi/poll.ts`), so the event loop keeps forwarding signals.
 * - Output ends at EIO (or EOF) on the master, once no process holds the pty; after the command
 *   has ended, {@link TerminalRelay.finish} waits for that, or for a moment without output (a
 *   process outside a PID namespace of its own may still hold the pty).
 *
 * @module
 */
import process from "node:process";
import { errno, libc, retryEintr } from "../../ffi/libc.ts";
import { waitReadable } from "../../ffi/poll.ts";
import {
  eofCharacter,
  isTerminal,
  makeRaw,
  restoreTerminal,
  setNonBlocking,
  setWindowSize,
  type WindowSize,
  windowSize,
} from "../../ffi/tty.ts";
import { EAGAIN } from "../../ffi/constants.ts";

/** How long one wait for input lasts before the loop looks at whether it should stop. */
const WAIT_MS = 500;

/**
 * The size of the caller's terminal: of stdout, else stdin, else stderr (docker reads its
 * output's).
 * @returns The size, or undefined when none of them is a terminal.
 */
export function callerWindowSize(): WindowSize | undefined {
  for (const fd of [1, 0, 2]) {
    const size = windowSize(fd);
    if (size) return size;
  }
  return undefined;
}

/**
 * Writes all of `bytes` to `fd` (a pty master or a pipe handed over by `hako attach`), waiting
 * without blocking the event loop while a non-blocking `fd` is full; a blocking one blocks until
 * there is room. (`hako attach` makes its pty master non-blocking: the file description is shared
 * with the log relay, which waits in poll on EAGAIN — see `ffi/log_relay.ts` and attach.ts.)
 * @param stop Says to give up waiting on a full `fd`.
 * @returns False when the write failed (EIO, EPIPE: nothing reads it any more), or `stop()` said so.
 */
export async function writeAllTo(
  fd: number,
  bytes: Uint8Array,
  stop: () => boolean = () => false,
): Promise<boolean> {
  const { write } = libc();
  let off = 0;
  while (off < bytes.length) {
    const n = retryEintr(() => write(fd, bytes.subarray(off), BigInt(bytes.length - off)));
    if (n >= 0) {
      off += n;
      continue;
    }
    if (errno() !== EAGAIN || stop()) return false;
    await sleep(2);
  }
  return true;
}

/**
 * Makes a descriptor `hako attach` was handed non-blocking, so that a full pipe or pty (a command
 * that does not read) never blocks the event loop: {@link writeAllTo} waits instead. A pipe's write
 * end is shared with the supervisor and other attaches, which never read it; a pty master's
 * description with the log relay, which waits in poll on EAGAIN rather than ending (a relay of a
 * hako from before that change ends there).
 * @throws {SyscallError} When fcntl fails.
 */
export function nonBlockingPipe(fd: number): void {
  setNonBlocking(fd, true);
}

/**
 * Gives the terminal whose master is `master` the caller's window size (docker's resize on attach
 * and on SIGWINCH).
 * @returns Whether it was set (false: the caller has no terminal, or the pty is gone).
 */
export function resizeToCaller(master: number): boolean {
  const size = callerWindowSize();
  if (!size) return false;
  try {
    setWindowSize(master, size);
    return true;
  } catch {
    return false;
  }
}

/**
 * Puts the caller's terminal on `fd` in raw mode (cfmakeraw, as docker's attach to a -t container
 * does: no echo, no line editing, no signals from keys, no output processing).
 * @returns What gives it its settings back (idempotent; also run at the process's exit), or
 *   undefined when `fd` is not a terminal.
 * @throws {SyscallError} When the terminal cannot be made raw.
 */
export function rawCallerTerminal(fd = 0): (() => void) | undefined {
  const saved = makeRaw(fd);
  if (!saved) return undefined;
  let done = false;
  const restore = () => {
    if (done) return;
    done = true;
    process.off("exit", restore);
    restoreTerminal(fd, saved);
  };
  process.on("exit", restore);
  return restore;
}

/** Options of {@link TerminalRelay}. */
export interface RelayOptions {
  /** Relay stdin to the terminal (`-i`); default false. */
  readonly input?: boolean;
  /** The caller's input (default 0). */
  readonly stdin?: number;
  /** Where the terminal's output goes (default 1). */
  readonly stdout?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A relay between the caller's terminal and a pty's master. Made before the command starts (so
 * its terminal is raw before the first key), attached to the master once there is one, finished
 * when the command has ended, closed on every path.
 *
 * @example
 * ```ts ignore
 * const relay = new TerminalRelay({ input: true });
 * try {
 *   relay.attach(c.terminal!);
 *   await c.start();
 *   const status = await c.wait();
 *   await relay.finish();
 * } finally {
 *   relay.close();
 * }
 * ```
 */
export class TerminalRelay {
  readonly #input: boolean;
  readonly #stdin: number;
  readonly #stdout: number;
  /** The caller's terminal settings, while it is raw. */
  #saved: Uint8Array | undefined;
  #master = -1;
  #closed = false;
  #inputStopped = false;
  #outputDone: Promise<void> = Promise.resolve();
  #outputEnded = false;
  #lastOutput = 0;
  #onExit = () => this.#restore();
  #onWinch = () => this.#resize();

  /**
   * Sets the caller's terminal raw when `input` is asked for and stdin is a terminal.
   * @throws {SyscallError} When the terminal cannot be made raw.
   */
  constructor(options: RelayOptions = {}) {
    this.#input = options.input ?? false;
    this.#stdin = options.stdin ?? 0;
    this.#stdout = options.stdout ?? 1;
    if (this.#input) {
      this.#saved = makeRaw(this.#stdin);
      if (this.#saved) process.on("exit", this.#onExit);
    }
  }

  /** True while the caller's terminal is in raw mode. */
  get raw(): boolean {
    return this.#saved !== undefined;
  }

  /**
   * Starts relaying to and from `master` (made non-blocking; the caller keeps owning it).
   * @throws {Error} When attached twice or after close.
   */
  attach(master: number): void {
    if (this.#closed || this.#master >= 0) throw new Error("TerminalRelay: attach() once, before close()");
    this.#master = master;
    setNonBlocking(master, true);
    if ([0, 1, 2].some((fd) => isTerminal(fd))) process.on("SIGWINCH", this.#onWinch);
    this.#lastOutput = performance.now();
    // (a pump that fails — a descriptor gone under it — just stops: the relay must never take the
    // process down with the caller's terminal still raw)
    this.#outputDone = this.#pumpOutput().catch(() => {});
    if (this.#input) void this.#pumpInput().catch(() => {});
  }

  /**
   * After the command has ended: stops reading input, waits until the pty's output has all been
   * relayed (EIO on the master) or none came for `quietMs`, then closes the relay.
   */
  async finish(quietMs = 250): Promise<void> {
    this.#inputStopped = true;
    this.#lastOutput = Math.max(this.#lastOutput, performance.now());
    while (!this.#outputEnded && !this.#closed) {
      const left = quietMs - (performance.now() - this.#lastOutput);
      if (left <= 0) break;
      await Promise.race([this.#outputDone, sleep(Math.min(left, 50))]);
    }
    this.close();
  }

  /** Stops relaying and gives the caller's terminal its settings back. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#inputStopped = true;
    process.off("SIGWINCH", this.#onWinch);
    this.#restore();
  }

  /** {@link TerminalRelay.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #restore(): void {
    const saved = this.#saved;
    if (!saved) return;
    this.#saved = undefined;
    process.off("exit", this.#onExit);
    restoreTerminal(this.#stdin, saved);
  }

  #resize(): void {
    if (this.#closed || this.#master < 0) return;
    const size = callerWindowSize();
    if (!size) return;
    try {
      setWindowSize(this.#master, size);
    } catch { /* the pty is gone */ }
  }

  /** master → stdout, until EIO/EOF on the master or close. */
  async #pumpOutput(): Promise<void> {
    const buf = new Uint8Array(65536);
    const { read } = libc();
    let discard = false;
    try {
      while (!this.#closed) {
        const n = retryEintr(() => read(this.#master, buf, BigInt(buf.length)));
        if (n > 0) {
          this.#lastOutput = performance.now();
          // (stdout gone — a closed pipe —: the output is read and dropped, so the command never
          // blocks on a full terminal)
          if (!discard && !(await this.#writeAll(this.#stdout, buf.subarray(0, n)))) discard = true;
          continue;
        }
        if (n === 0) return;
        const e = errno();
        if (e !== EAGAIN) return; // EIO: no process holds the pty any more (or the master was closed)
        await waitReadable(this.#master, WAIT_MS);
      }
    } finally {
      this.#outputEnded = true;
    }
  }

  /** stdin → master, until the end of stdin, or the relay stops taking input. */
  async #pumpInput(): Promise<void> {
    const buf = new Uint8Array(4096);
    const { read } = libc();
    let last = 10;
    while (!this.#inputStopped) {
      if (!(await waitReadable(this.#stdin, WAIT_MS))) continue;
      if (this.#inputStopped) return;
      const n = retryEintr(() => read(this.#stdin, buf, BigInt(buf.length)));
      if (n > 0) {
        last = buf[n - 1]!;
        if (!(await this.#writeAll(this.#master, buf.subarray(0, n), () => this.#inputStopped))) return;
        continue;
      }
      if (n === -1) {
        if (errno() === EAGAIN) continue;
        return;
      }
      // End of input. A terminal in raw mode only says so when it hangs up: nothing to pass on.
      // Otherwise the pty's EOF character, twice after a partial line (the first ends the line).
      if (!this.#saved) {
        const eof = eofCharacter(this.#master);
        await this.#writeAll(this.#master, new Uint8Array(last === 10 ? [eof] : [eof, eof]), () => this.#closed);
      }
      return;
    }
  }

  /**
   * Writes all of `bytes` to `fd`, waiting (without blocking the event loop) while a non-blocking
   * `fd` is full. @returns False when the write failed, or `stop()` said to give up.
   */
  #writeAll(fd: number, bytes: Uint8Array, stop: () => boolean = () => false): Promise<boolean> {
    return writeAllTo(fd, bytes, stop);
  }
}
