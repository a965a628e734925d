/*
 * auth.c - the web panel's users (auth.h): scrypt hashes through
 * OpenSSL's EVP_KDF, constant-time compares, lock-out. The rows live in
 * the SMS store's panel_users table (sms/store_panel.c, schema 6), which
 * keeps what this file computes and never sees a password.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	struct sms_store *store; /* borrowed */
	struct web_kdf kdf;
	uint8_t dummy_salt[WEB_SALT_BYTES]; /* for unknown users: same cost, no answer */
};

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

int web_users_open(struct sms_store *store, const struct web_kdf *kdf, struct web_users **out)
{
	struct web_users *u;
	int r;

	*out = NULL;
	if (!store)
		return CE_ARG;
	u = calloc(1, sizeof(*u));
	if (!u)
		return CE_NOMEM;
	u->store = store;
	u->kdf = kdf ? *kdf : WEB_KDF_DEFAULT;
	if (!kdf_sane(&u->kdf)) {
		r = CE_ARG;
		goto fail;
	}
	if (RAND_bytes(u->dummy_salt, sizeof(u->dummy_salt)) != 1) {
		r = CE_CRYPTO;
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
	secret_wipe(u, sizeof(*u));
	free(u);
}

struct sms_store *web_users_store(struct web_users *u)
{
	return u->store;
}

int web_users_count(struct web_users *u, size_t *n)
{
	return sms_panel_user_count(u->store, n);
}

static bool password_ok(const char *pw)
{
	size_t n = pw ? strlen(pw) : 0;

	return n >= WEB_PASSWORD_MIN && n <= WEB_PASSWORD_MAX;
}

/* Fresh salt and hash of pw with the configured cost, into rec. */
static int new_hash(struct web_users *u, const char *pw, struct sms_panel_user *rec)
{
	rec->kdf_n = u->kdf.n;
	rec->kdf_r = u->kdf.r;
	rec->kdf_p = u->kdf.p;
	if (RAND_bytes(rec->salt, WEB_SALT_BYTES) != 1)
		return CE_CRYPTO;
	return web_password_hash(&u->kdf, pw, rec->salt, rec->hash);
}

int web_user_add(struct web_users *u, const char *name, const char *password, enum web_role role)
{
	struct sms_panel_user rec;
	int r;

	memset(&rec, 0, sizeof(rec));
	if (!web_user_name_valid(name) || !password_ok(password) || (unsigned)role > WEB_ROLE_ADMIN)
		return CE_ARG;
	snprintf(rec.name, sizeof(rec.name), "%s", name);
	rec.role = (int)role;
	if ((r = new_hash(u, password, &rec)) == 0)
		r = sms_panel_user_add(u->store, &rec);
	if (r == 0)
		LOG_INFO("web", "user %s added (%s)", name, web_role_name(role));
	secret_wipe(&rec, sizeof(rec));
	return r;
}

int web_user_set_password(struct web_users *u, const char *name, const char *password)
{
	struct sms_panel_user rec;
	int r;

	memset(&rec, 0, sizeof(rec));
	if (!web_user_name_valid(name) || !password_ok(password))
		return CE_ARG;
	if ((r = new_hash(u, password, &rec)) == 0)
		r = sms_panel_user_set_secret(u->store, name, &rec);
	secret_wipe(&rec, sizeof(rec));
	return r;
}

int web_user_set_role(struct web_users *u, const char *name, enum web_role role)
{
	if ((unsigned)role > WEB_ROLE_ADMIN || !web_user_name_valid(name))
		return CE_ARG;
	return sms_panel_user_set_role(u->store, name, (int)role);
}

int web_user_delete(struct web_users *u, const char *name)
{
	if (!web_user_name_valid(name))
		return CE_ARG;
	return sms_panel_user_delete(u->store, name);
}

int web_user_unlock(struct web_users *u, const char *name)
{
	if (!web_user_name_valid(name))
		return CE_ARG;
	return sms_panel_user_set_lock(u->store, name, 0, 0);
}

static void row_info(const struct sms_panel_user *p, struct web_user_info *i)
{
	memset(i, 0, sizeof(*i));
	snprintf(i->name, sizeof(i->name), "%s", p->name);
	i->role = (enum web_role)p->role;
	i->fails = p->fails;
	i->locked_until_ms = p->locked_until_ms;
	if (p->has_secret)
		memcpy(i->pw_stamp, p->salt, WEB_PW_STAMP_BYTES);
}

int web_user_get(struct web_users *u, const char *name, struct web_user_info *out)
{
	struct sms_panel_user p;
	int r;

	memset(out, 0, sizeof(*out));
	if (!web_user_name_valid(name))
		return CE_NOT_FOUND;
	if ((r = sms_panel_user_get(u->store, name, &p)) == 0)
		row_info(&p, out);
	secret_wipe(&p, sizeof(p));
	return r;
}

struct list_ctx {
	int (*fn)(void *ctx, const struct web_user_info *i);
	void *ctx;
};

static int list_one(void *ctx, const struct sms_panel_user *p)
{
	struct list_ctx *l = ctx;
	struct web_user_info i;

	row_info(p, &i);
	return l->fn(l->ctx, &i);
}

int web_user_list(struct web_users *u, int (*fn)(void *ctx, const struct web_user_info *i), void *ctx)
{
	struct list_ctx l = { fn, ctx };

	return sms_panel_user_list(u->store, list_one, &l);
}

/* The user's row when it is usable for a password check (known, with a
 * sane cost and a salt and hash): found. 0 or CE_IO. */
static int load_rec(struct web_users *u, const char *name, struct sms_panel_user *p, bool *found)
{
	int r;

	*found = false;
	memset(p, 0, sizeof(*p));
	if (!web_user_name_valid(name))
		return 0;
	r = sms_panel_user_get(u->store, name, p);
	if (r == CE_NOT_FOUND)
		return 0;
	if (r != 0)
		return CE_IO;
	{
		struct web_kdf rk = { p->kdf_n, p->kdf_r, p->kdf_p };

		*found = p->has_secret && kdf_sane(&rk) && (unsigned)p->role <= WEB_ROLE_ADMIN;
	}
	return 0;
}

int web_user_lookup(struct web_users *u, const char *name, struct web_pw_rec *rec)
{
	struct sms_panel_user p;
	bool found;
	int r;

	memset(rec, 0, sizeof(*rec));
	rec->kdf = u->kdf;
	memcpy(rec->salt, u->dummy_salt, sizeof(rec->salt));
	r = load_rec(u, name, &p, &found);
	if (r == 0 && found) {
		rec->kdf = (struct web_kdf){ p.kdf_n, p.kdf_r, p.kdf_p };
		rec->found = true;
		rec->role = (enum web_role)p.role;
		memcpy(rec->salt, p.salt, WEB_SALT_BYTES);
		memcpy(rec->hash, p.hash, WEB_HASH_BYTES);
	}
	secret_wipe(&p, sizeof(p));
	return r;
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
	struct sms_panel_user p;
	bool found = false, match;
	int r;

	*role = WEB_ROLE_READONLY;
	*locked_until_ms = 0;
	memcpy(salt, u->dummy_salt, sizeof(salt));
	memset(want, 0, sizeof(want));
	memset(&p, 0, sizeof(p));
	if (password && strlen(password) <= WEB_PASSWORD_MAX) {
		if ((r = load_rec(u, name, &p, &found)) != 0)
			goto out;
		if (found) {
			k = (struct web_kdf){ p.kdf_n, p.kdf_r, p.kdf_p };
			memcpy(salt, p.salt, WEB_SALT_BYTES);
			memcpy(want, p.hash, WEB_HASH_BYTES);
		}
	}
	/* Always run the KDF: an unknown name costs what a known one does. */
	if ((r = web_password_hash(&k, password ? password : "", salt, got)) != 0)
		goto out;
	match = found && CRYPTO_memcmp(got, want, WEB_HASH_BYTES) == 0;
	if (!found) {
		r = CE_MAC;
		goto out;
	}
	if (p.locked_until_ms > now_ms) {
		*locked_until_ms = p.locked_until_ms;
		r = CE_BLOCKED;
		goto out;
	}
	if (!match) {
		unsigned fails = p.fails + 1;
		int64_t until = 0;

		if (fails >= WEB_LOCKOUT_FAILS) {
			until = now_ms + WEB_LOCKOUT_MS;
			fails = 0;
			LOG_WARN("web", "user %s locked out for %u minutes after %u wrong passwords", name,
				 WEB_LOCKOUT_MS / 60000u, WEB_LOCKOUT_FAILS);
		}
		r = sms_panel_user_set_lock(u->store, name, fails, until);
		if (r == 0 && until) {
			*locked_until_ms = until;
			r = CE_BLOCKED;
		} else if (r == 0) {
			r = CE_MAC;
		}
		goto out;
	}
	if (p.fails || p.locked_until_ms)
		r = sms_panel_user_set_lock(u->store, name, 0, 0);
	if (r == 0)
		*role = (enum web_role)p.role;
out:
	secret_wipe(&p, sizeof(p));
	secret_wipe(want, sizeof(want));
	secret_wipe(got, sizeof(got));
	return r;
}
