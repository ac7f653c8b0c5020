/*
 * lws's log output routed into the log sink (log.h). The one part of the
 * logging that needs lws: the daemon and wssign link it, the common library
 * does not.
 */
#ifndef WSSIGND_LOG_LWS_H
#define WSSIGND_LOG_LWS_H

/*
 * Receives one line of lws's log (lws_set_log_level's emit callback) and
 * writes it as "level=<mapped> event=lws msg=\"...\"". lws_level is an LLL_*
 * bit; the text is escaped and its trailing newline dropped. Errors and
 * warnings are written at most once a second per kind (the text with its
 * digits left out), with "suppressed=N" as log_limited does.
 */
void log_lws(int lws_level, const char *line);

#endif
