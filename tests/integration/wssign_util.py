#!/usr/bin/python3
"""
Helpers for the wssign end-to-end tests (tests/integration/2N-wssign-*.py),
on top of the shared daemon harness wssd_test.py.

The tool is $WSSIGN_BIN, or dirname($WSSIGND_BIN)/src/wssign/wssign.

  run(args, ...)            runs wssign once; returns (rc, stdout, stderr)
  keygen(dir, name)         makes a key file with `wssign keygen`; returns (path, pubkey b64)
  openssl_pubkey(path)      the public key of a PEM key, derived by the openssl CLI
  Agent(url, key, ...)      a `wssign agent` process with its log on a file
  request(d, pk, ...)       `wssign request` against a Daemon's control port
  kill_daemon(d)            SIGKILL a Daemon and tell the harness it is gone
"""

import base64
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssd_test as T  # noqa: E402
from wssd_test import TestFailure  # noqa: E402

WSSIGN = os.environ.get("WSSIGN_BIN") or os.path.join(os.path.dirname(T.BIN), "src", "wssign",
                                                      "wssign")
SRC_DIR = os.path.join(T.REPO, "src", "wssign")


def run(args, input=None, timeout=30.0, env=None):
    """Runs wssign with args; returns (rc, stdout text, stderr text)."""
    if not os.path.exists(WSSIGN):
        raise TestFailure("wssign binary not found: %s (set WSSIGN_BIN)" % WSSIGN)
    p = subprocess.run([WSSIGN] + [str(a) for a in args], input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=env,
                       stdin=None if input is not None else subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def keygen(directory=None, name="key.pem"):
    """`wssign keygen -o`; returns (path, public key base64)."""
    path = os.path.join(directory or T.current_tmpdir(), name)
    rc, out, err = run(["keygen", "-o", path])
    if rc != 0:
        raise TestFailure("keygen failed (%d): %s" % (rc, err))
    return path, out.strip()


def openssl_pubkey(path) -> str:
    """Public key of a PEM private key, as `openssl pkey -pubout -outform DER | tail -c 32`."""
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=30).stdout
    return base64.b64encode(der[-32:]).decode()


def openssl_genpkey(path):
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", path], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    os.chmod(path, 0o600)
    return path


def control_url(d) -> str:
    return "http://127.0.0.1:%d" % d.control_port


def request(d, pk, *args, timeout=90.0):
    """`wssign request --control <d> --key pk ARGS`; returns (rc, stdout, stderr)."""
    return run(["request", "--control", control_url(d), "--key", pk] + list(args),
               timeout=timeout)


def kill_daemon(d):
    """SIGKILL, as a crash would; the harness then no longer expects a clean exit."""
    d.proc.kill()
    d.returncode = d.proc.wait()
    try:
        d._log.close()
    except Exception:
        pass
    if d in T._current["daemons"]:
        T._current["daemons"].remove(d)


class Agent:
    """One `wssign agent` process; stderr (its logfmt log) goes to a file."""

    def __init__(self, url, key, *extra, name="agent"):
        self.log_path = os.path.join(T.current_tmpdir(), name + ".log")
        self._log = open(self.log_path, "wb")
        self.argv = [WSSIGN, "agent", "--url", url, "--key", key] + [str(a) for a in extra]
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=self._log,
                                     stdin=subprocess.DEVNULL)
        T._current["procs"].append(self.proc)

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def lines(self, pattern):
        return [ln for ln in self.log().splitlines() if re.search(pattern, ln)]

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Waits until `count` log lines match the regex; returns the last match object."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in (re.search(pattern, ln) for ln in self.log().splitlines()) if m]
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None:
                raise TestFailure("agent exited (%d) before logging %r; log:\n%s"
                                  % (self.proc.returncode, pattern, self.log()))
            if time.monotonic() > deadline:
                raise TestFailure("agent did not log %r (x%d) within %.1f s; log:\n%s"
                                  % (pattern, count, timeout, self.log()))
            time.sleep(0.02)

    def wait_introduced(self, timeout=10.0, count=1):
        return self.wait_log(r"event=introduced public_key=(\S+)", timeout, count)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Sends sig and waits; returns the exit status (fails if it does not exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise TestFailure("agent still running %.1f s after signal %d; log:\n%s"
                                  % (timeout, sig, self.log()))
        self._log.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._log.close()


def option_table(source_file, table):
    """Long option names of `static const struct option <table>[]` in src/wssign/<file>."""
    with open(os.path.join(SRC_DIR, source_file)) as f:
        text = f.read()
    m = re.search(r"static const struct option %s\[\] = \{(.*?)\n\};" % re.escape(table), text,
                  re.S)
    if not m:
        raise TestFailure("option table %s not found in %s" % (table, source_file))
    return re.findall(r'\{"([a-z0-9-]+)",', m.group(1))
