/*
 * metrics.h - the Prometheus endpoint: GET /metrics over HTTP/1.x on
 * stats_listen_addr:stats_listen_port (no endpoint when the port is 0),
 * in the text exposition format 0.0.4. Metric names are listed in
 * docs/behaviour.md.
 *
 * One thread of its own serves it with poll(); it never blocks a worker:
 * the numbers come from the statistics (stats.h, summed from the
 * per-worker counters) and from a census (census.h) that the workers fill
 * between their events, announced to this thread with an eventfd.
 *
 * Bounds: at most PGC_METRICS_MAX_CONNS connections at once (more wait in
 * the listen backlog); a request's head must arrive whole within
 * PGC_METRICS_HEADER_MAX bytes (431 otherwise); a connection is closed
 * PGC_METRICS_TIMEOUT seconds after it was accepted, whatever it is doing
 * (slow clients). A request line that is not HTTP gets 400, a method other
 * than GET or HEAD 405, a path other than /metrics (or /) 404. One
 * request per connection (Connection: close). Nothing a client sends can
 * reach the pooling.
 */
#ifndef PGC_METRICS_H
#define PGC_METRICS_H

#include <stddef.h>

#include "config.h"

#define PGC_METRICS_MAX_CONNS   16
#define PGC_METRICS_HEADER_MAX  8192
#define PGC_METRICS_TIMEOUT     10.0

struct pgc_engine;

/* Open the listening socket (before privileges are dropped); 0 also when there is no endpoint. -1 with err. */
int pgc_metrics_open(struct pgc_engine *e, const pgc_config *cfg, char *err, size_t errlen);
/* Start the thread (after pgc_metrics_open). 0, or -1 with err. */
int pgc_metrics_start(char *err, size_t errlen);
/* Stop the thread and close everything (before the engine frees its pools). */
void pgc_metrics_stop(void);

#endif
