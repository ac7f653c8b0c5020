#!/usr/bin/python3
"""A minimal wssign.v1 signer: holds an Ed25519 key, introduces itself to a
wssignd daemon with a host-bound proof, and signs every request it is sent.

    /usr/bin/python3 examples/python_signer.py --url ws://127.0.0.1:8080/v1/ws [--seed HEX]

Needs Debian's python3-websockets and python3-nacl. It signs anything it is
asked to (apart from introduction transcripts); a real signer applies a policy.
"""
import argparse
import asyncio
import base64
import json
import ssl
import sys
from urllib.parse import urlsplit

import nacl.signing
import websockets

INTRO_PREFIX = b"wssign-introduction-v1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def serve(url: str, key: nacl.signing.SigningKey, cafile: str | None) -> None:
    host = urlsplit(url).hostname  # lowercase, no port, no IPv6 brackets
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("wss:") else None
    async with websockets.connect(url, ssl=ctx) as ws:
        challenge = json.loads(await ws.recv())
        transcript = INTRO_PREFIX + b"\n" + host.encode() + b"\n" + challenge["nonce"].encode()
        await ws.send(json.dumps({
            "type": "introduction",
            "public_key": b64(bytes(key.verify_key)),
            "host": host,
            "proof": b64(key.sign(transcript).signature),
        }))
        reply = json.loads(await ws.recv())
        if reply.get("type") != "introduced":
            sys.exit(f"introduction refused: {reply}")
        print(f"introduced public_key={reply['public_key']}", flush=True)
        async for frame in ws:
            msg = json.loads(frame)
            if msg.get("type") != "sign_request":
                print(f"received {msg.get('type')}: {msg}", flush=True)
                continue
            data = base64.b64decode(msg["message"])
            if data.startswith(INTRO_PREFIX):
                await ws.send(json.dumps({"type": "sign_reject", "request_id": msg["request_id"],
                                          "reason": "reserved prefix"}))
                continue
            await ws.send(json.dumps({
                "type": "sign_response",
                "request_id": msg["request_id"],
                "message": msg["message"],
                "signature": b64(key.sign(data).signature),
            }))
            print(f"signed request_id={msg['request_id']} bytes={len(data)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="ws://127.0.0.1:8080/v1/ws")
    ap.add_argument("--seed", help="32-byte Ed25519 seed in hex (default: a new random key)")
    ap.add_argument("--ca", help="CA certificate file for wss:// URLs")
    args = ap.parse_args()
    key = nacl.signing.SigningKey(bytes.fromhex(args.seed)) if args.seed else \
        nacl.signing.SigningKey.generate()
    try:
        asyncio.run(serve(args.url, key, args.ca))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
