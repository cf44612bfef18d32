/**
 * Seed 001 — haconiwa's PHP-tester container, one per port, as a hako spec. Each container gets
 * its own uid/gid range of 100 starting at PORT*100, mapped to 0..99 inside (the range's first id
 * is root inside and owns the rootfs), new PID, IPC, UTS, mount and user namespaces, the host's
 * network, a tmpfs /tmp, the host's resolv.conf and hosts, and a 30% CPU quota.
 *
 *   for port in $(seq 10001 10003); do PORT=$port sudo bin/hako run examples/specs/php_tester.ts & done
 *
 * The article extracted a PHP image (tar.gz) per container and ran Apache; with HAKO_IMAGE=<.tar.gz>
 * this does the same (owner shifted to the range), otherwise it builds a busybox rootfs and runs
 * busybox httpd as uid 48 (apache's) inside — seen from the host as PORT*100+48.
 */
import type { ContainerSpec } from "../../mod.ts";

export default (env: Record<string, string | undefined>, args: readonly string[]): ContainerSpec => {
  const port = Number(env.PORT ?? env.APACHE_PORT ?? 10001);
  const range = 100;
  const rootUid = port * range;
  const path = `${env.HAKO_ROOT ?? "/var/lib/hako"}/php-tester-${port}`;
  return {
    name: `php-tester-${port}`,
    rootfs: env.HAKO_IMAGE ? { tarball: env.HAKO_IMAGE, path, owner: { uid: rootUid } } : { builder: "busybox", path },
    command: args.length ? [...args] : ["/bin/busybox", "httpd", "-f", "-p", String(port), "-u", "48:48", "-h", "/tmp"],
    env: { APACHE_PORT: String(port) },
    namespaces: ["ipc", "uts", "mount", "pid", "user"],
    idMap: { uid: { min: 0, max: range - 1, offset: rootUid }, gid: { min: 0, max: range - 1, offset: rootUid } },
    mounts: [{ type: "tmpfs", target: "/tmp", options: ["mode=1777"] }],
    networkEtc: "host",
    cgroup: { name: `hako-php-tester-${port}`, cpu: { quotaUs: 30_000, periodUs: 100_000 } },
  };
};
