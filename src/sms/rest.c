/*
 * rest.c - the JSON REST API (rest.h, docs/api-rest.md): a table of routes,
 * the API-key check (sms_apikey_check: SHA-256 lookup, constant-time
 * compare) with per-route scopes, strict JSON bodies (unknown fields and
 * duplicate keys refused), cursor pagination, bulk subscriptions in one
 * transaction, CSV import/export (csv.h).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "sms/rest.h"
#include "sms/jsonw.h"
#include "sms/csv.h"
#include "sms/report.h"
#include "lib/log.h"
#include "lib/url.h"
#include "lib/util.h"

/* ---- answers ----------------------------------------------------------- */

static void set_body(struct rest_resp *resp, int status, const char *ctype, char *body, size_t len)
{
	free(resp->body);
	resp->status = status;
	resp->content_type = ctype;
	resp->body = body;
	resp->len = len;
}

static void internal(struct rest_resp *resp, int r);

/* {"error":{"code":code,"message":...}} plus extra members (may be NULL,
 * stolen). */
static void fail_x(struct rest_resp *resp, int status, const char *code, json_t *extra, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void fail_x(struct rest_resp *resp, int status, const char *code, json_t *extra, const char *fmt, ...)
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

#define fail(resp, status, code, ...) fail_x(resp, status, code, NULL, __VA_ARGS__)

static void internal(struct rest_resp *resp, int r)
{
	LOG_ERR("sms", "REST API: %s", err_str(r));
	fail(resp, 500, "internal", "internal error (the head-end's log says why)");
}

/* Map a store error to an answer. */
static void store_fail(struct rest_resp *resp, int r, const char *what)
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
static void ok_json(struct rest_resp *resp, int status, json_t *j)
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

/* ---- request context --------------------------------------------------- */

#define SEG_MAX 5

struct ctx {
	struct sms_store *s;
	const struct rest_req *req;
	struct rest_resp *resp;
	size_t nseg;
	char seg[SEG_MAX][65];
	size_t nparam;
	struct { char name[32]; char value[SMS_NAME_MAX + 2]; } param[REST_PARAMS_MAX];
	char who[SMS_WHO_MAX + 1];
	unsigned scopes;
};

static int hexd(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* URL-decode src[0..n) into dst (cap with NUL); false if too long or a
 * bad escape (lib/url.h, strict). */
static bool url_decode_strict(const char *src, size_t n, char *dst, size_t cap)
{
	return url_decode(src, n, dst, cap, false) == 0;
}

static int parse_path(struct ctx *x)
{
	const char *p = x->req->path;
	size_t len = strlen(p), pre = strlen(REST_PREFIX);

	if (len > REST_PATH_MAX || strncmp(p, REST_PREFIX, pre) != 0)
		return CE_FORMAT;
	p += pre;
	x->nseg = 0;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || n >= sizeof(x->seg[0]) || x->nseg == SEG_MAX)
			return CE_FORMAT;
		for (size_t i = 0; i < n; i++) {
			char c = p[i];

			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			      c == '-' || c == '.'))
				return CE_FORMAT;
		}
		memcpy(x->seg[x->nseg], p, n);
		x->seg[x->nseg++][n] = '\0';
		p += n;
		if (*p == '/') {
			p++;
			if (!*p) /* trailing slash */
				return CE_FORMAT;
		}
	}
	return 0;
}

static int parse_query(struct ctx *x)
{
	const char *q = x->req->query, *name, *value;
	size_t len = q ? strlen(q) : 0, nlen, vlen;

	x->nparam = 0;
	if (len > REST_QUERY_MAX)
		return CE_LIMIT;
	while (url_query_next(&q, &len, &name, &nlen, &value, &vlen)) {
		if (x->nparam == REST_PARAMS_MAX)
			return CE_LIMIT;
		if (!url_decode_strict(name, nlen, x->param[x->nparam].name, sizeof(x->param[0].name)) ||
		    !url_decode_strict(value, vlen, x->param[x->nparam].value, sizeof(x->param[0].value)))
			return CE_FORMAT;
		x->nparam++;
	}
	return 0;
}

/* Only the named parameters are allowed; others are a client's typo. */
static bool params_only(struct ctx *x, const char *const *allowed)
{
	for (size_t i = 0; i < x->nparam; i++) {
		bool ok = false;

		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, x->param[i].name) == 0;
		if (!ok) {
			fail(x->resp, 400, "unknown_parameter", "unknown query parameter '%.31s'", x->param[i].name);
			return false;
		}
	}
	return true;
}

static const char *param(struct ctx *x, const char *name)
{
	const char *v = NULL;

	for (size_t i = 0; i < x->nparam; i++)
		if (strcmp(x->param[i].name, name) == 0)
			v = x->param[i].value;
	return v;
}

static bool all_digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* A decimal id in 1..max (serials: 1..INT64_MAX). */
static bool id_parse(const char *s, uint64_t max, uint64_t *out)
{
	*out = 0;
	return all_digits(s, 1, 19) && parse_u64(s, max, out) == 0;
}

/* limit and cursor of a list request. */
static bool page_params(struct ctx *x, size_t *limit, uint64_t *cursor)
{
	const char *l = param(x, "limit"), *c = param(x, "cursor");
	uint64_t v;

	*limit = REST_LIST_DEFAULT;
	*cursor = 0;
	if (l) {
		if (!id_parse(l, REST_LIST_MAX, &v) || v == 0) {
			fail(x->resp, 400, "invalid_value", "limit: 1 to %d", REST_LIST_MAX);
			return false;
		}
		*limit = (size_t)v;
	}
	if (c && !id_parse(c, INT64_MAX, cursor)) {
		fail(x->resp, 400, "invalid_value", "cursor: not one this API gave");
		return false;
	}
	return true;
}

static bool need(struct ctx *x, unsigned scope)
{
	if (x->scopes & scope)
		return true;
	const char *name = scope == SMS_SCOPE_READ ? "read" : scope == SMS_SCOPE_WRITE ? "write" : "admin";

	if (x->req->auth_who) /* a panel session: a person, not a key */
		fail(x->resp, 403, "forbidden", "your panel role does not allow this (it needs %s rights: %s)",
		     name, scope == SMS_SCOPE_ADMIN ? "ask an admin" : "ask an admin to change your role");
	else
		fail(x->resp, 403, "forbidden", "this API key lacks the %s scope: create one with it "
		     "(castellan sms key add USER --scopes %s)", name, name);
	return false;
}

static bool ctype_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The JSON object of the body, or NULL with the answer set. */
static json_t *body_json(struct ctx *x)
{
	json_error_t je;
	json_t *j;

	if (x->req->body_len > REST_JSON_MAX) {
		fail(x->resp, 413, "payload_too_large", "JSON bodies are limited to %u bytes", REST_JSON_MAX);
		return NULL;
	}
	if (!ctype_is(x->req->content_type, "application/json")) {
		fail(x->resp, 415, "unsupported_media_type", "send Content-Type: application/json");
		return NULL;
	}
	j = json_loadb(x->req->body ? x->req->body : "", x->req->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		fail(x->resp, 400, "invalid_json", "line %d column %d: %.100s", je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		fail(x->resp, 400, "invalid_json", "the body must be a JSON object");
		return NULL;
	}
	return j;
}

static void unknown_field(struct ctx *x, const char *key)
{
	json_t *e = json_object();

	json_object_set_new(e, "field", json_string(key));
	fail_x(x->resp, 400, "unknown_field", e, "unknown field '%.60s'", key);
}

static void bad_field(struct ctx *x, const char *key, const char *what)
{
	json_t *e = json_object();

	json_object_set_new(e, "field", json_string(key));
	fail_x(x->resp, 400, "invalid_value", e, "%s: %s", key, what);
}

/* ---- JSON values ------------------------------------------------------- */

static bool j_serial(json_t *v, uint64_t *out)
{
	*out = 0;
	if (json_is_string(v))
		return id_parse(json_string_value(v), INT64_MAX, out) && *out != 0;
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = (uint64_t)json_integer_value(v);
		return true;
	}
	return false;
}

static bool j_text(json_t *v, char *dst, size_t cap)
{
	const char *s;

	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v) || strlen(s) >= cap || !sms_text_valid(s))
		return false;
	memcpy(dst, s, strlen(s) + 1);
	return true;
}

static bool j_time(json_t *v, int64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 99999999999LL)
		return false;
	*out = json_integer_value(v);
	return true;
}

static bool j_mask(json_t *v, uint32_t *out)
{
	const char *s;
	uint32_t m = 0;

	if (!json_is_string(v) || strlen(s = json_string_value(v)) != 8)
		return false;
	for (size_t i = 0; i < 8; i++) {
		if (hexd(s[i]) < 0)
			return false;
		m = m << 4 | (uint32_t)hexd(s[i]);
	}
	*out = m;
	return true;
}

static bool j_uint(json_t *v, uint64_t max, uint64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0 && (uint64_t)json_integer_value(v) <= max) {
		*out = (uint64_t)json_integer_value(v);
		return true;
	}
	if (json_is_string(v))
		return id_parse(json_string_value(v), max, out);
	return false;
}

/* "0x4ADC": a CA_system_id as operators write it (2 to 4 hex digits). */
static bool j_hex16(json_t *v, uint64_t *out)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	uint64_t u = 0;
	size_t n;

	if (!s || (strncmp(s, "0x", 2) != 0 && strncmp(s, "0X", 2) != 0))
		return false;
	for (n = 2; s[n]; n++) {
		int d = hex_digit(s[n]);

		if (d < 0 || n >= 6)
			return false;
		u = u << 4 | (uint64_t)d;
	}
	if (n == 2)
		return false;
	*out = u;
	return true;
}

static const char *const state_names[] = { "active", "blocked", "retired" };

static bool j_state(json_t *v, enum sms_card_state *out)
{
	for (int i = 0; i < 3; i++) {
		if (json_is_string(v) && strcmp(json_string_value(v), state_names[i]) == 0) {
			*out = (enum sms_card_state)i;
			return true;
		}
	}
	return false;
}

/* The one card JSON writer (GET card, the card list): the card's members
 * without the closing brace, so the single-card answer can add its
 * subscriptions. The bytes are those of json_dumps(JSON_COMPACT) of the
 * same object (jsonw.h JW_JANSSON; tests/sms/test_rest.c checks). */
static void card_jw(struct jw *j, const struct sms_card *c)
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
static size_t card_jw_cap(const struct sms_card *c)
{
	return 320 + 6 * (strlen(c->chip_id) + strlen(c->name) + strlen(c->info));
}

static json_t *sub_json(const struct sms_subscription *s)
{
	char serial[24];

	snprintf(serial, sizeof(serial), "%" PRIu64, s->serial);
	return json_pack("{s:s,s:I,s:I,s:I}", "serial_no", serial, "package", (json_int_t)s->package, "start",
			 (json_int_t)s->start, "finish", (json_int_t)s->finish);
}

/* {"items":[...],"next_cursor":C|null}; takes items. */
static void page_answer(struct ctx *x, json_t *items, size_t n, size_t limit, uint64_t last)
{
	char cur[24];
	json_t *o;

	snprintf(cur, sizeof(cur), "%" PRIu64, last);
	o = json_pack("{s:o,s:o}", "items", items, "next_cursor", n == limit ? json_string(cur) : json_null());
	ok_json(x->resp, 200, o);
}

/* ---- cards ------------------------------------------------------------- */

struct list_acc {
	json_t *items;
	uint64_t last;
};

/* The card list, written with card_jw into one growing buffer:
 * {"items":[card,...],"next_cursor":C|null}. */
struct card_page {
	char *buf;
	size_t cap, len, n;
	uint64_t last;
};

static int page_room(struct card_page *p, size_t need)
{
	char *nb;
	size_t ncap;

	if (p->cap - p->len >= need)
		return 0;
	ncap = (p->cap + need) * 2;
	if (!(nb = realloc(p->buf, ncap)))
		return CE_NOMEM;
	p->buf = nb;
	p->cap = ncap;
	return 0;
}

static int acc_card(void *ctx, const struct sms_card *c)
{
	struct card_page *p = ctx;
	struct jw j;
	size_t n;
	int r;

	if ((r = page_room(p, card_jw_cap(c) + 2)) != 0)
		return r;
	jw_init(&j, p->buf + p->len, p->cap - p->len, JW_JANSSON);
	if (p->n)
		jw_lit(&j, ",");
	card_jw(&j, c);
	jw_lit(&j, "}");
	if ((r = jw_end(&j, &n)) != 0)
		return r;
	p->len += n;
	p->n++;
	p->last = c->serial;
	return 0;
}

static void cards_list(struct ctx *x)
{
	static const char *const ok[] = { "limit", "cursor", "serial_prefix", "name", "state", "info", "q", NULL };
	struct sms_card_filter f = { .state = -1 };
	const char *info = NULL, *q = NULL;
	struct card_page a = { NULL, 0, 0, 0, 0 };
	const char *v;
	size_t limit, n = 0;
	uint64_t cursor;
	int r;

	if (!params_only(x, ok) || !page_params(x, &limit, &cursor))
		goto out;
	if ((v = param(x, "serial_prefix")) != NULL) {
		if (!all_digits(v, 1, 19)) {
			fail(x->resp, 400, "invalid_value", "serial_prefix: 1 to 19 digits");
			goto out;
		}
		snprintf(f.serial_prefix, sizeof(f.serial_prefix), "%s", v);
	}
	if ((v = param(x, "name")) != NULL) {
		if (!sms_name_fits(v)) {
			fail(x->resp, 400, "invalid_value", "name: longer than %d characters", SMS_NAME_CHARS);
			goto out;
		}
		snprintf(f.name, sizeof(f.name), "%s", v);
	}
	if ((v = param(x, "state")) != NULL) {
		for (f.state = 0; f.state < 3 && strcmp(v, state_names[f.state]) != 0; f.state++)
			;
		if (f.state == 3) {
			fail(x->resp, 400, "invalid_value", "state: active, blocked or retired");
			goto out;
		}
	}
	if ((info = param(x, "info")) != NULL && (strlen(info) > SMS_NAME_MAX || !sms_text_valid(info))) {
		fail(x->resp, 400, "invalid_value", "info: at most %d bytes of text", SMS_NAME_MAX);
		goto out;
	}
	if ((q = param(x, "q")) != NULL && (strlen(q) > SMS_NAME_MAX || !sms_text_valid(q) || (info && *info))) {
		fail(x->resp, 400, "invalid_value", "q: at most %d bytes of text, and not with info", SMS_NAME_MAX);
		goto out;
	}
	if ((r = page_room(&a, 64)) != 0) {
		internal(x->resp, r);
		goto out;
	}
	memcpy(a.buf, "{\"items\":[", 10);
	a.len = 10;
	r = q && *q ? sms_card_search(x->s, &f, SMS_SEARCH_ANY, q, cursor, limit, acc_card, &a, &n)
		    : sms_card_find_info(x->s, &f, info, cursor, limit, acc_card, &a, &n);
	if (r == 0)
		r = page_room(&a, 48);
	if (r == CE_ARG) { /* store.h: info text under SMS_SEARCH_MIN_CHARS characters */
		fail(x->resp, 400, "query_too_short", "info: at least %d characters (q: shorter text matches whole names)",
		     SMS_SEARCH_MIN_CHARS);
		goto out;
	}
	if (r == CE_TIMEOUT) {
		fail(x->resp, 503, "search_timeout", "the search ran past its deadline: narrow it (more text, "
		     "serial_prefix, state)");
		goto out;
	}
	if (r != 0) {
		internal(x->resp, r);
		goto out;
	}
	/* next_cursor as page_answer writes it */
	if (n == limit)
		a.len += (size_t)snprintf(a.buf + a.len, a.cap - a.len, "],\"next_cursor\":\"%" PRIu64 "\"}", a.last);
	else
		a.len += (size_t)snprintf(a.buf + a.len, a.cap - a.len, "],\"next_cursor\":null}");
	set_body(x->resp, 200, "application/json", a.buf, a.len);
	x->resp->error_code = NULL;
	return;
out:
	free(a.buf);
}

/* Card fields of a POST or PATCH body. */
struct card_in {
	uint64_t serial;
	bool has_serial, has_sub;
	int64_t subscriber_id;
	struct sms_card_change ch;
};

static bool card_fields(struct ctx *x, json_t *o, bool create, struct card_in *in)
{
	const char *k;
	json_t *v;
	uint64_t u;

	in->serial = 0;
	in->has_serial = in->has_sub = false;
	in->subscriber_id = 0;
	sms_card_change_init(&in->ch); /* not a memset of its 65 KiB of text buffers */
	json_object_foreach(o, k, v) {
		struct sms_card_change *ch = &in->ch;

		if (strcmp(k, "serial_no") == 0 && create) {
			if (!j_serial(v, &in->serial))
				return bad_field(x, k, "a decimal serial 1..2^63-1 (string or number)"), false;
			in->has_serial = true;
		} else if (strcmp(k, "name") == 0) {
			if (!j_text(v, ch->name, sizeof(ch->name)))
				return bad_field(x, k, "UTF-8 text of at most 255 bytes, no control characters"), false;
			ch->has_name = true;
		} else if (strcmp(k, "info") == 0) {
			if (!j_text(v, ch->info, sizeof(ch->info)))
				return bad_field(x, k, "UTF-8 text of at most 1023 bytes, no control characters"), false;
			ch->has_info = true;
		} else if (strcmp(k, "chip_id") == 0) {
			if (!j_text(v, ch->chip_id, sizeof(ch->chip_id)))
				return bad_field(x, k, "text of at most 64 bytes"), false;
			ch->has_chip = true;
		} else if (strcmp(k, "pair") == 0) {
			if (json_is_boolean(v))
				ch->pair = json_is_true(v);
			else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
				ch->pair = json_integer_value(v) == 1;
			else
				return bad_field(x, k, "true, false, 0 or 1"), false;
			ch->has_pair = true;
		} else if (strcmp(k, "start") == 0) {
			if (!j_time(v, &ch->start))
				return bad_field(x, k, "UNIX seconds, 0..99999999999"), false;
			ch->has_start = true;
		} else if (strcmp(k, "finish") == 0) {
			if (!j_time(v, &ch->finish))
				return bad_field(x, k, "UNIX seconds, 0..99999999999"), false;
			ch->has_finish = true;
		} else if (strcmp(k, "access_criteria") == 0) {
			if (!j_mask(v, &ch->access_criteria))
				return bad_field(x, k, "8 hex digits"), false;
			ch->has_ac = true;
		} else if (strcmp(k, "state") == 0) {
			if (!j_state(v, &ch->state))
				return bad_field(x, k, "active, blocked or retired"), false;
			ch->has_state = true;
		} else if (strcmp(k, "subscriber_id") == 0) {
			if (!j_uint(v, INT64_MAX, &u))
				return bad_field(x, k, "a subscriber id, or 0 for none"), false;
			in->subscriber_id = (int64_t)u;
			in->has_sub = true;
		} else {
			unknown_field(x, k);
			return false;
		}
	}
	if (in->ch.has_start && in->ch.has_finish && in->ch.finish < in->ch.start)
		return bad_field(x, "finish", "before start"), false;
	if (create && !in->has_serial)
		return bad_field(x, "serial_no", "required"), false;
	if (in->has_sub && (in->ch.has_name || in->ch.has_info))
		return bad_field(x, "subscriber_id", "give either subscriber_id or name/info"), false;
	return true;
}

/* A card and its subscriptions: written straight with jsonw (the same
 * bytes as json_dumps of the card object plus "subscriptions", checked by
 * tests/sms/test_rest.c), the hot path of the REST API. */
static void card_answer(struct ctx *x, int status, uint64_t serial)
{
	struct sms_subscription stack_subs[REST_SUBS_INLINE], *subs = stack_subs, *heap = NULL;
	struct sms_card c;
	struct jw j;
	size_t n = 0, cap, len;
	char *body;
	int r;

	/* One query: the card, its subscriber and its subscriptions; a card
	 * with more than REST_SUBS_INLINE of them is read again whole (every
	 * subscription is answered, never the first ones only). */
	r = sms_card_get_subs(x->s, serial, &c, subs, REST_SUBS_INLINE, &n);
	if (r == CE_OVERFLOW) {
		if (!(heap = malloc(SMS_PACKAGES_MAX * sizeof(*heap)))) {
			internal(x->resp, CE_NOMEM);
			return;
		}
		subs = heap;
		r = sms_card_get_subs(x->s, serial, &c, subs, SMS_PACKAGES_MAX, &n);
	}
	if (r != 0) {
		free(heap);
		store_fail(x->resp, r == CE_OVERFLOW ? CE_INTERNAL : r, "card");
		return;
	}
	cap = card_jw_cap(&c) + 80 * n;
	if (!(body = malloc(cap))) {
		free(heap);
		internal(x->resp, CE_NOMEM);
		return;
	}
	jw_init(&j, body, cap, JW_JANSSON);
	card_jw(&j, &c);
	jw_lit(&j, ",\"subscriptions\":[");
	for (size_t i = 0; i < n; i++) {
		jw_lit(&j, i ? ",{\"package\":" : "{\"package\":");
		jw_u64(&j, subs[i].package);
		jw_lit(&j, ",\"start\":");
		jw_i64(&j, subs[i].start);
		jw_lit(&j, ",\"finish\":");
		jw_i64(&j, subs[i].finish);
		jw_lit(&j, "}");
	}
	jw_lit(&j, "]}");
	free(heap);
	if (jw_end(&j, &len) != 0) {
		free(body);
		internal(x->resp, CE_OVERFLOW);
		return;
	}
	set_body(x->resp, status, "application/json", body, len);
	x->resp->error_code = NULL;
}

static void card_create(struct ctx *x)
{
	json_t *j = body_json(x);
	struct card_in in;
	struct sms_card c = { 0 };
	int r;

	if (!j)
		return;
	if (!card_fields(x, j, true, &in))
		goto out;
	c.serial = in.serial;
	memcpy(c.chip_id, in.ch.chip_id, sizeof(c.chip_id));
	memcpy(c.name, in.ch.name, sizeof(c.name));
	memcpy(c.info, in.ch.info, sizeof(c.info));
	c.state = in.ch.has_state ? in.ch.state : SMS_CARD_ACTIVE;
	c.pair = in.ch.pair;
	c.start = in.ch.start;
	c.finish = in.ch.finish;
	if ((r = sms_tx_begin(x->s)) != 0) {
		internal(x->resp, r);
		goto out;
	}
	r = sms_card_add(x->s, &c, x->who);
	if (r == 0 && in.ch.has_ac) {
		struct sms_card_change ac = { .has_ac = true, .access_criteria = in.ch.access_criteria };

		r = sms_card_change(x->s, c.serial, &ac, x->who, NULL);
	}
	if (r == 0 && in.has_sub && in.subscriber_id)
		r = sms_card_set_subscriber(x->s, c.serial, in.subscriber_id, x->who);
	if ((r = sms_tx_end(x->s, r)) != 0) {
		store_fail(x->resp, r, r == CE_NOT_FOUND ? "subscriber" : "card");
		goto out;
	}
	card_answer(x, 201, c.serial);
out:
	json_decref(j);
}

static void card_update(struct ctx *x, uint64_t serial)
{
	json_t *j = body_json(x);
	struct card_in in;
	struct sms_card cur;
	int r;

	if (!j)
		return;
	if (!card_fields(x, j, false, &in))
		goto out;
	if ((r = sms_tx_begin(x->s)) != 0) {
		internal(x->resp, r);
		goto out;
	}
	r = sms_card_change(x->s, serial, &in.ch, x->who, &cur);
	if (r == 0 && in.ch.has_start != in.ch.has_finish && cur.finish < cur.start)
		r = CE_RANGE;
	if (r == 0 && in.has_sub) {
		r = sms_card_set_subscriber(x->s, serial, in.subscriber_id, x->who);
		if (r == CE_NOT_FOUND) {
			r = sms_tx_end(x->s, r); /* rolls back */
			fail(x->resp, 404, "not_found", "subscriber not found");
			goto out;
		}
	}
	if ((r = sms_tx_end(x->s, r)) != 0) {
		store_fail(x->resp, r, "card");
		goto out;
	}
	card_answer(x, 200, serial);
out:
	json_decref(j);
}

static void r_cards(struct ctx *x)
{
	uint64_t serial;
	enum rest_method m = x->req->method;

	if (x->nseg == 1) {
		if (m == REST_GET || m == REST_HEAD) {
			if (need(x, SMS_SCOPE_READ))
				cards_list(x);
		} else if (m == REST_POST) {
			if (need(x, SMS_SCOPE_WRITE))
				card_create(x);
		} else {
			fail(x->resp, 405, "method_not_allowed", "GET or POST");
		}
		return;
	}
	if (!id_parse(x->seg[1], INT64_MAX, &serial) || serial == 0) {
		fail(x->resp, 404, "not_found", "card not found (serials are decimal)");
		return;
	}
	if (x->nseg == 3 && strcmp(x->seg[2], "subscriptions") == 0) {
		static const char *const ok[] = { "limit", "cursor", NULL };
		struct sms_subscription *subs;
		struct sms_card c;
		json_t *arr;
		size_t n = 0, limit, i, shown = 0;
		uint64_t cursor;
		char next[24];
		int r;

		if (m != REST_GET && m != REST_HEAD) {
			fail(x->resp, 405, "method_not_allowed", "GET");
			return;
		}
		if (!need(x, SMS_SCOPE_READ) || !params_only(x, ok) || !page_params(x, &limit, &cursor))
			return;
		/* Every subscription of the card (at most one a package), then the
		 * page: packages from cursor on; next_cursor is null only when
		 * nothing is left after it. */
		if (!(subs = malloc(SMS_PACKAGES_MAX * sizeof(*subs)))) {
			internal(x->resp, CE_NOMEM);
			return;
		}
		if ((r = sms_card_get_subs(x->s, serial, &c, subs, SMS_PACKAGES_MAX, &n)) != 0) {
			free(subs);
			store_fail(x->resp, r == CE_OVERFLOW ? CE_INTERNAL : r, "card");
			return;
		}
		arr = json_array();
		for (i = 0; i < n && subs[i].package < cursor; i++)
			;
		for (; i < n && shown < limit; i++, shown++)
			json_array_append_new(arr, sub_json(&subs[i]));
		snprintf(next, sizeof(next), "%" PRIu64, i < n ? (uint64_t)subs[i - 1].package + 1 : 0);
		free(subs);
		ok_json(x->resp, 200, json_pack("{s:o,s:o}", "items", arr, "next_cursor", i < n ? json_string(next)
				 : json_null()));
		return;
	}
	if (x->nseg != 2) {
		fail(x->resp, 404, "not_found", "no such resource");
		return;
	}
	if (m == REST_GET || m == REST_HEAD) {
		if (need(x, SMS_SCOPE_READ))
			card_answer(x, 200, serial);
	} else if (m == REST_PATCH) {
		if (need(x, SMS_SCOPE_WRITE))
			card_update(x, serial);
	} else if (m == REST_DELETE) {
		int r;

		if (!need(x, SMS_SCOPE_ADMIN))
			return;
		if ((r = sms_card_delete(x->s, serial, x->who)) != 0)
			store_fail(x->resp, r, "card");
		else
			set_body(x->resp, 204, "application/json", NULL, 0);
	} else {
		fail(x->resp, 405, "method_not_allowed", "GET, PATCH or DELETE");
	}
}

/* ---- subscriptions ----------------------------------------------------- */

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

static void r_subscriptions(struct ctx *x)
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

/* ---- subscribers ------------------------------------------------------- */

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

static void r_subscribers(struct ctx *x)
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

/* ---- packages and channels --------------------------------------------- */

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

static void r_packages(struct ctx *x)
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

static void r_channels(struct ctx *x)
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

/* ---- CSV --------------------------------------------------------------- */

struct dynbuf {
	char *p;
	size_t len, cap;
};

static int dyn_out(void *ctx, const char *p, size_t n)
{
	struct dynbuf *d = ctx;

	if (n > CSV_FILE_MAX - d->len)
		return CE_LIMIT;
	if (d->cap - d->len < n) {
		size_t nc = d->cap ? d->cap : 65536;
		char *q;

		while (nc - d->len < n)
			nc *= 2;
		if (!(q = realloc(d->p, nc)))
			return CE_NOMEM;
		d->p = q;
		d->cap = nc;
	}
	memcpy(d->p + d->len, p, n);
	d->len += n;
	return 0;
}

static void r_import(struct ctx *x)
{
	struct csv_result res;
	int r;

	if (x->req->method != REST_POST) {
		fail(x->resp, 405, "method_not_allowed", "POST");
		return;
	}
	if (!need(x, SMS_SCOPE_WRITE))
		return;
	if (!ctype_is(x->req->content_type, "text/csv")) {
		fail(x->resp, 415, "unsupported_media_type", "send Content-Type: text/csv");
		return;
	}
	r = csv_import(x->s, x->req->body ? x->req->body : "", x->req->body_len, x->who, NULL, NULL, &res);
	if (r == CE_FORMAT || r == CE_LIMIT ||
	    ((r == CE_RANGE || r == CE_NOT_FOUND || r == CE_EXISTS || r == CE_BLOCKED) && res.line)) {
		json_t *e = json_pack("{s:I}", "line", (json_int_t)res.line);

		fail_x(x->resp, r == CE_LIMIT && !res.line ? 413 : 422, r == CE_LIMIT && !res.line ? "payload_too_large"
		       : "csv_invalid", e, "line %zu: %s; nothing was imported", res.line, res.why);
		return;
	}
	if (r != 0) {
		internal(x->resp, r);
		return;
	}
	ok_json(x->resp, 200, json_pack("{s:I,s:I,s:I}", "rows", (json_int_t)res.rows, "added", (json_int_t)res.added,
					"updated", (json_int_t)res.updated));
}

static void r_export(struct ctx *x)
{
	struct dynbuf d = { 0 };
	size_t rows = 0;
	int r;

	if (x->req->method != REST_GET && x->req->method != REST_HEAD) {
		fail(x->resp, 405, "method_not_allowed", "GET");
		return;
	}
	if (!need(x, SMS_SCOPE_READ) || !params_only(x, (const char *const[]){ NULL }))
		return;
	if ((r = csv_export(x->s, dyn_out, &d, &rows)) != 0) {
		free(d.p);
		if (r == CE_LIMIT)
			fail(x->resp, 413, "payload_too_large", "the export is over %u bytes: use the CLI",
			     CSV_FILE_MAX);
		else
			internal(x->resp, r);
		return;
	}
	set_body(x->resp, 200, "text/csv; charset=utf-8", d.p, d.len);
	x->resp->error_code = NULL;
}

/* ---- API keys ------------------------------------------------------------ */

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
static void r_apikeys(struct ctx *x)
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

/* ---- routing ----------------------------------------------------------- */

/* ---- generators and status (docs/api-rest.md) ---------------------------- */

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
static void r_generators(struct ctx *x)
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
static void r_status(struct ctx *x)
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

/* ---- blacklist and reports (schema 4) ----------------------------------- */

static int acc_bl(void *ctx, const struct sms_blacklist_entry *b)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:s}", "kind", b->kind == SMS_BL_CARD ? "card" : "box", "id", b->id,
			      "reason", b->reason, "at_ms", (json_int_t)b->at_ms, "who", b->who);

	return o && json_array_append_new(ctx, o) == 0 ? 0 : CE_NOMEM;
}

/* GET /blacklist (read), POST /blacklist {"kind":"card"|"box","id","reason"} (write). */
static void r_blacklist(struct ctx *x)
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
static void r_reports(struct ctx *x)
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

struct route {
	const char *name;
	void (*fn)(struct ctx *x);
};

static const struct route routes[] = {
	{ "cards", r_cards },
	{ "subscribers", r_subscribers },
	{ "subscriptions", r_subscriptions },
	{ "packages", r_packages },
	{ "channels", r_channels },
	{ "import", r_import },
	{ "export", r_export },
	{ "apikeys", r_apikeys },
	{ "generators", r_generators },
	{ "status", r_status },
	{ "blacklist", r_blacklist },
	{ "reports", r_reports },
};

const char *rest_route_name(const char *path)
{
	const char *seg = path ? path + strlen(REST_PREFIX) : "";
	size_t n;

	if (!path || strncmp(path, REST_PREFIX, strlen(REST_PREFIX)) != 0)
		return "other";
	n = strcspn(seg, "/");
	if (n == strlen("openapi.yaml") && strncmp(seg, "openapi.yaml", n) == 0)
		return "openapi.yaml";
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strlen(routes[i].name) == n && strncmp(seg, routes[i].name, n) == 0)
			return routes[i].name;
	return "other";
}

static int authenticate(struct ctx *x)
{
	char user[SMS_NAME_MAX + 1];
	char tag[9];
	const char *key = x->req->api_key;
	int r;

	if (x->req->auth_who) { /* a web panel session (http.c's auth hook) */
		x->scopes = x->req->auth_scopes;
		snprintf(x->who, sizeof(x->who), "%s", x->req->auth_who);
		return 0;
	}
	if (!key || !*key) {
		fail(x->resp, 401, "unauthorized", "send an API key in X-API-Key or Authorization: Bearer");
		return CE_NOT_FOUND;
	}
	r = sms_apikey_check_tag(x->s, key, &x->scopes, user, tag);
	if (r == CE_NOT_FOUND) {
		fail(x->resp, 401, "unauthorized", "unknown or revoked API key");
		return r;
	}
	if (r != 0) {
		internal(x->resp, r);
		return r;
	}
	/* The audit names the key by its user and the first 8 hex digits of
	 * its SHA-256, as `api key` creation does. */
	snprintf(x->who, sizeof(x->who), "rest:%.46s:%.8s", user, tag);
	return 0;
}

void rest_handle(struct sms_store *s, const struct rest_req *req, struct rest_resp *resp)
{
	/* Not calloc: the 4 KB of parameters are read only below nparam. */
	struct ctx *x = malloc(sizeof(*x));

	memset(resp, 0, sizeof(*resp));
	if (!x) {
		internal(resp, CE_NOMEM);
		return;
	}
	memset(x, 0, offsetof(struct ctx, param));
	x->who[0] = '\0';
	x->scopes = 0;
	x->s = s;
	x->req = req;
	x->resp = resp;
	if (parse_path(x) != 0 || x->nseg == 0) {
		fail(resp, 404, "not_found", "no such resource");
		goto out;
	}
	if (req->method == REST_OTHER) {
		fail(resp, 405, "method_not_allowed", "GET, POST, PUT, PATCH, DELETE");
		goto out;
	}
	if (x->nseg == 1 && strcmp(x->seg[0], "openapi.yaml") == 0) {
		char *doc;

		if (req->method != REST_GET && req->method != REST_HEAD) {
			fail(resp, 405, "method_not_allowed", "GET");
			goto out;
		}
		if (!(doc = malloc(sms_openapi_yaml_len + 1))) {
			internal(resp, CE_NOMEM);
			goto out;
		}
		memcpy(doc, sms_openapi_yaml, sms_openapi_yaml_len);
		set_body(resp, 200, "application/yaml", doc, sms_openapi_yaml_len);
		goto out;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].name, x->seg[0]) != 0)
			continue;
		if (parse_query(x) != 0) {
			fail(resp, 400, "bad_request", "query over %d bytes or %d parameters, or a bad %%-escape",
			     REST_QUERY_MAX, REST_PARAMS_MAX);
			goto out;
		}
		if (authenticate(x) != 0)
			goto out;
		routes[i].fn(x);
		if (resp->status == 0)
			internal(resp, CE_INTERNAL);
		goto out;
	}
	fail(resp, 404, "not_found", "no such resource");
out:
	/* The parameters parsed (and the one a failed parse stopped in). */
	secret_wipe(x->param, (x->nparam < REST_PARAMS_MAX ? x->nparam + 1 : REST_PARAMS_MAX) * sizeof(x->param[0]));
	secret_wipe(x, offsetof(struct ctx, param));
	secret_wipe(x->who, sizeof(x->who));
	free(x);
}
