#!/usr/bin/python3
"""
Journald priorities: when JOURNAL_STREAM names the device and inode of the
daemon's stderr, every log line starts with its syslog priority (<3> err,
<4> warn, <5> notice, <6> info, <7> debug) followed by the usual logfmt
text; without JOURNAL_STREAM, or when it names another file, there is no
prefix.
"""

import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import BIN, Daemon, b64, check, check_eq, current_tmpdir, run_tests, write_json

PRIORITY = {"err": 3, "warn": 4, "notice": 5, "info": 6, "debug": 7}
LINE_RE = re.compile(r"^<([0-7])>level=(err|warn|notice|info|debug) \S")
# Outside the journal every line starts with its time: RFC 3339, milliseconds, UTC.
TS = r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
PLAIN_RE = re.compile(r"^" + TS + r"level=(err|warn|notice|info|debug) \S")


async def exercise(d):
    """Activity that logs at notice, info and debug, and an err from a refused reload."""
    async with d.signer() as s:
        status, body, _ = await d.sign(s.pk, b"journal", timeout_ms=10000)
        check_eq(status, 200, "round trip (body %r)" % (body,))
    bad = d.signer()
    await bad.connect()
    await bad.read_challenge()
    await bad.send_json(bad.introduction(proof=b64(os.urandom(64))))
    await bad.recv_until_closed(5.0)
    good = dict(d.config)
    d.rewrite_config(text="{ not json")
    d.reload()
    await d.await_log(r"event=reload outcome=refused", 5.0)
    d.rewrite_config(good)


def check_prefixed(lines, want_levels):
    check(lines, "no log lines")
    seen = set()
    for line in lines:
        m = LINE_RE.match(line)
        check(m is not None, "line without a syslog priority prefix: %r" % line)
        check_eq(int(m.group(1)), PRIORITY[m.group(2)], "priority of %r" % line)
        seen.add(m.group(2))
    missing = set(want_levels) - seen
    check(not missing, "no line at level(s) %s among %d lines" % (sorted(missing), len(lines)))


def check_plain(lines):
    check(lines, "no log lines")
    for line in lines:
        check(PLAIN_RE.match(line) is not None, "line not starting with ts= level=: %r" % line)


async def test_prefix_when_journal_stream_matches():
    d = Daemon({"log_level": "debug"}, journal=True)
    await d.astart()
    await exercise(d)
    await d.astop()
    check_prefixed(d.log_lines(), ["err", "notice", "info", "debug"])


async def test_no_prefix_without_journal_stream():
    d = Daemon({"log_level": "debug"}, env={"JOURNAL_STREAM": None})
    await d.astart()
    await exercise(d)
    await d.astop()
    check_plain(d.log_lines())


async def test_no_prefix_when_journal_stream_is_another_file():
    other = os.path.join(current_tmpdir(), "elsewhere")
    open(other, "w").close()
    st = os.stat(other)
    d = Daemon({"log_level": "debug"},
                  env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
    await d.astart()
    await exercise(d)
    await d.astop()
    check_plain(d.log_lines())


async def test_log_timestamps_setting():
    """log_timestamps: "off" drops the time outside the journal, "on" keeps it in the
    journal (after the priority, which must come first)."""
    d = Daemon({"log_timestamps": "off"}, env={"JOURNAL_STREAM": None})
    await d.astart()
    await d.astop()
    for line in d.log_lines():
        check(re.match(r"^level=(err|warn|notice|info|debug) \S", line) is not None,
              "log_timestamps off: %r" % line)
    d = Daemon({"log_timestamps": "on"}, journal=True)
    await d.astart()
    await d.astop()
    for line in d.log_lines():
        check(re.match(r"^<[0-7]>" + TS + r"level=", line) is not None,
              "log_timestamps on in the journal: %r" % line)


def test_startup_error_prefixed():
    """A config refused at start-up is logged through the same sink."""
    tmp = current_tmpdir()
    cfg = write_json(os.path.join(tmp, "bad.json"), {"requests": {"no_such_key": 1}})
    log = os.path.join(tmp, "startup.log")
    with open(log, "wb") as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        rc = subprocess.run([BIN, "-c", cfg], stdout=f, stderr=f, env=env,
                            stdin=subprocess.DEVNULL, timeout=10).returncode
    check_eq(rc, 1, "exit status with an unknown key")
    with open(log) as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    check_prefixed(lines, ["err"])


run_tests(globals())
