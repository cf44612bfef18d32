/**
 * A child process for the tarball tests, run under Deno or Bun (whichever a test wants):
 *
 *   extract TARBALL DIR [OWNER_UID]  extractRootfs, then prints {"created": …}
 *   walk TMPDIR                      with a seccomp filter that answers ENOSYS to openat2 (a kernel
 *                                    before 5.6), runs the hostile-tarball matrix under TMPDIR and
 *                                    prints {"enosys": …, "count": …, "failures": […]}
 *
 * The last line of stdout is the JSON result.
 * @module
 */
import process from "node:process";
import * as at from "../ffi/at.ts";
import { SyscallError } from "../src/errors.ts";
import { loadSeccomp } from "../src/seccomp.ts";
import { extractRootfs } from "../src/container/tarball.ts";
import { runCases } from "./_tarball_attack.ts";

const ENOSYS = 38;
const [mode, ...args] = process.argv.slice(2);

if (mode === "extract") {
  const [tarball, dir, uid] = args;
  const res = await extractRootfs(tarball!, dir!, uid ? { owner: { uid: Number(uid) } } : {});
  console.log(JSON.stringify({ created: res.created }));
} else if (mode === "walk") {
  // The filter is on this thread, the one that makes every FFI call of the extraction.
  loadSeccomp({ defaultAction: "allow", syscalls: [{ names: ["openat2"], action: "errno", errno: ENOSYS }] });
  let enosys = false;
  try {
    at.close(at.openat2(at.AT_FDCWD, "/", { flags: at.O_PATH, resolve: 0 }));
  } catch (e) {
    enosys = e instanceof SyscallError && e.code === "ENOSYS";
  }
  const { failures, count } = await runCases(args[0]!, false);
  console.log(JSON.stringify({ enosys, count, failures }));
} else {
  console.error(`usage: _tarball_probe.ts extract TARBALL DIR [OWNER_UID] | walk TMPDIR`);
  process.exit(2);
}
