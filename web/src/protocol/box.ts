/**
 * NaCl/libsodium `crypto_box_easy` and `crypto_box_open_easy` (§4.3): X25519, HSalsa20 to a
 * key, XSalsa20-Poly1305 with the 16-byte tag first. Built from @noble's X25519, HSalsa20 and
 * secretbox; checked against the §9 vector.
 */
import { x25519 } from "@noble/curves/ed25519.js";
import { hsalsa, secretbox } from "@noble/ciphers/salsa.js";

/** "expand 32-byte k" as little-endian words. */
const SIGMA = Uint32Array.of(0x61707865, 0x3320646e, 0x79622d32, 0x6b206574);

function wordsLE(bytes: Uint8Array): Uint32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(4 * i, true);
  return out;
}

function bytesLE(words: Uint32Array): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setUint32(4 * i, w, true));
  return out;
}

/** `crypto_box_beforenm`: HSalsa20(X25519(sk, pk), 0^16). Throws on an all-zero shared secret. */
function boxKey(theirPublic: Uint8Array, mySecret: Uint8Array): Uint8Array {
  const shared = x25519.getSharedSecret(mySecret, theirPublic);
  if (shared.every((b) => b === 0)) throw new Error("X25519 gave the all-zero secret (small-order public key)");
  const out = new Uint32Array(8);
  hsalsa(SIGMA, wordsLE(shared), new Uint32Array(4), out);
  return bytesLE(out);
}

/** `crypto_box_easy(plaintext, nonce, theirPublic, mySecret)`: tag (16) || ciphertext. */
export function boxSeal(plaintext: Uint8Array, nonce: Uint8Array, theirPublic: Uint8Array, mySecret: Uint8Array): Uint8Array {
  return secretbox(boxKey(theirPublic, mySecret), nonce).seal(plaintext);
}

/** `crypto_box_open_easy`; `null` when authentication fails or the key is unusable. */
export function boxOpen(body: Uint8Array, nonce: Uint8Array, theirPublic: Uint8Array, mySecret: Uint8Array): Uint8Array | null {
  try {
    return secretbox(boxKey(theirPublic, mySecret), nonce).open(body);
  } catch {
    return null;
  }
}
