/**
 * A container's id maps checked against the host's accounts, before anything is made.
 *
 * - An `outside` range must not contain the uid of a host user (`/etc/passwd`) or the gid of a host
 *   group (`/etc/group`): that user would own the container's root filesystem and files, and could
 *   signal, trace or kill its processes, init included (seed 001's `PORT * 100` formula at PORT=10
 *   made host uid 1000 the container's root). Refused with an error naming the account, unless the
 *   spec opts in with `idMap.allowHostIds: true`, or the id is the rootless caller's own (mapping
 *   yourself is what rootless mode is).
 * - An `outside` range that overlaps a range `/etc/subuid` (`/etc/subgid`) delegates to another
 *   user is a warning naming that user: that user's rootless containers (podman, newuidmap) may use
 *   the same ids, and then share files and signals with this container. Only a warning: runc and
 *   crun do not look at these files for a root caller, and a root-run hako does not need a range
 *   delegated to it (podman's `--userns=auto` takes its ranges from the `containers` user's entry;
 *   a root caller is not made to have one). The caller's own entries are fine.
 * - Every mapped id must be at most 4294967294: `(uid_t)-1` is no id, and the kernel refuses a
 *   map whose `first + count` overflows 32 bits.
 *
 * {@link idMapHostProblems} is pure (the files' text in, problems out); {@link readHostIdFiles}
 * reads them.
 * @module
 */
import { MAX_ID } from "../user.ts";
import { readFileSync } from "node:fs";
import type { IdMapEntry } from "../namespace.ts";

/** A user of `/etc/passwd` or a group of `/etc/group`. */
export interface HostAccount {
  /** The user or group name. */
  readonly name: string;
  /** Its uid or gid. */
  readonly id: number;
}

/**
 * The accounts of an `/etc/passwd` or `/etc/group` text (`name:x:ID:…`); comments, NIS `+`/`-`
 * lines and malformed lines are skipped.
 */
export function parseAccounts(text: string): HostAccount[] {
  const out: HostAccount[] = [];
  for (const line of text.split("\n")) {
    const [name, , id] = line.trim().split(":");
    if (!name || name.startsWith("#") || name.startsWith("+") || name.startsWith("-")) continue;
    if (id === undefined || !/^\d+$/.test(id)) continue;
    out.push({ name, id: Number(id) });
  }
  return out;
}

/** One line of `/etc/subuid` or `/etc/subgid`: `owner:start:count`. */
export interface SubIdEntry {
  /** The user (name or numeric uid) the range is delegated to. */
  readonly owner: string;
  /** The first id. */
  readonly start: number;
  /** How many ids. */
  readonly count: number;
}

/** Every range of an `/etc/subuid`-style text. */
export function parseSubIdFile(text: string): SubIdEntry[] {
  const out: SubIdEntry[] = [];
  for (const line of text.split("\n")) {
    const [owner, start, count] = line.trim().split(":");
    if (!owner || owner.startsWith("#") || !/^\d+$/.test(start ?? "") || !/^\d+$/.test(count ?? "")) continue;
    if (Number(count) > 0) out.push({ owner, start: Number(start), count: Number(count) });
  }
  return out;
}

/** What {@link idMapHostProblems} checks. */
export interface IdMapHostCheck {
  /** Which map. */
  readonly kind: "uid" | "gid";
  /** The map. */
  readonly map: readonly IdMapEntry[];
  /** The text of `/etc/passwd` (uid) or `/etc/group` (gid); undefined when there is none. */
  readonly accounts: string | undefined;
  /** The text of `/etc/subuid` (uid) or `/etc/subgid` (gid); undefined when the file does not exist. */
  readonly subIds: string | undefined;
  /** Who runs hako: the user's name (when known) and uid, and its own uid or gid for this map. */
  readonly caller: { readonly user: string | undefined; readonly uid: number; readonly id: number };
  /** True for a non-root caller: its own id may be mapped. */
  readonly rootless: boolean;
  /** `idMap.allowHostIds`: host accounts in the ranges are allowed. */
  readonly allowHostIds?: boolean;
  /** The field path of the map (default `idMap.<kind>`). */
  readonly path?: string;
}

/** One problem with an id map: an error refuses the spec, a warning is reported and lets it through. */
export interface IdMapHostProblem {
  /** `error` or `warning`. */
  readonly severity: "error" | "warning";
  /** The entry's field path, e.g. `idMap.uid[0]`. */
  readonly path: string;
  /** What is wrong and what to do. */
  readonly message: string;
}

const range = (first: number, size: number) => `${first}..${first + size - 1}`;

/**
 * The problems of an id map against the host's accounts and subordinate ranges (see the module
 * doc). Entries whose numbers are not integers are left to `assertValidIdMap`.
 * @param check The map, the files' text, the caller.
 * @returns Every problem, errors and warnings, in entry order.
 *
 * @example A map over uid 1000
 * ```ts
 * import { idMapHostProblems } from "./host_ids.ts";
 * const [p] = idMapHostProblems({
 *   kind: "uid",
 *   map: [{ inside: 0, outside: 1000, size: 100 }],
 *   accounts: "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
 *   subIds: undefined,
 *   caller: { user: "root", uid: 0, id: 0 },
 *   rootless: false,
 * });
 * p?.message; // "outside range 1000..1099 contains host user alice (uid 1000): …"
 * ```
 */
export function idMapHostProblems(check: IdMapHostCheck): IdMapHostProblem[] {
  const { kind, caller } = check;
  const base = check.path ?? `idMap.${kind}`;
  const what = kind === "uid" ? "user" : "group";
  const accounts = check.accounts === undefined ? [] : parseAccounts(check.accounts);
  const subIds = check.subIds === undefined ? [] : parseSubIdFile(check.subIds);
  const file = kind === "uid" ? "/etc/subuid" : "/etc/subgid";
  const out: IdMapHostProblem[] = [];
  check.map.forEach((e, i) => {
    const path = `${base}[${i}]`;
    if (![e.inside, e.outside, e.size].every(Number.isInteger) || e.size < 1) return;
    for (const k of ["inside", "outside"] as const) {
      if (e[k] + e.size - 1 > MAX_ID) {
        out.push({
          severity: "error",
          path,
          message: `${k} range ${range(e[k], e.size)} goes past ${MAX_ID}, the highest id (${
            MAX_ID + 1
          } is (${kind}_t)-1, no id)`,
        });
      }
    }
    const last = e.outside + e.size - 1;
    if (!check.allowHostIds) {
      const inRange = accounts.filter((a) =>
        a.id >= e.outside && a.id <= last && !(check.rootless && a.id === caller.id)
      );
      // /etc/group and /etc/passwd may list an id twice (aliases): name each id once.
      const named = [...new Map(inRange.map((a) => [a.id, a])).values()].sort((a, b) => a.id - b.id);
      if (named.length) {
        const shown = named.slice(0, 3).map((a) => `${a.name} (${kind} ${a.id})`).join(", ");
        const more = named.length > 3 ? ` and ${named.length - 3} more` : "";
        const why = kind === "uid"
          ? "that user would own the container's files and could signal its processes"
          : "that group's members would get the container's group access";
        out.push({
          severity: "error",
          path,
          message: `outside range ${range(e.outside, e.size)} contains host ${what}${named.length > 1 ? "s" : ""} ` +
            `${shown}${more}: ${why}; map a range no host account uses (e.g. from 100000 up, like ` +
            `/etc/subuid's), or set idMap.allowHostIds: true if sharing ids with the host is meant`,
        });
      }
    }
    for (const s of subIds) {
      if (s.owner === caller.user || s.owner === String(caller.uid)) continue;
      if (s.start > last || s.start + s.count - 1 < e.outside) continue;
      out.push({
        severity: "warning",
        path,
        message: `outside range ${range(e.outside, e.size)} overlaps ${range(s.start, s.count)}, which ${file} ` +
          `delegates to ${s.owner}: ${s.owner}'s rootless containers may use the same ids`,
      });
    }
  });
  return out;
}

/** The host's account files, as text; undefined for a file that does not exist or cannot be read. */
export interface HostIdFiles {
  readonly passwd: string | undefined;
  readonly group: string | undefined;
  readonly subuid: string | undefined;
  readonly subgid: string | undefined;
}

/**
 * Reads `/etc/passwd`, `/etc/group`, `/etc/subuid` and `/etc/subgid` (under `root`, for tests).
 * @param root Where `etc/` is (default `/`).
 */
export function readHostIdFiles(root = "/"): HostIdFiles {
  const read = (name: string) => {
    try {
      return readFileSync(`${root.replace(/\/$/, "")}/etc/${name}`, "utf8");
    } catch {
      return undefined;
    }
  };
  return { passwd: read("passwd"), group: read("group"), subuid: read("subuid"), subgid: read("subgid") };
}

const warned = new Set<string>();

/**
 * Prints a warning on stderr once per process (a spec is resolved more than once on its way to
 * running: by the CLI, the supervisor, `Container.create`).
 */
export function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  console.warn(`hako: warning: ${message}`);
}
