/**
 * Root's cache of compiled seccomp programs across processes (src/seccomp/_cache.ts): a hit is the
 * program a compile gives, any change of what the program depends on misses, and nothing planted,
 * forged, damaged or reached through something others can change is ever used. The entry format
 * and the compiler's identity need no root; the cache itself is root's only, so those tests need
 * root (they use temp directories; one uses the real /run/hako/seccomp). The last one starts two
 * busybox containers, the second under a filter read from the cache.
 * @module
 */
import process from "node:process";
import { deepEqual, equal, notDeepEqual, ok } from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { needsRoot, runtime, tempDir, test } from "./_harness.ts";
import { compileSeccomp, DEFAULT_SECCOMP_PROFILE, type SeccompProfile } from "../src/seccomp.ts";
import {
  cachedCompile,
  cacheKey,
  crc32,
  decodeEntry,
  DEFAULT_SECCOMP_CACHE_DIR,
  encodeEntry,
  entryName,
  SECCOMP_COMPILER_ID,
  snapshotProfile,
} from "../src/seccomp/_cache.ts";
import { targetOf } from "../src/seccomp/_compile.ts";
import { run } from "../src/container/container.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { renderSeccompCompilerId, SECCOMP_COMPILER_ID_FILE, seccompCompilerId } from "../tools/gen_seccomp_id.ts";

const ARCH = "x86_64" as const;
const CAPS = ["CAP_CHOWN", "CAP_KILL"];
const KERNEL = "6.18.0";

/** A fresh, unfrozen copy of docker's default profile (the in-process cache keeps frozen ones). */
function dockerProfile(): SeccompProfile {
  return JSON.parse(JSON.stringify(DEFAULT_SECCOMP_PROFILE)) as SeccompProfile;
}

/** A small profile, its errno telling copies apart. */
function smallProfile(errno = 1): SeccompProfile {
  return { defaultAction: "allow", syscalls: [{ names: ["mkdir", "mkdirat"], action: "errno", errno }] };
}

interface Inputs {
  readonly arch?: "x86_64" | "aarch64";
  readonly capabilities?: readonly string[];
  readonly kernel?: string;
  readonly compilerId?: string;
  readonly maxEntries?: number;
  readonly maxBytes?: number;
}

/** What compileSeccomp gives without any cache. */
function plain(profile: SeccompProfile, i: Inputs = {}): Uint8Array {
  return compileSeccomp(profile, {
    arch: i.arch ?? ARCH,
    capabilities: i.capabilities ?? CAPS,
    kernel: i.kernel ?? KERNEL,
  });
}

/** A compile through the cache in `dir`: the program and "hit" / "miss", or undefined when the cache is not used. */
function throughCache(dir: string, profile: SeccompProfile, i: Inputs = {}) {
  const arch = i.arch ?? ARCH, capabilities = i.capabilities ?? CAPS, kernel = i.kernel ?? KERNEL;
  return cachedCompile(
    profile,
    targetOf(arch, capabilities, kernel),
    (p) => compileSeccomp(p, { arch, capabilities, kernel }),
    {
      dir,
      ...(i.compilerId ? { compilerId: i.compilerId } : {}),
      ...(i.maxEntries ? { maxEntries: i.maxEntries } : {}),
      ...(i.maxBytes ? { maxBytes: i.maxBytes } : {}),
    },
  );
}

/** The key and entry file name for `profile` with the default inputs. */
function keyOf(profile: SeccompProfile): { key: string; name: string } {
  const t = targetOf(ARCH, CAPS, KERNEL);
  const key = cacheKey(SECCOMP_COMPILER_ID, ARCH, t.capabilities, t.kernel, snapshotProfile(profile)!.text);
  return { key, name: entryName(new TextEncoder().encode(key)) };
}

/** A well-formed entry that would hand `profile` the program `program`. */
function plantedEntry(profile: SeccompProfile, program: Uint8Array): { name: string; bytes: Uint8Array } {
  const { key, name } = keyOf(profile);
  return { name, bytes: encodeEntry(new TextEncoder().encode(key), program) };
}

/** A program that allows everything (what a planted entry would like a container to run under). */
const ALLOW_ALL = compileSeccomp({ defaultAction: "allow", syscalls: [] }, { arch: ARCH });

/** Runs `fn` with HAKO_SECCOMP_CACHE and HAKO_SECCOMP_CACHE_DIR as given (undefined: unset), then restores them. */
async function withCacheEnv<T>(env: { on?: string; dir?: string }, fn: () => T | Promise<T>): Promise<T> {
  const saved = [process.env.HAKO_SECCOMP_CACHE, process.env.HAKO_SECCOMP_CACHE_DIR] as const;
  const set = (name: string, v: string | undefined) => {
    if (v === undefined) delete process.env[name];
    else process.env[name] = v;
  };
  set("HAKO_SECCOMP_CACHE", env.on);
  set("HAKO_SECCOMP_CACHE_DIR", env.dir);
  try {
    return await fn();
  } finally {
    set("HAKO_SECCOMP_CACHE", saved[0]);
    set("HAKO_SECCOMP_CACHE_DIR", saved[1]);
  }
}

/** A cache directory's path in a temp dir (removed afterwards), with the cache's variables unset. */
function withCache(fn: (dir: string, tmp: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    using tmp = tempDir("hako-test-bpfcache-");
    const dir = join(tmp.path, "seccomp");
    await withCacheEnv({}, () => fn(dir, tmp.path));
  };
}

/** Runs `fn` with the process's euid reading as `uid`. */
function asEuid<T>(uid: number, fn: () => T): T {
  const p = process as { geteuid?: () => number };
  const saved = p.geteuid;
  p.geteuid = () => uid;
  try {
    return fn();
  } finally {
    p.geteuid = saved;
  }
}

// ---------------------------------------------------------------------------------------------
// No root needed

test("the compiler's identity constant is the hash of the compiler's sources (run tools/gen_seccomp_id.ts after changing them)", () => {
  equal(
    readFileSync(SECCOMP_COMPILER_ID_FILE, "utf8"),
    renderSeccompCompilerId(),
    "run: tools/deno run -A tools/gen_seccomp_id.ts",
  );
  equal(SECCOMP_COMPILER_ID, seccompCompilerId());
});

test("entry names and checksums are zlib's CRC-32 under Deno and Bun alike (one cache for both)", () => {
  equal(crc32(new TextEncoder().encode("hello")), 0x3610a686);
  equal(crc32(new Uint8Array(0)), 0);
  equal(crc32(Uint8Array.from({ length: 10000 }, (_, i) => (i * 7 + 3) & 0xff)), 0xd5e50a16);
  equal(entryName(new TextEncoder().encode("hello")), "3610a686-5.bpf");
});

test("an entry decodes to its program only with its exact key, whole and undamaged", () => {
  const program = plain(smallProfile());
  const key = "a key \u00e9 \u{1F600}";
  const bytes = encodeEntry(new TextEncoder().encode(key), program);
  deepEqual(decodeEntry(bytes, key), program);
  equal(decodeEntry(bytes, "a key \u00e9 \u{1F601}"), undefined, "another key of the same length");
  equal(decodeEntry(bytes, `${key}x`), undefined, "a longer key");
  equal(decodeEntry(bytes.subarray(0, bytes.length - 1), key), undefined, "truncated by a byte");
  equal(decodeEntry(bytes.subarray(0, bytes.length - 8), key), undefined, "truncated by an instruction");
  const grown = new Uint8Array(bytes.length + 8);
  grown.set(bytes);
  equal(decodeEntry(grown, key), undefined, "an instruction more");
  const flipped = bytes.slice();
  flipped[flipped.length - 3]! ^= 0x40;
  equal(decodeEntry(flipped, key), undefined, "a program byte changed (checksum)");
  const keyFlip = bytes.slice();
  keyFlip[bytes.indexOf(10) + 2]! ^= 0x01;
  equal(decodeEntry(keyFlip, key), undefined, "a key byte changed");
  equal(decodeEntry(new Uint8Array(0), key), undefined, "empty");
  equal(
    decodeEntry(new TextEncoder().encode("hako-seccomp-bpf 1 0 7 0\n1234567"), ""),
    undefined,
    "not 8-byte instructions",
  );
  const big = new Uint8Array(4097 * 8);
  equal(decodeEntry(encodeEntry(new Uint8Array(0), big), ""), undefined, "more than 4096 instructions");
});

test("an entry's stored key is compared byte for byte: bytes that are not UTF-8 never match", () => {
  const program = plain(smallProfile());
  const key = "k\uFFFD";
  // "k" then a lone continuation byte: a lenient decoder would read it as "k\uFFFD"
  const bytes = encodeEntry(new Uint8Array([0x6b, 0x80, 0x80]), program);
  equal(decodeEntry(bytes, key), undefined);
});

test("a profile's snapshot is plain data its text describes; different profiles have different texts", () => {
  const withBig: SeccompProfile = {
    defaultAction: "allow",
    syscalls: [{ names: ["socket"], action: "errno", args: [{ index: 0, op: "eq", value: 1n << 60n }] }],
  };
  const asNumberString: SeccompProfile = {
    defaultAction: "allow",
    syscalls: [{ names: ["socket"], action: "errno", args: [{ index: 0, op: "eq", value: `${1n << 60n}n` as never }] }],
  };
  const texts = [smallProfile(1), smallProfile(2), withBig, asNumberString, dockerProfile()].map((p) =>
    snapshotProfile(p)!.text
  );
  equal(new Set(texts).size, texts.length);
  const snap = snapshotProfile(withBig)!;
  deepEqual(snap.copy, withBig);
  ok(snap.copy !== withBig);
  // a getter is read once: the copy is what the text says, whatever it answers next
  let reads = 0;
  const shifty = {
    defaultAction: "allow",
    get syscalls() {
      return reads++ === 0 ? [] : [{ names: ["mkdir"], action: "kill" }];
    },
  } as unknown as SeccompProfile;
  const s = snapshotProfile(shifty)!;
  deepEqual(s.copy.syscalls, []);
  equal(s.text, 'j{"defaultAction":"allow","syscalls":[]}');
  equal(snapshotProfile(new Map() as never)?.copy instanceof Map, false);
});

test(
  "the cache is root's only, and HAKO_SECCOMP_CACHE=0 turns it off",
  withCache(async (dir) => {
    asEuid(1000, () => equal(throughCache(dir, smallProfile()), undefined));
    equal(existsSync(dir), false, "nothing made for a non-root user");
    await withCacheEnv({ on: "0" }, () => asEuid(0, () => equal(throughCache(dir, smallProfile()), undefined)));
    equal(existsSync(dir), false);
  }),
);

// ---------------------------------------------------------------------------------------------
// As root

test(
  "a miss compiles and stores a 0600 entry in a 0700 directory; a hit gives the same bytes as a compile",
  withCache((dir) => {
    const profile = dockerProfile();
    const first = throughCache(dir, profile)!;
    equal(first.outcome, "miss");
    deepEqual(first.program, plain(profile));
    const st = lstatSync(dir);
    equal(st.mode & 0o7777, 0o700);
    equal(st.uid, 0);
    const files = readdirSync(dir);
    deepEqual(files, [keyOf(profile).name]);
    equal(lstatSync(join(dir, files[0]!)).mode & 0o7777, 0o600);
    const again = throughCache(dir, dockerProfile())!;
    equal(again.outcome, "hit");
    deepEqual(again.program, plain(profile));
    // through compileSeccomp, as validate.ts calls it
    deepEqual(
      compileSeccomp(dockerProfile(), { arch: ARCH, capabilities: CAPS, kernel: KERNEL, cache: { dir } }),
      first.program,
    );
  }),
  { skip: needsRoot },
);

test(
  "each change of what the program depends on misses: profile, arch, capabilities, kernel, compiler",
  withCache((dir) => {
    const base = dockerProfile();
    equal(throughCache(dir, base)!.outcome, "miss");
    equal(throughCache(dir, base)!.outcome, "hit");
    const changed = dockerProfile() as unknown as { syscalls: Array<{ errno?: number }> };
    changed.syscalls[0]!.errno = 38;
    const cases: Array<[string, SeccompProfile, Inputs]> = [
      ["profile", changed as unknown as SeccompProfile, {}],
      ["arch", base, { arch: "aarch64" }],
      ["capabilities", base, { capabilities: [...CAPS, "CAP_SYS_ADMIN"] }],
      ["kernel", base, { kernel: "4.0" }],
      ["compiler", base, { compilerId: "another compiler" }],
    ];
    for (const [what, profile, inputs] of cases) {
      const r = throughCache(dir, profile, inputs)!;
      equal(r.outcome, "miss", what);
      deepEqual(r.program, plain(profile, inputs), what);
      equal(throughCache(dir, profile, inputs)!.outcome, "hit", `${what}, again`);
    }
    notDeepEqual(
      plain(base, { capabilities: [...CAPS, "CAP_SYS_ADMIN"] }),
      plain(base),
      "the capability changes the program",
    );
    // the same capabilities in another order, spelled otherwise, are the same input
    equal(throughCache(dir, base, { capabilities: ["kill", "CAP_CHOWN"] })!.outcome, "hit");
  }),
  { skip: needsRoot },
);

test(
  "a planted entry is used only in root's own directory: never where others could have put it",
  withCache((dir, tmp) => {
    const profile = smallProfile();
    const planted = plantedEntry(profile, ALLOW_ALL);
    const plant = (d: string) => {
      mkdirSync(d, { recursive: true, mode: 0o700 });
      writeFileSync(join(d, planted.name), planted.bytes, { mode: 0o600 });
    };
    // (the plant is well-formed: in root's 0700 directory, as root's 0600 file, it is a hit —
    // which is the point of the cache, and the proof the cases below refuse it for their reason)
    plant(dir);
    deepEqual(throughCache(dir, profile)?.program, ALLOW_ALL);
    rmSync(dir, { recursive: true });
    const refused = (what: string, d: string) => {
      const r = throughCache(d, profile);
      ok(r === undefined || r.outcome === "miss", what);
      deepEqual(
        compileSeccomp(profile, { arch: ARCH, capabilities: CAPS, kernel: KERNEL, cache: { dir: d } }),
        plain(profile),
        what,
      );
    };

    plant(dir);
    chmodSync(dir, 0o770);
    refused("a group-writable directory", dir);
    chmodSync(dir, 0o700);
    chownSync(dir, 65534, 65534);
    refused("a directory of another user's", dir);
    rmSync(dir, { recursive: true });

    const real = join(tmp, "elsewhere");
    plant(real);
    symlinkSync(real, dir);
    refused("a symlinked directory", dir);
    unlinkSync(dir);
    rmSync(real, { recursive: true });

    const open = join(tmp, "open");
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    plant(join(open, "seccomp"));
    refused("a directory on the way writable by others (not sticky)", join(open, "seccomp"));
    rmSync(open, { recursive: true });

    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(tmp, "target.bpf"), planted.bytes, { mode: 0o600 });
    symlinkSync(join(tmp, "target.bpf"), join(dir, planted.name));
    refused("a symlinked entry", dir);
    rmSync(dir, { recursive: true });

    plant(dir);
    chownSync(join(dir, planted.name), 65534, 65534);
    refused("an entry of another user's", dir);
    rmSync(dir, { recursive: true });

    plant(dir);
    chmodSync(join(dir, planted.name), 0o620);
    refused("a group-writable entry", dir);
    rmSync(dir, { recursive: true });

    mkdirSync(dir, { mode: 0o700 });
    execFileSync("mkfifo", ["-m", "600", join(dir, planted.name)]);
    refused("a FIFO entry (opened without blocking)", dir);
    ok(lstatSync(join(dir, planted.name)).isFile(), "the FIFO was replaced by an entry");
  }),
  { skip: needsRoot },
);

test(
  "an entry under the right name whose stored key is another profile's (a forged collision) is not used, and is replaced",
  withCache((dir) => {
    const profile = smallProfile(1), other = smallProfile(2);
    const { name } = keyOf(profile);
    const otherKey = keyOf(other).key;
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, name), encodeEntry(new TextEncoder().encode(otherKey), ALLOW_ALL), { mode: 0o600 });
    const r = throughCache(dir, profile)!;
    equal(r.outcome, "miss");
    deepEqual(r.program, plain(profile));
    equal(throughCache(dir, profile)!.outcome, "hit", "replaced by the right entry");
  }),
  { skip: needsRoot },
);

test(
  "the cache stays bounded: past its entry limit the oldest written go first, a dead writer's temporary files after a minute",
  withCache((dir) => {
    const limit = { maxEntries: 3 };
    const names: string[] = [];
    for (let i = 1; i <= 3; i++) {
      equal(throughCache(dir, smallProfile(i), limit)!.outcome, "miss");
      names.push(keyOf(smallProfile(i)).name);
      utimesSync(join(dir, names[i - 1]!), 1000 + i, 1000 + i); // (written in this order)
    }
    const dead = join(dir, ".x.bpf.1.1.dead.tmp"), live = join(dir, ".y.bpf.1.2.live.tmp");
    writeFileSync(dead, "half", { mode: 0o600 });
    utimesSync(dead, 1000, 1000);
    writeFileSync(live, "half", { mode: 0o600 });
    writeFileSync(join(dir, "not-an-entry"), "x", { mode: 0o600 });
    equal(throughCache(dir, smallProfile(4), limit)!.outcome, "miss");
    deepEqual(
      readdirSync(dir).sort(),
      [".y.bpf.1.2.live.tmp", keyOf(smallProfile(4)).name, names[1], names[2], "not-an-entry"].sort(),
      "the oldest entry and the dead writer's file are gone; the rest untouched",
    );
    equal(throughCache(dir, smallProfile(4), limit)!.outcome, "hit", "the newest is kept");
    equal(throughCache(dir, smallProfile(1), limit)!.outcome, "miss", "the oldest was removed");
    // a byte limit too: one entry's worth keeps only the one just written
    equal(throughCache(dir, smallProfile(5), { maxBytes: 1 })!.outcome, "miss");
    deepEqual(readdirSync(dir).filter((n) => n.endsWith(".bpf")), [keyOf(smallProfile(5)).name]);
  }),
  { skip: needsRoot },
);

test(
  "a truncated or damaged entry is not used, and is replaced",
  withCache((dir) => {
    const profile = dockerProfile();
    const good = plantedEntry(profile, plain(profile));
    mkdirSync(dir, { mode: 0o700 });
    const path = join(dir, good.name);
    const damaged: Array<[string, Uint8Array]> = [
      ["cut in the program", good.bytes.subarray(0, good.bytes.length - 5)],
      ["cut by an instruction", good.bytes.subarray(0, good.bytes.length - 8)],
      ["cut in the key", good.bytes.subarray(0, 200)],
      [
        "a program byte flipped",
        (() => {
          const b = good.bytes.slice();
          b[b.length - 1]! ^= 1;
          return b;
        })(),
      ],
      ["empty", new Uint8Array(0)],
    ];
    for (const [what, bytes] of damaged) {
      writeFileSync(path, bytes, { mode: 0o600 });
      const r = throughCache(dir, profile)!;
      equal(r.outcome, "miss", what);
      deepEqual(r.program, plain(profile), what);
      deepEqual(new Uint8Array(readFileSync(path)), good.bytes, `${what}: replaced`);
    }
  }),
  { skip: needsRoot },
);

test(
  "an entry that cannot be written (its name taken by a directory) costs the cache, never the compile",
  withCache((dir) => {
    const profile = smallProfile();
    mkdirSync(join(dir, keyOf(profile).name), { recursive: true, mode: 0o700 });
    for (let i = 0; i < 2; i++) {
      const r = throughCache(dir, profile)!;
      equal(r.outcome, "miss");
      deepEqual(r.program, plain(profile));
    }
    deepEqual(readdirSync(dir), [keyOf(profile).name], "no temporary file left behind");
  }),
  { skip: needsRoot },
);

test(
  "a fleet of processes starting at once leaves one whole entry and no temporary file",
  withCache(async (dir) => {
    const writer = fileURLToPath(new URL("./_seccomp_cache_writer.ts", import.meta.url));
    const at = String(Date.now() + 1500);
    const argv = runtime === "deno" ? ["run", "-A", writer, dir, at] : [writer, dir, at];
    const outs = await Promise.all(Array.from({ length: 4 }, () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "inherit"] });
        let out = "";
        child.stdout.on("data", (d) => (out += d));
        child.on("error", reject);
        child.on("close", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`writer exited ${code}`))));
      })));
    const expected = compileSeccomp(dockerProfile(), { arch: "x86_64", capabilities: ["CAP_CHOWN"] });
    for (const out of outs) ok(/^(hit|miss) \d+$/.test(out) && out.endsWith(` ${expected.length}`), out);
    const files = readdirSync(dir);
    equal(files.length, 1, files.join(" "));
    ok(files[0]!.endsWith(".bpf"));
    const r = cachedCompile(
      dockerProfile(),
      targetOf("x86_64", ["CAP_CHOWN"]),
      () => {
        throw new Error("the entry should have been a hit");
      },
      { dir },
    )!;
    deepEqual(r.program, expected);
  }),
  { skip: needsRoot },
);

test(
  "the real location: /run/hako/seccomp, root's and 0700, holds what a compile with cache: true stored",
  async () => {
    await withCacheEnv({}, realLocation);
  },
  { skip: needsRoot },
);

function realLocation(): void {
  // a profile of this test's own (its errno is unique), so its entry is removed after
  const profile = smallProfile(1000 + Math.floor(Math.random() * 3000));
  const t = targetOf(ARCH, CAPS, KERNEL);
  const key = cacheKey(SECCOMP_COMPILER_ID, ARCH, t.capabilities, t.kernel, snapshotProfile(profile)!.text);
  const entry = join(DEFAULT_SECCOMP_CACHE_DIR, entryName(new TextEncoder().encode(key)));
  try {
    const program = compileSeccomp(profile, { arch: ARCH, capabilities: CAPS, kernel: KERNEL, cache: true });
    deepEqual(program, plain(profile));
    const st = lstatSync(DEFAULT_SECCOMP_CACHE_DIR);
    ok(st.isDirectory());
    equal(st.uid, 0);
    equal(st.mode & 0o077, 0, "not open to group or others");
    const e = lstatSync(entry);
    ok(e.isFile());
    equal(e.mode & 0o7777, 0o600);
    deepEqual(compileSeccomp(profile, { arch: ARCH, capabilities: CAPS, kernel: KERNEL, cache: true }), program);
  } finally {
    rmSync(entry, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// A container (root, busybox)

const containerSkip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

test(
  "a container started from a cached filter still has its filter: the second run is a hit and still refuses mkdir",
  async () => {
    using tmp = tempDir("hako-test-bpfcache-");
    chmodSync(tmp.path, 0o755);
    const cache = join(tmp.path, "seccomp");
    await withCacheEnv({ dir: cache }, async () => {
      // EACCES (13), not the default profile's EPERM: the container's errno tells whose filter it runs under
      const own: SeccompProfile = {
        defaultAction: "allow",
        syscalls: [{ names: process.arch === "x64" ? ["mkdir", "mkdirat"] : ["mkdirat"], action: "errno", errno: 13 }],
      };
      const script = "grep -Eq '^Seccomp:[[:space:]]+2$' /proc/self/status || exit 3; " +
        "mkdir /tmp/refused 2>/tmp/err && exit 4; grep -q 'Permission denied' /tmp/err || exit 5; exit 0";
      const spec = () => ({
        name: `hako-test-bpfcache-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
        rootfs: { builder: "busybox" as const, path: join(tmp.path, "rootfs") },
        command: ["sh", "-c", script],
        seccomp: own,
      });
      equal((await run(spec())).code, 0, "first run (a miss: compiled and stored)");
      const [entry, ...more] = readdirSync(cache);
      deepEqual(more, []);
      const before = lstatSync(join(cache, entry!));
      equal((await run(spec())).code, 0, "second run (a hit)");
      const after = lstatSync(join(cache, entry!));
      equal(after.ino, before.ino, "the entry was read, not written again");
      deepEqual(readdirSync(cache), [entry]);
    });
  },
  { skip: containerSkip },
);
