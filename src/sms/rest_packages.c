/*
 * rest_packages.c - /api/v1/packages and /api/v1/channels
 * (docs/api-rest.md): the small id-keyed lists, package create and rename,
 * channel read, set and delete.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"

static int acc_pkg(void *ctx, const struct sms_package *p)
{
	struct list_acc *a = ctx;

	a->last = p->id;
	return json_array_append_new(a->items, json_pack("{s:I,s:s}", "id", (json_int_t)p->id, "name", p->name)) == 0
		? 0 : CE_NOMEM;
}

static json_t *chan_json(const struct sms_channel *c)
{
	char ac[9];

	snprintf(ac, sizeof(ac), "%08" PRIX32, c->access_criteria);
	return json_pack("{s:I,s:s,s:s}", "service_id", (json_int_t)c->service_id, "name", c->name,
			 "access_criteria", ac);
}

static int acc_chan(void *ctx, const struct sms_channel *c)
{
	struct list_acc *a = ctx;

	a->last = c->service_id;
	return json_array_append_new(a->items, chan_json(c)) == 0 ? 0 : CE_NOMEM;
}

/* Lists of packages and channels: cursor is the last id, and 0 is an id,
 * so the first page has no cursor (after = -1). */
static void small_list(struct ctx *x, bool chans)
{
	static const char *const ok[] = { "limit", "cursor", NULL };
	struct list_acc a = { json_array(), 0 };
	size_t limit, n = 0;
	uint64_t cursor;
	int64_t after;
	int r;

	if (!need(x, SMS_SCOPE_READ) || !params_only(x, ok) || !page_params(x, &limit, &cursor)) {
		json_decref(a.items);
		return;
	}
	after = param(x, "cursor") ? (int64_t)cursor : -1;
	r = chans ? sms_channel_list(x->s, after, limit, acc_chan, &a, &n)
		  : sms_package_list(x->s, after, limit, acc_pkg, &a, &n);
	if (r != 0) {
		json_decref(a.items);
		internal(x->resp, r);
		return;
	}
	page_answer(x, a.items, n, limit, a.last);
}

/* PATCH /packages/ID {"name":N}: rename (the id, its subscriptions and
 * the channels' masks stay). */
static void package_rename(struct ctx *x)
{
	char name[SMS_NAME_MAX + 1] = "";
	bool has_name = false;
	const char *k;
	json_t *j, *v;
	uint64_t id;
	int r;

	if (!need(x, SMS_SCOPE_ADMIN))
		return;
	if (!id_parse(x->seg[1], SMS_PACKAGES_MAX - 1, &id)) {
		fail(x->resp, 404, "not_found", "package not found");
		return;
	}
	if (!(j = body_json(x)))
		return;
	json_object_foreach(j, k, v) {
		if (strcmp(k, "name") != 0) {
			unknown_field(x, k);
			goto out;
		}
		if (!(has_name = j_text(v, name, sizeof(name))) || !name[0] || !sms_name_fits(name) || strchr(name, ';') ||
		    all_digits(name, 1, 19)) {
			bad_field(x, k, "1..255 characters of text, not only digits, no ';'");
			goto out;
		}
	}
	if (!has_name) {
		bad_field(x, "name", "required");
		goto out;
	}
	if ((r = sms_package_rename(x->s, (uint32_t)id, name, x->who)) != 0)
		store_fail(x->resp, r, r == CE_EXISTS ? "a package of that name" : "package");
	else
		ok_json(x->resp, 200, json_pack("{s:I,s:s}", "id", (json_int_t)id, "name", name));
out:
	json_decref(j);
}

void r_packages(struct ctx *x)
{
	enum rest_method m = x->req->method;
	uint64_t id;
	int r;

	if (x->nseg == 1 && (m == REST_GET || m == REST_HEAD)) {
		small_list(x, false);
	} else if (x->nseg == 1 && m == REST_POST) {
		json_t *j, *v;
		const char *k;
		char name[SMS_NAME_MAX + 1] = "";
		bool has_id = false, has_name = false;

		if (!need(x, SMS_SCOPE_ADMIN) || !(j = body_json(x)))
			return;
		id = 0;
		json_object_foreach(j, k, v) {
			if (strcmp(k, "id") == 0) {
				if (!(has_id = j_uint(v, SMS_PACKAGES_MAX - 1, &id))) {
					bad_field(x, k, "0..65535");
					goto pout;
				}
			} else if (strcmp(k, "name") == 0) {
				if (!(has_name = j_text(v, name, sizeof(name))) || !name[0] || !sms_name_fits(name) || strchr(name, ';') ||
				    all_digits(name, 1, 19)) {
					bad_field(x, k, "1..255 characters of text, not only digits, no ';'");
					goto pout;
				}
			} else {
				unknown_field(x, k);
				goto pout;
			}
		}
		if (!has_id || !has_name) {
			bad_field(x, has_id ? "name" : "id", "required");
			goto pout;
		}
		if ((r = sms_package_add(x->s, (uint32_t)id, name, x->who)) != 0)
			store_fail(x->resp, r, "package (id or name)");
		else
			ok_json(x->resp, 201, json_pack("{s:I,s:s}", "id", (json_int_t)id, "name", name));
pout:
		json_decref(j);
	} else if (x->nseg == 2 && (m == REST_GET || m == REST_HEAD)) {
		struct sms_package p;

		if (!need(x, SMS_SCOPE_READ))
			return;
		if (!id_parse(x->seg[1], SMS_PACKAGES_MAX - 1, &id)) {
			fail(x->resp, 404, "not_found", "package not found");
			return;
		}
		if ((r = sms_package_get(x->s, (uint32_t)id, &p)) != 0)
			store_fail(x->resp, r, "package");
		else
			ok_json(x->resp, 200, json_pack("{s:I,s:s}", "id", (json_int_t)p.id, "name", p.name));
	} else if (x->nseg == 2 && m == REST_PATCH) {
		package_rename(x);
	} else if (x->nseg <= 2) {
		fail(x->resp, 405, "method_not_allowed", x->nseg == 1 ? "GET or POST" : "GET or PATCH");
	} else {
		fail(x->resp, 404, "not_found", "no such resource");
	}
}

void r_channels(struct ctx *x)
{
	enum rest_method m = x->req->method;
	uint64_t sid;
	int r;

	if (x->nseg == 1) {
		if (m == REST_GET || m == REST_HEAD)
			small_list(x, true);
		else
			fail(x->resp, 405, "method_not_allowed", "GET");
		return;
	}
	if (x->nseg != 2 || !id_parse(x->seg[1], 65535, &sid)) {
		fail(x->resp, 404, "not_found", "channel not found (service ids are 0..65535)");
		return;
	}
	if (m == REST_GET || m == REST_HEAD) {
		struct sms_channel c = { .service_id = (uint16_t)sid };

		if (!need(x, SMS_SCOPE_READ))
			return;
		if ((r = sms_channel_get(x->s, (uint16_t)sid, &c.access_criteria)) != 0) {
			store_fail(x->resp, r, "channel");
			return;
		}
		/* The name comes with the list entry. */
		{
			struct list_acc a = { json_array(), 0 };
			size_t n = 0;

			if ((r = sms_channel_list(x->s, (int64_t)sid - 1, 1, acc_chan, &a, &n)) != 0 || n != 1) {
				json_decref(a.items);
				internal(x->resp, r ? r : CE_INTERNAL);
				return;
			}
			ok_json(x->resp, 200, json_incref(json_array_get(a.items, 0)));
			json_decref(a.items);
		}
	} else if (m == REST_PUT) {
		json_t *j, *v;
		const char *k;
		struct sms_channel c = { .service_id = (uint16_t)sid };
		bool has_ac = false;

		if (!need(x, SMS_SCOPE_ADMIN) || !(j = body_json(x)))
			return;
		json_object_foreach(j, k, v) {
			if (strcmp(k, "name") == 0) {
				if (!j_text(v, c.name, sizeof(c.name))) {
					bad_field(x, k, "UTF-8 text of at most 255 bytes");
					goto cout;
				}
			} else if (strcmp(k, "access_criteria") == 0) {
				if (!(has_ac = j_mask(v, &c.access_criteria))) {
					bad_field(x, k, "8 hex digits");
					goto cout;
				}
			} else {
				unknown_field(x, k);
				goto cout;
			}
		}
		if (!has_ac) {
			bad_field(x, "access_criteria", "required");
			goto cout;
		}
		if ((r = sms_channel_set(x->s, c.service_id, c.name, c.access_criteria, x->who)) != 0)
			store_fail(x->resp, r, "channel");
		else
			ok_json(x->resp, 200, chan_json(&c));
cout:
		json_decref(j);
	} else if (m == REST_DELETE) {
		if (!need(x, SMS_SCOPE_ADMIN))
			return;
		if ((r = sms_channel_delete(x->s, (uint16_t)sid, x->who)) != 0)
			store_fail(x->resp, r, "channel");
		else
			set_body(x->resp, 204, "application/json", NULL, 0);
	} else {
		fail(x->resp, 405, "method_not_allowed", "GET, PUT or DELETE");
	}
}

