/*
 * http.c - evhttp server for the SMS APIs: routes /api.php to getapi.c and
 * answers like the free CAS's PHP did (200 + JSON, or 400 + error word,
 * Content-Type text/html; charset=UTF-8), and /api/v1/... to rest.c (the
 * JSON REST API). Bad API keys are counted here and summarised in the log,
 * never logged per request.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include "sms/http.h"
#include "sms/rest.h"
#include "lib/log.h"
#include "lib/util.h"

struct sms_http {
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct sms_store *store;
	uint16_t port;
	struct sms_http_stats stats;
	struct sms_http_hooks hooks; /* the web panel's, zero if none */
	char body[GETAPI_BODY_MAX];
};

static void reply(struct evhttp_request *req, int status, const char *reason, const char *body, size_t len)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/html; charset=UTF-8");
	if (b)
		evbuffer_add(b, body, len);
	evhttp_send_reply(req, status, reason, b);
	if (b)
		evbuffer_free(b);
}

static void on_api_php(struct evhttp_request *req, void *arg)
{
	struct sms_http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	enum getapi_word w = GETAPI_OK;
	size_t len = 0;
	int status = 500;

	h->stats.requests++;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		reply(req, 405, "Method Not Allowed", "", 0);
		return;
	}
	getapi_handle(h->store, q ? q : "", q ? strlen(q) : 0, &status, h->body, &len, &w);
	if (status == 500) {
		h->stats.internal_errors++;
	} else {
		h->stats.words[w]++;
		if (w == GETAPI_NOT_VALID_API_KEY && (h->stats.words[w] & (h->stats.words[w] - 1)) == 0)
			LOG_WARN("sms", "GET API: %llu requests with a bad API key so far",
				 (unsigned long long)h->stats.words[w]);
	}
	reply(req, status, status == 200 ? "OK" : status == 400 ? "Bad Request" : "Internal Server Error", h->body,
	      len);
}

static enum rest_method rest_method_of(enum evhttp_cmd_type c)
{
	switch (c) {
	case EVHTTP_REQ_GET: return REST_GET;
	case EVHTTP_REQ_HEAD: return REST_HEAD;
	case EVHTTP_REQ_POST: return REST_POST;
	case EVHTTP_REQ_PUT: return REST_PUT;
	case EVHTTP_REQ_PATCH: return REST_PATCH;
	case EVHTTP_REQ_DELETE: return REST_DELETE;
	default: return REST_OTHER;
	}
}

/* The API key of a REST request: X-API-Key, else Authorization: Bearer. */
static const char *rest_key(struct evkeyvalq *hd)
{
	const char *k = evhttp_find_header(hd, "X-API-Key");
	const char *a;

	if (k)
		return k;
	a = evhttp_find_header(hd, "Authorization");
	if (a && strncasecmp(a, "Bearer ", 7) == 0) {
		a += 7;
		while (*a == ' ')
			a++;
		return a;
	}
	return NULL;
}

static void on_rest(struct sms_http *h, struct evhttp_request *req, const struct evhttp_uri *uri)
{
	struct evkeyvalq *hd = evhttp_request_get_input_headers(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct rest_req rq = { 0 };
	struct rest_resp rs;
	struct evbuffer *b;
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char who[SMS_WHO_MAX + 1]; /* a web session's audit name (rq.auth_who) */

	h->stats.rest_requests++;
	rq.method = rest_method_of(evhttp_request_get_command(req));
	rq.path = evhttp_uri_get_path(uri);
	rq.query = evhttp_uri_get_query(uri);
	rq.api_key = rest_key(hd);
	if (!rq.api_key && h->hooks.auth) {
		int a = h->hooks.auth(h->hooks.ctx, req, &rq.auth_scopes, who, sizeof(who));

		if (a < 0)
			return;
		if (a == 0)
			rq.auth_who = who;
	}
	rq.content_type = evhttp_find_header(hd, "Content-Type");
	rq.body_len = in ? evbuffer_get_length(in) : 0;
	rq.body = rq.body_len ? (const char *)evbuffer_pullup(in, -1) : NULL;
	if (rq.body_len && !rq.body)
		rq.body_len = 0;
	rest_handle(h->store, &rq, &rs);
	if (rs.status == 500)
		h->stats.internal_errors++;
	else if (rs.status == 401 && (h->stats.rest_unauthorized++, (h->stats.rest_unauthorized &
					(h->stats.rest_unauthorized - 1)) == 0))
		LOG_WARN("sms", "REST API: %llu requests with a missing or bad API key so far",
			 (unsigned long long)h->stats.rest_unauthorized);
	if (rs.status >= 400)
		h->stats.rest_errors++;
	evhttp_add_header(out, "Content-Type", rs.content_type ? rs.content_type : "application/json");
	evhttp_add_header(out, "Cache-Control", "no-store");
	b = evbuffer_new();
	if (b && rs.len)
		evbuffer_add(b, rs.body, rs.len);
	evhttp_send_reply(req, rs.status, rs.status < 300 ? "OK" : rs.status < 500 ? "Client Error" : "Server Error",
			  rs.status == 204 ? NULL : b);
	if (b)
		evbuffer_free(b);
	free(rs.body);
}

static void on_other(struct evhttp_request *req, void *arg)
{
	struct sms_http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	h->stats.requests++;
	if (path && strncmp(path, REST_PREFIX, strlen(REST_PREFIX)) == 0) {
		on_rest(h, req, uri);
		return;
	}
	if (h->hooks.fallback && h->hooks.fallback(h->hooks.ctx, req))
		return;
	reply(req, 404, "Not Found", "NOT_FOUND", 9);
}

int sms_http_new(struct event_base *base, struct sms_store *store, const char *addr, struct sms_http **out)
{
	struct sms_http *h;
	char host[256];
	uint16_t port = 0;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r;

	*out = NULL;
	if (!base || !store || !addr || addr_split(addr, host, sizeof(host), &port) != 0)
		return CE_ARG;
	h = calloc(1, sizeof(*h));
	if (!h)
		return CE_NOMEM;
	h->store = store;
	h->http = evhttp_new(base);
	if (!h->http) {
		r = CE_NOMEM;
		goto fail;
	}
	evhttp_set_max_headers_size(h->http, 16384);
	evhttp_set_max_body_size(h->http, SMS_HTTP_BODY_MAX);
	evhttp_set_timeout(h->http, 30);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
				  EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
	evhttp_set_cb(h->http, "/api.php", on_api_php, h);
	evhttp_set_gencb(h->http, on_other, h);
	h->sock = evhttp_bind_socket_with_handle(h->http, host[0] ? host : "0.0.0.0", port);
	if (!h->sock) {
		LOG_ERR("sms", "http: cannot listen on %s", addr);
		r = CE_IO;
		goto fail;
	}
	if (getsockname(evconnlistener_get_fd(evhttp_bound_socket_get_listener(h->sock)), (struct sockaddr *)&ss,
			&sl) == 0) {
		if (ss.ss_family == AF_INET)
			h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	LOG_INFO("sms", "http: GET and REST APIs on %s port %u", host[0] ? host : "*", (unsigned)h->port);
	*out = h;
	return 0;
fail:
	sms_http_free(h);
	return r;
}

void sms_http_free(struct sms_http *h)
{
	if (!h)
		return;
	if (h->http)
		evhttp_free(h->http);
	free(h);
}

void sms_http_set_hooks(struct sms_http *h, const struct sms_http_hooks *hooks)
{
	if (hooks)
		h->hooks = *hooks;
	else
		memset(&h->hooks, 0, sizeof(h->hooks));
}

uint16_t sms_http_port(const struct sms_http *h)
{
	return h->port;
}

void sms_http_get_stats(const struct sms_http *h, struct sms_http_stats *out)
{
	*out = h->stats;
}
