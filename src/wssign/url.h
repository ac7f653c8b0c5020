/*
 * A strict parser for the few URL shapes wssign uses: ws://, wss:// (the
 * signer endpoint) and http:// (the control API). No I/O.
 */
#ifndef WSSIGN_URL_H
#define WSSIGN_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto.h" /* CRYPTO_HOST_MAX */

#define URL_PATH_MAX 1024

/* Per parse: the parts of one URL. */
struct url {
    char scheme[8];                 /* "ws", "wss" or "http", lowercase */
    char host[CRYPTO_HOST_MAX + 1]; /* lowercase; IPv6 without brackets */
    bool ipv6;                      /* host is an IPv6 literal */
    int port;                       /* explicit, or the scheme's default */
    char path[URL_PATH_MAX];        /* path and query, starting with '/'; "" if absent */
};

/*
 * Parses text as scheme://host[:port][/path]. The host is a DNS name or IPv4
 * address (letters, digits, '.', '-', '_') or a bracketed IPv6 literal without
 * a zone id; it is lowercased. User info, fragments, empty hosts, port 0 and
 * control characters are refused. Any scheme is parsed; callers check it.
 * Default ports: ws/http 80, wss/https 443. Returns 0, or WSS_ERR_INVAL with a
 * reason in err. (Whether the host is loopback: addr_host_is_loopback(u->host).)
 */
int url_parse(const char *text, struct url *out, char *err, size_t errlen);

#endif
