/*
 * Frames from the protocol core to a link: encoded by the wire codec with
 * the transport's headroom and handed to its send hook.
 */
#include "link.h"

#include "metrics.h"
#include "session.h"
#include "wire.h"

void link_send_error(struct session *s, struct metrics *m, const char *code, const char *message,
                     const char *request_id)
{
    size_t len;
    char *buf = wire_encode_error(s->ops->headroom, &len, code, message, request_id);

    metrics_proto_error(m, code);
    s->ops->send(s, buf, len);
}

void link_send_challenge(struct session *s)
{
    size_t len;
    char *buf = wire_encode_challenge(s->ops->headroom, &len, s->nonce_b64);

    s->ops->send(s, buf, len);
}

void link_send_introduced(struct session *s)
{
    size_t len;
    char *buf = wire_encode_introduced(s->ops->headroom, &len, s->key, s->session_id);

    s->ops->send(s, buf, len);
}

void link_send_sign_request(struct session *s, const char *request_id, const uint8_t *message,
                            size_t message_len, uint64_t expires_at_ms, const char *label,
                            const char *requester)
{
    size_t len;
    char *buf = wire_encode_labelled_sign_request(s->ops->headroom, &len, request_id, message,
                                                  message_len, expires_at_ms, label, requester);

    s->ops->send(s, buf, len);
}

void link_send_cancel(struct session *s, const char *request_id, const char *reason)
{
    size_t len;
    char *buf;

    /* The minimal protocol has no cancel frame: its clients would choke on one. */
    if (s->minimal)
        return;
    buf = wire_encode_cancel(s->ops->headroom, &len, request_id, reason);

    s->ops->send(s, buf, len);
}
