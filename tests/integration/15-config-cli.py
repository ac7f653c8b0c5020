#!/usr/bin/python3
"""
Command line and config: --version, --help, wrong usage (exit 2),
--check-config on valid and invalid files (exit 1 naming the key),
the non-loopback listener rule and --insecure, --listen/--control flags,
and start-up on the embedded defaults without a config file.
"""

import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (Daemon, check, check_eq, current_tmpdir, free_port, http, make_cert,
                       port_is_free, run_cli, run_tests, write_json)

FLAGS = ["-c", "--listen", "--control", "--log-level", "--insecure", "--check-config",
         "--version", "--help", "-h"]


def cfg_file(obj, name="cfg.json", raw=None):
    path = os.path.join(current_tmpdir(), name)
    if raw is not None:
        with open(path, "w") as f:
            f.write(raw)
        return path
    return write_json(path, obj)


def loopback_config(**extra):
    c = {"listen": "127.0.0.1:%d" % free_port(),
         "control": {"listen": "127.0.0.1:%d" % free_port()}}
    c.update(extra)
    return c


def test_version():
    rc, out, err = run_cli(["--version"])
    check_eq(rc, 0, "--version exit status (stderr %r)" % err)
    check(re.search(r"\d+\.\d+", out), "--version printed no version on stdout: %r" % out)


def test_help():
    for flag in ("--help", "-h"):
        rc, out, err = run_cli([flag])
        check_eq(rc, 0, "%s exit status (stderr %r)" % (flag, err))
        for f in FLAGS:
            check(re.search(r"(^|[\s,\[|])%s\b" % re.escape(f), out),
                  "%s output does not name %s:\n%s" % (flag, f, out))


def test_wrong_usage_exit_2():
    for args in (["--bogus"], ["-x"], ["-c"], ["--listen"], ["--control"],
                 ["stray-argument"]):
        rc, out, err = run_cli(args)
        check_eq(rc, 2, "exit status for %r (stdout %r stderr %r)" % (args, out, err))


def test_check_config_valid():
    cert, key = make_cert(current_tmpdir())
    full = loopback_config(
        server_names=["localhost", "127.0.0.1", "::1", "signer.example"],
        insecure=False,
        tls={"cert": cert, "key": key},
        introduction={"proof": "required", "timeout_ms": 5000},
        requests={"default_timeout_ms": 30000, "max_message_bytes": 32768,
                  "max_pending": 1000, "max_pending_per_key": 16},
        limits={"max_frame_bytes": 65536},
        log_level="debug",
        controllers={"http_api": {"enabled": True}})
    rc, out, err = run_cli(["-c", cfg_file(full), "--check-config"])
    check_eq(rc, 0, "--check-config on a full valid config (stderr %r)" % err)
    rc, out, err = run_cli(["-c", cfg_file({}, "empty.json"), "--check-config"])
    check_eq(rc, 0, "--check-config on {} (stderr %r)" % err)


def expect_invalid(obj, key, what, raw=None):
    path = cfg_file(obj, raw=raw)
    rc, out, err = run_cli(["-c", path, "--check-config"])
    check_eq(rc, 1, "%s: exit status (stdout %r stderr %r)" % (what, out, err))
    if key is not None:
        check(key in err, "%s: stderr does not name %r: %r" % (what, key, err))


def test_check_config_unknown_keys():
    expect_invalid(loopback_config(bogus_key=1), "bogus_key", "unknown top-level key")
    expect_invalid(loopback_config(requests={"max_pendingg": 5}), "max_pendingg",
                   "unknown key in requests")
    expect_invalid(loopback_config(introduction={"colour": "red"}), "colour",
                   "unknown key in introduction")
    expect_invalid(loopback_config(limits={"max_frame_byte": 1}), "max_frame_byte",
                   "unknown key in limits")


def test_check_config_wrong_types():
    expect_invalid(loopback_config(requests={"max_message_bytes": "big"}), "max_message_bytes",
                   "string for an integer")
    expect_invalid(loopback_config(insecure="yes"), "insecure", "string for a boolean")
    expect_invalid(loopback_config(server_names="localhost"), "server_names",
                   "string for an array")
    expect_invalid({"listen": 8080}, "listen", "number for listen")
    expect_invalid(loopback_config(introduction={"proof": "sometimes"}), "proof",
                   "bad proof mode")
    expect_invalid(loopback_config(introduction={"timeout_ms": 1.5}), "timeout_ms",
                   "real for an integer")
    expect_invalid(loopback_config(log_level="loud"), "log_level", "bad log level")
    expect_invalid(loopback_config(control="127.0.0.1:1"), "control", "string for an object")


def test_check_config_bad_files():
    expect_invalid(None, None, "invalid JSON", raw='{"listen": "127.0.0.1:1",,}')
    expect_invalid(None, None, "top-level array", raw='["listen"]')
    missing = os.path.join(current_tmpdir(), "does-not-exist.json")
    rc, out, err = run_cli(["-c", missing])
    check_eq(rc, 1, "missing config file exit status (stderr %r)" % err)
    check("level=err" in err, "missing config file: no level=err line: %r" % err)


def test_non_loopback_without_tls():
    port = free_port()
    conf = loopback_config()
    conf["listen"] = "0.0.0.0:%d" % port
    path = cfg_file(conf, "public.json")
    rc, out, err = run_cli(["-c", path], timeout=10)
    check_eq(rc, 1, "0.0.0.0 without TLS exit status (stderr %r)" % err)
    check("level=err" in err, "no level=err line: %r" % err)
    rc, out, err = run_cli(["-c", path, "--check-config"])
    check_eq(rc, 1, "--check-config on 0.0.0.0 without TLS (stderr %r)" % err)

    with Daemon(conf, extra_args=["--insecure"], name="insecure-flag") as d:
        status, body = http("GET", d.control_port, "/healthz", timeout=5)
        check_eq(status, 200, "healthz with --insecure")

    conf2 = dict(conf, insecure=True)
    conf2["listen"] = "0.0.0.0:%d" % free_port()
    with Daemon(conf2, name="insecure-key") as d:
        status, body = http("GET", d.control_port, "/healthz", timeout=5)
        check_eq(status, 200, "healthz with insecure: true")

    conf3 = loopback_config()
    conf3["listen"] = "0.0.0.0:%d" % free_port()
    with Daemon(conf3, tls=True, name="public-tls") as d:
        check("event=ready" in d.log_text(), "ready")


def test_listen_and_control_flags():
    p1, p2 = free_port(), free_port()
    conf = {"listen": "127.0.0.1:%d" % p1, "control": {"listen": "127.0.0.1:%d" % p2}}
    d = Daemon(conf, use_config_file=False, name="flags",
               extra_args=["--listen", "127.0.0.1:%d" % p1, "--control", "127.0.0.1:%d" % p2,
                           "--log-level", "debug"])
    with d:
        check(re.search(r"listen=\S*%d" % p1, d.log_text()), "ready line names the listener")
        status, body = http("GET", p2, "/healthz", timeout=5)
        check_eq(status, 200, "healthz on --control port")

    # flags override the file
    p3, p4 = free_port(), free_port()
    base = loopback_config()
    file_control = int(base["control"]["listen"].rsplit(":", 1)[1])
    d = Daemon(base, name="override",
               extra_args=["--listen", "127.0.0.1:%d" % p3, "--control", "127.0.0.1:%d" % p4])
    with d:
        status, body = http("GET", p4, "/healthz", timeout=5)
        check_eq(status, 200, "healthz on the --control port overriding the file")
        check_eq(d.control_port, p4, "control port named in the ready line")
        check(port_is_free(file_control), "the file's control port is in use")


def test_bad_flag_values_are_usage_errors():
    """A bad value of a flag is wrong usage (2), like an unknown flag, and the
    message names the flag."""
    for args, flag in ((["--log-level", "loud"], "--log-level"),
                       (["--control", "abc"], "--control"),
                       (["--listen", "127.0.0.1:99999"], "--listen"),
                       (["--listen", "[::1"], "--listen")):
        rc, out, err = run_cli(args + ["--check-config"])
        check_eq(rc, 2, "%r: exit status (stderr %r)" % (args, err))
        check(err.startswith("wssignd: %s" % flag), "%r: stderr does not name %s: %r"
              % (args, flag, err))
        check("Usage:" in err, "%r: no usage text: %r" % (args, err))


def test_embedded_defaults():
    if not (port_is_free(8080) and port_is_free(8081)):
        print("note: 127.0.0.1:8080 or :8081 in use; skipping the embedded-defaults case")
        return
    conf = {"listen": "127.0.0.1:8080", "control": {"listen": "127.0.0.1:8081"}}
    with Daemon(conf, use_config_file=False, name="defaults") as d:
        log = d.log_text()
        check(re.search(r"event=ready.*listen=\S*8080", log), "ready line with 8080: %r" % log)
        check(re.search(r"event=ready.*control=\S*8081", log), "ready line with 8081: %r" % log)
        status, body = http("GET", 8081, "/healthz", timeout=5)
        check_eq(status, 200, "healthz on the default control port")
        check_eq(body, {"status": "ok"}, "healthz body")


run_tests(globals())
