#!/usr/bin/python3
"""
The TLS files as systemd credentials (LoadCredential=), as far as a machine
without systemd as PID 1 allows: the daemon gets CREDENTIALS_DIRECTORY in its
environment, as systemd sets it, pointing at a directory laid out as systemd
lays it out (mode 0500, files 0400), and the configuration names the files
"credential:tls.crt" and "credential:tls.key".

- The daemon starts, serves wss:// with that certificate, and a signer
  completes a round trip; the key exists nowhere else.
- A reload re-reads the credential files (new handshakes present a new
  certificate put there).
- Without CREDENTIALS_DIRECTORY, both --check-config and start-up fail with
  status 1 and an error naming the key and the LoadCredential= line to add;
  a credential file that is missing stops start-up naming tls.key.
"""

import asyncio
import os
import shutil
import ssl
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (BIN, Daemon, cert_fingerprint, check, check_eq, current_tmpdir,
                       make_cert, pem_fingerprint, run_program, run_tests, write_json)

CREDENTIAL_TLS = {"cert": "credential:tls.crt", "key": "credential:tls.key"}


def credentials_dir(cert, key):
    """A directory as systemd makes $CREDENTIALS_DIRECTORY: the files 0400, the
    directory 0500. The source key is removed, so only the copy is left."""
    creds = os.path.join(current_tmpdir(), "credentials")
    os.makedirs(creds)
    for src, name in ((cert, "tls.crt"), (key, "tls.key")):
        shutil.copyfile(src, os.path.join(creds, name))
        os.chmod(os.path.join(creds, name), 0o400)
    os.chmod(creds, 0o500)
    os.remove(key)
    return creds


def credential_daemon(env_dir=True):
    """A Daemon (not started) whose TLS files are credentials; returns
    (daemon, credentials directory, CA file for clients)."""
    d = Daemon(tls=True)
    cafile = os.path.join(current_tmpdir(), "ca.crt")
    shutil.copyfile(d.config["tls"]["cert"], cafile)
    creds = credentials_dir(d.config["tls"]["cert"], d.config["tls"]["key"])
    d.config["tls"] = dict(CREDENTIAL_TLS)
    write_json(d.config_path, d.config)
    d.env["CREDENTIALS_DIRECTORY"] = creds if env_dir else None
    return d, creds, cafile


def cli(args, env):
    e = dict(os.environ)
    e.pop("CREDENTIALS_DIRECTORY", None)
    e.update(env)
    rc, _, err = run_program([BIN] + args, timeout=20, env=e)
    return rc, err


async def roundtrip(d, cafile, what):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    await d.aroundtrip(ssl_context=ctx, timeout_ms=10000, what=what)


async def test_tls_from_credentials():
    d, creds, cafile = credential_daemon()
    rc, err = cli(["-c", d.config_path, "--check-config"], {"CREDENTIALS_DIRECTORY": creds})
    check_eq(rc, 0, "--check-config with the credentials (stderr %r)" % err)
    async with d:
        check_eq(await asyncio.to_thread(cert_fingerprint, d.port), pem_fingerprint(cafile),
                 "certificate presented")
        await roundtrip(d, cafile, "wss with credential files")


async def test_reload_rereads_credentials():
    d, creds, cafile = credential_daemon()
    async with d:
        new_cert, new_key = make_cert(os.path.join(current_tmpdir()), "renewed")
        # systemd replaces the copies on a restart; here the files are swapped in place
        os.chmod(creds, 0o700)
        for src, name in ((new_cert, "tls.crt"), (new_key, "tls.key")):
            dst = os.path.join(creds, name)
            shutil.copyfile(src, dst + ".new")
            os.chmod(dst + ".new", 0o400)
            os.replace(dst + ".new", dst)
        os.chmod(creds, 0o500)
        mark = d.log_mark()
        d.reload()
        await d.await_log(r"event=reload outcome=ok", 5.0, since=mark)
        check_eq(await asyncio.to_thread(cert_fingerprint, d.port), pem_fingerprint(new_cert),
                 "certificate presented after the reload")
        await roundtrip(d, new_cert, "after the reload")


def test_no_credentials_directory():
    d, creds, _ = credential_daemon(env_dir=False)
    for args in (["--check-config"], []):
        rc, err = cli(["-c", d.config_path] + args, {})
        check_eq(rc, 1, "exit status of %r without CREDENTIALS_DIRECTORY (stderr %r)"
                 % (args, err))
        check("key 'tls.cert'" in err or "key 'tls.key'" in err, "error names the key: %r" % err)
        check("CREDENTIALS_DIRECTORY" in err and "LoadCredential=tls." in err,
              "error says what to add: %r" % err)


def test_missing_credential_file():
    d, creds, _ = credential_daemon()
    os.chmod(creds, 0o700)
    os.remove(os.path.join(creds, "tls.key"))
    rc, err = cli(["-c", d.config_path], {"CREDENTIALS_DIRECTORY": creds})
    check_eq(rc, 1, "exit status with the key credential missing (stderr %r)" % err)
    check("tls.key" in err and os.path.join(creds, "tls.key") in err,
          "error names the setting and the path: %r" % err)


run_tests(globals())
