/**
 * The OCI path's SHA-256 (src/oci/_sha256.ts) gives node:crypto's digests, so the hako name of a
 * podman or containerd id (containerNameOf) is the one it was before node:crypto left that path.
 * No root needed.
 */
import { createHash } from "node:crypto";
import { equal } from "node:assert/strict";
import { test } from "./_harness.ts";
import { sha256Hex } from "../src/oci/_sha256.ts";
import { containerNameOf } from "../src/oci/config.ts";

const nodeSha256 = (text: string) => createHash("sha256").update(text).digest("hex");

test("the SHA-256 of the empty string and of 'abc' are FIPS 180-4's", () => {
  equal(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  equal(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

test("every length around a block's padding boundary hashes as node:crypto does", () => {
  for (let n = 0; n <= 200; n++) {
    const text = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (i * 7 + n) % 26)).join("");
    equal(sha256Hex(text), nodeSha256(text), `length ${n}`);
  }
});

test("text beyond ASCII is hashed as its UTF-8 bytes", () => {
  for (const text of ["é", "コンテナ", "\u{1F4E6} box", "a\0b"]) equal(sha256Hex(text), nodeSha256(text), text);
});

test("a 64-hex-digit id's hako name is oci- and the first 32 hex digits of its node:crypto SHA-256", () => {
  for (const id of ["a".repeat(64), "0123456789abcdef".repeat(4), "x".repeat(64), "podman/ctr:id"]) {
    equal(containerNameOf(id), `oci-${nodeSha256(id).slice(0, 32)}`);
  }
});
