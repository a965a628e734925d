/*
 * test_sms.c - the SMS store and the free CAS's GET API.
 *
 * The same store and HTTP tests run twice: against SQLite (a fresh file per
 * test) and against a real PostgreSQL server that this binary starts
 * (initdb into a temp dir, pg_ctl on a unix socket there; as user postgres
 * when run as root), or the one named by CASTELLAN_PG_URI. Without
 * PostgreSQL binaries the PostgreSQL tests are skipped with a message.
 * HTTP tests speak raw HTTP/1.0 over a real socket to the evhttp server.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#define SMS_TEST_PG_PORT 5433
#include "sms_testdb.h"
#include "sms/store.h"
#include "sms/getapi.h"
#include "sms/http.h"

/* ---- backends: sms_testdb.h (SQLite files, a PostgreSQL server of ours) ---- */

/* Run one SQL text directly (not through the store), for tests that need
 * to set the database up in a way the API refuses. */
static void raw_sql(struct backend *be, const char *uri, const char *sql)
{
	if (be == &sqlite_be) {
		sqlite3 *db = NULL;

		assert_int_equal(sqlite3_open(uri, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	} else {
		PGconn *c = PQconnectdb(uri + strlen("postgres:"));
		PGresult *res = PQexec(c, sql);

		assert_true(PQresultStatus(res) == PGRES_COMMAND_OK);
		PQclear(res);
		PQfinish(c);
	}
}

static struct sms_store *open_fresh(void **state, const char **uri_out)
{
	struct backend *be = *state;
	const char *uri = tdb_fresh(be);
	struct sms_store *s = NULL;

	assert_int_equal(sms_store_open(uri, &s), 0);
	assert_string_equal(sms_store_backend(s), be->name);
	if (uri_out)
		*uri_out = uri;
	return s;
}

static void add_card(struct sms_store *s, uint64_t serial)
{
	struct sms_card c = { .serial = serial };

	snprintf(c.chip_id, sizeof(c.chip_id), "chip-%llu", (unsigned long long)serial);
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
}

/* ---- store tests ------------------------------------------------------- */

static void test_migrations(void **state)
{
	const char *uri;
	struct sms_store *s = open_fresh(state, &uri);
	size_t n = 0;
	int v = 0;
	struct sms_package p;

	assert_int_equal(sms_store_schema_version(s, &v), 0);
	assert_int_equal(v, SMS_SCHEMA_VERSION);
	assert_int_equal(sms_package_count(s, &n), 0);
	assert_int_equal(n, 32); /* the mask view needs packages 0..31 */
	assert_int_equal(sms_package_get(s, 31, &p), 0);
	assert_string_equal(p.name, "package 31");
	add_card(s, 2100000000);
	sms_store_close(s);

	/* Reopening migrates nothing and keeps the data. */
	assert_int_equal(sms_store_open(uri, &s), 0);
	assert_int_equal(sms_store_schema_version(s, &v), 0);
	assert_int_equal(v, SMS_SCHEMA_VERSION);
	assert_int_equal(sms_package_count(s, &n), 0);
	assert_int_equal(n, 32);
	{
		struct sms_card c;

		assert_int_equal(sms_card_get(s, 2100000000, &c), 0);
	}
	sms_store_close(s);

	/* SQLite: a version-2 base (cards keyed by an autoindex, subscriptions
	 * with a rowid: the layout as released) moves to version 3 with its
	 * rows, and its foreign keys still hold. */
	if (*state == &sqlite_be) {
		struct sms_subscription sub = { .serial = 2100000001, .package = 5, .start = 10, .finish = 20 };
		struct sms_subscription got[4];
		size_t ns = 0;
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;

		raw_sql(*state, uri,
			"PRAGMA foreign_keys=OFF; DROP TABLE subscriptions; DROP TABLE cards;"
			"CREATE TABLE cards (serial BIGINT PRIMARY KEY CHECK (serial > 0),"
			" chip_id TEXT NOT NULL DEFAULT '', state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 2),"
			" pair INTEGER NOT NULL DEFAULT 0 CHECK (pair IN (0, 1)), subscriber_id BIGINT REFERENCES subscribers(id),"
			" start_time BIGINT NOT NULL DEFAULT 0, finish_time BIGINT NOT NULL DEFAULT 0,"
			" created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
			"CREATE TABLE subscriptions (card BIGINT NOT NULL REFERENCES cards(serial) ON DELETE CASCADE,"
			" package INTEGER NOT NULL REFERENCES packages(id), start_time BIGINT NOT NULL,"
			" finish_time BIGINT NOT NULL, PRIMARY KEY (card, package));"
			"INSERT INTO cards (serial, chip_id, created_ms, updated_ms) VALUES (2100000001, 'C1', 1, 1),"
			" (2100000002, 'C2', 1, 1);"
			"INSERT INTO subscriptions VALUES (2100000001, 5, 10, 20), (2100000001, 7, 10, 30),"
			" (2100000002, 5, 10, 40);"
			"DROP TABLE panel_users; DELETE FROM schema_version WHERE version >= 3;");
		/* migrations 3, 4 and 5 run again (4 finds its columns and tables there) */
		assert_int_equal(sms_store_open(uri, &s), 0);
		assert_int_equal(sms_store_schema_version(s, &v), 0);
		assert_int_equal(v, SMS_SCHEMA_VERSION);
		assert_int_equal(sms_subscription_list(s, 2100000001, got, 4, &ns), 0);
		assert_int_equal(ns, 2);
		assert_int_equal(got[1].package, 7);
		assert_int_equal(got[1].finish, 30);
		assert_int_equal(sms_subscribe(s, &sub, "test"), 0);
		sms_store_close(s);
		assert_int_equal(sqlite3_open(uri, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = 'subscriptions'", -1,
						    &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_non_null(strstr((const char *)sqlite3_column_text(st, 0), "WITHOUT ROWID"));
		sqlite3_finalize(st);
		assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys=ON; DELETE FROM cards WHERE serial = 2100000001",
					      NULL, NULL, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM subscriptions", -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 1); /* the cascade still reaches subscriptions */
		sqlite3_finalize(st);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_v2'", -1,
						    &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 0);
		sqlite3_finalize(st);
		sqlite3_close(db);
	}

	/* A database from a newer build is refused, not touched. */
	raw_sql(*state, uri, "INSERT INTO schema_version (version, applied_ms) VALUES (99, 0)");
	assert_int_equal(sms_store_open(uri, &s), CE_UNSUPPORTED);
	assert_null(s);
}

static int count_cb(void *ctx, const struct sms_card *c)
{
	uint64_t *last = ctx;

	assert_true(c->serial > *last);
	*last = c->serial;
	return 0;
}

static void test_cards(void **state)
{
	struct sms_store *s = open_fresh(state, NULL);
	struct sms_card c = { .serial = 2100000001, .pair = true, .start = 1700000000, .finish = 1800000000 };
	struct sms_card got;
	uint64_t last = 0;
	size_t n = 0;

	snprintf(c.chip_id, sizeof(c.chip_id), "A1B2C3");
	snprintf(c.name, sizeof(c.name), "Ann O'Neil; DROP TABLE cards");
	snprintf(c.info, sizeof(c.info), "Lisbon");
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	assert_int_equal(sms_card_add(s, &c, "test"), CE_EXISTS);
	assert_int_equal(sms_card_get(s, 2100000001, &got), 0);
	assert_int_equal(got.serial, 2100000001);
	assert_string_equal(got.chip_id, "A1B2C3");
	assert_string_equal(got.name, "Ann O'Neil; DROP TABLE cards");
	assert_string_equal(got.info, "Lisbon");
	assert_true(got.pair);
	assert_int_equal(got.start, 1700000000);
	assert_int_equal(got.finish, 1800000000);
	assert_int_equal(got.state, SMS_CARD_ACTIVE);
	assert_int_equal(got.access_criteria, 0);
	assert_int_equal(sms_card_get(s, 2100000002, &got), CE_NOT_FOUND);
	assert_int_equal(sms_card_get(s, 0, &got), CE_NOT_FOUND);
	assert_int_equal(sms_card_get(s, UINT64_MAX, &got), CE_NOT_FOUND);

	/* Bad values never reach the database. */
	c.serial = 0;
	assert_int_equal(sms_card_add(s, &c, "test"), CE_RANGE);
	c.serial = (uint64_t)INT64_MAX + 1;
	assert_int_equal(sms_card_add(s, &c, "test"), CE_RANGE);

	assert_int_equal(sms_card_set_state(s, 2100000001, SMS_CARD_BLOCKED, "test"), 0);
	assert_int_equal(sms_card_get(s, 2100000001, &got), 0);
	assert_int_equal(got.state, SMS_CARD_BLOCKED);
	assert_int_equal(sms_card_set_state(s, 2100000009, SMS_CARD_BLOCKED, "test"), CE_NOT_FOUND);
	assert_int_equal(sms_card_set_state(s, 2100000001, (enum sms_card_state)7, "test"), CE_RANGE);

	for (uint64_t i = 0; i < 25; i++)
		add_card(s, 2100000100 + i);
	/* Pages of 10: 10, 10, 6 (card ...001 first). */
	assert_int_equal(sms_card_list(s, 0, 10, count_cb, &last, &n), 0);
	assert_int_equal(n, 10);
	assert_int_equal(sms_card_list(s, last, 10, count_cb, &last, &n), 0);
	assert_int_equal(n, 10);
	assert_int_equal(sms_card_list(s, last, 10, count_cb, &last, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(last, 2100000124);
	assert_int_equal(sms_card_list(s, 0, 0, NULL, NULL, &n), CE_RANGE);
	sms_store_close(s);
}

static void test_subscriptions(void **state)
{
	struct sms_store *s = open_fresh(state, NULL);
	struct sms_subscription sub = { 2100000000, 0, 1700000000, 1800000000 };
	struct sms_subscription list[8];
	struct sms_card c;
	size_t n = 0;

	add_card(s, 2100000000);
	assert_int_equal(sms_subscribe(s, &sub, "test"), 0);
	sub.package = 5;
	assert_int_equal(sms_subscribe(s, &sub, "test"), 0);
	/* Packages past 31 exist beside the mask. */
	assert_int_equal(sms_package_add(s, 40, "sports extra", "test"), 0);
	assert_int_equal(sms_package_add(s, 41, "sports extra", "test"), CE_EXISTS);
	assert_int_equal(sms_package_add(s, 40, "other", "test"), CE_EXISTS);
	assert_int_equal(sms_package_add(s, 65536, "too big", "test"), CE_RANGE);
	sub.package = 40;
	assert_int_equal(sms_subscribe(s, &sub, "test"), 0);
	assert_int_equal(sms_card_get(s, 2100000000, &c), 0);
	assert_int_equal(c.access_criteria, 0x21);

	/* Re-subscribing replaces the period. */
	sub.package = 5;
	sub.finish = 1900000000;
	assert_int_equal(sms_subscribe(s, &sub, "test"), 0);
	assert_int_equal(sms_subscription_list(s, 2100000000, list, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(list[1].package, 5);
	assert_int_equal(list[1].finish, 1900000000);

	/* Unknown package or card: refused by the foreign keys. */
	sub.package = 77;
	assert_int_equal(sms_subscribe(s, &sub, "test"), CE_NOT_FOUND);
	sub.package = 0;
	sub.serial = 2199999999;
	assert_int_equal(sms_subscribe(s, &sub, "test"), CE_NOT_FOUND);
	sub.serial = 2100000000;
	sub.finish = sub.start - 1;
	assert_int_equal(sms_subscribe(s, &sub, "test"), CE_RANGE);

	assert_int_equal(sms_unsubscribe(s, 2100000000, 0, "test"), 0);
	assert_int_equal(sms_unsubscribe(s, 2100000000, 0, "test"), CE_NOT_FOUND);
	assert_int_equal(sms_card_get(s, 2100000000, &c), 0);
	assert_int_equal(c.access_criteria, 0x20);
	sms_store_close(s);
}

struct audit_seen {
	int n;
	char first_who[SMS_WHO_MAX + 1];
	char first_what[512];
};

static int audit_cb(void *ctx, const struct sms_audit *a)
{
	struct audit_seen *as = ctx;

	if (as->n++ == 0) {
		snprintf(as->first_who, sizeof(as->first_who), "%s", a->who);
		snprintf(as->first_what, sizeof(as->first_what), "%s", a->what);
	}
	assert_true(a->at_ms > 1600000000000LL);
	return 0;
}

static void test_card_change(void **state)
{
	struct sms_store *s = open_fresh(state, NULL);
	struct sms_card_change ch = { 0 };
	struct sms_subscription sub = { 2100000000, 40, 1, 2 };
	struct sms_subscription list[40];
	struct audit_seen as = { 0 };
	struct sms_card c;
	size_t n = 0;

	add_card(s, 2100000000);
	assert_int_equal(sms_package_add(s, 40, "p40", "test"), 0);
	assert_int_equal(sms_subscribe(s, &sub, "test"), 0);
	ch.has_name = ch.has_start = ch.has_finish = ch.has_ac = true;
	snprintf(ch.name, sizeof(ch.name), "Vasya Pupkin");
	ch.start = 1700000000;
	ch.finish = 1800000000;
	ch.access_criteria = 0x80000003;
	assert_int_equal(sms_card_change(s, 2100000000, &ch, "alice", &c), 0);
	assert_string_equal(c.name, "Vasya Pupkin");
	assert_string_equal(c.info, "");
	assert_int_equal(c.access_criteria, 0x80000003);
	assert_int_equal(c.start, 1700000000);
	assert_int_equal(sms_subscription_list(s, 2100000000, list, 40, &n), 0);
	assert_int_equal(n, 4); /* 0, 1, 31 from the mask; 40 untouched */
	assert_int_equal(list[2].package, 31);
	assert_int_equal(list[2].finish, 1800000000);
	assert_int_equal(list[3].package, 40);
	assert_int_equal(list[3].finish, 2);

	/* Narrow the mask, move the period: kept packages follow the dates. */
	memset(&ch, 0, sizeof(ch));
	ch.has_ac = ch.has_finish = ch.has_info = true;
	ch.access_criteria = 0x2;
	ch.finish = 1900000000;
	snprintf(ch.info, sizeof(ch.info), "Moscow, Pupkin st");
	assert_int_equal(sms_card_change(s, 2100000000, &ch, "alice", &c), 0);
	assert_string_equal(c.name, "Vasya Pupkin");
	assert_string_equal(c.info, "Moscow, Pupkin st");
	assert_int_equal(c.access_criteria, 0x2);
	assert_int_equal(sms_subscription_list(s, 2100000000, list, 40, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].package, 1);
	assert_int_equal(list[0].start, 1700000000);
	assert_int_equal(list[0].finish, 1900000000);

	assert_int_equal(sms_card_change(s, 2100000099, &ch, "alice", &c), CE_NOT_FOUND);

	/* Every change is in the audit log, newest first, with who. */
	assert_int_equal(sms_audit_list(s, 100, audit_cb, &as), 0);
	assert_int_equal(as.n, 5); /* card add, package add, subscribe, 2 changes */
	assert_string_equal(as.first_who, "alice");
	assert_non_null(strstr(as.first_what, "card 2100000000 set info"));
	assert_non_null(strstr(as.first_what, "access_criteria=00000002"));
	sms_store_close(s);
}

static void test_channels_keys(void **state)
{
	struct sms_store *s = open_fresh(state, NULL);
	char key[65], user[SMS_NAME_MAX + 1];
	unsigned scopes = 0;
	uint32_t ac = 0;
	int64_t uid = 0;

	assert_int_equal(sms_channel_set(s, 101, "news", 0x1, "test"), 0);
	assert_int_equal(sms_channel_set(s, 101, "news", 0x3, "test"), 0);
	assert_int_equal(sms_channel_get(s, 101, &ac), 0);
	assert_int_equal(ac, 0x3);
	assert_int_equal(sms_channel_set(s, 102, "sports", 0xFFFFFFFF, "test"), 0);
	assert_int_equal(sms_channel_get(s, 102, &ac), 0);
	assert_int_equal(ac, 0xFFFFFFFF);
	assert_int_equal(sms_channel_get(s, 103, &ac), CE_NOT_FOUND);

	assert_int_equal(sms_user_add(s, "billing", "test", &uid), 0);
	assert_true(uid > 0);
	assert_int_equal(sms_user_add(s, "billing", "test", &uid), CE_EXISTS);
	assert_int_equal(sms_apikey_create(s, "billing", SMS_SCOPE_READ | SMS_SCOPE_WRITE, "test", key), 0);
	assert_int_equal(strlen(key), 64);
	assert_int_equal(sms_apikey_check(s, key, &scopes, user), 0);
	assert_int_equal(scopes, SMS_SCOPE_READ | SMS_SCOPE_WRITE);
	assert_string_equal(user, "billing");
	key[0] = key[0] == 'a' ? 'b' : 'a';
	assert_int_equal(sms_apikey_check(s, key, &scopes, user), CE_NOT_FOUND);
	assert_int_equal(scopes, 0);
	assert_int_equal(sms_apikey_check(s, "", &scopes, user), CE_NOT_FOUND);
	assert_int_equal(sms_apikey_create(s, "nobody", SMS_SCOPE_READ, "test", key), CE_NOT_FOUND);
	assert_int_equal(sms_apikey_create(s, "billing", 0, "test", key), CE_RANGE);
	sms_store_close(s);
}

static int keep_prefix(void *ctx, const struct sms_apikey *k)
{
	snprintf(ctx, 9, "%s", k->hash_prefix);
	return 0;
}

/* The per-connection API key cache: a revocation through the same
 * connection is seen at once, through another one when its cache lapses
 * (an hour here, so the test cannot depend on timing) or is turned off. */
static void test_key_cache(void **state)
{
	struct backend *be = *state;
	const char *uri = tdb_fresh(be);
	struct sms_store *a = NULL, *b = NULL;
	char key[65], user[SMS_NAME_MAX + 1], tag[9], prefix[9] = "";
	unsigned scopes = 0;
	size_t n = 0;

	if (be == &sqlite_be) {
		/* The store file is owner-only: created so, or tightened. */
		struct stat st;
		int fd = open(uri, O_WRONLY | O_CREAT | O_EXCL, 0644);

		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(chmod(uri, 0644), 0);
		assert_int_equal(sms_store_open(uri, &a), 0);
		assert_int_equal(stat(uri, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	} else {
		assert_int_equal(sms_store_open(uri, &a), 0);
	}
	assert_int_equal(sms_store_open(uri, &b), 0);
	sms_store_set_key_cache_ms(b, 3600 * 1000);
	assert_int_equal(sms_user_add(a, "billing", "test", NULL), 0);
	assert_int_equal(sms_apikey_create(a, "billing", SMS_SCOPE_READ, "test", key), 0);
	assert_int_equal(sms_apikey_check_tag(b, key, &scopes, user, tag), 0);
	assert_int_equal(scopes, SMS_SCOPE_READ);
	assert_string_equal(user, "billing");
	assert_int_equal(sms_apikey_list(a, 0, 10, keep_prefix, prefix, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(tag, prefix); /* the audit log's name for the key */
	assert_int_equal(sms_apikey_check(a, key, &scopes, user), 0);

	assert_int_equal(sms_apikey_revoke(a, 1, "test"), 0);
	assert_int_equal(sms_apikey_check(a, key, &scopes, user), CE_NOT_FOUND);
	assert_int_equal(scopes, 0);
	/* b answers from its cache, with the user and scopes it saw. */
	assert_int_equal(sms_apikey_check_tag(b, key, &scopes, user, tag), 0);
	assert_string_equal(user, "billing");
	assert_string_equal(tag, prefix);
	sms_store_set_key_cache_ms(b, 0);
	assert_int_equal(sms_apikey_check_tag(b, key, &scopes, user, tag), CE_NOT_FOUND);
	assert_string_equal(tag, prefix); /* the tag is of the key sent, found or not */
	/* Unknown keys are never cached: a new key on a then works on b. */
	sms_store_set_key_cache_ms(b, 3600 * 1000);
	key[0] = key[0] == 'a' ? 'b' : 'a';
	assert_int_equal(sms_apikey_check(b, key, &scopes, user), CE_NOT_FOUND);
	assert_int_equal(sms_apikey_check(b, key, &scopes, user), CE_NOT_FOUND);
	sms_store_close(a);
	sms_store_close(b);
}

/* Frames in the WAL of the SQLite file at path, by a raw connection
 * (-1 while another connection is checkpointing: asked again). */
static int wal_frames(const char *path)
{
	sqlite3 *db = NULL;
	int n = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 1000);
	for (int tries = 0; tries < 1000 && n < 0; tries++) {
		sqlite3_stmt *st = NULL;
		struct timespec ts = { 0, 1000 * 1000 };

		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(PASSIVE)", -1, &st, NULL), SQLITE_OK);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 1);
		sqlite3_finalize(st);
		if (n < 0)
			nanosleep(&ts, NULL);
	}
	sqlite3_close(db);
	assert_true(n >= 0);
	return n;
}

/* A serving SQLite connection never checkpoints inside its commits; the
 * store's own thread copies the WAL back and rewinds it. Without that
 * thread (inline checkpoints off) the WAL only grows. */
static void test_bg_checkpoint(void **state)
{
	struct backend *be = *state;
	const char *uri = tdb_fresh(be);
	struct sms_store *s = NULL;
	struct sms_card c = { .serial = 2100000000, .start = 1700000000, .finish = 1800000000 };
	struct sms_subscription sub = { .serial = 2100000000, .start = 1700000000 };
	int frames = -1;

	assert_int_equal(sms_store_open(uri, &s), 0);
	if (be != &sqlite_be) { /* the server checkpoints: no-ops */
		assert_int_equal(sms_store_bg_checkpoint(s, true), 0);
		assert_int_equal(sms_store_no_autocheckpoint(s), 0);
		sms_store_close(s);
		return;
	}
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	assert_int_equal(sms_package_add(s, 40, "p40", "test"), 0);
	assert_int_equal(sms_store_no_autocheckpoint(s), 0);
	for (int i = 0; i < 1500; i++) {
		sub.package = (uint32_t)(i % 32);
		sub.finish = 1800000000 + i;
		assert_int_equal(sms_subscribe(s, &sub, "test"), 0);
	}
	frames = wal_frames(uri); /* copies back, cannot rewind: the WAL stays */
	assert_true(frames >= 1500);
	assert_int_equal(sms_store_bg_checkpoint(s, true), 0);
	assert_int_equal(sms_store_bg_checkpoint(s, true), 0); /* twice: one thread */
	/* Commits go on; the thread rewinds the WAL behind them (polled, at
	 * most 20 s: no timing is asserted, only that it happens). */
	for (int i = 0; i < 2000 && frames >= 1000; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		sub.finish = 1900000000 + i;
		assert_int_equal(sms_subscribe(s, &sub, "test"), 0);
		nanosleep(&ts, NULL);
		if (i % 10 == 9)
			frames = wal_frames(uri);
	}
	assert_true(frames >= 0 && frames < 1000);
	/* Off again: inline checkpoints back on, the thread stopped. */
	assert_int_equal(sms_store_bg_checkpoint(s, false), 0);
	assert_int_equal(sms_store_bg_checkpoint(s, true), 0);
	sms_store_close(s); /* stops the thread (ASan/LSan: nothing leaks) */
	assert_int_equal(sms_store_open(uri, &s), 0);
	{
		struct sms_subscription got[40];
		size_t n = 0;

		assert_int_equal(sms_subscription_list(s, 2100000000, got, 40, &n), 0);
		assert_int_equal(n, 32);
	}
	sms_store_close(s);
}

/* ---- GET API over HTTP ------------------------------------------------- */

struct srv {
	struct event_base *base;
	struct sms_store *store;
	struct sms_http *http;
	char key_rw[65], key_ro[65];
};

static void srv_start(void **state, struct srv *sv)
{
	struct sms_card c = { .serial = 2100000000, .start = 1700000000, .finish = 1800000000 };

	memset(sv, 0, sizeof(*sv));
	sv->store = open_fresh(state, NULL);
	snprintf(c.name, sizeof(c.name), "Vasya Pupkin");
	snprintf(c.info, sizeof(c.info), "Moscow/Pupkin st");
	assert_int_equal(sms_card_add(sv->store, &c, "test"), 0);
	assert_int_equal(sms_user_add(sv->store, "billing", "test", NULL), 0);
	assert_int_equal(sms_apikey_create(sv->store, "billing", SMS_SCOPE_READ | SMS_SCOPE_WRITE, "test",
					   sv->key_rw), 0);
	assert_int_equal(sms_apikey_create(sv->store, "billing", SMS_SCOPE_READ, "test", sv->key_ro), 0);
	sv->base = event_base_new();
	assert_non_null(sv->base);
	assert_int_equal(sms_http_new(sv->base, sv->store, "127.0.0.1:0", &sv->http), 0);
	assert_true(sms_http_port(sv->http) != 0);
}

static void srv_stop(struct srv *sv)
{
	sms_http_free(sv->http);
	event_base_free(sv->base);
	sms_store_close(sv->store);
}

/* Send one raw request; run the server's loop until the answer is whole
 * (HTTP/1.0: the server closes). Returns the status; body in body. */
static int http_raw(struct srv *sv, const char *request, char *body, size_t cap)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(sms_http_port(sv->http)) };
	static char resp[GETAPI_BODY_MAX + 4096];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
	const char *sep;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	for (int i = 0; i < 20000; i++) { /* bounded: a hung server fails the test */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		event_base_loop(sv->base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 1) <= 0)
			continue;
		n = read(fd, resp + got, sizeof(resp) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	resp[got] = '\0';
	status = tu_http_status(resp);
	sep = strstr(resp, "\r\n\r\n");
	snprintf(body, cap, "%s", sep ? sep + 4 : "");
	return status;
}

static int api(struct srv *sv, const char *key, const char *rest, char *body, size_t cap)
{
	size_t n = strlen(key) + strlen(rest) + 64;
	char *req = malloc(n);
	int st;

	assert_non_null(req);
	snprintf(req, n, "GET /api.php?api_key=%s%s HTTP/1.0\r\nHost: sms\r\n\r\n", key, rest);
	st = http_raw(sv, req, body, cap);
	free(req);
	return st;
}

#define CARD0_JSON "{\"serial_no\":\"2100000000\",\"name\":\"Vasya Pupkin\",\"info\":\"Moscow\\/Pupkin st\"," \
	"\"access_criteria\":\"00000000\",\"pair\":\"0\",\"start\":\"1700000000\",\"finish\":\"1800000000\"}"

static void test_getapi_read(void **state)
{
	struct srv sv;
	char body[8192];

	srv_start(state, &sv);
	assert_int_equal(api(&sv, sv.key_ro, "&serial_no=2100000000", body, sizeof(body)), 200);
	assert_string_equal(body, CARD0_JSON);
	/* The listener has SO_REUSEPORT (one socket per HTTP thread), yet a
	 * second server on a port in use is refused, and the first still
	 * answers. */
	{
		struct sms_http *h2 = NULL;
		char addr[32];

		snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)sms_http_port(sv.http));
		assert_int_equal(sms_http_new(sv.base, sv.store, addr, &h2), CE_IO);
		assert_null(h2);
		assert_int_equal(api(&sv, sv.key_ro, "&serial_no=2100000000", body, sizeof(body)), 200);
	}
	/* Parameter order does not matter; '+' and %XX decode. */
	{
		char req[512];

		snprintf(req, sizeof(req), "GET /api.php?serial%%5Fno=2100000000&api+key=%s HTTP/1.0\r\n\r\n",
			 sv.key_ro);
		assert_int_equal(http_raw(&sv, req, body, sizeof(body)), 200);
		assert_string_equal(body, CARD0_JSON);
	}
	/* Other paths are not the API. */
	assert_int_equal(http_raw(&sv, "GET /index.php HTTP/1.0\r\n\r\n", body, sizeof(body)), 404);
	srv_stop(&sv);
}

struct bad_case {
	const char *rest;      /* after api_key=<rw key> */
	const char *word;
};

/* Every error word, and the free CAS's check order. */
static const struct bad_case bad_cases[] = {
	{ "&serial_no=2100000001", "SMARDCARD_NOT_FOUND" },
	{ "&serial_no=", "SMARDCARD_NOT_FOUND" },
	{ "", "SMARDCARD_NOT_FOUND" },
	{ "&serial_no=2100000000x", "SMARDCARD_NOT_FOUND" },
	{ "&serial_no=-2100000000", "SMARDCARD_NOT_FOUND" },
	{ "&serial_no=99999999999999999999999", "SMARDCARD_NOT_FOUND" },
	{ "&serial_no=2100000001&set[colour]=red", "SMARDCARD_NOT_FOUND" }, /* card before set[] */
	{ "&serial_no=2100000000&set[colour]=red", "UNKNOWN_SET_PARAMETER" },
	{ "&serial_no=2100000000&set[serial_no]=2100000005", "UNKNOWN_SET_PARAMETER" },
	{ "&serial_no=2100000000&set[]=1", "UNKNOWN_SET_PARAMETER" },
	{ "&serial_no=2100000000&set[access_criteria]=0000000G", "ACCESS_CRITERIA_ERROR" },
	{ "&serial_no=2100000000&set[access_criteria]=000000001", "ACCESS_CRITERIA_ERROR" },
	{ "&serial_no=2100000000&set[access_criteria]=1234567", "ACCESS_CRITERIA_ERROR" },
	{ "&serial_no=2100000000&set[access_criteria]=", "ACCESS_CRITERIA_ERROR" },
	{ "&serial_no=2100000000&set[access_criteria][x]=00000001", "ACCESS_CRITERIA_ERROR" },
	{ "&serial_no=2100000000&set[pair]=2", "PAIR_ERROR" },
	{ "&serial_no=2100000000&set[pair]=01", "PAIR_ERROR" },
	{ "&serial_no=2100000000&set[pair]=", "PAIR_ERROR" },
	{ "&serial_no=2100000000&set[start]=170000000", "START_ERROR" },
	{ "&serial_no=2100000000&set[start]=17000000000", "START_ERROR" },
	{ "&serial_no=2100000000&set[start]=1700000O00", "START_ERROR" },
	{ "&serial_no=2100000000&set[finish]=-170000000", "FINISH_ERROR" },
	{ "&serial_no=2100000000&set[finish]=now", "FINISH_ERROR" },
	/* In query order: the first bad one answers. */
	{ "&serial_no=2100000000&set[pair]=1&set[finish]=x&set[start]=y", "FINISH_ERROR" },
	{ "&serial_no=2100000000&set[start]=y&set[finish]=x", "START_ERROR" },
	{ "&serial_no=2100000000&set[name]=%01", "NAME_ERROR" },
	{ "&serial_no=2100000000&set[name]=%C3%28", "NAME_ERROR" },
	{ "&serial_no=2100000000&set[info]=%ED%A0%80", "INFO_ERROR" },
	{ "&serial_no=2100000000&set[name]=ok&set[pair]=7", "PAIR_ERROR" },
	/* %00 is refused by the field's word, never stored cut short. */
	{ "&serial_no=2100000000&set[name]=bob%00evil", "NAME_ERROR" },
	{ "&serial_no=2100000000&set[name]=%00", "NAME_ERROR" },
	{ "&serial_no=2100000000&set[info]=a%00", "INFO_ERROR" },
	{ "&serial_no=2100000000&set[access_criteria]=0000000F%00", "ACCESS_CRITERIA_ERROR" },
	{ "&serial_no=2100000000&set[pair]=1%00", "PAIR_ERROR" },
	{ "&serial_no=2100000000&set[start]=1712345678%0000", "START_ERROR" },
	{ "&serial_no=2100000000&set[finish]=1812345678%00", "FINISH_ERROR" },
	{ "&serial_no=2100000000&set[na%00me]=x", "UNKNOWN_SET_PARAMETER" },
	{ "&serial_no=2100000000%00", "SMARDCARD_NOT_FOUND" },
};

static void test_getapi_errors(void **state)
{
	struct srv sv;
	char body[8192];
	size_t cap = 3 * SMS_INFO_MAX + 256;
	char *rest = malloc(cap);

	assert_non_null(rest);
	srv_start(state, &sv);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		int st = api(&sv, sv.key_rw, bad_cases[i].rest, body, sizeof(body));

		if (st != 400 || strcmp(body, bad_cases[i].word) != 0)
			fail_msg("case %zu (%s): got %d '%s', want 400 '%s'", i, bad_cases[i].rest, st, body,
				 bad_cases[i].word);
	}
	/* Keys: wrong, missing, empty, read-only key asking to write. */
	assert_int_equal(api(&sv, "0123", "&serial_no=2100000000", body, sizeof(body)), 400);
	assert_string_equal(body, "NOT_VALID_API_KEY");
	assert_int_equal(http_raw(&sv, "GET /api.php?serial_no=2100000000 HTTP/1.0\r\n\r\n", body, sizeof(body)), 400);
	assert_string_equal(body, "NOT_VALID_API_KEY");
	assert_int_equal(api(&sv, "", "&serial_no=2100000001", body, sizeof(body)), 400);
	assert_string_equal(body, "NOT_VALID_API_KEY"); /* the key before the card */
	assert_int_equal(api(&sv, sv.key_ro, "&serial_no=2100000000&set[pair]=1", body, sizeof(body)), 400);
	assert_string_equal(body, "NOT_VALID_API_KEY");
	/* Too long values, too many parameters. */
	memset(rest, 'a', cap);
	memcpy(rest, "&serial_no=2100000000&set[name]=", 32);
	rest[32 + SMS_NAME_CHARS + 1] = '\0';
	assert_int_equal(api(&sv, sv.key_rw, rest, body, sizeof(body)), 400);
	assert_string_equal(body, "NAME_ERROR");
	memcpy(rest, "&serial_no=2100000000&set[info]=", 32);
	memset(rest + 32, 'b', SMS_INFO_MAX + 1);
	rest[32 + SMS_INFO_MAX + 1] = '\0';
	assert_int_equal(api(&sv, sv.key_rw, rest, body, sizeof(body)), 400);
	assert_string_equal(body, "INFO_ERROR");
	/* The longest info percent-encoded still reaches the check. */
	for (size_t i = 0; i <= SMS_INFO_MAX; i++)
		memcpy(rest + 32 + 3 * i, "%D0", 3);
	rest[32 + 3 * (SMS_INFO_MAX + 1)] = '\0';
	assert_int_equal(api(&sv, sv.key_rw, rest, body, sizeof(body)), 400);
	assert_string_equal(body, "INFO_ERROR");
	rest[0] = '\0';
	for (int i = 0; i < GETAPI_PARAMS_MAX; i++)
		strncat(rest, "&x=1", cap - strlen(rest) - 1);
	assert_int_equal(api(&sv, sv.key_rw, rest, body, sizeof(body)), 400);
	assert_string_equal(body, "BAD_REQUEST");

	/* None of these changed the card. */
	assert_int_equal(api(&sv, sv.key_ro, "&serial_no=2100000000", body, sizeof(body)), 200);
	assert_string_equal(body, CARD0_JSON);
	{
		struct sms_http_stats st;

		sms_http_get_stats(sv.http, &st);
		assert_int_equal(st.words[GETAPI_NOT_VALID_API_KEY], 4);
		assert_int_equal(st.words[GETAPI_PAIR_ERROR], 5);
		assert_int_equal(st.internal_errors, 0);
	}
	srv_stop(&sv);
	free(rest);
}

/* n copies of the UTF-8 character u (as %XX escapes in q, raw in raw). */
static void repeat_char(char *q, char *raw, const char *u, size_t n)
{
	size_t ul = strlen(u);

	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < ul; k++)
			snprintf(q + 3 * (i * ul + k), 4, "%%%02X", (unsigned char)u[k]);
		memcpy(raw + i * ul, u, ul);
	}
	raw[n * ul] = '\0';
	q[3 * n * ul] = '\0';
}

/* Requests a real billing integration sent that the free CAS took: long
 * and non-Latin names and info, and POST with the URL's parameters. */
static void test_getapi_dropin(void **state)
{
	struct srv sv;
	static char body[GETAPI_BODY_MAX];
	size_t cap = 3 * SMS_INFO_MAX + 256;
	char *rest = malloc(cap), *q = malloc(cap), *raw = malloc(SMS_INFO_MAX + 1);
	struct sms_card c;

	assert_non_null(rest);
	assert_non_null(q);
	assert_non_null(raw);
	srv_start(state, &sv);
	/* 200 Cyrillic characters (400 bytes): the free CAS's VARCHAR(255) held them. */
	repeat_char(q, raw, "\xD0\x96", 200);
	snprintf(rest, cap, "&serial_no=2100000000&set[name]=%s", q);
	assert_int_equal(api(&sv, sv.key_rw, rest, body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"name\":\"\\u0416\\u0416"));
	assert_int_equal(sms_card_get(sv.store, 2100000000, &c), 0);
	assert_string_equal(c.name, raw);
	/* 255 characters of 4 bytes each; 256 Cyrillic is one too many. */
	repeat_char(q, raw, "\xF0\x9F\x93\xBA", 255);
	snprintf(rest, cap, "&serial_no=2100000000&set[name]=%s", q);
	assert_int_equal(api(&sv, sv.key_rw, rest, body, sizeof(body)), 200);
	assert_int_equal(sms_card_get(sv.store, 2100000000, &c), 0);
	assert_int_equal(strlen(c.name), 1020);
	repeat_char(q, raw, "\xD0\x96", 256);
	snprintf(rest, cap, "&serial_no=2100000000&set[name]=%s", q);
	assert_int_equal(api(&sv, sv.key_rw, rest, body, sizeof(body)), 400);
	assert_string_equal(body, "NAME_ERROR");
	/* Several KB of Cyrillic info (the free CAS's column was TEXT), and
	 * the limit itself: 65,535 bytes. */
	repeat_char(q, raw, "\xD0\xAF", 3000);
	snprintf(rest, cap, "&serial_no=2100000000&set[info]=%s", q);
	assert_int_equal(api(&sv, sv.key_rw, rest, body, sizeof(body)), 200);
	assert_int_equal(sms_card_get(sv.store, 2100000000, &c), 0);
	assert_string_equal(c.info, raw);
	assert_int_equal(strlen(body), strlen("{\"serial_no\":\"2100000000\",\"name\":\"\",\"info\":\"\",\"access_criteria\":"
					      "\"00000000\",\"pair\":\"0\",\"start\":\"1700000000\",\"finish\":\"1800000000\"}") +
			 6 * 255 * 2 + 6 * 3000);
	memcpy(rest, "&serial_no=2100000000&set[info]=", 32);
	memset(rest + 32, 'i', SMS_INFO_MAX);
	rest[32 + SMS_INFO_MAX] = '\0';
	assert_int_equal(api(&sv, sv.key_rw, rest, body, sizeof(body)), 200);
	assert_int_equal(sms_card_get(sv.store, 2100000000, &c), 0);
	assert_int_equal(strlen(c.info), SMS_INFO_MAX);

	/* POST with the parameters in the URL answers exactly like GET; a
	 * body is never read ($_GET), and PUT stays refused. */
	snprintf(rest, cap, "GET /api.php?api_key=%s&serial_no=2100000000&set[pair]=1 HTTP/1.0\r\n\r\n", sv.key_rw);
	assert_int_equal(http_raw(&sv, rest, q, cap), 200);
	snprintf(rest, cap, "POST /api.php?api_key=%s&serial_no=2100000000&set[pair]=1 HTTP/1.0\r\n"
		 "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nset[pair]=0", sv.key_rw);
	assert_int_equal(http_raw(&sv, rest, body, sizeof(body)), 200);
	assert_string_equal(body, q);
	assert_non_null(strstr(body, "\"pair\":\"1\""));
	snprintf(rest, cap, "POST /api.php HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\n"
		 "Content-Length: %zu\r\n\r\napi_key=%s&serial_no=2100000000", strlen(sv.key_rw) + 28, sv.key_rw);
	assert_int_equal(http_raw(&sv, rest, body, sizeof(body)), 400);
	assert_string_equal(body, "NOT_VALID_API_KEY");
	snprintf(rest, cap, "POST /api.php?api_key=%s&serial_no=2100000000&set[name]=bob%%00evil HTTP/1.0\r\n\r\n",
		 sv.key_rw);
	assert_int_equal(http_raw(&sv, rest, body, sizeof(body)), 400);
	assert_string_equal(body, "NAME_ERROR");
	snprintf(rest, cap, "PUT /api.php?api_key=%s&serial_no=2100000000 HTTP/1.0\r\n\r\n", sv.key_rw);
	assert_int_equal(http_raw(&sv, rest, body, sizeof(body)), 405);
	srv_stop(&sv);
	free(rest);
	free(q);
	free(raw);
}

static void test_getapi_set(void **state)
{
	struct srv sv;
	char body[8192];
	struct sms_card c;

	srv_start(state, &sv);
	/* The example from the free CAS's api.php, with valid dates. */
	assert_int_equal(api(&sv, sv.key_rw, "&serial_no=2100000000&set[name]=Vasya%20Pupkin&set[info]=Moscow%20Pupkin%20st"
			     "&set[start]=1712345678&set[finish]=1812345678&set[access_criteria]=0000000f&set[pair]=1",
			     body, sizeof(body)), 200);
	assert_string_equal(body, "{\"serial_no\":\"2100000000\",\"name\":\"Vasya Pupkin\",\"info\":\"Moscow Pupkin st\","
			    "\"access_criteria\":\"0000000F\",\"pair\":\"1\",\"start\":\"1712345678\",\"finish\":\"1812345678\"}");
	/* The store agrees, and packages 0..3 are real subscriptions. */
	assert_int_equal(sms_card_get(sv.store, 2100000000, &c), 0);
	assert_int_equal(c.access_criteria, 0xF);
	{
		struct sms_subscription list[8];
		size_t n = 0;

		assert_int_equal(sms_subscription_list(sv.store, 2100000000, list, 8, &n), 0);
		assert_int_equal(n, 4);
		assert_int_equal(list[3].package, 3);
		assert_int_equal(list[3].finish, 1812345678);
	}
	/* Unicode and quotes come back escaped like PHP's json_encode. */
	assert_int_equal(api(&sv, sv.key_rw, "&serial_no=2100000000&set[name]=Jos%C3%A9+%22J%22+%F0%9F%93%BA"
			     "&set[access_criteria]=FFFFFFFF&set[pair]=0", body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"name\":\"Jos\\u00e9 \\\"J\\\" \\ud83d\\udcfa\""));
	assert_non_null(strstr(body, "\"access_criteria\":\"FFFFFFFF\",\"pair\":\"0\""));
	/* Repeated key: the last value wins (PHP). */
	assert_int_equal(api(&sv, sv.key_rw, "&serial_no=2100000000&set[pair]=1&set[pair]=0&set[access_criteria]=00000000",
			     body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"access_criteria\":\"00000000\",\"pair\":\"0\""));
	/* Unknown top-level parameters are ignored, like PHP. */
	assert_int_equal(api(&sv, sv.key_ro, "&serial_no=2100000000&foo=bar&set=scalar", body, sizeof(body)), 200);
	{
		struct audit_seen as = { 0 };

		assert_int_equal(sms_audit_list(sv.store, 1, audit_cb, &as), 0);
		assert_string_equal(as.first_who, "getapi:billing");
	}
	srv_stop(&sv);
}

/* ---- pure parser table (no database) ----------------------------------- */

static void test_getapi_parse(void **state)
{
	struct getapi_req *r = malloc(sizeof(*r));
	struct sms_card_change ch;
	char *big = malloc(GETAPI_QUERY_MAX + 2);

	(void)state;
	assert_non_null(big);
	assert_int_equal(getapi_parse("api_key=a%2&serial_no=1&set[name]=x%zz%41", 41, r), 0);
	assert_string_equal(r->api_key, "a%2"); /* bad escape stays literal */
	assert_string_equal(r->serial_no, "1");
	assert_int_equal(r->nset, 1);
	assert_string_equal(r->set[0].value, "x%zzA");
	assert_int_equal(getapi_validate(r, &ch), GETAPI_OK);
	assert_true(ch.has_name);
	assert_int_equal(getapi_parse("&&&=&api_key&set[x=1&set[a]]=2", 30, r), 0);
	assert_true(r->has_key);
	assert_string_equal(r->api_key, "");
	assert_int_equal(r->nset, 1);
	assert_string_equal(r->set[0].name, "a");
	/* Not NUL-terminated input is read only up to len. */
	assert_int_equal(getapi_parse("serial_no=12345", 12, r), 0);
	assert_string_equal(r->serial_no, "12");
	memset(big, 'a', GETAPI_QUERY_MAX + 2);
	big[1] = '=';
	assert_int_equal(getapi_parse(big, GETAPI_QUERY_MAX + 1, r), CE_LIMIT);
	assert_int_equal(getapi_parse(big, GETAPI_QUERY_MAX, r), 0);
	/* A name too long for any known parameter refuses the request. */
	big[1] = 'a';
	assert_int_equal(getapi_parse(big, 400, r), CE_LIMIT);
	/* %00 is flagged, never a shortened value. */
	assert_int_equal(getapi_parse("set[name]=bob%00evil&set[info]=ok", 33, r), 0);
	assert_true(r->set[0].has_nul);
	assert_false(r->set[1].has_nul);
	assert_int_equal(getapi_validate(r, &ch), GETAPI_NAME_ERROR);
	assert_int_equal(getapi_parse("api_key=k%00x&serial_no=1%002", 29, r), 0);
	assert_string_equal(r->api_key, "");
	assert_string_equal(r->serial_no, "");
	free(big);
	free(r);
}

/* ---- the CLI ----------------------------------------------------------- */

/* Run `castellan sms --db DB ARGS`; stdout into out; returns the exit code. */
static int cli(const char *db, const char *args, char *out, size_t cap)
{
	const char *bin = getenv("CASTELLAN_BIN");
	char cmd[2048];
	size_t got = 0;
	FILE *f;
	int rc;

	if (!bin)
		skip();
	/* stderr is dropped unless ARGS redirects it itself */
	snprintf(cmd, sizeof(cmd), "%s sms --db %s %s%s", bin, db, args, strstr(args, "2>") ? "" : " 2>/dev/null");
	f = popen(cmd, "r");
	assert_non_null(f);
	got = fread(out, 1, cap - 1, f);
	out[got] = '\0';
	while (!feof(f) && !ferror(f)) { /* drain: a longer answer must not end in SIGPIPE */
		char rest[512];

		if (fread(rest, 1, sizeof(rest), f) == 0)
			break;
	}
	rc = pclose(f);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli(void **state)
{
	char db[300], out[4096];

	(void)state;
	snprintf(db, sizeof(db), "%s/cli.db", sqlite_dir);
	assert_int_equal(cli(db, "--help", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "usage: castellan sms"));
	assert_int_equal(cli(db, "init --admin ops", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "schema version 8"));
	assert_non_null(strstr(out, "api key for ops"));
	/* C.6: a channel's copy control, one line (schema 8) */
	assert_int_equal(cli(db, "copy-control 102 copy_never", out, sizeof(out)), 0);
	assert_int_equal(cli(db, "copy-control 101 copy_once --retention-s 86400", out, sizeof(out)), 0);
	assert_int_equal(cli(db, "copy-control list", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "101\tcopy_once\t86400\n102\tcopy_never\t0\n"));
	assert_int_equal(cli(db, "copy-control 101 copy_free", out, sizeof(out)), 0);
	assert_int_equal(cli(db, "copy-control list", out, sizeof(out)), 0);
	assert_null(strstr(out, "101\t"));
	assert_int_equal(cli(db, "copy-control 0 copy_never", out, sizeof(out)), 1);
	assert_int_equal(cli(db, "copy-control 5 copy_no_more", out, sizeof(out)), 1);
	assert_int_equal(cli(db, "copy-control 5 copy_once --retention-s 999999999", out, sizeof(out)), 1);
	assert_int_equal(cli(db, "card add 2100000000 --chip C1 --name Ann", out, sizeof(out)), 0);
	assert_int_equal(cli(db, "card add 2100000000", out, sizeof(out)), 1); /* exists */
	assert_int_equal(cli(db, "card add 21000x", out, sizeof(out)), 1);
	assert_int_equal(cli(db, "package add 40 sports", out, sizeof(out)), 0);
	/* 0..31 exist from the start: add says so, rename names them */
	assert_int_equal(cli(db, "package add 0 Basic 2>&1", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "package rename 0 NAME"));
	assert_int_equal(cli(db, "package rename 0 Basic", out, sizeof(out)), 0);
	assert_int_equal(cli(db, "package rename 99 X 2>&1", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "package 99 not found"));
	assert_int_equal(cli(db, "subscribe 2100000000 --packages 0,3,40 --start 1700000000 --finish 1800000000",
			     out, sizeof(out)), 0);
	assert_int_equal(cli(db, "subscribe 2100000000 --packages 99 --start 1 --finish 2", out, sizeof(out)), 1);
	assert_int_equal(cli(db, "card list", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "2100000000\tC1\tactive\tpair=0\tac=00000009"));
	assert_int_equal(cli(db, "frobnicate", out, sizeof(out)), 2);
}

/* ---- main -------------------------------------------------------------- */

#define STORE_TESTS \
	cmocka_unit_test(test_migrations), \
	cmocka_unit_test(test_cards), \
	cmocka_unit_test(test_subscriptions), \
	cmocka_unit_test(test_card_change), \
	cmocka_unit_test(test_channels_keys), \
	cmocka_unit_test(test_key_cache), \
	cmocka_unit_test(test_bg_checkpoint), \
	cmocka_unit_test(test_getapi_read), \
	cmocka_unit_test(test_getapi_errors), \
	cmocka_unit_test(test_getapi_set), \
	cmocka_unit_test(test_getapi_dropin)


int main(void)
{
	const struct CMUnitTest pure[] = { cmocka_unit_test(test_getapi_parse), cmocka_unit_test(test_cli) };
	const struct CMUnitTest store_tests[] = { STORE_TESTS };
	char cmd[300];
	int fails = 0;

	snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/castellan-sms-XXXXXX");
	if (!mkdtemp(sqlite_dir))
		return 1;
	sqlite_be.available = true;
	fails += cmocka_run_group_tests_name("getapi parser", pure, NULL, NULL);
	fails += _cmocka_run_group_tests("store on sqlite", store_tests, sizeof(store_tests) / sizeof(store_tests[0]),
					 tdb_group_sqlite, NULL);
	tdb_pg_start();
	if (!pg_be.available)
		printf("SKIP: PostgreSQL tests: %s\n", pg_be.why);
	fails += _cmocka_run_group_tests("store on postgresql", store_tests,
					 sizeof(store_tests) / sizeof(store_tests[0]), tdb_group_pg, NULL);
	tdb_pg_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", sqlite_dir);
	(void)tdb_run(cmd);
	(void)tdb_open_fresh; /* sms_testdb.h's, unused here */
	(void)tdb_fingerprint;
	(void)tdb_run_both;
	return fails;
}
