/*
 * wssign browser signer: an Ed25519 key held by WebCrypto in this tab, a
 * WebSocket connection to a wssignd daemon (protocol wssign.v1), and a list of
 * sign requests that the user approves or rejects one by one.
 *
 * Protocol summary (one JSON object per text frame, standard base64 with padding):
 *   daemon  {"type":"challenge","nonce":B64,"protocol":"wssign.v1"}
 *   signer  {"type":"introduction","public_key":B64,"host":HOST,"proof":B64}
 *           proof = Ed25519 over "wssign-introduction-v1\n" + HOST + "\n" + NONCE
 *   daemon  {"type":"introduced","public_key":B64,"session_id":UUID}
 *   daemon  {"type":"sign_request","request_id":UUID,"message":B64,"expires_at":MS}
 *   signer  {"type":"sign_response","request_id":..,"message":..,"signature":B64}
 *        or {"type":"sign_reject","request_id":..,"reason":TEXT}
 *   daemon  {"type":"cancel","request_id":..,"reason":..} / {"type":"error",...}
 *
 * The private key never leaves the page: it is not stored anywhere and is
 * gone when the tab is closed or reloaded.
 */
(function () {
  "use strict";

  const PROTOCOL = "wssign.v1";
  const INTRO_PREFIX = "wssign-introduction-v1";
  const PKCS8_ED25519_PREFIX = hexToBytes("302e020100300506032b657004220420");
  const MAX_LOG_ENTRIES = 500;
  const EXPIRED_GRACE_MS = 10000; // keep an expired request visible this long if no cancel comes

  const CLOSE_CODES = {
    1000: "normal closure",
    1001: "daemon shutting down",
    1006: "connection lost or refused",
    1008: "policy violation (introduction refused?)",
    1009: "message too big",
    1011: "daemon error",
    4001: "superseded by a newer connection for this key",
    4002: "introduction timeout",
  };

  const enc = new TextEncoder();

  // ---------------------------------------------------------------- state

  const state = {
    privateKey: null,     // CryptoKey (Ed25519, private, extractable)
    publicRaw: null,      // Uint8Array(32)
    publicB64: "",
    ws: null,
    host: "",
    conn: "disconnected", // disconnected | connecting | introducing | introduced | closed
    pending: new Map(),   // request_id -> {requestId, messageB64, bytes, expiresAt, el, busy, expiredAt}
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    generate: $("generate-key"),
    seedInput: $("seed-input"),
    importKey: $("import-key"),
    publicKey: $("public-key"),
    copyPublic: $("copy-public-key"),
    showSeed: $("show-seed"),
    seedOutput: $("seed-output"),
    keyError: $("key-error"),
    url: $("ws-url"),
    connect: $("connect"),
    disconnect: $("disconnect"),
    status: $("status"),
    statusDetail: $("status-detail"),
    sessionId: $("session-id"),
    requests: $("requests"),
    requestCount: $("request-count"),
    noRequests: $("no-requests"),
    template: $("request-template"),
    log: $("log"),
    clearLog: $("clear-log"),
  };

  // ---------------------------------------------------------------- bytes

  function hexToBytes(hex) {
    const clean = hex.replace(/\s+/g, "");
    if (clean.length % 2 || /[^0-9a-fA-F]/.test(clean)) throw new Error("not hex");
    const out = new Uint8Array(clean.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
    return out;
  }

  function bytesToHex(bytes, sep = "") {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(sep);
  }

  function bytesToB64(bytes) {
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(bin);
  }

  // Strict standard base64 with padding, as the protocol requires.
  function b64ToBytes(s) {
    if (typeof s !== "string" || s.length % 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
      throw new Error("not standard padded base64");
    }
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  // Lenient decoder for user input: standard or URL-safe alphabet, padding optional.
  function anyB64ToBytes(s) {
    let t = s.trim().replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
    if (!/^[A-Za-z0-9+/]*$/.test(t) || t.length % 4 === 1) throw new Error("not base64");
    while (t.length % 4) t += "=";
    return b64ToBytes(t);
  }

  function bytesToB64url(bytes) {
    return bytesToB64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function concat(a, b) {
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }

  function startsWith(bytes, prefix) {
    const p = enc.encode(prefix);
    if (bytes.length < p.length) return false;
    for (let i = 0; i < p.length; i++) if (bytes[i] !== p[i]) return false;
    return true;
  }

  // Text if the bytes are valid UTF-8 without control or direction-changing
  // characters (tab, CR and LF allowed); otherwise null, and the caller shows hex.
  function printableText(bytes) {
    let text;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch (e) {
      return null;
    }
    // C0 (except \t \n \r), DEL, C1, zero-width and bidi controls, BOM, specials.
    if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF\uFFF9-\uFFFB]/.test(text)) {
      return null;
    }
    return text;
  }

  function formatHex(bytes) {
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) lines.push(bytesToHex(bytes.subarray(i, i + 16), " "));
    return lines.join("\n");
  }

  // ---------------------------------------------------------------- log

  function log(level, text) {
    const li = document.createElement("li");
    li.className = "log-" + level;
    li.dataset.level = level;
    const time = document.createElement("time");
    time.textContent = new Date().toLocaleTimeString();
    const msg = document.createElement("span");
    msg.textContent = text;
    li.append(time, " ", msg);
    ui.log.append(li);
    while (ui.log.childElementCount > MAX_LOG_ENTRIES) ui.log.firstElementChild.remove();
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  // ---------------------------------------------------------------- key

  function cryptoAvailable() {
    if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
      showKeyError("WebCrypto is not available: open this page over https:// or from " +
        "http://localhost / http://127.0.0.1 (a secure context).");
      return false;
    }
    return true;
  }

  function showKeyError(text) {
    ui.keyError.textContent = text;
    ui.keyError.hidden = !text;
    if (text) log("error", text);
  }

  function explainCryptoError(e) {
    if (e && e.name === "NotSupportedError") {
      return "this browser's WebCrypto has no Ed25519 (needs Chrome/Chromium 137+, Firefox 129+ or Safari 17+)";
    }
    return (e && e.message) || String(e);
  }

  async function setKey(privateKey, publicRaw, how) {
    if (publicRaw.length !== 32) throw new Error("public key is not 32 bytes");
    state.privateKey = privateKey;
    state.publicRaw = publicRaw;
    state.publicB64 = bytesToB64(publicRaw);
    ui.publicKey.textContent = state.publicB64;
    ui.publicKey.dataset.hex = bytesToHex(publicRaw);
    ui.seedOutput.hidden = true;
    ui.seedOutput.textContent = "";
    ui.showSeed.textContent = "Show seed";
    showKeyError("");
    log("info", how + "; public key " + state.publicB64);
    updateControls();
  }

  async function generateKey() {
    if (!cryptoAvailable()) return;
    try {
      const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
      const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
      await setKey(pair.privateKey, raw, "generated a new key");
    } catch (e) {
      showKeyError("cannot generate a key: " + explainCryptoError(e));
    }
  }

  // A 32-byte seed, wrapped in the fixed PKCS#8 header for Ed25519.
  async function importSeed(seed, how) {
    if (seed.length !== 32) throw new Error("a seed is 32 bytes, got " + seed.length);
    const pkcs8 = concat(PKCS8_ED25519_PREFIX, seed);
    const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
    const jwk = await crypto.subtle.exportKey("jwk", key);
    await setKey(key, anyB64ToBytes(jwk.x), how);
  }

  // A private-key JWK: {"kty":"OKP","crv":"Ed25519","d":..., "x":... (optional)}.
  async function importJwk(text) {
    let jwk;
    try {
      jwk = JSON.parse(text);
    } catch (e) {
      throw new Error("not valid JSON");
    }
    if (!jwk || jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.d !== "string") {
      throw new Error('a private-key JWK needs "kty":"OKP", "crv":"Ed25519" and "d"');
    }
    const seed = anyB64ToBytes(jwk.d);
    if (typeof jwk.x !== "string") {
      await importSeed(seed, "imported a JWK private key");
      return;
    }
    const key = await crypto.subtle.importKey(
      "jwk", { kty: "OKP", crv: "Ed25519", d: jwk.d, x: jwk.x, ext: true },
      { name: "Ed25519" }, true, ["sign"]);
    // Check that "x" belongs to "d": derive the public key from the seed alone.
    const derived = await crypto.subtle.importKey(
      "pkcs8", concat(PKCS8_ED25519_PREFIX, seed), { name: "Ed25519" }, true, ["sign"]);
    const x = (await crypto.subtle.exportKey("jwk", derived)).x;
    if (bytesToHex(anyB64ToBytes(x)) !== bytesToHex(anyB64ToBytes(jwk.x))) {
      throw new Error('the JWK\'s "x" is not the public key of its "d"');
    }
    await setKey(key, anyB64ToBytes(jwk.x), "imported a JWK private key");
  }

  async function importFromInput() {
    if (!cryptoAvailable()) return;
    const text = ui.seedInput.value.trim();
    try {
      if (!text) throw new Error("enter a 32-byte seed (hex or base64) or a JWK");
      if (text.startsWith("{")) {
        await importJwk(text);
      } else if (/^[0-9a-fA-F]{64}$/.test(text)) {
        await importSeed(hexToBytes(text), "imported a seed (hex)");
      } else {
        let seed;
        try {
          seed = anyB64ToBytes(text);
        } catch (e) {
          throw new Error("not 64 hex digits, base64 or a JWK");
        }
        await importSeed(seed, "imported a seed (base64)");
      }
      ui.seedInput.value = "";
    } catch (e) {
      showKeyError("cannot import the key: " + explainCryptoError(e));
    }
  }

  async function toggleSeed() {
    if (!ui.seedOutput.hidden) {
      ui.seedOutput.hidden = true;
      ui.seedOutput.textContent = "";
      ui.showSeed.textContent = "Show seed";
      return;
    }
    try {
      const jwk = await crypto.subtle.exportKey("jwk", state.privateKey);
      ui.seedOutput.textContent = bytesToHex(anyB64ToBytes(jwk.d));
      ui.seedOutput.hidden = false;
      ui.showSeed.textContent = "Hide seed";
    } catch (e) {
      showKeyError("cannot export the seed: " + explainCryptoError(e));
    }
  }

  async function signBytes(bytes) {
    return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, state.privateKey, bytes));
  }

  // ---------------------------------------------------------------- connection

  function setConn(conn, detail) {
    state.conn = conn;
    ui.status.dataset.state = conn;
    ui.status.textContent = conn;
    ui.status.title = detail || "";
    ui.statusDetail.textContent = conn === "closed" || conn === "connecting" ? detail || "" : "";
    if (detail) ui.status.dataset.detail = detail;
    else delete ui.status.dataset.detail;
    updateControls();
  }

  function updateControls() {
    const active = state.ws !== null;
    ui.generate.disabled = active;
    ui.importKey.disabled = active;
    ui.seedInput.disabled = active;
    ui.copyPublic.disabled = !state.privateKey;
    ui.showSeed.disabled = !state.privateKey;
    ui.connect.disabled = active || !state.privateKey;
    ui.disconnect.disabled = !active;
    ui.url.disabled = active;
  }

  // The host exactly as the daemon compares it: lowercase, no port, no brackets.
  function introductionHost(url) {
    return url.hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  }

  function send(obj) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
      log("error", "not connected: cannot send " + obj.type);
      return false;
    }
    state.ws.send(JSON.stringify(obj));
    return true;
  }

  function connect() {
    if (state.ws || !state.privateKey) return;
    let url;
    try {
      url = new URL(ui.url.value.trim());
    } catch (e) {
      log("error", "invalid URL: " + ui.url.value);
      return;
    }
    if (url.protocol !== "ws:" && url.protocol !== "wss:") {
      log("error", "the URL must start with ws:// or wss://");
      return;
    }
    state.host = introductionHost(url);
    let ws;
    try {
      ws = new WebSocket(url.href);
    } catch (e) {
      log("error", "cannot open WebSocket: " + e.message);
      return;
    }
    state.ws = ws;
    setConn("connecting", url.href);
    log("info", "connecting to " + url.href);

    ws.addEventListener("open", () => {
      if (state.ws !== ws) return;
      setConn("introducing", "waiting for the challenge");
      log("info", "connected; waiting for the challenge");
    });
    ws.addEventListener("message", (ev) => {
      if (state.ws !== ws) return;
      onFrame(ev.data).catch((e) => log("error", "frame handling failed: " + explainCryptoError(e)));
    });
    ws.addEventListener("close", (ev) => {
      if (state.ws !== ws) return;
      state.ws = null;
      const what = CLOSE_CODES[ev.code] || "closed";
      const detail = "code " + ev.code + " (" + what + ")" + (ev.reason ? ": " + ev.reason : "");
      dropAllRequests("connection closed");
      ui.sessionId.textContent = "";
      setConn("closed", detail);
      log(ev.code === 1000 ? "info" : "warn", "connection closed, " + detail);
    });
    ws.addEventListener("error", () => {
      if (state.ws !== ws) return;
      log("error", "WebSocket error (see the close code below)");
    });
  }

  function disconnect() {
    if (!state.ws) return;
    log("info", "disconnecting");
    state.ws.close(1000, "signer closed");
  }

  async function onFrame(data) {
    if (typeof data !== "string") {
      log("warn", "ignored a binary frame");
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (e) {
      log("warn", "ignored a frame that is not JSON");
      return;
    }
    if (!msg || typeof msg !== "object") {
      log("warn", "ignored a frame that is not a JSON object");
      return;
    }
    switch (msg.type) {
      case "challenge":
        return onChallenge(msg);
      case "introduced":
        return onIntroduced(msg);
      case "sign_request":
        return onSignRequest(msg);
      case "cancel":
        return onCancel(msg);
      case "error":
        log("error", "daemon error " + msg.code + ": " + msg.message +
          (msg.request_id ? " (request " + msg.request_id + ")" : ""));
        return;
      default:
        log("warn", "ignored a frame of type " + JSON.stringify(msg.type));
    }
  }

  async function onChallenge(msg) {
    if (state.conn !== "introducing" && state.conn !== "connecting") {
      log("warn", "ignored an unexpected challenge");
      return;
    }
    if (msg.protocol !== PROTOCOL) {
      log("error", "daemon speaks " + JSON.stringify(msg.protocol) + ", not " + PROTOCOL);
      state.ws.close(1000, "unsupported protocol");
      return;
    }
    if (typeof msg.nonce !== "string") {
      log("error", "challenge without a nonce");
      state.ws.close(1000, "bad challenge");
      return;
    }
    // The nonce is signed as the base64 text exactly as received.
    const transcript = enc.encode(INTRO_PREFIX + "\n" + state.host + "\n" + msg.nonce);
    const proof = await signBytes(transcript);
    if (send({ type: "introduction", public_key: state.publicB64, host: state.host, proof: bytesToB64(proof) })) {
      setConn("introducing", "introduction sent");
      log("info", "challenge received; introduced as host " + state.host);
    }
  }

  function onIntroduced(msg) {
    if (msg.public_key !== state.publicB64) {
      log("error", "daemon confirmed a different key: " + msg.public_key);
      state.ws.close(1000, "wrong key confirmed");
      return;
    }
    ui.sessionId.textContent = msg.session_id || "";
    setConn("introduced", "session " + (msg.session_id || "?"));
    log("info", "introduced, session " + msg.session_id);
  }

  function onSignRequest(msg) {
    const id = msg.request_id;
    if (typeof id !== "string" || !id) {
      log("error", "sign_request without a request_id");
      return;
    }
    if (state.conn !== "introduced") {
      log("warn", "sign_request " + id + " before the introduction completed; rejected");
      send({ type: "sign_reject", request_id: id, reason: "signer not ready" });
      return;
    }
    if (state.pending.has(id)) {
      log("warn", "duplicate sign_request " + id + " ignored");
      return;
    }
    let bytes;
    try {
      bytes = b64ToBytes(msg.message);
    } catch (e) {
      log("error", "sign_request " + id + ": message is not valid base64; rejected");
      send({ type: "sign_reject", request_id: id, reason: "malformed message" });
      return;
    }
    if (startsWith(bytes, INTRO_PREFIX)) {
      log("warn", "sign_request " + id + " refused automatically: it begins with the reserved \"" +
        INTRO_PREFIX + "\" prefix (it could be used as an introduction proof)");
      send({ type: "sign_reject", request_id: id, reason: "message begins with the reserved introduction prefix" });
      return;
    }
    const expiresAt = typeof msg.expires_at === "number" ? msg.expires_at : null;
    addRequest({ requestId: id, messageB64: msg.message, bytes, expiresAt });
    log("info", "sign_request " + id + " (" + bytes.length + " bytes) waiting for approval");
  }

  function onCancel(msg) {
    const req = state.pending.get(msg.request_id);
    log("warn", "request " + msg.request_id + " cancelled by the daemon: " + msg.reason +
      (req ? "" : " (not pending here)"));
    if (req) removeRequest(req);
  }

  // ---------------------------------------------------------------- requests

  function addRequest(req) {
    const el = ui.template.content.firstElementChild.cloneNode(true);
    el.id = "request-" + req.requestId;
    el.dataset.requestId = req.requestId;
    el.querySelector(".request-id").textContent = req.requestId;
    const text = printableText(req.bytes);
    const format = el.querySelector(".format");
    const message = el.querySelector(".message");
    if (text !== null) {
      format.textContent = "text";
      el.dataset.format = "text";
      message.textContent = text.length ? text : "(empty message)";
    } else {
      format.textContent = "hex";
      el.dataset.format = "hex";
      message.textContent = formatHex(req.bytes);
      message.classList.add("hex");
    }
    el.querySelector(".size").textContent = req.bytes.length + (req.bytes.length === 1 ? " byte" : " bytes");
    const approve = el.querySelector(".approve");
    const reject = el.querySelector(".reject");
    approve.id = "approve-" + req.requestId;
    reject.id = "reject-" + req.requestId;
    approve.addEventListener("click", () => approveRequest(req));
    reject.addEventListener("click", () => rejectRequest(req));
    req.el = el;
    req.busy = false;
    req.expiredAt = null;
    state.pending.set(req.requestId, req);
    ui.requests.append(el);
    updateCountdown(req, Date.now());
    updateRequestCount();
  }

  function removeRequest(req) {
    state.pending.delete(req.requestId);
    if (req.el) req.el.remove();
    updateRequestCount();
  }

  function dropAllRequests(why) {
    for (const req of state.pending.values()) {
      log("warn", "request " + req.requestId + " dropped: " + why);
      removeRequest(req);
    }
  }

  function updateRequestCount() {
    ui.requestCount.textContent = String(state.pending.size);
    ui.noRequests.hidden = state.pending.size > 0;
  }

  function setBusy(req, busy) {
    req.busy = busy;
    req.el.querySelector(".approve").disabled = busy || req.expiredAt !== null;
    req.el.querySelector(".reject").disabled = busy || req.expiredAt !== null;
  }

  async function approveRequest(req) {
    if (req.busy || !state.pending.has(req.requestId)) return;
    setBusy(req, true);
    try {
      const signature = await signBytes(req.bytes);
      if (!state.pending.has(req.requestId)) return; // cancelled meanwhile
      if (send({ type: "sign_response", request_id: req.requestId, message: req.messageB64, signature: bytesToB64(signature) })) {
        log("info", "request " + req.requestId + " approved and signed");
        removeRequest(req);
      } else {
        setBusy(req, false);
      }
    } catch (e) {
      log("error", "signing failed: " + explainCryptoError(e));
      setBusy(req, false);
    }
  }

  function rejectRequest(req) {
    if (req.busy || !state.pending.has(req.requestId)) return;
    if (send({ type: "sign_reject", request_id: req.requestId, reason: "rejected by the user" })) {
      log("info", "request " + req.requestId + " rejected");
      removeRequest(req);
    }
  }

  function updateCountdown(req, now) {
    const el = req.el.querySelector(".countdown");
    if (req.expiresAt === null) {
      el.textContent = "no expiry given";
      return;
    }
    const left = req.expiresAt - now;
    if (left > 0) {
      el.textContent = "expires in " + (left / 1000).toFixed(1) + " s";
      el.classList.toggle("soon", left < 10000);
      return;
    }
    if (req.expiredAt === null) {
      req.expiredAt = now;
      el.textContent = "expired";
      req.el.classList.add("expired");
      setBusy(req, req.busy);
    } else if (now - req.expiredAt > EXPIRED_GRACE_MS) {
      log("warn", "request " + req.requestId + " expired");
      removeRequest(req);
    }
  }

  function tick() {
    const now = Date.now();
    for (const req of Array.from(state.pending.values())) updateCountdown(req, now);
  }

  // ---------------------------------------------------------------- wiring

  ui.generate.addEventListener("click", generateKey);
  ui.importKey.addEventListener("click", importFromInput);
  ui.seedInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") importFromInput();
  });
  ui.showSeed.addEventListener("click", toggleSeed);
  ui.copyPublic.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(state.publicB64);
      log("info", "public key copied");
    } catch (e) {
      log("warn", "cannot copy: " + e.message);
    }
  });
  ui.connect.addEventListener("click", connect);
  ui.disconnect.addEventListener("click", disconnect);
  ui.url.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") connect();
  });
  ui.clearLog.addEventListener("click", () => ui.log.replaceChildren());
  window.addEventListener("beforeunload", () => {
    if (state.ws) state.ws.close(1000, "page closed");
  });

  setInterval(tick, 250);
  updateControls();
  updateRequestCount();
  document.body.dataset.ready = "true";
  if (cryptoAvailable()) log("info", "ready: generate or import a key, then connect");
})();
