/**
 * The one supervisor per host: the parent and reaper of every daemonized container.
 *
 * One Deno or Bun process costs 30–50 MB; one per container would make a hundred containers cost
 * gigabytes, so `hako start` asks this one process (started on demand, listening on
 * `<state dir>/supervisor.sock`) to create each container. It forks the container with its stdout
 * and its stderr each on a FIFO read by a log relay (a small process of its own that caps the
 * log and timestamps its lines, see `container_log.ts`: a dead supervisor never blocks or kills a
 * container, and no container's output crosses the supervisor's event loop), reaps it, records the
 * exit status and time in the container's state, and undoes the cgroup and veth.
 *
 * It serves only its own user: every connection's peer credentials (SO_PEERCRED) are read before
 * a byte of it is, and a client of another uid gets one refusal line and is disconnected (and the
 * refusal is logged) — it would otherwise run containers and their hooks as root for anyone who
 * reaches the socket. The socket is made 0600 in the 0700 state directory whatever the umask.
 * Nothing a client sends ends the supervisor or grows it without bound: a line that is not a request
 * (bad JSON, bad UTF-8, an unknown op, a wrong type) gets a `ProtocolError` reply; a line longer than
 * 1 MiB gets one and the connection is closed (the line is never held whole); a client with too many
 * requests in flight is not read until they are answered; one that does not read its answers is
 * cut off; connections past a limit are refused. Whatever escapes anyway is logged, not fatal.
 *
 * A container whose spec has a `restart` policy is started again when it ends, under the same name
 * and record, after docker's delays (see `restart_policy.ts`); a user's stop, kill or delete marks
 * the record (`stoppedByUser`), which no policy restarts. The spec's event hooks (`onStarted`,
 * `onReady`, `onOom`, `onExited`…) are fired by the container's `EventWatcher`, their messages and
 * failures in this log; nothing here waits for them.
 *
 * Everything it knows is on disk too, so the CLI's `ps`, `kill`, `stop`, `delete` and `exec` work
 * without it. A supervisor started after another died adopts the running containers it finds (it
 * cannot reap them — they are not its children — so it watches them, and records "exit status
 * unknown" when they end) and leaves half-made ones to `hako gc`. It re-arms an adopted container's
 * command hooks (`onExited`, `onOom`, `onMemoryPressure`) from its record; it runs a recorded
 * spec's host commands (on adoption, or on a restart) only when the record passes `_seal.ts`'s
 * checks: a record is hostile input, and its hooks run on the host as this process's user.
 *
 * @module
 */
import { chmodSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import process from "node:process";
import { check, errno, libc } from "../../ffi/libc.ts";
import { cstr } from "../../ffi/cstring.ts";
import { setUmask } from "../../ffi/unix_socket.ts";
import { SyscallError } from "../errors.ts";
import { host } from "../runner/_host.ts";
import { Container } from "../container/container.ts";
import { resolveSpec } from "../container/validate.ts";
import type { ContainerSpec } from "../container/spec.ts";
import { resolveRestart, restartDelay, shouldRestart } from "../container/restart_policy.ts";
import {
  identify,
  isRunning,
  type ProcessIdentity,
  recordImage,
  selfIdentity,
  type StateRecord,
  StateStore,
  writePrivateFile,
} from "../container/state.ts";
import { cgroupEndCounters, deleteContainer, releaseResources } from "../container/lifecycle.ts";
import { waitpid, WNOHANG } from "../process.ts";
import {
  type AttachRequest,
  DOCKER_FILE,
  type DockerRecord,
  type ErrorReply,
  LineReader,
  MAX_LINE_BYTES,
  type Request,
  type Response,
  type StartRequest,
} from "./protocol.ts";
import { PortProxies } from "../container/ports.ts";
import { acceptedFd, judgePeer } from "./_peer.ts";
import { NAME } from "../container/_spec_fields.ts";
import { sendFd, type WindowSize } from "../../ffi/tty.ts";
import { type SealedRecord, sealKey, sealOf, untrustedCommands } from "./_seal.ts";
import { EVENT_HOOK_NAMES, type EventHooks, EventWatcher } from "../container/hooks.ts";
import { armPressure, memoryCgroupOf, resolveMemoryPressure } from "../container/memory_pressure.ts";
import {
  appendedLogPaths,
  capAppendedLog,
  capOwnLog,
  type ContainerOutput,
  LOG_STREAMS,
  logMaxFrom,
  openContainerOutput,
  recordedRelay,
  startLogRelay,
  startTtyLogRelay,
} from "./container_log.ts";
import { EWOULDBLOCK, O_CLOEXEC, O_CREAT, O_NOFOLLOW, O_RDONLY, O_WRONLY, SIGKILL } from "../../ffi/constants.ts";

/** Options of {@link runSupervisor}. */
export interface SupervisorOptions {
  /** The state directory (default: `HAKO_STATE_DIR` or /run/hako). */
  readonly stateDir?: string;
  /** Exit after this long with no containers and no clients (default `HAKO_SUPERVISOR_IDLE_S` or 60 s; 0: never). */
  readonly idleMs?: number;
  /** A container's log is cut (to `log.1`) past this size (default `HAKO_LOG_MAX` or 1 MiB; at least 4096). */
  readonly logMaxBytes?: number;
  /** Messages (default: stderr, which `hako start` points at `supervisor.log`). */
  readonly log?: (line: string) => void;
  /**
   * The file on this process's stdout and stderr (`hako supervisor --log FILE`), cut to `FILE.1`
   * past the same size as a container's log.
   */
  readonly logFile?: string;
}

const LOCK_EX = 2, LOCK_NB = 4;
const TICK_MS = 100;
/** How often relays are reaped and restarted, and logs without a relay capped. */
const LOG_CHECK_MS = 1000;
/** Connections served at once; more are refused (each costs a socket and its buffers). */
const MAX_CLIENTS = 256;
/** A client's requests in flight past which its socket is not read until they are answered. */
const MAX_IN_FLIGHT = 256;
/** Answers queued for a client that does not read them, past which it is cut off. */
const MAX_UNREAD_REPLY_BYTES = 4 << 20;
/** Containers created at once (each waits for its child's setup, so a few overlap well). */
const CONCURRENT_CREATES = 4;
/** How long after the last of a burst of starts the supervisor collects garbage (see Host.collectGarbage). */
const GC_AFTER_BURST_MS = 1000;
/**
 * Heap growth since the last full collection past which the supervisor collects garbage anyway
 * (checked every second): containers started and deleted one after another are never a burst that
 * ends, and each leaves ~200 KB of short-lived objects that outlive the young generation; the
 * engine let them pile up to ~150 MB before its own full collection (bench/supervisor.ts).
 */
const GC_HEAP_GROWTH_BYTES = 8 << 20;

/** The reply for an error. */
function errorReply(e: unknown): ErrorReply {
  const err = e instanceof Error ? e : new Error(String(e));
  const step = (err as { step?: unknown }).step;
  const cause = err.cause as { name?: unknown; code?: unknown } | undefined;
  const code = cause?.name === "SyscallError" && typeof cause.code === "string" ? cause.code : undefined;
  return {
    name: err.name,
    message: err.message,
    ...(typeof step === "string" ? { step } : {}),
    ...(code !== undefined ? { code } : {}),
  };
}

/**
 * Why `value` is not a request the supervisor knows (pure): JSON may be anything, and nothing a
 * client sends may throw where no one catches it.
 */
export function requestProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return "a request is a JSON object";
  const r = value as Record<string, unknown>;
  if (typeof r.id !== "number" || !Number.isSafeInteger(r.id)) return "a request needs a numeric id";
  if (r.op === "ping") return undefined;
  if (r.op === "attach") {
    // (a container's name as the spec allows it: nothing that could name a path)
    return typeof r.name === "string" && NAME.test(r.name) ? undefined : "attach needs a container's name";
  }
  if (r.op !== "start") return `unknown op ${JSON.stringify(r.op)}`;
  if (r.spec === null || typeof r.spec !== "object" || Array.isArray(r.spec)) return "start needs a spec object";
  if (r.specFile !== undefined && typeof r.specFile !== "string") return "specFile must be a string";
  const by = r.reservedBy as { pid?: unknown; startTime?: unknown } | undefined;
  if (by !== undefined && !(Number.isSafeInteger(by?.pid) && Number.isSafeInteger(by?.startTime))) {
    return "reservedBy must be a process (pid and startTime)";
  }
  return undefined;
}

/** A small counting semaphore. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: Array<() => void> = [];
  return async (fn) => {
    if (active >= n) await new Promise<void>((res) => queue.push(res));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

/**
 * Runs the supervisor until it has been idle long enough (or forever with `idleMs: 0`).
 * @returns 0; or 0 at once when another supervisor already runs on this state directory.
 */
export async function runSupervisor(options: SupervisorOptions = {}): Promise<number> {
  const store = new StateStore(options.stateDir);
  const env = process.env;
  const idleMs = options.idleMs ?? (env.HAKO_SUPERVISOR_IDLE_S ? Number(env.HAKO_SUPERVISOR_IDLE_S) * 1000 : 60_000);
  const fromEnv = logMaxFrom(env.HAKO_LOG_MAX);
  const logMax = options.logMaxBytes !== undefined ? logMaxFrom(String(options.logMaxBytes)).max : fromEnv.max;
  const write = options.log ?? ((line: string) => host().stderr(`${new Date().toISOString()} ${line}\n`));
  const ownLog = options.logFile;
  const say = (line: string) => {
    write(line);
    if (ownLog) capOwnLog(ownLog, logMax);
  };
  if (options.logMaxBytes === undefined && fromEnv.problem) say(`${fromEnv.problem}: using ${logMax}`);

  // The state directory: made 0700, or checked (closed, or refused) when it is there.
  store.prepare();
  // One supervisor per state directory: the lock is held for as long as this process lives.
  const lockPath = store.file("supervisor.lock");
  const lockFd = check(
    libc().open(cstr(lockPath), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600),
    "open",
    [lockPath],
  );
  if (libc().flock(lockFd, LOCK_EX | LOCK_NB) !== 0) {
    const e = errno();
    libc().close(lockFd);
    if (e === EWOULDBLOCK) {
      say("another supervisor runs on this state directory; exiting");
      return 0;
    }
    throw new SyscallError("flock", e, [lockPath], "lock the supervisor's state directory");
  }

  // The key that seals the host commands in the records this supervisor writes (see _seal.ts).
  let key: Buffer | undefined;
  try {
    key = sealKey(store);
  } catch (e) {
    say(
      `no key to seal hooks with (${
        (e as Error).message
      }): no record's hooks are run but by the supervisor that started it`,
    );
  }
  /** Why the host commands of a record read back are not run; undefined when they may be. */
  const untrusted = (r: SealedRecord) => key ? untrustedCommands(store, key, r) : "no key to check their seal with";
  /** The event hooks of adopted containers, re-armed from their records: by name. */
  const adoptedWatchers = new Map<string, EventWatcher>();

  const self = selfIdentity();
  /** The one user it serves: root, or the rootless user who runs it. */
  const allowedUid = libc().geteuid();
  const containers = new Map<string, Container>();
  /** When each supervised container last started (ms), for the restart delays. */
  const started = new Map<string, number>();
  /** Restarts waiting for their delay, by name. */
  const restarting = new Map<string, ReturnType<typeof setTimeout>>();
  /** The delay before each container's last restart (docker's back-off), by name. */
  const backoff = new Map<string, number>();
  const adopted = new Map<string, ProcessIdentity>();
  /**
   * What `hako attach` may be handed, by name, for a container started with `-i` or `-t`: its pty
   * (`Container.terminal`, which the container closes) or the write end of its stdin pipe (closed
   * here when it is reaped), and whether it reads input; with a pty and no relay, the pump that
   * copies its output to its log.
   */
  const inputs = new Map<
    string,
    {
      fd: number;
      tty: boolean;
      stdin: boolean;
      pump?: { relay: import("../container/_tty.ts").TerminalRelay; log: number };
    }
  >();
  const dropInput = (name: string) => {
    const i = inputs.get(name);
    if (!i) return;
    inputs.delete(name);
    // (the pump copies what the terminal still holds, then its log is closed)
    if (i.pump) void i.pump.relay.finish().finally(() => libc().close(i.pump!.log));
    if (!i.tty) libc().close(i.fd);
  };
  const clients = new Set<Socket>();
  /**
   * The log relays this supervisor started (its children, to reap): container name by pid (a name
   * may come back with a new container while the relay of the last one is still to be reaped).
   */
  const relays = new Map<number, string>();
  /**
   * Ends the relays a failed launch started (killed and reaped now): the caller removes the
   * container's directory next, where a relay still draining would make its log file meanwhile
   * (the removal then failed with ENOTEMPTY, and that error hid why the launch failed).
   */
  const stopRelays = (pids: readonly number[]) => {
    for (const pid of pids) {
      if (!relays.has(pid)) continue;
      libc().kill(pid, SIGKILL);
      try {
        waitpid(pid);
      } catch { /* reaped already */ }
      relays.delete(pid);
    }
  };
  /** Containers that append to their log themselves (no relay): capped by capAppendedLog. */
  const appended = new Set<string>();
  /** Published ports: listeners bound before each container is made, closed when it ends (ports.ts). */
  const proxies = new PortProxies(say);
  const createLimit = limiter(CONCURRENT_CREATES);
  let pending = 0;
  let idleSince = Date.now();
  let server: Server | undefined;

  const sockPath = store.file("supervisor.sock");
  const pidPath = store.file("supervisor.pid");

  const start = async (req: StartRequest): Promise<Response> => {
    const spec = req.spec;
    let record: SealedRecord;
    try {
      const resolved = resolveSpec(spec);
      const unsealed: StateRecord = {
        version: 1,
        name: resolved.name,
        state: "creating",
        owner: self,
        createdAt: new Date().toISOString(),
        spec,
        ...(req.specFile ? { specFile: req.specFile } : {}),
        ...recordImage(spec.rootfs, resolved.rootfsPath),
        rootfs: resolved.rootfsPath,
        ...(resolved.cgroupName ? { cgroup: resolved.cgroupName } : {}),
        ...(resolved.veth ? { veth: resolved.veth.host } : {}),
      };
      const seal = key ? sealOf(key, unsealed) : undefined;
      record = { ...unsealed, ...(seal ? { hooksSeal: seal } : {}) };
      if (req.reservedBy) store.takeOver(record, req.reservedBy);
      else store.reserve(record);
    } catch (e) {
      return { id: req.id, ok: false, error: errorReply(e) };
    }
    const name = record.name;
    try {
      const c = await launch(name, spec, 0);
      return { id: req.id, ok: true, name, pid: c.pid };
    } catch (e) {
      // create() and start() undo what they made; the name is free again. (A directory that
      // cannot be removed is said, not answered: the caller wants to know why the start failed.)
      try {
        store.remove(name);
      } catch (r) {
        say(`could not remove what is left of ${name}: ${(r as Error).message}`);
      }
      say(`could not start ${name}: ${(e as Error).message}`);
      return { id: req.id, ok: false, name, error: errorReply(e) };
    }
  };

  /**
   * Makes and starts a container whose record is there (new, or being restarted): its output (a
   * FIFO and its relay, or its log), the container, its state `running`.
   * @throws What Container.create or start throws (they undo what they made).
   */
  const launch = async (name: string, spec: ContainerSpec, restartCount: number): Promise<Container> => {
    const { terminal: tty, openStdin, size } = dockerRecord(name);
    if (tty) {
      // (-dt -p: the ports too, before anything is made)
      await proxies.open(name, spec, store.dir(name));
      try {
        return await launchWithTerminal(name, spec, restartCount, openStdin, size);
      } catch (e) {
        proxies.close(name, store.dir(name));
        throw e;
      }
    }
    const { open, close } = libc();
    let out: ContainerOutput | undefined, nullFd = -1, stdinW = -1;
    try {
      // (first: a taken host port fails the start before its output and relays are made)
      await proxies.open(name, spec, store.dir(name));
      out = openContainerOutput(store, name, logMax);
      if (out.relays) { for (const r of out.relays) relays.set(r.pid, name); }
      else appended.add(name);
      if (out.problem) say(`${name}: ${out.problem}`);
      if (openStdin) {
        // -i: a pipe whose write end stays here, so the command sees no EOF while nobody is
        // attached (docker keeps a -d -i container's stdin open the same way).
        const p = new Int32Array(2);
        check(libc().pipe2(p, O_CLOEXEC), "pipe2", [], "make the container's stdin pipe");
        [nullFd, stdinW] = [p[0]!, p[1]!];
      } else nullFd = check(open(cstr("/dev/null"), O_RDONLY | O_CLOEXEC, 0), "open", ["/dev/null"]);
      const c = await Container.create(spec, {
        stdio: { stdin: nullFd, stdout: out.fd, stderr: out.errFd },
        onForked: (pid) => void store.update(name, (r) => ({ ...r, init: identify(pid) ?? { pid, startTime: 0 } })),
        events: { restartCount, log: say },
        portsPublished: true,
      });
      if (stdinW >= 0) {
        inputs.set(name, { fd: stdinW, tty: false, stdin: true });
        stdinW = -1;
      }
      await c.start();
      containers.set(name, c);
      started.set(name, Date.now());
      store.update(name, (r) => ({ ...r, state: "running", startedAt: new Date().toISOString() }));
      say(`started ${name} (pid ${c.pid})${restartCount ? ` (restart ${restartCount})` : ""}`);
      return c;
    } catch (e) {
      appended.delete(name);
      proxies.close(name, store.dir(name));
      dropInput(name);
      if (out?.relays) stopRelays(out.relays.map((r) => r.pid));
      throw e;
    } finally {
      if (out) close(out.fd);
      if (out && out.errFd !== out.fd) close(out.errFd);
      if (nullFd >= 0) close(nullFd);
      if (stdinW >= 0) close(stdinW);
    }
  };

  /** What `hako run -d` recorded of docker's -t and -i (docker.json; none: neither). */
  const dockerRecord = (name: string): { terminal: boolean; openStdin: boolean; size?: WindowSize } => {
    try {
      const d = JSON.parse(readFileSync(`${store.dir(name)}/${DOCKER_FILE}`, "utf8")) as DockerRecord;
      const s = d?.consoleSize;
      // (a size that is not one is left out: the terminal starts at 0x0, as without one)
      const cell = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
      const size = s && cell(s.rows) && cell(s.columns) ? { rows: s.rows, columns: s.columns } : undefined;
      return { terminal: d?.tty === true, openStdin: d?.openStdin === true, ...(size ? { size } : {}) };
    } catch {
      return { terminal: false, openStdin: false };
    }
  };

  /**
   * {@link launch} of a `-t` container: a pty of its own (the console step, on either path), its
   * master kept here for `hako attach`; the pty's output goes to its log — read by a log relay of
   * its own (as a FIFO's would be: nothing of it crosses this event loop), or, where there is no
   * relay, copied here to the log file. One stream, as docker's with a tty.
   */
  const launchWithTerminal = async (
    name: string,
    spec: ContainerSpec,
    restartCount: number,
    openStdin: boolean,
    size: WindowSize | undefined,
  ): Promise<Container> => {
    const c = await Container.create(spec, {
      tty: size ?? true,
      onForked: (pid) => void store.update(name, (r) => ({ ...r, init: identify(pid) ?? { pid, startTime: 0 } })),
      events: { restartCount, log: say },
      portsPublished: true,
    });
    let relayPid: number | undefined;
    try {
      const master = c.terminal!;
      const out = startTtyLogRelay(store, name, logMax, master);
      if (out.relay) relays.set(relayPid = out.relay.pid, name);
      else {
        if (out.problem) say(`${name}: ${out.problem}`);
        appended.add(name);
        // (loaded only here: a supervisor with relays never needs it)
        const { TerminalRelay } = await import("../container/_tty.ts");
        const pump = new TerminalRelay({ stdout: out.fd! });
        pump.attach(master);
        inputs.set(name, { fd: master, tty: true, stdin: openStdin, pump: { relay: pump, log: out.fd! } });
      }
      if (!inputs.has(name)) inputs.set(name, { fd: master, tty: true, stdin: openStdin });
      await c.start();
      containers.set(name, c);
      started.set(name, Date.now());
      store.update(name, (r) => ({ ...r, state: "running", startedAt: new Date().toISOString() }));
      say(`started ${name} (pid ${c.pid}, on a terminal)${restartCount ? ` (restart ${restartCount})` : ""}`);
      return c;
    } catch (e) {
      appended.delete(name);
      dropInput(name);
      try {
        c.delete();
      } catch { /* undone as far as it goes */ }
      if (relayPid !== undefined) stopRelays([relayPid]);
      throw e;
    }
  };

  /**
   * After a container ended: starts it again later when its recorded spec's `restart` policy says
   * so (docker's rules and delays, see restart_policy.ts), and records when (`restartAt`).
   * @param exitCode Its shell code; null when unknown.
   * @param ranMs How long it ran.
   * @returns true when a restart is planned.
   */
  const planRestart = (name: string, exitCode: number | null, ranMs: number): boolean => {
    const r = store.tryRead(name);
    if (!r) return false;
    const policy = resolveRestart(r.spec.restart);
    const facts = { exitCode, restartCount: r.restartCount ?? 0, stoppedByUser: r.stoppedByUser === true };
    if (!shouldRestart(policy, facts)) {
      if (r.restartAt) store.update(name, ({ restartAt: _, ...x }) => x);
      if (policy.policy !== "no") {
        say(`${name}: not restarted (${facts.stoppedByUser ? "stopped by the user" : `policy ${policy.policy}`})`);
      }
      backoff.delete(name);
      return false;
    }
    const delay = restartDelay(backoff.get(name) ?? 0, ranMs);
    backoff.set(name, delay);
    store.update(name, (x) => ({ ...x, restartAt: new Date(Date.now() + delay).toISOString() }));
    say(`${name}: restarting in ${delay} ms (policy ${policy.policy}, restart ${facts.restartCount + 1})`);
    restarting.set(name, setTimeout(() => void restartNow(name), delay));
    return true;
  };

  /** Starts a container again (see planRestart), unless the user stopped or deleted it meanwhile. */
  const restartNow = async (name: string) => {
    restarting.delete(name);
    let spec: ContainerSpec | undefined, count = 0, why = "removed meanwhile";
    // Under the record's lock: a stop (or delete) now or later is seen by the stop's own check.
    store.update(name, (r) => {
      const { restartAt: _, ...rest } = r;
      // (its spec's host commands are run again only as its supervisor sealed them)
      const hostile = untrusted(r);
      if (r.stoppedByUser || r.state !== "exited" || hostile) {
        why = r.stoppedByUser
          ? "stopped by the user"
          : hostile
          ? `its hooks are not run: ${hostile}`
          : `it is ${r.state}`;
        return rest;
      }
      spec = r.spec;
      count = (r.restartCount ?? 0) + 1;
      return { ...rest, state: "creating", owner: self, restartCount: count };
    });
    if (!spec) {
      say(`${name}: not restarted (${why})`);
      backoff.delete(name);
      return;
    }
    pending++; // (busy meanwhile: not idle)
    try {
      const c = await launch(name, spec, count);
      // A stop that came while it was being made found it not running: it is ended now.
      if (store.tryRead(name)?.stoppedByUser) c.kill("KILL");
    } catch (e) {
      say(`could not restart ${name}: ${(e as Error).message}`);
      backoff.delete(name);
      finished(name, store.tryRead(name)?.exit ?? null, `could not restart: ${(e as Error).message}`);
    } finally {
      pending--;
    }
  };

  let gcTimer: ReturnType<typeof setTimeout> | undefined;
  let heapAfterGc = process.memoryUsage().heapUsed;
  const collectGarbage = (why: string) => {
    clearTimeout(gcTimer);
    const before = process.memoryUsage().rss;
    const t0 = performance.now();
    host().collectGarbage();
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    heapAfterGc = after.heapUsed;
    const mb = (n: number) => (n / 2 ** 20).toFixed(1);
    say(
      `collected garbage ${why} in ${ms.toFixed(0)} ms: RSS ${mb(before)} → ${mb(after.rss)} MB ` +
        `(heap ${mb(after.heapUsed)} MB in use)`,
    );
  };
  const handle = async (req: Request): Promise<Response> => {
    switch (req.op) {
      case "ping":
        return { id: req.id, ok: true, supervisor: self.pid };
      case "start":
        pending++;
        clearTimeout(gcTimer);
        try {
          return await createLimit(() => start(req));
        } finally {
          pending--;
          // A burst of starts (a fleet) grows the heap; once it is over, give the memory back.
          if (pending === 0) gcTimer = setTimeout(() => collectGarbage("after the starts"), GC_AFTER_BURST_MS);
        }
      default:
        return {
          id: (req as { id?: number }).id ?? 0,
          ok: false,
          error: { name: "ProtocolError", message: `unknown op ${JSON.stringify((req as { op?: unknown }).op)}` },
        };
    }
  };

  const finished = (
    name: string,
    exit: StateRecord["exit"],
    note?: string,
    counted: Pick<StateRecord, "oomKilled" | "failedForks"> = {},
  ) => {
    store.update(name, (r) => ({
      ...r,
      state: "exited",
      exit,
      finishedAt: new Date().toISOString(),
      ...(note ? { note } : {}),
      ...counted,
    }));
  };

  /** Deletes an ended container that `hako run -d --rm` asked to be removed (docker's --rm). */
  const autoRemove = async (name: string) => {
    let wanted = false;
    try {
      wanted = (JSON.parse(readFileSync(`${store.dir(name)}/${DOCKER_FILE}`, "utf8")) as DockerRecord)
        ?.autoRemove === true;
    } catch { /* none: kept, as docker's default */ }
    if (!wanted) return;
    try {
      await deleteContainer(name, { store });
      say(`removed ${name} (--rm)`);
    } catch (e) {
      say(`could not remove ${name} (--rm): ${(e as Error).message}`);
    }
  };

  // Adopt: running containers whose owner is gone are watched; half-made ones are left to gc.
  for (const r of store.list()) {
    if (isRunning(r.owner)) continue;
    if (r.state === "running") {
      if (r.init && isRunning(r.init)) {
        adopted.set(r.name, r.init);
        // Its relay, if it has one, goes on (checkLogs starts a new one if it is gone).
        if (!recordedRelay(store, r.name)) appended.add(r.name);
        // (checked before this supervisor writes the record: the file as it was found)
        const rearmed = rearm(r);
        store.update(r.name, (x) => ({ ...x, owner: self }));
        say(`adopted ${r.name} (pid ${r.init.pid}): its exit status will be unknown${rearmed}`);
        proxies.republish(r.name, r.spec, store.dir(r.name));
      } else {
        finished(r.name, null, "ended while no supervisor ran: exit status unknown", cgroupEndCounters(r));
        proxies.close(r.name, store.dir(r.name));
        try {
          releaseResources(r);
        } catch (e) {
          say(`could not release what ${r.name} held: ${(e as Error).message}`);
        }
        // Its restart policy is in its recorded spec: it holds across supervisors.
        planRestart(r.name, null, Date.now() - (r.startedAt ? Date.parse(r.startedAt) : Date.now()));
      }
    } else if (r.state === "exited" && r.restartAt) {
      // Its supervisor died while it waited to be restarted.
      store.update(r.name, (x) => ({ ...x, owner: self }));
      planRestart(r.name, r.exit?.shellCode ?? null, 0);
    } else if (r.state === "creating") {
      say(`${r.name} was being set up when its supervisor died: 'hako gc' removes it`);
    }
  }

  /**
   * Re-arms the event hooks of a container being adopted, from its record (commands only: the
   * spec is JSON; callbacks never outlive their process), when the record may be trusted (see
   * _seal.ts): `onExited` (status unknown), `onOom` and `onMemoryPressure`; `onStarted` and
   * `onReady` were the last supervisor's to fire.
   * @returns What to add to the adoption's message.
   */
  function rearm(r: SealedRecord): string {
    const hooks = Object.fromEntries(
      EVENT_HOOK_NAMES.filter((k) => k !== "onStarted" && k !== "onReady" && r.spec.hooks?.[k] !== undefined)
        .map((k) => [k, r.spec.hooks![k]]),
    ) as EventHooks;
    const names = Object.keys(hooks);
    if (names.length === 0) return "";
    const why = untrusted(r);
    if (why) return `; its event hooks are not re-armed: ${why}`;
    const pressureSpec = resolveMemoryPressure(r.spec.memoryPressure);
    const w = new EventWatcher({
      name: r.name,
      pid: r.init!.pid,
      hooks,
      ...(r.restartCount ? { restartCount: r.restartCount } : {}),
      log: say,
      note: say,
      ...(r.cgroup ? { oomKills: () => cgroupEndCounters(r).oomKilled ?? 0 } : {}),
      pressure: () => armPressure(r.cgroup ? memoryCgroupOf(r.cgroup) : undefined, pressureSpec),
      pressureWindowMs: pressureSpec.windowMs,
    });
    w.start({ adopted: true });
    adoptedWatchers.set(r.name, w);
    return `; its event hooks re-armed (${names.join(", ")})`;
  }

  let lastLogCheck = 0;
  const tick = async () => {
    for (const [name, c] of containers) {
      let status;
      try {
        status = c.poll();
      } catch (e) {
        say(`waitpid of ${name} failed: ${(e as Error).message}`);
        containers.delete(name);
        dropInput(name);
        continue;
      }
      if (!status) continue;
      containers.delete(name);
      appended.delete(name);
      proxies.close(name, store.dir(name));
      dropInput(name);
      // The afterStop hook (a command: run now) and onExited (not waited for: it may take 30 s).
      c.wait().catch((e) => say(`${name}: ${(e as Error).message}`));
      try {
        c.delete();
      } catch (e) {
        say(`could not clean up after ${name}: ${(e as Error).message}`);
      }
      const { code, signal, shellCode, ...counted } = status; // counted: oomKilled, failedForks
      finished(name, { code, signal, shellCode }, undefined, counted);
      say(`${name} exited (${status.shellCode})`);
      const ranMs = Date.now() - (started.get(name) ?? Date.now());
      started.delete(name);
      if (!planRestart(name, shellCode, ranMs)) await autoRemove(name);
    }
    for (const [name, id] of adopted) {
      if (isRunning(id)) continue;
      adopted.delete(name);
      appended.delete(name);
      const r = store.tryRead(name);
      const counted = r ? cgroupEndCounters(r) : {}; // before releaseResources removes the cgroup
      finished(name, null, "ended while adopted (not hako's child): exit status unknown", counted);
      const w = adoptedWatchers.get(name);
      adoptedWatchers.delete(name);
      w?.exited({ shellCode: null, ...counted }).catch((e) => say(`${name}: ${(e as Error).message}`));
      if (r) {
        try {
          releaseResources(r);
        } catch (e) {
          say(`could not release what ${name} held: ${(e as Error).message}`);
        }
      }
      say(`${name} (adopted) ended`);
      proxies.close(name, store.dir(name));
      const began = r?.startedAt ? Date.parse(r.startedAt) : Date.now();
      if (!planRestart(name, null, Date.now() - began)) await autoRemove(name);
    }
    const now = Date.now();
    if (now - lastLogCheck >= LOG_CHECK_MS) {
      lastLogCheck = now;
      checkLogs();
    }
  };

  /**
   * Reaps the relays that ended; starts a new one for a running container whose relay is gone
   * (killed: its container waits on a full FIFO meanwhile; or the relay of an adopted container);
   * caps, off the event loop, the logs of containers without a relay; caps supervisor.log.
   */
  let capping = false;
  const checkLogs = () => {
    for (const pid of relays.keys()) {
      let done: number;
      try {
        done = waitpid(pid, WNOHANG);
      } catch {
        done = pid; // not a child any more
      }
      if (done === pid) relays.delete(pid);
    }
    for (const name of [...containers.keys(), ...adopted.keys()]) {
      if (appended.has(name)) continue;
      const input = inputs.get(name);
      if (input?.tty) {
        // A terminal's relay reads its master, which only this process holds: started again on it.
        const recorded = recordedRelay(store, name);
        if (recorded && (relays.get(recorded.pid) === name || isRunning(recorded))) continue;
        try {
          const out = startTtyLogRelay(store, name, logMax, input.fd);
          if (out.fd !== undefined) libc().close(out.fd);
          if (!out.relay) throw new Error(out.problem ?? "no relay");
          relays.set(out.relay.pid, name);
          say(`the terminal log relay of ${name} was gone: started another (pid ${out.relay.pid})`);
        } catch (e) {
          say(`could not start a terminal log relay for ${name}: ${(e as Error).message}`);
        }
        continue;
      }
      // An adopted container on a terminal: its master went with the supervisor that held it.
      if (adopted.has(name) && dockerRecord(name).terminal) continue;
      // Each stream's (stderr has none in a container made before hako kept them apart).
      for (const stream of LOG_STREAMS) {
        const recorded = recordedRelay(store, name, stream);
        // No relay; or its relay runs (a child of this supervisor, or of the one before).
        if (!recorded || relays.get(recorded.pid) === name || isRunning(recorded)) continue;
        try {
          const id = startLogRelay(store, name, logMax, stream);
          relays.set(id.pid, name);
          say(`the ${stream} log relay of ${name} (pid ${recorded.pid}) was gone: started another (pid ${id.pid})`);
        } catch (e) {
          say(`could not start a ${stream} log relay for ${name}: ${(e as Error).message}`);
        }
      }
    }
    if (appended.size > 0 && !capping) {
      capping = true;
      const names = [...appended];
      (async () => {
        for (const name of names) {
          for (const path of appendedLogPaths(store, name)) await capAppendedLog(path, logMax);
        }
      })().finally(() => capping = false);
    }
    if (ownLog) capOwnLog(ownLog, logMax);
    const grown = process.memoryUsage().heapUsed - heapAfterGc;
    if (grown > GC_HEAP_GROWTH_BYTES) collectGarbage(`(the heap grew by ${(grown / 2 ** 20).toFixed(0)} MB)`);
  };

  const reply = (sock: Socket, res: Response) => {
    try {
      if (sock.destroyed) return;
      if (sock.writableLength > MAX_UNREAD_REPLY_BYTES) {
        say(`cut off a client that does not read its answers (${sock.writableLength} bytes queued)`);
        sock.destroy();
        return;
      }
      sock.write(JSON.stringify(res) + "\n");
    } catch { /* the client is gone */ }
  };
  /**
   * Sends a last line and closes: half-close after it, and (`drain`) drain unread what the client
   * sends until it closes — closing at once could fail its write (EPIPE) or reset the connection
   * before it reads why; one that never closes is cut off after a second. Without `drain` (a client
   * that sends too much) nothing more is read, and it is cut off sooner.
   */
  const sendAndClose = (sock: Socket, res: Response, drain = true) => {
    sock.removeAllListeners("data");
    sock.end(JSON.stringify(res) + "\n");
    if (drain) sock.resume();
    else sock.pause();
    setTimeout(() => sock.destroy(), drain ? 1000 : 200);
  };
  /**
   * Serves `hako attach`: a copy of the container's pty master or stdin pipe, sent over the
   * connection itself (SCM_RIGHTS on one byte), then the answer's line, and the connection is
   * closed. The bytes then flow between the client and the container without this process: a
   * client that dies only closes its copy (the container keeps its terminal or stdin, which this
   * process holds), and nothing it sends afterwards is read.
   */
  const attach = (sock: Socket, req: AttachRequest, first: boolean) => {
    const fail = (name: string, message: string) =>
      sendAndClose(sock, { id: req.id, ok: false, error: { name, message } });
    if (!first) return fail("ProtocolError", "attach must be the only request on its connection");
    const c = containers.get(req.name);
    if (!c) {
      return fail(
        "ContainerStateError",
        adopted.has(req.name)
          ? `${req.name} was started by a supervisor that ended: its terminal or stdin went with it`
          : `${req.name} is not a running container of this supervisor`,
      );
    }
    const input = inputs.get(req.name);
    if (!input) return fail("ContainerStateError", `${req.name} has no terminal or stdin (run -d without -i or -t)`);
    const fd = acceptedFd(sock);
    try {
      if (fd === undefined) throw new Error("this runtime does not show the connection's fd");
      sendFd(fd, input.fd);
    } catch (e) {
      say(`could not hand ${req.name}'s ${input.tty ? "terminal" : "stdin"} to attach: ${(e as Error).message}`);
      return fail("SupervisorError", (e as Error).message);
    }
    sendAndClose(sock, { id: req.id, ok: true, name: req.name, tty: input.tty, stdin: input.stdin });
  };
  const protocolError = (id: number, message: string): Response => ({
    id,
    ok: false,
    error: { name: "ProtocolError", message },
  });
  const serve = (sock: Socket) => {
    sock.on("error", () => {});
    // Who it is, before a byte of it is read.
    const verdict = judgePeer(sock, sockPath, allowedUid);
    if (!verdict.ok) {
      say(`refused a connection from ${verdict.who}: ${verdict.reason}`);
      sendAndClose(sock, {
        id: 0,
        ok: false,
        error: { name: "PermissionError", message: `${verdict.who} refused: ${verdict.reason}` },
      });
      return;
    }
    if (clients.size >= MAX_CLIENTS) {
      say(`refused a connection: ${clients.size} clients already`);
      sendAndClose(sock, protocolError(0, `the supervisor serves ${MAX_CLIENTS} connections at most; try again`));
      return;
    }
    clients.add(sock);
    sock.on("close", () => clients.delete(sock));
    const lines = new LineReader();
    let inFlight = 0;
    let served = 0;
    let paused = false;
    sock.on("data", (chunk: Uint8Array) => {
      for (const line of lines.push(chunk)) {
        // (attach must come first: no answer may be queued before the descriptor it sends)
        const first = served++ === 0;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          reply(sock, protocolError(0, "bad JSON"));
          continue;
        }
        const problem = requestProblem(value);
        if (problem) {
          const id = (value as { id?: unknown } | null)?.id;
          reply(sock, protocolError(typeof id === "number" && Number.isSafeInteger(id) ? id : 0, problem));
          continue;
        }
        const req = value as Request;
        if (req.op === "attach") {
          attach(sock, req, first);
          return;
        }
        inFlight++;
        handle(req).catch((e): Response => ({ id: req.id, ok: false, error: errorReply(e) })).then((res) => {
          reply(sock, res);
          // Back-pressure: a client with many requests waiting is read again once half are answered.
          if (--inFlight <= MAX_IN_FLIGHT / 2 && paused) {
            paused = false;
            sock.resume();
          }
        });
      }
      if (lines.overflowed) {
        say("closed a connection that sent a line longer than the limit");
        sendAndClose(sock, protocolError(0, `a request line is longer than ${MAX_LINE_BYTES} bytes`), false);
        return;
      }
      if (inFlight >= MAX_IN_FLIGHT && !paused) {
        paused = true;
        sock.pause();
      }
    });
  };

  await new Promise<void>((resolve, reject) => {
    rmSync(sockPath, { force: true });
    server = createServer((sock) => {
      try {
        serve(sock);
      } catch (e) {
        say(`dropped a connection: ${(e as Error).message}`);
        sock.destroy();
      }
    });
    // The socket file is made 0600 whatever the umask (docker's sockets.NewUnixSocket sets the
    // umask around bind the same way, then chmods), in the 0700 state directory: there is no
    // moment when another user may connect. The umask is the process's: nothing else runs yet.
    const umask = setUmask(0o177);
    const restore = () => void setUmask(umask);
    server.on("error", (e) => {
      restore();
      reject(e);
    });
    server.listen(sockPath, () => {
      restore();
      resolve();
    });
  });
  chmodSync(sockPath, 0o600);
  writePrivateFile(pidPath, `${self.pid} ${self.startTime}\n`);
  say(`supervisor ${self.pid} listening on ${sockPath}`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server?.close();
    for (const s of clients) s.destroy();
    rmSync(sockPath, { force: true });
    rmSync(pidPath, { force: true });
    libc().close(lockFd);
  };
  const onSignal = () => {
    say(`stopping on a signal; ${containers.size + adopted.size} container(s) keep running`);
    stop();
    process.exit(0);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  // The reaper and idle clock.
  for (;;) {
    await new Promise((res) => setTimeout(res, TICK_MS));
    try {
      await tick();
    } catch (e) {
      say(`tick failed: ${(e as Error).stack ?? e}`);
    }
    const busy = containers.size + adopted.size + clients.size + pending + restarting.size > 0;
    if (busy) idleSince = Date.now();
    else if (idleMs > 0 && Date.now() - idleSince >= idleMs) break;
  }
  say("idle: exiting");
  stop();
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  return 0;
}
