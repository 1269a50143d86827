/**
 * A tampering relay's rewrite, as a malicious or compromised signaling server would do it, for
 * the Chromium tests (bundled for Node by esbuild at test time; the page's WebSocket is routed
 * through it with Playwright's routeWebSocket). Mirrors `tests/src/tamper.rs`.
 */
import { CallId } from "../src/protocol/callid.ts";
import { hexEncode, utf8 } from "../src/protocol/encoding.ts";
import { openEnvelope, parseEnvelope, sealEnvelope } from "../src/protocol/envelope.ts";
import { Identity } from "../src/protocol/identity.ts";
import { importKeyFile, exportKeyFile } from "../src/protocol/keyfile.ts";
import { ReplayCache } from "../src/protocol/replay.ts";
import { encodeSignedSdp, parseSignedSdp, signSdp } from "../src/protocol/sdp.ts";

export { Identity, exportKeyFile, importKeyFile, CallId, hexEncode };

/** What the relay does to the offers and answers it delivers to the page. */
export type Tamper =
  /** Decrypt with the page's key, swap the SDP's fingerprint, re-sign and re-seal with the sender's key. */
  | { mode: "swap_fingerprint"; recipient: Identity; sender: Identity }
  /** Mallory's own answer, properly sealed and signed by her, in place of the callee's. */
  | { mode: "answer_as"; mallory: Identity }
  /** Mallory's answer in an envelope that claims to be from the callee. */
  | { mode: "impersonate"; mallory: Identity };

const OTHER_FINGERPRINT = "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";

function fakeAnswer(mallory: Identity, to: CallId, ts: bigint): Uint8Array {
  const sdp = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:${OTHER_FINGERPRINT}\r\n`;
  const token = crypto.getRandomValues(new Uint8Array(16));
  return utf8(encodeSignedSdp(signSdp(mallory, to, token, "answer", sdp, ts)));
}

/** The rewritten frame, or `null` to pass `text` on unchanged. */
export function rewrite(text: string, t: Tamper): string | null {
  let frame: { type?: string; envelope?: unknown };
  try {
    frame = JSON.parse(text);
  } catch {
    return null;
  }
  if (frame.type !== "deliver") return null;
  const env = parseEnvelope(JSON.stringify(frame.envelope));
  if (env.kind !== "offer" && env.kind !== "answer") return null;
  let forged: string;
  switch (t.mode) {
    case "swap_fingerprint": {
      const opened = openEnvelope(JSON.stringify(frame.envelope), t.recipient, env.ts, new ReplayCache());
      const signed = parseSignedSdp(opened.plaintext);
      const sdp = signed.sdp.replace(/^a=fingerprint:[^\r\n]*/gm, `a=fingerprint:${OTHER_FINGERPRINT}`);
      const resigned = signSdp(t.sender, signed.to, signed.callToken, signed.role, sdp, env.ts);
      forged = sealEnvelope(t.sender, env.to, env.kind, utf8(encodeSignedSdp(resigned)), env.ts).text;
      break;
    }
    case "answer_as":
      forged = sealEnvelope(t.mallory, env.to, env.kind, fakeAnswer(t.mallory, env.to, env.ts), env.ts).text;
      break;
    case "impersonate": {
      const sealed = JSON.parse(sealEnvelope(t.mallory, env.to, env.kind, fakeAnswer(t.mallory, env.to, env.ts), env.ts).text);
      sealed.from = env.from.text;
      forged = JSON.stringify(sealed);
      break;
    }
  }
  return `{"type":"deliver","envelope":${forged}}`;
}
