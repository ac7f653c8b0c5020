#!/usr/bin/python3
"""
Hostile application protocol and cryptography (SECURITY-NOTES §4.3):

  T-P1  JSON parser abuse: duplicate keys, deep nesting, \\u0000, 1e999,
        huge integers, trailing garbage, non-objects, unknown types,
        missing / mistyped / extra fields, over-long values: each refused
        with the error code docs/PROTOCOL.md §4 names, the connection
        stays; the 4th refused frame (limits.max_protocol_errors = 3) is
        answered and then closed with 1008.
  T-P2  encodings: signatures of 0/63/65/96 bytes, base64 without padding,
        URL-safe, with whitespace or non-zero padding bits, keys of 31/33
        bytes: bad_field before libsodium; a pending request is untouched.
  T-R1  replay of an introduction on another connection (bad_proof), on the
        same one (already_introduced), after the challenge died.
  T-R2  proofs for another host: bad_host when the host is not a server
        name, bad_proof when it is one but the proof names another.
  T-R3  sign_response with unknown, expired, duplicate or other-connection
        request ids: unknown_request and no effect; swapped answers:
        invalid_signature; the requester gets exactly one outcome.
  T-K1  key substitution: proof by another key, copied proof, small/mixed
        order and non-canonical keys (speccheck keys, pk + (0,-1)): bad_key;
        the same key on two connections: the newer wins (4001 superseded).
  T-D1  domain separation: POST /v1/sign of bytes starting with
        "wssign-introduction-v1" -> 400; a signature made for a sign
        request is no introduction proof.
  T-D2  the signer signs other bytes and echoes them -> 502
        invalid_signature.
  T-X1  pending-table exhaustion: requests.max_pending_per_key and
        requests.max_pending -> 503 overloaded; expiry frees the entries.

After each group a fresh honest signer completes a sign round trip.
"""

import asyncio
import json
import os
import sys
import time
import uuid

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nacl.bindings
import nacl.signing

from hostile_util import (CaseRunner, aroundtrip, asign, error_code, log_count, metric)
from wssd_test import (INTRO_DOMAIN, Daemon, TestFailure, b64, b64url, check, check_eq,
                       run_tests, unb64, verify)

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(os.path.dirname(HERE), "vectors")
LENIENT = {"limits": {"max_protocol_errors": 1000}}
P = 2 ** 255 - 19


async def expect_refused(d, build, code, close_code=1008, seed=None, host=None):
    """New connection; sends build(signer) as the introduction; expects one
    error frame `code`, then close `close_code`."""
    s = d.signer(seed=seed, host=host)
    await s.connect()
    await s.read_challenge()
    await s.send_json(build(s))
    frames, cc = await s.recv_until_closed(5.0)
    check(len(frames) >= 1, "no error frame before the close (close %r)" % cc)
    f = frames[0]
    if f.get("type") != "error" or f.get("code") != code:
        raise TestFailure("expected error %r, got %r" % (code, f))
    check_eq(len(frames), 1, "frames before the close (%r)" % frames)
    check_eq(cc, close_code, "close code")
    return s


async def expect_error_open(s, text, code):
    """Sends text; expects error `code` and the connection still open."""
    await s.send_text(text)
    f = await s.expect_error(code)
    await asyncio.sleep(0.02)
    check(s.is_open, "connection closed after %s (close %r)" % (code, s.close_code))
    return f


async def pending_of(d, pk):
    status, body = await d.ahttp("GET", "/v1/keys/" + b64url(pk))
    check_eq(status, 200, "GET /v1/keys (%r)" % (body,))
    return body["pending"]


# ---------------------------------------------------------------------------
# T-P1

async def test_json_parser_abuse():
    cases = CaseRunner("T-P1 JSON")
    rid = str(uuid.uuid4())
    async with Daemon(LENIENT) as d:
        async with d.signer(policy="silent") as s:
            deep_arr = "[" * 30000 + "]" * 30000
            deep_obj = '{"a":' * 9000 + "1" + "}" * 9000
            texts = [
                ("duplicate type key", '{"type":"introduction","type":"sign_response"}',
                 "bad_json"),
                ("duplicate request_id",
                 '{"type":"sign_reject","request_id":"%s","request_id":"%s"}' % (rid, rid),
                 "bad_json"),
                ("array nested 30000 deep", deep_arr, "bad_json"),
                ("object nested 9000 deep", deep_obj, "bad_json"),
                ("\\u0000 in a string",
                 '{"type":"sign_reject","request_id":"%s","reason":"a\\u0000b"}' % rid,
                 "bad_json"),
                ("1e999", '{"type":"sign_reject","request_id":"%s","x":1e999}' % rid,
                 "bad_json"),
                ("integer above 2^63",
                 '{"type":"sign_reject","request_id":"%s","x":99999999999999999999}' % rid,
                 "bad_json"),
                ("NaN", '{"type":"sign_reject","request_id":"%s","x":NaN}' % rid, "bad_json"),
                ("trailing garbage", '{"type":"sign_reject","request_id":"%s"} x' % rid,
                 "bad_json"),
                ("two objects", '{"type":"sign_reject"}{"type":"sign_reject"}', "bad_json"),
                ("comment", '{"type":"sign_reject"} // comment', "bad_json"),
                ("single quotes", "{'type':'sign_reject'}", "bad_json"),
                ("unterminated string", '{"type":"sign_reject', "bad_json"),
                ("top-level array", '["sign_reject"]', "bad_json"),
                ("top-level string", '"sign_reject"', "bad_json"),
                ("top-level number", "42", "bad_json"),
                ("top-level null", "null", "bad_json"),
                ("top-level true", "true", "bad_json"),
                ("empty text", "", "bad_json"),
                ("unknown type", json.dumps({"type": "hello"}), "unknown_type"),
                ("server-side type challenge", json.dumps({"type": "challenge", "nonce": "x"}),
                 "unknown_type"),
                ("empty type", json.dumps({"type": ""}), "unknown_type"),
                ("type in another letter case", json.dumps({"type": "Sign_Reject",
                                                            "request_id": rid}),
                 "unknown_type"),
                ("sign_response without request_id",
                 json.dumps({"type": "sign_response", "message": b64(b"x"),
                             "signature": b64(bytes(64))}), "missing_field"),
                ("sign_reject without request_id", json.dumps({"type": "sign_reject"}),
                 "missing_field"),
                ("request_id a number", json.dumps({"type": "sign_reject", "request_id": 7}),
                 "bad_field"),
                ("request_id null", json.dumps({"type": "sign_reject", "request_id": None}),
                 "bad_field"),
                ("signature an array",
                 json.dumps({"type": "sign_response", "request_id": rid, "message": b64(b"x"),
                             "signature": [1, 2]}), "bad_field"),
                ("reason a number", json.dumps({"type": "sign_reject", "request_id": rid,
                                                "reason": 5}), "bad_field"),
                ("reason of 257 bytes", json.dumps({"type": "sign_reject", "request_id": rid,
                                                    "reason": "r" * 257}), "bad_field"),
                ("extra field", json.dumps({"type": "sign_reject", "request_id": rid,
                                            "extra": 1}), "bad_field"),
                ("reason of 256 bytes is fine (unknown id)",
                 json.dumps({"type": "sign_reject", "request_id": rid, "reason": "r" * 256}),
                 "unknown_request"),
                ("second introduction", json.dumps(s.introduction()), "already_introduced"),
            ]
            for name, text, code in texts:
                with cases(name):
                    await expect_error_open(s, text, code)
        with cases("before the introduction: sign_response -> not_introduced"):
            s = d.signer()
            await s.connect()
            await s.read_challenge()
            await s.send_json({"type": "sign_response", "request_id": rid,
                               "message": b64(b"x"), "signature": b64(bytes(64))})
            f = await s.recv_json()
            check_eq((f.get("type"), f.get("code")), ("error", "not_introduced"), "answer")
            await s.close()
        for name, drop, code in (("introduction without public_key", "public_key",
                                  "missing_field"),
                                 ("introduction without host", "host", "missing_field")):
            with cases(name):
                s = d.signer()
                await s.connect()
                await s.read_challenge()
                await s.send_json(s.introduction(**{drop: None}))
                f = await s.recv_json()
                check_eq((f.get("type"), f.get("code")), ("error", code), "answer (%r)" % f)
                await s.close()
        with cases("round trip"):
            await aroundtrip(d)

    async with Daemon() as d:
        with cases("error cap: 3 refusals answered, the 4th answered then close 1008"):
            before = metric(d, "wssignd_protocol_errors_total")
            s = d.signer()
            await s.start()
            for text, code in (("not json", "bad_json"), ("{}", "missing_field"),
                               (json.dumps({"type": "nope"}), "unknown_type")):
                await s.send_text(text)
                await s.expect_error(code)
            check(s.is_open, "closed after 3 refused frames")
            await s.send_text("[]")
            await s.expect_error("bad_json")
            check_eq(await s.wait_closed(), 1008, "close after the 4th refused frame")
        with cases("error cap visible in metrics and log"):
            check(metric(d, "wssignd_protocol_errors_total") >= before + 4,
                  "wssignd_protocol_errors_total did not grow by 4")
            check(log_count(d, r"event=protocol_errors") >= 1, "no event=protocol_errors line")
        with cases("round trip"):
            await aroundtrip(d)
    cases.finish()


# ---------------------------------------------------------------------------
# T-P2

def noncanonical_b64(data: bytes) -> str:
    """Standard base64 of data with non-zero padding bits (len % 3 == 1)."""
    check_eq(len(data) % 3, 1, "length for a non-canonical encoding")
    s = b64(data)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(s[-3])
    return s[:-3] + alphabet[last | 0x0F] + "=="


async def test_encodings():
    cases = CaseRunner("T-P2 encodings")
    async with Daemon(LENIENT) as d:
        async with d.signer(policy="silent") as s:
            msg = b"pending during the encoding cases!"   # 34 bytes: padded base64
            task = asyncio.ensure_future(asign(d, s.pk, msg, timeout_ms=30000))
            req = await s.wait_request(0)
            rid = req["request_id"]
            sig = s.sk.sign(msg).signature

            def resp(**kw):
                f = {"type": "sign_response", "request_id": rid, "message": req["message"],
                     "signature": b64(sig)}
                f.update(kw)
                return json.dumps(f)

            plus_slash = bytes([0xfb, 0xff, 0xbf] * 21 + [0xfb])   # "+/+/..." in base64
            bad = [
                ("signature of 0 bytes", resp(signature="")),
                ("signature of 63 bytes", resp(signature=b64(sig[:63]))),
                ("signature of 65 bytes", resp(signature=b64(sig + b"\0"))),
                ("signature of 96 bytes", resp(signature=b64(sig + bytes(32)))),
                ("signature of 32 bytes", resp(signature=b64(sig[:32]))),
                ("signature without padding", resp(signature=b64(sig).rstrip("="))),
                ("signature in URL-safe base64",
                 resp(signature=b64(plus_slash).replace("+", "-").replace("/", "_"))),
                ("signature with a space inside", resp(signature=b64(sig)[:40] + " " +
                                                       b64(sig)[40:])),
                ("signature with a newline inside", resp(signature=b64(sig)[:40] + "\n" +
                                                         b64(sig)[40:])),
                ("signature with a trailing newline", resp(signature=b64(sig) + "\n")),
                ("signature with non-zero padding bits", resp(signature=noncanonical_b64(sig))),
                ("signature with extra padding", resp(signature=b64(sig) + "==")),
                ("signature not base64", resp(signature="*" * 88)),
                ("message without padding", resp(message=req["message"].rstrip("=") or "A")),
                ("message with a space", resp(message=" " + req["message"])),
            ]
            for name, text in bad:
                with cases(name):
                    await expect_error_open(s, text, "bad_field")
            with cases("the pending request was untouched"):
                check(not task.done(), "the request ended: %r" % (task.result()
                                                                  if task.done() else None,))
                check_eq(await pending_of(d, s.pk), 1, "pending requests")
                await s.send_text(resp())
                status, body = await task
                check_eq(status, 200, "the request after the refusals (%r)" % (body,))
                check_eq(unb64(body["signature"]), sig, "signature")
        for name, key in (("public key of 31 bytes", os.urandom(31)),
                          ("public key of 33 bytes", os.urandom(33)),
                          ("public key without padding", None)):
            with cases(name):
                s = d.signer()
                await s.connect()
                await s.read_challenge()
                pk = b64(key) if key is not None else b64(s.pk).rstrip("=")
                await s.send_json(s.introduction(public_key=pk))
                f = await s.recv_json()
                check_eq((f.get("type"), f.get("code")), ("error", "bad_field"), "answer")
                await s.introduce()         # the same connection can still introduce
                await s.close()
        with cases("round trip"):
            await aroundtrip(d)
    cases.finish()


# ---------------------------------------------------------------------------
# T-R1, T-R2

async def test_introduction_replay_and_host():
    cases = CaseRunner("T-R1/T-R2 introduction")
    async with Daemon(LENIENT) as d:
        seed = os.urandom(32)
        a = d.signer(seed=seed)
        await a.connect()
        await a.read_challenge()
        captured = a.introduction()
        await a.introduce(captured)
        with cases("replay on another connection -> bad_proof"):
            await expect_refused(d, lambda s: captured, "bad_proof")
        with cases("replay on the same connection -> already_introduced"):
            await a.send_json(captured)
            await a.expect_error("already_introduced")
            check(a.is_open, "first connection closed")
        await a.close()
        with cases("replay after the first connection ended -> bad_proof"):
            await expect_refused(d, lambda s: captured, "bad_proof")
        with cases("proof for evil.example -> bad_host"):
            await expect_refused(d, lambda s: s.introduction(), "bad_host", host="evil.example")
        with cases("host with a port -> bad_host"):
            await expect_refused(d, lambda s: s.introduction(), "bad_host",
                                 host="127.0.0.1:%d" % d.port)
        with cases("host in upper case -> bad_host"):
            await expect_refused(d, lambda s: s.introduction(), "bad_host", host="LOCALHOST")
        with cases("host with a trailing dot -> bad_host"):
            await expect_refused(d, lambda s: s.introduction(), "bad_host", host="localhost.")
        with cases("no proof while proofs are required -> missing_proof"):
            await expect_refused(d, lambda s: s.introduction(proof=None), "missing_proof")
        with cases("proof null -> bad_field, connection stays"):
            s = d.signer()
            await s.connect()
            await s.read_challenge()
            await s.send_json(s.introduction(proof=None) | {"proof": None})
            f = await s.recv_json()
            check_eq((f.get("type"), f.get("code")), ("error", "bad_field"), "answer (%r)" % f)
            await s.introduce()
            await s.close()
        with cases("proof signed for localhost, host claims 127.0.0.1 -> bad_proof"):
            await expect_refused(
                d, lambda s: s.introduction(proof=b64(s.proof(s.challenge["nonce"],
                                                              host="localhost"))),
                "bad_proof")
        with cases("round trip"):
            await aroundtrip(d)

    async with Daemon({"introduction": {"timeout_ms": 1000}}) as d:
        with cases("silent connection -> introduction_timeout, close 4002 (T-S3)"):
            s = d.signer()
            await s.connect()
            await s.read_challenge()
            dead = s.introduction()
            t0 = time.monotonic()
            frames, cc = await s.recv_until_closed(8.0)
            check_eq([(f.get("type"), f.get("code")) for f in frames],
                     [("error", "introduction_timeout")], "frames before the close")
            check_eq(cc, 4002, "close code")
            check(0.8 <= time.monotonic() - t0 <= 6.0, "closed after %.1f s"
                  % (time.monotonic() - t0))
        with cases("proof over the dead challenge -> bad_proof"):
            await expect_refused(d, lambda s: dead, "bad_proof")
        with cases("round trip"):
            await aroundtrip(d)

    async with Daemon({"server_names": ["signer.example", "other.example"]}) as d:
        with cases("proof for other.example, host claims signer.example -> bad_proof"):
            await expect_refused(
                d, lambda s: s.introduction(proof=b64(s.proof(s.challenge["nonce"],
                                                              host="other.example"))),
                "bad_proof", host="signer.example")
        with cases("host 127.0.0.1 not among server_names -> bad_host"):
            await expect_refused(d, lambda s: s.introduction(), "bad_host", host="127.0.0.1")
        with cases("round trip with a configured name"):
            async with d.signer(host="signer.example") as s:
                status, body = await asign(d, s.pk, b"named", timeout_ms=10000)
                check_eq(status, 200, "sign (%r)" % (body,))
    cases.finish()


# ---------------------------------------------------------------------------
# T-R3

async def test_misrouted_answers():
    cases = CaseRunner("T-R3 answers")
    async with Daemon(LENIENT) as d:
        async with d.signer(policy="silent") as a, d.signer(policy="silent") as b:
            with cases("unknown request id -> unknown_request, logged"):
                rid = str(uuid.uuid4())
                f = await expect_error_open(a, json.dumps(a.response(
                    {"request_id": rid, "message": b64(b"x")})), "unknown_request")
                if "request_id" in f:
                    check_eq(f["request_id"], rid, "error.request_id")
                check(log_count(d, r"event=unknown_answer request_id=%s" % rid) == 1,
                      "no event=unknown_answer line")

            with cases("expired request id -> unknown_request, outcome 504 only"):
                status, body = await asign(d, a.pk, b"expires", timeout_ms=300)
                check_eq((status, error_code(body)), (504, "timeout"), "outcome")
                req = await a.wait_request(0)
                await a.expect_frame("cancel", request_id=req["request_id"])
                await expect_error_open(a, json.dumps(a.response(req)), "unknown_request")

            with cases("duplicate answer -> unknown_request, one 200"):
                task = asyncio.ensure_future(asign(d, a.pk, b"answered twice", 20000))
                req = await a.wait_request(1)
                await a.send_json(a.response(req))
                status, body = await task
                check_eq(status, 200, "first answer (%r)" % (body,))
                await expect_error_open(a, json.dumps(a.response(req)), "unknown_request")
                await expect_error_open(a, json.dumps(a.rejection(req)), "unknown_request")

            with cases("answer from another connection -> unknown_request, no effect"):
                task = asyncio.ensure_future(asign(d, a.pk, b"for a only", 20000))
                req = await a.wait_request(2)
                await expect_error_open(b, json.dumps(b.response(req)), "unknown_request")
                await expect_error_open(b, json.dumps(b.rejection(req)), "unknown_request")
                await asyncio.sleep(0.1)
                check(not task.done(), "request ended by another connection's answer")
                await a.send_json(a.response(req))
                status, body = await task
                check_eq(status, 200, "a's own answer (%r)" % (body,))
                check(verify(a.pk, b"for a only", unb64(body["signature"])), "signature")

            with cases("answer for A sent as the answer to B -> invalid_signature for B"):
                t1 = asyncio.ensure_future(asign(d, a.pk, b"request one", 20000))
                r1 = await a.wait_request(3)
                t2 = asyncio.ensure_future(asign(d, a.pk, b"request two", 20000))
                r2 = await a.wait_request(4)
                swapped = a.response(r1)
                swapped["request_id"] = r2["request_id"]
                await a.send_json(swapped)
                await a.expect_error("invalid_signature")
                status, body = await t2
                check_eq((status, error_code(body)), (502, "invalid_signature"), "request two")
                check(not t1.done(), "request one ended too")
                await a.send_json(a.response(r1))
                status, body = await t1
                check_eq(status, 200, "request one (%r)" % (body,))

            with cases("A's signature with B's echoed message -> invalid_signature"):
                t1 = asyncio.ensure_future(asign(d, a.pk, b"request three", 20000))
                r1 = await a.wait_request(5)
                frame = a.response(r1, signature=a.sk.sign(b"something else").signature)
                await a.send_json(frame)
                await a.expect_error("invalid_signature")
                status, body = await t1
                check_eq((status, error_code(body)), (502, "invalid_signature"), "outcome")
            with cases("nothing pending left"):
                check_eq(await pending_of(d, a.pk), 0, "pending for a")
                check_eq(await pending_of(d, b.pk), 0, "pending for b")
        with cases("round trip"):
            await aroundtrip(d)
    cases.finish()


# ---------------------------------------------------------------------------
# T-K1

def load_speccheck():
    with open(os.path.join(VECTORS, "ed25519_speccheck_cases.json")) as f:
        return json.load(f)


async def test_key_substitution():
    cases = CaseRunner("T-K1 keys")
    order2 = (P - 1).to_bytes(32, "little")          # (0, -1), a point of order 2
    async with Daemon() as d:
        victim = nacl.signing.SigningKey(os.urandom(32))
        vpk = bytes(victim.verify_key)
        with cases("victim's key, proof by another key -> bad_proof"):
            await expect_refused(d, lambda s: s.introduction(public_key=b64(vpk)),
                                 "bad_proof")
        with cases("victim's key, proof copied from the victim's connection -> bad_proof"):
            owner = d.signer(seed=bytes(victim))
            await owner.connect()
            await owner.read_challenge()
            copied = owner.introduction()
            await owner.introduce(copied)
            await expect_refused(d, lambda s: dict(copied), "bad_proof")
            check(owner.is_open, "the owner was disturbed")
            await owner.close()
        for i, c in enumerate(load_speccheck()):
            pk = bytes.fromhex(c["pub_key"])
            valid = nacl.bindings.crypto_core_ed25519_is_valid_point(pk)
            want = "bad_proof" if valid else "bad_key"
            with cases("speccheck case %d key -> %s" % (i, want)):
                await expect_refused(d, lambda s, pk=pk: s.introduction(
                    public_key=b64(pk), proof=b64(os.urandom(64))), want)
        with cases("pk + (0,-1) (mixed order, CVE-2025-69277) -> bad_key"):
            s0 = nacl.signing.SigningKey(os.urandom(32))
            mixed = nacl.bindings.crypto_core_ed25519_add(bytes(s0.verify_key), order2)
            check(not nacl.bindings.crypto_core_ed25519_is_valid_point(mixed),
                  "libsodium here accepts pk + (0,-1)")
            await expect_refused(d, lambda s: s.introduction(public_key=b64(mixed),
                                                             proof=b64(os.urandom(64))),
                                 "bad_key")
        with cases("identity with the sign bit set (non-canonical) -> bad_key"):
            key = bytes([1] + [0] * 30 + [0x80])
            await expect_refused(d, lambda s: s.introduction(public_key=b64(key),
                                                             proof=b64(os.urandom(64))),
                                 "bad_key")
        with cases("y = p (non-canonical zero) -> bad_key"):
            key = P.to_bytes(32, "little")
            await expect_refused(d, lambda s: s.introduction(public_key=b64(key),
                                                             proof=b64(os.urandom(64))),
                                 "bad_key")
        with cases("same key on two connections: newer wins, older 4001, request moves"):
            seed = os.urandom(32)
            old = d.signer(seed=seed, policy="silent")
            await old.start()
            task = asyncio.ensure_future(asign(d, old.pk, b"moves to the new one", 20000))
            req = await old.wait_request(0)
            new = d.signer(seed=seed, policy="silent")
            await new.start()
            await old.expect_error("superseded")
            check_eq(await old.wait_closed(), 4001, "old connection close code")
            moved = await new.wait_request(0)
            check_eq(moved["request_id"], req["request_id"], "request id after the move")
            await new.send_json(new.response(moved))
            status, body = await task
            check_eq(status, 200, "moved request (%r)" % (body,))
            await new.close()
        with cases("round trip"):
            await aroundtrip(d)
    cases.finish()


# ---------------------------------------------------------------------------
# T-D1, T-D2

async def test_domain_separation():
    cases = CaseRunner("T-D1/T-D2")
    async with Daemon() as d:
        async with d.signer(policy="silent") as s:
            attacker = d.signer()
            await attacker.connect()
            ch = await attacker.read_challenge()
            live = INTRO_DOMAIN + b"\n127.0.0.1\n" + ch["nonce"].encode()
            for name, msg in (("prefix alone", INTRO_DOMAIN),
                              ("full transcript with a live challenge", live),
                              ("prefix and other bytes", INTRO_DOMAIN + b"\x00anything")):
                with cases("POST %s -> 400" % name):
                    status, body = await asign(d, s.pk, msg, timeout_ms=5000)
                    check_eq((status, error_code(body)), (400, "bad_request"), "outcome")
            with cases("nothing reached the signer"):
                await asyncio.sleep(0.1)
                check_eq(s.requests, [], "sign requests seen by the signer")
            with cases("near miss 'wssign-introduction-v2' is signed normally"):
                s.policy = "sign"
                status, body = await asign(d, s.pk, b"wssign-introduction-v2\nx", 10000)
                check_eq(status, 200, "outcome (%r)" % (body,))
            with cases("signature of a sign request is no introduction proof -> bad_proof"):
                # the oracle signs the transcript without the domain tag
                status, body = await asign(d, s.pk, b"127.0.0.1\n" + ch["nonce"].encode(),
                                           10000)
                check_eq(status, 200, "oracle signature (%r)" % (body,))
                await attacker.send_json({"type": "introduction", "public_key": b64(s.pk),
                                          "host": "127.0.0.1", "proof": body["signature"]})
                frames, cc = await attacker.recv_until_closed(5.0)
                check_eq([(f.get("type"), f.get("code")) for f in frames],
                         [("error", "bad_proof")], "frames")
                check_eq(cc, 1008, "close code")
        for policy, name in (("sign_other", "signs other bytes and echoes them"),
                             ("bad_signature", "flips a signature bit")):
            with cases("T-D2 signer %s -> 502 invalid_signature" % name):
                async with d.signer(policy=policy) as s:
                    status, body = await asign(d, s.pk, b"the daemon's bytes", 10000)
                    check_eq((status, error_code(body)), (502, "invalid_signature"), "outcome")
                    await s.expect_error("invalid_signature")
        with cases("T-D2 signer signs other bytes, echoes ours -> 502"):
            async def other_sig(signer, req):
                await signer.send_json(signer.response(
                    req, signature=signer.sk.sign(b"other bytes").signature))
            async with d.signer(policy=other_sig) as s:
                status, body = await asign(d, s.pk, b"the daemon's bytes", 10000)
                check_eq((status, error_code(body)), (502, "invalid_signature"), "outcome")
        with cases("round trip"):
            await aroundtrip(d)
    cases.finish()


# ---------------------------------------------------------------------------
# T-X1

async def test_pending_exhaustion():
    cases = CaseRunner("T-X1 pending table")
    async with Daemon({"requests": {"max_pending_per_key": 16, "max_pending": 40}}) as d:
        async with d.signer(policy="silent") as s, d.signer(policy="silent") as t:
            held = [asyncio.ensure_future(asign(d, s.pk, b"held %d" % i, 8000))
                    for i in range(16)]
            await s.wait_request(15, timeout=10)
            with cases("17th request for one key -> 503 overloaded"):
                status, body = await asign(d, s.pk, b"one too many", 2000)
                check_eq((status, error_code(body)), (503, "overloaded"), "outcome")
            with cases("100 more for the same key -> all 503, none reaches the signer"):
                res = await asyncio.gather(*[asign(d, s.pk, b"flood %d" % i, 2000)
                                             for i in range(100)])
                check_eq({(st, error_code(b)) for st, b in res}, {(503, "overloaded")},
                         "outcomes")
                check_eq(len(s.requests), 16, "requests at the signer")
            with cases("global cap: other key fills to 40, then 503"):
                more = [asyncio.ensure_future(asign(d, t.pk, b"t %d" % i, 8000))
                        for i in range(16)]
                await t.wait_request(15, timeout=10)
                u = d.signer(policy="silent")
                await u.start()
                rest = [asyncio.ensure_future(asign(d, u.pk, b"u %d" % i, 8000))
                        for i in range(8)]
                await u.wait_request(7, timeout=10)
                status, body = await asign(d, u.pk, b"forty-first", 2000)
                check_eq((status, error_code(body)), (503, "overloaded"), "outcome")
                held += more + rest
            with cases("expiry frees the entries: every held request ends 504"):
                res = await asyncio.gather(*held)
                check_eq({(st, error_code(b)) for st, b in res}, {(504, "timeout")},
                         "held outcomes")
                check_eq(await pending_of(d, s.pk), 0, "pending after expiry")
                await u.close()
            with cases("room again after expiry"):
                s.policy = "sign"
                status, body = await asign(d, s.pk, b"after expiry", 10000)
                check_eq(status, 200, "outcome (%r)" % (body,))
        with cases("round trip"):
            await aroundtrip(d)
    cases.finish()


run_tests(globals())
