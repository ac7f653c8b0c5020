#!/usr/bin/python3
"""
Forged cluster traffic: whoever can write to Redis but lacks the secret.
A `redis-cli PUBLISH` of a forged sign request on a key's channel reaches no
signer; a forged answer (even one carrying a valid signature), "closed" or
"gone" on a node's channel completes no request; each is dropped and counted
in wssignd_cluster_dropped_messages_total{reason="bad_tag"} and logged. A
replay of a captured genuine message is dropped too ({reason="replay"}),
also by a node restarted since. The same request sealed with the right key
does reach the signer: the drops come from the tag and the sequence number,
not from a mistake in the forged message.
"""

import asyncio
import json
import os
import sys
import time
import uuid

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import (TAG_BYTES, Cluster, cluster_key, key_channel,  # noqa: E402
                          node_channel, seal)
from wssd_test import b64, check, check_eq, run_tests, scaled, unb64, verify  # noqa: E402


def sign_request_frame(rid, message, exp):
    return json.dumps({"type": "sign_request", "request_id": rid, "message": b64(message),
                       "expires_at": exp}, separators=(",", ":"))


def forged_variants(key, obj):
    """The message obj with a tag that is not the cluster's, five ways."""
    good = seal(key, obj)
    text = good[TAG_BYTES:]
    flipped = bytearray(good)
    flipped[-3] ^= 0x01  # the text changed after tagging
    return {
        "random tag": os.urandom(TAG_BYTES) + text,
        "zero tag": bytes(TAG_BYTES) + text,
        "another secret's tag": seal(cluster_key(os.urandom(32)), obj),
        "no tag": text,
        "text changed after tagging": bytes(flipped),
    }


async def dropped(c, j, reason):
    return (await c.metrics(j)).value("wssignd_cluster_dropped_messages_total", reason=reason)


async def publish(c, channel, payload, receivers=1):
    got = await asyncio.to_thread(c.redis.cli_publish, channel, payload)
    check_eq(got, receivers, "subscribers of %s" % channel)


async def test_forged_request_reaches_no_signer():
    async with Cluster(2) as c:
        s = await c.connect(1)
        before = await dropped(c, 1, "bad_tag")
        exp = int(time.time() * 1000) + 60000
        rid = str(uuid.uuid4())
        variants = forged_variants(c.key, {
            "v": 1, "t": "req", "from": "node2", "seq": int(time.time() * 1e6) + 10 ** 9,
            "k": s.pk.hex(), "id": rid, "exp": exp,
            "frame": sign_request_frame(rid, b"sign this for me", exp)})
        for payload in variants.values():
            await publish(c, key_channel(s.pk), payload)
        await asyncio.sleep(0.5)
        check_eq(s.requests, [], "sign_request frames from forged messages")
        check_eq(await dropped(c, 1, "bad_tag") - before, float(len(variants)),
                 "node1's bad_tag drops")
        check("event=cluster_message_dropped node=node1 reason=bad_tag" in c.log(1),
              "node1 logs the drop")

        # The same message under the cluster's key is heard: the tag made the difference.
        rid = str(uuid.uuid4())
        await publish(c, key_channel(s.pk), seal(c.key, {
            "v": 1, "t": "req", "from": "node9", "seq": 1, "k": s.pk.hex(), "id": rid,
            "exp": exp, "frame": sign_request_frame(rid, b"sealed right", exp)}))
        req = await s.wait_request(0, timeout=scaled(3))
        check_eq(req["request_id"], rid, "the correctly sealed request's id")

        # Genuine traffic is unaffected.
        await c.check_sign(2, s, what="a genuine cross-node request")
        check_eq(len(s.requests), 2, "sign_request frames at the signer")


async def test_forged_answers_complete_no_request():
    async with Cluster(2) as c:
        s = await c.connect(1, policy="silent")
        message = b"only the signer completes this"
        task = asyncio.ensure_future(c.sign(2, s.pk, message, timeout_ms=20000))
        req = await s.wait_request(0, timeout=scaled(3))
        rid = req["request_id"]
        before = await dropped(c, 2, "bad_tag")
        seq = int(time.time() * 1e6) + 10 ** 9
        base = {"v": 1, "from": "node1", "seq": seq, "k": s.pk.hex(), "id": rid}
        # An answer carrying the signer's own valid signature, and the messages that
        # would end the request if node2 believed them.
        messages = [dict(base, t="ans", frame=json.dumps(s.response(req))),
                    dict(base, t="ans", frame=json.dumps(s.response(req, signature=bytes(64)))),
                    dict(base, t="closed"), dict(base, t="gone"), dict(base, t="moved")]
        count = 0
        for obj in messages:
            for what, payload in forged_variants(c.key, obj).items():
                await publish(c, node_channel("node2"), payload)
                count += 1
        await asyncio.sleep(0.5)
        check(not task.done(), "a forged message ended the request: %r"
              % (task.result() if task.done() else None,))
        check_eq(await dropped(c, 2, "bad_tag") - before, float(count), "node2's bad_tag drops")
        check_eq(len(s.requests), 1, "sign_request frames at the signer (no re-send)")
        await s.send_json(s.response(req))
        status, body, _ = await task
        check_eq(status, 200, "the signer's own answer (body %r)" % (body,))
        check(verify(s.pk, message, unb64(body["signature"])), "signature verifies")


async def test_replayed_messages_are_dropped():
    async with Cluster(2) as c:
        seed = os.urandom(32)
        s = await c.connect(1, seed=seed)
        since = len(c.watch.messages)
        status, body, _ = await c.sign(2, s.pk, b"captured", timeout_ms=60000)
        check_eq(status, 200, "the genuine request (body %r)" % (body,))
        rid = body["request_id"]
        req = (await c.watch.wait(since=since, t="req", id=rid))["payload"]
        ans = (await c.watch.wait(since=since, t="ans", id=rid))["payload"]
        intro = c.watch.find(channel=key_channel(s.pk), t="intro", from_="node1")[0]["payload"]

        replays = {1: await dropped(c, 1, "replay"), 2: await dropped(c, 2, "replay")}
        await publish(c, key_channel(s.pk), req)     # node1 would forward it again
        await publish(c, node_channel("node2"), ans)  # node2 would take it as an answer
        await publish(c, key_channel(s.pk), intro)   # node1 would think it was superseded
        await asyncio.sleep(0.5)
        check_eq(len(s.requests), 1, "sign_request frames at the signer after the replays")
        check(s.is_open, "the signer is still connected")
        check_eq(await dropped(c, 1, "replay") - replays[1], 2.0, "node1's replay drops")
        check_eq(await dropped(c, 2, "replay") - replays[2], 1.0, "node2's replay drops")

        # node1 restarts (no memory of sequence numbers); once it has heard node2
        # again, the captured request is still a replay, though not yet expired.
        await s.close()
        c.kill(1)
        await c.restart(1)
        await c.wait_nodes(2)
        s2 = await c.connect(1, seed=seed)
        before = await dropped(c, 1, "replay")
        await publish(c, key_channel(s2.pk), req)
        await asyncio.sleep(0.5)
        check_eq(s2.requests, [], "sign_request frames at the new connection after the replay")
        check_eq(await dropped(c, 1, "replay") - before, 1.0, "restarted node1's replay drops")
        await c.check_sign(2, s2, what="a genuine request after the replays")


run_tests(globals())
