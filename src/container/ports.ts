/**
 * Published ports (`network.ports`, docker's `-p`/`-P`): the supervisor listens on each host port
 * and forwards every connection to the container's veth address and port, bytes both ways.
 *
 * Why a proxy in the supervisor, not NAT: hako has no bridge and writes no firewall rules (nothing
 * of the host's nftables/iptables is hako's to change, and a rule left behind by a crash would
 * forward a port to whatever gets the address next). A container's veth is a point-to-point /30
 * to the host, so the host reaches the container's address directly; the supervisor — the
 * container's parent, alive as long as it runs — holds the listening sockets, as docker's
 * userland proxy (`docker-proxy`) does for each published port. The cost: the container sees the
 * host end of its veth as every client's address (docker-proxy's is the bridge's gateway).
 *
 * The listeners are bound before the container is created, so a host port that is taken fails the
 * start with a clear error and nothing made; they are closed when the container ends (and opened
 * again when a restart policy starts it again). One container's proxy failing (a refused
 * connection, a reset, a listener's error) ends only that connection or is logged: every socket
 * has its error handler, and no error of a proxy reaches the supervisor's event loop.
 *
 * The bound ports are written to `ports.json` in the container's state directory while it runs
 * (what `hako port`, `hako ps` and `hako inspect` read), and removed when it ends.
 *
 * Who holds the proxy is whoever outlives the container: the supervisor for `hako run -d`/`hako
 * start` ({@link PortProxies}); the foreground `hako run` process for `hako run -p` and a spec
 * module run in the foreground, through {@link publishPorts} (the same code: one container's
 * `PortProxies`), closed when the run ends however it ends. A library user who calls
 * `Container.create` holds them the same way: `publishPorts(spec)` before it, `close()` after —
 * `Container.create` refuses a spec with `network.ports` unless told they are published
 * (`portsPublished`), never publishing nothing in silence.
 * @module
 */
import { readFileSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { SetupError } from "../errors.ts";
import type { ContainerSpec } from "./spec.ts";
import { writePrivateFile } from "./state.ts";

/** The file in a container's state directory listing its published ports while it runs. */
export const PORTS_FILE = "ports.json";

/** One published port, as `ports.json` holds it. */
export interface PublishedPort {
  /** The host address listened on (`0.0.0.0`: every one). */
  readonly hostIp: string;
  /** The host port (the one the kernel picked, for a host port 0). */
  readonly hostPort: number;
  /** The container's port. */
  readonly containerPort: number;
  /** `tcp`. */
  readonly protocol: "tcp";
}

/** The most connections one container's proxies hold at once, all its ports together. */
const MAX_CONNECTIONS = 1024;

/**
 * The connections every proxy of this process holds at once, and the most it may: a quarter of its
 * RLIMIT_NOFILE (two fds each: half its fds), read when the first port is published. The budget is
 * the process's because the fd table is: a host-side flood of one container's ports, or a container
 * dialling its own ports through the host in a loop, must leave the supervisor the fds it needs to
 * accept clients, open state files and start the other containers (with every connection accepted,
 * Deno and Bun get EMFILE on everything else, and Deno can panic). A connection past the budget is
 * closed as soon as accepted, as node's `maxConnections` does. docker-proxy, a process per port,
 * exhausts only its own fds.
 */
const budget = { used: 0, max: 0 };

/** The process-wide connection budget's ceiling (see {@link budget}). */
function budgetMax(): number {
  if (budget.max === 0) {
    let nofile = 1024;
    try {
      const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
      const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
      if (soft === "unlimited") nofile = 1 << 20;
      else if (soft && Number.isSafeInteger(Number(soft))) nofile = Number(soft);
    } catch { /* (no /proc: the kernel's default soft limit) */ }
    budget.max = Math.max(1, Math.floor(nofile / 4));
  }
  return budget.max;
}
/** How long a connection whose other side has ended may take to flush before it is cut. */
const LINGER_MS = 10_000;

interface Open {
  readonly servers: Server[];
  readonly sockets: Set<Socket>;
  /** Its connections held (accepted, not yet closed), all ports together. */
  connections: number;
}

/** A container's published ports, read from its state directory (none when it runs without, or has ended). */
export function readPublishedPorts(stateDir: string): PublishedPort[] {
  try {
    const v: unknown = JSON.parse(readFileSync(join(stateDir, PORTS_FILE), "utf8"));
    if (!Array.isArray(v)) return [];
    return v.filter((p) =>
      typeof p?.hostIp === "string" && Number.isInteger(p?.hostPort) && Number.isInteger(p?.containerPort)
    ).map((p) => ({ hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, protocol: "tcp" }));
  } catch {
    return [];
  }
}

/** The proxies of every container the supervisor runs, by name. */
export class PortProxies {
  readonly #open = new Map<string, Open>();
  readonly #say: (message: string) => void;

  /** @param say Where a proxy's failures are logged (the supervisor's log). */
  constructor(say: (message: string) => void) {
    this.#say = say;
  }

  /**
   * Listens on each of the spec's published ports (none: nothing), and records them in
   * `ports.json` under `stateDir` (none: not recorded). Call it before the container is created.
   * @throws {SetupError} Step `ports`: a host port is taken or cannot be bound (what was bound is
   *   closed again), or the spec has no container address to forward to.
   */
  async open(name: string, spec: ContainerSpec, stateDir?: string): Promise<PublishedPort[]> {
    const ports = spec.network?.ports ?? [];
    if (ports.length === 0) return [];
    this.close(name, stateDir);
    const target = spec.network?.veth?.containerAddress?.split("/")[0];
    if (!target) throw new SetupError("ports", "network.ports needs network.veth.containerAddress to forward to");
    const open: Open = { servers: [], sockets: new Set(), connections: 0 };
    this.#open.set(name, open);
    const out: PublishedPort[] = [];
    try {
      for (const p of ports) {
        const hostIp = p.hostIp ?? "0.0.0.0";
        const server = createServer(
          { allowHalfOpen: true },
          (client) => this.#forward(name, open, client, target, p.containerPort),
        );
        server.maxConnections = MAX_CONNECTIONS; // (and all its ports together, in #forward)
        open.servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen({ host: hostIp, port: p.hostPort ?? 0, exclusive: true }, () => {
            server.off("error", reject);
            resolve();
          });
        }).catch((e) => {
          const code = (e as { code?: string }).code;
          const where = `${hostIp}:${p.hostPort ?? 0}`;
          throw new SetupError(
            "ports",
            code === "EADDRINUSE"
              ? `the host port ${where} is taken (EADDRINUSE): publish another, or 0 for a free one`
              : `listening on ${where}: ${(e as Error).message}`,
            { cause: e },
          );
        });
        server.on("error", (e) => this.#say(`${name}: port ${hostIp}:${p.hostPort}: ${(e as Error).message}`));
        const bound = server.address();
        const hostPort = typeof bound === "object" && bound ? bound.port : p.hostPort ?? 0;
        out.push({ hostIp, hostPort, containerPort: p.containerPort, protocol: "tcp" });
      }
      if (stateDir !== undefined) writePrivateFile(join(stateDir, PORTS_FILE), JSON.stringify(out) + "\n");
      return out;
    } catch (e) {
      this.close(name, stateDir);
      throw e;
    }
  }

  /**
   * Publishes again the ports of a running container this supervisor adopted (its last supervisor
   * died, and its listeners with it): the host ports recorded in `ports.json` (a free one picked
   * then is asked for again), else the spec's. A failure is logged: the container runs on.
   */
  republish(name: string, spec: ContainerSpec, stateDir: string): void {
    const ports = spec.network?.ports ?? [];
    if (ports.length === 0) return;
    const recorded = readPublishedPorts(stateDir);
    const again = recorded.length === ports.length
      ? ports.map((p, i) => ({ ...p, hostPort: recorded[i]!.hostPort }))
      : ports;
    this.open(name, { ...spec, network: { ...spec.network, ports: again } }, stateDir).then(
      (got) => this.#say(`${name}: ports published again (${got.map((p) => p.hostPort).join(", ")})`),
      (e) => this.#say(`${name}: could not publish its ports again: ${(e as Error).message}`),
    );
  }

  /** Closes a container's listeners and connections, and removes its `ports.json`. Idempotent. */
  close(name: string, stateDir?: string): void {
    const open = this.#open.get(name);
    this.#open.delete(name);
    if (open) {
      for (const s of open.servers) {
        try {
          s.close();
        } catch { /* not listening */ }
      }
      for (const s of open.sockets) s.destroy();
    }
    if (stateDir !== undefined) rmSync(join(stateDir, PORTS_FILE), { force: true });
  }

  /**
   * Pipes one client to the container's port: either side's end (FIN) is passed on to the other
   * (pipe), either side's close ends the other (cut if it does not drain in time), an error of
   * either destroys both.
   */
  #forward(name: string, open: Open, client: Socket, host: string, port: number): void {
    if (!this.#open.has(name)) return void client.destroy();
    if (open.connections >= MAX_CONNECTIONS || budget.used >= budgetMax()) {
      // (refused at once, fd and all: the client sees a reset, as past node's maxConnections)
      client.on("error", () => {});
      return void client.destroy();
    }
    open.connections++, budget.used++;
    // (released once both sockets are closed: the other may linger, fd and all, after the first)
    let live = 2;
    const release = () => {
      if (--live === 0) open.connections--, budget.used--;
    };
    // Half-open both ways: a client that has sent all it will (FIN) still reads the reply.
    const upstream = connect({ host, port, allowHalfOpen: true });
    open.sockets.add(client);
    open.sockets.add(upstream);
    let done = false;
    const finish = (why?: Error) => {
      if (done) return;
      done = true;
      if (why) {
        client.destroy();
        upstream.destroy();
      }
    };
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      a.on("error", (e) => finish(e));
      a.on("close", () => {
        open.sockets.delete(a);
        release();
        // The other side gets what is in flight, then its end; cut if it does not drain in time.
        b.end();
        setTimeout(() => b.destroy(), LINGER_MS).unref?.();
      });
      a.pipe(b);
    }
    upstream.on("error", (e) => {
      const code = (e as { code?: string }).code;
      if (code === "ECONNREFUSED") return; // (nothing listens in the container yet: the client sees the close)
      this.#say(`${name}: forwarding to ${host}:${port}: ${e.message}`);
    });
  }
}

/** One container's published ports, held by the process that called {@link publishPorts}. */
export interface PublishedPorts extends Disposable {
  /** The ports listened on (a host port 0 replaced by the one the kernel picked). */
  readonly ports: readonly PublishedPort[];
  /** Closes the listeners and their connections, and removes `ports.json`. Idempotent. */
  close(): void;
}

/**
 * Publishes a container's `network.ports` from this process, for as long as it holds them: what
 * the supervisor does for a daemonized container ({@link PortProxies}, the same code), for a
 * container whose parent is this process (`hako run -p` in the foreground, a spec module run in
 * the foreground, a library's `Container.create` with `{ portsPublished: true }`). Call it before
 * the container is created (a taken port then fails before anything is made) and close it once
 * the container has ended; the event loop must keep turning meanwhile (`Container.wait` does).
 * @param spec The container's spec (its name, `network.ports` and `network.veth.containerAddress`).
 * @param options `stateDir`: where `ports.json` is written (`hako port` reads it); `log`: where a
 *   proxy's failures are reported (default: stderr).
 * @returns The published ports; with no `network.ports`, none (and nothing listens).
 * @throws {SetupError} Step `ports`: a host port is taken or cannot be bound (nothing is left listening).
 */
export async function publishPorts(
  spec: ContainerSpec,
  options: { readonly stateDir?: string; readonly log?: (message: string) => void } = {},
): Promise<PublishedPorts> {
  const log = options.log ?? ((m: string) => void process.stderr.write(`hako: ${m}\n`));
  const proxies = new PortProxies(log);
  const ports = await proxies.open(spec.name, spec, options.stateDir);
  const close = () => proxies.close(spec.name, options.stateDir);
  return { ports, close, [Symbol.dispose]: close };
}
