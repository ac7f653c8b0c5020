#!/usr/bin/python3
"""
The cluster section's configuration. --check-config refuses, with a message
naming the key (and never the secret), a missing, short or group-readable
secret file, a bad Redis URL, a host that does not resolve, a bad node id,
a missing required key, a bad password file; it accepts a good section
without reaching Redis. SIGHUP with a changed Redis address moves the nodes
to the new Redis; with a changed secret the nodes speak under the new one;
an invalid cluster section is refused as a whole and the running one kept.
"""

import asyncio
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import Cluster, Redis, cluster_key, key_channel, seal  # noqa: E402
from wssd_test import (b64, check, check_eq, current_tmpdir, run_cli, run_tests,  # noqa: E402
                       scaled, write_json, write_lines)

SECRET = "s3cr3t-" + "k" * 40


def check_config(cluster, name="check"):
    """wssignd --check-config on a file with this cluster section: (rc, stderr)."""
    path = write_json(os.path.join(current_tmpdir(), name + ".json"),
                      {"listen": "127.0.0.1:0", "control": {"listen": "127.0.0.1:0"},
                       "cluster": cluster})
    rc, out, err = run_cli(["-c", path, "--check-config"])
    return rc, out + err


def test_check_config_refusals():
    tmp = current_tmpdir()
    good = write_lines("good.secret", [SECRET], mode=0o600)
    short = write_lines("short.secret", ["x" * 31], mode=0o600)
    loose = write_lines("loose.secret", [SECRET], mode=0o644)
    pw_loose = write_lines("loose.password", ["hunter2"], mode=0o644)
    pw_two = write_lines("two.password", ["hunter2", "more"], mode=0o600)
    url = "redis://127.0.0.1:6379"
    cases = [
        ("no secret file", {"redis": url, "secret_file": os.path.join(tmp, "nope")},
         [r"cluster\.secret_file", r"nope", r"No such file"]),
        ("short secret", {"redis": url, "secret_file": short},
         [r"cluster\.secret_file", r"31 bytes", r"at least 32"]),
        ("secret readable by others", {"redis": url, "secret_file": loose},
         [r"cluster\.secret_file", r"0644", r"chmod 600"]),
        ("no redis key", {"secret_file": good}, [r"cluster\.redis", r"required"]),
        ("no secret key", {"redis": url}, [r"cluster\.secret_file", r"required"]),
        ("http URL", {"redis": "http://127.0.0.1:6379", "secret_file": good},
         [r"cluster\.redis", r"redis://"]),
        ("URL without a port", {"redis": "redis://127.0.0.1", "secret_file": good},
         [r"cluster\.redis"]),
        ("port 0", {"redis": "redis://127.0.0.1:0", "secret_file": good},
         [r"cluster\.redis", r"port"]),
        ("bad database", {"redis": "redis://127.0.0.1:6379/x", "secret_file": good},
         [r"cluster\.redis", r"database"]),
        ("relative socket", {"redis": "unix:redis.sock", "secret_file": good},
         [r"cluster\.redis", r"unix:/"]),
        ("unresolvable host", {"redis": "redis://no-such-host.invalid:6379",
                               "secret_file": good},
         [r"cluster\.redis", r"no-such-host\.invalid"]),
        ("node id with a space", {"redis": url, "secret_file": good, "node_id": "node 1"},
         [r"cluster\.node_id"]),
        ("empty node id", {"redis": url, "secret_file": good, "node_id": ""},
         [r"cluster\.node_id"]),
        ("node id too long", {"redis": url, "secret_file": good, "node_id": "n" * 65},
         [r"cluster\.node_id", r"64"]),
        ("node id with a quote", {"redis": url, "secret_file": good, "node_id": 'a"b'},
         [r"cluster\.node_id"]),
        ("node id not a string", {"redis": url, "secret_file": good, "node_id": 7},
         [r"cluster\.node_id"]),
        ("unknown key", {"redis": url, "secret_file": good, "nodeid": "x"},
         [r"cluster\.nodeid"]),
        ("password file readable by others", {"redis": url, "secret_file": good,
                                              "password_file": pw_loose},
         [r"cluster\.password_file", r"chmod 600"]),
        ("password file of two lines", {"redis": url, "secret_file": good,
                                        "password_file": pw_two},
         [r"cluster\.password_file", r"one line"]),
    ]
    for n, (what, section, patterns) in enumerate(cases):
        rc, text = check_config(section, "case%d" % n)
        check_eq(rc, 1, "%s: --check-config exit status (output %r)" % (what, text))
        for p in patterns:
            check(re.search(p, text), "%s: no %r in %r" % (what, p, text))
        check(SECRET not in text and "hunter2" not in text and "x" * 31 not in text,
              "%s: a secret in the output: %r" % (what, text))
        check("configuration ok" not in text, "%s: said ok: %r" % (what, text))


def test_check_config_accepts_a_good_section():
    good = write_lines("good.secret", [SECRET], mode=0o600)
    pw = write_lines("redis.password", ["wssignd hunter2"], mode=0o600)
    for n, section in enumerate([
            {"redis": "redis://127.0.0.1:1", "secret_file": good},  # nothing listens there
            {"redis": "redis://localhost:6379/3", "secret_file": good, "node_id": "signer-1.a_b",
             "channel_prefix": "prod:", "password_file": pw},
            {"redis": "unix:/run/redis/redis.sock", "secret_file": good}]):
        rc, text = check_config(section, "good%d" % n)
        check_eq(rc, 0, "--check-config of %r (output %r)" % (section, text))


async def sign_across(c, a, b, what):
    """Each node signs with the other's key."""
    await c.check_sign(2, a, what=what)
    await c.check_sign(1, b, what=what)


async def reload(c, j, cfg, outcome):
    """Rewrites node j's config to cfg, sends SIGHUP, waits for the outcome's
    line; returns the log offset from before."""
    d = c.node(j)
    mark = d.log_mark()
    d.rewrite_config(cfg)
    d.reload()
    await d.await_log(r"event=reload outcome=%s" % outcome, timeout=scaled(5), since=mark)
    return mark


def with_cluster(d, **changes):
    cfg = dict(d.config)
    cfg["cluster"] = dict(cfg["cluster"], **changes)
    return cfg


async def test_reload_moves_to_a_new_redis():
    async with Cluster(2, watch=False) as c:
        a = await c.connect(1)
        b = await c.connect(2)
        r2 = await Redis(name="redis2").astart()
        for j in c.numbers():
            mark = await reload(c, j, with_cluster(c.node(j), redis=r2.url), "ok")
            await c.node(j).await_log(r"event=cluster_reconnect node=node%d reason=reload" % j,
                                      timeout=scaled(3), since=mark)
            await c.wait_cluster_up(j, since=mark)
        # Every local key announced on the new Redis, none left on the old one.
        for s in (a, b):
            for _ in range(100):
                if await asyncio.to_thread(r2.numsub, key_channel(s.pk)) == 1:
                    break
                await asyncio.sleep(0.05)
            check_eq(await asyncio.to_thread(r2.numsub, key_channel(s.pk)), 1,
                     "key channel subscribers on the new Redis")
            check_eq(c.holders(s.pk), 0, "key channel subscribers on the old Redis")
        await sign_across(c, a, b, "on the new Redis")
        # The old one can go: nothing depends on it.
        await asyncio.to_thread(c.redis.stop)
        await asyncio.sleep(0.5)
        for j in c.numbers():
            check_eq((await c.metrics(j)).value("wssignd_cluster_up"), 1.0,
                     "node%d up after the old Redis stopped" % j)
        await sign_across(c, a, b, "old Redis gone")
        await asyncio.to_thread(r2.stop)


async def test_reload_with_a_new_secret():
    async with Cluster(2) as c:
        a = await c.connect(1)
        b = await c.connect(2)
        old_key = c.key
        secret = b64(os.urandom(32))
        path = write_lines("cluster2.secret", [secret], mode=0o600)
        for j in c.numbers():
            await reload(c, j, with_cluster(c.node(j), secret_file=path), "ok")
        await sign_across(c, a, b, "under the new secret")
        # A request sealed with the old key is now dropped; with the new one it is heard.
        exp = int(time.time() * 1000) + 60000

        def req(key, rid):
            return seal(key, {"v": 1, "t": "req", "from": "node9", "seq": int(rid[-1]),
                              "k": a.pk.hex(), "id": rid, "exp": exp,
                              "frame": '{"type":"sign_request","request_id":"%s",'
                                       '"message":"aGk=","expires_at":%d}' % (rid, exp)})
        before = (await c.metrics(1)).value("wssignd_cluster_dropped_messages_total",
                                            reason="bad_tag")
        n = len(a.requests)
        await asyncio.to_thread(c.redis.cli_publish, key_channel(a.pk),
                                req(old_key, "00000000-0000-4000-8000-000000000001"))
        await asyncio.sleep(0.3)
        check_eq(len(a.requests), n, "a request under the old secret reached the signer")
        check_eq((await c.metrics(1)).value("wssignd_cluster_dropped_messages_total",
                                            reason="bad_tag") - before, 1.0, "bad_tag drops")
        await asyncio.to_thread(c.redis.cli_publish, key_channel(a.pk),
                                req(cluster_key(secret.encode()),
                                    "00000000-0000-4000-8000-000000000002"))
        got = await a.wait_request(n, timeout=scaled(3))
        check_eq(got["request_id"], "00000000-0000-4000-8000-000000000002",
                 "the request under the new secret")


async def test_invalid_reload_keeps_the_running_cluster():
    async with Cluster(2, watch=False) as c:
        a = await c.connect(1)
        b = await c.connect(2)
        d = c.node(1)
        original = dict(d.config)
        short = write_lines("short.secret", ["x" * 8], mode=0o600)
        loose = write_lines("loose.secret", [SECRET], mode=0o644)
        for what, cfg, pattern in [
                ("bad URL", with_cluster(d, redis="http://127.0.0.1:1"), r"cluster\.redis"),
                ("unresolvable host", with_cluster(d, redis="redis://no-such-host.invalid:6379"),
                 r"cluster\.redis"),
                ("short secret", with_cluster(d, secret_file=short), r"cluster\.secret_file"),
                ("secret readable by others", with_cluster(d, secret_file=loose),
                 r"cluster\.secret_file"),
                ("another node id", with_cluster(d, node_id="node7"), r"cluster\.node_id"),
                ("another prefix", with_cluster(d, channel_prefix="x:"),
                 r"cluster\.channel_prefix")]:
            mark = await reload(c, 1, cfg, "refused")
            line = [ln for ln in d.log_lines(mark) if "event=reload outcome=refused" in ln][0]
            check(re.search(pattern, line), "%s: the refusal names the key: %r" % (what, line))
            check("cluster_reconnect" not in d.log_text()[mark:], what + ": reconnected")
            await sign_across(c, a, b, "after a refused reload (%s)" % what)
        check_eq((await c.metrics(1)).value("wssignd_cluster_up"), 1.0, "node1 up")
        d.rewrite_config(original)


run_tests(globals())
