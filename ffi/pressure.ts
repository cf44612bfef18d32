/**
 * The kernel's own memory-pressure notifications for a cgroup, as descriptors checked without
 * blocking (a `poll` with no timeout, on the caller's timer), so that they work the same under
 * Deno and Bun, neither of which can hand a raw descriptor to its event loop:
 * - cgroup v2: a PSI trigger (Documentation/accounting/psi.rst), `some <stall µs> <window µs>`
 *   written to the cgroup's `memory.pressure`; the descriptor shows `POLLPRI` when some of its
 *   tasks stalled on memory that long within a window (at most once per window), `POLLERR` once
 *   the cgroup is gone.
 * - cgroup v1: `memory.pressure_level` through `cgroup.event_control` and an eventfd
 *   (Documentation/admin-guide/cgroup-v1/memory.rst §11; runc's `NotifyMemoryPressure` does the
 *   same), readable when the kernel saw reclaim at that level or higher. The eventfd is also
 *   signalled when the cgroup is removed: stop looking before that.
 * @module
 */
import { errno, libc, retryEintr } from "./libc.ts";
import { cstr } from "./cstring.ts";
import { SyscallError } from "./errno.ts";
import { SYS } from "./syscalls.ts";
import { O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY, POLLERR, POLLIN, POLLPRI } from "./constants.ts";

const EFD_CLOEXEC = 0o2000000, EFD_NONBLOCK = 0o4000;
const POLLNVAL = 0x20;

function openOrThrow(path: string, flags: number): number {
  const fd = libc().open(cstr(path), flags | O_CLOEXEC, 0);
  if (fd === -1) throw new SyscallError("open", errno(), [path]);
  return fd;
}

/**
 * Arms a PSI trigger on the cgroup2 directory `dir`: `some stallUs windowUs` written to its
 * `memory.pressure`. The kernel takes windows of 500 ms to 10 s; a writer without
 * CAP_SYS_RESOURCE, only whole multiples of 2 s.
 * @returns The descriptor to watch with {@link pressureFired} (close it to disarm).
 * @throws {SyscallError} When the file cannot be opened (no PSI: ENOENT; or EOPNOTSUPP when it
 *   is disabled) or the trigger is refused (EINVAL: a window the writer may not use).
 */
export function armPsiTrigger(dir: string, stallUs: number, windowUs: number): number {
  const path = `${dir}/memory.pressure`;
  const fd = openOrThrow(path, O_RDWR | O_NONBLOCK);
  const line = `some ${stallUs} ${windowUs}`;
  // (with its NUL: the kernel ends the string at the last byte written)
  const bytes = cstr(line);
  if (libc().write(fd, bytes, BigInt(bytes.length)) === -1) {
    const e = errno();
    libc().close(fd);
    throw new SyscallError("write", e, [path, line]);
  }
  return fd;
}

/**
 * Registers an eventfd for cgroup v1's `memory.pressure_level` at `level` (`low`, `medium`,
 * `critical`) in the memory cgroup directory `dir`.
 * @returns The eventfd to watch with {@link pressureFired} (closing it unregisters).
 * @throws {SyscallError} When the eventfd cannot be made or the kernel refuses the registration.
 */
export function armPressureLevel(dir: string, level: string): number {
  const efd = Number(libc().syscall(BigInt(SYS.eventfd2), 0n, BigInt(EFD_CLOEXEC | EFD_NONBLOCK), 0n, 0n, 0n));
  if (efd === -1) throw new SyscallError("eventfd2", errno(), [0, "EFD_CLOEXEC|EFD_NONBLOCK"]);
  let lfd = -1, cfd = -1;
  try {
    lfd = openOrThrow(`${dir}/memory.pressure_level`, O_RDONLY);
    const control = `${dir}/cgroup.event_control`;
    cfd = openOrThrow(control, O_WRONLY);
    const line = `${efd} ${lfd} ${level}`;
    const bytes = cstr(line);
    if (libc().write(cfd, bytes, BigInt(bytes.length - 1)) === -1) {
      throw new SyscallError("write", errno(), [control, line]);
    }
    return efd;
  } catch (e) {
    libc().close(efd);
    throw e;
  } finally {
    // (the registration holds what it needs: the level file's descriptor may go)
    if (lfd >= 0) libc().close(lfd);
    if (cfd >= 0) libc().close(cfd);
  }
}

/**
 * Whether a descriptor of {@link armPsiTrigger} (`psi`) or {@link armPressureLevel} (`eventfd`)
 * fired since the last look (an eventfd's count is read, so it starts over); `"gone"` when the
 * trigger's cgroup is gone (or the descriptor is bad). Never blocks.
 */
export function pressureFired(fd: number, kind: "psi" | "eventfd"): boolean | "gone" {
  const buf = new Uint8Array(8);
  const view = new DataView(buf.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, kind === "psi" ? POLLPRI : POLLIN, true);
  const n = retryEintr(() => libc().poll(buf, 1n, 0));
  if (n <= 0) return false;
  const revents = view.getInt16(6, true);
  if (kind === "psi") {
    if (revents & POLLPRI) return true;
    return revents & (POLLERR | POLLNVAL) ? "gone" : false;
  }
  if (revents & POLLNVAL) return "gone";
  if (!(revents & POLLIN)) return false;
  const count = new Uint8Array(8);
  retryEintr(() => libc().read(fd, count, 8n));
  return true;
}
