/**
 * The receiver's replay cache (§4.6), sans-IO: `(ts, from, nonce)` of every envelope that
 * passed the signature check, forgotten once `ts < now − 60`. Bounded per sender (a full
 * quota refuses, it never evicts a live entry) and in senders (the least recently seen is
 * forgotten), so identities flooding a receiver only exhaust their own share.
 */

/** Clock skew window of §4.5 step 7, seconds. */
export const SKEW_SECS = 60n;

/** Outcome of {@link ReplayCache.check}. */
export type ReplayVerdict = "fresh" | "replayed" | "replay_cache_full";

/** Per-sender bounded replay cache. */
export class ReplayCache {
  /** Senders in least-recently-seen order (Map keeps insertion order; touching re-inserts). */
  private readonly senders = new Map<string, Map<string, bigint>>();

  constructor(
    /** Entries per sender inside the window (`call`: 128). */
    readonly perSender = 128,
    /** Senders tracked (`call`: 512). */
    readonly maxSenders = 512,
  ) {}

  /** Number of senders tracked (for tests and diagnostics). */
  get senderCount(): number {
    return this.senders.size;
  }

  /**
   * Checks and, if fresh, records `(ts, from, nonce)` at time `now` (unix seconds). A replay
   * is reported before the quota is considered.
   */
  check(ts: bigint, from: string, nonce: Uint8Array, now: bigint): ReplayVerdict {
    const key = `${ts}:${Array.from(nonce).join(",")}`;
    let entries = this.senders.get(from);
    if (entries) {
      prune(entries, now);
      if (entries.has(key)) return "replayed";
      if (entries.size >= this.perSender) return "replay_cache_full";
      this.senders.delete(from);
    } else {
      entries = new Map();
      if (this.senders.size >= this.maxSenders) this.makeRoom(now);
    }
    entries.set(key, ts);
    this.senders.set(from, entries);
    return "fresh";
  }

  private makeRoom(now: bigint): void {
    for (const [sender, entries] of this.senders) {
      prune(entries, now);
      if (entries.size === 0) this.senders.delete(sender);
    }
    if (this.senders.size >= this.maxSenders) {
      const oldest = this.senders.keys().next().value;
      if (oldest !== undefined) this.senders.delete(oldest);
    }
  }
}

function prune(entries: Map<string, bigint>, now: bigint): void {
  for (const [key, ts] of entries) if (ts < now - SKEW_SECS) entries.delete(key);
}
