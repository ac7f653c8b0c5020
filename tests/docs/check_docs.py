#!/usr/bin/python3
"""
The docs keep the promises the code keeps: every error answer the HTTP
controller can send is in docs/PROTOCOL.md's table, and the signer error-code
table is one table; CONFIG.md does not say messages or signatures are logged;
the README cites the project's own security document (a section that exists),
SECURITY.md gives a reporting path that exists, and no file tells the
operator to give files to a `wssignd` user the unit does not have.
Exit 0 when all hold; 1 with one line per broken promise.
"""

import os
import re
import sys

REPO = os.environ.get("WSSIGND_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
problems = []


def read(rel):
    with open(os.path.join(REPO, rel), encoding="utf-8") as f:
        return f.read()


def section(text, heading):
    """The text under a Markdown heading, up to the next heading of any level <= its own."""
    m = re.search(r"^(#+) " + re.escape(heading) + r"\s*$", text, re.M)
    if not m:
        problems.append("no heading %r" % heading)
        return ""
    level = len(m.group(1))
    rest = text[m.end():]
    end = re.search(r"^#{1,%d} " % level, rest, re.M)
    return rest[:end.start()] if end else rest


def anchor(heading):
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")


protocol = read("docs/PROTOCOL.md")

# §4: one table, every row before any paragraph.
codes = section(protocol, "4. Error codes (`error` frames)")
lines = [l for l in codes.strip().splitlines()]
table_end = next((i for i, l in enumerate(lines) if not l.startswith("|")), len(lines))
if any(l.startswith("|") for l in lines[table_end:]):
    problems.append("PROTOCOL.md §4: the error-code table is split by a paragraph")
for code in ("superseded", "introduction_timeout", "bad_json", "unknown_request"):
    if "| `%s` |" % code not in "\n".join(lines[:table_end]):
        problems.append("PROTOCOL.md §4: `%s` missing from the table" % code)

# §7: every (status, code) the HTTP controller answers with is documented.
api = section(protocol, "7. HTTP control API")
rows = set()
for status, cell in re.findall(r"^\| (\d{3}) \| ([^|]*) \|", api, re.M):
    for code in re.findall(r"`([a-z_]+)`", cell):
        rows.add((int(status), code))
source = read("src/controllers/http_api.c")
sent = {(int(s), c) for s, c in re.findall(r'respond_error\(r, (\d{3}), "([a-z_]+)"', source)}
if not sent:
    problems.append("found no respond_error(r, NNN, \"code\") in src/controllers/http_api.c")
for status, code in sorted(sent - rows):
    problems.append("PROTOCOL.md §7: HTTP %d `%s` (sent by http_api.c) is not in the table"
                    % (status, code))
for status, code in ((415, "unsupported_media_type"), (429, "too_many_requests")):
    if (status, code) not in rows:
        problems.append("PROTOCOL.md §7: HTTP %d `%s` missing" % (status, code))

# CONFIG.md: no level logs message bytes or signatures.
config = read("docs/CONFIG.md")
flat = re.sub(r"\s+", " ", config)
if re.search(r"(messages?|signatures?)[^.]{0,60}\blogged\b[^.]{0,40}\bdebug", flat, re.I):
    problems.append("CONFIG.md says messages or signatures are logged at debug")

# README: the security reference is the project's own document and its section exists.
readme = read("README.md")
security = read("docs/SECURITY.md")
if "SECURITY-NOTES" in readme:
    problems.append("README.md cites SECURITY-NOTES, which the project does not have")
for target in re.findall(r"\(docs/SECURITY\.md#([a-z0-9-]+)\)", readme):
    if target not in {anchor(h) for h in re.findall(r"^#+ (.+?)\s*$", security, re.M)}:
        problems.append("README.md links docs/SECURITY.md#%s, which has no such section" % target)
if "docs/SECURITY.md#running-under-systemd" not in readme:
    problems.append("README.md does not cite docs/SECURITY.md for the unit's sandbox")

# SECURITY.md: a reporting path that exists, what to include, what to expect.
report = section(security, "Reporting a vulnerability")
if "listed in the" in report:
    problems.append("SECURITY.md points to maintainers the repository does not list")
for needle in ("Report a vulnerability", "wssignd --version", "acknowledgement"):
    if needle not in report:
        problems.append("SECURITY.md reporting section lacks %r" % needle)

# No instruction to chown files to a user the DynamicUser= unit does not have.
for rel in ("README.md", "docs/CONFIG.md", "docs/SECURITY.md", "config/tokens.example"):
    if re.search(r"-o wssignd\b", read(rel)):
        problems.append("%s: `install -o wssignd`, but the unit uses DynamicUser=" % rel)

for p in problems:
    print("FAIL " + p)
print("%d problem(s)" % len(problems))
sys.exit(1 if problems else 0)
