/*
 * db_pg.c - the PostgreSQL backend of the SMS store, through libpq.
 *
 * The store's SQL uses `?` placeholders; here they become $1..$n once, when
 * the statement is prepared (PQprepare, named "c<slot>"), and every call is
 * PQexecPrepared with the values as text parameters: values never enter the
 * SQL text. BEGIN is sent with the transaction's first statement, in one
 * round trip (pipeline mode). SQLSTATEs map to CE_* codes (23505 unique -> CE_EXISTS, 23503
 * foreign key -> CE_NOT_FOUND, 23514 check -> CE_RANGE).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "sms/store_int.h"
#include "lib/log.h"
#include "lib/util.h"

#define STMT_CACHE 128
#define SQL_MAX 16384 /* the bulk path's multi-row INSERTs */

struct pg_cache {
	const char *sql[STMT_CACHE];
	size_t n;
	bool begin_pending; /* BEGIN not sent yet: it goes with the next statement */
};

static int map_res(PGconn *db, PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (state) {
		if (strcmp(state, "57014") == 0) /* query_canceled: pg_deadline's statement_timeout */
			return CE_TIMEOUT;
		if (strcmp(state, "23505") == 0)
			return CE_EXISTS;
		if (strcmp(state, "23503") == 0)
			return CE_NOT_FOUND;
		if (strcmp(state, "23514") == 0 || strcmp(state, "23502") == 0 || strcmp(state, "22003") == 0)
			return CE_RANGE;
	}
	LOG_ERR("sms", "postgresql: %s", res ? PQresultErrorMessage(res) : PQerrorMessage(db));
	return CE_IO;
}

/* `?` -> `$n`. The store's SQL has no `?` inside string literals. */
static int rewrite(const char *sql, char *out, size_t cap)
{
	size_t o = 0;
	int n = 0;

	for (const char *p = sql; *p; p++) {
		if (*p == '?') {
			int w = snprintf(out + o, cap - o, "$%d", ++n);

			if (w < 0 || (size_t)w >= cap - o)
				return CE_OVERFLOW;
			o += (size_t)w;
		} else {
			if (cap - o < 2)
				return CE_OVERFLOW;
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	return 0;
}

/* The prepared statement's name for sql, preparing it on first use.
 * name is "" when the cache is full (then the unnamed statement is used). */
static int prepare(struct sms_store *s, const char *sql, char name[16])
{
	struct pg_cache *c = s->cache;
	char text[SQL_MAX];
	PGresult *res;
	size_t slot;
	int r;

	for (size_t i = 0; i < c->n; i++) {
		if (c->sql[i] == sql) {
			snprintf(name, 16, "c%zu", i);
			return 0;
		}
	}
	if ((r = rewrite(sql, text, sizeof(text))) != 0)
		return r;
	slot = c->n;
	if (slot < STMT_CACHE)
		snprintf(name, 16, "c%zu", slot);
	else
		name[0] = '\0';
	res = PQprepare(s->conn, name, text, 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		r = map_res(s->conn, res);
		PQclear(res);
		return r;
	}
	PQclear(res);
	if (slot < STMT_CACHE)
		c->sql[c->n++] = sql;
	return 0;
}

/* BEGIN and the transaction's first statement in one round trip (libpq's
 * pipeline mode): the statement's result, or BEGIN's if BEGIN failed (the
 * statement is then not run). NULL if the connection failed. */
static PGresult *begin_and_exec(PGconn *db, const char *name, int np, const char *const *vals)
{
	PGresult *res = NULL, *begin = NULL, *x;
	int nulls = 0;

	if (PQenterPipelineMode(db) != 1)
		goto plain;
	if (PQsendQueryParams(db, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
	    PQsendQueryPrepared(db, name, np, vals, NULL, NULL, 0) != 1 || PQpipelineSync(db) != 1) {
		/* nothing is on the wire that was not sent whole: read what is */
		(void)PQpipelineSync(db);
	}
	/* results: BEGIN's, NULL, the statement's, NULL, then the sync */
	while ((x = PQgetResult(db)) != NULL || PQpipelineStatus(db) != PQ_PIPELINE_OFF) {
		if (!x) { /* between two queries' results; more than that: the connection failed */
			if (++nulls > 3 || PQstatus(db) != CONNECTION_OK)
				break;
			continue;
		}
		nulls = 0;
		if (PQresultStatus(x) == PGRES_PIPELINE_SYNC) {
			PQclear(x);
			if (PQexitPipelineMode(db) != 1)
				break;
			continue;
		}
		if (!begin)
			begin = x;
		else if (!res)
			res = x;
		else
			PQclear(x);
	}
	if (begin && PQresultStatus(begin) != PGRES_COMMAND_OK) {
		PQclear(res);
		return begin;
	}
	PQclear(begin);
	return res;
plain:
	PQclear(PQexec(db, "BEGIN"));
	return PQexecPrepared(db, name, np, vals, NULL, NULL, 0);
}

static int pg_exec(struct sms_store *s, const char *sql, const struct db_val *p, int np,
		   db_row_fn fn, void *ctx, int64_t *changes)
{
	char name[16];
	char nums[DB_MAX_PARAMS][24];
	const char *vals[DB_MAX_PARAMS];
	const char *cols[32];
	PGresult *res = NULL;
	ExecStatusType st;
	int r;

	if (changes)
		*changes = 0;
	if (np > DB_MAX_PARAMS)
		return CE_ARG;
	if ((r = prepare(s, sql, name)) != 0)
		return r;
	for (int i = 0; i < np; i++) {
		switch (p[i].type) {
		case DB_INT:
			snprintf(nums[i], sizeof(nums[i]), "%" PRId64, p[i].i);
			vals[i] = nums[i];
			break;
		case DB_TEXT: vals[i] = p[i].s; break;
		default: vals[i] = NULL; break;
		}
	}
	if (((struct pg_cache *)s->cache)->begin_pending) {
		((struct pg_cache *)s->cache)->begin_pending = false;
		res = begin_and_exec(s->conn, name, np, vals);
	} else {
		res = PQexecPrepared(s->conn, name, np, vals, NULL, NULL, 0);
	}
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		r = map_res(s->conn, res);
		goto out;
	}
	if (st == PGRES_TUPLES_OK && fn) {
		int rows = PQntuples(res), n = PQnfields(res);

		if (n > 32)
			n = 32;
		for (int row = 0; row < rows; row++) {
			for (int i = 0; i < n; i++)
				cols[i] = PQgetisnull(res, row, i) ? NULL : PQgetvalue(res, row, i);
			if ((r = fn(ctx, n, cols)) != 0)
				goto out;
		}
	}
	if (changes) {
		const char *t = PQcmdTuples(res);

		*changes = (t && *t) ? store_col_i64(t) : 0;
	}
	r = 0;
out:
	PQclear(res);
	return r;
}

static int pg_script(struct sms_store *s, const char *sql)
{
	struct pg_cache *c = s->cache;
	PGresult *res;
	int r = 0;

	if (c->begin_pending) {
		c->begin_pending = false;
		if ((r = pg_script(s, "BEGIN")) != 0)
			return r;
	}
	res = PQexec(s->conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		r = map_res(s->conn, res);
	PQclear(res);
	return r;
}

/* BEGIN waits for the transaction's first statement and goes with it (a
 * round trip less per write); a transaction that ran nothing sends nothing. */
static int pg_begin(struct sms_store *s)
{
	((struct pg_cache *)s->cache)->begin_pending = true;
	return 0;
}

static int pg_end(struct sms_store *s, const char *sql)
{
	struct pg_cache *c = s->cache;

	if (c->begin_pending) {
		c->begin_pending = false;
		return 0;
	}
	return pg_script(s, sql);
}

static int pg_commit(struct sms_store *s) { return pg_end(s, "COMMIT"); }
static int pg_rollback(struct sms_store *s) { return pg_end(s, "ROLLBACK"); }

/* The server stops a statement that runs past the deadline (SQLSTATE
 * 57014: CE_TIMEOUT): statement_timeout set to what is left, at least 1 ms
 * (0 turns it off, so a deadline already past is 1 ms). */
static int pg_deadline(struct sms_store *s, uint64_t mono_ms)
{
	uint64_t now = now_mono_ms();
	char ms[24];
	struct db_val p[1];

	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(!mono_ms ? 0 : mono_ms > now ? mono_ms - now : 1));
	p[0] = DBT(ms);
	return pg_exec(s, "SELECT set_config('statement_timeout', ?, false)", p, 1, NULL, NULL, NULL);
}

static void pg_close(struct sms_store *s)
{
	free(s->cache);
	if (s->conn)
		PQfinish(s->conn);
	s->cache = NULL;
	s->conn = NULL;
}

static const struct db_ops pg_ops = {
	.name = "postgresql",
	.exec = pg_exec,
	.script = pg_script,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.close = pg_close,
	.deadline = pg_deadline,
};

int db_pg_open(struct sms_store *s, const char *conninfo)
{
	PGconn *db = PQconnectdb(conninfo);

	s->ops = &pg_ops;
	s->conn = db;
	s->cache = calloc(1, sizeof(struct pg_cache));
	if (!db || !s->cache)
		return CE_NOMEM;
	if (PQstatus(db) != CONNECTION_OK) {
		/* PQerrorMessage never holds the password. */
		LOG_ERR("sms", "postgresql: cannot connect: %s", PQerrorMessage(db));
		return CE_IO;
	}
	/* Silence NOTICEs (e.g. "relation already exists, skipping"). */
	return pg_script(s, "SET client_min_messages = warning");
}
