/**
 * The `identity.key` file of `call` (§7): `call-identity-v1\n` and the base64 of the 32-byte
 * seed with `\n`. Readers ignore ASCII whitespace around each line and blank lines, so CRLF
 * and a missing final newline are accepted. The browser has no file modes: the page warns
 * that the exported file is the account and must be kept private (chmod 600).
 */
import { base64Decode, base64Encode, utf8Decode } from "./encoding.ts";
import { fail } from "./errors.ts";
import { Identity } from "./identity.ts";

/** First line of the file. */
export const KEY_FILE_HEADER = "call-identity-v1";
/** Largest key file read (a valid one is 62 bytes; generous for whitespace). */
export const MAX_KEY_FILE_BYTES = 4096;

/** The file's exact bytes as `call id new` writes them (62 bytes). */
export function exportKeyFile(identity: Identity): string {
  return `${KEY_FILE_HEADER}\n${base64Encode(identity.exportSeed())}\n`;
}

/** Reads a key file (text or bytes); throws `key_file_malformed` saying what is wrong. */
export function importKeyFile(file: string | Uint8Array): Identity {
  if (file.length > MAX_KEY_FILE_BYTES) fail("key_file_malformed", "this is not a call identity file (too large)");
  const text = typeof file === "string" ? file : utf8Decode(file);
  if (text === null) fail("key_file_malformed", "this is not a call identity file (not text)");
  const lines = text
    .split("\n")
    .map((l) => l.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, ""))
    .filter((l) => l.length > 0);
  if (lines.length !== 2 || lines[0] !== KEY_FILE_HEADER) {
    fail("key_file_malformed", `this is not a call identity file (expected two lines, the first ${KEY_FILE_HEADER})`);
  }
  const seed = base64Decode(lines[1]);
  if (!seed || seed.length !== 32) fail("key_file_malformed", "the key line must be base64 of 32 bytes");
  return Identity.fromSeed(seed);
}
