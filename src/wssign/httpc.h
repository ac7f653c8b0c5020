/*
 * A small blocking HTTP/1.1 client for the control API: one POST per
 * connection, an overall deadline, a bound on the response size. Plain
 * HTTP only (the control listener has no TLS and belongs on loopback).
 */
#ifndef WSSIGN_HTTPC_H
#define WSSIGN_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "httpc_parse.h" /* HTTPC_RESPONSE_MAX */
#include "url.h"

/* Per call: the answer. */
struct httpc_response {
    int status;   /* HTTP status code */
    char *body;   /* NUL-terminated (NUL not counted); free with httpc_response_cleanup */
    size_t body_len;
};

/*
 * Sends `POST path` with a JSON body to the http:// URL u (its host and
 * port; path replaces its path), with "Authorization: Bearer <bearer>" when
 * bearer is not NULL, and reads the whole answer. The connection is closed
 * afterwards. Everything must finish within timeout_ms.
 * Returns 0 with *resp filled (any status), or with a reason in err:
 *   WSS_ERR_IO       name resolution, connect, send or receive failed
 *   WSS_ERR_TIMEOUT  the deadline passed
 *   WSS_ERR_PROTO    the answer is not HTTP/1.x or is larger than HTTPC_RESPONSE_MAX
 */
int httpc_post_json(const struct url *u, const char *path, const char *bearer, const char *body,
                    size_t body_len, uint64_t timeout_ms, struct httpc_response *resp, char *err,
                    size_t errlen);

/* Frees the body. NULL is a no-op. */
void httpc_response_cleanup(struct httpc_response *r);

#endif
