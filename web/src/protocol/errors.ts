/**
 * Typed protocol errors. Every refusal carries the stable code of docs/protocol.md (§6, §13,
 * §19.4, §21.6) so that logs and the page name the same thing as `call` does, and a human
 * message that says what went wrong. Messages never contain key material or plaintext.
 */

/** Call ID errors (§6, `IdError::code`). */
export const ID_CODES = ["id_bad_length", "id_bad_character", "id_bad_checksum", "id_invalid_key", "id_weak_key", "id_torsion_key"] as const;

/** Call ID and room ID text-form errors (§2.2, §2.3, §21.1). */
export type IdCode = (typeof ID_CODES)[number] | "room_id_bad_length" | "room_id_bad_character" | "room_id_bad_checksum";

/** Envelope receiving and sealing errors (§4.5, §6 `EnvelopeError::code`). */
export const ENVELOPE_CODES = [
  "too_large",
  "malformed",
  "bad_id",
  "unsupported_version",
  "unknown_kind",
  "wrong_recipient",
  "stale",
  "from_future",
  "bad_signature",
  "replayed",
  "replay_cache_full",
  "decrypt_failed",
  "encrypt_failed",
] as const;

/** One envelope error code. */
export type EnvelopeCode = (typeof ENVELOPE_CODES)[number];

/** Envelope body and signed SDP errors (§5, §6 `OfferError::code`). */
export const BODY_CODES = [
  "sdp_bad_signature",
  "sdp_wrong_signer",
  "sdp_wrong_recipient",
  "sdp_wrong_role",
  "sdp_wrong_call",
  "sdp_expired",
  "sdp_expires_too_late",
  "body_unprintable_reason",
  "sdp_fingerprint_mismatch",
  "sdp_no_fingerprint",
  "sdp_multiple_fingerprints",
  "sdp_unsupported_fingerprint_hash",
  "body_malformed",
  "body_too_large",
] as const;

/** One body error code. */
export type BodyCode = (typeof BODY_CODES)[number];

/** Server `error` frame codes (§13); clients treat any other code as a non-fatal error. */
export const SERVER_ERROR_CODES = [
  "bad_frame",
  "unknown_type",
  "too_large",
  "unauthenticated",
  "auth_failed",
  "auth_timeout",
  "already_authenticated",
  "bad_envelope",
  "spoofed_from",
  "stale",
  "bad_signature",
  "replayed",
  "not_online",
  "recipient_busy",
  "mailbox_full",
  "rate_limited",
  "turn_unavailable",
  "replaced",
  "too_slow",
  "idle_timeout",
  "shutting_down",
] as const;

/** One server error code. */
export type ServerErrorCode = (typeof SERVER_ERROR_CODES)[number];

/** Room errors (§21.6). */
export const ROOM_CODES = [
  "room_id_bad_length",
  "room_id_bad_character",
  "room_id_bad_checksum",
  "room_malformed",
  "room_too_large",
  "room_invalid",
  "room_bad_signature",
  "room_wrong_room",
  "room_stale",
  "room_not_admin",
  "room_not_a_member",
] as const;

/** Client/server frame errors as the client sees them (§11, §12, §13). */
export type FrameCode = "bad_frame" | "frame_too_large" | "auth_wrong_server";

/** Chat data-channel frame refusals (§19.4). */
export type ChatCode =
  | "frame_too_large"
  | "malformed"
  | "text_too_large"
  | "reason_too_large"
  | "control_characters";

/** Room state and message errors (§21.6; the room ID ones are in {@link IdCode}). */
export type RoomCode = Exclude<(typeof ROOM_CODES)[number], "room_id_bad_length" | "room_id_bad_character" | "room_id_bad_checksum">;

/** Local key file errors (§7). */
export type KeyFileCode = "key_file_malformed";

/** Every code a protocol function can refuse with. */
export type ProtocolCode = IdCode | EnvelopeCode | BodyCode | FrameCode | ChatCode | RoomCode | KeyFileCode;

/** A refusal with its stable code (`err.code`) and a message for humans. */
export class ProtocolError<C extends ProtocolCode = ProtocolCode> extends Error {
  /** The stable error code of docs/protocol.md. */
  readonly code: C;

  constructor(code: C, message: string) {
    super(`${code}: ${message}`);
    this.name = "ProtocolError";
    this.code = code;
  }
}

/** Throws a {@link ProtocolError}; a helper so that parsers read as a list of rules. */
export function fail<C extends ProtocolCode>(code: C, message: string): never {
  throw new ProtocolError(code, message);
}

/** `true` when `e` is a {@link ProtocolError} with one of `codes` (any code if none given). */
export function isProtocolError(e: unknown, ...codes: ProtocolCode[]): e is ProtocolError {
  return e instanceof ProtocolError && (codes.length === 0 || codes.includes(e.code));
}
