/*
 * db_sqlite.c - the SQLite backend of the SMS store: one connection in WAL
 * mode with foreign keys on, prepared statements cached by the address of
 * their SQL text, a busy handler that polls for another connection's write
 * lock, SQLite errors mapped to CE_* codes.
 */
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include "sms/store_int.h"
#include "lib/log.h"
#include "lib/util.h"

#define STMT_CACHE 128

struct stmt_slot {
	const char *sql;
	sqlite3_stmt *st;
};

struct sq_cache {
	struct stmt_slot slot[STMT_CACHE];
	uint64_t busy_since_us; /* when the current wait for a lock began */
};

/* How long a statement waits for another connection's write lock. */
#define BUSY_WAIT_US (5 * 1000 * 1000)

/* SQLite's busy handler: instead of sqlite3_busy_timeout's back-off (1, 2,
 * 5, 10 ... 100 ms sleeps: a write that loses the lock to another HTTP
 * thread by a few microseconds waits milliseconds), poll every 50 us for
 * the first 2 ms, then every 1 ms, up to BUSY_WAIT_US in all. A commit
 * holds the lock for tens of microseconds, so the first polls usually win. */
static int sq_busy(void *arg, int count)
{
	struct sq_cache *c = arg;
	uint64_t now = now_mono_us();
	struct timespec ts = { 0, 50 * 1000 };

	if (count == 0)
		c->busy_since_us = now;
	if (now - c->busy_since_us >= BUSY_WAIT_US)
		return 0;
	if (now - c->busy_since_us >= 2000)
		ts.tv_nsec = 1000 * 1000;
	nanosleep(&ts, NULL);
	return 1;
}

static int map_err(sqlite3 *db, int rc)
{
	int ext = sqlite3_extended_errcode(db);

	switch (ext) {
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_UNIQUE:
		return CE_EXISTS;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return CE_NOT_FOUND;
	case SQLITE_CONSTRAINT_CHECK:
	case SQLITE_CONSTRAINT_NOTNULL:
		return CE_RANGE;
	default:
		break;
	}
	LOG_ERR("sms", "sqlite: %s (%d)", sqlite3_errmsg(db), rc);
	return (rc & 0xff) == SQLITE_BUSY ? CE_TIMEOUT : CE_IO;
}

static int get_stmt(struct sms_store *s, const char *sql, sqlite3_stmt **st, bool *cached)
{
	struct sq_cache *c = s->cache;
	sqlite3 *db = s->conn;
	int rc;

	*cached = false;
	for (size_t i = 0; i < STMT_CACHE; i++) {
		if (c->slot[i].sql == sql) {
			*st = c->slot[i].st;
			*cached = true;
			return 0;
		}
	}
	rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
	if (rc != SQLITE_OK)
		return map_err(db, rc);
	for (size_t i = 0; i < STMT_CACHE; i++) {
		if (!c->slot[i].sql) {
			c->slot[i].sql = sql;
			c->slot[i].st = *st;
			*cached = true;
			break;
		}
	}
	return 0;
}

static int sq_exec(struct sms_store *s, const char *sql, const struct db_val *p, int np,
		   db_row_fn fn, void *ctx, int64_t *changes)
{
	sqlite3 *db = s->conn;
	sqlite3_stmt *st = NULL;
	bool cached = false;
	const char *cols[32];
	int r, rc;

	if (changes)
		*changes = 0;
	if ((r = get_stmt(s, sql, &st, &cached)) != 0)
		return r;
	for (int i = 0; i < np; i++) {
		switch (p[i].type) {
		case DB_INT: rc = sqlite3_bind_int64(st, i + 1, p[i].i); break;
		case DB_TEXT: rc = sqlite3_bind_text(st, i + 1, p[i].s, -1, SQLITE_STATIC); break;
		default: rc = sqlite3_bind_null(st, i + 1); break;
		}
		if (rc != SQLITE_OK) {
			r = map_err(db, rc);
			goto out;
		}
	}
	for (;;) {
		int n;

		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			r = map_err(db, rc);
			goto out;
		}
		n = sqlite3_column_count(st);
		if (n > 32)
			n = 32;
		for (int i = 0; i < n; i++)
			cols[i] = (const char *)sqlite3_column_text(st, i);
		if (fn && (r = fn(ctx, n, cols)) != 0)
			goto out;
	}
	if (changes)
		*changes = sqlite3_changes(db);
	r = 0;
out:
	if (cached) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	} else {
		sqlite3_finalize(st);
	}
	return r;
}

static int sq_script(struct sms_store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->conn, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		LOG_ERR("sms", "sqlite: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return CE_IO;
	}
	return 0;
}

/* IMMEDIATE: take the write lock at the start, so two writers never
 * deadlock upgrading read locks (busy_timeout then queues them). */
static int sq_begin(struct sms_store *s) { return sq_script(s, "BEGIN IMMEDIATE"); }
static int sq_commit(struct sms_store *s) { return sq_script(s, "COMMIT"); }
static int sq_rollback(struct sms_store *s) { return sq_script(s, "ROLLBACK"); }

static void sq_close(struct sms_store *s)
{
	struct sq_cache *c = s->cache;

	if (c) {
		for (size_t i = 0; i < STMT_CACHE; i++)
			if (c->slot[i].st)
				sqlite3_finalize(c->slot[i].st);
		free(c);
	}
	if (s->conn)
		sqlite3_close(s->conn);
	s->cache = NULL;
	s->conn = NULL;
}

static const struct db_ops sqlite_ops = {
	.name = "sqlite",
	.exec = sq_exec,
	.script = sq_script,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.close = sq_close,
};

int db_sqlite_open(struct sms_store *s, const char *path)
{
	sqlite3 *db = NULL;
	int rc;

	/* Subscriber names, API key hashes, the audit log: owner-only, like
	 * the users file (":memory:" and URIs are left to SQLite). */
	if (strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0 && file_make_private(path) != 0) {
		LOG_ERR("sms", "sqlite: %s: %s", path, strerror(errno));
		return CE_IO;
	}
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		LOG_ERR("sms", "sqlite: cannot open %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return CE_IO;
	}
	s->ops = &sqlite_ops;
	s->conn = db;
	s->cache = calloc(1, sizeof(struct sq_cache));
	if (!s->cache)
		return CE_NOMEM;
	sqlite3_busy_handler(db, sq_busy, s->cache);
	/* The file grows 4 MiB at a time: SQLite re-maps its mmap window
	 * (below) whenever the file grows, and a page-by-page growth under a
	 * write load costs a munmap + page faults every few commits (measured:
	 * ~60 us of CPU per REST write at 1M cards). */
	{
		int chunk = 4 * 1024 * 1024;

		sqlite3_file_control(db, "main", SQLITE_FCNTL_CHUNK_SIZE, &chunk);
	}
	/* WAL: readers never block the writer; NORMAL sync is durable across
	 * process crashes (an OS crash may lose the last commits, never corrupt).
	 * cache_size: 64 MiB of pages per connection (the default 2 MiB spills
	 * a large import's transaction to the WAL early); mmap_size: reads map
	 * the first 256 MiB of the file instead of a read() per page (an I/O
	 * error there is a SIGBUS, not an error code: local disks only);
	 * temp_store: sorts and temporary indexes in memory. */
	return sq_script(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
			 " PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456; PRAGMA temp_store=MEMORY;");
}
