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
 *   appends to its logs itself: its stdout to `log`, its stderr to `log.err` (the names the relays
 *   write, so `hako logs` prints them to its stdout and its stderr the same way). The supervisor
 *   caps each every second, off its event loop and reading at most the cap (its last part goes to
 *   `log.1`, `log.err.1`), which bounds them only as well as a writer's rate allows. No process
 *   sees where their lines start, so they have no timestamps: `hako logs` says so for
 *   `--timestamps` and refuses `--since`/`--until`, and prints stdout's lines before stderr's
 *   (which of two lines of different streams came first is not known).
 * - The supervisor's own log (`supervisor.log`) is its own writes: it is cut to `supervisor.log.1`
 *   past the same cap, checked after each message and every tick.
 *
 * @module
 */
import { fstatSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { open as openFile } from "node:fs/promises";
import { join } from "node:path";
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

/**
 * A container's two output streams. With a relay each has its FIFO, its relay and its log: stdout
 * in `log.fifo` → `log` (`log.1`), recorded in `log.relay`; stderr in `log.err.fifo` → `log.err`
 * (`log.err.1`), recorded in `log.err.relay` — kept apart as docker's log drivers do (its json-file
 * driver records `"stream":"stdout"|"stderr"` per line), so that `hako logs` writes the container's
 * stderr to its own stderr. A log of a container made before (no `log.err.relay`) is all stdout.
 * Without a relay the container appends to `log` and `log.err` itself: kept apart too, without
 * timestamps.
 */
export type LogStream = "stdout" | "stderr";
/** Both streams, stdout first. */
export const LOG_STREAMS: readonly LogStream[] = ["stdout", "stderr"];

/** The name of a stream's log in the container's directory (its older part is `<name>.1`). */
export function streamLogName(stream: LogStream): string {
  return stream === "stdout" ? "log" : "log.err";
}

/** Where a stream's log, FIFO and relay record are. */
export function streamPaths(store: StateStore, name: string, stream: LogStream): {
  readonly log: string;
  readonly fifo: string;
  readonly relay: string;
} {
  if (stream === "stdout") {
    return { log: store.logPath(name), fifo: store.logFifoPath(name), relay: store.logRelayPath(name) };
  }
  const dir = store.dir(name);
  return { log: join(dir, "log.err"), fifo: join(dir, "log.err.fifo"), relay: join(dir, "log.err.relay") };
}

/** What a new container writes to. */
export interface ContainerOutput {
  /** The fd to give the container as stdout (close it once the container has it). */
  readonly fd: number;
  /** The fd to give it as stderr (its own FIFO, or `log.err`; close it too when it is not `fd`). */
  readonly errFd: number;
  /** Its relays (stdout's, then stderr's), when it has them (children of this process). */
  readonly relays?: readonly ProcessIdentity[];
  /** Why there is no relay, when one could not be started. */
  readonly problem?: string;
}

/**
 * Makes a new container's output: a FIFO per stream, with a relay started on each, or (where there
 * is no relay, or it cannot start) its log files (`log`, `log.err`), appended to.
 * @throws {SyscallError} When neither can be opened.
 */
export function openContainerOutput(store: StateStore, name: string, maxBytes: number): ContainerOutput {
  let problem: string | undefined;
  if (logRelaySupported()) {
    const { mknod, open, close, kill, waitpid } = libc();
    const fds: number[] = [];
    const relays: ProcessIdentity[] = [];
    try {
      for (const stream of LOG_STREAMS) {
        const { fifo } = streamPaths(store, name, stream);
        if (mknod(cstr(fifo), S_IFIFO | 0o600, 0n) !== 0) {
          const e = errno();
          if (e !== EEXIST) throw new SyscallError("mknod", e, [fifo, "S_IFIFO"], "make the container's log FIFO");
          // Left by an earlier container of this name: a new one.
          rmSync(fifo, { force: true });
          check(mknod(cstr(fifo), S_IFIFO | 0o600, 0n), "mknod", [fifo, "S_IFIFO"], "make the container's log FIFO");
        }
        // Read-write: the FIFO always has a reader, so the container never gets SIGPIPE (see the module doc).
        fds.push(check(open(cstr(fifo), O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0), "open", [fifo]));
        relays.push(startLogRelay(store, name, maxBytes, stream));
      }
      return { fd: fds[0]!, errFd: fds[1]!, relays };
    } catch (e) {
      // Undone: a relay already started goes (and is reaped), its record and both FIFOs too.
      for (const fd of fds) close(fd);
      for (const r of relays) kill(r.pid, SIGKILL), waitpid(r.pid, null, 0);
      for (const stream of LOG_STREAMS) {
        const paths = streamPaths(store, name, stream);
        rmSync(paths.fifo, { force: true });
        rmSync(paths.relay, { force: true });
      }
      problem = `no log relay (${(e as Error).message}): the container appends to its log itself`;
    }
  }
  // Each stream appended to its own file (docker's json-file driver keeps each line's stream).
  const fds: number[] = [];
  try {
    for (const path of appendedLogPaths(store, name)) {
      fds.push(check(
        libc().open(cstr(path), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600),
        "open",
        [path],
      ));
    }
  } catch (e) {
    for (const fd of fds) libc().close(fd);
    throw e;
  }
  return { fd: fds[0]!, errFd: fds[1]!, ...(problem ? { problem } : {}) };
}

/** The logs a container without a relay appends to (`log`, `log.err`): what the supervisor caps. */
export function appendedLogPaths(store: StateStore, name: string): string[] {
  return LOG_STREAMS.map((stream) => streamPaths(store, name, stream).log);
}

/**
 * Starts a relay on a container's FIFO (a new one, or again after its relay died) and records it in
 * `log.relay`. Opening never blocks (O_NONBLOCK; the relay makes its reads blocking): a FIFO whose
 * writers are all gone gives the relay EOF at once, after whatever the pipe still held.
 * @returns Its identity (a child of this process: reap it).
 * @throws {SyscallError} When the FIFO or the directory cannot be opened, or the relay cannot start.
 */
export function startLogRelay(
  store: StateStore,
  name: string,
  maxBytes: number,
  stream: LogStream = "stdout",
): ProcessIdentity {
  const { open, close } = libc();
  const paths = streamPaths(store, name, stream);
  const fifo = paths.fifo;
  const dirPath = store.dir(name);
  const input = check(open(cstr(fifo), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW, 0), "open", [fifo]);
  let dir = -1;
  try {
    dir = check(open(cstr(dirPath), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0), "open", [dirPath]);
    const pid = spawnLogRelay({ input, dir, file: streamLogName(stream), maxBytes, label: name });
    const id = identify(pid) ?? { pid, startTime: 0 };
    try {
      writePrivateFile(paths.relay, `${id.pid} ${id.startTime}\n`);
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

/**
 * The output of a container on a terminal of its own (`hako run -d -t`): one stream, read from the
 * pty's master by a relay as a FIFO would be (`log`, recorded in `log.relay`; the relay ends at the
 * master's EIO, once nothing inside holds the terminal), or, where there is no relay, the log file
 * for the caller to copy the master's output to. What an earlier container of this name left
 * (FIFOs, a stderr relay's record) goes first: a terminal has no separate stderr.
 * @param master The pty's master (the relay gets its own copy; nothing else may make it non-blocking).
 * @returns The relay (a child of this process: reap it), or the log's fd (close it) and why there
 *   is no relay.
 * @throws {SyscallError} When neither can be made.
 */
export function startTtyLogRelay(
  store: StateStore,
  name: string,
  maxBytes: number,
  master: number,
): { readonly relay?: ProcessIdentity; readonly fd?: number; readonly problem?: string } {
  for (const stream of LOG_STREAMS) {
    const paths = streamPaths(store, name, stream);
    rmSync(paths.fifo, { force: true });
    rmSync(paths.relay, { force: true });
  }
  let problem: string | undefined;
  if (logRelaySupported()) {
    const { open, close } = libc();
    const dirPath = store.dir(name);
    let dir = -1;
    try {
      dir = check(open(cstr(dirPath), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0), "open", [dirPath]);
      const pid = spawnLogRelay({ input: master, dir, file: streamLogName("stdout"), maxBytes, label: name });
      const id = identify(pid) ?? { pid, startTime: 0 };
      try {
        writePrivateFile(store.logRelayPath(name), `${id.pid} ${id.startTime}\n`);
      } catch (e) {
        libc().kill(pid, SIGKILL);
        libc().waitpid(pid, null, 0);
        throw e;
      }
      return { relay: id };
    } catch (e) {
      problem = `no log relay (${(e as Error).message}): hako copies its terminal's output to its log`;
    } finally {
      if (dir >= 0) close(dir);
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
 * The relay recorded for a container's stream (`log.relay`, `log.err.relay`), running or not;
 * undefined when it has none.
 */
export function recordedRelay(
  store: StateStore,
  name: string,
  stream: LogStream = "stdout",
): ProcessIdentity | undefined {
  let text: string;
  try {
    text = readFileSync(streamPaths(store, name, stream).relay, "utf8");
  } catch {
    return undefined;
  }
  const [pid, startTime] = text.trim().split(" ").map(Number);
  return Number.isSafeInteger(pid) && pid! > 0 && Number.isSafeInteger(startTime)
    ? { pid: pid!, startTime: startTime! }
    : undefined;
}

/** Whether a relay of a container (if it has one) still runs: its logs may still grow. */
export function relayRuns(store: StateStore, name: string): boolean {
  return LOG_STREAMS.some((stream) => isRunning(recordedRelay(store, name, stream)));
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
