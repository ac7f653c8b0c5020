/*
 * A small blocking HTTP/1.1 client for the control API: one POST per
 * connection, an overall deadline, a bound on the response size. Over plain
 * TCP (http://), TLS (https://, the server's certificate and host name
 * checked) or a Unix socket (unix:/path).
 */
#ifndef WSSIGN_HTTPC_H
#define WSSIGN_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"        /* ADDR_UNIX_PATH_MAX */
#include "httpc_parse.h" /* HTTPC_RESPONSE_MAX */
#include "url.h"

/* Per call: where the control API listens and how it is reached. */
struct httpc_target {
    struct url url;                         /* http:// or https://: host and port */
    bool tls;                               /* https://: TLS 1.2+, certificate verified */
    const char *ca_file;                    /* with tls: trust only the CAs in this PEM file;
                                                NULL: the system's CA store. Borrowed */
    char unix_path[ADDR_UNIX_PATH_MAX + 1]; /* not "": connect to this Unix socket instead of
                                                url (which is then unused) */
};

/* Per call: the answer. */
struct httpc_response {
    int status; /* HTTP status code */
    char *body; /* NUL-terminated (NUL not counted); free with httpc_response_cleanup */
    size_t body_len;
};

/*
 * Sends `POST path` with a JSON body to the target t, with "Authorization:
 * Bearer <bearer>" when bearer is not NULL, and reads the whole answer. The
 * connection is closed afterwards. Everything must finish within
 * timeout_ms. With t->tls the server must present a certificate that
 * chains to t->ca_file (or the system store) and names t->url.host (a DNS
 * name, or an IP address in its subjectAltName).
 * Returns 0 with *resp filled (any status), or with a reason in err:
 *   WSS_ERR_IO       name resolution, connect, TLS handshake (a certificate
 *                    that does not verify included), send or receive failed
 *   WSS_ERR_TIMEOUT  the deadline passed
 *   WSS_ERR_PROTO    the answer is not HTTP/1.x or is larger than HTTPC_RESPONSE_MAX
 */
int httpc_post_json(const struct httpc_target *t, const char *path, const char *bearer,
                    const char *body, size_t body_len, uint64_t timeout_ms,
                    struct httpc_response *resp, char *err, size_t errlen);

/* Frees the body. NULL is a no-op. */
void httpc_response_cleanup(struct httpc_response *r);

#endif
