/*
 * rest_subscriptions.c - /api/v1/subscriptions (docs/api-rest.md): one
 * subscription, bulk subscribe/unsubscribe in one transaction, delete.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"

/* One {serial_no, package[, start, finish]} item. */
static bool sub_fields(struct ctx *x, json_t *o, bool with_period, struct sms_subscription *sub, const char *at)
{
	const char *k;
	json_t *v;
	uint64_t u;
	bool has_serial = false, has_pkg = false, has_start = false, has_finish = false;

	memset(sub, 0, sizeof(*sub));
	if (!json_is_object(o)) {
		fail(x->resp, 400, "invalid_value", "%s: not an object", at);
		return false;
	}
	json_object_foreach(o, k, v) {
		if (strcmp(k, "serial_no") == 0) {
			has_serial = j_serial(v, &sub->serial);
			if (!has_serial)
				return bad_field(x, k, "a decimal serial"), false;
		} else if (strcmp(k, "package") == 0) {
			has_pkg = j_uint(v, SMS_PACKAGES_MAX - 1, &u);
			if (!has_pkg)
				return bad_field(x, k, "a package id 0..65535"), false;
			sub->package = (uint32_t)u;
		} else if (with_period && strcmp(k, "start") == 0) {
			if (!(has_start = j_time(v, &sub->start)))
				return bad_field(x, k, "UNIX seconds"), false;
		} else if (with_period && strcmp(k, "finish") == 0) {
			if (!(has_finish = j_time(v, &sub->finish)))
				return bad_field(x, k, "UNIX seconds"), false;
		} else {
			json_t *e = json_object();

			json_object_set_new(e, "field", json_string(k));
			fail_x(x->resp, 400, "unknown_field", e, "%s: unknown field '%.60s'", at, k);
			return false;
		}
	}
	if (!has_serial || !has_pkg || (with_period && (!has_start || !has_finish))) {
		fail(x->resp, 400, "invalid_value", "%s: serial_no, package%s are required", at,
		     with_period ? ", start and finish" : "");
		return false;
	}
	if (with_period && sub->finish < sub->start) {
		bad_field(x, "finish", "before start");
		return false;
	}
	return true;
}

static void sub_create(struct ctx *x)
{
	json_t *j = body_json(x);
	struct sms_subscription sub;
	int r;

	if (!j)
		return;
	if (sub_fields(x, j, true, &sub, "body")) {
		if ((r = sms_subscribe(x->s, &sub, x->who)) != 0)
			store_fail(x->resp, r, "card or package");
		else
			ok_json(x->resp, 200, sub_json(&sub));
	}
	json_decref(j);
}

/* {"subscribe":[{serial_no,package,start,finish}...],"unsubscribe":[{serial_no,package}...]}:
 * all in one transaction; unsubscribing an absent subscription is not an
 * error (a retried call gives the same result). */
static void sub_bulk(struct ctx *x)
{
	json_t *j = body_json(x), *sub_a = NULL, *uns_a = NULL, *v;
	const char *k;
	struct sms_subscription *items = NULL;
	size_t nsub = 0, nuns = 0, i;
	size_t removed = 0;
	char at[48];
	int r = 0;

	if (!j)
		return;
	json_object_foreach(j, k, v) {
		if ((strcmp(k, "subscribe") != 0 && strcmp(k, "unsubscribe") != 0) || !json_is_array(v)) {
			bad_field(x, k, "only the arrays subscribe and unsubscribe");
			goto out;
		}
	}
	sub_a = json_object_get(j, "subscribe");
	uns_a = json_object_get(j, "unsubscribe");
	nsub = json_array_size(sub_a);
	nuns = json_array_size(uns_a);
	if (nsub + nuns > REST_BULK_MAX) {
		fail(x->resp, 413, "payload_too_large", "at most %d items in one bulk call", REST_BULK_MAX);
		goto out;
	}
	items = malloc((nsub + nuns + 1) * sizeof(*items));
	if (!items) {
		internal(x->resp, CE_NOMEM);
		goto out;
	}
	/* Check every item before touching the database. */
	for (i = 0; i < nsub + nuns; i++) {
		bool s = i < nsub;

		snprintf(at, sizeof(at), "%s[%zu]", s ? "subscribe" : "unsubscribe", s ? i : i - nsub);
		if (!sub_fields(x, json_array_get(s ? sub_a : uns_a, s ? i : i - nsub), s, &items[i], at))
			goto out;
	}
	if ((r = sms_tx_begin(x->s)) != 0) {
		internal(x->resp, r);
		goto out;
	}
	for (i = 0; i < nsub + nuns && r == 0; i++) {
		if (i < nsub) {
			r = sms_subscribe(x->s, &items[i], x->who);
		} else {
			r = sms_unsubscribe(x->s, items[i].serial, items[i].package, x->who);
			if (r == 0)
				removed++;
			else if (r == CE_NOT_FOUND)
				r = 0;
		}
	}
	if ((r = sms_tx_end(x->s, r)) != 0) {
		json_t *e = json_object();

		i--;
		snprintf(at, sizeof(at), "%s[%zu]", i < nsub ? "subscribe" : "unsubscribe", i < nsub ? i : i - nsub);
		json_object_set_new(e, "at", json_string(at));
		if (r == CE_NOT_FOUND)
			fail_x(x->resp, 404, "not_found", e, "%s: card or package not found; nothing was changed", at);
		else if (r == CE_RANGE)
			fail_x(x->resp, 400, "invalid_value", e, "%s: value out of range; nothing was changed", at);
		else {
			json_decref(e);
			internal(x->resp, r);
		}
		goto out;
	}
	ok_json(x->resp, 200, json_pack("{s:I,s:I}", "subscribed", (json_int_t)nsub, "unsubscribed",
					(json_int_t)removed));
out:
	free(items);
	json_decref(j);
}

void r_subscriptions(struct ctx *x)
{
	enum rest_method m = x->req->method;

	if (x->nseg == 1 && m == REST_POST) {
		if (need(x, SMS_SCOPE_WRITE))
			sub_create(x);
	} else if (x->nseg == 2 && strcmp(x->seg[1], "bulk") == 0 && m == REST_POST) {
		if (need(x, SMS_SCOPE_WRITE))
			sub_bulk(x);
	} else if (x->nseg == 3 && m == REST_DELETE) {
		uint64_t serial, pkg;
		int r;

		if (!need(x, SMS_SCOPE_WRITE))
			return;
		if (!id_parse(x->seg[1], INT64_MAX, &serial) || !id_parse(x->seg[2], SMS_PACKAGES_MAX - 1, &pkg)) {
			fail(x->resp, 404, "not_found", "subscription not found");
			return;
		}
		if ((r = sms_unsubscribe(x->s, serial, (uint32_t)pkg, x->who)) != 0)
			store_fail(x->resp, r, "subscription");
		else
			set_body(x->resp, 204, "application/json", NULL, 0);
	} else if (x->nseg <= 3) {
		fail(x->resp, 405, "method_not_allowed", "POST /subscriptions, POST /subscriptions/bulk, "
		     "DELETE /subscriptions/{serial}/{package}");
	} else {
		fail(x->resp, 404, "not_found", "no such resource");
	}
}

