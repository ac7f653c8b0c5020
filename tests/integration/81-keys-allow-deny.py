#!/usr/bin/python3
"""
Which keys may connect: keys.deny_file and keys.allow_file (one base64 key a
line, '#' comments, mode 0644 is fine). A refused key gets an error frame
`denied` after its proof and the close code 4003, and counts as
wssignd_introductions_total{outcome="denied"}. Both files are re-read on
SIGHUP: a connected key that becomes refused is closed with 4003 and its
pending requests end connection_closed; a file that no longer loads refuses
the reload (file:line named) and the lists before it stay. DELETE
/v1/keys/{key} (scope admin) closes the key's connection with 4003 and
answers 204, its pending requests end connection_closed, and a key nobody
holds is 404 not_connected.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nacl.signing  # noqa: E402
from ops_util import reload_expect  # noqa: E402
from wssd_test import (Daemon, b64, b64url, check, check_eq, check_error_body,  # noqa: E402
                       current_tmpdir, metric, run_cli, run_tests, write_json, write_lines)

ADMIN = "ops-token-0123456789abcdef0123"
SIGN = "billing-token-0f1e2d3c4b5a6978"


def new_key():
    seed = os.urandom(32)
    return seed, bytes(nacl.signing.SigningKey(seed).verify_key)


def key_file(name, keys, extra=()):
    return write_lines(name, ["# keys, one a line"] + [b64(k) + "  # a signer" for k in keys]
                       + list(extra), mode=0o644)


async def refused(d, seed, what):
    """A signer with seed introduces itself and must be refused: denied, then 4003."""
    s = d.signer(seed=seed)
    await s.connect()
    await s.read_challenge()
    await s.send_json(s.introduction())
    frame = await s.recv_json()
    check_eq((frame.get("type"), frame.get("code")), ("error", "denied"), "%s: %r" % (what, frame))
    check_eq(await s.wait_closed(), 4003, "%s: close code" % what)


async def test_deny_and_allow_files():
    seed_a, key_a = new_key()
    seed_b, key_b = new_key()
    for keys, what in (({"deny_file": key_file("deny", [key_a])}, "on the deny list"),
                       ({"allow_file": key_file("allow", [key_b])}, "not on the allow list")):
        async with Daemon({"keys": keys}) as d:
            await refused(d, seed_a, "a key " + what)
            async with d.signer(seed=seed_b) as b:
                await d.check_sign(b, what="the other key, with a key " + what)
            check_eq(metric(d, "wssignd_introductions_total", outcome="denied"), 1.0,
                     "introductions refused as denied (%s)" % what)
            check(d.log_count(r"event=introduction_refused reason=denied") == 1, "the log line")


async def test_reload_closes_a_newly_refused_key():
    seed_a, key_a = new_key()
    seed_b, key_b = new_key()
    deny = key_file("deny", [])
    allow = key_file("allow", [key_a, key_b])
    async with Daemon({"keys": {"deny_file": deny, "allow_file": allow}}) as d:
        async with d.signer(seed=seed_a) as a, d.signer(seed=seed_b, policy="silent") as b:
            pending = asyncio.ensure_future(d.sign(key_b, b"held", timeout_ms=30000))
            await b.wait_request(0)
            key_file("deny", [key_b])
            await reload_expect(d, "ok")
            await b.expect_error("denied")
            check_eq(await b.wait_closed(), 4003, "the newly denied key's close code")
            status, body, _ = await pending
            check_error_body(status, body, 502, "connection_closed", "its pending request")
            await d.check_sign(a, what="the other key after the reload")
            await refused(d, seed_b, "the denied key reconnecting")

            # The allow list shrinks: a is closed too.
            key_file("deny", [])
            key_file("allow", [key_b])
            await reload_expect(d, "ok")
            check_eq(await a.wait_closed(), 4003, "a key dropped from the allow list")
            async with d.signer(seed=seed_b) as b2:
                await d.check_sign(b2, what="b, allowed again")
        check(d.log_count(r"event=key_disconnected key=\S+ conn=\d+ remote=\S+ reason=denied")
              == 2, "one line per key closed by a reload")


async def test_invalid_list_refuses_the_reload():
    seed_a, key_a = new_key()
    seed_b, key_b = new_key()
    deny = key_file("deny", [key_a])
    async with Daemon({"keys": {"deny_file": deny}}) as d:
        async with d.signer(seed=seed_b) as b:
            for lines, why in (([b64(key_b), "not-a-key"], "deny:3: not a public key"),
                               ([b64(key_b) + " " + b64(key_a)], "deny:2: one key per line")):
                write_lines(deny, ["# keys"] + lines, mode=0o644)
                line = await reload_expect(d, "refused")
                check("keys.deny_file" in line and why in line, "refusal names it: %r" % line)
                # The lists before stay: b stays connected and signs, a stays out.
                await d.check_sign(b, what="after a refused reload")
                await refused(d, seed_a, "the denied key after a refused reload")
            os.unlink(deny)
            line = await reload_expect(d, "refused")
            check("No such file" in line, "a missing list refuses the reload: %r" % line)
            await d.check_sign(b, what="after a reload without the file")

    # And the start: --check-config and the daemon itself name file and line.
    write_lines("deny", ["# keys", "AAAA"], mode=0o644)
    cfg = write_json(os.path.join(current_tmpdir(), "bad.json"),
                     {"listen": "127.0.0.1:0", "control": {"listen": "127.0.0.1:0"},
                      "keys": {"deny_file": deny}})
    for args in (["-c", cfg, "--check-config"], ["-c", cfg]):
        rc, out, err = run_cli(args)
        check_eq(rc, 1, "%r: exit status (stderr %r)" % (args, err))
        check("keys.deny_file %s:2: not a public key" % deny in err, "the message: %r" % err)


async def test_delete_disconnects():
    seed_a, key_a = new_key()
    seed_b, key_b = new_key()
    tokens = write_lines("tokens", ["ops %s scopes=admin,read" % ADMIN, "billing %s" % SIGN])
    async with Daemon({"controllers": {"http_api": {"token_file": tokens}}}) as d:
        async with d.signer(seed=seed_a, policy="silent") as a, d.signer(seed=seed_b) as b:
            pending = asyncio.ensure_future(d.sign(key_a, b"held", timeout_ms=30000, token=SIGN))
            await a.wait_request(0)
            status, body = await d.ahttp("DELETE", "/v1/keys/" + b64url(key_a), token=ADMIN)
            check_eq((status, body), (204, None), "DELETE of a connected key")
            await a.expect_error("denied")
            check_eq(await a.wait_closed(), 4003, "the disconnected signer's close code")
            status, body, _ = await pending
            check_error_body(status, body, 502, "connection_closed", "its pending request")
            status, body = await d.key_status(key_a, token=ADMIN)
            check_error_body(status, body, 404, "not_connected", "the key after DELETE")
            status, body = await d.ahttp("DELETE", "/v1/keys/" + b64url(key_a), token=ADMIN)
            check_error_body(status, body, 404, "not_connected", "DELETE of a key nobody holds")
            status, body = await d.ahttp("DELETE", "/v1/keys/AAAA", token=ADMIN)
            check_error_body(status, body, 400, "bad_request", "DELETE of a malformed key")
            await d.check_sign(b, token=SIGN, what="another key")
            # Not a ban: the key may come back (keys.deny_file keeps one out).
            async with d.signer(seed=seed_a) as a2:
                await d.check_sign(a2, token=SIGN, what="the disconnected key, back")


run_tests(globals())
