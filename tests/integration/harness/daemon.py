"""The daemon process under test."""

import asyncio
import json
import os
import re
import signal
import ssl
import subprocess
import time

from . import base
from .base import (BIN, READY_TIMEOUT, STOP_TIMEOUT, WRAPPER, TestFailure, b64, b64url, check,
                   check_eq, current_tmpdir, die_with_parent, make_cert, read_text, unb64, verify,
                   write_json)
from .httpc import ahttp, http
from .signer import Signer

_READY_LISTEN = re.compile(r"event=ready .*?\blisten=(\S+) .*?\bcontrol=(\S+)")

# Variables a service manager sets; one inherited from the test runner's own
# service must not reach the daemon unless a test sets it.
_SERVICE_ENV = ("JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


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
    `async with`), or call start()/stop() (astart()/astop()).

    tls=True serves wss:// with a fresh certificate (cafile, ssl_context);
    control_tls=True serves the control API over HTTPS with another
    (control_cafile, control_ssl_context), which http(), ahttp() and what is
    built on them then use.

    env is added to (or, for a value of None, removed from) the test's
    environment. stdout and stderr both go to log_path. journal=True sets
    JOURNAL_STREAM to the device and inode of that file, as systemd does for
    a service whose stderr is the journal stream. wait_ready=False returns
    from start() right after the process is spawned.
    """

    def __init__(self, config=None, tls=False, extra_args=(), use_config_file=True,
                 name="wssignd", env=None, journal=False, wait_ready=True, control_tls=False):
        self.tmp = current_tmpdir()
        self.name = name
        self.config = json.loads(json.dumps(config or {}))
        self.extra_args = list(extra_args)
        self.tls = tls
        self.env = dict(env or {})
        self.journal = journal
        self.wait_ready = wait_ready
        self.proc = None
        self.pid = None
        self.returncode = None
        self.cafile = None
        self.ssl_context = None
        self.control_cafile = None
        self.control_ssl_context = None
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
        if control_tls:
            cert, key = make_cert(self.tmp, name + "-control-tls")
            control["tls"] = {"cert": cert, "key": key}
        if control.get("tls"):
            self.control_cafile = control["tls"]["cert"]
            self.control_ssl_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                                                  cafile=self.control_cafile)
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

    def spawn(self):
        """Starts the process (no waiting)."""
        if not os.path.exists(BIN):
            raise TestFailure("daemon binary not found: %s (set WSSIGND_BIN)" % BIN)
        env = dict(os.environ)
        for k in _SERVICE_ENV:
            env.pop(k, None)
        for k, v in self.env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        self._log = open(self.log_path, "wb")
        if self.journal:
            st = os.fstat(self._log.fileno())
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        self.proc = subprocess.Popen(self.argv(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env,
                                     preexec_fn=die_with_parent)
        self.pid = self.proc.pid
        base._current["daemons"].append(self)
        base._current["started"].append(self)
        return self

    def start(self):
        self.spawn()
        if self.wait_ready:
            self.wait_for_ready()
        return self

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

    def _forget(self):
        try:
            self._log.close()
        except Exception:
            pass
        if self in base._current["daemons"]:
            base._current["daemons"].remove(self)

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
        self._forget()
        if problems and check_exit:
            raise TestFailure("; ".join(problems) + "\nlog:\n" + self.log_text())

    def kill(self):
        """SIGKILL, as a crash would; the harness then no longer expects a clean exit."""
        self.proc.kill()
        self.returncode = self.proc.wait()
        self._forget()

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def signal(self, signum):
        self.proc.send_signal(signum)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.stop(check_exit=exc_type is None)
        return False

    async def astart(self):
        # Spawned from the event loop's thread: die_with_parent ties the child
        # to the thread that forks it, and worker threads end with the loop.
        self.spawn()
        if self.wait_ready:
            await asyncio.to_thread(self.wait_for_ready)
        return self

    async def astop(self, check_exit=True):
        await asyncio.to_thread(self.stop, check_exit)

    async def __aenter__(self):
        return await self.astart()

    async def __aexit__(self, exc_type, exc, tb):
        await self.astop(check_exit=exc_type is None)
        return False

    # -- the log

    def log_text(self):
        return read_text(self.log_path)

    def log_lines(self, since=0):
        return [ln for ln in self.log_text()[since:].splitlines() if ln.strip()]

    def log_mark(self):
        """An offset into log_text() to pass as `since` later."""
        return len(self.log_text())

    def log_count(self, pattern) -> int:
        """How many times the regex pattern occurs in the log."""
        return len(re.findall(pattern, self.log_text()))

    def wait_log(self, pattern, timeout=5.0, count=1, since=0):
        """Waits until the log (from byte offset `since` of its text) holds at
        least `count` matches of the regex `pattern`; returns the matches."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = rx.findall(self.log_text()[since:])
            if len(found) >= count:
                return found
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise TestFailure("daemon exited with %d while waiting for %r; log:\n%s"
                                  % (rc, pattern, self.log_text()))
            if time.monotonic() > deadline:
                raise TestFailure("no %r in the log within %.1f s (found %d of %d)"
                                  % (pattern, timeout, len(found), count))
            time.sleep(0.02)

    async def await_log(self, *args, **kw):
        return await asyncio.to_thread(self.wait_log, *args, **kw)

    def rewrite_config(self, cfg=None, text=None):
        """Replaces the config file with the dict cfg or the raw text."""
        tmp = self.config_path + ".new"
        with open(tmp, "w") as f:
            if text is not None:
                f.write(text)
            else:
                json.dump(cfg, f, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.config_path)

    # -- clients

    def url(self, host="127.0.0.1", path="/v1/ws"):
        scheme = "wss" if self.tls else "ws"
        return "%s://%s:%d%s" % (scheme, host, self.port, path)

    def signer(self, dial="127.0.0.1", **kw):
        """A Signer for this daemon, dialling host `dial`; host= overrides the
        host claimed in the introduction (default: the dialled one)."""
        kw.setdefault("ssl_context", self.ssl_context)
        return Signer(self.url(dial), **kw)

    def http(self, method, path, body=None, token=None, timeout=70, **kw):
        kw.setdefault("tls", self.control_ssl_context)
        return http(method, self.control_port, path, body, token, timeout, **kw)

    async def ahttp(self, method, path, body=None, token=None, timeout=70, **kw):
        kw.setdefault("tls", self.control_ssl_context)
        return await ahttp(method, self.control_port, path, body, token, timeout, **kw)

    async def sign(self, public_key: bytes, message: bytes, timeout_ms=None, token=None,
                   wait_ms=None, label=None, **kw):
        """POST /v1/sign; returns (status, body, elapsed seconds)."""
        body = {"public_key": b64(public_key), "message": b64(message)}
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        if wait_ms is not None:
            body["wait_ms"] = wait_ms
        if label is not None:
            body["label"] = label
        t0 = time.monotonic()
        status, resp = await self.ahttp("POST", "/v1/sign", body, token=token, **kw)
        return status, resp, time.monotonic() - t0

    async def key_status(self, public_key: bytes, token=None):
        """GET /v1/keys/<key>; returns (status, body)."""
        return await self.ahttp("GET", "/v1/keys/" + b64url(public_key), token=token)

    async def wait_key_gone(self, public_key: bytes, within=2.0, token=None):
        """Polls GET /v1/keys/<key> every 50 ms until it answers 404 or
        `within` seconds have passed; returns the last (status, body)."""
        deadline = time.monotonic() + within
        while True:
            status, body = await self.key_status(public_key, token)
            if status == 404 or time.monotonic() > deadline:
                return status, body
            await asyncio.sleep(0.05)

    async def check_sign(self, signer, message=None, timeout_ms=10000, token=None,
                         what="round trip"):
        """POST /v1/sign for signer's key must give 200 and a signature that
        verifies (checked with PyNaCl); returns the body."""
        msg = message if message is not None else b"round trip " + os.urandom(8)
        status, body, _ = await self.sign(signer.pk, msg, timeout_ms=timeout_ms, token=token)
        check_eq(status, 200, "%s: POST /v1/sign (body %r)" % (what, body))
        check(verify(signer.pk, msg, unb64(body["signature"])), "%s: signature verifies" % what)
        return body

    async def aroundtrip(self, seed=None, timeout_ms=15000, what="honest round trip", **kw):
        """A fresh honest signer introduces itself and signs one message end to end."""
        async with self.signer(seed=seed, **kw) as s:
            return await self.check_sign(s, timeout_ms=timeout_ms, what=what)

    def roundtrip(self, **kw):
        """aroundtrip() from synchronous code."""
        return asyncio.run(self.aroundtrip(**kw))
