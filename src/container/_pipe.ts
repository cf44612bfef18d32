/**
 * The report pipe between a forked child and its parent (private to `src/container/`): the child
 * writes JSON lines (`{"error":{…}}` naming the step that failed, or facts such as `{"pid":123}`)
 * to the close-on-exec write end; the parent reads until EOF, which comes when every copy of the
 * write end is closed — by a successful execve, or by `_exit`.
 *
 * The same protocol as container.ts's status pipe, in a form exec.ts can share.
 * @module
 */
import { check, checkRetry, errno, libc } from "../../ffi/libc.ts";
import { fsError, SetupError, SyscallError } from "../errors.ts";
import { EINTR, O_CLOEXEC, POLLIN } from "../../ffi/constants.ts";

/** A child's report of a failed step. */
export interface ChildError {
  /** The step's name. */
  step: string;
  /** The error's message. */
  message: string;
  /** The failed call, for a SyscallError. */
  syscall?: string;
  /** The errno's name, for a SyscallError. */
  code?: string;
  /** The errno, for a SyscallError. */
  errno?: number;
}

/**
 * A close-on-exec pipe.
 * @returns `[readEnd, writeEnd]`.
 * @throws {SyscallError} When pipe2 fails.
 */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check(libc().pipe2(fds, O_CLOEXEC), "pipe2", [], "make the report pipe");
  return [fds[0]!, fds[1]!];
}

/** Closes `fd` unless it is negative. */
export function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

/**
 * Writes all of `bytes` (retrying on EINTR). @returns false when write failed. Runs in forked
 * children too, so its EINTR loop stays written out: no closure allocated there (see ffi/fork.ts).
 */
export function writeAll(fd: number, bytes: Uint8Array): boolean {
  const { write } = libc();
  let off = 0;
  while (off < bytes.length) {
    const n = write(fd, bytes.subarray(off), BigInt(bytes.length - off));
    if (n === -1) {
      if (errno() === EINTR) continue;
      return false;
    }
    off += n;
  }
  return true;
}

/** Writes `obj` as one JSON line (in the child: synchronous, never throws). */
export function report(fd: number, obj: unknown): void {
  try {
    writeAll(fd, new TextEncoder().encode(JSON.stringify(obj) + "\n"));
  } catch { /* nothing left to tell */ }
}

/** True when a read of `fd` will not block (input, EOF or an error). */
function readable(fd: number): boolean {
  const pfd = new Int32Array(2);
  const view = new DataView(pfd.buffer);
  pfd[0] = fd;
  view.setInt16(4, POLLIN, true);
  const n = checkRetry(() => libc().poll(new Uint8Array(pfd.buffer), 1n, 0), "poll", [fd], "watch the report pipe");
  return n > 0 && view.getInt16(6, true) !== 0;
}

/**
 * Reads JSON lines from `fd` until EOF, without blocking the event loop (polls, sleeping up to
 * 10 ms between tries). `onLine` sees each object as it arrives.
 * @returns Every object read, in order (a garbled line becomes an `error` report).
 * @throws {Error} When EOF does not come within `timeoutMs`.
 * @throws {SyscallError} When poll or read fails.
 */
export async function readReports(
  fd: number,
  timeoutMs: number,
  onLine: (obj: Record<string, unknown>) => void = () => {},
): Promise<Record<string, unknown>[]> {
  const until = Date.now() + timeoutMs;
  const out: Record<string, unknown>[] = [];
  const buf = new Uint8Array(4096);
  let pending: number[] = [];
  let delay = 1;
  const flush = (final: boolean) => {
    for (let nl = pending.indexOf(10); nl >= 0 || (final && pending.length); nl = pending.indexOf(10)) {
      const end = nl >= 0 ? nl : pending.length;
      const line = new TextDecoder().decode(new Uint8Array(pending.slice(0, end)));
      pending = pending.slice(end + 1);
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line);
      } catch {
        obj = { error: { step: "setup", message: `garbled report from the child: ${JSON.stringify(line)}` } };
      }
      out.push(obj);
      onLine(obj);
    }
  };
  for (;;) {
    if (!readable(fd)) {
      if (Date.now() > until) throw new Error(`no word from the child in ${timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, delay));
      delay = Math.min(delay * 2, 10);
      continue;
    }
    const n = checkRetry(() => libc().read(fd, buf, BigInt(buf.length)), "read", [fd], "read the report pipe");
    if (n === 0) break;
    pending.push(...buf.subarray(0, n));
    flush(false);
  }
  flush(true);
  return out;
}

/** Turns an error thrown in the child into what it reports for `step`. */
export function describe(step: string, e: unknown): ChildError {
  // (an error of a call made early on another step's behalf: see setup.ts's capture)
  step = (e as { forStep?: string } | null)?.forStep ?? step;
  let err = e;
  if (!(err instanceof SyscallError)) {
    const node = e as { syscall?: string; path?: string; code?: string };
    if (node && typeof node === "object" && typeof node.code === "string") {
      err = fsError(e, node.syscall ?? "fs", node.path ?? "");
    }
  }
  if (err instanceof SyscallError) {
    return { step, message: err.message, syscall: err.syscall, code: err.code, errno: err.errno };
  }
  return { step, message: err instanceof Error ? err.message : String(err) };
}

/** The {@link SetupError} for a child's report; its `cause` is a SyscallError when errno is known. */
export function setupError(err: ChildError): SetupError {
  let cause: Error;
  if (typeof err.errno === "number" && err.errno > 0) {
    cause = new SyscallError(err.syscall ?? "?", err.errno);
    Object.defineProperty(cause, "message", { value: err.message });
  } else cause = new Error(err.message);
  return new SetupError(err.step, err.message, { cause });
}
