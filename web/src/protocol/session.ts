/**
 * The client side of a signaling connection as a sans-IO state machine (§11–§13): frames in
 * with `handleFrame(text, now)`, frames to write and events out through `poll()`. It answers
 * the challenge after checking the server name, waits for `welcome`, then opens delivered
 * envelopes with every §4.5 check. The page (or a test) owns the WebSocket and the clock.
 */
import type { CallId } from "./callid.ts";
import { type EnvelopeKind, openEnvelope, type OpenedEnvelope, sealEnvelope } from "./envelope.ts";
import { isProtocolError, type ProtocolCode } from "./errors.ts";
import { answerChallenge, CLOSING_ERROR_CODES, parseServerFrame, sendFrame, TURN_FRAME, welcomeIsFor } from "./frames.ts";
import type { Identity } from "./identity.ts";
import { ReplayCache } from "./replay.ts";

/** Where the session is. */
export type SessionState = "awaiting_challenge" | "awaiting_welcome" | "ready" | "closed";

/** What the session asks of its owner, in order. */
export type SessionOutput =
  | { type: "write"; frame: string }
  | { type: "ready"; kept: bigint }
  | { type: "envelope"; opened: OpenedEnvelope }
  | { type: "turn"; urls: string[]; username: string; password: string; ttl: bigint }
  /** An envelope or frame dropped (log it with its code); the connection goes on. */
  | { type: "dropped"; code: ProtocolCode | string; message: string }
  /** An `error` frame from the server that does not end the connection. */
  | { type: "server_error"; code: string; message: string }
  /** The connection is over (the owner closes the socket); `code` says why. */
  | { type: "closed"; code: string; message: string };

/** One signaling connection's protocol state. */
export class SignalingSession {
  private stateValue: SessionState = "awaiting_challenge";
  private readonly out: SessionOutput[] = [];

  constructor(
    private readonly me: Identity,
    /** The server name expected in the challenge (`expectedServerName(url)`). */
    private readonly expectedServer: string,
    /** `true` when `expectedServer` is the dialed host (loopback names are then one name). */
    private readonly expectedIsDialedHost = true,
    private readonly replay = new ReplayCache(),
  ) {}

  /** The current state. */
  get state(): SessionState {
    return this.stateValue;
  }

  /** The next output, or `undefined` when there is none. */
  poll(): SessionOutput | undefined {
    return this.out.shift();
  }

  /** Handles one text frame from the server received at `now` (unix seconds). */
  handleFrame(text: string, now: bigint): void {
    if (this.stateValue === "closed") return;
    let frame;
    try {
      frame = parseServerFrame(text);
    } catch (e) {
      if (!isProtocolError(e)) throw e;
      this.out.push({ type: "dropped", code: e.code, message: e.message });
      return;
    }
    switch (frame.type) {
      case "challenge":
        if (this.stateValue !== "awaiting_challenge") {
          this.out.push({ type: "dropped", code: "bad_frame", message: "a second challenge" });
          return;
        }
        try {
          this.out.push({ type: "write", frame: answerChallenge(this.me, frame, this.expectedServer, this.expectedIsDialedHost) });
          this.stateValue = "awaiting_welcome";
        } catch (e) {
          if (!isProtocolError(e)) throw e;
          this.close(e.code, e.message);
        }
        return;
      case "welcome":
        if (this.stateValue !== "awaiting_welcome" || !welcomeIsFor(frame, this.me.id)) {
          this.close("bad_frame", "an unexpected welcome (not after our login, or for another ID)");
          return;
        }
        this.stateValue = "ready";
        this.out.push({ type: "ready", kept: frame.kept });
        return;
      case "deliver":
        if (this.stateValue !== "ready") {
          this.out.push({ type: "dropped", code: "bad_frame", message: "an envelope before login" });
          return;
        }
        try {
          this.out.push({ type: "envelope", opened: openEnvelope(frame.envelope, this.me, now, this.replay) });
        } catch (e) {
          if (!isProtocolError(e)) throw e;
          this.out.push({ type: "dropped", code: e.code, message: e.message });
        }
        return;
      case "turn_credentials":
        this.out.push({ type: "turn", urls: frame.urls, username: frame.username, password: frame.password, ttl: frame.ttl });
        return;
      case "error":
        if (CLOSING_ERROR_CODES.includes(frame.code)) this.close(frame.code, frame.message);
        else this.out.push({ type: "server_error", code: frame.code, message: frame.message });
        return;
      case "unknown":
        this.out.push({ type: "dropped", code: "unknown_type", message: `unknown frame type ${JSON.stringify(frame.name)}` });
        return;
    }
  }

  /** Seals `plaintext` to `to` and queues its `send` frame. Only once logged in. */
  send(to: CallId, kind: EnvelopeKind, plaintext: Uint8Array, now: bigint): void {
    if (this.stateValue !== "ready") throw new Error("not logged in yet: wait for the ready output");
    this.out.push({ type: "write", frame: sendFrame(sealEnvelope(this.me, to, kind, plaintext, now).text) });
  }

  /** Queues a TURN credentials request (§14). */
  requestTurn(): void {
    if (this.stateValue !== "ready") throw new Error("not logged in yet: wait for the ready output");
    this.out.push({ type: "write", frame: TURN_FRAME });
  }

  /** The socket closed (or the owner gives up): nothing more happens. */
  close(code = "closed", message = "the connection closed"): void {
    if (this.stateValue === "closed") return;
    this.stateValue = "closed";
    this.out.push({ type: "closed", code, message });
  }
}
