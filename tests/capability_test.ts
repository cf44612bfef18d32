import { assert, assertEquals, assertThrows, needsRoot, test } from "./_harness.ts";
import { afterExec, capField, killAndReap, procFile, statusField, waitUntil } from "./_proc.ts";
import { Capability, ConfigError, Kernel, Process, SyscallError } from "../mod.ts";

const hex = (n: bigint) => `0x${n.toString(16)}`;

const KEPT = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
const KEPT_MASK = (1n << 0n) | (1n << 5n) | (1n << 10n);

test("Capability names every capability by name and number, in any spelling", () => {
  assertEquals(Capability.NAMES.length, 41);
  assertEquals(Capability.nameOf(0), "CAP_CHOWN");
  assertEquals(Capability.nameOf(40), "CAP_CHECKPOINT_RESTORE");
  assertEquals(Capability.numberOf("CAP_NET_BIND_SERVICE"), 10);
  assertEquals(Capability.numberOf("net_bind_service"), 10);
  assertEquals(Capability.from_name("cap_sys_admin"), Capability.CAP_SYS_ADMIN);
  assertEquals(Capability.CAP_SYS_ADMIN, 21);
  assertEquals(Capability.CAP_CHECKPOINT_RESTORE, 40);
  assertEquals(hex(Capability.toMask(KEPT)), hex(KEPT_MASK));
  assertEquals(Capability.fromMask("0000000000000421"), KEPT);
  assertThrows(() => Capability.numberOf("CAP_NOPE"), ConfigError, /unknown capability "CAP_NOPE"/);
  assertThrows(() => Capability.toMask(["chown", "bogus"]), ConfigError, /capabilities\[1\]/);
  assertThrows(() => Capability.numberOf(99), ConfigError, /integer in 0\.\./);
});

test("an instance with apply: false builds a state and prints it in libcap's text form", () => {
  const c = new Capability({ apply: false, keepCaps: false });
  const caps = [Capability.CAP_SETUID, Capability.CAP_SETGID];
  c.set(Capability.CAP_PERMITTED, caps).setFlag(Capability.CAP_EFFECTIVE, caps, Capability.CAP_SET);
  c.set_flag(Capability.CAP_EFFECTIVE, [Capability.CAP_SETGID], Capability.CAP_CLEAR);
  assertEquals(c.permitted, ["CAP_SETGID", "CAP_SETUID"]);
  assertEquals(c.effective, ["CAP_SETUID"]);
  assert(c.has(Capability.CAP_EFFECTIVE, "setuid") && !c.has(Capability.CAP_EFFECTIVE, "setgid"));
  assertEquals(c.toText(), "cap_setgid=p cap_setuid=ep");
  assertEquals(c.clear().toText(), "=");
  assertThrows(() => c.set(7, caps), ConfigError, /CAP_EFFECTIVE/);
});

test("Capability.get() reads all five sets of the caller and of another process", () => {
  const mine = Capability.get();
  const status = procFile(Process.getpid(), "status");
  assertEquals(mine.bounding, Capability.fromMask(capField(status, "CapBnd")));
  assertEquals(mine.permitted, Capability.fromMask(capField(status, "CapPrm")));
  assertEquals(Capability.get(Process.getpid()).bounding, mine.bounding);
});

test(
  "keep() leaves an exec'd root child exactly the kept caps in CapEff, CapPrm and CapBnd, and none ambient",
  async () => {
    const pid = Process.fork(() => {
      Capability.keep(KEPT);
      Process.exec("sleep", "10");
    });
    try {
      const status = await afterExec(pid, "sleep");
      assertEquals(hex(capField(status, "CapEff")), hex(KEPT_MASK), "CapEff");
      assertEquals(hex(capField(status, "CapPrm")), hex(KEPT_MASK), "CapPrm");
      assertEquals(hex(capField(status, "CapBnd")), hex(KEPT_MASK), "CapBnd");
      assertEquals(hex(capField(status, "CapAmb")), hex(0n), "CapAmb");
      const seen = Capability.get(pid);
      assertEquals(seen.effective, KEPT);
      assertEquals(seen.bounding, KEPT);
    } finally {
      killAndReap(pid);
    }
  },
  { skip: needsRoot },
);

test("keep({ ambient: true }) also raises the kept caps in the ambient and inheritable sets", async () => {
  const pid = Process.fork(() => {
    Capability.keep(KEPT, { ambient: true });
    Process.exec("sleep", "10");
  });
  try {
    const status = await afterExec(pid, "sleep");
    assertEquals(hex(capField(status, "CapAmb")), hex(KEPT_MASK), "CapAmb");
    assertEquals(hex(capField(status, "CapInh")), hex(KEPT_MASK), "CapInh");
    assertEquals(hex(capField(status, "CapEff")), hex(KEPT_MASK), "CapEff");
  } finally {
    killAndReap(pid);
  }
}, { skip: needsRoot });

test("keep() checks everything before changing anything", () => {
  const pid = Process.fork(() => {
    const before = Capability.get().bounding.length;
    try {
      Capability.keep(["CAP_CHOWN", "CAP_NOPE"]);
      Process._exit(2);
    } catch (e) {
      if (!(e instanceof ConfigError) || !/Capability\.keep\[1\]/.test(e.message)) Process._exit(3);
    }
    Capability.drop(["CAP_SYS_TIME"]);
    try {
      Capability.keep(["CAP_CHOWN", "CAP_SYS_TIME"]);
      Process._exit(4);
    } catch (e) {
      if (!(e instanceof SyscallError) || e.code !== "EPERM" || !e.message.includes("CAP_SYS_TIME")) Process._exit(5);
    }
    // Nothing but the explicit drop happened.
    Process._exit(Capability.get().bounding.length === before - 1 ? 0 : 6);
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
}, { skip: needsRoot });

test("drop() removes capabilities from every set and leaves the others", async () => {
  const pid = Process.fork(() => {
    Capability.drop(["CAP_NET_RAW", "sys_admin"]);
    Process.exec("sleep", "10");
  });
  try {
    const status = await afterExec(pid, "sleep");
    for (const key of ["CapEff", "CapPrm", "CapBnd"] as const) {
      const mask = capField(status, key);
      assertEquals(hex((mask >> 13n) & 1n), hex(0n), `${key} CAP_NET_RAW`);
      assertEquals(hex((mask >> 21n) & 1n), hex(0n), `${key} CAP_SYS_ADMIN`);
      assertEquals(hex(mask & 1n), hex(1n), `${key} CAP_CHOWN`);
    }
  } finally {
    killAndReap(pid);
  }
}, { skip: needsRoot });

test("noNewPrivs() sets no_new_privs, readable in the child and shown as NoNewPrivs: 1 after exec", async () => {
  const pid = Process.fork(() => {
    if (Capability.getNoNewPrivs()) Process._exit(2);
    Capability.noNewPrivs();
    if (!Capability.getNoNewPrivs()) Process._exit(3);
    Process.exec("sleep", "10");
  });
  try {
    const status = await afterExec(pid, "sleep");
    assertEquals(statusField(status, "NoNewPrivs"), "1");
  } finally {
    killAndReap(pid);
  }
  assertEquals(statusField(procFile(Process.getpid(), "status"), "NoNewPrivs"), "0", "the parent is untouched");
}, { skip: needsRoot });

test("dropBound() and getBound() work one capability at a time (and hacorb's spellings too)", () => {
  const pid = Process.fork(() => {
    if (!Capability.getBound("CAP_NET_RAW") || !Capability.get_bound(Capability.CAP_MKNOD)) Process._exit(2);
    Capability.dropBound("CAP_NET_RAW");
    Capability.drop_bound(Capability.CAP_MKNOD);
    Process._exit(!Capability.getBound("net_raw") && !Capability.get_bound(27) ? 0 : 3);
  });
  assertEquals(Process.waitpid2(pid).status.code, 0);
}, { skip: needsRoot });

test(
  "hacorb's spelling: new Capability(); set(CAP_PERMITTED); set_flag(CAP_EFFECTIVE, …, CAP_SET) applies at once",
  async () => {
    const caps = [Capability.CAP_SETUID, Capability.CAP_SETGID];
    const pid = Process.fork(() => {
      const c = new Capability();
      c.set(Capability.CAP_PERMITTED, caps);
      c.set_flag(Capability.CAP_EFFECTIVE, caps, Capability.CAP_SET);
      c.setFlag(Capability.CAP_INHERITABLE, [Capability.CAP_SETUID], Capability.CAP_SET);
      c.clear(Capability.CAP_EFFECTIVE, [Capability.CAP_SETGID]);
      const fresh = Capability.get_proc();
      if (fresh.toText() !== "cap_setgid=p cap_setuid=eip" || !Capability.getKeepCaps()) Process._exit(2);
      Kernel.sleep(10);
    });
    try {
      const want = { CapPrm: 0xc0n, CapEff: 0x80n, CapInh: 0x80n };
      await waitUntil(pid, () => {
        const s = procFile(pid, "status");
        return s !== "" && capField(s, "CapPrm") === want.CapPrm && capField(s, "CapEff") === want.CapEff &&
          capField(s, "CapInh") === want.CapInh;
      }, "the child's capabilities to become permitted=SETUID|SETGID effective=inheritable=SETUID");
      assert(capField(procFile(pid, "status"), "CapBnd") > 0xc0n, "the bounding set is not touched");
    } finally {
      killAndReap(pid);
    }
  },
  { skip: needsRoot },
);
