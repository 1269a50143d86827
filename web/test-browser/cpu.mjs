// CPU of an audio-only call (a report, not a test): `call` ↔ `call` next to the page in Chromium
// ↔ `call`, each held SECS seconds after connecting, on loopback. Reads utime+stime from
// /proc/PID/stat (Linux): of each `call` process, and of Chromium's whole process tree for the
// page. Usage: node test-browser/cpu.mjs [SECS]
import { readdirSync, readFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, dialFromPage, missingPrerequisite, newCallIdentity, openPage, runCall, startServer, waitHook } from "./harness.mjs";

const missing = missingPrerequisite();
if (missing) {
  console.log(`cpu: ${missing}`);
  process.exit(1);
}
const secs = Number(process.argv[2] ?? 10);
const TICK = 100; // USER_HZ on Linux

/** [utime + stime in s, ppid] of a process, or null when it is gone. */
function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return [(Number(f[11]) + Number(f[12])) / TICK, Number(f[1])];
  } catch {
    return null;
  }
}

/** CPU seconds of Chromium: every process tree under this Node process whose root is Chromium. */
function chromiumCpu() {
  let total = 0;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || stat(Number(name))?.[1] !== process.pid) continue;
    let comm = "";
    try {
      comm = readFileSync(`/proc/${name}/comm`, "utf8");
    } catch {
      continue;
    }
    if (/chrom/i.test(comm)) total += treeCpu(Number(name));
  }
  return total;
}

/** CPU seconds of `root` and all its descendants. */
function treeCpu(root) {
  const children = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s) children.set(s[1], [...(children.get(s[1]) ?? []), Number(name)]);
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    total += stat(pid)?.[0] ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

/** Samples `pid`'s CPU every 50 ms until it exits; the last sample. */
function follow(pid) {
  let last = 0;
  const timer = setInterval(() => {
    const s = stat(pid);
    if (s) last = s[0];
  }, 50);
  return () => {
    clearInterval(timer);
    return last;
  };
}

const server = await startServer();
const audio = ["--audio-in", "sine:440", "--audio-out", "null"];

// call ↔ call
const a = newCallIdentity();
const b = newCallIdentity();
const listener = runCall(b.dir, ["listen", "--auto-accept", ...audio], server.url);
const listenerCpu = follow(listener.child.pid);
let dialer;
for (let i = 0; ; i++) {
  dialer = runCall(a.dir, ["dial", b.id, "--duration", String(secs), ...audio], server.url);
  const dialerCpu = follow(dialer.child.pid);
  const status = await dialer.wait(secs * 1000 + 30_000);
  const cpu = dialerCpu();
  if (status === 0) {
    await listener.wait();
    console.log(`call ↔ call, ${secs} s audio: dialer ${cpu.toFixed(2)} s CPU, listener ${listenerCpu().toFixed(2)} s CPU (whole process lives, start-up included)`);
    break;
  }
  if (i > 20) throw new Error(`call dial kept failing: ${dialer.stderr}`);
  await new Promise((r) => setTimeout(r, 200));
}

// page ↔ call
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
const p = await openPage(browser, server);
await p.page.uncheck("#dial-video");
await p.page.evaluate(() => (window.__callTest.toneHz = 880));
const c = newCallIdentity();
const callee = runCall(c.dir, ["listen", "--auto-accept", ...audio], server.url);
const calleeCpu = follow(callee.child.pid);
await dialFromPage(p.page, c.id, callee);
await waitHook(p.page, 'h.state === "connected"', "the page's call to connect");
const before = chromiumCpu();
await new Promise((r) => setTimeout(r, secs * 1000));
const during = chromiumCpu() - before;
await p.page.click("#hangup");
await callee.wait();
console.log(`page ↔ call, ${secs} s audio: call ${calleeCpu().toFixed(2)} s CPU (whole process), Chromium (all processes) ${during.toFixed(2)} s CPU while connected`);
await browser.close();
server.stop();
process.exit(0);
