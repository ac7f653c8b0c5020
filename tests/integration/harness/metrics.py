"""
GET /metrics, parsed once: scrape() / ascrape() return a Metrics, metric()
one summed value. Parsing goes through prometheus_client's text parser, so an
answer a Prometheus server would refuse fails the test.
"""

from prometheus_client.parser import text_string_to_metric_families

from .base import TestFailure, scaled
from .httpc import ahttp, http


class Metrics:
    """One /metrics answer: .families by name (with .type), samples by name and
    labels, the response .headers (lower-case names) and .text."""

    def __init__(self, text, headers=None):
        self.text = text
        self.headers = dict(headers or {})
        self.families = {}
        self.samples = {}
        try:
            for fam in text_string_to_metric_families(text):
                self.families[fam.name] = fam
                for s in fam.samples:
                    self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        except ValueError as e:
            raise TestFailure("unparsable /metrics answer (%s): %r" % (e, text[:500]))

    def value(self, name, default=None, **labels):
        """The sample of name with exactly these labels; default if there is none."""
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def matching(self, name, **labels):
        """Samples of `name` whose labels include `labels`: [(labels dict, value)]."""
        out = []
        for (n, lbl), v in self.samples.items():
            d = dict(lbl)
            if n == name and all(d.get(k) == w for k, w in labels.items()):
                out.append((d, v))
        return out

    def total(self, name, **labels):
        """Sum of the samples of name whose labels include labels (0 if none)."""
        return sum(v for _, v in self.matching(name, **labels))


def _port(target):
    return target if isinstance(target, int) else target.control_port


def _metrics(status, raw, headers):
    if status != 200:
        raise TestFailure("GET /metrics: HTTP %r %r" % (status, raw[:200]))
    if not raw.startswith(b"#") and not raw[:1].isalpha():
        raise TestFailure("/metrics answer is not Prometheus text: %r" % raw[:200])
    return Metrics(raw.decode("utf-8"), headers)


def scrape(target, token=None):
    """GET /metrics of a Daemon (or a control port); a Metrics. Fails unless 200."""
    status, _, raw, headers = http("GET", _port(target), "/metrics", token=token, raw=True,
                                   timeout=scaled(10))
    return _metrics(status, raw, headers)


async def ascrape(target=None, token=None, client=None):
    """scrape() from a coroutine; over the AsyncHttp connection client when
    given (a connection opened before the listener filled up)."""
    if client is not None:
        r = await client.request("GET", "/metrics", token=token, timeout=scaled(10))
        return _metrics(r.status, r.body, r.headers)
    status, _, raw, headers = await ahttp("GET", _port(target), "/metrics", token=token,
                                          raw=True, timeout=scaled(10))
    return _metrics(status, raw, headers)


def metric(target, name, token=None, **labels):
    """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
    return scrape(target, token).total(name, **labels)
