/** The browser's known-peers list (web/src/store/peers.ts) on an in-memory IndexedDB. */
import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import { KnownPeers, MAX_PEER_NAME_CHARS } from "../src/store/peers.ts";

describe("known peers", () => {
  it("remembers, renames and keeps names across reopening", async () => {
    const factory = new IDBFactory();
    const peers = await KnownPeers.open(factory);
    expect(await peers.nameOf("a")).toBeNull();
    await peers.remember("a", "  Alice  ");
    expect(await peers.nameOf("a")).toBe("Alice");
    await peers.remember("a", "");
    expect(await peers.nameOf("a")).toBe("Alice");
    await peers.remember("a", "Alice B.");
    await peers.remember("b", "x".repeat(100));
    peers.close();
    const again = await KnownPeers.open(factory);
    expect(await again.nameOf("a")).toBe("Alice B.");
    expect(await again.nameOf("b")).toHaveLength(MAX_PEER_NAME_CHARS);
    again.close();
  });
});
