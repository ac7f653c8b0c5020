#!/usr/bin/python3
"""
GET /metrics on the control listener: Prometheus text format 0.0.4, behind
the bearer token like every endpoint but /healthz. A known sequence of
handshakes, introductions and sign requests moves each counter by exactly
the expected amount; the gauges show the open connections, introduced keys
and pending requests; the sign-duration histogram counts the successes.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import websockets
from wssd_test import (AsyncHttp, Daemon, TestFailure, ascrape, b64, check, check_eq,
                       check_error_body, http_request, run_tests, unb64, write_lines)

TOKEN = "tok-metrics-5d1e9a7c3b"

SIGN_OUTCOMES = ("ok", "bad_request", "not_connected", "timeout", "invalid_signature",
                 "connection_closed", "rejected", "cancelled", "shutting_down", "overloaded",
                 "unauthorized", "too_many_requests", "unsupported_media_type",
                 "payload_too_large", "cluster_unavailable", "forbidden", "forbidden_key")
INTRO_OUTCOMES = ("ok", "bad_host", "bad_key", "bad_proof", "missing_proof", "timeout",
                  "address_limit", "denied")

FAMILIES = {
    "wssignd_build_info": "gauge",
    "wssignd_process_start_time_seconds": "gauge",
    "wssignd_connections": "gauge",
    "wssignd_control_sockets": "gauge",
    "wssignd_introduced_keys": "gauge",
    "wssignd_pending_requests": "gauge",
    "wssignd_handshakes": "counter",
    "wssignd_introductions": "counter",
    "wssignd_sign_requests": "counter",
    "wssignd_sign_duration_seconds": "histogram",
    "wssignd_received_bytes": "counter",
    "wssignd_sent_bytes": "counter",
    "wssignd_protocol_errors": "counter",
}


def token_config():
    path = write_lines("tokens", [TOKEN])
    return {"controllers": {"http_api": {"enabled": True, "token_file": path}}}


def gauge(sc, name):
    v = sc.value(name)
    if v is None:
        raise TestFailure("gauge %s missing" % name)
    return v


def bucket(sc, le, outcome="ok"):
    """The cumulative count of the sign-duration bucket of outcome whose bound is le."""
    for labels, v in sc.matching("wssignd_sign_duration_seconds_bucket", outcome=outcome):
        if float(labels["le"]) == le:
            return v
    raise TestFailure("no sign_duration bucket outcome=%s le=%r" % (outcome, le))


def delta(a, b, name, **labels):
    return b.total(name, **labels) - a.total(name, **labels)


async def scrape(d):
    return await ascrape(d.control_port, TOKEN)


async def test_metrics_format_and_auth():
    t_start = time.time()
    async with Daemon(token_config()) as d:
        status, body = await d.ahttp("GET", "/metrics")
        check_error_body(status, body, 401, "unauthorized", "GET /metrics without a token")
        status, body = await d.ahttp("GET", "/metrics", token="wrong")
        check_error_body(status, body, 401, "unauthorized", "GET /metrics with a wrong token")
        sc = await scrape(d)
        ctype = sc.headers.get("content-type", "")
        check(ctype.startswith("text/plain") and "version=0.0.4" in ctype,
              "content-type %r" % ctype)
        for name, kind in FAMILIES.items():
            fam = sc.families.get(name)
            check(fam is not None, "family %s missing; families: %s"
                  % (name, sorted(sc.families)))
            check_eq(fam.type, kind, "type of %s" % name)
        # every outcome of the labelled counters is exported from the start
        for name, outcomes in (("wssignd_handshakes_total", ("accepted", "refused")),
                               ("wssignd_introductions_total", INTRO_OUTCOMES),
                               ("wssignd_sign_requests_total", SIGN_OUTCOMES)):
            got = sorted(l.get("outcome") for l, _ in sc.matching(name))
            check_eq(got, sorted(outcomes), "outcome labels of %s" % name)
            check(all(v == 0 for _, v in sc.matching(name)), "%s not 0 at start" % name)
        info = sc.matching("wssignd_build_info")
        check_eq(len(info), 1, "wssignd_build_info samples")
        labels, value = info[0]
        check_eq(value, 1.0, "wssignd_build_info value")
        check(labels.get("version"), "wssignd_build_info without a version label: %r" % labels)
        check(labels.get("lws"), "wssignd_build_info without an lws label: %r" % labels)
        start = gauge(sc, "wssignd_process_start_time_seconds")
        check(t_start - 5 <= start <= time.time() + 1,
              "process_start_time_seconds %.1f, test started at %.1f" % (start, t_start))
        for name in ("wssignd_connections", "wssignd_introduced_keys",
                     "wssignd_pending_requests"):
            check_eq(gauge(sc, name), 0.0, "%s at start" % name)
        # the histogram covers every outcome, each consistent: cumulative buckets from
        # 0.5 ms to 60 s ending in +Inf == _count
        for o in SIGN_OUTCOMES:
            buckets = sorted(((float(l["le"]), v) for l, v in
                              sc.matching("wssignd_sign_duration_seconds_bucket", outcome=o)),
                             key=lambda x: x[0])
            check(buckets and buckets[-1][0] == float("inf"), "no +Inf bucket for %s" % o)
            check_eq((buckets[0][0], buckets[-2][0]), (0.0005, 60.0), "bucket bounds for %s" % o)
            check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])),
                  "buckets not cumulative: %r" % buckets)
            check_eq(buckets[-1][1], sc.value("wssignd_sign_duration_seconds_count", outcome=o),
                     "+Inf bucket vs _count for %s" % o)
        # /healthz stays open
        status, body = await d.ahttp("GET", "/healthz")
        check_eq(status, 200, "/healthz without a token")


async def dispatch(signer, req):
    """reject or stay silent depending on the message."""
    msg = unb64(req["message"])
    if msg.startswith(b"reject"):
        await signer.answer(req, signer.rejection(req))


SLOW_S = 0.03


async def slow_sign(signer, req):
    """Signs after SLOW_S seconds, so each success has a known least duration."""
    await asyncio.sleep(SLOW_S)
    await signer.answer(req, signer.response(req))


async def test_counters_move_by_exactly_the_sequence():
    async with Daemon(token_config()) as d:
        before = await scrape(d)
        async with d.signer(policy=slow_sign) as s1, d.signer(policy=dispatch) as s2:
            # 3 ok, each answered after SLOW_S
            ok_time = 0.0
            for i in range(3):
                status, body, elapsed = await d.sign(s1.pk, b"ok %d" % i, timeout_ms=10000,
                                                     token=TOKEN)
                check_eq(status, 200, "ok request %d (body %r)" % (i, body))
                ok_time += elapsed
            # 1 rejected
            status, body, _ = await d.sign(s2.pk, b"reject me", timeout_ms=10000, token=TOKEN)
            check_error_body(status, body, 422, "rejected", "rejected request")
            # 1 timeout, with a scrape while it is pending
            task = asyncio.ensure_future(d.sign(s2.pk, b"silence", timeout_ms=1500,
                                                token=TOKEN))
            await s2.wait_request(1)
            during = await scrape(d)
            check_eq(gauge(during, "wssignd_pending_requests"), 1.0,
                     "pending_requests while one is pending")
            status, body, _ = await task
            check_error_body(status, body, 504, "timeout", "timed-out request")
            await s2.expect_frame("cancel", timeout=2.0)
            # 1 not_connected
            status, body, _ = await d.sign(os.urandom(32), b"nobody", timeout_ms=1000,
                                           token=TOKEN)
            check_error_body(status, body, 404, "not_connected", "absent key")
            # 1 introduction with a bad proof
            bad = d.signer()
            await bad.connect()
            await bad.read_challenge()
            await bad.send_json(bad.introduction(proof=b64(os.urandom(64))))
            frames, cc = await bad.recv_until_closed(5.0)
            check(frames and frames[0].get("code") == "bad_proof",
                  "bad proof refusal: %r (close %r)" % (frames, cc))
            # 1 handshake to a wrong path
            try:
                ws = await websockets.connect("ws://127.0.0.1:%d/not-the-path" % d.port,
                                              open_timeout=3, ping_interval=None)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                pass
            else:
                await ws.close()
                raise TestFailure("WebSocket handshake on a wrong path succeeded")
            await asyncio.sleep(0.3)
            after = await scrape(d)

            check_eq(gauge(after, "wssignd_connections"), 2.0, "connections with 2 signers")
            check_eq(gauge(after, "wssignd_introduced_keys"), 2.0, "introduced_keys")
            check_eq(gauge(after, "wssignd_pending_requests"), 0.0, "pending_requests")

            hs = "wssignd_handshakes_total"
            check_eq(delta(before, after, hs, outcome="accepted"), 3.0, "handshakes accepted")
            check_eq(delta(before, after, hs, outcome="refused"), 1.0, "handshakes refused")
            check_eq(delta(before, after, hs), 4.0, "handshakes, all outcomes")

            it = "wssignd_introductions_total"
            want = {"ok": 2.0, "bad_proof": 1.0}
            for o in INTRO_OUTCOMES:
                check_eq(delta(before, after, it, outcome=o), want.get(o, 0.0),
                         "introductions outcome=%s" % o)
            check_eq(delta(before, after, it), 3.0, "introductions, all outcomes")

            sr = "wssignd_sign_requests_total"
            want = {"ok": 3.0, "rejected": 1.0, "timeout": 1.0, "not_connected": 1.0}
            for o in SIGN_OUTCOMES:
                check_eq(delta(before, after, sr, outcome=o), want.get(o, 0.0),
                         "sign_requests outcome=%s" % o)
            check_eq(delta(before, after, sr), 6.0, "sign_requests, all outcomes")

            h = "wssignd_sign_duration_seconds"
            for o in SIGN_OUTCOMES:
                check_eq(delta(before, after, h + "_count", outcome=o), want.get(o, 0.0),
                         "sign_duration _count outcome=%s" % o)
            grown = delta(before, after, h + "_sum", outcome="ok")
            check(3 * SLOW_S - 0.005 <= grown <= ok_time + 0.005,
                  "sign_duration _sum grew by %.4f s for 3 requests of %.3f to %.3f s"
                  % (grown, SLOW_S, ok_time))
            check_eq(bucket(after, 0.025) - bucket(before, 0.025), 0.0,
                     "sign_duration bucket le=0.025 (every success took >= %.3f s)" % SLOW_S)
            check_eq(bucket(after, float("inf")) - bucket(before, float("inf")), 3.0,
                     "sign_duration bucket le=+Inf")
            inf_b = after.value(h + "_bucket", le="+Inf", outcome="ok")
            check_eq(inf_b, after.value(h + "_count", outcome="ok"), "+Inf bucket vs _count")

            check(delta(before, after, "wssignd_received_bytes_total") > 0,
                  "received_bytes did not grow")
            check(delta(before, after, "wssignd_sent_bytes_total") > 0,
                  "sent_bytes did not grow")
            pe = "wssignd_protocol_errors_total"
            check_eq(delta(before, after, pe, code="bad_proof"), 1.0, "protocol_errors bad_proof")
            check_eq(delta(before, after, pe), 1.0, "protocol_errors, all codes")

            # bytes: at least the signatures in the signer's answers
            sent_by_signers = sum(len(f["signature"]) for f in s1.sent)
            check_eq(len(s1.sent), 3, "answers sent by the signing signer")
            check(delta(before, after, "wssignd_received_bytes_total") >= sent_by_signers,
                  "received_bytes smaller than the signatures alone")

        # the two signers leave: the gauges follow
        deadline = time.monotonic() + 3
        while True:
            end = await scrape(d)
            if gauge(end, "wssignd_connections") == 0.0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        check_eq(gauge(end, "wssignd_connections"), 0.0, "connections after the signers left")
        check_eq(gauge(end, "wssignd_introduced_keys"), 0.0, "introduced_keys after they left")


async def test_other_outcomes_counted():
    """overloaded (refused before queueing), cancelled (requester left),
    invalid_signature and connection_closed each count once."""
    cfg = token_config()
    cfg["requests"] = {"max_pending_per_key": 1}
    async with Daemon(cfg) as d:
        async with d.signer(policy="silent") as s, d.signer(policy="bad_signature") as bad:
            before = await scrape(d)
            # one pending request holds the key's only slot
            held = await AsyncHttp(d.control_port).connect()
            await held.send(http_request("POST", "/v1/sign",
                                         {"public_key": b64(s.pk), "message": b64(b"held"),
                                          "timeout_ms": 20000}, token=TOKEN))
            await s.wait_request(0)
            status, resp, _ = await d.sign(s.pk, b"one too many", timeout_ms=20000, token=TOKEN)
            check_error_body(status, resp, 503, "overloaded", "second request for a full key")
            # the requester of the held one leaves
            await held.close()
            cancel = await s.expect_frame("cancel", timeout=3.0)
            check_eq(cancel.get("reason"), "requester_cancelled", "cancel.reason")
            # a signature that does not verify
            status, resp, _ = await d.sign(bad.pk, b"forged", timeout_ms=10000, token=TOKEN)
            check_error_body(status, resp, 502, "invalid_signature", "bad signature")
            # the signer leaves with a request pending
            task = asyncio.ensure_future(d.sign(s.pk, b"abandoned", timeout_ms=20000,
                                                token=TOKEN))
            await s.wait_request(1)
            await s.close()
            status, resp, _ = await task
            check_error_body(status, resp, 502, "connection_closed", "signer left")
            await asyncio.sleep(0.2)
            after = await scrape(d)
        sr = "wssignd_sign_requests_total"
        want = {"overloaded": 1.0, "cancelled": 1.0, "invalid_signature": 1.0,
                "connection_closed": 1.0}
        for o in SIGN_OUTCOMES:
            check_eq(delta(before, after, sr, outcome=o), want.get(o, 0.0),
                     "sign_requests outcome=%s" % o)
        for o in SIGN_OUTCOMES:
            check_eq(delta(before, after, "wssignd_sign_duration_seconds_count", outcome=o),
                     want.get(o, 0.0), "sign_duration _count outcome=%s" % o)
        check_eq(gauge(after, "wssignd_connections"), 1.0, "connections after one signer left")
        check_eq(gauge(after, "wssignd_pending_requests"), 0.0, "pending_requests at the end")


run_tests(globals())
