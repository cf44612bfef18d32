/** Id maps checked against the host's users, groups and /etc/subuid, /etc/subgid (src/container/host_ids.ts). */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir, test } from "./_harness.ts";
import {
  type IdMapHostCheck,
  idMapHostProblems,
  parseAccounts,
  parseSubIdFile,
  readHostIdFiles,
} from "../src/container/host_ids.ts";
import { Container } from "../src/container/container.ts";
import { MAX_ID } from "../src/user.ts";
import type { ContainerSpec } from "../src/container/spec.ts";
import { resolveSpec, SpecError } from "../src/container/validate.ts";
import web from "../examples/fleet/web.ts";

const PASSWD = [
  "root:x:0:0:root:/root:/bin/bash",
  "# a comment",
  "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin",
  "alice:x:1000:1000::/home/alice:/bin/bash",
  "bob:x:1001:1001::/home/bob:/bin/bash",
  "carol:x:1002:1002::/home/carol:/bin/bash",
  "dave:x:1050:1050::/home/dave:/bin/bash",
  "+nis-entry::::::",
  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
].join("\n");
const GROUP = "root:x:0:\nstaff:x:50:\nalice:x:1000:\nnogroup:x:65534:\n";
const SUBUID = "alice:100000:65536\nbob:165536:65536\n# nothing\nroot:231072:65536\n";

const asRoot = { user: "root", uid: 0, id: 0 } as const;
const check = (c: Partial<IdMapHostCheck> & Pick<IdMapHostCheck, "map">) =>
  idMapHostProblems({ kind: "uid", accounts: PASSWD, subIds: undefined, caller: asRoot, rootless: false, ...c });

test("parseAccounts() and parseSubIdFile() read name:x:id and owner:start:count lines, skipping the rest", () => {
  assert.deepEqual(parseAccounts(PASSWD).map((a) => a.id), [0, 33, 1000, 1001, 1002, 1050, 65534]);
  assert.deepEqual(parseAccounts(GROUP).find((g) => g.name === "staff"), { name: "staff", id: 50 });
  assert.deepEqual(parseSubIdFile(SUBUID + "broken:x:1\nzero:5:0\n"), [
    { owner: "alice", start: 100000, count: 65536 },
    { owner: "bob", start: 165536, count: 65536 },
    { owner: "root", start: 231072, count: 65536 },
  ]);
});

test("a uid range holding a host user's uid is an error naming the user (the fleet formula at PORT=10)", () => {
  assert.deepEqual(check({ map: [{ inside: 0, outside: 200000, size: 65536 }] }), []);
  const [p, ...rest] = check({
    map: [{ inside: 0, outside: 100000, size: 10 }, { inside: 10, outside: 1000, size: 1 }],
  });
  assert.deepEqual(rest, []);
  assert.equal(p?.severity, "error");
  assert.equal(p?.path, "idMap.uid[1]");
  assert.match(p!.message, /^outside range 1000\.\.1000 contains host user alice \(uid 1000\): that user would own/);
  assert.match(p!.message, /idMap\.allowHostIds: true/);
  const [many] = check({ map: [{ inside: 0, outside: 1000, size: 100 }] });
  assert.match(
    many!.message,
    /^outside range 1000\.\.1099 contains host users alice \(uid 1000\), bob \(uid 1001\), carol \(uid 1002\) and 1 more:/,
  );
});

test("host root in a root caller's map is an error; a rootless caller may map its own id but no one else's", () => {
  assert.match(check({ map: [{ inside: 0, outside: 0, size: 1 }] })[0]!.message, /host user root \(uid 0\)/);
  const alice = { user: "alice", uid: 1000, id: 1000 };
  assert.deepEqual(check({ map: [{ inside: 0, outside: 1000, size: 1 }], caller: alice, rootless: true }), []);
  const [p] = check({ map: [{ inside: 0, outside: 1000, size: 2 }], caller: alice, rootless: true });
  assert.match(p!.message, /contains host user bob \(uid 1001\)/);
  assert.doesNotMatch(p!.message, /alice/);
});

test("a gid range holding a host group's gid is an error naming the group", () => {
  const [p] = idMapHostProblems({
    kind: "gid",
    map: [{ inside: 0, outside: 0, size: 1 }, { inside: 1, outside: 40, size: 20 }],
    accounts: GROUP,
    subIds: undefined,
    caller: asRoot,
    rootless: false,
  }).filter((x) => x.path === "idMap.gid[1]");
  assert.equal(p?.severity, "error");
  assert.match(p!.message, /^outside range 40\.\.59 contains host group staff \(gid 50\): that group's members/);
});

test("allowHostIds lets host accounts in; ranges other users have in /etc/subuid are warnings naming them", () => {
  assert.deepEqual(check({ map: [{ inside: 0, outside: 1000, size: 100 }], allowHostIds: true }), []);
  const found = check({ map: [{ inside: 0, outside: 160000, size: 10000 }], subIds: SUBUID });
  assert.deepEqual(found.map((p) => [p.severity, p.path]), [["warning", "idMap.uid[0]"], ["warning", "idMap.uid[0]"]]);
  assert.match(
    found[0]!.message,
    /^outside range 160000\.\.169999 overlaps 100000\.\.165535, which \/etc\/subuid delegates to alice: alice's rootless containers/,
  );
  assert.match(found[1]!.message, /delegates to bob/);
  // the caller's own delegation (root's here), and a missing file, are fine
  assert.deepEqual(check({ map: [{ inside: 0, outside: 231072, size: 65536 }], subIds: SUBUID }), []);
  assert.deepEqual(check({ map: [{ inside: 0, outside: 100000, size: 65536 }], subIds: undefined }), []);
  const bob = { user: "bob", uid: 1001, id: 1001 };
  assert.deepEqual(check({ map: [{ inside: 0, outside: 165536, size: 10 }], subIds: SUBUID, caller: bob }), []);
});

test("a mapped range may reach 4294967294 but not (uid_t)-1", () => {
  assert.deepEqual(check({ map: [{ inside: 0, outside: MAX_ID - 99, size: 100 }] }), []);
  const [p] = check({ map: [{ inside: 0, outside: MAX_ID - 98, size: 100 }] });
  assert.equal(p?.path, "idMap.uid[0]");
  assert.match(p!.message, /^outside range 4294967196\.\.4294967295 goes past 4294967294/);
  assert.match(check({ map: [{ inside: MAX_ID, outside: 300000, size: 2 }] })[0]!.message, /^inside range/);
});

test("readHostIdFiles() reads etc/ under a root, undefined for a missing file", () => {
  using dir = tempDir();
  mkdirSync(join(dir.path, "etc"));
  writeFileSync(join(dir.path, "etc/passwd"), PASSWD);
  writeFileSync(join(dir.path, "etc/subuid"), SUBUID);
  const f = readHostIdFiles(dir.path);
  assert.equal(f.passwd, PASSWD);
  assert.equal(f.subuid, SUBUID);
  assert.equal(f.group, undefined);
  assert.equal(f.subgid, undefined);
});

/** A host user whose uid the fleet formula (PORT * 100, 100 ids) can reach, if this host has one. */
const reachable = parseAccounts(existsSync("/etc/passwd") ? readFileSync("/etc/passwd", "utf8") : "")
  .find((a) => a.id >= 100 && a.id / 100 <= 65535);

test(
  "the fleet's spec at a PORT whose range holds a host user is refused naming the user, before anything is made",
  async () => {
    using dir = tempDir();
    const env = { HAKO_IMAGE: join(dir.path, "none.tar.gz"), HAKO_VAR_DIR: dir.path };
    // The fleet's own ports are fine (unless this host has accounts up there).
    const fine = web({ ...env, PORT: "10001" });
    resolveSpec(fine);
    const port = String(Math.floor(reachable!.id / 100));
    const spec = web({ ...env, PORT: port });
    let err: unknown;
    try {
      (await Container.create(spec)).delete();
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof SpecError, `expected a SpecError, got ${err}`);
    const uid = err.problems.find((p) => p.path === "idMap.uid[0]");
    assert.ok(uid, err.message);
    assert.match(
      uid.message,
      new RegExp(`^outside range ${Number(port) * 100}\\.\\.${Number(port) * 100 + 99} contains host user`),
    );
    assert.deepEqual(readdirSync(dir.path), [], "nothing was extracted");
    // An explicit opt-in lets it through validation.
    const optIn: ContainerSpec = { ...spec, idMap: { ...spec.idMap, allowHostIds: true } };
    resolveSpec(optIn);
  },
  { skip: !reachable && "no host user with a uid in 100..6553599 (the fleet formula's reach)" },
);

test("a map over host root is refused in a spec, with allowHostIds it is not", () => {
  const spec: ContainerSpec = {
    name: "hako-ids-root",
    rootfs: "/nonexistent-hako-rootfs",
    command: "true",
    namespaces: ["user", "mount", "pid"],
    idMap: { uid: { inside: 0, outside: 0, size: 1 }, gid: { inside: 0, outside: 300000, size: 1 } },
  };
  assert.throws(() => resolveSpec(spec), (e: unknown) => {
    assert.ok(e instanceof SpecError);
    assert.match(e.message, /^idMap\.uid\[0\]: outside range 0\.\.0 contains host user root \(uid 0\)/);
    return true;
  });
  resolveSpec({ ...spec, idMap: { ...spec.idMap, allowHostIds: true } });
  assert.throws(
    () => resolveSpec({ ...spec, idMap: { ...spec.idMap, allowHostIds: 1 as unknown as boolean } }),
    /idMap\.allowHostIds: must be a boolean/,
  );
});
