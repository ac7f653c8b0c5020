#!/usr/bin/python3
"""
Helpers for the fault-injection end-to-end tests (50-59). Built on
wssd_test.py.

Pieces:
  TIME_SCALE, scaled(s)     WSSIGND_TEST_TIME_SCALE (default 1): time limits
                            grow by this factor when the daemon runs slowly
                            (under valgrind, for one)
  rss_kib(pid), RssPeak     VmRSS of a process, and a thread that samples
                            its peak
  cpu_seconds(pid)          user + system CPU time a process has used
  open_fds(pid)             the number of descriptors a process holds
  Metrics, scrape()         GET /metrics parsed into samples (no
                            dependency on a Prometheus client)
  HttpClient                one keep-alive HTTP/1.1 connection over
                            asyncio streams; knows when the server sent
                            bytes it was not asked for
  connect_signer(d, src)    an introduced Signer whose socket is bound to a
                            chosen loopback source address
  reset_connection(ws)      ends a WebSocket with a TCP RST (SO_LINGER 0)
  raw_ws_connect(), ws_frame_header(), read_ws_frame()
                            a WebSocket client on a plain socket, for
                            frames no library would send
  ChaosSigners              a child process holding several keys that
                            answers each sign_request with a random fault
                            and writes what it did to a log file

Run this file as `fault_util.py chaos --url URL --seeds HEX,HEX --log FILE
--rng N` to get the chaos signer process on its own.
"""

import argparse
import asyncio
import base64
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssd_test  # noqa: E402
from wssd_test import PYTHON, Signer, TestFailure, check, current_tmpdir  # noqa: E402

import nacl.signing  # noqa: E402
import websockets  # noqa: E402
import websockets.exceptions  # noqa: E402

TIME_SCALE = float(os.environ.get("WSSIGND_TEST_TIME_SCALE") or "1") or 1.0


def scaled(seconds):
    """A time limit stretched by WSSIGND_TEST_TIME_SCALE."""
    return seconds * TIME_SCALE


# ---------------------------------------------------------------------------
# The daemon process seen from /proc

def rss_kib(pid):
    """VmRSS of pid in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise TestFailure("no VmRSS for pid %d" % pid)


def cpu_seconds(pid):
    """User + system CPU seconds used by pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class RssPeak:
    """Samples VmRSS of pid every `every` seconds in a thread; .peak is the largest seen."""

    def __init__(self, pid, every=0.02):
        self.pid = pid
        self.every = every
        self.peak = rss_kib(pid)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
                self.samples += 1
            except (OSError, TestFailure):
                return
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2)
        return False


# ---------------------------------------------------------------------------
# /metrics

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """Samples of one /metrics answer: {(name, frozenset(labels)): value}."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = _SAMPLE_RE.match(line)
            if not m:
                raise TestFailure("unparsable /metrics line: %r" % line)
            labels = frozenset(_LABEL_RE.findall(m.group(3) or ""))
            self.samples[(m.group(1), labels)] = float(m.group(4))

    def value(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())))

    def total(self, name):
        """Sum of every sample of name, whatever its labels."""
        return sum(v for (n, _), v in self.samples.items() if n == name)

    def by_label(self, name, label):
        return {dict(lbl).get(label): v for (n, lbl), v in self.samples.items() if n == name}


def scrape(d):
    status, _, raw, _ = wssd_test.http("GET", d.control_port, "/metrics", raw=True, timeout=10)
    if status != 200:
        raise TestFailure("GET /metrics: HTTP %r %r" % (status, raw[:200]))
    return Metrics(raw.decode("utf-8"))


async def ascrape(d):
    return await asyncio.to_thread(scrape, d)


# ---------------------------------------------------------------------------
# HTTP over asyncio streams

class HttpClient:
    """
    One keep-alive HTTP/1.1 connection to 127.0.0.1:port. request() sends one
    request and reads exactly one response (Content-Length framed); the
    connection is reopened when the server closed it. stray() tells whether
    the server sent anything after the last response, which would be a second
    answer to one request.
    """

    def __init__(self, port):
        self.port = port
        self.reader = None
        self.writer = None
        self.opened = 0

    async def _open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.opened += 1

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None

    async def request(self, method, path, body=None, timeout=30.0):
        """Returns (status, headers dict with lower-case names, body bytes)."""
        if self.writer is None or self.reader.at_eof():
            await self.close()
            await self._open()
        data = b""
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % (method, path, self.port))
        if body is not None:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
        self.writer.write(head.encode() + b"\r\n" + data)
        await self.writer.drain()
        return await asyncio.wait_for(self._read_response(), timeout)

    async def _read_response(self):
        line = await self.reader.readline()
        if not line:
            raise ConnectionError("connection closed before a response")
        parts = line.decode("latin-1").split(" ", 2)
        status = int(parts[1])
        headers = {}
        while True:
            h = await self.reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            payload = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            payload = b""
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                payload += chunk[:-2]
        else:
            payload = await self.reader.read()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers, payload

    async def stray(self, within=0.2):
        """Bytes the server sent after the last response (b"" if none or closed)."""
        if self.reader is None:
            return b""
        try:
            return await asyncio.wait_for(self.reader.read(65536), within)
        except asyncio.TimeoutError:
            return b""
        except (ConnectionError, OSError):
            return b""


# ---------------------------------------------------------------------------
# WebSocket helpers

async def connect_signer(d, source="127.0.0.1", open_timeout=5.0, **kw):
    """A Signer for d whose TCP socket is bound to `source` (any 127.x.y.z),
    introduced and answering by its policy."""
    s = d.signer(**kw)
    s.ws = await websockets.connect(s.url, open_timeout=open_timeout, ping_interval=None,
                                    max_size=2 ** 24, local_addr=(source, 0))
    await s.introduce()
    return s


def reset_connection(ws):
    """Ends a websockets connection with a TCP RST instead of a FIN."""
    sock = ws.transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    ws.transport.abort()


def raw_ws_connect(port, host="127.0.0.1", source=None, path="/v1/ws", timeout=5.0):
    """
    A TCP socket that has completed the WebSocket upgrade (wssign.v1) and read
    the daemon's challenge frame. Returns (socket, challenge dict).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if source:
        sock.bind((source, 0))
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n"
                  % (path, host, port, key, wssd_test.PROTOCOL)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise TestFailure("connection closed during the upgrade: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise TestFailure("upgrade refused: %r" % head[:200])
    reader = _FrameReader(sock, rest)
    opcode, payload = reader.frame()
    check(opcode == 1, "first frame is text (opcode %r)" % opcode)
    challenge = json.loads(payload)
    check(challenge.get("type") == "challenge", "first frame is the challenge: %r" % challenge)
    _readers[sock.fileno()] = reader
    return sock, challenge


def ws_frame_header(opcode, length, fin=True, mask=b"\0\0\0\0"):
    """A client frame header declaring `length` payload bytes (masked)."""
    b0 = (0x80 if fin else 0) | opcode
    if length < 126:
        return struct.pack("!BB", b0, 0x80 | length) + mask
    if length < 65536:
        return struct.pack("!BBH", b0, 0x80 | 126, length) + mask
    return struct.pack("!BBQ", b0, 0x80 | 127, length) + mask


def ws_frame(opcode, payload, fin=True):
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return ws_frame_header(opcode, len(payload), fin, mask) + masked


class _FrameReader:
    def __init__(self, sock, buf=b""):
        self.sock = sock
        self.buf = buf

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def frame(self):
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload


# Frame readers of raw_ws_connect() sockets, by descriptor (sockets take no attributes).
_readers = {}


def read_ws_frame(sock):
    """The next frame from a raw_ws_connect() socket: (opcode, payload)."""
    return _readers[sock.fileno()].frame()


def close_code_of(payload):
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


# ---------------------------------------------------------------------------
# Chaos signers: a process holding several keys, answering with random faults

# Each request a chaos signer receives gets one of these actions:
#   sign       a correct signature
#   reject     sign_reject
#   badsig     a signature with one bit flipped
#   other      a correct signature over other bytes, echoed back as the message
#   silent     no answer
#   late       a correct signature after 0.3 to 1.5 s (before or after the deadline)
#   rst        the connection ends with a TCP RST at once (then reconnects)
#   stall      the signer stops reading for 1.5 s, then goes on
ACTIONS = (("sign", 62), ("reject", 8), ("badsig", 6), ("other", 2), ("silent", 8),
           ("late", 8), ("rst", 3), ("stall", 3))

# HTTP outcomes (status, error code) each action can lead to. A request can
# also end by its connection closing (RST of a later request on the same
# connection) or by its deadline while the signer is stalled or busy.
_CLOSED = (502, "connection_closed")
_TIMEOUT = (504, "timeout")
ALLOWED = {
    "sign": {(200, None), _CLOSED, _TIMEOUT},
    "late": {(200, None), _CLOSED, _TIMEOUT},
    "reject": {(422, "rejected"), _CLOSED, _TIMEOUT},
    "badsig": {(502, "invalid_signature"), _CLOSED, _TIMEOUT},
    "other": {(502, "invalid_signature"), _CLOSED, _TIMEOUT},
    "silent": {_CLOSED, _TIMEOUT},
    "rst": {_CLOSED, _TIMEOUT},
    "stall": {_CLOSED, _TIMEOUT},
    # never reached a signer: key not connected (between an RST and the
    # reconnect), or sent to a connection that closed or stalled first
    None: {(404, "not_connected"), _CLOSED, _TIMEOUT},
}


class ChaosSigners:
    """
    Runs `fault_util.py chaos` in a child process holding one connection per
    seed. Each sign_request is answered by a random action from ACTIONS and
    logged as "<request_id> <action> <slot>" to a file, read back by
    actions().
    """

    def __init__(self, d, n_keys, rng_seed, name="chaos"):
        self.seeds = [os.urandom(32) for _ in range(n_keys)]
        self.pks = [bytes(nacl.signing.SigningKey(s).verify_key) for s in self.seeds]
        self.log_path = os.path.join(current_tmpdir(), "%s-%d.log" % (name, rng_seed))
        self.err_path = os.path.join(current_tmpdir(), "%s-%d.err" % (name, rng_seed))
        self.rng_seed = rng_seed
        self._err = open(self.err_path, "wb")
        args = [PYTHON, os.path.abspath(__file__), "chaos", "--url", d.url(),
                "--seeds", ",".join(s.hex() for s in self.seeds), "--log", self.log_path,
                "--rng", str(rng_seed)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._err,
                                     stdin=subprocess.PIPE)

    def wait_ready(self, timeout=10.0):
        """Waits for the "ready" line: every key introduced once."""
        out = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not out or not out[0].startswith(b"ready"):
            raise TestFailure("chaos signers not ready within %.0f s: %r, stderr %r"
                              % (timeout, out, self.stderr()))

    def stop(self, timeout=10.0):
        """Asks the process to finish (closing stdin) and waits for it."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("chaos signers did not stop; stderr %r" % self.stderr())
        self._err.close()
        if self.proc.returncode != 0:
            raise TestFailure("chaos signers exited %d; stderr %r"
                              % (self.proc.returncode, self.stderr()))

    def kill(self):
        """Ends the process at once (for a test that failed before stop())."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    def actions(self):
        """{request_id: [action, ...]} in the order the requests were handled."""
        out = {}
        with open(self.log_path) as f:
            for line in f:
                rid, action, _slot = line.split()
                out.setdefault(rid, []).append(action)
        return out


async def _chaos_slot(slot, seed, url, rng, log, stop, ready):
    """Keeps one key connected; answers each request with a random action."""
    names = [a for a, _ in ACTIONS]
    weights = [w for _, w in ACTIONS]
    first = True
    while not stop.is_set():
        s = Signer(url, seed=seed, policy="silent")
        state = {"dead": False}

        async def act(signer, req, state=state):
            action = rng.choices(names, weights)[0]
            log.write("%s %s %d\n" % (req["request_id"], action, slot))
            if state["dead"]:
                return
            msg = wssd_test.unb64(req["message"])
            if action == "sign":
                await signer.answer(req, signer.response(req))
            elif action == "reject":
                await signer.answer(req, signer.rejection(req, "chaos"))
            elif action == "badsig":
                sig = bytearray(signer.sk.sign(msg).signature)
                sig[rng.randrange(64)] ^= 1 << rng.randrange(8)
                await signer.answer(req, signer.response(req, signature=bytes(sig)))
            elif action == "other":
                await signer.answer(req, signer.response(req, message=msg + b"!"))
            elif action == "late":
                delay = rng.uniform(0.3, 1.5)

                async def later():
                    await asyncio.sleep(delay)
                    if not state["dead"]:
                        try:
                            await signer.answer(req, signer.response(req))
                        except websockets.exceptions.ConnectionClosed:
                            pass
                asyncio.get_running_loop().create_task(later())
            elif action == "rst":
                state["dead"] = True
                reset_connection(signer.ws)
            elif action == "stall":
                signer.ws.transport.pause_reading()

                async def resume():
                    await asyncio.sleep(1.5)
                    if not state["dead"]:
                        signer.ws.transport.resume_reading()
                asyncio.get_running_loop().create_task(resume())

        s.policy = act
        try:
            await s.connect()
            await s.introduce()
        except Exception as e:  # reconnect races (superseding, refusal): try again
            print("slot %d connect failed: %r" % (slot, e), file=sys.stderr, flush=True)
            await asyncio.sleep(0.05)
            continue
        if first:
            ready(slot)
            first = False
        done = asyncio.ensure_future(s._task)
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait([done, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if stop.is_set():
            # The run is over: drop the connection at once, stalled or not.
            state["dead"] = True
            reset_connection(s.ws)
            s._task.cancel()
            break
        state["dead"] = True
        try:
            reset_connection(s.ws)
        except Exception:
            pass
        await asyncio.sleep(rng.uniform(0.0, 0.01))


async def _chaos_main(argv):
    ap = argparse.ArgumentParser(prog="fault_util.py chaos")
    ap.add_argument("--url", required=True)
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--rng", type=int, required=True)
    a = ap.parse_args(argv)
    seeds = [bytes.fromhex(h) for h in a.seeds.split(",")]
    rng = random.Random(a.rng)
    stop = asyncio.Event()
    introduced = set()

    def ready(slot):
        introduced.add(slot)
        if len(introduced) == len(seeds):
            print("ready", flush=True)

    loop = asyncio.get_running_loop()

    def on_stdin():
        # The parent closes our stdin to ask us to finish.
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    with open(a.log, "w", buffering=1) as log:
        await asyncio.gather(*[_chaos_slot(i, seed, a.url, random.Random(rng.random()), log,
                                           stop, ready)
                               for i, seed in enumerate(seeds)])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "chaos":
        asyncio.run(_chaos_main(sys.argv[2:]))
    else:
        print("usage: fault_util.py chaos --url URL --seeds HEX,HEX --log FILE --rng N",
              file=sys.stderr)
        sys.exit(2)
