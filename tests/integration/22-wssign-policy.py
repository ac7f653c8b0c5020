#!/usr/bin/python3
"""
The agent's signing policy, end to end through the daemon: a message the
policy refuses ends as `rejected` at the requester (exit 5) via --allow-prefix
(hex:, str: and plain text) and --max-bytes; introduction transcripts are
never signed; a --confirm command approving and declining (with the message
on stdin and in its environment), its timeout, a cancel killing a pending
confirmation, confirmations not blocking other requests, and SIGTERM while
one is pending. Every decision is one logfmt line.
"""

import base64
import hashlib
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssd_test as T  # noqa: E402
from wssd_test import Daemon, check, check_eq, run_tests, verify  # noqa: E402
from wssign_util import Agent, keygen, read_env, request, write_script  # noqa: E402


def ws_url(d):
    return "ws://127.0.0.1:%d/v1/ws" % d.port


def start(d, *extra):
    key, pk = keygen()
    agent = Agent(ws_url(d), key, *extra)
    agent.wait_introduced()
    return agent, pk


def decision(agent, message, want, reason, timeout=5):
    """Waits for the decision line about message; checks decision and reason."""
    digest = hashlib.sha256(message).hexdigest()
    m = agent.wait_log(r"event=sign_decision decision=(\w+) reason=(\w+) request_id=(\S+) "
                       r"bytes=%d sha256=%s" % (len(message), digest), timeout=timeout)
    check_eq((m.group(1), m.group(2)), (want, reason), "decision for %r" % message[:40])
    return m.group(3)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_reserved_prefix_never_signed():
    # The daemon refuses such requests itself (bad_request, exit 9) before any
    # agent sees them; the agent's own refusal is exercised against a bare
    # protocol peer in 24-wssign-protocol.py.
    with Daemon() as d:
        agent, pk = start(d, "--allow-prefix", "wssign-")
        msg = b"wssign-introduction-v1\nbank.example\n" + base64.b64encode(os.urandom(32))
        rc, out, err = request(d, pk, "--message-hex", msg.hex())
        check_eq(rc, 9, "reserved prefix (stderr %r)" % err)
        check("bad_request" in err and "reserved prefix" in err, "message: %r" % err)
        check_eq(out, "", "nothing on stdout")
        # a prefix the agent was told to allow still cannot unlock it, and a
        # different version string is an ordinary message
        rc, _, _ = request(d, pk, "--message", "wssign-introduction-v2")
        check_eq(rc, 0, "wssign-introduction-v2 is an ordinary message")
        decision(agent, b"wssign-introduction-v2", "signed", "policy")
        check(not agent.lines(r"bytes=%d sha256=%s" % (len(msg), hashlib.sha256(msg).hexdigest())),
              "the agent was asked to sign an introduction transcript")
        check_eq(agent.stop(), 0, "agent exit")


def test_allow_prefix_and_max_bytes():
    with Daemon() as d:
        agent, pk = start(d, "--allow-prefix", "hex:cafe00", "--allow-prefix", "order:",
                          "--allow-prefix", "str:hex:lit", "--max-bytes", "16")
        cases = [
            (bytes.fromhex("cafe0001"), 0, "signed", "policy"),
            (b"order:42", 0, "signed", "policy"),
            (b"hex:literal", 0, "signed", "policy"),
            (b"order 42", 5, "refused", "prefix_not_allowed"),
            (bytes.fromhex("cafe01"), 5, "refused", "prefix_not_allowed"),
            (b"Order:42", 5, "refused", "prefix_not_allowed"),
            (b"order:" + b"x" * 10, 0, "signed", "policy"),       # 16 bytes
            (b"order:" + b"x" * 11, 5, "refused", "too_long"),    # 17 bytes
        ]
        for msg, want_rc, want_decision, reason in cases:
            rc, out, err = request(d, pk, "--message-hex", msg.hex())
            check_eq(rc, want_rc, "request %r (stderr %r)" % (msg, err))
            if rc == 0:
                body = json.loads(out)
                check(verify(base64.b64decode(pk), msg, base64.b64decode(body["signature"])),
                      "signature for %r" % msg)
            decision(agent, msg, want_decision, reason)
        check_eq(agent.stop(), 0, "agent exit")


CONFIRM_SCRIPT = r"""#!/bin/sh
# Records what it was given, then approves messages that start with "yes".
out="$1"
cat > "$out.stdin"
env | grep '^WSSIGN_' | sort > "$out.env"
case "$(head -c 3 "$out.stdin")" in
    yes) exit 0 ;;
    *) exit 3 ;;
esac
"""


def test_confirm_approves_and_declines():
    script = write_script(CONFIRM_SCRIPT)
    rec = os.path.join(T.current_tmpdir(), "rec")
    with Daemon({"requests": {"max_message_bytes": 65536}}) as d:
        agent, pk = start(d, "--confirm", "%s %s" % (script, rec))

        msg = b"yes, pay 5 \x00\xff" + os.urandom(8)
        rc, out, err = request(d, pk, "--message-hex", msg.hex())
        check_eq(rc, 0, "approved request (stderr %r)" % err)
        body = json.loads(out)
        check(verify(base64.b64decode(pk), msg, base64.b64decode(body["signature"])),
              "approved signature verifies")
        rid = decision(agent, msg, "signed", "confirmed")
        check_eq(rid, body["request_id"], "request id in the log")
        with open(rec + ".stdin", "rb") as f:
            check_eq(f.read(), msg, "message on the command's stdin")
        env = read_env(rec + ".env")
        check_eq(env.get("WSSIGN_MESSAGE_HEX"), msg.hex(), "WSSIGN_MESSAGE_HEX")
        check_eq(env.get("WSSIGN_MESSAGE_B64"), base64.b64encode(msg).decode(),
                 "WSSIGN_MESSAGE_B64")
        check_eq(env.get("WSSIGN_REQUEST_ID"), body["request_id"], "WSSIGN_REQUEST_ID")
        check_eq(env.get("WSSIGN_PUBLIC_KEY"), pk, "WSSIGN_PUBLIC_KEY")
        check_eq(env.get("WSSIGN_MESSAGE_BYTES"), str(len(msg)), "WSSIGN_MESSAGE_BYTES")
        check_eq(env.get("WSSIGN_MESSAGE_SHA256"), hashlib.sha256(msg).hexdigest(),
                 "WSSIGN_MESSAGE_SHA256")

        no = b"no thanks " + os.urandom(8).hex().encode()
        rc, out, err = request(d, pk, "--message", no.decode())
        check_eq(rc, 5, "declined request: rejected (stderr %r)" % err)
        decision(agent, no, "rejected", "declined")
        check(agent.lines(r"decision=rejected reason=declined .* confirm_status=3"),
              "exit status of the command in the log")

        # large messages come on stdin only
        big = b"yes" + b"B" * 40000
        rc, _, err = request(d, pk, "--message", big.decode())
        check_eq(rc, 0, "approved large request (stderr %r)" % err)
        with open(rec + ".stdin", "rb") as f:
            check_eq(f.read(), big, "large message on stdin")
        env = read_env(rec + ".env")
        check("WSSIGN_MESSAGE_HEX" not in env, "no hex variable for a 40000-byte message")
        check_eq(env.get("WSSIGN_MESSAGE_BYTES"), str(len(big)), "size variable")

        check(not agent.lines(no.decode()), "message text in the log")
        check_eq(agent.stop(), 0, "agent exit")


def test_confirm_timeout_kills_and_declines():
    with Daemon() as d:
        agent, pk = start(d, "--confirm", "sleep 30", "--confirm-timeout-ms", "300")
        t0 = time.monotonic()
        rc, _, err = request(d, pk, "--message", "wait forever")
        elapsed = time.monotonic() - t0
        check_eq(rc, 5, "timed-out confirmation: rejected (stderr %r)" % err)
        check(elapsed < 3.0, "rejected after %.1f s (timeout 0.3 s)" % elapsed)
        decision(agent, b"wait forever", "rejected", "confirm_timeout")
        pid = int(agent.wait_log(r"event=confirm_started .*pid=(\d+)").group(1))
        check(not pid_alive(pid), "confirm command %d still running after its timeout" % pid)
        check_eq(agent.stop(), 0, "agent exit")


def test_cancel_drops_the_pending_confirmation():
    with Daemon() as d:
        agent, pk = start(d, "--confirm", "sleep 30")
        rc, _, err = request(d, pk, "--message", "cancel me", "--timeout-ms", "400")
        check_eq(rc, 4, "requester timed out (stderr %r)" % err)
        m = agent.wait_log(r"event=cancel request_id=(\S+) reason=timeout pending=true pid=(\d+)")
        started = agent.wait_log(r"event=confirm_started request_id=(\S+) pid=(\d+)")
        check_eq(m.group(1), started.group(1), "cancelled the request that was pending")
        deadline = time.monotonic() + 3
        while pid_alive(int(m.group(2))) and time.monotonic() < deadline:
            time.sleep(0.05)
        check(not pid_alive(int(m.group(2))), "confirm command survived the cancel")
        # nothing is sent for a cancelled request, and the agent keeps serving
        time.sleep(0.2)
        check(not agent.lines(r"decision=\w+ .*request_id=%s" % m.group(1)),
              "a decision was logged for a cancelled request")
        check_eq(agent.stop(), 0, "agent exit")


def test_confirmations_do_not_block_other_requests():
    with Daemon() as d:
        agent, pk = start(d, "--confirm",
                          'if [ "$(cat)" = slow ]; then sleep 2; fi; exit 0')
        results = {}

        def ask(name):
            t0 = time.monotonic()
            rc, _, _ = request(d, pk, "--message", name)
            results[name] = (rc, time.monotonic() - t0)

        slow = threading.Thread(target=ask, args=("slow",))
        slow.start()
        agent.wait_log(r"event=confirm_started", timeout=5)
        ask("fast")
        check_eq(results["fast"][0], 0, "fast request")
        check(results["fast"][1] < 1.5, "fast request took %.1f s behind a slow confirmation"
              % results["fast"][1])
        check("slow" not in results, "the slow request finished first")
        slow.join(10)
        check_eq(results["slow"][0], 0, "slow request")
        check(results["slow"][1] >= 1.9, "slow request took %.1f s" % results["slow"][1])
        check_eq(agent.stop(), 0, "agent exit")


def test_sigterm_during_confirmation_rejects_and_exits():
    with Daemon() as d:
        agent, pk = start(d, "--confirm", "sleep 30")
        results = {}

        def ask():
            results["r"] = request(d, pk, "--message", "pending at shutdown")

        t = threading.Thread(target=ask)
        t.start()
        pid = int(agent.wait_log(r"event=confirm_started .*pid=(\d+)").group(1))
        t0 = time.monotonic()
        check_eq(agent.stop(), 0, "agent exit after SIGTERM")
        check(time.monotonic() - t0 < 3, "agent took too long to stop")
        t.join(10)
        check_eq(results["r"][0], 5, "pending request rejected at shutdown (%r)" % (results["r"],))
        check(not pid_alive(pid), "confirm command left running")
        check("decision=rejected reason=agent_stopping" in agent.log(), "decision logged")


run_tests(globals())
