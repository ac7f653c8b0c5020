/*
 * wssignd error codes.
 *
 * Every fallible function in wssignd returns 0 on success or one of these
 * negative values. The same values are the outcomes a controller's sign
 * callback receives (WSS_OK for a verified signature).
 */
#ifndef WSSIGND_ERRORS_H
#define WSSIGND_ERRORS_H

enum wss_err {
    WSS_OK = 0,
    WSS_ERR_INVAL = -1,         /* bad_request: a malformed or forbidden argument */
    WSS_ERR_NOT_CONNECTED = -2, /* not_connected: no live connection holds the key */
    WSS_ERR_TIMEOUT = -3,       /* timeout: no answer before the deadline */
    WSS_ERR_BAD_SIG = -4,       /* invalid_signature: the answer did not verify */
    WSS_ERR_CONN_CLOSED = -5,   /* connection_closed: the signer went away */
    WSS_ERR_REJECTED = -6,      /* rejected: the signer declined */
    WSS_ERR_CANCELLED = -7,     /* cancelled: the requester withdrew the request */
    WSS_ERR_SHUTTING_DOWN = -8, /* shutting_down: the daemon is stopping */
    WSS_ERR_OVERLOADED = -9,    /* overloaded: an in-flight cap was reached */
    WSS_ERR_NOT_FOUND = -10,    /* not_found: no such request, key or entry */
    WSS_ERR_EXISTS = -11,       /* exists: an entry with this id is already there */
    WSS_ERR_PROTO = -12,        /* protocol_error: a peer broke the protocol */
    WSS_ERR_CONFIG = -13,       /* config_error: a setting is invalid */
    WSS_ERR_IO = -14,           /* io_error: a system call failed */
    /* Refusals of a request before it reaches the service (the HTTP API's
     * 401, 429, 415 and 413), for the audit line and the metrics. */
    WSS_ERR_UNAUTHORIZED = -15,           /* unauthorized: no valid credential */
    WSS_ERR_TOO_MANY_REQUESTS = -16,      /* too_many_requests: too many failed authentications */
    WSS_ERR_UNSUPPORTED_MEDIA_TYPE = -17, /* unsupported_media_type: the body is not JSON */
    WSS_ERR_PAYLOAD_TOO_LARGE = -18,      /* payload_too_large: the body or message is too big */
    /* A key not held on this node could not be asked for: Redis is unreachable. */
    WSS_ERR_CLUSTER_UNAVAILABLE = -19, /* cluster_unavailable */
    /* A valid credential that does not allow this (the HTTP API's 403s). */
    WSS_ERR_FORBIDDEN = -20,     /* forbidden: the token lacks the endpoint's scope */
    WSS_ERR_FORBIDDEN_KEY = -21, /* forbidden_key: the token may not use this key */
};

#define WSS_ERR_MIN WSS_ERR_FORBIDDEN_KEY

/*
 * Returns a short human-readable description of err ("signer did not answer
 * before the deadline"). Never NULL; unknown values give "unknown error".
 */
const char *wss_strerror(int err);

/*
 * Returns the stable snake_case code for err, as used on the wire and in the
 * HTTP API ("ok", "not_connected", "invalid_signature", ...). Never NULL.
 */
const char *wss_err_code(int err);

#endif
