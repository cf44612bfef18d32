/**
 * Library-mode row of the start benchmark: many containers in a row from one running process,
 * `await run(spec)` each (new pid/uts/ipc/mount/net namespaces, hako's standard mounts,
 * pivot_root, default capabilities), timed with performance.now(). Imported by bench/start.ts
 * (Deno) and run directly under Bun: `bun bench/start_lib.ts ROOTFS WARMUP RUNS` prints the times
 * (ms) as JSON on stdout.
 * @module
 */
import { run } from "../mod.ts";
import type { ContainerSpec } from "../mod.ts";

/** The container each library row starts. */
export function benchSpec(rootfs: string, name = "bench-start"): ContainerSpec {
  return {
    name,
    rootfs: { builder: "busybox", path: rootfs },
    command: ["/bin/true"],
    env: { PATH: "/bin" },
    namespaces: ["pid", "uts", "ipc", "mount", "net"],
    hostname: "bench",
    stdio: "null",
  };
}

/**
 * Times `await run(spec)`; throws if a container does not exit 0, unless `failures` is given:
 * then a failed container is recorded there (its message) and the loop goes on.
 */
export async function libraryTimes(
  rootfs: string,
  warmup: number,
  runs: number,
  failures?: string[],
): Promise<number[]> {
  const spec = benchSpec(rootfs);
  const once = async () => {
    const t = performance.now();
    try {
      const s = await run(spec);
      if (s.code !== 0) throw new Error(`container ended ${JSON.stringify(s)}`);
    } catch (e) {
      if (!failures) throw e;
      failures.push((e as Error).message);
      return undefined;
    }
    return performance.now() - t;
  };
  for (let i = 0; i < warmup; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const dt = await once();
    if (dt !== undefined) times.push(dt);
  }
  return times;
}

if (import.meta.main) {
  // bench/start_lib.ts ROOTFS [WARMUP] [RUNS] [--keep-going]: the times as JSON (with --keep-going,
  // `{ "times": [...], "failures": [...] }`).
  const argv = (globalThis as { process?: { argv: string[] } }).process!.argv.slice(2);
  const keepGoing = argv.includes("--keep-going");
  const [rootfs, warmup, runs] = argv.filter((a) => a !== "--keep-going");
  const failures: string[] = [];
  const times = await libraryTimes(rootfs!, Number(warmup ?? 3), Number(runs ?? 30), keepGoing ? failures : undefined);
  console.log(JSON.stringify(keepGoing ? { times, failures } : times));
}
