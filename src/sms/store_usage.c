/*
 * store_usage.c - channels' usage rules in the SMS store (store_usage.h;
 * schema 8). SQL written once for SQLite and PostgreSQL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "lib/util.h"
#include "sms/store_int.h"
#include "sms/store_usage.h"

int store_usage_migrate8(struct sms_store *s)
{
	return s->ops->script(s, "CREATE TABLE IF NOT EXISTS channel_usage ("
		" service_id INTEGER PRIMARY KEY CHECK (service_id BETWEEN 1 AND 65535),"
		" copy_control INTEGER NOT NULL CHECK (copy_control IN (0, 2, 3)),"
		" retention_s BIGINT NOT NULL CHECK (retention_s BETWEEN 0 AND 316224000),"
		" updated_ms BIGINT NOT NULL);");
}
_Static_assert(CAS_MAX_RETENTION_S == 316224000u, "the table's CHECK says ten years too");

int sms_usage_set(struct sms_store *s, uint16_t service_id, const struct cas_usage *u, const char *who)
{
	struct db_val p[4] = { DBI(service_id), DBI(u ? u->copy_control : 0), DBI(u ? u->retention_s : 0),
		DBI(now_wall_ms()) };
	char obj[32], what[96];
	int r;

	if (!s || !u)
		return CE_ARG;
	if (service_id == 0 || cas_usage_check(u) != 0)
		return CE_RANGE;
	if ((r = store_tx_begin(s)) != 0)
		return r;
	if (u->copy_control == CAS_COPY_FREE && u->retention_s == 0)
		r = s->ops->exec(s, "DELETE FROM channel_usage WHERE service_id = ?", p, 1, NULL, NULL, NULL);
	else
		r = s->ops->exec(s, "INSERT INTO channel_usage (service_id, copy_control, retention_s, updated_ms)"
			" VALUES (?, ?, ?, ?) ON CONFLICT (service_id) DO UPDATE SET copy_control = excluded.copy_control,"
			" retention_s = excluded.retention_s, updated_ms = excluded.updated_ms", p, 4, NULL, NULL, NULL);
	if (r != 0)
		goto out;
	snprintf(obj, sizeof(obj), "channel:%u", (unsigned)service_id);
	snprintf(what, sizeof(what), "channel %u %s retention_s=%" PRIu32, (unsigned)service_id,
		cas_copy_name(u->copy_control), u->retention_s);
	r = store_audit_text(s, who, "channel.usage", obj, what);
out:
	return store_tx_end(s, r);
}

struct usage_rows {
	int (*fn)(void *ctx, uint16_t service_id, const struct cas_usage *u);
	void *ctx;
	size_t count;
	struct cas_usage one;
	bool found;
};

static int usage_row(void *ctx, int n, const char *const *cols)
{
	struct usage_rows *l = ctx;
	int64_t sid, cc, ret;
	struct cas_usage u;

	if (n != 3)
		return CE_INTERNAL;
	sid = store_col_i64(cols[0]);
	cc = store_col_i64(cols[1]);
	ret = store_col_i64(cols[2]);
	if (sid < 1 || sid > 65535 || cc < 0 || cc > 3 || ret < 0 || ret > (int64_t)CAS_MAX_RETENTION_S)
		return CE_FORMAT;
	u.copy_control = (uint8_t)cc;
	u.retention_s = (uint32_t)ret;
	l->count++;
	l->one = u;
	l->found = true;
	return l->fn ? l->fn(l->ctx, (uint16_t)sid, &u) : 0;
}

int sms_usage_get(struct sms_store *s, uint16_t service_id, struct cas_usage *u)
{
	struct db_val p[1] = { DBI(service_id) };
	struct usage_rows l = { 0 };
	int r;

	if (u)
		memset(u, 0, sizeof(*u));
	if (!s || !u)
		return CE_ARG;
	r = s->ops->exec(s, "SELECT service_id, copy_control, retention_s FROM channel_usage WHERE service_id = ?", p,
		1, usage_row, &l, NULL);
	if (r != 0)
		return r;
	if (!l.found)
		return CE_NOT_FOUND;
	*u = l.one;
	return 0;
}

int sms_usage_list(struct sms_store *s, int (*fn)(void *ctx, uint16_t service_id, const struct cas_usage *u),
	void *ctx, size_t *count)
{
	struct usage_rows l = { .fn = fn, .ctx = ctx };
	int r;

	if (count)
		*count = 0;
	if (!s)
		return CE_ARG;
	r = s->ops->exec(s, "SELECT service_id, copy_control, retention_s FROM channel_usage ORDER BY service_id",
		NULL, 0, usage_row, &l, NULL);
	if (count)
		*count = l.count;
	return r;
}
