#!/usr/bin/python3
"""
Building and installing from the source tree as a user or a package does.

- On a machine without the tests' build dependency (cmocka's .pc file is
  hidden from pkg-config, as when libcmocka-dev is not installed), the
  default configure succeeds with a one-line notice and builds wssignd and
  wssign; asking for the tests (-DWSSIGND_BUILD_TESTS=ON) fails naming the
  package.
- `cmake --install` with prefix /usr (into a DESTDIR) puts the daemon in
  /usr/sbin, wssign in /usr/bin, the default configuration in
  /etc/wssignd/wssignd.json (not /usr/etc), the units (the daemon's and
  the agent template) in /usr/lib/systemd/system naming exactly those
  paths, the production example and the tokens template under the doc
  directory, the agent's settings example under wssign's, and the man
  pages when scdoc is installed.
- The installed default configuration passes --check-config and the
  installed daemon starts on it and stops cleanly; installing again keeps a
  configuration the operator edited.
"""

import atexit
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_util import cmake, configure
from wssd_test import READY_TIMEOUT, check, check_eq, current_tmpdir, free_port, http, run_tests

# One build shared by the tests below, in definition order.
WORK = tempfile.mkdtemp(prefix="wssd-build-install-")
if os.environ.get("WSSIGND_TEST_KEEP") != "1":
    atexit.register(shutil.rmtree, WORK, True)
BUILD = os.path.join(WORK, "build")
DESTDIR = os.path.join(WORK, "root")
HIDE = {"cmocka"}


def installed(path):
    return os.path.join(DESTDIR, path.lstrip("/"))


def test_configure_without_cmocka():
    # -O0: the point is that it builds, and it builds faster.
    rc, out = configure(BUILD, ["-DCMAKE_INSTALL_PREFIX=/usr", "-DCMAKE_BUILD_TYPE=Debug"],
                        hidden=HIDE, scratch=WORK)
    check_eq(rc, 0, "cmake without cmocka (output:\n%s)" % out)
    notices = [l for l in out.splitlines() if "libcmocka-dev" in l]
    check_eq(len(notices), 1, "lines about libcmocka-dev in the configure output:\n%s" % out)
    check("without the tests" in notices[0], "the notice: %r" % notices[0])
    check(not os.path.exists(os.path.join(BUILD, "tests")), "the tests were configured")


def with_man_pages():
    """True when configure found scdoc: the build then makes and installs the man pages."""
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        m = re.search(r"^SCDOC:FILEPATH=(.+)$", f.read(), re.M)
    return bool(m) and not m.group(1).endswith("-NOTFOUND")


def test_build_daemon_and_tool():
    targets = ["wssignd", "wssign"] + (["man"] if with_man_pages() else [])
    rc, out = cmake(["--build", BUILD, "-j2", "--target"] + targets,
                    {"PKG_CONFIG_LIBDIR": os.path.join(WORK, "pkgconfig")})
    check_eq(rc, 0, "cmake --build (output:\n%s)" % out[-4000:])
    for exe in ("wssignd", "src/wssign/wssign"):
        p = subprocess.run([os.path.join(BUILD, exe), "--version"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        check_eq(p.returncode, 0, "%s --version (%r)" % (exe, p.stdout))


def test_tests_on_without_cmocka_refused():
    rc, out = configure(os.path.join(current_tmpdir(), "build"), ["-DWSSIGND_BUILD_TESTS=ON"],
                        hidden=HIDE)
    check(rc != 0, "configure with WSSIGND_BUILD_TESTS=ON and no cmocka succeeded")
    check("libcmocka-dev" in out, "the error names the package:\n%s" % out)


def test_install_layout():
    rc, out = cmake(["--install", BUILD], {"DESTDIR": DESTDIR})
    check_eq(rc, 0, "cmake --install (output:\n%s)" % out)
    for path, mode in (("/usr/sbin/wssignd", 0o755), ("/usr/bin/wssign", 0o755),
                       ("/etc/wssignd/wssignd.json", 0o644),
                       ("/usr/lib/systemd/system/wssignd.service", 0o644),
                       ("/usr/lib/systemd/system/wssign-agent@.service", 0o644),
                       ("/usr/share/doc/wssign/examples/agent.conf", 0o644),
                       ("/usr/share/doc/wssignd/examples/wssignd.production.json", 0o644),
                       ("/usr/share/doc/wssignd/examples/tokens.example", 0o644),
                       ("/usr/share/doc/wssignd/CONFIG.md", 0o644)):
        check(os.path.isfile(installed(path)), "%s not installed" % path)
        check_eq(stat.S_IMODE(os.stat(installed(path)).st_mode), mode, "mode of %s" % path)
    if with_man_pages():
        for page in ("man8/wssignd.8", "man5/wssignd.json.5", "man1/wssign.1"):
            path = "/usr/share/man/" + page
            check(os.path.isfile(installed(path)), "%s not installed" % path)
    for wrong in ("/usr/etc", "/usr/bin/wssignd", "/etc/wssignd/tokens.example"):
        check(not os.path.exists(installed(wrong)), "%s installed" % wrong)

    with open(installed("/usr/lib/systemd/system/wssignd.service")) as f:
        unit = f.read()
    check_eq(re.findall(r"^ExecStart=.*$", unit, re.M),
             ["ExecStart=/usr/sbin/wssignd -c /etc/wssignd/wssignd.json"], "ExecStart=")
    check_eq(re.findall(r"^Type=.*$", unit, re.M), ["Type=notify"], "Type= (libsystemd found)")
    check_eq(re.findall(r"@[A-Za-z0-9_]+@", unit), [], "placeholders left in the unit")
    # The credentials come from the configuration directory.
    check_eq(re.findall(r"^LoadCredential=.*$", unit, re.M),
             ["LoadCredential=tls.key:/etc/wssignd/tls.key",
              "LoadCredential=tokens:/etc/wssignd/tokens"], "LoadCredential=")
    check("/usr/share/doc/wssignd/examples/wssignd.production.json" in unit,
          "the unit points to the installed production example")
    with open(installed("/usr/share/doc/wssignd/examples/wssignd.production.json")) as f:
        prod = json.load(f)
    check_eq(prod["tls"]["key"], "credential:tls.key", "production example tls.key")
    check_eq(prod["controllers"]["http_api"]["token_file"], "credential:tokens",
             "production example token_file")


def test_installed_default_config_starts():
    daemon = installed("/usr/sbin/wssignd")
    conf = installed("/etc/wssignd/wssignd.json")
    with open(conf) as f:
        cfg = json.load(f)
    check_eq((cfg["listen"], cfg["control"]["listen"]), ("127.0.0.1:8080", "127.0.0.1:8081"),
             "the default listeners (loopback)")
    p = subprocess.run([daemon, "-c", conf, "--check-config"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    check_eq(p.returncode, 0, "--check-config on the installed default (%r)" % p.stdout)

    # Other ports than the defaults, so that nothing else on the machine is in the way.
    port, control = free_port(), free_port()
    log_path = os.path.join(current_tmpdir(), "wssignd.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([daemon, "-c", conf, "--listen", "127.0.0.1:%d" % port,
                                 "--control", "127.0.0.1:%d" % control],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            with open(log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            if "event=ready" in text:
                break
            check(proc.poll() is None, "the daemon exited with %s:\n%s" % (proc.returncode, text))
            check(time.monotonic() < deadline, "not ready in time:\n%s" % text)
            time.sleep(0.02)
        status, body = http("GET", control, "/healthz")
        check_eq((status, body), (200, {"status": "ok"}), "GET /healthz")
        proc.send_signal(signal.SIGTERM)
        check_eq(proc.wait(10), 0, "exit status after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_reinstall_keeps_edited_config():
    conf = installed("/etc/wssignd/wssignd.json")
    with open(conf, "w") as f:
        f.write('{"log_level": "debug"}\n')
    rc, out = cmake(["--install", BUILD], {"DESTDIR": DESTDIR})
    check_eq(rc, 0, "cmake --install again (output:\n%s)" % out)
    with open(conf) as f:
        check_eq(f.read(), '{"log_level": "debug"}\n', "the edited configuration")
    check("Keeping: " + conf in out, "install output says it kept the file:\n%s" % out)


run_tests(globals())
