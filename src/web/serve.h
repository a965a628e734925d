/*
 * serve.h - `castellan web serve` as a part: the SMS HTTP APIs (/api.php,
 * /api/v1/) and the web panel in one event loop on one store, without the
 * head-end's ECMG and EMM parts, until SIGINT/SIGTERM.
 */
#ifndef CASTELLAN_WEB_SERVE_H
#define CASTELLAN_WEB_SERVE_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "web/web.h"

struct web_serve_config {
	const char *data_dir;      /* created 0700 if missing; its web.db is the legacy users file */
	const char *db_uri;        /* the store (the caller wipes it) */
	const char *http_addr;     /* NULL: 127.0.0.1:8080 */
	unsigned http_threads;     /* > 1: that many HTTP loops, each with its own store connection */
	unsigned search_workers;   /* REST text searches on threads of their own; 0 = on the loops */
	struct web_config web;     /* the panel (legacy_users_path is set from data_dir) */
	/* Called once listening, with the HTTP port: 0 to go on, else stop with that error. */
	int (*on_ready)(void *ctx, uint16_t port);
	void *ctx;
};

/* Run until SIGINT/SIGTERM. 0, or the error with *step naming what failed
 * ("data folder", "database", "HTTP", "search workers", "HTTP threads",
 * "panel", "ready"). */
int web_serve(const struct web_serve_config *c, const char **step) WARN_UNUSED;

#endif
