import os, wssign

client = wssign.Client("http://127.0.0.1:8081", token=os.environ.get("WSSIGND_TOKEN"))
try:
    sig = client.sign("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", b"invoice:42", timeout=30)
    print(sig.signature_b64)                       # already verified against the public key
except wssign.RejectedError as e:
    print("declined:", e.message)
except wssign.NotConnectedError:
    print("the signer is not connected")
