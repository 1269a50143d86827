import { describe, expect, it } from "vitest";
import { isProtocolError } from "../src/protocol/errors.ts";
import { exportKeyFile, importKeyFile } from "../src/protocol/keyfile.ts";
import { section } from "./doc.ts";
import { alice } from "./fixtures.ts";

describe("§7 identity.key", () => {
    const s7 = section("## 7. Local files");

  it("writes exactly the 17 + 45 bytes the document describes", () => {
    const file = exportKeyFile(alice);
    expect(s7).toContain("`17 + 45` bytes");
    expect(file).toBe("call-identity-v1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    expect(new TextEncoder().encode(file).length).toBe(17 + 45);
    expect(importKeyFile(file).id.text).toBe(alice.id.text);
  });

  it("reads CRLF, surrounding whitespace, blank lines and a missing final newline", () => {
    const seed = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    for (const f of [`call-identity-v1\r\n${seed}\r\n`, `\n  call-identity-v1 \n\n\t${seed}`, `call-identity-v1\n${seed}`]) {
      expect(importKeyFile(f).id.text).toBe(alice.id.text);
    }
  });

  it("refuses other files with key_file_malformed", () => {
    for (const f of ["", "call-identity-v2\nAAAA\n", `call-identity-v1\n${"A".repeat(40)}=\n`, "call-identity-v1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nextra\n", "x".repeat(5000)]) {
      try {
        importKeyFile(f);
        expect.unreachable(f);
      } catch (e) {
        expect(isProtocolError(e, "key_file_malformed")).toBe(true);
      }
    }
  });
});
