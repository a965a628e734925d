/*
 * rest_req.c - reading a REST request (rest_int.h): the path into
 * segments, the query into decoded parameters (lib/url.h, strict), the
 * allowed parameters, paging (limit, cursor), the caller's scopes and a
 * JSON object body (size, Content-Type, duplicate keys refused).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"
#include "lib/url.h"
#include "lib/util.h"

/* URL-decode src[0..n) into dst (cap with NUL); false if too long or a
 * bad escape (lib/url.h, strict). */
static bool url_decode_strict(const char *src, size_t n, char *dst, size_t cap)
{
	return url_decode(src, n, dst, cap, false) == 0;
}

int parse_path(struct ctx *x)
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

int parse_query(struct ctx *x)
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
bool params_only(struct ctx *x, const char *const *allowed)
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

const char *param(struct ctx *x, const char *name)
{
	const char *v = NULL;

	for (size_t i = 0; i < x->nparam; i++)
		if (strcmp(x->param[i].name, name) == 0)
			v = x->param[i].value;
	return v;
}

bool all_digits(const char *s, size_t min, size_t max)
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
bool id_parse(const char *s, uint64_t max, uint64_t *out)
{
	*out = 0;
	return all_digits(s, 1, 19) && parse_u64(s, max, out) == 0;
}

/* limit and cursor of a list request. */
bool page_params(struct ctx *x, size_t *limit, uint64_t *cursor)
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

bool need(struct ctx *x, unsigned scope)
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

bool ctype_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The JSON object of the body, or NULL with the answer set. */
json_t *body_json(struct ctx *x)
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

void unknown_field(struct ctx *x, const char *key)
{
	json_t *e = json_object();

	json_object_set_new(e, "field", json_string(key));
	fail_x(x->resp, 400, "unknown_field", e, "unknown field '%.60s'", key);
}

void bad_field(struct ctx *x, const char *key, const char *what)
{
	json_t *e = json_object();

	json_object_set_new(e, "field", json_string(key));
	fail_x(x->resp, 400, "invalid_value", e, "%s: %s", key, what);
}

