/*
 * auth.c - the web panel's users (auth.h): a small SQLite file, scrypt
 * hashes through OpenSSL's EVP_KDF, constant-time compares, lock-out.
 *
 * Table users (one row per panel user):
 *   name TEXT PRIMARY KEY   [A-Za-z0-9._-]{1,64}
 *   role INTEGER            enum web_role
 *   kdf_n, kdf_r, kdf_p     scrypt cost of this row's hash
 *   salt BLOB(16), hash BLOB(32)
 *   fails INTEGER           wrong passwords in a row
 *   locked_until INTEGER    unix ms, 0 = not locked
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include "web/auth.h"
#include "sms/store.h"
#include "lib/log.h"
#include "lib/util.h"

struct web_users {
	sqlite3 *db;
	struct web_kdf kdf;
	uint8_t dummy_salt[WEB_SALT_BYTES]; /* for unknown users: same cost, no answer */
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS users ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " role INTEGER NOT NULL CHECK (role BETWEEN 0 AND 2),"
    " kdf_n INTEGER NOT NULL, kdf_r INTEGER NOT NULL, kdf_p INTEGER NOT NULL,"
    " salt BLOB NOT NULL, hash BLOB NOT NULL,"
    " fails INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0);";

bool web_user_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > WEB_USER_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static const char *const role_names[] = {"read-only", "operator", "admin"};

const char *web_role_name(enum web_role r)
{
	return (unsigned)r < 3 ? role_names[r] : "?";
}

int web_role_parse(const char *s, enum web_role *out)
{
	for (unsigned i = 0; s && i < 3; i++) {
		if (strcmp(s, role_names[i]) == 0) {
			*out = (enum web_role)i;
			return 0;
		}
	}
	return CE_ARG;
}

unsigned web_role_scopes(enum web_role r)
{
	switch (r) {
	case WEB_ROLE_ADMIN:
		return SMS_SCOPE_READ | SMS_SCOPE_WRITE | SMS_SCOPE_ADMIN;
	case WEB_ROLE_OPERATOR:
		return SMS_SCOPE_READ | SMS_SCOPE_WRITE;
	default:
		return SMS_SCOPE_READ;
	}
}

int web_password_hash(const struct web_kdf *kdf, const char *password, const uint8_t salt[WEB_SALT_BYTES],
		      uint8_t out[WEB_HASH_BYTES])
{
	EVP_KDF *k = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	EVP_KDF_CTX *c = NULL;
	OSSL_PARAM p[6];
	uint64_t n = kdf->n;
	uint32_t r_ = kdf->r, p_ = kdf->p;
	int r = CE_CRYPTO;

	if (!k)
		return CE_CRYPTO;
	if (!(c = EVP_KDF_CTX_new(k)))
		goto out;
	p[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)(uintptr_t)password,
						 strlen(password));
	p[1] =
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt, WEB_SALT_BYTES);
	p[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	p[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r_);
	p[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p_);
	p[5] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(c, out, WEB_HASH_BYTES, p) == 1)
		r = 0;
out:
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(k);
	return r;
}

static bool kdf_sane(const struct web_kdf *k)
{
	/* N a power of two in 2^10..2^20, r 1..32, p 1..16: at most 1 GiB. */
	return k->n >= 1024 && k->n <= (1u << 20) && (k->n & (k->n - 1)) == 0 && k->r >= 1 && k->r <= 32 &&
	       k->p >= 1 && k->p <= 16;
}

int web_users_open(const char *path, const struct web_kdf *kdf, struct web_users **out)
{
	struct web_users *u;
	int r = CE_IO;

	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return CE_NOMEM;
	u->kdf = kdf ? *kdf : WEB_KDF_DEFAULT;
	if (!kdf_sane(&u->kdf)) {
		r = CE_ARG;
		goto fail;
	}
	if (RAND_bytes(u->dummy_salt, sizeof(u->dummy_salt)) != 1) {
		r = CE_CRYPTO;
		goto fail;
	}
	/* The file holds password hashes: owner-only, created so before SQLite
	 * opens it (SQLite gives its journal and WAL files the same mode). */
	if ((r = file_make_private(path)) != 0) {
		LOG_ERR("web", "users file %s: %s", path, strerror(errno));
		goto fail;
	}
	r = CE_IO;
	if (sqlite3_open_v2(path, &u->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		LOG_ERR("web", "users file %s: %s", path, u->db ? sqlite3_errmsg(u->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(u->db, 5000);
	if (sqlite3_exec(u->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
		LOG_ERR("web", "users file %s: %s", path, sqlite3_errmsg(u->db));
		goto fail;
	}
	*out = u;
	return 0;
fail:
	web_users_close(u);
	return r;
}

void web_users_close(struct web_users *u)
{
	if (!u)
		return;
	sqlite3_close(u->db);
	secret_wipe(u, sizeof(*u));
	free(u);
}

/* Prepare sql and bind text parameters (NULL ends the list). */
static int prep(struct web_users *u, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(u->db, sql, -1, st, NULL) != SQLITE_OK) {
		LOG_ERR("web", "sqlite: %s", sqlite3_errmsg(u->db));
		return CE_IO;
	}
	return 0;
}

static int step_done(struct web_users *u, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int r = 0;

	if (rc == SQLITE_CONSTRAINT)
		r = CE_EXISTS;
	else if (rc != SQLITE_DONE) {
		LOG_ERR("web", "sqlite: %s", sqlite3_errmsg(u->db));
		r = CE_IO;
	} else if (sqlite3_changes(u->db) == 0) {
		r = CE_NOT_FOUND;
	}
	sqlite3_finalize(st);
	return r;
}

int web_users_count(struct web_users *u, size_t *n)
{
	sqlite3_stmt *st;
	int r;

	*n = 0;
	if ((r = prep(u, "SELECT count(*) FROM users", &st)) != 0)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW)
		*n = (size_t)sqlite3_column_int64(st, 0);
	else
		r = CE_IO;
	sqlite3_finalize(st);
	return r;
}

static bool password_ok(const char *pw)
{
	size_t n = pw ? strlen(pw) : 0;

	return n >= WEB_PASSWORD_MIN && n <= WEB_PASSWORD_MAX;
}

/* Fresh salt and hash of pw with the configured cost. */
static int new_hash(struct web_users *u, const char *pw, uint8_t salt[WEB_SALT_BYTES],
		    uint8_t hash[WEB_HASH_BYTES])
{
	if (RAND_bytes(salt, WEB_SALT_BYTES) != 1)
		return CE_CRYPTO;
	return web_password_hash(&u->kdf, pw, salt, hash);
}

int web_user_add(struct web_users *u, const char *name, const char *password, enum web_role role)
{
	uint8_t salt[WEB_SALT_BYTES], hash[WEB_HASH_BYTES];
	sqlite3_stmt *st = NULL;
	int r;

	if (!web_user_name_valid(name) || !password_ok(password) || (unsigned)role > WEB_ROLE_ADMIN)
		return CE_ARG;
	if ((r = new_hash(u, password, salt, hash)) != 0)
		goto out;
	if ((r = prep(
		 u, "INSERT INTO users (name, role, kdf_n, kdf_r, kdf_p, salt, hash) VALUES (?,?,?,?,?,?,?)",
		 &st)) != 0)
		goto out;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)role);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)u->kdf.n);
	sqlite3_bind_int(st, 4, (int)u->kdf.r);
	sqlite3_bind_int(st, 5, (int)u->kdf.p);
	sqlite3_bind_blob(st, 6, salt, sizeof(salt), SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, hash, sizeof(hash), SQLITE_STATIC);
	r = step_done(u, st);
	if (r == 0)
		LOG_INFO("web", "user %s added (%s)", name, web_role_name(role));
out:
	secret_wipe(hash, sizeof(hash));
	return r;
}

int web_user_set_password(struct web_users *u, const char *name, const char *password)
{
	uint8_t salt[WEB_SALT_BYTES], hash[WEB_HASH_BYTES];
	sqlite3_stmt *st = NULL;
	int r;

	if (!web_user_name_valid(name) || !password_ok(password))
		return CE_ARG;
	if ((r = new_hash(u, password, salt, hash)) != 0)
		goto out;
	if ((r = prep(u,
		      "UPDATE users SET kdf_n=?, kdf_r=?, kdf_p=?, salt=?, hash=?, fails=0, locked_until=0 "
		      "WHERE name=?",
		      &st)) != 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)u->kdf.n);
	sqlite3_bind_int(st, 2, (int)u->kdf.r);
	sqlite3_bind_int(st, 3, (int)u->kdf.p);
	sqlite3_bind_blob(st, 4, salt, sizeof(salt), SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, hash, sizeof(hash), SQLITE_STATIC);
	sqlite3_bind_text(st, 6, name, -1, SQLITE_STATIC);
	r = step_done(u, st);
out:
	secret_wipe(hash, sizeof(hash));
	return r;
}

static int simple_update(struct web_users *u, const char *sql, const char *name, int ival, bool with_int)
{
	sqlite3_stmt *st;
	int r;

	if (!web_user_name_valid(name))
		return CE_ARG;
	if ((r = prep(u, sql, &st)) != 0)
		return r;
	if (with_int) {
		sqlite3_bind_int(st, 1, ival);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	} else {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	}
	return step_done(u, st);
}

int web_user_set_role(struct web_users *u, const char *name, enum web_role role)
{
	if ((unsigned)role > WEB_ROLE_ADMIN)
		return CE_ARG;
	return simple_update(u, "UPDATE users SET role=? WHERE name=?", name, (int)role, true);
}

int web_user_delete(struct web_users *u, const char *name)
{
	return simple_update(u, "DELETE FROM users WHERE name=?", name, 0, false);
}

int web_user_unlock(struct web_users *u, const char *name)
{
	return simple_update(u, "UPDATE users SET fails=0, locked_until=0 WHERE name=?", name, 0, false);
}

static void row_info(sqlite3_stmt *st, struct web_user_info *i)
{
	const unsigned char *n = sqlite3_column_text(st, 0);

	memset(i, 0, sizeof(*i));
	snprintf(i->name, sizeof(i->name), "%s", n ? (const char *)n : "");
	i->role = (enum web_role)sqlite3_column_int(st, 1);
	i->fails = (unsigned)sqlite3_column_int(st, 2);
	i->locked_until_ms = sqlite3_column_int64(st, 3);
	/* Every query that fills a web_user_info selects the salt 5th. */
	if (sqlite3_column_count(st) > 4 && sqlite3_column_bytes(st, 4) == WEB_SALT_BYTES)
		memcpy(i->pw_stamp, sqlite3_column_blob(st, 4), WEB_PW_STAMP_BYTES);
}

int web_user_get(struct web_users *u, const char *name, struct web_user_info *out)
{
	sqlite3_stmt *st;
	int r, rc;

	memset(out, 0, sizeof(*out));
	if (!web_user_name_valid(name))
		return CE_NOT_FOUND;
	if ((r = prep(u, "SELECT name, role, fails, locked_until, salt FROM users WHERE name=?", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_info(st, out);
	r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? CE_NOT_FOUND : CE_IO;
	sqlite3_finalize(st);
	return r;
}

int web_user_list(struct web_users *u, int (*fn)(void *ctx, const struct web_user_info *i), void *ctx)
{
	struct web_user_info i;
	sqlite3_stmt *st;
	int r, rc;

	if ((r = prep(u, "SELECT name, role, fails, locked_until, salt FROM users ORDER BY name", &st)) != 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_info(st, &i);
		if ((r = fn(ctx, &i)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = CE_IO;
	sqlite3_finalize(st);
	return r;
}

static int record(struct web_users *u, const char *name, unsigned fails, int64_t locked_until)
{
	sqlite3_stmt *st;
	int r;

	if ((r = prep(u, "UPDATE users SET fails=?, locked_until=? WHERE name=?", &st)) != 0)
		return r;
	sqlite3_bind_int(st, 1, (int)fails);
	sqlite3_bind_int64(st, 2, locked_until);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	return step_done(u, st);
}

int web_user_lookup(struct web_users *u, const char *name, struct web_pw_rec *rec)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	memset(rec, 0, sizeof(*rec));
	rec->kdf = u->kdf;
	memcpy(rec->salt, u->dummy_salt, sizeof(rec->salt));
	if (!web_user_name_valid(name))
		return 0;
	if ((r = prep(u, "SELECT name, role, fails, locked_until, salt, kdf_n, kdf_r, kdf_p, hash FROM users "
			 "WHERE name=?", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 4) == WEB_SALT_BYTES &&
	    sqlite3_column_bytes(st, 8) == WEB_HASH_BYTES) {
		struct web_kdf rk = {(uint64_t)sqlite3_column_int64(st, 5), (uint32_t)sqlite3_column_int(st, 6),
				     (uint32_t)sqlite3_column_int(st, 7)};

		if (kdf_sane(&rk)) {
			rec->kdf = rk;
			rec->found = true;
			rec->role = (enum web_role)sqlite3_column_int(st, 1);
			memcpy(rec->salt, sqlite3_column_blob(st, 4), WEB_SALT_BYTES);
			memcpy(rec->hash, sqlite3_column_blob(st, 8), WEB_HASH_BYTES);
		}
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		return CE_IO;
	}
	sqlite3_finalize(st);
	return 0;
}

int web_pw_verify(const struct web_pw_rec *rec, const char *password)
{
	uint8_t got[WEB_HASH_BYTES];
	int r;

	/* Always the KDF: an unknown name costs what a known one does. */
	if (!password || strlen(password) > WEB_PASSWORD_MAX)
		password = "";
	r = web_password_hash(&rec->kdf, password, rec->salt, got);
	if (r == 0)
		r = rec->found && CRYPTO_memcmp(got, rec->hash, WEB_HASH_BYTES) == 0 ? 0 : CE_MAC;
	secret_wipe(got, sizeof(got));
	return r;
}

int web_user_check(struct web_users *u, const char *name, const char *password, int64_t now_ms,
		   enum web_role *role, int64_t *locked_until_ms)
{
	uint8_t salt[WEB_SALT_BYTES], want[WEB_HASH_BYTES], got[WEB_HASH_BYTES];
	struct web_kdf k = u->kdf;
	struct web_user_info info = {0};
	sqlite3_stmt *st = NULL;
	bool found = false, match;
	int r, rc;

	*role = WEB_ROLE_READONLY;
	*locked_until_ms = 0;
	memcpy(salt, u->dummy_salt, sizeof(salt));
	memset(want, 0, sizeof(want));
	if (web_user_name_valid(name) && password && strlen(password) <= WEB_PASSWORD_MAX) {
		if ((r = prep(
			 u,
			 "SELECT name, role, fails, locked_until, salt, kdf_n, kdf_r, kdf_p, hash FROM users "
			 "WHERE name=?",
			 &st)) != 0)
			return r;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 4) == WEB_SALT_BYTES &&
		    sqlite3_column_bytes(st, 8) == WEB_HASH_BYTES) {
			struct web_kdf rk = {(uint64_t)sqlite3_column_int64(st, 5),
					     (uint32_t)sqlite3_column_int(st, 6),
					     (uint32_t)sqlite3_column_int(st, 7)};

			row_info(st, &info);
			if (kdf_sane(&rk)) {
				k = rk;
				found = true;
				memcpy(salt, sqlite3_column_blob(st, 4), WEB_SALT_BYTES);
				memcpy(want, sqlite3_column_blob(st, 8), WEB_HASH_BYTES);
			}
		} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			sqlite3_finalize(st);
			return CE_IO;
		}
		sqlite3_finalize(st);
	}
	/* Always run the KDF: an unknown name costs what a known one does. */
	if ((r = web_password_hash(&k, password ? password : "", salt, got)) != 0)
		goto out;
	match = found && CRYPTO_memcmp(got, want, WEB_HASH_BYTES) == 0;
	if (!found) {
		r = CE_MAC;
		goto out;
	}
	if (info.locked_until_ms > now_ms) {
		*locked_until_ms = info.locked_until_ms;
		r = CE_BLOCKED;
		goto out;
	}
	if (!match) {
		unsigned fails = info.fails + 1;
		int64_t until = 0;

		if (fails >= WEB_LOCKOUT_FAILS) {
			until = now_ms + WEB_LOCKOUT_MS;
			fails = 0;
			LOG_WARN("web", "user %s locked out for %u minutes after %u wrong passwords", name,
				 WEB_LOCKOUT_MS / 60000u, WEB_LOCKOUT_FAILS);
		}
		r = record(u, name, fails, until);
		if (r == 0 && until) {
			*locked_until_ms = until;
			r = CE_BLOCKED;
		} else if (r == 0) {
			r = CE_MAC;
		}
		goto out;
	}
	if (info.fails || info.locked_until_ms)
		r = record(u, name, 0, 0);
	if (r == 0)
		*role = info.role;
out:
	secret_wipe(want, sizeof(want));
	secret_wipe(got, sizeof(got));
	return r;
}
