#!/usr/bin/python3
"""
Metrics that fit existing dashboards: the exposition parses with
prometheus_client's parser, every name follows Prometheus's naming rules
(promtool check metrics when it is installed, and a lint of our own), the
standard process series are there, every labelled counter starts at 0, the
build-info labels are clean, and each operator metric moves when its event
happens: reloads (refused and successful), HTTP answers by status,
authentication failures, and the TLS certificate's expiry.
"""

import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from prometheus_client.parser import text_string_to_metric_families

from ops_util import reload_expect
from wssd_test import Daemon, ahttp, check, check_eq, http, run_tests, write_lines

TOKEN = "operator-metrics-token-0123456789"
NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def exposition(d, token=TOKEN):
    st, _, raw, _ = http("GET", d.control_port, "/metrics", token=token, raw=True, timeout=10)
    check_eq(st, 200, "GET /metrics")
    return raw.decode()


def lint(text):
    """Our own name rules: snake case, counters end in _total, no unit but base units."""
    problems = []
    for fam in text_string_to_metric_families(text):
        name = fam.name
        if not NAME_RE.match(name) or name != name.lower():
            problems.append("%s: not snake_case" % name)
        if fam.type == "counter" and not (name + "_total") in {s.name for s in fam.samples}:
            problems.append("%s: a counter without _total samples" % name)
        for bad in ("_milliseconds", "_ms", "_kb", "_mb", "_percent", "_count_total"):
            if name.endswith(bad) or (bad + "_") in name:
                problems.append("%s: not a base unit (%s)" % (name, bad))
        if not fam.documentation:
            problems.append("%s: no HELP" % name)
        for s in fam.samples:
            for k, v in s.labels.items():
                if not re.match(r"^[a-z_][a-z0-9_]*$", k):
                    problems.append("%s: label %r" % (name, k))
                if re.search(r"[^A-Za-z0-9_.:+-]", v):
                    problems.append("%s: label value %r" % (name, v))
    return problems


def values(text, name):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def one(text, name, **labels):
    v = values(text, name).get(tuple(sorted(labels.items())))
    check(v is not None, "%s%r missing" % (name, labels))
    return v


def config():
    return {"controllers": {"http_api": {"token_file": write_lines("tokens", [TOKEN])}}}


def test_names_and_standard_series():
    with Daemon(config()) as d:
        text = exposition(d)
        check_eq(lint(text), [], "name lint")
        if shutil.which("promtool"):
            p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            check_eq((p.returncode, p.stdout.decode()), (0, ""), "promtool check metrics")
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                     "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                     "process_start_time_seconds"):
            check(one(text, name) >= 0, name)
        check(one(text, "process_resident_memory_bytes") > 1 << 20, "RSS over 1 MiB")
        check(one(text, "process_open_fds") >= 3, "open fds")
        check(abs(one(text, "process_start_time_seconds") - time.time()) < 60, "start time")
        info = values(text, "wssignd_build_info")
        check_eq(len(info), 1, "one build_info sample")
        labels = dict(next(iter(info)))
        check(re.match(r"^\d+\.\d+\.\d+$", labels["version"]), "version %r" % labels)
        check(re.match(r"^\d+\.\d+\.\d+$", labels["lws"]), "lws %r: no stray characters" % labels)
        # labelled counters exist with 0 from the start
        for name, label in (("wssignd_protocol_errors_total", "code"),
                            ("wssignd_http_requests_total", "code"),
                            ("wssignd_sign_requests_total", "outcome")):
            got = values(text, name)
            check(len(got) >= 5, "%s pre-initialised: %r" % (name, got))
        check_eq(one(text, "wssignd_protocol_errors_total", code="bad_json"), 0.0, "bad_json at 0")
        check_eq(one(text, "wssignd_config_last_reload_successful"), 1.0, "reload ok at start")


async def test_operator_metrics_move():
    async with Daemon(config(), tls=True) as d:
        text = exposition(d)
        expiry = one(text, "wssignd_tls_certificate_expiry_timestamp_seconds")
        check(0 < expiry - time.time() <= 2 * 86400, "certificate expiry %.0f" % expiry)
        auth0 = one(text, "wssignd_auth_failures_total")
        ok0 = one(text, "wssignd_http_requests_total", code="200")
        nf0 = one(text, "wssignd_http_requests_total", code="401")
        for _ in range(3):
            st, _ = await ahttp("GET", d.control_port, "/v1/keys/x", token="wrong-token-xxxxxxxx")
            check_eq(st, 401, "wrong token")
        st, _ = await ahttp("GET", d.control_port, "/healthz")
        check_eq(st, 200, "healthz")
        text = exposition(d)
        check_eq(one(text, "wssignd_auth_failures_total") - auth0, 3.0, "auth failures")
        check_eq(one(text, "wssignd_http_requests_total", code="401") - nf0, 3.0, "401 answers")
        # the /metrics answer itself and /healthz: at least two 200s
        check(one(text, "wssignd_http_requests_total", code="200") - ok0 >= 2, "200 answers")
        # a refused reload, then a good one
        t0 = one(text, "wssignd_config_last_reload_success_timestamp_seconds")
        good = dict(d.config)
        d.rewrite_config(text="{ not json")
        await reload_expect(d, "refused")
        text = exposition(d)
        check_eq(one(text, "wssignd_config_last_reload_successful"), 0.0, "after a refused reload")
        check_eq(one(text, "wssignd_config_last_reload_success_timestamp_seconds"), t0,
                 "success time kept")
        time.sleep(0.05)
        d.rewrite_config(good)
        await reload_expect(d, "ok")
        text = exposition(d)
        check_eq(one(text, "wssignd_config_last_reload_successful"), 1.0, "after a good reload")
        check(one(text, "wssignd_config_last_reload_success_timestamp_seconds") > t0,
              "success time moved")


run_tests(globals())
