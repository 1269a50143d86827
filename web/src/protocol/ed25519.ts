/**
 * Ed25519 as the protocol uses it: key validation (§2.3), strict signature verification
 * (§2.4, the rules of ed25519-dalek's `verify_strict`), signing, and the libsodium
 * Ed25519 → X25519 conversion (§3). Point arithmetic is @noble/curves'; the rules are written
 * out here so that they can be read against the spec.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { bytesEqual, concat } from "./encoding.ts";

type Point = ReturnType<typeof ed25519.Point.fromBytes>;

/** Prime subgroup order `L = 2^252 + 27742317777372353535851937790883648493`. */
export const L = (1n << 252n) + 27742317777372353535851937790883648493n;
/** Field prime `p = 2^255 − 19`. */
export const P = (1n << 255n) - 19n;

/** Why a 32-byte string is not a usable public key (§2.3 order of checks). */
export type KeyProblem = "invalid" | "weak" | "torsion";

/** A point decoded strictly (canonical encoding only), or `null`. */
function decodeCanonical(bytes: Uint8Array): Point | null {
  if (bytes.length !== 32) return null;
  let point: Point;
  try {
    point = ed25519.Point.fromBytes(bytes, false);
  } catch {
    return null;
  }
  // Re-encoding must give the same bytes: refuses y ≥ p and x = 0 with the sign bit set.
  return bytesEqual(point.toBytes(), bytes) ? point : null;
}

/** §2.3: `null` if `pk` is a valid call ID key, else what is wrong with it. */
export function keyProblem(pk: Uint8Array): KeyProblem | null {
  const point = decodeCanonical(pk);
  if (!point) return "invalid";
  if (point.isSmallOrder()) return "weak";
  if (!point.isTorsionFree()) return "torsion";
  return null;
}

function scalarFromLE(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/**
 * Strict Ed25519 verification (§2.4): `s < L`, `R` and `A` canonical and not of small
 * order, and `[s]B = R + [k]A` exactly (cofactorless). Never throws.
 */
export function verifyStrict(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  const rBytes = signature.subarray(0, 32);
  const s = scalarFromLE(signature.subarray(32, 64));
  if (s >= L) return false;
  const a = decodeCanonical(publicKey);
  const r = decodeCanonical(rBytes);
  if (!a || !r || a.isSmallOrder() || r.isSmallOrder()) return false;
  const k = scalarFromLE(sha512(concat(rBytes, publicKey, message))) % L;
  const left = ed25519.Point.BASE.multiplyUnsafe(s);
  const right = r.add(a.multiplyUnsafe(k));
  return left.equals(right);
}

/** The Ed25519 public key of a 32-byte seed (RFC 8032 §5.1.5). */
export function publicKeyOf(seed: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(seed);
}

/** An Ed25519 signature (RFC 8032, pure) by `seed` over `message`. */
export function sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
  return ed25519.sign(message, seed);
}

function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let result = 1n;
  base %= m;
  while (exp > 0n) {
    if (exp & 1n) result = (result * base) % m;
    base = (base * base) % m;
    exp >>= 1n;
  }
  return result;
}

/** §3: `u = (1 + y) / (1 − y) mod p`, 32 bytes little-endian. Only for keys that passed §2.3. */
export function x25519PublicFromEd25519(pk: Uint8Array): Uint8Array {
  const yBytes = pk.slice();
  yBytes[31] &= 0x7f;
  const y = scalarFromLE(yBytes);
  const u = (((1n + y) % P) * modPow((1n - y + P) % P, P - 2n, P)) % P;
  const out = new Uint8Array(32);
  let v = u;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 255n);
    v >>= 8n;
  }
  return out;
}

/** §3: `h = SHA-512(seed)`, first 32 bytes clamped. */
export function x25519SecretFromSeed(seed: Uint8Array): Uint8Array {
  const h = sha512(seed).slice(0, 32);
  h[0] &= 248;
  h[31] &= 127;
  h[31] |= 64;
  return h;
}
