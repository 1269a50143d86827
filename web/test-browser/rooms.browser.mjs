// Rooms in the web page (Chromium) against real `call` processes through a real
// `call-signaling`, all on loopback: a `call` admin creates a room and invites the page, the
// page lists it (members, safety numbers the same as `call room show`); `call room send` lines
// reach the page once each, in order, as text, an @mention marked; the page's line reaches
// `call room history` after `call room sync`; a reload keeps the room and the history; a
// removal is shown and the page can no longer write; the page in a room's mesh call with two
// `call join` processes (each hears the page's tone, the page hears each, a line typed in the
// page reaches both once). Skipped with one line when Chromium or
// the binaries are missing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { ARTEFACTS, CALL_BIN, CHROMIUM, CHROMIUM_ARGS, missingPrerequisite, newCallIdentity, openPage, readWav, runCall, startServer, toneShare, waitHook } from "./harness.mjs";

const missing = missingPrerequisite();
if (missing) console.log(`browser tests skipped: ${missing}`);

const DIST = fileURLToPath(new URL("../dist/", import.meta.url));
/** Chromium's flags, plus no local network access checks for the served-over document (above). */
const ARGS = [...CHROMIUM_ARGS, "--disable-features=LocalNetworkAccessChecks"];
const HOSTILE = '<b id="injected">bold</b> & <img src=x>';

/**
 * Serves this tree's web/dist in place of the files built into `call-signaling` (the server's
 * own headers, CSP included, are kept): the binary may have been built from another checkout.
 * With a binary built from this one the files are the same. A fulfilled document loses its
 * loopback address space in Chromium's eyes, so its /ws would be blocked by the local network
 * access checks: the browser of this file runs without them (see {@link ARGS}).
 */
async function serveOwnDist(page) {
  const types = { "app.js": "text/javascript", "index.html": "text/html", "style.css": "text/css" };
  await page.route(/\/(app\.js|style\.css|index\.html)?(\?.*)?$/, async (route) => {
    const name = /\/(app\.js|style\.css)/.exec(new URL(route.request().url()).pathname)?.[1] ?? "index.html";
    const response = await route.fetch();
    await route.fulfill({ response, body: readFileSync(DIST + name), headers: { ...response.headers(), "content-type": types[name] } });
  });
}

/** Seconds of a mix made partly of `hz`: 100 ms blocks with more than a quarter of their power at `hz`. */
function mixSeconds(samples, hz) {
  let blocks = 0;
  for (let at = 0; at + 4_800 <= samples.length; at += 4_800) if (toneShare(samples.subarray(at, at + 4_800), hz) > 0.25) blocks++;
  return blocks / 10;
}

/** `call room …` as `dir` against the test server; stdout, trimmed. */
function room(dir, url, args) {
  return execFileSync(CALL_BIN, ["--config-dir", dir, "room", ...args], { env: { ...process.env, CALL_SERVER: url, RUST_LOG: "warn" }, stdio: ["ignore", "pipe", "pipe"] })
    .toString()
    .trim();
}

describe("rooms in the web page", { skip: missing ?? false, timeout: 180_000 }, () => {
  let chromium;
  let browser;
  let server;

  before(async () => {
    ({ chromium } = await import("playwright-core"));
    mkdirSync(ARTEFACTS, { recursive: true });
    server = await startServer(["--allow-loopback-peers"]);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  });

  after(async () => {
    await browser?.close();
    server?.stop();
  });

  test("a call admin invites the page; room chat both ways; the history survives a reload; a removal is shown", async () => {
    const p = await openPage(browser, server, { prepare: serveOwnDist });
    const { page } = p;
    const alice = newCallIdentity();
    const roomId = room(alice.dir, server.url, ["new", "Book club", "--as", "Alice"]).split("\n").pop();
    room(alice.dir, server.url, ["invite", roomId, p.id, "--name", "Page"]);

    await waitHook(page, `h.rooms.length === 1 && h.rooms[0].id === "${roomId}"`, "the page to take the invitation");
    const [listed] = await page.evaluate(() => window.__callTest.rooms);
    assert.equal(listed.name, "Book club");
    assert.deepEqual([...listed.members].sort(), [alice.id, p.id].sort());
    assert.equal(await page.textContent("#room-name"), "Book club");
    // Safety numbers on demand, the same as `call room show` prints for the page.
    await page.click("#room-members-box summary");
    const shown = await page.$$eval("#room-members .safety", (s) => s.map((x) => x.textContent));
    const show = room(alice.dir, server.url, ["show", roomId]);
    const expected = /safety number ([\d ]+)/.exec(show.split("\n").find((l) => l.includes(p.id)))[1].trim();
    assert.deepEqual(shown, [`Safety number: ${expected}`]);

    // call -> page: each line once, in order, as text; the mention is marked.
    room(alice.dir, server.url, ["send", roomId, `hello @Page ${HOSTILE}`]);
    room(alice.dir, server.url, ["send", roomId, "second"]);
    await waitHook(page, `(h.roomLines["${roomId}"] ?? []).length >= 2`, "both lines from call");
    let lines = await page.evaluate((r) => window.__callTest.roomLines[r], roomId);
    assert.deepEqual(
      lines.map((l) => [l.sender, l.text, l.mention]),
      [
        [alice.id, `hello @Page ${HOSTILE}`, true],
        [alice.id, "second", false],
      ],
    );
    const logged = await page.$$eval("#room-log li", (lis) => lis.map((li) => [li.className, li.textContent]));
    assert.equal(logged.length, 2);
    assert.ok(logged[0][1].includes(`Alice:hello @Page ${HOSTILE}`), JSON.stringify(logged));
    assert.equal(logged[0][0], "mention");
    assert.equal(await page.$$eval("#room-log b, #room-log img, #injected", (e) => e.length), 0, "peer text never becomes HTML");

    // page -> call, seen by `call room history` after a sync.
    await page.fill("#room-input", "hi from the page");
    await page.click("#room-send");
    await waitHook(page, `h.roomLines["${roomId}"].length === 3`, "the page's own line");
    assert.deepEqual(await page.evaluate(() => window.__callTest.roomSent), { frames: 0, envelopes: 1 });
    room(alice.dir, server.url, ["sync"]);
    const history = JSON.parse(room(alice.dir, server.url, ["history", roomId, "--json"]));
    const fromPage = history.filter((m) => m.sender === p.id);
    assert.deepEqual(
      fromPage.map((m) => [m.text, m.sender_name]),
      [["hi from the page", "Page"]],
    );

    // A reload keeps the room and the history (IndexedDB), shown once.
    await page.reload();
    await waitHook(page, `h.online === true && h.rooms.length === 1 && (h.roomLines["${roomId}"] ?? []).length === 3`, "the room and history after a reload");
    lines = await page.evaluate((r) => window.__callTest.roomLines[r], roomId);
    assert.deepEqual(
      lines.map((l) => [l.text, l.mine]),
      [
        [`hello @Page ${HOSTILE}`, false],
        ["second", false],
        ["hi from the page", true],
      ],
    );
    assert.equal(await page.$$eval("#room-log li", (lis) => lis.length), 3);
    // A line after the reload still arrives (the inbox resumed after the kept ones, not before).
    room(alice.dir, server.url, ["send", roomId, "after the reload"]);
    await waitHook(page, `h.roomLines["${roomId}"].length === 4`, "a line after the reload");

    // Removed: shown, and the page can no longer write to the room.
    room(alice.dir, server.url, ["remove", roomId, p.id]);
    await waitHook(page, "h.rooms[0].removed === true", "the removal");
    assert.equal(await page.isVisible("#room-removed"), true);
    assert.equal(await page.isDisabled("#room-send"), true);

    assert.deepEqual(p.errors, [], "no console errors");
    await p.context.close();
  });

  test("the page joins a room's mesh call with two call processes: tones both ways, a room line on the channels", async () => {
    const PAGE_HZ = 880;
    const TONES = [440, 660];
    const p = await openPage(browser, server, { prepare: serveOwnDist });
    const { page } = p;
    const members = [newCallIdentity(), newCallIdentity()];
    const roomId = room(members[0].dir, server.url, ["new", "Band", "--as", "Alice"]).split("\n").pop();
    room(members[0].dir, server.url, ["invite", roomId, members[1].id, "--name", "Bob"]);
    room(members[0].dir, server.url, ["invite", roomId, p.id, "--name", "Page"]);
    room(members[1].dir, server.url, ["sync"]);
    await waitHook(page, `h.rooms.length === 1`, "the page to take the invitation");

    const wavs = members.map((m) => join(m.dir, "mix.wav"));
    const joinCall = (i) => runCall(members[i].dir, ["join", roomId, "--duration", "14", "--audio-in", `sine:${TONES[i]}`, "--audio-out", wavs[i]], server.url);
    // Alice starts the call: the page, not in it, shows that she joined.
    const runs = [joinCall(0)];
    await waitHook(page, `h.roomCallHeard["${roomId}"] === "${members[0].id}"`, "the page to hear that Alice joined the call");
    assert.match(await page.textContent("#room-call-notice"), /^Alice joined the room's call at /);
    await page.evaluate((hz) => (window.__callTest.toneHz = hz), PAGE_HZ);
    await page.click("#room-join");
    await waitHook(page, "h.roomCall !== null", "the page in the room's call");
    runs.push(joinCall(1));
    await waitHook(page, `h.roomCall.peers.length === 2 && h.roomCall.peers.every((x) => x.state === "connected")`, "both call members connected to the page", 30_000);
    // The page hears each member's own tone on that member's session.
    for (const [i, m] of members.entries()) {
      await waitHook(page, `(h.roomTone("${m.id}", ${TONES[i]})?.share ?? 0) > 0.5`, `the page hears member ${i}'s tone`);
    }
    await page.fill("#room-input", "hello mesh");
    await page.click("#room-send");
    await waitHook(page, `(h.roomLines["${roomId}"] ?? []).some((l) => l.text === "hello mesh")`, "the page's line");
    // §19.6: to members connected in the call, on the channels; nothing through the server.
    assert.deepEqual(await page.evaluate(() => window.__callTest.roomSent), { frames: 2, envelopes: 0 });
    await page.screenshot({ path: join(ARTEFACTS, "room-call.png"), fullPage: true });
    for (const run of runs) assert.equal(await run.wait(40_000), 0, run.stderr);
    // Members whose `call join` ended are dropped from the page's call (their `leave`, or the lost session).
    await waitHook(page, "h.roomCall.peers.length === 0", "the members who left to be dropped");
    for (const [i, run] of runs.entries()) {
      assert.equal(run.stdout.split("\n").filter((l) => l.includes("hello mesh")).length, 1, `member ${i} shows the page's line once:\n${run.stdout}`);
      assert.ok(run.stderr.includes("Page is in the call"), run.stderr);
      // The WAV is the mix of the two others, so each tone holds about half of a block's power.
      const samples = readWav(wavs[i]);
      const [page_, own, other] = [PAGE_HZ, TONES[i], TONES[1 - i]].map((hz) => mixSeconds(samples, hz));
      console.log(`member ${i}: seconds with the page's tone ${page_}, the other member's ${other}, its own ${own}`);
      assert.ok(page_ >= 3, `member ${i}'s WAV holds the page's ${PAGE_HZ} Hz tone (${page_} s of it)`);
      assert.ok(other >= 3, `member ${i}'s WAV holds the other member's tone (${other} s of it)`);
      assert.equal(own, 0, `member ${i} does not hear itself`);
    }
    await page.click("#room-leave");
    assert.deepEqual(p.errors, [], "no console errors");
    await p.context.close();
  });
});
