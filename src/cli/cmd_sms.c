/*
 * cmd_sms.c - `castellan sms`: the subscriber management store from the
 * command line (create/migrate the database, cards, packages,
 * subscriptions, API keys, CSV import/export). docs/sms.md and docs/csv.md
 * are the reference. Listings, reports, CSV files and keys are written by
 * sms/sms_print.c, the reconciliation by headend/reconcile_print.c; this
 * file parses and dispatches.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "sms/dburi.h"
#include "lib/util.h"
#include "headend/reconcile_print.h"
#include "sms/report.h"
#include "sms/sms_print.h"
#include "sms/store.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan sms [--db URI | --db-file FILE] <command> ...\n\n"
		"  init [--admin USER]            create or migrate the database; with --admin, create USER\n"
		"                                 and print a new API key with all scopes (shown once)\n"
		"  card add SERIAL [--chip ID] [--name NAME] [--info INFO] [--pair 0|1]\n"
		"  card list [--after SERIAL] [--limit N]\n"
		"  package add ID NAME            ID 32..65535 (0..31, the access-criteria bits, exist already)\n"
		"  package rename ID NAME         give package ID a new name (any ID, 0..31 included)\n"
		"  subscribe SERIAL --packages LIST --start UNIX --finish UNIX\n"
		"                                 LIST: package ids, comma-separated (e.g. 0,5,40)\n"
		"  key add USER [--scopes read,write,admin,metrics]\n"
		"                                 create USER if needed and print a new API key\n"
		"  import FILE                    import cards from CSV (docs/csv.md): the whole file is\n"
		"                                 checked first, then applied in one transaction\n"
		"  export [FILE]                  export every card as CSV (default: stdout)\n"
		"  blacklist add card|box ID [--reason TEXT]\n"
		"                                 tag a card (ID: serial) or box (ID: chip id) as pirated: blocked at\n"
		"                                 once, never activated, re-added or paired again\n"
		"  blacklist list                 the blacklist (kind, id, reason, when, who)\n"
		"  report NAME [--format csv|json] [--out FILE] [--at UNIX] [--month YYYY-MM] [--days 7,14,21,28]\n"
		"         [--by package|channel] [--package ID] [--channel SID] [--card SERIAL] [--from UNIX]\n"
		"         [--to UNIX] [--status active|suspended|deactivated|blacklisted]\n"
		"                                 NAME: summary, subscribers, blacklist, monthly, package-channels,\n"
		"                                 active, card, ageing, history (docs/reports.md); point-in-time\n"
		"                                 figures are read from the audit log\n"
		"  search-index [--build] [--check]\n"
		"                                 the text search index (docs/sms.md, \"Search\"): say whether it is\n"
		"                                 there and why not; --build creates what is missing (PostgreSQL:\n"
		"                                 pg_trgm if allowed, then the GIN indexes, CONCURRENTLY; SQLite:\n"
		"                                 rebuilds the FTS5 table); --check: SQLite's integrity check\n"
		"  reconcile [--at UNIX] [--format csv|json]\n"
		"                                 compare each card's last EMM (emm_seq: state, packages, period)\n"
		"                                 with the SMS at that time; print every difference; exit 1 if any\n"
		"  import-tvcas FILE [--format auto|sql|csv|tsv] [--dry-run]\n"
		"                                 the free CAS's card table (tvcas_smartcards) from a MariaDB dump\n"
		"                                 or its CSV/TSV export (NULLs included): checked whole, then one\n"
		"                                 transaction; docs/migration-from-tvcas.md\n"
		"  migrate (--from URI | --from-file F) (--to URI | --to-file F) [--overwrite]\n"
		"                                 copy every table of one store into another (SQLite <->\n"
		"                                 PostgreSQL) and compare them; refuses a non-empty target\n"
		"                                 without --overwrite (castellan sms migrate --help)\n"
		"%s\n"
		"--db URI: a SQLite file path, sqlite:PATH, postgresql://... or postgres:CONNINFO (libpq).\n"
		"--db-file FILE: the URI from FILE's first line (mode 600: a password in --db shows in ps).\n"
		"  Without either: $CASTELLAN_DB, then $CASTELLAN_SMS_DB, then ./castellan-sms.db.\n",
		cli_sms_osd_usage);
}

static int do_card(struct sms_store *s, int argc, char **argv)
{
	int r;

	if (argc >= 2 && strcmp(argv[0], "add") == 0) {
		struct sms_card c = { 0 };
		const char *chip = cli_opt(argc, argv, 0, "--chip"), *name = cli_opt(argc, argv, 0, "--name");
		const char *info = cli_opt(argc, argv, 0, "--info"), *pair = cli_opt(argc, argv, 0, "--pair");

		if (parse_u64(argv[1], INT64_MAX, &c.serial) != 0 || c.serial == 0 ||
		    (pair && strcmp(pair, "0") != 0 && strcmp(pair, "1") != 0)) {
			fprintf(stderr, "castellan sms: bad serial or --pair\n");
			return CE_ARG;
		}
		if ((chip && strlen(chip) > SMS_CHIP_ID_MAX) || (name && strlen(name) > SMS_NAME_MAX) ||
		    (info && strlen(info) > SMS_INFO_MAX))
			return CE_RANGE;
		snprintf(c.chip_id, sizeof(c.chip_id), "%s", chip ? chip : "");
		snprintf(c.name, sizeof(c.name), "%s", name ? name : "");
		snprintf(c.info, sizeof(c.info), "%s", info ? info : "");
		c.pair = pair && pair[0] == '1';
		if ((r = sms_card_add(s, &c, "cli")) == 0)
			printf("card %" PRIu64 " added\n", c.serial);
		return r;
	}
	if (argc >= 1 && strcmp(argv[0], "list") == 0) {
		const char *after = cli_opt(argc, argv, 0, "--after"), *limit = cli_opt(argc, argv, 0, "--limit");
		uint64_t a = 0, lim = 100000;

		if ((after && parse_u64(after, UINT64_MAX, &a) != 0) || (limit && parse_u64(limit, UINT64_MAX, &lim) != 0))
			return CE_ARG;
		return sms_print_cards(s, a, lim, stdout);
	}
	usage(stderr);
	return CE_ARG;
}

static int do_subscribe(struct sms_store *s, int argc, char **argv)
{
	const char *pk = cli_opt(argc, argv, 0, "--packages"), *st = cli_opt(argc, argv, 0, "--start");
	const char *fi = cli_opt(argc, argv, 0, "--finish");
	struct sms_subscription sub = { 0 };
	uint64_t v;
	char buf[1024];
	char *save = NULL;
	int r;

	if (argc < 1 || !pk || !st || !fi || parse_u64(argv[0], INT64_MAX, &sub.serial) != 0 ||
	    strlen(pk) >= sizeof(buf)) {
		usage(stderr);
		return CE_ARG;
	}
	if (parse_u64(st, INT64_MAX, &v) != 0)
		return CE_ARG;
	sub.start = (int64_t)v;
	if (parse_u64(fi, INT64_MAX, &v) != 0)
		return CE_ARG;
	sub.finish = (int64_t)v;
	snprintf(buf, sizeof(buf), "%s", pk);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (parse_u64(t, SMS_PACKAGES_MAX - 1, &v) != 0)
			return CE_ARG;
		sub.package = (uint32_t)v;
		if ((r = sms_subscribe(s, &sub, "cli")) != 0) {
			fprintf(stderr, "castellan sms: package %" PRIu32 ": %s\n", sub.package, err_str(r));
			return r;
		}
		printf("card %" PRIu64 " package %" PRIu32 " %" PRId64 "..%" PRId64 "\n", sub.serial, sub.package,
		       sub.start, sub.finish);
	}
	return 0;
}

static int do_report(struct sms_store *s, int argc, char **argv)
{
	struct sms_report_params p;
	const char *fmt = "csv", *outf = NULL;
	int r;

	if (argc < 1)
		return CE_ARG;
	sms_report_params_init(&p);
	for (int i = 1; i < argc; i += 2) {
		if (strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc) {
			fprintf(stderr, "castellan sms report: expected --NAME VALUE, got %s\n", argv[i]);
			return CE_ARG;
		}
		if (strcmp(argv[i], "--format") == 0) {
			fmt = argv[i + 1];
			if (strcmp(fmt, "csv") != 0 && strcmp(fmt, "json") != 0)
				return CE_ARG;
		} else if (strcmp(argv[i], "--out") == 0) {
			outf = argv[i + 1];
		} else if ((r = sms_report_param(&p, argv[i] + 2, argv[i + 1])) != 0) {
			fprintf(stderr, "castellan sms report: %s %s: %s\n", argv[i], argv[i + 1],
				r == CE_NOT_FOUND ? "no such option" : "bad value");
			return CE_ARG;
		}
	}
	return sms_print_report(s, argv[0], &p, strcmp(fmt, "json") == 0, outf);
}

static int do_reconcile(struct sms_store *s, int argc, char **argv, bool *differ)
{
	const char *at = cli_opt(argc, argv, 0, "--at"), *fmt = cli_opt(argc, argv, 0, "--format");
	struct reconcile_stats st;
	uint64_t t = now_wall_ms() / 1000u;
	int r;

	if ((at && parse_u64(at, (uint64_t)1 << 40, &t) != 0) || (fmt && strcmp(fmt, "csv") && strcmp(fmt, "json")))
		return CE_ARG;
	r = reconcile_print(s, (int64_t)t, fmt && strcmp(fmt, "json") == 0, stdout, &st);
	*differ = r == 0 && st.diffs > 0;
	return r;
}

static int do_blacklist(struct sms_store *s, int argc, char **argv)
{
	int r;

	if (argc >= 3 && strcmp(argv[0], "add") == 0 && (strcmp(argv[1], "card") == 0 || strcmp(argv[1], "box") == 0)) {
		const char *reason = cli_opt(argc, argv, 0, "--reason");

		r = sms_blacklist_add(s, strcmp(argv[1], "card") == 0 ? SMS_BL_CARD : SMS_BL_BOX, argv[2],
				      reason ? reason : "", "cli");
		if (r == 0)
			printf("%s %s blacklisted\n", argv[1], argv[2]);
		return r;
	}
	if (argc == 1 && strcmp(argv[0], "list") == 0)
		return sms_print_blacklist(s, stdout);
	usage(stderr);
	return CE_ARG;
}

/* search-index [--build] [--check]: exit 1 while the index is missing. */
static int do_search_index(struct sms_store *s, int argc, char **argv)
{
	return sms_print_search_index(s, cli_flag(argc, argv, 0, "--build"), cli_flag(argc, argv, 0, "--check"));
}

int cmd_sms(int argc, char **argv)
{
	const char *db = NULL, *db_file = NULL;
	struct sms_store *s = NULL;
	bool differ = false;
	int i = 1, r;

	i = cli_db_args(argc, argv, &db, &db_file);
	/* migrate names its two stores itself (--from, --to) */
	if (i < argc && strcmp(argv[i], "migrate") == 0) {
		if (db || db_file) {
			fprintf(stderr, "castellan sms migrate: give the stores as --from and --to, not --db\n");
			return 2;
		}
		return cmd_sms_migrate(argc - i, argv + i);
	}
	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (dburi_store_open("castellan sms", db, db_file, &s) != 0)
		return 1;
	argc -= i;
	argv += i;
	if (strcmp(argv[0], "init") == 0) {
		const char *admin = cli_opt(argc, argv, 0, "--admin");
		int v = 0;

		if ((r = sms_store_schema_version(s, &v)) == 0) {
			printf("%s database ready, schema version %d\n", sms_store_backend(s), v);
			if (admin)
				r = sms_print_new_apikey(s, admin, SMS_SCOPE_READ | SMS_SCOPE_WRITE | SMS_SCOPE_ADMIN);
		}
	} else if (strcmp(argv[0], "card") == 0) {
		r = do_card(s, argc - 1, argv + 1);
	} else if (strcmp(argv[0], "package") == 0 && argc >= 4 && strcmp(argv[1], "add") == 0) {
		uint64_t id;

		r = parse_u64(argv[2], SMS_PACKAGES_MAX - 1, &id) != 0 ? CE_ARG
			: sms_package_add(s, (uint32_t)id, argv[3], "cli");
		if (r == 0)
			printf("package %" PRIu64 " '%s' added\n", id, argv[3]);
		else if (r == CE_EXISTS) {
			fprintf(stderr, "castellan sms: package %" PRIu64 " exists%s: to name it, "
				"castellan sms package rename %" PRIu64 " NAME\n", id,
				id < 32 ? " (0..31, the access-criteria bits, are created with the store)" : "", id);
			sms_store_close(s);
			return 1;
		}
	} else if (strcmp(argv[0], "package") == 0 && argc == 4 && strcmp(argv[1], "rename") == 0) {
		uint64_t id;

		r = parse_u64(argv[2], SMS_PACKAGES_MAX - 1, &id) != 0 ? CE_ARG
			: sms_package_rename(s, (uint32_t)id, argv[3], "cli");
		if (r == 0)
			printf("package %" PRIu64 " renamed '%s'\n", id, argv[3]);
		else if (r == CE_NOT_FOUND) {
			fprintf(stderr, "castellan sms: package %" PRIu64 " not found: add it with "
				"castellan sms package add %" PRIu64 " NAME\n", id, id);
			sms_store_close(s);
			return 1;
		}
	} else if (strcmp(argv[0], "search-index") == 0) {
		r = do_search_index(s, argc, argv);
	} else if (strcmp(argv[0], "reconcile") == 0) {
		r = do_reconcile(s, argc - 1, argv + 1, &differ);
	} else if (strcmp(argv[0], "report") == 0) {
		r = do_report(s, argc - 1, argv + 1);
	} else if (strcmp(argv[0], "blacklist") == 0) {
		r = do_blacklist(s, argc - 1, argv + 1);
	} else if (strcmp(argv[0], "subscribe") == 0) {
		r = do_subscribe(s, argc - 1, argv + 1);
	} else if (strcmp(argv[0], "fingerprint") == 0 || strcmp(argv[0], "message") == 0) {
		r = cli_sms_osd(s, argv[0][0] == 'm', argc - 1, argv + 1);
	} else if (strcmp(argv[0], "import") == 0 && argc == 2) {
		if ((r = sms_import_csv_file(s, argv[1])) != 0) { /* it said why */
			sms_store_close(s);
			return 1;
		}
	} else if (strcmp(argv[0], "import-tvcas") == 0) {
		int rc = sms_import_tvcas(s, argc, argv); /* it said why */

		sms_store_close(s);
		return rc;
	} else if (strcmp(argv[0], "export") == 0 && argc <= 2) {
		r = sms_export_csv_file(s, argc == 2 ? argv[1] : NULL);
	} else if (strcmp(argv[0], "key") == 0 && argc >= 3 && strcmp(argv[1], "add") == 0) {
		const char *sc = cli_opt(argc, argv, 0, "--scopes");
		unsigned scopes = SMS_SCOPE_READ | SMS_SCOPE_WRITE;

		r = sc && sms_scopes_parse(sc, &scopes) != 0 ? CE_ARG : sms_print_new_apikey(s, argv[2], scopes);
	} else {
		usage(stderr);
		sms_store_close(s);
		return 2;
	}
	sms_store_close(s);
	if (r != 0) {
		fprintf(stderr, "castellan sms: %s\n", err_str(r));
		return 1;
	}
	return differ ? 1 : 0;
}
