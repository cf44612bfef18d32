/**
 * The CLI's side of the supervisor's socket: connect (starting the supervisor on demand, detached
 * in its own session, with the same runtime and flags as the CLI), send requests, match answers.
 * The state directory is checked first (see `StateStore.prepare`): a socket in a directory that
 * someone else could write may be theirs, and would be sent the caller's specs. A supervisor that
 * refuses the caller says why in one line with id 0, which every pending request gets as its answer.
 * @module
 */
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import process from "node:process";
import { host } from "../runner/_host.ts";
import { isRunning, StateStore } from "../container/state.ts";
import { LineReader, type Request, type Response } from "./protocol.ts";

/** A request without its id (the client numbers them). */
export type RequestBody = Request extends infer R ? R extends { id: number } ? Omit<R, "id"> : never : never;

/** A connection to the supervisor. */
export class SupervisorClient {
  readonly #sock: Socket;
  readonly #waiting = new Map<number, (r: Response) => void>();
  #next = 1;
  #closed: { name: string; message: string } | undefined;

  private constructor(sock: Socket) {
    this.#sock = sock;
    // Answers come from the caller's own supervisor: a generous limit (an error may list every
    // problem of a big spec), past which the connection is given up rather than waited on.
    const lines = new LineReader({ maxLineBytes: 64 << 20 });
    sock.on("data", (chunk: Uint8Array) => {
      for (const line of lines.push(chunk)) {
        let res: Response;
        try {
          res = JSON.parse(line);
        } catch {
          continue;
        }
        if (res?.id === 0 && res.ok === false && res.error) {
          // About the connection, not a request (a refusal): every request gets it.
          fail(res.error);
          continue;
        }
        const done = this.#waiting.get(res.id);
        this.#waiting.delete(res.id);
        done?.(res);
      }
      if (lines.overflowed) {
        fail({ name: "SupervisorError", message: "the supervisor sent an answer longer than 64 MiB" });
        sock.destroy();
      }
    });
    const fail = (e?: { name: string; message: string }) => {
      this.#closed ??= e ?? { name: "SupervisorError", message: "the supervisor closed the connection" };
      for (const [id, done] of this.#waiting) done({ id, ok: false, error: { ...this.#closed } });
      this.#waiting.clear();
    };
    sock.on("error", (e: Error) => fail({ name: "SupervisorError", message: e.message }));
    sock.on("close", () => fail());
  }

  /**
   * Connects to the supervisor of `store`'s state directory, starting it when none runs.
   * @throws {StateDirError} When the state directory cannot be trusted.
   * @throws {Error} When no supervisor answers within 15 s of being started.
   */
  static async connect(
    store: StateStore = new StateStore(),
    options: { start?: boolean } = {},
  ): Promise<SupervisorClient> {
    store.prepare();
    const path = store.file("supervisor.sock");
    // A socket whose supervisor is gone could still accept (if a process inherited it) but never
    // answer: trust it only while the recorded supervisor runs.
    if (!supervisorRuns(store)) rmSync(path, { force: true });
    let sock = await tryConnect(path);
    if (sock) return new SupervisorClient(sock);
    if (options.start === false) throw new Error(`no supervisor listens on ${path}`);
    startSupervisor(store);
    const until = Date.now() + 15_000;
    let delay = 5;
    while (Date.now() < until) {
      await new Promise((res) => setTimeout(res, delay));
      delay = Math.min(delay * 2, 100);
      sock = await tryConnect(path);
      if (sock) return new SupervisorClient(sock);
    }
    throw new Error(`the supervisor did not start; see ${store.file("supervisor.log")}`);
  }

  /** Sends a request; resolves with its response. */
  request(body: RequestBody): Promise<Response> {
    const id = this.#next++;
    if (this.#closed) {
      return Promise.resolve({ id, ok: false, error: { ...this.#closed } });
    }
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#sock.write(JSON.stringify({ ...body, id }) + "\n");
    });
  }

  /** Closes the connection. */
  close(): void {
    this.#sock.end();
    this.#sock.destroy();
  }
}

/** Whether the supervisor recorded in `supervisor.pid` (pid and start time) still runs. */
export function supervisorRuns(store: StateStore): boolean {
  try {
    const [pid, startTime] = readFileSync(store.file("supervisor.pid"), "utf8").trim().split(" ").map(Number);
    return isRunning({ pid: pid!, startTime: startTime! });
  } catch {
    return false;
  }
}

function tryConnect(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const sock = createConnection(path);
    sock.once("connect", () => {
      sock.removeAllListeners("error");
      resolve(sock);
    });
    sock.once("error", () => {
      sock.destroy();
      resolve(undefined);
    });
  });
}

/**
 * Starts `hako supervisor` detached: a new session, stdio to /dev/null (it writes its own log to
 * `supervisor.log` and moves to /), not waited for. It starts in this directory, so that a relative
 * script path in this process's command line still resolves.
 */
function startSupervisor(store: StateStore): void {
  store.prepare(); // its log goes there from the start
  const argv = host().selfArgv(["supervisor", "--log", store.file("supervisor.log")]);
  const child = spawn(process.execPath, argv.slice(1), {
    argv0: argv[0],
    detached: true,
    stdio: "ignore",
    env: { ...process.env, HAKO_STATE_DIR: store.root },
  });
  child.on("error", () => {}); // reported as "did not start" by connect()
  child.unref();
}

/** What {@link requestAttach} got: a container's input, handed over by its supervisor. */
export interface AttachedInput {
  /** Its pty master (`tty`) or its stdin pipe's write end: the caller's copy (close-on-exec; close it). */
  readonly fd: number;
  /** Whether `fd` is a pty master. */
  readonly tty: boolean;
  /** Whether the container reads what is written (docker's OpenStdin). */
  readonly stdin: boolean;
}

/**
 * Asks the supervisor for a running container's terminal or stdin (the `attach` request, on a
 * connection of its own: see `AttachRequest`). The supervisor is not started for it: a container
 * with a terminal or stdin to hand over has one.
 * @returns The descriptor, or the supervisor's error (`{ name, message }`) when it has none to give.
 * @throws {SyscallError} When the socket cannot be reached.
 * @throws {Error} When the supervisor does not answer within `timeoutMs`.
 */
export async function requestAttach(
  store: StateStore,
  name: string,
  timeoutMs = 10_000,
): Promise<AttachedInput | { readonly error: { readonly name: string; readonly message: string } }> {
  store.prepare();
  if (!supervisorRuns(store)) {
    return {
      error: { name: "SupervisorError", message: "no supervisor runs (it holds a container's terminal and stdin)" },
    };
  }
  // (loaded here: `hako start` and `run -d` load this module and need none of them)
  const [{ errno, libc, retryEintr }, { connectUnix }, { receiveFd }, { waitReadable }, { EAGAIN }] = await Promise
    .all([
      import("../../ffi/libc.ts"),
      import("../../ffi/unix_socket.ts"),
      import("../../ffi/tty.ts"),
      import("../../ffi/poll.ts"),
      import("../../ffi/constants.ts"),
    ]);
  const sock = connectUnix(store.file("supervisor.sock"));
  const { read, write, close } = libc();
  let fd: number | undefined;
  try {
    const line = new TextEncoder().encode(JSON.stringify({ id: 1, op: "attach", name }) + "\n");
    for (let off = 0; off < line.length;) {
      const n = retryEintr(() => write(sock, line.subarray(off), BigInt(line.length - off)));
      if (n < 0) throw new Error(`could not write to the supervisor (errno ${errno()})`);
      off += n;
    }
    const until = Date.now() + timeoutMs;
    const wait = async () => {
      if (!(await waitReadable(sock, Math.max(0, until - Date.now())))) {
        throw new Error(`the supervisor did not answer within ${timeoutMs} ms`);
      }
    };
    await wait();
    // The first byte: the descriptor's carrier, or the answer's own "{" when there is nothing to hand over.
    fd = receiveFd(sock);
    const lines = new LineReader({ maxLineBytes: 1 << 16 });
    const buf = new Uint8Array(4096);
    let got: string[] = fd === undefined ? lines.push("{") : [];
    while (got.length === 0 && !lines.overflowed) {
      await wait();
      const n = retryEintr(() => read(sock, buf, BigInt(buf.length)));
      if (n < 0 && errno() === EAGAIN) continue;
      if (n <= 0) break;
      got = lines.push(buf.subarray(0, n));
    }
    let res: Response | undefined;
    try {
      res = got[0] === undefined ? undefined : JSON.parse(got[0]);
    } catch { /* below */ }
    if (!res || typeof res !== "object") {
      return { error: { name: "SupervisorError", message: "the supervisor closed the connection without an answer" } };
    }
    if (!res.ok || fd === undefined) {
      return { error: res.error ?? { name: "SupervisorError", message: "the supervisor sent no descriptor" } };
    }
    const out = { fd, tty: res.tty === true, stdin: res.stdin === true };
    fd = undefined;
    return out;
  } finally {
    if (fd !== undefined) close(fd);
    close(sock);
  }
}
