/**
 * Spec modules: a `.ts` file whose default export is a container spec, or a function of the
 * environment and arguments returning one (so that `PORT=10012 hako run web.ts` can compute the
 * name, rootfs and id ranges from the port, as the haconiwa articles do).
 * @module
 */
import type { ContainerSpec } from "../container/spec.ts";

/** How the caller's terminal is attached (`-t`, `-i`). */
export interface TerminalOptions {
  /** `-t`: the container's command gets a pty of its own, relayed to this process's stdio. */
  readonly tty?: boolean;
  /** `-i`: with `tty`, this process's stdin is relayed to it (without, the command gets no input). */
  readonly interactive?: boolean;
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
 * SIGINT, SIGTERM and SIGHUP to it; the exit code is the container's (128+signal when killed).
 * A plain script (no spec) returns undefined and is left alone.
 */
export async function runSpecExports(
  exports: Record<string, unknown>,
  env: Readonly<Record<string, string | undefined>>,
  args: readonly string[],
  specFile?: string,
  terminal: TerminalOptions = {},
): Promise<number | undefined> {
  const spec = await specFromExports(exports, env, args);
  if (!spec) return undefined;
  return await runForeground(spec, specFile, terminal);
}

/**
 * Runs a container in the foreground (stdio attached, SIGINT, SIGTERM and SIGHUP forwarded) and
 * returns its shell exit code. While it runs it is recorded in the state directory, so `hako ps`
 * lists it and `hako exec` reaches it; the record goes when it ends. With `tty` its command gets
 * a pty of its own (see `Container.terminal`), relayed to this process's stdout (and, with
 * `interactive`, from its stdin, the caller's terminal raw meanwhile).
 */
export async function runForeground(
  spec: ContainerSpec,
  specFile?: string,
  terminal: TerminalOptions = {},
): Promise<number> {
  const { Container } = await import("../container/container.ts");
  const { resolveSpec } = await import("../container/validate.ts");
  const { identify, selfIdentity, StateStore } = await import("../container/state.ts");
  const process = (await import("node:process")).default;
  const resolved = resolveSpec(spec);
  const store = new StateStore();
  const r = spec.rootfs;
  const tarball = typeof r === "object" && "tarball" in r ? r.tarball : undefined;
  store.reserve({
    version: 1,
    name: resolved.name,
    state: "creating",
    owner: selfIdentity(),
    createdAt: new Date().toISOString(),
    spec: JSON.parse(JSON.stringify(spec)),
    ...(specFile ? { specFile } : {}),
    image: tarball ?? resolved.rootfsPath,
    rootfs: resolved.rootfsPath,
    extracted: tarball !== undefined,
    ...(resolved.cgroupName ? { cgroup: resolved.cgroupName } : {}),
    ...(resolved.veth ? { veth: resolved.veth.host } : {}),
  });
  try {
    const tty = terminal.tty ? await import("../container/_tty.ts") : undefined;
    const c = await Container.create(spec, {
      onForked: (pid) => void store.update(resolved.name, (x) => ({ ...x, init: identify(pid) })),
      ...(tty ? { tty: tty.callerWindowSize() ?? true } : {}),
    });
    const forward = (sig: NodeJS.Signals) => () => c.kill(sig);
    const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    let relay: import("../container/_tty.ts").TerminalRelay | undefined;
    try {
      if (tty) {
        relay = new tty.TerminalRelay({ input: terminal.interactive ?? false });
        relay.attach(c.terminal!);
      }
      await c.start();
      store.update(resolved.name, (x) => ({ ...x, state: "running", startedAt: new Date().toISOString() }));
      const status = await c.wait();
      await relay?.finish();
      (await import("./_exit_note.ts")).reportExit(resolved.name, status); // oom-killed, pids limit reached
      return status.shellCode;
    } finally {
      relay?.close();
      for (const [s, h] of handlers) process.off(s, h);
      c.delete();
    }
  } finally {
    store.remove(resolved.name);
  }
}
