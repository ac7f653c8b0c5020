#!/usr/bin/python3
"""
The monitoring examples: examples/grafana/wssignd-dashboard.json and
examples/prometheus/wssignd-alerts.yml.

- The dashboard is JSON Grafana can import: panels with unique ids, grid
  positions and targets on the dashboard's data source variable; every query
  is valid PromQL (promtool checks each as a recording rule, with Grafana's
  variables filled in).
- `promtool check rules` accepts the alert rules, and `promtool test rules`
  runs tests/monitoring/wssignd-alerts.test.yml: each alert fires on the
  series that should raise it and stays quiet on a healthy node.
- The rules cover what an operator must hear about: the daemon down, the
  cluster down, the certificate expiring within 14 days, invalid signatures,
  the pending limits.
- Every metric the two files use is one the daemon exports (the names
  rendered in src/metrics.c) or Prometheus's own.
The promtool checks are skipped, with a note, where promtool (Debian's
prometheus package) is missing.
"""

import json
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import REPO, check, check_eq, current_tmpdir, run_tests

DASHBOARD = os.path.join(REPO, "examples", "grafana", "wssignd-dashboard.json")
RULES = os.path.join(REPO, "examples", "prometheus", "wssignd-alerts.yml")
RULE_TESTS = os.path.join(REPO, "tests", "monitoring", "wssignd-alerts.test.yml")
PROMTOOL = shutil.which("promtool")

# Prometheus's own series.
PROMETHEUS = {"up"}
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "max", "time", "le",
                "without", "on", "and", "or", "unless", "ignoring", "group_left", "scalar"}


def exported():
    """Metric names src/metrics.c renders, histogram series included."""
    with open(os.path.join(REPO, "src", "metrics.c")) as f:
        text = f.read()
    names = set(re.findall(r'family\(&?o, "([a-z_]+)",\s*"(?!histogram)', text))
    hists = set(re.findall(r'histogram\(&?o, "([a-z_]+)"', text))
    hists |= set(re.findall(r'family\(&?o, "([a-z_]+)",\s*"histogram"', text))
    check("wssignd_sign_requests_total" in names and "wssignd_sign_duration_seconds" in hists,
          "src/metrics.c: families not found (%r, %r)" % (sorted(names), sorted(hists)))
    for h in hists:
        names |= {h + "_bucket", h + "_sum", h + "_count"}
    return names


def metrics_in(expr):
    """Metric names of a PromQL expression (label values and durations left out)."""
    expr = re.sub(r'"[^"]*"', '""', expr)           # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)           # matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)          # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    words = set(re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*\b", expr))
    return {w for w in words if w not in PROMQL_WORDS}


def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def targets(dash):
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            yield panel, t


def test_dashboard_structure():
    dash = dashboard()
    check_eq(dash.get("uid"), "wssignd", "dashboard uid")
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    check_eq(variables.get("datasource", {}).get("type"), "datasource", "$datasource variable")
    check_eq(variables["datasource"].get("query"), "prometheus", "$datasource plugin")
    ids = [p["id"] for p in dash["panels"]]
    check_eq(len(ids), len(set(ids)), "unique panel ids")
    check(len([p for p in dash["panels"] if p["type"] != "row"]) >= 15,
          "a dashboard of %d panels" % len(ids))
    for p in dash["panels"]:
        g = p.get("gridPos", {})
        check(set(g) == {"h", "w", "x", "y"} and g["x"] + g["w"] <= 24,
              "panel %r: gridPos %r" % (p.get("title"), g))
        if p["type"] == "row":
            continue
        check(p.get("targets"), "panel %r has no query" % p.get("title"))
        check_eq(p.get("datasource"), {"type": "prometheus", "uid": "${datasource}"},
                 "panel %r data source" % p.get("title"))
    for panel, t in targets(dash):
        check_eq(t.get("datasource"), panel["datasource"], "%r target data source" % panel["title"])
        check('job=~"$job"' in t["expr"] or "$job" not in json.dumps(variables),
              "%r: %s ignores $job" % (panel["title"], t["expr"]))


def test_examples_use_known_metrics():
    known = exported() | PROMETHEUS
    used = set()
    for panel, t in targets(dashboard()):
        names = metrics_in(t["expr"].replace("$__rate_interval", "5m"))
        check(names, "%r: no metric in %s" % (panel["title"], t["expr"]))
        check_eq(sorted(names - known), [], "unknown series in panel %r" % panel["title"])
        used |= names
    with open(RULES) as f:
        rule_exprs = re.findall(r"^\s+expr: (.+)$", f.read(), re.M)
    check(len(rule_exprs) >= 5, "alert expressions: %r" % rule_exprs)
    for expr in rule_exprs:
        check_eq(sorted(metrics_in(expr) - known), [], "unknown series in rule %s" % expr)
        used |= metrics_in(expr)
    # Every series the daemon exports that an operator watches appears somewhere.
    for name in ("wssignd_sign_requests_total", "wssignd_sign_duration_seconds_bucket",
                 "wssignd_pending_requests", "wssignd_connections", "wssignd_cluster_up"):
        check(name in used, "%s is on no panel and in no rule" % name)


def test_rules_cover_the_alerts():
    with open(RULES) as f:
        text = f.read()
    alerts = dict(re.findall(r"- alert: (\w+)\n\s+expr: (.+)", text))
    wanted = {
        "down": r'^up\{job="wssignd"\} == 0$',
        "cluster down": r"^wssignd_cluster_up == 0$",
        "certificate within 14 days":
            r"^wssignd_tls_certificate_expiry_timestamp_seconds - time\(\) < 14 \* 86400$",
        "invalid signatures": r'wssignd_sign_requests_total\{outcome="invalid_signature"\}',
        "pending near requests.max_pending": r"^wssignd_pending_requests > ",
        "a pending limit reached": r'wssignd_sign_requests_total\{outcome="overloaded"\}',
    }
    for what, pattern in wanted.items():
        check(any(re.search(pattern, e) for e in alerts.values()),
              "no alert for %s (%r)" % (what, alerts))


def promtool(*args):
    """promtool ARGS must exit 0; returns its output. Without promtool: None."""
    if PROMTOOL is None:
        print("  skipped: promtool not found (apt-get install prometheus)", flush=True)
        return None
    p = subprocess.run([PROMTOOL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120, cwd=current_tmpdir())
    out = p.stdout.decode("utf-8", "replace")
    check_eq(p.returncode, 0, "promtool %s:\n%s" % (" ".join(args), out))
    return out


def test_promtool_check_rules():
    out = promtool("check", "rules", RULES)
    check(out is None or "SUCCESS" in out, out)


def test_promtool_test_rules():
    promtool("test", "rules", RULE_TESTS)


def test_dashboard_queries_are_promql():
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (panel, t) in enumerate(targets(dashboard())):
        expr = (t["expr"].replace("$__rate_interval", "5m")
                .replace("$job", ".*").replace("$instance", ".*"))
        check("$" not in expr, "%r: a variable promtool cannot fill in: %s" % (panel["title"], expr))
        lines += ["      - record: dashboard:query_%d" % i, "        expr: %s" % json.dumps(expr)]
    path = os.path.join(current_tmpdir(), "dashboard-queries.yml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    promtool("check", "rules", path)


run_tests(globals())
