import { Signer, loadKey } from "@wssign/client";

const key = await loadKey("signer.key");               // PKCS#8 PEM or hex seed, mode 0600
const signer = new Signer("ws://127.0.0.1:8080/v1/ws", key, {
  policy: (req) => new TextDecoder().decode(req.message).startsWith("invoice:"), // true signs
}).start();
signer.addEventListener("state", (ev) => console.log("signer:", ev.detail.state));
process.on("SIGTERM", () => signer.close());
await signer.closed;                                   // reconnects with backoff until closed
