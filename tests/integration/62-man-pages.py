#!/usr/bin/python3
"""
The man pages (man/*.scd, built with scdoc) and what they document:

- every page builds with scdoc, the build generated it (when it found
  scdoc), and `man --warnings -l` renders it without a warning; without
  scdoc, configure says it skips the pages (and fails when asked for them
  with -DWSSIGND_MAN_PAGES=ON, as the Debian package build does);
- wssignd.json(5), docs/CONFIG.md's summary table and the code list the
  same settings: the code's list is read from src/config.c (the integer
  settings' table and the keys each section's loader compares) and from the
  option tables of src/controllers/*.c, and the daemon itself confirms
  each one: a configuration that gives it a value of the wrong type is
  refused for its type, never as an unknown key;
- wssignd(8), the README's and CONFIG.md's flag tables, `wssignd --help`
  and main.c's getopt table name the same options;
- wssign(1) documents, per command, exactly the options of that command's
  getopt table in src/wssign/;
- `wssignd --help` gives the exit codes, the signals and `man wssignd`.
Skipped (exit 0) where scdoc or man is missing.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_util import BUILD_DIR, cmake
from wssd_test import BIN, REPO, check, check_eq, current_tmpdir, run_cli, run_tests
from wssign_util import option_table

MAN_DIR = os.path.join(REPO, "man")
SCDOC = shutil.which("scdoc")
MAN = shutil.which("man")
if SCDOC is None or MAN is None:
    print("skipped: %s not found; the man page checks need scdoc and man-db"
          % ("scdoc" if SCDOC is None else "man"))
    sys.exit(0)

PAGES = {"wssignd.8", "wssignd.json.5", "wssign.1"}


def read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def scdoc(page):
    """The roff scdoc makes of man/PAGE.scd, in the test's directory; returns its path."""
    out = os.path.join(current_tmpdir(), page)
    with open(os.path.join(MAN_DIR, page + ".scd"), "rb") as src, open(out, "wb") as dst:
        p = subprocess.run([SCDOC], stdin=src, stdout=dst, stderr=subprocess.PIPE, timeout=30)
    check_eq(p.returncode, 0, "scdoc %s.scd: %s" % (page, p.stderr.decode()))
    return out


def render(path):
    """(text, warnings) of `man --warnings -l` on a roff file, 80 columns wide."""
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0", MANPAGER="cat", PAGER="cat",
               LC_ALL="C.UTF-8")
    p = subprocess.run([MAN, "--warnings", "-l", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=60, stdin=subprocess.DEVNULL)
    check_eq(p.returncode, 0, "man -l %s exit status (%s)" % (path, p.stderr.decode()))
    # no terminal: bold and underline come as overstrikes (c BS c, _ BS c)
    text = re.sub(r".\x08", "", p.stdout.decode("utf-8", "replace"))
    return text, p.stderr.decode("utf-8", "replace")


def without_date(roff):
    """A generated page without its .TH date, which is the day it was built."""
    return re.sub(r'^\.TH .*$', ".TH", roff, flags=re.M)


def test_pages_are_the_sources():
    got = {os.path.basename(p)[:-4] for p in glob.glob(os.path.join(MAN_DIR, "*.scd"))}
    check_eq(got, PAGES, "man/*.scd")


def test_render_without_warnings():
    for page in sorted(PAGES):
        text, warnings = render(scdoc(page))
        check_eq(warnings, "", "man --warnings -l %s" % page)
        name = page.rsplit(".", 1)[0]
        check(re.search(r"^NAME\n\s+%s - " % re.escape(name), text, re.M),
              "%s: no NAME section naming %s:\n%s" % (page, name, text[:400]))
        for heading in ("SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
            check(re.search(r"^%s$" % heading, text, re.M), "%s has no %s" % (page, heading))


def test_build_generated_them():
    """The build's man target made the same pages (when configure found scdoc)."""
    cache = os.path.join(BUILD_DIR, "CMakeCache.txt")
    with open(cache) as f:
        found = re.search(r"^SCDOC:FILEPATH=(.+)$", f.read(), re.M)
    if not found or found.group(1).endswith("-NOTFOUND"):
        print("  note: this build was configured without scdoc; nothing to compare", flush=True)
        return
    for page in sorted(PAGES):
        built = os.path.join(BUILD_DIR, "man", page)
        check(os.path.isfile(built), "the build did not generate %s" % built)
        with open(built) as a, open(scdoc(page)) as b:
            check_eq(without_date(a.read()), without_date(b.read()),
                     "%s in the build against man/%s.scd" % (built, page))


def path_without(program):
    """A PATH on which every program of /usr/bin but `program` is found."""
    bindir = os.path.join(current_tmpdir(), "bin")
    os.makedirs(bindir)
    for name in os.listdir("/usr/bin"):
        if name != program:
            os.symlink(os.path.join("/usr/bin", name), os.path.join(bindir, name))
    return bindir + ":/usr/sbin"


def test_configure_without_scdoc():
    env = {"PATH": path_without("scdoc")}
    # find_program also looks in the system's directories: not here.
    hide = "-DCMAKE_IGNORE_PATH=/usr/bin;/bin"
    build = os.path.join(current_tmpdir(), "build")
    rc, out = cmake(["-S", REPO, "-B", build, "-DWSSIGND_BUILD_TESTS=OFF", hide], env)
    check_eq(rc, 0, "configure without scdoc (output:\n%s)" % out)
    notices = [l for l in out.splitlines() if "scdoc" in l]
    check_eq(len(notices), 1, "lines about scdoc in the configure output:\n%s" % out)
    check("without the man pages" in notices[0], "the notice: %r" % notices[0])
    rc, out = cmake(["-S", REPO, "-B", os.path.join(current_tmpdir(), "build-on"),
                     "-DWSSIGND_BUILD_TESTS=OFF", "-DWSSIGND_MAN_PAGES=ON", hide], env)
    check(rc != 0, "configure with WSSIGND_MAN_PAGES=ON and no scdoc succeeded")
    check("apt-get install scdoc" in out, "the error names the package:\n%s" % out)


# ---- settings: the code, CONFIG.md and wssignd.json(5)

def function_body(text, name):
    m = re.search(r"^static int %s\(.*?^\{(.*?)^\}" % re.escape(name), text, re.S | re.M)
    check(m is not None, "src/config.c: no function %s" % name)
    return m.group(1)


def code_keys():
    """Every leaf setting, from src/config.c and the controllers' option tables."""
    src = read("src", "config.c")
    keys = set()
    for section, name in re.findall(r'INT_KEY\("([a-z_]+)", "([a-z_]+)"', src):
        keys.add("%s.%s" % (section, name))
    check(keys, "src/config.c: no INT_KEY entries")
    # Each loader compares k with the names of its section.
    sections = {m for m in re.findall(r"^static int load_([a-z]+)\(const struct loader", src, re.M)}

    def pair_names(body, sec):
        """The names a section of two files (load_file_pair) passes on."""
        names = []
        for call in re.findall(r"load_file_pair\((.*?)\);", body, re.S):
            names += [q for q in re.findall(r'"([a-z_]+)"', call) if q != sec]
        return names

    # A "tls" object (the signer's, control's) is read by load_tls.
    tls = pair_names(function_body(src, "load_tls"), "tls")
    check(tls, "src/config.c: load_tls names no file")
    for sec in sections - {"root", "int", "controllers", "tls"}:
        body = function_body(src, "load_" + sec)
        for name in re.findall(r'!strcmp\(k, "([a-z_]+)"\)', body) + pair_names(body, sec):
            if name == "tls" and "load_tls(" in body:
                keys.update("%s.tls.%s" % (sec, n) for n in tls)
            else:
                keys.add("%s.%s" % (sec, name))
    int_sections = {k.split(".")[0] for k in keys}
    for name in re.findall(r'!strcmp\(k, "([a-z_]+)"\)', function_body(src, "load_root")):
        if name == "tls":
            keys.update("tls." + n for n in tls)
        elif name not in sections and name not in int_sections and name != "controllers":
            keys.add(name)
    # Controllers: "enabled" is the config reader's, the rest each controller's table.
    check('json_object_get(sec, "enabled")' in function_body(src, "load_controllers"),
          "load_controllers no longer reads \"enabled\"")
    keys.add("controllers.NAME.enabled")
    for path in sorted(glob.glob(os.path.join(REPO, "src", "controllers", "*.c"))):
        with open(path) as f:
            text = f.read()
        table = re.search(r"static const struct wss_opt_spec \w+\[\] = \{(.*?)\n\};", text, re.S)
        if not table:
            continue
        name = re.search(r'\.name = "([a-z0-9_-]+)"', text)
        check(name is not None, "%s: an option table but no .name" % path)
        for opt in re.findall(r'\{\.key = "([a-z_]+)"', table.group(1)):
            keys.add("controllers.%s.%s" % (name.group(1), opt))
    return keys


def config_md_keys():
    text = read("docs", "CONFIG.md")
    m = re.search(r"^## Summary\n(.*?)^## ", text, re.S | re.M)
    check(m is not None, "docs/CONFIG.md: no Summary section")
    keys = set(re.findall(r"^\| `([a-zA-Z_.]+)` \|", m.group(1), re.M))
    # A section row ("controllers") is not a setting of its own.
    return {k for k in keys if not any(o.startswith(k + ".") for o in keys)}


def man_keys():
    """The terms of wssignd.json(5)'s SETTINGS: each line that is only *key*."""
    text = read("man", "wssignd.json.5.scd")
    m = re.search(r"^# SETTINGS\n(.*?)^# ", text, re.S | re.M)
    check(m is not None, "wssignd.json.5.scd: no SETTINGS section")
    return set(re.findall(r"^\*([a-zA-Z_.]+)\*$", m.group(1), re.M))


def test_settings_agree():
    code, doc, man = code_keys(), config_md_keys(), man_keys()
    check(len(code) > 30, "found only %d settings in the code: %r" % (len(code), sorted(code)))
    check_eq(sorted(doc - code), [], "in docs/CONFIG.md's summary but not in the code")
    check_eq(sorted(code - doc), [], "in the code but not in docs/CONFIG.md's summary")
    check_eq(sorted(man - code), [], "in wssignd.json(5) but not in the code")
    check_eq(sorted(code - man), [], "in the code but not in wssignd.json(5)")


def check_config(obj):
    path = os.path.join(current_tmpdir(), "keys.json")
    with open(path, "w") as f:
        json.dump(obj, f)
    rc, out, err = run_cli(["-c", path, "--check-config"])
    return rc, out + err


def nested(key, value):
    obj = value
    for part in reversed(key.replace("NAME", "http_api").split(".")):
        obj = {part: obj}
    return obj


def test_daemon_knows_each_setting():
    """The source-reading above cannot invent a key: the daemon accepts each
    one as a setting (a wrong type is refused for its type), and refuses a
    made-up one as unknown."""
    for key in sorted(code_keys()):
        if key.startswith("cluster."):
            # cluster.redis and cluster.secret_file are required in the section
            obj = {"cluster": {"redis": "redis://127.0.0.1:1", "secret_file": "/nonexistent"}}
            obj["cluster"][key.split(".", 1)[1]] = {"wrong": "type"}
        elif key.startswith("controllers.example."):
            obj = {"controllers": {"example": {"public_key": "A" * 43 + "=",
                                               key.rsplit(".", 1)[1]: {"wrong": "type"}}}}
        else:
            obj = nested(key, {"wrong": "type"})
        rc, out = check_config(obj)
        shown = key.replace("NAME", "http_api")
        check_eq(rc, 1, "--check-config with %s of the wrong type (%s)" % (key, out))
        check("unknown key" not in out and "is not known" not in out,
              "the daemon does not know %s: %s" % (key, out))
        check(shown in out, "the error names %s: %s" % (shown, out))
    for bogus in ("limits.max_pendng", "tls.keyfile", "controllers.http_api.token"):
        rc, out = check_config(nested(bogus, 1))
        check(rc == 1 and ("unknown key" in out or "is not known" in out),
              "a made-up key %s is refused as unknown (%s)" % (bogus, out))


# ---- options: the daemon's and wssign's

def long_options(text, table):
    m = re.search(r"static const struct option %s\[\] = \{(.*?)\n\};" % re.escape(table), text,
                  re.S)
    check(m is not None, "option table %s not found" % table)
    return set(re.findall(r'\{"([a-z0-9-]+)",', m.group(1)))


def section(text, start, end_pattern=r"^# "):
    m = re.search(r"^%s\n(.*?)(?=%s|\Z)" % (re.escape(start), end_pattern), text, re.S | re.M)
    check(m is not None, "no section %r" % start)
    return m.group(1)


def test_daemon_options_agree():
    flags = {"--" + o for o in long_options(read("src", "main.c"), "long_options")}
    check(len(flags) >= 8, "main.c's long_options: %r" % sorted(flags))
    man = set(re.findall(r"^\*(?:-[a-zA-Z], )?(--[a-z0-9-]+)\*",
                         section(read("man", "wssignd.8.scd"), "# OPTIONS"), re.M))
    check_eq(sorted(man), sorted(flags), "wssignd(8) OPTIONS against main.c's long_options")
    rc, help_text, _ = run_cli(["--help"])
    check_eq(rc, 0, "--help exit status")
    check_eq(sorted(set(re.findall(r"^\s+(?:-[a-zA-Z], )?(--[a-z0-9-]+)", help_text, re.M))),
             sorted(flags), "--help's options")
    for doc, heading in (("README.md", "## Running it"), ("docs/CONFIG.md", "## Command line")):
        rows = [l.split("|")[1] for l in section(read(doc), heading, r"^## ").splitlines()
                if l.startswith("| `-")]
        table = set(re.findall(r"--[a-z0-9-]+", "\n".join(rows)))
        check_eq(sorted(table), sorted(flags), "%s's flag table" % doc)


def test_wssign_options_agree():
    man = read("man", "wssign.1.scd")
    commands = section(man, "# COMMANDS")
    tables = {}
    for path in sorted(glob.glob(os.path.join(REPO, "src", "wssign", "*.c"))):
        with open(path) as f:
            for table in re.findall(r"static const struct option (\w+)_options\[\]", f.read()):
                tables[table] = option_table(os.path.basename(path), table + "_options")
    check_eq(sorted(tables), ["agent", "keygen", "pubkey", "request", "verify"],
             "wssign's commands (src/wssign/*.c option tables)")
    for cmd, names in sorted(tables.items()):
        text = section(commands, "## " + cmd, r"^## ")
        documented = set(re.findall(r"^\*(?:-[a-zA-Z], )?--([a-z0-9-]+)\*", text, re.M))
        check_eq(sorted(documented), sorted(names), "wssign(1) options of %s" % cmd)


def test_help_points_to_man():
    rc, out, _ = run_cli(["--help"])
    check_eq(rc, 0, "--help exit status")
    for needle in ("Exit status", "SIGHUP", "SIGTERM", "SIGINT", "man wssignd",
                   "man wssignd.json"):
        check(needle in out, "--help does not mention %r:\n%s" % (needle, out))
    for code in ("0", "1", "2"):
        check(re.search(r"\b%s (after|on|when)" % code, out),
              "--help does not explain exit status %s:\n%s" % (code, out))


run_tests(globals())
