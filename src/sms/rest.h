/*
 * rest.h - the SMS's JSON REST API (`/api/v1/...`), without any HTTP:
 * routing, API-key check with scopes, JSON bodies (jansson), pagination
 * and filters, bulk subscriptions, CSV import/export and the OpenAPI
 * document. http.c hands it requests; docs/api-rest.md is the operator's
 * reference and docs/openapi.yaml the contract.
 *
 * Every request is untrusted: path at most REST_PATH_MAX bytes, query at
 * most REST_QUERY_MAX bytes and REST_PARAMS_MAX parameters, JSON bodies
 * at most REST_JSON_MAX bytes, CSV bodies at most CSV_FILE_MAX bytes.
 * Errors are `{"error":{"code":C,"message":M}}` with a stable code (table
 * in docs/api-rest.md). A refused request changes nothing; every change
 * is audited as "rest:<user>:<first 8 hex digits of SHA-256(key)>".
 */
#ifndef CASTELLAN_SMS_REST_H
#define CASTELLAN_SMS_REST_H

#include <stddef.h>
#include "sms/store.h"

#define REST_PREFIX "/api/v1/"
#define REST_PATH_MAX 256
#define REST_QUERY_MAX 4096
#define REST_PARAMS_MAX 16
#define REST_JSON_MAX (1u << 20)
#define REST_LIST_MAX 1000   /* items per page (limit) */
#define REST_LIST_DEFAULT 100
#define REST_SUBS_INLINE 256  /* subscriptions GET card reads in its first query (more: read again whole) */
#define REST_BULK_MAX 10000  /* items in one bulk call */

enum rest_method { REST_GET, REST_HEAD, REST_POST, REST_PUT, REST_PATCH, REST_DELETE, REST_OTHER };

struct rest_req {
	enum rest_method method;
	const char *path;         /* starts with REST_PREFIX, no query */
	const char *query;        /* after '?', or NULL */
	const char *api_key;      /* X-API-Key, or the token of Authorization: Bearer; NULL if none */
	const char *auth_who;     /* set: already authenticated (web panel session), api_key ignored */
	unsigned auth_scopes;     /* the scopes of auth_who */
	const char *content_type; /* NULL if none */
	const char *body;         /* may hold NULs; not NUL-terminated */
	size_t body_len;
};

struct rest_resp {
	int status;
	const char *content_type; /* static */
	char *body;               /* malloc'ed; free with free() */
	size_t len;
	const char *error_code;   /* static, NULL on success (for counters) */
};

/* The route a REST path (REST_PREFIX...) goes to, for metrics labels: one
 * of the route names ("cards", "subscribers", ..., "openapi.yaml") or
 * "other" (a bounded set, whatever the path). */
const char *rest_route_name(const char *path);

/* Answer one request. Never fails: resp is always filled (status 500 and
 * the "internal" error when the database or memory fails). */
void rest_handle(struct sms_store *s, const struct rest_req *req, struct rest_resp *resp);

/* The OpenAPI document (docs/openapi.yaml), embedded at build time. */
extern const char sms_openapi_yaml[];
extern const size_t sms_openapi_yaml_len;

#endif
