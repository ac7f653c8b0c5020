// The wssign.v1 contract in plain JavaScript, as a team might write it
// instead of running wssignd: a signer WebSocket listener on `ws` and the
// POST /v1/sign control API on `http`, one process, Ed25519 from node:crypto.
// It speaks what bench_signers and bench_requester use: challenge, proof of
// possession, introduced, sign_request / sign_response (and sign_reject),
// GET /healthz, and the error answers the bench can meet. Runs unchanged on
// Node and on Bun (where `ws` and `http` are Bun's own, on uWebSockets).
//
//   node server.mjs --ws-port P --ctl-port Q [--host 127.0.0.1]
//   bun server.mjs  --ws-port P --ctl-port Q
//
// Prints "event=listening ws_port=P ctl_port=Q runtime=..." once both listen.
import { createPublicKey, randomBytes, randomUUID, verify } from 'node:crypto';
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const args = new Map();
for (let i = 2; i + 1 < process.argv.length; i += 2) args.set(process.argv[i], process.argv[i + 1]);
const host = args.get('--host') ?? '127.0.0.1';
const wsPort = Number(args.get('--ws-port') ?? 0);
const ctlPort = Number(args.get('--ctl-port') ?? 0);
const serverNames = new Set(['localhost', '127.0.0.1', '::1']);
const DEFAULT_TIMEOUT_MS = 10000;
const MAX_TIMEOUT_MS = 300000;
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const signers = new Map(); // public key (base64) -> its connection's state
const pending = new Map(); // request id -> { signer, message, publicKey, res, timer }

function decodeB64(text, length) {
  if (typeof text !== 'string' || !B64.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  return length === undefined || bytes.length === length ? bytes : null;
}

function sendError(ws, code, message, requestId) {
  const e = { type: 'error', code, message };
  if (requestId) e.request_id = requestId;
  ws.send(JSON.stringify(e));
}

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function fail(res, status, code, message, requestId) {
  const error = { code, message };
  if (requestId) error.request_id = requestId;
  answer(res, status, { error });
}

function finish(id) {
  const p = pending.get(id);
  if (!p) return null;
  pending.delete(id);
  clearTimeout(p.timer);
  p.signer.pending.delete(id);
  return p;
}

function onIntroduction(state, msg) {
  const key = decodeB64(msg.public_key, 32);
  const proof = decodeB64(msg.proof, 64);
  if (!key || !proof || typeof msg.host !== 'string') return sendError(state.ws, 'bad_field', 'bad introduction');
  if (!serverNames.has(msg.host)) return sendError(state.ws, 'bad_host', 'host is not one of this server\'s names');
  let keyObject;
  try {
    keyObject = createPublicKey({ key: Buffer.concat([SPKI_ED25519, key]), format: 'der', type: 'spki' });
  } catch {
    return sendError(state.ws, 'bad_key', 'not an Ed25519 public key');
  }
  const transcript = Buffer.from(`wssign-introduction-v1\n${msg.host}\n${state.nonce}`);
  if (!verify(null, transcript, keyObject, proof)) return sendError(state.ws, 'bad_proof', 'the proof does not verify');
  const previous = signers.get(msg.public_key);
  if (previous && previous !== state) previous.ws.close(4001, 'replaced');
  state.publicKey = msg.public_key;
  state.keyObject = keyObject;
  signers.set(msg.public_key, state);
  state.ws.send(JSON.stringify({ type: 'introduced', public_key: msg.public_key, session_id: randomUUID() }));
}

function onSignResponse(state, msg) {
  const p = pending.get(msg.request_id);
  if (!p || p.signer !== state) return sendError(state.ws, 'unknown_request', 'no such request on this connection', msg.request_id);
  const sig = decodeB64(msg.signature, 64);
  if (!sig || typeof msg.message !== 'string') return sendError(state.ws, 'bad_field', 'bad sign_response', msg.request_id);
  finish(msg.request_id);
  // Verified over the bytes sent, never over the echoed message.
  if (!verify(null, p.message, state.keyObject, sig))
    return fail(p.res, 502, 'invalid_signature', 'the signature does not verify', msg.request_id);
  answer(p.res, 200, {
    request_id: msg.request_id,
    public_key: p.publicKey,
    message: p.message.toString('base64'),
    signature: msg.signature,
  });
}

const wss = new WebSocketServer({ host, port: wsPort, path: '/v1/ws', maxPayload: 65536 });
wss.on('connection', (ws) => {
  const state = { ws, nonce: randomBytes(32).toString('base64'), publicKey: null, keyObject: null, pending: new Set() };
  ws.send(JSON.stringify({ type: 'challenge', nonce: state.nonce, protocol: 'wssign.v1' }));
  ws.on('message', (data, isBinary) => {
    if (isBinary) return ws.close(1003, 'binary frame');
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return sendError(ws, 'bad_json', 'not a JSON object');
    }
    if (msg === null || typeof msg !== 'object') return sendError(ws, 'bad_json', 'not a JSON object');
    if (msg.type === 'introduction') {
      if (state.publicKey) return sendError(ws, 'already_introduced', 'already introduced');
      return onIntroduction(state, msg);
    }
    if (!state.publicKey) return sendError(ws, 'not_introduced', 'introduce first');
    if (msg.type === 'sign_response') return onSignResponse(state, msg);
    if (msg.type === 'sign_reject') {
      const p = pending.get(msg.request_id);
      if (!p || p.signer !== state) return sendError(ws, 'unknown_request', 'no such request', msg.request_id);
      finish(msg.request_id);
      return fail(p.res, 422, 'rejected', 'the signer rejected the request', msg.request_id);
    }
    sendError(ws, 'unknown_type', 'unknown type');
  });
  ws.on('close', () => {
    if (state.publicKey && signers.get(state.publicKey) === state) signers.delete(state.publicKey);
    for (const id of state.pending) {
      const p = finish(id);
      if (p) fail(p.res, 502, 'connection_closed', 'the signer closed the connection', id);
    }
  });
});

function onSign(req, res, body) {
  let msg;
  try {
    msg = JSON.parse(body);
  } catch {
    return fail(res, 400, 'bad_request', 'the body is not JSON');
  }
  if (msg === null || typeof msg !== 'object') return fail(res, 400, 'bad_request', 'the body is not a JSON object');
  const key = decodeB64(msg.public_key, 32);
  const message = decodeB64(msg.message);
  const timeout = msg.timeout_ms ?? DEFAULT_TIMEOUT_MS;
  if (!key || !message || !message.length || !Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MS)
    return fail(res, 400, 'bad_request', 'public_key, message or timeout_ms is malformed');
  const signer = signers.get(msg.public_key);
  if (!signer) return fail(res, 404, 'not_connected', 'no introduced connection holds the key');
  const id = randomUUID();
  const expiresAt = Date.now() + timeout;
  const timer = setTimeout(() => {
    const p = finish(id);
    if (!p) return;
    p.signer.ws.send(JSON.stringify({ type: 'cancel', request_id: id, reason: 'timeout' }));
    fail(res, 504, 'timeout', 'the signer did not answer in time', id);
  }, timeout);
  pending.set(id, { signer, message, publicKey: msg.public_key, res, timer });
  signer.pending.add(id);
  res.on('close', () => {
    if (!res.writableFinished && finish(id))
      signer.ws.send(JSON.stringify({ type: 'cancel', request_id: id, reason: 'requester_cancelled' }));
  });
  signer.ws.send(JSON.stringify({ type: 'sign_request', request_id: id, message: msg.message, expires_at: expiresAt }));
}

const http = createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/healthz') {
    if (req.method !== 'GET') return fail(res, 405, 'method_not_allowed', 'GET only');
    return answer(res, 200, { status: 'ok' });
  }
  if (path !== '/v1/sign') return fail(res, 404, 'not_found', 'no such path');
  if (req.method !== 'POST') return fail(res, 405, 'method_not_allowed', 'POST only');
  if (!(req.headers['content-type'] ?? '').startsWith('application/json'))
    return fail(res, 415, 'unsupported_media_type', 'the body must be application/json');
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= 65536) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > 65536) return fail(res, 413, 'payload_too_large', 'the body is too large');
    onSign(req, res, Buffer.concat(chunks).toString());
  });
});
http.keepAliveTimeout = 60000;

let listening = 0;
function ready() {
  if (++listening < 2) return;
  const runtime = typeof Bun !== 'undefined' ? `bun-${Bun.version}` : `node-${process.versions.node}`;
  console.log(`event=listening ws_port=${wss.address().port} ctl_port=${http.address().port} runtime=${runtime}`);
}
wss.on('listening', ready);
http.listen(ctlPort, host, ready);

function shutdown() {
  for (const id of [...pending.keys()]) {
    const p = finish(id);
    if (p) fail(p.res, 503, 'shutting_down', 'the server is stopping', id);
  }
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  http.close();
  http.closeAllConnections?.();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
