/**
 * `hako attach NAME`: joins a running daemonized container's own stdio, as docker attach does,
 * until it ends (then exits with its code) or the detach keys are typed.
 *
 * Output: a daemonized container's stdout and stderr go to its log relay (see `container_log.ts`),
 * so attach follows that from the moment it joins (docker attach shows no output from before
 * either): its stdout on attach's stdout, its stderr on attach's stderr, as `hako logs` keeps them;
 * a container on a terminal (`hako run -d -t`) has one stream, its terminal's, shown raw (it is
 * that terminal the caller looks at). Two attaches both see all of it.
 *
 * Input (`hako run -d -i`, `-d -it`): the supervisor holds the container's pty master (`-t`) or
 * the write end of its stdin pipe (`-i`) and hands attach a copy over its socket (SCM_RIGHTS, see
 * `requestAttach`): what is typed goes straight to the container, never through the supervisor;
 * an attach that dies closes only its copy. With a terminal the caller's terminal is raw
 * (cfmakeraw), ctrl-c is a byte for the container's terminal (whose line discipline makes it
 * SIGINT), the window size is the caller's at attach and on SIGWINCH; the detach keys (ctrl-p
 * ctrl-q unless `--detach-keys`) are held back while they may begin the sequence, as docker's
 * escape proxy, and never sent once complete. Without a terminal the caller's terminal stays as it
 * is (ctrl-c a signal, proxied). Attach's end of input does not close the container's stdin: docker
 * closes it only with StdinOnce, which `docker run -d -i` does not set. Two attaches may both
 * type, as docker lets them.
 *
 * A container with neither (`hako run -d`, `hako start`), or `--no-stdin`, or one whose
 * supervisor is gone (it held the pty or pipe): output only, as before — keys on a terminal are
 * read, raw, for the detach keys and for ctrl-c, which is sent to the container as SIGINT with
 * `--sig-proxy` (the default, as docker's). SIGINT and SIGTERM that attach itself gets are sent on
 * likewise (docker's sig-proxy).
 * @module
 */
import { nonEmpty, parseArgs, quoted, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako attach [--no-stdin] [--sig-proxy=false] [--detach-keys KEYS] <name>

Joins a running daemonized container's stdio, as docker attach: its output from now on (its
stdout and stderr; one stream for a terminal), until it ends — then exits with its exit code — or
you detach (ctrl-p ctrl-q, leaving it running). What you type goes to its terminal when it was
started with 'hako run -d -it' (your terminal raw meanwhile, ctrl-c a key for it, its window
resized with yours), or to its stdin with 'hako run -d -i' (the end of your input does not close
it, as docker). A container started without -i (hako run -d, hako start) has no stdin: keys are
read only for the detach keys and ctrl-c. Two attaches at once both see the output and may both
type. For a new shell inside it: 'hako shell NAME'; for its output so far: 'hako logs NAME'.

Signals: SIGINT and SIGTERM to hako attach (and ctrl-c on a terminal) are sent to a container
without a terminal (docker's --sig-proxy, on by default, "non-TTY mode only"); with
--sig-proxy=false, or for a container on a terminal, they detach instead. With 'run -d -it' ctrl-c
is a key for the container's terminal (its line discipline makes it SIGINT there).

Options:
      --detach-keys <K>   The keys that detach: a comma-separated list of ctrl-<letter> (also
                          ctrl-@, ctrl-[, ctrl-\\\\, ctrl-], ctrl-^, ctrl-_) and single characters
                          (default ctrl-p,ctrl-q)
      --no-stdin          Do not send stdin (its output only, as for a container without -i)
      --sig-proxy <bool>  Send the signals hako attach gets to the container (default true)
  -h, --help              Show this help

Exit status: the container's, when it ends while attached; 0 after a detach; 1 when it is unknown,
not running, or runs in the foreground of a 'hako run' (its stdio is that process's).
`;

/** What `hako attach` was asked to do. */
export interface AttachArgs {
  readonly help: boolean;
  readonly name?: string;
  /** The bytes that detach, in order. */
  readonly detachKeys: readonly number[];
  readonly noStdin: boolean;
  readonly sigProxy: boolean;
}

/**
 * docker's `--detach-keys` (pure): `ctrl-<x>` for a letter or one of `@[\]^_`, or one character;
 * comma-separated.
 * @throws {UsageError} For anything else.
 */
export function parseDetachKeys(text: string): number[] {
  return text.split(",").map((k) => {
    const ctrl = /^ctrl-(.)$/i.exec(k);
    if (ctrl) {
      const c = ctrl[1]!;
      if (/^[a-z]$/i.test(c)) return c.toLowerCase().charCodeAt(0) - 0x60;
      const i = "@[\\]^_".indexOf(c);
      if (i >= 0) return i === 0 ? 0 : 0x1b + i - 1;
    } else if (k.length === 1 && k.charCodeAt(0) < 0x80) return k.charCodeAt(0);
    throw new UsageError(`--detach-keys: ${quoted(k)} is not a key (ctrl-<letter>, ctrl-@ … ctrl-_, or one character)`);
  });
}

/** Parses `hako attach`'s arguments (pure). @throws {UsageError} For no name or a bad option. */
export function parseAttachArgs(argv: readonly string[]): AttachArgs {
  const { values, positionals } = parseArgs(argv, {
    "detach-keys": { type: "string" },
    "no-stdin": { type: "boolean" },
    "sig-proxy": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  const keys = stringOption(values, "detach-keys");
  const proxy = stringOption(values, "sig-proxy");
  const base = { detachKeys: keys === undefined ? [0x10, 0x11] : parseDetachKeys(keys) };
  if (values.help) return { help: true, ...base, noStdin: false, sigProxy: true };
  if (proxy !== undefined && proxy !== "true" && proxy !== "false") {
    throw new UsageError(`--sig-proxy takes true or false, not ${quoted(proxy)}`);
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length ? "one container name only" : "a container name is required");
  }
  return {
    help: false,
    name: nonEmpty(positionals[0]!, "the container name"),
    ...base,
    noStdin: values["no-stdin"] === true,
    sigProxy: proxy !== "false",
  };
}

/**
 * Watches typed bytes for the detach sequence (pure, incremental): `push` returns "detach" once the
 * whole sequence was typed in order, "interrupt" for a ctrl-c outside it, and undefined otherwise.
 */
export class DetachWatcher {
  #matched = 0;
  readonly #keys: readonly number[];

  /** @param keys The detach sequence. */
  constructor(keys: readonly number[]) {
    this.#keys = keys;
  }

  /** Takes typed bytes. */
  push(bytes: Uint8Array): "detach" | "interrupt" | undefined {
    for (const b of bytes) {
      if (b === this.#keys[this.#matched]) {
        if (++this.#matched === this.#keys.length) return "detach";
        continue;
      }
      this.#matched = b === this.#keys[0] ? 1 : 0;
      if (b === 0x03) return "interrupt";
    }
    return undefined;
  }
}

/**
 * The detach keys in what is typed, for a container that reads it (pure, incremental), as docker's
 * escape proxy: bytes that may begin the sequence are held back; when the sequence breaks they are
 * sent on with the rest; once it is complete, `detach` is true and nothing of it is sent. Every
 * other byte, ctrl-c included, is sent (on a terminal it is the container's line discipline that
 * makes ctrl-c a SIGINT, as with docker's -t).
 */
export class DetachFilter {
  #held: number[] = [];
  readonly #keys: readonly number[];

  /** @param keys The detach sequence. */
  constructor(keys: readonly number[]) {
    this.#keys = keys;
  }

  /** Takes typed bytes: what to send now, and whether the sequence is complete. */
  push(bytes: Uint8Array): { send: Uint8Array; detach: boolean } {
    // (a paste of MBs: the bytes as they are when none may begin the sequence, not one at a time)
    if (this.#held.length === 0 && !bytes.includes(this.#keys[0]!)) return { send: bytes, detach: false };
    const out: number[] = [];
    for (const b of bytes) {
      if (b === this.#keys[this.#held.length]) {
        this.#held.push(b);
        if (this.#held.length === this.#keys.length) return { send: Uint8Array.from(out), detach: true };
        continue;
      }
      out.push(...this.#held);
      this.#held = [];
      if (b === this.#keys[0]) {
        this.#held.push(b);
        if (this.#keys.length === 1) return { send: Uint8Array.from(out), detach: true };
      } else out.push(b);
    }
    return { send: Uint8Array.from(out), detach: false };
  }
}

/** Runs `hako attach`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseAttachArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { StateStore, ContainerStateError, isRunning, sameProcess } = await import("../container/state.ts");
  const { readFileSync } = await import("node:fs");
  const store = new StateStore();
  const name = a.name!;
  const found = store.inspect(name);
  if (found.kind === "none") throw new ContainerStateError(`no such container: ${name}`);
  if (found.kind === "damaged") {
    throw new ContainerStateError(
      `${name}'s record is damaged (${found.problem}): 'hako logs -f ${name}' follows its log`,
    );
  }
  const r = found.record;
  if (r.state !== "running" || !isRunning(r.init)) {
    throw new ContainerStateError(
      `cannot attach to ${name}: it is not running (start it first: 'hako restart ${name}')`,
    );
  }
  let supervisor;
  try {
    const [pid, startTime] = readFileSync(store.file("supervisor.pid"), "utf8").trim().split(" ").map(Number);
    supervisor = { pid: pid!, startTime: startTime! };
  } catch { /* none */ }
  if (isRunning(r.owner) && !sameProcess(r.owner, supervisor)) {
    throw new ContainerStateError(
      `cannot attach to ${name}: it runs in the foreground of process ${r.owner.pid} (hako run), whose ` +
        `terminal or pipes are its stdio; 'hako shell ${name}' opens a new shell in it`,
    );
  }
  // -i or -t (`hako run -d -it`): what the supervisor holds — the pty master or the stdin pipe.
  const { DOCKER_FILE } = await import("../supervisor/protocol.ts");
  let docker: import("../supervisor/protocol.ts").DockerRecord = {};
  try {
    docker = JSON.parse(readFileSync(`${store.dir(name)}/${DOCKER_FILE}`, "utf8")) ?? {};
  } catch { /* none: neither */ }
  let input: import("../supervisor/client.ts").AttachedInput | undefined;
  if (docker.tty === true || (docker.openStdin === true && !a.noStdin)) {
    const { requestAttach } = await import("../supervisor/client.ts");
    const got = await requestAttach(store, name);
    if ("error" in got) {
      h.stderr(
        `hako attach: ${name}'s ${
          docker.tty ? "terminal" : "stdin"
        } is not available (${got.error.message}): following its output only\n`,
      );
    } else input = got;
  }
  if (input) return await attachInput(name, input, a, store);
  const { killContainer } = await import("../container/lifecycle.ts");
  const { default: process } = await import("node:process");
  const proxy = (sig: "INT" | "TERM") => {
    try {
      killContainer(name, sig, store);
    } catch { /* it ended meanwhile */ }
  };
  let restore = () => {};
  const detach = () => {
    restore();
    h.stderr(`\r\nhako attach: detached from ${name} (it runs on)\r\n`);
    h.exit(0);
  };
  // Keys: on a terminal, raw, for the detach keys and ctrl-c (nothing reaches the container).
  const stdin = process.stdin;
  if (!a.noStdin && stdin.isTTY && typeof stdin.setRawMode === "function") {
    stdin.setRawMode(true);
    restore = () => stdin.setRawMode(false);
    const watcher = new DetachWatcher(a.detachKeys);
    stdin.on("data", (b: Uint8Array) => {
      const got = watcher.push(b);
      if (got === "detach" || (got === "interrupt" && !a.sigProxy)) detach();
      else if (got === "interrupt") proxy("INT");
    });
    h.stderr(
      `hako attach: ${name}'s output follows (it has no stdin to join: keys are not sent; ` +
        `${a.detachKeys.length === 2 && a.detachKeys[0] === 0x10 ? "ctrl-p ctrl-q" : "the detach keys"} detach)\r\n`,
    );
  }
  if (a.sigProxy) {
    process.on("SIGINT", () => proxy("INT"));
    process.on("SIGTERM", () => proxy("TERM"));
  } else process.on("SIGINT", detach);
  try {
    // Its output from now on, until it ends and its relay has written all it had.
    const logs = await import("./logs.ts");
    await logs.main(["--follow", "--tail", "0", name]);
  } finally {
    restore();
    if (stdin.isTTY) stdin.pause();
  }
  // Its exit status, once its supervisor has recorded it.
  for (let i = 0; i < 100; i++) {
    const after = store.tryRead(name);
    if (!after) return 0; // --rm: deleted already
    if (after.state === "exited") return after.exit ? after.exit.shellCode : 0;
    await new Promise((res) => setTimeout(res, 50));
  }
  return 0;
}

/**
 * attach to a container with a terminal or stdin (`hako run -d -it`, `-d -i`): `input` is its pty
 * master or its stdin pipe, handed over by the supervisor, so the bytes typed go to the container
 * without crossing the supervisor; its output is followed in its log (one stream, raw, with a
 * terminal: it is the container's terminal the caller looks at, as docker's attach to a -t
 * container). Returns the container's code when it ends, 0 on a detach.
 */
async function attachInput(
  name: string,
  input: import("../supervisor/client.ts").AttachedInput,
  a: AttachArgs,
  store: import("../container/state.ts").StateStore,
): Promise<number> {
  const h = host();
  const { default: process } = await import("node:process");
  const { closeFd, nonBlockingPipe, rawCallerTerminal, resizeToCaller, writeAllTo } = await import(
    "../container/terminal.ts"
  );
  const { killContainer } = await import("../container/lifecycle.ts");
  const stdin = process.stdin;
  let fd = input.fd;
  const closeInput = () => {
    if (fd >= 0) closeFd(fd);
    fd = -1;
  };
  let restore = () => {};
  const onWinch = () => fd >= 0 && resizeToCaller(fd);
  const cleanup = () => {
    restore();
    restore = () => {};
    process.off("SIGWINCH", onWinch);
    stdin.removeAllListeners("data");
    stdin.removeAllListeners("end");
    stdin.pause();
    closeInput();
  };
  const detach = () => {
    cleanup();
    h.stderr(`\r\nhako attach: detached from ${name} (it runs on)\r\n`);
    h.exit(0);
  };
  // Writes wait without blocking the event loop when the pipe or the terminal's input is full
  // (writeAllTo retries on EAGAIN), so a command that reads none of a long paste never holds the
  // detach keys. The fd is non-blocking for that. A pipe's write end is shared only with the
  // supervisor and other attaches, which never read it. A pty master's file description is shared
  // with its log relay (SCM_RIGHTS passes the description, not a new one; and there is no second
  // description of a master to open: /dev/pts/N is the slave, /proc/PID/fd/N of /dev/ptmx a new
  // pty). Rather than a worker or child that would block in write in attach's place, the relay
  // takes an EAGAIN on its reads as "wait in poll", not as the end (ffi/log_relay_*.S), as the
  // supervisor's own copier already reads the master non-blocking where there is no relay. (docker's
  // attach writes to containerd's stdin FIFO, which the shim copies to the console in a goroutine of
  // its own: a copy that waits holds neither the client nor its detach keys — the same outcome.)
  // A relay started again sets its input blocking (fcntl F_SETFL 0, for its FIFO): so each write
  // sets O_NONBLOCK again. (nonBlockingPipe is fcntl O_NONBLOCK, whatever the fd; its doc's "never
  // for a pty master" predates the relay's EAGAIN.)
  const nonBlocking = () => nonBlockingPipe(fd);
  nonBlocking();
  if (input.tty) {
    // The window: the caller's at attach, and on every SIGWINCH (docker resizes the same way).
    resizeToCaller(fd);
    process.on("SIGWINCH", onWinch);
  }
  const proxy = (sig: "INT" | "TERM") => {
    try {
      killContainer(name, sig, store);
    } catch { /* it ended meanwhile */ }
  };
  // With a terminal, ctrl-c is a byte for the container's terminal (raw mode: no SIGINT here);
  // without, the caller's terminal stays cooked and its ctrl-c is a signal, proxied (docker's
  // attach sets the caller's terminal raw only for a -t container). docker proxies signals to a
  // container without a terminal only (--sig-proxy: "non-TTY mode only"): to one with a terminal,
  // a signal to attach ends the attach and leaves the container running.
  const proxying = a.sigProxy && !input.tty;
  if (proxying) {
    process.on("SIGINT", () => proxy("INT"));
    process.on("SIGTERM", () => proxy("TERM"));
  } else {
    process.on("SIGINT", detach);
    process.on("SIGTERM", detach);
  }
  if (!a.noStdin && input.stdin) {
    // (cfmakeraw, not the runtime's setRawMode, which keeps ONLCR: the container's terminal
    // already turned its newlines into CR LF)
    if (input.tty) restore = rawCallerTerminal(0) ?? restore;
    const filter = new DetachFilter(a.detachKeys);
    // Writes in order, one chunk after the other.
    let queue = Promise.resolve();
    stdin.on("data", (b: Uint8Array) => {
      const { send, detach: done } = filter.push(b);
      if (send.length) {
        queue = queue.then(async () => {
          if (fd < 0) return;
          try {
            nonBlocking();
          } catch { /* the write says what is wrong */ }
          if (!(await writeAllTo(fd, send, () => fd < 0))) closeInput();
        });
      }
      // (not behind a write that waits on a full pipe: what was typed before gets a moment)
      if (done) void Promise.race([queue, new Promise((r) => setTimeout(r, 200))]).then(detach);
    });
    // The end of attach's stdin closes only attach's copy: docker closes a container's stdin at
    // an attach's EOF only with StdinOnce, which `docker run -d -i` does not set (it is set only
    // when run itself attaches stdin); the output is followed on until it ends or a detach.
    stdin.on("end", () => void queue.then(closeInput));
    stdin.resume();
  } else if (stdin.isTTY && !a.noStdin) {
    // A -t container without -i reads no input (docker's -t alone): keys are read for the detach
    // keys only (and ctrl-c, which ends the attach: see above).
    restore = rawCallerTerminal(0) ?? restore;
    const watcher = new DetachWatcher(a.detachKeys);
    stdin.on("data", (b: Uint8Array) => {
      const got = watcher.push(b);
      if (got === "detach" || (got === "interrupt" && !proxying)) detach();
      else if (got === "interrupt") proxy("INT");
    });
  }
  try {
    const logs = await import("./logs.ts");
    await logs.main(["--follow", "--tail", "0", ...(input.tty ? ["--raw"] : []), name]);
  } finally {
    cleanup();
  }
  for (let i = 0; i < 100; i++) {
    const after = store.tryRead(name);
    if (!after) return 0;
    if (after.state === "exited") return after.exit ? after.exit.shellCode : 0;
    await new Promise((res) => setTimeout(res, 50));
  }
  return 0;
}
