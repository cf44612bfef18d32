/**
 * A rootfs as a tarball (`hako archive`, docker export), with the owners shifted back from a user
 * namespace's mapping — a file its root made, host uid 100000 under `0 100000 65536`, is uid 0 in
 * the archive — so that the archive is the tree as the container sees it, and extracts anywhere
 * (haconiwa's `archive`).
 *
 * The rootfs may be changed by a running container while it is read: every directory is opened
 * relative to its parent's fd with O_NOFOLLOW and entries are reached through `/proc/self/fd/N/name`
 * of that held directory, never by a path that a symlink swapped in could steer out of the rootfs
 * (a host file must never land in the archive).
 * @module
 */
import * as fs from "node:fs";
import { gzipSync } from "node:zlib";
import * as at from "../../ffi/at.ts";

/** One id map entry: `inside` … `inside+size-1` in the container is `outside` … on the host. */
export interface IdShift {
  readonly inside: number;
  readonly outside: number;
  readonly size: number;
}

/** The container's id for a host id (pure): through the map, 65534 outside it; unchanged without a map. */
export function idInside(hostId: number, map: readonly IdShift[] | undefined): number {
  if (!map || map.length === 0) return hostId;
  const e = map.find((m) => hostId >= m.outside && hostId < m.outside + m.size);
  return e ? e.inside + hostId - e.outside : 65534;
}

/** One entry of the archive. */
export interface TarEntry {
  /** Its path, relative, `/`-separated (a directory's without the trailing slash). */
  readonly path: string;
  /** `0` file, `1` hard link, `2` symlink, `3` char device, `4` block device, `5` directory, `6` FIFO. */
  readonly type: "0" | "1" | "2" | "3" | "4" | "5" | "6";
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  /** A link's target. */
  readonly linkname?: string;
  readonly devmajor?: number;
  readonly devminor?: number;
}

const enc = new TextEncoder();

/** A ustar header block with its checksum (pure); fields that do not fit are left to a PAX header. */
function ustarBlock(
  e: TarEntry,
  name: string,
  prefix: string,
  linkname: string,
  fits: (n: number, w: number) => boolean,
  type: string = e.type,
): Uint8Array {
  const b = new Uint8Array(512);
  const put = (at: number, width: number, text: string) => b.set(enc.encode(text).subarray(0, width), at);
  const octal = (at: number, width: number, n: number) =>
    put(at, width, fits(n, width) ? `${n.toString(8).padStart(width - 1, "0")}\0` : "\0");
  put(0, 100, name);
  octal(100, 8, e.mode & 0o7777);
  octal(108, 8, e.uid);
  octal(116, 8, e.gid);
  octal(124, 12, e.size);
  octal(136, 12, Math.max(0, Math.floor(e.mtime)));
  put(148, 8, "        ");
  put(156, 1, type);
  put(157, 100, linkname);
  put(257, 8, "ustar\u000000");
  if (e.devmajor !== undefined) octal(329, 8, e.devmajor);
  if (e.devminor !== undefined) octal(337, 8, e.devminor);
  put(345, 155, prefix);
  const sum = b.reduce((s, x) => s + x, 0);
  put(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return b;
}

/** `n` bytes of zeros padding `size` to a 512-byte boundary (pure). */
export function padding(size: number): Uint8Array {
  return new Uint8Array((512 - (size % 512)) % 512);
}

/**
 * The header blocks of an entry (pure): a PAX extended header first when its path, link target,
 * size or ids do not fit ustar's fields (POSIX.1-2001, as GNU tar and docker write them).
 */
export function tarHeader(e: TarEntry): Uint8Array {
  const path = e.type === "5" ? `${e.path}/` : e.path;
  const fits = (n: number, width: number) => Number.isSafeInteger(n) && n >= 0 && n < 8 ** (width - 1);
  const bytes = (s: string) => enc.encode(s).length;
  let name = path, prefix = "";
  const pax: [string, string][] = [];
  if (bytes(path) > 100) {
    // ustar splits a long path at a slash: up to 155 bytes of prefix, up to 100 of name.
    const cut = path.lastIndexOf("/", path.length - 1);
    const [p, n] = cut > 0 ? [path.slice(0, cut), path.slice(cut + 1)] : ["", path];
    if (cut > 0 && bytes(p) <= 155 && bytes(n) <= 100 && n !== "") [name, prefix] = [n, p];
    else [name, prefix] = [path.slice(0, 99), ""], pax.push(["path", path]);
  }
  const linkname = e.linkname ?? "";
  if (bytes(linkname) > 100) pax.push(["linkpath", linkname]);
  if (!fits(e.size, 12)) pax.push(["size", String(e.size)]);
  if (!fits(e.uid, 8)) pax.push(["uid", String(e.uid)]);
  if (!fits(e.gid, 8)) pax.push(["gid", String(e.gid)]);
  const main = ustarBlock(e, name, prefix, linkname.slice(0, 100), fits);
  if (pax.length === 0) return main;
  // Each record is "LEN key=value\n", LEN counting itself.
  const records = pax.map(([k, v]) => {
    const body = ` ${k}=${v}\n`;
    let len = bytes(body) + 1;
    while (String(len).length + bytes(body) !== len) len++;
    return `${len}${body}`;
  }).join("");
  const data = enc.encode(records);
  const head = ustarBlock(
    { path: "", type: "0", mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: e.mtime },
    `PaxHeaders/${name}`.slice(0, 99),
    "",
    "",
    fits,
    "x",
  );
  const all = new Uint8Array(512 + data.length + padding(data.length).length + 512);
  all.set(head);
  all.set(data, 512);
  all.set(main, all.length - 512);
  return all;
}

/** How {@link archiveRootfs} writes. */
export interface ArchiveOptions {
  /** The file to write (made, never through a symlink; mode 0600), or `-` for stdout. */
  readonly out: string;
  /** gzip it (in members of 1 MiB: a multi-member stream, which gzip, GNU tar and zlib read as one). */
  readonly gzip: boolean;
  /** The container's uid map, when it has a user namespace: owners are shifted back through it. */
  readonly uidMap?: readonly IdShift[];
  /** The container's gid map, likewise. */
  readonly gidMap?: readonly IdShift[];
}

/** Writes the tree at `rootfs` as a tar archive (see the module's comment for how it is read). */
export function archiveRootfs(rootfs: string, o: ArchiveOptions): void {
  const { uidMap, gidMap } = o;
  const gz = o.gzip;
  const outFd = o.out === "-" ? 1 : fs.openSync(
    o.out,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW,
    0o600,
  );
  const pending: Uint8Array[] = [];
  let held = 0;
  const flush = () => {
    if (held === 0) return;
    const all = new Uint8Array(held);
    let o = 0;
    for (const p of pending) all.set(p, o), o += p.length;
    pending.length = 0, held = 0;
    const data = gz ? gzipSync(all) : all;
    for (let done = 0; done < data.length;) done += fs.writeSync(outFd, data, done, data.length - done);
  };
  const write = (b: Uint8Array) => {
    pending.push(b.slice());
    held += b.length;
    if (held >= 1 << 20) flush();
  };

  const seen = new Map<string, string>(); // dev:ino → the first path of a hard-linked file
  const block = new Uint8Array(1 << 16);
  const visit = (dirfd: number, rel: string) => {
    const base = `/proc/self/fd/${dirfd}`;
    for (const name of fs.readdirSync(base).sort()) {
      const p = `${base}/${name}`;
      const path = rel ? `${rel}/${name}` : name;
      let st;
      try {
        st = fs.lstatSync(p);
      } catch {
        continue; // gone meanwhile
      }
      const common = {
        path,
        mode: st.mode,
        uid: idInside(st.uid, uidMap),
        gid: idInside(st.gid, gidMap),
        mtime: st.mtimeMs / 1000,
      };
      if (st.isDirectory()) {
        let fd: number;
        try {
          fd = at.openat(dirfd, name, at.O_RDONLY | at.O_DIRECTORY | at.O_NOFOLLOW | at.O_CLOEXEC, 0, path);
        } catch {
          continue; // replaced meanwhile
        }
        try {
          write(tarHeader({ ...common, type: "5", size: 0 }));
          visit(fd, path);
        } finally {
          at.close(fd);
        }
      } else if (st.isSymbolicLink()) {
        write(tarHeader({ ...common, type: "2", size: 0, linkname: fs.readlinkSync(p) }));
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first !== undefined) {
          write(tarHeader({ ...common, type: "1", size: 0, linkname: first }));
          continue;
        }
        if (st.nlink > 1) seen.set(key, path);
        let fd: number;
        try {
          fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
        } catch {
          continue;
        }
        try {
          // The size as opened: a file that grows is cut there, one that shrinks is padded with zeros.
          const size = fs.fstatSync(fd).size;
          write(tarHeader({ ...common, type: "0", size }));
          let left = size;
          while (left > 0) {
            const n = fs.readSync(fd, block, 0, Math.min(block.length, left), null);
            if (n <= 0) break;
            write(block.subarray(0, n));
            left -= n;
          }
          if (left > 0) write(new Uint8Array(left));
          write(padding(size));
        } finally {
          fs.closeSync(fd);
        }
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const dev = st.rdev;
        write(tarHeader({
          ...common,
          type: st.isCharacterDevice() ? "3" : "4",
          size: 0,
          devmajor: Math.floor(dev / 256) & 0xfff,
          devminor: (dev & 0xff) | (Math.floor(dev / 4096) & ~0xff),
        }));
      } else if (st.isFIFO()) write(tarHeader({ ...common, type: "6", size: 0 }));
      // (sockets are left out, as tar leaves them)
    }
  };
  const root = at.openat(at.AT_FDCWD, rootfs, at.O_RDONLY | at.O_DIRECTORY | at.O_NOFOLLOW | at.O_CLOEXEC);
  try {
    visit(root, "");
    write(new Uint8Array(1024)); // the end: two zero blocks
    flush();
  } finally {
    at.close(root);
    if (outFd !== 1) fs.closeSync(outFd);
  }
}
