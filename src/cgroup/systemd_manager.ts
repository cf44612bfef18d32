/**
 * The conversation with systemd's manager for a container's scope (see `systemd.ts`): start it
 * and wait for its job, set its properties, stop it. Blocking.
 * @module
 */
import { existsSync } from "node:fs";
import { libc } from "../../ffi/libc.ts";
import { Connection, REPLY_TIMEOUT_MS } from "./_dbus.ts";
import { DbusError, type Message, type Variant } from "./_dbus_wire.ts";
import type { UnitProperty } from "./systemd.ts";

export { DbusError };

const SYSTEMD = {
  destination: "org.freedesktop.systemd1",
  path: "/org/freedesktop/systemd1",
  interface: "org.freedesktop.systemd1.Manager",
};

/** Where systemd is reached: its private socket for root (no bus daemon needed), else the system bus. */
export function managerSocket(
  euid: number,
  env: Readonly<Record<string, string | undefined>>,
): { path: string; bus: boolean } {
  if (euid === 0 && existsSync("/run/systemd/private")) return { path: "/run/systemd/private", bus: false };
  const address = env.DBUS_SYSTEM_BUS_ADDRESS;
  const m = address ? /(?:^|;)unix:path=([^,;]+)/.exec(address) : null;
  return { path: m ? m[1]! : "/run/dbus/system_bus_socket", bus: true };
}

/**
 * A connection to systemd's manager, for a container's scope: start it and wait for the job, set
 * its properties, stop it. Blocking.
 */
export class SystemdManager {
  readonly #conn: Connection;
  #version: number | undefined;

  private constructor(conn: Connection) {
    this.#conn = conn;
  }

  /**
   * Connects (root: systemd's private socket; else the system bus) and subscribes to job signals.
   * @throws {SyscallError} When the socket cannot be reached; {@link DbusError} when refused.
   */
  static connect(): SystemdManager {
    const euid = libc().geteuid();
    const where = managerSocket(euid, { DBUS_SYSTEM_BUS_ADDRESS: process.env.DBUS_SYSTEM_BUS_ADDRESS });
    const conn = Connection.open(where.path, { uid: euid, bus: where.bus });
    try {
      if (where.bus) {
        conn.call({
          destination: "org.freedesktop.DBus",
          path: "/org/freedesktop/DBus",
          interface: "org.freedesktop.DBus",
          member: "AddMatch",
          signature: "s",
          body: [
            "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
          ],
        });
      }
      const m = new SystemdManager(conn);
      m.#call("Subscribe");
      return m;
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  close(): void {
    this.#conn.close();
  }

  #call(member: string, signature?: string, body?: readonly unknown[], iface = SYSTEMD.interface): unknown[] {
    return this.#conn.call({
      ...(this.#conn.bus ? { destination: SYSTEMD.destination } : {}),
      path: SYSTEMD.path,
      interface: iface,
      member,
      ...(signature ? { signature, body } : {}),
    });
  }

  /** systemd's version number (`252` of `252.38-1~deb12u1`); 0 when it cannot be read. */
  version(): number {
    if (this.#version !== undefined) return this.#version;
    try {
      const [v] = this.#call("Get", "ss", [SYSTEMD.interface, "Version"], "org.freedesktop.DBus.Properties");
      this.#version = Number(/\d+/.exec(String((v as Variant).value))?.[0] ?? 0);
    } catch {
      this.#version = 0;
    }
    return this.#version;
  }

  #waitJob(job: string, what: string): string {
    let m: Message;
    try {
      m = this.#conn.nextSignal((s) => s.member === "JobRemoved" && s.body[1] === job);
    } catch (e) {
      if (!(e instanceof DbusError && e.dbusName === "hako.Timeout")) throw e;
      throw new DbusError("hako.Timeout", `${what}: systemd's job ${job} did not end in ${REPLY_TIMEOUT_MS / 1000} s`);
    }
    return String(m.body[3]);
  }

  /**
   * Starts a transient unit and waits for its job (runc's `startUnit`: 30 s, result `done`).
   * @throws {DbusError} When systemd refuses (`UnitExists`…) or the job ends otherwise.
   */
  startTransientUnit(unit: string, properties: readonly UnitProperty[]): void {
    const [job] = this.#call("StartTransientUnit", "ssa(sv)a(sa(sv))", [unit, "replace", properties, []]);
    const result = this.#waitJob(String(job), `start ${unit}`);
    if (result !== "done") {
      this.resetFailed(unit);
      throw new DbusError("hako.JobFailed", `systemd could not start ${unit}: its job ended "${result}"`);
    }
  }

  /** Sets properties of a running unit (runtime only, as runc). */
  setUnitProperties(unit: string, properties: readonly UnitProperty[]): void {
    if (properties.length) this.#call("SetUnitProperties", "sba(sv)", [unit, true, properties]);
  }

  /**
   * Stops a unit and waits for the job; a unit that is gone already is no error. Its failed state
   * is reset, so the name can be used again.
   * @returns The job's result (`done`), or `gone`.
   */
  stopUnit(unit: string): string {
    let result = "gone";
    try {
      const [job] = this.#call("StopUnit", "ss", [unit, "replace"]);
      result = this.#waitJob(String(job), `stop ${unit}`);
    } catch (e) {
      if (!(e instanceof DbusError && e.dbusName === "org.freedesktop.systemd1.NoSuchUnit")) throw e;
    }
    this.resetFailed(unit);
    return result;
  }

  /** Forgets a unit's failed state (errors ignored: it may not have failed). */
  resetFailed(unit: string): void {
    try {
      this.#call("ResetFailedUnit", "s", [unit]);
    } catch { /* not failed, or gone */ }
  }
}
