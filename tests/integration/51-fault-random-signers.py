#!/usr/bin/python3
"""
10 000 sign requests against signers that fail at random: each request is
answered with a correct signature, a rejection, a bad signature, a
signature over other bytes, silence, a late answer, a TCP reset of the
whole connection, or a reading stall (fault_util.ACTIONS), from two signer
processes holding eight keys, by 64 concurrent keep-alive HTTP requesters.
Requirements checked:
  - every HTTP request gets exactly one response (no stray bytes on the
    keep-alive connections, no request_id answered twice), and the number of
    outcomes equals the number of requests;
  - each outcome is one the signer's action allows (a 200 only for a
    request that was signed, 422 only for a rejection, invalid_signature
    only for a bad answer), and a request that never reached a signer ends
    not_connected, connection_closed or timeout;
  - every 200 carries the requested key and message and its signature
    verifies with PyNaCl over the exact bytes sent;
  - no request takes longer than its deadline + 1 s;
  - wssignd_sign_requests_total moves by exactly the number of requests,
    one audit line is written per request, and nothing stays pending.
The same run with the verification pool (requests.verify_threads) is
shorter. The random seed is printed so that a failing run can be repeated
(WSSIGND_FAULT_SEED=N; WSSIGND_FAULT_REQUESTS=N changes the count).
"""

import asyncio
import base64
import collections
import json
import os
import random
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_util import ACTIONS, ALLOWED, ChaosSigners  # noqa: E402
from wssd_test import (AsyncHttp, Daemon, TestFailure, ascrape, b64, check_eq,  # noqa: E402
                       run_tests, scaled, verify)

REQUESTS = int(os.environ.get("WSSIGND_FAULT_REQUESTS") or 10000)
CONCURRENCY = 64
TIMEOUT_MS = 1000
PROCESSES = 2
KEYS_PER_PROCESS = 4
# A share of requests names a key nobody holds (404 not_connected, refused up front).
UNKNOWN_KEY_SHARE = 0.02


def seed():
    env = os.environ.get("WSSIGND_FAULT_SEED")
    return int(env) if env else random.SystemRandom().randrange(1, 2 ** 31)


async def requester(client, jobs, results, pks, rng):
    """Takes jobs until none are left; records one result per job."""
    while jobs:
        n = jobs.pop()
        if rng.random() < UNKNOWN_KEY_SHARE:
            pk = b"\x42" * 32
        else:
            pk = rng.choice(pks)
        msg = b"chaos %d " % n + os.urandom(rng.randrange(1, 200))
        body = {"public_key": b64(pk), "message": b64(msg), "timeout_ms": TIMEOUT_MS}
        t0 = time.monotonic()
        try:
            status, headers, payload, _ = await client.request(
                "POST", "/v1/sign", body, timeout=TIMEOUT_MS / 1000 + scaled(10))
        except (ConnectionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            results.append((n, pk, msg, None, repr(e), time.monotonic() - t0))
            await client.close()  # its state is unknown: the next request reconnects
            continue
        results.append((n, pk, msg, status, payload, time.monotonic() - t0))


def judge(results, actions, pks):
    """Checks each result against the action its signer took; returns a Counter of outcomes."""
    problems = []
    outcomes = collections.Counter()
    seen_ids = collections.Counter()
    slowest = 0.0
    for n, pk, msg, status, payload, elapsed in results:
        slowest = max(slowest, elapsed)
        if status is None:
            problems.append("request %d: no HTTP response (%s)" % (n, payload))
            continue
        try:
            body = json.loads(payload)
        except ValueError:
            problems.append("request %d: HTTP %d with a non-JSON body %r" % (n, status,
                                                                            payload[:100]))
            continue
        code = None if status == 200 else (body.get("error") or {}).get("code")
        rid = body.get("request_id") if status == 200 else (body.get("error") or {}).get(
            "request_id")
        outcomes[(status, code)] += 1
        if rid:
            seen_ids[rid] += 1
        if elapsed > TIMEOUT_MS / 1000 + scaled(1.0):
            problems.append("request %d: answered after %.2f s (deadline %d ms)"
                            % (n, elapsed, TIMEOUT_MS))
        if pk not in pks:
            if (status, code) != (404, "not_connected"):
                problems.append("request %d for an unknown key: %d %s" % (n, status, code))
            continue
        taken = actions.get(rid, []) if rid else []
        allowed = set()
        for a in taken or [None]:
            allowed |= ALLOWED[a]
        if (status, code) not in allowed:
            problems.append("request %d (%s): %d %s not allowed after signer action(s) %r"
                            % (n, rid, status, code, taken))
        if status == 200:
            if base64.b64decode(body.get("public_key", "")) != pk:
                problems.append("request %d: 200 for another key" % n)
            if base64.b64decode(body.get("message", "")) != msg:
                problems.append("request %d: 200 for another message" % n)
            sig = base64.b64decode(body.get("signature", ""))
            if not verify(pk, msg, sig):
                problems.append("request %d: 200 with a signature that does not verify" % n)
    for rid, count in seen_ids.items():
        if count > 1:
            problems.append("request_id %s answered %d times" % (rid, count))
    return outcomes, problems, slowest


async def drive(d, signers, requests, rng):
    """Runs the requests against d; returns what run_chaos checks."""
    for s in signers:
        await asyncio.to_thread(s.wait_ready, scaled(15))
    pks = [pk for s in signers for pk in s.pks]
    before = await ascrape(d)

    jobs = list(range(requests))
    results = []
    clients = [AsyncHttp(d.control_port) for _ in range(CONCURRENCY)]
    t0 = time.monotonic()
    await asyncio.gather(*[requester(c, jobs, results, pks, random.Random(rng.random()))
                           for c in clients])
    took = time.monotonic() - t0
    strays = await asyncio.gather(*[c.stray(0.3) for c in clients])
    for c in clients:
        await c.close()

    for s in signers:
        await asyncio.to_thread(s.stop)
    actions = {}
    for s in signers:
        for rid, acts in s.actions().items():
            actions.setdefault(rid, []).extend(acts)

    # Everything pending has ended once the signers are gone.
    deadline = time.monotonic() + scaled(5)
    while True:
        after = await ascrape(d)
        if after.value("wssignd_pending_requests") == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    log = d.log_text()
    return before, after, took, results, strays, actions, log


async def run_chaos(config, requests, label):
    rng_seed = seed()
    print("%s: %d requests, seed %d (WSSIGND_FAULT_SEED=%d repeats it)"
          % (label, requests, rng_seed, rng_seed), flush=True)
    rng = random.Random(rng_seed)
    async with Daemon(config) as d:
        signers = [ChaosSigners(d, KEYS_PER_PROCESS, rng_seed + i, name="chaos%d" % i)
                   for i in range(PROCESSES)]
        try:
            before, after, took, results, strays, actions, log = await drive(d, signers,
                                                                             requests, rng)
        finally:
            for s in signers:
                s.kill()

    pks = [pk for s in signers for pk in s.pks]
    check_eq(len(results), requests, "outcomes recorded")
    outcomes, problems, slowest = judge(results, actions, set(pks))
    print("%s: %.1f s, %.0f requests/s, slowest %.2f s, %d signer actions, outcomes %s"
          % (label, took, requests / took, slowest, sum(len(a) for a in actions.values()),
             dict(sorted(outcomes.items(), key=lambda kv: -kv[1]))), flush=True)
    for i, extra in enumerate(strays):
        if extra:
            problems.append("requester %d: bytes after its last response: %r" % (i, extra[:200]))
    moved = after.total("wssignd_sign_requests_total") - before.total("wssignd_sign_requests_total")
    if moved != requests:
        problems.append("wssignd_sign_requests_total moved by %d, expected %d" % (moved, requests))
    if after.value("wssignd_pending_requests") != 0:
        problems.append("wssignd_pending_requests is %r at the end"
                        % after.value("wssignd_pending_requests"))
    audit = len(re.findall(r"event=sign_outcome ", log))
    if audit != requests:
        problems.append("%d sign_outcome audit lines, expected %d" % (audit, requests))
    # Every kind of fault was exercised, so the run proves something.
    taken = {a for acts in actions.values() for a in acts}
    for a, _ in ACTIONS:
        if requests >= 2000 and a not in taken:
            problems.append("no request met the %r action" % a)
    if outcomes[(200, None)] < requests // 10:
        problems.append("only %d requests succeeded" % outcomes[(200, None)])
    if problems:
        raise TestFailure("%d problems (seed %d); first ones:\n  %s"
                          % (len(problems), rng_seed, "\n  ".join(problems[:30])))


async def test_random_faults_10000():
    await run_chaos({}, REQUESTS, "inline verification")


async def test_random_faults_with_verify_pool():
    await run_chaos({"requests": {"verify_threads": 2}}, max(REQUESTS // 5, 100),
                    "verification pool")


run_tests(globals())
