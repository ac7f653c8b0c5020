"""
The signer of the tests, on the websockets library: Signer (challenge,
introduction, then a loop answering sign_request frames by policy),
SignerProcess (the same in a child process a test can kill), and
reset_connection() (a TCP RST instead of a FIN).
"""

import argparse
import asyncio
import json
import os
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse

import nacl.signing
import websockets
import websockets.exceptions

from .base import (HERE, PROTOCOL, PYTHON, TestFailure, b64, check, check_eq, die_with_parent,
                   intro_frame, intro_proof, is_uuid, track, unb64, with_fields)

POLICIES = ("sign", "reject", "bad_signature", "sign_other", "short_signature", "silent")


class Signer:
    """
    A signer connection. After start() (connect + introduce) a background
    task reads every frame: sign_request frames are recorded in .requests and
    answered according to .policy; every other frame goes to .frames and to
    an inbox read with next_frame(). Before start(), use connect(),
    recv_json() and the send_* methods for raw access.

    policy: "sign" | "reject" | "bad_signature" | "sign_other" |
            "short_signature" | "silent" | async callable(signer, request)
    source: the local address to connect from (any 127.x.y.z)
    """

    def __init__(self, url, seed=None, host=None, ssl_context=None, policy="sign",
                 reason="declined by the test signer", source=None):
        self.url = url
        self.seed = seed if seed is not None else os.urandom(32)
        self.sk = nacl.signing.SigningKey(self.seed)
        self.pk = bytes(self.sk.verify_key)
        self.host = host if host is not None else urllib.parse.urlsplit(url).hostname
        self.ssl_context = ssl_context
        self.policy = policy
        self.reason = reason
        self.source = source
        self.ws = None
        self.challenge = None
        self.introduced = None
        self.frames = []       # every non-sign_request frame received by the loop
        self.requests = []     # every sign_request frame received
        self.sent = []         # every frame sent by the policy
        self.policy_errors = []
        self.inbox = asyncio.Queue()
        self._task = None

    # -- connection

    async def connect(self, open_timeout=5):
        kw = {"open_timeout": open_timeout, "ping_interval": None, "max_size": 2 ** 24}
        if self.url.startswith("wss:"):
            kw["ssl"] = self.ssl_context
        if self.source:
            kw["local_addr"] = (self.source, 0)
        self.ws = await websockets.connect(self.url, **kw)
        return self

    async def recv_raw(self, timeout=5.0):
        """Next frame (str or bytes) when the loop is not running."""
        return await asyncio.wait_for(self.ws.recv(), timeout)

    async def recv_json(self, timeout=5.0):
        raw = await self.recv_raw(timeout)
        if isinstance(raw, bytes):
            raise TestFailure("expected a text frame, got binary %r" % raw[:64])
        try:
            return json.loads(raw)
        except ValueError:
            raise TestFailure("frame is not JSON: %r" % raw[:200])

    async def read_challenge(self, timeout=5.0):
        ch = await self.recv_json(timeout)
        check_eq(ch.get("type"), "challenge", "first frame type (%r)" % ch)
        check_eq(ch.get("protocol"), PROTOCOL, "challenge protocol")
        nonce = ch.get("nonce")
        check(isinstance(nonce, str), "challenge nonce is not a string: %r" % ch)
        check_eq(len(unb64(nonce)), 32, "challenge nonce length")
        self.challenge = ch
        return ch

    def proof(self, nonce_b64, host=None, sk=None):
        return intro_proof(sk or self.sk, nonce_b64, self.host if host is None else host)

    def introduction(self, nonce_b64=None, **override):
        """The introduction frame as a dict. Keyword arguments replace fields;
        a value of None removes the field."""
        nonce_b64 = nonce_b64 if nonce_b64 is not None else self.challenge["nonce"]
        return with_fields(intro_frame(self.sk, nonce_b64, self.host), override)

    async def introduce(self, frame=None, run_loop=True):
        """Reads the challenge (if not yet read), sends the introduction, and
        expects "introduced". Starts the answering loop unless run_loop=False."""
        if self.challenge is None:
            await self.read_challenge()
        await self.send_json(frame or self.introduction())
        resp = await self.recv_json()
        if resp.get("type") != "introduced":
            raise TestFailure("introduction refused: %r" % resp)
        check_eq(resp.get("public_key"), b64(self.pk), "introduced.public_key")
        check(is_uuid(resp.get("session_id")), "introduced.session_id is not a UUID: %r" % resp)
        self.introduced = resp
        if run_loop:
            self.run_loop()
        return resp

    async def start(self, open_timeout=5):
        await self.connect(open_timeout)
        await self.introduce()
        return self

    def run_loop(self):
        self._task = asyncio.get_running_loop().create_task(self._loop())

    # -- raw sending

    async def send_text(self, text):
        await self.ws.send(text)

    async def send_bytes(self, data):
        await self.ws.send(bytes(data))

    async def send_json(self, obj):
        await self.ws.send(json.dumps(obj))

    # -- answering loop

    async def _loop(self):
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    frame = {"_binary": raw}
                else:
                    try:
                        frame = json.loads(raw)
                    except ValueError:
                        frame = {"_unparsable": raw}
                if isinstance(frame, dict) and frame.get("type") == "sign_request":
                    self.requests.append(frame)
                    try:
                        await self.handle(frame)
                    except websockets.exceptions.ConnectionClosed:
                        raise
                    except Exception as e:  # kept for the test to inspect
                        self.policy_errors.append(e)
                else:
                    self.frames.append(frame)
                    self.inbox.put_nowait(frame)
        except websockets.exceptions.ConnectionClosed:
            pass

    def response(self, req, message=None, signature=None):
        msg = unb64(req["message"])
        if signature is None:
            signature = self.sk.sign(msg if message is None else message).signature
        return {"type": "sign_response", "request_id": req["request_id"],
                "message": req["message"] if message is None else b64(message),
                "signature": b64(signature)}

    def rejection(self, req, reason=None):
        return {"type": "sign_reject", "request_id": req["request_id"],
                "reason": self.reason if reason is None else reason}

    async def answer(self, req, frame):
        self.sent.append(frame)
        await self.send_json(frame)

    async def handle(self, req):
        policy = self.policy
        if callable(policy):
            await policy(self, req)
            return
        msg = unb64(req["message"])
        if policy == "sign":
            await self.answer(req, self.response(req))
        elif policy == "reject":
            await self.answer(req, self.rejection(req))
        elif policy == "bad_signature":
            sig = bytearray(self.sk.sign(msg).signature)
            sig[0] ^= 0x01
            await self.answer(req, self.response(req, signature=bytes(sig)))
        elif policy == "sign_other":
            other = msg + b" (altered)"
            await self.answer(req, self.response(req, message=other))
        elif policy == "short_signature":
            sig = self.sk.sign(msg).signature[:63]
            await self.answer(req, self.response(req, signature=sig))
        elif policy == "silent":
            pass
        else:
            raise ValueError("unknown policy %r" % (policy,))

    # -- waiting

    async def next_frame(self, timeout=5.0):
        """Next non-sign_request frame from the loop (error, cancel, ...)."""
        try:
            return await asyncio.wait_for(self.inbox.get(), timeout)
        except asyncio.TimeoutError:
            raise TestFailure("no frame within %.1f s (frames so far: %r)"
                              % (timeout, self.frames))

    async def expect_frame(self, ftype, timeout=5.0, **fields):
        """Next non-sign_request frame; checks its type and the given fields."""
        f = await self.next_frame(timeout)
        if f.get("type") != ftype:
            raise TestFailure("expected a %r frame, got %r" % (ftype, f))
        for k, v in fields.items():
            if f.get(k) != v:
                raise TestFailure("%s frame: expected %s=%r, got %r" % (ftype, k, v, f))
        return f

    async def expect_error(self, code, timeout=5.0, request_id=None):
        """Next frame must be {"type":"error","code":code,...}; if request_id is
        given and the frame carries one, they must be equal."""
        f = await self.next_frame(timeout)
        if f.get("type") != "error" or f.get("code") != code:
            raise TestFailure("expected error frame code %r, got %r" % (code, f))
        check(isinstance(f.get("message"), str), "error frame without a message: %r" % f)
        if request_id is not None and "request_id" in f:
            check_eq(f["request_id"], request_id, "error.request_id")
        return f

    async def no_frame(self, within=0.3):
        """Asserts no non-sign_request frame arrives within `within` seconds."""
        try:
            f = await asyncio.wait_for(self.inbox.get(), within)
        except asyncio.TimeoutError:
            return
        raise TestFailure("unexpected frame: %r" % (f,))

    async def wait_request(self, index=0, timeout=5.0):
        """The index-th sign_request received (waits for it)."""
        deadline = time.monotonic() + timeout
        while len(self.requests) <= index:
            if time.monotonic() > deadline:
                raise TestFailure("sign_request #%d not received within %.1f s"
                                  % (index, timeout))
            if self._task is not None and self._task.done():
                raise TestFailure("connection closed (code %r) before sign_request #%d"
                                  % (self.close_code, index))
            await asyncio.sleep(0.01)
        return self.requests[index]

    @property
    def close_code(self):
        return self.ws.close_code if self.ws is not None else None

    async def wait_closed(self, timeout=5.0):
        """Waits for the connection to close; returns the close code received."""
        try:
            await asyncio.wait_for(self.ws.wait_closed(), timeout)
        except asyncio.TimeoutError:
            raise TestFailure("connection still open after %.1f s" % timeout)
        if self._task is not None:
            await asyncio.wait_for(self._task, 2)
        return self.ws.close_code

    async def recv_until_closed(self, timeout=5.0):
        """Without the loop: reads frames until the close; returns (frames, code)."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("connection still open after %.1f s (frames: %r)"
                                  % (timeout, frames))
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except websockets.exceptions.ConnectionClosed:
                return frames, self.ws.close_code
            except asyncio.TimeoutError:
                continue
            try:
                frames.append(json.loads(raw) if isinstance(raw, str) else {"_binary": raw})
            except ValueError:
                frames.append({"_unparsable": raw})

    @property
    def is_open(self):
        return self.ws is not None and self.ws.open

    def reset(self):
        """Ends the connection with a TCP RST instead of a FIN."""
        reset_connection(self.ws)

    async def close(self):
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 3)
            except Exception:
                pass
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 3)
            except Exception:
                pass

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.close()
        return False


def reset_connection(ws):
    """Ends a websockets connection with a TCP RST instead of a FIN."""
    sock = ws.transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    ws.transport.abort()


def readline_within(stream, timeout):
    """One line from a child's pipe, or None if none came within timeout
    (read in a watchdog thread: a pipe read cannot time out by itself)."""
    out = []
    t = threading.Thread(target=lambda: out.append(stream.readline()), daemon=True)
    t.start()
    t.join(timeout)
    return out[0] if out else None


# ---------------------------------------------------------------------------
# A signer in its own process

class SignerProcess:
    """Runs `wssd_test.py signer` in a child process so a test can kill -9 it."""

    def __init__(self, url, seed=None, policy="silent", cafile=None, host=None):
        self.seed = seed if seed is not None else os.urandom(32)
        self.pk = bytes(nacl.signing.SigningKey(self.seed).verify_key)
        args = [PYTHON, os.path.join(HERE, "wssd_test.py"), "signer", "--url", url,
                "--seed", self.seed.hex(), "--policy", policy]
        if cafile:
            args += ["--cafile", cafile]
        if host:
            args += ["--host", host]
        self.proc = track(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           stdin=subprocess.DEVNULL, preexec_fn=die_with_parent))
        self.lines = []

    def _readline(self, timeout):
        line = readline_within(self.proc.stdout, timeout)
        if line is None:
            return None
        line = line.decode().strip()
        self.lines.append(line)
        return line

    async def wait_line(self, prefix, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            line = await asyncio.to_thread(self._readline, left)
            if line is None:
                break
            if line == "" and self.proc.poll() is not None:
                break
            if line.startswith(prefix):
                return line
        err = b""
        if self.proc.poll() is not None:
            err = self.proc.stderr.read()
        raise TestFailure("signer process: no %r line within %.0f s (lines %r, stderr %r)"
                          % (prefix, timeout, self.lines, err.decode("utf-8", "replace")))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def terminate(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def signer_main(argv):
    """`wssd_test.py signer`: prints "introduced <session>", then "sign_request
    <id>" for each request, and "closed <code>" at the end."""
    ap = argparse.ArgumentParser(prog="wssd_test.py signer")
    ap.add_argument("--url", required=True)
    ap.add_argument("--seed", required=True)
    ap.add_argument("--policy", default="silent", choices=POLICIES)
    ap.add_argument("--cafile")
    ap.add_argument("--host")
    a = ap.parse_args(argv)
    ctx = ssl.create_default_context(cafile=a.cafile) if a.cafile else None

    async def announce(signer, req):
        print("sign_request %s" % req["request_id"], flush=True)
        if a.policy != "silent":
            signer.policy = a.policy
            await signer.handle(req)
            signer.policy = announce

    s = Signer(a.url, seed=bytes.fromhex(a.seed), host=a.host, ssl_context=ctx, policy=announce)
    await s.start()
    print("introduced %s" % s.introduced.get("session_id"), flush=True)
    await s._task
    print("closed %s" % s.close_code, flush=True)
