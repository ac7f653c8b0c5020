// Ed25519 private keys for signers. With WebCrypto the private key is a
// CryptoKey, non-extractable unless asked for: not even this page's own code
// can read it back. With @noble/ed25519 the seed stays in this object.

import { backendFor, loadNoble } from "./ed25519.js";
import { KeyError } from "./errors.js";
import { b64decode, b64encode, toBytes } from "./protocol.js";

const PKCS8_PREFIX = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const KEY_FILE_MAX = 16384;

function b64urlToBytes(s) {
  if (typeof s !== "string" || !/^[A-Za-z0-9_-]*={0,2}$/.test(s)) throw new KeyError("not base64url");
  let t = s.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
  while (t.length % 4) t += "=";
  return b64decode(t);
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function pkcs8(seed) {
  const out = new Uint8Array(PKCS8_PREFIX.length + 32);
  out.set(PKCS8_PREFIX, 0);
  out.set(seed, PKCS8_PREFIX.length);
  return out;
}

export class Key {
  #sign;
  #exportSeed;

  /**
   * Use the static constructors. A custom key (hardware token, remote
   * signer) need not be a Key: any object with `publicKey` (32 bytes) and
   * `sign(bytes)` returning (a promise of) 64 bytes will do.
   */
  constructor(publicKey, sign, { backend, extractable = false, exportSeed = null } = {}) {
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) throw new KeyError("a public key is 32 bytes");
    this.publicKey = publicKey;
    this.publicKeyB64 = b64encode(publicKey);
    this.backend = backend;
    this.extractable = extractable;
    this.#sign = sign;
    this.#exportSeed = exportSeed;
  }

  /** A new random key. Options: extractable (default false), backend ("webcrypto" | "noble"). */
  static async generate({ extractable = false, backend } = {}) {
    if ((await backendFor(backend)) === "webcrypto") {
      const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, extractable, ["sign", "verify"]);
      const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
      return Key.fromCryptoKey(pair.privateKey, raw);
    }
    const seed = crypto.getRandomValues(new Uint8Array(32));
    return Key.fromSeed(seed, { extractable, backend: "noble" });
  }

  /** The key of a 32-byte seed (RFC 8032 secret key). */
  static async fromSeed(seed, { extractable = false, backend } = {}) {
    const s = toBytes(seed);
    if (s.length !== 32) throw new KeyError(`an Ed25519 seed is 32 bytes, got ${s.length}`);
    if ((await backendFor(backend)) === "webcrypto") {
      const der = pkcs8(s);
      // The public key comes from an extractable copy, dropped at once.
      const temp = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
      const publicKey = b64urlToBytes((await crypto.subtle.exportKey("jwk", temp)).x);
      const key = extractable ? temp : await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
      s.fill(0);
      der.fill(0);
      return Key.fromCryptoKey(key, publicKey);
    }
    const ed = await loadNoble();
    const publicKey = await ed.getPublicKeyAsync(s);
    return new Key(publicKey, (data) => ed.signAsync(data, s), {
      backend: "noble",
      extractable,
      exportSeed: extractable ? () => new Uint8Array(s) : null,
    });
  }

  /** A WebCrypto Ed25519 private key and its 32-byte raw public key. */
  static fromCryptoKey(privateKey, publicKey) {
    const sign = async (data) => new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, privateKey, data));
    const exportSeed = privateKey.extractable
      ? async () => new Uint8Array(await crypto.subtle.exportKey("pkcs8", privateKey)).slice(PKCS8_PREFIX.length)
      : null;
    const key = new Key(toBytes(publicKey), sign, { backend: "webcrypto", extractable: privateKey.extractable, exportSeed });
    key.cryptoKey = privateKey;
    return key;
  }

  /** A private-key JWK {"kty":"OKP","crv":"Ed25519","d":..., "x"?}; x, when present, must match d. */
  static async fromJwk(jwk, opts = {}) {
    const j = typeof jwk === "string" ? JSON.parse(jwk) : jwk;
    if (!j || j.kty !== "OKP" || j.crv !== "Ed25519" || typeof j.d !== "string") {
      throw new KeyError('a private-key JWK needs "kty":"OKP", "crv":"Ed25519" and "d"');
    }
    const key = await Key.fromSeed(b64urlToBytes(j.d), opts);
    if (j.x !== undefined && !sameBytes(b64urlToBytes(j.x), key.publicKey)) {
      throw new KeyError('the JWK\'s "x" is not the public key of its "d"');
    }
    return key;
  }

  /** An unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"), as `wssign keygen` and openssl write it. */
  static async fromPem(text, opts = {}) {
    const m = /-----BEGIN PRIVATE KEY-----([\s\S]*?)-----END PRIVATE KEY-----/.exec(text);
    if (!m) throw new KeyError("only an unencrypted PKCS#8 Ed25519 key (BEGIN PRIVATE KEY) is read");
    let der;
    try {
      der = b64decode(m[1].replace(/\s+/g, ""));
    } catch (e) {
      throw new KeyError("the PEM body is not base64");
    }
    if (der.length !== PKCS8_PREFIX.length + 32 || !sameBytes(der.subarray(0, PKCS8_PREFIX.length), PKCS8_PREFIX)) {
      throw new KeyError("not an Ed25519 private key");
    }
    return Key.fromSeed(der.slice(PKCS8_PREFIX.length), opts);
  }

  /** The 64-byte Ed25519 signature of data. */
  async sign(data) {
    return new Uint8Array(await this.#sign(toBytes(data)));
  }

  /** The 32-byte seed; only for a key made with extractable: true. */
  async exportSeed() {
    if (!this.#exportSeed) throw new KeyError("this key is not extractable");
    return this.#exportSeed();
  }
}

/**
 * Node only: reads a key file, PKCS#8 PEM or 64 hex digits of seed. Refuses
 * a file that is not regular, is over 16 KiB, or that group or others may
 * access (mode 0600 or 0400).
 */
export async function loadKey(path, opts = {}) {
  const fs = await import("node:fs/promises");
  const { constants } = await import("node:fs");
  let fh;
  try {
    fh = await fs.open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw new KeyError(`cannot open key file ${path}: ${e.code || e.message}`);
  }
  let text;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new KeyError(`key file ${path} is not a regular file`);
    if (st.mode & 0o077) {
      throw new KeyError(`key file ${path} has mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")}: it must be readable by its owner only (chmod 600 ${path})`);
    }
    if (st.size > KEY_FILE_MAX) throw new KeyError(`key file ${path} is larger than ${KEY_FILE_MAX} bytes`);
    text = (await fh.readFile()).toString("latin1").trim();
  } finally {
    await fh.close();
  }
  if (text.includes("-----BEGIN")) return Key.fromPem(text, opts);
  if (/^[0-9a-fA-F]{64}$/.test(text)) {
    const seed = new Uint8Array(32);
    for (let i = 0; i < 32; i++) seed[i] = parseInt(text.substr(i * 2, 2), 16);
    return Key.fromSeed(seed, opts);
  }
  throw new KeyError(`key file ${path}: neither PKCS#8 PEM nor 64 hex digits of seed`);
}
