/**
 * The layers of DESIGN.md, enforced: ffi → primitives → container → mod.ts → runner → supervisor (and oci) →
 * cli, and no import runs upward. Every `.ts` under ffi/ and src/ (and mod.ts) is read, its static
 * `import … from` / `export … from` / side-effect imports and its dynamic `import("…")` with a
 * literal path resolved, and each edge checked against the rules below. Runs as any user, touches
 * nothing. An import that breaks a rule fails here, named file → import; the few that predate this
 * test are listed in {@link ALLOWED}, each with why, so only new ones fail.
 * @module
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "./_harness.ts";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));

/** The layers, lowest first (DESIGN.md, "Layers"). */
const LAYERS = ["ffi", "primitives", "container", "mod", "runner", "supervisor", "cli"] as const;
type Layer = (typeof LAYERS)[number];

/** The layer of a repository-relative path, or undefined outside the layered code (npm, tests…). */
function layerOf(path: string): Layer | undefined {
  if (path.startsWith("ffi/")) return "ffi";
  if (path === "mod.ts") return "mod";
  // The image store makes rootfs trees for containers (tarball.ts's hardened extraction, the state
  // directory's private parents): the container layer.
  if (path.startsWith("src/container/") || path.startsWith("src/image/")) return "container";
  if (path.startsWith("src/runner/")) return "runner";
  if (path.startsWith("src/supervisor/")) return "supervisor";
  // OCI runtime mode is a front end on the containers beside the supervisor (conmon and containerd's
  // shim are its monitors): the same layer.
  if (path.startsWith("src/oci/")) return "supervisor";
  if (path.startsWith("src/cli/")) return "cli";
  // src/*.ts (process, namespace, mount, capability, seccomp, rlimit, hostname, user, dir, errors…),
  // and the primitives kept in folders of their own: src/cgroup/, src/seccomp/
  if (path.startsWith("src/")) return "primitives";
  return undefined;
}

/** One import: the importing file, the module it names (as written), and the file it resolves to. */
interface Edge {
  readonly from: string;
  readonly specifier: string;
  /** Repository-relative; undefined for a bare (npm:, package) specifier. */
  readonly to: string | undefined;
}

function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return tsFiles(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

/**
 * The module specifiers a file imports. Comments are dropped first (a JSDoc example's
 * `import … from "./mod.ts"` is no import); a string that merely holds the word import is not
 * matched, since an import statement must start a statement.
 */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const out: string[] = [];
  // import x from "…"; import { a, b } from "…"; import type …; export { … } from "…"; export * from "…"; import "…"
  for (const m of code.matchAll(/(?:^|[;\n])\s*(?:import|export)\s(?:[^;'"`]*?\sfrom\s*)?["']([^"']+)["']/g)) {
    out.push(m[1]!);
  }
  // await import("…"), import(\n  "…",\n)
  for (const m of code.matchAll(/\bimport\s*\(\s*["']([^"'$]+)["']\s*,?\s*\)/g)) out.push(m[1]!);
  return out;
}

function edges(): Edge[] {
  const files = [...tsFiles("ffi"), ...tsFiles("src"), "mod.ts"];
  return files.flatMap((from) =>
    importsOf(readFileSync(join(ROOT, from), "utf8")).flatMap((specifier): Edge[] => {
      if (specifier.startsWith("node:") || specifier.startsWith("bun:")) return [];
      if (specifier === "hako") return [{ from, specifier, to: "mod.ts" }]; // (deno.json's import map)
      if (!specifier.startsWith(".")) return [{ from, specifier, to: undefined }];
      return [{ from, specifier, to: relative(ROOT, join(ROOT, dirname(from), specifier)) }];
    })
  );
}

/** Why an edge breaks the layering, or undefined when it keeps it. */
function violation(e: Edge): string | undefined {
  if (e.to === undefined) return undefined;
  const a = layerOf(e.from), b = layerOf(e.to);
  if (a === undefined) return undefined;
  if (b === undefined) return `imports ${e.to}, outside ffi/, src/ and mod.ts`;
  if (LAYERS.indexOf(b) > LAYERS.indexOf(a)) return `${a} imports from ${b}, a layer above it`;
  // cli: only facades — the kernel is reached through the layers below, never ffi/ directly, and
  // a lower layer's private module (a `_` file) is that layer's own business.
  if (a === "cli" && b === "ffi") return "cli imports ffi/ directly (only facades)";
  if (a === "cli" && LAYERS.indexOf(b) <= LAYERS.indexOf("container") && e.to.split("/").at(-1)!.startsWith("_")) {
    return `cli imports ${b}'s private module (only facades)`;
  }
  return undefined;
}

/**
 * Imports that broke a rule when this test was written (2026-12), kept so that only new ones fail:
 * "file -> resolved import". Remove an entry when its import goes; never add one without a reason.
 */
const ALLOWED: ReadonlyMap<string, string> = new Map([]);

test("layering: an import's target is recognised in every form the code uses", () => {
  const src = [
    '/** @example\n * import { Process } from "./mod.ts";\n */',
    '// import { x } from "./commented.ts";',
    'import { a } from "./a.ts";',
    'import type { B } from "../b.ts";',
    'export { c } from "./c.ts";',
    'export * from "./d.ts";',
    'import "./e.ts";',
    'import {\n  f,\n  g,\n} from "./fg.ts";',
    'const h = await import("./h.ts");',
    'const i = await import(\n  "./i.ts"\n);',
    'const text = "we import nothing from \\"./no.ts\\" here";',
    "const url = `./${name}.ts`; await import(url);",
  ].join("\n");
  assert.deepEqual(importsOf(src).sort(), [
    "../b.ts",
    "./a.ts",
    "./c.ts",
    "./d.ts",
    "./e.ts",
    "./fg.ts",
    "./h.ts",
    "./i.ts",
  ]);
});

test("layering: every file of every layer is read, and each has imports the scan finds", () => {
  const all = edges();
  const importing = new Set(all.map((e) => e.from));
  for (const f of ["ffi/libc.ts", "src/process.ts", "src/container/setup.ts", "mod.ts", "src/cli/main.ts"]) {
    assert.ok(importing.has(f), `${f} has no import the scan found`);
  }
  // (a file that resolves to nothing would hide an edge: each relative import names a real file)
  const missing = all.filter((e) => {
    if (e.to === undefined) return false;
    try {
      readFileSync(join(ROOT, e.to));
      return false;
    } catch {
      return true;
    }
  });
  assert.deepEqual(missing.map((e) => `${e.from} -> ${e.specifier}`), [], "imports of files that do not exist");
});

test("layering: ffi imports nothing from src, primitives nothing from container, runner, supervisor or cli, container nothing above it, supervisor nothing from cli; cli only facades", () => {
  const found = new Map<string, string>();
  for (const e of edges()) {
    const why = violation(e);
    if (why) found.set(`${e.from} -> ${e.to}`, why);
  }
  const fresh = [...found].filter(([k]) => !ALLOWED.has(k)).map(([k, why]) => `${k}  (${why})`);
  if (fresh.length) console.error(`layering violations:\n  ${fresh.join("\n  ")}`);
  assert.deepEqual(fresh, [], "imports that run upward (or past the facades)");
  // An allowed import that is gone is taken off the list, so it cannot come back unnoticed.
  const stale = [...ALLOWED.keys()].filter((k) => !found.has(k));
  assert.deepEqual(stale, [], "ALLOWED entries whose import is gone: remove them");
});

test("layering: a violation is caught in each direction the rules forbid", () => {
  const cases: Array<[string, string, boolean]> = [
    ["ffi/libc.ts", "src/errors.ts", true],
    ["src/process.ts", "src/container/spec.ts", true],
    ["src/cgroup/group.ts", "src/runner/run_script.ts", true],
    ["src/seccomp/oci.ts", "mod.ts", true],
    ["src/container/setup.ts", "src/cli/main.ts", true],
    ["src/container/setup.ts", "mod.ts", true],
    ["src/runner/run_script.ts", "src/supervisor/client.ts", true],
    ["src/supervisor/daemon.ts", "src/cli/main.ts", true],
    ["src/cli/run.ts", "ffi/libc.ts", true],
    ["src/cli/run.ts", "src/container/_spec_fields.ts", true],
    ["src/container/setup.ts", "ffi/libc.ts", false],
    ["src/runner/run_script.ts", "mod.ts", false],
    ["src/cli/run.ts", "src/runner/_host.ts", false],
    ["src/supervisor/daemon.ts", "src/container/lifecycle.ts", false],
  ];
  for (const [from, to, bad] of cases) {
    assert.equal(violation({ from, specifier: to, to }) !== undefined, bad, `${from} -> ${to}`);
  }
});

test("layering: only ffi/ touches the runtimes' FFI (dlopen, bun:ffi, pointers, callbacks)", () => {
  const FFI = /\bDeno\.dlopen\b|["']bun:ffi["']|\bUnsafePointer(View)?\b|\bUnsafeCallback\b|\bUnsafeFnPointer\b/;
  const found = [...tsFiles("src"), "mod.ts"].filter((f) => {
    const code = readFileSync(join(ROOT, f), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    return FFI.test(code);
  });
  assert.deepEqual(found, [], "files above ffi/ that use the FFI directly");
});

test("layering: spec.ts, the spec's types, imports only types, and only from leaves (no type circle through container.ts or validate.ts)", () => {
  const code = readFileSync(join(ROOT, "src/container/spec.ts"), "utf8");
  const lines = code.split("\n").filter((l) => /^import\s/.test(l));
  assert.ok(lines.length > 0);
  for (const l of lines) assert.match(l, /^import type /, `spec.ts: ${l}`);
  const targets = importsOf(code).map((s) => normalize(join("src/container", s)));
  for (const t of targets) {
    assert.ok(
      ![
        "src/container/container.ts",
        "src/container/validate.ts",
        "src/container/setup.ts",
        "src/container/lifecycle.ts",
      ]
        .includes(t),
      `spec.ts imports ${t}`,
    );
  }
});
