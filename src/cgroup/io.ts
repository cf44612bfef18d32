/**
 * Block IO weight and throttling ({@link IO}).
 *
 * @example Read at most 10 MB/s from /dev/vda
 * ```ts ignore
 * const io = new Cgroup.IO("web");
 * io.readBps = { "/dev/vda": 10_000_000 };
 * io.create();
 * ```
 * @module
 */
import { type CgroupOptions, Controller, type ControllerKind, type PlanContext, type Write } from "./controller.ts";
import { ConfigError } from "../errors.ts";
import { ioWeightToBlkio, type Limit, parseDevice, parseInteger } from "./values.ts";

/** IO done on one device (or in total). */
export interface IoDeviceStats {
  /** Bytes read. */
  readonly readBytes: number;
  /** Bytes written. */
  readonly writeBytes: number;
  /** Read operations. */
  readonly readIos: number;
  /** Write operations. */
  readonly writeIos: number;
}

/** IO done by a cgroup, the same on v1 and v2. */
export interface IoStats extends IoDeviceStats {
  /** Per device, keyed `"MAJ:MIN"`. */
  readonly devices: Readonly<Record<string, IoDeviceStats>>;
}

/** Per-device limits: `{ "8:0": 1_000_000, "/dev/vda": "max" }`. */
export type DeviceLimits = Readonly<Record<string, number | "max">>;

const IO_KIND: ControllerKind = {
  label: "io",
  v1: ["blkio"],
  v2: "io",
  prefixes: { 1: ["blkio"], 2: ["io"] },
};

type Throttle = "readBps" | "writeBps" | "readIops" | "writeIops";
const V1_FILES: Readonly<Record<Throttle, string>> = {
  readBps: "blkio.throttle.read_bps_device",
  writeBps: "blkio.throttle.write_bps_device",
  readIops: "blkio.throttle.read_iops_device",
  writeIops: "blkio.throttle.write_iops_device",
};
const V2_KEYS: Readonly<Record<Throttle, string>> = {
  readBps: "rbps",
  writeBps: "wbps",
  readIops: "riops",
  writeIops: "wiops",
};

/**
 * A cgroup of the block IO controller (`blkio` on v1, `io` on v2): a relative weight and
 * per-device throttles. v1 writes `blkio.weight` (or `blkio.bfq.weight`) and
 * `blkio.throttle.*_device`; v2 writes `io.weight` (or `io.bfq.weight`) and `io.max`.
 *
 * @example hacorb spelling
 * ```ts ignore
 * const io = new Cgroup.BLKIO("web");
 * io.throttle_read_bps_device = "8:0 2000000";
 * io.create();
 * ```
 */
export class IO extends Controller<IoStats> {
  #weight: number | undefined;
  readonly #limits: Record<Throttle, Record<string, Limit>> = {
    readBps: {},
    writeBps: {},
    readIops: {},
    writeIops: {},
  };

  /**
   * Names a block IO cgroup; nothing is touched until create().
   *
   * @param name The cgroup's name, relative to the root.
   * @param options Root and version overrides.
   * @throws {ConfigError} When the name or options are invalid.
   */
  constructor(name: string, options: CgroupOptions = {}) {
    super(IO_KIND, name, options);
  }

  /**
   * Relative weight in v2 units (1..10000, default 100); written as it is to v2's `io.weight`, and
   * mapped to 10..1000 ({@link ioWeightToBlkio}) for the BFQ/CFQ weight files (v1's `blkio.weight`
   * or `blkio.bfq.weight`, v2's `io.bfq.weight`).
   */
  get weight(): number | undefined {
    return this.#weight;
  }
  set weight(value: number | undefined) {
    this.#weight = value === undefined
      ? undefined
      : parseInteger(value, this.field("weight"), { min: 1, max: 10000, unlimited: false }) as number;
  }

  /** Read bytes per second, per device (`"MAJ:MIN"` or `/dev/…`); `"max"` lifts a limit. */
  get readBps(): DeviceLimits {
    return { ...this.#limits.readBps };
  }
  set readBps(value: DeviceLimits) {
    this.#setLimits("readBps", value);
  }

  /** Written bytes per second, per device. */
  get writeBps(): DeviceLimits {
    return { ...this.#limits.writeBps };
  }
  set writeBps(value: DeviceLimits) {
    this.#setLimits("writeBps", value);
  }

  /** Read operations per second, per device. */
  get readIops(): DeviceLimits {
    return { ...this.#limits.readIops };
  }
  set readIops(value: DeviceLimits) {
    this.#setLimits("readIops", value);
  }

  /** Write operations per second, per device. */
  get writeIops(): DeviceLimits {
    return { ...this.#limits.writeIops };
  }
  set writeIops(value: DeviceLimits) {
    this.#setLimits("writeIops", value);
  }

  /** hacorb's `throttle_read_bps_device = "MAJ:MIN BYTES"` (adds one device). */
  get throttle_read_bps_device(): string {
    return this.#hacorb("readBps");
  }
  set throttle_read_bps_device(value: string) {
    this.#setHacorb("readBps", value);
  }

  /** hacorb's `throttle_write_bps_device = "MAJ:MIN BYTES"`. */
  get throttle_write_bps_device(): string {
    return this.#hacorb("writeBps");
  }
  set throttle_write_bps_device(value: string) {
    this.#setHacorb("writeBps", value);
  }

  /** hacorb's `throttle_read_iops_device = "MAJ:MIN IOPS"`. */
  get throttle_read_iops_device(): string {
    return this.#hacorb("readIops");
  }
  set throttle_read_iops_device(value: string) {
    this.#setHacorb("readIops", value);
  }

  /** hacorb's `throttle_write_iops_device = "MAJ:MIN IOPS"`. */
  get throttle_write_iops_device(): string {
    return this.#hacorb("writeIops");
  }
  set throttle_write_iops_device(value: string) {
    this.#setHacorb("writeIops", value);
  }

  #setLimits(which: Throttle, value: DeviceLimits): void {
    if (typeof value !== "object" || value === null) {
      throw new ConfigError(this.field(which), 'must be an object of device → limit, e.g. { "8:0": 1048576 }');
    }
    const parsed: Record<string, Limit> = {};
    for (const [device, limit] of Object.entries(value)) {
      const field = `${this.field(which)}[${JSON.stringify(device)}]`;
      parsed[parseDevice(device, field)] = parseInteger(limit, field, { min: 1 });
    }
    this.#limits[which] = parsed;
  }

  #hacorb(which: Throttle): string {
    return Object.entries(this.#limits[which]).map(([d, v]) => `${d} ${v === "max" ? 0 : v}`).join("\n");
  }

  #setHacorb(which: Throttle, value: string): void {
    const m = /^\s*(\S+)\s+(\d+|max)\s*$/.exec(String(value));
    if (!m) {
      throw new ConfigError(
        this.field(which),
        `must be "MAJ:MIN LIMIT" (e.g. "8:0 2000000"), got ${JSON.stringify(value)}`,
      );
    }
    const field = this.field(which);
    // v1 writes 0 to lift a limit.
    const limit = m[2] === "max" || m[2] === "0" ? "max" : parseInteger(m[2]!, field, { min: 1 });
    this.#limits[which] = { ...this.#limits[which], [parseDevice(m[1]!, field)]: limit };
  }

  /** The writes for the attributes set so far. */
  protected plan(ctx: PlanContext): Write[] {
    const writes: Write[] = [];
    if (ctx.version === 1) {
      if (this.#weight !== undefined) {
        const file = ctx.dry || ctx.has("blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
        writes.push({ file, value: String(ioWeightToBlkio(this.#weight)) });
      }
      for (const which of Object.keys(V1_FILES) as Throttle[]) {
        for (const [dev, limit] of Object.entries(this.#limits[which])) {
          writes.push({ file: V1_FILES[which], value: `${dev} ${limit === "max" ? 0 : limit}` });
        }
      }
      return writes;
    }
    if (this.#weight !== undefined) {
      const cost = ctx.dry || ctx.has("io.weight");
      // (io.bfq.weight is BFQ's weight, in v1 units, as on v1: runc and crun write the OCI
      // blkio weight, 10..1000, to it as it is)
      writes.push({
        file: cost ? "io.weight" : "io.bfq.weight",
        value: `default ${cost ? this.#weight : ioWeightToBlkio(this.#weight)}`,
      });
    }
    const devices = new Set(Object.values(this.#limits).flatMap((m) => Object.keys(m)));
    for (const dev of devices) {
      const parts = (Object.keys(V2_KEYS) as Throttle[])
        .filter((w) => this.#limits[w][dev] !== undefined)
        .map((w) => `${V2_KEYS[w]}=${this.#limits[w][dev]}`);
      writes.push({ file: "io.max", value: `${dev} ${parts.join(" ")}` });
    }
    return writes;
  }

  /**
   * Bytes and operations per device and in total.
   *
   * @returns The statistics.
   * @throws {SyscallError} When the cgroup does not exist.
   */
  stats(): IoStats {
    this.assertExists();
    const devices: Record<string, { readBytes: number; writeBytes: number; readIos: number; writeIos: number }> = {};
    const dev = (d: string) => devices[d] ??= { readBytes: 0, writeBytes: 0, readIos: 0, writeIos: 0 };
    if (this.version === 1) {
      const bytes = this.readFile("blkio.throttle.io_service_bytes_recursive") ??
        this.readFile("blkio.throttle.io_service_bytes");
      const ios = this.readFile("blkio.throttle.io_serviced_recursive") ?? this.readFile("blkio.throttle.io_serviced");
      for (const [text, r, w] of [[bytes, "readBytes", "writeBytes"], [ios, "readIos", "writeIos"]] as const) {
        for (const line of (text ?? "").split("\n")) {
          const [d, op, n] = line.trim().split(/\s+/);
          if (!d || !/^\d+:\d+$/.test(d) || n === undefined) continue;
          if (op === "Read") dev(d)[r] += Number(n);
          else if (op === "Write") dev(d)[w] += Number(n);
        }
      }
    } else {
      for (const line of (this.readFile("io.stat") ?? "").split("\n")) {
        const [d, ...fields] = line.trim().split(/\s+/);
        if (!d || !/^\d+:\d+$/.test(d)) continue;
        const kv = Object.fromEntries(fields.map((f) => f.split("=")).map(([k, v]) => [k, Number(v)]));
        const s = dev(d);
        s.readBytes += kv.rbytes ?? 0;
        s.writeBytes += kv.wbytes ?? 0;
        s.readIos += kv.rios ?? 0;
        s.writeIos += kv.wios ?? 0;
      }
    }
    const total = { readBytes: 0, writeBytes: 0, readIos: 0, writeIos: 0 };
    for (const s of Object.values(devices)) {
      total.readBytes += s.readBytes;
      total.writeBytes += s.writeBytes;
      total.readIos += s.readIos;
      total.writeIos += s.writeIos;
    }
    return { ...total, devices };
  }
}

/** hacorb's v1 name for {@link IO}. */
export { IO as BLKIO };
