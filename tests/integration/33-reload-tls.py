#!/usr/bin/python3
"""
SIGHUP re-reads tls.cert and tls.key, at the same paths or at new ones: new
wss handshakes present the new certificate while signers connected before
keep working. A certificate that does not load, a key that does not match
it, a missing key file, or turning TLS off is refused with one
`level=err event=reload outcome=refused` line and the old certificate stays.
"""

import asyncio
import copy
import os
import shutil
import ssl
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_util import reload_expect
from wssd_test import (Daemon, Signer, cert_fingerprint, check, check_eq, current_tmpdir,
                       make_cert, pem_fingerprint, run_tests)


def new_pair(name):
    directory = os.path.join(current_tmpdir(), name)
    os.makedirs(directory, exist_ok=True)
    return make_cert(directory, name)


def replace_file(src, dst, mode=0o600):
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    os.chmod(tmp, mode)
    os.replace(tmp, dst)


def signer_for(d, cafile, **kw):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    return Signer(d.url(), ssl_context=ctx, **kw)


async def fingerprint(d):
    return await asyncio.to_thread(cert_fingerprint, d.port)


async def handshake_fails(d, cafile):
    s = signer_for(d, cafile)
    try:
        await s.connect()
    except (ssl.SSLError, OSError):
        return True
    except Exception as e:
        if isinstance(getattr(e, "__cause__", None), ssl.SSLError) or "CERTIFICATE" in str(e):
            return True
        raise
    await s.close()
    return False


async def test_new_certificate_same_paths():
    async with Daemon(tls=True) as d:
        cert, key = d.config["tls"]["cert"], d.config["tls"]["key"]
        old_fp = pem_fingerprint(cert)
        check_eq(await fingerprint(d), old_fp, "certificate presented at start")
        async with signer_for(d, cert) as before:
            await d.check_sign(before, what="before the reload")
            new_cert, new_key = new_pair("fresh")
            new_fp = pem_fingerprint(new_cert)
            check(new_fp != old_fp, "test set-up: the two certificates are equal")
            # the new pair at the old paths; the old trust anchor is kept aside
            old_copy = os.path.join(current_tmpdir(), "old.crt")
            shutil.copyfile(cert, old_copy)
            replace_file(new_cert, cert, 0o644)
            replace_file(new_key, key, 0o600)
            await reload_expect(d, "ok")
            check_eq(await fingerprint(d), new_fp, "certificate presented after the reload")
            check(before.is_open, "signer connected before the reload was closed (close %r)"
                  % before.close_code)
            await d.check_sign(before, what="signer connected before the reload")
            async with signer_for(d, new_cert) as after:
                await d.check_sign(after, what="signer connected after the reload")
            check(await handshake_fails(d, old_copy),
                  "a client trusting only the old certificate still completes a handshake")
            await d.check_sign(before, what="old signer at the end")


async def test_new_certificate_new_paths():
    async with Daemon(tls=True) as d:
        old_fp = pem_fingerprint(d.config["tls"]["cert"])
        async with signer_for(d, d.config["tls"]["cert"]) as before:
            new_cert, new_key = new_pair("moved")
            cfg = copy.deepcopy(d.config)
            cfg["tls"] = {"cert": new_cert, "key": new_key}
            d.rewrite_config(cfg)
            await reload_expect(d, "ok")
            new_fp = await fingerprint(d)
            check_eq(new_fp, pem_fingerprint(new_cert), "certificate after reloading new paths")
            check(new_fp != old_fp, "certificate unchanged after the reload")
            await d.check_sign(before, what="signer connected before the reload")
            async with signer_for(d, new_cert) as after:
                await d.check_sign(after, what="signer connected after the reload")


async def refused_keeps_old(d, before, what):
    await reload_expect(d, "refused")
    check(d.alive(), "%s: daemon died" % what)
    check(before.is_open, "%s: signer closed by the refused reload" % what)
    await d.check_sign(before, what="%s: signer connected before" % what)


async def test_unloadable_certificate_refused():
    async with Daemon(tls=True) as d:
        cert = d.config["tls"]["cert"]
        old_fp = pem_fingerprint(cert)
        trusted = os.path.join(current_tmpdir(), "trusted.crt")
        shutil.copyfile(cert, trusted)
        async with signer_for(d, trusted) as before:
            with open(cert, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n"
                        "-----END CERTIFICATE-----\n")
            await refused_keeps_old(d, before, "garbage certificate")
            check_eq(await fingerprint(d), old_fp, "certificate after a refused reload")
            async with signer_for(d, trusted) as again:
                await d.check_sign(again, what="new handshake after the refused reload")


async def test_mismatched_key_refused():
    async with Daemon(tls=True) as d:
        cert = d.config["tls"]["cert"]
        old_fp = pem_fingerprint(cert)
        trusted = os.path.join(current_tmpdir(), "trusted.crt")
        shutil.copyfile(cert, trusted)
        async with signer_for(d, trusted) as before:
            other_cert, _other_key = new_pair("other")
            replace_file(other_cert, cert, 0o644)     # new certificate, old key
            await refused_keeps_old(d, before, "certificate without its key")
            check_eq(await fingerprint(d), old_fp, "certificate after a refused reload")
            async with signer_for(d, trusted) as again:
                await d.check_sign(again, what="new handshake after the refused reload")


async def test_missing_key_refused():
    async with Daemon(tls=True) as d:
        cert = d.config["tls"]["cert"]
        old_fp = pem_fingerprint(cert)
        async with signer_for(d, cert) as before:
            cfg = copy.deepcopy(d.config)
            cfg["tls"]["key"] = os.path.join(current_tmpdir(), "no-such.key")
            d.rewrite_config(cfg)
            await refused_keeps_old(d, before, "missing key file")
            check_eq(await fingerprint(d), old_fp, "certificate after a refused reload")


async def test_tls_off_refused():
    async with Daemon(tls=True) as d:
        cert = d.config["tls"]["cert"]
        async with signer_for(d, cert) as before:
            cfg = copy.deepcopy(d.config)
            del cfg["tls"]
            d.rewrite_config(cfg)
            await refused_keeps_old(d, before, "TLS off")
            text = [l for l in d.log_lines() if "outcome=refused" in l][-1]
            check("requires a restart" in text, "refusal does not say it requires a restart: %r"
                  % text)
            async with signer_for(d, cert) as again:
                await d.check_sign(again, what="wss handshake after refusing TLS off")


run_tests(globals())
