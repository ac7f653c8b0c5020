#!/usr/bin/python3
"""
Crypto vectors through the wire (SECURITY-NOTES T-K2, B1).

We cannot sign with a vector's key, so the test signer introduces the
vector's public key in the legacy mode "introduction": {"proof":
"optional"} (no proof), the test asks the daemon to sign the vector's
message (POST /v1/sign), and the signer answers with the vector's
signature. The daemon must then:

  valid                          -> 200, and the signature returned is the
                                    vector's, byte for byte;
  invalid, 64-byte signature     -> 502 invalid_signature (and an error
                                    frame invalid_signature to the signer);
  invalid, other length          -> error frame bad_field at decode; the
                                    request stays pending (ended here with
                                    sign_reject -> 422).

Keys failing crypto_core_ed25519_is_valid_point are refused at the
introduction with bad_key, proof or no proof (no Wycheproof group key
does; the speccheck keys do: cases 0-5 and 8-11). The two speccheck keys
that are valid points (cases 6, 7: S >= L) are introduced and their
signatures end in invalid_signature. RFC 8032 vectors are signed by an
honest signer holding the RFC seeds: the daemon returns the RFC
signature byte for byte (the empty-message TEST 1 is refused with 400,
empty messages are not signed).

One sample per Wycheproof flag is a case of its own; a final case runs
every Wycheproof vector with a non-empty message.
"""

import asyncio
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nacl.bindings

from hostile_util import CaseRunner, aroundtrip, asign, error_code
from wssd_test import (Daemon, TestFailure, b64, b64url, check, check_eq, run_tests, unb64,
                       verify)

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(os.path.dirname(HERE), "vectors")
OPTIONAL = {"introduction": {"proof": "optional"}}


def load(name):
    with open(os.path.join(VECTORS, name)) as f:
        return json.load(f)


def wycheproof():
    """[(group pk bytes, test dict)] in file order."""
    out = []
    for g in load("wycheproof_ed25519_test.json")["testGroups"]:
        pk = bytes.fromhex(g["publicKey"]["pk"])
        for t in g["tests"]:
            out.append((pk, t))
    return out


def one_per_flag(vectors):
    """For each distinct flag, the first test (lowest tcId) with a non-empty
    message (POST /v1/sign refuses empty messages)."""
    picks = {}
    for pk, t in sorted(vectors, key=lambda v: v[1]["tcId"]):
        for flag in t["flags"]:
            if flag not in picks and t["msg"]:
                picks[flag] = (pk, t)
    return picks


async def introduce_unproved(d, pk):
    """A signer connection claiming pk without a proof; returns (signer,
    answer frame) - the answer is "introduced" or an error."""
    s = d.signer(policy="silent")
    await s.connect()
    await s.read_challenge()
    await s.send_json({"type": "introduction", "public_key": b64(pk), "host": s.host})
    f = await s.recv_json()
    return s, f


async def run_vector(d, pk, msg, sig, valid):
    """One vector through the wire; asserts the outcome named in the doc."""
    s, f = await introduce_unproved(d, pk)
    try:
        check_eq((f.get("type"), f.get("public_key")), ("introduced", b64(pk)),
                 "introduction (%r)" % (f,))
        s.run_loop()
        task = asyncio.ensure_future(asign(d, pk, msg, timeout_ms=15000))
        req = await s.wait_request(0, timeout=10)
        check_eq(unb64(req["message"]), msg, "sign_request.message")
        await s.send_json({"type": "sign_response", "request_id": req["request_id"],
                           "message": req["message"], "signature": b64(sig)})
        if valid:
            status, body = await task
            check_eq(status, 200, "valid vector (%r)" % (body,))
            check_eq(unb64(body["signature"]), sig, "returned signature")
            check_eq(body["public_key"], b64(pk), "returned public_key")
        elif len(sig) != 64:
            e = await s.expect_error("bad_field")
            if "request_id" in e:
                check_eq(e["request_id"], req["request_id"], "error.request_id")
            status, body = await d.ahttp("GET", "/v1/keys/" + b64url(pk))
            check_eq(body.get("pending"), 1, "request still pending after bad_field")
            check(not task.done(), "request ended by a wrong-length signature")
            await s.send_json({"type": "sign_reject", "request_id": req["request_id"],
                               "reason": "test over"})
            status, body = await task
            check_eq((status, error_code(body)), (422, "rejected"), "request after sign_reject")
        else:
            status, body = await task
            check_eq((status, error_code(body)), (502, "invalid_signature"), "invalid vector")
            await s.expect_error("invalid_signature")
    finally:
        await s.close()


async def test_wycheproof_one_per_flag():
    cases = CaseRunner("Wycheproof per flag")
    vectors = wycheproof()
    picks = one_per_flag(vectors)
    check_eq(len(picks), 10, "distinct flags")
    async with Daemon(OPTIONAL) as d:
        for flag in sorted(picks):
            pk, t = picks[flag]
            msg, sig = bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"])
            valid = t["result"] == "valid"
            name = "%s: tcId %d, %s, %d-byte signature" % (flag, t["tcId"], t["result"],
                                                           len(sig))
            with cases(name):
                check_eq(verify(pk, msg, sig) if len(sig) == 64 else False, valid,
                         "PyNaCl agrees with the vector")
                if not nacl.bindings.crypto_core_ed25519_is_valid_point(pk):
                    s, f = await introduce_unproved(d, pk)
                    check_eq((f.get("type"), f.get("code")), ("error", "bad_key"), "answer")
                    await s.close()
                else:
                    await run_vector(d, pk, msg, sig, valid)
        with cases("empty-message vector (tcId 1) -> 400 bad_request"):
            pk, t = next(v for v in vectors if v[1]["tcId"] == 1)
            status, body = await asign(d, pk, b"", timeout_ms=5000)
            check_eq((status, error_code(body)), (400, "bad_request"), "outcome")
        with cases("round trip"):
            await aroundtrip(d)
    cases.finish()


async def test_speccheck_keys_optional_proof():
    cases = CaseRunner("speccheck, proof optional")
    async with Daemon(OPTIONAL) as d:
        for i, c in enumerate(load("ed25519_speccheck_cases.json")):
            pk, msg, sig = (bytes.fromhex(c["pub_key"]), bytes.fromhex(c["message"]),
                            bytes.fromhex(c["signature"]))
            if nacl.bindings.crypto_core_ed25519_is_valid_point(pk):
                with cases("case %d: valid point, signature refused -> 502" % i):
                    await run_vector(d, pk, msg, sig, valid=False)
            else:
                with cases("case %d: key refused at introduction -> bad_key, 1008" % i):
                    s, f = await introduce_unproved(d, pk)
                    check_eq((f.get("type"), f.get("code")), ("error", "bad_key"), "answer")
                    frames, cc = await s.recv_until_closed(5.0)
                    check_eq(cc, 1008, "close code")
        with cases("round trip"):
            await aroundtrip(d)
    cases.finish()


async def test_rfc8032_through_the_daemon():
    cases = CaseRunner("RFC 8032")
    async with Daemon() as d:
        for v in load("rfc8032_ed25519.json")["vectors"]:
            seed, pk = bytes.fromhex(v["secret_key"]), bytes.fromhex(v["public_key"])
            msg, sig = bytes.fromhex(v["message"]), bytes.fromhex(v["signature"])
            if not msg:
                with cases("%s (empty message) -> 400 bad_request" % v["name"]):
                    status, body = await asign(d, pk, msg, timeout_ms=5000)
                    check_eq((status, error_code(body)), (400, "bad_request"), "outcome")
                continue
            with cases("%s -> 200, the RFC signature byte for byte" % v["name"]):
                async with d.signer(seed=seed) as s:
                    check_eq(s.pk, pk, "public key from the RFC seed")
                    status, body = await asign(d, pk, msg, timeout_ms=10000)
                    check_eq(status, 200, "outcome (%r)" % (body,))
                    check_eq(unb64(body["signature"]), sig, "signature")
    cases.finish()


async def test_wycheproof_all_vectors():
    cases = CaseRunner("Wycheproof, every vector")
    vectors = [(pk, t) for pk, t in wycheproof() if t["msg"]]
    async with Daemon(OPTIONAL) as d:
        with cases("%d vectors with a non-empty message agree with 'result'" % len(vectors)):
            bad = []
            for pk, t in vectors:
                try:
                    await run_vector(d, pk, bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]),
                                     t["result"] == "valid")
                except TestFailure as e:
                    bad.append("tcId %d: %s" % (t["tcId"], e))
            check(not bad, "%d disagreements:\n    %s" % (len(bad), "\n    ".join(bad)))
        with cases("round trip"):
            await aroundtrip(d)
    cases.finish()


run_tests(globals())
