/**
 * OCI runtime benchmark (measurement 8): what each runc command costs, cold, for hako and its
 * peers side by side — shims (conmon, containerd-shim) call the runtime several times per container,
 * so each command's start matters, not only a container's.
 *
 *   - per command (`create`, `state`, `start`, `exec` of `/bin/true`, `kill`, `delete`) over one
 *     lifecycle of a container running `sleep` in the shared busybox rootfs, and `run` of `/bin/true` (the start benchmark's
 *     bundle): runc (the base of every section: the target is ×1.0 of it), crun, hako compiled
 *     (`dist/hako-runc`, the link `npm run build` makes) and hako's Deno entry (`bin/hako-runc`), each
 *     with a `--root` of its own in a temp dir; `hako run SPEC` of the same container cold
 *     (`dist/hako` and `bin/hako`) in the `run` section; and the floors — `bun` and `deno run` of an
 *     empty file — in the `state` section, the cheapest command;
 *   - `podman run --rm IMAGE /bin/true` with `--runtime` runc, dist/hako-runc and bin/hako-runc
 *     (podman's storage in a temp dir, vfs, cgroupfs, no network), and `ctr run --rm` with
 *     `--runc-binary` the same three (a containerd of its own on a temp socket, the image imported
 *     from an OCI archive of the busybox rootfs), each skipped with the reason when podman or
 *     containerd is missing or a run fails.
 *
 * Every command line is timed by the same spawnSync loop (warm-up, then 20 runs, `--quick` 5; the
 * engine rows 10 and 3), median/min/max; each row's note gives its ratio to crun's median of the same
 * command. The runtimes' rows are taken in rounds — in each, runc, crun, hako before (below) and
 * hako run one lifecycle and one `run` each, in turn — so that on a loaded host every runtime's
 * times, and the ratios between them, come from the same moments (timed one runtime after another,
 * a before/after pair could differ by the load alone). crun on this hybrid-cgroup host wants a v1 hugetlb hierarchy: mounted for the benchmark
 * and always undone (`withHugetlb`). Everything made is removed, also on failure. JSON:
 * bench/results/oci-<date>.json.
 *
 * `--compiled`: the compiled rows only (runc, crun, `dist/hako-runc`, `dist/hako run SPEC`, the
 * `bun` floor): no Deno entry, podman or ctr — for measuring a change to the compiled path in a
 * minute. `HAKO_RUNC_BEFORE=PATH` adds a row per command for another hako-runc (a build of an
 * earlier commit, e.g. `HAKO_OUT=/tmp/before/hako bash tools/build.sh`), before/after in one run.
 *
 * Run (root): node_modules/.bin/deno run -A --v8-flags=--single-threaded bench/oci.ts [--quick] [--compiled]
 *   (or `bench/run.ts`, which runs it with the other measurements in one table).
 * @module
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { makeBundle } from "./bundle.ts";
import { benchSpec } from "./start_lib.ts";
import { benchRootfs } from "./start.ts";
import {
  environment,
  printTable,
  QUICK,
  ROOT,
  type Row,
  skip,
  skipped,
  stats,
  timeCommand,
  which,
  withHugetlb,
  writeResults,
} from "./_lib.ts";

const RUNS = QUICK ? 5 : 20;
const ENGINE_RUNS = QUICK ? 3 : 10;
const WARMUP = 2;
const COMMANDS = ["create", "state", "start", "exec", "kill", "delete"] as const;
/** `--compiled`: only the compiled rows (see the module's comment). */
const COMPILED_ONLY = process.argv.includes("--compiled");

/** An OCI runtime as a command-line prefix (its `--root` included). */
interface Runtime {
  readonly name: string;
  readonly argv: readonly string[];
  /** The binary alone (for podman's --runtime and ctr's --runc-binary). */
  readonly binary: string;
}

/**
 * Runs a command line once; its duration in ms. Its stderr goes to a file, not a pipe: `create`
 * leaves the container's process holding it, and a pipe would not end until that process does.
 * @throws When it exits non-zero.
 */
function timed(argv: readonly string[], errFile: string): number {
  const err = openSync(errFile, "w");
  let r;
  const t = performance.now();
  try {
    r = spawnSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", err] });
  } finally {
    closeSync(err);
  }
  const dt = performance.now() - t;
  if (r.status !== 0) {
    throw new Error(
      `${argv.join(" ")}: exit ${r.status ?? r.signal ?? r.error}: ${readFileSync(errFile, "utf8").trim()}`,
    );
  }
  return dt;
}

/** The runtime's `state` status of `id`, or undefined. */
function status(rt: Runtime, id: string): string | undefined {
  const r = spawnSync(rt.argv[0]!, [...rt.argv.slice(1), "state", id], { encoding: "utf8" });
  try {
    return r.status === 0 ? JSON.parse(r.stdout).status : undefined;
  } catch {
    return undefined;
  }
}

/** One runtime's series: its times per command, and why a part of it stopped (then skipped). */
interface Series {
  readonly rt: Runtime;
  /** The prefix of its container ids. */
  readonly tag: string;
  readonly times: Record<string, number[]>;
  /** The create…delete lifecycle failed: why (its rows are skipped). */
  lifecycleFailed?: string;
  /** `run` failed: why. */
  runFailed?: string;
}

/**
 * One lifecycle of one container (create, state, start, exec /bin/true, kill KILL, delete; waiting,
 * untimed, for it to stop after the kill): the time of each command.
 * @throws When a command fails (the container is deleted with --force).
 */
function lifecycleOnce(rt: Runtime, bundle: string, id: string, errFile: string): Record<string, number> {
  const t: Record<string, number> = {};
  try {
    t.create = timed([...rt.argv, "create", "--bundle", bundle, id], errFile);
    t.state = timed([...rt.argv, "state", id], errFile);
    t.start = timed([...rt.argv, "start", id], errFile);
    t.exec = timed([...rt.argv, "exec", id, "/bin/true"], errFile);
    t.kill = timed([...rt.argv, "kill", id, "KILL"], errFile);
    for (let k = 0; k < 500 && status(rt, id) !== "stopped"; k++) spawnSync("sleep", ["0.01"]);
    t.delete = timed([...rt.argv, "delete", id], errFile);
  } finally {
    if (t.delete === undefined) spawnSync(rt.argv[0]!, [...rt.argv.slice(1), "delete", "--force", id]);
  }
  return t;
}

/**
 * `WARMUP + RUNS` rounds; in each, every runtime in turn runs one lifecycle of a container and one
 * `run` of `/bin/true` (the order reversed every other round): so each runtime's times are taken
 * under the same load as the others', and the ratios hold on a busy host where one runtime's series
 * after the other's would not (crun's turn with the hugetlb hierarchy mounted, see withHugetlb).
 * Rows per command (section `oci-<command>`, `oci-run`), or a loud skip for a runtime whose
 * lifecycle or run fails (the others go on).
 */
function interleaved(
  runtimes: readonly Runtime[],
  bundles: { readonly sleep: string; readonly run: string },
  tag: string,
  errFile: string,
): Row[] {
  const series: Series[] = runtimes.map((rt) => ({
    rt,
    tag: `${tag}-${rt.name.split(" ").slice(0, 2).join("-").replace(/[^A-Za-z0-9-]/g, "")}`,
    times: Object.fromEntries([...COMMANDS, "run"].map((c) => [c, []])),
  }));
  for (let i = 0; i < WARMUP + RUNS; i++) {
    for (const s of i % 2 === 0 ? series : [...series].reverse()) {
      const turn = () => {
        if (!s.lifecycleFailed) {
          try {
            const t = lifecycleOnce(s.rt, bundles.sleep, `${s.tag}-${i}`, errFile);
            if (i >= WARMUP) { for (const c of COMMANDS) s.times[c]!.push(t[c]!); }
          } catch (e) {
            s.lifecycleFailed = (e as Error).message.slice(0, 400);
          }
        }
        if (!s.runFailed) {
          // run: create + start + wait + delete in one command
          const id = `${s.tag}-run-${i}`;
          try {
            const t = timed([...s.rt.argv, "run", "--bundle", bundles.run, id], errFile);
            if (i >= WARMUP) s.times.run!.push(t);
          } catch (e) {
            s.runFailed = (e as Error).message.slice(0, 300);
          } finally {
            spawnSync(s.rt.argv[0]!, [...s.rt.argv.slice(1), "delete", "--force", id]);
          }
        }
      };
      // (crun only with the hugetlb hierarchy mounted, and only crun: see withHugetlb)
      if (s.rt.name === "crun") withHugetlb(turn);
      else turn();
    }
  }
  const rows: Row[] = [];
  for (const s of series) {
    const out: Row[] = [];
    if (s.lifecycleFailed) skip(`${s.rt.name}: create/state/start/exec/kill/delete`, s.lifecycleFailed);
    else out.push(...COMMANDS.map((c) => stats(`oci-${c}`, `${s.rt.name} ${c}`, s.times[c]!)));
    if (s.runFailed) skip(`${s.rt.name} run`, `failed: ${s.runFailed}`);
    else out.push(stats("oci-run", `${s.rt.name} run`, s.times.run!));
    for (const r of out) r.baseline = s.rt.name === "runc";
    rows.push(...out);
  }
  return rows;
}

/** Runs the OCI benchmark; returns its rows (runc the base of each section). */
export async function ociBenchmark(print = true): Promise<Row[]> {
  if (process.getuid?.() !== 0) {
    skip("oci benchmark", "needs root");
    return [];
  }
  const rows: Row[] = [];
  const rootfs = benchRootfs();
  const tmp = mkdtempSync(join(tmpdir(), "hako-bench-oci-"));
  const tag = `hako-bench-oci-${process.pid}`;
  const runBundle = makeBundle(rootfs);
  const sleepBundle = makeBundle(rootfs, ["/bin/sleep", "1000"]);
  try {
    const dist = join(ROOT, "dist/hako-runc");
    const runtimes: Runtime[] = [];
    const add = (name: string, binary: string | undefined, why: string) => {
      if (!binary || !existsSync(binary)) return skip(name, why);
      const root = join(tmp, `root-${runtimes.length}`);
      runtimes.push({ name, binary, argv: [binary, "--root", root] });
    };
    add("runc", which("runc"), "not installed (apt-get install runc)");
    add("crun", which("crun"), "not installed (apt-get install crun)");
    const before = process.env.HAKO_RUNC_BEFORE;
    if (before) add("hako before (HAKO_RUNC_BEFORE)", before, `HAKO_RUNC_BEFORE=${before}: not found`);
    add("hako compiled (dist/hako-runc)", dist, "dist/hako-runc missing: make it with `npm run build`");
    if (!COMPILED_ONLY) add("hako Deno (bin/hako-runc)", join(ROOT, "bin/hako-runc"), "bin/hako-runc missing");

    rows.push(...interleaved(runtimes, { sleep: sleepBundle.dir, run: runBundle.dir }, tag, join(tmp, "stderr")));
    // hako's own `run SPEC` of the same container, cold
    const spec = join(tmp, "spec.ts");
    writeFileSync(
      spec,
      `export default () => (${JSON.stringify({ ...benchSpec(rootfs, `${tag}-spec`), stdio: "inherit" })});\n`,
    );
    const hakos = [["dist/hako", join(ROOT, "dist/hako")], ["bin/hako", join(ROOT, "bin/hako")]] as const;
    for (const [name, hako] of COMPILED_ONLY ? hakos.slice(0, 1) : hakos) {
      if (!existsSync(hako)) {
        skip(`${name} run SPEC`, `${name} missing`);
        continue;
      }
      push(
        rows,
        timeCommand("oci-run", `${name} run SPEC (cold)`, () => [hako, "run", spec], { warmup: WARMUP, runs: RUNS }),
      );
    }

    // the floors, beside the cheapest command
    const empty = join(tmp, "empty.ts");
    writeFileSync(empty, "");
    const bun = join(ROOT, "node_modules/.bin/bun");
    const deno = join(ROOT, "node_modules/.bin/deno");
    const o = { warmup: WARMUP, runs: RUNS };
    if (existsSync(bun)) push(rows, timeCommand("oci-state", "floor: bun empty.ts", () => [bun, empty], o));
    if (existsSync(deno) && !COMPILED_ONLY) {
      push(rows, timeCommand("oci-state", "floor: deno run empty.ts", () => [deno, "run", "-A", empty], o));
    }

    if (!COMPILED_ONLY) {
      const engines = runtimes.filter((r) => r.name !== "crun" && !r.name.startsWith("hako before"));
      rows.push(...podmanRows(engines, rootfs, tmp, tag));
      rows.push(...await ctrRows(engines, rootfs, tmp, tag));
    }
  } finally {
    runBundle.dispose();
    sleepBundle.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
  // one block per section, in the order the sections first appear
  const order = [...new Set(rows.map((r) => r.section))];
  rows.sort((a, b) => order.indexOf(a.section) - order.indexOf(b.section));
  // runc is each section's base; the note compares with crun's row of the same section
  for (const r of rows) {
    const crun = rows.find((c) => c.section === r.section && c.name.startsWith("crun "));
    if (crun && r !== crun) r.note = `${r.note ? `${r.note}; ` : ""}×crun ${(r.medianMs / crun.medianMs).toFixed(2)}`;
  }
  if (print) {
    printTable(
      `OCI runtime benchmark — per command, cold; ${WARMUP} warm-up + ${RUNS} runs (podman, ctr: ${ENGINE_RUNS})`,
      rows,
    );
    console.log(`wrote ${writeResults("oci", { when: new Date().toISOString(), ...environment(), rows, skipped })}`);
  }
  return rows;
}

function push(rows: Row[], r: Row | undefined): void {
  if (r) rows.push(r);
}

/** A tar of the rootfs (the image's one layer). */
function rootfsTar(rootfs: string, tmp: string): string {
  const tar = join(tmp, "rootfs.tar");
  if (!existsSync(tar)) execFileSync("tar", ["--numeric-owner", "-C", rootfs, "-cf", tar, "."]);
  return tar;
}

/**
 * `podman run --rm IMAGE /bin/true` per runtime, podman's storage in `tmp` (vfs), cgroupfs, no
 * network, as tests/oci_test.ts runs podman. The runtime keeps its default --root (podman 4.3 does
 * not pass --runtime-flag to the cleanup conmon runs).
 */
function podmanRows(runtimes: readonly Runtime[], rootfs: string, tmp: string, tag: string): Row[] {
  if (!which("podman")) return skip("podman run --rm", "podman is not installed (apt-get install podman)"), [];
  const dir = join(tmp, "podman");
  const base = [
    "--root",
    join(dir, "storage"),
    "--runroot",
    join(dir, "run"),
    "--tmpdir",
    join(dir, "tmp"),
    "--storage-driver",
    "vfs",
    "--cgroup-manager",
    "cgroupfs",
    "--events-backend",
    "none",
  ];
  const podman = (runtime: string, args: string[]) =>
    spawnSync("podman", [...base, "--runtime", runtime, ...args], { encoding: "utf8" });
  const image = `${tag}-image`;
  const rows: Row[] = [];
  try {
    const imp = podman(runtimes[0]?.binary ?? "runc", ["import", rootfsTar(rootfs, tmp), image]);
    if (imp.status !== 0) return skip("podman run --rm", `podman import failed: ${imp.stderr.trim()}`), [];
    for (const rt of runtimes) {
      const r = timeCommand("podman", `podman run --rm, --runtime ${rt.name}`, () => [
        "podman",
        ...base,
        "--runtime",
        rt.binary,
        "run",
        "--rm",
        "--network",
        "none",
        // (podman's default nofile/nproc are above this host's hard limits, which runc and hako refuse alike)
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        image,
        "/bin/true",
      ], { warmup: 1, runs: ENGINE_RUNS });
      if (r) r.baseline = rt.name === "runc";
      push(rows, r);
    }
  } finally {
    podman("runc", ["rmi", "-f", image]);
    rmSync(join(dir, "storage"), { recursive: true, force: true });
    for (const d of ["libpod_parent/conmon", "libpod_parent"]) {
      for (const c of readdirSync("/sys/fs/cgroup")) {
        try {
          rmdirSync(join("/sys/fs/cgroup", c, d));
        } catch { /* in use, or none */ }
      }
    }
  }
  return rows;
}

/** An OCI image archive of one layer (the rootfs), named `name` for `ctr image import`. */
function imageArchive(rootfs: string, tmp: string, name: string): string {
  const layout = join(tmp, "layout");
  const blobs = join(layout, "blobs/sha256");
  mkdirSync(blobs, { recursive: true });
  const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
  const blob = (bytes: Uint8Array | string, mediaType: string) => {
    const digest = sha(bytes);
    writeFileSync(join(blobs, digest), bytes);
    return {
      mediaType,
      digest: `sha256:${digest}`,
      size: typeof bytes === "string" ? new TextEncoder().encode(bytes).length : bytes.length,
    };
  };
  const layerBytes = readFileSync(rootfsTar(rootfs, tmp));
  const layer = blob(layerBytes, "application/vnd.oci.image.layer.v1.tar");
  const config = blob(
    JSON.stringify({
      architecture: process.arch === "arm64" ? "arm64" : "amd64",
      os: "linux",
      config: { Env: ["PATH=/bin"], Cmd: ["/bin/true"] },
      rootfs: { type: "layers", diff_ids: [`sha256:${sha(layerBytes)}`] },
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
      manifests: [{ ...manifest, annotations: { "io.containerd.image.name": name } }],
    }),
  );
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const archive = join(tmp, "image.tar");
  execFileSync("tar", ["-C", layout, "-cf", archive, "."]);
  return archive;
}

/**
 * `ctr run --rm --runc-binary RUNTIME IMAGE ID /bin/true` per runtime, against a containerd of its
 * own (temp root, state and socket; no CRI), which is stopped, and its shims, mounts and cgroups
 * removed, whatever happens.
 */
async function ctrRows(runtimes: readonly Runtime[], rootfs: string, tmp: string, tag: string): Promise<Row[]> {
  if (!which("containerd") || !which("ctr")) {
    return skip("ctr run --rm", "containerd is not installed (apt-get install containerd)"), [];
  }
  const dir = join(tmp, "containerd");
  mkdirSync(dir);
  const address = join(dir, "containerd.sock");
  const ns = tag;
  const image = `docker.io/library/${tag}:latest`;
  writeFileSync(
    join(dir, "config.toml"),
    'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", ' +
      '"io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", ' +
      '"io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]\n',
  );
  const log = openSync(join(dir, "containerd.log"), "w");
  const daemon = spawn("containerd", [
    "--config",
    join(dir, "config.toml"),
    "--root",
    join(dir, "root"),
    "--state",
    join(dir, "state"),
    "--address",
    address,
  ], { stdio: ["ignore", log, log], detached: true });
  closeSync(log);
  const ctr = ["ctr", "--address", address, "--namespace", ns];
  const ctrRun = (args: string[]) =>
    spawnSync(ctr[0]!, [...ctr.slice(1), ...args], { encoding: "utf8", timeout: 60_000 });
  const rows: Row[] = [];
  try {
    for (let i = 0; i < 100 && ctrRun(["version"]).status !== 0; i++) spawnSync("sleep", ["0.1"]);
    const imp = ctrRun(["image", "import", imageArchive(rootfs, dir, image)]);
    if (imp.status !== 0) return skip("ctr run --rm", `ctr image import failed: ${imp.stderr.trim()}`), [];
    runtimes.forEach((rt, k) => {
      const name = `ctr run --rm, --runc-binary ${rt.name}`;
      const r = timeCommand("ctr", name, (i) => [
        ...ctr,
        "run",
        "--rm",
        "--runc-binary",
        rt.binary,
        "--runc-root",
        join(dir, `runc-root-${k}`),
        image,
        `${tag}-${k}-${i}`,
        "/bin/true",
      ], { warmup: 1, runs: ENGINE_RUNS });
      if (r) r.baseline = rt.name === "runc";
      push(rows, r);
    });
  } finally {
    for (const id of ctrRun(["container", "list", "-q"]).stdout?.split("\n").filter(Boolean) ?? []) {
      ctrRun(["task", "kill", "-s", "SIGKILL", id]);
      ctrRun(["task", "delete", "-f", id]);
      ctrRun(["container", "delete", id]);
    }
    daemon.kill("SIGTERM");
    for (let i = 0; i < 50 && daemon.exitCode === null && daemon.signalCode === null; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill("SIGKILL");
    // shims outlive a stopped containerd: those of this socket go; then the mounts and cgroups left
    for (const p of readdirSync("/proc")) {
      if (!/^\d+$/.test(p)) continue;
      try {
        if (readFileSync(`/proc/${p}/cmdline`, "utf8").includes(address)) process.kill(Number(p), "SIGKILL");
      } catch { /* gone */ }
    }
    const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "")
      .filter((m) => m.startsWith(dir + "/")).sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync("umount", ["-l", m]);
    for (const c of readdirSync("/sys/fs/cgroup")) {
      const d = join("/sys/fs/cgroup", c, ns);
      if (!existsSync(d) || !statSync(d).isDirectory()) continue;
      for (const sub of readdirSync(d)) {
        try {
          rmdirSync(join(d, sub));
        } catch { /* a file, or busy */ }
      }
      try {
        rmdirSync(d);
      } catch { /* busy */ }
    }
  }
  return rows;
}

if (import.meta.main) await ociBenchmark();
