#!/usr/bin/python3
"""
wssign agent + wssign request against the real daemon over wss:// with a
self-signed certificate: full round trips whose signatures `wssign verify`
and PyNaCl accept, a key from `openssl genpkey`, TLS verification on by
default (no --ca: no connection, and the log says why), hostname checks,
--insecure, a refused introduction (host not in server_names), and the exit
code of every error class `request` reports.
"""

import asyncio
import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssd_test as T  # noqa: E402
from wssd_test import Daemon, check, check_eq, free_port, run_tests, verify  # noqa: E402
from wssign_util import (WSSIGN, Agent, control_url, keygen, openssl_genpkey,  # noqa: E402
                         openssl_pubkey, request, run)


def unb64(s):
    return base64.b64decode(s, validate=True)


def wss_url(d, host="localhost"):
    return "wss://%s:%d/v1/ws" % (host, d.port)


def check_roundtrip(d, agent, pk, message, *msg_args):
    """One request through the agent; checks output, signature (wssign verify + nacl) and log."""
    rc, out, err = request(d, pk, *msg_args)
    check_eq(rc, 0, "request exit (stderr %r)" % err)
    lines = out.splitlines()
    check_eq(len(lines), 1, "one JSON line: %r" % out)
    body = json.loads(lines[0])
    check_eq(sorted(body), ["message", "public_key", "request_id", "signature"], "fields")
    check_eq(body["public_key"], pk, "public_key")
    check_eq(unb64(body["message"]), message, "message echoed")
    sig = unb64(body["signature"])
    check(verify(unb64(pk), message, sig), "PyNaCl rejects the signature")
    rc, vout, verr = run(["verify", "--key", pk, "--message-hex", message.hex(), "--signature",
                          body["signature"]])
    check_eq((rc, vout), (0, "valid\n"), "wssign verify (stderr %r)" % verr)
    digest = hashlib.sha256(message).hexdigest()
    agent.wait_log(r"event=sign_decision decision=signed .*request_id=%s bytes=%d sha256=%s"
                   % (body["request_id"], len(message), digest), timeout=5)
    return body


def test_wss_roundtrip_with_ca():
    with Daemon(tls=True) as d:
        key, pk = keygen()
        agent = Agent(wss_url(d), key, "--ca", d.cafile)
        m = agent.wait_introduced()
        check_eq(m.group(1), pk, "public key the agent introduced")
        check(agent.lines(r"event=start .*tls=verified"), "agent logs verified TLS")

        message = b"pay 10 EUR to bob " + os.urandom(8).hex().encode()
        check_roundtrip(d, agent, pk, message, "--message", message.decode())

        binary = b"\x00\xff\x01wssign\n" + os.urandom(64)
        check_roundtrip(d, agent, pk, binary, "--message-hex", binary.hex())
        mfile = os.path.join(T.current_tmpdir(), "msg.bin")
        with open(mfile, "wb") as f:
            f.write(binary + b"file")
        check_roundtrip(d, agent, pk, binary + b"file", "--message-file", mfile)
        # an empty message is the daemon's call: bad_request, reported as "other" (9)
        rc, out, err = request(d, pk, "--message", "")
        check_eq(rc, 9, "empty message (stderr %r)" % err)
        check("bad_request" in err, "error code in the message: %r" % err)

        # --signature-only prints just the signature
        rc, out, err = request(d, pk, "--message", "sig only", "--signature-only")
        check_eq(rc, 0, "request --signature-only (stderr %r)" % err)
        check(verify(unb64(pk), b"sig only", unb64(out.strip())), "--signature-only output")
        check_eq(len(out.splitlines()), 1, "one line")

        # the log never carries message bytes, only digests
        log = agent.log()
        for secret in (message, base64.b64encode(message), message.hex().encode()):
            check(secret.decode() not in log, "message bytes leaked into the agent log")
        check_eq(agent.stop(), 0, "agent exit after SIGTERM")


def test_openssl_genpkey_key_signs():
    with Daemon(tls=True) as d:
        key = openssl_genpkey(os.path.join(T.current_tmpdir(), "openssl.pem"))
        pk = openssl_pubkey(key)
        agent = Agent(wss_url(d, "127.0.0.1"), key, "--ca", d.cafile)
        check_eq(agent.wait_introduced().group(1), pk, "agent's key = openssl's public key")
        check(agent.lines(r"event=start public_key=%s" % pk.replace("+", r"\+")),
              "start line reports the openssl public key")
        check_roundtrip(d, agent, pk, b"openssl key", "--message", "openssl key")
        check_eq(agent.stop(), 0, "agent exit")


def test_tls_verification_is_on_by_default():
    with Daemon(tls=True) as d:
        key, pk = keygen()
        agent = Agent(wss_url(d), key, "--backoff-max-ms", "500")
        m = agent.wait_log(r"event=connect_failed .*tls_error=\"?([^\"]+)", timeout=10)
        check("self-signed certificate" in m.group(1), "reason in the log: %r" % m.group(0))
        # it keeps trying with backoff, and never introduces itself
        agent.wait_log(r"event=connect_failed", timeout=10, count=3)
        check(not agent.lines(r"event=introduced|event=connected"),
              "agent connected without trusting the certificate")
        rc, _, err = request(d, pk, "--message", "x")
        check_eq(rc, 3, "request to an unverified agent: not_connected (stderr %r)" % err)
        check_eq(agent.stop(), 0, "agent exit")


def test_tls_hostname_is_checked():
    tmp = T.current_tmpdir()
    cert, keyfile = os.path.join(tmp, "other.crt"), os.path.join(tmp, "other.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
                    "/CN=other.example", "-addext", "subjectAltName=DNS:other.example",
                    "-keyout", keyfile, "-out", cert], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)
    os.chmod(keyfile, 0o600)
    with Daemon({"tls": {"cert": cert, "key": keyfile}}) as d:
        key, _ = keygen()
        agent = Agent(wss_url(d), key, "--ca", cert, "--backoff-max-ms", "500")
        m = agent.wait_log(r"event=connect_failed .*tls_error=\"?([^\"]+)", timeout=10)
        check("hostname mismatch" in m.group(1), "reason: %r" % m.group(0))
        check(not agent.lines(r"event=connected"), "agent accepted a certificate for another name")
        check_eq(agent.stop(), 0, "agent exit")


def test_insecure_skips_verification():
    with Daemon(tls=True) as d:
        key, pk = keygen()
        agent = Agent(wss_url(d), key, "--insecure")
        agent.wait_introduced()
        check(agent.lines(r"event=insecure"), "agent warns that checks are off")
        check(agent.lines(r"tls=unverified"), "start line says unverified")
        check_roundtrip(d, agent, pk, b"insecure", "--message", "insecure")
        check_eq(agent.stop(), 0, "agent exit")


def test_introduction_refused_for_a_host_the_daemon_does_not_serve():
    with Daemon({"server_names": ["signer.example"]}, tls=True) as d:
        key, pk = keygen()
        agent = Agent(wss_url(d), key, "--ca", d.cafile, "--backoff-max-ms", "500")
        m = agent.wait_log(r"event=introduction_refused close_code=(\d+) .*host=localhost",
                           timeout=10)
        check_eq(m.group(1), "1008", "close code of a refused introduction")
        check(agent.lines(r"event=server_error code=bad_host"), "daemon's error frame logged")
        check(not agent.lines(r"event=introduced"), "introduced with a foreign host name")
        # it keeps retrying with backoff rather than giving up
        agent.wait_log(r"event=introduction_refused", timeout=10, count=2)
        rc, _, _ = request(d, pk, "--message", "x")
        check_eq(rc, 3, "request: not_connected")
        check_eq(agent.stop(), 0, "agent exit")


def test_request_error_exit_codes():
    tmp = T.current_tmpdir()
    token = "t0ken-" + os.urandom(16).hex()
    token_file = T.write_lines("tokens", ["# control API tokens", "", token])
    wrong_file = os.path.join(tmp, "wrong")
    with open(wrong_file, "w") as f:
        f.write("x" * 32 + "\n")
    os.chmod(wrong_file, 0o600)

    with Daemon({"controllers": {"http_api": {"token_file": token_file}}}, tls=True) as d:
        key, pk = keygen()
        # --confirm "sleep" keeps a request pending until the agent is killed
        agent = Agent(wss_url(d), key, "--ca", d.cafile, "--confirm", "sleep 30")
        agent.wait_introduced()

        rc, out, err = request(d, pk, "--message", "no token")
        check_eq(rc, 8, "no token: unauthorized (stderr %r)" % err)
        check("unauthorized" in err, "message names the error: %r" % err)
        rc, _, err = request(d, pk, "--message", "wrong token", "--token-file", wrong_file)
        check_eq(rc, 8, "wrong token: unauthorized (stderr %r)" % err)
        os.chmod(wrong_file, 0o644)
        rc, _, err = request(d, pk, "--message", "x", "--token-file", wrong_file)
        check_eq(rc, 2, "token file readable by others (stderr %r)" % err)
        check("chmod 600" in err, "token file mode message: %r" % err)

        other = base64.b64encode(os.urandom(32)).decode()
        rc, _, err = request(d, other, "--message", "nobody", "--token-file", token_file)
        check_eq(rc, 3, "unknown key: not_connected (stderr %r)" % err)

        rc, _, err = request(d, pk, "--message", "slow", "--token-file", token_file,
                             "--timeout-ms", "300")
        check_eq(rc, 4, "confirmation outlasting the deadline: timeout (stderr %r)" % err)

        # the agent dies while a request waits for its confirmation
        p = subprocess.Popen([WSSIGN, "request", "--control", control_url(d), "--key", pk,
                              "--message", "orphan", "--token-file", token_file],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started = agent.wait_log(r"event=confirm_started .*pid=(\d+)", timeout=10, count=2)
        agent.kill()
        _, err = p.communicate(timeout=30)
        try:
            # SIGKILL left the agent no chance to stop its confirm command
            os.killpg(int(started.group(1)), signal.SIGKILL)
        except OSError:
            pass
        check_eq(p.returncode, 7, "agent gone mid-request: connection_closed (%r)" % err)

    # invalid_signature: a signer that answers with a bad signature
    async def bad_signer():
        async with Daemon() as d:
            async with d.signer(policy="bad_signature") as s:
                pk = base64.b64encode(s.pk).decode()
                rc, _, err = await asyncio.to_thread(request, d, pk, "--message", "bad")
                check_eq(rc, 6, "bad signature: invalid_signature (stderr %r)" % err)
    asyncio.run(bad_signer())

    # nothing listening on the control port
    port = free_port()
    rc, _, err = run(["request", "--control", "http://127.0.0.1:%d" % port, "--key", pk,
                      "--message", "x"])
    check_eq(rc, 9, "unreachable control API (stderr %r)" % err)
    check("Connection refused" in err, "transport error text: %r" % err)


def test_request_timeout_bounds_the_wait():
    with Daemon(tls=True) as d:
        key, pk = keygen()
        agent = Agent(wss_url(d), key, "--ca", d.cafile, "--confirm", "sleep 30")
        agent.wait_introduced()
        t0 = time.monotonic()
        rc, _, err = request(d, pk, "--message", "slow", "--timeout-ms", "500")
        elapsed = time.monotonic() - t0
        check_eq(rc, 4, "timeout exit (stderr %r)" % err)
        check(elapsed < 5.0, "request returned after %.1f s" % elapsed)
        check_eq(agent.stop(), 0, "agent exit")


run_tests(globals())
