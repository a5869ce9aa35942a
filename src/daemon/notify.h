/*
 * notify.h - systemd's readiness protocol (sd_notify), in a few lines of
 * our own: no libsystemd.
 *
 * Contract: when $NOTIFY_SOCKET names a datagram socket (a path, or "@name"
 * for the abstract namespace), pgc_notify() sends it one datagram holding
 * state ("READY=1", "RELOADING=1\nMONOTONIC_USEC=...", "STOPPING=1", ...),
 * as systemd's Type=notify expects. Without $NOTIFY_SOCKET it does nothing.
 * Failures are ignored: systemd's absence must never stop the pooler.
 */
#ifndef PGC_NOTIFY_H
#define PGC_NOTIFY_H

void pgc_notify(const char *state);

/* "RELOADING=1" with the MONOTONIC_USEC= systemd wants next to it. */
void pgc_notify_reloading(void);

#endif
