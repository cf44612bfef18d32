/**
 * Idmapped bind mounts (a bind's `idmap` / `ridmap` option, OCI's `idmap`/`ridmap` and a mount's
 * `uidMappings`): a container in a user namespace sees a host directory's files with the owners
 * they have on disk — root's as its root, uid 1000's as its uid 1000 — instead of as nobody, and
 * what it writes there is owned on disk by those ids, not by its host range. Podman's `:idmap`
 * volumes and Kubernetes' user-namespaced pods rely on it.
 *
 * The kernel maps a mount only for a caller privileged over its file system (root on the host),
 * so the parent does it, before the clone, as runc does: a user namespace with the container's
 * maps is made by a helper process that exits once its namespace is opened, each source is copied
 * detached (`open_tree(OPEN_TREE_CLONE)`) and mapped through that namespace
 * (`mount_setattr(MOUNT_ATTR_IDMAP)`), and the child, which inherits the copies' fds (the native
 * program in slots filled when it runs), attaches each on its checked target (the `mounts` step) —
 * nothing is mounted on the host meanwhile.
 * @module
 */
import { AT_FDCWD, close, idmappedTree, O_CLOEXEC, O_RDONLY, openat } from "../../ffi/at.ts";
import { nativeSpawnSupported, spawnProgram, SyscallProgram } from "../../ffi/spawn.ts";
import { forkProcess } from "../../ffi/fork.ts";
import { libc } from "../../ffi/libc.ts";
import { CLONE_NEWUSER, type IdMapEntry, writeIdMap } from "../namespace.ts";
import { waitpid2 } from "../process.ts";
import { SetupError } from "../errors.ts";
import { closeFd, pipe } from "./_pipe.ts";
import type { MountSpec } from "./spec.ts";
import { isIdmapped } from "./_plain_mount.ts";

/** The idmapped copies made for a container: its spec mounts' indexes → their fds. */
export interface IdmappedMounts {
  /** A spec mount's index → the fd of its idmapped detached copy (inherited by the child). */
  readonly fds: ReadonlyMap<number, number>;
  /** Closes the parent's fds (after the clone: the child has its own). */
  close(): void;
}

/**
 * Makes the idmapped copies of a spec's idmapped binds, mapped with the container's own maps.
 * @param mounts The spec's mounts. @param uidMap The container's uid map. @param gidMap Its gid map.
 * @returns The copies, or undefined when no mount is idmapped.
 * @throws {SetupError} For the `idmap-mounts` step, naming the mount and what failed.
 */
export function prepareIdmappedMounts(
  mounts: readonly MountSpec[],
  uidMap: readonly IdMapEntry[],
  gidMap: readonly IdMapEntry[],
): IdmappedMounts | undefined {
  const wanted = mounts.flatMap((m, i) => (isIdmapped(m) ? [[m, i] as const] : []));
  if (!wanted.length) return undefined;
  const fds = new Map<number, number>();
  const closeAll = () => {
    for (const fd of fds.values()) closeFd(fd);
    fds.clear();
  };
  let userns: number;
  try {
    userns = userNamespaceFd(uidMap, gidMap);
  } catch (e) {
    throw new SetupError("idmap-mounts", `a user namespace with the container's maps: ${(e as Error).message}`);
  }
  try {
    for (const [m, i] of wanted) {
      try {
        fds.set(i, idmappedTree(m.source!, userns, (m.options ?? []).includes("ridmap")));
      } catch (e) {
        throw new SetupError(
          "idmap-mounts",
          `mounts[${i}] (${m.source} on ${m.target}, idmapped): ${(e as Error).message}${
            /EINVAL/.test(String(e)) ? " (this file system cannot be idmapped on this kernel)" : ""
          }`,
        );
      }
    }
  } catch (e) {
    closeAll();
    throw e;
  } finally {
    close(userns);
  }
  return { fds, close: closeAll };
}

/**
 * A user namespace with these maps, as an open `/proc/PID/ns/user`: a helper process is cloned
 * into a new one (natively where there is a runner: it runs no JavaScript), its maps written, the
 * namespace opened, and the helper let go (it waits on a pipe whose other end this closes) and
 * reaped. The namespace lives on through the fd.
 */
function userNamespaceFd(uidMap: readonly IdMapEntry[], gidMap: readonly IdMapEntry[]): number {
  const [r, w] = pipe();
  let pid = -1;
  let keep: unknown;
  try {
    if (nativeSpawnSupported()) {
      // close the write end it inherited, wait for the parent's to close, exit
      const prog = new SyscallProgram();
      prog.call("close", [w]);
      prog.call("read", [r, prog.bytes(new Uint8Array(8)), 1]);
      prog.call("exit_group", [0]);
      const built = prog.build();
      built.reportTo(-1);
      keep = built; // (its memory is the child's until it is reaped)
      pid = spawnProgram(built, CLONE_NEWUSER);
    } else {
      pid = forkProcess(CLONE_NEWUSER);
      if (pid === 0) {
        const { close: closeIt, read, _exit } = libc();
        closeIt(w);
        read(r, new Uint8Array(1), 1n);
        _exit(0);
      }
    }
    writeIdMap(pid, "gid", gidMap, { allowSetgroups: true });
    writeIdMap(pid, "uid", uidMap);
    return openat(AT_FDCWD, `/proc/${pid}/ns/user`, O_RDONLY | O_CLOEXEC);
  } finally {
    closeFd(w);
    if (pid > 0) {
      try {
        waitpid2(pid);
      } catch { /* reaped */ }
    }
    closeFd(r);
    void keep;
  }
}
