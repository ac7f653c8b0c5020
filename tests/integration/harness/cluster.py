"""
A cluster under test: a Redis server (Redis), N daemons sharing it
(Cluster), a way to watch and speak the cluster's Redis traffic (a small
RESP client: redis_command(), RedisWatch), a TCP balancer in front of the
nodes (Balancer), and a process holding many signers that reconnect from
node to node (SignerSwarm, run as `cluster_util.py swarm`).

Everything a test starts here is stopped by the runner when the test ends,
passed or failed: the Redis and swarm processes are tracked child processes
(killed with the test process too), the daemons are the harness's Daemons,
and the asyncio pieces (RedisWatch, Balancer) live in the test's own loop.
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import subprocess
import time

import nacl.signing

from . import base
from .base import (HERE, PYTHON, TestFailure, b64, check, check_error_body, current_tmpdir,
                   die_with_parent, scaled, track, unb64, write_lines)
from .daemon import Daemon
from .metrics import ascrape
from .net import free_port
from .signer import readline_within

REDIS_SERVER = "redis-server"
REDIS_CLI = "redis-cli"
TAG_BYTES = 32  # the HMAC tag in front of every cluster message
PREFIX = "wssign:"


# ---------------------------------------------------------------------------
# RESP, the Redis protocol: enough for commands and subscriptions

class RedisError(Exception):
    pass


class _Incomplete(Exception):
    pass


def resp_encode(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, (bytes, bytearray)) else str(a).encode()
        out += [b"$%d\r\n" % len(a), bytes(a), b"\r\n"]
    return b"".join(out)


def _resp_parse(buf, i=0):
    """(value, next index) of the reply at buf[i:]; raises _Incomplete.
    Bulk strings stay bytes; an error reply is a RedisError value."""
    nl = buf.find(b"\r\n", i)
    if nl < 0:
        raise _Incomplete()
    kind, line, j = buf[i:i + 1], bytes(buf[i + 1:nl]), nl + 2
    if kind == b"+":
        return line.decode(), j
    if kind == b"-":
        return RedisError(line.decode()), j
    if kind == b":":
        return int(line), j
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, j
        if len(buf) < j + n + 2:
            raise _Incomplete()
        return bytes(buf[j:j + n]), j + n + 2
    if kind == b"*":
        n = int(line)
        if n < 0:
            return None, j
        items = []
        for _ in range(n):
            v, j = _resp_parse(buf, j)
            items.append(v)
        return items, j
    raise TestFailure("not a RESP reply: %r" % bytes(buf[i:i + 40]))


def redis_command(port, *args, timeout=5.0):
    """One command on a new connection to the Redis at 127.0.0.1:port; its reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(resp_encode(*args))
        buf = bytearray()
        while True:
            try:
                v, _ = _resp_parse(buf)
                break
            except _Incomplete:
                data = s.recv(65536)
                if not data:
                    raise ConnectionError("Redis closed the connection")
                buf += data
    if isinstance(v, RedisError):
        raise v
    return v


def cluster_key(secret: bytes) -> bytes:
    """The key that tags cluster messages, from the secret file's bytes (as
    the daemon derives it: BLAKE2b-256 keyed with "wssignd-cluster-v1" of the
    bytes less trailing line ends)."""
    return hashlib.blake2b(secret.rstrip(b"\r\n"), digest_size=32,
                           key=b"wssignd-cluster-v1").digest()


def seal(key: bytes, obj) -> bytes:
    """A cluster message: the HMAC-SHA-512-256 tag of the compact JSON of obj
    under key, then the JSON."""
    text = json.dumps(obj, separators=(",", ":")).encode()
    return hmac.new(key, text, hashlib.sha512).digest()[:TAG_BYTES] + text


def cluster_message(payload: bytes):
    """The JSON part of a cluster message (after its 32-byte tag) as a dict, or None."""
    try:
        m = json.loads(payload[TAG_BYTES:])
    except ValueError:
        return None
    return m if isinstance(m, dict) else None


def _unrepr(text, i):
    """The bytes of the quoted string at text[i] (Redis's sdscatrepr form) and
    the index after it."""
    assert text[i] == '"'
    out = bytearray()
    i += 1
    esc = {"n": b"\n", "r": b"\r", "t": b"\t", "a": b"\a", "b": b"\b", '"': b'"', "\\": b"\\"}
    while text[i] != '"':
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1]
            if nxt == "x":
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            out += esc.get(nxt, nxt.encode())
            i += 2
            continue
        out += ch.encode()
        i += 1
    return bytes(out), i + 1


def monitor_args(line):
    """The command words (bytes) of one MONITOR line, or None."""
    at = line.find("] ")
    if at < 0:
        return None
    i, args = at + 2, []
    while i < len(line) and line[i] == '"':
        word, i = _unrepr(line, i)
        args.append(word)
        i += 1  # the space between words
    return args


class RedisWatch:
    """
    Every message the nodes publish on the cluster's channels, seen through
    Redis's MONITOR (a subscriber would count as one more receiver of each
    PUBLISH and change what the nodes see): .messages is a list of
    {"channel", "payload" (bytes), "msg" (the JSON part as a dict, or None)}.
    wait() waits for one with given fields.
    """

    def __init__(self, port, prefix=PREFIX):
        self.port = port
        self.prefix = prefix.encode()
        self.messages = []
        self._task = None
        self._ready = None
        self._writer = None
        self._changed = None

    async def start(self):
        self._ready = asyncio.get_running_loop().create_future()
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())
        await asyncio.wait_for(self._ready, scaled(5))
        return self

    async def _run(self):
        try:
            reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
            self._writer.write(resp_encode("MONITOR"))
            buf = bytearray()
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                buf += data
                while True:
                    try:
                        v, j = _resp_parse(buf)
                    except _Incomplete:
                        break
                    del buf[:j]
                    self._took(v)
        except (ConnectionError, OSError) as e:
            if not self._ready.done():
                self._ready.set_exception(e)

    def _took(self, v):
        if not isinstance(v, str):
            return
        if v == "OK":
            if not self._ready.done():
                self._ready.set_result(True)
            return
        args = monitor_args(v)
        if (args and len(args) == 3 and args[0].upper() == b"PUBLISH"
                and args[1].startswith(self.prefix)):
            self.messages.append({"channel": args[1].decode("utf-8", "replace"),
                                  "payload": args[2], "msg": cluster_message(args[2])})
            self._changed.set()

    def find(self, since=0, channel=None, **fields):
        """Messages from index `since` whose channel and JSON fields match.
        Field names: t, k, id, ... and from_ for "from" (a Python keyword)."""
        if "from_" in fields:
            fields["from"] = fields.pop("from_")
        out = []
        for m in self.messages[since:]:
            if channel is not None and m["channel"] != channel:
                continue
            if m["msg"] is None or any(m["msg"].get(k) != v for k, v in fields.items()):
                continue
            out.append(m)
        return out

    async def wait(self, timeout=5.0, since=0, channel=None, **fields):
        """The first message (from index `since`) matching channel and fields
        (as find() takes them)."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            found = self.find(since, channel, **fields)
            if found:
                return found[0]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("no cluster message %r on %r within %.1f s (%d seen)"
                                  % (fields, channel, timeout, len(self.messages)))
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def close(self):
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass


# ---------------------------------------------------------------------------
# The Redis server

class Redis:
    """
    A redis-server on 127.0.0.1:port (a free one by default) with no
    persistence. stop() (SIGTERM), kill() (SIGKILL), pause()/resume()
    (SIGSTOP/SIGCONT: alive but silent) and start() again on the same port.
    Its output goes to <tmp>/<name>.log, appended across restarts.
    """

    def __init__(self, port=None, name="redis"):
        self.port = port or free_port()
        self.name = name
        self.log_path = os.path.join(current_tmpdir(), name + ".log")
        self.proc = None
        self.started_at = None  # time.monotonic() when it last accepted connections

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def spawn(self):
        log = open(self.log_path, "ab")
        try:
            self.proc = track(subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", current_tmpdir(), "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent))
        except FileNotFoundError:
            raise TestFailure("%s not found: install redis-server" % REDIS_SERVER)
        finally:
            log.close()
        return self

    def start(self, timeout=10.0):
        """Starts it and waits until it answers PING."""
        self.spawn()
        return self.wait_ready(timeout)

    async def astart(self, timeout=10.0):
        """start() from a coroutine. Spawned from the loop's thread, as
        Daemon.astart() does: the child dies with the thread that forked it."""
        self.spawn()
        return await asyncio.to_thread(self.wait_ready, timeout)

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + scaled(timeout)
        while True:
            try:
                if redis_command(self.port, "PING", timeout=1) == "PONG":
                    self.started_at = time.monotonic()
                    return self
            except (OSError, RedisError):
                pass
            if self.proc.poll() is not None:
                raise TestFailure("redis-server exited with %d; log:\n%s"
                                  % (self.proc.returncode, self.log_text()))
            if time.monotonic() > deadline:
                raise TestFailure("redis-server not answering after %.0f s" % timeout)
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5.0):
        """SIGTERM and wait (then SIGKILL)."""
        if not self.alive():
            return
        self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def pause(self):
        if self.alive():
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)

    def command(self, *args, timeout=5.0):
        return redis_command(self.port, *args, timeout=timeout)

    async def acommand(self, *args, timeout=5.0):
        return await asyncio.to_thread(redis_command, self.port, *args, timeout=timeout)

    def numsub(self, channel) -> int:
        """Subscribers of channel (PUBSUB NUMSUB)."""
        return int(self.command("PUBSUB", "NUMSUB", channel)[1])

    def cli(self, *args, input=None, timeout=10.0):
        """Runs redis-cli against this server; returns (rc, stdout, stderr)."""
        return base.run_program([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port)]
                                + list(args), input=input, timeout=scaled(timeout))

    def cli_publish(self, channel, payload: bytes) -> int:
        """`redis-cli -x PUBLISH channel` with payload (any bytes) on stdin; the
        number of subscribers that received it."""
        rc, out, err = self.cli("-x", "PUBLISH", channel, input=payload)
        if rc != 0 or not out.strip().isdigit():
            raise TestFailure("redis-cli PUBLISH failed (%d): %r %r" % (rc, out, err))
        return int(out)

    def log_text(self):
        return base.read_text(self.log_path)


# ---------------------------------------------------------------------------
# The cluster

def key_hex(pk: bytes) -> str:
    return pk.hex()


def key_channel(pk: bytes, prefix=PREFIX) -> str:
    return "%sk:%s" % (prefix, pk.hex())


def node_channel(node_id, prefix=PREFIX) -> str:
    return "%sn:%s" % (prefix, node_id)


def _merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = json.loads(json.dumps(v))
    return dst


class Cluster:
    """
    N daemons (node ids node1..nodeN, numbered from 1 here too) sharing one
    Redis and one secret file (0600). `config` is merged into every node's
    configuration, `node_config` (a dict: number -> dict) into single ones;
    each node gets a "cluster" section naming the Redis, the secret file and
    its id. Use as `async with Cluster(3) as c:`; start() starts the Redis
    (unless one was given and runs), every node, waits for event=cluster_up
    on each and for each to count every node alive, and starts a RedisWatch
    (c.watch) on the cluster's channels unless watch=False.

      c.node(i)              the Daemon of node i
      c.signer(i, ...)       a Signer for node i (not started)
      await c.connect(i,...) a Signer introduced on node i whose key the
                             cluster has heard announced
      await c.sign(j, pk, msg, timeout_ms)   POST /v1/sign on node j
      await c.check_sign(j, signer)          ... which must be signed
      await c.signs_everywhere(signer)       ... asked on every node
      c.kill(i), c.restart(i), c.stop_node(i)
      c.log(i)               node i's log, across restarts
    """

    def __init__(self, n=3, redis=None, config=None, node_config=None, secret=None,
                 watch=True, wait_nodes=True):
        self.tmp = current_tmpdir()
        self.n = n
        self.redis = redis or Redis()
        self.own_redis = redis is None
        self.secret = secret if secret is not None else b64(os.urandom(32))
        self.secret_path = write_lines("cluster.secret", [self.secret], mode=0o600)
        self.want_watch = watch
        self.want_nodes = wait_nodes
        self.watch = None
        self.old_logs = {i: "" for i in range(1, n + 1)}
        self.nodes = []
        for i in range(1, n + 1):
            cfg = {"cluster": {"redis": self.redis.url, "secret_file": self.secret_path,
                               "node_id": "node%d" % i}}
            _merge(cfg, config or {})
            _merge(cfg, (node_config or {}).get(i, {}))
            self.nodes.append(Daemon(cfg, name="node%d" % i))

    # -- life cycle

    def node(self, i) -> Daemon:
        return self.nodes[i - 1]

    def node_id(self, i):
        return self.node(i).config["cluster"]["node_id"]

    def numbers(self):
        return range(1, self.n + 1)

    async def start(self):
        if not self.redis.alive():
            await self.redis.astart()
        for d in self.nodes:
            d.spawn()
        for i in self.numbers():
            await asyncio.to_thread(self.node(i).wait_for_ready)
            await self.wait_cluster_up(i)
        if self.want_nodes:
            await self.wait_nodes()
        if self.want_watch:
            self.watch = await RedisWatch(self.redis.port).start()
        return self

    async def stop(self, check_exit=True):
        if self.watch is not None:
            await self.watch.close()
            self.watch = None
        problems = []
        for d in self.nodes:
            try:
                await d.astop(check_exit)
            except TestFailure as e:
                problems.append(str(e))
        if self.own_redis:
            await asyncio.to_thread(self.redis.stop)
        if problems:
            raise TestFailure("\n".join(problems))

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, exc_type, exc, tb):
        await self.stop(check_exit=exc_type is None)
        return False

    async def wait_cluster_up(self, i, since=0, timeout=10.0):
        """Waits for event=cluster_up in node i's log (from byte `since`)."""
        await self.node(i).await_log(r"event=cluster_up node=%s" % self.node_id(i),
                                     timeout=scaled(timeout), since=since)

    async def wait_nodes(self, count=None, nodes=None, timeout=10.0):
        """Waits until wssignd_cluster_nodes is `count` (default: every node
        of the cluster) on each node in `nodes` (default: every running one)."""
        count = self.n if count is None else count
        nodes = [i for i in self.numbers() if self.node(i).alive()] if nodes is None else nodes
        deadline = time.monotonic() + scaled(timeout)
        for i in nodes:
            while True:
                m = await ascrape(self.node(i))
                got = m.value("wssignd_cluster_nodes")
                if got == count:
                    break
                if time.monotonic() > deadline:
                    raise TestFailure("node%d counts %r nodes, expected %d" % (i, got, count))
                await asyncio.sleep(0.05)

    def kill(self, i):
        """kill -9 node i."""
        self.node(i).kill()

    async def stop_node(self, i, check_exit=True):
        """SIGTERM node i and wait for it to exit."""
        await self.node(i).astop(check_exit)

    async def restart(self, i, wait_up=True):
        """Starts node i again on its ports (after kill or stop_node) and waits
        for it to reach Redis; its earlier log is kept for log(i)."""
        d = self.node(i)
        self.old_logs[i] += d.log_text()
        d.returncode = None
        await d.astart()
        if wait_up:
            await self.wait_cluster_up(i)
        return d

    def log(self, i) -> str:
        return self.old_logs[i] + self.node(i).log_text()

    # -- clients

    def signer(self, i, **kw):
        return self.node(i).signer(**kw)

    async def announced(self, pk, i, since=0, timeout=5.0):
        """Waits until node i's announcement of key pk (its "intro" message)
        went through Redis: from then on every node reaches the key there."""
        if self.watch is None:
            raise TestFailure("Cluster(watch=False) cannot see announcements")
        await self.watch.wait(timeout, since=since, channel=key_channel(pk), t="intro",
                              from_=self.node_id(i))

    async def connect(self, i, **kw):
        """A Signer introduced on node i, its key announced to the cluster
        (without a watch: once Redis counts a holder of the key)."""
        since = len(self.watch.messages) if self.watch else 0
        s = await self.signer(i, **kw).start()
        if self.watch is not None:
            await self.announced(s.pk, i, since=since)
        else:
            await self.wait_holders(s.pk, 1)
        return s

    async def sign(self, j, pk, message, timeout_ms=None, **kw):
        """POST /v1/sign on node j: (status, body, elapsed seconds)."""
        return await self.node(j).sign(pk, message, timeout_ms=timeout_ms, **kw)

    async def check_sign(self, j, signer, message=None, what="round trip"):
        """POST /v1/sign on node j for signer's key must give 200 and a
        signature that verifies; returns the body."""
        return await self.node(j).check_sign(signer, message, timeout_ms=10000,
                                             what="%s, asked on node%d" % (what, j))

    async def signs_everywhere(self, signer, what="round trip"):
        """check_sign() on every running node."""
        for j in self.numbers():
            if self.node(j).alive():
                await self.check_sign(j, signer, what=what)

    async def key_status(self, j, pk):
        """GET /v1/keys/<pk> on node j: (status, body)."""
        return await self.node(j).key_status(pk)

    def holders(self, pk) -> int:
        """How many nodes are subscribed to key pk's channel."""
        return self.redis.numsub(key_channel(pk))

    def holders_of(self, pks):
        """holders() of each key of pks, in one PUBSUB NUMSUB per 500 keys."""
        out = []
        for i in range(0, len(pks), 500):
            reply = self.redis.command("PUBSUB", "NUMSUB",
                                       *[key_channel(pk) for pk in pks[i:i + 500]])
            out += [int(n) for n in reply[1::2]]
        return out

    async def wait_holders(self, pk, count, timeout=5.0):
        deadline = time.monotonic() + scaled(timeout)
        while True:
            got = await asyncio.to_thread(self.holders, pk)
            if got == count:
                return
            if time.monotonic() > deadline:
                raise TestFailure("key channel has %d subscribers, expected %d" % (got, count))
            await asyncio.sleep(0.02)

    async def metrics(self, j):
        return await ascrape(self.node(j))

    @property
    def key(self) -> bytes:
        """The key every node tags its messages with (from the shared secret)."""
        return cluster_key(self.secret.encode())


async def ends_with(task, status, code, since, within, what):
    """The outcome of a sign task (a c.sign() future) must be HTTP `status`
    with error `code`, within `within` seconds (scaled) of `since` (a
    time.monotonic() reading). Returns the error object."""
    st, body, _ = await asyncio.wait_for(task, scaled(within) + 60)
    took = time.monotonic() - since
    err = check_error_body(st, body, status, code, what)
    check(took < scaled(within), "%s: %s after %.2f s, not within %.1f s"
          % (what, code, took, within))
    return err


# ---------------------------------------------------------------------------
# A TCP balancer

class Balancer:
    """
    A TCP balancer in the test's event loop on 127.0.0.1:port: each new
    connection goes to the next of `ports` (round robin) that accepts one,
    and bytes flow both ways until either side closes. A node's death ends
    the connections through it, as behind haproxy in TCP mode.
    """

    def __init__(self, ports):
        self.ports = list(ports)
        self.port = None
        self.next = 0
        self.server = None
        self.routed = []  # backend port of each connection, in order
        self._tasks = set()

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def url(self, path="/v1/ws"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    async def _pipe(self, reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _handle(self, creader, cwriter):
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            for _ in range(len(self.ports)):
                port = self.ports[self.next % len(self.ports)]
                self.next += 1
                try:
                    breader, bwriter = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    continue
                self.routed.append(port)
                await asyncio.gather(self._pipe(creader, bwriter), self._pipe(breader, cwriter))
                return
            cwriter.close()
        finally:
            self._tasks.discard(task)

    async def close(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for t in list(self._tasks):
            t.cancel()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.close()
        return False


# ---------------------------------------------------------------------------
# Many signers in one process

def swarm_seed(tag, n) -> bytes:
    """The seed of signer n of a swarm tagged `tag` (the test derives the keys too)."""
    return hashlib.sha256(b"wssignd cluster swarm %s %d" % (tag.encode(), n)).digest()


def swarm_key(tag, n) -> bytes:
    return bytes(nacl.signing.SigningKey(swarm_seed(tag, n)).verify_key)


class SignerSwarm:
    """
    `cluster_util.py swarm` in a child process: signers `first`..`first+count-1`
    of the swarm `tag`, each an honest signer that connects to one of `urls`
    (signer n starts at urls[n % len(urls)]), answers every sign_request with
    a signature, and after any disconnection reconnects (after 20 to 200 ms)
    to another URL, picked at random, until one takes it. It prints "ready" once every signer has
    been introduced once. kill() is kill -9.
    """

    def __init__(self, urls, tag, first, count, name="swarm"):
        self.urls = list(urls)
        self.tag = tag
        self.first = first
        self.count = count
        self.err_path = os.path.join(current_tmpdir(), "%s-%d.err" % (name, first))
        self.proc = None

    def start(self):
        err = open(self.err_path, "ab")
        args = [PYTHON, os.path.join(HERE, "cluster_util.py"), "swarm", "--tag", self.tag,
                "--first", str(self.first), "--count", str(self.count), "--urls",
                ",".join(self.urls)]
        self.proc = track(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err,
                                           stdin=subprocess.DEVNULL,
                                           preexec_fn=die_with_parent))
        err.close()
        return self

    def wait_ready(self, timeout=60.0):
        line = readline_within(self.proc.stdout, scaled(timeout))
        if line is None or not line.startswith(b"ready"):
            raise TestFailure("signer swarm %d not ready within %.0f s: %r; stderr:\n%s"
                              % (self.first, timeout, line, self.stderr()))

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def _swarm_member(sk, urls, start, introduced, rng):
    import websockets
    import websockets.exceptions
    pk_b64 = b64(bytes(sk.verify_key))
    idx = start
    first = True
    while True:
        url = urls[idx % len(urls)]
        try:
            async with websockets.connect(url, open_timeout=5, ping_interval=None,
                                          max_size=2 ** 20, close_timeout=1) as ws:
                ch = json.loads(await asyncio.wait_for(ws.recv(), 5))
                host = "127.0.0.1"
                transcript = b"wssign-introduction-v1\n" + host.encode() + b"\n" + \
                    ch["nonce"].encode()
                await ws.send(json.dumps({"type": "introduction", "public_key": pk_b64,
                                          "host": host,
                                          "proof": b64(sk.sign(transcript).signature)}))
                resp = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if resp.get("type") != "introduced":
                    raise ConnectionError("refused: %r" % resp)
                if first:
                    first = False
                    introduced()
                async for raw in ws:
                    f = json.loads(raw)
                    if f.get("type") == "sign_request":
                        sig = sk.sign(unb64(f["message"])).signature
                        await ws.send(json.dumps({"type": "sign_response",
                                                  "request_id": f["request_id"],
                                                  "message": f["message"],
                                                  "signature": b64(sig)}))
        except (OSError, asyncio.TimeoutError, ValueError, KeyError, ConnectionError,
                websockets.exceptions.WebSocketException):
            pass
        # The node went away (or refused): try another one, as a balancer would.
        idx += 1 + rng.randrange(max(1, len(urls) - 1))
        await asyncio.sleep(0.02 + rng.random() * 0.18)


async def swarm_main(argv):
    ap = argparse.ArgumentParser(prog="cluster_util.py swarm")
    ap.add_argument("--tag", required=True)
    ap.add_argument("--first", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--urls", required=True)
    a = ap.parse_args(argv)
    urls = a.urls.split(",")
    rng = random.Random(a.first)
    left = [a.count]

    def introduced():
        left[0] -= 1
        if left[0] == 0:
            print("ready", flush=True)

    tasks = []
    for n in range(a.first, a.first + a.count):
        sk = nacl.signing.SigningKey(swarm_seed(a.tag, n))
        tasks.append(asyncio.ensure_future(_swarm_member(sk, urls, n, introduced, rng)))
        if len(tasks) % 50 == 0:
            await asyncio.sleep(0.05)  # spread the handshakes
    await asyncio.gather(*tasks)


__all__ = ["Balancer", "Cluster", "PREFIX", "Redis", "RedisError", "RedisWatch", "SignerSwarm",
           "TAG_BYTES", "cluster_key", "cluster_message", "ends_with", "key_channel", "key_hex",
           "node_channel", "redis_command", "resp_encode", "seal", "swarm_key", "swarm_main",
           "swarm_seed"]
