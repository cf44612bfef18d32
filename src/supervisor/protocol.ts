/**
 * What the CLI and the supervisor say to each other over the supervisor's unix socket: one JSON
 * object per line each way. Every request carries an `id` that its response repeats, so a client
 * may send many requests at once (`hako start --each`) and match the answers as they come.
 * @module
 */
import type { ContainerSpec } from "../container/spec.ts";

/** Start a daemonized container. */
export interface StartRequest {
  readonly id: number;
  readonly op: "start";
  /** The spec, as JSON (no callbacks: they cannot cross a socket). */
  readonly spec: ContainerSpec;
  /** The spec's file, for `ps`. */
  readonly specFile?: string;
  /**
   * The process (pid and start time) that reserved the container's name before extracting its
   * rootfs (`hako start`): the supervisor takes that reservation over instead of reserving the
   * name itself.
   */
  readonly reservedBy?: { readonly pid: number; readonly startTime: number };
}

/** Is the supervisor there? */
export interface PingRequest {
  readonly id: number;
  readonly op: "ping";
}

/** A request. */
export type Request = StartRequest | PingRequest;

/** An error, as the supervisor reports it. */
export interface ErrorReply {
  /** The error's class name (`SpecError`, `SetupError`, `ContainerStateError`…). */
  readonly name: string;
  /** The message. */
  readonly message: string;
  /** The setup step that failed, for a SetupError. */
  readonly step?: string;
}

/** A response. */
export interface Response {
  readonly id: number;
  readonly ok: boolean;
  /** For `start`: the container's name and its init's pid. */
  readonly name?: string;
  readonly pid?: number;
  /** The supervisor's pid (for `ping`). */
  readonly supervisor?: number;
  readonly error?: ErrorReply;
}

/**
 * Splits a byte stream into lines (pure, incremental): feed chunks, get complete lines.
 */
export class LineReader {
  #rest = "";
  readonly #decoder = new TextDecoder();

  /** Adds a chunk; returns the lines it completed. */
  push(chunk: Uint8Array | string): string[] {
    this.#rest += typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    const lines = this.#rest.split("\n");
    this.#rest = lines.pop()!;
    return lines.filter((l) => l.trim() !== "");
  }
}

/**
 * The functions of a spec, by path (`hooks.bootstrap`), which JSON would silently drop (pure).
 */
export function functionPaths(value: unknown, path = ""): string[] {
  if (typeof value === "function") return [path || "(the spec)"];
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) =>
    functionPaths(v, Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k)
  );
}
