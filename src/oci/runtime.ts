/**
 * hako as an OCI runtime: runc's command line (`hako oci …`, `bin/hako-runc …`) over a bundle's
 * `config.json`, so podman, containerd or CRI-O can run containers with hako (`podman --runtime
 * /path/to/bin/hako-runc run …`).
 *
 * `create` runs every setup step of the container (the same spec, steps and code as any hako
 * container: see `config.ts` for the mapping) and leaves its process waiting on the exec FIFO in
 * the state directory, its last step before execve (see `execFifoPlan` in setup.ts), then exits:
 * the process is the caller's now (conmon and containerd-shim are child subreapers, as runc
 * expects). `start` opens the FIFO, which lets the command run. No hako supervisor runs in this
 * mode: the caller's shim is the monitor and reaper.
 *
 * Errors go to stderr and, with `--log FILE`, to that file as runc writes them (`--log-format
 * json`: `{"level":"error","msg":"…","time":"…"}` lines, which conmon reads); the exit status is 1,
 * as runc's. Messages the shims look for are runc's own ("container does not exist", "container not
 * running", "cannot start an already running container"…).
 * @module
 */
import {
  chmodSync,
  closeSync,
  constants as fs,
  existsSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
// `state`, `start`, `kill` and `delete` — which a shim calls several times per container — run in
// hot.ts, which loads no node: module; main.ts sends them there before it loads this one. Here, for
// the other commands: the container library, its setup, exec, cgroups, the config mapping, the
// freezer's cgroup detection and the FFI table are imported by the commands (and the branches) that
// use them, so that a static import here costs no command that does not (see bench/oci.ts).
import type { Container } from "../container/container.ts";
import type { ContainerSpec } from "../container/spec.ts";
import { identify } from "../container/_identity.ts";
import { needsJsChild } from "../container/_plain_mount.ts";
import { type OciArgs, OciUsageError } from "./args.ts";
import { inNestedUserNamespace, isValidId, type OciRecord, stateJson, withFreezer } from "./state.ts";
import type { OciHooks } from "./hooks.ts";
// The front of every command line (log, parse, runc's errors) and the hot commands — state, start,
// kill, delete — are hot.ts's: it loads no node: module (main.ts runs those four there first).
import {
  cgroupPids,
  type Ctx,
  mustRead,
  needId,
  OciError,
  postStart,
  postStop,
  runHooks,
  signalIdentified,
  start,
} from "./hot.ts";
export { OciError, type OciIo, runOci, usage } from "./hot.ts";

/**
 * Runs a command of a parsed runc command line other than hot.ts's (which calls this, within its
 * log and error handling).
 * @returns The exit status.
 */
export async function runCommand(ctx: Ctx, a: OciArgs): Promise<number> {
  const { io } = ctx;
  const o = a.options;
  switch (a.command) {
    case "create":
      await create(ctx, needId(a), o, false);
      return 0;
    case "run":
      return await run(ctx, needId(a), o);
    case "pause":
      await pause(ctx, needId(a));
      return 0;
    case "resume":
      await resume(ctx, needId(a));
      return 0;
    case "update":
      await update(ctx, needId(a), o);
      return 0;
    case "list":
      await list(ctx, String(o.format ?? "table"), o.quiet === true);
      return 0;
    case "ps":
      await ps(ctx, needId(a), String(o.format ?? "table"));
      return 0;
    case "spec":
      await writeSpec(String(o.bundle ?? process.cwd()), o.rootless === true);
      return 0;
    case "features":
      io.stdout(JSON.stringify((await import("./spec_default.ts")).ociFeatures(), null, 2) + "\n");
      return 0;
    case "exec":
      return await exec(ctx, needId(a), a.operands.slice(1), o);
    default:
      // (state, start, kill and delete are hot.ts's, which never sends them here)
      throw new OciUsageError(`unknown command ${a.command}`);
  }
}

/**
 * Writes a pid file as runc does: a temp file beside it, made with O_EXCL (as runc's
 * createPidFile: a symlink or file someone planted at that name, in a directory others may write
 * to, is never followed nor written), renamed over it.
 */
export function writePidFile(path: string, pid: number): void {
  const abs = resolve(path);
  const tmp = join(dirname(abs), `.${abs.slice(abs.lastIndexOf("/") + 1)}.${process.pid}.tmp`);
  writeFileSync(tmp, String(pid), { mode: 0o644, flag: "wx" }); // (wx: O_CREAT|O_EXCL)
  renameSync(tmp, abs);
}

type Options = Readonly<Record<string, string | boolean | readonly string[]>>;

const KEYCTL_JOIN_SESSION_KEYRING = 1n;
const KEYCTL_SETPERM = 5n;
const KEY_SPEC_SESSION_KEYRING = -3n;

/**
 * A new session keyring named `name` (runc's `_ses.<id>`), joined by this thread before the clone
 * (its children inherit it), as runc does unless `--no-new-keyring`: otherwise the container
 * would share the caller's session keyring, and a seccomp profile that allows `keyctl` (podman's
 * does) would let it read the caller's keys. Its permissions are runc's: everything for its
 * possessor and its owner, nothing for group and others (`0x3f3f0000`).
 * @throws {SyscallError} When keyctl fails.
 */
async function joinSessionKeyring(name: string): Promise<void> {
  const [{ addressOf, errno, libc }, { SYS }, { SyscallError }] = await Promise.all([
    import("../../ffi/libc.ts"),
    import("../../ffi/syscalls.ts"),
    import("../errors.ts"),
  ]);
  const c = libc();
  const n = new TextEncoder().encode(name + "\0");
  const id = c.syscall(BigInt(SYS.keyctl), KEYCTL_JOIN_SESSION_KEYRING, addressOf(n), 0n, 0n, 0n);
  if (id === -1n) throw new SyscallError("keyctl", errno(), ["KEYCTL_JOIN_SESSION_KEYRING", name]);
  const r = c.syscall(
    BigInt(SYS.keyctl),
    KEYCTL_SETPERM,
    BigInt.asUintN(64, KEY_SPEC_SESSION_KEYRING),
    0x3f3f0000n,
    0n,
    0n,
  );
  if (r === -1n) throw new SyscallError("keyctl", errno(), ["KEYCTL_SETPERM", name]);
}

/**
 * Whether hako-runc runs without the host's root: `--rootless true|false` as given, else (auto) not
 * uid 0, or uid 0 of a nested user namespace (runc's rule).
 */
function isRootless(ctx: Ctx): boolean {
  return ctx.rootless ?? ((process.geteuid?.() ?? 0) !== 0 || inNestedUserNamespace());
}

/**
 * A rootless caller's cgroup, as runc's rootless cgroup manager has it: device rules are dropped
 * (the user namespace already keeps the container from mknod, and only the host's root may load a
 * device program); without limits, a cgroup of its own only where the caller may make it (a
 * delegated subtree; rootless podman on cgroup v1, or without systemd, has none), else none; with
 * limits, it is kept, and a cgroup the caller cannot make fails create naming the directory.
 */
async function rootlessCgroup(spec: ContainerSpec, log: Ctx["log"]): Promise<ContainerSpec> {
  if (!spec.cgroup) return spec;
  const { devices, ...cgroup } = spec.cgroup;
  if (devices?.length) log.debug("rootless: linux.resources.devices left to the user namespace, as runc does");
  const limited = Object.keys(cgroup).some((k) => k !== "name" && k !== "parent");
  if (limited) return { ...spec, cgroup };
  // (runc's rootless manager tries to make it and lets a permission error go: where the caller may
  // make it — a delegated subtree, or root given --rootless true — it is made, named so)
  const [{ undelegatedCgroupDir }, { DEFAULT_CGROUP_PARENT }] = await Promise.all([
    import("../container/rootless.ts"),
    import("../container/_cgroup_parent.ts"),
  ]);
  const name = cgroup.name ?? `${cgroup.parent ?? DEFAULT_CGROUP_PARENT}/${spec.name}`;
  const dir = undelegatedCgroupDir(name, cgroup);
  if (!dir) return { ...spec, cgroup: { ...cgroup, name } };
  log.warn(`rootless: no cgroup of its own (${dir} is not writable, and no limit asks for one)`);
  const { cgroup: _none, ...rest } = spec;
  return rest;
}

/** The fds a container's process gets beyond stdio (see {@link fdsToPass}). */
export interface PassedFds {
  /** systemd's socket activation of the runtime itself: fds 3 … 2+listen, first. */
  readonly listen: number;
  /** All of them: `listen`, then `--preserve-fds`'s. */
  readonly total: number;
}

/**
 * The fds `create`, `run` (`activation` true) and `exec` pass to the container's process beyond
 * stdio, as runc counts them: when systemd socket-activated the runtime itself (`LISTEN_PID` this
 * process, `LISTEN_FDS` n) those n fds from 3 on, then `--preserve-fds N` more after them. Each
 * preserved one must be open (runc's words when not).
 * @param isOpen Whether an fd of this process is open.
 * @throws {OciUsageError} For a `--preserve-fds` that is no count.
 * @throws {OciError} For a preserved fd that is not open.
 */
export function fdsToPass(
  preserve: unknown,
  env: Readonly<Record<string, string | undefined>>,
  pid: number,
  activation: boolean,
  isOpen: (fd: number) => boolean,
): PassedFds {
  const text = preserve === undefined ? "0" : String(preserve);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new OciUsageError(`invalid value "${text}" for flag -preserve-fds: parse error`);
  }
  const count = Math.max(0, Number(text)); // (runc's loop runs no time for a negative count)
  let listen = 0;
  if (activation && env.LISTEN_PID !== undefined && /^\d+$/.test(env.LISTEN_PID) && Number(env.LISTEN_PID) === pid) {
    const n = /^\d+$/.test(env.LISTEN_FDS ?? "") ? Number(env.LISTEN_FDS) : 0;
    if (n > 0) listen = n;
  }
  const base = 3 + listen;
  if (count > 1 << 20) throw new OciError(`--preserve-fds ${count}: more fds than a process has`);
  for (let fd = base; fd < base + count; fd++) {
    if (!isOpen(fd)) {
      throw new OciError(
        `unable to stat preserved-fd ${
          fd - base
        } (of ${count}): faccessat /proc/self/fd/${fd}: no such file or directory`,
      );
    }
  }
  return { listen, total: listen + count };
}

/**
 * `config` with `LISTEN_FDS=n` and `LISTEN_PID=1` added to `process.env`, as runc adds them for
 * the socket-activation fds it passes on (the container's process is PID 1 of its namespace).
 */
export function withListenFds(config: unknown, n: number): unknown {
  if (typeof config !== "object" || config === null) return config;
  const c = config as { process?: unknown };
  if (typeof c.process !== "object" || c.process === null) return config;
  const proc = c.process as { env?: unknown };
  const env = Array.isArray(proc.env) ? proc.env : [];
  return { ...c, process: { ...proc, env: [...env, `LISTEN_FDS=${n}`, "LISTEN_PID=1"] } };
}

/**
 * runc's `--pidfd-socket PATH`: connected before anything is made (a socket no one listens on
 * fails the command first), it later gets a pidfd of the container's init (`create`, `run`:
 * message "standard") or of the exec'd process (`exec`: "setns") with `SCM_RIGHTS`, as runc ≥ 1.2
 * sends it; the caller can signal and wait on the process without pid reuse races.
 */
async function pidfdSocket(path: unknown): Promise<((pid: number, kind: "standard" | "setns") => void) | undefined> {
  if (typeof path !== "string") return undefined;
  const [{ connectUnix }, { sendFd }, { pidfdOpen }, { libc }] = await Promise.all([
    import("../../ffi/unix_socket.ts"),
    import("../../ffi/tty.ts"),
    import("../../ffi/poll.ts"),
    import("../../ffi/libc.ts"),
  ]);
  let sock: number;
  try {
    sock = connectUnix(path);
  } catch (e) {
    throw new OciError(`failed to dial ${path}: ${(e as Error).message}`);
  }
  // (closed when this process exits; and right after the one send)
  return (pid, kind) => {
    try {
      const fd = pidfdOpen(pid);
      if (fd < 0) throw new OciError(`failed to pidfd_open ${pid}: no such process, or a kernel before 5.3`);
      try {
        sendFd(sock, fd, kind);
      } catch (e) {
        throw new OciError(`failed to send pidfd on socket: ${(e as Error).message}`);
      } finally {
        libc().close(fd);
      }
    } finally {
      libc().close(sock);
    }
  };
}

/** Whether fd `fd` of this process is open. */
function fdOpen(fd: number): boolean {
  return existsSync(`/proc/self/fd/${fd}`);
}

/** `create` (and the first half of `run`, `fifo` false: no exec FIFO, the caller starts it). */
async function create(ctx: Ctx, id: string, o: Options, forRun: boolean): Promise<Container> {
  const { store, log } = ctx;
  const [
    { Container },
    { ociToSpec },
    { AT_FDCWD, mknodat, O_CLOEXEC, O_PATH, openat, S_IFIFO },
    { sendFd },
    { connectUnix, setUmask },
    { nativeSpawnSupported },
    { parseOptions },
    { singleThreaded },
    { existingCgroupDirs },
    { prepareFreezer, freezerOf, removeFreezer },
    { libc },
  ] = await Promise.all([
    import("../container/container.ts"),
    import("./config.ts"),
    import("../../ffi/at.ts"),
    import("../../ffi/tty.ts"),
    import("../../ffi/unix_socket.ts"),
    import("../../ffi/spawn.ts"),
    import("../mount.ts"),
    import("../../ffi/fork.ts"),
    import("../container/_cgroup.ts"),
    import("./freezer.ts"),
    import("../../ffi/libc.ts"),
  ]);
  if (!isValidId(id)) throw new OciError(`invalid id format: ${id}`);
  const passed = fdsToPass(o["preserve-fds"], process.env, process.pid, true, fdOpen);
  const sendPidfd = await pidfdSocket(o["pidfd-socket"]);
  const bundle = resolve(String(o.bundle ?? process.cwd()));
  const consoleSocket = typeof o["console-socket"] === "string" ? o["console-socket"] : undefined;
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
  } catch (e) {
    throw new OciError(`cannot read ${join(bundle, "config.json")}: ${(e as Error).message}`);
  }
  if (passed.listen > 0) config = withListenFds(config, passed.listen);
  // (before a re-exec below: Bun marks every inherited fd above 3 close-on-exec as it starts)
  if (passed.total > 0) (await import("../container/_preserve_fds.ts")).passPreservedFds(passed.total);
  // node:os is loaded here, by the one command that uses it: under Bun its import costs every
  // command's start ~0.5 ms (state, kill and delete never ask for the hostname).
  const { hostname } = process.getBuiltinModule("node:os") as typeof import("node:os");
  const plan0 = ociToSpec(config, bundle, id, { hostname: hostname(), systemdCgroup: ctx.systemdCgroup === true });
  const plan = isRootless(ctx) ? { ...plan0, spec: await rootlessCgroup(plan0.spec, log) } : plan0;
  // The CLI starts create and run without the re-exec that makes Bun's engine single-threaded
  // (src/cli/commands.ts): only a container whose child is forked needs it, and it is done now,
  // before anything is made (the re-executed process reads the bundle again and goes on).
  if (ctx.io.singleThreaded && !singleThreaded && needsJsChild(plan.spec, nativeSpawnSupported(), parseOptions)) {
    log.debug("the container's child is forked: re-executing with the engine single-threaded");
    // (fds to pass on: Bun's own process.execve would close them)
    ctx.io.singleThreaded(passed.total > 0 ? (await import("../process.ts")).execve : undefined);
  }
  for (const w of plan.warnings) log.warn(w);
  const detached = !forRun || o.detach === true;
  if (plan.tty && detached && !consoleSocket) {
    throw new OciError("cannot allocate tty if runc will detach without setting console socket");
  }
  if (!plan.tty && consoleSocket) {
    throw new OciError("cannot use console socket if runc will not detach or allocate tty");
  }
  if (plan.tty && !consoleSocket) throw new OciError("a terminal needs --console-socket in hako's OCI mode");
  if (!store.reserve(id)) throw new OciError(`container with id exists: ${id}`);
  const spec = plan.spec as { rootfs: string };
  const base: OciRecord = {
    ociVersion: String((config as { ociVersion?: unknown }).ociVersion),
    id,
    name: plan.spec.name,
    bundle,
    rootfs: spec.rootfs,
    created: new Date().toISOString(),
    annotations: plan.annotations,
    owner: "",
    ...(plan.hooks.startContainer || plan.hooks.poststart || plan.hooks.poststop
      ? {
        hooks: {
          startContainer: plan.hooks.startContainer,
          poststart: plan.hooks.poststart,
          poststop: plan.hooks.poststop,
        } as OciHooks,
      }
      : {}),
  };
  // startContainer hooks run between the FIFO and the command's execve: `run` goes through the
  // FIFO too then (its start is `start`'s)
  const startHooks = !!plan.hooks.startContainer?.length;
  const useFifo = !forRun || startHooks;
  // prestart, createRuntime, createContainer: run at the child's hooks-sync step (see hooks.ts)
  const syncHooks = !!(plan.hooks.prestart?.length || plan.hooks.createRuntime?.length ||
    plan.hooks.createContainer?.length);
  let fifoFd = -1;
  let c: Container | undefined;
  // (the container's process existed: a failed create then goes on as delete, poststop included)
  let forked = false;
  try {
    await store.write(base);
    if (useFifo) {
      // runc's exec.fifo: 0622, opened O_PATH here and reopened for writing by the child
      mknodat(AT_FDCWD, store.fifo(id), S_IFIFO | 0o622, 0n);
      // 0622 whatever the umask (runc sets umask 0 around its mkfifo): the container's user, not
      // root once the user step ran, opens it for writing through /proc/self/fd
      chmodSync(store.fifo(id), 0o622);
      fifoFd = openat(AT_FDCWD, store.fifo(id), O_PATH | O_CLOEXEC);
    }
    if (o["no-new-keyring"] !== true) await joinSessionKeyring(`_ses.${id}`);
    const before = plan.umask !== undefined ? setUmask(plan.umask) : undefined;
    const persona = takePersonality(libc(), plan.personality);
    try {
      c = await Container.create(plan.spec, {
        ...(fifoFd >= 0 ? { execFifo: fifoFd } : {}),
        ...(plan.tty ? { tty: plan.tty } : {}),
        ...(startHooks ? { startSync: true } : {}),
        onForked: () => void (forked = true),
        ...(passed.total > 0 ? { preserveFds: passed.total } : {}),
        // (a host root on a ramdisk: the rootfs moved over / and chroot'ed into, as runc's msMoveRoot)
        ...(o["no-pivot"] === true ? { noPivot: true } : {}),
        // (runc's cgroupfs manager joins name=systemd too: a systemd as the container's init finds its subtree there)
        otherCgroups: true,
        ...(syncHooks
          ? {
            // The child waits after its mounts, before pivot_root: prestart, then createRuntime
            // (the runtime's namespaces), then createContainer (the container's); a failure
            // fails create, which undoes the container (runc's order and outcome)
            onSync: async (pid: number) => {
              const creating = { ...stateJson(store, base), status: "creating", pid };
              // (in the bundle, as runc's create, which chdirs there, runs them)
              await runHooks("prestart", plan.hooks.prestart, creating, bundle);
              await runHooks("createRuntime", plan.hooks.createRuntime, creating, bundle);
              if (plan.hooks.createContainer?.length) {
                const { runHooksIn, createContainerProfile } = await import("./hooks.ts");
                await runHooksIn(
                  "createContainer",
                  plan.hooks.createContainer,
                  creating,
                  pid,
                  createContainerProfile(spec.rootfs),
                  store.dir(id),
                );
              }
            },
          }
          : {}),
      });
    } finally {
      if (before !== undefined) setUmask(before);
      persona();
    }
    if (plan.tty) {
      const sock = connectUnix(consoleSocket!);
      try {
        sendFd(sock, c.terminal!);
      } finally {
        libc().close(sock);
      }
    }
    sendPidfd?.(c.pid, "standard");
    // (pause/resume: the init, and so every process of the container, in a freezer cgroup)
    if (c.spec.cgroupName) prepareFreezer(c.spec.cgroupName, c.pid);
    const freezer = c.spec.cgroupName ? freezerOf(c.spec.cgroupName) : undefined;
    const cgroupDirs = c.spec.cgroupName ? existingCgroupDirs(c.spec.cgroupName) : [];
    if (plan.oomScoreAdj !== undefined) writeFileSync(`/proc/${c.pid}/oom_score_adj`, String(plan.oomScoreAdj));
    const who = identify(c.pid);
    const record: OciRecord = {
      ...base,
      pid: c.pid,
      startTime: who?.startTime ?? 0,
      ...(c.spec.cgroupName ? { cgroupName: c.spec.cgroupName } : {}),
      ...(freezer ? { freezer } : {}),
      ...(cgroupDirs.length > 0 ? { cgroupDirs } : {}),
      ...(c.spec.cgroup ? { cgroup: c.spec.cgroup } : {}),
    };
    await store.write(record);
    if (typeof o["pid-file"] === "string") writePidFile(o["pid-file"], c.pid);
    log.debug(`created ${id}: pid ${c.pid}`);
    return c;
  } catch (e) {
    try {
      c?.delete();
      if (c?.spec.cgroupName) removeFreezer(c.spec.cgroupName);
    } catch { /* the first error matters */ }
    store.remove(id);
    // (a failed create goes on to delete, whose poststop hooks run: runtime.md's lifecycle, runc)
    if (c || forked) await postStop(ctx, base, { ...stateJson(store, base), pid: 0 });
    throw commandNotFound(e, plan.spec.command) ?? e;
  } finally {
    if (fifoFd >= 0) libc().close(fifoFd);
  }
}

/**
 * A failed command lookup (the child's lookup-command step) in runc's words, which engines read:
 * podman exits 127 on "executable file not found" or "no such file or directory", 126 on
 * "permission denied"; hako's own detail follows. Undefined for any other error.
 */
export function commandNotFound(e: unknown, command: unknown): OciError | undefined {
  if (!(e instanceof Error) || (e as { step?: string }).step !== "lookup-command") return undefined;
  const cmd = Array.isArray(command) ? String(command[0]) : String(command);
  const why = /EACCES/.test(e.message)
    ? "permission denied"
    : cmd.includes("/")
    ? `stat ${cmd}: no such file or directory`
    : "executable file not found in $PATH";
  return new OciError(
    `unable to start container process: exec: ${JSON.stringify(cmd)}: ${why} (${e.message})`,
  );
}

// (needsJsChild lives with the other rules of what the native child can do: _plain_mount.ts)
export { needsJsChild } from "../container/_plain_mount.ts";

/**
 * The startContainer hooks, once the command is released (the FIFO's byte read) and before its
 * execve: inside the container as its command (the profile of the bundle's config.json, as `exec`
 * builds it; see hooks.ts), the state `created` on stdin. Then the child, waiting for a second byte
 * through the FIFO, is let go. A failure kills the container and fails start: runc's init returns
 * the hook's error instead of exec'ing, so the command never runs.
 */
export async function startContainerHooks(ctx: Ctx, r: OciRecord): Promise<void> {
  const fifo = ctx.store.fifo(r.id);
  try {
    const [{ runHooksIn }, { ociToSpec }, { resolveSpec }] = await Promise.all([
      import("./hooks.ts"),
      import("./config.ts"),
      import("../container/validate.ts"),
    ]);
    const config = JSON.parse(readFileSync(join(r.bundle, "config.json"), "utf8")) as Record<string, unknown>;
    const spec = resolveSpec(ociToSpec(config, r.bundle, r.id, { systemdCgroup: !!r.cgroup?.systemd }).spec);
    const { argv: _a, env: _e, ...profile } = spec;
    await runHooksIn(
      "startContainer",
      r.hooks!.startContainer,
      stateJson(ctx.store, r),
      r.pid!,
      profile,
      ctx.store.dir(r.id),
    );
    // The child reads the FIFO again: the byte that lets it exec (no reader yet: ENXIO, retried).
    const until = Date.now() + 30_000;
    for (;;) {
      let w: number | undefined;
      try {
        w = openSync(fifo, fs.O_WRONLY | fs.O_NONBLOCK | 0o2000000 /* O_CLOEXEC */);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENXIO") throw e;
      }
      if (w !== undefined) {
        try {
          writeFileSync(w, "1");
        } finally {
          closeSync(w);
        }
        return;
      }
      if (ctx.store.status(r) === "stopped") throw new OciError("the container's process ended before start");
      if (Date.now() > until) throw new OciError("the container's process did not wait for its startContainer hooks");
      await new Promise((res) => setTimeout(res, 2));
    }
  } catch (e) {
    if (r.pid && r.startTime !== undefined) {
      await signalIdentified({ pid: r.pid, startTime: r.startTime }, "KILL", `start ${r.id}`);
    }
    try {
      unlinkSync(fifo);
    } catch { /* gone */ }
    throw e;
  }
}

/** `pause`: freezes every process of a created or running container (see freezer.ts). */
async function pause(ctx: Ctx, id: string): Promise<void> {
  const r = await mustRead(ctx, id);
  const status = ctx.store.status(r);
  if (status !== "created" && status !== "running") throw new OciError("container not running");
  if (!r.cgroupName) throw new OciError("the container has no cgroup of its own: it cannot be paused");
  await (await import("./freezer.ts")).freeze(r.cgroupName);
}

/**
 * `update`: new limits written to the live cgroup (see update.ts), recorded in the state. Like
 * runc: only a created, running or paused container; Intel RDT's schemas are refused.
 */
async function update(ctx: Ctx, id: string, o: Options): Promise<void> {
  const r = await mustRead(ctx, id);
  const status = ctx.store.status(r);
  if (status === "stopped" || status === "creating") throw new OciError(`container not running`);
  for (const k of ["l3-cache-schema", "mem-bw-schema"]) {
    if (typeof o[k] === "string") throw new OciError(`--${k}: not supported by hako (no Intel RDT)`);
  }
  if (!r.cgroupName) throw new OciError("the container has no cgroup of its own: nothing to update");
  const [{ mergedCgroup, updateResources }, { Group }, { containerGroupSpec }] = await Promise.all([
    import("./update.ts"),
    import("../cgroup/group.ts"),
    import("../container/_cgroup.ts"),
  ]);
  const resources = updateResources(o, () => readFileSync(0, "utf8"));
  const cgroup = mergedCgroup(r.cgroup, resources);
  const { name: _n, parent: _p, devices: _d, systemd, ...limits } = cgroup;
  const group = new Group(r.cgroupName, containerGroupSpec(limits, { devices: false }));
  if (systemd) {
    // (systemd is told first, as runc's manager does: the unit's properties are what a
    // daemon-reload writes again, so they must not hold the old limits)
    const [{ limitProperties }, { SystemdManager }] = await Promise.all([
      import("../cgroup/systemd.ts"),
      import("../cgroup/systemd_manager.ts"),
    ]);
    const m = SystemdManager.connect();
    try {
      const version = group.controllers[0]?.version ?? 2;
      m.setUnitProperties(systemd.unit, limitProperties(group.plannedWrites(), version, m.version()));
    } finally {
      m.close();
    }
  }
  group.modify();
  await ctx.store.write({ ...r, cgroup });
}

/** `resume`: thaws a paused container. */
async function resume(ctx: Ctx, id: string): Promise<void> {
  const r = await mustRead(ctx, id);
  if (ctx.store.status(r) !== "paused") throw new OciError("container not paused");
  (await import("./freezer.ts")).thaw(r.cgroupName!, r.freezer);
}

async function list(ctx: Ctx, format: string, quiet: boolean): Promise<void> {
  const records = await Promise.all(
    ctx.store.ids().map((id) => ctx.store.read(id)).filter((r): r is OciRecord => !!r).map(withFreezer),
  );
  if (quiet) {
    ctx.io.stdout(records.map((r) => `${r.id}\n`).join(""));
    return;
  }
  if (format === "json") {
    ctx.io.stdout(JSON.stringify(records.map((r) => stateJson(ctx.store, r))) + "\n");
    return;
  }
  if (format !== "table") throw new OciError(`invalid format option: ${format}`);
  const rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]];
  for (const r of records) {
    const s = stateJson(ctx.store, r);
    rows.push([r.id, String(s.pid), String(s.status), r.bundle, r.created, r.owner]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  ctx.io.stdout(rows.map((row) => row.map((c, i) => c.padEnd(widths[i]! + 3)).join("").trimEnd() + "\n").join(""));
}

async function ps(ctx: Ctx, id: string, format: string): Promise<void> {
  const r = await mustRead(ctx, id);
  const pids = await cgroupPids(r);
  if (format === "json") {
    ctx.io.stdout(JSON.stringify(pids) + "\n");
    return;
  }
  if (format !== "table") throw new OciError(`invalid format option: ${format}`);
  const lines = ["PID   CMD"];
  for (const pid of pids) {
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
    } catch { /* gone */ }
    lines.push(`${String(pid).padEnd(6)}${cmd}`);
  }
  ctx.io.stdout(lines.join("\n") + "\n");
}

async function writeSpec(bundle: string, rootless: boolean): Promise<void> {
  const { defaultOciSpec } = await import("./spec_default.ts");
  const file = join(resolve(bundle), "config.json");
  if (existsSync(file)) throw new OciError("File config.json exists. Remove it first.");
  writeFileSync(file, JSON.stringify(defaultOciSpec({ rootless }), null, "\t") + "\n", { mode: 0o644 });
}

/**
 * `exec`: a process in a running container, as `hako exec` makes one (`execIn`: its namespaces,
 * cgroup, and the profile of the process — user, capabilities, rlimits, no_new_privs, seccomp —
 * from the bundle's config.json with `--process FILE`'s process, or the command line's, in place
 * of its own). `--detach`: exits once the process has exec'd (its pid in `--pid-file`), leaving it
 * to the caller's subreaper; otherwise waits and exits with its status.
 */
/**
 * Takes on `persona` (personality(2)) for the process about to be made, which inherits it; returns
 * the function that puts this process's own back. Nothing to do without one.
 * @throws {OciError} When the kernel refuses it.
 */
function takePersonality(
  lib: { personality(persona: bigint): number },
  persona: number | undefined,
): () => void {
  if (persona === undefined) return () => {};
  const set = (p: bigint) => lib.personality(p);
  const before = set(0xffffffffn);
  if (set(BigInt(persona)) === -1) {
    throw new OciError(`linux.personality: the kernel refused 0x${persona.toString(16)}`);
  }
  return () => void set(BigInt(before));
}

async function exec(ctx: Ctx, id: string, argv: readonly string[], o: Options): Promise<number> {
  const [
    { execIn, execForksJs },
    { resolveSpec },
    { ociToSpec },
    { sendFd },
    { connectUnix },
    { libc },
    { singleThreaded },
    { nativeSpawnSupported, cloneIntoCgroupSupported },
    { primeAttach, primeSettled },
    { detect },
  ] = await Promise.all([
    import("../container/exec.ts"),
    import("../container/validate.ts"),
    import("./config.ts"),
    import("../../ffi/tty.ts"),
    import("../../ffi/unix_socket.ts"),
    import("../../ffi/libc.ts"),
    import("../../ffi/fork.ts"),
    import("../../ffi/spawn.ts"),
    import("../cgroup/_prime.ts"),
    import("../cgroup/layout.ts"),
  ]);
  const r = await mustRead(ctx, id);
  const status = ctx.store.status(r);
  if (status === "stopped") throw new OciError("cannot exec in a stopped container");
  // The cgroup join's grace period, started now (see src/cgroup/_prime.ts; execIn starts it again
  // before its clone, which then finds the lock fast) where the native child's cgroup2 directory
  // cannot be joined at its clone (no clone3 entry: execIn's parent writes cgroup.procs; its v1
  // ones the child joins itself). Not for a forked child (no native runner here; a time
  // namespace, rare, is found later and waits for it before its re-exec and fork).
  if (r.cgroupName && nativeSpawnSupported() && !cloneIntoCgroupSupported()) void primeAttach(detect().mounts);
  if (status === "creating") throw new OciError("cannot exec in a container in the creating state");
  if (status === "paused" && o["ignore-paused"] !== true) {
    throw new OciError("cannot exec in a paused container (use --ignore-paused to override)");
  }
  const passed = fdsToPass(o["preserve-fds"], process.env, process.pid, false, fdOpen);
  const sendPidfd = await pidfdSocket(o["pidfd-socket"]);
  if (passed.total > 0) (await import("../container/_preserve_fds.ts")).passPreservedFds(passed.total);
  for (const k of ["process-label", "apparmor", "cgroup"] as const) {
    const v = o[k];
    if (v !== undefined && v !== "" && v !== "0" && !(Array.isArray(v) && v.length === 0)) {
      throw new OciError(`--${k}: not supported by hako`);
    }
  }
  const config = JSON.parse(readFileSync(join(r.bundle, "config.json"), "utf8")) as Record<string, unknown>;
  const base = (config.process ?? {}) as Record<string, unknown>;
  let proc: Record<string, unknown>;
  if (typeof o.process === "string") {
    proc = JSON.parse(readFileSync(o.process, "utf8")) as Record<string, unknown>;
  } else {
    if (argv.length === 0) throw new OciUsageError("exec: a command (or --process) is required");
    const env = [...((base.env as string[] | undefined) ?? []), ...((o.env as readonly string[] | undefined) ?? [])];
    let user = base.user as Record<string, unknown> | undefined;
    if (typeof o.user === "string") {
      const [uid, gid] = o.user.split(":");
      if (!/^\d+$/.test(uid ?? "") || (gid !== undefined && !/^\d+$/.test(gid))) {
        throw new OciError(`--user ${o.user}: uid[:gid] as numbers`);
      }
      user = { uid: Number(uid), gid: Number(gid ?? 0) };
    }
    proc = {
      ...base,
      args: argv,
      env,
      terminal: o.tty === true,
      ...(typeof o.cwd === "string" ? { cwd: o.cwd } : {}),
      ...(user ? { user } : {}),
      ...(o["no-new-privs"] === true ? { noNewPrivileges: true } : {}),
    };
    if (Array.isArray(o.cap) && o.cap.length) {
      const caps = { ...(base.capabilities as Record<string, string[]> | undefined) };
      for (const set of ["bounding", "effective", "permitted"]) caps[set] = [...(caps[set] ?? []), ...o.cap];
      proc.capabilities = caps;
    }
  }
  const plan = ociToSpec({ ...config, process: proc }, r.bundle, id, { systemdCgroup: !!r.cgroup?.systemd });
  const spec = resolveSpec(plan.spec);
  const consoleSocket = typeof o["console-socket"] === "string" ? o["console-socket"] : undefined;
  if (plan.tty && !consoleSocket) throw new OciError("a terminal needs --console-socket in hako's OCI mode");
  if (!plan.tty && consoleSocket) {
    throw new OciError("cannot use console socket if runc will not detach or allocate tty");
  }
  // The CLI starts exec without the re-exec that makes Bun's engine single-threaded
  // (src/cli/commands.ts): its children are native programs but where execForksJs says they are
  // forked, and then it is done now, before anything is made (beforeFork: the safety net).
  // (fds to pass on: Bun's own process.execve would close them)
  const execve = passed.total > 0 ? (await import("../process.ts")).execve : undefined;
  const forkSafe = () => {
    if (ctx.io.singleThreaded && !singleThreaded) ctx.io.singleThreaded(execve);
  };
  if (execForksJs(spec)) {
    await primeSettled(); // (the early prime's write done before the re-exec: no thread mid-call)
    forkSafe();
  }
  const detach = o.detach === true;
  if (o["no-new-keyring"] !== true) joinSessionKeyring(`_ses.${id}`); // (runc's setns process joins one too)
  // (the exec'd process too is made with the container's personality, as runc's setns process)
  const persona = takePersonality(libc(), plan.personality);
  const result = await execIn(r.pid!, {
    argv: spec.argv,
    spec,
    beforeFork: forkSafe,
    ...(detach ? { detach } : {}),
    ...(passed.total > 0 ? { preserveFds: passed.total } : {}),
    ...(plan.tty ? { tty: plan.tty } : {}),
    ...(plan.tty
      ? {
        onTerminal: (master: number) => {
          const sock = connectUnix(consoleSocket!);
          try {
            sendFd(sock, master);
          } finally {
            libc().close(sock);
            libc().close(master);
          }
        },
      }
      : {}),
    onStart: (pid: number) => {
      sendPidfd?.(pid, "setns");
      if (typeof o["pid-file"] === "string") writePidFile(o["pid-file"], pid);
      // The process is the caller's now (its subreaper's, once this one exits).
      if (detach) process.exit(0);
    },
  }).finally(persona);
  return result.shellCode;
}

/** `run`: create and start; in the foreground, wait and exit with the container's status. */
async function run(ctx: Ctx, id: string, o: Options): Promise<number> {
  const c = await create(ctx, id, o, true);
  const r = await mustRead(ctx, id);
  const { removeFreezer } = await import("./freezer.ts");
  try {
    if (r.hooks?.startContainer?.length) await start(ctx, id); // (through the FIFO: see create)
    else {
      await c.start();
      await postStart(ctx, r);
    }
  } catch (e) {
    c.delete();
    if (c.spec.cgroupName) removeFreezer(c.spec.cgroupName);
    ctx.store.remove(id);
    throw e;
  }
  if (o.detach === true) return 0;
  const forward = (sig: string) => () => c.kill(sig);
  const handlers: Array<[NodeJS.Signals, () => void]> = (["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const).map((
    s,
  ) => [s, forward(s)]);
  for (const [s, h] of handlers) process.on(s, h);
  try {
    const status = await c.wait();
    return status.shellCode;
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
    if (o.keep !== true) {
      c.delete();
      if (c.spec.cgroupName) removeFreezer(c.spec.cgroupName);
      const state = stateJson(ctx.store, r);
      ctx.store.remove(id);
      await postStop(ctx, r, state);
    }
  }
}
