/*
 * store_search.c - finding cards by their subscriber's name or info text
 * (store.h, "text search"; schema 5) without reading every card.
 *
 * SQLite: an external-content FTS5 table `subscribers_fts` (name, info)
 * with the trigram tokenizer (SQLite >= 3.34; Debian 12 has 3.40), kept in
 * step with `subscribers` by three triggers, so every write path (the
 * store's inserts and updates, the bulk path's multi-row INSERTs, a
 * delete) updates it in the same transaction. PostgreSQL: GIN indexes with
 * pg_trgm's gin_trgm_ops over the ASCII-folded name and info (the server
 * maintains them); the extension needs CREATE on the database (pg_trgm is a
 * trusted extension): without it the migration warns, the indexes are left
 * out, and a search reads every subscriber (sms_search_index_state says so).
 *
 * One meaning on both backends: the text is a literal substring, ASCII
 * letters folded (SQLite's LIKE and lower(); translate() on PostgreSQL, so
 * the server's locale changes nothing). The index only proposes
 * candidates; each is re-checked with LIKE (pattern escaped), so results
 * are a scan's. The plan: count the index's candidates up to
 * SEARCH_DENSE; few: read those subscribers and their cards (index-first);
 * many (a common word): walk the cards in serial order with the LIKE test,
 * which finds a page of matches after a few pages of cards.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/store_int.h"
#include "lib/log.h"
#include "lib/util.h"

/* Index candidates up to which the index-first plan is used (SQLite).
 * Measured (bench/RESULTS-search.md): a full name with 5000 candidates at
 * 1M cards took 125 ms index-first, the same kind of text with 50,000
 * candidates at 10M 14 ms in serial order: each candidate costs ~25 us
 * index-first, while a page of 50 in serial order needs 50 / share cards. */
#define SEARCH_DENSE 2000
/* PostgreSQL: its count reads each candidate's row (the GIN bitmap's recheck). */
#define SEARCH_DENSE_PG 2000

#define CARD_COLS \
	"SELECT c.serial, c.chip_id, c.state, c.pair, c.start_time, c.finish_time," \
	" COALESCE(u.name, ''), COALESCE(u.info, ''), COALESCE(c.subscriber_id, 0)," \
	" (SELECT COALESCE(SUM(CAST(1 AS BIGINT) << package), 0) FROM subscriptions" \
	"  WHERE card = c.serial AND package < 32)"

/* sms_card_find's filters: after, prefix, prefix LIKE, name, name, state, state. */
#define F_WHERE \
	" c.serial > ? AND (? = '' OR CAST(c.serial AS TEXT) LIKE ?)" \
	" AND (? = '' OR u.name = ?) AND (CAST(? AS INTEGER) < 0 OR c.state = ?)"

/* ASCII A-Z folded, nothing else: the same on every PostgreSQL locale. */
#define FOLD(col) "translate(" col ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"

/* The re-check: SQLite's LIKE folds ASCII only. */
#define SQ_NAME " u.name LIKE ? ESCAPE '\\'"
#define SQ_INFO " u.info LIKE ? ESCAPE '\\'"
#define SQ_ANY " (u.name LIKE ? ESCAPE '\\' OR u.info LIKE ? ESCAPE '\\')"
#define PG_NAME " " FOLD("u.name") " LIKE ? ESCAPE '\\'"
#define PG_INFO " " FOLD("u.info") " LIKE ? ESCAPE '\\'"
#define PG_ANY " (" FOLD("u.name") " LIKE ? ESCAPE '\\' OR " FOLD("u.info") " LIKE ? ESCAPE '\\')"

#define SQ_FTS_CTE "WITH m(id) AS MATERIALIZED (SELECT rowid FROM subscribers_fts WHERE subscribers_fts MATCH ?) "
#define SQ_IDX(PRED) \
	SQ_FTS_CTE CARD_COLS " FROM m CROSS JOIN subscribers u ON u.id = m.id CROSS JOIN cards c ON c.subscriber_id = u.id" \
	" WHERE" F_WHERE " AND" PRED " ORDER BY c.serial LIMIT ?"
#define SCAN(PRED) \
	CARD_COLS " FROM cards c LEFT JOIN subscribers u ON u.id = c.subscriber_id" \
	" WHERE" F_WHERE " AND" PRED " ORDER BY c.serial LIMIT ?"
/* PostgreSQL: the matching subscribers first (materialized), then each
 * one's cards through cards_subscriber (LATERAL: a nested loop whatever
 * the estimates; without it the planner walked cards_pkey in serial order
 * for a rare name, 0.8 s at 300k cards, having no statistics for the
 * pattern). */
#define PG_FIRST(PRED) \
	"WITH m AS MATERIALIZED (SELECT u.id, u.name, u.info FROM subscribers u WHERE" PRED ") " CARD_COLS \
	" FROM m u CROSS JOIN LATERAL (SELECT * FROM cards WHERE subscriber_id = u.id) c" \
	" WHERE" F_WHERE " ORDER BY c.serial LIMIT ?"
#define PG_IDX(PRED) PG_FIRST(PRED)

/* [backend][field] with field as enum sms_search_field (ANY, NAME, INFO). */
static const char *const sql_idx[2][3] = {
	{ SQ_IDX(SQ_ANY), SQ_IDX(SQ_NAME), SQ_IDX(SQ_INFO) },
	{ PG_IDX(PG_ANY), PG_IDX(PG_NAME), PG_IDX(PG_INFO) },
};
static const char *const sql_scan[2][3] = {
	{ SCAN(SQ_ANY), SCAN(SQ_NAME), SCAN(SQ_INFO) },
	{ SCAN(PG_ANY), SCAN(PG_NAME), SCAN(PG_INFO) },
};
/* Candidates, at most ?: SQLite from the FTS table, PostgreSQL the GIN
 * indexes' bitmap with the LIKE re-check. */
static const char *const sql_count[2][3] = {
	{ "SELECT count(*) FROM (SELECT rowid FROM subscribers_fts WHERE subscribers_fts MATCH ? LIMIT ?)",
	  "SELECT count(*) FROM (SELECT rowid FROM subscribers_fts WHERE subscribers_fts MATCH ? LIMIT ?)",
	  "SELECT count(*) FROM (SELECT rowid FROM subscribers_fts WHERE subscribers_fts MATCH ? LIMIT ?)" },
	{ "SELECT count(*) FROM (SELECT 1 FROM subscribers u WHERE" PG_ANY " LIMIT ?) x",
	  "SELECT count(*) FROM (SELECT 1 FROM subscribers u WHERE" PG_NAME " LIMIT ?) x",
	  "SELECT count(*) FROM (SELECT 1 FROM subscribers u WHERE" PG_INFO " LIMIT ?) x" },
};
/* Fewer than 3 characters: the whole name, ASCII-folded, by its index. */
static const char *const sql_short[2] = {
	CARD_COLS " FROM subscribers u CROSS JOIN cards c ON c.subscriber_id = u.id"
	" WHERE u.name = ? COLLATE NOCASE AND" F_WHERE " ORDER BY c.serial LIMIT ?",
	PG_FIRST(" " FOLD("u.name") " = ?"),
};

/* An exact name (sms_card_find's name filter): from the name's index, not
 * the cards in serial order. */
static const char *const sql_name[2] = {
	CARD_COLS " FROM subscribers u CROSS JOIN cards c ON c.subscriber_id = u.id"
	" WHERE u.name = ? AND" F_WHERE " ORDER BY c.serial LIMIT ?",
	PG_FIRST(" u.name = ?"),
};

/* ---- schema 5 ------------------------------------------------------------ */

#define MIG5_BTREE \
	"CREATE INDEX IF NOT EXISTS cards_subscriber ON cards (subscriber_id);" \
	"CREATE INDEX IF NOT EXISTS subscribers_name ON subscribers (name);"

/* The FTS5 table mirrors subscribers (content=): it stores only the index;
 * the triggers give it the old values on delete and update, as an
 * external-content table needs. detail='column': which column holds a
 * trigram, no positions (the query is an AND of trigrams, fts_query):
 * measured at 200k subscribers, an index of 43 MB built in 8.8 s instead
 * of 63 MB in 18.8 s with positions. */
#define MIG5_SQLITE \
	MIG5_BTREE \
	"CREATE INDEX IF NOT EXISTS subscribers_name_nocase ON subscribers (name COLLATE NOCASE);" \
	"CREATE VIRTUAL TABLE IF NOT EXISTS subscribers_fts USING fts5(name, info, content='subscribers'," \
	" content_rowid='id', tokenize='trigram', detail='column');" \
	"CREATE TRIGGER IF NOT EXISTS subscribers_fts_ai AFTER INSERT ON subscribers BEGIN" \
	" INSERT INTO subscribers_fts (rowid, name, info) VALUES (new.id, new.name, new.info); END;" \
	"CREATE TRIGGER IF NOT EXISTS subscribers_fts_ad AFTER DELETE ON subscribers BEGIN" \
	" INSERT INTO subscribers_fts (subscribers_fts, rowid, name, info) VALUES ('delete', old.id, old.name, old.info);" \
	" END;" \
	"CREATE TRIGGER IF NOT EXISTS subscribers_fts_au AFTER UPDATE OF id, name, info ON subscribers BEGIN" \
	" INSERT INTO subscribers_fts (subscribers_fts, rowid, name, info) VALUES ('delete', old.id, old.name, old.info);" \
	" INSERT INTO subscribers_fts (rowid, name, info) VALUES (new.id, new.name, new.info); END;" \
	"INSERT INTO subscribers_fts (subscribers_fts) VALUES ('rebuild');"

#define MIG5_PG \
	MIG5_BTREE \
	"CREATE INDEX IF NOT EXISTS subscribers_name_fold ON subscribers (" FOLD("name") ");"

#define PG_TRGM_INDEXES \
	"CREATE INDEX IF NOT EXISTS subscribers_name_trgm ON subscribers USING gin (" FOLD("name") " gin_trgm_ops);" \
	"CREATE INDEX IF NOT EXISTS subscribers_info_trgm ON subscribers USING gin (" FOLD("info") " gin_trgm_ops);"

static int row_count(void *ctx, int n, const char *const *cols)
{
	return store_row_int(ctx, n, cols);
}

/* PostgreSQL: pg_trgm there, or created now (inside a savepoint when in a
 * transaction, so a refusal leaves the migration going). *why set if not. */
static int pg_trgm_ensure(struct sms_store *s, bool *ok, char *why, size_t cap)
{
	int64_t have = 0, avail = 0;
	int r;

	*ok = false;
	if ((r = s->ops->exec(s, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'", NULL, 0, row_count,
			      &have, NULL)) != 0)
		return r;
	if (have) {
		*ok = true;
		return 0;
	}
	if ((r = s->ops->exec(s, "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'", NULL, 0,
			      row_count, &avail, NULL)) != 0)
		return r;
	if (!avail) {
		snprintf(why, cap, "the PostgreSQL server has no pg_trgm extension (Debian: it is in the "
			 "postgresql-15 package; other systems: postgresql-contrib)");
		return 0;
	}
	if (s->in_tx && (r = s->ops->script(s, "SAVEPOINT search_trgm")) != 0)
		return r;
	if (s->ops->script(s, "CREATE EXTENSION IF NOT EXISTS pg_trgm") == 0) {
		*ok = true;
		return s->in_tx ? s->ops->script(s, "RELEASE SAVEPOINT search_trgm") : 0;
	}
	snprintf(why, cap, "this database user may not create the pg_trgm extension: have the database owner or "
		 "a superuser run `CREATE EXTENSION pg_trgm;` in this database, then `castellan sms search-index "
		 "--build`");
	return s->in_tx ? s->ops->script(s, "ROLLBACK TO SAVEPOINT search_trgm") : 0;
}

int store_search_migrate5(struct sms_store *s)
{
	char why[320] = "";
	bool ok = false;
	int r;

	if (!store_is_pg(s))
		return s->ops->script(s, MIG5_SQLITE);
	if ((r = s->ops->script(s, MIG5_PG)) != 0 || (r = pg_trgm_ensure(s, &ok, why, sizeof(why))) != 0)
		return r;
	if (!ok) {
		LOG_WARN("sms", "search: no trigram index (%s); until then a text search reads every subscriber", why);
		return 0;
	}
	return s->ops->script(s, PG_TRGM_INDEXES);
}

int sms_search_index_state(struct sms_store *s, bool *indexed, char *why, size_t cap)
{
	int64_t n = 0;
	int r;

	*indexed = false;
	if (why && cap)
		why[0] = '\0';
	if (!store_is_pg(s)) {
		r = s->ops->exec(s, "SELECT count(*) FROM sqlite_master WHERE name = 'subscribers_fts'", NULL, 0,
				 row_count, &n, NULL);
		*indexed = r == 0 && n == 1;
		if (r == 0 && !*indexed && why)
			snprintf(why, cap, "the FTS5 table subscribers_fts is missing: castellan sms search-index --build");
		return r;
	}
	if ((r = s->ops->exec(s, "SELECT count(*) FROM pg_indexes WHERE tablename = 'subscribers'"
			      " AND indexname IN ('subscribers_name_trgm', 'subscribers_info_trgm')", NULL, 0, row_count,
			      &n, NULL)) != 0)
		return r;
	*indexed = n == 2;
	if (!*indexed && why) {
		int64_t have = 0;

		if ((r = s->ops->exec(s, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'", NULL, 0,
				      row_count, &have, NULL)) != 0)
			return r;
		snprintf(why, cap, have ? "the pg_trgm GIN indexes are missing: castellan sms search-index --build"
			 : "the pg_trgm extension is not created in this database: have its owner or a superuser run "
			   "`CREATE EXTENSION pg_trgm;`, then castellan sms search-index --build");
	}
	return 0;
}

int sms_search_index_build(struct sms_store *s)
{
	char why[320] = "";
	bool ok = false;
	int r;

	if (s->in_tx)
		return CE_STATE;
	if (!store_is_pg(s)) {
		if ((r = s->ops->script(s, MIG5_SQLITE)) != 0)
			return r;
		return 0;
	}
	if ((r = s->ops->script(s, MIG5_PG)) != 0 || (r = pg_trgm_ensure(s, &ok, why, sizeof(why))) != 0)
		return r;
	if (!ok) {
		LOG_ERR("sms", "search: %s", why);
		return CE_STATE;
	}
	/* One statement each and CONCURRENTLY: writes go on while it builds. */
	if ((r = s->ops->script(s, "CREATE INDEX CONCURRENTLY IF NOT EXISTS subscribers_name_trgm ON subscribers"
				   " USING gin (" FOLD("name") " gin_trgm_ops)")) != 0 ||
	    (r = s->ops->script(s, "CREATE INDEX CONCURRENTLY IF NOT EXISTS subscribers_info_trgm ON subscribers"
				   " USING gin (" FOLD("info") " gin_trgm_ops)")) != 0)
		return r;
	return 0;
}

int sms_search_index_check(struct sms_store *s)
{
	if (store_is_pg(s))
		return 0;
	/* rank 1: compare with the content table too (SQLite >= 3.40). */
	return s->ops->script(s, "INSERT INTO subscribers_fts (subscribers_fts, rank) VALUES ('integrity-check', 1)");
}

int sms_store_set_deadline(struct sms_store *s, uint64_t mono_ms)
{
	return s->ops->deadline ? s->ops->deadline(s, mono_ms) : CE_UNSUPPORTED;
}

/* ---- the search ------------------------------------------------------------ */

static size_t utf8_chars(const char *t)
{
	size_t n = 0;

	for (; *t; t++)
		n += ((unsigned char)*t & 0xC0) != 0x80;
	return n;
}

/* "%" + text with \ % _ escaped + "%", ASCII letters lower-cased. */
static int like_pattern(const char *text, char *out, size_t cap)
{
	size_t o = 0;

	if (cap < 3)
		return CE_RANGE;
	out[o++] = '%';
	for (const char *p = text; *p; p++) {
		char c = *p;

		if (cap - o < 4)
			return CE_RANGE;
		if (c == '\\' || c == '%' || c == '_')
			out[o++] = '\\';
		out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[o++] = '%';
	out[o] = '\0';
	return 0;
}

/* One quoted FTS5 string ("..." with " doubled: nothing in it is query
 * syntax) of the n bytes at p. */
static int fts_put(char *out, size_t cap, size_t *o, const char *p, size_t n)
{
	if (cap - *o < 2 * n + 4)
		return CE_RANGE;
	out[(*o)++] = ' ';
	out[(*o)++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"')
			out[(*o)++] = '"';
		out[(*o)++] = p[i];
	}
	out[(*o)++] = '"';
	return 0;
}

/* The FTS5 query for text (at least 3 characters) in the field's columns:
 * the AND of the trigrams that tile it (characters 1-3, 4-6, ..., and the
 * last 3), each one quoted string of 3 characters, i.e. one token. Not the
 * whole text as a phrase: measured at 200k subscribers, a 20-character
 * name as a phrase took 16-74 ms (every trigram's positions read), as 7
 * tiles 2 ms. A superset of the matches; sms_card_search re-checks. */
static int fts_query(enum sms_search_field field, const char *text, char *out, size_t cap)
{
	static const char *const col[3] = { "{name info} : (", "name : (", "info : (" };
	size_t o = strlen(col[field]), len = strlen(text), starts[SMS_SEARCH_TEXT_MAX + 1], nc = 0;
	int r;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)text[i] & 0xC0) != 0x80)
			starts[nc++] = i;
	starts[nc] = len;
	if (nc < SMS_SEARCH_MIN_CHARS || cap < o + 2)
		return CE_RANGE;
	memcpy(out, col[field], o);
	for (size_t c = 0;; c += 3) {
		if (c + 3 > nc)
			c = nc - 3; /* the last 3 characters, overlapping the tile before */
		if ((r = fts_put(out, cap, &o, text + starts[c], starts[c + 3] - starts[c])) != 0)
			return r;
		if (c + 3 >= nc)
			break;
	}
	if (cap - o < 2)
		return CE_RANGE;
	out[o++] = ')';
	out[o] = '\0';
	return 0;
}

/* PostgreSQL: one transaction per search (the count and the page see one
 * snapshot) in which each statement is planned for its own pattern (a
 * generic plan cannot tell a rare text from a common one); SET LOCAL, so
 * the connection's other statements (the API's, when a search runs on an
 * HTTP loop) keep their cached plans. *own: whether to end it. */
static int search_tx(struct sms_store *s, bool *own)
{
	int r;

	*own = false;
	if (!store_is_pg(s) || s->in_tx || s->outer_tx)
		return 0;
	if ((r = s->ops->begin(s)) != 0)
		return r;
	*own = true;
	s->in_tx = true;
	return s->ops->script(s, "SET LOCAL plan_cache_mode = force_custom_plan");
}

static int search_tx_end(struct sms_store *s, bool own, int r)
{
	if (!own)
		return r;
	s->in_tx = false;
	if (r == 0)
		return s->ops->commit(s);
	(void)s->ops->rollback(s);
	return r;
}

struct search_args {
	char like[24];
	char pat[2 * SMS_SEARCH_TEXT_MAX + 4];
	char fts[3 * SMS_SEARCH_TEXT_MAX + 32];
	char fold[SMS_SEARCH_TEXT_MAX + 1];
};

static int check_args(const struct sms_card_filter *f, enum sms_search_field field, const char *text, size_t max)
{
	if (!f || !text || (unsigned)field > SMS_SEARCH_INFO || max == 0 || max > 10000 ||
	    strlen(f->serial_prefix) > 19 || f->state < -1 || f->state > 2)
		return CE_RANGE;
	for (const char *d = f->serial_prefix; *d; d++)
		if (*d < '0' || *d > '9')
			return CE_RANGE;
	if (strlen(text) > SMS_SEARCH_TEXT_MAX || !sms_text_valid(text))
		return CE_RANGE;
	if (!*text || (field == SMS_SEARCH_INFO && utf8_chars(text) < SMS_SEARCH_MIN_CHARS))
		return CE_ARG;
	return 0;
}

int store_card_find_name(struct sms_store *s, const struct sms_card_filter *f, const char *like, uint64_t after,
			 size_t max, int (*fn)(void *ctx, const struct sms_card *c), void *ctx, size_t *count)
{
	struct store_card_list l = { fn, ctx, 0 };
	struct db_val p[9] = { DBT(f->name), DBI(after > INT64_MAX ? INT64_MAX : after), DBT(f->serial_prefix), DBT(like),
			       DBT(f->name), DBT(f->name), DBI(f->state), DBI(f->state), DBI(max) };
	int r = s->ops->exec(s, sql_name[store_is_pg(s)], p, 9, store_row_card_list, &l, NULL);

	if (count)
		*count = l.count;
	return r;
}

int sms_search_candidates(struct sms_store *s, enum sms_search_field field, const char *text, size_t limit,
			  size_t *n)
{
	struct sms_card_filter f = { .state = -1 };
	struct search_args *a;
	int64_t got = 0;
	bool pg = store_is_pg(s);
	int r;

	*n = 0;
	if ((r = check_args(&f, field, text, 1)) != 0)
		return r;
	if (utf8_chars(text) < SMS_SEARCH_MIN_CHARS)
		return CE_ARG;
	if (!(a = malloc(sizeof(*a))))
		return CE_NOMEM;
	if ((r = like_pattern(text, a->pat, sizeof(a->pat))) == 0 && (r = fts_query(field, text, a->fts,
										     sizeof(a->fts))) == 0) {
		struct db_val p[3];
		int np = 0;

		if (!pg) {
			p[np++] = DBT(a->fts);
		} else {
			p[np++] = DBT(a->pat);
			if (field == SMS_SEARCH_ANY)
				p[np++] = DBT(a->pat);
		}
		p[np++] = DBI(limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
		r = s->ops->exec(s, sql_count[pg][field], p, np, row_count, &got, NULL);
	}
	free(a);
	*n = got > 0 ? (size_t)got : 0;
	return r;
}

int sms_card_search(struct sms_store *s, const struct sms_card_filter *f, enum sms_search_field field,
		    const char *text, uint64_t after, size_t max, int (*fn)(void *ctx, const struct sms_card *c),
		    void *ctx, size_t *count)
{
	struct store_card_list l = { fn, ctx, 0 };
	struct search_args *a = NULL;
	struct db_val p[12];
	bool pg = store_is_pg(s), indexed = true, own = false;
	const char *sql;
	int np = 0, r;

	if (count)
		*count = 0;
	if ((r = check_args(f, field, text, max)) != 0)
		return r;
	if (!(a = malloc(sizeof(*a))))
		return CE_NOMEM;
	if ((r = search_tx(s, &own)) != 0)
		goto out;
	snprintf(a->like, sizeof(a->like), "%s%%", f->serial_prefix);
	if (utf8_chars(text) < SMS_SEARCH_MIN_CHARS) {
		/* No trigram: the whole name (store.h). */
		size_t i;

		for (i = 0; text[i]; i++)
			a->fold[i] = (text[i] >= 'A' && text[i] <= 'Z') ? (char)(text[i] - 'A' + 'a') : text[i];
		a->fold[i] = '\0';
		p[np++] = DBT(pg ? a->fold : text);
		sql = sql_short[pg];
	} else {
		size_t cand = 0;

		if ((r = like_pattern(text, a->pat, sizeof(a->pat))) != 0 ||
		    (r = fts_query(field, text, a->fts, sizeof(a->fts))) != 0)
			goto out;
		if (pg && (r = sms_search_index_state(s, &indexed, NULL, 0)) != 0)
			goto out;
		if (indexed && (r = sms_search_candidates(s, field, text, (pg ? SEARCH_DENSE_PG : SEARCH_DENSE) + 1, &cand)) != 0)
			goto out;
		if (indexed && cand <= (pg ? SEARCH_DENSE_PG : SEARCH_DENSE)) {
			sql = sql_idx[pg][field];
			if (pg) {
				p[np++] = DBT(a->pat);
				if (field == SMS_SEARCH_ANY)
					p[np++] = DBT(a->pat);
			} else {
				p[np++] = DBT(a->fts);
			}
		} else {
			sql = sql_scan[pg][field];
		}
	}
	p[np++] = DBI(after > INT64_MAX ? INT64_MAX : after);
	p[np++] = DBT(f->serial_prefix);
	p[np++] = DBT(a->like);
	p[np++] = DBT(f->name);
	p[np++] = DBT(f->name);
	p[np++] = DBI(f->state);
	p[np++] = DBI(f->state);
	if (utf8_chars(text) >= SMS_SEARCH_MIN_CHARS && !(pg && sql == sql_idx[pg][field])) {
		p[np++] = DBT(a->pat);
		if (field == SMS_SEARCH_ANY)
			p[np++] = DBT(a->pat);
	}
	p[np++] = DBI(max);
	r = s->ops->exec(s, sql, p, np, store_row_card_list, &l, NULL);
out:
	r = search_tx_end(s, own, r);
	free(a);
	if (count)
		*count = l.count;
	return r;
}
