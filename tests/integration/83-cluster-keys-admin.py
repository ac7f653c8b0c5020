#!/usr/bin/python3
"""
Disconnecting and listing keys across a cluster. DELETE /v1/keys/{key} on a
node that does not hold the key reaches the holder (a `kick` on the key's
channel, answered `kicked`, both tagged): 204, the signer is told `denied`
and closed with 4003, requests other nodes sent it end connection_closed; a
key nobody holds is 404. GET /v1/keys on any node lists the whole key space
(a `list` on the nodes channel, each node answering with its page), each
key with the node that holds it, paged without gap or repeat over 2,500
keys on three nodes, also while keys come and go between pages. Without
Redis, what needs another node is 503 cluster_unavailable; a key held on
the asked node is still disconnected there.
"""

import asyncio
import base64
import hashlib
import hmac
import os
import random
import resource
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nacl.signing  # noqa: E402
from cluster_util import Cluster, SignerSwarm, key_channel, node_channel, swarm_key  # noqa: E402
from wssd_test import (b64url, check, check_eq, check_error_body, run_tests,  # noqa: E402
                       scaled)

KEYS = 2500


def raw_key(text):
    return base64.b64decode(text, validate=True)


async def test_delete_reaches_the_holder():
    async with Cluster(3) as c:
        a = await c.connect(1, policy="silent")
        since = len(c.watch.messages)
        # A request from node2 goes through node1 to the signer.
        pending = asyncio.ensure_future(c.sign(2, a.pk, b"held", timeout_ms=30000))
        await a.wait_request(0, timeout=scaled(3))
        status, body = await c.node(3).ahttp("DELETE", "/v1/keys/" + b64url(a.pk))
        check_eq((status, body), (204, None), "DELETE on node3 of a key node1 holds")
        await a.expect_error("denied")
        check_eq(await a.wait_closed(scaled(2)), 4003, "the signer's close code")
        status, body, _ = await pending
        check_error_body(status, body, 502, "connection_closed", "node2's request")
        kick = await c.watch.wait(since=since, channel=key_channel(a.pk), t="kick",
                                  from_="node3")
        kicked = await c.watch.wait(since=since, channel=node_channel("node3"), t="kicked",
                                    from_="node1")
        check_eq(kicked["msg"]["id"], kick["msg"]["id"], "the answer names the kick")
        check_eq(kicked["msg"]["ok"], True, "node1 held the key")
        for m in (kick, kicked):
            tag = hmac.new(c.key, m["payload"][32:], hashlib.sha512).digest()[:32]
            check_eq(m["payload"][:32], tag, "%s: tagged under the cluster key" % m["msg"]["t"])
        await c.wait_holders(a.pk, 0)
        for j in c.numbers():
            status, body = await c.key_status(j, a.pk)
            check_error_body(status, body, 404, "not_connected", "the key on node%d" % j)
        status, body = await c.node(2).ahttp("DELETE", "/v1/keys/" + b64url(a.pk))
        check_error_body(status, body, 404, "not_connected", "DELETE of a key nobody holds")
        check("event=key_disconnect key=" in c.log(3) and "outcome=ok node=node1" in c.log(3),
              "node3's line names the holder")
        check("event=key_disconnected" in c.log(1) and "reason=requested" in c.log(1),
              "node1 closed it")

        # A key held on the asked node: closed there, without asking the others.
        b = await c.connect(2)
        status, body = await c.node(2).ahttp("DELETE", "/v1/keys/" + b64url(b.pk))
        check_eq(status, 204, "DELETE on the holding node")
        check_eq(await b.wait_closed(scaled(2)), 4003, "its close code")


async def list_all(c, j, limit, between=None, what=""):
    """Pages through GET /v1/keys on node j; returns the entries."""
    entries, cursor = [], None
    while True:
        q = "?limit=%d" % limit + ("&after=" + cursor if cursor else "")
        status, body = await c.node(j).ahttp("GET", "/v1/keys" + q)
        check_eq(status, 200, "%s: GET /v1/keys%s on node%d (body %r)" % (what, q, j, body))
        keys = [raw_key(e["public_key"]) for e in body["keys"]]
        check_eq(keys, sorted(keys), "%s: a page in key order" % what)
        if entries and keys:
            check(raw_key(entries[-1]["public_key"]) < keys[0], "%s: pages in order" % what)
        entries += body["keys"]
        if between:
            await between()
        cursor = body.get("next_cursor")
        if cursor is None:
            return entries
        check_eq(len(keys), limit, "%s: a page before the last is full" % what)


async def test_listing_the_whole_key_space():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tag = "clist%08x" % int.from_bytes(os.urandom(4), "big")
    config = {"limits": {"max_connections_per_ip": 100000}}
    async with Cluster(3, config=config, watch=False) as c:
        swarm = SignerSwarm([c.node(i).url() for i in c.numbers()], tag, 0, KEYS).start()
        churners, gone = [], set()
        rng = random.Random(tag)

        async def churn():
            for _ in range(2):
                churners.append(await c.signer(rng.choice([1, 2, 3])).start())
            if len(churners) > 2:
                s = churners.pop(0)
                gone.add(s.pk)
                await s.close()

        try:
            await asyncio.to_thread(swarm.wait_ready, 120)
            keys = {swarm_key(tag, n) for n in range(KEYS)}
            for j, limit in ((2, 1000), (3, 100), (1, 333)):
                entries = await list_all(c, j, limit, what="node%d limit=%d" % (j, limit))
                listed = [raw_key(e["public_key"]) for e in entries]
                check_eq(len(listed), KEYS, "node%d limit=%d: keys listed" % (j, limit))
                check_eq(set(listed), keys, "node%d limit=%d: the cluster's keys" % (j, limit))
                nodes = {e["node"] for e in entries}
                check_eq(nodes, {"node1", "node2", "node3"}, "the holding nodes")
            # The node each entry names is the one a lookup names.
            for e in random.sample(entries, 20):
                status, body = await c.key_status(2, raw_key(e["public_key"]))
                check_eq((status, body.get("node")), (200, e["node"]), "lookup of %r" % e)

            entries = await list_all(c, 1, 100, churn, "under churn")
            listed = [raw_key(e["public_key"]) for e in entries]
            check_eq(len(listed), len(set(listed)), "no key listed twice under churn")
            check(keys <= set(listed), "every key connected throughout is listed: %d missing"
                  % len(keys - set(listed)))
            check(set(listed) - keys <= {s.pk for s in churners} | gone,
                  "only keys connected at some time are listed")
        finally:
            for s in churners:
                await s.close()
            swarm.kill()


async def test_without_redis():
    async with Cluster(2) as c:
        a = await c.connect(1)
        b = await c.connect(2)
        await asyncio.to_thread(c.redis.stop)
        for j in c.numbers():
            while (await c.metrics(j)).value("wssignd_cluster_up") != 0.0:
                await asyncio.sleep(0.05)
        status, body = await c.node(1).ahttp("GET", "/v1/keys")
        check_error_body(status, body, 503, "cluster_unavailable", "a listing without Redis")
        status, body = await c.node(1).ahttp("DELETE", "/v1/keys/" + b64url(b.pk))
        check_error_body(status, body, 503, "cluster_unavailable",
                         "DELETE of another node's key without Redis")
        nobody = bytes(nacl.signing.SigningKey(os.urandom(32)).verify_key)
        status, body = await c.node(1).ahttp("DELETE", "/v1/keys/" + b64url(nobody))
        check_error_body(status, body, 503, "cluster_unavailable",
                         "DELETE of an unknown key without Redis")
        status, body = await c.node(1).ahttp("DELETE", "/v1/keys/" + b64url(a.pk))
        check_eq(status, 204, "DELETE of a key held on the asked node, without Redis")
        check_eq(await a.wait_closed(scaled(2)), 4003, "its close code")


run_tests(globals())
