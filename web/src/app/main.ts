/**
 * The page: identity create/import/export (kept in IndexedDB), a peer ID field checked as
 * typed (§2.2) with the safety number (§2.5), the phone (`phone.ts`: login, calls, chat) and
 * the rooms (`rooms/panel.ts`: rooms, room chat and history kept in this browser).
 * Text from files, the user or peers is only ever set with `textContent`; the page loads
 * nothing but its own files (see the server's CSP).
 */
import { CallId } from "../protocol/callid.ts";
import { isProtocolError } from "../protocol/errors.ts";
import { Identity } from "../protocol/identity.ts";
import { exportKeyFile, importKeyFile, MAX_KEY_FILE_BYTES } from "../protocol/keyfile.ts";
import { safetyNumber } from "../protocol/safety.ts";
import { KeyStore } from "../store/keystore.ts";
import { KnownPeers } from "../store/peers.ts";
import { el, grouped } from "./dom.ts";
import { Phone } from "./phone.ts";
import { RoomsPanel } from "./rooms/panel.ts";

class Page {
  private identity: Identity | null = null;

  constructor(
    private readonly store: KeyStore,
    private readonly phone: Phone,
    private readonly rooms: RoomsPanel,
  ) {}

  async start(): Promise<void> {
    el("create").addEventListener("click", () => void this.create());
    el<HTMLInputElement>("import").addEventListener("change", (e) => void this.importFile(e));
    el("export").addEventListener("click", () => this.exportFile());
    el("forget").addEventListener("click", () => void this.forget());
    el<HTMLInputElement>("peer-id").addEventListener("input", () => this.checkPeer());
    this.show(await this.store.load());
  }

  private show(identity: Identity | null): void {
    this.identity = identity;
    const has = identity !== null;
    el("identity-status").textContent = has ? "Your call ID (give it to the people who call you):" : "No identity in this browser yet.";
    el("my-id").textContent = has ? grouped(identity.id) : "";
    el("my-id").hidden = !has;
    el("create").hidden = has;
    el("import-label").hidden = has;
    el("export").hidden = !has;
    el("forget").hidden = !has;
    this.checkPeer();
    // The rooms first: envelopes kept for us arrive at login and wait for the rooms to load.
    this.rooms.setIdentity(identity);
    this.phone.setIdentity(identity);
  }

  private error(message: string | null): void {
    el("identity-error").textContent = message ?? "";
    el("identity-error").hidden = message === null;
  }

  private async create(): Promise<void> {
    const identity = Identity.generate();
    await this.store.save(identity);
    this.error(null);
    this.show(identity);
  }

  private async importFile(e: Event): Promise<void> {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    if (file.size > MAX_KEY_FILE_BYTES) return this.error("This is not a call identity file (too large).");
    try {
      const identity = importKeyFile(new Uint8Array(await file.arrayBuffer()));
      await this.store.save(identity);
      this.error(null);
      this.show(identity);
    } catch (err) {
      this.error(isProtocolError(err) ? err.message.replace(/^[a-z_]+: /, "") : "Could not read this file.");
    }
  }

  private exportFile(): void {
    if (!this.identity) return;
    const url = URL.createObjectURL(new Blob([exportKeyFile(this.identity)], { type: "application/octet-stream" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = "identity.key";
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  private async forget(): Promise<void> {
    if (!confirm("Forget this identity? Without an exported identity.key your call ID is gone for good.")) return;
    await this.store.clear();
    this.show(null);
  }

  private checkPeer(): void {
    const text = el<HTMLInputElement>("peer-id").value;
    const result = el("peer-result");
    const safety = el("peer-safety");
    safety.hidden = true;
    result.className = "";
    if (text.trim() === "") {
      result.textContent = "";
      return;
    }
    try {
      const peer = CallId.parse(text);
      result.textContent = `Valid call ID: ${grouped(peer)}`;
      result.className = "ok";
      if (this.identity && !peer.equals(this.identity.id)) {
        safety.textContent = `Safety number: ${safetyNumber(this.identity.id, peer)}`;
        safety.hidden = false;
      }
    } catch (err) {
      result.textContent = isProtocolError(err) ? err.message.replace(/^[a-z_]+: /, "") : "Not a call ID.";
      result.className = "error";
    }
    this.phone.updateDialButton();
  }
}

async function main(): Promise<void> {
  try {
    const store = await KeyStore.open(indexedDB);
    const phone = new Phone(await KnownPeers.open(indexedDB));
    await new Page(store, phone, new RoomsPanel(phone, indexedDB)).start();
  } catch (err) {
    el("identity-status").textContent = `This browser cannot keep an identity (IndexedDB unavailable: ${(err as Error).message}).`;
  }
}

void main();
