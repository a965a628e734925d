/*
 * store_admin.c - the SMS store's calls for the operators' consoles
 * (store.h, "admin calls"): cards found by their subscriber's info text
 * (store_search.c does the search),
 * renaming a package, listing and revoking API keys. Same SQL on both
 * backends, parameters bound, one transaction per change (or the caller's:
 * sms_tx_begin), every change audited.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/store_int.h"
#include "lib/util.h"

/* ---- cards by info ------------------------------------------------------ */

/* The text search (store_search.c) in the info column. */
int sms_card_find_info(struct sms_store *s, const struct sms_card_filter *f, const char *info, uint64_t after,
		       size_t max, int (*fn)(void *ctx, const struct sms_card *c), void *ctx, size_t *count)
{
	if (!info || !*info)
		return sms_card_find(s, f, after, max, fn, ctx, count);
	return sms_card_search(s, f, SMS_SEARCH_INFO, info, after, max, fn, ctx, count);
}

/* ---- packages ------------------------------------------------------------ */

int sms_package_rename(struct sms_store *s, uint32_t id, const char *name, const char *who)
{
	struct db_val p[2] = { DBT(name), DBI(id) };
	int64_t changed = 0;
	int r;

	if (id >= SMS_PACKAGES_MAX || !name || !*name || !sms_name_fits(name) || !sms_text_valid(name))
		return CE_RANGE;
	if ((r = store_tx_begin(s)) != 0)
		return r;
	if ((r = s->ops->exec(s, "UPDATE packages SET name = ? WHERE id = ?", p, 2, NULL, NULL, &changed)) != 0)
		goto out;
	if (changed == 0) {
		r = CE_NOT_FOUND;
		goto out;
	}
	{
		char what[SMS_NAME_MAX + 48];

		char obj[32];

		snprintf(what, sizeof(what), "package rename %" PRIu32 " name=%s", id, name);
		snprintf(obj, sizeof(obj), "package:%" PRIu32, id);
		r = store_audit_text(s, who, "package.rename", obj, what);
	}
out:
	return store_tx_end(s, r);
}

/* ---- API keys ------------------------------------------------------------ */

struct key_ctx {
	int (*fn)(void *ctx, const struct sms_apikey *k);
	void *ctx;
	size_t count;
};

static int row_apikey(void *ctx, int n, const char *const *cols)
{
	struct key_ctx *kc = ctx;
	struct sms_apikey k;

	if (n < 6)
		return CE_INTERNAL;
	memset(&k, 0, sizeof(k));
	k.id = store_col_i64(cols[0]);
	store_copy_str(k.user, sizeof(k.user), cols[1]);
	store_copy_str(k.hash_prefix, sizeof(k.hash_prefix), cols[2]);
	k.scopes = (unsigned)store_col_i64(cols[3]);
	k.created_ms = store_col_i64(cols[4]);
	k.revoked = store_col_i64(cols[5]) != 0;
	kc->count++;
	return kc->fn ? kc->fn(kc->ctx, &k) : 0;
}

int sms_apikey_list(struct sms_store *s, int64_t after, size_t max,
		    int (*fn)(void *ctx, const struct sms_apikey *k), void *ctx, size_t *count)
{
	struct key_ctx kc = { fn, ctx, 0 };
	struct db_val p[2] = { DBI(after), DBI(max) };
	int r;

	if (count)
		*count = 0;
	if (max == 0 || max > 10000)
		return CE_RANGE;
	/* Only the first 8 hex digits of the hash leave the store: they are
	 * what the audit log names a key by. */
	r = s->ops->exec(s, "SELECT k.id, u.name, SUBSTR(k.key_hash, 1, 8), k.scopes, k.created_ms, k.revoked"
			 " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id > ? ORDER BY k.id LIMIT ?",
			 p, 2, row_apikey, &kc, NULL);
	if (count)
		*count = kc.count;
	return r;
}

static int row_one_key(void *ctx, int n, const char *const *cols)
{
	return row_apikey(ctx, n, cols);
}

static int keep_key(void *ctx, const struct sms_apikey *k)
{
	*(struct sms_apikey *)ctx = *k;
	return 0;
}

int sms_apikey_revoke(struct sms_store *s, int64_t id, const char *who)
{
	struct sms_apikey k = { .id = 0 };
	struct key_ctx kc = { keep_key, &k, 0 };
	struct db_val p[1] = { DBI(id) };
	int r;

	if (id <= 0)
		return CE_NOT_FOUND;
	if ((r = store_tx_begin(s)) != 0)
		return r;
	if ((r = s->ops->exec(s, "SELECT k.id, u.name, SUBSTR(k.key_hash, 1, 8), k.scopes, k.created_ms, k.revoked"
			      " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?",
			      p, 1, row_one_key, &kc, NULL)) != 0)
		goto out;
	if (kc.count == 0) {
		r = CE_NOT_FOUND;
		goto out;
	}
	if (k.revoked)
		goto out; /* revoking twice is not an error, and not audited twice */
	if ((r = s->ops->exec(s, "UPDATE api_keys SET revoked = 1 WHERE id = ?", p, 1, NULL, NULL, NULL)) != 0)
		goto out;
	store_key_cache_clear(s);
	{
		char what[SMS_NAME_MAX + 64];

		snprintf(what, sizeof(what), "api key revoke %.8s of user %s", k.hash_prefix, k.user);
		r = store_audit_text(s, who, "apikey.revoke", "", what);
	}
out:
	return store_tx_end(s, r);
}
