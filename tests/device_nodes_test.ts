/**
 * Device nodes beyond the default ones (`devices` in the spec; OCI's `linux.devices`, podman's
 * `--device`): made in the container's own /dev — mknod with their mode whatever the umask, or the
 * host's node bound over an empty file in a user namespace, as runc does — and usable only where a
 * `cgroup.devices` rule allows them. Checked from inside, on the native and the forked path, with
 * and without a user namespace, then through hako-runc against runc from one bundle.
 * @module
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { deepEqual, equal, throws } from "node:assert/strict";
import { isRoot, tempDir, test, withSpawn } from "./_harness.ts";
import { launcher, runIt, runtimesToCompare } from "./_oci_lab.ts";
import { run } from "../mod.ts";
import { buildRootfs, findStaticBusybox } from "../src/container/rootfs.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";
import { ociToSpec } from "../src/oci/config.ts";
import { defaultOciSpec } from "../src/oci/spec_default.ts";
import { nativeChildren } from "../src/container/native.ts";
import { nativeSpawnSupported } from "../ffi/spawn.ts";

const skip = !isRoot
  ? "needs root (run the suite with sudo)"
  : !findStaticBusybox()
  ? "needs a static busybox (apt-get install busybox-static)"
  : false;
/** The host nodes a user namespace binds (and `--device` reads). */
const HOST_NODES = ["/dev/fuse", "/dev/net/tun", "/dev/loop-control"];
const hostNodesSkip = HOST_NODES.every((p) => existsSync(p)) ? false : `needs the host's ${HOST_NODES.join(", ")}`;
/** /dev/fuse: 10:229 on every Linux (misc device). */
const FUSE = { path: "/dev/fuse", type: "c", major: 10, minor: 229 } as const;
const USERNS = ["mount", "uts", "ipc", "pid", "net", "user"] as const;
const ID_MAP = {
  uid: { inside: 0, outside: 3_400_000, size: 65536 },
  gid: { inside: 0, outside: 3_400_000, size: 65536 },
};

test("device nodes are checked by field path: under /dev, not hako's own, numbers for c/b, none for p", () => {
  using dir = tempDir("hako-test-devnodes-spec-");
  const base = { name: "x", rootfs: dir.path, command: ["true"] };
  const problems = (devices: unknown[]) => {
    try {
      resolveSpec({ ...base, devices } as never);
      return [];
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      return e.problems.map((p) => p.path);
    }
  };
  deepEqual(problems([FUSE, { path: "/dev/net/tun", type: "c", major: 10, minor: 200, fileMode: 0o600 }]), []);
  deepEqual(
    problems([
      { path: "/etc/fuse", type: "c", major: 10, minor: 229 },
      { path: "/dev/null", type: "c", major: 1, minor: 3 },
      { path: "/dev/pts/9", type: "c", major: 136, minor: 9 },
      { path: "/dev/../etc/x", type: "c", major: 1, minor: 1 },
      { path: "/dev/x", type: "z", major: 1, minor: 1 },
      { path: "/dev/y", type: "c", major: 5000, minor: 1 },
      { path: "/dev/f", type: "p", major: 1 },
      { path: "/dev/m", type: "c", major: 1, minor: 1, fileMode: 0o4777 },
      { path: "/dev/fd/9", type: "c", major: 1, minor: 3 },
    ]),
    [
      "devices[0].path",
      "devices[1].path",
      "devices[2].path",
      "devices[3].path",
      "devices[4].type",
      "devices[5].major",
      "devices[6].major",
      "devices[7].fileMode",
      "devices[8].path",
    ],
  );
  throws(
    () => resolveSpec({ ...base, devices: [FUSE], standardMounts: false }),
    /devices: are made in hako's own \/dev/,
  );
  // OCI: runc's default nodes are hako's own; the others go to `devices`, fileMode's permission bits
  const c = defaultOciSpec() as unknown as Record<string, Record<string, unknown>>;
  c.linux!.devices = [
    { path: "/dev/null", type: "c", major: 1, minor: 3 },
    { ...FUSE, fileMode: 0o20666, uid: 0, gid: 0 },
  ];
  deepEqual(ociToSpec(c, "/b", "abc").spec.devices, [{ ...FUSE, fileMode: 0o666 }]);
  c.linux!.devices = [{ ...FUSE, uid: 1000 }];
  throws(() => ociToSpec(c, "/b", "abc"), /linux\.devices\[0\]\.uid: not supported by hako/);
});

for (const path of ["native", "forked"] as const) {
  for (const userns of [false, true]) {
    test(
      `a spec's device nodes are in the container's /dev with their mode, and open where a cgroup rule allows them (${path}${
        userns ? ", a user namespace" : ""
      })`,
      async () => {
        using dir = tempDir("hako-test-devnodes-");
        chmodSync(dir.path, 0o755);
        const rootfs = buildRootfs(join(dir.path, "rootfs"), { builder: "busybox" }).path;
        mkdirSync(join(rootfs, "out"));
        const out = join(dir.path, "out");
        mkdirSync(out);
        chmodSync(out, 0o777);
        const count = nativeChildren.count;
        await withSpawn(path === "forked" ? "0" : undefined, async () => {
          const status = await run({
            name: `hako-test-devnodes-${path[0]}${userns ? "u" : ""}-${process.pid}`,
            rootfs,
            ...(userns ? { namespaces: [...USERNS], idMap: ID_MAP } : {}),
            devices: [
              { ...FUSE, fileMode: 0o640 },
              { path: "/dev/net/tun", type: "c", major: 10, minor: 200 },
              { path: "/dev/loop-control", type: "c", major: 10, minor: 237 },
              { path: "/dev/fifo", type: "p" },
            ],
            // fuse allowed by the rule, tun by runc's default list; loop-control made, not allowed
            cgroup: { devices: [{ allow: true, type: "c", major: 10, minor: 229, access: "rwm" }] },
            mounts: [{ type: "bind", source: out, target: "/out" }],
            command: [
              "sh",
              "-c",
              "stat -c '%n %F %t:%T %a' /dev/fuse /dev/net/tun /dev/loop-control /dev/fifo > /out/nodes; " +
              "for d in fuse net/tun loop-control; do { true < /dev/$d && echo $d open || echo $d refused; } 2>/dev/null; done >> /out/nodes",
            ],
          });
          equal(status.code, 0);
        });
        // (fuse: opening it reads nothing, but the open is what the cgroup decides; in a user
        // namespace the bound node keeps the host's mode, 0600)
        deepEqual(readFileSync(join(out, "nodes"), "utf8").split("\n").filter(Boolean), [
          `/dev/fuse character special file a:e5 ${userns ? "600" : "640"}`,
          `/dev/net/tun character special file a:c8 ${userns ? "600" : "666"}`,
          `/dev/loop-control character special file a:ed ${userns ? "600" : "666"}`,
          "/dev/fifo fifo 0:0 666",
          // (in a user namespace the bound nodes are the host root's, 0600 here: root inside is
          // not their owner, so the mode refuses them before the cgroup is asked — as with runc)
          `fuse ${userns ? "refused" : "open"}`,
          `net/tun ${userns ? "refused" : "open"}`,
          "loop-control refused",
        ]);
        if (path === "native" && nativeSpawnSupported()) equal(nativeChildren.count - count, 1);
      },
      { skip: skip || (userns && hostNodesSkip) },
    );
  }
}

test("hako-runc makes a bundle's linux.devices as runc does", () => {
  using dir = tempDir("hako-test-devnodes-oci-");
  const bundle = join(dir.path, "bundle");
  mkdirSync(bundle);
  buildRootfs(join(bundle, "rootfs"), { builder: "busybox" });
  const hako = launcher(dir.path);
  equal(runIt(hako, ["spec", "--bundle", bundle]).status, 0);
  const c = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
  c.process.terminal = false;
  c.root.readonly = false;
  c.process.args = ["sh", "-c", "stat -c '%n %F %t:%T %a' /dev/fuse; true < /dev/fuse && echo open"];
  c.linux.devices = [{ ...FUSE, fileMode: 0o20620, uid: 0, gid: 0 }];
  c.linux.resources = {
    devices: [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 10, minor: 229, access: "rwm" }],
  };
  writeFileSync(join(bundle, "config.json"), JSON.stringify(c));
  const want = "/dev/fuse character special file a:e5 620\nopen\n";
  for (const { who, bin, env } of runtimesToCompare(dir.path)) {
    const r = runIt(bin, [
      "--root",
      join(dir.path, `state-${who}`),
      "run",
      "--bundle",
      bundle,
      `hako-test-dn-${who}-${process.pid}`,
    ], env);
    equal(r.status, 0, `${who}: ${r.stderr}`);
    equal(r.stdout, want, who);
  }
}, { skip });
