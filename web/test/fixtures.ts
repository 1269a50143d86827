// What several test files share: the two identities of the document's worked examples (§9,
// §17, §21.7: seeds 00..1f and 20..3f) and a way to read a refusal's protocol error code.
import { isProtocolError } from "../src/protocol/errors.ts";
import { Identity } from "../src/protocol/identity.ts";
import { range } from "./doc.ts";

export const alice = Identity.fromSeed(range(0, 32));
export const bob = Identity.fromSeed(range(0x20, 32));

/** The protocol error code `f` throws, or "ok" when it returns. */
export function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isProtocolError(e)) return e.code;
    throw e;
  }
  return "ok";
}
