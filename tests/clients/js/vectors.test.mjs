// The worked vectors of docs/PROTOCOL.md §8 through @wssign/client, with
// each Ed25519 backend (WebCrypto and @noble/ed25519): public key from seed,
// nonce, transcript, proof, the sign-hello signature, the frames.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import * as wssign from "../../../clients/js/src/index.js";
import { REPO } from "./daemon.mjs";

const { protocol } = wssign;
const doc = fs.readFileSync(path.join(REPO, "docs", "PROTOCOL.md"), "utf8");
const vectors = [...doc.matchAll(/```vector\n([\s\S]*?)```/g)].map((m) =>
  Object.fromEntries(m[1].trim().split("\n").map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)])));
const jsonBlocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)];
const [requestFrame, responseFrame] = jsonBlocks[jsonBlocks.length - 1][1].trim().split("\n").map((l) => JSON.parse(l));
const hex = (b) => Buffer.from(b).toString("hex");

for (const backend of ["webcrypto", "noble"]) {
  test(`vectors with ${backend}`, async () => {
    assert.ok(vectors.length >= 3);
    const kinds = new Set();
    for (const v of vectors) {
      const key = await wssign.Key.fromSeed(Buffer.from(v.seed, "hex"), { backend });
      assert.equal(key.backend, backend);
      assert.equal(key.publicKeyB64, v.public_key, `${v.name} public_key`);
      if (v.nonce) {
        assert.equal(protocol.b64encode(Buffer.from(v.nonce_bytes, "hex")), v.nonce);
        const transcript = protocol.introductionTranscript(v.host, v.nonce);
        assert.equal(hex(transcript), v.transcript_hex, `${v.name} transcript`);
        const proof = await key.sign(transcript);
        assert.equal(protocol.b64encode(proof), v.proof, `${v.name} proof`);
        assert.deepEqual(JSON.parse(protocol.introductionFrame(key.publicKey, v.host, proof)),
          { type: "introduction", public_key: v.public_key, host: v.host, proof: v.proof });
        kinds.add("introduction");
      } else {
        const sig = await key.sign(protocol.b64decode(v.message));
        assert.equal(protocol.b64encode(sig), v.signature, `${v.name} signature`);
        assert.ok(await wssign.verify(key.publicKey, protocol.b64decode(v.message), sig));
        kinds.add("sign");
      }
    }
    assert.deepEqual([...kinds].sort(), ["introduction", "sign"]);
    const mine = protocol.responseFrame(requestFrame.request_id, requestFrame.message, protocol.b64decode(responseFrame.signature));
    assert.deepEqual(JSON.parse(mine), responseFrame);
  });
}

test("the host a proof names", () => {
  for (const [url, host] of [["wss://Signer.Example.com:8443/v1/ws", "signer.example.com"],
    ["ws://127.0.0.1:8080/v1/ws", "127.0.0.1"], ["ws://[::1]:8080/v1/ws", "::1"], ["wss://localhost/v1/ws", "localhost"]]) {
    assert.equal(protocol.introductionHost(url), host, url);
  }
});

test("strict base64, reasons cut to 256 bytes", () => {
  for (const bad of ["aGVsbG8", "aGVs bG8=", "a-_=", "aGVsbG8=\n", 5, null]) assert.throws(() => protocol.b64decode(bad), TypeError);
  assert.equal(new TextDecoder().decode(protocol.b64decode("aGVsbG8=")), "hello");
  assert.throws(() => protocol.b64decode("aGVsbG8=", 4), TypeError);
  const reason = JSON.parse(protocol.rejectFrame("id", "é".repeat(200))).reason;
  assert.equal(new TextEncoder().encode(reason).length, 256);
  assert.equal("reason" in JSON.parse(protocol.rejectFrame("id", "")), false);
});
