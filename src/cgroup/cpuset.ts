/**
 * CPU and memory-node pinning ({@link CPUSET}).
 *
 * @example Pin to CPUs 0 and 1
 * ```ts ignore
 * const core = new Cgroup.CPUSET("web");
 * core.cpus = "0-1";
 * core.mems = "0";
 * core.create();
 * core.attach();
 * ```
 * @module
 */
import { type CgroupOptions, Controller, type ControllerKind, type PlanContext, type Write } from "./controller.ts";
import { readKnob, writeKnob } from "./_fs.ts";
import { parseCpuList } from "./values.ts";

/** The CPUs and memory nodes a cpuset cgroup may actually use. */
export interface CpusetStats {
  /** Effective CPUs, e.g. `"0-1"`. */
  readonly cpus: string;
  /** Effective memory nodes, e.g. `"0"`. */
  readonly mems: string;
}

const CPUSET_KIND: ControllerKind = {
  label: "cpuset",
  v1: ["cpuset"],
  v2: "cpuset",
  prefixes: { 1: ["cpuset"], 2: ["cpuset"] },
};

/**
 * A cgroup of the `cpuset` controller: which CPUs and memory nodes its processes may use
 * (`cpuset.cpus`, `cpuset.mems` on both versions). On v1 a new cgroup has empty sets and nothing
 * could be attached to it, so create() first copies its parent's; v2 inherits by itself.
 *
 * @example
 * ```ts ignore
 * const core = new Cgroup.CPUSET("chikuwait");
 * core.cpus = core.mems = "0";
 * core.create();
 * ```
 */
export class CPUSET extends Controller<CpusetStats> {
  #cpus: string | undefined;
  #mems: string | undefined;

  /**
   * Names a cpuset cgroup; nothing is touched until create().
   *
   * @param name The cgroup's name, relative to the root.
   * @param options Root and version overrides.
   * @throws {ConfigError} When the name or options are invalid.
   */
  constructor(name: string, options: CgroupOptions = {}) {
    super(CPUSET_KIND, name, options);
  }

  /** The CPUs allowed: a list like `"0-3,6"` (a number or an array of numbers also works). */
  get cpus(): string | undefined {
    return this.#cpus;
  }
  set cpus(value: string | number | readonly number[] | undefined) {
    this.#cpus = value === undefined ? undefined : parseCpuList(value, this.field("cpus"));
  }

  /** The memory nodes allowed, in the same list syntax (`"0"` on a machine without NUMA). */
  get mems(): string | undefined {
    return this.#mems;
  }
  set mems(value: string | number | readonly number[] | undefined) {
    this.#mems = value === undefined ? undefined : parseCpuList(value, this.field("mems"));
  }

  /** On v1, a new directory starts with the parent's cpus and mems, so processes can join it. */
  protected override prepareNewDir(version: 1 | 2, dir: string, parent: string): void {
    if (version !== 1) return;
    for (const file of ["cpuset.cpus", "cpuset.mems"]) {
      const value = readKnob(`${parent}/${file}`, `copy ${file} from the parent of ${dir}`).trim();
      if (value !== "") writeKnob(`${dir}/${file}`, value, `copy ${file}=${value} from the parent into ${dir}`);
    }
  }

  /** The writes for the attributes set so far. */
  protected plan(_ctx: PlanContext): Write[] {
    const writes: Write[] = [];
    if (this.#cpus !== undefined) writes.push({ file: "cpuset.cpus", value: this.#cpus });
    if (this.#mems !== undefined) writes.push({ file: "cpuset.mems", value: this.#mems });
    return writes;
  }

  /**
   * The effective CPUs and memory nodes.
   *
   * @returns `{ cpus, mems }` (empty strings when the kernel does not say).
   * @throws {SyscallError} When the cgroup does not exist.
   */
  stats(): CpusetStats {
    this.assertExists();
    const v2 = this.version === 2;
    const read = (file: string) => (this.readFile(file) ?? "").trim();
    return {
      cpus: read(v2 ? "cpuset.cpus.effective" : "cpuset.effective_cpus"),
      mems: read(v2 ? "cpuset.mems.effective" : "cpuset.effective_mems"),
    };
  }
}
