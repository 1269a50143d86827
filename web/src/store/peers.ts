/**
 * The browser's own known-peers list (IndexedDB database `call-peers`, object store `peers`,
 * keyed by call ID text): the name the user gave a call ID, shown when that ID calls. Like
 * `call`'s `known_peers` file it is local only; nothing here talks to the network.
 */

const STORE = "peers";

/** One remembered peer. */
export interface KnownPeer {
  id: string;
  name: string;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

/** Longest name kept, characters. */
export const MAX_PEER_NAME_CHARS = 64;

/** The known-peers list. */
export class KnownPeers {
  private constructor(private readonly db: IDBDatabase) {}

  /** Opens (creating if needed) the database `name`. */
  static async open(factory: IDBFactory, name = "call-peers"): Promise<KnownPeers> {
    const req = factory.open(name, 1);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE, { keyPath: "id" });
    };
    return new KnownPeers(await request(req));
  }

  /** The name remembered for `id`, or `null`. */
  async nameOf(id: string): Promise<string | null> {
    const tx = this.db.transaction(STORE, "readonly");
    const value = (await request(tx.objectStore(STORE).get(id))) as KnownPeer | undefined;
    return value && typeof value.name === "string" ? value.name : null;
  }

  /** Remembers `name` for `id` (trimmed, at most 64 characters; empty forgets nothing). */
  async remember(id: string, name: string): Promise<void> {
    const trimmed = name.trim().slice(0, MAX_PEER_NAME_CHARS);
    if (trimmed === "") return;
    const tx = this.db.transaction(STORE, "readwrite");
    await request(tx.objectStore(STORE).put({ id, name: trimmed } satisfies KnownPeer));
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }
}
