/**
 * A systemd of the test's own, for the systemd cgroup manager's tests: `/lib/systemd/systemd` as
 * PID 1 of new pid, mount, cgroup, uts, ipc and network namespaces, in a cgroup made for it — the
 * host's cgroup hierarchies mounted again rooted there, its own /run, and only the units it needs
 * (D-Bus and a target; every host unit, generator and .wants directory hidden under empty tmpfs),
 * so it starts nothing of the host's and writes nothing the host keeps; /proc/sys read-only, as
 * in a container, so it changes no host-wide setting. Commands run in it through `nsenter`.
 * Stopping it kills the pid namespace (and so everything in it) and removes its cgroups.
 * @module
 */
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { type Run, runIt } from "./_oci_lab.ts";
import { isRoot, until } from "./_harness.ts";

const SYSTEMD = "/lib/systemd/systemd";

/** Why the lab cannot run here, or false. */
export function systemdLabSkip(): string | false {
  if (!isRoot) return "needs root";
  if (!existsSync(SYSTEMD)) return `needs systemd (${SYSTEMD}; apt-get install systemd)`;
  if (!existsSync("/usr/bin/dbus-daemon")) return "needs dbus-daemon (apt-get install dbus)";
  if (!existsSync("/proc/self/ns/cgroup")) return "needs cgroup namespaces";
  for (const tool of ["unshare", "nsenter"]) {
    if (spawnSync(tool, ["--version"]).status !== 0) return `needs ${tool} (util-linux)`;
  }
  return false;
}

// The boot script: run by unshare in the new namespaces, it makes the lab's view and execs systemd.
const BOOT = String.raw`#!/bin/bash
set -e
LOG="$1"
mount --make-rprivate /
mount -t proc proc /proc
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/lock
# the cgroup hierarchies, mounted again: rooted at this cgroup namespace's root
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
else
  links=$(find /sys/fs/cgroup -maxdepth 1 -type l -printf '%f %l\n')
  mounts=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup" || $(i+1) == "cgroup2") print $5, $(i+1), $(i+3); break } }' /proc/self/mountinfo | grep '^/sys/fs/cgroup/')
  mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
  while read -r mp type opts; do
    [ -n "$mp" ] || continue
    mkdir -p "$mp"
    if [ "$type" = cgroup2 ]; then mount -t cgroup2 cgroup2 "$mp"; continue; fi
    o=$(echo "$opts" | tr , '\n' | grep -v '^r[wo]$' | paste -sd, -)
    case ",$o," in *,name=*) o="none,$o" ;; esac
    mount -t cgroup -o "$o" cgroup "$mp"
  done <<< "$mounts"
  while read -r name target; do [ -n "$name" ] && ln -s "$target" "/sys/fs/cgroup/$name"; done <<< "$links"
  # where systemd would mount a controller the host has not (a new hierarchy, which cgroups left in
  # it would keep alive after the lab), or join two the host keeps apart: an empty tmpfs, so it
  # sees a mount there and mounts nothing
  for c in $(awk 'NR > 1 && $2 == 0 && $4 == 1 { print $1 }' /proc/cgroups) cpu,cpuacct net_cls,net_prio; do
    [ -e "/sys/fs/cgroup/$c" ] && continue
    mkdir -p "/sys/fs/cgroup/$c"
    mount -t tmpfs -o mode=755,size=64k tmpfs "/sys/fs/cgroup/$c"
  done
fi
# only the units the lab needs: the host's hidden
keep=$(mktemp -d /run/lab-units.XXXXXX)
for u in dbus.service dbus.socket sysinit.target basic.target sockets.target shutdown.target; do
  for d in /usr/lib/systemd/system /lib/systemd/system; do
    [ -e "$d/$u" ] && { cp "$d/$u" "$keep/"; break; }
  done
done
for d in /usr/lib/systemd/system /lib/systemd/system /usr/local/lib/systemd/system /etc/systemd/system \
  /usr/lib/systemd/system-generators /lib/systemd/system-generators /usr/local/lib/systemd/system-generators \
  /etc/systemd/system-generators; do
  [ -d "$d" ] && ! mountpoint -q "$d" && mount -t tmpfs -o mode=755 tmpfs "$d"
done
cp "$keep"/* /usr/lib/systemd/system/ 2>/dev/null || cp "$keep"/* /lib/systemd/system/
cat > /etc/systemd/system/hako-lab.target <<'T'
[Unit]
Description=hako's systemd lab
Requires=dbus.socket
After=dbus.socket
T
export container=hako-lab
exec /lib/systemd/systemd --system --unit=hako-lab.target --log-target=console --show-status=0 </dev/null >"$LOG" 2>&1
`;

/** A booted lab: its PID 1 (the host's pid), and a way to run commands in it. */
export interface SystemdLab {
  /** The lab's systemd, as the host sees it. */
  readonly pid: number;
  /** Runs a command in the lab's namespaces (as root), waiting for it. */
  run(cmd: string, args: string[], env?: Record<string, string>): Run;
  /** Starts a daemon in the lab's namespaces, its output to `log` (it dies with the lab). */
  background(cmd: string, args: string[], log: string): void;
  /** systemd's own output, for a failed test's message. */
  log(): string;
  /** Kills everything in the lab and removes its cgroups. */
  stop(): Promise<void>;
}

/** The host's cgroup roots (every v1 hierarchy and the cgroup2 tree), where the lab's cgroup is made. */
function cgroupRoots(): string[] {
  const roots: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash < 0) continue;
    if ((f[dash + 1] === "cgroup" || f[dash + 1] === "cgroup2") && f[3] === "/") roots.push(f[4]!);
  }
  return roots;
}

function rmdirTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch { /* busy a moment longer: the caller retries */ }
}

/**
 * Boots the lab in a cgroup `hako-systemd-lab-<suffix>` of every hierarchy, waiting until its
 * manager answers (`systemctl is-system-running`).
 * @param dir A directory for the boot script and systemd's log.
 */
export async function bootSystemdLab(dir: string): Promise<SystemdLab> {
  const name = `hako-systemd-lab-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const dirs = cgroupRoots().map((r) => join(r, name));
  const script = join(dir, "boot.sh"), log = join(dir, "systemd.log");
  writeFileSync(script, BOOT, { mode: 0o755 });
  // The launcher moves itself into the lab's cgroup, then unshares; systemd inherits both.
  const moves = dirs.map((d) => {
    const cpuset = d.includes("/cpuset/")
      ? `cat ${d}/../cpuset.cpus > ${d}/cpuset.cpus; cat ${d}/../cpuset.mems > ${d}/cpuset.mems; `
      : "";
    return `mkdir -p ${d}; ${cpuset}echo $$ > ${d}/cgroup.procs`;
  }).join("\n");
  const launch = join(dir, "launch.sh");
  writeFileSync(
    launch,
    `#!/bin/bash\nset -e\n${moves}\nexec unshare --pid --fork --mount --cgroup --uts --ipc --net --propagation private ${script} ${log}\n`,
    { mode: 0o755 },
  );
  const child = spawn(launch, [], { stdio: "ignore", detached: true });
  let pid = 0;
  const stop = async () => {
    if (pid) spawnSync("kill", ["-9", String(pid)]);
    try {
      process.kill(child.pid!, 9);
    } catch { /* gone with the namespace */ }
    // (the kernel takes the pid namespace down with its init; then the cgroups can go)
    for (let i = 0; i < 100 && dirs.some((d) => existsSync(d)); i++) {
      dirs.forEach(rmdirTree);
      if (dirs.some((d) => existsSync(d))) await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    // the lab's PID 1: unshare's child (the boot script, then systemd: it execs)
    await until("the lab's systemd to start", () => {
      try {
        pid = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(" ")[0]) || 0;
        return pid > 0 && readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "systemd";
      } catch {
        return false;
      }
    }, 20_000);
    const enter = ["-t", String(pid), "-m", "-p", "-C", "-u", "-i", "-n", "--"];
    const run = (cmd: string, args: string[], env: Record<string, string> = {}) =>
      runIt("nsenter", [...enter, cmd, ...args], env);
    const background = (cmd: string, args: string[], logFile: string) => {
      const out = openSync(logFile, "a");
      try {
        spawn("nsenter", [...enter, cmd, ...args], { stdio: ["ignore", out, out], detached: true }).unref();
      } finally {
        closeSync(out);
      }
    };
    await until("the lab's systemd to answer", () => {
      const r = run("systemctl", ["is-system-running"]);
      return /^(running|degraded)/.test(r.stdout);
    }, 30_000);
    return {
      pid,
      run,
      background,
      log: () => {
        try {
          return statSync(log).size > 0 ? readFileSync(log, "utf8").slice(-4000) : "";
        } catch {
          return "";
        }
      },
      stop,
    };
  } catch (e) {
    const text = existsSync(log) ? readFileSync(log, "utf8").slice(-2000) : "(no log)";
    await stop();
    throw new Error(`${(e as Error).message}\n--- systemd's log:\n${text}`);
  }
}
