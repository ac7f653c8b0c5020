#!/usr/bin/python3
"""
TLS on the wss listener, probed with `openssl s_client` and raw records
(SECURITY-NOTES §3, §4.4):

  T-T1  TLS 1.0 and 1.1 refused (the client is allowed them with
        @SECLEVEL=0, so the refusal is the server's); SSL 3.0 refused (a
        hand-made SSLv3 ClientHello, as s_client has no -ssl3 here).
  T-T2  TLS 1.2: only ECDHE + AEAD suites; CBC-SHA1, CBC-SHA2, NULL and
        anonymous suites refused. TLS 1.3 suites work. X25519 and P-256
        key exchange work. The test certificate is EC P-256, so RSA key
        exchange and ECDHE-RSA suites cannot be probed; 3DES and EXPORT
        suites are not in this OpenSSL 3 client at all.
  T-T3  ALPN: never h2 ("h2" alone: none; "h2,http/1.1": http/1.1).
  T-T4  client-initiated renegotiation refused (no_renegotiation).
  T-T5  start-up refusals: missing / unreadable / directory / garbage cert
        or key, key mode 0644 or 0640, cert/key mismatch: exit 1, one
        level=err line, nothing listening (no fallback to plain ws).
  Plain HTTP to the TLS port never gets 101; framing refusals over TLS
  give the same close codes as over ws.

After each group a fresh honest signer completes a wss round trip.
"""

import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hostile_util import (BINARY, TEXT, CaseRunner, RawHTTP, RawWS, connect_refused,
                          expect_handshake, expect_no_renegotiation, expect_refused, negotiated,
                          raw_roundtrip, roundtrip, s_client, tls_client_context, tls_tail,
                          upgrade_request)
from wssd_test import (BIN, Daemon, TestFailure, check, check_eq, current_tmpdir, free_port,
                       make_cert, run_tests, write_json)

NOBODY = 65534


def sslv3_client_hello():
    """A minimal SSL 3.0 ClientHello record."""
    suites = [0x000A, 0x002F, 0x0035, 0x0005, 0x0004]
    body = struct.pack("!H", 0x0300) + os.urandom(32) + b"\x00"
    body += struct.pack("!H", 2 * len(suites)) + b"".join(struct.pack("!H", c) for c in suites)
    body += b"\x01\x00"
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x00" + struct.pack("!H", len(hs)) + hs


def test_protocol_versions():
    cases = CaseRunner("T-T1 versions")
    with Daemon({}, tls=True) as d:
        for flag in ("-tls1", "-tls1_1"):
            with cases("%s refused by the server (protocol_version alert)" % flag):
                out = expect_refused(d.port, flag, "-cipher", "DEFAULT@SECLEVEL=0")
                check("alert protocol version" in out or "alert number 70" in out,
                      "no protocol_version alert: %s" % tls_tail(out))
        with cases("SSL 3.0 ClientHello refused (alert or close, never a ServerHello)"):
            with RawHTTP(d.port) as c:
                c.send(sslv3_client_hello())
                data = c.read_some(3.0)
                check(not (len(data) >= 6 and data[0] == 0x16 and data[5] == 0x02),
                      "ServerHello to SSL 3.0: %r" % data[:16])
                check(data == b"" or data[0] == 0x15, "unexpected answer %r" % data[:16])
        with cases("TLS 1.2 accepted"):
            got, _ = expect_handshake(d.port, "-tls1_2")
            check_eq(got[0], "TLSv1.2", "protocol")
        with cases("TLS 1.3 accepted"):
            got, _ = expect_handshake(d.port, "-tls1_3")
            check_eq(got[0], "TLSv1.3", "protocol")
        with cases("wss round trip"):
            roundtrip(d)
    cases.finish()


REFUSED_TLS12 = [
    ("CBC-SHA1", "ECDHE-ECDSA-AES128-SHA"),
    ("CBC-SHA1 AES-256", "ECDHE-ECDSA-AES256-SHA"),
    ("CBC-SHA256", "ECDHE-ECDSA-AES128-SHA256"),
    ("CBC-SHA384", "ECDHE-ECDSA-AES256-SHA384"),
    ("NULL cipher", "ECDHE-ECDSA-NULL-SHA"),
    ("anonymous ECDH (aNULL)", "AECDH-AES128-SHA"),
    ("CAMELLIA-CBC", "ECDHE-ECDSA-CAMELLIA128-SHA256"),
]
ACCEPTED_TLS12 = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                  "ECDHE-ECDSA-CHACHA20-POLY1305"]
TLS13_SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256"]


def temp_key(out):
    m = re.search(r"(?:Server|Peer) Temp Key: ([^\n,]+)(?:, ([^\n,]+))?", out)
    return (m.group(1), m.group(2)) if m else None


def test_cipher_matrix():
    cases = CaseRunner("T-T2 ciphers and groups")
    with Daemon({}, tls=True) as d:
        for name, suite in REFUSED_TLS12:
            with cases("TLS 1.2 %s (%s) refused" % (name, suite)):
                expect_refused(d.port, "-tls1_2", "-cipher", suite + "@SECLEVEL=0")
        for suite in ACCEPTED_TLS12:
            with cases("TLS 1.2 %s accepted" % suite):
                got, _ = expect_handshake(d.port, "-tls1_2", "-cipher", suite)
                check_eq(got, ("TLSv1.2", suite), "negotiated")
        for suite in TLS13_SUITES:
            with cases("TLS 1.3 %s accepted" % suite):
                got, _ = expect_handshake(d.port, "-tls1_3", "-ciphersuites", suite)
                check_eq(got, ("TLSv1.3", suite), "negotiated")
        for version in ("-tls1_2", "-tls1_3"):
            with cases("%s X25519 key exchange" % version):
                _, out = expect_handshake(d.port, version, "-groups", "X25519:P-256")
                check_eq((temp_key(out) or ("?",))[0], "X25519", "server temp key")
            with cases("%s P-256 key exchange" % version):
                _, out = expect_handshake(d.port, version, "-groups", "P-256")
                check_eq(temp_key(out), ("ECDH", "prime256v1"), "server temp key")
        with cases("wss round trip"):
            roundtrip(d)
    cases.finish()


def test_alpn_and_renegotiation():
    cases = CaseRunner("T-T3/T-T4")
    with Daemon({}, tls=True) as d:
        for offer, want in (("h2", "No ALPN negotiated"),
                            ("h2,http/1.1", "ALPN protocol: http/1.1"),
                            ("http/1.1", "ALPN protocol: http/1.1"),
                            ("h2c", "No ALPN negotiated"),
                            ("spdy/3.1,h2", "No ALPN negotiated")):
            with cases("ALPN offer %s -> %s" % (offer, want)):
                _, out = expect_handshake(d.port, "-alpn", offer)
                check(want in out, "expected %r: %s" % (want, tls_tail(out)))
                check("ALPN protocol: h2" not in out, "h2 negotiated")
        with cases("offering only h2, the connection still speaks HTTP/1.1 (101)"):
            with RawWS(d.port, tls=tls_client_context(alpn=["h2"])) as w:
                check_eq(w.sock.selected_alpn_protocol(), None, "selected ALPN")
                w.open()
        with cases("client renegotiation refused (no_renegotiation)"):
            expect_no_renegotiation(d.port)
        with cases("wss round trip"):
            roundtrip(d)
    cases.finish()


def test_plain_on_tls_port_and_framing_over_tls():
    cases = CaseRunner("plain on the TLS port")
    with Daemon({}, tls=True) as d:
        with cases("plain-text upgrade request to the wss port: no 101"):
            with RawHTTP(d.port) as c:
                c.send(upgrade_request())
                data = c.read_some(3.0)
                check(b" 101 " not in data[:40], "101 over plain text: %r" % data[:60])
        with cases("plain-text GET to the wss port: no HTTP answer in clear"):
            with RawHTTP(d.port) as c:
                c.send(b"GET /v1/ws HTTP/1.1\r\nHost: x\r\n\r\n")
                data = c.read_some(3.0)
                check(not data.startswith(b"HTTP/1.1 2") and b" 101 " not in data[:40],
                      "plain answer: %r" % data[:60])
        ctx = tls_client_context(cafile=d.cafile)
        with cases("over TLS: RSV bits -> 1002"):
            with RawWS(d.port, tls=ctx) as w:
                w.open()
                w.send_frame(TEXT, b"x", rsv=4)
                w.expect_close(1002)
        with cases("over TLS: binary -> 1003"):
            with RawWS(d.port, tls=ctx) as w:
                w.open()
                w.send_frame(BINARY, b"x")
                w.expect_close(1003)
        with cases("over TLS: 65537-byte message -> 1009"):
            with RawWS(d.port, tls=ctx) as w:
                w.open()
                w.send_frame(TEXT, b"[" + b"1" * 65536)
                w.expect_close(1009)
        with cases("raw wss round trip"):
            raw_roundtrip(d, tls=ctx)
        with cases("wss round trip"):
            roundtrip(d)
    cases.finish()


# ---------------------------------------------------------------------------
# T-T5

def start_refused(cfg_tls, tmp, as_user=None):
    """Runs the daemon on a config with tls=cfg_tls; expects exit 1 within
    10 s, exactly one level=err line, and nothing listening on the port."""
    port = free_port()
    cfg = {"listen": "127.0.0.1:%d" % port,
           "control": {"listen": "127.0.0.1:%d" % free_port()}, "tls": cfg_tls}
    path = write_json(os.path.join(tmp, "refused.json"), cfg, mode=0o644)
    argv = [BIN, "-c", path]
    if as_user is not None:
        argv = ["setpriv", "--reuid=%d" % as_user, "--regid=%d" % as_user, "--clear-groups"] + \
            argv
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    plain_seen = False
    deadline = time.monotonic() + 10
    while p.poll() is None and time.monotonic() < deadline:
        if not connect_refused("127.0.0.1", port, timeout=0.2):
            plain_seen = True
        time.sleep(0.02)
    if p.poll() is None:
        p.kill()
        p.wait()
        raise TestFailure("daemon still running 10 s after start with a bad TLS setup")
    out = p.stdout.read().decode("utf-8", "replace")
    check_eq(p.returncode, 1, "exit status (output %r)" % out)
    errs = [l for l in out.splitlines() if " level=err " in l]
    check_eq(len(errs), 1, "level=err lines in %r" % out)
    check(not plain_seen, "the listener accepted connections before the refusal")
    check(connect_refused("127.0.0.1", port), "something listens on the port after exit")
    return errs[0]


def test_startup_refusals():
    cases = CaseRunner("T-T5 start-up")
    tmp = tempfile.mkdtemp(prefix="wssd-tls-", dir=current_tmpdir())
    os.chmod(current_tmpdir(), 0o755)
    os.chmod(tmp, 0o755)
    cert, key = make_cert(tmp, "good")
    cert2, key2 = make_cert(tmp, "other")

    def copy(src, name, mode, owner=None):
        dst = os.path.join(tmp, name)
        shutil.copy(src, dst)
        os.chmod(dst, mode)
        if owner is not None:
            os.chown(dst, owner, owner)
        return dst

    garbage = os.path.join(tmp, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("not a PEM file\n")
    os.chmod(garbage, 0o600)
    empty = os.path.join(tmp, "empty.key")
    open(empty, "w").close()
    os.chmod(empty, 0o600)
    adir = os.path.join(tmp, "a-directory")
    os.mkdir(adir, 0o700)

    refused = [
        ("missing cert", {"cert": os.path.join(tmp, "absent.crt"), "key": key}, None),
        ("missing key", {"cert": cert, "key": os.path.join(tmp, "absent.key")}, None),
        ("key mode 0644", {"cert": cert, "key": copy(key, "k644.key", 0o644)}, None),
        ("key mode 0640", {"cert": cert, "key": copy(key, "k640.key", 0o640)}, None),
        ("key mode 0604", {"cert": cert, "key": copy(key, "k604.key", 0o604)}, None),
        ("cert/key mismatch", {"cert": cert, "key": key2}, None),
        ("garbage cert", {"cert": garbage, "key": key}, None),
        ("garbage key", {"cert": cert, "key": garbage}, None),
        ("empty key", {"cert": cert, "key": empty}, None),
        ("cert is a directory", {"cert": adir, "key": key}, None),
        ("key is a directory", {"cert": cert, "key": adir}, None),
        ("key file given as the cert", {"cert": key, "key": key}, None),
        ("cert without key", {"cert": cert}, None),
        ("key unreadable by the daemon's user",
         {"cert": copy(cert, "n.crt", 0o644, NOBODY), "key": copy(key, "root.key", 0o600)},
         NOBODY),
        ("cert unreadable by the daemon's user",
         {"cert": copy(cert, "root.crt", 0o600), "key": copy(key, "n.key", 0o600, NOBODY)},
         NOBODY),
    ]
    for name, tls, user in refused:
        with cases(name):
            if user is not None and os.geteuid() != 0:
                raise TestFailure("needs root to run the daemon as another user")
            start_refused(tls, tmp, as_user=user)
    with cases("control: the good files as that user start fine"):
        good = {"cert": copy(cert, "ok.crt", 0o644, NOBODY),
                "key": copy(key, "ok.key", 0o600, NOBODY)}
        port = free_port()
        cfg = {"listen": "127.0.0.1:%d" % port,
               "control": {"listen": "127.0.0.1:%d" % free_port()}, "tls": good}
        path = write_json(os.path.join(tmp, "good.json"), cfg, mode=0o644)
        p = subprocess.Popen(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                              "--clear-groups", BIN, "-c", path], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while connect_refused("127.0.0.1", port, timeout=0.2):
                if p.poll() is not None:
                    raise TestFailure("the daemon exited: %r" % p.stdout.read())
                check(time.monotonic() < deadline, "not listening after 10 s")
                time.sleep(0.05)
            rc, out = s_client(port, "-tls1_3")
            check(negotiated(out) is not None, "no TLS on the port: %s" % tls_tail(out))
        finally:
            p.terminate()
            p.wait(10)
    cases.finish()


run_tests(globals())
