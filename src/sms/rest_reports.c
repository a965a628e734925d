/*
 * rest_reports.c - /api/v1/blacklist and /api/v1/reports
 * (docs/api-rest.md, report.h; schema 4): the blacklist list and add, the
 * named reports as JSON or CSV.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"
#include "sms/csv.h"
#include "sms/report.h"

static int acc_bl(void *ctx, const struct sms_blacklist_entry *b)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:s}", "kind", b->kind == SMS_BL_CARD ? "card" : "box", "id", b->id,
			      "reason", b->reason, "at_ms", (json_int_t)b->at_ms, "who", b->who);

	return o && json_array_append_new(ctx, o) == 0 ? 0 : CE_NOMEM;
}

/* GET /blacklist (read), POST /blacklist {"kind":"card"|"box","id","reason"} (write). */
void r_blacklist(struct ctx *x)
{
	enum rest_method m = x->req->method;
	int r;

	if (x->nseg != 1) {
		fail(x->resp, 404, "not_found", "no such resource");
	} else if (m == REST_GET || m == REST_HEAD) {
		json_t *a = json_array();
		size_t n = 0;

		if (!need(x, SMS_SCOPE_READ)) {
			json_decref(a);
			return;
		}
		if (!a || (r = sms_blacklist_list(x->s, 0, acc_bl, a, &n)) != 0) {
			json_decref(a);
			internal(x->resp, a ? r : CE_NOMEM);
			return;
		}
		ok_json(x->resp, 200, json_pack("{s:o}", "items", a));
	} else if (m == REST_POST) {
		json_t *j, *v;
		const char *k;
		char kind[8] = "", id[SMS_CHIP_ID_MAX + 1] = "", reason[SMS_NAME_MAX + 1] = "";
		bool has_kind = false, has_id = false;

		if (!need(x, SMS_SCOPE_WRITE) || !(j = body_json(x)))
			return;
		json_object_foreach(j, k, v) {
			if (strcmp(k, "kind") == 0) {
				if (!(has_kind = j_text(v, kind, sizeof(kind))) || (strcmp(kind, "card") && strcmp(kind, "box"))) {
					bad_field(x, k, "\"card\" or \"box\"");
					goto bout;
				}
			} else if (strcmp(k, "id") == 0) {
				if (!(has_id = j_text(v, id, sizeof(id))) || !id[0]) {
					bad_field(x, k, "the card's serial_no or the box's chip id (1..64 bytes)");
					goto bout;
				}
			} else if (strcmp(k, "reason") == 0) {
				if (!j_text(v, reason, sizeof(reason))) {
					bad_field(x, k, "0..255 bytes of text");
					goto bout;
				}
			} else {
				unknown_field(x, k);
				goto bout;
			}
		}
		if (!has_kind || !has_id) {
			bad_field(x, has_kind ? "id" : "kind", "required");
			goto bout;
		}
		if ((r = sms_blacklist_add(x->s, strcmp(kind, "card") == 0 ? SMS_BL_CARD : SMS_BL_BOX, id, reason,
					   x->who)) != 0)
			store_fail(x->resp, r, "blacklist entry");
		else
			ok_json(x->resp, 201, json_pack("{s:s,s:s,s:s}", "kind", kind, "id", id, "reason", reason));
bout:
		json_decref(j);
	} else {
		fail(x->resp, 405, "method_not_allowed", "GET or POST");
	}
}

/* GET /reports (the names), GET /reports/NAME?PARAMS[&format=csv] (read). */
void r_reports(struct ctx *x)
{
	struct sms_report_params p;
	struct sms_table *t = NULL;
	const char *fmt = param(x, "format");
	bool known = false;
	int r;

	if (x->req->method != REST_GET && x->req->method != REST_HEAD) {
		fail(x->resp, 405, "method_not_allowed", "GET");
		return;
	}
	if (!need(x, SMS_SCOPE_READ))
		return;
	if (x->nseg == 1) {
		json_t *a = json_array();

		for (size_t i = 0; sms_report_names[i] && a; i++)
			json_array_append_new(a, json_string(sms_report_names[i]));
		ok_json(x->resp, 200, json_pack("{s:o}", "reports", a));
		return;
	}
	if (x->nseg != 2) {
		fail(x->resp, 404, "not_found", "no such resource");
		return;
	}
	for (size_t i = 0; sms_report_names[i]; i++)
		known = known || strcmp(sms_report_names[i], x->seg[1]) == 0;
	if (!known) {
		fail(x->resp, 404, "not_found", "no report '%.64s' (GET /api/v1/reports lists them)", x->seg[1]);
		return;
	}
	if (fmt && strcmp(fmt, "csv") != 0 && strcmp(fmt, "json") != 0) {
		fail(x->resp, 400, "invalid_value", "format: csv or json");
		return;
	}
	sms_report_params_init(&p);
	for (size_t i = 0; i < x->nparam; i++) {
		if (strcmp(x->param[i].name, "format") == 0)
			continue;
		r = sms_report_param(&p, x->param[i].name, x->param[i].value);
		if (r == CE_NOT_FOUND) {
			fail(x->resp, 400, "unknown_parameter", "unknown query parameter '%.31s'", x->param[i].name);
			return;
		}
		if (r != 0) {
			fail(x->resp, 400, "invalid_value", "a bad value for '%.31s'", x->param[i].name);
			return;
		}
	}
	r = sms_report_run(x->s, x->seg[1], &p, &t);
	if (r == CE_ARG) {
		fail(x->resp, 400, "missing_parameter", "report %s needs: active/ageing package= or channel=;"
		     " card/history card=", x->seg[1]);
		return;
	}
	if (r == CE_RANGE) {
		fail(x->resp, 400, "invalid_value", "a day past the end of the month");
		return;
	}
	if (r != 0) {
		store_fail(x->resp, r, r == CE_NOT_FOUND ? "card or channel" : "report");
		return;
	}
	if (fmt && strcmp(fmt, "csv") == 0) {
		struct dynbuf d = { 0 };

		if ((r = sms_table_csv(t, dyn_out, &d)) != 0) {
			free(d.p);
			sms_table_free(t);
			if (r == CE_LIMIT)
				fail(x->resp, 413, "payload_too_large", "the report is over %u bytes: use the CLI",
				     CSV_FILE_MAX);
			else
				internal(x->resp, r);
			return;
		}
		set_body(x->resp, 200, "text/csv; charset=utf-8", d.p ? d.p : strdup(""), d.len);
		x->resp->error_code = NULL;
	} else {
		ok_json(x->resp, 200, sms_table_json(t));
	}
	sms_table_free(t);
}

