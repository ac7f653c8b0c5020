#!/usr/bin/python3
"""
wssignd --dump-config: the configuration a start would run with, as JSON.

On a configuration with a TLS key taken from a systemd credential, a token
file, a key deny list and a cluster whose Redis URL carries a password:
- the output is one JSON object, with the defaults written out (a
  controller's options too) and the command-line overrides applied, and
  exit status 0;
- it loads back: `--check-config` on it says "configuration ok", and
  `--dump-config` on it prints the same text again;
- file settings are printed as written ("credential:tls.key", the token
  file's path), and nothing the files hold (the key, the tokens, the
  secret, the listed keys) nor the Redis password appears in it;
- a configuration that does not load, or loads but would not start, gives
  --check-config's error and status 1, and nothing on stdout.
"""

import base64
import json
import os
import re
import shutil
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (check, check_eq, current_tmpdir, make_cert, run_cli, run_tests,
                       write_json, write_lines)

PASSWORD = "Pa55-w0rd-for-redis"
TOKEN = "dump-config-token-0123456789abcdef"
SECRET = "cluster-secret-" + "s" * 40
DENIED = base64.b64encode(bytes(range(32))).decode()


def setup():
    """(config path, environment, the file contents that must not be printed)."""
    tmp = current_tmpdir()
    cert, key = make_cert(tmp)
    creds = os.path.join(tmp, "credentials")
    os.makedirs(creds)
    shutil.copyfile(key, os.path.join(creds, "tls.key"))
    os.chmod(os.path.join(creds, "tls.key"), 0o400)
    tokens = write_lines("tokens", ["# the tokens", TOKEN])
    secret = write_lines("cluster.secret", [SECRET])
    deny = write_lines("deny", [DENIED], mode=0o644)
    path = write_json(os.path.join(tmp, "wssignd.json"), {
        "listen": "127.0.0.1:0",
        "control": {"listen": "127.0.0.1:0"},
        "tls": {"cert": cert, "key": "credential:tls.key"},
        "requests": {"max_pending": 77},
        "controllers": {"http_api": {"token_file": tokens}},
        "keys": {"deny_file": deny},
        "cluster": {"redis": "redis://wssignd:%s@127.0.0.1:6379/2" % PASSWORD,
                    "secret_file": secret},
    })
    env = dict(os.environ, CREDENTIALS_DIRECTORY=creds)
    with open(key) as f:
        key_pem = f.read()
    return path, env, {"tokens": tokens, "secret": secret, "deny": deny, "cert": cert,
                       "key_pem": key_pem}


def dump(path, env, *extra):
    rc, out, err = run_cli(["-c", path, "--dump-config"] + list(extra), env=env)
    check_eq(rc, 0, "--dump-config exit status (stderr %r)" % err)
    check("level=err" not in err, "--dump-config logged an error: %r" % err)
    return out


def test_dump_is_the_effective_config():
    path, env, files = setup()
    out = dump(path, env, "--log-level", "debug")
    obj = json.loads(out)
    check(isinstance(obj, dict), "not a JSON object: %r" % out[:200])
    # what the file set, the override, and defaults the file left out
    check_eq(obj["requests"]["max_pending"], 77, "requests.max_pending")
    check_eq(obj["log_level"], "debug", "log_level from --log-level")
    check_eq(obj["listen_path"], "/v1/ws", "listen_path default")
    check_eq(obj["limits"]["max_frame_bytes"], 65536, "limits.max_frame_bytes default")
    check_eq(obj["introduction"]["proof"], "required", "introduction.proof default")
    check_eq(obj["controllers"]["http_api"]["enabled"], True, "http_api enabled")
    check_eq(obj["controllers"]["http_api"]["max_body_bytes"], 65536,
             "controllers.http_api.max_body_bytes default")
    check_eq(obj["cluster"]["channel_prefix"], "wssign:", "cluster.channel_prefix default")
    # file settings as written
    check_eq(obj["tls"], {"cert": files["cert"], "key": "credential:tls.key"}, "tls")
    check_eq(obj["controllers"]["http_api"]["token_file"], files["tokens"], "token_file")
    check_eq(obj["keys"], {"deny_file": files["deny"]}, "keys")
    check_eq(obj["cluster"]["secret_file"], files["secret"], "cluster.secret_file")
    check_eq(obj["cluster"]["redis"], "redis://wssignd:***@127.0.0.1:6379/2", "cluster.redis")


def test_no_secret_printed():
    path, env, files = setup()
    out = dump(path, env)
    for what, text in (("the Redis password", PASSWORD), ("the token", TOKEN),
                       ("the cluster secret", SECRET), ("the denied key", DENIED)):
        check(text not in out, "%s is in the dump" % what)
    for line in files["key_pem"].splitlines():
        if line and not line.startswith("-----"):
            check(line not in out, "a line of the TLS key is in the dump")
    check("BEGIN" not in out, "PEM text in the dump")
    check(env["CREDENTIALS_DIRECTORY"] not in out,
          "the credential was printed as its resolved path, not as written")


def test_dump_loads_back():
    path, env, _ = setup()
    out = dump(path, env)
    again_path = os.path.join(current_tmpdir(), "dumped.json")
    with open(again_path, "w") as f:
        f.write(out)
    os.chmod(again_path, 0o600)
    rc, check_out, err = run_cli(["-c", again_path, "--check-config"], env=env)
    check_eq(rc, 0, "--check-config on the dump (stderr %r)" % err)
    check_eq(check_out, "configuration ok\n", "--check-config on the dump")
    check_eq(dump(again_path, env), out, "--dump-config of the dump")


def test_defaults_dump():
    """Without -c: the built-in defaults, which load back the same."""
    rc, out, err = run_cli(["--dump-config", "--listen", "127.0.0.1:0", "--control",
                            "127.0.0.1:0"])
    check_eq(rc, 0, "--dump-config without a file (stderr %r)" % err)
    obj = json.loads(out)
    check("tls" not in obj and "cluster" not in obj and "keys" not in obj,
          "unset sections printed: %r" % sorted(obj))
    check_eq(obj["server_names"], ["localhost", "127.0.0.1", "::1"], "server_names default")
    path = os.path.join(current_tmpdir(), "defaults.json")
    with open(path, "w") as f:
        f.write(out)
    check_eq(dump(path, None), out, "--dump-config of the defaults' dump")


def test_invalid_config():
    tmp = current_tmpdir()
    cases = (
        ("a number out of range", {"limits": {"max_frame_bytes": 1}},
         r"limits\.max_frame_bytes"),
        ("an unknown key", {"requests": {"max_pendng": 1}}, r"unknown key 'requests\.max_pendng'"),
        # loads, but would not start: a check of start-up's
        ("a missing token file", {"listen": "127.0.0.1:0", "control": {"listen": "127.0.0.1:0"},
                                  "controllers": {"http_api": {"token_file":
                                                               os.path.join(tmp, "nope")}}},
         r"nope"),
    )
    for i, (what, obj, reason) in enumerate(cases):
        path = write_json(os.path.join(tmp, "bad%d.json" % i), obj)
        rc, out, err = run_cli(["-c", path, "--dump-config"])
        check_eq(rc, 1, "%s: exit status (stderr %r)" % (what, err))
        check_eq(out, "", "%s: stdout" % what)
        check(re.search(reason, err), "%s: %r not in %r" % (what, reason, err))
        rc2, _, err2 = run_cli(["-c", path, "--check-config"])
        check_eq(rc2, 1, "%s: --check-config exit status" % what)
        msg = re.search(r'msg=(".*"|\S+)', err)
        msg2 = re.search(r'msg=(".*"|\S+)', err2)
        check(msg and msg2, "%s: no msg= in %r / %r" % (what, err, err2))
        check_eq(msg.group(1), msg2.group(1), "%s: the same error as --check-config" % what)


if __name__ == "__main__":
    run_tests(globals())
