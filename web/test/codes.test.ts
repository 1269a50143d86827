import { describe, expect, it } from "vitest";
import { BODY_CODES, ENVELOPE_CODES, ID_CODES, ROOM_CODES, SERVER_ERROR_CODES } from "../src/protocol/errors.ts";
import { section } from "./doc.ts";

/** The first-column codes of the table that follows `marker` in `text`. */
function tableCodes(text: string, marker: string): string[] {
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`no ${marker}`);
  const rows = text.slice(at).split("\n").slice(1);
  const start = rows.findIndex((l) => l.startsWith("| code"));
  const codes: string[] = [];
  for (const line of rows.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    codes.push(/^\| `([a-z_0-9]+)`/.exec(line)![1]);
  }
  return codes;
}

describe("error codes are exactly the document's", () => {
  const s6 = section("## 6. Error codes");
  it("§6 envelope, body and call ID codes", () => {
    expect([...ENVELOPE_CODES].sort()).toEqual(tableCodes(s6, "**Envelope**").sort());
    expect([...BODY_CODES].sort()).toEqual(tableCodes(s6, "**Bodies and signed SDP**").sort());
    const ids = /\*\*Call IDs\*\* \(`IdError::code`\): ([^\n]+\n[^\n]+)/.exec(s6)![1];
    expect([...ID_CODES].sort()).toEqual([...ids.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]).sort());
  });

  it("§13 server codes and §21.6 room codes", () => {
    expect([...SERVER_ERROR_CODES].sort()).toEqual(tableCodes(section("## 13. Error codes"), "## 13. Error codes").sort());
    expect([...ROOM_CODES].sort()).toEqual(tableCodes(section("### 21.6 Error codes"), "### 21.6 Error codes").sort());
  });
});
