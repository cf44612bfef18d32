/**
 * A test-only binding of Debian's libseccomp (`libseccomp.so.2`), to build the same profile the
 * way runc does (`seccomp_init`, `seccomp_arch_add`, `seccomp_rule_add_array`,
 * `seccomp_export_bpf`) and compare its decisions with hako's compiler. Not part of hako: hako
 * never links libseccomp.
 * @module
 */
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { bunFfiAdapter } from "../ffi/_bun.ts";
import { denoFfi } from "../ffi/_deno.ts";
import { cstr } from "../ffi/cstring.ts";
import { libc } from "../ffi/libc.ts";
import { decodeSockFilters, type SockFilter } from "../ffi/seccomp.ts";

const SYMBOLS = {
  // scmp_filter_ctx seccomp_init(uint32_t def_action)
  seccomp_init: { parameters: ["u32"], result: "pointer" },
  // void seccomp_release(scmp_filter_ctx ctx)
  seccomp_release: { parameters: ["pointer"], result: "void" },
  // int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token), seccomp_arch_remove(…)
  seccomp_arch_add: { parameters: ["pointer", "u32"], result: "i32" },
  seccomp_arch_remove: { parameters: ["pointer", "u32"], result: "i32" },
  // uint32_t seccomp_arch_native(void)
  seccomp_arch_native: { parameters: [], result: "u32" },
  // int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value)
  seccomp_attr_set: { parameters: ["pointer", "i32", "u32"], result: "i32" },
  // int seccomp_syscall_resolve_name(const char *name)
  seccomp_syscall_resolve_name: { parameters: ["buffer"], result: "i32" },
  // int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name)
  seccomp_syscall_resolve_name_arch: { parameters: ["u32", "buffer"], result: "i32" },
  // int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt,
  //                            const struct scmp_arg_cmp *arg_array)
  seccomp_rule_add_array: { parameters: ["pointer", "u32", "i32", "u32", "buffer"], result: "i32" },
  // int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd)
  seccomp_export_bpf: { parameters: ["pointer", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** libseccomp's `SCMP_ARCH_*` tokens (x32's is a libseccomp invention: EM_X86_64|__AUDIT_ARCH_LE). */
export const SCMP_ARCH = Object.freeze({
  x86_64: 0xc000003e,
  x86: 0x40000003,
  x32: 0x4000003e,
  aarch64: 0xc00000b7,
  arm: 0x40000028,
});

/** `enum scmp_compare`. */
export const SCMP_CMP = Object.freeze({ ne: 1, lt: 2, le: 3, eq: 4, ge: 5, gt: 6, masked_eq: 7 });

const SCMP_FLTATR_ACT_BADARCH = 2;
const NR_SCMP_ERROR = -1;
const EEXIST = 17;

let lib: Symbols | undefined | null;

/** The library, or null when `libseccomp.so.2` cannot be opened (then the tests skip). */
export function libseccomp(): Symbols | null {
  if (lib === undefined) {
    try {
      lib = ("Bun" in globalThis ? bunFfiAdapter : denoFfi).open("libseccomp.so.2", SYMBOLS);
    } catch {
      lib = null;
    }
  }
  return lib;
}

/** A syscall's number on an ABI by libseccomp's tables (x32 with its bit), or undefined if unknown there. */
export function libseccompNumber(name: string, arch: keyof typeof SCMP_ARCH): number | undefined {
  const nr = libseccomp()!.seccomp_syscall_resolve_name_arch(SCMP_ARCH[arch], cstr(name));
  return nr < 0 ? undefined : nr;
}

/** One rule as libseccomp takes it. */
export interface LibseccompRule {
  readonly name: string;
  /** `SCMP_ACT_*` value. */
  readonly action: number;
  readonly args: readonly { index: number; op: keyof typeof SCMP_CMP; a: bigint; b: bigint }[];
}

/**
 * Builds a filter with libseccomp over `arches` — rules added in order, by the native name
 * lookup and libseccomp's own per-arch translation, rules whose action is the default skipped,
 * names libseccomp does not know skipped (runc's way) — and returns its instructions.
 */
export function libseccompProgram(
  defaultAction: number,
  badArchAction: number,
  arches: readonly (keyof typeof SCMP_ARCH)[],
  rules: readonly LibseccompRule[],
): SockFilter[] {
  const s = libseccomp()!;
  const ctx = s.seccomp_init(defaultAction);
  if (ctx === null) throw new Error("seccomp_init failed");
  const file = join(tmpdir(), `hako-seccomp-libseccomp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    const check = (rc: number, what: string) => {
      if (rc !== 0) throw new Error(`${what}: ${rc}`);
    };
    check(s.seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, badArchAction), "seccomp_attr_set(BADARCH)");
    for (const a of arches) {
      const rc = s.seccomp_arch_add(ctx, SCMP_ARCH[a]);
      if (rc !== -EEXIST) check(rc, `seccomp_arch_add(${a})`); // the native arch is in from the start
    }
    const native = s.seccomp_arch_native();
    if (!arches.some((a) => SCMP_ARCH[a] === native)) check(s.seccomp_arch_remove(ctx, native), "seccomp_arch_remove");
    for (const rule of rules) {
      if (rule.action === defaultAction) continue;
      const nr = s.seccomp_syscall_resolve_name(cstr(rule.name));
      if (nr === NR_SCMP_ERROR) continue;
      // struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op; scmp_datum_t datum_a, datum_b; }
      const buf = new Uint8Array(24 * Math.max(1, rule.args.length));
      const v = new DataView(buf.buffer);
      rule.args.forEach((arg, i) => {
        v.setUint32(24 * i, arg.index, true);
        v.setUint32(24 * i + 4, SCMP_CMP[arg.op], true);
        v.setBigUint64(24 * i + 8, BigInt.asUintN(64, arg.a), true);
        v.setBigUint64(24 * i + 16, BigInt.asUintN(64, arg.b), true);
      });
      const rc = s.seccomp_rule_add_array(ctx, rule.action, nr, rule.args.length, buf);
      if (rc !== 0 && rc !== -EEXIST) throw new Error(`seccomp_rule_add_array(${rule.name}): ${rc}`);
    }
    const { open, close } = libc();
    const fd = open(cstr(file), 0o1 | 0o100 | 0o1000 | 0o2000000, 0o600); // O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC
    if (fd < 0) throw new Error(`open ${file} failed`);
    const rc = s.seccomp_export_bpf(ctx, fd);
    close(fd);
    check(rc, "seccomp_export_bpf");
    return decodeSockFilters(readFileSync(file));
  } finally {
    s.seccomp_release(ctx);
    rmSync(file, { force: true });
  }
}
