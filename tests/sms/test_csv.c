/*
 * test_csv.c - CSV import/export (src/sms/csv.h): the RFC 4180 reader on
 * good and bad input, a table of bad files each rejected with its line and
 * reason and the database unchanged (SHA-256 fingerprint of everything),
 * a failure while applying rolled back whole, export -> import round trips,
 * and `castellan sms import/export`. Store tests run on SQLite and on a
 * real PostgreSQL server (sms_testdb.h).
 */
#include <sys/wait.h>
#define SMS_TEST_PG_PORT 5435
#include "sms_testdb.h"

static const char HDR[] = "serial_no,name,info,access_criteria,pair,start,finish,chip_id,state,packages\r\n";

/* ---- reader ------------------------------------------------------------ */

static void test_reader_good(void **state)
{
	static const char in[] = "\xEF\xBB\xBF" "a,\"b,1\",\"say \"\"hi\"\"\"\r\n"
				 "\r\n\n"
				 "\"multi\nline\",,\"\"\n"
				 "last,no newline";
	struct csv_reader r;
	struct csv_record *rec = malloc(sizeof(*rec));
	const char *why;

	(void)state;
	csv_reader_init(&r, in, sizeof(in) - 1);
	assert_int_equal(csv_read(&r, rec, &why), 1);
	assert_int_equal(rec->n, 3);
	assert_string_equal(rec->field[0], "a");
	assert_string_equal(rec->field[1], "b,1");
	assert_string_equal(rec->field[2], "say \"hi\"");
	assert_int_equal(r.rec_line, 1);
	assert_int_equal(csv_read(&r, rec, &why), 1);
	assert_int_equal(r.rec_line, 4); /* blank lines 2 and 3 skipped */
	assert_int_equal(rec->n, 3);
	assert_string_equal(rec->field[0], "multi\nline");
	assert_string_equal(rec->field[1], "");
	assert_string_equal(rec->field[2], "");
	assert_int_equal(csv_read(&r, rec, &why), 1);
	assert_int_equal(r.rec_line, 6);
	assert_string_equal(rec->field[1], "no newline");
	assert_int_equal(csv_read(&r, rec, &why), 0);

	/* csv_quote is what the reader reads back. */
	{
		const char *f[] = { "plain", "a,b", "q\"q", " lead", "x\r\ny", "" };
		char out[256];
		size_t len = 0;

		for (size_t i = 0; i < 6; i++) {
			assert_int_equal(csv_quote(f[i], out, sizeof(out), &len), 0);
			out[len++] = i < 5 ? ',' : '\n';
		}
		assert_int_equal(len, strlen("plain,\"a,b\",\"q\"\"q\",\" lead\",\"x\r\ny\",\n"));
		csv_reader_init(&r, out, len);
		assert_int_equal(csv_read(&r, rec, &why), 1);
		assert_int_equal(rec->n, 6);
		for (size_t i = 0; i < 6; i++)
			assert_string_equal(rec->field[i], f[i]);
		len = 0;
		assert_int_equal(csv_quote("\"\"\"", out, 7, &len), CE_OVERFLOW);
	}
	free(rec);
}

struct bad_read {
	const char *in;
	size_t len; /* 0: strlen */
	int err;
	size_t line;
	const char *why;
};

static void test_reader_bad(void **state)
{
	static char longrec[CSV_RECORD_MAX + 10];
	const struct bad_read cases[] = {
		{ "a,b\nc,\"d\n", 0, CE_FORMAT, 2, "unterminated" },
		{ "a,b\nc,d\"e\n", 0, CE_FORMAT, 2, "quote inside" },
		{ "a,\"b\"x\n", 0, CE_FORMAT, 1, "after a closing quote" },
		{ "a\rb\n", 0, CE_FORMAT, 1, "CR not followed" },
		{ "a,b\n\n\nx,y\r", 0, CE_FORMAT, 4, "CR not followed" },
		{ "a,\0b\n", 5, CE_FORMAT, 1, "NUL" },
		{ "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n", 0, CE_LIMIT, 1, "more than 16" },
		{ longrec, 0, CE_LIMIT, 1, "longer than CSV_RECORD_MAX" },
	};
	struct csv_record *rec = malloc(sizeof(*rec));

	(void)state;
	memset(longrec, 'x', sizeof(longrec) - 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct csv_reader r;
		const char *why = NULL;
		int got;

		csv_reader_init(&r, cases[i].in, cases[i].len ? cases[i].len : strlen(cases[i].in));
		while ((got = csv_read(&r, rec, &why)) == 1)
			;
		if (got != cases[i].err || r.rec_line != cases[i].line || !strstr(why, cases[i].why))
			fail_msg("case %zu: got %d line %zu '%s'", i, got, r.rec_line, why);
	}
	free(rec);
}

/* ---- import: bad files ------------------------------------------------- */

struct bad_file {
	const char *csv;
	size_t line;
	const char *why;
};

static const struct bad_file bad_files[] = {
	{ "", 1, "no header" },
	{ "serial_no,nmae\r\n2100000000,x\r\n", 1, "unknown column 'nmae'" },
	{ "serial_no,name,name\r\n", 1, "given twice" },
	{ "name,info\r\nAnn,x\r\n", 1, "no serial_no" },
	{ "serial_no,name\r\n2100000009,ok\r\n2100000010\r\n", 3, "1 fields, the header has 2" },
	{ "serial_no\r\n2100000009\r\n21000x\r\n", 3, "serial_no: not 1-19" },
	{ "serial_no\r\n0\r\n", 2, "serial_no: 0" },
	{ "serial_no\r\n99999999999999999999\r\n", 2, "serial_no" },
	{ "serial_no\r\n9223372036854775808\r\n", 2, "serial_no" },
	{ "serial_no,name\r\n\"\",x\r\n", 2, "serial_no: empty" },
	{ "serial_no,access_criteria\r\n1,0000000G\r\n", 2, "access_criteria" },
	{ "serial_no,access_criteria\r\n1,123456789\r\n", 2, "access_criteria" },
	{ "serial_no,pair\r\n1,2\r\n", 2, "pair" },
	{ "serial_no,start\r\n1,-5\r\n", 2, "start" },
	{ "serial_no,finish\r\n1,123456789012\r\n", 2, "finish" },
	{ "serial_no,start,finish\r\n1,1800000000,1700000000\r\n", 2, "finish before start" },
	{ "serial_no,state\r\n1,frozen\r\n", 2, "state" },
	{ "serial_no,name\r\n1,\"bad\x01name\"\r\n", 2, "name: not UTF-8" },
	{ "serial_no,info\r\n1,\xC3\x28\r\n", 2, "info: not UTF-8" },
	{ "serial_no,chip_id\r\n1,0123456789012345678901234567890123456789012345678901234567890123456789\r\n", 2,
	  "chip_id: longer than 64" },
	{ "serial_no,packages\r\n1,40;nosuch\r\n", 2, "no package 'nosuch'" },
	{ "serial_no,packages\r\n1,999\r\n", 2, "no package '999'" },
	{ "serial_no,packages\r\n1,3;;4\r\n", 2, "packages: empty" },
	{ "serial_no\r\n2100000000\r\n5\r\n2100000000\r\n", 4, "already on line 2" },
	{ "serial_no,name\r\n1,\"open\r\n", 2, "unterminated" },
};

/* A database with something in it: card 2100000000 (packages 0, 3, 40),
 * a channel, the 'sports extra' package. */
static void seed(struct sms_store *s)
{
	static const char csv[] = "serial_no,name,info,access_criteria,pair,start,finish,chip_id,state,packages\r\n"
				  "2100000000,\"Ann, O\"\"Neil\",Lisbon,00000009,1,1700000000,1800000000,C1,active,40\r\n";
	struct csv_result res;

	assert_int_equal(sms_package_add(s, 40, "sports extra", "test"), 0);
	assert_int_equal(sms_channel_set(s, 101, "news", 0x9, "test"), 0);
	assert_int_equal(csv_import(s, csv, sizeof(csv) - 1, "test", NULL, NULL, &res), 0);
	assert_int_equal(res.added, 1);
}

static void test_import_bad_files(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	char before[65], after[65];

	seed(s);
	tdb_fingerprint(s, before);
	for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		struct csv_result res;
		int r = csv_import(s, bad_files[i].csv, strlen(bad_files[i].csv), "test", NULL, NULL, &res);

		if (r != CE_FORMAT || res.line != bad_files[i].line || !strstr(res.why, bad_files[i].why))
			fail_msg("bad file %zu: got %d line %zu '%s'", i, r, res.line, res.why);
		/* The same verdict without a database (except package names). */
		if (!strstr(bad_files[i].why, "package")) {
			assert_int_equal(csv_check(bad_files[i].csv, strlen(bad_files[i].csv), &res), CE_FORMAT);
			assert_int_equal(res.line, bad_files[i].line);
		}
	}
	tdb_fingerprint(s, after);
	assert_string_equal(before, after);
	sms_store_close(s);
}

/* A row that passes every check but the database refuses when applying
 * (a package period ending before it starts, since the card's start is
 * later than the finish the row gives): rows before it were applied
 * inside the transaction, and are rolled back with it. */
static void test_import_rollback(void **state)
{
	static const char csv[] = "serial_no,name,finish,packages\r\n"
				  "2100000001,New one,1900000000,40\r\n"
				  "2100000000,Changed,1600000000,40\r\n"
				  "2100000002,Never,1900000000,\r\n";
	struct sms_store *s = tdb_open_fresh(state);
	struct csv_result res;
	struct sms_card c;
	char before[65], after[65];

	seed(s);
	tdb_fingerprint(s, before);
	assert_int_equal(csv_import(s, csv, sizeof(csv) - 1, "test", NULL, NULL, &res), CE_RANGE);
	assert_int_equal(res.line, 3);
	assert_non_null(strstr(res.why, "refused by the database"));
	assert_int_equal(res.added, 0);
	tdb_fingerprint(s, after);
	assert_string_equal(before, after);
	assert_int_equal(sms_card_get(s, 2100000001, &c), CE_NOT_FOUND);
	assert_int_equal(sms_card_get(s, 2100000000, &c), 0);
	assert_string_equal(c.name, "Ann, O\"Neil");
	/* The store is usable afterwards (no transaction left open). */
	assert_int_equal(sms_card_set_state(s, 2100000000, SMS_CARD_BLOCKED, "test"), 0);
	sms_store_close(s);
}

/* A row that gives packages to a card with no period (no start/finish in
 * the row, none on the card) would subscribe it with 0..0, never in force:
 * refused with the line; the same packages with a period, or a row that
 * does not touch packages, pass. */
static void test_import_no_period(void **state)
{
	static const char no_period[] = "serial_no,name,access_criteria\r\n"
					"2100000005,Dora,00000000\r\n"
					"2100000006,Eve,00000003\r\n";
	static const char no_period_pk[] = "serial_no,packages\r\n"
					   "2100000007,40\r\n";
	static const char with_period[] = "serial_no,access_criteria,start,finish\r\n"
					  "2100000006,00000003,1700000000,1800000000\r\n";
	static const char rename[] = "serial_no,name\r\n"
				     "2100000006,Eve Two\r\n";
	struct sms_store *s = tdb_open_fresh(state);
	struct csv_result res;
	struct sms_card c;
	char before[65], after[65];

	seed(s);
	tdb_fingerprint(s, before);
	assert_int_equal(csv_import(s, no_period, sizeof(no_period) - 1, "test", NULL, NULL, &res), CE_FORMAT);
	assert_int_equal(res.line, 3);
	assert_non_null(strstr(res.why, "packages without a period"));
	assert_int_equal(csv_import(s, no_period_pk, sizeof(no_period_pk) - 1, "test", NULL, NULL, &res), CE_FORMAT);
	assert_int_equal(res.line, 2);
	tdb_fingerprint(s, after);
	assert_string_equal(before, after);
	assert_int_equal(csv_import(s, with_period, sizeof(with_period) - 1, "test", NULL, NULL, &res), 0);
	assert_int_equal(csv_import(s, rename, sizeof(rename) - 1, "test", NULL, NULL, &res), 0);
	assert_int_equal(sms_card_get(s, 2100000006, &c), 0);
	assert_int_equal(c.access_criteria, 3);
	assert_int_equal(c.finish, 1800000000);
	sms_store_close(s);
}

/* ---- import: semantics and round trip ---------------------------------- */

static int export_mem(void *ctx, const char *p, size_t n)
{
	char *buf = ctx;
	size_t have = strlen(buf);

	assert_true(have + n < 65536);
	memcpy(buf + have, p, n);
	buf[have + n] = '\0';
	return 0;
}

static void progress(void *ctx, const char *phase, size_t done, size_t total)
{
	int *calls = ctx;

	assert_true(done <= total);
	assert_true(strcmp(phase, "check") == 0 || strcmp(phase, "apply") == 0);
	(*calls)++;
}

static void test_import_semantics(void **state)
{
	static const char upd[] = "state,serial_no,pair,access_criteria,packages,name\r\n"
				  /* names or ids; packages < 32 merge into the mask */
				  "blocked,2100000000,,00000001,sports extra;5,\r\n"
				  "retired,2100000003,0,,,Cleo\r\n";
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_subscription subs[8];
	struct csv_result res;
	struct sms_card c;
	size_t n = 0;
	int calls = 0;

	seed(s);
	assert_int_equal(sms_card_get(s, 2100000000, &c), 0);
	assert_string_equal(c.name, "Ann, O\"Neil");
	assert_string_equal(c.chip_id, "C1");
	assert_true(c.pair);
	assert_int_equal(c.access_criteria, 0x9);
	assert_int_equal(sms_subscription_list(s, 2100000000, subs, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(subs[2].package, 40);
	assert_int_equal(subs[2].finish, 1800000000);

	assert_int_equal(csv_import(s, upd, sizeof(upd) - 1, "test", progress, &calls, &res), 0);
	assert_int_equal(res.rows, 2);
	assert_int_equal(res.added, 1);
	assert_int_equal(res.updated, 1);
	assert_true(calls >= 2);
	assert_int_equal(sms_card_get(s, 2100000000, &c), 0);
	assert_int_equal(c.state, SMS_CARD_BLOCKED);
	assert_true(c.pair);                         /* empty: kept */
	assert_string_equal(c.name, "");             /* empty text: set empty */
	assert_string_equal(c.chip_id, "C1");        /* no column: kept */
	assert_int_equal(c.access_criteria, 0x21);   /* 00000001 | package 5 */
	assert_int_equal(c.start, 1700000000);
	assert_int_equal(sms_subscription_list(s, 2100000000, subs, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(subs[2].package, 40);
	assert_int_equal(sms_card_get(s, 2100000003, &c), 0);
	assert_int_equal(c.state, SMS_CARD_RETIRED);
	assert_string_equal(c.name, "Cleo");
	assert_int_equal(c.access_criteria, 0);
	sms_store_close(s);
}

static void test_roundtrip(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_store *t;
	static char a[65536], b[65536];
	struct csv_result res;
	size_t rows = 0;
	struct backend *be = *state;

	seed(s);
	{
		struct sms_card c = { .serial = 2100000005, .state = SMS_CARD_BLOCKED, .start = 5, .finish = 9 };

		snprintf(c.name, sizeof(c.name), " spaced, \"quoted\" ");
		snprintf(c.info, sizeof(c.info), "caf\xC3\xA9 \xE2\x82\xAC");
		assert_int_equal(sms_card_add(s, &c, "test"), 0);
	}
	{
		/* Issue 12 item 6: cells a spreadsheet would run as a formula. */
		struct sms_card c = { .serial = 2100000006 };

		snprintf(c.name, sizeof(c.name), "=HYPERLINK(\"http://evil/\",\"x\")");
		snprintf(c.info, sizeof(c.info), "@SUM(1+1)");
		snprintf(c.chip_id, sizeof(c.chip_id), "+C1");
		assert_int_equal(sms_card_add(s, &c, "test"), 0);
		c.serial = 2100000007;
		snprintf(c.name, sizeof(c.name), "-2+3");
		snprintf(c.info, sizeof(c.info), "'=already escaped?");
		snprintf(c.chip_id, sizeof(c.chip_id), "'plain");
		assert_int_equal(sms_card_add(s, &c, "test"), 0);
	}
	a[0] = '\0';
	assert_int_equal(csv_export(s, export_mem, a, &rows), 0);
	assert_int_equal(rows, 4);
	assert_non_null(strstr(a, "\r\n2100000006,\"'=HYPERLINK(\"\"http://evil/\"\",\"\"x\"\")\",'@SUM(1+1),00000000,0,0,0,'+C1,"
				 "active,\r\n"));
	assert_non_null(strstr(a, "\r\n2100000007,'-2+3,''=already escaped?,00000000,0,0,0,'plain,active,\r\n"));
	/* no cell of the file starts with = + - @ */
	for (const char *p = a; *p; p++) {
		char c = p[1] == '"' ? p[2] : p[1];

		if (*p == ',' || *p == '\n')
			assert_false(c == '=' || c == '+' || c == '-' || c == '@');
	}
	assert_int_equal(strncmp(a, HDR, strlen(HDR)), 0);
	assert_non_null(strstr(a, "\r\n2100000005,\" spaced, \"\"quoted\"\" \",caf\xC3\xA9 \xE2\x82\xAC,00000000,0,5,9,,"
				 "blocked,\r\n"));
	sms_store_close(s);

	/* Into a fresh database (the same backend): the same export. */
	if (be == &sqlite_be) {
		char uri[1200];

		snprintf(uri, sizeof(uri), "%s/roundtrip.db", sqlite_dir);
		assert_int_equal(sms_store_open(uri, &t), 0);
	} else {
		t = tdb_open_fresh(state);
	}
	assert_int_equal(sms_package_add(t, 40, "sports extra", "test"), 0);
	assert_int_equal(csv_import(t, a, strlen(a), "test", NULL, NULL, &res), 0);
	assert_int_equal(res.added, 4);
	/* the neutralising quote is taken off on import */
	{
		struct sms_card c;

		assert_int_equal(sms_card_get(t, 2100000006, &c), 0);
		assert_string_equal(c.name, "=HYPERLINK(\"http://evil/\",\"x\")");
		assert_string_equal(c.info, "@SUM(1+1)");
		assert_string_equal(c.chip_id, "+C1");
		assert_int_equal(sms_card_get(t, 2100000007, &c), 0);
		assert_string_equal(c.name, "-2+3");
		assert_string_equal(c.info, "'=already escaped?");
		assert_string_equal(c.chip_id, "'plain");
	}
	b[0] = '\0';
	assert_int_equal(csv_export(t, export_mem, b, &rows), 0);
	assert_string_equal(a, b);
	/* Importing it again changes no card (idempotent). */
	assert_int_equal(csv_import(t, a, strlen(a), "test", NULL, NULL, &res), 0);
	assert_int_equal(res.updated, 4);
	b[0] = '\0';
	assert_int_equal(csv_export(t, export_mem, b, &rows), 0);
	assert_string_equal(a, b);
	sms_store_close(t);
}

/* ---- the command line -------------------------------------------------- */

static int cli(const char *db, const char *args, char *out, size_t cap)
{
	char cmd[2048];
	FILE *f;
	size_t got;
	int rc;

	snprintf(cmd, sizeof(cmd), "%s sms --db %s %s 2>&1", getenv("CASTELLAN_BIN"), db, args);
	f = popen(cmd, "r");
	assert_non_null(f);
	got = fread(out, 1, cap - 1, f);
	out[got] = '\0';
	while (fgetc(f) != EOF) /* drain: a longer answer must not end in SIGPIPE */
		;
	rc = pclose(f);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli(void **state)
{
	char db[300], csv[300], exp[300], args[1024], out[8192];
	FILE *f;
	uint8_t *back;
	size_t len;

	(void)state;
	if (!getenv("CASTELLAN_BIN"))
		skip();
	snprintf(db, sizeof(db), "%s/cli.db", sqlite_dir);
	snprintf(csv, sizeof(csv), "%s/in.csv", sqlite_dir);
	snprintf(exp, sizeof(exp), "%s/out.csv", sqlite_dir);
	assert_int_equal(cli(db, "--help", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "import FILE"));
	assert_non_null(strstr(out, "export [FILE]"));
	assert_int_equal(cli(db, "init", out, sizeof(out)), 0);
	f = fopen(csv, "w");
	assert_non_null(f);
	fprintf(f, "%s2100000000,Ann,,0000000F,1,1700000000,1800000000,C1,active,\r\n"
		   "2100000001,Bob,,,,1700000000,1900000000,,,3\r\n", HDR);
	fclose(f);
	snprintf(args, sizeof(args), "import %s", csv);
	assert_int_equal(cli(db, args, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "2 rows imported: 2 cards added, 0 updated"));
	snprintf(args, sizeof(args), "export %s", exp);
	assert_int_equal(cli(db, args, out, sizeof(out)), 0);
	back = tu_read(exp, &len);
	assert_non_null(strstr((char *)back, "2100000001,Bob,,00000008,0,1700000000,1900000000,,active,\r\n"));
	free(back);
	assert_int_equal(cli(db, "export", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "2100000000,Ann,,0000000F,1,1700000000,1800000000,C1,active,\r\n"));
	/* A bad file: its line and reason, exit 1, nothing imported. */
	f = fopen(csv, "w");
	fprintf(f, "serial_no,name\n2100000007,New\n2100000008,\"x\n");
	fclose(f);
	snprintf(args, sizeof(args), "import %s", csv);
	assert_int_equal(cli(db, args, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "line 3: unterminated quoted field; nothing was imported"));
	assert_null(strstr(out, "invalid format")); /* said once, with the line */
	assert_int_equal(cli(db, "card list", out, sizeof(out)), 0);
	assert_null(strstr(out, "2100000007"));
}

int main(void)
{
	const struct CMUnitTest pure[] = { cmocka_unit_test(test_reader_good), cmocka_unit_test(test_reader_bad) };
	const struct CMUnitTest store[] = {
		cmocka_unit_test(test_import_bad_files),
		cmocka_unit_test(test_import_rollback),
		cmocka_unit_test(test_import_no_period),
		cmocka_unit_test(test_import_semantics),
		cmocka_unit_test(test_roundtrip),
	};
	const struct CMUnitTest cli_tests[] = { cmocka_unit_test(test_cli) };
	int fails = cmocka_run_group_tests_name("csv reader", pure, NULL, NULL);

	fails += tdb_run_both("csv", store, sizeof(store) / sizeof(store[0]));
	/* The CLI on SQLite (its own temp dir). */
	snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/castellan-csvcli-XXXXXX");
	if (!mkdtemp(sqlite_dir))
		return 1;
	fails += cmocka_run_group_tests_name("castellan sms import/export", cli_tests, NULL, NULL);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", sqlite_dir);
		(void)tdb_run(cmd);
	}
	return fails;
}
