/**
 * The check that machine code hako embeds as hex is its `.S` source as assembled by
 * tools/assemble.sh (the native runner, the log relay, the fork pass): one test per source.
 * @module
 */
import process from "node:process";
import { execFileSync } from "node:child_process";
import { assert, assertEquals, test } from "./_harness.ts";
import { which } from "../src/process.ts";

/** The binutils tools/assemble.sh uses for `arch`: the host's own on that host, else the cross ones. */
function assembler(arch: "x86_64" | "aarch64"): { tools: string[]; pkg: string } {
  if (process.arch === (arch === "x86_64" ? "x64" : "arm64")) return { tools: ["as", "objcopy"], pkg: "binutils" };
  return {
    tools: [`${arch}-linux-gnu-as`, `${arch}-linux-gnu-objcopy`],
    pkg: `binutils-${arch.replace("_", "-")}-linux-gnu`,
  };
}

/**
 * Declares "the embedded WHAT is SRC as assembled": `hex` must be what tools/assemble.sh prints for
 * `src` (the architecture from its name). Skips where the assembler is missing, but under CI=true
 * (tests/setup.sh installs it) a missing one fails.
 */
export function assembledTest(what: string, src: string, hex: string): void {
  const { tools, pkg } = assembler(src.endsWith("_aarch64.S") ? "aarch64" : "x86_64");
  const missing = tools.filter((t) => !which(t));
  const ci = process.env.CI === "true";
  test(`the embedded ${what} is ${src} as assembled (tools/assemble.sh)`, () => {
    assert(missing.length === 0, `CI=true and no ${missing.join(", ")} (apt-get install ${pkg})`);
    const out = execFileSync("bash", ["tools/assemble.sh", src], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    assertEquals(out.trim(), hex);
  }, { skip: !ci && missing.length > 0 && `needs ${missing.join(" and ")} (apt-get install ${pkg})` });
}
