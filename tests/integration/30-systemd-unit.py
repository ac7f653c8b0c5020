#!/usr/bin/python3
"""
The units the build generates from systemd/wssignd.service.in and
systemd/wssign-agent@.service.in (in the build directory; no copy is kept in
the source tree).

The daemon's: `systemd-analyze verify` accepts it (with its commands pointed
at the built binary), `systemd-analyze security --offline=true
--threshold=15` passes with an exposure of at most 1.5, it carries the
service settings the daemon's notify, reload and drain support rely on, runs
the configuration check before each start and reload, loads the TLS key and
the token file as credentials with a placeholder where a file is missing,
and names the installed paths (the daemon in sbin, the configuration under
the install prefix's sysconfdir). A build without libsystemd generates a
Type=simple unit without a watchdog, which verifies and scores the same.
Where strace is installed, the system calls the daemon makes while serving
TLS, sd_notify, a reload, /metrics and a shutdown all pass the unit's
SystemCallFilter=.

The agent template's: an instance verifies and scores at most 1.5 too; it
reads /etc/wssign/NAME.conf and the key /etc/wssign/NAME.key (as a
credential) and runs the installed wssign with them; its command line,
expanded as systemd expands it from the example settings file, is one the
agent accepts; and where strace is installed, the calls the agent makes (TLS,
a --confirm command, a signature, SIGTERM) pass its SystemCallFilter=.
Skipped (exit 0) where systemd-analyze is missing.
"""

import asyncio
import os
import re
import shlex
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
from wssign_util import WSSIGN, Agent, keygen, request

UNIT = os.path.join(BUILD_DIR, "wssignd.service")
AGENT_UNIT = os.path.join(BUILD_DIR, "wssign-agent@.service")
AGENT_CONF = os.path.join(REPO, "systemd", "wssign-agent.conf")
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


def local_copy(unit=UNIT, subdir="", name="wssignd.service"):
    """The unit as `name`, with its commands running the built binaries."""
    built = {"wssignd": BIN, "wssign": WSSIGN}
    for exe in built.values():
        check(os.access(exe, os.X_OK), "binary not found: %s (set WSSIGND_BIN)" % exe)
    with open(unit) as f:
        text = f.read()
    new, n = re.subn(r"^(Exec\w+)=\S*/(wssignd|wssign)(?=\s)",
                     lambda m: "%s=%s" % (m.group(1), os.path.abspath(built[m.group(2)])),
                     text, flags=re.M)
    check_eq(n, len(re.findall(r"^Exec", text, re.M)) - text.count("ExecReload=/bin/kill"),
             "Exec*= lines running wssignd or wssign")
    directory = os.path.join(current_tmpdir(), subdir)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(new)
    return path


def agent_copy():
    """The agent template as an instance, "laptop", its command on the built wssign."""
    return local_copy(AGENT_UNIT, "agent", "wssign-agent@laptop.service")


def analyze(args):
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_COLORS="0", SYSTEMD_PAGER="cat")
    p = subprocess.run([ANALYZE] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, env=env, cwd=current_tmpdir(), stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def verify_unit(path):
    # --man=no: the pages Documentation= names are installed with the package,
    # not on the build machine (62-man-pages.py checks them).
    rc, out, err = analyze(["verify", "--man=no", path])
    mine = [l for l in (out + err).splitlines() if "wssign" in l]
    check_eq(rc, 0, "systemd-analyze verify exit status (output %r)" % (out + err))
    check_eq(mine, [], "systemd-analyze verify complaints about the unit")


def security_score(path):
    rc, out, err = analyze(["security", "--offline=true", "--threshold=15", path])
    m = re.search(r"Overall exposure level for %s: ([0-9]+\.[0-9]+) (\w+)"
                  % re.escape(os.path.basename(path)), out)
    if m is None:
        raise TestFailure("no exposure figure in the output (rc %d):\n%s\n%s" % (rc, out, err))
    print("  %s" % m.group(0), flush=True)
    check_eq(rc, 0, "systemd-analyze security --threshold=15 exit status")
    check(float(m.group(1)) <= MAX_EXPOSURE,
          "exposure %s is above %.1f" % (m.group(1), MAX_EXPOSURE))


def test_generated_not_committed():
    """One copy: the source tree holds the templates only, the build the units."""
    for unit in (UNIT, AGENT_UNIT):
        check(os.path.exists(unit), "the build generated no unit at %s" % unit)
        check(not os.path.exists(os.path.join(REPO, "systemd", os.path.basename(unit))),
              "systemd/%s is in the source tree beside its template" % os.path.basename(unit))
        with open(unit) as f:
            text = f.read()
        check_eq(re.findall(r"@[A-Za-z0-9_]+@", text), [], "placeholders left in %s" % unit)


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
    daemon = "%s/sbin/wssignd -c %s/wssignd/wssignd.json" % (prefix, sysconf)
    one("ExecStart", daemon)
    # the check runs before each start, and before the reload signal
    check_eq(s.get(("Service", "ExecStartPre")), [daemon + " --check-config"], "ExecStartPre=")
    check_eq(s.get(("Service", "ExecReload")),
             [daemon + " --check-config", "/bin/kill -HUP $MAINPID"], "ExecReload=")
    # secrets as credentials, each with a placeholder should its file be missing
    check_eq(s.get(("Service", "LoadCredential")),
             ["tls.key:%s/wssignd/tls.key" % sysconf, "tokens:%s/wssignd/tokens" % sysconf],
             "LoadCredential=")
    check_eq(s.get(("Service", "SetCredential")),
             ["tls.key:# no %s/wssignd/tls.key" % sysconf, "tokens:# no %s/wssignd/tokens" % sysconf],
             "SetCredential= (the fallbacks)")
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
    check_eq(s.get(("Service", "ExecStartPre")),
             ["/usr/sbin/wssignd -c /etc/wssignd/wssignd.json --check-config"], "ExecStartPre=")
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


def filter_sets(unit):
    """(allowed, denied): the system calls of a unit's SystemCallFilter= lines, groups expanded."""
    allow, deny = set(), set()
    for _, key, value in unit_settings(unit):
        if key != "SystemCallFilter":
            continue
        target = deny if value.startswith("~") else allow
        for item in value.lstrip("~").split():
            target |= expand_syscall_group(item) if item.startswith("@") else {item}
    check(allow, "no allow list in SystemCallFilter= of %s" % unit)
    return allow, deny


def strace_summary(path):
    """The system calls named in an `strace -c` summary."""
    used = set()
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0][0].isdigit() and parts[-1] != "total":
                used.add(parts[-1])
    return used


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
    allow, deny = filter_sets(UNIT)
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
    used = strace_summary(out)
    check(len(used) > 20, "strace summary lists only %r" % sorted(used))
    check_eq(sorted(used - allow), [], "system calls outside the allow list")
    check_eq(sorted(used & deny), [], "system calls in the deny list")


# ---- the agent template

# Settings both units share: the agent gets the daemon's sandbox.
SAME_HARDENING = (
    "DynamicUser", "UMask", "NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities",
    "RestrictSUIDSGID", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
    "DevicePolicy", "PrivateMounts", "PrivateUsers", "RemoveIPC", "KeyringMode",
    "ProtectHostname", "ProtectClock", "ProtectKernelTunables", "ProtectKernelModules",
    "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc", "ProcSubset", "LockPersonality",
    "MemoryDenyWriteExecute", "RestrictNamespaces", "RestrictRealtime",
    "RestrictAddressFamilies", "SystemCallArchitectures", "SystemCallFilter",
    "SystemCallErrorNumber")


def test_agent_verify():
    verify_unit(agent_copy())


def test_agent_security_score():
    security_score(agent_copy())


def test_agent_settings():
    s = settings_dict(AGENT_UNIT)
    daemon = settings_dict(UNIT)
    bindir = os.path.join(install_prefix(), "bin")

    def one(key, want):
        check_eq(s.get(("Service", key)), [want], "%s=" % key)

    one("EnvironmentFile", "/etc/wssign/%i.conf")
    one("LoadCredential", "key:/etc/wssign/%i.key")
    one("ExecStart", "%s/wssign agent --url ${WSSIGN_URL} --key %%d/key $WSSIGN_AGENT_OPTIONS"
        % bindir)
    one("Restart", "on-failure")
    check_eq(s.get(("Install", "WantedBy")), ["multi-user.target"], "WantedBy=")
    for key in SAME_HARDENING:
        check_eq(s.get(("Service", key)), daemon.get(("Service", key)),
                 "%s= in the agent's unit against the daemon's" % key)


def env_file(path):
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them: # comments,
    one level of surrounding double quotes removed."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            key, _, value = line.partition("=")
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            env[key.strip()] = value
    return env


def agent_argv(env, credentials):
    """The agent unit's ExecStart= expanded as systemd does: ${VAR} is one
    word, a lone $VAR is split at white space with quotes removed, %d is
    $CREDENTIALS_DIRECTORY."""
    cmd = settings_dict(AGENT_UNIT)[("Service", "ExecStart")][-1]
    argv = []
    for word in cmd.split():
        if word.startswith("${") and word.endswith("}"):
            argv.append(env.get(word[2:-1], ""))
        elif word.startswith("$"):
            argv += shlex.split(env.get(word[1:], ""))
        else:
            argv.append(word.replace("%d", credentials))
    argv[0] = WSSIGN
    return argv


def test_agent_example_settings():
    """The shipped settings file names the URL and only options the agent has."""
    from wssign_util import option_table
    env = env_file(AGENT_CONF)
    check_eq(sorted(env), ["WSSIGN_AGENT_OPTIONS", "WSSIGN_URL"], "variables of %s" % AGENT_CONF)
    check(re.match(r"^wss://[^/\s]+/v1/ws$", env["WSSIGN_URL"]), "WSSIGN_URL %r" % env["WSSIGN_URL"])
    argv = agent_argv(env, "/run/credentials/wssign-agent@laptop.service")
    options = set(option_table("agent.c", "agent_options"))
    for word in argv[2:]:
        if word.startswith("--"):
            check(word[2:] in options, "%s is not an option of wssign agent" % word)
    check_eq(argv[1:6], ["agent", "--url", env["WSSIGN_URL"], "--key",
                         "/run/credentials/wssign-agent@laptop.service/key"], "the command")


def test_agent_unit_command_signs():
    """A settings file in the documented form (a quoted option value with a
    space) gives, through the unit's command line, an agent that introduces
    its key, signs what its policy allows and refuses the rest."""
    with Daemon(tls=True) as d:
        creds = os.path.join(current_tmpdir(), "credentials")
        os.makedirs(creds)
        key, pk = keygen(creds, "key")
        os.chmod(key, 0o400)        # as systemd hands over a credential
        conf = os.path.join(current_tmpdir(), "laptop.conf")
        with open(conf, "w") as f:
            f.write("WSSIGN_URL=wss://localhost:%d/v1/ws\n"
                    "WSSIGN_AGENT_OPTIONS=\"--ca %s --allow-prefix 'str:pay to '\"\n"
                    % (d.port, d.cafile))
        argv = agent_argv(env_file(conf), creds)
        check("str:pay to " in argv, "the quoted value is one word: %r" % argv)
        agent = Agent(argv[3], argv[5], *argv[6:])
        check_eq(agent.argv[-len(argv) + 1:], argv[1:], "the agent's command line")
        agent.wait_introduced()
        rc, out, err = request(d, pk, "--message", "pay to bob 10", "--signature-only")
        check_eq(rc, 0, "signed by the unit's agent (stderr %r)" % err)
        rc, out, err = request(d, pk, "--message", "pay bob 10")
        check_eq(rc, 5, "refused by its policy (stderr %r)" % err)
        check_eq(agent.stop(), 0, "agent exit status after SIGTERM")


def test_agent_syscalls_within_filter():
    """What the agent does under its unit (TLS with --ca, a --confirm command,
    a signature, SIGTERM) stays within the unit's SystemCallFilter=."""
    if shutil.which("strace") is None:
        print("  skipped: strace not found", flush=True)
        return
    allow, deny = filter_sets(AGENT_UNIT)
    out = os.path.join(current_tmpdir(), "agent-strace.out")
    with Daemon(tls=True) as d:
        key, pk = keygen()
        agent = Agent("wss://localhost:%d/v1/ws" % d.port, key, "--ca", d.cafile,
                      "--confirm", "cat >/dev/null",
                      prefix=["strace", "-f", "-qq", "-c", "-o", out, "--"])
        agent.wait_introduced()
        rc, _, err = request(d, pk, "--message", "traced", "--signature-only")
        check_eq(rc, 0, "a signature from the traced agent (stderr %r)" % err)
        agent.wait_log(r"event=confirm_started")
        with open("/proc/%d/task/%d/children" % (agent.proc.pid, agent.proc.pid)) as f:
            os.kill(int(f.read().split()[0]), signal.SIGTERM)
        check_eq(agent.proc.wait(10), 0, "strace's exit status (the agent's)")
    used = strace_summary(out)
    check(len(used) > 20, "strace summary lists only %r" % sorted(used))
    check_eq(sorted(used - allow), [], "system calls outside the agent's allow list")
    check_eq(sorted(used & deny), [], "system calls in the agent's deny list")


run_tests(globals())
