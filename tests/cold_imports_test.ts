/**
 * The cold commands load only what they use: every module a command imports statically is parsed
 * and run at each of its starts, before it does anything (bench/oci.ts, bench/cli.ts). These tests
 * walk the static import graph of the sources (value imports; `import type` and `import()` are not
 * loaded with the module) from the CLI's entry to one command, and name what must stay out of it.
 * No root needed; the same on Deno and Bun (they read the sources).
 */
import { readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { deepEqual } from "node:assert/strict";
import { test } from "./_harness.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The specifiers a source file imports (or re-exports) as values, statically (pure). */
export function staticImports(source: string): string[] {
  const out: string[] = [];
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  for (const m of code.matchAll(/^\s*(import|export)\s+(?!type\b)([^;]*?)\s*from\s*"([^"]+)"\s*;/gm)) {
    out.push(m[3]!);
  }
  for (const m of code.matchAll(/^\s*import\s*"([^"]+)"\s*;/gm)) out.push(m[1]!);
  return out;
}

/** Every module loaded with `entries` (repo-relative paths, and `node:` built-ins as named). */
function staticGraph(entries: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...entries];
  while (todo.length) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (file.startsWith("node:")) continue;
    for (const spec of staticImports(readFileSync(join(ROOT, file), "utf8"))) {
      todo.push(spec.startsWith(".") ? relative(ROOT, join(ROOT, dirname(file), spec)) : spec);
    }
  }
  return seen;
}

test("staticImports reads value imports and re-exports, not type imports nor import()", () => {
  const src = `import { a } from "./a.ts";
import type { B } from "./b.ts";
import {
  c,
  type C,
} from "./c.ts";
export { d } from "./d.ts";
export type { E } from "./e.ts";
// import { f } from "./f.ts";
const g = await import("./g.ts");
import "./h.ts";
`;
  deepEqual(staticImports(src), ["./a.ts", "./c.ts", "./d.ts", "./h.ts"]);
});

test("hako-runc's state, start, kill and delete load no container library, cgroup detection nor FFI table", () => {
  // (dist/hako-runc starts at main.ts and loads the oci command: runtime.ts's static graph is what
  // every one of these commands pays for; what else they need, they import when they need it)
  const graph = staticGraph(["src/cli/main.ts", "src/cli/oci.ts", "src/oci/runtime.ts"]);
  const heavy = [
    "src/container/state.ts",
    "src/container/container.ts",
    "src/container/_cgroup.ts",
    "src/cgroup/layout.ts",
    "src/oci/freezer.ts",
    "src/oci/hooks.ts",
    "src/oci/config.ts",
    "ffi/libc.ts",
    "ffi/syscalls.ts",
    "node:child_process",
    "node:os",
  ];
  deepEqual(heavy.filter((m) => graph.has(m)), []);
});

test("hako ps under Deno loads no node: module before it knows there are containers to list", () => {
  // (the first node: import starts Deno's Node compatibility layer: tens of ms; see src/runner/_host.ts)
  const graph = staticGraph(["src/cli/main.ts", "src/cli/ps.ts"]);
  deepEqual([...graph].filter((m) => m.startsWith("node:")), []);
});

test("what kill and delete import when they signal or remove a cgroup detects no cgroup layout", () => {
  // (delete removes the directories create recorded; kill signals through a pidfd: neither needs
  // the container library nor the cgroup layout, which reads the mount table)
  const graph = staticGraph(["src/container/_signal_identified.ts", "src/oci/cgroup_dirs.ts"]);
  const heavy = ["src/container/state.ts", "src/container/_cgroup.ts", "src/cgroup/layout.ts", "ffi/poll.ts"];
  deepEqual(heavy.filter((m) => graph.has(m)), []);
});

test("the errno names and flags every error message uses load no syscall table", () => {
  // (delete loads errors.ts for its EBUSY retries: the tables of every architecture are kill's cost only)
  const graph = staticGraph(["ffi/constants.ts", "src/errors.ts", "src/oci/cgroup_dirs.ts"]);
  deepEqual(["ffi/syscalls.ts", "ffi/_syscalls_x86_64.ts"].filter((m) => graph.has(m)), []);
});

test("hako-runc create and run load no tarball, xz, rootfs builder, rootless helper nor node:v8", () => {
  // (what runtime.ts's create imports: an OCI bundle's rootfs is a directory, made by the caller;
  // a tarball, a builder or a rootless container imports that code in the branch that uses it,
  // and node:v8 is fork.ts's under Deno alone)
  const graph = staticGraph([
    "src/cli/main.ts",
    "src/cli/oci.ts",
    "src/oci/runtime.ts",
    "src/container/container.ts",
    "src/oci/config.ts",
    "ffi/spawn.ts",
    "ffi/fork.ts",
    "src/container/_cgroup.ts",
    "src/oci/freezer.ts",
  ]);
  const unused = [
    "src/container/tarball.ts",
    "ffi/lzma.ts",
    "src/container/rootfs.ts",
    "src/container/rootless.ts",
    "node:v8",
    "node:buffer",
  ];
  deepEqual(unused.filter((m) => graph.has(m)), []);
});

test("hako-runc's state, start, kill and delete load no node: module (their hot path, src/oci/hot.ts)", () => {
  // (the first node: import costs Deno tens of ms and Bun a few: more than runc takes for the whole
  // command. main.ts dispatches these four to hot.ts before it imports anything else; kill and delete
  // load the pidfd signalling, delete the removal of the recorded cgroup directories.)
  const graph = staticGraph([
    "src/cli/main.ts",
    "src/oci/hot.ts",
    "src/container/_signal_identified.ts",
    "src/oci/cgroup_dirs.ts",
  ]);
  deepEqual([...graph].filter((m) => m.startsWith("node:")), []);
});
