"""A process seen from /proc: memory, CPU time, descriptors."""

import os
import re
import threading

from .base import TestFailure


def status_kib(pid, field="VmRSS"):
    """A "kB" line of /proc/PID/status (VmRSS, VmHWM, VmLck, ...) in KiB."""
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^%s:\s+(\d+) kB" % re.escape(field), f.read(), re.M)
    if m is None:
        raise TestFailure("no %s for pid %d" % (field, pid))
    return int(m.group(1))


def rss_kib(pid):
    """VmRSS of pid in KiB."""
    return status_kib(pid, "VmRSS")


def cpu_seconds(pid):
    """User + system CPU seconds used by pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    """The number of descriptors pid holds."""
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
