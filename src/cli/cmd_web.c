/*
 * cmd_web.c - `castellan web`: the web panel's users from the command line
 * (adduser, passwd, role, unlock, deluser, list) and `web serve`, the SMS
 * HTTP APIs plus the panel in one small process (what `castellan headend`
 * serves, without the ECMG and EMM parts). docs/web-panel.md is the
 * reference. Passwords are read from a file or stdin, never from argv
 * (other users of the machine can read argv).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "sms/dburi.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sms/http.h"
#include "sms/search.h"
#include "sms/store.h"
#include "web/auth.h"
#include "web/serve.h"
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

struct web_args {
	const char *data, *db, *db_file, *http, *root, *admin_pwf, *ready, *kms_dir, *operator_net;
	const char *role, *password_file, *from;
	bool secure_cookies;
	uint32_t http_threads, search_workers;
};

#define A struct web_args
static const struct opt web_opts[] = {
	OPT_STR("--data", "DIR", OPT_REQUIRED, A, data, "the head-end's data folder"),
	OPT_STR("--db", "URI", 0, A, db, "the store (default DIR/sms.db, else $CASTELLAN_DB)"),
	OPT_STR("--db-file", "F", 0, A, db_file, "the store URI on F's first line (F mode 600)"),
	OPT_STR("--http", "ADDR:PORT", 0, A, http, "serve: where (default 127.0.0.1:8080)"),
	OPT_STR("--root", "DIR", 0, A, root, "serve: the panel's files (default " WEB_DEFAULT_ROOT ")"),
	OPT_STR("--admin-password-file", "F", 0, A, admin_pwf,
		"serve, first start: panel user admin's password (else a random one,\nprinted once)"),
	OPT_STR("--ready-file", "F", 0, A, ready, "serve: once listening, write \"http=PORT\" there"),
	OPT_FLAG("--secure-cookies", A, secure_cookies, "serve: mark the session cookie Secure (the panel is behind TLS)"),
	OPT_NUM("--http-threads", "N", 0, A, http_threads, 1, SMS_HTTP_THREADS_MAX,
		"serve: HTTP loops, each with its own database connection (default 1)"),
	OPT_NUM("--search-workers", "N", 0, A, search_workers, 0, SMS_SEARCH_WORKERS_MAX,
		"serve: REST text searches at once on threads of their own, off the\nHTTP loops (default 2; 0 = on "
		"the loops)"),
	OPT_STR("--kms-dir", "D", 0, A, kms_dir, "serve: an operator KMS shown read-only (admin page KMS)"),
	OPT_STR("--operator-net", "CIDR[,CIDR...]", 0, A, operator_net, "serve: the operator's networks (default\n"
		WEB_OPERATOR_NETS_DEFAULT "): they keep a way in when a user\nis locked out by wrong passwords from "
		"elsewhere"),
	OPT_STR("--role", "admin|operator|read-only", 0, A, role, "adduser: the new user's role"),
	OPT_STR("--password-file", "F", 0, A, password_file, "adduser, passwd: the password (first line; else stdin's)"),
	OPT_STR("--from", "FILE", 0, A, from, "import-users: an older separate users file (default DIR/web.db)"),
	OPT_END,
};
#undef A

static const struct opt_cmd web_cmd = {
	.name = "web",
	.synopsis = "--data DIR <command> ...",
	.about = "commands:\n"
		 "  serve                     the SMS HTTP APIs (/api.php, /api/v1/) and the panel at /.\n"
		 "                            First start: creates panel user admin with the password in F,\n"
		 "                            or a random one printed once.\n"
		 "  adduser NAME --role admin|operator|read-only [--password-file F]\n"
		 "  passwd NAME [--password-file F]\n"
		 "  role NAME admin|operator|read-only\n"
		 "  unlock NAME               clear a lock-out after repeated wrong passwords\n"
		 "  deluser NAME\n"
		 "  list\n"
		 "  import-users [--from FILE] move the users of an older separate users file (default\n"
		 "                            DIR/web.db) into the store; the file becomes FILE.imported.\n"
		 "                            serve and castellan headend do this at start on their own.",
	.opts = web_opts,
	.args = "COMMAND [NAME [ROLE]]",
	.min_args = 1,
	.max_args = 3,
	.footer = "Panel users are in the SMS store (shared by every node on one database): DIR/sms.db unless\n"
		  "--db URI, --db-file F or $CASTELLAN_DB says else. Passwords: 10 to 256 bytes, read from F\n"
		  "or, without --password-file, the first line of stdin.\n",
};

struct serve_ctx {
	const char *ready;
	char pw[WEB_PASSWORD_MAX + 2];
};

static int served(void *ctx, uint16_t port)
{
	struct serve_ctx *k = ctx;

	secret_wipe(k->pw, sizeof(k->pw)); /* the panel has it now */
	if (cli_ready_file("web", k->ready, "http=%u\n", (unsigned)port) != 0)
		return CE_IO;
	printf("web: panel on http://%s:%u/\n", "127.0.0.1", (unsigned)port);
	fflush(stdout);
	return 0;
}

static int serve(const struct web_args *a)
{
	struct serve_ctx k = { .ready = a->ready };
	struct web_serve_config c = { .data_dir = a->data, .http_addr = a->http, .search_workers = a->search_workers,
		.http_threads = a->http_threads, .on_ready = served, .ctx = &k };
	struct dburi uri = {0};
	const char *step = "";
	char shown[1024];
	int r;

	if (web_db_resolve(a->data, a->db, a->db_file, &uri) != 0) {
		dburi_cleanup(&uri);
		return 1;
	}
	if (a->admin_pwf && cli_password_read(a->admin_pwf, k.pw, sizeof(k.pw)) != 0) {
		fprintf(stderr, "web: cannot read %s\n", a->admin_pwf);
		dburi_cleanup(&uri);
		return 1;
	}
	c.db_uri = uri.uri;
	c.web = (struct web_config){ .root = a->root ? a->root : WEB_DEFAULT_ROOT, .secure_cookies = a->secure_cookies,
		.admin_password = a->admin_pwf ? k.pw : NULL, .kms_dir = a->kms_dir, .operator_nets = a->operator_net,
		.kms_view = kms_view_json };
	if ((r = web_serve(&c, &step)) != 0) {
		sms_store_uri_redact(uri.uri, shown, sizeof(shown)); /* never the password */
		if (strcmp(step, "database") == 0)
			fprintf(stderr, "web: database %s (from %s): %s\n", shown, dburi_source_name(uri.source), err_str(r));
		else if (strcmp(step, "data folder") == 0)
			fprintf(stderr, "web: cannot create %s\n", a->data);
		else
			fprintf(stderr, "web: %s: %s\n", step, err_str(r));
	}
	secret_wipe(&k, sizeof(k));
	dburi_cleanup(&uri);
	return r ? 1 : 0;
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
	struct web_args a = { .http_threads = 1, .search_workers = SMS_SEARCH_WORKERS_DEFAULT };
	char pw[WEB_PASSWORD_MAX + 2] = "";
	const char *args[3] = { NULL, NULL, NULL };
	struct sms_store *st = NULL;
	struct web_users *u = NULL;
	struct dburi uri = {0};
	size_t moved = 0, skipped = 0;
	enum web_role role;
	int n = 0, r, rc = 1;

	if ((r = opt_parse(&web_cmd, &a, argc, argv, 1, args, &n)) != OPT_GO)
		return r;
	const char *cmd = args[0], *name = args[1];

	const char *step = "";
	bool import = strcmp(cmd, "import-users") == 0;

	if (strcmp(cmd, "serve") == 0)
		return serve(&a);
	if (web_db_resolve(a.data, a.db, a.db_file, &uri) != 0)
		goto out;
	r = web_users_open_data(a.data, uri.uri, import ? a.from : NULL, &st, &u, &moved, &skipped, &step);
	if (r != 0 && strcmp(step, "database") == 0) {
		char shown[1024];

		sms_store_uri_redact(uri.uri, shown, sizeof(shown)); /* never the password */
		fprintf(stderr, "web: database %s (from %s): %s\n", shown, dburi_source_name(uri.source), err_str(r));
	} else if (r != 0 && strcmp(step, "panel users") == 0) {
		fprintf(stderr, "web: panel users: %s\n", err_str(r));
	}
	dburi_cleanup(&uri);
	if (r != 0 && strcmp(step, "import") != 0)
		goto out;
	if (import) {
		if (r == 0 && a.from && access(a.from, F_OK) != 0 && moved + skipped == 0)
			printf("web: %s: no such file, nothing moved\n", a.from);
		else if (r == 0)
			printf("web: %zu users moved into the store, %zu skipped (names the store has already)\n",
			       moved, skipped);
		goto done;
	}
	if (r != 0)
		goto done;
	if (strcmp(cmd, "list") == 0) {
		r = web_user_list(u, print_user, NULL);
	} else if (strcmp(cmd, "adduser") == 0 && name) {
		if (web_role_parse(a.role, &role) != 0) {
			fprintf(stderr, "web: --role admin|operator|read-only\n");
			rc = 2;
			goto out;
		}
		if ((r = cli_password_read(a.password_file, pw, sizeof(pw))) == 0)
			r = web_user_add(u, name, pw, role);
	} else if (strcmp(cmd, "passwd") == 0 && name) {
		if ((r = cli_password_read(a.password_file, pw, sizeof(pw))) == 0)
			r = web_user_set_password(u, name, pw);
	} else if (strcmp(cmd, "role") == 0 && name && args[2]) {
		r = web_role_parse(args[2], &role);
		if (r == 0)
			r = web_user_set_role(u, name, role);
	} else if (strcmp(cmd, "unlock") == 0 && name) {
		r = web_user_unlock(u, name);
	} else if (strcmp(cmd, "deluser") == 0 && name) {
		r = web_user_delete(u, name);
	} else {
		opt_help(stderr, &web_cmd);
		rc = 2;
		goto out;
	}
done:
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
	sms_store_close(st);
	return rc;
}
