// The signer side of wssign.v1: hold a connection to wssignd, prove the key
// with a host-bound introduction, answer each sign request through a policy
// callback, reconnect with capped, jittered backoff. The same code runs on
// the browser's WebSocket and on `ws` in Node.

import { IntroductionRefused, ProtocolError, WssignError } from "./errors.js";
import {
  INTRODUCTION_PREFIX, PROTOCOL, b64decode, b64encode, introductionFrame, introductionHost,
  introductionTranscript, rejectFrame, responseFrame, startsWith,
} from "./protocol.js";

// Introduction refusals no retry can fix: the key, the proof or the host is wrong.
const FATAL_INTRODUCTION_CODES = new Set(["bad_host", "bad_key", "bad_proof", "missing_proof"]);
const CLOSE_SUPERSEDED = 4001;
const ANSWERED_MEMORY = 1024;
const OPEN = 1;
const REFUSED_CLOSE_WAIT_MS = 2000;

/** Returned or thrown by a policy to decline a request with a reason (at most 256 bytes). */
export class Reject extends Error {
  constructor(reason = "declined") {
    super(reason);
    this.name = "Reject";
    this.reason = reason;
  }
}

async function webSocketClass(given) {
  if (given) return given;
  if (typeof globalThis.WebSocket === "function") return globalThis.WebSocket;
  return (await import("ws")).WebSocket;
}

function isLoopback(host) {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * One sign_request as the policy sees it: requestId, message (the bytes to
 * sign), expiresAt (unix ms or null), label and requester (when the daemon
 * sends them), frame (the whole frame), and signal, an AbortSignal aborted
 * with the reason when the daemon cancels the request (timeout,
 * requester_cancelled, shutting_down) or its connection is lost
 * (connection_closed).
 */
export class SignRequest {
  #controller = new AbortController();

  constructor(frame, message) {
    this.requestId = frame.request_id;
    this.message = message;
    this.expiresAt = Number.isInteger(frame.expires_at) ? frame.expires_at : null;
    this.label = typeof frame.label === "string" ? frame.label : null;
    this.requester = typeof frame.requester === "string" ? frame.requester : null;
    this.frame = frame;
    this.cancelReason = null;
  }

  get signal() {
    return this.#controller.signal;
  }

  /** Milliseconds left before the daemon gives up (may be negative), or null. */
  expiresIn() {
    return this.expiresAt === null ? null : this.expiresAt - Date.now();
  }

  cancel(reason) {
    if (this.cancelReason === null) this.cancelReason = reason;
    this.#controller.abort(reason);
  }
}

/**
 * Holds one Ed25519 key behind a wssignd daemon.
 *
 *   const signer = new Signer("wss://signer.example.com:8443/v1/ws", key, { policy });
 *   signer.start();
 *   await signer.waitIntroduced();
 *
 * key: a Key, or any { publicKey: Uint8Array(32), sign(bytes) } object.
 * policy(request): returns (or resolves to) true to sign, false to decline,
 * or a Reject (returned or thrown) to decline with a reason. It may take its
 * time; request.signal is aborted when the daemon cancels.
 *
 * Options: backoffInitialMs (500), backoffMaxMs (30000), connectTimeoutMs
 * (30000), pingIntervalMs (30000; Node's ws only: browsers cannot ping),
 * insecure (allow ws:// to a host that is not loopback), WebSocket (a
 * constructor to use instead of the platform's or ws's), webSocketOptions
 * (passed to ws in Node, e.g. { ca }).
 *
 * Events (CustomEvent, details in index.d.ts): state, introduced, request,
 * cancel, decision, serverError, disconnected.
 */
export class Signer extends EventTarget {
  #key;
  #policy;
  #opts;
  #closing = false;
  #fatal = null;
  #wake = null;
  #conn = null;
  #inflight = new Map();
  #answered = new Map();
  #introducedWaiters = [];
  #closedPromise;
  #resolveClosed;
  #running = null;

  constructor(url, key, { policy, backoffInitialMs = 500, backoffMaxMs = 30000, connectTimeoutMs = 30000,
    pingIntervalMs = 30000, insecure = false, WebSocket = null, webSocketOptions = {} } = {}) {
    super();
    if (!key || !(key.publicKey instanceof Uint8Array) || key.publicKey.length !== 32 || typeof key.sign !== "function") {
      throw new TypeError("key must be a Key or have a 32-byte publicKey and a sign() method");
    }
    if (typeof policy !== "function") throw new TypeError("policy must be a function");
    const parsed = new URL(url);
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") throw new TypeError("the URL must start with ws:// or wss://");
    this.url = parsed.href;
    this.host = introductionHost(url);
    if (parsed.protocol === "ws:" && !insecure && !isLoopback(this.host)) {
      throw new TypeError(`ws:// to ${this.host} authenticates no server: use wss://, or insecure: true on a test setup`);
    }
    this.#key = key;
    this.#policy = policy;
    this.#opts = { backoffInitialMs, backoffMaxMs, connectTimeoutMs, pingIntervalMs, WebSocket, webSocketOptions };
    this.publicKey = key.publicKey;
    this.publicKeyB64 = b64encode(key.publicKey);
    this.state = "idle";
    this.sessionId = null;
    this.closeCode = null;
    this.introductions = 0;
    this.#closedPromise = new Promise((resolve) => { this.#resolveClosed = resolve; });
  }

  /** Starts connecting in the background; returns the signer. */
  start() {
    if (!this.#running) this.#running = this.#run();
    return this;
  }

  /** Resolves when the signer has stopped; rejects with IntroductionRefused if it was refused for good. */
  get closed() {
    return this.#closedPromise.then(() => {
      if (this.#fatal) throw this.#fatal;
    });
  }

  /** The requests the policy is deciding, by request id. */
  get pending() {
    return new Map([...this.#inflight].map(([id, e]) => [id, e.request]));
  }

  /** Resolves with the session id once introduced; rejects on a refusal for good, on close or after timeoutMs. */
  waitIntroduced({ timeoutMs } = {}) {
    if (this.#fatal) return Promise.reject(this.#fatal);
    if (this.state === "introduced") return Promise.resolve(this.sessionId);
    if (this.state === "closed") return Promise.reject(new WssignError("the signer is closed"));
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject, timer: null };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.#introducedWaiters = this.#introducedWaiters.filter((w) => w !== waiter);
          reject(new WssignError(`not introduced within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.#introducedWaiters.push(waiter);
    });
  }

  /** Declines what is in flight (signer_stopping), closes with 1000 and stops. */
  async close() {
    this.#closing = true;
    const conn = this.#conn;
    for (const [id, entry] of this.#inflight) {
      entry.request.cancel("signer_stopping");
      if (conn && entry.conn === conn && conn.ws.readyState === OPEN) conn.ws.send(rejectFrame(id, "signer_stopping"));
    }
    if (conn && conn.ws.readyState <= OPEN) conn.ws.close(1000, "signer closed");
    if (this.#wake) this.#wake();
    if (this.#running) await this.#running;
    this.#setState("closed");
    this.#settleWaiters();
    this.#resolveClosed();
  }

  // -- the connection loop

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #setState(state, extra = {}) {
    if (state === this.state) return;
    this.state = state;
    this.#emit("state", { state, ...extra });
  }

  #settleWaiters() {
    const waiters = this.#introducedWaiters;
    this.#introducedWaiters = [];
    for (const w of waiters) {
      clearTimeout(w.timer);
      if (this.state === "introduced") w.resolve(this.sessionId);
      else w.reject(this.#fatal || new WssignError("the signer is closed"));
    }
  }

  async #run() {
    let failures = 0;
    try {
      while (!this.#closing) {
        const before = this.introductions;
        let code = null;
        try {
          code = await this.#attempt();
        } catch (e) {
          if (e instanceof IntroductionRefused) throw e;
          this.#emit("disconnected", { code: null, reason: String(e && e.message || e) });
        }
        if (this.#closing) break;
        if (this.introductions !== before) failures = 0;
        let delay;
        if (code === CLOSE_SUPERSEDED) {
          delay = this.#opts.backoffMaxMs;
        } else {
          delay = Math.random() * Math.min(this.#opts.backoffMaxMs, this.#opts.backoffInitialMs * 2 ** failures);
          failures++;
        }
        this.#setState("waiting", { delayMs: Math.round(delay), closeCode: code });
        await new Promise((resolve) => {
          const t = setTimeout(resolve, delay);
          this.#wake = () => { clearTimeout(t); resolve(); };
        });
        this.#wake = null;
      }
    } catch (e) {
      this.#fatal = e;
    } finally {
      this.#setState("closed");
      this.#settleWaiters();
      this.#resolveClosed();
    }
  }

  // One connection: connect, introduce, serve; resolves with the close code.
  async #attempt() {
    this.#setState("connecting");
    const WS = await webSocketClass(this.#opts.WebSocket);
    const nodeWs = WS !== globalThis.WebSocket && !this.#opts.WebSocket;
    const ws = nodeWs ? new WS(this.url, { handshakeTimeout: this.#opts.connectTimeoutMs, ...this.#opts.webSocketOptions }) : new WS(this.url);
    const conn = { ws, introduced: false, fatal: null, chain: Promise.resolve(), error: null, timer: null };
    this.#conn = conn;
    this.#answered.clear();
    return new Promise((resolve, reject) => {
      conn.timer = setTimeout(() => {
        conn.error = `not introduced within ${this.#opts.connectTimeoutMs} ms`;
        if (nodeWs && typeof ws.terminate === "function") ws.terminate();
        else ws.close();
      }, this.#opts.connectTimeoutMs);
      let ping = null;
      ws.onopen = () => {
        this.#setState("introducing");
        if (nodeWs && this.#opts.pingIntervalMs && typeof ws.ping === "function") {
          let alive = true;
          ws.on("pong", () => { alive = true; });
          ping = setInterval(() => {
            if (!alive) { ws.terminate(); return; }
            alive = false;
            ws.ping();
          }, this.#opts.pingIntervalMs);
        }
      };
      ws.onmessage = (ev) => {
        conn.chain = conn.chain.then(() => this.#onFrame(conn, ev.data)).catch((e) => {
          if (e instanceof IntroductionRefused) {
            // The daemon closes with its own code (1008) right after the
            // error frame: wait for that close rather than racing it.
            conn.fatal = e;
            const t = setTimeout(() => { if (ws.readyState <= OPEN) ws.close(1000); }, REFUSED_CLOSE_WAIT_MS);
            if (typeof t.unref === "function") t.unref();
            return;
          }
          conn.error = String(e && e.message || e);
          if (ws.readyState <= OPEN) ws.close(e instanceof ProtocolError ? 1002 : 1000);
        });
      };
      ws.onerror = () => {};
      ws.onclose = (ev) => {
        clearTimeout(conn.timer);
        clearInterval(ping);
        if (this.#conn === conn) this.#conn = null;
        this.closeCode = ev.code;
        this.#dropInflight(conn, "connection_closed");
        conn.chain.then(() => {
          if (conn.fatal) {
            conn.fatal.closeCode = ev.code;
            reject(conn.fatal);
            return;
          }
          this.#emit("disconnected", { code: ev.code, reason: conn.error || ev.reason || "" });
          resolve(ev.code);
        });
      };
    });
  }

  async #onFrame(conn, data) {
    if (typeof data !== "string") throw new ProtocolError("the daemon sent a binary frame");
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (e) {
      throw new ProtocolError("the daemon sent a frame that is not JSON");
    }
    if (!frame || typeof frame !== "object" || Array.isArray(frame)) throw new ProtocolError("the daemon sent a frame that is not an object");
    if (!conn.introduced) return this.#introduce(conn, frame);
    switch (frame.type) {
      case "sign_request":
        return this.#onRequest(conn, frame);
      case "cancel": {
        const entry = this.#inflight.get(frame.request_id);
        if (entry && entry.conn === conn) {
          entry.request.cancel(String(frame.reason || "cancelled"));
          this.#emit("cancel", { request: entry.request, reason: entry.request.cancelReason });
        }
        return undefined;
      }
      case "error":
        this.#emit("serverError", { code: frame.code, message: frame.message, requestId: frame.request_id ?? null });
        return undefined;
      default:
        return undefined; // a newer daemon's frame types are ignored
    }
  }

  async #introduce(conn, frame) {
    if (frame.type === "error") {
      this.#emit("serverError", { code: frame.code, message: frame.message, requestId: null });
      if (FATAL_INTRODUCTION_CODES.has(frame.code)) throw new IntroductionRefused(frame.code, frame.message || "");
      conn.error = `introduction refused: ${frame.code}`;
      return;
    }
    if (frame.type === "challenge") {
      if (frame.protocol !== PROTOCOL) throw new ProtocolError(`the daemon speaks ${JSON.stringify(frame.protocol)}, not ${PROTOCOL}`);
      try {
        b64decode(frame.nonce, 32);
      } catch (e) {
        throw new ProtocolError("challenge nonce is not base64 of 32 bytes");
      }
      const proof = await this.#sign(introductionTranscript(this.host, frame.nonce));
      if (conn.ws.readyState === OPEN) conn.ws.send(introductionFrame(this.publicKey, this.host, proof));
      return;
    }
    if (frame.type === "introduced") {
      if (frame.public_key !== this.publicKeyB64) throw new ProtocolError("the daemon confirmed another key");
      conn.introduced = true;
      clearTimeout(conn.timer);
      this.sessionId = String(frame.session_id);
      this.introductions++;
      this.#setState("introduced", { sessionId: this.sessionId });
      this.#emit("introduced", { sessionId: this.sessionId });
      this.#settleWaiters();
      return;
    }
    throw new ProtocolError(`unexpected ${JSON.stringify(frame.type)} before the introduction`);
  }

  #onRequest(conn, frame) {
    const id = frame.request_id;
    if (typeof id !== "string" || !id) return;
    if (this.#inflight.has(id)) return; // a repeat of a request being decided gets no second answer
    let message;
    try {
      message = b64decode(frame.message);
    } catch (e) {
      this.#answer(conn, id, rejectFrame(id, "malformed_request"), null, "refused", "malformed_request");
      return;
    }
    const request = new SignRequest(frame, message);
    let why = null;
    if (this.#answered.has(id)) why = "duplicate_request";
    else if (request.expiresAt !== null && Date.now() > request.expiresAt) why = "expired";
    else if (startsWith(message, INTRODUCTION_PREFIX)) why = "reserved_prefix";
    if (why) {
      this.#answer(conn, id, rejectFrame(id, why), request, "refused", why);
      return;
    }
    this.#inflight.set(id, { request, conn });
    this.#emit("request", { request });
    this.#decide(conn, request);
  }

  async #decide(conn, request) {
    const id = request.requestId;
    let result;
    try {
      result = await this.#policy(request);
    } catch (e) {
      result = e instanceof Reject ? e : new Reject("policy_error");
      if (!(e instanceof Reject) && !request.signal.aborted) console.error("wssign: the policy failed", e);
    }
    try {
      if (request.signal.aborted) return; // cancelled meanwhile: the daemon wants no answer
      let frame;
      let decision;
      let reason = null;
      if (result === true) {
        if (request.expiresAt !== null && Date.now() > request.expiresAt) {
          [frame, decision, reason] = [rejectFrame(id, "expired"), "refused", "expired"];
        } else {
          try {
            const signature = await this.#sign(request.message);
            [frame, decision] = [responseFrame(id, request.frame.message, signature), "signed"];
          } catch (e) {
            [frame, decision, reason] = [rejectFrame(id, "signing_failed"), "rejected", "signing_failed"];
          }
        }
      } else {
        reason = result instanceof Reject ? result.reason : result === false || result == null ? "declined" : "policy_error";
        [frame, decision] = [rejectFrame(id, reason), "rejected"];
      }
      if (request.signal.aborted) return;
      this.#answer(conn, id, frame, request, decision, reason);
    } finally {
      if (this.#inflight.get(id)?.request === request) this.#inflight.delete(id);
    }
  }

  #answer(conn, id, frame, request, decision, reason) {
    this.#answered.set(id, true);
    while (this.#answered.size > ANSWERED_MEMORY) this.#answered.delete(this.#answered.keys().next().value);
    if (conn.ws.readyState !== OPEN) return;
    conn.ws.send(frame);
    this.#emit("decision", { request, requestId: id, decision, reason });
  }

  #dropInflight(conn, reason) {
    for (const entry of this.#inflight.values()) {
      if (entry.conn === conn && !entry.request.signal.aborted) {
        entry.request.cancel(reason);
        this.#emit("cancel", { request: entry.request, reason });
      }
    }
  }

  async #sign(data) {
    const sig = await this.#key.sign(data);
    if (!(sig instanceof Uint8Array) || sig.length !== 64) throw new WssignError("the key's sign() did not return 64 bytes");
    return sig;
  }
}
