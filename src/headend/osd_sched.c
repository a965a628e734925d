/*
 * osd_sched.c - fingerprints and messages in force, for the ECMG and the
 * EMM carousel (osd_sched.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "headend/osd_sched.h"
#include "sms/store_osd.h"

struct ecm_fp {
	enum sms_fp_target target;   /* SERVICE or PACKAGE */
	uint64_t value;
	int64_t start_s, end_s;
	struct osd_fingerprint fp;
};

struct card_item {
	uint64_t serial;             /* 0: not a card item */
	uint32_t package;            /* group messages */
	uint8_t rank;                /* 0 card fp, 1 card message, 2 group message, 3 global message */
	int64_t start_s, end_s;
	struct osd_item item;
};

struct osd_sched {
	pthread_mutex_t mu;          /* the ECM set (read by the ECMG thread) */
	struct ecm_fp *ecm;
	size_t necm;
	/* EMM thread only */
	struct card_item *items;     /* sorted by cmp_items */
	size_t nitems, npersonal;    /* items[0..npersonal): one card's (rank 0, 1) */
	size_t ncard_fps, nmsgs;
	/* a load in progress */
	struct ecm_fp *l_ecm;
	size_t l_necm;
	struct card_item *l_items;
	size_t l_nitems, l_ncard_fps, l_nmsgs;
};

int osd_sched_new(struct osd_sched **out)
{
	struct osd_sched *os;

	if (!out)
		return CE_ARG;
	*out = NULL;
	os = calloc(1, sizeof(*os));
	if (!os)
		return CE_NOMEM;
	if (pthread_mutex_init(&os->mu, NULL) != 0) {
		free(os);
		return CE_NOMEM;
	}
	*out = os;
	return 0;
}

void osd_sched_free(struct osd_sched *os)
{
	if (!os)
		return;
	pthread_mutex_destroy(&os->mu);
	free(os->ecm);
	free(os->items);
	free(os->l_ecm);
	free(os->l_items);
	free(os);
}

static int load_fp(void *ctx, const struct sms_fingerprint *f)
{
	struct osd_sched *os = ctx;

	if (f->target == SMS_FP_CARD) {
		struct card_item *ci;

		if (os->l_nitems >= OSD_SCHED_MAX_FP + OSD_SCHED_MAX_MSG)
			return 0;
		ci = &os->l_items[os->l_nitems++];
		memset(ci, 0, sizeof(*ci));
		ci->serial = f->value;
		ci->rank = 0;
		ci->start_s = f->start_s;
		ci->end_s = f->end_s;
		ci->item.kind = OSD_KIND_FINGERPRINT;
		ci->item.u.fp = f->fp;
		ci->item.u.fp.service = 0; /* every service */
		os->l_ncard_fps++;
		return 0;
	}
	if (os->l_necm >= OSD_SCHED_MAX_FP)
		return 0;
	os->l_ecm[os->l_necm++] = (struct ecm_fp){ f->target, f->value, f->start_s, f->end_s, f->fp };
	return 0;
}

static int load_msg(void *ctx, const struct sms_message *m)
{
	struct osd_sched *os = ctx;
	struct card_item *ci;

	if (os->l_nitems >= OSD_SCHED_MAX_FP + OSD_SCHED_MAX_MSG || os->l_nmsgs >= OSD_SCHED_MAX_MSG)
		return 0;
	ci = &os->l_items[os->l_nitems++];
	memset(ci, 0, sizeof(*ci));
	ci->serial = m->card;
	ci->package = m->msg.group_id;
	ci->rank = m->msg.scope == OSD_SCOPE_INDIVIDUAL ? 1 : m->msg.scope == OSD_SCOPE_GROUP ? 2 : 3;
	ci->start_s = m->start_s;
	ci->end_s = (int64_t)m->msg.expiry_s;
	ci->item.kind = OSD_KIND_MESSAGE;
	ci->item.u.msg = m->msg;
	os->l_nmsgs++;
	return 0;
}

static uint32_t item_id(const struct card_item *c)
{
	return c->item.kind == OSD_KIND_FINGERPRINT ? c->item.u.fp.fp_id : c->item.u.msg.msg_id;
}

/* One card's items (rank 0, 1) first, by serial, so a card finds its own
 * by binary search; then the shared ones (rank 2, 3); each by rank, newest
 * first. */
static int cmp_items(const void *a, const void *b)
{
	const struct card_item *x = a, *y = b;
	bool px = x->rank <= 1, py = y->rank <= 1;

	if (px != py)
		return px ? -1 : 1;
	if (px && x->serial != y->serial)
		return x->serial < y->serial ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return item_id(x) > item_id(y) ? -1 : item_id(x) < item_id(y) ? 1 : 0;
}

int osd_sched_load(struct osd_sched *os, struct sms_store *st, int64_t now_s)
{
	size_t n = 0;
	int r;

	if (!os || !st)
		return CE_ARG;
	if (!os->l_ecm && !(os->l_ecm = calloc(OSD_SCHED_MAX_FP, sizeof(*os->l_ecm))))
		return CE_NOMEM;
	if (!os->l_items && !(os->l_items = calloc(OSD_SCHED_MAX_FP + OSD_SCHED_MAX_MSG, sizeof(*os->l_items))))
		return CE_NOMEM;
	os->l_necm = os->l_nitems = os->l_ncard_fps = os->l_nmsgs = 0;
	if ((r = sms_fp_list(st, now_s, OSD_SCHED_MAX_FP * 2, load_fp, os, &n)) != 0 ||
	    (r = sms_msg_list(st, now_s, OSD_SCHED_MAX_MSG, load_msg, os, &n)) != 0)
		return r;
	qsort(os->l_items, os->l_nitems, sizeof(*os->l_items), cmp_items);
	/* swap the loaded set in (the old arrays become the next load's) */
	pthread_mutex_lock(&os->mu);
	{
		struct ecm_fp *e = os->ecm;

		os->ecm = os->l_ecm;
		os->necm = os->l_necm;
		os->l_ecm = e;
	}
	pthread_mutex_unlock(&os->mu);
	{
		struct card_item *c = os->items;

		os->items = os->l_items;
		os->nitems = os->l_nitems;
		os->npersonal = 0;
		while (os->npersonal < os->nitems && os->items[os->npersonal].rank <= 1)
			os->npersonal++;
		os->ncard_fps = os->l_ncard_fps;
		os->nmsgs = os->l_nmsgs;
		os->l_items = c;
	}
	return 0;
}

int osd_sched_fp_for_ecm(void *ctx, uint16_t ecm_id, uint32_t mask, uint64_t now_ms, struct osd_fingerprint *fp)
{
	struct osd_sched *os = ctx;
	int64_t now_s = (int64_t)(now_ms / 1000u);
	const struct ecm_fp *best = NULL;

	if (!os || !fp)
		return CE_ARG;
	pthread_mutex_lock(&os->mu);
	for (size_t i = 0; i < os->necm; i++) {
		const struct ecm_fp *e = &os->ecm[i];
		bool hit = e->target == SMS_FP_SERVICE ? e->value == ecm_id
			: e->value < 32 && (mask & (1u << e->value));

		if (!hit || now_s < e->start_s || now_s > e->end_s)
			continue;
		/* the channel's own wins over a package's; then the lowest id */
		if (!best || (e->target == SMS_FP_SERVICE && best->target != SMS_FP_SERVICE) ||
		    (e->target == best->target && e->fp.fp_id < best->fp.fp_id))
			best = e;
	}
	if (best) {
		*fp = best->fp;
		fp->service = ecm_id;
	}
	pthread_mutex_unlock(&os->mu);
	return best ? 0 : CE_NOT_FOUND;
}

void osd_sched_card(const struct osd_sched *os, uint64_t serial, uint32_t packages, int64_t now_s,
	struct carousel_card *k)
{
	k->nosd = 0;
	if (!os)
		return;
	size_t lo = 0, hi = os->npersonal;

	while (lo < hi) { /* the first of this card's own items */
		size_t mid = lo + (hi - lo) / 2;

		if (os->items[mid].serial < serial)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < os->npersonal && os->items[i].serial == serial && k->nosd < EMM_MAX_OSD; i++) {
		const struct card_item *c = &os->items[i];

		if (now_s >= c->start_s && now_s <= c->end_s)
			k->osd[k->nosd++] = &c->item;
	}
	for (size_t i = os->npersonal; i < os->nitems && k->nosd < EMM_MAX_OSD; i++) {
		const struct card_item *c = &os->items[i];
		bool hit = c->rank == 3 || (c->package < 32 && (packages & (1u << c->package)));

		if (hit && now_s >= c->start_s && now_s <= c->end_s)
			k->osd[k->nosd++] = &c->item;
	}
}

void osd_sched_counts(const struct osd_sched *os, size_t *ecm_fps, size_t *card_fps, size_t *msgs)
{
	if (ecm_fps)
		*ecm_fps = os ? os->necm : 0;
	if (card_fps)
		*card_fps = os ? os->ncard_fps : 0;
	if (msgs)
		*msgs = os ? os->nmsgs : 0;
}
