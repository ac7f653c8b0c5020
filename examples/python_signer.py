#!/usr/bin/python3
"""A wssign.v1 signer in Python on the wssign library (clients/python): holds
an Ed25519 key, introduces itself to a wssignd daemon, reconnects with
backoff, and signs the requests its policy allows.

    /usr/bin/python3 examples/python_signer.py --url ws://127.0.0.1:8080/v1/ws \
        [--key FILE | --seed HEX] [--allow-prefix invoice:] [--ca FILE]

Needs Debian's python3-websockets and python3-nacl. Without --allow-prefix
it signs every message (except introduction transcripts, which the library
always refuses); a real signer applies a policy.
"""
import argparse
import asyncio
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients",
                                "python", "src"))
import wssign  # noqa: E402


async def serve(args: argparse.Namespace) -> None:
    if args.key:
        key = wssign.load_key(args.key)
    elif args.seed:
        key = wssign.Key.from_seed(bytes.fromhex(args.seed))
    else:
        key = wssign.Key.generate()
    prefixes = [p.encode() for p in args.allow_prefix]

    def policy(req: wssign.SignRequest) -> bool:
        ok = not prefixes or req.message.startswith(tuple(prefixes))
        print(f"{'signed' if ok else 'rejected'} request_id={req.request_id} "
              f"bytes={len(req.message)}", flush=True)
        return ok

    async with wssign.Signer(args.url, key, policy=policy, cafile=args.ca) as signer:
        print(f"introduced public_key={key.public_key_b64} "
              f"session={await signer.wait_introduced()}", flush=True)
        await signer.wait_closed()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="ws://127.0.0.1:8080/v1/ws")
    ap.add_argument("--key", help="key file: PKCS#8 PEM or a hex seed, mode 0600")
    ap.add_argument("--seed", help="32-byte Ed25519 seed in hex (default: a new random key)")
    ap.add_argument("--allow-prefix", action="append", default=[],
                    help="sign only messages that start with this text (repeatable)")
    ap.add_argument("--ca", help="CA certificate file for wss:// URLs")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    except wssign.WssignError as e:
        sys.exit(f"python_signer: {e}")


if __name__ == "__main__":
    main()
