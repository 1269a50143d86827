import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import { Identity } from "../src/protocol/identity.ts";
import { exportKeyFile, importKeyFile } from "../src/protocol/keyfile.ts";
import { KeyStore } from "../src/store/keystore.ts";
import { range } from "./doc.ts";
import { alice, bob } from "./fixtures.ts";

describe("IndexedDB key store", () => {
  it("is empty at first, keeps an identity across re-opening, and forgets it on clear", async () => {
    const factory = new IDBFactory();
    const store = await KeyStore.open(factory);
    expect(await store.load()).toBeNull();
        await store.save(alice);
    store.close();
    const again = await KeyStore.open(factory);
    expect((await again.load())?.id.text).toBe(alice.id.text);
    await again.clear();
    expect(await again.load()).toBeNull();
  });

  it("a key file imported into the store exports byte for byte the same", async () => {
    const store = await KeyStore.open(new IDBFactory());
    const file = "call-identity-v1\nICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n";
    await store.save(importKeyFile(file));
    const loaded = await store.load();
    expect(loaded?.id.text).toBe("fgwlvykbxtfpbmrodkkngtily43b4utnbp7bfsexss6jgiuwnxlwrwgc6u");
    expect(exportKeyFile(loaded!)).toBe(file);
  });

  it("replaces the identity on save and ignores unreadable records", async () => {
    const factory = new IDBFactory();
    const store = await KeyStore.open(factory);
    await store.save(Identity.fromSeed(range(0, 32)));
        await store.save(bob);
    expect((await store.load())?.id.text).toBe(bob.id.text);
    // A record written by something else (wrong shape) reads as "no identity", never throws.
    const db = await new Promise<IDBDatabase>((resolve) => {
      const r = factory.open("call", 1);
      r.onsuccess = () => resolve(r.result);
    });
    await new Promise((resolve) => {
      const tx = db.transaction("keys", "readwrite");
      tx.objectStore("keys").put({ format: "call-identity-v1", seed: "nope" }, "identity");
      tx.oncomplete = resolve;
    });
    expect(await store.load()).toBeNull();
  });
});
