/**
 * Built-in root filesystems made without the network: a busybox one (from a static busybox on
 * the host, e.g. Debian's busybox-static) or a "host" one (host binaries and the shared
 * libraries they load). Building is idempotent: a marker file records what was built.
 *
 * @example
 * ```ts ignore
 * import { buildRootfs } from "./src/container/rootfs.ts";
 * const { path, builder } = buildRootfs("/var/lib/hako/images/busybox");
 * ```
 * @module
 */
import { makePrivateParents } from "./_paths.ts";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { ConfigError } from "../errors.ts";
import { which } from "../process.ts";

/**
 * `node:child_process`'s execFileSync, loaded on first use, not at import: every start that loads
 * the container library would pay for it (~4 ms under Bun; bench/oci.ts), few run ldd or busybox.
 */
const execFileSync = () =>
  (process.getBuiltinModule("node:child_process") as typeof import("node:child_process")).execFileSync;

/** Which builder to use: "busybox" needs a static busybox on the host; "auto" falls back to "host". */
export type RootfsBuilder = "busybox" | "host" | "auto";

/** Options for {@link buildRootfs}. */
export interface BuildRootfsOptions {
  /** The builder (default "auto": busybox when a static one is found, else host binaries). */
  readonly builder?: RootfsBuilder;
  /** Extra host programs to copy into a "host" rootfs (names or paths). */
  readonly programs?: readonly string[];
  /** Rebuild even when the marker says it is built. */
  readonly force?: boolean;
  /** The hostname written to /etc/hostname (default "hako"). */
  readonly hostname?: string;
}

/** What {@link buildRootfs} made. */
export interface BuiltRootfs {
  /** The rootfs directory. */
  readonly path: string;
  /** The builder that made it. */
  readonly builder: "busybox" | "host";
  /** True when this call built it, false when it was already there. */
  readonly created: boolean;
}

const MARKER = ".hako-rootfs";
const MARKER_VERSION = 1;
/**
 * What a "host" rootfs holds (those the host has): a shell and the programs the demo's shell runs
 * (`hostname`, `ps`, `grep`, `head`, `ip`, `ls`, `tr`: src/cli/demo.ts), then the common tools a
 * script in a container expects. Debian's busybox-static has them all as applets.
 */
const HOST_PROGRAMS = [
  "sh",
  "ls",
  "cat",
  "echo",
  "printf",
  "ps",
  "hostname",
  "id",
  "mount",
  "umount",
  "grep",
  "sed",
  "tr",
  "cut",
  "sort",
  "uniq",
  "tee",
  "xargs",
  "sleep",
  "true",
  "false",
  "test",
  "mkdir",
  "rmdir",
  "rm",
  "cp",
  "mv",
  "ln",
  "chmod",
  "chown",
  "readlink",
  "basename",
  "dirname",
  "env",
  "date",
  "head",
  "tail",
  "wc",
  "stat",
  "touch",
  "uname",
  "nproc",
  "ip",
  "dd",
  "kill",
];

/** The path of a statically linked busybox on the host, if any. */
export function findStaticBusybox(): string | undefined {
  for (const candidate of ["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox", which("busybox")]) {
    if (candidate && existsSync(candidate) && isStaticElf(candidate)) return realpathSync(candidate);
  }
  return undefined;
}

/** True when `path` is an ELF executable without a program interpreter (statically linked). */
export function isStaticElf(path: string): boolean {
  const b = readFileSync(path);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false; // 64-bit ELF only
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (b.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

/** The shared libraries (and the loader) `program` needs, as host paths (from ldd). */
export function sharedLibraries(program: string): string[] {
  let out: string;
  try {
    out = execFileSync()("ldd", [program], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return []; // static, or not an ELF
  }
  const libs = new Set<string>();
  for (const line of out.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.add(m[1]);
  }
  return [...libs];
}

function skeleton(root: string, hostname: string): void {
  for (
    const d of [
      "bin",
      "sbin",
      "usr/bin",
      "usr/sbin",
      "etc",
      "proc",
      "sys",
      "dev",
      "tmp",
      "root",
      "var/log",
      "run",
      "home",
    ]
  ) {
    mkdirSync(join(root, d), { recursive: true });
  }
  chmodSync(join(root, "tmp"), 0o1777);
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
  writeFileSync(join(root, "etc/hostname"), `${hostname}\n`);
  writeFileSync(join(root, "etc/hosts"), `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost\n`);
}

function copyWithParents(src: string, root: string, dest = src): void {
  const target = join(root, dest);
  mkdirSync(dirname(target), { recursive: true });
  if (!existsSync(target)) copyFileSync(realpathSync(src), target);
  chmodSync(target, lstatSync(realpathSync(src)).mode & 0o7777);
}

function buildBusybox(root: string, busybox: string): void {
  copyWithParents(busybox, root, "/bin/busybox");
  const applets = execFileSync()(busybox, ["--list-full"], { encoding: "utf8" }).split("\n").filter(Boolean);
  for (const applet of applets) {
    const link = join(root, applet);
    if (applet === "bin/busybox" || existsSync(link)) continue;
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync("/bin/busybox", link);
  }
}

function buildHost(root: string, programs: readonly string[]): void {
  for (const name of programs) {
    const path = which(name);
    if (!path || !existsSync(path)) continue;
    const real = realpathSync(path);
    copyWithParents(real, root, `/bin/${name}`);
    for (const lib of sharedLibraries(real)) copyWithParents(lib, root);
  }
}

/**
 * True when a "host" rootfs's marker names fewer programs than this hako puts in one (e.g. one
 * built before `tr` was in the list, whose marker names none): it is rebuilt, once.
 */
function lacksPrograms(recorded: unknown, options: BuildRootfsOptions): boolean {
  if (!Array.isArray(recorded)) return true;
  const have = new Set(recorded);
  return [...HOST_PROGRAMS, ...(options.programs ?? [])].some((p) => !have.has(p));
}

/**
 * Builds (once) a small rootfs in `dir`, without the network.
 * @param dir Where to build it; created if missing. Built in a temp sibling, then renamed into place.
 * @returns The path, the builder used and whether this call built it.
 * @throws {ConfigError} When "busybox" is asked for and no static busybox is installed.
 */
export function buildRootfs(dir: string, options: BuildRootfsOptions = {}): BuiltRootfs {
  const marker = join(dir, MARKER);
  if (!options.force && existsSync(marker)) {
    try {
      const m = JSON.parse(readFileSync(marker, "utf8"));
      if (m.version === MARKER_VERSION && !(m.builder === "host" && lacksPrograms(m.programs, options))) {
        return { path: dir, builder: m.builder, created: false };
      }
    } catch { /* rebuild */ }
  }
  const wanted = options.builder ?? "auto";
  const busybox = wanted === "host" ? undefined : findStaticBusybox();
  if (wanted === "busybox" && !busybox) {
    throw new ConfigError(
      "rootfs.builder",
      "busybox needs a static busybox on the host (apt-get install busybox-static)",
    );
  }
  const builder = busybox ? "busybox" : "host";
  const programs = [...(busybox ? [] : HOST_PROGRAMS), ...(options.programs ?? [])];
  const tmp = `${dir}.building-${process.pid}`;
  makePrivateParents(dir);
  rmSync(tmp, { recursive: true, force: true });
  try {
    skeleton(tmp, options.hostname ?? "hako");
    if (busybox) buildBusybox(tmp, busybox);
    buildHost(tmp, programs);
    const record = builder === "host"
      ? { version: MARKER_VERSION, builder, programs }
      : { version: MARKER_VERSION, builder };
    writeFileSync(join(tmp, MARKER), JSON.stringify(record) + "\n");
    rmSync(dir, { recursive: true, force: true });
    makePrivateParents(dir);
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { path: dir, builder, created: true };
}
