#!/usr/bin/python3
"""
Named tokens with scopes, key limits and rates (controllers.http_api.token_file
lines "NAME TOKEN scopes=... keys=... rate=N/s burst=M"; a bare token keeps
full access as "token-N"):

- each scope opens its endpoints only (sign: POST /v1/sign; read: GET
  /v1/keys and /v1/keys/{key}; metrics: GET /metrics; admin: DELETE
  /v1/keys/{key}); a missing one is 403 forbidden;
- a token limited to keys gets 403 forbidden_key for any other key, connected
  or not (never 404: it cannot probe presence), and lists only its keys;
- a token with a rate gets 429 with Retry-After when over it, and signs again
  after waiting that long;
- the token's name is in every audit line and in
  wssignd_requester_sign_requests_total; no token appears in the log or the
  metrics;
- tokens (names, scopes) are re-read on SIGHUP: a revoked one gets 401;
- malformed lines refuse the start and the reload, naming file and line but
  never the token, and never let a request through.
"""

import asyncio
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nacl.signing  # noqa: E402
from ops_util import reload_expect  # noqa: E402
from wssd_test import (Daemon, b64, b64url, check, check_eq, check_error_body,  # noqa: E402
                       current_tmpdir, metric, run_cli, run_tests, scrape, unb64, verify,
                       write_json, write_lines)

SIGN = "billing-token-0f1e2d3c4b5a6978"
READ = "monitor-token-8899aabbccddeeff"
READ_A = "reader-a-token-1234567890abcdef"
ADMIN = "ops-token-0123456789abcdef0123"
BARE = "bare-token-fedcba9876543210"
TOKENS = (SIGN, READ, READ_A, ADMIN, BARE)
AUDIT_RE = re.compile(r"event=sign_outcome request_id=(\S+) key=(\S+) outcome=(\S+) .*"
                      r"requester=(\"[^\"]*\"|\S+)")


def new_key():
    seed = os.urandom(32)
    return seed, bytes(nacl.signing.SigningKey(seed).verify_key)


def tokens_file(key_a):
    return write_lines("tokens", [
        "# name  token  options",
        "billing %s scopes=sign keys=%s" % (SIGN, b64(key_a)),
        "monitor %s scopes=read,metrics" % READ,
        "reader-a %s scopes=read keys=%s" % (READ_A, b64(key_a)),
        "ops %s scopes=admin" % ADMIN,
        BARE,
    ])


def config(path):
    return {"controllers": {"http_api": {"token_file": path}}}


async def expect(d, method, path, token, status, code=None, body=None, what=""):
    st, resp = await d.ahttp(method, path, body, token=token)
    label = "%s %s as %s%s" % (method, path[:24], token[:8] if token else "-", what)
    if code:
        check_error_body(st, resp, status, code, label)
    else:
        check_eq(st, status, "%s (body %r)" % (label, resp))
    return resp


def sign_body(pk, msg=b"scoped"):
    return {"public_key": b64(pk), "message": b64(msg)}


async def test_scopes_and_key_limits():
    seed_a, key_a = new_key()
    seed_b, key_b = new_key()
    _, key_c = new_key()  # never connected
    async with Daemon(config(tokens_file(key_a))) as d:
        async with d.signer(seed=seed_a) as a, d.signer(seed=seed_b) as b:
            # sign: its key only, and 403 (not 404) for the others, connected or not
            resp = await expect(d, "POST", "/v1/sign", SIGN, 200, body=sign_body(key_a))
            check(verify(key_a, b"scoped", unb64(resp["signature"])), "billing's signature")
            await expect(d, "POST", "/v1/sign", SIGN, 403, "forbidden_key", sign_body(key_b))
            await expect(d, "POST", "/v1/sign", SIGN, 403, "forbidden_key", sign_body(key_c))
            check_eq(len(b.requests), 0, "requests that reached the key billing may not use")
            for method, path in (("GET", "/v1/keys"), ("GET", "/v1/keys/" + b64url(key_a)),
                                 ("GET", "/metrics"), ("DELETE", "/v1/keys/" + b64url(key_a))):
                await expect(d, method, path, SIGN, 403, "forbidden")

            # read and metrics
            await expect(d, "POST", "/v1/sign", READ, 403, "forbidden", sign_body(key_a))
            await expect(d, "DELETE", "/v1/keys/" + b64url(key_b), READ, 403, "forbidden")
            await expect(d, "GET", "/v1/keys/" + b64url(key_b), READ, 200)
            await expect(d, "GET", "/v1/keys/" + b64url(key_c), READ, 404, "not_connected")
            listed = await expect(d, "GET", "/v1/keys", READ, 200)
            check_eq(sorted(k["public_key"] for k in listed["keys"]),
                     sorted([b64(key_a), b64(key_b)]), "monitor lists every key")
            st, text = await d.ahttp("GET", "/metrics", token=READ)
            check_eq(st, 200, "metrics with the metrics scope")

            # read limited to key A: B is 403 although connected, C 403 although not
            await expect(d, "GET", "/v1/keys/" + b64url(key_a), READ_A, 200)
            await expect(d, "GET", "/v1/keys/" + b64url(key_b), READ_A, 403, "forbidden_key")
            await expect(d, "GET", "/v1/keys/" + b64url(key_c), READ_A, 403, "forbidden_key")
            listed = await expect(d, "GET", "/v1/keys", READ_A, 200)
            check_eq([k["public_key"] for k in listed["keys"]], [b64(key_a)],
                     "reader-a lists its key only")
            check("next_cursor" not in listed, "no next page: %r" % listed)

            # admin: the key is disconnected, nothing else
            await expect(d, "GET", "/v1/keys/" + b64url(key_b), ADMIN, 403, "forbidden")
            await expect(d, "DELETE", "/v1/keys/" + b64url(key_b), ADMIN, 204)
            check_eq(await b.wait_closed(), 4003, "the disconnected signer's close code")

            # a bare token is token-N with every scope
            await expect(d, "POST", "/v1/sign", BARE, 200, body=sign_body(key_a))
            await expect(d, "GET", "/metrics", BARE, 200)

        log = d.log_text()
        audits = AUDIT_RE.findall(log)
        requesters = [(outcome, who) for _, _, outcome, who in audits]
        check(("ok", '"http_api billing 127.0.0.1"') in requesters, "billing's ok: %r" % audits)
        check_eq(requesters.count(("forbidden_key", '"http_api billing 127.0.0.1"')), 2,
                 "billing's forbidden_key audit lines (%r)" % audits)
        check(("forbidden", '"http_api monitor 127.0.0.1"') in requesters,
              "monitor's refused sign request is audited: %r" % audits)
        check(("ok", '"http_api token-6 127.0.0.1"') in requesters, "the bare token's name")
        check(re.search(r'event=key_disconnect key=\S+ outcome=ok node=- '
                        r'requester="http_api ops 127.0.0.1"', log), "the disconnection's line")
        sc = scrape(d, READ)
        check_eq(sc.value("wssignd_requester_sign_requests_total", requester="billing",
                          outcome="ok"), 1.0, "billing's ok")
        check_eq(sc.value("wssignd_requester_sign_requests_total", requester="billing",
                          outcome="forbidden_key"), 2.0, "billing's forbidden_key")
        check_eq(sc.value("wssignd_requester_sign_requests_total", requester="monitor",
                          outcome="forbidden"), 1.0, "monitor's forbidden")
        metrics_text = d.http("GET", "/metrics", token=READ, raw=True)[2].decode()
        for t in TOKENS:
            check(t not in log, "a token in the log")
            check(t not in metrics_text, "a token in the metrics")


async def test_rate_limit_then_recovery():
    seed, key = new_key()
    fast = "fast-token-0123456789abcdef"
    path = write_lines("tokens", ["fast %s rate=1/s burst=3" % fast,
                                  "other other-token-0123456789abc"])
    async with Daemon(config(path)) as d:
        async with d.signer(seed=seed):
            answers = []
            for i in range(30):
                st, resp, _, headers = await d.ahttp("POST", "/v1/sign", sign_body(key), fast,
                                                     raw=True)
                answers.append(st)
                if st == 429:
                    break
            check_eq(answers[:3], [200, 200, 200], "the burst is served")
            check_eq(answers[-1], 429, "over the rate: %r" % answers)
            check_error_body(st, resp, 429, "too_many_requests", "over the rate")
            retry = headers.get("retry-after")
            check(retry is not None and retry.isdigit() and int(retry) >= 1,
                  "Retry-After: %r" % (retry,))
            # Another token is not limited by it.
            for _ in range(5):
                await expect(d, "POST", "/v1/sign", "other-token-0123456789abc", 200,
                             body=sign_body(key))
            # After Retry-After seconds the token signs again.
            await asyncio.sleep(int(retry) + 0.2)
            await expect(d, "POST", "/v1/sign", fast, 200, body=sign_body(key),
                         what=" after waiting Retry-After")
            # Every endpoint counts: /metrics and lookups take from the same bucket.
            statuses = [(await d.ahttp("GET", "/metrics", token=fast))[0] for _ in range(10)]
            check(429 in statuses, "GET /metrics over the rate: %r" % statuses)
        audits = AUDIT_RE.findall(d.log_text())
        check(any(o == "too_many_requests" and w == '"http_api fast 127.0.0.1"'
                  for _, _, o, w in audits), "the 429 is audited with the token's name")


async def test_reload_revokes_and_rescopes():
    seed, key = new_key()
    path = write_lines("tokens", ["monitor %s scopes=read" % READ, "billing %s" % SIGN])
    async with Daemon(config(path)) as d:
        async with d.signer(seed=seed):
            await expect(d, "POST", "/v1/sign", READ, 403, "forbidden", sign_body(key))
            await expect(d, "POST", "/v1/sign", SIGN, 200, body=sign_body(key))
            # billing is revoked; monitor gains sign
            write_lines(path, ["monitor %s scopes=read,sign" % READ])
            await reload_expect(d, "ok")
            await expect(d, "POST", "/v1/sign", SIGN, 401, "unauthorized", sign_body(key),
                         " (revoked)")
            await expect(d, "GET", "/v1/keys", SIGN, 401, "unauthorized", what=" (revoked)")
            await expect(d, "POST", "/v1/sign", READ, 200, body=sign_body(key),
                         what=" (rescoped)")
            # billing comes back under another name: a new name in the audit line
            write_lines(path, ["monitor %s scopes=read,sign" % READ, "invoices %s" % SIGN])
            await reload_expect(d, "ok")
            await expect(d, "POST", "/v1/sign", SIGN, 200, body=sign_body(key))
        check('requester="http_api invoices 127.0.0.1"' in d.log_text(), "the new name")


# Each malformed line, with a token that must never show in a message or let a request in.
HOSTILE = "hostile-token-0123456789abcdef"
MALFORMED = [
    ("a name with a slash", "bad/name %s" % HOSTILE, "a line is a token, or a name"),
    ("unknown scope", "x %s scopes=sign,root" % HOSTILE, "scopes= takes"),
    ("empty scopes", "x %s scopes=" % HOSTILE, "scopes= takes"),
    ("bad key", "x %s keys=%s,AAAA" % (HOSTILE, b64(bytes(32))), "keys= item 2"),
    ("bad rate", "x %s rate=10/h" % HOSTILE, "rate= takes"),
    ("burst without rate", "x %s burst=5" % HOSTILE, "burst= needs rate="),
    ("unknown option", "x %s admin=yes" % HOSTILE, "field 3 is not an option"),
    ("a word after the token", "x %s everything" % HOSTILE, "field 3 is not an option"),
    ("option twice", "x %s rate=1/s rate=2/s" % HOSTILE, "given twice"),
    ("short token", "x short-token", "16 to 512 characters"),
    ("the same token twice", "y %s" % SIGN, "the same token as line 1"),
    ("a name twice", "billing %s" % HOSTILE, "the name is already used on line 1"),
]


def test_malformed_lines_refuse_the_start():
    for what, line, why in MALFORMED:
        path = write_lines("tokens", ["billing %s" % SIGN, line])
        cfg = write_json(os.path.join(current_tmpdir(), "bad.json"),
                         dict(config(path), listen="127.0.0.1:0",
                              control={"listen": "127.0.0.1:0"}))
        rc, out, err = run_cli(["-c", cfg])
        check_eq(rc, 1, "%s: exit status (stderr %r)" % (what, err))
        check("token file %s:2: " % path in err, "%s: file and line in %r" % (what, err))
        check(why in err, "%s: reason %r in %r" % (what, why, err))
        check(HOSTILE not in err + out and SIGN not in err + out,
              "%s: a token in the message %r" % (what, err))
        rc, out, err = run_cli(["-c", cfg, "--check-config"])
        check_eq(rc, 1, "%s: --check-config" % what)


async def test_malformed_lines_refuse_the_reload():
    seed, key = new_key()
    path = write_lines("tokens", ["billing %s" % SIGN])
    async with Daemon(config(path)) as d:
        async with d.signer(seed=seed) as s:
            for what, line, why in MALFORMED:
                write_lines(path, ["billing %s" % SIGN, line])
                mark = d.log_mark()
                refused = await reload_expect(d, "refused")
                check(why in refused and ":2: " in refused, "%s: %r" % (what, refused))
                check(HOSTILE not in d.log_text()[mark:], "%s: the token in the log" % what)
                # nothing of the refused file is in force: its token gets 401 ...
                await expect(d, "POST", "/v1/sign", HOSTILE, 401, "unauthorized",
                             sign_body(key), " (%s)" % what)
                # ... and the tokens before it keep working
                await expect(d, "POST", "/v1/sign", SIGN, 200, body=sign_body(key),
                             what=" (%s)" % what)
            check_eq(sum(1 for r in s.requests if unb64(r["message"]) == b"scoped"),
                     len(MALFORMED), "only billing's requests reached the signer")


run_tests(globals())
