/*
 * Text for enum wss_err: the human description and the stable wire code.
 */
#include <wssignd/errors.h>

/* Per error value: indexed by -err. */
static const struct {
    const char *code;
    const char *text;
} errors[] = {
    [0] = {"ok", "success"},
    [-WSS_ERR_INVAL] = {"bad_request", "invalid argument"},
    [-WSS_ERR_NOT_CONNECTED] = {"not_connected", "no signer holding this key is connected"},
    [-WSS_ERR_TIMEOUT] = {"timeout", "signer did not answer before the deadline"},
    [-WSS_ERR_BAD_SIG] = {"invalid_signature", "signature does not verify"},
    [-WSS_ERR_CONN_CLOSED] = {"connection_closed", "signer connection closed"},
    [-WSS_ERR_REJECTED] = {"rejected", "signer rejected the request"},
    [-WSS_ERR_CANCELLED] = {"cancelled", "request cancelled by its requester"},
    [-WSS_ERR_SHUTTING_DOWN] = {"shutting_down", "daemon is shutting down"},
    [-WSS_ERR_OVERLOADED] = {"overloaded", "too many requests in flight"},
    [-WSS_ERR_NOT_FOUND] = {"not_found", "not found"},
    [-WSS_ERR_EXISTS] = {"exists", "already exists"},
    [-WSS_ERR_PROTO] = {"protocol_error", "protocol error"},
    [-WSS_ERR_CONFIG] = {"config_error", "invalid configuration"},
    [-WSS_ERR_IO] = {"io_error", "input/output error"},
    [-WSS_ERR_UNAUTHORIZED] = {"unauthorized", "a valid bearer token is required"},
    [-WSS_ERR_TOO_MANY_REQUESTS] = {"too_many_requests", "too many failed authentications"},
    [-WSS_ERR_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type", "body is not JSON"},
    [-WSS_ERR_PAYLOAD_TOO_LARGE] = {"payload_too_large", "request too large"},
    [-WSS_ERR_CLUSTER_UNAVAILABLE] = {"cluster_unavailable",
                                      "the key is not held on this node and the cluster cannot "
                                      "be reached"},
    [-WSS_ERR_FORBIDDEN] = {"forbidden", "the token does not allow this endpoint"},
    [-WSS_ERR_FORBIDDEN_KEY] = {"forbidden_key", "the token may not use this key"},
};

const char *wss_strerror(int err)
{
    if (err > 0 || err < WSS_ERR_MIN)
        return "unknown error";
    return errors[-err].text;
}

const char *wss_err_code(int err)
{
    if (err > 0 || err < WSS_ERR_MIN)
        return "unknown";
    return errors[-err].code;
}
