/**
 * The page's local media (camera and microphone, or a generated tone for tests) and what it
 * measures of the remote media: the level of a frequency (WebAudio analyser) and whether the
 * last video picture has content (canvas pixel variance). Errors say what the person can do.
 */

/** A user-facing media error. */
export class MediaProblem extends Error {}

/** Camera/microphone, with one clear message per failure. */
export async function openLocalMedia(video: boolean, toneHz: number | null): Promise<MediaStream> {
  let stream: MediaStream;
  const wantsMicrophone = toneHz === null;
  if (!wantsMicrophone && !video) return new MediaStream([toneTrack(toneHz)]);
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new MediaProblem("This page cannot use a microphone here: browsers allow it only on https pages and on 127.0.0.1 or localhost.");
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: wantsMicrophone, video });
  } catch (err) {
    const name = (err as DOMException).name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      throw new MediaProblem(`No permission to use the ${video ? "camera and microphone" : "microphone"}: allow it in the browser's site settings and try again.`);
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      throw new MediaProblem(`No ${video ? "camera or microphone" : "microphone"} found. ${video ? "Try an audio-only call, or plug one in." : "Plug one in and try again."}`);
    }
    if (name === "NotReadableError") throw new MediaProblem("The camera or microphone is in use by another program.");
    throw new MediaProblem(`Cannot open the camera or microphone (${name}).`);
  }
  if (toneHz !== null) stream.addTrack(toneTrack(toneHz));
  return stream;
}

let audioContext: AudioContext | null = null;

function context(): AudioContext {
  audioContext ??= new AudioContext();
  void audioContext.resume();
  return audioContext;
}

/** A sine of `hz` at about -12 dBFS as an audio track (what `call --audio-in sine:HZ` sends). */
export function toneTrack(hz: number): MediaStreamTrack {
  const ctx = context();
  const osc = ctx.createOscillator();
  osc.frequency.value = hz;
  const gain = ctx.createGain();
  gain.gain.value = 0.25;
  const dest = ctx.createMediaStreamDestination();
  osc.connect(gain).connect(dest);
  osc.start();
  return dest.stream.getAudioTracks()[0];
}

/** Measures the remote audio: the power near one frequency against the whole band. */
export class ToneMeter {
  private readonly analyser: AnalyserNode;

  constructor(stream: MediaStream) {
    const ctx = context();
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 4096;
    this.analyser.smoothingTimeConstant = 0;
    ctx.createMediaStreamSource(stream).connect(this.analyser);
  }

  /** Share of the spectrum's power within ±3 bins of `hz` (0 … 1), and the loudest frequency. */
  measure(hz: number): { share: number; peakHz: number } {
    const bins = new Float32Array(this.analyser.frequencyBinCount);
    this.analyser.getFloatFrequencyData(bins);
    const binHz = this.analyser.context.sampleRate / this.analyser.fftSize;
    const target = Math.round(hz / binHz);
    let total = 0;
    let near = 0;
    let peak = 0;
    let peakPower = 0;
    bins.forEach((db, i) => {
      const power = Number.isFinite(db) ? 10 ** (db / 10) : 0;
      total += power;
      if (Math.abs(i - target) <= 3) near += power;
      if (power > peakPower) [peak, peakPower] = [i, power];
    });
    return { share: total > 0 ? near / total : 0, peakHz: peak * binHz };
  }
}

/** Variance of the grey levels of the video's current picture, sampled at 64x48 (0: blank). */
export function pictureVariance(video: HTMLVideoElement): number {
  if (video.videoWidth === 0) return 0;
  const canvas = document.createElement("canvas");
  canvas.width = 64;
  canvas.height = 48;
  const g = canvas.getContext("2d", { willReadFrequently: true });
  if (!g) return 0;
  g.drawImage(video, 0, 0, 64, 48);
  const px = g.getImageData(0, 0, 64, 48).data;
  let sum = 0;
  let sq = 0;
  const n = px.length / 4;
  for (let i = 0; i < px.length; i += 4) {
    const y = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
    sum += y;
    sq += y * y;
  }
  const mean = sum / n;
  return sq / n - mean * mean;
}
