/*
 * Listen addresses: parsing "HOST:PORT", "[V6]:PORT" and "unix:/path",
 * printing them back, resolving host names to the numeric address that is
 * bound, and telling whether two listeners can be bound together. No lws.
 */
#ifndef WSSIGND_ADDR_H
#define WSSIGND_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_HOST_MAX 255
/* Longest Unix socket path (sun_path holds 108 bytes with the NUL). */
#define ADDR_UNIX_PATH_MAX 107
/* Room for "HOST:PORT", "[V6]:PORT" or "unix:/path" and a NUL. */
#define ADDR_STR_MAX (ADDR_HOST_MAX + 9)

/* Per listener: where to bind. */
struct addr_listen {
    char host[ADDR_HOST_MAX + 1]; /* "127.0.0.1", "::1", "0.0.0.0", "::", a name; or the path */
    int port;                     /* 0..65535 (0: any free port); 0 for a Unix socket */
    bool is_unix;                 /* "unix:/path": host holds the path */
};

/* Parses s into *out. Returns NULL on success, else a static reason; *out is
 * written only on success. */
const char *addr_parse(const char *s, struct addr_listen *out);

/* The same, with "<what>: invalid address '<s>': <reason>" in err on failure
 * (what names the setting or flag: "listen", "--control"). Returns 0 or
 * WSS_ERR_CONFIG. */
int addr_parse_listen(const char *s, struct addr_listen *out, const char *what, char *err,
                      size_t errlen);

/* Writes l as "host:port", "[v6]:port" or "unix:/path" into out. Returns out. */
const char *addr_str(char *out, size_t outlen, const struct addr_listen *l);

/* True if host is an IPv4 or IPv6 address in numeric form. */
bool addr_is_numeric(const char *host);

/* True if host names a loopback address ("127.x.x.x", "::1", "localhost"). */
bool addr_host_is_loopback(const char *host);

/*
 * Replaces a host name in l by the address that will be bound: the first
 * IPv4 address it resolves to, else the first IPv6 one (getaddrinfo; this may
 * block on DNS, so it runs at start-up and reload only). Numeric addresses and
 * Unix sockets are left as they are. Returns 0, or WSS_ERR_CONFIG with
 * "<what>: cannot resolve ..." in err.
 */
int addr_resolve(struct addr_listen *l, const char *what, char *err, size_t errlen);

/*
 * Checks that l can be bound on this host before the listener is made: a
 * scratch socket is bound to the same address and port and closed again.
 * lws 4.1.6 defers a listener whose address does not exist (and logs only a
 * warning), so this is what makes a bad address an error at start-up.
 * Returns 0 (also for Unix sockets), or WSS_ERR_IO / WSS_ERR_CONFIG with
 * "cannot listen on ADDR: reason" in err.
 */
int addr_probe_bind(const struct addr_listen *l, char *err, size_t errlen);

/*
 * True if two listeners cannot both be bound: the same address and port, a
 * wildcard and any address on one port, or two loopback addresses on one
 * port (lws 4.1 binds 127.0.0.1 as the dual-stack wildcard unless told
 * otherwise). Port 0 never clashes: the kernel picks distinct ports.
 */
bool addr_clash(const struct addr_listen *a, const struct addr_listen *b);

#endif
