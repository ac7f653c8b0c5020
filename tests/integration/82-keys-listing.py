#!/usr/bin/python3
"""
GET /v1/keys?limit=N&after=CURSOR lists the connected keys a page at a time,
in the order of their bytes, each with its connection time and remote
address; next_cursor continues it and is absent on the last page. With
2,500 connected keys: every page size (1,000, the largest; 100, the
default; 7) gives every key once, no gap, no repeat; and while keys arrive
and leave between pages, every key connected throughout is listed exactly
once and no key twice. limit outside 1..1000, a cursor that is not one, an
unknown or repeated argument: 400.
"""

import asyncio
import base64
import os
import resource
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import SignerSwarm, swarm_key  # noqa: E402
from wssd_test import (Daemon, b64, check, check_eq, check_error_body, now_ms,  # noqa: E402
                       run_tests)

KEYS = 2500


def raw_key(text):
    return base64.b64decode(text, validate=True)


async def list_all(d, limit=None, between=None, what=""):
    """Pages through GET /v1/keys; returns every entry in order. between() runs
    after each page (churn)."""
    entries, cursor, pages = [], None, 0
    while True:
        args = []
        if limit is not None:
            args.append("limit=%d" % limit)
        if cursor is not None:
            args.append("after=" + cursor)
        status, body = await d.ahttp("GET", "/v1/keys" + ("?" + "&".join(args) if args else ""))
        check_eq(status, 200, "%s: page %d (body %r)" % (what, pages, body))
        page = body["keys"]
        check(len(page) <= (limit or 100), "%s: page of %d" % (what, len(page)))
        check(set(body) <= {"keys", "next_cursor"}, "%s: fields %r" % (what, sorted(body)))
        keys = [raw_key(e["public_key"]) for e in page]
        check_eq(keys, sorted(keys), "%s: page %d in key order" % (what, pages))
        if entries and keys:
            check(raw_key(entries[-1]["public_key"]) < keys[0], "%s: pages in order" % what)
        entries += page
        pages += 1
        if between:
            await between()
        cursor = body.get("next_cursor")
        if cursor is None:
            return entries
        check_eq(len(page), limit or 100, "%s: a page before the last is full" % what)
        # The cursor is opaque, but it continues right after the last key listed.
        check(isinstance(cursor, str) and len(cursor) == 43, "%s: cursor %r" % (what, cursor))


async def start_swarm(d, tag):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    swarm = SignerSwarm([d.url()], tag, 0, KEYS).start()
    await asyncio.to_thread(swarm.wait_ready, 120)
    return swarm, {swarm_key(tag, n) for n in range(KEYS)}


CONFIG = {"limits": {"max_connections_per_ip": 100000}}


async def test_pages_through_2500_keys():
    async with Daemon(CONFIG) as d:
        swarm, keys = await start_swarm(d, "list%08x" % int.from_bytes(os.urandom(4), "big"))
        try:
            t0 = now_ms()
            for limit in (1000, None, 7):
                entries = await list_all(d, limit, what="limit=%s" % limit)
                listed = [raw_key(e["public_key"]) for e in entries]
                check_eq(len(listed), KEYS, "limit=%s: keys listed" % limit)
                check_eq(set(listed), keys, "limit=%s: the connected keys" % limit)
                for e in entries:
                    check_eq(sorted(e), ["connected_at", "public_key", "remote"],
                             "an entry's fields on a single node")
                    check_eq(e["remote"], "127.0.0.1", "remote address")
                    check(0 < t0 - e["connected_at"] < 600000, "connected_at %r" % e)
        finally:
            swarm.kill()


async def test_pages_stay_stable_under_churn():
    async with Daemon(CONFIG) as d:
        swarm, steady = await start_swarm(d, "churn%08x" % int.from_bytes(os.urandom(4), "big"))
        churners, gone = [], set()

        async def churn():
            # Two keys arrive, one of those that arrived earlier leaves.
            for _ in range(2):
                churners.append(await d.signer().start())
            if len(churners) > 2:
                s = churners.pop(0)
                gone.add(s.pk)
                await s.close()

        try:
            entries = await list_all(d, 100, churn, "under churn")
            listed = [raw_key(e["public_key"]) for e in entries]
            check_eq(len(listed), len(set(listed)), "no key listed twice")
            check(steady <= set(listed), "every key connected throughout is listed: %d missing"
                  % len(steady - set(listed)))
            extra = set(listed) - steady
            check(extra <= {s.pk for s in churners} | gone,
                  "only keys that were connected at some time are listed")
            check(len(gone) > 10, "keys left between pages: %d" % len(gone))
        finally:
            for s in churners:
                await s.close()
            swarm.kill()


async def test_refusals():
    async with Daemon() as d:
        async with d.signer() as s:
            for query in ("limit=0", "limit=1001", "limit=abc", "limit=", "limit=-1",
                          "limit=10&limit=10", "after=AAAA", "after=" + b64(s.pk) + "x",
                          "cursor=x", "limit=10&page=2", "after=x&after=y"):
                status, body = await d.ahttp("GET", "/v1/keys?" + query)
                check_error_body(status, body, 400, "bad_request", query)
            status, body = await d.ahttp("GET", "/v1/keys?limit=1000&after=")
            check_eq((status, len(body["keys"])), (200, 1), "after= with no cursor")
            # A cursor past every key: an empty last page.
            last = base64.urlsafe_b64encode(b"\xff" * 32).decode().rstrip("=")
            status, body = await d.ahttp("GET", "/v1/keys?after=" + last)
            check_eq((status, body), (200, {"keys": []}), "a cursor after the last key")
            status, body = await d.ahttp("POST", "/v1/keys", {})
            check_error_body(status, body, 405, "method_not_allowed", "POST /v1/keys")


run_tests(globals())
