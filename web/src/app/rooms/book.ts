/**
 * The page's rooms as plain state (the browser's counterpart of `call`'s `RoomBook`): what
 * arrives in `room_state` and `room_message` envelopes is checked against the room state held
 * (§21.3 for states, §21.4 for messages, each sender's order through a {@link RoomInbox}), and
 * sending gives the envelopes to seal, one per other member, exactly as `call room send`.
 * Sans-IO: no sockets, no storage, no clock (`nowMs` is an argument); the panel persists what
 * the events say changed.
 */
import { CallId } from "../../protocol/callid.ts";
import { utf8 } from "../../protocol/encoding.ts";
import type { EnvelopeKind } from "../../protocol/envelope.ts";
import type { Identity } from "../../protocol/identity.ts";
import { RoomInbox } from "../../protocol/inbox.ts";
import type { StoredRoom } from "../../store/rooms.ts";
import {
  encodeRoomMessage,
  encodeRoomState,
  type HeldRoom,
  parseRoomMessage,
  parseRoomState,
  type RoomId,
  type RoomMessage,
  roomMessageId,
  signRoomMessage,
  takeFirstState,
  takeState,
} from "../../protocol/room.ts";

/** Most rooms the page holds; invitations beyond it are refused (as `call`: 256). */
export const MAX_ROOMS = 256;

/** One room as the page keeps it. */
export interface RoomEntry {
  held: HeldRoom;
  /** A newer state no longer lists this browser's identity. */
  removed: boolean;
  /** The `seq` of this identity's next message in the room (never reused). */
  nextSeq: bigint;
}

/** What changed. */
export type RoomEvent =
  | { type: "joined"; room: RoomId; by: CallId }
  | { type: "updated"; room: RoomId; version: bigint }
  | { type: "removed"; room: RoomId }
  /** A new message was taken into the inbox (kept until released, so a reload loses nothing). */
  | { type: "waiting"; room: RoomId; msg: RoomMessage }
  | { type: "message"; room: RoomId; msg: RoomMessage; id: string };

/** One envelope to seal and send. */
export interface Outgoing {
  to: CallId;
  kind: Extract<EnvelopeKind, "room_state" | "room_message">;
  body: Uint8Array;
}

/** A local refusal (the protocol ones are `ProtocolError`s with §21.6 codes). */
export class RoomBookError extends Error {
  constructor(
    /** `room_unknown`, `room_wrong_sender`, `room_sender_not_member`, `room_too_many`, `room_not_allowed`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "RoomBookError";
  }
}

interface Slot {
  entry: RoomEntry;
  inbox: RoomInbox;
}

/** The rooms of one identity. */
export class RoomBook {
  private readonly slots = new Map<string, Slot>();

  constructor(readonly me: CallId) {}

  /**
   * A room kept from an earlier visit; `highest` is the highest stored `seq` per sender,
   * `waiting` the messages that were waiting for an earlier one (they wait again from `nowMs`).
   */
  restore(entry: RoomEntry, highest: Map<string, bigint>, waiting: RoomMessage[] = [], nowMs = 0): void {
    const inbox = new RoomInbox();
    for (const [sender, seq] of highest) inbox.resume(sender, seq);
    for (const msg of waiting) inbox.insert(msg, nowMs);
    this.slots.set(entry.held.current.room.text, { entry, inbox });
  }

  /** Every room held. */
  rooms(): RoomEntry[] {
    return [...this.slots.values()].map((s) => s.entry);
  }

  /** The room with this ID text, if held. */
  room(room: string): RoomEntry | undefined {
    return this.slots.get(room)?.entry;
  }

  /** An envelope of a room kind from `from` (authenticated by the envelope). Throws on refusal. */
  receive(from: CallId, kind: EnvelopeKind, plaintext: Uint8Array, nowMs: number): RoomEvent[] {
    if (kind === "room_state") return this.receiveState(from, plaintext);
    if (kind === "room_message") {
      const msg = parseRoomMessage(plaintext);
      if (!msg.sender.equals(from)) throw new RoomBookError("room_wrong_sender", "a room message signed by someone other than its sender: refused");
      return this.receiveMessage(msg, nowMs);
    }
    return [];
  }

  private receiveState(from: CallId, plaintext: Uint8Array): RoomEvent[] {
    const state = parseRoomState(plaintext);
    const room = state.room;
    const slot = this.slots.get(room.text);
    if (slot) {
      const held = takeState(slot.entry.held, state);
      if (held === slot.entry.held) return [];
      const listed = held.current.members.some((m) => m.id.equals(this.me));
      const wasRemoved = slot.entry.removed;
      slot.entry = { ...slot.entry, held, removed: !listed };
      if (!listed && !wasRemoved) return [{ type: "removed", room }];
      return [{ type: "updated", room, version: held.current.version }];
    }
    // An invitation: only its signer may hand it over, so a member cannot forward an old
    // state to re-add someone who left (§21.3).
    if (this.slots.size >= MAX_ROOMS) throw new RoomBookError("room_too_many", `already in ${MAX_ROOMS} rooms: leave one first`);
    const held = takeFirstState(state, this.me, from);
    this.slots.set(room.text, { entry: { held, removed: false, nextSeq: 1n }, inbox: new RoomInbox() });
    return [{ type: "joined", room, by: from }];
  }

  /** A verified message (through the server or, in the room's call, a data channel). */
  receiveMessage(msg: RoomMessage, nowMs: number): RoomEvent[] {
    const slot = this.slots.get(msg.room.text);
    if (!slot) throw new RoomBookError("room_unknown", "a message for a room this page does not hold was dropped");
    if (!slot.entry.held.current.members.some((m) => m.id.equals(msg.sender))) {
      throw new RoomBookError("room_sender_not_member", "a message from someone who is not a member of the room was dropped");
    }
    if (slot.inbox.insert(msg, nowMs) === "duplicate") return [];
    return [{ type: "waiting", room: msg.room, msg }, ...this.poll(nowMs)];
  }

  /** Messages whose wait for an earlier one is over, in each sender's order. */
  poll(nowMs: number): RoomEvent[] {
    const out: RoomEvent[] = [];
    for (const slot of this.slots.values()) {
      for (let msg = slot.inbox.poll(nowMs); msg; msg = slot.inbox.poll(nowMs)) {
        out.push({ type: "message", room: msg.room, msg, id: roomMessageId(msg) });
      }
    }
    return out;
  }

  /** When {@link RoomBook.poll} next has something (ms), if anything waits. */
  pollTimeout(): number | undefined {
    let due: number | undefined;
    for (const s of this.slots.values()) {
      const at = s.inbox.pollTimeout();
      if (at !== undefined) due = due === undefined ? at : Math.min(due, at);
    }
    return due;
  }

  /** Signs `text` as `me`'s next message in `room`; one envelope per other member of the state held. */
  send(me: Identity, room: string, text: string, nowMs: number): { msg: RoomMessage; id: string; out: Outgoing[] } {
    const slot = this.slots.get(room);
    if (!slot) throw new RoomBookError("room_unknown", "no such room here");
    const state = slot.entry.held.current;
    if (slot.entry.removed || !state.members.some((m) => m.id.equals(me.id))) throw new RoomBookError("room_not_allowed", "you are no longer a member of this room");
    const msg = signRoomMessage(me, { room: state.room, seq: slot.entry.nextSeq, tsMs: BigInt(nowMs), text });
    slot.entry = { ...slot.entry, nextSeq: slot.entry.nextSeq + 1n };
    // Our own (sender, seq) counts as seen: the same message coming back over a data channel is a duplicate.
    slot.inbox.resume(me.id.text, msg.seq);
    const body = utf8(encodeRoomMessage(msg));
    const out = state.members.filter((m) => !m.id.equals(me.id)).map((m): Outgoing => ({ to: m.id, kind: "room_message", body }));
    return { msg, id: roomMessageId(msg), out };
  }
}

/** What the store keeps of a room entry (states as their signed JSON, re-verified on load). */
export type RoomRecord = StoredRoom;

/** The record of `entry`. */
export function roomRecord(entry: RoomEntry): RoomRecord {
  const { current, parent } = entry.held;
  return {
    room: current.room.text,
    current: encodeRoomState(current),
    parent: parent ? encodeRoomState(parent) : null,
    removed: entry.removed,
    nextSeq: entry.nextSeq.toString(),
  };
}

/** The entry of a stored record; throws if the record no longer verifies (then it is skipped). */
export function roomEntry(r: RoomRecord): RoomEntry {
  const current = parseRoomState(r.current);
  const held: HeldRoom = r.parent ? { current, parent: parseRoomState(r.parent) } : { current };
  if (current.room.text !== r.room) throw new RoomBookError("room_unknown", "a stored room under another room's key");
  return { held, removed: r.removed, nextSeq: BigInt(r.nextSeq) };
}

