/**
 * A child that runs no JavaScript: `clone(CLONE_VM | namespace flags)` into a small native runner
 * (`spawn_x86_64.S` or `spawn_aarch64.S`, embedded below as bytes) that executes a prepared list
 * of system calls and ends in `execve`.
 *
 * A fork of the runtime costs what V8 (or JavaScriptCore) makes it cost: the clone copies the
 * engine's page tables, every page the child's JavaScript touches is a copy-on-write fault, and
 * execve tears the copied address space down. A container's setup is only system calls whose
 * arguments the parent can compute in advance (mounts, pivot_root, sethostname, capset, prctl,
 * seccomp…), so the parent writes them down as a {@link SyscallProgram} and the child — sharing
 * the parent's memory, on a stack of its own, with every signal blocked — runs them in one loop,
 * the way crun's and bubblewrap's children run their lists of ops. No page table is copied and
 * nothing is torn down at execve but the new stack's pages.
 *
 * A failing call makes the child write `{ "ERR!", op index, errno }` to the report fd and exit
 * 126; the parent names the step from the index ({@link parseReport}). x86-64 and aarch64 have a
 * runner ({@link nativeSpawnSupported}); elsewhere callers fork as before. The program's layout is
 * ffi/_op_layout.ts's, which the runners' assembler constants are generated from; the programs
 * make only the `*at` calls both architectures have (`openat`, `mkdirat`, `dup3`…), never `open`,
 * `mkdir` or `dup2`, which aarch64 lacks.
 *
 * @module
 */
import process from "node:process";
import { addressOf, checkRetry, errno, libc, nativeFunction } from "./libc.ts";
import { type CodeArch, HOST_ARCH, mapCode, syncInstructionCache } from "./_code_page.ts";
import { waitReadable } from "./poll.ts";
import { SYSCALLS_X86_64 } from "./_syscalls_x86_64.ts";
import { SYSCALLS_AARCH64 } from "./_syscalls_aarch64.ts";
import { ANY_RESULT, HEADER, HEADER_BYTES, INDIRECT_BITS, OP_BYTES, OP_WORD, SPECIAL_OP } from "./_op_layout.ts";
import { SyscallError } from "./errno.ts";
import {
  CLONE_VM,
  EXEC_RESET_SIGNALS,
  PR_GET_DUMPABLE,
  PR_SET_DUMPABLE,
  SIG_BLOCK,
  SIG_SETMASK,
  SIGCHLD,
} from "./constants.ts";

/**
 * The runner's machine code, assembled from `ffi/spawn_x86_64.S` (`bash tools/assemble.sh`
 * prints this string; tests/spawn_test.ts checks it against the source where `as` is installed).
 */
export const RUNNER_X86_64_HEX: string =
  "4989fc4d8b2c244531f64d8d7c24104d39ee0f833c010000496bde604c01fb488b034883f8fd0f84910000004883f8fc0f84" +
  "900000004883f8fe0f841e010000488b7b08488b7310488b53184c8b53204c8b43284c8b4b30488b4b58f6c1017403488b3f" +
  "f6c1027403488b36f6c1047403488b12f6c10874034d8b12f6c11074034d8b00f6c12074034d8b090f05483d01f0ffff736a" +
  "488b4b384885c97403488901488b4b404883f9ff74094839c8740431c0eb6a49ffc6e952ffffff4c8b7308e949ffffffb838" +
  "000000488b7b08488b731031d24531d24531c00f054885c075094c8b7318e924ffffff483d01f0ffff730d488b4b204885c9" +
  "74b98901ebb548f7d8488b4b4839c87408488b4b5039c8750c48c1e9204989cee9f0feffff4883ec10c70424455252214489" +
  "74240489442408b801000000498b7c24084889e6ba0c0000000f05b8e7000000bf7e0000000f05f4b8e700000031ff0f05f4" +
  "4881ec80000000b889000000488b7b084889e60f05488b4c24504881c480000000483d01f0ffff0f8375ffffff4c8b531048" +
  "89ca4881e20f0c00004909d248f7c10010000074074981ca0000200048f7c10020000074074981ca0001000049f7c2000420" +
  "0075074981ca00000001b8a500000031ff488b730831d24531c00f05e9abfeffff";

/**
 * The machine code of ffi/spawn_aarch64.S (`bash tools/assemble.sh ffi/spawn_aarch64.S`; checked
 * by tests/spawn_test.ts). Run under qemu-user only (tests/spawn_aarch64_test.ts), never on
 * aarch64 hardware so far.
 */
export const RUNNER_AARCH64_HEX: string =
  "f30300aa740240f9150080d276420091bf0214eb020b0054090c80d2b75a099be80240f91f0d00b1400500541f1100b14005" +
  "00541f0900b1600a0054e08640a9e28e41a9e49642a9e92e40f93f0140f240000054000040f93f017ff240000054210040f9" +
  "3f017ef240000054420040f93f017df240000054630040f93f017cf240000054840040f93f017bf240000054a50040f90100" +
  "00d41ffc3fb1c2030054e91e40f9490000b4200100f9e92240f93f0500b1a00000541f0009eb60000054000080d21d000014" +
  "b5060091d1ffff17f50640f9cfffff17e08640a9020080d2030080d2040080d2881b80d2010000d4600000b5f50e40f9c6ff" +
  "ff171ffc3fb1a2000054e91240f909feffb4200100b9eeffff17e00300cbe92640f91f00096b80000054e92a40f91f00096b" +
  "6100005435fd60d3b7ffff17ff4300d1a9488a52492aa472e90300b9f50700b9e00b00b9600640f9e1030091820180d20808" +
  "80d2010000d4c00f80d2c80b80d2010000d4000020d4000080d2c80b80d2010000d4000020d4ff0302d1e00640f9e1030091" +
  "680580d2010000d4e92b40f9ff0302911ffc3fb182fbff54e30a40f9ea8181d20a00a0f22a010a8a63000aaa3f0174f24000" +
  "005463006bb23f0173f240000054630078b20a8080d20a04a0f27f000aea810000540a0080d20a20a0f263000aaa000080d2" +
  "e10640f9020080d2040080d2080580d2010000d4a4ffff17";

/** The architectures hako has a runner for, as the kernel names them. */
export type RunnerArch = CodeArch;

export { HOST_ARCH, syncInstructionCache };

/** The runner's machine code for `arch`, as hex. */
export function runnerHex(arch: RunnerArch): string {
  return arch === "aarch64" ? RUNNER_AARCH64_HEX : RUNNER_X86_64_HEX;
}

/** The system calls a program may make (only `*at` ones: aarch64 has no open, mkdir, dup2…). */
const PROGRAM_SYSCALLS = [
  "read",
  "write",
  "openat",
  "close",
  "rt_sigaction",
  "rt_sigprocmask",
  "ioctl",
  "dup3",
  "socket",
  "sendmsg",
  "execve",
  "chdir",
  "chroot",
  "fchdir",
  "mkdirat",
  "symlinkat",
  "fchown",
  "setsid",
  "setgroups",
  "setresuid",
  "setresgid",
  "capset",
  "mknodat",
  "fchmodat",
  "prctl",
  "pivot_root",
  "mount",
  "umount2",
  "sethostname",
  "setdomainname",
  "prlimit64",
  "setns",
  "unshare",
  "seccomp",
  "close_range",
  "mount_setattr",
  "open_tree",
  "move_mount",
  "exit_group",
  "openat2",
  "faccessat",
] as const;

/** A system call a {@link SyscallProgram} may make. */
export type ProgramSyscall = (typeof PROGRAM_SYSCALLS)[number];

/** Their numbers on each architecture, from the kernel's tables (ffi/_syscalls_*.ts). */
const NR_BY_ARCH: Readonly<Record<RunnerArch, Readonly<Record<ProgramSyscall, number>>>> = {
  x86_64: numbers("x86_64", SYSCALLS_X86_64),
  aarch64: numbers("aarch64", SYSCALLS_AARCH64),
};

function numbers(arch: RunnerArch, table: Readonly<Record<string, number>>): Record<ProgramSyscall, number> {
  return Object.fromEntries(PROGRAM_SYSCALLS.map((name) => {
    const nr = table[name];
    if (nr === undefined) throw new Error(`the ${arch} syscall table has no ${name}`);
    return [name, nr];
  })) as Record<ProgramSyscall, number>;
}

/**
 * The libc function a forked child calls for what a program's call does (open for openat with
 * AT_FDCWD, dup2 for dup3, prlimit for prlimit64…): a failing op is named so, as the forked path
 * names the same failure, with the same arguments shown.
 */
export function libcName(name: ProgramSyscall): string {
  return LIBC_NAMES[name] ?? name;
}

const LIBC_NAMES: Partial<Record<ProgramSyscall, string>> = {
  openat: "open",
  mkdirat: "mkdir",
  mknodat: "mknod",
  symlinkat: "symlink",
  dup3: "dup2",
  prlimit64: "prlimit",
};

/** The runner needs a few hundred bytes; signals stay blocked, so none is delivered on it. */
const STACK_BYTES = 4096;
const OP_REMOUNT_READONLY = BigInt(SPECIAL_OP.remountReadonly);
const OP_JUMP = BigInt(SPECIAL_OP.jump);
const OP_CLONE = BigInt(SPECIAL_OP.clone);
const ANY = BigInt(ANY_RESULT);

/** Bytes the program owns: C strings, structs, pointer arrays (see {@link SyscallProgram.bytes}). */
export class ProgramData {
  /** @internal */
  constructor(
    readonly bytes: Uint8Array,
    readonly pointers: ReadonlyArray<readonly [number, ProgramData]>,
    /** As an argument: the address just past its end (a stack's top), not its start. */
    readonly top = false,
  ) {}
}

/** An address inside program data (see {@link SyscallProgram.at}). */
export class DataAt {
  /** @internal */
  constructor(readonly data: ProgramData, readonly offset: number) {}
}

/** A u64 the child may store a result into and pass on later (see {@link SyscallProgram.slot}). */
export class ProgramSlot {
  #brand = true;
}

/** The value held in a slot (or in a u64 of program data), as an argument. */
export class SlotValue {
  /** @internal */
  constructor(readonly slot: ProgramSlot | DataAt) {}
}

/** A place in the program to jump to (see {@link SyscallProgram.label}). */
export class ProgramLabel {
  /** The op index, once placed. */
  index = -1;
}

/** One argument of a call: a number, bytes of the program (their address), a slot's value, or NULL. */
export type ProgramArg = number | bigint | ProgramData | DataAt | SlotValue | null;

/** Options of one call. */
export interface CallOptions {
  /** The result the call must return (default: any non-negative result). */
  readonly expect?: number;
  /**
   * A slot that keeps the result, or a u64 inside program data (an fd the child opens, stored
   * right where a later call's struct needs it: a control message's SCM_RIGHTS fd).
   */
  readonly store?: ProgramSlot | DataAt;
  /** Failures that are not errors: errno → where to go on (at most two). */
  readonly onErrno?: ReadonlyArray<readonly [number, ProgramLabel]>;
}

interface Op {
  /** The system call, or the runner's own op (a negative number). */
  readonly nr: ProgramSyscall | bigint;
  readonly args: readonly ProgramArg[];
  readonly options: CallOptions;
  /** Arguments that are op indexes: [argument index, label]. */
  readonly labels?: ReadonlyArray<readonly [number, ProgramLabel]>;
}

/**
 * One op of a {@link SyscallProgram} as recorded, for reading a program without running it (tests
 * that compare it with the forked child's calls): a system call with its arguments, or one of the
 * runner's own ops. Op indexes (a jump's target, a clone child's start, where an errno goes on)
 * are resolved; -1 for a label not placed yet.
 */
export type ProgramOp =
  | {
    readonly kind: "call";
    readonly name: ProgramSyscall;
    readonly args: readonly ProgramArg[];
    readonly expect?: number;
    /** errno → the op index it goes on at. */
    readonly onErrno: ReadonlyArray<readonly [number, number]>;
  }
  /** statfs(path), then mount(NULL, path, NULL, baseFlags | its MS_* flags). */
  | { readonly kind: "remount-readonly"; readonly path: ProgramData; readonly baseFlags: number }
  | { readonly kind: "jump"; readonly to: number }
  /** clone(flags): the new child goes on at `child`, this process at the next op. */
  | { readonly kind: "clone"; readonly flags: number; readonly child: number };

/**
 * A program made by {@link SyscallProgram.build}: its memory holds the ops, the data, the slots and
 * the child's stack. Keep it referenced until the child has exec'd or been reaped; after that it
 * may run again (a new child), with new slot values.
 */
export class BuiltProgram {
  /** The memory the child reads (ops, data) and writes (slots, stack). */
  readonly memory: Uint8Array;
  /** The program's address. */
  readonly program: bigint;
  /** The top of the child's stack. */
  readonly stackTop: bigint;
  /** How many ops it has. */
  readonly length: number;
  readonly #view: DataView;
  readonly #slots: ReadonlyMap<ProgramSlot, number>;

  /** @internal */
  constructor(
    memory: Uint8Array,
    length: number,
    slots: ReadonlyMap<ProgramSlot, number>,
    base: bigint = addressOf(memory),
  ) {
    this.memory = memory;
    this.program = base;
    this.stackTop = (this.program + BigInt(memory.length)) & ~15n;
    this.length = length;
    this.#view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
    this.#slots = slots;
  }

  /** Sets a slot's value (an fd the program passes on, for one). */
  set(slot: ProgramSlot, value: number): void {
    const off = this.#slots.get(slot);
    if (off === undefined) throw new RangeError("hako ffi: not a slot of this program");
    this.#view.setBigInt64(off, BigInt(value), true);
  }

  /** Sets the fd a failing op writes its record to. */
  reportTo(fd: number): void {
    this.#view.setBigInt64(HEADER.reportFd, BigInt(fd), true);
  }
}

/**
 * A list of system calls for a native child, built in the parent. Each {@link SyscallProgram.call}
 * returns the op's index, which a failure report names.
 *
 * @example Run `/bin/true` from a child that ran no JavaScript
 * ```ts ignore
 * const prog = new SyscallProgram();
 * prog.call("execve", [prog.cstring("/bin/true"), prog.cstrings(["true"]), prog.cstrings([])]);
 * const built = prog.build();
 * built.reportTo(2);
 * const pid = spawnProgram(built, 0);
 * ```
 */
export class SyscallProgram {
  #ops: Op[] = [];
  #slots: ProgramSlot[] = [];

  /** How many ops the program has so far (the index the next one gets). */
  get length(): number {
    return this.#ops.length;
  }

  /** The ops so far, as recorded (see {@link ProgramOp}); nothing is built or run. */
  listing(): ProgramOp[] {
    return this.#ops.map((op): ProgramOp => {
      const label = (k: number) => op.labels?.find(([i]) => i === k)?.[1].index ?? -1;
      if (op.nr === OP_REMOUNT_READONLY) {
        return { kind: "remount-readonly", path: op.args[0] as ProgramData, baseFlags: Number(op.args[1]) };
      }
      if (op.nr === OP_JUMP) return { kind: "jump", to: label(0) };
      if (op.nr === OP_CLONE) return { kind: "clone", flags: Number(op.args[0]), child: label(2) };
      return {
        kind: "call",
        name: op.nr as ProgramSyscall,
        args: op.args,
        ...(op.options.expect === undefined ? {} : { expect: op.options.expect }),
        onErrno: (op.options.onErrno ?? []).map(([e, l]) => [e, l.index] as const),
      };
    });
  }

  /** Appends a system call; @returns its op index. */
  call(name: ProgramSyscall, args: readonly ProgramArg[], options: CallOptions = {}): number {
    if (args.length > 6) throw new RangeError(`hako ffi: ${name} takes at most 6 arguments`);
    if ((options.onErrno?.length ?? 0) > 2) throw new RangeError("hako ffi: at most two onErrno rules per call");
    if (!(PROGRAM_SYSCALLS as readonly string[]).includes(name)) {
      throw new RangeError(`hako ffi: ${name} is not a call a program may make`);
    }
    this.#ops.push({ nr: name, args, options });
    return this.#ops.length - 1;
  }

  /**
   * Appends a read-only remount of `path` that keeps its other flags: statfs(path), then
   * `mount(NULL, path, NULL, baseFlags | its MS_* flags)`. @returns its op index.
   */
  remountReadonly(path: ProgramData, baseFlags: number): number {
    this.#ops.push({ nr: OP_REMOUNT_READONLY, args: [path, baseFlags], options: {} });
    return this.#ops.length - 1;
  }

  /** Appends a jump to `label`. */
  jump(label: ProgramLabel): void {
    this.#ops.push({ nr: OP_JUMP, args: [0], options: {}, labels: [[0, label]] });
  }

  /**
   * Appends a clone: `clone(flags, stack)`, after which the new child goes on at `child` on its
   * own `stack` (from {@link SyscallProgram.stack}), and this process stores the child's pid (a
   * u32) at `pidAt`, when given, and goes on with the next op. With `CLONE_VM` both run the same
   * program in the same memory: neither may write what the other reads. @returns its op index.
   */
  clone(flags: number, stack: ProgramData, child: ProgramLabel, pidAt?: DataAt): number {
    if (!stack.top) throw new TypeError("hako ffi: clone needs a stack from SyscallProgram.stack()");
    this.#ops.push({ nr: OP_CLONE, args: [flags, stack, 0, pidAt ?? 0], options: {}, labels: [[2, child]] });
    return this.#ops.length - 1;
  }

  /** Memory for a child's stack (see {@link SyscallProgram.clone}); as an argument, its top. */
  stack(size = 4096): ProgramData {
    return new ProgramData(new Uint8Array(size), [], true);
  }

  /** The address `offset` bytes into `data`, as an argument. */
  at(data: ProgramData, offset: number): DataAt {
    return new DataAt(data, offset);
  }

  /**
   * Appends what a child does to its signals right before execve: every disposition (but
   * SIGKILL's and SIGSTOP's) back to SIG_DFL — a runtime's handler would run JavaScript on the
   * child's stack, and a runtime's SIG_IGN of SIGPIPE must not reach the program — then an empty
   * mask (the child starts with every signal blocked, see {@link spawnProgram}).
   * @returns The ops added, as `[index, syscall, arguments to show]`.
   */
  resetSignals(): Array<[number, ProgramSyscall, unknown[]]> {
    const out: Array<[number, ProgramSyscall, unknown[]]> = [];
    const dfl = this.bytes(new Uint8Array(32)); // struct kernel_sigaction { SIG_DFL, 0, 0, 0 }
    for (const sig of EXEC_RESET_SIGNALS) {
      out.push([this.call("rt_sigaction", [sig, dfl, null, 8]), "rt_sigaction", [sig]]);
    }
    const empty = this.bytes(new Uint8Array(8));
    out.push([this.call("rt_sigprocmask", [SIG_SETMASK, empty, null, 8]), "rt_sigprocmask", ["SIG_SETMASK", "{}"]]);
    return out;
  }

  /** A new label, placed later with {@link SyscallProgram.place}. */
  label(): ProgramLabel {
    return new ProgramLabel();
  }

  /** Places `label` at the next op. */
  place(label: ProgramLabel): void {
    label.index = this.#ops.length;
  }

  /** A scratch u64 for a result (store it with `store`, pass it with {@link SyscallProgram.value}). */
  slot(): ProgramSlot {
    const s = new ProgramSlot();
    this.#slots.push(s);
    return s;
  }

  /** A slot's value (or the u64 at a place in program data) as an argument. */
  value(slot: ProgramSlot | DataAt): SlotValue {
    return new SlotValue(slot);
  }

  /** Raw bytes (copied); `pointers` patches u64 addresses of other data in at byte offsets. */
  bytes(bytes: Uint8Array, pointers: ReadonlyArray<readonly [number, ProgramData]> = []): ProgramData {
    return new ProgramData(bytes.slice(), pointers);
  }

  /** A NUL-terminated C string. @throws {TypeError} When it holds a NUL. */
  cstring(text: string): ProgramData {
    if (text.includes("\0")) throw new TypeError(`hako ffi: a C string may not contain NUL: ${JSON.stringify(text)}`);
    const utf8 = new TextEncoder().encode(text);
    const out = new Uint8Array(utf8.length + 1);
    out.set(utf8);
    return new ProgramData(out, []);
  }

  /** A NULL-terminated array of C strings (argv, envp). */
  cstrings(list: readonly string[]): ProgramData {
    return new ProgramData(
      new Uint8Array((list.length + 1) * 8),
      list.map((s, i) => [i * 8, this.cstring(s)] as const),
    );
  }

  /**
   * Lays the program out in one buffer: header, ops, slots, data, then the child's stack. Set its
   * report fd ({@link BuiltProgram.reportTo}) and slots before each run.
   * @param arch Whose syscall numbers (default: this machine's; only that runner can run it here).
   * @throws {RangeError} For a label never placed.
   */
  build(arch: RunnerArch = HOST_ARCH): BuiltProgram {
    return this.#encode(arch);
  }

  /**
   * The program as bytes to load at address `base` (its pointers relocated there), for `arch`'s
   * runner: what a harness that maps it at a fixed address runs (tests/fixtures/runner_harness.c).
   * Slots start at 0; the report fd is `reportFd`.
   * @throws {RangeError} For a label never placed.
   */
  image(base: bigint, arch: RunnerArch, reportFd = -1): Uint8Array {
    const built = this.#encode(arch, base);
    built.reportTo(reportFd);
    return built.memory;
  }

  #encode(arch: RunnerArch, fixedBase?: bigint): BuiltProgram {
    const NR = NR_BY_ARCH[arch];
    // Every piece of data, reached through arguments and pointers, once each.
    const data: ProgramData[] = [];
    const seen = new Set<ProgramData>();
    const visit = (d: ProgramData) => {
      if (seen.has(d)) return;
      seen.add(d);
      data.push(d);
      for (const [, p] of d.pointers) visit(p);
    };
    for (const op of this.#ops) {
      for (const a of op.args) {
        if (a instanceof ProgramData) visit(a);
        else if (a instanceof DataAt) visit(a.data);
        else if (a instanceof SlotValue && a.slot instanceof DataAt) visit(a.slot.data);
      }
      if (op.options.store instanceof DataAt) visit(op.options.store.data);
    }
    const align = (n: number) => (n + 15) & ~15;
    const opsAt = HEADER_BYTES;
    const slotsAt = opsAt + this.#ops.length * OP_BYTES;
    let at = align(slotsAt + this.#slots.length * 8);
    const dataAt = new Map<ProgramData, number>();
    for (const d of data) {
      dataAt.set(d, at);
      at = align(at + d.bytes.length);
    }
    const slotAt = new Map(this.#slots.map((s, i) => [s, slotsAt + i * 8] as const));
    const memory0 = new Uint8Array(at + STACK_BYTES);
    const built = fixedBase === undefined
      ? new BuiltProgram(memory0, this.#ops.length, slotAt)
      : new BuiltProgram(memory0, this.#ops.length, slotAt, fixedBase);
    const { memory, program: base } = built;
    const view = new DataView(memory.buffer);
    for (const d of data) {
      const off = dataAt.get(d)!;
      memory.set(d.bytes, off);
      for (const [p, target] of d.pointers) view.setBigUint64(off + p, base + BigInt(dataAt.get(target)!), true);
    }
    view.setBigUint64(HEADER.count, BigInt(this.#ops.length), true);
    view.setBigInt64(HEADER.reportFd, -1n, true);
    /** The offset of a slot, or of a u64 in program data (8 bytes of it must be there). */
    const addressIn = (s: ProgramSlot | DataAt) => {
      if (s instanceof ProgramSlot) return slotAt.get(s)!;
      if (s.offset < 0 || s.offset + 8 > s.data.bytes.length) {
        throw new RangeError("hako ffi: a stored or loaded u64 must lie inside its program data");
      }
      return dataAt.get(s.data)! + s.offset;
    };
    const target = (l: ProgramLabel) => {
      if (l.index < 0) throw new RangeError("hako ffi: a label of the program was never placed");
      return BigInt(l.index);
    };
    this.#ops.forEach((op, i) => {
      const o = opsAt + i * OP_BYTES;
      const word = (k: number, v: bigint) => view.setBigInt64(o + k * 8, BigInt.asIntN(64, v), true);
      word(OP_WORD.nr, typeof op.nr === "bigint" ? op.nr : BigInt(NR[op.nr]));
      let indirect = 0;
      op.args.forEach((a, k) => {
        let v: bigint;
        if (a === null) v = 0n;
        else if (a instanceof ProgramData) {
          v = base + BigInt(dataAt.get(a)!);
          if (a.top) v = (v + BigInt(a.bytes.length)) & ~15n;
        } else if (a instanceof DataAt) v = base + BigInt(dataAt.get(a.data)! + a.offset);
        else if (a instanceof SlotValue) {
          v = base + BigInt(addressIn(a.slot));
          indirect |= INDIRECT_BITS[k]!;
        } else v = BigInt(a);
        word(OP_WORD.a0 + k, v);
      });
      for (const [k, l] of op.labels ?? []) word(OP_WORD.a0 + k, target(l));
      word(OP_WORD.store, op.options.store ? base + BigInt(addressIn(op.options.store)) : 0n);
      word(OP_WORD.expect, op.options.expect === undefined ? ANY : BigInt(op.options.expect));
      const rules = [OP_WORD.onErrA, OP_WORD.onErrB];
      (op.options.onErrno ?? []).forEach(([e, l], k) => word(rules[k]!, (target(l) << 32n) | BigInt(e)));
      word(OP_WORD.indirect, BigInt(indirect));
    });
    return built;
  }
}

/** True where hako has a native runner (x86-64, aarch64) and `HAKO_NATIVE_SPAWN` is not `0`. */
export function nativeSpawnSupported(): boolean {
  return (process.arch === "x64" || process.arch === "arm64") && process.env.HAKO_NATIVE_SPAWN !== "0";
}

let runner: bigint | undefined;

/** The runner's address: its bytes copied once into a page made executable. */
function runnerAddress(): bigint {
  return runner ??= mapCode(runnerHex(HOST_ARCH), "the native runner");
}

const ALL_SIGNALS = new Uint8Array(128).fill(0xff);

/**
 * Clones a child that shares this process's memory and runs `built` natively
 * (`clone(runner, stack, CLONE_VM | cloneFlags | SIGCHLD, program)`). Every signal stays blocked
 * in the child until the program unblocks it (after resetting the runtime's handlers, which would
 * otherwise run JavaScript on the child's stack). Keep `built` referenced until the child has
 * exec'd or been reaped.
 * @param built The program.
 * @param cloneFlags `CLONE_NEW*` flags.
 * @returns The child's pid.
 * @throws {SyscallError} When clone fails.
 */
export function spawnProgram(built: BuiltProgram, cloneFlags: number): number {
  const code = runnerAddress();
  const { clone, sigprocmask } = libc();
  const saved = new Uint8Array(128);
  sigprocmask(SIG_BLOCK, ALL_SIGNALS, saved);
  const pid = clone(code, built.stackTop, cloneFlags | CLONE_VM | SIGCHLD, built.program);
  const err = pid === -1 ? errno() : 0;
  sigprocmask(SIG_SETMASK, saved, null);
  if (pid === -1) throw new SyscallError("clone", err, [`0x${(cloneFlags | CLONE_VM).toString(16)}`]);
  return pid;
}

/**
 * The machine code of `ffi/clone3_x86_64.S` (checked by tests/spawn_test.ts): a clone3 whose child
 * calls the runner, as glibc's clone() calls its `fn`. x86-64 only so far: aarch64 children join
 * their cgroup2 directory by the parent's write (its clone3 entry could not be run here: qemu-user
 * refuses CLONE_VM but for threads).
 */
export const CLONE3_X86_64_HEX: string = "4989d04989c9b8b30100000f054885c0751231ed4c89cf41ffd089c7b83c0000000f05f4c3";

/** clone3's `CLONE_INTO_CGROUP` (Linux 5.7): the child is born in the cgroup2 directory given. */
const CLONE_INTO_CGROUP = 0x2_0000_0000n;
/** `struct clone_args` up to its `cgroup` field (CLONE_ARGS_SIZE_VER2). */
const CLONE_ARGS_BYTES = 88;

let clone3Call: ((...args: Array<number | bigint>) => unknown) | null | undefined;

/**
 * Whether {@link spawnProgramInto} has an entry for this architecture (x86-64): a caller that
 * would otherwise pay a `cgroup.procs` write ahead (src/cgroup/_prime.ts) need not. The kernel may
 * still refuse it (before 5.7, a seccomp filter): then the write is paid after the clone.
 */
export function cloneIntoCgroupSupported(): boolean {
  return HOST_ARCH === "x86_64";
}

/**
 * {@link spawnProgram}, with the child born in the cgroup2 directory `cgroupFd` (clone3's
 * `CLONE_INTO_CGROUP`): no `cgroup.procs` write after the clone, and so no wait for the kernel's
 * global threadgroup lock — whose first writer after a quiet moment waits for an RCU grace period
 * (5–20 ms; src/cgroup/_prime.ts), while a clone only reads it.
 * @param built The program.
 * @param cloneFlags `CLONE_NEW*` flags.
 * @param cgroupFd An fd of the cgroup2 directory (O_RDONLY|O_DIRECTORY).
 * @returns The child's pid; undefined where clone3 could not make it — not x86-64, a kernel without
 *   clone3 or `CLONE_INTO_CGROUP`, a seccomp filter that answers it ENOSYS, or any refusal (the
 *   caller then clones as before and writes `cgroup.procs`, which names the error that remains).
 */
export function spawnProgramInto(built: BuiltProgram, cloneFlags: number, cgroupFd: number): number | undefined {
  if (!cloneIntoCgroupSupported()) return undefined;
  if (clone3Call === undefined) {
    try {
      const code = mapCode(CLONE3_X86_64_HEX, "the clone3 entry");
      clone3Call = nativeFunction(code, { parameters: ["i64", "i64", "i64", "i64"], result: "i64" });
    } catch {
      clone3Call = null;
    }
  }
  if (!clone3Call) return undefined;
  const args = new BigUint64Array(CLONE_ARGS_BYTES / 8);
  args[0] = BigInt(cloneFlags | CLONE_VM) | CLONE_INTO_CGROUP; // flags
  args[4] = BigInt(SIGCHLD); // exit_signal
  const stackBytes = BigInt(STACK_BYTES - 16);
  args[5] = built.stackTop - stackBytes; // stack (the kernel starts the child at stack + stack_size)
  args[6] = stackBytes; // stack_size
  args[10] = BigInt(cgroupFd); // cgroup
  const code = runnerAddress();
  const { sigprocmask } = libc();
  const saved = new Uint8Array(128);
  sigprocmask(SIG_BLOCK, ALL_SIGNALS, saved);
  const r = Number(clone3Call(addressOf(new Uint8Array(args.buffer)), BigInt(CLONE_ARGS_BYTES), code, built.program));
  sigprocmask(SIG_SETMASK, saved, null);
  return r > 0 ? r : undefined;
}

let dumpableHolds = 0;
let dumpableBefore = 1;

/**
 * Marks that a child sharing this process's memory (`CLONE_VM`) may make it non-dumpable: a child
 * that joins a container's namespaces sets `PR_SET_DUMPABLE` 0 before it does (so nothing in the
 * container can open its `/proc/PID/mem`, `environ`, `fd/` or `exe`, runc's CVE-2016-9962 and
 * CVE-2019-5736 lessons), and the flag belongs to the memory, which is this process's too. The
 * returned function, called once the child has exec'd or is gone, gives the process back the
 * dumpable flag it had before the first hold, when no other hold is left.
 * @returns The release function (idempotent).
 */
export function holdNonDumpable(): () => void {
  const { prctl } = libc();
  if (dumpableHolds++ === 0) dumpableBefore = prctl(PR_GET_DUMPABLE, 0n, 0n, 0n, 0n);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--dumpableHolds === 0 && dumpableBefore === 1) prctl(PR_SET_DUMPABLE, 1n, 0n, 0n, 0n);
  };
}

/** The bytes a program writes to say its setup is done (see {@link readyRecord}). */
const READY = 0x21594452; // "RDY!"
const FAILED = 0x21525245; // "ERR!"

/** The 12-byte record a program writes when its setup is done: `write(fd, readyRecord(), 12)`. */
export function readyRecord(prog: SyscallProgram): ProgramData {
  const b = new Uint8Array(12);
  new DataView(b.buffer).setUint32(0, READY, true);
  return prog.bytes(b);
}

/** The size of a report record. */
export const REPORT_BYTES = 12;

/**
 * A report record: setup done (`ready`), an op that failed with an errno (0: an unexpected
 * result), or the pid of a child the program cloned (`pid`, see {@link pidRecord}).
 */
export type ProgramReport =
  | { readonly ready: true }
  | { readonly ready: false; readonly op: number; readonly errno: number }
  | { readonly ready: false; readonly pid: number }
  | { readonly ready: false; readonly sync: true };

const PID = 0x21444950; // "PID!"

/**
 * A 12-byte record `{ "PID!", pid }` for a clone to store its child's pid into (`prog.at(record,
 * 4)`) and the program to write to the report fd.
 */
export function pidRecord(prog: SyscallProgram): ProgramData {
  const b = new Uint8Array(12);
  new DataView(b.buffer).setUint32(0, PID, true);
  return prog.bytes(b);
}

const SYNC = 0x21434e53; // "SNC!"

/**
 * The 12-byte record `{ "SNC!" }` a program writes when it reaches a sync point (a setup step that
 * waits for the parent, see setup.ts's `hooks-sync`), before it reads the parent's byte.
 */
export function syncRecord(prog: SyscallProgram): ProgramData {
  const b = new Uint8Array(12);
  new DataView(b.buffer).setUint32(0, SYNC, true);
  return prog.bytes(b);
}

/** Decodes a 12-byte report record; undefined when it is not one. */
export function parseReport(bytes: Uint8Array): ProgramReport | undefined {
  if (bytes.length !== REPORT_BYTES) return undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kind = v.getUint32(0, true);
  if (kind === READY) return { ready: true };
  if (kind === FAILED) return { ready: false, op: v.getUint32(4, true), errno: v.getUint32(8, true) };
  if (kind === PID) return { ready: false, pid: v.getUint32(4, true) };
  if (kind === SYNC) return { ready: false, sync: true };
  return undefined;
}

/**
 * Reads a program's first report from `fd`, blocking until a whole record or EOF (retrying on
 * EINTR and short reads): the reader for callers that wait for a spawned program's exec.
 * @param fd The read end of the pipe given to {@link BuiltProgram.reportTo} (its write end closed here).
 * @returns The record; undefined at EOF before a whole record (the program exec'd, or died) or
 *   when the bytes are not a record.
 * @throws {SyscallError} When read fails.
 */
export function readReport(fd: number): ProgramReport | undefined {
  const record = new Uint8Array(REPORT_BYTES);
  for (let got = 0; got < REPORT_BYTES;) {
    const n = checkRetry(() => libc().read(fd, record.subarray(got), BigInt(REPORT_BYTES - got)), "read", [fd]);
    if (n === 0) return undefined;
    got += n;
  }
  return parseReport(record);
}

/**
 * The next report on `fd`, without blocking the event loop (waits with `waitReadable` until
 * `until`, a `Date.now()` time): the record, `"eof"` when the pipe ends between records,
 * `"garbled"` when the bytes are not a record (or the pipe ends amid one), `"timeout"` when
 * nothing came in time. The reader for callers that read several records (exec's).
 * @param fd The read end of the report pipe.
 * @param until When to give up, as `Date.now()` counts.
 * @param context What the caller is doing, for a SyscallError's message.
 * @throws {SyscallError} When read fails.
 */
export async function nextReport(
  fd: number,
  until: number,
  context?: string,
): Promise<ProgramReport | "eof" | "garbled" | "timeout"> {
  const record = new Uint8Array(REPORT_BYTES);
  for (let got = 0; got < REPORT_BYTES;) {
    const left = until - Date.now();
    if (left <= 0 || !(await waitReadable(fd, left))) return "timeout";
    const n = checkRetry(
      () => libc().read(fd, record.subarray(got), BigInt(REPORT_BYTES - got)),
      "read",
      [fd],
      context,
    );
    if (n === 0) return got === 0 ? "eof" : "garbled";
    got += n;
  }
  return parseReport(record) ?? "garbled";
}
