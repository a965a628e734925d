/*
 * test_tvcas.c - `castellan sms import-tvcas` and its reader (sms/tvcas.h):
 * the free CAS's card table as a dump, a CSV and a TSV export
 * (tests/data/tvcas/, the same four cards) reads to the same cards, NULLs
 * as documented; a table of bad inputs, each refused with its line; then
 * the command on a store: cards, packages from the mask, pairing, period,
 * state; a second run changes instead of adding; a bad or duplicated file
 * and --dry-run write nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "testutil.h"
#include "sms/tvcas.h"

struct got {
	size_t n;
	struct tvcas_card c[8];
};

static int collect(void *ctx, const struct tvcas_card *c)
{
	struct got *g = ctx;

	if (g->n >= 8)
		return CE_LIMIT;
	memcpy(&g->c[g->n], c, sizeof(*c));
	g->c[g->n].line = 0; /* lines differ between the forms */
	g->n++;
	return 0;
}

static void read_file(const char *name, enum tvcas_format fmt, struct got *g)
{
	size_t len = 0, rows = 0, line = 0;
	uint8_t *buf = tu_read(tu_testdata(name), &len);
	char why[200];
	int r;

	assert_non_null(buf);
	memset(g, 0, sizeof(*g));
	r = tvcas_parse(buf, len, fmt, collect, g, &rows, &line, why, sizeof(why));
	if (r != 0)
		fail_msg("%s: line %zu: %s", name, line, why);
	assert_int_equal(rows, 4);
	free(buf);
}

static void test_three_forms(void **state)
{
	static struct got sql, csv, tsv, auto_csv;

	(void)state;
	read_file("tvcas/smartcards-dump.sql", TVCAS_AUTO, &sql);
	read_file("tvcas/smartcards.csv", TVCAS_CSV, &csv);
	read_file("tvcas/smartcards.csv", TVCAS_AUTO, &auto_csv);
	read_file("tvcas/smartcards.tsv", TVCAS_AUTO, &tsv);
	assert_int_equal(sql.n, 4);
	for (size_t i = 0; i < 4; i++) {
		if (memcmp(&sql.c[i], &csv.c[i], offsetof(struct tvcas_card, info)) != 0 ||
		    strcmp(sql.c[i].info, csv.c[i].info) != 0 ||
		    memcmp(&sql.c[i], &tsv.c[i], offsetof(struct tvcas_card, info)) != 0 ||
		    strcmp(sql.c[i].info, tsv.c[i].info) != 0 ||
		    memcmp(&csv.c[i], &auto_csv.c[i], offsetof(struct tvcas_card, info)) != 0)
			fail_msg("card %zu (%llu) differs between the forms: '%s' '%s' '%s'", i,
				 (unsigned long long)sql.c[i].serial, sql.c[i].info, csv.c[i].info, tsv.c[i].info);
	}
	/* values as the free CAS meant them */
	assert_int_equal(sql.c[0].serial, 2100000010);
	assert_string_equal(sql.c[0].name, "Anna Kowalska");
	assert_string_equal(sql.c[0].info, "Krak\xc3\xb3w, ul. D\xc5\x82uga 5/3");
	assert_int_equal(sql.c[0].access_criteria, 5);
	assert_true(sql.c[0].pair);
	assert_true(sql.c[0].has_start && sql.c[0].has_finish);
	assert_int_equal(sql.c[0].finish, 1900000000);
	assert_false(sql.c[0].disabled);
	assert_string_equal(sql.c[1].name, "\xc3\x96mer \"\xc3\x96\" O'Neil");
	assert_string_equal(sql.c[1].info, "line one line two tabbed"); /* breaks became spaces */
	assert_true(sql.c[1].cleaned);
	assert_int_equal(sql.c[1].access_criteria, 0x8000000F);
	assert_true(sql.c[1].disabled); /* status 0 */
	/* NULLs: name, info "", mask 0, pair 0, no period, status enabled */
	assert_string_equal(sql.c[2].name, "");
	assert_string_equal(sql.c[2].info, "");
	assert_int_equal(sql.c[2].access_criteria, 0);
	assert_false(sql.c[2].pair);
	assert_false(sql.c[2].has_start);
	assert_false(sql.c[2].has_finish);
	assert_false(sql.c[2].disabled);
	assert_string_equal(sql.c[3].name, "Back\\slash; semi");
	assert_string_equal(sql.c[3].info, "50%\\_off"); /* MySQL keeps \ before _ */
	assert_int_equal(sql.c[3].access_criteria, 0xFFFFFFFF);
	assert_true(sql.c[3].has_start);
	assert_false(sql.c[3].has_finish);
}

#define HDR "serial_no,name,info,access_criteria,pair,start,finish,status\n"
#define INS "INSERT INTO `tvcas_smartcards` (`serial_no`,`name`,`access_criteria`) VALUES "

static void test_bad_cases(void **state)
{
	static const struct {
		const char *in;
		enum tvcas_format fmt;
		int err;
		size_t line;
	} bad[] = {
		{ HDR "0,a,,00000000,0,1,2,1\n", TVCAS_CSV, CE_RANGE, 2 },		    /* serial 0 */
		{ HDR "9223372036854775808,a,,00000000,0,1,2,1\n", TVCAS_CSV, CE_RANGE, 2 }, /* past 2^63-1 */
		{ HDR "21x,a,,00000000,0,1,2,1\n", TVCAS_CSV, CE_RANGE, 2 },
		{ HDR "NULL,a,,00000000,0,1,2,1\n", TVCAS_CSV, CE_RANGE, 2 },		    /* serial NULL */
		{ HDR "1,a,,0000000G,0,1,2,1\n", TVCAS_CSV, CE_RANGE, 2 },		    /* not hex */
		{ HDR "1,a,,0000001,0,1,2,1\n", TVCAS_CSV, CE_RANGE, 2 },		    /* 7 digits */
		{ HDR "1,a,,00000000,2,1,2,1\n", TVCAS_CSV, CE_RANGE, 2 },		    /* pair 2 */
		{ HDR "1,a,,00000000,0,-1,2,1\n", TVCAS_CSV, CE_RANGE, 2 },		    /* start < 0 */
		{ HDR "1,a,,00000000,0,5,2,1\n", TVCAS_CSV, CE_RANGE, 2 },		    /* finish < start */
		{ HDR "1,a,,00000000,0,1,123456789012,1\n", TVCAS_CSV, CE_RANGE, 2 },	    /* 12 digits */
		{ HDR "1,a,,00000000,0,1,2,x\n", TVCAS_CSV, CE_RANGE, 2 },		    /* status */
		{ HDR "1,\"a\x01\",,00000000,0,1,2,1\n", TVCAS_CSV, CE_RANGE, 2 },	    /* control byte */
		{ HDR "1,\"\xff\",,00000000,0,1,2,1\n", TVCAS_CSV, CE_RANGE, 2 },	    /* not UTF-8 */
		{ HDR "1,\"open,,00000000,0,1,2,1\n", TVCAS_CSV, CE_FORMAT, 2 },	    /* quote not closed */
		{ HDR "1,\"a\"b,,00000000,0,1,2,1\n", TVCAS_CSV, CE_FORMAT, 2 },	    /* text after a quote */
		{ "name,info\nx,y\n", TVCAS_CSV, CE_FORMAT, 1 },			    /* no serial_no */
		{ HDR "2,a,,00000000,0,1,2,1\n3,a,,00000000\n", TVCAS_CSV, CE_FORMAT, 3 },  /* short row */
		{ "serial_no\tname\n1\ta\\", TVCAS_TSV, CE_FORMAT, 2 },		    /* ends in \ */
		{ "serial_no\tname\n1\tab\\N\n", TVCAS_TSV, CE_FORMAT, 2 },		    /* \N inside */
		{ INS "(1,'a','00000000'),(2,'b','0000000Z');", TVCAS_SQL, CE_RANGE, 1 },
		{ INS "(1,'a','00000000')\n,(2,'b');", TVCAS_SQL, CE_FORMAT, 2 },		    /* 2 values of 3 */
		{ INS "(1,'a','00000000'", TVCAS_SQL, CE_FORMAT, 1 },			    /* row not closed */
		{ INS "(1,'a,'00000000');", TVCAS_SQL, CE_FORMAT, 1 },			    /* quote runs on */
		{ INS "(1,'a',00000000x00000000000000000000000000000000000000000000000000000000000);", TVCAS_SQL,
		  CE_LIMIT, 1 },
		{ "INSERT INTO `tvcas_smartcards` (`name`) VALUES ('a');", TVCAS_SQL, CE_FORMAT, 1 },
		{ "/* never closed", TVCAS_SQL, CE_FORMAT, 1 },
		{ "CREATE TABLE `other` (`a` int);\nINSERT INTO `other` VALUES (1);\n", TVCAS_SQL, CE_FORMAT, 0 },
		{ "INSERT INTO `tvcas_smartcards` VALUES (1,2100000000,'a');", TVCAS_SQL, CE_FORMAT, 1 }, /* 3 of 18 */
	};
	char why[200];
	size_t rows, line;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = tvcas_parse((const uint8_t *)bad[i].in, strlen(bad[i].in), bad[i].fmt, NULL, NULL, &rows, &line,
				    why, sizeof(why));

		if (r != bad[i].err || line != bad[i].line || !why[0])
			fail_msg("case %zu: got %d at line %zu (%s), want %d at line %zu", i, r, line, why, bad[i].err,
				 bad[i].line);
	}
	/* a value over the bound */
	{
		size_t n = strlen(HDR) + TVCAS_VALUE_MAX + 64;
		char *big = malloc(n);
		int k;

		assert_non_null(big);
		k = snprintf(big, n, HDR "1,a,");
		memset(big + k, 'x', TVCAS_VALUE_MAX + 1);
		snprintf(big + k + TVCAS_VALUE_MAX + 1, 40, ",00000000,0,1,2,1\n");
		assert_int_equal(tvcas_parse((const uint8_t *)big, strlen(big), TVCAS_CSV, NULL, NULL, &rows, &line, why,
					     sizeof(why)), CE_LIMIT);
		free(big);
	}
	/* good edge cases: a db.`table` name, INSERT IGNORE, a quoted NULL is text,
	 * empty lines, CRLF */
	{
		static const char *const good[] = {
			"INSERT IGNORE INTO tvcas.`tvcas_smartcards` (`serial_no`,`name`) VALUES (5,'NULL');",
			HDR "\r\n5,\"NULL\",,00000000,0,1,2,1\r\n\r\n",
		};
		struct got g;

		for (size_t i = 0; i < 2; i++) {
			memset(&g, 0, sizeof(g));
			assert_int_equal(tvcas_parse((const uint8_t *)good[i], strlen(good[i]), TVCAS_AUTO, collect, &g,
						     &rows, &line, why, sizeof(why)), 0);
			assert_int_equal(g.n, 1);
			assert_int_equal(g.c[0].serial, 5);
			assert_string_equal(g.c[0].name, "NULL");
		}
	}
}

static int run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	FILE *p;
	size_t n = 0;
	int st, k = snprintf(cmd, sizeof(cmd), "'%s' ", getenv("CASTELLAN_BIN"));

	va_start(ap, fmt);
	vsnprintf(cmd + k, sizeof(cmd) - (size_t)k, fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (n + 1 < cap) {
		size_t got = fread(out + n, 1, cap - 1 - n, p);

		if (got == 0)
			break;
		n += got;
	}
	out[n] = '\0';
	while (fgetc(p) != EOF) /* the rest unread: the command must not die of SIGPIPE */
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_import(void **state)
{
	char dir[] = "/tmp/castellan-tvcas-XXXXXX", db[128], bad[160], out[8192];
	struct sms_store *s;
	struct sms_card c;
	struct sms_subscription subs[40];
	size_t n = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/sms.db", dir);
	/* --dry-run: read and checked, nothing written */
	assert_int_equal(run(out, sizeof(out), "sms --db '%s' import-tvcas '%s' --dry-run", db,
			     tu_testdata("tvcas/smartcards-dump.sql")), 0);
	assert_non_null(strstr(out, "4 cards read and checked"));
	assert_int_equal(sms_store_open(db, &s), 0);
	assert_int_equal(sms_card_get(s, 2100000010, &c), CE_NOT_FOUND);
	sms_store_close(s);
	/* the import, with a warning per row without a period */
	assert_int_equal(run(out, sizeof(out), "sms --db '%s' import-tvcas '%s'", db,
			     tu_testdata("tvcas/smartcards-dump.sql")), 0);
	assert_non_null(strstr(out, "4 added, 0 changed"));
	assert_non_null(strstr(out, "card 2100000012 has no start and finish (NULL)"));
	assert_int_equal(sms_store_open(db, &s), 0);
	assert_int_equal(sms_card_get(s, 2100000010, &c), 0);
	assert_string_equal(c.name, "Anna Kowalska");
	assert_true(c.pair);
	assert_int_equal(c.state, SMS_CARD_ACTIVE);
	assert_int_equal(c.access_criteria, 5);
	assert_int_equal(sms_subscription_list(s, 2100000010, subs, 40, &n), 0);
	assert_int_equal(n, 2); /* packages 0 and 2, with the card's period */
	assert_int_equal(subs[1].package, 2);
	assert_int_equal(subs[1].start, 1700000000);
	assert_int_equal(subs[1].finish, 1900000000);
	assert_int_equal(sms_card_get(s, 2100000011, &c), 0);
	assert_int_equal(c.state, SMS_CARD_BLOCKED);
	assert_int_equal(c.access_criteria, 0x8000000F);
	assert_int_equal(sms_card_get(s, 2100000013, &c), 0); /* finish NULL: no period at all */
	assert_int_equal(c.start, 0);
	assert_int_equal(c.finish, 0);
	assert_int_equal(c.access_criteria, 0xFFFFFFFF);
	sms_store_close(s);
	/* the old CAS's card keys (column `key`) are nowhere in the store: not in
	 * a card, not in the audit log */
	{
		static const char *const files[] = { "", "-wal" };

		for (size_t i = 0; i < 2; i++) {
			char path[160];
			size_t len = 0;
			uint8_t *b;

			snprintf(path, sizeof(path), "%s%s", db, files[i]);
			if (access(path, F_OK) != 0)
				continue;
			b = tu_read(path, &len);
			assert_non_null(b);
			assert_null(memmem(b, len, "00112233445566778899AABBCCDDEEFF", 32));
			assert_null(memmem(b, len, "FFEEDDCCBBAA99887766554433221100", 32));
			assert_non_null(memmem(b, len, "Anna Kowalska", 13)); /* the search does find text */
			free(b);
		}
	}
	/* again, from the CSV export: the same cards are changed, none added */
	assert_int_equal(run(out, sizeof(out), "sms --db '%s' import-tvcas '%s'", db,
			     tu_testdata("tvcas/smartcards.csv")), 0);
	assert_non_null(strstr(out, "0 added, 4 changed"));
	/* a bad row: its line, nothing imported */
	snprintf(bad, sizeof(bad), "%s/bad.csv", dir);
	{
		FILE *f = fopen(bad, "w");

		assert_non_null(f);
		fputs(HDR "2100000099,New,,00000001,0,1,2,1\n2100000010,Changed,,0000000X,0,1,2,1\n", f);
		fclose(f);
	}
	assert_int_equal(run(out, sizeof(out), "sms --db '%s' import-tvcas '%s'", db, bad), 1);
	assert_non_null(strstr(out, "line 3"));
	assert_non_null(strstr(out, "nothing was imported"));
	/* a serial twice: refused, both lines named */
	{
		FILE *f = fopen(bad, "w");

		assert_non_null(f);
		fputs(HDR "2100000099,New,,00000001,0,1,2,1\n2100000099,Again,,00000001,0,1,2,1\n", f);
		fclose(f);
	}
	assert_int_equal(run(out, sizeof(out), "sms --db '%s' import-tvcas '%s'", db, bad), 1);
	assert_non_null(strstr(out, "lines 2 and 3"));
	assert_int_equal(sms_store_open(db, &s), 0);
	assert_int_equal(sms_card_get(s, 2100000099, &c), CE_NOT_FOUND);
	assert_int_equal(sms_card_get(s, 2100000010, &c), 0);
	assert_string_equal(c.name, "Anna Kowalska");
	sms_store_close(s);
	/* usage */
	assert_int_equal(run(out, sizeof(out), "sms --db '%s' import-tvcas", db), 2);
	assert_int_equal(run(out, sizeof(out), "sms --db '%s' import-tvcas '%s' --format xml", db, bad), 2);
	assert_int_equal(run(out, sizeof(out), "sms --help"), 0);
	assert_non_null(strstr(out, "import-tvcas FILE"));
	assert_int_equal(tu_run("rm -rf %s", dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_three_forms),
		cmocka_unit_test(test_bad_cases),
		cmocka_unit_test(test_import),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
