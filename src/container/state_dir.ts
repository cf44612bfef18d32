/**
 * Where containers' state lives, with no imports: the CLI's quick paths (`hako ps` of an empty
 * state directory) read it without loading `state.ts`, whose FFI and `node:` imports cost Deno
 * tens of milliseconds at start.
 * @module
 */

/** The default state directory (root's). */
export const DEFAULT_STATE_DIR = "/run/hako";

/**
 * The state directory (pure): `HAKO_STATE_DIR` when set; else root's {@link DEFAULT_STATE_DIR};
 * else — a user without root (rootless) — their own, as podman's: `$XDG_RUNTIME_DIR/hako`, or
 * `~/.local/share/hako/run` without a runtime directory — or with one that is not a directory of
 * the caller's (a stale one kept by `su` or `sudo -E`, another user's, or gone since logout): when
 * `lstat` is given, it says so.
 * @param value `HAKO_STATE_DIR`.
 * @param user The caller's euid and environment (default: root), and how to look at a path.
 */
export function resolveStateDir(
  value: string | undefined,
  user: {
    readonly euid: number;
    readonly env: (name: string) => string | undefined;
    readonly lstat?: (path: string) => { readonly uid: number; readonly kind: string } | undefined;
  } = {
    euid: 0,
    env: () => undefined,
  },
): string {
  if (value) return value;
  if (user.euid === 0) return DEFAULT_STATE_DIR;
  const runtime = user.env("XDG_RUNTIME_DIR");
  const own = (dir: string) => {
    if (!user.lstat) return true;
    const st = user.lstat(dir);
    return st?.kind === "dir" && st.uid === user.euid;
  };
  if (runtime?.startsWith("/") && own(runtime)) return `${runtime}/hako`;
  const home = user.env("HOME");
  return home?.startsWith("/") ? `${home}/.local/share/hako/run` : `/tmp/hako-${user.euid}`;
}
