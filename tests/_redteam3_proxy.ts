/**
 * A child process for tests/redteam3_test.ts: publishes `PORTS` ports (ports.ts, the supervisor's
 * code) to 127.0.0.1:UPSTREAM, prints them as one JSON line, then answers each `probe` line on
 * stdin with whether it can still open 32 files and listen on a new socket (`ok`, or the error's
 * code): what a supervisor flooded through its published ports would need for every other
 * container's management. Run it under a low RLIMIT_NOFILE (prlimit).
 * Usage: _redteam3_proxy.ts UPSTREAM PORTS
 * @module
 */
import { closeSync, openSync } from "node:fs";
import { createServer } from "node:net";
import process from "node:process";
import { createInterface } from "node:readline";
import { PortProxies } from "../src/container/ports.ts";
import type { ContainerSpec } from "../src/container/spec.ts";

const [upstream, count] = process.argv.slice(2).map(Number) as [number, number];
const proxies = new PortProxies(() => {});
const spec = {
  name: "rt3-flood",
  command: ["x"],
  network: {
    veth: { containerAddress: "127.0.0.1/30" },
    ports: Array.from({ length: count }, () => ({ containerPort: upstream, hostPort: 0, hostIp: "127.0.0.1" })),
  },
} as unknown as ContainerSpec;
const ports = await proxies.open(spec.name, spec);
process.stdout.write(JSON.stringify(ports.map((p) => p.hostPort)) + "\n");

const probe = async (): Promise<string> => {
  // (starting a container takes a few dozen: pipes, a pidfd, log FIFOs, a pty, state files)
  const fds: number[] = [];
  try {
    for (let i = 0; i < 32; i++) fds.push(openSync("/dev/null", "r"));
  } catch (e) {
    return `open: ${(e as { code?: string }).code ?? (e as Error).message} after ${fds.length}`;
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  const server = createServer();
  return await new Promise<string>((resolve) => {
    server.once("error", (e) => resolve(`listen: ${(e as { code?: string }).code ?? e.message}`));
    server.listen({ host: "127.0.0.1", port: 0 }, () => server.close(() => resolve("ok")));
  });
};

for await (const line of createInterface({ input: process.stdin })) {
  if (line === "probe") process.stdout.write(await probe() + "\n");
  if (line === "quit") break;
}
proxies.close(spec.name);
process.exit(0);
