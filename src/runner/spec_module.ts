/**
 * Spec modules: a `.ts` file whose default export is a container spec, or a function of the
 * environment and arguments returning one (so that `PORT=10012 hako run web.ts` can compute the
 * name, rootfs and id ranges from the port, as the haconiwa articles do).
 * @module
 */
import type { ContainerSpec } from "../container/spec.ts";
import process from "node:process";
import { ForegroundSignals, signalExitCode } from "./_signals.ts";
import { host } from "./_host.ts";

/** How the caller's terminal is attached (`-t`, `-i`). */
export interface TerminalOptions {
  /** `-t`: the container's command gets a pty of its own, relayed to this process's stdio. */
  readonly tty?: boolean;
  /** `-i`: with `tty`, this process's stdin is relayed to it (without, the command gets no input). */
  readonly interactive?: boolean;
}

/** How `hako run` runs a container in the foreground: its terminal, stop timeout and init. */
export interface ForegroundOptions extends TerminalOptions {
  /**
   * `--stop-timeout`: after the first SIGTERM or SIGINT passed on, how long the container has to
   * end before it is sent SIGKILL (default 10 s, as `hako stop`).
   */
  readonly stopTimeoutMs?: number;
  /** `--init`: run the spec with `init: true` (a static init as PID 1, see `ContainerSpec.init`). */
  readonly init?: boolean;
}

/** True when `x` looks like a container spec (it has a name, a command and a rootfs). */
export function isSpecLike(x: unknown): x is ContainerSpec {
  if (x === null || typeof x !== "object") return false;
  const o = x as Record<string, unknown>;
  return typeof o.name === "string" && o.command !== undefined && o.rootfs !== undefined;
}

/**
 * The spec a module's exports describe, if any: its default export, or what its default export
 * returns when called with `(env, args)`.
 * @param exports The module's namespace.
 * @param env The environment (`process.env`).
 * @param args The script's arguments.
 * @returns The spec, or undefined when the module is a plain script.
 */
export async function specFromExports(
  exports: Record<string, unknown>,
  env: Readonly<Record<string, string | undefined>>,
  args: readonly string[],
): Promise<ContainerSpec | undefined> {
  const d = exports.default;
  if (isSpecLike(d)) return d;
  if (typeof d === "function") {
    const r = await (d as (env: unknown, args: unknown) => unknown)(env, args);
    if (isSpecLike(r)) return r;
  }
  return undefined;
}

/**
 * Runs the container a spec module describes in the foreground, stdio attached, forwarding
 * signals to it (see {@link runForeground}); the exit code is the container's (128+signal when
 * killed). A plain script (no spec) returns undefined and is left alone.
 */
export async function runSpecExports(
  exports: Record<string, unknown>,
  env: Readonly<Record<string, string | undefined>>,
  args: readonly string[],
  specFile?: string,
  options: ForegroundOptions = {},
): Promise<number | undefined> {
  const spec = await specFromExports(exports, env, args);
  if (!spec) return undefined;
  return await runForeground(spec, specFile, options);
}

/**
 * Runs a container in the foreground (stdio attached) and returns its shell exit code. While it
 * runs it is recorded in the state directory, so `hako ps` lists it and `hako exec` reaches it;
 * the record goes when it ends. With `tty` its command gets a pty of its own (see
 * `Container.terminal`), relayed to this process's stdout (and, with `interactive`, from its
 * stdin, the caller's terminal raw meanwhile).
 *
 * Signals (see `_signals.ts`): TERM, INT, QUIT, HUP, USR1, USR2 and WINCH are passed on to the
 * container's init; the first TERM or INT starts the stop timeout (`stopTimeoutMs`, default 10 s),
 * after which it gets SIGKILL, and a second INT sends SIGKILL at once. hako listens from before
 * the record is made until after it is removed, so no signal leaves a half-made or half-removed
 * record, cgroup or process behind; a TERM, INT, QUIT or HUP before the command runs undoes what
 * was made and returns 128+N, as a shell killed by it would.
 */
export async function runForeground(
  spec: ContainerSpec,
  specFile?: string,
  options: ForegroundOptions = {},
): Promise<number> {
  // `hako run` starts without making Bun's engine single-threaded (src/cli/commands.ts): only a
  // container whose child is forked needs it, and it is done now, before anything is made (the
  // re-executed process reads the spec again and goes on).
  const [{ needsJsChild }, { nativeSpawnSupported }, { parseOptions }] = await Promise.all([
    import("../container/_plain_mount.ts"),
    import("../../ffi/spawn.ts"),
    import("../mount.ts"),
  ]);
  if (needsJsChild(spec, nativeSpawnSupported(), parseOptions)) host().ensureSingleThreaded();
  // First of all: from here on no signal ends this process half-way.
  const signals = new ForegroundSignals({
    ...(options.stopTimeoutMs !== undefined ? { stopTimeoutMs: options.stopTimeoutMs } : {}),
    tty: options.tty === true,
    name: typeof spec?.name === "string" ? spec.name : undefined,
  }).listen();
  /** The exit code when a signal asked the run to stop before the command ran. */
  const stopped = () => (signals.stopping ? signalExitCode(signals.stopping) : undefined);
  try {
    const { Container } = await import("../container/container.ts");
    const { resolveSpec } = await import("../container/validate.ts");
    const { identify, recordImage, selfIdentity, StateStore } = await import("../container/state.ts");
    if (options.init) spec = { ...spec, init: true };
    const resolved = resolveSpec(spec);
    if (stopped() !== undefined) return stopped()!;
    const store = new StateStore();
    store.reserve({
      version: 1,
      name: resolved.name,
      state: "creating",
      owner: selfIdentity(),
      createdAt: new Date().toISOString(),
      spec: JSON.parse(JSON.stringify(spec)),
      ...(specFile ? { specFile } : {}),
      ...recordImage(spec.rootfs, resolved.rootfsPath),
      rootfs: resolved.rootfsPath,
      ...(resolved.cgroupName ? { cgroup: resolved.cgroupName } : {}),
      ...(resolved.veth ? { veth: resolved.veth.host } : {}),
    });
    // Published ports (network.ports, `hako run -p`): this process is the container's parent and
    // outlives it, so it holds the proxy, as the supervisor does for a -d one (the same code,
    // ports.ts); bound before the container is made (a taken port fails the run with nothing
    // made), closed in the finally below however the run ends (its end, a signal, a failed start).
    let published: import("../container/ports.ts").PublishedPorts | undefined;
    try {
      if (spec.network?.ports?.length) {
        const { publishPorts } = await import("../container/ports.ts");
        published = await publishPorts(spec, {
          stateDir: store.dir(resolved.name),
          log: (m) => void process.stderr.write(`hako run: ${m}\n`),
        });
        if (stopped() !== undefined) return stopped()!;
      }
      const tty = options.tty ? await import("../container/_tty.ts") : undefined;
      let c: import("../container/container.ts").Container;
      try {
        c = await Container.create(spec, {
          ...(published ? { portsPublished: true } : {}),
          onForked: (pid) => void store.update(resolved.name, (x) => ({ ...x, init: identify(pid) })),
          ...(tty ? { tty: tty.callerWindowSize() ?? true } : {}),
        });
      } catch (e) {
        // (a Ctrl-C on the terminal reaches a forked child still in hako's process group too)
        if (stopped() !== undefined) return stopped()!;
        throw e;
      }
      let relay: import("../container/_tty.ts").TerminalRelay | undefined;
      try {
        // One turn of the event loop, where the runtime hands over a signal that came meanwhile
        // (creating may not have yielded to it): one asking to stop means the command never starts.
        await new Promise((resolve) => setTimeout(resolve, 0));
        if (stopped() !== undefined) return stopped()!;
        if (tty) {
          relay = new tty.TerminalRelay({ input: options.interactive ?? false });
          relay.attach(c.terminal!);
        }
        signals.attach(c);
        try {
          await c.start();
        } catch (e) {
          if (stopped() !== undefined) return stopped()!;
          throw e;
        }
        store.update(resolved.name, (x) => ({ ...x, state: "running", startedAt: new Date().toISOString() }));
        const status = await c.wait();
        await relay?.finish();
        (await import("./_exit_note.ts")).reportExit(resolved.name, status); // oom-killed, pids limit reached
        return status.shellCode;
      } finally {
        relay?.close();
        c.delete();
      }
    } finally {
      published?.close();
      store.remove(resolved.name);
      // A container on an image (rootfs { image }): its writable layer goes with it.
      const { defaultVarDir, hasWritableLayers } = await import("../image/_names.ts");
      try {
        if (hasWritableLayers(defaultVarDir())) {
          (await import("../image/rw.ts")).releaseWritableOf(defaultVarDir(), store.root, resolved.name);
        }
      } catch { /* left to hako gc */ }
    }
  } finally {
    signals.close();
  }
}
