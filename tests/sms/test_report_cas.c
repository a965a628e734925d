/*
 * test_report_cas.c - the CAS side's count per channel and package
 * (report_cas.h, Schedule III A.13) on SQLite and PostgreSQL: with every
 * card's grant sent by the head-end's own rule (sched_grant_at) the counts
 * equal the SMS's `active --channel/--package` figures; an unsent change
 * makes exactly its channels/packages differ by the right number;
 * extended packages counted; blacklisted, suspended and expired cards not;
 * a stored sent_ext that does not parse refused; the CLI's exit status.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#define SMS_TEST_PG_PORT 5513
#include "sms_testdb.h"
#include "sms/report.h"
#include "sms/report_cas.h"
#include "headend/scheduler.h"

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
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

		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			fail_msg("%s: %s", sql, PQerrorMessage(c));
		PQclear(res);
		PQfinish(c);
	}
}

static void sub(struct sms_store *s, uint64_t serial, uint32_t pkg, int64_t a, int64_t b)
{
	struct sms_subscription u = { serial, pkg, a, b };

	assert_int_equal(sms_subscribe(s, &u, "test"), 0);
}

/* What the head-end numbers for card serial at time when: its state, and
 * the grant in force from its subscriptions (the head-end's rule), into
 * emm_seq as headend.c src_save does. */
static void send_card(struct sms_store *s, uint64_t serial, int64_t when)
{
	struct sms_subscription subs[32];
	struct sched_sub ss[32];
	struct sms_card c;
	struct emm_grant g;
	int64_t next;
	size_t n = 0;
	struct sms_emm_seq_req q = { .serial = serial, .step = 1, .want = 1, .has_sent = true };

	assert_int_equal(sms_card_get(s, serial, &c), 0);
	assert_int_equal(sms_subscription_list(s, serial, subs, 32, &n), 0);
	for (size_t i = 0; i < n; i++)
		ss[i] = (struct sched_sub){ subs[i].package, subs[i].start, subs[i].finish };
	sched_grant_at(ss, n, when, &g, &next);
	q.blocked = c.state != SMS_CARD_ACTIVE;
	if (!q.blocked) {
		q.sent_packages = g.packages;
		q.sent_start = (int64_t)g.start_s;
		q.sent_finish = (int64_t)g.finish_s;
		q.sent_next = g.next;
		for (size_t i = 0; i < g.next; i++)
			q.sent_ext[i] = g.ext[i];
	}
	assert_int_equal(sms_emm_seq_next_many(s, &q, 1), 0);
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

/* A figure of a table (decimal, strictly). */
static long long num_of(const char *v)
{
	int64_t x = 0;

	if (parse_dec_s64(v, INT64_MIN, INT64_MAX, &x) != 0)
		fail_msg("not a number: '%s'", v);
	return (long long)x;
}

/* The figure in column col of the row (kind, id). */
static long long fig(const struct sms_table *t, const char *kind, long long id, const char *col)
{
	char ids[24];

	snprintf(ids, sizeof(ids), "%lld", id);
	for (size_t i = 0; i < t->nrows; i++)
		if (strcmp(cell(t, i, "kind"), kind) == 0 && strcmp(cell(t, i, "id"), ids) == 0)
			return num_of(cell(t, i, col));
	fail_msg("no row %s %lld in %s", kind, id, t->name);
	return -1;
}

static char atbuf[24];
static const char *at_str(int64_t at)
{
	snprintf(atbuf, sizeof(atbuf), "%lld", (long long)at);
	return atbuf;
}

/* The base: channels 101 (package 0), 102 (package 1), 103 (packages 0
 * and 1), 104 (package 5); packages 40 and 41 (extended). Cards:
 *   1  packages 0, 40           2  package 1
 *   3  packages 0, 1            4  package 0, then blacklisted
 *   5  package 1, expired (its last EMM was sent while it was in force)
 *   6  packages 0, 41           7  package 0, suspended
 *   8  nothing                  9  package 40, starting tomorrow
 * all sent by the head-end's rule. */
static void base(struct sms_store *s, int64_t now)
{
	assert_int_equal(sms_package_add(s, 40, "sport", "test"), 0);
	assert_int_equal(sms_package_add(s, 41, "kids+", "test"), 0);
	assert_int_equal(sms_channel_set(s, 101, "news", 0x1, "test"), 0);
	assert_int_equal(sms_channel_set(s, 102, "movies", 0x2, "test"), 0);
	assert_int_equal(sms_channel_set(s, 103, "both", 0x3, "test"), 0);
	assert_int_equal(sms_channel_set(s, 104, "none", 0x20, "test"), 0);
	for (uint64_t i = 1; i <= 9; i++) {
		struct sms_card c = { .serial = i };

		assert_int_equal(sms_card_add(s, &c, "test"), 0);
	}
	sub(s, 1, 0, now - 3600, now + 86400);
	sub(s, 1, 40, now - 3600, now + 86400);
	sub(s, 2, 1, now - 3600, now + 86400);
	sub(s, 3, 0, now - 3600, now + 86400);
	sub(s, 3, 1, now - 3600, now + 86400);
	sub(s, 4, 0, now - 3600, now + 86400);
	sub(s, 5, 1, now - 7200, now - 60);
	sub(s, 6, 0, now - 3600, now + 86400);
	sub(s, 6, 41, now - 3600, now + 86400);
	sub(s, 7, 0, now - 3600, now + 86400);
	sub(s, 9, 40, now + 86400, now + 2 * 86400);
	assert_int_equal(sms_blacklist_add(s, SMS_BL_CARD, "4", "cloned", "test"), 0);
	assert_int_equal(sms_card_set_state(s, 7, SMS_CARD_BLOCKED, "test"), 0);
	for (uint64_t i = 1; i <= 9; i++)
		send_card(s, i, i == 5 ? now - 120 : now);
}

/* cas-match at `at`: every row's difference 0 but those of want (kind,
 * id, difference; kind NULL ends), each exactly. */
static void expect_diffs(struct sms_store *s, int64_t at, const char *const *kinds, const long long *ids,
			 const long long *d)
{
	struct sms_table *t = run(s, "cas-match", (const char *const[]){ "at", at_str(at), NULL });
	size_t nd = 0, want = 0;

	while (kinds[want])
		want++;
	for (size_t i = 0; i < t->nrows; i++) {
		long long diff = num_of(cell(t, i, "difference"));
		bool listed = false;

		assert_int_equal(diff, num_of(cell(t, i, "cas_cards")) - num_of(cell(t, i, "sms_cards")));
		for (size_t k = 0; k < want; k++)
			if (strcmp(cell(t, i, "kind"), kinds[k]) == 0 && num_of(cell(t, i, "id")) == ids[k]) {
				listed = true;
				if (diff != d[k])
					fail_msg("%s %lld: difference %lld, want %lld", kinds[k], ids[k], diff, d[k]);
			}
		if (!listed && diff != 0)
			fail_msg("%s %s differs by %lld (not expected)", cell(t, i, "kind"), cell(t, i, "id"), diff);
		nd += diff != 0;
	}
	assert_int_equal(nd, want);
	sms_table_free(t);
	/* the CLI's path says the same */
	{
		char *buf = NULL;
		size_t len = 0, n = 99;
		FILE *f = open_memstream(&buf, &len);

		assert_non_null(f);
		assert_int_equal(sms_cas_match_print(s, at, false, f, &n), 0);
		fclose(f);
		assert_int_equal(n, want);
		assert_non_null(strstr(buf, "kind,id,name,cas_cards,sms_cards,difference\r\n"));
		free(buf);
	}
}

static void test_all_sent(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	const int64_t now = now_s();
	struct sms_table *t;
	struct sms_cas_stats st;
	int64_t at;
	static const long long chans[] = { 101, 102, 103, 104 }, pkgs[] = { 0, 1, 5, 40, 41 };

	base(s, now);
	at = now_s() + 60; /* after every change above (the SMS side reads the log up to T) */
	t = run(s, "cas-channels", (const char *const[]){ "at", at_str(at), NULL });
	assert_string_equal(t->cols[3], "packages");
	assert_string_equal(t->cols[4], "cards");
	/* channels first, by service id, with the mask the head-end puts in ECMs */
	assert_string_equal(cell(t, 0, "kind"), "channel");
	assert_string_equal(cell(t, 0, "id"), "101");
	assert_string_equal(cell(t, 2, "packages"), "00000003");
	assert_int_equal(fig(t, "channel", 101, "cards"), 3);  /* 1, 3, 6: not 4 (blacklisted) nor 7 (suspended) */
	assert_int_equal(fig(t, "channel", 102, "cards"), 2);  /* 2, 3: not 5 (expired) */
	assert_int_equal(fig(t, "channel", 103, "cards"), 4);  /* 1, 2, 3, 6: each once */
	assert_int_equal(fig(t, "channel", 104, "cards"), 0);
	assert_int_equal(fig(t, "package", 0, "cards"), 3);
	assert_int_equal(fig(t, "package", 1, "cards"), 2);
	assert_int_equal(fig(t, "package", 40, "cards"), 1);   /* extended: 1 (9 starts tomorrow) */
	assert_int_equal(fig(t, "package", 41, "cards"), 1);
	assert_string_equal(cell(t, t->nrows - 1, "name"), "kids+");
	sms_table_free(t);
	/* the same figures as the SMS's own `active` report at that time */
	for (size_t i = 0; i < 4; i++) {
		char id[8];
		struct sms_table *a;

		snprintf(id, sizeof(id), "%lld", chans[i]);
		a = run(s, "active", (const char *const[]){ "channel", id, "at", at_str(at), NULL });
		t = run(s, "cas-channels", (const char *const[]){ "at", at_str(at), NULL });
		assert_int_equal(fig(t, "channel", chans[i], "cards"), a->nrows);
		sms_table_free(a);
		sms_table_free(t);
	}
	for (size_t i = 0; i < 5; i++) {
		char id[8];
		struct sms_table *a;

		snprintf(id, sizeof(id), "%lld", pkgs[i]);
		a = run(s, "active", (const char *const[]){ "package", id, "at", at_str(at), NULL });
		t = run(s, "cas-match", (const char *const[]){ "at", at_str(at), NULL });
		assert_int_equal(fig(t, "package", pkgs[i], "sms_cards"), a->nrows);
		assert_int_equal(fig(t, "package", pkgs[i], "cas_cards"), a->nrows);
		sms_table_free(a);
		sms_table_free(t);
	}
	{
		char fp1[65], fp2[65];

		tdb_fingerprint(s, fp1);
		expect_diffs(s, now_s() + 60, (const char *const[]){ NULL }, NULL, NULL);
		tdb_fingerprint(s, fp2);
		assert_string_equal(fp1, fp2); /* a report changes nothing */
	}
	/* the rows the CAS side did not count, and why */
	assert_non_null(t = calloc(1, sizeof(*t)));
	assert_int_equal(sms_report_cas_stats(s, at, false, t, &st), 0);
	sms_table_free(t);
	assert_int_equal(st.rows, 9);
	assert_int_equal(st.counted, 4);       /* 1, 2, 3, 6 */
	assert_int_equal(st.blocked, 2);       /* 4, 7 */
	assert_int_equal(st.out_of_period, 1); /* 5: expired since its EMM */
	assert_int_equal(st.empty, 2);         /* 8; 9 (nothing in force when sent) */
	assert_int_equal(st.sent_after, 0);
	/* an hour ago: every row was numbered since (emm_seq keeps the last grant only): said */
	assert_non_null(t = calloc(1, sizeof(*t)));
	assert_int_equal(sms_report_cas_stats(s, now - 3600, false, t, &st), 0);
	sms_table_free(t);
	assert_int_equal(st.sent_after, 9);
	/* the day after, from the same EMMs: every grant sent has ended (the
	 * head-end sends the next ones at their events); the SMS says 1, 2, 3,
	 * 6 and 9 are active then, so the match differs on every row they hold */
	t = run(s, "cas-channels", (const char *const[]){ "at", at_str(now + 86400 + 10), NULL });
	assert_int_equal(fig(t, "package", 40, "cards"), 0);
	assert_int_equal(fig(t, "channel", 101, "cards"), 0);
	sms_table_free(t);
	sms_store_close(s);
}

static void test_unsent_changes(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	const int64_t now = now_s();

	base(s, now);
	/* card 8 subscribes to package 1, not sent yet: 102, 103 and package 1 short by one */
	sub(s, 8, 1, now - 60, now + 86400);
	expect_diffs(s, now_s() + 60, (const char *const[]){ "channel", "channel", "package", NULL }, (const long long[]){ 102, 103, 1 },
		     (const long long[]){ -1, -1, -1 });
	send_card(s, 8, now);
	expect_diffs(s, now_s() + 60, (const char *const[]){ NULL }, NULL, NULL);
	/* card 2 adds the extended package 40: only package 40 (no channel has it) */
	sub(s, 2, 40, now - 60, now + 86400);
	expect_diffs(s, now_s() + 60, (const char *const[]){ "package", NULL }, (const long long[]){ 40 }, (const long long[]){ -1 });
	send_card(s, 2, now);
	/* card 3 drops package 1, unsent: the CAS side one over on 102 and package 1; 103 unchanged (3 keeps 0) */
	assert_int_equal(sms_unsubscribe(s, 3, 1, "test"), 0);
	expect_diffs(s, now_s() + 60, (const char *const[]){ "channel", "package", NULL }, (const long long[]){ 102, 1 },
		     (const long long[]){ 1, 1 });
	send_card(s, 3, now);
	/* card 6 blacklisted, its BLOCK not sent: 101, 103, packages 0 and 41 one over */
	assert_int_equal(sms_blacklist_add(s, SMS_BL_CARD, "6", "cloned", "test"), 0);
	expect_diffs(s, now_s() + 60, (const char *const[]){ "channel", "channel", "package", "package", NULL },
		     (const long long[]){ 101, 103, 0, 41 }, (const long long[]){ 1, 1, 1, 1 });
	send_card(s, 6, now);
	expect_diffs(s, now_s() + 60, (const char *const[]){ NULL }, NULL, NULL);
	sms_store_close(s);
}

/* A stored sent_ext that is not "ID,ID,..." (0..65535): refused, never guessed. */
static void test_bad_sent_ext(void **state)
{
	struct backend *be = *state;
	const char *uri = tdb_fresh(be);
	struct sms_store *s = NULL;
	static const char *const bad[] = { "40,", ",40", "40,,41", "4a", "-40", "70000", " 40", "0x28", "40;41", "+40", "-0", "40, 41", NULL };
	static const char *const good[] = { "40", "40,41", "", NULL };
	const int64_t now = now_s();

	assert_int_equal(sms_store_open(uri, &s), 0);
	base(s, now);
	for (size_t i = 0; bad[i]; i++) {
		struct sms_report_params p;
		struct sms_table *t = NULL;
		char sql[160];

		snprintf(sql, sizeof(sql), "UPDATE emm_seq SET sent_ext = '%s' WHERE serial = 1", bad[i]);
		raw_sql(be, uri, sql);
		sms_report_params_init(&p);
		if (sms_report_run(s, "cas-channels", &p, &t) != CE_FORMAT)
			fail_msg("sent_ext '%s' accepted", bad[i]);
		assert_null(t);
	}
	for (size_t i = 0; good[i]; i++) {
		struct sms_table *t;
		char sql[160];

		snprintf(sql, sizeof(sql), "UPDATE emm_seq SET sent_ext = '%s' WHERE serial = 1", good[i]);
		raw_sql(be, uri, sql);
		t = run(s, "cas-channels", (const char *const[]){ "at", at_str(now_s() + 60), NULL });
		assert_int_equal(fig(t, "package", 41, "cards"), strcmp(good[i], "40,41") == 0 ? 2 : 1);
		sms_table_free(t);
	}
	sms_store_close(s);
}

/* `sms channel set`, `sms report cas-channels`, `sms reconcile --channels`. */
static void test_cli(void **state)
{
	char d[300], a[2400], out[8192];
	struct sms_store *s = NULL;
	const int64_t now = now_s();

	(void)state;
	snprintf(d, sizeof(d), "%s/cli", sqlite_dir);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(a, sizeof(a), "sms --db %s/s.db channel set 101 news 0x1", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	snprintf(a, sizeof(a), "sms --db %s/s.db channel set 101 news 0x1ffffffff", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 1);
	snprintf(a, sizeof(a), "sms --db %s/s.db card add 7", d);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	snprintf(a, sizeof(a), "sms --db %s/s.db subscribe 7 --packages 0 --start %lld --finish %lld", d,
		 (long long)now - 60, (long long)now + 86400);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	/* nothing sent: channel 101 and package 0 differ, exit 1 */
	snprintf(a, sizeof(a), "sms --db %s/s.db reconcile --channels --at %lld", d, (long long)now_s() + 60);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "channel,101,news,0,1,-1\r\n"));
	assert_non_null(strstr(out, "package,0,package 0,0,1,-1\r\n"));
	assert_non_null(strstr(out, "2 differ"));
	/* the head-end sends it */
	snprintf(a, sizeof(a), "%s/s.db", d);
	assert_int_equal(sms_store_open(a, &s), 0);
	send_card(s, 7, now);
	sms_store_close(s);
	snprintf(a, sizeof(a), "sms --db %s/s.db reconcile --channels --at %lld --format json", d, (long long)now_s() + 60);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"differences\": 0"));
	snprintf(a, sizeof(a), "sms --db %s/s.db report cas-channels --at %lld", d, (long long)now_s() + 60);
	assert_int_equal(tu_cli(a, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "kind,id,name,packages,cards\r\nchannel,101,news,00000001,1\r\n"));
}

#define TESTS \
	cmocka_unit_test(test_all_sent), \
	cmocka_unit_test(test_unsent_changes), \
	cmocka_unit_test(test_bad_sent_ext)

int main(void)
{
	const struct CMUnitTest both[] = { TESTS };
	const struct CMUnitTest cmds[] = { cmocka_unit_test(test_cli) };
	int fails = tdb_run_both("reportcas", both, sizeof(both) / sizeof(both[0]));

	snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/castellan-reportcas-cli-XXXXXX");
	if (!mkdtemp(sqlite_dir))
		return fails + 1;
	fails += _cmocka_run_group_tests("report_cas commands", cmds, 1, NULL, NULL);
	(void)tu_run("rm -rf %s", sqlite_dir);
	return fails;
}
