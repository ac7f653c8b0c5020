// @wssign/client's Signer in Node against the real daemon: sign, reject,
// timeout, cancel, supersede on reconnect, a daemon restart while connected,
// refused keys; and the key files it reads.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import * as wssign from "../../../clients/js/src/index.js";
import { BUILD, SEED, SEED_PUBLIC_B64, tmpdir, until, withDaemon } from "./daemon.mjs";

const FAST = { backoffInitialMs: 50, backoffMaxMs: 200, connectTimeoutMs: 5000 };
const approveAll = () => true;

async function verifies(publicKey, message, signature) {
  return wssign.verify(publicKey, new TextEncoder().encode(message), signature);
}

test("sign", () => withDaemon({}, async (d) => {
  const seen = [];
  const key = await wssign.Key.fromSeed(SEED);
  assert.equal(key.extractable, false);
  const signer = new wssign.Signer(d.wsUrl, key, {
    ...FAST,
    policy: async (req) => {
      seen.push(req);
      await new Promise((r) => setTimeout(r, 50)); // a policy may take its time
      return new TextDecoder().decode(req.message).startsWith("invoice:");
    },
  }).start();
  try {
    const session = await signer.waitIntroduced({ timeoutMs: 5000 });
    assert.match(session, /^[0-9a-f-]{36}$/);
    assert.equal(signer.state, "introduced");
    const client = new wssign.Client(d.controlUrl);
    const sig = await client.sign(key.publicKeyB64, "invoice:42", { timeoutMs: 5000 });
    assert.ok(await verifies(key.publicKey, "invoice:42", sig.signature));
    assert.equal(sig.requestId, seen[0].requestId);
    assert.equal(sig.signatureB64.length, 88);
    assert.ok(seen[0].expiresIn() > 0);
    assert.equal(seen[0].label, null);
    const status = await client.keyStatus(key.publicKey);
    assert.deepEqual([status.connected, status.sessionId, status.pending], [true, session, 0]);
    assert.equal(await client.health(), true);
  } finally {
    await signer.close();
  }
  assert.equal(signer.state, "closed");
}));

test("reject", () => withDaemon({}, async (d) => {
  const key = await wssign.Key.fromSeed(SEED);
  const reasons = [];
  const signer = new wssign.Signer(d.wsUrl, key, {
    ...FAST,
    policy: (req) => {
      const m = new TextDecoder().decode(req.message);
      if (m === "no reason") return false;
      if (m === "throw") throw new wssign.Reject("thrown reason");
      if (m === "broken") throw new Error("a bug in the policy");
      return new wssign.Reject("not on a Sunday");
    },
  }).start();
  signer.addEventListener("decision", (ev) => reasons.push(ev.detail.reason));
  const logged = console.error;
  console.error = () => {};
  try {
    await signer.waitIntroduced({ timeoutMs: 5000 });
    const client = new wssign.Client(d.controlUrl);
    for (const m of ["returned", "no reason", "throw", "broken"]) {
      await assert.rejects(client.sign(key.publicKey, m), (e) => {
        assert.ok(e instanceof wssign.RejectedError, String(e));
        assert.ok(e instanceof wssign.ApiError);
        assert.equal(e.status, 422);
        assert.equal(e.code, "rejected");
        assert.match(e.requestId, /^[0-9a-f-]{36}$/);
        return true;
      });
    }
    assert.deepEqual(reasons, ["not on a Sunday", "declined", "thrown reason", "policy_error"]);
  } finally {
    console.error = logged;
    await signer.close();
  }
}));

function hanging(log) {
  return (req) => new Promise((resolve) => {
    log.asked = true;
    req.signal.addEventListener("abort", () => {
      log.cancelled.push(req.signal.reason);
      resolve(true); // ignored: the request was cancelled
    });
  });
}

test("timeout cancels the policy", () => withDaemon({}, async (d) => {
  const key = await wssign.Key.fromSeed(SEED);
  const log = { asked: false, cancelled: [] };
  const signer = new wssign.Signer(d.wsUrl, key, { ...FAST, policy: hanging(log) }).start();
  try {
    await signer.waitIntroduced({ timeoutMs: 5000 });
    await assert.rejects(new wssign.Client(d.controlUrl).sign(key.publicKey, "slow", { timeoutMs: 300 }), (e) => {
      assert.ok(e instanceof wssign.TimeoutError, String(e));
      assert.equal(e.status, 504);
      assert.equal(e.retryable, true);
      return true;
    });
    assert.ok(log.asked);
    await until(() => log.cancelled.length === 1, "the policy's cancellation");
    assert.deepEqual(log.cancelled, ["timeout"]);
    assert.equal(signer.pending.size, 0);
    assert.equal(d.log.match(/outcome=ok/g), null, "a cancelled request was not answered");
  } finally {
    await signer.close();
  }
}));

test("requester cancel", () => withDaemon({}, async (d) => {
  const key = await wssign.Key.fromSeed(SEED);
  const log = { asked: false, cancelled: [] };
  const signer = new wssign.Signer(d.wsUrl, key, { ...FAST, policy: hanging(log) }).start();
  try {
    await signer.waitIntroduced({ timeoutMs: 5000 });
    const abort = new AbortController();
    const pending = new wssign.Client(d.controlUrl).sign(key.publicKey, "withdrawn", { signal: abort.signal });
    await until(() => log.asked, "the request at the signer");
    abort.abort();
    await assert.rejects(pending, (e) => e.name === "AbortError");
    await until(() => log.cancelled.length === 1, "the policy's cancellation");
    assert.deepEqual(log.cancelled, ["requester_cancelled"]);
    await until(() => d.log.includes("outcome=cancelled"), "the audit line");
  } finally {
    await signer.close();
  }
}));

test("supersede on reconnect", () => withDaemon({}, async (d) => {
  const key = await wssign.Key.fromSeed(SEED);
  const firstLog = { asked: false, cancelled: [] };
  const firstSeen = [];
  const a = new wssign.Signer(d.wsUrl, key, {
    backoffInitialMs: 50, backoffMaxMs: 30000,
    policy: (req) => { firstSeen.push(req.requestId); return hanging(firstLog)(req); },
  }).start();
  const secondSeen = [];
  let b = null;
  try {
    await a.waitIntroduced({ timeoutMs: 5000 });
    const pending = new wssign.Client(d.controlUrl).sign(key.publicKey, "moved", { timeoutMs: 10000 });
    await until(() => firstSeen.length === 1, "the request at the first signer");
    b = new wssign.Signer(d.wsUrl, key, { ...FAST, policy: (req) => { secondSeen.push(req.requestId); return true; } }).start();
    await b.waitIntroduced({ timeoutMs: 5000 });
    const sig = await pending;
    assert.ok(await verifies(key.publicKey, "moved", sig.signature));
    assert.deepEqual(secondSeen, firstSeen, "the same request id");
    assert.equal(sig.requestId, firstSeen[0]);
    await until(() => firstLog.cancelled.length === 1, "the first signer's cancellation");
    assert.deepEqual(firstLog.cancelled, ["connection_closed"]);
    assert.equal(a.closeCode, 4001);
    // The first signer waits its full backoffMaxMs instead of pushing back.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(a.state, "waiting");
    assert.equal(b.state, "introduced");
  } finally {
    await a.close();
    if (b) await b.close();
  }
}));

test("daemon restart while connected", () => withDaemon({}, async (d) => {
  const key = await wssign.Key.fromSeed(SEED);
  const signer = new wssign.Signer(d.wsUrl, key, { ...FAST, policy: approveAll }).start();
  try {
    const first = await signer.waitIntroduced({ timeoutMs: 5000 });
    await d.stop();
    await until(() => signer.state !== "introduced", "the signer to notice");
    // 1001 (shutting down); Node's ws sometimes sees the connection end without the close frame.
    assert.ok([1001, 1006].includes(signer.closeCode), `close code ${signer.closeCode}`);
    await d.start(); // the same ports
    const second = await signer.waitIntroduced({ timeoutMs: 10000 });
    assert.notEqual(second, first);
    assert.equal(signer.introductions, 2);
    const sig = await new wssign.Client(d.controlUrl).sign(key.publicKey, "after restart");
    assert.ok(await verifies(key.publicKey, "after restart", sig.signature));
  } finally {
    await signer.close();
  }
}));

test("refused keys", () => withDaemon({ server_names: ["localhost"] }, async (d) => {
  // The identity point: a small-order key the daemon never registers.
  const smallOrder = { publicKey: new Uint8Array([1, ...new Uint8Array(31)]), sign: () => new Uint8Array(64) };
  const s = new wssign.Signer(`ws://localhost:${d.port}/v1/ws`, smallOrder, { ...FAST, policy: approveAll }).start();
  await assert.rejects(s.waitIntroduced({ timeoutMs: 5000 }), (e) => {
    assert.ok(e instanceof wssign.IntroductionRefused, String(e));
    assert.deepEqual([e.code, e.closeCode], ["bad_key", 1008]);
    return true;
  });
  await assert.rejects(s.closed, wssign.IntroductionRefused);
  assert.equal(s.state, "closed");
  const key = await wssign.Key.fromSeed(SEED);
  const h = new wssign.Signer(d.wsUrl, key, { ...FAST, policy: approveAll }).start();
  await assert.rejects(h.waitIntroduced({ timeoutMs: 5000 }), (e) => e instanceof wssign.IntroductionRefused && e.code === "bad_host");
  await h.close();
  assert.equal(d.log.includes("event=introduced"), false);
  // Refused before connecting.
  assert.throws(() => new wssign.Signer("ws://signer.example.com/v1/ws", key, { policy: approveAll }), TypeError);
  assert.throws(() => new wssign.Signer("http://127.0.0.1/v1/ws", key, { policy: approveAll }), TypeError);
  assert.throws(() => new wssign.Signer(d.wsUrl, {}, { policy: approveAll }), TypeError);
  await assert.rejects(wssign.Key.fromSeed(new Uint8Array(31)), wssign.KeyError);
}));

test("keys: files, JWK, non-extractable, both backends", async () => {
  const dir = tmpdir();
  try {
    const hexFile = path.join(dir, "seed.hex");
    fs.writeFileSync(hexFile, SEED.toString("hex").toUpperCase() + "\n", { mode: 0o600 });
    assert.equal((await wssign.loadKey(hexFile)).publicKeyB64, SEED_PUBLIC_B64);
    fs.chmodSync(hexFile, 0o640);
    await assert.rejects(wssign.loadKey(hexFile), /chmod 600/);
    await assert.rejects(wssign.loadKey(dir), /not a regular file/);
    await assert.rejects(wssign.loadKey(path.join(dir, "missing")), wssign.KeyError);
    const tool = path.join(BUILD, "src", "wssign", "wssign");
    if (fs.existsSync(tool)) {
      const pem = path.join(dir, "tool.key");
      const pub = execFileSync(tool, ["keygen", "-o", pem]).toString().trim();
      assert.equal((await wssign.loadKey(pem)).publicKeyB64, pub);
      assert.equal((await wssign.loadKey(pem, { backend: "noble" })).publicKeyB64, pub);
    }
    const b64url = (b) => Buffer.from(b).toString("base64url");
    const jwk = { kty: "OKP", crv: "Ed25519", d: b64url(SEED), x: b64url(Buffer.from(SEED_PUBLIC_B64, "base64")) };
    assert.equal((await wssign.Key.fromJwk(jwk)).publicKeyB64, SEED_PUBLIC_B64);
    await assert.rejects(wssign.Key.fromJwk({ ...jwk, x: b64url(new Uint8Array(32)) }), /not the public key/);
    const hidden = await wssign.Key.generate();
    assert.equal(hidden.cryptoKey.extractable, false);
    await assert.rejects(hidden.exportSeed(), wssign.KeyError);
    const open = await wssign.Key.fromSeed(SEED, { extractable: true });
    assert.deepEqual(Buffer.from(await open.exportSeed()), SEED);
    const noble = await wssign.Key.generate({ backend: "noble" });
    assert.equal(noble.backend, "noble");
    const sig = await noble.sign("x");
    assert.ok(await wssign.verify(noble.publicKey, new TextEncoder().encode("x"), sig));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
