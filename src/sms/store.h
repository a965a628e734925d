/*
 * store.h - the SMS (subscriber management system) storage: one interface
 * over the subscriber data model, with two backends behind it.
 *
 * Data model (docs/sms.md has the tables column by column):
 *   cards          serial (like 2100000000), chip id, state, pairing, the
 *                  subscriber it belongs to, and the card's default period
 *                  (start, finish) used by the free CAS's GET API view;
 *   subscribers    name, info;
 *   packages       id 0..65535 and a unique name; packages 0..31 are bits
 *                  0..31 of the 32-bit access-criteria mask (32 are created
 *                  by the first migration, so the mask view always works);
 *   channels       service id -> access criteria (32-bit package mask);
 *   subscriptions  (card, package, start, finish);
 *   users, api_keys  API keys with scopes; only SHA-256 of a key is stored;
 *   audit          every change: who, when (unix ms), what; from schema 4
 *                  a hash chain (seq, action, object, snapshot, prev_hash,
 *                  hash: store_audit.c) with signed audit_checkpoints;
 *   blacklist      cards and boxes (chip ids) that may never be activated
 *                  again (schema 4);
 *   card_changes   the change feed: one row (monotonic id, card serial,
 *                  reason) per card or subscription change, written in the
 *                  change's transaction; the head-end follows it;
 *   emm_seq        per-card EMM sequence numbers (shared by every head-end
 *                  node on one base), digest and blocked flag;
 *   generators     ECMG / EMMG definitions (listen or MUX address,
 *                  CA_system_id, client_id, bandwidth, enabled);
 *   node_status    each head-end node's live counters (JSON), refreshed
 *                  every few seconds, for GET /api/v1/status;
 *   panel_users    the web panel's users: role, scrypt cost, salt, hash,
 *                  lock-out (schema 6; before it, a separate web.db).
 *
 * Backends: SQLite (WAL; the default: a plain path or "sqlite:PATH") and
 * PostgreSQL through libpq ("postgresql://..." or "postgres:CONNINFO").
 * Both run the same SQL (prepared statements only, parameters bound, never
 * spliced) and the same ordered list of schema migrations, recorded in the
 * schema_version table. Every operation is one transaction: it applies
 * whole or not at all.
 *
 * Threads: a struct sms_store is one database connection; use it from one
 * thread at a time. Open one store per thread (several processes or nodes
 * may share one database).
 *
 * Every function returns 0 or a negative CE_* code: CE_NOT_FOUND (no such
 * card/package/key), CE_EXISTS (duplicate), CE_RANGE / CE_ARG (bad value),
 * CE_IO (database failure; the log says which).
 */
#ifndef CASTELLAN_SMS_STORE_H
#define CASTELLAN_SMS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "lib/err.h"

struct sms_store;

/* Limits of text fields. A name (subscriber / package / channel / user /
 * generator) counts characters, as the free CAS's VARCHAR(255) columns did
 * in any script: at most SMS_NAME_CHARS code points, so its UTF-8 buffer
 * holds SMS_NAME_MAX bytes (4 per character). Subscriber info counts bytes:
 * MySQL TEXT's 65,535, the free CAS's info column. Both exclude the NUL. */
#define SMS_NAME_CHARS 255
#define SMS_NAME_MAX (4 * SMS_NAME_CHARS)
#define SMS_INFO_MAX 65535
#define SMS_CHIP_ID_MAX 64    /* chip id as the manufacturer prints it */
#define SMS_WHO_MAX 64        /* audit actor ("cli", "api:<user>", ...) */
#define SMS_PACKAGES_MAX 65536
#define SMS_SCHEMA_VERSION 8  /* the newest migration this build knows */
#define SMS_SENT_EXT_MAX 64   /* extended package ids emm_seq records per card */

enum sms_card_state {
	SMS_CARD_ACTIVE = 0,
	SMS_CARD_BLOCKED = 1,
	SMS_CARD_RETIRED = 2,
};

/* API key scopes (a bit set). */
#define SMS_SCOPE_READ  0x1u /* read cards (GET API without set[]) */
#define SMS_SCOPE_WRITE 0x2u /* change cards and subscriptions */
#define SMS_SCOPE_ADMIN 0x4u /* users, keys, packages, channels */
#define SMS_SCOPE_METRICS 0x8u /* GET /metrics only (a Prometheus scraper's key) */
#define SMS_SCOPE_ALL (SMS_SCOPE_READ | SMS_SCOPE_WRITE | SMS_SCOPE_ADMIN | SMS_SCOPE_METRICS)

struct sms_card {
	uint64_t serial;                  /* 1 .. 2^63-1 */
	char chip_id[SMS_CHIP_ID_MAX + 1];
	enum sms_card_state state;
	bool pair;                        /* pairing with one box required */
	int64_t start, finish;            /* default period, unix seconds */
	char name[SMS_NAME_MAX + 1];      /* subscriber's, "" if none */
	uint32_t access_criteria;         /* packages 0..31 subscribed (read only) */
	int64_t subscriber_id;            /* 0 if none (read only: sms_card_set_subscriber) */
	char info[SMS_INFO_MAX + 1];      /* last: copies that need no info stop before it */
};

/* The free CAS's view of a card (GET /api.php), and a change to it: the
 * has_* flags say which fields to set. Setting access_criteria replaces the
 * card's subscriptions to packages 0..31 by the mask's packages, each with
 * the card's period; setting start/finish moves the period of the card and
 * of all its subscriptions to packages 0..31. */
struct sms_card_change {
	bool has_name, has_info, has_pair, has_start, has_finish, has_ac;
	bool pair;
	int64_t start, finish;
	uint32_t access_criteria;
	/* Castellan's, not in the free CAS's view (REST API, CSV import). */
	bool has_chip, has_state;
	char chip_id[SMS_CHIP_ID_MAX + 1];
	enum sms_card_state state;
	/* Last: sms_card_change_init clears everything before them. */
	char name[SMS_NAME_MAX + 1];
	char info[SMS_INFO_MAX + 1];
};

/* An empty change, without writing the 65 KiB of the text buffers (only
 * their first byte): what a per-row parser (CSV, REST) calls. */
static inline void sms_card_change_init(struct sms_card_change *ch)
{
	memset(ch, 0, offsetof(struct sms_card_change, name));
	ch->name[0] = ch->info[0] = '\0';
}

struct sms_subscription {
	uint64_t serial;
	uint32_t package;
	int64_t start, finish;
};

struct sms_package {
	uint32_t id;
	char name[SMS_NAME_MAX + 1];
};

/* Open (creating if needed) and migrate to SMS_SCHEMA_VERSION. uri: a path
 * or "sqlite:PATH" (SQLite), "postgresql://..." / "postgres://..." or
 * "postgres:CONNINFO" (PostgreSQL). *out is freed with sms_store_close. A
 * database newer than this build is refused with CE_UNSUPPORTED. */
int sms_store_open(const char *uri, struct sms_store **out) WARN_UNUSED;
void sms_store_close(struct sms_store *s);
/* The store URI with any password replaced by "***", for logs and error
 * messages: the userinfo password of a postgresql:// URI, a password=
 * query parameter, and a password= keyword of a postgres:CONNINFO string.
 * Other URIs are copied. out is always NUL-terminated (cut at cap - 1). */
void sms_store_uri_redact(const char *uri, char *out, size_t cap);
/* "sqlite" or "postgresql". */
const char *sms_store_backend(const struct sms_store *s);
/* The schema version recorded in the database. */
int sms_store_schema_version(struct sms_store *s, int *version) WARN_UNUSED;

/* Cards. who: the actor written to the audit log (not NULL). */
int sms_card_add(struct sms_store *s, const struct sms_card *c, const char *who) WARN_UNUSED;
int sms_card_get(struct sms_store *s, uint64_t serial, struct sms_card *out) WARN_UNUSED;
int sms_card_set_state(struct sms_store *s, uint64_t serial, enum sms_card_state st, const char *who) WARN_UNUSED;
/* Apply a change (all fields or none), then return the card in *out
 * (may be NULL). CE_NOT_FOUND if no such card. */
int sms_card_change(struct sms_store *s, uint64_t serial, const struct sms_card_change *ch,
		    const char *who, struct sms_card *out) WARN_UNUSED;
/* Cards with serial > after, ascending, at most max (<= 10000); calls fn for
 * each (fn returning non-zero stops and is returned). *count gets how many. */
int sms_card_list(struct sms_store *s, uint64_t after, size_t max,
		  int (*fn)(void *ctx, const struct sms_card *c), void *ctx, size_t *count) WARN_UNUSED;

/* Delete a card and its subscriptions. CE_NOT_FOUND if no such card. */
int sms_card_delete(struct sms_store *s, uint64_t serial, const char *who) WARN_UNUSED;

/* Filtered listing (REST API): like sms_card_list, keeping only cards whose
 * decimal serial starts with serial_prefix (digits, "" = any), whose
 * subscriber's name is exactly name ("" = any) and whose state is state
 * (-1 = any). */
struct sms_card_filter {
	char serial_prefix[20];
	char name[SMS_NAME_MAX + 1];
	int state;
};
int sms_card_find(struct sms_store *s, const struct sms_card_filter *f, uint64_t after, size_t max,
		  int (*fn)(void *ctx, const struct sms_card *c), void *ctx, size_t *count) WARN_UNUSED;

/* Subscribers (a subscriber may hold several cards). sms_subscriber_add:
 * *id gets the new id. sms_subscriber_update: NULL keeps a field.
 * sms_subscriber_list: ids > after, ascending, at most max (<= 10000),
 * only those named exactly name unless name is NULL or "".
 * sms_card_set_subscriber: attach a card to subscriber id (0 detaches). */
struct sms_subscriber {
	int64_t id;
	char name[SMS_NAME_MAX + 1];
	char info[SMS_INFO_MAX + 1];
};
int sms_subscriber_add(struct sms_store *s, const char *name, const char *info, const char *who,
		       int64_t *id) WARN_UNUSED;
int sms_subscriber_get(struct sms_store *s, int64_t id, struct sms_subscriber *out) WARN_UNUSED;
int sms_subscriber_update(struct sms_store *s, int64_t id, const char *name, const char *info,
			  const char *who) WARN_UNUSED;
int sms_subscriber_list(struct sms_store *s, const char *name, int64_t after, size_t max,
			int (*fn)(void *ctx, const struct sms_subscriber *u), void *ctx, size_t *count) WARN_UNUSED;
int sms_card_set_subscriber(struct sms_store *s, uint64_t serial, int64_t id, const char *who) WARN_UNUSED;

/* Several operations as one transaction (CSV import, bulk API calls):
 * between sms_tx_begin and sms_tx_end every store function joins this
 * transaction instead of committing its own. sms_tx_end commits when r is
 * 0, else rolls back; it returns r, or the commit's error. CE_STATE if a
 * transaction is already open. */
int sms_tx_begin(struct sms_store *s) WARN_UNUSED;
int sms_tx_end(struct sms_store *s, int r) WARN_UNUSED;

/* Valid UTF-8 (no overlongs, surrogates, > U+10FFFF) without control
 * bytes: what names and info may hold. */
bool sms_text_valid(const char *t);
/* t holds at most SMS_NAME_CHARS characters (UTF-8 lead bytes) and
 * SMS_NAME_MAX bytes: the one length rule for every name. */
bool sms_name_fits(const char *t);

/* Packages and channels. */
int sms_package_add(struct sms_store *s, uint32_t id, const char *name, const char *who) WARN_UNUSED;
int sms_package_get(struct sms_store *s, uint32_t id, struct sms_package *out) WARN_UNUSED;
int sms_package_count(struct sms_store *s, size_t *count) WARN_UNUSED;
int sms_channel_set(struct sms_store *s, uint16_t service_id, const char *name, uint32_t access_criteria,
		    const char *who) WARN_UNUSED;
int sms_channel_get(struct sms_store *s, uint16_t service_id, uint32_t *access_criteria) WARN_UNUSED;
int sms_channel_delete(struct sms_store *s, uint16_t service_id, const char *who) WARN_UNUSED;
/* Packages with id > after (-1: all), channels with service id > after,
 * ascending, at most max (<= 70000). */
struct sms_channel {
	uint16_t service_id;
	char name[SMS_NAME_MAX + 1];
	uint32_t access_criteria;
};
int sms_package_list(struct sms_store *s, int64_t after, size_t max,
		     int (*fn)(void *ctx, const struct sms_package *p), void *ctx, size_t *count) WARN_UNUSED;
int sms_channel_list(struct sms_store *s, int64_t after, size_t max,
		     int (*fn)(void *ctx, const struct sms_channel *c), void *ctx, size_t *count) WARN_UNUSED;

/* Subscriptions: add or replace one (card, package) period; remove one. */
int sms_subscribe(struct sms_store *s, const struct sms_subscription *sub, const char *who) WARN_UNUSED;
int sms_unsubscribe(struct sms_store *s, uint64_t serial, uint32_t package, const char *who) WARN_UNUSED;
/* A card's subscriptions, by package; *n set (at most max written). */
int sms_subscription_list(struct sms_store *s, uint64_t serial, struct sms_subscription *out, size_t max,
			  size_t *n) WARN_UNUSED;

/* Serving connections (the HTTP loops). sms_store_bg_checkpoint: on a
 * SQLite store, copy the WAL back into the database from a thread of the
 * store's own (PASSIVE checkpoints every 100 ms on a second connection),
 * never inside this connection's commits; stopped by sms_store_close. One
 * per database file is enough: sms_store_no_autocheckpoint turns inline
 * checkpoints off on the other serving connections. Both are no-ops on
 * PostgreSQL (the server checkpoints). */
int sms_store_bg_checkpoint(struct sms_store *s, bool on) WARN_UNUSED;
int sms_store_no_autocheckpoint(struct sms_store *s) WARN_UNUSED;

/* Users and API keys. sms_user_add: *id gets the new user's id.
 * sms_apikey_create: a fresh random key (64 hex digits) is written to
 * key_hex (65 bytes); only its SHA-256 is stored. sms_apikey_check: the
 * key's scopes and user name, CE_NOT_FOUND for an unknown or revoked key
 * (the stored hash is compared in constant time). */
int sms_user_add(struct sms_store *s, const char *name, const char *who, int64_t *id) WARN_UNUSED;
int sms_apikey_create(struct sms_store *s, const char *user, unsigned scopes, const char *who,
		      char key_hex[65]) WARN_UNUSED;
int sms_apikey_check(struct sms_store *s, const char *key, unsigned *scopes,
		     char user[SMS_NAME_MAX + 1]) WARN_UNUSED;
/* The same, and tag gets the first 8 hex digits of the key's SHA-256 (the
 * name the audit log and `sms_apikey_list` give the key), or "" if none.
 *
 * Cache: a connection remembers the keys it accepted (their SHA-256,
 * scopes and user, never the key) for SMS_KEY_CACHE_MS, so a busy API does
 * not query the database per request. A key revoked through this
 * connection stops at once; through another connection (another HTTP
 * thread, another head-end node, the CLI), within that time. Unknown keys
 * are never cached. sms_store_set_key_cache_ms(s, 0) turns it off. */
#define SMS_KEY_CACHE_MS 1000
int sms_apikey_check_tag(struct sms_store *s, const char *key, unsigned *scopes, char user[SMS_NAME_MAX + 1],
			 char tag[9]) WARN_UNUSED;
void sms_store_set_key_cache_ms(struct sms_store *s, unsigned ms);

/* ---- bulk paths (CSV import, REST GET card) ----------------------------
 *
 * sms_card_get_subs: a card and its subscriptions (by package, at most max
 * written to subs, *n set) in ONE query. 0; CE_NOT_FOUND; CE_OVERFLOW when
 * the card holds more than max subscriptions (*out and the first max are
 * filled all the same, as sms_subscription_list does).
 *
 * sms_cards_exist: exists[i] says whether card serials[i] exists (n <=
 * 10000), a few statements for the lot.
 *
 * sms_bulk_*: add many NEW cards quickly. Rows are queued and written
 * SMS_BULK_ROWS at a time with multi-row INSERTs (one statement per table
 * per batch; id ranges of new subscribers allocated once per batch). Only
 * inside sms_tx_begin's transaction (CE_STATE otherwise); when a call
 * fails, rows may be half-written: the caller must roll back (sms_tx_end
 * with the error). Each card still gets ONE audit row of its own (what
 * sms_card_add + access_criteria + sms_subscribe would have said, in one
 * line), so the audit answers "who added card X, when" without the file.
 * sms_bulk_card_add: c->access_criteria gives packages 0..31 (read as
 * input here); packages[] ids >= 32 are subscribed too (ids < 32 there are
 * ignored: give them in the mask), all with the card's period. CE_RANGE at
 * once (nothing queued) for a bad value, e.g. packages >= 32 with finish
 * before start, as sms_subscribe would refuse. sms_bulk_flush writes what
 * is queued; sms_bulk_free frees without writing (flush first). */
#define SMS_BULK_ROWS 64
struct sms_bulk;
int sms_card_get_subs(struct sms_store *s, uint64_t serial, struct sms_card *out, struct sms_subscription *subs,
		      size_t max, size_t *n) WARN_UNUSED;
int sms_cards_exist(struct sms_store *s, const uint64_t *serials, size_t n, bool *exists) WARN_UNUSED;
int sms_bulk_new(struct sms_store *s, const char *who, struct sms_bulk **out) WARN_UNUSED;
int sms_bulk_card_add(struct sms_bulk *b, const struct sms_card *c, const uint32_t *packages,
		      size_t npackages) WARN_UNUSED;
int sms_bulk_flush(struct sms_bulk *b) WARN_UNUSED;
void sms_bulk_free(struct sms_bulk *b);

/* Write one audit entry of the caller's (e.g. an import's summary: rows,
 * SHA-256 of the file), in its own transaction or sms_tx_begin's. */
int sms_audit_add(struct sms_store *s, const char *who, const char *what) WARN_UNUSED;

/* Audit log, newest first, at most max entries. */
struct sms_audit {
	int64_t id;
	int64_t at_ms;
	char who[SMS_WHO_MAX + 1];
	char what[512];
};
int sms_audit_list(struct sms_store *s, size_t max, int (*fn)(void *ctx, const struct sms_audit *a),
		   void *ctx) WARN_UNUSED;
/* sms_audit_add with the entry's action (e.g. "panel.user") and object
 * (e.g. "user:alice", may be ""). */
int sms_audit_add_ev(struct sms_store *s, const char *who, const char *action, const char *object,
		     const char *what) WARN_UNUSED;

/* ---- the audit chain (schema 4, store_audit.c; docs/audit.md) ---------------
 *
 * Every entry: seq (1, 2, ... without gaps), at_ms, who, action (e.g.
 * "card.add", "subscribe", "blacklist.card"), object ("card:SERIAL",
 * "package:ID", ...), details (the human line), snapshot (card entries: the
 * card after the change, "state=S bl=B pair=P subs=PKG:START:FINISH,...
 * chip=ID" or "deleted"), prev_hash and hash = SHA-256 over the canonical
 * entry (sms_audit_entry_hash). Appended inside the change's transaction.
 *
 * sms_audit_range: entries after_seq < seq <= to_seq (0: no end), by seq, at
 * most max (<= 100000); strings point into the row (valid during fn).
 * sms_audit_object: one object's entries with from_ms <= at_ms <= to_ms.
 * sms_audit_verify: walk the whole chain and every stored checkpoint (its
 * signature too when pub is given); returns 0 when it could look (v->bad_seq
 * says whether it holds: 0 = intact), a CE_* code when the database failed.
 * sms_audit_check_checkpoint: one checkpoint (e.g. from the file outside the
 * database) against the log, after sms_audit_verify filled v.
 * sms_audit_checkpoint: sign the current head with the Ed25519 private key,
 * store it and log "audit.checkpoint"; CE_NOT_FOUND on an empty log;
 * CE_EXISTS (nothing written) when the head is the previous checkpoint's
 * own entry, unless force (a periodic checkpointer adds nothing to a
 * quiet log).
 * Checkpoint lines (the file): "seq at_ms hash_hex key_id sig_hex\n". */
struct sms_audit_entry {
	int64_t id, seq, at_ms;
	char who[SMS_WHO_MAX + 1];
	const char *action, *object, *details, *snapshot;
	const char *prev_hex, *hash_hex;  /* as stored (listing only) */
	uint8_t prev_hash[32], hash[32];
};
struct sms_audit_checkpoint {
	int64_t seq, at_ms;
	uint8_t hash[32];
	char key_id[17];     /* first 8 bytes of SHA-256(public key), hex */
	uint8_t sig[64];
};
struct sms_audit_verify {
	int64_t entries, last_seq;
	uint8_t head[32];
	int64_t checkpoints, signed_ok, checkpoint_seq;
	int64_t bad_seq;     /* 0: intact; else the first entry found wrong (-1: none in particular) */
	char why[200];
};
int sms_audit_entry_hash(const struct sms_audit_entry *e, uint8_t out[32]) WARN_UNUSED;
int sms_audit_range(struct sms_store *s, int64_t after_seq, int64_t to_seq, size_t max,
		    int (*fn)(void *ctx, const struct sms_audit_entry *e), void *ctx, size_t *count) WARN_UNUSED;
/* The serials of the cards whose snapshot names box chip (" chip=CHIP")
 * in an entry at or before to_ms, each once (order unspecified): fn(ctx,
 * serial), non-zero stops. May name a card whose chip only matches up to
 * case: the caller compares the snapshots itself. */
int sms_audit_box_cards(struct sms_store *s, const char *chip, int64_t to_ms,
			int (*fn)(void *ctx, uint64_t serial), void *ctx) WARN_UNUSED;
int sms_audit_object(struct sms_store *s, const char *object, int64_t from_ms, int64_t to_ms,
		     int (*fn)(void *ctx, const struct sms_audit_entry *e), void *ctx) WARN_UNUSED;
int sms_audit_verify(struct sms_store *s, const uint8_t *pub, struct sms_audit_verify *v) WARN_UNUSED;
int sms_audit_check_checkpoint(struct sms_store *s, const struct sms_audit_checkpoint *cp, const uint8_t *pub,
			       struct sms_audit_verify *v) WARN_UNUSED;
int sms_audit_checkpoints(struct sms_store *s, int64_t after_seq, struct sms_audit_checkpoint *out, size_t max,
			  size_t *n) WARN_UNUSED;
int sms_audit_checkpoint(struct sms_store *s, const uint8_t priv[32], const char *who, bool force,
			 struct sms_audit_checkpoint *out) WARN_UNUSED;
int sms_audit_checkpoint_line(const struct sms_audit_checkpoint *cp, char *out, size_t cap) WARN_UNUSED;
int sms_audit_checkpoint_parse(const char *line, struct sms_audit_checkpoint *cp) WARN_UNUSED;

/* ---- blacklist (schema 4) ---------------------------------------------------
 *
 * sms_blacklist_add: tag a card (id: its decimal serial; it need not exist
 * yet) or a box (id: its chip id) as involved in piracy, with a reason
 * (<= SMS_NAME_MAX). The card, or every card paired with the box, is set
 * BLOCKED in the same transaction (the head-end sends the BLOCK EMM). There
 * is no removal. From then on the store refuses with CE_BLOCKED: adding the
 * card (or any card with that box's chip id), setting it ACTIVE, giving it
 * subscriptions, a grant (access criteria, period) or a chip, pairing. CE_EXISTS
 * if already listed. sms_blacklist_list: entries listed at or before at_ms
 * (0: now), by kind then id. */
enum sms_bl_kind { SMS_BL_CARD = 0, SMS_BL_BOX = 1 };
struct sms_blacklist_entry {
	enum sms_bl_kind kind;
	char id[SMS_CHIP_ID_MAX + 1];
	char reason[SMS_NAME_MAX + 1];
	int64_t at_ms;
	char who[SMS_WHO_MAX + 1];
};
int sms_blacklist_add(struct sms_store *s, enum sms_bl_kind kind, const char *id, const char *reason,
		      const char *who) WARN_UNUSED;
int sms_blacklist_list(struct sms_store *s, int64_t at_ms,
		       int (*fn)(void *ctx, const struct sms_blacklist_entry *b), void *ctx, size_t *count) WARN_UNUSED;
int sms_blacklist_check(struct sms_store *s, enum sms_bl_kind kind, const char *id, bool *yes) WARN_UNUSED;

/* ---- change feed (schema 2) ---------------------------------------------
 *
 * Every store function that changes a card or its subscriptions (add,
 * change, state, subscriber, delete, subscribe, unsubscribe, bulk add)
 * writes one card_changes row in its own transaction: the change and its
 * feed row commit together or not at all. Ids increase; on PostgreSQL two
 * transactions may commit out of id order, and a rolled-back one leaves a
 * gap, so a follower treats a gap as "maybe not yet committed" for a while
 * (headend.c does). The audit log stays as it is (for people).
 *
 * sms_changes_since: rows with id > after_id, ascending, at most max
 * (<= 100000). sms_changes_last: the newest id (0 if none).
 * sms_changes_prune: delete rows older than before_ms; *removed (may be
 * NULL) gets how many. */
#define SMS_REASON_MAX 15
struct sms_change {
	int64_t id;
	int64_t at_ms;
	uint64_t serial;
	char reason[SMS_REASON_MAX + 1]; /* "add", "change", "state", "subscriber",
	                                  * "delete", "subscribe", "unsubscribe", "import" */
};
int sms_changes_since(struct sms_store *s, int64_t after_id, size_t max,
		      int (*fn)(void *ctx, const struct sms_change *c), void *ctx, size_t *count) WARN_UNUSED;
int sms_changes_last(struct sms_store *s, int64_t *id) WARN_UNUSED;
int sms_changes_prune(struct sms_store *s, int64_t before_ms, int64_t *removed) WARN_UNUSED;

/* ---- EMM sequence numbers (schema 2) --------------------------------------
 *
 * sms_emm_seq_next: atomically give card serial a new sequence number, in
 * one statement (row-locked on PostgreSQL, so two head-end nodes never hand
 * out the same number): *seq = max(want, stored + step) (want if the card
 * has none), stored with digest and blocked. step 1..2, want >= step.
 * CE_RANGE past 2^32 - 1. Call it before the EMM carrying *seq goes on air
 * and commit first (persist before send). Rows stay when a card is deleted:
 * a card added again continues above its old numbers.
 * sms_emm_seq_get: CE_NOT_FOUND if the card has none.
 * sms_emm_seq_list: serials > after, ascending, at most max (<= 100000).
 * sms_emm_seq_import: raise a card's number to at least seq (keeps a
 * higher one): moving an old emm-seq.db file in. */
struct sms_emm_seq {
	uint64_t serial;
	uint32_t seq;
	uint64_t digest;
	bool blocked;
	/* schema 4, sms_emm_seq_list only: the grant last numbered (has_sent
	 * false: none recorded, e.g. numbered before schema 4) */
	bool has_sent;
	uint32_t sent_packages;
	int64_t sent_start, sent_finish;
	char sent_ext[SMS_SENT_EXT_MAX * 6 + 1]; /* "40,41" */
};
int sms_emm_seq_next(struct sms_store *s, uint64_t serial, uint32_t step, uint32_t want, uint64_t digest,
		     bool blocked, uint32_t *seq) WARN_UNUSED;
int sms_emm_seq_get(struct sms_store *s, uint64_t serial, struct sms_emm_seq *out) WARN_UNUSED;
int sms_emm_seq_list(struct sms_store *s, uint64_t after, size_t max,
		     int (*fn)(void *ctx, const struct sms_emm_seq *q), void *ctx, size_t *count) WARN_UNUSED;
int sms_emm_seq_import(struct sms_store *s, const struct sms_emm_seq *q) WARN_UNUSED;

/* ---- the head-end's batched paths (store_feed.c) --------------------------
 *
 * sms_subscription_range: the subscriptions of the cards with after <
 * serial <= last, by card then package, in ONE query (a carousel page's
 * cards: sms_card_list then this). At most max (1..100000) written, *n set;
 * CE_OVERFLOW when there are more (the first max are filled: the cards
 * from out[max - 1].serial on may be incomplete).
 *
 * sms_emm_seq_next_many: sms_emm_seq_next for n rows in ONE transaction
 * (joins sms_tx_begin's), in multi-row statements of up to 64 rows. Each
 * row: q[i].seq = max(want, stored + step), as the single call; 0 when the
 * stored number leaves no room (past 2^32 - 1: the row is left as stored).
 * Rows are applied in order; a serial may appear more than once. CE_ARG
 * (nothing written) for a bad row (serial 0 or > 2^63 - 1, step not 1..2,
 * want < step). On an error every row may be unwritten: the caller must not
 * send any of the numbers. */
struct sms_emm_seq_req {
	uint64_t serial;
	uint32_t step, want;   /* in */
	uint64_t digest;
	bool blocked;
	uint32_t seq;          /* out */
	/* Schema 4: what the EMM numbered carries (for `sms reconcile`): the
	 * grant's 32-bit mask, period and extended package ids; has_sent false
	 * leaves the stored ones as they are. */
	bool has_sent;
	uint32_t sent_packages;
	int64_t sent_start, sent_finish;
	size_t sent_next;
	uint16_t sent_ext[SMS_SENT_EXT_MAX];
};
int sms_subscription_range(struct sms_store *s, uint64_t after, uint64_t last, struct sms_subscription *out,
			   size_t max, size_t *n) WARN_UNUSED;
int sms_emm_seq_next_many(struct sms_store *s, struct sms_emm_seq_req *q, size_t n) WARN_UNUSED;

/* ---- ECM/EMM generator definitions (schema 2) -----------------------------
 *
 * kind ECMG: address is where the ECMG listens ("host:port"); kind EMMG:
 * the MUX it connects to. name unique (1..SMS_NAME_MAX, sms_text_valid).
 * bandwidth_kbps: EMMG only (1..65535; 0 for an ECMG). client_id: the EMMG's
 * client_id (0 = CA_system_id << 16 | 1); 0 for an ECMG. Each change is
 * audited. sms_generator_update replaces every field but id. list: id > after,
 * kind -1 = any, at most max (<= 1000). sms_generator_first: the enabled
 * generator of that kind with the lowest id (what `castellan headend` uses
 * when no address is given), CE_NOT_FOUND if none. */
#define SMS_ADDR_MAX 255
enum sms_gen_kind { SMS_GEN_ECMG = 0, SMS_GEN_EMMG = 1 };
struct sms_generator {
	int64_t id;
	enum sms_gen_kind kind;
	char name[SMS_NAME_MAX + 1];
	char address[SMS_ADDR_MAX + 1];
	uint16_t ca_system_id;
	uint32_t client_id;
	uint32_t bandwidth_kbps;
	bool enabled;
};
int sms_generator_add(struct sms_store *s, const struct sms_generator *g, const char *who, int64_t *id) WARN_UNUSED;
int sms_generator_update(struct sms_store *s, int64_t id, const struct sms_generator *g, const char *who) WARN_UNUSED;
int sms_generator_get(struct sms_store *s, int64_t id, struct sms_generator *out) WARN_UNUSED;
int sms_generator_first(struct sms_store *s, enum sms_gen_kind kind, struct sms_generator *out) WARN_UNUSED;
int sms_generator_list(struct sms_store *s, int kind, int64_t after, size_t max,
		       int (*fn)(void *ctx, const struct sms_generator *g), void *ctx, size_t *count) WARN_UNUSED;

/* ---- head-end node status (schema 2) ---------------------------------------
 *
 * sms_node_status_put: upsert node's status (a JSON object's text, at most
 * 64 KiB) at now; not audited (counters, not changes). list: every node,
 * by name, with when each last reported. */
#define SMS_STATUS_MAX 65536
int sms_node_status_put(struct sms_store *s, const char *node, const char *json) WARN_UNUSED;
int sms_node_status_list(struct sms_store *s,
			 int (*fn)(void *ctx, const char *node, int64_t updated_ms, const char *json), void *ctx)
	WARN_UNUSED;

/* ---- admin calls (store_admin.c) -------------------------------------------
 *
 * sms_card_find_info: sms_card_search(s, f, SMS_SEARCH_INFO, info, ...)
 * ("" or NULL = any: sms_card_find).
 * sms_package_rename: CE_NOT_FOUND, CE_EXISTS (name taken), CE_RANGE.
 * sms_apikey_list: keys with id > after, ascending, at most max (<= 10000),
 * revoked ones too; never the key or its whole hash, only the first 8 hex
 * digits of its SHA-256 (what the audit log names it by).
 * sms_apikey_revoke: the key stops working at once on this connection
 * (sms_apikey_check gives CE_NOT_FOUND), within SMS_KEY_CACHE_MS on others;
 * CE_NOT_FOUND for no such id; revoking twice is 0. */
struct sms_apikey {
	int64_t id;
	char user[SMS_NAME_MAX + 1];
	char hash_prefix[9];
	unsigned scopes;
	int64_t created_ms;
	bool revoked;
};
int sms_card_find_info(struct sms_store *s, const struct sms_card_filter *f, const char *info, uint64_t after,
		       size_t max, int (*fn)(void *ctx, const struct sms_card *c), void *ctx, size_t *count) WARN_UNUSED;
int sms_package_rename(struct sms_store *s, uint32_t id, const char *name, const char *who) WARN_UNUSED;
int sms_apikey_list(struct sms_store *s, int64_t after, size_t max,
		    int (*fn)(void *ctx, const struct sms_apikey *k), void *ctx, size_t *count) WARN_UNUSED;
int sms_apikey_revoke(struct sms_store *s, int64_t id, const char *who) WARN_UNUSED;

/* ---- text search (store_search.c, schema 5) --------------------------------
 *
 * sms_card_search: sms_card_find's filters, also keeping only the cards
 * whose subscriber's name and/or info (field) contains text, ASCII letters
 * case-insensitively (other characters as they are), on both backends.
 * text is taken literally: %, _, \, quotes and FTS syntax match themselves.
 * Answered from the trigram index (SQLite: FTS5 `subscribers_fts`, trigram
 * tokenizer; PostgreSQL: pg_trgm GIN indexes), every candidate re-checked
 * against the text, so the result is exactly what a scan gives.
 *
 * Text of fewer than SMS_SEARCH_MIN_CHARS characters has no trigram: for
 * SMS_SEARCH_NAME and SMS_SEARCH_ANY it finds the subscribers whose whole
 * name equals text (ASCII case-insensitively, through a B-tree index); for
 * SMS_SEARCH_INFO it is CE_ARG. "" is CE_ARG. Over SMS_SEARCH_TEXT_MAX
 * bytes or not sms_text_valid: CE_RANGE. A deadline set with
 * sms_store_set_deadline stops it with CE_TIMEOUT.
 *
 * sms_store_set_deadline: every statement of this connection stops with
 * CE_TIMEOUT once now_mono_ms() >= mono_ms (0 removes it). For the search
 * workers' own connections (sms/search.h).
 *
 * sms_search_index_state: whether the trigram index is there (*indexed)
 * and, if not, why (why: at least 160 bytes). On PostgreSQL it is missing
 * when the pg_trgm extension could not be created (docs/sms.md, "Search").
 * sms_search_index_build: create what is missing (PostgreSQL: the
 * extension if it can, then the GIN indexes); SQLite: rebuild the FTS5
 * table from subscribers.
 * sms_search_candidates: how many subscribers the index alone proposes for
 * text (before the re-check), at most limit: for tests and benchmarks.
 * sms_search_index_check: SQLite: FTS5's integrity check of the index
 * against subscribers (0, or CE_IO: rebuild with sms_search_index_build);
 * PostgreSQL: 0 (the server maintains its indexes). */
#define SMS_SEARCH_MIN_CHARS 3
#define SMS_SEARCH_TEXT_MAX SMS_NAME_MAX
enum sms_search_field { SMS_SEARCH_ANY = 0, SMS_SEARCH_NAME = 1, SMS_SEARCH_INFO = 2 };
int sms_card_search(struct sms_store *s, const struct sms_card_filter *f, enum sms_search_field field,
		    const char *text, uint64_t after, size_t max, int (*fn)(void *ctx, const struct sms_card *c),
		    void *ctx, size_t *count) WARN_UNUSED;
int sms_store_set_deadline(struct sms_store *s, uint64_t mono_ms) WARN_UNUSED;
int sms_search_index_state(struct sms_store *s, bool *indexed, char *why, size_t why_cap) WARN_UNUSED;
int sms_search_index_build(struct sms_store *s) WARN_UNUSED;
int sms_search_candidates(struct sms_store *s, enum sms_search_field field, const char *text, size_t limit,
			  size_t *n) WARN_UNUSED;
int sms_search_index_check(struct sms_store *s) WARN_UNUSED;
/* ---- web panel users (schema 6, store_panel.c) ----------------------------
 *
 * The panel's accounts (web/auth.c hashes and checks passwords; the store
 * only keeps the result), shared by every node on one database. name:
 * [A-Za-z0-9._-], 1..SMS_PANEL_NAME_MAX; role 0..2 (enum web_role); kdf_*:
 * the scrypt cost of this row's hash. No audit entry is written here (the
 * panel writes its own). sms_panel_user_add: CE_EXISTS for a taken name,
 * CE_ARG for a bad value; created_ms 0 = now. sms_panel_user_set_secret:
 * new cost, salt and hash from sec (name ignored), lock-out cleared.
 * sms_panel_user_set_lock: the wrong-password count and lock-out end.
 * Changes: CE_NOT_FOUND for no such user. sms_panel_user_list: by name;
 * the struct is wiped after each call of fn. A row whose salt or hash does
 * not decode comes back with has_secret false. */
#define SMS_PANEL_NAME_MAX 48
#define SMS_PANEL_SALT_BYTES 16
#define SMS_PANEL_HASH_BYTES 32
struct sms_panel_user {
	char name[SMS_PANEL_NAME_MAX + 1];
	int role;
	uint64_t kdf_n;
	uint32_t kdf_r, kdf_p;
	uint8_t salt[SMS_PANEL_SALT_BYTES], hash[SMS_PANEL_HASH_BYTES];
	bool has_secret;
	unsigned fails;          /* wrong passwords in a row */
	int64_t locked_until_ms; /* unix ms, 0 = not locked */
	int64_t created_ms;
};
int sms_panel_user_add(struct sms_store *s, const struct sms_panel_user *u) WARN_UNUSED;
int sms_panel_user_get(struct sms_store *s, const char *name, struct sms_panel_user *out) WARN_UNUSED;
int sms_panel_user_count(struct sms_store *s, size_t *n) WARN_UNUSED;
int sms_panel_user_set_secret(struct sms_store *s, const char *name, const struct sms_panel_user *sec) WARN_UNUSED;
int sms_panel_user_set_role(struct sms_store *s, const char *name, int role) WARN_UNUSED;
int sms_panel_user_set_lock(struct sms_store *s, const char *name, unsigned fails, int64_t locked_until_ms)
	WARN_UNUSED;
int sms_panel_user_delete(struct sms_store *s, const char *name) WARN_UNUSED;
int sms_panel_user_list(struct sms_store *s, int (*fn)(void *ctx, const struct sms_panel_user *u),
			void *ctx) WARN_UNUSED;

/* ---- copying a store (store_copy.c; `castellan sms migrate`) ----------------
 *
 * sms_store_copy: every table of from (the schema's tables, SMS_COPY_TABLES
 * of them, in foreign-key order) into to, row for row with ids, key hashes,
 * audit chain, sequence numbers as they are; from read in one snapshot, to
 * written in one transaction (a failure leaves it as it was). The target
 * must be empty (a new store's 32 default packages aside): else CE_EXISTS
 * and why names the first table with rows, unless flags has
 * SMS_COPY_OVERWRITE (its rows are deleted first, in the same
 * transaction). CE_ARG when both are one database. out[i]: each table's
 * name, rows copied and the digest of the rows read (sms_store_digest's).
 * Neither store may be inside sms_tx_begin (CE_STATE). why (why_cap
 * bytes): a line for the operator on failure.
 * sms_store_digest: each table's rows and an order-free SHA-256-based
 * digest of their values (equal across backends for equal rows).
 * sms_copy_table_name: the i-th table's name, NULL past the last. */
#define SMS_COPY_TABLES 18
#define SMS_COPY_OVERWRITE 0x1u
struct sms_copy_table {
	const char *name;
	int64_t rows;
	uint8_t digest[32];
};
int sms_store_copy(struct sms_store *from, struct sms_store *to, unsigned flags,
		   struct sms_copy_table out[SMS_COPY_TABLES], char *why, size_t why_cap) WARN_UNUSED;
int sms_store_digest(struct sms_store *s, struct sms_copy_table out[SMS_COPY_TABLES]) WARN_UNUSED;
const char *sms_copy_table_name(size_t i);

#endif
