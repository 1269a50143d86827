/**
 * Parsing helpers shared by the envelope bodies (§5, §21): a plaintext is UTF-8 JSON, an
 * object with exactly the listed members, within the plaintext limit.
 */
import { utf8Decode } from "./encoding.ts";
import { fail, type ProtocolCode } from "./errors.ts";
import { isObject, jsonU64, membersProblem, parseJson, type JsonObject, type JsonValue } from "./json.ts";

/** Parses a plaintext into an object with exactly `required` (+ `optional`) members. */
export function parseBodyObject(
  plaintext: Uint8Array | string,
  limit: number,
  codes: { tooLarge: ProtocolCode; malformed: ProtocolCode },
  required: readonly string[],
  optional: readonly string[] = [],
): JsonObject {
  const size = typeof plaintext === "string" ? new TextEncoder().encode(plaintext).length : plaintext.length;
  if (size > limit) fail(codes.tooLarge, `a body of ${size} bytes is over the ${limit}-byte limit`);
  const text = typeof plaintext === "string" ? plaintext : utf8Decode(plaintext);
  if (text === null) fail(codes.malformed, "the body is not UTF-8");
  let value: JsonValue;
  try {
    value = parseJson(text);
  } catch (e) {
    fail(codes.malformed, `the body is not JSON (${(e as Error).message})`);
  }
  if (!isObject(value)) fail(codes.malformed, "the body is not a JSON object");
  const problem = membersProblem(value, required, optional);
  if (problem) fail(codes.malformed, problem);
  return value;
}

/** Typed member readers that fail with one code. */
export class Members {
  constructor(
    private readonly obj: JsonObject,
    private readonly code: ProtocolCode,
  ) {}

  /** A string member. */
  string(name: string): string {
    const v = this.obj.get(name);
    if (typeof v !== "string") fail(this.code, `${name} must be a string`);
    return v;
  }

  /** An optional string member (absent → `undefined`). */
  optionalString(name: string): string | undefined {
    return this.obj.has(name) ? this.string(name) : undefined;
  }

  /** An integer member in `0 … 2^64−1`. */
  u64(name: string): bigint {
    const v = jsonU64(this.obj.get(name));
    if (v === null) fail(this.code, `${name} must be an integer from 0 to 2^64-1`);
    return v;
  }

  /** An array member. */
  array(name: string): JsonValue[] {
    const v = this.obj.get(name);
    if (!Array.isArray(v)) fail(this.code, `${name} must be an array`);
    return v;
  }

  /** An object member. */
  object(name: string): JsonObject {
    const v = this.obj.get(name);
    if (!isObject(v)) fail(this.code, `${name} must be an object`);
    return v;
  }

  /** The raw value (for members of several types). */
  raw(name: string): JsonValue | undefined {
    return this.obj.get(name);
  }
}

/** A call token (§5): 32 hex digits, either case on receipt; lowercase when written. */
export function parseCallToken(text: string, code: ProtocolCode): Uint8Array {
  if (!/^[0-9a-fA-F]{32}$/.test(text)) fail(code, "call_id must be 32 hex digits");
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
