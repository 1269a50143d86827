// The page's rooms (app/rooms/book.ts) and their IndexedDB store (store/rooms.ts): invitations
// only from their signing admin, §21.3 on later states (never a non-admin's or an older one),
// removal, messages in each sender's order with duplicates dropped, sending as `call room send`
// does (one envelope per other member), and everything surviving a re-open of the store.
import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import { RoomBook, RoomBookError, roomEntry, roomRecord, type RoomEvent } from "../src/app/rooms/book.ts";
import { utf8, utf8Decode } from "../src/protocol/encoding.ts";
import { isProtocolError } from "../src/protocol/errors.ts";
import { Identity } from "../src/protocol/identity.ts";
import { encodeRoomMessage, encodeRoomState, parseRoomMessage, RoomId, roomStateHash, signRoomMessage, signRoomState, type RoomState } from "../src/protocol/room.ts";
import { RoomStore } from "../src/store/rooms.ts";
import { range } from "./doc.ts";
import { alice, bob } from "./fixtures.ts";

const carol = Identity.fromSeed(range(0x40, 32));
const ROOM = RoomId.fromBytes(range(0xa0, 16));

const v1 = signRoomState(alice, { room: ROOM, version: 1n, prev: new Uint8Array(32), tsMs: 1n, name: "Book club", members: [{ id: alice.id, name: "Alice", role: "admin" }] });
function next(prev: RoomState, signer: Identity, members: RoomState["members"], version = prev.version + 1n): RoomState {
  return signRoomState(signer, { room: ROOM, version, prev: roomStateHash(prev), tsMs: 2n, name: prev.name, members });
}
const v2 = next(v1, alice, [...v1.members, { id: bob.id, name: "Bob", role: "member" }]);
const v3 = next(v2, alice, [...v2.members, { id: carol.id, name: "Carol", role: "member" }]);
const json = (s: RoomState) => utf8(encodeRoomState(s));
const msgBody = (from: Identity, seq: bigint, text: string) => utf8(encodeRoomMessage(signRoomMessage(from, { room: ROOM, seq, tsMs: 5n, text })));

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isProtocolError(e) || e instanceof RoomBookError) return e.code;
    throw e;
  }
  return "ok";
}

const texts = (events: RoomEvent[]) => events.flatMap((e) => (e.type === "message" ? [e.msg.text] : []));

/** Bob's book after Alice's invitation (v2). */
function invitedBob(): RoomBook {
  const book = new RoomBook(bob.id);
  expect(book.receive(alice.id, "room_state", json(v2), 0)).toEqual([{ type: "joined", room: ROOM, by: alice.id }]);
  return book;
}

describe("the page's room book", () => {
  it("takes an invitation only from the admin who signed it and only if it lists this identity", () => {
    expect(refusal(() => new RoomBook(bob.id).receive(carol.id, "room_state", json(v2), 0))).toBe("room_not_admin");
    expect(refusal(() => new RoomBook(carol.id).receive(alice.id, "room_state", json(v2), 0))).toBe("room_not_a_member");
    const forged = encodeRoomState(v2).replace('"Bob"', '"Rob"');
    expect(refusal(() => new RoomBook(bob.id).receive(alice.id, "room_state", utf8(forged), 0))).toBe("room_bad_signature");
    expect(invitedBob().rooms().map((r) => r.held.current.version)).toEqual([2n]);
  });

  it("takes a newer admin state, refuses an older one and one a plain member made, and ignores the same one", () => {
    const book = invitedBob();
    expect(book.receive(alice.id, "room_state", json(v3), 0)).toEqual([{ type: "updated", room: ROOM, version: 3n }]);
    expect(refusal(() => book.receive(alice.id, "room_state", json(v2), 0))).toBe("room_stale");
    const byCarol = next(v3, carol, [...v3.members, { id: Identity.fromSeed(range(0x60, 32)).id, name: "Mallory", role: "admin" }]);
    expect(refusal(() => book.receive(carol.id, "room_state", json(byCarol), 0))).toBe("room_not_admin");
    expect(book.receive(alice.id, "room_state", json(v3), 0)).toEqual([]);
    expect(book.room(ROOM.text)!.held.current.version).toBe(3n);
  });

  it("a newer state without this identity says it was removed, and sending is refused after", () => {
    const book = invitedBob();
    const removed = next(v3, alice, v3.members.filter((m) => !m.id.equals(bob.id)), 4n);
    expect(book.receive(alice.id, "room_state", json(removed), 0)).toEqual([{ type: "removed", room: ROOM }]);
    expect(book.room(ROOM.text)!.removed).toBe(true);
    expect(refusal(() => book.send(bob, ROOM.text, "still here?", 0))).toBe("room_not_allowed");
  });

  it("releases each sender's messages in seq order and drops duplicates", () => {
    const book = invitedBob();
    expect(texts(book.receive(alice.id, "room_message", msgBody(alice, 2n, "second"), 0))).toEqual([]);
    expect(texts(book.receive(alice.id, "room_message", msgBody(alice, 1n, "first"), 10))).toEqual(["first", "second"]);
    expect(texts(book.receive(alice.id, "room_message", msgBody(alice, 1n, "first"), 20))).toEqual([]);
    // A gap is waited for 2 s, then skipped.
    expect(texts(book.receive(alice.id, "room_message", msgBody(alice, 4n, "fourth"), 30))).toEqual([]);
    expect(book.pollTimeout()).toBe(2_030);
    expect(texts(book.poll(2_030))).toEqual(["fourth"]);
  });

  it("refuses a message relayed by someone other than its sender, from a non-member, or for an unknown room", () => {
    const book = invitedBob();
    expect(refusal(() => book.receive(carol.id, "room_message", msgBody(alice, 1n, "x"), 0))).toBe("room_wrong_sender");
    expect(refusal(() => book.receive(carol.id, "room_message", msgBody(carol, 1n, "x"), 0))).toBe("room_sender_not_member");
    expect(refusal(() => new RoomBook(bob.id).receive(alice.id, "room_message", msgBody(alice, 1n, "x"), 0))).toBe("room_unknown");
  });

  it("sends a signed message to every other member of the state held, with a new seq each time", () => {
    const book = invitedBob();
    book.receive(alice.id, "room_state", json(v3), 0);
    const first = book.send(bob, ROOM.text, "hello @Alice", 1_000);
    const second = book.send(bob, ROOM.text, "again", 2_000);
    expect(first.out.map((o) => [o.to.text, o.kind])).toEqual([
      [alice.id.text, "room_message"],
      [carol.id.text, "room_message"],
    ]);
    const sent = parseRoomMessage(utf8Decode(first.out[0].body)!);
    expect([sent.sender.text, sent.seq, sent.text]).toEqual([bob.id.text, 1n, "hello @Alice"]);
    expect(second.msg.seq).toBe(2n);
    // Our own message coming back (over a data channel in a call) is a duplicate.
    expect(book.receiveMessage(first.msg, 3_000)).toEqual([]);
  });
});

describe("the rooms' IndexedDB store", () => {
  it("keeps rooms and history across a re-open; the book resumes without showing kept messages twice", async () => {
    const factory = new IDBFactory();
    const store = await RoomStore.open(factory, bob.id.text);
    const book = invitedBob();
    book.receive(alice.id, "room_message", msgBody(alice, 1n, "kept"), 0);
    const sent = book.send(bob, ROOM.text, "mine", 1);
    await store.saveRoom(roomRecord(book.room(ROOM.text)!));
    const base = { room: ROOM.text, tsMs: "5", receivedMs: 1 };
    expect(await store.addMessage({ ...base, id: "a", sender: alice.id.text, seq: "1", text: "kept", mine: false })).toBe(true);
    expect(await store.addMessage({ ...base, id: "a", sender: alice.id.text, seq: "1", text: "kept", mine: false })).toBe(false);
    expect(await store.addMessage({ ...base, id: sent.id, sender: bob.id.text, seq: "1", text: "mine", mine: true })).toBe(true);
    store.close();

    const again = await RoomStore.open(factory, bob.id.text);
    const [record] = await again.rooms();
    const restored = new RoomBook(bob.id);
    restored.restore(roomEntry(record), await again.highestSeqs(ROOM.text));
    expect((await again.history(ROOM.text)).map((m) => m.text)).toEqual(["kept", "mine"]);
    expect(texts(restored.receive(alice.id, "room_message", msgBody(alice, 1n, "kept"), 0))).toEqual([]);
    expect(texts(restored.receive(alice.id, "room_message", msgBody(alice, 2n, "new"), 0))).toEqual(["new"]);
    expect(restored.send(bob, ROOM.text, "next", 2).msg.seq).toBe(2n);
    // Another identity's rooms are another database.
    expect(await (await RoomStore.open(factory, alice.id.text)).rooms()).toEqual([]);
  });

  it("a message waiting for an earlier one is kept, and waits again after a re-open", async () => {
    const factory = new IDBFactory();
    const store = await RoomStore.open(factory, bob.id.text);
    const book = invitedBob();
    await store.saveRoom(roomRecord(book.room(ROOM.text)!));
    const events = book.receive(alice.id, "room_message", msgBody(alice, 2n, "second"), 0);
    expect(events.map((e) => e.type)).toEqual(["waiting"]);
    const w = events[0];
    if (w.type !== "waiting") throw new Error("a waiting event");
    await store.addWaiting(ROOM.text, alice.id.text, 2n, encodeRoomMessage(w.msg));
    store.close();

    const again = await RoomStore.open(factory, bob.id.text);
    const restored = new RoomBook(bob.id);
    const waiting = (await again.waiting(ROOM.text)).map((json) => parseRoomMessage(json));
    restored.restore(roomEntry((await again.rooms())[0]), await again.highestSeqs(ROOM.text), waiting, 5_000);
    expect(texts(restored.receive(alice.id, "room_message", msgBody(alice, 1n, "first"), 5_001))).toEqual(["first", "second"]);
    await again.removeWaiting(ROOM.text, alice.id.text, 2n);
    expect(await again.waiting(ROOM.text)).toEqual([]);
  });

  it("a stored state that no longer verifies is refused on load", () => {
    const record = roomRecord(invitedBob().room(ROOM.text)!);
    expect(() => roomEntry({ ...record, current: record.current.replace('"Bob"', '"Rob"') })).toThrow(/signature/);
  });
});
