/*
 * rest_json.c - the REST API's answers and JSON writers (rest_int.h): the
 * error body {"error":{"code","message"}} and its store-error mapping, a
 * JSON answer, a page {"items","next_cursor"}, and the one card writer
 * (card_jw, bytes identical to jansson's compact dump).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"
#include "lib/log.h"

/* ---- answers ----------------------------------------------------------- */

void set_body(struct rest_resp *resp, int status, const char *ctype, char *body, size_t len)
{
	free(resp->body);
	resp->status = status;
	resp->content_type = ctype;
	resp->body = body;
	resp->len = len;
}

/* {"error":{"code":code,"message":...}} plus extra members (may be NULL,
 * stolen). */
void fail_x(struct rest_resp *resp, int status, const char *code, json_t *extra, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	json_t *e, *o, *m;
	char *txt;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e = extra ? extra : json_object();
	json_object_set_new(e, "code", json_string(code));
	/* json_string refuses invalid UTF-8: messages quote input, so fall back. */
	m = json_string(msg);
	json_object_set_new(e, "message", m ? m : json_string(code));
	o = json_pack("{s:o}", "error", e);
	txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!txt) {
		static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

		txt = strdup(oom);
		status = 500;
		code = "internal";
	}
	set_body(resp, status, "application/json", txt, txt ? strlen(txt) : 0);
	resp->error_code = code;
}


void internal(struct rest_resp *resp, int r)
{
	LOG_ERR("sms", "REST API: %s", err_str(r));
	fail(resp, 500, "internal", "internal error (the head-end's log says why)");
}

/* Map a store error to an answer. */
void store_fail(struct rest_resp *resp, int r, const char *what)
{
	switch (r) {
	case CE_NOT_FOUND: fail(resp, 404, "not_found", "%s not found", what); break;
	case CE_EXISTS: fail(resp, 409, "conflict", "%s already exists", what); break;
	case CE_RANGE:
	case CE_ARG: fail(resp, 400, "invalid_value", "a value of %s is out of range", what); break;
	case CE_BLOCKED:
		fail(resp, 409, "blacklisted", "%s: the card or its box is blacklisted and cannot be activated or re-deployed",
		     what);
		break;
	default: internal(resp, r); break;
	}
}

/* Takes the reference of j. */
void ok_json(struct rest_resp *resp, int status, json_t *j)
{
	char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!txt) {
		internal(resp, CE_NOMEM);
		return;
	}
	set_body(resp, status, "application/json", txt, strlen(txt));
	resp->error_code = NULL;
}
/* ---- JSON writers ------------------------------------------------------ */

const char *const state_names[3] = { "active", "blocked", "retired" };

/* The one card JSON writer (GET card, the card list): the card's members
 * without the closing brace, so the single-card answer can add its
 * subscriptions. The bytes are those of json_dumps(JSON_COMPACT) of the
 * same object (jsonw.h JW_JANSSON; tests/sms/test_rest.c checks). */
void card_jw(struct jw *j, const struct sms_card *c)
{
	char ac[9];

	jw_lit(j, "{\"serial_no\":\"");
	jw_u64(j, c->serial);
	jw_lit(j, "\",\"chip_id\":");
	jw_str(j, c->chip_id);
	jw_lit(j, ",\"state\":\"");
	jw_lit(j, state_names[(unsigned)c->state <= 2 ? c->state : 0]);
	jw_lit(j, c->pair ? "\",\"pair\":true,\"start\":" : "\",\"pair\":false,\"start\":");
	jw_i64(j, c->start);
	jw_lit(j, ",\"finish\":");
	jw_i64(j, c->finish);
	jw_lit(j, ",\"name\":");
	jw_str(j, c->name);
	jw_lit(j, ",\"info\":");
	jw_str(j, c->info);
	snprintf(ac, sizeof(ac), "%08" PRIX32, c->access_criteria);
	jw_lit(j, ",\"access_criteria\":\"");
	jw_lit(j, ac);
	jw_lit(j, "\",\"subscriber_id\":");
	jw_i64(j, c->subscriber_id);
}

/* Bytes card_jw may write: escaping grows text at most 6-fold (\u00XX). */
size_t card_jw_cap(const struct sms_card *c)
{
	return 320 + 6 * (strlen(c->chip_id) + strlen(c->name) + strlen(c->info));
}

json_t *sub_json(const struct sms_subscription *s)
{
	char serial[24];

	snprintf(serial, sizeof(serial), "%" PRIu64, s->serial);
	return json_pack("{s:s,s:I,s:I,s:I}", "serial_no", serial, "package", (json_int_t)s->package, "start",
			 (json_int_t)s->start, "finish", (json_int_t)s->finish);
}

/* {"items":[...],"next_cursor":C|null}; takes items. */
void page_answer(struct ctx *x, json_t *items, size_t n, size_t limit, uint64_t last)
{
	char cur[24];
	json_t *o;

	snprintf(cur, sizeof(cur), "%" PRIu64, last);
	o = json_pack("{s:o,s:o}", "items", items, "next_cursor", n == limit ? json_string(cur) : json_null());
	ok_json(x->resp, 200, o);
}

