/*
 * cmd_web.c - `castellan web`: the web panel's users from the command line
 * (adduser, passwd, role, unlock, deluser, list) and `web serve`, the SMS
 * HTTP APIs plus the panel in one small process (what `castellan headend`
 * serves, without the ECMG and EMM parts). docs/web-panel.md is the
 * reference. Passwords are read from a file or stdin, never from argv
 * (other users of the machine can read argv).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <event2/event.h>
#include "cli/cli.h"
#include "sms/dburi.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sms/http.h"
#include "sms/store.h"
#include "web/auth.h"
#include "web/web.h"
#include "kms/view.h"

#ifndef CASTELLAN_SOURCE_DIR
#define CASTELLAN_SOURCE_DIR "."
#endif
#ifdef CASTELLAN_WEB_ROOT
#define WEB_DEFAULT_ROOT CASTELLAN_WEB_ROOT /* meson -Dweb_root (the package) */
#else
#define WEB_DEFAULT_ROOT CASTELLAN_SOURCE_DIR "/web"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan web --data DIR <command> ...\n\n"
		"  serve [--http ADDR:PORT] [--root DIR] [--db URI | --db-file F] [--admin-password-file F]\n"
		"        [--ready-file F] [--secure-cookies] [--http-threads N] [--kms-dir D]\n"
		"        [--operator-net CIDR[,CIDR...]] [--search-workers N]\n"
		"                            the SMS HTTP APIs (/api.php, /api/v1/) and the panel at /\n"
		"                            (default 127.0.0.1:8080, root " WEB_DEFAULT_ROOT ").\n"
		"                            First start: creates panel user admin with the password in F,\n"
		"                            or a random one printed once. --http-threads: HTTP loops,\n"
		"                            each with its own database connection (default 1).\n"
		"                            --search-workers: REST text searches at once on threads of\n"
		"                            their own, off the HTTP loops (default 2; 0 = on the loops).\n"
		"                            --kms-dir: an operator KMS shown read-only (admin page KMS).\n"
		"                            --operator-net: the operator's networks (default\n"
		"                            " WEB_OPERATOR_NETS_DEFAULT "): they keep a way in when a user\n"
		"                            is locked out by wrong passwords from elsewhere.\n"
		"  adduser NAME --role admin|operator|read-only [--password-file F]\n"
		"  passwd NAME [--password-file F]\n"
		"  role NAME admin|operator|read-only\n"
		"  unlock NAME               clear a lock-out after repeated wrong passwords\n"
		"  deluser NAME\n"
		"  list\n\n"
		"--data DIR: the head-end's data folder; panel users are in DIR/web.db, the SMS store\n"
		"  in DIR/sms.db unless --db URI, --db-file F (the URI on F's first line, F mode 600) or\n"
		"  $CASTELLAN_DB says else. Passwords: %d to %d bytes, read from F or, without\n"
		"  --password-file, the first line of stdin.\n",
		WEB_PASSWORD_MIN, WEB_PASSWORD_MAX);
}

/* A password from file (first line) or stdin into pw (cap bytes). */
static int read_password(const char *file, char *pw, size_t cap)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int r;

	pw[0] = '\0';
	if (file) {
		if ((r = file_read_all(file, 4096, &buf, &n)) != 0)
			return r;
		size_t k = 0;

		while (k < n && buf[k] != '\n' && buf[k] != '\r')
			k++;
		r = k < cap ? 0 : CE_LIMIT;
		if (r == 0) {
			memcpy(pw, buf, k);
			pw[k] = '\0';
		}
		secret_free(buf, n);
		return r;
	}
	if (!fgets(pw, (int)cap, stdin))
		return CE_IO;
	pw[strcspn(pw, "\r\n")] = '\0';
	return 0;
}

static void on_signal(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	event_base_loopbreak(arg);
}

static int serve(const char *data, int argc, char **argv)
{
	const char *http_addr = cli_opt(argc, argv, 0, "--http"), *root = cli_opt(argc, argv, 0, "--root");
	const char *db = cli_opt(argc, argv, 0, "--db"), *db_file = cli_opt(argc, argv, 0, "--db-file");
	const char *pwf = cli_opt(argc, argv, 0, "--admin-password-file");
	const char *ready = cli_opt(argc, argv, 0, "--ready-file");
	char db_uri[1200], users[1200], pw[WEB_PASSWORD_MAX + 2];
	struct event_base *base = NULL;
	struct event *sint = NULL, *sterm = NULL;
	struct sms_store *st = NULL;
	struct sms_http *http = NULL;
	struct web *w = NULL;
	struct web_config wc = {0};
	struct dburi uri = {0};
	const char *threads = cli_opt(argc, argv, 0, "--http-threads");
	const char *searchers = cli_opt(argc, argv, 0, "--search-workers");
	uint64_t http_threads = 1, search_workers = SMS_SEARCH_WORKERS_DEFAULT;
	int r, rc = 1;

	/* strict: "x", "" or 0 is a usage error, not 0 loops */
	if (threads && (parse_u64(threads, SMS_HTTP_THREADS_MAX, &http_threads) != 0 || http_threads == 0)) {
		fprintf(stderr, "web: --http-threads: 1..%u\n", SMS_HTTP_THREADS_MAX);
		return 2;
	}
	if (searchers && parse_u64(searchers, SMS_SEARCH_WORKERS_MAX, &search_workers) != 0) {
		fprintf(stderr, "web: --search-workers: 0..%u\n", SMS_SEARCH_WORKERS_MAX);
		return 2;
	}
	if (snprintf(db_uri, sizeof(db_uri), "sqlite:%s/sms.db", data) >= (int)sizeof(db_uri) ||
	    snprintf(users, sizeof(users), "%s/web.db", data) >= (int)sizeof(users))
		return 2;
	if (dburi_resolve("web", db, db_file, db_uri, &uri) != 0)
		goto out;
	if (pwf && read_password(pwf, pw, sizeof(pw)) != 0) {
		fprintf(stderr, "web: cannot read %s\n", pwf);
		goto out;
	}
	if (mkdir(data, 0700) != 0 && access(data, W_OK) != 0) {
		fprintf(stderr, "web: cannot create %s\n", data);
		goto out;
	}
	if (!(base = sms_http_base_new()))
		goto out;
	if ((r = sms_store_open(uri.uri, &st)) != 0) {
		char shown[1024];

		sms_store_uri_redact(uri.uri, shown, sizeof(shown)); /* never the password */
		fprintf(stderr, "web: database %s (from %s): %s\n", shown, dburi_source_name(uri.source), err_str(r));
		goto out;
	}
	if ((r = sms_http_new(base, st, http_addr ? http_addr : "127.0.0.1:8080", &http)) != 0) {
		fprintf(stderr, "web: HTTP: %s\n", err_str(r));
		goto out;
	}
	if (search_workers &&
	    (r = sms_http_set_search(http, uri.uri, &(struct sms_search_limits){ .workers = (unsigned)search_workers })) != 0) {
		fprintf(stderr, "web: search workers: %s\n", err_str(r));
		goto out;
	}
	if (threads &&
	    (r = sms_http_set_threads(http, uri.uri, (unsigned)http_threads)) != 0) {
		fprintf(stderr, "web: --http-threads: %s\n", err_str(r));
		goto out;
	}
	dburi_cleanup(&uri); /* every connection is open: the URI is no longer needed */
	wc.root = root ? root : WEB_DEFAULT_ROOT;
	wc.users_path = users;
	wc.admin_password = pwf ? pw : NULL;
	wc.secure_cookies = cli_flag(argc, argv, 0, "--secure-cookies");
	wc.kms_dir = cli_opt(argc, argv, 0, "--kms-dir");
	wc.operator_nets = cli_opt(argc, argv, 0, "--operator-net");
	wc.kms_view = kms_view_json;
	if ((r = web_new(http, st, &wc, &w)) != 0) {
		fprintf(stderr, "web: %s\n", err_str(r));
		goto out;
	}
	secret_wipe(pw, sizeof(pw));
	sint = evsignal_new(base, SIGINT, on_signal, base);
	sterm = evsignal_new(base, SIGTERM, on_signal, base);
	if (!sint || !sterm || event_add(sint, NULL) != 0 || event_add(sterm, NULL) != 0)
		goto out;
	if (ready) {
		char line[64];
		int n = snprintf(line, sizeof(line), "http=%u\n", (unsigned)sms_http_port(http));

		if (file_write_atomic(ready, line, (size_t)n, 0644) != 0)
			goto out;
	}
	printf("web: panel on http://%s:%u/\n", "127.0.0.1", (unsigned)sms_http_port(http));
	fflush(stdout);
	rc = event_base_dispatch(base) < 0 ? 1 : 0;
out:
	secret_wipe(pw, sizeof(pw));
	dburi_cleanup(&uri);
	web_free(w);
	sms_http_free(http);
	if (sint)
		event_free(sint);
	if (sterm)
		event_free(sterm);
	sms_store_close(st);
	if (base)
		event_base_free(base);
	return rc;
}

static int print_user(void *ctx, const struct web_user_info *in)
{
	(void)ctx;
	printf("%-24s %-10s%s\n", in->name, web_role_name(in->role),
	       in->locked_until_ms > (int64_t)now_wall_ms() ? "  locked out" : "");
	return 0;
}

int cmd_web(int argc, char **argv)
{
	const char *data = cli_opt(argc, argv, 0, "--data");
	char users[1200], pw[WEB_PASSWORD_MAX + 2];
	struct web_users *u = NULL;
	enum web_role role;
	int i, r = 0, rc = 1;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	/* The command word: the first argument that is not an option or its value. */
	for (i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) != 0)
			break;
		if (strcmp(argv[i], "--secure-cookies") != 0)
			i++;
	}
	if (!data || i >= argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[i], "serve") == 0)
		return serve(data, argc, argv);
	if (snprintf(users, sizeof(users), "%s/web.db", data) >= (int)sizeof(users))
		return 2;
	if ((r = web_users_open(users, NULL, &u)) != 0) {
		fprintf(stderr, "web: %s: %s\n", users, err_str(r));
		return 1;
	}
	const char *cmd = argv[i], *name = i + 1 < argc ? argv[i + 1] : NULL;

	if (strcmp(cmd, "list") == 0) {
		r = web_user_list(u, print_user, NULL);
	} else if (strcmp(cmd, "adduser") == 0 && name) {
		if (web_role_parse(cli_opt(argc, argv, 0, "--role"), &role) != 0) {
			fprintf(stderr, "web: --role admin|operator|read-only\n");
			rc = 2;
			goto out;
		}
		if ((r = read_password(cli_opt(argc, argv, 0, "--password-file"), pw, sizeof(pw))) == 0)
			r = web_user_add(u, name, pw, role);
	} else if (strcmp(cmd, "passwd") == 0 && name) {
		if ((r = read_password(cli_opt(argc, argv, 0, "--password-file"), pw, sizeof(pw))) == 0)
			r = web_user_set_password(u, name, pw);
	} else if (strcmp(cmd, "role") == 0 && name && i + 2 < argc) {
		r = web_role_parse(argv[i + 2], &role);
		if (r == 0)
			r = web_user_set_role(u, name, role);
	} else if (strcmp(cmd, "unlock") == 0 && name) {
		r = web_user_unlock(u, name);
	} else if (strcmp(cmd, "deluser") == 0 && name) {
		r = web_user_delete(u, name);
	} else {
		usage(stderr);
		rc = 2;
		goto out;
	}
	if (r != 0) {
		fprintf(stderr, "web: %s%s\n", err_str(r),
			r == CE_ARG ? " (names: A-Z a-z 0-9 . _ -, up to 48; passwords: 10 to 256 bytes)"
				    : "");
		goto out;
	}
	rc = 0;
out:
	secret_wipe(pw, sizeof(pw));
	web_users_close(u);
	return rc;
}
