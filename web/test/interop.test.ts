/** The browser interop rules of §18.8 (web/src/app/interop.ts). */
import { describe, expect, it } from "vitest";
import { answerAsDtlsServer, audioPreferences, fingerprintOfDigest, isCallH264, videoPreferences } from "../src/app/interop.ts";
import { extractFingerprint } from "../src/protocol/sdp.ts";

// What Chromium 156 lists in RTCRtpReceiver.getCapabilities("video") (abridged).
const chromiumVideo = [
  { mimeType: "video/VP8", clockRate: 90000 },
  { mimeType: "video/rtx", clockRate: 90000, sdpFmtpLine: "apt=96" },
  { mimeType: "video/H264", clockRate: 90000, sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f" },
  { mimeType: "video/H264", clockRate: 90000, sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f" },
  { mimeType: "video/H264", clockRate: 90000, sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" },
  { mimeType: "video/H264", clockRate: 90000, sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f" },
  { mimeType: "video/VP9", clockRate: 90000, sdpFmtpLine: "profile-id=0" },
  { mimeType: "video/red", clockRate: 90000 },
  { mimeType: "video/ulpfec", clockRate: 90000 },
];

describe("browser interop", () => {
  it("prefers exactly §18.5's H.264: constrained baseline, packetization mode 1", () => {
    const prefs = videoPreferences(chromiumVideo);
    expect(prefs).toHaveLength(1);
    expect(prefs[0].sdpFmtpLine).toContain("profile-level-id=42e01f");
    expect(prefs[0].sdpFmtpLine).toContain("packetization-mode=1");
    expect(isCallH264({ mimeType: "video/H264", sdpFmtpLine: "packetization-mode=0;profile-level-id=42e01f" })).toBe(false);
    expect(isCallH264({ mimeType: "video/VP8" })).toBe(false);
    expect(videoPreferences(chromiumVideo.filter((c) => c.mimeType !== "video/H264"))).toEqual([]);
  });

  it("keeps only Opus for audio", () => {
    const audio = [{ mimeType: "audio/opus" }, { mimeType: "audio/red" }, { mimeType: "audio/PCMU" }, { mimeType: "audio/telephone-event" }];
    expect(audioPreferences(audio)).toEqual([{ mimeType: "audio/opus" }]);
  });

  it("answers as DTLS server (§18.4) and changes nothing else", () => {
    const sdp = "v=0\r\na=setup:active\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=setup:active\r\na=x-setup:active\r\n";
    expect(answerAsDtlsServer(sdp)).toBe("v=0\r\na=setup:passive\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=setup:passive\r\na=x-setup:active\r\n");
    expect(answerAsDtlsServer("a=setup:actpass\n")).toBe("a=setup:actpass\n");
  });

  it("writes a certificate digest in §5.1's normalized fingerprint form", () => {
    const digest = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
    const fp = fingerprintOfDigest(digest);
    expect(fp).toHaveLength(103);
    // The same text the SDP extraction gives for that digest in lowercase.
    const line = `a=fingerprint:sha-256 ${[...digest].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
    expect(extractFingerprint(`v=0\r\n${line}\r\n`)).toBe(fp);
  });
});
