/**
 * Tar archives written byte by byte for the tests (ustar: a 512-byte header per entry, the data
 * padded to 512 bytes, two zero blocks at the end), so a test can build any hostile ordering of
 * entries, names and link targets that no well-behaved tar tool would write.
 * @module
 */

/** One archive entry. */
export interface TarEntry {
  /** The member name, written as is (absolute names and `..` included). */
  readonly path: string;
  /** ustar type: 0 file, 1 hard link, 2 symlink, 3 char device, 4 block device, 5 directory, 6 fifo. */
  readonly type: "0" | "1" | "2" | "3" | "4" | "5" | "6";
  /** Hard or symbolic link target. */
  readonly linkpath?: string;
  /** File contents (type 0). */
  readonly data?: string | Uint8Array;
  /** Permission bits (default 0o755 for directories, 0o644 otherwise). */
  readonly mode?: number;
  /** Owner (default 0). */
  readonly uid?: number;
  /** Group (default 0). */
  readonly gid?: number;
  /** Device numbers (types 3 and 4). */
  readonly major?: number;
  /** Device numbers (types 3 and 4). */
  readonly minor?: number;
  /** Seconds since the epoch (default 1 700 000 000). */
  readonly mtime?: number;
}

const enc = new TextEncoder();

/** A ustar header for `e` whose data is `size` bytes. */
export function tarHeader(e: TarEntry, size: number): Uint8Array<ArrayBuffer> {
  const h = new Uint8Array(512);
  const put = (off: number, len: number, s: string) => {
    const b = enc.encode(s);
    if (b.length > len) throw new RangeError(`tar field at ${off} holds ${len} bytes: ${JSON.stringify(s)}`);
    h.set(b, off);
  };
  const oct = (off: number, len: number, n: number) => put(off, len, n.toString(8).padStart(len - 1, "0") + "\0");
  // A name over 100 bytes is split at a '/' into ustar's prefix (155 bytes) and name.
  let name = e.path, prefix = "";
  if (enc.encode(name).length > 100) {
    const cut = name.lastIndexOf("/", 155);
    if (cut > 0 && enc.encode(name.slice(cut + 1)).length <= 100) {
      [prefix, name] = [name.slice(0, cut), name.slice(cut + 1)];
    }
  }
  put(0, 100, name);
  put(345, 155, prefix);
  oct(100, 8, e.mode ?? (e.type === "5" ? 0o755 : 0o644));
  oct(108, 8, e.uid ?? 0);
  oct(116, 8, e.gid ?? 0);
  oct(124, 12, size);
  oct(136, 12, e.mtime ?? 1_700_000_000);
  put(148, 8, "        ");
  put(156, 1, e.type);
  put(157, 100, e.linkpath ?? "");
  put(257, 8, "ustar\x0000");
  oct(329, 8, e.major ?? 0);
  oct(337, 8, e.minor ?? 0);
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** The archive holding `entries`, in this order. */
export function tarBytes(entries: readonly TarEntry[]): Uint8Array<ArrayBuffer> {
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const data = typeof e.data === "string" ? enc.encode(e.data) : e.data ?? new Uint8Array(0);
    blocks.push(tarHeader(e, data.length));
    if (data.length) {
      const d = new Uint8Array(Math.ceil(data.length / 512) * 512);
      d.set(data);
      blocks.push(d);
    }
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

/** Every ordering of `items` (n! of them). */
export function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  const out: T[][] = [];
  items.forEach((item, i) => {
    for (const rest of permutations([...items.slice(0, i), ...items.slice(i + 1)])) out.push([item, ...rest]);
  });
  return out;
}
