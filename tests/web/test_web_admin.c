/*
 * test_web_admin.c - the store calls behind the admin console (store.h
 * "admin calls"), on SQLite and on a real PostgreSQL: cards by info text
 * (with LIKE metacharacters taken literally), package rename, API key
 * listing and revocation (a revoked key is refused at once, audited once),
 * the public audit call; and lib/log.h's ring of recent lines.
 */
#define SMS_TEST_PG_PORT 5446
#include "../sms/sms_testdb.h"
#include "lib/log.h"

static int acc_serial(void *ctx, const struct sms_card *c)
{
	uint64_t *v = ctx;

	v[++v[0]] = c->serial;
	return 0;
}

static void add_card(struct sms_store *s, uint64_t serial, const char *name, const char *info)
{
	struct sms_card c = {.serial = serial, .finish = 2000000000};
	struct sms_card_change ch = {.has_name = true, .has_info = true};

	assert_int_equal(sms_card_add(s, &c, "t"), 0);
	snprintf(ch.name, sizeof(ch.name), "%s", name);
	snprintf(ch.info, sizeof(ch.info), "%s", info);
	assert_int_equal(sms_card_change(s, serial, &ch, "t", NULL), 0);
}

static void test_find_info(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_card_filter f = {.state = -1};
	static const struct {
		const char *q;
		size_t n;
		uint64_t first;
	} table[] = {
	    {"flat 7", 1, 2100000001},  {"FLAT", 2, 2100000001}, {"100%", 1, 2100000003},
	    {"%", 1, 2100000003},	{"a_b", 1, 2100000002},	 {"_", 1, 2100000002},
	    {"\\", 0, 0},		{"nowhere", 0, 0},	 {"", 4, 2100000001},
	};
	uint64_t got[16];
	size_t n;

	add_card(s, 2100000001, "ann", "Dish on the balcony, Flat 7");
	add_card(s, 2100000002, "bob", "flat 9, a_b");
	add_card(s, 2100000003, "cy", "discount 100% off");
	add_card(s, 2100000004, "dan", "");
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		memset(got, 0, sizeof(got));
		assert_int_equal(sms_card_find_info(s, &f, table[i].q, 0, 10, acc_serial, got, &n), 0);
		if (n != table[i].n)
			fail_msg("info %s: %zu cards, want %zu", table[i].q, n, table[i].n);
		if (n)
			assert_true(got[1] == table[i].first);
	}
	/* combined with the other filters */
	snprintf(f.name, sizeof(f.name), "bob");
	assert_int_equal(sms_card_find_info(s, &f, "flat", 0, 10, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	f.name[0] = '\0';
	assert_int_equal(sms_card_find_info(s, &f, "flat", 2100000001, 10, NULL, NULL, &n), 0);
	assert_int_equal(n, 1); /* cursor */
	assert_int_equal(sms_card_find_info(s, &f, "\x01", 0, 10, NULL, NULL, &n), CE_RANGE);
	assert_int_equal(sms_card_find_info(s, &f, "x", 0, 0, NULL, NULL, &n), CE_RANGE);
	sms_store_close(s);
}

static int acc_key(void *ctx, const struct sms_apikey *k)
{
	struct sms_apikey *out = ctx;

	out[out[0].id++ + 1] = *k;
	return 0;
}

static int count_audit(void *ctx, const struct sms_audit *a)
{
	if (strstr(a->what, "api key revoke") || strstr(a->what, "package rename") || strstr(a->what, "panel user"))
		(*(int *)ctx)++;
	return 0;
}

static void test_rename_keys(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_package p;
	struct sms_apikey keys[8];
	char k1[65], k2[65], user[SMS_NAME_MAX + 1];
	unsigned sc;
	size_t n;
	int64_t uid;
	int na = 0;

	assert_int_equal(sms_package_add(s, 40, "Sports", "t"), 0);
	assert_int_equal(sms_package_rename(s, 40, "Sports UHD", "web:admin"), 0);
	assert_int_equal(sms_package_get(s, 40, &p), 0);
	assert_string_equal(p.name, "Sports UHD");
	assert_int_equal(sms_package_rename(s, 41, "x", "t"), CE_NOT_FOUND);
	assert_int_equal(sms_package_rename(s, 40, "package 3", "t"), CE_EXISTS);
	assert_int_equal(sms_package_rename(s, 40, "", "t"), CE_RANGE);
	assert_int_equal(sms_package_rename(s, 70000, "y", "t"), CE_RANGE);

	assert_int_equal(sms_user_add(s, "billing", "t", &uid), 0);
	assert_int_equal(sms_apikey_create(s, "billing", SMS_SCOPE_READ, "t", k1), 0);
	assert_int_equal(sms_apikey_create(s, "billing", SMS_SCOPE_READ | SMS_SCOPE_WRITE, "t", k2), 0);
	memset(keys, 0, sizeof(keys));
	assert_int_equal(sms_apikey_list(s, 0, 10, acc_key, keys, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(keys[1].user, "billing");
	assert_int_equal(strlen(keys[1].hash_prefix), 8);
	assert_int_equal(keys[2].scopes, SMS_SCOPE_READ | SMS_SCOPE_WRITE);
	assert_false(keys[1].revoked);
	assert_null(strstr(keys[1].hash_prefix, k1)); /* never the key */

	assert_int_equal(sms_apikey_check(s, k1, &sc, user), 0);
	assert_int_equal(sms_apikey_revoke(s, keys[1].id, "web:admin"), 0);
	assert_int_equal(sms_apikey_check(s, k1, &sc, user), CE_NOT_FOUND);
	assert_int_equal(sms_apikey_check(s, k2, &sc, user), 0); /* the other key still works */
	assert_int_equal(sms_apikey_revoke(s, keys[1].id, "web:admin"), 0); /* twice: no error */
	assert_int_equal(sms_apikey_revoke(s, 9999, "t"), CE_NOT_FOUND);
	assert_int_equal(sms_apikey_revoke(s, 0, "t"), CE_NOT_FOUND);
	memset(keys, 0, sizeof(keys));
	assert_int_equal(sms_apikey_list(s, 0, 10, acc_key, keys, &n), 0);
	assert_true(keys[1].revoked && !keys[2].revoked);
	assert_int_equal(sms_apikey_list(s, keys[1].id, 10, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);

	assert_int_equal(sms_audit_add(s, "web:admin", "panel user add olga role=operator"), 0);
	assert_int_equal(sms_audit_add(s, "web:admin", ""), CE_RANGE);
	assert_int_equal(sms_audit_list(s, 100, count_audit, &na), 0);
	assert_int_equal(na, 3); /* one rename, one revoke (not two), one panel user */
	sms_store_close(s);
}

struct ring_acc {
	unsigned long long last;
	size_t n;
	char first[LOG_RING_LINE_MAX];
};

static void acc_ring(void *ctx, unsigned long long seq, const char *line)
{
	struct ring_acc *a = ctx;

	if (a->n++ == 0)
		snprintf(a->first, sizeof(a->first), "%s", line);
	assert_true(seq > a->last);
	a->last = seq;
}

static void test_log_ring(void **state)
{
	struct ring_acc a = {0};
	FILE *devnull = fopen("/dev/null", "w");
	char big[600];

	(void)state;
	assert_non_null(devnull);
	log_reset();
	log_set_file(devnull);
	log_ring_read(0, acc_ring, &a);
	assert_int_equal(a.n, 0);
	LOG_INFO("t", "line %d", 1);
	LOG_DEBUG("t", "not at this level");
	log_ring_read(0, acc_ring, &a);
	assert_int_equal(a.n, 1);
	assert_non_null(strstr(a.first, "INFO  t: line 1"));
	for (int i = 2; i <= LOG_RING_LINES + 10; i++)
		LOG_WARN("t", "line %d", i);
	memset(&a, 0, sizeof(a));
	log_ring_read(0, acc_ring, &a);
	assert_int_equal(a.n, LOG_RING_LINES); /* the oldest went */
	assert_non_null(strstr(a.first, "line 11"));
	assert_int_equal(a.last, LOG_RING_LINES + 10);
	memset(&a, 0, sizeof(a));
	a.last = LOG_RING_LINES + 7;
	log_ring_read(LOG_RING_LINES + 7, acc_ring, &a); /* only newer than "after" */
	assert_int_equal(a.n, 3);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	LOG_ERR("t", "%s", big); /* cut, not overflowed */
	memset(&a, 0, sizeof(a));
	a.last = LOG_RING_LINES + 10;
	log_ring_read(LOG_RING_LINES + 10, acc_ring, &a);
	assert_int_equal(a.n, 1);
	assert_int_equal(strlen(a.first), LOG_RING_LINE_MAX - 1);
	log_reset();
	fclose(devnull);
}

int main(void)
{
	const struct CMUnitTest store_tests[] = {
	    cmocka_unit_test(test_find_info),
	    cmocka_unit_test(test_rename_keys),
	};
	const struct CMUnitTest ring_tests[] = {
	    cmocka_unit_test(test_log_ring),
	};
	int fails = cmocka_run_group_tests_name("log ring", ring_tests, NULL, NULL);

	(void)tdb_fingerprint; /* sms_testdb.h's, unused here */

	return fails + tdb_run_both("web_admin", store_tests, sizeof(store_tests) / sizeof(store_tests[0]));
}
