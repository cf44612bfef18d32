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

/** Times `await run(spec)`; throws if a container does not exit 0. */
export async function libraryTimes(rootfs: string, warmup: number, runs: number): Promise<number[]> {
  const spec = benchSpec(rootfs);
  const once = async () => {
    const t = performance.now();
    const s = await run(spec);
    const dt = performance.now() - t;
    if (s.code !== 0) throw new Error(`container ended ${JSON.stringify(s)}`);
    return dt;
  };
  for (let i = 0; i < warmup; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await once());
  return times;
}

if (import.meta.main) {
  const [rootfs, warmup, runs] = (globalThis as { process?: { argv: string[] } }).process!.argv.slice(2);
  console.log(JSON.stringify(await libraryTimes(rootfs!, Number(warmup ?? 3), Number(runs ?? 30))));
}
