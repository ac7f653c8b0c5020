#!/usr/bin/python3
"""
wssign without a daemon: --help names every option of every subcommand,
usage errors exit 2 with a clear message, keygen writes 0600 PKCS#8 PEM and
never overwrites, key files readable by others are refused, keys made by
`openssl genpkey` (and hex seeds) load with the same public key openssl
derives, verify's exit codes, and valgrind over the keygen/verify paths.
"""

import base64
import os
import re
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nacl.signing  # noqa: E402
import wssd_test as T  # noqa: E402
from wssd_test import check, check_eq, run_tests  # noqa: E402
from wssign_util import (keygen, openssl_genpkey, openssl_pubkey, option_table,  # noqa: E402
                         run, WSSIGN)

SUBCOMMANDS = {
    # subcommand: (source file, option table, options the issue requires)
    "keygen": ("keygen.c", "keygen_options", ["output", "help"]),
    "pubkey": ("keygen.c", "pubkey_options", ["key", "help"]),
    "agent": ("agent.c", "agent_options",
              ["url", "key", "ca", "insecure", "allow-prefix", "max-bytes", "confirm",
               "confirm-timeout-ms", "backoff-max-ms", "help"]),
    "request": ("request.c", "request_options",
                ["key", "message", "message-file", "message-hex", "control", "token-file",
                 "timeout-ms", "signature-only", "help"]),
    "verify": ("verify.c", "verify_options",
               ["key", "message", "message-file", "message-hex", "signature", "help"]),
}


def b64(b):
    return base64.b64encode(b).decode()


def test_version():
    rc, out, err = run(["--version"])
    check_eq(rc, 0, "--version exit")
    check(re.match(r"^wssign \d+\.\d+\.\d+", out), "--version output: %r" % out)
    rc, out, _ = run(["-V"])
    check_eq(rc, 0, "-V exit")


def test_help_names_every_option():
    rc, out, _ = run(["--help"])
    check_eq(rc, 0, "wssign --help exit")
    for sub in SUBCOMMANDS:
        check(re.search(r"^\s+%s\s" % sub, out, re.M), "top-level help lists %s" % sub)
    for sub, (src, table, required) in SUBCOMMANDS.items():
        names = option_table(src, table)
        missing = set(required) - set(names)
        check(not missing, "%s option table lacks %s" % (sub, sorted(missing)))
        rc, out, err = run([sub, "--help"])
        check_eq(rc, 0, "%s --help exit" % sub)
        check_eq(err, "", "%s --help stderr" % sub)
        for name in names:
            check(re.search(r"--%s\b" % re.escape(name), out),
                  "%s --help does not mention --%s:\n%s" % (sub, name, out))
        check("Exit status" in out, "%s --help documents exit codes" % sub)
        rc2, out2, _ = run([sub, "-h"])
        check_eq((rc2, out2), (0, out), "%s -h is --help" % sub)
    # key formats are named where keys are read
    for sub in ("agent", "pubkey"):
        _, out, _ = run([sub, "--help"])
        check("PKCS#8" in out and "64 hex" in out, "%s --help names the key formats" % sub)
    # the exit codes of request, one per error class
    _, out, _ = run(["request", "--help"])
    for code, name in ((3, "not_connected"), (4, "timeout"), (5, "rejected"),
                       (6, "invalid_signature"), (7, "connection_closed"),
                       (8, "unauthorized")):
        check(re.search(r"^\s+%d\s+%s" % (code, name), out, re.M),
              "request --help documents exit %d %s" % (code, name))


def test_usage_errors_exit_2():
    tmp = T.current_tmpdir()
    key, pk = keygen(tmp)
    sig = b64(bytes(64))
    cases = [
        ([], "a command is required"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["keygen", "extra"], "unexpected argument 'extra'"),
        (["keygen", "--bogus"], "invalid option"),
        (["pubkey"], "--key FILE is required"),
        (["agent", "--key", key], "--url URL is required"),
        (["agent", "--url", "ws://127.0.0.1:1/v1/ws"], "--key FILE is required"),
        (["agent", "--url", "http://127.0.0.1:1/", "--key", key], "ws:// or wss://"),
        (["agent", "--url", "wss://", "--key", key], "empty host"),
        (["agent", "--url", "ws://example.com/v1/ws", "--key", key], "refusing plain ws://"),
        (["agent", "--url", "ws://127.0.0.1:1/v1/ws", "--key", key, "--ca", key],
         "--ca needs a wss:// URL"),
        (["agent", "--url", "wss://127.0.0.1:1/v1/ws", "--key", key, "--ca", key, "--insecure"],
         "cannot be used together"),
        (["agent", "--url", "wss://127.0.0.1:1/v1/ws", "--key", key, "--ca", "/nonexistent"],
         "cannot read /nonexistent"),
        (["agent", "--url", "ws://127.0.0.1:1/v1/ws", "--key", key, "--max-bytes", "ten"],
         "--max-bytes"),
        (["agent", "--url", "ws://127.0.0.1:1/v1/ws", "--key", key, "--allow-prefix", "hex:zz"],
         "bad hex prefix"),
        (["agent", "--url", "ws://127.0.0.1:1/v1/ws", "--key", key, "--allow-prefix", ""],
         "empty prefix"),
        (["agent", "--url", "ws://127.0.0.1:1/v1/ws", "--key", key, "--backoff-max-ms", "0"],
         "--backoff-max-ms"),
        (["agent", "--url", "ws://127.0.0.1:1/v1/ws", "--key", key, "--confirm-timeout-ms",
          "-5"], "--confirm-timeout-ms"),
        (["agent", "--url", "ws://127.0.0.1:1/v1/ws", "--key", key, "--log-level", "loud"],
         "--log-level"),
        (["request", "-m", "x"], "--key PUBKEY is required"),
        (["request", "--key", "abc", "-m", "x"], "public key must be standard base64"),
        (["request", "--key", pk], "a message is required"),
        (["request", "--key", pk, "-m", "x", "--message-hex", "00"], "give only one"),
        (["request", "--key", pk, "--message-hex", "0g"], "--message-hex"),
        (["request", "--key", pk, "--message-file", "/nonexistent"], "cannot open /nonexistent"),
        (["request", "--key", pk, "-m", "x", "--control", "ftp://127.0.0.1:1"],
         "must be an https://, http:// or unix:/ URL"),
        (["request", "--key", pk, "-m", "x", "--control", "https://127.0.0.1:1", "--insecure"],
         "--insecure does not turn certificate checks off"),
        (["request", "--key", pk, "-m", "x", "--control", "http://127.0.0.1:1", "--ca", key],
         "--ca needs an https:// URL"),
        (["request", "--key", pk, "-m", "x", "--control", "https://127.0.0.1:1", "--ca",
          "/nonexistent"], "--ca: cannot read /nonexistent"),
        (["request", "--key", pk, "-m", "x", "--control", "unix:/run/x.sock", "--ca", key],
         "not to a Unix socket"),
        (["request", "--key", pk, "-m", "x", "--control", "unix:relative.sock"],
         "must be absolute"),
        (["request", "--key", pk, "-m", "x", "--control", "unix:/" + "s" * 107],
         "--control unix:/"),
        (["request", "--key", pk, "-m", "x", "--control", "http://192.0.2.1:8081"],
         "use https://"),
        (["request", "--key", pk, "-m", "x", "--timeout-ms", "0"], "--timeout-ms"),
        (["request", "--key", pk, "-m", "x", "--timeout-ms", "60001"], "--timeout-ms"),
        (["request", "--key", pk, "-m", "x", "--token-file", "/nonexistent"],
         "cannot open token file"),
        (["verify", "--key", pk, "-m", "x"], "--signature B64 is required"),
        (["verify", "--key", pk, "-m", "x", "--signature", "AAAA"], "--signature must be"),
        (["verify", "--signature", sig, "-m", "x"], "--key PUBKEY is required"),
        (["verify", "--key", pk, "--signature", sig, "-m", "x", "--zzz"], "invalid option"),
    ]
    for args, want in cases:
        rc, out, err = run(args)
        check_eq(rc, 2, "exit status of wssign %s (stderr %r)" % (" ".join(args), err))
        check(want in err, "wssign %s: expected %r in stderr, got %r" % (" ".join(args), want, err))
        check(err.startswith("wssign") or err.split(":")[0] in SUBCOMMANDS,
              "usage error names the tool: %r" % err)
        check_eq(out, "", "stdout of a usage error")


def test_keygen_writes_private_pkcs8_and_never_overwrites():
    tmp = T.current_tmpdir()
    path = os.path.join(tmp, "new.pem")
    rc, out, err = run(["keygen", "-o", path])
    check_eq(rc, 0, "keygen exit (stderr %r)" % err)
    pk = out.strip()
    check_eq(len(base64.b64decode(pk, validate=True)), 32, "printed public key length")
    check_eq(stat.S_IMODE(os.stat(path).st_mode), 0o600, "key file mode")
    with open(path) as f:
        text = f.read()
    check(text.startswith("-----BEGIN PRIVATE KEY-----\n"), "PKCS#8 PEM header: %r" % text)
    check_eq(openssl_pubkey(path), pk, "openssl's public key of the keygen file")
    rc, out, err = run(["pubkey", "--key", path])
    check_eq((rc, out.strip()), (0, pk), "pubkey of the keygen file")

    # a second keygen to the same path fails and leaves the key alone
    rc, out, err = run(["keygen", "--output", path])
    check_eq(rc, 1, "keygen over an existing file")
    check("refusing to overwrite" in err, "overwrite message: %r" % err)
    with open(path) as f:
        check_eq(f.read(), text, "existing key unchanged")
    # nor through a symlink planted at the path
    link = os.path.join(tmp, "link.pem")
    os.symlink(os.path.join(tmp, "target.pem"), link)
    rc, _, err = run(["keygen", "-o", link])
    check_eq(rc, 1, "keygen through a dangling symlink")
    check(not os.path.exists(os.path.join(tmp, "target.pem")), "symlink target not created")

    # under a permissive umask the file is still 0600
    p = subprocess.run(["sh", "-c", 'umask 000 && exec "$0" keygen -o "$1"', WSSIGN,
                        os.path.join(tmp, "umask.pem")], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    check_eq(p.returncode, 0, "keygen under umask 000")
    check_eq(stat.S_IMODE(os.stat(os.path.join(tmp, "umask.pem")).st_mode), 0o600,
             "mode under umask 000")


def test_keygen_to_stdout():
    rc, out, err = run(["keygen"])
    check_eq(rc, 0, "keygen exit")
    check(out.startswith("-----BEGIN PRIVATE KEY-----"), "PEM on stdout: %r" % out)
    m = re.search(r"public key: (\S+)", err)
    check(m, "public key on stderr: %r" % err)
    path = os.path.join(T.current_tmpdir(), "stdout.pem")
    with open(path, "w") as f:
        f.write(out)
    os.chmod(path, 0o600)
    check_eq(openssl_pubkey(path), m.group(1), "stdout key matches its printed public key")


def test_key_file_readable_by_others_is_refused():
    tmp = T.current_tmpdir()
    key, pk = keygen(tmp)
    for mode in (0o644, 0o640, 0o604, 0o660, 0o602):
        os.chmod(key, mode)
        rc, out, err = run(["pubkey", "--key", key])
        check_eq(rc, 1, "pubkey with mode %o" % mode)
        check("mode %04o" % mode in err and "chmod 600" in err,
              "clear message for mode %o: %r" % (mode, err))
        check_eq(out, "", "nothing printed for mode %o" % mode)
    os.chmod(key, 0o644)
    # the agent refuses it before connecting anywhere
    rc, out, err = run(["agent", "--url", "ws://127.0.0.1:1/v1/ws", "--key", key], timeout=10)
    check_eq(rc, 1, "agent with a 0644 key")
    check("mode 0644" in err and "chmod 600" in err, "agent message: %r" % err)
    check("event=connecting" not in err, "agent did not connect with a refused key")
    for mode in (0o600, 0o400):
        os.chmod(key, mode)
        rc, out, _ = run(["pubkey", "--key", key])
        check_eq((rc, out.strip()), (0, pk), "pubkey with mode %o" % mode)
    rc, _, err = run(["pubkey", "--key", tmp])
    check_eq(rc, 1, "a directory as key file")
    rc, _, err = run(["pubkey", "--key", os.path.join(tmp, "missing.pem")])
    check_eq(rc, 1, "a missing key file")
    check("No such file" in err, "missing key message: %r" % err)


def test_openssl_genpkey_and_other_formats():
    tmp = T.current_tmpdir()
    key = openssl_genpkey(os.path.join(tmp, "openssl.pem"))
    want = openssl_pubkey(key)
    rc, out, err = run(["pubkey", "--key", key])
    check_eq((rc, out.strip()), (0, want), "pubkey of an openssl genpkey key (stderr %r)" % err)

    # 64 hex digits: a raw seed, same public key as PyNaCl derives
    seed = os.urandom(32)
    hexkey = os.path.join(tmp, "seed.hex")
    with open(hexkey, "w") as f:
        f.write(seed.hex().upper() + "\n")
    os.chmod(hexkey, 0o600)
    rc, out, _ = run(["pubkey", "--key", hexkey])
    check_eq((rc, out.strip()), (0, b64(bytes(nacl.signing.SigningKey(seed).verify_key))),
             "pubkey of a hex seed file")

    def refused(path, content_or_cmd, want_text):
        if isinstance(content_or_cmd, list):
            subprocess.run(content_or_cmd, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        else:
            with open(path, "w") as f:
                f.write(content_or_cmd)
        os.chmod(path, 0o600)
        rc, out, err = run(["pubkey", "--key", path])
        check_eq(rc, 1, "pubkey of %s" % os.path.basename(path))
        check(want_text in err, "%s: expected %r in %r" % (path, want_text, err))

    ec = os.path.join(tmp, "ec.pem")
    refused(ec, ["openssl", "genpkey", "-algorithm", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-out", ec], "only Ed25519 keys are supported")
    enc = os.path.join(tmp, "enc.pem")
    refused(enc, ["openssl", "genpkey", "-algorithm", "ed25519", "-aes256", "-pass",
                  "pass:secret", "-out", enc], "not an unencrypted PEM private key")
    refused(os.path.join(tmp, "short.hex"), "abcd\n", "unrecognised key format")
    refused(os.path.join(tmp, "junk"), "hello world\n", "unrecognised key format")
    refused(os.path.join(tmp, "empty"), "", "unrecognised key format")


def test_verify_exit_codes():
    tmp = T.current_tmpdir()
    sk = nacl.signing.SigningKey.generate()
    pk = b64(bytes(sk.verify_key))
    msg = b"verify me \x00\xff" + os.urandom(16)
    sig = sk.sign(msg).signature
    mfile = os.path.join(tmp, "msg.bin")
    with open(mfile, "wb") as f:
        f.write(msg)

    rc, out, _ = run(["verify", "--key", pk, "--message-hex", msg.hex(), "--signature", b64(sig)])
    check_eq((rc, out), (0, "valid\n"), "valid signature, hex message")
    rc, _, _ = run(["verify", "--key", pk, "--message-file", mfile, "--signature", b64(sig)])
    check_eq(rc, 0, "valid signature, message file")
    rc, _, _ = run(["verify", "-k", pk, "-f", "-", "-s", b64(sig)], input=msg)
    check_eq(rc, 0, "valid signature, message on stdin")
    text_sig = sk.sign(b"plain text").signature
    rc, _, _ = run(["verify", "-k", pk, "-m", "plain text", "-s", b64(text_sig)])
    check_eq(rc, 0, "valid signature, --message")

    bad = bytearray(sig)
    bad[10] ^= 0x04
    rc, out, err = run(["verify", "-k", pk, "-f", mfile, "-s", b64(bytes(bad))])
    check_eq(rc, 1, "flipped signature bit")
    check("invalid" in err, "invalid message: %r" % err)
    other = b64(bytes(nacl.signing.SigningKey.generate().verify_key))
    rc, _, _ = run(["verify", "-k", other, "-f", mfile, "-s", b64(sig)])
    check_eq(rc, 1, "wrong key")
    rc, _, _ = run(["verify", "-k", pk, "-m", "other message", "-s", b64(sig)])
    check_eq(rc, 1, "wrong message")
    rc, out, err = run(["verify", "-q", "-k", pk, "-m", "other message", "-s", b64(sig)])
    check_eq((rc, out, err), (1, "", ""), "--quiet prints nothing")
    rc, _, _ = run(["verify", "-k", pk, "-f", mfile, "-s", b64(sig[:63])])
    check_eq(rc, 2, "63-byte signature is a usage error")
    rc, _, _ = run(["verify", "-k", pk, "-f", mfile, "-s", b64(sig).rstrip("=")])
    check_eq(rc, 2, "unpadded base64 signature is a usage error")


def test_valgrind_keygen_and_verify():
    if not shutil.which("valgrind"):
        print("valgrind not installed: skipped")
        return
    tmp = T.current_tmpdir()
    vg = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
          "--errors-for-leak-kinds=definite"]
    key = os.path.join(tmp, "vg.pem")
    sk = nacl.signing.SigningKey.generate()
    msg = b"valgrind"
    runs = [
        (["keygen", "-o", key], 0),
        (["pubkey", "--key", key], 0),
        (["verify", "-k", b64(bytes(sk.verify_key)), "-m", "valgrind", "-s",
          b64(sk.sign(msg).signature)], 0),
        (["verify", "-k", b64(bytes(sk.verify_key)), "-m", "valgrinD", "-s",
          b64(sk.sign(msg).signature)], 1),
        (["verify", "-k", "bad"], 2),
    ]
    for args, want in runs:
        p = subprocess.run(vg + [WSSIGN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        err = p.stderr.decode("utf-8", "replace")
        check(p.returncode != 99 and "==" not in err,
              "valgrind reports errors for wssign %s:\n%s" % (" ".join(args), err))
        check_eq(p.returncode, want, "exit status under valgrind: wssign %s" % " ".join(args))


run_tests(globals())
