// @wssign/client's Client in Node against the real daemon: each HTTP error
// of the control API becomes its exception; the body carries label and
// wait_ms only when given; every code of docs/openapi.yaml has its class.

import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { createRequire } from "node:module";
import { test } from "node:test";

import * as wssign from "../../../clients/js/src/index.js";
import { REPO, SEED, tmpdir, until, withDaemon } from "./daemon.mjs";

const { WebSocket } = createRequire(path.join(REPO, "clients", "js", "package.json"))("ws");
const TOKEN = "client-test-token-0123456789";
const FAST = { backoffInitialMs: 50, backoffMaxMs: 200 };

async function expectError(promise, Cls, status) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Cls, `expected ${Cls.name}, got ${e && e.name}: ${e && e.message}`);
    assert.equal(e.constructor, Cls);
    assert.ok(e instanceof wssign.ApiError);
    assert.equal(e.status, status);
    assert.equal(e.code, Cls.code);
    return true;
  });
}

function tokenFile(dir) {
  const file = path.join(dir, "tokens");
  fs.writeFileSync(file, TOKEN + "\n", { mode: 0o600 });
  return file;
}

async function deadPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

test("every code of openapi.yaml has its class", () => {
  const yaml = fs.readFileSync(path.join(REPO, "docs", "openapi.yaml"), "utf8");
  const block = /\n {4}ErrorCode:\n[\s\S]*?enum:\n((?: {8}- \w+\n)+)/.exec(yaml);
  assert.ok(block, "ErrorCode enum found");
  const codes = block[1].trim().split("\n").map((l) => l.replace(/^\s*- /, ""));
  assert.ok(codes.length >= 15);
  const classes = new Set();
  for (const code of codes) {
    const e = wssign.errorFor(418, code, "text");
    assert.notEqual(e.constructor, wssign.ApiError, `no class of its own for ${code}`);
    assert.equal(e.code, code);
    classes.add(e.constructor);
  }
  assert.equal(classes.size, codes.length);
  assert.equal(wssign.errorFor(500, "something_new").constructor, wssign.ApiError);
});

test("sign body", async () => {
  const key = await wssign.Key.fromSeed(SEED);
  assert.deepEqual(JSON.parse(wssign.signBody(key.publicKey, "m", { timeoutMs: 1500 })),
    { public_key: key.publicKeyB64, message: "bQ==", timeout_ms: 1500 });
  const b = JSON.parse(wssign.signBody(key.publicKeyB64, "m", { label: "invoice 42", waitMs: 2000 }));
  assert.deepEqual([b.label, b.wait_ms, "timeout_ms" in b], ["invoice 42", 2000, false]);
  for (const bad of [{ timeoutMs: 0 }, { timeoutMs: 60001 }, { timeoutMs: 1.5 }, { waitMs: -1 }]) {
    assert.throws(() => wssign.signBody(key.publicKey, "m", bad), RangeError);
  }
});

test("errors without a signer", () => withDaemon({ requests: { max_message_bytes: 64 } }, async (d) => {
  const key = await wssign.Key.fromSeed(SEED);
  const client = new wssign.Client(d.controlUrl);
  await expectError(client.sign(key.publicKey, "x"), wssign.NotConnectedError, 404);
  await expectError(client.sign(key.publicKey, "wssign-introduction-v1\nx"), wssign.BadRequestError, 400);
  await expectError(client.sign(key.publicKey, "x", { label: "two\nlines" }), wssign.BadRequestError, 400);
  const t0 = Date.now();
  await expectError(client.sign(key.publicKey, "x", { waitMs: 300 }), wssign.NotConnectedError, 404);
  assert.ok(Date.now() - t0 >= 290, "the wait lasted its 300 ms");
  await expectError(client.sign(key.publicKey, "m".repeat(65)), wssign.PayloadTooLargeError, 413);
  await expectError(new wssign.Client(d.controlUrl + "/prefix").sign(key.publicKey, "x"), wssign.NotFoundError, 404);
  await expectError(client.keyStatus(key.publicKey), wssign.NotConnectedError, 404);
  assert.equal(await client.isConnected(key.publicKey), false);
}));

test("signer outcomes: 422, 504, 503 overloaded, 502 both codes", () => withDaemon({ requests: { max_pending_per_key: 1 } }, async (d) => {
  const key = await wssign.Key.fromSeed(SEED);
  const client = new wssign.Client(d.controlUrl);
  const mode = { how: "reject" };
  let release = null;
  const policy = (req) => {
    if (mode.how === "reject") return new wssign.Reject("no");
    if (mode.how === "hold") {
      return new Promise((resolve) => {
        release = () => resolve(true);
        req.signal.addEventListener("abort", () => resolve(false));
      });
    }
    return true;
  };
  let s = new wssign.Signer(d.wsUrl, key, { ...FAST, policy }).start();
  try {
    await s.waitIntroduced({ timeoutMs: 5000 });
    await expectError(client.sign(key.publicKey, "x"), wssign.RejectedError, 422);
    mode.how = "hold";
    await expectError(client.sign(key.publicKey, "x", { timeoutMs: 200 }), wssign.TimeoutError, 504);
    const held = client.sign(key.publicKey, "held");
    held.catch(() => {}); // awaited below
    await until(() => s.pending.size === 1, "the held request");
    await expectError(client.sign(key.publicKey, "x"), wssign.OverloadedError, 503);
    release();
    await held;
  } finally {
    await s.close();
  }
  // Signs introductions properly and everything else wrongly.
  const forger = {
    publicKey: key.publicKey,
    sign: (data) => (new TextDecoder().decode(data.subarray(0, 22)) === "wssign-introduction-v1" ? key.sign(data) : new Uint8Array(64)),
  };
  mode.how = "sign";
  s = new wssign.Signer(d.wsUrl, forger, { ...FAST, policy }).start();
  try {
    await s.waitIntroduced({ timeoutMs: 5000 });
    await expectError(client.sign(key.publicKey, "x"), wssign.InvalidSignatureError, 502);
  } finally {
    await s.close();
  }
  // A signer that leaves without answering: connection_closed.
  const ws = new WebSocket(d.wsUrl);
  const frames = [];
  ws.on("message", async (data) => {
    const f = JSON.parse(data.toString());
    frames.push(f);
    if (f.type === "challenge") {
      const proof = await key.sign(wssign.protocol.introductionTranscript("127.0.0.1", f.nonce));
      ws.send(wssign.protocol.introductionFrame(key.publicKey, "127.0.0.1", proof));
    }
  });
  await until(() => frames.some((f) => f.type === "introduced"), "the raw signer's introduction");
  const left = client.sign(key.publicKey, "left");
  left.catch(() => {}); // checked below
  await until(() => frames.some((f) => f.type === "sign_request"), "the request at the raw signer");
  ws.terminate();
  await expectError(left, wssign.ConnectionClosedError, 502);
}));

test("auth errors", async () => {
  const dir = tmpdir();
  try {
    await withDaemon({ controllers: { http_api: { token_file: tokenFile(dir), auth_failures_burst: 2 } } }, async (d) => {
      const key = await wssign.Key.fromSeed(SEED);
      assert.equal(await new wssign.Client(d.controlUrl).health(), true, "healthz needs no token");
      await expectError(new wssign.Client(d.controlUrl, { token: TOKEN }).sign(key.publicKey, "x"), wssign.NotConnectedError, 404);
      await expectError(new wssign.Client(d.controlUrl, { token: "wrong-token-0123456789" }).sign(key.publicKey, "x"), wssign.UnauthorizedError, 401);
      await expectError(new wssign.Client(d.controlUrl).sign(key.publicKey, "x"), wssign.UnauthorizedError, 401);
      await expectError(new wssign.Client(d.controlUrl).sign(key.publicKey, "x"), wssign.TooManyRequestsError, 429);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("shutting down, cluster unavailable, transport", async () => {
  const key = await wssign.Key.fromSeed(SEED);
  await withDaemon({}, async (d) => {
    let asked = false;
    const s = new wssign.Signer(d.wsUrl, key, { ...FAST, policy: () => { asked = true; return new Promise(() => {}); } }).start();
    try {
      await s.waitIntroduced({ timeoutMs: 5000 });
      const pending = new wssign.Client(d.controlUrl).sign(key.publicKey, "x");
      pending.catch(() => {}); // checked below, after the daemon has stopped
      await until(() => asked, "the request at the signer");
      await d.stop();
      await expectError(pending, wssign.ShuttingDownError, 503);
    } finally {
      await s.close();
    }
  });
  const dead = await deadPort();
  await assert.rejects(new wssign.Client(`http://127.0.0.1:${dead}`).sign(key.publicKey, "x"), wssign.TransportError);
  const dir = tmpdir();
  try {
    const secret = path.join(dir, "cluster.secret");
    fs.writeFileSync(secret, Buffer.alloc(48, 7), { mode: 0o600 });
    await withDaemon({ cluster: { redis: `redis://127.0.0.1:${dead}`, secret_file: secret } }, async (d) => {
      await expectError(new wssign.Client(d.controlUrl).sign(key.publicKey, "x"), wssign.ClusterUnavailableError, 503);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
