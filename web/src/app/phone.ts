/**
 * The call part of the page: logs in to the server that served it, routes every verified
 * envelope (offers ring, everything else goes to the current call, §5.4), and drives the call
 * screen: incoming call with name, ID and safety number before answering; dialing; mute,
 * camera off, chat, live statistics, hang-up.
 */
import { CallId } from "../protocol/callid.ts";
import { type EnvelopeKind, MAILBOX_KINDS, type OpenedEnvelope } from "../protocol/envelope.ts";
import { isProtocolError } from "../protocol/errors.ts";
import type { Identity } from "../protocol/identity.ts";
import { safetyNumber } from "../protocol/safety.ts";
import type { KnownPeers } from "../store/peers.ts";
import { Call, type CallEvents, type CallOptions, type IncomingOffer, rejectOffer, verifyOffer } from "./call.ts";
import { Connection, ownServerUrl, type TurnCredentials, unixNow } from "./connection.ts";
import { el, grouped, humanMessage } from "./dom.ts";
import { installHook, type TestHook } from "./hook.ts";
import { MediaProblem, openLocalMedia, pictureVariance, ToneMeter } from "./media.ts";
import { type CallStats, sampleStats, statsLine } from "./stats.ts";


/** The phone: one connection, at most one call, at most one ringing offer. */
export class Phone {
  private conn: Connection | null = null;
  private me: Identity | null = null;
  private call: Call | null = null;
  private ringing: IncomingOffer | null = null;
  private meter: ToneMeter | null = null;
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  private lastStats: CallStats | null = null;
  private readonly hook: TestHook;
  private retry: ReturnType<typeof setTimeout> | null = null;
  /** When the ringing offer arrived (unix ms), for the timings. */
  private ringAt: number | null = null;

  /** Where `room_state` and `room_message` envelopes go (the rooms panel), instead of the calls. */
  roomEnvelopes: ((opened: OpenedEnvelope) => void) | null = null;
  /** A room's call (rooms panel): sees every other envelope first; `true` when it took it. */
  roomCall: ((opened: OpenedEnvelope) => Promise<boolean>) | null = null;

  constructor(private readonly peers: KnownPeers) {
    this.hook = installHook(
      (hz) => this.meter?.measure(hz) ?? null,
      () => pictureVariance(el<HTMLVideoElement>("remote-video")),
    );
    el("dial").addEventListener("click", () => void this.dial());
    el("accept").addEventListener("click", () => void this.answer(true));
    el("accept-audio").addEventListener("click", () => void this.answer(false));
    el("decline").addEventListener("click", () => this.decline());
    el("hangup").addEventListener("click", () => this.call?.hangup());
    el("mute").addEventListener("click", () => this.toggle("mute", (on) => this.call?.setMuted(on)));
    el("camera").addEventListener("click", () => this.toggle("camera", (on) => this.call?.setCameraOff(on)));
    el<HTMLFormElement>("chat-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.sendChat();
    });
  }

  /** Logs in as `me` (or logs out with `null`). */
  setIdentity(me: Identity | null): void {
    this.call?.hangup();
    this.conn?.close();
    this.conn = null;
    this.me = me;
    this.hook.myId = me?.id.text ?? null;
    this.hook.online = false;
    if (me) this.connect();
    else el("server-status").textContent = "Not connected (no identity).";
    this.updateDialButton();
  }

  /** Enables Call when logged in, idle, and the typed ID is valid. */
  updateDialButton(): void {
    let valid = false;
    try {
      valid = CallId.parse(el<HTMLInputElement>("peer-id").value) !== null;
    } catch {
      valid = false;
    }
    el<HTMLButtonElement>("dial").disabled = !(valid && this.hook.online && !this.call && !this.ringing);
  }

  private connect(): void {
    const me = this.me;
    if (!me) return;
    const url = ownServerUrl(location);
    el("server-status").textContent = `Connecting to ${url}…`;
    const conn: Connection = new Connection(url, me, {
      ready: () => {
        this.hook.online = true;
        el("server-status").textContent = `Online at ${url}: people can call you now.`;
        this.updateDialButton();
      },
      envelope: (opened) => void this.route(opened),
      dropped: (code) => {
        this.count(code);
        this.call?.noteDropped(code);
      },
      serverError: (code, message) => this.serverError(code, message),
      closed: (code, message) => {
        if (this.conn !== conn) return;
        this.hook.online = false;
        this.updateDialButton();
        el("server-status").textContent =
          code === "replaced" ? "Disconnected: this identity logged in elsewhere (another tab or `call`)." : `Disconnected from the server (${humanMessage(message)}); retrying in 3 s.`;
        if (code !== "replaced") this.retry = setTimeout(() => this.connect(), 3_000);
      },
    });
    if (this.retry) clearTimeout(this.retry);
    this.conn = conn;
  }

  /** Seals and sends an envelope if logged in; `false` when offline. */
  sendEnvelope(to: CallId, kind: EnvelopeKind, body: Uint8Array): boolean {
    if (!this.conn?.ready) return false;
    this.conn.send(to, kind, body);
    return true;
  }

  /** The logged-in connection, or `null` (a room's call sets its sessions up over it). */
  get connection(): Connection | null {
    return this.conn?.ready ? this.conn : null;
  }

  private count(code: string): void {
    this.hook.ignored[code] = (this.hook.ignored[code] ?? 0) + 1;
  }

  private serverError(code: string, message: string): void {
    if (code === "not_online" && this.call?.state === "dialing") {
      const message = "The person you are calling is offline (not connected to this server).";
      this.showError("dial-error", message);
      this.call.abandon(message);
      return;
    }
    this.count(`server_${code}`);
    console.info(`server error ${code}: ${message}`);
  }

  private showError(id: string, message: string | null): void {
    el(id).textContent = message ?? "";
    el(id).hidden = message === null;
    if (message !== null) this.hook.lastError = message;
  }

  private async route(opened: OpenedEnvelope): Promise<void> {
    const me = this.me;
    const conn = this.conn;
    if (!me || !conn) return;
    if (this.roomEnvelopes && MAILBOX_KINDS.includes(opened.envelope.kind)) return this.roomEnvelopes(opened);
    if (this.roomCall && (await this.roomCall(opened))) return;
    if (this.call && (await this.call.handleEnvelope(opened))) return;
    const e = opened.envelope;
    if (e.kind === "offer") {
      let incoming: IncomingOffer;
      try {
        incoming = verifyOffer(opened, me);
      } catch (err) {
        // §5.3: an offer that fails verification gets no answer.
        this.count(isProtocolError(err) ? err.code : "sdp_invalid");
        return;
      }
      if (this.call || this.ringing) {
        rejectOffer(conn, incoming, "busy");
        this.count("busy_rejected");
        return;
      }
      await this.ring(incoming);
      return;
    }
    if ((e.kind === "hangup" || e.kind === "reject") && this.ringing && e.from.equals(this.ringing.from)) {
      // The caller gave up (or hung up) while we were asking.
      this.stopRinging();
      this.showEnd("Missed call: the caller hung up before you answered.", false);
      return;
    }
    this.count(`${e.kind}_without_call`);
  }

  private async ring(incoming: IncomingOffer): Promise<void> {
    const me = this.me!;
    this.ringing = incoming;
    this.ringAt = Date.now();
    const name = await this.peers.nameOf(incoming.from.text);
    el("incoming-name").textContent = name ?? "Unknown caller";
    el("incoming-warning").textContent =
      name === null ? "Not in your known peers. If you expected someone you know, their key may have changed: compare the safety number before trusting the call." : "";
    el("incoming-id").textContent = grouped(incoming.from);
    const safety = safetyNumber(me.id, incoming.from);
    el("incoming-safety").textContent = safety;
    el("incoming").hidden = false;
    el("call-end").hidden = true;
    this.hook.peerId = incoming.from.text;
    this.hook.safetyNumber = safety;
    this.setState("ringing");
    this.updateDialButton();
    if (this.hook.autoAnswer) await this.answer(true);
  }

  private stopRinging(): void {
    this.ringing = null;
    el("incoming").hidden = true;
    this.setState("none");
    this.updateDialButton();
  }

  private decline(): void {
    if (this.ringing && this.conn?.ready) rejectOffer(this.conn, this.ringing, "declined");
    this.stopRinging();
  }

  private async answer(video: boolean): Promise<void> {
    const incoming = this.ringing;
    const conn = this.conn;
    const me = this.me;
    if (!incoming || !conn || !me) return;
    const startedAt = Date.now();
    el("incoming").hidden = true;
    this.ringing = null;
    if (unixNow() > incoming.offer.expires) {
      // §5.1: a signed offer lives 60 s; the caller has given up by now.
      this.setState("none");
      this.showEnd("Missed call: the call expired before you answered.", false);
      return;
    }
    const local = await this.localMedia(video, "call-end");
    if (!local) {
      rejectOffer(conn, incoming, "declined");
      this.setState("none");
      return;
    }
    const turn = await conn.turn();
    this.beginCall(incoming.from, local, startedAt);
    try {
      await Call.accept(conn, me, incoming, local, this.callOptions(turn), this.callEvents());
    } catch (err) {
      (this.call as Call | null)?.hangup();
      this.showEnd(`Could not answer: ${(err as Error).message}`, true);
    }
  }

  private async dial(): Promise<void> {
    const conn = this.conn;
    const me = this.me;
    if (!conn || !me || this.call) return;
    const startedAt = Date.now();
    this.showError("dial-error", null);
    let peer: CallId;
    try {
      peer = CallId.parse(el<HTMLInputElement>("peer-id").value);
    } catch (err) {
      this.showError("dial-error", `This is not a valid call ID: ${isProtocolError(err) ? humanMessage(err.message) : "check it"}.`);
      return;
    }
    if (peer.equals(me.id)) {
      this.showError("dial-error", "This is your own call ID.");
      return;
    }
    const name = el<HTMLInputElement>("peer-name").value;
    if (name.trim() !== "") await this.peers.remember(peer.text, name);
    const local = await this.localMedia(el<HTMLInputElement>("dial-video").checked, "dial-error");
    if (!local) return;
    const turn = await conn.turn();
    this.beginCall(peer, local, startedAt);
    try {
      await Call.dial(conn, me, peer, local, this.callOptions(turn), this.callEvents());
    } catch (err) {
      (this.call as Call | null)?.hangup();
      this.showEnd(`Could not call: ${(err as Error).message}`, true);
    }
  }

  private async localMedia(video: boolean, errorId: string): Promise<MediaStream | null> {
    try {
      return await openLocalMedia(video, this.hook.toneHz);
    } catch (err) {
      if (!(err instanceof MediaProblem)) throw err;
      if (video) {
        // No camera (or no permission for it): an audio call is still a call.
        try {
          const audio = await openLocalMedia(false, this.hook.toneHz);
          this.showError(errorId, `${err.message} Going on without video.`);
          return audio;
        } catch {
          // fall through to the first, fuller message
        }
      }
      this.showError(errorId, err.message);
      return null;
    }
  }

  private beginCall(peer: CallId, local: MediaStream, startedAt: number): void {
    const me = this.me!;
    const safety = safetyNumber(me.id, peer);
    this.hook.peerId = peer.text;
    this.hook.safetyNumber = safety;
    this.hook.chatReceived = [];
    this.hook.chatSent = [];
    this.hook.endMessage = null;
    this.hook.endedWithError = false;
    this.hook.timings = { ringAt: this.ringAt, startedAt, connectedAt: null, firstAudioAt: null, firstFrameAt: null };
    this.ringAt = null;
    this.hook.callsStarted++;
    this.lastStats = null;
    el("chat-log").replaceChildren();
    el("call-peer").textContent = grouped(peer);
    el("call-safety").textContent = `Safety number: ${safety}`;
    void this.peers.nameOf(peer.text).then((name) => {
      el("call-title").textContent = name ? `Call with ${name}` : "Call";
    });
    el<HTMLVideoElement>("local-video").srcObject = local;
    el<HTMLVideoElement>("local-video").hidden = local.getVideoTracks().length === 0;
    el<HTMLButtonElement>("camera").hidden = local.getVideoTracks().length === 0;
    el("call").hidden = false;
    el("call-end").hidden = true;
    this.updateDialButton();
  }

  private callOptions(turn: TurnCredentials | null): CallOptions {
    return {
      turn,
      relayOnly: el<HTMLInputElement>("relay-only").checked,
      connectTimeoutMs: this.hook.connectTimeoutMs,
      created: (call) => {
        this.call = call;
        this.updateDialButton();
      },
    };
  }

  private callEvents(): CallEvents {
    return {
      state: (state, call) => {
        this.setState(state);
        if (state === "connected") {
          this.hook.timings.connectedAt = Date.now();
          this.statsTimer = setInterval(() => void this.refreshStats(), 1_000);
        }
        if (state === "connecting") this.watchFirstMedia(call);
      },
      remoteStream: (stream) => {
        el<HTMLVideoElement>("remote-video").srcObject = stream;
        // Chromium feeds remote WebRTC audio to WebAudio only while a media element plays it.
        el<HTMLAudioElement>("remote-audio").srcObject = stream;
        if (stream.getAudioTracks().length > 0 && !this.meter) this.meter = new ToneMeter(stream);
      },
      chat: (text) => {
        this.hook.chatReceived.push(text);
        this.chatLine("peer", text);
      },
      ended: (message, error) => this.callEnded(message, error),
      ignored: (code) => this.count(code),
    };
  }

  private async refreshStats(): Promise<void> {
    const call = this.call;
    if (!call || call.state !== "connected") return;
    const s = await sampleStats(call.pc, this.lastStats);
    this.lastStats = s;
    this.hook.stats = s;
    this.hook.answerSetup = call.answerSetup;
    el("call-stats").textContent = statsLine(s);
  }

  /** Samples the stats every 20 ms until the first audio packet and video frame are seen. */
  private watchFirstMedia(call: Call): void {
    const t = this.hook.timings;
    const timer = setInterval(() => {
      if (call.state === "ended") return clearInterval(timer);
      void sampleStats(call.pc, null).then((s) => {
        const now = Date.now();
        if (s.audioReceived > 0 && t.firstAudioAt === null) t.firstAudioAt = now;
        if (s.framesDecoded > 0 && t.firstFrameAt === null) t.firstFrameAt = now;
        const wantsVideo = call.pc.getTransceivers().some((x) => x.receiver.track.kind === "video" && x.currentDirection !== "inactive" && x.currentDirection !== "sendonly");
        if (t.firstAudioAt !== null && (t.firstFrameAt !== null || !wantsVideo)) clearInterval(timer);
      });
    }, 20);
  }

  private callEnded(message: string, error: boolean): void {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.call = null;
    this.meter = null;
    this.hook.callsEnded++;
    el("call").hidden = true;
    el<HTMLVideoElement>("remote-video").srcObject = null;
    el<HTMLAudioElement>("remote-audio").srcObject = null;
    el<HTMLVideoElement>("local-video").srcObject = null;
    for (const id of ["mute", "camera"]) el(id).setAttribute("aria-pressed", "false");
    this.showEnd(message, error);
    this.setState("ended");
    this.updateDialButton();
  }

  private showEnd(message: string, error: boolean): void {
    this.hook.endMessage = message;
    this.hook.endedWithError = error;
    if (error) this.hook.lastError = message;
    el("call-end").textContent = message;
    el("call-end").className = error ? "error" : "";
    el("call-end").hidden = false;
  }

  private setState(state: string): void {
    this.hook.state = state;
    document.body.dataset.callState = state;
    const labels: Record<string, string> = {
      dialing: "Calling… (waiting for the answer)",
      connecting: "Connecting…",
      connected: "Connected: end-to-end verified.",
    };
    el("call-state").textContent = labels[state] ?? "";
  }

  private toggle(id: string, apply: (on: boolean) => void): void {
    const on = el(id).getAttribute("aria-pressed") !== "true";
    el(id).setAttribute("aria-pressed", String(on));
    if (id === "mute") el(id).textContent = on ? "Unmute" : "Mute";
    if (id === "camera") el(id).textContent = on ? "Camera on" : "Camera off";
    apply(on);
  }

  private sendChat(): void {
    const input = el<HTMLInputElement>("chat-input");
    const text = input.value;
    if (text.trim() === "" || !this.call) return;
    if (!this.call.sendChat(text)) {
      this.showEnd("The chat channel is not open yet.", false);
      return;
    }
    this.hook.chatSent.push(text);
    this.chatLine("me", text);
    input.value = "";
  }

  private chatLine(who: "me" | "peer", text: string): void {
    const li = document.createElement("li");
    li.className = who;
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who === "me" ? "you:" : "them:";
    const body = document.createElement("span");
    body.textContent = text;
    li.append(label, body);
    el("chat-log").append(li);
    el("chat-log").scrollTop = el("chat-log").scrollHeight;
  }
}
