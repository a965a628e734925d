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
#include "sms/dburi.h"
#include "web/web.h"

struct sms_store;

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

/* The store's URI for a data folder: DIR/sms.db unless db (a URI), db_file
 * (a file holding one) or $CASTELLAN_DB says else (dburi_resolve, errors
 * said on stderr as "web: ..."). 0 or CE_*; dburi_cleanup uri either way. */
int web_db_resolve(const char *data_dir, const char *db, const char *db_file, struct dburi *uri) WARN_UNUSED;

/* The user commands' start: open the store at db_uri and its panel users,
 * then move an older separate users file in (from, else DIR/web.db), as
 * serve does, so no change is made beside users still waiting in the file.
 * 0 or CE_*, *step naming what failed ("database", "panel users", "data
 * folder", "import"); *st and *u are set as far as it got (close both). */
int web_users_open_data(const char *data_dir, const char *db_uri, const char *from, struct sms_store **st,
	struct web_users **u, size_t *moved, size_t *skipped, const char **step) WARN_UNUSED;

#endif
