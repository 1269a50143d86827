/**
 * Call IDs (§2.1–§2.3) and the shared checksummed text form that room IDs use too (§21.1):
 * `lowercase(base32_nopad(bytes || SHA-256(domain || bytes)[0..4]))`. Parsing removes
 * Unicode whitespace and `-`, is case-insensitive, and refuses typos by the checksum.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { keyProblem } from "./ed25519.ts";
import { base32Decode, base32Encode, bytesEqual, concat, utf8 } from "./encoding.ts";
import { fail, type IdCode } from "./errors.ts";

/** Characters of a call ID's text form (36 bytes → 58 characters). */
export const CALL_ID_CHARS = 58;

/** The error codes of one checksummed text form. */
interface TextForm {
  domain: string;
  bytes: number;
  chars: number;
  what: string;
  badLength: IdCode;
  badCharacter: IdCode;
  badChecksum: IdCode;
}

const CALL_ID_FORM: TextForm = {
  domain: "call-id/v1",
  bytes: 32,
  chars: CALL_ID_CHARS,
  what: "call ID",
  badLength: "id_bad_length",
  badCharacter: "id_bad_character",
  badChecksum: "id_bad_checksum",
};

function checksum(form: TextForm, bytes: Uint8Array): Uint8Array {
  return sha256(concat(utf8(form.domain), bytes)).subarray(0, 4);
}

/** Encodes `bytes` in the checksummed text form of `form`. */
export function encodeChecked(form: TextForm, bytes: Uint8Array): string {
  return base32Encode(concat(bytes, checksum(form, bytes)));
}

/** §2.2 steps 1–5 for any checksummed form: the decoded bytes, or a typed error. */
export function decodeChecked(form: TextForm, text: string): Uint8Array {
  // Step 1: Unicode White_Space (Rust's char::is_whitespace) and U+002D only.
  const compact = text.replace(/[\p{White_Space}-]/gu, "");
  const chars = [...compact];
  if (chars.length !== form.chars) {
    fail(form.badLength, `a ${form.what} has ${form.chars} characters (without spaces and dashes), this one has ${chars.length}`);
  }
  if (!/^[a-zA-Z2-7]*$/.test(compact)) {
    fail(form.badCharacter, `a ${form.what} uses only the letters a-z and the digits 2-7`);
  }
  const decoded = base32Decode(compact, form.bytes + 4);
  if (decoded === "bad_character") fail(form.badCharacter, `a ${form.what} uses only the letters a-z and the digits 2-7`);
  const mistyped = `this ${form.what} is mistyped (its checksum does not match); check it character by character`;
  if (decoded === "bad_bits") fail(form.badChecksum, mistyped);
  const bytes = decoded.subarray(0, form.bytes);
  if (!bytesEqual(checksum(form, bytes), decoded.subarray(form.bytes))) fail(form.badChecksum, mistyped);
  return bytes.slice();
}

/** A validated call ID: an Ed25519 public key that passed §2.3. */
export class CallId {
  private constructor(
    /** The 32-byte Ed25519 public key. */
    readonly publicKey: Uint8Array,
    /** The canonical 58-character text form. */
    readonly text: string,
  ) {}

  /** Parses a typed, pasted or received call ID (§2.2). Throws `ProtocolError<IdCode>`. */
  static parse(text: string): CallId {
    return CallId.fromPublicKey(decodeChecked(CALL_ID_FORM, text));
  }

  /** The call ID of a 32-byte public key, validated as §2.3 requires. */
  static fromPublicKey(pk: Uint8Array): CallId {
    if (pk.length !== 32) fail("id_invalid_key", "a call ID key is 32 bytes");
    switch (keyProblem(pk)) {
      case "invalid":
        fail("id_invalid_key", "this call ID does not hold a valid Ed25519 key");
      case "weak":
        fail("id_weak_key", "this call ID holds a key of small order, which anyone could impersonate");
      case "torsion":
        fail("id_torsion_key", "this call ID holds a key with a small-order component (not one key, one ID)");
      case null:
        return new CallId(pk.slice(), encodeChecked(CALL_ID_FORM, pk));
    }
  }

  /** `true` when both name the same key. */
  equals(other: CallId): boolean {
    return this.text === other.text;
  }

  /** The canonical text form. */
  toString(): string {
    return this.text;
  }
}

/** The room ID form of §21.1 (16 bytes → 32 characters). */
export const ROOM_ID_FORM: TextForm = {
  domain: "call-room-id/v1",
  bytes: 16,
  chars: 32,
  what: "room ID",
  badLength: "room_id_bad_length",
  badCharacter: "room_id_bad_character",
  badChecksum: "room_id_bad_checksum",
};
