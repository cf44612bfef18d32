/**
 * A property test of spec validation: thousands of specs mutated from a few valid ones (keys
 * dropped, misspelt or added — `__proto__`, `constructor`, `toString` among them —, values of the
 * wrong type, huge, negative, NaN, Infinity or -0 numbers, long strings or ones with NUL bytes and
 * newlines, deeply nested arrays) must each be either refused with a `SpecError` whose every
 * problem names its field path, or accepted — and then planned and rendered (`hako plan`, text
 * and JSON) without an error. Nothing else may ever be thrown.
 *
 * The run is seeded: the seed is printed, and `HAKO_FUZZ_SEED=<seed>` replays it (with
 * `HAKO_FUZZ_CASES=<n>` for more or fewer cases). No root needed.
 */
import process from "node:process";
import { assert, isRoot, test } from "./_harness.ts";
import type { ContainerSpec } from "../src/container/spec.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";
import { planContainer, planText } from "../src/container/plan.ts";

/** mulberry32: a small seeded generator, the same sequence on Deno and Bun. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = process.env.HAKO_FUZZ_SEED !== undefined
  ? Number(process.env.HAKO_FUZZ_SEED)
  : Math.floor(Math.random() * 2 ** 32);
const CASES = Number(process.env.HAKO_FUZZ_CASES ?? 2000);

/** The valid specs mutations start from: between them, every section of a spec. */
function bases(): ContainerSpec[] {
  return [
    { name: "fz-min", rootfs: "/var/lib/hako/fuzz-none", command: ["/bin/true"] },
    {
      name: "fz-full",
      rootfs: { builder: "busybox", path: "/var/lib/hako/fuzz-busybox" },
      command: "echo hi && sleep 1",
      env: { A: "1", PATH: "/bin:/usr/bin" },
      workdir: "/tmp",
      user: { uid: 1000, gid: 1000, groups: [10, 20] },
      namespaces: ["mount", "uts", "ipc", "pid", "net"],
      hostname: "fuzz",
      readonlyRootfs: true,
      standardMounts: true,
      mounts: [
        { type: "tmpfs", target: "/tmp", options: ["size=16m", "mode=1777", "nosuid"] },
        { type: "bind", source: "/etc", target: "/mnt/etc", readonly: true },
      ],
      networkEtc: "generate",
      maskedPaths: ["/proc/kcore"],
      readonlyPaths: ["/proc/sys"],
      cgroup: {
        cpu: { quotaUs: 50_000, periodUs: 100_000, weight: 100 },
        memory: { limit: 64 * 1024 * 1024 },
        pids: { max: 100 },
        io: { weight: 100, readBps: { "8:0": 1048576 } },
        devices: [{ allow: true, type: "c", major: 10, minor: 200, access: "rwm" }],
        parent: "hako-fuzz",
      },
      capabilities: { add: ["CAP_NET_ADMIN"], drop: ["CAP_MKNOD"] },
      rlimits: { NOFILE: 1024, CORE: [0, "unlimited"] },
      noNewPrivs: true,
      seccomp: "default",
      network: {
        loopback: true,
        veth: { host: "fz-h", container: "eth0", hostAddress: "10.254.37.1/30", containerAddress: "10.254.37.2/30" },
      },
      stdio: "null",
      hooks: { bootstrap: ["/bin/true"], provision: () => {}, beforeStart: "echo hi", afterStop: ["true", "x"] },
    },
    {
      name: "fz-userns",
      rootfs: { tarball: "/var/lib/hako/fuzz.tar.gz", path: "/var/lib/hako/fuzz-tar", owner: { uid: 300000 } },
      command: ["sh", "-c", "id"],
      namespaces: ["user", "mount", "pid", "uts", { type: "ipc", join: "/proc/1/ns/ipc" }],
      idMap: { uid: { inside: 0, outside: 300000, size: 65536 }, gid: [{ min: 0, max: 999, offset: 400000 }] },
      capabilities: ["CAP_CHOWN", "kill"],
      seccomp: { defaultAction: "errno", syscalls: [{ names: ["read", "write"], action: "allow" }] },
    },
    {
      name: "fz-oci",
      rootfs: { path: "/var/lib/hako/fuzz-dir" },
      command: ["/bin/sh"],
      namespaces: ["mount", "pid"],
      capabilities: { drop: ["ALL"], add: ["CAP_KILL"] },
      seccomp: {
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [{ names: ["read", "write", "exit_group"], action: "SCMP_ACT_ALLOW" }],
      },
      cgroup: { cpuset: { cpus: "0" }, raw: { "pids.max": 50 } },
    },
  ];
}

const PROTO_KEYS = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "prototype"];
const TYPOS = ["comand", "cgroups", "capabilites", "seccom", "privileged", "nmae", "rootFs", "Env", "hostName"];

function deep(depth: number, leaf: unknown, wrap: (x: unknown) => unknown): unknown {
  let x = leaf;
  for (let i = 0; i < depth; i++) x = wrap(x);
  return x;
}

/** Values of every kind a spec should never hold where it holds them. */
function weird(rand: () => number): unknown {
  const values: (() => unknown)[] = [
    () => null,
    () => undefined,
    () => true,
    () => false,
    () => 0,
    () => -0,
    () => -1,
    () => 1.5,
    () => Number.NaN,
    () => Infinity,
    () => -Infinity,
    () => 2 ** 31,
    () => 2 ** 32,
    () => 2 ** 32 - 1,
    () => 2 ** 53,
    () => 1e308,
    () => -1e308,
    () => 12345678901234567890n,
    () => "",
    () => " ",
    () => "a\nb",
    () => "a\0b",
    () => "x".repeat(100_000),
    () => "/".repeat(5000),
    () => "ALL",
    () => "max",
    () => "unlimited",
    () => "false",
    () => "/",
    () => "..",
    () => "/a/../b",
    () => "é\u202e\u0007",
    () => "/x\x1b[31mred\x1b]0;title\x07\x9b2J",
    () => "size=1m",
    () => PROTO_KEYS[Math.floor(rand() * PROTO_KEYS.length)],
    () => [],
    () => [1],
    () => ["a"],
    () => [[]],
    () => ({}),
    () => ({ a: 1 }),
    () => JSON.parse('{"__proto__": {"x": 1}}'),
    () => deep(3000, [], (x) => [x]),
    () => deep(3000, {}, (x) => ({ a: x })),
    () => () => {},
    () => new Date(0),
    () => new Map(),
  ];
  return values[Math.floor(rand() * values.length)]!();
}

/** A mutated copy of the value (a copy keeps functions, and `__proto__` as an own key). */
function copy(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(copy);
  if (x === null || typeof x !== "object" || Object.getPrototypeOf(x) !== Object.prototype) return x;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) {
    Object.defineProperty(out, k, { value: copy(v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function set(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Every object and array in the tree (bounded: deep values the fuzz put in are not walked). */
function containers(x: unknown, depth = 0, out: (Record<string, unknown> | unknown[])[] = []) {
  if (depth > 8 || x === null || typeof x !== "object") return out;
  if (!Array.isArray(x) && Object.getPrototypeOf(x) !== Object.prototype) return out;
  out.push(x as Record<string, unknown>);
  for (const v of Object.values(x)) containers(v, depth + 1, out);
  return out;
}

function typo(rand: () => number, k: string): string {
  if (k.length < 2) return `${k}x`;
  const i = Math.floor(rand() * (k.length - 1));
  switch (Math.floor(rand() * 4)) {
    case 0:
      return k.slice(0, i) + k[i + 1] + k[i] + k.slice(i + 2); // swap
    case 1:
      return k.slice(0, i) + k.slice(i + 1); // drop
    case 2:
      return k.slice(0, i) + k[i] + k.slice(i); // double
    default:
      return k.toUpperCase();
  }
}

function mutate(rand: () => number, spec: Record<string, unknown>): void {
  const nodes = containers(spec);
  const node = nodes[Math.floor(rand() * nodes.length)]!;
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  if (Array.isArray(node)) {
    const i = Math.floor(rand() * (node.length + 1));
    switch (Math.floor(rand() * 4)) {
      case 0:
        node.splice(i, 1);
        return;
      case 1:
        node.push(weird(rand));
        return;
      case 2:
        node[i] = [node[i]];
        return;
      default:
        node[i] = weird(rand);
        return;
    }
  }
  const keys = Object.keys(node);
  const k = keys.length ? pick(keys) : "x";
  switch (Math.floor(rand() * 6)) {
    case 0:
      delete node[k];
      return;
    case 1: {
      const v = node[k];
      delete node[k];
      set(node, typo(rand, k), v);
      return;
    }
    case 2:
      set(node, rand() < 0.5 ? pick(PROTO_KEYS) : pick(TYPOS), weird(rand));
      return;
    case 3:
      set(node, k, [node[k]]);
      return;
    default:
      set(node, k, weird(rand));
      return;
  }
}

/** A short, safe description of a value for a failure message (no stack blown, no huge strings). */
function describe(x: unknown, depth = 0): string {
  if (depth > 6) return "…";
  if (typeof x === "string") return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…(${x.length})` : x);
  if (typeof x === "bigint") return `${x}n`;
  if (typeof x === "function") return "[function]";
  if (typeof x === "number") return Object.is(x, -0) ? "-0" : String(x);
  if (x === null || typeof x !== "object") return String(x);
  if (Array.isArray(x)) return `[${x.slice(0, 8).map((v) => describe(v, depth + 1)).join(", ")}]`;
  if (Object.getPrototypeOf(x) !== Object.prototype) return `[${Object.prototype.toString.call(x)}]`;
  return `{ ${Object.entries(x).map(([k, v]) => `${JSON.stringify(k)}: ${describe(v, depth + 1)}`).join(", ")} }`;
}

/** Why the outcome of `spec` breaks the property (undefined when it holds), and whether it was accepted. */
function check(spec: unknown): { why: string | undefined; accepted: boolean } {
  const why = violation(spec);
  return { why: why === ACCEPTED ? undefined : why, accepted: why === ACCEPTED };
}

const ACCEPTED = "(accepted)";

/** Why the outcome of `spec` breaks the property, {@link ACCEPTED}, or undefined when refused as it should be. */
function violation(spec: unknown): string | undefined {
  let accepted = true;
  try {
    resolveSpec(spec as ContainerSpec);
  } catch (e) {
    accepted = false;
    if (!(e instanceof SpecError)) return `resolveSpec threw ${(e as Error)?.name}: ${(e as Error)?.message}`;
    if (e.problems.length === 0) return "a SpecError without problems";
    for (const p of e.problems) {
      if (typeof p.path !== "string" || p.path === "") return `a problem without a field path: ${p.message}`;
      if (typeof p.message !== "string" || p.message === "") return `a problem without a message at ${p.path}`;
    }
  }
  if (!accepted) return undefined;
  try {
    const plan = planContainer(spec as ContainerSpec);
    const text = planText(plan);
    JSON.stringify(plan);
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]/.test(text)) return "the plan's text holds a control character";
  } catch (e) {
    return `accepted, but the plan threw ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
  // What the CLI sends the supervisor (and keeps in the state directory) is the spec as JSON.
  let json: unknown;
  try {
    json = JSON.parse(JSON.stringify(spec));
  } catch (e) {
    return `accepted, but not JSON: ${(e as Error)?.message}`;
  }
  try {
    resolveSpec(json as ContainerSpec);
  } catch (e) {
    return `accepted, but its JSON is not: ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
  return ACCEPTED;
}

test(`mutated specs are refused with a SpecError naming each field, or accepted and planned (seed ${SEED})`, () => {
  console.error(`spec fuzz: seed ${SEED}, ${CASES} cases (replay: HAKO_FUZZ_SEED=${SEED})`);
  if (isRoot) {
    // (a non-root caller is rootless: a base without a user namespace is rightly refused then)
    for (const b of bases()) assert(check(b).accepted, `base ${b.name}: ${problemsOf(b).join("; ")}`);
  }
  const rand = generator(SEED);
  const failures: string[] = [];
  let accepted = 0;
  for (let i = 0; i < CASES && failures.length < 5; i++) {
    const all = bases();
    const spec = copy(all[Math.floor(rand() * all.length)]) as Record<string, unknown>;
    const n = 1 + Math.floor(rand() * 3);
    for (let m = 0; m < n; m++) mutate(rand, spec);
    const outcome = check(spec);
    if (outcome.why) failures.push(`case ${i}: ${outcome.why}\n    spec: ${describe(spec)}`);
    else if (outcome.accepted) accepted++;
  }
  console.error(`spec fuzz: ${accepted} of ${CASES} mutated specs accepted`);
  assert(failures.length === 0, `seed ${SEED} (HAKO_FUZZ_SEED=${SEED} to replay):\n  ${failures.join("\n  ")}`);
});

function problemsOf(spec: unknown): string[] {
  try {
    resolveSpec(spec as ContainerSpec);
    return [];
  } catch (e) {
    return e instanceof SpecError ? e.problems.map((p) => `${p.path}: ${p.message}`) : [String(e)];
  }
}

test("the plan's text escapes what a spec put in it that a terminal would act on", () => {
  const spec: ContainerSpec = {
    name: "fz-esc",
    rootfs: "/var/lib/hako/fuzz-\x1b[2J",
    command: ["/bin/echo", "\x1b]0;owned\x07", "a\u202eb"],
    env: { A: "\x9b31m" },
    hostname: "esc",
    mounts: [{ type: "tmpfs", target: "/x\x1b[31m\tred" }],
    hooks: { afterStop: "echo a\nb" },
  };
  const text = planText(planContainer(spec));
  // deno-lint-ignore no-control-regex
  assert(!/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]/.test(text), text);
  assert(text.includes("\\u001b[2J") && text.includes("/x\\u001b[31m\\tred"), text);
}, { skip: isRoot ? false : "a non-root caller is rootless: this spec needs a user namespace then" });
