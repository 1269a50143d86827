// The page's plan of a room's call (app/rooms/mesh.ts, §21.5): join to every other member,
// here in answer to a join, the smaller key offers with the pair token of §21.7, offers checked
// against announced pairs, drops on leave, rejoin, removal and timeout.
import { describe, expect, it } from "vitest";
import { Mesh, MeshError, PAIR_TIMEOUT_MS } from "../src/app/rooms/mesh.ts";
import { hexEncode } from "../src/protocol/encoding.ts";
import { Identity } from "../src/protocol/identity.ts";
import { RoomId, roomStateHash, signRoomState, type RoomState } from "../src/protocol/room.ts";
import { range } from "./doc.ts";
import { alice, bob } from "./fixtures.ts";

const carol = Identity.fromSeed(range(0x40, 32));
const ROOM = RoomId.fromBytes(range(0xa0, 16));
const S1 = new Uint8Array(16).fill(0x11);
const S2 = new Uint8Array(16).fill(0x22);
const S3 = new Uint8Array(16).fill(0x33);

const v1 = signRoomState(alice, { room: ROOM, version: 1n, prev: new Uint8Array(32), tsMs: 1n, name: "Band", members: [{ id: alice.id, name: "Alice", role: "admin" }] });
const state: RoomState = signRoomState(alice, {
  room: ROOM,
  version: 2n,
  prev: roomStateHash(v1),
  tsMs: 2n,
  name: "Band",
  members: [...v1.members, { id: bob.id, name: "Bob", role: "member" }, { id: carol.id, name: "Carol", role: "member" }],
});

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof MeshError) return e.code;
    throw e;
  }
  return "ok";
}

describe("a room call's mesh plan", () => {
  it("joins every other member, and the smaller key offers with the §21.7 pair token", () => {
    const mesh = new Mesh(alice.id, ROOM, S1);
    const joins = mesh.start(state).map((a) => (a.type === "announce" ? `${a.to.text} ${a.body.op}` : a.type));
    expect(joins.sort()).toEqual([`${bob.id.text} join`, `${carol.id.text} join`].sort());
    const actions = mesh.onRoomCall(bob.id, { room: ROOM, session: S2, op: "here" }, state, 0);
    expect(actions).toHaveLength(1);
    const offer = actions[0];
    expect(offer.type === "offer" && [offer.peer.text, hexEncode(offer.token)]).toEqual([bob.id.text, "912db3172f99d79ab504d1f8e40f89f1"]);
  });

  it("the larger key answers here to a join and waits for the offer, taking only the pair's token", () => {
    const mesh = new Mesh(bob.id, ROOM, S2);
    const actions = mesh.onRoomCall(alice.id, { room: ROOM, session: S1, op: "join" }, state, 0);
    expect(actions.map((a) => a.type)).toEqual(["announce"]);
    expect(actions[0].type === "announce" && actions[0].body.op).toBe("here");
    const token = mesh.token(alice.id)!;
    expect(hexEncode(token)).toBe("912db3172f99d79ab504d1f8e40f89f1");
    expect(code(() => mesh.checkOffer(alice.id, token, state))).toBe("ok");
    expect(code(() => mesh.checkOffer(alice.id, new Uint8Array(16), state))).toBe("room_call_unexpected_offer");
    expect(code(() => mesh.checkOffer(carol.id, token, state))).toBe("room_call_unexpected_offer");
  });

  it("refuses announcements from non-members and for other rooms", () => {
    const mesh = new Mesh(alice.id, ROOM, S1);
    const stranger = Identity.fromSeed(range(0x60, 32)).id;
    expect(code(() => mesh.onRoomCall(stranger, { room: ROOM, session: S2, op: "join" }, state, 0))).toBe("room_call_not_member");
    expect(code(() => mesh.onRoomCall(bob.id, { room: RoomId.fromBytes(new Uint8Array(16)), session: S2, op: "join" }, state, 0))).toBe("room_call_wrong_room");
  });

  it("drops a pair on leave (its current session only), on rejoin, on removal and when it never connects", () => {
    const mesh = new Mesh(alice.id, ROOM, S1);
    mesh.onRoomCall(bob.id, { room: ROOM, session: S2, op: "join" }, state, 0);
    expect(mesh.onRoomCall(bob.id, { room: ROOM, session: S3, op: "leave" }, state, 1)).toEqual([]);
    const rejoin = mesh.onRoomCall(bob.id, { room: ROOM, session: S3, op: "join" }, state, 2).map((a) => a.type);
    expect(rejoin).toEqual(["announce", "drop", "offer"]);
    expect(mesh.onRoomCall(bob.id, { room: ROOM, session: S3, op: "leave" }, state, 3)).toEqual([{ type: "drop", peer: bob.id, reason: "left" }]);

    mesh.onRoomCall(bob.id, { room: ROOM, session: S2, op: "here" }, state, 10);
    mesh.onRoomCall(carol.id, { room: ROOM, session: S3, op: "here" }, state, 20);
    mesh.onConnected(carol.id);
    expect(mesh.pollTimeout()).toBe(10 + PAIR_TIMEOUT_MS);
    expect(mesh.poll(10 + PAIR_TIMEOUT_MS)).toEqual([{ type: "drop", peer: bob.id, reason: "timeout" }]);
    const without = signRoomState(alice, { ...state, version: 3n, prev: roomStateHash(state), members: state.members.filter((m) => !m.id.equals(carol.id)) });
    expect(mesh.onState(without)).toEqual([{ type: "drop", peer: carol.id, reason: "removed" }]);
    expect(mesh.pollTimeout()).toBeUndefined();
  });
});
