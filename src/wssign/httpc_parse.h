/*
 * The parser of the control API's HTTP/1.1 answers for `wssign request`: the
 * status line, the headers it needs (Content-Length, Transfer-Encoding:
 * chunked) and the body, fed the bytes as they arrive. No I/O, so it can be
 * tested and fuzzed on its own; httpc.c reads the socket and calls it.
 */
#ifndef WSSIGN_HTTPC_PARSE_H
#define WSSIGN_HTTPC_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* Largest response body accepted: a signed 1 MiB message echoed back in
 * base64, with room to spare. */
#define HTTPC_RESPONSE_MAX (4 * 1024 * 1024)
/* Largest status line and header block. */
#define HTTPC_HEADER_MAX 65536

/*
 * Looks at the answer read so far: buf holds *len bytes and has room for one
 * more; eof is true once the peer has closed the connection. Returns:
 *   1              the answer is complete: buf now holds only its body
 *                  (*len bytes, de-chunked) followed by a NUL, and *status
 *                  its status (200..599)
 *   0              more bytes are needed (never when eof is true)
 *   WSS_ERR_PROTO  not an HTTP/1.x answer, a header block over
 *                  HTTPC_HEADER_MAX, a bad Content-Length or chunk size (or
 *                  one over HTTPC_RESPONSE_MAX), with a reason in err
 *   WSS_ERR_IO     eof came before the answer was complete, with a reason in err
 * Interim 1xx answers are removed from the front of buf (and *len) as they
 * are seen. A body without Content-Length or chunked encoding ends at eof.
 */
int httpc_parse_response(char *buf, size_t *len, bool eof, int *status, char *err, size_t errlen);

#endif
