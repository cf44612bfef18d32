/**
 * The seal on a container record's host commands: what lets a supervisor run, from a record on
 * disk, the hooks of a container it did not start (one it adopts after the supervisor before it
 * died, or restarts under its policy).
 *
 * A record is hostile input: it is a file, and whatever can write it could otherwise make the
 * supervisor — root — run any command on the host (an event hook, `beforeStart`, a readiness
 * command). So the supervisor that starts a container seals its host commands (the spec's `hooks`
 * and `readiness`, with the container's name and creation time) with an HMAC-SHA256 under a key
 * of the state directory's (`supervisor.key`, 0600, made once, never in a record), and a
 * supervisor reading the record back runs them only when:
 * - the record is a regular file of the supervisor's user, writable by no one else, in a directory
 *   of that user's that no one else may enter (as the state store checks the state directory);
 * - they are still hooks and a readiness probe by the spec's own checks (names, argv, strings);
 * - the seal matches: a record whose commands were changed, or added, after its supervisor wrote it
 *   (or by a hako that did not seal them) keeps them unrun, and the supervisor says why.
 *
 * In-process callbacks (a script running its container with the library) cannot outlive their
 * process: they are never in a record, and a supervisor that adopts such a container fires none.
 * @module
 */
import { Buffer } from "node:buffer";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { closeSync, constants, fstatSync, linkSync, lstatSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { ContainerSpec } from "../container/spec.ts";
import type { StateRecord, StateStore } from "../container/state.ts";
import { EVENT_HOOK_NAMES, HOOK_NAMES, hookProblem, readinessProblem } from "../container/hooks.ts";

/** A record with the seal on its host commands. */
export type SealedRecord = StateRecord & {
  /** HMAC-SHA256 (hex) of its name, creation time, hooks and readiness under the state directory's key. */
  readonly hooksSeal?: string;
};

const KEY_FILE = "supervisor.key";
const KEY_BYTES = 32;

/** The host commands of a spec (its hooks and readiness), in a fixed order: what is sealed. */
function sealed(spec: ContainerSpec): { hooks: [string, unknown][]; readiness: unknown } | undefined {
  const hooks = Object.entries((spec.hooks ?? {}) as Record<string, unknown>).sort(([a], [b]) => a < b ? -1 : 1);
  if (hooks.length === 0 && spec.readiness === undefined) return undefined;
  return { hooks, readiness: spec.readiness ?? null };
}

/**
 * The state directory's key: read, or made (0600, O_EXCL) when there is none.
 * @throws {Error} When it is there but not a 0600 file of this user's of the right size.
 */
export function sealKey(store: StateStore, again = true): Buffer {
  const path = store.file(KEY_FILE);
  const uid = process.geteuid?.() ?? 0;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOENT") throw e;
    // Written whole under a name of this process's, then linked into place: no reader sees it
    // half-written, and of two hako processes making it at once one wins.
    const key = randomBytes(KEY_BYTES);
    const tmp = `${path}.${process.pid}.tmp`;
    rmSync(tmp, { force: true });
    const w = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(w, key);
    } finally {
      closeSync(w);
    }
    try {
      linkSync(tmp, path);
    } catch (e2) {
      if ((e2 as { code?: string }).code === "EEXIST" && again) return sealKey(store, false);
      throw e2;
    } finally {
      rmSync(tmp, { force: true });
    }
    return key;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== uid || (st.mode & 0o777) !== 0o600 || st.size !== KEY_BYTES) {
      throw new Error(`${path} is not a 0600 file of uid ${uid}'s of ${KEY_BYTES} bytes`);
    }
    const key = Buffer.alloc(KEY_BYTES);
    if (readSync(fd, key, 0, KEY_BYTES, 0) !== KEY_BYTES) throw new Error(`${path} is cut short`);
    return key;
  } finally {
    closeSync(fd);
  }
}

/** The seal of a record's host commands; undefined when its spec has none. */
export function sealOf(key: Buffer, r: Pick<StateRecord, "name" | "createdAt" | "spec">): string | undefined {
  const what = sealed(r.spec);
  if (!what) return undefined;
  return createHmac("sha256", key).update(JSON.stringify([r.name, r.createdAt, what])).digest("hex");
}

/**
 * Why the host commands of a record read back must not be run; undefined when they may (or when it
 * has none). See the module doc.
 */
export function untrustedCommands(store: StateStore, key: Buffer, r: SealedRecord): string | undefined {
  const what = sealed(r.spec);
  if (!what) return undefined;
  const uid = process.geteuid?.() ?? 0;
  const dir = store.dir(r.name), file = join(dir, "state.json");
  try {
    const d = lstatSync(dir), f = lstatSync(file);
    if (!d.isDirectory() || d.uid !== uid || (d.mode & 0o077) !== 0) {
      return `${dir} is not a directory of uid ${uid}'s closed to others`;
    }
    if (!f.isFile() || f.uid !== uid || (f.mode & 0o022) !== 0) {
      return `${file} is not a file of uid ${uid}'s that no one else may write (uid ${f.uid}, mode ${
        (f.mode & 0o7777).toString(8)
      })`;
    }
  } catch (e) {
    return `its record cannot be checked (${(e as Error).message})`;
  }
  const names: readonly string[] = [...HOOK_NAMES, ...EVENT_HOOK_NAMES];
  for (const [k, v] of what.hooks) {
    if (!names.includes(k)) return `hooks.${k} is not a hook`;
    const p = typeof v === "function"
      ? "is a function"
      : hookProblem(v) ?? ([v].flat().some((a) => String(a).includes("\0")) ? "holds a NUL byte" : undefined);
    if (p) return `hooks.${k} ${p}`;
  }
  const rp = readinessProblem(r.spec.readiness);
  if (rp) return `${rp.path} ${rp.message}`;
  const want = sealOf(key, r)!;
  const got = typeof r.hooksSeal === "string" && /^[0-9a-f]{64}$/.test(r.hooksSeal) ? r.hooksSeal : undefined;
  if (!got) return "its hooks carry no seal (not written by a supervisor of this state directory)";
  if (!timingSafeEqual(Buffer.from(want, "hex"), Buffer.from(got, "hex"))) {
    return "its hooks are not the ones its supervisor sealed (the record was changed)";
  }
  return undefined;
}
