/**
 * What a daemon does to itself at start: a session of its own (no terminal's signals reach it),
 * stdio to a log file, and `/` as its working directory (so it pins no directory).
 * @module
 */
import process from "node:process";
import { check, libc } from "../../ffi/libc.ts";
import { cstr } from "../../ffi/cstring.ts";
import { O_APPEND, O_CLOEXEC, O_CREAT, O_NOFOLLOW, O_RDONLY, O_WRONLY } from "../../ffi/constants.ts";

/**
 * Leaves the caller's session (setsid; already a leader is fine), points stdin at /dev/null and
 * stdout and stderr at `logPath` (appended), and moves to `/`.
 */
export function detachInto(logPath: string): void {
  const { setsid, open, dup2, close } = libc();
  setsid();
  // 0600, and never through a symlink (the log lives in the state directory, written as root).
  const log = check(
    open(cstr(logPath), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600),
    "open",
    [logPath],
  );
  const nul = check(open(cstr("/dev/null"), O_RDONLY | O_CLOEXEC, 0), "open", ["/dev/null"]);
  check(dup2(nul, 0), "dup2", [nul, 0]);
  check(dup2(log, 1), "dup2", [log, 1]);
  check(dup2(log, 2), "dup2", [log, 2]);
  close(nul);
  close(log);
  process.chdir("/");
}
