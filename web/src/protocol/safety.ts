/**
 * The safety number (§2.5): Signal's construction, each 30-digit half from one party's key
 * and call ID (5200 SHA-512 invocations), the halves sorted, shown as 12 groups of 5 digits.
 */
import { sha512 } from "@noble/hashes/sha2.js";
import type { CallId } from "./callid.ts";
import { concat, utf8 } from "./encoding.ts";

const ITERATIONS = 5199;

/** One party's 30-digit half. */
export function safetyHalf(id: CallId): string {
  const pk = id.publicKey;
  let h = sha512(concat(utf8("call-safety-number/v2"), pk, utf8(id.text)));
  const buf = new Uint8Array(64 + 32);
  buf.set(pk, 64);
  for (let i = 0; i < ITERATIONS; i++) {
    buf.set(h, 0);
    h = sha512(buf);
  }
  let out = "";
  for (let i = 0; i < 6; i++) {
    let v = 0n;
    for (let j = 0; j < 5; j++) v = (v << 8n) | BigInt(h[5 * i + j]);
    out += (v % 100000n).toString().padStart(5, "0");
  }
  return out;
}

/** The 60 digits as 12 space-separated groups of 5; the same on both sides. */
export function safetyNumber(a: CallId, b: CallId): string {
  const digits = [safetyHalf(a), safetyHalf(b)].sort().join("");
  return digits.match(/.{5}/g)!.join(" ");
}
