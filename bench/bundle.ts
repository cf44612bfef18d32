/**
 * Makes ONE OCI bundle for the start benchmark (bench/start.ts): a temp dir holding a config.json
 * from `crun spec` (or `runc spec`), edited to run `/bin/true` in the shared busybox rootfs with new
 * pid, uts, ipc, mount and network namespaces (no user or cgroup namespace), no terminal.
 * The rootfs is not copied: `root.path` points at it (absolute). Remove the bundle with `dispose()`.
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A bundle directory and how to remove it. */
export interface Bundle {
  readonly dir: string;
  dispose(): void;
}

/**
 * Writes the bundle; throws when neither `crun spec` nor `runc spec` is there.
 * @param args The process's command line (default `/bin/true`).
 */
export function makeBundle(rootfs: string, args: readonly string[] = ["/bin/true"]): Bundle {
  const dir = mkdtempSync(join(tmpdir(), "hako-bench-bundle-"));
  try {
    let made = false;
    for (const tool of ["crun", "runc"]) {
      const r = spawnSync(tool, ["spec"], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
      if (r.status === 0) {
        made = true;
        break;
      }
    }
    if (!made) throw new Error("neither `crun spec` nor `runc spec` worked");
    const file = join(dir, "config.json");
    const c = JSON.parse(readFileSync(file, "utf8"));
    c.root = { path: rootfs, readonly: true };
    c.process.args = [...args];
    c.process.terminal = false;
    // (runc's spec raises ambient capabilities it leaves out of the inheritable set, which the kernel
    // refuses and runc and hako leave out with a warning: none, for every runtime alike, so that no
    // warning is written during a timed run)
    if (c.process.capabilities) delete c.process.capabilities.ambient;
    c.hostname = "bench";
    c.linux.namespaces = ["pid", "uts", "ipc", "mount", "network"].map((type) => ({ type }));
    delete c.linux.uidMappings;
    delete c.linux.gidMappings;
    writeFileSync(file, JSON.stringify(c, null, 2));
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
