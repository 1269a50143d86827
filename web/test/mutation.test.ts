/**
 * Property tests for every parser of outside input: seeded random mutations of valid
 * messages never make a parser throw anything but a typed ProtocolError (no TypeError,
 * RangeError or stack overflow), and never hang.
 */
import { describe, expect, it } from "vitest";
import { parseChatFrame } from "../src/protocol/chat.ts";
import { parseCandidate, parseHangup } from "../src/protocol/callbody.ts";
import { utf8 } from "../src/protocol/encoding.ts";
import { openEnvelope, sealEnvelope } from "../src/protocol/envelope.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { parseServerFrame } from "../src/protocol/frames.ts";
import { importKeyFile } from "../src/protocol/keyfile.ts";
import { ReplayCache } from "../src/protocol/replay.ts";
import { parseRoomCall, parseRoomMessage, parseRoomState } from "../src/protocol/room.ts";
import { parseSignedSdp } from "../src/protocol/sdp.ts";
import { blockAfter, section } from "./doc.ts";
import { alice, bob } from "./fixtures.ts";

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = '{}[]",:\\0123456789-.eEtrufalsn \u0000\u00e9\ud800\u202eAZaz=+/';

function mutate(text: string, r: () => number): string {
  const chars = [...text];
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (chars.length + 1));
    const c = ALPHABET[Math.floor(r() * ALPHABET.length)];
    const op = r();
    if (op < 0.4) chars[at] = c;
    else if (op < 0.7) chars.splice(at, 1);
    else chars.splice(at, 0, c);
  }
  return chars.join("");
}

const s9 = section("## 9. Worked example");
const s217 = section("### 21.7 Worked example");
const envelope = sealEnvelope(alice, bob.id, "hangup", utf8("{}"), 1_700_000_000n).text;

const parsers: [string, string, (text: string) => unknown][] = [
  ["envelope", envelope, (t) => openEnvelope(t, bob, 1_700_000_000n, new ReplayCache())],
  ["server frame", `{"type":"deliver","envelope":${envelope}}`, parseServerFrame],
  ["challenge", '{"type":"challenge","server":"s","nonce":"YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8=","ts":1}', parseServerFrame],
  ["signed SDP", blockAfter(s9, "The plaintext of the `offer` envelope"), parseSignedSdp],
  ["hangup", blockAfter(s9, "and the plaintext"), parseHangup],
  ["candidate", `{"call_id":"${"ab".repeat(16)}","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}`, parseCandidate],
  ["chat frame", '{"t":"text","id":1,"ts_ms":1700000000000,"text":"hi\\n☎"}', parseChatFrame],
  ["room state", blockAfter(s217, "Version 2, JSON:"), parseRoomState],
  ["room message", blockAfter(s217, "Bob's message, JSON:"), parseRoomMessage],
  ["room call", blockAfter(s217, "Alice joining the room with session"), parseRoomCall],
  ["key file", "call-identity-v1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", importKeyFile],
];

describe("parsers refuse mutated input only with typed errors (seeded)", () => {
  for (const [name, valid, parse] of parsers) {
    it(name, () => {
      parse(valid); // the seed input itself is accepted
      const r = rng(name.length * 7919);
      let refused = 0;
      for (let i = 0; i < 300; i++) {
        try {
          parse(mutate(valid, r));
        } catch (e) {
          expect(e, `${name}: ${String(e)}`).toBeInstanceOf(ProtocolError);
          refused++;
        }
      }
      expect(refused).toBeGreaterThan(0);
    });
  }
});
