/**
 * Which device nodes a cgroup's processes may open or create ({@link Devices}): runc's default
 * allowlist plus a spec's rules, on cgroup v1 through the `devices` controller
 * (`devices.deny`/`devices.allow`) and on cgroup v2 through a `BPF_PROG_TYPE_CGROUP_DEVICE`
 * program attached to the cgroup's directory — one rule list, one meaning on both.
 *
 * A rule list is read the way the v1 kernel reads writes to `devices.allow` and `devices.deny`,
 * starting from "everything denied": rules for the same type and numbers merge their access,
 * an `a` rule resets everything, a deny removes access from an allow of the same numbers, and a
 * deny that would punch a hole into a wildcard allow is refused (v1 would silently ignore it). The
 * result ({@link DeviceAllowlist}) is what both versions enforce. This is runc's emulator
 * (libcontainer/cgroups/devices/devices_emulator.go, now opencontainers/cgroups), re-derived.
 *
 * @example A container's allowlist plus the host's /dev/fuse
 * ```ts ignore
 * using devices = new Cgroup.Devices("web");
 * devices.rules = Cgroup.withDefaultDeviceRules([{ type: "c", major: 10, minor: 229, access: "rwm", allow: true }]);
 * devices.create();
 * ```
 * @module
 */
import {
  BPF_CGROUP_DEV_CTX,
  BPF_CGROUP_DEVICE,
  BPF_DEVCG_ACC,
  BPF_DEVCG_DEV,
  BPF_F_ALLOW_MULTI,
  BPF_PROG_TYPE_CGROUP_DEVICE,
  type BpfInsn,
  bpfProgAttach,
  bpfProgDetach,
  bpfProgGetFdById,
  bpfProgLoad,
  bpfProgQuery,
  encodeBpfInsns,
} from "../../ffi/bpf.ts";
import { check, libc } from "../../ffi/libc.ts";
import { cstr } from "../../ffi/cstring.ts";
import { ConfigError, SetupError, SyscallError } from "../errors.ts";
import { type CgroupOptions, Controller, type ControllerKind, type PlanContext, type Write } from "./controller.ts";
import { and32, disassemble, exit, jeqImm, jneImm, jneReg, ldxw, mov32, mov32Reg, rsh32 } from "./_ebpf.ts";
import { O_CLOEXEC, O_RDONLY } from "../../ffi/constants.ts";

/** One eBPF instruction (ffi/bpf.ts), as {@link deviceProgram} returns them. */
export type { BpfInsn };

/** A device rule, in OCI's `linux.resources.devices` shape. */
export interface DeviceRule {
  /** `"c"` (character), `"b"` (block) or `"a"` (every device; the default, as in OCI). */
  readonly type?: "a" | "b" | "c";
  /** The major number, or `"*"` (the default) for any. */
  readonly major?: number | "*";
  /** The minor number, or `"*"` (the default) for any. */
  readonly minor?: number | "*";
  /** Some of `r` (read), `w` (write) and `m` (mknod), e.g. `"rwm"`. */
  readonly access: string;
  /** Allow (true) or deny (false) that access. */
  readonly allow: boolean;
}

/** One entry of a resolved allowlist: a type, numbers (`"*"`: any) and the access it gets. */
export interface DeviceException {
  /** `"c"` or `"b"`. */
  readonly type: "b" | "c";
  /** The major number, or `"*"`. */
  readonly major: number | "*";
  /** The minor number, or `"*"`. */
  readonly minor: number | "*";
  /** Some of `rwm`, in that order. */
  readonly access: string;
}

/**
 * What a rule list comes to: a default (deny everything, or allow everything) and the exceptions
 * to it — what both cgroup versions enforce.
 */
export interface DeviceAllowlist {
  /** False (the usual): everything not listed is denied. True: everything not listed is allowed. */
  readonly defaultAllow: boolean;
  /** The exceptions (allowed when `defaultAllow` is false, denied when true), sorted by major, minor, type. */
  readonly exceptions: readonly DeviceException[];
}

/** What {@link Devices.stats} reports. */
export interface DevicesStats {
  /** v1: the cgroup's `devices.list` lines (`"a *:* rwm"` when everything is allowed). */
  readonly list?: readonly string[];
  /** v2: the ids of the device programs attached to the cgroup itself. */
  readonly programIds?: readonly number[];
}

/**
 * runc's default device rules, exactly as runc applies them (libcontainer/specconv
 * `AllowedDevices`, appended after a spec's own rules; docker's and containerd's default specs
 * start with `{ allow: false, access: "rwm" }`): mknod of any character or block device (but no
 * read or write to it), and rwm to /dev/null (1:3), /dev/random (1:8), /dev/full (1:7), /dev/tty
 * (5:0), /dev/zero (1:5), /dev/urandom (1:9), /dev/pts/* (136:*), /dev/ptmx (5:2) and /dev/net/tun
 * (10:200). tun was dropped in runc 1.2.0-rc1 and put back before 1.2.0 (runc#3468: tools that
 * cannot add rules broke). /dev/console (5:1) was in runc's list before 1.0 and is not now: a
 * container's console is a pty (136:*).
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = Object.freeze([
  { type: "c", major: "*", minor: "*", access: "m", allow: true },
  { type: "b", major: "*", minor: "*", access: "m", allow: true },
  { type: "c", major: 1, minor: 3, access: "rwm", allow: true }, // /dev/null
  { type: "c", major: 1, minor: 8, access: "rwm", allow: true }, // /dev/random
  { type: "c", major: 1, minor: 7, access: "rwm", allow: true }, // /dev/full
  { type: "c", major: 5, minor: 0, access: "rwm", allow: true }, // /dev/tty
  { type: "c", major: 1, minor: 5, access: "rwm", allow: true }, // /dev/zero
  { type: "c", major: 1, minor: 9, access: "rwm", allow: true }, // /dev/urandom
  { type: "c", major: 136, minor: "*", access: "rwm", allow: true }, // /dev/pts/*
  { type: "c", major: 5, minor: 2, access: "rwm", allow: true }, // /dev/ptmx
  { type: "c", major: 10, minor: 200, access: "rwm", allow: true }, // /dev/net/tun
].map((r) => Object.freeze(r as DeviceRule)));

/**
 * A spec's rules followed by {@link DEFAULT_DEVICE_RULES}, the order runc uses: the spec can add
 * devices, and (as in runc, whose own comment calls it questionable) cannot take a default away.
 * For a narrower list, give {@link Devices.rules} a list of your own.
 *
 * @param extra The spec's rules.
 * @returns The full rule list.
 */
export function withDefaultDeviceRules(extra: readonly DeviceRule[] = []): DeviceRule[] {
  return [...extra, ...DEFAULT_DEVICE_RULES];
}

// ── rules: validation and the v1 semantics ─────────────────────────────────────────────────────

/** Linux device numbers: 12-bit majors and 20-bit minors (include/linux/kdev_t.h, MINORBITS). */
const MAX_MAJOR = (1 << 12) - 1, MAX_MINOR = (1 << 20) - 1;
const ANY = -1;
const ACC = { r: BPF_DEVCG_ACC.READ, w: BPF_DEVCG_ACC.WRITE, m: BPF_DEVCG_ACC.MKNOD } as const;
const RWM = ACC.r | ACC.w | ACC.m;

/** A checked rule: `-1` for a wildcard number, access as `BPF_DEVCG_ACC_*` bits. */
interface Norm {
  readonly type: "a" | "b" | "c";
  readonly major: number;
  readonly minor: number;
  readonly access: number;
  readonly allow: boolean;
}

const accessText = (bits: number) => `${bits & ACC.r ? "r" : ""}${bits & ACC.w ? "w" : ""}${bits & ACC.m ? "m" : ""}`;
const num = (n: number) => n === ANY ? "*" : String(n);

/** A rule in cgroup v1's syntax: `"c 1:3 rwm"`, or `"a"` for every device. */
function line(r: { type: "a" | "b" | "c"; major: number; minor: number; access: number }): string {
  return r.type === "a" ? "a" : `${r.type} ${num(r.major)}:${num(r.minor)} ${accessText(r.access)}`;
}

/**
 * Checks one rule's shape and returns it normalized.
 * @throws {ConfigError} Naming `path.field`.
 */
function normalize(rule: unknown, path: string): Norm {
  if (typeof rule !== "object" || rule === null || Array.isArray(rule)) {
    throw new ConfigError(path, "must be an object { type, major, minor, access, allow }");
  }
  const r = rule as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (!["type", "major", "minor", "access", "allow"].includes(k)) {
      throw new ConfigError(`${path}.${k}`, "unknown setting (known: type, major, minor, access, allow)");
    }
  }
  const type = r.type ?? "a";
  if (type !== "a" && type !== "b" && type !== "c") {
    throw new ConfigError(`${path}.type`, `must be "c", "b" or "a", got ${JSON.stringify(r.type)}`);
  }
  const number = (key: "major" | "minor", max: number): number => {
    const v = r[key];
    if (v === undefined || v === "*") return ANY;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
      throw new ConfigError(
        `${path}.${key}`,
        `must be "*" or an integer in 0..${max} (Linux ${key} numbers are ${key === "major" ? 12 : 20} bits), got ${
          JSON.stringify(v)
        }`,
      );
    }
    return v;
  };
  const major = number("major", MAX_MAJOR);
  const minor = number("minor", MAX_MINOR);
  const a = r.access;
  if (typeof a !== "string" || !/^[rwm]{1,3}$/.test(a) || new Set(a).size !== a.length) {
    throw new ConfigError(
      `${path}.access`,
      `must be some of "r", "w" and "m", each at most once (e.g. "rwm"), got ${JSON.stringify(a)}`,
    );
  }
  const access = [...a].reduce((bits, c) => bits | ACC[c as "r" | "w" | "m"], 0);
  if (typeof r.allow !== "boolean") {
    throw new ConfigError(`${path}.allow`, `must be true or false, got ${JSON.stringify(r.allow)}`);
  }
  if (type === "a" && (major !== ANY || minor !== ANY || access !== RWM)) {
    // The kernel (devices.allow/deny "a …") and runc read an "a" rule as every device with every
    // access, whatever else it says: refuse what would be silently widened.
    throw new ConfigError(
      path,
      `a rule of type "a" means every device and every access: give major and minor "*" and access "rwm", or use type "c" or "b"`,
    );
  }
  return { type, major, minor, access, allow: r.allow };
}

const key = (type: string, major: number, minor: number) => `${type} ${major}:${minor}`;

/** The state of a v1 device cgroup, changed the way the kernel changes it (see the module doc). */
class Emulator {
  defaultAllow = false;
  /** "type major:minor" → access bits, for type b and c only. */
  readonly rules = new Map<string, { type: "b" | "c"; major: number; minor: number; access: number }>();

  /** Applies one rule; returns why it cannot be applied, or null. */
  apply(r: Norm): string | null {
    if (r.type === "a") {
      this.defaultAllow = r.allow;
      this.rules.clear();
      return null;
    }
    // An allow adds to a deny-by-default list and removes from an allow-by-default one; a deny
    // the other way round.
    return r.allow !== this.defaultAllow ? this.#add(r) : this.#remove(r);
  }

  #add(r: Norm): null {
    if (r.type === "a") return null;
    const k = key(r.type, r.major, r.minor);
    const old = this.rules.get(k)?.access ?? 0;
    this.rules.set(k, { type: r.type, major: r.major, minor: r.minor, access: old | r.access });
    return null;
  }

  #remove(r: Norm): string | null {
    if (r.type === "a") return null;
    // v1 removes only an exception with the very same numbers: taking "c 1:3" out of "c 1:*"
    // would be silently ignored, so it is refused (as runc does).
    for (const [major, minor] of [[ANY, r.minor], [r.major, ANY], [ANY, ANY]] as const) {
      if (major === r.major && minor === r.minor) continue;
      const wide = this.rules.get(key(r.type, major, minor));
      if (wide && (wide.access & r.access) !== 0) {
        const verb = this.defaultAllow ? "allow" : "deny";
        const held = this.defaultAllow ? "denied" : "allowed";
        return `${verb} ${line(r)} would punch a hole in the ${held} wildcard ${line(wide)}, which cgroup v1 ` +
          `cannot express (it would silently ignore the rule); list the devices one by one instead`;
      }
    }
    const k = key(r.type, r.major, r.minor);
    const left = (this.rules.get(k)?.access ?? 0) & ~r.access;
    if (left === 0) this.rules.delete(k);
    else this.rules.set(k, { ...this.rules.get(k)!, access: left });
    return null;
  }

  /** The exceptions, sorted by major, minor, type (wildcards first), as runc sorts them. */
  sorted(): Array<{ type: "b" | "c"; major: number; minor: number; access: number }> {
    return [...this.rules.values()].sort((a, b) =>
      a.major - b.major || a.minor - b.minor || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0)
    );
  }
}

/**
 * Checks a rule list and works out what it comes to (see the module doc). `defaults: true` reads
 * it as a container spec's rules: {@link DEFAULT_DEVICE_RULES} are appended.
 *
 * @param rules The rules, in order.
 * @param options `path` for error messages (default `"devices"`); `defaults` to append runc's defaults.
 * @returns The allowlist both cgroup versions enforce.
 * @throws {ConfigError} Naming the bad rule's field (`cgroup.devices[2].access`), or a deny that
 *   would punch a hole into a wildcard allow.
 *
 * @example
 * ```ts ignore
 * Cgroup.resolveDeviceRules([{ type: "c", major: 1, minor: 3, access: "rw", allow: true }]);
 * // { defaultAllow: false, exceptions: [{ type: "c", major: 1, minor: 3, access: "rw" }] }
 * ```
 */
export function resolveDeviceRules(
  rules: readonly DeviceRule[],
  options: { readonly path?: string; readonly defaults?: boolean } = {},
): DeviceAllowlist {
  return toAllowlist(emulate(rules, options.path ?? "devices", options.defaults ?? false));
}

/**
 * Checks a rule list's shape and meaning ({@link resolveDeviceRules} without the result), for a
 * spec's validation pass.
 *
 * @param rules The rules.
 * @param path The field path for errors (default `"cgroup.devices"`).
 * @throws {ConfigError} Naming the first bad rule's field.
 */
export function assertValidDeviceRules(rules: unknown, path = "cgroup.devices"): asserts rules is DeviceRule[] {
  emulate(rules, path, false);
}

function emulate(rules: unknown, path: string, defaults: boolean): Emulator {
  if (!Array.isArray(rules)) throw new ConfigError(path, "must be a list of device rules");
  const norms = rules.map((r, i) => normalize(r, `${path}[${i}]`));
  const emu = new Emulator();
  norms.forEach((r, i) => {
    const why = emu.apply(r);
    if (why) throw new ConfigError(`${path}[${i}]`, why);
  });
  if (defaults) {
    for (const r of DEFAULT_DEVICE_RULES.map((d, i) => normalize(d, `default[${i}]`))) {
      const why = emu.apply(r);
      if (why) throw new ConfigError(path, `with runc's default rules after these: ${why}`);
    }
  }
  return emu;
}

function toAllowlist(emu: Emulator): DeviceAllowlist {
  return Object.freeze({
    defaultAllow: emu.defaultAllow,
    exceptions: Object.freeze(
      emu.sorted().map((e) =>
        Object.freeze({
          type: e.type,
          major: e.major === ANY ? "*" as const : e.major,
          minor: e.minor === ANY ? "*" as const : e.minor,
          access: accessText(e.access),
        })
      ),
    ),
  });
}

function fromAllowlist(list: DeviceAllowlist): Emulator {
  const emu = new Emulator();
  emu.defaultAllow = list.defaultAllow;
  for (const e of list.exceptions) {
    const major = e.major === "*" ? ANY : e.major, minor = e.minor === "*" ? ANY : e.minor;
    const access = [...e.access].reduce((bits, c) => bits | ACC[c as "r" | "w" | "m"], 0);
    emu.rules.set(key(e.type, major, minor), { type: e.type, major, minor, access });
  }
  return emu;
}

/**
 * Reads a v1 `devices.list` into the state it describes, or null when a line cannot be read. An
 * `a *:* rwm` line means "allow by default", and then the list says nothing of the denied ones.
 */
function parseDevicesList(text: string): Emulator | null {
  const emu = new Emulator();
  for (const l of text.split("\n").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([abc]) (\*|\d+):(\*|\d+) ([rwm]+)$/.exec(l);
    if (!m) return null;
    const access = [...m[4]!].reduce((bits, c) => bits | ACC[c as "r" | "w" | "m"], 0);
    const type = m[1] as "a" | "b" | "c";
    const n = (s: string) => s === "*" ? ANY : Number(s);
    emu.apply(
      type === "a" ? { type, major: ANY, minor: ANY, access: RWM, allow: true } : {
        type,
        major: n(m[2]!),
        minor: n(m[3]!),
        access,
        allow: true,
      },
    );
  }
  return emu;
}

// ── cgroup v1: devices.deny / devices.allow ─────────────────────────────────────────────────────

/**
 * The writes that take a v1 devices cgroup from its `devices.list` to `target`, as runc computes
 * them (its emulator's Transition): when the cgroup allows by default, or its mode differs, or
 * its list is unknown (`current` null), first `a` to `devices.deny` (or `devices.allow` for an
 * allow-by-default target), which clears every exception; then what to take away, then what to
 * add. A new cgroup under an allow-all parent gets `devices.deny a` and one `devices.allow` per
 * exception; a running container's cgroup keeps the access it still should have throughout.
 *
 * @param target The allowlist to reach.
 * @param current The cgroup's `devices.list` now, or null when unknown.
 * @returns The writes, in order.
 */
export function deviceCgroupV1Writes(target: DeviceAllowlist, current: string | null): Write[] {
  const to = fromAllowlist(target);
  const from = current === null ? null : parseDevicesList(current);
  const writes: Write[] = [];
  const emit = (allow: boolean, value: string) =>
    writes.push({ file: allow ? "devices.allow" : "devices.deny", value });
  let old = from?.rules ?? new Map();
  if (from === null || from.defaultAllow || from.defaultAllow !== to.defaultAllow) {
    emit(to.defaultAllow, "a");
    old = new Map();
  }
  const sortedOld = [...old.values()].sort((a, b) =>
    a.major - b.major || a.minor - b.minor || (a.type < b.type ? -1 : 1)
  );
  for (const o of sortedOld) {
    const dropped = o.access & ~(to.rules.get(key(o.type, o.major, o.minor))?.access ?? 0);
    if (dropped) emit(to.defaultAllow, line({ ...o, access: dropped }));
  }
  for (const n of to.sorted()) {
    const gained = n.access & ~(old.get(key(n.type, n.major, n.minor))?.access ?? 0);
    if (gained) emit(!to.defaultAllow, line({ ...n, access: gained }));
  }
  return writes;
}

// ── cgroup v2: the BPF program ──────────────────────────────────────────────────────────────────

/**
 * The `BPF_PROG_TYPE_CGROUP_DEVICE` program for an allowlist, in the shape runc's devicefilter
 * (from crun's ebpf.c) generates: r2 = device type, r3 = access, r4 = major, r5 = minor from
 * `struct bpf_cgroup_dev_ctx`; then one block per exception that falls through to the next block
 * unless the type, the access and the numbers match, and returns 1 (allow) or 0 (deny); then the
 * default. An allow block needs every requested access bit among its own (v1's match_exception);
 * a deny block (allow-by-default lists only) matches when any bit is (v1's
 * match_exception_partial) — runc tests a deny by the subset rule too, which lets "rw" through
 * a "deny w"; hako keeps v1's meaning on v2.
 *
 * @param list The allowlist.
 * @returns The instructions (encode them with `encodeBpfInsns` from ffi/bpf.ts).
 */
export function deviceProgram(list: DeviceAllowlist): BpfInsn[] {
  const ctx = BPF_CGROUP_DEV_CTX;
  const out: BpfInsn[] = [
    ldxw(2, 1, ctx.accessType),
    and32(2, 0xffff),
    ldxw(3, 1, ctx.accessType),
    rsh32(3, 16),
    ldxw(4, 1, ctx.major),
    ldxw(5, 1, ctx.minor),
  ];
  const allow = !list.defaultAllow;
  for (const e of list.exceptions) {
    const access = [...e.access].reduce((bits, c) => bits | ACC[c as "r" | "w" | "m"], 0);
    // Jumps are written with the offset to the block's end, patched once the block's length is known.
    const NEXT = Number.NaN;
    const block: BpfInsn[] = [jneImm(2, e.type === "c" ? BPF_DEVCG_DEV.CHAR : BPF_DEVCG_DEV.BLOCK, NEXT)];
    if (access !== RWM) {
      block.push(mov32Reg(1, 3), and32(1, access), allow ? jneReg(1, 3, NEXT) : jeqImm(1, 0, NEXT));
    }
    if (e.major !== "*") block.push(jneImm(4, e.major, NEXT));
    if (e.minor !== "*") block.push(jneImm(5, e.minor, NEXT));
    block.push(mov32(0, allow ? 1 : 0), exit());
    out.push(...block.map((ins, i) => Number.isNaN(ins.off) ? { ...ins, off: block.length - (i + 1) } : ins));
  }
  out.push(mov32(0, list.defaultAllow ? 1 : 0), exit());
  return out;
}

/** Closes an fd from libc (never one of node:fs's). */
const closeFd = (fd: number) => void libc().close(fd);

/**
 * Loads `program` and attaches it to the cgroup v2 directory `dir` with `BPF_F_ALLOW_MULTI`, then
 * detaches the device programs that were attached there before (runc's loadAttachCgroupDeviceFilter:
 * between the two, both run and both must allow, so access only ever narrows in the meantime).
 * The program's fd is closed once attached: the attachment holds the program, and removing the
 * cgroup directory frees it.
 */
function attachDeviceProgram(dir: string, program: readonly BpfInsn[], context: string): void {
  const dirFd = check(libc().open(cstr(dir), O_RDONLY | O_CLOEXEC, 0), "open", [dir], context);
  try {
    const old = bpfProgQuery(dirFd, BPF_CGROUP_DEVICE, context);
    const prog = bpfProgLoad({
      type: BPF_PROG_TYPE_CGROUP_DEVICE,
      insns: encodeBpfInsns(program),
      license: "MIT",
      name: "hako_devices",
    }, context);
    try {
      bpfProgAttach(dirFd, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, context);
    } finally {
      closeFd(prog);
    }
    for (const id of old) {
      let fd: number;
      try {
        fd = bpfProgGetFdById(id, context);
      } catch (e) {
        // Gone since the query, or hidden by an LSM (runc skips those too).
        if (e instanceof SyscallError && (e.code === "ENOENT" || e.code === "EPERM")) continue;
        throw e;
      }
      try {
        bpfProgDetach(dirFd, fd, BPF_CGROUP_DEVICE, `${context} (detach the program it replaces, id ${id})`);
      } catch (e) {
        if (!(e instanceof SyscallError && e.code === "ENOENT")) throw e;
      } finally {
        closeFd(fd);
      }
    }
  } finally {
    closeFd(dirFd);
  }
}

// ── the controller ──────────────────────────────────────────────────────────────────────────────

const DEVICES_KIND: ControllerKind = {
  label: "devices",
  v1: ["devices"],
  v2: null,
  prefixes: { 1: ["devices"], 2: [] },
};

/**
 * A device allowlist for a cgroup: on v1 (when the `devices` controller is mounted) its
 * `devices.deny`/`devices.allow` files, on v2 a BPF device program attached to its directory.
 * The rules default to {@link DEFAULT_DEVICE_RULES}. `delete()` removes the cgroup, and on v2 the
 * program with it.
 *
 * @example
 * ```ts ignore
 * const devices = new Cgroup.Devices("web");          // runc's default allowlist
 * devices.create();
 * const pid = Process.fork(() => {
 *   devices.attach();
 *   Process.exec("sh", "-c", "cat /dev/kmsg");         // EPERM
 * });
 * ```
 */
export class Devices extends Controller<DevicesStats> {
  #rules: readonly DeviceRule[] = DEFAULT_DEVICE_RULES;
  #list: DeviceAllowlist = resolveDeviceRules(DEFAULT_DEVICE_RULES);

  /**
   * Names a devices cgroup; nothing is touched until create().
   *
   * @param name The cgroup's name, relative to the root.
   * @param options Root and version overrides (`{ root: "/sys/fs/cgroup/unified" }` for a BPF
   *   program on a hybrid host's cgroup2 mount).
   * @throws {ConfigError} When the name or options are invalid.
   */
  constructor(name: string, options: CgroupOptions = {}) {
    super(DEVICES_KIND, name, options);
  }

  /** The rules, applied in order to "everything denied" (default {@link DEFAULT_DEVICE_RULES}). */
  get rules(): readonly DeviceRule[] {
    return this.#rules;
  }
  set rules(value: readonly DeviceRule[]) {
    this.#list = resolveDeviceRules(value, { path: this.field("rules") });
    this.#rules = Object.freeze([...value]);
  }

  /** What the rules come to: the allowlist enforced on either version. */
  get allowlist(): DeviceAllowlist {
    return this.#list;
  }

  /**
   * The v2 program for the rules (also what a v1 cgroup enforces), as instructions.
   * @returns The instructions; `disassemble()` them for text.
   */
  program(): BpfInsn[] {
    return deviceProgram(this.#list);
  }

  /**
   * The kernel calls create() makes for the rules on `version`, as text (for `hako plan`); v1's
   * are those for a new cgroup under an allow-all parent.
   *
   * @param version 1 or 2 (default: this host's, for this cgroup).
   * @returns One line per call.
   */
  calls(version: 1 | 2 = this.version): string[] {
    if (version === 1) return deviceCgroupV1Writes(this.#list, null).map((w) => `write ${w.file} "${w.value}"`);
    const program = this.program();
    return [
      `bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, ${program.length} instructions): ${
        this.#list.defaultAllow ? "allow all but" : "deny all but"
      } ${this.#list.exceptions.map((e) => `${e.type} ${e.major}:${e.minor} ${e.access}`).join(", ") || "nothing"}`,
      "bpf(BPF_PROG_ATTACH, cgroup dir, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI); detach the device programs it replaces",
      "close the program fd (the attachment holds the program; removing the cgroup frees it)",
    ];
  }

  /** The v1 writes (none on v2: the program is attached by create() and modify()). */
  protected plan(ctx: PlanContext): Write[] {
    if (ctx.version === 2) return [];
    return deviceCgroupV1Writes(this.#list, ctx.dry ? null : ctx.read("devices.list"));
  }

  /**
   * Creates the cgroup and applies the allowlist: on v1 the writes of {@link deviceCgroupV1Writes},
   * checked against `devices.list` afterwards (as runc does); on v2 the program, attached to the
   * directory. On failure, a cgroup this call made is removed again.
   *
   * @returns this, for chaining.
   * @throws {SyscallError} When mkdir, a write or a bpf call fails (a load failure carries the verifier log).
   * @throws {SetupError} When v1's `devices.list` does not come out as the rules say.
   */
  override create(): this {
    const existed = this.exists();
    super.create();
    try {
      this.#enforce();
    } catch (e) {
      if (!existed) {
        try {
          this.delete();
        } catch { /* best effort: the original error matters */ }
      }
      throw e;
    }
    return this;
  }

  /**
   * Applies changed rules to the existing cgroup: on v1 only the difference is written; on v2 the
   * new program replaces the old one.
   *
   * @returns this, for chaining.
   * @throws {SyscallError} When a write or a bpf call fails.
   * @throws {SetupError} When v1's `devices.list` does not come out as the rules say.
   */
  override modify(): this {
    super.modify();
    this.#enforce();
    return this;
  }

  /**
   * On v1 the cgroup's `devices.list`; on v2 the ids of the device programs attached to it.
   *
   * @returns The statistics.
   * @throws {SyscallError} When the cgroup does not exist.
   */
  stats(): DevicesStats {
    this.assertExists();
    if (this.version === 1) {
      return { list: (this.readFile("devices.list") ?? "").split("\n").map((l) => l.trim()).filter(Boolean) };
    }
    const context = `list the device programs of cgroup ${this.name}`;
    const fd = check(libc().open(cstr(this.path), O_RDONLY | O_CLOEXEC, 0), "open", [this.path], context);
    try {
      return { programIds: bpfProgQuery(fd, BPF_CGROUP_DEVICE, context) };
    } finally {
      closeFd(fd);
    }
  }

  #enforce(): void {
    if (this.version === 2) {
      attachDeviceProgram(this.path, this.program(), `attach the device program to cgroup ${this.name}`);
      return;
    }
    // runc's final check: v1 can silently keep other exceptions (an odd parent, a racing writer).
    const text = this.readFile("devices.list");
    const now = text === null ? null : parseDevicesList(text);
    const want = this.#list;
    const same = now !== null && now.defaultAllow === want.defaultAllow &&
      (want.defaultAllow || JSON.stringify(toAllowlist(now).exceptions) === JSON.stringify(want.exceptions));
    if (!same) {
      throw new SetupError(
        "cgroup devices",
        `devices.list of cgroup ${this.name} does not match its rules after writing them: it says ${
          JSON.stringify(text?.trim() ?? null)
        }, the rules say ${want.defaultAllow ? "allow all but" : "deny all but"} ${
          want.exceptions.map((e) => `${e.type} ${e.major}:${e.minor} ${e.access}`).join(", ") || "nothing"
        }`,
      );
    }
  }
}

/**
 * The program of an allowlist as text, one instruction a line (for `hako plan` and tests).
 *
 * @param list The allowlist.
 * @returns The lines.
 */
export function describeDeviceProgram(list: DeviceAllowlist): string[] {
  return disassemble(deviceProgram(list));
}
