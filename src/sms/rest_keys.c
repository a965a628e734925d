/*
 * rest_keys.c - /api/v1/apikeys (docs/api-rest.md): the key list (never
 * the keys) and revocation, admin scope only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"

static int acc_apikey(void *ctx, const struct sms_apikey *k)
{
	struct list_acc *a = ctx;
	json_t *sc = json_array();

	a->last = (uint64_t)k->id;
	if (!sc)
		return CE_NOMEM;
	if (k->scopes & SMS_SCOPE_READ)
		json_array_append_new(sc, json_string("read"));
	if (k->scopes & SMS_SCOPE_WRITE)
		json_array_append_new(sc, json_string("write"));
	if (k->scopes & SMS_SCOPE_ADMIN)
		json_array_append_new(sc, json_string("admin"));
	if (k->scopes & SMS_SCOPE_METRICS)
		json_array_append_new(sc, json_string("metrics"));
	return json_array_append_new(a->items, json_pack("{s:I,s:s,s:s,s:o,s:I,s:b}", "id", (json_int_t)k->id,
							 "user", k->user, "key_prefix", k->hash_prefix, "scopes", sc,
							 "created_ms", (json_int_t)k->created_ms, "revoked",
							 (int)k->revoked)) == 0
		? 0 : CE_NOMEM;
}

/* GET /apikeys (list, never the keys), DELETE /apikeys/ID (revoke): admin. */
void r_apikeys(struct ctx *x)
{
	static const char *const ok[] = { "limit", "cursor", NULL };
	enum rest_method m = x->req->method;
	struct list_acc a = { NULL, 0 };
	size_t limit, n = 0;
	uint64_t cursor, id;
	int r;

	if (!need(x, SMS_SCOPE_ADMIN))
		return;
	if (x->nseg == 1 && (m == REST_GET || m == REST_HEAD)) {
		if (!params_only(x, ok) || !page_params(x, &limit, &cursor))
			return;
		if (!(a.items = json_array())) {
			internal(x->resp, CE_NOMEM);
			return;
		}
		if ((r = sms_apikey_list(x->s, (int64_t)cursor, limit, acc_apikey, &a, &n)) != 0) {
			json_decref(a.items);
			internal(x->resp, r);
			return;
		}
		page_answer(x, a.items, n, limit, a.last);
	} else if (x->nseg == 2 && m == REST_DELETE) {
		r = id_parse(x->seg[1], INT64_MAX, &id) ? sms_apikey_revoke(x->s, (int64_t)id, x->who) : CE_NOT_FOUND;
		if (r != 0)
			store_fail(x->resp, r, "API key");
		else
			set_body(x->resp, 204, "application/json", NULL, 0);
	} else if (x->nseg <= 2) {
		fail(x->resp, 405, "method_not_allowed", x->nseg == 1 ? "GET" : "DELETE");
	} else {
		fail(x->resp, 404, "not_found", "no such resource");
	}
}

