/**
 * The hostile-tarball matrix shared by tests/tarball_attack_test.ts and the probe it runs in a
 * child process (tests/_tarball_probe.ts): every ordering of a symlink out of the rootfs with
 * what may be put under it or replace it, '..' and absolute names. A victim tree next to the
 * rootfs and a few sentinel paths (in /dev, / and /tmp) are compared before and after each
 * extraction. Also {@link probe}, which runs that child under either runtime.
 * @module
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { permutations, tarBytes, type TarEntry } from "./_tar.ts";
import { SetupError, SyscallError } from "../src/errors.ts";
import { extractRootfs } from "../src/container/tarball.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** argv that runs tests/_tarball_probe.ts (a child process) under `which`. */
export function probe(which: "deno" | "bun", ...args: string[]): [string, string[]] {
  const script = join(ROOT, "tests", "_tarball_probe.ts");
  return which === "deno"
    ? [join(ROOT, "node_modules/.bin/deno"), ["run", "-A", "--no-prompt", script, ...args]]
    : [join(ROOT, "node_modules/.bin/bun"), [script, ...args]];
}

/** A name no host path has: the payload's leaf name, also looked for in /dev, / and /tmp. */
export const LEAF = `hako-tarattack-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
export const SENTINELS = [`/dev/${LEAF}`, `/${LEAF}`, `/tmp/${LEAF}`];

export function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** A victim tree: a file named LEAF, a directory with a file, a file to point symlinks at. */
function makeVictim(victim: string): void {
  rmSync(victim, { recursive: true, force: true });
  mkdirSync(join(victim, "sub"), { recursive: true });
  writeFileSync(join(victim, LEAF), "host file\n");
  writeFileSync(join(victim, "sub", "f"), "host sub file\n");
  writeFileSync(join(victim, "hostfile"), "host file 2\n");
  for (const p of [LEAF, "sub/f", "hostfile"]) {
    chmodSync(join(victim, p), 0o640);
    chownSync(join(victim, p), 1234, 1235);
  }
  chmodSync(join(victim, "sub"), 0o750);
  chownSync(join(victim, "sub"), 1234, 1235);
}

/**
 * Every path under `dir` with its type, mode, owner, size, link count, inode, device number,
 * mtime and content hash (or link target); `skip` leaves top-level names out.
 */
function snapshot(dir: string, skip: (name: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const p = rel ? join(dir, rel) : dir;
    const st = lstatSync(p, { bigint: true });
    let what = "";
    if (st.isFile()) what = createHash("sha256").update(readFileSync(p)).digest("hex");
    else if (st.isSymbolicLink()) what = `-> ${readlinkSync(p)}`;
    // The top's size, links and mtime change as the rootfs and its temp sibling come and go.
    out.push(
      rel
        ? `${rel} mode=${st.mode.toString(8)} ${st.uid}:${st.gid} size=${st.size} nlink=${st.nlink} ino=${st.ino} ` +
          `rdev=${st.rdev} mtime=${st.mtimeNs} ${what}`
        : `. mode=${st.mode.toString(8)} ${st.uid}:${st.gid} ino=${st.ino}`,
    );
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) {
        if (!rel && skip(name)) continue;
        walk(rel ? `${rel}/${name}` : name);
      }
    }
  };
  walk("");
  return out;
}

interface Case {
  readonly name: string;
  readonly entries: readonly TarEntry[];
}

/** Symlink targets for `d` that would lead out of the rootfs if followed. */
function escapes(t: string, victim: string): Record<string, string> {
  return {
    "absolute host dir": victim,
    "relative sibling": "../victim",
    "../../..": "../../..",
    "deep ../": `../../../../../../../../../..${victim}`,
    "/proc/1/root": `/proc/1/root${victim}`,
    "/proc/self/root": `/proc/self/root${victim}`,
    "/dev": "/dev",
    "..": "..",
    "parent by absolute path": t,
  };
}

/** What may be put at `d/LEAF` (or, for the hard link, reached through `d`). */
function payloads(): Record<string, TarEntry> {
  return {
    "regular file": { path: `d/${LEAF}`, type: "0", data: "pwned\n", mode: 0o4777 },
    directory: { path: `d/${LEAF}/`, type: "5", mode: 0o777, uid: 4321 },
    symlink: { path: `d/${LEAF}`, type: "2", linkpath: "/etc/shadow" },
    fifo: { path: `d/${LEAF}`, type: "6", mode: 0o666 },
    "char device": { path: `d/${LEAF}`, type: "3", mode: 0o666, major: 1, minor: 3 },
    "block device": { path: `d/${LEAF}`, type: "4", mode: 0o666, major: 7, minor: 200 },
    "hard link at d/x": { path: `d/${LEAF}`, type: "1", linkpath: "f" },
    "hard link through d": { path: "h", type: "1", linkpath: `d/${LEAF}` },
    "hard link through d to a host dir's file": { path: "h2", type: "1", linkpath: "d/hostfile" },
  };
}

/** Entries that replace `d` itself. */
function replacers(): Record<string, TarEntry> {
  return {
    "file d": { path: "d", type: "0", data: "pwned\n", mode: 0o777, uid: 4321 },
    "dir d": { path: "d/", type: "5", mode: 0o777, uid: 4321 },
    "fifo d": { path: "d", type: "6", mode: 0o666 },
    "char device d": { path: "d", type: "3", mode: 0o666, major: 1, minor: 3 },
    "symlink d": { path: "d", type: "2", linkpath: "elsewhere" },
    "hard link d": { path: "d", type: "1", linkpath: "f" },
  };
}

function allCases(t: string, victim: string): Case[] {
  const cases: Case[] = [];
  const prefix: TarEntry[] = [{ path: "f", type: "0", data: "inside\n" }];
  const add = (name: string, group: TarEntry[]) => {
    for (const order of permutations(group)) {
      cases.push({
        name: `${name} [${order.map((e) => `${e.type}:${e.path}`).join(", ")}]`,
        entries: [...prefix, ...order],
      });
    }
  };
  for (const [tn, target] of Object.entries(escapes(t, victim))) {
    const link: TarEntry = { path: "d", type: "2", linkpath: target };
    const dir: TarEntry = { path: "d/", type: "5", mode: 0o700 };
    for (const [pn, payload] of Object.entries(payloads())) {
      add(`d -> ${tn}, ${pn}`, [link, payload]);
      add(`d -> ${tn}, ${pn}, dir d`, [link, payload, dir]);
    }
    for (const [rn, r] of Object.entries(replacers())) {
      add(`d -> ${tn} replaced by ${rn}`, [link, r]);
      add(`d -> ${tn} replaced by ${rn}, with a file in d`, [link, r, payloads()["regular file"]!]);
    }
  }
  // A symlink to a host file, replaced or written to.
  for (const [rn, r] of Object.entries(replacers())) {
    add(`d -> host file, ${rn}`, [{ path: "d", type: "2", linkpath: join(victim, "hostfile") }, r]);
  }
  // A non-empty directory replaced by a symlink out, then written through.
  add("dir d with a file, replaced by a symlink out, then a fifo in d", [
    { path: "d/", type: "5" },
    { path: "d/inner", type: "0", data: "x" },
    { path: "d", type: "2", linkpath: victim },
    { path: `d/${LEAF}`, type: "6" },
  ]);
  // '..' components and absolute names, alone and around a symlink out.
  const link: TarEntry = { path: "d", type: "2", linkpath: victim };
  for (
    const e of [
      { path: `../${LEAF}`, type: "0", data: "pwned" },
      { path: `../victim/${LEAF}`, type: "6" },
      { path: `d/../../${LEAF}`, type: "0", data: "pwned" },
      { path: `./../../../../../../../../../..${victim}/${LEAF}`, type: "3", major: 1, minor: 3 },
      { path: `/tmp/${LEAF}`, type: "0", data: "pwned" },
      { path: `${victim}/${LEAF}`, type: "6" },
      { path: `/dev/${LEAF}`, type: "3", major: 1, minor: 3 },
      { path: "x", type: "1", linkpath: `${victim}/${LEAF}` },
      { path: "x", type: "1", linkpath: `../victim/${LEAF}` },
      { path: "x", type: "1", linkpath: `d/../../victim/${LEAF}` },
    ] satisfies TarEntry[]
  ) {
    add(`name ${e.path}`, [e]);
    add(`name ${e.path} and a symlink out`, [e, link]);
  }
  return cases;
}

/** Runs every case; returns the ones where something outside the rootfs changed. */
export async function runCases(
  t: string,
  owner: boolean,
  every = 1,
): Promise<{ failures: string[]; count: number }> {
  const victim = join(t, "victim");
  const failures: string[] = [];
  const cases = allCases(t, victim).filter((_, i) => i % every === 0);
  const ours = (name: string) => name.startsWith("rootfs-") || name.startsWith(".rootfs-");
  for (const [i, c] of cases.entries()) {
    makeVictim(victim);
    const before = snapshot(t, ours);
    const tarball = join(t, `rootfs-${i}.tar`);
    writeFileSync(tarball, tarBytes(c.entries));
    const dir = join(t, `rootfs-${i}`);
    let err: unknown;
    try {
      await extractRootfs(tarball, dir, owner ? { owner: { uid: 100000, gid: 100000 } } : {});
    } catch (e) {
      err = e;
    }
    const problems: string[] = [];
    if (err !== undefined && !(err instanceof SetupError) && !(err instanceof SyscallError)) {
      problems.push(`threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    }
    const after = snapshot(t, ours);
    const changed = [
      ...after.filter((l) => !before.includes(l)).map((l) => `+ ${l}`),
      ...before.filter((l) => !after.includes(l)).map((l) => `- ${l}`),
    ];
    if (changed.length) problems.push(`outside changed:\n      ${changed.join("\n      ")}`);
    for (const s of SENTINELS) {
      if (exists(s)) {
        problems.push(`${s} appeared`);
        rmSync(s, { recursive: true, force: true });
      }
    }
    const left = readdirSync(t).filter((n) => n.startsWith(`.rootfs-${i}.`));
    if (left.length) problems.push(`temp siblings left: ${left}`);
    for (const n of left) rmSync(join(t, n), { recursive: true, force: true });
    if (err !== undefined && exists(dir)) problems.push("failed, but the rootfs directory exists");
    if (problems.length) failures.push(`${c.name}${owner ? " (owner shifted)" : ""}: ${problems.join("; ")}`);
    rmSync(dir, { recursive: true, force: true });
    rmSync(tarball, { force: true });
  }
  return { failures, count: cases.length };
}
