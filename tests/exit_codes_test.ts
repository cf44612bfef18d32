/**
 * docker's exit codes for commands that run a container's program (no root needed: pure).
 * @module
 */
import assert from "node:assert/strict";
import { test } from "./_harness.ts";
import { SetupError, SyscallError } from "../src/errors.ts";
import { SpecError } from "../src/container/validate.ts";
import { programExitCode } from "../src/cli/_exit_codes.ts";

const execFailed = (errno: number) =>
  new SetupError("exec", "execve failed", { cause: new SyscallError("execve", errno, ["/x"]) });

test("a program not found is 127, one that cannot be executed 126, any other hako failure 125", () => {
  assert.equal(programExitCode(execFailed(2 /* ENOENT */)), 127);
  assert.equal(programExitCode(execFailed(20 /* ENOTDIR */)), 127);
  assert.equal(programExitCode(execFailed(13 /* EACCES */)), 126);
  assert.equal(programExitCode(execFailed(8 /* ENOEXEC */)), 126);
  assert.equal(
    programExitCode(new SetupError("pivot_root", "failed", { cause: new SyscallError("pivot_root", 2) })),
    125,
  );
  assert.equal(programExitCode(new SpecError([{ path: "rootfs", message: "is required" }])), 125);
  assert.equal(programExitCode(execFailed(12 /* ENOMEM */)), 125);
});
