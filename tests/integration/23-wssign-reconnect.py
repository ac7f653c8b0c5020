#!/usr/bin/python3
"""
The agent as a long-running citizen: it survives the daemon being killed
and restarted on the same ports and serves a request again within the
backoff bound; backoff grows exponentially up to --backoff-max-ms and
resets after a successful introduction; a superseded connection (close
4001) is logged and followed by a full backoff window; SIGINT and SIGTERM
end it with status 0, connected or not.
"""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import Daemon, check, check_eq, free_port, run_tests  # noqa: E402
from wssign_util import Agent, keygen, request  # noqa: E402

BACKOFF_MAX_MS = 1000
# What a reconnect may take on top of the backoff delay (TCP, TLS, introduction).
SLACK_S = 1.0


def wss_url(d):
    return "wss://localhost:%d/v1/ws" % d.port


def schedules(agent):
    """(delay_ms, ceiling_ms, after) of every reconnect_scheduled line."""
    pattern = r"event=reconnect_scheduled delay_ms=(\d+) ceiling_ms=(\d+) after=\"([^\"]*)\""
    return [(int(a), int(b), c) for a, b, c in re.findall(pattern, agent.log())]


def wait_introduced_after(agent, count, t_from, timeout):
    """Waits for the count-th introduction; returns seconds since t_from."""
    agent.wait_introduced(timeout=timeout, count=count)
    return time.monotonic() - t_from


def test_survives_daemon_restart():
    d1 = Daemon(tls=True, name="first").start()
    cafile, config = d1.cafile, d1.config
    key, pk = keygen()
    agent = Agent(wss_url(d1), key, "--ca", cafile, "--backoff-max-ms", BACKOFF_MAX_MS)
    agent.wait_introduced()
    rc, _, err = request(d1, pk, "--message", "before")
    check_eq(rc, 0, "request before the restart (stderr %r)" % err)

    # crash: no close frame, the TCP connection just goes away
    d1.kill()
    agent.wait_log(r"event=disconnected", timeout=5)
    agent.wait_log(r"event=connect_failed", timeout=5, count=2)
    time.sleep(1.0)
    with Daemon(config, name="second") as d2:
        t_ready = time.monotonic()
        took = wait_introduced_after(agent, 2, t_ready, timeout=10)
        check(took <= BACKOFF_MAX_MS / 1000 + SLACK_S,
              "reintroduced %.2f s after the daemon was ready (bound %.1f s)"
              % (took, BACKOFF_MAX_MS / 1000 + SLACK_S))
        rc, out, err = request(d2, pk, "--message", "after")
        check_eq(rc, 0, "request after the restart (stderr %r)" % err)

        sched = schedules(agent)
        check(len(sched) >= 2, "reconnects were scheduled: %r" % sched)
        for delay, ceiling, _ in sched:
            check(ceiling <= BACKOFF_MAX_MS and delay <= ceiling,
                  "delay %d / ceiling %d over --backoff-max-ms" % (delay, ceiling))
        n_before = len(sched)

    # a graceful stop (close 1001): the first delay after a successful
    # introduction starts from the base again
    agent.wait_log(r"event=disconnected close_code=1001", timeout=5)
    agent.wait_log(r"event=reconnect_scheduled", timeout=5, count=n_before + 1)
    check_eq(schedules(agent)[n_before][1], 500, "ceiling after a successful introduction")
    check_eq(agent.stop(signal.SIGTERM), 0, "SIGTERM while disconnected")


def test_backoff_grows_to_the_cap():
    key, _ = keygen()
    port = free_port()  # nothing listens here
    agent = Agent("ws://127.0.0.1:%d/v1/ws" % port, key, "--backoff-max-ms", "2000")
    agent.wait_log(r"event=reconnect_scheduled", timeout=10, count=5)
    sched = schedules(agent)
    check_eq([c for _, c, _ in sched[:5]], [500, 1000, 2000, 2000, 2000], "ceilings")
    for delay, ceiling, after in sched:
        check(0 <= delay <= ceiling, "delay %d outside [0, %d]" % (delay, ceiling))
        check_eq(after, "connect failed", "cause")
    check(agent.lines(r"event=connect_failed .*Connection refused|event=connect_failed"),
          "connect failures logged")
    check_eq(agent.stop(signal.SIGINT), 0, "SIGINT while reconnecting")


def test_superseded_is_logged_and_backs_off():
    with Daemon() as d:
        key, pk = keygen()
        url = "ws://127.0.0.1:%d/v1/ws" % d.port
        first = Agent(url, key, "--backoff-max-ms", BACKOFF_MAX_MS, name="first")
        first.wait_introduced()
        second = Agent(url, key, "--backoff-max-ms", BACKOFF_MAX_MS, name="second")
        second.wait_introduced()
        first.wait_log(r"event=superseded close_code=4001", timeout=5)
        m = first.wait_log(r"event=reconnect_scheduled delay_ms=\d+ ceiling_ms=(\d+) "
                           r"after=\"superseded\"", timeout=5)
        check_eq(int(m.group(1)), BACKOFF_MAX_MS, "full backoff window after being superseded")
        check_eq(first.stop(signal.SIGTERM), 0, "first agent exit")
        check_eq(second.stop(signal.SIGINT), 0, "second agent exit")


def test_signals_end_the_agent_cleanly():
    with Daemon(tls=True) as d:
        for sig in (signal.SIGINT, signal.SIGTERM):
            key, pk = keygen(name="key-%d.pem" % sig)
            agent = Agent(wss_url(d), key, "--ca", d.cafile, name="agent-%d" % sig)
            agent.wait_introduced()
            t0 = time.monotonic()
            check_eq(agent.stop(sig), 0, "exit status after signal %d" % sig)
            check(time.monotonic() - t0 < 3.0, "agent took %.1f s to stop"
                  % (time.monotonic() - t0))
            log = agent.log()
            check("event=stopping" in log and "event=stopped" in log, "stop logged")
            check(re.search(r"event=disconnected reason=\"agent stopping\"", log),
                  "closed its connection itself")
            # the daemon saw the key leave: not_connected now
            deadline = time.monotonic() + 3
            while True:
                rc, _, _ = request(d, pk, "--message", "gone?")
                if rc == 3 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            check_eq(rc, 3, "request after the agent stopped")


run_tests(globals())
