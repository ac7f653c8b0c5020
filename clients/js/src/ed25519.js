// Ed25519 for the library: WebCrypto where the platform has it (Node 20,
// Chromium 137+, Firefox 129+, Safari 17+), otherwise @noble/ed25519,
// loaded only then. Keys made here are Key objects (key.js).

let webCryptoProbe = null;
let noble = null;

/** True when globalThis.crypto.subtle implements Ed25519 (probed once). */
export function hasWebCryptoEd25519() {
  if (!webCryptoProbe) {
    const subtle = globalThis.crypto?.subtle;
    webCryptoProbe = !subtle
      ? Promise.resolve(false)
      : subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]).then(() => true, () => false);
  }
  return webCryptoProbe;
}

/** The @noble/ed25519 module (a dependency of this package; in a browser, map it with an import map). */
export async function loadNoble() {
  if (!noble) {
    noble = import("@noble/ed25519").catch((e) => {
      noble = null;
      throw new Error("this platform's WebCrypto has no Ed25519 and @noble/ed25519 cannot be loaded: " + e.message);
    });
  }
  return noble;
}

/** Which implementation to use: "webcrypto" or "noble"; `want` forces one. */
export async function backendFor(want) {
  if (want === "webcrypto" || want === "noble") return want;
  if (want) throw new TypeError(`unknown Ed25519 backend ${want}`);
  return (await hasWebCryptoEd25519()) ? "webcrypto" : "noble";
}

/** Verifies an Ed25519 signature; resolves true or false. */
export async function verify(publicKey, message, signature) {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  if (await hasWebCryptoEd25519()) {
    const subtle = globalThis.crypto.subtle;
    try {
      const key = await subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
      return await subtle.verify({ name: "Ed25519" }, key, signature, message);
    } catch (e) {
      return false;
    }
  }
  const ed = await loadNoble();
  try {
    return await ed.verifyAsync(signature, message, publicKey);
  } catch (e) {
    return false;
  }
}
