/**
 * `hako image import|load|ls|rm|inspect`: images from `docker save`/`podman save` archives and
 * OCI layouts, in hako's store (src/image/store.ts). `hako load`, `hako images` and `hako rmi` are
 * docker's spellings of the same (load.ts, images.ts, rmi.ts).
 * @module
 */
import { nonEmpty, parseArgs, quoted, stringOption, UsageError } from "./_args.ts";
import { bytes, table } from "./_format.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako image <command> [options]

Images from 'docker save' / 'podman save' archives (docker-archive) and OCI image layouts
('podman save --format oci-archive', 'skopeo copy … oci-archive:FILE'), kept in hako's store
(/var/lib/hako/images, or a user's ~/.local/share/hako/images; HAKO_VAR_DIR moves it). Run one
with 'hako run --image NAME[:TAG] [-- CMD…]'; each container writes to a layer of its own.

Commands:
  import FILE [NAME[:TAG]]   Import an archive (and give its image a name)
  import DIR [NAME[:TAG]]    Import an OCI image layout directory ('skopeo copy … oci:DIR:TAG',
                             umoci's); --ref TAG imports only the image of that ref name
  load [-i FILE] [-q]        Import an archive from stdin (or FILE), as docker load
  ls [-q] [--format json]    List images (also: hako images)
  rm [-f] IMAGE...           Remove images (also: hako rmi)
  inspect IMAGE...           Print images as JSON: config, layers, size

IMAGE is NAME[:TAG] (':latest' when no tag), an ID or an ID's first digits.
Every blob read is checked against its sha256 digest, every layer's uncompressed bytes against
the config's diff_ids; paths in manifests and layers are refused when absolute or with '..',
sizes and counts are capped, and a layer is applied with no symlink followed. A layout
directory's files are read with no symlink followed and nothing but regular files taken.
`;

/**
 * The var directory of the image store: `HAKO_VAR_DIR` when set (absolute), else where quick
 * containers' images go (root's `/var/lib/hako`, a user's XDG data dir).
 */
export async function imageVarDir(): Promise<string> {
  const { defaultVarDir } = await import("../image/store.ts");
  return defaultVarDir();
}

/** Parses `hako image import [--ref REF] FILE|DIR [NAME]` (pure). */
export function parseImportArgs(
  argv: readonly string[],
): { help: boolean; file: string; name?: string; ref?: string } {
  const { values, positionals } = parseArgs(argv, {
    ref: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, file: "" };
  const ref = stringOption(values, "ref");
  if (positionals.length === 0) throw new UsageError("an archive to import is required");
  if (positionals.length > 2) throw new UsageError(`unexpected argument ${quoted(positionals[2]!)}`);
  return {
    help: false,
    file: nonEmpty(positionals[0]!, "the archive"),
    ...(positionals[1] !== undefined ? { name: nonEmpty(positionals[1], "the name") } : {}),
    ...(ref !== undefined ? { ref: nonEmpty(ref, "--ref") } : {}),
  };
}

/** Parses `hako load [-i FILE] [-q]` (pure). */
export function parseLoadArgs(argv: readonly string[]): { help: boolean; input?: string; quiet: boolean } {
  const { values, positionals } = parseArgs(argv, {
    input: { type: "string", short: "i" },
    quiet: { type: "boolean", short: "q" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, quiet: false };
  if (positionals.length) {
    throw new UsageError(`unexpected argument ${quoted(positionals[0]!)} (give the file with -i)`);
  }
  const input = stringOption(values, "input");
  return {
    help: false,
    quiet: values.quiet === true,
    ...(input !== undefined ? { input: nonEmpty(input, "-i") } : {}),
  };
}

async function doImport(
  input: string | AsyncIterable<Uint8Array>,
  name: string | undefined,
  quiet: boolean,
  ref?: string,
) {
  const { importImage } = await import("../image/store.ts");
  const r = await importImage(input, {
    varDir: await imageVarDir(),
    ...(name !== undefined ? { name } : {}),
    ...(ref !== undefined ? { ref } : {}),
  });
  if (quiet) return 0;
  const lines = r.images.flatMap((i) =>
    i.names.length ? i.names.map((n) => `Loaded image: ${n}\n`) : [`Loaded image ID: ${i.id}\n`]
  );
  host().stdout(lines.join(""));
  return 0;
}

/** `hako image import`. */
export async function importMain(argv: readonly string[]): Promise<number> {
  const a = parseImportArgs(argv);
  if (a.help) {
    host().stdout(usage);
    return 0;
  }
  return await doImport(a.file, a.name, false, a.ref);
}

/** `hako load` / `hako image load`. */
export async function loadMain(argv: readonly string[], help: string): Promise<number> {
  const a = parseLoadArgs(argv);
  if (a.help) {
    host().stdout(help);
    return 0;
  }
  if (a.input !== undefined) return await doImport(a.input, undefined, a.quiet);
  const { default: process } = await import("node:process");
  if (process.stdin.isTTY) {
    throw new UsageError("requested load from stdin, but stdin is a terminal (give -i FILE, or pipe an archive in)");
  }
  return await doImport(process.stdin as AsyncIterable<Uint8Array>, undefined, a.quiet);
}

/** Parses `hako images [-q] [--format json] [NAME]` (pure). */
export function parseListArgs(argv: readonly string[]): { help: boolean; quiet: boolean; json: boolean; ref?: string } {
  const { values, positionals } = parseArgs(argv, {
    quiet: { type: "boolean", short: "q" },
    format: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  const format = stringOption(values, "format");
  if (format !== undefined && format !== "json" && format !== "table") {
    throw new UsageError(`--format takes json or table, not ${quoted(format)}`);
  }
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${quoted(positionals[1]!)}`);
  return {
    help: values.help === true,
    quiet: values.quiet === true,
    json: format === "json" || values.json === true,
    ...(positionals[0] !== undefined ? { ref: positionals[0] } : {}),
  };
}

/** `hako images` / `hako image ls`. */
export async function listMain(argv: readonly string[], help: string): Promise<number> {
  const a = parseListArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(help);
    return 0;
  }
  const { listImages, normalizeName } = await import("../image/store.ts");
  let images = listImages(await imageVarDir());
  if (a.ref !== undefined) {
    const repo = normalizeName(a.ref.includes(":") ? a.ref : `${a.ref}:x`).replace(/:[^:]*$/, "");
    images = images.filter((i) => i.names.some((n) => n.replace(/:[^:/]*$/, "") === repo));
  }
  images.sort((x, y) => (y.created ?? y.imported).localeCompare(x.created ?? x.imported));
  const short = (id: string) => id.slice(7, 19);
  if (a.quiet) {
    h.stdout([...new Set(images.map((i) => short(i.id)))].map((s) => `${s}\n`).join(""));
    return 0;
  }
  // One row per name (docker's), an unnamed image once.
  const rows = images.flatMap((i) =>
    (i.names.length ? i.names : ["<none>:<none>"]).map((n) => {
      const colon = n.lastIndexOf(":");
      return { i, repo: n.slice(0, colon), tag: n.slice(colon + 1) };
    })
  );
  if (a.json) {
    h.stdout(
      rows.map(({ i, repo, tag }) =>
        JSON.stringify({
          ID: short(i.id),
          Id: i.id,
          Repository: repo,
          Tag: tag,
          Names: i.names,
          CreatedAt: i.created ?? null,
          Size: i.size,
          Layers: i.layers.length,
        }) + "\n"
      ).join(""),
    );
    return 0;
  }
  h.stdout(table(
    ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
    rows.map((
      { i, repo, tag },
    ) => [repo, tag, short(i.id), i.created?.slice(0, 19).replace("T", " ") ?? "-", bytes(i.size)]),
  ));
  return 0;
}

/** Parses `hako rmi [-f] IMAGE…` (pure). */
export function parseRemoveArgs(argv: readonly string[]): { help: boolean; force: boolean; refs: string[] } {
  const { values, positionals } = parseArgs(argv, {
    force: { type: "boolean", short: "f" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, force: false, refs: [] };
  if (positionals.length === 0) throw new UsageError("an image is required");
  for (const p of positionals) nonEmpty(p, "an image");
  return { help: false, force: values.force === true, refs: [...positionals] };
}

/** `hako rmi` / `hako image rm`. */
export async function removeMain(argv: readonly string[], help: string, command: string): Promise<number> {
  const a = parseRemoveArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(help);
    return 0;
  }
  const { removeImage } = await import("../image/store.ts");
  const { imageUsers } = await import("../image/rw.ts");
  const varDir = await imageVarDir();
  let code = 0;
  for (const ref of a.refs) {
    try {
      const r = removeImage(varDir, ref, { force: a.force, inUse: (id) => imageUsers(varDir, id) });
      h.stdout(r.untagged.map((n) => `Untagged: ${n}\n`).join("") + (r.deleted ? `Deleted: ${r.deleted}\n` : ""));
    } catch (e) {
      code = 1;
      h.stderr(`hako ${command}: ${(e as Error).message}\n`);
    }
  }
  return code;
}

/** `hako image inspect IMAGE…`: docker's fields, and hako's store's. */
export async function inspectMain(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs(argv, { help: { type: "boolean", short: "h" } });
  const h = host();
  if (values.help) {
    h.stdout(usage);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError("an image is required");
  const { findImage, imageRootfs } = await import("../image/store.ts");
  const varDir = await imageVarDir();
  const out: unknown[] = [];
  let code = 0;
  for (const ref of positionals) {
    const i = findImage(varDir, ref);
    if (!i) {
      h.stderr(`hako image inspect: no image ${quoted(ref)}\n`);
      code = 1;
      continue;
    }
    out.push({
      Id: i.id,
      RepoTags: i.names,
      Created: i.created ?? null,
      Architecture: i.architecture ?? null,
      Os: i.os ?? null,
      Config: i.config,
      RootFS: { Type: "layers", Layers: i.layers.map((l) => l.diffId) },
      Size: i.size,
      Hako: {
        manifestDigest: i.manifestDigest,
        imported: i.imported,
        layers: i.layers,
        rootfs: imageRootfs(varDir, i),
      },
    });
  }
  h.stdout(JSON.stringify(out, null, 2) + "\n");
  return code;
}

/** Runs `hako image`. */
export async function main(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case undefined:
    case "-h":
    case "--help":
    case "help":
      host().stdout(usage);
      return sub === undefined ? 2 : 0;
    case "import":
      return await importMain(rest);
    case "load":
      return await loadMain(rest, usage);
    case "ls":
    case "list":
      return await listMain(rest, usage);
    case "rm":
      return await removeMain(rest, usage, "image rm");
    case "inspect":
      return await inspectMain(rest);
    default:
      throw new UsageError(`unknown image command ${quoted(sub)} (import, load, ls, rm, inspect)`);
  }
}
