#!/usr/bin/python3
"""
The wssignd end-to-end test harness: what a test imports.

Each tests/integration/NN-area-case.py script imports this module, defines
`async def test_xxx()` (or plain `def test_xxx()`) functions, and ends with
`run_tests(globals())`. The tests drive the real daemon binary: $WSSIGND_BIN,
or <repo>/build/wssignd when the variable is unset.

The pieces live in the package harness/ (one module a concern, listed in
harness/__init__.py); this module gathers them:
  Daemon(config, ...)    writes a config file, runs the daemon, waits for
                         `event=ready` (the daemon binds port 0 and names its
                         ports there), stops it with SIGTERM (and checks that
                         it was still alive and exited 0)
  Signer(url, ...)       an asyncio WebSocket signer: challenge, introduction,
                         then a loop answering sign_request frames by policy
  SignerProcess(...)     the same signer in its own OS process (killable)
  RawWS, frame(), ...    the raw WebSocket client, for bytes no library sends
  http(), ahttp()        one request to the control API; RawHTTP and
                         AsyncHttp for raw and keep-alive connections
  scrape(), metric()     GET /metrics, parsed
  scaled(), free_port()  time limits under WSSIGND_TEST_TIME_SCALE; a port
  run_tests(globals())   the runner

WSSIGND_TEST_WRAPPER (shell words, e.g. "valgrind --error-exitcode=99 -q")
goes in front of every daemon command line; WSSIGND_TEST_TIME_SCALE
stretches the harness's time limits by that factor.

Run this file directly as `wssd_test.py signer --url URL --seed HEX` to get a
signer process that prints "introduced" when ready and "sign_request <id>"
for each request it receives.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness.base import (BIN, BUILD_DIR, HERE, INTRO_DOMAIN, PROTOCOL, PYTHON,  # noqa: E402,F401
                          READY_TIMEOUT, REPO, STOP_TIMEOUT, TEST_TIMEOUT, TIME_SCALE, WRAPPER,
                          TestFailure, b64, b64url, check, check_eq, check_error_body,
                          current_tmpdir, die_with_parent, error_code, intro_frame, intro_proof,
                          intro_transcript, is_uuid, is_uuid4, make_cert, now_ms, run_cli,
                          run_program, scaled, track, unb64, verify, with_fields, write_json,
                          write_lines)
from harness.daemon import Daemon  # noqa: E402,F401
from harness.httpc import (AsyncHttp, NoData, PeerClosed, RawHTTP, Response,  # noqa: E402,F401
                           ahttp, http, http_exchange, http_request, parse_head, take_body)
from harness.metrics import Metrics, ascrape, metric, scrape  # noqa: E402,F401
from harness.net import (cert_fingerprint, free_port, listening, pem_fingerprint,  # noqa: E402,F401
                         port_accepts, port_is_free, tls_client_context)
from harness.procfs import RssPeak, cpu_seconds, open_fds, rss_kib, status_kib  # noqa: E402,F401
from harness.runner import run_tests  # noqa: E402,F401
from harness.signer import (POLICIES, Signer, SignerProcess, readline_within,  # noqa: E402,F401
                            reset_connection, signer_main)
from harness.wsraw import (BINARY, CLOSE, CONT, PING, PONG, TEXT, WS_GUID,  # noqa: E402,F401
                           RawWS, close_code, close_payload, frame, mask_bytes, parse_frames,
                           upgrade_request, ws_accept)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "signer":
        try:
            asyncio.run(signer_main(sys.argv[2:]))
        except KeyboardInterrupt:
            pass
    else:
        print("usage: wssd_test.py signer --url URL --seed HEX [--policy P] [--cafile F]",
              file=sys.stderr)
        sys.exit(2)
