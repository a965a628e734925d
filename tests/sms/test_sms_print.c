/*
 * test_sms_print.c - the store as `castellan sms` prints it (sms_print.h):
 * the --scopes parser against a table of good and bad lists, the card
 * listing's paging (--after, --limit across pages of 1000) and the
 * blacklist's lines, read back from a temporary file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/err.h"
#include "sms/sms_print.h"
#include "sms/store.h"

static void test_scopes(void **state)
{
	static const struct { const char *in; int r; unsigned want; } cases[] = {
		{ "read", 0, SMS_SCOPE_READ },
		{ "read,write", 0, SMS_SCOPE_READ | SMS_SCOPE_WRITE },
		{ "admin,metrics", 0, SMS_SCOPE_ADMIN | SMS_SCOPE_METRICS },
		{ ",read,,write,", 0, SMS_SCOPE_READ | SMS_SCOPE_WRITE }, /* empty items skipped, as strtok did */
		{ "read,read", 0, SMS_SCOPE_READ },
		{ "", CE_ARG, 0 },
		{ ",", CE_ARG, 0 },
		{ "rea", CE_ARG, 0 },
		{ "readx", CE_ARG, 0 },
		{ "read,bogus", CE_ARG, 0 },
		{ "READ", CE_ARG, 0 },
		{ "read,write,admin,metrics,read,write,admin,metrics,read,write,admin", CE_ARG, 0 }, /* >= 64 bytes */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned got = 99;

		assert_int_equal(sms_scopes_parse(cases[i].in, &got), cases[i].r);
		if (cases[i].r == 0)
			assert_int_equal(got, cases[i].want);
	}
}

/* f's whole text (malloc'ed). */
static char *slurp(FILE *f)
{
	long n;
	char *buf;

	assert_int_equal(fflush(f), 0);
	n = ftell(f);
	assert_true(n >= 0);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	rewind(f);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	return buf;
}

static size_t lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_cards_and_blacklist(void **state)
{
	char dir[] = "/tmp/castellan-smsprint-XXXXXX", uri[128], cmd[160];
	struct sms_store *s = NULL;
	FILE *f;
	char *out;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(uri, sizeof(uri), "sqlite:%s/t.db", dir);
	assert_int_equal(sms_store_open(uri, &s), 0);
	for (uint64_t serial = 1; serial <= 2500; serial++) {
		struct sms_card c = { .serial = serial };

		assert_int_equal(sms_card_add(s, &c, "test"), 0);
	}
	/* every card, over three pages */
	assert_non_null(f = tmpfile());
	assert_int_equal(sms_print_cards(s, 0, 100000, f), 0);
	out = slurp(f);
	assert_int_equal(lines(out), 2500);
	assert_true(strncmp(out, "1\t-\tactive\tpair=0\t", 18) == 0);
	free(out);
	fclose(f);
	/* --after 999 --limit 1500: 1000..2499, across the page edge */
	assert_non_null(f = tmpfile());
	assert_int_equal(sms_print_cards(s, 999, 1500, f), 0);
	out = slurp(f);
	assert_int_equal(lines(out), 1500);
	assert_true(strncmp(out, "1000\t", 5) == 0);
	assert_non_null(strstr(out, "\n2499\t"));
	assert_null(strstr(out, "\n2500\t"));
	free(out);
	fclose(f);
	/* the blacklist: kind, id, when, who, reason */
	assert_int_equal(sms_blacklist_add(s, SMS_BL_CARD, "7", "cloned", "test"), 0);
	assert_non_null(f = tmpfile());
	assert_int_equal(sms_print_blacklist(s, f), 0);
	out = slurp(f);
	assert_int_equal(lines(out), 1);
	assert_true(strncmp(out, "card\t7\t", 7) == 0);
	assert_non_null(strstr(out, "\ttest\tcloned\n"));
	free(out);
	fclose(f);
	sms_store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_cards_and_blacklist),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
