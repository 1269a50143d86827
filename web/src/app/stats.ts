/**
 * Live call statistics from `RTCPeerConnection.getStats()` (W3C webrtc-stats): RTT, loss,
 * bitrate both ways, jitter-buffer delay, decoded video frames. Rates are computed between two
 * samples, so the caller keeps the previous one.
 */

/** One second's view of the call. */
export interface CallStats {
  /** Round-trip time of the selected candidate pair, ms. */
  rttMs: number | null;
  /** Local and remote candidate types of the selected pair (`host`, `srflx`, `prflx`, `relay`). */
  localCandidate: string | null;
  remoteCandidate: string | null;
  /** Audio packets received and lost (cumulative). */
  audioReceived: number;
  audioLost: number;
  /** Loss in percent since the call started. */
  lossPercent: number;
  /** kbit/s since the previous sample (`null` on the first one). */
  sendKbps: number | null;
  recvKbps: number | null;
  /** Average audio jitter-buffer delay, ms. */
  jitterBufferMs: number | null;
  /** Video frames decoded (cumulative) and received picture size. */
  framesDecoded: number;
  frameWidth: number;
  /** When this sample was taken (the report's timestamp, ms). */
  at: number;
  bytesSent: number;
  bytesReceived: number;
}

/** Reads the report into {@link CallStats}; `previous` gives the rates. */
export async function sampleStats(pc: RTCPeerConnection, previous: CallStats | null): Promise<CallStats> {
  const report = await pc.getStats();
  const s: CallStats = {
    rttMs: null,
    localCandidate: null,
    remoteCandidate: null,
    audioReceived: 0,
    audioLost: 0,
    lossPercent: 0,
    sendKbps: null,
    recvKbps: null,
    jitterBufferMs: null,
    framesDecoded: 0,
    frameWidth: 0,
    at: performance.now(),
    bytesSent: 0,
    bytesReceived: 0,
  };
  let selectedPair: string | null = null;
  report.forEach((r) => {
    if (r.type === "transport" && typeof r.selectedCandidatePairId === "string") selectedPair = r.selectedCandidatePairId;
  });
  report.forEach((r) => {
    if (r.type === "candidate-pair" && r.id === selectedPair) {
      if (typeof r.currentRoundTripTime === "number") s.rttMs = r.currentRoundTripTime * 1000;
      const byId = report as unknown as ReadonlyMap<string, { candidateType?: string }>;
      s.localCandidate = byId.get(r.localCandidateId)?.candidateType ?? null;
      s.remoteCandidate = byId.get(r.remoteCandidateId)?.candidateType ?? null;
    }
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      s.audioReceived += r.packetsReceived ?? 0;
      s.audioLost += Math.max(0, r.packetsLost ?? 0);
      if (r.jitterBufferEmittedCount > 0) s.jitterBufferMs = (r.jitterBufferDelay / r.jitterBufferEmittedCount) * 1000;
    }
    if (r.type === "inbound-rtp" && r.kind === "video") {
      s.framesDecoded += r.framesDecoded ?? 0;
      s.frameWidth = r.frameWidth ?? s.frameWidth;
    }
    if (r.type === "transport") {
      s.bytesSent += r.bytesSent ?? 0;
      s.bytesReceived += r.bytesReceived ?? 0;
    }
  });
  const total = s.audioReceived + s.audioLost;
  s.lossPercent = total > 0 ? (100 * s.audioLost) / total : 0;
  if (previous && s.at > previous.at) {
    const secs = (s.at - previous.at) / 1000;
    s.sendKbps = ((s.bytesSent - previous.bytesSent) * 8) / 1000 / secs;
    s.recvKbps = ((s.bytesReceived - previous.bytesReceived) * 8) / 1000 / secs;
  }
  return s;
}

/** One line for the page. */
export function statsLine(s: CallStats): string {
  const parts = [
    `RTT ${s.rttMs === null ? "–" : `${s.rttMs.toFixed(0)} ms`}`,
    `loss ${s.lossPercent.toFixed(1)} % (${s.audioLost}/${s.audioReceived + s.audioLost})`,
    `up ${s.sendKbps === null ? "–" : s.sendKbps.toFixed(0)} kbit/s`,
    `down ${s.recvKbps === null ? "–" : s.recvKbps.toFixed(0)} kbit/s`,
    `jitter buffer ${s.jitterBufferMs === null ? "–" : `${s.jitterBufferMs.toFixed(0)} ms`}`,
  ];
  if (s.framesDecoded > 0) parts.push(`video ${s.framesDecoded} frames decoded (${s.frameWidth} px wide)`);
  return parts.join(" · ");
}
