/*
 * test_vkeys.c - the vendor key file parser (cas/vkeys.h) shared by the
 * head-end and emm_vendor_key_file: good files (comments, CRLF, hex and
 * decimal ids, sorted output) and a table of bad ones refused with their
 * line number.
 */
#include "testutil.h"
#include "cas/vkeys.h"

static int parse(const char *text, size_t max, struct vkey **v, size_t *n, size_t *bad)
{
	return vkeys_parse((const uint8_t *)text, strlen(text), max, v, n, bad);
}

static void test_vkeys_good(void **state)
{
	const char *f = "# vendor 0x4ADC\n"
			"\n"
			"0x2a,00112233445566778899aabbccddeeff\r\n"
			"7,000102030405060708090A0B0C0D0E0F\n"
			"18446744073709551615,ffffffffffffffffffffffffffffffff";
	struct vkey *v;
	size_t n, bad;
	(void)state;

	assert_int_equal(parse(f, 10, &v, &n, &bad), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0].chip, 7);
	assert_int_equal(v[1].chip, 42);
	assert_int_equal(v[2].chip, UINT64_MAX);
	assert_int_equal(v[0].kv[15], 0x0f);
	assert_int_equal(v[1].kv[0], 0x00);
	assert_int_equal(v[1].kv[15], 0xff);
	assert_ptr_equal(vkeys_find(v, n, 42), &v[1]);
	assert_null(vkeys_find(v, n, 8));
	vkeys_free(v, n);
	/* empty file, only comments */
	assert_int_equal(parse("", 10, &v, &n, &bad), 0);
	assert_int_equal(n, 0);
	assert_int_equal(parse("# x\n\n", 10, &v, &n, &bad), 0);
	assert_int_equal(n, 0);
	/* the header `kms vendor open --out` writes, on the first line */
	assert_int_equal(parse("chip_id,key\r\n0x2a,00112233445566778899aabbccddeeff\n", 10, &v, &n, &bad), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].chip, 42);
	vkeys_free(v, n);
	/* vkeys_format writes what vkeys_parse reads back */
	{
		struct vkey w[2] = { { .chip = 0x0000ca57e11a0001ull }, { .chip = UINT64_MAX } };
		struct vkey *back;
		char *text;
		size_t len, nb;

		memset(w[0].kv, 0xA5, 16);
		memset(w[1].kv, 0x01, 16);
		assert_int_equal(vkeys_format(w, 2, &text, &len), 0);
		assert_int_equal(len, 12 + 2 * 52);
		assert_int_equal(strncmp(text, "chip_id,key\n0x0000ca57e11a0001,a5a5", 35), 0);
		assert_int_equal(vkeys_parse((const uint8_t *)text, len, 10, &back, &nb, &bad), 0);
		assert_int_equal(nb, 2);
		assert_memory_equal(back, w, sizeof(w));
		vkeys_free(back, nb);
		secret_free(text, len);
	}
	/* comments do not count against the limit */
	assert_int_equal(parse("#a\n1,00000000000000000000000000000000\n#b\n", 1, &v, &n, &bad), 0);
	assert_int_equal(n, 1);
	vkeys_free(v, n);
}

static void test_vkeys_bad(void **state)
{
	static const struct {
		const char *text;
		int r;
		size_t line;
	} cases[] = {
		{ "1,0001020304050607080910111213141\n", CE_FORMAT, 1 },      /* 31 hex digits */
		{ "1,000102030405060708091011121314151\n", CE_FORMAT, 1 },    /* 33 */
		{ "# ok\n1;00010203040506070809101112131415\n", CE_FORMAT, 2 }, /* no comma */
		{ ",00010203040506070809101112131415\n", CE_FORMAT, 1 },       /* no id */
		{ "x1,00010203040506070809101112131415\n", CE_FORMAT, 1 },     /* id not a number */
		{ "1,0001020304050607080910111213141g\n", CE_FORMAT, 1 },      /* not hex */
		{ "18446744073709551616,00010203040506070809101112131415", CE_FORMAT, 1 }, /* > u64 */
		{ " 1,00010203040506070809101112131415", CE_FORMAT, 1 },       /* space */
		{ "1,00010203040506070809101112131415 ", CE_FORMAT, 1 },       /* trailing space */
		{ "1\0,00010203040506070809101112131415", CE_FORMAT, 1 },      /* NUL (strlen cuts: no comma) */
		{ "1,00010203040506070809101112131415\n1,ffffffffffffffffffffffffffffffff\n", CE_FORMAT, 0 }, /* twice */
		{ "# x\nchip_id,key\n1,00010203040506070809101112131415\n", CE_FORMAT, 2 }, /* header not first */
		{ "chip_id,keys\n1,00010203040506070809101112131415\n", CE_FORMAT, 1 },     /* not the header */
		{ "1,00010203040506070809101112131415\n2,00010203040506070809101112131415\n"
		  "3,00010203040506070809101112131415\n", CE_LIMIT, 3 }, /* max 2 */
	};
	struct vkey *v;
	size_t n, bad;
	char longline[400];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = (struct vkey *)1;
		assert_int_equal(parse(cases[i].text, 2, &v, &n, &bad), cases[i].r);
		assert_null(v);
		assert_int_equal(n, 0);
		assert_int_equal(bad, cases[i].line);
	}
	/* a line over VKEYS_LINE_MAX, even a comment */
	memset(longline, 'a', sizeof(longline));
	longline[0] = '#';
	longline[VKEYS_LINE_MAX + 1] = '\0';
	assert_int_equal(parse(longline, 10, &v, &n, &bad), CE_FORMAT);
	longline[VKEYS_LINE_MAX] = '\0';
	assert_int_equal(parse(longline, 10, &v, &n, &bad), 0);
	/* an embedded NUL in the id is refused, not cut */
	assert_int_equal(vkeys_parse((const uint8_t *)"1\0002,00010203040506070809101112131415", 37, 10, &v, &n, &bad),
		CE_FORMAT);
	/* a missing file */
	assert_int_equal(vkeys_load("/nonexistent/keys.csv", 10, &v, &n, &bad), CE_IO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vkeys_good),
		cmocka_unit_test(test_vkeys_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
