#!/usr/bin/python3
"""
systemd/wssignd.service: `systemd-analyze verify` accepts it (with ExecStart
pointed at the built binary), `systemd-analyze security --offline=true
--threshold=15` passes with an exposure of at most 1.5, it carries the
service settings the daemon's notify, reload and drain support rely on, and
it is systemd/wssignd.service.in rendered for the /usr/local prefix. Where
strace is installed, the system calls the daemon makes while serving TLS,
sd_notify, a reload, /metrics and a shutdown all pass the unit's
SystemCallFilter=.
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
from ops_util import NotifySocket, OpsDaemon, ascrape
from wssd_test import BIN, REPO, TestFailure, check, check_eq, current_tmpdir, run_tests

UNIT = os.path.join(REPO, "systemd", "wssignd.service")
UNIT_IN = os.path.join(REPO, "systemd", "wssignd.service.in")
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


def local_copy():
    """The unit, renamed nothing, with ExecStart running the built binary."""
    check(os.access(BIN, os.X_OK), "daemon binary not found: %s (set WSSIGND_BIN)" % BIN)
    with open(UNIT) as f:
        text = f.read()
    new, n = re.subn(r"^ExecStart=\S+", "ExecStart=" + os.path.abspath(BIN), text, flags=re.M)
    check_eq(n, 1, "ExecStart= lines")
    path = os.path.join(current_tmpdir(), "wssignd.service")
    with open(path, "w") as f:
        f.write(new)
    return path


def analyze(args):
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_COLORS="0", SYSTEMD_PAGER="cat")
    p = subprocess.run([ANALYZE] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, env=env, cwd=current_tmpdir(), stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_verify():
    path = local_copy()
    rc, out, err = analyze(["verify", path])
    mine = [l for l in (out + err).splitlines() if "wssignd" in l]
    check_eq(rc, 0, "systemd-analyze verify exit status (output %r)" % (out + err))
    check_eq(mine, [], "systemd-analyze verify complaints about the unit")


def test_security_score():
    path = local_copy()
    rc, out, err = analyze(["security", "--offline=true", "--threshold=15", path])
    m = re.search(r"Overall exposure level for wssignd\.service: ([0-9]+\.[0-9]+) (\w+)", out)
    if m is None:
        raise TestFailure("no exposure figure in the output (rc %d):\n%s\n%s" % (rc, out, err))
    print("  %s" % m.group(0), flush=True)
    check_eq(rc, 0, "systemd-analyze security --threshold=15 exit status")
    check(float(m.group(1)) <= MAX_EXPOSURE,
          "exposure %s is above %.1f" % (m.group(1), MAX_EXPOSURE))


def test_settings():
    s = settings_dict(UNIT)

    def one(key, want, section="Service"):
        got = s.get((section, key))
        check(got is not None, "%s= missing from [%s]" % (key, section))
        check_eq(got[-1], want, "%s=" % key)

    one("Type", "notify")
    one("NotifyAccess", "main")
    one("ExecStart", "/usr/local/bin/wssignd -c /usr/local/etc/wssignd/wssignd.json")
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


def test_template_renders_to_unit():
    with open(UNIT_IN) as f:
        template = f.read()
    placeholders = sorted(set(re.findall(r"@[A-Za-z0-9_]+@", template)))
    check_eq(placeholders, ["@CMAKE_INSTALL_FULL_BINDIR@", "@CMAKE_INSTALL_FULL_SYSCONFDIR@"],
             "placeholders in wssignd.service.in")
    rendered = (template.replace("@CMAKE_INSTALL_FULL_BINDIR@", "/usr/local/bin")
                .replace("@CMAKE_INSTALL_FULL_SYSCONFDIR@", "/usr/local/etc"))
    with open(UNIT) as f:
        plain = f.read()
    if rendered != plain:
        import difflib
        diff = "".join(difflib.unified_diff(rendered.splitlines(True), plain.splitlines(True),
                                            "wssignd.service.in (rendered)", "wssignd.service"))
        raise TestFailure("wssignd.service differs from the rendered template:\n" + diff)


def test_template_for_usr_prefix_verifies():
    """The template rendered for prefix /usr (config in /etc) is a valid unit too."""
    with open(UNIT_IN) as f:
        template = f.read()
    rendered = (template.replace("@CMAKE_INSTALL_FULL_BINDIR@", os.path.dirname(
        os.path.abspath(BIN))).replace("@CMAKE_INSTALL_FULL_SYSCONFDIR@", "/etc"))
    check(os.path.basename(BIN) == "wssignd", "binary is not named wssignd: %s" % BIN)
    path = os.path.join(current_tmpdir(), "wssignd.service")
    with open(path, "w") as f:
        f.write(rendered)
    rc, out, err = analyze(["verify", path])
    check_eq(rc, 0, "systemd-analyze verify of the /usr rendering (output %r)" % (out + err))


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


class TracedDaemon(OpsDaemon):
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
