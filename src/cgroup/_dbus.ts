/**
 * A blocking D-Bus client on a unix socket — systemd's private socket (root's peer-to-peer
 * connection, no bus daemon) or the system bus (Hello first). Blocking on purpose: a runtime's
 * create/delete waits for systemd anyway, and a synchronous client fits the synchronous cgroup
 * code (and undo paths). What it reads is parsed by `_dbus_wire.ts`, bounded by the message.
 * @module
 */
import { connectUnix } from "../../ffi/unix_socket.ts";
import { pollReadable } from "../../ffi/poll.ts";
import { writeAll } from "../../ffi/at.ts";
import { checkRetry, libc } from "../../ffi/libc.ts";
import {
  type Call,
  DbusError,
  decodeMessage,
  encodeCall,
  ERROR,
  type Message,
  messageLength,
  SIGNAL,
} from "./_dbus_wire.ts";

/** How long a reply may take (runc waits 30 s for a job). */
export const REPLY_TIMEOUT_MS = 30_000;

/**
 * A blocking D-Bus connection: authenticated (`EXTERNAL`, the kernel's peer credentials), then
 * method calls whose replies are waited for; signals that arrive meanwhile are kept for
 * {@link Connection.nextSignal}.
 */
export class Connection {
  readonly #fd: number;
  #serial = 0;
  #pending = new Uint8Array(0);
  readonly #signals: Message[] = [];
  /** Whether this is a bus (destinations and Hello) rather than systemd's peer-to-peer socket. */
  readonly bus: boolean;

  private constructor(fd: number, bus: boolean) {
    this.#fd = fd;
    this.bus = bus;
  }

  /**
   * Connects to `path` and authenticates as `uid` (the caller's, as the kernel reports it to the
   * peer).
   * @throws {SyscallError} When the socket cannot be reached; {@link DbusError} when refused.
   */
  static open(path: string, options: { uid: number; bus: boolean }): Connection {
    const fd = connectUnix(path);
    const c = new Connection(fd, options.bus);
    try {
      const hexUid = [...String(options.uid)].map((d) => d.charCodeAt(0).toString(16)).join("");
      c.#send(new TextEncoder().encode(`\0AUTH EXTERNAL ${hexUid}\r\n`));
      const line = c.#readLine();
      if (!line.startsWith("OK ")) throw new DbusError("hako.Auth", `${path} refused authentication: ${line.trim()}`);
      c.#send(new TextEncoder().encode("BEGIN\r\n"));
      if (!options.bus) c.#ping(); // (a bus takes nothing before Hello)
      else {
        c.call({
          destination: "org.freedesktop.DBus",
          path: "/org/freedesktop/DBus",
          interface: "org.freedesktop.DBus",
          member: "Hello",
        });
      }
      return c;
    } catch (e) {
      c.close();
      throw e;
    }
  }

  /**
   * Pings the peer until it answers. systemd 252's server can leave a message that arrives with
   * `BEGIN` unread until more bytes come (seen here: every other fresh connection to its private
   * socket got no reply); a ping, repeated every 50 ms until one is answered, is harmless to
   * repeat and wakes it.
   * @throws {DbusError} When nothing answers in time.
   */
  #ping(): void {
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    const serials = new Set<number>();
    for (;;) {
      const serial = ++this.#serial;
      serials.add(serial);
      this.#send(encodeCall({ path: "/", interface: "org.freedesktop.DBus.Peer", member: "Ping" }, serial));
      const until = Math.min(deadline, Date.now() + 50);
      try {
        for (;;) {
          const m = this.#readMessage(until);
          if (m.type === SIGNAL) continue;
          if (m.replySerial !== undefined && serials.has(m.replySerial)) {
            if (m.type === ERROR) {
              throw new DbusError(m.errorName ?? "org.freedesktop.DBus.Error.Failed", String(m.body[0]));
            }
            // (the answers to the other pings are skipped as they come: their serials match nothing)
            return;
          }
        }
      } catch (e) {
        if (!(e instanceof DbusError && e.dbusName === "hako.Timeout") || Date.now() >= deadline) throw e;
      }
    }
  }

  close(): void {
    libc().close(this.#fd);
  }

  #send(bytes: Uint8Array): void {
    writeAll(this.#fd, bytes, "systemd's socket");
  }

  #fill(deadline: number): void {
    const wait = Math.max(0, deadline - Date.now());
    if (!pollReadable([this.#fd], wait)[0]) {
      throw new DbusError("hako.Timeout", `no answer from systemd in ${REPLY_TIMEOUT_MS} ms`);
    }
    const chunk = new Uint8Array(65536);
    const n = checkRetry(
      () => libc().read(this.#fd, chunk, BigInt(chunk.length)),
      "read",
      [this.#fd],
      "read from systemd",
    );
    if (n === 0) throw new DbusError("hako.Disconnected", "systemd closed the connection");
    const next = new Uint8Array(this.#pending.length + n);
    next.set(this.#pending);
    next.set(chunk.subarray(0, n), this.#pending.length);
    this.#pending = next;
  }

  #readLine(): string {
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    for (;;) {
      const nl = this.#pending.indexOf(0x0a);
      if (nl >= 0) {
        const line = new TextDecoder().decode(this.#pending.subarray(0, nl + 1));
        this.#pending = this.#pending.slice(nl + 1);
        return line;
      }
      if (this.#pending.length > 4096) throw new DbusError("hako.Protocol", "an authentication line too long");
      this.#fill(deadline);
    }
  }

  #readMessage(deadline: number): Message {
    for (;;) {
      const n = messageLength(this.#pending);
      if (n !== undefined && this.#pending.length >= n) {
        const m = decodeMessage(this.#pending.slice(0, n));
        this.#pending = this.#pending.slice(n);
        return m;
      }
      this.#fill(deadline);
    }
  }

  /**
   * Calls a method and waits for its reply.
   * @returns The reply's body.
   * @throws {DbusError} For an error reply (its name and message) or no reply in time.
   */
  call(call: Call): unknown[] {
    const serial = ++this.#serial;
    this.#send(encodeCall(call, serial));
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    for (;;) {
      const m = this.#readMessage(deadline);
      if (m.type === SIGNAL) {
        if (this.#signals.length < 1024) this.#signals.push(m);
        continue;
      }
      if (m.replySerial !== serial) continue;
      if (m.type === ERROR) {
        throw new DbusError(m.errorName ?? "org.freedesktop.DBus.Error.Failed", String(m.body[0] ?? m.errorName));
      }
      return m.body;
    }
  }

  /**
   * The first signal (kept or arriving) that `match` accepts, waiting up to `timeoutMs`.
   * @throws {DbusError} When none comes in time.
   */
  nextSignal(match: (m: Message) => boolean, timeoutMs = REPLY_TIMEOUT_MS): Message {
    const kept = this.#signals.findIndex(match);
    if (kept >= 0) return this.#signals.splice(kept, 1)[0]!;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#readMessage(deadline);
      if (m.type === SIGNAL && match(m)) return m;
    }
  }
}
