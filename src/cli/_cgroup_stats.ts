/**
 * What `hako stats` and `hako top` read of a running container: the directories of its cgroup (v1:
 * one per hierarchy it has, v2: one), the processes in it, and one sample of its counters — CPU
 * time, memory and its limit, block and network I/O, processes — from the kernel's files, with the
 * pure arithmetic that turns two samples into docker's `stats` columns.
 * @module
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export { containerCgroupDirs } from "../container/cgroup_paths.ts";

/**
 * The processes of a container: those in its cgroup (`cgroup.procs`), or, without one, its init
 * and every descendant of it (from /proc's parent pids).
 */
export function containerPids(initPid: number, dirs: readonly string[]): number[] {
  for (const d of dirs) {
    const t = read(join(d, "cgroup.procs"));
    if (t !== undefined) return t.split("\n").filter(Boolean).map(Number);
  }
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = read(`/proc/${entry}/stat`);
    if (!s) continue;
    const ppid = Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(initPid);
  return out;
}

/** One reading of a container's counters. */
export interface StatsSample {
  /** When it was taken (ms, a monotonic clock). */
  readonly atMs: number;
  /** CPU time its processes used so far, ns (null: unknown). */
  readonly cpuNs: number | null;
  /** Memory in use, bytes, less the inactive page cache (as docker counts it). */
  readonly memory: number | null;
  /** Its memory limit, bytes (the host's memory when it has none). */
  readonly memoryLimit: number | null;
  /** Bytes read and written to block devices. */
  readonly blockRead: number | null;
  readonly blockWrite: number | null;
  /** Bytes received and sent on its network interfaces (null: it shares the host's network). */
  readonly netRx: number | null;
  readonly netTx: number | null;
  /** Processes (`pids.current`: threads too), else the processes in it. */
  readonly pids: number | null;
}

const numberIn = (text: string | undefined): number | undefined =>
  text !== undefined && /^\d+/.test(text.trim()) ? Number(text.trim().split(/\s/)[0]) : undefined;

/** The host's memory, bytes (/proc/meminfo MemTotal). */
function hostMemory(): number | null {
  const m = read("/proc/meminfo")?.match(/MemTotal:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : null;
}

/** A key's value in a flat-keyed file (`memory.stat`: `total_inactive_file 1234`). */
function keyed(text: string | undefined, key: string): number | undefined {
  const m = text?.match(new RegExp(`^${key} (\\d+)$`, "m"));
  return m ? Number(m[1]) : undefined;
}

/**
 * Block I/O bytes from v1's `blkio.throttle.io_service_bytes` (`8:0 Read 4096` lines) or v2's
 * `io.stat` (`8:0 rbytes=4096 wbytes=0 …`), summed over devices (pure).
 */
export function blockIo(v1: string | undefined, v2: string | undefined): { read: number; write: number } | null {
  if (v2 !== undefined) {
    let r = 0, w = 0;
    for (const m of v2.matchAll(/rbytes=(\d+)/g)) r += Number(m[1]);
    for (const m of v2.matchAll(/wbytes=(\d+)/g)) w += Number(m[1]);
    return { read: r, write: w };
  }
  if (v1 === undefined) return null;
  let r = 0, w = 0;
  for (const line of v1.split("\n")) {
    const [, op, n] = line.trim().split(/\s+/);
    if (op === "Read") r += Number(n);
    else if (op === "Write") w += Number(n);
  }
  return { read: r, write: w };
}

/**
 * Network bytes from a `/proc/PID/net/dev` (pure): every interface but the loopback, summed (docker
 * counts its container's interfaces; lo is not one of them).
 */
export function netIo(text: string | undefined): { rx: number; tx: number } | null {
  if (text === undefined) return null;
  let rx = 0, tx = 0;
  for (const line of text.split("\n").slice(2)) {
    const i = line.indexOf(":");
    if (i < 0 || line.slice(0, i).trim() === "lo") continue;
    const f = line.slice(i + 1).trim().split(/\s+/).map(Number);
    rx += f[0] ?? 0;
    tx += f[8] ?? 0;
  }
  return { rx, tx };
}

/** Whether process `pid` is in the host's network namespace (this process's). */
function sharesHostNetwork(pid: number): boolean {
  try {
    return statSync(`/proc/${pid}/ns/net`).ino === statSync("/proc/self/ns/net").ino;
  } catch {
    return true;
  }
}

/**
 * Reads a running container's counters now.
 * @param initPid Its init's host pid.
 * @param dirs Its cgroup's directories ({@link containerCgroupDirs}).
 */
export function sampleContainer(initPid: number, dirs: readonly string[], atMs = performance.now()): StatsSample {
  const first = (file: string) => dirs.map((d) => read(join(d, file))).find((t) => t !== undefined);
  const procs = containerPids(initPid, dirs);
  // CPU: v1 cpuacct.usage (ns), v2 cpu.stat usage_usec; else the processes' utime + stime.
  let cpuNs: number | null = numberIn(first("cpuacct.usage")) ?? null;
  if (cpuNs === null) {
    const usec = keyed(first("cpu.stat"), "usage_usec");
    if (usec !== undefined) cpuNs = usec * 1000;
  }
  if (cpuNs === null) {
    let ticks = 0;
    for (const p of procs) {
      const s = read(`/proc/${p}/stat`);
      if (!s) continue;
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    }
    cpuNs = ticks * 1e7; // USER_HZ 100
  }
  // Memory as docker counts it: usage less the inactive file cache (v1 total_inactive_file, v2 inactive_file).
  let memory: number | null = null, memoryLimit: number | null = null;
  const host = hostMemory();
  const v2usage = numberIn(first("memory.current"));
  const v1usage = numberIn(first("memory.usage_in_bytes"));
  if (v2usage !== undefined) {
    const inactive = keyed(first("memory.stat"), "inactive_file") ?? 0;
    memory = inactive < v2usage ? v2usage - inactive : v2usage;
    const max = numberIn(first("memory.max"));
    memoryLimit = max ?? host;
  } else if (v1usage !== undefined) {
    const inactive = keyed(first("memory.stat"), "total_inactive_file") ?? 0;
    memory = inactive < v1usage ? v1usage - inactive : v1usage;
    const limit = numberIn(first("memory.limit_in_bytes"));
    memoryLimit = limit !== undefined && (host === null || limit < host) ? limit : host;
  } else {
    memory = 0;
    for (const p of procs) {
      const m = read(`/proc/${p}/status`)?.match(/VmRSS:\s+(\d+) kB/);
      if (m) memory += Number(m[1]) * 1024;
    }
    memoryLimit = host;
  }
  const io = blockIo(
    first("blkio.throttle.io_service_bytes_recursive") ?? first("blkio.throttle.io_service_bytes"),
    first("io.stat"),
  );
  const net = sharesHostNetwork(initPid) ? null : netIo(read(`/proc/${initPid}/net/dev`));
  const pidsCurrent = numberIn(first("pids.current"));
  return {
    atMs,
    cpuNs,
    memory,
    memoryLimit,
    blockRead: io?.read ?? null,
    blockWrite: io?.write ?? null,
    netRx: net?.rx ?? null,
    netTx: net?.tx ?? null,
    pids: pidsCurrent ?? procs.length,
  };
}

/**
 * CPU use between two samples in percent of one CPU (pure): docker's `CPU %`, which reaches
 * N×100% on N CPUs. Null when either sample lacks it or no time passed.
 */
export function cpuPercent(prev: StatsSample | undefined, cur: StatsSample): number | null {
  if (!prev || prev.cpuNs === null || cur.cpuNs === null) return null;
  const wallNs = (cur.atMs - prev.atMs) * 1e6;
  if (wallNs <= 0) return null;
  return Math.max(0, ((cur.cpuNs - prev.cpuNs) / wallNs) * 100);
}
