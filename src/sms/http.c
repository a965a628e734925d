/*
 * http.c - evhttp server for the SMS APIs: routes /api.php to getapi.c and
 * answers like the free CAS's PHP did (200 + JSON, or 400 + error word,
 * Content-Type text/html; charset=UTF-8). Bad API keys are counted here and
 * summarised in the log, never logged per request.
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
#include "lib/log.h"
#include "lib/util.h"

struct sms_http {
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct sms_store *store;
	uint16_t port;
	struct sms_http_stats stats;
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

static void on_other(struct evhttp_request *req, void *arg)
{
	struct sms_http *h = arg;

	h->stats.requests++;
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
	evhttp_set_max_body_size(h->http, 0);
	evhttp_set_timeout(h->http, 30);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
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
	LOG_INFO("sms", "http: GET API on %s port %u", host[0] ? host : "*", (unsigned)h->port);
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

uint16_t sms_http_port(const struct sms_http *h)
{
	return h->port;
}

void sms_http_get_stats(const struct sms_http *h, struct sms_http_stats *out)
{
	*out = h->stats;
}
