/**
 * The TypeScript client against the real Rust server (`call-signaling`, path in
 * CALL_SIGNALING_BIN; scripts/test.sh builds it): logins signed here are accepted there,
 * envelopes sealed here pass the server's §12.1 checks (its own Ed25519 verification) and
 * arrive re-encoded canonically, and the mailbox keeps room kinds for an offline member.
 * Loopback only; skipped (with the reason) when the binary or a WebSocket client is missing.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseHangup } from "../src/protocol/callbody.ts";
import { utf8 } from "../src/protocol/encoding.ts";
import { expectedServerName } from "../src/protocol/frames.ts";
import { Identity } from "../src/protocol/identity.ts";
import { SignalingSession, type SessionOutput } from "../src/protocol/session.ts";

const BIN = process.env.CALL_SIGNALING_BIN;
const missing = !BIN ? "CALL_SIGNALING_BIN is not set" : typeof WebSocket !== "function" ? "no WebSocket client (Node < 22 needs --experimental-websocket)" : null;
if (missing) console.warn(`server interop tests skipped: ${missing}`);

const now = () => BigInt(Math.floor(Date.now() / 1000));

/** A logged-in client: the sans-IO session driven by a real WebSocket. */
class LiveClient {
  readonly outputs: SessionOutput[] = [];
  /** Envelopes the mailbox kept for this ID (from `welcome`). */
  kept = 0n;
  private waiters: (() => void)[] = [];

  private constructor(
    readonly session: SignalingSession,
    private readonly ws: WebSocket,
  ) {
    ws.onmessage = (m) => {
      session.handleFrame(String(m.data), now());
      this.pump();
    };
    ws.onclose = () => {
      session.close();
      this.pump();
    };
  }

  static async connect(url: string, me: Identity): Promise<LiveClient> {
    const ws = new WebSocket(url);
    const client = new LiveClient(new SignalingSession(me, expectedServerName(url)), ws);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    const ready = await client.next((o) => o.type === "ready");
    client.kept = ready.type === "ready" ? ready.kept : 0n;
    return client;
  }

  /** Writes queued frames, keeps everything else. */
  pump(): void {
    for (let o = this.session.poll(); o; o = this.session.poll()) {
      if (o.type === "write") this.ws.send(o.frame);
      else this.outputs.push(o);
    }
    this.waiters.splice(0).forEach((w) => w());
  }

  /** The first output matching `pred` (removed), waiting up to 5 s for it. */
  async next(pred: (o: SessionOutput) => boolean): Promise<SessionOutput> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const at = this.outputs.findIndex(pred);
      if (at >= 0) return this.outputs.splice(at, 1)[0];
      if (Date.now() > deadline) throw new Error(`timed out; outputs so far: ${JSON.stringify(this.outputs, (_, v) => (typeof v === "bigint" ? String(v) : v))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  /** Sends a frame as is (to test the server's refusals). */
  sendRaw(frame: string): void {
    this.ws.send(frame);
  }

  close(): void {
    this.ws.close();
  }
}

describe.skipIf(missing !== null)("TypeScript client ↔ call-signaling (Rust)", () => {
  let server: ChildProcess;
  let url: string;

  beforeAll(async () => {
    server = spawn(BIN!, ["--listen", "127.0.0.1:0", "--no-turn"], {
      stdio: ["ignore", "pipe", "ignore"],
      env: { ...process.env, RUST_LOG: "warn" },
    });
    const lines = createInterface({ input: server.stdout! });
    url = await new Promise<string>((resolve, reject) => {
      lines.on("line", (l) => l.startsWith("ws://") && resolve(l.trim()));
      server.on("exit", (code) => reject(new Error(`call-signaling exited with ${code}`)));
    });
  });

  afterAll(() => {
    server?.kill("SIGTERM");
  });

  it("logs in, routes a sealed hangup from Alice to Bob, and reports an offline peer", async () => {
    const [alice, bob, carol] = [Identity.generate(), Identity.generate(), Identity.generate()];
    const a = await LiveClient.connect(url, alice);
    const b = await LiveClient.connect(url, bob);
    a.session.send(bob.id, "hangup", utf8('{"call_id":"00112233445566778899aabbccddeeff","reason":"busy"}'), now());
    a.pump();
    const got = await b.next((o) => o.type === "envelope");
    if (got.type !== "envelope") throw new Error("unreachable");
    expect(got.opened.envelope.from.text).toBe(alice.id.text);
    expect(parseHangup(got.opened.plaintext).reason).toBe("busy");
    a.session.send(carol.id, "offer", utf8("{}"), now());
    a.pump();
    expect(await a.next((o) => o.type === "server_error")).toMatchObject({ code: "not_online" });
    a.close();
    b.close();
  });

  it("the mailbox keeps a room message for an offline member and hands it over at login", async () => {
    const [alice, dave] = [Identity.generate(), Identity.generate()];
    const a = await LiveClient.connect(url, alice);
    a.session.send(dave.id, "room_message", utf8('{"x":1}'), now());
    a.session.requestTurn();
    a.pump();
    // The server handles a connection's frames in order: once the TURN request is answered
    // (no TURN here), the room message has been kept.
    expect(await a.next((o) => o.type === "server_error")).toMatchObject({ code: "turn_unavailable" });
    const d = await LiveClient.connect(url, dave);
    expect(d.kept).toBe(1n);
    const got = await d.next((o) => o.type === "envelope");
    expect(got.type === "envelope" && new TextDecoder().decode(got.opened.plaintext)).toBe('{"x":1}');
    d.close();
    a.close();
  });

  it("a duplicate member in a sent envelope is refused by the server, the connection stays", async () => {
    const alice = Identity.generate();
    const a = await LiveClient.connect(url, alice);
    a.sendRaw('{"type":"turn","type":"turn"}');
    expect(await a.next((o) => o.type === "server_error")).toMatchObject({ code: "bad_frame" });
    expect(a.session.state).toBe("ready");
    a.close();
  });
});
