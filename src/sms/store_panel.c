/*
 * store_panel.c - the web panel's users in the SMS store (schema 6, table
 * panel_users; store.h "panel users"), so every head-end node on one
 * database shares them. The store keeps what web/auth.c computes (role,
 * scrypt cost, salt, hash, lock-out state) and never hashes or checks a
 * password itself. Salt and hash are stored as lower-case hex text (both
 * backends bind text parameters only). One statement per call; the
 * panel writes the audit entries (web.c), so these write none.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/store_int.h"
#include "lib/util.h"

static bool name_ok(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	if (len == 0 || len > SMS_PANEL_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool secret_ok(const struct sms_panel_user *u)
{
	return u->kdf_n > 0 && u->kdf_n <= (1u << 20) && u->kdf_r >= 1 && u->kdf_r <= 32 && u->kdf_p >= 1 &&
	       u->kdf_p <= 16;
}

#define PANEL_COLS \
	"SELECT name, role, kdf_n, kdf_r, kdf_p, salt, hash, fails, locked_until, created_ms FROM panel_users"

/* One row of PANEL_COLS into a struct sms_panel_user; a row whose salt or
 * hash does not decode is handed back with has_secret false (the panel
 * then refuses every password for it). */
static void row_user(const char *const *cols, struct sms_panel_user *u)
{
	int64_t n = store_col_i64(cols[2]);

	memset(u, 0, sizeof(*u));
	store_copy_str(u->name, sizeof(u->name), cols[0]);
	u->role = (int)store_col_i64(cols[1]);
	u->kdf_n = n > 0 ? (uint64_t)n : 0;
	u->kdf_r = (uint32_t)store_col_i64(cols[3]);
	u->kdf_p = (uint32_t)store_col_i64(cols[4]);
	u->has_secret = cols[5] && cols[6] && strlen(cols[5]) == 2 * SMS_PANEL_SALT_BYTES &&
			strlen(cols[6]) == 2 * SMS_PANEL_HASH_BYTES &&
			hex_decode(cols[5], u->salt, SMS_PANEL_SALT_BYTES) == 0 &&
			hex_decode(cols[6], u->hash, SMS_PANEL_HASH_BYTES) == 0;
	if (!u->has_secret) {
		secret_wipe(u->salt, sizeof(u->salt));
		secret_wipe(u->hash, sizeof(u->hash));
	}
	u->fails = (unsigned)store_col_i64(cols[7]);
	u->locked_until_ms = store_col_i64(cols[8]);
	u->created_ms = store_col_i64(cols[9]);
}

struct one_user {
	struct sms_panel_user *out;
	bool found;
};

static int row_one(void *ctx, int n, const char *const *cols)
{
	struct one_user *o = ctx;

	if (n < 10)
		return CE_IO;
	row_user(cols, o->out);
	o->found = true;
	return 0;
}

int sms_panel_user_add(struct sms_store *s, const struct sms_panel_user *u)
{
	char salt[2 * SMS_PANEL_SALT_BYTES + 1], hash[2 * SMS_PANEL_HASH_BYTES + 1];
	int64_t now = (int64_t)now_wall_ms();
	int r;

	if (!u || !name_ok(u->name) || u->role < 0 || u->role > 2 || !secret_ok(u))
		return CE_ARG;
	hex_encode(u->salt, SMS_PANEL_SALT_BYTES, salt);
	hex_encode(u->hash, SMS_PANEL_HASH_BYTES, hash);
	{
		struct db_val p[11] = { DBT(u->name), DBI(u->role), DBI(u->kdf_n), DBI(u->kdf_r), DBI(u->kdf_p),
					DBT(salt), DBT(hash), DBI(u->fails), DBI(u->locked_until_ms),
					DBI(u->created_ms ? u->created_ms : now), DBI(now) };

		r = s->ops->exec(s, "INSERT INTO panel_users (name, role, kdf_n, kdf_r, kdf_p, salt, hash, fails,"
				 " locked_until, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				 p, 11, NULL, NULL, NULL);
	}
	secret_wipe(hash, sizeof(hash));
	return r;
}

int sms_panel_user_get(struct sms_store *s, const char *name, struct sms_panel_user *out)
{
	struct one_user o = { out, false };
	struct db_val p[1] = { DBT(name) };
	int r;

	memset(out, 0, sizeof(*out));
	if (!name_ok(name))
		return CE_NOT_FOUND;
	if ((r = s->ops->exec(s, PANEL_COLS " WHERE name = ?", p, 1, row_one, &o, NULL)) != 0)
		return r;
	return o.found ? 0 : CE_NOT_FOUND;
}

int sms_panel_user_count(struct sms_store *s, size_t *n)
{
	int64_t v = 0;
	int r = s->ops->exec(s, "SELECT COUNT(*) FROM panel_users", NULL, 0, store_row_int, &v, NULL);

	*n = r == 0 && v > 0 ? (size_t)v : 0;
	return r;
}

/* CE_NOT_FOUND when the statement changed no row. */
static int changed(int r, int64_t n)
{
	return r != 0 ? r : n == 0 ? CE_NOT_FOUND : 0;
}

int sms_panel_user_set_secret(struct sms_store *s, const char *name, const struct sms_panel_user *sec)
{
	char salt[2 * SMS_PANEL_SALT_BYTES + 1], hash[2 * SMS_PANEL_HASH_BYTES + 1];
	int64_t n = 0;
	int r;

	if (!name_ok(name) || !sec || !secret_ok(sec))
		return CE_ARG;
	hex_encode(sec->salt, SMS_PANEL_SALT_BYTES, salt);
	hex_encode(sec->hash, SMS_PANEL_HASH_BYTES, hash);
	{
		struct db_val p[7] = { DBI(sec->kdf_n), DBI(sec->kdf_r), DBI(sec->kdf_p), DBT(salt), DBT(hash),
				       DBI(now_wall_ms()), DBT(name) };

		r = s->ops->exec(s, "UPDATE panel_users SET kdf_n = ?, kdf_r = ?, kdf_p = ?, salt = ?, hash = ?,"
				 " fails = 0, locked_until = 0, updated_ms = ? WHERE name = ?", p, 7, NULL, NULL, &n);
	}
	secret_wipe(hash, sizeof(hash));
	return changed(r, n);
}

int sms_panel_user_set_role(struct sms_store *s, const char *name, int role)
{
	int64_t n = 0;
	int r;
	struct db_val p[3] = { DBI(role), DBI(now_wall_ms()), DBT(name) };

	if (!name_ok(name) || role < 0 || role > 2)
		return CE_ARG;
	r = s->ops->exec(s, "UPDATE panel_users SET role = ?, updated_ms = ? WHERE name = ?", p, 3,
				    NULL, NULL, &n);
	return changed(r, n);
}

int sms_panel_user_set_lock(struct sms_store *s, const char *name, unsigned fails, int64_t locked_until_ms)
{
	int64_t n = 0;
	int r;
	struct db_val p[3] = { DBI(fails), DBI(locked_until_ms), DBT(name) };

	if (!name_ok(name))
		return CE_ARG;
	r = s->ops->exec(s, "UPDATE panel_users SET fails = ?, locked_until = ? WHERE name = ?", p, 3,
				    NULL, NULL, &n);
	return changed(r, n);
}

int sms_panel_user_delete(struct sms_store *s, const char *name)
{
	int64_t n = 0;
	int r;
	struct db_val p[1] = { DBT(name) };

	if (!name_ok(name))
		return CE_ARG;
	r = s->ops->exec(s, "DELETE FROM panel_users WHERE name = ?", p, 1, NULL, NULL, &n);
	return changed(r, n);
}

struct list_ctx {
	int (*fn)(void *ctx, const struct sms_panel_user *u);
	void *ctx;
};

static int row_list(void *ctx, int n, const char *const *cols)
{
	struct list_ctx *l = ctx;
	struct sms_panel_user u;
	int r;

	if (n < 10)
		return CE_IO;
	row_user(cols, &u);
	r = l->fn(l->ctx, &u);
	secret_wipe(&u, sizeof(u));
	return r;
}

int sms_panel_user_list(struct sms_store *s, int (*fn)(void *ctx, const struct sms_panel_user *u), void *ctx)
{
	struct list_ctx l = { fn, ctx };

	return s->ops->exec(s, PANEL_COLS " ORDER BY name", NULL, 0, row_list, &l, NULL);
}
