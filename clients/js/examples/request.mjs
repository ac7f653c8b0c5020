import { Client, NotConnectedError, RejectedError } from "@wssign/client";

const client = new Client("http://127.0.0.1:8081", { token: process.env.WSSIGND_TOKEN });
try {
  const sig = await client.sign("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "invoice:42", { timeoutMs: 30000 });
  console.log(sig.signatureB64);                       // already verified against the public key
} catch (e) {
  if (e instanceof RejectedError) console.log("declined:", e.detail);
  else if (e instanceof NotConnectedError) console.log("the signer is not connected");
  else throw e;
}
