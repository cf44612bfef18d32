/**
 * The one rule of which options of a spec mount (a filesystem's; binds are attached whole) the
 * setup makes with plain mount(2) calls on the target's fd — what the native program can run —
 * and which need the general `Mount.mount`, so that the container's child is forked: setup.ts
 * builds its calls by it, and the OCI runtime decides by it, before anything is made, whether to
 * re-execute with a single-threaded engine (src/oci/runtime.ts's `needsJsChild`).
 *
 * No imports: the flags are the option parser's own (src/mount.ts's `parseOptions`, passed in),
 * asked by their names, so hako-runc's hot commands load neither the parser nor the FFI constants.
 * @module
 */

/** An option parser: src/mount.ts's `parseOptions`. */
export type ParseMountOptions = (options: string) => { readonly flags: number };

/**
 * The propagation options among `options` ("shared", "rslave", "private", "unbindable"…): as
 * runc's and crun's, each is a `mount(NULL, target, NULL, flag)` of its own after the filesystem
 * is mounted, in order — a plain call, on either path.
 * @param options A spec mount's options.
 * @param parse src/mount.ts's `parseOptions`.
 * @returns Those options, in their order.
 */
export function propagationOptions(options: readonly string[], parse: ParseMountOptions): string[] {
  const mask = parse("shared,private,slave,unbindable").flags;
  return options.filter((o) => (parse(o).flags & mask) !== 0);
}

/**
 * True when a filesystem mount's options, propagation apart ({@link propagationOptions}), carry
 * bind, remount or move: `Mount.mount`'s several calls, which only the forked child makes.
 * @param options A spec mount's options (with "ro" for `readonly`).
 * @param parse src/mount.ts's `parseOptions`.
 * @returns Whether the mount needs the general `Mount.mount`.
 */
export function needsGeneralMount(options: readonly string[], parse: ParseMountOptions): boolean {
  const propagation = propagationOptions(options, parse);
  const rest = options.filter((o) => !propagation.includes(o)).join(",");
  return (parse(rest).flags & parse("bind,remount,move").flags) !== 0;
}

/**
 * The per-mount flags among what `parse` gives (ro, nosuid, nodev, noexec, nosymfollow and the
 * atime flags): a new bind ignores them, a bind remount after it applies them (as `Mount.mount`).
 * @param parse src/mount.ts's `parseOptions`.
 * @returns Their `MS_*` mask.
 */
export function perMountFlags(parse: ParseMountOptions): number {
  return parse("ro,nosuid,nodev,noexec,nosymfollow,noatime,nodiratime,relatime,strictatime").flags;
}

/** The bind options asking for an idmapped mount: the mount alone, or its whole subtree (`_idmap.ts`). */
export const IDMAP_OPTIONS: ReadonlySet<string> = new Set(["idmap", "ridmap"]);

/**
 * Whether a spec mount is an idmapped bind (its source copied and mapped by the parent, attached
 * by a forked child: `_idmap.ts`).
 * @param m A spec mount.
 * @returns Whether it is a bind with `idmap` or `ridmap`.
 */
export function isIdmapped(m: { readonly type: string; readonly options?: readonly string[] }): boolean {
  return m.type === "bind" && (m.options ?? []).some((o) => IDMAP_OPTIONS.has(o));
}

/**
 * Whether a spec mount is a tmpfs with `tmpcopyup` (runc's extension, podman's `--read-only`
 * tmpfs): it starts with a copy of what its target held in the image (`_tmpcopyup.ts`).
 */
export function isTmpcopyup(m: { readonly type: string; readonly options?: readonly string[] }): boolean {
  return m.type === "tmpfs" && (m.options ?? []).includes("tmpcopyup");
}

/**
 * True when the container of `spec` gets a forked child that runs JavaScript, not the native one
 * (pure but for `parseOptions`): no native runner (`native` false: another architecture, or
 * `HAKO_NATIVE_SPAWN=0`), any hook of hako's own spec (a provision hook runs in the child; the
 * others are taken to fork too, to be safe), a veth, or a filesystem mount whose options need the
 * general `Mount.mount` (bind, remount, move — propagation is a plain call: _plain_mount.ts, the
 * rule setup.ts's "mount-options" op is made by) — the cases
 * `compileChild` in src/container/native.ts turns down for a container's setup. Errs towards true:
 * a wrong true costs a re-exec, a wrong false a fork of a multithreaded engine.
 * @param spec A container spec (`ociToSpec`'s, a spec module's, a quick run's).
 * @param native Whether a native runner is there (`nativeSpawnSupported()`).
 * @param parseOptions src/mount.ts's option parser.
 */
export function needsJsChild(
  spec: {
    readonly hooks?: object;
    readonly network?: { readonly veth?: unknown };
    readonly mounts?: ReadonlyArray<
      { readonly type: string; readonly options?: readonly string[]; readonly readonly?: boolean }
    >;
  },
  native: boolean,
  parseOptions: (options: string) => { flags: number },
): boolean {
  if (!native) return true;
  if (spec.hooks && Object.values(spec.hooks).some((h) => h !== undefined)) return true;
  if (spec.network?.veth !== undefined) return true;
  return (spec.mounts ?? []).some((m) => {
    if (m.type === "bind") return false; // (always the native attach; its flags are checked by config.ts)
    const options = [...(m.options ?? []), ...(m.readonly ? ["ro"] : [])];
    try {
      return needsGeneralMount(options, parseOptions); // (setup.ts's rule: propagation is plain)
    } catch {
      return true; // (the child reports it; forked, as before)
    }
  });
}
