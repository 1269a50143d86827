import { describe, expect, it } from "vitest";
import { CallId } from "../src/protocol/callid.ts";
import { hexEncode } from "../src/protocol/encoding.ts";
import { isProtocolError } from "../src/protocol/errors.ts";
import { Identity } from "../src/protocol/identity.ts";
import {
  encodeRoomCall,
  encodeRoomMessage,
  encodeRoomState,
  parseRoomCall,
  parseRoomMessage,
  parseRoomState,
  roomMessageId,
  roomPairToken,
  roomStateHash,
  roomStateSignedBytes,
  RoomId,
  signRoomMessage,
  signRoomState,
  takeFirstState,
  takeState,
  type RoomState,
} from "../src/protocol/room.ts";
import { backtickAfter, blockAfter, range, section } from "./doc.ts";
import { alice, bob, codeOf } from "./fixtures.ts";

const s217 = section("### 21.7 Worked example");
const carol = Identity.fromSeed(range(0x40, 32));
const ROOM = RoomId.fromBytes(range(0xa0, 16));

const v1 = signRoomState(alice, { room: ROOM, version: 1n, prev: new Uint8Array(32), tsMs: 1_700_000_000_000n, name: "Book club", members: [{ id: alice.id, name: "Alice", role: "admin" }] });
const v2 = signRoomState(alice, {
  room: ROOM,
  version: 2n,
  prev: roomStateHash(v1),
  tsMs: 1_700_000_001_000n,
  name: "Book club",
  members: [...v1.members, { id: bob.id, name: "Bob", role: "member" }],
});

describe("§21.7 room vectors", () => {
  it("room ID, version 1 signed bytes, JSON and hash, version 2 JSON", () => {
    expect(ROOM.text).toBe(backtickAfter(s217, "Room ID: "));
    expect(hexEncode(roomStateSignedBytes(v1))).toBe(blockAfter(s217, "Version 1, signed bytes (hex):"));
    expect(encodeRoomState(v1)).toBe(blockAfter(s217, "Version 1, JSON:"));
    expect(hexEncode(roomStateHash(v1))).toBe(backtickAfter(s217, "Version 1 hash: "));
    expect(encodeRoomState(v2)).toBe(blockAfter(s217, "Version 2, JSON:"));
  });

  it("parses and verifies the document's states and takes them in order", () => {
    const p1 = parseRoomState(blockAfter(s217, "Version 1, JSON:"));
    const p2 = parseRoomState(blockAfter(s217, "Version 2, JSON:"));
    expect(encodeRoomState(p2)).toBe(blockAfter(s217, "Version 2, JSON:"));
    const held = takeFirstState(p1, alice.id);
    const next = takeState(held, p2);
    expect(next.current).toBe(p2);
    expect(takeState(next, p2)).toBe(next); // same hash: nothing changes
    expect(codeOf(() => takeState(next, p1))).toBe("room_stale"); // no rollback
    expect(codeOf(() => takeFirstState(p1, bob.id))).toBe("room_not_a_member");
    expect(codeOf(() => takeFirstState(p2, bob.id, bob.id))).toBe("room_not_admin"); // relayed by someone else
    expect(takeFirstState(p2, bob.id, alice.id).current).toBe(p2);
  });

  it("Bob's message: JSON and ID, parsed and verified", () => {
    const msg = signRoomMessage(bob, { room: ROOM, seq: 1n, tsMs: 1_700_000_002_000n, text: "hi" });
    const docMsg = blockAfter(s217, "Bob's message, JSON:");
    expect(encodeRoomMessage(msg)).toBe(docMsg);
    expect(roomMessageId(msg)).toBe(backtickAfter(s217, "Message ID: "));
    expect(roomMessageId(parseRoomMessage(docMsg))).toBe(roomMessageId(msg));
    const tampered = docMsg.replace('"text":"hi"', '"text":"ho"');
    expect(codeOf(() => parseRoomMessage(tampered))).toBe("room_bad_signature");
  });

  it("the room_call join announcement and the pair token", () => {
    const join = { room: ROOM, session: new Uint8Array(16).fill(0x11), op: "join" as const };
    expect(encodeRoomCall(join)).toBe(blockAfter(s217, "Alice joining the room with session"));
    expect(parseRoomCall(encodeRoomCall(join))).toEqual(join);
    const { token, offerer } = roomPairToken(ROOM, bob.id, new Uint8Array(16).fill(0x22), alice.id, new Uint8Array(16).fill(0x11));
    expect(hexEncode(token)).toBe(backtickAfter(s217, "their pair token is "));
    expect(offerer.equals(alice.id)).toBe(true);
    expect(codeOf(() => parseRoomCall(encodeRoomCall(join).replace('"join"', '"dance"')))).toBe("room_malformed");
    expect(codeOf(() => parseRoomCall(`{"room":"${ROOM.text}","session":"${"11".repeat(16)}","op":"join","pad":"${"x".repeat(1000)}"}`))).toBe("room_too_large");
  });
});

describe("§21.1 room IDs and §21.2/§21.3 rules", () => {
  it("refuses every single-character substitution of a room ID, and call IDs", () => {
    const text = ROOM.text;
    for (let i = 0; i < text.length; i++) {
      for (const c of "abcdefghijklmnopqrstuvwxyz234567") {
        if (c !== text[i]) expect(codeOf(() => RoomId.parse(text.slice(0, i) + c + text.slice(i + 1)))).not.toBe("ok");
      }
    }
    expect(RoomId.parse(text.toUpperCase().replace(/(.{4})/g, "$1 ")).text).toBe(text);
    expect(codeOf(() => RoomId.parse(alice.id.text))).toBe("room_id_bad_length");
  });

  it("refuses states that break the rules", () => {
    const doc = blockAfter(s217, "Version 1, JSON:");
    expect(codeOf(() => parseRoomState(doc.replace('"version":1', '"version":1,"version":1')))).toBe("room_malformed");
    expect(codeOf(() => parseRoomState(doc.replace('"name":"Book club"', '"name":"Book club","x":1')))).toBe("room_malformed");
    expect(codeOf(() => parseRoomState(doc.replace('"version":1', '"version":2')))).toBe("room_invalid"); // zero prev with v2
    expect(codeOf(() => parseRoomState(doc.replace('"role":"admin"', '"role":"member"')))).toBe("room_invalid"); // no admin
    expect(codeOf(() => parseRoomState(doc.replace('"name":"Book club"', '"name":"Book\\u202eclub"')))).toBe("room_invalid");
    expect(codeOf(() => parseRoomState(doc.replace('"name":"Book club"', '"name":"Book clubs"')))).toBe("room_bad_signature");
    const twice = doc.replace(/"members":\[(\{[^\]]*\})\]/, '"members":[$1,$1]');
    expect(codeOf(() => parseRoomState(twice))).toBe("room_invalid"); // not strictly ascending
  });

  const state = (by: Identity, version: bigint, prev: RoomState, members: RoomState["members"], name = "Book club") =>
    signRoomState(by, { room: ROOM, version, prev: roomStateHash(prev), tsMs: 0n, name, members });

  it("only admins change a room; a member may only remove itself", () => {
    const held = { current: v2, parent: v1 };
    const byBob = state(bob, 3n, v2, [...v2.members, { id: carol.id, name: "Carol", role: "member" }]);
    expect(codeOf(() => takeState(held, byBob))).toBe("room_not_admin");
    const bobLeaves = state(bob, 3n, v2, [v2.members[0]]);
    expect(takeState(held, bobLeaves).current).toBe(bobLeaves);
    const bobRenamesAndLeaves = state(bob, 3n, v2, [v2.members[0]], "Other");
    expect(codeOf(() => takeState(held, bobRenamesAndLeaves))).toBe("room_not_admin");
    const skipped = state(alice, 7n, v2, v2.members, "Renamed");
    expect(takeState(held, skipped).current).toBe(skipped); // versions may be skipped
    const otherRoom = signRoomState(alice, { ...v1, room: RoomId.fromBytes(new Uint8Array(16)) });
    expect(codeOf(() => takeState(held, otherRoom))).toBe("room_wrong_room");
  });

  it("two admins editing at once end with the same state, whatever the order", () => {
    const withBobAdmin = state(alice, 3n, v2, [v2.members[0], { id: bob.id, name: "Bob", role: "admin" }]);
    const base = { current: withBobAdmin, parent: v2 };
    const editA = state(alice, 4n, withBobAdmin, [...withBobAdmin.members, { id: carol.id, name: "Carol", role: "member" }]);
    const editB = state(bob, 4n, withBobAdmin, withBobAdmin.members, "Bob's club");
    const take = (first: RoomState, second: RoomState) => {
      const h = takeState(base, first);
      try {
        return takeState(h, second).current;
      } catch (e) {
        expect(isProtocolError(e, "room_stale")).toBe(true);
        return h.current;
      }
    };
    const winner = take(editA, editB);
    expect(take(editB, editA)).toBe(winner);
    expect(hexEncode(roomStateHash(winner)) < hexEncode(roomStateHash(winner === editA ? editB : editA))).toBe(true);
  });

  it("refuses messages with bad text and takes reply_to", () => {
    expect(codeOf(() => signRoomMessage(bob, { room: ROOM, seq: 1n, tsMs: 0n, text: "\u001b[2J" }))).toBe("room_invalid");
    expect(codeOf(() => signRoomMessage(bob, { room: ROOM, seq: 0n, tsMs: 0n, text: "x" }))).toBe("room_invalid");
    expect(codeOf(() => signRoomMessage(bob, { room: ROOM, seq: 1n, tsMs: 0n, text: "x".repeat(8193) }))).toBe("room_invalid");
    const reply = signRoomMessage(bob, { room: ROOM, seq: 2n, tsMs: 0n, text: "yes\n\tok", replyTo: new Uint8Array(16).fill(0xcd) });
    const parsed = parseRoomMessage(encodeRoomMessage(reply));
    expect(roomMessageId(parsed)).toBe(roomMessageId(reply));
    expect(encodeRoomMessage(parsed)).toContain(`"reply_to":"${"cd".repeat(16)}"`);
    expect(CallId.parse(parsed.sender.text).equals(bob.id)).toBe(true);
  });
});
