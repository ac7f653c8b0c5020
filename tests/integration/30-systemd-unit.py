#!/usr/bin/python3
"""
The unit the build generates from systemd/wssignd.service.in (in the build
directory; no copy is kept in the source tree): `systemd-analyze verify`
accepts it (with ExecStart pointed at the built binary), `systemd-analyze
security --offline=true --threshold=15` passes with an exposure of at most
1.5, it carries the service settings the daemon's notify, reload and drain
support rely on, and names the installed paths (the daemon in sbin, the
configuration under the install prefix's sysconfdir). A build without
libsystemd generates a Type=simple unit without a watchdog, which verifies
and scores the same. Where strace is installed, the system calls the daemon
makes while serving TLS, sd_notify, a reload, /metrics and a shutdown all
pass the unit's SystemCallFilter=.
Skipped (exit 0) where systemd-analyze is missing.
"""

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_util import BUILD_DIR, configure
from ops_util import NotifySocket
from wssd_test import (BIN, REPO, Daemon, TestFailure, ascrape, check, check_eq,
                       current_tmpdir, run_tests)

UNIT = os.path.join(BUILD_DIR, "wssignd.service")
MAX_EXPOSURE = 1.5
ANALYZE = shutil.which("systemd-analyze")

if ANALYZE is None:
    print("skipped: systemd-analyze not found; the unit checks need systemd's tools")
    sys.exit(0)


def unit_settings(path):
    """[(section, key, value)] of a unit file, in order."""
    out, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            out.append((section, key.strip(), value.strip()))
    return out


def settings_dict(path):
    d = {}
    for section, key, value in unit_settings(path):
        d.setdefault((section, key), []).append(value)
    return d


def local_copy(unit=UNIT, subdir=""):
    """The unit, renamed nothing, with ExecStart running the built binary."""
    check(os.access(BIN, os.X_OK), "daemon binary not found: %s (set WSSIGND_BIN)" % BIN)
    with open(unit) as f:
        text = f.read()
    new, n = re.subn(r"^ExecStart=\S+", "ExecStart=" + os.path.abspath(BIN), text, flags=re.M)
    check_eq(n, 1, "ExecStart= lines")
    directory = os.path.join(current_tmpdir(), subdir)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "wssignd.service")
    with open(path, "w") as f:
        f.write(new)
    return path


def analyze(args):
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_COLORS="0", SYSTEMD_PAGER="cat")
    p = subprocess.run([ANALYZE] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, env=env, cwd=current_tmpdir(), stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def verify_unit(path):
    rc, out, err = analyze(["verify", path])
    mine = [l for l in (out + err).splitlines() if "wssignd" in l]
    check_eq(rc, 0, "systemd-analyze verify exit status (output %r)" % (out + err))
    check_eq(mine, [], "systemd-analyze verify complaints about the unit")


def security_score(path):
    rc, out, err = analyze(["security", "--offline=true", "--threshold=15", path])
    m = re.search(r"Overall exposure level for wssignd\.service: ([0-9]+\.[0-9]+) (\w+)", out)
    if m is None:
        raise TestFailure("no exposure figure in the output (rc %d):\n%s\n%s" % (rc, out, err))
    print("  %s" % m.group(0), flush=True)
    check_eq(rc, 0, "systemd-analyze security --threshold=15 exit status")
    check(float(m.group(1)) <= MAX_EXPOSURE,
          "exposure %s is above %.1f" % (m.group(1), MAX_EXPOSURE))


def test_generated_not_committed():
    """One copy: the source tree holds the template only, the build the unit."""
    check(os.path.exists(UNIT), "the build generated no unit at %s" % UNIT)
    check(not os.path.exists(os.path.join(REPO, "systemd", "wssignd.service")),
          "systemd/wssignd.service is in the source tree beside its template")
    with open(UNIT) as f:
        text = f.read()
    check_eq(re.findall(r"@[A-Za-z0-9_]+@", text), [], "placeholders left in the unit")


def test_verify():
    verify_unit(local_copy())


def test_security_score():
    security_score(local_copy())


def test_settings():
    s = settings_dict(UNIT)

    def one(key, want, section="Service"):
        got = s.get((section, key))
        check(got is not None, "%s= missing from [%s]" % (key, section))
        check_eq(got[-1], want, "%s=" % key)

    one("Type", "notify")
    one("NotifyAccess", "main")
    prefix = install_prefix()
    sysconf = {"/usr": "/etc"}.get(prefix, "/etc" + prefix if prefix.startswith("/opt/")
                                   else prefix + "/etc")
    one("ExecStart", "%s/sbin/wssignd -c %s/wssignd/wssignd.json" % (prefix, sysconf))
    one("ExecReload", "/bin/kill -HUP $MAINPID")
    one("WatchdogSec", "10s")
    one("Restart", "on-failure")
    one("RestartSec", "1s")
    one("TimeoutStopSec", "10s")
    one("NoNewPrivileges", "yes")
    one("ProtectSystem", "strict")
    one("ProtectHome", "yes")
    one("PrivateTmp", "yes")
    one("PrivateDevices", "yes")
    one("PrivateUsers", "yes")
    one("MemoryDenyWriteExecute", "yes")
    one("LockPersonality", "yes")
    one("CapabilityBoundingSet", "")
    one("ConfigurationDirectory", "wssignd")
    check(s.get(("Service", "DynamicUser")) == ["yes"] or ("Service", "User") in s,
          "neither DynamicUser=yes nor User= is set")
    check(("Service", "LimitNOFILE") in s, "LimitNOFILE= missing")
    families = s.get(("Service", "RestrictAddressFamilies"), [""])[-1].split()
    check_eq(sorted(families), ["AF_INET", "AF_INET6", "AF_UNIX"], "RestrictAddressFamilies")
    filters = s.get(("Service", "SystemCallFilter"), [])
    check("@system-service" in filters, "SystemCallFilter=@system-service missing: %r" % filters)
    denied = [f for f in filters if f.startswith("~")]
    check(any("@privileged" in f for f in denied) and any("@resources" in f for f in denied),
          "SystemCallFilter=~@privileged @resources missing: %r" % filters)
    # the shutdown drain (5 s by default) fits inside the stop timeout
    check(("Service", "TimeoutStopSec") in s, "TimeoutStopSec= missing")


def install_prefix():
    with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
        m = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", f.read(), re.M)
    check(m is not None, "no CMAKE_INSTALL_PREFIX in the build's CMakeCache.txt")
    return m.group(1)


def test_without_libsystemd_type_simple():
    """Built without libsystemd the daemon never sends READY=1 or WATCHDOG=1:
    the unit is Type=simple without WatchdogSec=, and still verifies and
    scores within the limit."""
    build = os.path.join(current_tmpdir(), "build")
    rc, out = configure(build, ["-DCMAKE_INSTALL_PREFIX=/usr", "-DWSSIGND_BUILD_TESTS=OFF"],
                        hidden={"libsystemd"})
    check_eq(rc, 0, "cmake with libsystemd absent (output:\n%s)" % out)
    check("sd_notify support: no" in out, "configure output:\n%s" % out)
    unit = os.path.join(build, "wssignd.service")
    s = settings_dict(unit)
    check_eq(s.get(("Service", "Type")), ["simple"], "Type=")
    check(("Service", "WatchdogSec") not in s, "WatchdogSec= in a unit that cannot ping it")
    check(("Service", "NotifyAccess") not in s, "NotifyAccess= in a Type=simple unit")
    check_eq(s.get(("Service", "ExecStart")),
             ["/usr/sbin/wssignd -c /etc/wssignd/wssignd.json"], "ExecStart=")
    path = local_copy(unit, "simple")
    verify_unit(path)
    security_score(path)


def expand_syscall_group(name, seen=None):
    """The system calls in a systemd-analyze syscall-filter group, nested groups included."""
    seen = set() if seen is None else seen
    rc, out, err = analyze(["syscall-filter", name])
    check_eq(rc, 0, "systemd-analyze syscall-filter %s (%r)" % (name, err))
    calls = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        if item.startswith("@"):
            if item not in seen:
                seen.add(item)
                calls |= expand_syscall_group(item, seen)
        else:
            calls.add(item)
    return calls


class TracedDaemon(Daemon):
    """The daemon under strace -f -c; signals go to the daemon, not to strace."""

    def __init__(self, trace_out, **kw):
        super().__init__(**kw)
        self.trace_out = trace_out

    def argv(self):
        return ["strace", "-f", "-qq", "-c", "-o", self.trace_out, "--"] + super().argv()

    def daemon_pid(self):
        with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
            return int(f.read().split()[0])

    def reload(self):
        os.kill(self.daemon_pid(), signal.SIGHUP)


async def test_syscalls_within_filter():
    """The calls the daemon makes (TLS, sd_notify, verifier threads, reload,
    metrics, shutdown) are all allowed by the unit's SystemCallFilter= lines."""
    if shutil.which("strace") is None:
        print("  skipped: strace not found", flush=True)
        return
    allow, deny = set(), set()
    for _, key, value in unit_settings(UNIT):
        if key != "SystemCallFilter":
            continue
        target = deny if value.startswith("~") else allow
        for item in value.lstrip("~").split():
            target |= expand_syscall_group(item) if item.startswith("@") else {item}
    check(allow, "no allow list in SystemCallFilter=")

    ns = NotifySocket()
    out = os.path.join(current_tmpdir(), "strace.out")
    d = TracedDaemon(out, config={"requests": {"verify_threads": 2}}, tls=True, journal=True,
                     env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "400000"})
    await d.astart()
    async with d.signer() as s:
        status, body, _ = await d.sign(s.pk, b"traced", timeout_ms=10000)
        check_eq(status, 200, "round trip under strace (body %r)" % (body,))
        d.reload()
        await d.await_log("event=reload outcome=ok", 10)
        await ascrape(d.control_port)
        status, body, _ = await d.sign(os.urandom(32), b"absent", timeout_ms=1000)
        check_eq(status, 404, "absent key under strace")
    pid = d.daemon_pid()
    os.kill(pid, signal.SIGTERM)
    try:
        d.returncode = await asyncio.to_thread(d.proc.wait, 10)
    except subprocess.TimeoutExpired:
        # the exit itself is 34-drain.py's subject; here only the calls count
        print("  note: the daemon did not exit within 10 s of SIGTERM; killed", flush=True)
        os.kill(pid, signal.SIGKILL)
        d.returncode = await asyncio.to_thread(d.proc.wait, 10)
    ns.close()
    used = set()
    with open(out) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0][0].isdigit() and parts[-1] != "total":
                used.add(parts[-1])
    check(len(used) > 20, "strace summary lists only %r" % sorted(used))
    check_eq(sorted(used - allow), [], "system calls outside the allow list")
    check_eq(sorted(used & deny), [], "system calls in the deny list")


run_tests(globals())
