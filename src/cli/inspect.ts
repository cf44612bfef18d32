/**
 * `hako inspect NAME…`: containers' records as JSON, with docker's field names where they mean
 * the same (`State.Status`, `Config.Env`, `HostConfig.Memory`…) and hako's own record beside them.
 * @module
 */
import { inspectPorts } from "./_publish.ts";
import { nonEmpty, parseArgs, quoted, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";
import { formatRows, type OutputFormat, parseFormat } from "./_format.ts";
import type { ContainerInfo } from "../container/lifecycle.ts";
import type { StateRecord } from "../container/state.ts";
import type { ResolvedSpec } from "../container/validate.ts";
import type { DockerRecord } from "../supervisor/protocol.ts";
import { resolveRestart } from "../container/restart_policy.ts";

/** docker's `HostConfig.RestartPolicy` of a recorded spec's `restart` (pure). */
function restartPolicyOf(value: unknown): { Name: string; MaximumRetryCount: number } {
  const r = resolveRestart(value);
  return { Name: r.policy, MaximumRetryCount: r.maxRetries };
}

/** The help text. */
export const usage = `Usage: hako inspect [-f json|TEMPLATE] <name>...

Prints a JSON array with one object per container, as docker inspect: Id and Name (its name),
Created, State {Status, Running, Pid, ExitCode, Signal, OOMKilled, StartedAt, FinishedAt, Error},
Config {Cmd, Env, Hostname, Domainname, User, WorkingDir, Image, Labels, Tty, OpenStdin, ExposedPorts},
HostConfig {Memory (bytes, 0: no limit), NanoCpus (0: no limit), PidsLimit (null: no limit), Sysctls,
ReadonlyRootfs, CapAdd, CapDrop, NetworkMode (none, host or veth), PortBindings, AutoRemove}, Mounts, NetworkSettings {Ports, IPAddress}, and Hako: hako's own record (its spec, rootfs, cgroup, live
figures). Status is docker's word: created, running, exited, dead, or unknown (a damaged record).

Options:
  -f, --format <F>    json (the default: one JSON array), or a template printed once per
                      container: '{{.State.Status}}', '{{.Name}} {{json .Config.Labels}}'
                      ({{.Field.Sub}}, {{json .}}, {{json .Field}}; not docker's other actions)
  -h, --help          Show this help

Exit status: 0, or 1 when a container is unknown (the others are printed all the same).
`;

/** Parses `hako inspect`'s arguments (pure). @throws {UsageError} For no name or a bad option. */
export function parseInspectArgs(
  argv: readonly string[],
): { help: boolean; names: string[]; format?: OutputFormat } {
  const { values, positionals } = parseArgs(argv, {
    format: { type: "string", short: "f" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, names: [] };
  const text = stringOption(values, "format");
  const format = text === undefined || text === "json" ? undefined : parseFormat(text);
  if (format?.kind === "table") throw new UsageError(`--format takes json or a template, not ${quoted(text!)}`);
  if (positionals.length === 0) throw new UsageError("a container name is required");
  for (const n of positionals) nonEmpty(n, "a container name");
  return { help: false, names: [...positionals], ...(format ? { format } : {}) };
}

/** docker's word for a state (`creating` is docker's `created`). */
export function dockerStatus(state: ContainerInfo["state"]): string {
  return state === "creating" ? "created" : state;
}

/** A size as bytes (pure): a number, or `"512m"`/`"1G"`; 0 for none or "max" (docker's "no limit"). */
export function bytesOf(v: number | string | undefined): number {
  if (v === undefined || v === "max" || v === -1 || v === "-1") return 0;
  if (typeof v === "number") return Math.max(0, v);
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(v);
  if (!m) return 0;
  const scale: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
  return Math.round(Number(m[1]) * scale[m[2]!.toUpperCase()]!);
}

/**
 * One container as `hako inspect` prints it (pure).
 * @param r Its record.
 * @param info What `ps` says of it (live figures, its state as seen now).
 * @param resolved Its spec resolved (defaults applied), when that still works.
 * @param docker What `hako run -d` recorded beside it (labels, --rm).
 */
export function inspectObject(
  r: StateRecord,
  info: ContainerInfo,
  resolved: ResolvedSpec | undefined,
  docker: DockerRecord = {},
  ports: readonly import("./_publish.ts").PortRow[] = [],
): Record<string, unknown> {
  const spec = r.spec;
  const cg = spec.cgroup ?? {};
  const quota = cg.cpu?.quotaUs, period = cg.cpu?.periodUs ?? 100_000;
  const caps = spec.capabilities;
  const changes = caps && !Array.isArray(caps) && ("add" in caps || "drop" in caps)
    ? caps as { add?: readonly string[]; drop?: readonly string[] }
    : {};
  const ns = resolved?.newNamespaces ?? [];
  const user = resolved?.user ?? spec.user;
  return {
    Id: r.name,
    Name: r.name,
    Created: r.createdAt,
    RestartCount: r.restartCount ?? 0,
    State: {
      Status: dockerStatus(info.state),
      Running: info.state === "running",
      Pid: info.pid ?? 0,
      ExitCode: r.exit ? r.exit.shellCode : r.state === "exited" ? -1 : 0,
      Signal: r.exit?.signal ?? null,
      OOMKilled: (info.oomKilled ?? 0) > 0,
      StartedAt: r.startedAt ?? null,
      FinishedAt: r.finishedAt ?? null,
      Error: info.note ?? "",
    },
    Config: {
      Cmd: resolved ? [...resolved.argv] : typeof spec.command === "string" ? [spec.command] : [...spec.command],
      Env: Object.entries(resolved?.env ?? spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
      Hostname: resolved?.hostname ?? spec.hostname ?? "",
      Domainname: resolved?.domainname ?? spec.domainname ?? "",
      User: user ? `${user.uid}${user.gid !== undefined ? `:${user.gid}` : ""}` : "",
      WorkingDir: resolved?.workdir ?? spec.workdir ?? "/",
      Image: typeof docker.image === "string" ? docker.image : r.image,
      Labels: docker.labels ?? {},
      // (-t, -i of `hako run -d`, as docker.json records them: docker's Config.Tty and OpenStdin)
      Tty: docker.tty === true,
      OpenStdin: docker.openStdin === true,
      // (docker's: the image's ExposedPorts and the published container ports)
      ...(exposedPorts(docker, spec) ? { ExposedPorts: exposedPorts(docker, spec) } : {}),
    },
    HostConfig: {
      Memory: bytesOf(cg.memory?.limit),
      NanoCpus: typeof quota === "number" ? Math.round((quota / period) * 1e9) : 0,
      PidsLimit: typeof cg.pids?.max === "number" ? cg.pids.max : null,
      ReadonlyRootfs: spec.readonlyRootfs === true,
      CapAdd: changes.add ? [...changes.add] : null,
      CapDrop: changes.drop ? [...changes.drop] : null,
      NetworkMode: resolved ? (ns.includes("net") ? (resolved.veth ? "veth" : "none") : "host") : "",
      // (what was asked for, as docker's: a host port 0 (a free one) is "", the address "" for all)
      PortBindings: portBindings(spec),
      AutoRemove: docker.autoRemove === true,
      RestartPolicy: restartPolicyOf(spec.restart),
      // (docker's: the --sysctl flags; null without any)
      Sysctls: spec.sysctl && Object.keys(spec.sysctl).length ? { ...spec.sysctl } : null,
    },
    Mounts: (spec.mounts ?? []).map((m) => ({
      Type: m.type,
      Source: m.source ?? "",
      Destination: m.target,
      RW: !(m.readonly || m.options?.includes("ro")),
    })),
    NetworkSettings: {
      Ports: inspectPorts(ports),
      IPAddress: spec.network?.veth?.containerAddress?.split("/")[0] ?? "",
    },
    Hako: { ...info, record: r },
  };
}

/**
 * HostConfig.PortBindings (docker's `{ "80/tcp": [{ HostIp: "", HostPort: "8080" }] }`, pure): the
 * spec's `network.ports` as asked for — docker's `-p 80` records HostPort "", `-p 0:80` "0" and
 * `-p 8080:80` HostIp "" — whether or not the container runs (NetworkSettings.Ports has the bound ones).
 */
export function portBindings(
  spec: StateRecord["spec"],
): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  const ports = Array.isArray(spec.network?.ports) ? spec.network.ports : [];
  for (const p of ports) {
    (out[`${p.containerPort}/${p.protocol ?? "tcp"}`] ??= []).push({
      HostIp: p.hostIp ?? "",
      HostPort: p.hostPort === undefined ? "" : String(p.hostPort),
    });
  }
  return out;
}

/** Config.ExposedPorts (docker's `{ "80/tcp": {} }`): the image's, and each published container port; undefined for none. */
function exposedPorts(docker: DockerRecord, spec: StateRecord["spec"]): Record<string, object> | undefined {
  const out: Record<string, object> = {};
  for (const k of Object.keys(docker.exposedPorts ?? {})) out[/\//.test(k) ? k : `${k}/tcp`] = {};
  for (const p of spec.network?.ports ?? []) out[`${p.containerPort}/${p.protocol ?? "tcp"}`] = {};
  return Object.keys(out).length ? out : undefined;
}

/** Runs `hako inspect`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseInspectArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { StateStore } = await import("../container/state.ts");
  const { containerInfo, damagedInfo } = await import("../container/lifecycle.ts");
  const { resolveSpec } = await import("../container/validate.ts");
  const { DOCKER_FILE } = await import("../supervisor/protocol.ts");
  const { readPublishedPorts } = await import("../container/ports.ts");
  const { readFileSync } = await import("node:fs");
  const store = new StateStore();
  const out: unknown[] = [];
  let code = 0;
  for (const name of a.names) {
    const got = store.inspect(name);
    if (got.kind === "none") {
      code = 1;
      h.stderr(`hako inspect: no such container: ${name}\n`);
      continue;
    }
    if (got.kind === "damaged") {
      const info = damagedInfo(name, got.problem, got.salvage, store);
      out.push({ Id: name, Name: name, State: { Status: "unknown", Running: false, Error: got.problem }, Hako: info });
      continue;
    }
    let resolved: ResolvedSpec | undefined;
    try {
      resolved = resolveSpec(got.record.spec);
    } catch { /* a spec the host no longer takes: its own fields are shown */ }
    let docker: DockerRecord = {};
    try {
      docker = JSON.parse(readFileSync(`${store.dir(name)}/${DOCKER_FILE}`, "utf8")) ?? {};
    } catch { /* none */ }
    const ports = got.record.state === "running" ? readPublishedPorts(store.dir(name)) : [];
    out.push(inspectObject(got.record, containerInfo(got.record), resolved, docker, ports));
  }
  h.stdout(a.format ? formatRows(a.format, out) : JSON.stringify(out, null, 2) + "\n");
  return code;
}
