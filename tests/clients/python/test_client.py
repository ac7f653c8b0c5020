#!/usr/bin/python3
"""wssign.Client and wssign.AsyncClient against the real daemon: each HTTP
error of the control API becomes its exception, in both flavours; the body
carries label and wait_ms only when given; every code of docs/openapi.yaml
has its class."""

import asyncio
import json
import os
import socket
import time

import yaml

from common import REPO, SEED, token_file, until, wssign
from wssd_test import Daemon, check, check_eq, current_tmpdir, run_tests
from wssign.client import _check, sign_body

TOKEN = "client-test-token-0123456789"
KEY = wssign.Key.from_seed(SEED)


async def expect(cls, call, status, what):
    """Runs call() through both flavours (a coroutine factory and a sync
    function run in a thread) and checks the exception."""
    for flavour, run in call:
        try:
            await run()
        except cls as e:
            check_eq(type(e), cls, "%s (%s): class" % (what, flavour))
            check_eq(e.status, status, "%s (%s): status" % (what, flavour))
            check_eq(e.code, cls.code, "%s (%s): code" % (what, flavour))
            check(isinstance(e, wssign.ApiError), "an ApiError")
            continue
        except Exception as e:
            raise AssertionError("%s (%s): expected %s, got %r" % (what, flavour, cls.__name__, e))
        raise AssertionError("%s (%s): no exception" % (what, flavour))


def both(url, token, *args, **kw):
    """[(flavour, coroutine factory)] calling sign() through Client and AsyncClient."""
    sync = wssign.Client(url, token)
    aio = wssign.AsyncClient(url, token)
    return [("sync", lambda: asyncio.to_thread(sync.sign, *args, **kw)),
            ("async", lambda: aio.sign(*args, **kw))]


def test_every_code_has_its_class():
    with open(os.path.join(REPO, "docs", "openapi.yaml"), encoding="utf-8") as f:
        codes = yaml.safe_load(f)["components"]["schemas"]["ErrorCode"]["enum"]
    classes = set()
    for code in codes:
        e = wssign.error_for(418, code, "text", None)
        check(type(e) is not wssign.ApiError, "no class of its own for %s" % code)
        check_eq(e.code, code, "code of %s" % type(e).__name__)
        classes.add(type(e))
    check_eq(len(classes), len(codes), "one class per code")
    check_eq(type(wssign.error_for(500, "something_new")), wssign.ApiError, "unknown code")


def test_sign_body():
    body = json.loads(sign_body(KEY.public_key, b"m", timeout=1.5))
    check_eq(body, {"public_key": KEY.public_key_b64, "message": "bQ==", "timeout_ms": 1500},
             "plain body")
    body = json.loads(sign_body(KEY.public_key_b64, "m", label="invoice 42", wait=2))
    check_eq((body["label"], body["wait_ms"]), ("invoice 42", 2000), "label and wait_ms")
    check("timeout_ms" not in body, "no timeout_ms unless given")
    for bad in ({"timeout": 0}, {"timeout": 61}, {"wait": -1}):
        try:
            sign_body(KEY.public_key, b"m", **bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % bad)


async def test_errors_without_a_signer():
    cfg = {"requests": {"max_message_bytes": 64}}
    async with Daemon(cfg) as d:
        url = "http://127.0.0.1:%d" % d.control_port
        await expect(wssign.NotConnectedError, both(url, None, KEY.public_key, b"x"), 404,
                     "no signer")
        await expect(wssign.BadRequestError,
                     both(url, None, KEY.public_key, b"wssign-introduction-v1\nx"), 400,
                     "reserved prefix")
        await expect(wssign.BadRequestError,
                     both(url, None, KEY.public_key, b"x", label="two\nlines"), 400,
                     "a label with a control character")
        t0 = time.monotonic()
        await expect(wssign.NotConnectedError, both(url, None, KEY.public_key, b"x", wait=0.3),
                     404, "a wait for a signer that does not come")
        check(time.monotonic() - t0 >= 0.55, "both waits lasted their 0.3 s")
        await expect(wssign.PayloadTooLargeError, both(url, None, KEY.public_key, b"m" * 65),
                     413, "message over the limit")
        await expect(wssign.NotFoundError, both(url + "/prefix", None, KEY.public_key, b"x"),
                     404, "a URL that is not the API")
        client = wssign.Client(url)
        check(not client.is_connected(KEY.public_key), "not connected")
        try:
            client.key_status(KEY.public_key)
        except wssign.NotConnectedError:
            pass
        else:
            raise AssertionError("key_status of a key not connected")
        status, raw = client._request("GET", "/v1/sign", None, 5)
        try:
            _check(status, raw)
        except wssign.MethodNotAllowedError as e:
            check_eq(e.status, 405, "status")
        else:
            raise AssertionError("GET /v1/sign")


async def test_signer_outcomes():
    """422, 502 (both codes), 503 overloaded and 504, from signers that behave so."""
    async with Daemon({"requests": {"max_pending_per_key": 1}}) as d:
        url = "http://127.0.0.1:%d" % d.control_port
        mode = {"how": "reject"}
        hold = asyncio.Event()

        async def policy(req):
            if mode["how"] == "reject":
                return wssign.Reject("no")
            if mode["how"] == "hold":
                await hold.wait()
            return True

        class Forger:
            """Signs introductions properly and everything else wrongly."""
            public_key = KEY.public_key

            def sign(self, data):
                return KEY.sign(data) if data.startswith(b"wssign-introduction-v1") else bytes(64)

        async with wssign.Signer(d.url(), KEY, policy=policy, backoff_initial=0.05,
                                 backoff_max=0.2) as s:
            await s.wait_introduced(5)
            await expect(wssign.RejectedError, both(url, None, KEY.public_key, b"x"), 422,
                         "rejected")
            mode["how"] = "hold"
            await expect(wssign.TimeoutError, both(url, None, KEY.public_key, b"x", timeout=0.2),
                         504, "timeout")
            aio = wssign.AsyncClient(url)
            held = asyncio.create_task(aio.sign(KEY.public_key, b"held"))
            await until(lambda: s.pending, 5, "the held request")
            await expect(wssign.OverloadedError, both(url, None, KEY.public_key, b"x"), 503,
                         "per-key cap")
            hold.set()
            await held
        async with wssign.Signer(d.url(), Forger(), policy=policy, backoff_initial=0.05,
                                 backoff_max=0.2) as s:
            mode["how"] = "sign"
            await s.wait_introduced(5)
            await expect(wssign.InvalidSignatureError, both(url, None, KEY.public_key, b"x"),
                         502, "bad signature")
        # A signer that leaves without answering: connection_closed.
        async with d.signer(seed=SEED, policy="silent") as raw:
            aio = wssign.AsyncClient(url)
            task = asyncio.create_task(aio.sign(KEY.public_key, b"left"))
            await raw.wait_request(0)
            await raw.ws.close()
            try:
                await task
            except wssign.ConnectionClosedError as e:
                check_eq((e.status, e.code), (502, "connection_closed"), "connection closed")
            else:
                raise AssertionError("signed by a signer that left")


async def test_auth_errors():
    cfg = {"controllers": {"http_api": {"token_file": token_file(TOKEN), "auth_failures_burst": 2}}}
    async with Daemon(cfg) as d:
        url = "http://127.0.0.1:%d" % d.control_port
        check(await wssign.AsyncClient(url).health(), "healthz needs no token")
        await expect(wssign.NotConnectedError, both(url, TOKEN, KEY.public_key, b"x"), 404,
                     "valid token")
        await expect(wssign.UnauthorizedError, both(url, "wrong-token-0123456789",
                                                    KEY.public_key, b"x"), 401, "wrong token")
        await expect(wssign.TooManyRequestsError, both(url, None, KEY.public_key, b"x"), 429,
                     "throttled")
        check(wssign.TooManyRequestsError.retryable, "429 is retryable")


async def test_shutdown_and_cluster_and_transport():
    async with Daemon() as d:
        url = "http://127.0.0.1:%d" % d.control_port
        started = asyncio.Event()

        async def policy(req):
            started.set()
            await asyncio.sleep(3600)

        async with wssign.Signer(d.url(), KEY, policy=policy, backoff_initial=0.05,
                                 backoff_max=0.2) as s:
            await s.wait_introduced(5)
            task = asyncio.create_task(wssign.AsyncClient(url).sign(KEY.public_key, b"x"))
            await asyncio.wait_for(started.wait(), 5)
            await d.astop()
            try:
                await task
            except wssign.ShuttingDownError as e:
                check_eq(e.status, 503, "status")
            else:
                raise AssertionError("signed during shutdown")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            dead = sock.getsockname()[1]
        for flavour, run in both("http://127.0.0.1:%d" % dead, None, KEY.public_key, b"x"):
            try:
                await run()
            except wssign.TransportError:
                continue
            raise AssertionError("%s: no TransportError" % flavour)
    secret = os.path.join(current_tmpdir(), "cluster.secret")
    with open(secret, "wb") as f:
        f.write(os.urandom(48))
    os.chmod(secret, 0o600)
    cfg = {"cluster": {"redis": "redis://127.0.0.1:%d" % dead, "secret_file": secret}}
    async with Daemon(cfg) as d:
        await expect(wssign.ClusterUnavailableError,
                     both("http://127.0.0.1:%d" % d.control_port, None, KEY.public_key, b"x"),
                     503, "cluster unavailable")


if __name__ == "__main__":
    run_tests(globals())
