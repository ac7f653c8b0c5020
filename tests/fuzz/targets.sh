# shellcheck shell=sh
# Sourced by build.sh, run.sh and nightly.sh: the fuzz targets and their limits.

# Every target: tests/fuzz/fuzz_<name>.c, corpus/<name>/, optional <name>.dict.
# A subset can be chosen from the environment: FUZZ_TARGETS="proto b64".
FUZZ_TARGETS=${FUZZ_TARGETS:-"proto http_api_parse config b64"}

# src/ files linked into each target (relative to the source tree).
fuzz_sources() {
    case "$1" in
    proto) echo "src/common/wire.c src/common/codec.c src/common/crypto.c src/common/util.c" ;;
    http_api_parse) echo "src/controllers/http_api_parse.c" ;;
    config) echo "src/config.c src/common/addr.c src/common/files.c src/common/log.c src/common/util.c" ;;
    b64) echo "src/common/crypto.c src/common/util.c" ;;
    esac
}

# Largest input tried. proto and http_api_parse: well past the 1 KiB message
# limit the harnesses use and deep enough for jansson's nesting limit; config:
# a generous hand-written file; b64: 2 header bytes and ~3 KiB of text.
fuzz_max_len() {
    case "$1" in
    proto | http_api_parse) echo 16384 ;;
    config) echo 8192 ;;
    b64) echo 4096 ;;
    esac
}
