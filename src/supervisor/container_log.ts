/**
 * Where a daemonized container's output goes, and how every log hako keeps stays under its cap
 * (`HAKO_LOG_MAX`, 1 MiB by default: at most about twice that on disk, whatever the rate).
 *
 * The design, and why (the issue: a container running `yes` wrote 11 GB in 26 s past a 1 MiB cap,
 * and the supervisor, copying the file every 2 s, stopped answering):
 *
 * - The container writes to a FIFO (`log.fifo` in its directory), never to the file. A relay,
 *   `hako-log` (ffi/log_relay.ts: a static program of its own, ~1 KiB of code), reads the FIFO and
 *   appends to `log`, cutting it to `log.1` right before a write would take it past the cap. A
 *   pipe gives back-pressure — the container waits while the relay writes — so the cap holds at any
 *   rate, which no checker polling a file the container appends to can promise; and the relay sees
 *   where lines start, so it stamps each one (`hako logs --timestamps`). This is conmon's design
 *   (podman) and containerd-shim's FIFOs (docker).
 * - The relay is not the supervisor: nothing of the container's output crosses the supervisor's
 *   event loop, and a dead supervisor (kill -9) changes nothing for the container or its log. The
 *   relay is in a session of its own; it ends when every writer is gone (the container ended).
 * - The container's end of the FIFO is opened read-write (containerd opens its FIFOs so too): the
 *   FIFO always has a reader, so a container never gets SIGPIPE or EPIPE, even if its relay is
 *   killed — it waits (once the pipe's 64 KiB are full) until a supervisor starts a new relay on
 *   the FIFO, which the supervisor does within a second for every container it owns or adopts (a
 *   new supervisor too: the relay's identity is in `log.relay`).
 * - Where there is no relay (not x86-64; `HAKO_LOG_RELAY=0`; or one could not start), the container
 *   appends to `log` itself, as before: the supervisor caps it every second, off its event loop and
 *   reading at most the cap (its last part goes to `log.1`), which bounds it only as well as a
 *   writer's rate allows, and its lines have no timestamps.
 * - The supervisor's own log (`supervisor.log`) is its own writes: it is cut to `supervisor.log.1`
 *   past the same cap, checked after each message and every tick.
 *
 * @module
 */
import { fstatSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { open as openFile } from "node:fs/promises";
import { check, errno, libc } from "../../ffi/libc.ts";
import { cstr } from "../../ffi/cstring.ts";
import { logRelaySupported, spawnLogRelay } from "../../ffi/log_relay.ts";
import { SyscallError } from "../errors.ts";
import { identify, isRunning, type ProcessIdentity, type StateStore, writePrivateFile } from "../container/state.ts";
import {
  EEXIST,
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  S_IFIFO,
  SIGKILL,
} from "../../ffi/constants.ts";

/** The smallest cap a log may have (the relay's own floor). */
export const MIN_LOG_MAX = 4096;
/** The default cap of one part of a log: 1 MiB. */
export const DEFAULT_LOG_MAX = 1 << 20;

/**
 * The cap from `HAKO_LOG_MAX` (pure): a whole number of bytes, at least {@link MIN_LOG_MAX}.
 * @returns The cap, and a complaint when the value was not usable (the default or the floor is used).
 */
export function logMaxFrom(value: string | undefined): { max: number; problem?: string } {
  if (value === undefined || value === "") return { max: DEFAULT_LOG_MAX };
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value))) {
    return { max: DEFAULT_LOG_MAX, problem: `HAKO_LOG_MAX=${JSON.stringify(value)} is not a number of bytes` };
  }
  const n = Number(value);
  if (n < MIN_LOG_MAX) return { max: MIN_LOG_MAX, problem: `HAKO_LOG_MAX=${n} is below ${MIN_LOG_MAX} bytes` };
  return { max: n };
}

/** What a new container writes to. */
export interface ContainerOutput {
  /** The fd to give the container as stdout and stderr (close it once the container has it). */
  readonly fd: number;
  /** Its relay, when it has one (a child of this process). */
  readonly relay?: ProcessIdentity;
  /** Why there is no relay, when one could not be started. */
  readonly problem?: string;
}

/**
 * Makes a new container's output: its FIFO, with a relay started on it, or (where there is no
 * relay, or it cannot start) its log file, appended to.
 * @throws {SyscallError} When neither can be opened.
 */
export function openContainerOutput(store: StateStore, name: string, maxBytes: number): ContainerOutput {
  let problem: string | undefined;
  if (logRelaySupported()) {
    const fifo = store.logFifoPath(name);
    const { mknod, open, close } = libc();
    let fd = -1;
    try {
      if (mknod(cstr(fifo), S_IFIFO | 0o600, 0n) !== 0) {
        const e = errno();
        if (e !== EEXIST) throw new SyscallError("mknod", e, [fifo, "S_IFIFO"], "make the container's log FIFO");
        // Left by an earlier container of this name: a new one.
        rmSync(fifo, { force: true });
        check(mknod(cstr(fifo), S_IFIFO | 0o600, 0n), "mknod", [fifo, "S_IFIFO"], "make the container's log FIFO");
      }
      // Read-write: the FIFO always has a reader, so the container never gets SIGPIPE (see the module doc).
      fd = check(open(cstr(fifo), O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0), "open", [fifo]);
      const relay = startLogRelay(store, name, maxBytes);
      return { fd, relay };
    } catch (e) {
      if (fd >= 0) close(fd);
      rmSync(fifo, { force: true });
      problem = `no log relay (${(e as Error).message}): the container appends to its log itself`;
    }
  }
  const path = store.logPath(name);
  const fd = check(
    libc().open(cstr(path), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600),
    "open",
    [path],
  );
  return { fd, ...(problem ? { problem } : {}) };
}

/**
 * Starts a relay on a container's FIFO (a new one, or again after its relay died) and records it in
 * `log.relay`. Opening never blocks (O_NONBLOCK; the relay makes its reads blocking): a FIFO whose
 * writers are all gone gives the relay EOF at once, after whatever the pipe still held.
 * @returns Its identity (a child of this process: reap it).
 * @throws {SyscallError} When the FIFO or the directory cannot be opened, or the relay cannot start.
 */
export function startLogRelay(store: StateStore, name: string, maxBytes: number): ProcessIdentity {
  const { open, close } = libc();
  const fifo = store.logFifoPath(name);
  const dirPath = store.dir(name);
  const input = check(open(cstr(fifo), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW, 0), "open", [fifo]);
  let dir = -1;
  try {
    dir = check(open(cstr(dirPath), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0), "open", [dirPath]);
    const pid = spawnLogRelay({ input, dir, file: "log", maxBytes, label: name });
    const id = identify(pid) ?? { pid, startTime: 0 };
    try {
      writePrivateFile(store.logRelayPath(name), `${id.pid} ${id.startTime}\n`);
    } catch (e) {
      // Unrecorded, no supervisor could find it again: it goes (and is reaped) now.
      libc().kill(pid, SIGKILL);
      libc().waitpid(pid, null, 0);
      throw e;
    }
    return id;
  } finally {
    close(input);
    if (dir >= 0) close(dir);
  }
}

/** The relay recorded for a container (`log.relay`), running or not; undefined when it has none. */
export function recordedRelay(store: StateStore, name: string): ProcessIdentity | undefined {
  let text: string;
  try {
    text = readFileSync(store.logRelayPath(name), "utf8");
  } catch {
    return undefined;
  }
  const [pid, startTime] = text.trim().split(" ").map(Number);
  return Number.isSafeInteger(pid) && pid! > 0 && Number.isSafeInteger(startTime)
    ? { pid: pid!, startTime: startTime! }
    : undefined;
}

/** Whether a container's relay (if it has one) still runs: its log may still grow. */
export function relayRuns(store: StateStore, name: string): boolean {
  return isRunning(recordedRelay(store, name));
}

/**
 * Caps a log its writers append to themselves (a container without a relay): past `maxBytes`, its
 * last `maxBytes` are copied to `<path>.1` and it is emptied (the writers append, so they go on at
 * its new end). Asynchronous — the reads and writes run on the runtime's I/O threads, never on
 * the event loop — and it reads at most `maxBytes`, however big the file grew.
 * @returns Whether it was cut.
 */
export async function capAppendedLog(path: string, maxBytes: number): Promise<boolean> {
  let src;
  try {
    src = await openFile(path, O_RDONLY | O_NOFOLLOW);
  } catch {
    return false; // gone
  }
  try {
    const { size } = await src.stat();
    if (size <= maxBytes) return false;
    const tail = new Uint8Array(maxBytes);
    const { bytesRead } = await src.read(tail, 0, maxBytes, size - maxBytes);
    const dst = await openFile(`${path}.1`, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600);
    try {
      await dst.write(tail, 0, bytesRead, 0);
    } finally {
      await dst.close();
    }
    const w = await openFile(path, O_WRONLY | O_NOFOLLOW);
    try {
      await w.truncate(0);
    } finally {
      await w.close();
    }
    return true;
  } catch {
    return false;
  } finally {
    await src.close();
  }
}

/**
 * Caps the supervisor's own log, the file on its stdout and stderr: past `maxBytes` it is renamed
 * `<path>.1` and a new file at `path` takes its place on fds 1 and 2. Nothing when fd 2 is not that
 * file (a supervisor in the foreground writes wherever its caller points it).
 * @returns Whether it was cut.
 */
export function capOwnLog(path: string, maxBytes: number): boolean {
  let size: number;
  try {
    const own = fstatSync(2);
    const named = statSync(path);
    if (own.ino !== named.ino || own.dev !== named.dev) return false;
    size = own.size;
  } catch {
    return false;
  }
  if (size <= maxBytes) return false;
  const { open, dup2, close } = libc();
  try {
    renameSync(path, `${path}.1`);
  } catch {
    return false;
  }
  const fd = open(cstr(path), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600);
  if (fd === -1) return false; // it goes on in <path>.1
  dup2(fd, 1);
  dup2(fd, 2);
  close(fd);
  return true;
}
