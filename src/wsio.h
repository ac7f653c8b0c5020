/*
 * The daemon's one write discipline for lws connections, shared by the
 * signer WebSocket (conn.c) and the control listener's HTTP answers
 * (http.c), and the one way to end a connection from outside its own
 * callbacks.
 *
 * Writes normally go out from the connection's WRITEABLE callback, one
 * lws_write() per callback. A frame or answer that becomes ready while the
 * connection is idle, from outside its callbacks (another connection's
 * input, a verdict, a timer), may be written at once instead: wsio_write_now
 * makes that decision, and only there.
 */
#ifndef WSSIGND_WSIO_H
#define WSSIGND_WSIO_H

#include <stdbool.h>

#include <libwebsockets.h>

/*
 * Decides how a write that is ready now goes out. idle is the caller's
 * word that nothing of its own is queued or owed on wsi (no queued frame,
 * no ping due, not inside this connection's receive path, nothing that must
 * be seen first). Returns true when the caller should lws_write() at once
 * (idle, and lws holds no partial write for wsi); otherwise asks lws for
 * WRITEABLE and returns false, and the caller keeps the write for that
 * callback.
 */
bool wsio_write_now(struct lws *wsi, bool idle);

/*
 * Ends wsi without a close handshake (a peer that is gone, does not read,
 * or must not get more), from any loop callback or timer: lws closes it at
 * its next service, which this wakes up. lws still reports the close
 * through the connection's CLOSED callback.
 */
void wsio_kill(struct lws *wsi);

#endif
