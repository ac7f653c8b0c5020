"""
Shared set-up of the Python client-library tests: puts the library
(clients/python/src) and the end-to-end harness (tests/integration) on the
path, and gives the RFC 8032 test key and the vectors of docs/PROTOCOL.md.
"""

import asyncio
import os
import re
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("WSSIGND_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
BUILD = os.environ.get("WSSIGND_BUILD_DIR") or os.path.join(REPO, "build")
sys.path.insert(0, os.path.join(REPO, "clients", "python", "src"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import wssign  # noqa: E402,F401

SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def protocol_vectors():
    """The ```vector blocks of docs/PROTOCOL.md, as dicts, and the example frames."""
    with open(os.path.join(REPO, "docs", "PROTOCOL.md"), encoding="utf-8") as f:
        text = f.read()
    vectors = []
    for block in re.findall(r"```vector\n(.*?)```", text, re.S):
        vectors.append(dict(line.split(": ", 1) for line in block.strip().splitlines()))
    frames = re.findall(r"```json\n(.*?)```", text, re.S)
    return vectors, [l for l in frames[-1].strip().splitlines()] if frames else []


def token_file(token):
    """A token file holding token, mode 0600, in the running test's directory."""
    from wssd_test import current_tmpdir
    path = os.path.join(current_tmpdir(), "tokens")
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return path


async def until(pred, timeout=5.0, what="condition"):
    """Polls pred() until it is true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(0.01)
