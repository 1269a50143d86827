/**
 * Envelopes (§4): the JSON form and its canonical encoding, the signed bytes, sealing, and
 * the receiver's checks in the order of §4.5. Sans-IO: time comes in as `now` (unix seconds),
 * the replay cache is the caller's.
 */
import { randomBytes } from "@noble/hashes/utils.js";
import { boxOpen, boxSeal } from "./box.ts";
import { CallId } from "./callid.ts";
import { verifyStrict, x25519PublicFromEd25519 } from "./ed25519.ts";
import { base64Decode, base64Encode, concat, u32be, u64be, u8, utf8, utf8Length } from "./encoding.ts";
import { fail, isProtocolError } from "./errors.ts";
import type { Identity } from "./identity.ts";
import { isObject, jsonU64, parseJson, type JsonObject, JsonSyntaxError } from "./json.ts";
import { ReplayCache, SKEW_SECS } from "./replay.ts";

/** Largest serialized envelope (§4.7): 65 536 − 30. */
export const MAX_ENVELOPE_BYTES = 65_506;
/** Largest plaintext (§4.4). */
export const MAX_PLAINTEXT_BYTES = 46_080;
/** How old a mailbox kind may be (§4.5 step 7): 24 h + 60 s. */
export const MAILBOX_MAX_AGE_SECS = 86_460n;

/** The eight envelope kinds (§4.1). */
export const ENVELOPE_KINDS = ["offer", "answer", "candidate", "hangup", "reject", "room_state", "room_message", "room_call"] as const;
/** One envelope kind. */
export type EnvelopeKind = (typeof ENVELOPE_KINDS)[number];
/** Kinds the server's mailbox keeps; they skip the replay cache (§4.5). */
export const MAILBOX_KINDS: readonly EnvelopeKind[] = ["room_state", "room_message"];

const MEMBERS = ["v", "from", "to", "ts", "nonce", "kind", "body", "sig"] as const;

/** A parsed envelope (shape-checked; not yet verified unless it came from {@link openEnvelope}). */
export interface Envelope {
  v: 1;
  from: CallId;
  to: CallId;
  ts: bigint;
  nonce: Uint8Array;
  kind: EnvelopeKind;
  body: Uint8Array;
  sig: Uint8Array;
}

/** §4.2: the bytes the sender signs. */
export function envelopeSignedBytes(e: Omit<Envelope, "sig">): Uint8Array {
  const kind = utf8(e.kind);
  return concat(
    utf8("call-envelope/v1"),
    u8(e.v),
    e.from.publicKey,
    e.to.publicKey,
    u64be(e.ts),
    e.nonce,
    u8(kind.length),
    kind,
    u32be(e.body.length),
    e.body,
  );
}

/** §4.1 canonical encoding: table order, compact, lowercase IDs, padded base64. */
export function encodeEnvelope(e: Envelope): string {
  return (
    `{"v":${e.v},"from":"${e.from.text}","to":"${e.to.text}","ts":${e.ts},` +
    `"nonce":"${base64Encode(e.nonce)}","kind":"${e.kind}","body":"${base64Encode(e.body)}","sig":"${base64Encode(e.sig)}"}`
  );
}

/**
 * §4.4: seals `plaintext` from `me` to `to` at `now`. `nonce` is for test vectors only;
 * otherwise 24 fresh random bytes. Throws `too_large` for an oversized plaintext or envelope.
 */
export function sealEnvelope(
  me: Identity,
  to: CallId,
  kind: EnvelopeKind,
  plaintext: Uint8Array,
  now: bigint,
  nonce: Uint8Array = randomBytes(24),
): { envelope: Envelope; text: string } {
  if (plaintext.length > MAX_PLAINTEXT_BYTES) {
    fail("too_large", `a plaintext of ${plaintext.length} bytes is over the ${MAX_PLAINTEXT_BYTES}-byte limit; send less`);
  }
  if (nonce.length !== 24) fail("encrypt_failed", "the nonce must be 24 bytes");
  let body: Uint8Array;
  try {
    body = boxSeal(plaintext, nonce, x25519PublicFromEd25519(to.publicKey), me.x25519Secret);
  } catch {
    fail("encrypt_failed", "encryption failed for this recipient key");
  }
  const unsigned = { v: 1 as const, from: me.id, to, ts: now, nonce, kind, body };
  const envelope: Envelope = { ...unsigned, sig: me.sign(envelopeSignedBytes(unsigned)) };
  const text = encodeEnvelope(envelope);
  if (text.length > MAX_ENVELOPE_BYTES) {
    fail("too_large", `the envelope would be ${text.length} bytes, over the ${MAX_ENVELOPE_BYTES}-byte limit; send less`);
  }
  return { envelope, text };
}

function malformed(message: string): never {
  fail("malformed", message);
}

/**
 * §4.5 steps 1–5: size (for text input), shape, version, kind, IDs. `value` is the received
 * text, or the `envelope` object of a frame whose size the caller has checked.
 */
export function parseEnvelope(value: string | JsonObject): Envelope {
  let obj: JsonObject;
  if (typeof value === "string") {
    const size = utf8Length(value);
    if (size > MAX_ENVELOPE_BYTES) fail("too_large", `an envelope of ${size} bytes is over the ${MAX_ENVELOPE_BYTES}-byte limit`);
    let parsed;
    try {
      parsed = parseJson(value);
    } catch (e) {
      malformed(e instanceof JsonSyntaxError ? `not JSON: ${e.message}` : "not JSON");
    }
    if (!isObject(parsed)) malformed("an envelope is a JSON object");
    obj = parsed;
  } else obj = value;
  for (const k of obj.keys()) if (!(MEMBERS as readonly string[]).includes(k)) malformed(`unknown member ${JSON.stringify(k)}`);
  for (const k of MEMBERS) if (!obj.has(k)) malformed(`missing member ${k}`);
  const v = jsonU64(obj.get("v"));
  const ts = jsonU64(obj.get("ts"));
  if (v === null) malformed("v must be a non-negative integer");
  if (ts === null) malformed("ts must be a non-negative integer below 2^64");
  const str = (k: string): string => {
    const x = obj.get(k);
    if (typeof x !== "string") malformed(`${k} must be a string`);
    return x;
  };
  const b64 = (k: string, len?: number): Uint8Array => {
    const bytes = base64Decode(str(k));
    if (!bytes) malformed(`${k} is not canonical base64`);
    if (len !== undefined && bytes.length !== len) malformed(`${k} must be ${len} bytes`);
    return bytes;
  };
  const [fromText, toText, kind] = [str("from"), str("to"), str("kind")];
  const nonce = b64("nonce", 24);
  const body = b64("body");
  const sig = b64("sig", 64);
  if (v !== 1n) fail("unsupported_version", `envelope version ${v} is not supported (this client speaks 1)`);
  if (!(ENVELOPE_KINDS as readonly string[]).includes(kind)) fail("unknown_kind", `unknown envelope kind ${JSON.stringify(kind.slice(0, 32))}`);
  let from: CallId, to: CallId;
  try {
    from = CallId.parse(fromText);
    to = CallId.parse(toText);
  } catch (e) {
    if (isProtocolError(e)) fail("bad_id", `from/to is not a valid call ID (${e.code})`);
    throw e;
  }
  return { v: 1, from, to, ts, nonce, kind: kind as EnvelopeKind, body, sig };
}

/** An envelope that passed every check of §4.5, with its decrypted body. */
export interface OpenedEnvelope {
  envelope: Envelope;
  plaintext: Uint8Array;
}

/**
 * §4.5: every receiver check in order, then decryption. Throws `ProtocolError` with the
 * step's code; a refused envelope must be dropped, never end the connection.
 */
export function openEnvelope(value: string | JsonObject, me: Identity, now: bigint, replay: ReplayCache): OpenedEnvelope {
  const e = parseEnvelope(value);
  if (!e.to.equals(me.id)) fail("wrong_recipient", "this envelope is addressed to another call ID");
  const mailbox = MAILBOX_KINDS.includes(e.kind);
  const oldest = now - (mailbox ? MAILBOX_MAX_AGE_SECS : SKEW_SECS);
  if (e.ts < oldest) fail("stale", `sent at ${e.ts}, too long before now (${now}); check both clocks`);
  if (e.ts > now + SKEW_SECS) fail("from_future", `sent at ${e.ts}, more than 60 s after now (${now}); check both clocks`);
  if (!verifyStrict(e.sig, envelopeSignedBytes(e), e.from.publicKey)) {
    fail("bad_signature", "the envelope signature does not verify for its sender");
  }
  if (!mailbox) {
    const verdict = replay.check(e.ts, e.from.text, e.nonce, now);
    if (verdict !== "fresh") fail(verdict, verdict === "replayed" ? "this envelope was already received" : "too many envelopes from this sender within the window; it may retry later");
  }
  const plaintext = boxOpen(e.body, e.nonce, x25519PublicFromEd25519(e.from.publicKey), me.x25519Secret);
  if (!plaintext) fail("decrypt_failed", "the body does not decrypt for this receiver");
  return { envelope: e, plaintext };
}
