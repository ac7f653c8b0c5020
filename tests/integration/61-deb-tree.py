#!/usr/bin/python3
"""
The debian/ tree against the rest of the source, without building a package
(tests/deb-test.sh builds, lints and installs the packages; .ci/run runs it):

- one version: VERSION, debian/changelog, the top entry of CHANGELOG.md,
  `wssignd --version` and `wssign --version` agree;
- debian/control builds two packages, wssignd and wssign; Build-Depends
  names the Debian package of every library CMake looks for (found through
  dpkg -S on this machine) and every build tool; wssignd depends on the
  libuv plugin libwebsockets loads at run time, which no library dependency
  names;
- each file debian/*.install, *.docs and *.examples names comes from
  somewhere in the source: a man page from man/, a unit from systemd/, a
  document or example that exists;
- every lintian override is explained by a comment above it.
"""

import glob
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_util import BUILD_DIR
from wssd_test import BIN, REPO, check, check_eq, run_tests

DEBIAN = os.path.join(REPO, "debian")
WSSIGN = os.path.join(BUILD_DIR, "src", "wssign", "wssign")


def read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def paragraphs(text):
    """debian/control as a list of {field: value} (continuation lines joined, comments dropped)."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        fields, last = {}, None
        for line in block.splitlines():
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and last:
                fields[last] += "\n" + line.strip()
            else:
                last, _, value = line.partition(":")
                fields[last] = value.strip()
        out.append(fields)
    return out


def relation_names(value):
    """Package names of a Depends-style field, without versions, alternatives flattened."""
    names = set()
    for item in re.split(r"[,|]", value):
        item = item.strip()
        if item and not item.startswith("${"):
            names.add(re.match(r"[a-z0-9][a-z0-9.+-]*", item).group(0))
    return names


def version_of(program):
    p = subprocess.run([program, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    check_eq(p.returncode, 0, "%s --version" % program)
    return p.stdout.decode().split()[1]


def test_one_version():
    version = read("VERSION").strip()
    check(re.fullmatch(r"\d+\.\d+\.\d+", version), "VERSION: %r" % version)
    check_eq(read("VERSION"), version + "\n", "VERSION holds the number and a newline only")
    top = read("debian", "changelog").splitlines()[0]
    m = re.match(r"^wssignd \(([^)]+)\) \S+; urgency=\w+$", top)
    check(m is not None, "debian/changelog's first line: %r" % top)
    check_eq(m.group(1), version, "debian/changelog's version (native: no Debian revision)")
    if shutil.which("dpkg-parsechangelog"):
        p = subprocess.run(["dpkg-parsechangelog", "-l", os.path.join(DEBIAN, "changelog"),
                            "-SVersion"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        check_eq((p.returncode, p.stdout.decode().strip()), (0, version),
                 "dpkg-parsechangelog (%s)" % p.stderr.decode())
    m = re.search(r"^## (\S+)", read("CHANGELOG.md"), re.M)
    check(m is not None, "CHANGELOG.md has no release heading")
    check_eq(m.group(1), version, "CHANGELOG.md's latest release")
    check_eq(version_of(BIN), version, "wssignd --version")
    check_eq(version_of(WSSIGN), version, "wssign --version")
    check(re.search(r"^project\(wssignd VERSION \$\{WSSIGND_VERSION\}", read("CMakeLists.txt"),
                    re.M), "CMakeLists.txt takes the version from VERSION")
    check_eq(read("debian", "source", "format").strip(), "3.0 (native)", "debian/source/format")


def control():
    paras = paragraphs(read("debian", "control"))
    return paras[0], {p["Package"]: p for p in paras[1:]}


def test_control_packages():
    source, packages = control()
    check_eq(source.get("Source"), "wssignd", "Source:")
    check_eq(sorted(packages), ["wssign", "wssignd"], "binary packages")
    daemon = relation_names(packages["wssignd"]["Depends"])
    check("libwebsockets-evlib-uv" in daemon,
          "wssignd must depend on libwebsockets-evlib-uv (lws dlopens it): %r" % daemon)
    for name, p in packages.items():
        check_eq(p.get("Architecture"), "any", "%s Architecture:" % name)
        for var in ("${misc:Depends}", "${shlibs:Depends}"):
            check(var in p.get("Depends", ""), "%s Depends lacks %s" % (name, var))
    check("wssignd" not in relation_names(packages["wssign"].get("Depends", "")),
          "wssign must not pull in the daemon")


def dpkg_package_of(path):
    p = subprocess.run(["dpkg", "-S", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    check_eq(p.returncode, 0, "dpkg -S %s (%s)" % (path, p.stderr.decode().strip()))
    return p.stdout.decode().split(":")[0].strip()


# Libraries only the test suite needs: the package builds without the tests.
TEST_ONLY = {"cmocka"}


def test_build_depends_cover_the_build():
    source, _ = control()
    build_deps = relation_names(source["Build-Depends"])
    cmake = read("CMakeLists.txt") + read("src", "wssign", "CMakeLists.txt")
    modules = set(re.findall(r"pkg_check_modules\(\w+ (?:REQUIRED |QUIET )*IMPORTED_TARGET "
                             r"([a-z0-9_-]+)", cmake))
    check({"libsodium", "jansson", "uuid", "libuv", "hiredis"} <= modules,
          "pkg_check_modules found: %r" % modules)
    needed = {"cmake", "pkg-config", "scdoc", "debhelper-compat"}
    for module in sorted(modules - TEST_ONLY):
        pcdir = subprocess.run(["pkg-config", "--variable=pcfiledir", module],
                               stdout=subprocess.PIPE, timeout=30).stdout.decode().strip()
        check(pcdir, "pkg-config does not know %s (is its -dev package installed?)" % module)
        needed.add(dpkg_package_of(os.path.realpath(os.path.join(pcdir, module + ".pc"))))
    for pattern, path in ((r"find_package\(libwebsockets ", "/usr/include/libwebsockets.h"),
                          (r"find_path\(UTHASH_INCLUDE_DIR uthash\.h", "/usr/include/uthash.h"),
                          (r"find_package\(OpenSSL ", "/usr/include/openssl/ssl.h")):
        check(re.search(pattern, cmake), "CMake no longer has %s" % pattern)
        needed.add(dpkg_package_of(path))
    check_eq(sorted(needed - build_deps), [], "build dependencies missing from Build-Depends")
    check_eq(sorted(build_deps - needed), [], "Build-Depends the build does not use")


def install_entries():
    """(package, installed path) for every line of debian/<package>.install."""
    out = []
    for path in sorted(glob.glob(os.path.join(DEBIAN, "*.install"))):
        package = os.path.basename(path)[:-len(".install")]
        with open(path) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    out.append((package, line.split()[0]))
    return out


def test_install_lists_name_real_files():
    entries = install_entries()
    check_eq(sorted({p for p, _ in entries}), ["wssign", "wssignd"], "debian/*.install")
    pages = {os.path.basename(p)[:-4] for p in glob.glob(os.path.join(REPO, "man", "*.scd"))}
    units = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "systemd", "*.in"))}
    shipped_pages, shipped_units = set(), set()
    for package, path in entries:
        name = os.path.basename(path)
        if path.startswith("usr/share/man/"):
            check(name in pages, "%s: no man/%s.scd" % (path, name))
            check(path == "usr/share/man/man%s/%s" % (name[-1], name), "man section of " + path)
            shipped_pages.add(name)
        elif path.startswith("lib/systemd/system/"):
            check(name in units, "%s: no systemd/%s.in" % (path, name))
            shipped_units.add(name)
        elif path.startswith("usr/share/doc/"):
            check(name in ("agent.conf", "tokens.example", "wssignd.production.json") or
                  os.path.exists(os.path.join(REPO, "docs", name)) or name == "README.md",
                  "%s: no such document in the source" % path)
    check_eq(shipped_pages, pages, "man pages shipped")
    check_eq(shipped_units, units, "units shipped")
    for listing in ("wssignd.docs", "wssignd.examples"):
        for line in read("debian", listing).split():
            check(os.path.isfile(os.path.join(REPO, line)), "debian/%s: no %s" % (listing, line))


def test_lintian_overrides_explained():
    files = glob.glob(os.path.join(DEBIAN, "*lintian-overrides")) + \
        glob.glob(os.path.join(DEBIAN, "source", "lintian-overrides"))
    for path in files:
        with open(path) as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            if line.strip() and not line.startswith("#"):
                check(i > 0 and lines[i - 1].startswith("#"),
                      "%s:%d: override without a comment above it" % (path, i + 1))


def test_rules_executable():
    check(os.access(os.path.join(DEBIAN, "rules"), os.X_OK), "debian/rules is not executable")


run_tests(globals())
