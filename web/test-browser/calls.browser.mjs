// Calls between the web page in a real Chromium (Debian's package, headless, driven by
// playwright-core) and the real `call` binary, through a real `call-signaling`, all on
// loopback: both directions with audio (tones checked on both sides), video (frames decoded on
// both sides), chat both ways, hang-up from either side; browser to browser relay-only
// through the embedded TURN; the incoming-call screen; no console errors; no request leaves
// the server's origin. Run by scripts/test.sh (`node --test`), skipped with one line when
// Chromium or the binaries are missing.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ARTEFACTS,
  CHROMIUM,
  CHROMIUM_ARGS,
  dialFromPage,
  grouped,
  missingPrerequisite,
  newCallIdentity,
  openPage,
  readWav,
  readY4m,
  runCall,
  startServer,
  toneSeconds,
  waitHook,
} from "./harness.mjs";

const missing = missingPrerequisite();
if (missing) console.log(`browser tests skipped: ${missing}`);

/** The page's own tone and `call`'s (different, so each side proves it hears the other). */
const PAGE_HZ = 880;
const CALL_HZ = 440;
const HOSTILE = '<b id="injected">bold</b> & <img src=x>';

describe("the web page in Chromium", { skip: missing ?? false, timeout: 300_000 }, () => {
  let chromium;
  let browser;
  let server;
  const pages = [];

  before(async () => {
    ({ chromium } = await import("playwright-core"));
    mkdirSync(ARTEFACTS, { recursive: true });
    server = await startServer(["--allow-loopback-peers"]);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    server?.stop();
  });

  async function page() {
    const p = await openPage(browser, server);
    pages.push(p);
    return p;
  }

  /** Every request of every page stayed on the server's origin, and no page logged an error. */
  function assertClean(p) {
    assert.deepEqual(p.errors, [], "no console errors during the call");
    const own = new URL(server.page);
    for (const url of p.requests) {
      const u = new URL(url);
      assert.equal(u.host, own.host, `request to ${url} left the server's origin`);
    }
  }

  /** The chat line `text` from the peer is in the log as text, with no element made of it. */
  async function assertChatIsText(page, text) {
    const lines = await page.$$eval("#chat-log li", (lis) => lis.map((li) => li.textContent));
    assert.ok(lines.some((l) => l.includes(text)), `chat log ${JSON.stringify(lines)} shows ${text}`);
    assert.equal(await page.$$eval("#chat-log b, #chat-log img, #injected", (e) => e.length), 0, "peer text never becomes HTML");
  }

  test("the page dials call: audio, video and chat both ways, the page hangs up", async () => {
    const p = await page();
    const peer = newCallIdentity();
    const heard = join(peer.dir, "heard.wav");
    const seen = join(peer.dir, "seen.y4m");
    const listener = runCall(
      peer.dir,
      ["listen", "--auto-accept", "--audio-in", `sine:${CALL_HZ}`, "--audio-out", heard, "--video-in", "pattern", "--video-size", "320x240", "--video-out", seen, "--say", HOSTILE],
      server.url,
    );
    await p.page.evaluate((hz) => (window.__callTest.toneHz = hz), PAGE_HZ);
    await dialFromPage(p.page, peer.id, listener);
    await waitHook(p.page, 'h.state === "connected"', "the call to connect");
    assert.equal(await p.page.evaluate(() => window.__callTest.safetyNumber), await p.page.textContent("#call-safety").then((t) => t.replace("Safety number: ", "")));
    // Media both ways: the page decodes call's pattern and hears its tone.
    await waitHook(p.page, "h.stats && h.stats.framesDecoded >= 10", "video frames from call to be decoded");
    await waitHook(p.page, `(() => { const t = h.remoteTone(${CALL_HZ}); return t && t.share > 0.5; })()`, `call's ${CALL_HZ} Hz tone in the page's analyser`);
    await waitHook(p.page, "h.remotePictureVariance() > 50", "a non-blank picture from call");
    // Chat both ways; call's hostile line is shown as text.
    await waitHook(p.page, `h.chatReceived.includes(${JSON.stringify(HOSTILE)})`, "call's chat line");
    await assertChatIsText(p.page, HOSTILE);
    await p.page.fill("#chat-input", "hello from the page");
    await p.page.press("#chat-input", "Enter");
    await waitFor(() => listener.stdout.includes(": hello from the page"), "call prints the page's chat line", listener);
    // Wait for the page's tone to be in call's WAV, then hang up from the page.
    await waitFor(() => wavSeconds(heard) > 1.5, "call records 1.5 s of the page's audio", listener);
    await p.page.click("#hangup");
    await waitHook(p.page, 'h.state === "ended"', "the page to end the call");
    assert.equal(await listener.wait(), 0, `call listen exits 0 after the page hung up: ${listener.stderr}`);
    const samples = readWav(heard);
    assert.ok(toneSeconds(samples, PAGE_HZ) >= 1, `call heard the page's ${PAGE_HZ} Hz tone (${toneSeconds(samples, PAGE_HZ)} s of it)`);
    assert.equal(toneSeconds(samples, CALL_HZ), 0, "and not its own tone");
    const video = readY4m(seen);
    assert.ok(video.frames >= 10, `call decoded the page's video (${video.frames} frames)`);
    assert.ok(video.variance > 50, `the last frame call decoded is not blank (variance ${video.variance})`);
    assertClean(p);
  });

  test("call dials the page: the caller is shown before answering; call hangs up", async () => {
    const p = await page();
    const caller = newCallIdentity();
    const heard = join(caller.dir, "heard.wav");
    const seen = join(caller.dir, "seen.y4m");
    const dialer = runCall(
      caller.dir,
      ["dial", p.id, "--duration", "4", "--audio-in", `sine:${CALL_HZ}`, "--audio-out", heard, "--video-in", "pattern", "--video-size", "320x240", "--video-out", seen, "--say", "hi from call"],
      server.url,
    );
    await p.page.evaluate((hz) => (window.__callTest.toneHz = hz), PAGE_HZ);
    await waitHook(p.page, 'h.state === "ringing"', "the incoming call");
    // Before answering: the caller's ID and the safety number `call` itself shows.
    assert.equal((await p.page.textContent("#incoming-id")).trim(), grouped(caller.id));
    assert.equal((await p.page.textContent("#incoming-name")).trim(), "Unknown caller");
    const safety = (await p.page.textContent("#incoming-safety")).trim();
    assert.match(safety, /^(\d{5} ){11}\d{5}$/);
    await p.page.screenshot({ path: join(ARTEFACTS, "incoming-call.png"), fullPage: true });
    await p.page.locator("#incoming").screenshot({ path: join(ARTEFACTS, "incoming-call-section.png") });
    await p.page.click("#accept");
    await waitHook(p.page, 'h.state === "connected"', "the call to connect");
    await waitHook(p.page, "h.stats && h.stats.framesDecoded >= 10 && h.remotePictureVariance() > 50", "call's video decoded and not blank");
    await waitHook(p.page, `(() => { const t = h.remoteTone(${CALL_HZ}); return t && t.share > 0.5; })()`, `call's ${CALL_HZ} Hz tone`);
    await waitHook(p.page, 'h.chatReceived.includes("hi from call")', "call's chat line");
    await p.page.fill("#chat-input", "hello back");
    await p.page.press("#chat-input", "Enter");
    await waitHook(p.page, "h.stats && h.stats.rttMs !== null && h.stats.recvKbps > 0", "an RTT and a bitrate in the live statistics");
    assert.match(await p.page.textContent("#call-stats"), /RTT \d+ ms · loss .* · up \d+ kbit\/s · down \d+ kbit\/s · jitter buffer/);
    await p.page.screenshot({ path: join(ARTEFACTS, "connected-call.png"), fullPage: true });
    // call hangs up after --duration.
    await waitHook(p.page, 'h.state === "ended"', "call's hang-up to end the call on the page", 30_000);
    assert.match(await p.page.evaluate(() => window.__callTest.endMessage), /peer hung up/);
    assert.equal(await dialer.wait(), 0, `call dial exits 0: ${dialer.stderr}`);
    assert.ok(dialer.stderr.includes(safety), "call showed the same safety number as the page");
    assert.ok(dialer.stdout.includes(": hello back"), `call printed the page's line: ${dialer.stdout}`);
    assert.equal(await p.page.evaluate(() => window.__callTest.answerSetup), "passive", "the page answered as DTLS server (§18.4)");
    const samples = readWav(heard);
    assert.ok(toneSeconds(samples, PAGE_HZ) >= 1, `call heard the page's tone (${toneSeconds(samples, PAGE_HZ)} s of it)`);
    assert.ok(readY4m(seen).frames >= 10, "call decoded the page's video");
    assertClean(p);
  });

  test("browser to browser, relay only through the embedded TURN; the callee hangs up", async () => {
    const a = await page();
    const b = await page();
    for (const p of [a, b]) await p.page.check("#relay-only");
    await a.page.fill("#peer-name", "Bee");
    await a.page.fill("#peer-id", b.id);
    await a.page.click("#dial");
    await waitHook(b.page, 'h.state === "ringing"', "b's incoming call");
    assert.equal((await b.page.textContent("#incoming-safety")).trim(), await a.page.evaluate(() => window.__callTest.safetyNumber), "both pages show one safety number");
    await b.page.click("#accept");
    await waitHook(a.page, 'h.state === "connected"', "the relayed call to connect");
    assert.equal(await a.page.textContent("#call-title"), "Call with Bee", "the name given when dialing is remembered");
    for (const p of [a, b]) {
      await waitHook(p.page, 'h.state === "connected"', "the relayed call to connect");
      await waitHook(p.page, "h.stats && h.stats.framesDecoded >= 5 && h.stats.audioReceived > 10", "media through the relay");
      const s = await p.page.evaluate(() => window.__callTest.stats);
      assert.equal(s.localCandidate, "relay", "only relay candidates are used");
    }
    await a.page.fill("#chat-input", "through the relay");
    await a.page.press("#chat-input", "Enter");
    await waitHook(b.page, 'h.chatReceived.includes("through the relay")', "the chat line through the relay");
    await b.page.click("#hangup");
    await waitHook(a.page, 'h.state === "ended"', "the caller to see the hang-up");
    // b calls back: a shows the name it gave b from its own known peers, and declines.
    await b.page.fill("#peer-id", a.id);
    await b.page.click("#dial");
    await waitHook(a.page, 'h.state === "ringing"', "a's incoming call");
    assert.equal((await a.page.textContent("#incoming-name")).trim(), "Bee");
    assert.equal((await a.page.textContent("#incoming-warning")).trim(), "", "no unknown-caller warning for a known peer");
    await a.page.click("#decline");
    await waitHook(b.page, 'h.state === "ended" && /declined/.test(h.endMessage)', "b to be told it was declined");
    assertClean(a);
    assertClean(b);
  });

  test("mute and camera off reach call: silence and a black picture", async () => {
    const p = await page();
    const peer = newCallIdentity();
    const heard = join(peer.dir, "heard.wav");
    const seen = join(peer.dir, "seen.y4m");
    const listener = runCall(peer.dir, ["listen", "--auto-accept", "--audio-in", "silence", "--audio-out", heard, "--video-in", "none", "--video-out", seen], server.url);
    await p.page.evaluate((hz) => (window.__callTest.toneHz = hz), PAGE_HZ);
    await dialFromPage(p.page, peer.id, listener);
    await waitHook(p.page, 'h.state === "connected"', "the call to connect");
    await waitFor(() => toneSeconds(readWavOrEmpty(heard), PAGE_HZ) >= 1, "call hears the page's tone before muting", listener);
    await waitFor(() => readY4mOrNone(seen)?.variance > 50, "call decodes the page's camera before it is turned off", listener);
    await p.page.click("#mute");
    await p.page.click("#camera");
    assert.equal(await p.page.getAttribute("#mute", "aria-pressed"), "true");
    const mutedAt = readWavOrEmpty(heard).length;
    const framesAt = readY4mOrNone(seen).frames;
    // Wait for 1.5 s more audio and 15 more frames, then look at the newest part only.
    await waitFor(() => readWavOrEmpty(heard).length > mutedAt + 72_000, "1.5 s of audio after muting", listener);
    await waitFor(() => readY4mOrNone(seen).frames > framesAt + 15, "frames after the camera was turned off", listener);
    assert.equal(toneSeconds(readWavOrEmpty(heard).slice(-48_000), PAGE_HZ), 0, "no tone in the last second after muting");
    assert.ok(readY4mOrNone(seen).variance < 5, `the newest picture is black (variance ${readY4mOrNone(seen).variance})`);
    await p.page.click("#hangup");
    assert.equal(await listener.wait(), 0);
    assertClean(p);
  });

  test("a second caller gets busy; a caller who gives up leaves a missed call", async () => {
    const p = await page();
    const first = newCallIdentity();
    const listener = runCall(first.dir, ["listen", "--auto-accept", "--audio-in", "silence", "--audio-out", "null"], server.url);
    // An audio-only call with the page's tone (no getUserMedia at all).
    await p.page.uncheck("#dial-video");
    await p.page.evaluate((hz) => (window.__callTest.toneHz = hz), PAGE_HZ);
    await dialFromPage(p.page, first.id, listener);
    await waitHook(p.page, 'h.state === "connected"', "the first call to connect");
    const second = newCallIdentity();
    const busy = runCall(second.dir, ["dial", p.id, "--audio-in", "silence", "--audio-out", "null"], server.url);
    assert.notEqual(await busy.wait(), 0);
    assert.match(busy.stderr, /busy/);
    assert.equal(await p.page.evaluate(() => window.__callTest.state), "connected", "the first call goes on");
    await p.page.click("#hangup");
    assert.equal(await listener.wait(), 0);
    // An offer answered after it expired (the page's clock moved on 2 minutes) is not taken.
    const late = newCallIdentity();
    const lateDialer = runCall(late.dir, ["dial", p.id, "--audio-in", "silence", "--audio-out", "null", "--connect-timeout", "3"], server.url);
    await waitHook(p.page, 'h.state === "ringing"', "the late call to ring");
    await p.page.clock.setSystemTime(Date.now() + 120_000);
    await p.page.click("#accept");
    await waitHook(p.page, '/expired before you answered/.test(h.endMessage)', "the expired offer to be refused");
    assert.equal(await p.page.evaluate(() => window.__callTest.callsStarted), 1, "no call was started for it");
    assert.notEqual(await lateDialer.wait(), 0);
    await p.page.clock.setSystemTime(Date.now());
    // Now a caller who gives up (its timeout, §5.4: hang-up "timeout") while the page rings.
    const third = newCallIdentity();
    const gone = runCall(third.dir, ["dial", p.id, "--audio-in", "silence", "--audio-out", "null", "--connect-timeout", "2"], server.url);
    await waitHook(p.page, 'h.state === "ringing"', "the third call to ring");
    assert.notEqual(await gone.wait(), 0);
    await waitHook(p.page, 'h.state === "none" && /Missed call/.test(h.endMessage)', "the ringing to stop with a missed call");
    assertClean(p);
  });

  test("errors are said plainly: a mistyped ID, a peer offline, a declined call", async () => {
    const p = await page();
    const typo = newCallIdentity().id.replace(/.$/, (c) => (c === "a" ? "b" : "a"));
    await p.page.fill("#peer-id", typo);
    assert.equal(await p.page.isDisabled("#dial"), true, "Call is disabled for a mistyped ID");
    assert.match(await p.page.textContent("#peer-result"), /mistyped|checksum/i);
    const offline = newCallIdentity();
    await p.page.fill("#peer-id", offline.id);
    await p.page.click("#dial");
    await waitHook(p.page, 'h.state === "ended"', "the dial to an offline ID to end");
    assert.match(await p.page.evaluate(() => window.__callTest.endMessage), /offline/);
    assert.match(await p.page.textContent("#call-end"), /offline/, "the page says so where the call ended");
    // A page declines call: call exits non-zero saying so.
    const caller = newCallIdentity();
    const dialer = runCall(caller.dir, ["dial", p.id, "--audio-in", "silence", "--audio-out", "null"], server.url);
    await waitHook(p.page, 'h.state === "ringing"', "the incoming call");
    await p.page.click("#decline");
    assert.notEqual(await dialer.wait(), 0);
    assert.match(dialer.stderr, /declined/);
    assertClean(p);
  });
});

function readWavOrEmpty(path) {
  try {
    return readWav(path);
  } catch {
    return new Float64Array(0);
  }
}

function readY4mOrNone(path) {
  try {
    return readY4m(path);
  } catch {
    return null;
  }
}

function wavSeconds(path) {
  try {
    return readWav(path).length / 48_000;
  } catch {
    return 0;
  }
}

async function waitFor(check, what, run, timeout = 20_000) {
  const until = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; call stderr:\n${run?.stderr ?? ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
