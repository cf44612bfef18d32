/**
 * Types of the globals that `hako run` gives a script, for editors and `deno check`. Add to the
 * top of a script (with the path to your hako checkout, or its URL):
 *
 * ```ts ignore
 * /// <reference path="../hako/globals.d.ts" />
 * const pid = Process.fork({ namespaces: ["uts"] }, () => Process.exec("hostname"));
 * Process.waitpid2(pid);
 * ```
 *
 * Kept in step with `mod.ts` by a test (tests/cli_test.ts): every value that `mod.ts` exports is
 * declared here.
 *
 * @module
 */

/** Processes: fork (into namespaces), wait, kill, exec, system. See `src/process.ts`. */
declare const Process: typeof import("./mod.ts").Process;
/** Namespaces: unshare, setns, id maps. See `src/namespace.ts`. */
declare const Namespace: typeof import("./mod.ts").Namespace;
/** cgroups v1 and v2 behind one interface. See `src/cgroup/mod.ts`. */
declare const Cgroup: typeof import("./mod.ts").Cgroup;
/** Linux capabilities. See `src/capability.ts`. */
declare const Capability: typeof import("./mod.ts").Capability;
/** A capability set. */
type Capability = import("./mod.ts").Capability;
/** mount, bind, pivot_root, umount. See `src/mount.ts`. */
declare const Mount: typeof import("./mod.ts").Mount;
/** chroot, chdir and friends. See `src/dir.ts`. */
declare const Dir: typeof import("./mod.ts").Dir;
/** Ruby's Kernel functions (`Kernel.exec`, `Kernel.system`, `Kernel.fork`…). */
declare const Kernel: typeof import("./mod.ts").Kernel;
/** Runs a command and waits (Ruby's `system`). */
declare const system: typeof import("./mod.ts").system;
/** A failed system call (`syscall`, `errno`, `code`). */
declare const SyscallError: typeof import("./mod.ts").SyscallError;
/** A failed system call. */
type SyscallError = import("./mod.ts").SyscallError;
/** Bad input, found before anything was touched. */
declare const ConfigError: typeof import("./mod.ts").ConfigError;
/** Bad input, found before anything was touched. */
type ConfigError = import("./mod.ts").ConfigError;
/** A named setup step that failed. */
declare const SetupError: typeof import("./mod.ts").SetupError;
/** A named setup step that failed. */
type SetupError = import("./mod.ts").SetupError;

/** Sets the hostname of the caller's UTS namespace. See `src/hostname.ts`. */
declare const sethostname: typeof import("./mod.ts").sethostname;
/** Seccomp: `assertValidSeccompProfile`. See `src/seccomp.ts`. */
declare const assertValidSeccompProfile: typeof import("./mod.ts").assertValidSeccompProfile;
/** Seccomp: `AUDIT_ARCH`. See `src/seccomp.ts`. */
declare const AUDIT_ARCH: typeof import("./mod.ts").AUDIT_ARCH;
/** Seccomp: `compileSeccomp`. See `src/seccomp.ts`. */
declare const compileSeccomp: typeof import("./mod.ts").compileSeccomp;
/** Seccomp: `decodeSeccomp`. See `src/seccomp.ts`. */
declare const decodeSeccomp: typeof import("./mod.ts").decodeSeccomp;
/** Seccomp: `DEFAULT_SECCOMP_PROFILE`. See `src/seccomp.ts`. */
declare const DEFAULT_SECCOMP_PROFILE: typeof import("./mod.ts").DEFAULT_SECCOMP_PROFILE;
/** Seccomp: `loadSeccomp`. See `src/seccomp.ts`. */
declare const loadSeccomp: typeof import("./mod.ts").loadSeccomp;
/** Seccomp: `readSeccompProfile`. See `src/seccomp.ts`. */
declare const readSeccompProfile: typeof import("./mod.ts").readSeccompProfile;
/** Seccomp: `SECCOMP_RET`. See `src/seccomp.ts`. */
declare const SECCOMP_RET: typeof import("./mod.ts").SECCOMP_RET;
/** Seccomp: `seccompProblems`. See `src/seccomp.ts`. */
declare const seccompProblems: typeof import("./mod.ts").seccompProblems;
/** Seccomp: `seccompProfileFromOci`. See `src/seccomp.ts`. */
declare const seccompProfileFromOci: typeof import("./mod.ts").seccompProfileFromOci;
/** Seccomp: `syscallNumber`. See `src/seccomp.ts`. */
declare const syscallNumber: typeof import("./mod.ts").syscallNumber;
/** Networking: `addAddress`. See `src/network.ts`. */
declare const addAddress: typeof import("./mod.ts").addAddress;
/** Networking: `createVethPair`. See `src/network.ts`. */
declare const createVethPair: typeof import("./mod.ts").createVethPair;
/** Networking: `deleteLink`. See `src/network.ts`. */
declare const deleteLink: typeof import("./mod.ts").deleteLink;
/** Networking: `linkIndex`. See `src/network.ts`. */
declare const linkIndex: typeof import("./mod.ts").linkIndex;
/** Networking: `parseCidr`. See `src/network.ts`. */
declare const parseCidr: typeof import("./mod.ts").parseCidr;
/** Networking: `setLinkUp`. See `src/network.ts`. */
declare const setLinkUp: typeof import("./mod.ts").setLinkUp;
/** Containers from a declarative spec. See `src/container/container.ts`. */
declare const Container: typeof import("./mod.ts").Container;
/** A container instance. */
type Container = import("./mod.ts").Container;
/** Runs a container from a spec and waits for it. */
declare const run: typeof import("./mod.ts").run;
/** Runs a command inside a running container (its namespaces, cgroup and limits). See `src/container/exec.ts`. */
declare const execIn: typeof import("./mod.ts").execIn;
/** Publishes a spec's `network.ports` for a container the caller creates, until disposed. See `src/container/ports.ts`. */
declare const publishPorts: typeof import("./mod.ts").publishPorts;
/** The containers recorded on this host (`hako ps`). See `src/container/lifecycle.ts`. */
declare const listContainers: typeof import("./mod.ts").listContainers;
/** Signals a running container by name (`hako kill`). */
declare const killContainer: typeof import("./mod.ts").killContainer;
/** Stops a container by name: SIGTERM, then SIGKILL (`hako stop`). */
declare const stopContainer: typeof import("./mod.ts").stopContainer;
/** Deletes a container by name (`hako delete`). */
declare const deleteContainer: typeof import("./mod.ts").deleteContainer;
/** Removes what dead or half-made containers left (`hako gc`). */
declare const collectGarbage: typeof import("./mod.ts").collectGarbage;
/** An error about a named container (unknown, not running, already exists). */
declare const ContainerStateError: typeof import("./mod.ts").ContainerStateError;
/** A container was deleted but its rootfs could not be removed safely (`hako delete --rootfs`). */
declare const RootfsRemovalError: typeof import("./mod.ts").RootfsRemovalError;
/** Containers' state directories (default /run/hako, or HAKO_STATE_DIR). See `src/container/state.ts`. */
declare const StateStore: typeof import("./mod.ts").StateStore;
/** Checks a container spec and fills in its defaults. */
declare const resolveSpec: typeof import("./mod.ts").resolveSpec;
/** A container spec with problems. */
declare const SpecError: typeof import("./mod.ts").SpecError;
/** Sets a network interface up (e.g. "lo"). See `src/network.ts`. */
declare const linkUp: typeof import("./mod.ts").linkUp;
/** The hostname of the caller's UTS namespace. */
declare const gethostname: typeof import("./mod.ts").gethostname;
/** Sets the NIS domain name of the caller's UTS namespace. */
declare const setdomainname: typeof import("./mod.ts").setdomainname;
/** The NIS domain name of the caller's UTS namespace. */
declare const getdomainname: typeof import("./mod.ts").getdomainname;
/** Throws when a name is not a valid hostname. */
declare const assertValidHostname: typeof import("./mod.ts").assertValidHostname;
/** The longest host or domain name Linux takes, in bytes. */
declare const HOST_NAME_MAX: typeof import("./mod.ts").HOST_NAME_MAX;

/** Sets a resource limit of this process. See `src/rlimit.ts`. */
declare const setrlimit: typeof import("./mod.ts").setrlimit;
/** A resource limit of this process. */
declare const getrlimit: typeof import("./mod.ts").getrlimit;
/** Reads or sets a resource limit of any process. */
declare const prlimit: typeof import("./mod.ts").prlimit;
/** A resource's number, from its name. */
declare const rlimitNumber: typeof import("./mod.ts").rlimitNumber;
/** The resources, by name without `RLIMIT_`. */
declare const RLIMITS: typeof import("./mod.ts").RLIMITS;
/** Ruby's names for the resources (`Resource.RLIMIT_NOFILE`…). */
declare const Resource: typeof import("./mod.ts").Resource;

/** Sets the user id. See `src/user.ts`. */
declare const setuid: typeof import("./mod.ts").setuid;
/** Sets the group id. */
declare const setgid: typeof import("./mod.ts").setgid;
/** Sets the real, effective and saved user ids. */
declare const setresuid: typeof import("./mod.ts").setresuid;
/** Sets the real, effective and saved group ids. */
declare const setresgid: typeof import("./mod.ts").setresgid;
/** Sets the supplementary groups. */
declare const setgroups: typeof import("./mod.ts").setgroups;
/** The supplementary groups. */
declare const getgroups: typeof import("./mod.ts").getgroups;
/** The real user id. */
declare const getuid: typeof import("./mod.ts").getuid;
/** The effective user id. */
declare const geteuid: typeof import("./mod.ts").geteuid;
/** The real group id. */
declare const getgid: typeof import("./mod.ts").getgid;
/** The effective group id. */
declare const getegid: typeof import("./mod.ts").getegid;
/** A user from /etc/passwd (under a root directory), by name or uid. */
declare const lookupUser: typeof import("./mod.ts").lookupUser;
/** A group from /etc/group (under a root directory), by name or gid. */
declare const lookupGroup: typeof import("./mod.ts").lookupGroup;
/** A user's supplementary groups, from /etc/group. */
declare const supplementaryGroups: typeof import("./mod.ts").supplementaryGroups;
/** The most supplementary groups Linux allows. */
declare const NGROUPS_MAX: typeof import("./mod.ts").NGROUPS_MAX;
declare const MAX_ID: typeof import("./mod.ts").MAX_ID;
declare const idProblem: typeof import("./mod.ts").idProblem;

/** Options of `Process.fork`. */
type ForkOptions = import("./mod.ts").ForkOptions;
/** How a process ended, from `Process.waitpid2` and `Process.wait`. */
type ProcessStatus = import("./mod.ts").ProcessStatus;
/** One line of a uid or gid map. */
type IdMapEntry = import("./mod.ts").IdMapEntry;
/** A namespace kind: `"pid"`, `"uts"`, `"mount"`… */
type NamespaceName = import("./mod.ts").NamespaceName;

/** A resource limit: `{ soft, hard }`. */
type Rlimit = import("./mod.ts").Rlimit;
/** A resource's name without `RLIMIT_`. */
type RlimitName = import("./mod.ts").RlimitName;
/** A resource, by any of its names or its number. */
type RlimitResource = import("./mod.ts").RlimitResource;
/** A limit's value: a number, a bigint or `"unlimited"`. */
type RlimitValue = import("./mod.ts").RlimitValue;
/** A change to a limit, for `prlimit`. */
type RlimitChange = import("./mod.ts").RlimitChange;
/** A line of /etc/passwd. */
type UserEntry = import("./mod.ts").UserEntry;
/** A line of /etc/group. */
type GroupEntry = import("./mod.ts").GroupEntry;

/** The script's arguments (after the script's name), as Ruby's `ARGV`. */
declare const ARGV: readonly string[];
/** The script's arguments (the same array as {@link ARGV}). */
declare const args: readonly string[];
