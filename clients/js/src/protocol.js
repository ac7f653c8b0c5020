// The wire format of wssign.v1 (docs/PROTOCOL.md): strict base64, the
// introduction transcript, the host a proof names, and the client frames.
// Pure functions, no I/O.

export const PROTOCOL = "wssign.v1";
export const INTRODUCTION_PREFIX = "wssign-introduction-v1";
export const REASON_MAX_BYTES = 256;

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const enc = new TextEncoder();

/** Bytes of a message: a string is UTF-8; a Uint8Array, ArrayBuffer or view is copied. */
export function toBytes(data) {
  if (typeof data === "string") return enc.encode(data);
  if (data instanceof Uint8Array) return new Uint8Array(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  throw new TypeError("expected a string, Uint8Array or ArrayBuffer");
}

/** Standard base64 with padding. */
export function b64encode(bytes) {
  const b = toBytes(bytes);
  let bin = "";
  for (let i = 0; i < b.length; i += 0x8000) bin += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Strict standard base64 with padding; throws for anything else or a wrong length. */
export function b64decode(text, length) {
  if (typeof text !== "string" || !B64_RE.test(text)) throw new TypeError("not standard padded base64");
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (length !== undefined && out.length !== length) throw new TypeError(`expected ${length} bytes, got ${out.length}`);
  return out;
}

/** Base64url without padding (key paths of the control API). */
export function b64urlNoPad(bytes) {
  return b64encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The host a proof names for a signer URL: lowercase, no port, no IPv6 brackets. */
export function introductionHost(url) {
  const host = new URL(url).hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (!host) throw new TypeError(`URL has no host: ${url}`);
  return host;
}

/** "wssign-introduction-v1" LF host LF nonce (the nonce's base64 text as received). */
export function introductionTranscript(host, nonce) {
  return enc.encode(`${INTRODUCTION_PREFIX}\n${host}\n${nonce}`);
}

export function startsWith(bytes, prefix) {
  const p = typeof prefix === "string" ? enc.encode(prefix) : prefix;
  if (bytes.length < p.length) return false;
  for (let i = 0; i < p.length; i++) if (bytes[i] !== p[i]) return false;
  return true;
}

export function introductionFrame(publicKey, host, proof) {
  return JSON.stringify({ type: "introduction", public_key: b64encode(publicKey), host, proof: b64encode(proof) });
}

/** The sign_response frame; messageB64 is echoed as received. */
export function responseFrame(requestId, messageB64, signature) {
  return JSON.stringify({ type: "sign_response", request_id: requestId, message: messageB64, signature: b64encode(signature) });
}

/** The sign_reject frame; the reason is cut to 256 bytes of UTF-8. */
export function rejectFrame(requestId, reason) {
  const frame = { type: "sign_reject", request_id: requestId };
  if (reason) {
    const chars = Array.from(String(reason));
    while (enc.encode(chars.join("")).length > REASON_MAX_BYTES) chars.pop();
    frame.reason = chars.join("");
  }
  return JSON.stringify(frame);
}
