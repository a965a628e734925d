/*
 * report_cas.c - cas-channels and cas-match (report_cas.h): the emm_seq rows
 * read a page at a time and counted per package; each entitled card's
 * 32-bit mask kept, sorted, and each distinct mask added to the channels it
 * opens (so the cost is one pass over the cards plus distinct masks x
 * channels). The SMS side for cas-match: sms_report_active_each (the log at
 * T), counted the same way.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "sms/report_cas.h"
#include "sms/store_int.h"
#include "lib/util.h"

#define SEQ_PAGE 50000 /* emm_seq rows per query (streamed to cas_row, not held) */
#define CHAN_PAGE 1000

/* Cards per package id, and the masks (packages 0..31) of the cards counted. */
struct counts {
	int64_t *pkg;          /* SMS_PACKAGES_MAX entries */
	uint32_t *masks;
	size_t nmasks, cap;
};

struct catalog {
	struct sms_channel *ch;
	size_t nch, chcap;
	struct sms_package *pk;
	size_t npk, pkcap;
	int64_t last;
};

struct cas_walk {
	int64_t at;
	struct counts *c;
	struct sms_cas_stats *st;
	uint64_t last;
};

static void counts_free(struct counts *c)
{
	free(c->pkg);
	free(c->masks);
	memset(c, 0, sizeof(*c));
}

static int counts_init(struct counts *c)
{
	memset(c, 0, sizeof(*c));
	c->pkg = calloc(SMS_PACKAGES_MAX, sizeof(*c->pkg));
	return c->pkg ? 0 : CE_NOMEM;
}

/* One card entitled to the packages of mask and ext[0..n) (each counted once). */
static int count_card(struct counts *c, uint32_t mask, const uint32_t *ext, size_t n)
{
	for (unsigned b = 0; b < 32; b++)
		if (mask >> b & 1)
			c->pkg[b]++;
	for (size_t i = 0; i < n; i++) {
		bool dup = ext[i] < 32 && (mask >> ext[i] & 1);

		for (size_t j = 0; j < i && !dup; j++)
			dup = ext[j] == ext[i];
		if (!dup && ext[i] < SMS_PACKAGES_MAX)
			c->pkg[ext[i]]++;
	}
	if (!mask)
		return 0;
	if (c->nmasks == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		uint32_t *m = realloc(c->masks, cap * sizeof(*m));

		if (!m)
			return CE_NOMEM;
		c->masks = m;
		c->cap = cap;
	}
	c->masks[c->nmasks++] = mask;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* out[i]: the cards counted that open channel i (its access criteria). */
static void per_channel(struct counts *c, const struct catalog *cat, int64_t *out)
{
	memset(out, 0, (cat->nch + 1) * sizeof(*out));
	if (c->nmasks)
		qsort(c->masks, c->nmasks, sizeof(*c->masks), cmp_u32);
	for (size_t i = 0; i < c->nmasks;) {
		size_t j = i;

		while (j < c->nmasks && c->masks[j] == c->masks[i])
			j++;
		for (size_t k = 0; k < cat->nch; k++)
			if (cat->ch[k].access_criteria & c->masks[i])
				out[k] += (int64_t)(j - i);
		i = j;
	}
}

int sms_sent_ext_parse(const char *t, uint32_t *ids, size_t *n)
{
	const char *p = t;

	*n = 0;
	while (*p) {
		size_t len = strcspn(p, ",");
		char num[8];
		int64_t v;

		if (len == 0 || len >= sizeof(num) || *n == SMS_SENT_EXT_MAX || strspn(p, "0123456789") != len)
			return CE_FORMAT; /* digits only: no sign, space or hex */
		memcpy(num, p, len);
		num[len] = '\0';
		if (parse_dec_s64(num, 0, SMS_PACKAGES_MAX - 1, &v) != 0)
			return CE_FORMAT;
		ids[(*n)++] = (uint32_t)v;
		p += len;
		if (*p == ',' && *++p == '\0')
			return CE_FORMAT; /* a trailing comma */
	}
	return 0;
}

static int cas_row(void *ctx, const struct sms_emm_seq *q)
{
	struct cas_walk *w = ctx;
	uint32_t ext[SMS_SENT_EXT_MAX];
	size_t n = 0;
	int r;

	w->st->rows++;
	w->last = q->serial;
	if (q->blocked) {
		w->st->blocked++;
		return 0;
	}
	if (!q->has_sent) {
		w->st->unknown++;
		return 0;
	}
	if ((r = sms_sent_ext_parse(q->sent_ext, ext, &n)) != 0)
		return r;
	if (!q->sent_packages && !n) {
		w->st->empty++;
		return 0;
	}
	if (!(q->sent_start <= w->at && w->at <= q->sent_finish)) {
		w->st->out_of_period++;
		return 0;
	}
	w->st->counted++;
	return count_card(w->c, q->sent_packages, ext, n);
}

static int one_count(void *ctx, int n, const char *const *cols)
{
	size_t *v = ctx;

	if (n < 1)
		return CE_INTERNAL;
	*v = (size_t)store_col_i64(cols[0]);
	return 0;
}

static int cas_count(struct sms_store *s, int64_t at, struct counts *c, struct sms_cas_stats *st)
{
	struct cas_walk w = { .at = at, .c = c, .st = st };
	struct db_val p[1] = { DBI(at * 1000 + 999) };
	size_t n;
	int r;

	do {
		n = 0;
		r = sms_emm_seq_list(s, w.last, SEQ_PAGE, cas_row, &w, &n);
	} while (r == 0 && n == SEQ_PAGE);
	/* rows written after T: emm_seq keeps the last grant only */
	if (r == 0)
		r = s->ops->exec(s, "SELECT COUNT(*) FROM emm_seq WHERE updated_ms > ?", p, 1, one_count, &st->sent_after,
				 NULL);
	return r;
}

/* One card active in the SMS (its packages are distinct: one subscription
 * per card and package). */
static int sms_one(void *ctx, uint64_t serial, const uint32_t *pkgs, size_t n)
{
	struct counts *c = ctx;
	uint32_t mask = 0;

	(void)serial;
	for (size_t i = 0; i < n; i++) {
		if (pkgs[i] < 32)
			mask |= 1u << pkgs[i];
		else if (pkgs[i] < SMS_PACKAGES_MAX)
			c->pkg[pkgs[i]]++;
	}
	return count_card(c, mask, NULL, 0);
}

/* ---- the tables ---------------------------------------------------------- */

static int acc_ch(void *ctx, const struct sms_channel *ch)
{
	struct catalog *c = ctx;

	if (c->nch == c->chcap) {
		size_t cap = c->chcap ? c->chcap * 2 : 64;
		struct sms_channel *n = realloc(c->ch, (cap + 1) * sizeof(*n));

		if (!n)
			return CE_NOMEM;
		c->ch = n;
		c->chcap = cap;
	}
	c->ch[c->nch++] = *ch;
	c->last = ch->service_id;
	return 0;
}

static int acc_pk(void *ctx, const struct sms_package *p)
{
	struct catalog *c = ctx;

	if (c->npk == c->pkcap) {
		size_t cap = c->pkcap ? c->pkcap * 2 : 64;
		struct sms_package *n = realloc(c->pk, cap * sizeof(*n));

		if (!n)
			return CE_NOMEM;
		c->pk = n;
		c->pkcap = cap;
	}
	c->pk[c->npk++] = *p;
	c->last = p->id;
	return 0;
}

static void catalog_free(struct catalog *c)
{
	free(c->ch);
	free(c->pk);
	memset(c, 0, sizeof(*c));
}

static int catalog_load(struct sms_store *s, struct catalog *c)
{
	size_t n;
	int r;

	memset(c, 0, sizeof(*c));
	c->last = -1;
	do {
		n = 0;
		r = sms_channel_list(s, c->last, CHAN_PAGE, acc_ch, c, &n);
	} while (r == 0 && n == CHAN_PAGE);
	c->last = -1;
	do {
		n = 0;
		r = r ? r : sms_package_list(s, c->last, CHAN_PAGE, acc_pk, c, &n);
	} while (r == 0 && n == CHAN_PAGE);
	return r;
}

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%" PRId64, (int64_t)(v)), (buf))

/* One row: kind, id, name, then the figures. */
static int row(struct sms_table *t, bool match, const char *kind, int64_t id, const char *name, uint32_t ac,
	       int64_t cas, int64_t sms)
{
	char b[4][24];
	const char *v[6] = { kind, I64(b[0], id), name };

	if (match) {
		v[3] = I64(b[1], cas);
		v[4] = I64(b[2], sms);
		v[5] = I64(b[3], cas - sms);
	} else {
		if (kind[0] == 'c')
			snprintf(b[1], sizeof(b[1]), "%08" PRIX32, ac);
		else
			b[1][0] = '\0';
		v[3] = b[1];
		v[4] = I64(b[2], cas);
	}
	return sms_table_row(t, v);
}

int sms_report_cas_stats(struct sms_store *s, int64_t at_s, bool match, struct sms_table *t, struct sms_cas_stats *st)
{
	struct sms_cas_stats local;
	struct counts cas = { 0 }, sms = { 0 };
	struct catalog cat = { 0 };
	int64_t *chc = NULL, *chs = NULL;
	bool *listed = NULL;
	int r;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	sms_table_col(t, "kind", false);
	sms_table_col(t, "id", true);
	sms_table_col(t, "name", false);
	if (match) {
		sms_table_col(t, "cas_cards", true);
		sms_table_col(t, "sms_cards", true);
		sms_table_col(t, "difference", true);
	} else {
		sms_table_col(t, "packages", false);
		sms_table_col(t, "cards", true);
	}
	if ((r = counts_init(&cas)) != 0 || (match && (r = counts_init(&sms)) != 0))
		goto out;
	if ((r = catalog_load(s, &cat)) != 0 || (r = cas_count(s, at_s, &cas, st)) != 0)
		goto out;
	if (match && (r = sms_report_active_each(s, at_s, sms_one, &sms)) != 0)
		goto out;
	r = CE_NOMEM;
	if (!(chc = calloc(cat.nch + 1, sizeof(*chc))) || !(chs = calloc(cat.nch + 1, sizeof(*chs))) ||
	    !(listed = calloc(SMS_PACKAGES_MAX, sizeof(*listed))))
		goto out;
	per_channel(&cas, &cat, chc);
	if (match)
		per_channel(&sms, &cat, chs);
	r = 0;
	for (size_t i = 0; i < cat.nch && r == 0; i++)
		r = row(t, match, "channel", cat.ch[i].service_id, cat.ch[i].name, cat.ch[i].access_criteria, chc[i],
			chs[i]);
	/* the packages of the table, by id, and any other id counted (no name) */
	for (size_t i = 0; i < cat.npk; i++)
		if (cat.pk[i].id < SMS_PACKAGES_MAX)
			listed[cat.pk[i].id] = true;
	for (size_t i = 0, k = 0; i < SMS_PACKAGES_MAX && r == 0; i++) {
		const char *name = "";

		if (!listed[i] && !cas.pkg[i] && !(match && sms.pkg[i]))
			continue;
		while (k < cat.npk && cat.pk[k].id < i)
			k++;
		if (k < cat.npk && cat.pk[k].id == i)
			name = cat.pk[k].name;
		r = row(t, match, "package", (int64_t)i, name, 0, cas.pkg[i], match ? sms.pkg[i] : 0);
	}
out:
	free(chc);
	free(chs);
	free(listed);
	counts_free(&cas);
	counts_free(&sms);
	catalog_free(&cat);
	return r;
}

int sms_report_cas(struct sms_store *s, int64_t at_s, bool match, struct sms_table *t)
{
	return sms_report_cas_stats(s, at_s, match, t, NULL);
}

static int file_put(void *ctx, const char *p, size_t n)
{
	return fwrite(p, 1, n, ctx) == n ? 0 : CE_IO;
}

int sms_cas_match_print(struct sms_store *s, int64_t at_s, bool json, FILE *f, size_t *ndiff)
{
	struct sms_table *t = NULL, *d = NULL;
	struct sms_cas_stats st;
	size_t dcol;
	int r;

	*ndiff = 0;
	if (!(t = calloc(1, sizeof(*t))) || !(d = calloc(1, sizeof(*d)))) {
		r = CE_NOMEM;
		goto out;
	}
	snprintf(t->name, sizeof(t->name), "cas-match");
	t->at_s = at_s;
	if ((r = sms_report_cas_stats(s, at_s, true, t, &st)) != 0)
		goto out;
	/* d: the rows of t that differ */
	*d = *t;
	d->cells = NULL;
	d->nrows = d->cap = 0;
	for (size_t c = 0; c < t->ncols; c++)
		d->cols[c] = t->cols[c];
	dcol = t->ncols - 1;
	for (size_t i = 0; i < t->nrows && r == 0; i++)
		if (strcmp(t->cells[i * t->ncols + dcol], "0") != 0)
			r = sms_table_row(d, (const char *const *)t->cells + i * t->ncols);
	if (r != 0)
		goto out;
	*ndiff = d->nrows;
	if (json) {
		json_t *rows = sms_table_json(d), *j;

		j = rows ? json_pack("{s:I,s:I,s:I,s:O}", "at", (json_int_t)at_s, "rows_compared", (json_int_t)t->nrows,
				     "differences", (json_int_t)d->nrows, "items", json_object_get(rows, "rows"))
			 : NULL;
		r = j && json_dumpf(j, f, JSON_INDENT(1)) == 0 && fputc('\n', f) != EOF ? 0 : CE_IO;
		json_decref(j);
		json_decref(rows);
	} else {
		r = sms_table_csv(d, file_put, f);
	}
	if (r == 0 && fflush(f) != 0)
		r = CE_IO;
	if (r == 0)
		fprintf(stderr,
			"reconcile --channels at %" PRId64 ": %zu channel/package rows compared, %zu differ; CAS side: %zu"
			" emm_seq rows, %zu entitled, %zu blocked, %zu out of period, %zu empty, %zu unknown (pre-schema 4)\n",
			at_s, t->nrows, d->nrows, st.rows, st.counted, st.blocked, st.out_of_period, st.empty, st.unknown);
	if (r == 0 && st.sent_after)
		fprintf(stderr, "reconcile --channels: %zu cards were numbered after %" PRId64 " (emm_seq keeps the last"
			" grant only: their grant at that time is not known, the last one was counted)\n",
			st.sent_after, at_s);
out:
	sms_table_free(t);
	sms_table_free(d);
	return r;
}
