/*
 * test_search.c - the SMS text search (store_search.c, schema 5) on both
 * backends: results equal a plain scan's (an oracle in C over every card),
 * the index stays in step with every write path (card add and change,
 * subscriber add and update, the bulk path, CSV import, card and
 * subscriber delete), text under 3 characters, and text that looks like
 * LIKE or FTS5 syntax matched literally.
 */
#include <ctype.h>
#include <sqlite3.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include "lib/util.h"
#include "sms/search.h"
#define SMS_TEST_PG_PORT 5481
#include "sms_testdb.h"

#define BASE 2100000000ull

/* Names and infos with mixed case, non-ASCII letters, and every character
 * that means something to LIKE or to FTS5's query language. */
static const char *const names[] = {
	"Ann Smith", "ANN SMITHSON", "Bob O'Neil", "Zoë Évora", "zoë évora", "Li", "li", "王伟", "50% Off_Ltd",
	"a\"b\"c", "NEAR(x y)", "col:umn", "star*power", "x AND y OR z", "back\\slash", "{name info}", "-minus ^caret",
	"", "Ann", "Smithers",
};
static const char *const infos[] = {
	"Rua Augusta 12, Lisboa", "RUA AUGUSTA 14, LISBOA", "Praça do Giraldo, Évora", "praça do giraldo, évora",
	"100% cotton_shirts", "quote \" inside", "it's 'single'", "Main St. 5 (rear)", "", "NEAR/3 term", "a:b:c",
	"x*y*z", "Lisbon", "ÉVORA", "%_%", "\\\\server\\share",
};

/* The oracle: ASCII-case-insensitive substring, other bytes as they are. */
static bool contains_ascii_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle), h = strlen(hay);

	for (size_t i = 0; n <= h && i <= h - n; i++) {
		size_t k = 0;

		while (k < n && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)needle[k]))
			k++;
		if (k == n)
			return true;
	}
	return false;
}

static size_t chars(const char *t)
{
	size_t n = 0;

	for (; *t; t++)
		n += ((unsigned char)*t & 0xC0) != 0x80;
	return n;
}

static bool eq_ascii_ci(const char *a, const char *b)
{
	return strlen(a) == strlen(b) && contains_ascii_ci(a, b);
}

static bool oracle(const struct sms_card *c, enum sms_search_field f, const char *q)
{
	if (chars(q) < SMS_SEARCH_MIN_CHARS)
		return c->subscriber_id != 0 && eq_ascii_ci(c->name, q);
	if (f == SMS_SEARCH_NAME)
		return contains_ascii_ci(c->name, q);
	if (f == SMS_SEARCH_INFO)
		return contains_ascii_ci(c->info, q);
	return contains_ascii_ci(c->name, q) || contains_ascii_ci(c->info, q);
}

struct serials {
	uint64_t v[16384];
	size_t n;
};

static int keep(void *ctx, const struct sms_card *c)
{
	struct serials *s = ctx;

	assert_true(s->n < 16384);
	s->v[s->n++] = c->serial;
	return 0;
}

struct scan_ctx {
	struct serials *out;
	enum sms_search_field f;
	const char *q;
};

static int scan_one(void *ctx, const struct sms_card *c)
{
	struct scan_ctx *x = ctx;

	if (oracle(c, x->f, x->q))
		return keep(x->out, c);
	return 0;
}

/* Every card, read once per expect_same round (load_all). */
static struct sms_card *all_cards;
static size_t all_n;

static void load_all(struct sms_store *s)
{
	struct serials *ids = calloc(1, sizeof(*ids));
	uint64_t after = 0;
	size_t n;

	assert_non_null(ids);
	free(all_cards);
	all_cards = NULL;
	all_n = 0;
	do {
		size_t before = ids->n;

		assert_int_equal(sms_card_list(s, after, 1000, keep, ids, &n), 0);
		if (ids->n > before)
			after = ids->v[ids->n - 1];
	} while (n == 1000);
	all_cards = calloc(ids->n ? ids->n : 1, sizeof(*all_cards));
	assert_non_null(all_cards);
	for (size_t i = 0; i < ids->n; i++)
		assert_int_equal(sms_card_get(s, ids->v[i], &all_cards[i]), 0);
	all_n = ids->n;
	free(ids);
}

static void scan(struct sms_store *s, enum sms_search_field f, const char *q, struct serials *out)
{
	struct scan_ctx x = { out, f, q };

	(void)s;
	out->n = 0;
	for (size_t i = 0; i < all_n; i++)
		assert_int_equal(scan_one(&x, &all_cards[i]), 0);
}

/* The search, page by page (page cards at a time), into out. */
static void search(struct sms_store *s, enum sms_search_field f, const char *q, size_t page, struct serials *out)
{
	struct sms_card_filter flt = { .state = -1 };
	uint64_t after = 0;
	size_t n;

	out->n = 0;
	do {
		size_t before = out->n;

		assert_int_equal(sms_card_search(s, &flt, f, q, after, page, keep, out, &n), 0);
		assert_int_equal(out->n - before, n);
		if (n)
			after = out->v[out->n - 1];
	} while (n == page);
}

static void expect_same_page(struct sms_store *s, enum sms_search_field f, const char *q, size_t page);

static void expect_same(struct sms_store *s, enum sms_search_field f, const char *q)
{
	expect_same_page(s, f, q, 7);
}

static void expect_same_page(struct sms_store *s, enum sms_search_field f, const char *q, size_t page)
{
	struct serials *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));

	assert_non_null(a);
	assert_non_null(b);
	scan(s, f, q, a);
	search(s, f, q, page, b);
	if (a->n != b->n)
		fail_msg("field %d, text '%s': scan %zu cards, search %zu", (int)f, q, a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i] != b->v[i])
			fail_msg("field %d, text '%s': card %zu differs", (int)f, q, i);
	free(a);
	free(b);
}

static size_t hits(struct sms_store *s, enum sms_search_field f, const char *q)
{
	struct serials *o = calloc(1, sizeof(*o));
	size_t n;

	assert_non_null(o);
	search(s, f, q, 100, o);
	n = o->n;
	free(o);
	return n;
}

/* 3 cards per name x info pair over a few hundred cards; every 7th card
 * has no subscriber. */
static void fill(struct sms_store *s)
{
	size_t nn = sizeof(names) / sizeof(names[0]), ni = sizeof(infos) / sizeof(infos[0]);
	uint64_t serial = BASE;

	for (size_t i = 0; i < nn; i++) {
		for (size_t j = 0; j < ni; j += 3) {
			int64_t id = 0;

			assert_int_equal(sms_subscriber_add(s, names[i], infos[(i + j) % ni], "t", &id), 0);
			for (int k = 0; k < 2; k++) {
				struct sms_card c = { .serial = ++serial };

				assert_int_equal(sms_card_add(s, &c, "t"), 0);
				assert_int_equal(sms_card_set_subscriber(s, c.serial, id, "t"), 0);
			}
			if (serial % 7 == 0) {
				struct sms_card c = { .serial = ++serial };

				assert_int_equal(sms_card_add(s, &c, "t"), 0);
			}
		}
	}
}

static const char *const queries[] = {
	"ann", "ANN", "smith", "Smiths", "augusta", "LISBOA", "lisbo", "évora", "Évora", "ÉVORA", "giraldo",
	"50%", "% o", "_lt", "0% c", "%_%", "\"b\"", "a\"b", "quote \"", "'single'", "it's", "NEAR(", "NEAR/3",
	"col:", ":b:", "star*", "*y*", "AND y", "x AND", "\\sl", "\\\\s", "{name", "info}", "-minus", "^car",
	"王伟", "rua", "zzz", "   ", "St. 5 (", "o'n",
	/* under 3 characters: whole names */
	"li", "LI", "Li", "王", "an", "a", "%", "_",
};

static void test_equals_scan(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	bool indexed = false;
	char why[320];

	assert_int_equal(sms_search_index_state(s, &indexed, why, sizeof(why)), 0);
	assert_true(indexed);
	fill(s);
	load_all(s);
	assert_int_equal(sms_search_index_check(s), 0);
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		expect_same(s, SMS_SEARCH_ANY, queries[i]);
		expect_same(s, SMS_SEARCH_NAME, queries[i]);
		if (chars(queries[i]) >= SMS_SEARCH_MIN_CHARS)
			expect_same(s, SMS_SEARCH_INFO, queries[i]);
	}
	/* the exact name filter (sms_card_find), now from the name index */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct sms_card_filter flt = { .state = -1 };
		struct serials *o;
		size_t n = 0, want = 0;

		if (!names[i][0]) /* "" is no filter */
			continue;
		o = calloc(1, sizeof(*o));

		assert_non_null(o);
		snprintf(flt.name, sizeof(flt.name), "%s", names[i]);
		assert_int_equal(sms_card_find(s, &flt, 0, 10000, keep, o, &n), 0);
		for (size_t k = 0; k < all_n; k++)
			if (all_cards[k].subscriber_id && strcmp(all_cards[k].name, names[i]) == 0)
				assert_int_equal(o->v[want++], all_cards[k].serial);
		assert_int_equal(n, want);
		free(o);
	}
	/* known answers, so the oracle is not wrong the same way */
	assert_true(hits(s, SMS_SEARCH_NAME, "50% off") > 0);
	assert_int_equal(hits(s, SMS_SEARCH_NAME, "50x off"), 0);   /* % is not a wildcard */
	assert_int_equal(hits(s, SMS_SEARCH_NAME, "Off-Ltd"), 0);   /* _ is not a wildcard */
	assert_int_equal(hits(s, SMS_SEARCH_NAME, "évora"), hits(s, SMS_SEARCH_NAME, "zoë évora")); /* É != é */
	assert_int_equal(hits(s, SMS_SEARCH_NAME, "ZOË"), 0); /* ë is not Ë: only ASCII folds */
	assert_true(hits(s, SMS_SEARCH_NAME, "ZOë") > 0);
	assert_true(hits(s, SMS_SEARCH_NAME, "li") > 0);
	assert_int_equal(hits(s, SMS_SEARCH_NAME, "l"), 0); /* no name is "l" */
	sms_store_close(s);
}

/* Fewer than 3 characters and bad text. */
static void test_short_and_bad(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_card_filter f = { .state = -1 };
	struct serials o = { .n = 0 };
	char big[SMS_SEARCH_TEXT_MAX + 2];
	size_t n = 9;

	fill(s);
	assert_int_equal(sms_card_search(s, &f, SMS_SEARCH_INFO, "ab", 0, 10, keep, &o, &n), CE_ARG);
	assert_int_equal(n, 0);
	assert_int_equal(sms_card_search(s, &f, SMS_SEARCH_ANY, "", 0, 10, keep, &o, &n), CE_ARG);
	assert_int_equal(sms_card_search(s, &f, SMS_SEARCH_ANY, "a\tb", 0, 10, keep, &o, &n), CE_RANGE);
	assert_int_equal(sms_card_search(s, &f, SMS_SEARCH_ANY, "\xff\xfe\xfd", 0, 10, keep, &o, &n), CE_RANGE);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(sms_card_search(s, &f, SMS_SEARCH_ANY, big, 0, 10, keep, &o, &n), CE_RANGE);
	assert_int_equal(sms_card_search(s, &f, SMS_SEARCH_ANY, "abc", 0, 0, keep, &o, &n), CE_RANGE);
	/* "Li" finds "Li" and "li", not "Ann Smithers"'s or "Lisboa"'s li */
	assert_int_equal(sms_card_search(s, &f, SMS_SEARCH_ANY, "LI", 0, 100, keep, &o, &n), 0);
	assert_true(n > 0);
	for (size_t i = 0; i < o.n; i++) {
		struct sms_card c;

		assert_int_equal(sms_card_get(s, o.v[i], &c), 0);
		assert_true(strcmp(c.name, "Li") == 0 || strcmp(c.name, "li") == 0);
	}
	/* the filters still apply: a prefix no card has */
	snprintf(f.serial_prefix, sizeof(f.serial_prefix), "9");
	assert_int_equal(sms_card_search(s, &f, SMS_SEARCH_ANY, "ann", 0, 100, keep, &o, &n), 0);
	assert_int_equal(n, 0);
	sms_store_close(s);
}

static void raw_sql(struct backend *be, const char *uri, const char *sql)
{
	if (be == &sqlite_be) {
		sqlite3 *db = NULL;
		char *err = NULL;

		assert_int_equal(sqlite3_open(uri, &db), SQLITE_OK);
		if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
			fail_msg("%s: %s", sql, err ? err : "?");
		sqlite3_close(db);
	} else {
		PGconn *c = PQconnectdb(uri + strlen("postgres:"));
		PGresult *res = PQexec(c, sql);

		if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
			fail_msg("%s: %s", sql, PQerrorMessage(c));
		PQclear(res);
		PQfinish(c);
	}
}

static size_t cand(struct sms_store *s, enum sms_search_field f, const char *q)
{
	size_t n = 99;

	assert_int_equal(sms_search_candidates(s, f, q, 1000, &n), 0);
	return n;
}

/* After each write path the index proposes the new text, no longer the
 * old, and (SQLite) its integrity check against the table passes. */
static void test_sync(void **state)
{
	struct backend *be = *state;
	const char *uri = tdb_fresh(be);
	struct sms_store *s = NULL;
	struct sms_card c = { .serial = BASE + 1 };
	struct sms_card_change ch;
	struct csv_result res;
	struct sms_bulk *b = NULL;
	int64_t id = 0;
	static const char csv[] = "serial_no,name,info\r\n2100000100,Ingrid Csvimport,Rua Csvrow 1\r\n"
				  "2100000001,Renamed Bycsv,\r\n";

	assert_int_equal(sms_store_open(uri, &s), 0);
	/* card add with a name: a new subscriber */
	snprintf(c.name, sizeof(c.name), "Alphonse Cardadd");
	snprintf(c.info, sizeof(c.info), "Avenida Firstinfo 3");
	assert_int_equal(sms_card_add(s, &c, "t"), 0);
	assert_int_equal(cand(s, SMS_SEARCH_NAME, "cardadd"), 1);
	assert_int_equal(hits(s, SMS_SEARCH_INFO, "firstinfo"), 1);
	/* card change: name and info replaced */
	sms_card_change_init(&ch);
	ch.has_name = ch.has_info = true;
	snprintf(ch.name, sizeof(ch.name), "Beatrix Changed");
	snprintf(ch.info, sizeof(ch.info), "Secondinfo street");
	assert_int_equal(sms_card_change(s, c.serial, &ch, "t", NULL), 0);
	assert_int_equal(cand(s, SMS_SEARCH_NAME, "cardadd"), 0);
	assert_int_equal(cand(s, SMS_SEARCH_INFO, "firstinfo"), 0);
	assert_int_equal(hits(s, SMS_SEARCH_ANY, "beatrix"), 1);
	assert_int_equal(hits(s, SMS_SEARCH_ANY, "secondinfo"), 1);
	/* subscriber add and update */
	assert_int_equal(sms_subscriber_add(s, "Cedric Subadd", "Thirdinfo", "t", &id), 0);
	assert_int_equal(cand(s, SMS_SEARCH_ANY, "subadd"), 1);
	assert_int_equal(sms_subscriber_update(s, id, "Cedric Subupd", NULL, "t"), 0);
	assert_int_equal(cand(s, SMS_SEARCH_ANY, "subadd"), 0);
	assert_int_equal(cand(s, SMS_SEARCH_ANY, "subupd"), 1);
	assert_int_equal(cand(s, SMS_SEARCH_INFO, "thirdinfo"), 1); /* kept */
	assert_int_equal(hits(s, SMS_SEARCH_ANY, "subupd"), 0);     /* no card yet */
	assert_int_equal(sms_card_set_subscriber(s, c.serial, id, "t"), 0);
	assert_int_equal(hits(s, SMS_SEARCH_ANY, "subupd"), 1);
	assert_int_equal(hits(s, SMS_SEARCH_ANY, "beatrix"), 0);
	/* the bulk path (multi-row INSERTs) */
	assert_int_equal(sms_tx_begin(s), 0);
	assert_int_equal(sms_bulk_new(s, "t", &b), 0);
	for (int i = 0; i < 70; i++) {
		struct sms_card *bc = calloc(1, sizeof(*bc));

		assert_non_null(bc);
		bc->serial = BASE + 1000 + (uint64_t)i;
		snprintf(bc->name, sizeof(bc->name), "Bulkrow %d", i);
		snprintf(bc->info, sizeof(bc->info), "Bulkstreet %d", i % 2);
		assert_int_equal(sms_bulk_card_add(b, bc, NULL, 0), 0);
		free(bc);
	}
	assert_int_equal(sms_bulk_flush(b), 0);
	sms_bulk_free(b);
	assert_int_equal(sms_tx_end(s, 0), 0);
	assert_int_equal(cand(s, SMS_SEARCH_NAME, "bulkrow"), 70);
	assert_int_equal(hits(s, SMS_SEARCH_INFO, "bulkstreet 1"), 35);
	assert_int_equal(hits(s, SMS_SEARCH_NAME, "bulkrow 42"), 1);
	/* CSV import: a new card, and a change of card 1's subscriber */
	assert_int_equal(csv_import(s, csv, strlen(csv), "t", NULL, NULL, &res), 0);
	assert_int_equal(hits(s, SMS_SEARCH_ANY, "csvimport"), 1);
	assert_int_equal(hits(s, SMS_SEARCH_ANY, "csvrow"), 1);
	assert_int_equal(hits(s, SMS_SEARCH_ANY, "bycsv"), 1);
	assert_int_equal(cand(s, SMS_SEARCH_ANY, "subupd"), 0);
	assert_int_equal(sms_search_index_check(s), 0);
	/* card delete: the card goes from the results */
	assert_int_equal(sms_card_delete(s, BASE + 1042, "t"), 0);
	assert_int_equal(hits(s, SMS_SEARCH_NAME, "bulkrow 42"), 0);
	assert_int_equal(hits(s, SMS_SEARCH_NAME, "bulkrow 41"), 1);
	sms_store_close(s);
	/* a subscriber deleted by hand (no store call does): the index follows */
	raw_sql(be, uri, "UPDATE cards SET subscriber_id = NULL WHERE serial = 2100001041;"
			 "DELETE FROM subscribers WHERE name = 'Bulkrow 41'");
	assert_int_equal(sms_store_open(uri, &s), 0);
	assert_int_equal(cand(s, SMS_SEARCH_NAME, "bulkrow 41"), 0);
	assert_int_equal(cand(s, SMS_SEARCH_NAME, "bulkrow 40"), 1);
	assert_int_equal(sms_search_index_check(s), 0);
	sms_store_close(s);
}

/* A schema-4 base (no search indexes) with subscribers migrates to 5 and
 * finds them; on SQLite a damaged FTS table is found and rebuilt. */
static void test_migrate(void **state)
{
	struct backend *be = *state;
	const char *uri = tdb_fresh(be);
	struct sms_store *s = NULL;
	int v = 0;

	assert_int_equal(sms_store_open(uri, &s), 0);
	fill(s);
	sms_store_close(s);
	if (be == &sqlite_be)
		raw_sql(be, uri, "DROP TRIGGER subscribers_fts_ai; DROP TRIGGER subscribers_fts_ad;"
				 "DROP TRIGGER subscribers_fts_au; DROP TABLE subscribers_fts;"
				 "DROP INDEX subscribers_name_nocase;"
				 "DROP INDEX cards_subscriber; DROP INDEX subscribers_name;"
				 "DELETE FROM schema_version WHERE version = 5");
	else
		raw_sql(be, uri, "DROP INDEX subscribers_name_trgm; DROP INDEX subscribers_info_trgm;"
				 "DROP INDEX subscribers_name_fold; DROP INDEX cards_subscriber; DROP INDEX subscribers_name;"
				 "DELETE FROM schema_version WHERE version = 5");
	assert_int_equal(sms_store_open(uri, &s), 0);
	assert_int_equal(sms_store_schema_version(s, &v), 0);
	assert_int_equal(v, 5);
	assert_true(cand(s, SMS_SEARCH_ANY, "augusta") > 0);
	load_all(s);
	expect_same(s, SMS_SEARCH_ANY, "augusta");
	expect_same(s, SMS_SEARCH_NAME, "li");
	assert_int_equal(sms_search_index_check(s), 0);
	sms_store_close(s);
	if (be == &sqlite_be) {
		/* an update the index missed: the check finds it, a build mends it */
		raw_sql(be, uri, "DROP TRIGGER subscribers_fts_au; UPDATE subscribers SET name = 'Quentin Missed' WHERE id = 1");
		assert_int_equal(sms_store_open(uri, &s), 0);
		assert_int_not_equal(sms_search_index_check(s), 0);
		assert_int_equal(sms_search_index_build(s), 0);
		assert_int_equal(sms_search_index_check(s), 0);
		load_all(s);
		expect_same(s, SMS_SEARCH_ANY, "quentin");
		assert_int_equal(hits(s, SMS_SEARCH_ANY, "quentin"), 2);
		sms_store_close(s);
	}
}

/* PostgreSQL without the rights to create pg_trgm: the migration goes on
 * with a warning, the state says why, and searches are still right (a
 * scan); the owner creates the extension, search-index --build indexes. */
static void test_pg_no_extension(void **state)
{
	struct backend *be = *state;
	const char *uri;
	char who[1200], why[320];
	struct sms_store *s = NULL;
	bool indexed = true;

	if (be != &pg_be)
		skip();
	uri = tdb_fresh(be);
	raw_sql(be, uri, "DROP EXTENSION IF EXISTS pg_trgm CASCADE;"
			 "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'plain') THEN"
			 " CREATE ROLE plain LOGIN; END IF; END $$;"
			 "REVOKE CREATE ON DATABASE postgres FROM plain; REVOKE CREATE ON DATABASE postgres FROM PUBLIC;"
			 "GRANT ALL ON SCHEMA public TO plain");
	snprintf(who, sizeof(who), "%s", uri);
	{
		char *u = strstr(who, "user=castellan");

		assert_non_null(u);
		memcpy(u, "user=plain    ", 14);
	}
	assert_int_equal(sms_store_open(who, &s), 0);
	assert_int_equal(sms_search_index_state(s, &indexed, why, sizeof(why)), 0);
	assert_false(indexed);
	assert_non_null(strstr(why, "CREATE EXTENSION pg_trgm"));
	fill(s);
	load_all(s);
	expect_same(s, SMS_SEARCH_ANY, "augusta");
	expect_same(s, SMS_SEARCH_INFO, "50%");
	assert_int_not_equal(sms_search_index_build(s), 0);
	raw_sql(be, uri, "CREATE EXTENSION pg_trgm");
	assert_int_equal(sms_search_index_build(s), 0);
	assert_int_equal(sms_search_index_state(s, &indexed, why, sizeof(why)), 0);
	assert_true(indexed);
	expect_same(s, SMS_SEARCH_ANY, "augusta");
	sms_store_close(s);
	raw_sql(be, uri, "DROP SCHEMA public CASCADE; CREATE SCHEMA public; DROP OWNED BY plain; DROP ROLE plain;"
			 "GRANT CREATE ON DATABASE postgres TO PUBLIC");
}

/* More candidates than the index-first plan takes (a common word): the
 * serial-order plan gives the same pages. */
static void test_dense(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_bulk *b = NULL;

	assert_int_equal(sms_tx_begin(s), 0);
	assert_int_equal(sms_bulk_new(s, "t", &b), 0);
	for (int i = 0; i < 10600; i++) { /* over store_search.c's SEARCH_DENSE */
		struct sms_card *c = calloc(1, sizeof(*c));

		assert_non_null(c);
		c->serial = BASE + (uint64_t)i + 1;
		snprintf(c->name, sizeof(c->name), "%s %d", i % 3 ? "Common Name" : "Other", i);
		snprintf(c->info, sizeof(c->info), "%s", i % 5 ? "Rua Comum" : "RUA COMUM 2");
		assert_int_equal(sms_bulk_card_add(b, c, NULL, 0), 0);
		free(c);
	}
	assert_int_equal(sms_bulk_flush(b), 0);
	sms_bulk_free(b);
	assert_int_equal(sms_tx_end(s, 0), 0);
	assert_int_equal(cand(s, SMS_SEARCH_INFO, "comum"), 1000); /* at most the limit asked */
	{
		size_t n = 0;

		assert_int_equal(sms_search_candidates(s, SMS_SEARCH_INFO, "comum", 20000, &n), 0);
		assert_int_equal(n, 10600);
	}
	load_all(s);
	expect_same_page(s, SMS_SEARCH_INFO, "comum", 997);
	expect_same_page(s, SMS_SEARCH_ANY, "common name 1", 997);
	expect_same_page(s, SMS_SEARCH_NAME, "other", 997);
	sms_store_close(s);
}

/* A statement past its deadline stops with CE_TIMEOUT (SQLite's progress
 * handler; PostgreSQL's statement_timeout is set the same way), and the
 * connection works again once the deadline is removed. */
static void test_deadline(void **state)
{
	struct backend *be = *state;
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_card_filter f = { .state = -1 };
	struct sms_bulk *b = NULL;
	size_t n = 0;

	assert_int_equal(sms_tx_begin(s), 0);
	assert_int_equal(sms_bulk_new(s, "t", &b), 0);
	for (int i = 0; i < 3000; i++) {
		struct sms_card *c = calloc(1, sizeof(*c));

		assert_non_null(c);
		c->serial = BASE + (uint64_t)i + 1;
		snprintf(c->name, sizeof(c->name), "Person %d", i);
		snprintf(c->info, sizeof(c->info), "Street %d", i);
		assert_int_equal(sms_bulk_card_add(b, c, NULL, 0), 0);
		free(c);
	}
	assert_int_equal(sms_bulk_flush(b), 0);
	sms_bulk_free(b);
	assert_int_equal(sms_tx_end(s, 0), 0);
	if (be == &sqlite_be) {
		/* a deadline already past: the scan of 3000 cards cannot finish */
		assert_int_equal(sms_store_set_deadline(s, now_mono_ms()), 0);
		assert_int_equal(sms_card_search(s, &f, SMS_SEARCH_INFO, "street", 0, 10000, NULL, NULL, &n), CE_TIMEOUT);
	}
	assert_int_equal(sms_store_set_deadline(s, now_mono_ms() + 600000), 0);
	assert_int_equal(sms_card_search(s, &f, SMS_SEARCH_INFO, "street 299", 0, 100, NULL, NULL, &n), 0);
	assert_int_equal(n, 11); /* 299, 2990..2999 */
	assert_int_equal(sms_store_set_deadline(s, 0), 0);
	assert_int_equal(sms_card_search(s, &f, SMS_SEARCH_ANY, "person 1", 0, 10000, NULL, NULL, &n), 0);
	assert_int_equal(n, 1111);
	sms_store_close(s);
}

/* ---- the search workers (search.h) ----------------------------------------- */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started, release;
	int ran;
};

struct gjob {
	struct sms_search_job job;
	struct gate *g;
};

static void gate_run(struct sms_store *s, struct sms_search_job *j)
{
	struct gate *g = ((struct gjob *)j)->g;

	(void)s;
	pthread_mutex_lock(&g->mu);
	g->started = true;
	g->ran++;
	pthread_cond_broadcast(&g->cv);
	while (!g->release)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static struct gjob *read_done(int fd)
{
	struct gjob *j = NULL;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, 60000), 1);
	assert_int_equal(read(fd, &j, sizeof(j)), (ssize_t)sizeof(j));
	return j;
}

static void *free_pool(void *p)
{
	sms_search_pool_free(p);
	return NULL;
}

/* One worker, one place in the queue: a third search is refused at once;
 * a queued one past its deadline is not run; a queued one at shutdown
 * comes back cancelled. No timing is asserted: the worker is held by a
 * condition variable. */
static void test_pool(void **state)
{
	struct sms_search_limits lim = { .workers = 1, .queue = 1, .deadline_ms = 1 };
	struct sms_search_pool *p = NULL;
	struct gate g = { .ran = 0 };
	struct gjob j[4];
	struct sms_search_stats st;
	int pfd[2];
	char uri[300];

	(void)state;
	snprintf(uri, sizeof(uri), "%s/pool.db", sqlite_dir);
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	assert_int_equal(pipe(pfd), 0);
	for (int i = 0; i < 4; i++) {
		memset(&j[i], 0, sizeof(j[i]));
		j[i].job.run = gate_run;
		j[i].job.notify_fd = pfd[1];
		j[i].g = &g;
	}
	lim.deadline_ms = 600000;
	assert_int_equal(sms_search_pool_new(uri, &lim, &p), 0);
	assert_int_equal(sms_search_submit(p, &j[0].job), 0);
	pthread_mutex_lock(&g.mu);
	while (!g.started)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	assert_int_equal(sms_search_submit(p, &j[1].job), 0);          /* waits */
	assert_int_equal(sms_search_submit(p, &j[2].job), CE_LIMIT);   /* over the bound */
	j[1].job.deadline_ms = 1;                                      /* long past: expires in the queue */
	pthread_mutex_lock(&g.mu);
	g.release = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	assert_ptr_equal(read_done(pfd[0]), &j[0]);
	assert_ptr_equal(read_done(pfd[0]), &j[1]);
	assert_true(j[1].job.expired);
	assert_false(j[0].job.expired);
	assert_int_equal(g.ran, 1);
	sms_search_pool_stats(p, &st);
	assert_int_equal(st.run, 1);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.expired, 1);
	/* shutdown with one running and one queued: the queued one comes back cancelled */
	g.release = false;
	g.started = false;
	assert_int_equal(sms_search_submit(p, &j[2].job), 0);
	pthread_mutex_lock(&g.mu);
	while (!g.started)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	assert_int_equal(sms_search_submit(p, &j[3].job), 0);
	{
		pthread_t t;

		/* free waits for the running job: release it from here once the queued one came back */
		assert_int_equal(pthread_create(&t, NULL, free_pool, p), 0);
		assert_ptr_equal(read_done(pfd[0]), &j[3]);
		assert_true(j[3].job.cancelled);
		pthread_mutex_lock(&g.mu);
		g.release = true;
		pthread_cond_broadcast(&g.cv);
		pthread_mutex_unlock(&g.mu);
		assert_ptr_equal(read_done(pfd[0]), &j[2]);
		assert_false(j[2].job.cancelled);
		pthread_join(t, NULL);
	}
	close(pfd[0]);
	close(pfd[1]);
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.mu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equals_scan), cmocka_unit_test(test_short_and_bad), cmocka_unit_test(test_sync),
		cmocka_unit_test(test_migrate),     cmocka_unit_test(test_dense),         cmocka_unit_test(test_pg_no_extension),
		cmocka_unit_test(test_deadline),
	};

	int fails;

	(void)tdb_fingerprint;
	const struct CMUnitTest pool[] = { cmocka_unit_test(test_pool) };

	fails = tdb_run_both("search", tests, sizeof(tests) / sizeof(tests[0]));
	snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/castellan-search-pool-XXXXXX");
	if (!mkdtemp(sqlite_dir))
		return 1;
	fails += cmocka_run_group_tests_name("search workers", pool, NULL, NULL);
	(void)tu_run("rm -rf %s", sqlite_dir);
	free(all_cards);
	return fails;
}
