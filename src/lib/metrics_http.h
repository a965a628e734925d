/*
 * metrics_http.h - a small HTTP listener that serves the metrics registry
 * (metrics.h) at GET /metrics, on its own thread and event loop: the
 * `--metrics ADDR:PORT` of `castellan scramble` and `castellan ecmg`, whose
 * hot loops must not serve HTTP. Everything else answers 404 (405 for a
 * method other than GET/HEAD). No authentication: bind it to loopback or a
 * management network (docs/metrics.md).
 */
#ifndef CASTELLAN_LIB_METRICS_HTTP_H
#define CASTELLAN_LIB_METRICS_HTTP_H

#include <stdint.h>
#include "lib/err.h"

struct metrics_http;

/* Listen on addr ("host:port", "[v6]:port", ":port"; port 0 picks a free
 * one) and start the thread. 0, CE_ARG (bad address), CE_IO (bind),
 * CE_NOMEM. Stop and free with metrics_http_free. */
int metrics_http_start(const char *addr, struct metrics_http **out) WARN_UNUSED;
/* The bound port. */
uint16_t metrics_http_port(const struct metrics_http *m);
/* Stop the thread, close the socket, free. NULL is fine. */
void metrics_http_free(struct metrics_http *m);

#endif
