// Rooms in the web page (Chromium) against real `call` processes through a real
// `call-signaling`, all on loopback: a `call` admin creates a room and invites the page, the
// page lists it (members, safety numbers the same as `call room show`); `call room send` lines
// reach the page once each, in order, as text, an @mention marked; the page's line reaches
// `call room history` after `call room sync`; a reload keeps the room and the history; a
// removal is shown and the page can no longer write. Skipped with one line when Chromium or
// the binaries are missing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { CALL_BIN, CHROMIUM, CHROMIUM_ARGS, missingPrerequisite, newCallIdentity, openPage, startServer, waitHook } from "./harness.mjs";

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
    server = await startServer();
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
});
