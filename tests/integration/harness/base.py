"""
What every other harness module stands on: where the binaries are, how much
slower than natively the daemon runs, the checks, base64, the introduction
proof, and the per-test state (temporary directory, child processes).
"""

import base64
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

import nacl.exceptions
import nacl.signing

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/integration
REPO = os.environ.get("WSSIGND_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("WSSIGND_BIN") or os.path.join(REPO, "build", "wssignd")
BUILD_DIR = os.environ.get("WSSIGND_BUILD_DIR") or os.path.dirname(os.path.abspath(BIN))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

INTRO_DOMAIN = b"wssign-introduction-v1"
PROTOCOL = "wssign.v1"

# A command (shell words) put in front of every daemon command line, e.g.
# "valgrind --leak-check=full --error-exitcode=99"; its exit status replaces
# the daemon's, so a wrapper that reports errors through it fails the test.
WRAPPER = shlex.split(os.environ.get("WSSIGND_TEST_WRAPPER", ""))
# How much slower than natively the daemon runs (under valgrind about 10-20):
# the harness's own time limits grow by this factor, and tests use scaled().
TIME_SCALE = float(os.environ.get("WSSIGND_TEST_TIME_SCALE") or "1") or 1.0


def scaled(seconds: float) -> float:
    """A time limit stretched by WSSIGND_TEST_TIME_SCALE."""
    return seconds * TIME_SCALE


READY_TIMEOUT = scaled(10.0)
STOP_TIMEOUT = scaled(5.0)
TEST_TIMEOUT = scaled(120.0)

_UUID4_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class TestFailure(AssertionError):
    pass


# ---------------------------------------------------------------------------
# Checks

def check(cond, what="check failed"):
    if not cond:
        raise TestFailure(what)


def check_eq(got, want, what=""):
    if got != want:
        note = ""
        if got == 1006 and "close" in what:
            note = " (1006: the connection ended without a WebSocket close frame)"
        raise TestFailure("%s: expected %r, got %r%s" % (what or "value", want, got, note))


def check_error_body(status, body, want_status, want_code, what=""):
    """Checks an HTTP error answer: status and {"error":{"code":...,"message":...}}."""
    label = what or want_code
    if status != want_status:
        raise TestFailure("%s: expected HTTP %d %s, got %r body=%r"
                          % (label, want_status, want_code, status, body))
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        raise TestFailure("%s: expected an {\"error\":{...}} body, got %r" % (label, body))
    err = body["error"]
    if err.get("code") != want_code:
        raise TestFailure("%s: expected error.code %r, got %r (body=%r)"
                          % (label, want_code, err.get("code"), body))
    if not isinstance(err.get("message"), str):
        raise TestFailure("%s: error.message missing or not a string: %r" % (label, body))
    return err


def error_code(body):
    """error.code of an HTTP error body, or None."""
    return (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None


# ---------------------------------------------------------------------------
# Encodings, keys, the introduction

def b64(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64url(data: bytes, padding=False) -> str:
    s = base64.urlsafe_b64encode(data).decode("ascii")
    return s if padding else s.rstrip("=")


def unb64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def is_uuid4(s) -> bool:
    return isinstance(s, str) and bool(_UUID4_RE.match(s))


def is_uuid(s) -> bool:
    return isinstance(s, str) and bool(_UUID_RE.match(s))


def now_ms() -> int:
    return int(time.time() * 1000)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Independent Ed25519 check of a detached signature with PyNaCl."""
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
        return True
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False


def intro_transcript(nonce_b64: str, host="127.0.0.1") -> bytes:
    """What an introduction's proof signs: the domain, the host and the nonce."""
    return INTRO_DOMAIN + b"\n" + host.encode() + b"\n" + nonce_b64.encode()


def intro_proof(sk, nonce_b64, host="127.0.0.1") -> bytes:
    return sk.sign(intro_transcript(nonce_b64, host)).signature


def with_fields(frame, override):
    """frame with the fields of override replaced; a value of None removes the field."""
    for k, v in override.items():
        if v is None:
            frame.pop(k, None)
        else:
            frame[k] = v
    return frame


def intro_frame(sk, nonce_b64, host="127.0.0.1", **override):
    """An introduction frame (dict) claiming host. Keyword arguments replace
    fields; a value of None removes the field."""
    return with_fields({"type": "introduction", "public_key": b64(bytes(sk.verify_key)),
                        "host": host, "proof": b64(intro_proof(sk, nonce_b64, host))}, override)


# ---------------------------------------------------------------------------
# Per-test state kept by the runner

_current = {"tmp": None, "daemons": [], "started": [], "procs": []}


def reset_current():
    _current.update(tmp=None, daemons=[], started=[], procs=[])


def current_tmpdir() -> str:
    """The temporary directory of the running test (created on demand)."""
    if _current["tmp"] is None:
        _current["tmp"] = tempfile.mkdtemp(prefix="wssd-test-")
    return _current["tmp"]


def track(proc):
    """Has the runner kill the child process proc when the test ends."""
    _current["procs"].append(proc)
    return proc


def die_with_parent():
    """
    preexec_fn for child processes: SIGKILL them if the test process dies
    (a ctest timeout kills it), so no daemon or signer outlives its test.
    """
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def run_program(argv, input=None, timeout=30.0, env=None):
    """Runs argv to completion; returns (rc, stdout text, stderr text)."""
    p = subprocess.run([str(a) for a in argv], input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=env,
                       stdin=None if input is not None else subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def run_cli(args, timeout=10.0, env=None):
    """Runs the daemon binary (behind WSSIGND_TEST_WRAPPER) with args; returns
    (rc, stdout, stderr)."""
    return run_program(WRAPPER + [BIN] + list(args), timeout=scaled(timeout), env=env)


# ---------------------------------------------------------------------------
# Files

def read_text(path) -> str:
    """The file's text (invalid UTF-8 replaced); "" if it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def write_lines(path, lines, mode=0o600):
    """Writes lines, one a line, to path (a bare name: in the test's temporary
    directory) with mode, replacing any file there at once; returns the path."""
    if not os.path.isabs(path):
        path = os.path.join(current_tmpdir(), path)
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path


def write_json(path, obj, mode=0o600):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
    os.chmod(path, mode)
    return path


def make_cert(directory, name="server", names="DNS:localhost,IP:127.0.0.1"):
    """Self-signed P-256 certificate for localhost / 127.0.0.1 (or the subjectAltName
    entries `names`). Returns (cert, key)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=" + names.split(",")[0].split(":", 1)[1],
         "-addext", "subjectAltName=" + names,
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    os.chmod(key, 0o600)
    return cert, key
