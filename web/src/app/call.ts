/**
 * One 1:1 call around an `RTCPeerConnection`: the signed offer/answer of §5.1 (the page's own
 * DTLS fingerprint signed, the peer's verified and then checked against the certificate the
 * peer really presented), the interop rules of §18.8, the `chat` channel of §19, and the
 * hang-up rules of §5.4 (signed `hangup`/`reject`, the channel's `bye`). The page owns the
 * UI; this class reports through {@link CallEvents}.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { randomBytes } from "@noble/hashes/utils.js";
import { encodeHangup, parseHangup } from "../protocol/callbody.ts";
import type { CallId } from "../protocol/callid.ts";
import { encodeChatFrame, encodeRoomMsgFrame, parseChatFrame } from "../protocol/chat.ts";
import { bytesEqual, utf8 } from "../protocol/encoding.ts";
import type { OpenedEnvelope } from "../protocol/envelope.ts";
import { isProtocolError } from "../protocol/errors.ts";
import type { Identity } from "../protocol/identity.ts";
import type { JsonObject } from "../protocol/json.ts";
import { encodeSignedSdp, parseSignedSdp, type SignedSdp, signSdp, verifySignedSdp } from "../protocol/sdp.ts";
import type { Connection, TurnCredentials } from "./connection.ts";
import { unixNow } from "./connection.ts";
import { answerAsDtlsServer, audioPreferences, fingerprintOfDigest, videoPreferences } from "./interop.ts";

/** Where a call is. */
export type CallState = "dialing" | "ringing" | "connecting" | "connected" | "ended";

/** What a call tells the page. */
export interface CallEvents {
  state(state: CallState, call: Call): void;
  remoteStream(stream: MediaStream): void;
  chat(text: string): void;
  /** The call is over; `error` when it failed (verification, timeout, connection lost). */
  ended(message: string, error: boolean): void;
  /** An envelope or frame ignored or refused for this call (for the counters). */
  ignored(code: string): void;
  /** A `room_msg` frame (§19.6), only in a room's call; without it the frame is ignored. */
  roomMsg?(msg: JsonObject): void;
}

/** Options of a call. */
export interface CallOptions {
  turn: TurnCredentials | null;
  relayOnly: boolean;
  /** Give up when not connected within this many ms (the caller then sends `timeout`). */
  connectTimeoutMs: number;
  /**
   * Called with the call as soon as it exists, before the offer or answer is made (which waits
   * for ICE gathering), so that a hang-up arriving meanwhile reaches it.
   */
  created(call: Call): void;
  /** The call token to dial with (a room pair's, §21.5); a random one when absent. */
  token?: Uint8Array;
}

/** Longest wait for ICE gathering before signing what was gathered, ms. */
const GATHER_LIMIT_MS = 5_000;

/** An offer that passed §4.5 and §5.1, waiting for the user's answer. */
export interface IncomingOffer {
  from: CallId;
  offer: SignedSdp;
}

/** Parses and verifies an `offer` envelope (§5.1, the envelope's `from` as signer). */
export function verifyOffer(opened: OpenedEnvelope, me: Identity): IncomingOffer {
  const offer = parseSignedSdp(opened.plaintext);
  verifySignedSdp(offer, { signer: opened.envelope.from, me: me.id, role: "offer", callToken: offer.callToken, now: unixNow() });
  return { from: opened.envelope.from, offer };
}

/** Sends a `reject` for an offer the page will not take (`declined`, `busy`). */
export function rejectOffer(conn: Connection, incoming: IncomingOffer, reason: string): void {
  conn.send(incoming.from, "reject", utf8(encodeHangup({ callToken: incoming.offer.callToken, reason })));
}

/** One call. */
export class Call {
  readonly pc: RTCPeerConnection;
  private stateValue: CallState;
  private channel: RTCDataChannel | null = null;
  private expectedFingerprint: string | null = null;
  private nextTextId = 1n;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private ignoredCount = 0;
  private watchedDtls: RTCDtlsTransport | null = null;
  private iceConnected = false;
  private lastIgnored = "";
  /** The DTLS role this side's answer asked for (§18.4), when it answered. */
  answerSetup: "passive" | "active" | null = null;

  private constructor(
    private readonly conn: Connection,
    private readonly me: Identity,
    readonly peer: CallId,
    readonly token: Uint8Array,
    readonly isCaller: boolean,
    private readonly local: MediaStream,
    private readonly events: CallEvents,
    opts: CallOptions,
  ) {
    this.stateValue = isCaller ? "dialing" : "ringing";
    const iceServers = opts.turn ? [{ urls: opts.turn.urls, username: opts.turn.username, credential: opts.turn.password }] : [];
    this.pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: opts.relayOnly ? "relay" : "all", bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    this.pc.ontrack = (e) => this.events.remoteStream(e.streams[0] ?? new MediaStream([e.track]));
    this.pc.onconnectionstatechange = () => this.connectionChanged();
    this.pc.oniceconnectionstatechange = () => {
      const ice = this.pc.iceConnectionState;
      if (ice === "connected" || ice === "completed") this.iceConnected = true;
    };
    this.pc.ondatachannel = (e) => {
      // §19.1: the answerer uses the offerer's channel labelled `chat`; others are ignored.
      // Keyed by label: webrtc-rs and browsers number the same channel differently.
      if (!this.isCaller && e.channel.label === "chat" && !this.channel) this.wireChannel(e.channel);
    };
    this.timer = setTimeout(() => this.giveUp(), opts.connectTimeoutMs);
  }

  /** Dials `peer`: local media on, the `chat` channel created, a signed offer sent. */
  static async dial(conn: Connection, me: Identity, peer: CallId, local: MediaStream, opts: CallOptions, events: CallEvents): Promise<Call> {
    const call = new Call(conn, me, peer, opts.token ?? randomBytes(16), true, local, events, opts);
    opts.created(call);
    call.addLocalTracks(true);
    call.wireChannel(call.pc.createDataChannel("chat", { ordered: true }));
    await call.pc.setLocalDescription(await call.pc.createOffer());
    call.watchDtls();
    const sdp = await call.gathered();
    if (call.stateValue === "ended") return call;
    const signed = signSdp(me, peer, call.token, "offer", sdp, unixNow());
    conn.send(peer, "offer", utf8(encodeSignedSdp(signed)));
    events.state("dialing", call);
    return call;
  }

  /** Answers a verified offer: local media on, a signed answer sent. */
  static async accept(conn: Connection, me: Identity, incoming: IncomingOffer, local: MediaStream, opts: CallOptions, events: CallEvents): Promise<Call> {
    const call = new Call(conn, me, incoming.from, incoming.offer.callToken, false, local, events, opts);
    opts.created(call);
    call.expectedFingerprint = incoming.offer.fingerprint;
    await call.pc.setRemoteDescription({ type: "offer", sdp: incoming.offer.sdp });
    call.addLocalTracks(false);
    const answer = await call.pc.createAnswer();
    const sdp = answer.sdp ?? "";
    try {
      await call.pc.setLocalDescription({ type: "answer", sdp: answerAsDtlsServer(sdp) });
      call.answerSetup = "passive";
    } catch {
      // A browser that refuses the rewrite answers as DTLS client; `call` accepts that too.
      await call.pc.setLocalDescription({ type: "answer", sdp });
      call.answerSetup = "active";
    }
    call.watchDtls();
    const gathered = await call.gathered();
    if (call.stateValue === "ended") return call;
    conn.send(incoming.from, "answer", utf8(encodeSignedSdp(signSdp(me, incoming.from, call.token, "answer", gathered, unixNow()))));
    call.setState("connecting");
    return call;
  }

  /** The current state. */
  get state(): CallState {
    return this.stateValue;
  }

  /**
   * An envelope from the server while this call exists. Returns `false` when it is not for
   * this call (the page handles it: another caller's offer gets `busy`).
   */
  async handleEnvelope(opened: OpenedEnvelope): Promise<boolean> {
    const e = opened.envelope;
    if (e.kind === "offer") return false;
    // §5.4: only the peer's envelopes with this call's token count; the rest is ignored.
    if (!e.from.equals(this.peer)) return this.ignore("not_the_peer");
    if (e.kind === "answer") {
      if (!this.isCaller || this.stateValue !== "dialing") return this.ignore("unexpected_answer");
      let signed: SignedSdp;
      try {
        signed = parseSignedSdp(opened.plaintext);
      } catch (err) {
        return this.ignore(isProtocolError(err) ? err.code : "body_malformed");
      }
      if (!bytesEqual(signed.callToken, this.token)) return this.ignore("sdp_wrong_call");
      try {
        this.expectedFingerprint = verifySignedSdp(signed, { signer: this.peer, me: this.me.id, role: "answer", callToken: this.token, now: unixNow() });
      } catch (err) {
        const code = isProtocolError(err) ? err.code : "sdp_invalid";
        // §5.3: nothing is sent for a message that failed verification (it may not be the peer's).
        this.end(`Verification failed (${code}): the answer is not from the person you called, or was changed on the way. No media was sent.`, true, false);
        return true;
      }
      this.setState("connecting");
      try {
        await this.pc.setRemoteDescription({ type: "answer", sdp: signed.sdp });
      } catch (err) {
        this.end(`The answer could not be used: ${(err as Error).message}`, true);
      }
      return true;
    }
    if (e.kind === "hangup" || e.kind === "reject") {
      let body;
      try {
        body = parseHangup(opened.plaintext);
      } catch (err) {
        return this.ignore(isProtocolError(err) ? err.code : "body_malformed");
      }
      if (!bytesEqual(body.callToken, this.token)) return this.ignore("other_call");
      const message =
        body.reason === "busy" ? "The peer is busy (in another call)." : body.reason === "declined" ? "The peer declined the call." : `The peer hung up (${body.reason}).`;
      this.end(message, false, false);
      return true;
    }
    // `candidate`: §18.3, every candidate is in the signed SDP; trickled ones are not applied.
    return this.ignore(`${e.kind}_ignored`);
  }

  /** Sends one chat line (§19.3 `text`). Returns `false` when the channel is not open. */
  sendChat(text: string): boolean {
    if (!this.channel || this.channel.readyState !== "open") return false;
    const frame = encodeChatFrame({ t: "text", id: this.nextTextId++, tsMs: BigInt(Date.now()), text });
    this.sendFrame(frame);
    return true;
  }

  /** Sends a signed room message's JSON as a `room_msg` frame (§19.6); `false` when the channel is not open. */
  sendRoomMsg(messageJson: string): boolean {
    if (!this.channel || this.channel.readyState !== "open") return false;
    this.sendFrame(encodeRoomMsgFrame(messageJson));
    return true;
  }

  /** Microphone on/off (the track stays, silence is sent). */
  setMuted(muted: boolean): void {
    for (const t of this.local.getAudioTracks()) t.enabled = !muted;
  }

  /** Camera on/off (black frames are sent while off). */
  setCameraOff(off: boolean): void {
    for (const t of this.local.getVideoTracks()) t.enabled = !off;
  }

  /** Hangs up: `bye` on the channel, a signed `hangup`, everything closed. */
  hangup(reason = "hang-up"): void {
    if (this.stateValue === "ended") return;
    this.end("You hung up.", false, true, reason);
  }

  /** §19.2: frames go as binary messages, as `call` sends them. */
  private sendFrame(frame: string): void {
    this.channel?.send(new Uint8Array(utf8(frame)));
  }

  /** Ends the call with `message` as an error, telling the peer nothing (it cannot hear us). */
  abandon(message: string): void {
    this.end(message, true, false);
  }

  private ignore(code: string): boolean {
    this.ignoredCount++;
    this.lastIgnored = code;
    this.events.ignored(code);
    return true;
  }

  /** An envelope the connection dropped while this call waits (it may have been meant for it). */
  noteDropped(code: string): void {
    if (this.stateValue === "dialing") {
      this.ignoredCount++;
      this.lastIgnored = code;
    }
  }

  private addLocalTracks(caller: boolean): void {
    const audio = this.local.getAudioTracks()[0] ?? null;
    const video = this.local.getVideoTracks()[0] ?? null;
    if (caller) {
      // §18.1: audio first, then video, then the data channel; both sendrecv when we send.
      this.pc.addTransceiver(audio ?? "audio", { direction: audio ? "sendrecv" : "recvonly", streams: [this.local] });
      this.pc.addTransceiver(video ?? "video", { direction: video ? "sendrecv" : "recvonly", streams: [this.local] });
    } else {
      for (const t of this.pc.getTransceivers()) {
        const kind = t.receiver.track.kind;
        const track = kind === "audio" ? audio : video;
        if (track) {
          void t.sender.replaceTrack(track);
          t.sender.setStreams?.(this.local);
          t.direction = "sendrecv";
        } else {
          t.direction = "recvonly";
        }
      }
    }
    for (const t of this.pc.getTransceivers()) {
      const kind = t.receiver.track.kind;
      const caps = RTCRtpReceiver.getCapabilities(kind)?.codecs ?? [];
      const prefs = kind === "video" ? videoPreferences(caps) : audioPreferences(caps);
      if (prefs.length > 0 && t.setCodecPreferences) t.setCodecPreferences(prefs);
    }
  }

  /** Waits for ICE gathering to complete (§18.3: `call` applies only the signed candidates). */
  private async gathered(): Promise<string> {
    if (this.pc.iceGatheringState !== "complete") {
      await new Promise<void>((resolve) => {
        const limit = setTimeout(resolve, GATHER_LIMIT_MS);
        this.pc.addEventListener("icegatheringstatechange", () => {
          if (this.pc.iceGatheringState === "complete") {
            clearTimeout(limit);
            resolve();
          }
        });
      });
    }
    return this.pc.localDescription?.sdp ?? "";
  }

  private wireChannel(dc: RTCDataChannel): void {
    this.channel = dc;
    dc.binaryType = "arraybuffer";
    dc.onmessage = (m) => this.channelMessage(m.data);
    dc.onclose = () => {
      if (this.stateValue !== "ended") this.end("The peer hung up (the chat channel closed).", false, false);
    };
  }

  private channelMessage(data: ArrayBuffer | string): void {
    let received;
    try {
      received = parseChatFrame(typeof data === "string" ? data : new Uint8Array(data));
    } catch (err) {
      this.events.ignored(isProtocolError(err) ? err.code : "malformed");
      return;
    }
    if (received.kind === "ignored") {
      this.events.ignored(`chat_${received.type}`);
      return;
    }
    const f = received.frame;
    switch (f.t) {
      case "text":
        this.events.chat(f.text);
        break;
      case "ping":
        this.sendFrame(encodeChatFrame({ t: "pong", n: f.n }));
        break;
      case "bye":
        this.end(`The peer hung up (${f.reason}).`, false, false);
        break;
      case "room_msg":
        if (this.events.roomMsg) this.events.roomMsg(f.msg);
        else this.events.ignored("chat_room_msg");
        break;
      default:
        this.events.ignored(`chat_${f.t}`);
    }
  }

  private connectionChanged(): void {
    const s = this.pc.connectionState;
    if (s === "connected" && (this.stateValue === "connecting" || this.stateValue === "ringing")) void this.checkCertificate();
    this.watchDtls();
    if (s !== "failed" || this.stateValue === "ended") return;
    const dtls = this.dtlsTransport();
    // ICE found a path but DTLS never came up: the browser refuses a certificate that is not
    // the one in the (verified, signed) SDP, and fails the transport.
    if (this.stateValue !== "connected" && (dtls?.state === "failed" || this.iceConnected)) return this.dtlsFailed();
    this.end("The connection to the peer failed (no network path).", true);
  }

  private dtlsTransport(): RTCDtlsTransport | null {
    return this.pc.sctp?.transport ?? this.pc.getSenders().find((x) => x.transport)?.transport ?? null;
  }

  /** Ends the call as soon as the DTLS transport fails, and notes when ICE connects. */
  private watchDtls(): void {
    const dtls = this.dtlsTransport();
    if (!dtls || this.watchedDtls === dtls) return;
    this.watchedDtls = dtls;
    dtls.addEventListener("statechange", () => {
      if (dtls.state === "failed" && this.stateValue !== "connected" && this.stateValue !== "ended") this.dtlsFailed();
    });
    dtls.iceTransport?.addEventListener("statechange", () => {
      const ice = dtls.iceTransport.state;
      if (ice === "connected" || ice === "completed") this.iceConnected = true;
    });
  }

  private dtlsFailed(): void {
    this.end(
      "Verification failed (dtls_failed): the peer's certificate is not the one its signed SDP names, or the secure handshake failed. The call was refused; no media was exchanged.",
      true,
      false,
    );
  }

  /**
   * §5.1/§18.4: the certificate the peer presented must have the signed SHA-256 fingerprint.
   * The browser already refused any other than the SDP's; this checks it against the signed
   * value itself, as `call` does.
   */
  private async checkCertificate(): Promise<void> {
    const transport = this.pc.sctp?.transport ?? this.pc.getSenders()[0]?.transport ?? null;
    const certs = (transport as (RTCDtlsTransport & { getRemoteCertificates?: () => ArrayBuffer[] }) | null)?.getRemoteCertificates?.() ?? [];
    if (certs.length > 0) {
      const presented = fingerprintOfDigest(sha256(new Uint8Array(certs[0])));
      if (presented !== this.expectedFingerprint) {
        this.end("Verification failed (dtls_fingerprint_mismatch): the peer's certificate is not the one its signed SDP names. The call was refused.", true, false);
        return;
      }
    }
    if (this.timer) clearTimeout(this.timer);
    this.setState("connected");
  }

  private giveUp(): void {
    if (this.stateValue === "connected" || this.stateValue === "ended") return;
    const waiting = this.isCaller && this.stateValue === "dialing";
    const ignored = this.ignoredCount > 0 ? ` ${this.ignoredCount} message(s) for this call were ignored (last: ${this.lastIgnored}), so someone may be interfering.` : "";
    this.end(waiting ? `No answer: the peer did not answer in time.${ignored}` : `Could not connect to the peer in time.${ignored}`, true, true, "timeout");
  }

  private setState(state: CallState): void {
    if (this.stateValue === "ended" || this.stateValue === state) return;
    this.stateValue = state;
    this.events.state(state, this);
  }

  /** Ends the call once: tells the peer when `tell` (bye + signed hangup), closes everything. */
  private end(message: string, error: boolean, tell = true, reason = "hang-up"): void {
    if (this.stateValue === "ended") return;
    this.stateValue = "ended";
    if (this.timer) clearTimeout(this.timer);
    if (tell) {
      if (this.channel?.readyState === "open") this.sendFrame(encodeChatFrame({ t: "bye", reason }));
      if (this.conn.ready) this.conn.send(this.peer, "hangup", utf8(encodeHangup({ callToken: this.token, reason })));
    }
    // Let the bye leave before the transport goes.
    setTimeout(() => this.pc.close(), tell ? 100 : 0);
    for (const t of this.local.getTracks()) t.stop();
    this.events.state("ended", this);
    this.events.ended(message, error);
  }
}
