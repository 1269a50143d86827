import { sha256 } from "@noble/hashes/sha2.js";
import { describe, expect, it } from "vitest";
import { encodeCandidate, encodeHangup, parseCandidate, parseHangup } from "../src/protocol/callbody.ts";
import { hexEncode, utf8 } from "../src/protocol/encoding.ts";
import { Identity } from "../src/protocol/identity.ts";
import {
  encodeSignedSdp,
  extractFingerprint,
  parseSignedSdp,
  sdpSignedBytes,
  signSdp,
  verifySignedSdp,
  type SdpExpectation,
  type SignedSdp,
} from "../src/protocol/sdp.ts";
import { backtickAfter, blockAfter, hex, range, section } from "./doc.ts";
import { alice, bob, codeOf } from "./fixtures.ts";

const s9 = section("## 9. Worked example");
const carol = Identity.fromSeed(range(0x40, 32));
const TOKEN = hex("00112233445566778899aabbccddeeff");
const docSdp = blockAfter(s9, "with the SDP (CRLF line ends)").split("\n").join("\r\n") + "\r\n";
const docJson = blockAfter(s9, "The plaintext of the `offer` envelope");

const bobExpects = (over: Partial<SdpExpectation> = {}): SdpExpectation => ({
  signer: alice.id,
  me: bob.id,
  role: "offer",
  callToken: TOKEN,
  now: 1_700_000_000n,
  ...over,
});

describe("§9 signed SDP vector", () => {
  // expires = 1700000030 is now + 60 with now = 1699999970.
  const signed = signSdp(alice, bob.id, TOKEN, "offer", docSdp, 1_699_999_970n);

  it("hashes, signs and encodes exactly as the document says", () => {
    expect(hexEncode(sha256(utf8(docSdp)))).toBe(backtickAfter(s9, "SHA-256 of the SDP: "));
    expect(hexEncode(sdpSignedBytes(signed))).toBe(blockAfter(s9, "Signed bytes (§5.1), hex"));
    expect(encodeSignedSdp(signed)).toBe(docJson);
  });

  it("parses and verifies the document's plaintext as Bob", () => {
    const parsed = parseSignedSdp(docJson);
    expect(verifySignedSdp(parsed, bobExpects())).toBe(parsed.fingerprint);
    expect(encodeSignedSdp(parsed)).toBe(docJson);
  });

  it("runs the receiver checks in order, each with its code", () => {
    const parsed = parseSignedSdp(docJson);
    expect(codeOf(() => verifySignedSdp(parsed, bobExpects({ signer: carol.id })))).toBe("sdp_wrong_signer");
    expect(codeOf(() => verifySignedSdp(parsed, bobExpects({ me: carol.id })))).toBe("sdp_wrong_recipient");
    expect(codeOf(() => verifySignedSdp(parsed, bobExpects({ role: "answer" })))).toBe("sdp_wrong_role");
    expect(codeOf(() => verifySignedSdp(parsed, bobExpects({ callToken: new Uint8Array(16) })))).toBe("sdp_wrong_call");
    expect(codeOf(() => verifySignedSdp(parsed, bobExpects({ now: 1_700_000_031n })))).toBe("sdp_expired");
    expect(codeOf(() => verifySignedSdp(parsed, bobExpects({ now: 1_700_000_030n })))).toBe("ok");
    expect(codeOf(() => verifySignedSdp(parsed, bobExpects({ now: 1_699_999_909n })))).toBe("sdp_expires_too_late");
    expect(codeOf(() => verifySignedSdp(parsed, bobExpects({ now: 1_699_999_910n })))).toBe("ok");
  });

  it("refuses a swapped fingerprint, a tampered SDP and a re-signed answer from another key", () => {
    const parsed = parseSignedSdp(docJson);
    const swapped: SignedSdp = { ...parsed, fingerprint: parsed.fingerprint.replace("1C:7E", "1C:7F") };
    expect(codeOf(() => verifySignedSdp(swapped, bobExpects()))).toBe("sdp_bad_signature");
    const tamperedSdp: SignedSdp = { ...parsed, sdp: parsed.sdp.replace("1c:7e", "1c:7f") };
    expect(codeOf(() => verifySignedSdp(tamperedSdp, bobExpects()))).toBe("sdp_bad_signature");
    // Alice signs an SDP whose fingerprint differs from the signed one (relay swapped it before signing).
    const unsigned = { ...parsed, fingerprint: swapped.fingerprint };
    const lying: SignedSdp = { ...unsigned, sig: alice.sign(sdpSignedBytes(unsigned)) };
    expect(codeOf(() => verifySignedSdp(lying, bobExpects()))).toBe("sdp_fingerprint_mismatch");
    // Carol re-signs the offer as herself: Bob expected Alice.
    const resigned = signSdp(carol, bob.id, TOKEN, "offer", docSdp, 1_699_999_970n);
    expect(codeOf(() => verifySignedSdp(resigned, bobExpects()))).toBe("sdp_wrong_signer");
  });

  it("refuses an SDP over 40 960 bytes and malformed bodies", () => {
    const big = `{"call_id":"00112233445566778899aabbccddeeff","role":"offer","from":"${alice.id.text}","to":"${bob.id.text}","expires":1,"fingerprint":"x","sdp":"${"a".repeat(40_961)}","sig":"${"A".repeat(86)}=="}`;
    expect(codeOf(() => verifySignedSdp(parseSignedSdp(big), bobExpects()))).toBe("body_too_large");
    expect(codeOf(() => parseSignedSdp(docJson.replace('"role":"offer"', '"role":"offer","role":"offer"')))).toBe("body_malformed");
    expect(codeOf(() => parseSignedSdp(docJson.replace('"role":"offer"', '"role":"pranswer"')))).toBe("body_malformed");
    expect(codeOf(() => parseSignedSdp(docJson.replace('"role":"offer"', '"role":"offer","x":1')))).toBe("body_malformed");
    expect(codeOf(() => parseSignedSdp(docJson.replace('"call_id":"00112233', '"call_id":"0011223')))).toBe("body_malformed");
    expect(parseSignedSdp(docJson.replace("00112233445566778899aabbccddeeff", "00112233445566778899AABBCCDDEEFF")).callToken).toEqual(TOKEN);
    expect(codeOf(() => parseSignedSdp(new Uint8Array(46_081)))).toBe("body_too_large");
  });
});

describe("§5.1 fingerprint extraction", () => {
  const fp = "1c:7e:31:9a:0b:44:5d:e2:68:f0:93:aa:17:c6:5b:0d:88:29:4e:f1:3a:b7:60:d5:92:0c:e4:7f:16:a3:bd:58";
  const sdp = (...lines: string[]) => ["v=0", ...lines, ""].join("\r\n");

  it("normalizes, tolerates tabs, LF line ends, session and media lines and other hashes", () => {
    const want = `sha-256 ${fp.toUpperCase()}`;
    expect(extractFingerprint(sdp(`a=fingerprint:SHA-256\t${fp}`))).toBe(want);
    expect(extractFingerprint(`v=0\na=fingerprint:sha-256 ${fp}\nm=audio\na=fingerprint:sha-256 ${fp.toUpperCase()}\n`)).toBe(want);
    const sha1 = Array(20).fill("ab").join(":");
    expect(extractFingerprint(sdp(`a=fingerprint:sha-1 ${sha1}`, `a=fingerprint:sha-256 ${fp}`))).toBe(want);
  });

  it("refuses missing, multiple, unsupported and malformed fingerprints", () => {
    const other = fp.replace("1c", "1d");
    expect(codeOf(() => extractFingerprint(sdp()))).toBe("sdp_no_fingerprint");
    expect(codeOf(() => extractFingerprint(sdp(`a=fingerprint:sha-256 ${fp}`, `a=fingerprint:sha-256 ${other}`)))).toBe("sdp_multiple_fingerprints");
    expect(codeOf(() => extractFingerprint(sdp(`a=fingerprint:md5 ${fp}`)))).toBe("sdp_unsupported_fingerprint_hash");
    expect(codeOf(() => extractFingerprint(sdp(`a=fingerprint:sha-256 ${fp} extra`)))).toBe("body_malformed");
    expect(codeOf(() => extractFingerprint(sdp(`a=fingerprint:sha-256 ${fp.slice(3)}`)))).toBe("body_malformed");
    expect(codeOf(() => extractFingerprint(sdp(`a=fingerprint:sha-1 ${fp}`)))).toBe("body_malformed");
  });
});

describe("§5.2 candidate and §5.3 hangup/reject bodies", () => {
  it("round-trips the §5.3 example and the §9 plaintext", () => {
    const docHangup = blockAfter(s9, "and the plaintext");
    const b = parseHangup(docHangup);
    expect(b.reason).toBe("hang-up");
    expect(encodeHangup(b)).toBe(docHangup);
    const example = blockAfter(section("### 5.3 `hangup` and `reject`"), "```json").replace("<32 hex>", "ab".repeat(16));
    expect(parseHangup(utf8(example)).reason).toBe("hang-up");
  });

  it("refuses unprintable and over-long reasons", () => {
    const body = (reason: string) => JSON.stringify({ call_id: "00".repeat(16), reason });
    for (const bad of ["a\nb", "\t", "\u202e", "\u200b", "\u00ad", "\u061c", "\u2066", "\ufeff", "\u0085", "\u007f"]) {
      expect(codeOf(() => parseHangup(body(bad))), JSON.stringify(bad)).toBe("body_unprintable_reason");
    }
    expect(parseHangup(body("occupé ☎ 忙")).reason).toBe("occupé ☎ 忙");
    expect(codeOf(() => parseHangup(body("x".repeat(257))))).toBe("body_too_large");
    expect(codeOf(() => parseHangup(body("é".repeat(129))))).toBe("body_too_large");
    expect(parseHangup(body("é".repeat(128))).reason.length).toBe(128);
  });

  it("parses and writes RTCIceCandidateInit, refusing unknown members and bad indices", () => {
    const text = blockAfter(section("### 5.2 `candidate`"), "```json");
    const c = parseCandidate(text.replace('"call_id":"<32 hex>"', `"call_id":"${"ab".repeat(16)}"`));
    expect(c.candidate).toEqual({ candidate: "candidate:…", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: null });
    expect(parseCandidate(encodeCandidate(c))).toEqual(c);
    const body = (cand: string) => `{"call_id":"${"ab".repeat(16)}","candidate":${cand}}`;
    expect(parseCandidate(body('{"candidate":""}')).candidate).toEqual({ candidate: "" });
    expect(codeOf(() => parseCandidate(body('{"candidate":"","x":1}')))).toBe("body_malformed");
    expect(codeOf(() => parseCandidate(body('{"candidate":"","sdpMLineIndex":65536}')))).toBe("body_malformed");
    expect(codeOf(() => parseCandidate(body('{"candidate":"","sdpMLineIndex":-1}')))).toBe("body_malformed");
    expect(codeOf(() => parseCandidate(body('{"candidate":"","sdpMid":1}')))).toBe("body_malformed");
  });
});
