/**
 * One process of a fleet starting at once (tests/seccomp_cache_test.ts): waits until the given
 * time, then compiles docker's default profile through the cache in `argv[2]`, and prints the
 * outcome and the program's length.
 * @module
 */
import process from "node:process";
import { compileSeccomp, DEFAULT_SECCOMP_PROFILE } from "../src/seccomp.ts";
import { cachedCompile } from "../src/seccomp/_cache.ts";
import { targetOf } from "../src/seccomp/_compile.ts";

const [dir, at] = process.argv.slice(2);
while (Date.now() < Number(at)) { /* start together */ }
const profile = JSON.parse(JSON.stringify(DEFAULT_SECCOMP_PROFILE));
const compile = (p: typeof profile) => compileSeccomp(p, { arch: "x86_64", capabilities: ["CAP_CHOWN"] });
const r = cachedCompile(profile, targetOf("x86_64", ["CAP_CHOWN"]), compile, { dir: dir! });
process.stdout.write(`${r?.outcome ?? "off"} ${r?.program.length ?? 0}\n`);
