/*
 * test_jsonw.c - the bounded JSON writer of the API hot paths: its
 * jansson style writes what json_dumps writes (checked against jansson
 * itself, string by string), its PHP style what PHP's json_encode writes,
 * and overflow is refused, never truncated silently.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "sms/jsonw.h"
#include "lib/err.h"

static const char *const strings[] = {
	"", "plain", "a\"quote", "back\\slash", "a/b", "tab\there", "nl\nx", "cr\rx", "bs\bff\f",
	"\x01\x1f\x7f", "caf\xc3\xa9", "\xe2\x82\xac euro", "\xf0\x9f\x98\x80 emoji", "\xe2\x80\xa8 sep",
	"Street 12, Town", "<script>&amp;</script>",
};

static void test_jansson_style_matches_jansson(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		char buf[256];
		struct jw j;
		size_t len;
		json_t *s = json_string(strings[i]);
		char *ref = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT);

		assert_non_null(ref);
		jw_init(&j, buf, sizeof(buf), JW_JANSSON);
		jw_str(&j, strings[i]);
		assert_int_equal(jw_end(&j, &len), 0);
		buf[len] = '\0';
		assert_string_equal(buf, ref);
		free(ref);
		json_decref(s);
	}
}

static void test_php_style(void **state)
{
	/* What PHP 7/8's json_encode (no flags) writes for these strings. */
	static const struct { const char *in, *out; } t[] = {
		{ "a/b", "\"a\\/b\"" },
		{ "caf\xc3\xa9", "\"caf\\u00e9\"" },
		{ "\xf0\x9f\x98\x80", "\"\\ud83d\\ude00\"" },
		{ "q\"b\\", "\"q\\\"b\\\\\"" },
		{ "\t\n\x01", "\"\\t\\n\\u0001\"" },
		{ "\xff bad", "\"\\ufffd bad\"" },
		{ "\xc0\xaf", "\"\\ufffd\\ufffd\"" },         /* overlong '/': two bad bytes */
		{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" }, /* a surrogate */
		{ "\xe2\x82", "\"\\ufffd\\ufffd\"" },           /* cut short by the NUL */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char buf[64];
		struct jw j;
		size_t len;

		jw_init(&j, buf, sizeof(buf), JW_PHP);
		jw_str(&j, t[i].in);
		assert_int_equal(jw_end(&j, &len), 0);
		buf[len] = '\0';
		assert_string_equal(buf, t[i].out);
	}
}

static void test_numbers(void **state)
{
	static const int64_t v[] = { 0, 1, -1, 9, 10, 1800000000, INT64_MAX, INT64_MIN };
	char buf[64], ref[64];
	struct jw j;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		jw_init(&j, buf, sizeof(buf), JW_JANSSON);
		jw_i64(&j, v[i]);
		assert_int_equal(jw_end(&j, &len), 0);
		buf[len] = '\0';
		snprintf(ref, sizeof(ref), "%lld", (long long)v[i]);
		assert_string_equal(buf, ref);
	}
	jw_init(&j, buf, sizeof(buf), JW_JANSSON);
	jw_u64(&j, UINT64_MAX);
	assert_int_equal(jw_end(&j, &len), 0);
	assert_int_equal(len, 20);
	assert_memory_equal(buf, "18446744073709551615", 20);
}

static void test_overflow(void **state)
{
	char buf[8];
	struct jw j;
	size_t len = 99;

	(void)state;
	jw_init(&j, buf, sizeof(buf), JW_PHP);
	jw_lit(&j, "1234");
	jw_str(&j, "abcdef"); /* 8 bytes with quotes: over */
	jw_lit(&j, "x");      /* sticky: nothing more is written */
	assert_int_equal(jw_end(&j, &len), CE_OVERFLOW);
	assert_int_equal(len, 0);
	/* Exactly full is fine. */
	jw_init(&j, buf, sizeof(buf), JW_PHP);
	jw_str(&j, "abcdef");
	assert_int_equal(jw_end(&j, &len), 0);
	assert_int_equal(len, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jansson_style_matches_jansson),
		cmocka_unit_test(test_php_style),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
