/*
 * rest_usage.c - REST /api/v1/copy-control (Schedule III C.6): channels'
 * copy control (sms/store_usage.h), as `castellan sms copy-control` offers
 * it. Reading needs the read scope, setting write (audited as the caller).
 *
 *   GET /copy-control          {"items":[{"service_id","copy_control","retention_s"}]}
 *   PUT /copy-control/SID      {"copy_control":"copy_free"|"copy_once"|"copy_never",
 *                               "retention_s":N (optional, 0)} -> 200, the channel's rules
 */
#include <string.h>
#include "sms/rest_int.h"
#include "sms/store.h"
#include "sms/store_usage.h"

static json_t *usage_json(uint16_t sid, const struct cas_usage *u)
{
	return json_pack("{si ss sI}", "service_id", sid, "copy_control", cas_copy_name(u->copy_control),
		"retention_s", (json_int_t)u->retention_s);
}

static int acc_usage(void *ctx, uint16_t sid, const struct cas_usage *u)
{
	json_t *o = usage_json(sid, u);

	return o && json_array_append_new(ctx, o) == 0 ? 0 : CE_NOMEM;
}

void r_copy_control(struct ctx *x)
{
	enum rest_method m = x->req->method;
	struct cas_usage u = { 0 };
	json_t *j, *v, *items;
	const char *k;
	uint64_t sid = 0, ret = 0;
	size_t n = 0;
	int r;

	if (x->nseg == 1 && (m == REST_GET || m == REST_HEAD)) {
		if (!need(x, SMS_SCOPE_READ) || !params_only(x, (const char *const[]){ NULL }))
			return;
		if (!(items = json_array())) {
			internal(x->resp, CE_NOMEM);
			return;
		}
		if ((r = sms_usage_list(x->s, acc_usage, items, &n)) != 0) {
			json_decref(items);
			internal(x->resp, r);
			return;
		}
		ok_json(x->resp, 200, json_pack("{so}", "items", items));
		return;
	}
	if (x->nseg != 2 || m != REST_PUT) {
		fail(x->resp, 405, "method_not_allowed", x->nseg == 1 ? "GET" : "PUT");
		return;
	}
	if (!need(x, SMS_SCOPE_WRITE))
		return;
	if (!id_parse(x->seg[1], 65535, &sid) || sid == 0) {
		fail(x->resp, 404, "not_found", "service_id 1..65535");
		return;
	}
	if (!(j = body_json(x)))
		return;
	if (!json_object_get(j, "copy_control")) {
		bad_field(x, "copy_control", "copy_free, copy_once or copy_never");
		goto out;
	}
	json_object_foreach(j, k, v) {
		if (strcmp(k, "copy_control") == 0) {
			if (!json_is_string(v) || cas_copy_parse(json_string_value(v), &u.copy_control) != 0) {
				bad_field(x, k, "copy_free, copy_once or copy_never");
				goto out;
			}
		} else if (strcmp(k, "retention_s") == 0) {
			if (!j_uint(v, CAS_MAX_RETENTION_S, &ret)) {
				bad_field(x, k, "seconds, 0..316224000");
				goto out;
			}
		} else {
			unknown_field(x, k);
			goto out;
		}
	}
	u.retention_s = (uint32_t)ret;
	if ((r = sms_usage_set(x->s, (uint16_t)sid, &u, x->who)) != 0)
		store_fail(x->resp, r, "channel");
	else
		ok_json(x->resp, 200, usage_json((uint16_t)sid, &u));
out:
	json_decref(j);
}
