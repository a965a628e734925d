/*
 * carousel.c - the EMM carousel (carousel.h): per-card EMM state in an
 * open-addressing table, the changed-cards queue, the paged cycle and the
 * token bucket.
 */
#include <stdlib.h>
#include <string.h>
#include "headend/carousel.h"
#include "lib/log.h"
#include "lib/util.h"
#include "ts/ts.h"

#define F_BLOCKED 0x1u
#define F_QUEUED 0x2u

struct entry {
	uint64_t serial;   /* 0 = empty slot */
	uint64_t digest;   /* of the content numbered by seq */
	uint32_t seq;
	uint32_t flags;
};

struct carousel {
	struct carousel_config cfg;
	struct emm_issuer *is;
	carousel_seal_fn seal;       /* NULL: no re-sealing */
	void *seal_ctx;
	struct carousel_source src;
	/* card table */
	struct entry *tab;
	size_t tab_cap, tab_n;
	/* changed queue (ring) */
	uint64_t *q;
	size_t q_cap, q_head, q_n;
	/* cycle */
	struct carousel_card *pagebuf;
	size_t page_n, page_pos;
	uint64_t after;
	uint64_t fetch_after;      /* the `after` of the current page */
	uint64_t cycle_start_ms, cycle_cards, cycle_emms_start;
	bool cycle_started;
	uint64_t next_cycle_ms;    /* min_cycle_ms: no new cycle before this */
	/* bucket */
	int64_t tokens;            /* TS bytes; may go below 0 by one EMM */
	uint64_t last_ms;
	bool have_last;
	struct carousel_stats st;
	uint8_t buf[EMM_MAX_SECTION];
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xFF;
		h *= 0x100000001B3ull;
	}
	return h;
}

static size_t slot_of(uint64_t serial, size_t cap)
{
	uint64_t h = serial * 0x9E3779B97F4A7C15ull;

	return (size_t)(h >> 17) & (cap - 1);
}

static struct entry *lookup(const struct carousel *c, uint64_t serial)
{
	if (!c->tab_cap)
		return NULL;
	for (size_t i = slot_of(serial, c->tab_cap);; i = (i + 1) & (c->tab_cap - 1)) {
		if (c->tab[i].serial == serial)
			return &c->tab[i];
		if (c->tab[i].serial == 0)
			return NULL;
	}
}

static int grow(struct carousel *c)
{
	size_t ncap = c->tab_cap ? c->tab_cap * 2 : 1024;
	struct entry *nt = calloc(ncap, sizeof(*nt));

	if (!nt)
		return CE_NOMEM;
	for (size_t k = 0; k < c->tab_cap; k++) {
		if (!c->tab[k].serial)
			continue;
		size_t i = slot_of(c->tab[k].serial, ncap);

		while (nt[i].serial)
			i = (i + 1) & (ncap - 1);
		nt[i] = c->tab[k];
	}
	free(c->tab);
	c->tab = nt;
	c->tab_cap = ncap;
	return 0;
}

static int upsert(struct carousel *c, uint64_t serial, struct entry **out)
{
	struct entry *e = lookup(c, serial);
	size_t i;
	int r;

	*out = NULL;
	if (serial == 0)
		return CE_ARG;
	if (e) {
		*out = e;
		return 0;
	}
	if ((c->tab_n + 1) * 10 > c->tab_cap * 7 && (r = grow(c)) != 0)
		return r;
	for (i = slot_of(serial, c->tab_cap); c->tab[i].serial; i = (i + 1) & (c->tab_cap - 1))
		;
	c->tab[i] = (struct entry){ .serial = serial };
	c->tab_n++;
	*out = &c->tab[i];
	return 0;
}

int carousel_new(const struct carousel_config *cfg, struct emm_issuer *is, const struct carousel_source *src,
	struct carousel **out)
{
	struct carousel *c;

	*out = NULL;
	if (!cfg || !is || !src || !src->page || !src->get || cfg->epoch_seconds == 0 ||
	    cfg->page > CAROUSEL_MAX_PAGE)
		return CE_ARG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return CE_NOMEM;
	c->cfg = *cfg;
	if (!c->cfg.page)
		c->cfg.page = CAROUSEL_DEFAULT_PAGE;
	if (!c->cfg.max_queue)
		c->cfg.max_queue = CAROUSEL_DEFAULT_QUEUE;
	if (!c->cfg.burst_ms)
		c->cfg.burst_ms = CAROUSEL_DEFAULT_BURST_MS;
	c->is = is;
	c->src = *src;
	c->pagebuf = calloc(c->cfg.page, sizeof(*c->pagebuf));
	if (!c->pagebuf) {
		free(c);
		return CE_NOMEM;
	}
	*out = c;
	return 0;
}

void carousel_free(struct carousel *c)
{
	if (!c)
		return;
	free(c->tab);
	free(c->q);
	free(c->pagebuf);
	secret_wipe(c->buf, sizeof(c->buf));
	free(c);
}

int carousel_restore(struct carousel *c, uint64_t serial, uint32_t seq, uint64_t digest, bool blocked)
{
	struct entry *e;
	int r = upsert(c, serial, &e);

	if (r != 0)
		return r;
	e->seq = seq;
	e->digest = digest;
	e->flags = (e->flags & ~F_BLOCKED) | (blocked ? F_BLOCKED : 0);
	return 0;
}

int carousel_mark_changed(struct carousel *c, uint64_t serial)
{
	struct entry *e;
	int r;

	if ((r = upsert(c, serial, &e)) != 0)
		return r;
	if (e->flags & F_QUEUED)
		return 0;
	if (c->q_n == c->q_cap) {
		size_t ncap = c->q_cap ? c->q_cap * 2 : 256;
		uint64_t *nq;

		if (ncap > c->cfg.max_queue)
			ncap = c->cfg.max_queue;
		if (c->q_n >= ncap) {
			c->st.queue_dropped++;
			return CE_LIMIT;
		}
		nq = malloc(ncap * sizeof(*nq));
		if (!nq)
			return CE_NOMEM;
		for (size_t k = 0; k < c->q_n; k++)
			nq[k] = c->q[(c->q_head + k) % c->q_cap];
		free(c->q);
		c->q = nq;
		c->q_cap = ncap;
		c->q_head = 0;
	}
	c->q[(c->q_head + c->q_n) % c->q_cap] = serial;
	c->q_n++;
	e->flags |= F_QUEUED;
	return 0;
}

void carousel_rotate(struct carousel *c)
{
	c->after = 0;
	c->page_n = c->page_pos = 0;
	c->cycle_started = false;
	c->next_cycle_ms = 0;
}

size_t carousel_ts_cost(size_t len)
{
	return (len + 1 + TS_PACKET_BYTES - 4 - 1) / (TS_PACKET_BYTES - 4) * TS_PACKET_BYTES;
}

static uint64_t digest_of(const struct carousel *c, const struct carousel_card *k, uint64_t now_ms)
{
	uint64_t h = 0xCBF29CE484222325ull;

	h = mix(h, (uint64_t)k->state);
	if (k->seal_key && c->seal)
		h = mix(h, 0x56454E444F52ull); /* sealed another way: new content */
	if (k->state != CAROUSEL_ACTIVE)
		return h;
	h = mix(h, k->grant.packages);
	h = mix(h, k->grant.start_s);
	h = mix(h, k->grant.finish_s);
	for (size_t i = 0; i < k->grant.next && i < EMM_MAX_EXT_PACKAGES; i++)
		h = mix(h, k->grant.ext[i]);
	/* the keys carried depend on the epoch: a new epoch is new content */
	if (k->grant.packages)
		h = mix(h, now_ms / 1000u / c->cfg.epoch_seconds);
	return h;
}

/* Build and emit the EMM(s) of one card. */
static int send_card(struct carousel *c, const struct carousel_card *k, uint64_t now_ms, bool changed,
	carousel_emit_fn emit, void *ctx, int *emit_r)
{
	struct entry *e;
	uint64_t d = digest_of(c, k, now_ms);
	bool active = k->state == CAROUSEL_ACTIVE;
	bool unblock = false;
	size_t len = 0;
	int r;

	if ((r = upsert(c, k->serial, &e)) != 0)
		return r;
	if (e->seq == 0 || e->digest != d) {
		unblock = active && (e->flags & F_BLOCKED);
		if (e->seq > UINT32_MAX - 2)
			return CE_RANGE; /* the card can take no more EMMs */
		uint32_t nseq = e->seq + (unblock ? 2 : 1);

		if (c->src.save) {
			uint32_t got = nseq;

			if ((r = c->src.save(c->src.ctx, k->serial, unblock ? 2u : 1u, d, !active, &got)) != 0)
				return r;
			if (got < nseq)
				return CE_INTERNAL; /* a source must never hand a lower number back */
			nseq = got;
		}
		e->seq = nseq;
		e->digest = d;
		e->flags = (e->flags & ~F_BLOCKED) | (active ? 0 : F_BLOCKED);
		c->st.seq_bumps++;
	}
	if (unblock) {
		r = emm_build_command(c->is, k->serial, e->seq - 1, EMM_CMD_UNBLOCK, 0, now_ms, c->buf,
			sizeof(c->buf), &len);
		if (r == 0 && k->seal_key && c->seal)
			r = c->seal(c->seal_ctx, k, c->buf, sizeof(c->buf), &len);
		if (r != 0)
			return r;
		if ((*emit_r = emit(ctx, c->buf, len)) != 0)
			return 0;
		c->tokens -= (int64_t)carousel_ts_cost(len);
		c->st.emms++;
		c->st.ts_bytes += carousel_ts_cost(len);
	}
	if (active) {
		r = emm_build_unique(c->is, k->serial, e->seq, &k->grant, now_ms, c->buf, sizeof(c->buf), &len);
	} else {
		struct emm_content ct;

		memset(&ct, 0, sizeof(ct));
		ct.has_grant = true;
		ct.grant.start_s = ct.grant.finish_s = now_ms / 1000u;
		ct.cmds = EMM_CMD_BLOCK;
		r = emm_build(c->is, k->serial, e->seq, now_ms, &ct, c->buf, sizeof(c->buf), &len);
	}
	if (r == 0 && k->seal_key && c->seal)
		r = c->seal(c->seal_ctx, k, c->buf, sizeof(c->buf), &len);
	if (r != 0)
		return r;
	if ((*emit_r = emit(ctx, c->buf, len)) != 0)
		return 0;
	c->tokens -= (int64_t)carousel_ts_cost(len);
	c->st.emms++;
	c->st.ts_bytes += carousel_ts_cost(len);
	if (changed)
		c->st.changed_emms++;
	return 0;
}

static void refill(struct carousel *c, uint64_t now_ms)
{
	int64_t cap;

	if (c->cfg.kbps == 0) {
		c->tokens = INT64_MAX / 4;
		return;
	}
	cap = (int64_t)c->cfg.kbps * 1000 / 8 * c->cfg.burst_ms / 1000;
	if (cap < EMM_MAX_SECTION + 188)
		cap = EMM_MAX_SECTION + 188;
	if (!c->have_last) {
		c->have_last = true;
		c->last_ms = now_ms;
		c->tokens = cap;
		return;
	}
	if (now_ms > c->last_ms) {
		c->tokens += (int64_t)((now_ms - c->last_ms) * c->cfg.kbps / 8);
		c->last_ms = now_ms;
	}
	if (c->tokens > cap)
		c->tokens = cap;
}

static void cycle_begin(struct carousel *c, uint64_t now_ms)
{
	c->cycle_started = true;
	c->cycle_start_ms = now_ms;
	c->cycle_cards = 0;
	c->cycle_emms_start = c->st.emms;
	c->after = 0;
}

static int fetch(struct carousel *c, uint64_t now_ms)
{
	int r;

	c->page_pos = c->page_n = 0;
	c->fetch_after = c->after;
	r = c->src.page(c->src.ctx, c->after, (int64_t)(now_ms / 1000u), c->pagebuf, c->cfg.page, &c->page_n);
	if (r != 0 || c->page_n > c->cfg.page) {
		c->st.errors++;
		c->page_n = 0;
		return r ? r : CE_INTERNAL;
	}
	return 0;
}

/* The next card of the cycle into *k; false when none now (source error,
 * or an empty base). */
static bool next_cycle_card(struct carousel *c, uint64_t now_ms, struct carousel_card *k)
{
	if (c->page_pos >= c->page_n) {
		if (!c->cycle_started) {
			if (now_ms < c->next_cycle_ms)
				return false;
			cycle_begin(c, now_ms);
		}
		if (fetch(c, now_ms) != 0)
			return false;
		if (c->page_n == 0) {
			/* end of the base: the cycle is complete */
			uint64_t cards = c->cycle_cards, ms = now_ms - c->cycle_start_ms;

			if (cards > 0) {
				c->st.cycles++;
				c->st.last_cycle_ms = ms;
				c->st.last_cycle_cards = cards;
				c->st.cycle_emms_per_s =
					ms ? (double)(c->st.emms - c->cycle_emms_start) * 1000.0 / (double)ms : 0.0;
			}
			c->cycle_started = false;
			c->after = 0;
			if (cards == 0)
				return false; /* empty base */
			if (c->cfg.min_cycle_ms && ms < c->cfg.min_cycle_ms) {
				c->next_cycle_ms = c->cycle_start_ms + c->cfg.min_cycle_ms;
				return false;
			}
			cycle_begin(c, now_ms);
			if (fetch(c, now_ms) != 0 || c->page_n == 0)
				return false;
		}
	}
	*k = c->pagebuf[c->page_pos++];
	c->after = k->serial;
	c->cycle_cards++;
	return true;
}

/* Give back the card next_cycle_card returned (its EMM was not taken). */
static void cycle_unget(struct carousel *c)
{
	if (c->page_pos == 0)
		return;
	c->page_pos--;
	c->after = c->page_pos ? c->pagebuf[c->page_pos - 1].serial : c->fetch_after;
	if (c->cycle_cards)
		c->cycle_cards--;
}

int carousel_tick(struct carousel *c, uint64_t now_ms, carousel_emit_fn emit, void *ctx, size_t *emitted)
{
	size_t n0 = c->st.emms;
	int r = 0;

	refill(c, now_ms);
	for (size_t i = 0; i < CAROUSEL_MAX_PER_TICK && c->tokens > 0; i++) {
		struct carousel_card k;
		bool changed = c->q_n > 0;

		if (changed) {
			uint64_t serial = c->q[c->q_head];
			struct entry *e = lookup(c, serial);

			c->q_head = (c->q_head + 1) % c->q_cap;
			c->q_n--;
			if (e)
				e->flags &= ~F_QUEUED;
			if ((r = c->src.get(c->src.ctx, serial, (int64_t)(now_ms / 1000u), &k)) != 0) {
				c->st.errors++;
				r = 0;
				continue;
			}
			k.serial = serial;
		} else if (c->cfg.no_cycle || !next_cycle_card(c, now_ms, &k)) {
			break;
		}
		int er = 0;

		r = send_card(c, &k, now_ms, changed, emit, ctx, &er);
		if (r == CE_IO) /* persisting the seq failed: stop, try again next tick */
			break;
		if (r != 0) {
			LOG_WARN("carousel", "card %llu skipped: %s", (unsigned long long)k.serial, err_str(r));
			c->st.errors++;
			r = 0;
			continue;
		}
		if ((r = er) != 0) {
			if (changed)
				(void)carousel_mark_changed(c, k.serial);
			else
				cycle_unget(c);
			break;
		}
	}
	if (emitted)
		*emitted = c->st.emms - n0;
	return r;
}

void carousel_set_seal(struct carousel *c, carousel_seal_fn fn, void *ctx)
{
	c->seal = fn;
	c->seal_ctx = ctx;
}

void carousel_set_kbps(struct carousel *c, uint32_t kbps)
{
	c->cfg.kbps = kbps;
	c->have_last = false;
}

uint32_t carousel_seq(const struct carousel *c, uint64_t serial)
{
	const struct entry *e = lookup(c, serial);

	return e ? e->seq : 0;
}

void carousel_stats(const struct carousel *c, struct carousel_stats *out)
{
	*out = c->st;
	out->queue = c->q_n;
	out->cards = c->tab_n;
	out->cycle_pos = c->after;
}
