#!/usr/bin/python3
"""
--check-config says "ok" only for a configuration that starts, and every
configuration that does not start fails the check with the same reason:
TLS files missing, unreadable, too open or not a pair; token files missing,
empty, short or too open; unknown controllers, unknown keys inside a
controller's section, a bad example public key, a non-loopback control
listener without tokens. Listen addresses: host names are resolved to the
address bound, an address that is not this host's fails at start-up with no
ready line, and port 0 binds a free port that the ready line names.
"""

import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (REPO, Daemon, check, check_eq, current_tmpdir, free_port, http, make_cert,
                       run_cli, run_tests, write_json)

_n = [0]


def cfg_file(obj):
    _n[0] += 1
    return write_json(os.path.join(current_tmpdir(), "cfg%d.json" % _n[0]), obj)


def loopback(**extra):
    c = {"listen": "127.0.0.1:%d" % free_port(), "control": {"listen": "127.0.0.1:%d" % free_port()}}
    c.update(extra)
    return c


def token_file(text, mode=0o600):
    _n[0] += 1
    path = os.path.join(current_tmpdir(), "tokens%d" % _n[0])
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def check_and_start_agree(obj, what, reason=None):
    """--check-config and a real start both fail (exit 1) with one err line
    carrying the same reason, and the start never reaches event=ready."""
    path = cfg_file(obj)
    rc, out, err = run_cli(["-c", path, "--check-config"])
    check_eq(rc, 1, "%s: --check-config exit status (stdout %r stderr %r)" % (what, out, err))
    check("configuration ok" not in out, "%s: check printed ok" % what)
    rc2, out2, err2 = run_cli(["-c", path], timeout=10)
    check_eq(rc2, 1, "%s: start-up exit status (stderr %r)" % (what, err2))
    check("event=ready" not in err2, "%s: a failed start logged ready: %r" % (what, err2))
    msg = re.search(r'msg=(".*"|\S+)', err)
    msg2 = re.search(r'msg=(".*"|\S+)', err2)
    check(msg and msg2, "%s: no msg= in %r / %r" % (what, err, err2))
    check_eq(msg.group(1), msg2.group(1), "%s: the check and the start give the same reason" % what)
    if reason:
        check(reason in err, "%s: %r not in %r" % (what, reason, err))


def test_tls_files():
    tmp = current_tmpdir()
    cert, key = make_cert(tmp, "a")
    cert_b, key_b = make_cert(tmp, "b")
    missing = os.path.join(tmp, "missing.pem")
    check_and_start_agree(loopback(tls={"cert": missing, "key": key}), "missing certificate")
    check_and_start_agree(loopback(tls={"cert": cert, "key": missing}), "missing key")
    check_and_start_agree(loopback(tls={"cert": cert, "key": key_b}), "key of another certificate",
                          key_b)
    open_key = os.path.join(tmp, "open.key")
    with open(key) as src, open(open_key, "w") as dst:
        dst.write(src.read())
    os.chmod(open_key, 0o644)
    check_and_start_agree(loopback(tls={"cert": cert, "key": open_key}), "key readable by others")
    # and the good pair passes both ways
    good = cfg_file(loopback(tls={"cert": cert, "key": key}))
    rc, out, err = run_cli(["-c", good, "--check-config"])
    check_eq(rc, 0, "good TLS pair: check (stderr %r)" % err)
    check_eq(out.strip(), "configuration ok", "check output")


def test_token_files():
    api = lambda tf: loopback(controllers={"http_api": {"token_file": tf}})
    check_and_start_agree(api(os.path.join(current_tmpdir(), "none")), "missing token file")
    check_and_start_agree(api(token_file("")), "empty token file")
    check_and_start_agree(api(token_file("short\n")), "short token")
    check_and_start_agree(api(token_file("x" * 32 + "\n", mode=0o644)), "token file mode 0644")


def test_controller_sections():
    check_and_start_agree(loopback(controllers={"nope": {}}), "unknown controller", "nope")
    check_and_start_agree(loopback(controllers={"http_api": {"tokn_file": "/x"}}),
                          "typo in a controller section", "tokn_file")
    check_and_start_agree(loopback(controllers={"example": {"public_key": "zzz"}}),
                          "bad example public key", "public_key")
    check_and_start_agree({"listen": "127.0.0.1:%d" % free_port(),
                           "control": {"listen": "0.0.0.0:%d" % free_port()}},
                          "non-loopback control listener without tokens", "token_file")


def test_shipped_production_example_is_honest():
    """The production example names TLS files that a fresh machine lacks: the
    check must say so instead of 'configuration ok'."""
    examples = [os.path.join(REPO, "config", f) for f in sorted(os.listdir(os.path.join(REPO, "config")))
                if f.endswith(".json")]
    check(examples, "no config/*.json")
    for path in examples:
        rc, out, err = run_cli(["-c", path, "--check-config"])
        if rc == 0:
            # it passed: then it must start (on free ports)
            rc2, out2, err2 = run_cli(["-c", path, "--listen", "127.0.0.1:0", "--control",
                                       "127.0.0.1:0", "--check-config"])
            check_eq(rc2, 0, "%s passes the check" % path)
        else:
            check_eq(rc, 1, "%s: check exit status (stderr %r)" % (path, err))
            check("level=err" in err, "%s: no reason given: %r" % (path, err))


def test_host_names_resolve():
    with Daemon(loopback(listen="localhost:%d" % free_port()), name="by-name") as d:
        m = re.search(r"event=ready .*\blisten=(\S+)", d.log_text())
        check(m, "ready line")
        check_eq(m.group(1), "127.0.0.1:%d" % d.port, "localhost is bound as 127.0.0.1")
        check("DOESN'T EXIST" not in d.log_text(), "lws found no interface")
        status, body = http("GET", d.control_port, "/healthz", timeout=5)
        check_eq(status, 200, "healthz")
    rc, out, err = run_cli(["--listen", "no-such-host.invalid:8080", "--check-config"])
    check_eq(rc, 1, "an unresolvable name (stderr %r)" % err)
    check("cannot resolve" in err, "reason names the resolution: %r" % err)


def test_address_not_on_this_host():
    """lws would defer such a listener and log ready with nothing listening."""
    conf = loopback(listen="192.0.2.1:18480", insecure=True)
    path = cfg_file(conf)
    rc, out, err = run_cli(["-c", path], timeout=10)
    check_eq(rc, 1, "start-up on 192.0.2.1 (stderr %r)" % err)
    check("event=ready" not in err, "ready logged with no listener: %r" % err)
    check("cannot listen on 192.0.2.1:18480" in err, "reason: %r" % err)
    rc, out, err = run_cli(["-c", path, "--check-config"])
    check_eq(rc, 1, "--check-config on 192.0.2.1 (stderr %r)" % err)


def test_port_zero_reported():
    """Two listeners on port 0 get two distinct free ports, both in the ready line."""
    with Daemon({}, name="port0") as d:
        check(d.port and d.control_port and d.port != d.control_port,
              "ports %r %r" % (d.port, d.control_port))
        status, body = http("GET", d.control_port, "/healthz", timeout=5)
        check_eq(status, 200, "healthz on the reported control port")


run_tests(globals())
