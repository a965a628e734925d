/*
 * store_copy.c - one SMS store copied whole into another, across backends
 * (store.h "copying a store"; `castellan sms migrate`). Every table of the
 * schema, row by row, with its own ids, hashes and timestamps, so that API
 * keys (stored as SHA-256) stay valid, the audit chain still verifies
 * (every column the entry hash covers is copied as it is), EMM sequence
 * numbers carry on, and nothing is renumbered.
 *
 * How: the source is read in one transaction (REPEATABLE READ on
 * PostgreSQL: one snapshot), in key order, COPY_PAGE rows a query (keyset
 * paging, so PostgreSQL never hands over a whole table at once); the target
 * is written in one transaction, so a failed copy leaves it as it was. The
 * target must be empty (only the 32 packages a new store is made with)
 * unless SMS_COPY_OVERWRITE, which deletes its rows first in the same
 * transaction. On PostgreSQL each identity sequence is then set past the
 * copied ids. Values travel as text (both backends bind text parameters
 * and type them from the column).
 *
 * The digest of a table (sms_store_digest) is order-free: the sum, in four
 * 64-bit lanes, of the SHA-256 of each row's canonical encoding (per
 * column: 'N' for NULL, else 'V', a 4-byte big-endian length and the text),
 * so SQLite and PostgreSQL, which order text keys by different collations,
 * give the same digest for the same rows.
 *
 * COPY_TABLES lists the tables in foreign-key order; a table added to the
 * schema must be added here (tests/sms/test_migrate.c fails otherwise).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "sms/store_int.h"
#include "lib/log.h"
#include "lib/util.h"

#define COPY_PAGE 1000
#define COPY_KEY_MAX 2048 /* bytes of a key column's text kept between pages */

/* Keyset paging, one index range per page on both backends (an OR in the
 * WHERE would make SQLite scan and sort the table for every page). The
 * first page starts below every key: -1 (every integer key is >= 0; INT64_MIN
 * would not fit an INTEGER column on PostgreSQL), or "" for a text key (no
 * table of the store allows an empty text key). */
#define PAGE1(cols, t, k) "SELECT " cols " FROM " t " WHERE " k " > ? ORDER BY " k " LIMIT ?"
#define PAGE2(cols, t, k1, k2) \
	"SELECT " cols " FROM " t " WHERE (" k1 ", " k2 ") > (?, ?) ORDER BY " k1 ", " k2 " LIMIT ?"
#define INSERT(t, cols, qs) "INSERT INTO " t " (" cols ") VALUES (" qs ")"
#define SETVAL(t, k) \
	"SELECT setval(pg_get_serial_sequence('" t "', '" k "'), COALESCE((SELECT MAX(" k ") FROM " t "), 0) + 1, false)"
#define Q3 "?, ?, ?"
#define Q4 "?, ?, ?, ?"
#define Q5 "?, ?, ?, ?, ?"

struct copy_table {
	const char *name;
	int ncols;
	int nkeys;	   /* 1 or 2 leading key columns */
	bool text_key;	   /* the key columns are text (else integers) */
	const char *page;  /* PAGE1 / PAGE2 */
	const char *ins;   /* INSERT */
	const char *del;   /* DELETE FROM name */
	const char *count; /* rows that make the target "not empty" */
	const char *setval; /* PostgreSQL identity sequence, or NULL */
};

#define C_SUBSCRIBERS "id, name, info"
#define C_PACKAGES "id, name"
#define C_CARDS "serial, chip_id, state, pair, subscriber_id, start_time, finish_time, created_ms, updated_ms"
#define C_SUBS "card, package, start_time, finish_time"
#define C_CHANNELS "service_id, name, access_criteria"
#define C_USERS "id, name, created_ms"
#define C_KEYS "id, user_id, key_hash, scopes, created_ms, revoked"
#define C_AUDIT "id, at_ms, who, what, seq, action, object, snapshot, prev_hash, hash"
#define C_CHECKPOINTS "seq, at_ms, hash, key_id, sig"
#define C_BLACKLIST "kind, id, reason, at_ms, who"
#define C_CHANGES "id, at_ms, serial, reason"
#define C_EMMSEQ "serial, seq, digest, blocked, updated_ms, sent_packages, sent_ext, sent_start, sent_finish"
#define C_GENERATORS \
	"id, kind, name, address, ca_system_id, client_id, bandwidth_kbps, enabled, created_ms, updated_ms"
#define C_NODES "node, updated_ms, status"
#define C_OSD_FP \
	"id, target, value, flags, x_pct, y_pct, fg, bg, font_px, duration_ms, repeat_n, interval_s, start_s, end_s, created_ms"
#define C_OSD_MSG \
	"id, scope, group_id, card, flags, duration_s, fg, bg, font_px, text, start_s, expiry_s, created_ms"
#define C_USAGE "service_id, copy_control, retention_s, updated_ms"
#define C_PANEL "name, role, kdf_n, kdf_r, kdf_p, salt, hash, fails, locked_until, created_ms, updated_ms"

#define T1(name, cols, n, k, qs, setval) \
	{ name, n, 1, false, PAGE1(cols, name, k), INSERT(name, cols, qs), "DELETE FROM " name, \
	  "SELECT COUNT(*) FROM " name, setval }
#define T1_TEXT(name, cols, n, k, qs) \
	{ name, n, 1, true, PAGE1(cols, name, k), INSERT(name, cols, qs), "DELETE FROM " name, \
	  "SELECT COUNT(*) FROM " name, NULL }

static const struct copy_table tables[] = {
	T1("subscribers", C_SUBSCRIBERS, 3, "id", Q3, SETVAL("subscribers", "id")),
	/* a new store's 32 default packages do not make it "not empty" */
	{ "packages", 2, 1, false, PAGE1(C_PACKAGES, "packages", "id"), INSERT("packages", C_PACKAGES, "?, ?"),
	  "DELETE FROM packages",
	  "SELECT COUNT(*) FROM packages WHERE id >= 32 OR name <> 'package ' || CAST(id AS TEXT)", NULL },
	T1("cards", C_CARDS, 9, "serial", Q5 ", " Q4, NULL),
	{ "subscriptions", 4, 2, false, PAGE2(C_SUBS, "subscriptions", "card", "package"),
	  INSERT("subscriptions", C_SUBS, Q4), "DELETE FROM subscriptions", "SELECT COUNT(*) FROM subscriptions",
	  NULL },
	T1("channels", C_CHANNELS, 3, "service_id", Q3, NULL),
	T1("users", C_USERS, 3, "id", Q3, SETVAL("users", "id")),
	T1("api_keys", C_KEYS, 6, "id", Q3 ", " Q3, SETVAL("api_keys", "id")),
	T1("audit", C_AUDIT, 10, "id", Q5 ", " Q5, SETVAL("audit", "id")),
	T1("audit_checkpoints", C_CHECKPOINTS, 5, "seq", Q5, NULL),
	{ "blacklist", 5, 2, true, PAGE2(C_BLACKLIST, "blacklist", "kind", "id"), INSERT("blacklist", C_BLACKLIST, Q5),
	  "DELETE FROM blacklist", "SELECT COUNT(*) FROM blacklist", NULL },
	T1("card_changes", C_CHANGES, 4, "id", Q4, SETVAL("card_changes", "id")),
	T1("emm_seq", C_EMMSEQ, 9, "serial", Q5 ", " Q4, NULL),
	T1("generators", C_GENERATORS, 10, "id", Q5 ", " Q5, SETVAL("generators", "id")),
	T1_TEXT("node_status", C_NODES, 3, "node", Q3),
	T1_TEXT("panel_users", C_PANEL, 11, "name", Q5 ", " Q5 ", ?"),
	T1("osd_fingerprints", C_OSD_FP, 15, "id", Q5 ", " Q5 ", " Q5, SETVAL("osd_fingerprints", "id")),
	T1("osd_messages", C_OSD_MSG, 13, "id", Q5 ", " Q5 ", " Q3, SETVAL("osd_messages", "id")),
	T1("channel_usage", C_USAGE, 4, "service_id", Q4, NULL),
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))
_Static_assert(NTABLES == SMS_COPY_TABLES, "SMS_COPY_TABLES must count store_copy.c's tables");

const char *sms_copy_table_name(size_t i)
{
	return i < NTABLES ? tables[i].name : NULL;
}

/* ---- reading a table page by page ---------------------------------------- */

struct pager {
	const struct copy_table *t;
	char key[2][COPY_KEY_MAX];
	size_t rows_in_page;
	int64_t rows;
	int (*row)(void *ctx, int n, const char *const *cols);
	void *ctx;
};

static int pager_row(void *ctx, int n, const char *const *cols)
{
	struct pager *p = ctx;
	int r;

	if (n != p->t->ncols)
		return CE_INTERNAL;
	for (int k = 0; k < p->t->nkeys; k++) {
		if (!cols[k] || strlen(cols[k]) >= COPY_KEY_MAX)
			return CE_LIMIT; /* key columns are NOT NULL and short */
		snprintf(p->key[k], COPY_KEY_MAX, "%s", cols[k]);
	}
	if ((r = p->row(p->ctx, n, cols)) != 0)
		return r;
	p->rows_in_page++;
	p->rows++;
	return 0;
}

/* Every row of table t of s, in key order, to fn. */
static int table_scan(struct sms_store *s, const struct copy_table *t,
		      int (*fn)(void *ctx, int n, const char *const *cols), void *ctx, int64_t *rows)
{
	struct pager p = { .t = t, .row = fn, .ctx = ctx };
	bool first = true;
	int r;

	*rows = 0;
	do {
		/* integer keys bound as integers: SQLite compares an INTEGER
		 * column with a text value as text inside a row value */
		struct db_val k0 = t->text_key ? DBT(first ? "" : p.key[0]) : DBI(first ? -1 : store_col_i64(p.key[0]));
		struct db_val k1 = t->text_key ? DBT(first ? "" : p.key[1]) : DBI(first ? -1 : store_col_i64(p.key[1]));

		p.rows_in_page = 0;
		if (t->nkeys == 1) {
			struct db_val v[2] = { k0, DBI(COPY_PAGE) };

			r = s->ops->exec(s, t->page, v, 2, pager_row, &p, NULL);
		} else {
			struct db_val v[3] = { k0, k1, DBI(COPY_PAGE) };

			r = s->ops->exec(s, t->page, v, 3, pager_row, &p, NULL);
		}
		first = false;
	} while (r == 0 && p.rows_in_page == COPY_PAGE);
	*rows = p.rows;
	return r;
}

/* ---- the digest ---------------------------------------------------------- */

struct digest_ctx {
	EVP_MD_CTX *md;
	uint64_t lane[4];
};

static int digest_row(void *ctx, int n, const char *const *cols)
{
	struct digest_ctx *d = ctx;
	uint8_t h[32];
	unsigned hl = 0;
	int ok = EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);

	for (int i = 0; ok && i < n; i++) {
		if (!cols[i]) {
			ok = EVP_DigestUpdate(d->md, "N", 1);
		} else {
			size_t len = strlen(cols[i]);
			uint8_t hdr[5] = { 'V', (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
					   (uint8_t)len };

			ok = EVP_DigestUpdate(d->md, hdr, sizeof(hdr)) && EVP_DigestUpdate(d->md, cols[i], len);
		}
	}
	if (!ok || !EVP_DigestFinal_ex(d->md, h, &hl) || hl != 32)
		return CE_CRYPTO;
	for (int l = 0; l < 4; l++) {
		uint64_t v = 0;

		for (int b = 0; b < 8; b++)
			v = v << 8 | h[l * 8 + b];
		d->lane[l] += v;
	}
	return 0;
}

static void digest_out(const struct digest_ctx *d, uint8_t out[32])
{
	for (int l = 0; l < 4; l++)
		for (int b = 0; b < 8; b++)
			out[l * 8 + b] = (uint8_t)(d->lane[l] >> (56 - 8 * b));
}

/* End a read-only transaction of sms_tx_begin: roll back (nothing written). */
static void read_done(struct sms_store *s)
{
	int e = sms_tx_end(s, CE_STATE);

	(void)e;
}

int sms_store_digest(struct sms_store *s, struct sms_copy_table out[SMS_COPY_TABLES])
{
	struct digest_ctx d = { 0 };
	bool own_tx = !s->outer_tx;
	int r = 0;

	memset(out, 0, sizeof(*out) * SMS_COPY_TABLES);
	if (!(d.md = EVP_MD_CTX_new()))
		return CE_NOMEM;
	if (own_tx && (r = sms_tx_begin(s)) != 0)
		goto out;
	if (own_tx && store_is_pg(s) &&
	    (r = s->ops->script(s, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")) != 0)
		goto end;
	for (size_t i = 0; i < NTABLES; i++) {
		memset(d.lane, 0, sizeof(d.lane));
		out[i].name = tables[i].name;
		if ((r = table_scan(s, &tables[i], digest_row, &d, &out[i].rows)) != 0)
			goto end;
		digest_out(&d, out[i].digest);
	}
end:
	if (own_tx) /* read only: roll back either way */
		read_done(s);
out:
	EVP_MD_CTX_free(d.md);
	return r;
}

/* ---- the copy -------------------------------------------------------------- */

/* Rows are written COPY_BATCH_PARAMS values at a time with one multi-row
 * INSERT per batch (a PostgreSQL target pays one round trip per batch, not
 * per row: 14.6k rows/s one by one over a unix socket), the statement made
 * once per table from its single-row INSERT into batch_sql (static: the
 * backends cache prepared statements by the text's address, so the text
 * must outlive every connection; rewritten with the same bytes by each
 * copy, one copy at a time per process). A last part batch goes row by
 * row. */
#define COPY_BATCH_PARAMS 600
#define COPY_BATCH_SQL 4096
static char batch_sql[NTABLES][COPY_BATCH_SQL];

struct copy_ctx {
	struct sms_store *to;
	const struct copy_table *t;
	size_t ti;	   /* t's index */
	int per;	   /* rows per batch */
	int rows;	   /* rows queued */
	char *val[COPY_BATCH_PARAMS]; /* queued values (NULL: SQL NULL), owned */
	struct digest_ctx d;
};

/* "INSERT INTO t (cols) VALUES (?, ...)" repeated per rows times. */
static int batch_make(size_t ti, int per)
{
	const char *ins = tables[ti].ins, *tuple = strstr(ins, "VALUES (");
	size_t head, tl, o;

	if (!tuple)
		return CE_INTERNAL;
	tuple += strlen("VALUES ");
	head = (size_t)(tuple - ins);
	tl = strlen(tuple);
	if (head + (size_t)per * (tl + 2) + 1 > COPY_BATCH_SQL)
		return CE_INTERNAL;
	memcpy(batch_sql[ti], ins, head);
	o = head;
	for (int i = 0; i < per; i++) {
		if (i) {
			batch_sql[ti][o++] = ',';
			batch_sql[ti][o++] = ' ';
		}
		memcpy(batch_sql[ti] + o, tuple, tl);
		o += tl;
	}
	batch_sql[ti][o] = '\0';
	return 0;
}

static void batch_clear(struct copy_ctx *c)
{
	for (int i = 0; i < c->rows * c->t->ncols; i++) {
		free(c->val[i]);
		c->val[i] = NULL;
	}
	c->rows = 0;
}

/* Write what is queued: one statement for a full batch, else row by row. */
static int batch_flush(struct copy_ctx *c)
{
	struct db_val v[COPY_BATCH_PARAMS];
	int n = c->t->ncols, r = 0;

	for (int i = 0; i < c->rows * n; i++)
		v[i] = c->val[i] ? DBT(c->val[i]) : (struct db_val){ .type = DB_NULL };
	if (c->rows == c->per && c->per > 1) {
		r = c->to->ops->exec(c->to, batch_sql[c->ti], v, c->rows * n, NULL, NULL, NULL);
	} else {
		for (int k = 0; r == 0 && k < c->rows; k++)
			r = c->to->ops->exec(c->to, c->t->ins, v + k * n, n, NULL, NULL, NULL);
	}
	batch_clear(c);
	return r;
}

static int copy_row(void *ctx, int n, const char *const *cols)
{
	struct copy_ctx *c = ctx;
	int r;

	if (n != c->t->ncols || n > COPY_BATCH_PARAMS)
		return CE_INTERNAL;
	for (int i = 0; i < n; i++) {
		char **slot = &c->val[c->rows * n + i];

		if (cols[i] && !(*slot = strdup(cols[i])))
			return CE_NOMEM;
	}
	c->rows++;
	if (c->rows == c->per && (r = batch_flush(c)) != 0)
		return r;
	return digest_row(&c->d, n, cols);
}

/* Whether a and b are one database: SQLite, the same file (device and
 * inode); PostgreSQL, an advisory lock taken on a that b cannot take
 * (advisory locks are per database). Different backends never are. */
struct pragma_file {
	char path[1024];
};

static int row_db_file(void *ctx, int n, const char *const *cols)
{
	struct pragma_file *f = ctx;

	/* PRAGMA database_list: seq, name, file; the "main" row */
	if (n >= 3 && cols[1] && strcmp(cols[1], "main") == 0)
		store_copy_str(f->path, sizeof(f->path), cols[2]);
	return 0;
}

static int row_bool(void *ctx, int n, const char *const *cols)
{
	*(bool *)ctx = n > 0 && cols[0] && (strcmp(cols[0], "t") == 0 || strcmp(cols[0], "1") == 0);
	return 0;
}

static int same_database(struct sms_store *a, struct sms_store *b, bool *same)
{
	int r;

	*same = false;
	if (store_is_pg(a) != store_is_pg(b))
		return 0;
	if (!store_is_pg(a)) {
		struct pragma_file fa = { "" }, fb = { "" };
		struct stat sa, sb;

		if ((r = a->ops->exec(a, "PRAGMA database_list", NULL, 0, row_db_file, &fa, NULL)) != 0 ||
		    (r = b->ops->exec(b, "PRAGMA database_list", NULL, 0, row_db_file, &fb, NULL)) != 0)
			return r;
		if (!fa.path[0] || !fb.path[0]) /* in memory: never the same */
			return 0;
		*same = stat(fa.path, &sa) == 0 && stat(fb.path, &sb) == 0 && sa.st_dev == sb.st_dev &&
			sa.st_ino == sb.st_ino;
		return 0;
	}
	{
		uint64_t key = 0;
		bool got_a = false, got_b = false;
		struct db_val v[1];

		if (RAND_bytes((uint8_t *)&key, sizeof(key)) != 1)
			return CE_CRYPTO;
		v[0] = DBI((int64_t)(key >> 1));
		if ((r = a->ops->exec(a, "SELECT pg_try_advisory_lock(CAST(? AS BIGINT))", v, 1, row_bool, &got_a,
				      NULL)) != 0)
			return r;
		r = b->ops->exec(b, "SELECT pg_try_advisory_lock(CAST(? AS BIGINT))", v, 1, row_bool, &got_b, NULL);
		if (r == 0 && got_b)
			(void)b->ops->exec(b, "SELECT pg_advisory_unlock(CAST(? AS BIGINT))", v, 1, NULL, NULL, NULL);
		if (got_a)
			(void)a->ops->exec(a, "SELECT pg_advisory_unlock(CAST(? AS BIGINT))", v, 1, NULL, NULL, NULL);
		*same = r == 0 && got_a && !got_b;
		return r;
	}
}

int sms_store_copy(struct sms_store *from, struct sms_store *to, unsigned flags,
		   struct sms_copy_table out[SMS_COPY_TABLES], char *why, size_t why_cap)
{
	struct copy_ctx c = { .to = to };
	bool same = false, from_tx = false, to_tx = false;
	int r;

	memset(out, 0, sizeof(*out) * SMS_COPY_TABLES);
	if (why_cap)
		why[0] = '\0';
	if (from->outer_tx || to->outer_tx)
		return CE_STATE;
	if ((r = same_database(from, to, &same)) != 0)
		return r;
	if (same) {
		snprintf(why, why_cap, "the source and the target are the same database");
		return CE_ARG;
	}
	if (!(c.d.md = EVP_MD_CTX_new()))
		return CE_NOMEM;
	if ((r = sms_tx_begin(from)) != 0)
		goto out;
	from_tx = true;
	if (store_is_pg(from) &&
	    (r = from->ops->script(from, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")) != 0)
		goto out;
	if ((r = sms_tx_begin(to)) != 0)
		goto out;
	to_tx = true;
	/* Not empty: refuse, unless told to replace what is there. */
	for (size_t i = 0; i < NTABLES; i++) {
		int64_t n = 0;

		if ((r = to->ops->exec(to, tables[i].count, NULL, 0, store_row_int, &n, NULL)) != 0)
			goto out;
		if (n > 0 && !(flags & SMS_COPY_OVERWRITE)) {
			snprintf(why, why_cap, "the target is not empty: table %s holds %" PRId64 " row%s",
				 tables[i].name, n, n == 1 ? "" : "s");
			r = CE_EXISTS;
			goto out;
		}
	}
	for (size_t i = NTABLES; i-- > 0;)
		if ((r = to->ops->exec(to, tables[i].del, NULL, 0, NULL, NULL, NULL)) != 0)
			goto out;
	for (size_t i = 0; i < NTABLES; i++) {
		c.t = &tables[i];
		c.ti = i;
		c.per = COPY_BATCH_PARAMS / tables[i].ncols;
		if (c.per > 64)
			c.per = 64; /* SQLite's statements stay short */
		if ((r = batch_make(i, c.per)) != 0)
			goto out;
		memset(c.d.lane, 0, sizeof(c.d.lane));
		out[i].name = tables[i].name;
		r = table_scan(from, &tables[i], copy_row, &c, &out[i].rows);
		if (r == 0)
			r = batch_flush(&c);
		if (r != 0) {
			snprintf(why, why_cap, "table %s, after %" PRId64 " rows: %s", tables[i].name, out[i].rows,
				 err_str(r));
			goto out;
		}
		digest_out(&c.d, out[i].digest);
		if (store_is_pg(to) && tables[i].setval &&
		    (r = to->ops->exec(to, tables[i].setval, NULL, 0, NULL, NULL, NULL)) != 0)
			goto out;
		LOG_INFO("sms", "migrate: %s: %" PRId64 " rows", tables[i].name, out[i].rows);
	}
	r = 0;
out:
	if (to_tx) {
		int e = sms_tx_end(to, r);

		if (r == 0 && e != 0) {
			snprintf(why, why_cap, "commit: %s", err_str(e));
			r = e;
		}
	}
	if (from_tx)
		read_done(from);
	if (c.t)
		batch_clear(&c);
	EVP_MD_CTX_free(c.d.md);
	return r;
}
