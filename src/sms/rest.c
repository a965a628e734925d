/*
 * rest.c - the JSON REST API's router (rest.h, docs/api-rest.md): the
 * table of routes, the API-key check (sms_apikey_check: SHA-256 lookup,
 * constant-time compare) with per-route scopes, and the one entry point.
 * The rest of the API, by concern (rest_int.h): rest_req.c (path, query,
 * paging, scopes, bodies), rest_valid.c (JSON value validators),
 * rest_json.c (answers, card JSON writer), and one file per resource
 * family: rest_cards.c, rest_subscriptions.c, rest_subscribers.c,
 * rest_packages.c (and channels), rest_csv.c (import/export), rest_keys.c,
 * rest_generators.c (and status), rest_reports.c (and blacklist).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"
#include "lib/util.h"

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
	{ "fingerprints", r_fingerprints }, { "messages", r_messages }, /* rest_osd.c */
	{ "copy-control", r_copy_control }, /* rest_usage.c */
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
