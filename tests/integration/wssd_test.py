#!/usr/bin/python3
"""
Shared harness for the wssignd end-to-end tests.

Each tests/integration/NN-area-case.py script imports this module, defines
`async def test_xxx()` (or plain `def test_xxx()`) functions, and ends with
`run_tests(globals())`. The tests drive the real daemon binary: $WSSIGND_BIN,
or <repo>/build/wssignd when the variable is unset.

Pieces:
  free_port()            a free TCP port on 127.0.0.1
  Daemon(config, ...)    writes a config file, runs the daemon, waits for
                         `event=ready`, stops it with SIGTERM (and checks that
                         it was still alive and exited 0)
  Signer(url, ...)       an asyncio WebSocket signer: challenge, introduction,
                         then a loop answering sign_request frames by policy
  SignerProcess(...)     the same signer in its own OS process (killable)
  http(), ahttp()        one HTTP request to the control API
  run_tests(globals())   the runner

Run this file directly as `wssd_test.py signer --url URL --seed HEX` to get a
signer process that prints "introduced" when ready and "sign_request <id>"
for each request it receives.
"""

import argparse
import asyncio
import base64
import http.client as httpclient
import inspect
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

import nacl.exceptions
import nacl.signing
import websockets
import websockets.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("WSSIGND_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("WSSIGND_BIN") or os.path.join(REPO, "build", "wssignd")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

INTRO_DOMAIN = b"wssign-introduction-v1"
PROTOCOL = "wssign.v1"

# A command (shell words) put in front of every daemon command line, e.g.
# "valgrind --leak-check=full --error-exitcode=99"; its exit status replaces
# the daemon's, so a wrapper that reports errors through it fails the test.
WRAPPER = shlex.split(os.environ.get("WSSIGND_TEST_WRAPPER", ""))
# How much slower than natively the daemon runs (under valgrind about 10-20):
# the harness's own time limits grow by this factor, and tests use scaled().
TIME_SCALE = float(os.environ.get("WSSIGND_TEST_TIME_SCALE") or "1") or 1.0

READY_TIMEOUT = 10.0 * TIME_SCALE
STOP_TIMEOUT = 5.0 * TIME_SCALE
TEST_TIMEOUT = 120.0 * TIME_SCALE

_UUID4_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class TestFailure(AssertionError):
    pass


# ---------------------------------------------------------------------------
# Small helpers

def b64(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64url(data: bytes, padding=False) -> str:
    s = base64.urlsafe_b64encode(data).decode("ascii")
    return s if padding else s.rstrip("=")


def unb64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def is_uuid4(s) -> bool:
    return isinstance(s, str) and bool(_UUID4_RE.match(s))


def is_uuid(s) -> bool:
    return isinstance(s, str) and bool(_UUID_RE.match(s))


def scaled(seconds: float) -> float:
    """A time limit stretched by WSSIGND_TEST_TIME_SCALE."""
    return seconds * TIME_SCALE


def now_ms() -> int:
    return int(time.time() * 1000)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Independent Ed25519 check of a detached signature with PyNaCl."""
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
        return True
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False


def check(cond, what="check failed"):
    if not cond:
        raise TestFailure(what)


def check_eq(got, want, what=""):
    if got != want:
        note = ""
        if got == 1006 and "close" in what:
            note = " (1006: the connection ended without a WebSocket close frame)"
        raise TestFailure("%s: expected %r, got %r%s" % (what or "value", want, got, note))


def check_error_body(status, body, want_status, want_code, what=""):
    """Checks an HTTP error answer: status and {"error":{"code":...,"message":...}}."""
    label = what or want_code
    if status != want_status:
        raise TestFailure("%s: expected HTTP %d %s, got %r body=%r"
                          % (label, want_status, want_code, status, body))
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        raise TestFailure("%s: expected an {\"error\":{...}} body, got %r" % (label, body))
    err = body["error"]
    if err.get("code") != want_code:
        raise TestFailure("%s: expected error.code %r, got %r (body=%r)"
                          % (label, want_code, err.get("code"), body))
    if not isinstance(err.get("message"), str):
        raise TestFailure("%s: error.message missing or not a string: %r" % (label, body))
    return err


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def die_with_parent():
    """
    preexec_fn for child processes: SIGKILL them if the test process dies
    (a ctest timeout kills it), so no daemon or signer outlives its test.
    """
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_ports_given = set()


def free_port() -> int:
    """
    A free TCP port on 127.0.0.1, taken below the kernel's ephemeral range:
    the daemon binds it a moment later (seconds under valgrind), and a port
    from the ephemeral range can meanwhile become the local port of any
    client connection made by a test running in parallel. Never the same
    port twice in one test process. The Daemon class needs none of this: it
    lets the daemon bind port 0 and reads the ports from its ready line.
    """
    low = _ephemeral_low()
    if low > 20000:
        for _ in range(100):
            port = random.randrange(20000, low)
            if port not in _ports_given and port_is_free(port):
                _ports_given.add(port)
                return port
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def port_is_free(port, host="127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


# ---------------------------------------------------------------------------
# Per-test state kept by the runner

_current = {"tmp": None, "daemons": [], "started": [], "procs": []}


def current_tmpdir() -> str:
    """The temporary directory of the running test (created on demand)."""
    if _current["tmp"] is None:
        _current["tmp"] = tempfile.mkdtemp(prefix="wssd-test-")
    return _current["tmp"]


def run_cli(args, timeout=10.0, env=None):
    """Runs the daemon binary (behind WSSIGND_TEST_WRAPPER) with args; returns
    (rc, stdout, stderr)."""
    p = subprocess.run(WRAPPER + [BIN] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout * TIME_SCALE, env=env,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def write_json(path, obj, mode=0o600):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
    os.chmod(path, mode)
    return path


def make_cert(directory, name="server"):
    """Self-signed P-256 certificate for localhost / 127.0.0.1. Returns (cert, key)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    os.chmod(key, 0o600)
    return cert, key


# ---------------------------------------------------------------------------
# The daemon

_READY_LISTEN = re.compile(r"event=ready .*?\blisten=(\S+) .*?\bcontrol=(\S+)")


def _port_of(addr):
    """The port of "host:port" or "[v6]:port"; None for "unix:/path"."""
    if addr.startswith("unix:"):
        return None
    return int(addr.rsplit(":", 1)[1])


class Daemon:
    """
    One wssignd process. `config` is the JSON config as a dict; "listen" and
    "control.listen" default to port 0 on 127.0.0.1: the daemon binds free
    ports and names them in its ready line, from which `port` and
    `control_port` are set (and written back into the config, so a restart
    or a reload keeps them). Use as a context manager (`with` or
    `async with`), or call start()/stop().
    """

    def __init__(self, config=None, tls=False, extra_args=(), use_config_file=True,
                 name="wssignd"):
        self.tmp = current_tmpdir()
        self.name = name
        self.config = json.loads(json.dumps(config or {}))
        self.extra_args = list(extra_args)
        self.tls = tls
        self.proc = None
        self.returncode = None
        self.cafile = None
        self.ssl_context = None
        cfg = self.config
        if "listen" not in cfg:
            cfg["listen"] = "127.0.0.1:0"
        control = cfg.setdefault("control", {})
        if "listen" not in control:
            control["listen"] = "127.0.0.1:0"
        if tls:
            cert, key = make_cert(self.tmp, name + "-tls")
            cfg["tls"] = {"cert": cert, "key": key}
            self.cafile = cert
            self.ssl_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cert)
        self.port = _port_of(cfg["listen"])
        self.control_port = _port_of(control["listen"])
        self.config_path = os.path.join(self.tmp, name + ".json")
        self.log_path = os.path.join(self.tmp, name + ".log")
        self.use_config_file = use_config_file
        write_json(self.config_path, cfg)

    # -- process control

    def argv(self):
        args = WRAPPER + [BIN]
        if self.use_config_file:
            args += ["-c", self.config_path]
        return args + self.extra_args

    def start(self):
        if not os.path.exists(BIN):
            raise TestFailure("daemon binary not found: %s (set WSSIGND_BIN)" % BIN)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        _current["daemons"].append(self)
        _current["started"].append(self)
        return self.wait_for_ready()

    def wait_for_ready(self):
        """Waits for the ready line and takes the bound ports from it."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            m = _READY_LISTEN.search(self.log_text())
            if m:
                self._bound(m.group(1), m.group(2))
                return self
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise TestFailure("daemon exited with %d before event=ready; log:\n%s"
                                  % (rc, self.log_text()))
            if time.monotonic() > deadline:
                raise TestFailure("daemon not ready after %.0f s; log:\n%s"
                                  % (READY_TIMEOUT, self.log_text()))
            time.sleep(0.02)

    def _bound(self, listen, control):
        """Records the addresses the daemon bound and keeps them for restarts."""
        self.port = _port_of(listen)
        if not control.startswith("unix:"):
            self.control_port = _port_of(control)
        if self.config.get("listen", "").endswith(":0"):
            self.config["listen"] = listen
        ctl = self.config.setdefault("control", {})
        if ctl.get("listen", "").endswith(":0"):
            ctl["listen"] = control
        if self.use_config_file:
            write_json(self.config_path, self.config)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check_exit=True):
        """
        SIGTERM, wait, SIGKILL. Fails (when check_exit) if the daemon had
        already died, needed SIGKILL, or exited non-zero after SIGTERM.
        """
        if self.proc is None or self.returncode is not None:
            return
        problems = []
        rc = self.proc.poll()
        if rc is not None:
            problems.append("daemon died during the test (exit status %d)" % rc)
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(STOP_TIMEOUT)
                if rc != 0:
                    problems.append("daemon exited with %d after SIGTERM" % rc)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
                problems.append("daemon still running %.0f s after SIGTERM; killed" % STOP_TIMEOUT)
        self.returncode = rc
        try:
            self._log.close()
        except Exception:
            pass
        if self in _current["daemons"]:
            _current["daemons"].remove(self)
        if problems and check_exit:
            raise TestFailure("; ".join(problems) + "\nlog:\n" + self.log_text())

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.stop(check_exit=exc_type is None)
        return False

    async def astart(self):
        return await asyncio.to_thread(self.start)

    async def astop(self, check_exit=True):
        await asyncio.to_thread(self.stop, check_exit)

    async def __aenter__(self):
        return await self.astart()

    async def __aexit__(self, exc_type, exc, tb):
        await self.astop(check_exit=exc_type is None)
        return False

    # -- accessors

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def url(self, host="127.0.0.1", path="/v1/ws"):
        scheme = "wss" if self.tls else "ws"
        return "%s://%s:%d%s" % (scheme, host, self.port, path)

    def signer(self, dial="127.0.0.1", **kw):
        """A Signer for this daemon, dialling host `dial`; host= overrides the
        host claimed in the introduction (default: the dialled one)."""
        kw.setdefault("ssl_context", self.ssl_context)
        return Signer(self.url(dial), **kw)

    def http(self, method, path, body=None, token=None, timeout=70, **kw):
        return http(method, self.control_port, path, body, token, timeout, **kw)

    async def ahttp(self, method, path, body=None, token=None, timeout=70, **kw):
        return await ahttp(method, self.control_port, path, body, token, timeout, **kw)

    async def sign(self, public_key: bytes, message: bytes, timeout_ms=None, token=None):
        """POST /v1/sign; returns (status, body, elapsed seconds)."""
        body = {"public_key": b64(public_key), "message": b64(message)}
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        t0 = time.monotonic()
        status, resp = await self.ahttp("POST", "/v1/sign", body, token=token)
        return status, resp, time.monotonic() - t0


# ---------------------------------------------------------------------------
# HTTP control API

def http(method, port, path, body=None, token=None, timeout=70, headers=None, raw=False):
    """
    One request to 127.0.0.1:port. body: dict/list (sent as JSON), str or
    bytes (sent as is), or None. Returns (status, parsed JSON or None), or
    (status, parsed, raw bytes, headers) with raw=True.
    """
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        hdrs.setdefault("Content-Type", "application/json")
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        status = resp.status
        resp_headers = dict(resp.getheaders())
    finally:
        conn.close()
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    if raw:
        return status, parsed, payload, resp_headers
    return status, parsed


async def ahttp(*args, **kw):
    """http() in a worker thread, so the event loop keeps serving signers."""
    return await asyncio.to_thread(http, *args, **kw)


# ---------------------------------------------------------------------------
# Signer client

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
    """

    def __init__(self, url, seed=None, host=None, ssl_context=None, policy="sign",
                 reason="declined by the test signer"):
        self.url = url
        self.seed = seed if seed is not None else os.urandom(32)
        self.sk = nacl.signing.SigningKey(self.seed)
        self.pk = bytes(self.sk.verify_key)
        self.host = host if host is not None else urllib.parse.urlsplit(url).hostname
        self.ssl_context = ssl_context
        self.policy = policy
        self.reason = reason
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
        host = self.host if host is None else host
        sk = sk or self.sk
        msg = INTRO_DOMAIN + b"\n" + host.encode() + b"\n" + nonce_b64.encode()
        return sk.sign(msg).signature

    def introduction(self, nonce_b64=None, **override):
        """The introduction frame as a dict. Keyword arguments replace fields;
        a value of None removes the field."""
        nonce_b64 = nonce_b64 if nonce_b64 is not None else self.challenge["nonce"]
        frame = {"type": "introduction", "public_key": b64(self.pk), "host": self.host,
                 "proof": b64(self.proof(nonce_b64))}
        for k, v in override.items():
            if v is None:
                frame.pop(k, None)
            else:
                frame[k] = v
        return frame

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

    async def start(self):
        await self.connect()
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


# ---------------------------------------------------------------------------
# A signer in its own process

class SignerProcess:
    """Runs `wssd_test.py signer` in a child process so a test can kill -9 it."""

    def __init__(self, url, seed=None, policy="silent", cafile=None, host=None):
        self.seed = seed if seed is not None else os.urandom(32)
        self.pk = bytes(nacl.signing.SigningKey(self.seed).verify_key)
        args = [PYTHON, os.path.abspath(__file__), "signer", "--url", url,
                "--seed", self.seed.hex(), "--policy", policy]
        if cafile:
            args += ["--cafile", cafile]
        if host:
            args += ["--host", host]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        _current["procs"].append(self.proc)
        self.lines = []

    def _readline(self, timeout):
        """Reads one stdout line (blocking, bounded by a watchdog thread)."""
        import threading
        out = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()),
                             daemon=True)
        t.start()
        t.join(timeout)
        if not out:
            return None
        line = out[0].decode().strip()
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


async def _signer_main(argv):
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


# ---------------------------------------------------------------------------
# Runner

def _cleanup_current():
    for d in list(_current["daemons"]):
        try:
            d.stop(check_exit=False)
        except Exception:
            pass
    for p in _current["procs"]:
        if p.poll() is None:
            p.kill()
            p.wait()
    if _current["tmp"] and os.environ.get("WSSIGND_TEST_KEEP") != "1":
        shutil.rmtree(_current["tmp"], ignore_errors=True)
    _current.update(tmp=None, daemons=[], started=[], procs=[])


def run_tests(ns):
    """
    Runs every test_* function of ns in definition order (async ones with
    asyncio.run). Command-line arguments, if any, select tests by substring.
    Prints "ok NAME" / "FAIL NAME" and a closing "N passed, N failed" line;
    exits 1 if any test failed.
    """
    tests = [(n, f) for n, f in ns.items() if n.startswith("test_") and callable(f)]
    wanted = sys.argv[1:]
    if wanted:
        tests = [(n, f) for n, f in tests if any(w in n for w in wanted)]
    passed = failed = 0
    for name, fn in tests:
        t0 = time.monotonic()
        _current.update(tmp=None, daemons=[], started=[], procs=[])
        try:
            if inspect.iscoroutinefunction(fn):
                asyncio.run(asyncio.wait_for(fn(), TEST_TIMEOUT))
            else:
                fn()
            # a daemon left running by the test must still be alive and stop cleanly
            for d in list(_current["daemons"]):
                d.stop()
            passed += 1
            print("ok %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            print("FAIL %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
            traceback.print_exc(file=sys.stdout)
            for d in _current["started"]:
                tail = d.log_text().splitlines()[-80:]
                print("--- daemon log (%s, last %d lines) ---" % (d.name, len(tail)))
                print("\n".join(tail))
                print("--- end of daemon log ---", flush=True)
        finally:
            _cleanup_current()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "signer":
        try:
            asyncio.run(_signer_main(sys.argv[2:]))
        except KeyboardInterrupt:
            pass
    else:
        print("usage: wssd_test.py signer --url URL --seed HEX [--policy P] [--cafile F]",
              file=sys.stderr)
        sys.exit(2)
