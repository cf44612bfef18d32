/**
 * Who is connecting to the supervisor: the peer credentials of an accepted `node:net` connection
 * (`SO_PEERCRED`), and the rule that only the supervisor's own user may use it.
 *
 * Neither Deno nor Bun documents a way to read an accepted socket's credentials or fd. What both
 * do expose (checked under Deno 2.9 and Bun 1.4, concurrent connections of three uids mapped
 * right every time) is the fd behind `socket._handle.fd`. hako reads it, proves it is a socket
 * accepted on the supervisor's own path (getsockname), and reads SO_PEERCRED from it; anything
 * else — no fd, another socket, a failed call — refuses the client (fail closed), so a runtime
 * that changes this internal makes the supervisor refuse everyone, never accept anyone.
 * @module
 */
import type { Socket } from "node:net";
import { type PeerCredentials, peerCredentials, socketPath } from "../../ffi/unix_socket.ts";

/** The verdict on a connection. */
export type PeerVerdict =
  | { readonly ok: true; readonly peer: PeerCredentials }
  | {
    readonly ok: false;
    /** The peer, as far as known ("uid 65534 (pid 4242)"). */
    readonly who: string;
    /** Why it is refused. */
    readonly reason: string;
  };

/** The fd of an accepted `node:net` socket, where the runtime shows it (see the module doc). */
export function acceptedFd(sock: Socket): number | undefined {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === "number" && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/**
 * Whether the peer of `sock` may use the supervisor: only `allowedUid` may (root for a supervisor
 * run by root; the same user for a rootless one) — the supervisor runs containers and their hooks
 * with its own privileges for whoever it serves.
 * @param sock A connection accepted by the supervisor's server.
 * @param listenPath The path the server listens on.
 * @param allowedUid The one uid it serves.
 */
export function judgePeer(sock: Socket, listenPath: string, allowedUid: number): PeerVerdict {
  const fd = acceptedFd(sock);
  const unknown = (why: string): PeerVerdict => ({
    ok: false,
    who: "a client",
    reason: `its credentials cannot be read (${why}), so it is refused`,
  });
  if (fd === undefined) return unknown("this runtime does not show the connection's fd");
  let peer: PeerCredentials;
  try {
    const bound = socketPath(fd);
    if (bound !== listenPath) {
      return unknown(`fd ${fd} is not a connection to ${listenPath} (it is ${bound ?? "unnamed"})`);
    }
    peer = peerCredentials(fd);
  } catch (e) {
    return unknown((e as Error).message);
  }
  if (peer.uid === allowedUid) return { ok: true, peer };
  return {
    ok: false,
    who: `uid ${peer.uid} (pid ${peer.pid})`,
    reason: `only uid ${allowedUid} may use the hako supervisor on ${listenPath}`,
  };
}
