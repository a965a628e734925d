/*
 * serve.c - the SMS HTTP APIs and the panel in one process (serve.h), and
 * the store and panel users a data folder names, for `castellan web`.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <event2/event.h>
#include "sms/http.h"
#include "sms/search.h"
#include "sms/store.h"
#include "web/auth.h"
#include "web/serve.h"

static void on_signal(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	event_base_loopbreak(arg);
}

int web_serve(const struct web_serve_config *c, const char **step)
{
	struct web_config wc = c->web;
	char users[1200];
	struct event_base *base = NULL;
	struct event *sint = NULL, *sterm = NULL;
	struct sms_store *st = NULL;
	struct sms_http *http = NULL;
	struct web *w = NULL;
	int r = CE_ARG;

	*step = "data folder";
	if (snprintf(users, sizeof(users), "%s/" WEB_USERS_LEGACY_FILE, c->data_dir) >= (int)sizeof(users))
		goto out;
	r = CE_IO;
	if (mkdir(c->data_dir, 0700) != 0 && access(c->data_dir, W_OK) != 0)
		goto out;
	r = CE_NOMEM;
	if (!(base = sms_http_base_new()))
		goto out;
	*step = "database";
	if ((r = sms_store_open(c->db_uri, &st)) != 0)
		goto out;
	*step = "HTTP";
	if ((r = sms_http_new(base, st, c->http_addr ? c->http_addr : "127.0.0.1:8080", &http)) != 0)
		goto out;
	*step = "search workers";
	if (c->search_workers &&
	    (r = sms_http_set_search(http, c->db_uri, &(struct sms_search_limits){ .workers = c->search_workers })) != 0)
		goto out;
	*step = "HTTP threads";
	if (c->http_threads > 1 && (r = sms_http_set_threads(http, c->db_uri, c->http_threads)) != 0)
		goto out;
	*step = "panel";
	wc.legacy_users_path = users;
	if ((r = web_new(http, st, &wc, &w)) != 0)
		goto out;
	r = CE_NOMEM;
	sint = evsignal_new(base, SIGINT, on_signal, base);
	sterm = evsignal_new(base, SIGTERM, on_signal, base);
	if (!sint || !sterm || event_add(sint, NULL) != 0 || event_add(sterm, NULL) != 0)
		goto out;
	*step = "ready";
	if (c->on_ready && (r = c->on_ready(c->ctx, sms_http_port(http))) != 0)
		goto out;
	r = event_base_dispatch(base) < 0 ? CE_IO : 0;
out:
	web_free(w);
	sms_http_free(http);
	if (sint)
		event_free(sint);
	if (sterm)
		event_free(sterm);
	sms_store_close(st);
	if (base)
		event_base_free(base);
	return r;
}

int web_db_resolve(const char *data_dir, const char *db, const char *db_file, struct dburi *uri)
{
	char def[1200];

	if (snprintf(def, sizeof(def), "sqlite:%s/sms.db", data_dir) >= (int)sizeof(def))
		return CE_ARG;
	return dburi_resolve("web", db, db_file, def, uri);
}

int web_users_open_data(const char *data_dir, const char *db_uri, const char *from, struct sms_store **st,
	struct web_users **u, size_t *moved, size_t *skipped, const char **step)
{
	char users[1200];
	int r;

	*st = NULL;
	*u = NULL;
	*moved = *skipped = 0;
	*step = "database";
	if ((r = sms_store_open(db_uri, st)) != 0)
		return r;
	*step = "panel users";
	if ((r = web_users_open(*st, NULL, u)) != 0)
		return r;
	*step = "data folder";
	if (snprintf(users, sizeof(users), "%s/" WEB_USERS_LEGACY_FILE, data_dir) >= (int)sizeof(users))
		return CE_ARG;
	*step = "import";
	return web_users_import_file(*u, from ? from : users, moved, skipped);
}
