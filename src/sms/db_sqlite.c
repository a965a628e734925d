/*
 * db_sqlite.c - the SQLite backend of the SMS store: one connection in WAL
 * mode with foreign keys on, prepared statements cached by the address of
 * their SQL text, a busy handler that polls for another connection's write
 * lock, SQLite errors mapped to CE_* codes.
 */
#include <pthread.h>
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

/* The background checkpointer (sq_bg_checkpoint): its own connection to
 * the same file, a thread, and a way to stop it. */
struct sq_ckpt {
	sqlite3 *db;
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

struct sq_cache {
	struct stmt_slot slot[STMT_CACHE];
	uint64_t busy_since_us; /* when the current wait for a lock began */
	struct sq_ckpt *ckpt;   /* NULL: SQLite checkpoints inline, at commit */
	uint64_t deadline_ms;   /* sq_deadline: now_mono_ms() after which a statement stops, 0 none */
};

/* How often the background checkpointer looks at the WAL. */
#define CKPT_PERIOD_MS 100
/* WAL length (4 KiB frames) from which it is rewound. */
#define CKPT_RESTART_FRAMES 1000

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

	if ((rc & 0xff) == SQLITE_INTERRUPT) /* sq_deadline's: the caller says so, no log line per search */
		return CE_TIMEOUT;
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

/* ---- background checkpoints --------------------------------------------
 *
 * By default SQLite copies the WAL back into the database inside the commit
 * that crosses 1,000 WAL pages, with an fsync: that request (and every
 * other one on its HTTP loop) waits for the disk. Measured at 1M cards, 10 %
 * REST writes: p99 18 ms with inline checkpoints, 7 ms without. So a
 * serving connection turns them off and a thread of its own runs PASSIVE
 * checkpoints (never blocking readers or writers) every CKPT_PERIOD_MS, on
 * its own connection to the same file. */

static void *ckpt_main(void *arg)
{
	struct sq_ckpt *k = arg;

	pthread_mutex_lock(&k->mu);
	while (!k->stop) {
		struct timespec ts;
		int log = 0, done = 0;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += CKPT_PERIOD_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&k->cv, &k->mu, &ts);
		if (k->stop)
			break;
		pthread_mutex_unlock(&k->mu);
		if (sqlite3_wal_checkpoint_v2(k->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) != SQLITE_OK)
			log = done = 0;
		/* All copied back: a RESTART checkpoint, which has nothing left to
		 * copy, waits (microseconds) for the readers still on the WAL so
		 * that the next commit writes the WAL from its start again. A
		 * passive one alone never gets that moment under a steady load
		 * (measured: the WAL grew by 12 MB/s). */
		if (log >= CKPT_RESTART_FRAMES && done == log)
			sqlite3_wal_checkpoint_v2(k->db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done);
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

static void ckpt_stop(struct sq_cache *c)
{
	struct sq_ckpt *k = c->ckpt;

	if (!k)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->tid, NULL);
	/* A last full pass, so a clean stop leaves a short WAL. */
	sqlite3_wal_checkpoint_v2(k->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	sqlite3_close(k->db);
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	free(k);
	c->ckpt = NULL;
}

static int sq_bg_checkpoint(struct sms_store *s, bool on)
{
	struct sq_cache *c = s->cache;
	const char *path = sqlite3_db_filename(s->conn, "main");
	struct sq_ckpt *k;
	int r;

	if (!on) {
		ckpt_stop(c);
		return sq_script(s, "PRAGMA wal_autocheckpoint=1000");
	}
	if (c->ckpt)
		return 0;
	if (!path || !*path) /* :memory: or a temporary database: nothing to do */
		return 0;
	if (!(k = calloc(1, sizeof(*k))))
		return CE_NOMEM;
	if (sqlite3_open_v2(path, &k->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		LOG_ERR("sms", "sqlite: checkpointer: %s", k->db ? sqlite3_errmsg(k->db) : "cannot open");
		sqlite3_close(k->db);
		free(k);
		return CE_IO;
	}
	/* A fresh connection learns that the file is in WAL mode on its first
	 * read; until then a checkpoint is a no-op. */
	sqlite3_busy_timeout(k->db, 1000);
	if (sqlite3_exec(k->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK) {
		LOG_ERR("sms", "sqlite: checkpointer: %s", sqlite3_errmsg(k->db));
		sqlite3_close(k->db);
		free(k);
		return CE_IO;
	}
	sqlite3_busy_timeout(k->db, 100);
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	if (pthread_create(&k->tid, NULL, ckpt_main, k) != 0) {
		sqlite3_close(k->db);
		pthread_mutex_destroy(&k->mu);
		pthread_cond_destroy(&k->cv);
		free(k);
		return CE_NOMEM;
	}
	c->ckpt = k;
	if ((r = sq_script(s, "PRAGMA wal_autocheckpoint=0")) != 0)
		ckpt_stop(c);
	return r;
}

/* The progress handler of a connection with a deadline: SQLite calls it
 * every SQ_PROGRESS_OPS virtual-machine steps (tens of microseconds); a
 * non-zero answer interrupts the statement (SQLITE_INTERRUPT: CE_TIMEOUT). */
#define SQ_PROGRESS_OPS 4000
static int sq_progress(void *arg)
{
	const struct sq_cache *c = arg;

	return c->deadline_ms && now_mono_ms() >= c->deadline_ms;
}

static int sq_deadline(struct sms_store *s, uint64_t mono_ms)
{
	struct sq_cache *c = s->cache;

	c->deadline_ms = mono_ms;
	sqlite3_progress_handler(s->conn, mono_ms ? SQ_PROGRESS_OPS : 0, mono_ms ? sq_progress : NULL, c);
	return 0;
}

static int sq_no_autocheckpoint(struct sms_store *s)
{
	return sq_script(s, "PRAGMA wal_autocheckpoint=0");
}

static void sq_close(struct sms_store *s)
{
	struct sq_cache *c = s->cache;

	if (c) {
		ckpt_stop(c);
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
	.bg_checkpoint = sq_bg_checkpoint,
	.no_autocheckpoint = sq_no_autocheckpoint,
	.deadline = sq_deadline,
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
	/* The file grows 4 MiB at a time, not page by page (fewer size
	 * changes for the other connections to notice). */
	{
		int chunk = 4 * 1024 * 1024;

		sqlite3_file_control(db, "main", SQLITE_FCNTL_CHUNK_SIZE, &chunk);
	}
	/* WAL: readers never block the writer; NORMAL sync is durable across
	 * process crashes (an OS crash may lose the last commits, never corrupt).
	 * cache_size: 64 MiB of pages per connection (the default 2 MiB spills
	 * a large import's transaction to the WAL early); temp_store: sorts and
	 * temporary indexes in memory.
	 * No mmap (mmap_size 0, SQLite's default): a connection drops its map
	 * whenever another one has committed, and at 1M cards with 10 % REST
	 * writes over two HTTP threads the munmap and page faults took 40 % of
	 * the CPU: 10.6k req/s p99 9.2 ms with a 256 MiB map, 14.2k p99 7.3 ms
	 * without; reads alone lose less (23.2k -> 20.5-21.1k req/s, p99 2.8 ->
	 * 3.5 ms). bench/RESULTS-sms-scale.md has the runs. */
	return sq_script(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
			 " PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;");
}
