#!/usr/bin/python3
"""
wssign agent keeps its key the way ssh-agent does: once it runs, the process
is not dumpable (so /proc/PID/mem and ptrace are closed to other processes of
the same user, and its /proc files belong to root), its core-dump limit is 0
whatever it was started with, and the key sits in locked memory (VmLck; not
checked in an ASan build, where mlock does nothing).

When the suite runs as root, the agent runs as an unprivileged user (root may
read any process's memory), and a process of that same user tries to read it.
"""

import os
import re
import resource
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssd_test as T  # noqa: E402
from wssd_test import PYTHON, check, check_eq, run_tests  # noqa: E402
from wssign_util import (Agent, Peer, introduce, keygen, rid, sanitized,  # noqa: E402
                         sign_request)

NOBODY = 65534
AS_NOBODY = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--"]


def agent_user_setup():
    """(prefix for the agent's command line, key path, public key, uid it runs as)."""
    if os.geteuid() != 0:
        key, pk = keygen()
        return [], key, pk, os.geteuid()
    # root reads any process's memory: run the agent, and the reader, as nobody
    tmp = T.current_tmpdir()
    os.chmod(tmp, 0o711)
    home = os.path.join(tmp, "nobody")
    os.mkdir(home, 0o700)
    os.chown(home, NOBODY, NOBODY)
    key, pk = keygen(home)
    os.chown(key, NOBODY, NOBODY)
    return AS_NOBODY, key, pk, NOBODY


def core_limit_to(value):
    """preexec_fn: start the agent with a core-dump limit of value bytes (or the
    most the hard limit allows, when not root)."""
    def set_limit():
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        if hard != resource.RLIM_INFINITY and os.geteuid() == 0:
            hard = max(hard, value)
        soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    return set_limit


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return f.read()


def test_agent_is_not_dumpable_and_has_no_core_limit():
    prefix, key, pk, uid = agent_user_setup()
    with Peer() as peer:
        agent = Agent(peer.url, key, prefix=prefix, preexec_fn=core_limit_to(1 << 20))
        conn = peer.accept()
        introduce(conn, pk, "127.0.0.1")
        agent.wait_introduced()
        check_eq(sign_request(conn, rid(1), b"still signs")["type"], "sign_response",
                 "the agent signs with its protected key")
        pid = agent.proc.pid
        status = proc_status(pid)
        check_eq(int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)), uid, "agent uid")

        # not dumpable: the kernel hands its /proc files to root
        for name in ("status", "mem", "environ"):
            st = os.stat("/proc/%d/%s" % (pid, name))
            check_eq(st.st_uid, 0, "/proc/PID/%s owner (a dumpable process owns it)" % name)

        # another process of the same user cannot read its memory
        reader = ("import sys\n"
                  "try:\n"
                  "    open('/proc/%d/mem', 'rb').close()\n"
                  "except PermissionError:\n"
                  "    sys.exit(3)\n"
                  "sys.exit(0)\n" % pid)
        p = subprocess.run(prefix + [PYTHON, "-c", reader], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        check_eq(p.returncode, 3, "opening /proc/PID/mem as the agent's user: %r" % p.stderr)

        # core dumps off, whatever the limit it was started with
        with open("/proc/%d/limits" % pid) as f:
            limits = f.read()
        m = re.search(r"^Max core file size\s+(\S+)\s+(\S+)", limits, re.M)
        check(m is not None, "core limit line in /proc/PID/limits: %r" % limits)
        check_eq((m.group(1), m.group(2)), ("0", "0"), "core file size soft/hard limits")

        # the key's pages are locked in RAM (nothing else in the agent locks
        # memory); ASan turns mlock into a no-op
        vmlck = int(re.search(r"^VmLck:\s+(\d+) kB", status, re.M).group(1))
        check(vmlck >= 4 or sanitized(), "VmLck is %d kB: the key memory is not locked" % vmlck)
        check(not agent.lines(r"event=key_not_locked"), "key_not_locked logged")

        check_eq(agent.stop(), 0, "agent exit status after SIGTERM")


def test_hup_and_quit_stop_cleanly():
    """SIGHUP and SIGQUIT (whose default would dump core) end the agent
    through its orderly stop, which wipes the key: exit 0, event=stopped."""
    key, pk = keygen()
    with Peer() as peer:
        for i, sig in enumerate((signal.SIGHUP, signal.SIGQUIT)):
            agent = Agent(peer.url, key, name="a%d" % i)
            conn = peer.accept()
            introduce(conn, pk, "127.0.0.1")
            agent.wait_introduced()
            check_eq(agent.stop(sig), 0, "exit status after signal %d" % sig)
            check(agent.lines(r"event=stopped"), "stopped logged after signal %d" % sig)
            conn.close()


run_tests(globals())
