/**
 * The declarative container spec: a typed plain object, its defaults (those a docker/runc user
 * expects), and {@link assertValidSpec}, which collects every problem with its field path before
 * anything is touched.
 *
 * Validation is strict, whatever the types let through (a spec may come from JSON): every value
 * must have the type written here (`readonlyRootfs: "false"` is an error, not `true`), a key not
 * written here is an error at any level (with the closest known name suggested), strings may not
 * hold a NUL byte, and numbers must be in the ranges the kernel takes. A spec is plain data — JSON
 * plus hook callbacks (and bigints in a seccomp rule's values) —, at most 24 levels deep.
 *
 * @example
 * ```ts ignore
 * import { type ContainerSpec } from "./mod.ts";
 * export default (env: Record<string, string | undefined>): ContainerSpec => ({
 *   name: `web-${env.PORT}`,
 *   rootfs: { builder: "busybox", path: `/var/lib/hako/web-${env.PORT}` },
 *   namespaces: ["pid", "uts", "ipc", "mount", "user"],
 *   idMap: { uid: { inside: 0, outside: Number(env.PORT) * 100, size: 100 } },
 *   cgroup: { cpu: { quotaUs: 30_000, periodUs: 100_000 } },
 *   command: ["httpd", "-f", "-p", String(env.PORT)],
 * });
 * ```
 * @module
 */
import type { IdMapEntry, NamespaceName } from "../namespace.ts";
import type { OciSeccompProfile, SeccompProfile } from "../seccomp.ts";
import type { DeviceRule } from "../cgroup/devices.ts";
import type { SystemdScope } from "../cgroup/systemd.ts";
import type { Hook, ReadinessSpec } from "./hooks.ts";
import type { RestartPolicy } from "./restart_policy.ts";
import type { MemoryPressureSpec } from "./memory_pressure.ts";

/** A uid/gid range; haconiwa's `set_uid_mapping min:, max:, offset:` is `{ min, max, offset }`. */
export type IdRange = IdMapEntry | { readonly min: number; readonly max: number; readonly offset: number };

/** Where the container's root filesystem comes from. */
export type RootfsSpec =
  | string
  | { readonly path: string }
  | {
    /** A `.tar`, `.tar.gz`, `.tar.zst` or `.tar.xz` to extract (once) into `path` (its compression read from its first bytes). */
    readonly tarball: string;
    readonly path: string;
    /** Shift file owners so the range's first id owns the tree (seed: `chown -R`). */
    readonly owner?: { readonly uid: number; readonly gid?: number };
  }
  | { readonly builder: "busybox" | "host" | "auto"; readonly path: string }
  | {
    /**
     * An image of hako's store (`NAME[:TAG]`, an ID): the container runs on a writable layer of its
     * own over it (overlayfs, or a copy), removed with the container (see src/image/rw.ts).
     */
    readonly image: string;
    /** Where the container's rootfs is mounted (default: `images/roots/NAME` in the store's var dir). */
    readonly path?: string;
  };

/** A mount propagation, as mount(8) and OCI name them. */
export type RootfsPropagation =
  | "private"
  | "rprivate"
  | "slave"
  | "rslave"
  | "shared"
  | "rshared"
  | "unbindable"
  | "runbindable";

/** The mount propagations, as mount(8) and OCI name them. */
export const PROPAGATIONS: readonly RootfsPropagation[] = [
  "private",
  "rprivate",
  "slave",
  "rslave",
  "shared",
  "rshared",
  "unbindable",
  "runbindable",
];

/**
 * A device node made in the container's /dev (OCI's `linux.devices`, docker's `--device`): with
 * mknod (of the host's node bound over an empty file in a user namespace, as runc does). Opening
 * it also needs a `cgroup.devices` rule that allows it: runc's default allowlist has only the
 * default devices.
 */
export interface DeviceNode {
  /** Where, inside: under /dev (not /dev/pts, /dev/shm, /dev/mqueue, nor a default device's path). */
  readonly path: string;
  /** "c" (character; "u" too, unbuffered), "b" (block) or "p" (a FIFO). */
  readonly type: "c" | "b" | "u" | "p";
  /** Its major number (not for "p"). */
  readonly major?: number;
  /** Its minor number (not for "p"). */
  readonly minor?: number;
  /** Its permission bits (default 0666), whatever the umask. */
  readonly fileMode?: number;
}

/** One extra mount, relative to the container's root. */
export interface MountSpec {
  /** "bind", "tmpfs", "proc", or any filesystem type. */
  readonly type: string;
  /** Host path for a bind; the device/source name otherwise (default: the type). */
  readonly source?: string;
  /** Absolute path inside the container. */
  readonly target: string;
  /**
   * Mount options, one an element (`["nosuid", "size=64m"]`, never `"nosuid,size=64m"`): flags
   * ("ro", "nosuid", "nodev", "noexec", "rbind", "private"…) and data ("size=64m"), at most a page
   * of data together. A bind mount honours "ro", "rw", "bind", "rbind", "norbind", "nosuid", "nodev" and "noexec" only; any
   * other option there is an error (it would be ignored). Propagation options ("shared", "rslave",
   * "private", "unbindable"…) apply to the new mount once made, in order (as runc's); a bind with
   * "rshared"/"shared" or "rslave"/"slave" stays in its source's peer group, so mounts under it
   * propagate both ways with the host (Kubernetes' Bidirectional) or from the host in
   * (HostToContainer) — where the host's source mount is shared. Default: private. A bind with
   * "idmap" ("ridmap": its submounts too) is mapped through the container's user namespace: its
   * files show inside with the owners they have on disk (root's as root), and what the container
   * writes there is owned on disk by those ids (needs "user" in namespaces, and root).
   */
  readonly options?: readonly string[];
  /** Shorthand for the "ro" option. */
  readonly readonly?: boolean;
}

/** Typed cgroup limits, plus raw `"cpu.cfs_quota_us": 30000`-style keys for haconiwa users. */
export interface CgroupSpec {
  /** CPU time: a quota per period (µs), or a relative weight (v2, 1..10000) / shares (v1). */
  readonly cpu?: {
    /** Run time per period, µs: at least 1000, or `"max"` (or -1) for no limit. */
    readonly quotaUs?: number | "max";
    /** The period, µs: 1000..1000000 (the kernel's default is 100000). */
    readonly periodUs?: number;
    /** Relative weight, cgroup v2 units: 1..10000 (converted to shares on v1). Not with `shares`. */
    readonly weight?: number;
    /** Relative weight, cgroup v1 units: 2..262144 (converted to a weight on v2). Not with `weight`. */
    readonly shares?: number;
  };
  /** CPUs and memory nodes allowed (`"0-1"`, `"0"`). */
  readonly cpuset?: { readonly cpus?: string; readonly mems?: string };
  /**
   * Memory limit and swap allowed: bytes, or a size like `"256M"`; -1 or `"max"` for no limit.
   * On cgroup v1, swap needs a limit too.
   */
  readonly memory?: { readonly limit?: number | string; readonly swap?: number | string };
  /** At most this many processes (a fork bomb stops there): at least 1, or `"max"`. */
  readonly pids?: { readonly max?: number | "max" };
  /**
   * Relative block-I/O weight (1..10000), and throttles per device (`"MAJ:MIN"` or a device node
   * such as `/dev/vda`) in bytes or operations per second.
   */
  readonly io?: {
    readonly weight?: number;
    readonly readBps?: Readonly<Record<string, number | "max">>;
    readonly writeBps?: Readonly<Record<string, number | "max">>;
    readonly readIops?: Readonly<Record<string, number | "max">>;
    readonly writeIops?: Readonly<Record<string, number | "max">>;
  };
  /**
   * Huge page limits by page size, as the kernel names them: `{ "2MB": "64M", "1GB": 0 }` (bytes,
   * a size, or -1 / "max" for none). Needs the hugetlb controller; a size the host lacks is an
   * error naming it.
   */
  readonly hugetlb?: Readonly<Record<string, number | string>>;
  /**
   * Devices the container may use besides runc's default list (null, zero, full, random, urandom,
   * tty, ptmx and pts, tun): OCI's `linux.resources.devices` rules, e.g.
   * `{ allow: true, type: "c", major: 10, minor: 200, access: "rwm" }`. Everything else is denied
   * for read, write and mknod.
   */
  readonly devices?: readonly DeviceRule[];
  /** Raw controller files, written as given: `{ "cpu.cfs_quota_us": 30000 }` (the file must exist on the host's cgroup version). */
  readonly raw?: Readonly<Record<string, string | number>>;
  /**
   * The cgroup's name, relative to the hierarchy's root (default `<parent>/<container name>`). It
   * must not exist yet: a container's cgroup is its own, never a host service's.
   */
  readonly name?: string;
  /**
   * Where the container's cgroup is made (default `hako`, which hako makes and removes; a parent
   * you name — a slice with limits of its own, say — is made if missing and kept).
   */
  readonly parent?: string;
  /**
   * The cgroup as a systemd scope (runc's `--systemd-cgroup`; for hosts where systemd is PID 1):
   * systemd makes it — `unit` in `slice` (default `system.slice`), delegated — with the container's
   * first process and its limits as unit properties, so a `systemctl daemon-reload` keeps them;
   * hako then writes the limits as for any cgroup, and `delete` stops the unit. Not with `name`
   * or `parent`; root only.
   */
  readonly systemd?: SystemdScope;
}

/**
 * A veth pair between the host and a container with its own network namespace: the parent makes
 * it after the clone (the container end straight in the child's namespace), hardens the host end
 * (strict reverse-path filtering, no redirects, source routing or proxy ARP: see
 * `HOST_LINK_SYSCTLS` in `src/network.ts`), gives it its address and sets it up; the child does the
 * same for its end. Deleted with the container.
 *
 * The subnet is a point-to-point one, /30 or /31 (IPv6: /126 or /127), unless `allowWidePrefix`
 * says otherwise, and it must not overlap a route of the host's main table or an address on a
 * host interface: checked when the spec is validated and again right before the pair is made
 * (so a second container asking for a subnet in use is refused).
 *
 * @example
 * ```ts ignore
 * network: { veth: { hostAddress: "10.200.0.1/30", containerAddress: "10.200.0.2/30" } }
 * ```
 */
export interface VethSpec {
  /** The host end's name, at most 15 bytes (default `hk-<8 hex digits of a hash of the name>-h`). */
  readonly host?: string;
  /** The container end's name inside its namespace, at most 15 bytes (default `eth0`). */
  readonly container?: string;
  /**
   * The host end's address in CIDR notation, e.g. `"10.200.0.1/30"` (default: none). Its prefix
   * becomes a route on the host: /30 or /31 (IPv6 /126 or /127) unless `allowWidePrefix`.
   */
  readonly hostAddress?: string;
  /** The container end's address, in the same subnet as `hostAddress` (default: none). */
  readonly containerAddress?: string;
  /**
   * Allow a prefix wider than a point-to-point link (e.g. `/24`), which routes that whole subnet
   * from the host to the container. Default false: a wider prefix is a spec error, since the host
   * would send every address of the subnet into the container. It still must not overlap a host
   * route or address.
   */
  readonly allowWidePrefix?: boolean;
}

/**
 * A published port (docker's `-p [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp]`): connections to the
 * host's `hostIp:hostPort` are forwarded to the container's veth address, `containerPort`, by the
 * supervisor (a TCP proxy: hako has no bridge, so no NAT rule is written). Needs `veth` with a
 * `containerAddress`; only a container the supervisor runs (`hako start`, `hako run -d`) has its
 * ports published.
 *
 * @example
 * ```ts ignore
 * network: { veth: { hostAddress: "10.213.0.1/30", containerAddress: "10.213.0.2/30" }, ports: [{ hostPort: 8080, containerPort: 80 }] }
 * ```
 */
export interface PortSpec {
  /** The container's port, 1–65535. */
  readonly containerPort: number;
  /** The host's port, 1–65535; 0 or absent: a free port the kernel picks (docker's `-p 80`, `-P`). */
  readonly hostPort?: number;
  /** The host address listened on, an IPv4 address (default `0.0.0.0`: every address). */
  readonly hostIp?: string;
  /** Only `"tcp"` (the default) for now. */
  readonly protocol?: "tcp";
}

/** The container's network, inside a new "net" namespace. */
export interface NetworkSpec {
  /** Bring lo up (default true with a new net namespace). */
  readonly loopback?: boolean;
  /** A veth pair to the host (needs a new "net" namespace). */
  readonly veth?: VethSpec;
  /** Ports of the host forwarded to the container's veth address (see {@link PortSpec}). */
  readonly ports?: readonly PortSpec[];
}

/** A namespace to create (by name) or to join (an existing one, by path or container name). */
export type NamespaceSpec =
  | NamespaceName
  | { readonly type: NamespaceName; readonly join: string };

/** The container. Only `name`, `rootfs` and `command` are required. */
export interface ContainerSpec {
  /** Unique per host: 1-63 letters, digits, `.`, `_`, `-` (also the default hostname). */
  readonly name: string;
  /**
   * argv (its first element not empty), or a shell string (run under /bin/sh -c when it has shell
   * syntax). With the environment it must fit what execve takes (each string under 128 KiB).
   */
  readonly command: string | readonly string[];
  /** The root filesystem: a directory, a tarball to extract, or a built-in builder. */
  readonly rootfs: RootfsSpec;
  /** Extra environment for the command (PATH, HOME and HOSTNAME have defaults): names like `A_1`, string values. */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory inside (default "/"). */
  readonly workdir?: string;
  /** Who the command runs as, inside (default root); `gid` defaults to `uid`, at most 65536 `groups`. */
  readonly user?: { readonly uid: number; readonly gid?: number; readonly groups?: readonly number[] };
  /** Default "mount", "uts", "ipc", "pid", "net", "cgroup". */
  readonly namespaces?: readonly NamespaceSpec[];
  /**
   * Needs a user namespace. A single range or a list; `gid` defaults to `uid`'s. An `outside` range
   * must not contain the uid of a host user (`/etc/passwd`) or the gid of a host group (`/etc/group`)
   * — that user would own the container's files and could signal its processes — unless
   * `allowHostIds: true` (a rootless caller's own id is always fine). A range overlapping one that
   * `/etc/subuid`/`/etc/subgid` delegates to another user is a warning. Ids go up to 4294967294.
   */
  readonly idMap?: {
    readonly uid?: IdRange | readonly IdRange[];
    readonly gid?: IdRange | readonly IdRange[];
    /** Allow host users' and groups' ids in the ranges (default false). */
    readonly allowHostIds?: boolean;
  };
  /** Default: the name (needs a UTS namespace). 1-64 bytes, no `/` or control characters. */
  readonly hostname?: string;
  /**
   * The NIS domain name of the container's UTS namespace (setdomainname(2); OCI's `domainname`),
   * `/proc/sys/kernel/domainname` inside. Default: the host's, as the new namespace starts with
   * it. 1-64 bytes, no `/` or control characters.
   */
  readonly domainname?: string;
  /**
   * Namespaced kernel parameters, key → value (OCI's `linux.sysctl`, docker's `--sysctl`): written
   * to `/proc/sys/<key with . as />` by the container's process after pivot_root, before
   * /proc/sys is made read-only. Only sysctls the kernel keeps per namespace, each needing the
   * container's own namespace of its kind (a new one, or one joined that is not hako's): `net.*`
   * the network namespace, `kernel.msg*`, `kernel.sem`, `kernel.shm*` and `fs.mqueue.*` the IPC
   * namespace, `kernel.hostname` and `kernel.domainname` the UTS namespace — as runc and docker.
   */
  readonly sysctl?: Readonly<Record<string, string>>;
  /**
   * The clocks of a new time namespace (needs "time" in namespaces), as OCI's
   * `linux.timeOffsets`: whole seconds added to CLOCK_MONOTONIC and CLOCK_BOOTTIME inside (what
   * /proc/uptime shows), written to /proc/self/timens_offsets before any process enters it. A
   * negative offset may not take a clock below 0 (the kernel's ERANGE).
   */
  readonly timeOffsets?: { readonly monotonic?: number; readonly boottime?: number };
  /** Make `/` read-only after every mount is made (default false). */
  readonly readonlyRootfs?: boolean;
  /**
   * The propagation of the container's root mount and, for an `r` value, of every mount under it,
   * set after pivot_root (OCI's `linux.rootfsPropagation`). Default: every mount
   * private. The root is the container's own copy, so "shared" makes peer groups of its own: what
   * reaches the host is a bind mount's own `rshared`/`rslave` option.
   */
  readonly rootfsPropagation?: RootfsPropagation;
  /** proc, sysfs (ro), /dev (tmpfs + default devices), devpts, /dev/shm, mqueue. Default true. */
  readonly standardMounts?: boolean;
  /**
   * `/sys` mounted read-write (default false: read-only, docker's default). docker's and podman's
   * `--privileged` ask for it (OCI: a `/sys` mount without `ro`), for a container that writes the
   * kernel's device settings; the container's capabilities still decide what it may write. Where
   * the child is not root of the host (rootless) the host's /sys is bound read-only regardless.
   */
  readonly writableSysfs?: boolean;
  /**
   * The container's cgroups at `/sys/fs/cgroup` mounted read-write (default false: read-only, as
   * docker's default): `--privileged`, or systemd as the container's init in a cgroup namespace of
   * its own (OCI: a `/sys/fs/cgroup` mount without `ro`). Only its own cgroups are there (see the
   * README's container boundary): with this it may change its own limits and make child cgroups.
   */
  readonly writableCgroupfs?: boolean;
  /**
   * hako's own `/dev/shm`, a 64 MiB tmpfs of the container's (docker's default; default true, with
   * the standard mounts and an IPC namespace of its own). `false`: none there (docker's `--ipc
   * none`). A spec mount at `/dev/shm` takes its place either way: a bind of the tmpfs a pod's
   * containers share (podman's and Kubernetes' sandboxes bind theirs), or a tmpfs of another size
   * (docker's `--shm-size`). Likewise a spec mount at `/dev/mqueue` replaces hako's mqueue.
   */
  readonly shm?: boolean;
  /**
   * hako's `/dev` tmpfs mounted `noexec` too (default false: `nosuid` only, docker's). podman's
   * bundles ask for it (OCI: a `/dev` mount with `noexec`): nothing on it can be executed.
   */
  readonly devNoexec?: boolean;
  /** Extra mounts, after the standard ones. */
  readonly mounts?: readonly MountSpec[];
  /** Device nodes made in the container's /dev beside the default ones (needs standardMounts). */
  readonly devices?: readonly DeviceNode[];
  /** "host": bind the host's resolv.conf and hosts read-only; "generate": write them; false: leave. Default "generate" with a new net namespace, "host" otherwise. */
  readonly networkEtc?: "host" | "generate" | false;
  /** Paths made unreadable (default: libcontainer's, e.g. /proc/kcore, /sys/firmware). */
  readonly maskedPaths?: readonly string[];
  /** Paths made read-only (default: libcontainer's, e.g. /proc/sys, /proc/sysrq-trigger). */
  readonly readonlyPaths?: readonly string[];
  /** Resource limits; the container gets a cgroup only when this is given. */
  readonly cgroup?: CgroupSpec;
  /**
   * The capabilities kept, in one of three forms:
   * - a list (`["CAP_CHOWN", "net_bind_service"]`): the bounding, effective, permitted and
   *   inheritable sets;
   * - changes to the default set: `{ drop: ["ALL"], add: [...] }`, `{ add: ["ALL"] }` (every
   *   capability the kernel has), as docker's;
   * - the five sets separately, as OCI's `process.capabilities` (a set left out is empty):
   *   `{ bounding, effective, permitted, inheritable, ambient }`, with the kernel's rules
   *   (effective ⊆ permitted, inheritable ⊆ bounding, ambient ⊆ permitted ∩ inheritable).
   *
   * For a `user` other than root, the first two forms also raise the capabilities the spec names
   * (the list; `add`'s names) in the ambient set, as podman does, so they survive the exec under
   * that uid (`user: { uid: 1000 }, capabilities: ["CAP_NET_BIND_SERVICE"]` binds port 80); the
   * default set alone is never raised (docker gives a non-root user none).
   */
  readonly capabilities?: readonly string[] | CapabilityChanges | CapabilitySets;
  /** `{ NOFILE: 1025, CORE: [0, "unlimited"] }`: known resources (`NOFILE`, `RLIMIT_NOFILE`, `nofile`), soft ≤ hard. */
  readonly rlimits?: Readonly<
    Record<string, number | "unlimited" | readonly [number | "unlimited", number | "unlimited"]>
  >;
  /**
   * no_new_privs: setuid binaries and file capabilities cannot raise the command's privileges.
   * Default true (docker's and podman's default is false: their containers run setuid `ping`, `su`).
   */
  readonly noNewPrivs?: boolean;
  /**
   * The seccomp filter: `"default"` (the default) is `DEFAULT_SECCOMP_PROFILE` — docker's
   * allow-list, whose capability groups follow `capabilities`; a profile of your own, in hako's
   * format or docker's / the OCI runtime spec's (`defaultAction: "SCMP_ACT_ERRNO"`…, see
   * `readSeccompProfile`); or `false` for none. Loaded last, just before exec, with `noNewPrivs`;
   * without it, before the capabilities go and the user changes (the kernel then needs CAP_SYS_ADMIN,
   * as runc does it), so the profile must allow those calls too (docker's does).
   */
  readonly seccomp?: false | "default" | SeccompProfile | OciSeccompProfile;
  /** Loopback up in a new net namespace (default true), and an optional veth pair to the host. */
  readonly network?: NetworkSpec;
  /** The command's stdin/stdout/stderr: the caller's (default), or /dev/null. */
  readonly stdio?: "inherit" | "null";
  /** Callbacks or commands run at fixed points of the container's life; see {@link HooksSpec}. */
  readonly hooks?: HooksSpec;
  /**
   * Run a small static init as PID 1 with the command as its child (`docker run --init`; default
   * false): PID 1 of a PID namespace gets only the signals it handles, so a command without a
   * SIGTERM handler would ignore `hako stop`, and orphans would stay zombies. The init (tini:
   * `HAKO_INIT_PATH`, else the host's `/usr/bin/tini-static` from Debian's `tini` package, or
   * docker's `docker-init`) is bound read-only at `/dev/init`, forwards every signal to the
   * command, reaps zombies and exits with the command's status. Needs a mount namespace and the
   * standard mounts.
   */
  readonly init?: boolean;
  /**
   * What the supervisor does when a daemonized container's command ends (docker's `--restart`):
   * `"no"` (the default), `"always"`, `"unless-stopped"`, `"on-failure"` or
   * `{ policy: "on-failure", maxRetries: N }` (docker's `on-failure:N`). Restarts wait 100 ms,
   * doubled each time up to a minute (back to 100 ms after a run of 10 s); a container the user
   * stopped (`hako stop`, `kill`, `rm -f`) is never restarted. See `restart_policy.ts`.
   */
  readonly restart?: RestartPolicy;
  /**
   * When the container is ready (for the `onReady` hook): a TCP port listening in its network
   * namespace (`{ tcp: 8080 }`), or a command on the host that succeeds (`{ command: [...] }`, with
   * `HAKO_NAME` and `HAKO_PID` set: `nsenter -t $HAKO_PID -n …` reaches inside). Probed every
   * `intervalMs` (default 500), each probe given `timeoutMs` (default 2000), `retries` times at most
   * (default 120) before the container is reported never ready.
   */
  readonly readiness?: ReadinessSpec;
  /**
   * When `onMemoryPressure` fires (the kernel's measure, see `memory_pressure.ts`): on cgroup v2
   * when some of its tasks stalled `stallMs` on memory within `windowMs` (PSI; default 150 of
   * 2000), on v1 when `memory.pressure_level` reaches `level` (default `medium`); once per episode.
   */
  readonly memoryPressure?: MemoryPressureSpec;
  /**
   * The signal `hako stop` and `hako restart` send first, before SIGKILL once the timeout has
   * passed: a name (`"SIGQUIT"`, `"QUIT"`) or a number; default SIGTERM. docker's `--stop-signal`
   * (`hako run --stop-signal`), and an image's `StopSignal` when the container runs on an image.
   */
  readonly stopSignal?: string | number;
}

/**
 * The container's hooks. Each is a TypeScript callback or a command: an argv array, or a string
 * run under `/bin/sh -c`. A command fails when it exits non-zero; a callback when it throws.
 */
export interface HooksSpec {
  /**
   * On the host, once per rootfs: right after the rootfs is made (or found), before anything
   * else. A callback gets `{ rootfs, spec }`; a command runs with the rootfs as its working
   * directory and `HAKO_ROOTFS` set. Success is recorded by the marker file
   * `<rootfs>/.hako-bootstrapped`, so it runs once; a failure is `SetupError("bootstrap")` and the
   * rootfs is kept unmarked (so it runs again next time).
   */
  readonly bootstrap?: Hook<{ readonly rootfs: string; readonly spec: ContainerSpec }>;
  /**
   * Inside the container, before the command: after pivot_root, the mounts and the working
   * directory, before capabilities are dropped (as root inside). A command runs with the
   * container's environment; a callback is called in the forked child and must be
   * **synchronous** (no event loop there; a returned promise is an error). A failure is
   * `SetupError("provision")` and the container is undone.
   */
  readonly provision?: Hook<{ readonly spec: ResolvedSpec }>;
  /**
   * On the host, after the container is set up and before its command starts (in `start()`). A
   * callback gets `{ pid, name, spec }` (it may be async); a command runs with `HAKO_PID` and
   * `HAKO_NAME` set. A failure tears the container down and `start()` throws
   * `SetupError("beforeStart")`.
   */
  readonly beforeStart?: Hook<{ readonly pid: number; readonly name: string; readonly spec: ResolvedSpec }>;
  /**
   * On the host, once the container's process has ended (in `wait()` or `delete()`, exactly
   * once). A callback gets `{ name, status }`; a command runs with `HAKO_NAME` and
   * `HAKO_STATUS` (the shell's code) set. A failure is reported with `console.error`, never thrown.
   */
  readonly afterStop?: Hook<{ readonly name: string; readonly status: ContainerStatus }>;
  /*
   * Event hooks (haconiwa's supervisor hooks): on the host, fired by the supervisor for a
   * daemonized container (commands only: its spec is JSON) and by the library when a script runs
   * the container itself (callbacks or commands). A command gets `HAKO_EVENT`, `HAKO_NAME`,
   * `HAKO_PID` and the event's own variables; each runs at most 30 s (then it is killed); a failure
   * is logged, and never touches the container.
   */
  /** Its command started (after every restart too). */
  readonly onStarted?: Hook<EventArg>;
  /** The `readiness` probe succeeded (once per start). */
  readonly onReady?: Hook<EventArg>;
  /** Its command ended: `status` (`HAKO_STATUS`: the shell's code). */
  readonly onExited?: Hook<EventArg & { readonly status: ContainerStatus }>;
  /** The OOM killer killed a process of it (its memory limit): `oomKills` so far (`HAKO_OOM_KILLS`). */
  readonly onOom?: Hook<EventArg & { readonly oomKills: number }>;
  /**
   * Its memory is under pressure, by the kernel's measure (see the spec's `memoryPressure`):
   * `level` (`HAKO_PRESSURE`) is `some` from PSI (cgroup v2), or v1's `memory.pressure_level`
   * level (`low`, `medium`, `critical`); `measure` (`HAKO_PRESSURE_MEASURE`) is `psi`,
   * `pressure_level`, or `usage` where neither could be armed (its usage past 90 % of its limit).
   * Once per episode: again only after a window without pressure.
   */
  readonly onMemoryPressure?: Hook<EventArg & { readonly level: string; readonly measure: string }>;
}

/** What every event hook's callback gets. */
export interface EventArg {
  /** The event (`started`, `ready`, `exited`, `oom`, `memory-pressure`). */
  readonly event: string;
  /** The container. */
  readonly name: string;
  /** Its init's host pid. */
  readonly pid: number;
  /** Restarts so far (0 outside the supervisor). */
  readonly restartCount: number;
}

/** Changes to the default capability set, as docker's `--cap-add` / `--cap-drop`. */
export interface CapabilityChanges {
  /** Capabilities added (`"ALL"`: every one the kernel has). */
  readonly add?: readonly string[];
  /** Capabilities dropped from the default set (`"ALL"`: all of them). */
  readonly drop?: readonly string[];
}

/** The five capability sets of the command, as OCI's `process.capabilities` (a set left out is empty). */
export interface CapabilitySets {
  /** The limit on what any exec may grant (and on the inheritable set). */
  readonly bounding?: readonly string[];
  /** The capabilities in use before the exec (a subset of permitted). */
  readonly effective?: readonly string[];
  /** The capabilities that may be made effective. */
  readonly permitted?: readonly string[];
  /** The capabilities kept across exec with file or ambient capabilities (a subset of bounding). */
  readonly inheritable?: readonly string[];
  /** The capabilities a program exec'd by a non-root user keeps (a subset of permitted and inheritable). */
  readonly ambient?: readonly string[];
}

/** The default capability set: the seed scripts' (and docker's) list. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** libcontainer's default masked paths. */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/** libcontainer's default read-only paths. */
export const DEFAULT_READONLY_PATHS: readonly string[] = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

/**
 * The default namespaces: docker's, with a cgroup namespace of the container's own (as docker on
 * cgroup v2); the cgroup one is left out on a kernel without cgroup namespaces.
 */
export const DEFAULT_NAMESPACES: readonly NamespaceName[] = ["mount", "uts", "ipc", "pid", "net", "cgroup"];

/** How a container's process ended. */
export interface ContainerStatus {
  /** The exit code, or null when a signal killed it. */
  readonly code: number | null;
  /** The killing signal, or null when it exited. */
  readonly signal: number | null;
  /** The status as a shell reports it: the code, or 128 + signal. */
  readonly shellCode: number;
  /**
   * Processes the OOM killer killed in the container's cgroup (its memory limit), read when it
   * ended and before its cgroup is removed: with a signal of 9, the memory limit is what ended it.
   * Absent when none (or without a memory controller).
   */
  readonly oomKilled?: number;
  /**
   * Forks and clones its pids limit refused (`pids.events` max), read when it ended. Absent when
   * none (or without a pids controller).
   */
  readonly failedForks?: number;
}

/** The spec with defaults applied and shorthands expanded. */
export interface ResolvedSpec {
  /** The container's name. */
  readonly name: string;
  /** The command as argv (a shell string became `/bin/sh -c …`). */
  readonly argv: readonly string[];
  /**
   * The program execve runs when it is not `argv[0]` (absolute, inside): an OCI hook's `path`, its
   * `args` the whole argv (execv's semantics, as runc's hooks get them). Set by `execIn`'s `path`.
   */
  readonly execPath?: string;
  /** The rootfs as given. */
  readonly rootfs: ContainerSpec["rootfs"];
  /** The rootfs directory. */
  readonly rootfsPath: string;
  /** The full environment of the command. */
  readonly env: Readonly<Record<string, string>>;
  /** The working directory inside. */
  readonly workdir: string;
  /** Who the command runs as, inside. */
  readonly user: { readonly uid: number; readonly gid: number; readonly groups: readonly number[] };
  /** The namespaces to create. */
  readonly newNamespaces: readonly NamespaceName[];
  /** The namespaces to join, by path. */
  readonly joinNamespaces: readonly { readonly type: NamespaceName; readonly path: string }[];
  /** The uid map. */
  readonly uidMap: readonly IdMapEntry[];
  /** The gid map. */
  readonly gidMap: readonly IdMapEntry[];
  /** The hostname, or undefined without a UTS namespace. */
  readonly hostname: string | undefined;
  /** The NIS domain name to set, when the spec gives one. */
  readonly domainname?: string;
  /** The sysctls to write, in the spec's order (empty when none). */
  readonly sysctl: ReadonlyArray<{ readonly key: string; readonly value: string }>;
  /** The new time namespace's offsets (seconds), when the spec gives `timeOffsets`. */
  readonly timeOffsets?: { readonly monotonic: number; readonly boottime: number };
  /** Whether `/` is made read-only. */
  readonly readonlyRootfs: boolean;
  /** The root mount's propagation, set after pivot_root, when the spec gives one. */
  readonly rootfsPropagation?: RootfsPropagation;
  /** Whether proc, sys, dev… are mounted. */
  readonly standardMounts: boolean;
  /** Whether `/sys` is mounted read-write (default read-only). */
  readonly writableSysfs: boolean;
  /** Whether the container's cgroups at `/sys/fs/cgroup` are read-write (default read-only). */
  readonly writableCgroupfs: boolean;
  /** Whether hako mounts its own `/dev/shm` (a spec mount there replaces it either way). */
  readonly shm: boolean;
  /** Whether `/dev` is mounted `noexec`. */
  readonly devNoexec: boolean;
  /** The extra mounts. */
  readonly mounts: readonly MountSpec[];
  /** The extra device nodes (empty: none). */
  readonly devices: readonly DeviceNode[];
  /** How /etc/hosts and resolv.conf are provided. */
  readonly networkEtc: "host" | "generate" | false;
  /** The paths masked. */
  readonly maskedPaths: readonly string[];
  /** The paths made read-only. */
  readonly readonlyPaths: readonly string[];
  /** The cgroup limits, if any. */
  readonly cgroup: ContainerSpec["cgroup"];
  /**
   * The container's own cgroup (`<parent>/<name>` by default; see `_cgroup.ts`), or undefined
   * for a rootless container without a `cgroup` section.
   */
  readonly cgroupName: string | undefined;
  /** The capabilities kept: the bounding set (seccomp's capability groups follow it, as docker's). */
  readonly capabilities: readonly string[];
  /**
   * The five sets, when the spec gave them separately (used as given, whatever the user);
   * otherwise the sets follow `capabilities` and the user (see `capabilitySetsFor` in `_capsets.ts`).
   */
  readonly capabilitySets?: Required<CapabilitySets>;
  /**
   * The capabilities the spec names (a list's, `add`'s), raised in the ambient, inheritable,
   * permitted and effective sets when the command runs as a non-root user (podman's rule); empty
   * for the default set. Absent: none.
   */
  readonly ambientCapabilities?: readonly string[];
  /** The rlimits to set. */
  readonly rlimits: NonNullable<ContainerSpec["rlimits"]>;
  /** Whether no_new_privs is set. */
  readonly noNewPrivs: boolean;
  /** The seccomp profile to load before exec (`"default"` resolved), or false for none. */
  readonly seccomp: SeccompProfile | false;
  /** The profile compiled to BPF (by the parent, once), or undefined for none. */
  readonly seccompProgram: Uint8Array | undefined;
  /** Whether loopback is brought up. */
  readonly loopback: boolean;
  /** The veth pair with its names filled in, or undefined for none. */
  readonly veth: ResolvedVeth | undefined;
  /** Where stdio goes. */
  readonly stdio: "inherit" | "null";
  /** The hooks (empty when none). */
  readonly hooks: HooksSpec;
  /** The readiness probe, as given (see `ReadinessSpec`), when there is one. */
  readonly readiness?: ReadinessSpec;
  /** When `onMemoryPressure` fires, as given (see `MemoryPressureSpec`), when it says. */
  readonly memoryPressure?: MemoryPressureSpec;
  /**
   * True when resolved by a caller without the host's root (rootless mode): a non-root user, whose
   * id maps are its own, or root of a nested user namespace (rootless podman's), which may make no
   * device node and no cgroup the host did not delegate.
   */
  readonly rootless: boolean;
  /** `init: true`: the host's static init, bound read-only at /dev/init and put before the command in `argv`. */
  readonly init?: string;
}

/** A veth pair with its names filled in. */
export interface ResolvedVeth {
  /** The host end's name. */
  readonly host: string;
  /** The container end's name (in its namespace). */
  readonly container: string;
  /** The host end's CIDR, if any. */
  readonly hostAddress: string | undefined;
  /** The container end's CIDR, if any. */
  readonly containerAddress: string | undefined;
  /** True when the pair has IPv4 addresses only: IPv6 is turned off on the host end. */
  readonly disableHostIpv6: boolean;
}
