/**
 * The shared life of every cgroup controller class: where its directories are (v1 hierarchies or
 * the cgroup2 tree, found at run time), create with rollback, attach, modify, raw `set`, procs,
 * and delete that can kill and wait.
 *
 * Subclasses (CPU, Memory, …) only say which files their attributes become on each version
 * ({@link Controller.plan}) and how to read their statistics.
 * @module
 */
import { dirname } from "node:path";
import { libc } from "../../ffi/libc.ts";
import { ConfigError, SetupError, SyscallError } from "../errors.ts";
import { assertValidName } from "./_name.ts";
import {
  childCgroups,
  exists,
  mkdirOne,
  readKnob,
  readPids,
  rmdirOne,
  sleepSync,
  subtreePostOrder,
  tryReadKnob,
  writeKnob,
} from "./_fs.ts";
import { assertValidRoot, detect, type Layout, parseMountinfo, rootVersion } from "./layout.ts";

/** Where a cgroup lives: options shared by every controller class. */
export interface CgroupOptions {
  /**
   * The cgroup root to use instead of the detected one. On v2: the cgroup2 mount (or any cgroup
   * below it), e.g. `/sys/fs/cgroup/unified`. On v1: the directory holding the hierarchies
   * (`/sys/fs/cgroup`, whose `cpu` or `cpu,cpuacct` directory is used), or a hierarchy itself.
   */
  readonly root?: string;
  /** Force cgroup v1 or v2 (default: detected; with `root`, from the files found there). */
  readonly version?: 1 | 2;
}

/** Options for {@link Controller.create}. */
export interface CgroupCreateOptions {
  /**
   * The cgroup itself must not exist yet: a container's cgroup is its own, so one that exists (a
   * host service's, say) is never adopted — its processes would be killed with the container's.
   * Its missing ancestors are made as usual. Default false (`mkdir -p`).
   */
  readonly exclusive?: boolean;
}

/** Options for {@link Controller.delete}. */
export interface DeleteOptions {
  /**
   * SIGKILL every process in the cgroup and below (v2: through `cgroup.kill` when the kernel has
   * it) and wait until they are gone. Default false.
   */
  readonly kill?: boolean;
  /**
   * How long to wait for members to leave (or to die, with `kill`) before giving up with EBUSY.
   * Default 5000 ms with `kill`, 0 without.
   */
  readonly timeoutMs?: number;
}

/** What a controller class is, for the shared code. */
export interface ControllerKind {
  /** The name used in messages and field paths (`"cpu"`). */
  readonly label: string;
  /** Its v1 subsystems: the first is where it lives, the others are mirrored when mounted separately. */
  readonly v1: readonly string[];
  /** The v2 controller enabled in the ancestors' `cgroup.subtree_control`, or null for none. */
  readonly v2: string | null;
  /** The control file prefixes it owns on each version (`cpu` for `cpu.max`). */
  readonly prefixes: { readonly 1: readonly string[]; readonly 2: readonly string[] };
}

/** One control-file write planned by a controller. */
export interface Write {
  /** The control file's name, e.g. `"cpu.max"`. */
  readonly file: string;
  /** What to write. */
  readonly value: string;
  /**
   * When this write fails with EINVAL, do the next one first and then retry it (for pairs whose
   * valid order depends on the current values: v1 period/quota, memory limit/memsw).
   */
  readonly retryAfterNext?: boolean;
}

/** What {@link Controller.plan} may look at. */
export interface PlanContext {
  /** The cgroup version. */
  readonly version: 1 | 2;
  /** True when planning only to check the attributes, before anything exists. */
  readonly dry: boolean;
  /** Reads one of the cgroup's control files (null when missing or dry). */
  read(file: string): string | null;
  /** True when the cgroup has this control file (false when dry). */
  has(file: string): boolean;
}

/** One directory tree the cgroup lives in. */
interface Placement {
  readonly version: 1 | 2;
  /** The hierarchy's root (a mount point, or the `root` option). */
  readonly root: string;
  /** The v1 subsystems of that hierarchy (empty on v2). */
  readonly subsystems: readonly string[];
}

interface Resolved {
  readonly version: 1 | 2;
  readonly placements: readonly Placement[];
}

/** Files that exist only on cgroup v1, with their v2 counterpart. */
const V1_ONLY: Readonly<Record<string, string>> = {
  "cpu.cfs_quota_us": "cpu.max (or the cfsQuotaUs property)",
  "cpu.cfs_period_us": "cpu.max (or the cfsPeriodUs property)",
  "cpu.shares": "cpu.weight (or the shares property, converted)",
  "cpu.rt_runtime_us": "",
  "cpu.rt_period_us": "",
  "cpu.cfs_burst_us": "cpu.max.burst",
  "memory.limit_in_bytes": "memory.max (or the limit property)",
  "memory.memsw.limit_in_bytes": "memory.swap.max (or the swap property; note v2 counts swap alone)",
  "memory.soft_limit_in_bytes": "memory.low",
  "memory.kmem.limit_in_bytes": "",
  "memory.kmem.tcp.limit_in_bytes": "",
  "memory.swappiness": "",
  "memory.oom_control": "memory.oom.group",
  "memory.move_charge_at_immigrate": "",
  "memory.use_hierarchy": "",
  "memory.force_empty": "",
  "cpuset.effective_cpus": "cpuset.cpus.effective",
  "cpuset.effective_mems": "cpuset.mems.effective",
  "cpuset.cpu_exclusive": "cpuset.cpus.partition",
  "notify_on_release": "",
  "release_agent": "",
  "tasks": "cgroup.threads",
  "cgroup.clone_children": "",
};

/** Files that exist only on cgroup v2, with their v1 counterpart. */
const V2_ONLY: Readonly<Record<string, string>> = {
  "cpu.max": "cpu.cfs_quota_us and cpu.cfs_period_us (or the cfsQuotaUs/cfsPeriodUs properties)",
  "cpu.max.burst": "cpu.cfs_burst_us",
  "cpu.weight": "cpu.shares (or the weight property, converted)",
  "cpu.weight.nice": "",
  "memory.max": "memory.limit_in_bytes (or the limit property)",
  "memory.high": "",
  "memory.low": "memory.soft_limit_in_bytes",
  "memory.min": "",
  "memory.swap.max": "memory.memsw.limit_in_bytes (or the swap property, converted)",
  "memory.swap.high": "",
  "memory.oom.group": "",
  "memory.reclaim": "memory.force_empty",
  "cpuset.cpus.partition": "cpuset.cpu_exclusive",
  "cgroup.subtree_control": "",
  "cgroup.kill": "",
  "cgroup.freeze": "the freezer controller",
  "cgroup.type": "",
  "cgroup.max.descendants": "",
  "cgroup.max.depth": "",
};

/** Prefixes (controllers) that exist on one version only. */
const V1_ONLY_PREFIX: Readonly<Record<string, string>> = {
  blkio: "io.max / io.weight (or the IO class's properties)",
  cpuacct: "cpu.stat (or stats())",
  devices: "a BPF device program",
  freezer: "cgroup.freeze",
  net_cls: "",
  net_prio: "",
};
const V2_ONLY_PREFIX: Readonly<Record<string, string>> = {
  io: "blkio.* (or the IO class's properties)",
};

/** Files any cgroup has, whatever its controller. */
const CORE_FILES = new Set(["notify_on_release", "tasks", "release_agent"]);

/** Formats a value for a message: bare when simple, JSON-quoted when it has spaces. */
function shown(value: string): string {
  return /^[\w.:,+-]*$/.test(value) ? value : JSON.stringify(value);
}

/** Rebuilds a SyscallError with more context (other errors pass through). */
function withContext(e: unknown, context: string): unknown {
  if (e instanceof SyscallError) return new SyscallError(e.syscall, e.errno, e.args, context);
  return e;
}

/** Parses `key value` lines (cpu.stat, memory.events, pids.events…) into numbers. */
export function parseFlatKeyed(text: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? "").split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** Parses a single-number file; `"max"` (and v1's near-2^63 "unlimited") become null. */
export function parseNumberOrMax(text: string | null): number | null {
  const t = (text ?? "").trim();
  if (t === "" || t === "max") return null;
  const n = Number(t);
  if (!Number.isFinite(n) || n >= 2 ** 62) return null;
  return n;
}

/**
 * Control files that move, kill or release processes, or widen what the cgroup may reach: a raw
 * write to one of them (`cgroup.procs: 1` moves host PID 1 into the group, `release_agent` runs a
 * command as host root, `devices.allow` opens host devices) is never a limit, so it is refused.
 * Processes join with `attach()`; devices are allowed by the typed device rules.
 */
const REFUSED_RAW_KEYS: ReadonlySet<string> = new Set([
  "cgroup.procs",
  "cgroup.threads",
  "tasks",
  "cgroup.kill",
  "cgroup.subtree_control",
  "cgroup.type",
  "cgroup.clone_children",
  "cgroup.event_control",
  "cgroup.sane_behavior",
  "release_agent",
  "notify_on_release",
  "devices.allow",
  "devices.deny",
]);

/**
 * Why a raw control-file key may not be written, or undefined when it may.
 * @param key The control file's name, e.g. `"cgroup.procs"`.
 * @returns The reason, naming what to use instead.
 */
export function rawKeyProblem(key: string): string | undefined {
  if (!REFUSED_RAW_KEYS.has(key)) return undefined;
  if (key.startsWith("devices.")) return "is refused: device access is given by device rules, not raw writes";
  return "is refused: it moves, kills or releases processes instead of setting a limit (processes join with attach())";
}

/**
 * The base of every cgroup controller class. A controller names one cgroup (a relative path such
 * as `"hako/web-1"`) in one controller's tree; its attributes are set as properties (or raw with
 * {@link Controller.set}) and written by {@link Controller.create} or {@link Controller.modify}.
 *
 * Everything is synchronous, so `attach()` works inside a `Process.fork` child.
 *
 * @typeParam S The shape of {@link Controller.stats}.
 */
export abstract class Controller<S> {
  readonly #kind: ControllerKind;
  readonly #name: string;
  readonly #options: CgroupOptions;
  readonly #raw = new Map<string, string>();
  #resolved: Resolved | undefined;
  /** Ancestor directories our create() made, deepest first, removed again by delete(). */
  #madeAncestors: string[] = [];

  /**
   * Checks the name and options; nothing is touched until create().
   *
   * @param kind What the subclass is.
   * @param name The cgroup's name: a relative path under the root (`"hako/web-1"`).
   * @param options Root and version overrides.
   * @throws {ConfigError} When the name or the options are invalid (nothing is touched).
   */
  protected constructor(kind: ControllerKind, name: string, options: CgroupOptions = {}) {
    assertValidName(name);
    if (options.root !== undefined) assertValidRoot(options.root);
    if (options.version !== undefined && options.version !== 1 && options.version !== 2) {
      throw new ConfigError("cgroup.version", `must be 1 or 2, got ${JSON.stringify(options.version)}`);
    }
    this.#kind = kind;
    this.#name = name;
    this.#options = { ...options };
  }

  /** The cgroup's name (a path relative to the root). */
  get name(): string {
    return this.#name;
  }

  /** The controller's label (`"cpu"`, `"memory"`…). */
  get controller(): string {
    return this.#kind.label;
  }

  /**
   * The cgroup version this controller uses (detected on first use).
   * @throws {ConfigError} When the root option points at no usable hierarchy.
   * @throws {SetupError} When the controller is not mounted on this host.
   */
  get version(): 1 | 2 {
    return this.#resolve().version;
  }

  /** The cgroup's directory (on v1: in the controller's own hierarchy). */
  get path(): string {
    return this.#dir(this.#resolve().placements[0]!);
  }

  /** Every directory the cgroup occupies (on v1 with `cpu` and `cpuacct` mounted apart: both). */
  get paths(): string[] {
    return this.#resolve().placements.map((p) => this.#dir(p));
  }

  /** A field path for errors, e.g. `"cpu.cfsQuotaUs"`. */
  protected field(property: string): string {
    return `${this.#kind.label}.${property}`;
  }

  /**
   * The control-file writes for the attributes set so far, on `ctx.version`. Raw
   * {@link Controller.set} keys are written after these.
   *
   * @throws {ConfigError} When the attributes cannot be expressed on this version.
   */
  protected abstract plan(ctx: PlanContext): Write[];

  /**
   * Reads the cgroup's statistics, in the same shape on v1 and v2.
   * @throws {SyscallError} When the cgroup does not exist.
   */
  abstract stats(): S;

  /** Called after create() made `dir` (for v1 cpuset, which must inherit cpus and mems). */
  protected prepareNewDir(_version: 1 | 2, _dir: string, _parent: string): void {}

  /**
   * Stages a raw control-file write (haconiwa style), done by the next {@link Controller.create}
   * or {@link Controller.modify} after the typed attributes.
   *
   * @param key The control file's name, e.g. `"cpu.cfs_quota_us"`.
   * @param value What to write.
   * @returns this, for chaining.
   * @throws {ConfigError} When the key is not a control-file name, belongs to another controller,
   *   or does not exist on the detected cgroup version (the message names the counterpart).
   *
   * @example
   * ```ts ignore
   * new Cgroup.CPU("web").set("cpu.cfs_quota_us", 30000).create();
   * ```
   */
  set(key: string, value: string | number | bigint): this {
    if (typeof key !== "string" || !/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(key)) {
      throw new ConfigError(`${this.#kind.label}.set`, `not a control file name: ${JSON.stringify(key)}`);
    }
    const refused = rawKeyProblem(key);
    if (refused) throw new ConfigError(key, refused);
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new ConfigError(key, `must be a finite number or a string, got ${value}`);
    }
    const text = String(value);
    if (text.includes("\0")) throw new ConfigError(key, "must not contain a NUL character");
    this.#checkKey(key, this.version);
    this.#raw.set(key, text);
    return this;
  }

  /**
   * Reads a control file of this cgroup now.
   *
   * @param key The control file's name, e.g. `"cpu.stat"`.
   * @returns Its content, trimmed.
   * @throws {ConfigError} When the key is not a control file name.
   * @throws {SyscallError} When it cannot be read (ENOENT: no such file or cgroup).
   */
  get(key: string): string {
    if (typeof key !== "string" || !/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(key)) {
      throw new ConfigError(`${this.#kind.label}.get`, `not a control file name: ${JSON.stringify(key)}`);
    }
    return readKnob(`${this.#dirFor(key)}/${key}`, `read ${key} of cgroup ${this.#name}`).trim();
  }

  /**
   * Creates the cgroup (`mkdir -p`) and writes the attributes set so far. On v2 the controller is
   * enabled in every ancestor's `cgroup.subtree_control` (when the root offers it); on v1 a new
   * cpuset directory first inherits its parent's cpus and mems. Creating an existing cgroup just
   * writes the attributes. If anything fails, the directories made are removed again (controllers
   * enabled in pre-existing ancestors stay enabled: disabling them could take them from siblings).
   *
   * @param options `exclusive`: the cgroup itself must not exist yet.
   * @returns this, for chaining.
   * @throws {ConfigError} When an attribute cannot be expressed on this version (nothing touched);
   *   with `exclusive`, when the cgroup exists already (field `cgroup.name`).
   * @throws {SyscallError} When mkdir or a write fails: the call, errno, path and attribute.
   *
   * @example
   * ```ts ignore
   * const rate = new Cgroup.CPU("web");
   * rate.cfsQuotaUs = 30_000;
   * rate.create();
   * ```
   */
  create(options: CgroupCreateOptions = {}): this {
    const { version, placements } = this.#resolve();
    this.#plan(version, true);
    const made: string[] = [];
    try {
      for (const p of placements) this.#makeDirs(p, made, options.exclusive ?? false);
      this.#apply(version);
    } catch (e) {
      for (const d of [...made].reverse()) {
        try {
          rmdirOne(d);
        } catch { /* best effort: the original error matters */ }
      }
      throw e;
    }
    const leaves = new Set(placements.map((p) => this.#dir(p)));
    this.#madeAncestors = [...this.#madeAncestors, ...made.filter((d) => !leaves.has(d)).reverse()];
    return this;
  }

  /**
   * The control-file writes create() would make for the attributes set so far (raw keys last),
   * without touching anything: what a cgroup manager (systemd's unit properties) is told of the
   * limits.
   * @throws {ConfigError} When an attribute cannot be expressed on this version.
   */
  plannedWrites(): Write[] {
    return this.#plan(this.#resolve().version, true);
  }

  /**
   * Re-writes the attributes (after changing them) to the existing cgroup.
   *
   * @returns this, for chaining.
   * @throws {ConfigError} When an attribute cannot be expressed on this version.
   * @throws {SyscallError} When a write fails (ENOENT says whether the cgroup or the controller is missing).
   */
  modify(): this {
    const { version } = this.#resolve();
    this.#plan(version, true);
    this.#apply(version);
    return this;
  }

  /**
   * Moves a process into the cgroup (all its threads). Synchronous only, so a forked child can
   * attach itself before it execs.
   *
   * @param pid The process (default: the calling process, from getpid(2), so right in a forked child).
   * @param options `skip`: directories not written (a child that moved itself in: hako's native
   *   container child joins its v1 directories by itself).
   * @returns this, for chaining.
   * @throws {ConfigError} When pid is not a positive integer.
   * @throws {SyscallError} When the write to `cgroup.procs` fails (ESRCH: no such process; v1
   *   cpuset ENOSPC: empty cpus/mems; v2 EBUSY: the cgroup has children with controllers).
   *
   * @example
   * ```ts ignore
   * const pid = Process.fork(() => {
   *   rate.attach();
   *   Process.exec("stress", "-c", "1");
   * });
   * ```
   */
  attach(pid?: number, options: { readonly skip?: readonly string[] } = {}): this {
    const target = pid ?? libc().getpid();
    if (!Number.isSafeInteger(target) || target <= 0) {
      throw new ConfigError(`${this.#kind.label}.attach`, `pid must be a positive integer, got ${pid}`);
    }
    const { placements } = this.#resolve();
    for (const p of placements) {
      const dir = this.#dir(p);
      if (options.skip?.includes(dir)) continue;
      const context = `attach pid ${target} to cgroup ${this.#name}`;
      try {
        writeKnob(`${dir}/cgroup.procs`, String(target), context);
      } catch (e) {
        const code = (e as { code?: string }).code;
        let why = "";
        if (code === "ENOENT") why = this.#whyMissing(p, "cgroup.procs");
        else if (code === "ESRCH") why = `no process ${target}`;
        else if (code === "ENOSPC" && p.version === 1) why = "its cpuset.cpus or cpuset.mems is empty";
        else if (code === "EBUSY" && p.version === 2) {
          why = "cgroup v2 puts processes only in leaves: this cgroup has controllers enabled for children";
        } else if (code === "EOPNOTSUPP" && p.version === 2) why = "the cgroup is threaded or in an invalid domain";
        throw why ? withContext(e, `${context} (${why})`) : e;
      }
    }
    return this;
  }

  /**
   * Whether the cgroup exists.
   * @returns True when the cgroup's directory exists.
   */
  exists(): boolean {
    return exists(this.path);
  }

  /**
   * The processes in the cgroup itself (its `cgroup.procs`, not its children's).
   *
   * @returns Their pids.
   * @throws {SyscallError} When the cgroup does not exist.
   */
  procs(): number[] {
    const text = readKnob(`${this.path}/cgroup.procs`, `list the processes of cgroup ${this.#name}`);
    return text.split("\n").filter(Boolean).map(Number);
  }

  /**
   * Removes the cgroup and every cgroup below it, plus the ancestors its own create() made when
   * they are empty. Deleting a missing cgroup does nothing. Without `kill`, waits up to
   * `timeoutMs` for members to leave; with `kill`, SIGKILLs them (v2: `cgroup.kill`) and waits
   * for them to be gone. Careful: with `kill` a process that attached itself kills itself.
   *
   * @param options `kill` and `timeoutMs`.
   * @throws {ConfigError} When timeoutMs is not a number ≥ 0.
   * @throws {SyscallError} When rmdir fails; EBUSY names the processes still inside.
   *
   * @example
   * ```ts ignore
   * rate.delete({ kill: true });
   * ```
   */
  delete(options: DeleteOptions = {}): void {
    const kill = options.kill ?? false;
    const timeoutMs = options.timeoutMs ?? (kill ? 5000 : 0);
    if (typeof timeoutMs !== "number" || !(timeoutMs >= 0)) {
      throw new ConfigError("delete.timeoutMs", `must be a number of milliseconds ≥ 0, got ${timeoutMs}`);
    }
    const { placements } = this.#resolve();
    for (const p of placements) {
      const dir = this.#dir(p);
      if (!exists(dir)) continue;
      const deadline = Date.now() + timeoutMs;
      const viaKillFile = kill && p.version === 2 && exists(`${dir}/cgroup.kill`);
      if (viaKillFile) writeKnob(`${dir}/cgroup.kill`, "1", `kill the processes of cgroup ${this.#name}`);
      for (;;) {
        const members = subtreePostOrder(dir).flatMap(readPids);
        if (members.length === 0 || Date.now() >= deadline) break;
        if (kill && !viaKillFile) {
          for (const pid of members) libc().kill(pid, 9); // ESRCH: already gone
        }
        sleepSync(kill ? 5 : 20);
      }
      for (const d of subtreePostOrder(dir)) {
        try {
          rmdirOne(d, `delete cgroup ${this.#name}`);
        } catch (e) {
          const left = subtreePostOrder(d).flatMap(readPids);
          const hint = left.length > 0
            ? `${left.length} process(es) still in it (${left.slice(0, 8).join(", ")}${
              left.length > 8 ? ", …" : ""
            }); ${kill ? "they did not die in time" : "pass { kill: true } or a longer timeoutMs"}`
            : childCgroups(d).length > 0
            ? "it has child cgroups"
            : "";
          throw hint ? withContext(e, `delete cgroup ${this.#name} (${hint})`) : e;
        }
      }
    }
    for (const d of this.#madeAncestors) {
      try {
        rmdirOne(d);
      } catch {
        break; // in use by another cgroup: keep it and everything above
      }
    }
    this.#madeAncestors = [];
  }

  /** hacorb's `close`: the same as {@link Controller.delete}. */
  close(options: DeleteOptions = {}): void {
    this.delete(options);
  }

  /** `using` support: deletes the cgroup, killing whatever is still in it. */
  [Symbol.dispose](): void {
    this.delete({ kill: true });
  }

  /**
   * Reads a control file of this cgroup, or null when missing. On v1, `subsystem` picks the
   * hierarchy (e.g. `"cpuacct"` for a CPU cgroup mirrored there); null when it is not one of ours.
   */
  protected readFile(file: string, subsystem?: string): string | null {
    const { placements } = this.#resolve();
    const p = subsystem === undefined || placements[0]!.version === 2
      ? placements[0]
      : placements.find((x) => x.subsystems.includes(subsystem));
    return p ? tryReadKnob(`${this.#dir(p)}/${file}`) : null;
  }

  /** Raises "does not exist" when the cgroup is missing (for stats()). */
  protected assertExists(): void {
    const dir = this.path;
    if (!exists(dir)) readKnob(`${dir}/cgroup.procs`, `read the statistics of cgroup ${this.#name}`);
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────────

  #dir(p: Placement): string {
    return `${p.root}/${this.#name}`;
  }

  /** The directory holding `file`: on v1 the hierarchy of its prefix when we mirror one. */
  #dirFor(file: string): string {
    const { placements } = this.#resolve();
    const prefix = file.split(".")[0]!;
    const p = placements.find((x) => x.subsystems.includes(prefix)) ?? placements[0]!;
    return this.#dir(p);
  }

  #resolve(): Resolved {
    this.#resolved ??= this.#locate();
    return this.#resolved;
  }

  #locate(): Resolved {
    const kind = this.#kind;
    const root = this.#options.root?.replace(/\/+$/, "") || this.#options.root;
    if (root !== undefined) {
      const version = this.#options.version ?? rootVersion(root);
      if (version === 2) return { version, placements: [{ version, root, subsystems: [] }] };
      if (kind.v1.length === 0) {
        throw new ConfigError("cgroup.root", `a cgroup without controllers needs cgroup v2, and ${root} is v1`);
      }
      const placements: Placement[] = [];
      for (const [i, sub] of kind.v1.entries()) {
        const found = findV1Hierarchy(root, sub);
        if (!found) {
          if (i === 0) {
            throw new ConfigError(
              "cgroup.root",
              `no cgroup v1 hierarchy for ${sub} at or under ${root} (expected ${root}/${sub} or a mount with ${sub})`,
            );
          }
          continue;
        }
        if (!placements.some((p) => p.root === found.root)) placements.push(found);
      }
      return { version: 1, placements };
    }
    const layout = detect();
    const primary = kind.v1[0];
    const useV1 = this.#options.version === 1 ||
      (this.#options.version === undefined && primary !== undefined && layout.v1[primary] !== undefined);
    if (!useV1) return { version: 2, placements: [{ version: 2, root: unifiedRoot(layout, kind), subsystems: [] }] };
    if (primary === undefined) {
      throw new ConfigError("cgroup.version", "a cgroup without controllers needs cgroup v2, not v1");
    }
    const placements: Placement[] = [];
    for (const sub of kind.v1) {
      const mount = layout.mounts.find((m) => m.version === 1 && m.subsystems.includes(sub));
      if (!mount) {
        if (sub === primary) {
          throw new SetupError(
            "cgroup",
            `the ${sub} controller is not mounted as cgroup v1 (no cgroup mount with ${sub} in /proc/self/mountinfo)`,
          );
        }
        continue;
      }
      if (!placements.some((p) => p.root === mount.mountPoint)) {
        placements.push({ version: 1, root: mount.mountPoint, subsystems: mount.subsystems });
      }
    }
    return { version: 1, placements };
  }

  #checkKey(key: string, version: 1 | 2): void {
    const prefix = key.split(".")[0]!;
    const vs = `cgroup ${this.#name} is on cgroup v${version}`;
    if (version === 2) {
      const counterpart = V1_ONLY[key] ?? V1_ONLY_PREFIX[prefix];
      if (counterpart !== undefined) {
        throw new ConfigError(key, `is a cgroup v1 file, and ${vs}${counterpart ? `: use ${counterpart}` : ""}`);
      }
      if (/_in_bytes$/.test(key)) throw new ConfigError(key, `is a cgroup v1 file, and ${vs}`);
    } else {
      const counterpart = V2_ONLY[key] ?? V2_ONLY_PREFIX[prefix];
      if (counterpart !== undefined) {
        throw new ConfigError(key, `is a cgroup v2 file, and ${vs}${counterpart ? `: use ${counterpart}` : ""}`);
      }
    }
    if (prefix === "cgroup" || CORE_FILES.has(key)) return;
    const own = this.#kind.prefixes[version];
    if (!own.includes(prefix)) {
      throw new ConfigError(
        key,
        `belongs to the ${prefix} controller, and this is a ${this.#kind.label} cgroup: use the ${prefix} class or a Cgroup.Group`,
      );
    }
  }

  #plan(version: 1 | 2, dry: boolean): Write[] {
    const dirFor = (file: string) => this.#dirFor(file);
    const ctx: PlanContext = {
      version,
      dry,
      read: (file) => dry ? null : tryReadKnob(`${dirFor(file)}/${file}`),
      has: (file) => !dry && exists(`${dirFor(file)}/${file}`),
    };
    const writes = this.plan(ctx);
    for (const [key, value] of this.#raw) writes.push({ file: key, value });
    return writes;
  }

  #apply(version: 1 | 2): void {
    const writes = this.#plan(version, false);
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i]!;
      const next = writes[i + 1];
      try {
        this.#write(w);
      } catch (e) {
        if (!(w.retryAfterNext && next && (e as { code?: string }).code === "EINVAL")) throw e;
        this.#write(next);
        this.#write(w);
        i++;
      }
    }
  }

  #write(w: Write): void {
    const dir = this.#dirFor(w.file);
    const context = `set ${w.file}=${shown(w.value)} on cgroup ${this.#name}`;
    try {
      writeKnob(`${dir}/${w.file}`, w.value, context);
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") throw e;
      const { placements } = this.#resolve();
      const p = placements.find((x) => dir === this.#dir(x)) ?? placements[0]!;
      throw withContext(e, `${context}: ${this.#whyMissing(p, w.file)}`);
    }
  }

  /** Explains why a control file is missing. */
  #whyMissing(p: Placement, file: string): string {
    const dir = this.#dir(p);
    if (!exists(dir)) return `cgroup ${this.#name} does not exist under ${p.root}: create() it first`;
    const prefix = file.split(".")[0]!;
    if (p.version === 2) {
      if (prefix === "cgroup") return `the kernel has no ${file}`;
      const enabled = (tryReadKnob(`${dir}/cgroup.controllers`) ?? "").split(/\s+/);
      if (!enabled.includes(prefix)) {
        const offered = (tryReadKnob(`${p.root}/cgroup.controllers`) ?? "").trim();
        const rootNote = offered.split(/\s+/).includes(prefix)
          ? ""
          : ` (${p.root}/cgroup.controllers does not offer it: ${offered ? `only ${offered}` : "none"})`;
        return `controller ${prefix} is not enabled in ${dirname(dir)}/cgroup.subtree_control${rootNote}`;
      }
      return `the ${prefix} controller has no ${file} on this kernel`;
    }
    if (file.startsWith("memory.memsw.")) return "swap accounting is off (boot with swapaccount=1)";
    return `the ${p.subsystems.join(",")} hierarchy has no ${file} on this kernel`;
  }

  /**
   * mkdir -p of the cgroup in one hierarchy, enabling the v2 controller on the way down; with
   * `exclusive` the last directory must be new. An ancestor removed under us (its last other
   * cgroup deleted it as we went) is made again.
   */
  #makeDirs(p: Placement, made: string[], exclusive: boolean): void {
    const controller = p.version === 2 ? this.#kind.v2 : null;
    const segments = this.#name.split("/");
    for (let attempt = 0;; attempt++) {
      let enabling = controller !== null;
      let dir = p.root;
      try {
        for (const [i, seg] of segments.entries()) {
          const parent = dir;
          dir = `${dir}/${seg}`;
          if (enabling) enabling = this.#enable(parent, controller!);
          if (mkdirOne(dir, `create cgroup ${this.#name}`)) {
            made.push(dir);
            this.prepareNewDir(p.version, dir, parent);
          } else if (exclusive && i === segments.length - 1) {
            throw new ConfigError(
              "cgroup.name",
              `cgroup ${this.#name} exists already (${dir}): a container's cgroup is its own, and hako never adopts one it did not make (its processes would be killed with the container's)`,
            );
          }
        }
        return;
      } catch (e) {
        if ((e as { code?: string }).code !== "ENOENT" || attempt >= 3) throw e;
      }
    }
  }

  /**
   * Enables a v2 controller for `dir`'s children. Returns false (doing nothing) when `dir` is not
   * offered it, so the failure surfaces where the user's write needs it, with the reason.
   */
  #enable(dir: string, controller: string): boolean {
    const offered = (tryReadKnob(`${dir}/cgroup.controllers`) ?? "").split(/\s+/);
    if (!offered.includes(controller)) return false;
    const enabled = (tryReadKnob(`${dir}/cgroup.subtree_control`) ?? "").split(/\s+/);
    if (enabled.includes(controller)) return true;
    const context = `enable controller ${controller} in ${dir}/cgroup.subtree_control for cgroup ${this.#name}`;
    try {
      writeKnob(`${dir}/cgroup.subtree_control`, `+${controller}`, context);
    } catch (e) {
      if ((e as { code?: string }).code === "EBUSY") {
        throw withContext(
          e,
          `${context} (cgroup v2 enables controllers for children only in a cgroup without processes of its own: move them to a leaf)`,
        );
      }
      throw e;
    }
    return true;
  }
}

/** The cgroup2 root for a controller, checking that the host has one. */
function unifiedRoot(layout: Layout, kind: ControllerKind): string {
  if (layout.unified === null) {
    throw new SetupError(
      "cgroup",
      `no cgroup2 filesystem is mounted, and the ${kind.label} controller is not on v1 either`,
    );
  }
  return layout.unified;
}

/** Finds the v1 hierarchy of `sub` at or directly under `root`. */
function findV1Hierarchy(root: string, sub: string): Placement | null {
  let mounts: ReturnType<typeof parseMountinfo> = [];
  try {
    mounts = parseMountinfo(readKnob("/proc/self/mountinfo"));
  } catch { /* by the directory names alone */ }
  const mount = mounts.find((m) =>
    m.version === 1 && m.subsystems.includes(sub) && (m.mountPoint === root || dirname(m.mountPoint) === root)
  );
  if (mount) return { version: 1, root: mount.mountPoint, subsystems: mount.subsystems };
  const base = root.split("/").pop() ?? "";
  if (base.split(",").includes(sub)) return { version: 1, root, subsystems: base.split(",") };
  for (const d of childCgroups(root)) {
    const name = d.split("/").pop()!;
    if (name.split(",").includes(sub)) return { version: 1, root: d, subsystems: name.split(",") };
  }
  return null;
}
