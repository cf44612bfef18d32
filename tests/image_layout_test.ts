/**
 * OCI image layout directories (what `skopeo copy … oci:DIR:TAG` and umoci write, unarchived):
 * one imports with its ref name chosen, a container runs from it, its config's ExposedPorts shown
 * by `hako image inspect`; and a hostile directory — a blob that is a symlink (to a file outside,
 * or `blobs/sha256` itself a symlink), a FIFO or a device in place of a blob, a digest that lies —
 * is refused with a clear error, nothing stored, nothing outside read. The directories are built
 * here by hand (neither skopeo nor umoci is installed by tests/setup.sh), never fetched.
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { gzipSync } from "node:zlib";
import { needsRoot, runtime, tempDir, test } from "./_harness.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { importImage, listImages } from "../src/image/store.ts";
import { SetupError } from "../src/errors.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = runtime === "bun"
  ? [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli/main.ts")]
  : [join(ROOT, "bin/hako")];
const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const enc = new TextEncoder();

/** A layer tar of a directory (GNU tar). */
function tarOf(dir: string): Uint8Array {
  const r = spawnSync("tar", ["-C", dir, "-cf", "-", "."], { maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, String(r.stderr));
  return new Uint8Array(r.stdout);
}

/** One image of a layout: its layers (tars, stored gzip'ed), config and ref name. */
interface LayoutImage {
  readonly layers: readonly Uint8Array[];
  readonly config?: Record<string, unknown>;
  readonly ref?: string;
}

/**
 * Writes an OCI image layout directory as skopeo does (`oci-layout`, `index.json`,
 * `blobs/sha256/HEX`), its index's entries annotated with their ref names.
 * @returns Each image's blobs by role (for the attacks to replace).
 */
function writeLayout(dir: string, images: readonly LayoutImage[]): Array<{ layers: string[]; config: string }> {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (b: Uint8Array) => {
    const h = sha256(b);
    writeFileSync(join(blobs, h), b);
    return { digest: `sha256:${h}`, size: b.length, hex: h };
  };
  const out: Array<{ layers: string[]; config: string }> = [];
  const manifests = images.map((img) => {
    const layers = img.layers.map((t) => ({
      ...put(gzipSync(t)),
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    }));
    const config = put(enc.encode(JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: img.config ?? { Cmd: ["sh"] },
      rootfs: { type: "layers", diff_ids: img.layers.map((t) => `sha256:${sha256(t)}`) },
    })));
    const manifest = put(enc.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: config.digest, size: config.size },
      layers: layers.map(({ digest, size, mediaType }) => ({ digest, size, mediaType })),
    })));
    out.push({ layers: layers.map((l) => l.hex), config: config.hex });
    return {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: manifest.digest,
      size: manifest.size,
      ...(img.ref !== undefined ? { annotations: { "org.opencontainers.image.ref.name": img.ref } } : {}),
    };
  });
  writeFileSync(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests }));
  return out;
}

/** A directory of its own with a state dir and an image store; every container deleted, the supervisor killed, at dispose. */
function lab() {
  const dir = tempDir("hako-layout-");
  chmodSync(dir.path, 0o755);
  const state = join(dir.path, "state");
  const varDir = join(dir.path, "var");
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    HAKO_STATE_DIR: state,
    HAKO_VAR_DIR: varDir,
    NO_COLOR: "1",
  };
  delete env.HAKO_LOADER;
  const hako = (args: string[]) => {
    const r = spawnSync(CLI[0]!, [...CLI.slice(1), ...args], { env, encoding: "utf8", timeout: 120_000 });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const ok = (...args: string[]): string => {
    const r = hako(args);
    assert.equal(r.code, 0, `hako ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const nothingStored = () => {
    assert.deepEqual(listImages(varDir), []);
    for (const d of ["layers", "meta", "tmp", "blobs/sha256"]) {
      const p = join(varDir, "images", d);
      if (existsSync(p)) assert.deepEqual(readdirSync(p), [], `images/${d} is empty`);
    }
  };
  return {
    dir: dir.path,
    varDir,
    hako,
    ok,
    nothingStored,
    [Symbol.dispose]() {
      try {
        for (const c of JSON.parse(hako(["ps", "-a", "--json"]).stdout)) hako(["delete", "--force", c.name]);
      } catch { /* the directory goes anyway */ }
      try {
        const pid = Number(
          spawnSync("cat", [join(state, "supervisor.pid")], { encoding: "utf8" }).stdout.split(" ")[0],
        );
        if (pid) process.kill(pid, "SIGKILL");
      } catch { /* none */ }
      const mounts = spawnSync("cat", ["/proc/self/mountinfo"], { encoding: "utf8" }).stdout.split("\n")
        .map((l) => l.split(" ")[4] ?? "").filter((m) => m.startsWith(dir.path));
      for (const m of mounts.reverse()) spawnSync("umount", ["-l", m]);
      dir[Symbol.dispose]();
    },
  };
}

/** The rejection of `p`. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail("expected a rejection");
}

test(
  "an OCI layout directory imports (its image chosen by ref name, as skopeo's oci:DIR:TAG), runs, and shows its ExposedPorts",
  () => {
    using l = lab();
    const tree = join(l.dir, "tree");
    buildRootfs(tree, { builder: "busybox" });
    writeFileSync(join(tree, "hello"), "from the layout\n");
    const layout = join(l.dir, "layout");
    const base = tarOf(tree);
    writeLayout(layout, [
      { layers: [base], ref: "latest", config: { Cmd: ["cat", "/hello"], ExposedPorts: { "80/tcp": {} } } },
      { layers: [base], ref: "v2", config: { Cmd: ["echo", "v2"] } },
    ]);
    // Two images, one name: refused until one is chosen.
    const r = l.hako(["image", "import", layout, "localhost/layout-test:1"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /holds 2 images: a name can be given to one only/);
    const none = l.hako(["image", "import", "--ref", "nope", layout]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /no image in it has the ref name "nope" \(it has "latest", "v2"\)/);
    l.nothingStored();
    assert.equal(
      l.ok("image", "import", "--ref", "latest", layout, "localhost/layout-test:1"),
      "Loaded image: localhost/layout-test:1\n",
    );
    assert.equal(listImages(l.varDir).length, 1, "only the chosen image is imported");
    assert.equal(l.ok("run", "--image", "localhost/layout-test:1"), "from the layout\n");
    assert.equal(l.ok("run", "--image", "localhost/layout-test:1", "--", "echo", "hi"), "hi\n");
    const inspect = JSON.parse(l.ok("image", "inspect", "localhost/layout-test:1"));
    assert.deepEqual(inspect[0].Config.ExposedPorts, { "80/tcp": {} });
  },
  { skip },
);

test(
  "a layout directory's blob that is a symlink, a FIFO, a device or a directory, or blobs/sha256 a symlink, is refused; nothing outside is read",
  async () => {
    using l = lab();
    mkdirSync(join(l.dir, "small"));
    writeFileSync(join(l.dir, "small", "f"), "f\n");
    const layer = tarOf(join(l.dir, "small"));
    const outside = join(l.dir, "outside");
    mkdirSync(outside);
    const fresh = (name: string) => {
      const d = join(l.dir, name);
      return { d, blobs: writeLayout(d, [{ layers: [layer], ref: "latest" }])[0]! };
    };
    const refused = async (dir: string, why: RegExp) => {
      const e = await rejection(importImage(dir, { varDir: l.varDir }));
      assert.ok(e instanceof SetupError, `a SetupError, not ${e}`);
      assert.match((e as Error).message, why);
      l.nothingStored();
    };
    // A layer blob that is a symlink to a file outside holding the very bytes its digest names:
    // still refused (no symlink is followed, whatever it points to).
    {
      const { d, blobs } = fresh("symlink-blob");
      const blob = join(d, "blobs/sha256", blobs.layers[0]!);
      const copy = join(outside, "layer");
      spawnSync("cp", [blob, copy]);
      spawnSync("rm", [blob]);
      symlinkSync(copy, blob);
      await refused(d, /is a symlink \(none is followed\)|goes through a symlink/);
      // …and a relative one that climbs out, and to /etc/shadow.
      spawnSync("rm", [blob]);
      symlinkSync("../../../outside/layer", blob);
      await refused(d, /is a symlink \(none is followed\)|goes through a symlink/);
      spawnSync("rm", [blob]);
      symlinkSync("/etc/shadow", blob);
      await refused(d, /is a symlink \(none is followed\)|goes through a symlink/);
    }
    // blobs/sha256 itself a symlink to a directory outside holding the blobs.
    {
      const { d } = fresh("symlink-dir");
      spawnSync("mv", [join(d, "blobs/sha256"), join(outside, "sha256")]);
      symlinkSync(join(outside, "sha256"), join(d, "blobs/sha256"));
      await refused(d, /is a symlink \(none is followed\)|goes through a symlink/);
    }
    // index.json a symlink.
    {
      const { d } = fresh("symlink-index");
      spawnSync("mv", [join(d, "index.json"), join(outside, "index.json")]);
      symlinkSync(join(outside, "index.json"), join(d, "index.json"));
      await refused(d, /"index\.json" in the layout directory is a symlink/);
    }
    // A FIFO in place of the config blob: refused at once, never opened (the import would block).
    {
      const { d, blobs } = fresh("fifo");
      const blob = join(d, "blobs/sha256", blobs.config);
      spawnSync("rm", [blob]);
      assert.equal(spawnSync("mkfifo", [blob]).status, 0);
      await refused(d, /is a FIFO, not a regular file/);
    }
    // A device (/dev/zero's numbers: endless bytes) in place of a layer.
    {
      const { d, blobs } = fresh("device");
      const blob = join(d, "blobs/sha256", blobs.layers[0]!);
      spawnSync("rm", [blob]);
      assert.equal(spawnSync("mknod", [blob, "c", "1", "5"]).status, 0);
      await refused(d, /is a device, not a regular file/);
    }
    // A directory in place of a layer.
    {
      const { d, blobs } = fresh("directory");
      const blob = join(d, "blobs/sha256", blobs.layers[0]!);
      spawnSync("rm", [blob]);
      mkdirSync(blob);
      await refused(d, /is a directory, not a regular file/);
    }
    // A blob whose bytes are not its digest's, and one that is missing.
    {
      const { d, blobs } = fresh("lying");
      writeFileSync(join(d, "blobs/sha256", blobs.config), "{}");
      await refused(d, /whose sha256 is/);
      spawnSync("rm", [join(d, "blobs/sha256", blobs.config)]);
      await refused(d, /is not in the archive/);
    }
    // A descriptor whose digest is a path out ("blobs/sha256/.." and the like) is no digest.
    {
      const { d } = fresh("dotdot");
      writeFileSync(
        join(d, "index.json"),
        JSON.stringify({ schemaVersion: 2, manifests: [{ digest: "sha256:../../../outside/layer", size: 1 }] }),
      );
      await refused(d, /is not a sha256 digest/);
    }
    // Not a layout at all.
    {
      const d = join(l.dir, "empty");
      mkdirSync(d);
      await refused(d, /not an OCI image layout directory/);
    }
    // The layout written plainly imports (the refusals above were the attacks, not the builder).
    const { d } = fresh("plain");
    await importImage(d, { varDir: l.varDir });
    assert.equal(listImages(l.varDir).length, 1);
  },
  { skip: needsRoot },
);
