/*
 * wssign browser signer, built on @wssign/client (clients/js): an Ed25519
 * key held by WebCrypto in this tab (non-extractable: not even this page can
 * read it back), a Signer that connects to a wssignd daemon, introduces
 * itself and reconnects with backoff, and an approval card per sign request:
 * the library's policy callback waits for the user's Approve or Reject, and
 * the daemon's cancel removes the card.
 *
 * The private key is not stored anywhere: it is gone when the tab is closed
 * or reloaded.
 */
import { Key, Reject, Signer, protocol } from "../../clients/js/src/index.js";

const MAX_LOG_ENTRIES = 500;
const EXPIRED_GRACE_MS = 10000; // keep an expired card visible this long if no cancel comes

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

// ---------------------------------------------------------------- state

const state = {
  key: null,            // a @wssign/client Key (WebCrypto, non-extractable)
  signer: null,         // the Signer while connected or reconnecting
  cards: new Map(),     // request_id -> {request, el, decide, expiredAt}
};

const $ = (id) => document.getElementById(id);
const ui = {
  generate: $("generate-key"),
  seedInput: $("seed-input"),
  importKey: $("import-key"),
  publicKey: $("public-key"),
  copyPublic: $("copy-public-key"),
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
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function bytesToHex(bytes, sep = "") {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(sep);
}

// Lenient decoder for user input: standard or URL-safe alphabet, padding optional.
function anyB64ToBytes(s) {
  let t = s.trim().replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  if (!/^[A-Za-z0-9+/]*$/.test(t) || t.length % 4 === 1) throw new Error("not base64");
  while (t.length % 4) t += "=";
  return protocol.b64decode(t);
}

// Text if the bytes are valid UTF-8 without control or direction-changing
// characters (tab, CR and LF allowed); otherwise null, and the card shows hex.
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
  if (e && (e.name === "NotSupportedError" || /noble/.test(e.message || ""))) {
    return "this browser's WebCrypto has no Ed25519 (needs Chrome/Chromium 137+, Firefox 129+ or Safari 17+)";
  }
  return (e && e.message) || String(e);
}

function setKey(key, how) {
  state.key = key;
  ui.publicKey.textContent = key.publicKeyB64;
  ui.publicKey.dataset.hex = bytesToHex(key.publicKey);
  showKeyError("");
  log("info", how + "; public key " + key.publicKeyB64);
  updateControls();
}

async function generateKey() {
  if (!cryptoAvailable()) return;
  try {
    setKey(await Key.generate({ backend: "webcrypto" }), "generated a new key (not extractable)");
  } catch (e) {
    showKeyError("cannot generate a key: " + explainCryptoError(e));
  }
}

// A 32-byte seed (hex or base64), or a private-key JWK whose "x", when present, must match "d".
async function importFromInput() {
  if (!cryptoAvailable()) return;
  const text = ui.seedInput.value.trim();
  try {
    if (!text) throw new Error("enter a 32-byte seed (hex or base64) or a JWK");
    if (text.startsWith("{")) {
      let jwk;
      try {
        jwk = JSON.parse(text);
      } catch (e) {
        throw new Error("not valid JSON");
      }
      setKey(await Key.fromJwk(jwk, { backend: "webcrypto" }), "imported a JWK private key");
    } else if (/^[0-9a-fA-F]{64}$/.test(text)) {
      setKey(await Key.fromSeed(hexToBytes(text), { backend: "webcrypto" }), "imported a seed (hex)");
    } else {
      let seed;
      try {
        seed = anyB64ToBytes(text);
      } catch (e) {
        throw new Error("not 64 hex digits, base64 or a JWK");
      }
      setKey(await Key.fromSeed(seed, { backend: "webcrypto" }), "imported a seed (base64)");
    }
    ui.seedInput.value = "";
  } catch (e) {
    showKeyError("cannot import the key: " + explainCryptoError(e));
  }
}

// ---------------------------------------------------------------- connection

// Page states: disconnected, connecting, introducing, introduced,
// reconnecting (the library waits before its next attempt), closed.
function setConn(conn, detail) {
  ui.status.dataset.state = conn;
  ui.status.textContent = conn;
  ui.statusDetail.textContent = conn === "introduced" ? "" : detail || "";
  if (detail) ui.status.dataset.detail = detail;
  else delete ui.status.dataset.detail;
  updateControls();
}

function updateControls() {
  const active = state.signer !== null;
  ui.generate.disabled = active;
  ui.importKey.disabled = active;
  ui.seedInput.disabled = active;
  ui.copyPublic.disabled = !state.key;
  ui.connect.disabled = active || !state.key;
  ui.disconnect.disabled = !active;
  ui.url.disabled = active;
}

function closeDetail(code, reason) {
  if (code === null || code === undefined) return reason || "";
  return "code " + code + " (" + (CLOSE_CODES[code] || "closed") + ")" + (reason ? ": " + reason : "");
}

function connect() {
  if (state.signer || !state.key) return;
  let signer;
  try {
    signer = new Signer(ui.url.value.trim(), state.key, { policy: askUser, backoffInitialMs: 500, backoffMaxMs: 10000 });
  } catch (e) {
    log("error", e.message);
    return;
  }
  state.signer = signer;
  let lastClose = "";
  signer.addEventListener("state", (ev) => {
    if (state.signer !== signer) return;
    const s = ev.detail.state;
    if (s === "connecting") setConn("connecting", signer.url);
    else if (s === "introducing") setConn("introducing", "waiting for the challenge");
    else if (s === "introduced") {
      ui.sessionId.textContent = ev.detail.sessionId;
      setConn("introduced", "session " + ev.detail.sessionId);
    } else if (s === "waiting") {
      ui.sessionId.textContent = "";
      setConn("reconnecting", lastClose + "; next attempt in " + (ev.detail.delayMs / 1000).toFixed(1) + " s");
    }
  });
  signer.addEventListener("introduced", (ev) => log("info", "introduced as host " + signer.host + ", session " + ev.detail.sessionId));
  signer.addEventListener("disconnected", (ev) => {
    lastClose = closeDetail(ev.detail.code, ev.detail.reason);
    log(ev.detail.code === 1000 ? "info" : "warn", "connection closed, " + lastClose);
  });
  signer.addEventListener("serverError", (ev) => {
    const d = ev.detail;
    log("error", "daemon error " + d.code + ": " + d.message + (d.requestId ? " (request " + d.requestId + ")" : ""));
  });
  signer.addEventListener("cancel", (ev) => {
    const id = ev.detail.request.requestId;
    log("warn", "request " + id + " cancelled by the daemon: " + ev.detail.reason);
    removeCard(id);
  });
  signer.addEventListener("decision", (ev) => {
    const d = ev.detail;
    if (d.decision === "refused") {
      log("warn", "sign_request " + d.requestId + " refused automatically: " + d.reason +
        (d.reason === "reserved_prefix" ? " (it begins with \"" + protocol.INTRODUCTION_PREFIX + "\" and could serve as an introduction proof)" : ""));
    } else if (d.decision === "signed") {
      log("info", "request " + d.requestId + " approved and signed");
    } else {
      log("info", "request " + d.requestId + " rejected (" + d.reason + ")");
    }
  });
  signer.closed.catch((e) => {
    if (state.signer !== signer) return;
    state.signer = null;
    dropAllCards();
    setConn("closed", closeDetail(e.closeCode, e.message));
    log("error", e.message + ": check the key and the daemon's server_names");
  });
  log("info", "connecting to " + signer.url);
  signer.start();
}

async function disconnect() {
  const signer = state.signer;
  if (!signer) return;
  log("info", "disconnecting");
  await signer.close();
  state.signer = null;
  dropAllCards();
  ui.sessionId.textContent = "";
  setConn("closed", closeDetail(1000, "signer closed"));
}

// ---------------------------------------------------------------- requests

// The library's policy: show a card and wait for the user's decision. The
// library has already refused expired, repeated and reserved-prefix requests.
function askUser(request) {
  return new Promise((resolve) => {
    const card = addCard(request, resolve);
    log("info", "sign_request " + request.requestId + " (" + request.message.length + " bytes) waiting for approval");
    request.signal.addEventListener("abort", () => {
      removeCard(card.request.requestId);
      resolve(false); // not sent: the daemon cancelled the request
    });
  });
}

function addCard(request, decide) {
  const el = ui.template.content.firstElementChild.cloneNode(true);
  const id = request.requestId;
  el.id = "request-" + id;
  el.dataset.requestId = id;
  el.querySelector(".request-id").textContent = id;
  const text = printableText(request.message);
  const format = el.querySelector(".format");
  const message = el.querySelector(".message");
  if (text !== null) {
    format.textContent = "text";
    el.dataset.format = "text";
    message.textContent = text.length ? text : "(empty message)";
  } else {
    format.textContent = "hex";
    el.dataset.format = "hex";
    message.textContent = formatHex(request.message);
    message.classList.add("hex");
  }
  el.querySelector(".size").textContent = request.message.length + (request.message.length === 1 ? " byte" : " bytes");
  // Who asks and why, from daemons that send them.
  for (const [cls, value] of [[".request-label", request.label], [".request-requester", request.requester]]) {
    const field = el.querySelector(cls);
    field.hidden = value === null;
    field.querySelector(".value").textContent = value || "";
  }
  const approve = el.querySelector(".approve");
  const reject = el.querySelector(".reject");
  approve.id = "approve-" + id;
  reject.id = "reject-" + id;
  const card = { request, el, expiredAt: null };
  approve.addEventListener("click", () => {
    setBusy(card);
    decide(true);
    removeCard(id);
  });
  reject.addEventListener("click", () => {
    setBusy(card);
    decide(new Reject("rejected by the user"));
    removeCard(id);
  });
  state.cards.set(id, card);
  ui.requests.append(el);
  updateCountdown(card, Date.now());
  updateRequestCount();
  return card;
}

function setBusy(card) {
  card.el.querySelector(".approve").disabled = true;
  card.el.querySelector(".reject").disabled = true;
}

function removeCard(id) {
  const card = state.cards.get(id);
  if (!card) return;
  state.cards.delete(id);
  card.el.remove();
  updateRequestCount();
}

function dropAllCards() {
  for (const id of Array.from(state.cards.keys())) removeCard(id);
}

function updateRequestCount() {
  ui.requestCount.textContent = String(state.cards.size);
  ui.noRequests.hidden = state.cards.size > 0;
}

function updateCountdown(card, now) {
  const el = card.el.querySelector(".countdown");
  const left = card.request.expiresIn();
  if (left === null) {
    el.textContent = "no expiry given";
    return;
  }
  if (left > 0) {
    el.textContent = "expires in " + (left / 1000).toFixed(1) + " s";
    el.classList.toggle("soon", left < 10000);
    return;
  }
  if (card.expiredAt === null) {
    card.expiredAt = now;
    el.textContent = "expired";
    card.el.classList.add("expired");
    setBusy(card);
  } else if (now - card.expiredAt > EXPIRED_GRACE_MS) {
    log("warn", "request " + card.request.requestId + " expired");
    removeCard(card.request.requestId);
  }
}

function tick() {
  const now = Date.now();
  for (const card of Array.from(state.cards.values())) updateCountdown(card, now);
}

// ---------------------------------------------------------------- wiring

ui.generate.addEventListener("click", generateKey);
ui.importKey.addEventListener("click", importFromInput);
ui.seedInput.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter") importFromInput();
});
ui.copyPublic.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(state.key.publicKeyB64);
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
  if (state.signer) state.signer.close();
});

setInterval(tick, 250);
updateControls();
updateRequestCount();
document.body.dataset.ready = "true";
if (cryptoAvailable()) log("info", "ready: generate or import a key, then connect");
