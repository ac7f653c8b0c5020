#!/usr/bin/python3
"""
The control listener's connection cap (a quarter of RLIMIT_NOFILE, at most
256) counts every socket from accept to close, whatever lws does with it in
between: keep-alive connections that have made requests count as much as
fresh ones, and Unix-socket clients count too. With an open-file limit of 256
(a cap of 64), connections that each send GET /healthz twice and then part
of a third request fill the cap and no more: the next connection is closed
at accept and counted in wssignd_connections_refused_total, the refusals are
logged once a second (not once each), wssignd_control_sockets shows the
count, the daemon stays idle and keeps signing over a connection it already
had, and once the clients leave the count is back to what is left open.
"""

import asyncio
import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (AsyncHttp, Daemon, NoData, RawHTTP, ascrape, b64, check,  # noqa: E402
                       check_eq, cpu_seconds, current_tmpdir, http_request, open_fds,
                       run_tests, scaled)

NOFILE = 256
CAP = NOFILE // 4
MAX_LOG_LINES = 20


class LowFdDaemon(Daemon):
    """The daemon with RLIMIT_NOFILE set to NOFILE (prlimit execs it: same pid)."""

    def argv(self):
        return ["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--"] + super().argv()


def connect(d, unix_path=None):
    if unix_path:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(unix_path)
        return RawHTTP(sock=s)
    return RawHTTP(d.control_port, source="127.0.0.2", timeout=scaled(5.0))


def read_answer(c):
    """The status of one complete HTTP answer; None if the peer closed first."""
    try:
        status, hdrs, body, _ = c.response(scaled(5.0))
    except NoData:
        return None
    if status is None or len(body) != int(hdrs["content-length"]):
        return None
    return status


def keepalive_client(d, unix_path=None):
    """A connection that made two requests and left a third unfinished; None if refused."""
    c = connect(d, unix_path)
    for _ in range(2):
        if not c.try_send(http_request("GET", "/healthz")):
            c.close()
            return None
        status = read_answer(c)
        if status is None:
            c.close()
            return None
        check_eq(status, 200, "GET /healthz on a keep-alive connection")
    c.send(b"GET /hea")
    return c


async def cap_case(d, unix_path=None):
    pid = d.proc.pid
    signer = await d.signer(source="127.0.0.1").start()
    # Opened before the clients come: it holds one of the CAP sockets.
    keep = AsyncHttp(d.control_port) if not unix_path else None
    before = await ascrape(client=keep) if keep else None
    lines_before = len(d.log_text().splitlines())
    held = []
    refused = 0
    try:
        for _ in range(CAP + 20):
            s = await asyncio.to_thread(keepalive_client, d, unix_path)
            if s is None:
                refused += 1
            else:
                held.append(s)
        used = 1 if keep else 0
        check_eq(len(held), CAP - used, "keep-alive clients admitted (cap %d)" % CAP)
        check_eq(refused, 20 + used, "clients refused at accept")
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(1.5)
        cpu = cpu_seconds(pid) - cpu0
        check(cpu < 0.25 * (time.monotonic() - t0), "daemon used %.2f s of CPU while full" % cpu)
        check(open_fds(pid) <= NOFILE, "descriptors within the limit")
        if keep:
            after = await ascrape(client=keep)
            check_eq(after.value("wssignd_control_sockets"), CAP,
                     "wssignd_control_sockets when full")
            check_eq(after.value("wssignd_connections_refused_total")
                     - before.value("wssignd_connections_refused_total"), refused,
                     "wssignd_connections_refused_total")
            msg = b"while the control listener is full"
            status, _, payload, _ = await keep.request(
                "POST", "/v1/sign", {"public_key": b64(signer.pk), "message": b64(msg)},
                timeout=scaled(10))
            check_eq(status, 200, "sign over a connection opened before (%r)" % payload)
        noisy = [l for l in d.log_text().splitlines()[lines_before:]
                 if "sign_outcome" not in l]
        check(len(noisy) <= MAX_LOG_LINES, "%d log lines while full: %r" % (len(noisy),
                                                                           noisy[-3:]))
        check(any("event=connection_refused listener=control" in l for l in noisy),
              "the refusals are logged")
    finally:
        for s in held:
            s.close()
    # Every socket is uncounted when it goes: the listener takes CAP again.
    await asyncio.sleep(0.5)
    if keep:
        check_eq((await ascrape(client=keep)).value("wssignd_control_sockets"), 1,
                 "wssignd_control_sockets after the clients left")
    again = []
    try:
        for _ in range(CAP - (1 if keep else 0)):
            s = await asyncio.to_thread(keepalive_client, d, unix_path)
            check(s is not None, "a client refused after the others left")
            again.append(s)
    finally:
        for s in again:
            s.close()
    if keep:
        await keep.close()
    await signer.close()


async def test_tcp_keepalive_clients_counted_until_closed():
    async with LowFdDaemon() as d:
        await cap_case(d)


async def test_unix_socket_clients_counted():
    sock = os.path.join(current_tmpdir(), "control.sock")
    async with LowFdDaemon({"control": {"listen": "unix:" + sock}}) as d:
        await cap_case(d, unix_path=sock)


run_tests(globals())
