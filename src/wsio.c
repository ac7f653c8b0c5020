/*
 * Write-now-or-wait for lws connections, and killing one from outside its
 * callbacks. No state of its own.
 */
#include "wsio.h"

bool wsio_write_now(struct lws *wsi, bool idle)
{
    /*
     * Waiting for WRITEABLE costs two poll changes per write (ask for
     * POLLOUT, drop it again), each an epoll_ctl DEL plus ADD under libuv,
     * and a loop turn. Writing at once when nothing waits on the socket
     * halved the epoll_ctl calls per signature (14 to 7) and saved about 7 %
     * CPU per sign (bench/README.md). A short write is kept by lws and
     * finished before anything else goes out, which lws_partial_buffered
     * reports: then the write waits its turn like any other.
     */
    if (idle && !lws_partial_buffered(wsi))
        return true;
    lws_callback_on_writable(wsi);
    return false;
}

void wsio_kill(struct lws *wsi)
{
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    /* From outside an lws callback (a timer, a verdict) lws would not notice
     * the new timeout until its next wake-up: wake it now. */
    lws_cancel_service(lws_get_context(wsi));
}
