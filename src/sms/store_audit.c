/*
 * store_audit.c - the SMS audit log as a hash chain (schema 4), its signed
 * checkpoints, its verification, card snapshots and the blacklist.
 *
 * Every audit entry is appended inside the transaction of the change it
 * records (store.c's audit helpers call store_audit_append), so the change
 * and its entry commit together or not at all. Entry n (seq n, from 1, no
 * gaps) carries prev_hash = hash of entry n - 1 (32 zero bytes for n = 1) and
 *
 *   hash = SHA-256("CSTLAUD1" || prev_hash[32] || seq u64 BE || at_ms i64 BE
 *                  || for who, action, object, details, snapshot in turn:
 *                     len u32 BE || bytes)
 *
 * (hex in the table). Appends are serialized: SQLite's BEGIN IMMEDIATE
 * already orders writers; on PostgreSQL the first append of a transaction
 * takes a transaction-scoped advisory lock (AUDIT_PG_LOCK), held to the
 * commit, before its row goes in. Each connection keeps the head it last
 * committed or read; an append chains to it with a conditional INSERT (only
 * if entry seq - 1 with that hash exists and seq is free; on PostgreSQL the
 * same statement takes the lock first) and, when another connection has
 * appended meanwhile, reads the head under the lock and chains again. So a
 * write costs no statement of its own for the lock or the head: one round
 * trip (the INSERT) on top of the card's snapshot. The bulk path
 * (store_bulk.c) reads the head under the lock once per transaction.
 *
 * Card entries carry a snapshot of the card after the change ("state=S
 * bl=B pair=P subs=PKG:START:FINISH,... chip=ID", or "deleted"): the
 * point-in-time reports (report.c) read the card's state at any past time
 * from the log, not from the current tables.
 *
 * Checkpoints: (seq, at_ms, hash of entry seq) signed with an Ed25519 audit
 * key: sig over "CSTLACP1" || seq u64 BE || hash[32] || at_ms i64 BE. Kept
 * in audit_checkpoints and, by the CLI, in an append-only file outside the
 * database, so cutting entries off the end (and the checkpoints with them)
 * is still seen. docs/audit.md has the whole format.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "sms/store_int.h"
#include "crypto/pk.h"
#include "lib/cursor.h"
#include "lib/log.h"
#include "lib/util.h"

#define AUDIT_PG_LOCK 7240302
#define VERIFY_PAGE 5000

/* ---- hashing ----------------------------------------------------------- */

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static int md_field(EVP_MD_CTX *md, const char *t)
{
	size_t n = t ? strlen(t) : 0;
	uint8_t l[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };

	return EVP_DigestUpdate(md, l, 4) == 1 && (n == 0 || EVP_DigestUpdate(md, t, n) == 1) ? 0 : CE_CRYPTO;
}

static int entry_hash(EVP_MD_CTX *md, const EVP_MD *sha, const struct sms_audit_entry *e, uint8_t out[32])
{
	uint8_t hdr[8 + 32 + 16];
	int r;

	memcpy(hdr, "CSTLAUD1", 8);
	memcpy(hdr + 8, e->prev_hash, 32);
	put_be64(hdr + 40, (uint64_t)e->seq);
	put_be64(hdr + 48, (uint64_t)e->at_ms);
	if (EVP_DigestInit_ex(md, sha, NULL) != 1 || EVP_DigestUpdate(md, hdr, sizeof(hdr)) != 1)
		return CE_CRYPTO;
	if ((r = md_field(md, e->who)) != 0 || (r = md_field(md, e->action)) != 0 || (r = md_field(md, e->object)) != 0 ||
	    (r = md_field(md, e->details)) != 0 || (r = md_field(md, e->snapshot)) != 0)
		return r;
	return EVP_DigestFinal_ex(md, out, NULL) == 1 ? 0 : CE_CRYPTO;
}

int sms_audit_entry_hash(const struct sms_audit_entry *e, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int r;

	if (!md)
		return CE_NOMEM;
	r = entry_hash(md, EVP_sha256(), e, out);
	EVP_MD_CTX_free(md);
	return r;
}

/* The same with the connection's digest context and SHA-256, fetched once
 * (EVP_sha256() and a context per entry cost more than the hash). */
static int store_hash(struct sms_store *s, const struct sms_audit_entry *e, uint8_t out[32])
{
	if (!s->sha256 && !(s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)))
		return CE_CRYPTO;
	if (!s->audit_md && !(s->audit_md = EVP_MD_CTX_new()))
		return CE_NOMEM;
	return entry_hash(s->audit_md, s->sha256, e, out);
}

static void cp_message(int64_t seq, const uint8_t hash[32], int64_t at_ms, uint8_t msg[56])
{
	memcpy(msg, "CSTLACP1", 8);
	put_be64(msg + 8, (uint64_t)seq);
	memcpy(msg + 16, hash, 32);
	put_be64(msg + 48, (uint64_t)at_ms);
}

/* ---- append ------------------------------------------------------------ */

struct head_row {
	int64_t seq;
	char hash[65];
	bool found;
};

static int row_head(void *ctx, int n, const char *const *cols)
{
	struct head_row *h = ctx;

	if (n < 2)
		return CE_INTERNAL;
	h->seq = store_col_i64(cols[0]);
	store_copy_str(h->hash, sizeof(h->hash), cols[1]);
	h->found = true;
	return 0;
}

/* PostgreSQL: the transaction's append lock, before the head is read (a
 * statement of its own: READ COMMITTED reads with the snapshot taken when a
 * statement starts, so the head must be read by a later statement). */
static int head_lock(struct sms_store *s)
{
	struct db_val p[1] = { DBI(AUDIT_PG_LOCK) };
	int r;

	if (!store_is_pg(s) || s->audit_locked)
		return 0;
	if ((r = s->ops->exec(s, "SELECT pg_advisory_xact_lock(?)", p, 1, NULL, NULL, NULL)) == 0)
		s->audit_locked = true;
	return r;
}

void store_audit_tx_start(struct sms_store *s)
{
	s->audit_head_ok = false;
	s->audit_locked = false;
}

void store_audit_tx_committed(struct sms_store *s)
{
	if (!s->audit_head_ok)
		return; /* nothing appended or read: the cache stays */
	s->audit_cache_ok = true;
	s->audit_cache_seq = s->audit_seq;
	memcpy(s->audit_cache_hash, s->audit_hash, 32);
}

static int head_set(struct sms_store *s, bool found, int64_t seq, const char *hash)
{
	memset(s->audit_hash, 0, 32);
	s->audit_seq = 0;
	if (found) {
		if (!hash || strlen(hash) != 64 || hex_decode(hash, s->audit_hash, 32) != 0)
			return CE_FORMAT; /* a broken head: nothing may be chained to it */
		s->audit_seq = seq;
	}
	s->audit_head_ok = true;
	return 0;
}

/* Lock (PostgreSQL) and read the chain's head into the connection's cache. */
static int head_load(struct sms_store *s)
{
	struct head_row h = { 0 };
	int r;

	if (s->audit_head_ok)
		return 0;
	if ((r = head_lock(s)) != 0)
		return r;
	if ((r = s->ops->exec(s, "SELECT seq, hash FROM audit WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1", NULL,
			      0, row_head, &h, NULL)) != 0)
		return r;
	return head_set(s, h.found, h.seq, h.hash);
}

int store_audit_chain_next(struct sms_store *s, struct sms_audit_entry *e, char prev_hex[65], char hash_hex[65])
{
	uint8_t h[32];
	int r;

	if ((r = head_load(s)) != 0)
		return r;
	e->seq = s->audit_seq + 1;
	memcpy(e->prev_hash, s->audit_hash, 32);
	if ((r = store_hash(s, e, h)) != 0)
		return r;
	hex_encode(e->prev_hash, 32, prev_hex);
	hex_encode(h, 32, hash_hex);
	memcpy(e->hash, h, 32);
	s->audit_seq = e->seq;
	memcpy(s->audit_hash, h, 32);
	return 0;
}

/* The entry's row, only if it goes right after (seq - 1, prev_hash) and
 * that place is free: 1 row changed, or 0 when the head has moved on (or
 * the cached head is not in the table). On PostgreSQL the first append of
 * a transaction takes the append lock in the same statement, before the
 * row is inserted (every append holds it while inserting, so once it is
 * held the head read next cannot move). */
static int insert_entry(struct sms_store *s, const struct sms_audit_entry *e, const char *prev_hex,
			const char *hash_hex, int64_t *changes)
{
	/* the row's 9 values, [the lock's key,] the place's 3 */
	struct db_val p[13] = { DBI(e->at_ms), DBT(e->who), DBT(e->details), DBI(e->seq), DBT(e->action),
				DBT(e->object), DBT(e->snapshot), DBT(prev_hex), DBT(hash_hex), DBI(AUDIT_PG_LOCK),
				DBI(e->seq - 1), DBI(e->seq - 1), DBT(prev_hex) };

#define AUDIT_INSERT_COLS \
	"INSERT INTO audit (at_ms, who, what, seq, action, object, snapshot, prev_hash, hash)" \
	" SELECT CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT)," \
	" CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT)"
#define AUDIT_INSERT_WHERE \
	" WHERE (CAST(? AS BIGINT) = 0 OR EXISTS (SELECT 1 FROM audit a WHERE a.seq = CAST(? AS BIGINT)" \
	" AND a.hash = CAST(? AS TEXT))) ON CONFLICT (seq) DO NOTHING"
	if (store_is_pg(s) && !s->audit_locked)
		return s->ops->exec(s, AUDIT_INSERT_COLS " FROM (SELECT pg_advisory_xact_lock(CAST(? AS BIGINT))) l"
				    AUDIT_INSERT_WHERE, p, 13, NULL, NULL, changes);
	p[9] = p[10];
	p[10] = p[11];
	p[11] = p[12];
	return s->ops->exec(s, AUDIT_INSERT_COLS AUDIT_INSERT_WHERE, p, 12, NULL, NULL, changes);
#undef AUDIT_INSERT_COLS
#undef AUDIT_INSERT_WHERE
}

int store_audit_append(struct sms_store *s, const char *who, const char *action, const char *object,
		       const char *details, const char *snapshot)
{
	struct sms_audit_entry e = { 0 };
	uint8_t h[32];
	char prev_hex[65], hash_hex[65];
	int r;

	e.at_ms = (int64_t)now_wall_ms();
	store_copy_str(e.who, sizeof(e.who), who ? who : "?");
	e.action = action ? action : "";
	e.object = object ? object : "";
	e.details = details ? details : "";
	e.snapshot = snapshot ? snapshot : "";
	if (!s->audit_head_ok && s->audit_cache_ok) {
		/* chain to the cached head; the INSERT checks it still is the head */
		e.seq = s->audit_cache_seq + 1;
		memcpy(e.prev_hash, s->audit_cache_hash, 32);
	} else {
		if ((r = head_load(s)) != 0)
			return r;
		e.seq = s->audit_seq + 1;
		memcpy(e.prev_hash, s->audit_hash, 32);
	}
	for (int attempt = 0;; attempt++) {
		int64_t n = 0;

		if ((r = store_hash(s, &e, h)) != 0)
			return r;
		hex_encode(e.prev_hash, 32, prev_hex);
		hex_encode(h, 32, hash_hex);
		if ((r = insert_entry(s, &e, prev_hex, hash_hex, &n)) != 0)
			return r;
		if (n == 1)
			break;
		/* The head moved on (another connection appended) or is not
		 * what we had: read it under the lock and chain again. Once the
		 * lock is held (or on SQLite, the write lock) the second try
		 * cannot lose, unless the table is being altered under us. */
		if (attempt >= 2)
			return CE_INTERNAL;
		s->audit_head_ok = false;
		s->audit_cache_ok = false;
		if ((r = head_load(s)) != 0)
			return r;
		e.seq = s->audit_seq + 1;
		memcpy(e.prev_hash, s->audit_hash, 32);
	}
	if (store_is_pg(s))
		s->audit_locked = true; /* the row came out of the lock's subquery */
	s->audit_seq = e.seq;
	memcpy(s->audit_hash, h, 32);
	s->audit_head_ok = true;
	return 0;
}

/* ---- card snapshots ---------------------------------------------------- */

struct snap {
	char *buf;
	size_t len, cap;
	bool found, bad;
	bool with_head, head_found, head_seen; /* the combined query's chain head columns */
	int64_t head_seq;
	char head_hash[65];
	char chip[SMS_CHIP_ID_MAX + 1];
	int state, bl, pair;
	size_t nsubs;
};

static void snap_put(struct snap *x, const char *t)
{
	size_t n = strlen(t);

	if (x->bad)
		return;
	if (x->len + n + 1 > x->cap) {
		size_t cap = (x->cap ? x->cap * 2 : 256) + n;
		char *b = realloc(x->buf, cap);

		if (!b) {
			x->bad = true;
			return;
		}
		x->buf = b;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, t, n + 1);
	x->len += n;
}

static int row_snap(void *ctx, int n, const char *const *cols)
{
	struct snap *x = ctx;
	char t[80];

	if (n < (x->with_head ? 9 : 7))
		return CE_INTERNAL;
	if (x->with_head && !x->head_seen) {
		x->head_seen = true;
		if (cols[7]) {
			x->head_found = true;
			x->head_seq = store_col_i64(cols[7]);
			store_copy_str(x->head_hash, sizeof(x->head_hash), cols[8]);
		}
	}
	if (!cols[0])
		return 0; /* no such card (the head's row of the combined query) */
	if (!x->found) {
		x->found = true;
		x->state = (int)store_col_i64(cols[0]);
		x->pair = (int)store_col_i64(cols[1]);
		store_copy_str(x->chip, sizeof(x->chip), cols[2]);
		x->bl = store_col_i64(cols[3]) != 0;
		snprintf(t, sizeof(t), "state=%d bl=%d pair=%d subs=", x->state, x->bl, x->pair);
		snap_put(x, t);
	}
	if (cols[4]) {
		snprintf(t, sizeof(t), "%s%" PRId64 ":%" PRId64 ":%" PRId64, x->nsubs ? "," : "", store_col_i64(cols[4]),
			 store_col_i64(cols[5]), store_col_i64(cols[6]));
		snap_put(x, t);
		x->nsubs++;
	}
	return 0;
}

/* The card's snapshot as the log keeps it (malloc'ed into *out); *bl:
 * the card or its box is blacklisted. */
static int card_snapshot(struct sms_store *s, uint64_t serial, char **out, bool *bl)
{
	struct snap x = { 0 };
	struct db_val p[1] = { DBI(serial > INT64_MAX ? 0 : serial) };
	int r;

	*out = NULL;
	if (s->audit_head_ok || s->audit_cache_ok) {
		r = s->ops->exec(s, "SELECT c.state, c.pair, c.chip_id,"
				 " (SELECT COUNT(*) FROM blacklist b WHERE (b.kind = 'card' AND b.id = CAST(c.serial AS TEXT))"
				 "  OR (b.kind = 'box' AND c.chip_id <> '' AND b.id = c.chip_id)),"
				 " u.package, u.start_time, u.finish_time"
				 " FROM cards c LEFT JOIN subscriptions u ON u.card = c.serial WHERE c.serial = ?"
				 " ORDER BY u.package", p, 1, row_snap, &x, NULL);
	} else {
		/* The first entry of a transaction: lock (PostgreSQL), then the
		 * card and the chain's head in one statement (a round trip less). */
		if ((r = head_lock(s)) != 0)
			return r;
		x.with_head = true;
		r = s->ops->exec(s, "SELECT c.state, c.pair, c.chip_id,"
				 " (SELECT COUNT(*) FROM blacklist b WHERE (b.kind = 'card' AND b.id = CAST(c.serial AS TEXT))"
				 "  OR (b.kind = 'box' AND c.chip_id <> '' AND b.id = c.chip_id)),"
				 " u.package, u.start_time, u.finish_time,"
				 " (SELECT seq FROM audit WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1),"
				 " (SELECT hash FROM audit WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1)"
				 " FROM (SELECT 1 AS one) d LEFT JOIN cards c ON c.serial = ?"
				 " LEFT JOIN subscriptions u ON u.card = c.serial ORDER BY u.package", p, 1, row_snap, &x, NULL);
		if (r == 0 && !x.head_seen)
			r = CE_INTERNAL; /* the one-row side always gives a row */
		if (r == 0 && (r = head_set(s, x.head_found, x.head_seq, x.head_hash)) != 0) {
			free(x.buf);
			return r;
		}
	}
	if (r == 0 && !x.found)
		snap_put(&x, "deleted");
	else if (r == 0) {
		snap_put(&x, " chip=");
		snap_put(&x, x.chip);
	}
	if (r == 0 && x.bad)
		r = CE_NOMEM;
	if (r != 0) {
		free(x.buf);
		return r;
	}
	*out = x.buf;
	*bl = x.bl != 0;
	return 0;
}

int store_audit_card(struct sms_store *s, const char *who, const char *action, uint64_t serial, const char *details,
		     bool refuse_bl)
{
	char obj[32];
	char *snap = NULL;
	bool bl = false;
	int r;

	snprintf(obj, sizeof(obj), "card:%" PRIu64, serial);
	if ((r = card_snapshot(s, serial, &snap, &bl)) != 0)
		return r;
	if (bl && refuse_bl) {
		free(snap);
		return CE_BLOCKED; /* the caller's transaction rolls the change back */
	}
	r = store_audit_append(s, who, action, obj, details, snap);
	free(snap);
	return r;
}

/* ---- migration 4 (called by store.c inside the migrations' transaction) */

static int column_exists(struct sms_store *s, const char *table, const char *col, bool *yes)
{
	int64_t n = 0;
	struct db_val p[2] = { DBT(table), DBT(col) };
	int r;

	if (store_is_pg(s))
		r = s->ops->exec(s, "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema()"
				 " AND table_name = ? AND column_name = ?", p, 2, store_row_int, &n, NULL);
	else
		r = s->ops->exec(s, "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?", p, 2, store_row_int, &n,
				 NULL);
	*yes = n > 0;
	return r;
}

static const struct {
	const char *table, *col, *ddl;
} mig4_cols[] = {
	{ "audit", "seq", "ALTER TABLE audit ADD COLUMN seq BIGINT" },
	{ "audit", "action", "ALTER TABLE audit ADD COLUMN action TEXT NOT NULL DEFAULT ''" },
	{ "audit", "object", "ALTER TABLE audit ADD COLUMN object TEXT NOT NULL DEFAULT ''" },
	{ "audit", "snapshot", "ALTER TABLE audit ADD COLUMN snapshot TEXT NOT NULL DEFAULT ''" },
	{ "audit", "prev_hash", "ALTER TABLE audit ADD COLUMN prev_hash TEXT NOT NULL DEFAULT ''" },
	{ "audit", "hash", "ALTER TABLE audit ADD COLUMN hash TEXT NOT NULL DEFAULT ''" },
	{ "emm_seq", "sent_packages", "ALTER TABLE emm_seq ADD COLUMN sent_packages BIGINT" },
	{ "emm_seq", "sent_ext", "ALTER TABLE emm_seq ADD COLUMN sent_ext TEXT NOT NULL DEFAULT ''" },
	{ "emm_seq", "sent_start", "ALTER TABLE emm_seq ADD COLUMN sent_start BIGINT NOT NULL DEFAULT 0" },
	{ "emm_seq", "sent_finish", "ALTER TABLE emm_seq ADD COLUMN sent_finish BIGINT NOT NULL DEFAULT 0" },
};

#define MIG4_TABLES \
	"CREATE UNIQUE INDEX IF NOT EXISTS audit_seq ON audit (seq);" \
	"CREATE INDEX IF NOT EXISTS audit_object ON audit (object, seq);" \
	"CREATE TABLE IF NOT EXISTS audit_checkpoints (seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL," \
	" hash TEXT NOT NULL, key_id TEXT NOT NULL, sig TEXT NOT NULL);" \
	"CREATE TABLE IF NOT EXISTS blacklist (kind TEXT NOT NULL CHECK (kind IN ('card', 'box'))," \
	" id TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', at_ms BIGINT NOT NULL, who TEXT NOT NULL," \
	" PRIMARY KEY (kind, id));"

struct legacy_row {
	int64_t id, at_ms;
	char who[SMS_WHO_MAX + 1];
	char *what;
};

struct legacy_page {
	struct legacy_row *rows;
	size_t n, max;
};

static int row_legacy(void *ctx, int n, const char *const *cols)
{
	struct legacy_page *pg = ctx;
	struct legacy_row *l;

	if (n < 4)
		return CE_INTERNAL;
	if (pg->n >= pg->max)
		return CE_OVERFLOW;
	l = &pg->rows[pg->n];
	l->id = store_col_i64(cols[0]);
	l->at_ms = store_col_i64(cols[1]);
	store_copy_str(l->who, sizeof(l->who), cols[2]);
	if (!(l->what = strdup(cols[3] ? cols[3] : "")))
		return CE_NOMEM;
	pg->n++;
	return 0;
}

/* Chain the rows written before schema 4 (seq NULL), in id order, keeping
 * their time and text; action "legacy". */
static int chain_legacy(struct sms_store *s)
{
	struct legacy_row rows[500];
	int r = 0;

	for (;;) {
		struct legacy_page pg = { rows, 0, 500 };

		r = s->ops->exec(s, "SELECT id, at_ms, who, what FROM audit WHERE seq IS NULL ORDER BY id LIMIT 500", NULL,
				 0, row_legacy, &pg, NULL);
		for (size_t i = 0; r == 0 && i < pg.n; i++) {
			struct sms_audit_entry e = { 0 };
			uint8_t h[32];
			char prev_hex[65], hash_hex[65];

			if ((r = head_load(s)) != 0)
				break;
			e.seq = s->audit_seq + 1;
			e.at_ms = rows[i].at_ms;
			memcpy(e.who, rows[i].who, sizeof(e.who));
			e.action = "legacy";
			e.object = "";
			e.details = rows[i].what;
			e.snapshot = "";
			memcpy(e.prev_hash, s->audit_hash, 32);
			if ((r = store_hash(s, &e, h)) != 0)
				break;
			hex_encode(e.prev_hash, 32, prev_hex);
			hex_encode(h, 32, hash_hex);
			struct db_val p[5] = { DBI(e.seq), DBT("legacy"), DBT(prev_hex), DBT(hash_hex), DBI(rows[i].id) };

			if ((r = s->ops->exec(s, "UPDATE audit SET seq = ?, action = ?, prev_hash = ?, hash = ? WHERE id = ?",
					      p, 5, NULL, NULL, NULL)) != 0)
				break;
			s->audit_seq = e.seq;
			memcpy(s->audit_hash, h, 32);
		}
		for (size_t i = 0; i < pg.n; i++)
			free(rows[i].what);
		if (r != 0 || pg.n < 500)
			return r;
	}
}

struct serial_page {
	uint64_t v[1000];
	size_t n;
};

static int row_serial(void *ctx, int n, const char *const *cols)
{
	struct serial_page *sp = ctx;

	if (n < 1 || sp->n >= 1000)
		return CE_INTERNAL;
	sp->v[sp->n++] = (uint64_t)store_col_i64(cols[0]);
	return 0;
}

/* One "card.baseline" entry per existing card (its snapshot at the
 * migration), unless the log already has one for it: the point-in-time
 * reports start from there. */
static int baseline_cards(struct sms_store *s)
{
	uint64_t after = 0;
	int r;

	for (;;) {
		struct serial_page sp = { .n = 0 };
		struct db_val p[1] = { DBI(after) };

		if ((r = s->ops->exec(s, "SELECT serial FROM cards WHERE serial > ? ORDER BY serial LIMIT 1000", p, 1,
				      row_serial, &sp, NULL)) != 0)
			return r;
		for (size_t i = 0; i < sp.n; i++) {
			char obj[32];
			int64_t have = 0;

			snprintf(obj, sizeof(obj), "card:%" PRIu64, sp.v[i]);
			struct db_val q[1] = { DBT(obj) };

			if ((r = s->ops->exec(s, "SELECT COUNT(*) FROM audit WHERE object = ? AND snapshot <> ''", q, 1,
					      store_row_int, &have, NULL)) != 0)
				return r;
			if (!have && (r = store_audit_card(s, "migration", "card.baseline", sp.v[i],
							   "card state at schema 4", false)) != 0)
				return r;
		}
		if (sp.n < 1000)
			return 0;
		after = sp.v[sp.n - 1];
	}
}

int store_audit_migrate4(struct sms_store *s)
{
	int r;

	for (size_t i = 0; i < sizeof(mig4_cols) / sizeof(mig4_cols[0]); i++) {
		bool yes = false;

		if ((r = column_exists(s, mig4_cols[i].table, mig4_cols[i].col, &yes)) != 0)
			return r;
		if (!yes && (r = s->ops->script(s, mig4_cols[i].ddl)) != 0)
			return r;
	}
	if ((r = s->ops->script(s, MIG4_TABLES)) != 0)
		return r;
	s->audit_head_ok = false;
	if ((r = chain_legacy(s)) != 0 || (r = baseline_cards(s)) != 0)
		return r;
	return 0;
}

/* ---- listing and verification ------------------------------------------ */

struct full_ctx {
	int (*fn)(void *ctx, const struct sms_audit_entry *e);
	void *ctx;
	int64_t last;
	size_t n;
};

static int row_full(void *ctx, int n, const char *const *cols)
{
	struct full_ctx *fc = ctx;
	struct sms_audit_entry e = { 0 };

	if (n < 10)
		return CE_INTERNAL;
	e.seq = store_col_i64(cols[0]);
	e.at_ms = store_col_i64(cols[1]);
	store_copy_str(e.who, sizeof(e.who), cols[2]);
	e.action = cols[3] ? cols[3] : "";
	e.object = cols[4] ? cols[4] : "";
	e.details = cols[5] ? cols[5] : "";
	e.snapshot = cols[6] ? cols[6] : "";
	e.prev_hex = cols[7] ? cols[7] : "";
	e.hash_hex = cols[8] ? cols[8] : "";
	e.id = store_col_i64(cols[9]);
	if (strlen(e.prev_hex) != 64 || hex_decode(e.prev_hex, e.prev_hash, 32) != 0)
		memset(e.prev_hash, 0xff, 32); /* cannot match anything: verify says so */
	if (strlen(e.hash_hex) != 64 || hex_decode(e.hash_hex, e.hash, 32) != 0)
		memset(e.hash, 0xff, 32);
	fc->last = e.seq;
	fc->n++;
	return fc->fn(fc->ctx, &e);
}

int sms_audit_range(struct sms_store *s, int64_t after_seq, int64_t to_seq, size_t max,
		    int (*fn)(void *ctx, const struct sms_audit_entry *e), void *ctx, size_t *count)
{
	struct full_ctx fc = { fn, ctx, after_seq, 0 };
	struct db_val p[3] = { DBI(after_seq), DBI(to_seq > 0 ? to_seq : INT64_MAX), DBI(max) };
	int r;

	if (count)
		*count = 0;
	if (max == 0 || max > 100000)
		return CE_RANGE;
	r = s->ops->exec(s, "SELECT seq, at_ms, who, action, object, what, snapshot, prev_hash, hash, id FROM audit"
			 " WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?", p, 3, row_full, &fc, NULL);
	if (count)
		*count = fc.n;
	return r;
}

int sms_audit_object(struct sms_store *s, const char *object, int64_t from_ms, int64_t to_ms,
		     int (*fn)(void *ctx, const struct sms_audit_entry *e), void *ctx)
{
	struct full_ctx fc = { fn, ctx, 0, 0 };
	struct db_val p[3] = { DBT(object), DBI(from_ms), DBI(to_ms) };

	return s->ops->exec(s, "SELECT seq, at_ms, who, action, object, what, snapshot, prev_hash, hash, id FROM audit"
			    " WHERE object = ? AND at_ms >= ? AND at_ms <= ? ORDER BY seq", p, 3, row_full, &fc, NULL);
}

struct box_cards {
	int (*fn)(void *ctx, uint64_t serial);
	void *ctx;
};

static int row_box_card(void *ctx, int n, const char *const *cols)
{
	struct box_cards *b = ctx;
	uint64_t serial = 0;

	if (n < 1 || !cols[0] || strncmp(cols[0], "card:", 5) != 0 || parse_u64(cols[0] + 5, INT64_MAX, &serial) != 0)
		return CE_INTERNAL;
	return b->fn(b->ctx, serial);
}

int sms_audit_box_cards(struct sms_store *s, const char *chip, int64_t to_ms,
			int (*fn)(void *ctx, uint64_t serial), void *ctx)
{
	struct box_cards b = { fn, ctx };
	char pat[2 * SMS_CHIP_ID_MAX + 16];
	size_t k;

	if (!chip || !*chip || strlen(chip) > SMS_CHIP_ID_MAX || !fn)
		return CE_ARG;
	/* the snapshot's last field, LIKE's wildcards escaped with '!' */
	k = (size_t)snprintf(pat, sizeof(pat), "%% chip=");
	for (const char *c = chip; *c; c++) {
		if (*c == '%' || *c == '_' || *c == '!')
			pat[k++] = '!';
		pat[k++] = *c;
	}
	pat[k] = '\0';
	{
		struct db_val p[2] = { DBI(to_ms), DBT(pat) };

		return s->ops->exec(s, "SELECT DISTINCT object FROM audit WHERE object LIKE 'card:%' AND at_ms <= ?"
				    " AND snapshot LIKE ? ESCAPE '!'", p, 2, row_box_card, &b, NULL);
	}
}

struct vctx {
	struct sms_store *s;
	struct sms_audit_verify *v;
	int64_t expect;
	uint8_t prev[32];
};

static void vfail(struct sms_audit_verify *v, int64_t seq, const char *why)
{
	if (v->bad_seq)
		return;
	v->bad_seq = seq ? seq : -1;
	snprintf(v->why, sizeof(v->why), "%s", why);
}

static int row_verify(void *ctx, const struct sms_audit_entry *e)
{
	struct vctx *x = ctx;
	uint8_t h[32];
	int r;

	if (e->seq != x->expect) {
		char w[160];

		snprintf(w, sizeof(w), "entry %" PRId64 " missing (next entry is %" PRId64 "): deleted", x->expect, e->seq);
		vfail(x->v, x->expect, w);
		return 1;
	}
	if (CRYPTO_memcmp(e->prev_hash, x->prev, 32) != 0) {
		vfail(x->v, e->seq, "prev_hash is not the previous entry's hash: an entry was removed or replaced");
		return 1;
	}
	if ((r = store_hash(x->s, e, h)) != 0)
		return r;
	if (CRYPTO_memcmp(h, e->hash, 32) != 0) {
		vfail(x->v, e->seq, "hash does not match the entry: the entry was altered");
		return 1;
	}
	memcpy(x->prev, h, 32);
	x->expect++;
	x->v->entries++;
	x->v->last_seq = e->seq;
	memcpy(x->v->head, h, 32);
	return 0;
}

struct cp_row {
	struct sms_audit_checkpoint *cp;
	size_t n, max;
};

static int row_cp(void *ctx, int n, const char *const *cols)
{
	struct cp_row *c = ctx;
	struct sms_audit_checkpoint *p;

	if (n < 5)
		return CE_INTERNAL;
	if (c->n >= c->max)
		return 0; /* counted, not kept */
	p = &c->cp[c->n++];
	memset(p, 0, sizeof(*p));
	p->seq = store_col_i64(cols[0]);
	p->at_ms = store_col_i64(cols[1]);
	if (!cols[2] || strlen(cols[2]) != 64 || hex_decode(cols[2], p->hash, 32) != 0)
		memset(p->hash, 0xff, 32);
	store_copy_str(p->key_id, sizeof(p->key_id), cols[3]);
	if (!cols[4] || strlen(cols[4]) != 128 || hex_decode(cols[4], p->sig, 64) != 0)
		memset(p->sig, 0, 64);
	return 0;
}

int sms_audit_checkpoints(struct sms_store *s, int64_t after_seq, struct sms_audit_checkpoint *out, size_t max,
			  size_t *n)
{
	struct cp_row c = { out, 0, max };
	struct db_val p[2] = { DBI(after_seq), DBI(max) };
	int r = s->ops->exec(s, "SELECT seq, at_ms, hash, key_id, sig FROM audit_checkpoints WHERE seq > ?"
			     " ORDER BY seq LIMIT ?", p, 2, row_cp, &c, NULL);

	*n = c.n;
	return r;
}

struct hash_at {
	uint8_t hash[32];
	bool found;
};

static int row_hash_at(void *ctx, int n, const char *const *cols)
{
	struct hash_at *h = ctx;

	if (n < 1)
		return CE_INTERNAL;
	if (cols[0] && strlen(cols[0]) == 64 && hex_decode(cols[0], h->hash, 32) == 0)
		h->found = true;
	return 0;
}

int sms_audit_check_checkpoint(struct sms_store *s, const struct sms_audit_checkpoint *cp, const uint8_t *pub,
			       struct sms_audit_verify *v)
{
	struct hash_at h = { .found = false };
	struct db_val p[1] = { DBI(cp->seq) };
	uint8_t msg[56];
	char w[200];
	int r;

	if (pub) {
		cp_message(cp->seq, cp->hash, cp->at_ms, msg);
		if (pk_verify(pub, msg, sizeof(msg), cp->sig) != 0) {
			snprintf(w, sizeof(w), "checkpoint at entry %" PRId64 ": signature does not verify with the key",
				 cp->seq);
			vfail(v, cp->seq, w);
			return 0;
		}
		v->signed_ok++;
	}
	if (cp->seq > v->last_seq) {
		snprintf(w, sizeof(w), "checkpoint at entry %" PRId64 " but the log ends at %" PRId64 ": truncated",
			 cp->seq, v->last_seq);
		vfail(v, cp->seq, w);
		return 0;
	}
	if ((r = s->ops->exec(s, "SELECT hash FROM audit WHERE seq = ?", p, 1, row_hash_at, &h, NULL)) != 0)
		return r;
	if (!h.found || CRYPTO_memcmp(h.hash, cp->hash, 32) != 0) {
		snprintf(w, sizeof(w), "entry %" PRId64 " is not the one its checkpoint signed: the log was rewritten",
			 cp->seq);
		vfail(v, cp->seq, w);
		return 0;
	}
	v->checkpoints++;
	if (cp->seq > v->checkpoint_seq)
		v->checkpoint_seq = cp->seq;
	return 0;
}

int sms_audit_verify(struct sms_store *s, const uint8_t *pub, struct sms_audit_verify *v)
{
	struct vctx x = { s, v, 1, { 0 } };
	int64_t unchained = 0;
	int r;

	memset(v, 0, sizeof(*v));
	if ((r = s->ops->exec(s, "SELECT COUNT(*) FROM audit WHERE seq IS NULL", NULL, 0, store_row_int, &unchained,
			      NULL)) != 0)
		return r;
	if (unchained) {
		vfail(v, -1, "entries without a sequence number (written outside the chain)");
		return 0;
	}
	for (;;) {
		size_t got = 0;
		int64_t before = x.expect;

		r = sms_audit_range(s, x.expect - 1, 0, VERIFY_PAGE, row_verify, &x, &got);
		if (r < 0)
			return r;
		if (v->bad_seq || got < VERIFY_PAGE || x.expect == before)
			break;
	}
	if (v->bad_seq)
		return 0;
	/* Entries past the expected end but not contiguous (a deleted last
	 * but one) were caught above; a seq beyond every chained one that the
	 * range skipped cannot exist. Now the checkpoints. */
	{
		struct sms_audit_checkpoint cp[256];
		int64_t after = 0;

		for (;;) {
			size_t n = 0;

			if ((r = sms_audit_checkpoints(s, after, cp, 256, &n)) != 0)
				return r;
			for (size_t i = 0; i < n && !v->bad_seq; i++)
				if ((r = sms_audit_check_checkpoint(s, &cp[i], pub, v)) != 0)
					return r;
			if (n < 256 || v->bad_seq)
				break;
			after = cp[n - 1].seq;
		}
	}
	return 0;
}

/* ---- checkpoints --------------------------------------------------------- */

int sms_audit_checkpoint(struct sms_store *s, const uint8_t priv[32], const char *who, bool force,
			 struct sms_audit_checkpoint *out)
{
	uint8_t pub[32], kid[32], msg[56];
	char hash_hex[65], sig_hex[129], details[200];
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_tx_begin(s)) != 0)
		return r;
	if ((r = head_load(s)) != 0)
		goto out;
	if (s->audit_seq == 0) {
		r = CE_NOT_FOUND; /* nothing to sign yet */
		goto out;
	}
	if (!force) {
		int64_t is_cp = 0;
		struct db_val q[1] = { DBI(s->audit_seq) };

		if ((r = s->ops->exec(s, "SELECT COUNT(*) FROM audit WHERE seq = ? AND action = 'audit.checkpoint'", q, 1,
				      store_row_int, &is_cp, NULL)) != 0)
			goto out;
		if (is_cp) {
			r = CE_EXISTS; /* nothing new since the last checkpoint */
			goto out;
		}
	}
	out->seq = s->audit_seq;
	out->at_ms = (int64_t)now_wall_ms();
	memcpy(out->hash, s->audit_hash, 32);
	if ((r = pk_ed25519_public(priv, pub)) != 0)
		goto out;
	pk_hash(pub, kid);
	hex_encode(kid, 8, out->key_id);
	cp_message(out->seq, out->hash, out->at_ms, msg);
	if ((r = pk_sign(priv, msg, sizeof(msg), out->sig)) != 0)
		goto out;
	hex_encode(out->hash, 32, hash_hex);
	hex_encode(out->sig, 64, sig_hex);
	{
		struct db_val p[5] = { DBI(out->seq), DBI(out->at_ms), DBT(hash_hex), DBT(out->key_id), DBT(sig_hex) };

		if ((r = s->ops->exec(s, "INSERT INTO audit_checkpoints (seq, at_ms, hash, key_id, sig) VALUES (?, ?, ?, ?, ?)"
				      " ON CONFLICT (seq) DO NOTHING", p, 5, NULL, NULL, NULL)) != 0)
			goto out;
	}
	snprintf(details, sizeof(details), "checkpoint seq=%" PRId64 " hash=%.16s key=%s", out->seq, hash_hex,
		 out->key_id);
	r = store_audit_append(s, who, "audit.checkpoint", "audit", details, "");
out:
	return store_tx_end(s, r);
}

int sms_audit_checkpoint_line(const struct sms_audit_checkpoint *cp, char *out, size_t cap)
{
	char h[65], sig[129];
	int n;

	hex_encode(cp->hash, 32, h);
	hex_encode(cp->sig, 64, sig);
	n = snprintf(out, cap, "%" PRId64 " %" PRId64 " %s %s %s\n", cp->seq, cp->at_ms, h, cp->key_id, sig);
	return n > 0 && (size_t)n < cap ? 0 : CE_OVERFLOW;
}

/* "seq at hash kid sig" (sms_audit_checkpoint_line), read through the
 * cursor: seq 1.., at a decimal, hash 64 and sig 128 hex digits, the key
 * id 1..39 bytes; a line end (\n, \r\n) may follow, nothing else. */
int sms_audit_checkpoint_parse(const char *line, struct sms_audit_checkpoint *cp)
{
	char h[65], sig[129], kid[40], num[24];
	struct cur c, f;
	int64_t seq = 0, at = 0;

	memset(cp, 0, sizeof(*cp));
	if (!line)
		return CE_FORMAT;
	cur_init(&c, line, strcspn(line, "\r\n"));
	cur_until(&c, ' ', &f);
	if (cur_text(&f, num, sizeof(num)) != 0 || parse_dec_s64(num, 1, INT64_MAX, &seq) != 0)
		return CE_FORMAT;
	cur_until(&c, ' ', &f);
	if (cur_text(&f, num, sizeof(num)) != 0 || parse_dec_s64(num, INT64_MIN, INT64_MAX, &at) != 0)
		return CE_FORMAT;
	cur_until(&c, ' ', &f);
	if (cur_left(&f) != 64 || cur_text(&f, h, sizeof(h)) != 0)
		return CE_FORMAT;
	cur_until(&c, ' ', &f);
	if (cur_left(&f) == 0 || cur_text(&f, kid, sizeof(kid)) != 0)
		return CE_FORMAT;
	if (cur_left(&c) != 128 || cur_text(&c, sig, sizeof(sig)) != 0)
		return CE_FORMAT;
	if (hex_decode(h, cp->hash, 32) != 0 || hex_decode(sig, cp->sig, 64) != 0) {
		memset(cp, 0, sizeof(*cp));
		return CE_FORMAT;
	}
	cp->seq = seq;
	cp->at_ms = at;
	store_copy_str(cp->key_id, sizeof(cp->key_id), kid);
	return 0;
}

/* ---- blacklist ----------------------------------------------------------- */

int store_blacklisted(struct sms_store *s, uint64_t serial, const char *chip, bool *yes)
{
	char id[24];
	int64_t n = 0;
	int r;

	snprintf(id, sizeof(id), "%" PRIu64, serial);
	struct db_val p[4] = { DBT(id), DBI(serial > INT64_MAX ? 0 : serial), DBT(chip ? chip : ""),
			       DBT(chip ? chip : "") };

	/* the card itself, its box as stored, and the box it is about to get */
	r = s->ops->exec(s, "SELECT COUNT(*) FROM blacklist WHERE (kind = 'card' AND id = ?) OR (kind = 'box' AND id IN"
			 " (SELECT chip_id FROM cards WHERE serial = ? AND chip_id <> '' UNION SELECT CAST(? AS TEXT) WHERE CAST(? AS TEXT) <> ''))",
			 p, 4, store_row_int, &n, NULL);
	*yes = n > 0;
	return r;
}

int sms_blacklist_add(struct sms_store *s, enum sms_bl_kind kind, const char *id, const char *reason,
		      const char *who)
{
	char what[600];
	uint64_t serial = 0;
	int r;

	if (!id || !*id || strlen(id) > SMS_CHIP_ID_MAX || !sms_text_valid(id) || !reason ||
	    strlen(reason) > SMS_NAME_MAX || !sms_text_valid(reason))
		return CE_RANGE;
	if (kind == SMS_BL_CARD && (parse_u64(id, INT64_MAX, &serial) != 0 || serial == 0))
		return CE_RANGE;
	if (kind != SMS_BL_CARD && kind != SMS_BL_BOX)
		return CE_ARG;
	if ((r = store_tx_begin(s)) != 0)
		return r;
	{
		char canon[24];
		const char *key = id;

		if (kind == SMS_BL_CARD) {
			snprintf(canon, sizeof(canon), "%" PRIu64, serial);
			key = canon;
		}
		struct db_val p[5] = { DBT(kind == SMS_BL_CARD ? "card" : "box"), DBT(key), DBT(reason),
				       DBI(now_wall_ms()), DBT(who ? who : "?") };

		if ((r = s->ops->exec(s, "INSERT INTO blacklist (kind, id, reason, at_ms, who) VALUES (?, ?, ?, ?, ?)", p,
				      5, NULL, NULL, NULL)) != 0)
			goto out;
		snprintf(what, sizeof(what), "blacklist %s %s reason=%s", kind == SMS_BL_CARD ? "card" : "box", key,
			 reason);
		{
			char obj[SMS_CHIP_ID_MAX + 8];

			snprintf(obj, sizeof(obj), "%s:%s", kind == SMS_BL_CARD ? "card" : "box", key);
			if (kind == SMS_BL_BOX && (r = store_audit_append(s, who, "blacklist.box", obj, what, "")) != 0)
				goto out;
		}
	}
	/* The card(s) stop at once: blocked, so the head-end sends the BLOCK
	 * EMM; their snapshot in the log says bl=1. */
	{
		struct serial_page sp = { .n = 0 };

		if (kind == SMS_BL_CARD) {
			sp.v[sp.n++] = serial;
		} else {
			struct db_val p[1] = { DBT(id) };

			if ((r = s->ops->exec(s, "SELECT serial FROM cards WHERE chip_id = ? ORDER BY serial LIMIT 1000", p, 1,
					      row_serial, &sp, NULL)) != 0)
				goto out;
		}
		for (size_t i = 0; i < sp.n; i++) {
			struct db_val p[3] = { DBI(SMS_CARD_BLOCKED), DBI(now_wall_ms()), DBI(sp.v[i]) };
			int64_t n = 0;

			if ((r = s->ops->exec(s, "UPDATE cards SET state = ?, updated_ms = ? WHERE serial = ?", p, 3, NULL,
					      NULL, &n)) != 0)
				goto out;
			if (n == 0)
				continue; /* a card not (yet) in the base can be blacklisted */
			if ((r = store_change(s, sp.v[i], "state")) != 0)
				goto out;
			if ((r = store_audit_card(s, who, kind == SMS_BL_CARD ? "blacklist.card" : "card.block", sp.v[i],
						  what, false)) != 0)
				goto out;
		}
		if (kind == SMS_BL_CARD) {
			struct db_val q[1] = { DBI(serial) };
			int64_t have = 0;

			/* not in the base: the entry all the same */
			if ((r = s->ops->exec(s, "SELECT COUNT(*) FROM cards WHERE serial = ?", q, 1, store_row_int, &have,
					      NULL)) != 0)
				goto out;
			if (!have && (r = store_audit_card(s, who, "blacklist.card", serial, what, false)) != 0)
				goto out;
		}
	}
	r = 0;
out:
	return store_tx_end(s, r);
}

struct bl_ctx {
	int (*fn)(void *ctx, const struct sms_blacklist_entry *b);
	void *ctx;
	size_t n;
};

static int row_bl(void *ctx, int n, const char *const *cols)
{
	struct bl_ctx *c = ctx;
	struct sms_blacklist_entry b;

	if (n < 5)
		return CE_INTERNAL;
	memset(&b, 0, sizeof(b));
	b.kind = cols[0] && strcmp(cols[0], "card") == 0 ? SMS_BL_CARD : SMS_BL_BOX;
	store_copy_str(b.id, sizeof(b.id), cols[1]);
	store_copy_str(b.reason, sizeof(b.reason), cols[2]);
	b.at_ms = store_col_i64(cols[3]);
	store_copy_str(b.who, sizeof(b.who), cols[4]);
	c->n++;
	return c->fn(c->ctx, &b);
}

int sms_blacklist_list(struct sms_store *s, int64_t at_ms, int (*fn)(void *ctx, const struct sms_blacklist_entry *b),
		       void *ctx, size_t *count)
{
	struct bl_ctx c = { fn, ctx, 0 };
	struct db_val p[1] = { DBI(at_ms > 0 ? at_ms : INT64_MAX) };
	int r = s->ops->exec(s, "SELECT kind, id, reason, at_ms, who FROM blacklist WHERE at_ms <= ? ORDER BY kind, id",
			     p, 1, row_bl, &c, NULL);

	if (count)
		*count = c.n;
	return r;
}

int sms_blacklist_check(struct sms_store *s, enum sms_bl_kind kind, const char *id, bool *yes)
{
	int64_t n = 0;
	struct db_val p[2] = { DBT(kind == SMS_BL_CARD ? "card" : "box"), DBT(id ? id : "") };
	int r = s->ops->exec(s, "SELECT COUNT(*) FROM blacklist WHERE kind = ? AND id = ?", p, 2, store_row_int, &n,
			     NULL);

	*yes = n > 0;
	return r;
}
