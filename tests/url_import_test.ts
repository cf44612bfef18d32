/**
 * hako imported from a URL, as an ops script does it: `import { Process } from "http://…/mod.ts"`.
 * Everything mod.ts reaches must resolve from a URL (relative paths, `node:` and full `npm:`
 * specifiers only), with no deno.json and no cache to hide a failure.
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { readFile, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { hostname } from "node:os";
import { join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, needsRoot, tempDir, test } from "./_harness.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DENO = process.env.DENO ?? join(ROOT, "node_modules/.bin/deno");

const TYPES: Readonly<Record<string, string>> = {
  ".ts": "application/typescript; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
};

/** Serves the repository read-only on 127.0.0.1, on a port the kernel picks. */
async function serveRepository(): Promise<{ server: Server; base: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    requests.push(path);
    const file = normalize(join(ROOT, path));
    const type = TYPES[file.slice(file.lastIndexOf("."))];
    try {
      if (!file.startsWith(ROOT) || file.includes(`${sep}node_modules${sep}`) || !type) throw new Error("not served");
      if (!(await stat(file)).isFile()) throw new Error("not a file");
      res.writeHead(200, { "content-type": type }).end(await readFile(file));
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return { server, base: `http://127.0.0.1:${address.port}`, requests };
}

/** Runs a command to its end (asynchronously: the server answers in this process meanwhile). */
function run(cmd: string, args: string[], options: { cwd: string; env: Record<string, string> }) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => stdout += d);
    child.stderr.on("data", (d) => stderr += d);
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test("a script imports mod.ts from an http URL and forks a child into a new UTS namespace", async () => {
  const { server, base, requests } = await serveRepository();
  using dir = tempDir("hako-url-");
  try {
    const script = join(dir.path, "box.ts");
    await writeFile(
      script,
      `import { Namespace, Process } from "${base}/mod.ts";
import { readFileSync, writeFileSync } from "node:fs";
const name = "hako-url-" + Process.getpid();
const pid = Process.fork({ namespaces: ["uts"] }, () => {
  // A UTS namespace's hostname is its own /proc/sys/kernel/hostname.
  writeFileSync("/proc/sys/kernel/hostname", name);
  Process._exit(readFileSync("/proc/sys/kernel/hostname", "utf8").trim() === name ? 0 : 3);
});
const { status } = Process.waitpid2(pid);
console.log(typeof Namespace.unshare, status.code);
Deno.exit(status.code ?? 1);
`,
    );
    const before = hostname();
    // A fresh DENO_DIR: nothing cached, so every module of mod.ts's graph is fetched from the server.
    const r = await run(DENO, ["run", "-A", "--v8-flags=--single-threaded", "--no-config", script], {
      cwd: dir.path,
      env: { ...process.env as Record<string, string>, DENO_DIR: join(dir.path, "deno-dir"), NO_COLOR: "1" },
    });
    assertEquals(r.code, 0, `exit code (stderr: ${r.stderr})`);
    assertEquals(r.stdout.trim(), "function 0");
    assertEquals(hostname(), before, "the host's hostname");
    assert(requests.includes("/mod.ts") && requests.includes("/ffi/libc.ts"), `requests: ${requests.join(" ")}`);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}, { skip: needsRoot });

test("the repository's server answers 404 outside it and for files it does not serve", async () => {
  const { server, base } = await serveRepository();
  try {
    for (const path of ["/../etc/passwd", "/package.json.bak", "/node_modules/amaro/package.json", "/nope.ts"]) {
      const res = await fetch(`${base}${path}`);
      await res.body?.cancel();
      assertEquals(res.status, 404, path);
    }
    const res = await fetch(`${base}/mod.ts`);
    assertEquals(res.headers.get("content-type"), "application/typescript; charset=utf-8");
    assert((await res.text()).includes("export"), "mod.ts is served");
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
