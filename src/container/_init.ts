/**
 * A spec's `init: true` (`hako run --init`, `hako start --init`), as `docker run --init`: a small
 * static init — tini, which is what docker ships as `docker-init` — runs as the container's PID 1
 * and the command as its child. The kernel gives PID 1 of a PID namespace only the signals it has
 * a handler for, so a command that is PID 1 itself never gets a `hako stop`'s SIGTERM unless it
 * handles it, and nobody reaps the orphans it leaves; tini handles and forwards every signal, reaps
 * every zombie, and exits with the command's status (128+N when a signal ended it).
 *
 * Like docker, hako binds the host's binary read-only at `/dev/init` (in the container's own /dev
 * tmpfs, so nothing is written into the rootfs) and runs `/dev/init -- command…`. The binary is
 * `HAKO_INIT_PATH` (docker's daemon option `init-path`), else the first of {@link INIT_CANDIDATES}
 * that exists; it must be statically linked, since the rootfs need not hold a libc. The setup
 * captures it with the other host sources before the chroot (`setup.ts`, step `mount-init`).
 * @module
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import process from "node:process";

/** Where the init is bound inside the container (docker's path). */
export const INIT_TARGET = "/dev/init";

/**
 * Where hako looks for a static init, in order: Debian's and Ubuntu's `tini` package, then where
 * docker's packages put their `docker-init` (a static tini).
 */
export const INIT_CANDIDATES: readonly string[] = [
  "/usr/bin/tini-static",
  "/usr/bin/docker-init",
  "/usr/libexec/docker/docker-init",
];

const INSTALL_HINT =
  "install a static tini (Debian and Ubuntu: apt-get install tini, which ships /usr/bin/tini-static)";

/**
 * The host's static init for `init: true`, or why there is none usable.
 * @param env Where `HAKO_INIT_PATH` is read (default the process's environment).
 * @returns `{ path }`, or `{ problem }`: a sentence that names what to install.
 */
export function findInit(
  env: Readonly<Record<string, string | undefined>> = process.env,
): { path: string; problem?: undefined } | { path?: undefined; problem: string } {
  const given = env.HAKO_INIT_PATH;
  if (given !== undefined && given !== "") {
    if (!given.startsWith("/")) {
      return { problem: `HAKO_INIT_PATH must be an absolute path, got ${JSON.stringify(given)}` };
    }
    const problem = staticExecutableProblem(given);
    return problem ? { problem: `HAKO_INIT_PATH=${given}: ${problem}; ${INSTALL_HINT}` } : { path: given };
  }
  for (const path of INIT_CANDIDATES) {
    if (statSync(path, { throwIfNoEntry: false }) === undefined) continue;
    const problem = staticExecutableProblem(path);
    if (problem) return { problem: `${path}: ${problem}; ${INSTALL_HINT}, or set HAKO_INIT_PATH` };
    return { path };
  }
  return {
    problem: `needs a static init on the host, and none of ${INIT_CANDIDATES.join(", ")} is there: ${INSTALL_HINT}, ` +
      `or set HAKO_INIT_PATH to one`,
  };
}

/**
 * The argv that runs `argv` under the init (pure): `/dev/init -- argv…`, as docker's; without a
 * PID namespace of its own the init is not PID 1, so it registers as the command's child
 * subreaper (`-s`) to reap what the command leaves.
 */
export function initArgv(argv: readonly string[], pidNamespace: boolean): string[] {
  return [INIT_TARGET, ...(pidNamespace ? [] : ["-s"]), "--", ...argv];
}

/**
 * Checks a spec's `init` field (a few lines of the spec's one validation pass): a boolean, an init
 * on the host, and a /dev of the container's own to bind it in.
 * @param init The spec's `init`.
 * @param ownDev True when the container gets its own /dev (a mount namespace and the standard mounts).
 * @param bad Records a problem with its field path.
 * @returns The host path of the init, when one is wanted and usable.
 */
export function resolveInit(
  init: unknown,
  ownDev: boolean,
  bad: (path: string, message: string) => void,
): string | undefined {
  if (init === undefined || init === false) return undefined;
  if (init !== true) return void bad("init", `must be true or false, got ${JSON.stringify(init)}`);
  if (!ownDev) {
    return void bad(
      "init",
      `is bound at ${INIT_TARGET} in the container's own /dev: it needs a mount namespace and the standard mounts`,
    );
  }
  const found = findInit();
  if (found.problem !== undefined) return void bad("init", found.problem);
  return found.path;
}

/** Why `path` is not a statically linked executable (ELF without a program interpreter), or undefined. */
function staticExecutableProblem(path: string): string | undefined {
  let fd: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) return "not a regular file";
    if ((st.mode & 0o111) === 0) return "not executable";
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as { code?: string }).code;
    return code === "ENOENT" ? "no such file" : `cannot be read (${code ?? (e as Error).message})`;
  }
  try {
    const head = new Uint8Array(64);
    if (
      readSync(fd, head, 0, 64, 0) < 52 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46
    ) {
      return "not an ELF executable";
    }
    const elf64 = head[4] === 2, little = head[5] === 1;
    const v = new DataView(head.buffer);
    const phoff = elf64 ? Number(v.getBigUint64(32, little)) : v.getUint32(28, little);
    const phentsize = v.getUint16(elf64 ? 54 : 42, little), phnum = v.getUint16(elf64 ? 56 : 44, little);
    if (phentsize < 4 || phnum > 256) return "not an ELF executable";
    const table = new Uint8Array(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    const t = new DataView(table.buffer);
    for (let i = 0; i < phnum; i++) {
      if (t.getUint32(i * phentsize, little) === 3 /* PT_INTERP */) {
        return "dynamically linked (the container's rootfs need not have its libraries): a static build is needed";
      }
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}
