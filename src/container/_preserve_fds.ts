/**
 * OCI `--preserve-fds N` (runc's `ExtraFiles`): the caller's fds 3 … 2+N pass to a container's
 * command (`Container.create`'s and `execIn`'s `preserveFds`).
 * @module
 */
import { inheritFd } from "../../ffi/at.ts";
import { ConfigError } from "../errors.ts";

/**
 * `preserveFds` checked (a count of fds from 3 on, each open) and each made to pass on at exec.
 * @throws {ConfigError} `preserveFds`: not a count, or one of its fds not open.
 */
export function passPreservedFds(count: number | undefined): void {
  if (count === undefined || count === 0) return;
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_PRESERVED_FDS) {
    throw new ConfigError("preserveFds", `${count}: a count of fds from 3 on (0 to ${MAX_PRESERVED_FDS})`);
  }
  for (let fd = 3; fd < 3 + count; fd++) {
    try {
      inheritFd(fd);
    } catch (e) {
      throw new ConfigError(
        "preserveFds",
        `${count} passes fds 3 to ${2 + count}, and fd ${fd} is not open (${(e as Error).message})`,
      );
    }
  }
}

/** The most fds `preserveFds` passes on (a count beyond any fd table hako is given). */
export const MAX_PRESERVED_FDS = 1 << 20;
