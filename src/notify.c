/*
 * sd_notify() wrappers. Built against libsystemd when WSSIGND_HAVE_SYSTEMD is
 * defined; otherwise every call does nothing.
 */
#include "notify.h"

#include <stdio.h>

#ifdef WSSIGND_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

void notify_ready(const char *status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void notify_status(const char *status)
{
    sd_notifyf(0, "STATUS=%s", status);
}

void notify_reloading(void)
{
    sd_notify(0, "RELOADING=1");
}

void notify_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

void notify_watchdog(void)
{
    sd_notify(0, "WATCHDOG=1");
}

uint64_t notify_watchdog_interval_ms(void)
{
    uint64_t usec = 0;

    /* Ping at a third of the period: a late loop turn still lands inside it. */
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    return usec / 3000 ? usec / 3000 : 1;
}

#else

void notify_ready(const char *status)
{
    (void)status;
}

void notify_status(const char *status)
{
    (void)status;
}

void notify_reloading(void)
{
}

void notify_stopping(void)
{
}

void notify_watchdog(void)
{
}

uint64_t notify_watchdog_interval_ms(void)
{
    return 0;
}

#endif
