/**
 * The room inbox (§21.4), sans-IO: drops a message whose `(sender, seq)` was seen (the same
 * message may come over a call's data channel and through the server) and releases each
 * sender's messages in `seq` order. The next one goes at once; a later one waits 2 s for the
 * missing ones, which are then skipped (arriving afterwards, they are duplicates). At most
 * 256 are held back per sender. Time is `nowMs`, the caller's clock in milliseconds.
 */
import type { RoomMessage } from "./room.ts";

/** How long a message waits for the ones missing before it (§21.4). */
export const INBOX_WAIT_MS = 2_000;
/** Messages held back per sender before the lowest is released anyway (§21.4). */
export const INBOX_MAX_HELD = 256;

interface SenderQueue {
  /** The `seq` released next without waiting. */
  next: bigint;
  /** Held messages by `seq`, with their arrival time. */
  held: Map<bigint, { msg: RoomMessage; arrivedMs: number }>;
}

/** One room's inbox. */
export class RoomInbox {
  private readonly senders = new Map<string, SenderQueue>();
  private readonly released: RoomMessage[] = [];

  constructor(
    readonly waitMs = INBOX_WAIT_MS,
    readonly maxHeld = INBOX_MAX_HELD,
  ) {}

  /** After a restart: `sender`'s messages up to `highestSeq` are stored already. */
  resume(sender: string, highestSeq: bigint): void {
    this.queue(sender).next = highestSeq + 1n;
  }

  /** Takes a verified message at `nowMs`; `"duplicate"` if its `(sender, seq)` was seen. */
  insert(msg: RoomMessage, nowMs: number): "held" | "duplicate" {
    const q = this.queue(msg.sender.text);
    if (msg.seq < q.next || q.held.has(msg.seq)) return "duplicate";
    q.held.set(msg.seq, { msg, arrivedMs: nowMs });
    this.release(q, nowMs);
    return "held";
  }

  /** The next released message, in each sender's `seq` order; call after `insert` and on timeouts. */
  poll(nowMs: number): RoomMessage | undefined {
    for (const q of this.senders.values()) this.release(q, nowMs);
    return this.released.shift();
  }

  /** When a held message next becomes due (ms), or `undefined` if nothing waits. */
  pollTimeout(): number | undefined {
    let due: number | undefined;
    for (const q of this.senders.values()) {
      const lowest = lowestSeq(q);
      if (lowest === undefined) continue;
      const at = q.held.get(lowest)!.arrivedMs + this.waitMs;
      due = due === undefined ? at : Math.min(due, at);
    }
    return due;
  }

  private queue(sender: string): SenderQueue {
    let q = this.senders.get(sender);
    if (!q) {
      q = { next: 1n, held: new Map() };
      this.senders.set(sender, q);
    }
    return q;
  }

  private release(q: SenderQueue, nowMs: number): void {
    for (;;) {
      const lowest = lowestSeq(q);
      if (lowest === undefined) return;
      const entry = q.held.get(lowest)!;
      const due = lowest === q.next || entry.arrivedMs + this.waitMs <= nowMs || q.held.size > this.maxHeld;
      if (!due) return;
      q.held.delete(lowest);
      q.next = lowest + 1n;
      this.released.push(entry.msg);
    }
  }
}

function lowestSeq(q: SenderQueue): bigint | undefined {
  let lowest: bigint | undefined;
  for (const seq of q.held.keys()) if (lowest === undefined || seq < lowest) lowest = seq;
  return lowest;
}
