/*
 * test_bulk.c - the SMS store's fast paths (src/sms/store_bulk.c): a CSV
 * import of new cards through the bulk path gives exactly the cards,
 * subscribers, subscriptions and audit rows the per-card path gives (row
 * counts chosen to use the 64-, 8- and 1-row statements), new and existing
 * cards mixed in one batch, a failure after bulk rows were written rolls
 * all of them back, a table of bad bulk calls, sms_cards_exist and
 * sms_card_get_subs against sms_card_get + sms_subscription_list. On
 * SQLite and on a real PostgreSQL server (sms_testdb.h).
 */
#include <openssl/sha.h>
#define SMS_TEST_PG_PORT 5437
#include "sms_testdb.h"

#define NCARDS 150 /* 2 x 64 + 2 x 8 + 6 x 1 */
#define BASE 2100000000ull

/* What the generated file says of card i. */
static void expect_card(size_t i, struct sms_card *c, bool *high)
{
	memset(c, 0, sizeof(*c));
	c->serial = BASE + i;
	if (i % 3 != 0) { /* every third card without a subscriber */
		snprintf(c->name, sizeof(c->name), "Sub %zu", i);
		snprintf(c->info, sizeof(c->info), "Street %zu, \"Town\"", i);
	}
	snprintf(c->chip_id, sizeof(c->chip_id), "CHIP%04zX", i);
	c->state = (enum sms_card_state)(i % 3);
	c->pair = i & 1;
	c->start = 1700000000 + (int64_t)i;
	c->finish = 1800000000;
	c->access_criteria = (uint32_t)(i * 2654435761u) & 0x800000FFu;
	*high = i % 4 == 0; /* packages 40 and 41 (and 40 listed twice) */
}

static char *make_file(size_t n, size_t *len)
{
	size_t cap = n * 256 + 256;
	char *f = malloc(cap);

	assert_non_null(f);
	*len = (size_t)snprintf(f, cap, "serial_no,name,info,access_criteria,pair,start,finish,chip_id,state,packages\n");
	for (size_t i = 0; i < n; i++) {
		struct sms_card c;
		bool high;

		expect_card(i, &c, &high);
		*len += (size_t)snprintf(f + *len, cap - *len, "%llu,%s,\"%s\",%08X,%d,%lld,%lld,%s,%d,%s\n",
					 (unsigned long long)c.serial, c.name, c.name[0] ? "Street x, \"\"Town\"\"" : "",
					 c.access_criteria, (int)c.pair, (long long)c.start, (long long)c.finish, c.chip_id,
					 (int)c.state, high ? "40;sports;40" : "");
	}
	return f;
}

struct audit_count {
	size_t n, adds;
	char summary[512];
};

static int count_audit(void *ctx, const struct sms_audit *a)
{
	struct audit_count *ac = ctx;

	ac->n++;
	if (strncmp(a->what, "card add ", 9) == 0)
		ac->adds++;
	if (strncmp(a->what, "csv import ", 11) == 0)
		snprintf(ac->summary, sizeof(ac->summary), "%s", a->what);
	return 0;
}

static void seed_packages(struct sms_store *s)
{
	assert_int_equal(sms_package_add(s, 40, "news", "t"), 0);
	assert_int_equal(sms_package_add(s, 41, "sports", "t"), 0);
}

static void test_bulk_import(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_subscription subs[64], ref[64];
	struct audit_count ac = { 0 };
	struct csv_result res;
	uint8_t h[SHA256_DIGEST_LENGTH];
	char hex[65], want[128];
	size_t len, n, nref;
	char *f;

	seed_packages(s);
	f = make_file(NCARDS, &len);
	assert_int_equal(csv_import(s, f, len, "bulk", NULL, NULL, &res), 0);
	assert_int_equal(res.added, NCARDS);
	assert_int_equal(res.updated, 0);
	for (size_t i = 0; i < NCARDS; i++) {
		struct sms_card want_c, got, plain;
		bool high;
		size_t k = 0;

		expect_card(i, &want_c, &high);
		assert_int_equal(sms_card_get_subs(s, BASE + i, &got, subs, 64, &n), 0);
		assert_int_equal(sms_card_get(s, BASE + i, &plain), 0);
		assert_memory_equal(&got, &plain, sizeof(got));
		assert_int_equal(got.access_criteria, want_c.access_criteria);
		assert_string_equal(got.chip_id, want_c.chip_id);
		assert_string_equal(got.name, want_c.name);
		assert_string_equal(got.info, want_c.name[0] ? "Street x, \"Town\"" : "");
		assert_true((got.subscriber_id != 0) == (want_c.name[0] != 0));
		assert_int_equal(got.state, want_c.state);
		assert_int_equal(got.pair, want_c.pair);
		assert_int_equal(got.start, want_c.start);
		assert_int_equal(got.finish, want_c.finish);
		/* Every subscription with the card's period; 40 and 41 once each. */
		assert_int_equal(sms_subscription_list(s, BASE + i, ref, 64, &nref), 0);
		assert_int_equal(n, nref);
		for (size_t j = 0; j < n; j++) {
			assert_int_equal(subs[j].serial, ref[j].serial);
			assert_int_equal(subs[j].package, ref[j].package);
			assert_int_equal(subs[j].start, ref[j].start);
			assert_int_equal(subs[j].finish, ref[j].finish);
		}
		for (unsigned b = 0; b < 32; b++)
			if (want_c.access_criteria >> b & 1)
				k++;
		assert_int_equal(n, k + (high ? 2 : 0));
		for (size_t j = 0; j < n; j++) {
			assert_int_equal(subs[j].start, want_c.start);
			assert_int_equal(subs[j].finish, want_c.finish);
		}
	}
	/* Subscriber ids are distinct: 100 named cards, 100 subscribers. */
	{
		size_t ns = 0;

		assert_int_equal(sms_subscriber_list(s, NULL, 0, 10000, NULL, NULL, &ns), 0);
		assert_int_equal(ns, NCARDS - NCARDS / 3);
	}
	/* One audit row per card, and one summary naming the file's SHA-256. */
	assert_int_equal(sms_audit_list(s, 100000, count_audit, &ac), 0);
	assert_int_equal(ac.adds, NCARDS);
	SHA256((const unsigned char *)f, len, h);
	hex_encode(h, sizeof(h), hex);
	snprintf(want, sizeof(want), "csv import %d rows (%d added, 0 updated) sha256=%s", NCARDS, NCARDS, hex);
	assert_string_equal(ac.summary, want);
	/* Importing the same file again: all updates, nothing added. */
	assert_int_equal(csv_import(s, f, len, "bulk", NULL, NULL, &res), 0);
	assert_int_equal(res.added, 0);
	assert_int_equal(res.updated, NCARDS);
	free(f);
	sms_store_close(s);
}

/* New and existing cards in the same batches; then a file whose row 100
 * fails after 64 new cards went through the bulk statements: all of the
 * file is rolled back. */
static void test_bulk_mixed_rollback(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_card c = { .serial = BASE + 5, .start = 1700000000, .finish = 1800000000 };
	struct csv_result res;
	char before[65], after[65];
	size_t len = 0, cap = 64 * 1024;
	char *f = malloc(cap);
	bool ex[3];
	uint64_t q[3] = { BASE + 5, BASE + 6, 0 };

	assert_non_null(f);
	seed_packages(s);
	assert_int_equal(sms_card_add(s, &c, "t"), 0);
	len = (size_t)snprintf(f, cap, "serial_no,name,finish,packages\n");
	for (size_t i = 0; i < 10; i++)
		len += (size_t)snprintf(f + len, cap - len, "%llu,N%zu,1900000000,news\n", BASE + i, i);
	assert_int_equal(csv_import(s, f, len, "t", NULL, NULL, &res), 0);
	assert_int_equal(res.added, 9);
	assert_int_equal(res.updated, 1);
	assert_int_equal(sms_card_get(s, BASE + 5, &c), 0);
	assert_string_equal(c.name, "N5");
	assert_int_equal(c.start, 1700000000);
	assert_int_equal(c.finish, 1900000000);
	assert_int_equal(sms_cards_exist(s, q, 3, ex), 0);
	assert_true(ex[0] && ex[1] && !ex[2]);

	tdb_fingerprint(s, before);
	len = (size_t)snprintf(f, cap, "serial_no,name,finish,packages\n");
	for (size_t i = 100; i < 198; i++) /* lines 2..99: new cards */
		len += (size_t)snprintf(f + len, cap - len, "%llu,M%zu,1900000000,41\n", BASE + i, i);
	/* line 100: card BASE+5 (start 1700000000) to finish before it, with a package >= 32 */
	len += (size_t)snprintf(f + len, cap - len, "%llu,X,1600000000,40\n", BASE + 5);
	len += (size_t)snprintf(f + len, cap - len, "%llu,Y,1900000000,\n", BASE + 500);
	assert_int_equal(csv_import(s, f, len, "t", NULL, NULL, &res), CE_RANGE);
	assert_int_equal(res.line, 100);
	assert_non_null(strstr(res.why, "refused by the database"));
	assert_int_equal(res.added, 0);
	tdb_fingerprint(s, after);
	assert_string_equal(before, after);
	assert_int_equal(sms_card_get(s, BASE + 100, &c), CE_NOT_FOUND);
	/* The store works afterwards (no transaction left open). */
	assert_int_equal(sms_card_set_state(s, BASE + 5, SMS_CARD_BLOCKED, "t"), 0);
	free(f);
	sms_store_close(s);
}

/* Bad bulk calls: refused at once, nothing queued; a duplicate serial
 * fails at flush and the caller's rollback leaves nothing. */
static void test_bulk_bad(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_bulk *b = NULL;
	struct sms_card ok = { .serial = BASE, .start = 10, .finish = 20 };
	static const uint32_t p40[] = { 40 }, p_big[] = { 70000 };
	char before[65], after[65];
	struct {
		struct sms_card c;
		const uint32_t *pk;
		size_t npk;
		int err;
	} cases[] = {
		{ { .serial = 0 }, NULL, 0, CE_RANGE },
		{ { .serial = (uint64_t)INT64_MAX + 1 }, NULL, 0, CE_RANGE },
		{ { .serial = BASE + 1, .state = (enum sms_card_state)3 }, NULL, 0, CE_RANGE },
		{ { .serial = BASE + 2, .start = 20, .finish = 10 }, p40, 1, CE_RANGE },
		{ { .serial = BASE + 3, .start = -1, .finish = 10 }, p40, 1, CE_RANGE },
		{ { .serial = BASE + 4 }, p_big, 1, CE_RANGE },
	};
	struct sms_card c;

	seed_packages(s);
	assert_int_equal(sms_card_add(s, &ok, "t"), 0);
	assert_int_equal(sms_bulk_new(s, "t", &b), CE_STATE); /* outside sms_tx_begin */
	assert_null(b);
	tdb_fingerprint(s, before);
	assert_int_equal(sms_tx_begin(s), 0);
	assert_int_equal(sms_bulk_new(s, "t", &b), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (sms_bulk_card_add(b, &cases[i].c, cases[i].pk, cases[i].npk) != cases[i].err)
			fail_msg("case %zu", i);
	assert_int_equal(sms_bulk_flush(b), 0); /* nothing was queued */
	assert_int_equal(sms_card_get(s, BASE + 1, &c), CE_NOT_FOUND);
	/* ok as a new card: it exists, so the flush is refused. */
	ok.serial = BASE + 7;
	assert_int_equal(sms_bulk_card_add(b, &ok, p40, 1), 0);
	ok.serial = BASE;
	assert_int_equal(sms_bulk_card_add(b, &ok, NULL, 0), 0);
	assert_int_equal(sms_bulk_flush(b), CE_EXISTS);
	sms_bulk_free(b);
	assert_int_equal(sms_tx_end(s, CE_EXISTS), CE_EXISTS);
	tdb_fingerprint(s, after);
	assert_string_equal(before, after);
	assert_int_equal(sms_card_get(s, BASE + 7, &c), CE_NOT_FOUND);
	assert_int_equal(sms_audit_add(s, "t", ""), CE_RANGE);
	assert_int_equal(sms_audit_add(s, "t", "bad\x01"), CE_RANGE);
	sms_store_close(s);
}

/* sms_card_get_subs: one query, the same answer as the two calls. */
static void test_get_subs(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_card c = { .serial = BASE, .start = 100, .finish = 200 }, got, plain;
	struct sms_subscription subs[4];
	struct sms_card_change ch = { .has_ac = true, .access_criteria = 0x80000005u, .has_name = true };
	size_t n = 99;

	seed_packages(s);
	assert_int_equal(sms_card_get_subs(s, BASE, &got, subs, 4, &n), CE_NOT_FOUND);
	assert_int_equal(n, 0);
	assert_int_equal(sms_card_get_subs(s, 0, &got, subs, 4, &n), CE_NOT_FOUND);
	assert_int_equal(sms_card_add(s, &c, "t"), 0);
	assert_int_equal(sms_card_get_subs(s, BASE, &got, subs, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(got.access_criteria, 0);
	snprintf(ch.name, sizeof(ch.name), "Zoe");
	assert_int_equal(sms_card_change(s, BASE, &ch, "t", NULL), 0);
	{
		struct sms_subscription sub = { BASE, 41, 150, 160 };

		assert_int_equal(sms_subscribe(s, &sub, "t"), 0);
	}
	assert_int_equal(sms_card_get_subs(s, BASE, &got, subs, 4, &n), 0);
	assert_int_equal(sms_card_get(s, BASE, &plain), 0);
	assert_memory_equal(&got, &plain, sizeof(got));
	assert_string_equal(got.name, "Zoe");
	assert_int_equal(n, 4);
	assert_int_equal(subs[0].package, 0);
	assert_int_equal(subs[1].package, 2);
	assert_int_equal(subs[2].package, 31);
	assert_int_equal(subs[3].package, 41);
	assert_int_equal(subs[3].start, 150);
	/* More subscriptions than room: the first ones, the full mask. */
	assert_int_equal(sms_card_get_subs(s, BASE, &got, subs, 2, &n), CE_OVERFLOW);
	assert_int_equal(n, 2);
	assert_int_equal(got.access_criteria, 0x80000005u);
	assert_int_equal(subs[1].package, 2);
	sms_store_close(s);
}

int main(void)
{
	const struct CMUnitTest store[] = {
		cmocka_unit_test(test_bulk_import),
		cmocka_unit_test(test_bulk_mixed_rollback),
		cmocka_unit_test(test_bulk_bad),
		cmocka_unit_test(test_get_subs),
	};

	return tdb_run_both("bulk", store, sizeof(store) / sizeof(store[0]));
}
