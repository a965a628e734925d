/*
 * cmd_headend.c - `castellan headend`: the SMS (GET API + REST), the ECMG,
 * the EMMG with its EMM carousel, and the scheduler in one process
 * (src/headend/headend.h). docs/headend.md is the operator's page. The
 * options are completed into the head-end's config and the head-end made
 * by headend/launch.c; this file parses, reloads on SIGHUP and reports.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "lib/config.h"
#include "cas/keys.h"
#include "headend/headend.h"
#include "headend/launch.h"
#include "kms/view.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sms/http.h"
#include "sms/search.h"
#include "web/auth.h"
#include "web/web.h"

#ifndef CASTELLAN_SOURCE_DIR
#define CASTELLAN_SOURCE_DIR "."
#endif
#ifdef CASTELLAN_WEB_ROOT
#define HEADEND_WEB_ROOT CASTELLAN_WEB_ROOT /* meson -Dweb_root (the package) */
#else
#define HEADEND_WEB_ROOT CASTELLAN_SOURCE_DIR "/web"
#endif

struct headend_args {
	struct headend_launch l; /* the head-end's config and what headend_launch completes it from */
	const char *keystore, *ready, *config;
	bool check_config;
	char web_pw[WEB_PASSWORD_MAX + 2];
};

/* --web-admin-password-file: read at once, so a bad file stops the command
 * before anything starts. */
static int web_pw_file(void *base, const char *v)
{
	struct headend_args *a = base;
	size_t k;
	int r = cli_password_read(v, a->web_pw, sizeof(a->web_pw));

	k = r == 0 ? strlen(a->web_pw) : 0;
	if (r == CE_LIMIT || (r == 0 && (k < WEB_PASSWORD_MIN || k > WEB_PASSWORD_MAX))) {
		fprintf(stderr, "castellan headend: %s: the panel password (its first line) must be %d to %d bytes\n", v,
			WEB_PASSWORD_MIN, WEB_PASSWORD_MAX);
		r = CE_RANGE;
	} else if (r != 0) {
		fprintf(stderr, "castellan headend: cannot read %s\n", v);
	}
	if (r != 0)
		secret_wipe(a->web_pw, sizeof(a->web_pw));
	else
		a->l.cfg.web_admin_password = a->web_pw;
	return r;
}

#define A struct headend_args
static const struct opt headend_opts[] = {
	OPT_STR("--data-dir", "DIR", 0, A, l.cfg.data_dir, "state: sms.db (SQLite store, also the EMM sequence numbers)"),
	OPT_STR("--keystore", "FILE", 0, A, keystore, "head-end keystore (castellan keys init)"),
	OPT_STR("--passphrase-file", "FILE", 0, A, l.pfile, "its passphrase (else $" KEYSTORE_PASSPHRASE_ENV ")"),
	OPT_STR("--db", "URI", 0, A, l.db, "store: sqlite:PATH (default DIR/sms.db) or postgresql://..."),
	OPT_STR("--db-file", "FILE", 0, A, l.db_file, "the store URI from FILE's first line (FILE mode 600; keeps a\n"
		"password out of ps); else $CASTELLAN_DB, then the default"),
	OPT_STR("--http", "ADDR:PORT", 0, A, l.cfg.http_addr, "SMS HTTP APIs (default " HEADEND_DEFAULT_HTTP "; 'off' = none)"),
	OPT_STR("--ecmg", "ADDR:PORT", 0, A, l.cfg.ecmg_addr, "ECMG listener (default " HEADEND_DEFAULT_ECMG "; 'off' = none)"),
	OPT_STRV("--allow", "CIDR[,CIDR...]", 0, A, l.cfg.ecmg_allow, cli_check_acl,
		"scramblers (SCS) allowed on the ECMG listener; others are closed\nbefore any message (default: "
		"anyone who can reach --ecmg)"),
	OPT_STR("--mux", "HOST:PORT", 0, A, l.cfg.mux_addr, "the MUX to send EMMs to (castellan scramble --mux-listen; "
		"'off' = none:\nthe carousel runs idle, the scheduler runs; also no EMMG generator)"),
	OPT_NUM("--emm-kbps", "N", 0, A, l.cfg.emm_kbps, 1, 65535, "EMM bandwidth asked of the MUX (default 100)"),
	OPT_NUM("--client-id", "ID", 0, A, l.cfg.client_id, 0, UINT32_MAX, "EMMG client_id (default CA_system_id << 16 | 1)"),
	OPT_NUM("--data-id", "N", 0, A, l.cfg.data_id, 0, 65535, "EMMG data_id (default 1)"),
	OPT_FLAG("--udp", A, l.cfg.emm_udp, "send data_provision over UDP"),
	OPT_FLAG("--no-group-emms", A, l.cfg.no_group_emms, "one unique EMM section per card (default: cards packed in "
		"group EMMs)"),
	OPT_NUM("--http-threads", "N", 0, A, l.cfg.http_threads, 1, SMS_HTTP_THREADS_MAX,
		"HTTP loops in all, each with its own store connection (default 1, max 64)"),
	OPT_NUM("--search-workers", "N", 0, A, l.search_workers, 0, SMS_SEARCH_WORKERS_MAX,
		"REST text searches run at once on threads of their own, off the HTTP\nloops (default 2, max 16; "
		"0 = on the HTTP loops); more wait, up to 8"),
	OPT_NUM("--search-deadline-ms", "MS", 0, A, l.cfg.search_deadline_ms, 1, 600000,
		"a search stops after MS (default 5000): 503 search_timeout"),
	OPT_STR("--vendor-keys", "FILE", 0, A, l.cfg.vendor_keys, "a vendor's opened key file (kms vendor open --out): "
		"cards whose chip id\nis in it get vendor EMMs (K_v(chip)), the others K_card EMMs"),
	OPT_STR("--admin-key-file", "FILE", 0, A, l.cfg.admin_key_file,
		"first start: write the admin API key there (0600), not to stdout"),
	OPT_STR("--ready-file", "FILE", 0, A, ready, "once listening, write \"http=PORT ecmg=PORT\" there"),
	OPT_NUM("--status-every", "S", 0, A, l.cfg.status_every_s, 0, 86400,
		"log the carousel counters every S seconds (default 10, 0 = never)"),
	OPT_STR("--audit-key", "FILE", 0, A, l.audit_key, "the audit key (castellan audit keygen; sealed under "
		"--passphrase-file's\npassphrase, or plain hex): sign the audit log's head periodically"),
	OPT_NUM("--audit-checkpoint-s", "S", 0, A, l.cfg.audit_checkpoint_s, 1, 86400 * 7,
		"how often (default 600; nothing is signed while the log is quiet)"),
	OPT_STR("--audit-checkpoints", "FILE", 0, A, l.cfg.audit_checkpoint_file,
		"append each checkpoint's line to FILE too (docs/audit.md)"),
	CLI_OPT_LOG_LEVEL,
	OPT_STR("--web-root", "DIR", 0, A, l.web_root, "the web panel's files at / (default " HEADEND_WEB_ROOT "; 'off' = none)"),
	OPT_FN("--web-admin-password-file", "FILE", 0, web_pw_file,
		"panel first start: admin's password (else random, printed once)"),
	OPT_FLAG("--secure-cookies", A, l.cfg.web_secure_cookies,
		"mark the panel's session cookie Secure (the panel is behind TLS)"),
	OPT_STR("--kms-dir", "DIR", 0, A, l.cfg.kms_dir, "an operator KMS shown read-only on the panel's KMS page (no "
		"passphrase)"),
	OPT_STR("--web-operator-net", "CIDR[,CIDR...]", 0, A, l.cfg.web_operator_nets,
		"the operator's networks: they keep a way into the panel\nwhen a user is locked out by wrong "
		"passwords from elsewhere\n(default " WEB_OPERATOR_NETS_DEFAULT ")"),
	OPT_STR("--config", "FILE", 0, A, config, "read options from FILE (INI: key = value, keys are these options'\n"
		"names; the command line overrides it; docs/configuration.md)"),
	OPT_FLAG("--check-config", A, check_config, "check --config FILE (every error with its line) and exit"),
	OPT_STR("--metrics-allow", "LIST", 0, A, l.cfg.metrics_allow, "GET /metrics without an API key also from these "
		"addresses or CIDR\nprefixes (comma-separated; loopback always; else a key of scope metrics)"),
	OPT_END,
};
#undef A

static const struct opt_cmd headend_cmd = {
	.name = "headend",
	.synopsis = "--data-dir DIR --keystore FILE [--passphrase-file FILE]\n"
		    "         [--db URI | --db-file FILE] [--http ADDR:PORT] [--ecmg ADDR:PORT]\n"
		    "         [--mux HOST:PORT] [options]",
	.about = "The head-end in one process: the subscriber management system's HTTP APIs (the free\n"
		 "CAS's GET API at /api.php and the REST API at /api/v1/), the ECMG (DVB SimulCrypt\n"
		 "ECMG<=>SCS), the EMMG that feeds the MUX from the EMM carousel (changed cards first,\n"
		 "then the whole base, within the granted bandwidth) and the scheduler (subscription\n"
		 "start/expiry, key epoch rotation, EMM regeneration; no cron needed).",
	.opts = headend_opts,
	.footer = "First start creates the database and an admin user whose API key is shown once.\n"
		  "SIGINT/SIGTERM stop cleanly. SIGHUP re-reads --config FILE: log-level, emm-kbps and\n"
		  "metrics-allow change live, other changed keys are logged as needing a restart.\n",
};

static void usage(FILE *f)
{
	opt_help(f, &headend_cmd);
}

/* What SIGHUP may change live (config.h). */
static const char *const headend_live_keys[] = { "log-level", "emm-kbps", "metrics-allow", NULL };

static int headend_apply(void *ctx, const char *key, const char *value)
{
	int r = headend_apply_live(ctx, key, value);

	return r == CE_NOT_FOUND ? cli_apply_log_level(key, value) : r;
}

static int headend_main(int argc, char **argv, int check, struct cli_config_args *ca);

static int headend_check(int argc, char **argv, int mode) { return headend_main(argc, argv, mode, NULL); }

int cmd_headend(int argc, char **argv)
{
	struct cli_config_args ca;
	int r = cli_config_begin("headend", usage, headend_check, &argc, &argv, &ca);

	if (r < 0)
		r = headend_main(argc, argv, 0, &ca);
	cli_config_end(&ca);
	return r;
}

/* The keystore, for headend_launch. */
static int open_ks(void *ctx, struct keystore **ks)
{
	const struct headend_args *a = ctx;

	return cli_keystore_open("headend", a->keystore, a->l.pfile, ks);
}

/* check: 0 = run; CLI_CHECK_ONE / CLI_CHECK_ALL = parse only (config.h). */
static int headend_main(int argc, char **argv, int check, struct cli_config_args *ca)
{
	struct headend_args *a = calloc(1, sizeof(*a));
	struct headend *h = NULL;
	struct headend_stats st;
	int r, rc = 1;

	if (!a)
		return 1;
	a->l.cfg.handle_signals = true;
	a->l.cfg.status_every_s = 10;
	a->l.web_root = HEADEND_WEB_ROOT;
	a->l.search_workers = UINT32_MAX;
	if ((rc = opt_parse(&headend_cmd, a, argc, argv, 1, NULL, NULL)) != OPT_GO)
		goto out;
	rc = check == CLI_CHECK_ONE ? 0 : 1;
	if (check == CLI_CHECK_ONE)
		goto out;
	if (!a->l.cfg.data_dir || !a->keystore) {
		fprintf(stderr, "headend: --data-dir and --keystore are required\n");
		rc = 2;
		goto out;
	}
	if (check == CLI_CHECK_ALL) {
		rc = 0;
		goto out;
	}
	a->l.kms_view = kms_view_json;
	a->l.open_ks = open_ks;
	a->l.ks_ctx = a;
	if (headend_launch(&a->l, &h) != 0)
		goto out;
	if ((r = cli_config_reload_start(ca, headend_live_keys, headend_apply, h)) != 0) {
		fprintf(stderr, "headend: SIGHUP thread: %s\n", err_str(r));
		goto out;
	}
	if (cli_ready_file("headend", a->ready, "http=%u ecmg=%u\n", (unsigned)headend_http_port(h),
			   (unsigned)headend_ecmg_port(h)) != 0)
		goto out;
	if ((r = headend_run(h)) != 0) {
		fprintf(stderr, "headend: %s\n", err_str(r));
		goto out;
	}
	headend_stats(h, &st);
	fprintf(stderr,
		"headend: stopped: %" PRIu64 " HTTP requests, %" PRIu64 " ECMs, %" PRIu64 " EMMs (%" PRIu64
		" for changed cards), %" PRIu64 " card changes seen, %" PRIu64 " cycles (last %" PRIu64 " cards in %"
		PRIu64 " ms)\n",
		st.http_requests, st.ecms, st.car.emms, st.car.changed_emms, st.audit_changes, st.car.cycles,
		st.car.last_cycle_cards, st.car.last_cycle_ms);
	rc = 0;
out:
	cli_config_reload_stop(ca); /* before the head-end its callback uses */
	headend_free(h);
	headend_launch_cleanup(&a->l);
	secret_wipe(a, sizeof(*a));
	free(a);
	return rc;
}
