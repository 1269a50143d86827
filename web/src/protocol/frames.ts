/**
 * Client ↔ server frames (§10–§14) as the client sees them: parsing server frames (size
 * limit, duplicate refusal, unknown members ignored, unknown types reported), the login
 * challenge-response with the server-name check, and the client's frames.
 */
import type { CallId } from "./callid.ts";
import { base64Decode, base64Encode, concat, u16be, u64be, utf8, utf8Length } from "./encoding.ts";
import { fail } from "./errors.ts";
import type { Identity } from "./identity.ts";
import { isObject, jsonU64, parseJson, type JsonObject, type JsonValue } from "./json.ts";

/** Largest frame either way (§10). */
export const MAX_FRAME_BYTES = 65_536;
/** The WebSocket path (§10). */
export const WS_PATH = "/ws";
/** Longest server name (§11). */
export const MAX_SERVER_NAME_BYTES = 255;
/** Bytes a `deliver` wrapper adds around its envelope (§4.7). */
export const DELIVER_WRAPPER_BYTES = 30;

/** A frame from the server. */
export type ServerFrame =
  | { type: "challenge"; server: string; nonce: Uint8Array; ts: bigint }
  | { type: "welcome"; id: string; kept: bigint }
  | { type: "deliver"; envelope: JsonObject; frameBytes: number }
  | { type: "turn_credentials"; urls: string[]; username: string; password: string; ttl: bigint }
  | { type: "error"; code: string; message: string }
  | { type: "unknown"; name: string };

function bad(message: string): never {
  fail("bad_frame", message);
}

function str(obj: JsonObject, name: string): string {
  const v = obj.get(name);
  if (typeof v !== "string") bad(`${name} must be a string`);
  return v;
}

function u64(obj: JsonObject, name: string): bigint {
  const v = jsonU64(obj.get(name));
  if (v === null) bad(`${name} must be a non-negative integer`);
  return v;
}

/**
 * Parses one text frame from the server. Throws `frame_too_large` over 65 536 bytes and
 * `bad_frame` for bad JSON, a duplicate member, a missing or non-string `type` or wrong
 * members; unknown members are ignored and an unknown `type` gives `{type: "unknown"}`.
 */
export function parseServerFrame(text: string): ServerFrame {
  const size = utf8Length(text);
  if (size > MAX_FRAME_BYTES) fail("frame_too_large", `a frame of ${size} bytes is over the ${MAX_FRAME_BYTES}-byte limit`);
  let value: JsonValue;
  try {
    value = parseJson(text);
  } catch (e) {
    bad(`not JSON: ${(e as Error).message}`);
  }
  if (!isObject(value)) bad("a frame is a JSON object");
  const type = value.get("type");
  if (typeof type !== "string") bad("a frame needs a string member type");
  switch (type) {
    case "challenge": {
      const nonce = base64Decode(str(value, "nonce"));
      if (!nonce || nonce.length !== 32) bad("challenge nonce must be base64 of 32 bytes");
      return { type, server: str(value, "server"), nonce, ts: u64(value, "ts") };
    }
    case "welcome":
      return { type, id: str(value, "id"), kept: value.has("kept") ? u64(value, "kept") : 0n };
    case "deliver": {
      const envelope = value.get("envelope");
      if (!isObject(envelope)) bad("deliver needs an envelope object");
      return { type, envelope, frameBytes: size };
    }
    case "turn_credentials": {
      const urls = value.get("urls");
      if (!Array.isArray(urls) || !urls.every((u) => typeof u === "string")) bad("urls must be an array of strings");
      return { type, urls: urls as string[], username: str(value, "username"), password: str(value, "password"), ttl: u64(value, "ttl") };
    }
    case "error":
      return { type, code: str(value, "code"), message: str(value, "message") };
    default:
      return { type: "unknown", name: type.slice(0, 64) };
  }
}

/** §11 signed bytes of the login answer. */
export function authSignedBytes(server: string, nonce: Uint8Array, ts: bigint): Uint8Array {
  const name = utf8(server);
  return concat(utf8("call-auth/v1"), u16be(name.length), name, nonce, u64be(ts));
}

const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

function isLoopbackName(name: string): boolean {
  return name === "localhost" || name === "::1" || LOOPBACK_V4.test(name);
}

/**
 * The server name a client expects from the URL it dialed (§11): the host, lowercase,
 * without port, an IPv6 literal without brackets. (WHATWG URL parsing already writes IP
 * literals canonically.)
 */
export function expectedServerName(url: string): string {
  const host = new URL(url).hostname.toLowerCase();
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** §11: `true` when the challenge's `server` is acceptable for `expected`. */
export function serverNameMatches(challenged: string, expected: string, expectedIsDialedHost: boolean): boolean {
  const name = challenged.toLowerCase();
  if (name === expected.toLowerCase()) return true;
  return expectedIsDialedHost && isLoopbackName(name) && isLoopbackName(expected.toLowerCase());
}

/**
 * Answers a challenge (§11) after checking its server name (1–255 bytes, equal to the
 * expected one): the `auth` frame to send. Throws `auth_wrong_server` otherwise, so a server
 * cannot relay another server's challenge through this client.
 */
export function answerChallenge(
  me: Identity,
  challenge: { server: string; nonce: Uint8Array; ts: bigint },
  expected: string,
  expectedIsDialedHost = true,
): string {
  const len = utf8Length(challenge.server);
  if (len < 1 || len > MAX_SERVER_NAME_BYTES) fail("auth_wrong_server", "the server's name must be 1 to 255 bytes");
  if (!serverNameMatches(challenge.server, expected, expectedIsDialedHost)) {
    fail("auth_wrong_server", `the server calls itself ${JSON.stringify(challenge.server.slice(0, 64))}, not ${expected}: refusing to log in`);
  }
  const sig = me.sign(authSignedBytes(challenge.server, challenge.nonce, challenge.ts));
  return `{"type":"auth","id":"${me.id.text}","sig":"${base64Encode(sig)}"}`;
}

/** The `send` frame for a canonical envelope text. */
export function sendFrame(envelopeText: string): string {
  return `{"type":"send","envelope":${envelopeText}}`;
}

/** The `turn` frame. */
export const TURN_FRAME = `{"type":"turn"}`;

/**
 * §13 error codes after which the server always closes the connection (`too_large` closes
 * only for an oversized client message, not for an undeliverable `send`: see the close frame).
 */
export const CLOSING_ERROR_CODES: readonly string[] = ["auth_failed", "auth_timeout", "replaced", "too_slow", "idle_timeout", "shutting_down"];

/** A welcome for someone else is a protocol violation the caller should report. */
export function welcomeIsFor(frame: { id: string }, me: CallId): boolean {
  return frame.id.toLowerCase() === me.text;
}
