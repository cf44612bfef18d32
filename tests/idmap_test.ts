/**
 * Idmapped binds (a bind's `idmap` / `ridmap`; OCI's `idmap`, `ridmap` and a mount's own
 * `uidMappings`): a container in a user namespace sees a host directory's files with their owners
 * on disk, and what it writes there is owned on disk by those ids — where without the option the
 * same files show as nobody's and the directory is not the container root's to write. The parent
 * copies and maps each source (the kernel allows it only for a caller privileged over the file
 * system); the child attaches the copy it inherits. Checked from the host, on both paths, then
 * through `hako-runc` from a bundle.
 * @module
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { deepEqual, equal, match, throws } from "node:assert/strict";
import { isRoot, tempDir, test, withSpawn } from "./_harness.ts";
import { launcher, runIt } from "./_oci_lab.ts";
import { run } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";
import { nativeChildren } from "../src/container/native.ts";
import { nativeSpawnSupported } from "../ffi/spawn.ts";
import { ociToSpec } from "../src/oci/config.ts";
import { defaultOciSpec } from "../src/oci/spec_default.ts";

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : findStaticBusybox()
  ? false
  : "needs a static busybox (apt-get install busybox-static)";
const BASE = 3_300_000;
const USERNS = ["mount", "uts", "ipc", "pid", "user"] as const;
const ID_MAP = { uid: { inside: 0, outside: BASE, size: 65536 }, gid: { inside: 0, outside: BASE, size: 65536 } };

/** A volume with a file of root's and one of uid 1000's (a directory of root's, 0755). */
function volume(dir: string): string {
  const vol = join(dir, "vol");
  mkdirSync(vol);
  chmodSync(vol, 0o755);
  writeFileSync(join(vol, "root-file"), "r");
  writeFileSync(join(vol, "user-file"), "u");
  chownSync(join(vol, "user-file"), 1000, 1000);
  return vol;
}

test("idmap is a bind option that needs a user namespace", () => {
  using dir = tempDir("hako-test-idmap-spec-");
  const base = { name: "x", rootfs: dir.path, command: ["true"] };
  const mounts = [{ type: "bind", source: dir.path, target: "/v", options: ["idmap"] }];
  throws(
    () => resolveSpec({ ...base, mounts }),
    (e: Error) => e instanceof SpecError && /mounts\[0\]\.options: idmap maps the mount through/.test(e.message),
  );
  equal(resolveSpec({ ...base, mounts, namespaces: [...USERNS], idMap: ID_MAP }).mounts[0]!.options![0], "idmap");
  // OCI: idmap/ridmap on binds, or a mount's own maps equal to the container's
  const c = defaultOciSpec() as unknown as Record<string, Record<string, unknown>> & { mounts: unknown[] };
  const maps = [{ containerID: 0, hostID: BASE, size: 65536 }];
  (c.linux!.namespaces as unknown[]).push({ type: "user" });
  c.linux!.uidMappings = maps;
  c.linux!.gidMappings = maps;
  c.mounts.push({ destination: "/a", type: "bind", source: "/tmp", options: ["rbind", "ridmap"] });
  c.mounts.push({
    destination: "/b",
    type: "bind",
    source: "/tmp",
    options: ["rbind"],
    uidMappings: maps,
    gidMappings: maps,
  });
  const spec = ociToSpec(c, "/b", "abc").spec;
  deepEqual(spec.mounts!.filter((m) => m.target === "/a" || m.target === "/b").map((m) => m.options), [
    ["rbind", "ridmap"],
    ["idmap", "rbind"],
  ]);
  c.mounts.push({
    destination: "/c",
    type: "bind",
    source: "/tmp",
    options: ["rbind"],
    uidMappings: [{ containerID: 0, hostID: 1, size: 1 }],
  });
  throws(
    () => ociToSpec(c, "/b", "abc"),
    /mounts\[\d+\]\.uidMappings: not supported by hako: only the container's own/,
  );
});

for (const path of ["native", "forked"] as const) {
  test(
    `an idmapped bind shows the files' owners on disk inside, and what root writes there is root's on disk (${path})`,
    async () => {
      using dir = tempDir("hako-test-idmap-");
      chmodSync(dir.path, 0o755);
      const rootfs = buildRootfs(join(dir.path, "rootfs"), { builder: "busybox" }).path;
      for (const d of ["v", "out"]) mkdirSync(join(rootfs, d)); // (root inside may not make them)
      const vol = volume(dir.path);
      const out = join(dir.path, "out");
      mkdirSync(out);
      chmodSync(out, 0o777);
      const name = (k: string) =>
        `hako-test-idmap-${k}${path[0]}-${process.pid}-${Math.random().toString(16).slice(2, 6)}`;
      const script =
        "stat -c '%u:%g' /v/root-file /v/user-file > /out/seen-$K; touch /v/made-$K 2>/dev/null; echo $? >> /out/seen-$K";
      const count = nativeChildren.count;
      await withSpawn(path === "forked" ? "0" : undefined, async () => {
        for (const [k, options] of [["mapped", ["idmap"]], ["plain", []]] as const) {
          const status = await run({
            name: name(k),
            rootfs,
            namespaces: [...USERNS],
            idMap: ID_MAP,
            networkEtc: false,
            env: { K: k },
            mounts: [
              { type: "bind", source: vol, target: "/v", options: [...options] },
              { type: "bind", source: out, target: "/out" },
            ],
            command: ["sh", "-c", script],
          });
          equal(status.code, 0);
        }
      });
      if (path === "native" && nativeSpawnSupported()) {
        equal(nativeChildren.count - count, 2, "the native program ran both (the copy's fd in a slot)");
      }
      // mapped: the owners on disk, and a file root made is root's on disk
      equal(readFileSync(join(out, "seen-mapped"), "utf8"), "0:0\n1000:1000\n0\n");
      const made = statSync(join(vol, "made-mapped"));
      deepEqual([made.uid, made.gid], [0, 0]);
      // plain: nobody's, and root inside (uid BASE outside) may not write root's directory
      equal(readFileSync(join(out, "seen-plain"), "utf8"), "65534:65534\n65534:65534\n1\n");
    },
    { skip },
  );
}

test("hako-runc runs a bundle with an idmapped bind (a mount's own uidMappings, and ridmap)", () => {
  using dir = tempDir("hako-test-idmap-oci-");
  chmodSync(dir.path, 0o755);
  const vol = volume(dir.path);
  const bundle = join(dir.path, "bundle");
  mkdirSync(bundle);
  buildRootfs(join(bundle, "rootfs"), { builder: "busybox" });
  for (const d of ["v", "w"]) mkdirSync(join(bundle, "rootfs", d)); // (root inside may not make them)
  const runc = launcher(dir.path);
  equal(runIt(runc, ["spec", "--bundle", bundle]).status, 0);
  const c = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
  const maps = [{ containerID: 0, hostID: BASE, size: 65536 }];
  c.process.terminal = false;
  c.process.args = ["sh", "-c", "stat -c '%u:%g' /v/root-file /w/user-file; touch /v/made-oci"];
  c.root.readonly = false;
  c.linux.namespaces.push({ type: "user" });
  c.linux.uidMappings = maps;
  c.linux.gidMappings = maps;
  c.mounts.push({
    destination: "/v",
    type: "bind",
    source: vol,
    options: ["rbind"],
    uidMappings: maps,
    gidMappings: maps,
  });
  c.mounts.push({ destination: "/w", type: "bind", source: vol, options: ["rbind", "ridmap"] });
  writeFileSync(join(bundle, "config.json"), JSON.stringify(c));
  const r = runIt(runc, [
    "--root",
    join(dir.path, "state"),
    "run",
    "--bundle",
    bundle,
    `hako-test-idmap-${Math.random().toString(36).slice(2, 8)}`,
  ]);
  equal(r.status, 0, r.stderr);
  equal(r.stdout, "0:0\n1000:1000\n");
  const made = statSync(join(vol, "made-oci"));
  deepEqual([made.uid, made.gid], [0, 0]);
  match(runIt(runc, ["features"]).stdout, /"idmap":\{"enabled":true\}|"idmap": \{\s*"enabled": true/);
}, { skip });
