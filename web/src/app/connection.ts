/**
 * The page's signaling connection: a WebSocket to the server that served the page (`/ws`),
 * driven through the sans-IO {@link SignalingSession} (login with the server-name check,
 * every §4.5 check on delivered envelopes). The socket and the clock live here, nothing else.
 */
import type { CallId } from "../protocol/callid.ts";
import type { EnvelopeKind, OpenedEnvelope } from "../protocol/envelope.ts";
import { expectedServerName, WS_PATH } from "../protocol/frames.ts";
import type { Identity } from "../protocol/identity.ts";
import { SignalingSession } from "../protocol/session.ts";

/** TURN credentials handed out by the server (§14). */
export interface TurnCredentials {
  urls: string[];
  username: string;
  password: string;
}

/** What the connection tells the page. */
export interface ConnectionEvents {
  ready(): void;
  envelope(opened: OpenedEnvelope): void;
  /** An envelope or frame was dropped (verification failed, unknown frame): for the counters. */
  dropped(code: string, message: string): void;
  /** A non-fatal `error` frame (`not_online`, `rate_limited`, …). */
  serverError(code: string, message: string): void;
  closed(code: string, message: string): void;
}

/** Unix seconds now. */
export function unixNow(): bigint {
  return BigInt(Math.floor(Date.now() / 1000));
}

/** `ws(s)://HOST/ws` of the page's own server. */
export function ownServerUrl(location: Location): string {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${WS_PATH}`;
}

/** One logged-in connection (a new one after a close). */
export class Connection {
  private readonly session: SignalingSession;
  private readonly ws: WebSocket;
  private turnWaiters: ((c: TurnCredentials | null) => void)[] = [];

  constructor(
    readonly url: string,
    me: Identity,
    private readonly events: ConnectionEvents,
  ) {
    this.session = new SignalingSession(me, expectedServerName(url));
    this.ws = new WebSocket(url);
    this.ws.onmessage = (m) => {
      this.session.handleFrame(String(m.data), unixNow());
      this.pump();
    };
    this.ws.onclose = () => {
      this.session.close("closed", "the connection to the server closed");
      this.pump();
    };
    this.ws.onerror = () => {
      this.session.close("unreachable", `cannot reach the server at ${url}`);
      this.pump();
    };
  }

  /** `true` once logged in (and until closed). */
  get ready(): boolean {
    return this.session.state === "ready";
  }

  /** Seals and sends an envelope. */
  send(to: CallId, kind: EnvelopeKind, plaintext: Uint8Array): void {
    this.session.send(to, kind, plaintext, unixNow());
    this.pump();
  }

  /** TURN credentials, or `null` when the server has none (or does not answer within 3 s). */
  turn(): Promise<TurnCredentials | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), 3_000);
      const done = (c: TurnCredentials | null) => {
        clearTimeout(timer);
        this.turnWaiters = this.turnWaiters.filter((w) => w !== done);
        resolve(c);
      };
      this.turnWaiters.push(done);
      this.session.requestTurn();
      this.pump();
    });
  }

  /** Closes the socket. */
  close(): void {
    this.ws.close();
  }

  private pump(): void {
    for (let out = this.session.poll(); out; out = this.session.poll()) {
      switch (out.type) {
        case "write":
          if (this.ws.readyState === WebSocket.OPEN) this.ws.send(out.frame);
          break;
        case "ready":
          this.events.ready();
          break;
        case "envelope":
          this.events.envelope(out.opened);
          break;
        case "turn":
          for (const w of [...this.turnWaiters]) w({ urls: out.urls, username: out.username, password: out.password });
          break;
        case "dropped":
          this.events.dropped(out.code, out.message);
          break;
        case "server_error":
          if (out.code === "turn_unavailable") for (const w of [...this.turnWaiters]) w(null);
          this.events.serverError(out.code, out.message);
          break;
        case "closed":
          if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
          this.events.closed(out.code, out.message);
          break;
      }
    }
  }
}
