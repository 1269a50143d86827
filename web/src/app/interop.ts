/**
 * The rules a browser follows to talk to `call` (webrtc-rs 0.17.2), as pure functions so they
 * can be unit-tested; docs/protocol.md §18.8 ("Browsers") lists them for any client.
 */

/** The video codec both sides must use (§18.5): H.264 constrained baseline, mode 1. */
export function isCallH264(codec: { mimeType: string; sdpFmtpLine?: string }): boolean {
  if (codec.mimeType.toLowerCase() !== "video/h264") return false;
  const fmtp = (codec.sdpFmtpLine ?? "").toLowerCase();
  return fmtp.includes("profile-level-id=42e01f") && fmtp.includes("packetization-mode=1");
}

/**
 * The codec list for `setCodecPreferences` on a video transceiver: only §18.5's H.264 (no VP8,
 * which webrtc-rs would otherwise pick first, no RTX, RED or FEC, which `call` does not use).
 * Empty when the browser cannot do it (then the call goes on without video).
 */
export function videoPreferences<C extends { mimeType: string; sdpFmtpLine?: string }>(codecs: readonly C[]): C[] {
  const h264 = codecs.filter(isCallH264);
  return h264.slice(0, 1);
}

/** The codec list for an audio transceiver: Opus only (§18.1). */
export function audioPreferences<C extends { mimeType: string }>(codecs: readonly C[]): C[] {
  return codecs.filter((c) => c.mimeType.toLowerCase() === "audio/opus");
}

/**
 * §18.4: the answerer is the DTLS server. Browsers answer `a=setup:active` by default; an
 * answer may say `passive` as well (RFC 8842), so the page rewrites its own answer before
 * applying it. Only lines exactly `a=setup:active` change.
 */
export function answerAsDtlsServer(sdp: string): string {
  return sdp.replace(/^a=setup:active(\r?)$/gm, "a=setup:passive$1");
}

/** `sha-256 AB:CD:…` (§5.1's normalized form) of a DER certificate's SHA-256 digest. */
export function fingerprintOfDigest(digest: Uint8Array): string {
  return `sha-256 ${[...digest].map((b) => b.toString(16).toUpperCase().padStart(2, "0")).join(":")}`;
}
