/**
 * Where a running container's cgroup is: the directories of cgroup `name` that process `pid` is in
 * (v1: one per hierarchy that has it; v2: one), read from /proc/PID/cgroup. `hako stats`/`top`
 * sample them and `gc`/`stop` look into them; one reading for all.
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { detect } from "../cgroup/layout.ts";

/**
 * The directories of cgroup `name` that process `pid` is in, from /proc/PID/cgroup. Hierarchies
 * where the process sits elsewhere (its parent's cgroup) are left out: their figures are not the
 * container's. Empty when the process is gone or the layout cannot be read.
 */
export function containerCgroupDirs(pid: number, name: string | undefined): string[] {
  if (!name) return [];
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, "utf8");
  } catch {
    return [];
  }
  let layout;
  try {
    layout = detect();
  } catch {
    return [];
  }
  const dirs: string[] = [];
  for (const line of text.trim().split("\n")) {
    const [, ctrls, path] = line.split(":");
    if (ctrls === undefined || path === undefined || (path !== `/${name}` && !path.endsWith(`/${name}`))) continue;
    for (const m of layout.mounts) {
      const matches = ctrls === ""
        ? m.version === 2
        : m.version === 1 && ctrls.split(",").some((c) => m.subsystems.includes(c.replace(/^name=/, "")));
      if (matches) dirs.push(join(m.mountPoint, path));
    }
  }
  return [...new Set(dirs)];
}
