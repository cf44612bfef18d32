/**
 * Fleet benchmark (seed 001): 100 busybox web servers, each in its own pid/ipc/uts/mount/user
 * namespaces with its own uid/gid range of 100 and a 30% CPU quota, on the host's network:
 *
 *   - hako, the article's loop: `PORT=$port hako start examples/fleet/web.ts` 100 times,
 *   - hako, one call: `hako start examples/fleet/web.ts --each PORT=10001..10100`, extracting
 *     each rootfs from the image, then the same again with the rootfs dirs already there (as
 *     crun's bundles are),
 *   - crun: `crun run -d` 100 times, one bundle per container (the same image, extracted once and
 *     shared read-only, a tmpfs /var/www, the same id ranges, namespaces and CPU quota),
 *   - haconiwa: the article's published numbers (no run: haconiwa is not packaged here).
 *
 * For each: the time to start all (the start commands, back to back), the time until every port
 * answered with its page, and the runtime's memory while all run: hako's is the PSS of its
 * supervisor (and any other hako process), crun's the PSS of processes named crun/conmon (`crun
 * run -d` leaves none: ~0), haconiwa's one `haconiwa start` per container at 3.3 MB RSS (the
 * article's `ps` listing: 3292–3364 kB each) × 100 = 330 MB. Each run is torn down and checked
 * for leftovers (examples/fleet/run.ts). JSON goes to bench/results/fleet-<date>.json.
 *
 * crun refuses a host whose cgroup2 holds hugetlb while /sys/fs/cgroup/hugetlb is missing: for its
 * row only, this mounts a v1 hugetlb hierarchy there and always undoes it.
 *
 * Run (root): sudo node_modules/.bin/deno run -A --v8-flags=--single-threaded bench/fleet.ts
 * Env: HAKO_BENCH_FLEET_N (default 100), HAKO_IMAGE (default /var/lib/hako/images/busybox-web.tar.gz).
 * A missing peer (no `hako start` yet, no crun) is skipped with a loud line, never a failure.
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { buildImage } from "../examples/fleet/image.ts";
import { withHugetlb } from "./_lib.ts";
import { fetchPage, HAKO_BIN, processTree, processUid, pssKb, runFleet } from "../examples/fleet/run.ts";
import { RANGE } from "../examples/fleet/web.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const N = Math.max(1, Number(process.env.HAKO_BENCH_FLEET_N ?? 100));
const FIRST_PORT = 10001;
/** haconiwa's memory per container, from the article's `ps` (RSS of each `haconiwa start`, kB). */
const HACONIWA_KB_PER_CONTAINER = 3.3 * 1024;

/** One row of the table. */
export interface FleetRow {
  name: string;
  /** All start commands, back to back. */
  startAllMs?: number;
  /** Until every port answered with its page. */
  readyMs?: number;
  /** The runtime's own memory while the fleet runs (PSS, or the published RSS for haconiwa). */
  memoryKb: number;
  memoryNote: string;
  leftovers?: string[];
}

function skip(name: string, why: string): void {
  console.log(`!!! SKIPPED ${name}: ${why}`);
}

function which(cmd: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The hako rows: one fleet per mode, each with fresh state, rootfs dirs and supervisor. */
async function hakoRows(image: string): Promise<FleetRow[]> {
  const help = spawnSync(HAKO_BIN, ["start", "--help"], { stdio: "ignore" });
  if (help.status !== 0) {
    skip(
      "hako start (both rows)",
      `\`bin/hako start --help\` exits ${help.status}: the lifecycle CLI is not there yet`,
    );
    return [];
  }
  const rows: FleetRow[] = [];
  // The last run reuses the rootfs dirs the one before extracted, as crun's row reuses its bundles.
  const runs = [
    { mode: "per-container", name: `hako: ${N} × \`PORT=p hako start web.ts\` (+ extraction)`, vars: "a", keep: false },
    { mode: "one-call", name: `hako: one \`hako start web.ts --each\` (+ extraction)`, vars: "b", keep: true },
    { mode: "one-call", name: `hako: the same, each rootfs already extracted`, vars: "b", keep: false },
  ] as const;
  const base = mkdtempSync(join(tmpdir(), "hako-bench-fleet-"));
  chmodSync(base, 0o755);
  try {
    for (const { mode, name, vars, keep } of runs) {
      const tmp = mkdtempSync(join(base, "run-"));
      chmodSync(tmp, 0o755);
      try {
        const r = await runFleet({
          count: N,
          mode,
          firstPort: FIRST_PORT,
          image,
          varDir: join(base, `var-${vars}`),
          stateDir: join(tmp, "state"),
          stopSupervisor: true,
          keepRootfs: keep,
          log: (l) => console.log(`  ${l}`),
        });
        rows.push({
          name,
          startAllMs: r.startMs,
          readyMs: r.readyMs,
          memoryKb: r.hako.totalPssKb,
          memoryNote: `PSS of ${r.hako.processes.length} hako process(es): the supervisor`,
          leftovers: [...r.leftovers],
        });
      } catch (e) {
        skip(name, `failed: ${(e as Error).message}`);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  return rows;
}

/** An OCI config for one crun container of the fleet, from `crun spec`'s template. */
function crunConfig(template: Record<string, unknown>, rootfs: string, port: number): Record<string, unknown> {
  const c = structuredClone(template) as {
    root: unknown;
    hostname: string;
    process: { args: string[]; terminal: boolean; user: unknown; env: string[] };
    mounts: Array<Record<string, unknown>>;
    linux: Record<string, unknown>;
  };
  const rootId = port * RANGE;
  c.root = { path: rootfs, readonly: true };
  c.hostname = `crun-web-${port}`;
  c.process.terminal = false;
  c.process.user = { uid: 48, gid: 48 };
  c.process.args = [
    "/bin/sh",
    "-c",
    `echo "hello from web-${port}" > /var/www/index.html && exec /bin/busybox httpd -f -p ${port} -h /var/www`,
  ];
  c.mounts = [
    ...c.mounts.filter((m) => m.destination !== "/sys" && m.destination !== "/sys/fs/cgroup"),
    // sysfs needs a net namespace of the container's own user namespace: bind the host's instead
    { destination: "/sys", type: "bind", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"] },
    { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
    {
      destination: "/var/www",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "nodev", "mode=755", "uid=48", "gid=48"],
    },
    { destination: "/etc/resolv.conf", type: "bind", source: "/etc/resolv.conf", options: ["bind", "ro"] },
    { destination: "/etc/hosts", type: "bind", source: "/etc/hosts", options: ["bind", "ro"] },
  ];
  c.linux.namespaces = ["pid", "ipc", "uts", "mount", "user"].map((type) => ({ type }));
  c.linux.uidMappings = [{ containerID: 0, hostID: rootId, size: RANGE }];
  c.linux.gidMappings = [{ containerID: 0, hostID: rootId, size: RANGE }];
  c.linux.cgroupsPath = `crun-web-${port}`;
  c.linux.resources = { cpu: { quota: 30_000, period: 100_000 } };
  return c;
}

/** The crun row: 100 × `crun run -d`, one bundle each, sharing one extracted rootfs read-only. */
async function crunRow(image: string): Promise<FleetRow | undefined> {
  if (!which("crun")) {
    skip("crun", "not installed (apt-get install crun)");
    return undefined;
  }
  const tmp = mkdtempSync(join(tmpdir(), "hako-bench-fleet-crun-"));
  chmodSync(tmp, 0o755);
  const ports = Array.from({ length: N }, (_, i) => FIRST_PORT + i);
  const names = ports.map((p) => `hako-bench-web-${p}`);
  const started: string[] = [];
  try {
    const rootfs = join(tmp, "rootfs");
    mkdirSync(rootfs, { mode: 0o755 });
    const x = spawnSync("tar", ["--numeric-owner", "-xzf", image, "-C", rootfs], { encoding: "utf8" });
    if (x.status !== 0) throw new Error(`tar -x: ${x.stderr.trim()}`);
    writeFileSync(join(rootfs, "etc/resolv.conf"), ""); // a mount point for the bind (the root is read-only)
    const s = spawnSync("crun", ["spec", "-b", tmp], { encoding: "utf8" });
    if (s.status !== 0) throw new Error(`crun spec: ${s.stderr.trim()}`);
    const template = JSON.parse(readFileSync(join(tmp, "config.json"), "utf8"));
    const bundles = ports.map((port) => {
      const dir = join(tmp, `bundle-${port}`);
      mkdirSync(dir);
      writeFileSync(join(dir, "config.json"), JSON.stringify(crunConfig(template, rootfs, port)));
      return dir;
    });
    const errFile = join(tmp, "crun.err");
    const errFd = openSync(errFile, "w");
    return await withHugetlb(async () => {
      try {
        const t0 = performance.now();
        for (const [i, name] of names.entries()) {
          // stderr to a file: the detached container inherits it, and a pipe would never close
          const r = spawnSync("crun", ["run", "-d", "-b", bundles[i]!, name], { stdio: ["ignore", "ignore", errFd] });
          if (r.status !== 0) {
            throw new Error(
              `crun run -d ${name}: exit ${r.status}: ${readFileSync(errFile, "utf8").trim().slice(-500)}`,
            );
          }
          started.push(name);
        }
        const startAllMs = performance.now() - t0;
        await Promise.all(ports.map(async (port) => {
          const body = await fetchPage(port);
          if (!body.includes(`hello from web-${port}`)) throw new Error(`port ${port} answered ${body.slice(0, 100)}`);
        }));
        const readyMs = performance.now() - t0;
        for (const [i, name] of names.entries()) {
          const st = JSON.parse(spawnSync("crun", ["state", name], { encoding: "utf8" }).stdout) as { pid: number };
          const want = ports[i]! * RANGE + 48;
          if (!processTree(st.pid).some((p) => processUid(p) === want)) {
            throw new Error(`${name}: no process as ${want}`);
          }
        }
        // zombies (crun's exited intermediate processes, not yet reaped by init) hold no memory
        const runtimePids = readdirPids().filter((pid) => /^(crun|conmon)$/.test(comm(pid)) && !isZombie(pid));
        const memoryKb = runtimePids.reduce((sum, pid) => sum + pssKb(pid), 0);
        return {
          name: `crun: ${N} × \`crun run -d\``,
          startAllMs,
          readyMs,
          memoryKb,
          memoryNote: `PSS of ${runtimePids.length} crun/conmon process(es) left running` +
            (runtimePids.length ? ` (uids ${[...new Set(runtimePids.map(processUid))].join(",")})` : ""),
        };
      } finally {
        for (const name of started) spawnSync("crun", ["delete", "-f", name], { stdio: "ignore" });
        closeSync(errFd);
      }
    });
  } catch (e) {
    skip("crun", `failed: ${(e as Error).message}`);
    return undefined;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function readdirPids(): number[] {
  return spawnSync("ls", ["/proc"], { encoding: "utf8" }).stdout.split("\n").filter((d) => /^\d+$/.test(d)).map(
    Number,
  );
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** Runs the fleet benchmark, prints the table, writes the JSON; returns the rows. */
export async function fleetBenchmark(): Promise<FleetRow[]> {
  if (process.getuid?.() !== 0) {
    skip("fleet benchmark", "needs root");
    return [];
  }
  const image = buildImage(process.env.HAKO_IMAGE).path;
  const rows: FleetRow[] = [];
  rows.push(...await hakoRows(image));
  const crun = await crunRow(image);
  if (crun) rows.push(crun);
  rows.push({
    name: `haconiwa (published, seed 001)`,
    memoryKb: HACONIWA_KB_PER_CONTAINER * N,
    memoryNote: `one \`haconiwa start\` per container, 3.3 MB RSS each (the article's ps) × ${N}`,
  });

  const pad = (s: string, n: number) => s.padEnd(n);
  const ms = (v: number | undefined) => v === undefined ? "—" : v.toFixed(0);
  console.log(`\nfleet benchmark — ${N} busybox httpd containers, own uid/gid range each, 30% CPU, host network`);
  // ×crun: start-all time over crun's, in this run
  const ratio = (v: number | undefined) =>
    v === undefined || crun?.startAllMs === undefined ? "—" : (v / crun.startAllMs).toFixed(2);
  const width = Math.max(44, ...rows.map((r) => r.name.length));
  console.log(
    `${pad("what", width)} ${pad("start all ms", 13)} ${pad("×crun", 6)} ${pad("all answer ms", 14)} ${
      pad("runtime MiB", 12)
    } note`,
  );
  for (const r of rows) {
    console.log(
      `${pad(r.name, width)} ${pad(ms(r.startAllMs), 13)} ${pad(ratio(r.startAllMs), 6)} ${pad(ms(r.readyMs), 14)} ${
        pad((r.memoryKb / 1024).toFixed(1), 12)
      } ${r.memoryNote}${r.leftovers?.length ? ` — LEFT BEHIND: ${r.leftovers.join("; ")}` : ""}`,
    );
  }
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `fleet-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  const bun = spawnSync(join(ROOT, "node_modules/.bin/bun"), ["--version"], { encoding: "utf8" }).stdout?.trim();
  writeFileSync(
    file,
    JSON.stringify(
      { when: new Date().toISOString(), arch: process.arch, n: N, deno: Deno.version.deno, bun, rows },
      null,
      2,
    ),
  );
  console.log(`wrote ${file}`);
  return rows;
}

if (import.meta.main) await fleetBenchmark();
