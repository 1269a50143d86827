/**
 * Who talks to whom in a room's call (§21.5), as plain state: fed the `room_call`
 * announcements, offers, connection changes and room states that arrive, with `nowMs`, it
 * answers with actions for the page (announce, offer, drop). The browser's port of `call`'s
 * `rooms::mesh::Mesh`: each pair of members sets up one ordinary verified session, the member
 * whose key bytes are smaller offers, and the offer's `call_id` is the pair token.
 */
import type { CallId } from "../../protocol/callid.ts";
import { bytesEqual } from "../../protocol/encoding.ts";
import { type RoomCall, type RoomId, roomPairToken, type RoomState } from "../../protocol/room.ts";

/** A pair not connected this long after its announcement is dropped (§21.5). */
export const PAIR_TIMEOUT_MS = 20_000;

/** Why a peer left the call. */
export type DropReason = "left" | "rejoined" | "removed" | "lost" | "timeout";

/** What the page should do. */
export type MeshAction =
  | { type: "announce"; to: CallId; body: RoomCall }
  | { type: "offer"; peer: CallId; token: Uint8Array }
  | { type: "drop"; peer: CallId; reason: DropReason };

interface Pair {
  peer: CallId;
  session: Uint8Array;
  token: Uint8Array;
  state: "offering" | "awaiting_offer" | "connected";
  sinceMs: number;
}

/** A refused announcement or offer (the code is counted, nothing is answered). */
export class MeshError extends Error {
  constructor(
    /** `room_call_wrong_room`, `room_call_not_member`, `room_call_unexpected_offer`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "MeshError";
  }
}

/** One member's part in a room's call. */
export class Mesh {
  private readonly pairs = new Map<string, Pair>();

  constructor(
    readonly me: CallId,
    readonly room: RoomId,
    /** This join's 16 random bytes. */
    readonly session: Uint8Array,
  ) {}

  private body(op: RoomCall["op"]): RoomCall {
    return { room: this.room, session: this.session, op };
  }

  /** Joining: a `join` to every other member of `state`. */
  start(state: RoomState): MeshAction[] {
    return state.members.filter((m) => !m.id.equals(this.me)).map((m): MeshAction => ({ type: "announce", to: m.id, body: this.body("join") }));
  }

  /** An announcement from `from` (authenticated by its envelope), checked against `state`. */
  onRoomCall(from: CallId, body: RoomCall, state: RoomState, nowMs: number): MeshAction[] {
    if (!bytesEqual(body.room.bytes, this.room.bytes) || !bytesEqual(state.room.bytes, this.room.bytes)) throw new MeshError("room_call_wrong_room", "an announcement for another room");
    if (from.equals(this.me) || !state.members.some((m) => m.id.equals(from))) throw new MeshError("room_call_not_member", "an announcement from someone who is not a member of the room");
    const out: MeshAction[] = [];
    const known = this.pairs.get(from.text);
    if (body.op === "leave") {
      if (known && bytesEqual(known.session, body.session)) {
        this.pairs.delete(from.text);
        out.push({ type: "drop", peer: from, reason: "left" });
      }
      return out;
    }
    if (body.op === "join") out.push({ type: "announce", to: from, body: this.body("here") });
    if (known && bytesEqual(known.session, body.session)) return out;
    if (known) out.push({ type: "drop", peer: from, reason: "rejoined" });
    const { token, offerer } = roomPairToken(this.room, this.me, this.session, from, body.session);
    const offering = offerer.equals(this.me);
    this.pairs.set(from.text, { peer: from, session: body.session, token, state: offering ? "offering" : "awaiting_offer", sinceMs: nowMs });
    if (offering) out.push({ type: "offer", peer: from, token });
    return out;
  }

  /** Whether an offer from `from` with `token` belongs to this call (§21.5 rule 4); throws if not. */
  checkOffer(from: CallId, token: Uint8Array, state: RoomState): void {
    if (!state.members.some((m) => m.id.equals(from))) throw new MeshError("room_call_not_member", "an offer from someone who is not a member of the room");
    const p = this.pairs.get(from.text);
    if (!p || p.state !== "awaiting_offer" || !bytesEqual(p.token, token)) throw new MeshError("room_call_unexpected_offer", "an offer this call does not expect");
  }

  /** The pair token of `peer`, if it is in the call. */
  token(peer: CallId): Uint8Array | undefined {
    return this.pairs.get(peer.text)?.token;
  }

  /** The pair's session is connected and verified. */
  onConnected(peer: CallId): void {
    const p = this.pairs.get(peer.text);
    if (p) p.state = "connected";
  }

  /** The pair's session failed or ended. */
  onLost(peer: CallId): MeshAction[] {
    return this.pairs.delete(peer.text) ? [{ type: "drop", peer, reason: "lost" }] : [];
  }

  /** A newer room state: members no longer in it are dropped. */
  onState(state: RoomState): MeshAction[] {
    const gone = [...this.pairs.values()].filter((p) => !state.members.some((m) => m.id.equals(p.peer)));
    for (const p of gone) this.pairs.delete(p.peer.text);
    return gone.map((p): MeshAction => ({ type: "drop", peer: p.peer, reason: "removed" }));
  }

  /** Pairs that did not connect in time. */
  poll(nowMs: number): MeshAction[] {
    const stale = [...this.pairs.values()].filter((p) => p.state !== "connected" && nowMs - p.sinceMs >= PAIR_TIMEOUT_MS);
    for (const p of stale) this.pairs.delete(p.peer.text);
    return stale.map((p): MeshAction => ({ type: "drop", peer: p.peer, reason: "timeout" }));
  }

  /** When {@link Mesh.poll} next has something (ms). */
  pollTimeout(): number | undefined {
    const due = [...this.pairs.values()].filter((p) => p.state !== "connected").map((p) => p.sinceMs + PAIR_TIMEOUT_MS);
    return due.length > 0 ? Math.min(...due) : undefined;
  }

  /** Leaving: a `leave` to every peer in the call. */
  leave(): MeshAction[] {
    const out = [...this.pairs.values()].map((p): MeshAction => ({ type: "announce", to: p.peer, body: this.body("leave") }));
    this.pairs.clear();
    return out;
  }
}
