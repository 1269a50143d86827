// Helpers of the Chromium tests: the real `call-signaling` and `call` binaries, Debian's
// Chromium driven by playwright-core (no browser download), and readers for what `call` writes
// (WAV, Y4M). Loopback only. Waits are bounded and fail with a message; nothing is timed.
import { spawn, execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const repo = resolve(here, "../..");
const targetDebug = join(process.env.CARGO_TARGET_DIR ?? join(repo, "target"), "debug");

export const CALL_BIN = process.env.CALL_BIN ?? join(targetDebug, "call");
export const SIGNALING_BIN = process.env.CALL_SIGNALING_BIN ?? join(targetDebug, "call-signaling");
export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
/** Screenshots and other artefacts (not committed). */
export const ARTEFACTS = join(process.env.CARGO_TARGET_DIR ?? join(repo, "target"), "browser-tests");

/** Why the browser tests cannot run here, or null. */
export function missingPrerequisite() {
  for (const [what, path] of [["chromium", CHROMIUM], ["call", CALL_BIN], ["call-signaling", SIGNALING_BIN]]) {
    if (!existsSync(path)) return `${what} not found at ${path}`;
  }
  return null;
}

/** Flags that make headless Chromium usable for calls on loopback without devices. */
export const CHROMIUM_ARGS = [
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--autoplay-policy=no-user-gesture-required",
];

const children = new Set();
const tempDirs = [];
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
  // The WAV and Y4M files are large; the screenshots stay under ARTEFACTS.
  if (!process.env.CALL_BROWSER_KEEP) for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** A temporary directory removed when the tests end (kept with CALL_BROWSER_KEEP=1). */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A started `call-signaling` on 127.0.0.1:0; `url` is its ws:// URL, `page` the page's. */
export async function startServer(extra = []) {
  const child = spawn(SIGNALING_BIN, ["--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0", ...extra], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  children.add(child);
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const url = await new Promise((resolveUrl, reject) => {
    createInterface({ input: child.stdout }).once("line", resolveUrl);
    child.once("exit", (code) => reject(new Error(`call-signaling exited (${code}) before printing its URL: ${stderr}`)));
  });
  const page = url.replace(/^ws:/, "http:").replace(/\/ws$/, "/");
  return {
    url,
    page,
    origin: new URL(page).origin,
    stop() {
      child.kill("SIGTERM");
      children.delete(child);
    },
  };
}

/** A fresh `call` config dir with a new identity; returns it and the call ID. */
export function newCallIdentity() {
  mkdirSync(ARTEFACTS, { recursive: true });
  const dir = tempDir("call-browser-");
  execFileSync(CALL_BIN, ["--config-dir", dir, "id", "new"], { stdio: "ignore" });
  const id = execFileSync(CALL_BIN, ["--config-dir", dir, "id", "show"]).toString().trim().split("\n").pop();
  return { dir, id };
}

/** A running `call` process with its output collected. */
export function runCall(dir, args, serverUrl) {
  const child = spawn(CALL_BIN, ["--config-dir", dir, ...args, "--server", serverUrl, "--quiet", "--ice-scope", "loopback"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  children.add(child);
  const run = { child, stdout: "", stderr: "", exit: null };
  child.stdout.on("data", (d) => (run.stdout += d));
  child.stderr.on("data", (d) => (run.stderr += d));
  run.exited = new Promise((r) =>
    child.once("exit", (code, signal) => {
      children.delete(child);
      run.exit = code ?? signal;
      r(run.exit);
    }),
  );
  /** Waits for the exit (at most `ms`), returns the status. */
  run.wait = async (ms = 30_000) => {
    let timer;
    const status = await Promise.race([run.exited, new Promise((r) => (timer = setTimeout(() => r("still running"), ms)))]);
    clearTimeout(timer); // a pending timer would keep the test process alive for up to `ms`
    if (status === "still running") throw new Error(`call ${args[0]} did not exit within ${ms} ms; stderr:\n${run.stderr}`);
    return status;
  };
  return run;
}

/** A browser page on the server's page with a new identity, logged in. Records console errors and every request. */
export async function openPage(browser, server, { keyFile = null, prepare = null } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  if (prepare) await prepare(page);
  const errors = [];
  const requests = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("request", (r) => requests.push(r.url()));
  page.on("websocket", (ws) => requests.push(ws.url()));
  await page.goto(server.page);
  if (keyFile) await page.setInputFiles("#import", keyFile);
  else await page.click("#create");
  await waitHook(page, "h.online === true", "the page logs in to the server");
  const id = await page.evaluate(() => window.__callTest.myId);
  return { page, context, errors, requests, id };
}

/**
 * Waits until `expr` (over `h`, the page's __callTest) holds, polling every 20 ms from here:
 * the page's CSP forbids the in-page `eval` that Playwright's waitForFunction would use, while
 * DevTools evaluation is not bound by it. Fails with `what` and the hook's state.
 */
export async function waitHook(page, expr, what, timeout = 20_000) {
  const until = Date.now() + timeout;
  const check = `(() => { const h = window.__callTest; return !!h && !!(${expr}); })()`;
  for (;;) {
    if (await page.evaluate(check)) return;
    if (Date.now() > until) {
      const hook = await page.evaluate(() => JSON.stringify(window.__callTest)).catch(() => "(no page)");
      throw new Error(`timed out waiting for ${what} (${expr}); page state: ${hook}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Dials `id` from the page, retrying while the peer is not online yet (a `call listen` still logging in). */
export async function dialFromPage(page, id, run = null) {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (run && run.exit !== null) throw new Error(`call exited (${run.exit}) before the page could dial it:\n${run.stderr}`);
    const before = await page.evaluate(() => window.__callTest.callsEnded);
    await page.fill("#peer-id", id);
    await page.click("#dial");
    await waitHook(page, `h.state === "connecting" || h.state === "connected" || h.callsEnded > ${before}`, "the dial to be answered or refused");
    const { state, endMessage } = await page.evaluate(() => window.__callTest);
    if (state !== "ended" || !/offline/.test(endMessage ?? "")) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${id} never came online`);
}

/** Samples of a WAV file written by `call --audio-out` (48 kHz mono 16-bit). */
export function readWav(path) {
  const bytes = readFileSync(path);
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = bytes.toString("ascii", at, at + 4);
    const size = bytes.readUInt32LE(at + 4);
    if (id === "data") {
      const end = Math.min(bytes.length, at + 8 + size);
      const samples = new Float64Array((end - at - 8) >> 1);
      for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(at + 8 + 2 * i) / 32768;
      return samples;
    }
    at += 8 + size + (size & 1);
  }
  throw new Error(`${path} has no data chunk`);
}

/** Share of the signal's power at `hz` (Goertzel; 1 for a pure sine of that frequency). */
export function toneShare(samples, hz, rate = 48_000) {
  const n = samples.length;
  if (n === 0) return 0;
  const k = (2 * Math.PI * hz) / rate;
  const coeff = 2 * Math.cos(k);
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (const x of samples) {
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
    energy += x * x;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return energy > 0 ? (2 * power) / (n * energy) : 0;
}

/** Seconds of `samples` made of `hz`: 100 ms blocks whose power is mostly (> 50 %) at `hz`. */
export function toneSeconds(samples, hz, rate = 48_000) {
  const block = rate / 10;
  let blocks = 0;
  for (let at = 0; at + block <= samples.length; at += block) {
    if (toneShare(samples.subarray(at, at + block), hz, rate) > 0.5) blocks++;
  }
  return blocks / 10;
}

/** Frames in a Y4M file written by `call --video-out FILE.y4m`, and the luma variance of the last one. */
export function readY4m(path) {
  const size = statSync(path).size;
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(256);
    readSync(fd, head, 0, 256, 0);
    const line = head.toString("latin1", 0, head.indexOf(10));
    const w = Number(/ W(\d+)/.exec(line)?.[1]);
    const h = Number(/ H(\d+)/.exec(line)?.[1]);
    const frameBytes = 6 + (w * h * 3) / 2;
    const frames = Math.floor((size - line.length - 1) / frameBytes);
    let variance = 0;
    if (frames > 0) {
      const luma = Buffer.alloc(w * h);
      readSync(fd, luma, 0, w * h, line.length + 1 + (frames - 1) * frameBytes + 6);
      let sum = 0;
      let sq = 0;
      for (const y of luma) {
        sum += y;
        sq += y * y;
      }
      variance = sq / luma.length - (sum / luma.length) ** 2;
    }
    return { width: w, height: h, frames, variance };
  } finally {
    closeSync(fd);
  }
}

/** The tampering relay's rewrite (test-browser/tamper.ts), bundled for Node with esbuild. */
export async function loadTamper() {
  const { build } = await import("esbuild");
  const out = join(tempDir("call-tamper-"), "tamper.mjs");
  await build({ entryPoints: [join(here, "tamper.ts")], bundle: true, platform: "node", format: "esm", outfile: out, logLevel: "warning" });
  return import(out);
}

/** Call ID grouped as the page shows it. */
export function grouped(id) {
  return id.match(/.{1,6}/g).join(" ");
}
