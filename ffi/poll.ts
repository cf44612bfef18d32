/**
 * Waiting for file descriptors (a container's status pipe, a pidfd) to become readable, promptly
 * and without holding the event loop for long.
 *
 * A sleep-and-check loop (`setTimeout` with a growing delay) adds up to its delay to every wait:
 * measured at 1–3 ms for each of a container's three waits (setup report, exec, exit). Here one
 * shared reactor polls every pending descriptor in a single `poll(2)` call. While some wait is
 * young (the first {@link EAGER_MS} ms: a container's setup usually takes a few ms), `poll` blocks
 * for at most {@link SLICE_MS} ms at a time, so readiness is seen within microseconds, and the
 * event loop gets a turn (`setImmediate`) between slices; older waits are polled without blocking,
 * with sleeps growing to 10 ms, as before.
 *
 * @example
 * ```ts ignore
 * import { pidfdOpen, waitReadable } from "./ffi/poll.ts";
 * const pidfd = pidfdOpen(pid); // readable once the process has ended
 * await waitReadable(pidfd, 30_000);
 * ```
 * @module
 */
import { setImmediate } from "node:timers";
import { checkRetry, errno, libc, retryEintr } from "./libc.ts";
import { cstr } from "./cstring.ts";
import { SyscallError } from "./errno.ts";
import { SYS } from "./syscalls.ts";
import { ENOSYS, ESRCH, O_CLOEXEC, O_RDONLY, POLLERR, POLLIN, POLLPRI } from "./constants.ts";

/** The longest a single blocking poll holds the event loop. */
export const SLICE_MS = 1;
/** For how long after a wait begins the reactor may block (in slices). */
export const EAGER_MS = 50;

interface Waiter {
  readonly fd: number;
  readonly since: number;
  readonly until: number;
  readonly resolve: (ready: boolean) => void;
}

const waiters = new Set<Waiter>();
let running = false;

/**
 * Polls `fds` once, waiting up to `timeoutMs` (0: just check).
 * @returns For each fd, whether a read will not block (input, hang-up or error).
 * @throws {SyscallError} When poll fails (other than EINTR).
 */
export function pollReadable(fds: readonly number[], timeoutMs: number): boolean[] {
  const buf = new Uint8Array(8 * fds.length);
  const view = new DataView(buf.buffer);
  fds.forEach((fd, i) => {
    view.setInt32(8 * i, fd, true);
    view.setInt16(8 * i + 4, POLLIN, true);
  });
  const { poll } = libc();
  const n = checkRetry(() => poll(buf, BigInt(fds.length), timeoutMs), "poll", fds);
  return fds.map((_, i) => n > 0 && view.getInt16(8 * i + 6, true) !== 0);
}

/**
 * Resolves true once `fd` is readable (or hung up), false after `timeoutMs`. Does not block the
 * event loop for more than {@link SLICE_MS} ms at a time.
 * @throws {SyscallError} When the first check fails (a bad fd shows as readable: POLLNVAL).
 */
export function waitReadable(fd: number, timeoutMs: number): Promise<boolean> {
  if (pollReadable([fd], 0)[0]) return Promise.resolve(true);
  const now = performance.now();
  return new Promise((resolve) => {
    waiters.add({ fd, since: now, until: now + timeoutMs, resolve });
    if (!running) void reactor();
  });
}

async function reactor(): Promise<void> {
  running = true;
  let delay = 1;
  try {
    while (waiters.size) {
      const list = [...waiters];
      const start = performance.now();
      const eager = list.some((w) => start - w.since < EAGER_MS);
      let ready: boolean[];
      try {
        ready = pollReadable(list.map((w) => w.fd), eager ? SLICE_MS : 0);
      } catch {
        ready = list.map(() => true); // let each caller find out what is wrong with its fd
      }
      const now = performance.now();
      list.forEach((w, i) => {
        if (ready[i] || now >= w.until) {
          waiters.delete(w);
          w.resolve(ready[i]!);
        }
      });
      if (!waiters.size) break;
      if (eager) {
        delay = 1;
        await new Promise<void>((res) => setImmediate(res));
      } else {
        await new Promise((res) => setTimeout(res, delay));
        delay = Math.min(delay * 2, 10);
      }
    }
  } finally {
    running = false;
  }
}

/**
 * `pidfd_open(pid, 0)`: a close-on-exec descriptor that becomes readable when the process ends
 * (Linux 5.3+). Close it with `libc().close`.
 * @returns The descriptor, or -1 when the kernel has no pidfd_open (ENOSYS) or the process is gone (ESRCH).
 * @throws {SyscallError} For other failures.
 */
export function pidfdOpen(pid: number): number {
  const fd = Number(libc().syscall(BigInt(SYS.pidfd_open), BigInt(pid), 0n, 0n, 0n, 0n));
  if (fd === -1) {
    const e = errno();
    if (e === ENOSYS || e === ESRCH) return -1;
    throw new SyscallError("pidfd_open", e, [pid]);
  }
  return fd;
}

/**
 * Tells whether this mount namespace's mount table changed since the last look: the kernel marks
 * an open `/proc/self/mountinfo` with POLLPRI|POLLERR after any mount or unmount (as libmount and
 * systemd watch it), so what was read from it can be kept until then.
 */
export class MountTableWatch {
  readonly #fd: number;
  readonly #buf = new Uint8Array(8);

  /** Opens `/proc/self/mountinfo` to watch. @throws {SyscallError} When it cannot be opened. */
  constructor() {
    const fd = libc().open(cstr("/proc/self/mountinfo"), O_RDONLY | O_CLOEXEC, 0);
    if (fd === -1) throw new SyscallError("open", errno(), ["/proc/self/mountinfo"]);
    this.#fd = fd;
    const view = new DataView(this.#buf.buffer);
    view.setInt32(0, fd, true);
    view.setInt16(4, POLLPRI, true);
  }

  /** True when the mount table changed since the watch was made or last asked (or poll failed). */
  changed(): boolean {
    const view = new DataView(this.#buf.buffer);
    view.setInt16(6, 0, true);
    const n = retryEintr(() => libc().poll(this.#buf, 1n, 0));
    return n !== 0 && (n === -1 || (view.getInt16(6, true) & (POLLPRI | POLLERR)) !== 0);
  }

  /** Stops watching. */
  close(): void {
    libc().close(this.#fd);
  }
}
