/**
 * Images: a `podman save` archive (docker-archive) and an OCI layout (`podman save --format
 * oci-archive`, and one written here with an opaque directory, a hard link across layers, a file
 * capability and zstd/xz layers) are imported and run from, each container on a writable layer
 * of its own; and hostile archives (whiteouts out of the rootfs or through a symlink, links out,
 * digests that lie, paths with `..`) are refused with nothing written outside. Images are built
 * offline here (podman with a private store; tar), never fetched. Through the CLI of the runtime
 * that runs the test (bin/hako under Deno, `bun src/cli/main.ts` under Bun), each test with a
 * state and image directory of its own.
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { needsRoot, runtime, tempDir, test } from "./_harness.ts";
import { tarBytes, type TarEntry } from "./_tar.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { which } from "../src/process.ts";
import { importImage, listImages } from "../src/image/store.ts";
import { SetupError } from "../src/errors.ts";
import { applyLayer } from "../src/container/tarball.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = runtime === "bun"
  ? [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli/main.ts")]
  : [join(ROOT, "bin/hako")];
const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");
const skipPodman = skip || (!which("podman") && "needs podman to build the test images (apt-get install podman)");
const skipCaps = skip ||
  ((!which("setcap") || !which("getcap")) && "needs setcap/getcap (apt-get install libcap2-bin)");

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A state directory and an image store of their own; every container deleted, the supervisor killed, at dispose. */
function lab(extraEnv: Record<string, string> = {}) {
  const dir = tempDir("hako-image-");
  chmodSync(dir.path, 0o755);
  const state = join(dir.path, "state");
  const varDir = join(dir.path, "var");
  const tag = Math.random().toString(16).slice(2, 8);
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    HAKO_STATE_DIR: state,
    HAKO_VAR_DIR: varDir,
    NO_COLOR: "1",
    ...extraEnv,
  };
  delete env.HAKO_LOADER;
  const hako = (args: string[], input?: Uint8Array): Result => {
    const r = spawnSync(CLI[0]!, [...CLI.slice(1), ...args], {
      env,
      encoding: "utf8",
      timeout: 120_000,
      ...(input ? { input } : {}),
    });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const ok = (...args: string[]): string => {
    const r = hako(args);
    assert.equal(r.code, 0, `hako ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  return {
    dir: dir.path,
    varDir,
    state,
    hako,
    ok,
    /** A container name unique on the host. */
    name: (n: string) => `img-${tag}-${n}`,
    /** The mounts under this lab's directory. */
    mounts: (): string[] =>
      readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "")
        .filter((m) => m.startsWith(dir.path)),
    [Symbol.dispose]() {
      try {
        for (const c of JSON.parse(hako(["ps", "-a", "--json"]).stdout)) hako(["delete", "--force", c.name]);
      } catch { /* the directory goes anyway */ }
      try {
        const pid = Number(readFileSync(join(state, "supervisor.pid"), "utf8").split(" ")[0]);
        if (pid) process.kill(pid, "SIGKILL");
      } catch { /* none */ }
      for (const m of this.mounts().reverse()) spawnSync("umount", ["-l", m]);
      dir[Symbol.dispose]();
    },
  };
}

/** A busybox tree with a file to delete and a directory to replace in a later layer. */
function baseTree(at: string): void {
  buildRootfs(at, { builder: "busybox" });
  mkdirSync(join(at, "opt/d"), { recursive: true });
  writeFileSync(join(at, "etc/gone"), "gone\n");
  writeFileSync(join(at, "opt/d/old"), "old\n");
  writeFileSync(join(at, "opt/keep"), "keep\n");
}

/**
 * A podman image built offline with a private store: the busybox tree imported as a base, then a
 * RUN layer that deletes a file and replaces a directory (whiteouts); saved as a docker-archive
 * and as an OCI archive.
 */
function podmanImage(dir: string, ref: string): { dockerArchive: string; ociArchive: string } {
  const tree = join(dir, "tree");
  baseTree(tree);
  const p = (...args: string[]) => {
    const r = spawnSync("podman", [
      "--root",
      join(dir, "podman-root"),
      "--runroot",
      join(dir, "podman-run"),
      "--storage-driver",
      "vfs",
      ...args,
    ], { encoding: "utf8", cwd: dir, timeout: 120_000 });
    assert.equal(r.status, 0, `podman ${args.join(" ")}: ${r.stderr}`);
  };
  assert.equal(spawnSync("tar", ["-C", tree, "-cf", join(dir, "base.tar"), "."]).status, 0);
  p("import", join(dir, "base.tar"), `${ref}-base:1`);
  writeFileSync(
    join(dir, "Containerfile"),
    `FROM ${ref}-base:1\n` +
      `RUN rm /etc/gone && rm -rf /opt/d && mkdir /opt/d && echo new > /opt/d/new\n` +
      `ENV FOO=bar\nWORKDIR /opt\nCMD ["cat", "/opt/d/new"]\n`,
  );
  p("build", "--network", "none", "--pull=never", "-t", `${ref}:1`, ".");
  const dockerArchive = join(dir, "docker.tar"), ociArchive = join(dir, "oci.tar");
  p("save", "-o", dockerArchive, `${ref}:1`);
  p("save", "--format", "oci-archive", "-o", ociArchive, `${ref}:1`);
  return { dockerArchive, ociArchive };
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** One layer for {@link ociLayout}: its tar, stored as it is or compressed. */
interface Layer {
  readonly tar: Uint8Array;
  readonly compress?: "gzip" | "zstd" | "xz";
  /** Lie about its uncompressed digest. */
  readonly diffId?: string;
}

/** An OCI image layout as a tar archive (oci-layout, index.json, blobs), written here. */
function ociLayout(
  layers: readonly Layer[],
  options: { ref?: string; config?: Record<string, unknown>; mutate?: (entries: TarEntry[]) => void } = {},
): Uint8Array {
  const blobs: Array<[string, Uint8Array]> = [];
  const descs = layers.map((l) => {
    const bytes = l.compress === "gzip"
      ? gzipSync(l.tar)
      : l.compress === "zstd"
      ? zstdCompressSync(l.tar)
      : l.compress === "xz"
      ? new Uint8Array(spawnSync("xz", ["-c"], { input: l.tar }).stdout)
      : l.tar;
    blobs.push([sha256(bytes), bytes]);
    return {
      mediaType: `application/vnd.oci.image.layer.v1.tar${
        l.compress === "gzip" ? "+gzip" : l.compress === "zstd" ? "+zstd" : ""
      }`,
      digest: `sha256:${sha256(bytes)}`,
      size: bytes.length,
    };
  });
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: options.config ?? { Cmd: ["sh"] },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId ?? `sha256:${sha256(l.tar)}`) },
  }));
  blobs.push([sha256(config), config]);
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: `sha256:${sha256(config)}`,
      size: config.length,
    },
    layers: descs,
  }));
  blobs.push([sha256(manifest), manifest]);
  const index = JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: `sha256:${sha256(manifest)}`,
      size: manifest.length,
      annotations: { "org.opencontainers.image.ref.name": options.ref ?? "localhost/hako-test:1" },
    }],
  });
  const entries: TarEntry[] = [
    { path: "oci-layout", type: "0", data: '{"imageLayoutVersion":"1.0.0"}' },
    { path: "index.json", type: "0", data: index },
    { path: "blobs/", type: "5" },
    { path: "blobs/sha256/", type: "5" },
    ...blobs.map(([h, b]): TarEntry => ({ path: `blobs/sha256/${h}`, type: "0", data: b })),
  ];
  options.mutate?.(entries);
  return tarBytes(entries);
}

/** A layer tar of a directory, with its extended attributes (GNU tar's PAX SCHILY.xattr records). */
function tarOf(dir: string): Uint8Array {
  const r = spawnSync("tar", ["--xattrs", "--xattrs-include=*", "-C", dir, "-cf", "-", "."], {
    maxBuffer: 1 << 28,
  });
  assert.equal(r.status, 0, String(r.stderr));
  return new Uint8Array(r.stdout);
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

// ---- podman's archives ------------------------------------------------------------------------

test(
  "a podman save archive imports, and a container runs from it with its config and whiteouts; load takes its OCI archive from stdin",
  () => {
    using l = lab();
    const ref = `localhost/hako-img-${l.name("p")}`;
    const { dockerArchive, ociArchive } = podmanImage(l.dir, ref);
    assert.equal(l.ok("image", "import", dockerArchive), `Loaded image: ${ref}:1\n`);
    // No command: the image's Cmd (cat /opt/d/new), in its WorkingDir, with its Env.
    assert.equal(l.ok("run", "--image", `${ref}:1`), "new\n");
    const out = l.ok(
      "run",
      "--image",
      `${ref}:1`,
      "--",
      "sh",
      "-c",
      "pwd; echo $FOO; ls /opt/d; test -e /etc/gone && echo gone-is-there; cat /opt/keep",
    );
    assert.equal(out, "/opt\nbar\nnew\nkeep\n");
    // -e overrides the image's Env; -w its WorkingDir.
    assert.equal(
      l.ok("run", "-e", "FOO=baz", "-w", "/", "--image", `${ref}:1`, "--", "sh", "-c", "pwd; echo $FOO"),
      "/\nbaz\n",
    );
    // The OCI archive of the same image, through stdin: the same ID, its layers not extracted twice.
    const layersBefore = readdirSync(join(l.varDir, "images/layers")).sort();
    const r = l.hako(["load"], readFileSync(ociArchive));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Loaded image: ${ref}:1\n`);
    assert.deepEqual(readdirSync(join(l.varDir, "images/layers")).sort(), layersBefore);
    assert.equal(listImages(l.varDir).length, 1);
    const inspect = JSON.parse(l.ok("image", "inspect", `${ref}:1`));
    assert.equal(inspect[0].Config.WorkingDir, "/opt");
    assert.equal(inspect[0].RootFS.Layers.length, 2);
    const images = l.ok("images", "--format", "json").trim().split("\n").map((x) => JSON.parse(x));
    assert.deepEqual(images.map((i) => `${i.Repository}:${i.Tag}`), [`${ref}:1`]);
    assert.equal(l.ok("images", "-q"), `${inspect[0].Id.slice(7, 19)}\n`);
    assert.equal(l.ok("rmi", `${ref}:1`), `Untagged: ${ref}:1\nDeleted: ${inspect[0].Id}\n`);
    assert.deepEqual(readdirSync(join(l.varDir, "images/layers")), [], "no layer is left");
    assert.deepEqual(readdirSync(join(l.varDir, "images/blobs/sha256")), [], "no blob is left");
  },
  { skip: skipPodman },
);

for (const kind of ["overlay", "copy"] as const) {
  test(
    `two containers on one image: one's writes are seen neither by the other nor by the image; rm leaves no mount (${kind})`,
    async () => {
      using l = lab(kind === "copy" ? { HAKO_IMAGE_RW: "copy" } : {});
      const tree = join(l.dir, "tree");
      baseTree(tree);
      const archive = join(l.dir, "img.tar");
      writeFileSync(archive, ociLayout([{ tar: tarOf(tree), compress: "gzip" }], { ref: "localhost/rw-test:1" }));
      l.ok("image", "import", archive);
      const a = l.name("a");
      l.ok(
        "run",
        "-d",
        "--name",
        a,
        "--image",
        "rw-test:1",
        "--",
        "sh",
        "-c",
        "echo mine > /opt/keep; echo a > /new; exec sleep 1000",
      );
      const end = Date.now() + 20_000;
      while (!l.ok("exec", a, "cat", "/opt/keep").includes("mine")) {
        if (Date.now() > end) assert.fail("the first container never wrote");
        await new Promise((r) => setTimeout(r, 50));
      }
      // ps names the image it runs on, not the directory of its writable layer
      const listed = (JSON.parse(l.ok("ps", "--json")) as Array<{ name: string; image: string }>).find((c) =>
        c.name === a
      );
      assert.match(listed?.image ?? "", /rw-test:1$/);
      assert.equal(
        l.ok("run", "--image", "rw-test:1", "--", "sh", "-c", "cat /opt/keep; ls /new 2>&1 || true"),
        "keep\nls: /new: No such file or directory\n",
      );
      const rootfs = JSON.parse(l.ok("image", "inspect", "rw-test:1"))[0].Hako.rootfs;
      assert.equal(readFileSync(join(rootfs, "opt/keep"), "utf8"), "keep\n", "the image is unchanged");
      assert.ok(!existsSync(join(rootfs, "new")));
      assert.equal(
        l.mounts().length > 0,
        kind === "overlay",
        "the first container's layer is an overlay mount, or a copy",
      );
      const rmi = l.hako(["rmi", "rw-test:1"]);
      assert.equal(rmi.code, 1);
      assert.match(rmi.stderr, new RegExp(`in use by ${a}`));
      l.ok("rm", "-f", a);
      assert.deepEqual(l.mounts(), [], "no mount is left");
      assert.deepEqual(readdirSync(join(l.varDir, "images/rw")), [], "no writable layer is left");
      l.ok("rmi", "rw-test:1");
    },
    { skip },
  );
}

test(
  "an OCI layout: an opaque dir, a whiteout, a hard link across layers, a file capability, and gzip, zstd and xz layers",
  () => {
    using l = lab();
    const tree = join(l.dir, "tree");
    baseTree(tree);
    writeFileSync(join(tree, "bin/capped"), "#!/bin/sh\n");
    chmodSync(join(tree, "bin/capped"), 0o755);
    const setcap = spawnSync("setcap", ["cap_net_raw+ep", join(tree, "bin/capped")], { encoding: "utf8" });
    assert.equal(setcap.status, 0, setcap.stderr);
    const layer2 = tarBytes([
      { path: "opt/d/", type: "5" },
      { path: "opt/d/.wh..wh..opq", type: "0" },
      { path: "opt/d/new", type: "0", data: "new\n" },
      { path: "etc/.wh.gone", type: "0" },
      { path: "lnk/echo", type: "1", linkpath: "bin/busybox" },
      { path: "etc/.wh..wh.plnk", type: "0" }, // aufs's bookkeeping: ignored
    ]);
    const layer3 = tarBytes([{ path: "xz-was-here", type: "0", data: "xz\n" }]);
    const archive = join(l.dir, "img.tar");
    writeFileSync(
      archive,
      ociLayout([
        { tar: tarOf(tree), compress: "gzip" },
        { tar: layer2, compress: "zstd" },
        { tar: layer3, compress: "xz" },
      ], { ref: "localhost/layers:1", config: { Entrypoint: ["sh", "-c"], Cmd: ["echo default"] } }),
    );
    l.ok("image", "import", archive);
    assert.equal(l.ok("run", "--image", "layers:1"), "default\n", "Entrypoint + Cmd");
    assert.equal(
      l.ok(
        "run",
        "--image",
        "layers:1",
        "--",
        "ls /opt/d; test -e /etc/gone || echo no-gone; cat /xz-was-here; /lnk/echo linked",
      ),
      "new\nno-gone\nxz\nlinked\n",
      "the command given replaces Cmd, after the Entrypoint",
    );
    const rootfs = JSON.parse(l.ok("image", "inspect", "layers:1"))[0].Hako.rootfs;
    assert.equal(statSync(join(rootfs, "lnk/echo")).ino, statSync(join(rootfs, "bin/busybox")).ino, "one inode");
    const getcap = spawnSync("getcap", [join(rootfs, "bin/capped")], { encoding: "utf8" });
    assert.match(getcap.stdout, /cap_net_raw[=+]ep/);
    assert.deepEqual(readdirSync(join(rootfs, "opt/d")), ["new"]);
  },
  { skip: skipCaps },
);

test(
  "a spec's rootfs { image } runs on a writable layer of its own, from hako run and hako start, gone with the container",
  async () => {
    using l = lab();
    const tree = join(l.dir, "tree");
    baseTree(tree);
    const archive = join(l.dir, "img.tar");
    writeFileSync(archive, ociLayout([{ tar: tarOf(tree), compress: "gzip" }], { ref: "localhost/spec-test:1" }));
    l.ok("image", "import", archive);
    const spec = (n: string, command: string, rootfs: unknown = { image: "spec-test:1" }) => {
      const path = join(l.dir, `${n}.ts`);
      writeFileSync(
        path,
        `export default ${JSON.stringify({ name: l.name(n), rootfs, command: ["sh", "-c", command] })};\n`,
      );
      return path;
    };
    const rw = () => existsSync(join(l.varDir, "images/rw")) ? readdirSync(join(l.varDir, "images/rw")) : [];
    assert.equal(l.ok("run", spec("fg", "echo fg > /opt/keep; cat /opt/keep")), "fg\n");
    assert.deepEqual(rw(), [], "a foreground run's layer goes when it ends");
    l.ok("start", spec("bg", "echo bg > /opt/keep; exec sleep 1000"));
    const end = Date.now() + 20_000;
    while (!l.ok("exec", l.name("bg"), "cat", "/opt/keep").includes("bg")) {
      if (Date.now() > end) assert.fail("the started container never wrote");
      await new Promise((r) => setTimeout(r, 50));
    }
    // Its own path: an empty directory, mounted there.
    const at = join(l.dir, "at");
    assert.equal(l.ok("run", spec("at", "cat /opt/keep", { image: "spec-test:1", path: at })), "keep\n");
    assert.ok(!existsSync(at), "the path it was mounted at goes with it");
    l.ok("rm", "-f", l.name("bg"));
    assert.deepEqual(rw(), []);
    assert.deepEqual(l.mounts(), [], "no mount is left");
    // An unknown image, and a bad one, are the spec's errors: nothing is made.
    const unknown = l.hako(["run", spec("no", "true", { image: "nope:1" })]);
    assert.equal(unknown.code, 125);
    assert.match(unknown.stderr, /no image "nope:1"/);
    const bad = l.hako(["run", spec("bad", "true", { image: "../x", path: "rel" })]);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /rootfs\.image: "\.\.\/x" is not an image name/);
    assert.match(bad.stderr, /rootfs\.path: must be absolute/);
    assert.deepEqual(rw(), []);
  },
  { skip },
);

test(
  "a layer keeps user.* and security.capability attributes, never trusted.* or user.overlay.* (overlay would obey them)",
  async () => {
    using t = tempDir("hako-image-xattr-");
    const rec = (k: string, v: string) => {
      const body = ` ${k}=${v}\n`;
      let n = body.length + 1;
      while (`${n}${body}`.length !== n) n++;
      return `${n}${body}`;
    };
    const pax = ["user.kept=1", "trusted.overlay.opaque=y", "user.overlay.redirect=/etc", "security.selinux=x"]
      .map((kv) => rec(`SCHILY.xattr.${kv.split("=")[0]}`, kv.split("=")[1]!)).join("");
    const layer = tarBytes([
      { path: "PaxHeaders/f", type: "x" as "0", data: pax },
      { path: "f", type: "0", data: "f" },
      { path: "PaxHeaders/d", type: "x" as "0", data: rec("SCHILY.xattr.trusted.overlay.opaque", "y") },
      { path: "d/", type: "5" },
    ]);
    const dir = join(t.path, "root");
    mkdirSync(dir);
    await applyLayer(
      (async function* () {
        yield layer;
      })(),
      dir,
      { source: "test layer" },
    );
    const names = (p: string) =>
      spawnSync("python3", ["-c", "import os,sys; print(sorted(os.listxattr(sys.argv[1])))", p], { encoding: "utf8" })
        .stdout.trim();
    assert.equal(readFileSync(join(dir, "f"), "utf8"), "f");
    assert.equal(names(join(dir, "f")), "['user.kept']");
    assert.equal(names(join(dir, "d")), "[]");
  },
  { skip: skip || (!which("python3") && "needs python3 to read extended attributes") },
);

// ---- attacks ------------------------------------------------------------------------------------

/** A lab for the API: a store, a sentinel directory outside it with a file, and a base layer. */
function attackLab() {
  const dir = tempDir("hako-image-attack-");
  const varDir = join(dir.path, "var");
  const outside = join(dir.path, "outside");
  mkdirSync(outside);
  writeFileSync(join(outside, "victim"), "victim\n");
  writeFileSync(join(outside, "other"), "other\n");
  const untouched = () => {
    assert.deepEqual(readdirSync(outside).sort(), ["other", "victim"]);
    assert.equal(readFileSync(join(outside, "victim"), "utf8"), "victim\n");
  };
  const nothingStored = () => {
    const images = join(varDir, "images");
    assert.deepEqual(listImages(varDir), []);
    for (const d of ["layers", "meta", "tmp"]) {
      if (existsSync(join(images, d))) assert.deepEqual(readdirSync(join(images, d)), [], `images/${d} is empty`);
    }
  };
  const refused = async (archive: Uint8Array, why: RegExp) => {
    const file = join(dir.path, `a-${Math.random().toString(16).slice(2)}.tar`);
    writeFileSync(file, archive);
    const e = await rejection(importImage(file, { varDir }));
    assert.ok(e instanceof SetupError, `a SetupError, not ${e}`);
    assert.match((e as Error).message, why);
    untouched();
    nothingStored();
  };
  return { dir: dir.path, varDir, outside, refused, untouched, [Symbol.dispose]: () => dir[Symbol.dispose]() };
}

test(
  "whiteouts never reach outside the rootfs: '..', a name of '.' or '..', through a symlinked dir, opaque or not",
  async () => {
    using a = attackLab();
    const link: TarEntry = { path: "link", type: "2", linkpath: a.outside };
    const cases: Array<[TarEntry[], TarEntry[], RegExp]> = [
      [[], [{ path: "../.wh.victim", type: "0" }], /'\.\.'/],
      [[], [{ path: "etc/.wh...", type: "0" }], /whiteout of no name/],
      [[], [{ path: ".wh..", type: "0" }], /whiteout of no name/],
      [[link], [{ path: "link/.wh.victim", type: "0" }], /through the symlink "link"/],
      [[link], [{ path: "link/.wh..wh..opq", type: "0" }], /through the symlink "link"/],
      [[{ path: "d/", type: "5" }, { path: "d/l", type: "2", linkpath: a.outside }], [{
        path: "d/l/.wh.victim",
        type: "0",
      }], /through the symlink "d\/l"/],
    ];
    for (const [lower, upper, why] of cases) {
      await a.refused(
        ociLayout([{ tar: tarBytes([{ path: "etc/", type: "5" }, ...lower]) }, { tar: tarBytes(upper) }]),
        why,
      );
    }
    // A whiteout of the symlink itself removes the link, never what it points to.
    const file = join(a.dir, "ok.tar");
    writeFileSync(file, ociLayout([{ tar: tarBytes([link]) }, { tar: tarBytes([{ path: ".wh.link", type: "0" }]) }]));
    await importImage(file, { varDir: a.varDir });
    a.untouched();
    const top = listImages(a.varDir)[0]!.layers[1]!.chainId.slice(7);
    assert.deepEqual(readdirSync(join(a.varDir, "images/layers", top)), []);
  },
  { skip },
);

test(
  "hard links out of the rootfs or through a symlink, and entries under a symlink from a lower layer, are refused",
  async () => {
    using a = attackLab();
    const link: TarEntry = { path: "link", type: "2", linkpath: a.outside };
    await a.refused(
      ociLayout([{ tar: tarBytes([{ path: "x", type: "1", linkpath: "../outside/victim" }]) }]),
      /outside the rootfs/,
    );
    await a.refused(
      ociLayout([{ tar: tarBytes([{ path: "x", type: "1", linkpath: `${a.outside}/victim` }]) }]),
      /absolute/,
    );
    await a.refused(
      ociLayout([{ tar: tarBytes([link]) }, { tar: tarBytes([{ path: "x", type: "1", linkpath: "link/victim" }]) }]),
      /through the symlink "link"/,
    );
    await a.refused(
      ociLayout([{ tar: tarBytes([link]) }, { tar: tarBytes([{ path: "link/victim", type: "0", data: "pwned" }]) }]),
      /through the symlink "link"/,
    );
    // A later layer replacing the symlink by a directory replaces the link, never its target.
    const file = join(a.dir, "ok.tar");
    writeFileSync(
      file,
      ociLayout([{ tar: tarBytes([link]) }, {
        tar: tarBytes([{ path: "link/", type: "5" }, { path: "link/victim", type: "0", data: "mine" }]),
      }]),
    );
    await importImage(file, { varDir: a.varDir });
    a.untouched();
  },
  { skip },
);

test(
  "digests that lie, blobs that are missing, and manifest paths with '..' or absolute are refused before any layer is kept",
  async () => {
    using a = attackLab();
    const layer = tarBytes([{ path: "f", type: "0", data: "f" }]);
    // A blob whose bytes are not its name's.
    await a.refused(
      ociLayout([{ tar: layer }], {
        mutate: (entries) => {
          const e = entries.find((x) => x.path.startsWith("blobs/sha256/") && x.data === layer)!;
          entries[entries.indexOf(e)] = { ...e, data: tarBytes([{ path: "f", type: "0", data: "g" }]) };
        },
      }),
      /whose sha256 is/,
    );
    // A layer whose uncompressed bytes are not its diff ID.
    await a.refused(
      ociLayout([{ tar: layer, compress: "gzip", diffId: `sha256:${"0".repeat(64)}` }]),
      /uncompressed bytes have the digest/,
    );
    // A descriptor's digest that is not a digest (a path out).
    await a.refused(
      ociLayout([{ tar: layer }], {
        mutate: (entries) => {
          const i = entries.findIndex((x) => x.path === "index.json");
          const index = JSON.parse(String(entries[i]!.data));
          index.manifests[0].digest = "sha256:../../../outside/victim";
          entries[i] = { ...entries[i]!, data: JSON.stringify(index) };
        },
      }),
      /not a sha256 digest/,
    );
    // docker-archive: Layers and Config paths out of the archive, or absolute.
    const docker = (manifest: unknown, more: TarEntry[] = []) =>
      tarBytes([{ path: "manifest.json", type: "0", data: JSON.stringify(manifest) }, ...more]);
    const config = JSON.stringify({ rootfs: { type: "layers", diff_ids: [`sha256:${sha256(layer)}`] } });
    await a.refused(
      docker([{ Config: "c.json", RepoTags: ["x:1"], Layers: ["../outside/victim"] }], [{
        path: "c.json",
        type: "0",
        data: config,
      }]),
      /leaves the archive/,
    );
    await a.refused(
      docker([{ Config: `${a.outside}/victim`, RepoTags: ["x:1"], Layers: [] }]),
      /absolute/,
    );
    await a.refused(
      docker([{ Config: "c.json", RepoTags: ["x:1"], Layers: ["l.tar"] }], [
        { path: "c.json", type: "0", data: config },
        { path: "l.tar", type: "2", linkpath: "../../outside/victim" },
      ]),
      /points out of the archive/,
    );
    // A name docker would refuse.
    await a.refused(
      docker([{ Config: "c.json", RepoTags: ["../../x:1"], Layers: ["l.tar"] }], [
        { path: "c.json", type: "0", data: config },
        { path: "l.tar", type: "0", data: layer },
      ]),
      /not an image name/,
    );
    // And the same archive with a good name imports.
    const file = join(a.dir, "ok.tar");
    writeFileSync(
      file,
      docker([{ Config: "c.json", RepoTags: ["x:1"], Layers: ["l.tar"] }], [
        { path: "c.json", type: "0", data: config },
        { path: "l.tar", type: "0", data: layer },
      ]),
    );
    const r = await importImage(file, { varDir: a.varDir });
    assert.deepEqual(r.images[0]!.names, ["x:1"]);
    assert.equal(lstatSync(join(a.varDir, "images")).mode & 0o777, 0o700, "the store is kept from other users");
  },
  { skip },
);
