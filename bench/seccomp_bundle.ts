/**
 * An OCI bundle like bench/bundle.ts's (`/bin/true` in the shared busybox rootfs) whose
 * config.json carries docker's default seccomp profile in the OCI format, resolved for the
 * bundle's capabilities the way containerd and podman pass it (no `includes`/`excludes`): what a
 * shim's `create` compiles. For measuring the seccomp compile and its cache (issue #16) side by
 * side with hyperfine; prints the bundle's directory (remove it after).
 *
 * Run (root): node_modules/.bin/deno run -A bench/seccomp_bundle.ts
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeBundle } from "./bundle.ts";
import { benchRootfs } from "./start.ts";
import { DEFAULT_SECCOMP_PROFILE, type OciSeccompProfile, type SeccompArgRule } from "../src/seccomp.ts";
import { activeRules, targetOf } from "../src/seccomp/_compile.ts";

const OPS: Record<SeccompArgRule["op"], string> = {
  eq: "SCMP_CMP_EQ",
  ne: "SCMP_CMP_NE",
  lt: "SCMP_CMP_LT",
  le: "SCMP_CMP_LE",
  gt: "SCMP_CMP_GT",
  ge: "SCMP_CMP_GE",
  masked_eq: "SCMP_CMP_MASKED_EQ",
};

/** Docker's default profile as an OCI `linux.seccomp`, its conditional rules resolved for `capabilities` on x86_64. */
export function dockerOciSeccomp(capabilities: readonly string[]): OciSeccompProfile {
  const p = DEFAULT_SECCOMP_PROFILE;
  const rules = activeRules(p, targetOf("x86_64", capabilities)).map((i) => p.syscalls[i]!);
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: p.defaultErrno ?? 1,
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    syscalls: rules.map((r) => ({
      names: [...r.names],
      action: r.action === "allow" ? "SCMP_ACT_ALLOW" : "SCMP_ACT_ERRNO",
      ...(r.action === "errno" ? { errnoRet: r.errno ?? 1 } : {}),
      ...(r.args?.length
        ? {
          args: r.args.map((a) => ({
            index: a.index,
            value: Number(a.value),
            valueTwo: Number(a.valueTwo ?? 0),
            op: OPS[a.op],
          })),
        }
        : {}),
    })),
  } as OciSeccompProfile;
}

if (import.meta.main) {
  const bundle = makeBundle(benchRootfs());
  const file = join(bundle.dir, "config.json");
  const c = JSON.parse(readFileSync(file, "utf8"));
  c.linux.seccomp = dockerOciSeccomp(c.process?.capabilities?.bounding ?? []);
  writeFileSync(file, JSON.stringify(c, null, 2));
  console.log(bundle.dir);
}
