/**
 * Writes hako's syscall tables (`ffi/_syscalls_*.ts`) from a Linux source tree's own
 * tables, so the seccomp compiler knows every number the kernel knows — nothing more, nothing
 * less — for each ABI a filter can see:
 *
 * | table                  | kernel file (rows used)                                                    |
 * |------------------------|----------------------------------------------------------------------------|
 * | `x86_64`               | arch/x86/entry/syscalls/syscall_64.tbl (`common`, `64`)                    |
 * | `x32`                  | arch/x86/entry/syscalls/syscall_64.tbl (`common`, `x32`; the filter adds `__X32_SYSCALL_BIT`) |
 * | `x86` (i386)           | arch/x86/entry/syscalls/syscall_32.tbl (`i386`)                            |
 * | `aarch64`              | scripts/syscall.tbl (`common`, `64` and arm64's extra ABIs from arch/arm64/kernel/Makefile.syscalls) |
 * | `arm` (aarch64 compat) | arch/arm64/tools/syscall_32.tbl, plus the ARM-private calls (`__ARM_NR_*`) and aliases of arch/arm/include/uapi/asm/unistd.h |
 *
 * Usage (the kernel files are not committed; point the script at a checkout or at the files):
 *
 * ```sh
 * tools/deno run -A tools/gen_syscalls.ts --linux ~/src/linux --source "torvalds/linux v6.18"
 * tools/deno run -A tools/gen_syscalls.ts --version 6.18 --x86-64 syscall_64.tbl --x86-32 syscall_32.tbl \
 *   --generic syscall.tbl --arm64-abis renameat,rlimit,memfd_secret --arm syscall_32.tbl --arm-unistd unistd.h
 * ```
 *
 * Each generated file's header names the kernel version, `--source`, and the git blob id of every
 * input (`git rev-parse v6.18:arch/x86/entry/syscalls/syscall_64.tbl` prints the same id), so
 * anyone can check the tables against upstream. Runs under Deno or Bun (`node:` built-ins only).
 * @module
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";

/** One row of a `.tbl` file: number, ABI, name. */
interface Row {
  readonly nr: number;
  readonly abi: string;
  readonly name: string;
}

/** An input file: its path as given, its text and its git blob id. */
interface Input {
  readonly label: string;
  readonly text: string;
  readonly blob: string;
}

function read(label: string, path: string): Input {
  const bytes = readFileSync(path);
  const blob = createHash("sha1").update(`blob ${bytes.byteLength}\0`).update(bytes).digest("hex");
  return { label, text: bytes.toString("utf8"), blob };
}

/** The rows of a syscall table (`<number> <abi> <name> [<entry point> [<compat entry point>]]`). */
function parseTbl(input: Input): Row[] {
  const rows: Row[] = [];
  input.text.split("\n").forEach((line, i) => {
    const text = line.replace(/#.*/, "").trim();
    if (text === "") return;
    const [nr, abi, name] = text.split(/\s+/);
    if (!nr || !/^\d+$/.test(nr) || !abi || !name || !/^[a-z_][a-z0-9_]*$/.test(name)) {
      throw new Error(`${input.label}:${i + 1}: not a syscall table row: ${JSON.stringify(line)}`);
    }
    rows.push({ nr: Number(nr), abi, name });
  });
  return rows;
}

/** Name → number for the rows of the given ABIs; a name twice in one table is an error. */
function table(input: Input, abis: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const row of parseTbl(input)) {
    if (!abis.includes(row.abi)) continue;
    if (out.has(row.name)) throw new Error(`${input.label}: ${row.name} appears twice for ABIs ${abis.join(",")}`);
    out.set(row.name, row.nr);
  }
  if (out.size < 100) throw new Error(`${input.label}: only ${out.size} rows for ABIs ${abis.join(",")}`);
  return out;
}

/** arm64's extra ABIs for scripts/syscall.tbl, from `syscall_abis_64 += …` in Makefile.syscalls. */
function arm64Abis(input: Input): string[] {
  const m = /^syscall_abis_64\s*\+?=\s*(.*)$/m.exec(input.text);
  if (!m) throw new Error(`${input.label}: no syscall_abis_64 line`);
  return m[1]!.trim().split(/\s+/).filter(Boolean);
}

/**
 * The ARM-private calls (`#define __ARM_NR_breakpoint (__ARM_NR_BASE+1)`, base 0x0f0000 for EABI)
 * and the aliases (`#define __NR_sync_file_range2 __NR_arm_sync_file_range`) of arm's uapi unistd.h.
 */
function armExtras(input: Input, numbers: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  const ARM_NR_BASE = 0x0f0000;
  for (const m of input.text.matchAll(/^#define\s+__ARM_NR_([a-z_0-9]+)\s+\(__ARM_NR_BASE\s*\+\s*(\d+)\)/gm)) {
    out.set(m[1]!, ARM_NR_BASE + Number(m[2]));
  }
  for (const m of input.text.matchAll(/^#define\s+__NR_([a-z_0-9]+)\s+__NR_([a-z_0-9]+)\s*$/gm)) {
    const target = numbers.get(m[2]!);
    if (target === undefined) throw new Error(`${input.label}: alias __NR_${m[1]} of unknown __NR_${m[2]}`);
    out.set(m[1]!, target);
  }
  if (out.size === 0) throw new Error(`${input.label}: no __ARM_NR_ calls found`);
  return out;
}

/** "6.18.35" from a kernel Makefile's VERSION/PATCHLEVEL/SUBLEVEL lines. */
function makefileVersion(text: string): string {
  const get = (k: string) => new RegExp(`^${k}\\s*=\\s*(\\d*)`, "m").exec(text)?.[1];
  const [v, p, s] = [get("VERSION"), get("PATCHLEVEL"), get("SUBLEVEL")];
  if (!v || !p) throw new Error("the kernel Makefile has no VERSION/PATCHLEVEL");
  return s && s !== "0" ? `${v}.${p}.${s}` : `${v}.${p}`;
}

interface Output {
  readonly file: string;
  readonly constant: string;
  readonly abi: string;
  readonly what: string;
  readonly numbers: Map<string, number>;
  /** The highest number of the regular range (ARM-private calls sit above it). */
  readonly max: number;
  readonly inputs: readonly Input[];
}

function render(out: Output, version: string, source: string): string {
  const entries = [...out.numbers].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
  const lines = [
    `// Generated by tools/gen_syscalls.ts — do not edit; run the script on a newer kernel instead.`,
    `/**`,
    ` * Syscall name → number for the ${out.abi} ABI, Linux ${version}: ${out.what}.`,
    ` *`,
    ` * Source: ${source}. Inputs (git blob ids):`,
    ...out.inputs.map((i) => ` * - ${i.label} ${i.blob}`),
    ` * @module`,
    ` */`,
    ``,
    `/** Every ${out.abi} syscall by name (${out.numbers.size} names). */`,
    `export const ${out.constant}: Readonly<Record<string, number>> = Object.freeze({`,
    ...entries.map(([name, nr]) => `  ${name}: ${nr >= 0x10000 ? `0x${nr.toString(16)}` : nr},`),
    `});`,
    ``,
    `/** The highest number of the ${out.abi} table's regular range (Linux ${version}). */`,
    `export const ${out.constant}_MAX = ${out.max};`,
    ``,
  ];
  return lines.join("\n");
}

function main(): void {
  const { values } = parseArgs({
    options: {
      linux: { type: "string" },
      version: { type: "string" },
      source: { type: "string" },
      "x86-64": { type: "string" },
      "x86-32": { type: "string" },
      generic: { type: "string" },
      "arm64-abis": { type: "string" },
      "arm64-makefile": { type: "string" },
      arm: { type: "string" },
      "arm-unistd": { type: "string" },
      out: { type: "string", default: "ffi" },
    },
  });
  const linux = values.linux;
  const path = (given: string | undefined, rel: string, flag: string) => {
    if (given) return given;
    if (linux) return join(linux, rel);
    throw new Error(`give --${flag} PATH (or --linux DIR)`);
  };
  const x64 = read(
    "arch/x86/entry/syscalls/syscall_64.tbl",
    path(values["x86-64"], "arch/x86/entry/syscalls/syscall_64.tbl", "x86-64"),
  );
  const x32tbl = read(
    "arch/x86/entry/syscalls/syscall_32.tbl",
    path(values["x86-32"], "arch/x86/entry/syscalls/syscall_32.tbl", "x86-32"),
  );
  const generic = read("scripts/syscall.tbl", path(values.generic, "scripts/syscall.tbl", "generic"));
  const arm = read("arch/arm64/tools/syscall_32.tbl", path(values.arm, "arch/arm64/tools/syscall_32.tbl", "arm"));
  const armUnistd = read(
    "arch/arm/include/uapi/asm/unistd.h",
    path(values["arm-unistd"], "arch/arm/include/uapi/asm/unistd.h", "arm-unistd"),
  );
  let extraAbis: string[];
  const abiInputs: Input[] = [];
  if (values["arm64-abis"] !== undefined) extraAbis = values["arm64-abis"].split(",").filter(Boolean);
  else {
    const mk = read(
      "arch/arm64/kernel/Makefile.syscalls",
      path(values["arm64-makefile"], "arch/arm64/kernel/Makefile.syscalls", "arm64-abis"),
    );
    extraAbis = arm64Abis(mk);
    abiInputs.push(mk);
  }
  const version = values.version ?? (linux ? makefileVersion(readFileSync(join(linux, "Makefile"), "utf8")) : "");
  if (!version) throw new Error("give --version (or --linux DIR with its Makefile)");
  const source = values.source ?? "a Linux source tree";

  const maxOf = (m: Map<string, number>) => Math.max(...m.values());
  const armRegular = table(arm, ["common"]);
  const armAll = new Map([...armRegular, ...armExtras(armUnistd, armRegular)]);
  const outputs: Output[] = [
    {
      file: "_syscalls_x86_64.ts",
      constant: "SYSCALLS_X86_64",
      abi: "x86_64",
      what: "the `common` and `64` rows of arch/x86/entry/syscalls/syscall_64.tbl",
      numbers: table(x64, ["common", "64"]),
      max: 0,
      inputs: [x64],
    },
    {
      file: "_syscalls_x32.ts",
      constant: "SYSCALLS_X32",
      abi: "x32",
      what:
        "the `common` and `x32` rows of arch/x86/entry/syscalls/syscall_64.tbl, without `__X32_SYSCALL_BIT` (0x40000000), which the filter adds",
      numbers: table(x64, ["common", "x32"]),
      max: 0,
      inputs: [x64],
    },
    {
      file: "_syscalls_x86.ts",
      constant: "SYSCALLS_X86",
      abi: "x86 (i386, `int 0x80`)",
      what: "the `i386` rows of arch/x86/entry/syscalls/syscall_32.tbl",
      numbers: table(x32tbl, ["i386"]),
      max: 0,
      inputs: [x32tbl],
    },
    {
      file: "_syscalls_aarch64.ts",
      constant: "SYSCALLS_AARCH64",
      abi: "aarch64",
      what: `the \`common\`, \`64\`, ${extraAbis.map((a) => `\`${a}\``).join(", ")} rows of scripts/syscall.tbl`,
      numbers: table(generic, ["common", "64", ...extraAbis]),
      max: 0,
      inputs: [generic, ...abiInputs],
    },
    {
      file: "_syscalls_arm.ts",
      constant: "SYSCALLS_ARM",
      abi: "arm (EABI, as aarch64's compat layer sees it)",
      what:
        "arch/arm64/tools/syscall_32.tbl, plus the ARM-private calls (`__ARM_NR_*`, above the regular range) and aliases of arch/arm/include/uapi/asm/unistd.h",
      numbers: armAll,
      max: maxOf(armRegular),
      inputs: [arm, armUnistd],
    },
  ].map((o) => ({ ...o, max: o.max || maxOf(o.numbers) }));
  for (const o of outputs) {
    const file = join(values.out!, o.file);
    writeFileSync(file, render(o, version, source));
    console.error(`${file}: ${o.numbers.size} syscalls, highest regular number ${o.max}`);
  }
}

try {
  main();
} catch (e) {
  console.error(`gen_syscalls: ${(e as Error).message}`);
  process.exit(1);
}
