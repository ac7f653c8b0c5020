#!/usr/bin/python3
"""The Python package: `python3 -m build` makes a wheel with the typed
package in it, and the ten-line examples (clients/python/examples/, shown in
docs/CLIENTS.md) sign for the daemon."""

import asyncio
import os
import shutil
import subprocess
import sys
import zipfile

from common import REPO, SEED, wssign
from wssd_test import Daemon, check, check_eq, current_tmpdir, run_tests

PKG = os.path.join(REPO, "clients", "python")
EXAMPLES = os.path.join(PKG, "examples")


def test_wheel_builds():
    tmp = current_tmpdir()
    src = os.path.join(tmp, "src")
    shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    out = os.path.join(tmp, "dist")
    # --no-isolation: the build backend (setuptools) comes from Debian, not from an index.
    subprocess.run(["/usr/bin/python3", "-m", "build", "--no-isolation", "--wheel",
                    "--outdir", out, src], check=True, capture_output=True, timeout=120)
    wheels = [f for f in os.listdir(out) if f.endswith(".whl")]
    check_eq(len(wheels), 1, "wheels built: %r" % wheels)
    names = zipfile.ZipFile(os.path.join(out, wheels[0])).namelist()
    for want in ("wssign/__init__.py", "wssign/signer.py", "wssign/client.py",
                 "wssign/py.typed"):
        check(want in names, "%s missing from the wheel: %r" % (want, names))
    check(wheels[0].startswith("wssign-0.1.0-py3-none-any"), wheels[0])


def test_examples_are_in_the_docs():
    with open(os.path.join(REPO, "docs", "CLIENTS.md"), encoding="utf-8") as f:
        doc = f.read()
    for name in ("signer.py", "request.py"):
        with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
            code = f.read()
        check(len(code.strip().splitlines()) <= 11, "%s is longer than ten lines" % name)
        check("```python\n" + code + "```" in doc, "%s is not shown as is in CLIENTS.md" % name)


def example(name, d, tmp):
    """The example with the daemon's URLs, written into tmp."""
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
        code = f.read()
    code = code.replace("ws://127.0.0.1:8080", "ws://127.0.0.1:%d" % d.port)
    code = code.replace("http://127.0.0.1:8081", "http://127.0.0.1:%d" % d.control_port)
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(code)
    return path


async def test_examples_sign():
    tmp = current_tmpdir()
    env = dict(os.environ, PYTHONPATH=os.path.join(PKG, "src"), PYTHONDONTWRITEBYTECODE="1")
    wssign.Key.from_seed(SEED).save(os.path.join(tmp, "signer.key"))
    async with Daemon() as d:
        signer = await asyncio.create_subprocess_exec(
            "/usr/bin/python3", example("signer.py", d, tmp), cwd=tmp, env=env)
        try:
            client = wssign.AsyncClient("http://127.0.0.1:%d" % d.control_port)
            for _ in range(500):
                if await client.is_connected(wssign.Key.from_seed(SEED).public_key):
                    break
                await asyncio.sleep(0.02)
            request = example("request.py", d, tmp)
            out = subprocess.run(["/usr/bin/python3", request], cwd=tmp, env=env,
                                 capture_output=True, text=True, timeout=60)
            check_eq(out.returncode, 0, "request.py exit status (%s)" % out.stderr)
            sig = out.stdout.strip()
            check(len(sig) == 88 and sig.endswith("=="), "request.py printed %r" % sig)
            check("outcome=ok" in d.log_text(), "the daemon signed")
        finally:
            signer.terminate()
            await signer.wait()
        out = subprocess.run(["/usr/bin/python3", example("request.py", d, tmp)], cwd=tmp,
                             env=env, capture_output=True, text=True, timeout=60)
        check_eq(out.stdout.strip(), "the signer is not connected", "request.py without signer")


if __name__ == "__main__":
    run_tests(globals())
