/*
 * version.h - pgcarrier's version, one place for the daemon's --version,
 * the admin console's SHOW VERSION and /metrics' build info.
 */
#ifndef PGC_VERSION_H
#define PGC_VERSION_H

#define PGCARRIER_VERSION "0.1.0"

#endif
