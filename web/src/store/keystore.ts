/**
 * Keeps the identity in the browser's IndexedDB (database `call`, object store `keys`, key
 * `identity`): the 32-byte seed, so that the page can sign, derive the X25519 key and export
 * the same `identity.key` as `call`. The factory is passed in (the page gives `indexedDB`,
 * tests an in-memory one). Nothing here talks to the network.
 */
import { Identity } from "../protocol/identity.ts";

const STORE = "keys";
const KEY = "identity";

/** What is stored: a format tag and the seed. */
interface StoredIdentity {
  format: "call-identity-v1";
  seed: Uint8Array;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

/** The browser's key store. */
export class KeyStore {
  private constructor(private readonly db: IDBDatabase) {}

  /** Opens (creating if needed) the database `name`. */
  static async open(factory: IDBFactory, name = "call"): Promise<KeyStore> {
    const req = factory.open(name, 1);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
    };
    return new KeyStore(await request(req));
  }

  /** The stored identity, or `null` if there is none (or it is unreadable). */
  async load(): Promise<Identity | null> {
    const tx = this.db.transaction(STORE, "readonly");
    const value = (await request(tx.objectStore(STORE).get(KEY))) as StoredIdentity | undefined;
    if (!value || value.format !== "call-identity-v1" || !(value.seed instanceof Uint8Array) || value.seed.length !== 32) return null;
    return Identity.fromSeed(value.seed);
  }

  /** Stores `identity`, replacing any other. */
  async save(identity: Identity): Promise<void> {
    const tx = this.db.transaction(STORE, "readwrite");
    const stored: StoredIdentity = { format: "call-identity-v1", seed: identity.exportSeed() };
    await request(tx.objectStore(STORE).put(stored, KEY));
  }

  /** Forgets the identity. */
  async clear(): Promise<void> {
    const tx = this.db.transaction(STORE, "readwrite");
    await request(tx.objectStore(STORE).delete(KEY));
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }
}
