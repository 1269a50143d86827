/**
 * A small read-only view of the page for automated tests (`window.__callTest`), so that tests
 * check states and counters instead of scraping prose. It exposes nothing a script in the page
 * could not read anyway, and no key material.
 */
import type { CallStats } from "./stats.ts";

/** What tests can read and set. */
export interface TestHook {
  /** `none`, `dialing`, `ringing` (incoming, not answered), `connecting`, `connected`, `ended`. */
  state: string;
  /** This browser's call ID, once there is an identity. */
  myId: string | null;
  /** Logged in to the server. */
  online: boolean;
  /** The peer of the current or last call, and the safety number shown with it. */
  peerId: string | null;
  safetyNumber: string | null;
  /** How the last call ended (the message shown), and whether it was an error. */
  endMessage: string | null;
  endedWithError: boolean;
  /** The last error shown anywhere on the page. */
  lastError: string | null;
  /** Chat lines received and sent in the current or last call. */
  chatReceived: string[];
  chatSent: string[];
  /** Envelopes/frames ignored or refused, by code. */
  ignored: Record<string, number>;
  /** Calls started and ended on this page. */
  callsStarted: number;
  callsEnded: number;
  /** The last statistics sample. */
  stats: CallStats | null;
  /**
   * Wall-clock instants (unix ms) of the current or last call: the offer's arrival (incoming
   * calls), the click on Call or Answer, connected
   * (DTLS up and the certificate checked), first audio packet received, first video frame
   * decoded (sampled every 20 ms until both are seen).
   */
  timings: { ringAt: number | null; startedAt: number | null; connectedAt: number | null; firstAudioAt: number | null; firstFrameAt: number | null };
  /** The DTLS role the page's last answer asked for (`passive` unless the browser refused it). */
  answerSetup: string | null;
  /** Answer incoming calls at once, with video (measurements; the page never does it by itself). */
  autoAnswer: boolean;
  /** A call not connected within this many ms is given up (60 s; tests may lower it). */
  connectTimeoutMs: number;
  /** Set before dialing/answering to send a sine of this frequency instead of the microphone. */
  toneHz: number | null;
  /** The rooms this browser holds (rooms panel). */
  rooms: { id: string; name: string; version: number; members: string[]; removed: boolean }[];
  /** Each room's history as shown, by room ID: sender's call ID, text, own, mentions you. */
  roomLines: Record<string, { id: string; sender: string; text: string; mine: boolean; mention: boolean }[]>;
  /** The room's call the page is in: its room and each peer's session state. */
  roomCall: { room: string; peers: { id: string; state: string }[] } | null;
  /** By room ID: the last `join` heard while the page was not in that room's call (a member's call ID). */
  roomCallHeard: Record<string, string>;
  /** Room messages sent by this page as `room_msg` frames on a room call's channels, and as envelopes. */
  roomSent: { frames: number; envelopes: number };
  /** Power share near `hz` in one room-call peer's audio (by call ID). */
  roomTone(peer: string, hz: number): { share: number; peakHz: number } | null;
  /** Power share near `hz` in the remote audio (0 … 1) and its loudest frequency. */
  remoteTone(hz: number): { share: number; peakHz: number } | null;
  /** Grey-level variance of the remote video's current picture (0: none or blank). */
  remotePictureVariance(): number;
}

/** The hook, installed once as `window.__callTest`. */
export function installHook(remoteTone: TestHook["remoteTone"], remotePictureVariance: TestHook["remotePictureVariance"]): TestHook {
  const hook: TestHook = {
    state: "none",
    myId: null,
    online: false,
    peerId: null,
    safetyNumber: null,
    endMessage: null,
    endedWithError: false,
    lastError: null,
    chatReceived: [],
    chatSent: [],
    ignored: {},
    callsStarted: 0,
    callsEnded: 0,
    stats: null,
    timings: { ringAt: null, startedAt: null, connectedAt: null, firstAudioAt: null, firstFrameAt: null },
    answerSetup: null,
    autoAnswer: false,
    connectTimeoutMs: 60_000,
    toneHz: null,
    rooms: [],
    roomLines: {},
    roomCall: null,
    roomSent: { frames: 0, envelopes: 0 },
    roomCallHeard: {},
    roomTone: () => null,
    remoteTone,
    remotePictureVariance,
  };
  (window as unknown as { __callTest: TestHook }).__callTest = hook;
  return hook;
}

/** The installed hook (the phone installs it first). */
export function installedHook(): TestHook {
  return (window as unknown as { __callTest: TestHook }).__callTest;
}
