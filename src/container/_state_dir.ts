/**
 * Where containers' state lives, with no imports: the CLI's quick paths (`hako ps` of an empty
 * state directory) read it without loading `state.ts`, whose FFI and `node:` imports cost Deno
 * tens of milliseconds at start.
 * @module
 */

/** The default state directory. */
export const DEFAULT_STATE_DIR = "/run/hako";

/**
 * The state directory for a value of `HAKO_STATE_DIR` (pure): it, or {@link DEFAULT_STATE_DIR}
 * when unset or empty.
 */
export function resolveStateDir(value: string | undefined): string {
  return value || DEFAULT_STATE_DIR;
}
