/**
 * One example per command, for `hako help`: what a person types first (a docker user's habits
 * where hako has them).
 * @module
 */

/** An example command line for each command, by name. */
export const EXAMPLES: Readonly<Record<string, string>> = {
  run: "hako run -it --rm --rootfs ./rootfs -m 256m sh",
  eval: `hako eval 'Process.system("id")'`,
  start: "hako start examples/fleet/web.ts --each PORT=10001..10010",
  ps: "hako ps -a --filter status=exited",
  logs: "hako logs -f --since 10m -t web",
  exec: "hako exec -it web sh",
  attach: "hako attach web",
  shell: "hako shell -t web",
  kill: "hako kill -s HUP web",
  stop: "hako stop -t 5 web",
  delete: "hako delete --rootfs web",
  rm: "hako rm -f web",
  inspect: "hako inspect --format '{{.State.Status}}' web",
  wait: "hako wait web",
  port: "hako port web",
  update: "hako update -m 512m --cpus 1.5 web",
  gc: "hako gc",
  demo: "hako demo",
  plan: "hako plan web.ts",
  supervisor: "hako supervisor --idle 0",
  oci: "hako oci run -b ./bundle web",
  version: "hako version",
  help: "hako help run",
  stats: "hako stats --no-stream",
  top: "hako top web -o pid,user,args",
  new: "hako new web --rootfs ./rootfs",
  archive: "hako archive web web.tar.gz",
  restart: "hako restart -t 5 web",
  completion: "source <(hako completion bash)",
  image: "hako image import app.tar app:1",
  images: "hako images --format json",
  load: "podman save localhost/app:1 | hako load",
  rmi: "hako rmi app:1",
};
