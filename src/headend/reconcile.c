/*
 * reconcile.c - the SMS against the CAS side's last EMM per card
 * (reconcile.h): a merge of the cards (with their subscriptions, a page at a
 * time) and the emm_seq rows, both by serial.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "headend/reconcile.h"
#include "headend/scheduler.h"
#include "cas/emm.h"

#define PAGE 1000
#define PAGE_SUBS 100000

struct side {
	struct sms_card *cards;
	size_t ncards, icard;
	struct sms_subscription *subs;
	size_t nsubs, isub;
	struct sms_emm_seq *seqs;
	size_t nseqs, iseq;
	bool cards_end, seqs_end;
	uint64_t card_after, seq_after;
};

static int acc_card(void *ctx, const struct sms_card *c)
{
	struct side *x = ctx;

	x->cards[x->ncards++] = *c;
	return 0;
}

static int acc_seq(void *ctx, const struct sms_emm_seq *q)
{
	struct side *x = ctx;

	x->seqs[x->nseqs++] = *q;
	return 0;
}

static int load_cards(struct sms_store *s, struct side *x)
{
	size_t n = 0;
	int r;

	x->ncards = x->icard = x->nsubs = x->isub = 0;
	if ((r = sms_card_list(s, x->card_after, PAGE, acc_card, x, &n)) != 0)
		return r;
	if (x->ncards == 0) {
		x->cards_end = true;
		return 0;
	}
	r = sms_subscription_range(s, x->card_after, x->cards[x->ncards - 1].serial, x->subs, PAGE_SUBS, &x->nsubs);
	if (r == CE_OVERFLOW)
		return CE_LIMIT; /* over 100 subscriptions per card on a page: not this tool's base */
	if (r != 0)
		return r;
	x->card_after = x->cards[x->ncards - 1].serial;
	return 0;
}

static int load_seqs(struct sms_store *s, struct side *x)
{
	size_t n = 0;
	int r;

	x->nseqs = x->iseq = 0;
	if ((r = sms_emm_seq_list(s, x->seq_after, PAGE, acc_seq, x, &n)) != 0)
		return r;
	if (x->nseqs == 0)
		x->seqs_end = true;
	else
		x->seq_after = x->seqs[x->nseqs - 1].serial;
	return 0;
}

static void ext_text(const struct emm_grant *g, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < g->next && i < EMM_MAX_EXT_PACKAGES && o < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%u", i ? "," : "", (unsigned)g->ext[i]);
}

static const char *state_name(enum sms_card_state st)
{
	return st == SMS_CARD_ACTIVE ? "active" : st == SMS_CARD_BLOCKED ? "blocked" : "retired";
}

/* Compare one card (c NULL: not in the SMS; q NULL: never sent). */
static int compare(const struct sms_card *c, const struct sms_subscription *subs, size_t n, const struct sms_emm_seq *q,
		   int64_t now_s, int (*fn)(void *, const struct reconcile_diff *), void *ctx, struct reconcile_stats *st)
{
	struct reconcile_diff d;
	struct sched_sub ss[256];
	struct emm_grant g;
	int64_t next;
	char ext[SMS_SENT_EXT_MAX * 6 + 1];
	bool active, granted;

	memset(&d, 0, sizeof(d));
	d.serial = c ? c->serial : q->serial;
	if (!c) {
		if (q->blocked) {
			st->same++;
			return 0;
		}
		d.kind = "cas_only";
		snprintf(d.sms, sizeof(d.sms), "not in the SMS");
		snprintf(d.cas, sizeof(d.cas), "active, packages=%08" PRIX32 " ext=%s", q->sent_packages, q->sent_ext);
		goto diff;
	}
	if (n > 256)
		n = 256;
	for (size_t i = 0; i < n; i++)
		ss[i] = (struct sched_sub){ subs[i].package, subs[i].start, subs[i].finish };
	sched_grant_at(ss, n, now_s, &g, &next);
	ext_text(&g, ext, sizeof(ext));
	active = c->state == SMS_CARD_ACTIVE;
	granted = active && (g.packages || g.next);
	if (!q) {
		if (!granted) {
			st->same++;
			return 0;
		}
		d.kind = "not_sent";
		snprintf(d.sms, sizeof(d.sms), "active, packages=%08" PRIX32 " ext=%s", g.packages, ext);
		snprintf(d.cas, sizeof(d.cas), "no EMM sent");
		goto diff;
	}
	if (active == q->blocked) {
		d.kind = "state";
		snprintf(d.sms, sizeof(d.sms), "%s", state_name(c->state));
		snprintf(d.cas, sizeof(d.cas), "%s (seq %" PRIu32 ")", q->blocked ? "blocked" : "active", q->seq);
		goto diff;
	}
	if (!active) {
		st->same++;
		return 0;
	}
	if (!q->has_sent) {
		d.kind = "unknown";
		snprintf(d.sms, sizeof(d.sms), "active, packages=%08" PRIX32 " ext=%s", g.packages, ext);
		snprintf(d.cas, sizeof(d.cas), "seq %" PRIu32 " numbered before schema 4: grant not recorded", q->seq);
		goto diff;
	}
	if (g.packages != q->sent_packages) {
		d.kind = "packages";
		snprintf(d.sms, sizeof(d.sms), "packages=%08" PRIX32, g.packages);
		snprintf(d.cas, sizeof(d.cas), "packages=%08" PRIX32 " (seq %" PRIu32 ")", q->sent_packages, q->seq);
		goto diff;
	}
	if (strcmp(ext, q->sent_ext) != 0) {
		d.kind = "ext";
		snprintf(d.sms, sizeof(d.sms), "ext=%s", ext);
		snprintf(d.cas, sizeof(d.cas), "ext=%s (seq %" PRIu32 ")", q->sent_ext, q->seq);
		goto diff;
	}
	if (granted && ((int64_t)g.start_s != q->sent_start || (int64_t)g.finish_s != q->sent_finish)) {
		d.kind = "period";
		snprintf(d.sms, sizeof(d.sms), "%" PRIu64 "..%" PRIu64, g.start_s, g.finish_s);
		snprintf(d.cas, sizeof(d.cas), "%" PRId64 "..%" PRId64 " (seq %" PRIu32 ")", q->sent_start, q->sent_finish,
			 q->seq);
		goto diff;
	}
	st->same++;
	return 0;
diff:
	st->diffs++;
	return fn ? fn(ctx, &d) : 0;
}

int reconcile_run(struct sms_store *s, int64_t now_s, int (*fn)(void *ctx, const struct reconcile_diff *d), void *ctx,
		  struct reconcile_stats *st)
{
	struct side x = { 0 };
	int r = CE_NOMEM;

	memset(st, 0, sizeof(*st));
	x.cards = malloc(PAGE * sizeof(*x.cards));
	x.subs = malloc(PAGE_SUBS * sizeof(*x.subs));
	x.seqs = malloc(PAGE * sizeof(*x.seqs));
	if (!x.cards || !x.subs || !x.seqs)
		goto out;
	if ((r = load_cards(s, &x)) != 0 || (r = load_seqs(s, &x)) != 0)
		goto out;
	for (;;) {
		const struct sms_card *c;
		const struct sms_emm_seq *q;
		size_t from, n = 0;

		if (!x.cards_end && x.icard == x.ncards && (r = load_cards(s, &x)) != 0)
			goto out;
		if (!x.seqs_end && x.iseq == x.nseqs && (r = load_seqs(s, &x)) != 0)
			goto out;
		c = !x.cards_end && x.icard < x.ncards ? &x.cards[x.icard] : NULL;
		q = !x.seqs_end && x.iseq < x.nseqs ? &x.seqs[x.iseq] : NULL;
		if (!c && !q)
			break;
		if (c && q && q->serial < c->serial)
			c = NULL;
		else if (c && q && c->serial < q->serial)
			q = NULL;
		if (c) {
			while (x.isub < x.nsubs && x.subs[x.isub].serial < c->serial)
				x.isub++;
			from = x.isub;
			while (x.isub < x.nsubs && x.subs[x.isub].serial == c->serial)
				x.isub++;
			n = x.isub - from;
			st->sms_cards++;
			x.icard++;
		} else {
			from = 0;
		}
		if (q) {
			st->cas_cards++;
			x.iseq++;
		}
		if ((r = compare(c, c ? x.subs + from : NULL, n, q, now_s, fn, ctx, st)) != 0)
			goto out;
	}
	r = 0;
out:
	free(x.cards);
	free(x.subs);
	free(x.seqs);
	return r;
}
