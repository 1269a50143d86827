/**
 * The page in a room's call (§21.5): the {@link Mesh} plan driven with real sessions, one
 * {@link Call} (the 1:1 call's verified offer/answer, fingerprint and certificate checks, `chat`
 * channel) per other member in the call, each with its own copy of the local audio. Room
 * messages go on the pairs' channels as `room_msg` frames (§19.6); frames arriving are checked
 * (this room, sent by the pair's own peer: no relaying) and handed to the rooms panel.
 */
import { parseCandidate, parseHangup } from "../../protocol/callbody.ts";
import type { CallId } from "../../protocol/callid.ts";
import { bytesEqual, utf8 } from "../../protocol/encoding.ts";
import type { OpenedEnvelope } from "../../protocol/envelope.ts";
import { isProtocolError } from "../../protocol/errors.ts";
import type { Identity } from "../../protocol/identity.ts";
import type { JsonObject } from "../../protocol/json.ts";
import { parseSignedSdp } from "../../protocol/sdp.ts";
import { encodeRoomCall, parseRoomCall, parseRoomMessage, type RoomId, type RoomMessage, type RoomState } from "../../protocol/room.ts";

import { Call, type CallEvents, type CallState, verifyOffer } from "../call.ts";
import type { Connection, TurnCredentials } from "../connection.ts";
import { ToneMeter } from "../media.ts";
import { Mesh, MeshError, type MeshAction, PAIR_TIMEOUT_MS } from "./mesh.ts";

/** What the room's call needs from the rooms panel. */
export interface RoomCallHost {
  /** The room state held now. */
  state(): RoomState | undefined;
  /** A verified room message that came over a pair's channel. */
  roomMessage(msg: RoomMessage): void;
  /** Something to show changed (peers, states). */
  changed(): void;
  /** A refusal, for the counters. */
  ignored(code: string): void;
}

interface Peer {
  id: CallId;
  call: Call | null;
  state: CallState | "announced";
  audio: HTMLAudioElement | null;
  meter: ToneMeter | null;
}

/** One join of a room's call. */
export class RoomCall {
  private readonly mesh: Mesh;
  private readonly peers = new Map<string, Peer>();
  private readonly timer: ReturnType<typeof setInterval>;
  private left = false;

  constructor(
    private readonly conn: Connection,
    private readonly me: Identity,
    readonly room: RoomId,
    private readonly local: MediaStream,
    private readonly turn: TurnCredentials | null,
    private readonly host: RoomCallHost,
    private readonly audioBox: HTMLElement,
  ) {
    this.mesh = new Mesh(me.id, room, crypto.getRandomValues(new Uint8Array(16)));
    this.timer = setInterval(() => this.run(this.mesh.poll(Date.now())), 1_000);
  }

  /** Sends `join` to every other member of the state held. */
  start(): void {
    const state = this.host.state();
    if (state) this.run(this.mesh.start(state));
  }

  /** The peers in the call and their session's state. */
  list(): { id: string; state: string }[] {
    return [...this.peers.values()].map((p) => ({ id: p.id.text, state: p.state }));
  }

  /** Power share near `hz` in `peer`'s audio, and its loudest frequency. */
  tone(peer: string, hz: number): { share: number; peakHz: number } | null {
    return this.peers.get(peer)?.meter?.measure(hz) ?? null;
  }

  /** A room message's JSON to `to` over its pair's channel; `false` when there is no open one. */
  sendRoomMsg(to: CallId, messageJson: string): boolean {
    return this.peers.get(to.text)?.call?.sendRoomMsg(messageJson) ?? false;
  }

  /** A newer room state: members no longer in it leave the call. */
  onState(state: RoomState): void {
    this.run(this.mesh.onState(state));
  }

  /**
   * An envelope while in the call: `room_call` for this room, an offer whose token is an
   * announced pair's, and the pair peers' answers and hang-ups. `false` for anything else.
   */
  async handleEnvelope(opened: OpenedEnvelope): Promise<boolean> {
    const e = opened.envelope;
    const state = this.host.state();
    if (this.left || !state) return false;
    if (e.kind === "room_call") {
      try {
        const body = parseRoomCall(opened.plaintext);
        if (!bytesEqual(body.room.bytes, this.room.bytes)) return false;
        this.run(this.mesh.onRoomCall(e.from, body, state, Date.now()));
      } catch (err) {
        this.host.ignored(err instanceof MeshError || isProtocolError(err) ? err.code : "room_call_refused");
      }
      return true;
    }
    const token = this.mesh.token(e.from);
    if (!token) return false;
    if (e.kind === "offer") {
      let incoming;
      try {
        incoming = verifyOffer(opened, this.me);
        if (!bytesEqual(incoming.offer.callToken, token)) return false;
        this.mesh.checkOffer(e.from, incoming.offer.callToken, state);
      } catch (err) {
        this.host.ignored(err instanceof MeshError || isProtocolError(err) ? err.code : "sdp_invalid");
        return true;
      }
      const peer = this.peer(e.from);
      await Call.accept(this.conn, this.me, incoming, this.local.clone(), this.options(peer, token), this.events(peer));
      return true;
    }
    const call = this.peers.get(e.from.text)?.call;
    // Only what carries this pair's token: a 1:1 call with the same member keeps its own.
    const carried = bodyToken(e.kind, opened.plaintext);
    if (!call || !carried || !bytesEqual(carried, token)) return false;
    return call.handleEnvelope(opened);
  }

  /** Leaves: `leave` to every peer, every session hung up. */
  leave(): void {
    if (this.left) return;
    this.left = true;
    clearInterval(this.timer);
    this.run(this.mesh.leave());
    for (const p of this.peers.values()) this.close(p);
    this.peers.clear();
    for (const t of this.local.getTracks()) t.stop();
    this.host.changed();
  }

  private peer(id: CallId): Peer {
    let p = this.peers.get(id.text);
    if (!p) {
      p = { id, call: null, state: "announced", audio: null, meter: null };
      this.peers.set(id.text, p);
    }
    return p;
  }

  private close(p: Peer): void {
    const call = p.call;
    p.call = null;
    call?.hangup();
    p.audio?.remove();
    p.audio = null;
    p.meter = null;
  }

  private run(actions: MeshAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case "announce":
          if (this.conn.ready) this.conn.send(a.to, "room_call", utf8(encodeRoomCall(a.body)));
          if (a.body.op !== "leave") this.peer(a.to);
          break;
        case "offer": {
          const peer = this.peer(a.peer);
          void Call.dial(this.conn, this.me, a.peer, this.local.clone(), this.options(peer, a.token), this.events(peer)).catch((err: unknown) => {
            console.info(`room call: could not offer to ${a.peer.text}: ${(err as Error).message}`);
            this.lost(peer);
          });
          break;
        }
        case "drop": {
          const p = this.peers.get(a.peer.text);
          if (p) {
            this.close(p);
            this.peers.delete(a.peer.text);
          }
          break;
        }
      }
    }
    this.host.changed();
  }

  private options(peer: Peer, token: Uint8Array) {
    return {
      turn: this.turn,
      relayOnly: false,
      connectTimeoutMs: PAIR_TIMEOUT_MS,
      token,
      created: (call: Call) => {
        if (peer.call && peer.call !== call) peer.call.hangup();
        peer.call = call;
      },
    };
  }

  /** A pair's session ended or failed: forgotten (a new announcement may set it up again). */
  private lost(peer: Peer): void {
    if (this.peers.get(peer.id.text) !== peer) return;
    this.close(peer);
    this.run(this.mesh.onLost(peer.id));
  }

  private events(peer: Peer): CallEvents {
    let mine: Call | null = null;
    return {
      state: (state, call) => {
        mine = call;
        if (peer.call !== call) return;
        peer.state = state;
        if (state === "connected") this.mesh.onConnected(peer.id);
        this.host.changed();
      },
      remoteStream: (stream) => {
        if (peer.audio) return;
        // Chromium feeds remote WebRTC audio to WebAudio only while a media element plays it.
        const audio = document.createElement("audio");
        audio.autoplay = true;
        audio.srcObject = stream;
        this.audioBox.append(audio);
        peer.audio = audio;
        if (stream.getAudioTracks().length > 0) peer.meter = new ToneMeter(stream);
      },
      chat: () => this.host.ignored("room_call_chat_text"),
      ended: () => {
        if (mine === null || peer.call === mine) this.lost(peer);
      },
      ignored: (code) => this.host.ignored(code),
      roomMsg: (msg: JsonObject) => this.roomMsg(peer, msg),
    };
  }

  /** §19.6: a verified message of this room, sent by this pair's own peer. */
  private roomMsg(peer: Peer, obj: JsonObject): void {
    let msg: RoomMessage;
    try {
      msg = parseRoomMessage(obj);
    } catch (err) {
      return this.host.ignored(isProtocolError(err) ? err.code : "room_malformed");
    }
    if (!bytesEqual(msg.room.bytes, this.room.bytes)) return this.host.ignored("room_msg_wrong_room");
    if (!msg.sender.equals(peer.id)) return this.host.ignored("room_msg_relayed");
    this.host.roomMessage(msg);
  }
}

/** The call token an `answer`, `hangup`, `reject` or `candidate` body carries, or `null`. */
function bodyToken(kind: string, plaintext: Uint8Array): Uint8Array | null {
  try {
    if (kind === "answer") return parseSignedSdp(plaintext).callToken;
    if (kind === "hangup" || kind === "reject") return parseHangup(plaintext).callToken;
    if (kind === "candidate") return parseCandidate(plaintext).callToken;
  } catch {
    return null;
  }
  return null;
}
