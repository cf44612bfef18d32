/**
 * docker's exit codes for commands that run a container's program (no root needed: pure).
 * @module
 */
import assert from "node:assert/strict";
import { test } from "./_harness.ts";
import { SetupError, SyscallError } from "../src/errors.ts";
import { SpecError } from "../src/container/validate.ts";
import { programExitCode, replyExitCode } from "../src/cli/_exit_codes.ts";

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

test("a supervisor's error reply maps the same way: its step and errno name", () => {
  assert.equal(replyExitCode({ name: "SetupError", step: "exec", code: "ENOENT" }), 127);
  assert.equal(replyExitCode({ name: "SetupError", step: "exec", code: "EACCES" }), 126);
  assert.equal(replyExitCode({ name: "SetupError", step: "ports" }), 125);
  assert.equal(replyExitCode({ name: "SyscallError", step: "exec", code: "ENOENT" }), 125);
  assert.equal(replyExitCode(undefined), 125);
  // (a thrown error too: its SyscallError cause)
  assert.equal(replyExitCode(execFailed(2)), 127);
});
