// Compiled (not run) by package.test.mjs: the declarations describe the API
// the tests and examples use, under --strict.
import {
  ApiError, Client, IntroductionRefused, Key, Reject, RejectedError, SignRequest, Signer, errorFor,
  protocol,
} from "@wssign/client";

async function use(): Promise<void> {
  const key: Key = await Key.fromSeed(new Uint8Array(32), { extractable: false, backend: "webcrypto" });
  const policy = async (req: SignRequest): Promise<boolean | Reject> => {
    req.signal.addEventListener("abort", () => console.log(req.cancelReason));
    if (req.label !== null) console.log(req.label.length);
    return req.message.length < 100 ? true : new Reject("too long");
  };
  const signer = new Signer("ws://127.0.0.1:8080/v1/ws", key, { policy, backoffMaxMs: 1000 }).start();
  signer.addEventListener("request", (ev) => console.log(ev.detail.request.requestId));
  signer.addEventListener("state", (ev) => console.log(ev.detail.state));
  const session: string = await signer.waitIntroduced({ timeoutMs: 100 });
  const pending: Map<string, SignRequest> = signer.pending;
  const client = new Client("http://127.0.0.1:8081", { token: "t" });
  try {
    const sig = await client.sign(key.publicKey, "m", { timeoutMs: 5, label: "l", waitMs: 0 });
    const b64: string = sig.signatureB64;
    console.log(session, pending.size, b64, protocol.b64encode(sig.signature));
  } catch (e) {
    if (e instanceof RejectedError) console.log(e.requestId, e.status, e.retryable);
    if (e instanceof IntroductionRefused) console.log(e.closeCode);
  }
  const err: ApiError = errorFor(404, "not_connected");
  console.log(err.code, (await client.keyStatus(key.publicKeyB64)).connectedAt);
  await signer.close();
  await signer.closed;
}
void use;
