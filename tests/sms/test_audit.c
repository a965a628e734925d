/*
 * test_audit.c - the audit chain (schema 4): every change appended and
 * chained, tamper detection (an edited, a deleted, a re-chained entry, a
 * truncated end with and without the checkpoint file), signed checkpoints,
 * the migration from schema 3 (older rows chained, card baselines, run
 * twice), the bulk path's entries; the blacklist in the store. On SQLite
 * and PostgreSQL (sms_testdb.h).
 */
#include <dirent.h>
#include <sys/wait.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#define SMS_TEST_PG_PORT 5471
#include "sms_testdb.h"
#include "crypto/pk.h"
#include "sms/report.h"
#include "headend/reconcile.h"

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

		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			fail_msg("%s: %s", sql, PQerrorMessage(c));
		PQclear(res);
		PQfinish(c);
	}
}

static struct sms_store *open_uri(const char *uri)
{
	struct sms_store *s = NULL;

	assert_int_equal(sms_store_open(uri, &s), 0);
	return s;
}

/* A small history: cards, packages, subscriptions, a state change, a delete. */
static void history(struct sms_store *s)
{
	struct sms_card c = { .serial = 2100000001 };
	struct sms_subscription sub = { .serial = 2100000001, .package = 3, .start = 100, .finish = 200 };
	struct sms_card_change ch = { .has_ac = true, .access_criteria = 0x5 };

	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-1");
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	c.serial = 2100000002;
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-2");
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	assert_int_equal(sms_package_add(s, 40, "sport", "test"), 0);
	assert_int_equal(sms_subscribe(s, &sub, "test"), 0);
	sub.package = 40;
	assert_int_equal(sms_subscribe(s, &sub, "test"), 0);
	assert_int_equal(sms_card_change(s, 2100000002, &ch, "test", NULL), 0);
	assert_int_equal(sms_card_set_state(s, 2100000002, SMS_CARD_BLOCKED, "test"), 0);
	assert_int_equal(sms_unsubscribe(s, 2100000001, 3, "test"), 0);
	assert_int_equal(sms_card_delete(s, 2100000002, "test"), 0);
	assert_int_equal(sms_channel_set(s, 101, "news", 0x1, "test"), 0);
}

static void expect_intact(struct sms_store *s, const uint8_t *pub, int64_t entries)
{
	struct sms_audit_verify v;

	assert_int_equal(sms_audit_verify(s, pub, &v), 0);
	if (v.bad_seq)
		fail_msg("chain broken at %lld: %s", (long long)v.bad_seq, v.why);
	if (entries >= 0)
		assert_int_equal(v.entries, entries);
}

static void expect_broken(struct sms_store *s, const uint8_t *pub, int64_t at, const char *why_part)
{
	struct sms_audit_verify v;

	assert_int_equal(sms_audit_verify(s, pub, &v), 0);
	assert_int_equal(v.bad_seq, at);
	assert_non_null(strstr(v.why, why_part));
}

struct collect {
	char actions[64][32];
	char snaps[64][200];
	int64_t seq[64];
	size_t n;
};

static int collect_cb(void *ctx, const struct sms_audit_entry *e)
{
	struct collect *c = ctx;

	if (c->n < 64) {
		snprintf(c->actions[c->n], sizeof(c->actions[0]), "%s", e->action);
		snprintf(c->snaps[c->n], sizeof(c->snaps[0]), "%s", e->snapshot);
		c->seq[c->n] = e->seq;
		c->n++;
	}
	return 0;
}

static void test_chain(void **state)
{
	const char *uri = tdb_fresh(*state);
	struct sms_store *s = open_uri(uri);
	struct collect c = { .n = 0 };
	size_t n = 0;

	history(s);
	expect_intact(s, NULL, 10);
	assert_int_equal(sms_audit_range(s, 0, 0, 100, collect_cb, &c, &n), 0);
	assert_int_equal(n, 10);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(c.seq[i], (int64_t)i + 1);
	assert_string_equal(c.actions[0], "card.add");
	assert_string_equal(c.snaps[0], "state=0 bl=0 pair=0 subs= chip=BOX-1");
	assert_string_equal(c.actions[2], "package.add");
	assert_string_equal(c.actions[4], "subscribe");
	assert_string_equal(c.snaps[4], "state=0 bl=0 pair=0 subs=3:100:200,40:100:200 chip=BOX-1");
	assert_string_equal(c.actions[5], "card.change");
	assert_string_equal(c.snaps[5], "state=0 bl=0 pair=0 subs=0:0:0,2:0:0 chip=BOX-2");
	assert_string_equal(c.actions[6], "card.state");
	assert_string_equal(c.snaps[8], "deleted");
	assert_string_equal(c.actions[9], "channel.set");
	assert_string_equal(c.snaps[9], "");
	sms_store_close(s);
}

/* Each connection chains to the head it last saw: two connections taking
 * turns (each one's cached head stale every time), a rolled-back append
 * (the cache must not keep it), and the head removed under a connection
 * (its cached head no longer in the table) all still give one intact chain
 * with every entry in it. */
static void test_two_connections(void **state)
{
	struct backend *be = *state;
	const char *uri = tdb_fresh(be);
	struct sms_store *a = open_uri(uri), *b = open_uri(uri);
	struct sms_card c = { .serial = 2100000100 };
	int64_t entries = 0;

	for (int i = 0; i < 6; i++) {
		struct sms_store *s = i % 2 ? b : a;

		c.serial = 2100000100 + (uint64_t)i;
		assert_int_equal(sms_card_add(s, &c, i % 2 ? "b" : "a"), 0);
		entries++;
		/* the same connection twice in a row: its cache is right */
		assert_int_equal(sms_card_set_state(s, c.serial, SMS_CARD_BLOCKED, "x"), 0);
		entries++;
	}
	expect_intact(a, NULL, entries);
	/* appended, then rolled back: nothing of it stays, a's next entry
	 * chains to the real head */
	assert_int_equal(sms_tx_begin(a), 0);
	assert_int_equal(sms_card_set_state(a, 2100000100, SMS_CARD_ACTIVE, "a"), 0);
	assert_int_equal(sms_tx_end(a, CE_ARG), CE_ARG);
	assert_int_equal(sms_card_set_state(b, 2100000101, SMS_CARD_ACTIVE, "b"), 0);
	entries++;
	assert_int_equal(sms_card_set_state(a, 2100000102, SMS_CARD_ACTIVE, "a"), 0);
	entries++;
	expect_intact(b, NULL, entries);
	/* one transaction of several entries after b moved the head on */
	assert_int_equal(sms_card_set_state(b, 2100000103, SMS_CARD_ACTIVE, "b"), 0);
	entries++;
	assert_int_equal(sms_tx_begin(a), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sms_card_set_state(a, 2100000104, i % 2 ? SMS_CARD_ACTIVE : SMS_CARD_BLOCKED, "a"), 0);
	assert_int_equal(sms_tx_end(a, 0), 0);
	entries += 3;
	expect_intact(a, NULL, entries);
	/* the last entry cut off behind a's back: a does not chain to what
	 * is gone (no gap in seq), the chain stays whole */
	{
		char sql[100];

		snprintf(sql, sizeof(sql), "DELETE FROM audit WHERE seq = %lld", (long long)entries);
		raw_sql(be, uri, sql);
		entries--;
	}
	assert_int_equal(sms_card_set_state(a, 2100000105, SMS_CARD_ACTIVE, "a"), 0);
	entries++;
	expect_intact(b, NULL, entries);
	sms_store_close(a);
	sms_store_close(b);
}

struct rows {
	struct sms_audit_entry e[32];
	char strs[32][5][600];
	size_t n;
};

static int rows_cb(void *ctx, const struct sms_audit_entry *e)
{
	struct rows *r = ctx;
	size_t i = r->n++;

	assert_true(i < 32);
	r->e[i] = *e;
	snprintf(r->strs[i][0], 600, "%s", e->action);
	snprintf(r->strs[i][1], 600, "%s", e->object);
	snprintf(r->strs[i][2], 600, "%s", e->details);
	snprintf(r->strs[i][3], 600, "%s", e->snapshot);
	r->e[i].action = r->strs[i][0];
	r->e[i].object = r->strs[i][1];
	r->e[i].details = r->strs[i][2];
	r->e[i].snapshot = r->strs[i][3];
	return 0;
}

/* Rewrite entry seq's details and re-link every hash from there on, as
 * the canonical form says (the library's own hash function). */
static void rechain_from(struct backend *be, const char *uri, int64_t seq, const char *details)
{
	struct sms_store *s = open_uri(uri);
	static struct rows r;
	uint8_t prev[32];
	size_t n = 0;

	memset(&r, 0, sizeof(r));
	assert_int_equal(sms_audit_range(s, 0, 0, 32, rows_cb, &r, &n), 0);
	sms_store_close(s);
	memcpy(prev, r.e[seq - 2].hash, 32);
	snprintf(r.strs[seq - 1][2], 600, "%s", details);
	for (size_t i = (size_t)seq - 1; i < r.n; i++) {
		char sql[1000], ph[65], h[65];

		memcpy(r.e[i].prev_hash, prev, 32);
		assert_int_equal(sms_audit_entry_hash(&r.e[i], r.e[i].hash), 0);
		memcpy(prev, r.e[i].hash, 32);
		hex_encode(r.e[i].prev_hash, 32, ph);
		hex_encode(r.e[i].hash, 32, h);
		snprintf(sql, sizeof(sql), "UPDATE audit SET what = '%s', prev_hash = '%s', hash = '%s' WHERE seq = %lld",
			 r.e[i].details, ph, h, (long long)r.e[i].seq);
		raw_sql(be, uri, sql);
	}
}

static void test_tamper(void **state)
{
	struct backend *be = *state;
	const char *uri = tdb_fresh(be);
	struct sms_store *s = open_uri(uri);
	uint8_t priv[32], pub[32], wrong[32], wpub[32];
	struct sms_audit_checkpoint cp;
	struct sms_audit_verify v;
	char line[300];

	assert_int_equal(pk_ed25519_generate(priv, pub), 0);
	assert_int_equal(pk_ed25519_generate(wrong, wpub), 0);
	history(s);
	assert_int_equal(sms_audit_checkpoint(s, priv, "test", false, &cp), 0);
	assert_int_equal(cp.seq, 10);
	{
		struct sms_audit_checkpoint again;

		/* nothing new since: a periodic checkpointer writes nothing; forced, it signs its own entry */
		assert_int_equal(sms_audit_checkpoint(s, priv, "test", false, &again), CE_EXISTS);
		assert_int_equal(sms_audit_checkpoint(s, priv, "test", true, &again), 0);
		assert_int_equal(again.seq, 11);
		raw_sql(be, uri, "DELETE FROM audit WHERE seq = 12; DELETE FROM audit_checkpoints WHERE seq = 11");
		sms_store_close(s);
		s = open_uri(uri);
	}
	assert_int_equal(sms_audit_checkpoint_line(&cp, line, sizeof(line)), 0);
	expect_intact(s, pub, 11); /* + the checkpoint's own entry */
	assert_int_equal(sms_audit_verify(s, pub, &v), 0);
	assert_int_equal(v.checkpoints, 1);
	assert_int_equal(v.signed_ok, 1);
	/* another key's public key: the signature does not verify */
	expect_broken(s, wpub, 10, "signature");
	sms_store_close(s);

	/* 1. an edited entry (its text; then its time) */
	raw_sql(be, uri, "UPDATE audit SET what = 'subscribe card 2100000001 package 3 100..999' WHERE seq = 4");
	s = open_uri(uri);
	expect_broken(s, pub, 4, "altered");
	sms_store_close(s);
	raw_sql(be, uri, "UPDATE audit SET what = 'subscribe card 2100000001 package 3 100..200' WHERE seq = 4");
	s = open_uri(uri);
	expect_intact(s, pub, 11); /* put back byte for byte: intact again (the hash is of the content) */
	sms_store_close(s);
	raw_sql(be, uri, "UPDATE audit SET at_ms = at_ms + 1 WHERE seq = 7");
	s = open_uri(uri);
	expect_broken(s, pub, 7, "altered");
	sms_store_close(s);
	raw_sql(be, uri, "UPDATE audit SET at_ms = at_ms - 1 WHERE seq = 7");

	/* 2. a deleted entry in the middle */
	raw_sql(be, uri, "CREATE TABLE audit_keep AS SELECT * FROM audit");
	raw_sql(be, uri, "DELETE FROM audit WHERE seq = 5");
	s = open_uri(uri);
	expect_broken(s, pub, 5, "deleted");
	sms_store_close(s);
	/* ... and renumbered so the seqs have no gap: prev_hash gives it away */
	raw_sql(be, uri, "UPDATE audit SET seq = -seq WHERE seq > 5; UPDATE audit SET seq = -seq - 1 WHERE seq < 0");
	s = open_uri(uri);
	expect_broken(s, pub, 5, "removed or replaced");
	sms_store_close(s);
	raw_sql(be, uri, "DELETE FROM audit; INSERT INTO audit SELECT * FROM audit_keep");

	/* 3. an entry rewritten and the chain re-linked from it, every hash
	 * recomputed (all an intruder without the audit key can do): the walk
	 * holds, the signed checkpoint at 10 does not. */
	rechain_from(be, uri, 8, "card delete 2100000009");
	s = open_uri(uri);
	expect_broken(s, pub, 10, "rewritten");
	sms_store_close(s);
	raw_sql(be, uri, "DELETE FROM audit; INSERT INTO audit SELECT * FROM audit_keep");

	/* 4. truncation: the last entries cut off. The stored checkpoint (at
	 * 11) is past the end. */
	raw_sql(be, uri, "DELETE FROM audit WHERE seq >= 10");
	s = open_uri(uri);
	expect_broken(s, pub, 10, "truncated");
	sms_store_close(s);
	/* ... and the stored checkpoints with them: the database alone looks
	 * whole, the checkpoint file outside it does not. */
	raw_sql(be, uri, "DELETE FROM audit_checkpoints");
	s = open_uri(uri);
	expect_intact(s, pub, 9);
	{
		struct sms_audit_checkpoint fcp;

		assert_int_equal(sms_audit_checkpoint_parse(line, &fcp), 0);
		assert_int_equal(sms_audit_verify(s, pub, &v), 0);
		assert_int_equal(sms_audit_check_checkpoint(s, &fcp, pub, &v), 0);
		assert_int_equal(v.bad_seq, 10);
		assert_non_null(strstr(v.why, "truncated"));
	}
	sms_store_close(s);
	/* 5. everything emptied: the file's checkpoint still says 10 */
	raw_sql(be, uri, "DELETE FROM audit");
	s = open_uri(uri);
	{
		struct sms_audit_checkpoint fcp;

		assert_int_equal(sms_audit_checkpoint_parse(line, &fcp), 0);
		assert_int_equal(sms_audit_verify(s, pub, &v), 0);
		assert_int_equal(v.bad_seq, 0);
		assert_int_equal(sms_audit_check_checkpoint(s, &fcp, pub, &v), 0);
		assert_int_equal(v.bad_seq, 10);
	}
	sms_store_close(s);
	/* 6. a row inserted the old way (no seq) */
	raw_sql(be, uri, "DELETE FROM audit; INSERT INTO audit SELECT * FROM audit_keep;"
			 "INSERT INTO audit (at_ms, who, what) VALUES (1, 'x', 'sneaked in')");
	s = open_uri(uri);
	expect_broken(s, pub, -1, "outside the chain");
	sms_store_close(s);
	secret_wipe(priv, sizeof(priv));
	secret_wipe(wrong, sizeof(wrong));
}

static void test_checkpoint_lines(void **state)
{
	static const char *bad[] = {
		"",
		"0 1 " "0000000000000000000000000000000000000000000000000000000000000000 k "
		"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
		"5 1 00 k 00",
		"5 1 zz00000000000000000000000000000000000000000000000000000000000000 k "
		"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
		"5 1 0000000000000000000000000000000000000000000000000000000000000000 k "
		"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
		"5 1 0000000000000000000000000000000000000000000000000000000000000000 k "
		"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000 extra",
		"x 1 0000000000000000000000000000000000000000000000000000000000000000 k "
		"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
		/* strict numbers (strtoll took these): a sign, a space, hex, a suffix */
		"+5 1 %H k %S", " 5 1 %H k %S", "5 0x1 %H k %S", "5 1x %H k %S", "5  1 %H k %S",
		"9223372036854775808 1 %H k %S",
		/* fields: no key id, a 40-byte key id, a space before the line end */
		"5 1 %H  %S", "5 1 %H kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk %S", "5 1 %H k %S ",
	};
	struct sms_audit_checkpoint cp = { .seq = 42, .at_ms = 7, .key_id = "0102030405060708" }, got;
	char line[300];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char b[400], *o = b;

		/* %H, %S: a well-formed hash and signature */
		for (const char *p = bad[i]; *p && o < b + sizeof(b) - 130; p++) {
			if (p[0] == '%' && (p[1] == 'H' || p[1] == 'S')) {
				size_t n = p[1] == 'H' ? 64 : 128;

				memset(o, '0', n);
				o += n;
				p++;
			} else {
				*o++ = *p;
			}
		}
		*o = '\0';
		if (sms_audit_checkpoint_parse(b, &got) != CE_FORMAT)
			fail_msg("bad line %zu accepted: %s", i, b);
	}
	{ /* the same template, well formed, parses (the table is not vacuous) */
		char hz[65], sz[129], ok[300];

		memset(hz, '0', 64);
		hz[64] = '\0';
		memset(sz, '0', 128);
		sz[128] = '\0';
		snprintf(ok, sizeof(ok), "5 -1 %s %s %s\r\n", hz, "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", sz);
		assert_int_equal(sms_audit_checkpoint_parse(ok, &got), 0);
		assert_int_equal(got.seq, 5);
		assert_int_equal(got.at_ms, -1);
	}
	memset(cp.hash, 0xab, 32);
	memset(cp.sig, 0xcd, 64);
	assert_int_equal(sms_audit_checkpoint_line(&cp, line, sizeof(line)), 0);
	assert_int_equal(sms_audit_checkpoint_parse(line, &got), 0);
	assert_int_equal(got.seq, 42);
	assert_int_equal(got.at_ms, 7);
	assert_memory_equal(got.hash, cp.hash, 32);
	assert_memory_equal(got.sig, cp.sig, 64);
	assert_string_equal(got.key_id, cp.key_id);
}

/* The fuzz corpus (fuzz/corpus/audit) replayed as fuzz_audit.c does. */
static void test_fuzz_corpus_audit(void **state)
{
	char dir[4200];
	DIR *d;
	struct dirent *e;
	size_t n = 0;

	(void)state;
	snprintf(dir, sizeof(dir), "%s", tu_testdata("../../fuzz/corpus/audit"));
	assert_non_null(d = opendir(dir));
	while ((e = readdir(d)) != NULL) {
		char path[4500], line[4096], out[400];
		uint8_t *b;
		size_t len = 0;
		struct sms_audit_checkpoint cp, back;
		struct sms_report_params p;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		b = tu_read(path, &len);
		n++;
		if (len < 1 || len > sizeof(line)) {
			free(b);
			continue;
		}
		memcpy(line, b + 1, len - 1);
		line[len - 1] = '\0';
		if (b[0] & 1) {
			char *eq = strchr(line, '=');

			sms_report_params_init(&p);
			if (eq) {
				*eq = '\0';
				int pr = sms_report_param(&p, line, eq + 1);

				assert_true(pr == 0 || pr == CE_RANGE || pr == CE_NOT_FOUND);
			}
			assert_true(p.ndays <= 31);
			for (size_t i = 0; i < p.ndays; i++)
				assert_true(p.days[i] >= 1 && p.days[i] <= 31);
		} else if (sms_audit_checkpoint_parse(line, &cp) == 0) {
			assert_int_equal(sms_audit_checkpoint_line(&cp, out, sizeof(out)), 0);
			assert_int_equal(sms_audit_checkpoint_parse(out, &back), 0);
			assert_int_equal(back.seq, cp.seq);
			assert_memory_equal(back.sig, cp.sig, 64);
		}
		free(b);
	}
	closedir(d);
	assert_true(n >= 5);
}

/* ---- the commands: castellan audit, sms blacklist / report / reconcile ---- */

static void test_cli(void **state)
{
	char d[300], a[2400], out[8192];
	FILE *f;

	(void)state;
	snprintf(d, sizeof(d), "%s/cli", sqlite_dir);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(a, sizeof(a), "%s/pass", d);
	assert_non_null(f = fopen(a, "w"));
	fputs("correct horse battery\n", f);
	fclose(f);
	assert_int_equal(chmod(a, 0600), 0); /* passphrase files others may read are refused */
	snprintf(a, sizeof(a), "sms --db %s/s.db card add 2100000001 --chip BOX-1", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	snprintf(a, sizeof(a), "sms --db %s/s.db subscribe 2100000001 --packages 0,5 --start 1 --finish 4000000000", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	/* blacklist */
	snprintf(a, sizeof(a), "sms --db %s/s.db blacklist add box BOX-1 --reason 'seized'", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	snprintf(a, sizeof(a), "sms --db %s/s.db blacklist list", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "box\tBOX-1\t"));
	assert_non_null(strstr(out, "\tcli\tseized"));
	snprintf(a, sizeof(a), "sms --db %s/s.db subscribe 2100000001 --packages 1 --start 1 --finish 4000000000", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "blocked"));
	/* a report, CSV and JSON */
	snprintf(a, sizeof(a), "sms --db %s/s.db report summary", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "status,cards\r\nregistered,1\r\nactive,0\r\n"));
	assert_non_null(strstr(out, "blacklisted,1\r\n"));
	snprintf(a, sizeof(a), "sms --db %s/s.db report active --package 5 --at 100 --format json", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"report\": \"active\""));
	snprintf(a, sizeof(a), "sms --db %s/s.db report active", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "needs --package or --channel"));
	/* reconcile: no head-end ran, the card is blocked and was never sent: the same */
	snprintf(a, sizeof(a), "sms --db %s/s.db reconcile", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "0 differences"));
	/* the audit key, a checkpoint into the file, verify, tamper, verify */
	snprintf(a, sizeof(a), "audit keygen --key %s/a.key --pub %s/a.pub --passphrase-file %s/pass", d, d, d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	snprintf(a, sizeof(a), "audit --db %s/s.db checkpoint --key %s/a.key --passphrase-file %s/pass --out %s/cps", d, d,
		 d, d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	snprintf(a, sizeof(a), "audit --db %s/s.db checkpoint --key %s/a.key --out %s/cps", d, d, d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 1); /* no passphrase */
	snprintf(a, sizeof(a), "audit --db %s/s.db verify --pub %s/a.pub --checkpoints %s/cps", d, d, d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "audit log intact"));
	assert_non_null(strstr(out, "signatures verified"));
	snprintf(a, sizeof(a), "audit --db %s/s.db export --format json --out %s/x.json", d, d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	{
		json_error_t je;
		json_t *j;

		snprintf(a, sizeof(a), "%s/x.json", d);
		assert_non_null(j = json_load_file(a, 0, &je));
		assert_true(json_array_size(json_object_get(j, "entries")) >= 5);
		assert_int_equal(json_array_size(json_object_get(j, "checkpoints")), 1);
		json_decref(j);
	}
	snprintf(a, sizeof(a), "%s/s.db", d);
	raw_sql(&sqlite_be, a, "DELETE FROM audit WHERE seq >= 3; DELETE FROM audit_checkpoints");
	snprintf(a, sizeof(a), "audit --db %s/s.db verify --pub %s/a.pub --checkpoints %s/cps", d, d, d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "BROKEN"));
	assert_non_null(strstr(out, "truncated"));
}

/* A schema-3 base (as released: no chain columns, no blacklist) moves to
 * schema 4: its rows are chained in id order, each card gets a baseline
 * entry, and running migration 4 again changes nothing. */
static void test_migrate_from_3(void **state)
{
	struct backend *be = *state;
	const char *uri = tdb_fresh(be);
	struct sms_store *s = open_uri(uri);
	struct collect c = { .n = 0 };
	size_t n = 0;
	int v = 0;

	history(s);
	sms_store_close(s);
	raw_sql(be, uri, "DROP TABLE blacklist; DROP TABLE audit_checkpoints; DROP INDEX audit_seq; DROP INDEX audit_object;"
			 "ALTER TABLE audit DROP COLUMN seq; ALTER TABLE audit DROP COLUMN action;"
			 "ALTER TABLE audit DROP COLUMN object; ALTER TABLE audit DROP COLUMN snapshot;"
			 "ALTER TABLE audit DROP COLUMN prev_hash; ALTER TABLE audit DROP COLUMN hash;"
			 "ALTER TABLE emm_seq DROP COLUMN sent_packages; ALTER TABLE emm_seq DROP COLUMN sent_ext;"
			 "ALTER TABLE emm_seq DROP COLUMN sent_start; ALTER TABLE emm_seq DROP COLUMN sent_finish;"
			 "DROP TABLE panel_users; DELETE FROM schema_version WHERE version >= 4");
	s = open_uri(uri);
	assert_int_equal(sms_store_schema_version(s, &v), 0);
	assert_int_equal(v, SMS_SCHEMA_VERSION);
	/* 10 older entries, then the baseline of the one card left */
	expect_intact(s, NULL, 11);
	assert_int_equal(sms_audit_range(s, 0, 0, 100, collect_cb, &c, &n), 0);
	assert_int_equal(n, 11);
	assert_string_equal(c.actions[0], "legacy");
	assert_string_equal(c.actions[10], "card.baseline");
	assert_string_equal(c.snaps[10], "state=0 bl=0 pair=0 subs=40:100:200 chip=BOX-1");
	/* new entries chain on */
	assert_int_equal(sms_card_set_state(s, 2100000001, SMS_CARD_BLOCKED, "test"), 0);
	expect_intact(s, NULL, 12);
	sms_store_close(s);

	/* migration 4 again over a schema-4 base: nothing added, nothing broken */
	raw_sql(be, uri, "DROP TABLE panel_users; DELETE FROM schema_version WHERE version >= 4");
	s = open_uri(uri);
	assert_int_equal(sms_store_schema_version(s, &v), 0);
	assert_int_equal(v, SMS_SCHEMA_VERSION);
	expect_intact(s, NULL, 12);
	sms_store_close(s);
}

static void test_bulk_chained(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_bulk *b = NULL;
	struct collect c = { .n = 0 };
	size_t n = 0;
	uint32_t pk[3] = { 40, 7, 40 };

	assert_int_equal(sms_package_add(s, 40, "sport", "test"), 0);
	assert_int_equal(sms_tx_begin(s), 0);
	assert_int_equal(sms_bulk_new(s, "cli:import", &b), 0);
	for (uint64_t i = 0; i < 70; i++) { /* more than one batch of 64 */
		struct sms_card cd = { .serial = 2200000000 + i, .access_criteria = 0x81, .start = 1, .finish = 9 };

		snprintf(cd.chip_id, sizeof(cd.chip_id), "C%llu", (unsigned long long)i);
		assert_int_equal(sms_bulk_card_add(b, &cd, pk, 3), 0);
	}
	assert_int_equal(sms_bulk_flush(b), 0);
	sms_bulk_free(b);
	assert_int_equal(sms_audit_add(s, "cli:import", "import 70 rows"), 0);
	assert_int_equal(sms_tx_end(s, 0), 0);
	expect_intact(s, NULL, 72);
	assert_int_equal(sms_audit_range(s, 1, 0, 3, collect_cb, &c, &n), 0);
	assert_string_equal(c.actions[0], "card.add");
	/* the bulk path's snapshot is the one the store would take */
	assert_string_equal(c.snaps[0], "state=0 bl=0 pair=0 subs=0:1:9,7:1:9,40:1:9 chip=C0");
	{
		char *snap_now = NULL;
		struct collect d = { .n = 0 };

		/* a change logs the card as the store reads it: same text */
		assert_int_equal(sms_channel_set(s, 5, "x", 1, "test"), 0);
		assert_int_equal(sms_card_set_state(s, 2200000000, SMS_CARD_ACTIVE, "test"), 0);
		assert_int_equal(sms_audit_range(s, 73, 0, 1, collect_cb, &d, &n), 0);
		assert_string_equal(d.snaps[0], "state=0 bl=0 pair=0 subs=0:1:9,7:1:9,40:1:9 chip=C0");
		(void)snap_now;
	}
	sms_store_close(s);
}

static int count_bl(void *ctx, const struct sms_blacklist_entry *b)
{
	(void)ctx;
	assert_true(b->at_ms > 0);
	assert_string_equal(b->who, "test");
	return 0;
}

/* A blacklisted card or box: never activated or re-deployed again. */
static void test_blacklist_store(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_card c = { .serial = 2100000001 }, got;
	struct sms_subscription sub = { .serial = 2100000001, .package = 1, .start = 1, .finish = 2 };
	struct sms_card_change ch = { 0 };
	struct sms_bulk *b = NULL;
	bool yes = false;
	size_t n = 0;

	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-1");
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	c.serial = 2100000002; /* a second card in the same box */
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	c.serial = 2100000003;
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-3");
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	assert_int_equal(sms_subscribe(s, &sub, "test"), 0);

	assert_int_equal(sms_blacklist_add(s, SMS_BL_CARD, "2100000001", "cloned card seen on sharing server", "test"), 0);
	assert_int_equal(sms_blacklist_add(s, SMS_BL_CARD, "2100000001", "again", "test"), CE_EXISTS);
	assert_int_equal(sms_blacklist_add(s, SMS_BL_CARD, "abc", "x", "test"), CE_RANGE);
	assert_int_equal(sms_blacklist_add(s, SMS_BL_CARD, "0", "x", "test"), CE_RANGE);
	assert_int_equal(sms_blacklist_check(s, SMS_BL_CARD, "2100000001", &yes), 0);
	assert_true(yes);
	/* blocked at once */
	assert_int_equal(sms_card_get(s, 2100000001, &got), 0);
	assert_int_equal(got.state, SMS_CARD_BLOCKED);
	/* no activation, no grant, no pairing, no new box */
	assert_int_equal(sms_card_set_state(s, 2100000001, SMS_CARD_ACTIVE, "test"), CE_BLOCKED);
	assert_int_equal(sms_subscribe(s, &sub, "test"), CE_BLOCKED);
	ch.has_state = true;
	ch.state = SMS_CARD_ACTIVE;
	assert_int_equal(sms_card_change(s, 2100000001, &ch, "test", NULL), CE_BLOCKED);
	memset(&ch, 0, sizeof(ch));
	ch.has_ac = true;
	ch.access_criteria = 1;
	assert_int_equal(sms_card_change(s, 2100000001, &ch, "test", NULL), CE_BLOCKED);
	memset(&ch, 0, sizeof(ch));
	ch.has_finish = true;
	ch.finish = 99;
	assert_int_equal(sms_card_change(s, 2100000001, &ch, "test", NULL), CE_BLOCKED);
	/* taking away and renaming still work */
	memset(&ch, 0, sizeof(ch));
	ch.has_ac = true;
	ch.access_criteria = 0;
	ch.has_name = true;
	snprintf(ch.name, sizeof(ch.name), "pirate");
	assert_int_equal(sms_card_change(s, 2100000001, &ch, "test", NULL), 0);
	assert_int_equal(sms_card_set_state(s, 2100000001, SMS_CARD_RETIRED, "test"), 0);
	/* deleted and added again: refused */
	assert_int_equal(sms_card_delete(s, 2100000001, "test"), 0);
	c.serial = 2100000001;
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-9");
	assert_int_equal(sms_card_add(s, &c, "test"), CE_BLOCKED);

	/* a box: every card in it blocked; no card may go into it */
	assert_int_equal(sms_blacklist_add(s, SMS_BL_BOX, "BOX-1", "tampered box", "test"), 0);
	assert_int_equal(sms_card_get(s, 2100000002, &got), 0);
	assert_int_equal(got.state, SMS_CARD_BLOCKED);
	assert_int_equal(sms_card_set_state(s, 2100000002, SMS_CARD_ACTIVE, "test"), CE_BLOCKED);
	c.serial = 2100000004;
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-1");
	assert_int_equal(sms_card_add(s, &c, "test"), CE_BLOCKED);
	memset(&ch, 0, sizeof(ch));
	ch.has_chip = true;
	snprintf(ch.chip_id, sizeof(ch.chip_id), "BOX-1");
	assert_int_equal(sms_card_change(s, 2100000003, &ch, "test", NULL), CE_BLOCKED);
	/* the card moved out of the blacklisted box is still refused (its box is) */
	snprintf(ch.chip_id, sizeof(ch.chip_id), "BOX-NEW");
	assert_int_equal(sms_card_change(s, 2100000002, &ch, "test", NULL), CE_BLOCKED);
	/* an unrelated card is untouched */
	assert_int_equal(sms_card_get(s, 2100000003, &got), 0);
	assert_int_equal(got.state, SMS_CARD_ACTIVE);
	assert_int_equal(sms_subscribe(s, &(struct sms_subscription){ 2100000003, 2, 1, 2 }, "test"), 0);

	/* the bulk path (CSV import of new cards) */
	assert_int_equal(sms_tx_begin(s), 0);
	assert_int_equal(sms_bulk_new(s, "cli:import", &b), 0);
	c.serial = 2100000001;
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-5");
	assert_int_equal(sms_bulk_card_add(b, &c, NULL, 0), CE_BLOCKED);
	c.serial = 2100000005;
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-1");
	assert_int_equal(sms_bulk_card_add(b, &c, NULL, 0), CE_BLOCKED);
	sms_bulk_free(b);
	assert_int_equal(sms_tx_end(s, CE_BLOCKED), CE_BLOCKED);

	/* a card not in the base yet can be listed, and is then refused */
	assert_int_equal(sms_blacklist_add(s, SMS_BL_CARD, "2100000077", "seized stock", "test"), 0);
	c.serial = 2100000077;
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-77");
	assert_int_equal(sms_card_add(s, &c, "test"), CE_BLOCKED);

	assert_int_equal(sms_blacklist_list(s, 0, count_bl, NULL, &n), 0);
	assert_int_equal(n, 3);
	expect_intact(s, NULL, -1);
	sms_store_close(s);
}

/* ---- reports: point-in-time figures from the log --------------------------- */

#define NOV1 1698796800 /* 2023-11-01 00:00:00 UTC */
#define DAY(n) ((int64_t)NOV1 + ((n) - 1) * 86400 + 43200) /* noon of November n */
#define ENDDAY(n) ((int64_t)NOV1 + (n) * 86400 - 1)

static int last_cb(void *ctx, const struct sms_audit_entry *e)
{
	*(int64_t *)ctx = e->seq;
	return 0;
}

/* The newest seq (not by verifying: the times below are rewritten). */
static int64_t last_seq(struct sms_store *s)
{
	int64_t v = 0;

	assert_int_equal(sms_audit_range(s, 0, 0, 100000, last_cb, &v, NULL), 0);
	return v;
}

/* Entries after seq `after` happened at time t (rewritten: the reports read
 * at_ms; the chain is not what is tested here). */
static void happened_at(struct backend *be, const char *uri, int64_t after, int64_t t)
{
	char sql[200];

	snprintf(sql, sizeof(sql), "UPDATE audit SET at_ms = %lld WHERE seq > %lld", (long long)t * 1000, (long long)after);
	raw_sql(be, uri, sql);
}

static void sub(struct sms_store *s, uint64_t serial, uint32_t pkg, int64_t a, int64_t b)
{
	struct sms_subscription u = { serial, pkg, a, b };

	assert_int_equal(sms_subscribe(s, &u, "test"), 0);
}

static struct sms_table *run(struct sms_store *s, const char *name, const char *const *kv)
{
	struct sms_report_params p;
	struct sms_table *t = NULL;

	sms_report_params_init(&p);
	for (; kv && kv[0]; kv += 2)
		assert_int_equal(sms_report_param(&p, kv[0], kv[1]), 0);
	assert_int_equal(sms_report_run(s, name, &p, &t), 0);
	return t;
}

static const char *cell(const struct sms_table *t, size_t row, const char *col)
{
	for (size_t c = 0; c < t->ncols; c++)
		if (strcmp(t->cols[c], col) == 0) {
			assert_true(row < t->nrows);
			return t->cells[row * t->ncols + c];
		}
	fail_msg("no column %s", col);
	return NULL;
}

/* The row whose first column is key. */
static size_t row_of(const struct sms_table *t, const char *key)
{
	for (size_t i = 0; i < t->nrows; i++)
		if (strcmp(t->cells[i * t->ncols], key) == 0)
			return i;
	fail_msg("no row %s in %s", key, t->name);
	return 0;
}

static char tbuf[64];
static const char *ts(int64_t v)
{
	snprintf(tbuf, sizeof(tbuf), "%lld", (long long)v);
	return tbuf;
}

static void test_reports(void **state)
{
	struct backend *be = *state;
	const char *uri = tdb_fresh(be);
	struct sms_store *s = open_uri(uri);
	struct sms_table *t;
	struct sms_card c = { 0 };
	int64_t mark;
	char at[32];

	assert_int_equal(sms_package_add(s, 40, "sport", "test"), 0);
	assert_int_equal(sms_channel_set(s, 101, "news", 0x1, "test"), 0);
	assert_int_equal(sms_channel_set(s, 102, "movies", 0x2, "test"), 0);
	assert_int_equal(sms_channel_set(s, 103, "kids", 0x3, "test"), 0);
	mark = last_seq(s);
	/* November 1st: A (packages 0 and 40), B (1), D (0) */
	for (uint64_t k = 1; k <= 4; k++) {
		if (k == 3)
			continue;
		c.serial = 2100000000 + k;
		snprintf(c.chip_id, sizeof(c.chip_id), "BOX-%llu", (unsigned long long)k);
		assert_int_equal(sms_card_add(s, &c, "test"), 0);
	}
	sub(s, 2100000001, 0, DAY(1), DAY(30));
	sub(s, 2100000001, 40, DAY(1), DAY(10));
	sub(s, 2100000002, 1, DAY(1), DAY(30));
	sub(s, 2100000004, 0, DAY(1), DAY(30));
	happened_at(be, uri, mark, DAY(1));
	/* the 15th: B suspended */
	mark = last_seq(s);
	assert_int_equal(sms_card_set_state(s, 2100000002, SMS_CARD_BLOCKED, "test"), 0);
	happened_at(be, uri, mark, DAY(15));
	/* the 20th: C arrives with package 0 */
	mark = last_seq(s);
	c.serial = 2100000003;
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-3");
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	sub(s, 2100000003, 0, DAY(20), DAY(30));
	happened_at(be, uri, mark, DAY(20));
	/* the 25th: D blacklisted */
	mark = last_seq(s);
	assert_int_equal(sms_blacklist_add(s, SMS_BL_CARD, "2100000004", "cloned", "test"), 0);
	happened_at(be, uri, mark, DAY(25));
	{
		char sql[100];

		snprintf(sql, sizeof(sql), "UPDATE blacklist SET at_ms = %lld", (long long)DAY(25) * 1000);
		raw_sql(be, uri, sql);
	}

	/* summary on the 16th: C not there yet; B suspended */
	snprintf(at, sizeof(at), "%lld", (long long)ENDDAY(16));
	t = run(s, "summary", (const char *const[]){ "at", at, NULL });
	assert_string_equal(cell(t, row_of(t, "registered"), "cards"), "3");
	assert_string_equal(cell(t, row_of(t, "active"), "cards"), "2");
	assert_string_equal(cell(t, row_of(t, "suspended"), "cards"), "1");
	assert_string_equal(cell(t, row_of(t, "blacklisted"), "cards"), "0");
	sms_table_free(t);
	/* ... and on the 26th */
	snprintf(at, sizeof(at), "%lld", (long long)ENDDAY(26));
	t = run(s, "summary", (const char *const[]){ "at", at, NULL });
	assert_string_equal(cell(t, row_of(t, "registered"), "cards"), "4");
	assert_string_equal(cell(t, row_of(t, "active"), "cards"), "2");
	assert_string_equal(cell(t, row_of(t, "suspended"), "cards"), "1");
	assert_string_equal(cell(t, row_of(t, "blacklisted"), "cards"), "1");
	sms_table_free(t);
	t = run(s, "subscribers", (const char *const[]){ "at", at, "status", "active", NULL });
	assert_int_equal(t->nrows, 2);
	assert_string_equal(cell(t, 0, "serial_no"), "2100000001");
	assert_string_equal(cell(t, 0, "packages"), "0");
	assert_string_equal(cell(t, 1, "serial_no"), "2100000003");
	sms_table_free(t);
	/* blacklist as a report, at two times */
	t = run(s, "blacklist", (const char *const[]){ "at", ts(ENDDAY(24)), NULL });
	assert_int_equal(t->nrows, 0);
	sms_table_free(t);
	t = run(s, "blacklist", (const char *const[]){ "at", at, NULL });
	assert_int_equal(t->nrows, 1);
	assert_string_equal(cell(t, 0, "id"), "2100000004");
	sms_table_free(t);

	/* the monthly report, per package and per channel */
	t = run(s, "monthly", (const char *const[]){ "month", "2023-11", NULL });
	assert_string_equal(cell(t, row_of(t, "0"), "day_7"), "2");
	assert_string_equal(cell(t, row_of(t, "0"), "day_21"), "3");
	assert_string_equal(cell(t, row_of(t, "0"), "day_28"), "2");
	assert_string_equal(cell(t, row_of(t, "0"), "average"), "2.25");
	assert_string_equal(cell(t, row_of(t, "1"), "average"), "0.50");
	assert_string_equal(cell(t, row_of(t, "40"), "day_7"), "1");
	assert_string_equal(cell(t, row_of(t, "40"), "day_14"), "0");
	assert_string_equal(cell(t, row_of(t, "40"), "name"), "sport");
	sms_table_free(t);
	t = run(s, "monthly", (const char *const[]){ "month", "2023-11", "by", "channel", "days", "7,21", NULL });
	assert_int_equal(t->nrows, 3);
	assert_string_equal(cell(t, row_of(t, "103"), "day_7"), "3");
	assert_string_equal(cell(t, row_of(t, "103"), "day_21"), "3");
	assert_string_equal(cell(t, row_of(t, "102"), "day_21"), "0");
	assert_string_equal(cell(t, row_of(t, "102"), "average"), "0.50");
	sms_table_free(t);
	{
		struct sms_report_params p;
		struct sms_table *x = NULL;

		sms_report_params_init(&p);
		assert_int_equal(sms_report_param(&p, "month", "2023-02"), 0);
		assert_int_equal(sms_report_param(&p, "days", "29"), 0);
		assert_int_equal(sms_report_run(s, "monthly", &p, &x), CE_RANGE);
		assert_int_equal(sms_report_param(&p, "month", "2023-13"), CE_RANGE);
		assert_int_equal(sms_report_param(&p, "days", "0"), CE_RANGE);
		assert_int_equal(sms_report_param(&p, "by", "box"), CE_RANGE);
		assert_int_equal(sms_report_param(&p, "nope", "1"), CE_NOT_FOUND);
		assert_int_equal(sms_report_run(s, "active", &p, &x), CE_ARG);
		assert_int_equal(sms_report_run(s, "nope", &p, &x), CE_NOT_FOUND);
	}

	/* channels forming each package */
	t = run(s, "package-channels", NULL);
	assert_string_equal(cell(t, 0, "service_id"), "101");
	assert_string_equal(cell(t, 1, "service_id"), "103");
	assert_string_equal(cell(t, 2, "package"), "1");
	assert_string_equal(cell(t, t->nrows - 1, "package"), "40");
	assert_string_equal(cell(t, t->nrows - 1, "service_id"), "");
	sms_table_free(t);

	/* active subscribers of a package / channel at a time */
	t = run(s, "active", (const char *const[]){ "package", "40", "at", ts(DAY(5)), NULL });
	assert_int_equal(t->nrows, 1);
	assert_string_equal(cell(t, 0, "serial_no"), "2100000001");
	sms_table_free(t);
	t = run(s, "active", (const char *const[]){ "package", "40", "at", ts(DAY(12)), NULL });
	assert_int_equal(t->nrows, 0);
	sms_table_free(t);
	t = run(s, "active", (const char *const[]){ "channel", "103", "at", ts(ENDDAY(21)), NULL });
	assert_int_equal(t->nrows, 3);
	sms_table_free(t);

	/* one subscriber's packages and channels */
	t = run(s, "card", (const char *const[]){ "card", "2100000001", "at", ts(DAY(5)), NULL });
	assert_string_equal(cell(t, 0, "name"), "active");
	assert_int_equal(t->nrows, 5); /* status, packages 0 and 40, channels 101 and 103 */
	assert_string_equal(cell(t, 2, "id"), "40");
	assert_string_equal(cell(t, 4, "id"), "103");
	sms_table_free(t);

	/* ageing */
	t = run(s, "ageing", (const char *const[]){ "package", "0", "at", ts(ENDDAY(21)), NULL });
	assert_int_equal(t->nrows, 3);
	assert_string_equal(cell(t, 0, "age_days"), "20");
	assert_string_equal(cell(t, 0, "bucket"), "0-30");
	assert_string_equal(cell(t, 1, "serial_no"), "2100000003");
	assert_string_equal(cell(t, 1, "age_days"), "1");
	sms_table_free(t);

	/* a card's activation/deactivation history for a period */
	t = run(s, "history", (const char *const[]){ "card", "2100000002", NULL });
	assert_int_equal(t->nrows, 3);
	assert_string_equal(cell(t, 0, "status_after"), "deactivated"); /* added, nothing yet */
	assert_string_equal(cell(t, 1, "status_after"), "active");
	assert_string_equal(cell(t, 2, "action"), "card.state");
	assert_string_equal(cell(t, 2, "status_after"), "suspended");
	sms_table_free(t);
	{
		char from[24];

		snprintf(from, sizeof(from), "%lld", (long long)DAY(10));
		t = run(s, "history", (const char *const[]){ "card", "2100000002", "from", from, "to", ts(DAY(20)), NULL });
	}
	assert_int_equal(t->nrows, 1);
	sms_table_free(t);

	/* rendering */
	t = run(s, "summary", (const char *const[]){ "at", at, NULL });
	{
		json_t *j = sms_table_json(t);

		assert_non_null(j);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(j, "rows"), 0), "cards")),
				 4);
		json_decref(j);
	}
	sms_table_free(t);
	sms_store_close(s);
}

/* history --box: every entry of a card while it was in the box, its move
 * out (and nothing after), the box's blacklisting, in the log's order; a
 * chip id with LIKE wildcards matches itself only. */
static void test_box_history(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_card c = { 0 };
	struct sms_card_change ch;
	struct sms_table *t;
	int64_t prev = 0;
	size_t moves = 0, bl = 0;
	int64_t now = (int64_t)(now_wall_ms() / 1000u);

	c.serial = 2100000021;
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX_1");
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	c.serial = 2100000022;
	snprintf(c.chip_id, sizeof(c.chip_id), "BOXX1"); /* '_' of BOX_1 must not match it */
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	sub(s, 2100000021, 0, now - 86400, now + 30 * 86400); /* in force now: status_after active */
	sub(s, 2100000022, 0, now - 86400, now + 30 * 86400);
	assert_int_equal(sms_card_set_state(s, 2100000021, SMS_CARD_BLOCKED, "test"), 0);
	sms_card_change_init(&ch);
	ch.has_chip = true;
	snprintf(ch.chip_id, sizeof(ch.chip_id), "BOX-9");
	assert_int_equal(sms_card_change(s, 2100000021, &ch, "test", NULL), 0); /* out of BOX_1 */
	assert_int_equal(sms_card_set_state(s, 2100000021, SMS_CARD_ACTIVE, "test"), 0);
	assert_int_equal(sms_blacklist_add(s, SMS_BL_BOX, "BOX_1", "seized", "test"), 0);

	t = run(s, "history", (const char *const[]){ "box", "BOX_1", NULL });
	assert_int_equal(t->nrows, 5); /* add, subscribe, suspend, the move out; the blacklisting */
	for (size_t i = 0; i < t->nrows; i++) {
		int64_t seq = 0;
		const char *obj = cell(t, i, "object");

		assert_int_equal(parse_dec_s64(cell(t, i, "seq"), 1, INT64_MAX, &seq), 0);
		assert_true(seq > prev); /* the log's order */
		prev = seq;
		assert_true(strcmp(obj, "card:2100000021") == 0 || strcmp(obj, "box:BOX_1") == 0);
		moves += strcmp(cell(t, i, "action"), "card.change") == 0;
		bl += strcmp(cell(t, i, "action"), "blacklist.box") == 0;
	}
	assert_int_equal(moves, 1);
	assert_int_equal(bl, 1);
	assert_string_equal(cell(t, 2, "status_after"), "suspended");
	sms_table_free(t);
	/* the box it went to: the move in and what followed */
	t = run(s, "history", (const char *const[]){ "box", "BOX-9", NULL });
	assert_int_equal(t->nrows, 2);
	assert_string_equal(cell(t, 0, "action"), "card.change");
	assert_string_equal(cell(t, 1, "action"), "card.state");
	assert_string_equal(cell(t, 1, "status_after"), "active");
	sms_table_free(t);
	t = run(s, "history", (const char *const[]){ "box", "NO-SUCH-BOX", NULL });
	assert_int_equal(t->nrows, 0);
	sms_table_free(t);
	{
		struct sms_report_params p;
		struct sms_table *x = NULL;

		sms_report_params_init(&p); /* neither card nor box, or both */
		assert_int_equal(sms_report_run(s, "history", &p, &x), CE_ARG);
		assert_int_equal(sms_report_param(&p, "box", "BOX_1"), 0);
		assert_int_equal(sms_report_param(&p, "card", "2100000021"), 0);
		assert_int_equal(sms_report_run(s, "history", &p, &x), CE_ARG);
		assert_int_equal(sms_report_param(&p, "box", ""), CE_RANGE);
		assert_int_equal(sms_report_param(&p, "box", "a\nb"), CE_RANGE);
	}
	sms_store_close(s);
}

/* ---- reconcile: every kind of difference ------------------------------- */

struct kinds {
	char k[16][16];
	uint64_t serial[16];
	size_t n;
};

static int keep_kind(void *ctx, const struct reconcile_diff *d)
{
	struct kinds *k = ctx;

	assert_true(k->n < 16);
	snprintf(k->k[k->n], sizeof(k->k[0]), "%s", d->kind);
	k->serial[k->n++] = d->serial;
	return 0;
}

static void sent(struct sms_store *s, uint64_t serial, bool blocked, uint32_t mask, int64_t a, int64_t b, int ext)
{
	struct sms_emm_seq_req q = { .serial = serial, .step = 1, .want = 1, .blocked = blocked, .has_sent = true,
				     .sent_packages = mask, .sent_start = a, .sent_finish = b };

	if (ext) {
		q.sent_next = 1;
		q.sent_ext[0] = (uint16_t)ext;
	}
	assert_int_equal(sms_emm_seq_next_many(s, &q, 1), 0);
}

static void test_reconcile(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct reconcile_stats rs;
	struct kinds k = { .n = 0 };
	uint32_t v = 0;
	const int64_t now = 5000;

	assert_int_equal(sms_package_add(s, 40, "sport", "test"), 0);
	for (uint64_t i = 1; i <= 8; i++) {
		struct sms_card c = { .serial = i };

		assert_int_equal(sms_card_add(s, &c, "test"), 0);
		sub(s, i, 0, 1000, 9000);
	}
	sub(s, 1, 40, 2000, 8000);
	assert_int_equal(sms_card_set_state(s, 2, SMS_CARD_BLOCKED, "test"), 0);
	sent(s, 1, false, 0x1, 2000, 8000, 40);    /* 1: the same */
	sent(s, 2, true, 0, 0, 0, 0);              /* 2: blocked on both sides */
	sent(s, 3, false, 0x3, 1000, 9000, 0);     /* 3: packages differ */
	sent(s, 4, false, 0x1, 1000, 7000, 0);     /* 4: period differs */
	/* 5: never sent: not_sent */
	assert_int_equal(sms_emm_seq_next(s, 6, 1, 1, 0, false, &v), 0); /* 6: no grant recorded */
	sent(s, 7, true, 0, 0, 0, 0);              /* 7: CAS blocked, SMS active: state */
	sent(s, 8, false, 0x1, 1000, 9000, 41);    /* 8: ext differs */
	sent(s, 9, false, 0x1, 1000, 9000, 0);     /* 9: not in the SMS, active: cas_only */
	sent(s, 10, true, 0, 0, 0, 0);             /* 10: not in the SMS, blocked: the same */
	assert_int_equal(reconcile_run(s, now, keep_kind, &k, &rs), 0);
	assert_int_equal(rs.sms_cards, 8);
	assert_int_equal(rs.cas_cards, 9);
	assert_int_equal(rs.diffs, 7);
	assert_int_equal(rs.same, 3);
	{
		static const char *const want[] = { "packages", "period", "not_sent", "unknown", "state", "ext", "cas_only" };
		static const uint64_t ser[] = { 3, 4, 5, 6, 7, 8, 9 };

		for (size_t i = 0; i < 7; i++) {
			assert_string_equal(k.k[i], want[i]);
			assert_int_equal(k.serial[i], ser[i]);
		}
	}
	sms_store_close(s);
}

#define TESTS \
	cmocka_unit_test(test_chain), \
	cmocka_unit_test(test_two_connections), \
	cmocka_unit_test(test_tamper), \
	cmocka_unit_test(test_migrate_from_3), \
	cmocka_unit_test(test_bulk_chained), \
	cmocka_unit_test(test_blacklist_store), \
	cmocka_unit_test(test_reports), \
	cmocka_unit_test(test_box_history), \
	cmocka_unit_test(test_reconcile)

int main(void)
{
	const struct CMUnitTest both[] = { TESTS };
	const struct CMUnitTest pure[] = { cmocka_unit_test(test_checkpoint_lines),
					   cmocka_unit_test(test_fuzz_corpus_audit) };
	const struct CMUnitTest cmds[] = { cmocka_unit_test(test_cli) };
	int fails = _cmocka_run_group_tests("audit lines", pure, 2, NULL, NULL);

	/* the commands on SQLite, in tdb_run_both's folder (made and removed there) */
	fails += tdb_run_both("audit", both, sizeof(both) / sizeof(both[0]));
	snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/castellan-auditcli-XXXXXX");
	if (!mkdtemp(sqlite_dir))
		return fails + 1;
	fails += _cmocka_run_group_tests("audit commands", cmds, 1, NULL, NULL);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", sqlite_dir);
		(void)tdb_run(cmd);
	}
	return fails;
}
