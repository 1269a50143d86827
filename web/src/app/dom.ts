/** Small DOM helpers of the page. Untrusted text only ever goes through `textContent`. */
import type { CallId } from "../protocol/callid.ts";

/** The element with this id (the page is broken without it). */
export function el<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

/** Groups a call ID for reading aloud (parsing ignores the spaces). */
export function grouped(id: CallId): string {
  return id.text.match(/.{1,6}/g)!.join(" ");
}

/** A protocol error's message without its `code: ` prefix. */
export function humanMessage(message: string): string {
  return message.replace(/^[a-z_]+: /, "");
}
