# shellcheck shell=sh
# Sourced by build.sh, run.sh and nightly.sh: the fuzz targets and their limits.

# Every target: tests/fuzz/fuzz_<name>.c, corpus/<name>/, optional <name>.dict.
# A subset can be chosen from the environment: FUZZ_TARGETS="proto b64".
# Every parser a peer can reach: the daemon's (proto, http_api_parse) and
# wssign's (server_frames, httpc), the cluster's messages (cluster_msg), plus
# config, base64 and wssign's URLs.
FUZZ_TARGETS=${FUZZ_TARGETS:-"proto http_api_parse config b64 server_frames url httpc cluster_msg"}

# src/ files linked into each target (relative to the source tree).
fuzz_sources() {
    case "$1" in
    proto) echo "src/common/wire.c src/common/codec.c src/common/jsonflat.c src/common/crypto.c src/common/util.c" ;;
    http_api_parse) echo "src/controllers/http_api_parse.c src/common/jsonflat.c src/common/util.c" ;;
    config) echo "src/config.c src/opts.c src/keyset.c src/wss_util.c src/common/addr.c src/common/files.c src/common/log.c src/common/util.c src/common/crypto.c" ;;
    b64) echo "src/common/crypto.c src/common/util.c" ;;
    server_frames) echo "src/common/wire.c src/common/codec.c src/common/jsonflat.c src/common/crypto.c src/common/util.c" ;;
    url) echo "src/wssign/url.c src/common/addr.c src/common/util.c" ;;
    httpc) echo "src/wssign/httpc_parse.c" ;;
    cluster_msg) echo "src/cluster/msg.c src/common/util.c" ;;
    esac
}

# Largest input tried. proto, server_frames and http_api_parse: well past the
# 1 KiB message limit the harnesses use and deep enough for jansson's nesting
# limit; config: a generous hand-written file; b64: 2 header bytes and ~3 KiB
# of text; url: a host and a path at their limits; httpc: headers and a body
# in several chunks.
fuzz_max_len() {
    case "$1" in
    proto | server_frames | http_api_parse | cluster_msg) echo 16384 ;;
    config | httpc) echo 8192 ;;
    b64 | url) echo 4096 ;;
    esac
}
