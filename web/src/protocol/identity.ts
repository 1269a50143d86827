/**
 * A local identity: the 32-byte Ed25519 seed (RFC 8032 private key), its call ID and the
 * X25519 secret derived from it (§3). The seed never leaves this object except through the
 * key file export (§7) and the key store.
 */
import { randomBytes } from "@noble/hashes/utils.js";
import { CallId } from "./callid.ts";
import { publicKeyOf, sign, x25519SecretFromSeed } from "./ed25519.ts";

/** One's own key pair. */
export class Identity {
  /** This identity's call ID. */
  readonly id: CallId;
  /** X25519 secret for `crypto_box` (§3). */
  readonly x25519Secret: Uint8Array;
  private readonly seed: Uint8Array;

  private constructor(seed: Uint8Array) {
    this.seed = seed.slice();
    // A key derived from a seed is always torsion-free (§2.3), so this cannot fail.
    this.id = CallId.fromPublicKey(publicKeyOf(this.seed));
    this.x25519Secret = x25519SecretFromSeed(this.seed);
  }

  /** The identity of a 32-byte seed. */
  static fromSeed(seed: Uint8Array): Identity {
    if (seed.length !== 32) throw new RangeError("an Ed25519 seed is 32 bytes");
    return new Identity(seed);
  }

  /** A new identity from the platform CSPRNG. */
  static generate(): Identity {
    return new Identity(randomBytes(32));
  }

  /** Ed25519 signature over `message`. */
  sign(message: Uint8Array): Uint8Array {
    return sign(this.seed, message);
  }

  /** A copy of the seed, for the key file and the key store only. */
  exportSeed(): Uint8Array {
    return this.seed.slice();
  }
}
