/**
 * The files hako makes for a container — `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` — as
 * docker and podman make them: written into a directory of the container's own under the state
 * directory (`<state>/files/<name>/`), never into the rootfs, and bind-mounted over the paths
 * inside by the child. A rootfs shared by several containers is never written, so one container
 * cannot swap a file for a symlink and make the next start write a host file; each container
 * reads its own name.
 *
 * Only the mount points are made in the rootfs when missing (an empty file, an `etc` directory),
 * through directory fds with no symlink followed (`ffi/at.ts`).
 * @module
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import {
  AT_SYMLINK_NOFOLLOW,
  close,
  mkdirat,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_WRONLY,
  openat,
  openat2,
  RESOLVE_BENEATH,
  RESOLVE_NO_SYMLINKS,
  S_IFLNK,
  S_IFMT,
  statx,
} from "../../ffi/at.ts";
import { SetupError, SyscallError } from "../errors.ts";
import { secureJoin } from "./_paths.ts";
import { StateStore } from "./state.ts";
import type { ResolvedSpec } from "./validate.ts";
import { ELOOP, EXDEV } from "../../ffi/constants.ts";

/** A file bound over a path inside the container. */
export interface ContainerFile {
  /** The host file: one of the container's own, or the host's (`networkEtc: "host"`). */
  readonly source: string;
  /** The mount point on the host: the path inside, resolved in the rootfs (symlinks kept inside it). */
  readonly target: string;
  /** The path inside the container (for messages and `hako plan`). */
  readonly inside: string;
  /** Bound read-only (the host's own files are). */
  readonly readonly: boolean;
}

/** What a container gets: path inside → generated text, or the host file to bind read-only. */
export function containerFileContents(
  spec: ResolvedSpec,
): Array<{ readonly inside: string; readonly text?: string; readonly host?: string }> {
  if (spec.networkEtc === false) return [];
  if (spec.networkEtc === "host") {
    return ["/etc/resolv.conf", "/etc/hosts"].filter((f) => existsSync(f)).map((f) => ({ inside: f, host: f }));
  }
  const name = spec.hostname ?? spec.name;
  const own = spec.veth?.containerAddress?.split("/")[0];
  return [
    {
      inside: "/etc/hosts",
      text: `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${own ?? "127.0.1.1"}\t${name}\n`,
    },
    { inside: "/etc/hostname", text: `${name}\n` },
    { inside: "/etc/resolv.conf", text: resolvConf() },
  ];
}

/**
 * The container's resolv.conf, from the host's as docker makes it: search and options kept,
 * loopback name servers (a local resolver the container cannot reach from its own network
 * namespace) dropped — systemd-resolved's upstream list used instead when the host points at its
 * stub — and Google's public servers when none is left.
 */
export function resolvConf(read: (path: string) => string | undefined = readText): string {
  const parse = (text: string) => {
    const keep: string[] = [];
    const servers: string[] = [];
    for (const line of text.split("\n")) {
      const [key, value] = line.trim().split(/\s+/);
      if (key === "nameserver" && value) {
        if (!/^(127\.|::1$|0\.0\.0\.0$)/.test(value)) servers.push(value);
      } else if (key === "search" || key === "options" || key === "domain") keep.push(line.trim());
    }
    return { keep, servers };
  };
  const host = parse(read("/etc/resolv.conf") ?? "");
  let servers = host.servers;
  if (servers.length === 0) {
    const upstream = read("/run/systemd/resolve/resolv.conf");
    if (upstream !== undefined) servers = parse(upstream).servers;
  }
  if (servers.length === 0) servers = ["8.8.8.8", "8.8.4.4"];
  return [...servers.map((s) => `nameserver ${s}`), ...host.keep].join("\n") + "\n";
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The directory of a container's own files. */
export function containerFilesDir(name: string, store = new StateStore()): string {
  return join(store.filesRoot(), name);
}

/**
 * Writes the container's files into its own directory (made anew, 0700, owned by the host uid of
 * root inside so the child can reach them from a user namespace) and makes their mount points in
 * the rootfs. Runs in the parent before the clone.
 * @param owner The host uid and gid of root inside the container.
 * @returns The bind mounts the child makes.
 * @throws {SyscallError} When a mount point cannot be made without following a symlink out.
 */
export function writeContainerFiles(spec: ResolvedSpec, owner: { uid: number; gid: number }): ContainerFile[] {
  const contents = containerFileContents(spec);
  if (contents.length === 0) return [];
  const out: ContainerFile[] = [];
  let dir: string | undefined;
  for (const c of contents) {
    let source = c.host;
    if (c.text !== undefined) {
      if (!dir) {
        dir = containerFilesDir(spec.name);
        rmSync(dir, { recursive: true, force: true }); // (a crashed container's, of this name)
        mkdirSync(dir, { mode: 0o700 });
        chmodSync(dir, 0o700);
        chownSync(dir, owner.uid, owner.gid);
      }
      source = join(dir, c.inside.slice(c.inside.lastIndexOf("/") + 1));
      writeFileSync(source, c.text, { mode: 0o644, flag: "wx" });
      chmodSync(source, 0o644);
      chownSync(source, owner.uid, owner.gid);
    }
    const target = secureJoin(spec.rootfsPath, c.inside);
    assertNotInProc(spec.rootfsPath, target, c.inside);
    makeMountPoint(spec.rootfsPath, target);
    out.push({ source: source!, target, inside: c.inside, readonly: c.host !== undefined });
  }
  return out;
}

/** Removes a container's own files (idempotent). */
export function removeContainerFiles(name: string, store: StateStore = new StateStore()): void {
  // (The path only: removing makes nothing, so the state directory needs no preparing for it.)
  rmSync(join(store.root, "files", name), { recursive: true, force: true });
}

/**
 * An empty file at `target` (a path in `root`, already resolved there) unless something is there:
 * its directories made with mkdirat and the file created with O_NOFOLLOW, all under a directory
 * fd of the rootfs walked with no symlink followed — a symlink swapped in since the resolution is
 * refused, never followed out of the rootfs.
 */
/**
 * Refuses a file whose path, resolved in the rootfs, is inside /proc (an image's /etc/hosts that is
 * a symlink to /proc/sys/kernel/core_pattern, say): the child binds it after the container's /proc
 * is mounted, so it would cover a procfs file (runc's `checkProcMount` refuses such a destination,
 * CVE-2025-52881's family), and its mount point would be made under the image's /proc.
 * @throws {SetupError} For the `etc-files` step, naming the file and where it leads.
 */
function assertNotInProc(root: string, target: string, inside: string): void {
  const at = `/${relative(root, target)}`;
  if (at === "/proc" || at.startsWith("/proc/")) {
    throw new SetupError(
      "etc-files",
      `${inside} is ${at} in the rootfs, through its symlinks: inside /proc, where the container's file may not be bound`,
    );
  }
}

function makeMountPoint(root: string, target: string): void {
  const rel = relative(root, target);
  if (!rel || rel.startsWith("..")) {
    throw new SyscallError("openat2", EXDEV, [target], `make the mount point ${target} in ${root}`);
  }
  const parts = rel.split("/");
  const file = parts.pop()!;
  const rootFd = openat(-100, root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  let dirFd = rootFd;
  try {
    for (const part of parts) {
      let next: number;
      try {
        next = openat2(dirFd, part, {
          flags: O_PATH | O_DIRECTORY | O_CLOEXEC,
          resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
        });
      } catch (e) {
        if (!(e instanceof SyscallError && e.code === "ENOENT")) throw e;
        mkdirat(dirFd, part, 0o755);
        next = openat2(dirFd, part, {
          flags: O_PATH | O_DIRECTORY | O_CLOEXEC,
          resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
        });
      }
      if (dirFd !== rootFd) close(dirFd);
      dirFd = next;
    }
    // An existing file (or directory) is the mount point as it is; a symlink here is refused.
    let st;
    try {
      st = statx(dirFd, file, AT_SYMLINK_NOFOLLOW, target);
    } catch (e) {
      if (!(e instanceof SyscallError && e.code === "ENOENT")) throw e;
    }
    if (st && (st.mode & S_IFMT) === S_IFLNK) {
      throw new SyscallError("openat", ELOOP, [target], `make the mount point ${target}: it is a symlink`);
    }
    if (!st) close(openat(dirFd, file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644, target));
  } finally {
    if (dirFd !== rootFd) close(dirFd);
    close(rootFd);
  }
}
