/*
 * cmd_headend.c - `castellan headend`: the SMS (GET API + REST), the ECMG,
 * the EMMG with its EMM carousel, and the scheduler in one process
 * (src/headend/headend.h). docs/headend.md is the operator's page.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "lib/config.h"
#include "sms/dburi.h"
#include "cas/keys.h"
#include "headend/headend.h"
#include "kms/view.h"
#include "lib/log.h"
#include "lib/netacl.h"
#include "lib/util.h"
#include "sms/http.h"
#include "web/auth.h"

#ifndef CASTELLAN_SOURCE_DIR
#define CASTELLAN_SOURCE_DIR "."
#endif
#ifdef CASTELLAN_WEB_ROOT
#define HEADEND_WEB_ROOT CASTELLAN_WEB_ROOT /* meson -Dweb_root (the package) */
#else
#define HEADEND_WEB_ROOT CASTELLAN_SOURCE_DIR "/web"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan headend --data-dir DIR --keystore FILE [--passphrase-file FILE]\n"
		"         [--db URI | --db-file FILE] [--http ADDR:PORT] [--ecmg ADDR:PORT]\n"
		"         [--mux HOST:PORT] [options]\n\n"
		"The head-end in one process: the subscriber management system's HTTP APIs (the free\n"
		"CAS's GET API at /api.php and the REST API at /api/v1/), the ECMG (DVB SimulCrypt\n"
		"ECMG<=>SCS), the EMMG that feeds the MUX from the EMM carousel (changed cards first,\n"
		"then the whole base, within the granted bandwidth) and the scheduler (subscription\n"
		"start/expiry, key epoch rotation, EMM regeneration; no cron needed).\n\n"
		"  --data-dir DIR         state: sms.db (SQLite store, also the EMM sequence numbers)\n"
		"  --keystore FILE        head-end keystore (castellan keys init)\n"
		"  --passphrase-file FILE its passphrase (else $" KEYSTORE_PASSPHRASE_ENV ")\n"
		"  --db URI               store: sqlite:PATH (default DIR/sms.db) or postgresql://...\n"
		"  --db-file FILE         the store URI from FILE's first line (FILE mode 600; keeps a\n"
		"                         password out of ps); else $CASTELLAN_DB, then the default\n"
		"  --http ADDR:PORT       SMS HTTP APIs (default " HEADEND_DEFAULT_HTTP "; 'off' = none)\n"
		"  --ecmg ADDR:PORT       ECMG listener (default " HEADEND_DEFAULT_ECMG "; 'off' = none)\n"
		"  --allow CIDR[,CIDR...] scramblers (SCS) allowed on the ECMG listener; others are closed\n"
		"                         before any message (default: anyone who can reach --ecmg)\n"
		"  --mux HOST:PORT        the MUX to send EMMs to (castellan scramble --mux-listen; 'off' = none:\n"
		"                         the carousel runs idle, the scheduler runs; also no EMMG generator)\n"
		"  --emm-kbps N           EMM bandwidth asked of the MUX (default %u)\n"
		"  --client-id ID         EMMG client_id (default CA_system_id << 16 | 1)\n"
		"  --data-id N            EMMG data_id (default 1)\n"
		"  --udp                  send data_provision over UDP\n"
		"  --no-group-emms        one unique EMM section per card (default: cards packed in group EMMs)\n"
		"  --http-threads N       HTTP loops in all, each with its own store connection (default 1, max %u)\n"
		"  --search-workers N     REST text searches run at once on threads of their own, off the HTTP\n"
		"                         loops (default 2, max 16; 0 = on the HTTP loops); more wait, up to 8\n"
		"  --search-deadline-ms MS  a search stops after MS (default 5000): 503 search_timeout\n"
		"  --vendor-keys FILE     a vendor's opened key file (kms vendor open --out): cards whose chip id\n"
		"                         is in it get vendor EMMs (K_v(chip)), the others K_card EMMs\n"
		"  --admin-key-file FILE  first start: write the admin API key there (0600), not to stdout\n"
		"  --ready-file FILE      once listening, write \"http=PORT ecmg=PORT\" there\n"
		"  --status-every S       log the carousel counters every S seconds (default 10, 0 = never)\n"
		"  --audit-key FILE       the audit key (castellan audit keygen; sealed under --passphrase-file's\n"
		"                         passphrase, or plain hex): sign the audit log's head periodically\n"
		"  --audit-checkpoint-s S how often (default 600; nothing is signed while the log is quiet)\n"
		"  --audit-checkpoints FILE  append each checkpoint's line to FILE too (docs/audit.md)\n"
		"  --log-level LEVEL      error|warn|info|debug\n"
		"  --web-root DIR         the web panel's files at / (default " HEADEND_WEB_ROOT "; 'off' = none)\n"
		"  --web-admin-password-file FILE  panel first start: admin's password (else random, printed once)\n"
		"  --secure-cookies       mark the panel's session cookie Secure (the panel is behind TLS)\n"
		"  --kms-dir DIR          an operator KMS shown read-only on the panel's KMS page (no passphrase)\n"
		"  --web-operator-net CIDR[,CIDR...]  the operator's networks: they keep a way into the panel\n"
		"                         when a user is locked out by wrong passwords from elsewhere\n"
		"                         (default 127.0.0.0/8,::1/128)\n"
		"  --config FILE          read options from FILE (INI: key = value, keys are these options'\n"
		"                         names; the command line overrides it; docs/configuration.md)\n"
		"  --check-config         check --config FILE (every error with its line) and exit\n"
		"  --metrics-allow LIST   GET /metrics without an API key also from these addresses or CIDR\n"
		"                         prefixes (comma-separated; loopback always; else a key of scope metrics)\n"
		"First start creates the database and an admin user whose API key is shown once.\n"
		"SIGINT/SIGTERM stop cleanly. SIGHUP re-reads --config FILE: log-level, emm-kbps and\n"
		"metrics-allow change live, other changed keys are logged as needing a restart.\n",
		HEADEND_DEFAULT_EMM_KBPS, (unsigned)SMS_HTTP_THREADS_MAX);
}

/* What SIGHUP may change live (config.h). */
static const char *const headend_live_keys[] = { "log-level", "emm-kbps", "metrics-allow", NULL };

static int headend_apply(void *ctx, const char *key, const char *value)
{
	uint64_t v;
	enum log_level l;

	if (strcmp(key, "metrics-allow") == 0) /* removed from the file: loopback only */
		return headend_set_metrics_allow(ctx, value);
	if (!value)
		return CE_UNSUPPORTED; /* removed from the file: the value stays */
	if (strcmp(key, "log-level") == 0) {
		if (log_level_parse(value, &l) != 0)
			return CE_ARG;
		log_set_level(l);
		return 0;
	}
	if (strcmp(key, "emm-kbps") == 0) {
		if (parse_u64(value, 65535, &v) != 0 || v == 0)
			return CE_ARG;
		return headend_set_emm_kbps(ctx, (uint16_t)v);
	}
	return CE_ARG;
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

/* check: 0 = run; CLI_CHECK_ONE / CLI_CHECK_ALL = parse only (config.h). */
static int headend_main(int argc, char **argv, int check, struct cli_config_args *ca)
{
	struct headend_config cfg;
	const char *ks_path = NULL, *pfile = NULL, *ready = NULL, *db = NULL, *db_file = NULL, *audit_key = NULL;
	uint8_t audit_priv[32];
	struct dburi uri = {0};
	struct keystore *ks = NULL;
	struct headend *h = NULL;
	struct headend_stats st;
	char *pass = NULL;
	const char *web_root = HEADEND_WEB_ROOT;
	char web_pw[300] = "";
	uint64_t v;
	int r, rc = 1;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.handle_signals = true;
	cfg.status_every_s = 10;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--udp") == 0) {
			cfg.emm_udp = true;
			continue;
		}
		if (strcmp(o, "--no-group-emms") == 0) {
			cfg.no_group_emms = true;
			continue;
		}
		if (strcmp(o, "--secure-cookies") == 0) {
			cfg.web_secure_cookies = true;
			continue;
		}
		if (!val) {
			fprintf(stderr, "headend: %s needs a value (or is unknown)\n", o);
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(o, "--data-dir") == 0) {
			cfg.data_dir = val;
		} else if (strcmp(o, "--keystore") == 0) {
			ks_path = val;
		} else if (strcmp(o, "--passphrase-file") == 0) {
			pfile = val;
		} else if (strcmp(o, "--db") == 0) {
			db = val;
		} else if (strcmp(o, "--db-file") == 0) {
			db_file = val;
		} else if (strcmp(o, "--http") == 0) {
			cfg.http_addr = strcmp(val, "off") == 0 ? "" : val;
		} else if (strcmp(o, "--ecmg") == 0) {
			cfg.ecmg_addr = strcmp(val, "off") == 0 ? "" : val;
		} else if (strcmp(o, "--allow") == 0) {
			struct netacl acl;

			if (netacl_parse(val, &acl) != 0) {
				fprintf(stderr, "headend: bad --allow '%s' (CIDR[,CIDR...], e.g. 10.1.0.0/24,192.0.2.7)\n",
					val);
				return 2;
			}
			cfg.ecmg_allow = val;
		} else if (strcmp(o, "--mux") == 0) {
			cfg.mux_addr = strcmp(val, "off") == 0 ? "" : val;
		} else if (strcmp(o, "--emm-kbps") == 0) {
			if (cli_u64("headend", o, val, 65535, &v) != 0 || v == 0)
				return 2;
			cfg.emm_kbps = (uint16_t)v;
		} else if (strcmp(o, "--client-id") == 0) {
			if (cli_u64("headend", o, val, UINT32_MAX, &v) != 0)
				return 2;
			cfg.client_id = (uint32_t)v;
		} else if (strcmp(o, "--data-id") == 0) {
			if (cli_u64("headend", o, val, 65535, &v) != 0)
				return 2;
			cfg.data_id = (uint16_t)v;
		} else if (strcmp(o, "--admin-key-file") == 0) {
			cfg.admin_key_file = val;
		} else if (strcmp(o, "--web-root") == 0) {
			web_root = strcmp(val, "off") == 0 ? NULL : val;
		} else if (strcmp(o, "--kms-dir") == 0) {
			cfg.kms_dir = val;
			cfg.kms_view = kms_view_json;
		} else if (strcmp(o, "--web-operator-net") == 0) {
			cfg.web_operator_nets = val;
		} else if (strcmp(o, "--web-admin-password-file") == 0) {
			uint8_t *buf = NULL;
			size_t n = 0, k = 0;

			if (file_read_all(val, 4096, &buf, &n) != 0) {
				fprintf(stderr, "headend: cannot read %s\n", val);
				return 2;
			}
			while (k < n && k + 1 < sizeof(web_pw) && buf[k] != '\n' && buf[k] != '\r')
				k++;
			memcpy(web_pw, buf, k); /* the first line */
			web_pw[k] = '\0';
			secret_free(buf, n);
			if (k < WEB_PASSWORD_MIN || k > WEB_PASSWORD_MAX) {
				fprintf(stderr, "headend: %s: the panel password (its first line) must be %d to %d "
					"bytes, it has %zu\n", val, WEB_PASSWORD_MIN, WEB_PASSWORD_MAX, k);
				secret_wipe(web_pw, sizeof(web_pw));
				return 2;
			}
			cfg.web_admin_password = web_pw;
		} else if (strcmp(o, "--ready-file") == 0) {
			ready = val;
		} else if (strcmp(o, "--http-threads") == 0) {
			if (cli_u64("headend", o, val, SMS_HTTP_THREADS_MAX, &v) != 0)
				return 2;
			if (v == 0) {
				fprintf(stderr, "headend: --http-threads: 1..%u\n", SMS_HTTP_THREADS_MAX);
				return 2;
			}
			cfg.http_threads = (unsigned)v;
		} else if (strcmp(o, "--search-workers") == 0) {
			if (cli_u64("headend", o, val, SMS_SEARCH_WORKERS_MAX, &v) != 0)
				return 2;
			cfg.search_workers = (unsigned)v;
			cfg.search_on_loop = v == 0;
		} else if (strcmp(o, "--search-deadline-ms") == 0) {
			if (cli_u64("headend", o, val, 600000, &v) != 0)
				return 2;
			if (v == 0) {
				fprintf(stderr, "headend: --search-deadline-ms: 1..600000\n");
				return 2;
			}
			cfg.search_deadline_ms = (unsigned)v;
		} else if (strcmp(o, "--metrics-allow") == 0) {
			cfg.metrics_allow = val;
		} else if (strcmp(o, "--vendor-keys") == 0) {
			cfg.vendor_keys = val;
		} else if (strcmp(o, "--audit-key") == 0) {
			audit_key = val;
		} else if (strcmp(o, "--audit-checkpoints") == 0) {
			cfg.audit_checkpoint_file = val;
		} else if (strcmp(o, "--audit-checkpoint-s") == 0) {
			if (cli_u64("headend", o, val, 86400 * 7, &v) != 0 || v == 0)
				return 2;
			cfg.audit_checkpoint_s = (uint32_t)v;
		} else if (strcmp(o, "--status-every") == 0) {
			if (cli_u64("headend", o, val, 86400, &v) != 0)
				return 2;
			cfg.status_every_s = (uint32_t)v;
		} else if (strcmp(o, "--log-level") == 0) {
			enum log_level l;

			if (log_level_parse(val, &l) != 0) {
				fprintf(stderr, "headend: bad --log-level '%s'\n", val);
				return 2;
			}
			log_set_level(l);
		} else {
			fprintf(stderr, "headend: unknown option '%s'\n", o);
			usage(stderr);
			return 2;
		}
	}
	if (check == CLI_CHECK_ONE) {
		secret_wipe(web_pw, sizeof(web_pw));
		return 0;
	}
	if (!cfg.data_dir || !ks_path) {
		fprintf(stderr, "headend: --data-dir and --keystore are required\n");
		return 2;
	}
	if (check == CLI_CHECK_ALL) {
		secret_wipe(web_pw, sizeof(web_pw));
		return 0;
	}
	/* NULL default: headend_new falls back to sqlite:DIR/sms.db itself. */
	if (dburi_resolve("headend", db, db_file, NULL, &uri) != 0)
		goto out;
	cfg.db_uri = uri.uri[0] ? uri.uri : NULL;
	if ((r = passphrase_get(pfile, &pass)) != 0) {
		char pwhy[600];

		fprintf(stderr, "headend: passphrase: %s (give --passphrase-file or set $%s)\n",
			passphrase_why(pfile, r, pwhy, sizeof(pwhy)),
			KEYSTORE_PASSPHRASE_ENV);
		goto out;
	}
	r = keystore_load(ks_path, pass, &ks);
	secret_free(pass, strlen(pass));
	if (r != 0) {
		fprintf(stderr, "headend: cannot open keystore %s: %s\n", ks_path, err_str(r));
		goto out;
	}
	cfg.ks = ks;
	cfg.web_root = web_root;
	if (audit_key) {
		if ((r = audit_key_load(audit_key, pfile, audit_priv)) != 0) {
			fprintf(stderr, "headend: audit key %s: %s\n", audit_key, err_str(r));
			goto out;
		}
		cfg.audit_key = audit_priv;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((r = headend_new(&cfg, &h)) != 0) {
		fprintf(stderr, "headend: %s\n", err_str(r));
		goto out;
	}
	if ((r = cli_config_reload_start(ca, headend_live_keys, headend_apply, h)) != 0) {
		fprintf(stderr, "headend: SIGHUP thread: %s\n", err_str(r));
		goto out;
	}
	if (ready) {
		char line[64];
		int n = snprintf(line, sizeof(line), "http=%u ecmg=%u\n", (unsigned)headend_http_port(h),
			(unsigned)headend_ecmg_port(h));

		if ((r = file_write_atomic(ready, line, (size_t)n, 0644)) != 0) {
			fprintf(stderr, "headend: %s: %s\n", ready, err_str(r));
			goto out;
		}
	}
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
	keystore_free(ks);
	secret_wipe(web_pw, sizeof(web_pw));
	secret_wipe(audit_priv, sizeof(audit_priv));
	dburi_cleanup(&uri);
	return rc;
}
