#!/usr/bin/python3
"""
The example in-process controller asks its configured key to sign
"<message> #<n>" through wss_send_to_sign() every interval_ms and logs each
outcome; it waits while the key is not connected (it hears of the key's
arrival and departure through key events), and a rejection is an outcome
like any other. GET /example answers with the key's presence and the
controller's counts, through an asynchronous lookup.
"""

import asyncio
import base64
import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nacl.signing
from wssd_test import Daemon, check, check_eq, run_tests, unb64


def example_config(seed, interval_ms=100, message="example ping"):
    pk = bytes(nacl.signing.SigningKey(seed).verify_key)
    return pk, {"controllers": {"example": {"public_key": base64.b64encode(pk).decode(),
                                            "interval_ms": interval_ms, "message": message}}}


async def wait_for_log(d, pattern, count, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = re.findall(pattern, d.log_text())
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_signs_periodically_in_process():
    seed = os.urandom(32)
    pk, cfg = example_config(seed)
    async with Daemon(cfg) as d:
        check(re.search(r"event=controller_started name=example", d.log_text()),
              "example controller started")
        await asyncio.sleep(0.3)  # no key connected: nothing is asked
        check_eq(re.findall(r"event=example_outcome", d.log_text()), [], "outcomes before connect")
        async with d.signer(seed=seed) as s:
            found = await wait_for_log(d, r"event=example_outcome request_id=\S+ outcome=ok seq=(\d+)", 3)
            check(len(found) >= 3, "three signed outcomes, got %r" % found)
            check_eq([int(n) for n in found[:3]], [1, 2, 3], "sequence numbers")
            msgs = [unb64(r["message"]) for r in s.requests[:3]]
            check_eq(msgs, [b"example ping #1", b"example ping #2", b"example ping #3"],
                     "messages the controller asked for")
            check(all(r.get("request_id") for r in s.requests), "every request has an id")
        # The audit line names the controller as requester and never the message bytes.
        check("requester=example" in d.log_text(), "audit line names the requester")
        check("example ping" not in d.log_text(), "message bytes never reach the log")


async def test_rejection_is_reported():
    seed = os.urandom(32)
    pk, cfg = example_config(seed, interval_ms=50)
    async with Daemon(cfg) as d:
        async with d.signer(seed=seed, policy="reject"):
            found = await wait_for_log(d, r"event=example_outcome request_id=\S+ outcome=rejected", 2)
            check(len(found) >= 2, "rejected outcomes logged: %r" % found)


async def test_stops_when_the_key_leaves():
    seed = os.urandom(32)
    pk, cfg = example_config(seed, interval_ms=50)
    async with Daemon(cfg) as d:
        async with d.signer(seed=seed):
            await wait_for_log(d, r"event=example_outcome request_id=\S+ outcome=ok", 2)
        # Gone: at most the request in flight ends, then nothing more is asked.
        await asyncio.sleep(0.3)
        before = len(re.findall(r"event=example_outcome", d.log_text()))
        await asyncio.sleep(0.5)
        check_eq(len(re.findall(r"event=example_outcome", d.log_text())), before,
                 "outcomes after the key left")
        # Back: it goes on where it stopped.
        async with d.signer(seed=seed):
            found = await wait_for_log(d, r"event=example_outcome request_id=\S+ outcome=ok "
                                          r"seq=(\d+)", 3)
            seqs = [int(n) for n in found]
            check_eq(seqs, sorted(seqs), "sequence numbers keep rising")


async def test_status_endpoint():
    seed = os.urandom(32)
    pk, cfg = example_config(seed, interval_ms=50)
    async with Daemon(cfg) as d:
        status, body = await d.ahttp("GET", "/example")
        check_eq(status, 200, "GET /example")
        check_eq(body, {"public_key": base64.b64encode(pk).decode(), "connected": False,
                        "asked": 0, "signed": 0, "last_outcome": "none"}, "before the key")
        async with d.signer(seed=seed):
            await wait_for_log(d, r"event=example_outcome request_id=\S+ outcome=ok", 2)
            status, body = await d.ahttp("GET", "/example")
            check_eq((status, body["connected"], body["last_outcome"]), (200, True, "ok"),
                     "with the key connected: %r" % body)
            check(body["signed"] >= 2 and body["asked"] >= body["signed"], "counts %r" % body)
        status, body = await d.ahttp("GET", "/example/nope")
        check_eq((status, body["error"]["code"]), (404, "not_found"), "a path below /example")
        # The HTTP API still owns everything else.
        status, body = await d.ahttp("GET", "/healthz")
        check_eq((status, body), (200, {"status": "ok"}), "GET /healthz")


async def test_bad_options_refused():
    # A wrong option is a start-up error naming the key, not something ignored.
    from wssd_test import run_cli, write_json, current_tmpdir
    path = os.path.join(current_tmpdir(), "bad.json")
    write_json(path, {"controllers": {"example": {"public_key": "not base64"}}})
    rc, out, err = run_cli(["-c", path])
    check_eq(rc, 1, "exit code")
    check("controllers.example.public_key" in err, "error names the key: %r" % err)
    write_json(path, {"controllers": {"example": {"public_key": base64.b64encode(b"x" * 32).decode(),
                                                  "interval": 5}}})
    rc, out, err = run_cli(["-c", path])
    check_eq(rc, 1, "unknown option: exit code")
    check("controllers.example.interval" in err, "error names the key: %r" % err)


if __name__ == "__main__":
    run_tests(globals())
