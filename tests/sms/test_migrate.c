/*
 * test_migrate.c - `castellan sms migrate` (sms_store_copy): a store with
 * something in every table (extended packages with names, channels,
 * generators, API keys live and revoked, panel users, a signed audit
 * checkpoint, the blacklist, EMM sequence numbers with what they carried,
 * node status, the change feed, NULLs and negative 64-bit values) goes
 * SQLite -> PostgreSQL -> SQLite. Every table is compared: by the store's
 * digests on all three, and independently of the copy's own table list by
 * dumping every table sqlite_master names in the first and last file. Then
 * what must still work does: the API key, the audit chain and its
 * signature (also through `castellan audit verify`), sequence numbers
 * continuing above the copied ones, identity ids on PostgreSQL. Refusals:
 * a non-empty target (nothing written), the same database as source and
 * target (SQLite file, PostgreSQL database).
 */
#define SMS_TEST_PG_PORT 5477
#include <sys/wait.h>
#include <sqlite3.h>
#include "sms_testdb.h"
#include "crypto/pk.h"
#include "sms/store_osd.h"
#include "sms/store_usage.h"

static uint8_t g_priv[32], g_pub[32];
static char g_key[65], g_revoked_key[65];

static void populate(struct sms_store *s)
{
	struct sms_card c = { .serial = 2100000001, .start = 100, .finish = 2000000000, .pair = true };
	struct sms_card_change ch;
	struct sms_subscription sub = { .serial = 2100000001, .start = 100, .finish = 1900000000 };
	struct sms_generator g = { .kind = SMS_GEN_ECMG, .ca_system_id = 0x4ADC, .enabled = true };
	struct sms_panel_user pu = { .role = 2, .kdf_n = 1024, .kdf_r = 8, .kdf_p = 1, .fails = 1 };
	struct sms_audit_checkpoint cp;
	struct sms_apikey_row { int64_t id; } rk = { 0 };
	uint32_t seq = 0;
	int64_t id = 0;
	static const uint32_t pkgs[] = { 0, 3, 40, 1000 };

	assert_int_equal(sms_package_add(s, 40, "Sports HD", "t"), 0);
	assert_int_equal(sms_package_add(s, 1000, "Extended 1000", "t"), 0);
	assert_int_equal(sms_package_rename(s, 3, "Basic", "t"), 0);
	assert_int_equal(sms_channel_set(s, 101, "News", 0x9, "t"), 0);
	assert_int_equal(sms_channel_set(s, 65535, "", 0xFFFFFFFFu, "t"), 0);
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-1");
	assert_int_equal(sms_card_add(s, &c, "t"), 0);
	sms_card_change_init(&ch);
	ch.has_name = ch.has_info = true;
	snprintf(ch.name, sizeof(ch.name), "Zo\xc3\xab O'Brien");
	snprintf(ch.info, sizeof(ch.info), "flat 2; \"quoted\"\nsecond line");
	assert_int_equal(sms_card_change(s, 2100000001, &ch, "t", NULL), 0);
	c.serial = 2100000002; /* no subscriber: subscriber_id NULL */
	c.pair = false;
	c.chip_id[0] = '\0';
	assert_int_equal(sms_card_add(s, &c, "t"), 0);
	c.serial = 9000000000000000001ull;
	assert_int_equal(sms_card_add(s, &c, "t"), 0);
	for (size_t i = 0; i < sizeof(pkgs) / sizeof(pkgs[0]); i++) {
		sub.package = pkgs[i];
		assert_int_equal(sms_subscribe(s, &sub, "t"), 0);
	}
	assert_int_equal(sms_card_set_state(s, 2100000002, SMS_CARD_BLOCKED, "t"), 0);
	assert_int_equal(sms_user_add(s, "billing", "t", &id), 0);
	assert_int_equal(sms_user_add(s, "old", "t", &id), 0);
	assert_int_equal(sms_apikey_create(s, "billing", SMS_SCOPE_READ | SMS_SCOPE_WRITE, "t", g_key), 0);
	assert_int_equal(sms_apikey_create(s, "old", SMS_SCOPE_READ, "t", g_revoked_key), 0);
	{
		unsigned sc;
		char user[SMS_NAME_MAX + 1];

		assert_int_equal(sms_apikey_check(s, g_revoked_key, &sc, user), 0);
	}
	rk.id = 2; /* the second key made */
	assert_int_equal(sms_apikey_revoke(s, rk.id, "t"), 0);
	snprintf(g.name, sizeof(g.name), "ecmg-main");
	snprintf(g.address, sizeof(g.address), "0.0.0.0:3337");
	assert_int_equal(sms_generator_add(s, &g, "t", &id), 0);
	g.kind = SMS_GEN_EMMG;
	g.bandwidth_kbps = 300;
	g.client_id = 0x4ADC0002;
	g.enabled = false;
	snprintf(g.name, sizeof(g.name), "emmg-mux");
	snprintf(g.address, sizeof(g.address), "10.0.0.5:6000");
	assert_int_equal(sms_generator_add(s, &g, "t", &id), 0);
	snprintf(pu.name, sizeof(pu.name), "olga");
	memset(pu.salt, 0x42, sizeof(pu.salt));
	memset(pu.hash, 0x99, sizeof(pu.hash));
	assert_int_equal(sms_panel_user_add(s, &pu), 0);
	assert_int_equal(sms_blacklist_add(s, SMS_BL_CARD, "2100000003", "pirate", "t"), 0);
	assert_int_equal(sms_blacklist_add(s, SMS_BL_BOX, "BOX-66", "cloned", "t"), 0);
	{
		/* a card fingerprint and an individual message (schema 7's OSD tables) */
		struct sms_fingerprint f;
		struct sms_message m;

		memset(&f, 0, sizeof(f));
		f.target = SMS_FP_CARD;
		f.value = 2100000001;
		f.fp.flags = OSD_FP_SERIAL;
		f.fp.x_pct = 10;
		f.fp.y_pct = 20;
		f.fp.fg[0] = 0xFF;
		f.fp.bg[3] = 0x80;
		f.fp.font_px = 24;
		f.fp.duration_ms = 4000;
		f.fp.repeat = 2;
		f.fp.interval_s = 30;
		f.start_s = 1000;
		f.end_s = 1900000000;
		assert_int_equal(sms_fp_add(s, &f, "t"), 0);
		memset(&m, 0, sizeof(m));
		m.card = 2100000001;
		m.msg.scope = OSD_SCOPE_INDIVIDUAL;
		m.msg.flags = OSD_MSG_FORCED;
		m.msg.duration_s = 20;
		m.msg.fg[0] = m.msg.fg[1] = m.msg.fg[2] = 0xFF;
		m.msg.bg[3] = 0xC0;
		m.msg.font_px = 22;
		m.msg.expiry_s = 1900000000;
		m.start_s = 1000;
		assert_int_equal(osd_msg_set_text(&m.msg, "Your payment is due: ça marche, 支付"), 0);
		assert_int_equal(sms_msg_add(s, &m, "t"), 0);
	}
	{
		/* schema 8: a channel's copy control (C.6) */
		struct cas_usage u = { .copy_control = CAS_COPY_NEVER, .retention_s = 0 }, got;

		assert_int_equal(sms_usage_set(s, 102, &u, "t"), 0);
		u.copy_control = CAS_COPY_ONCE;
		u.retention_s = 86400;
		assert_int_equal(sms_usage_set(s, 101, &u, "t"), 0);
		assert_int_equal(sms_usage_get(s, 101, &got), 0);
		assert_int_equal(got.retention_s, 86400);
	}
	/* a digest past 2^63 (a negative BIGINT), and a numbered grant with
	 * extended packages (schema 4's sent_* columns) */
	assert_int_equal(sms_emm_seq_next(s, 2100000002, 1, 7, 0xFFFFFFFFFFFFFFF0ull, true, &seq), 0);
	{
		struct sms_emm_seq_req q = { .serial = 2100000001, .step = 1, .want = 40, .digest = 12345,
					     .has_sent = true, .sent_packages = 0x9, .sent_start = 100,
					     .sent_finish = 1900000000, .sent_next = 2, .sent_ext = { 40, 1000 } };

		assert_int_equal(sms_emm_seq_next_many(s, &q, 1), 0);
		assert_int_equal(q.seq, 40);
	}
	assert_int_equal(sms_node_status_put(s, "node-a", "{\"ecms\":12}"), 0);
	/* more rows than one page of the copy (1000) in cards, subscriptions
	 * (a two-column key), audit and the change feed */
	{
		struct sms_bulk *bk = NULL;
		static const uint32_t ext[] = { 40 };

		assert_int_equal(sms_tx_begin(s), 0);
		assert_int_equal(sms_bulk_new(s, "import", &bk), 0);
		for (int i = 0; i < 1500; i++) {
			struct sms_card bc = { .serial = 3100000000u + (uint64_t)i, .start = 100, .finish = 200,
					       .access_criteria = 0x5 };

			assert_int_equal(sms_bulk_card_add(bk, &bc, ext, 1), 0);
		}
		assert_int_equal(sms_bulk_flush(bk), 0);
		sms_bulk_free(bk);
		assert_int_equal(sms_tx_end(s, 0), 0);
	}
	assert_int_equal(sms_audit_checkpoint(s, g_priv, "t", false, &cp), 0);
	assert_int_equal(sms_card_set_state(s, 2100000001, SMS_CARD_ACTIVE, "t"), 0); /* after the checkpoint */
}

static struct sms_store *open_uri(const char *uri)
{
	struct sms_store *s = NULL;

	assert_int_equal(sms_store_open(uri, &s), 0);
	return s;
}

static void expect_same(const struct sms_copy_table *a, const struct sms_copy_table *b)
{
	for (size_t i = 0; i < SMS_COPY_TABLES; i++) {
		if (a[i].rows != b[i].rows || memcmp(a[i].digest, b[i].digest, 32) != 0)
			fail_msg("table %s: %lld rows vs %lld, or other values", a[i].name, (long long)a[i].rows,
				 (long long)b[i].rows);
	}
}

/* Every table of an SQLite file, as text, in a stable order; each value
 * with its storage class (an integer must stay an integer). */
static char *dump_sqlite(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *t = NULL;
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);

	assert_non_null(f);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'"
					    " AND name NOT IN ('sqlite_sequence', 'schema_version') ORDER BY name",
					    -1, &t, NULL), SQLITE_OK);
	while (sqlite3_step(t) == SQLITE_ROW) {
		char sql[300];
		const char *name = (const char *)sqlite3_column_text(t, 0);
		sqlite3_stmt *q = NULL;
		bool listed = false;

		/* derived tables (a text index kept by triggers on its table) are
		 * rebuilt by the copy's inserts, not copied */
		if (strstr(name, "_fts"))
			continue;
		for (size_t i = 0; sms_copy_table_name(i); i++)
			listed |= strcmp(sms_copy_table_name(i), name) == 0;
		if (!listed)
			fail_msg("table %s is not carried by sms migrate (store_copy.c tables[])", name);
		snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\" ORDER BY 1, 2", name);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
		fprintf(f, "## %s\n", name);
		while (sqlite3_step(q) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(q); c++) {
				const char *v = (const char *)sqlite3_column_text(q, c);

				fprintf(f, "%d:%s|", sqlite3_column_type(q, c), v ? v : "NULL");
			}
			fputc('\n', f);
		}
		sqlite3_finalize(q);
	}
	sqlite3_finalize(t);
	sqlite3_close(db);
	assert_int_equal(fclose(f), 0);
	return out;
}

static void expect_usable(struct sms_store *s, bool pg)
{
	struct sms_audit_verify v;
	struct sms_generator g;
	struct sms_emm_seq q;
	struct sms_package p;
	unsigned scopes = 0;
	char user[SMS_NAME_MAX + 1];
	uint32_t seq = 0;
	int64_t id = 0;

	/* API keys: the live one works with its scopes, the revoked one does not */
	assert_int_equal(sms_apikey_check(s, g_key, &scopes, user), 0);
	assert_int_equal(scopes, SMS_SCOPE_READ | SMS_SCOPE_WRITE);
	assert_string_equal(user, "billing");
	assert_int_equal(sms_apikey_check(s, g_revoked_key, &scopes, user), CE_NOT_FOUND);
	/* the chain and its signed checkpoint */
	assert_int_equal(sms_audit_verify(s, g_pub, &v), 0);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.checkpoints, 1);
	assert_int_equal(v.signed_ok, 1);
	/* names, extended packages, generators */
	assert_int_equal(sms_package_get(s, 1000, &p), 0);
	assert_string_equal(p.name, "Extended 1000");
	assert_int_equal(sms_package_get(s, 3, &p), 0);
	assert_string_equal(p.name, "Basic");
	assert_int_equal(sms_generator_first(s, SMS_GEN_ECMG, &g), 0);
	assert_string_equal(g.address, "0.0.0.0:3337");
	assert_int_equal(sms_emm_seq_get(s, 2100000002, &q), 0);
	assert_int_equal(q.seq, 7);
	assert_true(q.digest == 0xFFFFFFFFFFFFFFF0ull);
	/* new rows continue above the copied ones: on PostgreSQL the identity
	 * sequences were moved past the copied ids */
	if (pg) {
		int64_t max_id = 0;

		assert_int_equal(sms_subscriber_add(s, "new", "", "t", &id), 0);
		assert_true(id > 1);
		(void)max_id;
		assert_int_equal(sms_emm_seq_next(s, 2100000001, 1, 1, 1, false, &seq), 0);
		assert_int_equal(seq, 41);
		assert_int_equal(sms_audit_verify(s, g_pub, &v), 0);
		assert_int_equal(v.bad_seq, 0);
	}
}

static int run_cli(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run_cli(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	FILE *p;
	size_t n = 0;
	int st;
	int k = snprintf(cmd, sizeof(cmd), "'%s' ", getenv("CASTELLAN_BIN"));

	va_start(ap, fmt);
	vsnprintf(cmd + k, sizeof(cmd) - (size_t)k, fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (n + 1 < cap && !feof(p)) {
		size_t got = fread(out + n, 1, cap - 1 - n, p);

		if (got == 0)
			break;
		n += got;
	}
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_round_trip(void **state)
{
	char a_path[1200], b_path[1200], why[512], out[8192];
	struct sms_copy_table da[SMS_COPY_TABLES], dp[SMS_COPY_TABLES], db[SMS_COPY_TABLES], x[SMS_COPY_TABLES];
	struct sms_store *a, *p, *b, *a2;
	const char *pg_uri;
	char *dump_a, *dump_b;

	(void)state;
	if (!pg_be.available)
		skip();
	assert_int_equal(pk_ed25519_generate(g_priv, g_pub), 0);
	snprintf(a_path, sizeof(a_path), "%s", tdb_fresh(&sqlite_be));
	snprintf(b_path, sizeof(b_path), "%s", tdb_fresh(&sqlite_be));
	a = open_uri(a_path);
	populate(a);
	assert_int_equal(sms_store_digest(a, da), 0);
	for (size_t i = 0; i < SMS_COPY_TABLES; i++) /* something in every table */
		if (da[i].rows == 0)
			fail_msg("the test leaves table %s empty", da[i].name);

	/* SQLite -> PostgreSQL */
	pg_uri = tdb_fresh(&pg_be);
	p = open_uri(pg_uri);
	assert_int_equal(sms_store_copy(a, p, 0, x, why, sizeof(why)), 0);
	expect_same(x, da);
	assert_int_equal(sms_store_digest(p, dp), 0);
	expect_same(dp, da);

	/* PostgreSQL -> SQLite */
	b = open_uri(b_path);
	assert_int_equal(sms_store_copy(p, b, 0, x, why, sizeof(why)), 0);
	assert_int_equal(sms_store_digest(b, db), 0);
	expect_same(db, da);
	sms_store_close(b);
	sms_store_close(a);
	/* independently of the copy's table list: every table of the file */
	dump_a = dump_sqlite(a_path);
	dump_b = dump_sqlite(b_path);
	assert_true(strlen(dump_a) > 1000);
	if (strcmp(dump_a, dump_b) != 0) {
		size_t k = 0;

		while (dump_a[k] && dump_a[k] == dump_b[k])
			k++;
		while (k > 0 && dump_a[k - 1] != '\n')
			k--;
		fail_msg("the files differ from:\n%.120s\n----\n%.120s", dump_a + k, dump_b + k);
	}
	free(dump_a);
	free(dump_b);

	/* what must keep working, on both targets */
	b = open_uri(b_path);
	expect_usable(b, false);
	expect_usable(p, true); /* (adds rows to p) */
	assert_int_equal(run_cli(out, sizeof(out), "audit --db '%s' verify", b_path), 0);

	/* refusals: a non-empty target, untouched */
	a = open_uri(a_path);
	assert_int_equal(sms_store_digest(p, dp), 0);
	assert_int_equal(sms_store_copy(a, p, 0, x, why, sizeof(why)), CE_EXISTS);
	assert_non_null(strstr(why, "not empty"));
	assert_int_equal(sms_store_digest(p, x), 0);
	expect_same(x, dp);
	/* ... unless told: then it holds the source's rows only */
	assert_int_equal(sms_store_copy(a, p, SMS_COPY_OVERWRITE, x, why, sizeof(why)), 0);
	assert_int_equal(sms_store_digest(p, x), 0);
	expect_same(x, da);
	/* the same database on both sides */
	a2 = open_uri(a_path);
	assert_int_equal(sms_store_copy(a, a2, SMS_COPY_OVERWRITE, x, why, sizeof(why)), CE_ARG);
	assert_non_null(strstr(why, "same database"));
	sms_store_close(a2);
	a2 = open_uri(pg_uri);
	assert_int_equal(sms_store_copy(p, a2, SMS_COPY_OVERWRITE, x, why, sizeof(why)), CE_ARG);
	sms_store_close(a2);
	assert_int_equal(sms_store_digest(a, x), 0);
	expect_same(x, da);
	sms_store_close(a);
	sms_store_close(b);
	sms_store_close(p);

	/* the command: copies and compares; refuses a second time and says how */
	{
		char c_path[1300];

		snprintf(c_path, sizeof(c_path), "%s.cli", b_path);
		assert_int_equal(run_cli(out, sizeof(out), "sms migrate --from '%s' --to 'sqlite:%s'", a_path, c_path), 0);
		assert_non_null(strstr(out, "every table equal"));
		assert_non_null(strstr(out, "panel_users"));
		assert_int_equal(run_cli(out, sizeof(out), "sms migrate --from '%s' --to '%s'", a_path, c_path), 1);
		assert_non_null(strstr(out, "not empty"));
		assert_non_null(strstr(out, "--overwrite"));
		assert_int_equal(
			run_cli(out, sizeof(out), "sms migrate --from '%s' --to '%s' --overwrite", a_path, c_path), 0);
		/* the URIs from files (mode 600), as --db-file */
		{
			char uf[1400];
			FILE *f;

			snprintf(uf, sizeof(uf), "%s.uri", c_path);
			assert_non_null(f = fopen(uf, "w"));
			fprintf(f, "sqlite:%s\n", c_path);
			fclose(f);
			assert_int_equal(chmod(uf, 0600), 0);
			assert_int_equal(run_cli(out, sizeof(out), "sms migrate --from '%s' --to-file '%s' --overwrite",
						 a_path, uf), 0);
			assert_non_null(strstr(out, "every table equal"));
			assert_int_equal(chmod(uf, 0644), 0); /* readable by others: refused */
			assert_int_not_equal(run_cli(out, sizeof(out), "sms migrate --from '%s' --to-file '%s' --overwrite",
						     a_path, uf), 0);
		}
		assert_int_equal(run_cli(out, sizeof(out), "sms migrate --from '%s'", a_path), 1);
		assert_non_null(strstr(out, "--to"));
		assert_int_equal(run_cli(out, sizeof(out), "sms migrate --from '%s' --to '%s' --bogus", a_path, c_path), 2);
		assert_int_equal(run_cli(out, sizeof(out), "sms migrate --help"), 0);
		assert_non_null(strstr(out, "--from-file"));
		assert_int_equal(run_cli(out, sizeof(out), "audit --db '%s' verify", c_path), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
	};
	char cmd[300];
	int fails;

	(void)tdb_run_both; /* sms_testdb.h's, for the suites on both backends */
	(void)tdb_open_fresh;
	snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/castellan-migrate-XXXXXX");
	if (!mkdtemp(sqlite_dir))
		return 1;
	sqlite_be.available = true;
	tdb_pg_start();
	if (!pg_be.available)
		printf("SKIP: PostgreSQL: %s\n", pg_be.why);
	fails = cmocka_run_group_tests_name("sms migrate", tests, NULL, NULL);
	tdb_pg_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", sqlite_dir);
	(void)tdb_run(cmd);
	return fails;
}
