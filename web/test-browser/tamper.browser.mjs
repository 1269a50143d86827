// The tampering relay in front of the page (Playwright's routeWebSocket between the page and
// the real `call-signaling`, rewriting what the server delivers, as a malicious or compromised
// server would; the rewrite is test-browser/tamper.ts, like tests/src/tamper.rs): a swapped
// fingerprint re-signed with the sender's own key is refused at the DTLS step, an answer
// signed by someone else is ignored; either way the call fails with a clear message and no
// media flows. Skipped with one line when Chromium or the binaries are missing.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CHROMIUM, CHROMIUM_ARGS, dialFromPage, loadTamper, missingPrerequisite, newCallIdentity, openPage, runCall, startServer, waitHook } from "./harness.mjs";

const missing = missingPrerequisite();
if (missing) console.log(`browser tampering tests skipped: ${missing}`);

describe("the page behind a tampering relay", { skip: missing ?? false, timeout: 300_000 }, () => {
  let browser;
  let server;
  let tamper;

  before(async () => {
    const { chromium } = await import("playwright-core");
    tamper = await loadTamper();
    server = await startServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    server?.stop();
  });

  /** A page with the key in `keyFile` whose `/ws` goes through a relay rewriting what the
   * server delivers by `mode`; `rewritten()` counts the frames it changed. */
  async function pageBehindRelay(keyFile, mode) {
    let count = 0;
    const p = await openPage(browser, server, {
      keyFile,
      prepare: (page) =>
        page.routeWebSocket(/\/ws$/, (ws) => {
          const upstream = ws.connectToServer();
          ws.onMessage((m) => upstream.send(m));
          upstream.onMessage((m) => {
            const forged = tamper.rewrite(String(m), mode);
            if (forged) count++;
            ws.send(forged ?? m);
          });
        }),
    });
    return { p, rewritten: () => count };
  }

  /** The page (its key known to the relay) dials a `call listen` through a relay doing `mode`. */
  async function tamperedDial(makeMode) {
    const me = tamper.Identity.generate();
    const keyFile = join(newCallIdentity().dir, "page.key");
    writeFileSync(keyFile, tamper.exportKeyFile(me));
    const callee = newCallIdentity();
    const sender = tamper.importKeyFile(readFileSync(join(callee.dir, "identity.key")));
    const mode = makeMode({ recipient: me, sender, mallory: tamper.Identity.generate() });
    const { p, rewritten } = await pageBehindRelay(keyFile, mode);
    assert.equal(p.id, me.id.text, "the page uses the imported identity");
    const listener = runCall(callee.dir, ["listen", "--auto-accept", "--audio-in", "sine:440", "--audio-out", "null", "--connect-timeout", "5"], server.url);
    await p.page.evaluate(() => (window.__callTest.connectTimeoutMs = 5_000));
    await dialFromPage(p.page, callee.id);
    await waitHook(p.page, 'h.state === "ended"', "the tampered call to be refused", 30_000);
    const hook = await p.page.evaluate(() => window.__callTest);
    assert.ok(rewritten() >= 1, "the relay rewrote the answer");
    assert.equal(hook.endedWithError, true);
    assert.equal(hook.timings.connectedAt, null, "never connected");
    assert.ok(!hook.stats || (hook.stats.audioReceived === 0 && hook.stats.framesDecoded === 0), "no media flowed");
    assert.notEqual(await listener.wait(), 0, "call did not get a call either");
    return hook;
  }

  test("a swapped fingerprint re-signed with the sender's key fails at DTLS", async () => {
    const hook = await tamperedDial((k) => ({ mode: "swap_fingerprint", recipient: k.recipient, sender: k.sender }));
    assert.match(hook.endMessage, /Verification failed \(dtls_failed\)/);
  });

  test("an offer with a swapped fingerprint re-signed with the caller's key rings, then fails at DTLS", async () => {
    const me = tamper.Identity.generate();
    const keyFile = join(newCallIdentity().dir, "page.key");
    writeFileSync(keyFile, tamper.exportKeyFile(me));
    const caller = newCallIdentity();
    const sender = tamper.importKeyFile(readFileSync(join(caller.dir, "identity.key")));
    const mode = { mode: "swap_fingerprint", recipient: me, sender };
    const { p, rewritten } = await pageBehindRelay(keyFile, mode);
    const dialer = runCall(caller.dir, ["dial", p.id, "--audio-in", "sine:440", "--audio-out", "null", "--connect-timeout", "5"], server.url);
    // The relay holds the caller's key, so every signature checks out: the page rings.
    await waitHook(p.page, 'h.state === "ringing"', "the tampered offer to ring");
    await p.page.click("#accept-audio");
    await waitHook(p.page, 'h.state === "ended"', "the tampered call to be refused", 30_000);
    const hook = await p.page.evaluate(() => window.__callTest);
    assert.ok(rewritten() >= 1, "the relay rewrote the offer");
    assert.match(hook.endMessage, /Verification failed \(dtls_failed\)/);
    assert.equal(hook.timings.connectedAt, null, "never connected");
    assert.notEqual(await dialer.wait(), 0, "call's attempt failed too");
  });

  test("an answer from someone else is ignored and the call times out saying so", async () => {
    const hook = await tamperedDial((k) => ({ mode: "answer_as", mallory: k.mallory }));
    assert.match(hook.endMessage, /No answer.*ignored \(last: not_the_peer\)/);
  });

  test("an answer signed by another key in the callee's name is dropped", async () => {
    const hook = await tamperedDial((k) => ({ mode: "impersonate", mallory: k.mallory }));
    assert.match(hook.endMessage, /No answer.*ignored \(last: bad_signature\)/);
  });
});
