/*
 * test_headend.c - the head-end's scheduler, EMM carousel and the whole
 * `headend` wiring:
 *   - scheduler: the subscriptions -> grant rule, the event heap and the
 *     epoch watch, all on a fake clock;
 *   - carousel: changed cards first (in order, once), then the cycle over
 *     the whole base; the bandwidth budget on a fake clock; sequence numbers
 *     (same content = same seq, new content or epoch = new seq, persisted
 *     before use, restored); blocked -> active sends UNBLOCK first; every
 *     EMM opened and applied by the box side of cas/emm.h;
 *   - the audit-text parser with a table of good and bad cases;
 *   - end to end with real sockets: a headend (SQLite in a temp dir), our
 *     MUX on 127.0.0.1, the GET API subscribes a card -> its EMM comes out
 *     of the MUX -> the box's card state has the package and its keys; the
 *     package is removed -> the box's state loses it;
 *   - --http-threads 2 and --vendor-keys: GET /api.php and REST answered
 *     right by a two-loop HTTP server; a card whose chip id is in the
 *     vendor's key file gets EMMs that open with K_v(chip) (emm_vendor_open)
 *     and not with K_card, a card without one keeps K_card EMMs; a table of
 *     bad key files refused at start.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <sqlite3.h>
#include "he_fixture.h"
#include "cas/emm_vendor.h"
#include "cas/ecm.h"
#include "simulcrypt/simulcrypt.h"
#include "headend/carousel.h"
#include "headend/launch.h"
#include "headend/scheduler.h"
#include "lib/log.h"
#include "sms/store.h"

#define CASID 0x4ADC
#define EPOCH_S 3600u
#define T0_MS (1700000000ull * 1000ull) /* a fixed "now" for the fake clock */

/* ---- scheduler --------------------------------------------------------- */

static void test_grant_at(void **state)
{
	struct sched_sub subs[] = {
		{ 0, 1000, 2000 },   /* bit 0 */
		{ 3, 1500, 3000 },   /* bit 3 */
		{ 40, 1200, 5000 },  /* extended id */
		{ 5, 4000, 6000 },   /* future */
	};
	struct emm_grant g;
	int64_t next;

	(void)state;
	sched_grant_at(subs, 4, 500, &g, &next);
	assert_int_equal(g.packages, 0);
	assert_int_equal(g.next, 0);
	assert_int_equal(next, 1000);
	sched_grant_at(subs, 4, 1600, &g, &next);
	assert_int_equal(g.packages, 0x9);
	assert_int_equal(g.next, 1);
	assert_int_equal(g.ext[0], 40);
	assert_int_equal(g.start_s, 1500); /* latest start */
	assert_int_equal(g.finish_s, 2000); /* earliest finish */
	assert_int_equal(next, 2000);
	sched_grant_at(subs, 4, 2000, &g, &next); /* finish is exclusive */
	assert_int_equal(g.packages, 0x8);
	assert_int_equal(next, 3000);
	sched_grant_at(subs, 4, 6000, &g, &next);
	assert_int_equal(g.packages, 0);
	assert_int_equal(g.start_s, 0); /* nothing in force: 0..0, whatever the time */
	assert_int_equal(g.finish_s, 0);
	assert_true(next == SCHED_NO_EVENT);
	{
		struct emm_grant later;

		sched_grant_at(subs, 4, 7000, &later, &next);
		assert_memory_equal(&g, &later, sizeof(g)); /* same EMM content: no new number */
	}
	sched_grant_at(NULL, 0, 10, &g, &next);
	assert_int_equal(g.packages, 0);
	assert_true(next == SCHED_NO_EVENT);
	{
		/* 33 extended packages in force: the grant keeps EMM_MAX_EXT_PACKAGES
		 * (32, the keys one EMM carries), and the one left out does not
		 * narrow the period either */
		struct sched_sub many[EMM_MAX_EXT_PACKAGES + 1];

		for (unsigned i = 0; i <= EMM_MAX_EXT_PACKAGES; i++)
			many[i] = (struct sched_sub){ 100 + i, 1000, i == EMM_MAX_EXT_PACKAGES ? 1500 : 5000 };
		sched_grant_at(many, EMM_MAX_EXT_PACKAGES + 1, 1200, &g, &next);
		assert_int_equal(g.next, EMM_MAX_EXT_PACKAGES);
		assert_int_equal(g.ext[EMM_MAX_EXT_PACKAGES - 1], 100 + EMM_MAX_EXT_PACKAGES - 1);
		assert_int_equal(g.finish_s, 5000);
	}
}

static void test_sched_fake_clock(void **state)
{
	struct fake_clock fc = { T0_MS };
	struct sched_config sc = { fake_now, &fc, EPOCH_S };
	struct sched *s = NULL;
	struct sched_stats st;
	uint64_t due[8];
	uint32_t ep = 0;
	int64_t t0 = (int64_t)(T0_MS / 1000u);

	(void)state;
	assert_int_equal(sched_new(&(struct sched_config){ NULL, NULL, 0 }, &s), CE_ARG);
	assert_int_equal(sched_new(&sc, &s), 0);
	assert_int_equal(sched_at(s, 30, t0 + 30), 0);
	assert_int_equal(sched_at(s, 10, t0 + 10), 0);
	assert_int_equal(sched_at(s, 20, t0 + 20), 0);
	assert_int_equal(sched_at(s, 99, SCHED_NO_EVENT), 0);
	assert_int_equal(sched_due(s, due, 8), 0);
	atomic_store(&fc.ms, T0_MS + 20000);
	assert_int_equal(sched_due(s, due, 8), 2);
	assert_int_equal(due[0], 10);
	assert_int_equal(due[1], 20);
	assert_int_equal(sched_due(s, due, 8), 0);
	atomic_store(&fc.ms, T0_MS + 31000);
	assert_int_equal(sched_due(s, due, 1), 1);
	assert_int_equal(due[0], 30);
	/* epoch watch: first call records, then once per change */
	assert_false(sched_rotation_due(s, &ep));
	assert_int_equal(ep, (uint32_t)((T0_MS / 1000u + 31) / EPOCH_S));
	assert_false(sched_rotation_due(s, NULL));
	int64_t left = sched_seconds_to_rotation(s);

	assert_true(left > 0 && left <= (int64_t)EPOCH_S);
	atomic_store(&fc.ms, T0_MS + 31000 + (uint64_t)left * 1000u);
	assert_true(sched_rotation_due(s, &ep));
	assert_false(sched_rotation_due(s, &ep));
	sched_stats(s, &st);
	assert_int_equal(st.rotations, 1);
	assert_int_equal(st.events_added, 3);
	assert_int_equal(st.events_fired, 3);
	assert_int_equal(st.pending, 0);
	sched_free(s);
}

/* ---- an in-memory base for the carousel -------------------------------- */

#define BASE_MAX 64

struct base {
	size_t n;
	struct {
		uint64_t serial;
		enum carousel_card_state state;
		struct sched_sub subs[4];
		size_t nsubs;
	} c[BASE_MAX];
	/* persisted seqs */
	size_t nsaved;
	uint32_t raise;        /* base_save hands back seq + raise (another node numbered meanwhile) */
	uint64_t saved_serial[256];
	uint32_t saved_seq[256];
	struct sched *sched; /* optional: events of grants */
};

static void base_view(struct base *b, size_t i, int64_t now_s, struct carousel_card *k)
{
	int64_t next;

	memset(k, 0, sizeof(*k));
	k->serial = b->c[i].serial;
	k->state = b->c[i].state;
	sched_grant_at(b->c[i].subs, b->c[i].nsubs, now_s, &k->grant, &next);
	if (b->sched)
		(void)sched_at(b->sched, k->serial, next);
}

static int base_page(void *ctx, uint64_t after, int64_t now_s, struct carousel_card *out, size_t max, size_t *n)
{
	struct base *b = ctx;

	*n = 0;
	for (size_t i = 0; i < b->n && *n < max; i++)
		if (b->c[i].serial > after)
			base_view(b, i, now_s, &out[(*n)++]);
	return 0;
}

static int base_get(void *ctx, uint64_t serial, int64_t now_s, struct carousel_card *out)
{
	struct base *b = ctx;

	for (size_t i = 0; i < b->n; i++)
		if (b->c[i].serial == serial) {
			base_view(b, i, now_s, out);
			return 0;
		}
	memset(out, 0, sizeof(*out));
	out->serial = serial;
	out->state = CAROUSEL_DELETED;
	return 0;
}

static int base_save(void *ctx, uint64_t serial, uint32_t step, uint64_t digest, bool blocked,
		     const struct emm_grant *g, uint32_t *seq)
{
	struct base *b = ctx;

	(void)digest;
	(void)blocked;
	assert_true(step == 1 || step == 2);
	*seq += b->raise;
	if (b->nsaved < 256) {
		b->saved_serial[b->nsaved] = serial;
		b->saved_seq[b->nsaved] = *seq;
		b->nsaved++;
	}
	return 0;
}

static void base_fill(struct base *b, size_t n, int64_t now_s)
{
	memset(b, 0, sizeof(*b));
	b->n = n;
	for (size_t i = 0; i < n; i++) {
		b->c[i].serial = 2100000000ull + i + 1;
		b->c[i].subs[0] = (struct sched_sub){ (uint32_t)(i % 4), now_s - 100, now_s + 100000 };
		b->c[i].nsubs = 1;
	}
}

/* What came out: serials (from the clear header) and sections. */
struct out {
	size_t n;
	uint64_t serial[512];
	uint8_t sec[512][EMM_MAX_SECTION];
	size_t len[512];
	size_t max; /* emit refuses beyond this (0 = 512) */
};

static int out_emit(void *ctx, const uint8_t *sec, size_t len)
{
	struct out *o = ctx;
	size_t max = o->max ? o->max : 512;

	if (o->n >= max)
		return CE_OVERFLOW;
	assert_true(len >= 14 && len <= EMM_MAX_SECTION);
	uint64_t s = 0;

	for (int i = 0; i < 8; i++) /* table, len(2), version, casid(2), serial(8) */
		s = s << 8 | sec[6 + i];
	o->serial[o->n] = s;
	memcpy(o->sec[o->n], sec, len);
	o->len[o->n] = len;
	o->n++;
	return 0;
}

struct rig {
	struct keystore *ks;
	struct emm_issuer *is;
	struct carousel *car;
	struct base b;
	struct out o;
};

static void rig_init(struct rig *g, size_t ncards, uint32_t kbps, bool no_cycle)
{
	/* one unique section per card EMM: these tests follow cards section by
	 * section (group EMMs: test_carousel_group.c) */
	struct carousel_config cc = { .epoch_seconds = EPOCH_S, .kbps = kbps, .page = 7, .no_cycle = no_cycle,
		.no_group = true };
	struct carousel_source src = { &g->b, base_page, base_get, base_save };

	memset(&g->o, 0, sizeof(g->o));
	base_fill(&g->b, ncards, (int64_t)(T0_MS / 1000u));
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &g->ks), 0);
	assert_int_equal(emm_issuer_new(g->ks, &g->is), 0);
	assert_int_equal(carousel_new(&cc, g->is, &src, &g->car), 0);
}

static void rig_free(struct rig *g)
{
	carousel_free(g->car);
	emm_issuer_free(g->is);
	keystore_free(g->ks);
}

/* Open section i of the output as card serial's box would, apply it. */
static int box_apply(struct rig *g, struct emm_card_state *st, size_t i, uint64_t serial)
{
	return he_box_open(g->ks, g->o.sec[i], g->o.len[i], serial, st, NULL);
}

static void test_carousel_changed_first(void **state)
{
	static struct rig g;
	size_t em = 0;

	(void)state;
	rig_init(&g, 20, 0, false);
	/* unlimited bandwidth, but one tick builds at most CAROUSEL_MAX_PER_TICK:
	 * cap the emit at 5 to stop mid-cycle */
	g.o.max = 5;
	assert_int_equal(carousel_tick(g.car, T0_MS, out_emit, &g.o, &em), CE_OVERFLOW);
	assert_int_equal(em, 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(g.o.serial[i], 2100000000ull + i + 1);
	/* two cards change (the second twice: queued once) */
	assert_int_equal(carousel_mark_changed(g.car, 2100000015ull), 0);
	assert_int_equal(carousel_mark_changed(g.car, 2100000003ull), 0);
	assert_int_equal(carousel_mark_changed(g.car, 2100000015ull), 0);
	struct carousel_stats cs;

	carousel_stats(g.car, &cs);
	assert_int_equal(cs.queue, 2);
	g.o.max = 9;
	assert_int_equal(carousel_tick(g.car, T0_MS + 10, out_emit, &g.o, &em), CE_OVERFLOW);
	assert_int_equal(g.o.serial[5], 2100000015ull); /* changed first, in order */
	assert_int_equal(g.o.serial[6], 2100000003ull);
	assert_int_equal(g.o.serial[7], 2100000006ull); /* then the cycle resumes */
	assert_int_equal(g.o.serial[8], 2100000007ull);
	/* finish the cycle: every card once, then it starts again */
	g.o.max = 0;
	g.o.n = 0;
	assert_int_equal(carousel_tick(g.car, T0_MS + 1000, out_emit, &g.o, &em), CE_OVERFLOW);
	assert_true(em == 512);
	for (size_t i = 0; i < 13; i++) /* card 8 was refused by the emit: it comes next */
		assert_int_equal(g.o.serial[i], 2100000008ull + i);
	assert_int_equal(g.o.serial[13], 2100000001ull);
	carousel_stats(g.car, &cs);
	assert_true(cs.cycles >= 1);
	assert_int_equal(cs.changed_emms, 2);
	assert_int_equal(cs.last_cycle_cards, 20);
	assert_int_equal(cs.seq_bumps, 20); /* content did not change: no renumbering */
	rig_free(&g);
}

static void test_carousel_bandwidth(void **state)
{
	static struct rig g;
	uint64_t t = T0_MS;
	size_t em = 0;
	struct carousel_stats cs;
	const uint32_t kbps = 64;

	(void)state;
	rig_init(&g, 40, kbps, false);
	/* 20 simulated seconds in 50 ms ticks */
	for (int i = 0; i <= 400; i++, t += 50) {
		g.o.n = 0;
		assert_int_equal(carousel_tick(g.car, t, out_emit, &g.o, &em), 0);
	}
	carousel_stats(g.car, &cs);
	/* budget: 20 s at 64 kbit/s + the bucket depth (one burst) + one EMM */
	uint64_t budget = 20ull * kbps * 1000 / 8, slack = (uint64_t)EMM_MAX_SECTION + 188 + 2 * 1024;

	assert_true(cs.ts_bytes <= budget + slack);
	assert_true(cs.ts_bytes >= budget - 2 * 1024); /* and the bandwidth is used */
	/* a cycle of 40 cards fits in 20 s at this rate: the counters say so */
	assert_true(cs.cycles >= 1);
	assert_true(cs.last_cycle_ms > 0);
	assert_true(cs.cycle_emms_per_s > 0.0);
	/* the cost model of a section on the EMM PID */
	assert_int_equal(carousel_ts_cost(183), 188);
	assert_int_equal(carousel_ts_cost(184), 376);
	rig_free(&g);
}

/* A small base is not cycled back to back: at most once per min_cycle_ms,
 * while changed cards still go at once. */
static void test_carousel_min_cycle(void **state)
{
	static struct rig g;
	struct carousel_config cc = { .epoch_seconds = EPOCH_S, .min_cycle_ms = 1000, .no_group = true };
	struct carousel_source src = { &g.b, base_page, base_get, base_save };
	struct carousel *c = NULL;
	size_t em = 0;

	(void)state;
	rig_init(&g, 3, 0, false);
	assert_int_equal(carousel_new(&cc, g.is, &src, &c), 0);
	assert_int_equal(carousel_tick(c, T0_MS, out_emit, &g.o, &em), 0);
	assert_int_equal(em, 3);
	assert_int_equal(carousel_tick(c, T0_MS + 500, out_emit, &g.o, &em), 0);
	assert_int_equal(em, 0);
	assert_int_equal(carousel_mark_changed(c, 2100000002ull), 0);
	assert_int_equal(carousel_tick(c, T0_MS + 600, out_emit, &g.o, &em), 0);
	assert_int_equal(em, 1);
	assert_int_equal(g.o.serial[3], 2100000002ull);
	assert_int_equal(carousel_tick(c, T0_MS + 1000, out_emit, &g.o, &em), 0);
	assert_int_equal(em, 3);
	carousel_free(c);
	rig_free(&g);
}

static void test_carousel_seq_and_box(void **state)
{
	static struct rig g;
	static struct emm_card_state box;
	const uint64_t serial = 2100000002ull; /* package 1 */
	size_t em = 0;
	uint32_t s1, s2;

	(void)state;
	memset(&box, 0, sizeof(box));
	rig_init(&g, 4, 0, true);
	assert_int_equal(carousel_mark_changed(g.car, serial), 0);
	assert_int_equal(carousel_tick(g.car, T0_MS, out_emit, &g.o, &em), 0);
	assert_int_equal(em, 1);
	s1 = carousel_seq(g.car, serial);
	assert_int_equal(s1, 1);
	assert_int_equal(g.b.nsaved, 1); /* persisted before it went out */
	assert_int_equal(g.b.saved_seq[0], 1);
	assert_int_equal(box_apply(&g, &box, 0, serial), 0);
	assert_int_equal(box.ent.packages, 0x2);
	assert_true(box.ent.nkeys >= 1);
	/* another card's box cannot open it */
	{
		struct emm_view v;

		assert_int_equal(emm_parse(g.o.sec[0], g.o.len[0], serial + 1, &v), CE_NOT_FOUND);
	}
	/* same content again: same seq, the box refuses it as a replay */
	assert_int_equal(carousel_mark_changed(g.car, serial), 0);
	assert_int_equal(carousel_tick(g.car, T0_MS + 1000, out_emit, &g.o, &em), 0);
	assert_int_equal(carousel_seq(g.car, serial), s1);
	assert_int_equal(box_apply(&g, &box, 1, serial), CE_REPLAY);
	/* new content: new seq, the box takes it */
	g.b.c[1].subs[1] = (struct sched_sub){ 4, (int64_t)(T0_MS / 1000u) - 10, (int64_t)(T0_MS / 1000u) + 1000 };
	g.b.c[1].nsubs = 2;
	assert_int_equal(carousel_mark_changed(g.car, serial), 0);
	assert_int_equal(carousel_tick(g.car, T0_MS + 2000, out_emit, &g.o, &em), 0);
	s2 = carousel_seq(g.car, serial);
	assert_true(s2 > s1);
	assert_int_equal(box_apply(&g, &box, 2, serial), 0);
	assert_int_equal(box.ent.packages, 0x12);
	/* blocked: empty grant + BLOCK; then active again: UNBLOCK first */
	g.b.c[1].state = CAROUSEL_BLOCKED;
	assert_int_equal(carousel_mark_changed(g.car, serial), 0);
	assert_int_equal(carousel_tick(g.car, T0_MS + 3000, out_emit, &g.o, &em), 0);
	assert_int_equal(box_apply(&g, &box, 3, serial), 0);
	assert_true(box.blocked);
	assert_int_equal(box.ent.packages, 0);
	assert_int_equal(box.ent.nkeys, 0);
	g.b.c[1].state = CAROUSEL_ACTIVE;
	assert_int_equal(carousel_mark_changed(g.car, serial), 0);
	assert_int_equal(carousel_tick(g.car, T0_MS + 4000, out_emit, &g.o, &em), 0);
	assert_int_equal(em, 2);
	assert_int_equal(box_apply(&g, &box, 4, serial), 0);
	assert_false(box.blocked);
	assert_int_equal(box_apply(&g, &box, 5, serial), 0);
	assert_int_equal(box.ent.packages, 0x12);
	/* a new key epoch is new content (keys of E+1 and E+2) */
	uint32_t s3 = carousel_seq(g.car, serial);

	assert_int_equal(carousel_mark_changed(g.car, serial), 0);
	assert_int_equal(carousel_tick(g.car, T0_MS + (uint64_t)EPOCH_S * 1000u, out_emit, &g.o, &em), 0);
	assert_true(carousel_seq(g.car, serial) > s3);
	assert_int_equal(box_apply(&g, &box, 6, serial), 0);
	/* a deleted card gets the revocation */
	g.b.n = 1; /* cards 2..4 are gone */
	assert_int_equal(carousel_mark_changed(g.car, serial), 0);
	assert_int_equal(carousel_tick(g.car, T0_MS + (uint64_t)EPOCH_S * 1000u + 10, out_emit, &g.o, &em), 0);
	assert_int_equal(box_apply(&g, &box, 7, serial), 0);
	assert_int_equal(box.ent.packages, 0);
	/* restart: a new carousel restored from the saved seqs continues above */
	{
		struct carousel *c2 = NULL;
		struct carousel_config cc = { .epoch_seconds = EPOCH_S, .no_cycle = true };
		struct carousel_source src = { &g.b, base_page, base_get, base_save };
		uint32_t last = carousel_seq(g.car, serial);

		assert_int_equal(carousel_new(&cc, g.is, &src, &c2), 0);
		for (size_t i = 0; i < g.b.nsaved; i++)
			assert_int_equal(carousel_restore(c2, g.b.saved_serial[i], g.b.saved_seq[i], 0, false), 0);
		assert_int_equal(carousel_seq(c2, serial), last);
		g.b.n = 4;
		assert_int_equal(carousel_mark_changed(c2, serial), 0);
		assert_int_equal(carousel_tick(c2, T0_MS + (uint64_t)EPOCH_S * 1000u + 20, out_emit, &g.o, &em), 0);
		assert_true(carousel_seq(c2, serial) > last);
		assert_int_equal(box_apply(&g, &box, g.o.n - 1, serial), 0);
		assert_int_equal(box.ent.packages, 0x2); /* package 4 expired meanwhile */
		carousel_free(c2);
	}
	emm_state_wipe(&box);
	rig_free(&g);
}

/* The scheduler drives expiry: the subscription ends, the card's event
 * fires, the carousel sends the revocation (fake clock, no cycle). */
static void test_scheduler_expiry(void **state)
{
	static struct rig g;
	static struct emm_card_state box;
	struct fake_clock fc = { T0_MS };
	struct sched_config sc = { fake_now, &fc, EPOCH_S };
	const uint64_t serial = 2100000001ull;
	int64_t t0 = (int64_t)(T0_MS / 1000u);
	uint64_t due[8];
	size_t em = 0, nd;

	(void)state;
	memset(&box, 0, sizeof(box));
	rig_init(&g, 1, 0, true);
	assert_int_equal(sched_new(&sc, &g.b.sched), 0);
	g.b.c[0].subs[0] = (struct sched_sub){ 0, t0 - 10, t0 + 60 };
	assert_int_equal(carousel_mark_changed(g.car, serial), 0);
	assert_int_equal(carousel_tick(g.car, fake_now(&fc), out_emit, &g.o, &em), 0);
	assert_int_equal(box_apply(&g, &box, 0, serial), 0);
	assert_int_equal(box.ent.packages, 1);
	assert_int_equal(sched_due(g.b.sched, due, 8), 0);
	atomic_store(&fc.ms, T0_MS + 60000);
	nd = sched_due(g.b.sched, due, 8);
	assert_int_equal(nd, 1);
	assert_int_equal(due[0], serial);
	assert_int_equal(carousel_mark_changed(g.car, due[0]), 0);
	assert_int_equal(carousel_tick(g.car, fake_now(&fc), out_emit, &g.o, &em), 0);
	assert_int_equal(em, 1);
	assert_int_equal(box_apply(&g, &box, 1, serial), 0);
	assert_int_equal(box.ent.packages, 0);
	assert_int_equal(box.ent.nkeys, 0);
	emm_state_wipe(&box);
	sched_free(g.b.sched);
	rig_free(&g);
}

/* Another node on the same base numbered the card meanwhile: the source
 * hands back a higher seq, the carousel uses it and goes on above it. */
static void test_carousel_seq_raised(void **state)
{
	static struct rig g;
	static struct emm_card_state box;
	const uint64_t serial = 2100000002ull;
	size_t em = 0;

	(void)state;
	memset(&box, 0, sizeof(box));
	rig_init(&g, 4, 0, true);
	g.b.raise = 40;
	assert_int_equal(carousel_mark_changed(g.car, serial), 0);
	assert_int_equal(carousel_tick(g.car, T0_MS, out_emit, &g.o, &em), 0);
	assert_int_equal(carousel_seq(g.car, serial), 41);
	assert_int_equal(g.b.saved_seq[0], 41);
	assert_int_equal(box_apply(&g, &box, 0, serial), 0);
	assert_int_equal(box.last_seq, 41);
	g.b.raise = 0;
	g.b.c[1].state = CAROUSEL_BLOCKED;
	assert_int_equal(carousel_mark_changed(g.car, serial), 0);
	assert_int_equal(carousel_tick(g.car, T0_MS + 1000, out_emit, &g.o, &em), 0);
	assert_int_equal(carousel_seq(g.car, serial), 42);
	assert_int_equal(box_apply(&g, &box, 1, serial), 0);
	assert_true(box.blocked);
	emm_state_wipe(&box);
	rig_free(&g);
}

/* ---- end to end -------------------------------------------------------- */

static struct headend *g_h;

/* GET path on 127.0.0.1:port (with an X-API-Key if key); body into out.
 * Returns the HTTP status. */
static int http_get_key(uint16_t port, const char *path, const char *key, char *out, size_t cap);

static int http_get(uint16_t port, const char *path, char *out, size_t cap)
{
	return http_get_key(port, path, NULL, out, cap);
}

static int http_get_key(uint16_t port, const char *path, const char *key, char *out, size_t cap)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char req[2048], buf[8192];
	size_t got = 0;
	int fd, st = 0;
	ssize_t k;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s%s%s\r\n", path,
			 key ? "X-API-Key: " : "", key ? key : "", key ? "\r\n" : "");

	assert_int_equal(write(fd, req, (size_t)n), n);
	while (got < sizeof(buf) - 1 && (k = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)k;
	buf[got] = '\0';
	close(fd);
	const char *sp = strchr(buf, ' ');

	assert_non_null(sp);
	for (int i = 1; i <= 3; i++) {
		assert_true(sp[i] >= '0' && sp[i] <= '9');
		st = st * 10 + (sp[i] - '0');
	}
	const char *body = strstr(buf, "\r\n\r\n");

	snprintf(out, cap, "%s", body ? body + 4 : "");
	return st;
}

/* The admin API key the head-end wrote to path (64 hex digits) into key. */
static void read_admin_key(const char *path, char key[65])
{
	size_t klen = 0;
	uint8_t *kb = tu_read(path, &klen);

	assert_non_null(kb);
	assert_int_equal(klen, 64);
	memcpy(key, kb, 64);
	key[64] = '\0';
	free(kb);
}

static void test_headend_end_to_end(void **state)
{
	static struct mux_runner mr;
	static struct emm_card_state box;
	char dir[] = "/tmp/castellan-headend-XXXXXX";
	char path[512], mux[64], key[80], q[1024], body[4096], db[600];
	struct keystore *ks = NULL;
	struct headend_config hc;
	struct sms_store *s = NULL;
	struct headend_stats hs;
	pthread_t th;
	size_t seen = 0;
	const uint64_t serial = 2100000077ull;
	int64_t now = (int64_t)(now_wall_ms() / 1000u);

	(void)state;
	memset(&box, 0, sizeof(box));
	assert_non_null(mkdtemp(dir));
	he_mux_start(&mr, 500, mux, sizeof(mux));
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &ks), 0);
	snprintf(path, sizeof(path), "%s/admin-key", dir);
	he_config(&hc, dir, ks, path, mux, 200);
	hc.http_addr = "127.0.0.1:0";
	hc.ecmg_addr = "127.0.0.1:0";
	/* an emm-seq.db left by an older build: moved into the store */
	{
		sqlite3 *old = NULL;

		snprintf(db, sizeof(db), "%s/emm-seq.db", dir);
		assert_int_equal(sqlite3_open(db, &old), SQLITE_OK);
		assert_int_equal(sqlite3_exec(old, "CREATE TABLE emm_seq (serial INTEGER PRIMARY KEY, seq INTEGER NOT NULL,"
					      " digest INTEGER NOT NULL, blocked INTEGER NOT NULL);"
					      "INSERT INTO emm_seq VALUES (2100000077, 1000, 1, 0)", NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_close(old);
	}
	assert_int_equal(headend_new(&hc, &g_h), 0);
	assert_true(headend_http_port(g_h) > 0);
	assert_true(headend_ecmg_port(g_h) > 0);
	read_admin_key(path, key);
	/* a card added by another process on the same database (as `castellan
	 * sms` would): the audit log carries it to the carousel */
	snprintf(db, sizeof(db), "sqlite:%s/sms.db", dir);
	assert_int_equal(sms_store_open(db, &s), 0);
	struct sms_card c = { .serial = serial, .start = now - 3600, .finish = now + 30 * 86400 };

	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	assert_int_equal(pthread_create(&th, NULL, he_headend_main, g_h), 0);
	/* the first cycle sends it with no package, numbered above the old file's */
	assert_int_equal(he_wait_box(&mr, ks, serial, &box, 0, &seen, NULL, NULL), 0);
	assert_true(box.last_seq > 1000);
	snprintf(db, sizeof(db), "%s/emm-seq.db.imported", dir);
	assert_int_equal(access(db, F_OK), 0);
	snprintf(db, sizeof(db), "sqlite:%s/sms.db", dir);
	/* subscribe packages 0 and 2 through the GET API */
	uint64_t t1 = now_mono_ms();

	snprintf(q, sizeof(q), "/api.php?api_key=%s&serial_no=%llu&set[access_criteria]=00000005", key,
		(unsigned long long)serial);
	assert_int_equal(http_get(headend_http_port(g_h), q, body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"access_criteria\":\"00000005\""));
	assert_int_equal(he_wait_box(&mr, ks, serial, &box, 0x5, &seen, NULL, NULL), 0);
	assert_true(box.ent.nkeys >= 2);
	print_message("subscribe -> box state: %llu ms\n", (unsigned long long)(now_mono_ms() - t1));
	/* a wrong key changes nothing */
	snprintf(q, sizeof(q), "/api.php?api_key=%064d&serial_no=%llu&set[access_criteria]=00000000", 0,
		(unsigned long long)serial);
	assert_int_equal(http_get(headend_http_port(g_h), q, body, sizeof(body)), 400);
	assert_string_equal(body, "NOT_VALID_API_KEY");
	/* remove the packages */
	t1 = now_mono_ms();
	snprintf(q, sizeof(q), "/api.php?api_key=%s&serial_no=%llu&set[access_criteria]=00000000", key,
		(unsigned long long)serial);
	assert_int_equal(http_get(headend_http_port(g_h), q, body, sizeof(body)), 200);
	assert_int_equal(he_wait_box(&mr, ks, serial, &box, 0, &seen, NULL, NULL), 0);
	assert_int_equal(box.ent.nkeys, 0);
	print_message("unsubscribe -> box state: %llu ms\n", (unsigned long long)(now_mono_ms() - t1));
	for (int i = 0; i < 300; i++) { /* the counters are snapshotted every 0.5 s */
		headend_stats(g_h, &hs);
		if (hs.car.changed_emms >= 2 && hs.audit_changes >= 2 && hs.http_requests >= 3)
			break;
		usleep(10000);
	}
	assert_true(hs.car.changed_emms >= 2);
	assert_true(hs.audit_changes >= 2);
	assert_true(hs.http_requests >= 3);
	/* the live status: published to the store, served by the REST API */
	for (int i = 0; i < 500; i++) {
		assert_int_equal(http_get_key(headend_http_port(g_h), "/api/v1/status", key, body, sizeof(body)), 200);
		if (strstr(body, "\"connected\":true") && strstr(body, "\"changed_emms\":") &&
		    !strstr(body, "\"changed_emms\":0,"))
			break;
		usleep(10000);
	}
	assert_non_null(strstr(body, "\"nodes\":[{\"node\":"));
	assert_non_null(strstr(body, "\"connected\":true"));
	assert_non_null(strstr(body, "\"ecmg\":{"));
	assert_non_null(strstr(body, "\"scheduler\":{"));
	assert_non_null(strstr(body, "\"records\":"));
	assert_non_null(strstr(body, "\"group_sections\":"));
	assert_int_equal(http_get(headend_http_port(g_h), "/api/v1/status", body, sizeof(body)), 401);
	headend_stop(g_h);
	pthread_join(th, NULL);
	headend_free(g_h);
	g_h = NULL;
	/* restart on the same data dir: no new admin key, seq continues; no
	 * MUX on the command line: the store's EMMG definition is used */
	uint32_t last = box.last_seq;
	struct sms_generator gen = { .kind = SMS_GEN_EMMG, .name = "emmg-1", .ca_system_id = CASID,
				     .bandwidth_kbps = 200, .enabled = true };

	snprintf(gen.address, sizeof(gen.address), "%s", mux);
	assert_int_equal(sms_generator_add(s, &gen, "test", NULL), 0);
	hc.mux_addr = NULL;
	hc.emm_kbps = 0;

	assert_int_equal(headend_new(&hc, &g_h), 0);
	assert_int_equal(pthread_create(&th, NULL, he_headend_main, g_h), 0);
	assert_int_equal(sms_subscribe(s, &(struct sms_subscription){ serial, 1, now - 10, now + 86400 }, "test"), 0);
	assert_int_equal(he_wait_box(&mr, ks, serial, &box, 0x2, &seen, NULL, NULL), 0);
	assert_true(box.last_seq > last);
	headend_stop(g_h);
	pthread_join(th, NULL);
	headend_free(g_h);
	sms_store_close(s);
	he_mux_stop(&mr);
	keystore_free(ks);
	emm_state_wipe(&box);
	snprintf(q, sizeof(q), "rm -rf '%s'", dir);
	assert_int_equal(system(q), 0);
}

#define VCHIP 0x0000CA57E11A0001ull

/* A vendor's opened key file: "0x<chip>,<K_v hex>" for chips VCHIP.. */
static void write_vendor_keys(const char *path, uint8_t kv[][16], size_t n)
{
	FILE *o = fopen(path, "w");

	assert_non_null(o);
	fprintf(o, "# chip_id,vendor_key\n");
	for (size_t i = 0; i < n; i++) {
		for (int j = 0; j < 16; j++)
			kv[i][j] = (uint8_t)(0x30 + i * 16 + (size_t)j * 7);
		fprintf(o, "0x%016llx,", (unsigned long long)(VCHIP + i));
		for (int j = 0; j < 16; j++)
			fprintf(o, "%02x", kv[i][j]);
		fprintf(o, "\n");
	}
	assert_int_equal(fclose(o), 0);
}

/* Wait (20 s at most) for an EMM of serial that opens with K_v (vendor EMM)
 * or with K_card (kv NULL); the other key must not open it. */
static int wait_emm(struct mux_runner *mr, const struct keystore *ks, uint64_t serial, const uint8_t *kv,
	uint32_t want, size_t *seen)
{
	uint8_t k[CARD_KEY_BYTES];
	int found = 0;

	assert_int_equal(keystore_card_key(ks, serial, k), 0);
	for (int tries = 0; tries < 2000 && !found; tries++) {
		pthread_mutex_lock(&mr->mu);
		while (*seen < mr->n && !found) {
			struct emm_view v;
			struct emm_content ct;
			size_t i = *seen % HE_RING;
			int rv = CE_MAC, rc;

			(*seen)++;
			if (emm_parse(mr->sec[i], mr->len[i], serial, &v) != 0)
				continue;
			rc = emm_open(&v, k, &ct);
			if (rc == 0) {
				found = !kv && ct.has_grant && ct.grant.packages == want;
				emm_content_wipe(&ct);
			}
			if (kv) {
				rv = emm_vendor_open(&v, kv, &ct);
				if (rv == 0) {
					found = ct.has_grant && ct.grant.packages == want;
					emm_content_wipe(&ct);
				}
				/* a vendor EMM: K_card never opens it */
				if (rv == 0)
					assert_int_equal(rc, CE_MAC);
			} else if (rc == 0) {
				uint8_t other[16] = { 0 };

				assert_int_not_equal(emm_vendor_open(&v, other, &ct), 0);
			}
		}
		pthread_mutex_unlock(&mr->mu);
		if (!found)
			usleep(10000);
	}
	secret_wipe(k, sizeof(k));
	return found ? 0 : CE_TIMEOUT;
}

static void test_headend_threads_vendor(void **state)
{
	static struct mux_runner mr;
	char dir[] = "/tmp/castellan-hevend-XXXXXX";
	char path[512], vk[512], mux[64], key[80], q[1024], body[4096], db[600];
	uint8_t kv[3][16];
	struct keystore *ks = NULL;
	struct headend_config hc;
	struct sms_store *s = NULL;
	struct headend_stats hs;
	pthread_t th;
	size_t seen = 0;
	const uint64_t vserial = 2100000091ull, pserial = 2100000092ull;
	int64_t now = (int64_t)(now_wall_ms() / 1000u);

	(void)state;
	assert_non_null(mkdtemp(dir));
	he_mux_start(&mr, 500, mux, sizeof(mux));
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &ks), 0);
	snprintf(path, sizeof(path), "%s/admin-key", dir);
	snprintf(vk, sizeof(vk), "%s/B.csv", dir);
	write_vendor_keys(vk, kv, 3);
	he_config(&hc, dir, ks, path, mux, 200);
	hc.http_addr = "127.0.0.1:0";
	hc.http_threads = 2;
	hc.vendor_keys = vk;
	assert_int_equal(headend_new(&hc, &g_h), 0);
	read_admin_key(path, key);
	snprintf(db, sizeof(db), "sqlite:%s/sms.db", dir);
	assert_int_equal(sms_store_open(db, &s), 0);
	struct sms_card c = { .serial = vserial, .start = now - 3600, .finish = now + 30 * 86400 };

	snprintf(c.chip_id, sizeof(c.chip_id), "0x%016llx", (unsigned long long)(VCHIP + 1)); /* the 2nd key */
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	c.serial = pserial;
	snprintf(c.chip_id, sizeof(c.chip_id), "0x00000000DEADBEEF"); /* not in the file */
	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	assert_int_equal(pthread_create(&th, NULL, he_headend_main, g_h), 0);
	/* two HTTP loops: every request answered right, whichever took it */
	for (int i = 0; i < 12; i++) {
		uint64_t sn = i % 2 ? vserial : pserial;

		snprintf(q, sizeof(q), "/api.php?api_key=%s&serial_no=%llu&set[access_criteria]=%08x", key,
			(unsigned long long)sn, i < 10 ? 1u : 6u);
		assert_int_equal(http_get(headend_http_port(g_h), q, body, sizeof(body)), 200);
		assert_non_null(strstr(body, i < 10 ? "\"access_criteria\":\"00000001\"" :
						      "\"access_criteria\":\"00000006\""));
		snprintf(q, sizeof(q), "/api/v1/cards/%llu", (unsigned long long)sn);
		assert_int_equal(http_get_key(headend_http_port(g_h), q, key, body, sizeof(body)), 200);
		assert_non_null(strstr(body, i % 2 ? "\"chip_id\":\"0x0000ca57e11a0002\"" :
						     "\"chip_id\":\"0x00000000DEADBEEF\""));
		assert_int_equal(http_get(headend_http_port(g_h), "/api/v1/cards/1", body, sizeof(body)), 401);
	}
	snprintf(q, sizeof(q), "/api.php?api_key=%064d&serial_no=%llu&set[access_criteria]=00000000", 0,
		(unsigned long long)vserial);
	assert_int_equal(http_get(headend_http_port(g_h), q, body, sizeof(body)), 400);
	assert_string_equal(body, "NOT_VALID_API_KEY");
	/* the chip's card: vendor EMMs under K_v(chip) (not K_card, not another
	 * chip's K_v); the other card: K_card EMMs */
	assert_int_equal(wait_emm(&mr, ks, vserial, kv[1], 0x6, &seen), 0);
	seen = 0;
	assert_int_equal(wait_emm(&mr, ks, pserial, NULL, 0x6, &seen), 0);
	pthread_mutex_lock(&mr.mu);
	for (size_t i = 0; i < mr.n && i < HE_RING; i++) {
		struct emm_view v;
		struct emm_content ct;

		if (emm_parse(mr.sec[i], mr.len[i], vserial, &v) != 0)
			continue;
		assert_int_not_equal(emm_vendor_open(&v, kv[0], &ct), 0);
		assert_int_not_equal(emm_vendor_open(&v, kv[2], &ct), 0);
	}
	pthread_mutex_unlock(&mr.mu);
	for (int i = 0; i < 300; i++) {
		headend_stats(g_h, &hs);
		if (hs.http_requests >= 37)
			break;
		usleep(10000);
	}
	assert_true(hs.http_requests >= 37); /* summed over both loops */
	assert_int_equal(hs.car.errors, 0);
	headend_stop(g_h);
	pthread_join(th, NULL);
	headend_free(g_h);
	g_h = NULL;
	sms_store_close(s);
	he_mux_stop(&mr);
	keystore_free(ks);
	snprintf(q, sizeof(q), "rm -rf '%s'", dir);
	assert_int_equal(system(q), 0);
}

/* Bad --vendor-keys files: refused at start, nothing half-loaded. */
/* --allow reaches the head-end's ECMG: a bad list fails the start, a good
 * one starts (the accept-time check itself: tests/headend/test_ecmg.c
 * test_allow_and_stream_caps). Issue 12 item 7. */
static void test_headend_ecmg_allow(void **state)
{
	char dir[] = "/tmp/castellan-heallow-XXXXXX";
	char q[600];
	struct keystore *ks = NULL;
	struct headend_config hc;
	struct headend *h = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &ks), 0);
	snprintf(q, sizeof(q), "%s/admin-key", dir);
	he_config(&hc, dir, ks, q, "", 0);
	hc.http_addr = "";
	hc.ecmg_addr = "127.0.0.1:0";
	hc.ecmg_allow = "10.0.0.1/8";
	assert_int_equal(headend_new(&hc, &h), CE_ARG);
	assert_null(h);
	hc.ecmg_allow = "10.0.0.0/8,192.0.2.0/24";
	assert_int_equal(headend_new(&hc, &h), 0);
	assert_true(headend_ecmg_port(h) > 0);
	headend_free(h);
	keystore_free(ks);
	snprintf(q, sizeof(q), "rm -rf '%s'", dir);
	assert_int_equal(system(q), 0);
}

static void test_headend_vendor_keys_bad(void **state)
{
	static const struct {
		const char *text;
		int want;
	} cases[] = {
		{ "0x1,00112233445566778899aabbccddeeff\n", 0 },
		{ "# only a comment\n\n", 0 },
		{ "1 00112233445566778899aabbccddeeff\n", CE_FORMAT },          /* no comma */
		{ "1,00112233445566778899aabbccddeef\n", CE_FORMAT },           /* 31 digits */
		{ "1,00112233445566778899aabbccddeeff0\n", CE_FORMAT },         /* 33 digits */
		{ "1,00112233445566778899aabbccddeegg\n", CE_FORMAT },          /* not hex */
		{ "chip,00112233445566778899aabbccddeeff\n", CE_FORMAT },       /* chip id */
		{ ",00112233445566778899aabbccddeeff\n", CE_FORMAT },           /* empty chip id */
		{ "0x10000000000000000,00112233445566778899aabbccddeeff\n", CE_FORMAT }, /* > 64 bits */
		{ "7,00112233445566778899aabbccddeeff\n0x7,ffeeddccbbaa99887766554433221100\n", CE_FORMAT },
		{ NULL, CE_IO },                                                 /* no file */
	};
	char dir[] = "/tmp/castellan-hevbad-XXXXXX";
	char vk[512], q[600], longline[400];
	struct keystore *ks = NULL;
	struct headend *h = NULL;
	struct headend_config hc;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &ks), 0);
	snprintf(vk, sizeof(vk), "%s/keys.csv", dir);
	snprintf(q, sizeof(q), "%s/admin-key", dir);
	he_config(&hc, dir, ks, q, "", 0);
	hc.vendor_keys = vk;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		(void)unlink(vk);
		if (cases[i].text) {
			FILE *o = fopen(vk, "w");

			assert_non_null(o);
			fputs(cases[i].text, o);
			assert_int_equal(fclose(o), 0);
		}
		assert_int_equal(headend_new(&hc, &h), cases[i].want);
		assert_true(cases[i].want != 0 || h != NULL);
		headend_free(h);
		h = NULL;
	}
	/* a line longer than any valid one */
	memset(longline, '1', sizeof(longline) - 2);
	longline[sizeof(longline) - 2] = '\n';
	longline[sizeof(longline) - 1] = '\0';
	FILE *o = fopen(vk, "w");

	assert_non_null(o);
	fputs(longline, o);
	assert_int_equal(fclose(o), 0);
	assert_int_equal(headend_new(&hc, &h), CE_FORMAT);
	keystore_free(ks);
	snprintf(q, sizeof(q), "rm -rf '%s'", dir);
	assert_int_equal(system(q), 0);
}

/* ---- issue 16 item 6: the channels table gives the ECMG its packages ---- */

static void sc_send(int fd, struct sc_writer *sw, const uint8_t *buf)
{
	size_t n = 0;

	assert_int_equal(sc_finish(sw, &n), 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
}

/* Read one ECMG<=>SCS message into buf, decode it into m. */
static void sc_recv(int fd, uint8_t *buf, size_t cap, struct sc_msg *m)
{
	size_t got = 0, need = SC_HEADER_BYTES;

	while (got < need) {
		ssize_t k = read(fd, buf + got, need - got);

		assert_true(k > 0);
		got += (size_t)k;
		if (got == SC_HEADER_BYTES) {
			need = sc_frame_len(buf);
			assert_true(need <= cap);
		}
	}
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, buf, got, m, NULL), 0);
}

static void test_headend_channels_table_ac(void **state)
{
	char dir[] = "/tmp/castellan-hechan-XXXXXX", db[600], q[600];
	static uint8_t buf[8192], tx[1024];
	struct keystore *ks = NULL;
	struct headend *h = NULL;
	struct headend_config hc;
	struct sms_store *st = NULL;
	struct sc_writer sw;
	struct sc_msg *m = calloc(1, sizeof(*m));
	struct sockaddr_in sa = { .sin_family = AF_INET };
	pthread_t th;
	int fd;

	(void)state;
	assert_non_null(m);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &ks), 0);
	/* the operator's channel plan: service 101 is in packages 1 and 2 */
	snprintf(db, sizeof(db), "sqlite:%s/sms.db", dir);
	assert_int_equal(sms_store_open(db, &st), 0);
	assert_int_equal(sms_channel_set(st, 101, "Sport", 0x00000006u, "test"), 0);
	sms_store_close(st);
	snprintf(q, sizeof(q), "%s/admin-key", dir);
	he_config(&hc, dir, ks, q, "", 0);
	hc.ecmg_addr = "127.0.0.1:0";
	assert_int_equal(headend_new(&hc, &h), 0);
	assert_int_equal(pthread_create(&th, NULL, he_headend_main, h), 0);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(headend_ecmg_port(h));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	sc_begin(&sw, tx, sizeof(tx), 2, SC_ECM_CHANNEL_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u32(&sw, SC_P_SUPER_CAS_ID, 0x4ADC0001u);
	sc_send(fd, &sw, tx);
	sc_recv(fd, buf, sizeof(buf), m);
	assert_int_equal(m->type, SC_ECM_CHANNEL_STATUS);
	/* ECM_id 101 = service 101 */
	sc_begin(&sw, tx, sizeof(tx), 2, SC_ECM_STREAM_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_ID, 101);
	sc_put_u16(&sw, SC_P_NOMINAL_CP_DURATION, 100);
	sc_send(fd, &sw, tx);
	sc_recv(fd, buf, sizeof(buf), m);
	assert_int_equal(m->type, SC_ECM_STREAM_STATUS);
	/* CW_provision without access_criteria (TSDuck's test client's way) */
	sc_begin(&sw, tx, sizeof(tx), 2, SC_ECM_CW_PROVISION);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	sc_put_u16(&sw, SC_P_CP_NUMBER, 0);
	for (uint16_t cp = 0; cp < 2; cp++) {
		uint8_t comb[10] = { 0, (uint8_t)cp, 1, 2, 3, 4, 5, 6, 7, 8 };

		sc_put_bytes(&sw, SC_P_CP_CW_COMBINATION, comb, sizeof(comb));
	}
	sc_send(fd, &sw, tx);
	sc_recv(fd, buf, sizeof(buf), m);
	assert_int_equal(m->type, SC_ECM_ECM_RESPONSE);
	{
		const struct sc_param *d = sc_get_nth(m, SC_P_ECM_DATAGRAM, 0);
		uint8_t sec[1024];
		struct ecm_view v;
		size_t len;

		/* TS packets: the section starts after the pointer field */
		assert_non_null(d);
		assert_true(d->len >= TS_PACKET_BYTES);
		len = 3u + (((size_t)(d->val[6] & 0x0F) << 8) | d->val[7]);
		assert_true(len <= 183u); /* one packet for two packages */
		memcpy(sec, d->val + 5, len);
		assert_int_equal(ecm_parse(sec, len, &v), 0);
		assert_int_equal(v.ecm_id, 101);
		assert_int_equal(v.package_mask, 0x00000006u);
	}
	close(fd);
	headend_stop(h);
	pthread_join(th, NULL);
	headend_free(h);
	keystore_free(ks);
	free(m);
	snprintf(q, sizeof(q), "rm -rf '%s'", dir);
	assert_int_equal(system(q), 0);
}

/* Panel users in the store of dir (sms.db): how many (0 without a store). */
static size_t panel_users_in(const char *dir)
{
	char path[600];
	struct sms_store *s = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/sms.db", dir);
	if (access(path, F_OK) != 0)
		return 0;
	assert_int_equal(sms_store_open(path, &s), 0);
	assert_int_equal(sms_panel_user_count(s, &n), 0);
	sms_store_close(s);
	return n;
}

/* Issue 16 item 4: a first start that fails (the HTTP port is taken) does
 * not spend the one-time secrets: no admin API key, no panel user yet; the
 * next start that gets up shows them. */
static void test_headend_first_start_fails_keeps_secrets(void **state)
{
	char dir[] = "/tmp/castellan-hefirst-XXXXXX";
	char keyf[512], webroot[512], taken[64], q[600], key[65];
	struct keystore *ks = NULL;
	struct headend *h = NULL;
	struct headend_config hc;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(taken, sizeof(taken), "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
	assert_non_null(mkdtemp(dir));
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &ks), 0);
	snprintf(keyf, sizeof(keyf), "%s/admin-key", dir);
	snprintf(webroot, sizeof(webroot), "%s/www", dir);
	assert_int_equal(mkdir(webroot, 0700), 0);
	he_config(&hc, dir, ks, keyf, "", 0);
	hc.http_addr = taken;
	hc.web_root = webroot;
	assert_int_not_equal(headend_new(&hc, &h), 0);
	assert_null(h);
	assert_int_not_equal(access(keyf, F_OK), 0);  /* no key made, none shown */
	assert_int_equal(panel_users_in(dir), 0); /* no panel admin yet */
	/* the port is free again: this start is the first that gets up */
	close(fd);
	hc.http_addr = "127.0.0.1:0";
	assert_int_equal(headend_new(&hc, &h), 0);
	read_admin_key(keyf, key);
	assert_int_equal(strlen(key), 64);
	assert_int_equal(panel_users_in(dir), 1);
	headend_free(h);
	h = NULL;
	/* later starts show nothing new: the key file is not rewritten */
	assert_int_equal(unlink(keyf), 0);
	assert_int_equal(headend_new(&hc, &h), 0);
	assert_int_not_equal(access(keyf, F_OK), 0);
	headend_free(h);
	secret_wipe(key, sizeof(key));
	keystore_free(ks);
	snprintf(q, sizeof(q), "rm -rf '%s'", dir);
	assert_int_equal(system(q), 0);
}

/* Issue 16 item 3 through the command: `--mux off` runs the head-end with
 * the EMM part off (it stays up until SIGTERM, exit 0); a --mux it cannot
 * use is a fatal error with a non-zero exit status, said at start. */
static int run_headend(char *dir, char *ks, char *pf, const char *mux_opt, char *ready, bool stop_when_ready,
	char *log, size_t cap)
{
	char bin[4096], mux[256], logf[600], keyf[600];
	pid_t pid;
	int status = 0;

	snprintf(bin, sizeof(bin), "%s", getenv("CASTELLAN_BIN"));
	snprintf(mux, sizeof(mux), "%s", mux_opt);
	snprintf(logf, sizeof(logf), "%s/headend.log", dir);
	snprintf(keyf, sizeof(keyf), "%s/admin.key", dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *a[] = { bin, (char *)"headend", (char *)"--data-dir", dir, (char *)"--keystore", ks,
			(char *)"--passphrase-file", pf, (char *)"--http", (char *)"127.0.0.1:0", (char *)"--ecmg",
			(char *)"127.0.0.1:0", (char *)"--web-root", (char *)"off", (char *)"--mux", mux,
			(char *)"--ready-file", ready, (char *)"--admin-key-file", keyf, (char *)"--status-every",
			(char *)"1", NULL };

		if (!freopen(logf, "w", stderr) || !freopen("/dev/null", "w", stdout))
			_exit(126);
		execv(bin, a);
		_exit(127);
	}
	if (stop_when_ready) {
		bool up = false;

		for (int i = 0; i < 200 && !up; i++) { /* bounded: 10 s */
			up = access(ready, F_OK) == 0;
			if (!up)
				usleep(50000);
		}
		assert_true(up);
		usleep(300000); /* the EMM thread has started by now */
		assert_int_equal(waitpid(pid, &status, WNOHANG), 0); /* still running */
		kill(pid, SIGTERM);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	{
		FILE *f = fopen(logf, "r");
		size_t n = f ? fread(log, 1, cap - 1, f) : 0;

		log[n] = '\0';
		if (f)
			fclose(f);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_headend_cli_mux_off_and_fatal(void **state)
{
	const char *bin = getenv("CASTELLAN_BIN");
	char dir[] = "/tmp/castellan-hemux-XXXXXX";
	char ks[512], pf[512], ready[512], q[600];
	static char log[16384];
	struct keystore *k = NULL;

	(void)state;
	if (!bin)
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(ks, sizeof(ks), "%s/ks", dir);
	snprintf(pf, sizeof(pf), "%s/pass", dir);
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	assert_int_equal(file_write_atomic(pf, "test-passphrase-hemux", 21, 0600), 0);
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &k), 0);
	assert_int_equal(keystore_save(k, ks, "test-passphrase-hemux"), 0);
	keystore_free(k);
	assert_int_equal(run_headend(dir, ks, pf, "off", ready, true, log, sizeof(log)), 0);
	assert_null(strstr(log, "EMM thread"));
	assert_non_null(strstr(log, "MUX (none)"));
	/* the carousel's status says there is no MUX, not "EMMG down" */
	assert_non_null(strstr(log, "no MUX (--mux off)"));
	assert_null(strstr(log, "EMMG down"));
	unlink(ready);
	assert_int_equal(run_headend(dir, ks, pf, "no-port-here", ready, false, log, sizeof(log)), 1);
	assert_non_null(strstr(log, "--mux no-port-here"));
	assert_int_not_equal(access(ready, F_OK), 0);
	snprintf(q, sizeof(q), "rm -rf '%s'", dir);
	assert_int_equal(system(q), 0);
}

/* A panel password file whose first line is too short or too long: the
 * command says which file and the bounds, exits 2, and starts nothing. */
static void test_cli_password_file(void **state)
{
	const char *bin = getenv("CASTELLAN_BIN");
	static const char *const lines[] = { "short\n", "", "\n" };
	char dir[] = "/tmp/castellan-he-pw-XXXXXX", pf[300], cmd[1024], out[1024];

	(void)state;
	if (!bin)
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(pf, sizeof(pf), "%s/pw", dir);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		FILE *f = fopen(pf, "w"), *p;
		size_t got;

		assert_non_null(f);
		fputs(lines[i], f);
		fclose(f);
		snprintf(cmd, sizeof(cmd), "'%s' headend --data-dir '%s/d' --web-admin-password-file '%s' 2>&1; echo rc=$?",
			 bin, dir, pf);
		p = popen(cmd, "r");
		assert_non_null(p);
		got = fread(out, 1, sizeof(out) - 1, p);
		out[got] = '\0';
		pclose(p);
		assert_non_null(strstr(out, "must be 10 to 256 bytes"));
		assert_non_null(strstr(out, "rc=2"));
		assert_null(strstr(out, "invalid argument"));
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Issue 16 item 15: an empty passphrase file is named with the fix, not
 * "passphrase: invalid argument". */
static void test_cli_empty_passphrase(void **state)
{
	const char *bin = getenv("CASTELLAN_BIN");
	char dir[] = "/tmp/castellan-he-pp-XXXXXX", pf[300], cmd[1200], out[2048];
	FILE *f, *p;
	size_t got;

	(void)state;
	if (!bin)
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(pf, sizeof(pf), "%s/pass", dir);
	f = fopen(pf, "w");
	assert_non_null(f);
	fputs("\n", f);
	fclose(f);
	assert_int_equal(chmod(pf, 0600), 0); /* a passphrase file others may read is refused first */
	snprintf(cmd, sizeof(cmd), "'%s' headend --data-dir '%s/d' --keystore '%s/ks' --passphrase-file '%s' 2>&1; "
		"'%s' keys init --out '%s/ks' --ca-system-id 0x4ADC --passphrase-file '%s' 2>&1",
		bin, dir, dir, pf, bin, dir, pf);
	p = popen(cmd, "r");
	assert_non_null(p);
	got = fread(out, 1, sizeof(out) - 1, p);
	out[got] = '\0';
	pclose(p);
	assert_non_null(strstr(out, "headend: passphrase: "));
	assert_non_null(strstr(out, "keys: passphrase: "));
	assert_non_null(strstr(out, "its first line is empty"));
	assert_null(strstr(out, "invalid argument"));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* SIGHUP's live keys (headend_apply_live): not its key, a bad or removed
 * emm-kbps, all decided before the head-end is touched. */
static void test_headend_apply_live(void **state)
{
	(void)state;
	assert_int_equal(headend_apply_live(NULL, "log-level", "debug"), CE_NOT_FOUND);
	assert_int_equal(headend_apply_live(NULL, "emm-kbps", NULL), CE_UNSUPPORTED);
	assert_int_equal(headend_apply_live(NULL, "emm-kbps", "0"), CE_ARG);
	assert_int_equal(headend_apply_live(NULL, "emm-kbps", "65536"), CE_ARG);
	assert_int_equal(headend_apply_live(NULL, "emm-kbps", "ten"), CE_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_password_file),
		cmocka_unit_test(test_headend_apply_live),
		cmocka_unit_test(test_cli_empty_passphrase),
		cmocka_unit_test(test_grant_at),
		cmocka_unit_test(test_sched_fake_clock),
		cmocka_unit_test(test_carousel_seq_raised),
		cmocka_unit_test(test_carousel_changed_first),
		cmocka_unit_test(test_carousel_bandwidth),
		cmocka_unit_test(test_carousel_min_cycle),
		cmocka_unit_test(test_carousel_seq_and_box),
		cmocka_unit_test(test_scheduler_expiry),
		cmocka_unit_test(test_headend_end_to_end),
		cmocka_unit_test(test_headend_threads_vendor),
		cmocka_unit_test(test_headend_vendor_keys_bad),
		cmocka_unit_test(test_headend_ecmg_allow),
		cmocka_unit_test(test_headend_first_start_fails_keeps_secrets),
		cmocka_unit_test(test_headend_channels_table_ac),
		cmocka_unit_test(test_headend_cli_mux_off_and_fatal),
	};

	log_set_level(LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
