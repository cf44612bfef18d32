/**
 * docker's `-p/--publish` and `-P/--publish-all` for `hako run` (pure): the published ports of a
 * quick container (the spec's `network.ports`), and what `hako port`, `ps` and `inspect` print of
 * them (docker's formats).
 * @module
 */
import { UsageError } from "./_args.ts";
import type { PortSpec } from "../container/spec.ts";

/** docker's message for `-p` with a network that has no ports to publish (`--network none`). */
export const PUBLISH_CONFLICT = "conflicting options: port publishing and the container type network mode";

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function portNumber(text: string, what: string, value: string, zero: boolean): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535 || (!zero && Number(text) === 0)) {
    throw new UsageError(
      `-p ${JSON.stringify(value)}: ${what} ${JSON.stringify(text)} is not a port number (${zero ? 0 : 1}–65535)`,
    );
  }
  return Number(text);
}

/**
 * One `-p` value (docker's forms): `CONTAINERPORT` (a free host port), `HOSTPORT:CONTAINERPORT`,
 * `HOSTIP:HOSTPORT:CONTAINERPORT`, `HOSTIP::CONTAINERPORT`, each with `/tcp` or none. Ranges, IPv6
 * host addresses and `/udp` (not forwarded yet) are refused.
 * @throws {UsageError} Naming the value and what is wrong.
 */
export function parsePublish(value: string): PortSpec {
  const slash = value.lastIndexOf("/");
  const proto = slash >= 0 ? value.slice(slash + 1) : "tcp";
  const rest = slash >= 0 ? value.slice(0, slash) : value;
  if (proto === "udp" || proto === "sctp") {
    throw new UsageError(`-p ${JSON.stringify(value)}: only tcp ports are published for now, not ${proto}`);
  }
  if (proto !== "tcp") throw new UsageError(`-p ${JSON.stringify(value)}: unknown protocol ${JSON.stringify(proto)}`);
  if (rest.includes("[")) {
    throw new UsageError(`-p ${JSON.stringify(value)}: an IPv6 host address is not published (IPv4 only)`);
  }
  if (/\d-\d/.test(rest)) throw new UsageError(`-p ${JSON.stringify(value)}: port ranges are not published yet`);
  const parts = rest.split(":");
  if (parts.length > 3 || parts.some((p, i) => p === "" && !(parts.length === 3 && i === 1))) {
    throw new UsageError(
      `-p ${JSON.stringify(value)}: not [HOSTIP:][HOSTPORT:]CONTAINERPORT[/tcp] (e.g. 8080:80, 127.0.0.1:8080:80, 80)`,
    );
  }
  const containerPort = portNumber(parts[parts.length - 1]!, "the container port", value, false);
  // (`-p 80` and `-p ::80` leave the host port out, `-p 0:80` asks for 0: both get a free port,
  // and inspect's PortBindings shows HostPort "" and "0" as docker's does)
  const hostPort = parts.length >= 2 && parts[parts.length - 2] !== ""
    ? portNumber(parts[parts.length - 2]!, "the host port", value, true)
    : undefined;
  const hostIp = parts.length === 3 ? parts[0]! : undefined;
  if (hostIp !== undefined && !IPV4.test(hostIp)) {
    throw new UsageError(
      `-p ${JSON.stringify(value)}: the host address ${JSON.stringify(hostIp)} is not an IPv4 address`,
    );
  }
  return {
    containerPort,
    ...(hostPort !== undefined ? { hostPort } : {}),
    ...(hostIp !== undefined ? { hostIp } : {}),
  };
}

/**
 * The ports `-P` publishes (pure): each of the image config's `ExposedPorts` (`"80/tcp"`, `"80"`)
 * to a free host port, beside the `-p` ones for other container ports (docker's). A udp one is
 * refused (not forwarded yet).
 * @throws {UsageError} For a key that is not `PORT[/PROTO]`, or udp.
 */
export function publishAllPorts(
  exposed: Readonly<Record<string, unknown>> | undefined,
  given: readonly PortSpec[],
): PortSpec[] {
  const out: PortSpec[] = [];
  for (const key of Object.keys(exposed ?? {}).sort()) {
    const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(key);
    if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) {
      throw new UsageError(`-P: the image's ExposedPorts has ${JSON.stringify(key)}, not PORT[/tcp]`);
    }
    if (m[2] !== undefined && m[2] !== "tcp") {
      throw new UsageError(`-P: the image exposes ${key}: only tcp ports are published for now`);
    }
    const port = Number(m[1]);
    if (!given.some((g) => g.containerPort === port)) out.push({ containerPort: port });
  }
  return out;
}

/** A published port as `docker port` prints it: `80/tcp -> 0.0.0.0:32768`. */
export interface PortRow {
  readonly hostIp: string;
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: string;
}

/** `docker port NAME` lines (sorted by container port). */
export function portLines(rows: readonly PortRow[]): string[] {
  return [...rows].sort((a, b) => a.containerPort - b.containerPort || a.hostPort - b.hostPort)
    .map((r) => `${r.containerPort}/${r.protocol} -> ${r.hostIp}:${r.hostPort}`);
}

/** `docker ps`'s PORTS cell: `0.0.0.0:32768->80/tcp, 127.0.0.1:8080->81/tcp`. */
export function portsCell(rows: readonly PortRow[]): string {
  return [...rows].sort((a, b) => a.containerPort - b.containerPort || a.hostPort - b.hostPort)
    .map((r) => `${r.hostIp}:${r.hostPort}->${r.containerPort}/${r.protocol}`).join(", ");
}

/** `docker inspect`'s NetworkSettings.Ports: `{ "80/tcp": [{ HostIp, HostPort }] }` (HostPort a string, as docker's). */
export function inspectPorts(
  rows: readonly PortRow[],
): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const r of rows) {
    (out[`${r.containerPort}/${r.protocol}`] ??= []).push({ HostIp: r.hostIp, HostPort: String(r.hostPort) });
  }
  return out;
}
