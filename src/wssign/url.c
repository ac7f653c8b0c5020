/*
 * URL parsing for the agent and request subcommands. Only what wssign needs:
 * scheme, host, port, path. Knows nothing of sockets.
 */
#include "url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

static int fail(char *err, size_t errlen, const char *text, const char *why)
{
    snprintf(err, errlen, "invalid URL '%s': %s", text, why);
    return WSS_ERR_INVAL;
}

int url_parse(const char *text, struct url *out, char *err, size_t errlen)
{
    const char *p = text, *sep, *host, *host_end, *auth_end;
    size_t n;

    memset(out, 0, sizeof *out);
    for (const char *c = text; *c; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
            return fail(err, errlen, text, "spaces and control characters are not allowed");
    sep = strstr(p, "://");
    if (!sep || sep == p || (size_t)(sep - p) >= sizeof out->scheme)
        return fail(err, errlen, text, "expected scheme://host[:port][/path]");
    for (n = 0; p + n < sep; n++) {
        if (!isalpha((unsigned char)p[n]))
            return fail(err, errlen, text, "bad scheme");
        out->scheme[n] = (char)tolower((unsigned char)p[n]);
    }
    p = sep + 3;
    auth_end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(auth_end - p)))
        return fail(err, errlen, text, "user information is not supported");

    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (!host_end)
            return fail(err, errlen, text, "missing ']' after an IPv6 address");
        p = host_end + 1;
        out->ipv6 = true;
    } else {
        host = p;
        host_end = memchr(host, ':', (size_t)(auth_end - host));
        if (!host_end)
            host_end = auth_end;
        p = host_end;
    }
    n = (size_t)(host_end - host);
    if (n == 0)
        return fail(err, errlen, text, "empty host");
    if (n > CRYPTO_HOST_MAX)
        return fail(err, errlen, text, "host name too long");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)host[i];
        bool ok = out->ipv6 ? (isxdigit(c) || c == ':' || c == '.')
                            : (isalnum(c) || c == '.' || c == '-' || c == '_');

        if (!ok)
            return fail(err, errlen, text, "bad character in host");
        out->host[i] = (char)tolower(c);
    }
    if (out->ipv6) {
        unsigned char addr[16];

        if (inet_pton(AF_INET6, out->host, addr) != 1)
            return fail(err, errlen, text, "bad IPv6 address");
    }

    if (p < auth_end && *p == ':') {
        char *end;
        long port;

        p++;
        if (p == auth_end || !isdigit((unsigned char)*p))
            return fail(err, errlen, text, "bad port");
        port = strtol(p, &end, 10);
        if (end != auth_end || port < 1 || port > 65535)
            return fail(err, errlen, text, "port must be 1 to 65535");
        out->port = (int)port;
    } else if (p != auth_end) {
        return fail(err, errlen, text, "unexpected text after the host");
    } else if (!strcmp(out->scheme, "wss") || !strcmp(out->scheme, "https")) {
        out->port = 443;
    } else {
        out->port = 80;
    }

    p = auth_end;
    n = strcspn(p, "#");
    if (p[n] == '#')
        return fail(err, errlen, text, "fragments are not supported");
    if (n && *p != '/')
        return fail(err, errlen, text, "a query needs a path before it");
    if (n >= sizeof out->path)
        return fail(err, errlen, text, "path too long");
    memcpy(out->path, p, n);
    out->path[n] = '\0';
    return 0;
}
