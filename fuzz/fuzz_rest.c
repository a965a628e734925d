/* fuzz_rest.c - the REST API (rest.h) on arbitrary requests against an
 * in-memory SQLite store with an admin key: the input's first line is
 * "METHOD PATH[?QUERY]", the second the Content-Type, the rest the body
 * (JSON or CSV). Exercises routing, query and path parsing, JSON body
 * checks, bulk calls and CSV import. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "sms/rest.h"

static struct sms_store *store;
static char key[65];

static const char *line(const uint8_t **p, const uint8_t *end, char *buf, size_t cap)
{
	size_t n = 0;

	while (*p < end && **p != '\n') {
		if (n + 1 < cap)
			buf[n++] = (char)**p;
		(*p)++;
	}
	if (*p < end)
		(*p)++;
	buf[n] = '\0';
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" };
	const uint8_t *p = data, *end = data + size;
	char first[1024], ctype[128], path[1024];
	struct rest_req rq = { .method = REST_OTHER };
	struct rest_resp rs;
	char *q, *sp;

	if (!store) {
		log_set_level(LOG_LEVEL_ERROR);
		if (sms_store_open(":memory:", &store) != 0 || sms_user_add(store, "fuzz", "fuzz", NULL) != 0 ||
		    sms_apikey_create(store, "fuzz", 7, "fuzz", key) != 0)
			abort();
	}
	line(&p, end, first, sizeof(first));
	line(&p, end, ctype, sizeof(ctype));
	sp = strchr(first, ' ');
	if (!sp)
		return 0;
	*sp = '\0';
	for (size_t i = 0; i < 6; i++)
		if (strcmp(first, methods[i]) == 0)
			rq.method = (enum rest_method)i;
	memcpy(path, REST_PREFIX, strlen(REST_PREFIX));
	snprintf(path + strlen(REST_PREFIX), sizeof(path) - strlen(REST_PREFIX), "%s", sp + 1);
	q = strchr(path, '?');
	if (q)
		*q++ = '\0';
	rq.path = path;
	rq.query = q;
	rq.api_key = key;
	rq.content_type = ctype;
	rq.body = (const char *)p;
	rq.body_len = (size_t)(end - p);
	rest_handle(store, &rq, &rs);
	if (rs.status < 200 || rs.status > 599 || (rs.len && !rs.body))
		__builtin_trap();
	free(rs.body);
	return 0;
}
