/**
 * Under Bun, libc's symbols are bound on first read (ffi/_bun.ts's lazy tables): a short command
 * binds the few it calls, and reading `fork` binds all the rest first, so a forked child (which runs
 * JavaScript) never compiles a binding. No root needed; Bun only (Deno.dlopen binds every symbol).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { deepEqual, equal, ok } from "node:assert/strict";
import { runtime, test } from "./_harness.ts";
import { bunFfiAdapter } from "../ffi/_bun.ts";
import { EBADF } from "../ffi/constants.ts";

const bunOnly = runtime === "bun" ? false : "lazy binding is Bun's (ffi/_bun.ts); Deno.dlopen binds eagerly";

const TABLE = {
  getpid: { parameters: [], result: "i32" },
  getppid: { parameters: [], result: "i32" },
  // An alias: the key is not the C name.
  myGetuid: { name: "getuid", parameters: [], result: "u32" },
  // Missing from libc: null, as Deno gives it.
  hako_no_such_symbol: { parameters: [], result: "i32", optional: true },
  fork: { parameters: [], result: "i32" },
} as const;

const isBound = (o: object, key: string) => Object.getOwnPropertyDescriptor(o, key)?.get === undefined;

test("a lazy table binds a symbol when it is first read, and only that one", () => {
  const lib = bunFfiAdapter.open("libc.so.6", TABLE, { lazy: true, bindAllOn: ["fork"] });
  deepEqual(Object.keys(lib), Object.keys(TABLE));
  ok(!isBound(lib, "getpid") && !isBound(lib, "getppid"));
  equal(lib.getpid(), process.pid);
  ok(isBound(lib, "getpid"));
  ok(!isBound(lib, "getppid"), "getppid was bound though never read");
  equal(lib.myGetuid(), process.getuid!());
  equal(lib.hako_no_such_symbol, null);
  // The same function every read.
  equal(lib.getpid, lib.getpid);
}, { skip: bunOnly });

test("reading a bindAllOn key binds every symbol not yet bound", () => {
  const lib = bunFfiAdapter.open("libc.so.6", TABLE, { lazy: true, bindAllOn: ["fork"] });
  const getpid = lib.getpid;
  void lib.fork; // read, not called
  for (const key of Object.keys(TABLE)) ok(isBound(lib, key), `${key} is still lazy after fork was read`);
  equal(lib.getpid, getpid, "a symbol bound before keeps its binding");
  equal(lib.getppid(), process.ppid);
  equal(lib.hako_no_such_symbol, null);
}, { skip: bunOnly });

test("libc() in a fresh process binds what it calls, and everything once fork is read", () => {
  const libcUrl = new URL("../ffi/libc.ts", import.meta.url).href;
  const script = `
    const { libc, errno } = await import(${JSON.stringify(libcUrl)});
    const l = libc();
    const lazy = () => Object.keys(l).filter((k) => Object.getOwnPropertyDescriptor(l, k).get !== undefined).length;
    const total = Object.keys(l).length;
    const atOpen = lazy();
    // The first call of the process fails: errno is its own (EBADF), not the binding's.
    const closed = l.close(-1);
    const err = errno();
    l.getpid();
    const afterGetpid = lazy();
    void l.fork;
    console.log(JSON.stringify({ total, atOpen, closed, err, afterGetpid, afterFork: lazy() }));
  `;
  const r = spawnSync(process.execPath, ["-e", script], {
    encoding: "utf8",
    cwd: fileURLToPath(new URL("..", import.meta.url)),
  });
  equal(r.status, 0, r.stderr);
  const { total, atOpen, closed, err, afterGetpid, afterFork } = JSON.parse(r.stdout);
  ok(total > 50);
  equal(atOpen, total - 1, "only __errno_location is bound when libc() opens");
  equal(closed, -1);
  equal(err, EBADF);
  equal(afterGetpid, total - 3, "close and getpid are bound once called");
  equal(afterFork, 0);
}, { skip: bunOnly });
