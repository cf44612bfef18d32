/**
 * The parent of containers' cgroups. A leaf module (no imports), so that hako-runc's `delete`
 * removes the directories `create` recorded without loading the cgroup layout (see
 * src/oci/cgroup_dirs.ts); `_cgroup.ts` re-exports it.
 * @module
 */

/** The parent of containers' cgroups unless the spec names another: hako's own, made and removed by hako. */
export const DEFAULT_CGROUP_PARENT = "hako";
