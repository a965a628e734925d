/*
 * store_feed.c - the SMS store's tables for the head-end (schema 2, store.h):
 * the card change feed (card_changes), per-card EMM sequence numbers
 * (emm_seq, shared by every node on one base), ECM/EMM generator
 * definitions (generators) and each node's live status (node_status).
 * Same SQL on both backends, parameters bound, one transaction per call
 * (or the caller's: sms_tx_begin).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/store_int.h"
#include "lib/util.h"

/* ---- change feed ------------------------------------------------------- */

int store_change(struct sms_store *s, uint64_t serial, const char *reason)
{
	struct db_val p[3] = { DBI(now_wall_ms()), DBI(serial), DBT(reason) };

	return s->ops->exec(s, "INSERT INTO card_changes (at_ms, serial, reason) VALUES (?, ?, ?)", p, 3, NULL, NULL,
			    NULL);
}

struct chg_ctx {
	int (*fn)(void *ctx, const struct sms_change *c);
	void *ctx;
	size_t count;
};

static int row_change(void *ctx, int n, const char *const *cols)
{
	struct chg_ctx *cc = ctx;
	struct sms_change c;

	if (n < 4)
		return CE_INTERNAL;
	c.id = store_col_i64(cols[0]);
	c.at_ms = store_col_i64(cols[1]);
	c.serial = (uint64_t)store_col_i64(cols[2]);
	store_copy_str(c.reason, sizeof(c.reason), cols[3]);
	cc->count++;
	return cc->fn ? cc->fn(cc->ctx, &c) : 0;
}

int sms_changes_since(struct sms_store *s, int64_t after_id, size_t max,
		      int (*fn)(void *ctx, const struct sms_change *c), void *ctx, size_t *count)
{
	struct chg_ctx cc = { fn, ctx, 0 };
	struct db_val p[2] = { DBI(after_id), DBI(max) };
	int r;

	if (count)
		*count = 0;
	if (max == 0 || max > 100000)
		return CE_RANGE;
	r = s->ops->exec(s, "SELECT id, at_ms, serial, reason FROM card_changes WHERE id > ? ORDER BY id LIMIT ?", p,
			 2, row_change, &cc, NULL);
	if (count)
		*count = cc.count;
	return r;
}

int sms_changes_last(struct sms_store *s, int64_t *id)
{
	*id = 0;
	return s->ops->exec(s, "SELECT COALESCE(MAX(id), 0) FROM card_changes", NULL, 0, store_row_int, id, NULL);
}

int sms_changes_prune(struct sms_store *s, int64_t before_ms, int64_t *removed)
{
	struct db_val p[1] = { DBI(before_ms) };
	int64_t n = 0;
	int r;

	if ((r = store_tx_begin(s)) != 0)
		return r;
	r = s->ops->exec(s, "DELETE FROM card_changes WHERE at_ms < ?", p, 1, NULL, NULL, &n);
	r = store_tx_end(s, r);
	if (removed)
		*removed = r == 0 ? n : 0;
	return r;
}

/* ---- EMM sequence numbers ---------------------------------------------- */

int sms_emm_seq_next(struct sms_store *s, uint64_t serial, uint32_t step, uint32_t want, uint64_t digest,
		     bool blocked, uint32_t *seq)
{
	int64_t v = -1;
	int r;

	*seq = 0;
	if (serial == 0 || serial > INT64_MAX || step == 0 || step > 2 || want < step)
		return CE_ARG;
	/* One statement: the row lock (PostgreSQL) or the write lock (SQLite)
	 * makes read-increment-write atomic across nodes. */
	struct db_val p[7] = { DBI(serial), DBI(want), DBI((int64_t)digest), DBI(blocked ? 1 : 0),
			       DBI(now_wall_ms()), DBI(step), DBI(step) };

	if ((r = store_tx_begin(s)) != 0)
		return r;
	r = s->ops->exec(s, "INSERT INTO emm_seq (serial, seq, digest, blocked, updated_ms) VALUES (?, ?, ?, ?, ?)"
			 " ON CONFLICT (serial) DO UPDATE SET"
			 " seq = CASE WHEN emm_seq.seq + ? > excluded.seq THEN emm_seq.seq + ? ELSE excluded.seq END,"
			 " digest = excluded.digest, blocked = excluded.blocked, updated_ms = excluded.updated_ms"
			 " RETURNING seq", p, 7, store_row_int, &v, NULL);
	if (r == 0 && (v < 1 || v > (int64_t)UINT32_MAX))
		r = CE_RANGE;
	r = store_tx_end(s, r);
	if (r == 0)
		*seq = (uint32_t)v;
	return r;
}

struct seq_ctx {
	int (*fn)(void *ctx, const struct sms_emm_seq *q);
	void *ctx;
	struct sms_emm_seq *one;
	size_t count;
};

static int row_seq(void *ctx, int n, const char *const *cols)
{
	struct seq_ctx *sc = ctx;
	struct sms_emm_seq q;
	struct sms_emm_seq *o = sc->one ? sc->one : &q;

	if (n < 4)
		return CE_INTERNAL;
	o->serial = (uint64_t)store_col_i64(cols[0]);
	o->seq = (uint32_t)store_col_i64(cols[1]);
	o->digest = (uint64_t)store_col_i64(cols[2]);
	o->blocked = store_col_i64(cols[3]) != 0;
	o->has_sent = n >= 8 && cols[4] != NULL;
	o->sent_packages = o->has_sent ? (uint32_t)store_col_i64(cols[4]) : 0;
	store_copy_str(o->sent_ext, sizeof(o->sent_ext), n >= 8 ? cols[5] : NULL);
	o->sent_start = n >= 8 ? store_col_i64(cols[6]) : 0;
	o->sent_finish = n >= 8 ? store_col_i64(cols[7]) : 0;
	sc->count++;
	return sc->fn ? sc->fn(sc->ctx, o) : 0;
}

int sms_emm_seq_get(struct sms_store *s, uint64_t serial, struct sms_emm_seq *out)
{
	struct seq_ctx sc = { .one = out };
	struct db_val p[1] = { DBI(serial > INT64_MAX ? 0 : serial) };
	int r;

	memset(out, 0, sizeof(*out));
	r = s->ops->exec(s, "SELECT serial, seq, digest, blocked, sent_packages, sent_ext, sent_start, sent_finish"
			 " FROM emm_seq WHERE serial = ?", p, 1, row_seq, &sc, NULL);
	if (r == 0 && sc.count == 0)
		r = CE_NOT_FOUND;
	return r;
}

int sms_emm_seq_list(struct sms_store *s, uint64_t after, size_t max,
		     int (*fn)(void *ctx, const struct sms_emm_seq *q), void *ctx, size_t *count)
{
	struct seq_ctx sc = { .fn = fn, .ctx = ctx };
	struct db_val p[2] = { DBI(after > INT64_MAX ? INT64_MAX : after), DBI(max) };
	int r;

	if (count)
		*count = 0;
	if (max == 0 || max > 100000)
		return CE_RANGE;
	r = s->ops->exec(s, "SELECT serial, seq, digest, blocked, sent_packages, sent_ext, sent_start, sent_finish"
			 " FROM emm_seq WHERE serial > ? ORDER BY serial LIMIT ?", p, 2, row_seq, &sc, NULL);
	if (count)
		*count = sc.count;
	return r;
}

int sms_emm_seq_import(struct sms_store *s, const struct sms_emm_seq *q)
{
	struct db_val p[5] = { DBI(q->serial), DBI(q->seq), DBI((int64_t)q->digest), DBI(q->blocked ? 1 : 0),
			       DBI(now_wall_ms()) };
	int r;

	if (q->serial == 0 || q->serial > INT64_MAX)
		return CE_RANGE;
	if ((r = store_tx_begin(s)) != 0)
		return r;
	r = s->ops->exec(s, "INSERT INTO emm_seq (serial, seq, digest, blocked, updated_ms) VALUES (?, ?, ?, ?, ?)"
			 " ON CONFLICT (serial) DO UPDATE SET seq = excluded.seq, digest = excluded.digest,"
			 " blocked = excluded.blocked, updated_ms = excluded.updated_ms WHERE emm_seq.seq < excluded.seq",
			 p, 5, NULL, NULL, NULL);
	return store_tx_end(s, r);
}

/* ---- the head-end's batched paths ---------------------------------------
 *
 * A carousel page's subscriptions in one query, and a tick's new sequence
 * numbers in statements of up to 64 rows (static SQL for 64, 8 and 1 rows
 * and each step, so each is prepared once), one transaction. */

struct range_ctx {
	struct sms_subscription *out;
	size_t max, n;
	bool overflow;
};

static int row_range(void *ctx, int n, const char *const *cols)
{
	struct range_ctx *rc = ctx;

	if (n < 4)
		return CE_INTERNAL;
	if (rc->n == rc->max) {
		rc->overflow = true;
		return 0;
	}
	rc->out[rc->n++] = (struct sms_subscription){ (uint64_t)store_col_i64(cols[0]), (uint32_t)store_col_i64(cols[1]),
						      store_col_i64(cols[2]), store_col_i64(cols[3]) };
	return 0;
}

int sms_subscription_range(struct sms_store *s, uint64_t after, uint64_t last, struct sms_subscription *out,
			   size_t max, size_t *n)
{
	struct range_ctx rc = { out, max, 0, false };
	struct db_val p[3] = { DBI(after > INT64_MAX ? INT64_MAX : after), DBI(last > INT64_MAX ? INT64_MAX : last),
			       DBI(max + 1) };
	int r;

	*n = 0;
	if (max == 0 || max > 100000)
		return CE_RANGE;
	r = s->ops->exec(s, "SELECT card, package, start_time, finish_time FROM subscriptions"
			 " WHERE card > ? AND card <= ? ORDER BY card, package LIMIT ?", p, 3, row_range, &rc, NULL);
	*n = rc.n;
	if (r != 0)
		return r;
	return rc.overflow ? CE_OVERFLOW : 0;
}

#define SQ_R2(x) x x
#define SQ_R4(x) SQ_R2(SQ_R2(x))
#define SQ_R8(x) SQ_R2(SQ_R4(x))
#define SQ_R7(x) x SQ_R2(x) SQ_R4(x)
#define SQ_R63(x) SQ_R7(x) SQ_R8(SQ_R7(x))
#define SEQ_INS "INSERT INTO emm_seq (serial, seq, digest, blocked, updated_ms, sent_packages, sent_ext, sent_start," \
	" sent_finish) VALUES "
#define SEQ_ROW "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
/* seq = max(want, stored + step), as sms_emm_seq_next; a row whose stored
 * number leaves no room is not touched (and not returned: seq 0). */
#define SEQ_END(step) " ON CONFLICT (serial) DO UPDATE SET" \
	" seq = CASE WHEN emm_seq.seq + " step " > excluded.seq THEN emm_seq.seq + " step " ELSE excluded.seq END," \
	" digest = excluded.digest, blocked = excluded.blocked, updated_ms = excluded.updated_ms," \
	" sent_packages = COALESCE(excluded.sent_packages, emm_seq.sent_packages)," \
	" sent_ext = CASE WHEN excluded.sent_packages IS NULL THEN emm_seq.sent_ext ELSE excluded.sent_ext END," \
	" sent_start = CASE WHEN excluded.sent_packages IS NULL THEN emm_seq.sent_start ELSE excluded.sent_start END," \
	" sent_finish = CASE WHEN excluded.sent_packages IS NULL THEN emm_seq.sent_finish ELSE excluded.sent_finish END" \
	" WHERE emm_seq.seq <= 4294967295 - " step " RETURNING serial, seq"
#define SEQ_SQL(rows, step) SEQ_INS rows SEQ_END(step)
#define SEQ_COLS 9
#define SEQ_CHUNK 64

static const size_t seq_rows[3] = { 64, 8, 1 };
static const char *const seq_sql[2][3] = {
	{ SEQ_SQL(SEQ_ROW SQ_R63(", " SEQ_ROW), "1"), SEQ_SQL(SEQ_ROW SQ_R7(", " SEQ_ROW), "1"), SEQ_SQL(SEQ_ROW, "1") },
	{ SEQ_SQL(SEQ_ROW SQ_R63(", " SEQ_ROW), "2"), SEQ_SQL(SEQ_ROW SQ_R7(", " SEQ_ROW), "2"), SEQ_SQL(SEQ_ROW, "2") },
};
_Static_assert(SEQ_CHUNK * SEQ_COLS <= DB_MAX_PARAMS, "the emm_seq statement's parameters");

struct seqn_ctx {
	struct sms_emm_seq_req *q;  /* the rows of one statement */
	size_t n;
};

static int row_seqn(void *ctx, int n, const char *const *cols)
{
	struct seqn_ctx *c = ctx;
	uint64_t serial;
	int64_t v;

	if (n < 2)
		return CE_INTERNAL;
	serial = (uint64_t)store_col_i64(cols[0]);
	v = store_col_i64(cols[1]);
	for (size_t i = 0; i < c->n; i++)
		if (c->q[i].serial == serial) {
			c->q[i].seq = v >= 1 && v <= (int64_t)UINT32_MAX ? (uint32_t)v : 0;
			return 0;
		}
	return CE_INTERNAL; /* a row we did not send */
}

/* Rows [0, n): one step, distinct serials, n <= 64. */
static int seq_chunk(struct sms_store *s, struct sms_emm_seq_req *q, size_t n, int64_t now)
{
	struct db_val p[SEQ_CHUNK * SEQ_COLS];
	char ext[SEQ_CHUNK][SMS_SENT_EXT_MAX * 6 + 1]; /* 24 KiB */
	size_t done = 0;
	int r;

	while (done < n) {
		int k = n - done >= seq_rows[0] ? 0 : n - done >= seq_rows[1] ? 1 : 2;
		size_t rows = seq_rows[k];
		struct seqn_ctx c = { q + done, rows };

		for (size_t i = 0; i < rows; i++) {
			const struct sms_emm_seq_req *e = &q[done + i];
			struct db_val *v = p + i * SEQ_COLS;

			v[0] = DBI(e->serial);
			v[1] = DBI(e->want);
			v[2] = DBI((int64_t)e->digest);
			v[3] = DBI(e->blocked ? 1 : 0);
			v[4] = DBI(now);
			ext[i][0] = '\0';
			for (size_t x = 0, o = 0; e->has_sent && x < e->sent_next && x < SMS_SENT_EXT_MAX; x++)
				o += (size_t)snprintf(ext[i] + o, sizeof(ext[i]) - o, "%s%u", x ? "," : "",
						      (unsigned)e->sent_ext[x]);
			v[5] = e->has_sent ? DBI(e->sent_packages) : (struct db_val){ .type = DB_NULL };
			v[6] = DBT(ext[i]);
			v[7] = DBI(e->has_sent ? e->sent_start : 0);
			v[8] = DBI(e->has_sent ? e->sent_finish : 0);
		}
		if ((r = s->ops->exec(s, seq_sql[q[done].step - 1][k], p, (int)rows * SEQ_COLS, row_seqn, &c, NULL)) != 0)
			return r;
		done += rows;
	}
	return 0;
}

int sms_emm_seq_next_many(struct sms_store *s, struct sms_emm_seq_req *q, size_t n)
{
	int64_t now = (int64_t)now_wall_ms();
	size_t a = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		if (q[i].serial == 0 || q[i].serial > INT64_MAX || q[i].step == 0 || q[i].step > 2 ||
		    q[i].want < q[i].step)
			return CE_ARG;
		q[i].seq = 0;
	}
	if (n == 0)
		return 0;
	if ((r = store_tx_begin(s)) != 0)
		return r;
	while (r == 0 && a < n) {
		size_t b = a + 1;

		/* a statement touches a row once: a serial seen again, or another
		 * step, starts the next statement (order kept) */
		while (b < n && b - a < SEQ_CHUNK && q[b].step == q[a].step) {
			bool dup = false;

			for (size_t j = a; j < b && !dup; j++)
				dup = q[j].serial == q[b].serial;
			if (dup)
				break;
			b++;
		}
		r = seq_chunk(s, q + a, b - a, now);
		a = b;
	}
	return store_tx_end(s, r);
}

/* ---- generators -------------------------------------------------------- */

static const char *const kind_names[] = { "ecmg", "emmg" };

static int gen_check(const struct sms_generator *g)
{
	size_t nl = strnlen(g->name, sizeof(g->name)), al = strnlen(g->address, sizeof(g->address));

	if ((unsigned)g->kind > SMS_GEN_EMMG || nl == 0 || !sms_name_fits(g->name) || al == 0 || al > SMS_ADDR_MAX ||
	    !sms_text_valid(g->name) || !sms_text_valid(g->address) || strchr(g->address, ' '))
		return CE_RANGE;
	if (g->kind == SMS_GEN_EMMG && (g->bandwidth_kbps == 0 || g->bandwidth_kbps > 65535))
		return CE_RANGE;
	if (g->kind == SMS_GEN_ECMG && (g->bandwidth_kbps != 0 || g->client_id != 0))
		return CE_RANGE;
	return 0;
}

static int gen_audit(struct sms_store *s, const char *who, const char *verb, int64_t id,
		     const struct sms_generator *g)
{
	char what[SMS_NAME_MAX + SMS_ADDR_MAX + 256]; /* the audit keeps the first 511 bytes */

	snprintf(what, sizeof(what), "generator %s %" PRId64 " kind=%s name=%s address=%s ca_system_id=%04X"
		 " client_id=%08" PRIX32 " kbps=%" PRIu32 " enabled=%d", verb, id, kind_names[g->kind], g->name,
		 g->address, (unsigned)g->ca_system_id, g->client_id, g->bandwidth_kbps, (int)g->enabled);
	return store_audit_text(s, who, "generator", "", what);
}

int sms_generator_add(struct sms_store *s, const struct sms_generator *g, const char *who, int64_t *id)
{
	int64_t now = (int64_t)now_wall_ms(), v = 0;
	int r;

	if (id)
		*id = 0;
	if ((r = gen_check(g)) != 0)
		return r;
	struct db_val p[9] = { DBT(kind_names[g->kind]), DBT(g->name), DBT(g->address), DBI(g->ca_system_id),
			       DBI(g->client_id), DBI(g->bandwidth_kbps), DBI(g->enabled ? 1 : 0), DBI(now), DBI(now) };

	if ((r = store_tx_begin(s)) != 0)
		return r;
	if ((r = s->ops->exec(s, "INSERT INTO generators (kind, name, address, ca_system_id, client_id,"
			      " bandwidth_kbps, enabled, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
			      " RETURNING id", p, 9, store_row_int, &v, NULL)) != 0)
		goto out;
	r = gen_audit(s, who, "add", v, g);
out:
	r = store_tx_end(s, r);
	if (r == 0 && id)
		*id = v;
	return r;
}

int sms_generator_update(struct sms_store *s, int64_t id, const struct sms_generator *g, const char *who)
{
	int64_t n = 0;
	int r;

	if ((r = gen_check(g)) != 0)
		return r;
	struct db_val p[9] = { DBT(kind_names[g->kind]), DBT(g->name), DBT(g->address), DBI(g->ca_system_id),
			       DBI(g->client_id), DBI(g->bandwidth_kbps), DBI(g->enabled ? 1 : 0), DBI(now_wall_ms()),
			       DBI(id) };

	if ((r = store_tx_begin(s)) != 0)
		return r;
	if ((r = s->ops->exec(s, "UPDATE generators SET kind = ?, name = ?, address = ?, ca_system_id = ?,"
			      " client_id = ?, bandwidth_kbps = ?, enabled = ?, updated_ms = ? WHERE id = ?", p, 9, NULL,
			      NULL, &n)) != 0)
		goto out;
	if (n == 0) {
		r = CE_NOT_FOUND;
		goto out;
	}
	r = gen_audit(s, who, "set", id, g);
out:
	return store_tx_end(s, r);
}

struct gen_ctx {
	int (*fn)(void *ctx, const struct sms_generator *g);
	void *ctx;
	struct sms_generator *one;
	size_t count;
};

#define GEN_SELECT "SELECT id, kind, name, address, ca_system_id, client_id, bandwidth_kbps, enabled FROM generators"

static int row_gen(void *ctx, int n, const char *const *cols)
{
	struct gen_ctx *gc = ctx;
	struct sms_generator g;
	struct sms_generator *o = gc->one ? gc->one : &g;

	if (n < 8)
		return CE_INTERNAL;
	memset(o, 0, sizeof(*o));
	o->id = store_col_i64(cols[0]);
	o->kind = cols[1] && strcmp(cols[1], "emmg") == 0 ? SMS_GEN_EMMG : SMS_GEN_ECMG;
	store_copy_str(o->name, sizeof(o->name), cols[2]);
	store_copy_str(o->address, sizeof(o->address), cols[3]);
	o->ca_system_id = (uint16_t)store_col_i64(cols[4]);
	o->client_id = (uint32_t)store_col_i64(cols[5]);
	o->bandwidth_kbps = (uint32_t)store_col_i64(cols[6]);
	o->enabled = store_col_i64(cols[7]) != 0;
	gc->count++;
	return gc->fn ? gc->fn(gc->ctx, o) : 0;
}

int sms_generator_get(struct sms_store *s, int64_t id, struct sms_generator *out)
{
	struct gen_ctx gc = { .one = out };
	struct db_val p[1] = { DBI(id) };
	int r;

	memset(out, 0, sizeof(*out));
	r = s->ops->exec(s, GEN_SELECT " WHERE id = ?", p, 1, row_gen, &gc, NULL);
	if (r == 0 && gc.count == 0)
		r = CE_NOT_FOUND;
	return r;
}

int sms_generator_first(struct sms_store *s, enum sms_gen_kind kind, struct sms_generator *out)
{
	struct gen_ctx gc = { .one = out };
	struct db_val p[1] = { DBT(kind_names[kind == SMS_GEN_EMMG]) };
	int r;

	memset(out, 0, sizeof(*out));
	r = s->ops->exec(s, GEN_SELECT " WHERE kind = ? AND enabled = 1 ORDER BY id LIMIT 1", p, 1, row_gen, &gc,
			 NULL);
	if (r == 0 && gc.count == 0)
		r = CE_NOT_FOUND;
	return r;
}

int sms_generator_list(struct sms_store *s, int kind, int64_t after, size_t max,
		       int (*fn)(void *ctx, const struct sms_generator *g), void *ctx, size_t *count)
{
	struct gen_ctx gc = { .fn = fn, .ctx = ctx };
	const char *k = kind < 0 ? "" : kind_names[kind == SMS_GEN_EMMG];
	struct db_val p[4] = { DBI(after), DBT(k), DBT(k), DBI(max) };
	int r;

	if (count)
		*count = 0;
	if (max == 0 || max > 1000 || kind < -1 || kind > SMS_GEN_EMMG)
		return CE_RANGE;
	r = s->ops->exec(s, GEN_SELECT " WHERE id > ? AND (? = '' OR kind = ?) ORDER BY id LIMIT ?", p, 4, row_gen,
			 &gc, NULL);
	if (count)
		*count = gc.count;
	return r;
}

/* ---- node status ------------------------------------------------------- */

int sms_node_status_put(struct sms_store *s, const char *node, const char *json)
{
	struct db_val p[3] = { DBT(node), DBI(now_wall_ms()), DBT(json) };
	int r;

	if (!node || !*node || strlen(node) > SMS_NAME_MAX || !json || strlen(json) > SMS_STATUS_MAX)
		return CE_RANGE;
	if ((r = store_tx_begin(s)) != 0)
		return r;
	r = s->ops->exec(s, "INSERT INTO node_status (node, updated_ms, status) VALUES (?, ?, ?)"
			 " ON CONFLICT (node) DO UPDATE SET updated_ms = excluded.updated_ms, status = excluded.status",
			 p, 3, NULL, NULL, NULL);
	return store_tx_end(s, r);
}

struct ns_ctx {
	int (*fn)(void *ctx, const char *node, int64_t updated_ms, const char *json);
	void *ctx;
};

static int row_ns(void *ctx, int n, const char *const *cols)
{
	struct ns_ctx *nc = ctx;

	if (n < 3)
		return CE_INTERNAL;
	return nc->fn(nc->ctx, cols[0] ? cols[0] : "", store_col_i64(cols[1]), cols[2] ? cols[2] : "{}");
}

int sms_node_status_list(struct sms_store *s,
			 int (*fn)(void *ctx, const char *node, int64_t updated_ms, const char *json), void *ctx)
{
	struct ns_ctx nc = { fn, ctx };

	return s->ops->exec(s, "SELECT node, updated_ms, status FROM node_status ORDER BY node LIMIT 1000", NULL, 0,
			    row_ns, &nc, NULL);
}
