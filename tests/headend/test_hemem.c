/*
 * test_hemem.c - the head-end at scale: memory that does not grow per
 * carousel cycle, and the batched store paths of the EMM thread.
 *   - scheduler: one pending event per card (a later/equal one ignored, an
 *     earlier one moves the card up), checked against a plain model over
 *     many random operations (table growth, deletions, clock moves);
 *   - store (SQLite and a real PostgreSQL): a page's subscriptions in one
 *     query (sms_subscription_range, with overflow), a tick's sequence
 *     numbers in multi-row statements (sms_emm_seq_next_many: same rule as
 *     sms_emm_seq_next, duplicates in order, the end of the range, a table
 *     of bad rows that writes nothing);
 *   - a real `headend` on each backend with a fake clock and our MUX on
 *     127.0.0.1: several whole cycles over N cards keep the scheduler at
 *     <= N + a few pending events, and a subscription's expiry still goes
 *     on air (the box loses the package) through a scheduler event; then
 *     reconcile per card, and per channel/package (report_cas.h, A.13).
 */
#include <stdlib.h>
#define SMS_TEST_PG_PORT 5461
#include "sms/sms_testdb.h"
#include "he_fixture.h"
#include "headend/scheduler.h"
#include "headend/reconcile.h"
#include "crypto/pk.h"
#include "sms/report_cas.h"
#include <sqlite3.h>

#define CASID 0x4ADC
#define EPOCH_S 3600u
#define T0_S 1700000000ll /* 800 s into an epoch of an hour */

/* ---- scheduler ----------------------------------------------------------- */

static void test_sched_one_per_card(void **state)
{
	enum { N = 5000 };
	struct fake_clock fc = { (uint64_t)T0_S * 1000u };
	struct sched_config sc = { fake_now, &fc, EPOCH_S };
	struct sched *s = NULL;
	struct sched_stats st;
	static uint64_t due[N];

	(void)state;
	assert_int_equal(sched_new(&sc, &s), 0);
	/* five carousel cycles: each card says its next change every time */
	for (int cyc = 0; cyc < 5; cyc++) {
		for (uint64_t i = 1; i <= N; i++)
			assert_int_equal(sched_at(s, i, T0_S + 100 + (int64_t)(i % 50) + cyc), 0);
		sched_stats(s, &st);
		assert_int_equal(st.pending, N);
	}
	assert_int_equal(st.events_added, N);
	assert_int_equal(st.events_merged, 4 * N);
	assert_true(st.bytes > 0 && st.bytes <= (size_t)N * 64u);
	assert_int_equal(sched_next_event(s), T0_S + 100);
	assert_int_equal(sched_at(s, 0, T0_S), CE_ARG);
	/* an earlier event moves card 7 ahead of everyone */
	assert_int_equal(sched_at(s, 7, T0_S + 10), 0);
	sched_stats(s, &st);
	assert_int_equal(st.pending, N);
	assert_int_equal(st.events_moved, 1);
	assert_int_equal(sched_next_event(s), T0_S + 10);
	atomic_store(&fc.ms, (uint64_t)(T0_S + 10) * 1000u);
	assert_int_equal(sched_due(s, due, N), 1);
	assert_int_equal(due[0], 7);
	/* the rest fire once each, none twice, in time order */
	atomic_store(&fc.ms, (uint64_t)(T0_S + 1000) * 1000u);
	assert_int_equal(sched_due(s, due, N), N - 1);
	for (size_t i = 0; i < N - 1; i++) {
		assert_true(due[i] >= 1 && due[i] <= N && due[i] != 7);
		if (i)
			assert_true(due[i - 1] % 50 <= due[i] % 50); /* its time: T0 + 100 + serial % 50 */
	}
	sched_stats(s, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.events_fired, N);
	assert_int_equal(sched_next_event(s), SCHED_NO_EVENT);
	/* fired: a card may be scheduled again; past 2106 is clamped, not lost */
	assert_int_equal(sched_at(s, 7, INT64_MAX - 1), 0);
	assert_int_equal(sched_next_event(s), (int64_t)UINT32_MAX);
	sched_free(s);
}

/* The scheduler against a plain array (earliest pending time per serial,
 * 0 = none): random schedules, earlier and later, and clock moves. */
static void test_sched_model(void **state)
{
	enum { SERIALS = 3000, OPS = 200000 };
	struct fake_clock fc = { (uint64_t)T0_S * 1000u };
	struct sched_config sc = { fake_now, &fc, EPOCH_S };
	struct sched *s = NULL;
	struct sched_stats st;
	static int64_t model[SERIALS + 1];
	static uint64_t due[SERIALS];
	int64_t now = T0_S;
	uint64_t rng = 0x9E3779B97F4A7C15ull, fired = 0;

	(void)state;
	memset(model, 0, sizeof(model));
	assert_int_equal(sched_new(&sc, &s), 0);
	for (int op = 0; op < OPS; op++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		uint64_t serial = 1 + (rng >> 8) % SERIALS;
		int64_t when = now + 1 + (int64_t)((rng >> 32) % 600);

		if ((rng & 15) != 0) {
			assert_int_equal(sched_at(s, serial * 1000003u, when), 0);
			if (model[serial] == 0 || when < model[serial])
				model[serial] = when;
			continue;
		}
		/* the clock moves: what is due comes out, exactly */
		now += (int64_t)((rng >> 20) % 120);
		atomic_store(&fc.ms, (uint64_t)now * 1000u);
		size_t n = sched_due(s, due, SERIALS), want = 0;
		int64_t prev = INT64_MIN, min = INT64_MAX;

		for (size_t i = 1; i <= SERIALS; i++)
			if (model[i] && model[i] <= now)
				want++;
		assert_int_equal(n, want);
		for (size_t i = 0; i < n; i++) {
			uint64_t k = due[i] / 1000003u;

			assert_int_equal(due[i] % 1000003u, 0);
			assert_true(k >= 1 && k <= SERIALS);
			assert_true(model[k] != 0 && model[k] <= now);
			assert_true(model[k] >= prev); /* in time order */
			prev = model[k];
			model[k] = 0;
		}
		fired += n;
		size_t pending = 0;

		for (size_t i = 1; i <= SERIALS; i++)
			if (model[i]) {
				pending++;
				if (model[i] < min)
					min = model[i];
			}
		sched_stats(s, &st);
		assert_int_equal(st.pending, pending);
		assert_int_equal(sched_next_event(s), pending ? min : SCHED_NO_EVENT);
	}
	sched_stats(s, &st);
	assert_int_equal(st.events_fired, fired);
	assert_true(st.events_moved > 0 && st.events_merged > 0 && fired > SERIALS);
	sched_free(s);
}

/* ---- store: the batched paths -------------------------------------------- */

static void add_cards(struct sms_store *s, uint64_t first, size_t n, uint32_t mask, int64_t start, int64_t finish)
{
	struct sms_bulk *b = NULL;

	assert_int_equal(sms_tx_begin(s), 0);
	assert_int_equal(sms_bulk_new(s, "test", &b), 0);
	for (size_t i = 0; i < n; i++) {
		struct sms_card c = { .serial = first + i, .access_criteria = mask, .start = start, .finish = finish };
		uint32_t ext = 40;

		assert_int_equal(sms_bulk_card_add(b, &c, &ext, (i % 3) == 0 ? 1 : 0), 0);
	}
	assert_int_equal(sms_bulk_flush(b), 0);
	sms_bulk_free(b);
	assert_int_equal(sms_tx_end(s, 0), 0);
}

static void test_subscription_range(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_subscription out[64], one[64];
	size_t n = 0, k = 0;

	assert_int_equal(sms_package_add(s, 40, "p40", "test"), 0);
	add_cards(s, 100, 20, 0x5, T0_S, T0_S + 1000); /* packages 0, 2 and (every third) 40 */
	assert_int_equal(sms_subscription_range(s, 103, 110, out, 64, &n), 0);
	/* cards 104..110: as sms_subscription_list gives them, card by card */
	size_t at = 0;

	for (uint64_t c = 104; c <= 110; c++) {
		assert_int_equal(sms_subscription_list(s, c, one, 64, &k), 0);
		assert_int_equal(k, (c - 100) % 3 == 0 ? 3 : 2);
		for (size_t i = 0; i < k; i++, at++) {
			assert_true(at < n);
			assert_int_equal(out[at].serial, c);
			assert_int_equal(out[at].package, one[i].package);
			assert_int_equal(out[at].start, one[i].start);
			assert_int_equal(out[at].finish, one[i].finish);
		}
	}
	assert_int_equal(at, n);
	/* more rows than max: the first max, and CE_OVERFLOW */
	assert_int_equal(sms_subscription_range(s, 0, 200, out, 5, &n), CE_OVERFLOW);
	assert_int_equal(n, 5);
	assert_int_equal(out[0].serial, 100);
	assert_int_equal(out[4].serial, 101);
	/* nothing in the range; bad max */
	assert_int_equal(sms_subscription_range(s, 200, 300, out, 64, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sms_subscription_range(s, 0, 300, out, 0, &n), CE_RANGE);
	assert_int_equal(sms_subscription_range(s, 0, 300, out, 100001, &n), CE_RANGE);
	sms_store_close(s);
}

static void test_seq_next_many(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	enum { N = 150 };
	static struct sms_emm_seq_req q[N + 4];
	struct sms_emm_seq g;
	uint32_t v = 0;

	/* cards 1..N: odd ones numbered 100 before (another node) */
	for (uint64_t i = 1; i <= N; i += 2)
		assert_int_equal(sms_emm_seq_next(s, i, 1, 100, 7, false, &v), 0);
	for (size_t i = 0; i < N; i++)
		q[i] = (struct sms_emm_seq_req){ .serial = i + 1, .step = (i % 10) == 9 ? 2 : 1, .want = 50,
						 .digest = 1000 + i, .blocked = (i % 4) == 0 };
	/* the same card again at the end: applied after its first row */
	q[N] = (struct sms_emm_seq_req){ .serial = 3, .step = 1, .want = 5, .digest = 99 };
	assert_int_equal(sms_emm_seq_next_many(s, q, N + 1), 0);
	for (size_t i = 0; i < N; i++) {
		uint64_t serial = i + 1;
		uint32_t want = (serial % 2) ? 100 + q[i].step : 50; /* max(want, stored + step) */

		assert_int_equal(q[i].seq, want);
		assert_int_equal(sms_emm_seq_get(s, serial, &g), 0);
		if (serial != 3) {
			assert_int_equal(g.seq, want);
			assert_int_equal(g.digest, 1000 + i);
			assert_int_equal(g.blocked, (i % 4) == 0);
		}
	}
	assert_int_equal(q[N].seq, 102);
	assert_int_equal(sms_emm_seq_get(s, 3, &g), 0);
	assert_int_equal(g.seq, 102);
	assert_int_equal(g.digest, 99);
	/* the end of the range: not touched, seq 0 */
	struct sms_emm_seq top = { .serial = 500, .seq = UINT32_MAX, .digest = 1, .blocked = false };

	assert_int_equal(sms_emm_seq_import(s, &top), 0);
	q[0] = (struct sms_emm_seq_req){ .serial = 500, .step = 1, .want = 10, .digest = 2 };
	q[1] = (struct sms_emm_seq_req){ .serial = 501, .step = 2, .want = 10, .digest = 2 };
	assert_int_equal(sms_emm_seq_next_many(s, q, 2), 0);
	assert_int_equal(q[0].seq, 0);
	assert_int_equal(q[1].seq, 10);
	assert_int_equal(sms_emm_seq_get(s, 500, &g), 0);
	assert_int_equal(g.seq, UINT32_MAX);
	assert_int_equal(g.digest, 1);
	/* bad rows: nothing written, even the good row before them */
	static const struct sms_emm_seq_req bad[] = {
		{ .serial = 0, .step = 1, .want = 1 },
		{ .serial = (uint64_t)INT64_MAX + 1, .step = 1, .want = 1 },
		{ .serial = 600, .step = 0, .want = 1 },
		{ .serial = 600, .step = 3, .want = 5 },
		{ .serial = 600, .step = 2, .want = 1 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		q[0] = (struct sms_emm_seq_req){ .serial = 601, .step = 1, .want = 1 };
		q[1] = bad[i];
		assert_int_equal(sms_emm_seq_next_many(s, q, 2), CE_ARG);
		assert_int_equal(sms_emm_seq_get(s, 601, &g), CE_NOT_FOUND);
	}
	assert_int_equal(sms_emm_seq_next_many(s, q, 0), 0);
	/* inside the caller's transaction, rolled back with it */
	assert_int_equal(sms_tx_begin(s), 0);
	q[0] = (struct sms_emm_seq_req){ .serial = 601, .step = 1, .want = 1 };
	assert_int_equal(sms_emm_seq_next_many(s, q, 1), 0);
	assert_int_equal(sms_tx_end(s, CE_IO), CE_IO);
	assert_int_equal(sms_emm_seq_get(s, 601, &g), CE_NOT_FOUND);
	sms_store_close(s);
}

/* ---- a real head-end over several cycles ---------------------------------- */

/* The fake clock runs 10 times faster than the wall clock. */
struct clock_runner {
	struct fake_clock fc;
	atomic_int stop;
	pthread_t th;
};

static void *clock_main(void *arg)
{
	struct clock_runner *c = arg;

	while (!atomic_load(&c->stop)) {
		usleep(5000);
		atomic_fetch_add(&c->fc.ms, 50);
	}
	return NULL;
}

static int keep_diff(void *ctx, const struct reconcile_diff *d)
{
	struct reconcile_diff *o = ctx;

	if (d->serial == 2100000001ull + 9)
		assert_string_equal(d->kind, "state");
	*o = *d;
	return 0;
}

/* ---- the CAS side per channel (A.13) against what a real head-end sent --- */

/* Every audit entry dated t (the head-end ran on a fake clock; the SMS
 * side of cas-match reads the log up to T). The chain was verified before. */
static void audit_at(struct backend *be, const char *uri, int64_t t)
{
	char sql[100];

	snprintf(sql, sizeof(sql), "UPDATE audit SET at_ms = %lld", (long long)t * 1000);
	if (be == &sqlite_be) {
		sqlite3 *db = NULL;

		assert_int_equal(sqlite3_open(uri, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	} else {
		PGconn *c = PQconnectdb(uri + strlen("postgres:"));
		PGresult *res = PQexec(c, sql);

		assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
		PQclear(res);
		PQfinish(c);
	}
}

/* cas-match at t: the difference of row (kind, id), and how many rows differ. */
static long long cas_diff(struct sms_store *s, int64_t t, const char *kind, const char *id, size_t *ndiff)
{
	struct sms_report_params p;
	struct sms_table *tb = NULL;
	long long v = -999;

	sms_report_params_init(&p);
	p.at_s = t;
	assert_int_equal(sms_report_run(s, "cas-match", &p, &tb), 0);
	*ndiff = 0;
	for (size_t i = 0; i < tb->nrows; i++) {
		const char *const *row = (const char *const *)tb->cells + i * tb->ncols;
		int64_t d = 0;

		assert_int_equal(parse_dec_s64(row[5], INT64_MIN, INT64_MAX, &d), 0);
		*ndiff += d != 0;
		if (strcmp(row[0], kind) == 0 && strcmp(row[1], id) == 0)
			v = (long long)d;
	}
	sms_table_free(tb);
	return v;
}

static void test_headend_cycles(void **state)
{
	enum { N = 1500 };
	const uint64_t first = 2100000001ull, special = first + 777;
	const int64_t expiry = T0_S + 400;
	static struct mux_runner mr;
	static struct clock_runner cr;
	static struct emm_card_state box;
	struct backend *be = *state;
	const char *uri = tdb_fresh(be);
	char dir[] = "/tmp/castellan-hemem-XXXXXX", mux[64], keyf[600], cmd[700];
	struct keystore *ks = NULL;
	struct sms_store *s = NULL;
	struct headend *h = NULL;
	struct headend_config hc;
	struct headend_stats hs;
	pthread_t th;
	size_t seen = 0, worst = 0;
	uint64_t cycles0;

	memset(&cr, 0, sizeof(cr));
	memset(&box, 0, sizeof(box));
	assert_non_null(mkdtemp(dir));
	assert_int_equal(sms_store_open(uri, &s), 0);
	assert_int_equal(sms_package_add(s, 40, "p40", "test"), 0);
	assert_int_equal(sms_channel_set(s, 101, "c101", 0x1, "test"), 0);
	assert_int_equal(sms_channel_set(s, 102, "c102", 0x2, "test"), 0);
	assert_int_equal(sms_channel_set(s, 103, "c103", 0x3, "test"), 0);
	/* every card has an event a day away; card `special` loses package 1 at expiry */
	add_cards(s, first, special - first, 0x1, T0_S - 100, T0_S + 86400);
	add_cards(s, special, 1, 0x2, T0_S - 100, expiry);
	add_cards(s, special + 1, N - 1 - (special - first), 0x1, T0_S - 100, T0_S + 86400);
	he_mux_start(&mr, 4000, mux, sizeof(mux));
	atomic_store(&cr.fc.ms, (uint64_t)T0_S * 1000u);
	assert_int_equal(pthread_create(&cr.th, NULL, clock_main, &cr), 0);
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &ks), 0);
	snprintf(keyf, sizeof(keyf), "%s/admin-key", dir);
	he_config(&hc, dir, ks, keyf, mux, 2000);
	hc.db_uri = uri;
	hc.clock = fake_now;
	hc.clock_ctx = &cr.fc;
	/* the head-end signs the audit chain's head every (fake) second it moved */
	uint8_t apriv[32], apub[32];
	char cpf[700];

	assert_int_equal(pk_ed25519_generate(apriv, apub), 0);
	snprintf(cpf, sizeof(cpf), "%s/checkpoints", dir);
	hc.audit_key = apriv;
	hc.audit_checkpoint_s = 1;
	hc.audit_checkpoint_file = cpf;
	assert_int_equal(headend_new(&hc, &h), 0);
	assert_int_equal(pthread_create(&th, NULL, he_headend_main, h), 0);
	/* the box gets package 1 (the first cycle numbers every card) */
	assert_int_equal(he_wait_box(&mr, ks, special, &box, 0x2, &seen, h, &worst), 0);
	/* several whole cycles: the scheduler holds one event per card */
	headend_stats(h, &hs);
	cycles0 = hs.car.cycles;
	for (int i = 0; i < 3000 && hs.car.cycles < cycles0 + 4; i++) {
		usleep(10000);
		headend_stats(h, &hs);
		if (hs.sched.pending > worst)
			worst = hs.sched.pending;
	}
	print_message("%s: %llu cycles of %d cards, scheduler pending at most %zu (%zu bytes), fake time %llu s\n",
		      be->name, (unsigned long long)hs.car.cycles, N, worst, hs.sched.bytes,
		      (unsigned long long)(fake_now(&cr.fc) / 1000u - (uint64_t)T0_S));
	assert_true(hs.car.cycles >= cycles0 + 4);
	assert_true(fake_now(&cr.fc) / 1000u < (uint64_t)expiry); /* the expiry is still ahead */
	assert_true(worst >= N - 8 && worst <= N + 8);
	assert_true(hs.sched.events_merged >= 3u * N);
	assert_true(hs.sched.bytes <= (size_t)N * 64u);
	assert_true(hs.car.seq_bumps >= N); /* the first cycle numbered every card, batched */
	/* another node on the base numbers card c meanwhile: our proposal comes
	 * back lower than the store's, the tick is dropped and the card goes out
	 * above the other node's number */
	static struct emm_card_state box2;
	const uint64_t c = first + 5;
	uint32_t other = 0;
	size_t seen2 = 0;

	memset(&box2, 0, sizeof(box2));
	assert_int_equal(sms_emm_seq_next(s, c, 1, 5000, 0, false, &other), 0);
	assert_int_equal(other, 5000);
	assert_int_equal(sms_subscribe(s, &(struct sms_subscription){ c, 2, T0_S - 100, T0_S + 86400 }, "test"), 0);
	pthread_mutex_lock(&mr.mu);
	seen2 = mr.n;
	pthread_mutex_unlock(&mr.mu);
	assert_int_equal(he_wait_box(&mr, ks, c, &box2, 0x5, &seen2, h, &worst), 0);
	assert_true(box2.last_seq > other);
	emm_state_wipe(&box2);
	/* the expiry: its event fires, the card goes out changed, the box loses the package */
	uint64_t fired = hs.sched.events_fired, changed = hs.car.changed_emms;

	atomic_store(&cr.fc.ms, (uint64_t)(expiry + 1) * 1000u);
	assert_int_equal(he_wait_box(&mr, ks, special, &box, 0, &seen, h, &worst), 0);
	for (int i = 0; i < 500 && (hs.sched.events_fired == fired || hs.car.changed_emms == changed); i++) {
		usleep(10000);
		headend_stats(h, &hs);
	}
	assert_true(hs.sched.events_fired >= fired + 1);
	assert_true(hs.car.changed_emms >= changed + 1);
	assert_true(hs.sched.pending <= N - 1 + 8); /* no subscription left: no event for it */
	assert_int_equal(box.ent.nkeys, 0);
	headend_stop(h);
	pthread_join(th, NULL);
	headend_free(h);
	/* every number on air is stored: none above the store's */
	struct sms_emm_seq g;

	assert_int_equal(sms_emm_seq_get(s, special, &g), 0);
	assert_true(g.seq >= box.last_seq);
	/* the audit chain holds, with the head-end's signed checkpoints, and the
	 * file's lines are the stored ones */
	{
		struct sms_audit_verify av;
		struct sms_audit_checkpoint fcp;
		size_t len = 0, lines = 0;
		uint8_t *fb = tu_read(cpf, &len);
		char *save = NULL;

		assert_int_equal(sms_audit_verify(s, apub, &av), 0);
		assert_int_equal(av.bad_seq, 0);
		assert_true(av.checkpoints >= 1);
		assert_int_equal(av.signed_ok, av.checkpoints);
		fb = realloc(fb, len + 1);
		fb[len] = 0;
		for (char *ln = strtok_r((char *)fb, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
			assert_int_equal(sms_audit_checkpoint_parse(ln, &fcp), 0);
			assert_int_equal(sms_audit_check_checkpoint(s, &fcp, apub, &av), 0);
			lines++;
		}
		assert_int_equal(av.bad_seq, 0);
		assert_true(lines >= 1);
		print_message("%s: %lld audit entries, %zu checkpoints signed by the head-end\n", be->name,
			      (long long)av.entries, lines);
		free(fb);
	}
	secret_wipe(apriv, sizeof(apriv));
	/* reconcile: what the head-end recorded as sent is what the SMS says,
	 * card for card; then a change the head-end never sent is the one
	 * difference */
	{
		struct reconcile_stats rs;
		struct reconcile_diff last;

		assert_int_equal(reconcile_run(s, expiry + 1, NULL, NULL, &rs), 0);
		print_message("%s: reconcile %zu SMS cards, %zu CAS cards, %zu differences\n", be->name, rs.sms_cards,
			      rs.cas_cards, rs.diffs);
		assert_int_equal(rs.sms_cards, N);
		assert_int_equal(rs.cas_cards, N);
		assert_int_equal(rs.diffs, 0);
		/* per channel and package, the CAS side's counts (what the head-end
		 * recorded as sent) equal the SMS's */
		size_t nd = 99;

		audit_at(be, uri, T0_S);
		assert_int_equal(cas_diff(s, expiry + 1, "channel", "101", &nd), 0);
		assert_int_equal(nd, 0);
		assert_int_equal(sms_card_set_state(s, first + 9, SMS_CARD_BLOCKED, "test"), 0);
		assert_int_equal(sms_subscribe(s, &(struct sms_subscription){ first + 10, 40, T0_S - 100, T0_S + 86400 },
					       "test"), 0);
		memset(&last, 0, sizeof(last));
		assert_int_equal(reconcile_run(s, expiry + 1, keep_diff, &last, &rs), 0);
		assert_int_equal(rs.diffs, 2);
		assert_int_equal(last.serial, first + 10);
		assert_string_equal(last.kind, "ext");
		assert_string_equal(last.sms, "ext=40");
		/* per channel: first + 9 (package 0, and 40) still counted by the
		 * CAS side; first + 10's package 40 not yet: package 40's counts
		 * happen to agree (+1 - 1), which is why reconcile is per card */
		audit_at(be, uri, T0_S);
		assert_int_equal(cas_diff(s, expiry + 1, "channel", "101", &nd), 1);
		assert_int_equal(nd, 3);
		assert_int_equal(cas_diff(s, expiry + 1, "channel", "103", &nd), 1);
		assert_int_equal(cas_diff(s, expiry + 1, "package", "0", &nd), 1);
		assert_int_equal(cas_diff(s, expiry + 1, "channel", "102", &nd), 0);
		assert_int_equal(cas_diff(s, expiry + 1, "package", "40", &nd), 0);
	}
	sms_store_close(s);
	atomic_store(&cr.stop, 1);
	pthread_join(cr.th, NULL);
	he_mux_stop(&mr);
	keystore_free(ks);
	emm_state_wipe(&box);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest plain[] = {
		cmocka_unit_test(test_sched_one_per_card),
		cmocka_unit_test(test_sched_model),
	};
	const struct CMUnitTest both[] = {
		cmocka_unit_test(test_subscription_range),
		cmocka_unit_test(test_seq_next_many),
		cmocka_unit_test(test_headend_cycles),
	};
	int fails = cmocka_run_group_tests_name("scheduler", plain, NULL, NULL);

	(void)tdb_fingerprint; /* sms_testdb.h's, not needed here */

	return fails + tdb_run_both("hemem", both, sizeof(both) / sizeof(both[0]));
}
