/*
 * store_bulk.c - the SMS store's fast paths (store.h, "bulk paths"): many
 * new cards written with multi-row INSERTs (the CSV import), the existence
 * of many cards in one statement, and a card with its subscriptions in one
 * query (REST GET card).
 *
 * The SQL is the same on both backends. Every statement is a static string
 * literal for a fixed number of rows (64, 8 or 1), so the backends' caches,
 * keyed by the address of the SQL text, prepare each one once; a batch of
 * n rows is written as n/64 statements of 64 rows, then 8s, then 1s.
 * Values are bound, never spliced.
 */
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/store_int.h"
#include "lib/util.h"

/* x repeated 63 or 7 times: rows 2..64 (or 2..8) of a VALUES list. */
#define R2(x) x x
#define R4(x) R2(R2(x))
#define R8(x) R2(R4(x))
#define R7(x) x R2(x) R4(x)
#define R63(x) R7(x) R8(R7(x))
#define ROWS64(row) row R63(", " row)
#define ROWS8(row) row R7(", " row)
#define ROWS1(row) row

static const size_t chunk_rows[3] = { 64, 8, 1 };

struct table_sql {
	int ncols;
	const char *sql[3]; /* for chunk_rows[i] rows */
};

#define INS_SUBSCRIBERS "INSERT INTO subscribers (id, name, info) VALUES "
#define ROW_SUBSCRIBERS "(?, ?, ?)"
static const struct table_sql t_subscribers = { 3, {
	INS_SUBSCRIBERS ROWS64(ROW_SUBSCRIBERS), INS_SUBSCRIBERS ROWS8(ROW_SUBSCRIBERS),
	INS_SUBSCRIBERS ROWS1(ROW_SUBSCRIBERS) } };

#define INS_CARDS "INSERT INTO cards (serial, chip_id, state, pair, subscriber_id, start_time, finish_time," \
	" created_ms, updated_ms) VALUES "
#define ROW_CARDS "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
static const struct table_sql t_cards = { 9, {
	INS_CARDS ROWS64(ROW_CARDS), INS_CARDS ROWS8(ROW_CARDS), INS_CARDS ROWS1(ROW_CARDS) } };

/* A package listed twice on one row is one subscription. */
#define INS_SUBS "INSERT INTO subscriptions (card, package, start_time, finish_time) VALUES "
#define ROW_SUBS "(?, ?, ?, ?)"
#define END_SUBS " ON CONFLICT (card, package) DO NOTHING"
static const struct table_sql t_subs = { 4, {
	INS_SUBS ROWS64(ROW_SUBS) END_SUBS, INS_SUBS ROWS8(ROW_SUBS) END_SUBS, INS_SUBS ROWS1(ROW_SUBS) END_SUBS } };

/* Chained like every audit entry (store_audit.c): seq and hashes are
 * computed in order at flush, the head read once per transaction. */
#define INS_AUDIT "INSERT INTO audit (at_ms, who, what, seq, action, object, snapshot, prev_hash, hash) VALUES "
#define ROW_AUDIT "(?, ?, ?, ?, 'card.add', ?, ?, ?, ?)"
static const struct table_sql t_audit = { 8, {
	INS_AUDIT ROWS64(ROW_AUDIT), INS_AUDIT ROWS8(ROW_AUDIT), INS_AUDIT ROWS1(ROW_AUDIT) } };

/* The change feed: one row per new card (store_feed.c). */
#define INS_CHANGES "INSERT INTO card_changes (at_ms, serial, reason) VALUES "
#define ROW_CHANGES "(?, ?, 'import')"
static const struct table_sql t_changes = { 2, {
	INS_CHANGES ROWS64(ROW_CHANGES), INS_CHANGES ROWS8(ROW_CHANGES), INS_CHANGES ROWS1(ROW_CHANGES) } };

#define SEL_EXIST "SELECT serial FROM cards WHERE serial IN ("
static const struct table_sql t_exist = { 1, {
	SEL_EXIST ROWS64("?") ")", SEL_EXIST ROWS8("?") ")", SEL_EXIST ROWS1("?") ")" } };

_Static_assert(64 * 9 <= DB_MAX_PARAMS, "the cards statement's parameters");

/* Fill the parameters of row i (ncols values at p). */
typedef void (*fill_fn)(void *ctx, size_t i, struct db_val *p);

/* Run t's statement over rows [0, n) in chunks of 64, 8 and 1 rows. */
static int put_rows(struct sms_store *s, const struct table_sql *t, size_t n, fill_fn fill, void *ctx,
		    db_row_fn fn, void *fctx)
{
	struct db_val p[DB_MAX_PARAMS];
	size_t done = 0;
	int r;

	while (done < n) {
		int k = n - done >= chunk_rows[0] ? 0 : n - done >= chunk_rows[1] ? 1 : 2;
		size_t rows = chunk_rows[k];

		for (size_t i = 0; i < rows; i++)
			fill(ctx, done + i, p + i * (size_t)t->ncols);
		if ((r = s->ops->exec(s, t->sql[k], p, (int)rows * t->ncols, fn, fctx, NULL)) != 0)
			return r;
		done += rows;
	}
	return 0;
}

/* ---- existence of many cards ------------------------------------------ */

struct exist_ctx {
	const uint64_t *serials;
	bool *exists;
	size_t n;
};

static void fill_exist(void *ctx, size_t i, struct db_val *p)
{
	const struct exist_ctx *e = ctx;

	p[0] = DBI(e->serials[i] > INT64_MAX ? 0 : e->serials[i]);
}

static int row_exist(void *ctx, int n, const char *const *cols)
{
	struct exist_ctx *e = ctx;
	uint64_t v;

	if (n < 1 || !cols[0])
		return CE_INTERNAL;
	v = (uint64_t)store_col_i64(cols[0]);
	for (size_t i = 0; i < e->n; i++)
		if (e->serials[i] == v)
			e->exists[i] = true;
	return 0;
}

int sms_cards_exist(struct sms_store *s, const uint64_t *serials, size_t n, bool *exists)
{
	struct exist_ctx e = { serials, exists, n };

	if (n > 10000)
		return CE_RANGE;
	if (n)
		memset(exists, 0, n * sizeof(*exists));
	return put_rows(s, &t_exist, n, fill_exist, &e, row_exist, &e);
}

/* ---- a card and its subscriptions, one query -------------------------- */

struct full_ctx {
	struct sms_card *c;
	struct sms_subscription *subs;
	size_t max, n;
	bool found, overflow;
};

static int row_full(void *ctx, int n, const char *const *cols)
{
	struct full_ctx *f = ctx;
	uint32_t pkg;

	if (n < 13)
		return CE_INTERNAL;
	if (!f->found) {
		store_card_from_cols(f->c, cols); /* column 9 is 0: the mask is built below */
		f->found = true;
	}
	if (!cols[10]) /* LEFT JOIN: no subscription */
		return 0;
	pkg = (uint32_t)store_col_i64(cols[10]);
	if (pkg < 32)
		f->c->access_criteria |= 1u << pkg;
	if (f->n == f->max) {
		f->overflow = true;
		return 0;
	}
	f->subs[f->n].serial = f->c->serial;
	f->subs[f->n].package = pkg;
	f->subs[f->n].start = store_col_i64(cols[11]);
	f->subs[f->n].finish = store_col_i64(cols[12]);
	f->n++;
	return 0;
}

int sms_card_get_subs(struct sms_store *s, uint64_t serial, struct sms_card *out, struct sms_subscription *subs,
		      size_t max, size_t *n)
{
	struct full_ctx f = { .c = out, .subs = subs, .max = max };
	struct db_val p[1] = { DBI(serial) };
	int r;

	memset(out, 0, sizeof(*out));
	*n = 0;
	if (serial == 0 || serial > INT64_MAX)
		return CE_NOT_FOUND;
	r = s->ops->exec(s, "SELECT c.serial, c.chip_id, c.state, c.pair, c.start_time, c.finish_time,"
			 " COALESCE(u.name, ''), COALESCE(u.info, ''), COALESCE(c.subscriber_id, 0), 0,"
			 " p.package, p.start_time, p.finish_time"
			 " FROM cards c LEFT JOIN subscribers u ON u.id = c.subscriber_id"
			 " LEFT JOIN subscriptions p ON p.card = c.serial"
			 " WHERE c.serial = ? ORDER BY p.package", p, 1, row_full, &f, NULL);
	*n = f.n;
	if (r != 0)
		return r;
	if (!f.found)
		return CE_NOT_FOUND;
	return f.overflow ? CE_OVERFLOW : 0;
}

/* ---- many new cards ----------------------------------------------------- */

#define BULK_SUBS 1024 /* queued subscriptions; one card has at most 32 + 256 */
#define AUDIT_MAX 512

struct sms_bulk {
	struct sms_store *s;
	char who[SMS_WHO_MAX + 1];
	size_t ncard, nsub, nnamed;
	struct sms_card card[SMS_BULK_ROWS];
	int64_t sub_id[SMS_BULK_ROWS];     /* 0: no subscriber row */
	int64_t at_ms[SMS_BULK_ROWS];
	char what[SMS_BULK_ROWS][AUDIT_MAX];
	char *snap[SMS_BULK_ROWS];         /* the card's snapshot for the log (malloc'ed) */
	char object[SMS_BULK_ROWS][32];
	int64_t seq[SMS_BULK_ROWS];
	char prev_hex[SMS_BULK_ROWS][65], hash_hex[SMS_BULK_ROWS][65];
	bool check_bl;                     /* the blacklist is not empty */
	struct sms_subscription sub[BULK_SUBS];
	int64_t ids[SMS_BULK_ROWS];        /* subscriber ids allocated at flush */
	size_t nids;
	size_t named[SMS_BULK_ROWS];       /* at flush: the cards with a subscriber */
};

int sms_bulk_new(struct sms_store *s, const char *who, struct sms_bulk **out)
{
	struct sms_bulk *b;
	size_t n = who ? strlen(who) : 0;

	*out = NULL;
	if (!s->outer_tx)
		return CE_STATE;
	if (!who || n > SMS_WHO_MAX)
		return CE_RANGE;
	if (!(b = calloc(1, sizeof(*b))))
		return CE_NOMEM;
	b->s = s;
	memcpy(b->who, who, n + 1);
	{
		int64_t nbl = 0;
		int r = s->ops->exec(s, "SELECT COUNT(*) FROM blacklist", NULL, 0, store_row_int, &nbl, NULL);

		if (r != 0) {
			free(b);
			return r;
		}
		b->check_bl = nbl > 0;
	}
	*out = b;
	return 0;
}

static void snaps_free(struct sms_bulk *b)
{
	for (size_t i = 0; i < SMS_BULK_ROWS; i++) {
		free(b->snap[i]);
		b->snap[i] = NULL;
	}
}

void sms_bulk_free(struct sms_bulk *b)
{
	if (!b)
		return;
	snaps_free(b);
	free(b);
}

static int row_id(void *ctx, int n, const char *const *cols)
{
	struct sms_bulk *b = ctx;

	if (n < 1 || !cols[0] || b->nids >= SMS_BULK_ROWS)
		return CE_INTERNAL;
	b->ids[b->nids++] = store_col_i64(cols[0]);
	return 0;
}

/* Ids for the batch's new subscribers. PostgreSQL: from the identity's
 * sequence (safe with other sessions inserting). SQLite: MAX(id) + 1...,
 * safe because BEGIN IMMEDIATE holds the database's one write lock. */
static int alloc_ids(struct sms_bulk *b, size_t k)
{
	struct sms_store *s = b->s;
	int64_t base = 0;
	int r;

	b->nids = 0;
	if (k == 0)
		return 0;
	if (store_is_pg(s)) {
		struct db_val p[1] = { DBI(k) };

		if ((r = s->ops->exec(s, "SELECT nextval(pg_get_serial_sequence('subscribers', 'id'))"
				      " FROM generate_series(1, CAST(? AS INTEGER))", p, 1, row_id, b, NULL)) != 0)
			return r;
		return b->nids == k ? 0 : CE_INTERNAL;
	}
	if ((r = s->ops->exec(s, "SELECT COALESCE(MAX(id), 0) FROM subscribers", NULL, 0, row_id, b, NULL)) != 0)
		return r;
	base = b->nids == 1 ? b->ids[0] : 0;
	for (size_t i = 0; i < k; i++)
		b->ids[i] = base + 1 + (int64_t)i;
	b->nids = k;
	return 0;
}

/* Row i of the batch's subscribers: the i-th named card. */
static void fill_subscriber(void *ctx, size_t i, struct db_val *p)
{
	const struct sms_bulk *b = ctx;
	size_t c = b->named[i];

	p[0] = DBI(b->sub_id[c]);
	p[1] = DBT(b->card[c].name);
	p[2] = DBT(b->card[c].info);
}

static void fill_card(void *ctx, size_t i, struct db_val *p)
{
	struct sms_bulk *b = ctx;
	const struct sms_card *c = &b->card[i];

	p[0] = DBI(c->serial);
	p[1] = DBT(c->chip_id);
	p[2] = DBI(c->state);
	p[3] = DBI(c->pair);
	p[4] = b->sub_id[i] ? DBI(b->sub_id[i]) : (struct db_val){ .type = DB_NULL };
	p[5] = DBI(c->start);
	p[6] = DBI(c->finish);
	p[7] = DBI(b->at_ms[i]);
	p[8] = DBI(b->at_ms[i]);
}

static void fill_sub(void *ctx, size_t i, struct db_val *p)
{
	const struct sms_bulk *b = ctx;

	p[0] = DBI(b->sub[i].serial);
	p[1] = DBI(b->sub[i].package);
	p[2] = DBI(b->sub[i].start);
	p[3] = DBI(b->sub[i].finish);
}

static void fill_audit(void *ctx, size_t i, struct db_val *p)
{
	struct sms_bulk *b = ctx;

	p[0] = DBI(b->at_ms[i]);
	p[1] = DBT(b->who);
	p[2] = DBT(b->what[i]);
	p[3] = DBI(b->seq[i]);
	p[4] = DBT(b->object[i]);
	p[5] = DBT(b->snap[i] ? b->snap[i] : "");
	p[6] = DBT(b->prev_hex[i]);
	p[7] = DBT(b->hash_hex[i]);
}

/* Give the queued cards' audit entries their place in the chain. */
static int chain_cards(struct sms_bulk *b)
{
	for (size_t i = 0; i < b->ncard; i++) {
		struct sms_audit_entry e = { 0 };
		int r;

		e.at_ms = b->at_ms[i];
		store_copy_str(e.who, sizeof(e.who), b->who);
		e.action = "card.add";
		e.object = b->object[i];
		e.details = b->what[i];
		e.snapshot = b->snap[i] ? b->snap[i] : "";
		if ((r = store_audit_chain_next(b->s, &e, b->prev_hex[i], b->hash_hex[i])) != 0)
			return r;
		b->seq[i] = e.seq;
	}
	return 0;
}

static void fill_change(void *ctx, size_t i, struct db_val *p)
{
	struct sms_bulk *b = ctx;

	p[0] = DBI(b->at_ms[i]);
	p[1] = DBI(b->card[i].serial);
}

int sms_bulk_flush(struct sms_bulk *b)
{
	struct sms_store *s = b->s;
	size_t k = 0;
	int r;

	if (!s->outer_tx)
		return CE_STATE;
	if (b->ncard == 0)
		return 0;
	if ((r = alloc_ids(b, b->nnamed)) != 0)
		return r;
	for (size_t c = 0; c < b->ncard; c++) {
		if (b->sub_id[c]) {
			b->named[k] = c;
			b->sub_id[c] = b->ids[k++];
		}
	}
	/* Parents before children: subscribers, cards, subscriptions. */
	if ((r = chain_cards(b)) != 0 ||
	    (r = put_rows(s, &t_subscribers, b->nnamed, fill_subscriber, b, NULL, NULL)) != 0 ||
	    (r = put_rows(s, &t_cards, b->ncard, fill_card, b, NULL, NULL)) != 0 ||
	    (r = put_rows(s, &t_subs, b->nsub, fill_sub, b, NULL, NULL)) != 0 ||
	    (r = put_rows(s, &t_audit, b->ncard, fill_audit, b, NULL, NULL)) != 0 ||
	    (r = put_rows(s, &t_changes, b->ncard, fill_change, b, NULL, NULL)) != 0)
		return r;
	b->ncard = b->nsub = b->nnamed = 0;
	snaps_free(b);
	return 0;
}

static bool text_fits(const char *t, size_t max)
{
	return memchr(t, '\0', max + 1) != NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* What store_audit.c's card snapshot says of the card once written:
 * subscriptions by package, each once. */
static int bulk_snapshot(const struct sms_card *c, const uint32_t *packages, size_t npackages, char **out)
{
	uint32_t pk[32 + BULK_SUBS];
	size_t n = 0, cap, o;
	char *t;

	*out = NULL;
	for (unsigned bit = 0; bit < 32; bit++)
		if (c->access_criteria >> bit & 1)
			pk[n++] = bit;
	for (size_t k = 0; k < npackages && n < sizeof(pk) / sizeof(pk[0]); k++)
		if (packages[k] >= 32)
			pk[n++] = packages[k];
	qsort(pk, n, sizeof(pk[0]), cmp_u32);
	cap = 64 + strlen(c->chip_id) + n * 48;
	if (!(t = malloc(cap)))
		return CE_NOMEM;
	o = (size_t)snprintf(t, cap, "state=%d bl=0 pair=%d subs=", (int)c->state, (int)c->pair);
	for (size_t k = 0, w = 0; k < n; k++) {
		if (k && pk[k] == pk[k - 1])
			continue;
		o += (size_t)snprintf(t + o, cap - o, "%s%" PRIu32 ":%" PRId64 ":%" PRId64, w++ ? "," : "", pk[k],
				      c->start, c->finish);
	}
	snprintf(t + o, cap - o, " chip=%s", c->chip_id);
	*out = t;
	return 0;
}

int sms_bulk_card_add(struct sms_bulk *b, const struct sms_card *c, const uint32_t *packages, size_t npackages)
{
	size_t need = 0, i, lo;
	bool high = false;
	char *w;
	int r;

	if (!b->s->outer_tx)
		return CE_STATE;
	if (c->serial == 0 || c->serial > INT64_MAX || (unsigned)c->state > SMS_CARD_RETIRED)
		return CE_RANGE;
	if (!text_fits(c->chip_id, SMS_CHIP_ID_MAX) || !text_fits(c->name, SMS_NAME_MAX) || !sms_name_fits(c->name) ||
	    !text_fits(c->info, SMS_INFO_MAX))
		return CE_RANGE;
	for (i = 0; i < 32; i++)
		need += c->access_criteria >> i & 1;
	for (i = 0; i < npackages; i++) {
		if (packages[i] >= SMS_PACKAGES_MAX)
			return CE_RANGE;
		if (packages[i] >= 32) {
			need++;
			high = true;
		}
	}
	/* sms_subscribe's rule for packages >= 32. */
	if (high && (c->start < 0 || c->finish < c->start))
		return CE_RANGE;
	if (need > BULK_SUBS)
		return CE_LIMIT;
	if (b->check_bl) {
		bool bl = false;

		if ((r = store_blacklisted(b->s, c->serial, c->chip_id, &bl)) != 0)
			return r;
		if (bl)
			return CE_BLOCKED;
	}
	if ((b->ncard == SMS_BULK_ROWS || BULK_SUBS - b->nsub < need) && (r = sms_bulk_flush(b)) != 0)
		return r;

	i = b->ncard;
	memcpy(&b->card[i], c, offsetof(struct sms_card, info));
	memcpy(b->card[i].info, c->info, strlen(c->info) + 1);
	b->at_ms[i] = (int64_t)now_wall_ms();
	b->sub_id[i] = 0;
	if (c->name[0] || c->info[0]) {
		b->sub_id[i] = -1; /* a real id at flush */
		b->nnamed++;
	}
	for (unsigned bit = 0; bit < 32; bit++)
		if (c->access_criteria >> bit & 1)
			b->sub[b->nsub++] = (struct sms_subscription){ c->serial, bit, c->start, c->finish };
	for (size_t k = 0; k < npackages; k++)
		if (packages[k] >= 32)
			b->sub[b->nsub++] = (struct sms_subscription){ c->serial, packages[k], c->start, c->finish };
	snprintf(b->object[i], sizeof(b->object[i]), "card:%" PRIu64, c->serial);
	if ((r = bulk_snapshot(c, packages, npackages, &b->snap[i])) != 0)
		return r;

	/* One audit row per card: what sms_card_add, the mask change and each
	 * sms_subscribe would have written (ids only, no personal fields). */
	w = b->what[i];
	lo = (size_t)snprintf(w, AUDIT_MAX, "card add %" PRIu64 " chip=%s state=%d pair=%d access_criteria=%08" PRIX32
			      " period=%" PRId64 "..%" PRId64 "%s", c->serial, c->chip_id, (int)c->state, (int)c->pair,
			      c->access_criteria, c->start, c->finish, high ? " packages=" : "");
	for (size_t k = 0, first = 1; k < npackages && lo < AUDIT_MAX; k++) {
		int n;

		if (packages[k] < 32)
			continue;
		n = snprintf(w + lo, AUDIT_MAX - lo, "%s%" PRIu32, first ? "" : ",", packages[k]);
		first = 0;
		if (n < 0 || (size_t)n >= AUDIT_MAX - lo) {
			/* Cut at a whole number; say that the list goes on. */
			w[lo] = '\0';
			if (AUDIT_MAX - lo > 4)
				memcpy(w + lo, ",...", 5);
			break;
		}
		lo += (size_t)n;
	}
	b->ncard++;
	return 0;
}
