"""
Helpers for the tests that configure, build and install the project itself
(30-systemd-unit.py, 60-build-install.py): a cmake run in which chosen
pkg-config packages are absent, as on a machine where their -dev package is
not installed, and the build directory of the tree under test.
"""

import os
import subprocess

from wssd_test import BUILD_DIR, REPO, check  # noqa: F401 (BUILD_DIR: for the tests)


def pkgconfig_without(directory, hidden):
    """
    A directory for PKG_CONFIG_LIBDIR holding every .pc file pkg-config
    finds on this machine except those of the packages in `hidden`: for
    pkg-config (and so for cmake's pkg_check_modules) those packages are
    not installed. Returns the directory.
    """
    out = subprocess.run(["pkg-config", "--variable", "pc_path", "pkg-config"],
                         stdout=subprocess.PIPE, check=True, timeout=30).stdout.decode()
    os.makedirs(directory, exist_ok=True)
    seen = set()
    for d in out.strip().split(":"):
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith(".pc") or name in seen or name[:-3] in hidden:
                continue
            seen.add(name)
            os.symlink(os.path.join(d, name), os.path.join(directory, name))
    for h in hidden:
        check(h + ".pc" not in seen, "%s.pc still visible" % h)
    return directory


def cmake(args, env_add=None, timeout=300):
    """Runs cmake with args (and env_add); returns (rc, combined output)."""
    env = dict(os.environ, **(env_add or {}))
    p = subprocess.run(["cmake"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def configure(build_dir, options=(), hidden=(), scratch=None):
    """
    Configures the source tree into build_dir with options, the pkg-config
    packages in `hidden` made absent. Returns (rc, output).
    """
    env_add = {}
    if hidden:
        libdir = pkgconfig_without(os.path.join(scratch or build_dir + ".pc", "pkgconfig"),
                                   set(hidden))
        env_add = {"PKG_CONFIG_LIBDIR": libdir, "PKG_CONFIG_PATH": ""}
    return cmake(["-S", REPO, "-B", build_dir] + list(options), env_add)
