#!/usr/bin/python3
"""
kill -9 under load, 20 times in a row, with the test as the supervisor (what
systemd's Restart=on-failure does): four `wssign agent` key holders and eight
keep-alive requesters; each round SIGKILLs the daemon mid-load and starts it
again on the same ports. Every request in flight at the kill ends in a
transport error, never in an answer; every answer before it is a 200 whose
signature verifies; the restarted daemon is ready (event=ready, sent with
READY=1) within 2 s, and every agent is introduced again within 5 s of that.

Then restart safety: a signer that held a request when the daemon was killed
answers it on a new connection to the restarted daemon; the answer is refused
(unknown_request), no 200 is ever given for that id, and the connection goes
on signing new requests.
"""

import asyncio
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (AsyncHttp, Daemon, Signer, TestFailure, b64, check,  # noqa: E402
                       check_eq, run_tests, scaled, unb64, verify)
from wssign_util import Agent, keygen  # noqa: E402

KILLS = 20
AGENTS = 4
REQUESTERS = 8
LOAD_S = 0.4            # load before each kill
READY_BOUND_S = 2.0     # kill -> restarted daemon ready
REINTRO_BOUND_S = 5.0   # ready -> every key holder introduced again
BACKOFF_MAX_MS = 1000


async def requester(client, pks, log, seed):
    """Sends back to back until the first transport error (the kill)."""
    n = 0
    while True:
        pk = pks[(seed + n) % len(pks)]
        msg = b"f1 %d %d " % (seed, n) + os.urandom(8)
        n += 1
        entry = {"pk": pk, "msg": msg, "status": None, "body": None, "error": None,
                 "done": None}
        log.append(entry)
        try:
            status, _, payload, _ = await client.request(
                "POST", "/v1/sign", {"public_key": pk, "message": b64(msg), "timeout_ms": 20000},
                timeout=scaled(10))
            entry["status"], entry["body"] = status, json.loads(payload)
            entry["done"] = time.monotonic()
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as e:
            entry["error"] = repr(e)
            entry["done"] = time.monotonic()
            return
        except asyncio.TimeoutError:
            entry["error"] = "timeout"
            entry["done"] = time.monotonic()
            return


async def one_round(d, pks, rnd):
    """Load, kill -9; returns (answers before the kill, transport errors, problems)."""
    clients = [AsyncHttp(d.control_port) for _ in range(REQUESTERS)]
    logs = [[] for _ in clients]
    tasks = [asyncio.ensure_future(requester(c, pks, lg, rnd * 100 + i))
             for i, (c, lg) in enumerate(zip(clients, logs))]
    await asyncio.sleep(LOAD_S)
    check(not any(t.done() for t in tasks), "round %d: a requester stopped before the kill" % rnd)
    t_kill = time.monotonic()
    d.kill()
    await asyncio.wait_for(asyncio.gather(*tasks), scaled(15))
    for c in clients:
        await c.close()
    problems, answered, errors = [], 0, 0
    for i, lg in enumerate(logs):
        for e in lg:
            if e["error"] is not None:
                errors += 1
                if e["error"] == "timeout" or e["done"] < t_kill:
                    problems.append("round %d requester %d: %s %.3f s %s the kill"
                                    % (rnd, i, e["error"], abs(e["done"] - t_kill),
                                       "before" if e["done"] < t_kill else "after"))
                continue
            # An answer read after the kill was sent before it: it must still be a good 200.
            answered += 1
            if e["status"] != 200:
                problems.append("round %d requester %d: status %d %r"
                                % (rnd, i, e["status"], e["body"]))
            elif not verify(unb64(e["pk"]), e["msg"], unb64(e["body"]["signature"])):
                problems.append("round %d requester %d: a 200 that does not verify" % (rnd, i))
        check(lg and lg[-1]["error"] is not None,
              "round %d requester %d: its last request did not end in a transport error" % (rnd, i))
    return answered, errors, problems


async def test_kill_restart_under_load():
    d = Daemon(name="f1-0").start()
    config = d.config
    url = "ws://127.0.0.1:%d/v1/ws" % d.port
    agents, pks = [], []
    for i in range(AGENTS):
        key, pk = keygen(name="f1-%d.pem" % i)
        agents.append(Agent(url, key, "--backoff-max-ms", BACKOFF_MAX_MS, name="f1-agent-%d" % i))
        pks.append(pk)
    for a in agents:
        a.wait_introduced(timeout=scaled(10))

    problems, ready_s, reintro_s, total_answered, total_errors = [], [], [], 0, 0
    for rnd in range(KILLS):
        answered, errors, round_problems = await one_round(d, pks, rnd)
        problems += round_problems
        total_answered += answered
        total_errors += errors
        check(answered > 0, "round %d: no request was answered before the kill" % rnd)

        t0 = time.monotonic()
        d = Daemon(config, name="f1-%d" % (rnd + 1)).start()
        t_ready = time.monotonic()
        ready_s.append(t_ready - t0)
        for a in agents:
            await asyncio.to_thread(a.wait_introduced, scaled(REINTRO_BOUND_S) + 5, rnd + 2)
        reintro_s.append(time.monotonic() - t_ready)

    d.stop()
    for a in agents:
        check_eq(a.stop(), 0, "agent exit status")
    print("  %d rounds: %d answers before the kills, %d requests ended by them; ready after "
          "%.3f s at most, agents back %.3f s after that at most"
          % (KILLS, total_answered, total_errors, max(ready_s), max(reintro_s)))
    if problems:
        raise TestFailure("%d problem(s):\n  %s" % (len(problems), "\n  ".join(problems[:20])))
    check(max(ready_s) <= scaled(READY_BOUND_S),
          "restarted daemon ready after %.3f s (bound %.1f s)" % (max(ready_s), READY_BOUND_S))
    check(max(reintro_s) <= scaled(REINTRO_BOUND_S),
          "agents introduced again %.3f s after ready (bound %.1f s)"
          % (max(reintro_s), REINTRO_BOUND_S))


async def test_answer_to_a_request_from_before_the_kill():
    d1 = Daemon(name="n5-first").start()
    config = d1.config
    held = Signer(d1.url(), policy="silent")
    await held.start()
    client = AsyncHttp(d1.control_port)
    call = asyncio.ensure_future(client.request(
        "POST", "/v1/sign", {"public_key": b64(held.pk), "message": b64(b"before the crash")},
        timeout=scaled(10)))
    req = await held.wait_request(0)
    rid = req["request_id"]
    d1.kill()
    try:
        status, _, payload, _ = await call
        raise TestFailure("the in-flight request got an answer: %d %r" % (status, payload))
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        pass
    await client.close()

    d2 = Daemon(config, name="n5-second").start()
    again = Signer(d2.url(), seed=held.seed, policy="silent")
    await again.start()
    await again.send_json(again.response(req))
    err = await again.expect_error("unknown_request", request_id=rid)
    check(err is not None, "the stale answer was not refused")
    check(again.is_open, "the connection was closed for a stale answer")

    again.policy = "sign"
    status, body, _ = await d2.sign(held.pk, b"after the crash")
    check_eq(status, 200, "a new request on the same connection (%r)" % (body,))
    check(body["request_id"] != rid, "the restarted daemon reused the old request id")
    check(verify(held.pk, b"after the crash", unb64(body["signature"])), "signature verifies")
    await again.close()
    d2.stop()


if __name__ == "__main__":
    run_tests(globals())
