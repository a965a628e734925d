/*
 * cmd_sms.c - `castellan sms`: the subscriber management store from the
 * command line (create/migrate the database, cards, packages,
 * subscriptions, API keys, CSV import/export). docs/sms.md and docs/csv.md
 * are the reference.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "sms/dburi.h"
#include "lib/util.h"
#include "sms/csv.h"
#include "sms/report.h"
#include "headend/reconcile.h"
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
		"         [--by package|channel] [--package ID] [--channel SID] [--card SERIAL] [--box CHIP] [--from UNIX]\n"
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

/* Value of --name in argv[i..], or NULL. */
static int parse_scopes(const char *s, unsigned *out)
{
	char buf[64];
	char *save = NULL;

	*out = 0;
	if (strlen(s) >= sizeof(buf))
		return CE_ARG;
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "read") == 0)
			*out |= SMS_SCOPE_READ;
		else if (strcmp(t, "write") == 0)
			*out |= SMS_SCOPE_WRITE;
		else if (strcmp(t, "admin") == 0)
			*out |= SMS_SCOPE_ADMIN;
		else if (strcmp(t, "metrics") == 0)
			*out |= SMS_SCOPE_METRICS;
		else
			return CE_ARG;
	}
	return *out ? 0 : CE_ARG;
}

static int key_add(struct sms_store *s, const char *user, unsigned scopes)
{
	char key[65];
	int r = sms_user_add(s, user, "cli", NULL);

	if (r != 0 && r != CE_EXISTS)
		return r;
	if ((r = sms_apikey_create(s, user, scopes, "cli", key)) != 0)
		return r;
	printf("api key for %s (store it now, it is not shown again): %s\n", user, key);
	secret_wipe(key, sizeof(key));
	return 0;
}

static int print_card(void *ctx, const struct sms_card *c)
{
	uint64_t *last = ctx;

	*last = c->serial;
	printf("%" PRIu64 "\t%s\t%s\tpair=%d\tac=%08" PRIX32 "\t%" PRId64 "..%" PRId64 "\t%s\n", c->serial,
	       c->chip_id[0] ? c->chip_id : "-", c->state == SMS_CARD_ACTIVE ? "active" :
	       c->state == SMS_CARD_BLOCKED ? "blocked" : "retired", (int)c->pair, c->access_criteria, c->start,
	       c->finish, c->name);
	return 0;
}

static int do_card(struct sms_store *s, int argc, char **argv)
{
	uint64_t v;
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
		uint64_t a = 0, last = 0, lim = 100000;
		size_t n = 0;

		if ((after && parse_u64(after, UINT64_MAX, &a) != 0) || (limit && parse_u64(limit, UINT64_MAX, &lim) != 0))
			return CE_ARG;
		/* Pages of 1000 until the limit. */
		while (lim > 0) {
			size_t page = lim > 1000 ? 1000 : (size_t)lim;

			if ((r = sms_card_list(s, a, page, print_card, &last, &n)) != 0)
				return r;
			lim -= n;
			if (n < page)
				break;
			a = last;
		}
		return 0;
	}
	(void)v;
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

/* A progress bar on stderr, only when it is a terminal. */
static void progress_bar(void *ctx, const char *phase, size_t done, size_t total)
{
	int *last = ctx;
	int pct = total ? (int)(done * 100 / total) : 100;
	char bar[41];

	if (pct == *last)
		return;
	*last = pct;
	memset(bar, ' ', 40);
	memset(bar, '#', (size_t)pct * 40 / 100);
	bar[40] = '\0';
	fprintf(stderr, "\r%-5s [%s] %3d%%", phase, bar, pct);
	if (done == total && strcmp(phase, "apply") == 0)
		fputc('\n', stderr);
	fflush(stderr);
}

static int do_import(struct sms_store *s, const char *path)
{
	struct csv_result res;
	uint8_t *buf = NULL;
	size_t len = 0;
	int last = -1, r;
	bool bar = isatty(STDERR_FILENO);

	if ((r = file_read_all(path, CSV_FILE_MAX, &buf, &len)) != 0) {
		fprintf(stderr, "castellan sms: cannot read %s: %s\n", path, err_str(r));
		return r;
	}
	bar = bar && len > (1u << 20);
	r = csv_import(s, (const char *)buf, len, "cli:import", bar ? progress_bar : NULL, &last, &res);
	free(buf);
	if (bar && r != 0)
		fputc('\n', stderr);
	if (r != 0) {
		if (res.line)
			fprintf(stderr, "castellan sms: %s line %zu: %s; nothing was imported\n", path, res.line, res.why);
		else
			fprintf(stderr, "castellan sms: %s: %s; nothing was imported\n", path,
				res.why[0] ? res.why : err_str(r));
		return r;
	}
	printf("%zu rows imported: %zu cards added, %zu updated\n", res.rows, res.added, res.updated);
	return 0;
}

static int file_out(void *ctx, const char *p, size_t n)
{
	return fwrite(p, 1, n, ctx) == n ? 0 : CE_IO;
}

static int do_export(struct sms_store *s, const char *path)
{
	FILE *f = path ? fopen(path, "wb") : stdout;
	size_t rows = 0;
	int r;

	if (!f) {
		fprintf(stderr, "castellan sms: cannot create %s\n", path);
		return CE_IO;
	}
	r = csv_export(s, file_out, f, &rows);
	if (fflush(f) != 0 && r == 0)
		r = CE_IO;
	if (path && fclose(f) != 0 && r == 0)
		r = CE_IO;
	if (r == 0 && path)
		fprintf(stderr, "%zu cards exported to %s\n", rows, path);
	return r;
}

static int file_put(void *ctx, const char *p, size_t n)
{
	return fwrite(p, 1, n, ctx) == n ? 0 : CE_IO;
}

static int do_report(struct sms_store *s, int argc, char **argv)
{
	struct sms_report_params p;
	struct sms_table *t = NULL;
	const char *fmt = "csv", *outf = NULL;
	FILE *f = stdout;
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
	if ((r = sms_report_run(s, argv[0], &p, &t)) != 0) {
		if (r == CE_ARG)
			fprintf(stderr, "castellan sms report %s: needs --package or --channel (active, ageing), --card"
				" (card), --card or --box (history)\n", argv[0]);
		return r;
	}
	if (outf && !(f = fopen(outf, "w"))) {
		sms_table_free(t);
		return CE_IO;
	}
	if (strcmp(fmt, "csv") == 0) {
		r = sms_table_csv(t, file_put, f);
	} else {
		json_t *j = sms_table_json(t);

		r = j && json_dumpf(j, f, JSON_INDENT(1)) == 0 ? 0 : CE_IO;
		fputc('\n', f);
		json_decref(j);
	}
	if (fflush(f) != 0 && r == 0)
		r = CE_IO;
	if (outf && fclose(f) != 0 && r == 0)
		r = CE_IO;
	sms_table_free(t);
	return r;
}

struct rec_out {
	bool json;
	json_t *items;
};

static int print_diff(void *ctx, const struct reconcile_diff *d)
{
	struct rec_out *o = ctx;

	if (o->json) {
		char ser[24];

		snprintf(ser, sizeof(ser), "%" PRIu64, d->serial);
		return json_array_append_new(o->items, json_pack("{s:s,s:s,s:s,s:s}", "serial_no", ser, "kind", d->kind,
								 "sms", d->sms, "cas", d->cas)) == 0 ? 0 : CE_NOMEM;
	}
	printf("%" PRIu64 ",%s,\"%s\",\"%s\"\r\n", d->serial, d->kind, d->sms, d->cas);
	return 0;
}

static int do_reconcile(struct sms_store *s, int argc, char **argv, bool *differ)
{
	const char *at = cli_opt(argc, argv, 0, "--at"), *fmt = cli_opt(argc, argv, 0, "--format");
	struct rec_out o = { .json = fmt && strcmp(fmt, "json") == 0 };
	struct reconcile_stats st;
	uint64_t t = now_wall_ms() / 1000u;
	int r;

	if ((at && parse_u64(at, (uint64_t)1 << 40, &t) != 0) || (fmt && strcmp(fmt, "csv") && strcmp(fmt, "json")))
		return CE_ARG;
	if (o.json && !(o.items = json_array()))
		return CE_NOMEM;
	if (!o.json)
		printf("serial_no,kind,sms,cas\r\n");
	r = reconcile_run(s, (int64_t)t, print_diff, &o, &st);
	if (r == 0 && o.json) {
		json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:I,s:O}", "at", (json_int_t)t, "sms_cards",
				      (json_int_t)st.sms_cards, "cas_cards", (json_int_t)st.cas_cards, "same",
				      (json_int_t)st.same, "differences", (json_int_t)st.diffs, "items", o.items);

		if (!j || json_dumpf(j, stdout, JSON_INDENT(1)) != 0)
			r = CE_IO;
		putchar('\n');
		json_decref(j);
	}
	json_decref(o.items);
	if (r == 0)
		fprintf(stderr, "reconcile at %" PRIu64 ": %zu SMS cards, %zu CAS cards, %zu the same, %zu differences\n", t,
			st.sms_cards, st.cas_cards, st.same, st.diffs);
	*differ = r == 0 && st.diffs > 0;
	return r;
}

static int print_bl(void *ctx, const struct sms_blacklist_entry *b)
{
	(void)ctx;
	printf("%s\t%s\t%" PRId64 "\t%s\t%s\n", b->kind == SMS_BL_CARD ? "card" : "box", b->id, b->at_ms, b->who,
	       b->reason);
	return 0;
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
		return sms_blacklist_list(s, 0, print_bl, NULL, NULL);
	usage(stderr);
	return CE_ARG;
}

/* search-index [--build] [--check]: exit 1 while the index is missing. */
static int do_search_index(struct sms_store *s, int argc, char **argv)
{
	bool indexed = false;
	char why[320];
	int r;

	if (cli_flag(argc, argv, 0, "--build")) {
		if ((r = sms_search_index_build(s)) != 0)
			return r;
		printf("search index built\n");
	}
	if (cli_flag(argc, argv, 0, "--check")) {
		if ((r = sms_search_index_check(s)) != 0) {
			fprintf(stderr, "castellan sms: the search index does not match the subscribers: "
				"castellan sms search-index --build\n");
			return r;
		}
		printf("search index consistent\n");
	}
	if ((r = sms_search_index_state(s, &indexed, why, sizeof(why))) != 0)
		return r;
	if (indexed) {
		printf("%s: trigram index present (%s)\n", sms_store_backend(s),
		       strcmp(sms_store_backend(s), "sqlite") == 0 ? "FTS5 subscribers_fts" : "pg_trgm GIN");
		return 0;
	}
	printf("%s: no trigram index: %s\n", sms_store_backend(s), why);
	return CE_STATE;
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
				r = key_add(s, admin, SMS_SCOPE_READ | SMS_SCOPE_WRITE | SMS_SCOPE_ADMIN);
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
		if ((r = do_import(s, argv[1])) != 0) { /* do_import said why */
			sms_store_close(s);
			return 1;
		}
	} else if (strcmp(argv[0], "import-tvcas") == 0) {
		int rc = sms_import_tvcas(s, argc, argv); /* it said why */

		sms_store_close(s);
		return rc;
	} else if (strcmp(argv[0], "export") == 0 && argc <= 2) {
		r = do_export(s, argc == 2 ? argv[1] : NULL);
	} else if (strcmp(argv[0], "key") == 0 && argc >= 3 && strcmp(argv[1], "add") == 0) {
		const char *sc = cli_opt(argc, argv, 0, "--scopes");
		unsigned scopes = SMS_SCOPE_READ | SMS_SCOPE_WRITE;

		r = sc && parse_scopes(sc, &scopes) != 0 ? CE_ARG : key_add(s, argv[2], scopes);
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
