/**
 * docker's container flags as hako's spec fields (pure): `hako run --rootfs/--image` takes `-e`,
 * `--env-file`, `-v`, `--mount`, `-w`, `-u`, `-m`, `--cpus`, `--pids-limit`, `--hostname`,
 * `--read-only`, `--cap-add/--cap-drop`, `--network` and `--label` as `docker run` does, and
 * these functions turn them into the fields of a {@link ContainerSpec}, which the spec's own
 * validator then checks like any other (its field paths mapped back to the flags by
 * {@link flagOfField}).
 *
 * Only a flag's form is checked here (a `K=V`, a `SRC:DST`, a number); what a value means — a
 * size too small, a capability that does not exist, a mount target that is not absolute — is the
 * validator's to say, so the flags and a spec module can never disagree.
 *
 * @module
 */
import { quoted, UsageError } from "./_args.ts";
import type { ContainerSpec, MountSpec } from "../container/spec.ts";

/** The docker flags of a quick container, as given (a `-e` without a value is resolved later). */
export interface DockerFlags {
  /** `-e/--env`, in order: `K=V`, or `K` (the caller's value, as docker). */
  readonly env?: readonly string[];
  /** `--env-file`, in order (read by the command, not the parser). */
  readonly envFiles?: readonly string[];
  /** `-v SRC:DST[:ro|rw]` and `--mount`, as mounts. */
  readonly mounts?: readonly MountSpec[];
  /** `-w`. */
  readonly workdir?: string;
  /** `-u UID[:GID]`. */
  readonly user?: { readonly uid: number; readonly gid?: number };
  /** `-m/--memory`: a size ("512m"), as the spec's `cgroup.memory.limit` takes it. */
  readonly memory?: string;
  /** `--cpus`: CPUs (1.5). */
  readonly cpus?: number;
  /** `--pids-limit`: at most this many tasks, or "max" (docker's 0 and -1). */
  readonly pidsLimit?: number | "max";
  /** `--hostname`. */
  readonly hostname?: string;
  /** `--device HOST[:CONTAINER[:PERMS]]`, parsed (the host node is read by the command). */
  readonly devices?: readonly DeviceFlag[];
  /** `--domainname`. */
  readonly domainname?: string;
  /** `--sysctl KEY=VALUE` (docker's): the spec's `sysctl`, checked there. */
  readonly sysctl?: Readonly<Record<string, string>>;
  /** `--stop-signal`: what `hako stop` sends first (the spec's `stopSignal`). */
  readonly stopSignal?: string;
  /** `--read-only`. */
  readonly readOnly?: boolean;
  /** `--cap-add`. */
  readonly capAdd?: readonly string[];
  /** `--cap-drop`. */
  readonly capDrop?: readonly string[];
  /** `--network none|host|veth` (veth: implied by `-p`/`-P`). */
  readonly network?: "none" | "host" | "veth";
  /** `-p/--publish` (and, once the image is known, `-P`'s): the spec's `network.ports`. */
  readonly publish?: readonly import("../container/spec.ts").PortSpec[];
  /** `-P/--publish-all`: every ExposedPort of the image, to a free host port. */
  readonly publishAll?: boolean;
  /** `--label k=v`, recorded with the container (hako ignores them otherwise, as docker's engine). */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A variable's name as `-e` and `--env-file` take it (docker: anything but `=`; hako's spec: a C identifier). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Checks one `-e` value's form (pure): `NAME=VALUE` or `NAME`.
 * @throws {UsageError} Naming `--env` and the value.
 */
export function checkEnvFlag(entry: string): string {
  const i = entry.indexOf("=");
  const name = i < 0 ? entry : entry.slice(0, i);
  if (!ENV_NAME.test(name)) {
    throw new UsageError(
      `--env wants NAME=VALUE (or NAME for the caller's value) with a variable name (letters, digits, _), not ${
        quoted(entry)
      }`,
    );
  }
  return entry;
}

/**
 * The lines of an `--env-file` as `-e` values (pure), docker's format: one `NAME=VALUE` or `NAME`
 * a line, taken as it is (no quotes removed, no `$` expanded); blank lines and lines starting with
 * `#` are skipped.
 * @param text The file's content.
 * @param file Its path, for the message.
 * @throws {UsageError} For a line that is not a variable, naming the file and the line.
 */
export function parseEnvFile(text: string, file: string): string[] {
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = raw.replace(/^\s+/, "");
    if (line === "" || line.startsWith("#")) return;
    try {
      out.push(checkEnvFlag(line));
    } catch (e) {
      throw new UsageError(
        `--env-file ${file}, line ${n + 1}: ${(e as Error).message.replace(/^--env wants/, "wants")}`,
      );
    }
  });
  return out;
}

/**
 * The environment the `--env-file`s and `-e`s make (pure), docker's way: the files first, in
 * order, then each `-e`, a later value of a name replacing an earlier; a `NAME` alone takes the
 * caller's value, and is left out when the caller has none. Every name is an own key, whatever it
 * is (`__proto__` too).
 * @param entries The `--env-file` lines, then the `-e` values.
 * @param callerEnv The caller's environment.
 */
export function resolveEnv(
  entries: readonly string[],
  callerEnv: (name: string) => string | undefined,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of entries) {
    const i = e.indexOf("=");
    const name = i < 0 ? e : e.slice(0, i);
    const value = i < 0 ? callerEnv(name) : e.slice(i + 1);
    if (value === undefined) continue;
    Object.defineProperty(env, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return env;
}

/**
 * One `-v SRC:DST[:OPTS]` as a bind mount (pure). SRC is a host path, absolute or starting with
 * `.` (relative to the caller's directory, made absolute with the spec's other paths, as docker's CLI
 * since 23.0); a plain name is a docker named volume, which
 * hako does not have. OPTS: `ro` or `rw` (docker's default) and one of docker's propagation options
 * (`rprivate`, the default, `private`, `rshared`, `shared`, `rslave`, `slave`); SELinux's `z`/`Z`
 * and the rest are refused rather than ignored.
 * @throws {UsageError} Naming `-v` and the value.
 */
export function parseVolume(value: string): MountSpec {
  const parts = value.split(":");
  if (parts.length < 2 || parts.length > 3 || parts[0] === "" || parts[1] === "") {
    throw new UsageError(`-v wants SRC:DST[:ro|rw] (a host path and a path inside), not ${quoted(value)}`);
  }
  const [src, target, opts] = parts as [string, string, string | undefined];
  if (!src.startsWith("/") && !src.startsWith(".")) {
    throw new UsageError(
      `-v ${quoted(value)}: ${
        quoted(src)
      } would be a docker named volume, which hako has none of: give a host path (absolute, or starting with ./)`,
    );
  }
  let readonly = false;
  let propagation: string | undefined;
  for (const o of opts === undefined ? [] : opts.split(",")) {
    if (o === "ro" || o === "readonly") readonly = true;
    else if (o === "rw") readonly = false;
    else if (DOCKER_PROPAGATION.includes(o)) {
      if (propagation !== undefined) throw new UsageError(`-v ${quoted(value)}: more than one propagation option`);
      propagation = o;
    } else {
      throw new UsageError(
        `-v ${quoted(value)}: option ${quoted(o)} is not one hako takes (ro, rw, ${DOCKER_PROPAGATION.join(", ")})`,
      );
    }
  }
  return bindOf(src, target, readonly, propagation);
}

/**
 * `--sysctl KEY=VALUE`s (docker's) as the spec's `sysctl`: the key up to the first `=` (the value may
 * hold `=` and spaces, as `0 2147483647` does); which keys a container may set is the spec's rule.
 * @throws {UsageError} Naming `--sysctl` and a value without `KEY=`.
 */
export function parseSysctlFlags(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new UsageError(`--sysctl wants KEY=VALUE (net.ipv4.ip_forward=1), not ${quoted(v)}`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** One `--device`: the host's node, where it goes inside, and the access the cgroup gives it. */
export interface DeviceFlag {
  readonly host: string;
  readonly container: string;
  readonly perms: string;
}

/**
 * One `--device HOST[:CONTAINER[:PERMS]]` (docker's): both paths absolute, PERMS some of `r`, `w`
 * and `m` (default `rwm`); the container path defaults to the host's (pure).
 * @throws {UsageError} Naming `--device` and the value.
 */
export function parseDeviceFlag(value: string): DeviceFlag {
  const parts = value.split(":");
  const [host, container = host, perms = "rwm"] = parts as [string, string?, string?];
  if (parts.length > 3 || !host.startsWith("/") || !container.startsWith("/") || !/^[rwm]{1,3}$/.test(perms)) {
    throw new UsageError(
      `--device wants HOST[:CONTAINER[:PERMS]] (absolute paths; PERMS of r, w, m), not ${quoted(value)}`,
    );
  }
  return { host, container, perms };
}

/** docker's bind propagation options (`-v …:rshared`, `--mount bind-propagation=rshared`). */
const DOCKER_PROPAGATION = ["rprivate", "private", "rshared", "shared", "rslave", "slave"];

/** A bind mount as docker makes it: its propagation an option, unless it is hako's own (rprivate). */
function bindOf(source: string, target: string, readonly: boolean, propagation: string | undefined): MountSpec {
  return {
    type: "bind",
    source,
    target,
    ...(readonly ? { readonly: true } : {}),
    ...(propagation !== undefined && propagation !== "rprivate" ? { options: [propagation] } : {}),
  };
}

/**
 * The root propagation docker gives a container with a shared or slave bind (moby's setMounts):
 * "shared" with a shared one, else "slave" with a slave one; undefined without.
 */
export function dockerRootPropagation(mounts: readonly MountSpec[]): "shared" | "slave" | undefined {
  const all = mounts.flatMap((m) => (m.type === "bind" ? m.options ?? [] : []));
  if (all.some((o) => o === "shared" || o === "rshared")) return "shared";
  if (all.some((o) => o === "slave" || o === "rslave")) return "slave";
  return undefined;
}

/**
 * One `--mount` (docker's `type=bind,source=…,target=…,readonly` or
 * `type=tmpfs,target=…,tmpfs-size=…`) as a mount (pure).
 * @throws {UsageError} Naming `--mount` and the value.
 */
export function parseMountFlag(value: string): MountSpec {
  const bad = (why: string) => new UsageError(`--mount ${quoted(value)}: ${why}`);
  const kv = new Map<string, string | undefined>();
  for (const field of value.split(",")) {
    if (field === "") throw bad("an empty field");
    const i = field.indexOf("=");
    const k = (i < 0 ? field : field.slice(0, i)).toLowerCase(), v = i < 0 ? undefined : field.slice(i + 1);
    const key =
      ({ src: "source", dst: "target", destination: "target", ro: "readonly" } as Record<string, string>)[k] ??
        k;
    if (kv.has(key)) throw bad(`${key} is given twice`);
    kv.set(key, v);
  }
  const type = kv.get("type") ?? "volume";
  const target = kv.get("target");
  if (target === undefined || target === "") throw bad("target= (or dst=, destination=) is required");
  const ro = kv.has("readonly") ? kv.get("readonly") : "false";
  if (ro !== undefined && ro !== "true" && ro !== "false" && ro !== "1" && ro !== "0") {
    throw bad(`readonly takes true or false, not ${quoted(ro)}`);
  }
  const readonly = ro === undefined || ro === "true" || ro === "1";
  const allowed = type === "bind"
    ? ["type", "source", "target", "readonly", "bind-propagation"]
    : type === "tmpfs"
    ? ["type", "target", "readonly", "tmpfs-size", "tmpfs-mode"]
    : undefined;
  if (!allowed) throw bad(`type=${type} is not one hako takes (bind or tmpfs; it has no docker volumes)`);
  const other = [...kv.keys()].find((k) => !allowed.includes(k));
  if (other !== undefined) throw bad(`${other} is not a field of a ${type} mount here (${allowed.join(", ")})`);
  if (type === "bind") {
    const source = kv.get("source");
    if (source === undefined || source === "") throw bad("source= (or src=) is required for a bind mount");
    const propagation = kv.get("bind-propagation");
    if (kv.has("bind-propagation") && (propagation === undefined || !DOCKER_PROPAGATION.includes(propagation))) {
      throw bad(`bind-propagation takes ${DOCKER_PROPAGATION.join(", ")}, not ${quoted(propagation ?? "")}`);
    }
    return bindOf(source, target, readonly, propagation);
  }
  const options: string[] = ["nosuid", "nodev"];
  const size = kv.get("tmpfs-size"), mode = kv.get("tmpfs-mode");
  if (size !== undefined) {
    if (!/^\d+[kmg]?$/i.test(size)) throw bad(`tmpfs-size wants bytes (or 64m, 1g), not ${quoted(size)}`);
    options.push(`size=${size}`);
  }
  if (mode !== undefined) {
    if (!/^[0-7]{1,4}$/.test(mode)) throw bad(`tmpfs-mode wants an octal mode (1777), not ${quoted(mode)}`);
    options.push(`mode=${mode}`);
  }
  return { type: "tmpfs", target, options, ...(readonly ? { readonly: true } : {}) };
}

/**
 * `-u UID[:GID]` (pure): numbers only — a name would have to be looked up in the image's
 * /etc/passwd, which hako does not read. Ids up to 4294967294 ((uid_t)-1 means "unchanged").
 * @throws {UsageError} Naming `--user` and the value.
 */
export function parseUserFlag(u: string): { uid: number; gid?: number } {
  const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(u);
  if (!m || [m[1], m[2]].some((x) => x !== undefined && Number(x) > 4294967294)) {
    throw new UsageError(
      `--user wants UID[:GID], numbers in 0..4294967294 (names are not looked up in the image), not ${quoted(u)}`,
    );
  }
  return { uid: Number(m[1]), ...(m[2] !== undefined ? { gid: Number(m[2]) } : {}) };
}

/**
 * `--cpus 1.5` (pure): a number of CPUs, at least 0.01 as docker's (a 1 ms quota per 100 ms period,
 * the smallest the kernel takes), at most three decimals.
 * @throws {UsageError} Naming `--cpus` and the value.
 */
export function parseCpus(v: string): number {
  if (!/^\d{1,4}(\.\d{1,3})?$/.test(v) || Number(v) < 0.01) {
    throw new UsageError(`--cpus wants a number of CPUs, at least 0.01 (1, 0.5, 1.5), not ${quoted(v)}`);
  }
  return Number(v);
}

/**
 * `--pids-limit N` (pure): a positive count, or docker's 0 or -1 for no limit.
 * @throws {UsageError} Naming `--pids-limit` and the value.
 */
export function parsePidsLimit(v: string): number | "max" {
  if (v === "0" || v === "-1" || v === "max") return "max";
  if (!/^\d{1,10}$/.test(v) || Number(v) > 2 ** 31 - 1) {
    throw new UsageError(`--pids-limit wants a number of processes (0 or -1: no limit), not ${quoted(v)}`);
  }
  return Number(v);
}

/**
 * `--memory 512m` (pure): docker's sizes (b, k, m, g; also hako's K, M, G, KiB…) or -1 for none.
 * The value goes to the spec as it is, whose validator takes the same forms.
 * @throws {UsageError} Naming `--memory` and the value.
 */
export function parseMemory(v: string): string {
  if (!/^(\d+(\.\d+)?([kmgt]?)(i?b)?|-1)$/i.test(v)) {
    throw new UsageError(`--memory wants a size (512m, 1g, 1073741824), not ${quoted(v)}`);
  }
  return v;
}

/**
 * `--label k=v` values (pure), a later value of a key replacing an earlier, as docker.
 * @throws {UsageError} For a label without a key.
 */
export function parseLabels(list: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf("=");
    const k = i < 0 ? l : l.slice(0, i);
    // deno-lint-ignore no-control-regex
    if (k === "" || /[\x00-\x1f\x7f]/.test(l)) {
      throw new UsageError(`--label wants KEY=VALUE (or KEY), not ${quoted(l)}`);
    }
    Object.defineProperty(labels, k, {
      value: i < 0 ? "" : l.slice(i + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return labels;
}

/** docker's CFS period for `--cpus` (µs): the quota is cpus × this. */
export const CPU_PERIOD_US = 100_000;

/**
 * The spec fields the docker flags make (pure), over the quick container's own: `namespaces` is
 * the spec's default list (less "net" for `--network host`) when it has to change.
 * @param f The flags.
 * @param env The environment `resolveEnv` made (undefined: none given).
 * @param namespaces The quick container's namespaces (its default ones when it names none).
 */
export function dockerSpecFields(
  f: DockerFlags,
  env: Readonly<Record<string, string>> | undefined,
  namespaces: readonly string[],
): Partial<ContainerSpec> {
  const cgroup = {
    ...(f.memory !== undefined ? { memory: { limit: f.memory === "-1" ? "max" : f.memory } } : {}),
    ...(f.cpus !== undefined ? { cpu: { quotaUs: Math.round(f.cpus * CPU_PERIOD_US), periodUs: CPU_PERIOD_US } } : {}),
    ...(f.pidsLimit !== undefined ? { pids: { max: f.pidsLimit } } : {}),
  };
  const caps = {
    ...(f.capAdd?.length ? { add: [...f.capAdd] } : {}),
    ...(f.capDrop?.length ? { drop: [...f.capDrop] } : {}),
  };
  return {
    ...(env && Object.keys(env).length ? { env } : {}),
    ...(f.mounts?.length ? { mounts: [...f.mounts] } : {}),
    ...(f.mounts && dockerRootPropagation(f.mounts) ? { rootfsPropagation: dockerRootPropagation(f.mounts) } : {}),
    ...(f.workdir !== undefined ? { workdir: f.workdir } : {}),
    ...(f.user ? { user: { ...f.user } } : {}),
    ...(f.hostname !== undefined ? { hostname: f.hostname } : {}),
    ...(f.domainname !== undefined ? { domainname: f.domainname } : {}),
    ...(f.sysctl && Object.keys(f.sysctl).length ? { sysctl: { ...f.sysctl } } : {}),
    ...(f.stopSignal !== undefined ? { stopSignal: f.stopSignal } : {}),
    ...(f.readOnly ? { readonlyRootfs: true } : {}),
    ...(Object.keys(cgroup).length ? { cgroup } : {}),
    ...(Object.keys(caps).length ? { capabilities: caps } : {}),
    // Host networking: the host's net namespace, and its resolv.conf and hosts bound read-only.
    ...(f.network === "host"
      ? {
        namespaces: namespaces.filter((n) => n !== "net") as ContainerSpec["namespaces"],
        networkEtc: "host" as const,
      }
      : {}),
    // A veth pair whose addresses the run allocates (runQuickOn), and the published ports.
    ...(f.network === "veth" ? { network: { veth: {}, ...(f.publish?.length ? { ports: [...f.publish] } : {}) } } : {}),
  };
}

/** The flag that set each spec field (for the validator's messages). */
const FIELD_FLAGS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^env\b/, "-e/--env"],
  [/^mounts\b/, "-v/--mount"],
  [/^workdir\b/, "-w/--workdir"],
  [/^user\b/, "-u/--user"],
  [/^hostname\b/, "--hostname"],
  [/^domainname\b/, "--domainname"],
  [/^sysctl\b/, "--sysctl"],
  [/^devices\b/, "--device"],
  [/^stopSignal\b/, "--stop-signal"],
  [/^readonlyRootfs\b/, "--read-only"],
  [/^cgroup\.memory\b/, "-m/--memory"],
  [/^cgroup\.cpu\b/, "--cpus"],
  [/^cgroup\.pids\b/, "--pids-limit"],
  [/^capabilities\b/, "--cap-add/--cap-drop"],
  [/^network\.ports\b/, "-p/--publish"],
  [/^(namespaces|networkEtc|network)\b/, "--network"],
  [/^name\b/, "--name"],
  [/^command\b/, "the command"],
  [/^rootfs\b/, "--rootfs/--image"],
];

/**
 * The flag behind a spec field path (pure): `env.A` → `-e/--env`, `cgroup.memory.limit` →
 * `-m/--memory`; undefined for a field no flag sets.
 */
export function flagOfField(path: string): string | undefined {
  return FIELD_FLAGS.find(([re]) => re.test(path))?.[1];
}
