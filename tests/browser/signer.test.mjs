#!/usr/bin/env node
/*
 * End-to-end test of the browser signer (examples/browser/, built on the
 * @wssign/client library in clients/js/) in headless Chromium against the
 * real wssignd:
 *
 *   - writes a daemon config with free loopback ports and starts $WSSIGND_BIN;
 *   - serves the repository (the page and the library it imports) from a
 *     small static HTTP server on 127.0.0.1;
 *   - checks the library's worked vectors (docs/PROTOCOL.md) in the page;
 *   - opens the page, generates a key, then imports a fixed seed (RFC 8032
 *     test 1, so the public key is known), connects and waits for "introduced";
 *   - posts two sign requests to the HTTP API, approves the first and rejects
 *     the second in the page, and checks the answers (200 with a signature that
 *     verifies, 422 rejected);
 *   - checks the automatic refusal of introduction-prefixed messages, the
 *     removal of a request on a "cancel" frame, disconnect/reconnect, and the
 *     library's reconnection after a daemon restart.
 *
 * Environment:
 *   WSSIGND_BIN              daemon binary (default <repo>/build/wssignd)
 *   CHROMIUM                 browser binary (default /usr/bin/chromium)
 *   BROWSER_TEST_OUTPUT_DIR  where screenshots go (default <repo>/build)
 *
 * Ends with the line "N passed, N failed"; exits 1 on any failure.
 */
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");
const PAGE_PATH = "/examples/browser/";
const BIN = process.env.WSSIGND_BIN || path.join(REPO, "build", "wssignd");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OUT_DIR = process.env.BROWSER_TEST_OUTPUT_DIR || path.join(REPO, "build");

const READY_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 5000;
const UI_TIMEOUT_MS = 10000;
const WATCHDOG_MS = 150000;

// RFC 8032, section 7.1, test 1.
const SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// ------------------------------------------------------------------ helpers

class TestFailure extends Error {}

function check(cond, what) {
  if (!cond) throw new TestFailure(what);
}

function checkEq(got, want, what) {
  if (got !== want) {
    throw new TestFailure(`${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  }
}

const b64 = (buf) => Buffer.from(buf).toString("base64");
const unb64 = (s) => Buffer.from(s, "base64");

function publicKeyFromSeed(seed) {
  const priv = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
  return crypto.createPublicKey(priv).export({ format: "der", type: "spki" }).subarray(SPKI_PREFIX.length);
}

function verifyEd25519(publicRaw, message, signature) {
  const key = crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicRaw]), format: "der", type: "spki" });
  return crypto.verify(null, message, key, signature);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ daemon

class Daemon {
  constructor(tmp) {
    this.tmp = tmp;
    this.proc = null;
    this.exit = null;
    this.logText = "";
    this.logPath = path.join(tmp, "wssignd.log");
  }

  /* origins: the browser origins the daemon lets upgrade (origins.allow).
   * A restart (same origins) keeps the ports. */
  async start(origins = this.origins || []) {
    if (!fs.existsSync(BIN)) throw new TestFailure(`daemon binary not found: ${BIN} (set WSSIGND_BIN)`);
    this.origins = origins;
    this.exit = null;
    this.logText = "";
    if (!this.port) {
      this.port = await freePort();
      do this.controlPort = await freePort(); while (this.controlPort === this.port);
    }
    this.configPath = path.join(this.tmp, "wssignd.json");
    const config = {
      listen: `127.0.0.1:${this.port}`,
      control: { listen: `127.0.0.1:${this.controlPort}` },
      origins: { allow: origins },
      log_level: "info",
    };
    fs.writeFileSync(this.configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
    const log = fs.openSync(this.logPath, "w");
    this.proc = spawn(BIN, ["-c", this.configPath], { stdio: ["ignore", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => {
      this.proc.on("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    const collect = (chunk) => {
      this.logText += chunk.toString("utf8");
      fs.writeSync(log, chunk);
    };
    this.proc.stdout.on("data", collect);
    this.proc.stderr.on("data", collect);
    this.proc.on("error", (e) => { this.logText += `spawn error: ${e.message}\n`; });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!this.logText.includes("event=ready")) {
      if (this.exit) throw new TestFailure(`daemon exited (${JSON.stringify(this.exit)}) before event=ready:\n${this.logText}`);
      if (Date.now() > deadline) throw new TestFailure(`daemon not ready after ${READY_TIMEOUT_MS} ms:\n${this.logText}`);
      await sleep(20);
    }
    return this;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/v1/ws`;
  }

  // SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; returns the exit status.
  async stop() {
    if (!this.proc || this.exit) return this.exit;
    this.proc.kill("SIGTERM");
    const timer = sleep(STOP_TIMEOUT_MS).then(() => null);
    let result = await Promise.race([this.exited, timer]);
    if (!result) {
      this.proc.kill("SIGKILL");
      result = await this.exited;
      result.killed = true;
    }
    return result;
  }

  // POST /v1/sign; returns a promise of {status, body}. Not awaited by callers
  // that must click in the page first: the answer comes after the decision.
  sign(publicKey, message, extra = {}) {
    const body = JSON.stringify({ public_key: b64(publicKey), message: b64(message), ...extra });
    return fetch(`http://127.0.0.1:${this.controlPort}/v1/sign`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
    }).then(async (res) => {
      const text = await res.text();
      let parsed = null;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        parsed = null;
      }
      return { status: res.status, body: parsed, text };
    });
  }
}

// ------------------------------------------------------------------ static server

const CONTENT_TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

function startStaticServer(root) {
  const server = http.createServer((req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    let rel;
    try {
      rel = decodeURIComponent(new URL(req.url, "http://x").pathname);
    } catch (e) {
      res.writeHead(400).end();
      return;
    }
    if (rel.endsWith("/")) rel += "index.html";
    const file = path.resolve(root, "." + path.posix.normalize(rel));
    if (file !== root && !file.startsWith(root + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
        return;
      }
      res.writeHead(200, {
        "Content-Type": CONTENT_TYPES[path.extname(file)] || "application/octet-stream",
        "Content-Length": data.length,
        "Cache-Control": "no-store",
      });
      res.end(req.method === "HEAD" ? undefined : data);
    });
  });
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

// ------------------------------------------------------------------ runner

const results = { passed: 0, failed: 0, skipped: 0 };
let aborted = false;

async function step(name, fn) {
  if (aborted) {
    console.log(`SKIP ${name} (after an earlier failure)`);
    results.skipped++;
    return;
  }
  const t0 = Date.now();
  try {
    await fn();
    results.passed++;
    console.log(`PASS ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.failed++;
    aborted = true;
    console.log(`FAIL ${name} (${Date.now() - t0} ms)`);
    console.log("  " + String((e && e.stack) || e).split("\n").join("\n  "));
  }
}

// ------------------------------------------------------------------ the test

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wssignd-browser-"));
  const userDataDir = path.join(tmp, "chromium-profile");
  fs.mkdirSync(userDataDir);
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const daemon = new Daemon(tmp);
  const pageErrors = [];
  const consoleLines = [];
  let server = null;
  let context = null;
  let page = null;

  const seed = Buffer.from(SEED_HEX, "hex");
  const publicRaw = Buffer.from(PUBLIC_HEX, "hex");

  const watchdog = setTimeout(async () => {
    console.log(`FAIL watchdog: the test did not finish within ${WATCHDOG_MS} ms`);
    results.failed++;
    await daemon.stop().catch(() => {});
    console.log(`${results.passed} passed, ${results.failed} failed`);
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();

  const status = () => page.locator("#status");
  const requestItems = () => page.locator('[data-testid="sign-request"]');
  const itemWithText = (text) => requestItems().filter({ hasText: text });
  const waitState = async (want, timeout = UI_TIMEOUT_MS) => {
    try {
      await page.waitForFunction(
        (w) => document.getElementById("status").dataset.state === w, want, { timeout });
    } catch (e) {
      const got = await status().getAttribute("data-state");
      const detail = await status().getAttribute("data-detail");
      throw new TestFailure(`status: expected ${want}, got ${got} (${detail}); log:\n${await pageLog()}`);
    }
  };
  const pageLog = async () => (await page.locator("#log").innerText()).trim();
  const screenshot = async (name) => {
    const file = path.join(OUT_DIR, name);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`screenshot: ${file}`);
  };

  try {
    await step("node's crypto derives the RFC 8032 public key from the seed", async () => {
      checkEq(publicKeyFromSeed(seed).toString("hex"), PUBLIC_HEX, "public key");
    });

    await step("daemon starts, allowing the page's origin", async () => {
      server = await startStaticServer(REPO);
      await daemon.start([`http://127.0.0.1:${server.address().port}`]);
    });

    await step("page loads in headless Chromium", async () => {
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ],
        viewport: { width: 1100, height: 900 },
        timeout: 30000,
      });
      context.setDefaultTimeout(UI_TIMEOUT_MS);
      page = context.pages()[0] || (await context.newPage());
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
      await page.goto(`http://127.0.0.1:${server.address().port}${PAGE_PATH}`);
      await page.waitForFunction(() => document.body.dataset.ready === "true");
      checkEq(await status().getAttribute("data-state"), "disconnected", "initial state");
      check(await page.locator("#connect").isDisabled(), "Connect is enabled before a key exists");
      checkEq(await page.locator("#ws-url").inputValue(), "ws://127.0.0.1:8080/v1/ws", "default URL");
    });

    await step("generates a key and shows its public key", async () => {
      await page.locator("#generate-key").click();
      await page.waitForFunction(() => document.getElementById("public-key").textContent.length > 0);
      const err = page.locator("#key-error");
      check(await err.isHidden(), "key error: " + (await err.textContent()));
      const shown = (await page.locator("#public-key").textContent()).trim();
      check(/^[A-Za-z0-9+/]{43}=$/.test(shown), `public key is not 32 bytes of base64: ${shown}`);
    });

    await step("imports a private-key JWK and refuses one whose x does not match d", async () => {
      const b64url = (buf) => Buffer.from(buf).toString("base64url");
      const other = publicKeyFromSeed(Buffer.alloc(32, 7));
      await page.locator("#seed-input").fill(JSON.stringify({ kty: "OKP", crv: "Ed25519", d: b64url(seed), x: b64url(other) }));
      await page.locator("#import-key").click();
      await page.locator("#key-error").waitFor({ state: "visible" });
      check(!(await page.locator("#public-key").textContent()).includes(b64(publicRaw)), "mismatched JWK accepted");
      await page.locator("#seed-input").fill(JSON.stringify({ kty: "OKP", crv: "Ed25519", d: b64url(seed), x: b64url(publicRaw) }));
      await page.locator("#import-key").click();
      await page.waitForFunction(
        (want) => document.getElementById("public-key").textContent === want, b64(publicRaw));
      check(await page.locator("#key-error").isHidden(), "key error still shown");
      // Start the next step from a different key, so that it shows the seed's own import.
      await page.locator("#generate-key").click();
      await page.waitForFunction(
        (old) => document.getElementById("public-key").textContent !== old, b64(publicRaw));
    });

    await step("imports the fixed seed and shows its public key", async () => {
      await page.locator("#seed-input").fill(SEED_HEX);
      await page.locator("#import-key").click();
      await page.waitForFunction(
        (want) => document.getElementById("public-key").textContent === want, b64(publicRaw));
    });

    await step("the library in Chromium: worked vectors, WebCrypto keys that cannot be read back", async () => {
      const doc = fs.readFileSync(path.join(REPO, "docs", "PROTOCOL.md"), "utf8");
      const vectors = [...doc.matchAll(/```vector\n([\s\S]*?)```/g)].map((m) => Object.fromEntries(
        m[1].trim().split("\n").map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)])));
      check(vectors.length >= 3, "vectors in PROTOCOL.md");
      const got = await page.evaluate(async (vs) => {
        const { Key, protocol } = await import("/clients/js/src/index.js");
        const out = [];
        for (const v of vs) {
          const seed = new Uint8Array(v.seed.match(/../g).map((h) => parseInt(h, 16)));
          const key = await Key.fromSeed(seed);
          const bytes = v.nonce ? protocol.introductionTranscript(v.host, v.nonce) : protocol.b64decode(v.message);
          out.push({ backend: key.backend, extractable: key.cryptoKey.extractable, publicKey: key.publicKeyB64,
            signature: protocol.b64encode(await key.sign(bytes)) });
        }
        return out;
      }, vectors);
      vectors.forEach((v, i) => {
        checkEq(got[i].backend, "webcrypto", `${v.name} backend`);
        checkEq(got[i].extractable, false, `${v.name} extractable`);
        checkEq(got[i].publicKey, v.public_key, `${v.name} public_key`);
        checkEq(got[i].signature, v.proof || v.signature, `${v.name} signature`);
      });
    });

    await step("connects and is introduced", async () => {
      await page.locator("#ws-url").fill(daemon.wsUrl);
      await page.locator("#connect").click();
      await waitState("introduced");
      checkEq((await status().textContent()).trim(), "introduced", "status text");
      const session = (await page.locator("#session-id").textContent()).trim();
      check(UUID_RE.test(session), `session id: ${session}`);
      check(await page.locator("#import-key").isDisabled(), "key import enabled while connected");
    });

    const textMessage = Buffer.from("Pay 10.00 EUR to Alice (invoice #42) — ok? ✓\nsecond line", "utf8");
    const binaryMessage = Buffer.from([0x00, 0xff, 0x10, 0x80, 0xde, 0xad, 0xbe, 0xef, 0x0a, 0x7f,
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x42]);
    let first = null;
    let second = null;
    let firstId = null;
    let secondId = null;

    const label = "Invoice #42 ✓ <b>\"ACME\"</b>";
    await step("two sign requests are shown, as text and as hex, with the requester's label", async () => {
      first = daemon.sign(publicRaw, textMessage, { timeout_ms: 60000, label });
      await itemWithText("Pay 10.00 EUR").waitFor();
      second = daemon.sign(publicRaw, binaryMessage, { timeout_ms: 60000 });
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="sign-request"]').length === 2);
      checkEq(await page.locator("#request-count").textContent(), "2", "request count");

      const a = requestItems().nth(0);
      const b = requestItems().nth(1);
      checkEq(await a.getAttribute("data-format"), "text", "first request format");
      checkEq(await a.locator('[data-testid="request-message"]').textContent(), textMessage.toString("utf8"),
        "first request text");
      checkEq(await b.getAttribute("data-format"), "hex", "second request format");
      const hex = (await b.locator('[data-testid="request-message"]').textContent()).replace(/\s+/g, "");
      checkEq(hex, binaryMessage.toString("hex"), "second request hex");
      checkEq((await b.locator('[data-testid="request-size"]').textContent()).trim(), "20 bytes", "size");
      // The label is shown as text (never as markup); a request without one shows none.
      const shown = a.locator('[data-testid="request-label"]');
      check(await shown.isVisible(), "the label is not shown");
      checkEq(await shown.locator(".value").textContent(), label, "label on the card");
      checkEq(await shown.locator("b").count(), 0, "the label was read as markup");
      check(!(await b.locator('[data-testid="request-label"]').isVisible()), "a label shown for a request without one");

      firstId = await a.getAttribute("data-request-id");
      secondId = await b.getAttribute("data-request-id");
      check(UUID_RE.test(firstId) && UUID_RE.test(secondId), `request ids: ${firstId}, ${secondId}`);
      checkEq((await a.locator('[data-testid="request-id"]').textContent()).trim(), firstId, "request id shown");
      const countdown = await a.locator('[data-testid="request-countdown"]').textContent();
      check(/^expires in \d+\.\d s$/.test(countdown), `countdown: ${countdown}`);
      const secs = parseFloat(countdown.replace(/[^0-9.]/g, ""));
      check(secs > 45 && secs <= 60.5, `countdown ${secs} s for a 60 s request`);
      await screenshot("browser-signer-requests.png");
    });

    await step("Approve signs the first request: 200 with a valid signature", async () => {
      await page.locator(`#approve-${firstId}`).click();
      const res = await first;
      checkEq(res.status, 200, `status (body ${res.text})`);
      checkEq(res.body.request_id, firstId, "request_id");
      checkEq(res.body.public_key, b64(publicRaw), "public_key");
      checkEq(res.body.message, b64(textMessage), "message");
      const sig = unb64(res.body.signature);
      checkEq(sig.length, 64, "signature length");
      check(verifyEd25519(publicRaw, textMessage, sig), "signature does not verify");
      check(!verifyEd25519(publicRaw, binaryMessage, sig), "signature verifies another message");
      await page.locator(`#request-${firstId}`).waitFor({ state: "detached" });
    });

    await step("Reject refuses the second request: 422 rejected", async () => {
      await page.locator(`#reject-${secondId}`).click();
      const res = await second;
      checkEq(res.status, 422, `status (body ${res.text})`);
      checkEq(res.body && res.body.error && res.body.error.code, "rejected", "error.code");
      check(typeof res.body.error.message === "string", "error.message");
      if (res.body.error.request_id !== undefined) checkEq(res.body.error.request_id, secondId, "error.request_id");
      await page.locator(`#request-${secondId}`).waitFor({ state: "detached" });
      checkEq(await requestItems().count(), 0, "requests left");
      check(await page.locator("#no-requests").isVisible(), "'no pending requests' not shown");
    });

    await step("the daemon refuses an introduction-prefixed message before the page sees it", async () => {
      const msg = Buffer.from("wssign-introduction-v1\n127.0.0.1\nAAAA", "utf8");
      const res = await daemon.sign(publicRaw, msg, { timeout_ms: 10000 });
      check(res.status === 400 || res.status === 422, `status (body ${res.text})`);
      await sleep(200);
      checkEq(await requestItems().count(), 0, "request shown for a reserved message");
    });

    await step("a request that times out is removed on the daemon's cancel", async () => {
      const pending = daemon.sign(publicRaw, Buffer.from("nobody answers this one"), { timeout_ms: 1500 });
      const item = itemWithText("nobody answers this one");
      await item.waitFor();
      const id = await item.getAttribute("data-request-id");
      const res = await pending;
      checkEq(res.status, 504, `status (body ${res.text})`);
      checkEq(res.body.error.code, "timeout", "error.code");
      await page.locator(`#request-${id}`).waitFor({ state: "detached", timeout: 3000 });
      check((await pageLog()).includes(`request ${id} cancelled by the daemon: timeout`), "cancel not logged");
    });

    await step("Disconnect closes the connection; Connect introduces again", async () => {
      const before = (await page.locator("#session-id").textContent()).trim();
      await page.locator("#disconnect").click();
      await waitState("closed");
      const detail = await status().getAttribute("data-detail");
      check(/^code 1000\b/.test(detail), `close detail: ${detail}`);
      await page.locator("#connect").click();
      await waitState("introduced");
      const after = (await page.locator("#session-id").textContent()).trim();
      check(UUID_RE.test(after) && after !== before, `new session id: ${before} -> ${after}`);
    });

    await step("daemon shutdown (1001): the library reconnects once the daemon is back", async () => {
      const before = (await page.locator("#session-id").textContent()).trim();
      const exit = await daemon.stop();
      check(exit && exit.code === 0 && !exit.killed, `daemon exit: ${JSON.stringify(exit)}\n${daemon.logText}`);
      await waitState("reconnecting");
      // The status shows the latest attempt's close; the log keeps the shutdown's.
      await page.waitForFunction(() => /connection closed, code 100[16]/.test(document.getElementById("log").innerText));
      const closes = (await pageLog()).split("\n").filter((l) => l.includes("connection closed, code "));
      check(closes.some((l) => /code 1001 \(daemon shutting down\)/.test(l)),
        `close at shutdown: ${closes.join(" | ")} (a close without a close frame shows as 1006)`);
      check(await page.locator("#connect").isDisabled(), "Connect enabled while reconnecting");
      await daemon.start();
      await waitState("introduced", 20000);
      const after = (await page.locator("#session-id").textContent()).trim();
      check(UUID_RE.test(after) && after !== before, `new session id: ${before} -> ${after}`);
      const pending = daemon.sign(publicRaw, Buffer.from("after the restart"), { timeout_ms: 10000 });
      const item = itemWithText("after the restart");
      await item.waitFor();
      await page.locator(`#approve-${await item.getAttribute("data-request-id")}`).click();
      const res = await pending;
      checkEq(res.status, 200, `status (body ${res.text})`);
      check(verifyEd25519(publicRaw, Buffer.from("after the restart"), unb64(res.body.signature)), "signature");
      await screenshot("browser-signer-final.png");
      await page.locator("#disconnect").click();
      await waitState("closed");
      check(await page.locator("#connect").isEnabled(), "Connect not enabled after Disconnect");
    });

    await step("the page refuses an introduction-prefixed request on its own (mocked daemon)", async () => {
      // The real daemon never forwards such a message, so a WebSocket route
      // stands in for it; it also checks the introduction proof for an IPv6 host.
      const nonce = b64(crypto.randomBytes(32));
      const frames = [];
      let route = null;
      const mockPage = await context.newPage();
      mockPage.on("pageerror", (e) => pageErrors.push(String(e)));
      await mockPage.routeWebSocket("ws://[::1]:9/v1/ws", (ws) => {
        route = ws;
        ws.onMessage((data) => frames.push(JSON.parse(data)));
        ws.send(JSON.stringify({ type: "challenge", nonce, protocol: "wssign.v1" }));
      });
      await mockPage.goto(`http://127.0.0.1:${server.address().port}${PAGE_PATH}`);
      await mockPage.waitForFunction(() => document.body.dataset.ready === "true");
      await mockPage.locator("#seed-input").fill(b64(seed));
      await mockPage.locator("#import-key").click();
      await mockPage.waitForFunction(
        (want) => document.getElementById("public-key").textContent === want, b64(publicRaw));
      await mockPage.locator("#ws-url").fill("ws://[::1]:9/v1/ws");
      await mockPage.locator("#connect").click();
      const waitFrames = async (n) => {
        const deadline = Date.now() + UI_TIMEOUT_MS;
        while (frames.length < n) {
          if (Date.now() > deadline) throw new TestFailure(`mock got ${frames.length} frames, wanted ${n}`);
          await sleep(20);
        }
      };
      await waitFrames(1);
      const intro = frames[0];
      checkEq(intro.type, "introduction", "first frame");
      checkEq(intro.host, "::1", "introduction host");
      checkEq(intro.public_key, b64(publicRaw), "introduction public_key");
      const transcript = Buffer.from(`wssign-introduction-v1\n::1\n${nonce}`, "utf8");
      check(verifyEd25519(publicRaw, transcript, unb64(intro.proof)), "introduction proof does not verify");
      route.send(JSON.stringify({ type: "introduced", public_key: b64(publicRaw),
        session_id: "00000000-0000-4000-8000-000000000001" }));
      await mockPage.waitForFunction(() => document.getElementById("status").dataset.state === "introduced");

      const rid = "00000000-0000-4000-8000-0000000000aa";
      const reserved = Buffer.from(`wssign-introduction-v1\n127.0.0.1\n${nonce}`, "utf8");
      route.send(JSON.stringify({ type: "sign_request", request_id: rid, message: b64(reserved),
        expires_at: Date.now() + 30000 }));
      await waitFrames(2);
      checkEq(frames[1].type, "sign_reject", "answer to a reserved message");
      checkEq(frames[1].request_id, rid, "sign_reject.request_id");
      checkEq(await mockPage.locator('[data-testid="sign-request"]').count(), 0, "reserved request shown");
      route.close({ code: 1000, reason: "done" });
      await mockPage.close();
    });

    await step("no uncaught errors in the page", async () => {
      checkEq(pageErrors.length, 0, "page errors: " + pageErrors.join("; "));
    });
  } finally {
    if (aborted) {
      if (page) {
        try {
          await screenshot("browser-signer-failure.png");
          console.log("page log:\n" + (await pageLog()));
        } catch (e) {
          console.log("no page state: " + e.message);
        }
      }
      if (consoleLines.length) console.log("browser console:\n  " + consoleLines.join("\n  "));
      if (pageErrors.length) console.log("page errors:\n  " + pageErrors.join("\n  "));
      console.log("daemon log:\n" + daemon.logText);
    }
    if (context) await context.close().catch(() => {});
    if (server) server.close();
    await daemon.stop().catch(() => {});
    clearTimeout(watchdog);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (e) {
  results.failed++;
  console.log("FAIL harness: " + ((e && e.stack) || e));
}
console.log(`${results.passed} passed, ${results.failed} failed` +
  (results.skipped ? `, ${results.skipped} skipped` : ""));
process.exit(results.failed ? 1 : 0);
