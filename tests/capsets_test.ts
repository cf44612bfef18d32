/**
 * Capabilities per set: a spec gives the five sets separately (OCI's `process.capabilities`), and
 * a non-root user gets the capabilities its spec names in the ambient set (podman's rule), so
 * `user: { uid: 1000 }, capabilities: ["CAP_NET_BIND_SERVICE"]` binds port 80. Checked inside real
 * containers on both paths (the native child and the forked one), and by the validator.
 */
import process from "node:process";
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, needsRoot, tempDir, test } from "./_harness.ts";
import { capField, procFile, statusField, waitUntil } from "./_proc.ts";
import { Capability, type ContainerSpec, SpecError } from "../mod.ts";
import { Container } from "../src/container/container.ts";
import { execIn } from "../src/container/exec.ts";
import { nativeChildren } from "../src/container/native.ts";
import { findStaticBusybox } from "../src/container/rootfs.ts";
import { DEFAULT_CAPABILITIES } from "../src/container/spec.ts";
import { resolveSpec } from "../src/container/validate.ts";
import { capabilitySetsFor } from "../src/container/_capsets.ts";
import { planContainer, planText } from "../src/container/plan.ts";
import libcontainer from "../examples/specs/libcontainer.ts";

const skip = needsRoot ||
  (findStaticBusybox() === undefined && "needs a static busybox (apt-get install busybox-static)");
const noRunner = process.arch !== "x64" && `the native runner is x86-64 only (this is ${process.arch})`;

const base: ContainerSpec = { name: "caps", rootfs: "/var/lib/hako/none", command: ["true"] };
const hex = (n: bigint) => `0x${n.toString(16)}`;
const mask = (names: readonly string[]) => hex(Capability.toMask(names));

/** Seed 002's capability list (/work/shared/seeds/002…): the same in each of its five sets. */
const SEED_002 = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** The problems `resolveSpec` finds in `spec`, as "path: message". */
function problems(spec: ContainerSpec): string[] {
  try {
    resolveSpec(spec);
    return [];
  } catch (e) {
    assert(e instanceof SpecError, `not a SpecError: ${e}`);
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
}

/** Asserts that `spec` is refused with exactly one problem at `path` whose message matches `re`. */
function refused(spec: unknown, path: string, re: RegExp): void {
  const found = problems(spec as ContainerSpec);
  assertEquals(found.length, 1, `one problem expected, got ${JSON.stringify(found)}`);
  assert(found[0]!.startsWith(`${path}: `), `at ${path}: ${found[0]}`);
  assert(re.test(found[0]!), `${re} in ${found[0]}`);
}

// ---------------------------------------------------------------------------------------------
// the validator (no root needed)

test("the five sets resolve by canonical names in number order; the bounding set is what is kept", () => {
  const r = resolveSpec({
    ...base,
    capabilities: {
      bounding: ["kill", "CAP_CHOWN", "net_bind_service"],
      effective: ["CAP_CHOWN"],
      permitted: ["CAP_NET_BIND_SERVICE", "chown"],
      inheritable: ["CAP_NET_BIND_SERVICE"],
      ambient: ["CAP_NET_BIND_SERVICE"],
    },
  });
  assertEquals(r.capabilities, ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
  assertEquals(r.capabilitySets, {
    bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    effective: ["CAP_CHOWN"],
    permitted: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
    inheritable: ["CAP_NET_BIND_SERVICE"],
    ambient: ["CAP_NET_BIND_SERVICE"],
  });
  // a set left out is empty, as in OCI's spec
  const only = resolveSpec({ ...base, capabilities: { bounding: ["CAP_KILL"] } });
  assertEquals(only.capabilitySets, {
    bounding: ["CAP_KILL"],
    effective: [],
    permitted: [],
    inheritable: [],
    ambient: [],
  });
  // the sets are the sets, whatever the user
  assertEquals(capabilitySetsFor({ ...only, user: { uid: 1000, gid: 1000, groups: [] } }), only.capabilitySets!);
});

test("a bad set is refused naming its field: unknown names, wrong types, unknown keys, ALL", () => {
  refused(
    { ...base, capabilities: { ambient: ["CAP_FLY"] } },
    "capabilities.ambient[0]",
    /unknown capability "CAP_FLY"/,
  );
  refused({ ...base, capabilities: { bounding: "CAP_CHOWN" } }, "capabilities.bounding", /must be an array/);
  refused({ ...base, capabilities: { bounding: [21] } }, "capabilities.bounding[0]", /capability name/);
  refused({ ...base, capabilities: { bounding: [], ambiant: [] } }, "capabilities.ambiant", /did you mean "ambient"/);
  refused({ ...base, capabilities: { bounding: ["ALL"] } }, "capabilities.bounding[0]", /ALL is for \{ add, drop \}/);
  refused({ ...base, capabilities: { add: ["CAP_KILL"], bounding: ["CAP_KILL"] } }, "capabilities", /not both/);
  refused(
    { ...base, capabilities: "CAP_KILL" },
    "capabilities",
    /a list of capabilities, \{ add, drop \}, or the sets/,
  );
});

test("the kernel's rules: effective ⊆ permitted, inheritable ⊆ bounding, ambient ⊆ permitted ∩ inheritable", () => {
  const all = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
  const sets = { bounding: all, effective: all, permitted: all, inheritable: all, ambient: all };
  assertEquals(problems({ ...base, capabilities: sets }), []);
  refused(
    { ...base, capabilities: { ...sets, permitted: ["CAP_CHOWN", "CAP_KILL"], ambient: [] } },
    "capabilities.effective",
    /CAP_NET_BIND_SERVICE not in permitted/,
  );
  refused(
    { ...base, capabilities: { ...sets, bounding: ["CAP_CHOWN", "CAP_KILL"], effective: [] } },
    "capabilities.inheritable",
    /CAP_NET_BIND_SERVICE not in bounding/,
  );
  refused(
    { ...base, capabilities: { ...sets, inheritable: ["CAP_CHOWN"] } },
    "capabilities.ambient",
    /CAP_KILL, CAP_NET_BIND_SERVICE not in both permitted and inheritable/,
  );
  refused(
    { ...base, capabilities: { ...sets, effective: [], permitted: ["CAP_KILL"] } },
    "capabilities.ambient",
    /CAP_CHOWN, CAP_NET_BIND_SERVICE not in both permitted and inheritable/,
  );
  // seccomp without no_new_privs needs no CAP_SYS_ADMIN of the command's: the filter is loaded before
  // the capabilities go (setup's seccomp-privileged step, as runc)
  const admin = ["CAP_SYS_ADMIN"];
  assertEquals(problems({ ...base, noNewPrivs: false, capabilities: { bounding: admin, permitted: admin } }), []);
  assertEquals(problems({ ...base, noNewPrivs: false, capabilities: ["CAP_KILL"] }), []);
});

test("a non-root user gets the capabilities its spec names in ambient; root and the default set get none", () => {
  const sets = (spec: ContainerSpec) => capabilitySetsFor(resolveSpec(spec));
  const nb = ["CAP_NET_BIND_SERVICE"];
  // the list: every capability named, for uid 1000
  assertEquals(sets({ ...base, user: { uid: 1000 }, capabilities: nb }), {
    bounding: nb,
    effective: nb,
    permitted: nb,
    inheritable: nb,
    ambient: nb,
  });
  // root: today's behaviour (no ambient)
  assertEquals(sets({ ...base, capabilities: nb }).ambient, []);
  // add/drop: what add names (podman), never the default set
  assertEquals(sets({ ...base, user: { uid: 1000 }, capabilities: { add: ["net_bind_service"] } }), {
    bounding: [...DEFAULT_CAPABILITIES],
    effective: [...DEFAULT_CAPABILITIES],
    permitted: [...DEFAULT_CAPABILITIES],
    inheritable: [...DEFAULT_CAPABILITIES],
    ambient: nb,
  });
  assertEquals(sets({ ...base, user: { uid: 1000 }, capabilities: { drop: ["ALL"], add: ["kill"] } }).ambient, [
    "CAP_KILL",
  ]);
  assertEquals(sets({ ...base, user: { uid: 1000 } }).ambient, []);
  assertEquals(sets({ ...base, user: { uid: 1000 }, capabilities: { drop: ["CAP_KILL"] } }).ambient, []);
});

test("hako plan shows the five sets", () => {
  const text = planText(planContainer({
    ...base,
    user: { uid: 1000 },
    capabilities: {
      bounding: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
      effective: ["CAP_CHOWN"],
      permitted: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
      inheritable: ["CAP_NET_BIND_SERVICE"],
      ambient: ["CAP_NET_BIND_SERVICE"],
    },
  }));
  for (
    const line of [
      "bounding set: CAP_CHOWN, CAP_NET_BIND_SERVICE",
      "capset: effective: CAP_CHOWN",
      "capset: permitted: CAP_CHOWN, CAP_NET_BIND_SERVICE",
      "capset: inheritable: CAP_NET_BIND_SERVICE",
      "ambient: prctl(PR_CAP_AMBIENT_RAISE) CAP_NET_BIND_SERVICE",
    ]
  ) assert(text.includes(line), `${line} in:\n${text}`);
});

test("seed 002's libcontainer config translates to its five sets exactly", () => {
  const r = resolveSpec(libcontainer({ HAKO_ROOTFS: "/var/lib/hako/none" }, []));
  const m = mask(SEED_002);
  for (const k of ["bounding", "effective", "permitted", "inheritable", "ambient"] as const) {
    assertEquals(mask(r.capabilitySets![k]), m, k);
  }
});

// ---------------------------------------------------------------------------------------------
// real containers, both paths

/** A busybox rootfs and a directory bound at /out (writable by anyone), in a fresh temp dir. */
function box() {
  const dir = tempDir();
  chmodSync(dir.path, 0o755);
  const out = join(dir.path, "out");
  mkdirSync(out);
  chmodSync(out, 0o777);
  let n = 0;
  return {
    rootfs: join(dir.path, "rootfs"),
    out,
    spec: (s: Partial<ContainerSpec>): ContainerSpec => ({
      name: `hako-capsets-${process.pid}-${++n}`,
      rootfs: { builder: "busybox", path: join(dir.path, "rootfs") },
      command: ["true"],
      mounts: [{ type: "bind", source: out, target: "/out" }],
      stdio: "null",
      ...s,
    }),
    [Symbol.dispose]: () => dir[Symbol.dispose](),
  };
}

/** With the native child (true) or the forked one (false), as HAKO_NATIVE_SPAWN says. */
async function withPath<T>(native: boolean, fn: () => Promise<T>): Promise<T> {
  const before = process.env.HAKO_NATIVE_SPAWN;
  process.env.HAKO_NATIVE_SPAWN = native ? "1" : "0";
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
    else process.env.HAKO_NATIVE_SPAWN = before;
  }
}

/** Runs `spec` to its end on one path (checking which ran); @returns its exit code. */
async function runOn(native: boolean, spec: ContainerSpec): Promise<number> {
  return await withPath(native, async () => {
    const count = nativeChildren.count;
    const c = await Container.create(spec);
    try {
      if (!noRunner) assertEquals(nativeChildren.count - count, native ? 1 : 0, "containers given a native child");
      await c.start();
      return (await c.wait()).shellCode;
    } finally {
      c.delete();
    }
  });
}

const PATHS = [true, false] as const;
const pathName = (native: boolean) => (native ? "native" : "forked");

test("five sets given separately are what the command reads in /proc/self/status, on both paths", async () => {
  using b = box();
  const sets = {
    bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"],
    effective: ["CAP_CHOWN"],
    permitted: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    inheritable: ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    ambient: ["CAP_NET_BIND_SERVICE"],
  };
  for (const native of PATHS) {
    for (const uid of [0, 1000]) {
      const file = `status-${pathName(native)}-${uid}`;
      const code = await runOn(
        native,
        b.spec({ user: { uid }, capabilities: sets, command: ["sh", "-c", `cat /proc/self/status > /out/${file}`] }),
      );
      assertEquals(code, 0, `${pathName(native)} uid ${uid}`);
      const status = readFileSync(join(b.out, file), "utf8");
      const at = `${pathName(native)} uid ${uid}`;
      assertEquals(hex(capField(status, "CapBnd")), mask(sets.bounding), `CapBnd ${at}`);
      assertEquals(hex(capField(status, "CapInh")), mask(sets.inheritable), `CapInh ${at}`);
      assertEquals(hex(capField(status, "CapAmb")), mask(sets.ambient), `CapAmb ${at}`);
      // What execve makes of the effective and permitted sets is the kernel's: root's are the
      // bounding and inheritable sets together, no more than the permitted set before the exec
      // under no_new_privs (hako's default); another uid's (no file capabilities) are its ambient set.
      const after = uid === 0
        ? [...sets.bounding, ...sets.inheritable].filter((n) => sets.permitted.includes(n))
        : sets.ambient;
      assertEquals(hex(capField(status, "CapPrm")), mask(after), `CapPrm ${at}`);
      assertEquals(hex(capField(status, "CapEff")), mask(after), `CapEff ${at}`);
    }
  }
}, { skip });

test("uid 1000 with CAP_NET_BIND_SERVICE binds port 80 (httpd), and without it cannot, on both paths", async () => {
  using b = box();
  // httpd binds, then goes to the background (exit 0) or says bind failed (exit 1); wget then asks it.
  const script = "echo served > /tmp/index.html; httpd -p 80 -h /tmp || exit 3; " +
    "wget -q -O /out/got-$1 http://127.0.0.1:80/index.html || exit 4; grep Cap /proc/self/status > /out/caps-$1";
  for (const native of PATHS) {
    const tag = pathName(native);
    const withCap = await runOn(
      native,
      b.spec({
        user: { uid: 1000, gid: 1000 },
        capabilities: ["CAP_NET_BIND_SERVICE"],
        command: ["sh", "-c", script, "sh", tag],
      }),
    );
    assertEquals(withCap, 0, `${tag}: httpd -p 80 as uid 1000 with CAP_NET_BIND_SERVICE`);
    assertEquals(readFileSync(join(b.out, `got-${tag}`), "utf8"), "served\n");
    const caps = readFileSync(join(b.out, `caps-${tag}`), "utf8");
    assertEquals(hex(capField(caps, "CapEff")), mask(["CAP_NET_BIND_SERVICE"]), `${tag} CapEff`);
    assertEquals(hex(capField(caps, "CapAmb")), mask(["CAP_NET_BIND_SERVICE"]), `${tag} CapAmb`);
    // the default set as uid 1000: no capability survives the exec, as docker's
    const without = await runOn(
      native,
      b.spec({ user: { uid: 1000, gid: 1000 }, command: ["sh", "-c", script, "sh", `${tag}-none`] }),
    );
    assertEquals(without, 3, `${tag}: httpd -p 80 as uid 1000 without the capability`);
  }
}, { skip });

test("hako exec --user 1000 gets the container's named capabilities in ambient, on both paths", async () => {
  using b = box();
  for (const native of PATHS) {
    const tag = pathName(native);
    await withPath(native, async () => {
      const c = await Container.create(
        b.spec({ capabilities: ["CAP_NET_BIND_SERVICE", "CAP_KILL"], command: ["sleep", "30"] }),
      );
      try {
        await c.start();
        await waitUntil(c.pid, () => procFile(c.pid, "comm").trim() === "sleep", "the exec of sleep");
        // root's command: no ambient set
        assertEquals(statusField(procFile(c.pid, "status"), "CapAmb"), "0000000000000000");
        const read = async (user: { uid: number } | undefined, name: string) => {
          const fd = openSync(join(b.out, name), "w");
          try {
            const st = await execIn(c.pid, {
              argv: ["cat", "/proc/self/status"],
              spec: c.spec,
              stdout: fd,
              ...(user ? { user } : {}),
            });
            assertEquals(st.code, 0, `${tag} exec ${name}`);
          } finally {
            closeSync(fd);
          }
          return readFileSync(join(b.out, name), "utf8");
        };
        const kept = mask(["CAP_NET_BIND_SERVICE", "CAP_KILL"]);
        const asUser = await read({ uid: 1000 }, `exec-${tag}-1000`);
        assertEquals(statusField(asUser, "Uid"), "1000\t1000\t1000\t1000");
        assertEquals(hex(capField(asUser, "CapAmb")), kept, `${tag} exec --user 1000 CapAmb`);
        assertEquals(hex(capField(asUser, "CapEff")), kept, `${tag} exec --user 1000 CapEff`);
        const asRoot = await read(undefined, `exec-${tag}-root`);
        assertEquals(hex(capField(asRoot, "CapAmb")), "0x0", `${tag} exec as root CapAmb`);
        assertEquals(hex(capField(asRoot, "CapEff")), kept, `${tag} exec as root CapEff`);
      } finally {
        c.delete();
      }
    });
  }
}, { skip });

test(
  "seed 002 in a container: CapBnd, CapEff, CapPrm, CapInh and CapAmb are the seed's sets, on both paths",
  async () => {
    using b = box();
    for (const native of PATHS) {
      const tag = pathName(native);
      const spec = libcontainer({ HAKO_NAME: `hako-capsets-${process.pid}-seed-${tag}`, HAKO_ROOTFS: b.rootfs }, [
        "/bin/sh",
        "-c",
        `cat /proc/self/status > /out/seed-${tag}`,
      ]);
      const code = await runOn(native, {
        ...spec,
        mounts: [{ type: "bind", source: b.out, target: "/out" }],
        stdio: "null",
      });
      assertEquals(code, 0, tag);
      const status = readFileSync(join(b.out, `seed-${tag}`), "utf8");
      assertEquals(hex(capField(status, "CapBnd")), mask(SEED_002), `${tag} CapBnd`);
      assertEquals(hex(capField(status, "CapEff")), mask(SEED_002), `${tag} CapEff`);
      assertEquals(hex(capField(status, "CapPrm")), mask(SEED_002), `${tag} CapPrm`);
      assertEquals(hex(capField(status, "CapInh")), mask(SEED_002), `${tag} CapInh`);
      assertEquals(hex(capField(status, "CapAmb")), mask(SEED_002), `${tag} CapAmb`);
    }
  },
  { skip },
);
