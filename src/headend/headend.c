/*
 * headend.c - `castellan headend` wiring (headend.h): store, HTTP, ECMG,
 * the EMM thread (scheduler + carousel + EMMG client), EMM sequence numbers
 * in the store, change detection by the store's change feed, generator
 * definitions from the store, and the status counters (published to the
 * store's node_status for GET /api/v1/status).
 */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include <sqlite3.h>
#include "headend/headend.h"
#include "headend/panel_keys.h"
#include "cas/emm.h"
#include "cas/emm_vendor.h"
#include "cas/keys.h"
#include "cas/vkeys.h"
#include "headend/ecmg.h"
#include "headend/emmg.h"
#include "headend/osd_sched.h"
#include "headend/chan_usage.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sms/audit_file.h"
#include "sms/http.h"
#include "web/web.h"
#include <jansson.h>
#include "sms/store.h"

#define PATH_CAP 1024
#define SUBS_MAX SMS_PACKAGES_MAX /* one card's subscriptions: all of them (a package each) */
#define PAGE_SUBS 16384                         /* a page's subscriptions read in one query */
#define SEQ_BATCH (CAROUSEL_MAX_PER_TICK + 64u) /* new seqs of a tick, upserted together */

struct headend {
	struct headend_config cfg;
	char data_dir[PATH_CAP], db_uri[PATH_CAP], http_addr[256], ecmg_addr[256], mux_addr[EMMG_ADDR_BYTES];
	char seq_path[PATH_CAP], admin_key_file[PATH_CAP], node[SMS_NAME_MAX + 1];
	uint16_t ca_system_id;       /* from the keystore */
	struct event_base *base;
	struct event *tick_ev, *sig_int, *sig_term;
	struct sms_store *http_store;
	struct sms_http *http;
	struct web *web;             /* the panel on http, NULL if none */
	struct ecmg *ecmg;
	atomic_int stop;
	atomic_int fatal;      /* a part failed (CE_* code): headend_run returns it */
	atomic_uint emm_kbps_req;    /* headend_set_emm_kbps: taken by the EMM thread; 0 = none */
	pthread_mutex_t mu;
	struct headend_stats st;     /* under mu */
	struct vkey *vkeys;          /* --vendor-keys, sorted by chip; read-only once running */
	size_t nvkeys;
	/* the channels table for the ECMG (service_id = ECM_id -> package
	 * mask, 0 = no channel): loaded at start, refreshed by the EMM thread
	 * every HEADEND_CHANNELS_REFRESH_MS, read by the ECMG thread */
	_Atomic uint32_t chan_ac[65536];
	struct chan_usage *usage; /* C.6: channels' copy control, loaded with them */
	/* fingerprints and messages in force (issue 13): the ECMG's fp_lookup
	 * and the carousel's per-card OSD items; reloaded with the channels */
	struct osd_sched *osd;
};

#define HEADEND_CHANNELS_REFRESH_MS 2000u

/* The package limits, named once each and tied here where the SMS meets
 * the CAS: every SMS package id has a key (K_pkg takes ids up to
 * CAS_PACKAGE_IDS - 1), and what emm_seq records of a card's extended
 * packages holds every one an EMM can carry. */
_Static_assert(SMS_PACKAGES_MAX == CAS_PACKAGE_IDS, "every SMS package id is keyed");
_Static_assert(SMS_SENT_EXT_MAX >= EMM_MAX_EXT_PACKAGES, "emm_seq keeps every extended package sent");

struct chan_load {
	uint32_t *ac;       /* 65536 entries */
	int64_t last;
};

static int chan_one(void *ctx, const struct sms_channel *c)
{
	struct chan_load *l = ctx;

	l->ac[c->service_id] = c->access_criteria;
	l->last = c->service_id;
	return 0;
}

/* Read the channels table into h->chan_ac (entries gone are cleared). */
static int channels_load(struct headend *h, struct sms_store *st)
{
	struct chan_load l = { .ac = calloc(65536, sizeof(uint32_t)), .last = -1 };
	size_t n = 0;
	int r = 0;

	if (!l.ac)
		return CE_NOMEM;
	do {
		n = 0;
		r = sms_channel_list(st, l.last, 1000, chan_one, &l, &n);
	} while (r == 0 && n == 1000);
	if (r == 0)
		for (size_t i = 0; i < 65536; i++)
			atomic_store(&h->chan_ac[i], l.ac[i]);
	free(l.ac);
	if (r == 0)
		r = chan_usage_load(h->usage, st);
	return r;
}

/* ecmg_config.ac_lookup (ECMG thread). */
static int channels_ac(void *ctx, uint16_t ecm_id, uint32_t *mask)
{
	struct headend *h = ctx;

	*mask = atomic_load(&h->chan_ac[ecm_id]);
	return *mask ? 0 : CE_NOT_FOUND;
}

/* ---- the EMM thread's state ------------------------------------------- */

struct emm_thread {
	struct headend *h;
	struct sms_store *store;
	/* new sequence numbers of this tick (src_save), persisted together
	 * by seq_flush before anything of the tick goes on air */
	struct sms_emm_seq_req *seqq;
	size_t nseq, seq_done;         /* queued; of them, already upserted */
	bool seq_drop;                 /* this tick's sections must not go out */
	struct emm_issuer *is;
	struct sched *sched;
	struct carousel *car;
	struct emmg *emmg;
	/* source scratch */
	struct sms_card *cards;
	size_t ncards;
	struct sms_subscription *subs;  /* SUBS_MAX: one card (src_get) */
	struct sms_subscription *psubs; /* PAGE_SUBS: one page (src_page) */
	struct sched_sub *ssubs;
	/* pending sections (built, not yet sent) */
	uint8_t *pend;
	size_t pend_cap, pend_len, pend_n, pend_first;
	const uint8_t **pp;
	size_t *pl;
	size_t pp_cap;
	/* change feed */
	int64_t last_change;           /* every row <= this one is handled */
	bool osd_dirty;                /* a fingerprint / message changed: reload before the tick */
	int64_t poll_last;             /* the highest id of this poll */
	int64_t gap_after;             /* a gap follows this id ... */
	uint64_t gap_since_ms;         /* ... seen first then (0: no gap) */
	bool gap_now;                  /* this poll found a gap after last_change */
	uint64_t now_ms;
	uint64_t audit_changes, resyncs, feed_gaps_skipped;
	uint8_t seal_buf[EMM_MAX_SECTION]; /* src_seal scratch */
};

static enum carousel_card_state car_state(enum sms_card_state s)
{
	switch (s) {
	case SMS_CARD_ACTIVE: return CAROUSEL_ACTIVE;
	case SMS_CARD_BLOCKED: return CAROUSEL_BLOCKED;
	default: return CAROUSEL_RETIRED;
	}
}

/* The vendor key of a store chip id (decimal or 0x hex), NULL if none. */
static const struct vkey *vkey_find(const struct headend *h, const char *chip_id)
{
	uint64_t chip;

	if (!h->nvkeys || !chip_id[0] || parse_u64(chip_id, UINT64_MAX, &chip) != 0)
		return NULL;
	return vkeys_find(h->vkeys, h->nvkeys, chip);
}

/* Load a vendor's opened key file (cas/vkeys.h). A bad or duplicate line
 * refuses the whole file (CE_FORMAT); CE_IO, CE_LIMIT, CE_NOMEM. */
static int vkeys_open(struct headend *h, const char *path)
{
	size_t lineno = 0;
	int r = vkeys_load(path, HEADEND_VENDOR_KEYS_MAX, &h->vkeys, &h->nvkeys, &lineno);

	if (r == CE_IO) {
		LOG_ERR("headend", "%s: cannot read", path);
		return r;
	}
	if (r != 0) {
		if (lineno)
			LOG_ERR("headend", "%s line %zu: %s (want chip_id,32 hex digits)", path, lineno, err_str(r));
		else
			LOG_ERR("headend", "%s: %s (a chip id twice?)", path, err_str(r));
		return r;
	}
	LOG_INFO("headend", "vendor keys: %zu chips from %s", h->nvkeys, path);
	return 0;
}

/* carousel_seal_fn: a K_card EMM re-sealed under K_emm(K_v(chip), serial). */
static int src_seal(void *ctx, const struct carousel_card *k, uint8_t *buf, size_t cap, size_t *len)
{
	struct emm_thread *t = ctx;
	const struct vkey *v = k->seal_key;
	size_t n = 0;
	int r = emm_vendor_seal(t->h->cfg.ks, v->kv, buf, *len, t->seal_buf, sizeof(t->seal_buf), &n);

	if (r == 0 && n > cap)
		r = CE_OVERFLOW;
	if (r == 0) {
		memcpy(buf, t->seal_buf, n);
		*len = n;
	} else {
		LOG_WARN("headend", "vendor EMM of card %" PRIu64 ": %s", k->serial, err_str(r));
	}
	secret_wipe(t->seal_buf, sizeof(t->seal_buf));
	return r;
}

/* Fill k from a card and its n subscriptions; schedule its next change
 * (the scheduler keeps one pending event per card: the earliest). */
static void card_view(struct emm_thread *t, const struct sms_card *c, const struct sms_subscription *subs, size_t n,
		      int64_t now_s, struct carousel_card *k)
{
	int64_t next = SCHED_NO_EVENT;

	for (size_t i = 0; i < n; i++)
		t->ssubs[i] = (struct sched_sub){ subs[i].package, subs[i].start, subs[i].finish };
	memset(k, 0, sizeof(*k));
	k->serial = c->serial;
	k->state = car_state(c->state);
	k->seal_key = vkey_find(t->h, c->chip_id);
	if (c->pair) {
		/* pairing required (docs/smartcard.md "Pairing required"): a
		 * smartcard bound by K_pair to the chip of the box chip_id names,
		 * so its EMMs stay under K_card (the card reads them); with no
		 * such box known, the grant goes without keys */
		const struct vkey *v = k->seal_key;

		k->seal_key = NULL;
		k->pair = CAROUSEL_PAIR_NO_BOX;
		if (v) {
			k->pair = CAROUSEL_PAIR_CHIP;
			k->pair_stb_id = v->chip;
			k->pair_kv = v->kv;
		}
	}
	sched_grant_at(t->ssubs, n, now_s, &k->grant, &next);
	(void)sched_at(t->sched, c->serial, next);
	osd_sched_card(t->h->osd, k->serial, k->grant.packages, now_s, k); /* its messages and fingerprints */
}

static int collect_card(void *ctx, const struct sms_card *c)
{
	struct emm_thread *t = ctx;

	/* The carousel needs no subscriber info: stop before it (the last field). */
	memcpy(&t->cards[t->ncards], c, offsetof(struct sms_card, info));
	t->cards[t->ncards++].info[0] = '\0';
	return 0;
}

/* A page: its cards in one query, their subscriptions in another (the
 * cards past a page's PAGE_SUBS subscriptions, one query each). */
static int src_page(void *ctx, uint64_t after, int64_t now_s, struct carousel_card *out, size_t max, size_t *n)
{
	struct emm_thread *t = ctx;
	size_t cnt = 0, ns = 0, j = 0;
	uint64_t whole_below = UINT64_MAX; /* cards below this serial have all their rows in psubs */
	int r;

	*n = 0;
	if (max > CAROUSEL_DEFAULT_PAGE)
		max = CAROUSEL_DEFAULT_PAGE;
	t->ncards = 0;
	if ((r = sms_card_list(t->store, after, max, collect_card, t, &cnt)) != 0)
		return r;
	if (t->ncards == 0)
		return 0;
	r = sms_subscription_range(t->store, after, t->cards[t->ncards - 1].serial, t->psubs, PAGE_SUBS, &ns);
	if (r == CE_OVERFLOW && ns > 0)
		whole_below = t->psubs[ns - 1].serial;
	else if (r != 0)
		return r;
	for (size_t i = 0; i < t->ncards; i++) {
		uint64_t serial = t->cards[i].serial;
		size_t k;

		if (serial >= whole_below) {
			if ((r = sms_subscription_list(t->store, serial, t->subs, SUBS_MAX, &k)) != 0)
				return r;
			card_view(t, &t->cards[i], t->subs, k, now_s, &out[i]);
			continue;
		}
		while (j < ns && t->psubs[j].serial < serial)
			j++; /* a card added between the two queries */
		for (k = j; k < ns && t->psubs[k].serial == serial; k++)
			;
		card_view(t, &t->cards[i], t->psubs + j, k - j, now_s, &out[i]);
		j = k;
	}
	*n = t->ncards;
	return 0;
}

static int src_get(void *ctx, uint64_t serial, int64_t now_s, struct carousel_card *out)
{
	struct emm_thread *t = ctx;
	size_t n = 0;
	int r = sms_card_get_subs(t->store, serial, &t->cards[0], t->subs, SUBS_MAX, &n);

	if (r == CE_NOT_FOUND) {
		memset(out, 0, sizeof(*out));
		out->serial = serial;
		out->state = CAROUSEL_DELETED;
		return 0;
	}
	if (r != 0 && r != CE_OVERFLOW) /* SUBS_MAX is every package a card may hold */
		return r;
	card_view(t, &t->cards[0], t->subs, n, now_s, out);
	return 0;
}

/*
 * Persist before send, batched: src_save queues the carousel's proposal
 * (its last number + step) and says yes; seq_flush hands the tick's queue to
 * the store in multi-row statements (sms_emm_seq_next_many: the same atomic
 * max(want, stored + step) shared by every node on the base) before
 * anything of the tick goes on air (emm_main). A row that comes back above
 * the proposal was numbered by another node meanwhile: the tick carries a
 * number that is not ours, so none of its sections go out, the carousel
 * takes the stored number and every card of the queue is rebuilt (the
 * conflicting ones renumbered above it). A failed upsert drops the tick the
 * same way. Only another node on the same base can cause either.
 */
static void seq_undo(struct emm_thread *t, const struct sms_emm_seq_req *q, uint32_t seq)
{
	/* ~digest never matches: the card is renumbered when next built; an
	 * UNBLOCK (step 2) is sent again */
	if (carousel_restore(t->car, q->serial, seq, ~q->digest, q->blocked || q->step == 2) != 0)
		LOG_WARN("headend", "EMM seq of card %" PRIu64 ": carousel state not updated", q->serial);
}

static int seq_flush(struct emm_thread *t)
{
	size_t n = t->nseq - t->seq_done;
	struct sms_emm_seq_req *q = t->seqq + t->seq_done;
	int r;

	if (n == 0)
		return 0;
	r = sms_emm_seq_next_many(t->store, q, n);
	t->seq_done = t->nseq;
	if (r != 0) {
		LOG_ERR("headend", "EMM seq of %zu cards: %s: this tick's EMMs are dropped", n, err_str(r));
		for (size_t i = 0; i < n; i++)
			seq_undo(t, &q[i], q[i].want);
		t->seq_drop = true;
		return CE_IO;
	}
	for (size_t i = 0; i < n; i++) {
		if (q[i].seq == q[i].want)
			continue;
		LOG_WARN("headend", "EMM seq of card %" PRIu64 ": %" PRIu32 " in the store (another node?), %" PRIu32
			 " proposed: this tick's EMMs are dropped", q[i].serial, q[i].seq, q[i].want);
		seq_undo(t, &q[i], q[i].seq ? q[i].seq : UINT32_MAX); /* 0: no room left */
		t->seq_drop = true;
	}
	return 0;
}

/* After a tick: persist its numbers; false if its sections must not go out
 * (the cards of the tick are queued again). */
static bool seq_end_tick(struct emm_thread *t)
{
	bool ok;

	(void)seq_flush(t);
	ok = !t->seq_drop;
	if (!ok)
		for (size_t i = 0; i < t->nseq; i++)
			(void)carousel_mark_changed(t->car, t->seqq[i].serial);
	t->nseq = t->seq_done = 0;
	t->seq_drop = false;
	return ok;
}

static int src_save(void *ctx, uint64_t serial, uint32_t step, uint64_t digest, bool blocked,
		    const struct emm_grant *g, uint32_t *seq)
{
	struct sms_emm_seq_req *q;

	struct emm_thread *t = ctx;

	if (t->nseq == SEQ_BATCH) {
		/* more than a tick builds: persist what is queued, start over */
		if (seq_flush(t) != 0)
			return CE_IO;
		if (t->seq_drop)
			return CE_IO;
		t->nseq = t->seq_done = 0;
	}
	q = &t->seqq[t->nseq++];
	memset(q, 0, sizeof(*q));
	q->serial = serial;
	q->step = step;
	q->want = *seq;
	q->digest = digest;
	q->blocked = blocked;
	q->has_sent = true; /* blocked: the empty grant (packages 0) */
	if (g) {
		q->sent_packages = g->packages;
		q->sent_start = (int64_t)g->start_s;
		q->sent_finish = (int64_t)g->finish_s;
		q->sent_next = g->next < SMS_SENT_EXT_MAX ? g->next : SMS_SENT_EXT_MAX;
		memcpy(q->sent_ext, g->ext, q->sent_next * sizeof(q->sent_ext[0]));
	}
	return 0; /* *seq: the proposal, unless seq_flush finds otherwise */
}

struct seq_load {
	struct carousel *car;
	uint64_t last;
};

static int seq_row(void *ctx, const struct sms_emm_seq *q)
{
	struct seq_load *l = ctx;

	l->last = q->serial;
	return carousel_restore(l->car, q->serial, q->seq, q->digest, q->blocked);
}

/* Before schema 2 the numbers lived in DATADIR/emm-seq.db: move them into
 * the store once (keeping the higher number of a card), then rename the
 * file to emm-seq.db.imported so it is never read again. */
static int seq_import_file(struct emm_thread *t)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char done[PATH_CAP + 16];
	size_t n = 0;
	int r = 0, rc;

	if (access(t->h->seq_path, F_OK) != 0)
		return 0;
	if (sqlite3_open_v2(t->h->seq_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT serial, seq, digest, blocked FROM emm_seq", -1, &st, NULL) != SQLITE_OK) {
		LOG_ERR("headend", "%s: cannot read: %s", t->h->seq_path, db ? sqlite3_errmsg(db) : "?");
		r = CE_IO;
		goto out;
	}
	if ((r = sms_tx_begin(t->store)) != 0)
		goto out;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sms_emm_seq q = { .serial = (uint64_t)sqlite3_column_int64(st, 0),
					 .seq = (uint32_t)sqlite3_column_int64(st, 1),
					 .digest = (uint64_t)sqlite3_column_int64(st, 2),
					 .blocked = sqlite3_column_int(st, 3) != 0 };

		if (q.serial == 0 || q.serial > INT64_MAX)
			continue;
		r = sms_emm_seq_import(t->store, &q);
		n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = CE_IO;
	if ((r = sms_tx_end(t->store, r)) != 0)
		goto out;
	if (snprintf(done, sizeof(done), "%s.imported", t->h->seq_path) >= (int)sizeof(done) ||
	    rename(t->h->seq_path, done) != 0) {
		r = CE_IO;
		goto out;
	}
	LOG_INFO("headend", "moved %zu EMM sequence numbers from %s into the store", n, t->h->seq_path);
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

/* Load every card's persisted number into the carousel. */
static int seq_open(struct emm_thread *t)
{
	struct seq_load l = { t->car, 0 };
	size_t n = 0;
	int r;

	if ((r = seq_import_file(t)) != 0)
		return r;
	do {
		if ((r = sms_emm_seq_list(t->store, l.last, 10000, seq_row, &l, &n)) != 0)
			return r;
	} while (n == 10000);
	return 0;
}

/* ---- the change feed --------------------------------------------------- */

static int change_row(void *ctx, const struct sms_change *c)
{
	struct emm_thread *t = ctx;
	int64_t expect = t->poll_last + 1;

	if (c->id != expect && !t->gap_now && t->poll_last == t->last_change) {
		/* ids between expect and c->id are not visible (yet): another
		 * transaction took them and has not committed (PostgreSQL), or
		 * rolled back. Wait HEADEND_FEED_GAP_MS for them, then go on. */
		t->gap_now = true;
		if (t->gap_since_ms == 0 || t->gap_after != t->poll_last) {
			t->gap_after = t->poll_last;
			t->gap_since_ms = t->now_ms ? t->now_ms : 1;
		}
	}
	if (strcmp(c->reason, "message") == 0 || strcmp(c->reason, "fingerprint") == 0)
		t->osd_dirty = true; /* the card's EMM must carry the new set */
	/* marking early is harmless: the queue ignores a card queued already */
	if (c->serial && carousel_mark_changed(t->car, c->serial) == 0)
		t->audit_changes++;
	t->poll_last = c->id;
	if (!t->gap_now)
		t->last_change = c->id;
	return 0;
}

static void feed_poll(struct emm_thread *t, uint64_t now_ms)
{
	size_t n = 0;
	int r;

	if (t->last_change < 0) {
		/* the first cycle covers every card: only note where the feed is */
		if ((r = sms_changes_last(t->store, &t->last_change)) != 0) {
			t->last_change = -1;
			LOG_WARN("headend", "change feed: %s", err_str(r));
		}
		return;
	}
	t->now_ms = now_ms;
	t->poll_last = t->last_change;
	t->gap_now = false;
	r = sms_changes_since(t->store, t->last_change, HEADEND_FEED_BATCH, change_row, t, &n);
	if (r < 0) {
		LOG_WARN("headend", "change feed: %s", err_str(r));
		return;
	}
	if (t->gap_now && now_ms - t->gap_since_ms >= HEADEND_FEED_GAP_MS) {
		/* the missing ids never came: rolled back; past them */
		t->last_change = t->poll_last;
		t->gap_since_ms = 0;
		t->feed_gaps_skipped++;
	} else if (!t->gap_now) {
		t->gap_since_ms = 0;
	}
	if (n == HEADEND_FEED_BATCH) {
		/* more changes at once than a poll reads (a large import): the
		 * cycle (which compares every card's content) restarts now and
		 * catches them all; go on from the newest row */
		int64_t last = 0;

		LOG_INFO("headend", "more than %u changes at once: regenerating the base", HEADEND_FEED_BATCH);
		carousel_rotate(t->car);
		t->resyncs++;
		if (sms_changes_last(t->store, &last) == 0 && last > t->last_change)
			t->last_change = last;
		t->gap_since_ms = 0;
	}
}

/* ---- pending sections -------------------------------------------------- */

static int emit_pending(void *ctx, const uint8_t *sec, size_t len)
{
	struct emm_thread *t = ctx;

	if (len > t->pend_cap - t->pend_len || t->pend_n == t->pp_cap)
		return CE_OVERFLOW;
	memcpy(t->pend + t->pend_len, sec, len);
	t->pl[t->pend_n] = len;
	t->pend_len += len;
	t->pend_n++;
	return 0;
}

static void pend_reset(struct emm_thread *t)
{
	t->pend_len = t->pend_n = t->pend_first = 0;
}

/* Pending-section room for a tick at kbps (the bucket plus one card's two
 * EMMs). */
static size_t pend_cap_for(uint32_t kbps)
{
	return (size_t)kbps * 1000u / 8u * CAROUSEL_DEFAULT_BURST_MS / 1000u + 4u * EMM_MAX_SECTION + 8192u;
}

/* Grow the pending buffers for kbps; only while nothing is pending. */
static int pend_grow(struct emm_thread *t, uint32_t kbps)
{
	size_t cap = pend_cap_for(kbps), pp_cap = cap / 16u;
	uint8_t *pend;
	const uint8_t **pp;
	size_t *pl;

	if (cap <= t->pend_cap || t->pend_n != 0)
		return 0;
	pend = malloc(cap);
	pp = calloc(pp_cap, sizeof(*pp));
	pl = calloc(pp_cap, sizeof(*pl));
	if (!pend || !pp || !pl) {
		free(pend);
		free(pp);
		free(pl);
		return CE_NOMEM;
	}
	secret_wipe(t->pend, t->pend_cap);
	free(t->pend);
	free(t->pp);
	free(t->pl);
	t->pend = pend;
	t->pend_cap = cap;
	t->pp = pp;
	t->pl = pl;
	t->pp_cap = pp_cap;
	return 0;
}

/* A new EMM bandwidth (SIGHUP): the carousel's budget, the buffers, and a
 * stream_BW_request to the MUX if connected (its grant then rules, as at
 * connect). */
static void emm_kbps_change(struct emm_thread *t, uint16_t kbps, uint16_t *granted)
{
	struct headend *h = t->h;
	int r;

	if ((r = pend_grow(t, kbps)) != 0) {
		LOG_WARN("headend", "EMM bandwidth %u kbit/s: %s; kept %u", (unsigned)kbps, err_str(r),
			(unsigned)h->cfg.emm_kbps);
		return;
	}
	h->cfg.emm_kbps = kbps;
	carousel_set_kbps(t->car, kbps);
	LOG_INFO("headend", "EMM bandwidth now %u kbit/s", (unsigned)kbps);
	if (t->emmg) {
		r = emmg_set_bandwidth(t->emmg, kbps);
		if (r != 0)
			LOG_WARN("headend", "EMMG: new bandwidth request: %s (asked again at the next connect)",
				err_str(r));
		*granted = 0; /* the loop applies the MUX's new grant */
	}
}

static void snapshot(struct emm_thread *t)
{
	struct headend *h = t->h;
	struct emmg_stats es;

	memset(&es, 0, sizeof(es));
	if (t->emmg)
		emmg_stats(t->emmg, &es);
	pthread_mutex_lock(&h->mu);
	carousel_stats(t->car, &h->st.car);
	sched_stats(t->sched, &h->st.sched);
	h->st.audit_changes = t->audit_changes;
	h->st.resyncs = t->resyncs;
	h->st.emmg_connected = t->emmg && emmg_connected(t->emmg);
	h->st.emmg_sections = es.sections_sent;
	h->st.emmg_kbps = t->emmg ? emmg_bandwidth(t->emmg) : 0;
	h->st.feed_last_id = t->last_change;
	h->st.feed_gaps_skipped = t->feed_gaps_skipped;
	h->st.sched_next_s = sched_next_event(t->sched);
	h->st.rotation_in_s = sched_seconds_to_rotation(t->sched);
	pthread_mutex_unlock(&h->mu);
}

/* The node's live status as JSON (GET /api/v1/status, docs/api-rest.md). */
static json_t *status_json(struct headend *h)
{
	struct headend_stats st;
	struct ecmg_stats es;
	json_t *o, *ecmg = json_null(), *emmg, *car, *sch;

	headend_stats(h, &st);
	if (h->ecmg) {
		ecmg_stats(h->ecmg, &es);
		ecmg = json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "listen", h->ecmg_addr, "port",
				 (int)headend_ecmg_port(h), "connections_open", (json_int_t)es.connections_open,
				 "connections", (json_int_t)es.connections, "channels_open", (json_int_t)es.channels_open,
				 "streams_open", (json_int_t)es.streams_open, "ecms", (json_int_t)es.ecms, "ecms_late",
				 (json_int_t)es.ecms_late, "errors_sent", (json_int_t)es.errors_sent, "errors_received",
				 (json_int_t)es.errors_received);
	}
	car = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I}", "emms", (json_int_t)st.car.emms,
			"records", (json_int_t)st.car.records, "group_sections", (json_int_t)st.car.group_sections,
			"changed_emms", (json_int_t)st.car.changed_emms, "ts_bytes", (json_int_t)st.car.ts_bytes,
			"queue", (json_int_t)st.car.queue, "cycles", (json_int_t)st.car.cycles, "last_cycle_ms",
			(json_int_t)st.car.last_cycle_ms, "last_cycle_cards", (json_int_t)st.car.last_cycle_cards,
			"cycle_emms_per_s", st.car.cycle_emms_per_s, "cards", (json_int_t)st.car.cards, "queue_dropped",
			(json_int_t)st.car.queue_dropped);
	emmg = json_pack("{s:s?,s:b,s:i,s:i,s:I,s:o}", "mux", h->mux_addr[0] ? h->mux_addr : NULL, "connected",
			 st.emmg_connected ? 1 : 0, "bandwidth_kbps", (int)st.emmg_kbps, "asked_kbps",
			 (int)h->cfg.emm_kbps, "sections_sent", (json_int_t)st.emmg_sections, "carousel", car);
	sch = json_pack("{s:I,s:I,s:I,s:I,s:I}", "pending", (json_int_t)st.sched.pending, "next_event_s",
			(json_int_t)(st.sched_next_s == SCHED_NO_EVENT ? 0 : st.sched_next_s), "next_rotation_in_s",
			(json_int_t)st.rotation_in_s, "rotations", (json_int_t)st.sched.rotations, "bytes",
			(json_int_t)st.sched.bytes);
	o = json_pack("{s:s,s:o,s:o,s:o,s:{s:I,s:I,s:I,s:I},s:I}", "node", h->node, "ecmg", ecmg, "emmg", emmg,
		      "scheduler", sch, "changes", "seen", (json_int_t)st.audit_changes, "resyncs",
		      (json_int_t)st.resyncs, "last_id", (json_int_t)st.feed_last_id, "gaps_skipped",
		      (json_int_t)st.feed_gaps_skipped, "http_requests", (json_int_t)st.http_requests);
	return o;
}

static void publish_status(struct emm_thread *t)
{
	json_t *o;
	char *txt = NULL;
	int r;

	snapshot(t);
	o = status_json(t->h);
	if (o)
		txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!txt)
		return;
	if ((r = sms_node_status_put(t->store, t->h->node, txt)) != 0)
		LOG_WARN("headend", "status to the store: %s", err_str(r));
	free(txt);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000u, (long)(ms % 1000u) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void emm_thread_free(struct emm_thread *t)
{
	if (t->emmg) {
		(void)emmg_close(t->emmg);
		emmg_free(t->emmg);
	}
	carousel_free(t->car);
	sched_free(t->sched);
	emm_issuer_free(t->is);
	sms_store_close(t->store);
	free(t->cards);
	free(t->subs);
	free(t->psubs);
	free(t->seqq);
	free(t->ssubs);
	if (t->pend)
		secret_wipe(t->pend, t->pend_cap);
	free(t->pend);
	free(t->pp);
	free(t->pl);
}

static int emm_thread_init(struct emm_thread *t, struct headend *h)
{
	struct sched_config sc = { h->cfg.clock, h->cfg.clock_ctx, keystore_epoch_seconds(h->cfg.ks) };
	struct carousel_config cc = { .epoch_seconds = keystore_epoch_seconds(h->cfg.ks), .kbps = h->cfg.emm_kbps,
		.min_cycle_ms = HEADEND_MIN_CYCLE_MS, .no_group = h->cfg.no_group_emms };
	struct carousel_source src = { t, src_page, src_get, src_save };
	int r;

	memset(t, 0, sizeof(*t));
	t->h = h;
	t->cards = calloc(CAROUSEL_DEFAULT_PAGE, sizeof(*t->cards));
	t->subs = calloc(SUBS_MAX, sizeof(*t->subs));
	t->ssubs = calloc(SUBS_MAX, sizeof(*t->ssubs));
	t->psubs = calloc(PAGE_SUBS, sizeof(*t->psubs));
	t->seqq = calloc(SEQ_BATCH, sizeof(*t->seqq));
	t->last_change = -1;
	/* a tick emits at most the bucket (burst) plus one card's two EMMs */
	t->pend_cap = pend_cap_for(cc.kbps);
	t->pp_cap = t->pend_cap / 16u;
	t->pend = malloc(t->pend_cap);
	t->pp = calloc(t->pp_cap, sizeof(*t->pp));
	t->pl = calloc(t->pp_cap, sizeof(*t->pl));
	if (!t->cards || !t->subs || !t->ssubs || !t->psubs || !t->seqq || !t->pend || !t->pp || !t->pl)
		return CE_NOMEM;
	if ((r = sms_store_open(h->db_uri, &t->store)) != 0)
		return r;
	if ((r = emm_issuer_new(h->cfg.ks, &t->is)) != 0)
		return r;
	if ((r = sched_new(&sc, &t->sched)) != 0)
		return r;
	if ((r = carousel_new(&cc, t->is, &src, &t->car)) != 0)
		return r;
	if (h->nvkeys)
		carousel_set_seal(t->car, src_seal, t);
	if ((r = seq_open(t)) != 0)
		return r;
	if (h->mux_addr[0]) {
		struct emmg_config ec;

		emmg_config_init(&ec);
		snprintf(ec.mux, sizeof(ec.mux), "%s", h->mux_addr);
		ec.client_id = h->cfg.client_id ? h->cfg.client_id
						 : ((uint32_t)h->ca_system_id << 16 | 1u);
		ec.bandwidth_kbps = (uint16_t)cc.kbps;
		ec.udp = h->cfg.emm_udp;
		if (h->cfg.data_id)
			ec.data_id = h->cfg.data_id;
		ec.timeout_ms = 2000;
		if ((r = emmg_new(&ec, &t->emmg)) != 0)
			return r;
	}
	return 0;
}

/* Send what is pending; false if the EMMG is down (caller waits). */
static bool send_pending(struct emm_thread *t, uint64_t now_ms)
{
	size_t sent = 0, off = 0, n;
	int r;

	if (!t->emmg) {
		pend_reset(t); /* no MUX: the carousel runs idle (counters only) */
		return true;
	}
	(void)now_ms;
	/* a MUX that is away: emmg_send reconnects with the documented
	 * back-off (1 s doubling to 30 s, docs/emmg.md), so a refusing MUX
	 * (e.g. channel_id_in_use from a second node) is not hammered */
	for (size_t i = 0; i < t->pend_first; i++)
		off += t->pl[i];
	n = t->pend_n - t->pend_first;
	for (size_t i = 0; i < n; i++) {
		t->pp[i] = t->pend + off;
		off += t->pl[t->pend_first + i];
	}
	r = emmg_send(t->emmg, t->pp, t->pl + t->pend_first, n, 200, &sent);
	t->pend_first += sent;
	if (t->pend_first >= t->pend_n)
		pend_reset(t);
	if (r == CE_CLOSED || r == CE_IO || r == CE_PROTO) {
		return false;
	}
	return true;
}

/* One entry in the SMS/CAS audit chain for what the CAS side does on its
 * own (start, key epoch rotation), as headend:<node>. A failure is logged,
 * never fatal: the carousel goes on. */
static void audit_cas(struct emm_thread *t, const char *action, uint32_t epoch, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void audit_cas(struct emm_thread *t, const char *action, uint32_t epoch, const char *fmt, ...)
{
	char what[400], who[SMS_WHO_MAX + 1], obj[32] = "";
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(who, sizeof(who), "headend:%.55s", t->h->node);
	if (epoch)
		snprintf(obj, sizeof(obj), "epoch:%" PRIu32, epoch);
	if ((r = sms_audit_add_ev(t->store, who, action, obj, what)) != 0)
		LOG_WARN("headend", "audit entry %s not written: %s", action, err_str(r));
}

/* A signed checkpoint of the audit chain's head (nothing when the log has
 * not moved since the last one), into the store and the file. */
static void audit_checkpoint(struct emm_thread *t)
{
	struct sms_audit_checkpoint cp;
	char who[SMS_WHO_MAX + 1];
	int r;

	snprintf(who, sizeof(who), "headend:%.55s", t->h->node);
	r = sms_audit_checkpoint(t->store, t->h->cfg.audit_key, who, false, &cp);
	if (r == CE_EXISTS || r == CE_NOT_FOUND)
		return;
	if (r != 0) {
		LOG_WARN("headend", "audit checkpoint: %s", err_str(r));
		return;
	}
	LOG_INFO("headend", "audit checkpoint at entry %" PRId64 " (key %s)", cp.seq, cp.key_id);
	if (t->h->cfg.audit_checkpoint_file && sms_audit_checkpoint_append(t->h->cfg.audit_checkpoint_file, &cp) != 0)
		LOG_WARN("headend", "audit checkpoint file %s: not written", t->h->cfg.audit_checkpoint_file);
}

static void *emm_main(void *arg)
{
	struct headend *h = arg;
	struct emm_thread t;
	uint64_t last_feed_ms = 0, last_status_ms = 0, last_publish_ms = 0, last_prune_ms = 0, last_chan_ms = 0,
		 last_cp_ms = 0, last_osd_ms = 0;
	uint16_t granted = 0;
	uint64_t due[256];
	int r;

	if ((r = emm_thread_init(&t, h)) != 0) {
		LOG_ERR("headend", "EMM thread (scheduler, carousel%s%s): %s", h->mux_addr[0] ? ", EMMG to MUX " : "",
			h->mux_addr, err_str(r));
		emm_thread_free(&t);
		atomic_store(&h->fatal, r);
		headend_stop(h);
		return NULL;
	}
	(void)sched_rotation_due(t.sched, NULL);
	audit_cas(&t, "cas.start", 0, "head-end node %s started its EMM carousel (epoch %" PRIu64 " s, %u kbit/s)",
		  h->node, (uint64_t)keystore_epoch_seconds(h->cfg.ks), (unsigned)h->cfg.emm_kbps);
	while (!atomic_load(&h->stop)) {
		uint64_t now = sched_now_ms(t.sched);
		uint32_t epoch;
		size_t nd;

		if (now - last_feed_ms >= HEADEND_FEED_POLL_MS || now < last_feed_ms) {
			feed_poll(&t, now);
			last_feed_ms = now;
		}
		if (t.osd_dirty || now - last_osd_ms >= HEADEND_CHANNELS_REFRESH_MS || now < last_osd_ms) {
			/* before the tick: the cards it sends carry the set in force */
			if ((r = osd_sched_load(h->osd, t.store, (int64_t)(now_wall_ms() / 1000u))) != 0)
				LOG_WARN("headend", "reading fingerprints and messages: %s (the last set stays)", err_str(r));
			t.osd_dirty = false;
			last_osd_ms = now;
		}
		if (now - last_prune_ms >= HEADEND_FEED_PRUNE_EVERY_MS || now < last_prune_ms) {
			int64_t removed = 0;

			if (last_prune_ms && sms_changes_prune(t.store, (int64_t)now - HEADEND_FEED_KEEP_MS, &removed) == 0 &&
			    removed)
				LOG_INFO("headend", "change feed: pruned %" PRId64 " rows older than a day", removed);
			last_prune_ms = now;
		}
		if (h->cfg.audit_key &&
		    (now - last_cp_ms >= (uint64_t)(h->cfg.audit_checkpoint_s ? h->cfg.audit_checkpoint_s : 600) * 1000u ||
		     now < last_cp_ms)) {
			audit_checkpoint(&t);
			last_cp_ms = now;
		}
		while ((nd = sched_due(t.sched, due, 256)) > 0)
			for (size_t i = 0; i < nd; i++)
				(void)carousel_mark_changed(t.car, due[i]);
		if (sched_rotation_due(t.sched, &epoch)) {
			LOG_INFO("headend", "key epoch %" PRIu32 " began: regenerating every card's EMM (keys of %" PRIu32
				" and %" PRIu32 ")", epoch, epoch, epoch + 1);
			carousel_rotate(t.car);
			audit_cas(&t, "cas.key_epoch", epoch, "key epoch %" PRIu32 " began: every card's EMM regenerated"
				  " (package keys of epochs %" PRIu32 " and %" PRIu32 ")", epoch, epoch, epoch + 1);
		}
		if (t.pend_n == 0) {
			unsigned want = atomic_exchange(&h->emm_kbps_req, 0u);

			if (want)
				emm_kbps_change(&t, (uint16_t)want, &granted);
		}
		if (t.emmg && emmg_connected(t.emmg) && emmg_bandwidth(t.emmg) != granted) {
			granted = emmg_bandwidth(t.emmg);
			carousel_set_kbps(t.car, granted ? granted : h->cfg.emm_kbps);
			LOG_INFO("headend", "EMMG: MUX granted %u kbit/s", (unsigned)granted);
		}
		if (t.pend_n == 0) {
			size_t emitted = 0;

			r = carousel_tick(t.car, now, emit_pending, &t, &emitted);
			if (r != 0 && r != CE_OVERFLOW)
				LOG_WARN("headend", "carousel: %s", err_str(r));
			if (!seq_end_tick(&t))
				pend_reset(&t); /* never send a seq that is not stored (and ours) */
		}
		if (t.pend_n > 0) {
			if (!send_pending(&t, now))
				sleep_ms(100);
		} else if (t.emmg && emmg_connected(t.emmg)) {
			if (emmg_poll(t.emmg, 20) != 0)
				LOG_INFO("headend", "EMMG: the MUX closed the connection; reconnecting");
		} else {
			sleep_ms(20);
		}
		if (now - last_status_ms >= 500 || now < last_status_ms) {
			snapshot(&t);
			if (h->cfg.status_every_s && now / 1000u / h->cfg.status_every_s !=
							     last_status_ms / 1000u / h->cfg.status_every_s) {
				struct carousel_stats cs;

				struct emmg_stats es;
				char em[96];

				carousel_stats(t.car, &cs);
				/* what the EMMG did, not only its state at this instant:
				 * a session may drop and come back between two lines */
				if (!t.emmg) {
					snprintf(em, sizeof(em), "no MUX (--mux off): EMMs not sent");
				} else {
					emmg_stats(t.emmg, &es);
					if (emmg_connected(t.emmg))
						snprintf(em, sizeof(em), "EMMG up, %" PRIu64 " sections sent",
							es.sections_sent);
					else
						snprintf(em, sizeof(em), "EMMG down (next try in up to %u s), %" PRIu64
							" sections sent", (unsigned)(es.retry_wait_ms / 1000u),
							es.sections_sent);
				}
				LOG_INFO("headend", "carousel: %" PRIu64 " EMMs (%" PRIu64 " changed), queue %zu, last cycle %"
					PRIu64 " cards in %" PRIu64 " ms (%.0f EMM/s), %s", cs.emms, cs.changed_emms,
					cs.queue, cs.last_cycle_cards, cs.last_cycle_ms, cs.cycle_emms_per_s, em);
			}
			last_status_ms = now;
		}
		if (now - last_publish_ms >= HEADEND_STATUS_PUBLISH_MS || now < last_publish_ms) {
			publish_status(&t);
			last_publish_ms = now;
		}
		if (now - last_chan_ms >= HEADEND_CHANNELS_REFRESH_MS || now < last_chan_ms) {
			if ((r = channels_load(h, t.store)) != 0)
				LOG_WARN("headend", "reading the channels table: %s (the ECMG keeps the last one)",
					err_str(r));
			last_chan_ms = now;
		}
	}
	snapshot(&t);
	emm_thread_free(&t);
	return NULL;
}

/* ---- ECMG thread ------------------------------------------------------- */

static void *ecmg_main(void *arg)
{
	struct headend *h = arg;

	int r = ecmg_run(h->ecmg);

	if (r != 0) {
		LOG_ERR("headend", "ECMG stopped on an error: %s", err_str(r));
		atomic_store(&h->fatal, r);
		atomic_store(&h->stop, 1); /* the loop sees it at its next tick */
	}
	return NULL;
}

/* ---- the loop ---------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct headend *h = arg;

	(void)fd;
	(void)what;
	if (h->http) {
		struct sms_http_stats hs;

		sms_http_get_stats(h->http, &hs);
		pthread_mutex_lock(&h->mu);
		h->st.http_requests = hs.requests;
		pthread_mutex_unlock(&h->mu);
	}
	if (atomic_load(&h->stop))
		event_base_loopbreak(h->base);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	headend_stop(arg);
}

static int first_start(struct headend *h, struct sms_store *s)
{
	char key[65];
	int64_t uid = 0;
	int r;

	if ((r = sms_user_add(s, "admin", "headend", &uid)) == CE_EXISTS)
		return 0; /* initialised before (e.g. castellan sms init --admin admin) */
	if (r != 0)
		return r;
	if ((r = sms_apikey_create(s, "admin", SMS_SCOPE_READ | SMS_SCOPE_WRITE | SMS_SCOPE_ADMIN, "headend", key)) !=
	    0)
		return r;
	if (h->admin_key_file[0]) {
		r = file_write_atomic(h->admin_key_file, key, 64, 0600);
		if (r == 0)
			fprintf(stderr, "headend: first start: admin API key written to %s\n", h->admin_key_file);
	} else {
		printf("headend: first start: admin API key (shown once, store it now): %s\n", key);
		fflush(stdout);
	}
	secret_wipe(key, sizeof(key));
	return r;
}

/* The web panel's dashboard counters (web.h status hook; HTTP thread). */
static int web_status(void *ctx, json_t *o)
{
	struct headend_stats st;

	headend_stats(ctx, &st);
	return json_object_set_new(o, "headend", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:i}", "ecms", (json_int_t)st.ecms,
							  "emms", (json_int_t)st.car.emms, "changed_emms",
							  (json_int_t)st.car.changed_emms, "emmg_connected",
							  (json_int_t)st.emmg_connected, "audit_changes",
							  (json_int_t)st.audit_changes, "cycles", (json_int_t)st.car.cycles,
							  "emmg_kbps", (int)st.emmg_kbps));
}

/* The panel on the HTTP port: users in the store (an older <data_dir>/web.db
 * is moved in at start). */
static int web_attach(struct headend *h)
{
	struct web_config wc = { 0 };
	char users[PATH_CAP + 16];
	int r;

	if (snprintf(users, sizeof(users), "%s/" WEB_USERS_LEGACY_FILE, h->data_dir) >= (int)sizeof(users))
		return CE_ARG;
	wc.root = h->cfg.web_root;
	wc.legacy_users_path = users;
	wc.admin_password = h->cfg.web_admin_password;
	wc.secure_cookies = h->cfg.web_secure_cookies;
	wc.kms_dir = h->cfg.kms_dir;
	wc.operator_nets = h->cfg.web_operator_nets;
	wc.kms_view = h->cfg.kms_view;
	if ((r = web_new(h->http, h->http_store, &wc, &h->web)) == 0) {
		web_set_status_fn(h->web, web_status, h);
		struct web_keys keys;

		headend_panel_keys(h->cfg.ks, &keys); /* web2: epochs view, card personalization */
		web_set_keys(h->web, &keys);
	}
	return r;
}

static int copy_opt(char *dst, size_t cap, const char *src, const char *def)
{
	const char *v = src ? src : def;
	int n = snprintf(dst, cap, "%s", v ? v : "");

	return n < 0 || (size_t)n >= cap ? CE_ARG : 0;
}

/* No address on the command line (NULL): the first enabled generator of
 * the store's definitions (GET/POST /api/v1/generators), else the default
 * (ECMG) or none (EMMG). "" on the command line still means "off". */
static int generators_from_store(struct headend *h, const struct headend_config *cfg)
{
	struct sms_generator g;
	int r;

	if (!cfg->ecmg_addr) {
		r = sms_generator_first(h->http_store, SMS_GEN_ECMG, &g);
		if (r == 0) {
			if (copy_opt(h->ecmg_addr, sizeof(h->ecmg_addr), g.address, NULL) != 0)
				return CE_ARG;
			if (g.ca_system_id != h->ca_system_id)
				LOG_WARN("headend", "generator %s: CA_system_id %04X, the keystore's is %04X (used)", g.name,
					 (unsigned)g.ca_system_id, (unsigned)h->ca_system_id);
			LOG_INFO("headend", "ECMG from the store: %s on %s", g.name, g.address);
		} else if (r != CE_NOT_FOUND) {
			return r;
		}
	}
	if (!cfg->mux_addr) {
		r = sms_generator_first(h->http_store, SMS_GEN_EMMG, &g);
		if (r == 0) {
			if (copy_opt(h->mux_addr, sizeof(h->mux_addr), g.address, NULL) != 0)
				return CE_ARG;
			if (!cfg->client_id && g.client_id)
				h->cfg.client_id = g.client_id;
			if (!cfg->emm_kbps && g.bandwidth_kbps)
				h->cfg.emm_kbps = (uint16_t)g.bandwidth_kbps;
			LOG_INFO("headend", "EMMG from the store: %s, MUX %s, %u kbit/s", g.name, g.address,
				 (unsigned)h->cfg.emm_kbps);
		} else if (r != CE_NOT_FOUND) {
			return r;
		}
	}
	return 0;
}

int headend_new(const struct headend_config *cfg, struct headend **out)
{
	struct headend *h;
	struct ecmg_config ec;
	int r = CE_ARG;

	*out = NULL;
	if (!cfg || !cfg->data_dir || !*cfg->data_dir || !cfg->ks)
		return CE_ARG;
	h = calloc(1, sizeof(*h));
	if (!h)
		return CE_NOMEM;
	pthread_mutex_init(&h->mu, NULL);
	h->cfg = *cfg;
	h->ca_system_id = keystore_ca_system_id(cfg->ks);
	if (!h->cfg.emm_kbps)
		h->cfg.emm_kbps = HEADEND_DEFAULT_EMM_KBPS;
	if (copy_opt(h->data_dir, sizeof(h->data_dir), cfg->data_dir, NULL) != 0 ||
	    copy_opt(h->http_addr, sizeof(h->http_addr), cfg->http_addr, HEADEND_DEFAULT_HTTP) != 0 ||
	    copy_opt(h->ecmg_addr, sizeof(h->ecmg_addr), cfg->ecmg_addr, HEADEND_DEFAULT_ECMG) != 0 ||
	    copy_opt(h->mux_addr, sizeof(h->mux_addr), cfg->mux_addr, "") != 0 ||
	    copy_opt(h->admin_key_file, sizeof(h->admin_key_file), cfg->admin_key_file, "") != 0)
		goto fail;
	if (snprintf(h->seq_path, sizeof(h->seq_path), "%s/emm-seq.db", h->data_dir) >= (int)sizeof(h->seq_path))
		goto fail;
	if (cfg->node_name && *cfg->node_name) {
		if (copy_opt(h->node, sizeof(h->node), cfg->node_name, NULL) != 0)
			goto fail;
	} else {
		char host[128] = "";

		if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
			snprintf(host, sizeof(host), "headend");
		snprintf(h->node, sizeof(h->node), "%.100s:%.150s", host, h->data_dir);
	}
	if (cfg->db_uri && *cfg->db_uri)
		r = copy_opt(h->db_uri, sizeof(h->db_uri), cfg->db_uri, NULL);
	else
		r = snprintf(h->db_uri, sizeof(h->db_uri), "sqlite:%s/sms.db", h->data_dir) >= (int)sizeof(h->db_uri)
			    ? CE_ARG : 0;
	if (r != 0)
		goto fail;
	if (mkdir(h->data_dir, 0700) != 0 && errno != EEXIST) {
		LOG_ERR("headend", "%s: cannot create: %s", h->data_dir, strerror(errno));
		r = CE_IO;
		goto fail;
	}
	h->base = sms_http_base_new(); /* epoll change list: see sms/http.h */
	if (!h->base) {
		r = CE_NOMEM;
		goto fail;
	}
	if ((r = sms_store_open(h->db_uri, &h->http_store)) != 0) {
		char shown[PATH_CAP];

		/* a postgresql:// URI may carry a password: never log it */
		sms_store_uri_redact(h->db_uri, shown, sizeof(shown));
		LOG_ERR("headend", "database %s: %s", shown, err_str(r));
		goto fail;
	}
	/* fingerprints and messages in force, before the ECMG starts */
	if ((r = osd_sched_new(&h->osd)) != 0 || (r = chan_usage_new(&h->usage)) != 0 ||
	    (r = osd_sched_load(h->osd, h->http_store, (int64_t)(now_wall_ms() / 1000u))) != 0) {
		LOG_ERR("headend", "reading fingerprints and messages: %s", err_str(r));
		goto fail;
	}
	if ((r = generators_from_store(h, cfg)) != 0)
		goto fail;
	if (h->mux_addr[0]) {
		/* a MUX address the EMMG cannot use fails the start, not the EMM
		 * thread later */
		struct emmg_config mc;
		struct emmg *probe = NULL;

		emmg_config_init(&mc);
		snprintf(mc.mux, sizeof(mc.mux), "%s", h->mux_addr);
		if ((r = emmg_new(&mc, &probe)) != 0) {
			LOG_ERR("headend", "--mux %s: not HOST:PORT ('off' for none): %s", h->mux_addr, err_str(r));
			goto fail;
		}
		emmg_free(probe);
	}
	if (h->http_addr[0] && (r = sms_http_new(h->base, h->http_store, h->http_addr, &h->http)) != 0) {
		LOG_ERR("headend", "HTTP on %s: %s", h->http_addr, err_str(r));
		goto fail;
	}
	if (h->http && cfg->metrics_allow && (r = sms_http_set_metrics_allow(h->http, cfg->metrics_allow)) != 0) {
		LOG_ERR("headend", "--metrics-allow '%s': addresses or CIDR prefixes, comma-separated (at most %d)",
			cfg->metrics_allow, SMS_METRICS_ALLOW_MAX);
		goto fail;
	}
	if (cfg->vendor_keys && *cfg->vendor_keys && (r = vkeys_open(h, cfg->vendor_keys)) != 0)
		goto fail;
	if (h->ecmg_addr[0]) {
		ecmg_config_init(&ec);
		ec.listen = h->ecmg_addr;
		ec.ks = cfg->ks;
		ec.allow = cfg->ecmg_allow;
		ec.ac_lookup = channels_ac; /* the channels table wins where it has the channel */
		ec.ac_ctx = h;
		ec.fp_lookup = osd_sched_fp_for_ecm; /* the fingerprint of the channel or its packages */
		ec.fp_ctx = h->osd;
		ec.usage_lookup = chan_usage_lookup; /* C.6: the channel's copy control */
		ec.usage_ctx = h->usage;
		if ((r = channels_load(h, h->http_store)) != 0) {
			LOG_ERR("headend", "reading the channels table: %s", err_str(r));
			goto fail;
		}
		if ((r = ecmg_new(&ec, &h->ecmg)) != 0 || (r = ecmg_start(h->ecmg)) != 0) {
			LOG_ERR("headend", "ECMG on %s: %s", h->ecmg_addr, err_str(r));
			goto fail;
		}
	}
	h->tick_ev = event_new(h->base, -1, EV_PERSIST, on_tick, h);
	if (!h->tick_ev) {
		r = CE_NOMEM;
		goto fail;
	}
	if (cfg->handle_signals) {
		h->sig_int = evsignal_new(h->base, SIGINT, on_signal, h);
		h->sig_term = evsignal_new(h->base, SIGTERM, on_signal, h);
		if (!h->sig_int || !h->sig_term || event_add(h->sig_int, NULL) != 0 ||
		    event_add(h->sig_term, NULL) != 0) {
			r = CE_IO;
			goto fail;
		}
	}
	/* Last, once every port is bound and every part set up: the one-time
	 * secrets (the panel's admin password, the admin API key) are created
	 * and shown only by a start that gets this far, so a failed first start
	 * (a port taken, a bad option) does not spend them. Nothing is served
	 * before headend_run, so no request meets a store without its admin. */
	if (h->http && cfg->web_root && (r = web_attach(h)) != 0) {
		LOG_ERR("headend", "web panel: %s", err_str(r));
		goto fail;
	}
	if ((r = first_start(h, h->http_store)) != 0) {
		LOG_ERR("headend", "initialising the database: %s", err_str(r));
		goto fail;
	}
	/* HTTP worker threads serve as soon as they start: after the panel's
	 * hooks are installed (web_attach is not safe against running workers).
	 * Only their store connections can fail here, after the secrets were
	 * shown: rare, and `castellan sms key add` / `web passwd` recover. */
	if (h->http && !cfg->search_on_loop) {
		struct sms_search_limits sl = { .workers = cfg->search_workers, .deadline_ms = cfg->search_deadline_ms };

		if ((r = sms_http_set_search(h->http, h->db_uri, &sl)) != 0) {
			LOG_ERR("headend", "search workers: %s", err_str(r));
			goto fail;
		}
	}
	if (h->http && cfg->http_threads > 1 && (r = sms_http_set_threads(h->http, h->db_uri, cfg->http_threads)) != 0) {
		LOG_ERR("headend", "HTTP threads (%u): %s", cfg->http_threads, err_str(r));
		goto fail;
	}
	*out = h;
	return 0;
fail:
	headend_free(h);
	return r;
}

int headend_run(struct headend *h)
{
	pthread_t emm_th, ecmg_th;
	bool ecmg_started = false;
	struct timeval tv = { 0, 100000 };
	int r = 0;

	if (event_add(h->tick_ev, &tv) != 0)
		return CE_IO;
	if (h->ecmg) {
		if (pthread_create(&ecmg_th, NULL, ecmg_main, h) != 0)
			return CE_IO;
		ecmg_started = true;
	}
	if (pthread_create(&emm_th, NULL, emm_main, h) != 0) {
		r = CE_IO;
		atomic_store(&h->stop, 1);
	} else {
		const char *colon = strrchr(h->http_addr, ':');
		int hostlen = colon ? (int)(colon - h->http_addr) : (int)strlen(h->http_addr);

		/* http_addr is ADDR:PORT as configured; the port printed is the
		 * one bound (port 0 picks one) */
		LOG_INFO("headend", "running: HTTP %.*s:%u, ECMG port %u, MUX %s", hostlen, h->http_addr,
			(unsigned)headend_http_port(h), (unsigned)headend_ecmg_port(h),
			h->mux_addr[0] ? h->mux_addr : "(none)");
		if (event_base_dispatch(h->base) < 0)
			r = CE_IO;
		atomic_store(&h->stop, 1);
		pthread_join(emm_th, NULL);
	}
	if (ecmg_started) {
		ecmg_stop(h->ecmg);
		pthread_join(ecmg_th, NULL);
	}
	/* a part that failed is a failed run (exit status non-zero: systemd's
	 * Restart=on-failure relies on it) */
	if (r == 0 && atomic_load(&h->fatal) != 0)
		r = atomic_load(&h->fatal);
	return r;
}

int headend_set_metrics_allow(struct headend *h, const char *list)
{
	if (!h)
		return CE_ARG;
	if (!h->http)
		return CE_STATE;
	return sms_http_set_metrics_allow(h->http, list);
}

int headend_set_emm_kbps(struct headend *h, uint16_t kbps)
{
	if (!h || kbps == 0)
		return CE_ARG;
	atomic_store(&h->emm_kbps_req, (unsigned)kbps);
	return 0;
}

void headend_stop(struct headend *h)
{
	atomic_store(&h->stop, 1);
	if (h->ecmg)
		ecmg_stop(h->ecmg);
}

uint16_t headend_http_port(const struct headend *h)
{
	return h->http ? sms_http_port(h->http) : 0;
}

uint16_t headend_ecmg_port(const struct headend *h)
{
	return h->ecmg ? ecmg_port(h->ecmg) : 0;
}

void headend_stats(struct headend *h, struct headend_stats *out)
{
	pthread_mutex_lock(&h->mu);
	*out = h->st;
	pthread_mutex_unlock(&h->mu);
	if (h->ecmg) {
		struct ecmg_stats es;

		ecmg_stats(h->ecmg, &es);
		out->ecms = es.ecms;
	}
}

void headend_free(struct headend *h)
{
	if (!h)
		return;
	if (h->tick_ev)
		event_free(h->tick_ev);
	if (h->sig_int)
		event_free(h->sig_int);
	if (h->sig_term)
		event_free(h->sig_term);
	web_free(h->web);
	sms_http_free(h->http);
	ecmg_free(h->ecmg);
	osd_sched_free(h->osd); /* after the ECMG (its thread reads it) */
	chan_usage_free(h->usage);
	sms_store_close(h->http_store);
	if (h->vkeys) {
		vkeys_free(h->vkeys, h->nvkeys);
	}
	if (h->base)
		event_base_free(h->base);
	pthread_mutex_destroy(&h->mu);
	secret_wipe(h->db_uri, sizeof(h->db_uri)); /* may hold a PostgreSQL password */
	free(h);
}
