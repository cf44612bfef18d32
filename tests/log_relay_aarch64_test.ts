/**
 * The aarch64 log relay (LOG_RELAY_AARCH64_HEX, ffi/log_relay_aarch64.S): its bytes are the
 * source's as assembled, and its ELF image runs under qemu-aarch64-static (a static executable:
 * qemu-user runs it directly) on the same input as the x86-64 relay run natively; both must write
 * the same log parts, timestamps aside, and timestamps of now. What this cannot show: the relay on
 * aarch64 hardware (never run there), nor started by hako from its memfd on aarch64 (the spawner
 * is tests/logs_test.ts's, x86-64 here).
 * @module
 */
import process from "node:process";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, tempDir, test } from "./_harness.ts";
import { LOG_RELAY_AARCH64_HEX, LOG_RELAY_X86_64_HEX, logRelayImage } from "../ffi/log_relay.ts";
import type { RunnerArch } from "../ffi/spawn.ts";
import { which } from "../src/process.ts";

const QEMU = "qemu-aarch64-static";
const emulated = process.arch !== "arm64";
const asTools = process.arch === "arm64" ? ["as", "objcopy"] : ["aarch64-linux-gnu-as", "aarch64-linux-gnu-objcopy"];
const missingAs = asTools.filter((t) => !which(t));
const ci = process.env.CI === "true";

test("the embedded aarch64 relay is ffi/log_relay_aarch64.S as assembled (tools/assemble.sh)", () => {
  assert(missingAs.length === 0, `CI=true and no ${missingAs.join(", ")} (apt-get install binutils-aarch64-linux-gnu)`);
  const hex = execFileSync("bash", ["tools/assemble.sh", "ffi/log_relay_aarch64.S"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  assertEquals(hex.trim(), LOG_RELAY_AARCH64_HEX);
}, {
  skip: !ci && missingAs.length > 0 && `needs ${missingAs.join(" and ")} (apt-get install binutils-aarch64-linux-gnu)`,
});

test("the aarch64 relay's image is a static aarch64 ELF (EM_AARCH64), laid out as the x86-64 one", () => {
  const a = logRelayImage(LOG_RELAY_AARCH64_HEX, "aarch64"), x = logRelayImage(LOG_RELAY_X86_64_HEX, "x86_64");
  assertEquals(new DataView(a.buffer).getUint16(18, true), 183, "EM_AARCH64");
  assertEquals(new DataView(x.buffer).getUint16(18, true), 62, "EM_X86_64");
  // the same headers but the machine and the sizes
  const headers = (img: Uint8Array) => {
    const h = img.slice(0, 64 + 3 * 56);
    h.fill(0, 18, 20);
    for (const o of [64 + 32, 64 + 40]) h.fill(0, o, o + 8); // the code segment's sizes
    return [...h].join(",");
  };
  assertEquals(headers(a), headers(x));
});

const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z[ +]/;

/** Runs `arch`'s relay image on `input` with cap `max`; returns its exit code and the log parts. */
function relay(arch: RunnerArch, dir: string, input: string, max: number) {
  const img = join(dir, `hako-log-${arch}`);
  writeFileSync(img, logRelayImage(arch === "aarch64" ? LOG_RELAY_AARCH64_HEX : LOG_RELAY_X86_64_HEX, arch));
  chmodSync(img, 0o755);
  const run = arch === "aarch64" && emulated ? `${QEMU} ${img}` : img;
  // fd 0 the input, fd 3 the directory, fd 4 (the memfd it would come from) /dev/null
  const r = spawnSync("sh", ["-c", `exec 3<"$1" 4</dev/null; exec ${run} ${max} log label < "$2"`, "sh", dir, input], {
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000,
  });
  const part = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8") : undefined);
  return { code: r.status, stderr: String(r.stderr), log: part("log"), old: part("log.1") };
}

test(
  `the aarch64 relay (${
    emulated ? "qemu" : "native"
  }) stamps every line, rotates at its cap, and writes what the x86-64 relay writes`,
  () => {
    using d = tempDir("hako-test-a64relay-");
    const input = join(d.path, "input");
    const lines = Array.from({ length: 400 }, (_, i) => `line ${i} ${"x".repeat(i % 37)}\n`).join("") + "no newline";
    writeFileSync(input, lines);
    const archs: RunnerArch[] = process.arch === "x64" ? ["aarch64", "x86_64"] : ["aarch64"];
    const before = Date.now();
    const out = archs.map((arch) => {
      const dir = join(d.path, arch);
      execFileSync("mkdir", [dir]);
      const r = relay(arch, dir, input, 4096);
      assertEquals(r.code, 0, `${arch}: ${r.stderr}`);
      assert(r.log !== undefined && r.old !== undefined, `${arch}: log and log.1`);
      for (const part of [r.log!, r.old!]) {
        assert(part.length <= 4096 + 31, `${arch}: a part of ${part.length} bytes`);
        const first = part.match(STAMP)?.[0];
        assert(first, `${arch}: a part starts with a timestamp: ${part.slice(0, 40)}`);
        const t = Date.parse(first.slice(0, 23) + "Z");
        assert(t >= before - 2000 && t <= Date.now() + 2000, `${arch}: ${first} is now`);
      }
      // without their timestamps, the parts are the input's end
      const plain = (s: string) => s.replace(/(^|\n)\d{4}-[^ +]*Z[ +]/g, "$1");
      assert(lines.endsWith(plain(r.old!) + plain(r.log!)), `${arch}: the parts are the input's end`);
      return [r.old!, r.log!].map((s) => s.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "T"));
    });
    if (out.length === 2) assertEquals(out[0], out[1], "aarch64 and x86-64 relays wrote the same parts");
  },
  {
    skip: (emulated && !which(QEMU) && `needs ${QEMU} (apt-get install qemu-user-static)`) ||
      (process.arch !== "x64" && process.arch !== "arm64" && `no relay on ${process.arch}`),
  },
);
