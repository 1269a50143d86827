/**
 * Rooms (§21): room IDs, signed room states and the rule every member applies to take a new
 * one (§21.3), signed room messages and their IDs (§21.4), and the `room_call` announcement
 * with its pair token (§21.5). Sans-IO: the caller holds the states and passes them in.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { parseBodyObject, Members } from "./body.ts";
import { CallId, decodeChecked, encodeChecked, ROOM_ID_FORM } from "./callid.ts";
import { isUnprintable } from "./callbody.ts";
import { verifyStrict } from "./ed25519.ts";
import { base64Decode, base64Encode, bytesCompare, bytesEqual, concat, hexEncode, u32be, u64be, u8, utf8, utf8Length } from "./encoding.ts";
import { fail, isProtocolError } from "./errors.ts";
import { MAX_PLAINTEXT_BYTES } from "./envelope.ts";
import type { Identity } from "./identity.ts";
import { isObject, jsonString, membersProblem, type JsonObject } from "./json.ts";

/** Longest room or member name, bytes (§21.2). */
export const MAX_ROOM_NAME_BYTES = 64;
/** Most members of a room (§21.2). */
export const MAX_ROOM_MEMBERS = 64;
/** Longest room message text, bytes (§21.4). */
export const MAX_ROOM_TEXT_BYTES = 8_192;
/** Largest `room_call` plaintext (§21.5). */
export const MAX_ROOM_CALL_BYTES = 1_024;

const codes = { tooLarge: "room_too_large", malformed: "room_malformed" } as const;

/** A room ID (§21.1). */
export class RoomId {
  private constructor(
    /** The 16 room bytes. */
    readonly bytes: Uint8Array,
    /** The 32-character text form. */
    readonly text: string,
  ) {}

  /** Parses a typed or received room ID; throws `room_id_bad_*`. */
  static parse(text: string): RoomId {
    const bytes = decodeChecked(ROOM_ID_FORM, text);
    return new RoomId(bytes, encodeChecked(ROOM_ID_FORM, bytes));
  }

  /** The room ID of 16 bytes. */
  static fromBytes(bytes: Uint8Array): RoomId {
    if (bytes.length !== 16) throw new RangeError("a room is 16 bytes");
    return new RoomId(bytes.slice(), encodeChecked(ROOM_ID_FORM, bytes));
  }
}

/** A member of a room state. */
export interface RoomMember {
  id: CallId;
  name: string;
  role: "admin" | "member";
}

/** A signed room state (§21.2). */
export interface RoomState {
  room: RoomId;
  version: bigint;
  prev: Uint8Array;
  tsMs: bigint;
  name: string;
  members: RoomMember[];
  signer: CallId;
  sig: Uint8Array;
}

function checkName(name: string, min: number, what: string): void {
  const n = utf8Length(name);
  if (n < min || n > MAX_ROOM_NAME_BYTES) fail("room_invalid", `${what} must be ${min} to ${MAX_ROOM_NAME_BYTES} bytes`);
  if (isUnprintable(name)) fail("room_invalid", `${what} contains a control or format character`);
}

/** §21.2 rules on names, member count, order and admins. */
function checkStateRules(s: Omit<RoomState, "sig">): void {
  if (s.version < 1n) fail("room_invalid", "version starts at 1");
  const zero = s.prev.every((b) => b === 0);
  if (zero !== (s.version === 1n)) fail("room_invalid", "prev is 32 zero bytes for version 1 and only then");
  checkName(s.name, 1, "the room name");
  if (s.members.length < 1 || s.members.length > MAX_ROOM_MEMBERS) fail("room_invalid", `a room has 1 to ${MAX_ROOM_MEMBERS} members`);
  s.members.forEach((m, i) => {
    checkName(m.name, 0, "a member name");
    if (i > 0 && bytesCompare(s.members[i - 1].id.publicKey, m.id.publicKey) >= 0) fail("room_invalid", "members must be in strictly ascending key order");
  });
  if (!s.members.some((m) => m.role === "admin")) fail("room_invalid", "a room needs at least one admin");
}

/** §21.2 signed bytes. */
export function roomStateSignedBytes(s: Omit<RoomState, "sig">): Uint8Array {
  const name = utf8(s.name);
  const parts = [utf8("call-room-state/v1"), s.room.bytes, u64be(s.version), s.prev, u64be(s.tsMs), s.signer.publicKey, u8(name.length), name, u8(s.members.length)];
  for (const m of s.members) {
    const mname = utf8(m.name);
    parts.push(m.id.publicKey, u8(m.role === "admin" ? 1 : 0), u8(mname.length), mname);
  }
  return concat(...parts);
}

/** The state's hash, `SHA-256(signed bytes || sig)`: names it in `prev`, breaks ties. */
export function roomStateHash(s: RoomState): Uint8Array {
  return sha256(concat(roomStateSignedBytes(s), s.sig));
}

/** Signs a room state (members are sorted by key here). */
export function signRoomState(me: Identity, s: Omit<RoomState, "sig" | "signer">): RoomState {
  const members = [...s.members].sort((a, b) => bytesCompare(a.id.publicKey, b.id.publicKey));
  const unsigned = { ...s, members, signer: me.id };
  checkStateRules(unsigned);
  return { ...unsigned, sig: me.sign(roomStateSignedBytes(unsigned)) };
}

/** Canonical JSON of a room state (§21.2 member order, raw UTF-8). */
export function encodeRoomState(s: RoomState): string {
  const members = s.members.map((m) => `{"id":"${m.id.text}","name":${jsonString(m.name)},"role":"${m.role}"}`).join(",");
  return (
    `{"room":"${s.room.text}","version":${s.version},"prev":"${base64Encode(s.prev)}","ts_ms":${s.tsMs},` +
    `"name":${jsonString(s.name)},"members":[${members}],"signer":"${s.signer.text}","sig":"${base64Encode(s.sig)}"}`
  );
}

function callIdMember(m: Members, name: string): CallId {
  try {
    return CallId.parse(m.string(name));
  } catch (e) {
    if (isProtocolError(e)) fail("room_malformed", `${name} is not a valid call ID (${e.code})`);
    throw e;
  }
}

function roomMember(m: Members): RoomId {
  try {
    return RoomId.parse(m.string("room"));
  } catch (e) {
    if (isProtocolError(e)) fail("room_malformed", `room is not a valid room ID (${e.code})`);
    throw e;
  }
}

function sigMember(m: Members, name: string, len: number): Uint8Array {
  const v = base64Decode(m.string(name));
  if (!v || v.length !== len) fail("room_malformed", `${name} must be canonical base64 of ${len} bytes`);
  return v;
}

/** A room body as an object with exactly these members: a plaintext, or an object from a `room_msg` frame. */
function roomObject(plaintext: Uint8Array | string | JsonObject, required: string[], optional: string[] = []): Members {
  if (!(plaintext instanceof Map)) return new Members(parseBodyObject(plaintext, MAX_PLAINTEXT_BYTES, codes, required, optional), "room_malformed");
  const problem = membersProblem(plaintext, required, optional);
  if (problem) fail("room_malformed", problem);
  return new Members(plaintext, "room_malformed");
}

/** Parses and verifies a room state (§21.2): shape, rules, signature by `signer`. */
export function parseRoomState(plaintext: Uint8Array | string | JsonObject): RoomState {
  const m = roomObject(plaintext, ["room", "version", "prev", "ts_ms", "name", "members", "signer", "sig"]);
  const members = m.array("members").map((v): RoomMember => {
    if (!isObject(v)) fail("room_malformed", "a member is an object");
    const mp = membersProblem(v, ["id", "name", "role"]);
    if (mp) fail("room_malformed", mp);
    const mm = new Members(v, "room_malformed");
    const role = mm.string("role");
    if (role !== "admin" && role !== "member") fail("room_malformed", "role must be admin or member");
    return { id: callIdMember(mm, "id"), name: mm.string("name"), role };
  });
  const s: RoomState = {
    room: roomMember(m),
    version: m.u64("version"),
    prev: sigMember(m, "prev", 32),
    tsMs: m.u64("ts_ms"),
    name: m.string("name"),
    members,
    signer: callIdMember(m, "signer"),
    sig: sigMember(m, "sig", 64),
  };
  checkStateRules(s);
  if (!verifyStrict(s.sig, roomStateSignedBytes(s), s.signer.publicKey)) fail("room_bad_signature", "the room state's signature does not verify under its signer");
  return s;
}

/** What a member holds for one room (§21.3). */
export interface HeldRoom {
  current: RoomState;
  parent?: RoomState;
}

function roleOf(s: RoomState, id: CallId): RoomMember["role"] | undefined {
  return s.members.find((m) => m.id.equals(id))?.role;
}

function sameMember(a: RoomMember, b: RoomMember): boolean {
  return a.id.equals(b.id) && a.name === b.name && a.role === b.role;
}

/** Rule 3: may `s.signer` make `s` from `authority`? (an admin, or a member leaving) */
function canMake(authority: RoomState, s: RoomState): boolean {
  const role = roleOf(authority, s.signer);
  if (role === "admin") return true;
  if (role === undefined || s.name !== authority.name) return false;
  const rest = authority.members.filter((m) => !m.id.equals(s.signer));
  return rest.length === s.members.length && rest.every((m, i) => sameMember(m, s.members[i]));
}

/**
 * A first state (invitation or creation): lists `me`, signed by one of its own admins, and
 * (for an invitation) by the envelope's authenticated sender `from`.
 */
export function takeFirstState(s: RoomState, me: CallId, from?: CallId): HeldRoom {
  if (roleOf(s, me) === undefined) fail("room_not_a_member", "this room state does not list you");
  if (roleOf(s, s.signer) !== "admin") fail("room_not_admin", "an invitation must be signed by an admin of the room");
  if (from && !from.equals(s.signer)) fail("room_not_admin", "an invitation must come from the admin who signed it");
  return { current: s };
}

/**
 * §21.3: the held room after being offered the verified state `s`, or the same object if
 * nothing changes (same hash). Throws `room_wrong_room`, `room_not_admin` or `room_stale`.
 */
export function takeState(held: HeldRoom, s: RoomState): HeldRoom {
  const cur = held.current;
  if (!bytesEqual(s.room.bytes, cur.room.bytes)) fail("room_wrong_room", "this state is for another room");
  const hash = roomStateHash(s);
  const curHash = roomStateHash(cur);
  if (bytesEqual(hash, curHash)) return held;
  if (s.version > cur.version) {
    if (!canMake(cur, s)) fail("room_not_admin", "signed by someone the held state does not allow to make it");
    return { current: s, parent: cur };
  }
  if (s.version < cur.version) fail("room_stale", "an older version than the one held");
  if (!bytesEqual(s.prev, cur.prev)) fail("room_stale", "a concurrent edit made from another state");
  const authority = held.parent && bytesEqual(roomStateHash(held.parent), cur.prev) ? held.parent : cur;
  if (!canMake(authority, s)) fail("room_not_admin", "signed by someone the parent state does not allow to make it");
  if (bytesCompare(hash, curHash) >= 0) fail("room_stale", "the losing one of two concurrent edits");
  return { current: s, parent: held.parent };
}

/** A signed room message (§21.4). */
export interface RoomMessage {
  room: RoomId;
  sender: CallId;
  seq: bigint;
  tsMs: bigint;
  replyTo?: Uint8Array;
  text: string;
  sig: Uint8Array;
}

/** Cc other than LF and TAB (§21.4 text rule). */
const TEXT_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

function checkMessageRules(msg: Omit<RoomMessage, "sig">): void {
  if (msg.seq < 1n) fail("room_invalid", "seq starts at 1");
  if (utf8Length(msg.text) > MAX_ROOM_TEXT_BYTES) fail("room_invalid", `a text is at most ${MAX_ROOM_TEXT_BYTES} bytes`);
  if (TEXT_CONTROL.test(msg.text)) fail("room_invalid", "control characters other than LF and TAB are not allowed");
}

/** §21.4 signed bytes. */
export function roomMessageSignedBytes(m: Omit<RoomMessage, "sig">): Uint8Array {
  const text = utf8(m.text);
  const reply = m.replyTo ? concat(u8(1), m.replyTo) : u8(0);
  return concat(utf8("call-room-msg/v1"), m.room.bytes, m.sender.publicKey, u64be(m.seq), u64be(m.tsMs), reply, u32be(text.length), text);
}

/** The message ID: first 16 bytes of `SHA-256(signed bytes || sig)`, 32 lowercase hex digits. */
export function roomMessageId(m: RoomMessage): string {
  return hexEncode(sha256(concat(roomMessageSignedBytes(m), m.sig)).subarray(0, 16));
}

/** Signs a message from `me`. */
export function signRoomMessage(me: Identity, m: Omit<RoomMessage, "sig" | "sender">): RoomMessage {
  const unsigned = { ...m, sender: me.id };
  checkMessageRules(unsigned);
  return { ...unsigned, sig: me.sign(roomMessageSignedBytes(unsigned)) };
}

/** Canonical JSON of a room message (`reply_to` only when present). */
export function encodeRoomMessage(m: RoomMessage): string {
  const reply = m.replyTo ? `"reply_to":"${hexEncode(m.replyTo)}",` : "";
  return `{"room":"${m.room.text}","sender":"${m.sender.text}","seq":${m.seq},"ts_ms":${m.tsMs},${reply}"text":${jsonString(m.text)},"sig":"${base64Encode(m.sig)}"}`;
}

/** Parses and verifies a room message (§21.4; membership is the caller's check). */
export function parseRoomMessage(plaintext: Uint8Array | string | JsonObject): RoomMessage {
  const m = roomObject(plaintext, ["room", "sender", "seq", "ts_ms", "text", "sig"], ["reply_to"]);
  const reply = m.optionalString("reply_to");
  if (reply !== undefined && !/^[0-9a-f]{32}$/.test(reply)) fail("room_malformed", "reply_to is 32 lowercase hex digits");
  const msg: RoomMessage = {
    room: roomMember(m),
    sender: callIdMember(m, "sender"),
    seq: m.u64("seq"),
    tsMs: m.u64("ts_ms"),
    ...(reply !== undefined ? { replyTo: Uint8Array.from(reply.match(/../g)!, (h) => parseInt(h, 16)) } : {}),
    text: m.string("text"),
    sig: sigMember(m, "sig", 64),
  };
  checkMessageRules(msg);
  if (!verifyStrict(msg.sig, roomMessageSignedBytes(msg), msg.sender.publicKey)) fail("room_bad_signature", "the message's signature does not verify under its sender");
  return msg;
}

/** A `room_call` announcement (§21.5). */
export interface RoomCall {
  room: RoomId;
  session: Uint8Array;
  op: "join" | "here" | "leave";
}

/** Canonical `room_call` plaintext. */
export function encodeRoomCall(c: RoomCall): string {
  return `{"room":"${c.room.text}","session":"${hexEncode(c.session)}","op":"${c.op}"}`;
}

/** Parses a `room_call` plaintext (at most 1,024 bytes). */
export function parseRoomCall(plaintext: Uint8Array | string): RoomCall {
  const m = new Members(parseBodyObject(plaintext, MAX_ROOM_CALL_BYTES, codes, ["room", "session", "op"]), "room_malformed");
  const session = m.string("session");
  if (!/^[0-9a-f]{32}$/.test(session)) fail("room_malformed", "session is 32 lowercase hex digits");
  const op = m.string("op");
  if (op !== "join" && op !== "here" && op !== "leave") fail("room_malformed", "op is join, here or leave");
  return { room: roomMember(m), session: Uint8Array.from(session.match(/../g)!, (h) => parseInt(h, 16)), op };
}

/**
 * §21.5 pair token; `offerer` is the member whose key bytes compare smaller.
 */
export function roomPairToken(room: RoomId, a: CallId, aSession: Uint8Array, b: CallId, bSession: Uint8Array): { token: Uint8Array; offerer: CallId } {
  const [lo, hi] = bytesCompare(a.publicKey, b.publicKey) < 0 ? [[a, aSession], [b, bSession]] as const : [[b, bSession], [a, aSession]] as const;
  const token = sha256(concat(utf8("call-room-pair/v1"), room.bytes, lo[0].publicKey, lo[1], hi[0].publicKey, hi[1])).slice(0, 16);
  return { token, offerer: lo[0] };
}
