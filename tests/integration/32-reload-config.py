#!/usr/bin/python3
"""
SIGHUP re-reads the -c file. Connections stay open across a reload; a good
file logs `level=notice event=reload outcome=ok` and its log_level,
server_names, requests.*, introduction.*, limits.* and shutdown.* take
effect; a file that does not parse or validate, or one that changes a
setting needing a restart (listen, control.listen, TLS on, insecure,
controllers), is refused with one `level=err event=reload outcome=refused
msg=...` line and the old config keeps serving, none of the new file
applied.
"""

import asyncio
import copy
import json
import os
import signal
import subprocess
import sys
import time
import uuid

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_util import all_503, reload_expect, stuck_signer
from wssd_test import (Daemon, TestFailure, check, check_eq, check_error_body, current_tmpdir,
                       free_port, make_cert, port_accepts, run_tests, write_lines)

async def test_signer_survives_reload():
    async with Daemon() as d:
        async with d.signer() as s:
            await d.check_sign(s, what="before the reload")
            await reload_expect(d, "ok")
            check(s.is_open, "signer connection closed by the reload (close %r)" % s.close_code)
            await d.check_sign(s, what="after the reload")
            await reload_expect(d, "ok")
            await d.check_sign(s, what="after a second reload")
            check(s.is_open, "signer connection open at the end")


async def test_reload_log_level_debug():
    async with Daemon({"log_level": "info"}) as d:
        async with d.signer() as s:
            await d.check_sign(s, what="at info")
        check("level=debug" not in d.log_text(), "debug lines at log_level info")
        cfg = copy.deepcopy(d.config)
        cfg["log_level"] = "debug"
        d.rewrite_config(cfg)
        await reload_expect(d, "ok")
        mark = d.log_mark()
        async with d.signer() as s:
            await d.check_sign(s, what="at debug")
        await asyncio.sleep(0.2)
        debug = [l for l in d.log_lines(mark) if " level=debug " in l]
        check(debug, "no level=debug line after reloading with log_level debug")
        # and back
        cfg["log_level"] = "notice"
        d.rewrite_config(cfg)
        await reload_expect(d, "ok")
        mark = d.log_mark()
        async with d.signer() as s:
            await d.check_sign(s, what="at notice")
        await asyncio.sleep(0.2)
        noisy = [l for l in d.log_lines(mark)
                 if " level=debug " in l or " level=info " in l]
        check_eq(noisy, [], "info/debug lines after reloading with log_level notice")


async def test_reload_applies_requests_and_server_names():
    async with Daemon() as d:
        async with d.signer(policy="silent") as s:
            cfg = copy.deepcopy(d.config)
            cfg["requests"] = {"default_timeout_ms": 400}
            cfg["server_names"] = ["signer.example", "127.0.0.1"]
            d.rewrite_config(cfg)
            await reload_expect(d, "ok")
            status, body, elapsed = await d.sign(s.pk, b"default timeout after reload")
            check_error_body(status, body, 504, "timeout", "request without timeout_ms")
            check(elapsed < 3.0, "504 after %.2f s; requests.default_timeout_ms 400 not applied"
                  % elapsed)
            check(s.is_open, "signer closed by the reload")
        async with d.signer(host="signer.example") as s2:
            status, body, _ = await d.sign(s2.pk, b"named", timeout_ms=10000)
            check_eq(status, 200, "signer proving a name added by the reload (body %r)" % body)
        cfg["server_names"] = ["signer.example"]
        d.rewrite_config(cfg)
        await reload_expect(d, "ok")
        s3 = d.signer()
        await s3.connect()
        await s3.read_challenge()
        await s3.send_json(s3.introduction())
        frames, cc = await s3.recv_until_closed(5.0)
        check(frames and frames[0].get("code") == "bad_host",
              "introduction naming a host removed by the reload: %r (close %r)" % (frames, cc))


async def test_reload_applies_introduction_limits_shutdown():
    async with Daemon() as d:
        async with d.signer() as kept:
            cfg = copy.deepcopy(d.config)
            cfg["introduction"] = {"timeout_ms": 500}
            cfg["limits"] = {"max_frame_bytes": 4096, "max_queued_bytes": 16777216}
            cfg["shutdown"] = {"drain_ms": 1500}
            d.rewrite_config(cfg)
            await reload_expect(d, "ok")
            await d.check_sign(kept, what="signer connected across the reload")

        # introduction.timeout_ms: 500 instead of 10000
        s = d.signer()
        t0 = time.monotonic()
        await s.connect()
        await s.read_challenge()
        frames, cc = await s.recv_until_closed(5.0)
        check_eq(cc, 4002, "close code of a connection that never introduces (frames %r)"
                 % frames)
        check(time.monotonic() - t0 < 3.0, "introduction timeout after %.2f s, reloaded to 0.5 s"
              % (time.monotonic() - t0))

        # limits.max_frame_bytes: 4096 instead of 65536
        s = d.signer()
        await s.start()
        await s.send_text(json.dumps({"type": "sign_reject", "request_id": str(uuid.uuid4()),
                                      "reason": "x" * 5000}))
        check_eq(await s.wait_closed(5.0), 1009, "close code for a 5000-byte frame")

        # shutdown.drain_ms: 1500 instead of 5000, with a signer holding the drain
        raw, tasks = await stuck_signer(d)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        await all_503(tasks, t0)
        try:
            rc = await asyncio.to_thread(d.proc.wait, 4.0)
        except subprocess.TimeoutExpired:
            raise TestFailure("daemon still running 4 s after SIGTERM")
        d.returncode = rc
        elapsed = time.monotonic() - t0
        raw.close()
        check_eq(rc, 0, "exit status")
        check(elapsed <= 2.5, "exit %.2f s after SIGTERM; shutdown.drain_ms reloaded to 1500"
              % elapsed)


async def test_broken_config_refused():
    async with Daemon({"requests": {"default_timeout_ms": 20000}}) as d:
        async with d.signer() as s:
            good = copy.deepcopy(d.config)
            d.rewrite_config(text='{"listen": "%s", "log_level": "debug",' % d.config["listen"])
            await reload_expect(d, "refused")
            check(d.alive(), "daemon died on a config that does not parse")
            check(s.is_open, "signer closed by a refused reload")
            await d.check_sign(s, what="after the bad-JSON reload")

            bad = copy.deepcopy(good)
            bad["log_level"] = "debug"
            bad["requests"]["default_timout_ms"] = 5
            d.rewrite_config(bad)
            line = await reload_expect(d, "refused")
            check("default_timout_ms" in line, "refusal does not name the unknown key: %r" % line)
            await d.check_sign(s, what="after the unknown-key reload")

            bad = copy.deepcopy(good)
            bad["log_level"] = "debug"
            bad["requests"]["default_timeout_ms"] = 0
            d.rewrite_config(bad)
            await reload_expect(d, "refused")
            await d.check_sign(s, what="after the out-of-range reload")

            os.unlink(d.config_path)
            await reload_expect(d, "refused")
            await d.check_sign(s, what="after the missing-file reload")

            # none of the refused files' log_level=debug was applied
            check("level=debug" not in d.log_text(), "a refused file's log_level was applied")
            d.rewrite_config(good)
            await reload_expect(d, "ok")
            await d.check_sign(s, what="after the good reload")


async def test_restart_only_settings_refused():
    tokens = write_lines("tokens", ["tok-reload-0123456789"])
    async with Daemon() as d:
        good = copy.deepcopy(d.config)
        cert, key = make_cert(current_tmpdir(), "later")
        new_port, new_control = free_port(), free_port()
        changes = [
            ("listen", lambda c: c.update(listen="127.0.0.1:%d" % new_port)),
            ("control.listen", lambda c: c["control"].update(listen="127.0.0.1:%d" % new_control)),
            ("tls on", lambda c: c.update(tls={"cert": cert, "key": key})),
            ("insecure", lambda c: c.update(insecure=True)),
            ("controllers", lambda c: c.update(controllers={"http_api": {
                "enabled": True, "token_file": tokens}})),
        ]
        async with d.signer() as s:
            for name, change in changes:
                cfg = copy.deepcopy(good)
                change(cfg)
                cfg["log_level"] = "debug"      # would show if any part were applied
                d.rewrite_config(cfg)
                line = await reload_expect(d, "refused")
                check("requires a restart" in line,
                      "%s: refusal does not say it requires a restart: %r" % (name, line))
                check(s.is_open, "%s: signer closed by the refused reload" % name)
                # still plain ws on the old port, API without a token on the old control port
                await d.check_sign(s, what="after refusing %s" % name)
                check(not port_accepts(new_port), "%s: new signer port listening" % name)
                check(not port_accepts(new_control), "%s: new control port listening" % name)
            async with d.signer() as s2:
                await d.check_sign(s2, what="new ws:// signer after the refusals")
            check("level=debug" not in d.log_text(), "a refused file's log_level was applied")


run_tests(globals())
