"""The runner: every test_* function of a script, each with its own state."""

import asyncio
import inspect
import os
import shutil
import sys
import time
import traceback

from .base import TEST_TIMEOUT, _current, reset_current


def _cleanup_current():
    for d in list(_current["daemons"]):
        try:
            d.stop(check_exit=False)
        except Exception:
            pass
    for p in _current["procs"]:
        if p.poll() is None:
            p.kill()
            p.wait()
    if _current["tmp"] and os.environ.get("WSSIGND_TEST_KEEP") != "1":
        shutil.rmtree(_current["tmp"], ignore_errors=True)
    reset_current()


def run_tests(ns):
    """
    Runs every test_* function of ns in definition order (async ones with
    asyncio.run). Command-line arguments, if any, select tests by substring.
    Prints "ok NAME" / "FAIL NAME" and a closing "N passed, N failed" line;
    exits 1 if any test failed.
    """
    tests = [(n, f) for n, f in ns.items() if n.startswith("test_") and callable(f)]
    wanted = sys.argv[1:]
    if wanted:
        tests = [(n, f) for n, f in tests if any(w in n for w in wanted)]
    passed = failed = 0
    for name, fn in tests:
        t0 = time.monotonic()
        reset_current()
        try:
            if inspect.iscoroutinefunction(fn):
                asyncio.run(asyncio.wait_for(fn(), TEST_TIMEOUT))
            else:
                fn()
            # a daemon left running by the test must still be alive and stop cleanly
            for d in list(_current["daemons"]):
                d.stop()
            passed += 1
            print("ok %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            print("FAIL %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
            traceback.print_exc(file=sys.stdout)
            for d in _current["started"]:
                tail = d.log_text().splitlines()[-80:]
                print("--- daemon log (%s, last %d lines) ---" % (d.name, len(tail)))
                print("\n".join(tail))
                print("--- end of daemon log ---", flush=True)
        finally:
            _cleanup_current()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)
