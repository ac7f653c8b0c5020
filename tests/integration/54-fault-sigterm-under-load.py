#!/usr/bin/python3
"""
SIGTERM while 32 keep-alive requesters keep sending to four signing keys and
one silent key. Every request the daemon had taken before the signal gets
exactly one HTTP answer (200 with a verifying signature, or 503
shutting_down) within 1 s of the signal; a request sent after it gets one
answer or a closed connection, never two answers and never silence; every
answer has its audit line; the signers see close 1001 and the daemon exits
0 within shutdown.drain_ms + 1 s.
"""

import asyncio
import base64
import json
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (AsyncHttp, Daemon, TestFailure, b64, check, check_eq,  # noqa: E402
                       run_tests, scaled, verify)

REQUESTERS = 32
DRAIN_MS = 2000
LOAD_BEFORE_S = 1.5


async def requester(client, keys, stop_after, log, rng_bytes):
    """Sends requests back to back; stops at the first transport error or at stop_after."""
    n = 0
    while time.monotonic() < stop_after:
        pk = keys[rng_bytes[n % len(rng_bytes)] % len(keys)]
        msg = b"load %d " % n + os.urandom(12)
        n += 1
        entry = {"pk": pk, "msg": msg, "sent": None, "done": None, "status": None, "body": None,
                 "error": None}
        log.append(entry)
        try:
            entry["sent"] = time.monotonic()
            status, _, payload, _ = await client.request(
                "POST", "/v1/sign", {"public_key": b64(pk), "message": b64(msg),
                                     "timeout_ms": 30000}, timeout=scaled(10))
            entry["status"], entry["body"] = status, json.loads(payload)
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as e:
            entry["error"] = repr(e)
            entry["done"] = time.monotonic()
            return
        except asyncio.TimeoutError:
            entry["error"] = "no answer within %.0f s" % scaled(10)
            entry["done"] = time.monotonic()
            return
        entry["done"] = time.monotonic()


async def test_sigterm_under_load():
    d = Daemon({"shutdown": {"drain_ms": DRAIN_MS}})
    await d.astart()
    signers = [d.signer() for _ in range(4)] + [d.signer(policy="silent")]
    for s in signers:
        await s.start()
    keys = [s.pk for s in signers]
    clients = [AsyncHttp(d.control_port) for _ in range(REQUESTERS)]
    logs = [[] for _ in clients]
    stop_after = time.monotonic() + LOAD_BEFORE_S + scaled(5)
    tasks = [asyncio.ensure_future(requester(c, keys, stop_after, lg, os.urandom(64)))
             for c, lg in zip(clients, logs)]
    await asyncio.sleep(LOAD_BEFORE_S)
    check(not any(t.done() for t in tasks), "a requester stopped before the signal")

    t_term = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(asyncio.gather(*tasks), scaled(15))
    strays = await asyncio.gather(*[c.stray(0.3) for c in clients])
    for c in clients:
        await c.close()
    try:
        rc = await asyncio.to_thread(d.proc.wait, DRAIN_MS / 1000 + scaled(1.0) + 1.0)
    except Exception:
        raise TestFailure("daemon still running %.1f s after SIGTERM" % (time.monotonic() - t_term))
    exit_after = time.monotonic() - t_term
    d.returncode = rc
    await d.astop()
    check_eq(rc, 0, "daemon exit status")
    check(exit_after <= DRAIN_MS / 1000 + scaled(1.0),
          "daemon exited %.2f s after SIGTERM (drain_ms %d)" % (exit_after, DRAIN_MS))
    for s in signers:
        check_eq(await s.wait_closed(5.0), 1001, "signer close code at shutdown")

    problems = []
    answered = 0
    ids = {}
    statuses = {}
    for i, lg in enumerate(logs):
        if strays[i]:
            problems.append("requester %d: bytes after its last answer: %r" % (i, strays[i][:100]))
        for e in lg:
            taken_before = e["sent"] is not None and e["sent"] < t_term - 0.05
            if e["error"] is not None:
                # Only a request sent around or after the signal may end without an answer.
                if taken_before:
                    problems.append("requester %d: request sent %.3f s before SIGTERM ended with "
                                    "%s and no answer" % (i, t_term - e["sent"], e["error"]))
                continue
            answered += 1
            status, body = e["status"], e["body"]
            key = status if status == 200 else (status, (body.get("error") or {}).get("code"))
            statuses[key] = statuses.get(key, 0) + 1
            rid = body.get("request_id") or (body.get("error") or {}).get("request_id")
            if rid:
                ids[rid] = ids.get(rid, 0) + 1
            if status == 200:
                if (base64.b64decode(body["message"]) != e["msg"]
                        or not verify(e["pk"], e["msg"], base64.b64decode(body["signature"]))):
                    problems.append("requester %d: a 200 that does not verify" % i)
            elif key != (503, "shutting_down"):
                problems.append("requester %d: unexpected answer %r" % (i, key))
            if taken_before and e["done"] > t_term + scaled(1.0):
                problems.append("requester %d: answered %.2f s after SIGTERM"
                                % (i, e["done"] - t_term))
    for rid, n in ids.items():
        if n > 1:
            problems.append("request_id %s answered %d times" % (rid, n))
    audit = len(re.findall(r"event=sign_outcome ", d.log_text()))
    if audit < answered:
        problems.append("%d audit lines for %d answers" % (audit, answered))
    print("answers %d %r, audit lines %d, exit after %.2f s"
          % (answered, statuses, audit, exit_after), flush=True)
    check(statuses.get(200, 0) > 0 and statuses.get((503, "shutting_down"), 0) > 0,
          "both signed and shutting_down answers seen: %r" % statuses)
    if problems:
        raise TestFailure("%d problems:\n  %s" % (len(problems), "\n  ".join(problems[:30])))


run_tests(globals())
