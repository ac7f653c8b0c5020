// The requester side: ask wssignd's HTTP control API (docs/openapi.yaml) for
// signatures with fetch (Node 20+, browsers). Every documented error becomes
// its exception (errors.js); every returned signature is verified here too.

import { verify } from "./ed25519.js";
import { InvalidSignatureError, NotConnectedError, ProtocolError, TransportError, errorFor } from "./errors.js";
import { b64decode, b64encode, b64urlNoPad, toBytes } from "./protocol.js";

const USER_AGENT = "wssign-js/0.1";

function keyBytes(publicKey) {
  if (typeof publicKey === "string") return b64decode(publicKey, 32);
  const k = toBytes(publicKey);
  if (k.length !== 32) throw new TypeError("publicKey must be 32 bytes or their standard base64");
  return k;
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * The JSON body of POST /v1/sign. timeoutMs, label and waitMs are sent only
 * when given; label and waitMs need a daemon that supports them.
 */
export function signBody(publicKey, message, { timeoutMs, label, waitMs } = {}) {
  const body = { public_key: b64encode(keyBytes(publicKey)), message: b64encode(toBytes(message)) };
  if (timeoutMs !== undefined) {
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60000) throw new RangeError("timeoutMs must be an integer from 1 to 60000");
    body.timeout_ms = timeoutMs;
  }
  if (label !== undefined) body.label = String(label);
  if (waitMs !== undefined) {
    if (!Number.isInteger(waitMs) || waitMs < 0) throw new RangeError("waitMs must be a non-negative integer");
    body.wait_ms = waitMs;
  }
  return JSON.stringify(body);
}

/**
 * Requester. new Client(url, { token }).sign(publicKey, message, { timeoutMs })
 * resolves with { requestId, publicKey, message, signature, signatureB64 } or
 * rejects with the error's class (RejectedError, NotConnectedError,
 * TimeoutError, ... all ApiError), TransportError when the daemon cannot be
 * reached, or the signal's AbortError. Aborting a sign() closes its HTTP
 * connection, so the daemon cancels the request and tells the signer.
 */
export class Client {
  #base;
  #token;
  #fetch;

  constructor(url = "http://127.0.0.1:8081", { token = null, fetch = globalThis.fetch } = {}) {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new TypeError("the control URL must be http:// or https://");
    this.#base = u.href.replace(/\/+$/, "");
    this.#token = token;
    this.#fetch = fetch;
  }

  async #request(method, path, body, signal) {
    const headers = { accept: "application/json" };
    if (typeof window === "undefined") headers["user-agent"] = USER_AGENT;
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res;
    let text;
    try {
      res = await this.#fetch(this.#base + path, { method, headers, body, signal });
      text = await res.text();
    } catch (e) {
      if (e && e.name === "AbortError") throw e;
      throw new TransportError(`${method} ${path}: ${e && e.cause ? e.cause.message || e.cause.code : e.message}`, { cause: e });
    }
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch (e) {
      if (res.status === 200) throw new ProtocolError(`${method} ${path}: HTTP 200 with a body that is not JSON`);
    }
    if (res.status === 200) return parsed;
    const err = parsed && typeof parsed.error === "object" && parsed.error ? parsed.error : null;
    if (!err) throw errorFor(res.status, null, `HTTP ${res.status}`);
    throw errorFor(res.status, String(err.code), String(err.message ?? ""), typeof err.request_id === "string" ? err.request_id : null);
  }

  /**
   * Asks the key (32 bytes or base64) to sign message (a string is sent as
   * UTF-8). Options: timeoutMs (1..60000, default the daemon's), label and
   * waitMs (need a daemon that supports them; one without answers
   * BadRequestError), signal (an AbortSignal).
   */
  async sign(publicKey, message, { timeoutMs, label, waitMs, signal } = {}) {
    const pk = keyBytes(publicKey);
    const msg = toBytes(message);
    const body = await this.#request("POST", "/v1/sign", signBody(pk, msg, { timeoutMs, label, waitMs }), signal);
    let result;
    try {
      result = {
        requestId: String(body.request_id),
        publicKey: b64decode(body.public_key, 32),
        message: b64decode(body.message),
        signature: b64decode(body.signature, 64),
      };
    } catch (e) {
      throw new ProtocolError(`unexpected answer to POST /v1/sign: ${e.message}`);
    }
    if (!sameBytes(result.publicKey, pk) || !sameBytes(result.message, msg)) {
      throw new ProtocolError("the answer names another key or message");
    }
    if (!(await verify(pk, msg, result.signature))) {
      throw new InvalidSignatureError("the returned signature does not verify", { requestId: result.requestId });
    }
    result.signatureB64 = body.signature;
    return result;
  }

  /** GET /v1/keys/{key}: { publicKey, connected, connectedAt, sessionId, pending }; NotConnectedError when not. */
  async keyStatus(publicKey, { signal } = {}) {
    const b = await this.#request("GET", `/v1/keys/${b64urlNoPad(keyBytes(publicKey))}`, undefined, signal);
    return { publicKey: b64decode(b.public_key, 32), connected: b.connected === true, connectedAt: b.connected_at, sessionId: b.session_id, pending: b.pending };
  }

  /** True when a signer holding the key is connected. */
  async isConnected(publicKey, opts) {
    try {
      await this.keyStatus(publicKey, opts);
      return true;
    } catch (e) {
      if (e instanceof NotConnectedError) return false;
      throw e;
    }
  }

  /** True when GET /healthz answers {"status":"ok"}. */
  async health({ signal } = {}) {
    const b = await this.#request("GET", "/healthz", undefined, signal);
    return !!b && b.status === "ok";
  }
}
