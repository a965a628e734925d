/*
 * test_secfile.c - the file of sections in hex (ts/secfile.h): good files
 * (comments, blank lines, CRLF, leading and trailing blanks) and a table of bad ones, each
 * refused whole with the line it names; the limit; a file from disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "ts/psi.h"
#include "ts/secfile.h"

static void test_good(void **state)
{
	static const char text[] = "# EMMs for card 1\n"
				   "820003010203\r\n"
				   "\n"
				   "  \t83000201ff \t\r\r\n"
				   "8400000"
				   "\n"
				   "85000101"; /* last line without '\n' */
	struct secfile sf;
	size_t bad = 99;

	(void)state;
	/* "8400000" is odd: first make it whole */
	char *t = strdup(text), *k = strstr(t, "8400000");

	assert_non_null(k);
	memmove(k + 6, k + 7, strlen(k + 7) + 1); /* "840000" */
	assert_int_equal(secfile_parse((const uint8_t *)t, strlen(t), 16, &sf, &bad), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(sf.n, 4);
	assert_int_equal(sf.len[0], 6);
	assert_memory_equal(sf.sec[0], "\x82\x00\x03\x01\x02\x03", 6);
	assert_int_equal(sf.len[1], 5);
	assert_int_equal(sf.sec[1][4], 0xff);
	assert_int_equal(sf.len[2], 3);
	assert_int_equal(sf.len[3], 4);
	secfile_free(&sf);
	assert_int_equal(sf.n, 0);
	assert_null(sf.sec);
	/* the limit */
	assert_int_equal(secfile_parse((const uint8_t *)t, strlen(t), 3, &sf, &bad), CE_LIMIT);
	assert_int_equal(sf.n, 0);
	free(t);
}

static void test_bad(void **state)
{
	static const struct {
		const char *text;
		size_t line; /* 0: no section at all */
	} cases[] = {
		{ "", 0 },
		{ "\n\n# nothing\n", 0 },
		{ "8200030102\n", 1 },          /* section_length 3, 2 bytes follow */
		{ "82000301020304\n", 1 },      /* one byte too many */
		{ "8200\n", 1 },                /* shorter than a header */
		{ "82000301020\n", 1 },         /* odd digit count */
		{ "82000301020g\n", 1 },        /* not hex */
		{ "820003 010203\n", 1 },       /* a blank inside */
		{ "820003010203 # x\n", 1 },    /* a comment after the hex */
		{ "820003010203\n82000301\n", 2 },
		{ "# c\n\n820003010203\n0x820003010203\n", 4 },
		{ "82000301\r0203\n", 1 },       /* a CR inside */
		{ "\x82\x00\x03\x01\x02\x03\n", 1 }, /* binary, not hex */
	};
	struct secfile sf;
	size_t bad;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = secfile_parse((const uint8_t *)cases[i].text, strlen(cases[i].text), 16, &sf, &bad);

		if (r != CE_FORMAT || bad != cases[i].line)
			fprintf(stderr, "case %zu: %d line %zu, want line %zu\n", i, r, bad, cases[i].line);
		assert_int_equal(r, CE_FORMAT);
		assert_int_equal(bad, cases[i].line);
		assert_int_equal(sf.n, 0);
		assert_null(sf.sec);
	}
	/* a section longer than PSI_MAX_SECTION: refused before decoding */
	{
		size_t n = 2 * (PSI_MAX_SECTION + 1);
		char *big = malloc(n + 2);

		assert_non_null(big);
		memset(big, '0', n);
		memcpy(big, "820FFF", 6);
		big[n] = '\n';
		big[n + 1] = '\0';
		assert_int_equal(secfile_parse((const uint8_t *)big, n + 1, 16, &sf, &bad), CE_FORMAT);
		assert_int_equal(bad, 1);
		free(big);
	}
}

static void test_load(void **state)
{
	char path[] = "/tmp/castellan-secfile-XXXXXX";
	int fd = mkstemp(path);
	struct secfile sf;
	size_t bad;
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "820003010203\n820003040506\n");
	fclose(f);
	assert_int_equal(secfile_load(path, 16, &sf, &bad), 0);
	assert_int_equal(sf.n, 2);
	assert_int_equal(sf.sec[1][5], 6);
	secfile_free(&sf);
	assert_int_equal(remove(path), 0);
	assert_int_not_equal(secfile_load(path, 16, &sf, &bad), 0); /* CE_NOT_FOUND: gone */
	assert_int_equal(sf.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
