/**
 * The protocol core is sans-IO (STYLE.md): no clock, socket, timer or storage inside
 * web/src/protocol; time comes in as `now`. Randomness (nonces, new keys) is the one
 * platform call it makes.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const dir = fileURLToPath(new URL("../src/protocol/", import.meta.url));
const FORBIDDEN = [/Date\.now\(/, /new Date\(/, /performance\.now/, /WebSocket/, /setTimeout|setInterval/, /fetch\(/, /indexedDB/, /localStorage/];

describe("sans-IO protocol core", () => {
  it("reads no clock and touches no socket, timer or storage", () => {
    const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) {
      const code = readFileSync(dir + f, "utf8")
        .split("\n")
        .filter((l) => !/^\s*(\/\/|\*|\/\*\*)/.test(l))
        .join("\n");
      for (const pattern of FORBIDDEN) expect(pattern.test(code), `${f} matches ${pattern}`).toBe(false);
    }
  });
});
