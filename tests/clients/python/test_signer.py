#!/usr/bin/python3
"""wssign.Signer against the real daemon: sign, reject, timeout, cancel,
supersede on reconnect, a daemon restart while connected, refused keys; and
the key files it reads."""

import asyncio
import os
import subprocess

from common import BUILD, REPO, SEED, until, wssign
from wssd_test import Daemon, check, check_eq, current_tmpdir, is_uuid, run_tests, verify

FAST = {"backoff_initial": 0.05, "backoff_max": 0.2, "connect_timeout": 5}


def approve_all(req):
    return True


def hanging():
    """A policy that never decides: (asked event, cancel reasons seen, policy)."""
    started, cancelled = asyncio.Event(), []

    async def policy(req):
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(req.cancel_reason)
            raise
    return started, cancelled, policy


async def test_sign():
    seen = []

    async def policy(req):
        seen.append(req)
        await asyncio.sleep(0.05)  # a policy may take its time
        return req.message.startswith(b"invoice:")

    async with Daemon() as d:
        async with wssign.Signer(d.url(), wssign.Key.from_seed(SEED), policy=policy,
                                 **FAST) as s:
            session = await s.wait_introduced(5)
            check(is_uuid(session), "session id %r" % session)
            check_eq(s.state, "introduced", "state")
            client = wssign.AsyncClient("http://127.0.0.1:%d" % d.control_port)
            sig = await client.sign(s.public_key_b64, b"invoice:42", timeout=5)
            check(verify(s.public_key, b"invoice:42", sig.signature), "signature verifies")
            check_eq(sig.request_id, seen[0].request_id, "request id seen by the policy")
            check_eq(seen[0].message, b"invoice:42", "message seen by the policy")
            check(seen[0].expires_in() > 0, "expires_in")
            check_eq(seen[0].label, None, "no label from this daemon")
            # The synchronous client, from a thread.
            sync = wssign.Client("http://127.0.0.1:%d" % d.control_port)
            sig = await asyncio.to_thread(sync.sign, s.public_key, "invoice:43")
            check(verify(s.public_key, b"invoice:43", sig.signature), "sync signature")
            check_eq(len(sig.signature_b64), 88, "signature_b64")
            status = await client.key_status(s.public_key)
            check_eq((status.connected, status.session_id, status.pending), (True, session, 0),
                     "key status")
            check(await client.health(), "health")


async def test_reject():
    async def policy(req):
        if req.message == b"no reason":
            return False
        if req.message == b"raise":
            raise wssign.Reject("raised reason")
        if req.message == b"broken":
            raise RuntimeError("a bug in the policy")
        return wssign.Reject("not on a Sunday")

    async with Daemon() as d:
        async with wssign.Signer(d.url(), wssign.Key.from_seed(SEED), policy=policy,
                                 **FAST) as s:
            await s.wait_introduced(5)
            client = wssign.AsyncClient("http://127.0.0.1:%d" % d.control_port)
            for message in (b"returned", b"no reason", b"raise", b"broken"):
                try:
                    await client.sign(s.public_key, message)
                except wssign.RejectedError as e:
                    check_eq(e.status, 422, "status")
                    check(is_uuid(e.request_id), "request id of a rejection: %r" % e.request_id)
                    check_eq(e.code, "rejected", "code")
                else:
                    raise AssertionError("%r was signed" % message)
            log = d.log_text()
            check_eq(log.count("outcome=rejected"), 4, "rejections in the audit log")


async def test_timeout_cancels_the_policy():
    started, cancelled, policy = hanging()
    async with Daemon() as d:
        async with wssign.Signer(d.url(), wssign.Key.from_seed(SEED), policy=policy,
                                 **FAST) as s:
            await s.wait_introduced(5)
            client = wssign.Client("http://127.0.0.1:%d" % d.control_port)
            try:
                await asyncio.to_thread(client.sign, s.public_key, b"slow", timeout=0.3)
            except wssign.TimeoutError as e:
                check_eq(e.status, 504, "status")
                check(isinstance(e, TimeoutError), "also a builtin TimeoutError")
            else:
                raise AssertionError("signed despite the timeout")
            check(started.is_set(), "policy was asked")
            await until(lambda: cancelled, 5, "the policy's cancellation")
            check_eq(cancelled, ["timeout"], "cancel reason")
            check_eq(s.pending, {}, "nothing in flight")


async def test_requester_cancel():
    started, cancelled, policy = hanging()
    async with Daemon() as d:
        async with wssign.Signer(d.url(), wssign.Key.from_seed(SEED), policy=policy,
                                 **FAST) as s:
            await s.wait_introduced(5)
            client = wssign.AsyncClient("http://127.0.0.1:%d" % d.control_port)
            task = asyncio.create_task(client.sign(s.public_key, b"withdrawn"))
            await asyncio.wait_for(started.wait(), 5)
            task.cancel()
            await until(lambda: cancelled, 5, "the policy's cancellation")
            check_eq(cancelled, ["requester_cancelled"], "cancel reason")
            await until(lambda: "outcome=cancelled" in d.log_text(), 5, "the audit line")


async def test_supersede_on_reconnect():
    """A second connection for the key takes over; the pending request moves to it."""
    first_seen, first_cancel = [], []

    async def slow(req):
        first_seen.append(req)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            first_cancel.append(req.cancel_reason)
            raise

    second_seen = []

    def approve(req):
        second_seen.append(req)
        return True

    async with Daemon() as d:
        key = wssign.Key.from_seed(SEED)
        a = wssign.Signer(d.url(), key, policy=slow, backoff_initial=0.05, backoff_max=30)
        await a.start()
        await a.wait_introduced(5)
        client = wssign.AsyncClient("http://127.0.0.1:%d" % d.control_port)
        task = asyncio.create_task(client.sign(key.public_key, b"moved", timeout=10))
        await until(lambda: first_seen, 5, "the request at the first signer")
        async with wssign.Signer(d.url(), key, policy=approve, **FAST) as b:
            await b.wait_introduced(5)
            sig = await asyncio.wait_for(task, 10)
            check(verify(key.public_key, b"moved", sig.signature), "signature verifies")
            check_eq(second_seen[0].request_id, first_seen[0].request_id, "same request id")
            check_eq(sig.request_id, first_seen[0].request_id, "answered request id")
            await until(lambda: first_cancel, 5, "the first signer's cancellation")
            check_eq(first_cancel, ["connection_closed"], "cancel reason")
            check_eq(a.close_code, 4001, "first signer's close code")
            # The first signer waits its full backoff_max instead of pushing back.
            await asyncio.sleep(0.5)
            check_eq(a.state, "waiting", "first signer state")
            check_eq(b.state, "introduced", "second signer state")
        await a.close()
        check_eq(a.state, "closed", "closed")


async def test_daemon_restart_while_connected():
    async with Daemon() as d:
        async with wssign.Signer(d.url(), wssign.Key.from_seed(SEED), policy=approve_all,
                                 **FAST) as s:
            first = await s.wait_introduced(5)
            await d.astop()
            await until(lambda: s.state != "introduced", 5, "the signer to notice")
            check_eq(s.close_code, 1001, "close code at shutdown")
            await d.astart()  # same ports: the harness kept them
            second = await s.wait_introduced(10)
            check(second != first, "a new session")
            check_eq(s.introductions, 2, "introductions")
            sig = await wssign.AsyncClient("http://127.0.0.1:%d" % d.control_port).sign(
                s.public_key, b"after restart")
            check(verify(s.public_key, b"after restart", sig.signature), "signature verifies")


class SmallOrderKey:
    """A key object whose public key is the identity point, a small-order point."""
    public_key = bytes([1]) + bytes(31)

    def sign(self, data):
        return bytes(64)


async def test_refused_keys():
    async with Daemon({"server_names": ["localhost"]}) as d:
        # A key the daemon never registers: stopped with IntroductionRefused.
        s = wssign.Signer(d.url("localhost"), SmallOrderKey(), policy=approve_all, **FAST)
        await s.start()
        try:
            await s.wait_introduced(5)
        except wssign.IntroductionRefused as e:
            check_eq((e.code, e.close_code), ("bad_key", 1008), "refusal")
        else:
            raise AssertionError("a small-order key was introduced")
        check_eq(s.state, "closed", "state after a refusal")
        try:
            await s.wait_closed()
        except wssign.IntroductionRefused:
            pass
        else:
            raise AssertionError("wait_closed() did not raise")
        # A host the daemon does not serve: bad_host, also for good.
        async with wssign.Signer(d.url("127.0.0.1"), wssign.Key.from_seed(SEED),
                                 policy=approve_all, **FAST) as s:
            try:
                await s.wait_introduced(5)
            except wssign.IntroductionRefused as e:
                check_eq(e.code, "bad_host", "refusal")
            else:
                raise AssertionError("introduced for a host not in server_names")
        check_eq(d.log_text().count("event=introduced"), 0, "introductions")
    # Refused before connecting.
    for bad in (lambda: wssign.Key.from_seed(b"short"),
                lambda: wssign.Signer("ws://signer.example.com/v1/ws", wssign.Key.generate(),
                                      policy=approve_all),
                lambda: wssign.Signer("http://127.0.0.1/v1/ws", wssign.Key.generate(),
                                      policy=approve_all),
                lambda: wssign.Signer("ws://127.0.0.1/v1/ws", object(), policy=approve_all)):
        try:
            bad()
        except (ValueError, TypeError):
            continue
        raise AssertionError("accepted")


def test_key_files():
    tmp = current_tmpdir()
    path = os.path.join(tmp, "signer.key")
    key = wssign.Key.generate()
    key.save(path)
    check_eq(os.stat(path).st_mode & 0o777, 0o600, "mode of a saved key")
    check_eq(wssign.load_key(path).public_key, key.public_key, "PEM round trip")
    try:
        key.save(path)
    except FileExistsError:
        pass
    else:
        raise AssertionError("save() overwrote a key file")
    os.chmod(path, 0o644)
    try:
        wssign.load_key(path)
    except wssign.KeyFileError as e:
        check("chmod 600" in str(e), "message gives the fix: %s" % e)
    else:
        raise AssertionError("a key file readable by others was accepted")
    hexfile = os.path.join(tmp, "seed.hex")
    fd = os.open(hexfile, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, (SEED.hex().upper() + "\n").encode())
    os.close(fd)
    check_eq(wssign.load_key(hexfile).public_key_b64,
             "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "hex seed file")
    for bad in (tmp, "/nonexistent/key"):
        try:
            wssign.load_key(bad)
        except wssign.KeyFileError:
            continue
        raise AssertionError("loaded %s" % bad)
    # The files `wssign keygen` writes.
    tool = os.path.join(BUILD, "src", "wssign", "wssign")
    if os.path.exists(tool):
        made = os.path.join(tmp, "tool.key")
        out = subprocess.run([tool, "keygen", "-o", made], check=True, capture_output=True,
                             text=True).stdout.strip()
        check_eq(wssign.load_key(made).public_key_b64, out, "wssign keygen file")


async def test_example_signer():
    """examples/python_signer.py signs for the daemon."""
    async with Daemon() as d:
        script = os.path.join(REPO, "examples", "python_signer.py")
        proc = await asyncio.create_subprocess_exec(
            "/usr/bin/python3", script, "--url", d.url(), "--seed", SEED.hex(),
            "--allow-prefix", "invoice:", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 10)
            check(b"introduced" in line, "example's first line: %r" % line)
            client = wssign.AsyncClient("http://127.0.0.1:%d" % d.control_port)
            key = wssign.Key.from_seed(SEED)
            sig = await client.sign(key.public_key, b"invoice:7")
            check(verify(key.public_key, b"invoice:7", sig.signature), "signature verifies")
            try:
                await client.sign(key.public_key, b"transfer everything")
            except wssign.RejectedError:
                pass
            else:
                raise AssertionError("the example signed outside its prefix")
        finally:
            proc.terminate()
            await proc.wait()


if __name__ == "__main__":
    run_tests(globals())
