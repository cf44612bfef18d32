/**
 * `hako new NAME`: writes `NAME.ts`, a commented container spec that `hako run NAME.ts` runs as it
 * is written (haconiwa's `init`, runc's `spec`, which writes a `config.json` to edit).
 * @module
 */
import { nonEmpty, parseArgs, quoted, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako new [--rootfs DIR | --image TARBALL] [-o FILE] [--force] <name>

Writes NAME.ts (or FILE), a container spec module with the common fields filled in and commented
— rootfs, command, environment, namespaces, limits, mounts — that 'hako run NAME.ts' runs as it
is written (its command prints a greeting), for you to edit (haconiwa's init, runc's spec). The
rootfs is DIR, a tarball extracted once (--image), or else a busybox tree built once under
/var/lib/hako/NAME. An existing file is never overwritten without --force.

Options:
      --rootfs <DIR>        The container's root directory
      --image <TARBALL>     A .tar[.gz|.zst|.xz] to extract once (into /var/lib/hako/images/…)
  -o, --output <FILE>       Where to write it (default NAME.ts in the current directory)
      --force               Overwrite FILE
  -h, --help                Show this help
`;

/** What `hako new` was asked to do. */
export interface NewArgs {
  readonly help: boolean;
  readonly name?: string;
  readonly rootfs?: string;
  readonly image?: string;
  readonly output?: string;
  readonly force: boolean;
}

/** Parses `hako new`'s arguments (pure). @throws {UsageError} For a bad name or both rootfs kinds. */
export function parseNewArgs(argv: readonly string[]): NewArgs {
  const { values, positionals } = parseArgs(argv, {
    rootfs: { type: "string" },
    image: { type: "string" },
    output: { type: "string", short: "o" },
    force: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, force: false };
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length ? "one container name only" : "a container name is required");
  }
  const name = nonEmpty(positionals[0]!, "the container name");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw new UsageError(
      `a container name is 1-64 letters, digits, _ . - (starting with a letter or digit), not ${quoted(name)}`,
    );
  }
  const rootfs = stringOption(values, "rootfs"), image = stringOption(values, "image");
  if (rootfs !== undefined && image !== undefined) throw new UsageError("give --rootfs or --image, not both");
  const output = stringOption(values, "output");
  return {
    help: false,
    name,
    ...(rootfs !== undefined ? { rootfs: nonEmpty(rootfs, "--rootfs") } : {}),
    ...(image !== undefined ? { image: nonEmpty(image, "--image") } : {}),
    ...(output !== undefined ? { output: nonEmpty(output, "--output") } : {}),
    force: values.force === true,
  };
}

/**
 * The spec module's text (pure).
 * @param name The container's name.
 * @param rootfs The rootfs field's TypeScript (already absolute paths).
 */
export function specTemplate(name: string, rootfs: string): string {
  const n = JSON.stringify(name);
  return `/**
 * ${name}: a container spec for hako, written by \`hako new ${name}\` — edit it to taste.
 *
 *   sudo hako run ${name}.ts [COMMAND ARGS…]   # in the foreground (arguments replace the command)
 *   sudo hako start ${name}.ts                 # in the background: hako ps, logs, shell, stop ${name}
 *   hako plan ${name}.ts                       # the steps and kernel calls it would make, touching nothing
 *
 * Every field is documented on hako's ContainerSpec; here are the common ones, with docker's flag
 * for each in brackets. Fields left out get hako's defaults (as tight as docker's): new pid, uts,
 * ipc, mount, net and cgroup namespaces; the default capabilities, seccomp filter, masked paths
 * and device allowlist; /proc, /sys, /dev, /dev/pts, /dev/shm.
 */
import type { ContainerSpec } from "hako";

export default (env: Readonly<Record<string, string | undefined>>, args: readonly string[]): ContainerSpec => ({
  // Its name: hako ps, logs, exec, stop… use it [--name].
  name: ${n},
  // Its root file system: a directory; a tarball extracted once, { tarball, path, owner? };
  // or a busybox tree built once, { builder: "busybox", path } [--rootfs / --image].
  rootfs: ${rootfs},
  // Its command; \`hako run ${name}.ts ARGS…\` replaces it.
  command: args.length ? [...args] : ["/bin/sh", "-c", "echo hello from $(hostname)"],
  // Its environment [-e NAME=VALUE]; a variable of the caller's: env.NAME.
  env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", GREETING: env.GREETING ?? "hello" },
  // Its working directory [-w] and host name [--hostname].
  workdir: "/",
  hostname: ${n},
  // Limits, in its own cgroup [-m, --cpus, --pids-limit]: 256 MiB, half a CPU, 512 processes.
  cgroup: { memory: { limit: "256M" }, cpu: { quotaUs: 50_000, periodUs: 100_000 }, pids: { max: 512 } },
  // A read-only root [--read-only], with a writable tmpfs on /tmp [--tmpfs /tmp]:
  // readonlyRootfs: true,
  // mounts: [{ type: "tmpfs", target: "/tmp" }, { type: "bind", source: "/srv/data", target: "/data", options: ["ro"] }],
  // Another user inside [-u 1000:1000]:
  // user: { uid: 1000, gid: 1000 },
  // Its root mapped to an unprivileged range of host ids [--userns]: add "user" to the namespaces.
  // namespaces: ["user", "mount", "uts", "ipc", "pid", "net", "cgroup"],
  // idMap: { uid: { inside: 0, outside: 100000, size: 65536 }, gid: { inside: 0, outside: 100000, size: 65536 } },
  // Capabilities beyond the defaults, or fewer [--cap-add, --cap-drop]:
  // capabilities: { add: ["NET_ADMIN"], drop: ["NET_RAW"] },
});
`;
}

/** Runs `hako new`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseNewArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { writeFileSync } = await import("node:fs");
  const { resolve } = await import("node:path");
  const { quickSpec, quickVarDir } = await import("./run.ts");
  const cwd = h.cwd();
  const name = a.name!;
  const varDir = quickVarDir(h.uid(), (n) => h.env(n));
  const rootfs = a.rootfs !== undefined
    ? JSON.stringify(resolve(cwd, a.rootfs))
    : a.image !== undefined
    ? JSON.stringify(quickSpec({ image: a.image, name, command: ["sh"] }, cwd, varDir).rootfs)
    : JSON.stringify({ builder: "busybox", path: `${varDir}/${name}` });
  const file = resolve(cwd, a.output ?? `${name}.ts`);
  try {
    writeFileSync(file, specTemplate(name, rootfs.replace(/"(\w+)":/g, "$1: ")), { flag: a.force ? "w" : "wx" });
  } catch (e) {
    if ((e as { code?: string }).code === "EEXIST") {
      h.stderr(`hako new: ${file} exists (--force overwrites it)\n`);
      return 1;
    }
    throw e;
  }
  h.stdout(`${file}\n`);
  return 0;
}
