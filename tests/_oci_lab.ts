/**
 * What the OCI runtime tests share: the runtime under test as a command, and a way to run a
 * command whose output a container left behind cannot hold open.
 * @module
 */
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtime, tempDir } from "./_harness.ts";
import { buildRootfs } from "../src/container/rootfs.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The OCI runtime (hako-runc) as a command, for this test run's JavaScript runtime (a script in `dir` for Bun). */
export function launcher(dir: string): string {
  if (runtime === "deno") return join(ROOT, "bin/hako-runc");
  const path = join(dir, "hako-runc-bun");
  writeFileSync(
    path,
    `#!/bin/sh\nexec "${join(ROOT, "node_modules/.bin/bun")}" "${join(ROOT, "src/cli/main.ts")}" oci "$@"\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

/** One OCI runtime a comparison runs: its name (for messages and state directories), command and environment. */
export interface RuntimeUnderTest {
  readonly who: string;
  readonly bin: string;
  readonly env: Record<string, string>;
}

/**
 * The runtimes a side-by-side test runs one bundle with: hako-runc on the native child and on the
 * forked one (`HAKO_NATIVE_SPAWN=0`), then runc where it is installed.
 * @param dir Where the Bun launcher is written (see {@link launcher}).
 */
export function runtimesToCompare(dir: string, runc = "/usr/sbin/runc"): RuntimeUnderTest[] {
  const hako = launcher(dir);
  return [
    { who: "hako-native", bin: hako, env: {} },
    { who: "hako-forked", bin: hako, env: { HAKO_NATIVE_SPAWN: "0" } },
    ...(has(runc) ? [{ who: "runc", bin: runc, env: {} }] : []),
  ];
}

/** How a command ended, and what it printed. */
export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command and waits for it. Its stdout and stderr are files, not pipes: a container that
 * `create` leaves behind inherits them (as runc's does), and a pipe would stay open until it ends.
 */
export function runIt(cmd: string, args: string[], env: Record<string, string> = {}, extraFds: number[] = []): Run {
  using io = tempDir("hako-test-oci-io-");
  const out = openSync(join(io.path, "out"), "w+"), err = openSync(join(io.path, "err"), "w+");
  try {
    // (extraFds: the command's fds 3, 4… — what --preserve-fds passes on)
    const r = spawnSync(cmd, args, {
      stdio: ["ignore", out, err, ...extraFds],
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
    return {
      status: r.status ?? -1,
      stdout: readFileSync(join(io.path, "out"), "utf8"),
      stderr: readFileSync(join(io.path, "err"), "utf8"),
    };
  } finally {
    closeSync(out);
    closeSync(err);
  }
}

/**
 * podman's global options for a test: its storage, run root and temp dir under `dir` (the host's
 * image store is never touched), the vfs driver, the cgroup manager, no events log.
 */
export function podmanStorage(dir: string, cgroupManager: "cgroupfs" | "systemd" = "cgroupfs"): string[] {
  return [
    "--root",
    join(dir, "storage"),
    "--runroot",
    join(dir, "run"),
    "--tmpdir",
    join(dir, "tmp"),
    "--storage-driver",
    "vfs",
    "--cgroup-manager",
    cgroupManager,
    "--events-backend",
    "none",
  ];
}

/**
 * `podman run`'s options every test passes: this machine's hard limits are below podman's default
 * rlimits (runc needs the same), and no network.
 */
export const PODMAN_RUN_LIMITS: readonly string[] = [
  "--ulimit",
  "nofile=1024:1024",
  "--ulimit",
  "nproc=1024:1024",
  "--network",
  "none",
];

/** True when `cmd args` runs and exits 0 (a tool is installed and works). */
export function has(cmd: string, args: string[] = ["--version"]): boolean {
  try {
    execFileSync(cmd, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** The name `imageArchive`'s image is imported as (containerd's `ctr image import`). */
export const IMAGE = "docker.io/library/hako-test-ctr:latest";

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/**
 * An OCI image archive (an image layout in a tar, as `podman save --format oci-archive` writes)
 * of one layer: hako's busybox rootfs. Named `IMAGE` by the `io.containerd.image.name` annotation
 * `ctr image import` reads.
 */
export function imageArchive(dir: string): string {
  const rootfs = join(dir, "image-rootfs");
  buildRootfs(rootfs, { builder: "busybox" });
  const layout = join(dir, "layout");
  const blobs = join(layout, "blobs/sha256");
  mkdirSync(blobs, { recursive: true });
  const layerTar = join(dir, "layer.tar");
  execFileSync("tar", ["--numeric-owner", "-C", rootfs, "-cf", layerTar, "."]);
  const blob = (bytes: Uint8Array | string, mediaType: string) => {
    const digest = sha256(bytes);
    writeFileSync(join(blobs, digest), bytes);
    return {
      mediaType,
      digest: `sha256:${digest}`,
      size: typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.length,
    };
  };
  const layerBytes = readFileSync(layerTar);
  const layer = blob(layerBytes, "application/vnd.oci.image.layer.v1.tar");
  const config = blob(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["sh"] },
      rootfs: { type: "layers", diff_ids: [`sha256:${sha256(layerBytes)}`] },
    }),
    "application/vnd.oci.image.config.v1+json",
  );
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config,
      layers: [layer],
    }),
    "application/vnd.oci.image.manifest.v1+json",
  );
  writeFileSync(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        ...manifest,
        annotations: { "io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "latest" },
      }],
    }),
  );
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const archive = join(dir, "image.tar");
  execFileSync("tar", ["-C", layout, "-cf", archive, "."]);
  return archive;
}
