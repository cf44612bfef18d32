/**
 * The supervisor's socket under attack: random, malformed, huge, partial and hostile lines. Each
 * line gets an answer (a `ProtocolError` or the request's own error), a line past the limit gets
 * one and a closed connection, a client that floods without reading is cut off, connections past
 * the limit are refused — and meanwhile another client's pings are all answered, nothing is
 * created, and the supervisor never exits. The supervisor runs under the tests' runtime.
 *
 * Random input comes from a seeded generator: a failure prints its seed; `HAKO_TEST_SEED=N`
 * replays it.
 * @module
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { openSync, readdirSync, readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { needsRoot, test } from "./_harness.ts";
import { alive, cliArgv, connect, supervisorLab, until } from "./_supervisor_lab.ts";
import { LineReader, MAX_LINE_BYTES } from "../src/supervisor/protocol.ts";
import { requestProblem } from "../src/supervisor/supervisor.ts";

const enc = new TextEncoder();

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.HAKO_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));

// ---- pure ---------------------------------------------------------------------------------------

test("LineReader: lines cut anywhere (inside UTF-8 too) come out whole; blank ones are skipped", () => {
  const input = enc.encode('ping\n\n  \néè→ 🐟\n{"id":1}\r\nlast');
  for (let cut = 1; cut <= input.length; cut++) {
    const r = new LineReader();
    const lines: string[] = [];
    for (let i = 0; i < input.length; i += cut) lines.push(...r.push(input.subarray(i, i + cut)));
    assert.deepEqual(lines, ["ping", "éè→ 🐟", '{"id":1}\r'], `pieces of ${cut}`);
  }
  // A bad byte becomes U+FFFD; the line still comes.
  assert.deepEqual(new LineReader().push(new Uint8Array([0x61, 0xff, 0x0a])), ["a\ufffd"]);
});

test("LineReader: a line longer than the limit is never held; the reader stops there", () => {
  const r = new LineReader({ maxLineBytes: 10 });
  assert.deepEqual(r.push("0123456789\nabc"), ["0123456789"], "a line of exactly the limit is fine");
  assert.equal(r.overflowed, false);
  assert.deepEqual(r.push("defghijk"), [], "11 bytes without a newline: over");
  assert.equal(r.overflowed, true);
  assert.deepEqual(r.push("\nmore\n"), [], "nothing after");
  // The default: 100 MB without a newline, in 64 KiB pieces, stops after 1 MiB.
  const big = new LineReader();
  const piece = new Uint8Array(65536).fill(0x78);
  let pushed = 0;
  while (!big.overflowed && pushed < 100e6) {
    big.push(piece);
    pushed += piece.length;
  }
  assert.ok(big.overflowed && pushed <= MAX_LINE_BYTES + piece.length, `stopped after ${pushed} bytes`);
});

/** A random JSON value, `depth` levels at most. */
function randomValue(rand: () => number, depth: number): unknown {
  const k = Math.floor(rand() * (depth > 0 ? 9 : 6));
  switch (k) {
    case 0:
      return null;
    case 1:
      return rand() < 0.5;
    case 2:
      return [0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, Math.floor(rand() * 1e9)][Math.floor(rand() * 7)];
    case 3:
      return randomString(rand, 12);
    case 4:
      return ["", "ping", "start", "__proto__", "constructor", "../..", "\u0000", "🐟"][Math.floor(rand() * 8)];
    case 5:
      return Math.floor(rand() * 10);
    case 6:
    case 7:
      return randomObject(rand, depth - 1);
    default:
      return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth - 1));
  }
}

/** Letters and digits only: never a path or a name that could make something on the host. */
function randomString(rand: () => number, max: number): string {
  const abc = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from({ length: Math.floor(rand() * max) }, () => abc[Math.floor(rand() * abc.length)]).join("");
}

const SPEC_KEYS = ["name", "command", "env", "mounts", "cgroup", "hooks", "namespaces", "user", "cwd", "stdio"];

function randomObject(rand: () => number, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 5); i > 0; i--) {
    const key = rand() < 0.5 ? SPEC_KEYS[Math.floor(rand() * SPEC_KEYS.length)]! : randomString(rand, 8);
    o[key] = randomValue(rand, depth);
  }
  if (rand() < 0.1) o["__proto__"] = { polluted: true };
  return o;
}

/**
 * A random request line (no newline in it): garbage bytes, JSON that is not a request, requests
 * with wrong types, and start requests whose spec is random (never a valid rootfs: a random spec
 * must not make anything on the host).
 */
function randomLine(rand: () => number, id: number): Uint8Array {
  const kind = rand();
  if (kind < 0.15) {
    // Bytes: NULs, bad UTF-8, control characters, no newline.
    return Uint8Array.from({ length: 1 + Math.floor(rand() * 200) }, () => {
      const b = Math.floor(rand() * 256);
      return b === 0x0a ? 0x0b : b;
    });
  }
  if (kind < 0.3) return enc.encode(JSON.stringify(randomValue(rand, 3)) ?? "undefined");
  if (kind < 0.4) return enc.encode(JSON.stringify(randomValue(rand, 3)).slice(0, 1 + Math.floor(rand() * 20)));
  const req: Record<string, unknown> = rand() < 0.8 ? { id } : { id: randomValue(rand, 1) };
  req.op = rand() < 0.6 ? "start" : rand() < 0.5 ? "ping" : randomValue(rand, 1);
  if (rand() < 0.8) {
    req.spec = rand() < 0.8 ? { ...randomObject(rand, 3), rootfs: randomValue(rand, 0) } : randomValue(rand, 2);
  }
  if (rand() < 0.2) req.specFile = randomValue(rand, 1);
  return enc.encode(JSON.stringify(req));
}

test(`requestProblem never throws on random JSON (seed ${SEED})`, () => {
  const rand = prng(SEED);
  for (let i = 0; i < 20_000; i++) {
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder().decode(randomLine(rand, i)));
    } catch {
      continue;
    }
    const problem = requestProblem(value);
    assert.ok(problem === undefined || typeof problem === "string");
  }
});

// ---- against a running supervisor -----------------------------------------------------------------

/** A client that counts the answer lines it gets. */
async function client(sockPath: string) {
  const sock = await connect(sockPath);
  const reader = new LineReader({ maxLineBytes: 64 << 20 });
  const answers: Array<{ id?: number; ok?: boolean; error?: { name: string; message: string } }> = [];
  let closed = false;
  sock.on("data", (b: Uint8Array) => {
    for (const l of reader.push(b)) answers.push(JSON.parse(l));
  });
  sock.on("error", () => {});
  sock.on("close", () => closed = true);
  return {
    sock,
    answers,
    get closed() {
      return closed;
    },
    /** Writes, waiting for the socket to drain when it must. */
    async write(b: Uint8Array | string): Promise<boolean> {
      if (closed || sock.destroyed) return false;
      if (!sock.write(b)) await new Promise<void>((res) => (sock.once("drain", res), sock.once("close", res)));
      return !closed;
    },
  };
}

/** Pings every 50 ms until stopped; the round trips (ms; Infinity when unanswered). */
function watcher(sockPath: string) {
  let stop = false;
  const done = (async () => {
    const c = await client(sockPath);
    const sent = new Map<number, number>();
    const rtts: number[] = [];
    c.sock.on("data", () => {
      for (const a of c.answers.splice(0)) {
        const t = sent.get(a.id!);
        if (t !== undefined) (rtts.push(performance.now() - t), sent.delete(a.id!));
      }
    });
    for (let id = 1; !stop; id++) {
      sent.set(id, performance.now());
      await c.write(JSON.stringify({ id, op: "ping" }) + "\n");
      await new Promise((res) => setTimeout(res, 50));
    }
    await until("the last pings' answers", () => sent.size === 0, 5000).catch(() => {});
    c.sock.destroy();
    return [...rtts, ...[...sent.values()].map(() => Infinity)];
  })();
  return {
    stop: () => {
      stop = true;
      return done;
    },
  };
}

function vmRssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
}

test(`the supervisor answers every bad line, cuts off what is too much, and keeps serving (seed ${SEED})`, async () => {
  using l = supervisorLab("hako-test-fuzz-");
  const out = openSync(join(l.dir, "supervisor.out"), "a");
  const [cmd, argv] = cliArgv(["supervisor", "--idle", "0"]);
  const sup = spawn(cmd, argv, { env: l.env, stdio: ["ignore", out, out], detached: true });
  sup.unref();
  const sockPath = join(l.state, "supervisor.sock");
  await until("the supervisor", () => l.supervisorPid() === sup.pid, 30_000);
  await until("its socket", () => readdirSync(l.state).includes("supervisor.sock"));
  const pid = sup.pid!;
  const rss0 = vmRssKb(pid);
  const w = watcher(sockPath);
  const rand = prng(SEED);
  try {
    // 1. Random lines, each sent in random pieces: one answer per line that is not blank.
    for (let round = 0; round < 4; round++) {
      const c = await client(sockPath);
      const lines = Array.from({ length: 300 }, (_, i) => randomLine(rand, i + 1));
      const expected = lines.filter((b) => new TextDecoder().decode(b).trim() !== "").length;
      const stream = new Uint8Array(lines.reduce((n, b) => n + b.length + 1, 0));
      let at = 0;
      for (const b of lines) (stream.set(b, at), stream[at + b.length] = 0x0a, at += b.length + 1);
      for (let i = 0; i < stream.length;) {
        const n = 1 + Math.floor(rand() * 300);
        await c.write(stream.subarray(i, i + n));
        i += n;
        if (rand() < 0.05) await new Promise((res) => setTimeout(res, 2));
      }
      await until(`${expected} answers (round ${round})`, () => c.answers.length >= expected, 30_000);
      await new Promise((res) => setTimeout(res, 100));
      assert.equal(c.answers.length, expected, "exactly one answer per line");
      assert.ok(c.answers.every((a) => a.ok === true || a.error?.name), "each an answer or an error with a name");
      assert.ok(!c.closed, "the connection stays open");
      c.sock.destroy();
    }

    // 2. Hostile values: deep nesting, a huge string, prototype keys, ids at the edges.
    const hostile = [
      "[".repeat(400_000) + "]".repeat(400_000),
      `{"id":1,"op":"start","spec":${"[".repeat(200_000)}${"]".repeat(200_000)}}`,
      `{"id":2,"op":"start","spec":{"name":"${"a".repeat(900_000)}"}}`,
      `{"id":3,"op":"start","spec":{"__proto__":{"rootfs":"/"},"constructor":{"prototype":{"x":1}}}}`,
      `{"id":-1,"op":"ping"}`,
      `{"id":1e400,"op":"ping"}`,
      `{"id":9007199254740993,"op":"ping"}`,
      `{"id":4,"op":"start","spec":{"name":"../../etc","rootfs":"zz","command":["true"]}}`,
      `{"id":5,"op":"start","spec":{"name":"x","rootfs":42,"command":{"length":1e9}}}`,
      `{"id":6,"op":"start","spec":{"name":"x","rootfs":"zz","command":"true","env":{"A":"\\u0000"}}}`,
      `{"id":7,"op":"start","spec":{"name":"x","command":["true"],"rootfs":"zz","mounts":[${
        Array(5000).fill('{"target":"/x"}').join(",")
      }]}}`,
      "null",
      "\u0000\u0000\u0000",
      '\ufeff{"id":8,"op":"ping"}',
    ];
    const h = await client(sockPath);
    for (const line of hostile) await h.write(line + "\n");
    await until("answers to the hostile lines", () => h.answers.length >= hostile.length, 30_000);
    assert.equal(h.answers.length, hostile.length);
    assert.ok(h.answers.every((a) => a.ok === false || a.ok === true), "every one answered");
    h.sock.destroy();

    // 3. A partial line, then the client goes away: nothing happens.
    const p = await client(sockPath);
    await p.write('{"id":1,"op":"pi');
    p.sock.destroy();

    // 4. 100 MB without a newline: an error and a closed connection, long before 100 MB, and the
    // supervisor no bigger for it (it never held more than the 1 MiB limit).
    const rssBeforeHuge = vmRssKb(pid);
    const huge = await client(sockPath);
    const chunk = new Uint8Array(65536).fill(0x7b);
    let sent = 0;
    while (sent < 100e6 && await huge.write(chunk)) sent += chunk.length;
    await until("the connection closed", () => huge.closed, 10_000);
    assert.ok(sent < 32 << 20, `cut off after ${(sent / 2 ** 20).toFixed(1)} MiB`);
    assert.match(huge.answers[0]?.error?.message ?? "", /longer than/);
    const hugeGrowth = vmRssKb(pid) - rssBeforeHuge;
    assert.ok(hugeGrowth < 32 * 1024, `the 100 MB line cost ${(hugeGrowth / 1024).toFixed(1)} MiB`);

    // 5. Pings without reading the answers: cut off once 4 MiB of answers wait.
    const greedy = await client(sockPath);
    greedy.sock.pause();
    const pings = enc.encode(Array.from({ length: 5000 }, (_, i) => `{"id":${i + 1},"op":"ping"}\n`).join(""));
    for (let i = 0; i < 400 && !greedy.closed; i++) {
      greedy.sock.write(pings);
      await new Promise((res) => setTimeout(res, 5));
    }
    await until("the greedy client cut off", () => greedy.closed || greedy.sock.destroyed, 30_000);

    // 6. More connections than it serves: the extra ones are refused with a line.
    const many: Socket[] = [];
    try {
      for (let i = 0; i < 300; i++) many.push(await connect(sockPath));
      const refused = await new Promise<string>((resolve) => {
        many[many.length - 1]!.once("data", (b: Buffer) => resolve(b.toString()));
        many[many.length - 1]!.write('{"id":1,"op":"ping"}\n');
      });
      assert.match(refused, /connections at most/);
    } finally {
      for (const s of many) s.destroy();
    }
    await new Promise((res) => setTimeout(res, 200));

    // Still there, still answering, nothing made.
    const rtts = (await w.stop()).sort((a, b) => a - b);
    assert.ok(alive(pid), "the supervisor never exited");
    assert.ok(
      rtts.length > 10 && rtts.every(Number.isFinite),
      `every ping of the other client answered (${rtts.length})`,
    );
    const after = await client(sockPath);
    await after.write('{"id":42,"op":"ping"}\n');
    await until("a ping's answer", () => after.answers.length === 1);
    assert.deepEqual([after.answers[0]!.id, after.answers[0]!.ok], [42, true]);
    after.sock.destroy();
    assert.deepEqual(
      readdirSync(join(l.state, "containers")).filter((n) => !n.startsWith(".")),
      [],
      "no container made",
    );
    const log = readFileSync(join(l.state, "..", "supervisor.out"), "utf8");
    assert.doesNotMatch(log, /uncaught|tick failed/i, "nothing escaped");
    const rss1 = vmRssKb(pid);
    console.error(
      `  supervisor RSS ${(rss0 / 1024).toFixed(0)} → ${(rss1 / 1024).toFixed(0)} MiB; ping max ${
        rtts.at(-1)!.toFixed(0)
      } ms`,
    );
  } catch (e) {
    console.error(`  seed ${SEED} (HAKO_TEST_SEED=${SEED} replays it)`);
    throw e;
  } finally {
    await w.stop();
  }
}, { skip: needsRoot });
