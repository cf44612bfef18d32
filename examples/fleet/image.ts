/**
 * The fleet's image: a busybox web server root filesystem as a `.tar.gz`, standing in for the
 * article's `haconiwa-image-php-tester.tar.gz` (seed 001). Built once, without the network, from
 * the host's static busybox (`apt-get install busybox-static`):
 *
 *   1. `buildRootfs(tmp, { builder: "busybox" })` — busybox and a symlink per applet,
 *   2. plus an `apache` user and group with id 48 (as in CentOS's httpd package) and `/var/www`
 *      owned by it (the container writes its page there as apache),
 *   3. packed with the system's GNU `tar` into a gzip'd tarball with numeric owners (root's files
 *      0:0, /var/www 48:48; extraction shifts them into each container's range).
 *
 * Why the system `tar`: it ships with every Debian/Ubuntu/Fedora base system, packs the ~400
 * busybox symlinks and modes exactly as they are with one process, and the article made its image
 * the same way (a chroot tree "just tarred up"). hako reads it back with node-tar
 * (src/container/tarball.ts), which understands GNU tar's format, so the pair is tested end to end.
 *
 *   sudo node_modules/.bin/deno run -A --v8-flags=--single-threaded examples/fleet/image.ts [PATH] [--force]
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { buildRootfs } from "../../src/container/rootfs.ts";

/** Where the image goes by default (`HAKO_IMAGE` overrides it, as in web.ts). */
export const DEFAULT_IMAGE = "/var/lib/hako/images/busybox-web.tar.gz";

/** The uid and gid of `apache` inside the image (the article's `id apache`: 48). */
export const APACHE_ID = 48;

/** What {@link buildImage} did. */
export interface BuiltImage {
  /** The tarball. */
  readonly path: string;
  /** False when it was already there (nothing was done). */
  readonly created: boolean;
}

/**
 * Builds the fleet's image at `path`, once: an existing file is kept unless `force` is set.
 * Written to a temp sibling and renamed into place, so an interrupted build leaves no half tarball.
 * @param path The `.tar.gz` to write (default `$HAKO_IMAGE` or {@link DEFAULT_IMAGE}).
 * @param options `force`: build again even when the file exists.
 * @returns The path and whether this call made it.
 * @throws {ConfigError} When the host has no static busybox.
 * @throws {Error} When `tar` fails (its stderr in the message).
 * @example Build it in a temp dir
 * ```ts ignore
 * import { buildImage } from "./examples/fleet/image.ts";
 * const { path } = buildImage("/tmp/web.tar.gz");
 * ```
 */
export function buildImage(path?: string, options: { readonly force?: boolean } = {}): BuiltImage {
  const out = resolve(path ?? process.env.HAKO_IMAGE ?? DEFAULT_IMAGE);
  if (!options.force && existsSync(out)) return { path: out, created: false };
  mkdirSync(dirname(out), { recursive: true });
  const work = mkdtempSync(join(dirname(out), ".busybox-web-"));
  try {
    const root = join(work, "rootfs");
    buildRootfs(root, { builder: "busybox", hostname: "web" });
    unlinkSync(join(root, ".hako-rootfs")); // the builder's marker; extraction writes its own
    mkdirSync(join(root, "var/www"), { recursive: true });
    chmodSync(join(root, "var/www"), 0o755);
    chownSync(join(root, "var/www"), APACHE_ID, APACHE_ID);
    writeFileSync(
      join(root, "etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\n" +
        `apache:x:${APACHE_ID}:${APACHE_ID}:Apache:/var/www:/bin/false\n` +
        "nobody:x:65534:65534:nobody:/:/bin/false\n",
    );
    writeFileSync(join(root, "etc/group"), `root:x:0:\napache:x:${APACHE_ID}:\nnogroup:x:65534:\n`);
    const tmp = join(work, "image.tar.gz");
    const r = spawnSync(
      "tar",
      ["--numeric-owner", "--sort=name", "-C", root, "-czf", tmp, "."],
      { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] },
    );
    if (r.error) throw new Error(`tar: ${r.error.message} (is GNU tar installed?)`);
    if (r.status !== 0) throw new Error(`tar exited ${r.status ?? r.signal}: ${r.stderr.trim()}`);
    chmodSync(tmp, 0o644);
    renameSync(tmp, out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { path: out, created: true };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const { path, created } = buildImage(args.find((a) => !a.startsWith("-")), { force: args.includes("--force") });
  console.log(`${created ? "built" : "already there:"} ${path}`);
}
