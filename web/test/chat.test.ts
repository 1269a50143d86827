import { describe, expect, it } from "vitest";
import { encodeChatFrame, encodeRoomMsgFrame, MAX_CHAT_FRAME_BYTES, parseChatFrame } from "../src/protocol/chat.ts";
import { hexEncode, utf8 } from "../src/protocol/encoding.ts";
import { blockAfter, section } from "./doc.ts";
import { codeOf } from "./fixtures.ts";

const s195 = section("### 19.5 Test vectors");

/** The bytes column of the §19.5 table row whose first cell starts with `label`. */
function frameRow(label: string): string {
  const row = s195.split("\n").find((l) => l.startsWith(`| \`${label}\``));
  if (!row) throw new Error(`no row ${label}`);
  return row.split(" | ")[1].replace(/^`|`\s*\|?$/g, "").replace(/`$/, "");
}

describe("§19.5 chat vectors", () => {
  it("encodes the four frames byte for byte", () => {
    const text = encodeChatFrame({ t: "text", id: 1n, tsMs: 1_700_000_000_000n, text: "hi\n\u260e" });
    expect(text).toBe(frameRow("text"));
    expect(hexEncode(utf8(text))).toBe(blockAfter(s195, "The `text` frame in hex"));
    expect(encodeChatFrame({ t: "ping", n: 7n })).toBe(frameRow("ping"));
    expect(encodeChatFrame({ t: "pong", n: 7n })).toBe(frameRow("pong"));
    expect(encodeChatFrame({ t: "bye", reason: "hang-up" })).toBe(frameRow("bye"));
  });

  it("parses them back, from string and binary messages alike", () => {
    for (const label of ["text", "ping", "pong", "bye"]) {
      const row = frameRow(label);
      const fromString = parseChatFrame(row);
      expect(fromString).toEqual(parseChatFrame(utf8(row)));
      if (fromString.kind !== "frame") throw new Error("ignored");
      expect(encodeChatFrame(fromString.frame)).toBe(row);
    }
  });

  it("ignores the document's unknown frame and drops its malformed ones", () => {
    const ignored = /Receiving: `([^`]+)` is ignored/.exec(s195)![1];
    expect(parseChatFrame(ignored)).toEqual({ kind: "ignored", type: "file_offer" });
    const dropped = /`hello`, `([^`]+)`, `([^`]+)` and\n`([^`]+)` are dropped/.exec(s195)!;
    expect(codeOf(() => parseChatFrame("hello"))).toBe("malformed");
    expect(codeOf(() => parseChatFrame(dropped[1]))).toBe("malformed");
    expect(codeOf(() => parseChatFrame(dropped[2]))).toBe("malformed");
    expect(codeOf(() => parseChatFrame(dropped[3]))).toBe("control_characters");
  });

  it("carries Bob's §21.7 message in a room_msg frame byte for byte", () => {
    const frame = /`(\{"t":"room_msg","msg":\{"room"[^`]+)`/.exec(s195)![1];
    const bobMessage = blockAfter(section("### 21.7 Worked example"), "Bob's message, JSON:");
    expect(encodeRoomMsgFrame(bobMessage)).toBe(frame);
    const parsed = parseChatFrame(frame);
    expect(parsed.kind === "frame" && parsed.frame.t === "room_msg").toBe(true);
    expect(codeOf(() => parseChatFrame('{"t":"room_msg","msg":{},"msg":{}}'))).toBe("malformed");
    expect(codeOf(() => parseChatFrame('{"t":"room_msg","msg":"{}"}'))).toBe("malformed");
  });

  it("applies the limits and member rules of §19.2 and §19.4", () => {
    const text = (s: string) => JSON.stringify({ t: "text", id: 1, ts_ms: 0, text: s });
    expect(codeOf(() => parseChatFrame(text("x".repeat(8_192))))).toBe("ok");
    expect(codeOf(() => parseChatFrame(text("x".repeat(8_193))))).toBe("text_too_large");
    expect(codeOf(() => parseChatFrame(text("a\tb\nc")))).toBe("ok");
    expect(codeOf(() => parseChatFrame(text("\u0085")))).toBe("control_characters");
    expect(codeOf(() => parseChatFrame(JSON.stringify({ t: "bye", reason: "x".repeat(257) })))).toBe("reason_too_large");
    expect(codeOf(() => parseChatFrame('{"t":"ping","n":1,"x":2}'))).toBe("malformed");
    expect(codeOf(() => parseChatFrame('{"t":"ping"}'))).toBe("malformed");
    expect(codeOf(() => parseChatFrame('{"t":"ping","n":1.5}'))).toBe("malformed");
    expect(codeOf(() => parseChatFrame('{"t":"ping","n":18446744073709551616}'))).toBe("malformed");
    expect(parseChatFrame('{"t":"ping","n":18446744073709551615}')).toEqual({ kind: "frame", frame: { t: "ping", n: 18446744073709551615n } });
    expect(codeOf(() => parseChatFrame('{"t":"text","id":1,"ts_ms":0,"text":"\\ud800"}'))).toBe("malformed");
    expect(codeOf(() => parseChatFrame('{"t":"ping","t":"ping","n":1}'))).toBe("malformed");
    expect(codeOf(() => parseChatFrame(Uint8Array.of(0xff, 0xfe)))).toBe("malformed");
    expect(codeOf(() => parseChatFrame(`{"t":"x","p":"${"a".repeat(MAX_CHAT_FRAME_BYTES)}"}`))).toBe("frame_too_large");
  });
});
