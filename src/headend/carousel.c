/*
 * carousel.c - the EMM carousel (carousel.h): per-card EMM state in an
 * open-addressing table, the changed-cards queue, the paged cycle, the
 * token bucket, and the batch of one tick's unique EMMs packed into group
 * sections (emm_group_pack).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "headend/carousel.h"
#include "crypto/kdf.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "ts/ts.h"

#define F_BLOCKED 0x1u
#define F_QUEUED 0x2u
#define F_INBATCH 0x4u  /* has a record in the batch being filled */
#define F_PAIRED 0x8u   /* last numbered with a PAIR record */
#define F_UNPAIR 0x10u  /* was paired, no longer: its EMMs carry UNPAIR */

/* Unique EMM bytes a group record does not repeat (table_id, length,
 * version, CA_system_id, timestamp: said once in the group header). */
#define UNIQUE_MINUS_RECORD (EMM_UNIQUE_OVERHEAD - EMM_RECORD_OVERHEAD)

/* The unique EMMs of one tick waiting to go out as one section: all of
 * changed cards or all of cycle cards, one record per card, one page. */
struct batch {
	size_t n;                     /* cards (records) */
	bool changed;                 /* from the changed queue (else the cycle) */
	size_t group_len;             /* the group section they would make */
	size_t used;                  /* bytes of buf in use */
	uint64_t serial[EMM_MAX_GROUP_CARDS];
	size_t off[EMM_MAX_GROUP_CARDS], len[EMM_MAX_GROUP_CARDS];
	/* the uniques: their records fit in one section, plus the bytes a
	 * record does not repeat */
	uint8_t buf[EMM_MAX_SECTION + EMM_MAX_GROUP_CARDS * UNIQUE_MINUS_RECORD];
};

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
	uint64_t cycle_start_ms, cycle_cards, cycle_records_start;
	bool cycle_started;
	uint64_t next_cycle_ms;    /* min_cycle_ms: no new cycle before this */
	/* bucket */
	int64_t tokens;            /* TS bytes; may go below 0 by one EMM */
	uint64_t last_ms;
	bool have_last;
	struct carousel_stats st;
	size_t max_batch;          /* cards in one section: 1 (no_group) or EMM_MAX_GROUP_CARDS */
	struct batch b;
	uint8_t buf[EMM_MAX_SECTION];  /* the card EMM being built */
	uint8_t gbuf[EMM_MAX_SECTION]; /* the group section being packed */
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
	c->max_batch = c->cfg.no_group ? 1 : EMM_MAX_GROUP_CARDS;
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
	secret_wipe(c->gbuf, sizeof(c->gbuf));
	secret_wipe(c->b.buf, sizeof(c->b.buf));
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

/* Room for one more queued card. 0, CE_LIMIT (counted), CE_NOMEM. */
static int q_reserve(struct carousel *c)
{
	size_t ncap = c->q_cap ? c->q_cap * 2 : 256;
	uint64_t *nq;

	if (c->q_n < c->q_cap)
		return 0;
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
	return 0;
}

/* A changed card's view in the unsent rest of the cycle's page was read
 * before the change: drop it, or the cycle would send (and number) the old
 * content after the changed EMM. The queue sends the card with a fresh
 * view. The page is ascending by serial. */
static void page_drop(struct carousel *c, uint64_t serial)
{
	size_t lo = c->page_pos, hi = c->page_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->pagebuf[mid].serial < serial)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->page_n && c->pagebuf[lo].serial == serial) {
		memmove(&c->pagebuf[lo], &c->pagebuf[lo + 1], (c->page_n - lo - 1) * sizeof(c->pagebuf[0]));
		c->page_n--;
	}
}

int carousel_mark_changed(struct carousel *c, uint64_t serial)
{
	struct entry *e;
	int r;

	page_drop(c, serial);
	if ((r = upsert(c, serial, &e)) != 0)
		return r;
	if (e->flags & F_QUEUED)
		return 0;
	if ((r = q_reserve(c)) != 0)
		return r;
	c->q[(c->q_head + c->q_n) % c->q_cap] = serial;
	c->q_n++;
	e->flags |= F_QUEUED;
	return 0;
}

/* A changed card whose EMM did not go out: back to the head of the queue
 * (no-op if it was queued again meanwhile). */
static void q_push_front(struct carousel *c, uint64_t serial)
{
	struct entry *e = lookup(c, serial);

	if (!e || (e->flags & F_QUEUED) || q_reserve(c) != 0)
		return;
	c->q_head = (c->q_head + c->q_cap - 1) % c->q_cap;
	c->q[c->q_head] = serial;
	c->q_n++;
	e->flags |= F_QUEUED;
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
	if (k->pair != CAROUSEL_PAIR_OFF) { /* (unpaired cards keep their old digests) */
		h = mix(h, 0x50414952ull + (uint64_t)k->pair);
		h = mix(h, k->pair_stb_id);
	}
	h = mix(h, k->grant.packages);
	h = mix(h, k->grant.start_s);
	h = mix(h, k->grant.finish_s);
	for (size_t i = 0; i < k->grant.next && i < EMM_MAX_EXT_PACKAGES; i++)
		h = mix(h, k->grant.ext[i]);
	/* the keys carried depend on the epoch: a new epoch is new content */
	if (k->grant.packages)
		h = mix(h, now_ms / 1000u / c->cfg.epoch_seconds);
	/* OSD items (issue 13): their ids, in order; an id is never reused */
	for (size_t i = 0; i < k->nosd && i < EMM_MAX_OSD; i++)
		h = mix(h, ((uint64_t)k->osd[i]->kind << 32) | (k->osd[i]->kind == OSD_KIND_FINGERPRINT ?
			k->osd[i]->u.fp.fp_id : k->osd[i]->u.msg.msg_id));
	return h;
}

/* Give card k a new seq if its content changed (persisted by
 * source->save before use). *unblock: an UNBLOCK EMM must go first, at
 * seq - 1. */
static int number_card(struct carousel *c, const struct carousel_card *k, struct entry *e, uint64_t d, bool *unblock)
{
	bool active = k->state == CAROUSEL_ACTIVE;
	uint32_t nseq;
	int r;

	*unblock = false;
	if (e->seq != 0 && e->digest == d)
		return 0;
	*unblock = active && (e->flags & F_BLOCKED);
	if (e->seq > UINT32_MAX - 2)
		return CE_RANGE; /* the card can take no more EMMs */
	nseq = e->seq + (*unblock ? 2 : 1);
	if (c->src.save) {
		uint32_t got = nseq;

		if ((r = c->src.save(c->src.ctx, k->serial, *unblock ? 2u : 1u, d, !active, active ? &k->grant : NULL,
				     &got)) != 0)
			return r;
		if (got < nseq)
			return CE_INTERNAL; /* a source must never hand a lower number back */
		nseq = got;
	}
	e->seq = nseq;
	e->digest = d;
	e->flags = (e->flags & ~F_BLOCKED) | (active ? 0 : F_BLOCKED);
	if (active && k->pair == CAROUSEL_PAIR_CHIP)
		e->flags = (e->flags & ~F_UNPAIR) | F_PAIRED;
	else if (active && k->pair == CAROUSEL_PAIR_OFF && (e->flags & F_PAIRED))
		e->flags = (e->flags & ~F_PAIRED) | F_UNPAIR;
	c->st.seq_bumps++;
	return 0;
}

/* Card k's EMM at seq into c->buf (sealed if the card is): its grant (with
 * its pairing, or UNPAIR when unpair), or the revocation with BLOCK. */
static int build_card(struct carousel *c, const struct carousel_card *k, uint32_t seq, uint64_t now_ms, bool unpair,
	size_t *len)
{
	int r;

	if (k->state == CAROUSEL_ACTIVE && k->pair == CAROUSEL_PAIR_OFF && !unpair && !k->nosd) {
		r = emm_build_unique(c->is, k->serial, seq, &k->grant, now_ms, c->buf, sizeof(c->buf), len);
	} else if (k->state == CAROUSEL_ACTIVE) {
		struct emm_extra x;
		size_t sent = 0;

		memset(&x, 0, sizeof(x));
		if (k->pair == CAROUSEL_PAIR_CHIP) {
			x.cmds = EMM_CMD_PAIR;
			x.pair_stb_id = k->pair_stb_id;
			x.has_pair_key = true;
			if (!k->pair_kv || k->pair_stb_id == 0)
				return CE_ARG;
			if ((r = kms_pairing_key(k->pair_kv, k->serial, x.pair_key)) != 0)
				return r;
		} else if (k->pair == CAROUSEL_PAIR_NO_BOX) {
			x.no_keys = true; /* pairing required, no box: no key, no CW */
		} else if (unpair) {
			x.cmds = EMM_CMD_UNPAIR;
		}
		if (k->nosd) { /* with its OSD items (issue 13) */
			r = emm_build_unique_osd(c->is, k->serial, seq, &k->grant, &x, k->osd,
				k->nosd < EMM_MAX_OSD ? k->nosd : EMM_MAX_OSD, &sent, now_ms, c->buf, sizeof(c->buf), len);
			if (r == 0 && sent < k->nosd)
				c->st.osd_left_out += k->nosd - sent;
		} else {
			r = emm_build_unique_ex(c->is, k->serial, seq, &k->grant, &x, now_ms, c->buf, sizeof(c->buf), len);
		}
		OPENSSL_cleanse(&x, sizeof(x));
	} else {
		struct emm_content ct;

		memset(&ct, 0, sizeof(ct));
		ct.has_grant = true;
		ct.grant.start_s = ct.grant.finish_s = now_ms / 1000u;
		ct.cmds = EMM_CMD_BLOCK;
		r = emm_build(c->is, k->serial, seq, now_ms, &ct, c->buf, sizeof(c->buf), len);
	}
	if (r == 0 && k->seal_key && c->seal)
		r = c->seal(c->seal_ctx, k, c->buf, sizeof(c->buf), len);
	return r;
}

/* Hand one section to emit and count it (records: card EMMs in it). */
static int emit_section(struct carousel *c, const uint8_t *sec, size_t len, size_t records, bool changed,
	carousel_emit_fn emit, void *ctx)
{
	size_t cost = carousel_ts_cost(len);
	int r;

	if ((r = emit(ctx, sec, len)) != 0)
		return r;
	c->tokens -= (int64_t)cost;
	c->st.emms++;
	c->st.ts_bytes += cost;
	c->st.records += records;
	if (sec[0] == EMM_TABLE_GROUP)
		c->st.group_sections++;
	if (changed)
		c->st.changed_emms += records;
	return 0;
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

/* A card whose EMM did not go out comes again: a changed one at the head
 * of the queue, a cycle one back to the page. Cards are given back in the
 * reverse of the order they were taken. */
static void give_back(struct carousel *c, bool changed, uint64_t serial)
{
	if (changed)
		q_push_front(c, serial);
	else
		cycle_unget(c);
}

/* The card that needs UNBLOCK first (numbered with seq - 1 and seq): two
 * unique sections, the batch being empty. A refused UNBLOCK leaves the card
 * blocked and unnumbered, so its next turn starts over with UNBLOCK. */
static int send_unblock(struct carousel *c, const struct carousel_card *k, struct entry *e, uint64_t now_ms,
	bool changed, carousel_emit_fn emit, void *ctx, int *emit_r)
{
	size_t len = 0;
	int r;

	r = emm_build_command(c->is, k->serial, e->seq - 1, EMM_CMD_UNBLOCK, 0, now_ms, c->buf, sizeof(c->buf), &len);
	if (r == 0 && k->seal_key && c->seal)
		r = c->seal(c->seal_ctx, k, c->buf, sizeof(c->buf), &len);
	if (r != 0)
		return r;
	if ((*emit_r = emit_section(c, c->buf, len, 1, changed, emit, ctx)) != 0) {
		e->flags |= F_BLOCKED;
		e->digest = 0;
		return 0;
	}
	if ((r = build_card(c, k, e->seq, now_ms, (e->flags & F_UNPAIR) != 0, &len)) != 0)
		return r;
	*emit_r = emit_section(c, c->buf, len, 1, changed, emit, ctx);
	return 0;
}

/* ---- the batch: one section's worth of one tick's unique EMMs ---------- */

static void batch_clear(struct carousel *c)
{
	struct batch *b = &c->b;

	for (size_t i = 0; i < b->n; i++) {
		struct entry *e = lookup(c, b->serial[i]);

		if (e)
			e->flags &= ~F_INBATCH;
	}
	b->n = b->used = 0;
	b->group_len = EMM_GROUP_HEADER;
}

/* TS bytes the batch will take when it goes out. */
static size_t batch_cost(const struct carousel *c)
{
	const struct batch *b = &c->b;

	if (b->n == 0)
		return 0;
	return carousel_ts_cost(b->n == 1 ? b->len[0] : b->group_len);
}

static bool batch_fits(const struct carousel *c, size_t len)
{
	const struct batch *b = &c->b;

	return b->n < c->max_batch && len > UNIQUE_MINUS_RECORD && len <= sizeof(b->buf) - b->used &&
	       b->group_len + (len - UNIQUE_MINUS_RECORD) <= EMM_MAX_SECTION;
}

static void batch_add(struct carousel *c, struct entry *e, bool changed, const uint8_t *sec, size_t len)
{
	struct batch *b = &c->b;

	if (b->n == 0)
		b->changed = changed;
	memcpy(b->buf + b->used, sec, len);
	b->serial[b->n] = e->serial;
	b->off[b->n] = b->used;
	b->len[b->n] = len;
	b->used += len;
	b->group_len += len - UNIQUE_MINUS_RECORD;
	b->n++;
	e->flags |= F_INBATCH;
}

/*
 * Emit the batch: one card as its unique section, more as one group
 * section. If emit refuses it, the batch's cards go back (and the card
 * taken after them, held != 0, first) and its value is returned. The batch
 * is empty afterwards.
 */
static int batch_flush(struct carousel *c, carousel_emit_fn emit, void *ctx, uint64_t held)
{
	struct batch *b = &c->b;
	int r;

	if (b->n == 0)
		return 0;
	if (b->n == 1) {
		r = emit_section(c, b->buf + b->off[0], b->len[0], 1, b->changed, emit, ctx);
	} else {
		const uint8_t *u[EMM_MAX_GROUP_CARDS];
		size_t glen = 0;

		for (size_t i = 0; i < b->n; i++)
			u[i] = b->buf + b->off[i];
		if ((r = emm_group_pack(u, b->len, b->n, c->gbuf, sizeof(c->gbuf), &glen)) != 0) {
			/* cannot happen with the issuer's own uniques; the cycle covers them */
			LOG_WARN("carousel", "group of %zu EMMs not packed, dropped: %s", b->n, err_str(r));
			c->st.errors++;
			batch_clear(c);
			return 0;
		}
		r = emit_section(c, c->gbuf, glen, b->n, b->changed, emit, ctx);
	}
	if (r != 0) {
		if (held)
			give_back(c, b->changed, held);
		for (size_t i = b->n; i-- > 0;)
			give_back(c, b->changed, b->serial[i]);
	}
	batch_clear(c);
	return r;
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
	c->cycle_records_start = c->st.records;
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
				metric_observe_us(MET_CAROUSEL_CYCLE, NULL, NULL, ms * 1000);
				c->st.last_cycle_cards = cards;
				c->st.cycle_emms_per_s =
					ms ? (double)(c->st.records - c->cycle_records_start) * 1000.0 / (double)ms : 0.0;
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

int carousel_tick(struct carousel *c, uint64_t now_ms, carousel_emit_fn emit, void *ctx, size_t *emitted)
{
	size_t n0 = c->st.emms, built = 0;
	int r = 0, fr;

	refill(c, now_ms);
	batch_clear(c);
	/* a batch may take one more card while it has tokens, or while that
	 * card adds no TS packet to it (checked once it is built) */
	while (built < CAROUSEL_MAX_PER_TICK && (c->b.n > 0 || c->tokens > 0)) {
		struct carousel_card k;
		struct entry *e;
		bool changed = c->q_n > 0, unblock;
		uint64_t d;
		size_t len = 0;
		int er = 0;

		/* close the section before a card that may not join it */
		if (c->b.n && (c->b.n >= c->max_batch || c->b.changed != changed ||
			       (!changed && c->page_pos >= c->page_n))) {
			if ((r = batch_flush(c, emit, ctx, 0)) != 0)
				break;
			continue;
		}
		if (changed) {
			uint64_t serial = c->q[c->q_head];

			e = lookup(c, serial);
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
		built++;
		d = digest_of(c, &k, now_ms);
		if ((r = upsert(c, k.serial, &e)) != 0)
			goto skip;
		/* a second record of a card, or a card with two EMMs: a new section */
		if (c->b.n && ((e->flags & F_INBATCH) ||
			       (k.state == CAROUSEL_ACTIVE && (e->flags & F_BLOCKED) && (e->seq == 0 || e->digest != d)))) {
			if ((r = batch_flush(c, emit, ctx, k.serial)) != 0)
				break;
			if (c->tokens <= 0) {
				give_back(c, changed, k.serial);
				break;
			}
		}
		if ((r = number_card(c, &k, e, d, &unblock)) != 0) {
			if (r == CE_IO) { /* persisting the seq failed: stop, try again next tick */
				give_back(c, changed, k.serial);
				break;
			}
			goto skip;
		}
		if (unblock) {
			if ((r = send_unblock(c, &k, e, now_ms, changed, emit, ctx, &er)) != 0)
				goto skip;
			if ((r = er) != 0) {
				give_back(c, changed, k.serial);
				break;
			}
			continue;
		}
		if ((r = build_card(c, &k, e->seq, now_ms, (e->flags & F_UNPAIR) != 0, &len)) != 0)
			goto skip;
		if (c->b.n && !batch_fits(c, len)) {
			if ((r = batch_flush(c, emit, ctx, k.serial)) != 0)
				break;
		} else if (c->b.n && c->tokens - (int64_t)batch_cost(c) <= 0 &&
			   carousel_ts_cost(c->b.group_len + len - UNIQUE_MINUS_RECORD) > batch_cost(c)) {
			/* no tokens left for another packet: the card waits (same seq) */
			give_back(c, changed, k.serial);
			break;
		}
		if (c->tokens <= 0 && c->b.n == 0) {
			give_back(c, changed, k.serial);
			break;
		}
		batch_add(c, e, changed, c->buf, len);
		continue;
skip:
		LOG_WARN("carousel", "card %llu skipped: %s", (unsigned long long)k.serial, err_str(r));
		c->st.errors++;
		r = 0;
	}
	/* what was built goes out (after a failed save too: those seqs are stored) */
	if ((fr = batch_flush(c, emit, ctx, 0)) != 0 && r == 0)
		r = fr;
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
