/**
 * The small call bodies (§5.2, §5.3): trickle `candidate`, and `hangup`/`reject` with a
 * printable reason.
 */
import { parseBodyObject, parseCallToken, Members } from "./body.ts";
import { hexEncode, utf8Length } from "./encoding.ts";
import { fail } from "./errors.ts";
import { MAX_PLAINTEXT_BYTES } from "./envelope.ts";
import { jsonString, JsonNumber, membersProblem, type JsonValue } from "./json.ts";

/** Longest hang-up/reject reason, bytes (§4.7). */
export const MAX_REASON_BYTES = 256;

const codes = { tooLarge: "body_too_large", malformed: "body_malformed" } as const;

/** W3C `RTCIceCandidateInit` as carried by §5.2. */
export interface CandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

/** A `candidate` body. */
export interface CandidateBody {
  callToken: Uint8Array;
  candidate: CandidateInit;
}

/** A `hangup` or `reject` body. */
export interface HangupBody {
  callToken: Uint8Array;
  reason: string;
}

/** §5.3: refused characters in a reason (C0, C1, soft hyphen, bidi and zero-width marks). */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

/** `true` when `text` has a character §5.3 refuses in a reason. */
export function isUnprintable(text: string): boolean {
  return UNPRINTABLE.test(text);
}

/** Parses a `hangup`/`reject` plaintext (§5.3). */
export function parseHangup(plaintext: Uint8Array | string): HangupBody {
  const m = new Members(parseBodyObject(plaintext, MAX_PLAINTEXT_BYTES, codes, ["call_id", "reason"]), "body_malformed");
  const reason = m.string("reason");
  if (utf8Length(reason) > MAX_REASON_BYTES) fail("body_too_large", `a reason is at most ${MAX_REASON_BYTES} bytes`);
  if (isUnprintable(reason)) fail("body_unprintable_reason", "the reason contains a control or format character");
  return { callToken: parseCallToken(m.string("call_id"), "body_malformed"), reason };
}

/** Canonical `hangup`/`reject` plaintext. */
export function encodeHangup(b: HangupBody): string {
  if (utf8Length(b.reason) > MAX_REASON_BYTES || isUnprintable(b.reason)) throw new RangeError("reason too long or unprintable");
  return `{"call_id":"${hexEncode(b.callToken)}","reason":${jsonString(b.reason)}}`;
}

function nullableString(v: JsonValue | undefined, name: string): string | null | undefined {
  if (v === undefined || v === null || typeof v === "string") return v;
  fail("body_malformed", `${name} must be a string or null`);
}

/** Parses a `candidate` plaintext (§5.2). */
export function parseCandidate(plaintext: Uint8Array | string): CandidateBody {
  const m = new Members(parseBodyObject(plaintext, MAX_PLAINTEXT_BYTES, codes, ["call_id", "candidate"]), "body_malformed");
  const c = m.object("candidate");
  const problem = membersProblem(c, ["candidate"], ["sdpMid", "sdpMLineIndex", "usernameFragment"]);
  if (problem) fail("body_malformed", problem);
  const cm = new Members(c, "body_malformed");
  const out: CandidateInit = { candidate: cm.string("candidate") };
  if (c.has("sdpMid")) out.sdpMid = nullableString(c.get("sdpMid"), "sdpMid");
  if (c.has("usernameFragment")) out.usernameFragment = nullableString(c.get("usernameFragment"), "usernameFragment");
  if (c.has("sdpMLineIndex")) {
    const v = c.get("sdpMLineIndex");
    if (v === null) out.sdpMLineIndex = null;
    else {
      const n = v instanceof JsonNumber && /^(0|[1-9][0-9]{0,4})$/.test(v.raw) ? Number(v.raw) : -1;
      if (n < 0 || n > 65535) fail("body_malformed", "sdpMLineIndex must be an integer from 0 to 65535 or null");
      out.sdpMLineIndex = n;
    }
  }
  return { callToken: parseCallToken(m.string("call_id"), "body_malformed"), candidate: out };
}

/** Canonical `candidate` plaintext. */
export function encodeCandidate(b: CandidateBody): string {
  const c = b.candidate;
  let inner = `"candidate":${jsonString(c.candidate)}`;
  const opt = (v: string | null | undefined) => (v === null ? "null" : jsonString(v!));
  if (c.sdpMid !== undefined) inner += `,"sdpMid":${opt(c.sdpMid)}`;
  if (c.sdpMLineIndex !== undefined) inner += `,"sdpMLineIndex":${c.sdpMLineIndex === null ? "null" : c.sdpMLineIndex}`;
  if (c.usernameFragment !== undefined) inner += `,"usernameFragment":${opt(c.usernameFragment)}`;
  return `{"call_id":"${hexEncode(b.callToken)}","candidate":{${inner}}}`;
}
