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
import { assembledTest } from "./_assembled.ts";
import { LOG_RELAY_AARCH64_HEX, LOG_RELAY_X86_64_HEX, logRelayImage } from "../ffi/log_relay.ts";
import type { RunnerArch } from "../ffi/spawn.ts";
import { which } from "../src/process.ts";

const QEMU = "qemu-aarch64-static";
const emulated = process.arch !== "arm64";

assembledTest("aarch64 relay", "ffi/log_relay_aarch64.S", LOG_RELAY_AARCH64_HEX);

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

/**
 * Runs `arch`'s relay image on a pipe whose read end (the relay's file description) python makes
 * non-blocking once the relay has started — what `hako attach` does to a pty master the relay
 * reads — then writes two lines apart; the relay's exit code and log.
 */
function relayMadeNonBlocking(arch: RunnerArch, dir: string) {
  const img = join(dir, `hako-log-${arch}`);
  writeFileSync(img, logRelayImage(arch === "aarch64" ? LOG_RELAY_AARCH64_HEX : LOG_RELAY_X86_64_HEX, arch));
  chmodSync(img, 0o755);
  const argv = [...(arch === "aarch64" && emulated ? [QEMU] : []), img, "4096", "log", "label"];
  const script = `
import fcntl, json, os, subprocess, sys, time
r, w = (os.dup2(f, 20 + i) for i, f in enumerate(os.pipe()))  # (above 3 and 4)
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.dup2(d, 3); null = os.open("/dev/null", os.O_RDONLY); os.dup2(null, 4)
p = subprocess.Popen(json.loads(sys.argv[2]), stdin=r, pass_fds=(3, 4))
time.sleep(1.5)  # its fcntl(0, F_SETFL, 0) is done
fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_NONBLOCK)
os.write(w, b"one\\n"); time.sleep(0.5)
alive = p.poll() is None
os.write(w, b"two\\n"); time.sleep(0.5)
os.close(w); os.close(r)
print(json.dumps({"alive": alive, "code": p.wait(timeout=20)}))
`;
  const r = spawnSync("python3", ["-c", script, dir, JSON.stringify(argv)], { encoding: "utf8", timeout: 60_000 });
  const log = existsSync(join(dir, "log")) ? readFileSync(join(dir, "log"), "utf8") : "";
  return { ...(JSON.parse(r.stdout || "{}") as { alive?: boolean; code?: number }), stderr: r.stderr, log };
}

test(
  "a relay whose input another holder made non-blocking waits for more (EAGAIN is not the end), on x86-64 and aarch64",
  () => {
    using d = tempDir("hako-test-nbrelay-");
    const archs: RunnerArch[] = process.arch === "x64" ? ["aarch64", "x86_64"] : ["aarch64"];
    for (const arch of archs) {
      const dir = join(d.path, arch);
      execFileSync("mkdir", [dir]);
      const r = relayMadeNonBlocking(arch, dir);
      assertEquals([r.alive, r.code], [true, 0], `${arch}: still reading after an EAGAIN, then 0 at EOF: ${r.stderr}`);
      assertEquals(r.log.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z /g, ""), "one\ntwo\n", `${arch}: both lines logged`);
    }
  },
  {
    skip: (emulated && !which(QEMU) && `needs ${QEMU} (apt-get install qemu-user-static)`) ||
      (process.arch !== "x64" && process.arch !== "arm64" && `no relay on ${process.arch}`) ||
      (spawnSync("python3", ["-c", "import fcntl"]).status !== 0 && "needs python3 (to share the relay's fd)"),
  },
);
