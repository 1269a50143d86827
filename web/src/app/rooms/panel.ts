/**
 * The rooms part of the page: the rooms this identity is in (from invitations by an admin,
 * kept in IndexedDB), a room's members with their safety numbers on demand, its history, and a
 * line to write to it. Envelopes arrive from the phone's connection and go through the
 * {@link RoomBook}; what it says changed is stored, then shown. Everything runs one step at a
 * time (a queue), so a reload, an arrival and a send never interleave. Peer text only ever
 * reaches the page through `textContent`.
 */
import type { CallId } from "../../protocol/callid.ts";
import { utf8Decode } from "../../protocol/encoding.ts";
import type { OpenedEnvelope } from "../../protocol/envelope.ts";
import { isProtocolError } from "../../protocol/errors.ts";
import { encodeRoomMessage, parseRoomCall, parseRoomMessage } from "../../protocol/room.ts";
import type { Identity } from "../../protocol/identity.ts";
import { safetyNumber } from "../../protocol/safety.ts";
import { RoomStore, type StoredMessage } from "../../store/rooms.ts";
import { el, grouped, humanMessage } from "../dom.ts";
import { installedHook } from "../hook.ts";
import { MediaProblem, openLocalMedia } from "../media.ts";
import type { Phone } from "../phone.ts";
import { RoomBook, RoomBookError, type RoomEntry, roomEntry, type RoomEvent, roomRecord } from "./book.ts";
import { RoomCall } from "./roomcall.ts";

/** A room line as the page shows it. */
type Line = Pick<StoredMessage, "id" | "sender" | "text" | "mine" | "tsMs">;

/** The rooms panel. */
export class RoomsPanel {
  private me: Identity | null = null;
  private store: RoomStore | null = null;
  private book: RoomBook | null = null;
  private selected: string | null = null;
  private queue: Promise<void> = Promise.resolve();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private call: RoomCall | null = null;
  /** The last `join` heard per room while not in its call. */
  private readonly heard = new Map<string, { from: string; at: number }>();

  constructor(
    private readonly phone: Phone,
    private readonly factory: IDBFactory,
  ) {
    phone.roomEnvelopes = (opened) => this.enqueue(() => this.receive(opened));
    el<HTMLFormElement>("room-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.enqueue(() => this.send());
    });
    el<HTMLDetailsElement>("room-members-box").addEventListener("toggle", () => this.showMembers());
    el("room-join").addEventListener("click", () => void this.joinCall());
    el("room-leave").addEventListener("click", () => this.leaveCall());
    phone.roomCall = async (opened) => (this.call ? this.call.handleEnvelope(opened) : this.heardJoin(opened));
    const hook = installedHook();
    hook.roomTone = (peer, hz) => this.call?.tone(peer, hz) ?? null;
  }

  /** Joins the selected room's call: `join` to every other member, a session per member in it. */
  private async joinCall(): Promise<void> {
    const conn = this.phone.connection;
    const me = this.me;
    const room = this.entry();
    if (this.call || !me || !room || room.removed) return;
    if (!conn) return this.error("Not connected to the server: cannot join the call.");
    let local: MediaStream;
    try {
      local = await openLocalMedia(false, installedHook().toneHz);
    } catch (err) {
      return this.error(err instanceof MediaProblem ? err.message : `Cannot open the microphone: ${(err as Error).message}`);
    }
    const turn = await conn.turn();
    const roomId = room.held.current.room;
    this.call = new RoomCall(conn, me, roomId, local, turn, {
      state: () => this.book?.room(roomId.text)?.held.current,
      roomMessage: (msg) =>
        this.enqueue(async () => {
          try {
            await this.apply(this.book?.receiveMessage(msg, Date.now()) ?? []);
          } catch (err) {
            this.count(err);
          }
        }),
      changed: () => this.showCall(),
      ignored: (code) => this.countCode(code),
    }, el("room-call-audio"));
    this.call.start();
    this.showCall();
  }

  /**
   * Not in a call: a member's `join` says it started or joined the room's call; the page shows
   * it (and does not answer: only members in the call answer, §21.5). Leaves are sent only to
   * those in the call, so the notice says when, not that the member is still there.
   */
  private heardJoin(opened: OpenedEnvelope): boolean {
    const e = opened.envelope;
    if (e.kind !== "room_call") return false;
    let body;
    try {
      body = parseRoomCall(opened.plaintext);
    } catch (err) {
      this.count(err);
      return true;
    }
    const entry = this.book?.room(body.room.text);
    if (!entry || entry.removed || !entry.held.current.members.some((m) => m.id.equals(e.from)) || body.op !== "join") return true;
    this.heard.set(body.room.text, { from: e.from.text, at: Date.now() });
    installedHook().roomCallHeard[body.room.text] = e.from.text;
    this.showCall();
    return true;
  }

  private leaveCall(): void {
    this.call?.leave();
    this.call = null;
    this.showCall();
  }

  /** The call's peers with their state and safety number, and the hook's view. */
  private showCall(): void {
    const call = this.call;
    const me = this.me;
    el("room-join").hidden = call !== null;
    el("room-leave").hidden = call === null;
    el("room-call-peers").hidden = call === null;
    const heard = this.selected && !call ? this.heard.get(this.selected) : undefined;
    el("room-call-notice").hidden = !heard;
    if (heard && this.selected) {
      el("room-call-notice").textContent = `${this.nameOf(this.selected, heard.from)} joined the room's call at ${new Date(heard.at).toTimeString().slice(0, 8)}.`;
    }
    const peers = call?.list() ?? [];
    installedHook().roomCall = call ? { room: call.room.text, peers } : null;
    el("room-call-peers").replaceChildren(
      ...peers.map((p) => {
        const li = document.createElement("li");
        const id = this.book?.room(call!.room.text)?.held.current.members.find((m) => m.id.text === p.id)?.id;
        li.textContent = `${this.nameOf(call!.room.text, p.id)}: ${p.state}${id && me ? `, safety number ${safetyNumber(me.id, id)}` : ""}`;
        return li;
      }),
    );
  }

  private count(err: unknown): void {
    this.countCode(isProtocolError(err) || err instanceof RoomBookError ? err.code : "room_refused");
    console.info(`rooms: refused: ${(err as Error).message}`);
  }

  private countCode(code: string): void {
    const hook = installedHook();
    hook.ignored[code] = (hook.ignored[code] ?? 0) + 1;
  }

  /** Shows the rooms of `me` (none with `null`). */
  setIdentity(me: Identity | null): void {
    this.enqueue(() => this.load(me));
  }

  private enqueue(step: () => Promise<void> | void): void {
    this.queue = this.queue.then(step).catch((err: unknown) => console.info(`rooms: ${(err as Error).message}`));
  }

  private async load(me: Identity | null): Promise<void> {
    this.leaveCall();
    this.store?.close();
    this.me = me;
    this.store = null;
    this.book = null;
    this.selected = null;
    const hook = installedHook();
    hook.roomLines = {};
    if (me) {
      this.store = await RoomStore.open(this.factory, me.id.text);
      this.book = new RoomBook(me.id);
      for (const record of await this.store.rooms()) {
        try {
          const waiting = (await this.store.waiting(record.room)).flatMap((json) => {
            try {
              return [parseRoomMessage(json)];
            } catch {
              return [];
            }
          });
          this.book.restore(roomEntry(record), await this.store.highestSeqs(record.room), waiting, Date.now());
          hook.roomLines[record.room] = (await this.store.history(record.room)).map((m) => this.hookLine(record.room, m));
        } catch (err) {
          console.info(`rooms: a stored room no longer verifies and is skipped (${(err as Error).message})`);
        }
      }
      this.selected = this.book.rooms()[0]?.held.current.room.text ?? null;
    }
    el("rooms").hidden = !me;
    this.showList();
    await this.showRoom();
  }

  private async receive(opened: OpenedEnvelope): Promise<void> {
    const book = this.book;
    if (!book) return;
    const e = opened.envelope;
    let events: RoomEvent[];
    try {
      events = book.receive(e.from, e.kind, opened.plaintext, Date.now());
    } catch (err) {
      return this.count(err);
    }
    await this.apply(events);
  }

  /** Stores what changed, then shows it. */
  private async apply(events: RoomEvent[]): Promise<void> {
    const book = this.book;
    const store = this.store;
    if (!book || !store) return;
    for (const ev of events) {
      const room = ev.room.text;
      if (ev.type === "waiting") {
        await store.addWaiting(room, ev.msg.sender.text, ev.msg.seq, encodeRoomMessage(ev.msg));
        continue;
      }
      if (ev.type === "message") {
        const m = ev.msg;
        const line = { room, id: ev.id, sender: m.sender.text, seq: m.seq.toString(), tsMs: m.tsMs.toString(), text: m.text, mine: false, receivedMs: Date.now() };
        if (await store.addMessage(line)) this.addLine(room, line);
        await store.removeWaiting(room, m.sender.text, m.seq);
        continue;
      }
      const entry = book.room(room)!;
      await store.saveRoom(roomRecord(entry));
      if (ev.type === "joined" && this.selected === null) this.selected = room;
      if (this.call && this.call.room.text === room) {
        if (ev.type === "removed") this.leaveCall();
        else this.call.onState(entry.held.current);
      }
    }
    this.showList();
    if (events.some((e) => e.type !== "message" && e.type !== "waiting" && e.room.text === this.selected)) await this.showRoom();
    this.schedulePoll();
  }

  private schedulePoll(): void {
    if (this.timer) clearTimeout(this.timer);
    const due = this.book?.pollTimeout();
    if (due === undefined) return;
    this.timer = setTimeout(() => this.enqueue(() => this.apply(this.book?.poll(Date.now()) ?? [])), Math.max(0, due - Date.now()));
  }

  private async send(): Promise<void> {
    const { book, store, me, selected } = this;
    const input = el<HTMLInputElement>("room-input");
    const text = input.value.trim();
    if (!book || !store || !me || !selected || text === "") return;
    if (!installedHook().online) return this.error("Not sent: not connected to the server.");
    let sent;
    try {
      sent = book.send(me, selected, text, Date.now());
    } catch (err) {
      return this.error(`Not sent: ${humanMessage((err as Error).message)}.`);
    }
    // Stored (with the seq used) before it leaves: a seq is never reused, even after a reload.
    await store.saveRoom(roomRecord(book.room(selected)!));
    const line = { room: selected, id: sent.id, sender: me.id.text, seq: sent.msg.seq.toString(), tsMs: sent.msg.tsMs.toString(), text, mine: true, receivedMs: Date.now() };
    await store.addMessage(line);
    // §19.6: on the call's channel to the members connected in it, through the server to the others.
    const json = utf8Decode(sent.out[0]?.body ?? new Uint8Array()) ?? "";
    const inCall = this.call?.room.text === selected ? this.call : null;
    const counts = installedHook().roomSent;
    for (const o of sent.out) {
      if (inCall?.sendRoomMsg(o.to, json)) counts.frames++;
      else if (this.phone.sendEnvelope(o.to, o.kind, o.body)) counts.envelopes++;
    }
    input.value = "";
    this.error(null);
    this.addLine(selected, line);
  }

  private error(message: string | null): void {
    el("room-error").textContent = message ?? "";
    el("room-error").hidden = message === null;
    if (message !== null) installedHook().lastError = message;
  }

  private entry(): RoomEntry | undefined {
    return this.selected ? this.book?.room(this.selected) : undefined;
  }

  /** The list of rooms, and the hook's view of them. */
  private showList(): void {
    const rooms = this.book?.rooms() ?? [];
    installedHook().rooms = rooms.map((r) => ({
      id: r.held.current.room.text,
      name: r.held.current.name,
      version: Number(r.held.current.version),
      members: r.held.current.members.map((m) => m.id.text),
      removed: r.removed,
    }));
    el("rooms-status").hidden = rooms.length > 0;
    const list = el("room-list");
    list.replaceChildren(
      ...rooms.map((r) => {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        const room = r.held.current.room.text;
        button.textContent = `${r.held.current.name} (${r.held.current.members.length} members)${r.removed ? ", removed" : ""}`;
        button.setAttribute("aria-pressed", String(room === this.selected));
        button.addEventListener("click", () => {
          this.selected = room;
          this.showList();
          this.enqueue(() => this.showRoom());
        });
        li.append(button);
        return li;
      }),
    );
  }

  /** The selected room: name, ID, removal, members (if open) and history. */
  private async showRoom(): Promise<void> {
    const entry = this.entry();
    el("room-view").hidden = !entry;
    if (!entry || !this.store) return;
    const state = entry.held.current;
    el("room-name").textContent = state.name;
    el("room-id").textContent = `Room ID ${state.room.text}, version ${state.version}`;
    el("room-removed").hidden = !entry.removed;
    el<HTMLButtonElement>("room-send").disabled = entry.removed;
    el<HTMLButtonElement>("room-join").disabled = entry.removed || (this.call !== null && this.call.room.text !== state.room.text);
    this.showMembers();
    this.showCall();
    const room = state.room.text;
    el("room-log").replaceChildren(...(await this.store.history(room)).map((m) => this.lineElement(m)));
    el("room-log").scrollTop = el("room-log").scrollHeight;
  }

  /** Members with role and ID; safety numbers only while the box is open. */
  private showMembers(): void {
    const entry = this.entry();
    const open = el<HTMLDetailsElement>("room-members-box").open;
    if (!entry || !this.me) return;
    const me = this.me.id;
    el("room-members").replaceChildren(
      ...entry.held.current.members.map((m) => {
        const li = document.createElement("li");
        const name = document.createElement("span");
        name.className = "who";
        name.textContent = `${m.name || "(no name)"}${m.id.equals(me) ? " (you)" : ""}${m.role === "admin" ? ", admin" : ""}`;
        const id = document.createElement("span");
        id.className = "callid";
        id.textContent = grouped(m.id);
        li.append(name, id);
        if (open && !m.id.equals(me)) {
          const safety = document.createElement("div");
          safety.className = "safety";
          safety.textContent = `Safety number: ${safetyNumber(me, m.id)}`;
          li.append(safety);
        }
        return li;
      }),
    );
  }

  private nameOf(room: string, sender: string): string {
    const m = this.book?.room(room)?.held.current.members.find((x) => x.id.text === sender);
    return m?.name || `${sender.slice(0, 6)}…`;
  }

  /** Whether `text` mentions this identity's name in `room` (`@name`, any case). */
  private mentionsMe(room: string, text: string): boolean {
    const me = this.me?.id;
    const name = me ? this.book?.room(room)?.held.current.members.find((m) => m.id.equals(me as CallId))?.name : undefined;
    return !!name && text.toLowerCase().includes(`@${name.toLowerCase()}`);
  }

  private hookLine(room: string, m: Line): { id: string; sender: string; text: string; mine: boolean; mention: boolean } {
    return { id: m.id, sender: m.sender, text: m.text, mine: m.mine, mention: !m.mine && this.mentionsMe(room, m.text) };
  }

  private addLine(room: string, m: Line): void {
    const hook = installedHook();
    (hook.roomLines[room] ??= []).push(this.hookLine(room, m));
    if (room !== this.selected) return;
    el("room-log").append(this.lineElement(m));
    el("room-log").scrollTop = el("room-log").scrollHeight;
  }

  private lineElement(m: Line): HTMLLIElement {
    const room = this.selected ?? "";
    const li = document.createElement("li");
    li.className = m.mine ? "me" : this.mentionsMe(room, m.text) ? "mention" : "";
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = new Date(Number(m.tsMs)).toTimeString().slice(0, 8);
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = m.mine ? "you:" : `${this.nameOf(room, m.sender)}:`;
    const body = document.createElement("span");
    body.textContent = m.text;
    li.title = `#${m.id}`;
    li.append(time, who, body);
    return li;
  }
}
