#!/usr/bin/python3
"""
Helpers for the fault-injection end-to-end tests (50-59), on top of the
harness (wssd_test). The /proc readings (rss_kib, RssPeak, cpu_seconds,
open_fds), the metrics scraper (scrape, ascrape), the asyncio HTTP client
(AsyncHttp, also named HttpClient here) and scaled() are the harness's own
and importable from here too. This module adds:

  connect_signer(d, src)    an introduced Signer whose socket is bound to a
                            chosen loopback source address
  ChaosSigners              a child process holding several keys that
                            answers each sign_request with a random fault
                            and writes what it did to a log file

Run this file as `fault_util.py chaos --url URL --seeds HEX,HEX --log FILE
--rng N` to get the chaos signer process on its own.
"""

import argparse
import asyncio
import os
import random
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (PYTHON, TIME_SCALE, AsyncHttp, Metrics, RssPeak,  # noqa: E402,F401
                       Signer, TestFailure, ascrape, close_code, cpu_seconds, current_tmpdir,
                       open_fds, readline_within, reset_connection, rss_kib, scaled, scrape,
                       unb64)

import nacl.signing  # noqa: E402
import websockets.exceptions  # noqa: E402

HttpClient = AsyncHttp
close_code_of = close_code


async def connect_signer(d, source="127.0.0.1", open_timeout=5.0, **kw):
    """A Signer for d whose TCP socket is bound to `source` (any 127.x.y.z),
    introduced and answering by its policy."""
    return await d.signer(source=source, **kw).start(open_timeout)


# ---------------------------------------------------------------------------
# Chaos signers: a process holding several keys, answering with random faults

# Each request a chaos signer receives gets one of these actions:
#   sign       a correct signature
#   reject     sign_reject
#   badsig     a signature with one bit flipped
#   other      a correct signature over other bytes, echoed back as the message
#   silent     no answer
#   late       a correct signature after 0.3 to 1.5 s (before or after the deadline)
#   rst        the connection ends with a TCP RST at once (then reconnects)
#   stall      the signer stops reading for 1.5 s, then goes on
ACTIONS = (("sign", 62), ("reject", 8), ("badsig", 6), ("other", 2), ("silent", 8),
           ("late", 8), ("rst", 3), ("stall", 3))

# HTTP outcomes (status, error code) each action can lead to. A request can
# also end by its connection closing (RST of a later request on the same
# connection) or by its deadline while the signer is stalled or busy.
_CLOSED = (502, "connection_closed")
_TIMEOUT = (504, "timeout")
ALLOWED = {
    "sign": {(200, None), _CLOSED, _TIMEOUT},
    "late": {(200, None), _CLOSED, _TIMEOUT},
    "reject": {(422, "rejected"), _CLOSED, _TIMEOUT},
    "badsig": {(502, "invalid_signature"), _CLOSED, _TIMEOUT},
    "other": {(502, "invalid_signature"), _CLOSED, _TIMEOUT},
    "silent": {_CLOSED, _TIMEOUT},
    "rst": {_CLOSED, _TIMEOUT},
    "stall": {_CLOSED, _TIMEOUT},
    # never reached a signer: key not connected (between an RST and the
    # reconnect), or sent to a connection that closed or stalled first
    None: {(404, "not_connected"), _CLOSED, _TIMEOUT},
}


class ChaosSigners:
    """
    Runs `fault_util.py chaos` in a child process holding one connection per
    seed. Each sign_request is answered by a random action from ACTIONS and
    logged as "<request_id> <action> <slot>" to a file, read back by
    actions().
    """

    def __init__(self, d, n_keys, rng_seed, name="chaos"):
        self.seeds = [os.urandom(32) for _ in range(n_keys)]
        self.pks = [bytes(nacl.signing.SigningKey(s).verify_key) for s in self.seeds]
        self.log_path = os.path.join(current_tmpdir(), "%s-%d.log" % (name, rng_seed))
        self.err_path = os.path.join(current_tmpdir(), "%s-%d.err" % (name, rng_seed))
        self.rng_seed = rng_seed
        self._err = open(self.err_path, "wb")
        args = [PYTHON, os.path.abspath(__file__), "chaos", "--url", d.url(),
                "--seeds", ",".join(s.hex() for s in self.seeds), "--log", self.log_path,
                "--rng", str(rng_seed)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._err,
                                     stdin=subprocess.PIPE)

    def wait_ready(self, timeout=10.0):
        """Waits for the "ready" line: every key introduced once."""
        line = readline_within(self.proc.stdout, timeout)
        if line is None or not line.startswith(b"ready"):
            raise TestFailure("chaos signers not ready within %.0f s: %r, stderr %r"
                              % (timeout, line, self.stderr()))

    def stop(self, timeout=10.0):
        """Asks the process to finish (closing stdin) and waits for it."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("chaos signers did not stop; stderr %r" % self.stderr())
        self._err.close()
        if self.proc.returncode != 0:
            raise TestFailure("chaos signers exited %d; stderr %r"
                              % (self.proc.returncode, self.stderr()))

    def kill(self):
        """Ends the process at once (for a test that failed before stop())."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    def actions(self):
        """{request_id: [action, ...]} in the order the requests were handled."""
        out = {}
        with open(self.log_path) as f:
            for line in f:
                rid, action, _slot = line.split()
                out.setdefault(rid, []).append(action)
        return out


async def _chaos_slot(slot, seed, url, rng, log, stop, ready):
    """Keeps one key connected; answers each request with a random action."""
    names = [a for a, _ in ACTIONS]
    weights = [w for _, w in ACTIONS]
    first = True
    while not stop.is_set():
        s = Signer(url, seed=seed, policy="silent")
        state = {"dead": False}

        async def act(signer, req, state=state):
            action = rng.choices(names, weights)[0]
            log.write("%s %s %d\n" % (req["request_id"], action, slot))
            if state["dead"]:
                return
            msg = unb64(req["message"])
            if action == "sign":
                await signer.answer(req, signer.response(req))
            elif action == "reject":
                await signer.answer(req, signer.rejection(req, "chaos"))
            elif action == "badsig":
                sig = bytearray(signer.sk.sign(msg).signature)
                sig[rng.randrange(64)] ^= 1 << rng.randrange(8)
                await signer.answer(req, signer.response(req, signature=bytes(sig)))
            elif action == "other":
                await signer.answer(req, signer.response(req, message=msg + b"!"))
            elif action == "late":
                delay = rng.uniform(0.3, 1.5)

                async def later():
                    await asyncio.sleep(delay)
                    if not state["dead"]:
                        try:
                            await signer.answer(req, signer.response(req))
                        except websockets.exceptions.ConnectionClosed:
                            pass
                asyncio.get_running_loop().create_task(later())
            elif action == "rst":
                state["dead"] = True
                signer.reset()
            elif action == "stall":
                signer.ws.transport.pause_reading()

                async def resume():
                    await asyncio.sleep(1.5)
                    if not state["dead"]:
                        signer.ws.transport.resume_reading()
                asyncio.get_running_loop().create_task(resume())

        s.policy = act
        try:
            await s.connect()
            await s.introduce()
        except Exception as e:  # reconnect races (superseding, refusal): try again
            print("slot %d connect failed: %r" % (slot, e), file=sys.stderr, flush=True)
            await asyncio.sleep(0.05)
            continue
        if first:
            ready(slot)
            first = False
        done = asyncio.ensure_future(s._task)
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait([done, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if stop.is_set():
            # The run is over: drop the connection at once, stalled or not.
            state["dead"] = True
            s.reset()
            s._task.cancel()
            break
        state["dead"] = True
        try:
            s.reset()
        except Exception:
            pass
        await asyncio.sleep(rng.uniform(0.0, 0.01))


async def _chaos_main(argv):
    ap = argparse.ArgumentParser(prog="fault_util.py chaos")
    ap.add_argument("--url", required=True)
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--rng", type=int, required=True)
    a = ap.parse_args(argv)
    seeds = [bytes.fromhex(h) for h in a.seeds.split(",")]
    rng = random.Random(a.rng)
    stop = asyncio.Event()
    introduced = set()

    def ready(slot):
        introduced.add(slot)
        if len(introduced) == len(seeds):
            print("ready", flush=True)

    loop = asyncio.get_running_loop()

    def on_stdin():
        # The parent closes our stdin to ask us to finish.
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    with open(a.log, "w", buffering=1) as log:
        await asyncio.gather(*[_chaos_slot(i, seed, a.url, random.Random(rng.random()), log,
                                           stop, ready)
                               for i, seed in enumerate(seeds)])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "chaos":
        asyncio.run(_chaos_main(sys.argv[2:]))
    else:
        print("usage: fault_util.py chaos --url URL --seeds HEX,HEX --log FILE --rng N",
              file=sys.stderr)
        sys.exit(2)
