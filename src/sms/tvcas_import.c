/*
 * tvcas_import.c - the free CAS's card table into the store (tvcas_import.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "lib/util.h"
#include "sms/tvcas_import.h"

#define WHO "import-tvcas"

struct seen {
	uint64_t serial;
	size_t line;
};

struct check_ctx {
	struct seen *v;
	size_t n, cap;
	size_t no_period, disabled;
	size_t warned, cleaned;
	void (*warn)(void *ctx, const char *msg);
	void *wctx;
};

static int check_row(void *ctx, const struct tvcas_card *c)
{
	struct check_ctx *k = ctx;
	char msg[400];

	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 4096;
		struct seen *nv = realloc(k->v, cap * sizeof(*nv));

		if (!nv)
			return CE_NOMEM;
		k->v = nv;
		k->cap = cap;
	}
	k->v[k->n++] = (struct seen){ c->serial, c->line };
	if (!c->has_start || !c->has_finish) {
		if (k->warned++ < TVCAS_WARN_LINES) {
			snprintf(msg, sizeof(msg), "line %zu: card %" PRIu64 " has no %s (NULL): imported with no "
				 "period in force (0..0), as the free CAS treated it; give it one with castellan sms "
				 "subscribe or the GET API", c->line, c->serial,
				 !c->has_start && !c->has_finish ? "start and finish" : !c->has_start ? "start" : "finish");
			k->warn(k->wctx, msg);
		}
		k->no_period++;
	}
	k->disabled += c->disabled;
	if (c->cleaned && k->cleaned++ < TVCAS_WARN_LINES) {
		snprintf(msg, sizeof(msg), "line %zu: card %" PRIu64 ": tabs or line breaks in name or info imported "
			 "as spaces", c->line, c->serial);
		k->warn(k->wctx, msg);
	}
	return 0;
}

static int by_serial(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	return x->serial < y->serial ? -1 : x->serial > y->serial ? 1 : x->line < y->line ? -1 : 1;
}

/* A row with start or finish NULL gets no period at all (0..0). */
static bool has_period(const struct tvcas_card *c)
{
	return c->has_start && c->has_finish;
}

struct apply_ctx {
	struct sms_store *s;
	size_t added, changed;
	struct sms_card_change *ch;
};

static int apply_row(void *ctx, const struct tvcas_card *c)
{
	struct apply_ctx *a = ctx;
	struct sms_card_change *ch = a->ch;
	struct sms_card cur;
	int r = sms_card_get(a->s, c->serial, &cur);

	if (r == CE_NOT_FOUND) {
		struct sms_card n;

		memset(&n, 0, offsetof(struct sms_card, info));
		n.info[0] = '\0';
		n.serial = c->serial;
		n.state = c->disabled ? SMS_CARD_BLOCKED : SMS_CARD_ACTIVE;
		n.pair = c->pair;
		n.start = has_period(c) ? c->start : 0;
		n.finish = has_period(c) ? c->finish : 0;
		if ((r = sms_card_add(a->s, &n, WHO)) != 0)
			return r;
		a->added++;
	} else if (r != 0) {
		return r;
	} else {
		a->changed++;
	}
	sms_card_change_init(ch);
	ch->has_name = ch->has_info = ch->has_pair = ch->has_start = ch->has_finish = ch->has_ac = true;
	ch->has_state = true;
	snprintf(ch->name, sizeof(ch->name), "%s", c->name);
	snprintf(ch->info, sizeof(ch->info), "%s", c->info);
	ch->pair = c->pair;
	ch->start = has_period(c) ? c->start : 0;
	ch->finish = has_period(c) ? c->finish : 0;
	ch->access_criteria = c->access_criteria;
	ch->state = c->disabled ? SMS_CARD_BLOCKED : SMS_CARD_ACTIVE;
	return sms_card_change(a->s, c->serial, ch, WHO, NULL);
}


int tvcas_import(struct sms_store *s, const uint8_t *buf, size_t len, enum tvcas_format fmt, bool dry_run,
	void (*warn)(void *ctx, const char *msg), void *ctx, struct tvcas_import_result *res)
{
	struct check_ctx k = { .warn = warn, .wctx = ctx };
	struct apply_ctx a = { .s = s };
	uint8_t md[32];
	unsigned mdl = 0;
	char hex[65], what[512];
	int r;

	memset(res, 0, sizeof(*res));
	/* pass 1: the whole file checked, nothing written */
	if ((r = tvcas_parse(buf, len, fmt, check_row, &k, &res->rows, &res->line, res->why, sizeof(res->why))) != 0)
		goto out;
	res->more_warnings = k.warned > TVCAS_WARN_LINES ? k.warned - TVCAS_WARN_LINES : 0;
	res->disabled = k.disabled;
	res->no_period = k.no_period;
	if (k.n)
		qsort(k.v, k.n, sizeof(*k.v), by_serial);
	for (size_t i = 1; i < k.n; i++) {
		if (k.v[i].serial == k.v[i - 1].serial) {
			res->dup_serial = k.v[i].serial;
			res->dup_line[0] = k.v[i - 1].line;
			res->dup_line[1] = k.v[i].line;
			r = CE_EXISTS;
			goto out;
		}
	}
	if (dry_run)
		goto out;
	/* pass 2: applied in one transaction */
	r = CE_NOMEM;
	if (!(a.ch = malloc(sizeof(*a.ch))) || (r = sms_tx_begin(s)) != 0)
		goto out;
	r = tvcas_parse(buf, len, fmt, apply_row, &a, &res->rows, &res->line, res->why, sizeof(res->why));
	if (r == 0 && EVP_Digest(buf, len, md, &mdl, EVP_sha256(), NULL) == 1) {
		hex_encode(md, sizeof(md), hex);
		snprintf(what, sizeof(what), "import-tvcas: %zu cards (%zu added, %zu changed), file sha256 %s",
			 res->rows, a.added, a.changed, hex);
		r = sms_audit_add(s, WHO, what);
	}
	r = sms_tx_end(s, r);
	res->added = a.added;
	res->changed = a.changed;
out:
	free(a.ch);
	free(k.v);
	return r;
}
