/**
 * Seed 001's container, one per port: the article's `phpinfo-test.haco` as a hako spec module.
 * Everything follows from `PORT`, as `APACHE_PORT` did for haconiwa:
 *
 *   - name `web-$PORT`, rootfs extracted (once) from the fleet image into `/var/lib/hako/web-$PORT`
 *     with every owner shifted to the container's range (the article's `chown -R`);
 *   - a uid and a gid range of 100 per container: 0..99 inside is PORT*100..PORT*100+99 outside,
 *     so httpd, running as apache (48) inside, is PORT*100+48 on the host — 10012 → 1001248;
 *   - new pid, ipc, uts, mount and user namespaces, the host's network (no net namespace), the
 *     host's resolv.conf and hosts, a tmpfs /tmp, proc/sys/dev/devpts/shm (the default mounts);
 *   - a cgroup `hako-web-$PORT` with a 30% CPU quota (30000 µs every 100000 µs);
 *   - the command starts as root inside, writes a page naming the container into /var/www, then
 *     execs busybox httpd in the foreground on PORT with `-u 48:48`: httpd drops to apache itself,
 *     as Apache does in the article (hako leaves setgroups allowed in the user namespaces it makes,
 *     as runc does, so that works).
 *
 * The spec is plain JSON (no function-valued hooks), so the CLI can hand it to the supervisor.
 *
 *   for port in $(seq 10001 10100); do PORT=$port bin/hako start examples/fleet/web.ts; done
 *   bin/hako start examples/fleet/web.ts --each PORT=10001..10100     # the same in one call
 *   PORT=10001 bin/hako plan examples/fleet/web.ts                   # what it would do
 *
 * Environment: `PORT` (default 10001; `APACHE_PORT` also works), `HAKO_IMAGE` (the tarball,
 * default /var/lib/hako/images/busybox-web.tar.gz, built by `examples/fleet/image.ts`),
 * `HAKO_VAR_DIR` (where the rootfs dirs go, default /var/lib/hako). Arguments, when given,
 * replace the command.
 * @module
 */
import type { ContainerSpec } from "../../mod.ts";

/** How many uids and gids each container gets (the article's `uid_gid_range`). */
export const RANGE = 100;

/** apache's uid and gid inside the image. */
export const APACHE = 48;

/** The image used when `HAKO_IMAGE` is not set (same as image.ts's `DEFAULT_IMAGE`). */
export const IMAGE = "/var/lib/hako/images/busybox-web.tar.gz";

/**
 * The spec of the container for `env.PORT`.
 * @param env The environment: PORT, HAKO_IMAGE, HAKO_VAR_DIR.
 * @param args Replaces the command when not empty.
 * @throws {RangeError} When PORT is not a port number.
 */
export default function web(
  env: Readonly<Record<string, string | undefined>>,
  args: readonly string[] = [],
): ContainerSpec {
  const raw = env.PORT ?? env.APACHE_PORT ?? "10001";
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`PORT must be a port number (1..65535), got ${JSON.stringify(raw)}`);
  }
  const name = `web-${port}`;
  const rootId = port * RANGE; // root inside, and the owner of the rootfs outside
  const page = `hello from ${name}`;
  return {
    name,
    rootfs: {
      tarball: env.HAKO_IMAGE ?? IMAGE,
      path: `${env.HAKO_VAR_DIR ?? "/var/lib/hako"}/${name}`,
      owner: { uid: rootId, gid: rootId },
    },
    command: args.length ? [...args] : [
      "/bin/sh",
      "-c",
      `echo "${page}" > /var/www/index.html && exec /bin/busybox httpd -f -p ${port} -u ${APACHE}:${APACHE} -h /var/www`,
    ],
    env: { PORT: String(port) },
    namespaces: ["pid", "ipc", "uts", "mount", "user"],
    idMap: {
      uid: { inside: 0, outside: rootId, size: RANGE },
      gid: { inside: 0, outside: rootId, size: RANGE },
    },
    mounts: [{ type: "tmpfs", target: "/tmp", options: ["mode=1777"] }],
    networkEtc: "host",
    cgroup: { cpu: { quotaUs: 30_000, periodUs: 100_000 } },
  };
}
