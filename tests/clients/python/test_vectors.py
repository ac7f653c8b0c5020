#!/usr/bin/python3
"""The worked vectors of docs/PROTOCOL.md §8 through the Python library:
public key from seed, nonce, transcript, proof, the sign-hello signature and
the sign_response frame. Also the host a proof names for various URLs."""

import base64
import json

from common import protocol_vectors, wssign
from wssd_test import check, check_eq, run_tests
from wssign import protocol


def test_introduction_and_sign_vectors():
    vectors, frames = protocol_vectors()
    check(len(vectors) >= 3, "vectors found: %d" % len(vectors))
    seen = set()
    for v in vectors:
        key = wssign.Key.from_seed(bytes.fromhex(v["seed"]))
        check_eq(key.public_key_b64, v["public_key"], v["name"] + " public_key")
        if "nonce" in v:
            check_eq(protocol.b64encode(bytes.fromhex(v["nonce_bytes"])), v["nonce"],
                     v["name"] + " nonce")
            transcript = protocol.introduction_transcript(v["host"], v["nonce"])
            check_eq(transcript.hex(), v["transcript_hex"], v["name"] + " transcript")
            check_eq(protocol.b64encode(key.sign(transcript)), v["proof"], v["name"] + " proof")
            frame = json.loads(protocol.introduction_frame(key.public_key, v["host"],
                                                           key.sign(transcript)))
            check_eq(frame, {"type": "introduction", "public_key": v["public_key"],
                             "host": v["host"], "proof": v["proof"]}, "introduction frame")
            seen.add("introduction")
        else:
            message = protocol.b64decode(v["message"])
            check_eq(protocol.b64encode(key.sign(message)), v["signature"],
                     v["name"] + " signature")
            seen.add("sign")
    check_eq(seen, {"introduction", "sign"}, "kinds of vectors")
    request, response = (json.loads(f) for f in frames)
    sig = protocol.b64decode(response["signature"])
    mine = protocol.response_frame(request["request_id"], request["message"], sig)
    check_eq(json.loads(mine), response, "sign_response frame")


def test_introduction_host():
    for url, host in (("wss://Signer.Example.com:8443/v1/ws", "signer.example.com"),
                      ("ws://127.0.0.1:8080/v1/ws", "127.0.0.1"),
                      ("ws://[::1]:8080/v1/ws", "::1"),
                      ("wss://localhost/v1/ws", "localhost")):
        check_eq(protocol.introduction_host(url), host, url)


def test_strict_base64():
    for bad in ("aGVsbG8", "aGVs bG8=", "a-_=", "aGVsbG8=\n", 5, None):
        try:
            protocol.b64decode(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (bad,))
    check_eq(protocol.b64decode("aGVsbG8="), b"hello", "decode")
    check_eq(protocol.b64url_nopad(base64.b64decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")),
             "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "base64url")


if __name__ == "__main__":
    run_tests(globals())
