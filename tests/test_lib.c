/* test_lib.c - cursor, writer, errors, util helpers. */
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"
#include "lib/cursor.h"
#include "lib/err.h"
#include "lib/netacl.h"
#include "lib/url.h"
#include "lib/util.h"

static void test_cursor_reads_and_sticky_error(void **state)
{
	const uint8_t buf[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07 };
	struct cur c;
	uint8_t b;
	uint16_t h;
	uint32_t w;

	(void)state;
	cur_init(&c, buf, sizeof(buf));
	assert_int_equal(cur_u8(&c, &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(cur_u16(&c, &h), 0);
	assert_int_equal(h, 0x0203);
	assert_int_equal(cur_left(&c), 4);
	assert_int_equal(cur_end(&c), CE_TRAILING);
	/* 4 bytes left, ask for 8: fails, and stays failed */
	uint64_t q;
	assert_int_equal(cur_u64(&c, &q), CE_TRUNCATED);
	assert_int_equal(q, 0);
	assert_int_equal(cur_u8(&c, &b), CE_TRUNCATED);
	assert_int_equal(cur_end(&c), CE_TRUNCATED);
	/* a fresh cursor reads the rest exactly */
	cur_init(&c, buf + 3, 4);
	assert_int_equal(cur_u32(&c, &w), 0);
	assert_int_equal(w, 0x04050607);
	assert_int_equal(cur_end(&c), 0);
}

/* The out-of-order field reads that replaced the unchecked be16/be32: the
 * same bound as every cursor read, whatever off is (even past len, or so
 * large that off + n wraps). */
static void test_cursor_field_at(void **state)
{
	const uint8_t buf[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09 };
	static const struct { size_t len, off; int want; } bad[] = {
		{ 9, 8, CE_TRUNCATED },        /* the field crosses the end */
		{ 9, 9, CE_TRUNCATED },        /* off at the end */
		{ 9, 10, CE_TRUNCATED },       /* off past the end */
		{ 9, SIZE_MAX, CE_TRUNCATED }, /* off + 2 wraps */
		{ 9, SIZE_MAX - 1, CE_TRUNCATED },
		{ 1, 0, CE_TRUNCATED },        /* the buffer shorter than the field */
		{ 0, 0, CE_TRUNCATED },
	};
	uint16_t h;
	uint32_t w;
	uint64_t q;

	(void)state;
	assert_int_equal(cur_u16_at(buf, sizeof(buf), 7, &h), 0);
	assert_int_equal(h, 0x0809);
	assert_int_equal(cur_u32_at(buf, sizeof(buf), 1, &w), 0);
	assert_int_equal(w, 0x02030405);
	assert_int_equal(cur_u64_at(buf, sizeof(buf), 1, &q), 0);
	assert_int_equal(q, 0x0203040506070809ull);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		h = 0xFFFF;
		assert_int_equal(cur_u16_at(buf, bad[i].len, bad[i].off, &h), bad[i].want);
		assert_int_equal(h, 0);
	}
	w = 1;
	assert_int_equal(cur_u32_at(buf, sizeof(buf), 6, &w), CE_TRUNCATED);
	assert_int_equal(w, 0);
	q = 1;
	assert_int_equal(cur_u64_at(buf, sizeof(buf), 2, &q), CE_TRUNCATED);
	assert_int_equal(q, 0);
	assert_int_equal(cur_u16_at(NULL, 4, 0, &h), CE_TRUNCATED);
}

/* Text through the cursor: fields to a delimiter, lines, trimming, and a
 * field copied out as a string; a table of bad inputs. */
static void test_cursor_text(void **state)
{
	static const char txt[] = "12\tab\t\nlast";
	static const struct { const char *in; size_t cap; int want; } bad_text[] = {
		{ "1234", 4, CE_RANGE },          /* no room for the NUL */
		{ "12\0" "4", 8, CE_RANGE },      /* a NUL inside */
		{ "", 0, CE_RANGE },              /* no room at all */
	};
	struct cur c, f, l;
	char out[8];

	(void)state;
	cur_init(&c, txt, strlen(txt));
	assert_int_equal(cur_until(&c, '\t', &f), 0);
	assert_int_equal(cur_text(&f, out, sizeof(out)), 0);
	assert_string_equal(out, "12");
	assert_int_equal(cur_until(&c, '\t', &f), 0);
	assert_int_equal(cur_text(&f, out, sizeof(out)), 0);
	assert_string_equal(out, "ab");
	assert_int_equal(cur_until(&c, '\t', &f), CE_TRUNCATED); /* no tab left */
	assert_int_equal(cur_text(&f, out, sizeof(out)), CE_TRUNCATED);
	assert_string_equal(out, "");
	assert_int_equal(cur_end(&c), CE_TRUNCATED);               /* sticky */
	/* lines: the last one needs no newline; then nothing is left */
	cur_init(&c, txt, strlen(txt));
	assert_int_equal(cur_line(&c, &l), 0);
	assert_int_equal(cur_left(&l), 6);
	assert_int_equal(cur_line(&c, &l), 0);
	assert_int_equal(cur_text(&l, out, sizeof(out)), 0);
	assert_string_equal(out, "last");
	assert_int_equal(cur_end(&c), 0);
	assert_int_equal(cur_line(&c, &l), CE_TRUNCATED);
	/* trim: different sets at each end; an all-trimmed view is empty */
	cur_init(&c, " ,7, \r", 6);
	cur_trim(&c, " ", " ,\r");
	assert_int_equal(cur_text(&c, out, sizeof(out)), 0);
	assert_string_equal(out, ",7");
	cur_init(&c, " \t ", 3);
	cur_trim(&c, " \t", "");
	assert_int_equal(cur_left(&c), 0);
	for (size_t i = 0; i < sizeof(bad_text) / sizeof(bad_text[0]); i++) {
		char d[8] = "x";

		cur_init(&c, bad_text[i].in, bad_text[i].in[0] ? 4 : 0);
		assert_int_equal(cur_text(&c, d, bad_text[i].cap), bad_text[i].want);
		if (bad_text[i].cap)
			assert_string_equal(d, "");
	}
	/* an empty buffer: no field, no line */
	cur_init(&c, NULL, 0);
	assert_int_equal(cur_until(&c, ',', &f), CE_TRUNCATED);
	cur_init(&c, NULL, 0);
	assert_int_equal(cur_line(&c, &l), CE_TRUNCATED);
}

static void test_cursor_child_view(void **state)
{
	const uint8_t buf[] = { 0x00, 0x02, 0xAA, 0xBB, 0xCC };
	struct cur c, child;
	uint16_t n;
	uint8_t b;

	(void)state;
	cur_init(&c, buf, sizeof(buf));
	assert_int_equal(cur_u16(&c, &n), 0);
	assert_int_equal(cur_view(&c, n, &child), 0);
	assert_int_equal(cur_u8(&child, &b), 0);
	assert_int_equal(b, 0xAA);
	assert_int_equal(cur_end(&child), CE_TRAILING);
	assert_int_equal(cur_u8(&child, &b), 0);
	assert_int_equal(cur_end(&child), 0);
	/* the child cannot read past its bound even though the parent has more */
	assert_int_equal(cur_u8(&child, &b), CE_TRUNCATED);
	assert_int_equal(cur_left(&c), 1);
	/* a view longer than what is left fails and poisons both */
	assert_int_equal(cur_view(&c, 2, &child), CE_TRUNCATED);
	assert_int_equal(cur_u8(&child, &b), CE_TRUNCATED);
	/* huge lengths cannot wrap the bound check */
	cur_init(&c, buf, sizeof(buf));
	assert_int_equal(cur_skip(&c, 1), 0);
	assert_int_equal(cur_skip(&c, SIZE_MAX), CE_TRUNCATED);
}

static void test_writer_overflow_and_patch(void **state)
{
	uint8_t buf[6];
	struct wbuf w;
	size_t at;

	(void)state;
	wbuf_init(&w, buf, sizeof(buf));
	wbuf_u8(&w, 0x11);
	at = wbuf_reserve(&w, 2);
	wbuf_u16(&w, 0x2233);
	wbuf_patch_u16(&w, at, (uint16_t)(w.len - at - 2));
	assert_int_equal(wbuf_status(&w), 0);
	assert_int_equal(w.len, 5);
	assert_int_equal(buf[1], 0x00);
	assert_int_equal(buf[2], 0x02);
	wbuf_u32(&w, 0xdeadbeef); /* does not fit */
	assert_int_equal(wbuf_status(&w), CE_OVERFLOW);
	assert_int_equal(w.len, 5);
	wbuf_u8(&w, 0x44); /* would fit, but the error is sticky */
	assert_int_equal(w.len, 5);
}

static void test_err_strings(void **state)
{
	(void)state;
	assert_string_equal(err_str(0), "success");
	assert_string_equal(err_str(CE_MAC), "authentication failed");
	assert_string_equal(err_str(12345), "unknown error");
}

static void test_hex_and_numbers(void **state)
{
	uint8_t out[4];
	char txt[9];
	uint64_t v;
	size_t n;

	(void)state;
	assert_int_equal(hex_decode("DEADbeef", out, 4), 0);
	hex_encode(out, 4, txt);
	assert_string_equal(txt, "deadbeef");
	assert_int_equal(hex_decode("deadbee", out, 4), CE_FORMAT);
	assert_int_equal(hex_decode("deadbeeg", out, 4), CE_FORMAT);
	assert_int_equal(hex_decode_var("0011223344", out, 4, &n), CE_FORMAT);
	assert_int_equal(parse_u64("2100000000", UINT32_MAX, &v), 0);
	assert_int_equal(v, 2100000000u);
	assert_int_equal(parse_u64("0x4ADC", 0xFFFF, &v), 0);
	assert_int_equal(v, 0x4ADC);
	assert_int_equal(parse_u64("65536", 0xFFFF, &v), CE_RANGE);
	assert_int_equal(parse_u64("12a", 0xFFFF, &v), CE_FORMAT);
	assert_int_equal(parse_u64("", 0xFFFF, &v), CE_FORMAT);
	assert_int_equal(parse_u64("-1", 0xFFFF, &v), CE_FORMAT);
	assert_int_equal(parse_u64("99999999999999999999999", UINT64_MAX, &v), CE_RANGE);
}

static void test_addr_split(void **state)
{
	char host[64];
	uint16_t port;

	(void)state;
	assert_int_equal(addr_split("127.0.0.1:2222", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 2222);
	assert_int_equal(addr_split("[::1]:3000", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 3000);
	assert_int_equal(addr_split(":2222", host, sizeof(host), &port), 0);
	assert_string_equal(host, "");
	assert_int_equal(addr_split("2222", host, sizeof(host), &port), 0);
	assert_int_equal(port, 2222);
	assert_int_equal(addr_split("host:99999", host, sizeof(host), &port), CE_FORMAT);
	assert_int_equal(addr_split("[::1:5", host, sizeof(host), &port), CE_FORMAT);
}

static struct sockaddr_storage sa4(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, a, &s->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage sa6(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, a, &s->sin6_addr), 1);
	return ss;
}

/* --allow lists (lib/netacl.h): what matches, and a table of bad lists. */
static void test_netacl(void **state)
{
	struct netacl acl;
	struct sockaddr_storage ss;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	static const struct {
		const char *text;
		int want;
	} bad[] = {
		{ "", CE_ARG }, { ",", CE_ARG }, { "10.0.0.0/8,", CE_ARG }, { " , 10.0.0.0/8", CE_ARG },
		{ "10.0.0.0/33", CE_ARG }, { "10.0.0.0/", CE_ARG }, { "10.0.0.0/-1", CE_ARG },
		{ "10.0.0.0/+8", CE_ARG }, { "10.0.0.0/8x", CE_ARG }, { "10.0.0.1/8", CE_ARG },
		{ "10.0.0", CE_ARG }, { "256.0.0.0", CE_ARG }, { "host.example", CE_ARG },
		{ "::1/129", CE_ARG }, { "fd00::1/8", CE_ARG }, { "10.0.0.0/0x8", CE_ARG },
		{ "10.0.0.0 /8", CE_ARG }, { "0123456789012345678901234567890123456789012345678901234567890123", CE_ARG },
	};

	(void)state;
	/* no list: everyone, even a Unix socket */
	assert_int_equal(netacl_parse(NULL, &acl), 0);
	assert_int_equal(acl.n, 0);
	ss = sa4("203.0.113.9");
	assert_true(netacl_allows(&acl, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)));
	assert_true(netacl_allows(&acl, (struct sockaddr *)&un, sizeof(un)));

	assert_int_equal(netacl_parse(" 10.1.0.0/16 ,192.0.2.7, fd00::/8,0.0.0.0/0 ", &acl), 0);
	assert_int_equal(acl.n, 4);
	assert_int_equal(netacl_parse("10.1.0.0/16,192.0.2.7,fd00::/8", &acl), 0);
	assert_int_equal(acl.n, 3);
	ss = sa4("10.1.200.3");
	assert_true(netacl_allows(&acl, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)));
	ss = sa4("10.2.0.1");
	assert_false(netacl_allows(&acl, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)));
	ss = sa4("192.0.2.7");
	assert_true(netacl_allows(&acl, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)));
	ss = sa4("192.0.2.8");
	assert_false(netacl_allows(&acl, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)));
	/* a short sockaddr is not read past its length */
	ss = sa4("192.0.2.7");
	assert_false(netacl_allows(&acl, (struct sockaddr *)&ss, 4));
	ss = sa6("fd12:3456::1");
	assert_true(netacl_allows(&acl, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6)));
	ss = sa6("fe80::1");
	assert_false(netacl_allows(&acl, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6)));
	/* IPv4-mapped IPv6 (a dual-stack listener) is matched as IPv4 */
	ss = sa6("::ffff:10.1.2.3");
	assert_true(netacl_allows(&acl, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6)));
	ss = sa6("::ffff:10.9.2.3");
	assert_false(netacl_allows(&acl, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6)));
	/* a non-empty list refuses what is not IP */
	assert_false(netacl_allows(&acl, (struct sockaddr *)&un, sizeof(un)));
	/* an odd prefix */
	assert_int_equal(netacl_parse("192.168.4.0/22", &acl), 0);
	ss = sa4("192.168.7.255");
	assert_true(netacl_allows(&acl, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)));
	ss = sa4("192.168.8.0");
	assert_false(netacl_allows(&acl, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = netacl_parse(bad[i].text, &acl);

		if (r != bad[i].want)
			fail_msg("'%s': got %d want %d", bad[i].text, r, bad[i].want);
		assert_int_equal(acl.n, 0);
	}
	/* 33 items, and a text over the limit */
	{
		char big[NETACL_MAX_TEXT + 8];
		size_t o = 0;

		for (int i = 0; i < NETACL_MAX + 1; i++)
			o += (size_t)snprintf(big + o, sizeof(big) - o, "%s10.0.%d.0/24", i ? "," : "", i);
		assert_int_equal(netacl_parse(big, &acl), CE_RANGE);
		memset(big, ' ', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(netacl_parse(big, &acl), CE_RANGE);
	}
}

/* Issue 12 item 12: a file planted (or a symlink) where file_write_atomic
 * used to write its temporary (path.tmp.PID, a guessable name) must not
 * receive the secret; the result has exactly the asked mode whatever the
 * umask, and no temporary is left behind. */
static void test_write_atomic_planted_tmp(void **state)
{
	char dir[] = "/tmp/castellan-wa-XXXXXX", path[256], tmp[300], victim[256];
	uint8_t *got;
	size_t len = 0;
	struct stat st;
	mode_t old;
	int n = 0;
	DIR *d;
	struct dirent *e;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/secret.key", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	assert_int_equal(file_write_atomic(victim, "public\n", 7, 0644), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	assert_int_equal(symlink(victim, tmp), 0);
	old = umask(0);
	assert_int_equal(file_write_atomic(path, "TOPSECRET", 9, 0600), 0);
	umask(old);
	/* The victim kept its bytes: the secret did not follow the link. */
	got = tu_read(victim, &len);
	assert_non_null(got);
	assert_int_equal(len, 7);
	assert_memory_equal(got, "public\n", 7);
	free(got);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	/* A planted regular file of the old name is left alone too. */
	assert_int_equal(unlink(tmp), 0);
	assert_int_equal(file_write_atomic(tmp, "planted", 7, 0666), 0);
	assert_int_equal(file_write_atomic(path, "TOPSECRET2", 10, 0600), 0);
	got = tu_read(tmp, &len);
	assert_non_null(got);
	assert_int_equal(len, 7);
	free(got);
	assert_int_equal(unlink(tmp), 0);
	/* Only the two files remain: no temporaries. */
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	assert_int_equal(n, 2);
	unlink(path);
	unlink(victim);
	rmdir(dir);
}

/* parse_s64: strict signed numbers (the SMS store's columns, options). */
static void test_parse_s64(void **state)
{
	static const struct {
		const char *in;
		int64_t lo, hi;
		int r;
		int64_t v;
	} cases[] = {
		{ "0", INT64_MIN, INT64_MAX, 0, 0 },
		{ "-1", INT64_MIN, INT64_MAX, 0, -1 },
		{ "0x10", INT64_MIN, INT64_MAX, 0, 16 },
		{ "9223372036854775807", INT64_MIN, INT64_MAX, 0, INT64_MAX },
		{ "-9223372036854775808", INT64_MIN, INT64_MAX, 0, INT64_MIN },
		{ "9223372036854775808", INT64_MIN, INT64_MAX, CE_RANGE, 0 },
		{ "-9223372036854775809", INT64_MIN, INT64_MAX, CE_RANGE, 0 },
		{ "5", 0, 4, CE_RANGE, 0 },
		{ "", INT64_MIN, INT64_MAX, CE_FORMAT, 0 },
		{ "-", INT64_MIN, INT64_MAX, CE_FORMAT, 0 },
		{ "x", INT64_MIN, INT64_MAX, CE_FORMAT, 0 },
		{ "12abc", INT64_MIN, INT64_MAX, CE_FORMAT, 0 },
		{ " 1", INT64_MIN, INT64_MAX, CE_FORMAT, 0 },
		{ "+1", INT64_MIN, INT64_MAX, CE_FORMAT, 0 },
		{ "--1", INT64_MIN, INT64_MAX, CE_FORMAT, 0 },
	};
	int64_t v;
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 77;
		assert_int_equal(parse_s64(cases[i].in, cases[i].lo, cases[i].hi, &v), cases[i].r);
		assert_true(v == cases[i].v);
	}
}

/* parse_dec_s64: machine-written decimals only (log lines, snapshots). */
static void test_parse_dec_s64(void **state)
{
	static const struct { const char *in; int r; int64_t v; } cases[] = {
		{ "0", 0, 0 }, { "-17", 0, -17 }, { "0017", 0, 17 },
		{ "9223372036854775807", 0, INT64_MAX }, { "-9223372036854775808", 0, INT64_MIN },
		{ "9223372036854775808", CE_RANGE, 0 },
		{ "0x10", CE_FORMAT, 0 }, { "-0x1", CE_FORMAT, 0 }, { "+1", CE_FORMAT, 0 }, { " 1", CE_FORMAT, 0 },
		{ "1 ", CE_FORMAT, 0 }, { "", CE_FORMAT, 0 }, { "-", CE_FORMAT, 0 }, { "1e3", CE_FORMAT, 0 },
		{ "12abc", CE_FORMAT, 0 }, { "--1", CE_FORMAT, 0 },
	};
	int64_t v;
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 77;
		assert_int_equal(parse_dec_s64(cases[i].in, INT64_MIN, INT64_MAX, &v), cases[i].r);
		assert_true(v == cases[i].v);
	}
	assert_int_equal(parse_dec_s64(NULL, 0, 1, &v), CE_FORMAT);
	assert_int_equal(parse_dec_s64("2", 0, 1, &v), CE_RANGE);
}

/* lib/url.h: the one query decoder of REST (strict) and the GET API (PHP). */
static void test_url_decode(void **state)
{
	static const struct {
		const char *in;
		size_t cap;
		int strict_r, php_r;
		const char *strict_out, *php_out;
	} cases[] = {
		{ "a+b%20c", 32, 0, 0, "a b c", "a b c" },
		{ "%41%4a%4A", 32, 0, 0, "AJJ", "AJJ" },
		{ "100%", 32, CE_FORMAT, 0, NULL, "100%" },
		{ "%4", 32, CE_FORMAT, 0, NULL, "%4" },
		{ "%zz", 32, CE_FORMAT, 0, NULL, "%zz" },
		{ "a%00b", 32, CE_FORMAT, 0, NULL, "a" }, /* PHP keeps the NUL: the C string ends there */
		{ "abcdef", 4, CE_LIMIT, CE_LIMIT, NULL, "abc" },
		{ "", 1, 0, 0, "", "" },
	};
	char out[32];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].in);

		assert_int_equal(url_decode(cases[i].in, n, out, cases[i].cap, false), cases[i].strict_r);
		if (cases[i].strict_out)
			assert_string_equal(out, cases[i].strict_out);
		assert_int_equal(url_decode(cases[i].in, n, out, cases[i].cap, true), cases[i].php_r);
		assert_string_equal(out, cases[i].php_out);
	}
	assert_int_equal(url_decode("a", 1, out, 0, true), CE_LIMIT);
}

static void test_url_query_next(void **state)
{
	const char *q = "&a=1&&b&c=&=d&e=x=y&", *name, *value;
	size_t len = strlen(q), nl, vl;
	static const char *const want[][2] = { { "a", "1" }, { "b", "" }, { "c", "" }, { "", "d" }, { "e", "x=y" } };
	size_t i = 0;
	(void)state;

	while (url_query_next(&q, &len, &name, &nl, &value, &vl)) {
		assert_true(i < 5);
		assert_int_equal(nl, strlen(want[i][0]));
		assert_memory_equal(name, want[i][0], nl);
		assert_int_equal(vl, strlen(want[i][1]));
		assert_memory_equal(value, want[i][1], vl);
		i++;
	}
	assert_int_equal(i, 5);
	assert_int_equal(len, 0);
}

/* file_write_atomic replaces regular files only: a FIFO (or a device such
 * as /dev/null given as an output) is refused and stays what it was. */
static void test_write_atomic_not_regular(void **state)
{
	char dir[] = "/tmp/castellan-lib-XXXXXX", fifo[300], file[300];
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	snprintf(file, sizeof(file), "%s/file", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(file_write_atomic(fifo, "secret", 6, 0600), CE_ARG);
	assert_int_equal(lstat(fifo, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(file_write_atomic(file, "data", 4, 0600), 0);
	assert_int_equal(file_write_atomic(file, "data2", 5, 0600), 0);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_size, 5);
	unlink(fifo);
	unlink(file);
	rmdir(dir);
}

/* fd_read_full: exactly n bytes or CE_CLOSED at EOF; fd_write_all and
 * fd_send_all: all bytes, CE_IO (no SIGPIPE) to a closed peer. */
static void test_fd_whole_io(void **state)
{
	uint8_t big[200000], back[200000];
	int pfd[2], sv[2];
	pid_t pid;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(pipe(pfd), 0);
	pid = fork(); /* more than a pipe holds: the writer must loop over partial writes */
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		_exit(fd_write_all(pfd[1], big, sizeof(big)) == 0 ? 0 : 1);
	}
	close(pfd[1]);
	assert_int_equal(fd_read_full(pfd[0], back, sizeof(back)), 0);
	assert_memory_equal(back, big, sizeof(big));
	assert_int_equal(fd_read_full(pfd[0], back, 1), CE_CLOSED);
	close(pfd[0]);
	{
		int st = 0;

		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(fd_write_all(pfd[1], "abc", 3), 0);
	close(pfd[1]);
	assert_int_equal(fd_read_full(pfd[0], back, 4), CE_CLOSED); /* 3 of 4, then EOF */
	close(pfd[0]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	assert_int_equal(fd_send_all(sv[0], big, sizeof(big)), CE_IO);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cursor_reads_and_sticky_error),
		cmocka_unit_test(test_cursor_child_view),
		cmocka_unit_test(test_cursor_field_at),
		cmocka_unit_test(test_cursor_text),
		cmocka_unit_test(test_writer_overflow_and_patch),
		cmocka_unit_test(test_err_strings),
		cmocka_unit_test(test_hex_and_numbers),
		cmocka_unit_test(test_addr_split),
		cmocka_unit_test(test_netacl),
		cmocka_unit_test(test_write_atomic_planted_tmp),
		cmocka_unit_test(test_parse_s64),
		cmocka_unit_test(test_parse_dec_s64),
		cmocka_unit_test(test_url_decode),
		cmocka_unit_test(test_url_query_next),
		cmocka_unit_test(test_write_atomic_not_regular),
		cmocka_unit_test(test_fd_whole_io),
	};
	return cmocka_run_group_tests_name("lib", tests, NULL, NULL);
}
