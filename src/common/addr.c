/*
 * Listen addresses: "HOST:PORT", "[V6]:PORT" or "unix:/path" parsed into
 * plain structs, printed back, resolved to numeric addresses, and compared.
 * Knows nothing of the configuration file or of lws.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wssignd/errors.h>

#include "util.h"

const char *addr_str(char *out, size_t outlen, const struct addr_listen *l)
{
    if (l->is_unix)
        snprintf(out, outlen, "unix:%s", l->host);
    else
        snprintf(out, outlen, strchr(l->host, ':') ? "[%s]:%d" : "%s:%d", l->host, l->port);
    return out;
}

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/*
 * Parses s into *out. Returns NULL on success, else a static reason; *out is
 * written only on success.
 */
const char *addr_parse(const char *s, struct addr_listen *out)
{
    char host[ADDR_HOST_MAX + 1];
    const char *port;
    size_t hlen;
    long p = 0;

    if (!s || !*s)
        return "it is empty";
    if (!strncmp(s, "unix:", 5)) {
        const char *path = s + 5;

        if (path[0] != '/')
            return "a Unix socket path must be absolute (unix:/path)";
        if (strlen(path) > ADDR_UNIX_PATH_MAX)
            return "the Unix socket path is too long";
        for (const char *c = path; *c; c++)
            if ((unsigned char)*c < 0x21 || *c == 0x7f)
                return "the Unix socket path has a space or control character";
        memset(out, 0, sizeof *out);
        memcpy(out->host, path, strlen(path) + 1);
        out->is_unix = true;
        return NULL;
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        struct in6_addr a6;

        if (!close)
            return "the closing ']' is missing";
        hlen = (size_t)(close - s - 1);
        if (close[1] != ':')
            return "the port is missing (expected [V6]:PORT)";
        if (hlen == 0)
            return "the host is empty";
        if (hlen > ADDR_HOST_MAX)
            return "the host is too long";
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        /* Brackets are for IPv6 literals only; zone ids ("%eth0") are not accepted. */
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return "the host in brackets is not an IPv6 address";
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        bool numeric = true;
        struct in_addr a4;

        if (!colon)
            return "the port is missing (expected HOST:PORT or [V6]:PORT)";
        hlen = (size_t)(colon - s);
        if (hlen == 0)
            return "the host is empty";
        if (memchr(s, ':', hlen))
            return "an IPv6 address must be in brackets, as in [::1]:8080";
        if (hlen > ADDR_HOST_MAX)
            return "the host is too long";
        for (size_t i = 0; i < hlen; i++) {
            if (!is_host_char(s[i]))
                return "the host has a character outside A-Z a-z 0-9 . - _";
            if (s[i] != '.' && (s[i] < '0' || s[i] > '9'))
                numeric = false;
        }
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        /* All digits and dots: it must then be a dotted quad, not "1.2.3" or "300.1.1.1". */
        if (numeric && inet_pton(AF_INET, host, &a4) != 1)
            return "the host is not a valid IPv4 address";
        port = colon + 1;
    }

    if (!*port || strlen(port) > 5)
        return "the port must be a number from 0 to 65535";
    for (const char *c = port; *c; c++) {
        if (*c < '0' || *c > '9')
            return "the port must be a number from 0 to 65535";
        p = p * 10 + (*c - '0');
    }
    if (p > 65535)
        return "the port must be a number from 0 to 65535";

    memset(out, 0, sizeof *out);
    memcpy(out->host, host, hlen + 1);
    out->port = (int)p;
    return NULL;
}

/* Copies host without surrounding brackets into buf. Returns buf. */
static const char *unbracket(char *buf, size_t buflen, const char *host)
{
    size_t len = strlen(host);

    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < buflen) {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
    } else {
        snprintf(buf, buflen, "%s", host);
    }
    return buf;
}

bool addr_host_is_loopback(const char *host)
{
    char h[ADDR_HOST_MAX + 1];
    struct in_addr a4;
    struct in6_addr a6;

    if (!host || !*host)
        return false;
    unbracket(h, sizeof h, host);
    if (!strcasecmp(h, "localhost"))
        return true;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, h, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

static bool is_wildcard(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (inet_pton(AF_INET, host, &a4) == 1)
        return a4.s_addr == htonl(INADDR_ANY);
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_UNSPECIFIED(&a6);
    return false;
}

static bool same_host(const char *a, const char *b)
{
    unsigned char x[sizeof(struct in6_addr)], y[sizeof(struct in6_addr)];

    if (inet_pton(AF_INET, a, x) == 1 && inet_pton(AF_INET, b, y) == 1)
        return !memcmp(x, y, sizeof(struct in_addr));
    if (inet_pton(AF_INET6, a, x) == 1 && inet_pton(AF_INET6, b, y) == 1)
        return !memcmp(x, y, sizeof(struct in6_addr));
    return !strcasecmp(a, b);
}

/*
 * True if two listeners cannot both be bound. Besides the same address, a
 * wildcard takes the port on every address, and lws 4.1 with IPv6 binds a
 * loopback address such as 127.0.0.1 as the dual-stack wildcard unless told
 * otherwise, so two loopback listeners on one port are refused too.
 */
bool addr_clash(const struct addr_listen *a, const struct addr_listen *b)
{
    if (a->is_unix || b->is_unix)
        return a->is_unix && b->is_unix && !strcmp(a->host, b->host);
    /* Port 0 asks the kernel for a free port: two such listeners never clash. */
    if (a->port != b->port || a->port == 0)
        return false;
    if (is_wildcard(a->host) || is_wildcard(b->host))
        return true;
    if (addr_host_is_loopback(a->host) && addr_host_is_loopback(b->host))
        return true;
    return same_host(a->host, b->host);
}

int addr_parse_listen(const char *s, struct addr_listen *out, const char *what, char *err,
                      size_t errlen)
{
    char shown[UTIL_PRINTABLE_MAX + 8];
    const char *why = addr_parse(s, out);

    if (why) {
        if (err && errlen)
            snprintf(err, errlen, "%s: invalid address '%s': %s", what ? what : "listen",
                     util_printable(shown, sizeof shown, s ? s : ""), why);
        return WSS_ERR_CONFIG;
    }
    return 0;
}

bool addr_is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int addr_resolve(struct addr_listen *l, const char *what, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai, *pick = NULL;
    char host[INET6_ADDRSTRLEN], shown[UTIL_PRINTABLE_MAX + 8];
    const void *a;
    int rc;

    if (l->is_unix || addr_is_numeric(l->host))
        return 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(l->host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot resolve '%s': %s", what,
                 util_printable(shown, sizeof shown, l->host), gai_strerror(rc));
        return WSS_ERR_CONFIG;
    }
    /* The first IPv4 address, else the first IPv6 one: "localhost" is 127.0.0.1. */
    for (ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
        if (ai->ai_family == AF_INET6 && !pick)
            pick = ai;
    }
    if (!pick) {
        freeaddrinfo(res);
        snprintf(err, errlen, "%s: '%s' has no IPv4 or IPv6 address", what,
                 util_printable(shown, sizeof shown, l->host));
        return WSS_ERR_CONFIG;
    }
    a = pick->ai_family == AF_INET
            ? (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
            : (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
    inet_ntop(pick->ai_family, a, host, sizeof host);
    freeaddrinfo(res);
    snprintf(l->host, sizeof l->host, "%s", host);
    return 0;
}

int addr_probe_bind(const struct addr_listen *l, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    char where[ADDR_STR_MAX];
    socklen_t len;
    int fd, one = 1, rc = 0;

    if (l->is_unix)
        return 0;
    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, l->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)l->port);
        len = sizeof *sin;
    } else if (inet_pton(AF_INET6, l->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)l->port);
        len = sizeof *sin6;
    } else {
        snprintf(err, errlen, "cannot listen on %s: not a numeric address",
                 addr_str(where, sizeof where, l));
        return WSS_ERR_CONFIG;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr_str(where, sizeof where, l),
                 strerror(errno));
        return WSS_ERR_IO;
    }
    /* As the listener will: a port in TIME_WAIT is usable, one being listened on is not. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr_str(where, sizeof where, l),
                 errno == EADDRNOTAVAIL ? "the address is not one of this host's"
                                        : strerror(errno));
        rc = WSS_ERR_IO;
    }
    close(fd);
    return rc;
}
