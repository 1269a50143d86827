import { describe, expect, it } from "vitest";
import { CallId } from "../src/protocol/callid.ts";
import { base64Decode, base64Encode, hexEncode, utf8 } from "../src/protocol/encoding.ts";
import {
  encodeEnvelope,
  envelopeSignedBytes,
  MAX_ENVELOPE_BYTES,
  MAX_PLAINTEXT_BYTES,
  openEnvelope,
  parseEnvelope,
  sealEnvelope,
} from "../src/protocol/envelope.ts";
import { Identity } from "../src/protocol/identity.ts";
import { ReplayCache } from "../src/protocol/replay.ts";
import { blockAfter, range, section } from "./doc.ts";
import { alice, bob, codeOf } from "./fixtures.ts";

const s9 = section("## 9. Worked example");
const carol = Identity.fromSeed(range(0x40, 32));
const TS = 1_700_000_000n;
const docPlaintext = blockAfter(s9, "and the plaintext");
const docEnvelope = blockAfter(s9, "The envelope as sent");

describe("§9 envelope vector", () => {
  const { envelope, text } = sealEnvelope(alice, bob.id, "hangup", utf8(docPlaintext), TS, range(0x40, 24));

  it("seals to the document's body, signed bytes, signature and envelope, byte for byte", () => {
    expect(hexEncode(envelope.body)).toBe(blockAfter(s9, "Ciphertext `body`"));
    expect(hexEncode(envelopeSignedBytes(envelope))).toBe(blockAfter(s9, "Signed bytes (§4.2), hex"));
    expect(hexEncode(envelope.sig)).toBe(blockAfter(s9, "Signature, hex"));
    expect(text).toBe(docEnvelope);
  });

  it("is opened by Bob at ts, and at ts ± 60 s", () => {
    for (const now of [TS, TS + 60n, TS - 60n]) {
      const opened = openEnvelope(docEnvelope, bob, now, new ReplayCache());
      expect(new TextDecoder().decode(opened.plaintext)).toBe(docPlaintext);
      expect(opened.envelope.from.text).toBe(alice.id.text);
    }
  });

  it("accepts any valid JSON encoding: other order, whitespace, escapes, upper-case and grouped IDs", () => {
    const e = parseEnvelope(docEnvelope);
    const reordered =
      ` { "sig" : "${base64Encode(e.sig)}",\n "body":"${base64Encode(e.body)}", "kind":"hang\\u0075p",` +
      `"nonce":"${base64Encode(e.nonce)}","ts":1700000000,"to":"${bob.id.text.toUpperCase()}",` +
      `"from":"${alice.id.text.replace(/(.{4})/g, "$1-")}","v":1 } `;
    const opened = openEnvelope(reordered, bob, TS, new ReplayCache());
    expect(encodeEnvelope(opened.envelope)).toBe(docEnvelope);
  });
});

describe("§4.5 receiver checks", () => {
  const sealed = () => sealEnvelope(alice, bob.id, "offer", utf8("{}"), TS).text;
  const open = (text: string, now = TS, me = bob, cache = new ReplayCache()) => codeOf(() => openEnvelope(text, me, now, cache));
  const withMember = (text: string, name: string, value: string) => text.replace(new RegExp(`"${name}":("[^"]*"|\\d+)`), `"${name}":${value}`);

  it("refuses a tampered signature, body, kind and timestamp", () => {
    const text = sealed();
    const e = parseEnvelope(text);
    const sig = e.sig.slice();
    sig[5] ^= 1;
    expect(open(withMember(text, "sig", `"${base64Encode(sig)}"`))).toBe("bad_signature");
    const body = e.body.slice();
    body[0] ^= 1;
    expect(open(withMember(text, "body", `"${base64Encode(body)}"`))).toBe("bad_signature");
    expect(open(withMember(text, "kind", `"answer"`))).toBe("bad_signature");
    expect(open(withMember(text, "ts", `${TS + 1n}`))).toBe("bad_signature");
  });

  it("refuses a stale or future timestamp, with the longer window for mailbox kinds", () => {
    const text = sealed();
    expect(open(text, TS + 61n)).toBe("stale");
    expect(open(text, TS - 61n)).toBe("from_future");
    const mailbox = sealEnvelope(alice, bob.id, "room_message", utf8("{}"), TS).text;
    expect(open(mailbox, TS + 86_460n)).toBe("ok");
    expect(open(mailbox, TS + 86_461n)).toBe("stale");
  });

  it("refuses the wrong recipient", () => {
    expect(open(sealed(), TS, carol)).toBe("wrong_recipient");
  });

  it("refuses a replay, but not of the mailbox kinds (idempotent bodies, §4.5)", () => {
    const cache = new ReplayCache();
    const text = sealed();
    expect(open(text, TS, bob, cache)).toBe("ok");
    expect(open(text, TS + 1n, bob, cache)).toBe("replayed");
    const mailbox = sealEnvelope(alice, bob.id, "room_state", utf8("{}"), TS).text;
    expect(open(mailbox, TS, bob, cache)).toBe("ok");
    expect(open(mailbox, TS, bob, cache)).toBe("ok");
  });

  it("refuses a body that does not decrypt for the receiver (signed by the sender)", () => {
    // Alice seals to Carol, then re-addresses and re-signs for Bob: the signature holds, the box does not open.
    const forCarol = sealEnvelope(alice, carol.id, "offer", utf8("{}"), TS).envelope;
    const moved = { ...forCarol, to: bob.id };
    const resigned = { ...moved, sig: alice.sign(envelopeSignedBytes(moved)) };
    expect(open(encodeEnvelope(resigned))).toBe("decrypt_failed");
  });

  it("refuses oversized envelopes before parsing, and oversized plaintexts when sealing", () => {
    expect(open(" ".repeat(MAX_ENVELOPE_BYTES + 1))).toBe("too_large");
    // Multi-byte characters count as bytes, not UTF-16 units.
    expect(open("é".repeat(MAX_ENVELOPE_BYTES / 2 + 1))).toBe("too_large");
    expect(codeOf(() => sealEnvelope(alice, bob.id, "offer", new Uint8Array(MAX_PLAINTEXT_BYTES + 1), TS))).toBe("too_large");
    const biggest = sealEnvelope(alice, bob.id, "offer", new Uint8Array(MAX_PLAINTEXT_BYTES), TS).text;
    expect(biggest.length).toBeLessThanOrEqual(MAX_ENVELOPE_BYTES);
  });

  it("refuses duplicate members at any depth, unknown or missing members, wrong types", () => {
    const text = sealed();
    expect(open(text.replace('"v":1,', '"v":1,"v":1,'))).toBe("malformed");
    expect(open(text.replace('"kind":"offer"', '"kind":"offer","kind":"offer"'))).toBe("malformed");
    expect(open(text.replace('"v":1,', '"v":1,"x":{"a":1,"a":2},'))).toBe("malformed");
    expect(open(text.replace('"v":1,', ""))).toBe("malformed");
    expect(open(withMember(text, "ts", "-1"))).toBe("malformed");
    expect(open(withMember(text, "ts", "1.5"))).toBe("malformed");
    expect(open(withMember(text, "ts", "1e3"))).toBe("malformed");
    expect(open(withMember(text, "ts", '"1700000000"'))).toBe("malformed");
    expect(open(withMember(text, "ts", "18446744073709551616"))).toBe("malformed");
    expect(open("[]")).toBe("malformed");
    expect(open("{")).toBe("malformed");
  });

  it("refuses non-canonical base64 and wrong nonce or signature lengths", () => {
    const text = sealed();
    const e = parseEnvelope(text);
    const nonce = base64Encode(e.nonce);
    expect(open(withMember(text, "nonce", `"${nonce.slice(0, -1)}"`))).toBe("malformed");
    expect(open(withMember(text, "nonce", `"${base64Encode(new Uint8Array(23))}"`))).toBe("malformed");
    expect(open(withMember(text, "sig", `"${base64Encode(new Uint8Array(63))}"`))).toBe("malformed");
    expect(base64Decode("QQ==")).not.toBeNull();
    expect(base64Decode("QR==")).toBeNull(); // non-zero unused bits
    expect(base64Decode("QQ")).toBeNull();
    expect(base64Decode("Q Q==")).toBeNull();
  });

  it("checks version, kind and IDs in the §4.5 order", () => {
    const text = sealed();
    expect(open(withMember(text, "v", "2"))).toBe("unsupported_version");
    expect(open(withMember(text, "kind", '"file"'))).toBe("unknown_kind");
    expect(open(withMember(text, "to", `"${bob.id.text.slice(0, 57)}a"`))).not.toBe("ok");
    expect(open(withMember(text, "to", `"${bob.id.text.slice(1)}"`))).toBe("bad_id");
    // Version is checked before kind.
    expect(open(withMember(withMember(text, "v", "2"), "kind", '"file"'))).toBe("unsupported_version");
  });

  it("the replay cache bounds each sender and forgets the least recently seen sender", () => {
    const cache = new ReplayCache(2, 2);
    const n = (i: number) => Uint8Array.of(i);
    expect(cache.check(TS, "a", n(1), TS)).toBe("fresh");
    expect(cache.check(TS, "a", n(2), TS)).toBe("fresh");
    expect(cache.check(TS, "a", n(3), TS)).toBe("replay_cache_full");
    expect(cache.check(TS, "a", n(1), TS)).toBe("replayed"); // a replay is named before the quota
    expect(cache.check(TS, "b", n(1), TS)).toBe("fresh"); // another sender is not affected
    expect(cache.check(TS + 61n, "a", n(3), TS + 61n)).toBe("fresh"); // entries age out after 60 s

    const lru = new ReplayCache(3, 2);
    expect(lru.check(TS, "a", n(1), TS)).toBe("fresh");
    expect(lru.check(TS, "b", n(1), TS)).toBe("fresh");
    expect(lru.check(TS, "a", n(2), TS)).toBe("fresh"); // a is now the most recently seen
    expect(lru.check(TS, "c", n(1), TS)).toBe("fresh"); // all live: b, the least recent, is forgotten
    expect(lru.senderCount).toBe(2);
    expect(lru.check(TS, "a", n(1), TS)).toBe("replayed");
    expect(lru.check(TS, "b", n(1), TS)).toBe("fresh"); // the bounded replay hole of §4.6
  });

  it("an envelope from an ID that is not Alice's does not verify as Alice's", () => {
    const e = parseEnvelope(sealed());
    const forged = { ...e, from: carol.id };
    expect(open(encodeEnvelope(forged))).toBe("bad_signature");
    expect(CallId.parse(alice.id.text).equals(alice.id)).toBe(true);
  });
});
