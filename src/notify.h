/*
 * Readiness, status and watchdog notifications to the service manager
 * (sd_notify). Every function is a no-op when the daemon was built without
 * libsystemd or runs without NOTIFY_SOCKET.
 */
#ifndef WSSIGND_NOTIFY_H
#define WSSIGND_NOTIFY_H

#include <stdint.h>

/* READY=1 with a STATUS= line: both listeners are bound. */
void notify_ready(const char *status);
/* STATUS=<status>. */
void notify_status(const char *status);
/* RELOADING=1: a SIGHUP reload started (READY=1 follows). */
void notify_reloading(void);
/* STOPPING=1: the drain started. */
void notify_stopping(void);
/* WATCHDOG=1: the loop is alive. */
void notify_watchdog(void);
/* How often to send WATCHDOG=1, in ms (a third of WATCHDOG_USEC), or 0 when
 * the service manager asked for no watchdog. */
uint64_t notify_watchdog_interval_ms(void);

#endif
