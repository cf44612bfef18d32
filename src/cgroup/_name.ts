/**
 * Validation of cgroup names: relative paths that stay inside the cgroup root.
 * @module
 */
import { relative, resolve } from "node:path";
import { ConfigError } from "../errors.ts";

/**
 * Checks a cgroup name: a non-empty relative path (`"hako/web-1"`) whose segments are not empty,
 * `.` or `..`, without NUL or newline, each at most 255 bytes, that stays inside the root.
 *
 * @param name The name.
 * @param field The field path for the error (`"cgroup.name"`).
 * @throws {ConfigError} Saying what is wrong and why.
 */
export function assertValidName(name: string, field = "cgroup.name"): void {
  if (typeof name !== "string") throw new ConfigError(field, `must be a string, got ${typeof name}`);
  if (name === "") throw new ConfigError(field, "must not be empty: it names a directory under the cgroup root");
  if (name.includes("\0")) throw new ConfigError(field, `must not contain a NUL character: ${JSON.stringify(name)}`);
  if (name.includes("\n")) throw new ConfigError(field, `must not contain a newline: ${JSON.stringify(name)}`);
  if (name.startsWith("/")) {
    throw new ConfigError(field, `must be relative to the cgroup root, not an absolute path: ${JSON.stringify(name)}`);
  }
  for (const seg of name.split("/")) {
    if (seg === "..") {
      throw new ConfigError(
        field,
        `must not contain ".." segments (they would leave the cgroup root): ${JSON.stringify(name)}`,
      );
    }
    if (seg === "" || seg === ".") {
      throw new ConfigError(field, `must not contain empty or "." segments: ${JSON.stringify(name)}`);
    }
    if (new TextEncoder().encode(seg).length > 255) {
      throw new ConfigError(field, `segment ${JSON.stringify(seg.slice(0, 20) + "…")} is longer than 255 bytes`);
    }
  }
  // Belt and braces: whatever the rules above miss must still resolve inside the root.
  const rel = relative("/root-of-cgroups", resolve("/root-of-cgroups", name));
  if (rel === "" || rel.startsWith("..")) {
    throw new ConfigError(field, `escapes the cgroup root: ${JSON.stringify(name)}`);
  }
}
