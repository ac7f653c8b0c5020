#!/usr/bin/python3
"""
TLS session resumption on the signer listener: the daemon issues TLS 1.3
session tickets sealed with keys it keeps for its lifetime, so a client that
offers one resumes without a full handshake, also after a SIGHUP reload; a
restarted daemon has new keys and falls back to a full handshake. Every
handshake is counted in wssignd_tls_handshakes_total{resumed="true|false"}.
`wssign agent` keeps its session and offers it when it reconnects (its
event=connected line says resumed=yes).
"""

import asyncio
import copy
import os
import socket
import ssl
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_util import reload_expect  # noqa: E402
from wssd_test import Daemon, check, check_eq, run_tests, scrape  # noqa: E402
from wssign_util import Agent, keygen, request  # noqa: E402


def handshakes(d):
    """(full, resumed) TLS handshakes the daemon has counted."""
    m = scrape(d)
    full = m.value("wssignd_tls_handshakes_total", resumed="false")
    resumed = m.value("wssignd_tls_handshakes_total", resumed="true")
    check(full is not None and resumed is not None,
          "wssignd_tls_handshakes_total{resumed} missing from /metrics")
    return int(full), int(resumed)


def upgrade(d, session=None, ctx=None):
    """A wss WebSocket upgrade with Python's ssl module (ctx, default
    d.ssl_context), offering session (an ssl.SSLSession) if given. Returns
    (session_reused, the connection's session once the daemon's ticket has
    arrived)."""
    ctx = ctx or d.ssl_context
    raw = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
        s.sendall(("GET /v1/ws HTTP/1.1\r\nHost: localhost:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wssign.v1\r\n\r\n"
                   % d.port).encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        check(answer.startswith(b"HTTP/1.1 101"), "upgrade answer %r" % answer[:80])
        check_eq(s.version(), "TLSv1.3", "TLS version")
        return s.session_reused, s.session


async def test_python_client_resumes_across_reload():
    async with Daemon(tls=True) as d:
        reused, session = await asyncio.to_thread(upgrade, d)
        check(not reused, "the first connection resumed a session it never had")
        check(session is not None and session.has_ticket, "the daemon sent no session ticket")
        check_eq(session.ticket_lifetime_hint, 7 * 24 * 3600, "ticket lifetime (s)")
        check_eq(handshakes(d), (1, 0), "(full, resumed) after the first connection")

        reused, _ = await asyncio.to_thread(upgrade, d, session)
        check(reused, "a connection offering the daemon's ticket was not resumed")
        check_eq(handshakes(d), (1, 1), "(full, resumed) after offering the ticket")

        await reload_expect(d, "ok")
        reused, _ = await asyncio.to_thread(upgrade, d, session)
        check(reused, "a ticket issued before the SIGHUP reload was not accepted after it")
        check_eq(handshakes(d), (1, 2), "(full, resumed) after the reload")

        # A restart makes new ticket keys: the old ticket is refused, the handshake is a
        # full one and succeeds.
        cfg = copy.deepcopy(d.config)
        cfg["listen"] = cfg["control"]["listen"] = "127.0.0.1:0"
        async with Daemon(cfg, name="restarted") as d2:
            ctx = d.ssl_context
            reused, _ = await asyncio.to_thread(upgrade, d2, session, ctx)
            check(not reused, "a restarted daemon accepted a ticket of the process before")
            check_eq(handshakes(d2), (1, 0), "(full, resumed) of the restarted daemon")


class Cutter:
    """A TCP relay between the agent and the daemon whose connections can be
    cut (both sides closed at once, no TLS close_notify, no WebSocket close),
    as a dropped network path would."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.writers = []
        self.server = None
        self.port = None

    async def start(self):
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _relay(self, reader, writer):
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_w]

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    def cut(self):
        for w in self.writers:
            w.transport.abort()
        self.writers = []

    async def stop(self):
        self.cut()
        self.server.close()
        await self.server.wait_closed()


async def test_agent_resumes_after_dropped_connection_and_reload():
    async with Daemon(tls=True) as d:
        relay = await Cutter(d.port).start()
        key, pk = keygen()
        agent = Agent("wss://localhost:%d/v1/ws" % relay.port, key, "--ca", d.cafile,
                      "--backoff-max-ms", 200)
        try:
            await asyncio.to_thread(agent.wait_introduced)
            first = agent.lines(r"event=connected ")
            check_eq(len(first), 1, "event=connected lines after the first connection")
            check("tls=TLSv1.3 resumed=no" in first[0], "first connection: %r" % first[0])
            check_eq(handshakes(d), (1, 0), "(full, resumed) after the agent's first connection")

            await reload_expect(d, "ok")
            relay.cut()
            await asyncio.to_thread(agent.wait_introduced, 10.0, 2)
            second = agent.lines(r"event=connected ")[1]
            check("tls=TLSv1.3 resumed=yes" in second, "reconnect after a SIGHUP: %r" % second)
            check_eq(handshakes(d), (1, 1), "(full, resumed) after the reconnect")

            # The session kept from the resumed connection serves the next one too.
            relay.cut()
            await asyncio.to_thread(agent.wait_introduced, 10.0, 3)
            third = agent.lines(r"event=connected ")[2]
            check("resumed=yes" in third, "second reconnect: %r" % third)
            check_eq(handshakes(d), (1, 2), "(full, resumed) after the second reconnect")

            rc, _, err = await asyncio.to_thread(request, d, pk, "--message", "resumed")
            check_eq(rc, 0, "request through the resumed connection (stderr %r)" % err)
            check_eq(agent.stop(), 0, "agent exit status")
        finally:
            agent.kill()
            await relay.stop()


run_tests(globals())
