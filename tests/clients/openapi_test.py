#!/usr/bin/python3
"""
docs/openapi.yaml against the real daemon: drives the control API through
every status the description documents, validates each answer (status,
content type, body) against the description's schemas with jsonschema, and
fails when the daemon answers a path, method, status or field the
description lacks, or when a documented status was never seen.

Each answer is recorded as (path template, method, status); the
description's `components.responses` NotFound and BadRequestLine stand for
the answers that belong to no path.
"""

import asyncio
import http.client
import json
import os
import socket
import sys

import jsonschema
import yaml

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("WSSIGND_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "python"))
from common import token_file  # noqa: E402  (also puts tests/integration on the path)
from wssd_test import (Daemon, TestFailure, b64, b64url, check, check_eq,  # noqa: E402
                       current_tmpdir, run_tests)

SPEC_PATH = os.path.join(REPO, "docs", "openapi.yaml")
TOKEN = "openapi-test-token-0123456789"
# Named tokens with limits (docs/CONFIG.md, "The tokens file").
READER = "openapi-reader-token-0123456789"
LIMITED = "openapi-limited-token-0123456789"
RATED = "openapi-rated-token-0123456789"
SIGNER = "openapi-signer-token-0123456789"
SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"


def load_spec():
    with open(SPEC_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


SPEC = load_spec()
RESOLVER = jsonschema.RefResolver.from_schema(SPEC)


def resolve(node):
    """Follows a {"$ref": "#/..."} inside the description."""
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        _, node = RESOLVER.resolve(node["$ref"])
    return node


class Recorder:
    """Validates answers against the description and remembers which were seen."""

    def __init__(self):
        self.seen = set()
        self.count = 0

    def response_spec(self, where, method, status):
        if where.startswith("#"):
            return resolve({"$ref": where})
        op = SPEC["paths"].get(where, {}).get(method.lower())
        if op is None:
            raise TestFailure("%s %s is not in the description" % (method, where))
        resp = op["responses"].get(str(status))
        if resp is None:
            raise TestFailure("%s %s answered %d, a status the description lacks"
                              % (method, where, status))
        return resolve(resp)

    def check(self, where, method, status, headers, raw, what=""):
        """Validates one answer; `where` is a path template or a components ref."""
        label = "%s %s -> %d%s" % (method, where, status, " (%s)" % what if what else "")
        spec = self.response_spec(where, method, status)
        headers = {k.lower(): v for k, v in headers.items()}
        ctype = headers.get("content-type", "")
        content = spec.get("content", {})
        if not content:
            # An answer described without content (204): no body, no content type.
            if raw or ctype or headers.get("content-length") not in (None, "0"):
                raise TestFailure("%s: the description has no content, the answer has %r "
                                  "(content-type %r)" % (label, raw[:200], ctype))
            self.seen.add((where, method.upper(), status))
            self.count += 1
            return None
        if ctype not in content:
            raise TestFailure("%s: content type %r, the description has %r"
                              % (label, ctype, sorted(content)))
        schema = resolve(content[ctype]["schema"])
        if ctype == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                raise TestFailure("%s: body is not JSON: %r" % (label, raw[:200]))
        else:
            body = raw.decode("utf-8", "replace")
        try:
            jsonschema.Draft202012Validator(schema, resolver=RESOLVER).validate(body)
        except jsonschema.ValidationError as e:
            raise TestFailure("%s: body does not match the description: %s\nbody: %r"
                              % (label, e.message, body))
        for name, hspec in spec.get("headers", {}).items():
            hschema = resolve(resolve(hspec)["schema"])
            value = headers.get(name.lower())
            if value is None:
                raise TestFailure("%s: header %s missing" % (label, name))
            jsonschema.Draft202012Validator(hschema).validate(value)
        self.seen.add((where, method.upper(), status))
        self.count += 1
        return body


REC = Recorder()


def request(port, method, path, body=None, token=None, headers=None, ctype="application/json",
            source="127.0.0.1"):
    """One HTTP request; returns (status, headers, raw body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                      source_address=(source, 0))
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        if ctype:
            hdrs["Content-Type"] = ctype
    if token:
        hdrs["Authorization"] = "Bearer " + token
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


async def arequest(*args, **kw):
    return await asyncio.to_thread(request, *args, **kw)


def call(d, where, method, path, status, what="", **kw):
    """Makes the request, checks the status it must get, validates the answer."""
    got, headers, raw = request(d.control_port, method, path, **kw)
    if got != status:
        raise TestFailure("%s %s (%s): expected %d, got %d: %r"
                          % (method, path, what, status, got, raw[:300]))
    return REC.check(where, method, got, headers, raw, what)


async def acall(d, where, method, path, status, what="", **kw):
    return await asyncio.to_thread(call, d, where, method, path, status, what, **kw)


def sign_body(pk, message=b"openapi", **extra):
    return dict({"public_key": b64(pk), "message": b64(message)}, **extra)


# ---------------------------------------------------------------------------

def test_description_is_consistent():
    """Every schema is valid JSON Schema, every $ref resolves, every example validates."""
    check_eq(SPEC.get("openapi"), "3.1.0", "openapi version")
    for name, schema in SPEC["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)

    def walk(node, where):
        if isinstance(node, dict):
            if "$ref" in node:
                try:
                    RESOLVER.resolve(node["$ref"])
                except jsonschema.RefResolutionError as e:
                    raise TestFailure("%s: %s" % (where, e))
            for k, v in node.items():
                walk(v, where + "/" + str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, "%s/%d" % (where, i))
    walk(SPEC, "#")

    examples = 0
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            bodies = [op.get("requestBody", {})] + [resolve(r) for r in op["responses"].values()]
            for b in bodies:
                for media in b.get("content", {}).values():
                    if "example" in media:
                        jsonschema.Draft202012Validator(
                            resolve(media["schema"]), resolver=RESOLVER).validate(media["example"])
                        examples += 1
    check(examples >= 4, "examples checked: %d" % examples)
    # The error code list is PROTOCOL.md's: every code of the description is in it.
    with open(os.path.join(REPO, "docs", "PROTOCOL.md"), encoding="utf-8") as f:
        protocol = f.read()
    for code in SPEC["components"]["schemas"]["ErrorCode"]["enum"]:
        check("`%s`" % code in protocol, "error code %s is not in PROTOCOL.md" % code)


def tokens_with_limits(other_key):
    """TOKEN (every scope) and the limited tokens, one a line."""
    path = token_file(TOKEN)
    with open(path, "a") as f:
        f.write("reader %s scopes=read\n" % READER)
        f.write("limited %s scopes=sign,read,admin keys=%s\n" % (LIMITED, b64(other_key)))
        f.write("rated %s rate=1/m burst=1\n" % RATED)
        f.write("signer %s scopes=sign\n" % SIGNER)
    return path


async def test_every_status():
    """The daemon with a token file: every documented status of every path."""
    cfg = {"controllers": {"http_api": {"token_file": tokens_with_limits(bytes(32)),
                                        "auth_failures_burst": 1000}},
           "requests": {"max_message_bytes": 64, "max_pending_per_key": 2}}
    seed = bytes.fromhex(SEED_HEX)
    async with Daemon(cfg) as d:
        port = d.control_port
        sign, keys = "/v1/sign", "/v1/keys/{public_key}"

        # A body that stalls: the connection is closed without an answer.
        def slow_body():
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(("POST /v1/sign HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{"
                       % TOKEN).encode())
            s.settimeout(30)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            return data
        slow = asyncio.create_task(asyncio.to_thread(slow_body))

        # A body that trickles in, a byte every 3 s: 408 after 10 s, then a close.
        def trickle_body():
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(("POST /v1/sign HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{"
                       % TOKEN).encode())
            s.settimeout(3)
            data = b""
            for _ in range(10):
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    s.sendall(b" ")
                    continue
                if not chunk:
                    break
                data += chunk
                while True:
                    try:
                        more = s.recv(4096)
                    except socket.timeout:
                        break
                    if not more:
                        break
                    data += more
                break
            s.close()
            head, _, raw = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            hdrs = dict(l.split(":", 1) for l in lines[1:] if ":" in l)
            return int(lines[0].split()[1]), {k.strip(): v.strip() for k, v in hdrs.items()}, raw
        trickle = asyncio.create_task(asyncio.to_thread(trickle_body))

        await acall(d, "/healthz", "GET", "/healthz", 200)
        await acall(d, "/healthz", "POST", "/healthz", 405, body={})
        await acall(d, "/metrics", "GET", "/metrics", 200, token=TOKEN)
        await acall(d, "/metrics", "GET", "/metrics", 401, "no token")
        await acall(d, "/metrics", "POST", "/metrics", 405, token=TOKEN, body={})
        await acall(d, "/metrics", "POST", "/metrics", 401, "no token", body={})
        await acall(d, "#/components/responses/NotFound", "GET", "/v1/nothing", 404, token=TOKEN)
        await acall(d, "#/components/responses/Unauthorized", "GET", "/v1/nothing", 401)
        await acall(d, "#/components/responses/BadRequestLine", "GET",
                    "/v1/" + "x" * 300, 400, token=TOKEN)

        s = d.signer(seed=seed, policy="sign")
        await s.start()
        key_path = "/v1/keys/" + b64url(s.pk)
        other = bytes(32)

        body = await acall(d, sign, "POST", sign, 200, body=sign_body(s.pk), token=TOKEN)
        check_eq(body["public_key"], b64(s.pk), "200 public_key")
        await acall(d, sign, "POST", sign, 200, "charset parameter", body=sign_body(s.pk),
                    token=TOKEN, ctype="application/json; charset=utf-8")
        await acall(d, sign, "POST", sign, 200, "no content type", body=sign_body(s.pk),
                    token=TOKEN, ctype=None)
        for what, b in (("not JSON", b"{"), ("unknown field", sign_body(s.pk, extra=1)),
                        ("empty message", {"public_key": b64(s.pk), "message": ""}),
                        ("reserved prefix", sign_body(s.pk, b"wssign-introduction-v1 x")),
                        ("timeout_ms 0", sign_body(s.pk, timeout_ms=0)),
                        ("url-safe key", {"public_key": b64url(s.pk), "message": "eA=="})):
            await acall(d, sign, "POST", sign, 400, what, body=b, token=TOKEN)
        await acall(d, sign, "POST", sign, 401, "no token", body=sign_body(s.pk))
        await acall(d, sign, "POST", sign, 401, "wrong token", body=sign_body(s.pk),
                    token="not-the-token-0123456789")
        await acall(d, sign, "POST", sign, 404, body=sign_body(other), token=TOKEN)
        await acall(d, sign, "GET", sign, 405, token=TOKEN)
        await acall(d, sign, "GET", sign, 401, "no token")
        await acall(d, sign, "POST", sign, 413, "message over max_message_bytes",
                    body=sign_body(s.pk, b"m" * 65), token=TOKEN)
        await acall(d, sign, "POST", sign, 413, "body over max_body_bytes",
                    body=b"{" + b" " * 70000 + b"}", token=TOKEN)
        await acall(d, sign, "POST", sign, 415, body=sign_body(s.pk), token=TOKEN,
                    ctype="text/plain")
        await acall(d, sign, "POST", sign, 403, "no sign scope", body=sign_body(s.pk),
                    token=READER)
        await acall(d, sign, "POST", sign, 403, "a key outside keys=", body=sign_body(s.pk),
                    token=LIMITED)
        await acall(d, sign, "POST", sign, 200, "the rated token's one request",
                    body=sign_body(s.pk), token=RATED)
        await acall(d, sign, "POST", sign, 429, "the rated token over its rate",
                    body=sign_body(s.pk), token=RATED)
        await acall(d, "/metrics", "GET", "/metrics", 403, "no metrics scope", token=READER)

        listing = "/v1/keys"
        body = await acall(d, listing, "GET", listing, 200, token=TOKEN)
        check_eq([k["public_key"] for k in body["keys"]], [b64(s.pk)], "the listing")
        await acall(d, listing, "GET", listing + "?limit=1&after=" + b64url(other), 200,
                    "a page after a cursor", token=READER)
        for q in ("?limit=0", "?limit=1001", "?after=AAAA", "?page=2"):
            await acall(d, listing, "GET", listing + q, 400, q, token=TOKEN)
        await acall(d, listing, "GET", listing, 401, "no token")
        await acall(d, listing, "GET", listing, 403, "no read scope", token=SIGNER)
        await acall(d, listing, "POST", listing, 405, token=TOKEN, body={})
        await acall(d, listing, "POST", listing, 401, "no token", body={})

        await acall(d, keys, "GET", key_path, 200, token=TOKEN)
        await acall(d, keys, "GET", key_path + "=", 200, "padded", token=TOKEN)
        await acall(d, keys, "GET", "/v1/keys/AAAA", 400, token=TOKEN)
        await acall(d, keys, "GET", "/v1/keys/" + b64url(other), 404, token=TOKEN)
        await acall(d, keys, "GET", key_path, 401, "no token")
        await acall(d, keys, "POST", key_path, 405, token=TOKEN, body={})
        await acall(d, keys, "POST", key_path, 401, "no token", body={})
        await acall(d, keys, "GET", key_path, 403, "no read scope", token=SIGNER)
        await acall(d, keys, "GET", key_path, 403, "a key outside keys=", token=LIMITED)
        await acall(d, keys, "DELETE", key_path, 403, "no admin scope", token=READER)
        await acall(d, keys, "DELETE", key_path, 403, "a key outside keys=", token=LIMITED)
        await acall(d, keys, "DELETE", "/v1/keys/AAAA", 400, token=TOKEN)
        await acall(d, keys, "DELETE", key_path, 401, "no token")
        await acall(d, keys, "DELETE", "/v1/keys/" + b64url(other), 404, token=TOKEN)
        gone = d.signer(policy="sign")
        await gone.start()
        await acall(d, keys, "DELETE", "/v1/keys/" + b64url(gone.pk), 204, token=TOKEN)
        check_eq(await gone.wait_closed(), 4003, "close code after DELETE")
        await gone.close()

        s.policy = "reject"
        await acall(d, sign, "POST", sign, 422, body=sign_body(s.pk), token=TOKEN)
        s.policy = "bad_signature"
        body = await acall(d, sign, "POST", sign, 502, "bad signature", body=sign_body(s.pk),
                           token=TOKEN)
        check_eq(body["error"]["code"], "invalid_signature", "502 code")
        s.policy = "silent"
        body = await acall(d, sign, "POST", sign, 504, body=sign_body(s.pk, timeout_ms=50),
                           token=TOKEN)

        # Two silent requests fill max_pending_per_key; a third is overloaded.
        held = [asyncio.create_task(arequest(port, "POST", sign, sign_body(s.pk, b"h%d" % i),
                                             token=TOKEN)) for i in range(2)]
        while len([r for r in s.requests if r["message"] in (b64(b"h0"), b64(b"h1"))]) < 2:
            await asyncio.sleep(0.01)
        body = await acall(d, sign, "POST", sign, 503, "per-key cap", body=sign_body(s.pk),
                           token=TOKEN)
        check_eq(body["error"]["code"], "overloaded", "503 code")
        # The signer leaves: both held requests end connection_closed.
        await s.ws.close()
        for t in held:
            status, headers, raw = await t
            check_eq(status, 502, "held request after the signer left (%r)" % raw)
            body = REC.check(sign, "POST", status, headers, raw, "signer left")
            check_eq(body["error"]["code"], "connection_closed", "502 code")
        await s.close()

        # A request pending at SIGTERM ends shutting_down.
        s2 = d.signer(seed=seed, policy="silent")
        await s2.start()
        pending = asyncio.create_task(arequest(port, "POST", sign, sign_body(s2.pk), token=TOKEN))
        await s2.wait_request(0)
        check_eq(await slow, b"", "answer to a body that stalls")
        status, headers, raw = await trickle
        check_eq(status, 408, "answer to a body that trickles (%r)" % raw)
        REC.check(sign, "POST", status, headers, raw, "a body that trickles")
        await d.astop()
        status, headers, raw = await pending
        check_eq(status, 503, "pending request at shutdown (%r)" % raw)
        body = REC.check(sign, "POST", status, headers, raw, "shutdown")
        check_eq(body["error"]["code"], "shutting_down", "503 code at shutdown")
        await s2.close()


async def test_throttle():
    """429 on every authenticated path once a client has used up its failures."""
    cfg = {"controllers": {"http_api": {"token_file": token_file(TOKEN), "auth_failures_burst": 1}}}
    async with Daemon(cfg) as d:
        await acall(d, "/v1/sign", "POST", "/v1/sign", 401, body={})
        path = "/v1/keys/" + b64url(bytes(32))
        for where, method, p, body in (("/v1/sign", "POST", "/v1/sign", {}),
                                       ("/v1/sign", "GET", "/v1/sign", None),
                                       ("/v1/keys/{public_key}", "GET", path, None),
                                       ("/v1/keys/{public_key}", "POST", path, {}),
                                       ("/v1/keys/{public_key}", "DELETE", path, None),
                                       ("/v1/keys", "GET", "/v1/keys", None),
                                       ("/v1/keys", "POST", "/v1/keys", {}),
                                       ("/metrics", "GET", "/metrics", None),
                                       ("/metrics", "POST", "/metrics", {})):
            await acall(d, where, method, p, 429, token=TOKEN, body=body)
        # Another client address is not refused.
        await acall(d, "/metrics", "GET", "/metrics", 200, "other client", token=TOKEN,
                    source="127.0.0.2")


async def test_cluster_unavailable():
    """A cluster node whose Redis cannot be reached refuses keys it does not hold."""
    secret = os.path.join(current_tmpdir(), "cluster.secret")
    with open(secret, "wb") as f:
        f.write(os.urandom(48))
    os.chmod(secret, 0o600)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    cfg = {"cluster": {"redis": "redis://127.0.0.1:%d" % dead, "secret_file": secret}}
    async with Daemon(cfg) as d:
        body = await acall(d, "/v1/sign", "POST", "/v1/sign", 503,
                           body=sign_body(bytes.fromhex("d75a980182b10ab7d54bfed3c964073a"
                                                        "0ee172f3daa62325af021a68f707511a")))
        check_eq(body["error"]["code"], "cluster_unavailable", "503 code")
        body = await acall(d, "/v1/keys", "GET", "/v1/keys", 503)
        check_eq(body["error"]["code"], "cluster_unavailable", "503 code of a listing")
        body = await acall(d, "/v1/keys/{public_key}", "DELETE", "/v1/keys/" + b64url(bytes(32)),
                           503)
        check_eq(body["error"]["code"], "cluster_unavailable", "503 code of a DELETE")


def test_every_documented_status_was_seen():
    """Runs last: each (path, method, status) of the description was answered."""
    want = set()
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                want |= {(path, method.upper(), int(s)) for s in op["responses"]}
    want |= {("#/components/responses/NotFound", "GET", 404),
             ("#/components/responses/BadRequestLine", "GET", 400)}
    missing = sorted(want - REC.seen)
    check(not missing, "documented but never answered: %r" % missing)
    print("checked %d answers covering %d documented statuses" % (REC.count, len(want)))


if __name__ == "__main__":
    run_tests(globals())
