import { describe, expect, it } from "vitest";
import { Identity } from "../src/protocol/identity.ts";
import { RoomInbox } from "../src/protocol/inbox.ts";
import { RoomId, signRoomMessage, type RoomMessage } from "../src/protocol/room.ts";
import { range } from "./doc.ts";
import { bob } from "./fixtures.ts";

const ROOM = RoomId.fromBytes(range(0xa0, 16));
const carol = Identity.fromSeed(range(0x40, 32));
const msg = (who: Identity, seq: number): RoomMessage => signRoomMessage(who, { room: ROOM, seq: BigInt(seq), tsMs: 0n, text: `m${seq}` });

function drain(inbox: RoomInbox, now: number): string[] {
  const out: string[] = [];
  for (let m = inbox.poll(now); m; m = inbox.poll(now)) out.push(`${m.sender.text.slice(0, 4)}:${m.seq}`);
  return out;
}

describe("room inbox (§21.4)", () => {
  it("releases in order at once and drops duplicates from the other path", () => {
    const inbox = new RoomInbox();
    expect(inbox.insert(msg(bob, 1), 0)).toBe("held");
    expect(inbox.insert(msg(bob, 2), 0)).toBe("held");
    expect(inbox.insert(msg(bob, 1), 5)).toBe("duplicate");
    expect(drain(inbox, 5)).toEqual(["fgwl:1", "fgwl:2"]);
    expect(inbox.pollTimeout()).toBeUndefined();
  });

  it("reorders a late message that comes within the wait", () => {
    const inbox = new RoomInbox();
    inbox.insert(msg(bob, 2), 0);
    expect(drain(inbox, 0)).toEqual([]);
    expect(inbox.pollTimeout()).toBe(2000);
    inbox.insert(msg(bob, 1), 1500);
    expect(drain(inbox, 1500)).toEqual(["fgwl:1", "fgwl:2"]);
  });

  it("skips a missing message after 2 s; arriving later it is a duplicate", () => {
    const inbox = new RoomInbox();
    inbox.insert(msg(bob, 1), 0);
    inbox.insert(msg(bob, 3), 100);
    expect(drain(inbox, 100)).toEqual(["fgwl:1"]);
    expect(drain(inbox, 2099)).toEqual([]);
    expect(drain(inbox, 2100)).toEqual(["fgwl:3"]);
    expect(inbox.insert(msg(bob, 2), 3000)).toBe("duplicate");
  });

  it("holds a sender's first message unless it is seq 1; senders are independent", () => {
    const inbox = new RoomInbox();
    inbox.insert(msg(bob, 5), 0);
    inbox.insert(msg(carol, 1), 0);
    expect(drain(inbox, 0)).toEqual([`${carol.id.text.slice(0, 4)}:1`]);
    expect(drain(inbox, 2000)).toEqual(["fgwl:5"]);
  });

  it("releases the lowest at once beyond the per-sender bound, and resumes after a restart", () => {
    const inbox = new RoomInbox(2000, 3);
    for (const s of [3, 5, 7, 9]) inbox.insert(msg(bob, s), 0);
    expect(drain(inbox, 0)).toEqual(["fgwl:3"]); // four held: the lowest goes at once
    expect(drain(inbox, 2000)).toEqual(["fgwl:5", "fgwl:7", "fgwl:9"]);
    const resumed = new RoomInbox();
    resumed.resume(bob.id.text, 7n);
    expect(resumed.insert(msg(bob, 7), 0)).toBe("duplicate");
    resumed.insert(msg(bob, 8), 0);
    expect(drain(resumed, 0)).toEqual(["fgwl:8"]);
  });
});
