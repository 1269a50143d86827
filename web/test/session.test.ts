import { describe, expect, it } from "vitest";
import { utf8 } from "../src/protocol/encoding.ts";
import { sealEnvelope } from "../src/protocol/envelope.ts";
import { SignalingSession, type SessionOutput } from "../src/protocol/session.ts";
import { blockAfter, section } from "./doc.ts";
import { alice, bob } from "./fixtures.ts";

const s17 = section("## 17. Worked example");
const NOW = 1_700_000_000n;

function drain(s: SignalingSession): SessionOutput[] {
  const out: SessionOutput[] = [];
  for (let o = s.poll(); o; o = s.poll()) out.push(o);
  return out;
}

function loggedIn(): SignalingSession {
  const s = new SignalingSession(alice, "call-signaling", false);
  s.handleFrame(blockAfter(s17, "Challenge:"), NOW);
  s.handleFrame(`{"type":"welcome","id":"${alice.id.text}","kept":2}`, NOW);
  drain(s);
  return s;
}

describe("sans-IO signaling session", () => {
  it("answers the §17 challenge with the document's auth frame and becomes ready on welcome", () => {
    const s = new SignalingSession(alice, "call-signaling", false);
    expect(s.state).toBe("awaiting_challenge");
    s.handleFrame(blockAfter(s17, "Challenge:"), NOW);
    expect(drain(s)).toEqual([{ type: "write", frame: blockAfter(s17, "Answer:") }]);
    expect(s.state).toBe("awaiting_welcome");
    s.handleFrame(`{"type":"welcome","id":"${alice.id.text}","kept":2}`, NOW);
    expect(drain(s)).toEqual([{ type: "ready", kept: 2n }]);
    expect(s.state).toBe("ready");
  });

  it("refuses to log in to a server that names another host", () => {
    const s = new SignalingSession(alice, "call.example.com");
    s.handleFrame(blockAfter(s17, "Challenge:"), NOW);
    const out = drain(s);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ type: "closed", code: "auth_wrong_server" });
    expect(s.state).toBe("closed");
  });

  it("closes on a welcome for another ID or before the login", () => {
    const s = new SignalingSession(alice, "call-signaling", false);
    s.handleFrame(`{"type":"welcome","id":"${alice.id.text}"}`, NOW);
    expect(drain(s)).toMatchObject([{ type: "closed", code: "bad_frame" }]);
  });

  it("opens delivered envelopes and drops replays, wrong recipients and garbage without closing", () => {
    const s = loggedIn();
    const { text } = sealEnvelope(bob, alice.id, "hangup", utf8('{"call_id":"00112233445566778899aabbccddeeff","reason":"busy"}'), NOW);
    s.handleFrame(`{"type":"deliver","envelope":${text}}`, NOW);
    s.handleFrame(`{"type":"deliver","envelope":${text}}`, NOW + 1n);
    const notForAlice = sealEnvelope(bob, bob.id, "hangup", utf8("{}"), NOW).text;
    s.handleFrame(`{"type":"deliver","envelope":${notForAlice}}`, NOW);
    s.handleFrame(`{"type":"deliver","envelope":${text},"type":"x"}`, NOW);
    s.handleFrame('{"type":"news"}', NOW);
    const out = drain(s);
    expect(out[0]).toMatchObject({ type: "envelope" });
    expect(out[0].type === "envelope" && out[0].opened.envelope.from.text).toBe(bob.id.text);
    expect(out.slice(1).map((o) => (o.type === "dropped" ? o.code : o.type))).toEqual(["replayed", "wrong_recipient", "bad_frame", "unknown_type"]);
    expect(s.state).toBe("ready");
  });

  it("writes send and turn frames once ready; server errors close only when §13 says so", () => {
    const s = loggedIn();
    s.send(bob.id, "hangup", utf8("{}"), NOW);
    s.requestTurn();
    const [send, turn] = drain(s);
    expect(send.type === "write" && send.frame.startsWith(`{"type":"send","envelope":{"v":1,"from":"${alice.id.text}"`)).toBe(true);
    expect(turn).toEqual({ type: "write", frame: '{"type":"turn"}' });
    s.handleFrame('{"type":"error","code":"not_online","message":"x is not connected"}', NOW);
    s.handleFrame('{"type":"error","code":"some_future_code","message":"?"}', NOW);
    expect(drain(s).map((o) => o.type)).toEqual(["server_error", "server_error"]);
    s.handleFrame('{"type":"error","code":"replaced","message":"newer login"}', NOW);
    expect(drain(s)).toMatchObject([{ type: "closed", code: "replaced" }]);
    expect(() => s.send(bob.id, "hangup", utf8("{}"), NOW)).toThrow(/not logged in/);
  });
});
