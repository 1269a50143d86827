/**
 * Reads the test vectors out of docs/protocol.md, so that the document stays their single
 * source (as scripts/interop/libsodium_check.py does). Every lookup fails loudly when the
 * text it looks for is gone, so a reworded document cannot silently skip a check.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The whole document. */
export const DOC = readFileSync(fileURLToPath(new URL("../../docs/protocol.md", import.meta.url)), "utf8");

/** The part of the document from heading `startsWith` to the next heading of the same level. */
export function section(startsWith: string): string {
  const level = startsWith.match(/^#+/)![0];
  const start = DOC.indexOf(`\n${startsWith}`);
  if (start < 0) throw new Error(`protocol.md has no heading ${startsWith}`);
  const rest = DOC.slice(start + 1);
  const next = rest.slice(1).search(new RegExp(`\\n${level} `));
  return next < 0 ? rest : rest.slice(0, next + 1);
}

/** The first backticked value in the table row whose first cell is `label`. */
export function tableValue(text: string, label: string): string {
  const row = text.split("\n").find((l) => l.startsWith(`| ${label} |`));
  if (!row) throw new Error(`no table row ${label}`);
  return row.match(/`([^`]*)`/)![1];
}

/** The contents of the first fenced code block after `marker` in `text`. */
export function blockAfter(text: string, marker: string): string {
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`marker not found: ${marker}`);
  const m = /```[a-z]*\n([\s\S]*?)\n```/.exec(text.slice(at));
  if (!m) throw new Error(`no code block after ${marker}`);
  return m[1];
}

/** The first backticked value after `marker` in `text`. */
export function backtickAfter(text: string, marker: string, nth = 0): string {
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`marker not found: ${marker}`);
  const all = [...text.slice(at + marker.length).matchAll(/`([^`]+)`/g)];
  if (all.length <= nth) throw new Error(`no backticked value after ${marker}`);
  return all[nth][1];
}

/** Hex → bytes, for vectors. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** Bytes `from, from+1, …, from+n-1` (the doc's `00 01 … 1f` seeds and nonces). */
export function range(from: number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => from + i);
}
