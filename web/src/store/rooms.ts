/**
 * The page's rooms and room history in IndexedDB (database `call-rooms-<call ID>`: one per
 * identity, object stores `rooms` keyed by room ID and `messages` keyed by room, sender and
 * seq). Room states are kept as their signed JSON and verified again when loaded; a message is
 * kept once per `(room, sender, seq)`. Like `call`'s `rooms.sqlite3` it is local only; nothing
 * here talks to the network.
 */

const ROOMS = "rooms";
const MESSAGES = "messages";
const WAITING = "waiting";

/** What is kept of a room (see `RoomRecord` in app/rooms/book.ts). */
export interface StoredRoom {
  room: string;
  current: string;
  parent: string | null;
  removed: boolean;
  nextSeq: string;
}

/** One message of a room's history. */
export interface StoredMessage {
  /** `room/sender/seq` (seq zero-padded): one per sender and seq. */
  key: string;
  room: string;
  /** Message ID (§21.4). */
  id: string;
  sender: string;
  seq: string;
  tsMs: string;
  text: string;
  /** This browser's own message. */
  mine: boolean;
  /** When it was shown here (unix ms): the history's order. */
  receivedMs: number;
  /** Order of arrival here, for equal `receivedMs`. */
  order: number;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

/** The key of a message: the same `(room, sender, seq)` is one record. */
export function messageKey(room: string, sender: string, seq: bigint): string {
  return `${room}/${sender}/${seq.toString().padStart(20, "0")}`;
}

/** One identity's rooms. */
export class RoomStore {
  private order = 0;

  private constructor(private readonly db: IDBDatabase) {}

  /** Opens (creating if needed) the rooms of the identity `callId`. */
  static async open(factory: IDBFactory, callId: string): Promise<RoomStore> {
    const req = factory.open(`call-rooms-${callId}`, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(WAITING)) db.createObjectStore(WAITING, { keyPath: "key" }).createIndex("room", "room");
      if (!db.objectStoreNames.contains(ROOMS)) db.createObjectStore(ROOMS, { keyPath: "room" });
      if (!db.objectStoreNames.contains(MESSAGES)) db.createObjectStore(MESSAGES, { keyPath: "key" }).createIndex("room", "room");
    };
    const store = new RoomStore(await request(req));
    store.order = await store.highestOrder();
    return store;
  }

  private async highestOrder(): Promise<number> {
    const all = (await request(this.db.transaction(MESSAGES, "readonly").objectStore(MESSAGES).getAll())) as StoredMessage[];
    return all.reduce((m, r) => Math.max(m, typeof r.order === "number" ? r.order : 0), 0);
  }

  /** Every room kept. */
  async rooms(): Promise<StoredRoom[]> {
    return (await request(this.db.transaction(ROOMS, "readonly").objectStore(ROOMS).getAll())) as StoredRoom[];
  }

  /** Keeps (or replaces) a room. */
  async saveRoom(room: StoredRoom): Promise<void> {
    const tx = this.db.transaction(ROOMS, "readwrite");
    tx.objectStore(ROOMS).put(room);
    await done(tx);
  }

  /** Keeps a message; `false` (and nothing written) if its `(room, sender, seq)` is kept already. */
  async addMessage(m: Omit<StoredMessage, "key" | "order">): Promise<boolean> {
    const tx = this.db.transaction(MESSAGES, "readwrite");
    const store = tx.objectStore(MESSAGES);
    const key = messageKey(m.room, m.sender, BigInt(m.seq));
    let added = false;
    // The put goes in the count's own callback: the transaction is active there for sure.
    const count = store.count(key);
    count.onsuccess = () => {
      if (count.result > 0) return;
      added = true;
      store.put({ ...m, key, order: ++this.order } satisfies StoredMessage);
    };
    await done(tx);
    return added;
  }

  /** Keeps a message that waits in the inbox for an earlier one (signed JSON, checked again when loaded). */
  async addWaiting(room: string, sender: string, seq: bigint, json: string): Promise<void> {
    const tx = this.db.transaction(WAITING, "readwrite");
    tx.objectStore(WAITING).put({ key: messageKey(room, sender, seq), room, json });
    await done(tx);
  }

  /** A waiting message was released (and is in the history now). */
  async removeWaiting(room: string, sender: string, seq: bigint): Promise<void> {
    const tx = this.db.transaction(WAITING, "readwrite");
    tx.objectStore(WAITING).delete(messageKey(room, sender, seq));
    await done(tx);
  }

  /** The signed JSON of `room`'s waiting messages. */
  async waiting(room: string): Promise<string[]> {
    const tx = this.db.transaction(WAITING, "readonly");
    const all = (await request(tx.objectStore(WAITING).index("room").getAll(room))) as { json: string }[];
    return all.map((w) => w.json);
  }

  /** A room's history in the order it was shown. */
  async history(room: string): Promise<StoredMessage[]> {
    const tx = this.db.transaction(MESSAGES, "readonly");
    const all = (await request(tx.objectStore(MESSAGES).index("room").getAll(room))) as StoredMessage[];
    return all.sort((a, b) => a.order - b.order);
  }

  /** The highest `seq` kept per sender in `room` (the inbox resumes after them, §21.4). */
  async highestSeqs(room: string): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    for (const m of await this.history(room)) {
      const seq = BigInt(m.seq);
      if ((out.get(m.sender) ?? 0n) < seq) out.set(m.sender, seq);
    }
    return out;
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }
}
