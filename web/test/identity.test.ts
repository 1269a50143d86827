import { describe, expect, it } from "vitest";
import { CallId } from "../src/protocol/callid.ts";
import { keyProblem, x25519PublicFromEd25519, x25519SecretFromSeed } from "../src/protocol/ed25519.ts";
import { hexEncode } from "../src/protocol/encoding.ts";
import { Identity } from "../src/protocol/identity.ts";
import { safetyHalf, safetyNumber } from "../src/protocol/safety.ts";
import { backtickAfter, hex, section, tableValue } from "./doc.ts";
import { alice, bob, codeOf } from "./fixtures.ts";

const s9 = section("## 9. Worked example");

describe("§9 keys", () => {
  it("derives Alice's and Bob's keys, IDs and X25519 keys as the document says", () => {
    expect(hexEncode(alice.id.publicKey)).toBe(tableValue(s9, "Alice Ed25519 public key"));
    expect(alice.id.text).toBe(tableValue(s9, "Alice call ID"));
    expect(hexEncode(x25519PublicFromEd25519(alice.id.publicKey))).toBe(tableValue(s9, "Alice X25519 public key"));
    expect(hexEncode(alice.x25519Secret)).toBe(tableValue(s9, "Alice X25519 secret key"));
    expect(hexEncode(bob.id.publicKey)).toBe(tableValue(s9, "Bob Ed25519 public key"));
    expect(bob.id.text).toBe(tableValue(s9, "Bob call ID"));
    expect(hexEncode(x25519PublicFromEd25519(bob.id.publicKey))).toBe(tableValue(s9, "Bob X25519 public key"));
  });

  it("gives the safety number and halves of §2.5 and §9, the same both ways", () => {
    const s25 = section("### 2.5 Safety number");
    expect(safetyHalf(alice.id)).toBe(backtickAfter(s25, "Alice's half is"));
    expect(safetyHalf(bob.id)).toBe(backtickAfter(s25, "Bob's"));
    expect(safetyNumber(alice.id, bob.id)).toBe(tableValue(s9, "Safety number (Alice, Bob)"));
    expect(safetyNumber(bob.id, alice.id)).toBe(safetyNumber(alice.id, bob.id));
  });

  it("converts keys like libsodium's ed25519_convert test (§3)", () => {
    const s3 = section("## 3. Key derivation");
    const seed = hex(backtickAfter(s3, "seed\n"));
    const id = Identity.fromSeed(seed);
    expect(hexEncode(x25519PublicFromEd25519(id.id.publicKey))).toBe(/`x25519_pk = ([0-9a-f]{64})`/.exec(s3)![1]);
    expect(hexEncode(x25519SecretFromSeed(seed))).toBe(/`x25519_sk = ([0-9a-f]{64})`/.exec(s3)![1]);
  });
});

describe("§2 call ID text form", () => {
  const s2 = section("## 2. Identity and call ID");
  const example = backtickAfter(s2, "Example: ");

  it("parses the §2.1 example and round-trips it", () => {
    expect(CallId.parse(example).text).toBe(example);
  });

  it("accepts upper case, dashes and Unicode whitespace (§2.2 step 1)", () => {
    const grouped = example.toUpperCase().replace(/(.{6})/g, "$1-").replace(/-$/, "");
    expect(CallId.parse(grouped).text).toBe(example);
    const spaced = [...example].join("\u00a0").replace(/a/g, "a\u2003") + "\u3000\n\u0085";
    expect(CallId.parse(spaced).text).toBe(example);
  });

  it("refuses other separators: U+2010 hyphen, zero-width space, U+FEFF", () => {
    for (const sep of ["\u2010", "\u200b", "\ufeff"]) {
      expect(codeOf(() => CallId.parse(example.slice(0, 10) + sep + example.slice(10, 57)))).toBe("id_bad_character");
    }
  });

  it("refuses wrong lengths and characters", () => {
    expect(codeOf(() => CallId.parse(example.slice(0, 57)))).toBe("id_bad_length");
    expect(codeOf(() => CallId.parse(example + "a"))).toBe("id_bad_length");
    expect(codeOf(() => CallId.parse(example.slice(0, 57) + "1"))).toBe("id_bad_character");
    expect(codeOf(() => CallId.parse(example.slice(0, 57) + "é"))).toBe("id_bad_character");
  });

  it("detects every single-character substitution and adjacent transposition", () => {
    const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
    let tried = 0;
    for (let i = 0; i < example.length; i++) {
      for (const c of alphabet) {
        if (c === example[i]) continue;
        const typo = example.slice(0, i) + c + example.slice(i + 1);
        expect(codeOf(() => CallId.parse(typo)), typo).not.toBe("ok");
        tried++;
      }
      if (i + 1 < example.length && example[i] !== example[i + 1]) {
        const swapped = example.slice(0, i) + example[i + 1] + example[i] + example.slice(i + 2);
        expect(codeOf(() => CallId.parse(swapped))).not.toBe("ok");
      }
    }
    expect(tried).toBe(58 * 31);
  });

  it("refuses non-zero unused bits in the last character as a checksum error", () => {
    // The last character carries 3 data bits + 2 unused bits: flipping an unused bit.
    const last = "abcdefghijklmnopqrstuvwxyz234567".indexOf(example[57]);
    const flipped = example.slice(0, 57) + "abcdefghijklmnopqrstuvwxyz234567"[last ^ 1];
    expect(codeOf(() => CallId.parse(flipped))).toBe("id_bad_checksum");
  });

  it("refuses the §2.3 torsion key, which the document gives as a call ID", () => {
    const s23 = section("### 2.3 Key validation");
    const mixed = hex(backtickAfter(s23, "plus the order-8 point", 1));
    const mixedId = backtickAfter(s23, "(call ID");
    expect(keyProblem(mixed)).toBe("torsion");
    expect(codeOf(() => CallId.parse(mixedId))).toBe("id_torsion_key");
  });

  it("refuses small-order and off-curve keys with their own codes", () => {
    const identityPoint = new Uint8Array(32);
    identityPoint[0] = 1;
    expect(keyProblem(identityPoint)).toBe("weak");
    expect(codeOf(() => CallId.fromPublicKey(identityPoint))).toBe("id_weak_key");
    const order8 = hex(backtickAfter(section("### 2.3 Key validation"), "plus the order-8 point"));
    expect(codeOf(() => CallId.fromPublicKey(order8))).toBe("id_weak_key");
    // y = p (non-canonical encoding of y = 0)
    const nonCanonical = hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    expect(codeOf(() => CallId.fromPublicKey(nonCanonical))).toBe("id_invalid_key");
    // y = 2 is not on the curve
    const offCurve = new Uint8Array(32);
    offCurve[0] = 2;
    expect(codeOf(() => CallId.fromPublicKey(offCurve))).toBe("id_invalid_key");
  });
});
