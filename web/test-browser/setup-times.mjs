// Measures call set-up between the page in Chromium and `call` on loopback (a report, not a
// test): N calls each way, each held until the page has decoded audio and a video frame, then
// hung up. Prints p50/p95 of, as the page sees them:
//   page → call:  click on Call → connected, → first audio packet from call, → first decoded frame;
//   call → page:  offer received by the page (it answers at once) → the same three.
// Usage: node test-browser/setup-times.mjs [N]   (binaries as for the tests: CALL_BIN, CALL_SIGNALING_BIN)
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, dialFromPage, missingPrerequisite, newCallIdentity, openPage, runCall, startServer, waitHook } from "./harness.mjs";

const missing = missingPrerequisite();
if (missing) {
  console.log(`setup-times: ${missing}`);
  process.exit(1);
}
const n = Number(process.argv[2] ?? 20);
const server = await startServer();
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
const p = await openPage(browser, server);
await p.page.evaluate(() => (window.__callTest.autoAnswer = true));
const media = ["--audio-in", "sine:440", "--audio-out", "null", "--video-in", "pattern", "--video-out", "null"];
const rows = { "page → call": [], "call → page": [] };

async function finish(run) {
  await waitHook(p.page, "h.timings.firstAudioAt !== null && h.timings.firstFrameAt !== null", "first audio and frame", 30_000);
  const t = await p.page.evaluate(() => window.__callTest.timings);
  await p.page.click("#hangup");
  await waitHook(p.page, 'h.state === "ended"', "the hang-up");
  await run.wait();
  return t;
}

for (let i = 0; i < n; i++) {
  const peer = newCallIdentity();
  const listener = runCall(peer.dir, ["listen", "--auto-accept", ...media], server.url);
  // dialFromPage retries until the listener is online; time the last (answered) click.
  await dialFromPage(p.page, peer.id);
  const t = await finish(listener);
  rows["page → call"].push([t.connectedAt - t.startedAt, t.firstAudioAt - t.startedAt, t.firstFrameAt - t.startedAt]);

  const caller = newCallIdentity();
  const dialer = runCall(caller.dir, ["dial", p.id, ...media], server.url);
  await waitHook(p.page, 'h.state === "connecting" || h.state === "connected"', "the page to answer", 30_000);
  const u = await finish(dialer);
  rows["call → page"].push([u.connectedAt - u.ringAt, u.firstAudioAt - u.ringAt, u.firstFrameAt - u.ringAt]);
  process.stderr.write(".");
}
process.stderr.write("\n");

const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};
console.log(`${n} calls each way, loopback, Chromium ${browser.version()}, debug binaries; ms from the page's start (click on Call, or the offer's arrival) to:`);
console.log("direction      | connected p50/p95 | first audio p50/p95 | first frame p50/p95");
for (const [dir, xs] of Object.entries(rows)) {
  const col = (k) => `${pct(xs.map((r) => r[k]), 0.5)} / ${pct(xs.map((r) => r[k]), 0.95)}`;
  console.log(`${dir.padEnd(14)} | ${col(0).padEnd(17)} | ${col(1).padEnd(19)} | ${col(2)}`);
}
await browser.close();
server.stop();
process.exit(0);
