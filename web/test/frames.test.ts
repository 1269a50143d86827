import { describe, expect, it } from "vitest";
import { hmac } from "@noble/hashes/hmac.js";
import { sha1 } from "@noble/hashes/legacy.js";
import { base64Encode, hexEncode, utf8 } from "../src/protocol/encoding.ts";
import { answerChallenge, authSignedBytes, expectedServerName, MAX_FRAME_BYTES, parseServerFrame, sendFrame } from "../src/protocol/frames.ts";
import { openEnvelope, sealEnvelope } from "../src/protocol/envelope.ts";
import { ReplayCache } from "../src/protocol/replay.ts";
import { blockAfter, range, section } from "./doc.ts";
import { alice, bob, codeOf } from "./fixtures.ts";

const s17 = section("## 17. Worked example");

describe("§17 login vector", () => {
  const challengeText = blockAfter(s17, "Challenge:");

  it("parses the challenge and signs exactly the document's bytes and answer", () => {
    const frame = parseServerFrame(challengeText);
    if (frame.type !== "challenge") throw new Error("not a challenge");
    expect(frame.server).toBe("call-signaling");
    expect(frame.nonce).toEqual(range(0x60, 32));
    expect(frame.ts).toBe(1_700_000_000n);
    expect(hexEncode(authSignedBytes(frame.server, frame.nonce, frame.ts))).toBe(blockAfter(s17, "Signed bytes, hex"));
    expect(answerChallenge(alice, frame, "call-signaling")).toBe(blockAfter(s17, "Answer:"));
  });

  it("refuses a challenge naming another server, and empty or over-long names", () => {
    const frame = { server: "evil.example", nonce: range(0x60, 32), ts: 1n };
    expect(codeOf(() => answerChallenge(alice, frame, "call.example.com"))).toBe("auth_wrong_server");
    expect(codeOf(() => answerChallenge(alice, { ...frame, server: "" }, ""))).toBe("auth_wrong_server");
    const long = "a".repeat(256);
    expect(codeOf(() => answerChallenge(alice, { ...frame, server: long }, long))).toBe("auth_wrong_server");
    expect(codeOf(() => answerChallenge(alice, { ...frame, server: "CALL.Example.com" }, "call.example.com"))).toBe("ok");
  });

  it("takes the dialed host as the expected name, loopback names as one", () => {
    expect(expectedServerName("ws://[0:0::1]:8443/ws")).toBe("::1");
    expect(expectedServerName("wss://Call.Example.COM/ws")).toBe("call.example.com");
    const frame = { server: "127.0.0.1", nonce: range(0x60, 32), ts: 1n };
    expect(codeOf(() => answerChallenge(alice, frame, expectedServerName("ws://localhost:8443/ws")))).toBe("ok");
    expect(codeOf(() => answerChallenge(alice, frame, "localhost", false))).toBe("auth_wrong_server");
  });

  it("parses the TURN credentials vector and re-derives its password (§14)", () => {
    const frame = parseServerFrame(blockAfter(s17, "TURN credentials for Alice"));
    if (frame.type !== "turn_credentials") throw new Error("not turn_credentials");
    expect(frame.username).toBe(`${1_700_000_000 + 600}:${alice.id.text}`);
    expect(frame.ttl).toBe(600n);
    // password = base64(HMAC-SHA1(secret, username)) with the secret `north` of §17.
    expect(base64Encode(hmac(sha1, utf8("north"), utf8(frame.username)))).toBe(frame.password);
  });
});

describe("§10, §12 frames", () => {
  it("ignores unknown members, reports unknown types, refuses duplicates and bad types", () => {
    expect(parseServerFrame('{"type":"welcome","id":"x","future":[1,2]}')).toEqual({ type: "welcome", id: "x", kept: 0n });
    expect(parseServerFrame('{"type":"welcome","id":"x","kept":3}')).toEqual({ type: "welcome", id: "x", kept: 3n });
    expect(parseServerFrame('{"type":"news"}')).toEqual({ type: "unknown", name: "news" });
    expect(codeOf(() => parseServerFrame('{"type":"welcome","type":"welcome","id":"x"}'))).toBe("bad_frame");
    expect(codeOf(() => parseServerFrame('{"type":"error","code":"x","message":"m","z":{"a":1,"a":1}}'))).toBe("bad_frame");
    expect(codeOf(() => parseServerFrame('{"type":1}'))).toBe("bad_frame");
    expect(codeOf(() => parseServerFrame("{}"))).toBe("bad_frame");
    expect(codeOf(() => parseServerFrame("hello"))).toBe("bad_frame");
    expect(codeOf(() => parseServerFrame('{"type":"challenge","server":"s","nonce":"AA==","ts":1}'))).toBe("bad_frame");
    expect(codeOf(() => parseServerFrame(`{"type":"x","pad":"${"a".repeat(MAX_FRAME_BYTES)}"}`))).toBe("frame_too_large");
  });

  it("delivers an envelope through a deliver frame that Bob opens", () => {
    const { text } = sealEnvelope(alice, bob.id, "hangup", new TextEncoder().encode("{}"), 1_700_000_000n);
    expect(sendFrame(text)).toBe(`{"type":"send","envelope":${text}}`);
    const frame = parseServerFrame(`{"type":"deliver","envelope":${text}}`);
    if (frame.type !== "deliver") throw new Error("not deliver");
    const opened = openEnvelope(frame.envelope, bob, 1_700_000_000n, new ReplayCache());
    expect(base64Encode(opened.plaintext)).toBe(base64Encode(new TextEncoder().encode("{}")));
  });
});
