/**
 * Base64 of a string's UTF-8 bytes (for data URLs), with no `node:` import.
 * @module
 */

/** Base64 of `text`'s UTF-8 bytes. */
export function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
