/**
 * {@link TrustFs} through `node:fs`. A leaf module, so that hako-runc's hot commands check their
 * `--root` without loading the container state library (see src/oci/runtime.ts);
 * `container/state.ts` re-exports it.
 * @module
 */
import { lstatSync, realpathSync, type Stats } from "node:fs";
import type { FileFacts, TrustFs } from "./_trusted_path.ts";

/** `lstat` through `node:fs`, for {@link untrustedWayTo}. */
export const nodeTrustFs: TrustFs = {
  lstat(path: string): FileFacts | undefined {
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw e;
    }
    const kind = st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
    return { uid: st.uid, mode: st.mode & 0o7777, kind };
  },
  realPath: (path: string) => realpathSync(path),
};
