/**
 * Signed SDP offers and answers (§5.1): the DTLS fingerprint extraction, the signed bytes
 * binding the fingerprint to both IDs, the call token, the role and an expiry, and the
 * receiver's checks in the spec's order.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { parseBodyObject, parseCallToken, Members } from "./body.ts";
import { CallId } from "./callid.ts";
import { verifyStrict } from "./ed25519.ts";
import { base64Decode, base64Encode, bytesEqual, concat, hexEncode, u64be, u8, utf8, utf8Length } from "./encoding.ts";
import { fail, isProtocolError } from "./errors.ts";
import { MAX_PLAINTEXT_BYTES } from "./envelope.ts";
import type { Identity } from "./identity.ts";
import { jsonString } from "./json.ts";

/** Largest SDP inside a signed SDP (§4.7). */
export const MAX_SDP_BYTES = 40_960;
/** Signed SDP lifetime (§5.1); a receiver refuses `expires > now + 2 × TTL`. */
export const SDP_TTL_SECS = 60n;

/** Offer or answer. */
export type SdpRole = "offer" | "answer";

/** A signed SDP body (§5.1). */
export interface SignedSdp {
  callToken: Uint8Array;
  role: SdpRole;
  from: CallId;
  to: CallId;
  expires: bigint;
  fingerprint: string;
  sdp: string;
  sig: Uint8Array;
}

const IGNORED_HASHES: Record<string, number> = { "sha-1": 20, "sha-224": 28, "sha-384": 48, "sha-512": 64 };

function hexPairs(value: string, n: number): boolean {
  return new RegExp(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){${n - 1}}$`).test(value);
}

/** §5.1 "SDP fingerprint extraction": the normalized sha-256 fingerprint of `sdp`. */
export function extractFingerprint(sdp: string): string {
  const found = new Set<string>();
  for (let line of sdp.split("\n")) {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (!line.startsWith("a=fingerprint:")) continue;
    const tokens = line.slice("a=fingerprint:".length).split(/[ \t]+/).filter((t) => t.length > 0);
    if (tokens.length !== 2) fail("body_malformed", "an a=fingerprint line must hold exactly a hash name and a value");
    const [hash, value] = [tokens[0].toLowerCase(), tokens[1]];
    if (hash === "sha-256") {
      if (!hexPairs(value, 32)) fail("body_malformed", "a sha-256 fingerprint is 32 ':'-separated hex pairs");
      found.add(`sha-256 ${value.toUpperCase()}`);
    } else if (hash in IGNORED_HASHES) {
      if (!hexPairs(value, IGNORED_HASHES[hash])) fail("body_malformed", `a ${hash} fingerprint has the wrong length`);
    } else {
      fail("sdp_unsupported_fingerprint_hash", `fingerprint hash ${JSON.stringify(hash.slice(0, 16))} is not supported; use sha-256`);
    }
  }
  if (found.size === 0) fail("sdp_no_fingerprint", "the SDP has no a=fingerprint:sha-256 line");
  if (found.size > 1) fail("sdp_multiple_fingerprints", "the SDP has several different sha-256 fingerprints");
  return [...found][0];
}

/** §5.1 signed bytes. */
export function sdpSignedBytes(s: Omit<SignedSdp, "sig">): Uint8Array {
  const role = utf8(s.role);
  const fp = utf8(s.fingerprint);
  return concat(
    utf8("call-sdp/v1"),
    s.callToken,
    u8(role.length),
    role,
    s.from.publicKey,
    s.to.publicKey,
    u64be(s.expires),
    u8(fp.length),
    fp,
    sha256(utf8(s.sdp)),
  );
}

/** Canonical JSON of a signed SDP, in §5.1's member order. */
export function encodeSignedSdp(s: SignedSdp): string {
  return (
    `{"call_id":"${hexEncode(s.callToken)}","role":"${s.role}","from":"${s.from.text}","to":"${s.to.text}",` +
    `"expires":${s.expires},"fingerprint":${jsonString(s.fingerprint)},"sdp":${jsonString(s.sdp)},"sig":"${base64Encode(s.sig)}"}`
  );
}

/** Signs `sdp` for `to` (expires `now + 60`); the fingerprint is extracted from the SDP. */
export function signSdp(me: Identity, to: CallId, callToken: Uint8Array, role: SdpRole, sdp: string, now: bigint): SignedSdp {
  if (utf8Length(sdp) > MAX_SDP_BYTES) fail("body_too_large", `the SDP is over ${MAX_SDP_BYTES} bytes`);
  if (callToken.length !== 16) throw new RangeError("a call token is 16 bytes");
  const unsigned = { callToken, role, from: me.id, to, expires: now + SDP_TTL_SECS, fingerprint: extractFingerprint(sdp), sdp };
  return { ...unsigned, sig: me.sign(sdpSignedBytes(unsigned)) };
}

/** Parses an `offer`/`answer` plaintext (shape only; {@link verifySignedSdp} checks it). */
export function parseSignedSdp(plaintext: Uint8Array | string): SignedSdp {
  const codes = { tooLarge: "body_too_large", malformed: "body_malformed" } as const;
  const obj = parseBodyObject(plaintext, MAX_PLAINTEXT_BYTES, codes, ["call_id", "role", "from", "to", "expires", "fingerprint", "sdp", "sig"]);
  const m = new Members(obj, "body_malformed");
  const role = m.string("role");
  if (role !== "offer" && role !== "answer") fail("body_malformed", "role must be offer or answer");
  const fingerprint = m.string("fingerprint");
  if (utf8Length(fingerprint) > 255) fail("body_malformed", "fingerprint too long");
  const sig = base64Decode(m.string("sig"));
  if (!sig || sig.length !== 64) fail("body_malformed", "sig must be canonical base64 of 64 bytes");
  let from: CallId, to: CallId;
  try {
    from = CallId.parse(m.string("from"));
    to = CallId.parse(m.string("to"));
  } catch (e) {
    if (isProtocolError(e)) fail("body_malformed", `from/to is not a valid call ID (${e.code})`);
    throw e;
  }
  return { callToken: parseCallToken(m.string("call_id"), "body_malformed"), role, from, to, expires: m.u64("expires"), fingerprint, sdp: m.string("sdp"), sig };
}

/** What the receiver expects of a signed SDP (§5.1 "Verification by the receiver"). */
export interface SdpExpectation {
  /** The peer: for a caller the ID it called; for a callee the envelope's `from`. */
  signer: CallId;
  /** The receiver's own ID. */
  me: CallId;
  /** `answer` for a caller, `offer` for a callee. */
  role: SdpRole;
  /** The call's token; a callee learning it from the offer passes the offer's own. */
  callToken: Uint8Array;
  /** Unix seconds. */
  now: bigint;
}

/** §5.1 receiver checks 1–8, in order; returns the verified fingerprint to check DTLS against. */
export function verifySignedSdp(s: SignedSdp, want: SdpExpectation): string {
  if (utf8Length(s.sdp) > MAX_SDP_BYTES) fail("body_too_large", `the SDP is over ${MAX_SDP_BYTES} bytes`);
  if (!s.from.equals(want.signer)) fail("sdp_wrong_signer", "the SDP is not signed by the expected peer");
  if (!s.to.equals(want.me)) fail("sdp_wrong_recipient", "the SDP is addressed to another call ID");
  if (!verifyStrict(s.sig, sdpSignedBytes(s), s.from.publicKey)) fail("sdp_bad_signature", "the SDP signature does not verify");
  if (s.role !== want.role) fail("sdp_wrong_role", `expected an ${want.role}, got an ${s.role}`);
  if (!bytesEqual(s.callToken, want.callToken)) fail("sdp_wrong_call", "the SDP belongs to another call");
  if (want.now > s.expires) fail("sdp_expired", "the signed SDP has expired");
  if (s.expires > want.now + 2n * SDP_TTL_SECS) fail("sdp_expires_too_late", "the signed SDP claims to stay valid for more than 120 s");
  if (extractFingerprint(s.sdp) !== s.fingerprint) fail("sdp_fingerprint_mismatch", "the SDP's DTLS fingerprint differs from the signed one");
  return s.fingerprint;
}
