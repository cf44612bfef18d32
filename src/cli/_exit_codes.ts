/**
 * Which errors are messages rather than crashes, and the exit codes of commands that run a
 * container's program (`hako run`, `hako exec`), as docker's: 125 when hako itself failed (a bad
 * spec, a setup step, a missing container), 126 when the program was found but cannot be executed,
 * 127 when it was not found — so a script can tell "hako failed" from "the container exited 1".
 * Other commands exit 1 on these errors.
 *
 * @module
 */

/** The error names hako prints as a one-line message (no stack): about the user's containers or specs. */
export const MESSAGE_ERRORS: readonly string[] = [
  "ContainerStateError",
  "StateDirError",
  "SpecError",
  "ConfigError",
  "SetupError",
  "SyscallError",
];

/** docker's codes (`docker run --help`, "Exit Status"). */
export const EXIT_HAKO_FAILED = 125, EXIT_CANNOT_EXECUTE = 126, EXIT_NOT_FOUND = 127;

/** errnos of execve that mean "found, but cannot be executed" (the shell's 126). */
const CANNOT_EXECUTE = new Set(["EACCES", "ENOEXEC", "EPERM", "EISDIR", "ETXTBSY", "ELIBBAD"]);

/**
 * The exit code for a message error of a command that runs a container's program (pure): 127 or
 * 126 when the program's execve failed (the `exec` step), else 125.
 * @param e The error (one of {@link MESSAGE_ERRORS}).
 */
export function programExitCode(e: unknown): number {
  const err = e as { name?: string; step?: string; cause?: { name?: string; code?: string } } | undefined;
  if (err?.name === "SetupError" && err.step === "exec" && err.cause?.name === "SyscallError") {
    const code = err.cause.code ?? "";
    if (code === "ENOENT" || code === "ENOTDIR") return EXIT_NOT_FOUND;
    if (CANNOT_EXECUTE.has(code)) return EXIT_CANNOT_EXECUTE;
  }
  return EXIT_HAKO_FAILED;
}

/**
 * The exit code of a container that the supervisor failed to start (`hako run -d`), from its
 * error reply (pure): the name, step and errno it carries (`protocol.ts`'s `ErrorReply`), as
 * {@link programExitCode} for a thrown error. Anything else that failed before the command ran —
 * the name taken, the image's extraction, the supervisor unreachable — is hako's: 125.
 * @param reply The reply's error (or a thrown error), or undefined when none was kept.
 */
export function replyExitCode(reply: { name?: string; step?: string; code?: string } | undefined): number {
  if (reply?.name === "SetupError" && reply.step === "exec" && typeof reply.code === "string") {
    return programExitCode({ ...reply, cause: { name: "SyscallError", code: reply.code } });
  }
  return programExitCode(reply);
}

/**
 * Runs a command that runs a container's program: a message error is printed as `hako NAME: …`
 * and becomes docker's exit code ({@link programExitCode}); anything else is thrown on.
 * @param name The command's name, for the message.
 * @param stderr Where the message goes.
 * @param body The command.
 */
export async function withProgramExitCodes<T extends number | undefined>(
  name: string,
  stderr: (text: string) => void,
  body: () => Promise<T>,
): Promise<T | number> {
  try {
    return await body();
  } catch (e) {
    if (!MESSAGE_ERRORS.includes((e as Error)?.name)) throw e;
    stderr(`hako ${name}: ${(e as Error).message}\n`);
    return programExitCode(e);
  }
}
