#!/usr/bin/python3
"""
The control listener over HTTPS (control.tls.cert / control.tls.key):

- `wssign request --control https://localhost:PORT --ca CERT` signs through
  it (also to https://127.0.0.1, which the certificate names); the HTTP API
  answers over TLS with keep-alive, and its tokens work as over HTTP.
- The client checks the server: without --ca (the system store) or with a
  certificate that names another host, nothing is sent and it says why.
- The policy is the signer listener's: TLS 1.0 and 1.1 refused, TLS 1.2
  with ECDHE + AEAD suites only, TLS 1.3, no h2 by ALPN, no client
  renegotiation, and no clear-text HTTP on the TLS port.
- SIGHUP reloads the certificate (same paths or new ones); a pair that
  does not load or match is refused and the old one stays; turning
  control.tls off needs a restart.
- Start-up and --check-config refuse a key readable by others, a pair that
  does not match, a certificate without its key, TLS on a unix: control
  socket; a "credential:NAME" key is read from $CREDENTIALS_DIRECTORY.
- TLS does not replace the token: a non-loopback control listener still
  needs controllers.http_api.token_file.
"""

import asyncio
import copy
import json
import os
import shutil
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_util import (CaseRunner, RawHTTP, connect_refused, expect_handshake,
                          expect_no_renegotiation, expect_refused, tls_client_context, tls_tail)
from ops_util import reload_expect
from wssd_test import (BIN, Daemon, b64, cert_fingerprint, check, check_eq, current_tmpdir,
                       free_port, make_cert, pem_fingerprint, run_program, run_tests, unb64,
                       verify, write_json, write_lines)
from wssign_util import run

TOKEN = "control-https-token-5f0c2a9e7d1b"
MESSAGE = b"invoice:42 over https"


def control_tls(name="control"):
    """A fresh certificate and key for the control listener: the control.tls section."""
    directory = os.path.join(current_tmpdir(), name)
    os.makedirs(directory, exist_ok=True)
    cert, key = make_cert(directory, name)
    return {"cert": cert, "key": key}


def token_config(tls):
    path = write_lines("tokens", [TOKEN])
    tok = write_lines("request.token", [TOKEN])
    return {"control": {"tls": tls},
            "controllers": {"http_api": {"enabled": True, "token_file": path}}}, tok


def request(control, pk, *args):
    return run(["request", "--control", control, "--key", pk, "--message", MESSAGE.decode()]
               + list(args), timeout=60)


def https_get(port, path, cafile, token=None, host="127.0.0.1"):
    with RawHTTP(port, tls=tls_client_context(cafile=cafile)) as c:
        r = c.request("GET", path, host=host, token=token)
    return r.status, r.json


def check_signed(rc, out, err, pk, what):
    check_eq(rc, 0, "%s: exit status (stderr %r)" % (what, err))
    body = json.loads(out)
    check_eq(body["public_key"], pk, "%s: public_key" % what)
    check_eq(unb64(body["message"]), MESSAGE, "%s: message" % what)
    check(verify(unb64(pk), MESSAGE, unb64(body["signature"])), "%s: signature verifies" % what)


async def test_request_over_https():
    tls = control_tls()
    cfg, tok = token_config(tls)
    async with Daemon(cfg) as d:
        check("control_tls=yes" in d.log_text(), "ready line says control_tls=yes")
        port = d.control_port
        async with d.signer() as s:
            pk = b64(s.pk)
            for url in ("https://localhost:%d" % port, "https://127.0.0.1:%d" % port,
                        "https://localhost:%d/" % port):
                rc, out, err = await asyncio.to_thread(request, url, pk, "--ca", tls["cert"],
                                                       "--token-file", tok)
                check_signed(rc, out, err, pk, url)
            # the token is still checked over TLS
            rc, out, err = await asyncio.to_thread(request, "https://localhost:%d" % port, pk,
                                                   "--ca", tls["cert"])
            check_eq(rc, 8, "no token over https (stderr %r)" % err)
            check("unauthorized" in err, "no token: %r" % err)
        # keep-alive over TLS: two answers on one connection
        with RawHTTP(port, tls=tls_client_context(cafile=tls["cert"])) as c:
            for _ in range(2):
                r = c.request("GET", "/healthz", host="localhost:%d" % port)
                check_eq((r.status, r.json), (200, {"status": "ok"}), "healthz over TLS")
            r = c.request("GET", "/v1/keys/" + "A" * 43, host="localhost", token=TOKEN)
            check_eq(r.status, 404, "key lookup over the same TLS connection")


async def test_client_checks_the_server():
    tls = control_tls()
    other = control_tls("other")
    os.remove(other["key"])
    elsewhere = os.path.join(current_tmpdir(), "elsewhere")
    os.makedirs(elsewhere)
    named = dict(zip(("cert", "key"), make_cert(elsewhere, "named", "DNS:signer.example.com")))
    async with Daemon({"control": {"tls": tls}}) as d, \
            Daemon({"control": {"tls": named}}, name="named") as n:
        pk = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
        cases = [
            (d, "https://localhost:%d" % d.control_port, [], "not trusted"),
            (d, "https://localhost:%d" % d.control_port, ["--ca", other["cert"]],
             "is it issued by the --ca file?"),
            (n, "https://localhost:%d" % n.control_port, ["--ca", named["cert"]],
             "does not name localhost"),
            (n, "https://127.0.0.1:%d" % n.control_port, ["--ca", named["cert"]],
             "does not name 127.0.0.1"),
            (d, "http://127.0.0.1:%d" % d.control_port, [], "control API at http://"),
        ]
        for daemon, url, extra, want in cases:
            mark = daemon.log_mark()
            rc, out, err = await asyncio.to_thread(request, url, pk, *extra)
            check_eq(rc, 9, "%s %r: exit status (stderr %r)" % (url, extra, err))
            check(want in err, "%s %r: expected %r in %r" % (url, extra, want, err))
            check_eq(out, "", "%s: stdout" % url)
            await asyncio.sleep(0.2)
            check("sign_outcome" not in daemon.log_text()[mark:],
                  "%s %r: a request reached the API" % (url, extra))
        # the right CA and a name the certificate lists: the daemon answers (no signer: 3)
        rc, _, err = await asyncio.to_thread(request, "https://localhost:%d" % d.control_port,
                                             pk, "--ca", tls["cert"])
        check_eq(rc, 3, "trusted server, no signer (stderr %r)" % err)


def test_tls_policy():
    cases = CaseRunner("control listener TLS")
    tls = control_tls()
    with Daemon({"control": {"tls": tls}}) as d:
        port = d.control_port
        for flag in ("-tls1", "-tls1_1"):
            with cases("%s refused (protocol_version alert)" % flag):
                out = expect_refused(port, flag, "-cipher", "DEFAULT@SECLEVEL=0")
                check("alert protocol version" in out or "alert number 70" in out,
                      "no protocol_version alert: %s" % tls_tail(out))
        for suite in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                      "ECDHE-ECDSA-NULL-SHA", "AECDH-AES128-SHA"):
            with cases("TLS 1.2 %s refused" % suite):
                expect_refused(port, "-tls1_2", "-cipher", suite + "@SECLEVEL=0")
        for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "ECDHE-ECDSA-CHACHA20-POLY1305"):
            with cases("TLS 1.2 %s accepted" % suite):
                got, _ = expect_handshake(port, "-tls1_2", "-cipher", suite)
                check_eq(got, ("TLSv1.2", suite), "negotiated")
        with cases("TLS 1.3 accepted"):
            got, _ = expect_handshake(port, "-tls1_3")
            check_eq(got[0], "TLSv1.3", "protocol")
        for offer, want in (("h2", "No ALPN negotiated"), ("h2,http/1.1", "http/1.1")):
            with cases("ALPN offer %s" % offer):
                _, out = expect_handshake(port, "-alpn", offer)
                check(want in out and "ALPN protocol: h2" not in out, tls_tail(out))
        with cases("client renegotiation refused"):
            expect_no_renegotiation(port)
        with cases("clear-text HTTP on the TLS port: no HTTP answer"):
            with RawHTTP(port) as c:
                c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                data = c.read_some(3.0)
                check(not data.startswith(b"HTTP/"), "clear-text answer: %r" % data[:60])
        with cases("the signer listener stays plain ws, the API answers over TLS"):
            check_eq(https_get(port, "/healthz", tls["cert"]), (200, {"status": "ok"}), "healthz")
            d.roundtrip()
    cases.finish()


def replace_file(src, dst, mode):
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    os.chmod(tmp, mode)
    os.replace(tmp, dst)


async def test_reload_control_certificate():
    tls = control_tls()
    async with Daemon({"control": {"tls": tls}}, tls=True) as d:
        port = d.control_port
        signer_fp = cert_fingerprint(d.port)
        old_fp = pem_fingerprint(tls["cert"])
        check_eq(cert_fingerprint(port), old_fp, "control certificate at start")
        trusted_old = os.path.join(current_tmpdir(), "old.crt")
        shutil.copyfile(tls["cert"], trusted_old)

        # a new pair at the same paths
        fresh = control_tls("fresh")
        replace_file(fresh["cert"], tls["cert"], 0o644)
        replace_file(fresh["key"], tls["key"], 0o600)
        line = await reload_expect(d, "ok")
        check("control_tls=reloaded" in line, "reload line %r" % line)
        new_fp = cert_fingerprint(port)
        check_eq(new_fp, pem_fingerprint(fresh["cert"]), "control certificate after the reload")
        check(new_fp != old_fp, "certificate unchanged")
        check_eq(cert_fingerprint(d.port), signer_fp, "the signer listener kept its certificate")
        check_eq(https_get(port, "/healthz", fresh["cert"]), (200, {"status": "ok"}),
                 "healthz with the new CA")

        # new paths
        moved = control_tls("moved")
        cfg = copy.deepcopy(d.config)
        cfg["control"]["tls"] = moved
        d.rewrite_config(cfg)
        await reload_expect(d, "ok")
        check_eq(cert_fingerprint(port), pem_fingerprint(moved["cert"]), "after new paths")

        # refused: a key that does not match, a key others can read, TLS off
        mismatched = copy.deepcopy(cfg)
        mismatched["control"]["tls"] = {"cert": moved["cert"], "key": fresh["key"]}
        loose = copy.deepcopy(cfg)
        loose_key = os.path.join(current_tmpdir(), "loose.key")
        replace_file(moved["key"], loose_key, 0o644)
        loose["control"]["tls"] = {"cert": moved["cert"], "key": loose_key}
        off = copy.deepcopy(cfg)
        del off["control"]["tls"]
        for what, bad, want in (("mismatched key", mismatched, "does not match"),
                                ("key mode 0644", loose, "control.tls.key"),
                                ("control.tls removed", off, "'control.tls' requires a restart")):
            d.rewrite_config(bad)
            line = await reload_expect(d, "refused")
            check(want in line, "%s: reload line %r lacks %r" % (what, line, want))
            check_eq(cert_fingerprint(port), pem_fingerprint(moved["cert"]),
                     "%s: the old certificate stays" % what)
        d.rewrite_config(cfg)
        await reload_expect(d, "ok")
        d.control_ssl_context = tls_client_context(cafile=moved["cert"])
        await d.aroundtrip()


def check_config(cfg, env=None):
    path = write_json(os.path.join(current_tmpdir(), "check.json"), cfg)
    e = dict(os.environ)
    e.pop("CREDENTIALS_DIRECTORY", None)
    e.update(env or {})
    rc, out, err = run_program([BIN, "-c", path, "--check-config"], env=e)
    return rc, out + err


def start_refused(cfg):
    """The daemon on cfg must exit 1 with one level=err line, leaving nothing listening."""
    path = write_json(os.path.join(current_tmpdir(), "refused.json"), cfg)
    rc, out, err = run_program([BIN, "-c", path], timeout=15)
    text = out + err
    check_eq(rc, 1, "exit status (%r)" % text)
    errs = [l for l in text.splitlines() if " level=err " in l]
    check_eq(len(errs), 1, "level=err lines in %r" % text)
    return errs[0]


def test_startup_and_check_config():
    tls = control_tls()
    other = control_tls("other")
    loose_key = os.path.join(current_tmpdir(), "loose.key")
    replace_file(tls["key"], loose_key, 0o644)
    cert_as_key = os.path.join(current_tmpdir(), "cert-as.key")
    replace_file(tls["cert"], cert_as_key, 0o600)
    base = {"listen": "127.0.0.1:0", "control": {"listen": "127.0.0.1:0"}}
    refused = [
        ("key readable by others", {"cert": tls["cert"], "key": loose_key},
         "control.tls.key %s has mode 0644" % loose_key),
        ("pair that does not match", {"cert": tls["cert"], "key": other["key"]},
         "does not match the certificate"),
        ("certificate without its key", {"cert": tls["cert"]},
         "control.tls.cert and control.tls.key must be set together"),
        ("missing certificate", {"cert": tls["cert"] + ".absent", "key": tls["key"]},
         "control.tls.cert"),
        ("a key given as the certificate", {"cert": tls["key"], "key": tls["key"]},
         "cannot load the certificate chain"),
        ("a certificate given as the key", {"cert": tls["cert"], "key": cert_as_key},
         "cannot load the private key"),
    ]
    for what, section, want in refused:
        cfg = copy.deepcopy(base)
        cfg["control"]["tls"] = section
        rc, text = check_config(cfg)
        check_eq(rc, 1, "--check-config, %s (%r)" % (what, text))
        check(want in text, "--check-config, %s: %r lacks %r" % (what, text, want))
        port = free_port()
        cfg["control"]["listen"] = "127.0.0.1:%d" % port
        line = start_refused(cfg)
        check(want in line, "start, %s: %r lacks %r" % (what, line, want))
        check(connect_refused("127.0.0.1", port), "%s: the control port listens" % what)

    unix = copy.deepcopy(base)
    unix["control"] = {"listen": "unix:" + os.path.join(current_tmpdir(), "c.sock"), "tls": tls}
    rc, text = check_config(unix)
    check_eq(rc, 1, "TLS on a unix: control socket (%r)" % text)
    check("control.tls needs a TCP control.listen" in text, text)

    # credential:NAME, as with tls.key
    creds = os.path.join(current_tmpdir(), "credentials")
    os.makedirs(creds)
    shutil.copyfile(tls["key"], os.path.join(creds, "control.key"))
    os.chmod(os.path.join(creds, "control.key"), 0o400)
    cred = copy.deepcopy(base)
    cred["control"]["tls"] = {"cert": tls["cert"], "key": "credential:control.key"}
    rc, text = check_config(cred, {"CREDENTIALS_DIRECTORY": creds})
    check_eq(rc, 0, "credential:control.key (%r)" % text)
    rc, text = check_config(cred)
    check_eq(rc, 1, "credential without CREDENTIALS_DIRECTORY (%r)" % text)
    check("key 'control.tls.key'" in text and "LoadCredential=control.key" in text, text)
    d = Daemon(cred, env={"CREDENTIALS_DIRECTORY": creds})
    with d:
        check_eq(https_get(d.control_port, "/healthz", tls["cert"]), (200, {"status": "ok"}),
                 "healthz with the key from a credential")

    # TLS does not stand in for the token off loopback
    public = copy.deepcopy(base)
    public["control"] = {"listen": "0.0.0.0:0", "tls": tls}
    rc, text = check_config(public)
    check_eq(rc, 1, "non-loopback HTTPS control listener without a token file (%r)" % text)
    check("token_file" in text and "not loopback-only" in text, text)
    public["controllers"] = {"http_api": {"token_file": write_lines("public.tokens", [TOKEN])}}
    rc, text = check_config(public)
    check_eq(rc, 0, "with a token file (%r)" % text)



def test_cleartext_control_listener_warns():
    tokens = write_lines("warn.tokens", [TOKEN])
    api = {"http_api": {"token_file": tokens}}
    with Daemon({"control": {"listen": "0.0.0.0:0"}, "controllers": api}) as d:
        check(d.log_count(r"level=warn event=control_cleartext control=0\.0\.0\.0:\d+ ") == 1,
              "warning for plain HTTP off loopback: %r" % d.log_text())
    with Daemon({"control": {"listen": "0.0.0.0:0", "tls": control_tls()}, "controllers": api},
                name="https") as d:
        check_eq(https_get(d.control_port, "/healthz", d.control_cafile),
                 (200, {"status": "ok"}), "healthz over TLS off loopback")
        check_eq(d.log_count(r"control_cleartext"), 0, "warning with control.tls")
    with Daemon({}, name="local") as d:
        check_eq(d.log_count(r"control_cleartext"), 0, "warning on loopback")


run_tests(globals())
