#!/usr/bin/python3
"""
The plan's minimal clients: introduction.proof "none" and listen_path.

MinimalClient below is written from the minimal protocol alone: it connects
to the configured path, sends {"type":"introduction","public_key":"<b64>"},
and answers each {"type":"sign_request","message","request_id"} with
{"type":"sign_response","request_id","message","signature"}. Any other
frame type fails it.

- With "proof": "none" and a non-default listen_path it signs through the
  daemon (several requests), and receives no challenge, no introduced and
  no cancel frame, even when a request times out under it; its late answer
  ends quietly. The daemon logs proof=none.
- An introduction carrying host or proof is refused in that mode
  (bad_field: there is no challenge to prove), and the link stays open.
- The weakness, as documented: anyone who knows the public key takes the
  key over (the holder is closed with 4001), receives its requests and can
  reject them, but cannot sign falsely: a bad signature is invalid_signature.
- The default ("required") and "optional" modes still refuse the minimal
  introduction (missing_field host) after sending their challenge, and
  the key never becomes reachable.
- Across a cluster: a minimal client on one node signs for requests made
  on another, and a request that times out there sends it no cancel.
- listen_path: only that path upgrades (the default /v1/ws answers 404);
  a reload moves it for new connections; bad values are refused by
  --check-config.
"""

import asyncio
import copy
import json
import os
import sys

import nacl.signing
import websockets

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import Cluster
from hostile_util import refused_upgrade
from ops_util import reload_expect
from wssd_test import (BIN, Daemon, Signer, TestFailure, b64, check, check_eq, current_tmpdir,
                       run_program, run_tests, unb64, write_json)

PATH = "/plan/signer"
NONE = {"introduction": {"proof": "none"}, "listen_path": PATH}


class MinimalClient:
    """
    A signer that knows three frames. policy(message) returns "sign", "hold"
    (answer only when release() is called) or "forge" (a wrong signature).
    Frames of any other type are kept in `violations` and end the client.
    """

    def __init__(self, url, seed=None, policy=None):
        self.url = url
        self.sk = nacl.signing.SigningKey(seed or os.urandom(32))
        self.pk = bytes(self.sk.verify_key)
        self.policy = policy or (lambda message: "sign")
        self.requests = []
        self.held = []
        self.violations = []
        self.ws = None
        self.task = None

    async def start(self):
        self.ws = await websockets.connect(self.url, ping_interval=None, open_timeout=5)
        await self.ws.send(json.dumps({"type": "introduction", "public_key": b64(self.pk)}))
        self.task = asyncio.get_running_loop().create_task(self._loop())
        return self

    async def _loop(self):
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("type") != "sign_request":
                    self.violations.append(frame)
                    await self.ws.close()
                    return
                self.requests.append(frame)
                action = self.policy(unb64(frame["message"]))
                if action == "hold":
                    self.held.append(frame)
                else:
                    await self.answer(frame, forge=action == "forge")
        except websockets.ConnectionClosed:
            pass

    async def answer(self, frame, forge=False):
        message = unb64(frame["message"])
        sig = self.sk.sign(message).signature
        if forge:
            sig = bytes(64)
        await self.ws.send(json.dumps({"type": "sign_response", "request_id": frame["request_id"],
                                       "message": frame["message"], "signature": b64(sig)}))

    async def release(self):
        while self.held:
            await self.answer(self.held.pop(0))

    async def stop(self):
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            await self.task

    def close_code(self):
        return self.ws.close_code

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()


def minimal(d, **kw):
    return MinimalClient(d.url(path=PATH), **kw)


async def wait_connected(d, pk, want=True):
    for _ in range(100):
        status, _ = await d.key_status(pk)
        if (status == 200) == want:
            return
        await asyncio.sleep(0.05)
    raise TestFailure("key %sconnected after 5 s" % ("not " if want else "still "))


async def test_minimal_client_signs():
    async with Daemon(NONE) as d:
        async with minimal(d) as c:
            await wait_connected(d, c.pk)
            await d.await_log(r"event=introduced key=\S+ .*proof=none", 2.0)
            for i in range(3):
                msg = b"minimal client %d " % i + os.urandom(8)
                await d.check_sign(c, message=msg, what="minimal round trip %d" % i)
            check_eq(len(c.requests), 3, "sign_requests received")
            check_eq(c.violations, [], "frames other than sign_request")
            check(c.close_code() is None, "the connection is open")


async def test_no_cancel_and_a_late_answer():
    async with Daemon(NONE) as d:
        async with minimal(d, policy=lambda m: "hold" if m.startswith(b"slow") else "sign") as c:
            await wait_connected(d, c.pk)
            status, body, _ = await d.sign(c.pk, b"slow one", timeout_ms=300)
            check_eq((status, body["error"]["code"]), (504, "timeout"), "held request")
            cancel_task = asyncio.create_task(d.sign(c.pk, b"slow two", timeout_ms=10000))
            for _ in range(100):
                if len(c.held) == 2:
                    break
                await asyncio.sleep(0.02)
            check_eq(len(c.held), 2, "both requests reached the client")
            cancel_task.cancel()      # the requester leaves: the daemon cancels the request
            await d.await_log(r"event=sign_outcome .*outcome=cancelled", 5.0)
            await asyncio.sleep(0.3)
            check_eq(c.violations, [], "frames other than sign_request after timeout and cancel")
            await c.release()         # both answers are late now
            await asyncio.sleep(0.3)
            check_eq(c.violations, [], "an error frame for the late answers")
            await d.check_sign(c, what="after the late answers")
            check_eq(c.violations, [], "frames other than sign_request")


async def raw_client(url):
    return await websockets.connect(url, ping_interval=None, open_timeout=5)


async def no_frame(ws, within=0.5):
    try:
        raw = await asyncio.wait_for(ws.recv(), within)
    except asyncio.TimeoutError:
        return
    raise TestFailure("unexpected frame %r" % raw)


async def test_full_introduction_refused_in_none_mode():
    async with Daemon(NONE) as d:
        sk = nacl.signing.SigningKey.generate()
        pk = bytes(sk.verify_key)
        ws = await raw_client(d.url(path=PATH))
        await no_frame(ws)                     # no challenge
        for extra in ({"host": "127.0.0.1"}, {"host": "127.0.0.1", "proof": b64(bytes(64))},
                      {"proof": b64(bytes(64))}):
            intro = {"type": "introduction", "public_key": b64(pk)}
            intro.update(extra)
            await ws.send(json.dumps(intro))
            err = json.loads(await asyncio.wait_for(ws.recv(), 5))
            check_eq((err["type"], err["code"]), ("error", "bad_field"), "refusal of %r" % extra)
            check("no challenge" in err["message"], err["message"])
        status, _ = await d.key_status(pk)
        check_eq(status, 404, "refused key is not connected")
        # the connection stayed open (three refusals are the limit): a minimal one is taken
        await ws.send(json.dumps({"type": "introduction", "public_key": b64(pk)}))
        await no_frame(ws)                     # no "introduced"
        await wait_connected(d, pk)
        await ws.close()


async def test_impostor_takes_the_key_but_cannot_sign():
    async with Daemon(NONE) as d:
        seed = os.urandom(32)
        holder = await minimal(d, seed=seed).start()
        await wait_connected(d, holder.pk)
        # the impostor knows the public key only; answers with a wrong signature
        impostor = MinimalClient(d.url(path=PATH), policy=lambda m: "forge")
        impostor.pk = holder.pk
        await impostor.start()
        await asyncio.sleep(0.3)
        await holder.task
        check_eq(holder.close_code(), 4001, "the holder is superseded")
        check_eq([v.get("code") for v in holder.violations], ["superseded"],
                 "the holder was told (an error frame before the close)")
        msg = b"secret order 7"
        status, body, _ = await d.sign(holder.pk, msg, timeout_ms=5000)
        check_eq((status, body["error"]["code"]), (502, "invalid_signature"),
                 "the impostor's forged answer")
        check_eq(unb64(impostor.requests[0]["message"]), msg,
                 "the impostor saw the message (the confidentiality loss)")
        await impostor.stop()
        # the holder reconnects and signs again
        async with minimal(d, seed=seed) as back:
            await wait_connected(d, back.pk)
            await d.check_sign(back, what="holder back")


async def test_default_modes_refuse_the_minimal_introduction():
    for cfg in ({}, {"introduction": {"proof": "optional"}}):
        async with Daemon(cfg) as d:
            sk = nacl.signing.SigningKey.generate()
            pk = bytes(sk.verify_key)
            ws = await raw_client(d.url())
            first = json.loads(await asyncio.wait_for(ws.recv(), 5))
            check_eq(first["type"], "challenge", "%r: first frame (a strict minimal client "
                     "fails on it)" % cfg)
            await ws.send(json.dumps({"type": "introduction", "public_key": b64(pk)}))
            err = json.loads(await asyncio.wait_for(ws.recv(), 5))
            check_eq((err["type"], err["code"]), ("error", "missing_field"), "%r: refusal" % cfg)
            check("'host'" in err["message"], err["message"])
            status, body, _ = await d.sign(pk, b"x", timeout_ms=1000)
            check_eq((status, body["error"]["code"]), (404, "not_connected"), "%r: key" % cfg)
            check(d.log_count(r"proof=none") == 0, "proof=none in the log")
            await ws.close()
            # the MinimalClient itself fails there
            c = await MinimalClient(d.url()).start()
            await asyncio.wait_for(c.task, 5)
            check_eq(c.violations[0]["type"], "challenge", "%r: what the client choked on" % cfg)


async def test_minimal_client_across_a_cluster():
    async with Cluster(2, config=NONE) as cl:
        hold = lambda m: "hold" if m.startswith(b"slow") else "sign"  # noqa: E731
        async with MinimalClient(cl.node(1).url(path=PATH), policy=hold) as c:
            await wait_connected(cl.node(2), c.pk)
            await cl.node(2).check_sign(c, what="asked on node2, held on node1")
            status, body, _ = await cl.node(2).sign(c.pk, b"slow", timeout_ms=300)
            check_eq((status, body["error"]["code"]), (504, "timeout"), "held on node1")
            await asyncio.sleep(0.5)
            check_eq(c.violations, [], "frames other than sign_request across the cluster")
            await c.release()
            await asyncio.sleep(0.3)
            check_eq(c.violations, [], "an error frame for the late answer")
            await cl.node(2).check_sign(c, what="after the late answer")


async def test_listen_path():
    cfg = {"listen_path": "/signer"}
    async with Daemon(cfg) as d:
        for path in ("/v1/ws", "/signer/", "/Signer", "/signer/x", "/"):
            status = await asyncio.to_thread(refused_upgrade, d.port, path=path)
            check_eq(status, 404, "upgrade on %s" % path)
        async with Signer(d.url(path="/signer")) as s:   # proof required, at the new path
            await d.check_sign(s, what="signer on /signer")
            new = copy.deepcopy(d.config)
            new["listen_path"] = "/v2/ws"
            d.rewrite_config(new)
            await reload_expect(d, "ok")
            await d.check_sign(s, what="connected before the path moved")
        status = await asyncio.to_thread(refused_upgrade, d.port, path="/signer")
        check_eq(status, 404, "old path after the reload")
        async with Signer(d.url(path="/v2/ws")) as s:
            await d.check_sign(s, what="signer on the new path")

    for bad, want in (("ws", "must start with '/'"), ("/a b", "has a character outside"),
                      ("/a/../b", "'.' or '..' segment"), ("/a//b", "empty segment"),
                      ("/" + "x" * 128, "1 to 128 characters"), ("/ws?x", "character outside")):
        path = write_json(os.path.join(current_tmpdir(), "bad.json"), {"listen_path": bad})
        rc, out, err = run_program([BIN, "-c", path, "--check-config"])
        check_eq(rc, 1, "--check-config listen_path %r (%r)" % (bad, out + err))
        check("key 'listen_path'" in out + err and want in out + err,
              "%r: %r" % (bad, out + err))


run_tests(globals())
