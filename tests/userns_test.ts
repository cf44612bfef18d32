/**
 * A container in its own uid/gid range, as in seed 001: a rootfs from a tarball with its owners
 * shifted to the range, files that are root's inside and range-root's outside, and processes
 * whose host uid is the range's start plus their uid inside.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { assert, assertEquals, isRoot, tempDir, test } from "./_harness.ts";
import { Container } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : findStaticBusybox()
  ? false
  : "needs a static busybox (apt-get install busybox-static)";
const BASE = 300000;

test(
  "a tarball rootfs shifted to the range: root's files inside are range-root's outside; uid 48 inside is BASE+48 outside",
  async () => {
    using dir = tempDir();
    chmodSync(dir.path, 0o755);
    const src = buildRootfs(join(dir.path, "src"), { builder: "busybox" }).path;
    const tarball = join(dir.path, "image.tar.gz");
    execFileSync("tar", ["-C", src, "-czf", tarball, "."]);
    const path = join(dir.path, "rootfs");
    const name = `hako-test-userns-${process.pid}`;
    await using c = await Container.create({
      name,
      rootfs: { tarball, path, owner: { uid: BASE } },
      command: ["/bin/sh", "-c", "stat -c '%u %g' /bin/busybox > /tmp/inside; exec sleep 30"],
      user: { uid: 48, gid: 48 },
      namespaces: ["mount", "uts", "ipc", "pid", "user"],
      idMap: { uid: { inside: 0, outside: BASE, size: 100 }, gid: { inside: 0, outside: BASE, size: 100 } },
      networkEtc: false,
    });
    await c.start();
    // Outside, the file belongs to the range's root.
    const st = statSync(join(path, "bin/busybox"));
    assertEquals([st.uid, st.gid], [BASE, BASE]);
    // Inside, the same file is root's.
    const until = Date.now() + 10_000;
    let inside = "";
    while (Date.now() < until) {
      try {
        inside = readFileSync(join(path, "tmp/inside"), "utf8").trim();
        if (inside) break;
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals(inside, "0 0");
    // The process runs as uid 48 inside, BASE+48 on the host.
    const status = readFileSync(`/proc/${c.pid}/status`, "utf8");
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    const gid = /^Gid:\s+(\d+)/m.exec(status)?.[1];
    assertEquals([uid, gid], [String(BASE + 48), String(BASE + 48)]);
    assert(readFileSync(`/proc/${c.pid}/uid_map`, "utf8").includes(`${BASE}`));
    c.kill("KILL");
    await c.wait();
  },
  { skip },
);
