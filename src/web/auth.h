/*
 * auth.h - the web panel's users: names, roles and password hashes, and
 * the sign-in check with lock-out. Stored in the SMS store's panel_users
 * table (schema 6, sms/store_panel.c), so head-end nodes sharing one
 * PostgreSQL database share their users; an older separate users file
 * (<data_dir>/web.db) is moved in by web_users_import_file. A session maps
 * to scopes (web.h); no API key is made for a panel user.
 *
 * Passwords: scrypt (RFC 7914, OpenSSL EVP_KDF "SCRYPT"), a memory-hard
 * KDF; N, r, p and a 16-byte random salt are stored with each 32-byte hash
 * so the cost can be raised later without a migration. Hashes are compared
 * with CRYPTO_memcmp. An unknown user costs the same KDF run as a known
 * one, so timing does not tell which names exist.
 *
 * Lock-out: WEB_LOCKOUT_FAILS wrong passwords in a row lock the account
 * for WEB_LOCKOUT_MS (even the right password is refused meanwhile); a
 * successful sign-in or web_user_unlock resets the count. Counts live in
 * the store, so restarting the process does not reset them.
 *
 * Every function returns 0 or a negative CE_* code.
 */
#ifndef CASTELLAN_WEB_AUTH_H
#define CASTELLAN_WEB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define WEB_USER_MAX 48	    /* bytes of a user name: [A-Za-z0-9._-], 1..48 ("web:" + it fits SMS_WHO_MAX) */
#define WEB_PASSWORD_MIN 10 /* bytes */
#define WEB_PASSWORD_MAX 256
#define WEB_LOCKOUT_FAILS 5
#define WEB_LOCKOUT_MS (15u * 60u * 1000u)
#define WEB_SALT_BYTES 16
#define WEB_HASH_BYTES 32

/* Roles, weakest first. Scopes (store.h): read-only READ; operator
 * READ|WRITE; admin READ|WRITE|ADMIN (and the panel's user management). */
enum web_role { WEB_ROLE_READONLY = 0, WEB_ROLE_OPERATOR = 1, WEB_ROLE_ADMIN = 2 };

/* scrypt cost. Default N=2^15, r=8, p=1: 32 MiB and 0.1-0.4 s a sign-in. */
struct web_kdf {
	uint64_t n;
	uint32_t r, p;
};
#define WEB_KDF_DEFAULT ((struct web_kdf){1u << 15, 8, 1})

#define WEB_PW_STAMP_BYTES 8
struct web_user_info {
	char name[WEB_USER_MAX + 1];
	enum web_role role;
	uint8_t pw_stamp[WEB_PW_STAMP_BYTES]; /* changes with every password set (the salt's first bytes) */
	unsigned fails;		 /* wrong passwords in a row */
	int64_t locked_until_ms; /* unix ms; 0 = not locked */
};

struct web_users;
struct sms_store;

/* The users of store (borrowed: it outlives *out; use both from one
 * thread). kdf: the cost of new hashes (NULL = WEB_KDF_DEFAULT). Free
 * with web_users_close. */
int web_users_open(struct sms_store *store, const struct web_kdf *kdf, struct web_users **out) WARN_UNUSED;
void web_users_close(struct web_users *u);
struct sms_store *web_users_store(struct web_users *u);

/* Move the users of an older separate users file (SQLite, table users:
 * the panel's store before schema 6; read-only) into the store, hashes,
 * cost, roles and lock-out as they are, so every password still works.
 * A name the store already has keeps the store's row (counted in
 * *skipped, logged). When every row was read, the file is renamed to
 * path + ".imported" so it is read once. No such file: 0, nothing done.
 * CE_IO (unreadable file: nothing renamed), CE_* of the store. */
#define WEB_USERS_LEGACY_FILE "web.db"
int web_users_import_file(struct web_users *u, const char *path, size_t *imported, size_t *skipped) WARN_UNUSED;
int web_users_count(struct web_users *u, size_t *n) WARN_UNUSED;

/* CE_ARG: bad name, password shorter than WEB_PASSWORD_MIN or longer than
 * WEB_PASSWORD_MAX; CE_EXISTS. */
int web_user_add(struct web_users *u, const char *name, const char *password, enum web_role role) WARN_UNUSED;
int web_user_set_password(struct web_users *u, const char *name, const char *password) WARN_UNUSED;
int web_user_set_role(struct web_users *u, const char *name, enum web_role role) WARN_UNUSED;
int web_user_delete(struct web_users *u, const char *name) WARN_UNUSED;
int web_user_unlock(struct web_users *u, const char *name) WARN_UNUSED;
int web_user_get(struct web_users *u, const char *name, struct web_user_info *out) WARN_UNUSED;
int web_user_list(struct web_users *u, int (*fn)(void *ctx, const struct web_user_info *i),
		  void *ctx) WARN_UNUSED;

/* The panel's sign-in in two steps, so that the KDF runs off the HTTP loop
 * (web.c's worker pool): web_user_lookup (the loop: the user's KDF
 * parameters, salt and hash; for an unknown or invalid name a dummy salt
 * and found = false, 0 either way; CE_IO) then web_pw_verify (any thread,
 * no database: 0 match, CE_MAC wrong or unknown - the same KDF run either
 * way - or CE_CRYPTO). Lock-out is the caller's (web.c, in memory, by
 * client address and user). Wipe rec after use. */
struct web_pw_rec {
	struct web_kdf kdf;
	uint8_t salt[WEB_SALT_BYTES], hash[WEB_HASH_BYTES];
	bool found;
	enum web_role role;
};
int web_user_lookup(struct web_users *u, const char *name, struct web_pw_rec *rec) WARN_UNUSED;
int web_pw_verify(const struct web_pw_rec *rec, const char *password) WARN_UNUSED;

/* Sign-in: 0 and *role; CE_MAC (unknown user or wrong password, the same
 * answer for both); CE_BLOCKED (locked out: *locked_until_ms says until
 * when); CE_IO. now_ms: wall clock (tests pass their own). */
int web_user_check(struct web_users *u, const char *name, const char *password, int64_t now_ms,
		   enum web_role *role, int64_t *locked_until_ms) WARN_UNUSED;

/* scrypt of password with salt into out[WEB_HASH_BYTES]. 0 or CE_CRYPTO. */
int web_password_hash(const struct web_kdf *kdf, const char *password, const uint8_t salt[WEB_SALT_BYTES],
		      uint8_t out[WEB_HASH_BYTES]) WARN_UNUSED;

bool web_user_name_valid(const char *name);
const char *web_role_name(enum web_role r);
int web_role_parse(const char *s, enum web_role *out) WARN_UNUSED;
unsigned web_role_scopes(enum web_role r);

#endif
