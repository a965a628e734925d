/*
 * cmd_sms.c - `castellan sms`: the subscriber management store from the
 * command line (create/migrate the database, cards, packages,
 * subscriptions, API keys, CSV import/export). docs/sms.md and docs/csv.md
 * are the reference. Listings, reports, CSV files and keys are written by
 * sms/sms_print.c, the reconciliation by headend/reconcile_print.c; this
 * file parses (one option table per subcommand, all over struct sms_args)
 * and dispatches. fingerprint/message, import-tvcas and migrate are
 * cmd_sms_osd.c, cmd_sms_tvcas.c and cmd_sms_migrate.c.
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
#include "sms/report_cas.h"
#include "sms/sms_print.h"
#include "sms/store.h"


struct sms_args {
	const char *admin;                     /* init */
	const char *chip, *name, *info;        /* card add */
	int pair;
	uint64_t after, limit;                 /* card list */
	const char *packages;                  /* subscribe */
	uint64_t start, finish;
	const char *scopes;                    /* key add */
	const char *reason;                    /* blacklist add */
	int json;                              /* reconcile, report: --format */
	uint64_t at;                           /* reconcile (UNSET: now) */
	const char *out;                       /* report */
	struct sms_report_params rp;           /* report: the rest (sms/report.h) */
	bool build, check;                     /* search-index */
	bool channels;                         /* reconcile --channels (report_cas.h) */
};

#define UNSET UINT64_MAX
#define A struct sms_args
static const struct opt_choice fmt_choices[] = { { "csv", 0 }, { "json", 1 }, { NULL, 0 } };
static const struct opt_choice pair_choices[] = { { "0", 0 }, { "1", 1 }, { NULL, 0 } };
#define REPORT_PARAM(fn, key) \
	static int fn(void *b, const char *v) { return sms_report_param(&((A *)b)->rp, key, v); }
REPORT_PARAM(rp_at, "at")
REPORT_PARAM(rp_month, "month")
REPORT_PARAM(rp_days, "days")
REPORT_PARAM(rp_by, "by")
REPORT_PARAM(rp_package, "package")
REPORT_PARAM(rp_channel, "channel")
REPORT_PARAM(rp_card, "card")
REPORT_PARAM(rp_box, "box")
REPORT_PARAM(rp_from, "from")
REPORT_PARAM(rp_to, "to")
REPORT_PARAM(rp_status, "status")

static const struct opt init_opts[] = {
	OPT_STR("--admin", "USER", 0, A, admin, "create USER and print a new API key with all scopes (shown once)"),
	OPT_END,
};
static const struct opt card_add_opts[] = {
	OPT_STR("--chip", "ID", 0, A, chip, "the box's chip id (pairing)"),
	OPT_STR("--name", "NAME", 0, A, name, "the subscriber's name"),
	OPT_STR("--info", "INFO", 0, A, info, "free text"),
	OPT_CHOICE("--pair", "0|1", A, pair, pair_choices, "pair the card with the box (default 0)"),
	OPT_END,
};
static const struct opt card_list_opts[] = {
	OPT_NUM("--after", "SERIAL", 0, A, after, 0, UINT64_MAX, "cards after this serial"),
	OPT_NUM("--limit", "N", 0, A, limit, 0, UINT64_MAX, "at most N cards (default 100000)"),
	OPT_END,
};
static const struct opt no_opts[] = { OPT_END };
static const struct opt subscribe_opts[] = {
	OPT_STR("--packages", "LIST", OPT_REQUIRED, A, packages, "package ids, comma-separated (e.g. 0,5,40)"),
	OPT_NUM("--start", "UNIX", OPT_REQUIRED, A, start, 0, INT64_MAX, "from (UNIX time)"),
	OPT_NUM("--finish", "UNIX", OPT_REQUIRED, A, finish, 0, INT64_MAX, "until (UNIX time)"),
	OPT_END,
};
static const struct opt key_add_opts[] = {
	OPT_STR("--scopes", "LIST", 0, A, scopes, "read,write,admin,metrics (default read,write)"),
	OPT_END,
};
static const struct opt bl_add_opts[] = {
	OPT_STR("--reason", "TEXT", 0, A, reason, "why"),
	OPT_END,
};
static const struct opt report_opts[] = {
	OPT_CHOICE("--format", "csv|json", A, json, fmt_choices, "output format (default csv)"),
	OPT_STR("--out", "FILE", 0, A, out, "write there (default stdout)"),
	OPT_FN("--at", "UNIX", 0, rp_at, "point in time (read from the audit log)"),
	OPT_FN("--month", "YYYY-MM", 0, rp_month, "monthly: the month"),
	OPT_FN("--days", "7,14,21,28", 0, rp_days, "ageing: the buckets"),
	OPT_FN("--by", "package|channel", 0, rp_by, "package-channels: grouping"),
	OPT_FN("--package", "ID", 0, rp_package, "active, ageing: the package"),
	OPT_FN("--channel", "SID", 0, rp_channel, "active, ageing: the channel"),
	OPT_FN("--card", "SERIAL", 0, rp_card, "card, history: the card"),
	OPT_FN("--box", "CHIP", 0, rp_box, "history: the box (every card while it was in it)"),
	OPT_FN("--from", "UNIX", 0, rp_from, "history: from"),
	OPT_FN("--to", "UNIX", 0, rp_to, "history: to"),
	OPT_FN("--status", "active|suspended|deactivated|blacklisted", 0, rp_status, "subscribers: only this state"),
	OPT_END,
};
static const struct opt search_opts[] = {
	OPT_FLAG("--build", A, build, "create what is missing (PostgreSQL: pg_trgm if allowed, then the GIN\n"
		"indexes, CONCURRENTLY; SQLite: rebuilds the FTS5 table)"),
	OPT_FLAG("--check", A, check, "SQLite's integrity check of the index"),
	OPT_END,
};
static const struct opt reconcile_opts[] = {
	OPT_NUM("--at", "UNIX", 0, A, at, 0, (uint64_t)1 << 40, "compare at this time (default now)"),
	OPT_CHOICE("--format", "csv|json", A, json, fmt_choices, "output format (default csv)"),
	OPT_FLAG("--channels", A, channels, "the counts per channel and package instead (cas-match)"),
	OPT_END,
};
#undef A

/* One subcommand: its words ("card add"), table, arguments, handler. */
struct sms_sub {
	const char *w1, *w2;
	struct opt_cmd cmd;
	int (*run)(struct sms_store *s, struct sms_args *a, const char **args, bool *differ);
};

static int do_init(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	int v = 0, r;

	(void)args, (void)differ;
	if ((r = sms_store_schema_version(s, &v)) != 0)
		return r;
	printf("%s database ready, schema version %d\n", sms_store_backend(s), v);
	return a->admin ? sms_print_new_apikey(s, a->admin, SMS_SCOPE_READ | SMS_SCOPE_WRITE | SMS_SCOPE_ADMIN) : 0;
}

static int do_card_add(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	uint64_t serial;

	(void)differ;
	if (parse_u64(args[0], INT64_MAX, &serial) != 0 || serial == 0) {
		fprintf(stderr, "castellan sms: bad serial or --pair\n");
		return CE_ARG;
	}
	return sms_print_card_add(s, serial, a->chip, a->name, a->info, a->pair == 1);
}

static int do_card_list(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	(void)args, (void)differ;
	return sms_print_cards(s, a->after, a->limit, stdout);
}

/* package add / rename ID NAME (sms_print_package says why it failed). */
static int do_package(struct sms_store *s, bool add, const char **args)
{
	uint64_t id;

	if (parse_u64(args[0], SMS_PACKAGES_MAX - 1, &id) != 0)
		return CE_ARG;
	return sms_print_package(s, add, (uint32_t)id, args[1]);
}

static int do_package_add(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	(void)a, (void)differ;
	return do_package(s, true, args);
}

static int do_package_rename(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	(void)a, (void)differ;
	return do_package(s, false, args);
}

static int do_subscribe(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	uint64_t serial;

	(void)differ;
	if (parse_u64(args[0], INT64_MAX, &serial) != 0)
		return CE_ARG;
	return sms_print_subscribe(s, serial, a->packages, (int64_t)a->start, (int64_t)a->finish);
}

static int do_key_add(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	unsigned scopes = SMS_SCOPE_READ | SMS_SCOPE_WRITE;

	(void)differ;
	return a->scopes && sms_scopes_parse(a->scopes, &scopes) != 0 ? CE_ARG : sms_print_new_apikey(s, args[0], scopes);
}

static int do_import(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	(void)a, (void)differ;
	return sms_import_csv_file(s, args[0]) == 0 ? 0 : CE_STATE; /* it said why */
}

static int do_export(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	(void)a, (void)differ;
	return sms_export_csv_file(s, args[0]);
}

static int do_bl_add(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	int r;

	(void)differ;
	if (strcmp(args[0], "card") != 0 && strcmp(args[0], "box") != 0)
		return CE_ARG;
	r = sms_blacklist_add(s, strcmp(args[0], "card") == 0 ? SMS_BL_CARD : SMS_BL_BOX, args[1],
			      a->reason ? a->reason : "", "cli");
	if (r == 0)
		printf("%s %s blacklisted\n", args[0], args[1]);
	return r;
}

static int do_bl_list(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	(void)a, (void)args, (void)differ;
	return sms_print_blacklist(s, stdout);
}

static int do_report(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	(void)differ;
	return sms_print_report(s, args[0], &a->rp, a->json == 1, a->out);
}

/* search-index [--build] [--check]: exit 1 while the index is missing. */
static int do_search_index(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	(void)args, (void)differ;
	return sms_print_search_index(s, a->build, a->check);
}

/* reconcile: exit 1 when there is a difference. */
static int do_reconcile(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	struct reconcile_stats st;
	uint64_t t = a->at != UNSET ? a->at : now_wall_ms() / 1000u;
	int r;

	(void)args;
	if (a->channels) { /* per channel and package (report_cas.h, A.13) */
		size_t nd = 0;

		r = sms_cas_match_print(s, (int64_t)t, a->json == 1, stdout, &nd);
		*differ = r == 0 && nd > 0;
		return r;
	}
	r = reconcile_print(s, (int64_t)t, a->json == 1, stdout, &st);
	*differ = r == 0 && st.diffs > 0;
	return r;
}

/* channel set SID NAME MASK (the channels table: report_cas.h, A.13). */
static int do_channel_set(struct sms_store *s, struct sms_args *a, const char **args, bool *differ)
{
	uint64_t sid, ac;
	int r;

	(void)a, (void)differ;
	if (parse_u64(args[0], 65535, &sid) != 0 || parse_u64(args[2], UINT32_MAX, &ac) != 0)
		return CE_ARG;
	if ((r = sms_channel_set(s, (uint16_t)sid, args[1], (uint32_t)ac, "cli")) == 0)
		printf("channel %" PRIu64 " '%s' packages %08" PRIX64 "\n", sid, args[1], ac);
	return r;
}

#define SUB(a, b, nm, syn, ab, o, ar, mn, mx, fn) \
	{ a, b, { .name = nm, .synopsis = syn, .about = ab, .opts = o, .args = ar, .min_args = mn, .max_args = mx }, fn }
static const struct sms_sub subs[] = {
	SUB("init", NULL, "sms init", "[--admin USER]", "create or migrate the database", init_opts, NULL, 0, 0, do_init),
	SUB("card", "add", "sms card add", "SERIAL [--chip ID] [--name NAME] [--info INFO] [--pair 0|1]", "add a card",
		card_add_opts, "SERIAL", 1, 1, do_card_add),
	SUB("card", "list", "sms card list", "[--after SERIAL] [--limit N]", "the cards, by serial", card_list_opts, NULL,
		0, 0, do_card_list),
	SUB("package", "add", "sms package add", "ID NAME",
		"ID 32..65535 (0..31, the access-criteria bits, exist already)", no_opts, "ID NAME", 2, 2, do_package_add),
	SUB("package", "rename", "sms package rename", "ID NAME", "give package ID a new name (any ID, 0..31 included)",
		no_opts, "ID NAME", 2, 2, do_package_rename),
	SUB("channel", "set", "sms channel set", "SID NAME MASK",
		"channel (service id) SID in the packages of MASK (0x..: bit p = package p)", no_opts, "SID NAME MASK",
		3, 3, do_channel_set),
	SUB("subscribe", NULL, "sms subscribe", "SERIAL --packages LIST --start UNIX --finish UNIX",
		"subscribe card SERIAL to the packages from --start to --finish", subscribe_opts, "SERIAL", 1, 1,
		do_subscribe),
	SUB("key", "add", "sms key add", "USER [--scopes read,write,admin,metrics]",
		"create USER if needed and print a new API key", key_add_opts, "USER", 1, 1, do_key_add),
	SUB("import", NULL, "sms import", "FILE", "import cards from CSV (docs/csv.md): the whole file is checked\n"
		"first, then applied in one transaction", no_opts, "FILE", 1, 1, do_import),
	SUB("export", NULL, "sms export", "[FILE]", "export every card as CSV (default: stdout)", no_opts, "FILE", 0, 1,
		do_export),
	SUB("blacklist", "add", "sms blacklist add", "card|box ID [--reason TEXT]",
		"tag a card (ID: serial) or box (ID: chip id) as pirated: blocked at once, never\n"
		"activated, re-added or paired again", bl_add_opts, "card|box ID", 2, 2, do_bl_add),
	SUB("blacklist", "list", "sms blacklist list", NULL, "the blacklist (kind, id, reason, when, who)", no_opts, NULL, 0,
		0, do_bl_list),
	SUB("report", NULL, "sms report", "NAME [options]",
		"NAME: summary, subscribers, blacklist, monthly, package-channels, active, card, ageing,\n"
		"history, cas-channels, cas-match (docs/reports.md); point-in-time figures are read from the\n"
		"audit log", report_opts, "NAME", 1, 1,
		do_report),
	SUB("search-index", NULL, "sms search-index", "[--build] [--check]",
		"the text search index (docs/sms.md, \"Search\"): say whether it is there and why not", search_opts, NULL,
		0, 0, do_search_index),
	SUB("reconcile", NULL, "sms reconcile", "[--at UNIX] [--format csv|json] [--channels]",
		"compare each card's last EMM (emm_seq: state, packages, period) with the SMS at that\n"
		"time; print every difference; exit 1 if any; --channels: per channel and package",
		reconcile_opts, NULL, 0, 0, do_reconcile),
};
#undef SUB
#define NSUBS (sizeof(subs) / sizeof(subs[0]))
#define SMS_MAX_ARGS 3 /* the most positional arguments a subcommand takes (channel set) */

static const char sms_intro[] =
	"castellan sms [--db URI | --db-file FILE] <command> ...: the subscriber management store.\n"
	"--db URI: a SQLite file path, sqlite:PATH, postgresql://...\n"
	"or postgres:CONNINFO (libpq). --db-file FILE: the URI from FILE's first line (mode 600: a\n"
	"password in --db shows in ps). Without either: $CASTELLAN_DB, then $CASTELLAN_SMS_DB, then\n"
	"./castellan-sms.db. Commands (options below each):";

static void usage(FILE *f)
{
	const struct opt_cmd *cmds[NSUBS + 16];
	size_t n = 0;

	for (size_t i = 0; i < NSUBS; i++)
		cmds[n++] = &subs[i].cmd;
	for (size_t i = 0; cli_sms_more_cmds[i] && n + 1 < sizeof(cmds) / sizeof(cmds[0]); i++)
		cmds[n++] = cli_sms_more_cmds[i];
	cmds[n] = NULL;
	opt_help_subs(f, sms_intro, cmds, NULL);
}

static const struct sms_sub *find_sub(int argc, char **argv)
{
	for (size_t i = 0; i < NSUBS; i++)
		if (strcmp(argv[0], subs[i].w1) == 0 && (!subs[i].w2 || (argc > 1 && strcmp(argv[1], subs[i].w2) == 0)))
			return &subs[i];
	return NULL;
}

int cmd_sms(int argc, char **argv)
{
	struct sms_args a = { .limit = 100000, .at = UNSET };
	const char *db = NULL, *db_file = NULL, *args[SMS_MAX_ARGS] = { NULL };
	const struct sms_sub *sub;
	struct sms_store *s = NULL;
	bool differ = false;
	int i, n = 0, r;

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
	argc -= i;
	argv += i;
	sms_report_params_init(&a.rp);
	sub = find_sub(argc, argv);
	if (sub && sub->cmd.max_args > SMS_MAX_ARGS)
		return 1; /* a table wider than args: a bug, caught before opt_parse writes past it */
	if (sub && (r = opt_parse(&sub->cmd, &a, argc, argv, sub->w2 ? 2 : 1, args, &n)) != OPT_GO)
		return r;
	if (!sub && strcmp(argv[0], "fingerprint") != 0 && strcmp(argv[0], "message") != 0 &&
	    strcmp(argv[0], "copy-control") != 0 && strcmp(argv[0], "import-tvcas") != 0) {
		usage(stderr);
		return 2;
	}
	if (dburi_store_open("castellan sms", db, db_file, &s) != 0)
		return 1;
	if (strcmp(argv[0], "import-tvcas") == 0) {
		r = sms_import_tvcas(s, argc, argv); /* an exit status; it said why */
		sms_store_close(s);
		return r;
	}
	if (sub)
		r = sub->run(s, &a, args, &differ);
	else if (strcmp(argv[0], "copy-control") == 0)
		r = cli_sms_usage(s, argc - 1, argv + 1); /* cmd_sms_usage.c */
	else
		r = cli_sms_osd(s, argv[0][0] == 'm', argc - 1, argv + 1);
	sms_store_close(s);
	if (r == CE_STATE && sub && (sub->run == do_import || sub->run == do_package_add || sub->run == do_package_rename))
		return 1; /* said already */
	if (r != 0) {
		fprintf(stderr, "castellan sms: %s\n", err_str(r));
		return 1;
	}
	return differ ? 1 : 0;
}
