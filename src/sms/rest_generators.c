/*
 * rest_generators.c - /api/v1/generators and /api/v1/status
 * (docs/api-rest.md): the ECMG/EMMG definitions the head-end follows, and
 * each head-end node's published counters.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"
#include "lib/util.h"

static const char *const gen_kinds[] = { "ecmg", "emmg" };

static json_t *gen_json(const struct sms_generator *g)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:i,s:I,s:i,s:b}", "id", (json_int_t)g->id, "kind", gen_kinds[g->kind],
			 "name", g->name, "address", g->address, "ca_system_id", (int)g->ca_system_id, "client_id",
			 (json_int_t)g->client_id, "bandwidth_kbps", (int)g->bandwidth_kbps, "enabled", (int)g->enabled);
}

static int acc_gen(void *ctx, const struct sms_generator *g)
{
	struct list_acc *a = ctx;

	a->last = (uint64_t)g->id;
	return json_array_append_new(a->items, gen_json(g)) == 0 ? 0 : CE_NOMEM;
}

/* A whole definition (POST and PUT): kind, name, address, ca_system_id
 * required; client_id, bandwidth_kbps 0 and enabled true by default. */
static bool gen_fields(struct ctx *x, json_t *o, struct sms_generator *g)
{
	bool has_kind = false, has_name = false, has_addr = false, has_cas = false;
	const char *k;
	json_t *v;
	uint64_t u;

	memset(g, 0, sizeof(*g));
	g->enabled = true;
	json_object_foreach(o, k, v) {
		if (strcmp(k, "kind") == 0) {
			const char *t = json_string_value(v);

			if (!t || (strcmp(t, "ecmg") != 0 && strcmp(t, "emmg") != 0)) {
				bad_field(x, k, "\"ecmg\" or \"emmg\"");
				return false;
			}
			g->kind = strcmp(t, "emmg") == 0 ? SMS_GEN_EMMG : SMS_GEN_ECMG;
			has_kind = true;
		} else if (strcmp(k, "name") == 0) {
			if (!(has_name = j_text(v, g->name, sizeof(g->name))) || !g->name[0] || !sms_name_fits(g->name)) {
				bad_field(x, k, "1..255 characters of text");
				return false;
			}
		} else if (strcmp(k, "address") == 0) {
			if (!(has_addr = j_text(v, g->address, sizeof(g->address))) || !g->address[0] ||
			    strchr(g->address, ' ')) {
				bad_field(x, k, "host:port");
				return false;
			}
		} else if (strcmp(k, "ca_system_id") == 0) {
			if (!(has_cas = j_uint(v, 0xFFFF, &u) || j_hex16(v, &u))) {
				bad_field(x, k, "0..65535, or a hex string such as \"0x4ADC\"");
				return false;
			}
			g->ca_system_id = (uint16_t)u;
		} else if (strcmp(k, "client_id") == 0) {
			if (!j_uint(v, UINT32_MAX, &u)) {
				bad_field(x, k, "0..4294967295");
				return false;
			}
			g->client_id = (uint32_t)u;
		} else if (strcmp(k, "bandwidth_kbps") == 0) {
			if (!j_uint(v, 0xFFFF, &u)) {
				bad_field(x, k, "0..65535");
				return false;
			}
			g->bandwidth_kbps = (uint32_t)u;
		} else if (strcmp(k, "enabled") == 0) {
			if (!json_is_boolean(v)) {
				bad_field(x, k, "true or false");
				return false;
			}
			g->enabled = json_is_true(v);
		} else {
			unknown_field(x, k);
			return false;
		}
	}
	if (!has_kind || !has_name || !has_addr || !has_cas) {
		bad_field(x, !has_kind ? "kind" : !has_name ? "name" : !has_addr ? "address" : "ca_system_id",
			  "required");
		return false;
	}
	if (g->kind == SMS_GEN_EMMG && g->bandwidth_kbps == 0) {
		bad_field(x, "bandwidth_kbps", "1..65535 for an EMMG");
		return false;
	}
	if (g->kind == SMS_GEN_ECMG && (g->bandwidth_kbps || g->client_id)) {
		bad_field(x, g->bandwidth_kbps ? "bandwidth_kbps" : "client_id", "an EMMG's only");
		return false;
	}
	return true;
}

static void gen_answer(struct ctx *x, int status, int64_t id)
{
	struct sms_generator g;
	int r = sms_generator_get(x->s, id, &g);

	if (r != 0)
		store_fail(x->resp, r, "generator");
	else
		ok_json(x->resp, status, gen_json(&g));
}

/* GET /generators[?kind=], GET /generators/ID: read; POST /generators,
 * PUT /generators/ID (the whole definition): admin. */
void r_generators(struct ctx *x)
{
	static const char *const ok[] = { "limit", "cursor", "kind", NULL };
	enum rest_method m = x->req->method;
	struct sms_generator g;
	uint64_t id = 0;
	json_t *j;
	int r;

	if (x->nseg == 2 && !id_parse(x->seg[1], INT64_MAX, &id)) {
		fail(x->resp, 404, "not_found", "generator not found");
		return;
	}
	if (x->nseg == 1 && (m == REST_GET || m == REST_HEAD)) {
		struct list_acc a = { NULL, 0 };
		const char *kind;
		size_t limit, n = 0;
		uint64_t cursor;
		int kd = -1;

		if (!need(x, SMS_SCOPE_READ) || !params_only(x, ok) || !page_params(x, &limit, &cursor))
			return;
		if ((kind = param(x, "kind")) != NULL) {
			if (strcmp(kind, "ecmg") != 0 && strcmp(kind, "emmg") != 0) {
				fail(x->resp, 400, "invalid_parameter", "kind: \"ecmg\" or \"emmg\"");
				return;
			}
			kd = strcmp(kind, "emmg") == 0 ? SMS_GEN_EMMG : SMS_GEN_ECMG;
		}
		if (!(a.items = json_array())) {
			internal(x->resp, CE_NOMEM);
			return;
		}
		if ((r = sms_generator_list(x->s, kd, (int64_t)cursor, limit, acc_gen, &a, &n)) != 0) {
			json_decref(a.items);
			internal(x->resp, r);
			return;
		}
		page_answer(x, a.items, n, limit, a.last);
	} else if (x->nseg == 2 && (m == REST_GET || m == REST_HEAD)) {
		if (need(x, SMS_SCOPE_READ) && params_only(x, (const char *const[]){ NULL }))
			gen_answer(x, 200, (int64_t)id);
	} else if ((x->nseg == 1 && m == REST_POST) || (x->nseg == 2 && m == REST_PUT)) {
		int64_t nid = (int64_t)id;

		if (!need(x, SMS_SCOPE_ADMIN) || !(j = body_json(x)))
			return;
		if (gen_fields(x, j, &g)) {
			r = m == REST_POST ? sms_generator_add(x->s, &g, x->who, &nid)
					   : sms_generator_update(x->s, nid, &g, x->who);
			if (r != 0)
				store_fail(x->resp, r, r == CE_EXISTS ? "a generator of that name" : "generator");
			else
				gen_answer(x, m == REST_POST ? 201 : 200, nid);
		}
		json_decref(j);
	} else if (x->nseg <= 2) {
		fail(x->resp, 405, "method_not_allowed", x->nseg == 1 ? "GET, POST" : "GET, PUT");
	} else {
		fail(x->resp, 404, "not_found", "no such resource");
	}
}

struct status_acc {
	json_t *nodes;
	int64_t now;
};

static int acc_status(void *ctx, const char *node, int64_t updated_ms, const char *txt)
{
	struct status_acc *a = ctx;
	json_t *st = json_loads(txt, 0, NULL);

	return json_array_append_new(a->nodes, json_pack("{s:s,s:I,s:I,s:o}", "node", node, "updated_ms",
							 (json_int_t)updated_ms, "age_ms",
							 (json_int_t)(a->now - updated_ms), "status",
							 st ? st : json_object())) == 0
		? 0 : CE_NOMEM;
}

/* GET /status: each head-end node's live counters (published by the node
 * every 2 s to the store): read. */
void r_status(struct ctx *x)
{
	struct status_acc a = { json_array(), (int64_t)now_wall_ms() };
	int r;

	if (x->req->method != REST_GET && x->req->method != REST_HEAD) {
		json_decref(a.nodes);
		fail(x->resp, 405, "method_not_allowed", "GET");
		return;
	}
	if (x->nseg != 1 || !need(x, SMS_SCOPE_READ) || !params_only(x, (const char *const[]){ NULL }) || !a.nodes) {
		if (x->nseg != 1)
			fail(x->resp, 404, "not_found", "no such resource");
		json_decref(a.nodes);
		return;
	}
	if ((r = sms_node_status_list(x->s, acc_status, &a)) != 0) {
		json_decref(a.nodes);
		internal(x->resp, r);
		return;
	}
	ok_json(x->resp, 200, json_pack("{s:o}", "nodes", a.nodes));
}

