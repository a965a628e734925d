/*
 * rest_osd.c - REST /api/v1/fingerprints and /api/v1/messages (issue 13):
 * the SMS's fingerprint schedules and messages (sms/store_osd.h), as
 * `castellan sms fingerprint|message` offers them. Reading needs the read
 * scope; adding and deleting, write (every change is in the audit chain,
 * as the caller: "rest:USER:KEYTAG"). docs/openapi.yaml has the schemas.
 *
 *   GET    /fingerprints[?active=1]    every schedule (or those in force now)
 *   POST   /fingerprints               {"target":"service"|"package"|"card","value":N, ...} -> 201
 *   DELETE /fingerprints/ID            -> 204
 *   GET    /messages[?active=1]
 *   POST   /messages                   {"scope":"global"|"group"|"individual","text":"...", ...} -> 201
 *   DELETE /messages/ID
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/util.h"
#include "sms/rest_int.h"
#include "sms/store.h"
#include "sms/store_osd.h"

static json_t *colour_json(const uint8_t *c, size_t n)
{
	char s[10];

	if (n == 3)
		snprintf(s, sizeof(s), "#%02X%02X%02X", c[0], c[1], c[2]);
	else
		snprintf(s, sizeof(s), "#%02X%02X%02X%02X", c[0], c[1], c[2], c[3]);
	return json_string(s);
}

static bool j_colour(json_t *v, uint8_t *out, size_t n)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;

	if (!s)
		return false;
	if (s[0] == '#')
		s++;
	return strlen(s) == 2 * n && hex_decode(s, out, n) == 0;
}

/* What a bad field of a Fingerprint or Message must be (the 400's text: the
 * panel shows it as it is, so it names the rule, not a document). */
static const char *field_rule(const char *k)
{
	static const struct {
		const char *k, *rule;
	} rules[] = {
		{ "target", "one of service, package, card" },
		{ "value", "the service id, package id or card serial (a whole number)" },
		{ "show", "one of serial, box, both" },
		{ "scope", "one of global, group, individual" },
		{ "x_pct", "a whole number 0..100 (% of the width)" },
		{ "y_pct", "a whole number 0..100 (% of the height)" },
		{ "fg", "a colour as #RRGGBB (6 hex digits)" },
		{ "bg", "a colour and opacity as #RRGGBBAA (8 hex digits)" },
		{ "font_px", "a whole number of pixels, at most 160" },
		{ "duration_ms", "milliseconds, at most 600000" },
		{ "repeat", "a number of showings, at most 1000" },
		{ "interval_s", "seconds between showings, at most 604800" },
		{ "duration_s", "seconds on screen, at most 3600" },
		{ "group", "a package id 0..31" },
		{ "card", "a card serial" },
		{ "text", "UTF-8 text of 1..720 bytes without control characters" },
		{ "start", "unix seconds" },
		{ "end", "unix seconds" },
		{ "expiry", "unix seconds" },
	};

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (strcmp(rules[i].k, k) == 0)
			return rules[i].rule;
	return "true or false";
}

static json_t *fp_json(const struct sms_fingerprint *f)
{
	const char *show = (f->fp.flags & OSD_FP_SERIAL) && (f->fp.flags & OSD_FP_BOX) ? "both"
		: (f->fp.flags & OSD_FP_SERIAL) ? "serial" : "box";

	return json_pack("{sI ss sI ss sb sb sb si si so so si sI si sI sI sI}", "id", (json_int_t)f->id, "target",
		sms_fp_target_name(f->target), "value", (json_int_t)f->value, "show", show, "covert",
		(f->fp.flags & OSD_FP_COVERT) != 0, "encoded", (f->fp.flags & OSD_FP_ENCODED) != 0, "random",
		(f->fp.flags & OSD_FP_RANDOM_POS) != 0, "x_pct", f->fp.x_pct, "y_pct", f->fp.y_pct, "fg",
		colour_json(f->fp.fg, 3), "bg", colour_json(f->fp.bg, 4), "font_px", f->fp.font_px, "duration_ms",
		(json_int_t)f->fp.duration_ms, "repeat", f->fp.repeat, "interval_s", (json_int_t)f->fp.interval_s,
		"start", (json_int_t)f->start_s, "end", (json_int_t)f->end_s);
}

static json_t *msg_json(const struct sms_message *m)
{
	const char *scope = m->msg.scope == OSD_SCOPE_GLOBAL ? "global" : m->msg.scope == OSD_SCOPE_GROUP ? "group"
		: "individual";

	return json_pack("{sI ss sI sI ss sb sb si so so si sI sI}", "id", (json_int_t)m->id, "scope", scope, "group",
		(json_int_t)m->msg.group_id, "card", (json_int_t)m->card, "text", m->msg.text, "popup",
		(m->msg.flags & OSD_MSG_POPUP) != 0, "forced", (m->msg.flags & OSD_MSG_FORCED) != 0, "duration_s",
		m->msg.duration_s, "fg", colour_json(m->msg.fg, 3), "bg", colour_json(m->msg.bg, 4), "font_px",
		m->msg.font_px, "start", (json_int_t)m->start_s, "expiry", (json_int_t)m->msg.expiry_s);
}

static int acc_fp(void *ctx, const struct sms_fingerprint *f)
{
	json_t *o = fp_json(f);

	return o && json_array_append_new(ctx, o) == 0 ? 0 : CE_NOMEM;
}

static int acc_msg(void *ctx, const struct sms_message *m)
{
	json_t *o = msg_json(m);

	return o && json_array_append_new(ctx, o) == 0 ? 0 : CE_NOMEM;
}

/* GET list (?active=1), DELETE /ID: the parts both resources share. true
 * if the request was one of them (answered). */
static bool list_or_delete(struct ctx *x, bool message)
{
	static const char *const allowed[] = { "active", NULL };
	enum rest_method m = x->req->method;
	uint64_t id;
	int r;

	if (x->nseg == 1 && (m == REST_GET || m == REST_HEAD)) {
		const char *a;
		json_t *items;
		size_t n = 0;

		if (!need(x, SMS_SCOPE_READ) || !params_only(x, allowed))
			return true;
		a = param(x, "active");
		if (a && strcmp(a, "1") != 0 && strcmp(a, "0") != 0) {
			fail(x->resp, 400, "bad_request", "active: 0 or 1");
			return true;
		}
		if (!(items = json_array())) {
			internal(x->resp, CE_NOMEM);
			return true;
		}
		{
			int64_t now = a && a[0] == '1' ? (int64_t)(now_wall_ms() / 1000u) : -1;

			r = message ? sms_msg_list(x->s, now, 100000, acc_msg, items, &n)
				: sms_fp_list(x->s, now, 100000, acc_fp, items, &n);
		}
		if (r != 0) {
			json_decref(items);
			internal(x->resp, r);
			return true;
		}
		ok_json(x->resp, 200, json_pack("{so}", "items", items));
		return true;
	}
	if (x->nseg == 2 && m == REST_DELETE) {
		if (!need(x, SMS_SCOPE_WRITE))
			return true;
		if (!id_parse(x->seg[1], UINT32_MAX, &id) || id == 0) {
			fail(x->resp, 404, "not_found", "%s not found", message ? "message" : "fingerprint");
			return true;
		}
		r = message ? sms_msg_delete(x->s, (int64_t)id, x->who) : sms_fp_delete(x->s, (int64_t)id, x->who);
		if (r != 0)
			store_fail(x->resp, r, message ? "message" : "fingerprint");
		else
			set_body(x->resp, 204, "application/json", NULL, 0);
		return true;
	}
	if (x->nseg > 2 || (x->nseg == 2 && m != REST_DELETE) || (x->nseg == 1 && m != REST_POST)) {
		fail(x->resp, 405, "method_not_allowed", x->nseg == 1 ? "GET, POST" : "DELETE");
		return true;
	}
	return false;
}

void r_fingerprints(struct ctx *x)
{
	struct sms_fingerprint f;
	json_t *j, *v;
	const char *k;
	uint64_t u;
	bool has_target = false, has_value = false;
	int64_t now = (int64_t)(now_wall_ms() / 1000u);
	int r;

	if (list_or_delete(x, false))
		return;
	if (!need(x, SMS_SCOPE_WRITE) || !(j = body_json(x)))
		return;
	memset(&f, 0, sizeof(f));
	f.fp = (struct osd_fingerprint){ .flags = OSD_FP_SERIAL, .x_pct = 5, .y_pct = 5, .fg = { 0xFF, 0xFF, 0xFF },
		.bg = { 0, 0, 0, 0x80 }, .font_px = 24, .duration_ms = 5000, .repeat = 1 };
	f.start_s = now;
	f.end_s = now + 24 * 3600;
	json_object_foreach(j, k, v) {
		bool ok = true;

		if (strcmp(k, "target") == 0) {
			const char *t = json_is_string(v) ? json_string_value(v) : "";

			has_target = true;
			if (strcmp(t, "service") == 0)
				f.target = SMS_FP_SERVICE;
			else if (strcmp(t, "package") == 0)
				f.target = SMS_FP_PACKAGE;
			else if (strcmp(t, "card") == 0)
				f.target = SMS_FP_CARD;
			else
				ok = false;
		} else if (strcmp(k, "value") == 0) {
			ok = has_value = j_uint(v, INT64_MAX, &f.value);
		} else if (strcmp(k, "show") == 0) {
			const char *s = json_is_string(v) ? json_string_value(v) : "";
			uint8_t show = strcmp(s, "serial") == 0 ? OSD_FP_SERIAL : strcmp(s, "box") == 0 ? OSD_FP_BOX
				: strcmp(s, "both") == 0 ? (OSD_FP_SERIAL | OSD_FP_BOX) : 0;

			ok = show != 0;
			f.fp.flags = (uint8_t)((f.fp.flags & ~(OSD_FP_SERIAL | OSD_FP_BOX)) | show);
		} else if (strcmp(k, "covert") == 0 || strcmp(k, "encoded") == 0 || strcmp(k, "random") == 0) {
			uint8_t bit = k[0] == 'c' ? OSD_FP_COVERT : k[0] == 'e' ? OSD_FP_ENCODED : OSD_FP_RANDOM_POS;

			ok = json_is_boolean(v);
			f.fp.flags = json_is_true(v) ? (uint8_t)(f.fp.flags | bit) : (uint8_t)(f.fp.flags & ~bit);
		} else if (strcmp(k, "x_pct") == 0 || strcmp(k, "y_pct") == 0) {
			ok = j_uint(v, 100, &u);
			*(k[0] == 'x' ? &f.fp.x_pct : &f.fp.y_pct) = (uint8_t)u;
		} else if (strcmp(k, "fg") == 0) {
			ok = j_colour(v, f.fp.fg, 3);
		} else if (strcmp(k, "bg") == 0) {
			ok = j_colour(v, f.fp.bg, 4);
		} else if (strcmp(k, "font_px") == 0) {
			ok = j_uint(v, OSD_MAX_FONT_PX, &u);
			f.fp.font_px = (uint8_t)u;
		} else if (strcmp(k, "duration_ms") == 0) {
			ok = j_uint(v, OSD_MAX_FP_DURATION_MS, &u);
			f.fp.duration_ms = (uint32_t)u;
		} else if (strcmp(k, "repeat") == 0) {
			ok = j_uint(v, OSD_MAX_REPEAT, &u);
			f.fp.repeat = (uint16_t)u;
		} else if (strcmp(k, "interval_s") == 0) {
			ok = j_uint(v, OSD_MAX_INTERVAL_S, &u);
			f.fp.interval_s = (uint32_t)u;
		} else if (strcmp(k, "start") == 0) {
			ok = j_time(v, &f.start_s);
		} else if (strcmp(k, "end") == 0) {
			ok = j_time(v, &f.end_s);
		} else {
			unknown_field(x, k);
			goto out;
		}
		if (!ok) {
			bad_field(x, k, field_rule(k));
			goto out;
		}
	}
	if (!has_target || !has_value) {
		bad_field(x, has_target ? "value" : "target", "required");
		goto out;
	}
	if (f.target == SMS_FP_SERVICE && f.value <= 65535)
		f.fp.service = (uint16_t)f.value;
	if ((r = sms_fp_add(x->s, &f, x->who)) != 0)
		store_fail(x->resp, r, "fingerprint");
	else
		ok_json(x->resp, 201, fp_json(&f));
out:
	json_decref(j);
}

void r_messages(struct ctx *x)
{
	struct sms_message *m;
	json_t *j, *v;
	const char *k;
	uint64_t u;
	bool has_scope = false, has_text = false;
	int64_t now = (int64_t)(now_wall_ms() / 1000u);
	int r;

	if (list_or_delete(x, true))
		return;
	if (!need(x, SMS_SCOPE_WRITE) || !(j = body_json(x)))
		return;
	if (!(m = calloc(1, sizeof(*m)))) {
		json_decref(j);
		internal(x->resp, CE_NOMEM);
		return;
	}
	m->msg.duration_s = 30;
	m->msg.font_px = 24;
	memcpy(m->msg.fg, "\xFF\xFF\xFF", 3);
	memcpy(m->msg.bg, "\x10\x10\x40\xD0", 4);
	m->start_s = now;
	m->msg.expiry_s = (uint64_t)now + 7 * 24 * 3600;
	json_object_foreach(j, k, v) {
		bool ok = true;

		if (strcmp(k, "scope") == 0) {
			const char *s = json_is_string(v) ? json_string_value(v) : "";

			has_scope = true;
			m->msg.scope = strcmp(s, "global") == 0 ? OSD_SCOPE_GLOBAL : strcmp(s, "group") == 0 ? OSD_SCOPE_GROUP
				: OSD_SCOPE_INDIVIDUAL;
			ok = strcmp(s, "global") == 0 || strcmp(s, "group") == 0 || strcmp(s, "individual") == 0;
		} else if (strcmp(k, "group") == 0) {
			ok = j_uint(v, 31, &u);
			m->msg.group_id = (uint32_t)u;
		} else if (strcmp(k, "card") == 0) {
			ok = j_serial(v, &m->card);
		} else if (strcmp(k, "text") == 0) {
			ok = has_text = json_is_string(v) && osd_msg_set_text(&m->msg, json_string_value(v)) == 0;
		} else if (strcmp(k, "popup") == 0 || strcmp(k, "forced") == 0) {
			uint8_t bit = k[0] == 'p' ? OSD_MSG_POPUP : OSD_MSG_FORCED;

			ok = json_is_boolean(v);
			m->msg.flags = json_is_true(v) ? (uint8_t)(m->msg.flags | bit) : (uint8_t)(m->msg.flags & ~bit);
		} else if (strcmp(k, "duration_s") == 0) {
			ok = j_uint(v, OSD_MAX_MSG_DURATION_S, &u);
			m->msg.duration_s = (uint16_t)u;
		} else if (strcmp(k, "fg") == 0) {
			ok = j_colour(v, m->msg.fg, 3);
		} else if (strcmp(k, "bg") == 0) {
			ok = j_colour(v, m->msg.bg, 4);
		} else if (strcmp(k, "font_px") == 0) {
			ok = j_uint(v, OSD_MAX_FONT_PX, &u);
			m->msg.font_px = (uint8_t)u;
		} else if (strcmp(k, "start") == 0) {
			ok = j_time(v, &m->start_s);
		} else if (strcmp(k, "expiry") == 0) {
			int64_t e = 0;

			ok = j_time(v, &e);
			m->msg.expiry_s = (uint64_t)e;
		} else {
			unknown_field(x, k);
			goto out;
		}
		if (!ok) {
			bad_field(x, k, field_rule(k));
			goto out;
		}
	}
	if (!has_scope || !has_text) {
		bad_field(x, has_scope ? "text" : "scope", "required");
		goto out;
	}
	if ((r = sms_msg_add(x->s, m, x->who)) != 0)
		store_fail(x->resp, r, "message");
	else
		ok_json(x->resp, 201, msg_json(m));
out:
	json_decref(j);
	free(m);
}
