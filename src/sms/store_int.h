/*
 * store_int.h - what the SMS store's backends implement (internal to
 * src/sms/). store.c holds the data model's logic and SQL, written once in
 * the SQL both SQLite and PostgreSQL accept, with `?` placeholders; each
 * backend binds parameters to prepared statements (never splices them) and
 * hands rows back as text, NULL for SQL NULL.
 */
#ifndef CASTELLAN_SMS_STORE_INT_H
#define CASTELLAN_SMS_STORE_INT_H

#include <stdint.h>
#include "sms/store.h"

enum db_type { DB_NULL = 0, DB_INT, DB_TEXT };

struct db_val {
	enum db_type type;
	int64_t i;     /* DB_INT */
	const char *s; /* DB_TEXT (NUL-terminated, not owned) */
};

#define DBI(v) ((struct db_val){ .type = DB_INT, .i = (int64_t)(v) })
#define DBT(v) ((struct db_val){ .type = DB_TEXT, .s = (v) })

/* One row: ncols text values (NULL for SQL NULL). Non-zero stops the query
 * and is returned by exec. */
typedef int (*db_row_fn)(void *ctx, int ncols, const char *const *cols);

/* Parameters of one statement (multi-row INSERTs of the bulk path). */
#define DB_MAX_PARAMS 640

struct db_ops {
	const char *name;
	/* Run one statement. sql must be a string literal: backends cache the
	 * prepared statement by its address. *changes (may be NULL) gets the
	 * number of rows changed. */
	int (*exec)(struct sms_store *s, const char *sql, const struct db_val *p, int np,
		    db_row_fn fn, void *ctx, int64_t *changes);
	/* Several statements without parameters (schema migrations only). */
	int (*script)(struct sms_store *s, const char *sql);
	int (*begin)(struct sms_store *s);
	int (*commit)(struct sms_store *s);
	int (*rollback)(struct sms_store *s);
	void (*close)(struct sms_store *s);
	/* Optional (SQLite): checkpoints by a background thread instead of
	 * inside commits; this connection's inline checkpoints off only. */
	int (*bg_checkpoint)(struct sms_store *s, bool on);
	int (*no_autocheckpoint)(struct sms_store *s);
	/* Statements of this connection stop with CE_TIMEOUT once
	 * now_mono_ms() >= mono_ms (0: no deadline). store_search.c. */
	int (*deadline)(struct sms_store *s, uint64_t mono_ms);
};

/* API keys this connection checked lately (store.c, sms_apikey_check): by
 * SHA-256 of the key, never the key itself; valid for key_ttl_ms. */
#define STORE_KEY_SLOTS 8
struct store_key_slot {
	bool used;
	uint8_t hash[32];
	unsigned scopes;
	char user[SMS_NAME_MAX + 1];
	uint64_t until_ms;   /* now_mono_ms() after which the slot is stale */
};

struct sms_store {
	const struct db_ops *ops;
	void *conn;     /* sqlite3 * or PGconn * */
	void *cache;    /* the backend's prepared statements */
	bool in_tx;
	bool outer_tx;  /* sms_tx_begin: operations join it */
	void *sha256;   /* EVP_MD *, fetched once (SHA256() fetches per call) */
	unsigned key_ttl_ms;
	unsigned key_next; /* the slot the next miss replaces */
	struct store_key_slot keys[STORE_KEY_SLOTS];
	/* The audit chain's head, valid inside the current transaction only
	 * (store_audit.c; cleared when a transaction begins); audit_locked:
	 * this transaction holds PostgreSQL's append lock. */
	bool audit_head_ok, audit_locked;
	int64_t audit_seq;
	uint8_t audit_hash[32];
	/* The head as this connection last committed or read it: the first
	 * append of a transaction chains to it, conditionally (the INSERT
	 * checks that entry exists and that nobody took the next place; if
	 * not, the head is read and the entry chained again). Kept across
	 * transactions; a rollback leaves it as it was before. */
	bool audit_cache_ok;
	int64_t audit_cache_seq;
	uint8_t audit_cache_hash[32];
	void *audit_md;      /* EVP_MD_CTX * for the chain's hashes, made once */
};

/* Forget every cached API key of this connection (a key was revoked). */
void store_key_cache_clear(struct sms_store *s);

/* store.c's helpers for store_bulk.c: join or open a transaction, end
 * it (commit if r == 0), write one audit row. */
int store_tx_begin(struct sms_store *s);
int store_tx_end(struct sms_store *s, int r);
int store_audit_text(struct sms_store *s, const char *who, const char *action, const char *object,
		     const char *what);
/* store_audit.c: append one chained entry (inside the caller's
 * transaction); a card's entry with the card's snapshot after the change
 * (refuse_bl: CE_BLOCKED, nothing appended, if the card or its box, as it
 * is after the change, is blacklisted: the blacklist check of an
 * activation costs no query of its own);
 * schema 4's columns, tables and chaining of older rows (idempotent); is
 * card serial, its box, or box chip (NULL: none) blacklisted. */
int store_audit_append(struct sms_store *s, const char *who, const char *action, const char *object,
		       const char *details, const char *snapshot);
int store_audit_card(struct sms_store *s, const char *who, const char *action, uint64_t serial, const char *details,
		     bool refuse_bl);
int store_audit_migrate4(struct sms_store *s);
/* The transaction's start and end (store.c): forget the head, or after a
 * commit keep it as the connection's cached head. */
void store_audit_tx_start(struct sms_store *s);
void store_audit_tx_committed(struct sms_store *s);
/* The next place in the chain for e (at_ms, who, action, object, details,
 * snapshot filled): e->seq, prev and hash (hex) set and the cached head
 * moved on; the caller inserts the row in this transaction. */
int store_audit_chain_next(struct sms_store *s, struct sms_audit_entry *e, char prev_hex[65], char hash_hex[65]);
/* store_search.c: schema 5's indexes (idempotent; on PostgreSQL the
 * trigram indexes only if pg_trgm can be had, else a warning). */
int store_search_migrate5(struct sms_store *s);
/* sms_card_find with f->name set (like: the serial prefix's LIKE pattern):
 * through the subscribers' name index (schema 5). */
int store_card_find_name(struct sms_store *s, const struct sms_card_filter *f, const char *like, uint64_t after,
			 size_t max, int (*fn)(void *ctx, const struct sms_card *c), void *ctx, size_t *count);
int store_blacklisted(struct sms_store *s, uint64_t serial, const char *chip, bool *yes);
/* store_feed.c: one card_changes row, inside the caller's transaction. */
int store_change(struct sms_store *s, uint64_t serial, const char *reason);
bool store_is_pg(const struct sms_store *s);
void store_card_from_cols(struct sms_card *c, const char *const *cols);

/* Row helpers of store.c, store_admin.c and store_feed.c (store_util.c):
 * a text column into dst, cut to cap - 1 bytes ("" for NULL); a text
 * column as an integer (0 for NULL); a db_row_fn putting the first column
 * into *(int64_t *)ctx; a db_row_fn for CARD_SELECT's columns handing each
 * card to the caller's fn and counting them (ctx: struct store_card_list). */
void store_copy_str(char *dst, size_t cap, const char *src);
int64_t store_col_i64(const char *s);
int store_row_int(void *ctx, int n, const char *const *cols);
struct store_card_list {
	int (*fn)(void *ctx, const struct sms_card *c);
	void *ctx;
	size_t count;
};
int store_row_card_list(void *ctx, int n, const char *const *cols);

/* Backends: open the connection and fill s->ops / s->conn. */
int db_sqlite_open(struct sms_store *s, const char *path) WARN_UNUSED;
int db_pg_open(struct sms_store *s, const char *conninfo) WARN_UNUSED;

#endif
