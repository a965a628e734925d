/*
 * rest_subscribers.c - /api/v1/subscribers (docs/api-rest.md): list,
 * create, read and update the people cards belong to.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"

static json_t *subr_json(const struct sms_subscriber *u)
{
	return json_pack("{s:I,s:s,s:s}", "id", (json_int_t)u->id, "name", u->name, "info", u->info);
}

static int acc_subr(void *ctx, const struct sms_subscriber *u)
{
	struct list_acc *a = ctx;

	a->last = (uint64_t)u->id;
	return json_array_append_new(a->items, subr_json(u)) == 0 ? 0 : CE_NOMEM;
}

static bool subr_fields(struct ctx *x, json_t *o, char *name, char *info, bool *has_name, bool *has_info)
{
	const char *k;
	json_t *v;

	*has_name = *has_info = false;
	json_object_foreach(o, k, v) {
		if (strcmp(k, "name") == 0) {
			if (!(*has_name = j_text(v, name, SMS_NAME_MAX + 1) && sms_name_fits(name)))
				return bad_field(x, k, "UTF-8 text of at most 255 characters"), false;
		} else if (strcmp(k, "info") == 0) {
			if (!(*has_info = j_text(v, info, SMS_INFO_MAX + 1)))
				return bad_field(x, k, "UTF-8 text of at most 65535 bytes"), false;
		} else {
			unknown_field(x, k);
			return false;
		}
	}
	return true;
}

void r_subscribers(struct ctx *x)
{
	static const char *const ok[] = { "limit", "cursor", "name", NULL };
	enum rest_method m = x->req->method;
	struct sms_subscriber u;
	char name[SMS_NAME_MAX + 1] = "", info[SMS_INFO_MAX + 1] = "";
	bool hn, hi;
	uint64_t id = 0;
	json_t *j;
	int r;

	if (x->nseg == 1 && (m == REST_GET || m == REST_HEAD)) {
		struct list_acc a = { json_array(), 0 };
		size_t limit, n = 0;
		uint64_t cursor;
		const char *nm;

		if (!need(x, SMS_SCOPE_READ) || !params_only(x, ok) || !page_params(x, &limit, &cursor)) {
			json_decref(a.items);
			return;
		}
		nm = param(x, "name");
		if ((r = sms_subscriber_list(x->s, nm, (int64_t)cursor, limit, acc_subr, &a, &n)) != 0) {
			json_decref(a.items);
			internal(x->resp, r);
			return;
		}
		page_answer(x, a.items, n, limit, a.last);
		return;
	}
	if (x->nseg == 1 && m == REST_POST) {
		int64_t nid = 0;

		if (!need(x, SMS_SCOPE_WRITE) || !(j = body_json(x)))
			return;
		if (subr_fields(x, j, name, info, &hn, &hi)) {
			if ((r = sms_subscriber_add(x->s, name, info, x->who, &nid)) != 0)
				store_fail(x->resp, r, "subscriber");
			else if ((r = sms_subscriber_get(x->s, nid, &u)) != 0)
				internal(x->resp, r);
			else
				ok_json(x->resp, 201, subr_json(&u));
		}
		json_decref(j);
		return;
	}
	if (x->nseg != 2) {
		fail(x->resp, x->nseg == 1 ? 405 : 404, x->nseg == 1 ? "method_not_allowed" : "not_found",
		     x->nseg == 1 ? "GET or POST" : "no such resource");
		return;
	}
	if (!id_parse(x->seg[1], INT64_MAX, &id) || id == 0) {
		fail(x->resp, 404, "not_found", "subscriber not found");
		return;
	}
	if (m == REST_GET || m == REST_HEAD) {
		if (!need(x, SMS_SCOPE_READ))
			return;
		if ((r = sms_subscriber_get(x->s, (int64_t)id, &u)) != 0)
			store_fail(x->resp, r, "subscriber");
		else
			ok_json(x->resp, 200, subr_json(&u));
	} else if (m == REST_PATCH) {
		if (!need(x, SMS_SCOPE_WRITE) || !(j = body_json(x)))
			return;
		if (subr_fields(x, j, name, info, &hn, &hi)) {
			if ((r = sms_subscriber_update(x->s, (int64_t)id, hn ? name : NULL, hi ? info : NULL, x->who)) != 0)
				store_fail(x->resp, r, "subscriber");
			else if ((r = sms_subscriber_get(x->s, (int64_t)id, &u)) != 0)
				internal(x->resp, r);
			else
				ok_json(x->resp, 200, subr_json(&u));
		}
		json_decref(j);
	} else {
		fail(x->resp, 405, "method_not_allowed", "GET or PATCH");
	}
}

