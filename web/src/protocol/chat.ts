/**
 * Chat data-channel frames (§19): compact JSON with `t` first, and the receiver's checks in
 * the order of §19.4. A refused frame never closes the channel; the caller counts it.
 */
import { utf8, utf8Decode, utf8Length } from "./encoding.ts";
import { fail } from "./errors.ts";
import { isObject, jsonString, jsonU64, membersProblem, parseJson, type JsonObject, type JsonValue } from "./json.ts";

/** Largest frame (§19.2, `MAX_FRAME_BYTES`). */
export const MAX_CHAT_FRAME_BYTES = 49_152;
/** Largest `text` (§19.2). */
export const MAX_TEXT_BYTES = 8_192;
/** Largest `bye` reason (§19.2). */
export const MAX_BYE_REASON_BYTES = 256;

/** A chat frame this client understands. */
export type ChatFrame =
  | { t: "text"; id: bigint; tsMs: bigint; text: string }
  | { t: "ping"; n: bigint }
  | { t: "pong"; n: bigint }
  | { t: "bye"; reason: string }
  | { t: "room_msg"; msg: JsonObject };

/** What a receiver makes of one message on the channel. */
export type ChatReceived = { kind: "frame"; frame: ChatFrame } | { kind: "ignored"; type: string };

/** Unicode category Cc other than LF and TAB (§19.2). */
const FORBIDDEN_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/** Canonical encoding (§19.2): `t` first, members in §19.3's order. */
export function encodeChatFrame(f: ChatFrame): string {
  switch (f.t) {
    case "text":
      return `{"t":"text","id":${f.id},"ts_ms":${f.tsMs},"text":${jsonString(f.text)}}`;
    case "ping":
    case "pong":
      return `{"t":"${f.t}","n":${f.n}}`;
    case "bye":
      return `{"t":"bye","reason":${jsonString(f.reason)}}`;
    case "room_msg":
      throw new TypeError("use encodeRoomMsgFrame with the signed message's JSON text");
  }
}

/** A `room_msg` frame carrying a signed room message's JSON byte for byte (§19.3). */
export function encodeRoomMsgFrame(messageJson: string): string {
  return `{"t":"room_msg","msg":${messageJson}}`;
}

function checkText(s: string, limit: number, code: "text_too_large" | "reason_too_large"): void {
  if (utf8Length(s) > limit) fail(code, `over ${limit} bytes`);
  if (FORBIDDEN_CONTROL.test(s)) fail("control_characters", "control characters other than LF and TAB are not allowed");
}

/** §19.4: parses one channel message (binary or string, the same). */
export function parseChatFrame(data: Uint8Array | string): ChatReceived {
  const size = typeof data === "string" ? utf8(data).length : data.length;
  if (size > MAX_CHAT_FRAME_BYTES) fail("frame_too_large", `a chat frame of ${size} bytes is over ${MAX_CHAT_FRAME_BYTES}`);
  const text = typeof data === "string" ? data : utf8Decode(data);
  if (text === null) fail("malformed", "not UTF-8");
  let value: JsonValue;
  try {
    value = parseJson(text);
  } catch (e) {
    fail("malformed", `not a JSON object (${(e as Error).message})`);
  }
  if (!isObject(value)) fail("malformed", "not a JSON object");
  const t = value.get("t");
  if (typeof t !== "string") fail("malformed", "no string member t");
  const members: Record<string, string[]> = { text: ["id", "ts_ms", "text"], ping: ["n"], pong: ["n"], bye: ["reason"], room_msg: ["msg"] };
  if (!(t in members)) return { kind: "ignored", type: t.slice(0, 64) };
  const problem = membersProblem(value, ["t", ...members[t]]);
  if (problem) fail("malformed", problem);
  const u64 = (name: string): bigint => {
    const v = jsonU64(value.get(name));
    if (v === null) fail("malformed", `${name} must be an integer from 0 to 2^64-1`);
    return v;
  };
  const str = (name: string): string => {
    const v = value.get(name);
    if (typeof v !== "string") fail("malformed", `${name} must be a string`);
    return v;
  };
  switch (t) {
    case "text": {
      const frame = { t, id: u64("id"), tsMs: u64("ts_ms"), text: str("text") } as const;
      checkText(frame.text, MAX_TEXT_BYTES, "text_too_large");
      return { kind: "frame", frame };
    }
    case "ping":
    case "pong":
      return { kind: "frame", frame: { t, n: u64("n") } };
    case "bye": {
      const reason = str("reason");
      checkText(reason, MAX_BYE_REASON_BYTES, "reason_too_large");
      return { kind: "frame", frame: { t, reason } };
    }
    default: {
      const msg = value.get("msg");
      if (!isObject(msg)) fail("malformed", "msg must be a JSON object");
      return { kind: "frame", frame: { t: "room_msg", msg } };
    }
  }
}
