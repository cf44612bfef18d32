/**
 * Network interface flags through ioctl on a datagram socket (`struct ifreq`): enough to bring
 * loopback up in a new network namespace without running `ip`.
 * @module
 */
import { check, libc } from "./libc.ts";
import { addressOf } from "./libc.ts";
import { AF_INET, IFF_UP, SOCK_CLOEXEC, SOCK_DGRAM } from "./constants.ts";

const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
/** sizeof(struct ifreq) on 64-bit Linux: a 16-byte name and a 24-byte union. */
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;
/** Offset of `ifr_flags` (a short) in the union. */
const IFR_FLAGS = 16;

/**
 * Sets IFF_UP on an interface (e.g. `"lo"`) in the caller's network namespace.
 * @throws {SyscallError} When the socket or either ioctl fails (ENODEV: no such interface).
 */
export function setLinkUp(name: string): void {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length >= IFNAMSIZ) throw new RangeError(`Cannot set ${name} up: interface names are at most 15 bytes`);
  const { socket, ioctl, close } = libc();
  const fd = check(
    socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0),
    "socket",
    ["AF_INET", "SOCK_DGRAM"],
    `bring ${name} up`,
  );
  try {
    const ifr = new Uint8Array(IFREQ_SIZE);
    ifr.set(bytes);
    const view = new DataView(ifr.buffer);
    const addr = addressOf(ifr);
    check(ioctl(fd, BigInt(SIOCGIFFLAGS), addr), "ioctl", [name, "SIOCGIFFLAGS"], `bring ${name} up`);
    view.setInt16(IFR_FLAGS, view.getInt16(IFR_FLAGS, true) | IFF_UP, true);
    check(ioctl(fd, BigInt(SIOCSIFFLAGS), addr), "ioctl", [name, "SIOCSIFFLAGS"], `bring ${name} up`);
    ifr[0]; // keep the buffer alive until both calls returned
  } finally {
    close(fd);
  }
}
