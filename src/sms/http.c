/*
 * http.c - evhttp server for the SMS APIs: routes /api.php to getapi.c and
 * answers like the free CAS's PHP did (200 + JSON, or 400 + error word,
 * Content-Type text/html; charset=UTF-8), and /api/v1/... to rest.c (the
 * JSON REST API). Bad API keys are counted here and summarised in the log,
 * never logged per request.
 *
 * Threads (sms_http_set_threads): the caller's loop accepts on the listening
 * socket, and so does each worker thread, on its own event_base, evhttp and
 * store connection, through a dup() of the same socket (the kernel hands a
 * new connection to one of them; a connection then stays on its thread).
 * The API handlers only touch the thread's own store and stats. The web
 * panel's hooks are not thread-safe: a worker that needs one first "parks"
 * the caller's loop (a byte on a pipe watched by that loop; its callback
 * waits on a condition variable until the worker is done), so hook code
 * never runs beside the caller's loop, and only one worker runs hooks at a
 * time. The caller's own requests call the hooks directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netdb.h>
#include <stdio.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include "sms/http.h"
#include "sms/rest.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"

/* One serving loop: the caller's (sms_http.main) or a worker's. */
struct http_thread {
	struct sms_http *h;
	struct event_base *base;   /* a worker's own; the caller's for main */
	struct evhttp *http;
	struct sms_store *store;   /* a worker's own; the caller's (borrowed) for main */
	bool worker;
	pthread_t tid;
	bool started;
	int stop_pipe[2];          /* worker: a byte stops its loop */
	struct event *stop_ev;
	pthread_mutex_t mu;        /* guards stats (read by sms_http_get_stats) */
	struct sms_http_stats stats;
	struct evbuffer *out;      /* reply body, reused */
	char body[GETAPI_BODY_MAX];
};

struct sms_http {
	struct http_thread main;
	struct evhttp_bound_socket *sock;
	uint16_t port;
	struct sockaddr_storage bound;  /* the listening address, port resolved */
	socklen_t bound_len;
	struct sms_http_hooks hooks; /* the web panel's, zero if none; written under park_mu */
	struct http_thread **workers;
	unsigned nworkers;
	struct allow { int family; uint8_t addr[16]; unsigned prefix; } allow[SMS_METRICS_ALLOW_MAX];
	size_t nallow;               /* GET /metrics beyond loopback (sms_http_set_metrics_allow) */
	/* Parking the caller's loop while a worker runs a hook. */
	pthread_mutex_t hook_mu;     /* one worker in hooks at a time */
	pthread_mutex_t park_mu;
	pthread_cond_t park_cv;
	bool park_req, parked, stopping;
	int park_pipe[2];
	struct event *park_ev;
	bool sync_ok;                /* the mutexes and condition are initialised */
};

static void stats_lock(struct http_thread *t)
{
	if (t->worker)
		pthread_mutex_lock(&t->mu);
}

static void stats_unlock(struct http_thread *t)
{
	if (t->worker)
		pthread_mutex_unlock(&t->mu);
}

/* The caller's loop: a worker asks to park it. Wait here until it is done. */
static void on_park(evutil_socket_t fd, short ev, void *arg)
{
	struct sms_http *h = arg;
	char buf[64];

	(void)ev;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&h->park_mu);
	if (h->park_req) {
		h->park_req = false;
		h->parked = true;
		pthread_cond_broadcast(&h->park_cv);
		while (h->parked)
			pthread_cond_wait(&h->park_cv, &h->park_mu);
	}
	pthread_mutex_unlock(&h->park_mu);
}

/* A worker: park the caller's loop before calling a hook. false if the
 * server is stopping (then the request is answered 503). */
static bool park_enter(struct sms_http *h)
{
	bool ok;

	pthread_mutex_lock(&h->hook_mu);
	pthread_mutex_lock(&h->park_mu);
	h->park_req = true;
	if (write(h->park_pipe[1], "p", 1) < 0 && errno != EAGAIN)
		h->stopping = true;
	while (!h->parked && !h->stopping)
		pthread_cond_wait(&h->park_cv, &h->park_mu);
	ok = h->parked;
	h->park_req = false;
	pthread_mutex_unlock(&h->park_mu);
	if (!ok)
		pthread_mutex_unlock(&h->hook_mu);
	return ok;
}

static void park_leave(struct sms_http *h)
{
	pthread_mutex_lock(&h->park_mu);
	h->parked = false;
	pthread_cond_broadcast(&h->park_cv);
	pthread_mutex_unlock(&h->park_mu);
	pthread_mutex_unlock(&h->hook_mu);
}

/* The hooks as they are now (a worker: may change under it until parked). */
static struct sms_http_hooks hooks_now(struct http_thread *t)
{
	struct sms_http_hooks k;

	if (!t->worker)
		return t->h->hooks;
	pthread_mutex_lock(&t->h->park_mu);
	k = t->h->hooks;
	pthread_mutex_unlock(&t->h->park_mu);
	return k;
}

static void reply(struct http_thread *t, struct evhttp_request *req, int status, const char *reason,
		  const char *body, size_t len)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/html; charset=UTF-8");
	if (t->out) {
		evbuffer_drain(t->out, evbuffer_get_length(t->out));
		evbuffer_add(t->out, body, len);
	}
	evhttp_send_reply(req, status, reason, t->out);
}

static void on_api_php(struct evhttp_request *req, void *arg)
{
	struct http_thread *t = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	enum getapi_word w = GETAPI_OK;
	size_t len = 0;
	uint64_t bad = 0, t0 = now_mono_us();
	int status = 500;

	/* PHP's $_GET is the URL's query whatever the method: the free CAS
	 * answered a POST with the parameters in the URL like a GET, and never
	 * read a body. */
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		stats_lock(t);
		t->stats.requests++;
		stats_unlock(t);
		reply(t, req, 405, "Method Not Allowed", "", 0);
		metric_api_done("/api.php", 405, t0);
		return;
	}
	getapi_handle(t->store, q ? q : "", q ? strlen(q) : 0, &status, t->body, &len, &w);
	stats_lock(t);
	t->stats.requests++;
	if (status == 500) {
		t->stats.internal_errors++;
	} else {
		t->stats.words[w]++;
		if (w == GETAPI_NOT_VALID_API_KEY && (t->stats.words[w] & (t->stats.words[w] - 1)) == 0)
			bad = t->stats.words[w];
	}
	stats_unlock(t);
	if (bad)
		LOG_WARN("sms", "GET API: %llu requests with a bad API key so far%s", (unsigned long long)bad,
			 t->worker ? " (on one HTTP thread)" : "");
	reply(t, req, status, status == 200 ? "OK" : status == 400 ? "Bad Request" : "Internal Server Error", t->body,
	      len);
	metric_api_done("/api.php", status, t0);
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

/* The auth hook for a REST request without an API key: its answer, 1 if
 * none (or not the hook's). A worker parks the caller's loop around it. */
static int rest_hook_auth(struct http_thread *t, struct evhttp_request *req, unsigned *scopes, char *who,
			  size_t who_cap)
{
	struct sms_http *h = t->h;
	int a = 1;

	if (!hooks_now(t).auth)
		return 1;
	if (!t->worker)
		return h->hooks.auth(h->hooks.ctx, req, scopes, who, who_cap);
	if (!park_enter(h)) {
		reply(t, req, 503, "Service Unavailable", "", 0);
		return -1;
	}
	if (h->hooks.auth)
		a = h->hooks.auth(h->hooks.ctx, req, scopes, who, who_cap);
	park_leave(h);
	return a;
}

static void on_rest(struct http_thread *t, struct evhttp_request *req, const struct evhttp_uri *uri)
{
	struct evkeyvalq *hd = evhttp_request_get_input_headers(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct rest_req rq = { 0 };
	struct rest_resp rs;
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char who[SMS_WHO_MAX + 1]; /* a web session's audit name (rq.auth_who) */
	uint64_t unauth = 0, t0 = now_mono_us();
	char route[48];

	rq.method = rest_method_of(evhttp_request_get_command(req));
	rq.path = evhttp_uri_get_path(uri);
	rq.query = evhttp_uri_get_query(uri);
	rq.api_key = rest_key(hd);
	if (!rq.api_key) {
		int a = rest_hook_auth(t, req, &rq.auth_scopes, who, sizeof(who));

		if (a < 0) {
			stats_lock(t);
			t->stats.rest_requests++;
			stats_unlock(t);
			return;
		}
		if (a == 0)
			rq.auth_who = who;
	}
	rq.content_type = evhttp_find_header(hd, "Content-Type");
	rq.body_len = in ? evbuffer_get_length(in) : 0;
	rq.body = rq.body_len ? (const char *)evbuffer_pullup(in, -1) : NULL;
	if (rq.body_len && !rq.body)
		rq.body_len = 0;
	rest_handle(t->store, &rq, &rs);
	stats_lock(t);
	t->stats.rest_requests++;
	if (rs.status == 500)
		t->stats.internal_errors++;
	else if (rs.status == 401 && (t->stats.rest_unauthorized++, (t->stats.rest_unauthorized &
					(t->stats.rest_unauthorized - 1)) == 0))
		unauth = t->stats.rest_unauthorized;
	if (rs.status >= 400)
		t->stats.rest_errors++;
	stats_unlock(t);
	if (unauth)
		LOG_WARN("sms", "REST API: %llu requests with a missing or bad API key so far%s",
			 (unsigned long long)unauth, t->worker ? " (on one HTTP thread)" : "");
	evhttp_add_header(out, "Content-Type", rs.content_type ? rs.content_type : "application/json");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (t->out) {
		evbuffer_drain(t->out, evbuffer_get_length(t->out));
		if (rs.len)
			evbuffer_add(t->out, rs.body, rs.len);
	}
	evhttp_send_reply(req, rs.status, rs.status < 300 ? "OK" : rs.status < 500 ? "Client Error" : "Server Error",
			  rs.status == 204 ? NULL : t->out);
	free(rs.body);
	/* The route's name, never the raw path: a label set per route, not per card. */
	snprintf(route, sizeof(route), REST_PREFIX "%s", rest_route_name(rq.path));
	metric_api_done(route, rs.status, t0);
}

/* ---- GET /metrics ---------------------------------------------------------- */

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	size_t whole = bits / 8;
	unsigned rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	return rest == 0 || ((a[whole] ^ b[whole]) & (uint8_t)(0xFF00u >> rest)) == 0;
}

bool sms_http_metrics_peer_ok(const struct sms_http *h, const struct sockaddr *sa)
{
	uint8_t a[16];
	int fam;

	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		fam = AF_INET;
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *v6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(v6)) {
			fam = AF_INET;
			memcpy(a, v6->s6_addr + 12, 4);
		} else {
			fam = AF_INET6;
			memcpy(a, v6->s6_addr, 16);
		}
	} else {
		return false;
	}
	if ((fam == AF_INET && a[0] == 127) || (fam == AF_INET6 && IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a)))
		return true;
	for (size_t i = 0; i < h->nallow; i++)
		if (h->allow[i].family == fam && prefix_match(a, h->allow[i].addr, h->allow[i].prefix))
			return true;
	return false;
}

static void on_metrics(struct http_thread *t, struct evhttp_request *req)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const char *key = rest_key(evhttp_request_get_input_headers(req));
	struct evbuffer *b = evbuffer_new();
	uint64_t t0 = now_mono_us();
	char *text = NULL;
	size_t len = 0;
	int status = 200;

	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
		status = 405;
	} else if (key) {
		char user[SMS_NAME_MAX + 1];
		unsigned scopes = 0;
		int r = sms_apikey_check(t->store, key, &scopes, user);

		status = r == CE_NOT_FOUND ? 401 : r != 0 ? 500 : (scopes & (SMS_SCOPE_METRICS | SMS_SCOPE_ADMIN)) ? 200 : 403;
	} else if (!sms_http_metrics_peer_ok(t->h, evhttp_request_get_connection(req)
					       ? evhttp_connection_get_addr(evhttp_request_get_connection(req)) : NULL)) {
		status = 403;
	}
	if (status == 200 && (!b || metrics_render(&text, &len) != 0 || evbuffer_add(b, text, len) != 0))
		status = 500;
	if (status == 200) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", METRICS_CONTENT_TYPE);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
		evhttp_send_reply(req, 200, "OK", b);
	} else {
		reply(t, req, status, status == 401 ? "Unauthorized" : status == 403 ? "Forbidden" :
			      status == 405 ? "Method Not Allowed" : "Internal Server Error", "", 0);
	}
	free(text);
	if (b)
		evbuffer_free(b);
	metric_api_done("/metrics", status, t0);
}

int sms_http_set_metrics_allow(struct sms_http *h, const char *list)
{
	struct allow tmp[SMS_METRICS_ALLOW_MAX];
	size_t n = 0;
	const char *p = list ? list : "";

	while (*p) {
		const char *e = strchr(p, ','), *slash;
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char buf[64];
		uint64_t bits = 0;

		if (l == 0 || l >= sizeof(buf) || n == SMS_METRICS_ALLOW_MAX)
			return CE_ARG;
		memcpy(buf, p, l);
		buf[l] = '\0';
		slash = strchr(buf, '/');
		if (slash)
			buf[slash - buf] = '\0';
		memset(&tmp[n], 0, sizeof(tmp[n]));
		if (inet_pton(AF_INET, buf, tmp[n].addr) == 1)
			tmp[n].family = AF_INET;
		else if (inet_pton(AF_INET6, buf, tmp[n].addr) == 1)
			tmp[n].family = AF_INET6;
		else
			return CE_ARG;
		tmp[n].prefix = tmp[n].family == AF_INET ? 32 : 128;
		if (slash && (parse_u64(slash + 1, tmp[n].prefix, &bits) != 0 || !slash[1]))
			return CE_ARG;
		if (slash)
			tmp[n].prefix = (unsigned)bits;
		n++;
		p += l + (e ? 1 : 0);
		if (e && !*p)
			return CE_ARG; /* a trailing comma */
	}
	memcpy(h->allow, tmp, n * sizeof(tmp[0]));
	h->nallow = n;
	return 0;
}

/* The fallback hook: 1 if it answered. */
static int other_hook(struct http_thread *t, struct evhttp_request *req)
{
	struct sms_http *h = t->h;
	int r = 0;

	if (!hooks_now(t).fallback)
		return 0;
	if (!t->worker)
		return h->hooks.fallback(h->hooks.ctx, req);
	if (!park_enter(h)) {
		reply(t, req, 503, "Service Unavailable", "", 0);
		return 1;
	}
	if (h->hooks.fallback)
		r = h->hooks.fallback(h->hooks.ctx, req);
	park_leave(h);
	return r;
}

static void on_other(struct evhttp_request *req, void *arg)
{
	struct http_thread *t = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (path && strcmp(path, "/metrics") == 0) {
		stats_lock(t);
		t->stats.requests++;
		stats_unlock(t);
		on_metrics(t, req);
		return;
	}
	if (path && strncmp(path, REST_PREFIX, strlen(REST_PREFIX)) == 0) {
		stats_lock(t);
		t->stats.requests++;
		stats_unlock(t);
		on_rest(t, req, uri);
		return;
	}
	stats_lock(t);
	t->stats.requests++;
	stats_unlock(t);
	if (other_hook(t, req))
		return;
	reply(t, req, 404, "Not Found", "NOT_FOUND", 9);
}

/* Limits, methods and routes of one loop's evhttp. */
static int thread_http(struct http_thread *t)
{
	t->out = evbuffer_new();
	t->http = evhttp_new(t->base);
	if (!t->out || !t->http)
		return CE_NOMEM;
	/* The request line counts: room for a GET API query at its limit. */
	evhttp_set_max_headers_size(t->http, GETAPI_QUERY_MAX + 16384);
	evhttp_set_max_body_size(t->http, SMS_HTTP_BODY_MAX);
	evhttp_set_timeout(t->http, 30);
	evhttp_set_allowed_methods(t->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
				   EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
	evhttp_set_cb(t->http, "/api.php", on_api_php, t);
	evhttp_set_gencb(t->http, on_other, t);
	return 0;
}

struct event_base *sms_http_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *b;

	if (!cfg)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	b = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return b;
}

/* A listening socket on host:port (numeric or a name), SO_REUSEPORT set
 * before bind so that each HTTP thread can have its own socket on the same
 * port and the kernel spreads new connections evenly over them (one socket
 * shared by all threads gives most connections to whichever loop wakes
 * first: measured 59/41 over two threads). -1 on failure, errno set. */
static int listen_reuseport(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE },
			*ai = NULL;
	char ps[8];
	int fd = -1, one = 1;

	snprintf(ps, sizeof(ps), "%u", (unsigned)port);
	if (getaddrinfo(host[0] ? host : "0.0.0.0", ps, &hints, &ai) != 0 || !ai)
		return -1;
	/* SO_REUSEPORT would also let a second server of the same user share
	 * the port silently: bind once without it first, so a port in use is
	 * refused as it always was (a listener with SO_REUSEPORT makes a plain
	 * bind fail too). Port 0 picks a fresh port anyway. */
	if (port != 0) {
		int probe = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool free_port = probe >= 0 && setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
				 bind(probe, ai->ai_addr, ai->ai_addrlen) == 0;
		int e = errno;

		if (probe >= 0)
			close(probe);
		if (!free_port) {
			freeaddrinfo(ai);
			errno = e;
			return -1;
		}
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	*sl = sizeof(*ss);
	if (getsockname(fd, (struct sockaddr *)ss, sl) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Another socket on the address the first one got (its port resolved). */
static int listen_again(const struct sms_http *h)
{
	int fd = socket(h->bound.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)&h->bound, h->bound_len) != 0 || listen(fd, 1024) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int sms_http_new(struct event_base *base, struct sms_store *store, const char *addr, struct sms_http **out)
{
	struct sms_http *h;
	char host[256];
	uint16_t port = 0;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r, fd;

	*out = NULL;
	if (!base || !store || !addr || addr_split(addr, host, sizeof(host), &port) != 0)
		return CE_ARG;
	h = calloc(1, sizeof(*h));
	if (!h)
		return CE_NOMEM;
	h->park_pipe[0] = h->park_pipe[1] = -1;
	h->main.h = h;
	h->main.base = base;
	h->main.store = store;
	if ((r = thread_http(&h->main)) != 0)
		goto fail;
	fd = listen_reuseport(host, port, &ss, &sl);
	if (fd < 0 || !(h->sock = evhttp_accept_socket_with_handle(h->main.http, fd))) {
		LOG_ERR("sms", "http: cannot listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		r = CE_IO;
		goto fail;
	}
	h->bound = ss;
	h->bound_len = sl;
	/* No request waits for a WAL checkpoint's fsync (store.h). */
	if ((r = sms_store_bg_checkpoint(store, true)) != 0)
		goto fail;
	if (ss.ss_family == AF_INET)
		h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	LOG_INFO("sms", "http: GET and REST APIs on %s port %u", host[0] ? host : "*", (unsigned)h->port);
	*out = h;
	return 0;
fail:
	sms_http_free(h);
	return r;
}

static void on_stop(evutil_socket_t fd, short ev, void *arg)
{
	struct http_thread *t = arg;
	char b[16];

	(void)ev;
	while (read(fd, b, sizeof(b)) > 0)
		;
	event_base_loopbreak(t->base);
}

static void *worker_main(void *arg)
{
	struct http_thread *t = arg;

	event_base_dispatch(t->base);
	return NULL;
}

static int pipe_nb(int p[2])
{
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
		p[0] = p[1] = -1;
		return CE_IO;
	}
	return 0;
}

static void close_pipe(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	p[0] = p[1] = -1;
}

/* Stop, join and free one worker (started or not). */
static void worker_free(struct http_thread *t)
{
	if (!t)
		return;
	if (t->started) {
		if (write(t->stop_pipe[1], "s", 1) < 0)
			LOG_WARN("sms", "http: cannot stop a worker thread");
		pthread_join(t->tid, NULL);
	}
	if (t->http)
		evhttp_free(t->http);
	if (t->out)
		evbuffer_free(t->out);
	if (t->stop_ev)
		event_free(t->stop_ev);
	close_pipe(t->stop_pipe);
	sms_store_close(t->store);
	if (t->base)
		event_base_free(t->base);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static int worker_new(struct sms_http *h, const char *db_uri, int listen_fd, struct http_thread **out)
{
	struct http_thread *t = calloc(1, sizeof(*t));
	int fd = -1, r;

	*out = NULL;
	if (!t)
		return CE_NOMEM;
	t->h = h;
	t->worker = true;
	t->stop_pipe[0] = t->stop_pipe[1] = -1;
	pthread_mutex_init(&t->mu, NULL);
	if ((r = sms_store_open(db_uri, &t->store)) != 0 || (r = sms_store_no_autocheckpoint(t->store)) != 0)
		goto fail;
	r = CE_NOMEM;
	if (!(t->base = sms_http_base_new()))
		goto fail;
	if ((r = thread_http(t)) != 0 || (r = pipe_nb(t->stop_pipe)) != 0)
		goto fail;
	r = CE_NOMEM;
	if (!(t->stop_ev = event_new(t->base, t->stop_pipe[0], EV_READ | EV_PERSIST, on_stop, t)) ||
	    event_add(t->stop_ev, NULL) != 0)
		goto fail;
	/* Its own SO_REUSEPORT socket; if the kernel refuses, a dup() of the
	 * first one (then the loops share one accept queue). */
	r = CE_IO;
	if ((fd = listen_again(h)) < 0 && (fd = fcntl(listen_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		goto fail;
	if (!evhttp_accept_socket_with_handle(t->http, fd)) {
		close(fd);
		goto fail;
	}
	if (pthread_create(&t->tid, NULL, worker_main, t) != 0)
		goto fail;
	t->started = true;
	*out = t;
	return 0;
fail:
	worker_free(t);
	return r;
}

int sms_http_set_threads(struct sms_http *h, const char *db_uri, unsigned threads)
{
	int fd, r;

	if (!h || !db_uri || threads < 1 || threads > SMS_HTTP_THREADS_MAX || h->workers)
		return CE_ARG;
	if (threads == 1)
		return 0;
	if (!h->sync_ok) {
		pthread_mutex_init(&h->hook_mu, NULL);
		pthread_mutex_init(&h->park_mu, NULL);
		pthread_cond_init(&h->park_cv, NULL);
		h->sync_ok = true;
	}
	if ((r = pipe_nb(h->park_pipe)) != 0)
		return r;
	if (!(h->park_ev = event_new(h->main.base, h->park_pipe[0], EV_READ | EV_PERSIST, on_park, h)) ||
	    event_add(h->park_ev, NULL) != 0)
		return CE_NOMEM;
	if (!(h->workers = calloc(threads - 1, sizeof(*h->workers))))
		return CE_NOMEM;
	fd = evconnlistener_get_fd(evhttp_bound_socket_get_listener(h->sock));
	for (unsigned i = 0; i + 1 < threads; i++) {
		/* hooks_now and park_enter take park_mu: the worker sees h->hooks set before. */
		if ((r = worker_new(h, db_uri, fd, &h->workers[i])) != 0) {
			LOG_ERR("sms", "http: worker thread %u: %s", i + 1, err_str(r));
			return r;
		}
		h->nworkers++;
	}
	LOG_INFO("sms", "http: %u threads on port %u", threads, (unsigned)h->port);
	return 0;
}

void sms_http_free(struct sms_http *h)
{
	if (!h)
		return;
	if (h->sync_ok) {
		/* A worker waiting to park this loop gives up (its request: 503). */
		pthread_mutex_lock(&h->park_mu);
		h->stopping = true;
		pthread_cond_broadcast(&h->park_cv);
		pthread_mutex_unlock(&h->park_mu);
	}
	for (unsigned i = 0; i < h->nworkers; i++)
		worker_free(h->workers[i]);
	free(h->workers);
	if (h->park_ev)
		event_free(h->park_ev);
	close_pipe(h->park_pipe);
	if (h->main.http)
		evhttp_free(h->main.http);
	if (h->main.out)
		evbuffer_free(h->main.out);
	if (h->sync_ok) {
		pthread_mutex_destroy(&h->hook_mu);
		pthread_mutex_destroy(&h->park_mu);
		pthread_cond_destroy(&h->park_cv);
	}
	free(h);
}

void sms_http_set_hooks(struct sms_http *h, const struct sms_http_hooks *hooks)
{
	if (h->sync_ok)
		pthread_mutex_lock(&h->park_mu);
	if (hooks)
		h->hooks = *hooks;
	else
		memset(&h->hooks, 0, sizeof(h->hooks));
	if (h->sync_ok)
		pthread_mutex_unlock(&h->park_mu);
}

uint16_t sms_http_port(const struct sms_http *h)
{
	return h->port;
}

static void stats_add(struct sms_http_stats *o, const struct sms_http_stats *s)
{
	o->requests += s->requests;
	for (size_t i = 0; i < GETAPI_NWORDS; i++)
		o->words[i] += s->words[i];
	o->internal_errors += s->internal_errors;
	o->rest_requests += s->rest_requests;
	o->rest_errors += s->rest_errors;
	o->rest_unauthorized += s->rest_unauthorized;
}

/* From the caller's loop thread, or from a hook (that loop is then parked). */
void sms_http_get_stats(const struct sms_http *h, struct sms_http_stats *out)
{
	memset(out, 0, sizeof(*out));
	stats_add(out, &h->main.stats);
	for (unsigned i = 0; i < h->nworkers; i++) {
		struct http_thread *t = h->workers[i];

		pthread_mutex_lock(&t->mu);
		stats_add(out, &t->stats);
		pthread_mutex_unlock(&t->mu);
	}
}
